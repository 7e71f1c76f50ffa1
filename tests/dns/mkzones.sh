#!/bin/sh
# DNSSEC test zones for the resolver, served by nsd on 127.0.0.1 (ECOSYSTEM.md §3).
# usage: mkzones.sh DIR [ZONE_TXT_FILE]
# Makes in DIR: signed zones (good, bogus, expired, unsigned, insecure, big under dime.test),
# ta.ds (the trust anchors), nsd.conf, unbound.conf (stub zones pointing at nsd), and starts nsd
# on a free port (DIR/port; stop it with: kill "$(cat DIR/nsd.pid)").
# ZONE_TXT_FILE, when given, holds extra lines "zone RR..." (a zone name, then a zone-file
# line) added to the zones.
# MKZONES_ORGS="a b": also make a.dime.test and b.dime.test, signed and delegated, holding only
# their SOA, NS and the lines of ZONE_TXT_FILE for them (organisations a test publishes itself:
# its own _dime record, dx host addresses).
set -eu
D=$(cd "$1" && pwd)
EXTRA=${2:-}
# a valid Ed25519 point (RFC 8032 test 1's public key) unless the caller publishes its own org's
POK=${MKZONES_POK:-11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo}
cd "$D"
command -v nsd >/dev/null && command -v ldns-signzone >/dev/null || {
	echo "mkzones: nsd and ldnsutils are needed (tools/install-deps.sh)" >&2
	exit 2
}

ORGS=${MKZONES_ORGS:-}
mkzone() { # zone [bare]
	cat >"$1.zone" <<Z
\$ORIGIN $1.
\$TTL 300
@     IN SOA ns1.$1. hostmaster.$1. ( 1 3600 900 604800 300 )
      IN NS  ns1.$1.
ns1   IN A   127.0.0.1
Z
	[ "${2:-}" = bare ] || cat >>"$1.zone" <<Z
dmtp  IN A   127.0.0.1
@     IN MX 10 dmtp.$1.
_dime IN TXT "ver=1 pok=$POK " "pol=strict sub=strict dx=dmtp.$1 exp=30"
Z
	if [ -n "$EXTRA" ]; then
		awk -v z="$1" '$1 == z { $1 = ""; print substr($0, 2) }' "$EXTRA" >>"$1.zone"
	fi
}
sign() { # zone inception expiration
	zsk=$(ldns-keygen -a ECDSAP256SHA256 "$1")
	ksk=$(ldns-keygen -k -a ECDSAP256SHA256 "$1")
	ldns-signzone -n -i "$2" -e "$3" -f "$1.zone.signed" "$1.zone" "$zsk" "$ksk"
	cat "$ksk.ds" >>ta.ds
}

: >ta.ds
IN=$(date -u -d '-1 hour' +%Y%m%d%H%M%S)
EX=$(date -u -d '+30 days' +%Y%m%d%H%M%S)
OIN=$(date -u -d '-60 days' +%Y%m%d%H%M%S)
OEX=$(date -u -d '-30 days' +%Y%m%d%H%M%S)
ZONES="good bogus expired unsigned insecure big"
for z in $ZONES; do mkzone "$z.dime.test"; done
for z in $ORGS; do mkzone "$z.dime.test" bare; done
# the parent: signed, with no record of its own, so that walks from the organisational domain
# (dime.test) get a proven NXDOMAIN there
mkzone dime.test
sed -i '/^_dime/d' dime.test.zone
# delegations, so that the parent proves (NSEC3) that insecure.dime.test has no DS: insecure,
# not bogus; the other children are anchored themselves
for z in $ZONES $ORGS; do
	printf '%s IN NS ns1.%s.dime.test.\nns1.%s IN A 127.0.0.1\n' "$z" "$z" "$z" >>dime.test.zone
done
sign dime.test "$IN" "$EX"
# a TXT record larger than 512 bytes: UDP truncates, the resolver retries over TCP
big=$(head -c 1500 /dev/zero | tr '\0' 'x' | fold -w 200 | sed 's/.*/"&"/' | tr '\n' ' ')
echo "_big IN TXT $big" >>big.dime.test.zone
sign good.dime.test "$IN" "$EX"
sign big.dime.test "$IN" "$EX"
for z in $ORGS; do sign "$z.dime.test" "$IN" "$EX"; done
sign bogus.dime.test "$IN" "$EX"
# tamper after signing: the signature no longer matches -> bogus
sed -i 's/pol=strict/pol=experimental/' bogus.dime.test.zone.signed
sign expired.dime.test "$OIN" "$OEX"
# an anchor for a zone served unsigned -> bogus
ldns-keygen -k -a ECDSAP256SHA256 unsigned.dime.test >/dev/null
cat Kunsigned.dime.test.*.ds >>ta.ds
cp unsigned.dime.test.zone unsigned.dime.test.zone.signed
# no anchor at all -> insecure
cp insecure.dime.test.zone insecure.dime.test.zone.signed

# a free port: the first one nsd binds
for try in 1 2 3 4 5 6 7 8; do
	port=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000))
	cat >nsd.conf <<C
server:
    ip-address: 127.0.0.1@$port
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "$D"
    database: ""
    pidfile: "$D/nsd.pid"
    logfile: "$D/nsd.log"
    xfrdfile: "$D/xfrd.state"
    zonelistfile: "$D/zone.list"
    server-count: 1
    verbosity: 1
remote-control:
    control-enable: no
C
	for z in $ZONES $ORGS; do
		printf 'zone:\n    name: "%s.dime.test"\n    zonefile: "%s.dime.test.zone.signed"\n' \
			"$z" "$z" >>nsd.conf
	done
	printf 'zone:\n    name: "dime.test"\n    zonefile: "dime.test.zone.signed"\n' >>nsd.conf
	nsd-checkconf nsd.conf
	rm -f nsd.pid
	if nsd -c nsd.conf 2>>nsd.log; then
		i=0
		while [ $i -lt 50 ]; do
			if dig +short +time=1 +tries=1 @127.0.0.1 -p "$port" good.dime.test SOA \
				2>/dev/null | grep -q ns1; then
				break
			fi
			sleep 0.1
			i=$((i + 1))
		done
		if [ -s nsd.pid ] && kill -0 "$(cat nsd.pid)" 2>/dev/null; then
			break
		fi
	fi
	port=""
done
[ -n "$port" ] || {
	echo "mkzones: nsd did not start" >&2
	cat nsd.log >&2
	exit 1
}
echo "$port" >port
# .test is a built-in local zone in unbound (RFC 6761): only a config file can undo it
{
	printf 'server:\n    do-ip6: no\n    do-not-query-localhost: no\n'
	printf '    local-zone: "test." nodefault\n    edns-buffer-size: 512\n'
	for z in $ZONES $ORGS; do
		printf 'stub-zone:\n    name: "%s.dime.test."\n    stub-addr: 127.0.0.1@%s\n' "$z" "$port"
	done
	printf 'stub-zone:\n    name: "dime.test."\n    stub-addr: 127.0.0.1@%s\n' "$port"
} >unbound.conf

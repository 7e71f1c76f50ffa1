#!/usr/bin/env bash
# dime send and dime resolve --signets over nsd's DNSSEC zones (tests/dns/mkzones.sh): the
# destination good.dime.test publishes its own POK and is served by a dimed on 127.0.0.1; a
# sender store hosts alice@a.example. A send queues one message per recipient with the right
# envelope and keeps the fetched signets; a second send uses them without asking the
# destination; strict policy to a legacy domain refuses; a bogus zone defers (75).
set -u
source "$(dirname "$0")/lib.sh" "$@"
ZONES=$(cd "$(dirname "$0")/../dns" && pwd)/mkzones.sh
DIME=$(cd "$(dirname "$DIME")" && pwd)/$(basename "$DIME")
DIMED=$(dirname "$DIME")/dimed
[ -x "$DIMED" ] || { echo "no dimed next to $DIME: skip"; exit 77; }
command -v openssl >/dev/null || { echo "no openssl: skip"; exit 77; }
command -v nsd >/dev/null && command -v ldns-signzone >/dev/null ||
	{ echo "no nsd or ldnsutils: skip"; exit 77; }
unset DIME_STORE
W=$TMP/w
mkdir -p "$W/z"
cd "$W" || exit 1

# the destination: its org first, so that the zone can publish its POK
"$DIME" --store dst.db org create good.dime.test >org.out 2>/dev/null &&
	"$DIME" --store dst.db user create bob@good.dime.test >/dev/null 2>&1 ||
	{ fail "cannot make the destination store"; done_tests; }
POK=$(grep -o 'pok=[^ "]*' org.out | head -1 | cut -d= -f2)
if ! MKZONES_POK=$POK sh "$ZONES" "$W/z" >z/mkzones.log 2>&1; then
	cat z/mkzones.log >&2
	fail "mkzones.sh did not start nsd"
	done_tests
fi
PID=
stop_all() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	[ -f z/nsd.pid ] && kill "$(cat z/nsd.pid)" 2>/dev/null
}
trap 'stop_all; rm -rf "$TMP"' EXIT

openssl req -x509 -newkey rsa:2048 -nodes -keyout d.key -out d.pem -days 2 \
	-subj "/CN=dmtp.good.dime.test" >/dev/null 2>&1 || fail "certificate"
cat >d.conf <<EOF
hostname = dmtp.good.dime.test
listen = 127.0.0.1:0 dmtp
store = $W/dst.db
spool = $W/dspool
maildir_root = $W/mail
key_process = no
[tls]
cert = $W/d.pem
key = $W/d.key
EOF
"$DIMED" --config d.conf --ports-file ports </dev/null >/dev/null 2>>dimed.log &
PID=$!
for _ in $(seq 200); do [ -s ports ] && break; sleep 0.05; done
PORT=$(sed -n 1p ports)
[ -n "$PORT" ] || { fail "dimed did not start: $(tail -3 dimed.log)"; done_tests; }

# the sender
"$DIME" --store src.db org create a.example >/dev/null 2>&1 &&
	"$DIME" --store src.db user create alice@a.example >/dev/null 2>&1 ||
	fail "cannot make the sender store"
ORIGINFP=$("$DIME" --store src.db store list | awk '$1=="a.example" && $2=="org-signet" {print $6}')
sconf() { # POLICY
	cat <<EOF
hostname = mx.a.example
store = $W/src.db
outq = $W/outq
policy = $1
dns_config = $W/z/unbound.conf
trust_anchor = $W/z/ta.ds
dns_timeout = 5s
dx_port = $PORT
connect_timeout = 5s
EOF
}
sconf strict >s.conf
mail() { printf 'From: alice@a.example\r\nTo: bob@good.dime.test\r\nSubject: %s\r\n\r\nhi\r\n' "$1"; }
conns() { grep -c 'event=conn.open' dimed.log; }

# resolve --signets: the record, the host, both signets fetched and validated
expect 0 '^org: .*\(dnssec, fetched\)' -- \
	"$DIME" resolve --signets --config s.conf good.dime.test
expect 0 '"user_source":"fetched"' -- \
	"$DIME" resolve --signets --config s.conf bob@good.dime.test --json
expect 0 '^user: .*\(cached\)' -- "$DIME" resolve --signets --config s.conf bob@good.dime.test
expect 1 '^signets: +notfound' -- "$DIME" resolve --signets --config s.conf nobody@good.dime.test
"$DIME" --store src.db store list >list.out
grep -qE '^bob@good.dime.test +user-signet +v1 +- +verified' list.out ||
	grep -qE '^bob@good.dime.test +user-signet .*verified' list.out ||
	fail "the fetched user signet is not in the store: $(cat list.out)"
grep -qE '^good.dime.test +org-signet .*verified' list.out ||
	fail "the fetched org signet is not in the store: $(cat list.out)"
DESTFP=$(awk '$1=="good.dime.test" && $2=="org-signet" {print $NF}' list.out)

# send: queued, with the envelope fixed at wrap time
rm -rf outq
before=$(conns)
[ "$before" -gt 0 ] || fail "the destination's log counts no connection of resolve --signets"
out=$(mail one | "$DIME" send --config s.conf --from alice@a.example --to bob@good.dime.test) &&
	rc=0 || rc=$?
[ "$rc" = 0 ] || fail "send: exit $rc: $out"
ID=$(awk '$1=="queued" && $3=="bob@good.dime.test" {print $2}' <<<"$out")
[ -n "$ID" ] && [ -f "outq/msg/$ID" ] || fail "send: no queue file for '$ID': $out"
if [ -n "$ID" ] && [ -f "outq/msg/$ID" ]; then
	for l in "origin a.example" "origin-fp $ORIGINFP" "author alice@a.example" \
		"recipient bob@good.dime.test" "destination-fp $DESTFP"; do
		grep -qxF "$l" "outq/msg/$ID" || fail "envelope: no line '$l'"
	done
	grep -q 'BEGIN ENCRYPTED MESSAGE' "outq/msg/$ID" || fail "the queued message is not armored"
fi
# the signets were fresh in the store: the destination was not asked
[ "$(conns)" = "$before" ] || fail "send asked the destination although its signets were fresh"
# a second send, and the destination is opened as bob can: the message is his
out=$(mail two | "$DIME" send --config s.conf --from alice@a.example --to bob@good.dime.test)
[ "$(conns)" = "$before" ] || fail "the second send asked the destination"
[ "$(ls outq/msg | wc -l)" = 2 ] || fail "two sends: $(ls outq/msg | wc -l) queued"

# strict policy to a legacy domain: refused, nothing queued
expect 1 '^refused x@absent.dime.test' -- sh -c "printf 'x\n' | '$DIME' send --config s.conf \
	--from alice@a.example --to x@absent.dime.test"
# a bogus zone: deferred, 75
expect 75 '^deferred x@bogus.dime.test' -- sh -c "printf 'x\n' | '$DIME' send --config s.conf \
	--from alice@a.example --to x@bogus.dime.test"
# mixed policy to legacy: naked, nothing queued (the SMTP gateway's job), exit 1
sconf mixed >m.conf
expect 1 '^naked x@absent.dime.test' -- sh -c "printf 'x\n' | '$DIME' send --config m.conf \
	--from alice@a.example --to x@absent.dime.test"
# a recipient without a signet at a strict destination: refused
expect 1 '^refused nobody@good.dime.test' -- sh -c "printf 'x\n' | '$DIME' send --config s.conf \
	--from alice@a.example --to nobody@good.dime.test"
[ "$(ls outq/msg | wc -l)" = 2 ] || fail "a refused, naked or deferred send queued something"

# --in: every mail of a directory, per recipient; a link leading out of it is refused by name
mkdir in && mail a >in/a && mail b >in/b && ln -s /etc/hostname in/c
out=$("$DIME" send --config s.conf --from alice@a.example --to bob@good.dime.test \
	--to nobody@good.dime.test --in in --workers 2) && fail "send --in with a refusal exited 0"
[ "$(grep -c '^queued [^ ]* bob@good.dime.test [ab]$' <<<"$out")" = 2 ] ||
	fail "send --in: two mails not queued by name: $out"
grep -q '^refused bob@good.dime.test c: ' <<<"$out" || fail "send --in: the link was not refused: $out"
grep -q '^refused nobody@good.dime.test: ' <<<"$out" || fail "send --in: nobody not refused: $out"
[ "$(ls outq/msg | wc -l)" = 4 ] || fail "send --in: $(ls outq/msg | wc -l) queued, want 4"
for id in $(awk '$1=="queued" {print $2}' <<<"$out"); do
	grep -q '^recipient bob@good.dime.test$' "outq/msg/$id" || fail "send --in: $id envelope"
done

# usage and setup errors
expect 2 '' -- "$DIME" send --config s.conf --from alice@a.example --to b@good.dime.test \
	--workers 2
expect 2 '' -- "$DIME" send --config s.conf --from alice@a.example
expect 2 '' -- sh -c "printf 'x\n' | '$DIME' send --config s.conf --from bob@good.dime.test \
	--to bob@good.dime.test"
expect 2 '' -- "$DIME" send --config nope.conf --from alice@a.example --to b@good.dime.test
expect 0 'usage: dime send' -- "$DIME" send --help
done_tests

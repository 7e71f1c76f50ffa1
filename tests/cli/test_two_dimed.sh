#!/bin/bash
# Two dimed instances on loopback deliver to each other (issue 12): alpha.dime.test on
# 127.0.0.1 and beta.dime.test on 127.0.0.2, each with its own store, certificate and
# management record (tls= signed over its certificate, dx= its host), published in DNSSEC-signed
# zones that nsd serves (tests/dns/mkzones.sh). `dime send` resolves the destination, fetches
# and validates its signets over DMTP, wraps and queues; the sender's dimed delivers over DMTP;
# the destination accepts into its Maildir; opening there as the recipient gives the original
# bytes. Then: the destination down while messages are queued and the sender killed with -9:
# once both are back, every message arrives exactly once; and a destination whose certificate
# does not match its record never receives anything until it serves the right one.
# Args: DIME_BINARY INTEROP_DIR; dimed is next to dime.
source "$(dirname "$0")/lib.sh" "$@"
DIME=$(cd "$(dirname "$DIME")" && pwd)/$(basename "$DIME")
DIMED=$(dirname "$DIME")/dimed
ZONES=$(cd "$(dirname "$0")/../dns" && pwd)/mkzones.sh
[ -x "$DIMED" ] || { echo "no dimed next to $DIME: skip"; exit 77; }
unset DIME_STORE
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	[ -f "$TMP/z/nsd.pid" ] && kill "$(cat "$TMP/z/nsd.pid")" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

# A port free on both addresses: each instance listens on its own address, the same dx port.
for try in 1 2 3 4 5 6 7 8; do
	PORT=$((20000 + RANDOM % 40000))
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && continue
	(exec 3<>"/dev/tcp/127.0.0.2/$PORT") 2>/dev/null && continue
	break
done

# org DIR DOMAIN ADDR USER: a store hosting DOMAIN and USER, a certificate for dx.DOMAIN, the
# record line for the zone file.
org() {
	local dir=$1 domain=$2 addr=$3 user=$4
	mkdir -p "$TMP/$dir"
	(
		cd "$TMP/$dir" || exit 1
		"$DIME" --store var/dime.db org create "$domain" >/dev/null 2>&1 &&
			"$DIME" --store var/dime.db user create "$user@$domain" >/dev/null 2>&1 &&
			openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2 \
				-subj "/CN=dx.$domain" -addext "subjectAltName=DNS:dx.$domain" \
				>/dev/null 2>&1 &&
			openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem \
				-days 2 -subj "/CN=dx.$domain" -addext "subjectAltName=DNS:dx.$domain" \
				>/dev/null 2>&1 &&
			"$DIME" --store var/dime.db mrec generate --org "$domain" --tls-cert cert.pem \
				--dx "dx.$domain" --pol mixed >record.txt
	) || { fail "cannot set up $domain"; done_tests; }
	{
		printf '%s %s\n' "$domain" "$(cat "$TMP/$dir/record.txt")"
		printf '%s dx.%s. IN A %s\n' "$domain" "$domain" "$addr"
	} >>"$TMP/zones.extra"
	cat >"$TMP/$dir/dimed.conf" <<EOF
hostname = dx.$domain
listen = $addr:$PORT dmtp
workers = 2
outbound_workers = 2
dx_port = $PORT
mx_ports = 1 1
dns_config = $TMP/z/unbound.conf
trust_anchor = $TMP/z/ta.ds
dns_timeout = 5s
connect_timeout = 5s
outq_first_retry = 1s
outq_max_interval = 2s
[tls]
cert = $TMP/$dir/cert.pem
key = $TMP/$dir/key.pem
EOF
}
org a alpha.dime.test 127.0.0.1 alice
org b beta.dime.test 127.0.0.2 bob
mkdir "$TMP/z"
if ! MKZONES_ORGS="alpha beta" sh "$ZONES" "$TMP/z" "$TMP/zones.extra" >"$TMP/z/mkzones.log" 2>&1; then
	cat "$TMP/z/mkzones.log" >&2
	fail "mkzones.sh did not start nsd"
	done_tests
fi

declare -A PID
start() { # DIR: start DIR's dimed and wait until it listens (its ports file appears)
	rm -f "$TMP/$1/ports"
	(cd "$TMP/$1" && exec "$DIMED" --config dimed.conf --ports-file ports) >>"$TMP/$1/dimed.log" 2>&1 &
	PID[$1]=$!
	PIDS+=("$!")
	for _ in $(seq 100); do
		[ -s "$TMP/$1/ports" ] && return
		kill -0 "${PID[$1]}" 2>/dev/null || break
		sleep 0.1
	done
	fail "dimed $1 did not start: $(tail -5 "$TMP/$1/dimed.log")"
	done_tests
}
stop() { # DIR
	kill "${PID[$1]}" 2>/dev/null
	wait "${PID[$1]}" 2>/dev/null
}
mail() { # FROM TO SUBJECT
	printf 'From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n\r\nHello from %s.\r\n' \
		"$1" "$2" "$3" "$RANDOM$RANDOM" "$1"
}
# send DIR FROM TO SUBJECT: queue one message at DIR's instance; the mail kept in DIR/sent/.
send() {
	mkdir -p "$TMP/$1/sent"
	mail "$2" "$3" "$4" >"$TMP/$1/sent/$4.eml"
	(cd "$TMP/$1" && "$DIME" send --config dimed.conf --from "$2" --to "$3" \
		<"sent/$4.eml") >"$TMP/$1/send.out" 2>&1 ||
		fail "send $4: $(cat "$TMP/$1/send.out")"
	grep -q '^queued ' "$TMP/$1/send.out" || fail "send $4 did not queue: $(cat "$TMP/$1/send.out")"
}
# arrived DIR DOMAIN USER N: wait (30 s at most) until USER's Maildir holds N messages.
arrived() {
	local box=$TMP/$1/var/mail/$2/$3/new n=0
	for _ in $(seq 300); do
		n=$(find "$box" -type f 2>/dev/null | wc -l)
		[ "$n" -ge "$4" ] && break
		sleep 0.1
	done
	[ "$n" -eq "$4" ] || fail "$3@$2 has $n messages, want $4"
}
# opened DIR USER@DOMAIN SENT_DIR: every message in the Maildir opens as the recipient to one of
# the mails sent, byte for byte, and each mail sent arrived once.
opened() {
	local f out ok=0
	for f in "$TMP/$1/var/mail/${2#*@}/${2%@*}/new"/*; do
		out=$(cd "$TMP/$1" && "$DIME" msg open --as recipient --config dimed.conf <"$f" | sha256sum)
		grep -qF "${out%% *}" "$TMP/$3.sums" || fail "$f does not open to a mail that was sent"
		ok=$((ok + 1))
	done
	[ "$ok" -eq "$(wc -l <"$TMP/$3.sums")" ] || fail "$2: $ok opened, $(wc -l <"$TMP/$3.sums") sent"
}
sums() { (cd "$TMP/$1/sent" && for f in ./*.eml; do sha256sum <"$f"; done) >"$TMP/$1.sums"; }

start a
start b

# 1. each way. bob's store has never seen alice: opening needs her user signet, which
# `msg open --config` fetches from alpha and validates (without it the open fails, naming her)
send a alice@alpha.dime.test bob@beta.dime.test one
arrived b beta.dime.test bob 1
f1=$(ls "$TMP"/b/var/mail/beta.dime.test/bob/new/*)
(cd "$TMP/b" && "$DIME" --store var/dime.db msg open --as recipient <"$f1") >/dev/null \
	2>"$TMP/open.err" && fail "bob opened alice's mail without her signet"
grep -q 'alice@alpha.dime.test' "$TMP/open.err" || fail "open did not name alice: $(cat "$TMP/open.err")"
(cd "$TMP/b" && "$DIME" msg open --as recipient --config dimed.conf <"$f1") >"$TMP/one.opened" \
	2>"$TMP/open.err" || fail "open --config: $(cat "$TMP/open.err")"
cmp -s "$TMP/one.opened" "$TMP/a/sent/one.eml" || fail "open --config: not what alice sent"
grep -q 'fetched and validated the signets of alice@alpha.dime.test' "$TMP/open.err" ||
	fail "open --config did not say it fetched alice: $(cat "$TMP/open.err")"
send b bob@beta.dime.test alice@alpha.dime.test two
arrived a alpha.dime.test alice 1
sums a
sums b
opened b bob@beta.dime.test a
opened a alice@alpha.dime.test b
# the destination's signets were fetched and validated over DNSSEC, and are now in the store
(cd "$TMP/a" && "$DIME" --store var/dime.db store list) | grep -q '^beta.dime.test .*org-signet' ||
	fail "beta's org signet is not in alpha's store"

# 2. the destination down with messages queued, the sender killed with -9, both back
stop b
for s in three four five; do send a alice@alpha.dime.test bob@beta.dime.test "$s"; done
sleep 2 # attempts against the closed port: deferred
(cd "$TMP/a" && "$DIME" queue list --config dimed.conf) >"$TMP/q.json" || fail "queue list"
[ "$(grep -c '"queue_id"' "$TMP/q.json")" -eq 3 ] || fail "queue list: $(cat "$TMP/q.json")"
kill -9 "${PID[a]}"
wait "${PID[a]}" 2>/dev/null
start b
start a
arrived b beta.dime.test bob 4
sums a
sleep 2 # nothing more may come: every message exactly once
arrived b beta.dime.test bob 4
opened b bob@beta.dime.test a

# 3. the destination serves a certificate its record does not sign: nothing is sent to it
stop b
sed -i "s#^cert = .*#cert = $TMP/b/other.pem#; s#^key = .*#key = $TMP/b/other.key#" "$TMP/b/dimed.conf"
start b
send a alice@alpha.dime.test bob@beta.dime.test six
sleep 3
arrived b beta.dime.test bob 4
(cd "$TMP/a" && "$DIME" queue list --config dimed.conf) >"$TMP/q.json"
grep -q 'certificate' "$TMP/q.json" || fail "the queue does not say why: $(cat "$TMP/q.json")"
stop b
sed -i "s#^cert = .*#cert = $TMP/b/cert.pem#; s#^key = .*#key = $TMP/b/key.pem#" "$TMP/b/dimed.conf"
start b
arrived b beta.dime.test bob 5
sums a
opened b bob@beta.dime.test a

stop a
stop b
done_tests

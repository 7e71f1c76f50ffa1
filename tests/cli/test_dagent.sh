#!/bin/bash
# The delivery agent between two dimeds on loopback (docs/delivery.md "Delivery agent"): A hosts
# alpha.example and delivers its outbound queue over DMTP to B, hosting beta.example, found
# through a static DNS file (the _dime record with dx= and a tls= signature over B's certificate,
# an A record). Cases: delivered (254, B's Maildir, opened as bob gives the original bytes);
# a message put while A runs, picked up on SIGUSR1; a resend of a delivered message answered 255
# and counted once; B down (deferred), A killed -9 with messages queued, B back: every message
# delivered exactly once after A's restart; a record whose tls= does not match B's certificate
# (never delivered, deferred with the reason); a 5xx (bounced to alice's Maildir as a delivery
# report carrying the ciphertext); dime queue list/show/retry/delete beside the running A.
# The queue files are written here in the queue's format (docs/outq.md) from `dime msg wrap
# --origin-sign` output. Args: DIME_BINARY INTEROP_DIR; dimed is next to dime.
source "$(dirname "$0")/lib.sh" "$@"
DIME=$(cd "$(dirname "$DIME")" && pwd)/$(basename "$DIME")
DIMED=$(dirname "$DIME")/dimed
[ -x "$DIMED" ] || { echo "no dimed next to $DIME: skip"; exit 77; }
command -v openssl >/dev/null || { echo "no openssl: skip"; exit 77; }
unset DIME_STORE

W=$TMP/w
mkdir -p "$W/a" "$W/b"
cd "$W" || exit 1
SA=$W/a/a.db
SB=$W/b/b.db
{
	"$DIME" --store "$SA" org create alpha.example >alpha.txt &&
		"$DIME" --store "$SA" user create alice@alpha.example >alice.signet &&
		"$DIME" --store "$SB" org create beta.example >beta.txt &&
		"$DIME" --store "$SB" user create bob@beta.example >bob.signet &&
		"$DIME" --store "$SB" store export beta.example >beta.signet &&
		"$DIME" --store "$SA" store import beta.signet bob.signet \
			--pok "$(sed 's/.* pok=\([^ "]*\).*/\1/' beta.txt)" &&
		"$DIME" --store "$SA" store export alpha.example >alpha.signet &&
		"$DIME" --store "$SB" store import alpha.signet alice.signet \
			--pok "$(sed 's/.* pok=\([^ "]*\).*/\1/' alpha.txt)"
} >/dev/null 2>setup.err || { fail "cannot make the stores: $(tail -3 setup.err)"; done_tests; }
fp_of() { "$DIME" --store "$1" store list 2>/dev/null | awk -v d="$2" '$1==d && $2=="org-signet" {print $6}'; }
FPA=$(fp_of "$SA" alpha.example)
FPB=$(fp_of "$SB" beta.example)
[ -n "$FPA" ] && [ -n "$FPB" ] || { fail "no org fingerprints"; done_tests; }

for n in a b wrong; do
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$n.key" -out "$n.pem" -days 2 \
		-subj "/CN=dx.$n.example" >/dev/null 2>&1 || fail "certificate $n"
done
# B's record, and one for delta.example signed over a certificate B does not have.
rec() { # DOMAIN CERT -> a static DNS line for _dime.DOMAIN
	"$DIME" --store "$SB" mrec generate --org beta.example --dx dx.beta.example --tls-cert "$2" |
		sed "s/^_dime[^ ]* IN TXT /_dime.$1 300 TXT /"
}
{
	rec beta.example b.pem
	rec gamma.example b.pem
	rec delta.example wrong.pem
	echo "dx.beta.example 300 A 127.0.0.1"
} >dns.txt || fail "records"
grep -q '^_dime.beta.example 300 TXT "ver=1 .*tls=' dns.txt || fail "record: $(head -1 dns.txt)"
: >empty-dns.txt

conf() { # NAME STORE CERT [extra lines]
	cat <<EOF
hostname = dx.$1.example
store = $2
spool = $W/$1/spool
maildir_root = $W/$1/mail
outq = $W/$1/outq
listen = 127.0.0.1:0 dmtp
workers = 2
outbound_workers = 2
outq_first_retry = 1s
connect_timeout = 5s
$4
[tls]
cert = $W/$3.pem
key = $W/$3.key
EOF
}
conf b "$SB" b "dns_static = $W/empty-dns.txt" >b.conf

PIDA= PIDB=
trap '[ -n "$PIDA" ] && kill -9 "$PIDA" 2>/dev/null; [ -n "$PIDB" ] && kill -9 "$PIDB" 2>/dev/null; rm -rf "$TMP"' EXIT
start() { # NAME: start dimed NAME, set PIDx and (for b) PORTB
	rm -f "$1.ports"
	"$DIMED" --config "$1.conf" --ports-file "$1.ports" 2>>"$1.log" &
	eval "PID${1^^}=$!"
	for _ in $(seq 400); do [ -s "$1.ports" ] && break; sleep 0.05; done
	[ -s "$1.ports" ] || { fail "dimed $1 did not start: $(tail -3 "$1.log")"; done_tests; }
}
stop() { # NAME: SIGTERM, wait
	local p
	eval "p=\$PID${1^^}"
	[ -n "$p" ] && kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
	eval "PID${1^^}="
}
# until SECONDS COMMAND...: poll the condition, 50 ms apart, up to SECONDS.
until_ok() {
	local n=$(($1 * 20))
	shift
	for _ in $(seq "$n"); do "$@" && return 0; sleep 0.05; done
	return 1
}
count() { find "$1" -type f 2>/dev/null | wc -l; }
has_count() { [ "$(count "$1")" = "$2" ]; }
queue_empty() { [ -z "$(ls "$OUTQ/msg")" ]; }
BOX=$W/b/mail/beta.example/bob/new
ABOX=$W/a/mail/alpha.example/alice/new
OUTQ=$W/a/outq

# qput RCPT FILE [ID]: queue FILE (armored) for RCPT the way dime_outq_put does: tmp/, rename.
qput() {
	local id=${3:-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')}
	mkdir -p "$OUTQ/tmp" "$OUTQ/msg" "$OUTQ/state"
	{
		printf 'DIMEOUTQ 2\norigin alpha.example\norigin-fp %s\nauthor alice@alpha.example\n' "$FPA"
		printf 'recipient %s\ndestination-fp %s\ncreated %s\n\n' "$1" "$FPB" "$(date +%s)"
		cat "$2"
	} >"$OUTQ/tmp/$id.q" && mv "$OUTQ/tmp/$id.q" "$OUTQ/msg/$id"
	echo "$id"
}
N=0
wrap() { # NAME: a new message from alice to bob in NAME.eml / NAME.dime
	printf 'From: alice@alpha.example\r\nTo: bob@beta.example\r\nSubject: %s\r\n\r\nHello %s.\r\n' \
		"$1" "$1" >"$1.eml"
	"$DIME" --store "$SA" msg wrap --from alice@alpha.example --to bob@beta.example \
		--origin-sign <"$1.eml" >"$1.dime" || fail "wrap $1"
}

# ---- delivered: queued before A starts, 254, opened at B ----
start b
PORTB=$(sed -n 1p b.ports)
conf a "$SA" a "dns_static = $W/dns.txt
dx_port = $PORTB" >a.conf
wrap m1
ID1=$(qput bob@beta.example m1.dime)
cp "$OUTQ/msg/$ID1" m1.queued # for the resend below
start a
until_ok 30 has_count "$BOX" 1 || fail "m1 not delivered: $(grep outq a.log | tail -3)"
grep -q "event=outq.delivered id=$ID1 rcpt=bob@beta.example host=.* code=254" a.log ||
	fail "no outq.delivered code=254 line: $(grep outq a.log | tail -3)"
until_ok 10 test ! -e "$OUTQ/msg/$ID1" || fail "m1 still queued after 254"
f=$(find "$BOX" -type f | head -1)
"$DIME" --store "$SB" msg open --as recipient <"$f" >m1.opened 2>/dev/null && cmp -s m1.eml m1.opened ||
	fail "m1 as opened by bob differs from what alice wrote"

# ---- put while A runs, SIGUSR1 ----
wrap m2
ID2=$(qput bob@beta.example m2.dime)
kill -USR1 "$PIDA"
until_ok 30 has_count "$BOX" 2 || fail "m2 not delivered after SIGUSR1"

# ---- a resend of m1 (a crash between DATA and the queue's bookkeeping): 255, counted once ----
cp m1.queued "$OUTQ/tmp/r" && mv "$OUTQ/tmp/r" "$OUTQ/msg/$ID1"
kill -USR1 "$PIDA"
until_ok 30 grep -q "event=outq.delivered id=$ID1 .*code=255" a.log ||
	fail "the resend did not get 255: $(grep outq a.log | tail -3)"
has_count "$BOX" 2 || fail "the resend made a second copy ($(count "$BOX"))"

# ---- B down: deferred; kill -9 A with messages queued; B back: each delivered once ----
stop b
for i in 3 4 5; do wrap "m$i"; qput bob@beta.example "m$i.dime" >/dev/null; done
kill -USR1 "$PIDA"
n_deferred() { [ "$("$DIME" queue list --config a.conf | grep -c '"queue_name":"deferred"')" = 3 ]; }
until_ok 30 n_deferred || fail "B down: not deferred: $(grep outq a.log | tail -3)"
out=$("$DIME" queue list --config a.conf)
[ "$(grep -c '"queue_name":"deferred"' <<<"$out")" = 3 ] || fail "queue list: $out"
grep -q '"delay_reason":"no host of beta.example reachable' <<<"$out" || fail "delay reason: $out"
kill -9 "$PIDA"
wait "$PIDA" 2>/dev/null
PIDA=
start b
# B listens on a new port: A's configuration follows it
PORTB=$(sed -n 1p b.ports)
conf a "$SA" a "dns_static = $W/dns.txt
dx_port = $PORTB" >a.conf
start a
until_ok 60 has_count "$BOX" 5 || fail "after kill -9 and B back: $(count "$BOX") of 5"
until_ok 10 queue_empty || fail "left in the queue: $(ls "$OUTQ/msg")"
sleep 0.5 # nothing more may arrive (a condition cannot show an absence)
has_count "$BOX" 5 || fail "a message arrived twice ($(count "$BOX"))"

# ---- the certificate does not match the record: never delivered, deferred with the reason ----
wrap m6
ID6=$(qput bob@delta.example m6.dime)
"$DIME" queue retry "$ID6" --config a.conf >/dev/null 2>q.err || fail "queue retry: $(cat q.err)"
grep -q "signalled dimed" q.err || fail "queue retry did not signal dimed: $(cat q.err)"
until_ok 30 grep -q "event=outq.tls_mismatch domain=delta.example" a.log ||
	fail "no tls mismatch logged: $(grep outq a.log | tail -3)"
until_ok 10 grep -q "event=outq.deferred id=$ID6 " a.log || fail "m6 not deferred"
out=$("$DIME" queue show "$ID6" --config a.conf)
grep -q '"delay_reason":"certificate of dx.beta.example:[0-9]* matches no tls= value' <<<"$out" ||
	fail "queue show: $out"
has_count "$BOX" 5 || fail "a message went to a host whose certificate did not match"
expect 0 "deleted $ID6" -- "$DIME" queue delete "$ID6" --config a.conf
expect 1 "" -- "$DIME" queue show "$ID6" --config a.conf

# ---- 5xx: bounced at once to alice, the ciphertext attached ----
wrap m7
ID7=$(qput bob@gamma.example m7.dime)
kill -USR1 "$PIDA"
until_ok 30 has_count "$ABOX" 1 || fail "no bounce for m7: $(grep "$ID7" a.log | tail -3)"
grep -q "event=outq.bounced id=$ID7 " a.log || fail "no outq.bounced line"
b=$(find "$ABOX" -type f | head -1)
grep -q '^Action: failed' "$b" && grep -q '^Content-Type: multipart/report; report-type=delivery-status' "$b" &&
	grep -q '^From: Mail Delivery System <MAILER-DAEMON@alpha.example>' "$b" &&
	grep -q '^Diagnostic-Code: X-Dime; .* said 5[0-9][0-9] ' "$b" || fail "bounce: $(head -40 "$b")"
grep -qF "$(sed -n 2p m7.dime)" "$b" || fail "the bounce does not carry the queued message"
grep -q 'Hello m7' "$b" && fail "the bounce carries plaintext"
has_count "$BOX" 5 || fail "m7 was delivered"
until_ok 10 queue_empty || fail "m7 still queued after its bounce"

# ---- stats at shutdown; nothing of the messages in the logs ----
stop a
grep -q 'event=outq.stats delivered=3 duplicates=0 .*bounced=1 ' a.log ||
	fail "stats: $(grep outq.stats a.log)"
grep -q 'Hello m' a.log b.log && fail "message text in a log"
stop b
done_tests

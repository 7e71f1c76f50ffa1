#!/bin/bash
# A slow origin fetch does not stall DATA (docs/dimed.md "Lookups"): dimed B (beta.example,
# workers = 1, lookup_workers = 1) gets MAIL FROM an origin it does not know (gamma.example),
# whose record in B's static DNS names a dx host where a listener accepts and then says nothing:
# the fetch hangs in its TLS handshake (connect_timeout 60 s) on the lookup worker. A second
# session from alpha.example (whose org signet B holds) got as far as DATA's 354 before that;
# while the MAIL waits for its reply, it sends its message to bob and gets 254: the fetch holds
# the lookup worker, not the one CPU worker the DATA verification needs. Then the silent
# listener dies: the fetch fails at once (long before connect_timeout), the waiting MAIL gets
# 470, and B stops cleanly on SIGTERM.
# A whole transaction from alpha started while the fetch hangs (MAIL, RCPT: store lookups on the
# CPU worker; only a fetch goes to the lookup workers) gets its 254 too.
# Args: DIME_BINARY INTEROP_DIR; dimed is next to dime.
source "$(dirname "$0")/lib.sh" "$@"
DIME=$(cd "$(dirname "$DIME")" && pwd)/$(basename "$DIME")
DIMED=$(dirname "$DIME")/dimed
[ -x "$DIMED" ] || { echo "no dimed next to $DIME: skip"; exit 77; }
command -v openssl >/dev/null || { echo "no openssl: skip"; exit 77; }
command -v python3 >/dev/null || { echo "no python3: skip"; exit 77; }
unset DIME_STORE

W=$TMP/w
mkdir -p "$W/b"
cd "$W" || exit 1
SA=$W/a.db
SB=$W/b/b.db
SG=$W/g.db
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
			--pok "$(sed 's/.* pok=\([^ "]*\).*/\1/' alpha.txt)" &&
		"$DIME" --store "$SG" org create gamma.example >gamma.txt
} >/dev/null 2>setup.err || { fail "cannot make the stores: $(tail -3 setup.err)"; done_tests; }
fp_of() { "$DIME" --store "$1" store list 2>/dev/null | awk -v d="$2" '$1==d && $2=="org-signet" {print $6}'; }
FPG=$(fp_of "$SG" gamma.example)
[ -n "$FPG" ] || { fail "no fingerprint for gamma.example"; done_tests; }
"$DIME" --store "$SB" store list 2>/dev/null | grep -q '^gamma.example ' &&
	{ fail "B's store knows gamma.example already"; done_tests; }

for n in b g; do
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$n.key" -out "$n.pem" -days 2 \
		-subj "/CN=dx.$n.example" >/dev/null 2>&1 || fail "certificate $n"
done
# gamma's record (its dx host on loopback) in B's static DNS; alpha needs none (B holds it).
{
	"$DIME" --store "$SG" mrec generate --org gamma.example --dx dx.gamma.example --tls-cert g.pem |
		sed "s/^_dime[^ ]* IN TXT /_dime.gamma.example 300 TXT /"
	echo "dx.gamma.example 300 A 127.0.0.1"
} >dns.txt || fail "records"
grep -q '^_dime.gamma.example 300 TXT "ver=1 ' dns.txt || fail "record: $(head -1 dns.txt)"

# The silent dx host: accepts, notes each connection in silent.log, never reads or writes.
cat >silent.py <<'PY'
import os, socket, sys
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.bind(("127.0.0.1", 0))
ls.listen(8)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(ls.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
held = []
while True:
    c, _ = ls.accept()
    held.append(c)
    with open(sys.argv[2], "a") as f:
        f.write("accepted\n")
PY

PIDB='' PIDS='' PID1='' PID2=''
cleanup() {
	for p in $PIDB $PIDS $PID1 $PID2; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT
# until_ok SECONDS COMMAND...: poll the condition, 50 ms apart, up to SECONDS.
until_ok() {
	local n=$(($1 * 20))
	shift
	for _ in $(seq "$n"); do "$@" && return 0; sleep 0.05; done
	return 1
}
alive() { kill -0 "$1" 2>/dev/null; }
dead() { ! kill -0 "$1" 2>/dev/null; }

python3 silent.py silent.port silent.log &
PIDS=$!
until_ok 10 test -s silent.port || { fail "the silent listener did not start"; done_tests; }
SP=$(cat silent.port)

cat >b.conf <<EOF
hostname = dx.beta.example
store = $SB
spool = $W/b/spool
maildir_root = $W/b/mail
outq = $W/b/outq
listen = 127.0.0.1:0 dmtp
workers = 1
lookup_workers = 1
dns_static = $W/dns.txt
dx_port = $SP
mx_ports = 1 1
connect_timeout = 60s
[tls]
cert = $W/b.pem
key = $W/b.key
EOF
"$DIMED" --check-config --config b.conf >/dev/null 2>check.err ||
	{ fail "b.conf: $(cat check.err)"; done_tests; }
"$DIMED" --config b.conf --ports-file b.ports 2>>b.log &
PIDB=$!
until_ok 20 test -s b.ports || { fail "dimed did not start: $(tail -3 b.log)"; done_tests; }
PB=$(sed -n 1p b.ports)

# Session 2 first gets as far as DATA's 354 (its MAIL and RCPT lookups are done: alpha is known),
# the message not sent yet; its input is a FIFO held open on fd 4.
FPA=$(fp_of "$SB" alpha.example)
FPB=$(fp_of "$SB" beta.example)
printf 'From: alice@alpha.example\r\nTo: bob@beta.example\r\nSubject: meanwhile\r\n\r\nHello.\r\n' >m1.eml
"$DIME" --store "$SA" msg wrap --from alice@alpha.example --to bob@beta.example \
	--origin-sign <m1.eml >m1.dime || fail "wrap"
mkfifo s2.in
"$DIME" dmtp raw --to "127.0.0.1:$PB" --timeout 30 <s2.in >s2.out 2>s2.err &
PID2=$!
exec 4>s2.in
printf 'EHLO <s2.test>\nMAIL FROM=<alpha.example> FINGERPRINT=[%s]\nRCPT TO=<beta.example> FINGERPRINT=[%s]\nDATA\n' \
	"$FPA" "$FPB" >&4
until_ok 30 grep -q '^354 ' s2.out || fail "session 2 did not get to DATA: $(cat s2.out s2.err)"

# Session 1: MAIL from gamma, whose signet B must fetch; its reply must wait for the fetch.
printf 'EHLO <s1.test>\nMAIL FROM=<gamma.example> FINGERPRINT=[%s]\n' "$FPG" |
	"$DIME" dmtp raw --to "127.0.0.1:$PB" --timeout 90 >s1.out 2>s1.err &
PID1=$!
# the fetch is in flight (on the one lookup worker) once the silent host has a connection
until_ok 30 grep -qs accepted silent.log ||
	fail "B made no connection to gamma's dx host: $(cat s1.out s1.err; tail -3 b.log)"

# Meanwhile session 2 sends its message: the verification runs on the one CPU worker, free, and
# the message gets 254 (30 s at most).
alive "$PID2" && {
	sed -e 's/^\./../' -e '$a\' m1.dime
	printf '.\nQUIT\n'
} >&4
until_ok 30 grep -q '^254 ACCEPTED=' s2.out ||
	fail "session 2's DATA got no 254 while the fetch hung: $(cat s2.out s2.err)"
exec 4>&-
# ... and session 1 was still waiting for its MAIL reply then: two replies, the banner and
# EHLO's (whose last line is "250 OK <host>"), none for MAIL
alive "$PID1" || fail "session 1 ended before session 2's DATA was answered: $(cat s1.out s1.err)"
[ "$(grep -cE '^[0-9]{3} ' s1.out)" = 2 ] && tail -1 s1.out | grep -q '^250 OK <' ||
	fail "session 1: not just the banner and EHLO's reply: $(cat s1.out s1.err)"
grep -q 'origin.fetch' b.log && fail "a fetch ended before the silent host died: $(grep origin.fetch b.log)"
# A new transaction from alpha, MAIL to 254, while the fetch still hangs: a known origin's
# lookups do not queue behind it.
printf 'From: alice@alpha.example\r\nTo: bob@beta.example\r\nSubject: later\r\n\r\nAgain.\r\n' >m3.eml
"$DIME" --store "$SA" msg wrap --from alice@alpha.example --to bob@beta.example \
	--origin-sign <m3.eml >m3.dime || fail "wrap m3"
"$DIME" --store "$SA" dmtp send --to "127.0.0.1:$PB" --timeout 30 <m3.dime >s3.out 2>s3.err ||
	fail "a known origin's transaction while the fetch hung: $(cat s3.out s3.err)"
grep -q '254' s3.out s3.err || fail "session 3: no 254: $(cat s3.out s3.err)"
alive "$PID1" || fail "session 1 ended before session 3 was through: $(cat s1.out s1.err)"
grep -q 'origin.fetch' b.log && fail "the fetch ended before session 3: $(grep origin.fetch b.log)"
until_ok 30 dead "$PID2" || fail "session 2 did not end after QUIT"
wait "$PID2" || fail "session 2 exited with status $?: $(cat s2.out s2.err)"
PID2=
grep -q '^221 ' s2.out || fail "session 2: no 221: $(cat s2.out)"
BOX=$W/b/mail/beta.example/bob/new
until_ok 30 test -n "$(ls "$BOX" 2>/dev/null)" || fail "nothing in bob's Maildir"

# The silent host dies: the fetch fails at once, long before connect_timeout; MAIL gets 470.
kill "$PIDS"
wait "$PIDS" 2>/dev/null
PIDS=
until_ok 30 dead "$PID1" || fail "session 1 still waits after the dx host died"
wait "$PID1" 2>/dev/null
PID1=
grep -q '^470 ' s1.out || fail "session 1's MAIL: no 470: $(cat s1.out s1.err)"
grep -q 'origin.fetch domain=gamma.example result=' b.log ||
	fail "no origin.fetch line for gamma: $(tail -3 b.log)"

# B stops cleanly
kill -TERM "$PIDB"
until_ok 30 dead "$PIDB" || fail "dimed did not stop on SIGTERM"
wait "$PIDB" 2>/dev/null || fail "dimed exited with status $?: $(tail -3 b.log)"
PIDB=
! grep -qE 'Sanitizer|runtime error' b.log || fail "sanitizer report: $(grep -m3 -E 'Sanitizer|runtime error' b.log)"
done_tests

#!/bin/bash
# dimed end to end over real sockets, once per io backend (DIME_IO=uring, then epoll): every
# command and reply code on the implicit-TLS port through `openssl s_client`, the dual port in
# plaintext (bash /dev/tcp) and through `s_client -starttls smtp`, the TLS posture (TLS 1.2 and
# the one cipher only, SNI picks the certificate, an unknown name gets the default), and the
# hostile cases of ECOSYSTEM 6.2 (overlong lines, bare CR, NUL, slowloris, huge DATA, a peer
# that vanishes mid-DATA). Args: DIME_BINARY INTEROP_DIR; dimed is next to dime.
source "$(dirname "$0")/lib.sh" "$@"
DIME=$(cd "$(dirname "$DIME")" && pwd)/$(basename "$DIME")
DIMED=$(dirname "$DIME")/dimed
[ -x "$DIMED" ] || { echo "no dimed next to $DIME: skip"; exit 77; }
command -v openssl >/dev/null || { echo "no openssl: skip"; exit 77; }
unset DIME_STORE

W=$TMP/w
mkdir -p "$W"
cd "$W" || exit 1
"$DIME" --store var/dime.db org create alpha.example >/dev/null 2>&1 &&
	"$DIME" --store var/dime.db user create alice@alpha.example >/dev/null 2>&1 &&
	"$DIME" --store var/dime.db user create bob@alpha.example >/dev/null 2>&1 ||
	{ fail "cannot make the store"; done_tests; }
ORGFP=$("$DIME" --store var/dime.db store list 2>/dev/null |
	awk '$1=="alpha.example" && $2=="org-signet" {print $6}')
BOBFP=$("$DIME" --store var/dime.db store list 2>/dev/null |
	awk '$1=="bob@alpha.example" && $2=="user-signet" {print $6}')
# 586: messages to carol encrypted to her first signet, which a rotation then replaced 31 days
# ago (the stale threshold is 30 days: DIME_SERVER_STALE_S). The store's created time of the
# second version is moved back with python3's sqlite3 (the store is a plain SQLite file).
STALE=
if command -v python3 >/dev/null && "$DIME" --store var/dime.db user create carol@alpha.example >/dev/null 2>&1; then
	for b in uring epoll; do
		printf 'From: alice@alpha.example\r\nTo: carol@alpha.example\r\nSubject: old %s\r\n\r\nhi\r\n' "$b" |
			"$DIME" --store var/dime.db msg wrap --from alice@alpha.example \
				--to carol@alpha.example --origin-sign >"stale-$b.dime" || fail "wrap stale-$b"
	done
	"$DIME" --store var/dime.db user create carol@alpha.example --rotate >/dev/null 2>&1 &&
		python3 - <<'PY' && STALE=1 || fail "cannot age carol's second signet"
import sqlite3, time
db = sqlite3.connect("var/dime.db")
n = db.execute("UPDATE objects SET created = ? WHERE ident = 'carol@alpha.example' AND kind = 1789 AND version = 2",
               (int(time.time()) - 31 * 86400,)).rowcount
db.commit()
assert n == 1
PY
fi
mail() { printf 'From: alice@alpha.example\r\nTo: bob@alpha.example\r\nSubject: %s\r\n\r\nhello\r\n' "$1"; }
# wrap NAME SUBJECT [--origin-sign]: a message from alice to bob (a new one per backend run, so
# that the duplicate table of the first run does not answer for the second).
wrap() {
	mail "$2" | "$DIME" --store var/dime.db msg wrap --from alice@alpha.example \
		--to bob@alpha.example $3 >"$1" || fail "wrap $1"
}
# Two certificates: the default and one for dmtp.alpha.example (SNI / STARTTLS host).
for n in default dmtp.alpha.example; do
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$n.key" -out "$n.pem" -days 2 \
		-subj "/CN=$n" -addext "subjectAltName=DNS:$n" >/dev/null 2>&1 || fail "cert $n"
done
cat >t.conf <<EOF
hostname = mx.alpha.example
listen = 127.0.0.1:0 dmtp
listen = 127.0.0.1:0 dual
timeout_cmd = 2s
timeout_data = 2s
timeout_tls = 3s
max_message = 64k
max_cmds = 50
workers = 2
early_talk_reject = no
[tls]
cert = $W/default.pem
key = $W/default.key
[tls dmtp.alpha.example]
cert = $W/dmtp.alpha.example.pem
key = $W/dmtp.alpha.example.key
EOF

# --check-config: the good file passes, a bad one names its line and key (exit 1).
"$DIMED" --check-config --config t.conf >/dev/null 2>&1 || fail "--check-config refused t.conf"
printf 'listen = 127.0.0.1:0 dmtp\nbogus_key = 1\n' >bad.conf
out=$("$DIMED" --check-config --config bad.conf 2>&1) && fail "--check-config accepted bad.conf"
grep -q 'bad.conf:2: bogus_key' <<<"$out" || fail "--check-config: $out"

# burst.py PORT ORGFP MSG...: one TLS session per MSG, each up to its DATA's 354; then every
# session sends its message at the same moment (a barrier) and prints "MSG <reply line>".
cat >burst.py <<'PY'
import socket, ssl, sys, threading
port, fp, msgs = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
ctx.set_ciphers("ECDHE-RSA-AES256-GCM-SHA384")
bar = threading.Barrier(len(msgs), timeout=30)
lock = threading.Lock()
def run(path):
    t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="x")
    f = t.makefile("rb")
    rd = lambda: f.readline().decode().rstrip("\n")
    rd()
    t.sendall(b"EHLO <c.example>\n"); rd(); rd()
    for c in ("MAIL FROM=<alpha.example> FINGERPRINT=[%s]\n" % fp,
              "RCPT TO=<alpha.example> FINGERPRINT=[%s]\n" % fp, "DATA\n"):
        t.sendall(c.encode()); rd()
    body = "".join("." + l if l.startswith(".") else l for l in open(path).read().splitlines(True))
    if not body.endswith("\n"):
        body += "\n"
    bar.wait()
    t.sendall((body + ".\n").encode())
    r = rd()
    with lock:
        print(path, r, flush=True)
    t.sendall(b"QUIT\n"); rd(); t.close()
ts = [threading.Thread(target=run, args=(m,)) for m in msgs]
for x in ts: x.start()
for x in ts: x.join()
PY

PID=
stop_dimed() {
	[ -n "$PID" ] || return 0
	kill -TERM "$PID" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$PID" 2>/dev/null && { fail "dimed did not exit on SIGTERM"; kill -9 "$PID"; }
	wait "$PID" 2>/dev/null || fail "dimed exited with status $? [$BACKEND]"
	PID=
	# Under ASan/UBSan (CI), a finding or a leak lands in the log.
	! grep -qE 'Sanitizer|runtime error' dimed.log || fail "sanitizer report: $(grep -m3 -E 'Sanitizer|runtime error' dimed.log)"
}
trap 'stop_dimed; rm -rf "$TMP"' EXIT
start_dimed() {
	rm -f ports
	"$DIMED" --config t.conf --ports-file ports 2>>dimed.log &
	PID=$!
	for _ in $(seq 100); do [ -s ports ] && [ "$(wc -l <ports)" = 2 ] && break; sleep 0.05; done
	P1=$(sed -n 1p ports)
	P2=$(sed -n 2p ports)
	[ -n "$P1" ] && [ -n "$P2" ] || { fail "dimed did not start: $(tail -3 dimed.log)"; done_tests; }
}

# dmtp INPUT [s_client args]: a session on the TLS port; prints the replies.
dmtp() {
	local in=$1
	shift
	printf '%b' "$in" | timeout 20 openssl s_client -connect "127.0.0.1:$P1" -tls1_2 -quiet "$@" \
		2>/dev/null
}
# plain INPUT: a plaintext session on the dual port (bash /dev/tcp); prints the replies.
plain() {
	exec 3<>"/dev/tcp/127.0.0.1/$P2" || return 1
	printf '%b' "$1" >&3
	timeout 10 cat <&3
	exec 3<&- 3>&-
}
# has NAME OUTPUT PATTERN: OUTPUT must match the Perl regex PATTERN ('.' spans lines).
has() { grep -qzP -- "(?s)$3" <<<"$2" || fail "$1 [$BACKEND]: /$3/ not in: $2"; }
txn() { printf 'EHLO <c.example>\nMAIL FROM=<alpha.example> FINGERPRINT=[%s]\nRCPT TO=<alpha.example> FINGERPRINT=[%s]\nDATA\n' "$ORGFP" "$ORGFP"; }
stuffed() { sed 's/^\./../' "$1"; }
count_mail() { find var/mail -path '*/new/*' -type f 2>/dev/null | wc -l; }

for BACKEND in uring epoll; do
	export DIME_IO=$BACKEND
	rm -rf var/spool var/mail dimed.log
	wrap m1.dime "one $BACKEND" --origin-sign
	wrap m2.dime "two $BACKEND" --origin-sign
	wrap m3.dime "unsigned $BACKEND"
	start_dimed
	grep -q "backend=$BACKEND" dimed.log ||
		{ [ "$BACKEND" = uring ] && grep -q "backend=epoll" dimed.log && echo "io_uring unavailable: epoll ran"; } ||
		fail "backend $BACKEND not used: $(grep dimed.start dimed.log)"

	# ---- a client that arrives after the loop sat idle longer than timeout_cmd (2 s) is
	# served: its idle timer counts from its accept, not from before the loop's wait (it got
	# 421 TIMEOUT at once) ----
	sleep 2.5
	out=$(plain "NOOP\nQUIT\n")
	has after-idle "$out" '^220 [^\n]*\n250 OK\n221 BYE'

	# ---- slowloris (ECOSYSTEM P17, P18): a command line trickled one byte every 0.25 s gets
	# 421 and a close at timeout_cmd (2 s), long before the line's 10 s are through; a TLS
	# handshake trickled the same way on the implicit-TLS port is closed without a word at
	# timeout_tls (3 s). The io idle timer, re-armed by every byte, never fired for either. ----
	out=$(python3 - "$P2" "$P1" <<'PY'
import socket, sys, time
def trickle(port, banner, data):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    got = s.recv(4096) if banner else b""
    sent = 0
    s.settimeout(0.25)
    for b in data:
        try:
            s.sendall(bytes([b]))
            sent += 1
        except OSError:
            break
        try:
            r = s.recv(4096)
            if not r:
                break
            got += r
        except socket.timeout:
            pass
        except OSError:
            break
    s.close()
    return sent, len(data), got
sent, total, got = trickle(sys.argv[1], True, b"NOOP " + b"x" * 35 + b"\n")
print("cmd sent=%d of %d 421=%d" % (sent, total, b"421" in got))
hello = bytes([0x16, 0x03, 0x01, 0x00, 0x80]) + b"\x01" * 40
sent, total, got = trickle(sys.argv[2], False, hello)
print("tls sent=%d of %d replied=%d" % (sent, total, len(got)))
PY
)
	grep -q '^cmd sent=[0-9]* of 41 421=1$' <<<"$out" && [ "$(sed -n 's/^cmd sent=\([0-9]*\).*/\1/p' <<<"$out")" -lt 41 ] ||
		fail "slowloris command [$BACKEND]: $out"
	grep -q '^tls sent=[0-9]* of 45 replied=0$' <<<"$out" && [ "$(sed -n 's/^tls sent=\([0-9]*\).*/\1/p' <<<"$out")" -lt 45 ] ||
		fail "slowloris TLS handshake [$BACKEND]: $out"

	# ---- global commands, every signet reply ----
	out=$(dmtp "EHLO <c.example>\nMODE\nNOOP hello\nHELP\nVERB\nRSET\nSGNT FOR=<alpha.example>\nSGNT FOR=<bob@alpha.example>\nHIST FOR=<bob@alpha.example>\nVRFY FOR=<alpha.example> FINGERPRINT=[$ORGFP]\nVRFY FOR=<bob@alpha.example> FINGERPRINT=[$BOBFP]\nSGNT FOR=<nobody@alpha.example>\nSGNT FOR=<gamma.example>\nQUIT\n")
	has banner "$out" '^220 <mx.alpha.example> DMTP'
	has ehlo "$out" '250-SIZE 65536\n250 OK <mx.alpha.example>'
	has mode "$out" '250 OK DMTP\n'
	has help "$out" '214-DATA\n.*214 VRFY\n'
	has sgnt-org "$out" '270------BEGIN ORGANIZATIONAL SIGNET-----\n.*270------END ORGANIZATIONAL SIGNET-----\n270 OK'
	has sgnt-user "$out" '280------BEGIN USER SIGNET-----\n.*280 OK'
	has hist "$out" '290------BEGIN USER SIGNET-----\n.*290 OK'
	has vrfy-org "$out" '271 ORGANIZATIONAL SIGNET CURRENT'
	has vrfy-user-full "$out" '576 SIGNET UNAVAILABLE'
	has quit "$out" '221 BYE'

	# ---- a transaction: 254, the message in the Maildir; again: no second copy ----
	out=$(dmtp "$(txn)\n$(stuffed m1.dime)\n.\nQUIT\n")
	has data "$out" '354 READY TO RECEIVE MESSAGE\n254 ACCEPTED=[A-Za-z0-9+/]{86}\n221 BYE'
	id1=$(grep -o 'ACCEPTED=.*' <<<"$out" | cut -d= -f2)
	# The identifier is SHA-512 of the binary message (the armor's base64, CRC line left out).
	b=$(grep -v -e ----- -e '^=' -e '^$' m1.dime | tr -d '\n')
	while [ $((${#b} % 4)) != 0 ]; do b="$b="; done
	want=$(openssl base64 -d -A <<<"$b" | openssl dgst -sha512 -binary | openssl base64 -A |
		tr -d '=')
	[ "$id1" = "$want" ] || fail "254 id [$BACKEND]: got $id1, want $want"
	for _ in $(seq 50); do [ "$(count_mail)" -ge 1 ] && break; sleep 0.1; done
	out=$(dmtp "$(txn)\n$(stuffed m1.dime)\n.\nQUIT\n")
	# already accepted (spooled or delivered): 255, and no second copy
	has resend "$out" "255 DUPLICATE=\\Q$id1\\E"
	sleep 0.5
	[ "$(count_mail)" = 1 ] || fail "resend [$BACKEND]: $(count_mail) messages delivered, want 1"

	# ---- group commit: 12 senders hold their DATA open, then all send at once (a barrier):
	# 6 copies of one message and 6 of another. Each message gets exactly one 254 and five 255
	# (a copy in the same group as the first is a duplicate, not 451), and a group of more than
	# one commit formed (the spool.group log line counts them) ----
	if command -v python3 >/dev/null; then
		wrap m6.dime "same one $BACKEND" --origin-sign
		wrap m7.dime "same two $BACKEND" --origin-sign
		out=$(timeout 60 python3 "$W/burst.py" "$P1" "$ORGFP" m6.dime m6.dime m6.dime m6.dime \
			m6.dime m6.dime m7.dime m7.dime m7.dime m7.dime m7.dime m7.dime 2>&1)
		for m in m6.dime m7.dime; do
			n254=$(grep -c "^$m 254 " <<<"$out")
			n255=$(grep -c "^$m 255 " <<<"$out")
			[ "$n254" = 1 ] && [ "$n255" = 5 ] ||
				fail "same message x6 [$BACKEND]: $m: $n254 x 254, $n255 x 255; want 1 and 5: $out"
		done
		grep -qE 'event=spool.group n=([2-9]|[0-9]{2,})' dimed.log ||
			fail "group commit [$BACKEND]: no group of more than one commit: $(grep -o 'spool.group n=[0-9]*' dimed.log | sort | uniq -c | tr '\n' ' ')"
	fi

	# ---- 586: encrypted to a user signet replaced more than the stale threshold ago; not
	# delivered ----
	if [ -n "$STALE" ]; then
		out=$(dmtp "$(txn)\n$(stuffed "stale-$BACKEND.dime")\n.\nQUIT\n")
		has stale-586 "$out" '586 INVALID RECIPIENT SIGNET\n221 BYE'
	fi

	# ---- DATA verdicts and sequence errors ----
	out=$(dmtp "$(txn)\n$(stuffed m3.dime)\n.\nMAIL FROM=<alpha.example> FINGERPRINT=[$ORGFP]\nRCPT TO=<alpha.example> FINGERPRINT=[$ORGFP]\nDATA\nnot a message\n.\nDATA\nRCPT TO=<alpha.example> FINGERPRINT=[$ORGFP]\nMAIL FROM=<gamma.example> FINGERPRINT=[$ORGFP]\nMAIL FROM=<alpha.example> FINGERPRINT=[$ORGFP]\nRCPT TO=<gamma.example> FINGERPRINT=[$ORGFP]\nMAIL FROM=<alpha.example> FINGERPRINT=[$ORGFP]\nRCPT TO=<alpha.example> FINGERPRINT=[$ORGFP]\nRCPT TO=<alpha.example> FINGERPRINT=[$ORGFP]\nQUIT\n")
	has unsigned "$out" '578 INVALID ORIGIN SIGNATURE'
	has junk "$out" '451 DATA CORRUPTED'
	has seq "$out" '503 INVALID COMMAND SEQUENCE: MAIL FIRST'
	has origin "$out" '470 ORIGIN SIGNET UNAVAILABLE'
	has rcpt "$out" '576 INVALID DESTINATION SIGNET'
	has rcpt2 "$out" '431 DESTINATION LIMITS EXCEEDED'
	out=$(dmtp "MAIL FROM=<alpha.example> FINGERPRINT=[$ORGFP]\nFROB\nMAIL FROM=<alpha.example>\nNO\000OP\nRSET\rQUIT\r\n$(head -c 600 /dev/zero | tr '\0' x)\nNOOP\nQUIT\n")
	has helo-first "$out" '503 INVALID COMMAND SEQUENCE: HELO FIRST'
	has unknown "$out" '500 COMMAND SYNTAX ERROR'
	has args "$out" '501 ARGUMENT SYNTAX ERROR'
	has bare-cr "$out" '500 COMMAND SYNTAX ERROR: BARE CR\n'
	has overlong "$out" '500 COMMAND SYNTAX ERROR: LINE TOO LONG\n250 OK\n221 BYE'

	# ---- P19: DATA over the cap: 552 after draining; the session goes on ----
	out=$(dmtp "$(txn)\n$(head -c 100000 /dev/zero | tr '\0' A | fold -w 64)\n.\nNOOP\nQUIT\n")
	has huge "$out" '552 MESSAGE TOO LARGE \(LIMIT 65536 OCTETS\)\n250 OK\n221 BYE'

	# ---- P20: the peer vanishes mid-DATA: nothing spooled, dimed keeps serving ----
	before=$(count_mail)
	(txn; head -n 5 m2.dime) | timeout 5 openssl s_client -connect "127.0.0.1:$P1" -tls1_2 \
		-quiet >/dev/null 2>&1
	sleep 0.5
	[ "$(count_mail)" = "$before" ] || fail "mid-DATA [$BACKEND]: a partial message was delivered"
	[ -z "$(ls var/spool/tmp 2>/dev/null)" ] || fail "mid-DATA [$BACKEND]: spool tmp/ not empty"

	# ---- P17: slowloris, one byte a second: 421 at the 2 s timeout ----
	out=$( (sleep 1; printf 'N'; sleep 1; printf 'O'; sleep 3) |
		timeout 10 openssl s_client -connect "127.0.0.1:$P1" -tls1_2 -quiet 2>/dev/null)
	has slowloris "$out" '421 <mx.alpha.example> TIMEOUT, CLOSING CONNECTION'

	# ---- P9: command cap ----
	out=$(dmtp "$(for _ in $(seq 60); do printf 'NOOP\\n'; done)")
	has cap "$out" '421 <mx.alpha.example> TOO MANY COMMANDS'

	# ---- TLS posture (ECOSYSTEM 4.2, P22, P23) ----
	printf 'QUIT\n' | timeout 10 openssl s_client -connect "127.0.0.1:$P1" -tls1_3 >/dev/null 2>&1 &&
		fail "TLS 1.3 accepted [$BACKEND]"
	printf 'QUIT\n' | timeout 10 openssl s_client -connect "127.0.0.1:$P1" -tls1_2 \
		-cipher ECDHE-RSA-AES128-GCM-SHA256 >/dev/null 2>&1 && fail "AES128 accepted [$BACKEND]"
	out=$(printf 'QUIT\n' | timeout 10 openssl s_client -connect "127.0.0.1:$P1" -tls1_2 \
		-cipher ECDHE-RSA-AES256-GCM-SHA384 -servername dmtp.alpha.example 2>&1)
	has sni "$out" 'subject=CN ?= ?dmtp.alpha.example'
	has cipher "$out" 'ECDHE-RSA-AES256-GCM-SHA384'
	out=$(printf 'QUIT\n' | timeout 10 openssl s_client -connect "127.0.0.1:$P1" -tls1_2 \
		-servername other.example 2>&1)
	has sni-default "$out" 'subject=CN ?= ?default'

	# ---- the dual port: plaintext SMTP mode, then STARTTLS ----
	out=$(plain "EHLO client.example\r\nMODE\r\nSGNT FOR=<alpha.example>\r\nMAIL FROM=<alpha.example> FINGERPRINT=[$ORGFP]\r\nQUIT\r\n")
	has dual-banner "$out" '^220 <mx.alpha.example> ESMTP DMTP'
	has dual-ehlo "$out" '250-DMTP\n250-STARTTLS\n250 OK'
	has dual-mode "$out" '250 OK ESMTP\n'
	has dual-501 "$out" '501 ARGUMENT SYNTAX ERROR: DMTP COMMAND IN SMTP MODE\n501'
	out=$(printf 'MODE\nSTARTTLS\nQUIT\n' | timeout 10 openssl s_client -connect "127.0.0.1:$P2" \
		-starttls smtp -tls1_2 -quiet 2>/dev/null)
	has smtp-tls "$out" '250 OK ESMTP <mx.alpha.example>\n250 OK ESMTP\n503 INVALID COMMAND SEQUENCE: TLS ALREADY ACTIVE\n221 BYE'

	# ---- P11 STARTTLS injection (CVE-2011-0411): commands pipelined behind STARTTLS in the
	# same write are dropped, never run after the handshake. The client writes the STARTTLS
	# line and the injected ones in one send, reads the 220, then does the handshake: over TLS
	# only the greeting (250 OK <mode>) and the QUIT's 221 may come ----
	if command -v python3 >/dev/null; then
		for first in 'STARTTLS <dmtp.alpha.example> MODE=DMTP\nRSET\nNOOP injected\nSGNT FOR=<alpha.example>\n' \
			'STARTTLS\r\nRSET\r\nQUIT\r\n'; do
			out=$(timeout 20 python3 - "$P2" "$first" <<'PY'
import socket, ssl, sys
port, first = int(sys.argv[1]), sys.argv[2].encode().decode("unicode_escape").encode()
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
f.readline()                      # the banner
s.sendall(first)                  # STARTTLS and the injected lines: one write
print("plain:", f.readline().decode().rstrip("\n"))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
ctx.set_ciphers("ECDHE-RSA-AES256-GCM-SHA384")
t = ctx.wrap_socket(s, server_hostname="dmtp.alpha.example")
t.settimeout(5)
buf = b""
try:
    while not buf.endswith(b"\n"):   # the greeting after the handshake
        d = t.recv(4096)
        if not d:
            break
        buf += d
    t.sendall(b"QUIT\n")
    while True:
        d = t.recv(4096)
        if not d:
            break
        buf += d
except (OSError, ssl.SSLError):
    pass
for line in buf.decode(errors="replace").splitlines():
    print("tls:", line)
PY
)
			has "injection-220" "$out" '^plain: 220 READY TO START TLS\n'
			has "injection" "$out" '\ntls: 250 OK (DMTP|ESMTP) <mx.alpha.example>\ntls: 221 BYE\n?$'
		done
	else
		echo "no python3: STARTTLS injection end to end not run"
	fi

	# ---- the dime dmtp client: implicit TLS, and the dual port elevated by STARTTLS <host>
	# MODE=DMTP (P13: HELO forgotten, EHLO list without DMTP/STARTTLS after TLS) ----
	out=$("$DIME" --store var/dime.db dmtp sgnt bob@alpha.example --to "127.0.0.1:$P1" 2>&1)
	has client-sgnt "$out" '280------BEGIN USER SIGNET-----\n.*280 OK'
	out=$("$DIME" --store var/dime.db dmtp send --to "127.0.0.1:$P2" \
		--starttls dmtp.alpha.example <m2.dime 2>/dev/null)
	has client-elevate "$out" '220 READY TO START TLS\n250 OK DMTP <mx.alpha.example>\n250-SIZE 65536\n250 OK'
	has client-send "$out" '254 ACCEPTED=[A-Za-z0-9+/]{86}'
	out=$(printf 'STARTTLS <dmtp.alpha.example> MODE=DMTP\nMODE\nMAIL FROM=<alpha.example> FINGERPRINT=[%s]\nSTARTTLS <x.example> MODE=DMTP\nQUIT\n' \
		"$ORGFP" | "$DIME" dmtp raw --to "127.0.0.1:$P2" --starttls dmtp.alpha.example 2>/dev/null)
	has raw-twice "$out" '503 INVALID COMMAND SEQUENCE'

	# ---- TLS contexts live while a session uses them: two sessions open across two SIGHUPs
	# (one past its handshake, one still before its ClientHello, whose SNI callback runs on
	# the set two reloads back) each complete a transaction ----
	if command -v python3 >/dev/null; then
		wrap m4.dime "hup one $BACKEND" --origin-sign
		wrap m5.dime "hup two $BACKEND" --origin-sign
		rm -f hup.ready
		timeout 30 python3 - "$P1" "$ORGFP" m4.dime m5.dime >hup.out 2>&1 <<'PY' &
import os, socket, ssl, sys, time
port, fp, m4, m5 = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
ctx.set_ciphers("ECDHE-RSA-AES256-GCM-SHA384")
def txn(t, path):
    f = t.makefile("rb")
    def cmd(line):
        t.sendall(line.encode())
        return f.readline().decode().rstrip("\n")
    body = "".join("." + l if l.startswith(".") else l for l in open(path).read().splitlines(True))
    out = [cmd("EHLO <c.example>\n")]
    out.append(f.readline().decode().rstrip("\n"))
    out.append(cmd("MAIL FROM=<alpha.example> FINGERPRINT=[%s]\n" % fp))
    out.append(cmd("RCPT TO=<alpha.example> FINGERPRINT=[%s]\n" % fp))
    out.append(cmd("DATA\n"))
    out.append(cmd(body + ("" if body.endswith("\n") else "\n") + ".\n"))
    return out
a = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="dmtp.alpha.example")
print("a banner:", a.makefile("rb").readline().decode().rstrip())
b = socket.create_connection(("127.0.0.1", port))   # no ClientHello yet
time.sleep(0.3)
open("hup.ready", "w").close()
while not os.path.exists("hup.done"):
    time.sleep(0.05)
b = ctx.wrap_socket(b, server_hostname="dmtp.alpha.example")
print("b banner:", b.makefile("rb").readline().decode().rstrip())
for name, t, m in (("a", a, m4), ("b", b, m5)):
    for line in txn(t, m):
        print(name, line)
PY
		hpid=$!
		for _ in $(seq 100); do [ -e hup.ready ] && break; sleep 0.05; done
		kill -HUP "$PID"
		sleep 0.5
		kill -HUP "$PID"
		sleep 0.5
		touch hup.done
		wait "$hpid"
		rm -f hup.done hup.ready
		out=$(cat hup.out)
		has hup-a "$out" 'a 254 ACCEPTED=[A-Za-z0-9+/]{86}'
		has hup-b "$out" 'b banner: 220 <mx.alpha.example> DMTP.*b 254 ACCEPTED=[A-Za-z0-9+/]{86}'
		[ "$(grep -c 'event=dimed.reload result=ok' dimed.log)" -ge 2 ] ||
			fail "hup [$BACKEND]: two reloads not logged"
	fi

	# ---- SIGHUP with a bad configuration keeps the old one; dimed keeps serving ----
	cp t.conf t.conf.good
	echo "bogus_key = 1" >>t.conf
	kill -HUP "$PID"
	sleep 0.5
	grep -q 'event=dimed.reload result=kept_old' dimed.log || fail "bad reload not logged [$BACKEND]"
	cp t.conf.good t.conf
	kill -HUP "$PID"
	sleep 0.5
	grep -q 'event=dimed.reload result=ok' dimed.log || fail "reload not logged [$BACKEND]"
	out=$(dmtp "NOOP\nQUIT\n")
	has after-hup "$out" '250 OK\n221 BYE'

	# ---- log hygiene: no message bytes, no signet armor in the log ----
	grep -q "$(sed -n 2p m1.dime | cut -c1-20)" dimed.log && fail "message bytes in the log"
	stop_dimed
	grep -q 'event=dimed.stop' dimed.log || fail "no clean stop [$BACKEND]"

	# ---- early talker (P10): with a greeting pause, a client that talks first gets 554 and
	# is closed; one that waits for the banner is served ----
	sed -e 's/^early_talk_reject = no$/early_talk_reject = yes\ngreet_pause = 400ms/' \
		t.conf.good >t.conf
	start_dimed
	out=$(plain "EHLO <early.example>\nQUIT\n")
	has early-talker "$out" '^554 '
	grep -q '^220' <<<"$out" && fail "early talker got a banner [$BACKEND]: $out"
	exec 3<>"/dev/tcp/127.0.0.1/$P2"
	IFS= read -r -t 5 banner <&3
	printf 'QUIT\n' >&3
	out=$(timeout 5 cat <&3)
	exec 3<&- 3>&-
	has polite "$banner" '^220 '
	has polite-quit "$out" '221 BYE'
	out=$(dmtp "NOOP\nQUIT\n") # s_client writes right after the handshake: early on the TLS port
	has early-tls "$out" '^554 '
	stop_dimed
	cp t.conf.good t.conf

	# ---- back-pressure: two workers, a pool queue of one, 8 clients pipelining 40 SGNT each.
	# A job the full pool refuses waits (reading stopped, its bytes kept) and goes in when
	# there is room: every command is answered, none with 451 ----
	sed -e 's/^workers = 2$/workers = 2\nqueue_max = 1/' t.conf.good >t.conf
	start_dimed
	pids=()
	for i in $(seq 8); do
		{ for _ in $(seq 40); do printf 'SGNT FOR=<alpha.example>\n'; done; printf 'QUIT\n'; } |
			timeout 60 openssl s_client -connect "127.0.0.1:$P1" -tls1_2 -quiet \
				>"bp$i.out" 2>/dev/null &
		pids+=($!)
	done
	wait "${pids[@]}"
	n=$(cat bp*.out | grep -c '^270 OK')
	[ "$n" = 320 ] || fail "back-pressure [$BACKEND]: $n of 320 SGNT answered 270"
	! grep -q '^451' bp*.out || fail "back-pressure [$BACKEND]: 451 $(cat bp*.out | grep -c "^451") times"
	grep -q 'event=pool.full.*action=pause' dimed.log ||
		fail "back-pressure [$BACKEND]: the pool was never full (nothing tested)"
	rm -f bp*.out
	# DATA under the same pressure (the ACCEPT lane and the commit queue, bounded by queue_max
	# too): 8 concurrent transactions, each one 254, none 451.
	pids=()
	for i in $(seq 8); do
		wrap "bq$i.dime" "bounded $i $BACKEND" --origin-sign
		(txn; stuffed "bq$i.dime"; printf '.\nQUIT\n') | timeout 60 openssl s_client \
			-connect "127.0.0.1:$P1" -tls1_2 -quiet >"bq$i.out" 2>/dev/null &
		pids+=($!)
	done
	wait "${pids[@]}"
	n=$(cat bq*.out | grep -c '^254 ')
	[ "$n" = 8 ] || fail "DATA under back-pressure [$BACKEND]: $n of 8 answered 254: $(cat bq*.out | grep -v '^2[25]0')"
	rm -f bq*
	stop_dimed
	cp t.conf.good t.conf
done
done_tests

#!/usr/bin/env bash
# dime dmtp against scripted servers: the TLS policy (openssl s_server offering TLS 1.3 only or
# another cipher: refused), SNI and the certificate's SHA-512, --mrec's tls= check, implicit and
# STARTTLS sessions, multi-line replies, send's MAIL/RCPT/DATA (envelope from the store,
# dot-stuffing, LF), exit codes per reply class, malformed replies.
set -u
source "$(dirname "$0")/lib.sh" "$@"

command -v openssl >/dev/null || { echo "openssl missing: skip"; exit 77; }
command -v python3 >/dev/null || { echo "python3 missing: skip"; exit 77; }
HERE=$(cd "$(dirname "$0")" && pwd)

mkcert() { # NAME CN BITS
	openssl req -x509 -newkey "rsa:$3" -nodes -keyout "$TMP/$1.key" -out "$TMP/$1.pem" \
		-days 2 -subj "/CN=$2" -addext "subjectAltName=DNS:$2" 2>/dev/null ||
		fail "openssl req $1"
}
mkcert default default.test 2048
mkcert sni sni.test 2048
sha512_b64() { openssl x509 -in "$1" -outform DER | openssl dgst -sha512 -binary | base64 -w0 | tr -d '='; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# s_server ARGS...: openssl s_server on a free port for one connection, which gets the banner
# from stdin (then EOF closes it); sets PORT and SPID once it listens.
s_server() {
	PORT=$(free_port)
	printf '220 s.test DMTP ready\n' |
		openssl s_server -accept "127.0.0.1:$PORT" -naccept 1 -quiet "$@" \
			>"$TMP/s_server.out" 2>&1 &
	SPID=$!
	for _ in $(seq 100); do
		if command -v ss >/dev/null; then
			ss -ltnH "sport = :$PORT" 2>/dev/null | grep -q . && return
		fi
		sleep 0.05
	done
}

# --- TLS policy against openssl s_server -------------------------------------------------
s_server -cert "$TMP/default.pem" -key "$TMP/default.key" -tls1_3
expect 2 '' -- "$DIME" dmtp raw --to "127.0.0.1:$PORT" --timeout 5 </dev/null
grep -qi 'handshake\|version' "$TMP/stderr" || fail "TLS 1.3-only server: $(cat "$TMP/stderr")"
kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null

s_server -cert "$TMP/default.pem" -key "$TMP/default.key" -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256
expect 2 '' -- "$DIME" dmtp raw --to "127.0.0.1:$PORT" --timeout 5 </dev/null
grep -qi 'handshake\|cipher\|failure' "$TMP/stderr" || fail "AES128-only server: $(cat "$TMP/stderr")"
kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null

# the right policy: the banner arrives, and the certificate's SHA-512 is shown; SNI picks cert2
s_server -cert "$TMP/default.pem" -key "$TMP/default.key" -tls1_2 \
	-cipher ECDHE-RSA-AES256-GCM-SHA384 -servername sni.test -cert2 "$TMP/sni.pem" -key2 "$TMP/sni.key"
expect 0 '^220 s.test DMTP ready$' -- "$DIME" dmtp raw --to "127.0.0.1:$PORT" --sni sni.test --timeout 5 </dev/null
grep -q "SHA-512(DER) $(sha512_b64 "$TMP/sni.pem")" "$TMP/stderr" ||
	fail "SNI sni.test: not the SNI certificate's SHA-512: $(cat "$TMP/stderr")"
kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null

s_server -cert "$TMP/default.pem" -key "$TMP/default.key" -tls1_2 \
	-cipher ECDHE-RSA-AES256-GCM-SHA384 -servername sni.test -cert2 "$TMP/sni.pem" -key2 "$TMP/sni.key"
expect 0 '^220 ' -- "$DIME" dmtp raw --to "127.0.0.1:$PORT" --sni other.test --timeout 5 </dev/null
grep -q "SHA-512(DER) $(sha512_b64 "$TMP/default.pem")" "$TMP/stderr" ||
	fail "unknown SNI: not the default certificate: $(cat "$TMP/stderr")"
kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null

# --- scripted sessions ----------------------------------------------------------------------
# One scripted server for all sessions (python startup is slow on a loaded machine); server
# MODE RULESFILE sets what the next connection gets and empties the log.
rm -f "$TMP/port"
python3 "$HERE/dmtp_script_server.py" "$TMP/default.pem" "$TMP/default.key" "$TMP/port" \
	"$TMP/log" "$TMP/rules" 2>"$TMP/server.err" &
SRV=$!
trap 'kill $SRV 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 200); do [ -s "$TMP/port" ] && break; sleep 0.05; done
PORT=$(cat "$TMP/port" 2>/dev/null)
[ -n "$PORT" ] || { fail "scripted server did not start: $(cat "$TMP/server.err")"; done_tests; }
server() {
	{ echo "MODE $1"; cat "$2"; } >"$TMP/rules"
	: >"$TMP/log"
}
stop() { :; }

T='	'
cat >"$TMP/r.basic" <<EOF2
BANNER${T}220 mx.test DMTP ready
EHLO${T}250-mx.test\n250-8BITMIME\n250 OK
SGNT FOR=<beta.test>${T}270-----BEGIN ORGANIZATIONAL SIGNET-----\n270-AAAA\n270------END ORGANIZATIONAL SIGNET-----\n270 OK
SGNT${T}576 SIGNET NOT FOUND
HIST${T}290-chain\n290 OK
VRFY${T}271 OK CURRENT
NOOP${T}250 OK
QUIT${T}221 BYE
EOF2
server implicit "$TMP/r.basic"
expect 0 '^270 OK$' -- "$DIME" dmtp sgnt beta.test --to "127.0.0.1:$PORT" --helo me.test --timeout 10
stop
grep -qx 'EHLO <me.test>' "$TMP/log" || fail "EHLO: $(cat "$TMP/log")"
grep -qx 'SGNT FOR=<beta.test>' "$TMP/log" || fail "SGNT line: $(cat "$TMP/log")"
grep -qx 'QUIT' "$TMP/log" || fail "no QUIT: $(cat "$TMP/log")"
grep -q $'\r' "$TMP/log" && fail "the client sent CR: LF only on DMTP"

# the whole multi-line reply is printed, and its class sets the exit code
server implicit "$TMP/r.basic"
out=$("$DIME" dmtp sgnt beta.test --to "127.0.0.1:$PORT" --timeout 10 2>/dev/null)
stop
[ "$(grep -c '^270' <<<"$out")" = 4 ] || fail "270 reply not printed whole: $out"

server implicit "$TMP/r.basic"
expect 1 '^576 SIGNET NOT FOUND$' -- "$DIME" dmtp sgnt nobody@beta.test --to "127.0.0.1:$PORT" --timeout 10
stop
grep -qx 'SGNT FOR=<nobody@beta.test>' "$TMP/log" || fail "SGNT mailbox: $(cat "$TMP/log")"

FP=$(head -c 64 /dev/urandom | base64 -w0 | tr -d '=' | tr '+/' 'AB')
server implicit "$TMP/r.basic"
expect 0 '^290 OK$' -- "$DIME" dmtp hist bob@beta.test --start "$FP" --to "127.0.0.1:$PORT" --timeout 10
stop
grep -qx "HIST FOR=<bob@beta.test> START=\[$FP\]" "$TMP/log" || fail "HIST line: $(cat "$TMP/log")"

server implicit "$TMP/r.basic"
expect 0 '^271 OK CURRENT$' -- "$DIME" dmtp vrfy bob@beta.test --fp "$FP" --to "127.0.0.1:$PORT" --timeout 10
stop
grep -qx "VRFY FOR=<bob@beta.test> FINGERPRINT=\[$FP\]" "$TMP/log" || fail "VRFY line: $(cat "$TMP/log")"

# usage errors: exit 2 before any connection
expect 2 '' -- "$DIME" dmtp vrfy bob@beta.test --to 127.0.0.1:1
expect 2 '' -- "$DIME" dmtp sgnt --to 127.0.0.1:1
expect 2 '' -- "$DIME" dmtp sgnt beta.test
expect 2 '' -- "$DIME" dmtp sgnt 'bad<x>' --to 127.0.0.1:1
expect 2 '' -- "$DIME" dmtp hist bob@beta.test --fp "$FP" --to 127.0.0.1:1
expect 2 '' -- "$DIME" dmtp sgnt beta.test --frob --to 127.0.0.1:1
expect 0 '^usage: dime dmtp send' -- "$DIME" dmtp send --help
# nothing listens: exit 2 with the reason
expect 2 '' -- "$DIME" dmtp sgnt beta.test --to "127.0.0.1:$(free_port)" --timeout 2
grep -qi 'refused' "$TMP/stderr" || fail "connection refused not named: $(cat "$TMP/stderr")"

# malformed replies: exit 2 (protocol error), the reason named
for bad in '25 short' '250x' '250-a\n251 b' '600 nope'; do
	printf 'BANNER\t220 mx.test DMTP ready\nEHLO\t%s\nQUIT\t221 BYE\n' "$bad" >"$TMP/r.bad"
	server implicit "$TMP/r.bad"
	expect 2 '' -- "$DIME" dmtp sgnt beta.test --to "127.0.0.1:$PORT" --timeout 5
	grep -q 'bad reply' "$TMP/stderr" || fail "reply '$bad': $(cat "$TMP/stderr")"
	stop
done
# a banner that does not say DMTP: not a DMTP host (1)
printf 'BANNER\t220 mx.test ESMTP ready\nQUIT\t221 BYE\n' >"$TMP/r.nodmtp"
server implicit "$TMP/r.nodmtp"
expect 1 '' -- "$DIME" dmtp sgnt beta.test --to "127.0.0.1:$PORT" --timeout 5
stop
# a server that never answers: the timeout ends it (2)
printf 'RAWBANNER\t\n' >"$TMP/r.silent"
server implicit "$TMP/r.silent"
expect 2 '' -- "$DIME" dmtp sgnt beta.test --to "127.0.0.1:$PORT" --timeout 1
grep -q 'timeout' "$TMP/stderr" || fail "silent server: $(cat "$TMP/stderr")"
stop

# --- dual mode: STARTTLS <host> MODE=DMTP, then 250 OK DMTP ---------------------------------
cat >"$TMP/r.dual" <<EOF2
BANNER${T}220 mx.test ESMTP DMTP ready
STARTTLS <mx.test> MODE=DMTP${T}220 READY TO START TLS
TLSDONE${T}250 OK DMTP mx.test
EHLO${T}250 OK
SGNT${T}270-x\n270 OK
QUIT${T}221 BYE
EOF2
server dual "$TMP/r.dual"
expect 0 '^250 OK DMTP mx.test$' -- "$DIME" dmtp sgnt beta.test --to "127.0.0.1:$PORT" --starttls mx.test --timeout 10
stop
[ "$(head -1 "$TMP/log")" = 'STARTTLS <mx.test> MODE=DMTP' ] || fail "dual: first line $(head -1 "$TMP/log")"
grep -qx 'SGNT FOR=<beta.test>' "$TMP/log" || fail "dual: SGNT after TLS: $(cat "$TMP/log")"
# elevation answered with SMTP mode: refused (1), nothing sent after
sed 's/^TLSDONE\t.*/TLSDONE\t250 OK ESMTP mx.test/' "$TMP/r.dual" >"$TMP/r.smtp"
server dual "$TMP/r.smtp"
expect 1 '' -- "$DIME" dmtp sgnt beta.test --to "127.0.0.1:$PORT" --starttls mx.test --timeout 10
stop
grep -q '^SGNT' "$TMP/log" && fail "SGNT sent on a connection left in SMTP mode"
# a dual banner without DMTP: never elevated
printf 'BANNER\t220 mx.test ESMTP ready\nQUIT\t221 BYE\n' >"$TMP/r.plain"
server dual "$TMP/r.plain"
expect 1 '' -- "$DIME" dmtp sgnt beta.test --to "127.0.0.1:$PORT" --starttls mx.test --timeout 10
stop
grep -q '^STARTTLS' "$TMP/log" && fail "STARTTLS sent to a host whose banner lacks DMTP"

# --- send: envelope from the store, dot-stuffed armor, verdict codes ------------------------
"$DIME" org create alpha.test >/dev/null 2>&1 || fail "org create alpha.test"
"$DIME" org create beta.test >/dev/null 2>&1 || fail "org create beta.test"
"$DIME" user create alice@alpha.test >/dev/null 2>&1 || fail "user create alice"
"$DIME" user create bob@beta.test >/dev/null 2>&1 || fail "user create bob"
printf 'Subject: hi\n\nhello\n' | "$DIME" msg wrap --from alice@alpha.test --to bob@beta.test \
	--origin-sign >"$TMP/m.dime" || fail "wrap"
"$DIME" store export alpha.test >"$TMP/alpha.signet" || fail "store export alpha.test"
ALPHA_FP=$("$DIME" signet fingerprint --kind full "$TMP/alpha.signet")
cat >"$TMP/r.send" <<EOF2
BANNER${T}220 mx.test DMTP ready
EHLO${T}250 OK
MAIL FROM=<alpha.test>${T}250 OK
RCPT TO=<beta.test>${T}250 OK
DATA${T}354 READY TO RECEIVE MESSAGE
.${T}254 ACCEPTED=abc
QUIT${T}221 BYE
EOF2
server implicit "$TMP/r.send"
expect 0 '^254 ACCEPTED=abc$' -- "$DIME" dmtp send --to "127.0.0.1:$PORT" --timeout 10 <"$TMP/m.dime"
stop
grep -qE '^MAIL FROM=<alpha.test> FINGERPRINT=\[[A-Za-z0-9+/]{86}\]$' "$TMP/log" || fail "MAIL: $(cat "$TMP/log")"
grep -qx "MAIL FROM=<alpha.test> FINGERPRINT=\[$ALPHA_FP\]" "$TMP/log" ||
	fail "MAIL fingerprint is not alpha.test's full fingerprint $ALPHA_FP: $(grep MAIL "$TMP/log")"
grep -qE '^RCPT TO=<beta.test> FINGERPRINT=\[[A-Za-z0-9+/]{86}\]$' "$TMP/log" || fail "RCPT: $(cat "$TMP/log")"
# DATA carried the message armored, ending in LF . LF, and it unarmors to the same bytes
sed -n '/^DATA$/,/^\.$/p' "$TMP/log" | sed '1d;$d' >"$TMP/sent.pem"
"$DIME" msg dump <"$TMP/sent.pem" >"$TMP/d1" 2>&1 || fail "what DATA carried is not a D/MIME message"
"$DIME" msg dump <"$TMP/m.dime" >"$TMP/d2" 2>&1
cmp -s "$TMP/d1" "$TMP/d2" || fail "DATA differs from the message"

# binary input with the four flags (no store needed); dot-stuffing checked on the wire
head -c 3000 /dev/urandom >"$TMP/m.bin"
for code in '254 ACCEPTED=x:0' '255 DUPLICATE=x:0' '451 DATA CORRUPTED:1' '578 ORIGIN SIGNATURE INVALID:1'; do
	sed "s/^\.\t.*/.\t${code%:*}/" "$TMP/r.send" | sed 's/^MAIL FROM=<alpha.test>/MAIL/; s/^RCPT TO=<beta.test>/RCPT/' >"$TMP/r.code"
	server implicit "$TMP/r.code"
	expect "${code##*:}" "^${code%:*}$" -- "$DIME" --store "$TMP/none/x.db" dmtp send --to "127.0.0.1:$PORT" \
		--from-domain a.test --from-fp "$FP" --to-domain b.test --to-fp "$FP" --timeout 10 <"$TMP/m.bin"
	stop
done
grep -qx "RCPT TO=<b.test> FINGERPRINT=\[$FP\]" "$TMP/log" || fail "RCPT with flags: $(cat "$TMP/log")"
# 5xx at RCPT: no DATA
sed 's/^RCPT TO=<beta.test>\t.*/RCPT\t510 NO SUCH DOMAIN/; s/^MAIL FROM=<alpha.test>/MAIL/' "$TMP/r.send" >"$TMP/r.rcpt"
server implicit "$TMP/r.rcpt"
expect 1 '^510 ' -- "$DIME" dmtp send --to "127.0.0.1:$PORT" --from-domain a.test --from-fp "$FP" \
	--to-domain b.test --to-fp "$FP" --timeout 10 <"$TMP/m.bin"
stop
grep -q '^DATA' "$TMP/log" && fail "DATA sent after RCPT failed"
# not a message: exit 1 or 2 before connecting, named
expect 2 '' -- "$DIME" dmtp send --to 127.0.0.1:1 --from-domain a.test --from-fp "$FP" --to-domain b.test --to-fp "$FP" </dev/null
grep -q 'not a D/MIME message' "$TMP/stderr" || fail "empty input: $(cat "$TMP/stderr")"

# --- --mrec: the certificate must match the record's tls= ---------------------------------
REC=$("$DIME" mrec generate --org alpha.test --tls-cert "$TMP/default.pem" 2>/dev/null)
REC_OTHER=$("$DIME" mrec generate --org alpha.test --tls-cert "$TMP/sni.pem" 2>/dev/null)
if [ -n "$REC" ] && [ -n "$REC_OTHER" ]; then
	server implicit "$TMP/r.basic"
	expect 0 '^270 OK$' -- "$DIME" dmtp sgnt beta.test --to "127.0.0.1:$PORT" --mrec "$REC" --timeout 10
	stop
	grep -q 'matches the record' "$TMP/stderr" || fail "--mrec match: $(cat "$TMP/stderr")"
	server implicit "$TMP/r.basic"
	expect 1 '' -- "$DIME" dmtp sgnt beta.test --to "127.0.0.1:$PORT" --mrec "$REC_OTHER" --timeout 10
	stop
	grep -q 'matches no tls=' "$TMP/stderr" || fail "--mrec mismatch: $(cat "$TMP/stderr")"
	grep -q '^SGNT' "$TMP/log" && fail "SGNT sent to a server whose certificate the record does not sign"
else
	fail "mrec generate --tls-cert"
fi

# --- raw: lines as given, DATA without waiting, replies printed -----------------------------
server implicit "$TMP/r.send"
printf 'EHLO <me.test>\nMAIL FROM=<alpha.test> FINGERPRINT=[%s]\nRCPT TO=<beta.test> FINGERPRINT=[%s]\nDATA\nline one\n..dotted\n.\nQUIT\n' "$FP" "$FP" >"$TMP/raw.in"
expect 0 '^221 BYE$' -- "$DIME" dmtp raw --to "127.0.0.1:$PORT" --timeout 10 <"$TMP/raw.in"
stop
grep -qx '\.\.dotted' "$TMP/log" || fail "raw: DATA line not sent as given: $(cat "$TMP/log")"
done_tests

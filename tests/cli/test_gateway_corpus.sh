#!/usr/bin/env bash
# The SpamAssassin public corpus (tests/corpus/fetch-spamassassin.sh; skipped offline) through
# the gateway's whole outbound chain: each message handed over SMTP to alpha's gateway (smtplib
# as the MTA: line ends made CRLF first, as an MTA sends them; smtplib dot-stuffs) from
# alice@alpha.example to bob@beta.example,
# wrapped with alice's keys and origin-signed, queued, delivered over DMTP to beta's dimed,
# accepted into bob's Maildir; then bob's Maildir opened as bob in one batch. The opened
# messages are, as a multiset, byte for byte the messages sent (with SMTP's CRLF line ends).
# DIME_CORPUS_STRIDE=N takes every Nth message (default 8, 756 messages; 1: all 6,046). Not
# through Postfix in front: Postfix adds its Received: header, and for loopback clients
# rewrites headers, so byte-exactness is checked from the gateway on (test_gateway_postfix
# covers Postfix -> dimed -> DMTP).
# Args: DIME_BINARY INTEROP_DIR; dimed is next to dime.
source "$(dirname "$0")/lib.sh" "$@"
HERE=$(cd "$(dirname "$0")" && pwd)
DIME=$(cd "$(dirname "$DIME")" && pwd)/$(basename "$DIME")
DIMED=$(dirname "$DIME")/dimed
[ -x "$DIMED" ] || { echo "no dimed next to $DIME: skip"; exit 77; }
ip addr show lo 2>/dev/null | grep -q '127.0.0.1/8' || { echo "loopback is not 127.0.0.1/8: skip"; exit 77; }
CORPUS=$(sh "$HERE/../corpus/fetch-spamassassin.sh" "$HERE/../../build/corpus") || exit $?
STRIDE=${DIME_CORPUS_STRIDE:-8}
unset DIME_STORE

declare -A PID
stop_all() { for p in "${PID[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap 'stop_all; rm -rf "$TMP"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
: >"$TMP/dns.txt"
org() { # DIR DOMAIN ADDR USER
	local d=$TMP/$1
	mkdir -p "$d"
	{
		"$DIME" --store "$d/dime.db" org create "$2" &&
			"$DIME" --store "$d/dime.db" user create "$4@$2" &&
			openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/key.pem" -out "$d/cert.pem" \
				-days 2 -subj "/CN=dx.$2" -addext "subjectAltName=DNS:dx.$2"
	} >/dev/null 2>&1 || fail "setting up $2"
	"$DIME" --store "$d/dime.db" mrec generate --org "$2" --tls-cert "$d/cert.pem" --dx "dx.$2" \
		--pol mixed | sed -e 's/^\([^ ]*\)\. IN TXT /\1 3600 TXT /' >>"$TMP/dns.txt"
	printf 'dx.%s 3600 A %s\n' "$2" "$3" >>"$TMP/dns.txt"
	cat >"$d/dimed.conf" <<EOF
hostname = dx.$2
listen = $3:$PORT dmtp
store = $d/dime.db
spool = $d/spool
outq = $d/outq
maildir_root = $d/mail
dx_port = $PORT
dns_static = $TMP/dns.txt
outq_first_retry = 1s
outq_max_interval = 5s
max_message = 33554432
[tls]
cert = $d/cert.pem
key = $d/key.pem
EOF
}
org a alpha.example 127.0.0.1 alice
org b beta.example 127.0.0.2 bob
sed -i "/^listen = 127.0.0.1:$PORT dmtp/a listen = 127.0.0.1:0 smtp" "$TMP/a/dimed.conf"
for o in a b; do
	"$DIMED" --config "$TMP/$o/dimed.conf" --ports-file "$TMP/$o/ports" >"$TMP/$o/dimed.log" 2>&1 &
	PID[$o]=$!
done
for o in a b; do
	for _ in $(seq 600); do [ -s "$TMP/$o/ports" ] && break; sleep 0.1; done
	[ -s "$TMP/$o/ports" ] || { fail "dimed $o did not start: $(tail -3 "$TMP/$o/dimed.log")"; done_tests; }
done
SMTP=$(sed -n 2p "$TMP/a/ports")

# Send every STRIDE-th message; write the SHA-256 of the bytes the MTA hands over (CRLF line
# ends, a final CRLF) to sent.sums, one a line.
/usr/bin/env python3 - "$CORPUS" "$STRIDE" "$SMTP" "$TMP/sent.sums" <<'PY' || fail "sending the corpus"
import hashlib, os, re, smtplib, sys
root, stride, port, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".txt"))
files = files[::stride]
s = smtplib.SMTP("127.0.0.1", port, timeout=120)
s.ehlo("mta.alpha.example")
sums, refused = [], 0
for path in files:
    data = open(path, "rb").read()
    wire = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    if not wire.endswith(b"\r\n"):
        wire += b"\r\n"
    try:
        s.sendmail("alice@alpha.example", ["bob@beta.example"], wire)
    except smtplib.SMTPException as e:
        refused += 1
        print("refused %s: %s" % (path, e), file=sys.stderr)
        s = smtplib.SMTP("127.0.0.1", port, timeout=120)
        s.ehlo("mta.alpha.example")
        continue
    sums.append(hashlib.sha256(wire).hexdigest())
s.quit()
open(out, "w").write("".join(x + "\n" for x in sums))
print("sent %d of %d messages, %d refused" % (len(sums), len(files), refused))
sys.exit(1 if refused or not sums else 0)
PY
N=$(wc -l <"$TMP/sent.sums")
BOX=$TMP/b/mail/beta.example/bob
end=$((SECONDS + 600))
until [ "$(find "$BOX/new" -type f 2>/dev/null | wc -l)" -ge "$N" ]; do
	[ "$SECONDS" -lt "$end" ] || break
	sleep 1
done
got=$(find "$BOX/new" -type f 2>/dev/null | wc -l)
[ "$got" -eq "$N" ] || fail "bob's Maildir holds $got messages, $N were sent"

# bob opens them all at once; alice's signet first, as his client would fetch it
"$DIME" resolve alice@alpha.example --signets --config "$TMP/b/dimed.conf" >/dev/null 2>&1 ||
	fail "bob's side cannot fetch alice's signet"
"$DIME" --store "$TMP/b/dime.db" batch open --as recipient --in "$BOX" --out "$TMP/opened" \
	>"$TMP/open.out" 2>&1 || fail "batch open: $(tail -3 "$TMP/open.out")"
(cd "$TMP/opened" && for f in *; do sha256sum <"$f" | cut -d' ' -f1; done) | sort >"$TMP/opened.sums"
sort "$TMP/sent.sums" >"$TMP/sent.sorted"
cmp -s "$TMP/sent.sorted" "$TMP/opened.sums" ||
	fail "opened differs from sent: $(comm -3 "$TMP/sent.sorted" "$TMP/opened.sums" | wc -l) sums unmatched"
echo "corpus through the gateway: $N messages sent, $got stored, all opened byte for byte"
done_tests

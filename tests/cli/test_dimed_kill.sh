#!/bin/bash
# dimed under kill -9 (ECOSYSTEM R1): 8 clients send 48 distinct messages over the implicit-TLS
# port while dimed is killed at a random moment, three rounds. After a restart has delivered
# the spool: every message that got 254 is in the Maildir exactly once, every file there is one
# of the messages sent (whole: its SHA-512 is a sent message's identifier), nothing is left in
# spool/tmp. A message spooled whose 254 was lost in the kill may be delivered too (the sender
# would resend it and get 254/255): that is the spec's at-least-once. Args: DIME_BINARY
# INTEROP_DIR; dimed is next to dime.
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
openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem -days 2 \
	-subj "/CN=mx.alpha.example" >/dev/null 2>&1 || fail "certificate"
cat >t.conf <<EOF
hostname = mx.alpha.example
listen = 127.0.0.1:0 dmtp
workers = 2
[tls]
cert = $W/c.pem
key = $W/k.pem
EOF

# id FILE: the DMTP identifier of a binary message.
id() { openssl dgst -sha512 -binary "$1" | openssl base64 -A | tr -d '='; echo; }

PID=
trap '[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$TMP"' EXIT
start_dimed() {
	rm -f ports
	"$DIMED" --config t.conf --ports-file ports 2>>dimed.log &
	PID=$!
	for _ in $(seq 200); do [ -s ports ] && break; sleep 0.05; done
	P1=$(sed -n 1p ports)
	[ -n "$P1" ] || { fail "dimed did not start: $(tail -3 dimed.log)"; done_tests; }
}

: >sent.ids
: >acked.ids
for round in 1 2 3; do
	mkdir -p "msgs$round"
	for i in $(seq 48); do
		printf 'From: alice@alpha.example\r\nTo: bob@alpha.example\r\nSubject: %s-%s\r\n\r\nbody\r\n' \
			"$round" "$i" | "$DIME" --store var/dime.db msg wrap --from alice@alpha.example \
			--to bob@alpha.example --origin-sign >"msgs$round/$i.dime" || fail "wrap $i"
		b=$(grep -v -e ----- -e '^=' -e '^$' "msgs$round/$i.dime" | tr -d '\n')
		while [ $((${#b} % 4)) != 0 ]; do b="$b="; done
		openssl base64 -d -A <<<"$b" >"msgs$round/$i.bin"
		id "msgs$round/$i.bin" >>sent.ids
	done
	start_dimed
	for c in $(seq 8); do
		(
			printf 'EHLO <c%s.example>\n' "$c"
			for i in $(seq "$c" 8 48); do
				printf 'MAIL FROM=<alpha.example> FINGERPRINT=[%s]\n' "$ORGFP"
				printf 'RCPT TO=<alpha.example> FINGERPRINT=[%s]\n' "$ORGFP"
				printf 'DATA\n'
				sed 's/^\./../' "msgs$round/$i.dime"
				printf '.\n'
			done
			printf 'QUIT\n'
		) | timeout 20 openssl s_client -connect "127.0.0.1:$P1" -tls1_2 -quiet \
			>"out$round.$c" 2>/dev/null &
	done
	# Kill once a random share of the messages has been acknowledged: mid-flight for sure.
	target=$((RANDOM % 36 + 6))
	for _ in $(seq 500); do
		[ "$(cat out"$round".* 2>/dev/null | grep -c ACCEPTED=)" -ge "$target" ] && break
		sleep 0.01
	done
	kill -9 "$PID"
	wait "$PID" 2>/dev/null
	PID=
	wait
	grep -ho 'ACCEPTED=[A-Za-z0-9+/]*' out"$round".* | cut -d= -f2 >>acked.ids
	echo "round $round: $(grep -ho 'ACCEPTED=' out"$round".* | wc -l) acknowledged before the kill"
done

# Recovery: a clean start delivers what the spool holds.
start_dimed
for _ in $(seq 100); do
	[ -z "$(ls var/spool/queue 2>/dev/null)" ] && break
	sleep 0.1
done
kill -TERM "$PID"
wait "$PID" 2>/dev/null
PID=

[ -z "$(ls var/spool/tmp 2>/dev/null)" ] || fail "spool/tmp not empty after recovery"
[ -z "$(ls var/spool/queue 2>/dev/null)" ] || fail "spool/queue not drained"
: >delivered.ids
for f in var/mail/alpha.example/bob/new/*; do
	[ -f "$f" ] && id "$f" >>delivered.ids
done
n_acked=$(sort -u acked.ids | wc -l)
[ "$n_acked" -gt 0 ] || fail "no message was acknowledged before the kills"
dups=$(sort delivered.ids | uniq -d | wc -l)
[ "$dups" = 0 ] || fail "$dups messages delivered twice"
missing=$(sort -u acked.ids | comm -23 - <(sort -u delivered.ids) | wc -l)
[ "$missing" = 0 ] || fail "$missing messages acknowledged with 254 are lost"
foreign=$(sort -u delivered.ids | comm -23 - <(sort -u sent.ids) | wc -l)
[ "$foreign" = 0 ] || fail "$foreign delivered files are not whole sent messages"
echo "acknowledged $n_acked, delivered $(wc -l <delivered.ids) of $(wc -l <sent.ids) sent"
done_tests

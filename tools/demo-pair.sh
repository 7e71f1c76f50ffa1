#!/usr/bin/env bash
# `make run`, second part: two DIME domains on this machine deliver to each other over DMTP.
# alpha.example (alice) is served by one dimed on 127.0.0.1, beta.example (bob) by another on
# 127.0.0.2, both on port 2626 (implicit TLS). Each has its own store, certificate and
# management record (tls= signs the certificate, dx= names its host); DNS is an offline file of
# records (var/pair/dns.txt: the _dime TXT records and the dx hosts' addresses), which each
# dimed and `dime send` read instead of asking the network. alice writes to bob and bob to
# alice with `dime send`: the sender resolves the destination's record, fetches and validates
# its signets over DMTP, wraps and origin-signs, queues; its dimed delivers; the destination's
# dimed accepts into bob's Maildir; the demo opens it there as bob. Then alpha's SMTP gateway
# (127.0.0.1:2587, or $DIME_DEMO_SMTP_PORT) takes plain mail from swaks, as an MTA would hand it
# over, and delivers it to bob encrypted. Both daemons then keep running in the foreground
# until Ctrl-C.
set -euo pipefail
DIME=$(cd "$(dirname "${1:-build/bin/dime}")" && pwd)/$(basename "${1:-build/bin/dime}")
DIMED=$(dirname "$DIME")/dimed
ROOT=$(pwd)/var/pair
PORT=${DIME_DEMO_PORT:-2626}
SMTP_PORT=${DIME_DEMO_SMTP_PORT:-2587}
mkdir -p "$ROOT"

step() { printf '\n== %s\n' "$*"; }

# org NAME DOMAIN ADDR USER: a directory with its store, certificate and dimed.conf; the record
# and the dx address go into the shared records file.
org() {
	local d=$ROOT/$1 domain=$2 addr=$3 user=$4
	mkdir -p "$d"
	cd "$d"
	if ! "$DIME" --store var/dime.db store export "$domain" >/dev/null 2>&1; then
		step "$domain: organisation, user $user@$domain, certificate for dx.$domain"
		"$DIME" --store var/dime.db org create "$domain" --name "Demo ${1^}" >/dev/null
		"$DIME" --store var/dime.db user create "$user@$domain" --name "${user^} Demo" >/dev/null
	fi
	# the SMTP gateway's author for the plain mail it wraps (docs/smtp.md, "Flows")
	if ! "$DIME" --store var/dime.db store export "postmaster@$domain" >/dev/null 2>&1; then
		"$DIME" --store var/dime.db user create "postmaster@$domain" >/dev/null
	fi
	if [ ! -s cert.pem ]; then
		openssl req -x509 -newkey rsa:3072 -nodes -keyout key.pem -out cert.pem -days 365 \
			-subj "/CN=dx.$domain" -addext "subjectAltName=DNS:dx.$domain" >/dev/null 2>&1
	fi
	"$DIME" --store var/dime.db mrec generate --org "$domain" --tls-cert cert.pem \
		--dx "dx.$domain" --pol mixed >record.txt
	# `_dime.D. IN TXT "..." "..."` -> `_dime.D 3600 TXT "..." "..."`
	sed -e 's/^\([^ ]*\)\. IN TXT /\1 3600 TXT /' record.txt >>"$ROOT/dns.txt"
	printf 'dx.%s 3600 A %s\n' "$domain" "$addr" >>"$ROOT/dns.txt"
	cat >dimed.conf <<EOF
# dimed for $domain (tools/demo-pair.sh); every key: docs/dimed.conf
hostname = dx.$domain
listen = $addr:$PORT dmtp
$([ "$1" = alpha ] && echo "listen = 127.0.0.1:$SMTP_PORT smtp")
dx_port = $PORT
dns_static = $ROOT/dns.txt
workers = 2
outbound_workers = 2
outq_first_retry = 5s
outq_max_interval = 1m
[tls]
cert = $d/cert.pem
key = $d/key.pem
EOF
	cd - >/dev/null
}

: >"$ROOT/dns.txt"
org alpha alpha.example 127.0.0.1 alice
org beta beta.example 127.0.0.2 bob
step "the records both daemons read (var/pair/dns.txt)"
cat "$ROOT/dns.txt"

PIDS=()
stop_all() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap stop_all EXIT
trap 'exit 0' INT TERM
for o in alpha beta; do
	rm -f "$ROOT/$o/ports"
	(cd "$ROOT/$o" && exec "$DIMED" --config dimed.conf --ports-file ports) \
		>>"$ROOT/$o/dimed.log" 2>&1 &
	PIDS+=("$!")
done
for o in alpha beta; do
	for _ in $(seq 100); do [ -s "$ROOT/$o/ports" ] && break; sleep 0.1; done
	[ -s "$ROOT/$o/ports" ] || {
		echo "dimed for $o did not start:" >&2
		tail -5 "$ROOT/$o/dimed.log" >&2
		exit 1
	}
done
step "dimed: alpha.example on 127.0.0.1:$PORT, beta.example on 127.0.0.2:$PORT (logs: var/pair/*/dimed.log)"

# boxn DIR ADDR: how many messages ADDR's Maildir holds (a rerun finds the earlier ones).
boxn() {
	local box=$ROOT/$1/var/mail/${2#*@}/${2%@*}/new
	if [ -d "$box" ]; then find "$box" -type f | wc -l; else echo 0; fi
}
# newest DIR ADDR BEFORE: wait (30 s) until ADDR's Maildir holds more than BEFORE; print the
# newest file's path.
newest() {
	local box=$ROOT/$1/var/mail/${2#*@}/${2%@*}/new
	for _ in $(seq 300); do
		[ "$(boxn "$1" "$2")" -gt "$3" ] && { echo "$box/$(ls -t "$box" | head -1)"; return 0; }
		sleep 0.1
	done
	echo "nothing arrived for $2 (see var/pair/*/dimed.log)" >&2
	return 1
}
# send FROM-ORG FROM TO: write a mail, queue it with dime send at FROM-ORG's instance.
send() {
	local d=$ROOT/$1
	mkdir -p "$d/sent"
	BEFORE=$(boxn "$([ "$1" = alpha ] && echo beta || echo alpha)" "$3")
	cat >"$d/sent/to-${3%@*}.eml" <<MAIL
Date: $(date -R)
From: $2
To: $3
Subject: Hello from ${2#*@}
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hello ${3%@*}, this message crossed from ${2#*@} to ${3#*@} over DMTP, encrypted and signed.
MAIL
	(cd "$d" && "$DIME" send --config dimed.conf --from "$2" --to "$3" <"sent/to-${3%@*}.eml")
}
# opened TO-ORG ADDR FROM-ORG: wait for the message in ADDR's Maildir, open it as ADDR, compare.
opened() {
	local f
	f=$(newest "$1" "$2" "$BEFORE") || exit 1
	# the recipient checks the author's signature: --config fetches and validates the author's
	# signet from the author's domain when the store does not hold it yet
	(cd "$ROOT/$1" && "$DIME" msg open --as recipient --config dimed.conf <"$f") \
		>"$ROOT/$1/opened.eml"
	if cmp -s "$ROOT/$3/sent/to-${2%@*}.eml" "$ROOT/$1/opened.eml"; then
		echo "$2 opened it: byte for byte what was sent ($f):"
		cat "$ROOT/$1/opened.eml"
	else
		echo "$2's copy differs from what was sent" >&2
		exit 1
	fi
}

step "alice@alpha.example writes to bob@beta.example"
send alpha alice@alpha.example bob@beta.example
opened beta bob@beta.example alpha
step "bob@beta.example answers alice@alpha.example"
send beta bob@beta.example alice@alpha.example
opened alpha alice@alpha.example beta

step "plain SMTP into alpha's gateway (127.0.0.1:$SMTP_PORT, as an MTA hands it over): alice to bob"
cat >"$ROOT/alpha/sent/smtp-to-bob.eml" <<MAIL
Date: $(date -R)
From: alice@alpha.example
To: bob@beta.example
Subject: Through the SMTP gateway

Hello bob, this one left alpha.example as plain SMTP to its gateway, which wrapped it for you.
MAIL
before=$(boxn beta bob@beta.example)
swaks -s 127.0.0.1 -p "$SMTP_PORT" --tls -f alice@alpha.example -t bob@beta.example \
	--data @"$ROOT/alpha/sent/smtp-to-bob.eml" --hide-all || { echo "swaks failed" >&2; exit 1; }
echo "swaks: 250 from the gateway; waiting for it in bob's Maildir"
f=$(newest beta bob@beta.example "$before") || exit 1
(cd "$ROOT/beta" && "$DIME" msg open --as recipient --config dimed.conf <"$f") \
	>"$ROOT/beta/opened-smtp.eml"
# swaks ends the data with one more CRLF; the gateway took the mail with CRLF line ends
if tr -d '\r' <"$ROOT/beta/opened-smtp.eml" | sed '$d' | cmp -s - "$ROOT/alpha/sent/smtp-to-bob.eml"; then
	echo "bob opened it: byte for byte what swaks sent (CRLF line ends, as SMTP carries them):"
	cat "$ROOT/beta/opened-smtp.eml"
else
	echo "bob's copy of the SMTP mail differs from what was sent" >&2
	exit 1
fi

step "both daemons keep running; Ctrl-C stops them. In another terminal, from this directory:"
printf '  cd var/pair/alpha && %s send --config dimed.conf --from alice@alpha.example --to bob@beta.example < some.eml\n' "$DIME"
printf '  cd var/pair/alpha && %s queue list --config dimed.conf\n' "$DIME"
printf '  swaks -s 127.0.0.1 -p %s -f alice@alpha.example -t bob@beta.example   # the SMTP gateway\n' "$SMTP_PORT"
printf '  %s resolve bob@beta.example --dns-static var/pair/dns.txt --store var/pair/alpha/var/dime.db\n' "$DIME"
wait

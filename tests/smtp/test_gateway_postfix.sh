#!/usr/bin/env bash
# dimed as Postfix's after-queue content filter (docs/postfix.md), with a second dimed as a DIME
# destination: swaks -> Postfix smtpd -> queue -> dimefilter -> dimed (smtp listener) and then
#   - a legacy recipient: dimed -> Postfix's reinjection smtpd -> relayhost -> smtp-sink;
#   - a hosted user: wrapped by dimed into the user's Maildir (D/MIME), opened by the user;
#   - a user of the other DIME domain: wrapped with the sender's keys, origin-signed, delivered
#     over DMTP to the second dimed, opened there by the recipient;
#   - smtp-source load to a hosted user with dimed killed -9 in the middle, restarted, Postfix's
#     queue flushed: every message Postfix took arrives (none lost; a duplicate is allowed).
# Records come from an offline file (dns_static): alpha.example on 127.0.0.1, beta.example on
# 127.0.0.2, each dimed's certificate signed by its record's tls=. Root only (private Postfix).
set -u
source "$(dirname "$0")/../cli/lib.sh" "$@"
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/postfix_lib.sh"
pf_require
DIME=$(cd "$(dirname "$DIME")" && pwd)/$(basename "$DIME")
DIMED=$(dirname "$DIME")/dimed
[ -x "$DIMED" ] || { echo "no dimed next to $DIME: skip"; exit 77; }
ip addr show lo 2>/dev/null | grep -q '127.0.0.1/8' || { echo "loopback is not 127.0.0.1/8: skip"; exit 77; }
unset DIME_STORE

chmod 0755 "$TMP"
declare -A PID
stop_dimed() {
	[ -n "${PID[$1]:-}" ] || return 0
	kill -TERM "${PID[$1]}" 2>/dev/null
	wait "${PID[$1]}" 2>/dev/null
	PID[$1]=
}
trap 'stop_dimed a; stop_dimed b; pf_cleanup; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM HUP

read -r F R P < <(pf_free_port 3 | xargs)
: >"$TMP/dns.txt"
org() { # DIR DOMAIN ADDR USERS...
	local d=$TMP/$1 domain=$2 addr=$3
	shift 3
	mkdir -p "$d"
	"$DIME" --store "$d/dime.db" org create "$domain" >/dev/null 2>&1 || fail "org $domain"
	for u in "$@"; do
		"$DIME" --store "$d/dime.db" user create "$u@$domain" >/dev/null 2>&1 || fail "user $u"
	done
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/key.pem" -out "$d/cert.pem" -days 2 \
		-subj "/CN=dx.$domain" -addext "subjectAltName=DNS:dx.$domain" >/dev/null 2>&1 ||
		fail "certificate for $domain"
	"$DIME" --store "$d/dime.db" mrec generate --org "$domain" --tls-cert "$d/cert.pem" \
		--dx "dx.$domain" --pol mixed | sed -e 's/^\([^ ]*\)\. IN TXT /\1 3600 TXT /' \
		>>"$TMP/dns.txt" || fail "record for $domain"
	printf 'dx.%s 3600 A %s\n' "$domain" "$addr" >>"$TMP/dns.txt"
	cat >"$d/dimed.conf" <<EOF
hostname = dx.$domain
listen = $addr:$P dmtp
store = $d/dime.db
spool = $d/spool
outq = $d/outq
maildir_root = $d/mail
dx_port = $P
dns_static = $TMP/dns.txt
policy = mixed
outq_first_retry = 1s
outq_max_interval = 5s
[tls]
cert = $d/cert.pem
key = $d/key.pem
EOF
}
org a alpha.example 127.0.0.1 alice postmaster
org b beta.example 127.0.0.2 bob postmaster
# alpha is the gateway: Postfix's filter on F, its reinjection smtpd on R
sed -i "/^listen = 127.0.0.1:$P dmtp/a listen = 127.0.0.1:$F smtp\nreinject = 127.0.0.1:$R" \
	"$TMP/a/dimed.conf"

start_dimed() { # DIR
	rm -f "$TMP/$1/ports"
	"$DIMED" --config "$TMP/$1/dimed.conf" --ports-file "$TMP/$1/ports" >>"$TMP/$1/dimed.log" 2>&1 &
	PID[$1]=$!
	local end=$((SECONDS + 60))
	until [ -s "$TMP/$1/ports" ]; do
		kill -0 "${PID[$1]}" 2>/dev/null && [ "$SECONDS" -lt "$end" ] ||
			{ fail "dimed $1 did not start: $(tail -5 "$TMP/$1/dimed.log")"; return 1; }
		sleep 0.1
	done
}
start_dimed a || done_tests
start_dimed b || done_tests
pf_sandwich "$TMP/mx" filter=127.0.0.1:$F reinject=127.0.0.1:$R ||
	{ fail "Postfix: $(tail -5 "$TMP/mx/pf/start.log" 2>/dev/null)"; done_tests; }
FRONT=$(pf_port "$TMP/mx/pf" smtpd)
SINK=$TMP/mx/sink
count() { find "$TMP/$1/mail/$2/$3/new" -type f 2>/dev/null | wc -l; }
wait_count() { # DIR DOMAIN USER N
	local end=$((SECONDS + 90))
	until [ "$(count "$1" "$2" "$3")" -ge "$4" ]; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.2
	done
}
submit() { # FROM TO BODYFILE
	swaks -s "${FRONT%:*}" -p "${FRONT##*:}" -f "$1" -t "$2" --data @"$3" \
		>"$TMP/swaks.out" 2>&1 || fail "swaks $1 -> $2: $(grep '<' "$TMP/swaks.out" | tail -3)"
}
body_of() { awk 'body { print } /^\r?$/ { body = 1 }' "$1" | tr -d '\r'; }

# 1. a legacy recipient: out through the reinjection to the sink, naked as policy mixed allows
printf 'From: alice@alpha.example\r\nTo: dave@legacy.test\r\nSubject: legacy\r\n\r\nto the naked world 4711\r\n' >"$TMP/m1.eml"
submit alice@alpha.example dave@legacy.test "$TMP/m1.eml"
pf_wait_sink_count "$SINK" 1 90 || fail "legacy: nothing reached the sink: $(pf_log "$TMP/mx/pf" | tail -5)"
grep -rqs 'to the naked world 4711' "$SINK/mail" || fail "legacy: the sink's copy lacks the body"

# 2. a hosted user: wrapped into alice's Maildir, opened by alice to the body sent
printf 'From: carol@legacy.test\r\nTo: alice@alpha.example\r\nSubject: inbound\r\n\r\nline one\r\n.line with a dot\r\nlast line\r\n' >"$TMP/m2.eml"
submit carol@legacy.test alice@alpha.example "$TMP/m2.eml"
wait_count a alpha.example alice 1 || fail "inbound: nothing in alice's Maildir: $(tail -3 "$TMP/a/dimed.log")"
f=$(find "$TMP/a/mail/alpha.example/alice/new" -type f | head -1)
grep -q 'line one' "$f" && fail "inbound: plaintext in the Maildir"
"$DIME" msg open --as recipient --config "$TMP/a/dimed.conf" <"$f" >"$TMP/m2.opened" 2>"$TMP/open.err" ||
	fail "inbound: open as alice: $(cat "$TMP/open.err")"
[ "$(body_of "$TMP/m2.opened")" = "$(body_of "$TMP/m2.eml")" ] || fail "inbound: the body differs"
grep -q '^Subject: inbound' "$TMP/m2.opened" || fail "inbound: the headers are not alice's mail"

# 3. another DIME domain: trustful wrap at alpha, DMTP to beta, opened by bob
printf 'From: alice@alpha.example\r\nTo: bob@beta.example\r\nSubject: dime\r\n\r\nover DMTP 1234\r\n' >"$TMP/m3.eml"
submit alice@alpha.example bob@beta.example "$TMP/m3.eml"
wait_count b beta.example bob 1 || fail "dime: nothing in bob's Maildir: $(tail -3 "$TMP/a/dimed.log")"
f=$(find "$TMP/b/mail/beta.example/bob/new" -type f | head -1)
"$DIME" msg open --as recipient --config "$TMP/b/dimed.conf" <"$f" >"$TMP/m3.opened" 2>"$TMP/open.err" ||
	fail "dime: open as bob: $(cat "$TMP/open.err")"
[ "$(body_of "$TMP/m3.opened")" = "$(body_of "$TMP/m3.eml")" ] || fail "dime: the body differs"
pf_wait_sink_count "$SINK" 1 1 && [ "$(pf_sink_count "$SINK")" = 1 ] ||
	fail "a D/MIME or hosted recipient's mail also went out naked"

# 4. kill -9 of the gateway under load: nothing Postfix was given is lost
N=60
before=$(count a alpha.example alice)
smtp-source -s 4 -m $N -l 2048 -f carol@legacy.test -t alice@alpha.example "$FRONT" \
	>"$TMP/source.out" 2>&1 &
SRC=$!
end=$((SECONDS + 90))
until [ "$(count a alpha.example alice)" -ge $((before + 10)) ] || [ "$SECONDS" -ge "$end" ]; do sleep 0.1; done
kill -9 "${PID[a]}"
wait "${PID[a]}" 2>/dev/null
PID[a]=
wait "$SRC" || fail "smtp-source: $(tail -3 "$TMP/source.out")"
start_dimed a || done_tests
pf_flush "$TMP/mx/pf"
end=$((SECONDS + 120))
until [ "$(pf_queue_count "$TMP/mx/pf")" = 0 ] && [ "$(count a alpha.example alice)" -ge $((before + N)) ]; do
	[ "$SECONDS" -lt "$end" ] || break
	sleep 1
	pf_flush "$TMP/mx/pf"
done
got=$(($(count a alpha.example alice) - before))
[ "$got" -ge "$N" ] || fail "kill -9: $got of $N in alice's Maildir, queue: $(pf_queue_count "$TMP/mx/pf")"
[ "$got" -le $((N + 8)) ] || fail "kill -9: $got copies of $N messages"
pf_log "$TMP/mx/pf" | grep -q 'status=bounced' && fail "Postfix bounced something: $(pf_log "$TMP/mx/pf" | grep bounced | head -2)"
echo "kill -9 under load: $got stored for $N sent"
done_tests

#!/usr/bin/env bash
# The Postfix harness (postfix_lib.sh) with a stand-in filter that is not dimed (passfilter.py):
# swaks -> Postfix smtpd -> queue -> dimefilter -> passfilter -> reinjection smtpd -> queue ->
# relayhost -> smtp-sink. The message arrives byte for byte (over STARTTLS); three recipients
# make three filter transactions of one recipient each; with the filter down mail is deferred
# and kept, and is delivered once after the filter is back and the queue flushed; smtp-source's
# 200 messages over 5 sessions all reach the sink; the filter killed -9 under load loses nothing
# it answered 250 for; the same over LMTP to the filter, with the socketmap and policy hooks on.
# The operator's snippets in docs/postfix.md are this configuration. Everything it started is
# stopped on exit, failed or not.
set -u
source "$(dirname "$0")/../cli/lib.sh" "$@"
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/postfix_lib.sh"
pf_require
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null ||
	{ echo "no python3-aiosmtpd (tools/install-deps.sh): skip"; exit 77; }
command -v openssl >/dev/null || { echo "no openssl: skip"; exit 77; }

# the postfix user and smtp-sink's nobody work in here
chmod 0755 "$TMP"
PF=$TMP/mx/pf
SINK=$TMP/mx/sink
FLOG=$TMP/filter.jsonl
read -r FPORT RPORT RPORT2 MPORT PPORT < <(pf_free_port 5 | xargs)
FILTER=127.0.0.1:$FPORT
REINJ=127.0.0.1:$RPORT
FPID=
HPID=

filter_start() { # DOWNSTREAM [passfilter flags]
	local down=$1 end
	shift
	rm -f "$TMP/filter.ready"
	/usr/bin/python3 "$HERE/passfilter.py" --listen "$FILTER" --downstream "$down" \
		--log "$FLOG" --ready "$TMP/filter.ready" "$@" </dev/null >>"$TMP/filter.out" 2>&1 &
	FPID=$!
	end=$((SECONDS + PF_DEADLINE))
	until [ -s "$TMP/filter.ready" ]; do
		if ! kill -0 "$FPID" 2>/dev/null || [ "$SECONDS" -ge "$end" ]; then
			fail "the stand-in filter did not start: $(tail -5 "$TMP/filter.out")"
			return 1
		fi
		sleep 0.1
	done
}
filter_stop() {
	[ -n "$FPID" ] || return 0
	kill "$FPID" 2>/dev/null
	wait "$FPID" 2>/dev/null
	FPID=
}
hooks_stop() {
	[ -n "$HPID" ] || return 0
	kill "$HPID" 2>/dev/null
	wait "$HPID" 2>/dev/null
	HPID=
}
trap 'filter_stop; hooks_stop; pf_cleanup; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM HUP

# SUBJECT-or-recipient lookups in the sink and the filter's log
sink_files() { grep -lsF -- "$1" "$SINK"/mail/* 2>/dev/null; } # PATTERN -> the files holding it
sink_n() { sink_files "$1" | wc -l; }
filter_n() { grep -c -F -- "\"$1\"" "$FLOG" 2>/dev/null || true; } # transactions for rcpt $1
front() { pf_port "$PF" smtpd; }

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/gw.key" -out "$TMP/gw.pem" -days 2 \
	-subj "/CN=gw.example.org" >/dev/null 2>&1 || fail "certificate"
filter_start "$REINJ" || done_tests
if ! pf_sandwich "$TMP/mx" filter="$FILTER" reinject="$REINJ" smtpd_tls_security_level=may \
	smtpd_tls_cert_file="$TMP/gw.pem" smtpd_tls_key_file="$TMP/gw.key" smtpd_tls_loglevel=1 \
	2>"$TMP/pf_start.err"; then
	fail "pf_sandwich: $(cat "$TMP/pf_start.err")"
	done_tests
fi

# 0. docs/postfix.md shows the filter's lines of this very configuration (ports 10025/10026
# there), so that the operator's snippets are the tested ones. Compared line by line, runs of
# blanks squeezed.
DOC=$HERE/../../docs/postfix.md
{
	postconf -c "$PF/etc" -n content_filter receive_override_options \
		dimefilter_destination_recipient_limit dimefilter_destination_concurrency_limit
	postconf -c "$PF/etc" -Mf dimefilter/unix "$REINJ/inet"
} | sed "s/:$FPORT\b/:10025/; s/:$RPORT\b/:10026/" | tr -s ' ' >"$TMP/snippet"
[ "$(wc -l <"$TMP/snippet")" -ge 14 ] || fail "postconf printed $(wc -l <"$TMP/snippet") lines"
tr -s ' ' <"$DOC" >"$TMP/doc" || fail "no $DOC"
while IFS= read -r line; do
	grep -qxF -- "$line" "$TMP/doc" || fail "docs/postfix.md does not show the tested line: $line"
done <"$TMP/snippet"
# and its postconf commands, run on a copy of the Debian master.cf, make those same lines
mkdir -p "$TMP/apply"
cp /usr/share/postfix/master.cf.dist "$TMP/apply/master.cf" && : >"$TMP/apply/main.cf"
awk '/^postconf -e/ { p = 1 } /^postfix reload/ { exit } p' "$DOC" |
	sed "s|^postconf |postconf -c $TMP/apply |" >"$TMP/apply.sh"
if [ ! -s "$TMP/apply.sh" ] || ! bash -e "$TMP/apply.sh" >"$TMP/apply.out" 2>&1; then
	fail "the postconf commands of docs/postfix.md: $(cat "$TMP/apply.out" 2>/dev/null)"
else
	{
		postconf -c "$TMP/apply" -n content_filter receive_override_options \
			dimefilter_destination_recipient_limit dimefilter_destination_concurrency_limit
		postconf -c "$TMP/apply" -Mf dimefilter/unix 127.0.0.1:10026/inet
	} | tr -s ' ' >"$TMP/applied"
	cmp -s "$TMP/snippet" "$TMP/applied" || fail "docs/postfix.md's postconf commands make" \
		"another configuration: $(diff "$TMP/snippet" "$TMP/applied")"
fi

# 1. Byte for byte: dot lines, 8-bit text, trailing blanks, empty lines, a 900-octet line. The
# sink's copy, less its X-* envelope lines and the Received: headers Postfix and the sink put on
# top, is what swaks sent. swaks sends the file and then CRLF . CRLF, so the file has no final
# CRLF of its own (else the message would gain an empty line).
{
	printf 'From: a@example.org\r\nTo: exact@example.net\r\nSubject: harness-exact\r\n'
	printf 'Date: Sun, 06 Dec 2026 20:00:00 +0000\r\nMessage-ID: <exact.1@example.org>\r\n'
	printf 'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n'
	printf 'Content-Transfer-Encoding: 8bit\r\n\r\n'
	printf '.\r\n..two dots\r\n. dot space\r\nFrom the start of a line\r\n'
	printf 'trailing blanks \t \r\n\r\n\r\nh\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac\r\n'
	printf '%0900d\r\n' 7
	printf 'last line'
} >"$TMP/exact.eml"
swaks -s "$(front)" -f a@example.org -t exact@example.net --data @"$TMP/exact.eml" --tls \
	>"$TMP/swaks.out" 2>&1 || fail "swaks exact: $(tail -5 "$TMP/swaks.out")"
grep -q '^<~ *250 ' "$TMP/swaks.out" ||
	fail "swaks did not send over TLS: $(tail -5 "$TMP/swaks.out")"
pf_wait_log "$PF" 'smtpd.*TLS connection established from' || fail "no TLS in the maillog"
pf_wait_queue_empty "$PF" || fail "the queue did not drain after the exact message"
f=$(sink_files 'harness-exact')
if [ "$(echo "$f" | grep -c .)" != 1 ]; then
	fail "the exact message reached the sink $(echo "$f" | grep -c .) times, want 1"
else
	# drop the sink's X-* envelope lines, then the Received: headers (with their folded lines)
	awk 'BEGIN { top = 1; rcvd = 0 }
		top && /^X-[A-Za-z-]+: / { next }
		{ top = 0 }
		rcvd && /^[ \t]/ { next }
		{ rcvd = 0 }
		!body && /^Received: / { rcvd = 1; next }
		{ body = 1; print }' "$f" | sed '$ { /^$/d }' >"$TMP/exact.got"
	# the sink writes lines with LF (the wire had CRLF) and an empty line after each message
	{
		sed 's/\r$//' "$TMP/exact.eml"
		echo
	} >"$TMP/exact.want"
	cmp -s "$TMP/exact.want" "$TMP/exact.got" ||
		fail "the message changed on the way: $(diff "$TMP/exact.want" "$TMP/exact.got" | head -10)"
fi
[ "$(filter_n exact@example.net)" = 1 ] ||
	fail "the filter saw exact@ $(filter_n exact@example.net) times"

# 2. One message to three recipients: three filter transactions, one recipient each.
swaks -s "$(front)" -f a@example.org -t r1@example.net,r2@example.net,r3@example.net \
	--header "Subject: harness-three" --body "three" >"$TMP/swaks.out" 2>&1 ||
	fail "swaks three: $(tail -5 "$TMP/swaks.out")"
pf_wait_queue_empty "$PF" || fail "the queue did not drain after the three-recipient message"
for r in r1 r2 r3; do
	n=$(grep -F "\"$r@example.net\"" "$FLOG" | grep -c '"rcpt": \["[^"]*"\]')
	[ "$n" = 1 ] || fail "$r@example.net: $n one-recipient filter transactions, want 1"
done
n=$(grep -c -E '"(r1|r2|r3)@example.net"' "$FLOG")
[ "$n" = 3 ] || fail "three recipients made $n filter transactions, want 3"
grep -E '"(r1|r2|r3)@example.net"' "$FLOG" | grep -qv '"reply": "250 ' &&
	fail "a filter transaction was not answered 250: $(grep -E '"r[123]@' "$FLOG")"
[ "$(sink_n harness-three)" = 3 ] || fail "the sink kept $(sink_n harness-three) copies, want 3"

# 3. Filter down: the message is deferred and kept; filter back and a flush: delivered once.
filter_stop
swaks -s "$(front)" -f a@example.org -t deferred@example.net --header "Subject: harness-deferred" \
	--body "later" >"$TMP/swaks.out" 2>&1 || fail "swaks deferred: $(tail -5 "$TMP/swaks.out")"
pf_wait_log "$PF" 'to=<deferred@example.net>.*status=deferred' ||
	fail "no deferral logged with the filter down"
pf_queue "$PF" | grep -q '"deferred@example.net"' || fail "the deferred message is not in the queue"
[ "$(sink_n harness-deferred)" = 0 ] || fail "delivered with the filter down"
filter_start "$REINJ"
pf_flush "$PF" || fail "postqueue -f"
pf_wait_queue_empty "$PF" || fail "the deferred message stayed queued after the flush"
[ "$(sink_n harness-deferred)" = 1 ] ||
	fail "the deferred message reached the sink $(sink_n harness-deferred) times, want 1"
[ "$(filter_n deferred@example.net)" = 1 ] ||
	fail "the filter saw the deferred message $(filter_n deferred@example.net) times, want 1"

# 4. Load: 200 messages over 5 sessions, all in the sink, each through the filter once.
if ! smtp-source -s 5 -m 200 -l 1024 -f load@example.org -t load@example.net -S harness-load \
	"$(front)" >"$TMP/source.out" 2>&1; then
	fail "smtp-source: $(tail -5 "$TMP/source.out")"
fi
pf_wait_queue_empty "$PF" || fail "the queue did not drain after the load"
[ "$(filter_n load@example.net)" = 200 ] ||
	fail "the filter relayed $(filter_n load@example.net) of 200"
[ "$(sink_n '<load@example.net>')" = 200 ] ||
	fail "the sink kept $(sink_n '<load@example.net>') of 200"
# what the kill -9 tests check: every message the filter answered 250 for is in the sink
pf_accepted "$PF" "$FILTER" | awk '$2 == "<load@example.net>" { print $1 }' | sort >"$TMP/acc"
[ "$(sort -u "$TMP/acc" | wc -l)" = 200 ] ||
	fail "the maillog shows $(sort -u "$TMP/acc" | wc -l) distinct messages the filter took, want 200"
sink_files '<load@example.net>' | xargs -r grep -hi '^Message-ID:' | awk '{ print $2 }' |
	sort >"$TMP/got"
[ -z "$(comm -23 "$TMP/acc" "$TMP/got")" ] ||
	fail "taken by the filter, not in the sink: $(comm -23 "$TMP/acc" "$TMP/got" | head -3)"

# 4b. The filter killed -9 under load, then started again: nothing it answered 250 for is lost,
# and every message Postfix accepted arrives (at least once: an answer lost with the filter
# makes Postfix send the message again, which a pass-through filter cannot tell).
smtp-source -s 5 -m 300 -l 1024 -f kill@example.org -t kill@example.net -S harness-kill \
	"$(front)" >"$TMP/source2.out" 2>&1 &
spid=$!
end=$((SECONDS + PF_DEADLINE))
until [ "$(filter_n kill@example.net)" -ge 50 ] || [ "$SECONDS" -ge "$end" ]; do sleep 0.05; done
kill -9 "$FPID"
wait "$FPID" 2>/dev/null
FPID=
killed_at=$(filter_n kill@example.net)
wait "$spid" || fail "smtp-source (kill): $(tail -5 "$TMP/source2.out")"
filter_start "$REINJ" || done_tests
pf_flush "$PF" || fail "postqueue -f"
pf_wait_queue_empty "$PF" || fail "the queue did not drain after the filter came back"
pf_accepted "$PF" "$FILTER" | awk '$2 == "<kill@example.net>" { print $1 }' | sort -u >"$TMP/acc"
sink_files '<kill@example.net>' | xargs -r grep -hi '^Message-ID:' | awk '{ print $2 }' |
	sort >"$TMP/got"
[ -z "$(comm -23 "$TMP/acc" "$TMP/got")" ] ||
	fail "kill -9: taken by the filter, not in the sink: $(comm -23 "$TMP/acc" "$TMP/got" | head -3)"
[ "$(sort -u "$TMP/got" | wc -l)" = 300 ] ||
	fail "kill -9: $(sort -u "$TMP/got" | wc -l) of 300 distinct messages in the sink"
[ "$killed_at" -lt 300 ] || echo "note: the filter was killed after the whole load had passed" >&2

# 5. LMTP to the filter (dimed's LMTP mode): a second instance with filter_proto=lmtp, relaying to
# the same sink; the filter now speaks LMTP and reinjects into the second instance. The optional
# hooks are on: transport_maps asks a socketmap (hooks_standin.py: NOTFOUND, normal routing), and a
# policy service refuses deny@ at RCPT TO.
PF2=$TMP/lmtp
HLOG=$TMP/hooks.log
filter_stop
filter_start "127.0.0.1:$RPORT2" --lmtp || done_tests
/usr/bin/python3 "$HERE/hooks_standin.py" --socketmap "127.0.0.1:$MPORT" --policy "127.0.0.1:$PPORT" \
	--log "$HLOG" --ready "$TMP/hooks.ready" </dev/null >"$TMP/hooks.out" 2>&1 &
HPID=$!
end=$((SECONDS + PF_DEADLINE))
until [ -s "$TMP/hooks.ready" ] || [ "$SECONDS" -ge "$end" ] || ! kill -0 "$HPID" 2>/dev/null; do
	sleep 0.1
done
[ -s "$TMP/hooks.ready" ] || fail "hooks_standin.py did not start: $(tail -5 "$TMP/hooks.out")"
if ! pf_start "$PF2" filter="$FILTER" filter_proto=lmtp reinject="127.0.0.1:$RPORT2" \
	relay="$(pf_port "$PF" relay)" socketmap="127.0.0.1:$MPORT" policy="127.0.0.1:$PPORT" \
	2>"$TMP/pf_start.err"; then
	fail "pf_start lmtp: $(cat "$TMP/pf_start.err")"
else
	swaks -s "$(pf_port "$PF2" smtpd)" -f a@example.org -t deny@example.net --quit-after RCPT \
		>"$TMP/swaks.out" 2>&1
	grep -q '^<\*\* *554 5.7.1 .*refused by the policy stand-in' "$TMP/swaks.out" ||
		fail "the policy service did not refuse deny@: $(tail -3 "$TMP/swaks.out")"
	swaks -s "$(pf_port "$PF2" smtpd)" -f a@example.org -t l1@example.net,l2@example.net \
		--header "Subject: harness-lmtp" --body "lmtp" >"$TMP/swaks.out" 2>&1 ||
		fail "swaks lmtp: $(tail -5 "$TMP/swaks.out")"
	pf_wait_queue_empty "$PF2" || fail "the LMTP instance's queue did not drain"
	[ "$(filter_n l1@example.net)" = 1 ] && [ "$(filter_n l2@example.net)" = 1 ] ||
		fail "LMTP: the filter saw l1 $(filter_n l1@example.net), l2 $(filter_n l2@example.net) times"
	[ "$(sink_n harness-lmtp)" = 2 ] || fail "LMTP: the sink kept $(sink_n harness-lmtp) of 2"
	n=$(pf_log "$PF2" | grep -c "postfix/lmtp.*relay=127.0.0.1\[127.0.0.1\]:$FPORT,.*status=sent")
	[ "$n" = 2 ] || fail "LMTP: $n lmtp deliveries to the filter logged, want 2"
	[ "$(pf_accepted "$PF2" "$FILTER" | wc -l)" = 2 ] ||
		fail "LMTP: pf_accepted: $(pf_accepted "$PF2" "$FILTER")"
	grep -qx 'policy l1@example.net DUNNO' "$HLOG" || fail "the policy service was not asked for l1"
	grep -qx 'socketmap dime l1@example.net' "$HLOG" || fail "transport_maps did not ask for l1"
	[ "$(sink_n deny@example.net)" = 0 ] || fail "mail for deny@ reached the sink"
fi

# 6. Stopping leaves nothing behind.
fpid=$FPID
spid=$(cat "$SINK/pid")
filter_stop
hooks_stop
pf_cleanup
for d in "$PF" "$PF2"; do
	left=$(_pf_pids "$d")
	[ -z "$left" ] || fail "Postfix processes of $d left after pf_cleanup: $left"
done
kill -0 "$fpid" 2>/dev/null && fail "the filter is still running"
kill -0 "$spid" 2>/dev/null && fail "smtp-sink is still running"
[ "$FAILS" = 0 ] || {
	echo "--- maillog" >&2
	tail -40 "$PF/maillog" >&2
}
done_tests

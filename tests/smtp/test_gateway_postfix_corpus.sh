#!/usr/bin/env bash
# The SpamAssassin public corpus through the whole Postfix chain (issue 13): each message handed
# over SMTP (tests/corpus/corpus_smtp.py, as test_gateway_corpus sends it) to a private Postfix's
# smtpd on loopback, from alice@alpha.example to bob@beta.example -> Postfix's queue ->
# content_filter dimefilter -> alpha's dimed smtp listener, which wraps it with alice's keys,
# origin-signs it and delivers it over DMTP to beta's dimed -> bob's Maildir, opened as bob in
# one batch. Each opened message, less its first header field (the Received: line the test
# Postfix prepends, RFC 5321 §4.4, matched to the message by the queue id of Postfix's reply),
# is byte for byte the message sent; Postfix is configured to change nothing else
# (docs/postfix.md, "Byte-exact transit", which must show the settings used here).
# What Postfix changes whatever its configuration, listed by name and counted in the output and
# checked to be exactly that change: its smtpd turns the mbox From_ line(s) at the very start of
# the content (5,453 of the 6,046 corpus files begin with one) into "X-Mailbox-Line: From ..."
# headers, and would put an empty line before content beginning with white space (none in the
# corpus); both are hard-coded in smtpd's DATA loop ("Deal with UNIX-style From_ lines ...
# because sendmail permits it"; the empty line keeps such content from continuing smtpd's own
# Received: header). Any other difference fails, with the message's name and first differing
# line. Every message Postfix accepted reaches bob exactly once (its log shows each handed to
# dimed, the Maildir holds as many, each opened copy names a distinct queue id) and Postfix's
# queue is empty at the end. DIME_CORPUS_STRIDE=N: every Nth message (default 8; 1: all, about
# 2 minutes on 2 cores). Root only (a private Postfix: postfix_lib.sh); skipped offline.
set -u
source "$(dirname "$0")/../cli/lib.sh" "$@"
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/postfix_lib.sh"
source "$HERE/../corpus/corpus_lib.sh"
pf_require
DIME=$(cd "$(dirname "$DIME")" && pwd)/$(basename "$DIME")
DIMED=$(dirname "$DIME")/dimed
[ -x "$DIMED" ] || { echo "no dimed next to $DIME: skip"; exit 77; }
ip addr show lo 2>/dev/null | grep -q '127.0.0.1/8' || { echo "loopback is not 127.0.0.1/8: skip"; exit 77; }
corpus_fetch
unset DIME_STORE
START=$SECONDS

chmod 0755 "$TMP"
declare -A PID
stop_all() { for p in "${PID[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap 'stop_all; pf_cleanup; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM HUP

read -r F R P < <(pf_free_port 3 | xargs)
: >"$TMP/dns.txt"
corpus_org a alpha.example 127.0.0.1 "$P" alice
corpus_org b beta.example 127.0.0.2 "$P" bob
sed -i "/^listen = 127.0.0.1:$P dmtp/a listen = 127.0.0.1:$F smtp" "$TMP/a/dimed.conf"
corpus_dimed a || done_tests
corpus_dimed b || done_tests

# The Postfix of docs/postfix.md plus what byte-exact transit needs (the same page, "Byte-exact
# transit", says why for each):
EXACT=(
	"local_header_rewrite_clients ="
	"always_add_missing_headers = no"
	"message_size_limit = 33554432"
	"header_size_limit = 1048576"
	"message_drop_headers ="
)
pf_sandwich "$TMP/mx" filter=127.0.0.1:$F reinject=127.0.0.1:$R "${EXACT[@]}" \
	filter_opt=smtp_line_length_limit=0 2>"$TMP/pf.err" ||
	{ fail "Postfix: $(cat "$TMP/pf.err")"; done_tests; }
PF=$TMP/mx/pf
FRONT=$(pf_port "$PF" smtpd)
HOST=$(postconf -c "$PF/etc" -h myhostname)

# docs/postfix.md, "Byte-exact transit", shows these very lines, and its postconf commands, run
# after the page's first ones on a copy of the Debian configuration, make them.
DOC=$HERE/../../docs/postfix.md
NAMES=(local_header_rewrite_clients always_add_missing_headers message_drop_headers
	header_size_limit message_size_limit)
exact_lines() { # CONFIG_DIR
	postconf -c "$1" -n "${NAMES[@]}"
	postconf -c "$1" -Mf dimefilter/unix | grep -e '-o smtp_line_length_limit='
}
exact_lines "$PF/etc" | tr -s ' ' >"$TMP/exact.lines"
[ "$(wc -l <"$TMP/exact.lines")" = 6 ] || fail "the running Postfix: $(cat "$TMP/exact.lines")"
tr -s ' ' <"$DOC" >"$TMP/doc"
while IFS= read -r line; do
	grep -qxF -- "$line" "$TMP/doc" || fail "docs/postfix.md does not show the tested line: $line"
done <"$TMP/exact.lines"
mkdir -p "$TMP/apply"
cp /usr/share/postfix/master.cf.dist "$TMP/apply/master.cf" && : >"$TMP/apply/main.cf"
{
	awk '/^postconf -e/ { p = 1 } /^postfix reload/ { exit } p' "$DOC"
	awk '/^## Byte-exact transit/ { s = 1; next } /^## / { s = 0 }
		s && /^postconf / { p = 1 } p && /^```/ { exit } p' "$DOC"
} | sed "s|^postconf |postconf -c $TMP/apply |" >"$TMP/apply.sh"
if ! bash -e "$TMP/apply.sh" >"$TMP/apply.out" 2>&1; then
	fail "the postconf commands of docs/postfix.md: $(cat "$TMP/apply.out")"
else
	exact_lines "$TMP/apply" | tr -s ' ' >"$TMP/applied.lines"
	cmp -s "$TMP/applied.lines" "$TMP/exact.lines" ||
		fail "docs/postfix.md's postconf commands make another configuration:" \
			"$(diff "$TMP/applied.lines" "$TMP/exact.lines")"
fi

corpus_send "$FRONT" "$TMP/sent.list" || fail "sending the corpus through Postfix"
N=$(wc -l <"$TMP/sent.list")
SENT=$SECONDS
BOX=$TMP/b/mail/beta.example/bob
corpus_wait_maildir "$BOX" "$N" 300 ||
	fail "bob's Maildir holds $(corpus_count "$BOX") of $N after 300 s"
pf_wait_queue_empty "$PF" 120 || fail "Postfix's queue: $(pf_queue_count "$PF") messages left"
got=$(corpus_count "$BOX")
[ "$got" -eq "$N" ] || fail "bob's Maildir holds $got messages, Postfix accepted $N"
# postlogd writes the maillog after the fact: the last deliveries may show up a little later
end=$((SECONDS + 30))
until acc=$(pf_accepted "$PF" "127.0.0.1:$F" | wc -l) && [ "$acc" -ge "$N" ]; do
	[ "$SECONDS" -lt "$end" ] || break
	sleep 0.5
done
[ "$acc" -eq "$N" ] || fail "Postfix's log shows $acc messages handed to dimed, it accepted $N"
pf_log "$PF" | grep -q 'status=bounced' &&
	fail "Postfix bounced: $(pf_log "$PF" | grep 'status=bounced' | head -3)"
d=$(pf_log "$PF" | grep -c 'status=deferred')
[ "$d" = 0 ] || echo "Postfix deferred $d deliveries on the way (retried; not a failure)"
STORED=$SECONDS

corpus_open b "$BOX" "$TMP/opened" || done_tests
corpus_check "$TMP/sent.list" "$TMP/opened" --received-by "$HOST" ||
	fail "opened messages differ from the sent ones beyond Postfix's Received: and From_ lines"
echo "corpus through Postfix and the gateway: $N sent ($((SENT - START)) s), $got stored" \
	"($((STORED - SENT)) s more), opened and checked ($((SECONDS - STORED)) s more)"
done_tests

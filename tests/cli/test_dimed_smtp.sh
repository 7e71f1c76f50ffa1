#!/bin/bash
# dimed with the SMTP gateway's smtp/lmtp listeners (dime/smtpd.h). Until main.c's
# dimed_gw_handler returns the gateway flows, dimed must refuse such a configuration, at start
# and under --check-config, with a clear error, and still start without one.
# TODO(lead): once dimed_gw_handler is wired, replace the refusal checks with a swaks dialogue
# against the smtp listener (EHLO, STARTTLS via --tls, MAIL/RCPT/DATA, a refused RCPT) and an
# lmtp one (swaks --protocol LMTP); the unit test test_daemon_smtpd covers the glue meanwhile.
# Args: DIME_BINARY INTEROP_DIR; dimed is next to dime.
source "$(dirname "$0")/lib.sh" "$@"
DIME=$(cd "$(dirname "$DIME")" && pwd)/$(basename "$DIME")
DIMED=$(dirname "$DIME")/dimed
[ -x "$DIMED" ] || { echo "no dimed next to $DIME: skip"; exit 77; }
unset DIME_STORE

W=$TMP/w
mkdir -p "$W"
cd "$W" || exit 1
"$DIME" --store var/dime.db org create alpha.example >/dev/null 2>&1 ||
	{ fail "cannot make the store"; done_tests; }

for mode in smtp lmtp; do
	cat >"$mode.conf" <<CONF
hostname = gw.alpha.example
listen = 127.0.0.1:0 dmtp
listen = 127.0.0.1:0 $mode
key_process = no
CONF
	expect 1 "" -- "$DIMED" --check-config --config "$mode.conf"
	grep -q "no gateway handler" "$TMP/stderr" ||
		fail "$mode: --check-config: no clear error: $(cat "$TMP/stderr")"
	rm -f ports
	expect 1 "" -- timeout 60 "$DIMED" --config "$mode.conf" --ports-file ports
	grep -q "no gateway handler" "$TMP/stderr" ||
		fail "$mode: start: no clear error: $(cat "$TMP/stderr")"
	[ ! -s ports ] || fail "$mode: ports written by a dimed that refused to start"
done

# Without smtp/lmtp listeners nothing changes: dimed starts and reports one port per listener.
cat >plain.conf <<CONF
hostname = gw.alpha.example
listen = 127.0.0.1:0 dmtp
key_process = no
CONF
"$DIMED" --config plain.conf --ports-file ports 2>dimed.log &
PID=$!
for _ in $(seq 1 300); do
	[ -s ports ] && break
	kill -0 $PID 2>/dev/null || break
	sleep 0.1
done
[ "$(wc -l <ports 2>/dev/null)" = 1 ] || fail "plain: ports file: $(cat ports 2>/dev/null)"
kill -TERM $PID 2>/dev/null
wait $PID || fail "plain: dimed exit $? after SIGTERM: $(tail -3 dimed.log)"
done_tests

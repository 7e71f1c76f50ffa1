#!/bin/bash
# ECOSYSTEM §6.2 against a live dimed: tests/smtp/probe.py runs every SMTP case on an smtp
# listener with STARTTLS and the cases that apply to LMTP on an lmtp listener, each with whole
# writes and one byte per send(). Then: every message the probe saw accepted is in alice's
# Maildir and opens to the bytes the probe expects stored (long lines whole, bare LFs as CRLF,
# smuggled commands in the body); bob, whose DATA was cut off (P20), has nothing; the canaries
# of R9 are nowhere in dimed's log; dimed's RSS grew by less than 64 MiB over the floods and
# huge lines; and dimed still serves: a swaks delivery over STARTTLS arrives and opens byte for
# byte. Last, P3 and P4 again on a dimed with smtp_bare_lf = reject: refused, nothing stored.
# Short timeouts (timeout_cmd, timeout_data and timeout_tls 3 s) for P17 and P18, a 64 KiB
# max_message for P19.
# Args: DIME_BINARY INTEROP_DIR; dimed is next to dime.
source "$(dirname "$0")/lib.sh" "$@"
DIME=$(cd "$(dirname "$DIME")" && pwd)/$(basename "$DIME")
DIMED=$(dirname "$DIME")/dimed
PROBE=$(cd "$(dirname "$0")/../smtp" && pwd)/probe.py
[ -x "$DIMED" ] || { echo "no dimed next to $DIME: skip"; exit 77; }
for t in swaks python3; do
	command -v $t >/dev/null || { echo "no $t (tools/install-deps.sh installs it): skip"; exit 77; }
done
unset DIME_STORE

W=$TMP/w
mkdir -p "$W"
cd "$W" || exit 1
{
	"$DIME" --store var/dime.db org create alpha.example &&
		for u in alice bob carl postmaster; do
			"$DIME" --store var/dime.db user create $u@alpha.example || exit 1
		done
} >/dev/null 2>&1 || { fail "cannot make the store"; done_tests; }
: >dns.txt # no records: every other domain is legacy
cat >gw.conf <<CONF
hostname = gw.alpha.example
listen = 127.0.0.1:0 dmtp
listen = 127.0.0.1:0 smtp
listen = 127.0.0.1:0 lmtp
dns_static = $W/dns.txt
policy = mixed
timeout_cmd = 3s
timeout_data = 3s
timeout_tls = 3s
max_message = 64k
smtp_max_rcpts = 100
CONF
expect 0 "is valid" -- "$DIMED" --check-config --config gw.conf
# Under ASan freed memory waits in a 256 MiB quarantine and is kept from the system, which the
# RSS bound would count: a small quarantine, and free pages returned.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4:allocator_release_to_os_interval_ms=100 \
	"$DIMED" --config gw.conf --ports-file ports 2>dimed.log &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 1 300); do
	[ "$(wc -l 2>/dev/null <ports)" = 3 ] && break
	kill -0 $PID 2>/dev/null || break
	sleep 0.1
done
[ "$(wc -l 2>/dev/null <ports)" = 3 ] || { fail "dimed did not start: $(tail -3 dimed.log)"; done_tests; }
SMTP=$(sed -n 2p ports)
LMTP=$(sed -n 3p ports)
MAIL=var/mail/alpha.example
count() { find "$MAIL/$1/new" -type f 2>/dev/null | wc -l; }
rss() { awk '$1 == "VmRSS:" { print $2 }' /proc/$PID/status; }

CANARY=probecanary$RANDOM$RANDOM$$
COMMON=(--from carol@legacy.test --rcpt alice@alpha.example --rcpt-p20 bob@alpha.example
	--rcpt-rst carl@alpha.example --max-rcpts 100 --timeout-cmd 3 --timeout-data 3 --timeout-tls 3
	--canary "$CANARY")
mkdir -p want
rss0=$(rss)
SECONDS=0
# both listeners at once (P17 waits out its timeouts on each)
timeout 300 python3 "$PROBE" --port "$SMTP" --tls --save want "${COMMON[@]}" all >probe-smtp.out 2>&1 &
P_SMTP=$!
timeout 300 python3 "$PROBE" --port "$LMTP" --lmtp --save want "${COMMON[@]}" all >probe-lmtp.out 2>&1 ||
	fail "probe on the lmtp listener: $(grep -v '^ok' probe-lmtp.out)"
wait $P_SMTP || fail "probe on the smtp listener: $(grep -v '^ok' probe-smtp.out)"
echo "probe: ${SECONDS} s for both listeners"
grep '^note' probe-smtp.out probe-lmtp.out
rss1=$(rss)
{ [ -n "$rss0" ] && [ -n "$rss1" ]; } || fail "no VmRSS for dimed (pid $PID)"
echo "dimed VmRSS ${rss0} kB before the probe, ${rss1} kB after"
[ $((rss1 - rss0)) -lt $((64 * 1024)) ] || fail "dimed's RSS grew by $((rss1 - rss0)) kB (>= 64 MiB)"

# still serving: a normal delivery over STARTTLS arrives and opens byte for byte
n_want=$(find want -type f | wc -l)
[ "$n_want" -gt 0 ] || fail "the probe saved no accepted message"
printf 'From: carol@legacy.test\r\nTo: alice@alpha.example\r\nSubject: after the probe\r\n\r\nStill here.\r\n' >last.eml
swaks -s 127.0.0.1 -p "$SMTP" --tls -f carol@legacy.test -t alice@alpha.example \
	--data @last.eml >swaks.out 2>&1 || fail "swaks after the probe: $(tail -5 swaks.out)"
grep -q '^<~  250 2.0.0 delivered as' swaks.out || fail "no 250 after DATA: $(tail -5 swaks.out)"
{ cat last.eml; printf '\r\n'; } >want/last.eml
n_want=$((n_want + 1))
for _ in $(seq 1 300); do [ "$(count alice)" -ge "$n_want" ] && break; sleep 0.1; done
[ "$(count alice)" = "$n_want" ] || fail "alice's Maildir holds $(count alice) messages, want $n_want"

# every stored message opens to exactly one of the expected ones, and each expected one is there
mkdir -p opened
i=0
for f in "$MAIL"/alice/new/*; do
	[ -f "$f" ] || continue
	i=$((i + 1))
	grep -q 'Still here\|P3 bare LF\|smuggled' "$f" && fail "plaintext in the Maildir: $f"
	"$DIME" msg open --as recipient --config gw.conf <"$f" >opened/$i 2>open.err ||
		fail "open $f as alice: $(cat open.err)"
done
(cd want && sha256sum -- * | awk '{ print $1 }' | sort) >want.sums
(cd opened && sha256sum -- * | awk '{ print $1 }' | sort) >opened.sums
if ! cmp -s want.sums opened.sums; then
	for w in want/*; do
		s=$(sha256sum <"$w" | awk '{ print $1 }')
		grep -q "$s" opened.sums || fail "$(basename "$w") was accepted but is not what alice got"
	done
	fail "alice's messages are not the accepted ones"
fi

# P20: the peer that went away mid-DATA left nothing for bob
[ "$(count bob)" = 0 ] || fail "bob's Maildir holds $(count bob) messages after cut-off DATA"
# R9: no canary (subject, body, sender, command argument) in any log line
grep -n "$CANARY" dimed.log && fail "the R9 canary is in dimed's log"
kill -0 $PID 2>/dev/null || fail "dimed died"
kill -TERM $PID 2>/dev/null
wait $PID || fail "dimed exit $? after SIGTERM: $(tail -3 dimed.log)"

# smtp_bare_lf = reject, on the same store: bare-LF command lines are refused and not run, and
# every message holding a bare CR or LF (P3, the four smuggling variants) gets one 550; nothing
# is stored
sed 's/^policy = mixed$/policy = mixed\nsmtp_bare_lf = reject/' gw.conf >gw-reject.conf
rm -f ports
"$DIMED" --config gw-reject.conf --ports-file ports 2>dimed-reject.log &
PID=$!
for _ in $(seq 1 300); do
	[ "$(wc -l 2>/dev/null <ports)" = 3 ] && break
	kill -0 $PID 2>/dev/null || break
	sleep 0.1
done
if [ "$(wc -l 2>/dev/null <ports)" = 3 ]; then
	for l in "2 --tls" "3 --lmtp"; do
		line=${l% *} opt=${l#* }
		timeout 120 python3 "$PROBE" --port "$(sed -n "${line}p" ports)" "$opt" \
			--bare-lf reject "${COMMON[@]}" P3 P4 >probe-reject.out 2>&1 ||
			fail "probe with smtp_bare_lf = reject ($opt): $(grep -v '^ok' probe-reject.out)"
	done
	[ "$(count alice)" = "$n_want" ] || fail "with smtp_bare_lf = reject alice got a message"
	kill -TERM $PID 2>/dev/null
	wait $PID || fail "dimed (reject) exit $? after SIGTERM: $(tail -3 dimed-reject.log)"
else
	fail "dimed with smtp_bare_lf = reject did not start: $(tail -3 dimed-reject.log)"
fi
[ "$FAILS" = 0 ] || { echo "dimed's log, last lines:"; tail -20 dimed.log; } >&2
done_tests

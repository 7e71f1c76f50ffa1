#!/bin/bash
# dimed's socketmap and policy services (dime/pfsvc.h) behind a private Postfix instance
# (postfix_lib.sh): test_daemon_pfsvc --serve runs them with its scripted route handler
# (dmime.example and local.example: the gateway; naked.example: normal delivery; defer.example:
# try later; refuse.example: strict, refused). Postfix's smtpd asks the policy service at RCPT
# TO (550 5.7.1 and 450 4.7.0 with the handler's reason) and trivial-rewrite asks the socketmap
# (the gateway's next hop, here a second sink, or NOTFOUND: the relay sink); postmap -q asks
# the socketmap directly. Root only (else skipped), as the other smtp/ tests.
source "$(dirname "$0")/../cli/lib.sh" "$@"
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/postfix_lib.sh"
pf_require
SVC=$(cd "$(dirname "$DIME")" && pwd)/test_daemon_pfsvc
[ -x "$SVC" ] || { echo "no test_daemon_pfsvc next to $DIME: skip"; exit 77; }
command -v swaks >/dev/null || { echo "no swaks: skip"; exit 77; }

chmod 0755 "$TMP"
SPID=
svc_stop() {
	[ -n "$SPID" ] || return 0
	kill -TERM "$SPID" 2>/dev/null
	wait "$SPID" 2>/dev/null
	local rc=$?
	SPID=
	return $rc
}
trap 'svc_stop; pf_cleanup; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM HUP

# The gateway's stand-in: a second sink, named by the socketmap's OK answer.
read -r GPORT < <(pf_free_port 1)
pf_sink_start "$TMP/gw" "127.0.0.1:$GPORT" || { fail "gateway sink"; done_tests; }
"$SVC" --serve "smtp:[127.0.0.1]:$GPORT" "$TMP/svc.ports" >"$TMP/svc.log" 2>&1 &
SPID=$!
end=$((SECONDS + PF_DEADLINE))
until [ -s "$TMP/svc.ports" ] || [ "$SECONDS" -ge "$end" ] || ! kill -0 "$SPID" 2>/dev/null; do
	sleep 0.1
done
read -r MPORT PPORT <"$TMP/svc.ports" || { fail "the service did not start: $(cat "$TMP/svc.log")"; done_tests; }

# postmap -q, Postfix's own socketmap client, against the service
PM=$TMP/pm
mkdir -p "$PM" && : >"$PM/main.cf"
out=$(postmap -c "$PM" -q bob@dmime.example "socketmap:inet:127.0.0.1:$MPORT:dime" 2>&1)
[ "$out" = "smtp:[127.0.0.1]:$GPORT" ] || fail "postmap -q bob@dmime.example: [$out]"
out=$(postmap -c "$PM" -q bob@naked.example "socketmap:inet:127.0.0.1:$MPORT:dime" 2>&1) &&
	fail "postmap -q bob@naked.example found [$out]"
out=$(postmap -c "$PM" -q bob@refuse.example "socketmap:inet:127.0.0.1:$MPORT:dime" 2>&1)
[ "$out" = "error:5.7.1 strict domain, no signet" ] || fail "postmap -q bob@refuse.example: [$out]"

if ! pf_sandwich "$TMP/mx" socketmap="127.0.0.1:$MPORT" policy="127.0.0.1:$PPORT" \
	2>"$TMP/pf_start.err"; then
	fail "pf_sandwich: $(cat "$TMP/pf_start.err")"
	done_tests
fi
PF=$TMP/mx/pf
S=$(pf_port "$PF" smtpd)

# refusals at RCPT TO by the policy service, with the handler's reason
swaks -s "$S" -f a@example.org -t x@refuse.example --quit-after RCPT >"$TMP/swaks.out" 2>&1
grep -q '^<\*\* *550 5.7.1 .*strict domain, no signet' "$TMP/swaks.out" ||
	fail "refuse.example at RCPT: $(grep '^<' "$TMP/swaks.out" | tail -2)"
swaks -s "$S" -f a@example.org -t x@defer.example --quit-after RCPT >"$TMP/swaks.out" 2>&1
grep -q '^<\*\* *450 4.7.0 .*signet unavailable now' "$TMP/swaks.out" ||
	fail "defer.example at RCPT: $(grep '^<' "$TMP/swaks.out" | tail -2)"
grep -q '^route x@refuse.example <a@example.org>$' "$TMP/svc.log" ||
	fail "the handler did not see the policy request's sender: $(cat "$TMP/svc.log")"

# routing: D/MIME and local recipients to the gateway, naked ones to normal delivery
swaks -s "$S" -f a@example.org -t d1@dmime.example,l1@local.example,n1@naked.example \
	--header "Subject: pfsvc-route" --body "routing" >"$TMP/swaks.out" 2>&1 ||
	fail "swaks: $(tail -5 "$TMP/swaks.out")"
pf_wait_queue_empty "$PF" || fail "the queue did not drain: $(pf_queue "$PF")"
# smtp-sink keeps each RCPT's arguments: "X-Rcpt-Args: <addr> ORCPT=..."
rcpts() { cat "$1"/mail/* 2>/dev/null | sed -n 's/^X-Rcpt-Args: *<\([^>]*\)>.*/\1/p' | sort | xargs; }
gw=$(rcpts "$TMP/gw")
relay=$(rcpts "$TMP/mx/sink")
[ "$gw" = "d1@dmime.example l1@local.example" ] || fail "the gateway got [$gw]"
[ "$relay" = "n1@naked.example" ] || fail "normal delivery got [$relay]"

svc_stop || fail "the service did not exit 0 on SIGTERM"
done_tests

#!/bin/bash
# dimed with the Postfix lookup services (socketmap, policy; dime/pfsvc.h) configured. Without
# a gateway route handler built in, dimed must refuse to start and say why. With one, the
# ports file lists their ports in listener order, the services answer what needs no decision
# (another map name: PERM; a policy request at MAIL: DUNNO), and SIGTERM drains both servers.
# Args: DIME_BINARY INTEROP_DIR; dimed is next to dime.
source "$(dirname "$0")/lib.sh" "$@"
DIME=$(cd "$(dirname "$DIME")" && pwd)/$(basename "$DIME")
DIMED=$(dirname "$DIME")/dimed
[ -x "$DIMED" ] || { echo "no dimed next to $DIME: skip"; exit 77; }
command -v openssl >/dev/null || { echo "no openssl: skip"; exit 77; }
unset DIME_STORE

W=$TMP/w
mkdir -p "$W"
cd "$W" || exit 1
"$DIME" --store var/dime.db org create alpha.example >/dev/null 2>&1 ||
	{ fail "cannot make the store"; done_tests; }
openssl req -x509 -newkey rsa:2048 -nodes -keyout d.key -out d.pem -days 2 \
	-subj "/CN=mx.alpha.example" >/dev/null 2>&1 || fail "cert"
cat >t.conf <<EOF
hostname = mx.alpha.example
listen = 127.0.0.1:0 dual
listen = 127.0.0.1:0 socketmap
listen = 127.0.0.1:0 policy
socketmap_nexthop = dime:[127.0.0.1]:10025
workers = 2
[tls]
cert = $W/d.pem
key = $W/d.key
EOF

"$DIMED" --config t.conf --ports-file ports 2>dimed.log &
PID=$!
for _ in $(seq 200); do
	{ [ -s ports ] && [ "$(wc -l <ports)" = 3 ]; } && break
	kill -0 "$PID" 2>/dev/null || break
	sleep 0.05
done
if ! kill -0 "$PID" 2>/dev/null; then
	wait "$PID"
	rc=$?
	[ "$rc" = 1 ] || fail "dimed exited $rc, want 1 (refused) or running"
	grep -q 'socketmap.*no gateway route handler' dimed.log ||
		fail "dimed's refusal does not say why: $(cat dimed.log)"
	echo "dimed refused to start without a route handler, as it must in this build"
	done_tests
	exit 0
fi
# A build with the handler wired: the services run.
P1=$(sed -n 1p ports)
P2=$(sed -n 2p ports)
P3=$(sed -n 3p ports)
[ "$P1" -gt 0 ] && [ "$P2" -gt 0 ] && [ "$P3" -gt 0 ] && [ "$P2" != "$P1" ] ||
	fail "ports: $P1 $P2 $P3"
req='other bob@alpha.example'
ans=$(exec 3<>"/dev/tcp/127.0.0.1/$P2" && printf '%d:%s,' ${#req} "$req" >&3 &&
	timeout 10 head -c 25 <&3)
[ "$ans" = "21:PERM unknown map name," ] || fail "socketmap: [$ans]"
ans=$(exec 3<>"/dev/tcp/127.0.0.1/$P3" &&
	printf 'request=smtpd_access_policy\nprotocol_state=MAIL\nsender=a@b.example\n\n' >&3 &&
	timeout 10 head -c 14 <&3)
[ "$ans" = "action=DUNNO" ] || fail "policy: [$ans]"
kill -TERM "$PID"
for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$PID" 2>/dev/null && { fail "dimed did not exit on SIGTERM"; kill -9 "$PID"; }
wait "$PID" 2>/dev/null || fail "dimed exited with status $?"
done_tests

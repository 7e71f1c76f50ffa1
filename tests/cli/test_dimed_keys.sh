#!/bin/bash
# dimed and its key process, end to end over real sockets with `dime dmtp send`: (a) by default
# the keys live in a key process and a DATA is accepted; (b) a key process that stops answering
# gives 451, and after kill -9 the supervisor's new one serves the next send (254), the message
# delivered once; (c) the front end's memory holds none of the hosted seeds and secp256k1
# scalars, the key process's holds them all, and so does a `key_process = no` dimed (the scan
# can find them); (d) `dime user create --rotate` while dimed runs signals it, and a message to
# the new signet is accepted without a restart; (e) as root with `user = nobody`, dimed drops to
# nobody after binding (the key process stays root) and still serves.
# Args: DIME_BINARY INTEROP_DIR; dimed is next to dime.
source "$(dirname "$0")/lib.sh" "$@"
DIME=$(cd "$(dirname "$DIME")" && pwd)/$(basename "$DIME")
DIMED=$(dirname "$DIME")/dimed
[ -x "$DIMED" ] || { echo "no dimed next to $DIME: skip"; exit 77; }
command -v openssl >/dev/null || { echo "no openssl: skip"; exit 77; }
command -v python3 >/dev/null || { echo "no python3: skip"; exit 77; }
unset DIME_STORE

W=$TMP/w
mkdir -p "$W"
cd "$W" || exit 1
S=var/dime.db
# The interop parties with their key files: the test knows every hosted private key.
"$DIME" --store $S store import --hosted --pok G0uWecEWfHbZ8IMAOw5bsYL7mGS5opytFYyZkChFKaQ \
	"$IV/org-alpha.signet.pem" >/dev/null &&
	"$DIME" --store $S store import --hosted --pok "$(pok_of "$IV/org-beta.signet.pem")" \
		"$IV/org-beta.signet.pem" >/dev/null &&
	"$DIME" --store $S store import --hosted "$IV/user-alice.signet.pem" \
		"$IV/user-bob.signet.pem" "$IV/org-alpha.keys.pem" "$IV/org-beta.keys.pem" \
		"$IV/user-alice.keys.pem" "$IV/user-bob.keys.pem" >/dev/null ||
	{ fail "cannot import the interop parties"; done_tests; }
KEYFILES="$IV/org-alpha.keys.pem $IV/org-beta.keys.pem $IV/user-alice.keys.pem $IV/user-bob.keys.pem"
openssl req -x509 -newkey rsa:2048 -nodes -keyout tls.key -out tls.pem -days 2 \
	-subj "/CN=mx.beta.example" >/dev/null 2>&1 || fail "cert"
# conf NAME [extra lines]: a configuration on ephemeral ports.
conf() {
	local name=$1
	shift
	{
		printf 'hostname = mx.beta.example\nlisten = 127.0.0.1:0 dmtp\nworkers = 2\n'
		printf 'store = %s\nspool = %s\nmaildir_root = %s\n' "$W/$S" "$W/var/spool" "$W/var/mail"
		printf '%s\n' "$@"
		printf '[tls]\ncert = %s\nkey = %s\n' "$W/tls.pem" "$W/tls.key"
	} >"$name"
}
# wrap FILE SUBJECT: a new message from alice@alpha to bob@beta, origin-signed.
N=0
wrap() {
	printf 'From: alice@alpha.example\r\nTo: bob@beta.example\r\nSubject: %s\r\n\r\nhello %s\r\n' \
		"$2" "$2" | "$DIME" --store $S msg wrap --from alice@alpha.example \
		--to bob@beta.example --origin-sign >"$1" || fail "wrap $1"
}
# send FILE: prints the final reply; exit status as `dime dmtp send`'s.
send() { "$DIME" --store $S dmtp send --to "127.0.0.1:$P1" --timeout 30 <"$1" >send.out 2>&1; local rc=$?; grep -E "^(25[45]|4[0-9][0-9]|5[0-9][0-9]) " send.out | tail -1; [ -s send.out ] || echo "no output"; return $rc; }
# count_mail ID: Maildir files holding the message whose 254 identifier is ID (SHA-512 of the
# binary message, which is what is delivered).
count_mail() {
	local f n=0
	for f in var/mail/*/*/new/*; do
		[ -f "$f" ] || continue
		[ "$(openssl dgst -sha512 -binary "$f" | openssl base64 -A | tr -d '=')" = "$1" ] &&
			n=$((n + 1))
	done
	echo $n
}
# wait_mail ID: the delivered copies of a message (waits up to 5 s for the first).
wait_mail() {
	for _ in $(seq 50); do [ "$(count_mail "$1")" -ge 1 ] && break; sleep 0.1; done
	sleep 0.3
	count_mail "$1"
}
children() { # PID: its children's pids
	local p
	for p in /proc/[0-9]*; do
		[ "$(awk '{print $4}' "$p/stat" 2>/dev/null)" = "$1" ] && echo "${p#/proc/}"
	done
}
uid_of() { awk '$1 == "Uid:" {print $2, $3, $4, $5}' "/proc/$1/status"; }

PID=
stop_dimed() {
	[ -n "$PID" ] || return 0
	kill -TERM "$PID" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$PID" 2>/dev/null && { fail "dimed did not exit on SIGTERM"; kill -9 "$PID"; }
	wait "$PID" 2>/dev/null || fail "dimed exited with status $?"
	PID=
	! grep -qE 'Sanitizer|runtime error' dimed.log ||
		fail "sanitizer report: $(grep -m3 -E 'Sanitizer|runtime error' dimed.log)"
}
trap 'stop_dimed; rm -rf "$TMP"' EXIT
start_dimed() { # CONF
	rm -f ports
	"$DIMED" --config "$1" --ports-file ports 2>>dimed.log &
	PID=$!
	for _ in $(seq 200); do [ -s ports ] && break; sleep 0.05; done
	P1=$(sed -n 1p ports)
	[ -n "$P1" ] || { fail "dimed did not start: $(tail -3 dimed.log)"; done_tests; }
}
# The key process: the supervisor is dimed's child, the key process the supervisor's.
SUP=
KP=
find_kp() {
	SUP=$(children "$PID" | head -1)
	KP=
	for _ in $(seq 100); do
		KP=$([ -n "$SUP" ] && children "$SUP" | head -1)
		[ -n "$KP" ] && break
		sleep 0.05
	done
}

# The secrets the scan looks for: each key file's Ed25519 seed and secp256k1 scalar (magic 2,
# length 3, field 1 byte + length 1 + 32-byte seed, field 1 byte + length 2 + 32-byte scalar).
python3 - $KEYFILES >secrets.hex <<'EOF' || fail "cannot read the key files"
import base64, sys
for path in sys.argv[1:]:
    lines = open(path).read().split('\n')
    b64 = ''.join(l for l in lines if l and not l.startswith('-----') and not l.startswith('='))
    b = base64.b64decode(b64)
    name = path.rsplit('/', 1)[-1]
    assert len(b) == 74 and b[5] == 1 and b[6] == 32 and b[40:42] == b'\x00\x20', name
    print(name + ':seed', b[7:39].hex())
    print(name + ':scalar', b[42:74].hex())
EOF
[ "$(wc -l <secrets.hex)" = 8 ] || fail "want 8 secrets, got $(wc -l <secrets.hex)"
# scan PID: the names of the secrets found in the process's memory, one a line; exit 3 when
# its memory cannot be read (not root, Yama ptrace scope).
scan() {
	python3 - "$1" secrets.hex <<'EOF'
import sys
pid, want = sys.argv[1], {}
for line in open(sys.argv[2]):
    name, hexs = line.split()
    want[name] = bytes.fromhex(hexs)
found, readable = set(), 0
try:
    mem = open('/proc/%s/mem' % pid, 'rb', 0)
    maps = open('/proc/%s/maps' % pid).read().splitlines()
except OSError as e:
    print('cannot open: %s' % e, file=sys.stderr)
    sys.exit(3)
for m in maps:
    f = m.split()
    if f[-1] in ('[vvar]', '[vsyscall]', '[vvar_vclock]') or f[1][0] != 'r':
        continue
    lo, hi = (int(x, 16) for x in f[0].split('-'))
    # A sanitizer's shadow memory is one readable mapping of terabytes (zero pages, no data
    # of the program's own): reading it would take hours. Nothing else is near 4 GiB here.
    if hi - lo > (1 << 32):
        continue
    off = lo
    while off < hi:
        n = min(hi - off, 1 << 24)
        try:
            mem.seek(off)
            data = mem.read(n)
        except (OSError, OverflowError, ValueError):
            break
        readable += len(data)
        for name, v in want.items():
            if name not in found and v in data:
                found.add(name)
        # a secret across the slice boundary: overlap by 31 bytes
        off += n - 31 if n > 31 and off + n < hi else n
if readable == 0:
    sys.exit(3)
for name in sorted(found):
    print(name)
EOF
}

export DIME_IO=epoll
# ---- (a) by default the keys are in a key process, and DATA is accepted ----
conf a.conf 'key_timeout = 1s'
start_dimed a.conf
grep -q 'event=dimed.keys result=ok keys=4 custody=key_process' dimed.log ||
	fail "(a) dimed did not take 4 keys from a key process: $(grep -E 'dimed.keys|fail' dimed.log)"
find_kp
[ -n "$KP" ] || fail "(a) no key process under dimed (supervisor '$SUP')"
[ -s var/dime.db.dimed.pid ] && [ "$(cat var/dime.db.dimed.pid)" = "$PID" ] ||
	fail "(a) pid file: '$(cat var/dime.db.dimed.pid 2>/dev/null)', want $PID"
wrap m1.dime one
out=$(send m1.dime) || fail "(a) send: $out"
grep -q '^254 ACCEPTED=' <<<"$out" || fail "(a) want 254, got: $out"
[ "$(wait_mail "${out#*=}")" = 1 ] || fail "(a) m1 delivered $(count_mail "${out#*=}") times"

# ---- (b) the key process stops answering: 451; killed: the next send is served ----
if [ -n "$KP" ]; then
	wrap m2.dime two
	kill -STOP "$KP"
	out=$(send m2.dime) && fail "(b) send with the key process stopped succeeded: $out"
	grep -q '^451 ' <<<"$out" || fail "(b) want 451 while the key process is stopped, got: $out"
	kill -9 "$KP"
	kill -CONT "$KP" 2>/dev/null
	old=$KP
	for _ in $(seq 100); do find_kp; [ -n "$KP" ] && [ "$KP" != "$old" ] && break; sleep 0.05; done
	[ -n "$KP" ] && [ "$KP" != "$old" ] || fail "(b) the supervisor started no new key process"
	out=$(send m2.dime) || fail "(b) send after the restart: $out"
	grep -q '^254 ACCEPTED=' <<<"$out" || fail "(b) want 254 after the restart, got: $out"
	id=${out#*=}
	[ "$(wait_mail "$id")" = 1 ] || fail "(b) m2 delivered $(count_mail "$id") times"
	out=$(send m2.dime)
	grep -q '^255 DUPLICATE=' <<<"$out" || fail "(b) m2 again: want 255, got: $out"
	[ "$(count_mail "$id")" = 1 ] || fail "(b) m2 delivered twice"
fi

# ---- (c) no key material in the front end; all of it in the key process ----
front=$(scan "$PID")
case $? in
0) [ -z "$front" ] || fail "(c) dimed's memory holds key material: $(echo $front)" ;;
3) echo "(c) cannot read dimed's memory (not root?): scan skipped" ;;
*) fail "(c) scan of dimed failed" ;;
esac
if [ -n "$KP" ]; then
	kpscan=$(scan "$KP")
	case $? in
	0) [ "$(wc -l <<<"$kpscan")" = 8 ] ||
		fail "(c) the key process should hold the 8 secrets, the scan found: $(echo $kpscan)" ;;
	3) echo "(c) cannot read the key process's memory (not root?): its scan skipped" ;;
	*) fail "(c) scan of the key process failed" ;;
	esac
fi
echo "(c) front end: $(wc -w <<<"$front") of 8 secrets; key process: $(wc -w <<<"${kpscan:-}") of 8"

# ---- (d) rotation while dimed runs: signalled, reloaded, the new signet accepted ----
out=$("$DIME" --store $S user create --rotate bob@beta.example 2>&1 >/dev/null) ||
	fail "(d) rotate: $out"
grep -q "signalled dimed (pid $PID) to reload its keys" <<<"$out" || fail "(d) rotate said: $out"
for _ in $(seq 100); do grep -q 'event=dimed.keys result=ok keys=5 lane=' dimed.log && break; sleep 0.05; done
grep -q 'event=dimed.keys result=ok keys=5 lane=' dimed.log ||
	fail "(d) dimed did not reload 5 keys: $(grep dimed.keys dimed.log)"
# the old directory goes once its lane has no job left
for _ in $(seq 40); do grep -q 'event=dimed.keys retired_lane=0 keys=4' dimed.log && break; sleep 0.05; done
grep -q 'event=dimed.keys retired_lane=0 keys=4' dimed.log || fail "(d) the old directory was not freed"
wrap m3.dime three
out=$(send m3.dime) || fail "(d) send to the new signet: $out"
grep -q '^254 ACCEPTED=' <<<"$out" || fail "(d) want 254, got: $out"
[ "$(wait_mail "${out#*=}")" = 1 ] || fail "(d) m3 delivered $(count_mail "${out#*=}") times"
stop_dimed
[ -e var/dime.db.dimed.pid ] && fail "(d) the pid file is left after a clean exit"
out=$("$DIME" --store $S user create --rotate bob@beta.example 2>&1 >/dev/null) ||
	fail "(d) rotate without dimed: $out"
grep -q signalled <<<"$out" && fail "(d) with no dimed running the rotation signalled: $out"
printf 'FIVE\n' >var/dime.db.dimed.pid # stale and forged: never signalled
out=$("$DIME" --store $S user create --rotate bob@beta.example 2>&1 >/dev/null) ||
	fail "(d) rotate with a stale pid file: $out"
grep -q signalled <<<"$out" && fail "(d) a stale pid file was signalled: $out"
rm -f var/dime.db.dimed.pid

# ---- (c') the scan's power: with key_process = no the front end holds the keys ----
conf b.conf 'key_process = no'
start_dimed b.conf
grep -q 'custody=in_process' dimed.log || fail "(c') key_process = no not in process"
[ -z "$(children "$PID")" ] || fail "(c') key_process = no started a child"
wrap m4.dime four
out=$(send m4.dime) || fail "(c') send: $out"
grep -q '^254 ACCEPTED=' <<<"$out" || fail "(c') want 254, got: $out"
front=$(scan "$PID")
if [ $? = 0 ]; then
	[ "$(wc -l <<<"$front")" = 8 ] ||
		fail "(c') key_process = no: the scan should find the 8 secrets, found: $(echo $front)"
	echo "(c') key_process = no: the front end holds $(wc -w <<<"$front") of 8 secrets"
fi
stop_dimed

# ---- (a') the other io backend: the key process does not care which loop asks ----
export DIME_IO=uring
start_dimed a.conf
wrap m6.dime six
out=$(send m6.dime) || fail "(a') send [uring]: $out"
grep -q '^254 ACCEPTED=' <<<"$out" || fail "(a') want 254 [uring], got: $out"
stop_dimed
export DIME_IO=epoll

# ---- (e) as root, user = nobody: dropped after bind, still serving ----
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
	NB=$(id -u nobody)
	# nobody must reach and write the store's directory, the spool and the Maildir; the key
	# file stays root's (0600): only the key process reads it.
	chmod 755 "$TMP" "$W"
	chown -R nobody var
	chown root var/dime.db.key
	chmod 600 var/dime.db.key
	conf e.conf 'user = nobody'
	start_dimed e.conf
	[ "$(uid_of "$PID")" = "$NB $NB $NB $NB" ] ||
		fail "(e) dimed's Uid: $(uid_of "$PID"), want $NB x4"
	find_kp
	[ -n "$KP" ] && [ "$(uid_of "$KP")" = "0 0 0 0" ] ||
		fail "(e) the key process should stay root: ${KP:-none} $(uid_of "${KP:-self}")"
	grep -q "event=dimed.privsep user=nobody uid=$NB" dimed.log || fail "(e) no privsep log line"
	wrap m5.dime five
	out=$(send m5.dime) || fail "(e) send as nobody: $out"
	grep -q '^254 ACCEPTED=' <<<"$out" || fail "(e) want 254, got: $out"
	[ "$(wait_mail "${out#*=}")" = 1 ] || fail "(e) m5 delivered $(count_mail "${out#*=}") times"
	# a rotation reaches a dimed that runs as nobody, and its key process (root) reloads
	before=$(grep -c 'event=dimed.keys result=ok' dimed.log)
	out=$("$DIME" --store $S user create --rotate alice@alpha.example 2>&1 >/dev/null)
	grep -q "signalled dimed (pid $PID)" <<<"$out" || fail "(e) rotate said: $out"
	for _ in $(seq 100); do [ "$(grep -c 'event=dimed.keys result=ok' dimed.log)" -gt "$before" ] && break; sleep 0.05; done
	[ "$(grep -c 'event=dimed.keys result=ok' dimed.log)" -gt "$before" ] ||
		fail "(e) no key reload as nobody: $(grep -E 'dimed.keys|keyproc' dimed.log | tail -3)"
	stop_dimed
	chown -R root var
	# a user that does not exist: refused before serving
	conf f.conf 'user = no-such-user-dimed'
	"$DIMED" --config f.conf 2>/dev/null && fail "(e) dimed ran with an unknown user"
else
	echo "(e) not root: the privilege drop is not exercised"
fi
done_tests

#!/usr/bin/env bash
# dime batch: every operation over a directory, a Maildir and an mbox; outputs equal what
# `dime msg` gives one at a time; bad inputs are named while the batch goes on; a batch killed
# midway leaves only complete outputs and a rerun finishes the job.
set -u
source "$(dirname "$0")/lib.sh" "$@"

"$DIME" org create alpha.test >/dev/null 2>&1 || fail "org create alpha.test"
"$DIME" org create beta.test >/dev/null 2>&1 || fail "org create beta.test"
"$DIME" user create alice@alpha.test >/dev/null 2>&1 || fail "user create alice"
"$DIME" user create bob@beta.test >/dev/null 2>&1 || fail "user create bob"

IN=$TMP/in
mkdir -p "$IN"
for i in $(seq 1 40); do
	{
		printf 'From: alice@alpha.test\r\nTo: bob@beta.test\r\nSubject: n%s\r\n\r\n' "$i"
		head -c $((i * 211)) /dev/urandom | base64
	} >"$IN/m$i.eml"
done
: >"$IN/empty.eml"
printf 'no headers\n' >"$IN/bare.eml"

# wrap a directory, then origin-sign separately (binary), accept, open
W=$TMP/w S=$TMP/s A=$TMP/a O=$TMP/o
mkdir -p "$W" "$S" "$A" "$O"
expect 0 '^wrap: 42 ok, 0 failed' -- "$DIME" batch wrap --in "$IN" --out "$W" --from alice@alpha.test --to bob@beta.test --binary --workers 2 --json "$TMP/w.json"
grep -q '"ok": 42' "$TMP/w.json" || fail "wrap JSON summary: $(cat "$TMP/w.json")"
expect 0 '^origin-sign: 42 ok' -- "$DIME" batch origin-sign --in "$W" --out "$S" --workers 2
expect 0 '^accept: 42 ok' -- "$DIME" batch accept --in "$S" --out "$A"
expect 0 '^open: 42 ok' -- "$DIME" batch open --as recipient --in "$S" --out "$O" --batch 5
for f in "$IN"/*.eml; do
	n=$(basename "$f")
	# outputs are named NAME + the operation's suffix, so names chain and never collide
	cmp -s "$f" "$O/$n.dime.dime.eml" || fail "$n: batch open is not the original"
	single=$("$DIME" msg accept <"$S/$n.dime.dime")
	[ "$single" = "$(cat "$A/$n.dime.dime.txt")" ] || fail "$n: batch accept '$(cat "$A/$n.dime.dime.txt")' vs single '$single'"
done
# origin-sign is deterministic: the batch output equals the single call's bytes
"$DIME" msg origin-sign <"$W/m7.eml.dime" >"$TMP/single.dime"
cmp -s "$TMP/single.dime" "$S/m7.eml.dime.dime" || fail "batch origin-sign differs from msg origin-sign"

# bad inputs are reported by name; the batch goes on and exits 1
B=$TMP/bad BO=$TMP/bo
mkdir -p "$B" "$BO"
cp "$S/m1.eml.dime.dime" "$S/m2.eml.dime.dime" "$B/"
head -c 300 "$S/m3.eml.dime.dime" >"$B/truncated.dime"
printf 'From: someone\n\nforeign mail, not D/MIME\n' >"$B/foreign.dime"
cp "$S/m4.eml.dime.dime" "$B/unreadable.dime"
chmod 000 "$B/unreadable.dime"
# root reads anything: then the unreadable file is a good one
[ -r "$B/unreadable.dime" ] && want='^accept: 3 ok, 2 failed' || want='^accept: 2 ok, 3 failed'
expect 1 "$want" -- "$DIME" batch accept --in "$B" --out "$BO"
grep -q 'truncated.dime: ' "$TMP/stderr" || fail "truncated input not named: $(cat "$TMP/stderr")"
grep -q 'foreign.dime: ' "$TMP/stderr" || fail "foreign input not named"
[ -f "$BO/m1.eml.dime.dime.txt" ] && [ -f "$BO/m2.eml.dime.dime.txt" ] || fail "good inputs next to bad ones were not done"
chmod 600 "$B/unreadable.dime"

# Maildir (cur/ and new/, tmp/ ignored)
MD=$TMP/Maildir MO=$TMP/mo
mkdir -p "$MD/cur" "$MD/new" "$MD/tmp" "$MO"
cp "$IN/m1.eml" "$MD/new/1700000000.1.host"
cp "$IN/m2.eml" "$MD/cur/1700000000.2.host:2,S"
cp "$IN/m3.eml" "$MD/tmp/1700000000.3.host"
expect 0 '^wrap: 2 ok, 0 failed' -- "$DIME" batch wrap --in "$MD" --out "$MO" --from alice@alpha.test --to bob@beta.test

# mbox (mboxrd): a From_ line inside a body, quoted >From, an empty mbox
MB=$TMP/box.mbox MBO=$TMP/mbo MBX=$TMP/mbx
mkdir -p "$MBO" "$MBX"
printf 'From alice@alpha.test Sat Nov 28 10:00:00 2026\nSubject: one\n\nline\n>From the quoted start\nFrom inside a paragraph is body text\n\nFrom alice@alpha.test Sat Nov 28 10:01:00 2026\nSubject: two\n\nsecond\n' >"$MB"
expect 0 '^wrap: 2 ok, 0 failed' -- "$DIME" batch wrap --in "$MB" --out "$MBO" --from alice@alpha.test --to bob@beta.test --origin-sign
expect 0 '^open: 2 ok' -- "$DIME" batch open --as recipient --in "$MBO" --out "$MBX"
first=$(ls "$MBX" | head -1)
grep -q '^From the quoted start' "$MBX/$first" || fail "mboxrd >From not unquoted: $(cat "$MBX/$first")"
grep -q '^From inside a paragraph' "$MBX/$first" || fail "From_ inside a body split the message"
: >"$TMP/empty.mbox"
expect 0 '^wrap: 0 ok, 0 failed' -- "$DIME" batch wrap --in "$TMP/empty.mbox" --out "$MBO" --from alice@alpha.test --to bob@beta.test

# killed midway: only complete outputs, and a rerun completes the rest
K=$TMP/k KO=$TMP/ko
mkdir -p "$K" "$KO"
for i in $(seq 1 1500); do printf 'Subject: k%s\n\nbody %s\n' "$i" "$i" >"$K/k$i.eml"; done
"$DIME" batch wrap --in "$K" --out "$KO" --from alice@alpha.test --to bob@beta.test --workers 2 >"$TMP/kill.out" 2>&1 &
pid=$!
sleep 1
kill -KILL $pid 2>/dev/null
wait $pid 2>/dev/null
partial=$(ls "$KO" | grep -c '\.dime$' || true)
for f in $(ls "$KO" | grep '\.dime$' | head -50); do
	"$DIME" msg dump <"$KO/$f" >/dev/null 2>&1 || fail "killed batch left an incomplete output $f"
done
expect 0 '^wrap: [0-9]+ ok, 0 failed, [0-9]+ skipped' -- "$DIME" batch wrap --in "$K" --out "$KO" --from alice@alpha.test --to bob@beta.test
[ "$(ls "$KO" | grep -c '\.dime$')" = 1500 ] || fail "resume did not complete the batch"
[ "$(ls -A "$KO" | grep -vc '\.dime$')" = 0 ] || fail "temporary files left behind: $(ls -A "$KO" | grep -v '\.dime$' | head)"
echo "killed after $partial of 1500, resumed"

# SIGTERM: stop taking work, summary printed, exit 1; the rerun finishes
T=$TMP/t
mkdir -p "$T"
"$DIME" batch wrap --in "$K" --out "$T" --from alice@alpha.test --to bob@beta.test --workers 2 >"$TMP/term.out" 2>&1 &
pid=$!
sleep 1
kill -TERM $pid
wait $pid && rc=0 || rc=$?
[ "$rc" = 1 ] || [ "$rc" = 0 ] || fail "SIGTERM: exit $rc"
grep -q '^wrap: ' "$TMP/term.out" || fail "SIGTERM: no summary: $(cat "$TMP/term.out")"
expect 0 '^wrap: ' -- "$DIME" batch wrap --in "$K" --out "$T" --from alice@alpha.test --to bob@beta.test
[ "$(ls "$T" | grep -c '\.dime$')" = 1500 ] || fail "resume after SIGTERM did not complete"

# bounce-verify: a bounce the destination made, next to a foreign file
BV=$TMP/bv BVO=$TMP/bvo
mkdir -p "$BV" "$BVO"
"$DIME" msg bounce --code 2 --reason "mailbox full" <"$S/m5.eml.dime.dime" >"$BV/b1" || fail "msg bounce"
printf 'junk\n' >"$BV/junk"
expect 1 '^bounce-verify: 1 ok, 1 failed' -- "$DIME" batch bounce-verify --in "$BV" --out "$BVO"
grep -q '^BOUNCE alice@alpha.test beta.test 2 mailbox full$' "$BVO/b1.txt" || fail "bounce verdict: $(cat "$BVO/b1.txt")"

# rekey after bob rotates: the re-keyed batch opens with the new key (the old one stays in the
# store here; cli.test_rekey_cmds removes it)
RK=$TMP/rk RO=$TMP/ro
mkdir -p "$RK" "$RO"
"$DIME" user create bob@beta.test --rotate >"$TMP/bob2.pem" 2>/dev/null || fail "rotate bob"
expect 0 '^rekey: 42 ok, 0 failed' -- "$DIME" batch rekey --to-signet "$TMP/bob2.pem" --in "$S" --out "$RK" --workers 2
expect 0 '^open: 42 ok' -- "$DIME" batch open --as recipient --in "$RK" --out "$RO"
cmp -s "$IN/m9.eml" "$RO/m9.eml.dime.dime.dime.eml" || fail "re-keyed m9 does not open to the original"

# usage errors
expect 2 '' -- "$DIME" batch frobnicate --in "$IN" --out "$W"
expect 2 '' -- "$DIME" batch open --in "$IN" --out "$O"

# --out is created when missing (mkdir -p, 0700); a regular file there is named as such
expect 0 '^wrap: 42 ok' -- "$DIME" batch wrap --in "$IN" --out "$TMP/new/a/b" --from alice@alpha.test --to bob@beta.test
[ "$(stat -c %a "$TMP/new/a/b")" = 700 ] && [ "$(stat -c %a "$TMP/new/a")" = 700 ] || fail "--out not created 0700: $(stat -c %a "$TMP/new/a" "$TMP/new/a/b")"
: >"$TMP/afile"
expect 2 '' -- "$DIME" batch wrap --in "$IN" --out "$TMP/afile" --from alice@alpha.test --to bob@beta.test
grep -q 'is a regular file, not a directory' "$TMP/stderr" || fail "--out a regular file: $(cat "$TMP/stderr")"
# --out equal to or inside --in is refused (outputs would be read back as inputs)
expect 2 '' -- "$DIME" batch wrap --in "$IN" --out "$IN" --from alice@alpha.test --to bob@beta.test
grep -q 'inside' "$TMP/stderr" || fail "--out = --in: $(cat "$TMP/stderr")"
expect 2 '' -- "$DIME" batch wrap --in "$IN" --out "$IN/sub/out" --from alice@alpha.test --to bob@beta.test
expect 2 '' -- "$DIME" batch wrap --in "$IN/." --out "$IN/../in" --from alice@alpha.test --to bob@beta.test
[ ! -e "$IN/sub/out/m1.eml.dime" ] || fail "--out inside --in was written"
rmdir "$IN/sub/out" "$IN/sub" 2>/dev/null
# --json is opened before the run: a bad path fails up front, nothing is written
expect 2 '' -- "$DIME" batch wrap --in "$IN" --out "$TMP/jo" --from alice@alpha.test --to bob@beta.test --json "$TMP/no/such/dir/x.json"
grep -q 'cannot open.*x.json' "$TMP/stderr" || fail "--json bad path: $(cat "$TMP/stderr")"
[ -z "$(ls -A "$TMP/jo" 2>/dev/null)" ] || fail "--json bad path: the batch ran anyway"

# symbolic links that leave --in are refused (named, exit 1); --follow-symlinks allows them
L=$TMP/links LO=$TMP/lo LF=$TMP/lf
mkdir -p "$L" "$LO" "$LF"
printf 'Subject: secret\n\nroot only\n' >"$TMP/secret.eml"
cp "$IN/m1.eml" "$L/ok.eml"
ln -s "$TMP/secret.eml" "$L/out.eml"
ln -s ok.eml "$L/in.eml"
expect 1 '^wrap: 2 ok, 1 failed' -- "$DIME" batch wrap --in "$L" --out "$LO" --from alice@alpha.test --to bob@beta.test --json "$TMP/l.json"
grep -q 'out.eml: a symbolic link that leads outside the input' "$TMP/stderr" || fail "outside link not named: $(cat "$TMP/stderr")"
[ ! -e "$LO/out.eml.dime" ] || fail "a link leading outside --in was encrypted"
grep -q '"errno": 18' "$TMP/l.json" || fail "EXDEV not in JSON: $(cat "$TMP/l.json")"
expect 0 '^wrap: 3 ok, 0 failed' -- "$DIME" batch wrap --in "$L" --out "$LF" --from alice@alpha.test --to bob@beta.test --follow-symlinks

# the errno behind "cannot be written" is shown and kept in --json; a non-UTF-8 name is
# escaped, not dropped
E=$TMP/errs EO=$TMP/eo
mkdir -p "$E" "$EO"
long=$(printf 'x%.0s' $(seq 1 252))
cp "$IN/m2.eml" "$E/$long"
printf 'junk\n' >"$E/$(printf 'bad\377name')"
cp "$S/m3.eml.dime.dime" "$E/good"
expect 1 '^accept: 1 ok, 2 failed' -- "$DIME" batch accept --in "$E" --out "$EO" --json "$TMP/e.json"
expect 1 '^wrap: 2 ok, 1 failed' -- "$DIME" batch wrap --in "$E" --out "$EO" --from alice@alpha.test --to bob@beta.test --json "$TMP/e.json"
grep -q "$long: the output cannot be written: File name too long" "$TMP/stderr" || fail "ENAMETOOLONG not shown: $(cat "$TMP/stderr")"
grep -q '"errno": 36' "$TMP/e.json" || fail "ENAMETOOLONG not in JSON: $(cat "$TMP/e.json")"
expect 1 '' -- "$DIME" batch accept --in "$E" --out "$TMP/eo2" --json "$TMP/e2.json"
grep -qF '"name": "bad\\xFFname"' "$TMP/e2.json" || fail "non-UTF-8 name dropped from JSON: $(cat "$TMP/e2.json")"
grep -q '"failed": 2' "$TMP/e2.json" || fail "JSON failure count: $(cat "$TMP/e2.json")"
[ "$(grep -c '"name"' "$TMP/e2.json")" = 2 ] || fail "JSON lists $(grep -c '"name"' "$TMP/e2.json") failures, want 2"

# a rerun redoes empty or truncated outputs instead of taking them as done
R=$TMP/rr
mkdir -p "$R"
expect 0 "^wrap: 42 ok" -- "$DIME" batch wrap --in "$IN" --out "$R" --from alice@alpha.test --to bob@beta.test --origin-sign
expect 0 '^accept: 42 ok' -- "$DIME" batch accept --in "$R" --out "$R.a"
: >"$R/m1.eml.dime"
head -c 500 "$R/m2.eml.dime" >"$R/m2.tmp" && mv "$R/m2.tmp" "$R/m2.eml.dime"
"$DIME" batch wrap --in "$IN" --out "$R.b" --binary --from alice@alpha.test --to bob@beta.test >/dev/null 2>&1
head -c 300 "$R.b/m3.eml.dime" >"$R.b/m3.tmp" && mv "$R.b/m3.tmp" "$R.b/m3.eml.dime"
head -c 10 "$R.a/m4.eml.dime.txt" >"$R.a/m4.tmp" && mv "$R.a/m4.tmp" "$R.a/m4.eml.dime.txt"
expect 0 "^wrap: 2 ok, 0 failed, 40 skipped" -- "$DIME" batch wrap --in "$IN" --out "$R" --from alice@alpha.test --to bob@beta.test --origin-sign
expect 0 '^wrap: 1 ok, 0 failed, 41 skipped' -- "$DIME" batch wrap --in "$IN" --out "$R.b" --binary --from alice@alpha.test --to bob@beta.test
"$DIME" msg dump <"$R/m2.eml.dime" >/dev/null 2>&1 || fail "truncated output not redone"
"$DIME" msg dump <"$R.b/m3.eml.dime" >/dev/null 2>&1 || fail "truncated binary output not redone"
expect 0 '^accept: 1 ok, 0 failed, 41 skipped' -- "$DIME" batch accept --in "$R" --out "$R.a"
grep -q '^ACCEPT bob@beta.test ' "$R.a/m4.eml.dime.txt" || fail "cut verdict not redone: $(cat "$R.a/m4.eml.dime.txt")"
# open syncs by default (plaintext): strace shows fsync per output
if command -v strace >/dev/null 2>&1; then
	strace -f -c -e trace=fsync,io_uring_enter -o "$TMP/st" "$DIME" batch open --as recipient --io plain --in "$S" --out "$TMP/os" --workers 1 >/dev/null 2>&1
	n=$(awk '$NF == "fsync" { print $4 }' "$TMP/st")
	[ "${n:-0}" -ge 42 ] || fail "batch open did not fsync its outputs by default ($n fsync calls)"
	strace -f -c -e trace=fsync -o "$TMP/st" "$DIME" batch open --as recipient --io plain --no-sync --in "$S" --out "$TMP/os2" --workers 1 >/dev/null 2>&1
	n=$(awk '$NF == "fsync" { print $4 }' "$TMP/st")
	[ "${n:-0}" = 0 ] || fail "--no-sync still fsyncs ($n calls)"
fi

done_tests

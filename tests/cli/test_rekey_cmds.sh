#!/usr/bin/env bash
# dime msg rekey: bob rotates his keys, re-keys a stored message, and the old key is removed
# from the store; the re-keyed message still opens byte-identical (and for the author, the
# origin's signatures still hold), a message that was not re-keyed no longer opens, and
# re-keying again replaces the record.
set -u
source "$(dirname "$0")/lib.sh" "$@"

command -v sqlite3 >/dev/null || { echo "sqlite3 not found: cannot remove a key from the store"; exit 77; }
# The CLI has no command that deletes a key (on purpose); the test plays the admin who does.
drop_key() { # ADDRESS VERSION
	sqlite3 "$DIME_STORE" "DELETE FROM objects WHERE ident = '$1' AND kind = 2013 AND version = $2" ||
		fail "cannot delete key $1 v$2"
	[ "$(sqlite3 "$DIME_STORE" "SELECT count(*) FROM objects WHERE ident = '$1' AND kind = 2013 AND version = $2")" = 0 ] ||
		fail "key $1 v$2 still stored"
}

"$DIME" org create alpha.test >/dev/null 2>&1 || fail "org create alpha.test"
"$DIME" org create beta.test >/dev/null 2>&1 || fail "org create beta.test"
"$DIME" user create alice@alpha.test >/dev/null 2>&1 || fail "user create alice"
"$DIME" user create bob@beta.test >"$TMP/bob1.pem" 2>/dev/null || fail "user create bob"

printf 'From: Alice <alice@alpha.test>\r\nTo: bob@beta.test\r\nSubject: keep me\r\n\r\nstored mail\r\n' >"$TMP/a.eml"
{ printf 'Subject: big\nContent-Type: application/octet-stream\n\n'; head -c 300000 /dev/urandom; } >"$TMP/b.eml"
printf 'Subject: never re-keyed\n\nlost\n' >"$TMP/c.eml"
for m in a b c; do
	"$DIME" msg wrap --from alice@alpha.test --to bob@beta.test --origin-sign <"$TMP/$m.eml" >"$TMP/$m.dime" ||
		fail "wrap $m"
done

# Rotate: the store now holds bob's keys v1 and v2 and both signets.
"$DIME" user create bob@beta.test --rotate >"$TMP/bob2.pem" 2>/dev/null || fail "rotate bob"
"$DIME" msg rekey --to-signet "$TMP/bob2.pem" <"$TMP/a.dime" >"$TMP/a.r1" || fail "rekey a (armored)"
"$DIME" msg rekey --to-signet "$TMP/bob2.pem" --binary --user bob@beta.test <"$TMP/b.dime" >"$TMP/b.r1" || fail "rekey b (binary)"
head -c 2 "$TMP/b.r1" | od -An -tx1 | grep -q '07 3a' || fail "binary output does not start with magic 1850"
grep -q 'BEGIN ENCRYPTED MESSAGE' "$TMP/a.r1" || fail "armored output"
expect 0 '^re-key record, [0-9]+ bytes, 10 keyslots for signet ' -- "$DIME" msg dump <"$TMP/a.r1"
# refusals: a signet that is not stored, a tampered message, a message for someone else
"$DIME" signet show "$TMP/bob2.pem" >/dev/null || fail "signet show"
expect 1 '' -- "$DIME" msg rekey --to-signet "$TMP/bob1.pem" --user alice@alpha.test <"$TMP/a.dime"
expect 2 '' -- "$DIME" msg rekey <"$TMP/a.dime"
cp "$TMP/b.dime" "$TMP/t.dime"
flip_byte "$TMP/t.dime" 2000
out=$("$DIME" msg rekey --binary --to-signet "$TMP/bob2.pem" <"$TMP/t.dime" 2>/dev/null | wc -c)
[ "$out" = 0 ] || fail "a tampered message was re-keyed ($out bytes)"

# The old key goes: only v2 is left.
drop_key bob@beta.test 1
"$DIME" msg open --as recipient <"$TMP/a.r1" >"$TMP/a.out" || fail "open re-keyed a with the new key only"
cmp -s "$TMP/a.eml" "$TMP/a.out" || fail "re-keyed a differs from the original"
"$DIME" msg open --as recipient <"$TMP/b.r1" >"$TMP/b.out" || fail "open re-keyed b (binary) with the new key only"
cmp -s "$TMP/b.eml" "$TMP/b.out" || fail "re-keyed b differs from the original"
# not re-keyed: fails, says why, writes nothing
rc=0
"$DIME" msg open --as recipient <"$TMP/c.dime" >"$TMP/c.out" 2>"$TMP/c.err" || rc=$?
[ "$rc" = 1 ] && [ ! -s "$TMP/c.out" ] || fail "non-re-keyed message: exit $rc, $(wc -c <"$TMP/c.out") bytes out"
grep -q 'rekey' "$TMP/c.err" || fail "no clear error for the non-re-keyed message: $(cat "$TMP/c.err")"
# the other actors ignore the record: their signatures still verify
expect 0 '^ACCEPT bob@beta.test ' -- "$DIME" msg accept <"$TMP/a.r1"
"$DIME" msg open --as author <"$TMP/a.r1" | cmp -s - "$TMP/a.eml" || fail "author open of the re-keyed message"
# a tampered record: nothing out, exit 1
cp "$TMP/b.r1" "$TMP/b.t"
flip_byte "$TMP/b.t" 300
out=$("$DIME" msg open --as recipient <"$TMP/b.t" 2>/dev/null | wc -c)
rc=$("$DIME" msg open --as recipient <"$TMP/b.t" >/dev/null 2>&1; echo $?)
[ "$out" = 0 ] && [ "$rc" = 1 ] || fail "tampered record: $out bytes out, exit $rc"

# Rotate again and re-key the re-keyed message: the record is replaced (same size), v2 goes.
"$DIME" user create bob@beta.test --rotate >"$TMP/bob3.pem" 2>/dev/null || fail "rotate bob again"
"$DIME" msg rekey --binary --to-signet "$TMP/bob3.pem" <"$TMP/b.r1" >"$TMP/b.r2" || fail "rekey the re-keyed b"
[ "$(wc -c <"$TMP/b.r1")" = "$(wc -c <"$TMP/b.r2")" ] || fail "second re-key changed the size: stacked records?"
cmp -s "$TMP/b.r1" "$TMP/b.r2" && fail "second re-key left the record unchanged"
cmp -s <(tail -c +$(( $(wc -c <"$TMP/b.r1") - 1000 )) "$TMP/b.r1") <(tail -c +$(( $(wc -c <"$TMP/b.r2") - 1000 )) "$TMP/b.r2") ||
	fail "the message bytes changed"
drop_key bob@beta.test 2
"$DIME" msg open --as recipient <"$TMP/b.r2" | cmp -s - "$TMP/b.eml" || fail "open twice re-keyed b with the newest key only"
expect 1 '' -- "$DIME" msg open --as recipient <"$TMP/b.r1"
expect 1 '' -- "$DIME" msg open --as recipient <"$TMP/a.r1"

expect 0 '^usage: dime' -- "$DIME" msg rekey --help
done_tests

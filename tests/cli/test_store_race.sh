#!/usr/bin/env bash
# Concurrent writers on one store: org create of one domain, user create of the same addresses
# and user create --rotate of one address, each from 3 processes at once. Every create is one
# transaction that checks existence inside it, so exactly one process creates each identity,
# versions run 1..k without gaps or duplicates, and every custody link verifies.
set -u
source "$(dirname "$0")/lib.sh" "$@"

P=3          # processes
N=${RACE_USERS:-30} # users per process (all processes try the same N addresses)
R=3          # rotations per process

# One domain, three creators: one succeeds, the others are told it exists (exit 1).
for d in 1 2 3 4; do
	for p in $(seq $P); do
		"$DIME" org create "race$d.example" >"$TMP/org$d.$p.out" 2>"$TMP/org$d.$p.err" &
	done
	ok=0
	for p in $(seq $P); do wait -n && ok=$((ok + 1)); done
	[ "$ok" = 1 ] || fail "org create race$d.example: $ok processes succeeded, want 1"
	n=$("$DIME" store list "race$d.example" | grep -c ' org-signet ')
	[ "$n" = 1 ] || fail "race$d.example: $n org signets, want 1"
	n=$("$DIME" store list "race$d.example" | grep -c ' org-key ')
	[ "$n" = 1 ] || fail "race$d.example: $n org keys, want 1"
done
"$DIME" store export race1.example >"$TMP/org.signet" || fail "export org"

# The same N addresses from P processes: N creations in all.
for p in $(seq $P); do
	(for i in $(seq "$N"); do
		"$DIME" user create "u$i@race1.example" >/dev/null 2>>"$TMP/users.$p.err" &&
			echo "u$i"
	done) >"$TMP/users.$p.out" &
done
wait
created=$(cat "$TMP"/users.*.out | wc -l)
[ "$created" = "$N" ] || fail "user create: $created created, want $N"
dups=$(cat "$TMP"/users.*.out | sort | uniq -d | head -3)
[ -z "$dups" ] || fail "created twice: $dups"
grep -hvE 'exists; use --rotate|^dime: created user' "$TMP"/users.*.err | grep . &&
	fail "user create failed other than 'exists' (above)"
"$DIME" store list >"$TMP/list"
for i in $(seq "$N"); do
	for k in user-signet user-key; do
		n=$(grep -cE "^u$i@race1\.example +$k +v" "$TMP/list")
		[ "$n" = 1 ] || fail "u$i: $n rows of $k, want 1"
	done
done

# Rotations of one address from P processes at once: every one succeeds, in sequence.
expect 0 'BEGIN USER SIGNET' -- "$DIME" user create rot@race1.example
for p in $(seq $P); do
	(for i in $(seq $R); do
		"$DIME" user create rot@race1.example --rotate >/dev/null 2>>"$TMP/rot.$p.err" ||
			echo "fail $p.$i"
	done) >"$TMP/rot.$p.out" &
done
wait
bad=$(cat "$TMP"/rot.*.out; grep -hv '^dime: rotated user' "$TMP"/rot.*.err)
[ -z "$bad" ] || fail "rotations failed: $bad"
want=$((P * R + 1))
for k in user-signet user-key; do
	vs=$("$DIME" store list rot@race1.example | awk -v k=$k '$2 == k { print $3 }' | tr '\n' ' ')
	[ "$vs" = "$(seq -f 'v%g' -s ' ' $want) " ] || fail "rot $k versions: $vs, want v1..v$want"
done
# Every version links to the one before it by custody.
"$DIME" store export rot@race1.example --version 1 >"$TMP/rot.1" || fail "export rot v1"
for v in $(seq 2 $want); do
	"$DIME" store export rot@race1.example --version "$v" >"$TMP/rot.$v" || fail "export rot v$v"
	expect 0 '^VALID user id$' -- "$DIME" signet verify "$TMP/rot.$v" --org "$TMP/org.signet" --previous "$TMP/rot.$((v - 1))"
done
done_tests

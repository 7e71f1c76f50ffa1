#!/usr/bin/env bash
# dime org create / user create / store import, list, export against a fresh store.
set -u
source "$(dirname "$0")/lib.sh" "$@"

expect 0 '^_dime\.example\.org\. IN TXT "ver=1 pok=[A-Za-z0-9+/]{43} ' -- "$DIME" org create example.org --sok signets,messages --sok tls --name "Example Org" --phone "15555550100;OFFICE"
[ "$(stat -c %a "$DIME_STORE")" = 600 ] || fail "store mode is $(stat -c %a "$DIME_STORE"), want 600"
expect 1 '' -- "$DIME" org create example.org
expect 2 '' -- "$DIME" org create example.org --sok bogus
"$DIME" store export example.org >"$TMP/org.signet" || fail "store export org"
record=$("$DIME" mrec generate --org example.org | sed -e 's/^[^"]*//' -e 's/" "//g' -e 's/"//g')
expect 0 '^ACCEPT ' -- "$DIME" mrec check "$record"
expect 0 '^VALID org id$' -- "$DIME" signet verify "$TMP/org.signet" --mrec "$record"
expect 0 'perms=3' -- "$DIME" store list example.org
cp -r "$TMP/store" "$TMP/store-before-alice" # for the lost-key case below

expect 0 'BEGIN USER SIGNET' -- "$DIME" user create alice@example.org --name "Alice"
expect 1 '' -- "$DIME" user create alice@example.org
expect 0 'BEGIN USER SIGNET' -- "$DIME" user create ALICE@example.org --rotate
"$DIME" store export alice@example.org --version 1 >"$TMP/a1.signet" || fail "export v1"
"$DIME" store export alice@example.org >"$TMP/a2.signet" || fail "export latest"
expect 0 '^VALID user id$' -- "$DIME" signet verify "$TMP/a2.signet" --org "$TMP/org.signet" --previous "$TMP/a1.signet"
expect 1 'broken custody' -- "$DIME" signet verify "$TMP/a2.signet" --org "$TMP/org.signet"
expect 0 'alice@example.org +user-signet +v2' -- "$DIME" store list alice@example.org

# An SSR when the org's keys are elsewhere.
expect 0 'BEGIN SIGNET SIGNING REQUEST' -- "$DIME" user create carol@elsewhere.example
expect 0 '^VALID ssr ssr$' -- "$DIME" signet verify <("$DIME" store export carol@elsewhere.example)

# Importing another domain's objects: verified before they are stored.
BETA_POK=$(pok_of "$IV/org-beta.signet.pem")
expect 1 '' -- "$DIME" store import "$IV/org-beta.signet.pem" --pok G0uWecEWfHbZ8IMAOw5bsYL7mGS5opytFYyZkChFKaQ
expect 0 'imported org-signet beta.example v1 .*\(verified\)' -- "$DIME" store import --pok "$BETA_POK" "$IV/org-beta.signet.pem"
expect 0 'imported user-signet bob@beta.example v1 .*\(verified\)' -- "$DIME" store import "$IV/user-bob.signet.bin"
expect 1 '' -- "$DIME" store import "$IV/s-user-bob-tampered-name.bin"
expect 0 'imported user-key bob@beta.example' -- "$DIME" store import "$IV/user-bob.keys.pem"
expect 1 '' -- "$DIME" store import "$IV/user-alice.keys.pem"
expect 0 'imported ssr dave@alpha.example' -- "$DIME" store import --as dave@alpha.example "$IV/user-alice.ssr.pem"
expect 2 '' -- "$DIME" store import "$TMP/nope"
expect 0 'bob@beta.example +user-key' -- "$DIME" store list

# ---- Trust on import: nothing that fails a check is stored; unverifiable signets wait apart.
mail="$TMP/m.eml"
printf 'Subject: hi\nFrom: a@alpha.test\n\nbody\n' >"$mail"
# A store of our own (alpha.test, a@alpha.test) that wraps to bob@beta.example.
export DIME_STORE="$TMP/trust/dime.db"
"$DIME" org create alpha.test >/dev/null 2>&1 && "$DIME" user create a@alpha.test >/dev/null 2>&1 ||
	fail "trust: create alpha.test"
# A self-signature that fails (a bit of field 1, the signing key, flipped): refused, even
# with no org to check the rest against; nothing stored.
cp "$IV/user-bob.signet.bin" "$TMP/bob-badself.bin"
flip_byte "$TMP/bob-badself.bin" 12
expect 1 '' -- "$DIME" store import "$TMP/bob-badself.bin"
grep -q 'refused' "$TMP/stderr" || fail "bad self-signature: no 'refused' message"
expect 0 '^$' -- "$DIME" store list bob@beta.example
# A good user signet whose org is not stored: pending, shown so, never used to wrap.
expect 0 'imported user-signet bob@beta.example v1 .*\(pending: org beta.example not stored\)' -- "$DIME" store import "$IV/user-bob.signet.bin"
expect 0 '^bob@beta.example +user-signet +v1 +- +pending ' -- "$DIME" store list
expect 1 '' -- "$DIME" store export bob@beta.example
expect 1 '' -- "$DIME" msg wrap --from a@alpha.test --to bob@beta.example <"$mail"
# A forged bob (new key, self-signed, org signature by a look-alike beta.example made
# elsewhere) and no custody: refused as a new version, even while bob is pending.
DIME_STORE="$TMP/evil/dime.db" "$DIME" org create beta.example >/dev/null 2>&1 &&
	DIME_STORE="$TMP/evil/dime.db" "$DIME" user create bob@beta.example >/dev/null 2>&1 &&
	DIME_STORE="$TMP/evil/dime.db" "$DIME" store export bob@beta.example >"$TMP/evil-bob.pem" ||
	fail "make the forged bob"
expect 1 '' -- "$DIME" store import "$TMP/evil-bob.pem"
grep -q 'custody' "$TMP/stderr" || fail "forged bob: refusal does not name custody: $(cat "$TMP/stderr")"
# A tampered name keeps bob's key and self-signature: it waits pending as v2...
expect 0 'imported user-signet bob@beta.example v2 .*pending' -- "$DIME" store import "$IV/s-user-bob-tampered-name.bin"
# ...until the org arrives with its POK: v1 verifies, the tampered v2 is dropped.
out=$("$DIME" store import --pok "$BETA_POK" "$IV/org-beta.signet.pem") || fail "import org-beta: $out"
grep -qE '^imported org-signet beta.example v1 .*\(verified\)' <<<"$out" || fail "org-beta: $out"
grep -qE '^verified pending user-signet bob@beta.example v1 ' <<<"$out" || fail "bob v1 not verified: $out"
grep -qE '^dropped pending user-signet bob@beta.example v2 .*field 253' <<<"$out" || fail "tampered v2 not dropped: $out"
expect 0 '^bob@beta.example +user-signet +v1 +- +verified ' -- "$DIME" store list bob@beta.example
[ "$("$DIME" store list bob@beta.example | wc -l)" = 1 ] || fail "bob rows: $("$DIME" store list bob@beta.example)"
expect 0 'BEGIN USER SIGNET' -- "$DIME" store export bob@beta.example
expect 0 '' -- "$DIME" msg wrap --from a@alpha.test --to bob@beta.example <"$mail"
# With the org stored: the forged and tampered signets are refused outright.
expect 1 '' -- "$DIME" store import "$TMP/evil-bob.pem"
expect 1 '' -- "$DIME" store import "$IV/s-user-bob-tampered-name.bin"
expect 1 '' -- "$DIME" store import --as bob@beta.example "$IV/user-alice.signet.pem"
# Importing again is a no-op on the same version.
expect 0 'imported user-signet bob@beta.example v1 .*\(verified\)' -- "$DIME" store import "$IV/user-bob.signet.bin"

# An org signet without --pok: its own signatures are checked, then it waits pending, and so
# do its users; --pok later verifies both. A forged user against the pending org is refused.
export DIME_STORE="$TMP/trust2/dime.db"
expect 0 'imported org-signet beta.example v1 .*\(pending: no --pok' -- "$DIME" store import "$IV/org-beta.signet.pem"
expect 0 'imported user-signet bob@beta.example v1 .*\(pending: org beta.example pending\)' -- "$DIME" store import "$IV/user-bob.signet.bin"
expect 1 '' -- "$DIME" store import "$IV/s-user-bob-tampered-name.bin"
expect 0 '^beta.example +org-signet +v1 +- +pending ' -- "$DIME" store list
expect 1 '' -- "$DIME" store export beta.example
expect 0 '^verified pending user-signet bob@beta.example v1' -- "$DIME" store import --pok "$BETA_POK" "$IV/org-beta.signet.pem"
expect 0 '^beta.example +org-signet +v1 +- +verified ' -- "$DIME" store list

# Custody between stored versions: alice of example.org (the first store), rotated once.
EX_POK=$(pok_of "$TMP/org.signet")
export DIME_STORE="$TMP/trust3/dime.db"
expect 0 '\(verified\)' -- "$DIME" store import --pok "$EX_POK" "$TMP/org.signet"
expect 0 'alice@example.org v1 .*\(verified\)' -- "$DIME" store import "$TMP/a1.signet"
expect 0 'alice@example.org v2 .*\(verified\)' -- "$DIME" store import "$TMP/a2.signet"
# v2 alone in a fresh store: nothing to link its custody to, said so.
expect 0 'alice@example.org v1 .*custody not checked' -- env DIME_STORE="$TMP/trust4/dime.db" "$DIME" store import --pok "$EX_POK" "$TMP/org.signet" "$TMP/a2.signet"
# v1 after v2: a different key with no custody signature.
expect 1 '' -- env DIME_STORE="$TMP/trust4/dime.db" "$DIME" store import "$TMP/a1.signet"
# A custody signature by some other key (the forger's bob, rotated in the forger's store)
# against the real bob v1: refused.
DIME_STORE="$TMP/evil/dime.db" "$DIME" user create bob@beta.example --rotate >/dev/null 2>&1 &&
	DIME_STORE="$TMP/evil/dime.db" "$DIME" store export bob@beta.example >"$TMP/evil-bob2.pem" ||
	fail "rotate the forged bob"
DIME_STORE="$TMP/trust6/dime.db" "$DIME" store import "$IV/user-bob.signet.bin" >/dev/null || fail "trust6"
expect 1 '' -- env DIME_STORE="$TMP/trust6/dime.db" "$DIME" store import "$TMP/evil-bob2.pem"
grep -q 'custody signature' "$TMP/stderr" || fail "forged custody: $(cat "$TMP/stderr")"
# A lost key: example.org signs a new alice with no custody (from a copy of its store taken
# before alice existed). Refused, unless the operator starts a new chain with --no-custody,
# which a pending signet cannot do.
DIME_STORE="$TMP/store-before-alice/dime.db" "$DIME" user create alice@example.org >"$TMP/a-new.signet" 2>/dev/null ||
	fail "make the new alice"
expect 1 '' -- "$DIME" store import "$TMP/a-new.signet"
expect 0 'alice@example.org v3 .*--no-custody: a new custody chain starts here' -- "$DIME" store import --no-custody "$TMP/a-new.signet"
expect 1 '' -- env DIME_STORE="$TMP/trust/dime.db" "$DIME" store import --no-custody "$TMP/a-new.signet"
expect 0 '^alice@example.org +user-signet +v3 +- +verified ' -- "$DIME" store list alice@example.org

# store list takes no options; read-only commands never create a store.
export DIME_STORE="$TMP/store/dime.db"
expect 2 '' -- "$DIME" store list --bogus
grep -q 'unknown option --bogus' "$TMP/stderr" || fail "store list --bogus: $(cat "$TMP/stderr")"
export DIME_STORE="$TMP/none/dime.db"
for c in "store list" "store export example.org" "mrec generate --org example.org"; do
	expect 2 '' -- "$DIME" $c
	grep -q "no store at $TMP/none/dime.db" "$TMP/stderr" || fail "$c: $(cat "$TMP/stderr")"
done
expect 0 '' -- "$DIME" msg dump <"$IV/msg-small.complete.bin" # needs no store
# bounce-verify without a store: test_msg_cmds.sh (it needs a bounce as input)
for c in accept "open --as recipient"; do
	expect 2 '' -- "$DIME" msg $c <"$IV/msg-small.complete.bin"
	grep -q 'no store at' "$TMP/stderr" || fail "msg $c: $(cat "$TMP/stderr")"
done
expect 2 '' -- "$DIME" msg wrap --from a@alpha.test --to bob@beta.example <"$mail"
mkdir -p "$TMP/bin" "$TMP/bout"
cp "$IV/msg-small.complete.bin" "$TMP/bin/"
expect 2 '' -- "$DIME" batch accept --in "$TMP/bin" --out "$TMP/bout"
grep -q 'no store at' "$TMP/stderr" || fail "batch accept: $(cat "$TMP/stderr")"
[ ! -e "$TMP/none" ] || fail "a read-only command created $TMP/none"
export DIME_STORE="$TMP/store/dime.db"

for c in "org create" "user create" "store import" "store list" "store export"; do
	expect 0 '^usage: dime' -- "$DIME" $c --help
done
done_tests

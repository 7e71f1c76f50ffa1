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

for c in "org create" "user create" "store import" "store list" "store export"; do
	expect 0 '^usage: dime' -- "$DIME" $c --help
done
done_tests

#!/usr/bin/env bash
# Private keys at rest: a store created with DIME_PASSPHRASE_FILE is used, refuses a wrong or
# missing passphrase, moves to a key file with `store rekey-secrets` (the old passphrase then
# refused, the key file working), and never holds a raw seed; a store created with nothing set
# gets a generated PATH.key (0600).
set -u
source "$(dirname "$0")/lib.sh" "$@"

export DIME_PWHASH_COST=min # Argon2id at its lowest cost: this tests the plumbing, not the cost
unset DIME_KEY_FILE DIME_PASSPHRASE_FILE
printf 'first passphrase\n' >"$TMP/pw"
printf 'second passphrase\n' >"$TMP/pw2"
head -c 32 /dev/urandom >"$TMP/k"
chmod 600 "$TMP/pw" "$TMP/pw2" "$TMP/k"

# Hex of a file without separators.
hexof() { od -An -tx1 -v "$1" | tr -d ' \n'; }
# Fail when any 16-byte window (at offsets 0, 8, 16...) of the binary file $1 is found in the
# file $2: a 32-byte seed anywhere in $1 contains one such window.
no_window_of() { # KEYBIN FILE WHAT
	local k s len off
	k=$(hexof "$1")
	s=$(hexof "$2")
	len=${#k}
	for ((off = 0; off + 32 <= len; off += 16)); do
		if [[ $s == *"${k:off:32}"* ]]; then
			fail "$3: bytes $((off / 2))..$((off / 2 + 15)) of the key file are in $2"
			return
		fi
	done
}

# Create under a passphrase, and use it: org, users (the org key signs), a message.
export DIME_PASSPHRASE_FILE=$TMP/pw
expect 0 '' -- "$DIME" org create example.org
[ ! -e "$DIME_STORE.key" ] || fail "a passphrase store got a key file beside it"
expect 0 'BEGIN USER SIGNET' -- "$DIME" user create alice@example.org
expect 0 'BEGIN USER SIGNET' -- "$DIME" user create bob@example.org
printf 'Subject: hi\nFrom: alice@example.org\n\nsealed keys\n' >"$TMP/m.eml"
"$DIME" msg wrap --from alice@example.org --to bob@example.org --origin-sign <"$TMP/m.eml" >"$TMP/m.dime" ||
	fail "wrap with sealed keys"
expect 0 '^ACCEPT bob@example.org ' -- "$DIME" msg accept <"$TMP/m.dime"
"$DIME" msg open --as recipient <"$TMP/m.dime" | cmp -s - "$TMP/m.eml" || fail "open with sealed keys"

# Another domain's key file, imported: its seeds must not be in the store in any form.
BETA_POK=$(pok_of "$IV/org-beta.signet.pem")
expect 0 'imported org-signet' -- "$DIME" store import --pok "$BETA_POK" "$IV/org-beta.signet.pem"
expect 0 'imported user-signet' -- "$DIME" store import "$IV/user-bob.signet.bin"
expect 0 'imported user-key bob@beta.example' -- "$DIME" store import --hosted "$IV/user-bob.keys.pem"
grep -v -e '^-----' -e '^=' "$IV/user-bob.keys.pem" | base64 -d >"$TMP/bob.key.bin" || fail "decode key"
[ "$(stat -c %s "$TMP/bob.key.bin")" -ge 64 ] || fail "decoded key file too short"
no_window_of "$TMP/bob.key.bin" "$DIME_STORE" "store file"
if command -v sqlite3 >/dev/null; then
	sqlite3 "$DIME_STORE" "SELECT blob FROM objects WHERE kind IN (1, 1952, 2013)" >/dev/null ||
		fail "sqlite3 cannot read the store"
	sqlite3 "$DIME_STORE" "SELECT hex(blob) FROM objects WHERE kind IN (1, 1952, 2013)" |
		tr 'A-F' 'a-f' | tr -d '\n' >"$TMP/blobs.hex"
	[ -s "$TMP/blobs.hex" ] || fail "sqlite3 shows no key rows"
	k=$(hexof "$TMP/bob.key.bin")
	for ((off = 0; off + 32 <= ${#k}; off += 16)); do
		grep -q "${k:off:32}" "$TMP/blobs.hex" && fail "sqlite3 shows bytes of bob's key" && break
	done
	n=$(sqlite3 "$DIME_STORE" "SELECT mode FROM secrets")
	[ "$n" = passphrase ] || fail "secrets mode: got '$n', want passphrase"
fi

# Wrong, missing or unsafe passphrase: refused with the reason, exit 2, nothing printed.
DIME_PASSPHRASE_FILE=$TMP/pw2 expect 2 '^$' -- "$DIME" store list
grep -q "wrong passphrase or key file for store $DIME_STORE" "$TMP/stderr" ||
	fail "wrong passphrase message: $(cat "$TMP/stderr")"
# commands that load keys through the party directory give the same reason
DIME_PASSPHRASE_FILE=$TMP/pw2 expect 2 '' -- "$DIME" msg open --as recipient <"$TMP/m.dime"
grep -q "wrong passphrase or key file for store" "$TMP/stderr" ||
	fail "msg open, wrong passphrase: $(cat "$TMP/stderr")"
# stdin not a terminal: no prompt, a message naming what to set
env -u DIME_PASSPHRASE_FILE "$DIME" store list </dev/null >/dev/null 2>"$TMP/stderr" && fail "opened without a passphrase"
grep -q "sealed with a passphrase: set DIME_PASSPHRASE_FILE" "$TMP/stderr" ||
	fail "no passphrase, no terminal: $(cat "$TMP/stderr")"
# On a terminal (a pty from script(1)), the CLI asks, without echo.
tty_open() { # PASSPHRASE: run `dime store list` on a pty, answer the prompt; output in tty.out
	rm -f "$TMP/tty.in" "$TMP/tty.out"
	mkfifo "$TMP/tty.in"
	env -u DIME_PASSPHRASE_FILE timeout 30 script -qec "$DIME store list" /dev/null \
		<"$TMP/tty.in" >"$TMP/tty.out" 2>&1 &
	local pid=$! i
	exec 3>"$TMP/tty.in"
	for ((i = 0; i < 200; i++)); do
		grep -q 'passphrase for store' "$TMP/tty.out" 2>/dev/null && break
		sleep 0.1
	done
	printf '%s\n' "$1" >&3
	exec 3>&-
	wait $pid
}
if command -v script >/dev/null && command -v mkfifo >/dev/null; then
	tty_open 'first passphrase' || fail "prompt: exit $?: $(cat "$TMP/tty.out")"
	grep -q 'example.org *org-key' "$TMP/tty.out" || fail "prompt: no listing: $(cat "$TMP/tty.out")"
	grep -q 'first passphrase' "$TMP/tty.out" && fail "prompt: the passphrase was echoed"
	tty_open 'first passphrasf' && fail "prompt: a wrong passphrase opened the store"
	grep -q 'wrong passphrase or key file' "$TMP/tty.out" || fail "prompt, wrong: $(cat "$TMP/tty.out")"
fi
chmod 644 "$TMP/pw"
expect 2 '' -- "$DIME" store list
grep -q "chmod 600" "$TMP/stderr" || fail "world-readable passphrase file: $(cat "$TMP/stderr")"
chmod 600 "$TMP/pw"

# rekey-secrets: to a key file. The old passphrase no longer opens the store; the key file does.
expect 2 '' -- "$DIME" store rekey-secrets
expect 2 '' -- "$DIME" store rekey-secrets --to-key-file "$TMP/k" --to-generated
expect 0 '^usage' -- "$DIME" store rekey-secrets --help
expect 0 '^re-sealed 4 private keys under the key file .*DIME_KEY_FILE=' -- "$DIME" store rekey-secrets --to-key-file "$TMP/k"
expect 2 '' -- "$DIME" store list
grep -q "sealed with a key file" "$TMP/stderr" || fail "old passphrase after rekey: $(cat "$TMP/stderr")"
export DIME_KEY_FILE=$TMP/k
expect 0 'bob@beta.example +user-key' -- "$DIME" store list
"$DIME" msg open --as recipient <"$TMP/m.dime" | cmp -s - "$TMP/m.eml" || fail "open after rekey"
expect 0 'BEGIN USER SIGNET' -- "$DIME" user create carol@example.org
head -c 32 /dev/urandom >"$TMP/k2"
chmod 600 "$TMP/k2"
DIME_KEY_FILE=$TMP/k2 expect 2 '' -- "$DIME" store list
grep -q "wrong passphrase or key file" "$TMP/stderr" || fail "wrong key file: $(cat "$TMP/stderr")"
no_window_of "$TMP/bob.key.bin" "$DIME_STORE" "store file after rekey"

# Back to a passphrase, then to a generated key file beside the store.
expect 0 '^re-sealed 5 private keys under the passphrase' -- "$DIME" store rekey-secrets --to-passphrase-file "$TMP/pw2"
unset DIME_KEY_FILE
DIME_PASSPHRASE_FILE=$TMP/pw2 expect 0 '^re-sealed 5 private keys under the generated key file' -- "$DIME" store rekey-secrets --to-generated
[ "$(stat -c %a "$DIME_STORE.key")" = 600 ] || fail "generated key file mode $(stat -c %a "$DIME_STORE.key")"
unset DIME_PASSPHRASE_FILE
expect 0 'carol@example.org +user-key' -- "$DIME" store list
"$DIME" msg open --as recipient <"$TMP/m.dime" | cmp -s - "$TMP/m.eml" || fail "open with PATH.key"

# A new store with nothing configured: PATH.key is generated and announced on stderr.
export DIME_STORE=$TMP/fresh/dime.db
expect 0 '' -- "$DIME" org create fresh.example
[ "$(stat -c %a "$DIME_STORE.key")" = 600 ] && [ "$(stat -c %s "$DIME_STORE.key")" = 32 ] ||
	fail "generated key file: $(stat -c '%a %s' "$DIME_STORE.key" 2>&1)"
grep -q "generated its key file $DIME_STORE.key" "$TMP/stderr" || fail "no notice: $(cat "$TMP/stderr")"
expect 0 'fresh.example +org-key' -- "$DIME" store list
[ "$(grep -c 'generated' "$TMP/stderr")" = 0 ] || fail "the notice is repeated at each open"
done_tests

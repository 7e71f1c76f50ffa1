#!/usr/bin/env bash
# The README walkthrough runs as written: every fenced sh block that follows a
# `<!-- walkthrough -->` line in README.md, in order, in an empty directory with the dime binary
# on the PATH. The first command that fails stops the run and is named.
set -u
source "$(dirname "$0")/lib.sh" "$@"

README=$(cd "$(dirname "$0")/../.." && pwd)/README.md
unset DIME_STORE # the walkthrough names its two stores itself

# The marked blocks, as one script.
awk '
	/^<!-- walkthrough -->[[:space:]]*$/ { armed = 1; next }
	armed && /^```sh[[:space:]]*$/ { inblock = 1; armed = 0; n++; next }
	inblock && /^```[[:space:]]*$/ { inblock = 0; next }
	inblock { print }
	END { if (n == 0) exit 1 }
' "$README" >"$TMP/walkthrough.sh" || fail "README.md has no <!-- walkthrough --> sh block"
lines=$(grep -cvE '^[[:space:]]*(#|$)' "$TMP/walkthrough.sh")
[ "$lines" -ge 20 ] || fail "walkthrough has only $lines commands"

mkdir "$TMP/bin" "$TMP/run"
ln -s "$(cd "$(dirname "$DIME")" && pwd)/$(basename "$DIME")" "$TMP/bin/dime"
# errtrace + ERR trap: name the README line that failed, then stop.
(
	cd "$TMP/run" &&
		PATH="$TMP/bin:$PATH" bash -c '
			set -eEuo pipefail
			trap '\''echo "walkthrough line $LINENO failed: $(sed -n "${LINENO}p" "$0")" >&2'\'' ERR
			source "$0"' "$TMP/walkthrough.sh"
) >"$TMP/out" 2>"$TMP/err" || fail "README walkthrough: $(grep 'walkthrough line' "$TMP/err" || tail -n 5 "$TMP/err")"

# What the walkthrough promises in its comments.
grep -q '^ACCEPT ver=1 pok=1 ' "$TMP/out" || fail "mrec check of the printed TXT line did not ACCEPT"
grep -q '^ACCEPT bob@example.net ' "$TMP/out" || fail "msg accept did not ACCEPT"
grep -q '^BOUNCE alice@example.org example.net 1 no such user$' "$TMP/out" || fail "no BOUNCE line"
[ "$(grep -c '^VALID ' "$TMP/out")" -ge 3 ] || fail "fewer than 3 VALID signet verdicts"
[ -f "$TMP/run/org.db" ] && [ -f "$TMP/run/net.db" ] || fail "the two stores were not made"
[ "$(find "$TMP/run/opened" -type f | wc -l)" -ge 2 ] || fail "batch open wrote no mail"
done_tests

# Helpers for the CLI tests: run the binary, compare output and exit codes.
# Usage in a test: source lib.sh "$@"  (args: DIME_BINARY INTEROP_DIR)
DIME=$1
IV=$2
FAILS=0
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export DIME_STORE="$TMP/store/dime.db"

fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

# expect CODE PATTERN -- command...: exit code must be CODE, stdout must match PATTERN (grep -E).
expect() {
	local code=$1 pat=$2 out rc
	shift 3
	out=$("$@" 2>"$TMP/stderr") && rc=0 || rc=$?
	if [ "$rc" != "$code" ]; then
		fail "$*: exit $rc, want $code; stdout: $out; stderr: $(cat "$TMP/stderr")"
	elif [ -n "$pat" ] && ! grep -qE -- "$pat" <<<"$out"; then
		fail "$*: stdout does not match /$pat/: $out"
	fi
}

done_tests() {
	if [ "$FAILS" -gt 0 ]; then
		echo "$(basename "$0"): $FAILS failure(s)" >&2
		exit 1
	fi
	echo "$(basename "$0"): ok"
}

# The POK of an org signet file, as printed by `dime signet show`.
pok_of() { "$DIME" signet show "$1" | awk '$1 == "1" { print $3; exit }'; }

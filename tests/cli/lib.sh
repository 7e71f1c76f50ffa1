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
# Invert the low bit of the byte at OFFSET: always a change, whatever the byte was (writing a
# fixed value is a no-op one time in 256).
flip_byte() { # FILE OFFSET
	local b
	b=$(od -An -tu1 -j "$2" -N 1 "$1" | tr -d ' ')
	[ -n "$b" ] || { fail "flip_byte: $1 has no byte at $2"; return; }
	printf "\\$(printf '%03o' $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
pok_of() { "$DIME" signet show "$1" | awk '$1 == "1" { print $3; exit }'; }

#!/bin/sh
# A short libFuzzer run of every target built in $1 (DIME_FUZZ=ON), seeded from the corpora.
set -eu
build=${1:-build-fuzz}
secs=${FUZZ_SECONDS:-20}
top=$(cd "$(dirname "$0")/.." && pwd)
for bin in "$build"/bin/fuzz_*; do
	case "$bin" in *_replay) continue ;; esac
	name=$(basename "$bin" | sed 's/^fuzz_//')
	work=$(mktemp -d)
	echo "fuzz $name for ${secs}s"
	"$bin" -max_total_time="$secs" -max_len=65536 "$work" "$top/tests/fuzz/corpus/$name" \
		>"$work/log" 2>&1 || { tail -40 "$work/log"; exit 1; }
	rm -rf "$work"
done

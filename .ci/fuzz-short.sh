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
	log=$(mktemp)
	echo "fuzz $name for ${secs}s"
	# New inputs go to a scratch corpus; a crash leaves its reproducer in $build.
	"$bin" -max_total_time="$secs" -max_len=65536 -artifact_prefix="$build/" "$work" \
		"$top/tests/fuzz/corpus/$name" >"$log" 2>&1 || { tail -40 "$log"; exit 1; }
	rm -rf "$work" "$log"
done

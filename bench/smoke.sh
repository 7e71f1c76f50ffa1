#!/bin/sh
# ctest "bench.smoke": dime-bench builds and its commands run end to end. No timing is checked:
# a couple of micro benchmarks, then a tiny capacity run whose CSV and JSON must exist and parse.
set -eu
BENCH=$1
out=$(mktemp -d "${TMPDIR:-/tmp}/dime-bench-smoke.XXXXXX")
trap 'rm -rf "$out"' EXIT

"$BENCH" micro --benchmark_min_time=0.01 \
	--benchmark_filter='^(prim/sha512/4096|prim/ed25519_verify/64|op/accept/1k/warm|floor/accept/1k/warm)$'

# every operation, so a fixture the pipeline refuses (as rekey once did) fails here
"$BENCH" capacity --ops wrap,origin-sign,accept,open,bounce-verify,rekey --sizes 1k \
	--workers 1..2 --seconds 0.2 --repeats 1 --out "$out" || { echo "capacity failed: $?"; exit 1; }
for f in capacity.csv capacity.json capacity-batching.csv; do
	[ -s "$out/$f" ] || { echo "missing $out/$f"; exit 1; }
done
# CSV: a header and one row per op x size x workers (6 x 1 x 2), 17 fields each
awk -F, 'NR == 1 && $1 != "op" { exit 1 } NF != 17 { exit 1 } END { if (NR != 13) exit 1 }' \
	"$out/capacity.csv" || { echo "capacity.csv malformed"; cat "$out/capacity.csv"; exit 1; }
# batching on and off for accept and open at 1k: a header and four rows
awk 'END { if (NR != 5) exit 1 }' "$out/capacity-batching.csv" ||
	{ echo "capacity-batching.csv malformed"; cat "$out/capacity-batching.csv"; exit 1; }
if command -v python3 >/dev/null 2>&1; then
	python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert len(d["rows"]) == 12' \
		"$out/capacity.json" || { echo "capacity.json malformed"; exit 1; }
elif command -v jq >/dev/null 2>&1; then
	[ "$(jq '.rows | length' "$out/capacity.json")" = 12 ] || { echo "capacity.json malformed"; exit 1; }
fi
echo "bench smoke ok"

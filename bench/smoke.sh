#!/bin/sh
# ctest "bench.smoke": dime-bench builds and its commands run end to end. No timing is checked:
# every --help, a couple of micro benchmarks, a tiny capacity run whose CSV and JSON must exist,
# parse and carry the machine, a tiny --recommend, and a temporary store removed on SIGTERM.
set -eu
BENCH=$1
out=$(mktemp -d "${TMPDIR:-/tmp}/dime-bench-smoke.XXXXXX")
trap 'rm -rf "$out"' EXIT
fail() { echo "bench smoke: $*"; exit 1; }

# every command explains itself, with its defaults, and exits 0
for c in micro capacity peers kernels; do
	"$BENCH" "$c" --help >"$out/help.txt" 2>&1 || fail "$c --help exited $?"
	grep -q '^usage: dime-bench' "$out/help.txt" || fail "$c --help: no usage line"
	grep -qi 'default' "$out/help.txt" || fail "$c --help: no defaults"
done
"$BENCH" --help >/dev/null || fail "--help exited $?"

"$BENCH" micro --benchmark_min_time=0.01 \
	--benchmark_filter='^(prim/sha512/4096|prim/ed25519_verify/64|op/accept/1k/warm|floor/accept/1k/warm)$'

# every operation, so a fixture the pipeline refuses (as rekey once did) fails here
"$BENCH" capacity --ops wrap,origin-sign,accept,open,bounce-verify,rekey --sizes 1k \
	--workers 1..2 --seconds 0.2 --repeats 1 --out "$out" --progress 2>"$out/err.txt" ||
	{ cat "$out/err.txt"; fail "capacity failed"; }
grep -q 'ETA' "$out/err.txt" || fail "--progress printed no ETA"
for f in capacity.csv capacity.json capacity-batching.csv; do
	[ -s "$out/$f" ] || fail "missing $out/$f"
done
# CSV: a header and one row per op x size x workers (6 x 1 x 2), 19 fields each;
# per_core_vs_floor (field 14) only on 1-worker rows, empty elsewhere
awk -F, 'NR == 1 && ($1 != "op" || $14 != "per_core_vs_floor") { exit 1 }
	NF != 19 { exit 1 }
	NR > 1 && $5 == 1 && $14 == "" { exit 1 }
	NR > 1 && $5 != 1 && $14 != "" { exit 1 }
	END { if (NR != 13) exit 1 }' "$out/capacity.csv" ||
	{ cat "$out/capacity.csv"; fail "capacity.csv malformed"; }
# batching on and off for accept and open at 1k: a header and four rows
awk 'END { if (NR != 5) exit 1 }' "$out/capacity-batching.csv" ||
	{ cat "$out/capacity-batching.csv"; fail "capacity-batching.csv malformed"; }
if command -v python3 >/dev/null 2>&1; then
	python3 - "$out/capacity.json" <<'EOF' || fail "capacity.json malformed"
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["rows"]) == 12
m = d["machine"]
for k in ("cpu_model", "simd", "cores_online", "loadavg_start", "loadavg_end", "commit", "date"):
    assert k in m and m[k] not in ("", None), k
assert len(m["loadavg_start"]) == 3 and len(m["loadavg_end"]) == 3
for r in d["rows"]:
    assert (r["per_core_vs_floor"] is None) == (r["workers"] != 1), r
    assert r["latency_p50_ms"] > 0 and r["group_time_p50_ms"] > 0, r
EOF
elif command -v jq >/dev/null 2>&1; then
	[ "$(jq '.rows | length' "$out/capacity.json")" = 12 ] || fail "capacity.json malformed"
	jq -e '.machine | .cpu_model and .simd and .cores_online and .loadavg_start and
		.loadavg_end and .commit and .date' "$out/capacity.json" >/dev/null ||
		fail "capacity.json: machine fields missing"
fi
if command -v gnuplot >/dev/null 2>&1; then
	for f in throughput-wrap.png throughput-rekey.png latency.png; do
		[ -s "$out/$f" ] || fail "missing chart $f"
	done
fi

# --recommend names a worker count and a batch size
"$BENCH" capacity --recommend --ops accept --sizes 1k --workers 1..2 --batches 1,32 \
	--seconds 0.1 --repeats 1 --out "$out" >"$out/rec.txt" 2>&1 || { cat "$out/rec.txt"; fail "--recommend failed"; }
grep -Eq '^recommend: accept 1k: workers [12], batch_max (1|32) ' "$out/rec.txt" ||
	{ cat "$out/rec.txt"; fail "--recommend printed no recommendation"; }

# SIGTERM in the middle of a run: the temporary store goes with the process
mkdir "$out/tmp"
TMPDIR="$out/tmp" "$BENCH" capacity --ops accept --sizes 1k --workers 1 --seconds 30 \
	--repeats 1 --out "$out" --no-progress >"$out/term.txt" 2>&1 &
pid=$!
i=0
until [ -n "$(ls -A "$out/tmp")" ] && grep -q 'distinct messages' "$out/term.txt"; do
	i=$((i + 1))
	[ $i -lt 300 ] || { kill -KILL $pid; fail "capacity did not start"; }
	sleep 0.1
done
kill -TERM $pid
rc=0
wait $pid || rc=$?
[ $rc -eq 143 ] || fail "capacity after SIGTERM exited $rc, want 143"
[ -z "$(ls -A "$out/tmp")" ] || { ls -lR "$out/tmp"; fail "temporary store left after SIGTERM"; }
echo "bench smoke ok"

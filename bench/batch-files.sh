#!/usr/bin/env bash
# What the user runs, against the crypto floor: `dime batch wrap --origin-sign` and
# `dime batch accept` over a directory of mails on disk, at each worker count, each round
# taking the floor (dime-bench capacity, one thread, the primitive calls the operation cannot
# avoid) just before its file runs, so both see the same machine load. Prints, per op and
# worker count, the median (and range) over the rounds of files msg/s / floor msg/s, and of
# N workers over 1. docs/batch.md, "End-to-end against the crypto floor".
# Each round also runs both with --key-process (the keys in a separate process, docs/keyproc.md)
# right after the in-process run: the last column is the median (and range) of kp / in-process.
#
# usage: bench/batch-files.sh [--count N] [--size BYTES] [--rounds R] [--workers 1,2]
#                             [--build DIR] [--keep]
set -euo pipefail

count=1500 size=10240 rounds=5 workers=1,2 build=build keep=0
while [ $# -gt 0 ]; do
	case $1 in
	--count) count=$2; shift 2 ;;
	--size) size=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--workers) workers=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	-h | --help)
		sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
		echo "defaults: --count $count --size $size --rounds $rounds --workers $workers --build $build"
		exit 0 ;;
	*) echo "batch-files: unknown option $1" >&2; exit 2 ;;
	esac
done
DIME=$(cd "$build/bin" && pwd)/dime
BENCH=$(cd "$build/bin" && pwd)/dime-bench
[ -x "$DIME" ] && [ -x "$BENCH" ] || {
	echo "batch-files: needs $build/bin/dime and dime-bench (make build CMAKE_FLAGS=-DDIME_BUILD_BENCH=ON)" >&2
	exit 2
}
case $size in
1024) csize=1k ;; 10240) csize=10k ;; 102400) csize=100k ;; 1048576) csize=1m ;;
*) echo "batch-files: --size must be 1024, 10240, 102400 or 1048576 (a capacity size)" >&2; exit 2 ;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dime-batch-files.XXXXXX")
[ "$keep" = 1 ] || trap 'rm -rf "$tmp"' EXIT
export DIME_STORE=$tmp/dime.db
"$DIME" org create alpha.test >/dev/null 2>&1
"$DIME" org create beta.test >/dev/null 2>&1
"$DIME" user create alice@alpha.test >/dev/null 2>&1
"$DIME" user create bob@beta.test >/dev/null 2>&1
mkdir "$tmp/in"
hdr=$(printf 'From: alice@alpha.test\r\nTo: bob@beta.test\r\nSubject: bench\r\n\r\n')
for i in $(seq 1 "$count"); do
	{
		printf '%s' "$hdr"
		head -c $(((size - ${#hdr}) * 3 / 4)) /dev/urandom | base64 -w 76
	} >"$tmp/in/m$i.eml"
done

now() { date +%s.%N; }
# rate OP W [--key-process]: run one file batch, print msg/s
rate() {
	local op=$1 w=$2 kp=${3:-} t0 t1
	rm -rf "$tmp/out-$op"
	sync
	t0=$(now)
	case $op in
	wrap) "$DIME" batch wrap --in "$tmp/in" --out "$tmp/out-$op" --from alice@alpha.test \
		--to bob@beta.test --origin-sign --binary --workers "$w" $kp >/dev/null 2>&1 ;;
	accept) "$DIME" batch accept --in "$tmp/signed" --out "$tmp/out-$op" --workers "$w" \
		$kp >/dev/null 2>&1 ;;
	esac
	t1=$(now)
	awk -v n="$count" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }'
}
# the inputs of accept: wrapped and origin-signed once
"$DIME" batch wrap --in "$tmp/in" --out "$tmp/signed" --from alice@alpha.test --to bob@beta.test \
	--origin-sign --binary >/dev/null 2>&1

IFS=, read -r -a ws <<<"$workers"
res=$tmp/results.txt
: >"$res"
for r in $(seq 1 "$rounds"); do
	"$BENCH" capacity --ops wrap,origin-sign,accept --sizes "$csize" --workers 1 --seconds 2 \
		--repeats 1 --no-batching --no-progress --out "$tmp/cap" >/dev/null 2>&1
	fw=$(awk -F, '$1 == "wrap" { print $13 }' "$tmp/cap/capacity.csv")
	fo=$(awk -F, '$1 == "origin-sign" { print $13 }' "$tmp/cap/capacity.csv")
	fa=$(awk -F, '$1 == "accept" { print $13 }' "$tmp/cap/capacity.csv")
	# wrap --origin-sign does both: its floor is the harmonic combination
	fwo=$(awk -v a="$fw" -v b="$fo" 'BEGIN { printf "%.1f", 1 / (1 / a + 1 / b) }')
	for w in "${ws[@]}"; do
		echo "$r wrap $w $(rate wrap "$w") $fwo $(rate wrap "$w" --key-process)" >>"$res"
		echo "$r accept $w $(rate accept "$w") $fa $(rate accept "$w" --key-process)" >>"$res"
	done
	echo "round $r/$rounds done" >&2
done

load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "# $count mails of $size bytes, $rounds rounds, $(nproc) CPUs, load $load"
echo "# op workers: msg/s median | vs floor median (min-max) | vs 1 worker median (min-max)" \
	"| --key-process msg/s median, vs in-process median (min-max)"
awk '
	{ key = $2 " " $3; v[key, $1] = $4 / $5; m[key, $1] = $4; keys[key] = 1; one[$2, $1] = ($3 == 1) ? $4 : one[$2, $1]; R = $1 > R ? $1 : R
	  kpm[key, $1] = $6; kpr[key, $1] = $6 / $4 }
	function med(a, n,   i, j, t) {
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	END {
		for (k in keys) {
			split(k, kw, " ")
			for (r = 1; r <= R; r++) { x[r] = v[k, r]; y[r] = m[k, r]; s[r] = one[kw[1], r] ? m[k, r] / one[kw[1], r] : 0 }
			mx = med(y, R); vx = med(x, R); lo = 1e9; hi = 0; slo = 1e9; shi = 0
			for (r = 1; r <= R; r++) { if (v[k, r] < lo) lo = v[k, r]; if (v[k, r] > hi) hi = v[k, r]
				if (s[r] < slo) slo = s[r]; if (s[r] > shi) shi = s[r] }
			for (r = 1; r <= R; r++) z[r] = s[r]
			zs = med(z, R)
			klo = 1e9; khi = 0
			for (r = 1; r <= R; r++) { q[r] = kpm[k, r]; p[r] = kpr[k, r]
				if (p[r] < klo) klo = p[r]; if (p[r] > khi) khi = p[r] }
			km = med(q, R); kr = med(p, R)
			printf "%-7s %2s: %8.0f | %.2fx (%.2f-%.2f) | %.2fx (%.2f-%.2f) | %8.0f %.2fx (%.2f-%.2f)\n", kw[1], kw[2], mx, vx, lo, hi, zs, slo, shi, km, kr, klo, khi
		}
	}' "$res" | sort

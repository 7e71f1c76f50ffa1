#!/usr/bin/env bash
# End to end between two dimed instances on loopback, against the same work done by the batch
# tools. alpha.bench (alice) is served by a dimed on 127.0.0.1, beta.bench (bob) by one on
# 127.0.0.2 (static DNS file, implicit TLS, as tools/demo-pair.sh). Each round:
#   e2e:   `dime send --in DIR` at alpha (resolve once, wrap + origin-sign on the batch
#          pipeline, into the durable outbound queue), alpha's agents deliver over DMTP, beta
#          verifies (accept), spools and stores each in bob's Maildir; timed from the send's
#          start until the last message is in bob's Maildir.
#   batch: `dime batch wrap --origin-sign` at alpha then `dime batch accept` at beta on the same
#          mails, from files to files (no network, no queue, no Maildir).
# Prints per round and as medians: e2e msg/s, the send phase alone and how long delivery ran on
# after it (a bulk send tells dimed every 32 messages, so delivery overlaps the wrapping), batch
# msg/s (wrap+accept in sequence), the ratio e2e/batch; at the end alpha's resolver (management record) cache hit rate
# from its outq.stats line and how many DMTP sessions carried the messages.
#
# usage: bench/e2e-dmtp.sh [--count N] [--size BYTES] [--rounds R] [--workers W]
#                          [--outbound W] [--port P] [--build DIR] [--keep]
set -euo pipefail

count=1000 size=10240 rounds=3 workers=2 outbound=4 port=${DIME_BENCH_PORT:-2727} build=build keep=0
while [ $# -gt 0 ]; do
	case $1 in
	--count) count=$2; shift 2 ;;
	--size) size=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--workers) workers=$2; shift 2 ;;
	--outbound) outbound=$2; shift 2 ;;
	--port) port=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	-h | --help)
		sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
		echo "defaults: --count $count --size $size --rounds $rounds --workers $workers" \
			"--outbound $outbound --port $port --build $build"
		exit 0 ;;
	*) echo "e2e-dmtp: unknown option $1" >&2; exit 2 ;;
	esac
done
DIME=$(cd "$build/bin" && pwd)/dime
DIMED=$(cd "$build/bin" && pwd)/dimed
[ -x "$DIME" ] && [ -x "$DIMED" ] || { echo "e2e-dmtp: needs $build/bin/dime and dimed (make build)" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dime-e2e.XXXXXX")
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ "$keep" = 1 ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT

: >"$tmp/dns.txt"
org() { # NAME DOMAIN ADDR USER
	local d=$tmp/$1
	mkdir -p "$d"
	"$DIME" --store "$d/dime.db" org create "$2" >/dev/null 2>&1
	"$DIME" --store "$d/dime.db" user create "$4@$2" >/dev/null 2>&1
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/key.pem" -out "$d/cert.pem" -days 2 \
		-subj "/CN=dx.$2" -addext "subjectAltName=DNS:dx.$2" >/dev/null 2>&1
	"$DIME" --store "$d/dime.db" mrec generate --org "$2" --tls-cert "$d/cert.pem" --dx "dx.$2" \
		--pol mixed | sed -e 's/^\([^ ]*\)\. IN TXT /\1 3600 TXT /' >>"$tmp/dns.txt"
	printf 'dx.%s 3600 A %s\n' "$2" "$3" >>"$tmp/dns.txt"
	cat >"$d/dimed.conf" <<EOF
hostname = dx.$2
listen = $3:$port dmtp
store = $d/dime.db
outq = $d/outq
spool = $d/spool
maildir_root = $d/mail
dx_port = $port
dns_static = $tmp/dns.txt
workers = $workers
outbound_workers = $outbound
outq_first_retry = 1s
outq_max_interval = 10s
[tls]
cert = $d/cert.pem
key = $d/key.pem
EOF
}
org alpha alpha.bench 127.0.0.1 alice
org beta beta.bench 127.0.0.2 bob
for o in alpha beta; do
	(cd "$tmp/$o" && exec "$DIMED" --config dimed.conf --ports-file ports) >"$tmp/$o/dimed.log" 2>&1 &
	PIDS+=("$!")
done
for o in alpha beta; do
	for _ in $(seq 200); do [ -s "$tmp/$o/ports" ] && break; sleep 0.1; done
	[ -s "$tmp/$o/ports" ] || { echo "e2e-dmtp: dimed $o did not start:" >&2; tail -5 "$tmp/$o/dimed.log" >&2; exit 1; }
done

mkdir "$tmp/in"
hdr=$(printf 'From: alice@alpha.bench\r\nTo: bob@beta.bench\r\nSubject: bench\r\n\r\n')
for i in $(seq 1 "$count"); do
	{ printf '%s' "$hdr"; head -c $(((size - ${#hdr}) * 3 / 4)) /dev/urandom | base64 -w 76; } >"$tmp/in/m$i.eml"
done
box=$tmp/beta/mail/beta.bench/bob/new
inbox() { if [ -d "$box" ]; then find "$box" -type f | wc -l; else echo 0; fi; }
now() { date +%s.%N; }

# one message first: beta fetches alpha's org signet, alpha caches beta's record and signets
printf '%sfirst\r\n' "$hdr" | "$DIME" send --config "$tmp/alpha/dimed.conf" --from alice@alpha.bench \
	--to bob@beta.bench >/dev/null
for _ in $(seq 600); do [ "$(inbox)" -ge 1 ] && break; sleep 0.1; done
[ "$(inbox)" -ge 1 ] || { echo "e2e-dmtp: the first message never arrived" >&2; tail -5 "$tmp"/*/dimed.log >&2; exit 1; }

res=$tmp/results.txt
: >"$res"
for r in $(seq 1 "$rounds"); do
	base=$(inbox)
	t0=$(now)
	"$DIME" send --config "$tmp/alpha/dimed.conf" --from alice@alpha.bench --to bob@beta.bench \
		--in "$tmp/in" --workers "$workers" >"$tmp/send.out"
	t1=$(now)
	want=$((base + count))
	deadline=$(($(date +%s) + 600))
	while [ "$(inbox)" -lt "$want" ]; do
		[ "$(date +%s)" -lt "$deadline" ] || { echo "e2e-dmtp: round $r: $(($(inbox) - base)) of $count arrived in 600 s" >&2; exit 1; }
		sleep 0.05
	done
	t2=$(now)
	rm -rf "$tmp/w" "$tmp/a"
	t3=$(now)
	"$DIME" --store "$tmp/alpha/dime.db" batch wrap --in "$tmp/in" --out "$tmp/w" --from alice@alpha.bench \
		--to bob@beta.bench --origin-sign --binary --workers "$workers" >/dev/null 2>&1
	"$DIME" --store "$tmp/beta/dime.db" batch accept --in "$tmp/w" --out "$tmp/a" --workers "$workers" \
		>/dev/null 2>&1
	t4=$(now)
	[ "$(ls "$tmp/a" | wc -l)" = "$count" ] || { echo "e2e-dmtp: batch accept gave $(ls "$tmp/a" | wc -l) of $count" >&2; exit 1; }
	awk -v n="$count" -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v e="$t4" -v r="$r" \
		'BEGIN { printf "%d %.1f %.1f %.1f %.1f\n", r, n / (c - a), n / (b - a), n / (e - d), c - b }' >>"$res"
	echo "round $r/$rounds: $(tail -1 "$res")" >&2
done
kill -TERM "${PIDS[0]}"
wait "${PIDS[0]}" 2>/dev/null || true
stats=$(grep 'outq.stats' "$tmp/alpha/dimed.log" | tail -1)

echo "# $count mails of $size bytes, $rounds rounds, dimed workers $workers, outbound_workers $outbound, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
awk '
	function med(a, n,   i, j, t) {
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	{ n++; e[n] = $2; s[n] = $3; b[n] = $4; t[n] = $5; q[n] = $2 / $4; lo = (n == 1 || q[n] < lo) ? q[n] : lo; hi = q[n] > hi ? q[n] : hi }
	END {
		printf "e2e (send, deliver, accept, store): %.0f msg/s median\n", med(e, n)
		printf "  of which dime send --in (wrap, queue): %.0f msg/s median; the last message arrived %.1f s after the send ended (median)\n", med(s, n), med(t, n)
		printf "batch wrap --origin-sign + batch accept: %.0f msg/s median\n", med(b, n)
		printf "e2e / batch: %.2fx median (%.2f-%.2f)\n", med(q, n), lo, hi
	}' "$res"
echo "alpha: $(grep -o 'delivered=[0-9]*\|sessions=[0-9]*\|mr_hits=[0-9]*\|mr_misses=[0-9]*\|mr_hit_rate=[0-9.]*' <<<"$stats" | tr '\n' ' ')"

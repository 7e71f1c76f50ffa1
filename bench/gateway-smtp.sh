#!/usr/bin/env bash
# Gateway inbound throughput: smtp-source sends N copies of one naked mail to dimed's smtp
# listener for a hosted user (wrapped for the user by the gateway, authored by postmaster@,
# origin-signed, stored durably in the Maildir), timed until the last is in the Maildir;
# against `dime batch wrap --origin-sign` of the same N mails from files (the same wrap, no SMTP,
# no Maildir; by default no fsync either). Each round runs both; prints the medians and the ratio gateway/batch
# (issue 13's target: at least 0.6). The keys stay in the key process (dimed's default); the
# batch runs with --key-process too, so both pay the same key custody.
#
# --batch-sync runs the batch with --sync (each output fsynced before its rename, as the gateway
# makes each message durable before its 250): the same durability on both sides.
#
# usage: bench/gateway-smtp.sh [--count N] [--size BYTES] [--sessions S] [--rounds R]
#                              [--workers W] [--build DIR] [--batch-sync] [--keep]
set -euo pipefail

count=1000 size=10240 sessions=8 rounds=3 workers=2 build=build keep=0 bsync=--no-sync
while [ $# -gt 0 ]; do
	case $1 in
	--count) count=$2; shift 2 ;;
	--size) size=$2; shift 2 ;;
	--sessions) sessions=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--workers) workers=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	--batch-sync) bsync=--sync; shift ;;
	-h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "gateway-smtp: unknown option $1" >&2; exit 2 ;;
	esac
done
PATH=$PATH:/usr/sbin
DIME=$(cd "$build/bin" && pwd)/dime
DIMED=$(cd "$build/bin" && pwd)/dimed
command -v smtp-source >/dev/null || { echo "gateway-smtp: needs smtp-source (the postfix package)" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dime-gw.XXXXXX")
PID=
cleanup() {
	[ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	[ "$keep" = 1 ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp"
"$DIME" --store dime.db org create alpha.bench >/dev/null 2>&1
"$DIME" --store dime.db user create alice@alpha.bench >/dev/null 2>&1
"$DIME" --store dime.db user create postmaster@alpha.bench >/dev/null 2>&1
: >dns.txt
cat >dimed.conf <<EOF
hostname = gw.alpha.bench
listen = 127.0.0.1:0 dmtp
listen = 127.0.0.1:0 smtp
store = $tmp/dime.db
spool = $tmp/spool
outq = $tmp/outq
maildir_root = $tmp/mail
dns_static = $tmp/dns.txt
workers = $workers
EOF
"$DIMED" --config dimed.conf --ports-file ports >dimed.log 2>&1 &
PID=$!
for _ in $(seq 300); do [ -f ports ] && [ "$(wc -l <ports)" = 2 ] && break; sleep 0.1; done
[ "$(wc -l <ports 2>/dev/null)" = 2 ] || { echo "gateway-smtp: dimed did not start: $(tail -3 dimed.log)" >&2; exit 1; }
SMTP=127.0.0.1:$(sed -n 2p ports)

# one mail, CRLF, about size octets; smtp-source -F sends it as is (dot-stuffed)
{
	printf 'From: carol@legacy.test\r\nTo: alice@alpha.bench\r\nSubject: bench\r\n\r\n'
	head -c $((size * 3 / 4)) /dev/urandom | base64 -w 76 | sed 's/$/\r/'
} >m.eml
mkdir in
for i in $(seq 1 "$count"); do cp m.eml "in/m$i.eml"; done
box=$tmp/mail/alpha.bench/alice/new
inbox() { if [ -d "$box" ]; then find "$box" -type f | wc -l; else echo 0; fi; }
now() { date +%s.%N; }

: >results.txt
for r in $(seq 1 "$rounds"); do
	base=$(inbox)
	t0=$(now)
	smtp-source -d -s "$sessions" -m "$count" -F m.eml -f carol@legacy.test -t alice@alpha.bench \
		"$SMTP" >source.out 2>&1 || { echo "gateway-smtp: smtp-source: $(tail -3 source.out)" >&2; exit 1; }
	deadline=$(($(date +%s) + 600))
	while [ "$(inbox)" -lt $((base + count)) ]; do
		[ "$(date +%s)" -lt "$deadline" ] || { echo "gateway-smtp: $(($(inbox) - base)) of $count stored" >&2; exit 1; }
		sleep 0.05
	done
	t1=$(now)
	rm -rf w
	t2=$(now)
	"$DIME" --store dime.db batch wrap --in in --out w --from postmaster@alpha.bench \
		--to alice@alpha.bench --origin-sign --binary --workers "$workers" --key-process "$bsync" \
		>/dev/null 2>&1
	t3=$(now)
	[ "$(ls w | wc -l)" = "$count" ] || { echo "gateway-smtp: batch wrapped $(ls w | wc -l) of $count" >&2; exit 1; }
	awk -v n="$count" -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v r="$r" \
		'BEGIN { printf "%d %.1f %.1f\n", r, n / (b - a), n / (d - c) }' >>results.txt
	echo "round $r/$rounds: $(tail -1 results.txt)" >&2
done
echo "# $count mails of $size bytes over $sessions smtp-source sessions, $rounds rounds, dimed workers $workers, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v bsync="$bsync" '
	function med(a, n,   i, j, t) {
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	{ n++; g[n] = $2; b[n] = $3; q[n] = $2 / $3; lo = (n == 1 || q[n] < lo) ? q[n] : lo; hi = q[n] > hi ? q[n] : hi }
	END {
		printf "gateway inbound (smtp-source -> dimed -> Maildir): %.0f msg/s median\n", med(g, n)
		printf "dime batch wrap --origin-sign --key-process %s: %.0f msg/s median\n", bsync, med(b, n)
		printf "gateway / batch: %.2fx median (%.2f-%.2f)\n", med(q, n), lo, hi
	}' results.txt

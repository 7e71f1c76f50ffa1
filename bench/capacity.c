/* dime-bench capacity: each operation and size through dime_batch_run (an in-memory source
 * over generated messages, a counting sink), at 1..N workers, against the crypto floor of the
 * same messages measured in the same run. Medians over repeats; a table, capacity.csv,
 * capacity.json and gnuplot charts in --out. For accept and open at sizes up to 10 KiB it also
 * measures, at 1 worker, batch_max 1 against the default 32 (the effect of batched signature
 * checks): a second table, capacity-batching.csv and the "batching" list in capacity.json.
 * --recommend instead sweeps worker counts and batch sizes and names the fastest pair. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "fixture.h"
#include "floor.h"

#include "dime/batch.h"

#define CAP_MAX_WORKERS 64
#define CAP_MAX_SIZES	8
/* The batching section: batch_max on (the pipeline's default) and off, the sizes it covers,
 * and the queue depth both use (the default for 1 worker at batch_max 32, so that only the
 * grouping differs). */
#define CAP_BATCH_ON	32u
#define CAP_BATCH_MAXSZ 10240u
#define CAP_BATCH_QUEUE (4u * CAP_BATCH_ON)
#define CAP_MAX_BATCHES 16

struct cap_opts {
	int ops[BENCH_N_OPS];
	size_t n_ops;
	size_t sizes[CAP_MAX_SIZES];
	size_t n_sizes;
	unsigned workers[CAP_MAX_WORKERS];
	size_t n_workers;
	double seconds;
	unsigned repeats;
	const char *out;
	int no_batching;		   /* --no-batching: skip the batch_max 1 vs 32 section */
	int progress;			   /* -1: on a terminal, 0: --no-progress, 1: --progress */
	int recommend;			   /* --recommend: sweep workers x batch_max instead */
	unsigned batches[CAP_MAX_BATCHES]; /* --batches, for --recommend */
	size_t n_batches;
};

/* Distinct inputs of one op and size, and the floor plan of each. */
struct cap_pool {
	uint8_t **in;
	size_t *in_len;
	struct bench_floor **fl;
	size_t n;
	size_t in_bytes;
	char floor_desc[512];
};

/* One measured point (medians over repeats). */
struct cap_row {
	int op;
	size_t size, in_len;
	unsigned workers;
	double msgs, mbs;	    /* msg/s, MB/s of input */
	double lat50, lat90, lat99; /* per-message latency, queued to result, ms */
	double grp50, grp99;	    /* per-group processing time, ms */
	double floor_msgs;	    /* the floor, single thread, msg/s */
	uint64_t failed;
	uint64_t engine_batches, engine_items;
	char io[32];
};

/* One point of the batching section: op and size at 1 worker, [0] batch_max 1 (off), [1]
 * batch_max CAP_BATCH_ON (on); medians over repeats. */
struct cap_brow {
	int op;
	size_t size, in_len;
	double msgs[2], mbs[2], lat50[2], grp50[2];
	uint64_t failed[2], engine_batches[2], engine_items[2];
	int on_shared; /* the "on" runs are the main table's 1-worker runs */
};

static char cap_tmpdir[256];
static char cap_store[300];

static const char cap_all_ops[] = "wrap,origin-sign,accept,open,bounce-verify,rekey";

/* status 0 (--help): the full text on stdout; else a usage error on stderr. */
static int
cap_usage(int status)
{
	FILE *f = status == 0 ? stdout : stderr;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	fprintf(
	    f,
	    "usage: dime-bench capacity [--ops LIST] [--sizes LIST] [--workers 1..N | 1,2,4]\n"
	    "                           [--seconds S] [--repeats R] [--out DIR] [--no-batching]\n"
	    "                           [--progress | --no-progress]\n"
	    "       dime-bench capacity --recommend [--ops OP] [--sizes SIZE] [--workers ...]\n"
	    "                           [--batches LIST] [--seconds S] [--repeats R] [--out DIR]\n"
	    "\n"
	    "Each op x size x worker count through the batch pipeline (in memory), against the\n"
	    "crypto floor of the same messages on one thread; medians of the repeats. Writes\n"
	    "capacity.csv, capacity.json, capacity.gp and PNG charts (with gnuplot) into --out.\n"
	    "\n"
	    "  --ops LIST       %s (default: all)\n"
	    "  --sizes LIST     message sizes, 1k,10k,100k,1m or bytes (default: 1k,10k,100k,1m)\n"
	    "  --workers        worker threads, a range or a list (default: 1..%ld, the online "
	    "CPUs)\n"
	    "  --seconds S      length of each measured run (default: 2; --recommend: 1)\n"
	    "  --repeats R      runs per point, the median is kept (default: 3)\n"
	    "  --out DIR        output directory (default: build/bench-out)\n"
	    "  --no-batching    skip the batch_max 1 vs 32 section (accept and open, <= 10k)\n"
	    "  --progress       progress and ETA on stderr even when it is not a terminal\n"
	    "                   (default: only on a terminal); --no-progress: never\n"
	    "  --recommend      sweep workers x batch_max for the op and size (default: wrap 10k)\n"
	    "                   and print the pair with the highest throughput on this machine\n"
	    "  --batches LIST   batch_max values for --recommend (default: 1,8,16,32,64)\n",
	    cap_all_ops, ncpu > 0 ? ncpu : 1);
	return status;
}

static int
cap_parse(struct cap_opts *o, int argc, char **argv)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	const char *ops = NULL, *sizes = NULL, *batches = "1,8,16,32,64";
	char workers[64], buf[256];
	int seconds_set = 0;

	memset(o, 0, sizeof(*o));
	snprintf(workers, sizeof(workers), "1..%ld", ncpu > 0 ? ncpu : 1);
	const char *w = workers;
	o->seconds = 2.0;
	o->repeats = 3;
	o->out = "build/bench-out";
	o->progress = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
			return cap_usage(0) - 1; /* -1: done, exit 0 */
		if (strcmp(a, "--no-batching") == 0) {
			o->no_batching = 1;
			continue;
		}
		if (strcmp(a, "--progress") == 0 || strcmp(a, "--no-progress") == 0) {
			o->progress = a[2] == 'p';
			continue;
		}
		if (strcmp(a, "--recommend") == 0) {
			o->recommend = 1;
			continue;
		}
		if (v == NULL) {
			fprintf(stderr, "dime-bench capacity: %s: unknown, or needs a value\n", a);
			return cap_usage(2);
		}
		if (strcmp(a, "--ops") == 0)
			ops = v;
		else if (strcmp(a, "--sizes") == 0)
			sizes = v;
		else if (strcmp(a, "--workers") == 0)
			w = v;
		else if (strcmp(a, "--seconds") == 0)
			o->seconds = atof(v), seconds_set = 1;
		else if (strcmp(a, "--repeats") == 0)
			o->repeats = (unsigned)atoi(v);
		else if (strcmp(a, "--out") == 0)
			o->out = v;
		else if (strcmp(a, "--batches") == 0)
			batches = v;
		else {
			fprintf(stderr, "dime-bench capacity: unknown option %s\n", a);
			return cap_usage(2);
		}
		i++;
	}
	/* --recommend sweeps 5 batch sizes per worker count: shorter runs, one op and size */
	if (o->recommend && !seconds_set)
		o->seconds = 1.0;
	if (ops == NULL)
		ops = o->recommend ? "wrap" : cap_all_ops;
	if (sizes == NULL)
		sizes = o->recommend ? "10k" : "1k,10k,100k,1m";
	if (o->seconds <= 0 || o->repeats == 0 || o->repeats > 100)
		return cap_usage(2);
	snprintf(buf, sizeof(buf), "%s", ops);
	for (char *t = strtok(buf, ","); t != NULL; t = strtok(NULL, ",")) {
		int op = bench_op_parse(t);

		if (op < 0 || o->n_ops == BENCH_N_OPS) {
			fprintf(stderr, "dime-bench capacity: unknown op %s\n", t);
			return 2;
		}
		o->ops[o->n_ops++] = op;
	}
	snprintf(buf, sizeof(buf), "%s", sizes);
	for (char *t = strtok(buf, ","); t != NULL; t = strtok(NULL, ",")) {
		size_t s = bench_size_parse(t);

		if (s == 0 || o->n_sizes == CAP_MAX_SIZES) {
			fprintf(stderr, "dime-bench capacity: bad size %s\n", t);
			return 2;
		}
		o->sizes[o->n_sizes++] = s;
	}
	snprintf(buf, sizeof(buf), "%s", batches);
	for (char *t = strtok(buf, ","); t != NULL; t = strtok(NULL, ",")) {
		int k = atoi(t);

		/* the pipeline takes batch_max 1 to 1024 */
		if (k <= 0 || k > 1024 || o->n_batches == CAP_MAX_BATCHES) {
			fprintf(stderr, "dime-bench capacity: bad batch size %s (1 to 1024)\n", t);
			return 2;
		}
		o->batches[o->n_batches++] = (unsigned)k;
	}
	snprintf(buf, sizeof(buf), "%s", w);
	if (strstr(buf, "..") != NULL) {
		unsigned lo = (unsigned)atoi(buf), hi = (unsigned)atoi(strstr(buf, "..") + 2);

		if (lo == 0 || hi < lo || hi - lo >= CAP_MAX_WORKERS)
			return cap_usage(2);
		for (unsigned k = lo; k <= hi; k++)
			o->workers[o->n_workers++] = k;
	} else {
		for (char *t = strtok(buf, ","); t != NULL; t = strtok(NULL, ",")) {
			int k = atoi(t);

			if (k <= 0 || o->n_workers == CAP_MAX_WORKERS)
				return cap_usage(2);
			o->workers[o->n_workers++] = (unsigned)k;
		}
	}
	if (o->n_ops == 0 || o->n_sizes == 0 || o->n_workers == 0 || o->n_batches == 0)
		return cap_usage(2);
	return 0;
}

/* ---- pools ---- */

static void
cap_pool_free(struct cap_pool *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->in != NULL ? p->in[i] : NULL);
		bench_floor_free(p->fl != NULL ? p->fl[i] : NULL);
	}
	free(p->in);
	free(p->in_len);
	free(p->fl);
	memset(p, 0, sizeof(*p));
}

/* Enough distinct messages that the pipeline never sees the same bytes twice in a row:
 * 256, or fewer so that the pool stays near 64 MiB (at least 16). */
static int
cap_pool_make(struct cap_pool *p, const struct bench_fix *f, struct bench_floor_ctx *fc, int op,
	      size_t size)
{
	size_t n = (64u << 20) / (size * 2);
	int rc = DIME_OK;

	memset(p, 0, sizeof(*p));
	n = n > 256 ? 256 : n < 16 ? 16 : n;
	p->in = calloc(n, sizeof(*p->in));
	p->in_len = calloc(n, sizeof(*p->in_len));
	p->fl = calloc(n, sizeof(*p->fl));
	if (p->in == NULL || p->in_len == NULL || p->fl == NULL)
		return DIME_E_NOMEM;
	for (size_t i = 0; i < n && rc == DIME_OK; i++) {
		uint8_t *mail = bench_mail_new(size, 5000 + i);
		const char *why = "";

		if (mail == NULL)
			return DIME_E_NOMEM;
		rc = bench_input_new(f, &p->in[i], &p->in_len[i], (enum bench_op)op, mail, size);
		if (rc == DIME_OK)
			rc = bench_floor_new(&p->fl[i], &why, fc, f, (enum bench_op)op, mail, size,
					     p->in[i], p->in_len[i]);
		if (rc != DIME_OK)
			fprintf(stderr, "dime-bench capacity: %s %zu: %s %s\n",
				bench_op_name((enum bench_op)op), size, dime_strerror(rc), why);
		free(mail);
		if (rc == DIME_OK) {
			p->in_bytes += p->in_len[i];
			p->n++;
		}
	}
	if (rc == DIME_OK)
		bench_floor_describe(p->floor_desc, sizeof(p->floor_desc), p->fl[0]);
	return rc;
}

/* The floor, single thread, for about `seconds`, rotating over the pool. Returns msg/s. */
static double
cap_floor_rate(struct bench_floor_ctx *fc, const struct cap_pool *p, double seconds)
{
	uint64_t t0 = bench_now_ns(), end = t0 + (uint64_t)(seconds * 1e9), t = t0, n = 0;

	while (t < end || n < p->n) {
		if (bench_floor_run(fc, p->fl[n % p->n]) != DIME_OK)
			return 0;
		n++;
		t = bench_now_ns();
	}
	return (double)n / ((double)(t - t0) / 1e9);
}

/* ---- one batch run ---- */

struct cap_src {
	const struct cap_pool *p;
	uint64_t end_ns, n;
};

static int
cap_next(void *ctx, struct dime_batch_item *it, const char **why)
{
	struct cap_src *s = ctx;
	size_t k = (size_t)(s->n % s->p->n);

	uint64_t now = bench_now_ns();

	if (now >= s->end_ns)
		return 0;
	memset(it, 0, sizeof(*it));
	/* the name carries the time the item entered the pipeline: cap_result reads it back for
	 * the per-message latency, with no table shared between the feeder and the caller */
	snprintf(it->name, sizeof(it->name), "m%010llu-%llu", (unsigned long long)s->n,
		 (unsigned long long)now);
	if ((it->data = malloc(s->p->in_len[k])) == NULL) {
		*why = "out of memory";
		return DIME_E_NOMEM;
	}
	memcpy(it->data, s->p->in[k], s->p->in_len[k]);
	it->len = s->p->in_len[k];
	s->n++;
	return 1;
}

struct cap_sink {
	uint64_t n, bytes;
};

static void
cap_put(void *ctx, struct dime_batch_out *o, size_t n)
{
	struct cap_sink *k = ctx;
	uint64_t bytes = 0;

	for (size_t i = 0; i < n; i++)
		bytes += o[i].len;
	__atomic_fetch_add(&k->n, n, __ATOMIC_RELAXED);
	__atomic_fetch_add(&k->bytes, bytes, __ATOMIC_RELAXED);
}

/* Per item: the group's processing time (dime_batch_result.ns) and the message's latency, from
 * the source handing it to the pipeline to its result reaching the caller. */
struct cap_lat {
	uint64_t *ns, *msg_ns;
	size_t n, cap;
	uint64_t failed;
	const char *first_why;
	int first_rc;
};

static void
cap_result(void *ctx, const struct dime_batch_result *r)
{
	struct cap_lat *l = ctx;

	if (r->ok != 1) {
		if (l->failed++ == 0) {
			l->first_rc = r->rc;
			l->first_why = r->why != NULL ? r->why : "";
			fprintf(stderr, "dime-bench capacity: %s failed: ok=%d rc=%s (%s)\n",
				r->name, r->ok, dime_strerror(r->rc), l->first_why);
		}
		return;
	}
	if (l->n == l->cap) {
		size_t nc = l->cap * 2 + 1024;
		uint64_t *nn = realloc(l->ns, nc * sizeof(*nn)), *nm;

		if (nn == NULL)
			return;
		l->ns = nn;
		if ((nm = realloc(l->msg_ns, nc * sizeof(*nm))) == NULL)
			return;
		l->msg_ns = nm;
		l->cap = nc;
	}
	{
		const char *t = strchr(r->name, '-');
		uint64_t t_in = t != NULL ? strtoull(t + 1, NULL, 10) : 0, now = bench_now_ns();

		l->msg_ns[l->n] = t_in != 0 && now > t_in ? now - t_in : 0;
	}
	l->ns[l->n++] = r->ns;
}

static int
cap_u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int
cap_dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* v sorted. Returns: its q quantile in milliseconds. */
static double
cap_pct(const uint64_t *v, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(q * (double)(n - 1) + 0.5);
	return (double)v[i] / 1e6;
}

static double
cap_median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cap_dbl_cmp);
	return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct cap_one {
	double msgs, mbs, lat50, lat90, lat99, grp50, grp99;
	uint64_t failed, engine_batches, engine_items;
	const char *io;
};

/* batch_max 0 runs with the pipeline's defaults (batch_max 32, its queue depth); queue_depth
 * 0 with the pipeline's default for batch_max (4 x workers x batch_max). */
static int
cap_run_once(struct cap_one *res, const struct bench_fix *f, const struct cap_opts *o,
	     const struct cap_pool *p, int op, unsigned workers, unsigned batch_max,
	     unsigned queue_depth)
{
	static const enum dime_batch_op bop[BENCH_N_OPS] = {
	    DIME_BATCH_WRAP, DIME_BATCH_ORIGIN_SIGN,   DIME_BATCH_ACCEPT,
	    DIME_BATCH_OPEN, DIME_BATCH_BOUNCE_VERIFY, DIME_BATCH_REKEY};
	struct dime_view next = dime_signet_bytes(f->recip2);
	struct dime_batch_conf conf;
	struct dime_batch_params params;
	struct dime_batch_summary sum;
	struct dime_batch_source src;
	struct dime_batch_sink sink;
	struct cap_src cs;
	struct cap_sink ck;
	struct cap_lat lat;
	const char *why = "";
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&conf, 0, sizeof(conf));
	memset(&params, 0, sizeof(params));
	memset(&sum, 0, sizeof(sum));
	memset(&sink, 0, sizeof(sink));
	memset(&ck, 0, sizeof(ck));
	memset(&lat, 0, sizeof(lat));
	conf.workers = workers;
	conf.batch_max = batch_max;
	conf.queue_depth = queue_depth;
	params.op = bop[op];
	params.from = BENCH_AUTHOR;
	params.to = BENCH_RECIP;
	params.as = DIME_ACTOR_RECIPIENT;
	params.binary = 1;
	params.to_signet = next.p;
	params.to_signet_len = next.len;
	cs.p = p;
	cs.n = 0;
	cs.end_ns = bench_now_ns() + (uint64_t)(o->seconds * 1e9);
	src.ctx = &cs;
	src.next = cap_next;
	src.count_hint = 0;
	sink.put = cap_put;
	sink.ctx = &ck;
	dime_batch_stop_clear();
	rc = dime_batch_run(&conf, &params, cap_store, &src, &sink, cap_result, &lat, &sum, &why);
	if (rc != DIME_OK) {
		fprintf(stderr, "dime-bench capacity: dime_batch_run: %s (%s)\n", dime_strerror(rc),
			why != NULL ? why : "");
		free(lat.ns);
		free(lat.msg_ns);
		return rc;
	}
	qsort(lat.ns, lat.n, sizeof(*lat.ns), cap_u64_cmp);
	if (lat.msg_ns != NULL)
		qsort(lat.msg_ns, lat.n, sizeof(*lat.msg_ns), cap_u64_cmp);
	res->msgs = sum.seconds > 0 ? (double)sum.ok / sum.seconds : 0;
	res->mbs = sum.seconds > 0 ? (double)sum.in_bytes / sum.seconds / 1e6 : 0;
	res->lat50 = cap_pct(lat.msg_ns, lat.n, 0.50);
	res->lat90 = cap_pct(lat.msg_ns, lat.n, 0.90);
	res->lat99 = cap_pct(lat.msg_ns, lat.n, 0.99);
	res->grp50 = cap_pct(lat.ns, lat.n, 0.50);
	res->grp99 = cap_pct(lat.ns, lat.n, 0.99);
	res->failed = sum.failed + lat.failed;
	res->engine_batches = sum.engine_batches;
	res->engine_items = sum.engine_items;
	res->io = sum.io != NULL ? sum.io : "";
	free(lat.ns);
	free(lat.msg_ns);
	return DIME_OK; /* failures are in res->failed and shown in the table */
}

/* ---- output ---- */

static int
cap_mkdirs(const char *path)
{
	char p[512];

	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s != 0; s++)
		if (*s == '/') {
			*s = 0;
			if (mkdir(p, 0755) != 0 && errno != EEXIST)
				return -1;
			*s = '/';
		}
	return mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static const struct cap_row *
cap_find(const struct cap_row *rows, size_t n, int op, size_t size, unsigned w)
{
	for (size_t i = 0; i < n; i++)
		if (rows[i].op == op && rows[i].size == size && rows[i].workers == w)
			return &rows[i];
	return NULL;
}

static double
cap_ratio(double a, double b)
{
	return b > 0 ? a / b : 0;
}

/* The ops whose engine calls check signatures in batches, which can put them above a floor
 * that verifies one signature at a time. */
static int
cap_op_batches_verify(int op)
{
	return op == BENCH_ACCEPT || op == BENCH_OPEN || op == BENCH_BOUNCE_VERIFY ||
	       op == BENCH_REKEY;
}

/* The line that explains 1-worker rows of op (-1: any) above their floor, or "" when there is
 * none. */
static void
cap_floor_note(char *out, size_t cap, const struct cap_row *rows, size_t n, int op)
{
	char which[256] = "";
	size_t len = 0;
	int batched = 0, other = 0;

	out[0] = 0;
	for (size_t i = 0; i < n; i++) {
		char sz[16];

		if (rows[i].workers != 1 || cap_ratio(rows[i].msgs, rows[i].floor_msgs) <= 1.0 ||
		    (op >= 0 && rows[i].op != op))
			continue;
		bench_size_name(sz, sizeof(sz), rows[i].size);
		if (len < sizeof(which))
			len += (size_t)snprintf(which + len, sizeof(which) - len, "%s%s %s",
						len ? ", " : "",
						bench_op_name((enum bench_op)rows[i].op), sz);
		if (cap_op_batches_verify(rows[i].op))
			batched = 1;
		else
			other = 1;
	}
	if (len == 0)
		return;
	snprintf(out, cap, "Above the crypto floor at 1 worker (%s): %s%s", which,
		 batched ? "the pipeline checks all signatures of a group in one batched verify, "
			   "the floor one at a time"
			 : "",
		 other ? (batched ? "; elsewhere: run-to-run noise, re-run on an idle machine"
				  : "run-to-run noise, re-run on an idle machine")
		       : "");
}

static void
cap_print(FILE *f, const struct cap_row *rows, size_t n)
{
	fprintf(f, "%-13s %5s %3s %10s %9s %10s %10s %10s %10s %8s %8s\n", "op", "size", "wk",
		"msg/s", "MB/s", "lat_p50_ms", "lat_p99_ms", "grp_p50_ms", "floor/s", "vs_floor",
		"speedup");
	for (size_t i = 0; i < n; i++) {
		const struct cap_row *r = &rows[i];
		const struct cap_row *one = cap_find(rows, n, r->op, r->size, 1);
		char sz[16], vf[16] = "-", sp[16] = "-";

		bench_size_name(sz, sizeof(sz), r->size);
		if (r->workers == 1)
			snprintf(vf, sizeof(vf), "%.2f", cap_ratio(r->msgs, r->floor_msgs));
		if (one != NULL && r->workers > 1)
			snprintf(sp, sizeof(sp), "%.2fx", cap_ratio(r->msgs, one->msgs));
		fprintf(f, "%-13s %5s %3u %10.1f %9.2f %10.2f %10.2f %10.2f %10.1f %8s %8s%s\n",
			bench_op_name((enum bench_op)r->op), sz, r->workers, r->msgs, r->mbs,
			r->lat50, r->lat99, r->grp50, r->floor_msgs, vf, sp,
			r->failed ? "  FAILURES" : "");
	}
}

static double
cap_per_call(const struct cap_brow *b, int k)
{
	return b->engine_batches[k] ? (double)b->engine_items[k] / (double)b->engine_batches[k] : 0;
}

static void
cap_bprint(FILE *f, const struct cap_brow *b, size_t n)
{
	fprintf(f, "%-13s %5s %3s %12s %12s %8s %14s %13s\n", "op", "size", "wk", "off_msg/s",
		"on_msg/s", "on/off", "items/call_off", "items/call_on");
	for (size_t i = 0; i < n; i++) {
		char sz[16];

		bench_size_name(sz, sizeof(sz), b[i].size);
		fprintf(f, "%-13s %5s %3u %12.1f %12.1f %7.2fx %14.1f %13.1f%s\n",
			bench_op_name((enum bench_op)b[i].op), sz, 1u, b[i].msgs[0], b[i].msgs[1],
			cap_ratio(b[i].msgs[1], b[i].msgs[0]), cap_per_call(&b[i], 0),
			cap_per_call(&b[i], 1),
			b[i].failed[0] || b[i].failed[1] ? "  FAILURES" : "");
	}
}

/* capacity-batching.csv: one row per op, size and batch_max (1, then 32). */
static int
cap_write_bcsv(const char *dir, const struct cap_brow *b, size_t n)
{
	static const unsigned bm[2] = {1, CAP_BATCH_ON};
	char path[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/capacity-batching.csv", dir);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fprintf(f, "op,size,size_bytes,input_bytes,workers,batch_max,queue_depth,msgs_per_s,"
		   "mb_per_s,latency_p50_ms,group_time_p50_ms,vs_batch_max_1,failed,"
		   "engine_batches,engine_items,items_per_engine_call\n");
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 2; k++) {
			char sz[16];

			bench_size_name(sz, sizeof(sz), b[i].size);
			fprintf(
			    f,
			    "%s,%s,%zu,%zu,1,%u,%u,%.2f,%.3f,%.3f,%.3f,%.4f,%llu,%llu,%llu,%.2f\n",
			    bench_op_name((enum bench_op)b[i].op), sz, b[i].size, b[i].in_len,
			    bm[k], CAP_BATCH_QUEUE, b[i].msgs[k], b[i].mbs[k], b[i].lat50[k],
			    b[i].grp50[k], cap_ratio(b[i].msgs[k], b[i].msgs[0]),
			    (unsigned long long)b[i].failed[k],
			    (unsigned long long)b[i].engine_batches[k],
			    (unsigned long long)b[i].engine_items[k], cap_per_call(&b[i], k));
		}
	return fclose(f) == 0 ? 0 : -1;
}

/* per_core_vs_floor is for 1-worker rows only (N workers share the cores with the feeder and
 * the caller, so msg/s / N is not one core's work); speedup needs a 1-worker row. Both are
 * left empty (CSV) or null (JSON) where they do not apply. */
static void
cap_derived(char *vf, char *sp, size_t cap, const struct cap_row *rows, size_t n,
	    const struct cap_row *r, const char *none)
{
	const struct cap_row *one = cap_find(rows, n, r->op, r->size, 1);

	snprintf(vf, cap, "%s", none);
	snprintf(sp, cap, "%s", none);
	if (r->workers == 1)
		snprintf(vf, cap, "%.4f", cap_ratio(r->msgs, r->floor_msgs));
	if (one != NULL)
		snprintf(sp, cap, "%.4f", cap_ratio(r->msgs, one->msgs));
}

static int
cap_write_csv(const char *dir, const struct cap_row *rows, size_t n)
{
	char path[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/capacity.csv", dir);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fprintf(f, "op,size,size_bytes,input_bytes,workers,msgs_per_s,mb_per_s,latency_p50_ms,"
		   "latency_p90_ms,latency_p99_ms,group_time_p50_ms,group_time_p99_ms,"
		   "floor_msgs_per_s,per_core_vs_floor,speedup_vs_1_worker,failed,engine_batches,"
		   "engine_items,io\n");
	for (size_t i = 0; i < n; i++) {
		const struct cap_row *r = &rows[i];
		char sz[16], vf[32], sp[32];

		bench_size_name(sz, sizeof(sz), r->size);
		cap_derived(vf, sp, sizeof(vf), rows, n, r, "");
		fprintf(f,
			"%s,%s,%zu,%zu,%u,%.2f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.2f,%s,%s,%llu,%llu,"
			"%llu,%s\n",
			bench_op_name((enum bench_op)r->op), sz, r->size, r->in_len, r->workers,
			r->msgs, r->mbs, r->lat50, r->lat90, r->lat99, r->grp50, r->grp99,
			r->floor_msgs, vf, sp, (unsigned long long)r->failed,
			(unsigned long long)r->engine_batches, (unsigned long long)r->engine_items,
			r->io);
	}
	return fclose(f) == 0 ? 0 : -1;
}

static int
cap_write_json(const char *dir, const struct cap_opts *o, const struct bench_machine *m,
	       const char *note, const struct cap_row *rows, size_t n, char (*desc)[512],
	       const int *desc_op, const size_t *desc_size, size_t n_desc, const struct cap_brow *b,
	       size_t n_b)
{
	char path[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/capacity.json", dir);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fprintf(f, "{\n  \"tool\": \"dime-bench capacity\",\n");
	bench_machine_json(f, m);
	fprintf(f, "  \"seconds\": %.3f,\n  \"repeats\": %u,\n", o->seconds, o->repeats);
	fprintf(f,
		"  \"definitions\": {\"latency\": \"per message: from the source handing the item "
		"to the pipeline to its result reaching the caller, with the queue kept full\", "
		"\"group_time\": \"per group: dime_batch_result.ns, from a worker taking the "
		"group to its outputs written; every item of a group gets the same value\", "
		"\"per_core_vs_floor\": \"1-worker msg/s / floor msg/s on one thread; null for "
		"other worker counts\"},\n");
	fprintf(f, "  \"notes\": [%s%s%s],\n", note[0] ? "\"" : "", note, note[0] ? "\"" : "");
	fprintf(f, "  \"floors\": [");
	for (size_t i = 0; i < n_desc; i++)
		fprintf(f, "%s\n    {\"op\": \"%s\", \"size_bytes\": %zu, \"calls\": \"%s\"}",
			i ? "," : "", bench_op_name((enum bench_op)desc_op[i]), desc_size[i],
			desc[i]);
	fprintf(f, "\n  ],\n  \"rows\": [");
	for (size_t i = 0; i < n; i++) {
		const struct cap_row *r = &rows[i];
		char vf[32], sp[32];

		cap_derived(vf, sp, sizeof(vf), rows, n, r, "null");
		fprintf(
		    f,
		    "%s\n    {\"op\": \"%s\", \"size_bytes\": %zu, \"input_bytes\": %zu, "
		    "\"workers\": %u, \"msgs_per_s\": %.2f, \"mb_per_s\": %.3f, "
		    "\"latency_p50_ms\": %.3f, \"latency_p90_ms\": %.3f, \"latency_p99_ms\": %.3f, "
		    "\"group_time_p50_ms\": %.3f, \"group_time_p99_ms\": %.3f, "
		    "\"floor_msgs_per_s\": %.2f, \"per_core_vs_floor\": %s, "
		    "\"speedup_vs_1_worker\": %s, \"failed\": %llu, \"engine_batches\": %llu, "
		    "\"engine_items\": %llu, \"io\": \"%s\"}",
		    i ? "," : "", bench_op_name((enum bench_op)r->op), r->size, r->in_len,
		    r->workers, r->msgs, r->mbs, r->lat50, r->lat90, r->lat99, r->grp50, r->grp99,
		    r->floor_msgs, vf, sp, (unsigned long long)r->failed,
		    (unsigned long long)r->engine_batches, (unsigned long long)r->engine_items,
		    r->io);
	}
	fprintf(f, "\n  ],\n  \"batching\": [");
	for (size_t i = 0; i < n_b; i++) {
		fprintf(f,
			"%s\n    {\"op\": \"%s\", \"size_bytes\": %zu, \"input_bytes\": %zu, "
			"\"workers\": 1, \"queue_depth\": %u, \"on_vs_off\": %.4f, "
			"\"on_shares_main_runs\": %s",
			i ? "," : "", bench_op_name((enum bench_op)b[i].op), b[i].size, b[i].in_len,
			CAP_BATCH_QUEUE, cap_ratio(b[i].msgs[1], b[i].msgs[0]),
			b[i].on_shared ? "true" : "false");
		for (int k = 0; k < 2; k++)
			fprintf(f,
				", \"%s\": {\"batch_max\": %u, \"msgs_per_s\": %.2f, "
				"\"mb_per_s\": %.3f, \"latency_p50_ms\": %.3f, "
				"\"group_time_p50_ms\": %.3f, \"failed\": %llu, "
				"\"engine_batches\": %llu, \"engine_items\": %llu}",
				k ? "on" : "off", k ? CAP_BATCH_ON : 1u, b[i].msgs[k], b[i].mbs[k],
				b[i].lat50[k], b[i].grp50[k], (unsigned long long)b[i].failed[k],
				(unsigned long long)b[i].engine_batches[k],
				(unsigned long long)b[i].engine_items[k]);
		fprintf(f, "}");
	}
	fprintf(f, "\n  ]\n}\n");
	return fclose(f) == 0 ? 0 : -1;
}

/* ---- charts ---- */

/* What each op is, in words, for chart titles. */
static const char *
cap_op_title(int op)
{
	switch (op) {
	case BENCH_WRAP: return "Wrap: the author's side encrypts and signs a mail";
	case BENCH_ORIGIN_SIGN: return "Origin sign: the sending organisation countersigns";
	case BENCH_ACCEPT: return "Accept: the receiving organisation checks a message";
	case BENCH_OPEN: return "Open: the recipient decrypts and verifies";
	case BENCH_BOUNCE_VERIFY: return "Bounce verify: the sender checks a returned bounce";
	case BENCH_REKEY: return "Rekey: re-encrypt for the recipient's new key";
	default: return "?";
	}
}

static void
cap_size_words(char *out, size_t cap, size_t size)
{
	if (size >= 1048576 && size % 1048576 == 0)
		snprintf(out, cap, "%zu MiB", size / 1048576);
	else if (size >= 1024 && size % 1024 == 0)
		snprintf(out, cap, "%zu KiB", size / 1024);
	else
		snprintf(out, cap, "%zu bytes", size);
}

/* One colour per series, the same on every chart: measured, ideal scaling, crypto floor; and
 * the latency bars. */
#define CAP_C_MEASURED "#1f5fbf"
#define CAP_C_IDEAL    "#5a5a5a"
#define CAP_C_FLOOR    "#c0392b"
#define CAP_C_LAT50    "#1f5fbf"
#define CAP_C_LAT99    "#e67e22"
#define CAP_C_GROUP    "#27ae60"

/* Per op, throughput-<op>.png: one panel per size, messages/s against worker threads, with the
 * ideal scaling from the fewest workers measured and the crypto floor times the workers; then
 * latency.png at the fewest workers. The machine is in every chart's footer. */
static void
cap_plot(const char *dir, const struct cap_opts *o, const struct cap_row *rows, size_t n,
	 const char *machine)
{
	char path[600], cmd[1300];
	unsigned wmin = o->workers[0], wmax = o->workers[0];
	size_t cols = o->n_sizes < 2 ? 1 : 2, nrow = (o->n_sizes + cols - 1) / cols;
	double ytop;
	FILE *f;
	int k = 0;

	if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
		printf("note: gnuplot not found: no charts (install gnuplot-nox)\n");
		return;
	}
	for (size_t w = 0; w < o->n_workers; w++) {
		wmin = o->workers[w] < wmin ? o->workers[w] : wmin;
		wmax = o->workers[w] > wmax ? o->workers[w] : wmax;
	}
	snprintf(path, sizeof(path), "%s/capacity.gp", dir);
	if ((f = fopen(path, "w")) == NULL)
		return;
	fprintf(f,
		"# made by dime-bench capacity; gnuplot %s/capacity.gp redraws the charts\n"
		"set datafile separator ','\nset encoding utf8\n",
		dir);
	for (size_t a = 0; a < o->n_ops; a++) {
		char note[600];

		cap_floor_note(note, sizeof(note), rows, n, o->ops[a]);
		fprintf(
		    f,
		    "set terminal pngcairo size %zu,%zu noenhanced font 'DejaVu Sans,12'\n"
		    "set output '%s/throughput-%s.png'\n"
		    "set multiplot layout %zu,%zu title \"%s\\nmessages per second by worker "
		    "threads (median of %u run%s of %.1f s)\" font ',15' margins 0.09,0.97,%.3f,"
		    "%.3f spacing 0.09,0.16\n",
		    cols * 640, nrow * 420 + 190, dir, bench_op_name((enum bench_op)o->ops[a]),
		    nrow, cols, cap_op_title(o->ops[a]), o->repeats, o->repeats > 1 ? "s" : "",
		    o->seconds, 0.17 * 610.0 / (double)(nrow * 420 + 190) + 0.02,
		    1.0 - 95.0 / (double)(nrow * 420 + 190));
		fprintf(f, "set label 1 \"Measured on %s\" at screen 0.01,0.045 font ',10'\n",
			machine);
		if (note[0] != 0)
			fprintf(f, "set label 2 \"%s\" at screen 0.01,0.015 font ',10'\n", note);
		else
			fprintf(f, "unset label 2\n");
		for (size_t b = 0; b < o->n_sizes; b++) {
			const struct cap_row *base =
			    cap_find(rows, n, o->ops[a], o->sizes[b], wmin);
			double ymax = 0;
			char sz[32], ideal[64];

			cap_size_words(sz, sizeof(sz), o->sizes[b]);
			fprintf(f, "$d%d << EOD\n", k);
			for (size_t w = 0; w < o->n_workers; w++) {
				const struct cap_row *r =
				    cap_find(rows, n, o->ops[a], o->sizes[b], o->workers[w]);

				double id, fl;

				if (r == NULL || base == NULL)
					continue;
				id = base->msgs * r->workers / wmin;
				fl = r->floor_msgs * r->workers;
				fprintf(f, "%u,%.2f,%.2f,%.2f\n", r->workers, r->msgs, id, fl);
				ymax = r->msgs > ymax ? r->msgs : ymax;
				ymax = id > ymax ? id : ymax;
				ymax = fl > ymax ? fl : ymax;
			}
			if (wmin == 1)
				snprintf(ideal, sizeof(ideal), "1-worker rate x workers");
			else
				snprintf(ideal, sizeof(ideal), "%u-worker rate x workers/%u", wmin,
					 wmin);
			fprintf(
			    f,
			    "EOD\nset title '%s messages'\nset xlabel 'worker threads'\n"
			    "set ylabel 'messages per second'\nset xrange [%g:%g]\nset xtics 1\n"
			    "set yrange [0:%.0f]\nset format y '%%.0f'\nset grid\n"
			    "set key top left Left reverse font ',11'\n"
			    "plot $d%d using 1:2 with linespoints lw 3 pt 7 ps 1.4 lc rgb '%s' "
			    "title 'measured: batch pipeline', "
			    "$d%d using 1:3 with lines lw 2 dt 2 lc rgb '%s' "
			    "title 'ideal scaling: %s', "
			    "$d%d using 1:4 with lines lw 2 dt 3 lc rgb '%s' "
			    "title 'crypto floor x workers (cryptography alone)'\n",
			    sz, wmin - 0.2, wmax + 0.2, ymax > 0 ? ymax * 1.45 : 1.0, k,
			    CAP_C_MEASURED, k, CAP_C_IDEAL, ideal, k, CAP_C_FLOOR);
			k++;
		}
		fprintf(f, "unset multiplot\nunset label\n");
	}
	/* latency: one cluster of three bars per op and size, at the fewest workers */
	fprintf(f, "$lat << EOD\n");
	k = 0;
	ytop = 0.001;
	for (size_t a = 0; a < o->n_ops; a++)
		for (size_t b = 0; b < o->n_sizes; b++) {
			const struct cap_row *r = cap_find(rows, n, o->ops[a], o->sizes[b], wmin);
			char sz[32];

			if (r == NULL)
				continue;
			cap_size_words(sz, sizeof(sz), r->size);
			ytop = r->lat99 > ytop ? r->lat99 : ytop;
			ytop = r->grp50 > ytop ? r->grp50 : ytop;
			fprintf(f, "%s %s,%.3f,%.3f,%.3f\n", bench_op_name((enum bench_op)r->op),
				sz, r->lat50 > 0 ? r->lat50 : 0.001,
				r->lat99 > 0 ? r->lat99 : 0.001, r->grp50 > 0 ? r->grp50 : 0.001);
			k++;
		}
	fprintf(
	    f,
	    "EOD\nset terminal pngcairo size %d,680 noenhanced font 'DejaVu Sans,12'\n"
	    "set output '%s/latency.png'\n"
	    "set title \"Latency at %u worker%s with the queue kept full (median of %u run%s)\\n"
	    "per message: from entering the pipeline to its result; per group: one batched "
	    "engine call and its I/O\" font ',14'\n"
	    "set style data histogram\nset style histogram clustered gap 1\n"
	    "set style fill solid 0.85 border -1\nset boxwidth 0.9\n"
	    "set logscale y\nset format y '%%g'\nset ylabel 'milliseconds (log scale)'\n"
	    "set yrange [*:%g]\nset xrange [-0.6:%d-0.4]\nset grid ytics\nunset xlabel\n"
	    "set xtics rotate by -30 nomirror\nset key inside top center horizontal maxrows 1\n"
	    "set bmargin 9\n"
	    "set label 1 \"Measured on %s\" at screen 0.01,0.045 font ',10'\n"
	    "plot $lat using 2:xtic(1) lc rgb '%s' title 'per message, p50', "
	    "'' using 3 lc rgb '%s' title 'per message, p99', "
	    "'' using 4 lc rgb '%s' title 'per group (processing time), p50'\n",
	    k * 90 + 400 > 1000 ? k * 90 + 400 : 1000, dir, wmin, wmin == 1 ? "" : "s", o->repeats,
	    o->repeats > 1 ? "s" : "", ytop * 8, k, machine, CAP_C_LAT50, CAP_C_LAT99, CAP_C_GROUP);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "gnuplot '%s' 2>&1", path);
	if (system(cmd) != 0) {
		printf("note: gnuplot failed on %s\n", path);
		return;
	}
	printf("charts:");
	for (size_t a = 0; a < o->n_ops; a++)
		printf(" %s/throughput-%s.png", dir, bench_op_name((enum bench_op)o->ops[a]));
	printf(" %s/latency.png\n", dir);
}

/* The batching section covers accept and open (the ops whose signature checks are many per
 * message and mostly by the same few org keys) at the selected sizes up to 10 KiB. */
static int
cap_batch_wanted(const struct cap_opts *o, int op, size_t size)
{
	return !o->no_batching && (op == BENCH_ACCEPT || op == BENCH_OPEN) &&
	       size <= CAP_BATCH_MAXSZ;
}

#define CAP_BV 4 /* values kept per run of the batching section: msg/s, MB/s, latency, group */

/* Keeps one run of the batching section: k 0 off, 1 on; bv holds 2 x CAP_BV x repeats values. */
static void
cap_bkeep(struct cap_brow *br, double *bv, unsigned repeats, unsigned rep, int k,
	  const struct cap_one *one)
{
	bv[(k * CAP_BV + 0) * repeats + rep] = one->msgs;
	bv[(k * CAP_BV + 1) * repeats + rep] = one->mbs;
	bv[(k * CAP_BV + 2) * repeats + rep] = one->lat50;
	bv[(k * CAP_BV + 3) * repeats + rep] = one->grp50;
	br->failed[k] += one->failed;
	br->engine_batches[k] += one->engine_batches;
	br->engine_items[k] += one->engine_items;
}

/* One run of the batching section at 1 worker: k 0 batch_max 1, k 1 batch_max CAP_BATCH_ON. */
static int
cap_bmode(struct cap_brow *br, double *bv, const struct bench_fix *f, const struct cap_opts *o,
	  const struct cap_pool *p, unsigned rep, int k, struct bench_progress *pg)
{
	struct cap_one one;
	char what[128], sz[16];
	int rc;

	bench_size_name(sz, sizeof(sz), br->size);
	snprintf(what, sizeof(what), "%s %s: 1 worker, batch_max %u, repeat %u/%u",
		 bench_op_name((enum bench_op)br->op), sz, k ? CAP_BATCH_ON : 1u, rep + 1,
		 o->repeats);
	bench_progress_step(pg, what, o->seconds);
	rc = cap_run_once(&one, f, o, p, br->op, 1, k ? CAP_BATCH_ON : 1, CAP_BATCH_QUEUE);
	if (rc == DIME_OK)
		cap_bkeep(br, bv, o->repeats, rep, k, &one);
	return rc;
}

#define CAP_NV 7 /* values kept per run: msg/s, MB/s, latency p50 p90 p99, group p50 p99 */

/* The capacity table: every op x size x worker count, the floor and the batching section. */
static int
cap_capacity(const struct cap_opts *o, const struct bench_fix *f, struct bench_floor_ctx *fc,
	     struct bench_machine *m)
{
	struct cap_row *rows = NULL;
	struct cap_brow *brows = NULL;
	size_t n_brows = 0, n_rows = 0, n_desc = 0;
	char(*desc)[512] = NULL;
	int *desc_op = NULL;
	size_t *desc_size = NULL;
	struct bench_progress pg;
	double total = 0;
	char machine[400], note[600];
	int status = 1;

	rows = calloc(o->n_ops * o->n_sizes * o->n_workers, sizeof(*rows));
	desc = calloc(o->n_ops * o->n_sizes, sizeof(*desc));
	desc_op = calloc(o->n_ops * o->n_sizes, sizeof(*desc_op));
	desc_size = calloc(o->n_ops * o->n_sizes, sizeof(*desc_size));
	brows = calloc(o->n_ops * o->n_sizes, sizeof(*brows));
	if (rows == NULL || desc == NULL || desc_op == NULL || desc_size == NULL || brows == NULL)
		goto out;
	/* the cost in seconds of runs: the floor, each worker count, the batching section */
	for (size_t a = 0; a < o->n_ops; a++)
		for (size_t b = 0; b < o->n_sizes; b++)
			total += o->seconds * o->repeats *
				 (1.0 + (double)o->n_workers +
				  (cap_batch_wanted(o, o->ops[a], o->sizes[b]) ? 2.0 : 0.0));
	printf("dime-bench capacity: %zu op(s) x %zu size(s) x %zu worker count(s), %.2fs each, "
	       "median of %u; store %s\n",
	       o->n_ops, o->n_sizes, o->n_workers, o->seconds, o->repeats, cap_store);
	fflush(stdout);
	bench_progress_init(&pg, o->progress, total);
	for (size_t a = 0; a < o->n_ops; a++)
		for (size_t b = 0; b < o->n_sizes; b++) {
			struct cap_pool p;
			double *fr = calloc(o->repeats, sizeof(double));
			double *v = calloc(o->repeats * CAP_NV * o->n_workers, sizeof(double));
			int bsec = cap_batch_wanted(o, o->ops[a], o->sizes[b]);
			double *bv = calloc(o->repeats * 2 * CAP_BV, sizeof(double));
			struct cap_brow *br = &brows[n_brows];
			size_t w1 = o->n_workers; /* the 1-worker run, if the table has one */
			const char *opn = bench_op_name((enum bench_op)o->ops[a]);
			struct cap_one one;
			int failed = 0;
			char sz[16], what[128];

			bench_size_name(sz, sizeof(sz), o->sizes[b]);
			for (size_t w = 0; w < o->n_workers && w1 == o->n_workers; w++)
				if (o->workers[w] == 1)
					w1 = w;
			if (fr == NULL || v == NULL || bv == NULL ||
			    cap_pool_make(&p, f, fc, o->ops[a], o->sizes[b]) != DIME_OK) {
				free(fr);
				free(v);
				free(bv);
				goto out;
			}
			br->op = o->ops[a];
			br->size = o->sizes[b];
			br->in_len = p.in_bytes / p.n;
			br->on_shared = w1 < o->n_workers;
			bench_progress_end(&pg);
			printf("  %s %s: %zu distinct messages, floor = %s\n", opn, sz, p.n,
			       p.floor_desc);
			fflush(stdout);
			snprintf(desc[n_desc], sizeof(desc[n_desc]), "%s", p.floor_desc);
			desc_op[n_desc] = o->ops[a];
			desc_size[n_desc++] = o->sizes[b];
			for (size_t w = 0; w < o->n_workers; w++) {
				struct cap_row *r = &rows[n_rows + w];

				r->op = o->ops[a];
				r->size = o->sizes[b];
				r->in_len = p.in_bytes / p.n;
				r->workers = o->workers[w];
			}
			/* repeats interleave the floor and every worker count, so drift in the
			 * machine's load touches them alike. The batching section's batch_max 1 run
			 * sits right next to the 1-worker run (which is batch_max 32, the default):
			 * before it on odd repeats, after it on even ones. Without a 1-worker run
			 * in the table the section runs its own batch_max 32 run. */
			for (unsigned rep = 0; rep < o->repeats && !failed; rep++) {
				int off_first = rep % 2 == 1;

				snprintf(what, sizeof(what), "%s %s: crypto floor, repeat %u/%u",
					 opn, sz, rep + 1, o->repeats);
				bench_progress_step(&pg, what, o->seconds);
				fr[rep] = cap_floor_rate(fc, &p, o->seconds);
				for (size_t w = 0; w < o->n_workers && !failed; w++) {
					double *x = v + (w * CAP_NV) * o->repeats;
					struct cap_row *r = &rows[n_rows + w];
					int pair = bsec && w == w1;

					if (pair && off_first &&
					    cap_bmode(br, bv, f, o, &p, rep, 0, &pg) != DIME_OK) {
						failed = 1;
						break;
					}
					snprintf(what, sizeof(what),
						 "%s %s: %u worker%s, repeat %u/%u", opn, sz,
						 o->workers[w], o->workers[w] > 1 ? "s" : "",
						 rep + 1, o->repeats);
					bench_progress_step(&pg, what, o->seconds);
					if (cap_run_once(&one, f, o, &p, o->ops[a], o->workers[w],
							 pair ? CAP_BATCH_ON : 0,
							 pair ? CAP_BATCH_QUEUE : 0) != DIME_OK) {
						failed = 1;
						break;
					}
					if (pair)
						cap_bkeep(br, bv, o->repeats, rep, 1, &one);
					x[0 * o->repeats + rep] = one.msgs;
					x[1 * o->repeats + rep] = one.mbs;
					x[2 * o->repeats + rep] = one.lat50;
					x[3 * o->repeats + rep] = one.lat90;
					x[4 * o->repeats + rep] = one.lat99;
					x[5 * o->repeats + rep] = one.grp50;
					x[6 * o->repeats + rep] = one.grp99;
					r->failed += one.failed;
					r->engine_batches += one.engine_batches;
					r->engine_items += one.engine_items;
					snprintf(r->io, sizeof(r->io), "%s", one.io);
					if (pair && !off_first &&
					    cap_bmode(br, bv, f, o, &p, rep, 0, &pg) != DIME_OK)
						failed = 1;
				}
				if (!failed && bsec && w1 == o->n_workers &&
				    (cap_bmode(br, bv, f, o, &p, rep, off_first ? 0 : 1, &pg) !=
					 DIME_OK ||
				     cap_bmode(br, bv, f, o, &p, rep, off_first ? 1 : 0, &pg) !=
					 DIME_OK))
					failed = 1;
			}
			cap_pool_free(&p);
			if (failed) {
				free(fr);
				free(v);
				free(bv);
				goto out;
			}
			for (size_t w = 0; w < o->n_workers; w++) {
				double *x = v + (w * CAP_NV) * o->repeats;
				struct cap_row *r = &rows[n_rows + w];

				r->msgs = cap_median(x, o->repeats);
				r->mbs = cap_median(x + o->repeats, o->repeats);
				r->lat50 = cap_median(x + 2 * o->repeats, o->repeats);
				r->lat90 = cap_median(x + 3 * o->repeats, o->repeats);
				r->lat99 = cap_median(x + 4 * o->repeats, o->repeats);
				r->grp50 = cap_median(x + 5 * o->repeats, o->repeats);
				r->grp99 = cap_median(x + 6 * o->repeats, o->repeats);
				r->floor_msgs = cap_median(fr, o->repeats);
			}
			n_rows += o->n_workers;
			if (bsec) {
				for (int k = 0; k < 2; k++) {
					double *y = bv + k * CAP_BV * o->repeats;

					br->msgs[k] = cap_median(y, o->repeats);
					br->mbs[k] = cap_median(y + o->repeats, o->repeats);
					br->lat50[k] = cap_median(y + 2 * o->repeats, o->repeats);
					br->grp50[k] = cap_median(y + 3 * o->repeats, o->repeats);
				}
				n_brows++;
			}
			free(fr);
			free(v);
			free(bv);
		}
	bench_progress_end(&pg);
	bench_machine_end(m);
	bench_machine_line(machine, sizeof(machine), m);
	cap_floor_note(note, sizeof(note), rows, n_rows, -1);
	printf("\nmachine: %s\n(other load skews every figure)\n\n", machine);
	cap_print(stdout, rows, n_rows);
	printf("\nvs_floor: msg/s at 1 worker / floor msg/s on one thread (same messages, same "
	       "run).\nspeedup: msg/s at N workers / msg/s at 1 worker.\n"
	       "lat_p50_ms, lat_p99_ms: per-message latency, from the source handing the message "
	       "to the pipeline\nto its result, with the queue kept full (so about queue depth / "
	       "msg/s). grp_p50_ms: per-group\nprocessing time (dime_batch_result.ns: one batched "
	       "engine call and its I/O, shared by the group).\n");
	if (note[0] != 0)
		printf("%s.\n", note);
	if (n_brows > 0) {
		printf(
		    "\nbatching, 1 worker: batch_max 1 (off: one message per engine call) against "
		    "%u (on: the\npipeline's default; all signature checks of a group in one "
		    "dime_ed25519_verify_batch call);\nsame messages, queue depth %u for both, "
		    "adjacent runs, medians of %u%s.\n\n",
		    CAP_BATCH_ON, CAP_BATCH_QUEUE, o->repeats,
		    brows[0].on_shared ? "; \"on\" is the 1-worker row above" : "");
		cap_bprint(stdout, brows, n_brows);
	}
	if (cap_write_csv(o->out, rows, n_rows) != 0 ||
	    cap_write_json(o->out, o, m, note, rows, n_rows, desc, desc_op, desc_size, n_desc,
			   brows, n_brows) != 0 ||
	    (n_brows > 0 && cap_write_bcsv(o->out, brows, n_brows) != 0)) {
		fprintf(stderr, "dime-bench capacity: cannot write into %s\n", o->out);
		goto out;
	}
	printf("wrote %s/capacity.csv %s/capacity.json", o->out, o->out);
	if (n_brows > 0) {
		printf(" %s/capacity-batching.csv", o->out);
	} else {
		char bpath[600];

		/* no section this run: a file from an earlier run would be taken for this one's */
		snprintf(bpath, sizeof(bpath), "%s/capacity-batching.csv", o->out);
		unlink(bpath);
	}
	printf("\n");
	cap_plot(o->out, o, rows, n_rows, machine);
	status = 0;
out:
	free(rows);
	free(brows);
	free(desc);
	free(desc_op);
	free(desc_size);
	return status;
}

/* ---- --recommend ---- */

/* One point of the sweep: medians over repeats. */
struct cap_rpoint {
	unsigned workers, batch_max;
	double msgs, lat50, lat99;
	double lo, hi; /* the slowest and fastest repeat, msg/s */
	uint64_t failed;
};

static int
cap_write_recommend(const char *dir, const struct cap_opts *o, const struct bench_machine *m,
		    const int *ops, const size_t *sizes, const struct cap_rpoint *pts,
		    const size_t *best, size_t n_sets, size_t per_set)
{
	char path[600];
	FILE *f, *c;

	snprintf(path, sizeof(path), "%s/recommend.json", dir);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/recommend.csv", dir);
	if ((c = fopen(path, "w")) == NULL) {
		fclose(f);
		return -1;
	}
	fprintf(c, "op,size_bytes,workers,batch_max,msgs_per_s,msgs_per_s_min,msgs_per_s_max,"
		   "latency_p50_ms,latency_p99_ms,failed,best\n");
	fprintf(f, "{\n  \"tool\": \"dime-bench capacity --recommend\",\n");
	bench_machine_json(f, m);
	fprintf(f, "  \"seconds\": %.3f,\n  \"repeats\": %u,\n  \"results\": [", o->seconds,
		o->repeats);
	for (size_t s = 0; s < n_sets; s++) {
		const struct cap_rpoint *bp = &pts[s * per_set + best[s]];

		fprintf(f,
			"%s\n    {\"op\": \"%s\", \"size_bytes\": %zu, \"best\": {\"workers\": %u, "
			"\"batch_max\": %u, \"msgs_per_s\": %.2f}, \"grid\": [",
			s ? "," : "", bench_op_name((enum bench_op)ops[s]), sizes[s], bp->workers,
			bp->batch_max, bp->msgs);
		for (size_t i = 0; i < per_set; i++) {
			const struct cap_rpoint *q = &pts[s * per_set + i];

			fprintf(
			    f,
			    "%s{\"workers\": %u, \"batch_max\": %u, \"msgs_per_s\": %.2f, "
			    "\"msgs_per_s_min\": %.2f, \"msgs_per_s_max\": %.2f, "
			    "\"latency_p50_ms\": %.3f, \"latency_p99_ms\": %.3f, \"failed\": %llu}",
			    i ? ", " : "", q->workers, q->batch_max, q->msgs, q->lo, q->hi,
			    q->lat50, q->lat99, (unsigned long long)q->failed);
			fprintf(c, "%s,%zu,%u,%u,%.2f,%.2f,%.2f,%.3f,%.3f,%llu,%d\n",
				bench_op_name((enum bench_op)ops[s]), sizes[s], q->workers,
				q->batch_max, q->msgs, q->lo, q->hi, q->lat50, q->lat99,
				(unsigned long long)q->failed, i == best[s]);
		}
		fprintf(f, "]}");
	}
	fprintf(f, "\n  ]\n}\n");
	return (fclose(f) == 0) & (fclose(c) == 0) ? 0 : -1;
}

/* Every worker count x batch_max for each selected op and size, in the pipeline's default
 * queue depth for that pair (4 x workers x batch_max); the best is the highest median msg/s
 * among the points without failures. */
static int
cap_recommend(const struct cap_opts *o, const struct bench_fix *f, struct bench_floor_ctx *fc,
	      struct bench_machine *m)
{
	size_t per_set = o->n_workers * o->n_batches, n_sets = o->n_ops * o->n_sizes, s = 0;
	struct cap_rpoint *pts = calloc(n_sets * per_set, sizeof(*pts));
	size_t *best = calloc(n_sets, sizeof(*best)), *sizes = calloc(n_sets, sizeof(*sizes));
	int *ops = calloc(n_sets, sizeof(*ops));
	double *v = calloc(per_set * 3 * o->repeats, sizeof(double));
	struct bench_progress pg;
	char machine[400];
	size_t n_tie;
	int status = 1;

	if (pts == NULL || best == NULL || sizes == NULL || ops == NULL || v == NULL)
		goto out;
	printf("dime-bench capacity --recommend: %zu worker count(s) x %zu batch size(s), %.2fs "
	       "each, median of %u\n",
	       o->n_workers, o->n_batches, o->seconds, o->repeats);
	fflush(stdout);
	bench_progress_init(&pg, o->progress, o->seconds * (double)(n_sets * per_set * o->repeats));
	for (size_t a = 0; a < o->n_ops; a++)
		for (size_t b = 0; b < o->n_sizes; b++, s++) {
			struct cap_rpoint *sp = pts + s * per_set;
			const char *opn = bench_op_name((enum bench_op)o->ops[a]);
			struct cap_pool p;
			char sz[16], what[128];

			ops[s] = o->ops[a];
			sizes[s] = o->sizes[b];
			bench_size_name(sz, sizeof(sz), o->sizes[b]);
			if (cap_pool_make(&p, f, fc, o->ops[a], o->sizes[b]) != DIME_OK)
				goto out;
			/* repeats outermost: load drifts touch every point alike */
			for (unsigned rep = 0; rep < o->repeats; rep++)
				for (size_t i = 0; i < per_set; i++) {
					struct cap_one one;
					unsigned wk = o->workers[i / o->n_batches];
					unsigned bm = o->batches[i % o->n_batches];

					snprintf(what, sizeof(what),
						 "%s %s: %u worker%s, batch_max %u, repeat %u/%u",
						 opn, sz, wk, wk > 1 ? "s" : "", bm, rep + 1,
						 o->repeats);
					bench_progress_step(&pg, what, o->seconds);
					if (cap_run_once(&one, f, o, &p, o->ops[a], wk, bm, 0) !=
					    DIME_OK) {
						cap_pool_free(&p);
						goto out;
					}
					sp[i].workers = wk;
					sp[i].batch_max = bm;
					sp[i].failed += one.failed;
					v[(i * 3 + 0) * o->repeats + rep] = one.msgs;
					v[(i * 3 + 1) * o->repeats + rep] = one.lat50;
					v[(i * 3 + 2) * o->repeats + rep] = one.lat99;
				}
			cap_pool_free(&p);
			for (size_t i = 0; i < per_set; i++) {
				sp[i].msgs = cap_median(v + (i * 3 + 0) * o->repeats, o->repeats);
				/* cap_median sorted the repeats */
				sp[i].lo = v[(i * 3 + 0) * o->repeats];
				sp[i].hi = v[(i * 3 + 0) * o->repeats + o->repeats - 1];
				sp[i].lat50 = cap_median(v + (i * 3 + 1) * o->repeats, o->repeats);
				sp[i].lat99 = cap_median(v + (i * 3 + 2) * o->repeats, o->repeats);
				if (sp[i].failed == 0 &&
				    (sp[best[s]].failed != 0 || sp[i].msgs > sp[best[s]].msgs))
					best[s] = i;
			}
		}
	bench_progress_end(&pg);
	bench_machine_end(m);
	bench_machine_line(machine, sizeof(machine), m);
	printf("\nmachine: %s\n\n%-13s %5s %3s %9s %11s %19s %10s %10s\n", machine, "op", "size",
	       "wk", "batch_max", "msg/s", "range_msg/s", "lat_p50_ms", "lat_p99_ms");
	for (s = 0; s < n_sets; s++)
		for (size_t i = 0; i < per_set; i++) {
			const struct cap_rpoint *q = &pts[s * per_set + i];
			char sz[16];

			bench_size_name(sz, sizeof(sz), sizes[s]);
			printf("%-13s %5s %3u %9u %11.1f %9.1f..%-8.1f %10.2f %10.2f%s%s\n",
			       bench_op_name((enum bench_op)ops[s]), sz, q->workers, q->batch_max,
			       q->msgs, q->lo, q->hi, q->lat50, q->lat99,
			       q->failed ? "  FAILURES" : "", i == best[s] ? "  <- best" : "");
		}
	printf("\n");
	for (s = 0; s < n_sets; s++) {
		const struct cap_rpoint *q = &pts[s * per_set + best[s]];
		char sz[16];

		bench_size_name(sz, sizeof(sz), sizes[s]);
		if (q->failed != 0) {
			printf("recommend: %s %s: no configuration ran without failures\n",
			       bench_op_name((enum bench_op)ops[s]), sz);
			goto out;
		}
		printf(
		    "recommend: %s %s: workers %u, batch_max %u (%.1f msg/s; per-message latency "
		    "p50 %.2f ms at full load)\n",
		    bench_op_name((enum bench_op)ops[s]), sz, q->workers, q->batch_max, q->msgs,
		    q->lat50);
		/* a point whose fastest repeat beats the best's slowest is not told apart from it
		 * by this run: say so rather than let one noisy repeat decide */
		n_tie = 0;
		for (size_t i = 0; i < per_set; i++) {
			const struct cap_rpoint *t = &pts[s * per_set + i];

			if (i == best[s] || t->failed != 0 || t->hi < q->lo)
				continue;
			printf("%s workers %u batch_max %u (%.1f)",
			       n_tie++ ? ","
				       : "  within the "
					 "run-to-run range of the best:",
			       t->workers, t->batch_max, t->msgs);
		}
		if (n_tie > 0)
			printf("\n");
	}
	if (cap_write_recommend(o->out, o, m, ops, sizes, pts, best, n_sets, per_set) != 0) {
		fprintf(stderr, "dime-bench capacity: cannot write into %s\n", o->out);
		goto out;
	}
	printf("wrote %s/recommend.csv %s/recommend.json\n", o->out, o->out);
	status = 0;
out:
	free(pts);
	free(best);
	free(sizes);
	free(ops);
	free(v);
	return status;
}

int
bench_capacity_main(int argc, char **argv)
{
	struct cap_opts o;
	struct bench_fix f;
	struct bench_machine m;
	struct bench_floor_ctx *fc = NULL;
	const char *why = "";
	int rc, status = 1;

	if ((rc = cap_parse(&o, argc, argv)) != 0)
		return rc < 0 ? 0 : rc;
	if ((rc = bench_fix_init(&f, &why)) != DIME_OK) {
		fprintf(stderr, "dime-bench capacity: setup: %s: %s\n", why, dime_strerror(rc));
		return 1;
	}
	bench_machine_init(&m);
	if (bench_tmpdir_new(cap_tmpdir, sizeof(cap_tmpdir), "dime-bench", NULL) != 0) {
		perror("dime-bench capacity: temporary directory");
		cap_tmpdir[0] = 0;
		goto out;
	}
	snprintf(cap_store, sizeof(cap_store), "%s/dime.db", cap_tmpdir);
	if (bench_store_fill(&f, cap_store) != DIME_OK || (fc = bench_floor_ctx_new(&f)) == NULL) {
		fprintf(stderr, "dime-bench capacity: store or floor setup failed\n");
		goto out;
	}
	if (cap_mkdirs(o.out) != 0) {
		fprintf(stderr, "dime-bench capacity: cannot create %s\n", o.out);
		goto out;
	}
	status = o.recommend ? cap_recommend(&o, &f, fc, &m) : cap_capacity(&o, &f, fc, &m);
out:
	bench_floor_ctx_free(fc);
	bench_fix_fini(&f);
	if (cap_tmpdir[0] != 0)
		bench_tmpdir_remove(cap_tmpdir);
	return status;
}

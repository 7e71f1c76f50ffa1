/* dime-bench capacity: each operation and size through dime_batch_run (an in-memory source
 * over generated messages, a counting sink), at 1..N workers, against the crypto floor of the
 * same messages measured in the same run. Medians over repeats; a table, capacity.csv,
 * capacity.json and gnuplot charts in --out. For accept and open at sizes up to 10 KiB it also
 * measures, at 1 worker, batch_max 1 against the default 32 (the effect of batched signature
 * checks): a second table, capacity-batching.csv and the "batching" list in capacity.json. */

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
#define CAP_MAX_SIZES 8
/* The batching section: batch_max on (the pipeline's default) and off, the sizes it covers,
 * and the queue depth both use (the default for 1 worker at batch_max 32, so that only the
 * grouping differs). */
#define CAP_BATCH_ON	 32u
#define CAP_BATCH_MAXSZ	 10240u
#define CAP_BATCH_QUEUE	 (4u * CAP_BATCH_ON)

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
	int no_batching; /* --no-batching: skip the batch_max 1 vs 32 section */
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
	double msgs, mbs, p50, p90, p99; /* msg/s, MB/s of input, latency in microseconds */
	double floor_msgs;		 /* the floor, single thread, msg/s */
	uint64_t failed;
	uint64_t engine_batches, engine_items;
	char io[32];
};

/* One point of the batching section: op and size at 1 worker, [0] batch_max 1 (off), [1]
 * batch_max CAP_BATCH_ON (on); medians over repeats. */
struct cap_brow {
	int op;
	size_t size, in_len;
	double msgs[2], mbs[2], p50[2];
	uint64_t failed[2], engine_batches[2], engine_items[2];
	int on_shared; /* the "on" runs are the main table's 1-worker runs */
};

static char cap_tmpdir[256];
static char cap_store[300];

static void
cap_cleanup(void)
{
	/* ".key": the store's generated key-encryption key (docs/identity.md, Keys at rest) */
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal", ".key", ".key.new"};
	char p[340];

	if (cap_tmpdir[0] == 0)
		return;
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", cap_store, sfx[i]);
		unlink(p);
	}
	rmdir(cap_tmpdir);
	cap_tmpdir[0] = 0;
}

static int
cap_usage(void)
{
	fprintf(stderr, "usage: dime-bench capacity [--ops wrap,origin-sign,accept,open,"
			"bounce-verify,rekey] [--sizes 1k,10k,100k,1m]\n"
			"                           [--workers 1..N | 1,2,4] [--seconds S] "
			"[--repeats R] [--out DIR]\n"
			"                           [--no-batching]\n"
			"For accept and open at sizes up to 10k (when selected) it also runs 1 worker "
			"with batch_max 1\nagainst batch_max 32 (capacity-batching.csv); "
			"--no-batching skips that.\n");
	return 2;
}

static int
cap_parse(struct cap_opts *o, int argc, char **argv)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	const char *ops = "wrap,origin-sign,accept,open,bounce-verify,rekey", *sizes = "1k,10k,100k,1m";
	char workers[64], buf[256];

	memset(o, 0, sizeof(*o));
	snprintf(workers, sizeof(workers), "1..%ld", ncpu > 0 ? ncpu : 1);
	const char *w = workers;
	o->seconds = 2.0;
	o->repeats = 3;
	o->out = "build/bench-out";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--no-batching") == 0) {
			o->no_batching = 1;
			continue;
		}
		if (v == NULL)
			return cap_usage();
		if (strcmp(a, "--ops") == 0)
			ops = v;
		else if (strcmp(a, "--sizes") == 0)
			sizes = v;
		else if (strcmp(a, "--workers") == 0)
			w = v;
		else if (strcmp(a, "--seconds") == 0)
			o->seconds = atof(v);
		else if (strcmp(a, "--repeats") == 0)
			o->repeats = (unsigned)atoi(v);
		else if (strcmp(a, "--out") == 0)
			o->out = v;
		else
			return cap_usage();
		i++;
	}
	if (o->seconds <= 0 || o->repeats == 0 || o->repeats > 100)
		return cap_usage();
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
	snprintf(buf, sizeof(buf), "%s", w);
	if (strstr(buf, "..") != NULL) {
		unsigned lo = (unsigned)atoi(buf), hi = (unsigned)atoi(strstr(buf, "..") + 2);

		if (lo == 0 || hi < lo || hi - lo >= CAP_MAX_WORKERS)
			return cap_usage();
		for (unsigned k = lo; k <= hi; k++)
			o->workers[o->n_workers++] = k;
	} else {
		for (char *t = strtok(buf, ","); t != NULL; t = strtok(NULL, ",")) {
			int k = atoi(t);

			if (k <= 0 || o->n_workers == CAP_MAX_WORKERS)
				return cap_usage();
			o->workers[o->n_workers++] = (unsigned)k;
		}
	}
	if (o->n_ops == 0 || o->n_sizes == 0 || o->n_workers == 0)
		return cap_usage();
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

	if (bench_now_ns() >= s->end_ns)
		return 0;
	memset(it, 0, sizeof(*it));
	snprintf(it->name, sizeof(it->name), "m%010llu", (unsigned long long)s->n);
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
cap_put(void *ctx, const char *name, const uint8_t *out, size_t len)
{
	struct cap_sink *k = ctx;

	(void)name;
	(void)out;
	__atomic_fetch_add(&k->n, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&k->bytes, len, __ATOMIC_RELAXED);
}

struct cap_lat {
	uint64_t *ns;
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
		uint64_t *nn = realloc(l->ns, nc * sizeof(*nn));

		if (nn == NULL)
			return;
		l->ns = nn;
		l->cap = nc;
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

static double
cap_pct(const uint64_t *v, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(q * (double)(n - 1) + 0.5);
	return (double)v[i] / 1e3;
}

static double
cap_median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cap_dbl_cmp);
	return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct cap_one {
	double msgs, mbs, p50, p90, p99;
	uint64_t failed, engine_batches, engine_items;
	const char *io;
};

/* batch_max 0 runs with the pipeline's defaults (batch_max 32, its queue depth). */
static int
cap_run_once(struct cap_one *res, const struct bench_fix *f, const struct cap_opts *o,
	     const struct cap_pool *p, int op, unsigned workers, unsigned batch_max)
{
	static const enum dime_batch_op bop[BENCH_N_OPS] = {
	    DIME_BATCH_WRAP, DIME_BATCH_ORIGIN_SIGN, DIME_BATCH_ACCEPT, DIME_BATCH_OPEN,
	    DIME_BATCH_BOUNCE_VERIFY, DIME_BATCH_REKEY};
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
	if (batch_max != 0) {
		conf.batch_max = batch_max;
		conf.queue_depth = CAP_BATCH_QUEUE * workers;
	}
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
		return rc;
	}
	qsort(lat.ns, lat.n, sizeof(*lat.ns), cap_u64_cmp);
	res->msgs = sum.seconds > 0 ? (double)sum.ok / sum.seconds : 0;
	res->mbs = sum.seconds > 0 ? (double)sum.in_bytes / sum.seconds / 1e6 : 0;
	res->p50 = cap_pct(lat.ns, lat.n, 0.50);
	res->p90 = cap_pct(lat.ns, lat.n, 0.90);
	res->p99 = cap_pct(lat.ns, lat.n, 0.99);
	res->failed = sum.failed + lat.failed;
	res->engine_batches = sum.engine_batches;
	res->engine_items = sum.engine_items;
	res->io = sum.io != NULL ? sum.io : "";
	free(lat.ns);
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

static void
cap_print(FILE *f, const struct cap_row *rows, size_t n)
{
	fprintf(f, "%-13s %5s %3s %10s %9s %9s %9s %9s %10s %8s %8s\n", "op", "size", "wk",
		"msg/s", "MB/s", "p50_us", "p90_us", "p99_us", "floor/s", "vs_floor", "speedup");
	for (size_t i = 0; i < n; i++) {
		const struct cap_row *r = &rows[i];
		const struct cap_row *one = cap_find(rows, n, r->op, r->size, 1);
		char sz[16], vf[16] = "-", sp[16] = "-";

		bench_size_name(sz, sizeof(sz), r->size);
		if (r->workers == 1)
			snprintf(vf, sizeof(vf), "%.2f", cap_ratio(r->msgs, r->floor_msgs));
		if (one != NULL && r->workers > 1)
			snprintf(sp, sizeof(sp), "%.2fx", cap_ratio(r->msgs, one->msgs));
		fprintf(f, "%-13s %5s %3u %10.1f %9.2f %9.1f %9.1f %9.1f %10.1f %8s %8s%s\n",
			bench_op_name((enum bench_op)r->op), sz, r->workers, r->msgs, r->mbs, r->p50,
			r->p90, r->p99, r->floor_msgs, vf, sp, r->failed ? "  FAILURES" : "");
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
	fprintf(f, "%-13s %5s %3s %12s %12s %8s %14s %13s\n", "op", "size", "wk",
		"off_msg/s", "on_msg/s", "on/off", "items/call_off", "items/call_on");
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
		   "mb_per_s,p50_us,vs_batch_max_1,failed,engine_batches,engine_items,"
		   "items_per_engine_call\n");
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 2; k++) {
			char sz[16];

			bench_size_name(sz, sizeof(sz), b[i].size);
			fprintf(f, "%s,%s,%zu,%zu,1,%u,%u,%.2f,%.3f,%.1f,%.4f,%llu,%llu,%llu,%.2f\n",
				bench_op_name((enum bench_op)b[i].op), sz, b[i].size, b[i].in_len,
				bm[k], CAP_BATCH_QUEUE, b[i].msgs[k], b[i].mbs[k], b[i].p50[k],
				cap_ratio(b[i].msgs[k], b[i].msgs[0]),
				(unsigned long long)b[i].failed[k],
				(unsigned long long)b[i].engine_batches[k],
				(unsigned long long)b[i].engine_items[k], cap_per_call(&b[i], k));
		}
	return fclose(f) == 0 ? 0 : -1;
}

static int
cap_write_csv(const char *dir, const struct cap_row *rows, size_t n)
{
	char path[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/capacity.csv", dir);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fprintf(f, "op,size,size_bytes,input_bytes,workers,msgs_per_s,mb_per_s,p50_us,p90_us,p99_us,"
		   "floor_msgs_per_s,per_core_vs_floor,speedup_vs_1_worker,failed,engine_batches,"
		   "engine_items,io\n");
	for (size_t i = 0; i < n; i++) {
		const struct cap_row *r = &rows[i], *one = cap_find(rows, n, r->op, r->size, 1);
		char sz[16];

		bench_size_name(sz, sizeof(sz), r->size);
		fprintf(f, "%s,%s,%zu,%zu,%u,%.2f,%.3f,%.1f,%.1f,%.1f,%.2f,%.4f,%.4f,%llu,%llu,%llu,%s\n",
			bench_op_name((enum bench_op)r->op), sz, r->size, r->in_len, r->workers,
			r->msgs, r->mbs, r->p50, r->p90, r->p99, r->floor_msgs,
			r->workers == 1 ? cap_ratio(r->msgs, r->floor_msgs) : 0.0,
			one != NULL ? cap_ratio(r->msgs, one->msgs) : 0.0,
			(unsigned long long)r->failed, (unsigned long long)r->engine_batches,
			(unsigned long long)r->engine_items, r->io);
	}
	return fclose(f) == 0 ? 0 : -1;
}

static int
cap_write_json(const char *dir, const struct cap_opts *o, const struct cap_row *rows, size_t n,
	       char (*desc)[512], const int *desc_op, const size_t *desc_size, size_t n_desc,
	       const struct cap_brow *b, size_t n_b)
{
	char path[600], host[128] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/capacity.json", dir);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	gethostname(host, sizeof(host) - 1);
	fprintf(f, "{\n  \"tool\": \"dime-bench capacity\",\n  \"host\": \"%s\",\n", host);
	fprintf(f, "  \"cpus_online\": %ld,\n  \"seconds\": %.3f,\n  \"repeats\": %u,\n",
		sysconf(_SC_NPROCESSORS_ONLN), o->seconds, o->repeats);
	{
		double la[3] = {0, 0, 0};

		if (getloadavg(la, 3) < 0)
			la[0] = la[1] = la[2] = -1;
		fprintf(f, "  \"loadavg_at_end\": [%.2f, %.2f, %.2f],\n", la[0], la[1], la[2]);
	}
	fprintf(f, "  \"floors\": [");
	for (size_t i = 0; i < n_desc; i++)
		fprintf(f, "%s\n    {\"op\": \"%s\", \"size_bytes\": %zu, \"calls\": \"%s\"}",
			i ? "," : "", bench_op_name((enum bench_op)desc_op[i]), desc_size[i],
			desc[i]);
	fprintf(f, "\n  ],\n  \"rows\": [");
	for (size_t i = 0; i < n; i++) {
		const struct cap_row *r = &rows[i], *one = cap_find(rows, n, r->op, r->size, 1);
		char vf[32] = "null";

		if (r->workers == 1)
			snprintf(vf, sizeof(vf), "%.4f", cap_ratio(r->msgs, r->floor_msgs));
		fprintf(f,
			"%s\n    {\"op\": \"%s\", \"size_bytes\": %zu, \"input_bytes\": %zu, "
			"\"workers\": %u, \"msgs_per_s\": %.2f, \"mb_per_s\": %.3f, \"p50_us\": %.1f, "
			"\"p90_us\": %.1f, \"p99_us\": %.1f, \"floor_msgs_per_s\": %.2f, "
			"\"per_core_vs_floor\": %s, \"speedup_vs_1_worker\": %.4f, \"failed\": %llu, "
			"\"engine_batches\": %llu, \"engine_items\": %llu, \"io\": \"%s\"}",
			i ? "," : "", bench_op_name((enum bench_op)r->op), r->size, r->in_len,
			r->workers, r->msgs, r->mbs, r->p50, r->p90, r->p99, r->floor_msgs,
			vf, one != NULL ? cap_ratio(r->msgs, one->msgs) : 0.0,
			(unsigned long long)r->failed, (unsigned long long)r->engine_batches,
			(unsigned long long)r->engine_items, r->io);
	}
	fprintf(f, "\n  ],\n  \"batching\": [");
	for (size_t i = 0; i < n_b; i++) {
		fprintf(f, "%s\n    {\"op\": \"%s\", \"size_bytes\": %zu, \"input_bytes\": %zu, "
			   "\"workers\": 1, \"queue_depth\": %u, \"on_vs_off\": %.4f, "
			   "\"on_shares_main_runs\": %s",
			i ? "," : "", bench_op_name((enum bench_op)b[i].op), b[i].size, b[i].in_len,
			CAP_BATCH_QUEUE, cap_ratio(b[i].msgs[1], b[i].msgs[0]),
			b[i].on_shared ? "true" : "false");
		for (int k = 0; k < 2; k++)
			fprintf(f,
				", \"%s\": {\"batch_max\": %u, \"msgs_per_s\": %.2f, "
				"\"mb_per_s\": %.3f, \"p50_us\": %.1f, \"failed\": %llu, "
				"\"engine_batches\": %llu, \"engine_items\": %llu}",
				k ? "on" : "off", k ? CAP_BATCH_ON : 1u, b[i].msgs[k], b[i].mbs[k],
				b[i].p50[k], (unsigned long long)b[i].failed[k],
				(unsigned long long)b[i].engine_batches[k],
				(unsigned long long)b[i].engine_items[k]);
		fprintf(f, "}");
	}
	fprintf(f, "\n  ]\n}\n");
	return fclose(f) == 0 ? 0 : -1;
}

/* Charts: throughput against workers (one line per op and size, msg/s on a log axis) and the
 * latency percentiles at one worker. */
static void
cap_plot(const char *dir, const struct cap_opts *o, const struct cap_row *rows, size_t n)
{
	char path[600], cmd[1300];
	FILE *f;
	int k = 0;

	if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
		printf("note: gnuplot not found: no charts (install gnuplot-nox)\n");
		return;
	}
	snprintf(path, sizeof(path), "%s/capacity.gp", dir);
	if ((f = fopen(path, "w")) == NULL)
		return;
	fprintf(f, "set terminal pngcairo size 1000,640 noenhanced\nset datafile separator ','\n");
	for (size_t a = 0; a < o->n_ops; a++)
		for (size_t b = 0; b < o->n_sizes; b++) {
			fprintf(f, "$s%d << EOD\n", k++);
			for (size_t w = 0; w < o->n_workers; w++) {
				const struct cap_row *r =
				    cap_find(rows, n, o->ops[a], o->sizes[b], o->workers[w]);

				if (r != NULL)
					fprintf(f, "%u,%.2f\n", r->workers, r->msgs);
			}
			fprintf(f, "EOD\n");
		}
	fprintf(f, "set output '%s/throughput.png'\nset title 'dime_batch_run throughput'\n"
		   "set xlabel 'workers'\nset ylabel 'messages/s'\nset logscale y\nset grid\n"
		   "set key outside right\nset xtics 1\nplot ",
		dir);
	k = 0;
	for (size_t a = 0; a < o->n_ops; a++)
		for (size_t b = 0; b < o->n_sizes; b++) {
			char sz[16];

			bench_size_name(sz, sizeof(sz), o->sizes[b]);
			fprintf(f, "%s$s%d using 1:2 with linespoints title '%s %s'", k ? ", " : "",
				k, bench_op_name((enum bench_op)o->ops[a]), sz);
			k++;
		}
	fprintf(f, "\n$lat << EOD\n");
	k = 0;
	for (size_t a = 0; a < o->n_ops; a++)
		for (size_t b = 0; b < o->n_sizes; b++) {
			const struct cap_row *r = cap_find(rows, n, o->ops[a], o->sizes[b], 1);
			char sz[16];

			if (r == NULL)
				continue;
			bench_size_name(sz, sizeof(sz), r->size);
			fprintf(f, "%d,%s %s,%.1f,%.1f,%.1f\n", k++,
				bench_op_name((enum bench_op)r->op), sz, r->p50, r->p90, r->p99);
		}
	fprintf(f, "EOD\nset output '%s/latency.png'\nunset logscale\nset logscale y\n"
		   "set title 'per-message processing time, 1 worker'\nset xlabel ''\n"
		   "set ylabel 'microseconds'\nset xtics rotate by -45\nunset xtics\n"
		   "set xtics rotate by -45 nomirror\n"
		   "plot $lat using 1:3:xtic(2) with linespoints title 'p50', "
		   "$lat using 1:4 with linespoints title 'p90', "
		   "$lat using 1:5 with linespoints title 'p99'\n",
		   dir);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "gnuplot '%s' 2>&1", path);
	if (system(cmd) != 0)
		printf("note: gnuplot failed on %s\n", path);
	else
		printf("charts: %s/throughput.png %s/latency.png\n", dir, dir);
}

/* The batching section covers accept and open (the ops whose signature checks are many per
 * message and mostly by the same few org keys) at the selected sizes up to 10 KiB. */
static int
cap_batch_wanted(const struct cap_opts *o, int op, size_t size)
{
	return !o->no_batching && (op == BENCH_ACCEPT || op == BENCH_OPEN) &&
	       size <= CAP_BATCH_MAXSZ;
}

/* Keeps one run of the batching section: k 0 off, 1 on; bv holds 6 x repeats values. */
static void
cap_bkeep(struct cap_brow *br, double *bv, unsigned repeats, unsigned rep, int k,
	  const struct cap_one *one)
{
	bv[(k * 3 + 0) * repeats + rep] = one->msgs;
	bv[(k * 3 + 1) * repeats + rep] = one->mbs;
	bv[(k * 3 + 2) * repeats + rep] = one->p50;
	br->failed[k] += one->failed;
	br->engine_batches[k] += one->engine_batches;
	br->engine_items[k] += one->engine_items;
}

/* One run of the batching section at 1 worker: k 0 batch_max 1, k 1 batch_max CAP_BATCH_ON. */
static int
cap_bmode(struct cap_brow *br, double *bv, const struct bench_fix *f, const struct cap_opts *o,
	  const struct cap_pool *p, unsigned rep, int k)
{
	struct cap_one one;
	int rc = cap_run_once(&one, f, o, p, br->op, 1, k ? CAP_BATCH_ON : 1);

	if (rc == DIME_OK)
		cap_bkeep(br, bv, o->repeats, rep, k, &one);
	return rc;
}

int
bench_capacity_main(int argc, char **argv)
{
	struct cap_opts o;
	struct bench_fix f;
	struct bench_floor_ctx *fc = NULL;
	struct cap_row *rows = NULL;
	struct cap_brow *brows = NULL;
	size_t n_brows = 0;
	char (*desc)[512] = NULL;
	int *desc_op = NULL;
	size_t *desc_size = NULL, n_rows = 0, n_desc = 0;
	const char *why = "";
	int rc, status = 1;

	if ((rc = cap_parse(&o, argc, argv)) != 0)
		return rc;
	if ((rc = bench_fix_init(&f, &why)) != DIME_OK) {
		fprintf(stderr, "dime-bench capacity: setup: %s: %s\n", why, dime_strerror(rc));
		return 1;
	}
	snprintf(cap_tmpdir, sizeof(cap_tmpdir), "%s/dime-bench.XXXXXX",
		 getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(cap_tmpdir) == NULL) {
		perror("dime-bench capacity: mkdtemp");
		cap_tmpdir[0] = 0;
		goto out;
	}
	atexit(cap_cleanup);
	snprintf(cap_store, sizeof(cap_store), "%s/dime.db", cap_tmpdir);
	if (bench_store_fill(&f, cap_store) != DIME_OK || (fc = bench_floor_ctx_new(&f)) == NULL) {
		fprintf(stderr, "dime-bench capacity: store or floor setup failed\n");
		goto out;
	}
	if (cap_mkdirs(o.out) != 0) {
		fprintf(stderr, "dime-bench capacity: cannot create %s\n", o.out);
		goto out;
	}
	rows = calloc(o.n_ops * o.n_sizes * o.n_workers, sizeof(*rows));
	desc = calloc(o.n_ops * o.n_sizes, sizeof(*desc));
	desc_op = calloc(o.n_ops * o.n_sizes, sizeof(*desc_op));
	desc_size = calloc(o.n_ops * o.n_sizes, sizeof(*desc_size));
	brows = calloc(o.n_ops * o.n_sizes, sizeof(*brows));
	if (rows == NULL || desc == NULL || desc_op == NULL || desc_size == NULL || brows == NULL)
		goto out;
	printf("dime-bench capacity: %zu op(s) x %zu size(s) x %zu worker count(s), %.2fs each, "
	       "median of %u; store %s\n",
	       o.n_ops, o.n_sizes, o.n_workers, o.seconds, o.repeats, cap_store);
	for (size_t a = 0; a < o.n_ops; a++)
		for (size_t b = 0; b < o.n_sizes; b++) {
			struct cap_pool p;
			double *fr = calloc(o.repeats, sizeof(double));
			double *v = calloc(o.repeats * 5 * o.n_workers, sizeof(double));
			int bsec = cap_batch_wanted(&o, o.ops[a], o.sizes[b]);
			double *bv = calloc(o.repeats * 6, sizeof(double));
			struct cap_brow *br = &brows[n_brows];
			size_t w1 = o.n_workers; /* the 1-worker run, if the table has one */
			struct cap_one one;
			int failed = 0;
			char sz[16];

			bench_size_name(sz, sizeof(sz), o.sizes[b]);
			for (size_t w = 0; w < o.n_workers && w1 == o.n_workers; w++)
				if (o.workers[w] == 1)
					w1 = w;
			if (fr == NULL || v == NULL || bv == NULL ||
			    cap_pool_make(&p, &f, fc, o.ops[a], o.sizes[b]) != DIME_OK) {
				free(fr);
				free(v);
				free(bv);
				goto out;
			}
			br->op = o.ops[a];
			br->size = o.sizes[b];
			br->in_len = p.in_bytes / p.n;
			br->on_shared = w1 < o.n_workers;
			printf("  %s %s: %zu distinct messages, floor = %s\n",
			       bench_op_name((enum bench_op)o.ops[a]), sz, p.n, p.floor_desc);
			fflush(stdout);
			snprintf(desc[n_desc], sizeof(desc[n_desc]), "%s", p.floor_desc);
			desc_op[n_desc] = o.ops[a];
			desc_size[n_desc++] = o.sizes[b];
			for (size_t w = 0; w < o.n_workers; w++) {
				struct cap_row *r = &rows[n_rows + w];

				r->op = o.ops[a];
				r->size = o.sizes[b];
				r->in_len = p.in_bytes / p.n;
				r->workers = o.workers[w];
			}
			/* repeats interleave the floor and every worker count, so drift in the
			 * machine's load touches them alike. The batching section's batch_max 1 run
			 * sits right next to the 1-worker run (which is batch_max 32, the default):
			 * before it on odd repeats, after it on even ones. Without a 1-worker run in
			 * the table the section runs its own batch_max 32 run. */
			for (unsigned rep = 0; rep < o.repeats && !failed; rep++) {
				int off_first = rep % 2 == 1;

				fr[rep] = cap_floor_rate(fc, &p, o.seconds);
				for (size_t w = 0; w < o.n_workers && !failed; w++) {
					double *x = v + (w * 5) * o.repeats;
					struct cap_row *r = &rows[n_rows + w];
					int pair = bsec && w == w1;

					if (pair && off_first &&
					    cap_bmode(br, bv, &f, &o, &p, rep, 0) != DIME_OK) {
						failed = 1;
						break;
					}
					if (cap_run_once(&one, &f, &o, &p, o.ops[a], o.workers[w], 0) !=
					    DIME_OK) {
						failed = 1;
						break;
					}
					if (pair)
						cap_bkeep(br, bv, o.repeats, rep, 1, &one);
					x[0 * o.repeats + rep] = one.msgs;
					x[1 * o.repeats + rep] = one.mbs;
					x[2 * o.repeats + rep] = one.p50;
					x[3 * o.repeats + rep] = one.p90;
					x[4 * o.repeats + rep] = one.p99;
					r->failed += one.failed;
					r->engine_batches += one.engine_batches;
					r->engine_items += one.engine_items;
					snprintf(r->io, sizeof(r->io), "%s", one.io);
					if (pair && !off_first &&
					    cap_bmode(br, bv, &f, &o, &p, rep, 0) != DIME_OK)
						failed = 1;
				}
				if (!failed && bsec && w1 == o.n_workers &&
				    (cap_bmode(br, bv, &f, &o, &p, rep, off_first ? 0 : 1) != DIME_OK ||
				     cap_bmode(br, bv, &f, &o, &p, rep, off_first ? 1 : 0) != DIME_OK))
					failed = 1;
			}
			if (failed) {
				cap_pool_free(&p);
				free(fr);
				free(v);
				free(bv);
				goto out;
			}
			for (size_t w = 0; w < o.n_workers; w++) {
				double *x = v + (w * 5) * o.repeats;
				struct cap_row *r = &rows[n_rows + w];

				r->msgs = cap_median(x, o.repeats);
				r->mbs = cap_median(x + o.repeats, o.repeats);
				r->p50 = cap_median(x + 2 * o.repeats, o.repeats);
				r->p90 = cap_median(x + 3 * o.repeats, o.repeats);
				r->p99 = cap_median(x + 4 * o.repeats, o.repeats);
				r->floor_msgs = cap_median(fr, o.repeats);
			}
			n_rows += o.n_workers;
			if (bsec) {
				for (int k = 0; k < 2; k++) {
					br->msgs[k] = cap_median(bv + (k * 3 + 0) * o.repeats, o.repeats);
					br->mbs[k] = cap_median(bv + (k * 3 + 1) * o.repeats, o.repeats);
					br->p50[k] = cap_median(bv + (k * 3 + 2) * o.repeats, o.repeats);
				}
				n_brows++;
			}
			cap_pool_free(&p);
			free(fr);
			free(v);
			free(bv);
		}
	{
		double la[3] = {0, 0, 0};

		if (getloadavg(la, 3) >= 0)
			printf("\nload average now: %.2f %.2f %.2f (%ld CPUs online; other load "
			       "skews every figure)\n",
			       la[0], la[1], la[2], sysconf(_SC_NPROCESSORS_ONLN));
	}
	printf("\n");
	cap_print(stdout, rows, n_rows);
	printf("\nvs_floor: msg/s at 1 worker / floor msg/s on one thread (same messages, same "
	       "run).\nspeedup: msg/s at N workers / msg/s at 1 worker. Latency: per-message "
	       "processing time as the pipeline reports it (dime_batch_result.ns).\n");
	if (n_brows > 0) {
		printf("\nbatching, 1 worker: batch_max 1 (off: one message per engine call) against "
		       "%u (on: the\npipeline's default; all signature checks of a group in one "
		       "dime_ed25519_verify_batch call);\nsame messages, queue depth %u for both, "
		       "adjacent runs, medians of %u%s.\n\n",
		       CAP_BATCH_ON, CAP_BATCH_QUEUE, o.repeats,
		       brows[0].on_shared ? "; \"on\" is the 1-worker row above" : "");
		cap_bprint(stdout, brows, n_brows);
	}
	if (cap_write_csv(o.out, rows, n_rows) != 0 ||
	    cap_write_json(o.out, &o, rows, n_rows, desc, desc_op, desc_size, n_desc, brows,
			   n_brows) != 0 ||
	    (n_brows > 0 && cap_write_bcsv(o.out, brows, n_brows) != 0)) {
		fprintf(stderr, "dime-bench capacity: cannot write into %s\n", o.out);
		goto out;
	}
	printf("wrote %s/capacity.csv %s/capacity.json", o.out, o.out);
	if (n_brows > 0) {
		printf(" %s/capacity-batching.csv", o.out);
	} else {
		char bpath[600];

		/* no section this run: a file from an earlier run would be taken for this one's */
		snprintf(bpath, sizeof(bpath), "%s/capacity-batching.csv", o.out);
		unlink(bpath);
	}
	printf("\n");
	cap_plot(o.out, &o, rows, n_rows);
	status = 0;
out:
	free(rows);
	free(brows);
	free(desc);
	free(desc_op);
	free(desc_size);
	bench_floor_ctx_free(fc);
	bench_fix_fini(&f);
	cap_cleanup();
	return status;
}

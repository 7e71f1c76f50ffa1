/* The batch pipeline gives exactly the one-at-a-time results: wrap (checked by opening),
 * origin-sign (deterministic signatures: identical bytes), accept (identical verdict lines),
 * open (identical mail, equal to the original) and bounce-verify, over generated mail plus the
 * SpamAssassin corpus when build/corpus holds it, mixed with damaged inputs, at several worker
 * counts and batch sizes. The store is made with the dime CLI (DIME_CLI). */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dime/batch.h"
#include "dime/codec.h"
#include "dime/crypto.h"
#include "dime/io.h"
#include "dime/msg.h"
#include "dime/msg_armor.h"
#include "dime/dir.h"
#include "dime/plmsg.h"
#include "tlib.h"

#define N_GEN	     1000u
#define N_CORPUS_MAX 1500u

struct msgset {
	char **name;
	uint8_t **data;
	size_t *len;
	size_t n, cap;
	pthread_mutex_t mu;
};

static void
set_add(struct msgset *s, const char *name, const uint8_t *data, size_t len)
{
	pthread_mutex_lock(&s->mu);
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 256;
		s->name = realloc(s->name, s->cap * sizeof(*s->name));
		s->data = realloc(s->data, s->cap * sizeof(*s->data));
		s->len = realloc(s->len, s->cap * sizeof(*s->len));
		if (s->name == NULL || s->data == NULL || s->len == NULL)
			abort();
	}
	s->name[s->n] = strdup(name);
	s->data[s->n] = malloc(len + 1);
	if (s->name[s->n] == NULL || s->data[s->n] == NULL)
		abort();
	if (len > 0)
		memcpy(s->data[s->n], data, len);
	s->len[s->n] = len;
	s->n++;
	pthread_mutex_unlock(&s->mu);
}

static ssize_t
set_find(const struct msgset *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->name[i], name) == 0)
			return (ssize_t)i;
	return -1;
}

static void
set_free(struct msgset *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->name[i]);
		free(s->data[i]);
	}
	free(s->name);
	free(s->data);
	free(s->len);
	memset(s, 0, sizeof(*s));
}

/* ---- an in-memory source and a collecting sink ---- */

struct memsrc {
	const struct msgset *set;
	size_t next;
};

static int
memsrc_next(void *ctx, struct dime_batch_item *it, const char **why)
{
	struct memsrc *m = ctx;
	size_t i = m->next;

	(void)why;
	if (i >= m->set->n)
		return 0;
	m->next++;
	snprintf(it->name, sizeof(it->name), "%s", m->set->name[i]);
	it->data = malloc(m->set->len[i] + 1);
	if (it->data == NULL)
		abort();
	memcpy(it->data, m->set->data[i], m->set->len[i]);
	it->len = m->set->len[i];
	return 1;
}

/* When set, the sink refuses every item whose name ends in '3' (a queue that is full): the
 * pipeline must report those failed with the sink's reason, and the others with its receipt. */
static int sink_refuse;

static pthread_mutex_t sink_mu = PTHREAD_MUTEX_INITIALIZER;
static size_t sink_groups, sink_items; /* how the outputs came: groups of how many */

static void
sink_put(void *ctx, struct dime_batch_out *o, size_t n)
{
	pthread_mutex_lock(&sink_mu); /* workers call at once; the set is not thread-safe */
	sink_groups++;
	sink_items += n;
	for (size_t i = 0; i < n; i++) {
		size_t nl = strlen(o[i].name);

		if (sink_refuse && nl > 0 && o[i].name[nl - 1] == '3') {
			o[i].why = "the sink is full";
			o[i].rc = DIME_E_NOSPACE;
			continue;
		}
		set_add(ctx, o[i].name, o[i].out, o[i].len);
		if (sink_refuse)
			snprintf(o[i].line, o[i].line_cap, "kept %s", o[i].name);
	}
	pthread_mutex_unlock(&sink_mu);
}

struct verdicts {
	struct msgset lines; /* name -> "ok" / why */
};

static void
on_result(void *ctx, const struct dime_batch_result *r)
{
	struct verdicts *v = ctx;
	char buf[2048];

	snprintf(buf, sizeof(buf), "%s|%s", r->ok == 1 ? "ok" : "fail",
		 r->ok == 1 ? (r->line ? r->line : "") : r->why);
	set_add(&v->lines, r->name, (const uint8_t *)buf, strlen(buf));
}

static const char *store_path;

/* ---- stop: queued items are reported as not started, never as skipped ---- */

struct stop_ctx {
	uint64_t ok, failed, skipped, not_started, bad_why;
};

/* The stop comes from the source, as it hands over its 4th item: that item reaches the queue
 * after the stop, so at least it is not started whatever the threads' timing (a stop from the
 * first result raced a slow feeder on a loaded machine: one item pulled, one done). */
#define STOP_AT 4

static int
stop_src_next(void *ctx, struct dime_batch_item *it, const char **why)
{
	struct memsrc *m = ctx;
	int rc = memsrc_next(ctx, it, why);

	if (rc == 1 && m->next == STOP_AT)
		dime_batch_stop();
	return rc;
}

static void
stop_on_result(void *ctx, const struct dime_batch_result *r)
{
	struct stop_ctx *c = ctx;

	if (r->ok == 1)
		c->ok++;
	else if (r->ok == -1)
		c->skipped++;
	else if (r->ok == -2)
		c->not_started++, c->bad_why += strstr(r->why, "not started") == NULL;
	else
		c->failed++;
}

static void
t_stop(const struct msgset *mail)
{
	struct dime_batch_conf conf;
	struct dime_batch_params par;
	struct memsrc ms = {mail, 0};
	struct dime_batch_source src = {&ms, stop_src_next, mail->n};
	struct dime_batch_sink sink = {NULL, NULL, NULL};
	struct dime_batch_summary sum;
	struct stop_ctx c;
	const char *why = "";
	int rc;

	memset(&conf, 0, sizeof(conf));
	memset(&par, 0, sizeof(par));
	memset(&c, 0, sizeof(c));
	conf.workers = 1;
	conf.batch_max = 1;
	conf.queue_depth = 16;
	par.op = DIME_BATCH_WRAP;
	par.from = "a1@alpha.example";
	par.to = "b1@beta.example";
	par.origin_sign = 1;
	dime_batch_stop_clear();
	rc = dime_batch_run(&conf, &par, store_path, &src, &sink, stop_on_result, &c, &sum, &why);
	dime_batch_stop_clear();
	T_CHECK(rc == DIME_OK, "stop: run: %s", why);
	T_CHECK(sum.stopped == 1, "stop: summary not marked stopped");
	T_CHECK(sum.skipped == 0 && c.skipped == 0,
		"stop: %llu items reported skipped, want 0 (they were not started)",
		(unsigned long long)sum.skipped);
	T_CHECK(sum.not_started > 0 && sum.not_started == c.not_started && c.bad_why == 0,
		"stop: not started got %llu (callback %llu, %llu without the reason), want > 0",
		(unsigned long long)sum.not_started, (unsigned long long)c.not_started,
		(unsigned long long)c.bad_why);
	T_CHECK(sum.ok + sum.failed + sum.not_started == ms.next,
		"stop: %llu+%llu+%llu results for %zu items pulled", (unsigned long long)sum.ok,
		(unsigned long long)sum.failed, (unsigned long long)sum.not_started, ms.next);
	T_CHECK(ms.next == STOP_AT, "stop: %zu items pulled, want %d (none after the stop)",
		ms.next, STOP_AT);
	printf("stop: %llu done, %llu not started of %zu pulled\n", (unsigned long long)sum.ok,
	       (unsigned long long)sum.not_started, ms.next);
}

static int
run_batch(struct msgset *outs, struct verdicts *v, const struct msgset *in,
	  const struct dime_batch_params *par, unsigned workers, unsigned batch)
{
	struct dime_batch_conf conf;
	struct memsrc ms = {in, 0};
	struct dime_batch_source src = {&ms, memsrc_next, in->n};
	struct dime_batch_sink sink = {NULL, sink_put, outs};
	struct dime_batch_summary sum;
	const char *why = "";
	int rc;

	memset(&conf, 0, sizeof(conf));
	conf.workers = workers;
	conf.batch_max = batch;
	rc = dime_batch_run(&conf, par, store_path, &src, &sink, on_result, v, &sum, &why);
	T_CHECK(rc == DIME_OK, "batch %s: %s", dime_batch_op_name(par->op), why);
	T_CHECK(sum.ok + sum.failed == in->n, "batch %s: %llu+%llu results for %zu inputs",
		dime_batch_op_name(par->op), (unsigned long long)sum.ok,
		(unsigned long long)sum.failed, in->n);
	return rc;
}

/* A sink that refuses some items: each is reported failed with the sink's reason, every other
 * one ok with the sink's receipt line, and the counts add up. */
static void
sink_check(const struct msgset *mail, const struct dime_batch_params *par)
{
	struct msgset outs;
	struct verdicts v;
	size_t refused = 0, kept = 0, bad = 0;

	memset(&outs, 0, sizeof(outs));
	pthread_mutex_init(&outs.mu, NULL);
	memset(&v, 0, sizeof(v));
	pthread_mutex_init(&v.lines.mu, NULL);
	sink_refuse = 1;
	sink_groups = sink_items = 0;
	run_batch(&outs, &v, mail, par, 2, 7);
	sink_refuse = 0;
	/* a group's outputs reach the sink in one call (a queue commits them together) */
	T_CHECK(sink_groups > 0 && sink_items > sink_groups,
		"sink: %zu outputs came in %zu calls, want groups", sink_items, sink_groups);
	for (size_t i = 0; i < v.lines.n; i++) {
		const char *nm = v.lines.name[i];
		size_t nl = strlen(nm);
		char want[600];

		if (nl > 0 && nm[nl - 1] == '3') {
			snprintf(want, sizeof(want), "fail|the sink is full");
			refused++;
		} else {
			snprintf(want, sizeof(want), "ok|kept %s", nm);
			kept++;
		}
		if (v.lines.len[i] != strlen(want) ||
		    memcmp(v.lines.data[i], want, strlen(want)) != 0)
			bad++;
	}
	T_CHECK(refused > 0 && kept > 0 && bad == 0 && outs.n == kept && kept + refused == mail->n,
		"sink: %zu refused, %zu kept (%zu outputs), %zu wrong verdicts, %zu mails", refused,
		kept, outs.n, bad, mail->n);
	set_free(&v.lines);
	set_free(&outs);
}

/* ---- generated mail ---- */

static uint32_t rng = 12345;

static uint32_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static void
gen_mail(struct msgset *s, size_t i)
{
	size_t body = (i % 10 == 0) ? 0 : rnd() % (i % 7 == 0 ? 60000 : 4000);
	size_t cap = body + 2048, n = 0;
	char *m = malloc(cap), name[64];

	if (m == NULL)
		abort();
	if (i % 13 != 0)
		n += (size_t)snprintf(
		    m + n, cap - n,
		    "From: a1@alpha.example\r\nTo: b1@beta.example\r\n"
		    "Subject: message %zu\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\n",
		    i);
	if (i % 5 == 0)
		n += (size_t)snprintf(
		    m + n, cap - n,
		    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
		    "boundary=\"b%zu\"\r\n\r\n--b%zu\r\nContent-Type: text/plain\r\n\r\n"
		    "hello\r\n--b%zu\r\nContent-Type: application/octet-stream\r\n\r\n",
		    i, i, i);
	else
		n += (size_t)snprintf(m + n, cap - n, "\r\n");
	for (size_t k = 0; k < body; k++)
		m[n++] = (i % 3 == 0) ? (char)(rnd() & 0xff) : (char)('a' + rnd() % 26);
	if (i % 5 == 0)
		n += (size_t)snprintf(m + n, cap - n, "\r\n--b%zu--\r\n", i);
	snprintf(name, sizeof(name), "gen-%05zu", i);
	set_add(s, name, (uint8_t *)m, n);
	free(m);
}

static void
load_corpus(struct msgset *s)
{
	const char *dir = getenv("DIME_CORPUS_DIR");
	struct dirent **ents = NULL;
	int n;
	size_t taken = 0;

	if (dir == NULL)
		return;
	n = scandir(dir, &ents, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		char path[4096], name[300];
		uint8_t *buf = NULL;
		size_t len = 0;

		if (ents[i]->d_name[0] != '.' && taken < N_CORPUS_MAX &&
		    (size_t)snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name) <
			sizeof(path) &&
		    dime_io_read_file(&buf, &len, path, 1u << 24) == 0) {
			snprintf(name, sizeof(name), "corpus-%s", ents[i]->d_name);
			set_add(s, name, buf, len);
			taken++;
		}
		free(buf);
		free(ents[i]);
	}
	free(ents);
	printf("corpus: %zu messages from %s\n", taken, dir);
}

/* Damaged copies: truncated, one bit flipped, foreign bytes. */
static void
add_damaged(struct msgset *dst, const struct msgset *src, size_t every, const char *tag)
{
	char foreign[64];

	for (size_t i = 0; i < src->n; i += every) {
		char name[300];
		uint8_t *b = malloc(src->len[i] + 1);

		if (b == NULL)
			abort();
		memcpy(b, src->data[i], src->len[i]);
		snprintf(name, sizeof(name), "%s-trunc-%s", tag, src->name[i]);
		set_add(dst, name, b, src->len[i] / 2);
		b[src->len[i] / 3] ^= 0x10;
		snprintf(name, sizeof(name), "%s-flip-%s", tag, src->name[i]);
		set_add(dst, name, b, src->len[i]);
		free(b);
	}
	snprintf(foreign, sizeof(foreign), "%s-foreign", tag);
	set_add(dst, foreign, (const uint8_t *)"not a message at all\n", 21);
}

/* ---- one at a time ---- */

static struct dime_pl_dir *dir;

/* What `dime msg` does for one input: the message path (dime/plmsg.h) with one job.
 * Out: *out (malloc'd) / line in buf. Returns 1 ok, 0 failed (why in buf). */
static int
single(enum dime_batch_op op, const uint8_t *raw, size_t raw_len, uint8_t **out, size_t *out_len,
       char *buf, size_t cap)
{
	enum dime_pl_msg_op pop =
	    op == DIME_BATCH_BOUNCE_VERIFY ? DIME_PL_MSG_BOUNCE_VERIFY : (enum dime_pl_msg_op)op;
	struct dime_pl_msg_conf c;
	struct dime_pl_msg *m = NULL;
	struct dime_pl_msg_worker *w = NULL;
	struct dime_pl_msg_job j;
	char swhy[DIME_PL_MSG_WHY_MAX];
	const char *why = "";
	uint8_t *in = NULL;
	size_t in_len = 0;
	int armored = 0, ok;

	*out = NULL;
	*out_len = 0;
	memset(&c, 0, sizeof(c));
	memset(&j, 0, sizeof(j));
	c.op = pop;
	c.as = DIME_ACTOR_RECIPIENT;
	if (dime_pl_msg_decode(&in, &in_len, &armored, &why, pop, 0, raw, raw_len) != DIME_OK) {
		snprintf(buf, cap, "fail|%s", why);
		return 0;
	}
	if (dime_pl_msg_new(&m, swhy, sizeof(swhy), dir, &c) != DIME_OK ||
	    dime_pl_msg_worker_new(&w, m, 1) != DIME_OK)
		abort();
	j.in = in;
	j.in_len = in_len;
	(void)dime_pl_msg_run(w, &j, 1);
	ok = j.rc == DIME_OK;
	snprintf(buf, cap, "%s|%s", ok ? "ok" : "fail", ok ? j.line : j.why);
	if (ok && j.line[0] == 0) {
		*out = j.out;
		*out_len = j.out_len;
		j.out = NULL;
		j.out_len = 0;
	}
	dime_pl_msg_job_clear(&j);
	dime_pl_msg_worker_free(w);
	dime_pl_msg_free(m);
	dime_wipe(in, in_len);
	free(in);
	return ok;
}

/* Every batch verdict and output equals the single call's. */
static void
compare(enum dime_batch_op op, const struct msgset *in, const struct msgset *outs,
	const struct verdicts *v, int armored_out)
{
	size_t mismatches = 0, fails = 0;

	for (size_t i = 0; i < in->n; i++) {
		char want[2048];
		uint8_t *out = NULL;
		size_t out_len = 0;
		ssize_t vi = set_find(&v->lines, in->name[i]), oi = set_find(outs, in->name[i]);
		int ok = single(op, in->data[i], in->len[i], &out, &out_len, want, sizeof(want));

		fails += !ok;
		if (vi < 0 || strlen(want) != v->lines.len[vi] ||
		    memcmp(want, v->lines.data[vi], v->lines.len[vi]) != 0) {
			if (mismatches++ < 5)
				t_fail("%s %s: batch says '%.*s', single says '%s'",
				       dime_batch_op_name(op), in->name[i],
				       vi < 0 ? 4 : (int)v->lines.len[vi],
				       vi < 0 ? "none" : (const char *)v->lines.data[vi], want);
		} else if (ok && op != DIME_BATCH_ACCEPT && op != DIME_BATCH_BOUNCE_VERIFY) {
			uint8_t *bin = NULL;
			size_t bin_len = 0;
			int arm = 0;
			const char *why = "";

			if (oi < 0) {
				t_fail("%s %s: no batch output", dime_batch_op_name(op),
				       in->name[i]);
			} else if (armored_out) {
				T_CHECK(dime_msg_unarmor(&bin, &bin_len, &arm, &why, outs->data[oi],
							 outs->len[oi], NULL) == DIME_OK &&
					    arm && bin_len == out_len &&
					    memcmp(bin, out, out_len) == 0,
					"%s %s: batch output differs", dime_batch_op_name(op),
					in->name[i]);
			} else {
				T_CHECK(outs->len[oi] == out_len &&
					    memcmp(outs->data[oi], out, out_len) == 0,
					"%s %s: batch output differs", dime_batch_op_name(op),
					in->name[i]);
			}
			free(bin);
		}
		if (out != NULL) {
			dime_wipe(out, out_len);
			free(out);
		}
	}
	printf("%s: %zu inputs, %zu rejected by both, %zu mismatches\n", dime_batch_op_name(op),
	       in->n, fails, mismatches);
}

static void
verdicts_init(struct verdicts *v, struct msgset *outs)
{
	memset(v, 0, sizeof(*v));
	memset(outs, 0, sizeof(*outs));
	pthread_mutex_init(&v->lines.mu, NULL);
	pthread_mutex_init(&outs->mu, NULL);
}

/* Bounce-verify in batch (it used to read past a table and abort under UBSan): bounces built
 * by the destination through the message path, armored and binary, plus damaged ones and
 * inputs that are not bounces, give exactly the single call's verdicts at several shapes, and
 * every intact bounce verifies. */
static void
test_bounce_verify(const struct msgset *wrapped)
{
	static const unsigned shapes[][2] = {{1, 1}, {2, 7}, {3, 32}};
	struct dime_pl_msg_conf c;
	struct dime_pl_msg *m = NULL;
	struct dime_pl_msg_worker *w = NULL;
	struct dime_batch_params par;
	struct msgset bounces, in, outs;
	struct verdicts v;
	char swhy[DIME_PL_MSG_WHY_MAX];
	size_t n_good = 0;

	memset(&c, 0, sizeof(c));
	c.op = DIME_PL_MSG_BOUNCE;
	c.code = DIME_BOUNCE_REFUSED;
	c.reason = "no such mailbox";
	if (dime_pl_msg_new(&m, swhy, sizeof(swhy), dir, &c) != DIME_OK ||
	    dime_pl_msg_worker_new(&w, m, 8) != DIME_OK) {
		t_fail("bounce: %s", swhy);
		return;
	}
	memset(&bounces, 0, sizeof(bounces));
	pthread_mutex_init(&bounces.mu, NULL);
	for (size_t i = 0; i < wrapped->n && i < 200; i++) {
		struct dime_pl_msg_job j;
		uint8_t *bin = NULL;
		size_t bin_len = 0;
		int arm = 0;
		const char *why = "";

		memset(&j, 0, sizeof(j));
		if (dime_msg_unarmor(&bin, &bin_len, &arm, &why, wrapped->data[i], wrapped->len[i],
				     NULL) != DIME_OK)
			continue;
		j.in = bin;
		j.in_len = bin_len;
		if (dime_pl_msg_bounce(w, &j, 1) != 0) {
			t_fail("bounce %s: %s", wrapped->name[i], j.why);
		} else if (i % 2 == 0) {
			char *a = NULL;
			size_t alen = 0;

			T_CHECK(dime_msg_armor(&a, &alen, j.out, j.out_len, DIME_BOUNCE_ARMOR_LABEL,
					       1) == DIME_OK,
				"armor a bounce");
			set_add(&bounces, wrapped->name[i], (const uint8_t *)a, alen);
			free(a);
		} else {
			set_add(&bounces, wrapped->name[i], j.out, j.out_len);
		}
		dime_pl_msg_job_clear(&j);
		free(bin);
	}
	dime_pl_msg_worker_free(w);
	dime_pl_msg_free(m);
	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		memset(&in, 0, sizeof(in));
		pthread_mutex_init(&in.mu, NULL);
		for (size_t i = 0; i < bounces.n; i++)
			set_add(&in, bounces.name[i], bounces.data[i], bounces.len[i]);
		add_damaged(&in, &bounces, 13, "bounce");
		set_add(&in, "bounce-empty", (const uint8_t *)"", 0);
		set_add(&in, "bounce-a-message", wrapped->data[0], wrapped->len[0]);
		memset(&par, 0, sizeof(par));
		par.op = DIME_BATCH_BOUNCE_VERIFY;
		verdicts_init(&v, &outs);
		run_batch(&outs, &v, &in, &par, shapes[s][0], shapes[s][1]);
		compare(DIME_BATCH_BOUNCE_VERIFY, &in, &outs, &v, 0);
		n_good = 0;
		for (size_t i = 0; i < v.lines.n; i++) {
			static const char want[] =
			    "ok|BOUNCE a1@alpha.example beta.example 2 no such mailbox";

			n_good += v.lines.len[i] == sizeof(want) - 1 &&
				  memcmp(v.lines.data[i], want, sizeof(want) - 1) == 0;
		}
		T_CHECK(n_good == bounces.n, "bounce-verify: %zu of %zu intact bounces verify",
			n_good, bounces.n);
		set_free(&v.lines);
		set_free(&outs);
		set_free(&in);
	}
	T_CHECK(bounces.n >= 100, "bounce-verify: only %zu bounces built", bounces.n);
	set_free(&bounces);
}

/* Run `dime --store S ARGS` quietly. */
static int
cli_run(const char *cli, const char *store, const char *args)
{
	char cmd[8192];

	snprintf(cmd, sizeof(cmd), "%s --store %s %s >/dev/null", cli, store, args);
	return system(cmd);
}

int
main(void)
{
	static const unsigned shapes[][2] = {{1, 1}, {2, 7}, {3, 32}};
	char spath[4200];
	const char *cli = DIME_CLI, *why = "";
	struct msgset mail, wrapped, unsigned_w, in, outs;
	struct dime_batch_params par;
	struct verdicts v;

	t_init();
	T_CHECK(dime_global_init() == DIME_OK, "init");
	if (t_mkdtemp("dime_batch") != 0)
		return 1;
	snprintf(spath, sizeof(spath), "%s", t_path("store.db"));
	store_path = spath;
	if (cli_run(cli, spath, "org create alpha.example") != 0 ||
	    cli_run(cli, spath, "org create beta.example") != 0 ||
	    cli_run(cli, spath, "user create a1@alpha.example") != 0 ||
	    cli_run(cli, spath, "user create b1@beta.example") != 0) {
		t_fail("cannot build the store with %s", cli);
		return t_done("test_batch");
	}
	T_CHECK(dime_pl_dir_open(&dir, spath, &why) == DIME_OK, "dir: %s", why);

	memset(&mail, 0, sizeof(mail));
	pthread_mutex_init(&mail.mu, NULL);
	for (size_t i = 0; i < N_GEN; i++)
		gen_mail(&mail, i);
	load_corpus(&mail);

	/* wrap + origin-sign, then open: the mail comes back byte for byte */
	memset(&par, 0, sizeof(par));
	par.op = DIME_BATCH_WRAP;
	par.from = "a1@alpha.example";
	par.to = "b1@beta.example";
	par.origin_sign = 1;
	verdicts_init(&v, &wrapped);
	run_batch(&wrapped, &v, &mail, &par, 2, 32);
	T_CHECK(wrapped.n == mail.n, "wrap: %zu outputs for %zu mails", wrapped.n, mail.n);
	set_free(&v.lines);
	sink_check(&mail, &par);
	t_stop(&mail);

	/* unsigned author output for the origin */
	par.origin_sign = 0;
	par.binary = 1;
	verdicts_init(&v, &unsigned_w);
	run_batch(&unsigned_w, &v, &mail, &par, 2, 32);
	set_free(&v.lines);

	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		unsigned wk = shapes[s][0], bt = shapes[s][1];

		printf("-- %u workers, batch %u\n", wk, bt);
		/* accept and open: the armored signed messages plus damaged ones */
		memset(&in, 0, sizeof(in));
		pthread_mutex_init(&in.mu, NULL);
		for (size_t i = 0; i < wrapped.n; i++)
			set_add(&in, wrapped.name[i], wrapped.data[i], wrapped.len[i]);
		add_damaged(&in, &wrapped, 97, "signed");
		add_damaged(&in, &unsigned_w, 101, "unsigned");

		memset(&par, 0, sizeof(par));
		par.op = DIME_BATCH_ACCEPT;
		verdicts_init(&v, &outs);
		run_batch(&outs, &v, &in, &par, wk, bt);
		compare(DIME_BATCH_ACCEPT, &in, &outs, &v, 0);
		set_free(&v.lines);
		set_free(&outs);

		par.op = DIME_BATCH_OPEN;
		par.as = DIME_ACTOR_RECIPIENT;
		verdicts_init(&v, &outs);
		run_batch(&outs, &v, &in, &par, wk, bt);
		compare(DIME_BATCH_OPEN, &in, &outs, &v, 0);
		/* and the mail is the original */
		for (size_t i = 0; i < mail.n; i++) {
			ssize_t oi = set_find(&outs, mail.name[i]);

			T_CHECK(oi >= 0 && outs.len[oi] == mail.len[i] &&
				    memcmp(outs.data[oi], mail.data[i], mail.len[i]) == 0,
				"open %s: not the original mail", mail.name[i]);
		}
		set_free(&v.lines);
		set_free(&outs);
		set_free(&in);

		/* origin-sign over author output (binary in, binary out) */
		memset(&in, 0, sizeof(in));
		pthread_mutex_init(&in.mu, NULL);
		for (size_t i = 0; i < unsigned_w.n; i++)
			set_add(&in, unsigned_w.name[i], unsigned_w.data[i], unsigned_w.len[i]);
		add_damaged(&in, &unsigned_w, 89, "author");
		par.op = DIME_BATCH_ORIGIN_SIGN;
		verdicts_init(&v, &outs);
		run_batch(&outs, &v, &in, &par, wk, bt);
		compare(DIME_BATCH_ORIGIN_SIGN, &in, &outs, &v, 0);
		set_free(&v.lines);
		set_free(&outs);
		set_free(&in);
	}
	test_bounce_verify(&wrapped);
	set_free(&mail);
	set_free(&wrapped);
	set_free(&unsigned_w);
	dime_pl_dir_close(dir);
	t_rm_rf(t_dir);
	return t_done("test_batch");
}

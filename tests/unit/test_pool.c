/* The worker pool (dime/pool.h): results identical to the message path run alone, over accept
 * and open jobs from several submitting threads; groups form under a burst; the deadline
 * flushes a lone job; back-pressure; cancellation; free drains. The store is made with the
 * dime CLI (DIME_CLI). */

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dime/crypto.h"
#include "dime/dir.h"
#include "dime/msg.h"
#include "dime/plmsg.h"
#include "dime/pool.h"
#include "tlib.h"

#define N_MSG	   16
#define N_GOOD	   12
#define N_THREADS  4
#define PER_THREAD 60
#define WAIT_S	   120 /* a bound on a hang, never a timing assertion */

static const char *cli = DIME_CLI;

enum { T_ACCEPT = 0, T_OPEN = 1 };

/* The inputs and what dime_pl_msg_run gives for each alone. */
struct want {
	int rc;
	char why[DIME_PL_MSG_WHY_MAX];
	char line[DIME_PL_MSG_LINE_MAX];
	uint8_t *out;
	size_t out_len;
};

static uint8_t *msgs[N_MSG];
static size_t msg_lens[N_MSG];
static struct want wants[2][N_MSG];
static struct dime_pl_msg *runs[2];

/* Completions arrive on workers (loop NULL): counted under a lock the main thread waits on. */
struct tstate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t done;
};

struct tjob {
	struct dime_pl_pool_job pj; /* first: done gets &pj */
	unsigned idx, kind;
	atomic_int ndone;
	int seq;	 /* completion order (done_seq) */
	pthread_t where; /* the thread done ran on */
};

static atomic_int done_seq;

static struct tstate ts = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static void
tjob_done(struct dime_pl_pool_job *j, void *arg)
{
	struct tjob *t = (struct tjob *)j;
	struct tstate *s = arg;

	atomic_fetch_add(&t->ndone, 1);
	t->seq = atomic_fetch_add(&done_seq, 1);
	t->where = pthread_self();
	pthread_mutex_lock(&s->mu);
	s->done++;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void
ts_reset(void)
{
	pthread_mutex_lock(&ts.mu);
	ts.done = 0;
	pthread_mutex_unlock(&ts.mu);
}

/* Wait until n completions were counted (bounded: a hang fails instead of blocking CI). */
static int
ts_wait(size_t n)
{
	struct timespec dl;
	int ok;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += WAIT_S;
	pthread_mutex_lock(&ts.mu);
	while (ts.done < n && pthread_cond_timedwait(&ts.cv, &ts.mu, &dl) == 0)
		;
	ok = ts.done >= n;
	pthread_mutex_unlock(&ts.mu);
	return ok;
}

static size_t
ts_count(void)
{
	size_t n;

	pthread_mutex_lock(&ts.mu);
	n = ts.done;
	pthread_mutex_unlock(&ts.mu);
	return n;
}

static void
tjob_init(struct tjob *t, unsigned idx, unsigned kind)
{
	memset(t, 0, sizeof(*t));
	t->idx = idx;
	t->kind = kind;
	t->pj.mj.in = msgs[idx];
	t->pj.mj.in_len = msg_lens[idx];
	t->pj.done = tjob_done;
	t->pj.arg = &ts;
}

/* The job's results against the run alone; clears the job's output. */
static void
tjob_check(struct tjob *t, const char *what)
{
	const struct want *w = &wants[t->kind][t->idx];
	const struct dime_pl_msg_job *j = &t->pj.mj;

	T_CHECK(atomic_load(&t->ndone) == 1, "%s: job %u: done ran %d times, want 1", what, t->idx,
		atomic_load(&t->ndone));
	T_CHECK(j->rc == w->rc, "%s: job %u (%s): rc got %d, want %d", what, t->idx,
		t->kind == T_OPEN ? "open" : "accept", j->rc, w->rc);
	T_CHECK(j->why != NULL && strcmp(j->why, w->why) == 0,
		"%s: job %u: why got '%s', want '%s'", what, t->idx, j->why ? j->why : "(null)",
		w->why);
	T_CHECK(strcmp(j->line, w->line) == 0, "%s: job %u: line got '%s', want '%s'", what, t->idx,
		j->line, w->line);
	T_CHECK(
	    j->out_len == w->out_len &&
		(w->out_len == 0 || (j->out != NULL && memcmp(j->out, w->out, w->out_len) == 0)),
	    "%s: job %u: output differs (%zu bytes, want %zu)", what, t->idx, j->out_len,
	    w->out_len);
	dime_pl_msg_job_clear(&t->pj.mj);
}

/* ---- a gate: a pool call that holds its worker until opened ---- */

struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int entered, open;
	struct dime_pl_pool_job pj;
	int ndone;
};

static void
gate_run(struct dime_pl_pool_job *j, void *arg)
{
	struct gate *g = arg;

	(void)j;
	pthread_mutex_lock(&g->mu);
	g->entered = 1;
	pthread_cond_broadcast(&g->cv);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void
gate_done(struct dime_pl_pool_job *j, void *arg)
{
	struct gate *g = arg;

	(void)j;
	pthread_mutex_lock(&g->mu);
	g->ndone++;
	pthread_mutex_unlock(&g->mu);
}

/* Queue the gate and wait until a worker sits in it. Returns 1 on success. */
static int
gate_block(struct dime_pl_pool *p, struct gate *g)
{
	int ok;

	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	g->pj.run = gate_run;
	g->pj.done = gate_done;
	g->pj.arg = g;
	if (dime_pl_pool_call(p, &g->pj, NULL) != DIME_OK)
		return 0;
	pthread_mutex_lock(&g->mu);
	while (!g->entered)
		pthread_cond_wait(&g->cv, &g->mu);
	ok = g->entered;
	pthread_mutex_unlock(&g->mu);
	return ok;
}

static void
gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->open = 1;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

static int
gate_fini(struct gate *g)
{
	int n;

	pthread_mutex_lock(&g->mu);
	n = g->ndone;
	pthread_mutex_unlock(&g->mu);
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
	return n;
}

/* ---- setup ---- */

static int
run_cli(const char *store, const char *args)
{
	char cmd[8192];

	snprintf(cmd, sizeof(cmd), "%s --store %s %s >/dev/null 2>&1", cli, store, args);
	return system(cmd);
}

static struct dime_pl_msg_conf
conf_of(enum dime_pl_msg_op op)
{
	struct dime_pl_msg_conf c;

	memset(&c, 0, sizeof(c));
	c.op = op;
	c.as = DIME_ACTOR_RECIPIENT;
	return c;
}

/* N_GOOD signed messages with different mail, then damaged copies and junk. */
static int
make_msgs(struct dime_pl_dir *dir)
{
	struct dime_pl_msg_conf c = conf_of(DIME_PL_MSG_WRAP);
	struct dime_pl_msg *m = NULL;
	struct dime_pl_msg_worker *w = NULL;
	struct dime_pl_msg_job j;
	char why[DIME_PL_MSG_WHY_MAX], mail[512];
	int ok = 1;

	c.from = "alice@alpha.test";
	c.to = "bob@beta.test";
	c.origin_sign = 1;
	if (dime_pl_msg_new(&m, why, sizeof(why), dir, &c) != DIME_OK ||
	    dime_pl_msg_worker_new(&w, m, 1) != DIME_OK) {
		t_fail("wrap setup: %s", why);
		dime_pl_msg_free(m);
		return 0;
	}
	for (unsigned i = 0; i < N_GOOD && ok; i++) {
		int n =
		    snprintf(mail, sizeof(mail),
			     "From: alice@alpha.test\r\nTo: bob@beta.test\r\nSubject: %u\r\n\r\n"
			     "message %u of the pool test\r\n",
			     i, i * 7919u);

		memset(&j, 0, sizeof(j));
		j.in = (const uint8_t *)mail;
		j.in_len = (size_t)n;
		(void)dime_pl_msg_run(w, &j, 1);
		if (j.rc != DIME_OK) {
			t_fail("wrap %u: %s", i, j.why);
			ok = 0;
			break;
		}
		msgs[i] = j.out;
		msg_lens[i] = j.out_len;
	}
	dime_pl_msg_worker_free(w);
	dime_pl_msg_free(m);
	if (!ok)
		return 0;
	/* damaged copies at different places, and bytes that are no message at all */
	for (unsigned i = N_GOOD; i < N_MSG; i++) {
		const uint8_t *src = msgs[i - N_GOOD];
		size_t len = msg_lens[i - N_GOOD];

		if (i == N_MSG - 1)
			len = 40;
		if ((msgs[i] = malloc(len)) == NULL)
			return 0;
		memcpy(msgs[i], src, len);
		msg_lens[i] = len;
		if (i == N_MSG - 1)
			memset(msgs[i], 'x', len);
		else
			msgs[i][len * (i - N_GOOD + 1) / 5] ^= 0x20;
	}
	return 1;
}

/* The reference: each message through a fresh worker, alone. */
static void
make_wants(void)
{
	for (unsigned k = 0; k < 2; k++) {
		struct dime_pl_msg_worker *w = NULL;

		if (dime_pl_msg_worker_new(&w, runs[k], 1) != DIME_OK) {
			t_fail("reference worker");
			return;
		}
		for (unsigned i = 0; i < N_MSG; i++) {
			struct dime_pl_msg_job j;
			struct want *x = &wants[k][i];

			memset(&j, 0, sizeof(j));
			j.in = msgs[i];
			j.in_len = msg_lens[i];
			(void)dime_pl_msg_run(w, &j, 1);
			x->rc = j.rc;
			snprintf(x->why, sizeof(x->why), "%s", j.why ? j.why : "");
			snprintf(x->line, sizeof(x->line), "%s", j.line);
			x->out = j.out;
			x->out_len = j.out_len;
		}
		dime_pl_msg_worker_free(w);
	}
	/* the table must mean something: good messages pass, the others fail */
	T_CHECK(wants[T_ACCEPT][0].rc == DIME_OK &&
		    strncmp(wants[T_ACCEPT][0].line, "ACCEPT ", 7) == 0,
		"reference accept: got '%s'", wants[T_ACCEPT][0].line);
	T_CHECK(wants[T_OPEN][0].rc == DIME_OK && wants[T_OPEN][0].out_len > 0,
		"reference open: %s", wants[T_OPEN][0].why);
	T_CHECK(wants[T_ACCEPT][N_MSG - 1].rc != DIME_OK && wants[T_OPEN][N_MSG - 1].rc != DIME_OK,
		"reference: junk passed");
}

static struct dime_pl_pool *
pool_of(unsigned workers, size_t batch, unsigned deadline_us, size_t queue_max, unsigned lane[2])
{
	struct dime_pl_pool_conf c = {workers, batch, deadline_us, queue_max};
	struct dime_pl_pool *p = NULL;

	if (dime_pl_pool_new(&p, &c) != DIME_OK) {
		t_fail("pool_new");
		return NULL;
	}
	if (dime_pl_pool_lane(p, &lane[T_ACCEPT], runs[T_ACCEPT]) != DIME_OK ||
	    dime_pl_pool_lane(p, &lane[T_OPEN], runs[T_OPEN]) != DIME_OK) {
		t_fail("pool_lane");
		dime_pl_pool_free(p);
		return NULL;
	}
	return p;
}

/* ---- many jobs from several threads ---- */

struct submitter {
	pthread_t tid;
	struct dime_pl_pool *p;
	const unsigned *lane;
	struct tjob *jobs;
	unsigned seed;
	size_t again;
};

static void *
submitter_main(void *arg)
{
	struct submitter *s = arg;

	for (unsigned i = 0; i < PER_THREAD; i++) {
		struct tjob *t = &s->jobs[i];
		unsigned kind = (i + s->seed) % 2;
		int rc;

		tjob_init(t, (i * 5 + s->seed) % N_MSG, kind);
		while ((rc = dime_pl_pool_submit(s->p, s->lane[kind], &t->pj, NULL)) ==
		       DIME_E_AGAIN) {
			struct timespec us = {0, 100000};

			s->again++;
			nanosleep(&us, NULL);
		}
		if (rc != DIME_OK)
			atomic_store(&t->ndone, -100); /* reported by the main thread */
	}
	return NULL;
}

static void
test_many_threads(void)
{
	unsigned lane[2];
	struct dime_pl_pool *p = pool_of(2, 8, 500, 32, lane);
	struct submitter s[N_THREADS];
	struct dime_pl_pool_stats st;
	size_t total = (size_t)N_THREADS * PER_THREAD, again = 0;
	unsigned started = 0;

	if (p == NULL)
		return;
	ts_reset();
	memset(s, 0, sizeof(s));
	for (unsigned i = 0; i < N_THREADS; i++) {
		s[i].p = p;
		s[i].lane = lane;
		s[i].seed = i;
		s[i].jobs = calloc(PER_THREAD, sizeof(*s[i].jobs));
		if (s[i].jobs == NULL ||
		    pthread_create(&s[i].tid, NULL, submitter_main, &s[i]) != 0)
			break;
		started++;
	}
	T_CHECK(started == N_THREADS, "started %u submitters", started);
	for (unsigned i = 0; i < started; i++) {
		pthread_join(s[i].tid, NULL);
		again += s[i].again;
	}
	T_CHECK(ts_wait((size_t)started * PER_THREAD), "many threads: %zu of %zu completed",
		ts_count(), (size_t)started * PER_THREAD);
	dime_pl_pool_stats(p, &st);
	dime_pl_pool_free(p);
	for (unsigned i = 0; i < started; i++)
		for (unsigned k = 0; k < PER_THREAD; k++)
			tjob_check(&s[i].jobs[k], "many threads");
	T_CHECK(st.jobs == total && st.queued == 0 && st.cancelled == 0,
		"stats: jobs %llu (want %zu), queued %zu", (unsigned long long)st.jobs, total,
		st.queued);
	T_CHECK(st.rejected_full == again, "rejected_full %llu, submitters saw %zu",
		(unsigned long long)st.rejected_full, again);
	printf("many threads: %zu jobs in %llu groups, %zu refused (queue full) and resubmitted\n",
	       total, (unsigned long long)st.groups, again);
	for (unsigned i = 0; i < N_THREADS; i++)
		free(s[i].jobs);
}

/* ---- a burst forms full groups ---- */

static void
test_groups_form(void)
{
	unsigned lane[2];
	/* a deadline far beyond the test: only full groups (or free) can flush the lane */
	struct dime_pl_pool *p = pool_of(1, 16, 30000000u, 0, lane);
	struct tjob jobs[64];
	struct dime_pl_pool_stats st;
	struct gate g;

	if (p == NULL)
		return;
	ts_reset();
	T_CHECK(gate_block(p, &g), "gate");
	for (unsigned i = 0; i < 64; i++) {
		tjob_init(&jobs[i], i % N_MSG, T_ACCEPT);
		T_CHECK(dime_pl_pool_submit(p, lane[T_ACCEPT], &jobs[i].pj, NULL) == DIME_OK,
			"burst submit %u", i);
	}
	gate_open(&g);
	T_CHECK(ts_wait(64), "burst: %zu of 64 completed", ts_count());
	dime_pl_pool_stats(p, &st);
	T_CHECK(st.groups == 4 && st.jobs == 64, "burst: %llu groups for %llu jobs, want 4 for 64",
		(unsigned long long)st.groups, (unsigned long long)st.jobs);
	dime_pl_pool_free(p);
	T_CHECK(gate_fini(&g) == 1, "gate done once");
	for (unsigned i = 0; i < 64; i++)
		tjob_check(&jobs[i], "burst");
}

/* ---- a lane's pending jobs (a retired lane's run may go once it reads 0) ---- */

static void
test_lane_pending(void)
{
	unsigned lane[2];
	/* a deadline far beyond the test: 3 jobs wait in the lane until the group is full */
	struct dime_pl_pool *p = pool_of(1, 16, 30000000u, 0, lane);
	struct tjob jobs[16];
	size_t n;

	if (p == NULL)
		return;
	ts_reset();
	for (unsigned i = 0; i < 16; i++)
		tjob_init(&jobs[i], i % N_MSG, T_ACCEPT);
	for (unsigned i = 0; i < 3; i++)
		T_CHECK(dime_pl_pool_submit(p, lane[T_ACCEPT], &jobs[i].pj, NULL) == DIME_OK,
			"submit %u", i);
	n = dime_pl_pool_lane_pending(p, lane[T_ACCEPT]);
	T_CHECK(n == 3, "pending: got %zu, want 3", n);
	n = dime_pl_pool_lane_pending(p, lane[T_OPEN]) + dime_pl_pool_lane_pending(p, 99);
	T_CHECK(n == 0, "other and unknown lanes: got %zu pending, want 0", n);
	for (unsigned i = 3; i < 16; i++)
		T_CHECK(dime_pl_pool_submit(p, lane[T_ACCEPT], &jobs[i].pj, NULL) == DIME_OK,
			"submit %u", i);
	T_CHECK(ts_wait(16), "pending: %zu of 16 completed", ts_count());
	/* completions without a loop run after the group's count is taken back */
	n = dime_pl_pool_lane_pending(p, lane[T_ACCEPT]);
	T_CHECK(n == 0, "pending after the group: got %zu, want 0", n);
	dime_pl_pool_free(p);
	for (unsigned i = 0; i < 16; i++)
		tjob_check(&jobs[i], "pending");
}

/* ---- the deadline flushes a lone job ---- */

static void
test_deadline(void)
{
	unsigned lane[2];
	struct dime_pl_pool *p = pool_of(1, 32, 1000, 0, lane);
	struct dime_pl_pool_stats st;
	struct tjob t;

	if (p == NULL)
		return;
	ts_reset();
	tjob_init(&t, 0, T_OPEN);
	T_CHECK(dime_pl_pool_submit(p, lane[T_OPEN], &t.pj, NULL) == DIME_OK, "lone submit");
	T_CHECK(ts_wait(1), "the lone job never completed");
	dime_pl_pool_stats(p, &st);
	T_CHECK(st.groups == 1 && st.jobs == 1, "lone job: %llu groups, %llu jobs, want 1 and 1",
		(unsigned long long)st.groups, (unsigned long long)st.jobs);
	dime_pl_pool_free(p);
	tjob_check(&t, "lone job");
}

/* ---- fairness: the lane whose oldest job is oldest goes first ---- */

static void
test_fairness(void)
{
	unsigned lane[2];
	struct dime_pl_pool *p = pool_of(1, 32, 1000, 0, lane);
	struct tjob jobs[3];
	struct timespec past = {0, 20000000}; /* both lanes' deadlines have passed after it */
	struct gate g;

	if (p == NULL)
		return;
	ts_reset();
	T_CHECK(gate_block(p, &g), "gate");
	tjob_init(&jobs[0], 0, T_OPEN);
	tjob_init(&jobs[1], 1, T_ACCEPT);
	tjob_init(&jobs[2], 2, T_ACCEPT);
	T_CHECK(dime_pl_pool_submit(p, lane[T_OPEN], &jobs[0].pj, NULL) == DIME_OK, "submit");
	nanosleep(&past, NULL);
	/* the accept lane now has more jobs, but the open lane's job is older */
	T_CHECK(dime_pl_pool_submit(p, lane[T_ACCEPT], &jobs[1].pj, NULL) == DIME_OK, "submit");
	T_CHECK(dime_pl_pool_submit(p, lane[T_ACCEPT], &jobs[2].pj, NULL) == DIME_OK, "submit");
	nanosleep(&past, NULL);
	gate_open(&g);
	T_CHECK(ts_wait(3), "fairness: %zu of 3 completed", ts_count());
	dime_pl_pool_free(p);
	(void)gate_fini(&g);
	T_CHECK(jobs[0].seq < jobs[1].seq && jobs[0].seq < jobs[2].seq,
		"the older lane ran after the younger one (order %d, %d, %d)", jobs[0].seq,
		jobs[1].seq, jobs[2].seq);
	for (unsigned i = 0; i < 3; i++)
		tjob_check(&jobs[i], "fairness");
}

/* ---- back-pressure ---- */

static void
test_backpressure(void)
{
	unsigned lane[2];
	struct dime_pl_pool *p = pool_of(1, 4, 1000, 8, lane);
	struct dime_pl_pool_stats st;
	struct tjob jobs[9];
	struct gate g;

	if (p == NULL)
		return;
	ts_reset();
	T_CHECK(gate_block(p, &g), "gate");
	for (unsigned i = 0; i < 9; i++)
		tjob_init(&jobs[i], i % N_MSG, i % 2);
	for (unsigned i = 0; i < 8; i++)
		T_CHECK(dime_pl_pool_submit(p, lane[i % 2], &jobs[i].pj, NULL) == DIME_OK,
			"submit %u under the limit", i);
	T_CHECK(dime_pl_pool_submit(p, lane[T_OPEN], &jobs[8].pj, NULL) == DIME_E_AGAIN,
		"submit past queue_max: want DIME_E_AGAIN");
	dime_pl_pool_stats(p, &st);
	T_CHECK(st.rejected_full == 1 && st.queued == 8, "full: rejected %llu, queued %zu",
		(unsigned long long)st.rejected_full, st.queued);
	gate_open(&g);
	T_CHECK(ts_wait(8), "back-pressure: %zu of 8 completed", ts_count());
	dime_pl_pool_free(p);
	T_CHECK(gate_fini(&g) == 1, "gate done once");
	for (unsigned i = 0; i < 8; i++)
		tjob_check(&jobs[i], "back-pressure");
	T_CHECK(atomic_load(&jobs[8].ndone) == 0, "a refused job completed");
}

/* ---- cancellation ---- */

static void
test_cancel(void)
{
	unsigned lane[2];
	struct dime_pl_pool *p = pool_of(1, 32, 1000, 0, lane);
	struct dime_pl_pool_stats st;
	struct tjob jobs[3];
	struct gate g;

	if (p == NULL)
		return;
	ts_reset();
	T_CHECK(gate_block(p, &g), "gate");
	for (unsigned i = 0; i < 3; i++) {
		tjob_init(&jobs[i], i, T_ACCEPT);
		T_CHECK(dime_pl_pool_submit(p, lane[T_ACCEPT], &jobs[i].pj, NULL) == DIME_OK,
			"submit %u", i);
	}
	dime_pl_pool_cancel(p, &jobs[1].pj);
	T_CHECK(atomic_load(&jobs[1].ndone) == 1 && jobs[1].pj.mj.rc == DIME_E_AGAIN &&
		    strcmp(jobs[1].pj.mj.why, "cancelled") == 0 && jobs[1].pj.mj.line[0] == 0,
		"cancelled job: done %d, rc %d, why '%s'", atomic_load(&jobs[1].ndone),
		jobs[1].pj.mj.rc, jobs[1].pj.mj.why ? jobs[1].pj.mj.why : "(null)");
	dime_pl_pool_cancel(p, &jobs[1].pj); /* already completed: nothing happens */
	dime_pl_pool_cancel(p, &g.pj);	     /* running: completes normally */
	dime_pl_pool_stats(p, &st);
	T_CHECK(st.cancelled == 1 && st.queued == 2, "cancel: cancelled %llu, queued %zu",
		(unsigned long long)st.cancelled, st.queued);
	gate_open(&g);
	T_CHECK(ts_wait(3), "cancel: %zu of 3 completed", ts_count());
	dime_pl_pool_free(p);
	T_CHECK(gate_fini(&g) == 1, "the running call completes once");
	T_CHECK(atomic_load(&jobs[1].ndone) == 1, "cancelled job: done ran %d times",
		atomic_load(&jobs[1].ndone));
	tjob_check(&jobs[0], "cancel, before");
	tjob_check(&jobs[2], "cancel, after");
}

/* ---- free drains the queue ---- */

static void
test_free_drains(void)
{
	unsigned lane[2];
	struct dime_pl_pool *p = pool_of(1, 32, 30000000u, 0, lane);
	struct dime_pl_pool_stats st;
	struct dime_pl_pool_job bad;
	struct tjob jobs[20];

	if (p == NULL)
		return;
	ts_reset();
	for (unsigned i = 0; i < 20; i++) {
		tjob_init(&jobs[i], i % N_MSG, i % 2);
		T_CHECK(dime_pl_pool_submit(p, lane[i % 2], &jobs[i].pj, NULL) == DIME_OK,
			"submit %u", i);
	}
	/* bad calls take nothing */
	memset(&bad, 0, sizeof(bad));
	bad.done = tjob_done;
	bad.arg = &ts;
	T_CHECK(dime_pl_pool_submit(p, 7, &bad, NULL) == DIME_E_INVALID, "unknown lane");
	T_CHECK(dime_pl_pool_call(p, &bad, NULL) == DIME_E_INVALID, "call without run");
	dime_pl_pool_stats(p, &st);
	/* neither lane is full and the deadline is far: everything still waits */
	T_CHECK(st.groups == 0 && st.queued == 20, "before free: %llu groups, %zu queued",
		(unsigned long long)st.groups, st.queued);
	dime_pl_pool_free(p);
	T_CHECK(ts_count() == 20, "free drained %zu of 20", ts_count());
	for (unsigned i = 0; i < 20; i++)
		tjob_check(&jobs[i], "free drains");
}

/* ---- completions on a real loop: posted to its thread, cancel included ---- */

struct tloop {
	pthread_t tid;
	struct dime_io_loop *l;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int ready, rc, may_free;
};

static void *
tloop_main(void *arg)
{
	struct tloop *t = arg;
	struct dime_io_loop *l = NULL;
	int rc = dime_io_loop_new(&l, DIME_IO_AUTO);

	pthread_mutex_lock(&t->mu);
	t->l = l;
	t->rc = rc;
	t->ready = 1;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	if (rc == DIME_OK) {
		if (dime_io_loop_run(l) != DIME_OK)
			t->rc = DIME_E_IO;
		/* run can return while dime_io_loop_stop, on the main thread, still writes the
		 * loop's wake-up fd: free only once that call has returned */
		pthread_mutex_lock(&t->mu);
		while (!t->may_free)
			pthread_cond_wait(&t->cv, &t->mu);
		pthread_mutex_unlock(&t->mu);
		dime_io_loop_free(l);
	}
	return NULL;
}

static void
test_real_loop(void)
{
	unsigned lane[2];
	struct dime_pl_pool *p;
	struct tloop tl = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	struct tjob jobs[10];
	struct gate g;

	if (pthread_create(&tl.tid, NULL, tloop_main, &tl) != 0) {
		t_fail("loop thread");
		return;
	}
	pthread_mutex_lock(&tl.mu);
	while (!tl.ready)
		pthread_cond_wait(&tl.cv, &tl.mu);
	pthread_mutex_unlock(&tl.mu);
	if (tl.rc != DIME_OK) {
		t_fail("dime_io_loop_new: %d", tl.rc);
		pthread_join(tl.tid, NULL);
		return;
	}
	if ((p = pool_of(1, 8, 1000, 0, lane)) == NULL) {
		dime_io_loop_stop(tl.l);
		pthread_mutex_lock(&tl.mu);
		tl.may_free = 1;
		pthread_cond_broadcast(&tl.cv);
		pthread_mutex_unlock(&tl.mu);
		pthread_join(tl.tid, NULL);
		return;
	}
	ts_reset();
	T_CHECK(gate_block(p, &g), "gate");
	for (unsigned i = 0; i < 10; i++) {
		tjob_init(&jobs[i], i % N_MSG, i % 2);
		T_CHECK(dime_pl_pool_submit(p, lane[i % 2], &jobs[i].pj, tl.l) == DIME_OK,
			"submit %u with a loop", i);
	}
	dime_pl_pool_cancel(p, &jobs[3].pj);
	gate_open(&g);
	T_CHECK(ts_wait(10), "loop: %zu of 10 completed", ts_count());
	dime_pl_pool_free(p);
	dime_io_loop_stop(tl.l);
	pthread_mutex_lock(&tl.mu);
	tl.may_free = 1;
	pthread_cond_broadcast(&tl.cv);
	pthread_mutex_unlock(&tl.mu);
	pthread_join(tl.tid, NULL);
	T_CHECK(tl.rc == DIME_OK, "dime_io_loop_run failed");
	(void)gate_fini(&g);
	for (unsigned i = 0; i < 10; i++)
		T_CHECK(pthread_equal(jobs[i].where, tl.tid),
			"job %u: done ran off the loop thread", i);
	T_CHECK(atomic_load(&jobs[3].ndone) == 1 && jobs[3].pj.mj.rc == DIME_E_AGAIN &&
		    strcmp(jobs[3].pj.mj.why, "cancelled") == 0,
		"cancelled job on a loop: done %d, rc %d", atomic_load(&jobs[3].ndone),
		jobs[3].pj.mj.rc);
	for (unsigned i = 0; i < 10; i++)
		if (i != 3)
			tjob_check(&jobs[i], "loop");
}

static void
test_conf(void)
{
	struct dime_pl_pool_conf c = {1, 5000, 0, 0};
	struct dime_pl_pool *p = (struct dime_pl_pool *)&c;

	T_CHECK(dime_pl_pool_new(&p, &c) == DIME_E_INVALID && p == NULL, "batch_max 5000 accepted");
	dime_pl_pool_free(NULL);
}

int
main(void)
{
	char store[4200], why[DIME_PL_MSG_WHY_MAX];
	struct dime_pl_dir *dir = NULL;
	struct dime_pl_msg_conf c;
	const char *dwhy = "";

	t_init();
	if (t_mkdtemp("dime_pool") != 0)
		return 1;
	snprintf(store, sizeof(store), "%s", t_path("store.db"));
	if (run_cli(store, "org create alpha.test") != 0 ||
	    run_cli(store, "org create beta.test") != 0 ||
	    run_cli(store, "user create alice@alpha.test") != 0 ||
	    run_cli(store, "user create bob@beta.test") != 0) {
		t_fail("cannot build the store with %s", cli);
		return t_done("test_pool");
	}
	if (dime_pl_dir_open(&dir, store, &dwhy) != DIME_OK) {
		t_fail("dir: %s", dwhy);
		return t_done("test_pool");
	}
	c = conf_of(DIME_PL_MSG_ACCEPT);
	if (!make_msgs(dir) ||
	    dime_pl_msg_new(&runs[T_ACCEPT], why, sizeof(why), dir, &c) != DIME_OK) {
		t_fail("setup: %s", why);
		return t_done("test_pool");
	}
	c = conf_of(DIME_PL_MSG_OPEN);
	if (dime_pl_msg_new(&runs[T_OPEN], why, sizeof(why), dir, &c) != DIME_OK) {
		t_fail("setup: %s", why);
		return t_done("test_pool");
	}
	make_wants();
	test_conf();
	test_many_threads();
	test_groups_form();
	test_lane_pending();
	test_deadline();
	test_fairness();
	test_backpressure();
	test_cancel();
	test_free_drains();
	test_real_loop();
	for (unsigned k = 0; k < 2; k++) {
		for (unsigned i = 0; i < N_MSG; i++)
			dime_msg_free(wants[k][i].out, wants[k][i].out_len);
		dime_pl_msg_free(runs[k]);
	}
	for (unsigned i = 0; i < N_MSG; i++)
		dime_msg_free(msgs[i], msg_lens[i]);
	dime_pl_dir_close(dir);
	t_rm_rf(t_dir);
	return t_done("test_pool");
}

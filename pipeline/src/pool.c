/* The worker pool (dime/pool.h, docs/pool.md): jobs queued per lane under one lock; a worker
 * takes up to batch_max jobs of the lane whose oldest job is oldest, once that lane is full or
 * its oldest job has waited deadline_us, runs them as one message-path group and posts each
 * completion to the submitter's loop. */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef DIME_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include "dime/crypto.h"
#include "dime/pool.h"
#include "pool_thread.h"

#define POOL_WORKERS_MAX 1024u
#define POOL_BATCH_MAX	 1024u
#define POOL_CALL_LANE	 0xffffffffu /* j->lane of a dime_pl_pool_call job */

/* j->state, under the lock: QUEUED until a worker takes it (or cancel does), then RUNNING,
 * which it stays after completion (the caller's again) until submitted anew. */
enum pool_state { POOL_J_NEW = 0, POOL_J_QUEUED, POOL_J_RUNNING };

/* A FIFO of jobs through their next pointers. */
struct pool_fifo {
	struct dime_pl_pool_job *head, *tail;
	size_t n;
};

struct pool_lane {
	const struct dime_pl_msg *m;
	struct pool_fifo q;
	size_t running; /* jobs taken by a worker and not yet completed */
};

struct pool_worker {
	struct dime_pl_pool *p;
	pthread_t tid;
	struct dime_pl_msg_worker **pw; /* per lane, made on first use */
	unsigned n_pw;
	struct dime_pl_msg_job *mj;  /* the group as dime_pl_msg_run takes it: batch_max */
	struct dime_pl_pool_job **g; /* the group's pool jobs: batch_max */
};

struct dime_pl_pool {
	pthread_mutex_t mu;
	pthread_cond_t work; /* a job arrived, a deadline may have passed, or stopping */
	struct pool_lane **lanes;
	unsigned n_lanes, cap_lanes;
	struct pool_fifo calls;
	size_t queued, queue_max, batch_max;
	uint64_t deadline_ns;
	int stopping;
	struct dime_pl_pool_stats st;
	struct pool_worker *w;
	unsigned n_workers, started;
};

void
dime_pl_thread_start(void)
{
#ifdef DIME_HAVE_JEMALLOC
	unsigned arena = 0;
	size_t sz = sizeof(arena);

	if (mallctl("arenas.create", &arena, &sz, NULL, 0) == 0)
		(void)mallctl("thread.arena", NULL, NULL, &arena, sizeof(arena));
#endif
}

static uint64_t
pool_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void
pool_fifo_push(struct pool_fifo *f, struct dime_pl_pool_job *j)
{
	j->next = NULL;
	if (f->tail != NULL)
		f->tail->next = j;
	else
		f->head = j;
	f->tail = j;
	f->n++;
}

static struct dime_pl_pool_job *
pool_fifo_pop(struct pool_fifo *f)
{
	struct dime_pl_pool_job *j = f->head;

	if (j == NULL)
		return NULL;
	f->head = j->next;
	if (f->head == NULL)
		f->tail = NULL;
	f->n--;
	j->next = NULL;
	return j;
}

/* Unlink j from f. Returns 1 when it was there. */
static int
pool_fifo_remove(struct pool_fifo *f, struct dime_pl_pool_job *j)
{
	struct dime_pl_pool_job *prev = NULL;

	for (struct dime_pl_pool_job *c = f->head; c != NULL; prev = c, c = c->next) {
		if (c != j)
			continue;
		if (prev == NULL)
			f->head = c->next;
		else
			prev->next = c->next;
		if (f->tail == c)
			f->tail = prev;
		f->n--;
		c->next = NULL;
		return 1;
	}
	return 0;
}

/* ---- completion ---- */

static void
pool_done_on_loop(void *arg)
{
	struct dime_pl_pool_job *j = arg;

	j->done(j, j->arg);
}

/* Hand j back: on its loop, or here. j belongs to the caller again once done is called. */
static void
pool_complete(struct dime_pl_pool_job *j)
{
	struct dime_io_loop *loop = j->loop;

	if (loop == NULL) {
		j->done(j, j->arg);
		return;
	}
	/* Out of memory for the post: done must still run exactly once, and on the loop's
	 * thread, so wait for memory rather than drop it or run it here. */
	while (dime_io_loop_post(loop, pool_done_on_loop, j) != DIME_OK) {
		struct timespec ms = {0, 1000000};

		nanosleep(&ms, NULL);
	}
}

/* ---- taking work ---- */

/* The FIFO to serve now (under the lock): among those ready (a call, a full lane, an oldest
 * job past the deadline, or the pool stopping), the one whose oldest job is oldest. NULL when
 * none is ready; *wake_ns is then the earliest time one will be (0: none queued). */
static struct pool_fifo *
pool_pick(struct dime_pl_pool *p, uint64_t now, unsigned *lane, uint64_t *wake_ns)
{
	struct pool_fifo *best = NULL;
	uint64_t best_t = 0;

	*wake_ns = 0;
	if (p->calls.head != NULL) {
		best = &p->calls;
		best_t = p->calls.head->queued_ns;
		*lane = POOL_CALL_LANE;
	}
	for (unsigned i = 0; i < p->n_lanes; i++) {
		struct pool_fifo *f = &p->lanes[i]->q;
		uint64_t t, due;

		if (f->head == NULL)
			continue;
		t = f->head->queued_ns;
		due = t + p->deadline_ns;
		if (f->n < p->batch_max && now < due && !p->stopping) {
			if (*wake_ns == 0 || due < *wake_ns)
				*wake_ns = due;
			continue;
		}
		if (best == NULL || t < best_t) {
			best = f;
			best_t = t;
			*lane = i;
		}
	}
	return best;
}

static void
pool_cond_wait_until(struct dime_pl_pool *p, uint64_t when_ns)
{
	struct timespec ts;

	if (when_ns == 0) {
		pthread_cond_wait(&p->work, &p->mu);
		return;
	}
	ts.tv_sec = (time_t)(when_ns / 1000000000u);
	ts.tv_nsec = (long)(when_ns % 1000000000u);
	(void)pthread_cond_timedwait(&p->work, &p->mu, &ts);
}

/* Wait for work and take one group. Returns the count (0: stopping and drained). */
static size_t
pool_take(struct dime_pl_pool *p, struct pool_worker *w, unsigned *lane,
	  const struct dime_pl_msg **m)
{
	size_t n = 0;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		uint64_t wake = 0;
		struct pool_fifo *f = pool_pick(p, pool_now_ns(), lane, &wake);

		if (f != NULL) {
			size_t max = *lane == POOL_CALL_LANE ? 1 : p->batch_max;

			while (n < max && f->head != NULL) {
				w->g[n] = pool_fifo_pop(f);
				w->g[n]->state = POOL_J_RUNNING;
				n++;
			}
			*m = *lane == POOL_CALL_LANE ? NULL : p->lanes[*lane]->m;
			p->queued -= n;
			if (*lane != POOL_CALL_LANE) {
				p->st.groups++;
				p->st.jobs += n;
				p->lanes[*lane]->running += n;
			}
			/* more may be ready, and the others may sleep on a later deadline */
			if (p->queued > 0)
				pthread_cond_signal(&p->work);
			break;
		}
		if (p->stopping && p->queued == 0)
			break;
		pool_cond_wait_until(p, wake);
	}
	pthread_mutex_unlock(&p->mu);
	return n;
}

/* ---- running ---- */

static void
pool_fail_all(struct pool_worker *w, size_t n, int rc, const char *why)
{
	for (size_t i = 0; i < n; i++) {
		w->g[i]->mj.rc = rc;
		w->g[i]->mj.why = why;
	}
}

/* The lane's message-path worker for this thread, made on first use. NULL: out of memory. */
static struct dime_pl_msg_worker *
pool_msg_worker(struct pool_worker *w, unsigned lane, const struct dime_pl_msg *m)
{
	if (lane >= w->n_pw) {
		unsigned n = lane + 1 > 2 * w->n_pw ? lane + 1 : 2 * w->n_pw;
		struct dime_pl_msg_worker **pw = realloc(w->pw, n * sizeof(*pw));

		if (pw == NULL)
			return NULL;
		memset(pw + w->n_pw, 0, (n - w->n_pw) * sizeof(*pw));
		w->pw = pw;
		w->n_pw = n;
	}
	if (w->pw[lane] == NULL &&
	    dime_pl_msg_worker_new(&w->pw[lane], m, w->p->batch_max) != DIME_OK)
		return NULL;
	return w->pw[lane];
}

/* One group through the message path: inputs in, results back into each job. */
static void
pool_run_group(struct pool_worker *w, unsigned lane, const struct dime_pl_msg *m, size_t n)
{
	struct dime_pl_msg_worker *pw = pool_msg_worker(w, lane, m);

	if (pw == NULL) {
		pool_fail_all(w, n, DIME_E_NOMEM, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		memset(&w->mj[i], 0, sizeof(w->mj[i]));
		w->mj[i].in = w->g[i]->mj.in;
		w->mj[i].in_len = w->g[i]->mj.in_len;
		w->mj[i].why = "";
	}
	(void)dime_pl_msg_run(pw, w->mj, n);
	for (size_t i = 0; i < n; i++) {
		struct dime_pl_msg_job *to = &w->g[i]->mj, *from = &w->mj[i];
		const char *why = from->why;

		to->rc = from->rc;
		to->out = from->out;
		to->out_len = from->out_len;
		memcpy(to->line, from->line, sizeof(to->line));
		memcpy(to->msg, from->msg, sizeof(to->msg));
		/* a composed why lives in msg[]: point into the job's own copy */
		if (why >= from->msg && why < from->msg + sizeof(from->msg))
			why = to->msg + (why - from->msg);
		to->why = why != NULL ? why : "";
	}
	/* verdict lines and reasons name parties; the outputs now belong to the jobs */
	dime_wipe(w->mj, n * sizeof(*w->mj));
}

static void *
pool_worker_main(void *arg)
{
	struct pool_worker *w = arg;
	struct dime_pl_pool *p = w->p;
	const struct dime_pl_msg *m = NULL;
	unsigned lane = 0;
	size_t n;

	dime_pl_thread_start();
	while ((n = pool_take(p, w, &lane, &m)) > 0) {
		if (lane == POOL_CALL_LANE)
			w->g[0]->run(w->g[0], w->g[0]->arg);
		else
			pool_run_group(w, lane, m, n);
		if (lane != POOL_CALL_LANE) {
			/* the run is no longer used by these jobs (dime_pl_pool_lane_pending) */
			pthread_mutex_lock(&p->mu);
			p->lanes[lane]->running -= n;
			pthread_mutex_unlock(&p->mu);
		}
		for (size_t i = 0; i < n; i++) {
			struct dime_pl_pool_job *j = w->g[i];

			w->g[i] = NULL;
			pool_complete(j);
		}
	}
	return NULL;
}

/* ---- the API ---- */

static void
pool_worker_fini(struct pool_worker *w)
{
	for (unsigned i = 0; i < w->n_pw; i++)
		dime_pl_msg_worker_free(w->pw[i]);
	free(w->pw);
	free(w->mj);
	free(w->g);
}

static unsigned
pool_online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 && n < (long)POOL_WORKERS_MAX ? (unsigned)n : 1;
}

/* Stop, drain and join what started, then free everything. */
static void
pool_destroy(struct dime_pl_pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->started; i++)
		pthread_join(p->w[i].tid, NULL);
	if (p->w != NULL)
		for (unsigned i = 0; i < p->n_workers; i++)
			pool_worker_fini(&p->w[i]);
	free(p->w);
	for (unsigned i = 0; i < p->n_lanes; i++)
		free(p->lanes[i]);
	free(p->lanes);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

int
dime_pl_pool_new(struct dime_pl_pool **out, const struct dime_pl_pool_conf *c)
{
	struct dime_pl_pool *p;
	pthread_condattr_t ca;
	sigset_t all, old;
	int rc = DIME_OK;

	*out = NULL;
	if (c == NULL || c->workers > POOL_WORKERS_MAX || c->batch_max > POOL_BATCH_MAX)
		return DIME_E_INVALID;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return DIME_E_NOMEM;
	p->n_workers = c->workers ? c->workers : pool_online_cpus();
	p->batch_max = c->batch_max ? c->batch_max : DIME_PL_POOL_BATCH_DEFAULT;
	p->deadline_ns = (uint64_t)c->deadline_us * 1000u;
	p->queue_max = c->queue_max ? c->queue_max : DIME_PL_POOL_QUEUE_DEFAULT;
	/* deadlines are monotonic times: the wall clock may jump */
	if (pthread_condattr_init(&ca) != 0) {
		free(p);
		return DIME_E_NOMEM;
	}
	(void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_mutex_init(&p->mu, NULL) != 0) {
		pthread_condattr_destroy(&ca);
		free(p);
		return DIME_E_NOMEM;
	}
	if (pthread_cond_init(&p->work, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		pthread_mutex_destroy(&p->mu);
		free(p);
		return DIME_E_NOMEM;
	}
	pthread_condattr_destroy(&ca);
	if ((p->w = calloc(p->n_workers, sizeof(*p->w))) == NULL) {
		rc = DIME_E_NOMEM;
		goto out;
	}
	for (unsigned i = 0; i < p->n_workers; i++) {
		p->w[i].p = p;
		p->w[i].mj = calloc(p->batch_max, sizeof(*p->w[i].mj));
		p->w[i].g = calloc(p->batch_max, sizeof(*p->w[i].g));
		if (p->w[i].mj == NULL || p->w[i].g == NULL) {
			rc = DIME_E_NOMEM;
			goto out;
		}
	}
	/* Workers take no signals: the process's signal handling stays on its own threads
	 * (a daemon's main loop), whatever the thread that made the pool. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (; p->started < p->n_workers; p->started++)
		if (pthread_create(&p->w[p->started].tid, NULL, pool_worker_main,
				   &p->w[p->started]) != 0)
			break;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (p->started < p->n_workers)
		rc = DIME_E_NOMEM;
out:
	if (rc != DIME_OK) {
		pool_destroy(p);
		return rc;
	}
	*out = p;
	return DIME_OK;
}

int
dime_pl_pool_lane(struct dime_pl_pool *p, unsigned *lane, const struct dime_pl_msg *m)
{
	struct pool_lane *l;
	int rc = DIME_OK;

	*lane = 0;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return DIME_E_NOMEM;
	l->m = m;
	pthread_mutex_lock(&p->mu);
	if (p->n_lanes == p->cap_lanes) {
		unsigned cap = p->cap_lanes ? 2 * p->cap_lanes : 8;
		struct pool_lane **v =
		    cap < POOL_CALL_LANE / 2 ? realloc(p->lanes, cap * sizeof(*v)) : NULL;

		if (v == NULL) {
			rc = DIME_E_NOMEM;
			goto out;
		}
		p->lanes = v;
		p->cap_lanes = cap;
	}
	*lane = p->n_lanes;
	p->lanes[p->n_lanes++] = l;
	l = NULL;
out:
	pthread_mutex_unlock(&p->mu);
	free(l);
	return rc;
}

/* Queue j on f (lane is POOL_CALL_LANE for a call). */
static int
pool_enqueue(struct dime_pl_pool *p, unsigned lane, struct dime_pl_pool_job *j,
	     struct dime_io_loop *loop)
{
	int rc = DIME_OK;

	pthread_mutex_lock(&p->mu);
	if (lane != POOL_CALL_LANE && lane >= p->n_lanes) {
		rc = DIME_E_INVALID;
	} else if (p->stopping) {
		rc = DIME_E_AGAIN;
	} else if (p->queued >= p->queue_max) {
		p->st.rejected_full++;
		rc = DIME_E_AGAIN;
	} else {
		j->loop = loop;
		j->lane = lane;
		j->queued_ns = pool_now_ns();
		struct pool_fifo *f = lane == POOL_CALL_LANE ? &p->calls : &p->lanes[lane]->q;

		j->state = POOL_J_QUEUED;
		pool_fifo_push(f, j);
		p->queued++;
		/* Wake a worker only when this job changes what it would do: a call or a full
		 * lane is ready now, and a lane's first job sets a new deadline. Waking one per
		 * job of a growing group only makes it look and sleep again (docs/pool.md). */
		if (f == &p->calls || f->n == 1 || f->n == p->batch_max)
			pthread_cond_signal(&p->work);
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

size_t
dime_pl_pool_lane_pending(struct dime_pl_pool *p, unsigned lane)
{
	size_t n = 0;

	pthread_mutex_lock(&p->mu);
	if (lane < p->n_lanes)
		n = p->lanes[lane]->q.n + p->lanes[lane]->running;
	pthread_mutex_unlock(&p->mu);
	return n;
}

int
dime_pl_pool_submit(struct dime_pl_pool *p, unsigned lane, struct dime_pl_pool_job *j,
		    struct dime_io_loop *loop)
{
	DIME_ASSERT(j->done != NULL);
	if (lane == POOL_CALL_LANE)
		return DIME_E_INVALID;
	return pool_enqueue(p, lane, j, loop);
}

int
dime_pl_pool_call(struct dime_pl_pool *p, struct dime_pl_pool_job *j, struct dime_io_loop *loop)
{
	DIME_ASSERT(j->done != NULL);
	if (j->run == NULL)
		return DIME_E_INVALID;
	return pool_enqueue(p, POOL_CALL_LANE, j, loop);
}

void
dime_pl_pool_cancel(struct dime_pl_pool *p, struct dime_pl_pool_job *j)
{
	int removed = 0;

	pthread_mutex_lock(&p->mu);
	if (j->state == POOL_J_QUEUED) {
		removed = pool_fifo_remove(
		    j->lane == POOL_CALL_LANE ? &p->calls : &p->lanes[j->lane]->q, j);
		DIME_ASSERT(removed);
		p->queued--;
		p->st.cancelled++;
		j->state = POOL_J_RUNNING; /* ours until completed: a second cancel is a no-op */
	}
	pthread_mutex_unlock(&p->mu);
	if (!removed)
		return; /* running or done: it completes (or completed) normally */
	j->mj.rc = DIME_E_AGAIN;
	j->mj.why = "cancelled";
	pool_complete(j);
}

void
dime_pl_pool_stats(struct dime_pl_pool *p, struct dime_pl_pool_stats *out)
{
	pthread_mutex_lock(&p->mu);
	*out = p->st;
	out->queued = p->queued;
	pthread_mutex_unlock(&p->mu);
}

void
dime_pl_pool_free(struct dime_pl_pool *p)
{
	if (p != NULL)
		pool_destroy(p);
}

#ifndef DIME_PIPELINE_POOL_H
#define DIME_PIPELINE_POOL_H
/* A long-lived worker pool for the message path (dime/plmsg.h), fed from any thread: the
 * daemon's connection loops and `dime batch`. Jobs are queued per lane (one lane per run,
 * struct dime_pl_msg: an operation and its fixed parties); a worker takes up to batch_max jobs
 * of one lane at once, or fewer when the oldest has waited deadline_us, and runs them as one
 * group (dime_pl_msg_run): accepts arriving from many connections share one batched
 * verification. Each job's completion runs on the loop that submitted it
 * (dime_io_loop_post), or on the worker thread when no loop is given.
 *
 * Back-pressure: at most queue_max jobs wait; submit then returns DIME_E_AGAIN at once (the
 * server answers 451/421 and stops reading). Cancellation: dime_pl_pool_cancel. Inputs are borrowed
 * until the completion; outputs are the caller's to clear (dime_pl_msg_job_clear wipes them).
 * Workers wipe their scratch after every group. */

#include <stddef.h>
#include <stdint.h>

#include "dime/loop.h"
#include "dime/plmsg.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DIME_PL_POOL_BATCH_DEFAULT 32u
/* 0: an idle worker takes what is queued at once (a lone request is served now; under load
 * groups form by themselves while the workers are busy). Measured with dime-bench dmtp: a
 * 2 ms wait cost one client 30% of its rate and bought nothing at 8 or 64 clients. */
#define DIME_PL_POOL_DEADLINE_DEFAULT 0u
#define DIME_PL_POOL_QUEUE_DEFAULT    4096u

struct dime_pl_pool_conf {
	unsigned workers;     /* 0: the online CPUs */
	size_t batch_max;     /* 0: DIME_PL_POOL_BATCH_DEFAULT */
	unsigned deadline_us; /* how long a partial group waits for company; 0: not at all */
	size_t queue_max;     /* jobs waiting over all lanes; 0: DIME_PL_POOL_QUEUE_DEFAULT */
};

struct dime_pl_pool;
struct dime_pl_pool_job;

/* Completion: j->mj holds rc, why, out, line (dime/plmsg.h). Runs exactly once per accepted
 * submit, on the submitting loop's thread (or a worker's when loop was NULL). */
typedef void (*dime_pl_pool_done_fn)(struct dime_pl_pool_job *j, void *arg);

/* One job: the caller's memory, untouched by the caller from submit to completion. */
struct dime_pl_pool_job {
	struct dime_pl_msg_job mj; /* in: mj.in, mj.in_len; out: the rest */
	/* dime_pl_pool_call only: the blocking work to run on a worker (store lookups, spool
	 * writes), alone, not in a group; it reports through j (mj.rc) or arg. */
	void (*run)(struct dime_pl_pool_job *j, void *arg);
	dime_pl_pool_done_fn done;
	void *arg;
	/* the pool's */
	struct dime_pl_pool_job *next;
	struct dime_io_loop *loop;
	unsigned lane;
	uint64_t queued_ns;
	int state;
};

/* Returns: DIME_OK, DIME_E_NOMEM, DIME_E_INVALID. The workers start at once. */
DIME_MUST_CHECK int dime_pl_pool_new(struct dime_pl_pool **p, const struct dime_pl_pool_conf *c);
/* Add a lane for run m (borrowed until dime_pl_pool_free, or until the caller, who submits
 * nothing more to the lane, sees dime_pl_pool_lane_pending at 0: a retired lane's worker state
 * never touches m again; every worker makes its own dime_pl_msg_worker for it). Any time, any
 * thread. Returns: DIME_OK, DIME_E_NOMEM. Out: *lane. */
DIME_MUST_CHECK int dime_pl_pool_lane(struct dime_pl_pool *p, unsigned *lane,
				      const struct dime_pl_msg *m);
/* Jobs of lane queued or running now (0 for an unknown lane). A job counts until its run has
 * finished, before its completion is posted. Any thread. */
size_t dime_pl_pool_lane_pending(struct dime_pl_pool *p, unsigned lane);
/* Queue j on lane; completion on loop (NULL: on the worker). Any thread.
 * Returns: DIME_OK, DIME_E_AGAIN (queue full, or the pool is stopping: j is not taken and
 * done will not run), DIME_E_INVALID (unknown lane). */
DIME_MUST_CHECK int dime_pl_pool_submit(struct dime_pl_pool *p, unsigned lane,
					struct dime_pl_pool_job *j, struct dime_io_loop *loop);
/* Queue blocking work j->run off the loop threads; done as for submit. Shares queue_max and
 * the workers with the lanes. Returns: DIME_OK, DIME_E_AGAIN, DIME_E_INVALID (run NULL). */
DIME_MUST_CHECK int dime_pl_pool_call(struct dime_pl_pool *p, struct dime_pl_pool_job *j,
				      struct dime_io_loop *loop);
/* The submitter no longer wants j (its connection died). A job still queued is removed and
 * completes with mj.rc = DIME_E_AGAIN, mj.why = "cancelled", without running; a running one
 * completes normally. Either way done still runs exactly once (free j there): posted to its
 * loop, or, when it was submitted with no loop, inside this call. Any thread; only before
 * done has run. */
void dime_pl_pool_cancel(struct dime_pl_pool *p, struct dime_pl_pool_job *j);

struct dime_pl_pool_stats {
	uint64_t groups, jobs, cancelled, rejected_full;
	size_t queued; /* now */
};
void dime_pl_pool_stats(struct dime_pl_pool *p, struct dime_pl_pool_stats *out);

/* Stop taking jobs, finish (drain) those queued, join the workers, free. Completions posted to
 * loops must still be run by those loops. NULL-safe. */
void dime_pl_pool_free(struct dime_pl_pool *p);

#ifdef __cplusplus
}
#endif

#endif

/* The batch engine (batch.h, docs/batch.md): feeder -> bounded job queue -> workers (grouped,
 * batched engine calls) -> results queue -> the caller's thread. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bq.h"
#include "dime/batch.h"
#include "dime/source.h"
#include "dime/codec.h"
#include "dime/crypto.h"
#include "dime/io.h"
#include "dime/keyproc.h"
#include "dime/mime.h"
#include "dime/msg_armor.h"
#include "dime/ring.h"
#include "dime/dir.h"
#include "dime/plmsg.h"
#include "dime/pool.h"
#include "pool_thread.h"

#define BATCH_LINE_MAX	 (2 * DIME_MSG_ADDR_MAX + DIME_MSG_BOUNCE_REASON_MAX + 64)
#define BATCH_IN_MAX	 ((size_t)DIME_MSG_MAX_BYTES * 2) /* armored input of a 1 GiB message */
#define BATCH_OUT_MODE	 0600u /* outputs hold mail: never world-readable */
#define BATCH_RING_DEPTH 64u
#define BATCH_GROUP_MAX	 1024u
/* A worker hands its whole group to the pool at once, so only the run's last, partial group
 * ever waits for company: not long. */
#define BATCH_POOL_DEADLINE_US 100u

static _Atomic int batch_stop_flag;

void
dime_batch_stop(void)
{
	atomic_store(&batch_stop_flag, 1);
}

void
dime_batch_stop_clear(void)
{
	atomic_store(&batch_stop_flag, 0);
}

static int
batch_stopping(void)
{
	return atomic_load_explicit(&batch_stop_flag, memory_order_relaxed);
}

static const struct {
	enum dime_batch_op op;
	const char *name, *suffix;
} batch_ops[] = {
    {DIME_BATCH_WRAP, "wrap", ".dime"},	   {DIME_BATCH_ORIGIN_SIGN, "origin-sign", ".dime"},
    {DIME_BATCH_ACCEPT, "accept", ".txt"}, {DIME_BATCH_OPEN, "open", ".eml"},
    {DIME_BATCH_REKEY, "rekey", ".dime"},  {DIME_BATCH_BOUNCE_VERIFY, "bounce-verify", ".txt"},
};

enum dime_batch_op
dime_batch_op_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(batch_ops) / sizeof(batch_ops[0]); i++)
		if (strcmp(name, batch_ops[i].name) == 0)
			return batch_ops[i].op;
	return (enum dime_batch_op)0;
}

const char *
dime_batch_op_name(enum dime_batch_op op)
{
	for (size_t i = 0; i < sizeof(batch_ops) / sizeof(batch_ops[0]); i++)
		if (batch_ops[i].op == op)
			return batch_ops[i].name;
	return "?";
}

int
dime_batch_out_name(char *buf, size_t cap, enum dime_batch_op op, const char *name)
{
	for (size_t i = 0; i < sizeof(batch_ops) / sizeof(batch_ops[0]); i++)
		if (batch_ops[i].op == op)
			return snprintf(buf, cap, "%s%s", name, batch_ops[i].suffix);
	return snprintf(buf, cap, "%s", name);
}

static uint64_t
batch_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* ---- one message in flight ---- */

struct bjob {
	struct dime_batch_item it;
	uint8_t *raw; /* the file's bytes (or it.data) */
	size_t raw_len;
	uint8_t *in; /* wrap: the mail (= raw); otherwise the binary message */
	size_t in_len;
	int armored;
	int ok, rc;
	const char *why;
	int sys_err; /* with DIME_E_IO: the errno behind it */
	char line[BATCH_LINE_MAX];
	uint8_t *out;
	size_t out_len;
	uint64_t ns;
	char out_path[4096];
	char why_buf[DIME_PL_MSG_WHY_MAX]; /* a composed why: the message path's, or an errno's */
};

static void
bjob_free(struct bjob *j)
{
	if (j == NULL)
		return;
	if (j->in != NULL && j->in != j->raw) {
		dime_wipe(j->in, j->in_len);
		free(j->in);
	}
	if (j->raw != NULL) {
		dime_wipe(j->raw, j->raw_len);
		free(j->raw);
	}
	if (j->out != NULL) {
		dime_wipe(j->out, j->out_len);
		free(j->out);
	}
	if (j->it.data != NULL) { /* never read: a skipped or not-started in-memory item */
		dime_wipe(j->it.data, j->it.len);
		free(j->it.data);
	}
	free(j->it.path);
	free(j);
}

static void
bjob_fail(struct bjob *j, int rc, const char *why)
{
	if (j->ok != 1)
		return; /* the first failure is the one reported */
	j->ok = 0;
	j->rc = rc;
	j->why = why;
}

/* Fail j for an I/O error: why is "what: <strerror(err)>" and the errno is kept. */
static void
bjob_fail_errno(struct bjob *j, const char *what, int err)
{
	char msg[128];

	if (j->ok != 1)
		return;
	if (strerror_r(err, msg, sizeof(msg)) != 0)
		snprintf(msg, sizeof(msg), "errno %d", err);
	snprintf(j->why_buf, sizeof(j->why_buf), "%s: %s", what, msg);
	bjob_fail(j, DIME_E_IO, j->why_buf);
	j->sys_err = err;
}

/* ---- the run ---- */

struct brun {
	const struct dime_batch_conf *conf;
	const struct dime_batch_params *par;
	struct dime_batch_source *src;
	const struct dime_batch_sink *sink;
	struct dime_pl_dir *dir;
	enum dime_batch_io io;
	unsigned workers, batch_max;
	struct bq jobq, writeq, resq;
	_Atomic unsigned live_workers;
	_Atomic unsigned live_producers; /* workers + feeder: the last one out closes resq */
	struct dime_pl_msg *pm;	   /* the message path: operation, fixed parties (dime/plmsg.h) */
	struct dime_pl_pool *pool; /* runs the groups (dime/pool.h): one lane, pm */
	unsigned lane;
	int src_failed;
	const char *src_why;
	/* --key-process: the key process, its client and the remote keystore of the run */
	pid_t kp_pid;
	struct dime_kp_client *kp;
	struct dime_ks *kp_ks;
	struct dime_pl_keyinfo *kp_keys;
};

struct bworker {
	struct brun *r;
	pthread_t tid;
	struct dime_ring *ring;
	struct dime_pl_pool_job *pj; /* the group's live jobs, as the pool takes them */
	struct bjob **g;
	struct dime_io_rd *rd;
	struct dime_io_wr *wr;
	pthread_mutex_t mu; /* n_done: the pool's completions of the group in flight */
	pthread_cond_t cv;
	size_t n_done;
};

static int
batch_has_out_dir(const struct brun *r)
{
	return r->sink != NULL && r->sink->dir != NULL;
}

/* ---- reading and decoding inputs ---- */

/* The message path's name for op (enum dime_pl_msg_op also has bounce, which batch lacks). */
static enum dime_pl_msg_op
batch_pl_op(enum dime_batch_op op)
{
	return op == DIME_BATCH_BOUNCE_VERIFY ? DIME_PL_MSG_BOUNCE_VERIFY : (enum dime_pl_msg_op)op;
}

/* Bring each job's bytes in: through ring when given (items with a path), then decode. */
static void
batch_read_group(struct brun *r, struct dime_ring *ring, struct dime_io_rd *rd, struct bjob **g,
		 size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (g[i]->raw == NULL && g[i]->it.path != NULL && g[i]->ok == 1) {
			memset(&rd[k], 0, sizeof(rd[k]));
			rd[k].path = g[i]->it.path;
			rd[k].max =
			    r->par->op == DIME_BATCH_WRAP ? DIME_MIME_MAX_BYTES : BATCH_IN_MAX;
			rd[k].flags = g[i]->it.no_symlinks ? DIME_IO_RD_NO_SYMLINKS : 0;
			k++;
		}
	if (k > 0 && dime_ring_read_files(ring, rd, k) != 0)
		for (size_t i = 0; i < k; i++)
			if (rd[i].err == 0 && rd[i].buf == NULL)
				rd[i].err = -EIO;
	k = 0;
	for (size_t i = 0; i < n; i++) {
		struct bjob *j = g[i];

		if (j->raw == NULL && j->it.path != NULL && j->ok == 1) {
			if (rd[k].err != 0) {
				if (rd[k].err == -EFBIG)
					bjob_fail(j, DIME_E_IO, "input is larger than the limit");
				else if (rd[k].err == -ELOOP && j->it.no_symlinks)
					bjob_fail_errno(j,
							"input path holds a symbolic link "
							"(refused; --follow-symlinks allows it)",
							ELOOP);
				else
					bjob_fail_errno(j, "input cannot be read", -rd[k].err);
				free(rd[k].buf);
			} else {
				j->raw = rd[k].buf;
				j->raw_len = rd[k].len;
			}
			k++;
		} else if (j->raw == NULL && j->it.data != NULL) {
			j->raw = j->it.data;
			j->raw_len = j->it.len;
			j->it.data = NULL;
		}
	}
}

static void
batch_decode_group(struct brun *r, struct bjob **g, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct bjob *j = g[i];
		const char *why = "";
		int rc;

		if (j->ok != 1)
			continue;
		if (j->raw == NULL) {
			/* an empty in-memory item */
			if ((j->raw = malloc(1)) == NULL) {
				bjob_fail(j, DIME_E_NOMEM, "out of memory");
				continue;
			}
			j->raw_len = 0;
		}
		if (r->par->op == DIME_BATCH_WRAP) {
			j->in = j->raw;
			j->in_len = j->raw_len;
			continue;
		}
		rc = dime_pl_msg_decode(&j->in, &j->in_len, &j->armored, &why,
					batch_pl_op(r->par->op), 0, j->raw, j->raw_len);
		if (rc != DIME_OK)
			bjob_fail(j, rc, rc == DIME_E_NOMEM ? "out of memory" : why);
	}
}

/* ---- the engine calls: one message-path group call (dime/plmsg.h) ---- */

/* A pool completion (on a pool worker): count it for the batch worker waiting on its group. */
static void
batch_pool_done(struct dime_pl_pool_job *j, void *arg)
{
	struct bworker *w = arg;

	(void)j;
	pthread_mutex_lock(&w->mu);
	w->n_done++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* Gather the jobs still alive into w->pj (in order); returns the count. map[k] = job index. */
static size_t
batch_gather(struct bworker *w, size_t n, size_t *map)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		struct bjob *j = w->g[i];

		if (j->ok != 1)
			continue;
		memset(&w->pj[k], 0, sizeof(w->pj[k]));
		w->pj[k].mj.in = j->in;
		w->pj[k].mj.in_len = j->in_len;
		w->pj[k].done = batch_pool_done;
		w->pj[k].arg = w;
		map[k++] = i;
	}
	return k;
}

/* Run w->pj[0..k) on the pool and wait for all of them. */
static void
batch_pool_group(struct bworker *w, size_t k)
{
	size_t sent = 0;

	pthread_mutex_lock(&w->mu);
	w->n_done = 0;
	pthread_mutex_unlock(&w->mu);
	for (size_t i = 0; i < k; i++) {
		/* queue_max holds every worker's whole group: only a broken pool refuses */
		int rc = dime_pl_pool_submit(w->r->pool, w->r->lane, &w->pj[i], NULL);

		if (rc == DIME_OK) {
			sent++;
			continue;
		}
		w->pj[i].mj.rc = rc;
		w->pj[i].mj.why = "the worker pool refused the message";
	}
	pthread_mutex_lock(&w->mu);
	while (w->n_done < sent)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

/* Take an engine output as the job's output, armored when asked. */
static void
batch_take_out(struct bjob *j, uint8_t *out, size_t out_len, int armor)
{
	char *a = NULL;
	size_t alen = 0;
	int rc;

	if (!armor) {
		j->out = out;
		j->out_len = out_len;
		return;
	}
	rc = dime_msg_armor(&a, &alen, out, out_len, NULL, 0);
	dime_msg_free(out, out_len);
	if (rc != DIME_OK) {
		bjob_fail(j, rc, "the output cannot be armored");
		return;
	}
	j->out = (uint8_t *)a;
	j->out_len = alen;
}

static void
batch_run_engine(struct bworker *w, size_t n, size_t *map)
{
	struct brun *r = w->r;
	const struct dime_batch_params *par = r->par;
	size_t k = batch_gather(w, n, map);

	if (k == 0)
		return;
	batch_pool_group(w, k);
	for (size_t i = 0; i < k; i++) {
		struct bjob *j = w->g[map[i]];
		struct dime_pl_msg_job *b = &w->pj[i].mj;

		/* the verdict line is kept for failures too: the caller reports it */
		snprintf(j->line, sizeof(j->line), "%s", b->line);
		if (b->rc != DIME_OK) {
			/* b->why may point into b, which the next group reuses */
			snprintf(j->why_buf, sizeof(j->why_buf), "%s", b->why);
			bjob_fail(j, b->rc, j->why_buf);
			dime_pl_msg_job_clear(b);
			continue;
		}
		switch (par->op) {
		case DIME_BATCH_WRAP:
		case DIME_BATCH_REKEY: batch_take_out(j, b->out, b->out_len, !par->binary); break;
		case DIME_BATCH_ORIGIN_SIGN:
			batch_take_out(j, b->out, b->out_len, j->armored && !par->binary);
			break;
		case DIME_BATCH_OPEN:
		case DIME_BATCH_ACCEPT:
		case DIME_BATCH_BOUNCE_VERIFY:
			/* open: the mail; accept, bounce-verify: the line (batch_line_out) */
			j->out = b->out;
			j->out_len = b->out_len;
			break;
		}
		b->out = NULL;
		b->out_len = 0;
	}
}

/* Verdict lines are the output of accept and bounce-verify. */
static void
batch_line_out(struct bjob *j)
{
	size_t len = strlen(j->line);

	if (j->ok != 1 || len == 0 || j->out != NULL)
		return;
	if ((j->out = malloc(len + 1)) == NULL) {
		bjob_fail(j, DIME_E_NOMEM, "out of memory");
		return;
	}
	memcpy(j->out, j->line, len);
	j->out[len] = '\n';
	j->out_len = len + 1;
}

/* ---- writing ---- */

static void
batch_write_group(struct brun *r, struct dime_ring *ring, struct dime_io_wr *wr, struct bjob **g,
		  size_t n)
{
	size_t k = 0;

	if (!batch_has_out_dir(r)) {
		struct dime_batch_out *o;
		struct bjob **at;
		char(*receipt)[BATCH_LINE_MAX];

		if (r->sink == NULL || r->sink->put == NULL)
			return;
		o = calloc(n, sizeof(*o));
		at = calloc(n, sizeof(*at));
		receipt = calloc(n, sizeof(*receipt));
		for (size_t i = 0; i < n && o != NULL && at != NULL && receipt != NULL; i++) {
			if (g[i]->ok != 1)
				continue;
			at[k] = g[i];
			o[k] = (struct dime_batch_out){.name = g[i]->it.name,
						       .out = g[i]->out,
						       .len = g[i]->out_len,
						       .rc = DIME_OK,
						       .line = receipt[k],
						       .line_cap = sizeof(receipt[k])};
			k++;
		}
		if (o == NULL || at == NULL || receipt == NULL) {
			for (size_t i = 0; i < n; i++)
				if (g[i]->ok == 1)
					bjob_fail(g[i], DIME_E_NOMEM, "out of memory");
		} else if (k > 0) {
			r->sink->put(r->sink->ctx, o, k);
		}
		for (size_t i = 0; i < k && at != NULL && o != NULL && receipt != NULL; i++) {
			struct bjob *j = at[i];

			receipt[i][sizeof(receipt[i]) - 1] = 0;
			if (o[i].rc == DIME_OK && receipt[i][0] != 0)
				memcpy(j->line, receipt[i], sizeof(j->line));
			if (o[i].rc != DIME_OK) {
				snprintf(j->why_buf, sizeof(j->why_buf), "%s",
					 o[i].why != NULL ? o[i].why : dime_strerror(o[i].rc));
				bjob_fail(j, o[i].rc, j->why_buf);
			}
		}
		free(o);
		free(at);
		free(receipt);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct bjob *j = g[i];

		if (j->ok != 1)
			continue;
		memset(&wr[k], 0, sizeof(wr[k]));
		wr[k].path = j->out_path;
		wr[k].buf = j->out;
		wr[k].len = j->out_len;
		wr[k].mode = BATCH_OUT_MODE;
		wr[k].sync = r->conf->sync;
		k++;
	}
	if (k == 0)
		return;
	if (dime_ring_write_files(ring, wr, k) != 0)
		for (size_t i = 0; i < k; i++)
			if (wr[i].err == 0)
				wr[i].err = -EIO;
	k = 0;
	for (size_t i = 0; i < n; i++)
		if (g[i]->ok == 1) {
			if (wr[k].err != 0)
				bjob_fail_errno(g[i], "the output cannot be written", -wr[k].err);
			k++;
		}
}

static void
batch_post(struct brun *r, struct bjob **g, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (bq_push(&r->resq, g[i]) != 0)
			bjob_free(g[i]);
}

/* ---- threads ---- */

static void
batch_producer_done(struct brun *r)
{
	if (atomic_fetch_sub(&r->live_producers, 1) == 1)
		bq_close(&r->resq);
}

static void
batch_process(struct bworker *w, size_t n)
{
	struct brun *r = w->r;
	size_t map[BATCH_GROUP_MAX];
	uint64_t t0 = batch_now_ns();

	if (w->ring != NULL)
		batch_read_group(r, w->ring, w->rd, w->g, n);
	batch_decode_group(r, w->g, n);
	batch_run_engine(w, n, map);
	for (size_t i = 0; i < n; i++)
		batch_line_out(w->g[i]);
	if (w->ring != NULL) {
		batch_write_group(r, w->ring, w->wr, w->g, n);
		for (size_t i = 0; i < n; i++)
			w->g[i]->ns = batch_now_ns() - t0;
		batch_post(r, w->g, n);
	} else {
		for (size_t i = 0; i < n; i++)
			w->g[i]->ns = batch_now_ns() - t0;
		/* the I/O thread writes and posts */
		for (size_t i = 0; i < n; i++)
			if (bq_push(&r->writeq, w->g[i]) != 0)
				bjob_free(w->g[i]);
	}
}

static void *
batch_worker(void *arg)
{
	struct bworker *w = arg;
	struct brun *r = w->r;

	dime_pl_thread_start(); /* an arena of its own (pool_thread.h) */
	for (;;) {
		size_t n = bq_pop_many(&r->jobq, (void **)w->g, r->batch_max, -1);

		if (n == 0)
			break;
		if (batch_stopping()) {
			/* abandoned: not started, so nothing was written; a resumed run does it */
			for (size_t i = 0; i < n; i++) {
				w->g[i]->ok = -2;
				w->g[i]->why = "not started: the batch was stopped";
			}
			batch_post(r, w->g, n);
			continue;
		}
		batch_process(w, n);
	}
	if (atomic_fetch_sub(&r->live_workers, 1) == 1)
		bq_close(&r->writeq);
	batch_producer_done(r);
	return NULL;
}

/* A new job for an item, or a result posted straight away (source error, resume skip). */
static struct bjob *
batch_job_new(struct brun *r, struct dime_batch_item *it)
{
	struct bjob *j = calloc(1, sizeof(*j));
	char name[512];

	if (j == NULL) {
		free(it->path);
		free(it->data);
		return NULL;
	}
	j->it = *it;
	j->ok = 1;
	j->rc = DIME_OK;
	j->why = "";
	memset(it, 0, sizeof(*it));
	if (j->it.err != 0) {
		j->ok = 0;
		j->rc = DIME_E_IO;
		j->why = j->it.why != NULL ? j->it.why : "the source cannot provide this item";
		j->sys_err = -j->it.err;
		return j;
	}
	if (batch_has_out_dir(r)) {
		dime_batch_out_name(name, sizeof(name), r->par->op, j->it.name);
		if (strchr(j->it.name, '/') != NULL || j->it.name[0] == '.' || j->it.name[0] == 0 ||
		    (size_t)snprintf(j->out_path, sizeof(j->out_path), "%s/%s", r->sink->dir,
				     name) >= sizeof(j->out_path)) {
			j->ok = 0;
			j->rc = DIME_E_INVALID;
			j->why = "the item's name cannot be an output file name";
			return j;
		}
		/* an empty or truncated output (a crash without --sync) is redone, not skipped */
		if (r->conf->resume && dime_batch_out_complete(r->par->op, j->out_path)) {
			j->ok = -1;
			j->why = "output exists (resumed)";
		}
	}
	return j;
}

/* Pull one item from the source. Returns 1 (job), 0 (end), -1 (source failure). */
static int
batch_pull(struct brun *r, struct bjob **out)
{
	struct dime_batch_item it;
	const char *why = "";
	int rc;

	*out = NULL;
	memset(&it, 0, sizeof(it));
	rc = r->src->next(r->src->ctx, &it, &why);
	if (rc < 0) {
		r->src_failed = 1;
		r->src_why = why;
		return -1;
	}
	if (rc == 0)
		return 0;
	if ((*out = batch_job_new(r, &it)) == NULL) {
		r->src_failed = 1;
		r->src_why = "out of memory";
		return -1;
	}
	return 1;
}

/* Route a pulled job: work for the workers, or a result right away. */
static void
batch_route(struct brun *r, struct bjob *j)
{
	if (j->ok == 1) {
		if (bq_push(&r->jobq, j) != 0)
			bjob_free(j);
	} else if (bq_push(&r->resq, j) != 0) {
		bjob_free(j);
	}
}

static void *
batch_feeder(void *arg)
{
	struct brun *r = arg;
	struct bjob *j;

	while (!batch_stopping() && batch_pull(r, &j) == 1)
		batch_route(r, j);
	bq_close(&r->jobq);
	batch_producer_done(r);
	return NULL;
}

/* The I/O thread: reads the inputs of whole groups through its ring and queues them, and
 * writes what the workers hand back, alternating so neither side starves. */
static void *
batch_io_thread(void *arg)
{
	struct brun *r = arg;
	struct dime_ring *ring = NULL;
	size_t cap = r->batch_max > 64 ? r->batch_max : 64;
	struct bjob **g = calloc(cap, sizeof(*g)), **wg = calloc(cap, sizeof(*wg));
	struct dime_io_rd *rd = calloc(cap, sizeof(*rd));
	struct dime_io_wr *wr = calloc(cap, sizeof(*wr));
	int src_done = 0;

	if (g == NULL || wg == NULL || rd == NULL || wr == NULL ||
	    dime_ring_open(&ring, BATCH_RING_DEPTH, DIME_RING_URING) != 0) {
		r->src_failed = 1;
		r->src_why = "the I/O thread cannot start its ring";
		src_done = 1;
		bq_close(&r->jobq);
	}
	for (;;) {
		size_t nw = bq_pop_many(&r->writeq, (void **)wg, cap, src_done ? -1 : 0);

		if (nw > 0) {
			batch_write_group(r, ring, wr, wg, nw);
			batch_post(r, wg, nw);
		} else if (src_done) {
			break; /* closed: every worker is gone */
		}
		if (!src_done && bq_space(&r->jobq) >= r->batch_max) {
			size_t n = 0;
			struct bjob *j;
			int rc = 1;

			while (n < r->batch_max && !batch_stopping() &&
			       (rc = batch_pull(r, &j)) == 1) {
				if (j->ok == 1)
					g[n++] = j;
				else
					batch_route(r, j);
			}
			if (ring != NULL)
				batch_read_group(r, ring, rd, g, n);
			for (size_t i = 0; i < n; i++)
				batch_route(r, g[i]);
			if (rc != 1 || batch_stopping()) {
				src_done = 1;
				bq_close(&r->jobq);
			}
		} else if (!src_done && nw == 0) {
			/* the workers are saturated: wait for outputs instead of spinning */
			nw = bq_pop_many(&r->writeq, (void **)wg, cap, 1);
			if (nw > 0) {
				batch_write_group(r, ring, wr, wg, nw);
				batch_post(r, wg, nw);
			}
		}
	}
	dime_ring_close(ring);
	free(g);
	free(wg);
	free(rd);
	free(wr);
	batch_producer_done(r);
	return NULL;
}

/* ---- setup ---- */

/* A setup failure's reason outlives the run (dime_batch_run returns it). */
static _Thread_local char batch_setup_why[DIME_PL_MSG_WHY_MAX];

/* The message path for the run: the op and the parties fixed for the whole run. */
static int
batch_setup_msg(struct brun *r, char *why, size_t cap)
{
	const struct dime_batch_params *p = r->par;
	struct dime_pl_msg_conf c;

	memset(&c, 0, sizeof(c));
	c.op = batch_pl_op(p->op);
	c.from = p->from;
	c.to = p->to;
	c.origin_sign = p->origin_sign;
	c.wrap = p->wrap;
	c.as = p->as;
	c.user = p->user;
	c.to_signet = p->to_signet;
	c.to_signet_len = p->to_signet_len;
	return dime_pl_msg_new(&r->pm, why, cap, r->dir, &c);
}

static _Thread_local char batch_why_buf[PATH_MAX + 160];

int
dime_batch_out_dir(const char *dir, const char **why)
{
	char path[PATH_MAX];
	struct stat sb;
	size_t n = strlen(dir);

	*why = "";
	if (n == 0 || n >= sizeof(path)) {
		*why = "the output directory name is empty or too long";
		return DIME_E_IO;
	}
	memcpy(path, dir, n + 1);
	/* mkdir -p: each prefix ending at a '/', then the whole path */
	for (size_t i = 1; i <= n; i++) {
		if (i < n && path[i] != '/')
			continue;
		path[i] = 0;
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			int e = errno;

			snprintf(batch_why_buf, sizeof(batch_why_buf),
				 "cannot create the output directory %s: %s", path, strerror(e));
			*why = batch_why_buf;
			return DIME_E_IO;
		}
		if (i < n)
			path[i] = '/';
	}
	if (stat(dir, &sb) != 0) {
		snprintf(batch_why_buf, sizeof(batch_why_buf), "the output directory %s: %s", dir,
			 strerror(errno));
		*why = batch_why_buf;
		return DIME_E_IO;
	}
	if (!S_ISDIR(sb.st_mode)) {
		snprintf(batch_why_buf, sizeof(batch_why_buf),
			 "the output %s is %s, not a directory", dir,
			 S_ISREG(sb.st_mode) ? "a regular file" : "a special file");
		*why = batch_why_buf;
		return DIME_E_IO;
	}
	return DIME_OK;
}

/* One verdict line as accept / bounce-verify write it. */
static int
batch_line_complete(const uint8_t *p, size_t len)
{
	if (len < 8 || p[len - 1] != '\n' || memchr(p, '\n', len - 1) != NULL)
		return 0;
	return memcmp(p, "ACCEPT ", 7) == 0 || memcmp(p, "BOUNCE ", 7) == 0;
}

int
dime_batch_out_complete(enum dime_batch_op op, const char *path)
{
	struct dime_msg_dump d;
	struct stat sb;
	uint8_t *buf = NULL, *bin = NULL;
	size_t len = 0, bin_len = 0;
	const char *why;
	int fd, armored = 0, ok = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return 0;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size <= 0 ||
	    (uint64_t)sb.st_size > BATCH_IN_MAX) {
		close(fd);
		return 0;
	}
	close(fd);
	if (op == DIME_BATCH_OPEN)
		return 1; /* mail has no trailer; never read plaintext just to look at it */
	if (dime_io_read_file(&buf, &len, path, BATCH_IN_MAX) != 0)
		return 0;
	if (op == DIME_BATCH_ACCEPT || op == DIME_BATCH_BOUNCE_VERIFY) {
		ok = batch_line_complete(buf, len);
	} else if (dime_msg_unarmor(&bin, &bin_len, &armored, &why, buf, len, NULL) == DIME_OK) {
		ok = dime_msg_dump(&d, NULL, 0, &why, bin, bin_len) == DIME_OK;
		free(bin);
	}
	free(buf);
	return ok;
}

/* A run killed by SIGKILL or a crash leaves its temporaries (".NAME.tmp.XXXXXX", io/ring.c)
 * behind; they were never renamed, so they are garbage. One batch per output directory at a
 * time (docs/batch.md), so none of them can be in use now. */
static void
batch_clean_stale(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);

		if (e->d_name[0] == '.' && n > 12 && memcmp(e->d_name + n - 11, ".tmp.", 5) == 0)
			(void)unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

static unsigned
batch_online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 && n < 4096 ? (unsigned)n : 1;
}

static const char *
batch_io_name(enum dime_batch_io io)
{
	switch (io) {
	case DIME_BATCH_IO_RING_PER_WORKER: return "uring-per-worker";
	case DIME_BATCH_IO_THREAD: return "io-thread";
	default: return "plain";
	}
}

static void
batch_collect(struct brun *r, dime_batch_on_result on_result, void *ctx,
	      struct dime_batch_summary *sum)
{
	struct bjob *g[64];
	size_t n;

	while ((n = bq_pop_many(&r->resq, (void **)g, 64, -1)) > 0) {
		for (size_t i = 0; i < n; i++) {
			struct bjob *j = g[i];
			struct dime_batch_result res;

			memset(&res, 0, sizeof(res));
			res.name = j->it.name;
			res.ok = j->ok;
			res.rc = j->ok == 1 ? DIME_OK : j->rc;
			res.sys_errno = j->ok == 0 && j->rc == DIME_E_IO ? j->sys_err : 0;
			res.why = j->why != NULL ? j->why : "";
			res.line = j->line[0] != 0 ? j->line : NULL;
			res.in_bytes = j->raw_len;
			res.out_bytes = j->ok == 1 ? j->out_len : 0;
			res.ns = j->ns;
			if (j->ok == 1) {
				sum->ok++;
				sum->in_bytes += res.in_bytes;
				sum->out_bytes += res.out_bytes;
			} else if (j->ok == -1) {
				sum->skipped++;
			} else if (j->ok == -2) {
				sum->not_started++;
			} else {
				sum->failed++;
			}
			if (on_result != NULL)
				on_result(ctx, &res);
			bjob_free(j);
		}
	}
}

/* --key-process: fork the key process (not supervised: the run ends if it dies), and open
 * the directory over its keys, the store without its secrets. */
static int
batch_kp_dir(struct brun *r, const char *store_path, const char **why)
{
	static _Thread_local char err[320];
	struct dime_kp_conf kc = {0, DIME_KP_HARDEN_ALL, STDERR_FILENO};
	struct dime_pl_dir_conf dc;
	int fds[DIME_KP_CHANNELS_MAX];
	size_t n = r->workers + 2 < DIME_KP_CHANNELS_MAX ? r->workers + 2 : DIME_KP_CHANNELS_MAX;
	size_t n_keys = 0;
	char e[256];
	int rc;

	if ((rc = dime_kp_spawn(&r->kp_pid, fds, n, store_path, &kc, 0, e, sizeof(e))) != DIME_OK) {
		snprintf(err, sizeof(err), "cannot start the key process: %s", e);
		*why = err;
		return rc;
	}
	if ((rc = dime_kp_client_new(&r->kp, fds, n, 0)) != DIME_OK) {
		for (size_t i = 0; i < n; i++)
			close(fds[i]);
		*why = "cannot set up the key process client";
		return rc;
	}
	if ((rc = dime_kp_client_keys(r->kp, &r->kp_ks, &r->kp_keys, &n_keys)) != DIME_OK) {
		/* the key process logged why on stderr (a store it cannot open, say) */
		*why = "the key process did not answer (its reason is above)";
		return rc == DIME_E_AGAIN ? DIME_E_IO : rc;
	}
	memset(&dc, 0, sizeof(dc));
	dc.ks = r->kp_ks;
	dc.keys = r->kp_keys;
	dc.n_keys = n_keys;
	return dime_pl_dir_open_conf(&r->dir, store_path, &dc, why);
}

/* After the directory is closed: the channels close, so the key process ends by itself. */
static void
batch_kp_end(struct brun *r)
{
	int st;

	dime_ks_free(r->kp_ks);
	free(r->kp_keys);
	dime_kp_client_free(r->kp);
	r->kp_ks = NULL;
	r->kp_keys = NULL;
	r->kp = NULL;
	if (r->kp_pid > 0)
		while (waitpid(r->kp_pid, &st, 0) < 0 && errno == EINTR)
			;
	r->kp_pid = -1;
}

int
dime_batch_run(const struct dime_batch_conf *conf, const struct dime_batch_params *params,
	       const char *store_path, struct dime_batch_source *src,
	       const struct dime_batch_sink *sink, dime_batch_on_result on_result, void *ctx,
	       struct dime_batch_summary *sum, const char **why)
{
	struct brun r;
	struct bworker *w = NULL;
	pthread_t feeder;
	unsigned started = 0;
	size_t depth;
	uint64_t t0 = batch_now_ns();
	struct dime_pl_pool_conf pc;
	unsigned w_sync = 0; /* workers whose mu and cv are set up */
	int rc = DIME_OK, feeder_started = 0;

	*why = "";
	memset(sum, 0, sizeof(*sum));
	memset(&pc, 0, sizeof(pc));
	memset(&r, 0, sizeof(r));
	if (conf == NULL || params == NULL || src == NULL || src->next == NULL ||
	    conf->batch_max > BATCH_GROUP_MAX || conf->workers > 1024) {
		*why = "invalid batch configuration";
		return DIME_E_INVALID;
	}
	r.conf = conf;
	r.par = params;
	r.src = src;
	r.sink = sink;
	r.workers = conf->workers ? conf->workers : batch_online_cpus();
	r.batch_max = conf->batch_max ? conf->batch_max : 32;
	/* docs/batch.md, "I/O": with a core left over, an I/O thread there overlaps the reads and
	 * writes with the workers' crypto (measured +6-24% at one worker on two cores); with
	 * every core busy it would compete with them, and a ring per worker is never slower
	 * than plain read/write (faster with sync). */
	r.io = conf->io;
	if (r.io == DIME_BATCH_IO_AUTO)
		r.io = r.workers < batch_online_cpus() ? DIME_BATCH_IO_THREAD
						       : DIME_BATCH_IO_RING_PER_WORKER;
	if ((r.io == DIME_BATCH_IO_RING_PER_WORKER || r.io == DIME_BATCH_IO_THREAD) &&
	    !dime_io_uring_available())
		r.io = DIME_BATCH_IO_PLAIN;
	if (sink != NULL && sink->dir != NULL) {
		if ((rc = dime_batch_out_dir(sink->dir, why)) != DIME_OK)
			return rc;
		batch_clean_stale(sink->dir);
	}
	depth = conf->queue_depth ? conf->queue_depth : 4u * r.workers * r.batch_max;
	r.kp_pid = -1;
	if (conf->key_process)
		rc = batch_kp_dir(&r, store_path, why);
	else
		rc = dime_pl_dir_open(&r.dir, store_path, why);
	if (rc != DIME_OK) {
		batch_kp_end(&r);
		return rc;
	}
	if (dime_batch_op_name(params->op)[0] == '?') {
		*why = "unknown operation";
		rc = DIME_E_INVALID;
	} else if ((rc = batch_setup_msg(&r, batch_setup_why, sizeof(batch_setup_why))) !=
		   DIME_OK) {
		*why = batch_setup_why;
	}
	if (rc != DIME_OK)
		goto out;
	/* the groups run on a pool of the run's size; every worker's whole group fits its
	 * queue, so a submit is never refused */
	pc.workers = r.workers;
	pc.batch_max = r.batch_max;
	pc.deadline_us = BATCH_POOL_DEADLINE_US;
	pc.queue_max = (size_t)r.workers * r.batch_max;
	if (bq_init(&r.jobq, depth) != 0 || bq_init(&r.writeq, depth) != 0 ||
	    bq_init(&r.resq, depth) != 0 || (w = calloc(r.workers, sizeof(*w))) == NULL ||
	    dime_pl_pool_new(&r.pool, &pc) != DIME_OK ||
	    dime_pl_pool_lane(r.pool, &r.lane, r.pm) != DIME_OK) {
		rc = DIME_E_NOMEM;
		*why = "cannot set up the workers";
		goto out;
	}
	for (; w_sync < r.workers; w_sync++) {
		if (pthread_mutex_init(&w[w_sync].mu, NULL) != 0) {
			rc = DIME_E_NOMEM;
			break;
		}
		if (pthread_cond_init(&w[w_sync].cv, NULL) != 0) {
			pthread_mutex_destroy(&w[w_sync].mu);
			rc = DIME_E_NOMEM;
			break;
		}
	}
	if (rc != DIME_OK) {
		*why = "cannot set up the workers";
		goto out;
	}
	atomic_store(&r.live_workers, r.workers);
	atomic_store(&r.live_producers, r.workers + 1);
	for (unsigned i = 0; i < r.workers; i++) {
		w[i].r = &r;
		w[i].pj = calloc(r.batch_max, sizeof(*w[i].pj));
		w[i].g = calloc(r.batch_max, sizeof(*w[i].g));
		w[i].rd = calloc(r.batch_max, sizeof(*w[i].rd));
		w[i].wr = calloc(r.batch_max, sizeof(*w[i].wr));
		if (w[i].pj == NULL || w[i].g == NULL || w[i].rd == NULL || w[i].wr == NULL ||
		    (r.io != DIME_BATCH_IO_THREAD &&
		     dime_ring_open(&w[i].ring, BATCH_RING_DEPTH,
				    r.io == DIME_BATCH_IO_PLAIN ? DIME_RING_PLAIN
								: DIME_RING_URING) != 0)) {
			rc = DIME_E_NOMEM;
			*why = "cannot set up the workers";
			goto out;
		}
	}
	for (; started < r.workers; started++)
		if (pthread_create(&w[started].tid, NULL, batch_worker, &w[started]) != 0)
			break;
	if (started == r.workers)
		feeder_started =
		    pthread_create(&feeder, NULL,
				   r.io == DIME_BATCH_IO_THREAD ? batch_io_thread : batch_feeder,
				   &r) == 0;
	if (!feeder_started) {
		/* what is running drains a closed queue and exits; the rest never counts */
		bq_close(&r.jobq);
		atomic_fetch_sub(&r.live_workers, r.workers - started);
		if (started < r.workers && atomic_load(&r.live_workers) == 0)
			bq_close(&r.writeq);
		if (atomic_fetch_sub(&r.live_producers, r.workers - started + 1) ==
		    r.workers - started + 1)
			bq_close(&r.resq);
		rc = DIME_E_NOMEM;
		*why = "cannot start the batch threads";
	}
	/* results are handed to the caller on its own thread until the last producer is done */
	batch_collect(&r, on_result, ctx, sum);
	if (feeder_started)
		pthread_join(feeder, NULL);
	for (unsigned i = 0; i < started; i++)
		pthread_join(w[i].tid, NULL);
	if (r.src_failed && rc == DIME_OK) {
		rc = DIME_E_IO;
		*why = r.src_why;
	}
out:
	sum->seconds = (double)(batch_now_ns() - t0) / 1e9;
	sum->workers = r.workers;
	sum->stopped = batch_stopping();
	sum->io = batch_io_name(r.io);
	if (r.pool != NULL) {
		struct dime_pl_pool_stats ps;

		/* every group has run: the workers that waited on them are joined */
		dime_pl_pool_stats(r.pool, &ps);
		sum->engine_batches = ps.groups;
		sum->engine_items = ps.jobs;
	}
	dime_pl_pool_free(r.pool);
	if (w != NULL)
		for (unsigned i = 0; i < r.workers; i++) {
			dime_ring_close(w[i].ring);
			free(w[i].pj);
			free(w[i].g);
			free(w[i].rd);
			free(w[i].wr);
		}
	for (unsigned i = 0; i < w_sync; i++) {
		pthread_cond_destroy(&w[i].cv);
		pthread_mutex_destroy(&w[i].mu);
	}
	free(w);
	bq_destroy(&r.jobq);
	bq_destroy(&r.writeq);
	bq_destroy(&r.resq);
	dime_pl_msg_free(r.pm);
	dime_pl_dir_close(r.dir);
	batch_kp_end(&r);
	return rc;
}

/* ---- a dime_source as the batch's source ---- */

static int
batch_source_next(void *ctx, struct dime_batch_item *it, const char **why)
{
	struct dime_source_item si;
	int rc;

	memset(&si, 0, sizeof(si));
	rc = dime_source_next(ctx, &si, why);
	if (rc <= 0)
		return rc;
	snprintf(it->name, sizeof(it->name), "%s", si.name);
	it->path = si.path;
	it->data = si.data;
	it->len = si.len;
	it->err = si.err;
	it->why = si.why;
	it->no_symlinks = si.no_symlinks;
	si.path = NULL; /* the item owns them now */
	si.data = NULL;
	dime_source_item_free(&si);
	return 1;
}

void
dime_batch_source_of(struct dime_batch_source *bs, struct dime_source *src)
{
	memset(bs, 0, sizeof(*bs));
	bs->ctx = src;
	bs->next = batch_source_next;
	bs->count_hint = dime_source_count_hint(src);
}

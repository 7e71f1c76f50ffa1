#ifndef DIME_PIPELINE_BATCH_H
#define DIME_PIPELINE_BATCH_H
/* The batch engine: a pool of workers that wraps, origin-signs, accepts, opens, re-keys and
 * verifies bounces for many messages, with bounded queues, batched engine calls and hot-key
 * caches. docs/batch.md explains the design and the measurements behind its choices.
 *
 * Data flow: a feeder thread pulls items from the source into a bounded queue (back-pressure:
 * it blocks when the queue is full); each worker takes up to batch_max items at once, reads
 * their files (io_uring or plain), runs ONE batched engine call for the group, writes the
 * outputs (temporary name, then rename) and posts one result per item to the results queue,
 * which the calling thread drains: the caller's callback runs on the caller's thread only.
 * One bad message never stops a batch. */

#include <stddef.h>
#include <stdint.h>

#include "dime/msg.h"
#include "dime/store.h"

#ifdef __cplusplus
extern "C" {
#endif

enum dime_batch_op {
	DIME_BATCH_WRAP = 1, /* mail -> D/MIME as --from for --to (optionally origin-signed) */
	DIME_BATCH_ORIGIN_SIGN = 2,
	DIME_BATCH_ACCEPT = 3, /* output: "ACCEPT <recipient> <fp>\n" per message */
	DIME_BATCH_OPEN = 4,   /* D/MIME -> mail */
	DIME_BATCH_REKEY = 5,
	DIME_BATCH_BOUNCE_VERIFY = 6 /* output: "BOUNCE <author> <destination> <code> ..." */
};

/* Parse "wrap", "origin-sign", ... Returns the op, or 0 for an unknown name. */
enum dime_batch_op dime_batch_op_parse(const char *name);
const char *dime_batch_op_name(enum dime_batch_op op);

/* What the operation needs, as `dime msg` takes it. Strings are borrowed for the run. */
struct dime_batch_params {
	enum dime_batch_op op;
	const char *from, *to; /* wrap: author and recipient addresses */
	int origin_sign;       /* wrap: add the origin's signatures too */
	struct dime_msg_wrap_opts wrap;
	enum dime_msg_actor as;	  /* open: DIME_ACTOR_RECIPIENT or DIME_ACTOR_AUTHOR */
	const char *user;	  /* open, rekey: only this hosted user's keys (NULL: any) */
	const uint8_t *to_signet; /* rekey: the new signet (binary or armored) */
	size_t to_signet_len;
	int binary; /* wrap, origin-sign, rekey: binary output instead of armor */
};

enum dime_batch_io {
	DIME_BATCH_IO_AUTO = 0, /* io-thread when workers < online CPUs, else ring per worker
				 * (docs/batch.md, "I/O", has the measurements) */
	DIME_BATCH_IO_RING_PER_WORKER = 1, /* each worker reads and writes through its own ring */
	DIME_BATCH_IO_THREAD = 2, /* one I/O thread with one ring feeds and drains the workers */
	DIME_BATCH_IO_PLAIN = 3	  /* read(2)/write(2), no io_uring */
};

struct dime_batch_conf {
	unsigned workers;     /* 0: the online CPUs */
	unsigned batch_max;   /* items per engine batch call; 0: 32; 1: no batching */
	unsigned queue_depth; /* bounded queue length in items; 0: 4 * workers * batch_max */
	enum dime_batch_io io;
	int sync;	 /* fsync outputs before renaming them, and their directory after
			  * (0: rename only; `dime batch` defaults to 1 for open) */
	int resume;	 /* skip items whose output already exists and is complete
			  * (dime_batch_out_complete); an incomplete one is redone */
	int key_process; /* keys in a key process forked for the run (dime/keyproc.h, not
			  * supervised, one channel per worker + 2): this process opens the store
			  * without its secrets and never holds a private key. Outputs are the
			  * same bytes. Its refusals, if any, are logged on stderr. */
};

/* One input, as the source yields it: a path to read, or bytes already in memory (mbox,
 * generated). The pipeline owns and frees both once the item is done. */
struct dime_batch_item {
	char name[256]; /* unique, filesystem-safe; the output's base name */
	char *path;	/* malloc'd, or NULL when data is set */
	uint8_t *data;	/* malloc'd */
	size_t len;
	int err; /* a source-level problem with this item (-errno: -EFBIG oversize, -EXDEV a
		  * link leading out of the input): reported as failed, not processed */
	const char *why;
	int no_symlinks; /* path must be opened refusing any symbolic link in it */
};

/* Where items come from. next returns 1 (item filled), 0 (end) or a negative value with *why
 * (the source failed: the batch stops taking work and reports it). Called from one thread. */
struct dime_batch_source {
	void *ctx;
	int (*next)(void *ctx, struct dime_batch_item *it, const char **why);
	uint64_t count_hint; /* expected items, 0: unknown (progress ETA) */
};

struct dime_source;
/* bs reads its items from src (dime/source.h: a directory, a Maildir, an mbox), which must
 * outlive the run; bs->count_hint is src's. */
void dime_batch_source_of(struct dime_batch_source *bs, struct dime_source *src);

/* One output handed to a sink. */
struct dime_batch_out {
	const char *name; /* in: the item's */
	const uint8_t *out;
	size_t len;
	int rc;		 /* out: DIME_OK, or the error the item is reported failed with */
	const char *why; /* out, with an error: static or thread-local (it is copied) */
	char *line;	 /* out: an optional receipt (what the output became: a queue ID, ...),
			  * NUL-terminated, line_cap octets; a non-empty one is reported as
			  * dime_batch_result.line, in place of the op's verdict line */
	size_t line_cap;
};

/* Where outputs go: a directory (files NAME + the op's suffix), or a callback, or nowhere (both
 * unset). put is called from worker threads (it must be thread-safe) with the outputs of one
 * group at once (rc preset to DIME_OK, why NULL, line empty), so a sink can commit them
 * together; it sets each item's rc (and why) and may write its receipt. */
struct dime_batch_sink {
	const char *dir;
	void (*put)(void *ctx, struct dime_batch_out *outs, size_t n);
	void *ctx;
};

struct dime_batch_result {
	const char *name;
	int ok;		  /* 1: done; 0: failed (rc, why); -1: skipped (resume: output exists);
			   * -2: not started (the batch was stopped before its group ran) */
	int rc;		  /* DIME_OK or the engine's / I/O's error */
	int sys_errno;	  /* with rc DIME_E_IO: the errno behind it (ENOSPC, EROFS, ...), else 0 */
	const char *why;  /* static or owned by the pipeline until the callback returns */
	const char *line; /* accept / bounce-verify: the verdict line without newline; a sink's
			   * receipt (dime_batch_sink.put); else NULL */
	size_t in_bytes, out_bytes;
	uint64_t ns; /* latency: from its worker taking the item's group to the group's
		      * outputs written (the whole group's time, not a share of it) */
};

struct dime_batch_summary {
	uint64_t ok, failed, skipped, not_started;
	uint64_t in_bytes, out_bytes;
	double seconds;
	unsigned workers;
	int stopped;	/* dime_batch_stop was called */
	const char *io; /* the I/O mode used ("uring-per-worker", "io-thread", "plain") */
	uint64_t engine_batches, engine_items; /* batched engine calls and items through them */
};

typedef void (*dime_batch_on_result)(void *ctx, const struct dime_batch_result *r);

/* Run a batch to the end of the source (or until dime_batch_stop). Keys and signets come from
 * the store at store_path (read-only use; each thread that needs it opens its own handle).
 * Returns: DIME_OK when the batch ran (individual failures are in the results and the
 * summary); DIME_E_INVALID (bad conf or params, *why), DIME_E_NOTFOUND (a party or key the
 * whole batch needs is missing, *why), DIME_E_IO (the source or the output directory failed,
 * *why), DIME_E_NOMEM. */
DIME_MUST_CHECK int dime_batch_run(const struct dime_batch_conf *conf,
				   const struct dime_batch_params *params, const char *store_path,
				   struct dime_batch_source *src,
				   const struct dime_batch_sink *sink,
				   dime_batch_on_result on_result, void *ctx,
				   struct dime_batch_summary *sum, const char **why);

/* Ask every running batch to stop taking work: in-flight groups finish, their outputs are
 * written, the rest is left for a resumed run. Async-signal-safe. */
void dime_batch_stop(void);
/* Clear a previous stop request (before a new run in the same process). */
void dime_batch_stop_clear(void);

/* Create the output directory dir and its missing parents (mode 0700), like mkdir -p.
 * dime_batch_run calls it; callers call it first when they need the directory to exist before
 * the run (to compare it with the input).
 * Returns: DIME_OK; DIME_E_IO with *why naming the problem ("... is a regular file, not a
 *          directory", "cannot create the output directory: <strerror>"; thread-local storage,
 *          valid until the next call on this thread). */
DIME_MUST_CHECK int dime_batch_out_dir(const char *dir, const char **why);

/* Is the existing output at path a complete output of op? Outputs are renamed into place
 * complete, but without sync a crash can leave an empty or truncated file under the final
 * name. Checks: a regular non-empty file; .dime: armor or binary that frames as a whole D/MIME
 * message (dime_msg_dump); .txt: one whole "ACCEPT "/"BOUNCE " line; .eml: non-empty (plain
 * mail has no trailer: sync is what makes it safe, hence its default for open).
 * Returns: 1 complete, 0 missing or incomplete. */
int dime_batch_out_complete(enum dime_batch_op op, const char *path);

/* The output file name of an item for op: name + ".dime" (wrap, origin-sign, rekey),
 * ".eml" (open), ".txt" (accept, bounce-verify). Returns: snprintf's result. */
int dime_batch_out_name(char *buf, size_t cap, enum dime_batch_op op, const char *name);

#ifdef __cplusplus
}
#endif
#endif

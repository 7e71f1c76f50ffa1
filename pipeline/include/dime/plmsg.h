#ifndef DIME_PIPELINE_PLMSG_H
#define DIME_PIPELINE_PLMSG_H
/* One message path for `dime msg`, `dime batch` and the daemon: each operation is one group
 * call over n >= 1 jobs (the CLI calls it with n = 1), which classifies the input, finds the
 * hosted key and the signets through the party directory (dime/dir.h), runs ONE batched engine
 * call for the group (dime_msg_*_batch) and writes each job's output, verdict line and reason.
 * The rules that used to live in every caller live here: which parties an actor needs, the
 * re-key rule (docs/rekey.md), the ACCEPT / REJECT / BOUNCE / INVALID lines, how bounce-verify
 * finds its organisation, and the reason texts ("not a D/MIME message: <why>", and the name
 * and address of a party that is missing).
 *
 * Objects: struct dime_pl_msg (per run: the operation and the parties fixed for the whole run;
 * read-only after dime_pl_msg_new, shared by every worker) and struct dime_pl_msg_worker (per
 * thread: KEK memo and scratch). Jobs are the caller's. */

#include <stddef.h>
#include <stdint.h>

#include "dime/dir.h"
#include "dime/msg.h"

#ifdef __cplusplus
extern "C" {
#endif

enum dime_pl_msg_op {
	DIME_PL_MSG_WRAP = 1,
	DIME_PL_MSG_ORIGIN_SIGN = 2,
	DIME_PL_MSG_ACCEPT = 3,
	DIME_PL_MSG_OPEN = 4,
	DIME_PL_MSG_REKEY = 5,
	DIME_PL_MSG_BOUNCE = 6,
	DIME_PL_MSG_BOUNCE_VERIFY = 7
};

#define DIME_PL_MSG_LINE_MAX (2 * DIME_MSG_ADDR_MAX + DIME_MSG_BOUNCE_REASON_MAX + 64)
#define DIME_PL_MSG_WHY_MAX  (DIME_MSG_ADDR_MAX + 256)

/* What is fixed for a run. Strings are borrowed until dime_pl_msg_free. */
struct dime_pl_msg_conf {
	enum dime_pl_msg_op op;
	/* wrap: author and recipient addresses (lower case), the origin's signatures too */
	const char *from, *to;
	int origin_sign;
	struct dime_msg_wrap_opts wrap;
	/* open: DIME_ACTOR_RECIPIENT or DIME_ACTOR_AUTHOR */
	enum dime_msg_actor as;
	/* open, rekey: the hosted user the messages are for (NULL: any hosted user) */
	const char *user;
	/* origin-sign, accept, bounce: the hosted org the messages are for (NULL: any) */
	const char *org;
	/* rekey: the new signet, binary or armored */
	const uint8_t *to_signet;
	size_t to_signet_len;
	/* bounce */
	enum dime_msg_bounce_code code;
	const char *reason;
	int display;
};

/* One message. in is borrowed for the call. why points to static text or into msg[] (copy the
 * text, not the pointer, before the job is reused or moved). */
struct dime_pl_msg_job {
	/* in: the binary message (wrap: the RFC 5322 mail; bounce-verify: the bounce object) */
	const uint8_t *in;
	size_t in_len;
	/* out */
	int rc; /* DIME_OK or the failure */
	const char *why;
	uint8_t *out; /* owned, release with dime_pl_msg_job_clear: wrap, origin-sign, rekey:
		       * the binary message; bounce: the binary bounce; open: the mail */
	size_t out_len;
	char line[DIME_PL_MSG_LINE_MAX]; /* accept: "ACCEPT <recipient> <fp>" or "REJECT <why>";
					  * bounce-verify: "BOUNCE <author> <destination> <code>
					  * <reason>" or "INVALID <why>"; other ops: "" */
	char msg[DIME_PL_MSG_WHY_MAX];	 /* storage for a composed why */
	char missing[256]; /* with rc DIME_E_NOTFOUND because the store lacks a signet the
			    * envelope names (accept, open, origin-sign): whose (an address or a
			    * domain), so a caller can fetch it and run the job again; else "" */
};

struct dime_pl_msg;
struct dime_pl_msg_worker;

/* Set up a run of conf->op over dir: the parties fixed for the run are looked up now (wrap:
 * the four signets and the author's key, the origin's key with origin_sign; rekey: the new
 * signet is parsed).
 * Returns: DIME_OK, DIME_E_INVALID (bad conf), DIME_E_NOTFOUND (a party is missing),
 *          DIME_E_NOMEM. Out: *m (NULL on failure); why (cap why_cap) names what failed.
 * Borrows dir and conf's strings until dime_pl_msg_free. */
DIME_MUST_CHECK int dime_pl_msg_new(struct dime_pl_msg **m, char *why, size_t why_cap,
				    struct dime_pl_dir *dir, const struct dime_pl_msg_conf *conf);
void dime_pl_msg_free(struct dime_pl_msg *m); /* NULL-safe */

/* Per-thread state for groups of up to group_max jobs (larger groups run in slices).
 * Returns: DIME_OK, DIME_E_NOMEM. */
DIME_MUST_CHECK int dime_pl_msg_worker_new(struct dime_pl_msg_worker **w,
					   const struct dime_pl_msg *m, size_t group_max);
void dime_pl_msg_worker_free(struct dime_pl_msg_worker *w); /* NULL-safe */

/* The operations. Each runs jobs[0..n) as one group: every job gets rc, why, out and line
 * exactly as if it ran alone (one job's input never changes another's result). The run's op
 * must be the function's (programmer error otherwise). Earlier outputs of the jobs must have
 * been cleared (dime_pl_msg_job_clear).
 * Returns: the number of jobs that failed. */
size_t dime_pl_msg_wrap(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n);
size_t dime_pl_msg_origin_sign(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs,
			       size_t n);
size_t dime_pl_msg_accept(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n);
size_t dime_pl_msg_open(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n);
size_t dime_pl_msg_rekey(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n);
size_t dime_pl_msg_bounce(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n);
/* Bounces name no org in the clear (their keyslots are ciphertext): every hosted org is
 * tried, without a cap, the one that verified last first, each for the whole group. */
size_t dime_pl_msg_bounce_verify(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs,
				 size_t n);
/* The run's operation. */
size_t dime_pl_msg_run(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n);

/* Wipe and free a job's output and reset its results (in is kept). */
void dime_pl_msg_job_clear(struct dime_pl_msg_job *j);

/* ---- input ---- */

/* The largest input, armored, that can carry a binary object of `limit` bytes: read at most
 * this + 1 bytes of input, then refuse. limit 0: the operation's engine limit. */
size_t dime_pl_msg_input_max(enum dime_pl_msg_op op, size_t limit);

/* How much input can belong to one object of op, judged from its first bytes (head), so that a
 * reader stops early: armor (after optional whitespace) may take dime_pl_msg_input_max; a
 * binary object takes what its header says plus one byte (to see trailing bytes).
 * Returns: DIME_OK (*bound set), DIME_E_AGAIN (too few bytes to tell yet; *bound is
 *          dime_pl_msg_input_max), DIME_E_LIMIT (the header announces more than the limit),
 *          DIME_E_MALFORMED (neither armor nor the op's magic number). On failure *why is
 *          "not a D/MIME message: <why>" (static). */
DIME_MUST_CHECK int dime_pl_msg_input_bound(size_t *bound, const char **why, enum dime_pl_msg_op op,
					    size_t limit, const uint8_t *head, size_t head_len);

/* Turn raw input into the binary object op works on: armored (the label op reads) or binary,
 * at most `limit` binary bytes (0: the engine's limit) and dime_pl_msg_input_max(op, limit)
 * input bytes, classified by dime_pl_msg_input_bound first. wrap: any bytes are mail (only
 * the size is checked).
 * Returns: DIME_OK, DIME_E_LIMIT, DIME_E_MALFORMED (not armor of this kind, or empty),
 *          DIME_E_NOMEM. On failure *why is "not a D/MIME message: <why>" (static).
 * Out: *out (malloc'd, the caller wipes and frees it), *out_len, *armored. */
DIME_MUST_CHECK int dime_pl_msg_decode(uint8_t **out, size_t *out_len, int *armored,
				       const char **why, enum dime_pl_msg_op op, size_t limit,
				       const uint8_t *in, size_t in_len);

#ifdef __cplusplus
}
#endif
#endif

#ifndef DIME_DAEMON_OUTQ_H
#define DIME_DAEMON_OUTQ_H
/* The outbound queue: each message to another domain (one transaction per recipient) is kept
 * durably until it is delivered, bounced or deleted by the operator (docs/outq.md).
 *
 * Files, under root (0700):
 *   msg/<id>   the envelope (origin domain and fingerprint, author, recipient, destination
 *              fingerprint) and the armored message, written once:
 *              tmp/, fsync, rename, fsync msg/ before dime_outq_put returns;
 *   state/<id> the delivery state (attempts, first and next attempt, last error, delay
 *              notice sent), replaced atomically (tmp/, fsync, rename, fsync state/) after
 *              each attempt. A message without a state file is due at once.
 * The index is in memory: a list rebuilt at open from state/ and msg/ (a crash loses nothing
 * but an attempt's bookkeeping: the attempt is made again, and DMTP's 255 DUPLICATE makes that
 * harmless).
 *
 * Retries: the first after policy.first_retry, each interval doubling, never more than
 * policy.max_interval apart; a delay notice is due once policy.delay_notice has passed since
 * the message was queued; at policy.give_up the message is given up (the caller bounces it).
 * Every time is Unix seconds passed in: tests inject the clock.
 *
 * Thread-safe: one lock around the index; file I/O is blocking (call from workers, never from a
 * loop thread). */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DIME_OUTQ_ID_MAX 64u

struct dime_outq_policy {
	unsigned first_retry;  /* s before the second attempt (0: 300) */
	unsigned max_interval; /* s between attempts at most (0: 43,200 = 12 h) */
	unsigned delay_notice; /* s after which a delay notice is due (0: 14,400 = 4 h) */
	unsigned give_up;      /* s after which the message is bounced (0: 432,000 = 5 days) */
};

/* What a DMTP transaction needs besides the message, fixed when it was wrapped: MAIL FROM's
 * domain and fingerprint (the org signet that origin-signed it), RCPT TO's fingerprint (the
 * destination org signet it was wrapped to), the recipient, and the author (who is told of a
 * delay or a bounce). Each printable ASCII without spaces, 1..255 octets. */
struct dime_outq_env {
	const char *origin;    /* the sending org's domain */
	const char *origin_fp; /* full or crypto fingerprint, base64 */
	const char *author;    /* an address hosted here */
	const char *recipient; /* an address at the destination */
	const char *dest_fp;   /* the destination org's fingerprint, base64 */
};

struct dime_outq_entry {
	char id[DIME_OUTQ_ID_MAX + 1];
	char origin[256];    /* the sending org's domain */
	char origin_fp[88];  /* MAIL FROM FINGERPRINT */
	char author[256];    /* told of delays and bounces */
	char recipient[256]; /* the address */
	char dest_fp[88];    /* RCPT TO FINGERPRINT */
	int64_t created;     /* when it was queued */
	int64_t next;	     /* the next attempt is due then */
	uint32_t attempts;
	int delay_notified;
	int claimed; /* handed out by dime_outq_due and not yet reported */
	uint64_t size;
	char last_error[256];
};

struct dime_outq;

/* Open (creating root, tmp/, msg/, state/) and rebuild the index; tmp/ is emptied (never
 * acknowledged). A msg/ file without a valid envelope is moved aside to root/corrupt/ for the
 * operator and never delivered (the open still succeeds). policy may be NULL (the defaults).
 * Returns: DIME_OK, DIME_E_IO (why: path and errno), DIME_E_NOMEM, DIME_E_INVALID (a policy
 * whose give_up is shorter than its delay_notice). */
DIME_MUST_CHECK int dime_outq_open(struct dime_outq **q, const char *root,
				   const struct dime_outq_policy *policy, char *why,
				   size_t why_cap);
void dime_outq_close(struct dime_outq *q); /* NULL-safe */

/* Open flags. READONLY: the open itself changes nothing, for a process that is not the queue's
 * owner (`dime queue` beside a running dimed): root and its directories must exist, tmp/ is not
 * emptied (dimed's or `dime send`'s writes may be in flight there), nothing is moved to corrupt/
 * and no orphan state file is removed (a damaged msg/ file is skipped). The explicit operations
 * (dime_outq_retry_now, dime_outq_done) still write, through tmp/ like the owner's. */
#define DIME_OUTQ_OPEN_READONLY 0x1u

/* dime_outq_open with flags (0: the same as dime_outq_open). */
DIME_MUST_CHECK int dime_outq_open_flags(struct dime_outq **q, const char *root,
					 const struct dime_outq_policy *policy, unsigned flags,
					 char *why, size_t why_cap);

/* Bring the index up to the files: add msg/ files written by another process (`dime send`, a
 * second handle), drop unclaimed entries whose msg/ file vanished (`dime queue delete`) and
 * reload the state of unclaimed entries from state/ (`dime queue retry` rewrote it: the file
 * wins). Claimed entries are left alone: their worker reports on them. Owner mode also moves a
 * damaged new msg/ file to corrupt/ and removes the state file of a vanished message.
 * Returns: DIME_OK, DIME_E_IO (msg/ unreadable), DIME_E_NOMEM. Out: *added, *dropped (each may
 * be NULL). */
DIME_MUST_CHECK int dime_outq_rescan(struct dime_outq *q, size_t *added, size_t *dropped);

/* The entry id as the index holds it. Returns: DIME_OK, DIME_E_NOTFOUND. Out: *e (zeroed when
 * not found). */
DIME_MUST_CHECK int dime_outq_get(struct dime_outq *q, const char *id, struct dime_outq_entry *e);

/* Queue a message durably, due at once, with its envelope. id_out receives the new id (random,
 * DIME_OUTQ_ID_MAX).
 * Puts made at the same time by several threads share one group commit (dime_outq_put_many).
 * Returns: DIME_OK, DIME_E_INVALID (a missing or bad envelope value), DIME_E_IO (*err the
 * errno), DIME_E_NOMEM. */
DIME_MUST_CHECK int dime_outq_put(struct dime_outq *q, char id_out[DIME_OUTQ_ID_MAX + 1],
				  const struct dime_outq_env *env, const uint8_t *msg, size_t len,
				  int64_t now, int *err);

/* One message of dime_outq_put_many: in, dime_outq_put's arguments; out, its results. */
struct dime_outq_item {
	const struct dime_outq_env *env;
	const uint8_t *msg;
	size_t len;
	int64_t now;
	char id[DIME_OUTQ_ID_MAX + 1]; /* out: the new id ("" on failure) */
	int rc, err;		       /* out: as dime_outq_put returns them */
};

/* Queue n messages as dime_outq_put would, as one group commit: every file written, their
 * fsyncs at once, each renamed into msg/, msg/ fsynced once (per 64). Blocking.
 * Returns: how many items are DIME_OK. */
size_t dime_outq_put_many(struct dime_outq *q, struct dime_outq_item *items, size_t n);

/* Claim up to cap entries due at now (next <= now, not claimed), oldest first: each is handed
 * out once until dime_outq_done, _deferred or _release reports on it. Returns: how many. */
size_t dime_outq_due(struct dime_outq *q, struct dime_outq_entry *out, size_t cap, int64_t now);

/* The earliest next attempt among unclaimed entries (INT64_MAX when none): when to look again. */
int64_t dime_outq_next_due(struct dime_outq *q);

/* The armored message of id (malloc'd; the caller frees it).
 * Returns: DIME_OK, DIME_E_NOTFOUND, DIME_E_IO, DIME_E_NOMEM. */
DIME_MUST_CHECK int dime_outq_read(struct dime_outq *q, const char *id, uint8_t **msg, size_t *len);

/* Delivered (or bounced): remove it. Returns: DIME_OK, DIME_E_NOTFOUND, DIME_E_IO. */
DIME_MUST_CHECK int dime_outq_done(struct dime_outq *q, const char *id);

enum dime_outq_verdict {
	DIME_OUTQ_RETRY = 0,	    /* deferred: next attempt scheduled */
	DIME_OUTQ_NOTIFY_DELAY = 1, /* deferred, and the delay notice is due now (once) */
	DIME_OUTQ_GIVE_UP = 2	    /* past give_up: bounce it, then dime_outq_done */
};

/* A temporary failure: the attempt counts, the next one is scheduled, the state file is
 * replaced durably. Returns: DIME_OK, DIME_E_NOTFOUND, DIME_E_IO. Out: *v, *next (may be
 * NULL). */
DIME_MUST_CHECK int dime_outq_deferred(struct dime_outq *q, const char *id, const char *error,
				       int64_t now, enum dime_outq_verdict *v, int64_t *next);

/* Give a claimed entry back without an attempt (shutdown). */
void dime_outq_release(struct dime_outq *q, const char *id);

/* Operator: make id due at now (dime queue retry). Returns: DIME_OK, DIME_E_NOTFOUND,
 * DIME_E_IO. */
DIME_MUST_CHECK int dime_outq_retry_now(struct dime_outq *q, const char *id, int64_t now);

/* Every entry, oldest first: fn returning nonzero stops. Returns: entries visited. */
size_t dime_outq_list(struct dime_outq *q, int (*fn)(const struct dime_outq_entry *e, void *arg),
		      void *arg);

/* The interval after the given number of attempts under policy (0 fields: defaults). */
unsigned dime_outq_interval(const struct dime_outq_policy *policy, uint32_t attempts);

#ifdef __cplusplus
}
#endif
#endif

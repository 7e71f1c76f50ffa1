#ifndef DIME_DAEMON_SPOOL_H
#define DIME_DAEMON_SPOOL_H
/* The durable spool of accepted messages: one file per message, written to tmp/, fsynced,
 * renamed into queue/, and queue/ fsynced before the caller answers 254. A recovery pass at
 * open removes what tmp/ holds (never acknowledged). Thread-safe: puts from many threads at
 * once share group commits. Knows nothing of DMTP. */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"

struct dime_spool;

/* Open (create 0700) root/tmp and root/queue and clean root/tmp. Returns: DIME_OK, DIME_E_IO
 * (why names the path and errno), DIME_E_NOMEM. */
DIME_MUST_CHECK int dime_spool_open(struct dime_spool **s, const char *root, char *why,
				    size_t why_cap);
void dime_spool_close(struct dime_spool *s); /* NULL-safe */

/* Write one message durably under the name id (a-z A-Z 0-9 - _ ., at most 128) with its
 * envelope (recipient, origin domain: one header line each before the message). Blocking:
 * call from a worker, never a loop thread. Puts made at the same time by several threads are
 * committed together (dime_spool_put_many: their fsyncs at once, one fsync of queue/), each
 * returning its own result when the group is durable. Returns: DIME_OK, DIME_E_IO (*err the errno:
 * ENOSPC, EROFS...), DIME_E_INVALID (bad id), DIME_E_AGAIN with *err EEXIST (id already
 * queued, durably: a duplicate) or EINPROGRESS (id being written by another call right now,
 * which may still fail: try again later). */
DIME_MUST_CHECK int dime_spool_put(struct dime_spool *s, const char *id, const char *recipient,
				   const char *origin, const uint8_t *msg, size_t len, int *err);

/* One message of dime_spool_put_many: in, the arguments of dime_spool_put; out, its rc and
 * *err. */
struct dime_spool_item {
	const char *id, *recipient, *origin;
	const uint8_t *msg;
	size_t len;
	int rc, err;
};

/* Put n messages as dime_spool_put would (each file written and fsynced, then renamed), but
 * all files written before the first fsync, their fsyncs run at once (dime_io_fsync_many, so
 * they share journal commits), and ONE fsync of queue/ for them all (per 64 items): a group commit
 * of transactions that arrived together. Every item's rc and err are set as dime_spool_put returns
 * them (an id twice in one group: the second is EINPROGRESS, as for two puts racing); when the
 * shared fsync fails, each item that was DIME_OK (its entry taken back) or DIME_E_AGAIN/EEXIST
 * becomes DIME_E_IO with that errno. Blocking, as dime_spool_put. Returns: the items DIME_OK. */
size_t dime_spool_put_many(struct dime_spool *s, struct dime_spool_item *items, size_t n);
#endif

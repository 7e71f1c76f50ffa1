#ifndef DIME_DAEMON_SPOOL_INT_H
#define DIME_DAEMON_SPOOL_INT_H
/* What the delivery thread needs of the spool: its directory fds and the envelope reader. */

#include <pthread.h>
#include <stddef.h>

#include "dime/spool.h"

struct spool_waiter;

struct dime_spool {
	int root_fd, tmp_fd, queue_fd, held_fd;
	char root[4096];
	/* dime_spool_put's group commit: the puts waiting, and whether one of them is committing
	 * a group now (the leader; the others wait for it or for their turn to lead). */
	pthread_mutex_t gc_mu;
	pthread_cond_t gc_cv;
	int gc_init, gc_busy;
	struct spool_waiter *gc_head, *gc_tail;
};

/* Split a spooled file's bytes into its envelope and the message (a view into buf).
 * Returns: DIME_OK or DIME_E_MALFORMED (no complete envelope). */
int dime_spool_parse(const char *buf, size_t len, char *recipient, size_t rcpt_cap, char *origin,
		     size_t origin_cap, const char **msg, size_t *msg_len);
#endif

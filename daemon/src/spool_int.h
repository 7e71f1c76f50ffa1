#ifndef DIME_DAEMON_SPOOL_INT_H
#define DIME_DAEMON_SPOOL_INT_H
/* What the delivery thread needs of the spool: its directory fds and the envelope reader. */

#include <stddef.h>

#include "dime/io.h"
#include "dime/spool.h"

struct dime_spool {
	int root_fd, tmp_fd, queue_fd, held_fd;
	char root[4096];
	struct dime_io_group gc; /* dime_spool_put's group commit */
	int gc_init;
};

/* Split a spooled file's bytes into its envelope and the message (a view into buf).
 * Returns: DIME_OK or DIME_E_MALFORMED (no complete envelope). */
int dime_spool_parse(const char *buf, size_t len, char *recipient, size_t rcpt_cap, char *origin,
		     size_t origin_cap, const char **msg, size_t *msg_len);
#endif

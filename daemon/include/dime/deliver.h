#ifndef DIME_DAEMON_DELIVER_H
#define DIME_DAEMON_DELIVER_H
/* Delivery of spooled messages, each still a D/MIME message (armored): to a Maildir per user
 * (<root>/<domain>/<local>/new, written via tmp/ with fsync and rename: the Maildir rule) or
 * by LMTP to a downstream server. A message leaves the spool's queue/ only after delivery
 * succeeded, so a crash between the two delivers it again (at least once; the 255 DUPLICATE
 * table keeps a resend out). A delivery thread of its own drains queue/ in order. */

#include "dime/common.h"
#include "dime/dconf.h"
#include "dime/spool.h"

struct dime_deliver;

/* Start delivering what s's queue/ holds now and what is put later (dime_deliver_kick).
 * Returns: DIME_OK, DIME_E_IO, DIME_E_NOMEM. */
DIME_MUST_CHECK int dime_deliver_start(struct dime_deliver **d, const struct dime_dconf *c,
				       struct dime_spool *s, char *why, size_t why_cap);
/* A message was queued: deliver it soon. Any thread. */
void dime_deliver_kick(struct dime_deliver *d);
/* Deliver what is queued, then stop (drain 1), or stop now (0). NULL-safe. */
void dime_deliver_stop(struct dime_deliver *d, int drain);
#endif

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

#include <stddef.h>
#include <stdint.h>

struct dime_deliver;

/* Start delivering what s's queue/ holds now and what is put later (dime_deliver_kick).
 * Returns: DIME_OK, DIME_E_IO, DIME_E_NOMEM. */
DIME_MUST_CHECK int dime_deliver_start(struct dime_deliver **d, const struct dime_dconf *c,
				       struct dime_spool *s, char *why, size_t why_cap);
/* A message was queued: deliver it soon. Any thread. */
void dime_deliver_kick(struct dime_deliver *d);
/* Returns: 1 when d delivers to Maildirs (dime_deliver_now can be used), else 0. NULL-safe. */
int dime_deliver_is_maildir(const struct dime_deliver *d);
/* Deliver msg to rcpt's Maildir now, without the spool, by the Maildir rule (tmp/, fsync, link
 * into new/ as id and the host, fsync new/), for a caller that answers only once it is durable
 * (the SMTP gateway: its MTA keeps the mail until then, so no queue of ours is needed). Calls
 * made at once by several threads share one group commit. Blocking; any thread.
 * Returns: DIME_OK (*dup 1: new/ held this id already, a repeat: no second copy), DIME_E_IO
 *          (why: the Maildir and errno; try later), DIME_E_INVALID (why: not a Maildir
 *          delivery, or a recipient no Maildir can hold). */
DIME_MUST_CHECK int dime_deliver_now(struct dime_deliver *d, int *dup, const char *id,
				     const char *rcpt, const uint8_t *msg, size_t len, char *why,
				     size_t why_cap);
/* Deliver what is queued, then stop (drain 1), or stop now (0). NULL-safe. */
void dime_deliver_stop(struct dime_deliver *d, int drain);
#endif

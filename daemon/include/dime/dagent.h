#ifndef DIME_DAEMON_DAGENT_H
#define DIME_DAEMON_DAGENT_H
/* The outbound delivery agent: worker threads take due messages from the outbound queue
 * (dime/outq.h) and deliver each over DMTP to its destination (docs/delivery.md "Delivery
 * agent"). For each message: the destination's management record (it must be found: the
 * message is D/MIME already and never goes naked), the hosts (dime_dx_route), then the first
 * host whose session opens (a certificate that does not match the record is logged and
 * skipped, nothing is sent to it) gets MAIL FROM=<origin> FINGERPRINT=[origin_fp], RCPT
 * TO=<recipient's domain> FINGERPRINT=[dest_fp], DATA (spec Part 7).
 *
 * Outcomes: 250/254/255 done (255 DUPLICATE: a resend after a crash already arrived); 4xx, a
 * lost connection, no host reachable, no record: deferred (the author gets one delay notice,
 * then a bounce at give-up); 5xx: bounced at once. Notices and bounces are RFC 3464 delivery
 * status notifications from MAILER-DAEMON@<origin>, written into the author's Maildir
 * (<maildir_root>/<domain>/<local>/new, tmp/ + fsync + rename), with the D/MIME message
 * attached as it was queued (ciphertext: no plaintext is ever quoted).
 *
 * Thread-safety: dime_dagent_kick and dime_dagent_stats from any thread; the rest from the
 * thread that started it. */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dime_outq;
struct dime_dns;
struct dime_mr_cache;
struct dime_dx_conf;
struct dime_dx_ports;

typedef int64_t (*dime_dagent_now_fn)(void *arg); /* unix seconds */

struct dime_dagent_conf {
	struct dime_outq *q;		   /* borrowed; outlives the agent */
	struct dime_dns *dns;		   /* borrowed: records and MX hosts */
	struct dime_mr_cache *cache;	   /* borrowed, shared by the workers; may be NULL */
	const struct dime_dx_conf *dx;	   /* borrowed: the DMTP client's settings */
	const struct dime_dx_ports *ports; /* borrowed; NULL: 26; 25, 587 */
	const char *maildir_root;	   /* the authors' Maildirs (notices, bounces) */
	const char *hostname;		   /* Reporting-MTA of the notices */
	unsigned workers;		   /* threads (0: none; the caller runs dime_dagent_run) */
	unsigned batch;			   /* messages one worker claims at once (0: 2) */
	dime_dagent_now_fn now;		   /* NULL: time(NULL) */
	void *now_arg;
	unsigned rescan_s; /* also rescan the queue this often (0: never; dimed: 60) */
};

struct dime_dagent_stats {
	uint64_t delivered, duplicates, deferred, bounced, notices;
	uint64_t sessions;     /* DMTP sessions opened */
	uint64_t tls_mismatch; /* hosts skipped: their certificate matched no tls= value */
};

struct dime_dagent;

/* Start the workers. Returns: DIME_OK, DIME_E_INVALID (no q, dns, dx or maildir_root),
 * DIME_E_NOMEM, DIME_E_IO (a thread). Out: *out (NULL on failure), why. */
DIME_MUST_CHECK int dime_dagent_start(struct dime_dagent **out, const struct dime_dagent_conf *c,
				      char *why, size_t why_cap);

/* Something may be due: wake the workers (after dime_outq_rescan, a put, a signal). */
void dime_dagent_kick(struct dime_dagent *a);

/* Rescan the queue (dime_outq_rescan), then kick. Any thread. */
void dime_dagent_rescan(struct dime_dagent *a);

/* On the calling thread: deliver what is due at the conf's now, until nothing is. For
 * workers = 0 (tests drive the clock). Returns: messages attempted. */
size_t dime_dagent_run(struct dime_dagent *a);

void dime_dagent_stats(struct dime_dagent *a, struct dime_dagent_stats *st);

/* Stop: each worker finishes the transaction in progress, gives back (dime_outq_release) what
 * it claimed and has not started, and exits; then free. NULL-safe. */
void dime_dagent_stop(struct dime_dagent *a);

#ifdef __cplusplus
}
#endif
#endif

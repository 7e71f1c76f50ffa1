#ifndef DIME_DAEMON_SENDPATH_H
#define DIME_DAEMON_SENDPATH_H
/* The steps of sending to another domain that `dime send` and the SMTP gateway (dime/gwflow.h)
 * share, so that both take one path: who may author trustful mail (a hosted user with keys, its
 * domain a hosted org), and how a recipient's disposition is found (the signet resolver, then
 * the policy). Blocking (store, DNS, DMTP fetches); thread-safe given one store handle per
 * thread. */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"
#include "dime/plmsg.h"
#include "dime/policy.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dime_store;
struct dime_sf_conf;

/* Whether author (lower case) may author trustful mail here: its user signet is hosted in st,
 * its user key is there, and domain (its domain) is a hosted org with a current signet.
 * Returns: DIME_OK (origin_fp: that org signet's full fingerprint), DIME_E_NOTFOUND (why: which
 *          of the three is missing), DIME_E_IO (the store). Out: origin_fp ("" on failure). */
DIME_MUST_CHECK int dime_send_author(struct dime_store *st, char origin_fp[88], const char *author,
				     const char *domain, char *why, size_t why_cap);

/* How a message to one recipient leaves. */
struct dime_send_route {
	int rc;			   /* dime_sf_resolve's return */
	enum dime_send_action act; /* dime_send_decide's answer */
	char why[DIME_PL_MSG_WHY_MAX + 64];
	char dest_fp[88]; /* the destination org signet's full fingerprint ("" when none) */
};

/* Resolve rcpt (lower case) with the signet resolver over st, then decide by our policy
 * (enum dime_mrec_policy) and the destination's.
 * Returns: DIME_OK (*r filled, whatever the disposition), DIME_E_NOMEM, DIME_E_IO (the store:
 *          r->why). */
DIME_MUST_CHECK int dime_send_route(struct dime_send_route *r, const struct dime_sf_conf *sf,
				    struct dime_store *st, int policy, const char *rcpt,
				    int64_t now);

#ifdef __cplusplus
}
#endif
#endif

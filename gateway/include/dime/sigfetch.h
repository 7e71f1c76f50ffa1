#ifndef DIME_GATEWAY_SIGFETCH_H
#define DIME_GATEWAY_SIGFETCH_H
/* The signet resolver (spec Parts 4, 5 and 7; docs/resolver.md "Signets"): from a domain or an
 * address to validated signets of another organisation. It finds the management record
 * (dime/mrloc.h), connects to the domain's DMTP hosts (dime/dx.h, in the order dime_dx_route
 * gives), asks SGNT for the org signet and SGNT, VRFY or HIST for a user's, judges every answer
 * (dime/sigres.h) and keeps what validated in the store: as verified signets of a non-hosted
 * identity (so the message path, dime/plmsg.h, wraps to them unchanged), with the time they
 * were fetched, and absences (576 for an address) as negative entries. Nothing that failed
 * validation is stored or returned: a signet that cannot be checked is never used.
 *
 * Cache rules: a stored signet fetched less than signet_ttl ago is used without asking; an
 * older one is refreshed with VRFY (current: kept, its time renewed; otherwise the new one is
 * judged, with custody checked against the stored version, HIST when it does not link
 * directly); an absence is remembered neg_ttl. When a refresh fails temporarily the stored
 * signet keeps serving while its record does (dime_mr_cache's stale rule).
 *
 * Blocking (DNS, network, SQLite): call from a thread that may block (a delivery worker, the
 * CLI). Thread-safe given one store handle per thread. */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"
#include "dime/dx.h"
#include "dime/mrloc.h"
#include "dime/signet.h"
#include "dime/sigres.h"
#include "dime/store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DIME_SF_SIGNET_TTL 86400u /* s a fetched signet is used before it is checked again */
#define DIME_SF_NEG_TTL	   3600u  /* s an address without a signet is remembered */

struct dime_sf_conf {
	struct dime_dns *dns;
	struct dime_mr_cache *mr_cache; /* may be NULL */
	const struct dime_dx_conf *dx;
	const struct dime_dx_ports *ports; /* NULL: 26; 25, 587 */
	unsigned signet_ttl_s;		   /* 0: DIME_SF_SIGNET_TTL */
	unsigned neg_ttl_s;		   /* 0: DIME_SF_NEG_TTL */
};

enum dime_sf_source {
	DIME_SF_FETCHED = 1,  /* asked over DMTP now */
	DIME_SF_CACHED = 2,   /* fresh in the store */
	DIME_SF_REFRESHED = 3 /* stored, confirmed current with VRFY now */
};

struct dime_sf_result {
	struct dime_mr_result mr;     /* the record, where and how it was found */
	enum dime_sr_basis basis;     /* how the org signet is validated */
	unsigned tls;		      /* DIME_SR_TLS_* of the host that answered (0 when cached) */
	char host[300];		      /* "host[addr]:port" that answered, or "" */
	struct dime_signet *org;      /* owned: the domain's validated org signet */
	struct dime_signet *user;     /* owned: an address's validated user signet, else NULL */
	char org_fp[88], user_fp[88]; /* full fingerprints, base64 ("" when none) */
	enum dime_sf_source org_src, user_src;
	size_t hist_links; /* custody links checked through HIST (0 when none was needed) */
	char why[256];	   /* on failure: what decided it */
};

/* Resolve target (a domain: its org signet; an address: the org signet of its domain and the
 * user's signet) at now (Unix seconds).
 * Returns: DIME_OK (r->org, and r->user for an address, validated);
 *          DIME_E_NOTFOUND (proven absent: the domain is legacy (r->mr.status), or the host
 *          answered 576 for the address; negative-cached);
 *          DIME_E_AGAIN (could not tell now: DNS tempfail, no host answered, 476);
 *          DIME_E_BADSIG (an answer or the record does not validate: bogus DNS, a certificate
 *          that matches no tls= value, a signet failing its POK, org or custody check; never
 *          downgraded to legacy, never cached);
 *          DIME_E_INVALID (target is neither a domain nor an address), DIME_E_IO (the store),
 *          DIME_E_NOMEM. r->why says what decided a failure.
 * Out: *r (dime_sf_result_clear), filled as far as it got. */
DIME_MUST_CHECK int dime_sf_resolve(struct dime_sf_result *r, const struct dime_sf_conf *conf,
				    struct dime_store *st, const char *target, int64_t now);

/* Free r's signets and zero it. NULL-safe. */
void dime_sf_result_clear(struct dime_sf_result *r);

#ifdef __cplusplus
}
#endif
#endif

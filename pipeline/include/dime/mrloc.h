#ifndef DIME_PIPELINE_MRLOC_H
#define DIME_PIPELINE_MRLOC_H
/* Finding a domain's management record (spec Part 4 "Location", as WIRE.md settles it):
 * TXT at `_dime.<d>` then `_dx.<d>`, walked from the organisational domain (the registrable
 * domain, by the public suffix list) down to the target, the nearest ancestor's `sub` policy
 * deciding for subdomains without their own record. docs/resolver.md.
 *
 * Outcomes never confuse "no record" with "could not tell": only a complete walk whose every
 * answer was validated (or configured) can make a domain legacy; a bogus answer anywhere is
 * BOGUS, a server failure TEMPFAIL, and neither is ever cached as legacy.
 *
 * The walk is one pure state machine (dime_mr_walk_*) driven by a blocking driver
 * (dime_mr_resolve_sync, for the CLI and pool workers) or by answers posted to a loop
 * (dime_mr_resolve). A cache (dime_mr_cache) keeps results by the record's TTL; a record whose
 * TTL ran out keeps serving, while refreshes fail (TEMPFAIL or BOGUS), for up to its `exp` days
 * since it was last validated: a failing or attacked DNS never shortens what was proven.
 *
 * Thread-safety: a walk belongs to one thread at a time; the cache has its own lock. */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"
#include "dime/dns.h"
#include "dime/mrec.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dime_io_loop;

#define DIME_MR_DEPTH_MAX  8u	/* domains walked below the organisational one, at most */
#define DIME_MR_NEG_TTL	   300u /* seconds a proven absence (legacy) is cached */
#define DIME_MR_MIN_TTL	   60u	/* a record is cached at least this long */
#define DIME_MR_DOMAIN_MAX 253u

enum dime_mr_status {
	DIME_MR_FOUND = 0,    /* a valid record applies to the target */
	DIME_MR_LEGACY = 1,   /* proven: no record applies (naked delivery per policy) */
	DIME_MR_TEMPFAIL = 2, /* a lookup failed or timed out: try later, never legacy */
	DIME_MR_BOGUS = 3,    /* DNSSEC validation failed: never used, never legacy */
	DIME_MR_INVALID = 4   /* a record exists but does not parse: the domain is broken */
};

/* Returns: a static name ("found", "legacy", "tempfail", "bogus", "invalid"). */
const char *dime_mr_status_name(enum dime_mr_status s);

struct dime_mr_result {
	enum dime_mr_status status;
	enum dime_dns_sec sec; /* the weakest level among the answers the verdict rests on */
	char target[DIME_MR_DOMAIN_MAX + 1];
	char domain[DIME_MR_DOMAIN_MAX + 1]; /* FOUND: whose record applies (target or ancestor) */
	char name[DIME_MR_DOMAIN_MAX + 6];   /* FOUND: the DNS name it came from */
	char txt[DIME_MREC_MAX_BYTES + 1];   /* FOUND/INVALID: the record's text */
	struct dime_mrec rec;		     /* FOUND: parsed; views point into txt */
	uint32_t ttl;			     /* seconds the verdict may be cached */
	int64_t validated; /* unix seconds of the lookup (cache: of the last one) */
	int stale;	   /* from the cache past its TTL (a refresh failed) */
	char why[256];	   /* not FOUND: what decided it */
};

/* Copy a result (the parsed views are moved to the copy's own text). */
void dime_mr_result_copy(struct dime_mr_result *dst, const struct dime_mr_result *src);

/* ---- the walk ---- */

struct dime_mr_walk {
	struct dime_mr_result r;
	char chain[DIME_MR_DEPTH_MAX + 1][DIME_MR_DOMAIN_MAX + 1]; /* org domain ... target */
	size_t n_chain, at;
	int prefix; /* 0: asking _dime.<chain[at]>, 1: _dx.<chain[at]> */
	int have;   /* a record was found at or above chain[at] */
	int done;
	char q[DIME_MR_DOMAIN_MAX + 6];
	struct dime_mr_result nearest; /* the most specific record so far */
	uint32_t min_ttl;
};

/* Start a walk for domain (a domain, or an address whose domain part is used). now: unix
 * seconds. Returns: DIME_OK, DIME_E_INVALID (not a domain name; w->r.why says why). */
DIME_MUST_CHECK int dime_mr_walk_init(struct dime_mr_walk *w, const char *domain, int64_t now);
/* The next TXT name to look up, or NULL once w->r holds the verdict. */
const char *dime_mr_walk_next(struct dime_mr_walk *w);
/* Feed the answer to the name dime_mr_walk_next gave: rc and a as dime_dns_fn receives them. */
void dime_mr_walk_answer(struct dime_mr_walk *w, int rc, const struct dime_dns_answer *a);

/* ---- the cache ---- */

struct dime_mr_cache;

DIME_MUST_CHECK int dime_mr_cache_new(struct dime_mr_cache **out, size_t max_entries);
void dime_mr_cache_free(struct dime_mr_cache *c); /* NULL-safe */
/* A cached verdict for target, fresh at now. Returns: 1 (fresh: *out filled), 0 (none, or
 * expired: look it up). */
int dime_mr_cache_get(struct dime_mr_cache *c, struct dime_mr_result *out, const char *target,
		      int64_t now);
/* Record a walk's verdict, applying the rules above: FOUND and LEGACY replace the entry;
 * TEMPFAIL and BOGUS leave a FOUND entry serving (marked stale) until its exp days since
 * validation, and are never cached themselves. Out: *use, the verdict to act on now (the
 * stale record, or r). */
void dime_mr_cache_put(struct dime_mr_cache *c, struct dime_mr_result *use,
		       const struct dime_mr_result *r, int64_t now);

struct dime_mr_cache_stats {
	uint64_t hits, misses, stale_served;
	size_t entries;
};
void dime_mr_cache_stats(struct dime_mr_cache *c, struct dime_mr_cache_stats *st);

/* ---- drivers ---- */

/* Resolve target now (blocking; the cache may be NULL). Returns: DIME_OK (see out->status),
 * DIME_E_INVALID (not a domain), DIME_E_NOMEM. */
DIME_MUST_CHECK int dime_mr_resolve_sync(struct dime_dns *dns, struct dime_mr_cache *cache,
					 struct dime_mr_result *out, const char *target,
					 int64_t now);

/* Resolve on loop: fn(arg, result) runs on loop (never inside this call), the result valid
 * during the call. Returns: DIME_OK, DIME_E_INVALID, DIME_E_NOMEM. */
typedef void (*dime_mr_fn)(void *arg, const struct dime_mr_result *r);
DIME_MUST_CHECK int dime_mr_resolve(struct dime_dns *dns, struct dime_mr_cache *cache,
				    struct dime_io_loop *loop, const char *target, int64_t now,
				    dime_mr_fn fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif

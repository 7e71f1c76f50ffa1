/* The signet resolver: management record, DMTP hosts in route order, SGNT / VRFY / HIST, every
 * answer judged by dime/sigres.h, what validated kept in the store with its fetch time
 * (dime_store_fetch_*), absences remembered. Blocking; one store handle per thread. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dime/sigfetch.h"

/* The DMTP replies of spec Part 7 that carry or confirm signets. */
#define SF_ORG_SIGNET	270
#define SF_ORG_CURRENT	271
#define SF_USER_SIGNET	280
#define SF_USER_CURRENT 281
#define SF_HISTORY	290
#define SF_TEMP		476
#define SF_UNAVAILABLE	576
#define SF_HIST_MAX	64u /* custody links asked for at most */

/* One resolution's connection: opened lazily on the first operation that needs the network,
 * hop after hop in route order, kept for the operations that follow. */
struct sf_conn {
	const struct dime_sf_conf *conf;
	struct dime_sf_result *r;
	struct dime_dx *x;
	struct dime_dx_hop hops[DIME_DX_HOPS_MAX];
	size_t n_hops, next;
	int routed, route_rc;
	int badsig; /* a host's certificate matched no tls= value */
	char why[256];
};

void
dime_sf_result_clear(struct dime_sf_result *r)
{
	if (r == NULL)
		return;
	dime_signet_free(r->org);
	dime_signet_free(r->user);
	memset(r, 0, sizeof(*r));
}

static void sf_why(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Compose a reason (truncated as it must be: it is for people). */
static void
sf_why(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, cap, fmt, ap);
	va_end(ap);
}

static int sf_fail(struct dime_sf_result *r, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
sf_fail(struct dime_sf_result *r, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	return rc;
}

/* The armored part of a 270/280/290 reply's text: up to the end of its last "-----END " line
 * (the final line's text, "OK ...", follows it). Returns: its length (0: none). */
static size_t
sf_armor_len(const char *text)
{
	size_t len = 0;

	for (const char *p = text; p != NULL && *p != 0;) {
		const char *nl = strchr(p, '\n');

		if (strncmp(p, "-----END ", 9) == 0)
			len = nl != NULL ? (size_t)(nl - text) + 1 : strlen(text);
		p = nl != NULL ? nl + 1 : NULL;
	}
	return len;
}

/* ---- the connection ---- */

/* Open the next hop that answers. Returns: DIME_OK (c->x), DIME_E_AGAIN or DIME_E_BADSIG (no
 * host left: BADSIG when some host's certificate did not match and none worked), NOMEM. */
static int
sf_open(struct sf_conn *c)
{
	char why[256];

	if (!c->routed) {
		c->routed = 1;
		c->route_rc = dime_dx_route(c->hops, DIME_DX_HOPS_MAX, &c->n_hops, c->conf->dns,
					    &c->r->mr, c->conf->ports, c->why, sizeof(c->why));
	}
	if (c->route_rc != DIME_OK)
		return c->route_rc == DIME_E_NOTFOUND || c->route_rc == DIME_E_INVALID
			   ? DIME_E_AGAIN
			   : c->route_rc;
	while (c->next < c->n_hops) {
		const struct dime_dx_hop *h = &c->hops[c->next++];
		struct dime_dx_peer peer;
		int rc;

		memset(&peer, 0, sizeof(peer));
		peer.host = h->host;
		peer.port = h->port;
		peer.mode = h->mode;
		peer.rec = &c->r->mr.rec;
		why[0] = 0;
		rc = dime_dx_open(&c->x, c->conf->dx, &peer, why, sizeof(why));
		if (rc == DIME_OK) {
			sf_why(c->r->host, sizeof(c->r->host), "%s", dime_dx_peer_name(c->x));
			c->r->tls = dime_dx_tls(c->x);
			return DIME_OK;
		}
		if (rc == DIME_E_NOMEM)
			return rc;
		if (rc == DIME_E_BADSIG)
			c->badsig = 1;
		/* the first certificate mismatch is the reason worth keeping */
		if (rc == DIME_E_BADSIG || c->why[0] == 0 || !c->badsig)
			sf_why(c->why, sizeof(c->why), "%s", why);
	}
	return c->badsig ? DIME_E_BADSIG : DIME_E_AGAIN;
}

/* Run op on the current host, moving on to the next when the connection fails. */
static int
sf_run(struct sf_conn *c, const struct dime_dmtp_client_op *op,
       const struct dime_dmtp_client_result **res)
{
	char why[256];
	int rc;

	*res = NULL;
	for (;;) {
		if (c->x == NULL && (rc = sf_open(c)) != DIME_OK)
			return rc;
		why[0] = 0;
		rc = dime_dx_run(c->x, op, res, why, sizeof(why));
		if (rc == DIME_OK)
			return DIME_OK;
		sf_why(c->why, sizeof(c->why), "%s: %s", dime_dx_peer_name(c->x), why);
		dime_dx_close(c->x);
		c->x = NULL;
		if (rc != DIME_E_AGAIN)
			return rc;
	}
}

/* ---- the store ---- */

/* The latest verified signet of ident (kind) stored as another domain's (not hosted).
 * Returns: DIME_OK (*s owned), DIME_E_NOTFOUND, DIME_E_IO, DIME_E_NOMEM. *hosted: the row is
 * hosted (then *s is set too). */
static int
sf_stored(struct dime_signet **s, int *hosted, struct dime_store *st, const char *ident,
	  enum dime_store_kind kind)
{
	struct dime_store_row row;
	uint8_t *blob = NULL;
	size_t len = 0;
	int rc;

	*s = NULL;
	*hosted = 0;
	rc = dime_store_get(st, &blob, &len, &row, ident, kind, 0);
	if (rc == DIME_E_INVALID)
		rc = DIME_E_NOTFOUND;
	if (rc != DIME_OK)
		return rc;
	/* a stored signet that no longer parses is as good as none: it is fetched again */
	if (dime_signet_parse(s, NULL, blob, len) != DIME_OK)
		rc = DIME_E_NOTFOUND;
	*hosted = row.hosted;
	free(blob);
	return rc;
}

/* Armor s for a sigres judgement. Returns: malloc'd text or NULL. */
static char *
sf_armor(const struct dime_signet *s, size_t *len)
{
	char *t;

	*len = 0;
	if (dime_signet_armor(NULL, 0, len, s) != DIME_OK || (t = malloc(*len + 1)) == NULL)
		return NULL;
	if (dime_signet_armor(t, *len + 1, len, s) != DIME_OK) {
		free(t);
		return NULL;
	}
	t[*len] = 0;
	return t;
}

/* Keep a validated signet of another domain: verified, not hosted, with its fetch time. One
 * transaction. Bytes already stored (pending, say) are marked verified. */
static int
sf_keep(struct dime_store *st, const char *ident, enum dime_store_kind kind,
	const struct dime_signet *s, int64_t now)
{
	struct dime_view b = dime_signet_bytes(s);
	struct dime_store_row row;
	char fp[DIME_FP_B64_LEN + 1];
	int rc;

	if ((rc = dime_signet_fingerprint_b64(fp, s, DIME_FP_FULL)) != DIME_OK)
		return rc;
	if ((rc = dime_store_begin(st)) != DIME_OK)
		return rc;
	if ((rc = dime_store_put(st, NULL, ident, kind, b.p, b.len, 0, 0, fp)) != DIME_OK ||
	    (rc = dime_store_find(st, &row, ident, kind, b.p, b.len)) != DIME_OK)
		goto out;
	if (row.state != DIME_STORE_VERIFIED &&
	    (rc = dime_store_set_state(st, row.rowid, DIME_STORE_VERIFIED)) != DIME_OK)
		goto out;
	rc = dime_store_fetch_put(st, ident, kind, now, 0);
out:
	if (rc == DIME_OK)
		return dime_store_commit(st);
	dime_store_rollback(st);
	return rc;
}

/* ---- hosted identities ---- */

static int
sf_hosted(struct dime_sf_result *r, struct dime_store *st, const char *domain, const char *addr,
	  struct dime_signet *org)
{
	int hosted = 0, rc;

	r->mr.status = DIME_MR_FOUND;
	r->mr.sec = DIME_DNS_CONFIGURED;
	sf_why(r->mr.target, sizeof(r->mr.target), "%s", domain);
	sf_why(r->mr.domain, sizeof(r->mr.domain), "%s", domain);
	r->basis = DIME_SR_DNSSEC;
	r->org = org;
	r->org_src = DIME_SF_CACHED;
	if ((rc = dime_signet_fingerprint_b64(r->org_fp, org, DIME_FP_FULL)) != DIME_OK)
		return rc;
	if (addr == NULL)
		return DIME_OK;
	rc = sf_stored(&r->user, &hosted, st, addr, DIME_STORE_USER_SIGNET);
	if (rc == DIME_E_NOTFOUND)
		return sf_fail(r, rc, "%s is not a user of this host", addr);
	if (rc != DIME_OK)
		return rc;
	r->user_src = DIME_SF_CACHED;
	return dime_signet_fingerprint_b64(r->user_fp, r->user, DIME_FP_FULL);
}

/* ---- the org signet ---- */

/* Is the entry (ident, kind) fresh at now for ttl? absent: what it says. */
static int
sf_fresh(struct dime_store *st, int *absent, const char *ident, enum dime_store_kind kind,
	 int64_t now, unsigned ttl)
{
	int64_t at = 0;

	*absent = 0;
	if (dime_store_fetch_get(st, &at, absent, ident, kind) != DIME_OK)
		return 0;
	return at <= now && now - at < (int64_t)ttl;
}

static int
sf_judge_org(struct sf_conn *c, struct dime_signet **out, unsigned tls, const char *text,
	     size_t len)
{
	const char *why = "";
	int rc = dime_sr_org(out, &c->r->basis, &why, &c->r->mr, tls, text, len);

	if (rc != DIME_OK)
		sf_why(c->r->why, sizeof(c->r->why), "org signet of %s: %s", c->r->mr.domain, why);
	return rc == DIME_E_MALFORMED || rc == DIME_E_INVALID ? DIME_E_BADSIG : rc;
}

/* A stored org signet, judged again against the record as it is now (its POKs may have
 * rotated). It was judged with the answering host's certificate when it was fetched; the
 * certificate bits stand for that check. */
static int
sf_rejudge_org(struct sf_conn *c, struct dime_signet **out, const struct dime_signet *stored,
	       unsigned tls)
{
	size_t len;
	char *t = sf_armor(stored, &len);
	int rc;

	if (t == NULL)
		return DIME_E_NOMEM;
	rc = sf_judge_org(c, out, tls, t, len);
	free(t);
	return rc;
}

static int
sf_org(struct sf_conn *c, struct dime_store *st, int64_t now, unsigned ttl)
{
	struct dime_sf_result *r = c->r;
	const struct dime_dmtp_client_result *res = NULL;
	struct dime_dmtp_client_op op;
	struct dime_signet *stored = NULL;
	char fp[DIME_FP_B64_LEN + 1];
	int hosted = 0, absent = 0, rc;

	rc = sf_stored(&stored, &hosted, st, r->mr.domain, DIME_STORE_ORG_SIGNET);
	if (rc != DIME_OK && rc != DIME_E_NOTFOUND)
		goto out;
	if (stored != NULL &&
	    sf_fresh(st, &absent, r->mr.domain, DIME_STORE_ORG_SIGNET, now, ttl) && !absent) {
		rc = sf_rejudge_org(c, &r->org, stored, DIME_SR_TLS_RECORD | DIME_SR_TLS_CA);
		if (rc == DIME_OK) {
			r->org_src = DIME_SF_CACHED;
			goto out;
		}
		/* the record no longer vouches for it: ask */
		r->why[0] = 0;
	}
	memset(&op, 0, sizeof(op));
	op.target = r->mr.domain;
	if (stored != NULL) {
		if ((rc = dime_signet_fingerprint_b64(fp, stored, DIME_FP_FULL)) != DIME_OK)
			goto out;
		op.kind = DIME_DMTP_CLIENT_VRFY;
		op.fp = fp;
	} else {
		op.kind = DIME_DMTP_CLIENT_SGNT;
	}
	if ((rc = sf_run(c, &op, &res)) != DIME_OK) {
		sf_why(r->why, sizeof(r->why), "org signet of %s: %s", r->mr.domain,
		       c->why[0] != 0 ? c->why : "no host answered");
		/* a refresh that failed temporarily: the stored signet serves on (its record does,
		 * having been found now or served stale by the cache) */
		if (rc == DIME_E_AGAIN && stored != NULL &&
		    sf_rejudge_org(c, &r->org, stored, DIME_SR_TLS_RECORD | DIME_SR_TLS_CA) ==
			DIME_OK) {
			r->org_src = DIME_SF_CACHED;
			rc = DIME_OK;
		}
		goto out;
	}
	switch (res->code) {
	case SF_ORG_CURRENT:
		if ((rc = sf_rejudge_org(c, &r->org, stored, r->tls)) != DIME_OK)
			goto out;
		r->org_src = DIME_SF_REFRESHED;
		break;
	case SF_ORG_SIGNET:
		/* A rotated org signet is judged on the record's POKs alone: sigres has no custody
		 * rule for org signets (the POKs are the anchor). */
		if ((rc = sf_judge_org(c, &r->org, r->tls, res->text, sf_armor_len(res->text))) !=
		    DIME_OK)
			goto out;
		r->org_src = DIME_SF_FETCHED;
		break;
	case SF_TEMP:
		rc = sf_fail(r, DIME_E_AGAIN, "org signet of %s: %s answered 476", r->mr.domain,
			     r->host);
		goto out;
	default:
		/* A domain with a record and no org signet is broken, not legacy: defer. */
		sf_why(r->why, sizeof(r->why), "org signet of %s: the host answered %d %s",
		       r->mr.domain, res->code, res->text);
		rc = DIME_E_AGAIN;
		goto out;
	}
	rc = sf_keep(st, r->mr.domain, DIME_STORE_ORG_SIGNET, r->org, now);
out:
	if (rc == DIME_OK)
		rc = dime_signet_fingerprint_b64(r->org_fp, r->org, DIME_FP_FULL);
	dime_signet_free(stored);
	return rc;
}

/* ---- the user signet ---- */

static int
sf_judge_user(struct dime_sf_result *r, struct dime_signet **out, const char *addr,
	      const struct dime_signet *previous, const char *text, size_t len)
{
	const char *why = "";
	int rc = dime_sr_user(out, &why, addr, r->org, previous, text, len);

	if (rc != DIME_OK)
		sf_why(r->why, sizeof(r->why), "user signet of %s: %s", addr, why);
	return rc == DIME_E_MALFORMED ? DIME_E_BADSIG : rc;
}

static int
sf_rejudge_user(struct dime_sf_result *r, struct dime_signet **out, const char *addr,
		const struct dime_signet *stored)
{
	size_t len;
	char *t = sf_armor(stored, &len);
	int rc;

	if (t == NULL)
		return DIME_E_NOMEM;
	rc = sf_judge_user(r, out, addr, NULL, t, len);
	free(t);
	return rc;
}

/* A new signet that does not link to the stored one directly: HIST from the stored version,
 * the chain judged, and the new signet must be the chain's end. */
static int
sf_hist(struct sf_conn *c, const char *addr, const struct dime_signet *stored, const char *text,
	size_t len)
{
	struct dime_sf_result *r = c->r;
	const struct dime_dmtp_client_result *res = NULL;
	struct dime_dmtp_client_op op;
	struct dime_signet *last = NULL, *cand = NULL;
	char start[DIME_FP_B64_LEN + 1], a[DIME_FP_B64_LEN + 1], b[DIME_FP_B64_LEN + 1];
	const char *why = "";
	size_t n = 0, at = 0;
	int rc;

	/* the new one on the org's signatures alone first: it must at least be the user's */
	if ((rc = sf_judge_user(r, &cand, addr, NULL, text, len)) != DIME_OK)
		return rc;
	if ((rc = dime_signet_fingerprint_b64(start, stored, DIME_FP_CRYPTO)) != DIME_OK)
		goto out;
	memset(&op, 0, sizeof(op));
	op.kind = DIME_DMTP_CLIENT_HIST;
	op.target = addr;
	op.start = start;
	if ((rc = sf_run(c, &op, &res)) != DIME_OK) {
		sf_why(r->why, sizeof(r->why), "HIST for %s: %s", addr, c->why);
		goto out;
	}
	if (res->code != SF_HISTORY) {
		sf_why(r->why, sizeof(r->why),
		       "user signet of %s: the custody chain from the stored version is "
		       "not available (%d)",
		       addr, res->code);
		rc = res->code == SF_TEMP ? DIME_E_AGAIN : DIME_E_BADSIG;
		goto out;
	}
	rc = dime_sr_hist(&last, &n, &at, &why, r->org, stored, res->text, sf_armor_len(res->text),
			  SF_HIST_MAX);
	if (rc != DIME_OK) {
		sf_why(r->why, sizeof(r->why), "user signet of %s: custody link %zu: %s", addr, at,
		       why);
		rc = DIME_E_BADSIG;
		goto out;
	}
	if ((rc = dime_signet_fingerprint_b64(a, last, DIME_FP_CRYPTO)) != DIME_OK ||
	    (rc = dime_signet_fingerprint_b64(b, cand, DIME_FP_CRYPTO)) != DIME_OK)
		goto out;
	if (strcmp(a, b) != 0) {
		rc = sf_fail(r, DIME_E_BADSIG,
			     "user signet of %s: the custody chain does not end at the current "
			     "signet",
			     addr);
		goto out;
	}
	r->hist_links = n;
	r->user = cand;
	cand = NULL;
out:
	dime_signet_free(last);
	dime_signet_free(cand);
	return rc;
}

static int
sf_user(struct sf_conn *c, struct dime_store *st, const char *addr, int64_t now, unsigned ttl,
	unsigned neg_ttl)
{
	struct dime_sf_result *r = c->r;
	const struct dime_dmtp_client_result *res = NULL;
	struct dime_dmtp_client_op op;
	struct dime_signet *stored = NULL;
	char fp[DIME_FP_B64_LEN + 1];
	int hosted = 0, absent = 0, rc;

	if (sf_fresh(st, &absent, addr, DIME_STORE_USER_SIGNET, now, neg_ttl) && absent)
		return sf_fail(r, DIME_E_NOTFOUND, "%s has no signet (remembered)", addr);
	rc = sf_stored(&stored, &hosted, st, addr, DIME_STORE_USER_SIGNET);
	if (rc != DIME_OK && rc != DIME_E_NOTFOUND)
		goto out;
	if (stored != NULL && sf_fresh(st, &absent, addr, DIME_STORE_USER_SIGNET, now, ttl) &&
	    !absent) {
		if ((rc = sf_rejudge_user(r, &r->user, addr, stored)) == DIME_OK) {
			r->user_src = DIME_SF_CACHED;
			goto out;
		}
		r->why[0] = 0;
	}
	memset(&op, 0, sizeof(op));
	op.target = addr;
	if (stored != NULL) {
		/* users are confirmed by core fingerprint (spec Part 7, VRFY) */
		if ((rc = dime_signet_fingerprint_b64(fp, stored, DIME_FP_CRYPTO)) != DIME_OK)
			goto out;
		op.kind = DIME_DMTP_CLIENT_VRFY;
		op.fp = fp;
	} else {
		op.kind = DIME_DMTP_CLIENT_SGNT;
	}
	if ((rc = sf_run(c, &op, &res)) != DIME_OK) {
		sf_why(r->why, sizeof(r->why), "user signet of %s: %s", addr,
		       c->why[0] != 0 ? c->why : "no host answered");
		if (rc == DIME_E_AGAIN && stored != NULL &&
		    sf_rejudge_user(r, &r->user, addr, stored) == DIME_OK) {
			r->user_src = DIME_SF_CACHED;
			rc = DIME_OK;
		}
		goto out;
	}
	switch (res->code) {
	case SF_USER_CURRENT:
		if ((rc = sf_rejudge_user(r, &r->user, addr, stored)) != DIME_OK)
			goto out;
		r->user_src = DIME_SF_REFRESHED;
		break;
	case SF_USER_SIGNET:
		if (stored == NULL) {
			rc = sf_judge_user(r, &r->user, addr, NULL, res->text,
					   sf_armor_len(res->text));
		} else {
			rc = sf_judge_user(r, &r->user, addr, stored, res->text,
					   sf_armor_len(res->text));
			if (rc == DIME_E_BADSIG) {
				/* the reply's text is the connection's: HIST replaces it */
				char *text = malloc(strlen(res->text) + 1);

				if (text == NULL) {
					rc = DIME_E_NOMEM;
					goto out;
				}
				memcpy(text, res->text, strlen(res->text) + 1);
				r->why[0] = 0;
				rc = sf_hist(c, addr, stored, text, sf_armor_len(text));
				free(text);
			}
		}
		if (rc != DIME_OK)
			goto out;
		r->user_src = stored != NULL ? DIME_SF_REFRESHED : DIME_SF_FETCHED;
		if (stored == NULL)
			break;
		{
			/* a new version is "fetched"; the same one confirmed is "refreshed" */
			struct dime_view x = dime_signet_bytes(r->user),
					 y = dime_signet_bytes(stored);

			if (x.len != y.len || memcmp(x.p, y.p, x.len) != 0)
				r->user_src = DIME_SF_FETCHED;
		}
		break;
	case SF_UNAVAILABLE:
		rc = dime_store_fetch_put(st, addr, DIME_STORE_USER_SIGNET, now, 1);
		if (rc == DIME_OK)
			rc = sf_fail(r, DIME_E_NOTFOUND, "%s has no signet (%s answered 576)", addr,
				     r->host);
		goto out;
	case SF_TEMP:
		rc = sf_fail(r, DIME_E_AGAIN, "user signet of %s: %s answered 476", addr, r->host);
		goto out;
	default:
		sf_why(r->why, sizeof(r->why), "user signet of %s: the host answered %d %s", addr,
		       res->code, res->text);
		rc = DIME_E_AGAIN;
		goto out;
	}
	rc = sf_keep(st, addr, DIME_STORE_USER_SIGNET, r->user, now);
out:
	if (rc == DIME_OK)
		rc = dime_signet_fingerprint_b64(r->user_fp, r->user, DIME_FP_FULL);
	dime_signet_free(stored);
	return rc;
}

/* ---- the entry point ---- */

int
dime_sf_resolve(struct dime_sf_result *r, const struct dime_sf_conf *conf, struct dime_store *st,
		const char *target, int64_t now)
{
	char addr[256], domain[DIME_MR_DOMAIN_MAX + 1];
	const char *at;
	struct dime_signet *org = NULL;
	struct sf_conn c;
	unsigned ttl, neg_ttl;
	int hosted = 0, is_addr, rc;

	DIME_ASSERT(r != NULL && conf != NULL && st != NULL);
	memset(r, 0, sizeof(*r));
	memset(&c, 0, sizeof(c));
	if (target == NULL || target[0] == 0 || strlen(target) >= sizeof(addr))
		return sf_fail(r, DIME_E_INVALID, "not a domain or an address");
	for (size_t i = 0; target[i] != 0; i++) {
		char ch = target[i];

		addr[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
		addr[i + 1] = 0;
	}
	at = strrchr(addr, '@');
	is_addr = at != NULL;
	if (is_addr && (at == addr || at[1] == 0 || strchr(addr, '@') != at))
		return sf_fail(r, DIME_E_INVALID, "%s is not an address", addr);
	if (strlen(is_addr ? at + 1 : addr) >= sizeof(domain))
		return sf_fail(r, DIME_E_INVALID, "%s: the domain is too long", addr);
	sf_why(domain, sizeof(domain), "%s", is_addr ? at + 1 : addr);
	ttl = conf->signet_ttl_s != 0 ? conf->signet_ttl_s : DIME_SF_SIGNET_TTL;
	neg_ttl = conf->neg_ttl_s != 0 ? conf->neg_ttl_s : DIME_SF_NEG_TTL;

	/* A domain this store hosts is answered from it: nothing to fetch or judge. */
	rc = sf_stored(&org, &hosted, st, domain, DIME_STORE_ORG_SIGNET);
	if (rc != DIME_OK && rc != DIME_E_NOTFOUND)
		return sf_fail(r, rc, "the store: cannot read %s", domain);
	if (rc == DIME_OK && hosted) {
		rc = sf_hosted(r, st, domain, is_addr ? addr : NULL, org);
		goto out;
	}
	dime_signet_free(org);
	org = NULL;

	rc = dime_mr_resolve_sync(conf->dns, conf->mr_cache, &r->mr, domain, now);
	if (rc != DIME_OK) {
		if (rc == DIME_E_INVALID)
			sf_why(r->why, sizeof(r->why), "%s", r->mr.why);
		goto out;
	}
	switch (r->mr.status) {
	case DIME_MR_FOUND: break;
	case DIME_MR_LEGACY:
		rc = sf_fail(r, DIME_E_NOTFOUND, "%s: %s", domain, r->mr.why);
		goto out;
	case DIME_MR_TEMPFAIL: rc = sf_fail(r, DIME_E_AGAIN, "%s: %s", domain, r->mr.why); goto out;
	default: rc = sf_fail(r, DIME_E_BADSIG, "%s: %s", domain, r->mr.why); goto out;
	}
	c.conf = conf;
	c.r = r;
	if ((rc = sf_org(&c, st, now, ttl)) != DIME_OK)
		goto out;
	if (is_addr)
		rc = sf_user(&c, st, addr, now, ttl, neg_ttl);
out:
	dime_dx_close(c.x);
	if (rc != DIME_OK) {
		/* nothing that failed is returned; an absent user keeps the (valid) org signet */
		dime_signet_free(r->user);
		r->user = NULL;
		r->user_fp[0] = 0;
		if (rc != DIME_E_NOTFOUND) {
			dime_signet_free(r->org);
			r->org = NULL;
			r->org_fp[0] = 0;
		}
	}
	return rc;
}

/* Management record location (dime/mrloc.h): the walk, the cache and two drivers. */

#include <ctype.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpsl.h>

#include "dime/loop.h"
#include "dime/mrloc.h"

const char *
dime_mr_status_name(enum dime_mr_status s)
{
	switch (s) {
	case DIME_MR_FOUND: return "found";
	case DIME_MR_LEGACY: return "legacy";
	case DIME_MR_TEMPFAIL: return "tempfail";
	case DIME_MR_BOGUS: return "bogus";
	case DIME_MR_INVALID: break;
	}
	return "invalid";
}

void
dime_mr_result_copy(struct dime_mr_result *dst, const struct dime_mr_result *src)
{
	const char *why;

	if (dst == src)
		return;
	memcpy(dst, src, sizeof(*dst));
	/* the views of rec point into src->txt: parse dst's own copy (it parsed before) */
	if (dst->status == DIME_MR_FOUND &&
	    dime_mrec_parse(&dst->rec, &why, dst->txt, strlen(dst->txt)) != DIME_OK)
		memset(&dst->rec, 0, sizeof(dst->rec));
}

/* ---- the organisational domain ---- */

static pthread_once_t psl_once = PTHREAD_ONCE_INIT;
static const psl_ctx_t *psl;

static void
psl_load(void)
{
	/* the newer of the built-in list and Debian's publicsuffix file */
	psl = psl_latest(NULL);
	if (psl == NULL)
		psl = psl_builtin();
}

/* Lower-case d into out and check it is a host name (LDH labels of 1..63, no empty label).
 * Returns: 0 or -1. */
static int
mr_domain(char *out, size_t cap, const char *d)
{
	const char *at = strrchr(d, '@');
	size_t len, label = 0;

	if (at != NULL)
		d = at + 1;
	len = strlen(d);
	if (len > 1 && d[len - 1] == '.')
		len--;
	if (len == 0 || len > DIME_MR_DOMAIN_MAX || len >= cap)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = (char)tolower((unsigned char)d[i]);

		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
			if (++label > 63)
				return -1;
		} else {
			return -1;
		}
		out[i] = c;
	}
	if (label == 0)
		return -1;
	out[len] = 0;
	return 0;
}

/* ---- the walk ---- */

static void mr_finish(struct dime_mr_walk *w, enum dime_mr_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
mr_finish(struct dime_mr_walk *w, enum dime_mr_status st, const char *fmt, ...)
{
	va_list ap;

	w->r.status = st;
	w->done = 1;
	va_start(ap, fmt);
	vsnprintf(w->r.why, sizeof(w->r.why), fmt, ap);
	va_end(ap);
}

static void
mr_found(struct dime_mr_walk *w)
{
	enum dime_dns_sec sec = w->r.sec;

	dime_mr_result_copy(&w->r, &w->nearest);
	w->r.sec = sec;
	w->r.status = DIME_MR_FOUND;
	w->r.ttl = w->min_ttl < DIME_MR_MIN_TTL ? DIME_MR_MIN_TTL : w->min_ttl;
	w->r.why[0] = 0;
	w->done = 1;
}

int
dime_mr_walk_init(struct dime_mr_walk *w, const char *domain, int64_t now)
{
	const char *org;
	size_t n = 1;

	memset(w, 0, sizeof(*w));
	w->r.validated = now;
	w->r.sec = DIME_DNS_SECURE;
	w->min_ttl = UINT32_MAX;
	if (domain == NULL || mr_domain(w->r.target, sizeof(w->r.target), domain) != 0) {
		mr_finish(w, DIME_MR_INVALID, "not a domain name");
		return DIME_E_INVALID;
	}
	pthread_once(&psl_once, psl_load);
	org = psl != NULL ? psl_registrable_domain(psl, w->r.target) : NULL;
	if (org == NULL)
		org = w->r.target; /* a public suffix itself, or no list: only the target */
	/* chain: org, then one more label at a time down to the target */
	for (const char *p = w->r.target; p < org; p++)
		if (*p == '.')
			n++;
	if (n > DIME_MR_DEPTH_MAX + 1) {
		mr_finish(w, DIME_MR_INVALID, "more than %u labels below %s", DIME_MR_DEPTH_MAX,
			  org);
		return DIME_E_INVALID;
	}
	w->n_chain = n;
	for (size_t i = 0; i < n; i++) {
		/* chain[n-1] is the target; chain[i] drops the first n-1-i labels */
		const char *p = w->r.target;

		for (size_t k = 0; k < n - 1 - i; k++)
			p = strchr(p, '.') + 1;
		snprintf(w->chain[i], sizeof(w->chain[i]), "%s", p);
	}
	return DIME_OK;
}

const char *
dime_mr_walk_next(struct dime_mr_walk *w)
{
	if (w->done)
		return NULL;
	snprintf(w->q, sizeof(w->q), "%s%s", w->prefix ? "_dx." : "_dime.", w->chain[w->at]);
	return w->q;
}

/* The weakest level: insecure beats configured beats secure. */
static void
mr_weaken(struct dime_mr_walk *w, enum dime_dns_sec s)
{
	if (s == DIME_DNS_INSECURE || (s == DIME_DNS_CONFIGURED && w->r.sec == DIME_DNS_SECURE))
		w->r.sec = s;
}

/* Take the one valid DIME record among the answer's TXT records.
 * Returns: 1 found (into w->nearest), 0 none, -1 the domain's records are broken (finished). */
static int
mr_take(struct dime_mr_walk *w, const struct dime_dns_answer *a)
{
	const char *why = "", *bad = NULL;
	int found = 0;

	for (size_t i = 0; i < a->n; i++) {
		struct dime_mr_result *c = &w->nearest;
		char txt[DIME_MREC_MAX_BYTES + 1];
		struct dime_mrec m;
		size_t len;

		if (dime_dns_txt_join(txt, sizeof(txt), &len, a->rr[i], a->rr_len[i]) != DIME_OK) {
			bad = "a TXT record too long or with a NUL byte";
			continue;
		}
		if (dime_mrec_parse(&m, &why, txt, len) != DIME_OK) {
			bad = why;
			continue;
		}
		if (found) {
			mr_finish(w, DIME_MR_INVALID, "%s holds more than one record", w->q);
			return -1;
		}
		found = 1;
		memset(c, 0, sizeof(*c));
		memcpy(c->txt, txt, len + 1);
		if (dime_mrec_parse(&c->rec, &why, c->txt, len) != DIME_OK) /* as above: never */
			memset(&c->rec, 0, sizeof(c->rec));
		snprintf(c->domain, sizeof(c->domain), "%s", w->chain[w->at]);
		snprintf(c->name, sizeof(c->name), "%s", w->q);
		snprintf(c->target, sizeof(c->target), "%s", w->r.target);
		c->validated = w->r.validated;
	}
	if (!found && bad != NULL) {
		/* a record is there but unusable: the domain is broken, not legacy */
		snprintf(w->r.txt, sizeof(w->r.txt), "%s", "");
		mr_finish(w, DIME_MR_INVALID, "%s: %s", w->q, bad);
		return -1;
	}
	return found;
}

void
dime_mr_walk_answer(struct dime_mr_walk *w, int rc, const struct dime_dns_answer *a)
{
	int got;

	if (w->done)
		return;
	if (rc != DIME_OK || a == NULL) {
		mr_finish(w, DIME_MR_TEMPFAIL, "%s: lookup failed", w->q);
		return;
	}
	if (a->sec == DIME_DNS_BOGUS) {
		w->r.sec = DIME_DNS_BOGUS;
		mr_finish(w, DIME_MR_BOGUS, "%s: DNSSEC validation failed: %s", w->q, a->why_bogus);
		return;
	}
	if (a->rcode != DIME_DNS_NOERROR && a->rcode != DIME_DNS_NXDOMAIN) {
		mr_finish(w, DIME_MR_TEMPFAIL, "%s: %s", w->q,
			  a->rcode == DIME_DNS_SERVFAIL ? "server failure or timeout"
							: "refused or unexpected answer");
		return;
	}
	mr_weaken(w, a->sec);
	got = a->rcode == DIME_DNS_NOERROR ? mr_take(w, a) : 0;
	if (got < 0)
		return;
	if (got) {
		if (a->ttl < w->min_ttl)
			w->min_ttl = a->ttl;
		w->have = 1;
		if (w->at + 1 == w->n_chain || w->nearest.rec.subdomain == DIME_SUB_STRICT) {
			mr_found(w); /* the target's own, or an ancestor that governs it */
			return;
		}
		w->at++;
		w->prefix = 0;
		return;
	}
	if (w->prefix == 0) {
		w->prefix = 1; /* the reference's name */
		return;
	}
	if (w->at + 1 < w->n_chain) {
		w->at++;
		w->prefix = 0;
		return;
	}
	/* the target has no record of its own */
	if (w->have && w->nearest.rec.subdomain != DIME_SUB_EXPLICIT) {
		mr_found(w); /* mixed: the nearest ancestor's values apply */
		return;
	}
	w->r.ttl = DIME_MR_NEG_TTL;
	if (w->have)
		mr_finish(w, DIME_MR_LEGACY, "no record for %s, and %s says sub=explicit",
			  w->r.target, w->nearest.domain);
	else
		mr_finish(w, DIME_MR_LEGACY, "no management record for %s or its ancestors",
			  w->r.target);
}

/* ---- the cache ---- */

struct mr_entry {
	struct mr_entry *next;
	int64_t expires;     /* fresh until */
	int64_t stale_until; /* FOUND: may serve stale until (validated + exp days) */
	struct dime_mr_result r;
};

struct dime_mr_cache {
	pthread_mutex_t mu;
	struct mr_entry **b;
	size_t n_b, n, max;
	uint64_t hits, misses, stale_served;
};

static size_t
mr_hash(const struct dime_mr_cache *c, const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != 0; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h & (c->n_b - 1);
}

int
dime_mr_cache_new(struct dime_mr_cache **out, size_t max_entries)
{
	struct dime_mr_cache *c;
	size_t nb = 64;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return DIME_E_NOMEM;
	c->max = max_entries > 0 ? max_entries : 4096;
	while (nb < c->max && nb < ((size_t)1 << 20))
		nb *= 2;
	if ((c->b = calloc(nb, sizeof(*c->b))) == NULL) {
		free(c);
		return DIME_E_NOMEM;
	}
	c->n_b = nb;
	pthread_mutex_init(&c->mu, NULL);
	*out = c;
	return DIME_OK;
}

void
dime_mr_cache_free(struct dime_mr_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n_b; i++)
		for (struct mr_entry *e = c->b[i], *next; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(c->b);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static struct mr_entry **
mr_find(struct dime_mr_cache *c, const char *target)
{
	struct mr_entry **p = &c->b[mr_hash(c, target)];

	while (*p != NULL && strcmp((*p)->r.target, target) != 0)
		p = &(*p)->next;
	return p;
}

int
dime_mr_cache_get(struct dime_mr_cache *c, struct dime_mr_result *out, const char *target,
		  int64_t now)
{
	struct mr_entry **p;
	char t[DIME_MR_DOMAIN_MAX + 1];
	int hit = 0;

	if (c == NULL || mr_domain(t, sizeof(t), target) != 0)
		return 0;
	pthread_mutex_lock(&c->mu);
	p = mr_find(c, t);
	if (*p != NULL && now < (*p)->expires) {
		dime_mr_result_copy(out, &(*p)->r);
		out->stale = 0;
		hit = 1;
		c->hits++;
	} else {
		c->misses++;
	}
	pthread_mutex_unlock(&c->mu);
	return hit;
}

/* Make room for one entry: drop the expired ones past any use, then, if still full, the one
 * expiring first in the first buckets looked at. Under mu. */
static void
mr_evict(struct dime_mr_cache *c, int64_t now)
{
	struct mr_entry **victim = NULL;

	for (size_t i = 0; i < c->n_b && c->n >= c->max; i++)
		for (struct mr_entry **p = &c->b[i]; *p != NULL;) {
			struct mr_entry *e = *p;

			if (now >= e->expires && now >= e->stale_until) {
				*p = e->next;
				free(e);
				c->n--;
				continue;
			}
			if (victim == NULL || e->expires < (*victim)->expires)
				victim = p;
			p = &e->next;
		}
	if (c->n >= c->max && victim != NULL) {
		struct mr_entry *e = *victim;

		*victim = e->next;
		free(e);
		c->n--;
	}
}

void
dime_mr_cache_put(struct dime_mr_cache *c, struct dime_mr_result *use,
		  const struct dime_mr_result *r, int64_t now)
{
	struct mr_entry **p, *e;

	dime_mr_result_copy(use, r);
	use->stale = 0;
	if (c == NULL || r->target[0] == 0)
		return;
	pthread_mutex_lock(&c->mu);
	p = mr_find(c, r->target);
	e = *p;
	if (r->status == DIME_MR_FOUND || r->status == DIME_MR_LEGACY) {
		if (e == NULL) {
			mr_evict(c, now);
			p = mr_find(c, r->target); /* eviction may have moved the chain */
			if ((e = calloc(1, sizeof(*e))) != NULL) {
				*p = e;
				c->n++;
			}
		}
		if (e != NULL) {
			dime_mr_result_copy(&e->r, r);
			e->expires = now + (int64_t)r->ttl;
			e->stale_until = r->status == DIME_MR_FOUND
					     ? r->validated + (int64_t)r->rec.expiry_days * 86400
					     : 0;
		}
	} else if (e != NULL && e->r.status == DIME_MR_FOUND && now < e->stale_until &&
		   r->status != DIME_MR_LEGACY) {
		/* a failing or attacked refresh never shortens what was proven */
		dime_mr_result_copy(use, &e->r);
		use->stale = 1;
		snprintf(use->why, sizeof(use->why), "served stale: %.200s", r->why);
		c->stale_served++;
	}
	pthread_mutex_unlock(&c->mu);
}

void
dime_mr_cache_stats(struct dime_mr_cache *c, struct dime_mr_cache_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	st->hits = c->hits;
	st->misses = c->misses;
	st->stale_served = c->stale_served;
	st->entries = c->n;
	pthread_mutex_unlock(&c->mu);
}

/* ---- drivers ---- */

static void
mr_sync_answer(void *arg, int rc, const struct dime_dns_answer *a)
{
	dime_mr_walk_answer(arg, rc, a);
}

int
dime_mr_resolve_sync(struct dime_dns *dns, struct dime_mr_cache *cache, struct dime_mr_result *out,
		     const char *target, int64_t now)
{
	struct dime_mr_walk *w;
	const char *q;
	int rc;

	if (dime_mr_cache_get(cache, out, target, now))
		return DIME_OK;
	if ((w = malloc(sizeof(*w))) == NULL)
		return DIME_E_NOMEM;
	if ((rc = dime_mr_walk_init(w, target, now)) != DIME_OK) {
		dime_mr_result_copy(out, &w->r);
		free(w);
		return rc;
	}
	while ((q = dime_mr_walk_next(w)) != NULL) {
		rc = dime_dns_query_sync(dns, q, DIME_DNS_TYPE_TXT, mr_sync_answer, w);
		if (rc == DIME_E_NOMEM || rc == DIME_E_INVALID)
			break;
		if (rc != DIME_OK) /* the lookup could not be made: the answer was never fed */
			dime_mr_walk_answer(w, rc, NULL);
	}
	if (q == NULL) {
		dime_mr_cache_put(cache, out, &w->r, now);
		rc = DIME_OK;
	}
	free(w);
	return rc;
}

struct mr_async {
	struct dime_mr_walk w;
	struct dime_dns *dns;
	struct dime_mr_cache *cache;
	struct dime_io_loop *loop;
	int64_t now;
	dime_mr_fn fn;
	void *arg;
	struct dime_mr_result use;
};

static void mr_async_answer(void *arg, int rc, const struct dime_dns_answer *a);

/* Ask the next name or deliver the verdict. On the loop, from an answer. */
static void
mr_async_step(struct mr_async *m)
{
	const char *q;

	while ((q = dime_mr_walk_next(&m->w)) != NULL) {
		int rc =
		    dime_dns_query(m->dns, m->loop, q, DIME_DNS_TYPE_TXT, mr_async_answer, m, NULL);

		if (rc == DIME_OK)
			return;
		dime_mr_walk_answer(&m->w, rc, NULL);
	}
	dime_mr_cache_put(m->cache, &m->use, &m->w.r, m->now);
	m->fn(m->arg, &m->use);
	free(m);
}

static void
mr_async_answer(void *arg, int rc, const struct dime_dns_answer *a)
{
	struct mr_async *m = arg;

	dime_mr_walk_answer(&m->w, rc, a);
	mr_async_step(m);
}

static void
mr_async_deliver(void *arg)
{
	struct mr_async *m = arg;

	m->fn(m->arg, &m->use);
	free(m);
}

int
dime_mr_resolve(struct dime_dns *dns, struct dime_mr_cache *cache, struct dime_io_loop *loop,
		const char *target, int64_t now, dime_mr_fn fn, void *arg)
{
	struct mr_async *m;

	if (fn == NULL || loop == NULL)
		return DIME_E_INVALID;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return DIME_E_NOMEM;
	m->dns = dns;
	m->cache = cache;
	m->loop = loop;
	m->now = now;
	m->fn = fn;
	m->arg = arg;
	if (dime_mr_cache_get(cache, &m->use, target, now) ||
	    dime_mr_walk_init(&m->w, target, now) != DIME_OK) {
		/* a cache hit (or a bad name, answered the same way): still never inside */
		if (m->use.target[0] == 0)
			dime_mr_result_copy(&m->use, &m->w.r);
		if (dime_io_loop_post(loop, mr_async_deliver, m) != DIME_OK) {
			free(m);
			return DIME_E_NOMEM;
		}
		return DIME_OK;
	}
	/* the first query's answer is posted, so fn cannot run inside this call, except when no
	 * query can be made at all: then post the verdict */
	if (dime_mr_walk_next(&m->w) != NULL && dime_dns_query(dns, loop, m->w.q, DIME_DNS_TYPE_TXT,
							       mr_async_answer, m, NULL) == DIME_OK)
		return DIME_OK;
	dime_mr_walk_answer(&m->w, DIME_E_IO, NULL);
	dime_mr_cache_put(cache, &m->use, &m->w.r, now);
	if (dime_io_loop_post(loop, mr_async_deliver, m) != DIME_OK) {
		free(m);
		return DIME_E_NOMEM;
	}
	return DIME_OK;
}

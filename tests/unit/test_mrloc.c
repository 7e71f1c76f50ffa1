/* dime/mrloc.h: the management-record walk (Location rules, _dime then _dx, sub policies),
 * verdicts that never turn a failure into legacy, the cache's TTL and stale-while-failing
 * rules, both drivers, and the walk over nsd's signed zones (tests/dns/mkzones.sh). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dime/dns.h"
#include "dime/loop.h"
#include "dime/mrloc.h"
#include "tlib.h"

#define POK  "pok=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo"
#define POK2 "pok=PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw"

static const char records[] = "_dime.example.org 3600 TXT \"ver=1 " POK " \" \"pol=strict\"\n"
			      "_dx.refname.org 600 TXT \"ver=1 " POK "\"\n"
			      "_dime.mixed.org 3600 TXT \"ver=1 " POK " sub=mixed\"\n"
			      "_dime.explicit.org 3600 TXT \"ver=1 " POK " sub=explicit\"\n"
			      "_dime.own.explicit.org 120 TXT \"ver=1 " POK2 "\"\n"
			      "_dime.strict.org 3600 TXT \"ver=1 " POK " sub=strict\"\n"
			      "_dime.sub.strict.org 3600 TXT \"ver=1 " POK2 "\"\n"
			      "_dime.broken.org 3600 TXT \"ver=1 pol=strict\"\n"
			      "_dime.twice.org 3600 TXT \"ver=1 " POK "\"\n"
			      "_dime.twice.org 3600 TXT \"ver=1 " POK2 "\"\n"
			      "_dime.example.co.uk 30 TXT \"ver=1 " POK " sub=mixed\"\n";

static struct dime_dns *
static_dns(void)
{
	struct dime_dns_conf conf = {0};
	struct dime_dns *d = NULL;
	const char *path = t_path("records");
	char why[256];

	if (t_write_text(path, records) != 0)
		return NULL;
	conf.static_file = path;
	T_CHECK(dime_dns_new(&d, &conf, why, sizeof(why)) == DIME_OK, "static dns: %s", why);
	return d;
}

static void
check(struct dime_dns *d, const char *target, enum dime_mr_status st, const char *domain,
      const char *name)
{
	struct dime_mr_result *r = malloc(sizeof(*r));
	int rc;

	if (r == NULL)
		return;
	rc = dime_mr_resolve_sync(d, NULL, r, target, 1000000);
	T_CHECK(rc == DIME_OK && r->status == st, "%s: rc %d status %s (want %s) why '%s'", target,
		rc, dime_mr_status_name(r->status), dime_mr_status_name(st), r->why);
	if (domain != NULL)
		T_CHECK(strcmp(r->domain, domain) == 0, "%s: the record of '%s' applies, want %s",
			target, r->domain, domain);
	if (name != NULL)
		T_CHECK(strcmp(r->name, name) == 0, "%s: from '%s', want %s", target, r->name,
			name);
	if (st == DIME_MR_FOUND)
		T_CHECK(r->rec.n_poks == 1 && r->sec == DIME_DNS_CONFIGURED && r->ttl >= 60,
			"%s: parsed record, configured, ttl %u", target, r->ttl);
	else
		T_CHECK(r->why[0] != 0, "%s: a verdict other than found says why", target);
	free(r);
}

static void
test_location(void)
{
	struct dime_dns *d = static_dns();
	struct dime_mr_result r;

	if (d == NULL)
		return;
	check(d, "example.org", DIME_MR_FOUND, "example.org", "_dime.example.org");
	check(d, "Bob@Example.ORG.", DIME_MR_FOUND, "example.org", NULL);
	check(d, "refname.org", DIME_MR_FOUND, "refname.org", "_dx.refname.org");
	/* mixed: a subdomain without its own record takes the nearest ancestor's */
	check(d, "a.b.mixed.org", DIME_MR_FOUND, "mixed.org", NULL);
	/* explicit: a subdomain needs its own record, else legacy */
	check(d, "sub.explicit.org", DIME_MR_LEGACY, NULL, NULL);
	check(d, "own.explicit.org", DIME_MR_FOUND, "own.explicit.org", NULL);
	/* strict: the ancestor governs, the subdomain's own record is not consulted */
	check(d, "sub.strict.org", DIME_MR_FOUND, "strict.org", NULL);
	check(d, "nothing.org", DIME_MR_LEGACY, NULL, NULL);
	check(d, "sub.nothing.org", DIME_MR_LEGACY, NULL, NULL);
	/* a record that does not parse, or two: broken, never legacy */
	check(d, "broken.org", DIME_MR_INVALID, NULL, NULL);
	check(d, "x.broken.org", DIME_MR_INVALID, NULL, NULL);
	check(d, "twice.org", DIME_MR_INVALID, NULL, NULL);
	/* the organisational domain by the public suffix list: co.uk is a suffix */
	check(d, "a.example.co.uk", DIME_MR_FOUND, "example.co.uk", NULL);
	T_CHECK(dime_mr_resolve_sync(d, NULL, &r, "bad domain.org", 0) == DIME_E_INVALID &&
		    r.status == DIME_MR_INVALID,
		"a name with a space is refused");
	T_CHECK(dime_mr_resolve_sync(d, NULL, &r, "a..b.org", 0) == DIME_E_INVALID,
		"an empty label is refused");
	dime_dns_free(d);
}

/* The names the walk asks, in order, for a deep subdomain with no records. */
static void
test_walk_order(void)
{
	static const char *const want[] = {"_dime.example.co.uk",     "_dx.example.co.uk",
					   "_dime.b.example.co.uk",   "_dx.b.example.co.uk",
					   "_dime.a.b.example.co.uk", "_dx.a.b.example.co.uk"};
	struct dime_dns_answer nx;
	struct dime_mr_walk *w = malloc(sizeof(*w));
	const char *q;
	size_t i = 0;

	if (w == NULL)
		return;
	memset(&nx, 0, sizeof(nx));
	nx.rcode = DIME_DNS_NXDOMAIN;
	nx.sec = DIME_DNS_SECURE;
	T_CHECK(dime_mr_walk_init(w, "a.b.example.co.uk", 0) == DIME_OK, "walk init");
	while ((q = dime_mr_walk_next(w)) != NULL && i < 10) {
		T_CHECK(i < 6 && strcmp(q, want[i]) == 0, "walk: query %zu is %s", i, q);
		dime_mr_walk_answer(w, DIME_OK, &nx);
		i++;
	}
	T_CHECK(i == 6 && w->r.status == DIME_MR_LEGACY && w->r.sec == DIME_DNS_SECURE,
		"walk: six queries then legacy (got %zu, %s)", i, dime_mr_status_name(w->r.status));

	/* a bogus answer anywhere: bogus, never legacy */
	T_CHECK(dime_mr_walk_init(w, "b.example.co.uk", 0) == DIME_OK, "walk init 2");
	dime_mr_walk_answer(w, DIME_OK, &nx);
	nx.sec = DIME_DNS_BOGUS;
	nx.why_bogus = "signature expired";
	dime_mr_walk_answer(w, DIME_OK, &nx);
	T_CHECK(w->r.status == DIME_MR_BOGUS && dime_mr_walk_next(w) == NULL &&
		    strstr(w->r.why, "signature expired") != NULL,
		"walk: bogus at the second name is bogus (%s: %s)",
		dime_mr_status_name(w->r.status), w->r.why);

	/* a server failure: tempfail */
	T_CHECK(dime_mr_walk_init(w, "example.co.uk", 0) == DIME_OK, "walk init 3");
	nx.sec = DIME_DNS_INSECURE;
	nx.rcode = DIME_DNS_SERVFAIL;
	dime_mr_walk_answer(w, DIME_OK, &nx);
	T_CHECK(w->r.status == DIME_MR_TEMPFAIL, "walk: SERVFAIL is tempfail");
	T_CHECK(dime_mr_walk_init(w, "example.co.uk", 0) == DIME_OK, "walk init 4");
	dime_mr_walk_answer(w, DIME_E_IO, NULL);
	T_CHECK(w->r.status == DIME_MR_TEMPFAIL, "walk: no answer is tempfail");

	/* an insecure absence under a secure record: found, but only as strong as the weakest */
	{
		static const uint8_t rr[] = "\x3fver=1 " POK " sub=mixed";
		const uint8_t *rrs[1] = {rr};
		size_t lens[1] = {sizeof(rr) - 1};
		struct dime_dns_answer a;

		memset(&a, 0, sizeof(a));
		a.rcode = DIME_DNS_NOERROR;
		a.sec = DIME_DNS_SECURE;
		a.n = 1;
		a.rr = rrs;
		a.rr_len = lens;
		a.ttl = 900;
		T_CHECK(rr[0] == sizeof(rr) - 2, "test record length byte");
		T_CHECK(dime_mr_walk_init(w, "x.example.co.uk", 0) == DIME_OK, "walk init 5");
		dime_mr_walk_answer(w, DIME_OK, &a);
		nx.rcode = DIME_DNS_NXDOMAIN;
		nx.sec = DIME_DNS_INSECURE;
		dime_mr_walk_answer(w, DIME_OK, &nx);
		dime_mr_walk_answer(w, DIME_OK, &nx);
		T_CHECK(w->r.status == DIME_MR_FOUND && w->r.sec == DIME_DNS_INSECURE &&
			    w->r.ttl == 900 && strcmp(w->r.domain, "example.co.uk") == 0,
			"walk: ancestor's record applies, insecure (%s, %s, ttl %u, %s)",
			dime_mr_status_name(w->r.status), dime_dns_sec_name(w->r.sec), w->r.ttl,
			w->r.domain);
	}
	free(w);
}

static void
test_cache(void)
{
	struct dime_dns *d = static_dns();
	struct dime_mr_cache *c = NULL;
	struct dime_mr_cache_stats st;
	struct dime_mr_result *found = malloc(sizeof(*found)), *fail = malloc(sizeof(*fail)),
			      *use = malloc(sizeof(*use));
	const int64_t t0 = 1800000000;

	if (d == NULL || found == NULL || fail == NULL || use == NULL ||
	    dime_mr_cache_new(&c, 2) != DIME_OK) {
		t_fail("cache setup");
		goto out;
	}
	T_CHECK(dime_mr_resolve_sync(d, c, found, "example.org", t0) == DIME_OK &&
		    found->status == DIME_MR_FOUND && found->ttl == 3600,
		"cache: first lookup");
	T_CHECK(dime_mr_cache_get(c, use, "EXAMPLE.org", t0 + 3599) == 1 &&
		    use->status == DIME_MR_FOUND && use->rec.n_poks == 1 && !use->stale,
		"cache: fresh within the TTL (the parsed record comes with it)");
	T_CHECK(dime_mr_cache_get(c, use, "example.org", t0 + 3600) == 0,
		"cache: expired at the TTL");
	/* a refresh that fails: the proven record keeps serving, marked stale */
	memset(fail, 0, sizeof(*fail));
	snprintf(fail->target, sizeof(fail->target), "example.org");
	fail->status = DIME_MR_BOGUS;
	snprintf(fail->why, sizeof(fail->why), "validation failed");
	dime_mr_cache_put(c, use, fail, t0 + 4000);
	T_CHECK(use->status == DIME_MR_FOUND && use->stale && use->rec.n_poks == 1,
		"cache: a bogus refresh serves the proven record stale (%s)",
		dime_mr_status_name(use->status));
	fail->status = DIME_MR_TEMPFAIL;
	dime_mr_cache_put(c, use, fail, t0 + 29 * 86400);
	T_CHECK(use->status == DIME_MR_FOUND && use->stale, "cache: tempfail serves stale");
	dime_mr_cache_put(c, use, fail, t0 + 30 * 86400 + 1);
	T_CHECK(use->status == DIME_MR_TEMPFAIL,
		"cache: never past exp days (30) since validation");
	T_CHECK(dime_mr_cache_get(c, use, "example.org", t0 + 30 * 86400 + 2) == 0,
		"cache: a failure is never cached");
	/* legacy is cached for the negative TTL, and replaces */
	T_CHECK(dime_mr_resolve_sync(d, c, use, "nothing.org", t0) == DIME_OK &&
		    use->status == DIME_MR_LEGACY,
		"cache: legacy");
	T_CHECK(dime_mr_cache_get(c, use, "nothing.org", t0 + DIME_MR_NEG_TTL - 1) == 1 &&
		    dime_mr_cache_get(c, use, "nothing.org", t0 + DIME_MR_NEG_TTL) == 0,
		"cache: legacy kept for the negative TTL");
	/* bounded: a third domain in a cache of two evicts one */
	T_CHECK(dime_mr_resolve_sync(d, c, use, "mixed.org", t0) == DIME_OK &&
		    dime_mr_resolve_sync(d, c, use, "refname.org", t0) == DIME_OK,
		"cache: more lookups");
	dime_mr_cache_stats(c, &st);
	T_CHECK(st.entries <= 2 && st.stale_served == 2 && st.hits >= 2,
		"cache: bounded (%zu entries), stale served twice (%llu), hits %llu", st.entries,
		(unsigned long long)st.stale_served, (unsigned long long)st.hits);
out:
	dime_mr_cache_free(c);
	dime_dns_free(d);
	free(found);
	free(fail);
	free(use);
}

struct async_got {
	int calls;
	enum dime_mr_status st;
	char domain[256];
	struct dime_io_loop *l;
};

static void
on_mr(void *arg, const struct dime_mr_result *r)
{
	struct async_got *g = arg;

	g->calls++;
	g->st = r->status;
	snprintf(g->domain, sizeof(g->domain), "%s", r->domain);
	dime_io_loop_stop(g->l);
}

static void
test_async(struct dime_dns *d, const char *target, enum dime_mr_status want, const char *domain)
{
	struct dime_io_loop *l = NULL;
	struct async_got g;

	if (d == NULL || dime_io_loop_new(&l, DIME_IO_AUTO) != DIME_OK) {
		t_fail("async: loop");
		return;
	}
	memset(&g, 0, sizeof(g));
	g.l = l;
	T_CHECK(dime_mr_resolve(d, NULL, l, target, 0, on_mr, &g) == DIME_OK && g.calls == 0,
		"async %s: started, not answered inside the call", target);
	T_CHECK(dime_io_loop_run(l) == DIME_OK, "async: run");
	T_CHECK(g.calls == 1 && g.st == want && (domain == NULL || strcmp(g.domain, domain) == 0),
		"async %s: %s from '%s'", target, dime_mr_status_name(g.st), g.domain);
	dime_io_loop_free(l);
}

static void
test_live(void)
{
	char cmd[8192], conf_path[4200], ta_path[4200];
	struct dime_dns_conf conf = {0};
	struct dime_dns *d = NULL;
	struct dime_mr_result *r = malloc(sizeof(*r));
	char why[256];
	const char *dir = t_path("zones");
	static const struct {
		const char *target;
		enum dime_mr_status st;
		enum dime_dns_sec sec;
	} cases[] = {
	    {"good.dime.test", DIME_MR_FOUND, DIME_DNS_SECURE},
	    /* good.dime.test says sub=strict: it governs its subdomains */
	    {"user@sub.good.dime.test", DIME_MR_FOUND, DIME_DNS_SECURE},
	    {"absent.dime.test", DIME_MR_LEGACY, DIME_DNS_SECURE},
	    {"bogus.dime.test", DIME_MR_BOGUS, DIME_DNS_BOGUS},
	    {"expired.dime.test", DIME_MR_BOGUS, DIME_DNS_BOGUS},
	    {"unsigned.dime.test", DIME_MR_BOGUS, DIME_DNS_BOGUS},
	    {"insecure.dime.test", DIME_MR_FOUND, DIME_DNS_INSECURE},
	};

	if (r == NULL)
		return;
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && sh '%s' '%s' >'%s/mkzones.log' 2>&1", dir,
		 DIME_DNS_SCRIPT, dir, dir);
	if (system(cmd) != 0) {
		t_fail("live: mkzones.sh failed (see %s/mkzones.log)", dir);
		free(r);
		return;
	}
	snprintf(conf_path, sizeof(conf_path), "%s/unbound.conf", dir);
	snprintf(ta_path, sizeof(ta_path), "%s/ta.ds", dir);
	conf.config_file = conf_path;
	conf.trust_anchor_file = ta_path;
	T_CHECK(dime_dns_new(&d, &conf, why, sizeof(why)) == DIME_OK, "live: %s", why);
	for (size_t i = 0; d != NULL && i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = dime_mr_resolve_sync(d, NULL, r, cases[i].target, 0);

		T_CHECK(rc == DIME_OK && r->status == cases[i].st && r->sec == cases[i].sec,
			"live %s: %s %s (want %s %s): %s", cases[i].target,
			dime_mr_status_name(r->status), dime_dns_sec_name(r->sec),
			dime_mr_status_name(cases[i].st), dime_dns_sec_name(cases[i].sec), r->why);
	}
	test_async(d, "good.dime.test", DIME_MR_FOUND, "good.dime.test");
	dime_dns_free(d);
	snprintf(cmd, sizeof(cmd), "kill $(cat '%s/nsd.pid') 2>/dev/null", dir);
	if (system(cmd) != 0)
		t_fail("live: could not stop nsd");
	free(r);
}

int
main(void)
{
	struct dime_dns *d;

	t_init();
	if (t_mkdtemp("mrloc") != 0)
		return 1;
	test_location();
	test_walk_order();
	test_cache();
	d = static_dns();
	test_async(d, "a.mixed.org", DIME_MR_FOUND, "mixed.org");
	test_async(d, "bad name", DIME_MR_INVALID, NULL);
	dime_dns_free(d);
	test_live();
	t_rm_rf(t_dir);
	return t_done("mrloc");
}

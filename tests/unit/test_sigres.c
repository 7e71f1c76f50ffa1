/* dime/sigres.h with signets made by the engine: an org, and a user rotated twice (custody).
 * The org signet against the record (POKs, domain, tls=, DNSSEC or CA basis), user signets
 * against the org and the cached version, HIST chains (whole, from the held version, broken,
 * foreign, too long), and the armor splitter. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dime/keys.h"
#include "dime/sigres.h"
#include "tlib.h"

struct fixture {
	struct dime_ks *ks;
	uint32_t org_key, other_key, u_key[3];
	struct dime_signet *org, *other, *u[3], *core[3];
	char org_a[8192], other_a[8192], u_a[3][8192], core_a[3][8192];
	struct dime_mr_result mr;
};

static void
armor(char *out, size_t cap, const struct dime_signet *s)
{
	size_t n;

	if (dime_signet_armor(out, cap, &n, s) != DIME_OK)
		t_fail("armor");
}

static int
setup(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	if (dime_ks_new(&f->ks) != DIME_OK ||
	    dime_ks_generate(f->ks, &f->org_key, DIME_KEY_ORG) != DIME_OK ||
	    dime_ks_generate(f->ks, &f->other_key, DIME_KEY_ORG) != DIME_OK ||
	    dime_signet_org_create(&f->org, f->ks, f->org_key, NULL, 0, NULL, 0, "example.org") !=
		DIME_OK ||
	    dime_signet_org_create(&f->other, f->ks, f->other_key, NULL, 0, NULL, 0,
				   "example.org") != DIME_OK)
		return -1;
	for (int i = 0; i < 3; i++) {
		struct dime_signet *ssr = NULL;

		if (dime_ks_generate(f->ks, &f->u_key[i], DIME_KEY_USER) != DIME_OK ||
		    dime_signet_ssr_create(&ssr, f->ks, f->u_key[i],
					   i > 0 ? f->u_key[i - 1] : DIME_KS_NONE) != DIME_OK ||
		    dime_signet_ssr_sign(&f->u[i], ssr, i > 0 ? f->u[i - 1] : NULL, f->org, f->ks,
					 f->org_key, NULL, 0, "bob@example.org") != DIME_OK ||
		    dime_signet_split(&f->core[i], f->u[i], DIME_LEVEL_CRYPTO) != DIME_OK) {
			dime_signet_free(ssr);
			return -1;
		}
		dime_signet_free(ssr);
		armor(f->u_a[i], sizeof(f->u_a[i]), f->u[i]);
		armor(f->core_a[i], sizeof(f->core_a[i]), f->core[i]);
	}
	armor(f->org_a, sizeof(f->org_a), f->org);
	armor(f->other_a, sizeof(f->other_a), f->other);
	f->mr.status = DIME_MR_FOUND;
	f->mr.sec = DIME_DNS_SECURE;
	snprintf(f->mr.domain, sizeof(f->mr.domain), "example.org");
	snprintf(f->mr.target, sizeof(f->mr.target), "example.org");
	f->mr.rec.n_poks = 1;
	return dime_ks_sign_pub(f->ks, f->mr.rec.poks[0], f->org_key) == DIME_OK ? 0 : -1;
}

static void
teardown(struct fixture *f)
{
	for (int i = 0; i < 3; i++) {
		dime_signet_free(f->u[i]);
		dime_signet_free(f->core[i]);
	}
	dime_signet_free(f->org);
	dime_signet_free(f->other);
	dime_ks_free(f->ks);
}

static void
org_case(struct fixture *f, const char *name, enum dime_dns_sec sec, unsigned tls, size_t n_tls,
	 const char *text, int want_rc, enum dime_sr_basis want_basis)
{
	struct dime_mr_result mr = f->mr;
	struct dime_signet *s = NULL;
	enum dime_sr_basis b;
	const char *why = "";
	int rc;

	mr.sec = sec;
	mr.rec.n_tls = n_tls;
	rc = dime_sr_org(&s, &b, &why, &mr, tls, text, strlen(text));
	T_CHECK(rc == want_rc && (rc != DIME_OK || b == want_basis) &&
		    (rc == DIME_OK) == (s != NULL),
		"org %s: rc %d (want %d) basis %s (want %s): %s", name, rc, want_rc,
		dime_sr_basis_name(b), dime_sr_basis_name(want_basis), why);
	T_CHECK(rc == DIME_OK || why[0] != 0, "org %s: a refusal says why", name);
	dime_signet_free(s);
}

static void
test_org(struct fixture *f)
{
	char two[16384], *junk = "hello\n";

	org_case(f, "dnssec", DIME_DNS_SECURE, 0, 0, f->org_a, DIME_OK, DIME_SR_DNSSEC);
	org_case(f, "configured", DIME_DNS_CONFIGURED, 0, 0, f->org_a, DIME_OK, DIME_SR_DNSSEC);
	org_case(f, "insecure + CA", DIME_DNS_INSECURE, DIME_SR_TLS_CA, 0, f->org_a, DIME_OK,
		 DIME_SR_CA_TLS);
	org_case(f, "insecure, no CA", DIME_DNS_INSECURE, DIME_SR_TLS_RECORD, 0, f->org_a,
		 DIME_E_BADSIG, DIME_SR_NONE);
	org_case(f, "another POK", DIME_DNS_SECURE, 0, 0, f->other_a, DIME_E_BADSIG, DIME_SR_NONE);
	org_case(f, "tls= listed, not matched", DIME_DNS_SECURE, DIME_SR_TLS_CA, 1, f->org_a,
		 DIME_E_BADSIG, DIME_SR_NONE);
	org_case(f, "tls= listed and matched", DIME_DNS_SECURE, DIME_SR_TLS_RECORD, 1, f->org_a,
		 DIME_OK, DIME_SR_DNSSEC);
	org_case(f, "a user signet", DIME_DNS_SECURE, 0, 0, f->u_a[0], DIME_E_MALFORMED,
		 DIME_SR_NONE);
	org_case(f, "junk", DIME_DNS_SECURE, 0, 0, junk, DIME_E_MALFORMED, DIME_SR_NONE);
	snprintf(two, sizeof(two), "%s%s", f->org_a, f->org_a);
	org_case(f, "two signets", DIME_DNS_SECURE, 0, 0, two, DIME_E_MALFORMED, DIME_SR_NONE);
	{
		struct dime_mr_result mr = f->mr;
		struct dime_signet *s = NULL;
		enum dime_sr_basis b;
		const char *why;

		snprintf(mr.domain, sizeof(mr.domain), "example.net");
		T_CHECK(dime_sr_org(&s, &b, &why, &mr, 0, f->org_a, strlen(f->org_a)) ==
			    DIME_E_BADSIG,
			"org: a signet naming another domain is refused");
		mr.status = DIME_MR_LEGACY;
		T_CHECK(dime_sr_org(&s, &b, &why, &mr, 0, f->org_a, strlen(f->org_a)) ==
			    DIME_E_INVALID,
			"org: no record, no org signet");
	}
}

static void
test_user(struct fixture *f)
{
	struct dime_signet *s = NULL;
	const char *why = "";

	T_CHECK(dime_sr_user(&s, &why, "Bob@Example.ORG", f->org, NULL, f->u_a[0],
			     strlen(f->u_a[0])) == DIME_OK,
		"user v1 against the org: %s", why);
	dime_signet_free(s);
	T_CHECK(dime_sr_user(&s, &why, "bob@example.org", f->org, f->u[1], f->u_a[2],
			     strlen(f->u_a[2])) == DIME_OK,
		"user v3 linked to the cached v2: %s", why);
	dime_signet_free(s);
	T_CHECK(dime_sr_user(&s, &why, "bob@example.org", f->org, NULL, f->u_a[2],
			     strlen(f->u_a[2])) == DIME_OK,
		"user v3 with nothing cached: the org's signatures suffice: %s", why);
	dime_signet_free(s);
	s = NULL;
	T_CHECK(dime_sr_user(&s, &why, "bob@example.org", f->org, f->u[0], f->u_a[2],
			     strlen(f->u_a[2])) == DIME_E_BADSIG &&
		    s == NULL,
		"user v3 does not link to v1 (custody skips a version)");
	T_CHECK(dime_sr_user(&s, &why, "bob@example.org", f->other, NULL, f->u_a[0],
			     strlen(f->u_a[0])) == DIME_E_BADSIG,
		"user signed by another org key refused");
	T_CHECK(dime_sr_user(&s, &why, "eve@example.org", f->org, NULL, f->u_a[0],
			     strlen(f->u_a[0])) == DIME_E_BADSIG,
		"user signet of another address refused");
	T_CHECK(dime_sr_user(&s, &why, "bob@example.org", f->org, NULL, f->org_a,
			     strlen(f->org_a)) == DIME_E_MALFORMED,
		"an org signet is not a user signet");
	{
		/* one flipped base64 character in the signature area: refused, never a crash */
		char bad[8192];
		size_t n = strlen(f->u_a[0]);
		char *body = strchr(f->u_a[0], '\n');

		memcpy(bad, f->u_a[0], n + 1);
		if (body != NULL) {
			size_t at = (size_t)(body - f->u_a[0]) + 40;

			bad[at] = bad[at] == 'A' ? 'B' : 'A';
		}
		T_CHECK(dime_sr_user(&s, &why, "bob@example.org", f->org, NULL, bad, n) !=
				DIME_OK &&
			    s == NULL,
			"a damaged user signet is refused");
	}
}

static void
test_hist(struct fixture *f)
{
	char chain[3 * 8192], text[3 * 8192];
	struct dime_signet *last = NULL;
	size_t n, at;
	const char *why = "";
	uint8_t fa[DIME_FP_BYTES], fb[DIME_FP_BYTES];

	snprintf(chain, sizeof(chain), "%s%s%s", f->core_a[0], f->core_a[1], f->core_a[2]);
	T_CHECK(dime_sr_hist(&last, &n, &at, &why, f->org, NULL, chain, strlen(chain), 16) ==
			DIME_OK &&
		    n == 3 && last != NULL,
		"hist: the whole chain (%zu links): %s", n, why);
	if (last != NULL) {
		T_CHECK(dime_signet_fingerprint(fa, last, DIME_FP_CRYPTO) == DIME_OK &&
			    dime_signet_fingerprint(fb, f->u[2], DIME_FP_CRYPTO) == DIME_OK &&
			    memcmp(fa, fb, sizeof(fa)) == 0,
			"hist: the last link is v3");
		dime_signet_free(last);
		last = NULL;
	}
	/* from the held v2: the chain may start at it, or after it */
	snprintf(text, sizeof(text), "%s%s", f->core_a[1], f->core_a[2]);
	T_CHECK(dime_sr_hist(&last, &n, &at, &why, f->org, f->u[1], text, strlen(text), 16) ==
			DIME_OK &&
		    n == 2,
		"hist: starting at the held version: %s", why);
	dime_signet_free(last);
	last = NULL;
	T_CHECK(dime_sr_hist(&last, &n, &at, &why, f->org, f->u[1], f->core_a[2],
			     strlen(f->core_a[2]), 16) == DIME_OK &&
		    n == 1,
		"hist: starting after the held version: %s", why);
	dime_signet_free(last);
	last = NULL;
	/* a link left out: v1 then v3 */
	snprintf(text, sizeof(text), "%s%s", f->core_a[0], f->core_a[2]);
	T_CHECK(dime_sr_hist(&last, &n, &at, &why, f->org, NULL, text, strlen(text), 16) ==
			DIME_E_BADSIG &&
		    at == 1 && n == 1 && last == NULL,
		"hist: a missing version breaks the chain at 1 (at %zu, n %zu): %s", at, n, why);
	/* out of order */
	snprintf(text, sizeof(text), "%s%s", f->core_a[1], f->core_a[0]);
	T_CHECK(dime_sr_hist(&last, &n, &at, &why, f->org, NULL, text, strlen(text), 16) ==
		    DIME_E_BADSIG,
		"hist: out of order refused");
	T_CHECK(dime_sr_hist(&last, &n, &at, &why, f->other, NULL, chain, strlen(chain), 16) ==
		    DIME_E_BADSIG,
		"hist: against another org refused");
	T_CHECK(dime_sr_hist(&last, &n, &at, &why, f->org, NULL, chain, strlen(chain), 2) ==
		    DIME_E_LIMIT,
		"hist: longer than allowed");
	T_CHECK(dime_sr_hist(&last, &n, &at, &why, f->org, NULL, "garbage", 7, 16) ==
		    DIME_E_MALFORMED,
		"hist: not armor");
}

static void
test_blocks(void)
{
	static const char ok[] = "\n-----BEGIN A-----\nQUJD\n-----END A-----\r\n  \n"
				 "-----BEGIN B-----\nx\n-----END B-----";
	struct dime_view b[4];

	T_CHECK(dime_sr_armor_blocks(b, 4, ok, strlen(ok)) == 2 && b[0].len == 38 &&
		    memcmp(b[1].p, "-----BEGIN B", 12) == 0,
		"blocks: two, with whitespace around (%zu)", b[0].len);
	T_CHECK(dime_sr_armor_blocks(b, 4, "x-----BEGIN A-----\n-----END A-----\n", 34) == 0,
		"blocks: text before a block");
	T_CHECK(dime_sr_armor_blocks(b, 4, "-----BEGIN A-----\nQUJD\n", 23) == 0,
		"blocks: unterminated");
	T_CHECK(dime_sr_armor_blocks(b, 1, ok, strlen(ok)) == 2, "blocks: counted past cap");
}

int
main(void)
{
	struct fixture *f = calloc(1, sizeof(*f));

	t_init();
	if (f == NULL || setup(f) != 0) {
		t_fail("fixture");
		return t_done("sigres");
	}
	test_org(f);
	test_user(f);
	test_hist(f);
	test_blocks();
	teardown(f);
	free(f);
	return t_done("sigres");
}

/* Signet creation: the reference's org signets, SSRs and user signets rebuilt byte for byte
 * from the interop keys; an org with SOKs and informational fields validates against its POK and
 * survives armor/load byte for byte; SSRs are signed into user signets by the POK or a SOK
 * with permission bit 1 (and by nothing else); rotated SSRs carry custody; bad input is
 * refused; fingerprints are stable across serialize/parse. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dime/crypto.h"
#include "dime/keys.h"
#include "dime/signet.h"
#include "tlib.h"

#define V(s)                                                                                       \
	{                                                                                          \
		(const uint8_t *)(s), sizeof(s) - 1                                                \
	}
#define NOVIEW                                                                                     \
	{                                                                                          \
		NULL, 0                                                                            \
	}

static struct dime_ks *ks;
static uint32_t org_key, sok_signets, sok_tls, sok_stranger;
static uint8_t pok[DIME_ED25519_PUB_BYTES];

/* Deliberately out of order: creation sorts by id and keeps the 251s and 21s as given. */
static const struct dime_signet_info org_info[] = {
    {DIME_FID_UNDEFINED, V("Zeta"), V("last name, first given")},
    {16, NOVIEW, V("Example Org")},
    {160, NOVIEW, V("https://example.org/")},
    {DIME_FID_PHONE, NOVIEW, V("15555550100;OFFICE")},
    {DIME_FID_UNDEFINED, V("Alpha"), V("\x00\x01\xff binary is fine")},
    {DIME_FID_PHONE, NOVIEW, V("15555550199;FAX")},
    {DIME_FID_IMAGE, NOVIEW, V("\x89PNG not really")},
};

static const char *
why_of(const struct dime_signet_verdict *v)
{
	return v->reason == NULL ? "(null)" : v->reason;
}

/* Every field's id in wire order, as a string like "1,2,2,3,4". */
static const char *
ids_of(const struct dime_signet *s)
{
	static char buf[512];
	size_t o = 0, n = dime_signet_n_fields(s);

	buf[0] = 0;
	for (size_t i = 0; i < n && o + 5 < sizeof(buf); i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, i ? ",%u" : "%u",
				      dime_signet_field_at(s, i)->id);
	return buf;
}

/* Signature field sig_id verifies with pub over the bytes before it, header excluded
 * (reference-format.md §3.4), computed here without dime_signet_covered. */
static int
sig_covers(const struct dime_signet *s, uint8_t sig_id, const uint8_t pub[32])
{
	const struct dime_signet_field *f = dime_signet_find(s, sig_id);
	struct dime_view b = dime_signet_bytes(s);

	if (f == NULL || f->value.len != 64)
		return 0;
	/* f->off is the type octet's offset within the fields. */
	return dime_ed25519_verify(f->value.p, pub, b.p + DIME_SIGNET_HEADER_BYTES, f->off) ==
	       DIME_OK;
}

static void
check_fp_stable(const char *name, const struct dime_signet *s)
{
	static const enum dime_fp_kind kinds[] = {DIME_FP_SSR, DIME_FP_CRYPTO, DIME_FP_FULL,
						  DIME_FP_ID};
	struct dime_signet *again = NULL;
	struct dime_view b = dime_signet_bytes(s);
	const char *why = "";

	if (dime_signet_parse(&again, &why, b.p, b.len) != DIME_OK) {
		t_fail("%s: reparse: %s", name, why);
		return;
	}
	for (size_t i = 0; i < 4; i++) {
		uint8_t f1[64], f2[64];
		int r1 = dime_signet_fingerprint(f1, s, kinds[i]);
		int r2 = dime_signet_fingerprint(f2, again, kinds[i]);

		T_CHECK(r1 == r2 && (r1 != DIME_OK || memcmp(f1, f2, 64) == 0),
			"%s: fingerprint kind %d differs after serialize/parse", name,
			(int)kinds[i]);
	}
	T_CHECK(dime_signet_bytes(again).len == b.len &&
		    memcmp(dime_signet_bytes(again).p, b.p, b.len) == 0,
		"%s: serialize(parse(x)) != x", name);
	dime_signet_free(again);
}

static struct dime_signet *
make_org(void)
{
	struct dime_signet_sok_spec soks[] = {
	    {sok_signets, DIME_SOK_SIGNETS | DIME_SOK_MESSAGES},
	    {sok_tls, DIME_SOK_TLS},
	};
	struct dime_signet *s = NULL;
	int rc = dime_signet_org_create(&s, ks, org_key, soks, 2, org_info,
					sizeof(org_info) / sizeof(org_info[0]), "Example.ORG");

	T_CHECK(rc == DIME_OK && s != NULL, "org_create: got %d", rc);
	return s;
}

static void
test_org(struct dime_signet *org)
{
	struct dime_signet_trust t;
	struct dime_signet_verdict v;
	struct dime_signet *loaded = NULL;
	struct dime_view id, b;
	uint8_t other[1][32], perms = 0, pub[32];
	const struct dime_signet_field *f;
	const char *why = "";
	char *arm = NULL;
	size_t need = 0, n = 0;

	T_CHECK(dime_signet_type(org) == DIME_SIGNET_ORG, "org type");
	T_CHECK(strcmp(ids_of(org), "1,2,2,3,4,16,21,21,160,251,251,252,253,254,255") == 0,
		"org field order: got %s", ids_of(org));
	/* 251 and 21 in the given order. */
	f = dime_signet_find(org, DIME_FID_UNDEFINED);
	T_CHECK(f != NULL && f->name.len == 4 && memcmp(f->name.p, "Zeta", 4) == 0,
		"first 251 should be Zeta");
	f = dime_signet_find(org, DIME_FID_PHONE);
	T_CHECK(f != NULL && f->value.len == 18 &&
		    memcmp(f->value.p, "15555550100;OFFICE", 18) == 0,
		"first phone");
	T_CHECK(dime_signet_identifier(org, &id) == DIME_OK && id.len == 11 &&
		    memcmp(id.p, "example.org", 11) == 0,
		"identifier not lower-cased");
	/* The reference's encodings: 01 21 40 <pok>, 02 22 <perm> 40 <sok>, 03 00 21 <enc>. */
	b = dime_signet_bytes(org);
	T_CHECK(b.len > 40 && b.p[0] == 0x06 && b.p[1] == 0xf0 && b.p[5] == 1 && b.p[6] == 0x21 &&
		    b.p[7] == 0x40 && memcmp(b.p + 8, pok, 32) == 0 && b.p[40] == 2 &&
		    b.p[41] == 0x22 && b.p[42] == 3 && b.p[43] == 0x40,
		"org layout: %s", t_hex(b.p, b.len < 48 ? b.len : 48));
	T_CHECK(dime_signet_n_soks(org) == 2 && dime_signet_sok(org, &perms, pub, 1) == DIME_OK &&
		    perms == DIME_SOK_TLS,
		"soks");
	/* Coverage of 4, 253 and 255, checked by hand. */
	T_CHECK(sig_covers(org, 4, pok) && sig_covers(org, 253, pok) && sig_covers(org, 255, pok),
		"org signatures do not cover the fields before them");

	memset(&t, 0, sizeof(t));
	t.poks = (const uint8_t(*)[32])pok;
	t.n_poks = 1;
	T_CHECK(dime_signet_validate(&v, org, &t) == DIME_OK && v.kind == DIME_SIGNET_VALID &&
		    v.level == DIME_LEVEL_ID,
		"org validate: kind %d level %d (%s)", (int)v.kind, (int)v.level, why_of(&v));
	memset(other, 0x5a, sizeof(other));
	t.poks = (const uint8_t(*)[32])other;
	T_CHECK(dime_signet_validate(&v, org, &t) == DIME_E_BADSIG, "org validated by a stranger");

	/* Armor, load, same bytes. */
	T_CHECK(dime_signet_armor(NULL, 0, &need, org) == DIME_OK && need > 0, "armor size");
	arm = malloc(need + 1);
	if (arm != NULL && dime_signet_armor(arm, need + 1, &n, org) == DIME_OK) {
		T_CHECK(strncmp(arm, "-----BEGIN ORGANIZATIONAL SIGNET-----\n", 38) == 0,
			"armor label");
		T_CHECK(dime_signet_load(&loaded, &why, (const uint8_t *)arm, n) == DIME_OK,
			"load armored: %s", why);
		if (loaded != NULL)
			T_CHECK(dime_signet_bytes(loaded).len == b.len &&
				    memcmp(dime_signet_bytes(loaded).p, b.p, b.len) == 0,
				"armor/load changed the bytes");
	} else {
		t_fail("armor");
	}
	free(arm);
	dime_signet_free(loaded);
	check_fp_stable("org", org);
}

static struct dime_signet *
make_ssr(uint32_t user, uint32_t prev)
{
	struct dime_signet *s = NULL;
	int rc = dime_signet_ssr_create(&s, ks, user, prev);

	T_CHECK(rc == DIME_OK && s != NULL, "ssr_create: got %d", rc);
	return s;
}

static struct dime_signet *
sign_ssr(const struct dime_signet *ssr, const struct dime_signet *prev,
	 const struct dime_signet *org, uint32_t signer, const char *addr)
{
	static const struct dime_signet_info info[] = {
	    {DIME_FID_PHONE, NOVIEW, V("15555550111")},
	    {16, NOVIEW, V("Alice")},
	};
	struct dime_signet *s = NULL;
	int rc = dime_signet_ssr_sign(&s, ssr, prev, org, ks, signer, info, 2, addr);

	T_CHECK(rc == DIME_OK && s != NULL, "ssr_sign by %u: got %d", signer, rc);
	return s;
}

static void
expect_verdict(const char *name, const struct dime_signet *s, const struct dime_signet *org,
	       const struct dime_signet *prev, enum dime_signet_verdict_kind kind,
	       enum dime_signet_level level)
{
	struct dime_signet_trust t;
	struct dime_signet_verdict v;
	int rc;

	memset(&t, 0, sizeof(t));
	t.org = org;
	t.previous = prev;
	rc = dime_signet_validate(&v, s, &t);
	T_CHECK(v.kind == kind && (kind != DIME_SIGNET_VALID || v.level == level) &&
		    (rc == DIME_OK) == (kind == DIME_SIGNET_VALID),
		"%s: got kind %d level %d (%s), want kind %d level %d", name, (int)v.kind,
		(int)v.level, why_of(&v), (int)kind, (int)level);
}

static void
test_users(const struct dime_signet *org)
{
	uint32_t alice = 0, alice2 = 0, bob = 0;
	struct dime_signet *ssr = NULL, *u_pok = NULL, *u_sok = NULL, *ssr2 = NULL, *u2 = NULL;
	struct dime_signet *u = NULL, *bob_ssr = NULL, *bob_u = NULL;
	struct dime_view id;
	uint8_t pub[32];
	int rc;

	if (dime_ks_generate(ks, &alice, DIME_KEY_USER) != DIME_OK ||
	    dime_ks_generate(ks, &alice2, DIME_KEY_USER) != DIME_OK ||
	    dime_ks_generate(ks, &bob, DIME_KEY_USER) != DIME_OK) {
		t_fail("generate users");
		return;
	}
	if ((ssr = make_ssr(alice, DIME_KS_NONE)) == NULL)
		return;
	T_CHECK(dime_signet_type(ssr) == DIME_SIGNET_SSR && strcmp(ids_of(ssr), "1,2,5") == 0,
		"ssr fields: got %s", ids_of(ssr));
	T_CHECK(dime_ks_sign_pub(ks, pub, alice) == DIME_OK && sig_covers(ssr, 5, pub),
		"ssr self-signature coverage");
	expect_verdict("ssr", ssr, NULL, NULL, DIME_SIGNET_VALID, DIME_LEVEL_SSR);
	check_fp_stable("ssr", ssr);

	/* Signed by the POK and by a SOK with bit 1. */
	u_pok = sign_ssr(ssr, NULL, org, org_key, "Alice@Example.org");
	u_sok = sign_ssr(ssr, NULL, org, sok_signets, "alice@example.org");
	if (u_pok != NULL) {
		T_CHECK(dime_signet_type(u_pok) == DIME_SIGNET_USER &&
			    strcmp(ids_of(u_pok), "1,2,5,6,16,21,253,254,255") == 0,
			"user fields: got %s", ids_of(u_pok));
		T_CHECK(dime_signet_identifier(u_pok, &id) == DIME_OK && id.len == 17 &&
			    memcmp(id.p, "alice@example.org", 17) == 0,
			"address not lower-cased");
		T_CHECK(sig_covers(u_pok, 6, pok) && sig_covers(u_pok, 253, pok) &&
			    sig_covers(u_pok, 255, pok),
			"user signatures coverage");
		expect_verdict("user by POK", u_pok, org, NULL, DIME_SIGNET_VALID, DIME_LEVEL_ID);
		check_fp_stable("user", u_pok);
		/* The SSR fingerprint of the user signet is the SSR's own. */
		{
			uint8_t a[64], b[64];

			T_CHECK(dime_signet_fingerprint(a, ssr, DIME_FP_SSR) == DIME_OK &&
				    dime_signet_fingerprint(b, u_pok, DIME_FP_SSR) == DIME_OK &&
				    memcmp(a, b, 64) == 0,
				"ssr fingerprint changed by signing");
		}
	}
	if (u_sok != NULL)
		expect_verdict("user by SOK", u_sok, org, NULL, DIME_SIGNET_VALID, DIME_LEVEL_ID);

	/* Refused signers: a SOK without bit 1, a key the org does not list, a user key. */
	rc = dime_signet_ssr_sign(&u, ssr, NULL, org, ks, sok_tls, NULL, 0, "alice@example.org");
	T_CHECK(rc == DIME_E_INVALID && u == NULL, "SOK without bit 1: got %d", rc);
	rc = dime_signet_ssr_sign(&u, ssr, NULL, org, ks, sok_stranger, NULL, 0,
				  "alice@example.org");
	T_CHECK(rc == DIME_E_INVALID && u == NULL, "unlisted SOK: got %d", rc);
	rc = dime_signet_ssr_sign(&u, ssr, NULL, org, ks, bob, NULL, 0, "alice@example.org");
	T_CHECK(rc == DIME_E_INVALID && u == NULL, "user key as signer: got %d", rc);
	rc = dime_signet_ssr_sign(&u, ssr, NULL, org, ks, 9999, NULL, 0, "alice@example.org");
	T_CHECK(rc == DIME_E_NOTFOUND && u == NULL, "missing signer: got %d", rc);
	/* org == NULL skips the listing check: the SOK signs, but validation then refuses it. */
	rc = dime_signet_ssr_sign(&u, ssr, NULL, NULL, ks, sok_tls, NULL, 0, "alice@example.org");
	T_CHECK(rc == DIME_OK && u != NULL, "org NULL: got %d", rc);
	if (u != NULL)
		expect_verdict("signed by a SOK without bit 1", u, org, NULL, DIME_SIGNET_INVALID,
			       DIME_LEVEL_NONE);
	dime_signet_free(u);
	u = NULL;
	/* A user signet is not an SSR. */
	if (u_pok != NULL) {
		rc = dime_signet_ssr_sign(&u, u_pok, NULL, org, ks, org_key, NULL, 0,
					  "alice@example.org");
		T_CHECK(rc == DIME_E_INVALID && u == NULL, "signing a user signet: got %d", rc);
	}
	/* A tampered SSR (self-signature broken) is refused. */
	{
		struct dime_view b = dime_signet_bytes(ssr);
		uint8_t *c = malloc(b.len);
		struct dime_signet *bad = NULL;

		if (c != NULL) {
			memcpy(c, b.p, b.len);
			c[b.len - 1] ^= 1;
			if (dime_signet_parse(&bad, NULL, c, b.len) == DIME_OK) {
				rc = dime_signet_ssr_sign(&u, bad, NULL, org, ks, org_key, NULL, 0,
							  "alice@example.org");
				T_CHECK(rc == DIME_E_BADSIG && u == NULL, "tampered SSR: got %d",
					rc);
			}
			dime_signet_free(bad);
			free(c);
		}
	}

	/* Rotation: custody by the previous key, checked against the previous signet. */
	ssr2 = make_ssr(alice2, alice);
	if (ssr2 != NULL && u_pok != NULL) {
		T_CHECK(strcmp(ids_of(ssr2), "1,2,4,5") == 0, "rotated ssr fields: got %s",
			ids_of(ssr2));
		T_CHECK(dime_ks_sign_pub(ks, pub, alice) == DIME_OK && sig_covers(ssr2, 4, pub),
			"custody coverage (fields 1-3) with the previous key");
		expect_verdict("rotated ssr with previous", ssr2, NULL, u_pok, DIME_SIGNET_VALID,
			       DIME_LEVEL_SSR);
		expect_verdict("rotated ssr without previous", ssr2, NULL, NULL,
			       DIME_SIGNET_BROKEN_CUSTODY, DIME_LEVEL_NONE);
		u2 = sign_ssr(ssr2, u_pok, org, org_key, "alice@example.org");
		if (u2 != NULL) {
			expect_verdict("rotated user with previous", u2, org, u_pok,
				       DIME_SIGNET_VALID, DIME_LEVEL_ID);
			expect_verdict("rotated user without previous", u2, org, NULL,
				       DIME_SIGNET_BROKEN_CUSTODY, DIME_LEVEL_NONE);
			check_fp_stable("rotated user", u2);
		}
		/* The wrong previous signet: custody does not verify, so the org refuses. */
		bob_ssr = make_ssr(bob, DIME_KS_NONE);
		if (bob_ssr != NULL &&
		    (bob_u = sign_ssr(bob_ssr, NULL, org, org_key, "bob@example.org")) != NULL) {
			rc = dime_signet_ssr_sign(&u, ssr2, bob_u, org, ks, org_key, NULL, 0,
						  "alice@example.org");
			T_CHECK(rc == DIME_E_BADSIG && u == NULL, "wrong previous: got %d", rc);
			/* A previous given for an SSR without custody: broken custody. */
			rc = dime_signet_ssr_sign(&u, ssr, bob_u, org, ks, org_key, NULL, 0,
						  "alice@example.org");
			T_CHECK(rc == DIME_E_BADSIG && u == NULL,
				"previous without custody: got %d", rc);
		}
	}
	/* Key kinds. */
	rc = dime_signet_ssr_create(&u, ks, org_key, DIME_KS_NONE);
	T_CHECK(rc == DIME_E_INVALID && u == NULL, "ssr from an org key: got %d", rc);
	rc = dime_signet_ssr_create(&u, ks, 9999, DIME_KS_NONE);
	T_CHECK(rc == DIME_E_NOTFOUND && u == NULL, "ssr from a missing key: got %d", rc);
	rc = dime_signet_ssr_create(&u, ks, alice, alice);
	T_CHECK(rc == DIME_E_INVALID && u == NULL, "custody by the same key: got %d", rc);

	dime_signet_free(ssr);
	dime_signet_free(u_pok);
	dime_signet_free(u_sok);
	dime_signet_free(ssr2);
	dime_signet_free(u2);
	dime_signet_free(bob_ssr);
	dime_signet_free(bob_u);
}

struct bad_case {
	const char *name;
	struct dime_signet_info info;
};

static void
test_invalid_input(const struct dime_signet *org)
{
	static uint8_t big[70000];
	static const struct bad_case bad[] = {
	    {"id 15", {15, NOVIEW, V("x")}},
	    {"id 253", {253, NOVIEW, V("x")}},
	    {"id 0", {0, NOVIEW, V("x")}},
	    {"name on a defined field", {16, V("Name"), V("x")}},
	    {"251 empty name", {251, NOVIEW, V("x")}},
	    {"251 name with space", {251, V("Has Space"), V("x")}},
	    {"251 name with tab", {251, V("Tab\t"), V("x")}},
	    {"251 name with nbsp", {251, V("No\xc2\xa0"), V("x")}},
	    {"251 name bad utf-8", {251, V("Bad\xff"), V("x")}},
	    {"251 name overlong utf-8", {251, V("\xc0\xaf"), V("x")}},
	    {"251 name surrogate", {251, V("\xed\xa0\x80"), V("x")}},
	    {"251 name truncated utf-8", {251, V("ok\xe2\x82"), V("x")}},
	    {"16 value 256 bytes", {16, NOVIEW, {big, 256}}},
	    {"160 value 65536 bytes", {160, NOVIEW, {big, 65536}}},
	    {"251 value 65536 bytes", {251, V("Big"), {big, 65536}}},
	};
	static const char *const bad_domains[] = {
	    "",
	    "org",
	    "bad_domain.org",
	    "-a.example.org",
	    "a-.example.org",
	    "a..org",
	    ".a.org",
	    "a.org.",
	    "1.2.3.4",
	    "ex ample.org",
	    "caf\xc3\xa9.org",
	    "a@b.org",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.org"};
	static const char *const bad_addrs[] = {
	    "alice.example.org", "@example.org",   "alice@",	      "alice@org",
	    "a..b@example.org",	 ".a@example.org", "a b@example.org", "a@b@example.org",
	    "\"a\"@example.org", "a@bad_host.org"};
	struct dime_signet_sok_spec sok = {sok_signets, DIME_SOK_SIGNETS | 0x10};
	struct dime_signet *s = NULL, *ssr = NULL;
	uint32_t user = 0;
	int rc;

	memset(big, 'a', sizeof(big));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = dime_signet_org_create(&s, ks, org_key, NULL, 0, &bad[i].info, 1,
					    "example.org");
		T_CHECK(rc == DIME_E_INVALID && s == NULL, "org info %s: got %d", bad[i].name, rc);
	}
	for (size_t i = 0; i < sizeof(bad_domains) / sizeof(bad_domains[0]); i++) {
		rc = dime_signet_org_create(&s, ks, org_key, NULL, 0, NULL, 0, bad_domains[i]);
		T_CHECK(rc == DIME_E_INVALID && s == NULL, "domain '%s': got %d", bad_domains[i],
			rc);
	}
	/* Limits that are fine. */
	{
		struct dime_signet_info ok[] = {{16, NOVIEW, {big, 255}},
						{160, NOVIEW, {big, 65535}},
						{251, V("Ok\xc3\xa9"), {big, 65535}},
						{252, NOVIEW, {big, 70000}},
						{16 + 1, NOVIEW, {big, 0}}};

		rc = dime_signet_org_create(&s, ks, org_key, NULL, 0, ok, 5, "a-b.example.org");
		T_CHECK(rc == DIME_OK && s != NULL, "largest values: got %d", rc);
		dime_signet_free(s);
		s = NULL;
	}
	/* A unique field twice. */
	{
		struct dime_signet_info twice[] = {{16, NOVIEW, V("A")}, {16, NOVIEW, V("B")}};

		rc = dime_signet_org_create(&s, ks, org_key, NULL, 0, twice, 2, "example.org");
		T_CHECK(rc == DIME_E_INVALID && s == NULL, "unique id twice: got %d", rc);
	}
	rc = dime_signet_org_create(&s, ks, org_key, &sok, 1, NULL, 0, "example.org");
	T_CHECK(rc == DIME_E_INVALID && s == NULL, "reserved perms: got %d", rc);
	sok.perms = DIME_SOK_SIGNETS;
	sok.key_id = org_key;
	rc = dime_signet_org_create(&s, ks, org_key, &sok, 1, NULL, 0, "example.org");
	T_CHECK(rc == DIME_E_INVALID && s == NULL, "SOK that is not a lone seed: got %d", rc);
	sok.key_id = 9999;
	rc = dime_signet_org_create(&s, ks, org_key, &sok, 1, NULL, 0, "example.org");
	T_CHECK(rc == DIME_E_NOTFOUND && s == NULL, "missing SOK: got %d", rc);
	rc = dime_signet_org_create(&s, ks, sok_signets, NULL, 0, NULL, 0, "example.org");
	T_CHECK(rc == DIME_E_INVALID && s == NULL, "org from a SIGN key: got %d", rc);

	/* User side. */
	if (dime_ks_generate(ks, &user, DIME_KEY_USER) != DIME_OK ||
	    dime_signet_ssr_create(&ssr, ks, user, DIME_KS_NONE) != DIME_OK) {
		t_fail("user setup");
		return;
	}
	for (size_t i = 0; i < sizeof(bad_addrs) / sizeof(bad_addrs[0]); i++) {
		rc = dime_signet_ssr_sign(&s, ssr, NULL, org, ks, org_key, NULL, 0, bad_addrs[i]);
		T_CHECK(rc == DIME_E_INVALID && s == NULL, "address '%s': got %d", bad_addrs[i],
			rc);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = dime_signet_ssr_sign(&s, ssr, NULL, org, ks, org_key, &bad[i].info, 1,
					  "u@example.org");
		T_CHECK(rc == DIME_E_INVALID && s == NULL, "user info %s: got %d", bad[i].name, rc);
	}
	rc = dime_signet_ssr_sign(&s, ssr, NULL, org, ks, org_key, NULL, 0,
				  "o'brien+tag@mail.example.org");
	T_CHECK(rc == DIME_OK && s != NULL, "atext address: got %d", rc);
	dime_signet_free(s);
	dime_signet_free(ssr);
}

/* ---- the reference's own signets, rebuilt byte for byte (Ed25519 is deterministic) ---- */

static uint32_t
load_key(struct dime_ks *k, const char *file)
{
	size_t len = 0;
	uint8_t *buf = t_read(file, &len);
	uint32_t id = DIME_KS_NONE;

	if (dime_ks_load(k, &id, buf, len) != DIME_OK)
		t_fail("%s: load", file);
	dime_wipe(buf, len);
	free(buf);
	return id;
}

static struct dime_signet *
load_signet(const char *file)
{
	size_t len = 0;
	uint8_t *buf = t_read(file, &len);
	struct dime_signet *s = NULL;
	const char *why = "";

	if (dime_signet_parse(&s, &why, buf, len) != DIME_OK)
		t_fail("%s: parse: %s", file, why);
	free(buf);
	return s;
}

/* The informational fields (16..252) of ref, in wire order. Returns the count. */
static size_t
info_of(struct dime_signet_info *out, size_t cap, const struct dime_signet *ref)
{
	size_t n = 0;

	for (size_t i = 0; i < dime_signet_n_fields(ref) && n < cap; i++) {
		const struct dime_signet_field *f = dime_signet_field_at(ref, i);

		if (f->id < 16 || f->id > 252)
			continue;
		out[n].id = f->id;
		out[n].name = f->name;
		out[n].value = f->value;
		n++;
	}
	return n;
}

static void
same_bytes(const char *name, const struct dime_signet *got, const struct dime_signet *want)
{
	struct dime_view a, b;

	if (got == NULL || want == NULL) {
		t_fail("%s: nothing to compare", name);
		return;
	}
	a = dime_signet_bytes(got);
	b = dime_signet_bytes(want);
	T_CHECK(a.len == b.len && memcmp(a.p, b.p, a.len) == 0,
		"%s: rebuilt %zu bytes differ from the reference's %zu", name, a.len, b.len);
}

static void
test_reproduce_interop(void)
{
	struct dime_ks *k = NULL;
	struct dime_signet_info info[32];
	struct dime_signet *ref = NULL, *got = NULL, *org_a = NULL, *org_b = NULL, *ssr = NULL;
	struct dime_signet *prev = NULL;
	uint32_t alpha, beta, sok1, alice, bob, carol1, carol2;
	size_t n;
	int rc;

	if (dime_ks_new(&k) != DIME_OK) {
		t_fail("ks_new");
		return;
	}
	alpha = load_key(k, "org-alpha.keys.pem");
	beta = load_key(k, "org-beta.keys.pem");
	sok1 = load_key(k, "org-alpha.sok1.ed25519.pem");
	alice = load_key(k, "user-alice.keys.pem");
	bob = load_key(k, "user-bob.keys.pem");
	carol1 = load_key(k, "user-carol-v1.keys.pem");
	carol2 = load_key(k, "user-carol-v2.keys.pem");

	/* Orgs: org-beta has no SOK and no information; org-alpha has SOK 1 (perms 3). */
	org_b = load_signet("org-beta.signet.bin");
	if (org_b != NULL) {
		n = info_of(info, 32, org_b);
		rc = dime_signet_org_create(&got, k, beta, NULL, 0, info, n, "beta.example");
		T_CHECK(rc == DIME_OK, "org-beta: got %d", rc);
		same_bytes("org-beta", got, org_b);
		dime_signet_free(got);
		got = NULL;
	}
	org_a = load_signet("org-alpha.signet.bin");
	if (org_a != NULL) {
		struct dime_signet_sok_spec sok = {sok1, 3};

		n = info_of(info, 32, org_a);
		rc = dime_signet_org_create(&got, k, alpha, &sok, 1, info, n, "alpha.example");
		T_CHECK(rc == DIME_OK, "org-alpha: got %d", rc);
		same_bytes("org-alpha", got, org_a);
		dime_signet_free(got);
		got = NULL;
	}
	/* SSRs, then the org's signature over them (the POK signed them all). */
	{
		static const struct {
			const char *ssr, *signet, *prev, *addr;
			int org_alpha;
		} users[] = {
		    {"user-alice.ssr.bin", "user-alice.signet.bin", NULL, "alice@alpha.example", 1},
		    {"user-bob.ssr.bin", "user-bob.signet.bin", NULL, "bob@beta.example", 0},
		    {"user-carol-v1.ssr.bin", "user-carol-v1.signet.bin", NULL,
		     "carol@alpha.example", 1},
		    {"user-carol-v2.ssr.bin", "user-carol-v2.signet.bin",
		     "user-carol-v1.signet.bin", "carol@alpha.example", 1},
		};
		const uint32_t keys[] = {alice, bob, carol1, carol2};
		const uint32_t prevs[] = {DIME_KS_NONE, DIME_KS_NONE, DIME_KS_NONE, carol1};

		for (size_t i = 0; i < 4; i++) {
			const struct dime_signet *org = users[i].org_alpha ? org_a : org_b;

			rc = dime_signet_ssr_create(&ssr, k, keys[i], prevs[i]);
			T_CHECK(rc == DIME_OK, "%s: got %d", users[i].ssr, rc);
			ref = load_signet(users[i].ssr);
			same_bytes(users[i].ssr, ssr, ref);
			dime_signet_free(ref);
			ref = load_signet(users[i].signet);
			prev = users[i].prev != NULL ? load_signet(users[i].prev) : NULL;
			if (ref != NULL && ssr != NULL && org != NULL) {
				n = info_of(info, 32, ref);
				rc = dime_signet_ssr_sign(&got, ssr, prev, org, k,
							  users[i].org_alpha ? alpha : beta, info,
							  n, users[i].addr);
				T_CHECK(rc == DIME_OK, "%s: got %d", users[i].signet, rc);
				same_bytes(users[i].signet, got, ref);
			}
			dime_signet_free(got);
			dime_signet_free(ref);
			dime_signet_free(prev);
			dime_signet_free(ssr);
			got = ref = prev = ssr = NULL;
		}
	}
	dime_signet_free(org_a);
	dime_signet_free(org_b);
	dime_ks_free(k);
}

int
main(void)
{
	struct dime_signet *org = NULL;

	t_init();
	if (dime_ks_new(&ks) != DIME_OK ||
	    dime_ks_generate(ks, &org_key, DIME_KEY_ORG) != DIME_OK ||
	    dime_ks_generate(ks, &sok_signets, DIME_KEY_SIGN) != DIME_OK ||
	    dime_ks_generate(ks, &sok_tls, DIME_KEY_SIGN) != DIME_OK ||
	    dime_ks_generate(ks, &sok_stranger, DIME_KEY_SIGN) != DIME_OK ||
	    dime_ks_sign_pub(ks, pok, org_key) != DIME_OK) {
		t_fail("keystore setup");
		return t_done("test_signet_create");
	}
	if ((org = make_org()) != NULL) {
		test_org(org);
		test_users(org);
		test_invalid_input(org);
	}
	dime_signet_free(org);
	test_reproduce_interop();
	dime_ks_free(ks);
	return t_done("test_signet_create");
}

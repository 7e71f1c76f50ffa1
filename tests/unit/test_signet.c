/* Signets: the reference's vectors (parse, load, armor, fingerprints, splits, validation as
 * manifest.json's project_expect says), every strict prefix, every single-byte mutation, and
 * hand-built signets for each structural and validation rule and informational decoding. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dime/codec.h"
#include "dime/crypto.h"
#include "dime/signet.h"
#include "tlib.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
/* Results that only must not crash (a cast to void does not silence warn_unused_result). */
#define T_IGNORE(x)                                                                                \
	do {                                                                                       \
		if ((x) != 0) {                                                                    \
		}                                                                                  \
	} while (0)

/* Parties (manifest.json "parties"). */
#define ALPHA_POK  "1b4b9679c1167c76d9f083003b0e5bb182fb9864b9a29cad158c9990284529a4"
#define ALPHA_SEED "179c6975bedb0f9975feb3cc16d1b28635ee6325ef76a88ac1eb97dc1a734a35"
#define ALPHA_ENC  "0251f80efea809a9a308fb395500e502529a8caec57df2c1a818219b9343117309"
#define BETA_POK   "033926bda4a2c713a083b2ce3e39b6cbc155f91ce452afd32b56fa16b8433305"
#define BETA_SEED  "a662deb2dcae007bcd03f4f37bad366c899b1c952b2e87d743bbfd079b6a36bc"
#define BETA_ENC   "022387d8ea1f9dd23b3ee49497562fb13e945cf0df91155ea7021e336ee95087d5"

static void
hex(uint8_t *out, size_t n, const char *h)
{
	size_t got = 0;

	if (dime_hex_decode(out, n, &got, h, strlen(h)) != DIME_OK || got != n) {
		fprintf(stderr, "bad hex constant %s\n", h);
		exit(1);
	}
}

enum trust_kind { TR_NONE, TR_ALPHA_POK, TR_BETA_POK, TR_ALPHA_ORG, TR_BETA_ORG };

struct vec {
	const char *bin, *pem;
	enum dime_signet_type type;
	enum trust_kind trust;
	const char *previous; /* signet file given as previous, or NULL */
	enum dime_signet_verdict_kind want;
	enum dime_signet_level level;
	const char *fp[4]; /* ssr, crypto, full, id; NULL: the kind does not apply */
};

static const struct vec vecs[] = {
    {"org-alpha.signet.bin",
     "org-alpha.signet.pem",
     DIME_SIGNET_ORG,
     TR_ALPHA_POK,
     NULL,
     DIME_SIGNET_VALID,
     DIME_LEVEL_ID,
     {NULL,
      "buYK1jsRrgCJQHvYoJQ6WC2+Q4Jrfmu1rOLG6pFWL6Cn2MYVcGo7q2RuLSD5Tp2si+tfBFtfvFceG72IOrvTwQ",
      "KeKGQwYHUZF92I6nY7MGAkJSsS8FqVsIhFB1Kl0/CxMysdm1EYzLlgo4f+F40h8NBEtG5Un//L27/j35+Ysidw",
      "IrAnhGDa0jwadEGuH7vsR+v0tGUwXaRy0KncBlc2vkMwF7KZdrfDZimZ+rWyJgpHvN2OrUlVDj29EGVGlDUuPA"}},
    {"org-beta.signet.bin",
     "org-beta.signet.pem",
     DIME_SIGNET_ORG,
     TR_BETA_POK,
     NULL,
     DIME_SIGNET_VALID,
     DIME_LEVEL_ID,
     {NULL,
      "ZbWmvursc/ASC1y4FuFeuCmidA3Muzz3EJ2316pR/YeYt9+jT3u8ZbgTrIV8kXon8eH+8dIHJ2CbYWWKIGuAQQ",
      "6hvTp8d0QOtyAqBsFmTMLl03kAEbWmDDRU2EhctWOBpWtlPRYDJeLlQUu0mrbE87kfPyCw+7nX+lrdsyUGLrzA",
      "ISY+We5sxh6v4+rAA8mrqn73sFXYoXclEWK0wKPkNDeJ/pezFj5ViHgtvvlFN+U2GJKdUR6sTnG+I8mPH2XOSA"}},
    {"user-alice.signet.bin",
     "user-alice.signet.pem",
     DIME_SIGNET_USER,
     TR_ALPHA_ORG,
     NULL,
     DIME_SIGNET_VALID,
     DIME_LEVEL_ID,
     {"K7MIyXidQsxJmzVQyxUB8p/AXYwnyduV5DKCuBq8qSgPSJqBHN6arAnwQmW4BzzCCw3ukVz6ZSDUsufnXWm1Wg",
      "2vb1uSiraMNMurjCbIO6E9dOfWUwtBwlFrORfG2k9sgR+jk96Jls5NEQU0XSGiWadp4JcT6TjDE5Uj/XuVT1Yg",
      "9xJ4wvOji1Y5a4YmmmVLlIDjCVo2pJKna84YUdZHgIARZcbL97KTZi9eDQ7jshsJCNCTL+l/Kt+83EUPIpy/kQ",
      "+lsGRpEQzQl3W9b7WeaYOE/jLWgnCm+ZX8Ik6hqedWQnQgHlaX35z5K4qJRjDAB7+45RTVt9hqDXqTyLZR8A0A"}},
    {"user-alice.ssr.bin",
     "user-alice.ssr.pem",
     DIME_SIGNET_SSR,
     TR_ALPHA_ORG,
     NULL,
     DIME_SIGNET_VALID,
     DIME_LEVEL_SSR,
     {"K7MIyXidQsxJmzVQyxUB8p/AXYwnyduV5DKCuBq8qSgPSJqBHN6arAnwQmW4BzzCCw3ukVz6ZSDUsufnXWm1Wg",
      NULL, NULL, NULL}},
    {"user-bob.signet.bin",
     "user-bob.signet.pem",
     DIME_SIGNET_USER,
     TR_BETA_ORG,
     NULL,
     DIME_SIGNET_VALID,
     DIME_LEVEL_ID,
     {"QJbA81/zWZX23Ik/Qx4XtMTpqype3hqpbEYj1Tlcf4I5UgEy6ehu/OZvQ7Xi2uoKCcUpHzfQj/WQdt8e+O33wg",
      "DzSiHgxNhcXvOz2VEKND3zLq4jab8eD6oUJql52jrQcEy4a0iL04HFDoqADx76moUeiuZWCG0WbpHJ+U4o7svw",
      "8Obc0jWxmOQcdRtWcliPWWmxznBMTUd56WbHV+WcbGspE93vhCHyFBq6HUTmng2axVG8JUtfEYpZQ6Ig5dj/Pg",
      "VYW+EeQgqkcWg5Q8+9lwRTUfFtTW3o7hwtm06R2rvVyB+Ix7bPKysQvGgbmSLYXZCvY+cM9GxDitki3Zk4qvZg"}},
    {"user-bob.ssr.bin",
     "user-bob.ssr.pem",
     DIME_SIGNET_SSR,
     TR_NONE,
     NULL,
     DIME_SIGNET_VALID,
     DIME_LEVEL_SSR,
     {"QJbA81/zWZX23Ik/Qx4XtMTpqype3hqpbEYj1Tlcf4I5UgEy6ehu/OZvQ7Xi2uoKCcUpHzfQj/WQdt8e+O33wg",
      NULL, NULL, NULL}},
    {"user-carol-v1.signet.bin",
     "user-carol-v1.signet.pem",
     DIME_SIGNET_USER,
     TR_ALPHA_ORG,
     NULL,
     DIME_SIGNET_VALID,
     DIME_LEVEL_ID,
     {"Q32Ikd5Ru9tGjnER5Dc83/wQIVHPtZR6UXFy+LZiEzqDimHz1RnRvtcsaz9QywfQ7amq5S3jZdYsEz18tZATpg",
      "tKE+chLMda6Mj90PxAa4XX/PnWO3gzd0niAsmN9P9hxZsFZKqcYEAQtSzcwVKSXjlMJruTsDJ2Ecp87UnDhNIg",
      "VnCaHBozZZl7qlvDb3SmHToHJO+agtFceyxrBVXTcfab0rdTtVnoBvwGlm6wcVAa+/l0QF8fO+z8aX5+FksVZg",
      "lrDJKfzAvWbhxM81AhrxM9xcgjbkQFkrIXDnIjGAfJelitBJKljlXZ+BkOepxwbjotsT4Hhx6VC0tYSK9DwRjQ"}},
    {"user-carol-v1.ssr.bin",
     "user-carol-v1.ssr.pem",
     DIME_SIGNET_SSR,
     TR_NONE,
     NULL,
     DIME_SIGNET_VALID,
     DIME_LEVEL_SSR,
     {"Q32Ikd5Ru9tGjnER5Dc83/wQIVHPtZR6UXFy+LZiEzqDimHz1RnRvtcsaz9QywfQ7amq5S3jZdYsEz18tZATpg",
      NULL, NULL, NULL}},
    {"user-carol-v2.signet.bin",
     "user-carol-v2.signet.pem",
     DIME_SIGNET_USER,
     TR_ALPHA_ORG,
     "user-carol-v1.signet.bin",
     DIME_SIGNET_VALID,
     DIME_LEVEL_ID,
     {"Gdlsgq5Y+IfhtPn4u3FDKhsapOzqsEvMjTqllLktdd01Fkuux8Rc5/5Fd0fosA8MttzdHgczvJa/98307XJvlw",
      "VQbklzMuZWiOicRcfVrk7d3M89NbZjUz7z8Qx86n6EGht9w8PQ9OUhWC7lysCWwMqOktVjiCMcQD2OEIzPBtWA",
      "45uRAMO81fCxoyLL9GxHz1d+g4FF3voEmfXvsI96+ouHe9Ncalnj8/3o6Hr7q20UxCEM+zADhQ+bdtLcYaYkxA",
      "+AavJAjJkm1RhxAYx+NqzEuf+LhJMDNdw8yRGiviKN9bVveOtD6R63D2STpPsorhl2X1HBYwCdO84I9gOvxsCA"}},
    {"user-carol-v2.ssr.bin",
     "user-carol-v2.ssr.pem",
     DIME_SIGNET_SSR,
     TR_NONE,
     "user-carol-v1.signet.bin",
     DIME_SIGNET_VALID,
     DIME_LEVEL_SSR,
     {"Gdlsgq5Y+IfhtPn4u3FDKhsapOzqsEvMjTqllLktdd01Fkuux8Rc5/5Fd0fosA8MttzdHgczvJa/98307XJvlw",
      NULL, NULL, NULL}},
    {"user-bob.signet.crypto-split.bin",
     "user-bob.signet.crypto-split.pem",
     DIME_SIGNET_USER,
     TR_BETA_ORG,
     NULL,
     DIME_SIGNET_VALID,
     DIME_LEVEL_CRYPTO,
     {"QJbA81/zWZX23Ik/Qx4XtMTpqype3hqpbEYj1Tlcf4I5UgEy6ehu/OZvQ7Xi2uoKCcUpHzfQj/WQdt8e+O33wg",
      "DzSiHgxNhcXvOz2VEKND3zLq4jab8eD6oUJql52jrQcEy4a0iL04HFDoqADx76moUeiuZWCG0WbpHJ+U4o7svw",
      "DzSiHgxNhcXvOz2VEKND3zLq4jab8eD6oUJql52jrQcEy4a0iL04HFDoqADx76moUeiuZWCG0WbpHJ+U4o7svw",
      "DzSiHgxNhcXvOz2VEKND3zLq4jab8eD6oUJql52jrQcEy4a0iL04HFDoqADx76moUeiuZWCG0WbpHJ+U4o7svw"}},
    {"user-bob.signet.full-split.bin",
     "user-bob.signet.full-split.pem",
     DIME_SIGNET_USER,
     TR_BETA_ORG,
     NULL,
     DIME_SIGNET_VALID,
     DIME_LEVEL_FULL,
     {"QJbA81/zWZX23Ik/Qx4XtMTpqype3hqpbEYj1Tlcf4I5UgEy6ehu/OZvQ7Xi2uoKCcUpHzfQj/WQdt8e+O33wg",
      "DzSiHgxNhcXvOz2VEKND3zLq4jab8eD6oUJql52jrQcEy4a0iL04HFDoqADx76moUeiuZWCG0WbpHJ+U4o7svw",
      "8Obc0jWxmOQcdRtWcliPWWmxznBMTUd56WbHV+WcbGspE93vhCHyFBq6HUTmng2axVG8JUtfEYpZQ6Ig5dj/Pg",
      "8Obc0jWxmOQcdRtWcliPWWmxznBMTUd56WbHV+WcbGspE93vhCHyFBq6HUTmng2axVG8JUtfEYpZQ6Ig5dj/Pg"}},
    {"org-alpha.signet.crypto-split.bin",
     "org-alpha.signet.crypto-split.pem",
     DIME_SIGNET_ORG,
     TR_ALPHA_POK,
     NULL,
     DIME_SIGNET_VALID,
     DIME_LEVEL_CRYPTO,
     {NULL,
      "buYK1jsRrgCJQHvYoJQ6WC2+Q4Jrfmu1rOLG6pFWL6Cn2MYVcGo7q2RuLSD5Tp2si+tfBFtfvFceG72IOrvTwQ",
      "buYK1jsRrgCJQHvYoJQ6WC2+Q4Jrfmu1rOLG6pFWL6Cn2MYVcGo7q2RuLSD5Tp2si+tfBFtfvFceG72IOrvTwQ",
      "buYK1jsRrgCJQHvYoJQ6WC2+Q4Jrfmu1rOLG6pFWL6Cn2MYVcGo7q2RuLSD5Tp2si+tfBFtfvFceG72IOrvTwQ"}},
};

static struct dime_signet *org_alpha, *org_beta;
static uint8_t alpha_pok[1][32], beta_pok[1][32];

static struct dime_signet *
must_parse_file(const char *name)
{
	size_t len;
	uint8_t *b = t_read(name, &len);
	struct dime_signet *s = NULL;
	const char *why = "";
	int rc = dime_signet_parse(&s, &why, b, len);

	free(b);
	if (rc != DIME_OK) {
		fprintf(stderr, "FAIL: %s: got %d (%s), want ok\n", name, rc, why);
		exit(1);
	}
	return s;
}

static void
trust_for(struct dime_signet_trust *t, enum trust_kind k)
{
	memset(t, 0, sizeof(*t));
	switch (k) {
	case TR_ALPHA_POK: t->poks = (const uint8_t(*)[32])alpha_pok, t->n_poks = 1; break;
	case TR_BETA_POK: t->poks = (const uint8_t(*)[32])beta_pok, t->n_poks = 1; break;
	case TR_ALPHA_ORG: t->org = org_alpha; break;
	case TR_BETA_ORG: t->org = org_beta; break;
	default: break;
	}
}

static const char *
kind_name(enum dime_signet_verdict_kind k)
{
	return k == DIME_SIGNET_VALID ? "valid" : k == DIME_SIGNET_INVALID ? "invalid" : "broken";
}

static void
want_verdict(const char *name, const struct dime_signet *s, const struct dime_signet_trust *t,
	     enum dime_signet_verdict_kind want, enum dime_signet_level level, const char *why_has)
{
	struct dime_signet_verdict v;
	int rc = dime_signet_validate(&v, s, t);

	T_CHECK(v.kind == want, "%s: got %s (%s), want %s", name, kind_name(v.kind), v.reason,
		kind_name(want));
	T_CHECK((rc == DIME_OK) == (v.kind == DIME_SIGNET_VALID), "%s: rc %d for %s", name, rc,
		kind_name(v.kind));
	if (want == DIME_SIGNET_VALID)
		T_CHECK(v.level == level && *v.reason == 0, "%s: level got %d, want %d", name,
			v.level, level);
	else
		T_CHECK(v.level == DIME_LEVEL_NONE && v.reason != NULL && *v.reason != 0,
			"%s: failure must carry a reason and no level", name);
	if (why_has != NULL && v.reason != NULL)
		T_CHECK(strstr(v.reason, why_has) != NULL,
			"%s: reason got '%s', want it to hold '%s'", name, v.reason, why_has);
}

/* Exercise everything that must not crash on a parsed signet. */
static void
poke(const struct dime_signet *s)
{
	struct dime_signet_trust t;
	struct dime_signet_verdict v;
	struct dime_signet *part = NULL;
	char fp[DIME_FP_B64_LEN + 1];
	uint8_t pub[33], perms;
	struct dime_view id;

	for (int k = DIME_FP_SSR; k <= DIME_FP_ID; k++)
		T_IGNORE(dime_signet_fingerprint_b64(fp, s, (enum dime_fp_kind)k));
	for (int lv = DIME_LEVEL_CRYPTO; lv <= DIME_LEVEL_FULL; lv++) {
		if (dime_signet_split(&part, s, (enum dime_signet_level)lv) == DIME_OK)
			dime_signet_free(part);
		part = NULL;
	}
	for (size_t i = 0; i < dime_signet_n_fields(s); i++) {
		struct dime_signet_item items[8];
		size_t n;

		T_IGNORE(
		    dime_signet_field_items(items, N_OF(items), &n, s, dime_signet_field_at(s, i)));
	}
	T_IGNORE(dime_signet_signing_key(s, pub));
	T_IGNORE(dime_signet_enc_key(s, pub));
	T_IGNORE(dime_signet_sok(s, &perms, pub, 0));
	T_IGNORE(dime_signet_identifier(s, &id));
	trust_for(&t, TR_ALPHA_POK);
	t.org = org_beta;
	t.previous = org_alpha;
	T_IGNORE(dime_signet_validate(&v, s, &t));
}

/* ---- the reference's vectors ---- */

static void
test_vectors(void)
{
	for (size_t i = 0; i < N_OF(vecs); i++) {
		const struct vec *c = &vecs[i];
		size_t len, plen, alen = 0, need = 0;
		uint8_t *bin = t_read(c->bin, &len), *pem = t_read(c->pem, &plen);
		struct dime_signet *s = NULL, *s2 = NULL, *prev = NULL;
		struct dime_signet_trust t;
		const char *why = "x";
		char *arm;
		int rc;

		rc = dime_signet_parse(&s, &why, t_at_page_end(0, bin, len), len);
		T_CHECK(rc == DIME_OK && *why == 0, "%s: parse got %d (%s)", c->bin, rc, why);
		if (rc != DIME_OK)
			goto next;
		T_CHECK(dime_signet_type(s) == c->type, "%s: type got %d, want %d", c->bin,
			dime_signet_type(s), c->type);
		/* parse then serialize gives back the same bytes */
		T_CHECK(dime_signet_bytes(s).len == len &&
			    memcmp(dime_signet_bytes(s).p, bin, len) == 0,
			"%s: serialize differs from the input", c->bin);
		/* Field views stay inside the signet. */
		for (size_t k = 0; k < dime_signet_n_fields(s); k++) {
			const struct dime_signet_field *f = dime_signet_field_at(s, k);
			const uint8_t *b = dime_signet_bytes(s).p;

			T_CHECK(f->value.p >= b && f->value.p + f->value.len <= b + len,
				"%s: field %zu escapes", c->bin, k);
		}
		T_CHECK(dime_signet_field_at(s, dime_signet_n_fields(s)) == NULL,
			"%s: field_at end", c->bin);
		/* The armored file loads to the same bytes. */
		rc = dime_signet_load(&s2, &why, t_at_page_end(1, pem, plen), plen);
		T_CHECK(rc == DIME_OK && dime_signet_bytes(s2).len == len &&
			    memcmp(dime_signet_bytes(s2).p, bin, len) == 0,
			"%s: load got %d (%s), or other bytes", c->pem, rc, why);
		dime_signet_free(s2);
		s2 = NULL;
		/* load also takes binary */
		rc = dime_signet_load(&s2, &why, bin, len);
		T_CHECK(rc == DIME_OK, "%s: load binary got %d", c->bin, rc);
		dime_signet_free(s2);
		s2 = NULL;
		/* Armor reproduces the reference's file; SSRs carry the reference's wrong label. */
		T_CHECK(dime_signet_armor(NULL, 0, &need, s) == DIME_OK, "%s: armor size", c->bin);
		arm = malloc(need + 1);
		rc = dime_signet_armor(arm, need + 1, &alen, s);
		T_CHECK(rc == DIME_OK && alen == need, "%s: armor got %d, len %zu want %zu", c->bin,
			rc, alen, need);
		if (rc == DIME_OK && c->type != DIME_SIGNET_SSR)
			T_CHECK(alen == plen && memcmp(arm, pem, plen) == 0,
				"%s: armor differs from the reference's file", c->pem);
		if (rc == DIME_OK && c->type == DIME_SIGNET_SSR) {
			static const char lab[] = "-----BEGIN SIGNET SIGNING REQUEST-----\n";
			static const char end[] = "-----END SIGNET SIGNING REQUEST-----\n";
			static const char ref[] = "-----BEGIN ORGANIZATIONAL SIGNET-----\n";
			static const char ref_end[] = "-----END ORGANIZATIONAL SIGNET-----\n";
			size_t body = plen - strlen(ref) - strlen(ref_end);

			/* The reference's file, with the label fixed. */
			T_CHECK(strncmp((char *)pem, ref, strlen(ref)) == 0 &&
				    strcmp((char *)pem + plen - strlen(ref_end), ref_end) == 0,
				"%s: the reference's SSR label", c->pem);
			T_CHECK(alen == strlen(lab) + body + strlen(end) &&
				    strncmp(arm, lab, strlen(lab)) == 0 &&
				    memcmp(arm + strlen(lab), pem + strlen(ref), body) == 0 &&
				    strcmp(arm + strlen(lab) + body, end) == 0,
				"%s: SSR armor differs from the reference's but for the label",
				c->pem);
			rc = dime_signet_load(&s2, &why, (const uint8_t *)arm, alen);
			T_CHECK(rc == DIME_OK, "%s: our SSR armor does not load: %d", c->pem, rc);
			dime_signet_free(s2);
			s2 = NULL;
		}
		free(arm);
		/* Fingerprints (manifest project_expect.fingerprints). */
		for (int k = 0; k < 4; k++) {
			char fp[DIME_FP_B64_LEN + 1];

			rc = dime_signet_fingerprint_b64(fp, s, (enum dime_fp_kind)(k + 1));
			if (c->fp[k] == NULL)
				T_CHECK(rc == DIME_E_INVALID && fp[0] == 0,
					"%s: fingerprint kind %d got %d, want DIME_E_INVALID",
					c->bin, k + 1, rc);
			else
				T_CHECK(rc == DIME_OK && strcmp(fp, c->fp[k]) == 0,
					"%s: fingerprint kind %d got %s, want %s", c->bin, k + 1,
					fp, c->fp[k]);
		}
		/* Validation. */
		trust_for(&t, c->trust);
		if (c->previous != NULL) {
			prev = must_parse_file(c->previous);
			t.previous = prev;
		}
		want_verdict(c->bin, s, &t, c->want, c->level, NULL);
		if (c->previous != NULL) {
			t.previous = NULL;
			want_verdict(c->bin, s, &t, DIME_SIGNET_BROKEN_CUSTODY, DIME_LEVEL_NONE,
				     "no previous");
		}
next:
		dime_signet_free(s);
		dime_signet_free(prev);
		free(bin);
		free(pem);
	}
}

/* Trust mismatches on the vectors. */
static void
test_vector_trust(void)
{
	struct dime_signet *bob = must_parse_file("user-bob.signet.bin");
	struct dime_signet *c1 = must_parse_file("user-carol-v1.signet.bin");
	struct dime_signet *c2 = must_parse_file("user-carol-v2.signet.bin");
	struct dime_signet *c2ssr = must_parse_file("user-carol-v2.ssr.bin");
	struct dime_signet *alice = must_parse_file("user-alice.signet.bin");
	struct dime_signet_trust t;

	trust_for(&t, TR_BETA_POK);
	want_verdict("org-alpha with beta's POK", org_alpha, &t, DIME_SIGNET_INVALID, 0,
		     "not one of");
	trust_for(&t, TR_NONE);
	want_verdict("org-alpha without POKs", org_alpha, &t, DIME_SIGNET_INVALID, 0, "no POK");
	want_verdict("org-alpha with NULL trust", org_alpha, NULL, DIME_SIGNET_INVALID, 0,
		     "no POK");
	trust_for(&t, TR_ALPHA_ORG);
	want_verdict("bob against org-alpha", bob, &t, DIME_SIGNET_INVALID, 0, "field 6");
	trust_for(&t, TR_NONE);
	want_verdict("bob without org", bob, &t, DIME_SIGNET_INVALID, 0, "no org");
	t.org = alice;
	want_verdict("bob with a user signet as org", bob, &t, DIME_SIGNET_INVALID, 0,
		     "not an org");
	/* Custody. */
	trust_for(&t, TR_ALPHA_ORG);
	t.previous = alice;
	want_verdict("carol-v2, wrong previous", c2, &t, DIME_SIGNET_BROKEN_CUSTODY, 0,
		     "does not verify");
	want_verdict("carol-v2 ssr, wrong previous", c2ssr, &t, DIME_SIGNET_BROKEN_CUSTODY, 0,
		     "does not verify");
	t.previous = org_alpha;
	want_verdict("carol-v2, org as previous", c2, &t, DIME_SIGNET_BROKEN_CUSTODY, 0,
		     "not a user");
	t.previous = c2;
	want_verdict("carol-v1 given a previous", c1, &t, DIME_SIGNET_BROKEN_CUSTODY, 0, "missing");
	/* A split's previous-custody still checks out. */
	t.previous = c1;
	want_verdict("carol-v2 with previous", c2, &t, DIME_SIGNET_VALID, DIME_LEVEL_ID, NULL);
	dime_signet_free(bob);
	dime_signet_free(c1);
	dime_signet_free(c2);
	dime_signet_free(c2ssr);
	dime_signet_free(alice);
}

static void
test_accessors(void)
{
	uint8_t pub[33], want[33], perms = 0;
	struct dime_view id;
	struct dime_signet *bob = must_parse_file("user-bob.signet.bin");

	T_CHECK(dime_signet_signing_key(org_alpha, pub) == DIME_OK &&
		    memcmp(pub, alpha_pok, 32) == 0,
		"org-alpha POK: got %s", t_hex(pub, 32));
	hex(want, 33, ALPHA_ENC);
	T_CHECK(dime_signet_enc_key(org_alpha, pub) == DIME_OK && memcmp(pub, want, 33) == 0,
		"org-alpha enc: got %s", t_hex(pub, 33));
	hex(want, 33, "039f89f2a97962bd1061e2a51332b7d05d989b323e70d9fb61d362fb387f9a7b31");
	T_CHECK(dime_signet_enc_key(bob, pub) == DIME_OK && memcmp(pub, want, 33) == 0,
		"bob enc: got %s", t_hex(pub, 33));
	hex(want, 32, "94d0afa1afbd82433002020c405394010ea22972a10f569527ee805bf7e89a5c");
	T_CHECK(dime_signet_signing_key(bob, pub) == DIME_OK && memcmp(pub, want, 32) == 0,
		"bob signing key: got %s", t_hex(pub, 32));
	T_CHECK(dime_signet_n_soks(org_alpha) == 1, "org-alpha SOKs: got %zu, want 1",
		dime_signet_n_soks(org_alpha));
	T_CHECK(dime_signet_n_soks(org_beta) == 0 && dime_signet_n_soks(bob) == 0, "no SOKs");
	T_CHECK(dime_signet_sok(org_alpha, &perms, pub, 0) == DIME_OK && perms == 3,
		"org-alpha SOK perms: got %u, want 3", perms);
	T_CHECK(dime_signet_sok(org_alpha, &perms, pub, 1) == DIME_E_NOTFOUND && perms == 0,
		"org-alpha SOK 1: want NOTFOUND");
	{
		/* The SOK is the public half of org-alpha.sok1.ed25519.pem. */
		size_t plen, n;
		uint8_t *pem = t_read("org-alpha.sok1.ed25519.pem", &plen), seed[64], sp[32];
		char label[DIME_ARMOR_LABEL_MAX];

		T_CHECK(dime_armor_decode(label, seed, sizeof(seed), &n, NULL, pem, plen) ==
				DIME_OK &&
			    n == 32 && dime_ed25519_pub(sp, seed) == DIME_OK,
			"sok1 seed");
		T_IGNORE(dime_signet_sok(org_alpha, &perms, pub, 0));
		T_CHECK(memcmp(sp, pub, 32) == 0, "org-alpha SOK: got %s", t_hex(pub, 32));
		free(pem);
	}
	T_CHECK(dime_signet_identifier(org_alpha, &id) == DIME_OK && id.len == 13 &&
		    memcmp(id.p, "alpha.example", 13) == 0,
		"org-alpha identifier");
	T_CHECK(dime_signet_identifier(bob, &id) == DIME_OK && id.len == 16 &&
		    memcmp(id.p, "bob@beta.example", 16) == 0,
		"bob identifier");
	T_CHECK(dime_signet_find(bob, 21) == dime_signet_field_at(bob, 5), "find the first phone");
	T_CHECK(dime_signet_find(bob, 3) == NULL, "find absent");
	dime_signet_free(bob);
}

/* Splits are the reference's bytes. */
static void
test_splits(void)
{
	static const struct {
		const char *from, *want;
		enum dime_signet_level at;
	} cases[] = {
	    {"user-bob.signet.bin", "user-bob.signet.crypto-split.bin", DIME_LEVEL_CRYPTO},
	    {"user-bob.signet.bin", "user-bob.signet.full-split.bin", DIME_LEVEL_FULL},
	    {"org-alpha.signet.bin", "org-alpha.signet.crypto-split.bin", DIME_LEVEL_CRYPTO},
	    {"user-bob.signet.full-split.bin", "user-bob.signet.crypto-split.bin",
	     DIME_LEVEL_CRYPTO},
	    {"user-bob.signet.full-split.bin", "user-bob.signet.full-split.bin", DIME_LEVEL_FULL},
	};
	static const struct {
		const char *from;
		enum dime_signet_level at;
	} bad[] = {
	    {"user-bob.ssr.bin", DIME_LEVEL_CRYPTO},
	    {"user-bob.ssr.bin", DIME_LEVEL_FULL},
	    {"user-bob.signet.crypto-split.bin", DIME_LEVEL_FULL},
	    {"org-alpha.signet.crypto-split.bin", DIME_LEVEL_FULL},
	    {"user-bob.signet.bin", DIME_LEVEL_ID},
	    {"user-bob.signet.bin", DIME_LEVEL_SSR},
	};

	for (size_t i = 0; i < N_OF(cases); i++) {
		struct dime_signet *s = must_parse_file(cases[i].from), *p = NULL;
		size_t len;
		uint8_t *want = t_read(cases[i].want, &len);
		int rc = dime_signet_split(&p, s, cases[i].at);

		T_CHECK(rc == DIME_OK && dime_signet_bytes(p).len == len &&
			    memcmp(dime_signet_bytes(p).p, want, len) == 0,
			"split %s at %d: got %d or other bytes than %s", cases[i].from, cases[i].at,
			rc, cases[i].want);
		dime_signet_free(p);
		dime_signet_free(s);
		free(want);
	}
	for (size_t i = 0; i < N_OF(bad); i++) {
		struct dime_signet *s = must_parse_file(bad[i].from), *p = (struct dime_signet *)1;
		int rc = dime_signet_split(&p, s, bad[i].at);

		T_CHECK(rc == DIME_E_INVALID && p == NULL, "split %s at %d: got %d, want INVALID",
			bad[i].from, bad[i].at, rc);
		dime_signet_free(s);
	}
}

/* The s-user-bob-* variants (manifest "signet-variant" cases: all invalid). */
static void
test_variants(void)
{
	static const struct {
		const char *file;
		int parse_rc; /* DIME_OK: parses, then must not validate */
	} cases[] = {
	    {"s-user-bob-bad-org-crypto-sig.bin", DIME_OK},
	    {"s-user-bob-tampered-name.bin", DIME_OK},
	    {"s-user-bob-truncated.bin", DIME_E_TRUNCATED},
	    {"s-user-bob-field-order.bin", DIME_E_MALFORMED},
	    {"s-user-bob-bad-crc.pem", DIME_E_BADSIG},
	};

	for (size_t i = 0; i < N_OF(cases); i++) {
		size_t len;
		uint8_t *b = t_read(cases[i].file, &len);
		struct dime_signet *s = NULL;
		struct dime_signet_trust t;
		const char *why = "";
		int rc = dime_signet_load(&s, &why, t_at_page_end(0, b, len), len);

		T_CHECK(rc == cases[i].parse_rc, "%s: load got %d (%s), want %d", cases[i].file, rc,
			why, cases[i].parse_rc);
		T_CHECK((rc == DIME_OK) == (s != NULL), "%s: *out on %d", cases[i].file, rc);
		T_CHECK(rc == DIME_OK || *why != 0, "%s: no reason", cases[i].file);
		if (rc == DIME_OK) {
			trust_for(&t, TR_BETA_ORG);
			want_verdict(cases[i].file, s, &t, DIME_SIGNET_INVALID, 0,
				     "does not verify");
		}
		dime_signet_free(s);
		free(b);
	}
	{
		size_t len;
		uint8_t *b = t_read("s-user-bob-field-order.bin", &len);
		struct dime_signet *s = NULL;
		const char *why = "";

		T_IGNORE(dime_signet_parse(&s, &why, b, len));
		T_CHECK(strcmp(why, "fields out of ascending order at id 16") == 0,
			"field-order reason: got '%s'", why);
		free(b);
	}
}

/* Every strict prefix fails with TRUNCATED; every single-byte mutation is survived, and none of
 * them validates (every byte of a signet is under some signature or the header). */
static void
test_prefix_and_mutation(void)
{
	static const uint8_t xors[] = {0x01, 0x80, 0xff};

	for (size_t i = 0; i < N_OF(vecs); i++) {
		size_t len;
		uint8_t *bin = t_read(vecs[i].bin, &len), *m = malloc(len);
		struct dime_signet_trust t;
		struct dime_signet *prev = NULL;

		for (size_t k = 0; k < len; k++) {
			struct dime_signet *s = (struct dime_signet *)1;
			const char *why = "";
			int rc = dime_signet_parse(&s, &why, t_at_page_end(0, bin, k), k);

			T_CHECK(rc == DIME_E_TRUNCATED && s == NULL,
				"%s: prefix %zu: got %d (%s), want DIME_E_TRUNCATED", vecs[i].bin,
				k, rc, why);
		}
		trust_for(&t, vecs[i].trust);
		if (vecs[i].previous != NULL)
			t.previous = prev = must_parse_file(vecs[i].previous);
		for (size_t k = 0; k < len; k++)
			for (size_t x = 0; x < N_OF(xors); x++) {
				struct dime_signet *s = NULL;
				struct dime_signet_verdict v;
				int rc;

				memcpy(m, bin, len);
				m[k] ^= xors[x];
				rc = dime_signet_parse(&s, NULL, t_at_page_end(0, m, len), len);
				if (rc != DIME_OK)
					continue;
				poke(s);
				T_IGNORE(dime_signet_validate(&v, s, &t));
				T_CHECK(v.kind != DIME_SIGNET_VALID,
					"%s: byte %zu ^ %02x still validates", vecs[i].bin, k,
					xors[x]);
				dime_signet_free(s);
			}
		dime_signet_free(prev);
		free(bin);
		free(m);
	}
}

/* ---- hand-built signets ---- */

struct tb {
	uint8_t b[4096];
	size_t len;
};

static void
tb_start(struct tb *t, unsigned magic)
{
	t->b[0] = (uint8_t)(magic >> 8);
	t->b[1] = (uint8_t)magic;
	t->len = 5;
}

static void
tb_raw(struct tb *t, const void *p, size_t n)
{
	if (n > sizeof(t->b) - t->len)
		abort();
	memcpy(t->b + t->len, p, n);
	t->len += n;
}

static void
tb_u8(struct tb *t, unsigned v)
{
	uint8_t b = (uint8_t)v;

	tb_raw(t, &b, 1);
}

static void
tb_be16(struct tb *t, unsigned v)
{
	tb_u8(t, v >> 8);
	tb_u8(t, v);
}

/* id + 1-octet length + value */
static void
tb_f1(struct tb *t, unsigned id, const char *v)
{
	tb_u8(t, id);
	tb_u8(t, (unsigned)strlen(v));
	tb_raw(t, v, strlen(v));
}

static void
tb_f2(struct tb *t, unsigned id, const char *v)
{
	tb_u8(t, id);
	tb_be16(t, (unsigned)strlen(v));
	tb_raw(t, v, strlen(v));
}

static void
tb_ed(struct tb *t, unsigned id, const uint8_t pub[32])
{
	tb_u8(t, id);
	tb_u8(t, 0x21);
	tb_u8(t, 0x40);
	tb_raw(t, pub, 32);
}

static void
tb_sok(struct tb *t, unsigned perms, const uint8_t pub[32])
{
	tb_u8(t, 2);
	tb_u8(t, 0x22);
	tb_u8(t, perms);
	tb_u8(t, 0x40);
	tb_raw(t, pub, 32);
}

static void
tb_secp(struct tb *t, unsigned id, const uint8_t pub[33])
{
	tb_u8(t, id);
	tb_be16(t, 33);
	tb_raw(t, pub, 33);
}

/* Append field id holding a signature by seed over the fields so far. */
static void
tb_sign(struct tb *t, unsigned id, const uint8_t seed[32])
{
	uint8_t sig[64];

	if (dime_ed25519_sign(sig, seed, t->b + 5, t->len - 5) != DIME_OK)
		abort();
	tb_u8(t, id);
	tb_raw(t, sig, 64);
}

static void
tb_done(struct tb *t)
{
	size_t n = t->len - 5;

	t->b[2] = (uint8_t)(n >> 16);
	t->b[3] = (uint8_t)(n >> 8);
	t->b[4] = (uint8_t)n;
}

static struct dime_signet *
tb_parse(struct tb *t, const char *name)
{
	struct dime_signet *s = NULL;
	const char *why = "";
	int rc;

	tb_done(t);
	rc = dime_signet_parse(&s, &why, t_at_page_end(2, t->b, t->len), t->len);
	T_CHECK(rc == DIME_OK, "%s: parse got %d (%s), want ok", name, rc, why);
	return s;
}

struct keys {
	uint8_t pok_seed[32], pok[32], enc[33];
	uint8_t sok_seed[4][32], sok[4][32];
	uint8_t user_seed[2][32], user[2][32], user_enc[33];
	uint8_t bad_ed[32], bad_secp[33];
};

static struct keys K;

static void
keys_init(void)
{
	hex(K.pok_seed, 32, BETA_SEED);
	if (dime_ed25519_pub(K.pok, K.pok_seed) != DIME_OK)
		abort();
	hex(K.enc, 33, BETA_ENC);
	for (int i = 0; i < 4; i++) {
		memset(K.sok_seed[i], 0x51 + i, 32);
		if (dime_ed25519_pub(K.sok[i], K.sok_seed[i]) != DIME_OK)
			abort();
	}
	for (int i = 0; i < 2; i++) {
		memset(K.user_seed[i], 0x71 + i, 32);
		if (dime_ed25519_pub(K.user[i], K.user_seed[i]) != DIME_OK)
			abort();
	}
	hex(K.user_enc, 33, "039f89f2a97962bd1061e2a51332b7d05d989b323e70d9fb61d362fb387f9a7b31");
	memset(K.bad_ed, 0, 32); /* y = 0: a point of small order */
	memset(K.bad_secp, 0xff, 33);
	K.bad_secp[0] = 0x02; /* x >= p */
}

/* Org signet: POK, SOKs with perms (0 terminates), enc, 4, [info, 253, [254, 255]]. */
static void
build_org(struct tb *t, const unsigned *perms, enum dime_signet_level level, int extra_info)
{
	tb_start(t, DIME_SIGNET_ORG);
	tb_ed(t, 1, K.pok);
	for (int i = 0; perms != NULL && perms[i] != 0; i++)
		tb_sok(t, perms[i], K.sok[i]);
	tb_secp(t, 3, K.enc);
	tb_sign(t, 4, K.pok_seed);
	if (level >= DIME_LEVEL_FULL || extra_info) {
		tb_f1(t, 16, "Test Org");
		tb_f1(t, 21, "123;A");
		tb_f1(t, 21, "456");
	}
	if (level >= DIME_LEVEL_FULL)
		tb_sign(t, 253, K.pok_seed);
	if (level >= DIME_LEVEL_ID) {
		tb_f1(t, 254, "beta.example");
		tb_sign(t, 255, K.pok_seed);
	}
}

/* User signet signed by signer: 1, 2, [4 by prev], 5, 6, [info, 253, [254, 255]]. */
static void
build_user(struct tb *t, const uint8_t *signer, const uint8_t *prev_seed,
	   enum dime_signet_level level)
{
	tb_start(t, level == DIME_LEVEL_SSR ? DIME_SIGNET_SSR : DIME_SIGNET_USER);
	tb_ed(t, 1, K.user[0]);
	tb_secp(t, 2, K.user_enc);
	if (prev_seed != NULL)
		tb_sign(t, 4, prev_seed);
	tb_sign(t, 5, K.user_seed[0]);
	if (level == DIME_LEVEL_SSR)
		return;
	t->b[1] = (uint8_t)DIME_SIGNET_USER;
	tb_sign(t, 6, signer);
	if (level >= DIME_LEVEL_FULL) {
		tb_f1(t, 16, "User");
		tb_f2(t, 160, "https://beta.example/");
		tb_sign(t, 253, signer);
	}
	if (level >= DIME_LEVEL_ID) {
		tb_f1(t, 254, "u@beta.example");
		tb_sign(t, 255, signer);
	}
}

/* Structure: each case is bytes built by hand, and the parse result wanted. */
static void
test_structure(void)
{
	struct tb t;
	struct dime_signet *s;
	const char *why;
	uint8_t sig[64] = {0};
	static const struct {
		const char *name;
		unsigned magic;
		const char *fields_hex; /* after the header */
		int want;
		const char *why;
	} cases[] = {
	    {"org reserved 5", DIME_SIGNET_ORG, "0500", DIME_E_MALFORMED, "field id 5 is reserved"},
	    {"org reserved 0", DIME_SIGNET_ORG, "0000", DIME_E_MALFORMED, "field id 0 is reserved"},
	    {"org reserved 15", DIME_SIGNET_ORG, "0f00", DIME_E_MALFORMED, "id 15 is reserved"},
	    {"user reserved 7", DIME_SIGNET_USER, "0700", DIME_E_MALFORMED, "id 7 is reserved"},
	    {"user reserved 0", DIME_SIGNET_USER, "0000", DIME_E_MALFORMED, "id 0 is reserved"},
	    {"ssr reserved 6", DIME_SIGNET_SSR, "06", DIME_E_MALFORMED, "id 6 is reserved"},
	    {"ssr reserved 16", DIME_SIGNET_SSR, "1000", DIME_E_MALFORMED, "id 16 is reserved"},
	    {"ssr reserved 255", DIME_SIGNET_SSR, "ff", DIME_E_MALFORMED, "id 255 is reserved"},
	    {"unknown magic", 0x06f1, "", DIME_E_MALFORMED, "magic"},
	    {"keys magic", 1952, "", DIME_E_MALFORMED, "magic"},
	    {"empty org", DIME_SIGNET_ORG, "", DIME_OK, NULL},
	    {"out of order", DIME_SIGNET_USER,
	     "1000"
	     "1100"
	     "1000",
	     DIME_E_MALFORMED, "fields out of ascending order at id 16"},
	    {"unique twice", DIME_SIGNET_USER,
	     "1000"
	     "1000",
	     DIME_E_MALFORMED, "unique field 16 appears more than once"},
	    {"phone twice", DIME_SIGNET_USER,
	     "150131"
	     "150132",
	     DIME_OK, NULL},
	    {"phone apart", DIME_SIGNET_USER,
	     "150131"
	     "1600"
	     "150132",
	     DIME_E_MALFORMED, "order at id 21"},
	    {"251 twice", DIME_SIGNET_ORG,
	     "fb01410000"
	     "fb0142000178",
	     DIME_OK, NULL},
	    {"user 202 twice", DIME_SIGNET_USER,
	     "ca0000"
	     "ca0000",
	     DIME_OK, NULL},
	    {"org 202 twice", DIME_SIGNET_ORG,
	     "ca0000"
	     "ca0000",
	     DIME_E_MALFORMED, "unique field 202"},
	    {"user 3 twice", DIME_SIGNET_USER,
	     "030000"
	     "030000",
	     DIME_E_MALFORMED, "unique field 3"},
	    {"1-octet overflow", DIME_SIGNET_USER, "1010414243", DIME_E_MALFORMED,
	     "field 16 overflows"},
	    {"2-octet overflow", DIME_SIGNET_USER, "a0000341", DIME_E_MALFORMED,
	     "field 160 overflows"},
	    {"2-octet len cut", DIME_SIGNET_USER, "a000", DIME_E_MALFORMED, "field 160 overflows"},
	    {"3-octet overflow", DIME_SIGNET_USER, "fcffffff00", DIME_E_MALFORMED,
	     "field 252 overflows"},
	    {"251 name overflow", DIME_SIGNET_USER, "fb0541", DIME_E_MALFORMED, "field 251"},
	    {"251 value overflow", DIME_SIGNET_USER, "fb01410002", DIME_E_MALFORMED, "field 251"},
	    {"fixed 253 short", DIME_SIGNET_USER, "fd00", DIME_E_MALFORMED, "field 253 overflows"},
	    {"254 1-octet", DIME_SIGNET_USER, "fe0161", DIME_OK, NULL},
	    {"254 2-octet form", DIME_SIGNET_USER, "fe000161", DIME_E_MALFORMED, NULL},
	    {"zero lengths ok", DIME_SIGNET_USER,
	     "1000"
	     "a00000"
	     "fb000000"
	     "fc000000",
	     DIME_OK, NULL},
	    {"type only", DIME_SIGNET_USER, "10", DIME_E_MALFORMED, "field 16 overflows"},
	    {"ssr alt key 1-octet", DIME_SIGNET_SSR, "03020102", DIME_OK, NULL},
	    {"user alt key 2-octet", DIME_SIGNET_USER, "0300020102", DIME_OK, NULL},
	    {"ssr alt key 2-octet form", DIME_SIGNET_SSR, "0300020102", DIME_E_MALFORMED, NULL},
	    {"pok without 0x40", DIME_SIGNET_ORG,
	     "0121410000000000000000000000000000000000000000000000000000000000000000",
	     DIME_E_MALFORMED, "0x40"},
	    {"pok length 32", DIME_SIGNET_ORG,
	     "01200000000000000000000000000000000000000000000000000000000000000000",
	     DIME_E_MALFORMED, "length"},
	    {"sok without 0x40", DIME_SIGNET_ORG,
	     "022201410000000000000000000000000000000000000000000000000000000000000000",
	     DIME_E_MALFORMED, "0x40"},
	    {"sok length 33", DIME_SIGNET_ORG,
	     "0221014000000000000000000000000000000000000000000000000000000000000000",
	     DIME_E_MALFORMED, "length"},
	    {"enc prefix 04", DIME_SIGNET_ORG,
	     "030021040000000000000000000000000000000000000000000000000000000000000000",
	     DIME_E_MALFORMED, "compressed"},
	    {"user enc prefix 00", DIME_SIGNET_USER,
	     "020021000000000000000000000000000000000000000000000000000000000000000000",
	     DIME_E_MALFORMED, "compressed"},
	    {"user enc 1-octet form", DIME_SIGNET_USER,
	     "0221020000000000000000000000000000000000000000000000000000000000000000",
	     DIME_E_MALFORMED, NULL},
	};

	for (size_t i = 0; i < N_OF(cases); i++) {
		uint8_t f[512];
		size_t n = 0;
		int rc;

		T_CHECK(dime_hex_decode(f, sizeof(f), &n, cases[i].fields_hex,
					strlen(cases[i].fields_hex)) == DIME_OK,
			"%s: bad hex", cases[i].name);
		tb_start(&t, cases[i].magic);
		tb_raw(&t, f, n);
		tb_done(&t);
		s = (struct dime_signet *)1;
		why = "x";
		rc = dime_signet_parse(&s, &why, t_at_page_end(2, t.b, t.len), t.len);
		T_CHECK(rc == cases[i].want, "%s: got %d (%s), want %d", cases[i].name, rc, why,
			cases[i].want);
		T_CHECK((rc == DIME_OK) == (s != NULL), "%s: *out", cases[i].name);
		T_CHECK(rc != DIME_OK || *why == 0, "%s: why set on success", cases[i].name);
		if (cases[i].why != NULL)
			T_CHECK(strstr(why, cases[i].why) != NULL, "%s: why got '%s', want '%s'",
				cases[i].name, why, cases[i].why);
		if (rc == DIME_OK) {
			poke(s);
			T_CHECK(dime_signet_bytes(s).len == t.len &&
				    memcmp(dime_signet_bytes(s).p, t.b, t.len) == 0,
				"%s: round trip", cases[i].name);
		}
		dime_signet_free(s);
	}
	/* Header: length field disagreeing with the input. */
	tb_start(&t, DIME_SIGNET_USER);
	tb_f1(&t, 16, "abc");
	tb_done(&t);
	t.b[4]++;
	s = (struct dime_signet *)1;
	T_CHECK(dime_signet_parse(&s, NULL, t.b, t.len) == DIME_E_TRUNCATED && s == NULL,
		"length field too large");
	t.b[4] -= 2;
	T_CHECK(dime_signet_parse(&s, NULL, t.b, t.len) == DIME_E_TRAILING && s == NULL,
		"length field too small");
	/* Field offsets and 251 names. */
	tb_start(&t, DIME_SIGNET_USER);
	tb_f1(&t, 16, "abc");
	tb_u8(&t, 251);
	tb_u8(&t, 4);
	tb_raw(&t, "Name", 4);
	tb_be16(&t, 2);
	tb_raw(&t, "vv", 2);
	tb_u8(&t, 253);
	tb_raw(&t, sig, 64);
	s = tb_parse(&t, "offsets");
	if (s != NULL) {
		const struct dime_signet_field *f = dime_signet_field_at(s, 1);

		T_CHECK(dime_signet_n_fields(s) == 3, "offsets: n_fields %zu",
			dime_signet_n_fields(s));
		T_CHECK(f->id == 251 && f->off == 5 && f->name.len == 4 &&
			    memcmp(f->name.p, "Name", 4) == 0 && f->value.len == 2 &&
			    memcmp(f->value.p, "vv", 2) == 0,
			"offsets: field 251 got off %zu", f->off);
		T_CHECK(dime_signet_field_at(s, 2)->off == 15, "offsets: 253 at %zu",
			dime_signet_field_at(s, 2)->off);
	}
	dime_signet_free(s);
	/* A signet at the size limit's edge: a 3-octet image field filling it is accepted. */
	{
		size_t big = 70000, total = 5 + 4 + big;
		uint8_t *b = calloc(1, total);

		b[0] = 0x06, b[1] = 0xfd;
		b[2] = (uint8_t)((total - 5) >> 16), b[3] = (uint8_t)((total - 5) >> 8),
		b[4] = (uint8_t)(total - 5);
		b[5] = 252, b[6] = (uint8_t)(big >> 16), b[7] = (uint8_t)(big >> 8),
		b[8] = (uint8_t)big;
		s = NULL;
		T_CHECK(dime_signet_parse(&s, NULL, b, total) == DIME_OK, "large image");
		dime_signet_free(s);
		free(b);
	}
}

/* Validation rules, on signets built and signed here. */
static void
test_validation(void)
{
	static const unsigned perms[] = {DIME_SOK_SIGNETS, DIME_SOK_MESSAGES,
					 DIME_SOK_SIGNETS | 0x10, 0};
	struct tb t, ot;
	struct dime_signet *org, *s, *prev, *user1;
	struct dime_signet_trust tr;
	uint8_t pok[1][32];

	memcpy(pok[0], K.pok, 32);
	memset(&tr, 0, sizeof(tr));
	tr.poks = (const uint8_t(*)[32])pok;
	tr.n_poks = 1;
	for (int lv = DIME_LEVEL_CRYPTO; lv <= DIME_LEVEL_ID; lv++) {
		build_org(&ot, perms, (enum dime_signet_level)lv, 0);
		org = tb_parse(&ot, "built org");
		want_verdict("built org", org, &tr, DIME_SIGNET_VALID, (enum dime_signet_level)lv,
			     NULL);
		dime_signet_free(org);
	}
	/* org: informational fields without 253 */
	build_org(&t, NULL, DIME_LEVEL_CRYPTO, 1);
	s = tb_parse(&t, "org info unsigned");
	want_verdict("org info unsigned", s, &tr, DIME_SIGNET_INVALID, 0, "without a full");
	dime_signet_free(s);
	/* org: 254 without 255 */
	build_org(&t, NULL, DIME_LEVEL_FULL, 0);
	tb_f1(&t, 254, "beta.example");
	s = tb_parse(&t, "org 254 unsigned");
	want_verdict("org 254 unsigned", s, &tr, DIME_SIGNET_INVALID, 0, "254");
	dime_signet_free(s);
	/* org: 253 without 4 */
	tb_start(&t, DIME_SIGNET_ORG);
	tb_ed(&t, 1, K.pok);
	tb_secp(&t, 3, K.enc);
	tb_sign(&t, 253, K.pok_seed);
	s = tb_parse(&t, "org 253 without 4");
	want_verdict("org 253 without 4", s, &tr, DIME_SIGNET_INVALID, 0, "missing field 4");
	dime_signet_free(s);
	/* org: no signature at all, no enc key */
	tb_start(&t, DIME_SIGNET_ORG);
	tb_ed(&t, 1, K.pok);
	s = tb_parse(&t, "org unsigned");
	want_verdict("org unsigned", s, &tr, DIME_SIGNET_INVALID, 0, "no signature");
	dime_signet_free(s);
	tb_sign(&t, 4, K.pok_seed);
	s = tb_parse(&t, "org without enc");
	want_verdict("org without enc", s, &tr, DIME_SIGNET_INVALID, 0, "missing field 3");
	dime_signet_free(s);
	/* org: 255 signed by another key */
	build_org(&t, NULL, DIME_LEVEL_FULL, 0);
	tb_f1(&t, 254, "beta.example");
	tb_sign(&t, 255, K.sok_seed[0]);
	s = tb_parse(&t, "org bad 255");
	want_verdict("org bad 255", s, &tr, DIME_SIGNET_INVALID, 0, "field 255");
	dime_signet_free(s);
	/* org: an org signature by a SOK does not count (WIRE.md: POK only) */
	tb_start(&t, DIME_SIGNET_ORG);
	tb_ed(&t, 1, K.pok);
	tb_sok(&t, 0x0f, K.sok[0]);
	tb_secp(&t, 3, K.enc);
	tb_sign(&t, 4, K.sok_seed[0]);
	s = tb_parse(&t, "org signed by SOK");
	want_verdict("org signed by SOK", s, &tr, DIME_SIGNET_INVALID, 0, "field 4");
	dime_signet_free(s);
	/* org: key points */
	tb_start(&t, DIME_SIGNET_ORG);
	tb_ed(&t, 1, K.bad_ed);
	tb_secp(&t, 3, K.enc);
	tb_sign(&t, 4, K.pok_seed);
	s = tb_parse(&t, "org bad POK point");
	{
		struct dime_signet_trust bt = tr;
		uint8_t bp[1][32];

		memcpy(bp[0], K.bad_ed, 32);
		bt.poks = (const uint8_t(*)[32])bp;
		want_verdict("org bad POK point", s, &bt, DIME_SIGNET_INVALID, 0, "valid Ed25519");
	}
	dime_signet_free(s);
	tb_start(&t, DIME_SIGNET_ORG);
	tb_ed(&t, 1, K.pok);
	tb_sok(&t, 1, K.bad_ed);
	tb_secp(&t, 3, K.enc);
	tb_sign(&t, 4, K.pok_seed);
	s = tb_parse(&t, "org bad SOK point");
	want_verdict("org bad SOK point", s, &tr, DIME_SIGNET_INVALID, 0, "field 2");
	dime_signet_free(s);
	tb_start(&t, DIME_SIGNET_ORG);
	tb_ed(&t, 1, K.pok);
	tb_sok(&t, 0x81, K.bad_ed); /* reserved bit: ignored altogether */
	tb_secp(&t, 3, K.enc);
	tb_sign(&t, 4, K.pok_seed);
	s = tb_parse(&t, "org ignored SOK");
	want_verdict("org ignored SOK", s, &tr, DIME_SIGNET_VALID, DIME_LEVEL_CRYPTO, NULL);
	dime_signet_free(s);
	tb_start(&t, DIME_SIGNET_ORG);
	tb_ed(&t, 1, K.pok);
	tb_secp(&t, 3, K.bad_secp);
	tb_sign(&t, 4, K.pok_seed);
	s = tb_parse(&t, "org bad enc point");
	want_verdict("org bad enc point", s, &tr, DIME_SIGNET_INVALID, 0, "secp256k1");
	dime_signet_free(s);

	/* User signets against an org with SOKs: perms 1 (ok), 2 (no signets), 1|16 (reserved). */
	build_org(&ot, perms, DIME_LEVEL_ID, 0);
	org = tb_parse(&ot, "org with SOKs");
	memset(&tr, 0, sizeof(tr));
	tr.org = org;
	{
		static const struct {
			const char *name;
			int signer; /* -1: POK, else SOK index */
			enum dime_signet_level level;
			enum dime_signet_verdict_kind want;
			const char *why;
		} uc[] = {
		    {"user by POK crypto", -1, DIME_LEVEL_CRYPTO, DIME_SIGNET_VALID, NULL},
		    {"user by POK full", -1, DIME_LEVEL_FULL, DIME_SIGNET_VALID, NULL},
		    {"user by POK id", -1, DIME_LEVEL_ID, DIME_SIGNET_VALID, NULL},
		    {"user by SOK perm 1", 0, DIME_LEVEL_ID, DIME_SIGNET_VALID, NULL},
		    {"user by SOK perm 2", 1, DIME_LEVEL_ID, DIME_SIGNET_INVALID, "field 6"},
		    {"user by reserved SOK", 2, DIME_LEVEL_ID, DIME_SIGNET_INVALID, "field 6"},
		    {"user by unlisted key", 3, DIME_LEVEL_ID, DIME_SIGNET_INVALID, "field 6"},
		};

		for (size_t i = 0; i < N_OF(uc); i++) {
			build_user(&t, uc[i].signer < 0 ? K.pok_seed : K.sok_seed[uc[i].signer],
				   NULL, uc[i].level);
			s = tb_parse(&t, uc[i].name);
			want_verdict(uc[i].name, s, &tr, uc[i].want, uc[i].level, uc[i].why);
			dime_signet_free(s);
		}
	}
	/* 253 signed by a SOK without the signets bit, 6 fine */
	build_user(&t, K.pok_seed, NULL, DIME_LEVEL_CRYPTO);
	tb_f1(&t, 16, "User");
	tb_sign(&t, 253, K.sok_seed[1]);
	s = tb_parse(&t, "user bad 253");
	want_verdict("user bad 253", s, &tr, DIME_SIGNET_INVALID, 0, "field 253");
	dime_signet_free(s);
	/* informational fields after 6 without 253 */
	build_user(&t, K.pok_seed, NULL, DIME_LEVEL_CRYPTO);
	tb_f1(&t, 16, "User");
	s = tb_parse(&t, "user info unsigned");
	want_verdict("user info unsigned", s, &tr, DIME_SIGNET_INVALID, 0, "after field 6");
	dime_signet_free(s);
	/* 6 without 5 */
	tb_start(&t, DIME_SIGNET_USER);
	tb_ed(&t, 1, K.user[0]);
	tb_secp(&t, 2, K.user_enc);
	tb_sign(&t, 6, K.pok_seed);
	s = tb_parse(&t, "user without 5");
	want_verdict("user without 5", s, &tr, DIME_SIGNET_INVALID, 0, "missing field 5");
	dime_signet_free(s);
	/* 253 without 6 */
	tb_start(&t, DIME_SIGNET_USER);
	tb_ed(&t, 1, K.user[0]);
	tb_secp(&t, 2, K.user_enc);
	tb_sign(&t, 5, K.user_seed[0]);
	tb_sign(&t, 253, K.pok_seed);
	s = tb_parse(&t, "user 253 without 6");
	want_verdict("user 253 without 6", s, &tr, DIME_SIGNET_INVALID, 0, "missing field 6");
	dime_signet_free(s);
	/* self-signature by the wrong key */
	tb_start(&t, DIME_SIGNET_USER);
	tb_ed(&t, 1, K.user[0]);
	tb_secp(&t, 2, K.user_enc);
	tb_sign(&t, 5, K.user_seed[1]);
	tb_sign(&t, 6, K.pok_seed);
	s = tb_parse(&t, "user bad 5");
	want_verdict("user bad 5", s, &tr, DIME_SIGNET_INVALID, 0, "field 5");
	dime_signet_free(s);
	/* bad points */
	tb_start(&t, DIME_SIGNET_USER);
	tb_ed(&t, 1, K.user[0]);
	tb_secp(&t, 2, K.bad_secp);
	tb_sign(&t, 5, K.user_seed[0]);
	tb_sign(&t, 6, K.pok_seed);
	s = tb_parse(&t, "user bad enc");
	want_verdict("user bad enc", s, &tr, DIME_SIGNET_INVALID, 0, "field 2");
	dime_signet_free(s);
	tb_start(&t, DIME_SIGNET_SSR);
	tb_ed(&t, 1, K.bad_ed);
	tb_secp(&t, 2, K.user_enc);
	tb_sign(&t, 5, K.user_seed[0]);
	s = tb_parse(&t, "ssr bad key");
	want_verdict("ssr bad key", s, NULL, DIME_SIGNET_INVALID, 0, "field 1");
	dime_signet_free(s);
	/* SSR without 5 / without 2 */
	tb_start(&t, DIME_SIGNET_SSR);
	tb_ed(&t, 1, K.user[0]);
	tb_secp(&t, 2, K.user_enc);
	s = tb_parse(&t, "ssr unsigned");
	want_verdict("ssr unsigned", s, NULL, DIME_SIGNET_INVALID, 0, "missing field 5");
	dime_signet_free(s);
	tb_start(&t, DIME_SIGNET_SSR);
	tb_ed(&t, 1, K.user[0]);
	tb_sign(&t, 5, K.user_seed[0]);
	s = tb_parse(&t, "ssr without enc");
	want_verdict("ssr without enc", s, NULL, DIME_SIGNET_INVALID, 0, "missing field 2");
	dime_signet_free(s);
	/* user signet with 1,2,5 only (an SSR under the user magic) */
	build_user(&t, NULL, NULL, DIME_LEVEL_SSR);
	t.b[0] = (uint8_t)(DIME_SIGNET_USER >> 8);
	t.b[1] = (uint8_t)DIME_SIGNET_USER;
	s = tb_parse(&t, "user without 6");
	want_verdict("user without 6", s, &tr, DIME_SIGNET_INVALID, 0, "field 6");
	dime_signet_free(s);

	/* Custody: previous user signet with key user[1] signs custody of a new SSR/signet. */
	tb_start(&t, DIME_SIGNET_USER);
	tb_ed(&t, 1, K.user[1]);
	tb_secp(&t, 2, K.user_enc);
	tb_sign(&t, 5, K.user_seed[1]);
	tb_sign(&t, 6, K.pok_seed);
	prev = tb_parse(&t, "previous");
	build_user(&t, NULL, NULL, DIME_LEVEL_SSR);
	user1 = tb_parse(&t, "unrelated");
	for (int lv = DIME_LEVEL_SSR; lv <= DIME_LEVEL_ID; lv++) {
		struct dime_signet_trust ct = tr;

		build_user(&t, K.pok_seed, K.user_seed[1], (enum dime_signet_level)lv);
		s = tb_parse(&t, "rotated");
		ct.previous = prev;
		want_verdict("rotated with previous", s, &ct, DIME_SIGNET_VALID,
			     (enum dime_signet_level)lv, NULL);
		ct.previous = NULL;
		want_verdict("rotated without previous", s, &ct, DIME_SIGNET_BROKEN_CUSTODY, 0,
			     "field 4");
		ct.previous = user1;
		want_verdict("rotated with another previous", s, &ct, DIME_SIGNET_BROKEN_CUSTODY, 0,
			     "does not verify");
		dime_signet_free(s);
	}
	/* A bad org signature outranks broken custody. */
	{
		struct dime_signet_trust ct = tr;

		build_user(&t, K.sok_seed[1], K.user_seed[1], DIME_LEVEL_ID);
		s = tb_parse(&t, "rotated, bad org sig");
		want_verdict("rotated, bad org sig", s, &ct, DIME_SIGNET_INVALID, 0, "field 6");
		dime_signet_free(s);
	}
	dime_signet_free(user1);
	dime_signet_free(prev);
	dime_signet_free(org);
}

/* ---- armor loading ---- */

static void
test_load(void)
{
	size_t len, alen, n;
	uint8_t *bin = t_read("user-bob.signet.bin", &len);
	char *arm = malloc(2 * len + 512);
	struct dime_signet *s = NULL;
	const char *why = "";
	int rc;

	/* a non-signet label */
	T_CHECK(dime_armor_encode(arm, 2 * len + 512, &alen, "USER KEY", bin, len,
				  DIME_ARMOR_CRC) == DIME_OK,
		"armor");
	rc = dime_signet_load(&s, &why, (const uint8_t *)arm, alen);
	T_CHECK(rc == DIME_E_MALFORMED && s == NULL, "USER KEY label: got %d, want MALFORMED", rc);
	/* any signet label for any magic, with or without the CRC line */
	static const char *const labels[] = {"ORGANIZATIONAL SIGNET", "USER SIGNET",
					     "SIGNET SIGNING REQUEST"};
	for (size_t i = 0; i < N_OF(labels); i++)
		for (int crc = 0; crc < 2; crc++) {
			T_CHECK(dime_armor_encode(arm, 2 * len + 512, &alen, labels[i], bin, len,
						  crc ? DIME_ARMOR_CRC : 0) == DIME_OK,
				"armor");
			rc = dime_signet_load(&s, &why, t_at_page_end(0, arm, alen), alen);
			T_CHECK(rc == DIME_OK, "label %s crc %d: got %d (%s)", labels[i], crc, rc,
				why);
			dime_signet_free(s);
			s = NULL;
		}
	/* trailing junk after the block; trailing whitespace is fine */
	T_CHECK(dime_armor_encode(arm, 2 * len + 512, &alen, "USER SIGNET", bin, len,
				  DIME_ARMOR_CRC) == DIME_OK,
		"armor");
	memcpy(arm + alen, "\n \r\n", 4);
	rc = dime_signet_load(&s, &why, (const uint8_t *)arm, alen + 4);
	T_CHECK(rc == DIME_OK, "trailing whitespace: got %d", rc);
	dime_signet_free(s);
	s = NULL;
	memcpy(arm + alen, "junk", 4);
	rc = dime_signet_load(&s, &why, (const uint8_t *)arm, alen + 4);
	T_CHECK(rc == DIME_E_TRAILING && s == NULL, "trailing junk: got %d", rc);
	/* an armored prefix of the signet is truncated */
	T_CHECK(dime_armor_encode(arm, 2 * len + 512, &alen, "USER SIGNET", bin, len - 1,
				  DIME_ARMOR_CRC) == DIME_OK,
		"armor");
	rc = dime_signet_load(&s, &why, (const uint8_t *)arm, alen);
	T_CHECK(rc == DIME_E_TRUNCATED && s == NULL, "armored prefix: got %d", rc);
	/* every strict prefix of an armored file fails (but never crashes) */
	{
		size_t plen;
		uint8_t *pem = t_read("user-bob.signet.pem", &plen);

		for (n = 0; n < plen; n++) {
			rc = dime_signet_load(&s, NULL, t_at_page_end(0, pem, n), n);
			/* Only the final newline may go. */
			T_CHECK(rc != DIME_OK || n == plen - 1, "pem prefix %zu loads", n);
			dime_signet_free(s);
			s = NULL;
		}
		free(pem);
	}
	free(arm);
	free(bin);
}

/* ---- labels and informational fields ---- */

static void
test_labels(void)
{
	static const struct {
		enum dime_signet_type t;
		uint8_t id;
		const char *want;
	} cases[] = {
	    {DIME_SIGNET_ORG, 1, "Primary-Organizational-Key"},
	    {DIME_SIGNET_ORG, 2, "Secondary-Organizational-Key"},
	    {DIME_SIGNET_ORG, 3, "Encryption-Key"},
	    {DIME_SIGNET_ORG, 4, "Organizational-Signature"},
	    {DIME_SIGNET_ORG, 5, NULL},
	    {DIME_SIGNET_ORG, 16, "Name"},
	    {DIME_SIGNET_ORG, 17, "Address"},
	    {DIME_SIGNET_ORG, 21, "Phone"},
	    {DIME_SIGNET_ORG, 25, "Motto"},
	    {DIME_SIGNET_ORG, 27, "Message-Size-Limit"},
	    {DIME_SIGNET_ORG, 28, NULL},
	    {DIME_SIGNET_ORG, 94, NULL},
	    {DIME_SIGNET_ORG, 160, "Website"},
	    {DIME_SIGNET_ORG, 200, "Contact-Abuse"},
	    {DIME_SIGNET_ORG, 211, "Onion-Delivery-Certificate"},
	    {DIME_SIGNET_ORG, 212, NULL},
	    {DIME_SIGNET_ORG, 251, "Undefined-Fields"},
	    {DIME_SIGNET_ORG, 252, "Image"},
	    {DIME_SIGNET_ORG, 253, "Organizational-Signature"},
	    {DIME_SIGNET_ORG, 254, "Signet-Identifier"},
	    {DIME_SIGNET_ORG, 255, "Organizational-Signature"},
	    {DIME_SIGNET_USER, 1, "Signing-Key"},
	    {DIME_SIGNET_USER, 2, "Encryption-Key"},
	    {DIME_SIGNET_USER, 3, "Alternate-Encryption-Key"},
	    {DIME_SIGNET_USER, 4, "Custody-Signature"},
	    {DIME_SIGNET_USER, 5, "User-Signature"},
	    {DIME_SIGNET_USER, 6, "Organizational-Signature"},
	    {DIME_SIGNET_USER, 7, NULL},
	    {DIME_SIGNET_USER, 93, "Supported-Codecs"},
	    {DIME_SIGNET_USER, 97, "Alma-Mater"},
	    {DIME_SIGNET_USER, 99, "Political-Party"},
	    {DIME_SIGNET_USER, 100, "Extensions"},
	    {DIME_SIGNET_USER, 101, NULL},
	    {DIME_SIGNET_USER, 200, "Alternate-Address"},
	    {DIME_SIGNET_USER, 202, "Endorsements"},
	    {DIME_SIGNET_USER, 203, NULL},
	    {DIME_SIGNET_SSR, 5, "User-Signature"},
	    {DIME_SIGNET_SSR, 6, NULL},
	    {DIME_SIGNET_SSR, 16, NULL},
	};

	for (size_t i = 0; i < N_OF(cases); i++) {
		const char *got = dime_signet_field_label(cases[i].t, cases[i].id);

		T_CHECK(
		    (got == NULL && cases[i].want == NULL) ||
			(got != NULL && cases[i].want != NULL && strcmp(got, cases[i].want) == 0),
		    "label %d/%u: got %s, want %s", cases[i].t, cases[i].id, got ? got : "NULL",
		    cases[i].want ? cases[i].want : "NULL");
	}
}

struct item_want {
	const char *value, *sublabel;
	int invalid;
};

static void
test_items(void)
{
	static const struct {
		const char *name;
		enum dime_signet_type t;
		uint8_t id;
		const char *fname, *value;
		size_t n;
		struct item_want w[4];
		const char *label;
	} cases[] = {
	    {"phone label",
	     DIME_SIGNET_USER,
	     21,
	     NULL,
	     "15555550123;MOBILE",
	     1,
	     {{"15555550123", "MOBILE", 0}},
	     "Phone"},
	    {"phone plain",
	     DIME_SIGNET_USER,
	     21,
	     NULL,
	     "15555550124",
	     1,
	     {{"15555550124", "", 0}},
	     "Phone"},
	    {"phone spec sample",
	     DIME_SIGNET_ORG,
	     21,
	     NULL,
	     "4108546334; OFFICE",
	     1,
	     {{"4108546334", "OFFICE", 0}},
	     "Phone"},
	    {"phone non-digit",
	     DIME_SIGNET_USER,
	     21,
	     NULL,
	     "555-1234;HOME",
	     1,
	     {{"555-1234;HOME", "", 1}},
	     "Phone"},
	    {"phone empty number",
	     DIME_SIGNET_USER,
	     21,
	     NULL,
	     ";HOME",
	     1,
	     {{";HOME", "", 1}},
	     "Phone"},
	    {"phone label 17",
	     DIME_SIGNET_USER,
	     21,
	     NULL,
	     "1;ABCDEFGHIJKLMNOPQ",
	     1,
	     {{"1", "", 0}},
	     "Phone"},
	    {"phone label 16 multibyte",
	     DIME_SIGNET_USER,
	     21,
	     NULL,
	     "1;\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4"
	     "\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4",
	     1,
	     {{"1",
	       "\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4"
	       "\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4",
	       0}},
	     "Phone"},
	    {"phone label space",
	     DIME_SIGNET_USER,
	     21,
	     NULL,
	     "1;MY HOME",
	     1,
	     {{"1", "", 0}},
	     "Phone"},
	    {"phone label nbsp",
	     DIME_SIGNET_USER,
	     21,
	     NULL,
	     "1;A\xc2\xa0"
	     "B",
	     1,
	     {{"1", "", 0}},
	     "Phone"},
	    {"phone label bad utf8",
	     DIME_SIGNET_USER,
	     21,
	     NULL,
	     "1;\xc3\x28",
	     1,
	     {{"1", "", 0}},
	     "Phone"},
	    {"phone label overlong",
	     DIME_SIGNET_USER,
	     21,
	     NULL,
	     "1;\xc0\xaf",
	     1,
	     {{"1", "", 0}},
	     "Phone"},
	    {"language list",
	     DIME_SIGNET_USER,
	     22,
	     NULL,
	     "en-US;fr",
	     2,
	     {{"en-US", "", 0}, {"fr", "", 0}},
	     "Language"},
	    {"language trailing",
	     DIME_SIGNET_ORG,
	     22,
	     NULL,
	     "en-US; fr;",
	     2,
	     {{"en-US", "", 0}, {"fr", "", 0}},
	     "Language"},
	    {"currency gaps",
	     DIME_SIGNET_ORG,
	     23,
	     NULL,
	     "USD;;EUR; ;CHF",
	     3,
	     {{"USD", "", 0}, {"EUR", "", 0}, {"CHF", "", 0}},
	     "Currency"},
	    {"cryptocurrency",
	     DIME_SIGNET_ORG,
	     24,
	     NULL,
	     "BTC: 19qy9;LTC: x",
	     2,
	     {{"BTC: 19qy9", "", 0}, {"LTC: x", "", 0}},
	     "Cryptocurrency"},
	    {"web access hosts",
	     DIME_SIGNET_ORG,
	     203,
	     NULL,
	     "a.example;b.example",
	     2,
	     {{"a.example", "", 0}, {"b.example", "", 0}},
	     "Web-Access-Host"},
	    {"web access location",
	     DIME_SIGNET_ORG,
	     204,
	     NULL,
	     "https://x/;y",
	     1,
	     {{"https://x/;y", "", 0}},
	     "Web-Access-Location"},
	    {"alternate addresses",
	     DIME_SIGNET_USER,
	     200,
	     NULL,
	     "a@x;b@y",
	     2,
	     {{"a@x", "", 0}, {"b@y", "", 0}},
	     "Alternate-Address"},
	    {"codecs",
	     DIME_SIGNET_USER,
	     93,
	     NULL,
	     "OPUS;VP9;",
	     2,
	     {{"OPUS", "", 0}, {"VP9", "", 0}},
	     "Supported-Codecs"},
	    {"website https",
	     DIME_SIGNET_USER,
	     160,
	     NULL,
	     "https://beta.example/~bob",
	     1,
	     {{"https://beta.example/~bob", "", 0}},
	     "Website"},
	    {"website http caps",
	     DIME_SIGNET_ORG,
	     160,
	     NULL,
	     "HTTP://Alpha.Example",
	     1,
	     {{"HTTP://Alpha.Example", "", 0}},
	     "Website"},
	    {"website port",
	     DIME_SIGNET_ORG,
	     160,
	     NULL,
	     "https://u@h:8443/p?q#f",
	     1,
	     {{"https://u@h:8443/p?q#f", "", 0}},
	     "Website"},
	    {"website ipv6",
	     DIME_SIGNET_ORG,
	     160,
	     NULL,
	     "https://[::1]:8443/",
	     1,
	     {{"https://[::1]:8443/", "", 0}},
	     "Website"},
	    {"website ftp",
	     DIME_SIGNET_ORG,
	     160,
	     NULL,
	     "ftp://alpha.example/",
	     1,
	     {{"ftp://alpha.example/", "", 1}},
	     "Website"},
	    {"website no host",
	     DIME_SIGNET_ORG,
	     160,
	     NULL,
	     "https:///x",
	     1,
	     {{"https:///x", "", 1}},
	     "Website"},
	    {"website bare",
	     DIME_SIGNET_ORG,
	     160,
	     NULL,
	     "alpha.example",
	     1,
	     {{"alpha.example", "", 1}},
	     "Website"},
	    {"website space",
	     DIME_SIGNET_ORG,
	     160,
	     NULL,
	     "https://a b/",
	     1,
	     {{"https://a b/", "", 1}},
	     "Website"},
	    {"website bad port",
	     DIME_SIGNET_ORG,
	     160,
	     NULL,
	     "https://a:x/",
	     1,
	     {{"https://a:x/", "", 1}},
	     "Website"},
	    {"website empty port",
	     DIME_SIGNET_ORG,
	     160,
	     NULL,
	     "https://a:/",
	     1,
	     {{"https://a:/", "", 1}},
	     "Website"},
	    {"size ok",
	     DIME_SIGNET_ORG,
	     27,
	     NULL,
	     "1048576",
	     1,
	     {{"1048576", "", 0}},
	     "Message-Size-Limit"},
	    {"size huge",
	     DIME_SIGNET_ORG,
	     27,
	     NULL,
	     "999999999999999999999999999",
	     1,
	     {{"999999999999999999999999999", "", 0}},
	     "Message-Size-Limit"},
	    {"size small",
	     DIME_SIGNET_ORG,
	     27,
	     NULL,
	     "1048575",
	     1,
	     {{"1048575", "", 1}},
	     "Message-Size-Limit"},
	    {"size unit",
	     DIME_SIGNET_ORG,
	     27,
	     NULL,
	     "10MB",
	     1,
	     {{"10MB", "", 1}},
	     "Message-Size-Limit"},
	    {"title label",
	     DIME_SIGNET_USER,
	     94,
	     NULL,
	     "Postmaster;Role",
	     1,
	     {{"Postmaster", "Role", 0}},
	     "Title"},
	    {"title plain",
	     DIME_SIGNET_USER,
	     94,
	     NULL,
	     "Postmaster",
	     1,
	     {{"Postmaster", "", 0}},
	     "Title"},
	    {"party label",
	     DIME_SIGNET_USER,
	     99,
	     NULL,
	     "Green; Party",
	     1,
	     {{"Green", "Party", 0}},
	     "Political-Party"},
	    {"resume",
	     DIME_SIGNET_USER,
	     201,
	     NULL,
	     "http://cv;CV",
	     1,
	     {{"http://cv", "CV", 0}},
	     "Resume"},
	    {"name", DIME_SIGNET_USER, 16, NULL, "Bob; Beta", 1, {{"Bob; Beta", "", 0}}, "Name"},
	    {"name bad utf8",
	     DIME_SIGNET_USER,
	     16,
	     NULL,
	     "B\xffob",
	     1,
	     {{"B\xffob", "", 1}},
	     "Name"},
	    {"empty name", DIME_SIGNET_USER, 16, NULL, "", 0, {{NULL, NULL, 0}}, "Name"},
	    {"identifier",
	     DIME_SIGNET_USER,
	     254,
	     NULL,
	     "bob@beta.example",
	     1,
	     {{"bob@beta.example", "", 0}},
	     "Signet-Identifier"},
	    {"unrecognized", DIME_SIGNET_ORG, 99, NULL, "x", 1, {{"x", "", 0}}, "Unrecognized"},
	    {"251 ok",
	     DIME_SIGNET_ORG,
	     251,
	     "Vector-Id",
	     "org-info",
	     1,
	     {{"org-info", "Vector-Id", 0}},
	     "Undefined-Fields"},
	    {"251 empty value",
	     DIME_SIGNET_ORG,
	     251,
	     "Empty",
	     "",
	     1,
	     {{"", "Empty", 0}},
	     "Undefined-Fields"},
	    {"251 empty name",
	     DIME_SIGNET_ORG,
	     251,
	     "",
	     "v",
	     1,
	     {{"v", "", 1}},
	     "Undefined-Fields"},
	    {"251 name space",
	     DIME_SIGNET_ORG,
	     251,
	     "Two words",
	     "v",
	     1,
	     {{"v", "Two words", 1}},
	     "Undefined-Fields"},
	    {"251 name tab",
	     DIME_SIGNET_USER,
	     251,
	     "A\tB",
	     "v",
	     1,
	     {{"v", "A\tB", 1}},
	     "Undefined-Fields"},
	    {"251 name bad utf8",
	     DIME_SIGNET_USER,
	     251,
	     "N\xc3\x28",
	     "v",
	     1,
	     {{"v", "N\xc3\x28", 1}},
	     "Undefined-Fields"},
	    {"251 name surrogate",
	     DIME_SIGNET_USER,
	     251,
	     "N\xed\xa0\x80",
	     "v",
	     1,
	     {{"v", "N\xed\xa0\x80", 1}},
	     "Undefined-Fields"},
	    {"251 name ideographic space",
	     DIME_SIGNET_USER,
	     251,
	     "A\xe3\x80\x80",
	     "v",
	     1,
	     {{"v", "A\xe3\x80\x80", 1}},
	     "Undefined-Fields"},
	    {"251 name unicode",
	     DIME_SIGNET_USER,
	     251,
	     "Gr\xc3\xbc\xc3\x9f"
	     "e",
	     "v",
	     1,
	     {{"v",
	       "Gr\xc3\xbc\xc3\x9f"
	       "e",
	       0}},
	     "Undefined-Fields"},
	    {"image not png",
	     DIME_SIGNET_USER,
	     252,
	     NULL,
	     "GIF89a....",
	     1,
	     {{"GIF89a....", "", 1}},
	     "Image"},
	    {"image png",
	     DIME_SIGNET_USER,
	     252,
	     NULL,
	     "\x89PNG\r\n\x1a\n...",
	     1,
	     {{"\x89PNG\r\n\x1a\n...", "", 0}},
	     "Image"},
	};

	for (size_t i = 0; i < N_OF(cases); i++) {
		struct dime_signet *s = cases[i].t == DIME_SIGNET_ORG ? org_alpha : org_beta;
		struct dime_signet *u = NULL;
		struct dime_signet_field f;
		struct dime_signet_item items[8];
		size_t n = 99;
		int rc;

		if (cases[i].t == DIME_SIGNET_USER)
			s = u = must_parse_file("user-bob.signet.bin");
		memset(&f, 0, sizeof(f));
		f.id = cases[i].id;
		f.value.p = (const uint8_t *)cases[i].value;
		f.value.len = strlen(cases[i].value);
		if (cases[i].fname != NULL) {
			f.name.p = (const uint8_t *)cases[i].fname;
			f.name.len = strlen(cases[i].fname);
		}
		rc = dime_signet_field_items(items, N_OF(items), &n, s, &f);
		T_CHECK(rc == DIME_OK && n == cases[i].n, "%s: got %d, %zu items, want %zu",
			cases[i].name, rc, n, cases[i].n);
		for (size_t k = 0; k < n && k < cases[i].n; k++) {
			const struct dime_signet_item *it = &items[k];
			const struct item_want *w = &cases[i].w[k];

			T_CHECK(it->value.len == strlen(w->value) &&
				    memcmp(it->value.p, w->value, it->value.len) == 0,
				"%s: item %zu value got '%.*s', want '%s'", cases[i].name, k,
				(int)it->value.len, (const char *)it->value.p, w->value);
			T_CHECK(it->sublabel.len == strlen(w->sublabel) &&
				    (it->sublabel.len == 0 ||
				     memcmp(it->sublabel.p, w->sublabel, it->sublabel.len) == 0),
				"%s: item %zu sublabel got '%.*s', want '%s'", cases[i].name, k,
				(int)it->sublabel.len, (const char *)it->sublabel.p, w->sublabel);
			T_CHECK(it->invalid == w->invalid, "%s: item %zu invalid got %u, want %d",
				cases[i].name, k, it->invalid, w->invalid);
			T_CHECK(it->id == cases[i].id && strcmp(it->label, cases[i].label) == 0,
				"%s: label got %s, want %s", cases[i].name, it->label,
				cases[i].label);
		}
		dime_signet_free(u);
	}
	/* NOSPACE: the first cap items are filled. */
	{
		struct dime_signet_field f;
		struct dime_signet_item items[2];
		size_t n = 0;
		int rc;

		memset(&f, 0, sizeof(f));
		f.id = 22;
		f.value.p = (const uint8_t *)"a;b;c";
		f.value.len = 5;
		rc = dime_signet_field_items(items, 2, &n, org_alpha, &f);
		T_CHECK(rc == DIME_E_NOSPACE && n == 2 && items[1].value.len == 1 &&
			    items[1].value.p[0] == 'b',
			"nospace: got %d, %zu", rc, n);
		rc = dime_signet_field_items(items, 0, &n, org_alpha, &f);
		T_CHECK(rc == DIME_E_NOSPACE && n == 0, "nospace cap 0: got %d, %zu", rc, n);
	}
	/* The vectors' key and signature fields. */
	{
		struct dime_signet_item items[4];
		size_t n = 0;
		const struct dime_signet_field *f = dime_signet_find(org_alpha, 1);

		T_CHECK(dime_signet_field_items(items, 4, &n, org_alpha, f) == DIME_OK && n == 1 &&
			    items[0].binary && items[0].value.len == 32 &&
			    memcmp(items[0].value.p, alpha_pok[0], 32) == 0,
			"POK item");
		f = dime_signet_find(org_alpha, 2);
		T_CHECK(dime_signet_field_items(items, 4, &n, org_alpha, f) == DIME_OK && n == 1 &&
			    items[0].binary && items[0].value.len == 32 && !items[0].invalid &&
			    items[0].sublabel.len == 16 &&
			    memcmp(items[0].sublabel.p, "signets,messages", 16) == 0 &&
			    strcmp(items[0].label, "Secondary-Organizational-Key") == 0,
			"SOK item: got '%.*s'", (int)items[0].sublabel.len,
			(const char *)items[0].sublabel.p);
		f = dime_signet_find(org_alpha, 3);
		T_CHECK(dime_signet_field_items(items, 4, &n, org_alpha, f) == DIME_OK && n == 1 &&
			    items[0].binary && items[0].value.len == 33,
			"enc item");
		f = dime_signet_find(org_alpha, 255);
		T_CHECK(dime_signet_field_items(items, 4, &n, org_alpha, f) == DIME_OK && n == 1 &&
			    items[0].binary && items[0].value.len == 64,
			"255 item");
	}
	{
		/* A SOK with a reserved bit is shown invalid. */
		struct tb t;
		struct dime_signet *s;
		struct dime_signet_item items[4];
		size_t n = 0;

		tb_start(&t, DIME_SIGNET_ORG);
		tb_ed(&t, 1, K.pok);
		tb_sok(&t, 0x21, K.sok[0]);
		tb_sok(&t, 0x08, K.sok[1]);
		s = tb_parse(&t, "reserved sok");
		if (s != NULL) {
			T_CHECK(dime_signet_field_items(items, 4, &n, s,
							dime_signet_field_at(s, 1)) == DIME_OK &&
				    n == 1 && items[0].invalid,
				"reserved SOK item must be invalid");
			T_CHECK(dime_signet_field_items(items, 4, &n, s,
							dime_signet_field_at(s, 2)) == DIME_OK &&
				    n == 1 && items[0].invalid,
				"software-only SOK item must be invalid");
		}
		dime_signet_free(s);
	}
}

int
main(void)
{
	t_init();
	hex(alpha_pok[0], 32, ALPHA_POK);
	hex(beta_pok[0], 32, BETA_POK);
	org_alpha = must_parse_file("org-alpha.signet.bin");
	org_beta = must_parse_file("org-beta.signet.bin");
	keys_init();
	test_vectors();
	test_vector_trust();
	test_accessors();
	test_splits();
	test_variants();
	test_structure();
	test_validation();
	test_load();
	test_labels();
	test_items();
	test_prefix_and_mutation();
	dime_signet_free(org_alpha);
	dime_signet_free(org_beta);
	return t_done("test_signet");
}

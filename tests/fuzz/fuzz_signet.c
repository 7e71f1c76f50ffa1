/* Fuzz dime_signet_load/parse. Invariants: whatever parses serializes back to the input bytes,
 * its field views stay inside those bytes, fingerprints compute, splits re-parse as prefixes,
 * armor round-trips, and validation and informational decoding survive any input. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dime/codec.h"
#include "dime/crypto.h"
#include "fuzz_common.h"
#include "dime/signet.h"

static void
fuzz_signet(const struct dime_signet *s)
{
	struct dime_view all = dime_signet_bytes(s);
	struct dime_signet_trust t;
	struct dime_signet_verdict v;
	uint8_t pok[1][DIME_ED25519_PUB_BYTES], fp[DIME_FP_BYTES], enc[DIME_SECP_PUB_BYTES];
	char b64[DIME_FP_B64_LEN + 1];
	size_t nf = dime_signet_n_fields(s), need = 0, alen = 0;
	char *arm;

	for (size_t i = 0; i < nf; i++) {
		const struct dime_signet_field *f = dime_signet_field_at(s, i);
		struct dime_signet_item items[4];
		size_t n = 0;
		int rc;

		FUZZ_CHECK(f != NULL && fuzz_inside(f->value, all.p, all.len) &&
			   fuzz_inside(f->name, all.p, all.len));
		FUZZ_CHECK(f->off < all.len - DIME_SIGNET_HEADER_BYTES);
		FUZZ_CHECK(all.p[DIME_SIGNET_HEADER_BYTES + f->off] == f->id);
		rc = dime_signet_field_items(items, 4, &n, s, f);
		FUZZ_CHECK((rc == DIME_OK || rc == DIME_E_NOSPACE) && n <= 4);
		for (size_t k = 0; k < n; k++) {
			FUZZ_CHECK(items[k].label != NULL && items[k].id == f->id);
			FUZZ_CHECK(fuzz_inside(items[k].value, all.p, all.len));
			if (f->id != DIME_FID_ORG_SOK || dime_signet_type(s) != DIME_SIGNET_ORG)
				FUZZ_CHECK(fuzz_inside(items[k].sublabel, all.p, all.len));
		}
	}
	FUZZ_CHECK(dime_signet_field_at(s, nf) == NULL);
	for (int k = DIME_FP_SSR; k <= DIME_FP_ID; k++) {
		int rc = dime_signet_fingerprint(fp, s, (enum dime_fp_kind)k);

		FUZZ_CHECK(rc == DIME_OK || rc == DIME_E_INVALID);
		FUZZ_CHECK((dime_signet_fingerprint_b64(b64, s, (enum dime_fp_kind)k) == DIME_OK) ==
			   (rc == DIME_OK));
		FUZZ_CHECK(rc != DIME_OK || strlen(b64) == DIME_FP_B64_LEN);
	}
	for (int lv = DIME_LEVEL_CRYPTO; lv <= DIME_LEVEL_FULL; lv++) {
		struct dime_signet *part = NULL;
		int rc = dime_signet_split(&part, s, (enum dime_signet_level)lv);

		FUZZ_CHECK(rc == DIME_OK || rc == DIME_E_INVALID);
		if (rc == DIME_OK) {
			struct dime_view pb = dime_signet_bytes(part);

			/* A split is a prefix of the fields under a rewritten header. */
			FUZZ_CHECK(pb.len <= all.len && memcmp(pb.p, all.p, 2) == 0 &&
				   memcmp(pb.p + DIME_SIGNET_HEADER_BYTES,
					  all.p + DIME_SIGNET_HEADER_BYTES,
					  pb.len - DIME_SIGNET_HEADER_BYTES) == 0);
			FUZZ_CHECK(dime_signet_fingerprint(fp, part, DIME_FP_CRYPTO) == DIME_OK);
			dime_signet_free(part);
		}
	}
	/* Armor and load again. */
	FUZZ_CHECK(dime_signet_armor(NULL, 0, &need, s) == DIME_OK);
	if ((arm = malloc(need + 1)) != NULL) {
		struct dime_signet *back = NULL;

		FUZZ_CHECK(dime_signet_armor(arm, need + 1, &alen, s) == DIME_OK && alen == need);
		FUZZ_CHECK(dime_signet_load(&back, NULL, (const uint8_t *)arm, alen) == DIME_OK);
		FUZZ_CHECK(dime_signet_bytes(back).len == all.len &&
			   memcmp(dime_signet_bytes(back).p, all.p, all.len) == 0);
		dime_signet_free(back);
		free(arm);
	}
	/* Validation against itself in every role: must not crash, verdict consistent. */
	memset(&t, 0, sizeof(t));
	if (dime_signet_signing_key(s, pok[0]) == DIME_OK) {
		t.poks = (const uint8_t(*)[DIME_ED25519_PUB_BYTES])pok;
		t.n_poks = 1;
	}
	if (dime_signet_enc_key(s, enc) == DIME_OK)
		FUZZ_CHECK(enc[0] == 0x02 || enc[0] == 0x03);
	t.org = s;
	t.previous = s;
	FUZZ_CHECK((dime_signet_validate(&v, s, &t) == DIME_OK) == (v.kind == DIME_SIGNET_VALID));
	FUZZ_CHECK(v.reason != NULL && (v.kind == DIME_SIGNET_VALID) == (v.reason[0] == 0));
	FUZZ_CHECK(v.kind == DIME_SIGNET_VALID || v.level == DIME_LEVEL_NONE);
	t.previous = NULL;
	FUZZ_CHECK((dime_signet_validate(&v, s, &t) == DIME_OK) == (v.kind == DIME_SIGNET_VALID));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dime_signet *s = NULL;
	const char *why = NULL;
	int rc = dime_signet_parse(&s, &why, data, size);

	FUZZ_CHECK(why != NULL && (rc == DIME_OK) == (s != NULL) && (rc == DIME_OK) == (*why == 0));
	if (rc == DIME_OK) {
		/* parse then serialize gives back the input */
		FUZZ_CHECK(dime_signet_bytes(s).len == size &&
			   memcmp(dime_signet_bytes(s).p, data, size) == 0);
		fuzz_signet(s);
		dime_signet_free(s);
		s = NULL;
	}
	rc = dime_signet_load(&s, &why, data, size);
	FUZZ_CHECK((rc == DIME_OK) == (s != NULL));
	if (rc == DIME_OK) {
		fuzz_signet(s);
		dime_signet_free(s);
	}
	return 0;
}

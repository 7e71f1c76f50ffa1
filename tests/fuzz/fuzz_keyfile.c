/* libFuzzer target for key files (binary and armored, dime_ks_load). Invariant: whatever loads
 * exports, binary and armored, to something that loads to the same kind and public keys; the
 * binary export is canonical (exporting the reload gives the same bytes), and a binary input
 * that loads is its own export. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dime/codec.h"
#include "dime/crypto.h"
#include "fuzz_common.h"
#include "dime/keys.h"

struct fk_pub {
	enum dime_key_kind kind;
	uint8_t sign[DIME_ED25519_PUB_BYTES];
	uint8_t enc[DIME_SECP_PUB_BYTES];
};

static void
fk_pub_get(struct fk_pub *p, const struct dime_ks *ks, uint32_t id)
{
	int rc;

	memset(p, 0, sizeof(*p));
	if (dime_ks_kind(ks, &p->kind, id) != DIME_OK ||
	    dime_ks_sign_pub(ks, p->sign, id) != DIME_OK)
		abort();
	rc = dime_ks_enc_pub(ks, p->enc, id);
	if (rc != (p->kind == DIME_KEY_SIGN ? DIME_E_INVALID : DIME_OK))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dime_ks *ks = NULL;
	struct fk_pub a, b;
	uint8_t bin[DIME_KEYFILE_MAX_BYTES], bin2[DIME_KEYFILE_MAX_BYTES];
	uint8_t arm[DIME_KEYFILE_MAX_BYTES];
	size_t bl = 0, bl2 = 0, al = 0, need = 0;
	uint32_t id = DIME_KS_NONE, id2 = DIME_KS_NONE, id3 = DIME_KS_NONE;
	const char *why = NULL;

	if (dime_ks_new(&ks) != DIME_OK)
		return 0;
	if (dime_ks_load_why(ks, &id, &why, data, size) != DIME_OK) {
		if (id != DIME_KS_NONE || why == NULL || why[0] == 0)
			abort(); /* a failure names its reason and leaves no id */
		goto out;
	}
	fk_pub_get(&a, ks, id);
	if (dime_ks_export(ks, bin, sizeof(bin), &bl, id, 0) != DIME_OK ||
	    dime_ks_export(ks, NULL, 0, &need, id, 1) != DIME_OK ||
	    dime_ks_export(ks, arm, sizeof(arm), &al, id, 1) != DIME_OK || al != need)
		abort();
	if (!dime_armor_detect(data, size) && (bl != size || memcmp(bin, data, size) != 0))
		abort(); /* binary input that loads is canonical */
	if (dime_ks_load(ks, &id2, bin, bl) != DIME_OK ||
	    dime_ks_load(ks, &id3, arm, al) != DIME_OK)
		abort();
	fk_pub_get(&b, ks, id2);
	if (memcmp(&a, &b, sizeof(a)) != 0)
		abort();
	fk_pub_get(&b, ks, id3);
	if (memcmp(&a, &b, sizeof(a)) != 0)
		abort();
	if (dime_ks_export(ks, bin2, sizeof(bin2), &bl2, id3, 0) != DIME_OK || bl2 != bl ||
	    memcmp(bin, bin2, bl) != 0)
		abort();
out:
	dime_wipe(bin, sizeof(bin));
	dime_wipe(bin2, sizeof(bin2));
	dime_wipe(arm, sizeof(arm));
	dime_ks_free(ks);
	return 0;
}

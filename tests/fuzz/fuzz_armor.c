/* Fuzz the PEM armor decoder. Whatever it accepts re-encodes (with and without the CRC line,
 * padded and not) and decodes back to the same bytes and label; consumed and out_len stay in
 * bounds; failures leave every output zeroed. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dime/codec.h"
#include "dime/crypto.h"
#include "fuzz_common.h"

static void
fuzz_zero_outputs(const char *label, size_t out_len, size_t consumed)
{
	for (size_t i = 0; i < DIME_ARMOR_LABEL_MAX; i++)
		if (label[i] != 0)
			abort();
	if (out_len != 0 || consumed != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int flag_sets[] = {DIME_ARMOR_CRC, 0, DIME_ARMOR_NOPAD,
					DIME_ARMOR_CRC | DIME_ARMOR_NOPAD};
	char label[DIME_ARMOR_LABEL_MAX], label2[DIME_ARMOR_LABEL_MAX];
	size_t cap = dime_b64_decoded_max(size), out_len = 99, consumed = 99, n2, c2, enc_len;
	uint8_t *out = malloc(cap + 1), *out2 = NULL;
	char *enc = NULL;
	int rc;

	if (out == NULL)
		abort();
	rc = dime_armor_decode(label, out, cap, &out_len, &consumed, data, size);
	if (rc != DIME_OK) {
		if (rc != DIME_E_MALFORMED && rc != DIME_E_BADSIG && rc != DIME_E_LIMIT &&
		    rc != DIME_E_NOMEM)
			abort();
		fuzz_zero_outputs(label, out_len, consumed);
		free(out);
		return 0;
	}
	if (consumed == 0 || consumed > size || out_len > cap || label[0] == 0 ||
	    memchr(label, 0, DIME_ARMOR_LABEL_MAX) == NULL || !dime_armor_detect(data, size))
		abort();
	/* Decoding only the block it consumed gives the same answer. */
	if ((out2 = malloc(cap + 1)) == NULL)
		abort();
	if (dime_armor_decode(label2, out2, cap, &n2, &c2, data, consumed) != DIME_OK ||
	    n2 != out_len || c2 != consumed || strcmp(label, label2) != 0 ||
	    memcmp(out, out2, out_len) != 0)
		abort();
	/* One byte too little room is an error, not a truncated success. */
	if (out_len > 0) {
		rc = dime_armor_decode(label2, out2, out_len - 1, &n2, &c2, data, size);
		if (rc != DIME_E_NOSPACE)
			abort();
		fuzz_zero_outputs(label2, n2, c2);
	}
	for (size_t f = 0; f < sizeof(flag_sets) / sizeof(flag_sets[0]); f++) {
		size_t need = dime_armor_encoded_len(label, out_len, flag_sets[f]);

		if ((enc = malloc(need + 1)) == NULL)
			abort();
		rc = dime_armor_encode(enc, need + 1, &enc_len, label, out, out_len, flag_sets[f]);
		if (rc != DIME_OK || enc_len != need)
			abort();
		if (dime_armor_encode(enc, need, &n2, label, out, out_len, flag_sets[f]) !=
		    DIME_E_NOSPACE)
			abort();
		rc = dime_armor_encode(enc, need + 1, &enc_len, label, out, out_len, flag_sets[f]);
		if (rc != DIME_OK)
			abort();
		rc = dime_armor_decode(label2, out2, cap, &n2, &c2, (const uint8_t *)enc, enc_len);
		if (rc != DIME_OK || c2 != enc_len || n2 != out_len || strcmp(label, label2) != 0 ||
		    memcmp(out, out2, out_len) != 0)
			abort();
		free(enc);
		enc = NULL;
	}
	free(out2);
	free(out);
	return 0;
}

/* Transfer armor for D/MIME objects: one detector and one encoder for every consumer. */

#include <stdlib.h>
#include <string.h>

#include "dime/codec.h"
#include "dime/msg_armor.h"

int
dime_msg_unarmor(uint8_t **out, size_t *out_len, int *armored, const char **why, const uint8_t *in,
		 size_t in_len, const char *label)
{
	char got[DIME_ARMOR_LABEL_MAX];
	uint8_t *bin;
	size_t n = 0, cap;
	int rc;

	*out = NULL;
	*out_len = 0;
	*armored = 0;
	if (why != NULL)
		*why = "";
	if (label == NULL)
		label = DIME_MSG_ARMOR_LABEL;
	if (!dime_armor_detect(in, in_len)) {
		/* +1: never malloc(0), and callers may rely on a spare byte */
		if ((bin = malloc(in_len + 1)) == NULL)
			return DIME_E_NOMEM;
		if (in_len > 0)
			memcpy(bin, in, in_len);
		*out = bin;
		*out_len = in_len;
		return DIME_OK;
	}
	cap = dime_b64_decoded_max(in_len) + 1;
	if ((bin = malloc(cap)) == NULL)
		return DIME_E_NOMEM;
	rc = dime_armor_decode(got, bin, cap, &n, NULL, in, in_len);
	if (rc == DIME_OK && strcmp(got, label) != 0) {
		if (why != NULL)
			*why = "armor label is not the expected one";
		rc = DIME_E_MALFORMED;
	} else if (rc != DIME_OK && why != NULL) {
		*why = rc == DIME_E_BADSIG ? "armor CRC does not match" : "armor does not decode";
	}
	if (rc != DIME_OK) {
		free(bin);
		return rc == DIME_E_NOSPACE ? DIME_E_MALFORMED : rc;
	}
	*out = bin;
	*out_len = n;
	*armored = 1;
	return DIME_OK;
}

int
dime_msg_armor(char **out, size_t *out_len, const uint8_t *in, size_t in_len, const char *label,
	       int crc)
{
	int flags = DIME_ARMOR_NOPAD | (crc ? DIME_ARMOR_CRC : 0);
	size_t need, n = 0;
	char *a;
	int rc;

	*out = NULL;
	*out_len = 0;
	if (label == NULL)
		label = DIME_MSG_ARMOR_LABEL;
	need = dime_armor_encoded_len(label, in_len, flags);
	if (need == 0 || need == SIZE_MAX)
		return DIME_E_LIMIT;
	if ((a = malloc(need + 1)) == NULL)
		return DIME_E_NOMEM;
	rc = dime_armor_encode(a, need + 1, &n, label, in, in_len, flags);
	if (rc != DIME_OK) {
		free(a);
		return rc == DIME_E_NOSPACE ? DIME_E_LIMIT : rc;
	}
	*out = a;
	*out_len = n;
	return DIME_OK;
}

#ifndef DIME_ENGINE_MSG_ARMOR_H
#define DIME_ENGINE_MSG_ARMOR_H
/* D/MIME objects in and out of their transfer armor (WIRE.md: PEM, unpadded base64). Every
 * consumer accepts either form, so the detection lives here once. */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DIME_MSG_ARMOR_LABEL	"ENCRYPTED MESSAGE"
#define DIME_BOUNCE_ARMOR_LABEL "DIME BOUNCE"

/* Binary or armored in -> binary. Armor must carry label (NULL: DIME_MSG_ARMOR_LABEL).
 * Returns: DIME_OK, DIME_E_MALFORMED (armor with another label or bad base64, *why),
 *          DIME_E_BADSIG (armor CRC mismatch), DIME_E_NOMEM.
 * Out: *out (malloc'd copy, caller frees; binary input is copied too so ownership is uniform),
 *      *out_len, *armored (1 when the input was armored). */
DIME_MUST_CHECK int dime_msg_unarmor(uint8_t **out, size_t *out_len, int *armored, const char **why,
				     const uint8_t *in, size_t in_len, const char *label);

/* Binary -> armor under label (NULL: DIME_MSG_ARMOR_LABEL), unpadded base64, with the CRC-24
 * line when crc (bounces carry it, messages do not).
 * Returns: DIME_OK, DIME_E_NOMEM, DIME_E_LIMIT. Out: *out (malloc'd, NUL-terminated), *out_len
 * (without the NUL). */
DIME_MUST_CHECK int dime_msg_armor(char **out, size_t *out_len, const uint8_t *in, size_t in_len,
				   const char *label, int crc);

#ifdef __cplusplus
}
#endif
#endif

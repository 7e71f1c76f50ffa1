#ifndef DIME_ENGINE_CODEC_H
#define DIME_ENGINE_CODEC_H
/* Text codecs: strict base64 (padded and unpadded), PEM armor with the optional RFC 4880
 * CRC-24 line, and hex. Pure functions over caller buffers; thread-safe. */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum dime_b64_flags {
	DIME_B64_PAD = 1,   /* encode with '=', decode requires it */
	DIME_B64_NOPAD = 2, /* encode without '=', decode forbids it */
	DIME_B64_ANYPAD = 3 /* decode only: either form */
};

/* Returns: the number of characters dime_b64_encode writes for n bytes (no NUL). */
size_t dime_b64_encoded_len(size_t n, int flags);

/* Encode in to base64 and NUL-terminate.
 * Returns: DIME_OK or DIME_E_NOSPACE (out_cap < encoded length + 1).
 * Out: out, *out_len (characters, without the NUL); on failure out[0] = 0 when out_cap > 0. */
DIME_MUST_CHECK int dime_b64_encode(char *out, size_t out_cap, size_t *out_len, const uint8_t *in,
				    size_t in_len, int flags);

/* Strict decode: only the standard alphabet, no whitespace, canonical trailing bits,
 * padding as flags demand.
 * Returns: DIME_OK, DIME_E_MALFORMED, or DIME_E_NOSPACE.
 * Out: out, *out_len; zeroed on failure. */
DIME_MUST_CHECK int dime_b64_decode(uint8_t *out, size_t out_cap, size_t *out_len, const char *in,
				    size_t in_len, int flags);

/* Returns: an upper bound on the bytes decoded from n characters. */
size_t dime_b64_decoded_max(size_t n);

/* Lower-case hex. out_cap >= 2 * in_len + 1. Returns: DIME_OK or DIME_E_NOSPACE. */
DIME_MUST_CHECK int dime_hex_encode(char *out, size_t out_cap, const uint8_t *in, size_t in_len);

/* Returns: DIME_OK, DIME_E_MALFORMED (odd length, non-hex) or DIME_E_NOSPACE. */
DIME_MUST_CHECK int dime_hex_decode(uint8_t *out, size_t out_cap, size_t *out_len, const char *in,
				    size_t in_len);

/* RFC 4880 CRC-24 (init 0xB704CE, polynomial 0x1864CFB). */
uint32_t dime_crc24(const uint8_t *p, size_t len);

#define DIME_ARMOR_LABEL_MAX 64

enum dime_armor_flags {
	DIME_ARMOR_CRC = 1,  /* emit the =XXXX line */
	DIME_ARMOR_NOPAD = 2 /* emit base64 without '=' (D/MIME transfer armor) */
};

/* Returns: nonzero when in (after leading whitespace) starts a PEM block. */
int dime_armor_detect(const uint8_t *in, size_t in_len);

/* Returns: the exact size dime_armor_encode writes (without NUL). */
size_t dime_armor_encoded_len(const char *label, size_t in_len, int flags);

/* Armor in under label: BEGIN line, base64 at 64 columns, optional CRC line, END line,
 * every line ending in LF. NUL-terminated.
 * Returns: DIME_OK, DIME_E_NOSPACE, or DIME_E_INVALID (label empty, too long or not printable).
 * Out: out, *out_len. */
DIME_MUST_CHECK int dime_armor_encode(char *out, size_t out_cap, size_t *out_len, const char *label,
				      const uint8_t *in, size_t in_len, int flags);

/* Decode the first PEM block in in. Accepts any line length, CR or LF line ends, padded or
 * unpadded base64, and a CRC-24 line that, when present, must match.
 * Returns: DIME_OK, DIME_E_MALFORMED (no block, label mismatch, bad base64),
 *          DIME_E_BADSIG (CRC mismatch), DIME_E_LIMIT (label too long), DIME_E_NOSPACE.
 * Out: label (NUL-terminated), out, *out_len; *consumed = bytes of in up to the end of the
 *      END line (so concatenated blocks can be walked). All zeroed on failure.
 * consumed may be NULL. */
DIME_MUST_CHECK int dime_armor_decode(char label[DIME_ARMOR_LABEL_MAX], uint8_t *out,
				      size_t out_cap, size_t *out_len, size_t *consumed,
				      const uint8_t *in, size_t in_len);

#ifdef __cplusplus
}
#endif
#endif

#ifndef DIME_ENGINE_MREC_H
#define DIME_ENGINE_MREC_H
/* Management records (`_dime` TXT, spec Part 4, as WIRE.md settles it): parse and validate,
 * generate, split into TXT strings, and sign / check the tls field. Pure; thread-safe. */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"
#include "dime/crypto.h"
#include "dime/keys.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DIME_MREC_MAX_BYTES	 4096u /* a TXT RRset over UDP rarely exceeds this */
#define DIME_MREC_MAX_VALUES	 16u   /* per repeatable field */
#define DIME_MREC_TXT_STRING_MAX 255u

enum dime_mrec_policy { DIME_POL_EXPERIMENTAL = 0, DIME_POL_MIXED = 1, DIME_POL_STRICT = 2 };
enum dime_mrec_subdomain { DIME_SUB_EXPLICIT = 0, DIME_SUB_MIXED = 1, DIME_SUB_STRICT = 2 };

struct dime_mrec {
	unsigned version;		    /* 1 */
	uint32_t expiry_days;		    /* default 30 */
	enum dime_mrec_policy policy;	    /* default mixed */
	enum dime_mrec_subdomain subdomain; /* default mixed; relaxed/loose read as mixed */
	size_t n_poks, n_tls, n_dx, n_syn;
	uint8_t poks[DIME_MREC_MAX_VALUES][DIME_ED25519_PUB_BYTES];
	uint8_t tls[DIME_MREC_MAX_VALUES][DIME_SIG_BYTES];
	struct dime_view dx[DIME_MREC_MAX_VALUES]; /* host names, borrowed from the input */
	struct dime_view syn[DIME_MREC_MAX_VALUES];
};

/* Parse a record (TXT strings already concatenated). Field names long or short, names and
 * enumerated values case-insensitive; space, tab and ';' separate fields (CR, LF, VT and FF
 * count as whitespace too); unknown fields are ignored, whatever their shape; a known field is
 * name=value split at the first '=', and a known name without '=' or with an empty value is
 * malformed. Unique fields (ver, exp, pol, sub): every instance must be valid, the first wins.
 * Rejects: no pok; a pok not exactly 43 unpadded base64 characters or not a valid Ed25519
 * point; a tls not exactly 86 unpadded base64 characters; ver other than 1; exp not a decimal
 * 1..3650; pol not experimental|mixed|strict; sub not explicit|mixed|strict|relaxed|loose;
 * dx or syn given as an IP address or not a host name (LDH labels, at least two, last one
 * starting with a letter, optional final dot); more than DIME_MREC_MAX_VALUES of a field or
 * more than DIME_MREC_MAX_BYTES of text (DIME_E_LIMIT).
 * Returns: DIME_OK, DIME_E_MALFORMED, DIME_E_LIMIT (DIME_E_INVALID: txt NULL with txt_len > 0).
 * Out: *m (views borrow txt), zeroed on failure; *why: static reason ("" on success); why may
 *      be NULL. */
DIME_MUST_CHECK int dime_mrec_parse(struct dime_mrec *m, const char **why, const char *txt,
				    size_t txt_len);

/* Serialize m as `ver=1 pok=... tls=... dx=... syn=... [exp=N] pol=... sub=...`, NUL-terminated:
 * that fixed order, short names, one space between fields, exp left out when it is the default
 * 30, pol and sub always written. The output parses back to a struct equal to m.
 * out == NULL: *out_len = size needed (without NUL); else out_cap must be at least that + 1.
 * Returns: DIME_OK, DIME_E_NOSPACE, DIME_E_INVALID (no pok, or a value that would not parse).
 * Out: *out_len (0 on failure); out[0] = 0 on failure when out_cap > 0. */
DIME_MUST_CHECK int dime_mrec_generate(char *out, size_t out_cap, size_t *out_len,
				       const struct dime_mrec *m);

/* Split a record into TXT strings of at most 255 bytes without splitting a field: every string
 * but the last ends at a field separator (kept in that string), each string takes as many whole
 * fields as fit, and the strings concatenated give back rec. So a field other than the last may
 * be at most 254 bytes (it needs its separator), the last one 255. An empty rec gives *n = 0.
 * Returns: DIME_OK, DIME_E_NOSPACE (more than cap strings), DIME_E_LIMIT (a field too long).
 * Out: parts borrow rec; *n; on failure *n = 0 and parts[0..cap) zeroed. */
DIME_MUST_CHECK int dime_mrec_split(struct dime_view *parts, size_t cap, size_t *n, const char *rec,
				    size_t rec_len);

/* The tls value for a certificate: Ed25519 by key id (the POK) over the DER bytes (spec).
 * Returns: DIME_OK, DIME_E_INVALID (empty der), or dime_ks_sign's DIME_E_NOTFOUND /
 * DIME_E_CRYPTO. Out: sig, zeroed on failure. */
DIME_MUST_CHECK int dime_mrec_tls_sign(const struct dime_ks *ks, uint8_t sig[DIME_SIG_BYTES],
				       uint32_t key_id, const uint8_t *der, size_t der_len);

/* Does any tls value of m match this certificate, signed by any of m's POKs, over the DER or
 * (the reference's form) over SHA-512(DER)? A record without tls values matches nothing: what
 * to do then (the spec: fall back to ordinary TLS validation) is the caller's policy.
 * Returns: DIME_OK or DIME_E_BADSIG. */
DIME_MUST_CHECK int dime_mrec_tls_check(const struct dime_mrec *m, const uint8_t *der,
					size_t der_len);

#ifdef __cplusplus
}
#endif
#endif

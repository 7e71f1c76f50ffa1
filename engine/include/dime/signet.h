#ifndef DIME_ENGINE_SIGNET_H
#define DIME_ENGINE_SIGNET_H
/* Signets (org 1776, user 1789, SSR 1215): parse, serialize, validate, fingerprint, split,
 * decode informational fields, and create. Byte layout: ../shared/spec/reference-format.md §3
 * as ../shared/spec/WIRE.md settles it.
 *
 * A struct dime_signet owns a copy of its bytes and an index of its fields; it is immutable
 * once built, so any number of threads may read one. */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"
#include "dime/crypto.h"
#include "dime/keys.h"

#ifdef __cplusplus
extern "C" {
#endif

enum dime_signet_type { DIME_SIGNET_SSR = 1215, DIME_SIGNET_ORG = 1776, DIME_SIGNET_USER = 1789 };

#define DIME_SIGNET_HEADER_BYTES 5
#define DIME_SIGNET_MAX_BYTES	 (DIME_SIGNET_HEADER_BYTES + 0xFFFFFFu)
#define DIME_FP_BYTES		 64
#define DIME_FP_B64_LEN		 86 /* unpadded base64 of 64 bytes */

/* Field ids with meaning to the code (the rest are looked up by number). */
enum dime_signet_fid {
	DIME_FID_ORG_POK = 1,
	DIME_FID_ORG_SOK = 2,
	DIME_FID_ORG_ENC = 3,
	DIME_FID_ORG_CRYPTO_SIG = 4,
	DIME_FID_USER_SIGN = 1,
	DIME_FID_USER_ENC = 2,
	DIME_FID_USER_ALT_ENC = 3,
	DIME_FID_USER_CUSTODY = 4,
	DIME_FID_USER_SELF_SIG = 5,
	DIME_FID_USER_ORG_SIG = 6,
	DIME_FID_PHONE = 21,
	DIME_FID_UNDEFINED = 251,
	DIME_FID_IMAGE = 252,
	DIME_FID_FULL_SIG = 253,
	DIME_FID_IDENTIFIER = 254,
	DIME_FID_ID_SIG = 255
};

/* SOK permission bits (spec Part 5). Bits 16..128 are reserved: a SOK with any set is ignored. */
enum dime_sok_perm {
	DIME_SOK_SIGNETS = 1,
	DIME_SOK_MESSAGES = 2,
	DIME_SOK_TLS = 4,
	DIME_SOK_SOFTWARE = 8,
	DIME_SOK_RESERVED = 0xF0
};

/* Levels, lowest to highest; a signet's level is its highest signature present and valid. */
enum dime_signet_level {
	DIME_LEVEL_NONE = 0,
	DIME_LEVEL_SSR = 1,    /* SSR: fields 1-5 self-signed */
	DIME_LEVEL_CRYPTO = 2, /* org 1-4, user 1-6 */
	DIME_LEVEL_FULL = 3,   /* up to 253 */
	DIME_LEVEL_ID = 4      /* up to 255 */
};

/* Fingerprint kinds: SHA-512 over the fields before a field id, without the header. */
enum dime_fp_kind {
	DIME_FP_SSR = 1,    /* user/SSR fields 1-5 */
	DIME_FP_CRYPTO = 2, /* org 1-4, user 1-6 */
	DIME_FP_FULL = 3,   /* up to 253 */
	DIME_FP_ID = 4	    /* up to 255 */
};

/* One field, borrowed from the signet. For 251, name is the field's name; otherwise empty. */
struct dime_signet_field {
	uint8_t id;
	struct dime_view name;
	struct dime_view value;
	size_t off; /* offset of the type octet from the start of the fields (after the header) */
};

struct dime_signet;

/* Parse a binary signet or SSR and check its structure: known magic, 3-byte length equal to
 * what follows, every field's layout, ascending ids, unique fields once, reserved ids absent,
 * no length overflowing the signet. Signatures are not checked here (dime_signet_validate).
 * Returns: DIME_OK, DIME_E_TRUNCATED, DIME_E_MALFORMED, DIME_E_TRAILING, DIME_E_LIMIT,
 *          DIME_E_NOMEM.
 * Out: *out (owned; free with dime_signet_free), NULL on failure; *why, when why != NULL, a
 *      static description of the failure ("" on success). */
DIME_MUST_CHECK int dime_signet_parse(struct dime_signet **out, const char **why, const uint8_t *in,
				      size_t in_len);

/* Like dime_signet_parse, but in may also be armored (detected automatically; any signet label
 * is accepted for any magic, the reference writes SSRs under ORGANIZATIONAL SIGNET).
 * Returns: as dime_signet_parse, plus DIME_E_BADSIG for a CRC-24 mismatch. */
DIME_MUST_CHECK int dime_signet_load(struct dime_signet **out, const char **why, const uint8_t *in,
				     size_t in_len);

void dime_signet_free(struct dime_signet *s); /* NULL-safe */

enum dime_signet_type dime_signet_type(const struct dime_signet *s);

/* Returns: the serialized signet, header included (borrowed; parse(serialize(x)) == x). */
struct dime_view dime_signet_bytes(const struct dime_signet *s);

/* Armor with the reference's label and CRC line. out == NULL: *out_len = size needed.
 * Returns: DIME_OK or DIME_E_NOSPACE. */
DIME_MUST_CHECK int dime_signet_armor(char *out, size_t out_cap, size_t *out_len,
				      const struct dime_signet *s);

size_t dime_signet_n_fields(const struct dime_signet *s);
/* Returns: field i in wire order (borrowed), or NULL when i is out of range. */
const struct dime_signet_field *dime_signet_field_at(const struct dime_signet *s, size_t i);
/* Returns: the first field with id, or NULL. */
const struct dime_signet_field *dime_signet_find(const struct dime_signet *s, uint8_t id);

/* Returns: the spec's display label for a field id of this signet type ("Name", "Phone",
 * "Primary-Organizational-Key", ...), or NULL for ids with no defined meaning. */
const char *dime_signet_field_label(enum dime_signet_type type, uint8_t id);

/* Key accessors. Return DIME_OK or DIME_E_NOTFOUND. */
DIME_MUST_CHECK int dime_signet_signing_key(const struct dime_signet *s,
					    uint8_t pub[DIME_ED25519_PUB_BYTES]); /* POK / user */
DIME_MUST_CHECK int dime_signet_enc_key(const struct dime_signet *s,
					uint8_t pub[DIME_SECP_PUB_BYTES]);
size_t dime_signet_n_soks(const struct dime_signet *s);
DIME_MUST_CHECK int dime_signet_sok(const struct dime_signet *s, uint8_t *perms,
				    uint8_t pub[DIME_ED25519_PUB_BYTES], size_t i);
/* Out: the identifier (field 254), borrowed. */
DIME_MUST_CHECK int dime_signet_identifier(const struct dime_signet *s, struct dime_view *id);

/* Fingerprint of kind. Returns: DIME_OK, or DIME_E_INVALID when kind does not apply (ssr of an
 * org signet). A kind whose terminating field is absent hashes every field (so a split's full
 * fingerprint equals its crypto fingerprint, as the reference does). Out: fp, zeroed on error. */
DIME_MUST_CHECK int dime_signet_fingerprint(uint8_t fp[DIME_FP_BYTES], const struct dime_signet *s,
					    enum dime_fp_kind kind);
/* The same as unpadded base64 (86 characters + NUL). */
DIME_MUST_CHECK int dime_signet_fingerprint_b64(char out[DIME_FP_B64_LEN + 1],
						const struct dime_signet *s,
						enum dime_fp_kind kind);

/* Split at a signature: DIME_LEVEL_CRYPTO keeps up to the crypto signature (org 4, user 6),
 * DIME_LEVEL_FULL keeps up to 253. Returns: DIME_OK, DIME_E_INVALID (no such signature, or an
 * SSR), DIME_E_NOMEM. Out: *out owned, NULL on failure. */
DIME_MUST_CHECK int dime_signet_split(struct dime_signet **out, const struct dime_signet *s,
				      enum dime_signet_level at);

/* ---- validation ---- */

/* What a signet is checked against. Every member may be NULL / 0. */
struct dime_signet_trust {
	const uint8_t (*poks)[DIME_ED25519_PUB_BYTES]; /* org signets: POKs from the mrec */
	size_t n_poks;
	const struct dime_signet *org;	    /* user signets: the issuing org's signet */
	const struct dime_signet *previous; /* user signets / SSRs: the previous version */
};

enum dime_signet_verdict_kind {
	DIME_SIGNET_VALID = 0,
	DIME_SIGNET_INVALID = 1,       /* malformed, incomplete or a bad signature */
	DIME_SIGNET_BROKEN_CUSTODY = 2 /* custody chain cannot be or is not established */
};

struct dime_signet_verdict {
	enum dime_signet_verdict_kind kind;
	enum dime_signet_level level; /* valid: the level reached; else DIME_LEVEL_NONE */
	const char *reason;	      /* static text; "" when valid */
};

/* Validate s as WIRE.md and the spec's Part 5 say: required fields below the highest signature
 * present, every signature present, org signets against trust->poks (field 1 must be one of
 * them), user signatures 6/253/255 against trust->org's POK or a SOK with DIME_SOK_SIGNETS and
 * no reserved bit, the user self-signature (5) against field 1, and custody (4) against
 * trust->previous's signing key (a rotated SSR too). Custody present without previous, or
 * previous given without custody: DIME_SIGNET_BROKEN_CUSTODY.
 * Returns: DIME_OK when valid, DIME_E_BADSIG otherwise. Out: *v always filled. */
DIME_MUST_CHECK int dime_signet_validate(struct dime_signet_verdict *v, const struct dime_signet *s,
					 const struct dime_signet_trust *trust);

/* ---- informational fields, decoded for display ---- */

/* One displayable item. A field may give several (a language list), or one marked invalid
 * (a phone number with a non-digit; a website that is not an http(s) URL), which must be shown
 * as such and never used. Nothing here affects validation. */
struct dime_signet_item {
	const char *label;	   /* static: "Phone", "Language", ... */
	struct dime_view sublabel; /* e.g. a phone number's "OFFICE"; empty when none */
	struct dime_view value;	   /* borrowed text; binary for keys and signatures */
	uint8_t id;
	uint8_t binary;	 /* value is raw bytes (show as base64) */
	uint8_t invalid; /* value failed the field's rule: show, never use */
};

/* Decode field f of s into items. Returns: DIME_OK or DIME_E_NOSPACE (more than cap items; the
 * first cap are filled). Out: items[0..*n). */
DIME_MUST_CHECK int dime_signet_field_items(struct dime_signet_item *items, size_t cap, size_t *n,
					    const struct dime_signet *s,
					    const struct dime_signet_field *f);

/* ---- creation ---- */

/* An informational field to add. id 16..252; name only for 251. */
struct dime_signet_info {
	uint8_t id;
	struct dime_view name;
	struct dime_view value;
};

struct dime_signet_sok_spec {
	uint32_t key_id; /* a DIME_KEY_SIGN key in the keystore */
	uint8_t perms;
};

/* Build an org signet: POK and encryption key from org_key (DIME_KEY_ORG), SOKs, the crypto
 * self-signature (4), informational fields (sorted by id; 251 kept in the given order, invalid
 * names rejected), 253, the domain (254, lower-cased) and 255, all signed with the POK.
 * Returns: DIME_OK, DIME_E_INVALID (bad domain, info id, perms), DIME_E_LIMIT, DIME_E_NOTFOUND,
 *          DIME_E_NOMEM, DIME_E_CRYPTO. Out: *out owned, NULL on failure. */
DIME_MUST_CHECK int dime_signet_org_create(struct dime_signet **out, const struct dime_ks *ks,
					   uint32_t org_key,
					   const struct dime_signet_sok_spec *soks, size_t n_soks,
					   const struct dime_signet_info *info, size_t n_info,
					   const char *domain);

/* Build an SSR for user_key (DIME_KEY_USER): fields 1, 2, custody (4) signed by prev_key when
 * prev_key != DIME_KS_NONE, and the self-signature (5).
 * Returns: as dime_signet_org_create. */
DIME_MUST_CHECK int dime_signet_ssr_create(struct dime_signet **out, const struct dime_ks *ks,
					   uint32_t user_key, uint32_t prev_key);

/* The org turns an SSR into a user signet: checks the SSR (self-signature; custody against
 * previous when given), then appends 6, the informational fields, 253, the address (254,
 * lower-cased) and 255, each signed by signer_key, which must be the org's POK or a SOK
 * (listed in org with DIME_SOK_SIGNETS). org may be NULL to skip that check.
 * Returns: DIME_OK, DIME_E_BADSIG (SSR fails its checks), DIME_E_INVALID, DIME_E_NOTFOUND,
 *          DIME_E_NOMEM, DIME_E_CRYPTO. Out: *out owned, NULL on failure. */
DIME_MUST_CHECK int dime_signet_ssr_sign(struct dime_signet **out, const struct dime_signet *ssr,
					 const struct dime_signet *previous,
					 const struct dime_signet *org, const struct dime_ks *ks,
					 uint32_t signer_key, const struct dime_signet_info *info,
					 size_t n_info, const char *address);

#ifdef __cplusplus
}
#endif
#endif

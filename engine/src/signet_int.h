#ifndef DIME_ENGINE_SIGNET_INT_H
#define DIME_ENGINE_SIGNET_INT_H
/* Private to the signet module (signet.c, signet_info.c, signet_create.c): the signet object and
 * the field-layout table of reference-format.md §3.2 as WIRE.md settles it. */

#include <stddef.h>
#include <stdint.h>

#include "dime/signet.h"

/* Invariant: bytes holds a signet that dime_signet_parse accepted; fields index it in wire
 * order, and every view in fields points into bytes. Immutable once built. */
struct dime_signet {
	enum dime_signet_type type;
	uint8_t *bytes; /* malloc'd, header included */
	size_t len;
	struct dime_signet_field *fields; /* malloc'd, n_fields entries (NULL when 0) */
	size_t n_fields;
};

/* How one field id is laid out in one signet type. */
struct dime_signet_layout {
	uint8_t prefix;	    /* length-prefix octets: 0 (fixed value), 1, 2 or 3 */
	uint8_t repeatable; /* may appear several times (consecutively) */
	uint8_t undefined;  /* 251: [1-octet name len][name][2-octet value len][value] */
	uint8_t key;	    /* DIME_SIGNET_KEY_*: which key encoding the value must have */
	uint16_t size;	    /* prefix 0: the fixed size; else the exact length demanded, or 0 */
};

enum dime_signet_key_form {
	DIME_SIGNET_KEY_NONE = 0,
	DIME_SIGNET_KEY_ED = 1,	 /* 0x40 + 32-byte Ed25519 key */
	DIME_SIGNET_KEY_SOK = 2, /* permission octet + 0x40 + 32-byte Ed25519 key */
	DIME_SIGNET_KEY_SECP = 3 /* 33-byte compressed secp256k1 point (02/03 prefix) */
};

#define DIME_SIGNET_ED_FORMAT 0x40 /* the reference's Ed25519 format octet */

/* Look up field id in signet type t.
 * Returns: DIME_OK, or DIME_E_MALFORMED when the id is reserved (not allowed) in t.
 * Out: *lay (zeroed on failure). */
DIME_MUST_CHECK int dime_signet_layout(struct dime_signet_layout *lay, enum dime_signet_type t,
				       uint8_t id);

/* The bytes a signature in field id covers (and the prefix a fingerprint hashes): every field
 * before the first field with an id >= below, header excluded (reference-format.md §3.4).
 * below > 255 covers every field. Out: *v borrows s. */
void dime_signet_covered(struct dime_view *v, const struct dime_signet *s, unsigned below);

#endif

/* Signets and SSRs: parse (binary or armored), the field index and accessors, armor,
 * fingerprints, splits and validation. Layout: reference-format.md §3 as WIRE.md settles it.
 * A signet keeps the bytes it was parsed from, so serialize is those bytes (canonical by
 * construction: parsing accepts exactly one encoding per field). */

#include <stdlib.h>
#include <string.h>

#include "dime/codec.h"
#include "dime/crypto.h"
#include "dime/signet.h"
#include "rd.h"
#include "signet_int.h"
#include "wr.h"

/* ---- reasons naming the field id: static strings, one per id (the API returns static text) */

/* clang-format off */
#define SIGNET_D10(pre, m)                                                                         \
	m(pre##0) m(pre##1) m(pre##2) m(pre##3) m(pre##4)                                          \
	m(pre##5) m(pre##6) m(pre##7) m(pre##8) m(pre##9)
#define SIGNET_IDS(m)                                                                              \
	m(0) m(1) m(2) m(3) m(4) m(5) m(6) m(7) m(8) m(9)                                          \
	SIGNET_D10(1, m) SIGNET_D10(2, m) SIGNET_D10(3, m) SIGNET_D10(4, m) SIGNET_D10(5, m)       \
	SIGNET_D10(6, m) SIGNET_D10(7, m) SIGNET_D10(8, m) SIGNET_D10(9, m)                        \
	SIGNET_D10(10, m) SIGNET_D10(11, m) SIGNET_D10(12, m) SIGNET_D10(13, m)                    \
	SIGNET_D10(14, m) SIGNET_D10(15, m) SIGNET_D10(16, m) SIGNET_D10(17, m)                    \
	SIGNET_D10(18, m) SIGNET_D10(19, m) SIGNET_D10(20, m) SIGNET_D10(21, m)                    \
	SIGNET_D10(22, m) SIGNET_D10(23, m) SIGNET_D10(24, m) m(250) m(251) m(252) m(253) m(254)   \
	m(255)

#define SIGNET_WHY_ORDER(n) "fields out of ascending order at id " #n,
#define SIGNET_WHY_TWICE(n) "unique field " #n " appears more than once",
#define SIGNET_WHY_RESERVED(n) "field id " #n " is reserved for this signet type",
#define SIGNET_WHY_OVERFLOW(n) "field " #n " overflows the signet",
/* clang-format on */

static const char *const signet_why_order[256] = {SIGNET_IDS(SIGNET_WHY_ORDER)};
static const char *const signet_why_twice[256] = {SIGNET_IDS(SIGNET_WHY_TWICE)};
static const char *const signet_why_reserved[256] = {SIGNET_IDS(SIGNET_WHY_RESERVED)};
static const char *const signet_why_overflow[256] = {SIGNET_IDS(SIGNET_WHY_OVERFLOW)};

/* ---- field layout (reference-format.md §3.2) ---- */

static void
signet_lay(struct dime_signet_layout *lay, uint8_t prefix, uint16_t size, uint8_t key,
	   uint8_t repeatable)
{
	lay->prefix = prefix;
	lay->size = size;
	lay->key = key;
	lay->repeatable = repeatable;
}

int
dime_signet_layout(struct dime_signet_layout *lay, enum dime_signet_type t, uint8_t id)
{
	memset(lay, 0, sizeof(*lay));
	if (t == DIME_SIGNET_SSR) {
		switch (id) {
		case 1: signet_lay(lay, 1, 33, DIME_SIGNET_KEY_ED, 0); return DIME_OK;
		case 2: signet_lay(lay, 2, 33, DIME_SIGNET_KEY_SECP, 0); return DIME_OK;
		case 3: signet_lay(lay, 1, 0, DIME_SIGNET_KEY_NONE, 0); return DIME_OK; /* ref: 1 */
		case 4:
		case 5: signet_lay(lay, 0, DIME_SIG_BYTES, DIME_SIGNET_KEY_NONE, 0); return DIME_OK;
		default: return DIME_E_MALFORMED;
		}
	}
	if (t == DIME_SIGNET_ORG && id < 16) {
		switch (id) {
		case 1: signet_lay(lay, 1, 33, DIME_SIGNET_KEY_ED, 0); return DIME_OK;
		case 2: signet_lay(lay, 1, 34, DIME_SIGNET_KEY_SOK, 1); return DIME_OK;
		case 3: signet_lay(lay, 2, 33, DIME_SIGNET_KEY_SECP, 0); return DIME_OK;
		case 4: signet_lay(lay, 0, DIME_SIG_BYTES, DIME_SIGNET_KEY_NONE, 0); return DIME_OK;
		default: return DIME_E_MALFORMED; /* 0, 5-15 */
		}
	}
	if (t == DIME_SIGNET_USER && id < 16) {
		switch (id) {
		case 1: signet_lay(lay, 1, 33, DIME_SIGNET_KEY_ED, 0); return DIME_OK;
		case 2: signet_lay(lay, 2, 33, DIME_SIGNET_KEY_SECP, 0); return DIME_OK;
		case 3: signet_lay(lay, 2, 0, DIME_SIGNET_KEY_NONE, 0); return DIME_OK;
		case 4:
		case 5:
		case 6: signet_lay(lay, 0, DIME_SIG_BYTES, DIME_SIGNET_KEY_NONE, 0); return DIME_OK;
		default: return DIME_E_MALFORMED; /* 0, 7-15 */
		}
	}
	if (t != DIME_SIGNET_ORG && t != DIME_SIGNET_USER)
		return DIME_E_MALFORMED;
	/* Ids 16-255, common to org and user signets. */
	if (id <= 159)
		signet_lay(lay, 1, 0, DIME_SIGNET_KEY_NONE, id == DIME_FID_PHONE);
	else if (id <= 250)
		signet_lay(lay, 2, 0, DIME_SIGNET_KEY_NONE,
			   t == DIME_SIGNET_USER && id == 202); /* Endorsements */
	else if (id == DIME_FID_UNDEFINED) {
		signet_lay(lay, 0, 0, DIME_SIGNET_KEY_NONE, 1);
		lay->undefined = 1;
	} else if (id == DIME_FID_IMAGE)
		signet_lay(lay, 3, 0, DIME_SIGNET_KEY_NONE, 0);
	else if (id == DIME_FID_IDENTIFIER)
		signet_lay(lay, 1, 0, DIME_SIGNET_KEY_NONE, 0); /* reference: 1 octet */
	else
		signet_lay(lay, 0, DIME_SIG_BYTES, DIME_SIGNET_KEY_NONE, 0); /* 253, 255 */
	return DIME_OK;
}

/* ---- parsing ---- */

/* Walk the fields of p[0..len) (the bytes after the header). fields == NULL: only check and
 * count. Returns: DIME_OK or DIME_E_MALFORMED (*why set). Out: *n fields. */
static int
signet_walk(struct dime_signet_field *fields, size_t *n, const char **why, enum dime_signet_type t,
	    const uint8_t *p, size_t len)
{
	struct dime_rd r;
	int prev = -1;
	size_t count = 0;

	*n = 0;
	dime_rd_init(&r, p, len);
	while (r.err == DIME_OK && r.off < r.len) {
		struct dime_signet_layout lay;
		struct dime_view name = {NULL, 0}, val = {NULL, 0};
		size_t off = r.off, vlen;
		uint8_t id = dime_rd_u8(&r);

		if (dime_signet_layout(&lay, t, id) != DIME_OK) {
			*why = signet_why_reserved[id];
			return DIME_E_MALFORMED;
		}
		if (prev > (int)id) {
			*why = signet_why_order[id];
			return DIME_E_MALFORMED;
		}
		if (prev == (int)id && !lay.repeatable) {
			*why = signet_why_twice[id];
			return DIME_E_MALFORMED;
		}
		if (lay.undefined) {
			name.len = dime_rd_u8(&r);
			name.p = dime_rd_take(&r, name.len);
			vlen = dime_rd_be16(&r);
		} else if (lay.prefix == 0) {
			vlen = lay.size;
		} else if (lay.prefix == 1) {
			vlen = dime_rd_u8(&r);
		} else if (lay.prefix == 2) {
			vlen = dime_rd_be16(&r);
		} else {
			vlen = dime_rd_be24(&r);
		}
		val.p = dime_rd_take(&r, vlen);
		val.len = vlen;
		if (r.err != DIME_OK) {
			/* The outer length matched the input, so this is an overflow, not a cut. */
			*why = signet_why_overflow[id];
			return DIME_E_MALFORMED;
		}
		if (lay.prefix != 0 && lay.size != 0 && vlen != lay.size) {
			*why = t == DIME_SIGNET_ORG && id == 2 ? "field 2: SOK length is not 34"
			       : id == 1		       ? "field 1: key length is not 33"
							       : "encryption key length is not 33";
			return DIME_E_MALFORMED;
		}
		if (lay.key == DIME_SIGNET_KEY_ED && val.p[0] != DIME_SIGNET_ED_FORMAT) {
			*why = "field 1: Ed25519 key lacks the 0x40 format octet";
			return DIME_E_MALFORMED;
		}
		if (lay.key == DIME_SIGNET_KEY_SOK && val.p[1] != DIME_SIGNET_ED_FORMAT) {
			*why = "field 2: SOK lacks the 0x40 format octet";
			return DIME_E_MALFORMED;
		}
		if (lay.key == DIME_SIGNET_KEY_SECP && val.p[0] != 0x02 && val.p[0] != 0x03) {
			*why = "encryption key is not a compressed point (02/03 prefix)";
			return DIME_E_MALFORMED;
		}
		if (fields != NULL) {
			fields[count].id = id;
			fields[count].name = name;
			fields[count].value = val;
			fields[count].off = off;
		}
		count++;
		prev = id;
	}
	*n = count;
	return DIME_OK;
}

static int
signet_magic_ok(uint32_t m)
{
	return m == DIME_SIGNET_SSR || m == DIME_SIGNET_ORG || m == DIME_SIGNET_USER;
}

/* Check the header of in. Returns: DIME_OK or an error (*why set). Out: *type. */
static int
signet_header(enum dime_signet_type *type, const char **why, const uint8_t *in, size_t in_len)
{
	struct dime_rd r;
	uint32_t magic, len;

	dime_rd_init(&r, in, in_len);
	magic = dime_rd_be16(&r);
	len = dime_rd_be24(&r);
	if (r.err != DIME_OK) {
		*why = "shorter than the 5-byte header";
		return DIME_E_TRUNCATED;
	}
	if (!signet_magic_ok(magic)) {
		*why = "unknown magic number";
		return DIME_E_MALFORMED;
	}
	if (len > dime_rd_left(&r)) {
		*why = "length field exceeds the input";
		return DIME_E_TRUNCATED;
	}
	if (len < dime_rd_left(&r)) {
		*why = in_len > DIME_SIGNET_MAX_BYTES ? "larger than the maximum signet size"
						      : "bytes after the signet";
		return in_len > DIME_SIGNET_MAX_BYTES ? DIME_E_LIMIT : DIME_E_TRAILING;
	}
	*type = (enum dime_signet_type)magic;
	return DIME_OK;
}

/* Index buf (malloc'd, header included), taking it: on failure it is freed. */
static int
signet_adopt(struct dime_signet **out, const char **why, uint8_t *buf, size_t len)
{
	struct dime_signet *s = NULL;
	enum dime_signet_type type = DIME_SIGNET_SSR;
	size_t n = 0;
	int rc;

	*out = NULL;
	if ((rc = signet_header(&type, why, buf, len)) != DIME_OK)
		goto fail;
	rc = signet_walk(NULL, &n, why, type, buf + DIME_SIGNET_HEADER_BYTES,
			 len - DIME_SIGNET_HEADER_BYTES);
	if (rc != DIME_OK)
		goto fail;
	rc = DIME_E_NOMEM;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		goto fail;
	if (n > 0 && (s->fields = calloc(n, sizeof(*s->fields))) == NULL)
		goto fail;
	s->type = type;
	s->bytes = buf;
	s->len = len;
	buf = NULL;
	rc = signet_walk(s->fields, &s->n_fields, why, type, s->bytes + DIME_SIGNET_HEADER_BYTES,
			 len - DIME_SIGNET_HEADER_BYTES);
	DIME_ASSERT(rc == DIME_OK && s->n_fields == n); /* same bytes, same walk */
	*why = "";
	*out = s;
	return DIME_OK;
fail:
	if (rc == DIME_E_NOMEM)
		*why = "out of memory";
	free(buf);
	dime_signet_free(s);
	return rc;
}

int
dime_signet_parse(struct dime_signet **out, const char **why, const uint8_t *in, size_t in_len)
{
	const char *dummy = "";
	enum dime_signet_type type;
	uint8_t *buf;
	int rc;

	if (why == NULL)
		why = &dummy;
	*out = NULL;
	*why = "";
	/* Check the header before allocating anything. */
	if ((rc = signet_header(&type, why, in, in_len)) != DIME_OK)
		return rc;
	if ((buf = malloc(in_len)) == NULL) {
		*why = "out of memory";
		return DIME_E_NOMEM;
	}
	memcpy(buf, in, in_len);
	return signet_adopt(out, why, buf, in_len);
}

static const char *const signet_labels[] = {"ORGANIZATIONAL SIGNET", "USER SIGNET",
					    "SIGNET SIGNING REQUEST"};

int
dime_signet_load(struct dime_signet **out, const char **why, const uint8_t *in, size_t in_len)
{
	const char *dummy = "";
	char label[DIME_ARMOR_LABEL_MAX];
	uint8_t *buf = NULL;
	size_t cap, n = 0, used = 0, k;
	int rc;

	if (why == NULL)
		why = &dummy;
	*out = NULL;
	*why = "";
	if (!dime_armor_detect(in, in_len))
		return dime_signet_parse(out, why, in, in_len);
	cap = dime_b64_decoded_max(in_len);
	if (cap > DIME_SIGNET_MAX_BYTES)
		cap = DIME_SIGNET_MAX_BYTES;
	if ((buf = malloc(cap)) == NULL) {
		*why = "out of memory";
		return DIME_E_NOMEM;
	}
	rc = dime_armor_decode(label, buf, cap, &n, &used, in, in_len);
	if (rc != DIME_OK) {
		*why = rc == DIME_E_BADSIG ? "armor CRC-24 does not match" : "bad armor";
		if (rc == DIME_E_NOSPACE) {
			*why = "larger than the maximum signet size";
			rc = DIME_E_LIMIT;
		}
		free(buf);
		return rc;
	}
	for (k = 0; k < sizeof(signet_labels) / sizeof(signet_labels[0]); k++)
		if (strcmp(label, signet_labels[k]) == 0)
			break;
	if (k == sizeof(signet_labels) / sizeof(signet_labels[0])) {
		*why = "armor label is not a signet label";
		free(buf);
		return DIME_E_MALFORMED;
	}
	for (; used < in_len; used++)
		if (in[used] != ' ' && in[used] != '\t' && in[used] != '\r' && in[used] != '\n') {
			*why = "data after the armor block";
			free(buf);
			return DIME_E_TRAILING;
		}
	return signet_adopt(out, why, buf, n);
}

void
dime_signet_free(struct dime_signet *s)
{
	if (s == NULL)
		return;
	free(s->bytes);
	free(s->fields);
	free(s);
}

/* ---- accessors ---- */

enum dime_signet_type
dime_signet_type(const struct dime_signet *s)
{
	return s->type;
}

struct dime_view
dime_signet_bytes(const struct dime_signet *s)
{
	struct dime_view v = {s->bytes, s->len};

	return v;
}

int
dime_signet_armor(char *out, size_t out_cap, size_t *out_len, const struct dime_signet *s)
{
	const char *label = s->type == DIME_SIGNET_ORG	  ? signet_labels[0]
			    : s->type == DIME_SIGNET_USER ? signet_labels[1]
							  : signet_labels[2];

	if (out == NULL) {
		*out_len = dime_armor_encoded_len(label, s->len, DIME_ARMOR_CRC);
		return DIME_OK;
	}
	return dime_armor_encode(out, out_cap, out_len, label, s->bytes, s->len, DIME_ARMOR_CRC);
}

size_t
dime_signet_n_fields(const struct dime_signet *s)
{
	return s->n_fields;
}

const struct dime_signet_field *
dime_signet_field_at(const struct dime_signet *s, size_t i)
{
	return i < s->n_fields ? &s->fields[i] : NULL;
}

const struct dime_signet_field *
dime_signet_find(const struct dime_signet *s, uint8_t id)
{
	for (size_t i = 0; i < s->n_fields; i++)
		if (s->fields[i].id == id)
			return &s->fields[i];
	return NULL;
}

int
dime_signet_signing_key(const struct dime_signet *s, uint8_t pub[DIME_ED25519_PUB_BYTES])
{
	const struct dime_signet_field *f = dime_signet_find(s, 1);

	memset(pub, 0, DIME_ED25519_PUB_BYTES);
	if (f == NULL)
		return DIME_E_NOTFOUND;
	memcpy(pub, f->value.p + 1, DIME_ED25519_PUB_BYTES); /* after the 0x40 octet */
	return DIME_OK;
}

int
dime_signet_enc_key(const struct dime_signet *s, uint8_t pub[DIME_SECP_PUB_BYTES])
{
	const struct dime_signet_field *f =
	    dime_signet_find(s, s->type == DIME_SIGNET_ORG ? DIME_FID_ORG_ENC : DIME_FID_USER_ENC);

	memset(pub, 0, DIME_SECP_PUB_BYTES);
	if (f == NULL)
		return DIME_E_NOTFOUND;
	memcpy(pub, f->value.p, DIME_SECP_PUB_BYTES);
	return DIME_OK;
}

size_t
dime_signet_n_soks(const struct dime_signet *s)
{
	size_t n = 0;

	if (s->type != DIME_SIGNET_ORG)
		return 0;
	for (size_t i = 0; i < s->n_fields; i++)
		n += s->fields[i].id == DIME_FID_ORG_SOK;
	return n;
}

int
dime_signet_sok(const struct dime_signet *s, uint8_t *perms, uint8_t pub[DIME_ED25519_PUB_BYTES],
		size_t i)
{
	*perms = 0;
	memset(pub, 0, DIME_ED25519_PUB_BYTES);
	if (s->type != DIME_SIGNET_ORG)
		return DIME_E_NOTFOUND;
	for (size_t k = 0; k < s->n_fields; k++) {
		const struct dime_signet_field *f = &s->fields[k];

		if (f->id != DIME_FID_ORG_SOK)
			continue;
		if (i-- > 0)
			continue;
		*perms = f->value.p[0];
		memcpy(pub, f->value.p + 2, DIME_ED25519_PUB_BYTES);
		return DIME_OK;
	}
	return DIME_E_NOTFOUND;
}

int
dime_signet_identifier(const struct dime_signet *s, struct dime_view *id)
{
	const struct dime_signet_field *f = dime_signet_find(s, DIME_FID_IDENTIFIER);

	id->p = NULL;
	id->len = 0;
	if (f == NULL)
		return DIME_E_NOTFOUND;
	*id = f->value;
	return DIME_OK;
}

/* ---- coverage, fingerprints, splits ---- */

void
dime_signet_covered(struct dime_view *v, const struct dime_signet *s, unsigned below)
{
	size_t end = s->len - DIME_SIGNET_HEADER_BYTES;

	for (size_t i = 0; i < s->n_fields; i++)
		if (s->fields[i].id >= below) {
			end = s->fields[i].off;
			break;
		}
	v->p = s->bytes + DIME_SIGNET_HEADER_BYTES;
	v->len = end;
}

/* The field id a fingerprint of kind stops before. Returns: 0 when kind does not apply. */
static unsigned
signet_fp_below(const struct dime_signet *s, enum dime_fp_kind kind)
{
	switch (kind) {
	case DIME_FP_SSR: return s->type == DIME_SIGNET_ORG ? 0 : DIME_FID_USER_ORG_SIG;
	case DIME_FP_CRYPTO:
		return s->type == DIME_SIGNET_ORG    ? DIME_FID_ORG_CRYPTO_SIG + 1
		       : s->type == DIME_SIGNET_USER ? DIME_FID_USER_ORG_SIG + 1
						     : 0;
	case DIME_FP_FULL: return s->type == DIME_SIGNET_SSR ? 0 : DIME_FID_IDENTIFIER;
	case DIME_FP_ID: return s->type == DIME_SIGNET_SSR ? 0 : 256;
	default: return 0;
	}
}

int
dime_signet_fingerprint(uint8_t fp[DIME_FP_BYTES], const struct dime_signet *s,
			enum dime_fp_kind kind)
{
	struct dime_view v;
	unsigned below = signet_fp_below(s, kind);

	memset(fp, 0, DIME_FP_BYTES);
	if (below == 0)
		return DIME_E_INVALID;
	dime_signet_covered(&v, s, below);
	dime_sha512(fp, v.p, v.len);
	return DIME_OK;
}

int
dime_signet_fingerprint_b64(char out[DIME_FP_B64_LEN + 1], const struct dime_signet *s,
			    enum dime_fp_kind kind)
{
	uint8_t fp[DIME_FP_BYTES];
	size_t n = 0;
	int rc;

	memset(out, 0, DIME_FP_B64_LEN + 1);
	if ((rc = dime_signet_fingerprint(fp, s, kind)) != DIME_OK)
		return rc;
	rc = dime_b64_encode(out, DIME_FP_B64_LEN + 1, &n, fp, sizeof(fp), DIME_B64_NOPAD);
	DIME_ASSERT(rc == DIME_OK && n == DIME_FP_B64_LEN);
	return DIME_OK;
}

int
dime_signet_split(struct dime_signet **out, const struct dime_signet *s, enum dime_signet_level at)
{
	struct dime_view v;
	struct dime_wr w;
	const char *why = "";
	uint8_t *buf;
	uint8_t sig;
	size_t len;

	*out = NULL;
	if (s->type == DIME_SIGNET_SSR)
		return DIME_E_INVALID;
	if (at == DIME_LEVEL_CRYPTO)
		sig = s->type == DIME_SIGNET_ORG ? DIME_FID_ORG_CRYPTO_SIG : DIME_FID_USER_ORG_SIG;
	else if (at == DIME_LEVEL_FULL)
		sig = DIME_FID_FULL_SIG;
	else
		return DIME_E_INVALID;
	if (dime_signet_find(s, sig) == NULL)
		return DIME_E_INVALID;
	dime_signet_covered(&v, s, (unsigned)sig + 1);
	len = DIME_SIGNET_HEADER_BYTES + v.len; /* v.len < s->len: no overflow */
	if ((buf = malloc(len)) == NULL)
		return DIME_E_NOMEM;
	dime_wr_init(&w, buf, len);
	dime_wr_be16(&w, (uint16_t)s->type);
	dime_wr_be24(&w, (uint32_t)v.len);
	dime_wr_bytes(&w, v.p, v.len);
	DIME_ASSERT(w.err == DIME_OK && w.off == len);
	/* A prefix of valid fields is valid: the re-index cannot fail except for memory. */
	return signet_adopt(out, &why, buf, len);
}

/* ---- validation ---- */

static int
signet_verdict(struct dime_signet_verdict *v, enum dime_signet_verdict_kind kind,
	       enum dime_signet_level level, const char *reason)
{
	v->kind = kind;
	v->level = kind == DIME_SIGNET_VALID ? level : DIME_LEVEL_NONE;
	v->reason = kind == DIME_SIGNET_VALID ? "" : reason;
	return kind == DIME_SIGNET_VALID ? DIME_OK : DIME_E_BADSIG;
}

/* Verify the signature in field sig_id (present) over the fields before it with pub. */
static int
signet_verify_field(const struct dime_signet *s, uint8_t sig_id,
		    const uint8_t pub[DIME_ED25519_PUB_BYTES])
{
	const struct dime_signet_field *f = dime_signet_find(s, sig_id);
	struct dime_view v;

	if (f == NULL || f->value.len != DIME_SIG_BYTES)
		return DIME_E_BADSIG;
	dime_signet_covered(&v, s, sig_id);
	return dime_ed25519_verify(f->value.p, pub, v.p, v.len);
}

/* User signatures 6/253/255: the org POK, or a SOK allowed to sign signets (bit 1) with no
 * reserved bit and a valid point. */
static int
signet_verify_by_org(const struct dime_signet *s, uint8_t sig_id, const struct dime_signet *org)
{
	uint8_t pub[DIME_ED25519_PUB_BYTES], perms = 0;
	size_t n = dime_signet_n_soks(org);

	if (dime_signet_signing_key(org, pub) == DIME_OK && dime_ed25519_pub_valid(pub) &&
	    signet_verify_field(s, sig_id, pub) == DIME_OK)
		return DIME_OK;
	for (size_t i = 0; i < n; i++) {
		if (dime_signet_sok(org, &perms, pub, i) != DIME_OK)
			break;
		if (!(perms & DIME_SOK_SIGNETS) || (perms & DIME_SOK_RESERVED) ||
		    !dime_ed25519_pub_valid(pub))
			continue;
		if (signet_verify_field(s, sig_id, pub) == DIME_OK)
			return DIME_OK;
	}
	return DIME_E_BADSIG;
}

struct signet_need {
	uint8_t id;
	const char *why;
};

static const struct signet_need signet_need_org[] = {
    {1, "missing field 1 (primary organizational key)"},
    {3, "missing field 3 (encryption key)"},
    {4, "missing field 4 (organizational crypto signature)"},
    {253, "missing field 253 (full signature)"},
    {254, "missing field 254 (signet identifier)"},
    {255, "missing field 255 (identifier signature)"},
};
static const struct signet_need signet_need_user[] = {
    {1, "missing field 1 (signing key)"},
    {2, "missing field 2 (encryption key)"},
    {5, "missing field 5 (user signature)"},
    {6, "missing field 6 (organizational signature)"},
    {253, "missing field 253 (full signature)"},
    {254, "missing field 254 (signet identifier)"},
    {255, "missing field 255 (identifier signature)"},
};

/* Structure: the highest signature present decides the level, every required field below it
 * must be there, and nothing may follow it unsigned.
 * Returns: the level, or DIME_LEVEL_NONE with *why set. */
static enum dime_signet_level
signet_structure(const struct dime_signet *s, const char **why)
{
	const struct signet_need *need;
	size_t n_need, i;
	enum dime_signet_level level;
	uint8_t top, last = s->n_fields > 0 ? s->fields[s->n_fields - 1].id : 0;
	uint8_t crypto =
	    s->type == DIME_SIGNET_ORG ? DIME_FID_ORG_CRYPTO_SIG : DIME_FID_USER_ORG_SIG;

	if (s->type == DIME_SIGNET_SSR) {
		static const struct signet_need ssr[] = {
		    {1, "missing field 1 (signing key)"},
		    {2, "missing field 2 (encryption key)"},
		    {5, "missing field 5 (user signature)"},
		};

		for (i = 0; i < sizeof(ssr) / sizeof(ssr[0]); i++)
			if (dime_signet_find(s, ssr[i].id) == NULL) {
				*why = ssr[i].why;
				return DIME_LEVEL_NONE;
			}
		return DIME_LEVEL_SSR; /* ids above 5 cannot parse in an SSR */
	}
	if (s->type == DIME_SIGNET_ORG) {
		need = signet_need_org;
		n_need = sizeof(signet_need_org) / sizeof(signet_need_org[0]);
	} else {
		need = signet_need_user;
		n_need = sizeof(signet_need_user) / sizeof(signet_need_user[0]);
	}
	if (dime_signet_find(s, DIME_FID_ID_SIG) != NULL) {
		level = DIME_LEVEL_ID;
		top = DIME_FID_ID_SIG;
	} else if (dime_signet_find(s, DIME_FID_FULL_SIG) != NULL) {
		level = DIME_LEVEL_FULL;
		top = DIME_FID_FULL_SIG;
	} else if (dime_signet_find(s, crypto) != NULL) {
		level = DIME_LEVEL_CRYPTO;
		top = crypto;
	} else {
		*why = s->type == DIME_SIGNET_ORG
			   ? "no signature: field 4 (organizational crypto signature) missing"
			   : "no signature: field 6 (organizational signature) missing";
		return DIME_LEVEL_NONE;
	}
	for (i = 0; i < n_need && need[i].id <= top; i++)
		if (dime_signet_find(s, need[i].id) == NULL) {
			*why = need[i].why;
			return DIME_LEVEL_NONE;
		}
	if (last > top) {
		*why = top == DIME_FID_FULL_SIG
			   ? "field 254 (identifier) present without an identifier signature (255)"
		       : s->type == DIME_SIGNET_ORG
			   ? "fields after field 4 present without a full signature (253)"
			   : "fields after field 6 present without a full signature (253)";
		return DIME_LEVEL_NONE;
	}
	return level;
}

/* Every key must be a valid point (spec Part 5: "must provide a valid ... key"). */
static const char *
signet_keys_check(const struct dime_signet *s)
{
	for (size_t i = 0; i < s->n_fields; i++) {
		const struct dime_signet_field *f = &s->fields[i];

		if (f->id == 1 && !dime_ed25519_pub_valid(f->value.p + 1))
			return s->type == DIME_SIGNET_ORG
				   ? "field 1: POK is not a valid Ed25519 point"
				   : "field 1: signing key is not a valid Ed25519 point";
		/* A SOK with a reserved bit is ignored altogether (spec Part 5). */
		if (s->type == DIME_SIGNET_ORG && f->id == DIME_FID_ORG_SOK &&
		    !(f->value.p[0] & DIME_SOK_RESERVED) && !dime_ed25519_pub_valid(f->value.p + 2))
			return "field 2: SOK is not a valid Ed25519 point";
		if (((s->type == DIME_SIGNET_ORG && f->id == DIME_FID_ORG_ENC) ||
		     (s->type != DIME_SIGNET_ORG && f->id == DIME_FID_USER_ENC)) &&
		    !dime_secp_pub_valid(f->value.p))
			return s->type == DIME_SIGNET_ORG
				   ? "field 3: encryption key is not a valid secp256k1 point"
				   : "field 2: encryption key is not a valid secp256k1 point";
	}
	return NULL;
}

static int
signet_validate_org(struct dime_signet_verdict *v, const struct dime_signet *s,
		    const struct dime_signet_trust *t, enum dime_signet_level level)
{
	uint8_t pok[DIME_ED25519_PUB_BYTES];
	size_t k;

	if (t->poks == NULL || t->n_poks == 0)
		return signet_verdict(v, DIME_SIGNET_INVALID, level,
				      "no POK from the management record to check the org "
				      "signet against");
	if (dime_signet_signing_key(s, pok) != DIME_OK)
		return signet_verdict(v, DIME_SIGNET_INVALID, level, "missing field 1");
	for (k = 0; k < t->n_poks; k++)
		if (memcmp(t->poks[k], pok, sizeof(pok)) == 0)
			break;
	if (k == t->n_poks)
		return signet_verdict(v, DIME_SIGNET_INVALID, level,
				      "field 1: POK is not one of the management record's POKs");
	if (signet_verify_field(s, DIME_FID_ORG_CRYPTO_SIG, pok) != DIME_OK)
		return signet_verdict(v, DIME_SIGNET_INVALID, level,
				      "field 4: organizational crypto signature does not verify");
	if (level >= DIME_LEVEL_FULL && signet_verify_field(s, DIME_FID_FULL_SIG, pok) != DIME_OK)
		return signet_verdict(v, DIME_SIGNET_INVALID, level,
				      "field 253: full signature does not verify");
	if (level >= DIME_LEVEL_ID && signet_verify_field(s, DIME_FID_ID_SIG, pok) != DIME_OK)
		return signet_verdict(v, DIME_SIGNET_INVALID, level,
				      "field 255: identifier signature does not verify");
	return signet_verdict(v, DIME_SIGNET_VALID, level, "");
}

/* Custody (user field 4) against the previous signet's signing key, for user signets and
 * SSRs alike (WIRE.md's fix of the reference's SSR bug). */
static int
signet_custody(struct dime_signet_verdict *v, const struct dime_signet *s,
	       const struct dime_signet *prev, enum dime_signet_level level)
{
	uint8_t pub[DIME_ED25519_PUB_BYTES];
	int has = dime_signet_find(s, DIME_FID_USER_CUSTODY) != NULL;

	if (prev == NULL && !has)
		return signet_verdict(v, DIME_SIGNET_VALID, level, "");
	if (prev == NULL)
		return signet_verdict(v, DIME_SIGNET_BROKEN_CUSTODY, level,
				      "field 4: custody signature present but no previous signet "
				      "given");
	if (!has)
		return signet_verdict(v, DIME_SIGNET_BROKEN_CUSTODY, level,
				      "a previous signet was given but field 4 (custody signature) "
				      "is missing");
	if (prev->type == DIME_SIGNET_ORG || dime_signet_signing_key(prev, pub) != DIME_OK)
		return signet_verdict(
		    v, DIME_SIGNET_BROKEN_CUSTODY, level,
		    "the previous signet is not a user signet with a signing key");
	if (signet_verify_field(s, DIME_FID_USER_CUSTODY, pub) != DIME_OK)
		return signet_verdict(
		    v, DIME_SIGNET_BROKEN_CUSTODY, level,
		    "field 4: custody signature does not verify with the previous "
		    "signing key");
	return signet_verdict(v, DIME_SIGNET_VALID, level, "");
}

static int
signet_validate_user(struct dime_signet_verdict *v, const struct dime_signet *s,
		     const struct dime_signet_trust *t, enum dime_signet_level level)
{
	uint8_t pub[DIME_ED25519_PUB_BYTES];

	if (dime_signet_signing_key(s, pub) != DIME_OK ||
	    signet_verify_field(s, DIME_FID_USER_SELF_SIG, pub) != DIME_OK)
		return signet_verdict(v, DIME_SIGNET_INVALID, level,
				      "field 5: user signature does not verify");
	if (s->type == DIME_SIGNET_USER) {
		if (t->org == NULL)
			return signet_verdict(
			    v, DIME_SIGNET_INVALID, level,
			    "no org signet given to check the user signet against");
		if (t->org->type != DIME_SIGNET_ORG)
			return signet_verdict(v, DIME_SIGNET_INVALID, level,
					      "the signet given as the org is not an org signet");
		if (signet_verify_by_org(s, DIME_FID_USER_ORG_SIG, t->org) != DIME_OK)
			return signet_verdict(v, DIME_SIGNET_INVALID, level,
					      "field 6: organizational signature does not verify");
		if (level >= DIME_LEVEL_FULL &&
		    signet_verify_by_org(s, DIME_FID_FULL_SIG, t->org) != DIME_OK)
			return signet_verdict(v, DIME_SIGNET_INVALID, level,
					      "field 253: full signature does not verify");
		if (level >= DIME_LEVEL_ID &&
		    signet_verify_by_org(s, DIME_FID_ID_SIG, t->org) != DIME_OK)
			return signet_verdict(v, DIME_SIGNET_INVALID, level,
					      "field 255: identifier signature does not verify");
	}
	return signet_custody(v, s, t->previous, level);
}

int
dime_signet_validate(struct dime_signet_verdict *v, const struct dime_signet *s,
		     const struct dime_signet_trust *trust)
{
	static const struct dime_signet_trust none;
	enum dime_signet_level level;
	const char *why = "";

	if (trust == NULL)
		trust = &none;
	signet_verdict(v, DIME_SIGNET_INVALID, DIME_LEVEL_NONE, "invalid");
	if ((level = signet_structure(s, &why)) == DIME_LEVEL_NONE)
		return signet_verdict(v, DIME_SIGNET_INVALID, level, why);
	if ((why = signet_keys_check(s)) != NULL)
		return signet_verdict(v, DIME_SIGNET_INVALID, level, why);
	if (s->type == DIME_SIGNET_ORG)
		return signet_validate_org(v, s, trust, level);
	return signet_validate_user(v, s, trust, level);
}

/* Signet creation: org signets, SSRs, and the org's signature turning an SSR into a user
 * signet. One writer function per object, run twice (count, then write); each signature is
 * made by the keystore over the bytes already written (reference-format.md §3.4), and the
 * result goes through dime_signet_parse, so callers only ever see parsed signets. */

#include <stdlib.h>
#include <string.h>

#include "dime/keys.h"
#include "dime/signet.h"
#include "signet_int.h"
#include "wr.h"

#define CREATE_INFO_MIN 16u
#define CREATE_INFO_MAX 252u
#define CREATE_ID_MAX	255u /* field 254 has a 1-octet length (WIRE.md) */

/* ---- input checks ---- */

/* Decode one UTF-8 scalar at p[*i], strictly (no overlongs, surrogates or values over
 * U+10FFFF). Returns: the code point, or -1. */
static long
create_utf8_next(const uint8_t *p, size_t len, size_t *i)
{
	uint8_t c = p[*i];
	size_t n;
	long cp, min;

	if (c < 0x80) {
		(*i)++;
		return c;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		n = 1;
		cp = c & 0x1F;
		min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 2;
		cp = c & 0x0F;
		min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 3;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return -1;
	}
	if (n > len - *i - 1)
		return -1;
	for (size_t k = 1; k <= n; k++) {
		uint8_t d = p[*i + k];

		if ((d & 0xC0) != 0x80)
			return -1;
		cp = cp << 6 | (d & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return -1;
	*i += n + 1;
	return cp;
}

/* Unicode White_Space, plus every control character. */
static int
create_is_space_or_control(long cp)
{
	return cp < 0x20 || cp == 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0x1680 ||
	       (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
	       cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

/* Spec, "Undefined field layout": a name is 1-255 octets of valid UTF-8 without whitespace;
 * creators must not emit any other (we refuse rather than silently drop). */
static int
create_name_ok(struct dime_view name)
{
	size_t i = 0;

	if (name.len == 0 || name.len > 255 || name.p == NULL)
		return 0;
	while (i < name.len) {
		long cp = create_utf8_next(name.p, name.len, &i);

		if (cp < 0 || create_is_space_or_control(cp))
			return 0;
	}
	return 1;
}

static uint8_t
create_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

/* A host name that lower-cases to a DNS name: labels of 1-63 letters, digits and hyphens,
 * no hyphen at either end, at least two labels, a top-level label that is not all digits
 * (so never an IPv4 address), at most 253 characters. */
static int
create_domain_ok(const char *d, size_t len)
{
	size_t label = 0, labels = 0, digits = 0;

	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? d[i] : '.';

		if (c == '.') {
			if (label == 0 || d[i - 1] == '-' || label > 63)
				return 0;
			labels++;
			if (i == len && digits == label)
				return 0; /* numeric top-level label */
			label = digits = 0;
			continue;
		}
		if (c == '-' && label == 0)
			return 0;
		if (c >= '0' && c <= '9')
			digits++;
		else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-'))
			return 0;
		label++;
	}
	return labels >= 2;
}

/* RFC 5322 atext. */
static int
create_atext(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* local@domain: a dot-atom local part of 1-64 characters, then a host name as above. */
static int
create_address_ok(const char *a, size_t len)
{
	const char *at = memchr(a, '@', len);
	size_t local;

	if (at == NULL || len > CREATE_ID_MAX)
		return 0;
	local = (size_t)(at - a);
	if (local == 0 || local > 64 || a[0] == '.' || a[local - 1] == '.')
		return 0;
	for (size_t i = 0; i < local; i++) {
		if (a[i] == '.') {
			if (a[i + 1] == '.')
				return 0;
			continue;
		}
		if (!create_atext(a[i]))
			return 0;
	}
	return create_domain_ok(at + 1, len - local - 1);
}

/* Informational fields for signet type t: ids 16..252, lengths that fit the id's prefix,
 * valid 251 names, names only on 251, unique ids used once.
 * Returns: DIME_OK or DIME_E_INVALID. */
static int
create_info_check(enum dime_signet_type t, const struct dime_signet_info *info, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct dime_signet_info *f = &info[i];
		struct dime_signet_layout lay;
		size_t max;

		if (f->id < CREATE_INFO_MIN || f->id > CREATE_INFO_MAX ||
		    dime_signet_layout(&lay, t, f->id) != DIME_OK)
			return DIME_E_INVALID;
		if ((f->value.p == NULL && f->value.len > 0) ||
		    (f->name.p == NULL && f->name.len > 0))
			return DIME_E_INVALID;
		if (lay.undefined) {
			if (!create_name_ok(f->name) || f->value.len > 0xFFFFu)
				return DIME_E_INVALID;
			continue;
		}
		if (f->name.len > 0)
			return DIME_E_INVALID;
		max = lay.prefix == 1 ? 0xFFu : lay.prefix == 2 ? 0xFFFFu : 0xFFFFFFu;
		if (lay.prefix == 0 || f->value.len > max ||
		    (lay.size != 0 && f->value.len != lay.size))
			return DIME_E_INVALID;
		if (!lay.repeatable)
			for (size_t k = 0; k < i; k++)
				if (info[k].id == f->id)
					return DIME_E_INVALID;
	}
	return DIME_OK;
}

/* ---- writing ---- */

/* Signature field fid by key over every field written so far (header excluded): the
 * writer emits fields in ascending id order, so that is exactly §3.4's coverage. */
static void
create_sig(struct dime_wr *w, const struct dime_ks *ks, uint32_t key, uint8_t fid)
{
	uint8_t sig[DIME_SIG_BYTES];
	size_t at;
	int rc;

	dime_wr_u8(w, fid);
	if (w->p == NULL || w->err != DIME_OK) {
		dime_wr_fill(w, 0, DIME_SIG_BYTES); /* counting */
		return;
	}
	at = w->off - 1; /* the type octet of this field */
	rc = dime_ks_sign(ks, sig, key, w->p + DIME_SIGNET_HEADER_BYTES,
			  at - DIME_SIGNET_HEADER_BYTES);
	if (rc != DIME_OK)
		dime_wr_fail(w, rc);
	dime_wr_bytes(w, sig, sizeof(sig));
}

static void
create_ed_key(struct dime_wr *w, uint8_t fid, const uint8_t pub[DIME_ED25519_PUB_BYTES])
{
	dime_wr_u8(w, fid);
	dime_wr_u8(w, 1 + DIME_ED25519_PUB_BYTES);
	dime_wr_u8(w, DIME_SIGNET_ED_FORMAT);
	dime_wr_bytes(w, pub, DIME_ED25519_PUB_BYTES);
}

static void
create_secp_key(struct dime_wr *w, uint8_t fid, const uint8_t pub[DIME_SECP_PUB_BYTES])
{
	dime_wr_u8(w, fid);
	dime_wr_be16(w, DIME_SECP_PUB_BYTES);
	dime_wr_bytes(w, pub, DIME_SECP_PUB_BYTES);
}

static void
create_info_one(struct dime_wr *w, enum dime_signet_type t, const struct dime_signet_info *f)
{
	struct dime_signet_layout lay;

	if (dime_signet_layout(&lay, t, f->id) != DIME_OK) {
		dime_wr_fail(w, DIME_E_INVALID); /* create_info_check ran first */
		return;
	}
	dime_wr_u8(w, f->id);
	if (lay.undefined) {
		dime_wr_u8(w, (uint8_t)f->name.len);
		dime_wr_bytes(w, f->name.p, f->name.len);
		dime_wr_be16(w, (uint16_t)f->value.len);
	} else if (lay.prefix == 1) {
		dime_wr_u8(w, (uint8_t)f->value.len);
	} else if (lay.prefix == 2) {
		dime_wr_be16(w, (uint16_t)f->value.len);
	} else {
		dime_wr_be24(w, (uint32_t)f->value.len);
	}
	dime_wr_bytes(w, f->value.p, f->value.len);
}

/* Informational fields in ascending id order; fields with the same id (251, 21, ...) keep
 * the caller's order. Ids are 16..252, so a pass per id is cheap and needs no memory. */
static void
create_info_all(struct dime_wr *w, enum dime_signet_type t, const struct dime_signet_info *info,
		size_t n)
{
	for (unsigned id = CREATE_INFO_MIN; id <= CREATE_INFO_MAX && n > 0; id++)
		for (size_t i = 0; i < n; i++)
			if (info[i].id == id)
				create_info_one(w, t, &info[i]);
}

/* Field 254, lower-cased (the callers checked it is ASCII). */
static void
create_identifier(struct dime_wr *w, const char *id, size_t len)
{
	dime_wr_u8(w, DIME_FID_IDENTIFIER);
	dime_wr_u8(w, (uint8_t)len);
	for (size_t i = 0; i < len; i++)
		dime_wr_u8(w, create_lower((uint8_t)id[i]));
}

/* Informational fields, 253, 254 and 255, all signed by key. */
static void
create_tail(struct dime_wr *w, const struct dime_ks *ks, uint32_t key, enum dime_signet_type t,
	    const struct dime_signet_info *info, size_t n_info, const char *ident, size_t ident_len)
{
	create_info_all(w, t, info, n_info);
	create_sig(w, ks, key, DIME_FID_FULL_SIG);
	create_identifier(w, ident, ident_len);
	create_sig(w, ks, key, DIME_FID_ID_SIG);
}

/* What one creation writes. */
struct create_job {
	enum dime_signet_type type;
	const struct dime_ks *ks;
	/* org */
	uint32_t org_key;
	const struct dime_signet_sok_spec *soks;
	size_t n_soks;
	/* ssr */
	uint32_t user_key, prev_key;
	/* user: the SSR's fields (header excluded) and the signer */
	struct dime_view ssr_fields;
	uint32_t signer;
	/* org and user */
	const struct dime_signet_info *info;
	size_t n_info;
	const char *ident;
	size_t ident_len;
};

static void
create_write(struct dime_wr *w, const struct create_job *j)
{
	uint8_t pub[DIME_SECP_PUB_BYTES], ed[DIME_ED25519_PUB_BYTES];
	size_t len_at = 2;
	int rc;

	dime_wr_be16(w, (uint16_t)j->type);
	dime_wr_be24(w, 0); /* patched below */
	switch (j->type) {
	case DIME_SIGNET_ORG: /* reference-format.md §3.8: 1, 2, 3, 4, info, 253, 254, 255 */
		if ((rc = dime_ks_sign_pub(j->ks, ed, j->org_key)) != DIME_OK ||
		    (rc = dime_ks_enc_pub(j->ks, pub, j->org_key)) != DIME_OK) {
			dime_wr_fail(w, rc);
			break;
		}
		create_ed_key(w, DIME_FID_ORG_POK, ed);
		for (size_t i = 0; i < j->n_soks; i++) {
			if ((rc = dime_ks_sign_pub(j->ks, ed, j->soks[i].key_id)) != DIME_OK)
				dime_wr_fail(w, rc);
			dime_wr_u8(w, DIME_FID_ORG_SOK);
			dime_wr_u8(w, 2 + DIME_ED25519_PUB_BYTES);
			dime_wr_u8(w, j->soks[i].perms);
			dime_wr_u8(w, DIME_SIGNET_ED_FORMAT);
			dime_wr_bytes(w, ed, sizeof(ed));
		}
		create_secp_key(w, DIME_FID_ORG_ENC, pub);
		create_sig(w, j->ks, j->org_key, DIME_FID_ORG_CRYPTO_SIG);
		create_tail(w, j->ks, j->org_key, j->type, j->info, j->n_info, j->ident,
			    j->ident_len);
		break;
	case DIME_SIGNET_SSR: /* 1, 2, optional custody 4 (previous key), self-signature 5 */
		if ((rc = dime_ks_sign_pub(j->ks, ed, j->user_key)) != DIME_OK ||
		    (rc = dime_ks_enc_pub(j->ks, pub, j->user_key)) != DIME_OK) {
			dime_wr_fail(w, rc);
			break;
		}
		create_ed_key(w, DIME_FID_USER_SIGN, ed);
		create_secp_key(w, DIME_FID_USER_ENC, pub);
		if (j->prev_key != DIME_KS_NONE)
			create_sig(w, j->ks, j->prev_key, DIME_FID_USER_CUSTODY);
		create_sig(w, j->ks, j->user_key, DIME_FID_USER_SELF_SIG);
		break;
	case DIME_SIGNET_USER: /* the SSR's 1-5, then 6 over them, info, 253, 254, 255 */
		dime_wr_bytes(w, j->ssr_fields.p, j->ssr_fields.len);
		create_sig(w, j->ks, j->signer, DIME_FID_USER_ORG_SIG);
		create_tail(w, j->ks, j->signer, j->type, j->info, j->n_info, j->ident,
			    j->ident_len);
		break;
	}
	if (w->err == DIME_OK && w->off - DIME_SIGNET_HEADER_BYTES > 0xFFFFFFu)
		dime_wr_fail(w, DIME_E_LIMIT);
	if (w->err == DIME_OK)
		dime_wr_patch_be24(w, len_at, (uint32_t)(w->off - DIME_SIGNET_HEADER_BYTES));
}

/* Count, allocate, write, parse. Returns: DIME_OK or the first error. Out: *out. */
static int
create_run(struct dime_signet **out, const struct create_job *j)
{
	struct dime_wr w;
	uint8_t *buf = NULL;
	size_t len;
	const char *why = "";
	int rc;

	dime_wr_init(&w, NULL, 0);
	create_write(&w, j);
	if ((rc = w.err) != DIME_OK)
		goto out;
	len = w.off;
	rc = DIME_E_NOMEM;
	if ((buf = malloc(len)) == NULL)
		goto out;
	dime_wr_init(&w, buf, len);
	create_write(&w, j);
	if ((rc = w.err) != DIME_OK)
		goto out;
	DIME_ASSERT(w.off == len);
	rc = dime_signet_parse(out, &why, buf, len);
	/* Our own bytes must parse; anything else is a writer bug, not bad input. */
	DIME_DEBUG_ASSERT(rc == DIME_OK || rc == DIME_E_NOMEM);
out:
	free(buf);
	return rc;
}

/* Returns: DIME_OK, DIME_E_NOTFOUND (no such id) or DIME_E_INVALID (another kind). */
static int
create_key_kind(const struct dime_ks *ks, uint32_t id, enum dime_key_kind want)
{
	enum dime_key_kind k;

	if (dime_ks_kind(ks, &k, id) != DIME_OK)
		return DIME_E_NOTFOUND;
	return k == want ? DIME_OK : DIME_E_INVALID;
}

int
dime_signet_org_create(struct dime_signet **out, const struct dime_ks *ks, uint32_t org_key,
		       const struct dime_signet_sok_spec *soks, size_t n_soks,
		       const struct dime_signet_info *info, size_t n_info, const char *domain)
{
	struct create_job j;
	int rc;

	*out = NULL;
	memset(&j, 0, sizeof(j));
	if (ks == NULL || domain == NULL || (soks == NULL && n_soks > 0) ||
	    (info == NULL && n_info > 0))
		return DIME_E_INVALID;
	if ((rc = create_key_kind(ks, org_key, DIME_KEY_ORG)) != DIME_OK)
		return rc;
	for (size_t i = 0; i < n_soks; i++) {
		if ((rc = create_key_kind(ks, soks[i].key_id, DIME_KEY_SIGN)) != DIME_OK)
			return rc;
		if (soks[i].perms & DIME_SOK_RESERVED)
			return DIME_E_INVALID;
	}
	if (!create_domain_ok(domain, strlen(domain)))
		return DIME_E_INVALID;
	if ((rc = create_info_check(DIME_SIGNET_ORG, info, n_info)) != DIME_OK)
		return rc;
	j.type = DIME_SIGNET_ORG;
	j.ks = ks;
	j.org_key = org_key;
	j.soks = soks;
	j.n_soks = n_soks;
	j.info = info;
	j.n_info = n_info;
	j.ident = domain;
	j.ident_len = strlen(domain);
	return create_run(out, &j);
}

int
dime_signet_ssr_create(struct dime_signet **out, const struct dime_ks *ks, uint32_t user_key,
		       uint32_t prev_key)
{
	struct create_job j;
	enum dime_key_kind k;
	int rc;

	*out = NULL;
	memset(&j, 0, sizeof(j));
	if (ks == NULL)
		return DIME_E_INVALID;
	if ((rc = create_key_kind(ks, user_key, DIME_KEY_USER)) != DIME_OK)
		return rc;
	/* The previous signing key: an old user key, or its seed alone. */
	if (prev_key != DIME_KS_NONE) {
		if (dime_ks_kind(ks, &k, prev_key) != DIME_OK)
			return DIME_E_NOTFOUND;
		if ((k != DIME_KEY_USER && k != DIME_KEY_SIGN) || prev_key == user_key)
			return DIME_E_INVALID;
	}
	j.type = DIME_SIGNET_SSR;
	j.ks = ks;
	j.user_key = user_key;
	j.prev_key = prev_key;
	return create_run(out, &j);
}

/* May signer sign user signets for org? The POK itself, or a SOK listed with permission bit 1
 * and no reserved bit. Returns: DIME_OK or DIME_E_INVALID. */
static int
create_signer_ok(const struct dime_ks *ks, uint32_t signer, const struct dime_signet *org)
{
	uint8_t pub[DIME_ED25519_PUB_BYTES], cand[DIME_ED25519_PUB_BYTES], perms = 0;
	enum dime_key_kind k;
	size_t n;

	if (dime_ks_kind(ks, &k, signer) != DIME_OK)
		return DIME_E_NOTFOUND;
	if (k != DIME_KEY_ORG && k != DIME_KEY_SIGN)
		return DIME_E_INVALID;
	if (org == NULL)
		return DIME_OK;
	if (dime_signet_type(org) != DIME_SIGNET_ORG ||
	    dime_ks_sign_pub(ks, pub, signer) != DIME_OK)
		return DIME_E_INVALID;
	if (dime_signet_signing_key(org, cand) == DIME_OK && memcmp(cand, pub, sizeof(pub)) == 0)
		return DIME_OK;
	n = dime_signet_n_soks(org);
	for (size_t i = 0; i < n; i++) {
		if (dime_signet_sok(org, &perms, cand, i) != DIME_OK)
			break;
		if (memcmp(cand, pub, sizeof(pub)) == 0 && (perms & DIME_SOK_SIGNETS) &&
		    !(perms & DIME_SOK_RESERVED))
			return DIME_OK;
	}
	return DIME_E_INVALID;
}

int
dime_signet_ssr_sign(struct dime_signet **out, const struct dime_signet *ssr,
		     const struct dime_signet *previous, const struct dime_signet *org,
		     const struct dime_ks *ks, uint32_t signer_key,
		     const struct dime_signet_info *info, size_t n_info, const char *address)
{
	struct dime_signet_trust trust;
	struct dime_signet_verdict v;
	struct create_job j;
	struct dime_view b;
	int rc;

	*out = NULL;
	memset(&j, 0, sizeof(j));
	if (ssr == NULL || ks == NULL || address == NULL || (info == NULL && n_info > 0) ||
	    dime_signet_type(ssr) != DIME_SIGNET_SSR)
		return DIME_E_INVALID;
	/* SSR field 3 has a 1-octet length, user field 3 a 2-octet one (reference-format.md
	 * §3.2): copied under the user magic it would read differently, and re-encoding it
	 * would break the self-signature. */
	if (dime_signet_find(ssr, DIME_FID_USER_ALT_ENC) != NULL)
		return DIME_E_INVALID;
	if ((rc = create_signer_ok(ks, signer_key, org)) != DIME_OK)
		return rc;
	if (!create_address_ok(address, strlen(address)))
		return DIME_E_INVALID;
	if ((rc = create_info_check(DIME_SIGNET_USER, info, n_info)) != DIME_OK)
		return rc;
	/* The self-signature always; custody when the previous signet is given. Without one, a
	 * rotated SSR's custody stays for consumers to check (BROKEN_CUSTODY here only means
	 * that nothing was given to check it against: the self-signature passed). */
	memset(&trust, 0, sizeof(trust));
	trust.previous = previous;
	rc = dime_signet_validate(&v, ssr, &trust);
	if (!(rc == DIME_OK || v.kind == DIME_SIGNET_VALID ||
	      (previous == NULL && v.kind == DIME_SIGNET_BROKEN_CUSTODY &&
	       dime_signet_find(ssr, DIME_FID_USER_CUSTODY) != NULL)))
		return DIME_E_BADSIG;
	b = dime_signet_bytes(ssr);
	j.type = DIME_SIGNET_USER;
	j.ks = ks;
	j.ssr_fields.p = b.p + DIME_SIGNET_HEADER_BYTES;
	j.ssr_fields.len = b.len - DIME_SIGNET_HEADER_BYTES;
	j.signer = signer_key;
	j.info = info;
	j.n_info = n_info;
	j.ident = address;
	j.ident_len = strlen(address);
	return create_run(out, &j);
}

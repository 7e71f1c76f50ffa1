/* The keystore: private keys in one sodium_malloc'd slot array (guard pages, mlock, read-only
 * between mutations), key ids 1..n, and the reference's key files (reference-format.md §4)
 * plus genrec's ED25519 PRIVATE KEY armor. Secrets never leave this file except through
 * dime_ks_export. */

#include <string.h>

#include <sodium.h>

#include "dime/codec.h"
#include "dime/keys.h"
#include "rd.h"
#include "wr.h"

#define KS_MAGIC_ORG	1952u
#define KS_MAGIC_USER	2013u
#define KS_FID_SIGN	1u
#define KS_FID_ENC_ORG	3u
#define KS_FID_ENC_USER 2u
/* [01][20][32] [fid][00 20][32]: what follows the 5-byte header. */
#define KS_BODY_BYTES (1u + 1u + 32u + 1u + 2u + 32u)
#define KS_FILE_BYTES (5u + KS_BODY_BYTES)
/* PRIME (magma) writes the encryption key with a 1-octet length: one byte shorter. */
#define KS_PRIME_BODY_BYTES (KS_BODY_BYTES - 1u)
#define KS_FIRST_CAP	    8u

#define KS_LABEL_ORG  "ORGANIZATIONAL KEY"
#define KS_LABEL_USER "USER KEY"
#define KS_LABEL_SIGN "ED25519 PRIVATE KEY"

_Static_assert(KS_FILE_BYTES == 74, "key file size (reference-format.md §4)");
_Static_assert(DIME_ED25519_SEED_BYTES == 32 && DIME_SECP_PRIV_BYTES == 32, "key sizes");

/* One key. Lives only inside the secure slot array. kind 0: unused. */
struct ks_slot {
	uint32_t kind;
	uint8_t seed[DIME_ED25519_SEED_BYTES];
	uint8_t sign_pub[DIME_ED25519_PUB_BYTES];
	uint8_t enc_priv[DIME_SECP_PRIV_BYTES];
	uint8_t enc_pub[DIME_SECP_PUB_BYTES];
};

/* Invariant: slots[0..n) hold valid keys (id = index + 1), slots[n..cap) are zero; the array
 * is read-only except inside a mutating call. */
struct dime_ks {
	struct ks_slot *slots; /* sodium_malloc'd, cap entries; NULL when cap == 0 */
	size_t n, cap;
	/* remote: slots hold kinds and public halves only (seed and enc_priv stay zero), and
	 * every private operation goes to be */
	int remote;
	struct dime_ks_backend be;
};

int
dime_ks_new(struct dime_ks **out)
{
	struct dime_ks *ks;

	*out = NULL;
	/* The handle holds no secret; only the slot array needs secure memory. */
	ks = sodium_malloc(sizeof(*ks));
	if (ks == NULL)
		return DIME_E_NOMEM;
	memset(ks, 0, sizeof(*ks));
	*out = ks;
	return DIME_OK;
}

int
dime_ks_new_remote(struct dime_ks **out, const struct dime_ks_backend *backend)
{
	int rc;

	*out = NULL;
	if (backend == NULL || backend->sign == NULL || backend->ecdh_batch == NULL)
		return DIME_E_INVALID;
	if ((rc = dime_ks_new(out)) != DIME_OK)
		return rc;
	(*out)->remote = 1;
	(*out)->be = *backend;
	return DIME_OK;
}

int
dime_ks_is_remote(const struct dime_ks *ks)
{
	return ks != NULL && ks->remote;
}

void
dime_ks_free(struct dime_ks *ks)
{
	if (ks == NULL)
		return;
	if (ks->slots != NULL)
		sodium_free(ks->slots); /* makes it writable, wipes, unmaps */
	sodium_free(ks);
}

static const struct ks_slot *
ks_get(const struct dime_ks *ks, uint32_t id)
{
	if (ks == NULL || id == DIME_KS_NONE || (size_t)id > ks->n)
		return NULL;
	return &ks->slots[id - 1];
}

/* Make room for one more key and return the (zeroed, writable) slot for it; the caller
 * finishes with ks_commit or ks_abandon. Returns NULL on failure. */
static struct ks_slot *
ks_reserve(struct dime_ks *ks)
{
	struct ks_slot *grown;
	size_t cap;

	if (ks->n >= (size_t)UINT32_MAX - 1)
		return NULL;
	if (ks->n < ks->cap) {
		if (sodium_mprotect_readwrite(ks->slots) != 0)
			return NULL;
		return &ks->slots[ks->n];
	}
	cap = ks->cap == 0 ? KS_FIRST_CAP : ks->cap * 2;
	if (cap > (size_t)UINT32_MAX - 1 || cap > SIZE_MAX / sizeof(struct ks_slot))
		return NULL;
	grown = sodium_malloc(cap * sizeof(struct ks_slot));
	if (grown == NULL)
		return NULL;
	memset(grown, 0, cap * sizeof(struct ks_slot));
	if (ks->n > 0)
		memcpy(grown, ks->slots, ks->n * sizeof(struct ks_slot));
	if (ks->slots != NULL)
		sodium_free(ks->slots);
	ks->slots = grown;
	ks->cap = cap;
	return &ks->slots[ks->n];
}

static uint32_t
ks_commit(struct dime_ks *ks)
{
	ks->n++;
	(void)sodium_mprotect_readonly(ks->slots);
	return (uint32_t)ks->n;
}

static void
ks_abandon(struct dime_ks *ks, struct ks_slot *k)
{
	if (k != NULL)
		dime_wipe(k, sizeof(*k));
	if (ks->slots != NULL)
		(void)sodium_mprotect_readonly(ks->slots);
}

int
dime_ks_add_public(struct dime_ks *ks, uint32_t *id, enum dime_key_kind kind,
		   const uint8_t sign_pub[DIME_ED25519_PUB_BYTES], const uint8_t *enc_pub)
{
	struct ks_slot *k;

	*id = DIME_KS_NONE;
	if (ks == NULL || !ks->remote || sign_pub == NULL ||
	    (kind != DIME_KEY_ORG && kind != DIME_KEY_USER && kind != DIME_KEY_SIGN))
		return DIME_E_INVALID;
	/* a compressed point; the backend's ECDH checks it fully */
	if (kind != DIME_KEY_SIGN && (enc_pub == NULL || (enc_pub[0] != 2 && enc_pub[0] != 3)))
		return DIME_E_INVALID;
	if ((k = ks_reserve(ks)) == NULL)
		return DIME_E_NOMEM;
	k->kind = (uint32_t)kind;
	memcpy(k->sign_pub, sign_pub, sizeof(k->sign_pub));
	if (kind != DIME_KEY_SIGN)
		memcpy(k->enc_pub, enc_pub, sizeof(k->enc_pub));
	*id = ks_commit(ks);
	return DIME_OK;
}

/* Public halves from the private ones. Returns: DIME_OK or DIME_E_MALFORMED (bad scalar). */
static int
ks_derive(struct ks_slot *k)
{
	int rc;

	if ((rc = dime_ed25519_pub(k->sign_pub, k->seed)) != DIME_OK)
		return rc;
	if (k->kind == DIME_KEY_SIGN)
		return DIME_OK;
	return dime_secp_pub(k->enc_pub, k->enc_priv);
}

/* A 32-byte binary input is a raw Ed25519 seed unless it begins like a key file (a truncated
 * one). Generated seeds never look like that, so the binary SIGN form is unambiguous for them. */
static int
ks_looks_like_keyfile(const uint8_t *in, size_t len)
{
	uint32_t magic, blen;

	if (len < 5)
		return 0;
	magic = (uint32_t)in[0] << 8 | in[1];
	blen = (uint32_t)in[2] << 16 | (uint32_t)in[3] << 8 | in[4];
	return (magic == KS_MAGIC_ORG || magic == KS_MAGIC_USER) && blen == KS_BODY_BYTES;
}

/* Strict parse of a binary key file into k (reference-format.md §4). want_magic 0: either. */
static int
ks_parse_keyfile(struct ks_slot *k, const char **why, const uint8_t *in, size_t len,
		 uint32_t want_magic)
{
	struct dime_rd r, body;
	uint32_t magic, blen, enc_fid;
	int rc;

	dime_rd_init(&r, in, len);
	magic = dime_rd_be16(&r);
	blen = dime_rd_be24(&r);
	if (r.err != DIME_OK) {
		*why = "key file header truncated";
		return r.err;
	}
	if (magic != KS_MAGIC_ORG && magic != KS_MAGIC_USER) {
		*why = "not a key file (unknown magic)";
		return DIME_E_MALFORMED;
	}
	if (want_magic != 0 && magic != want_magic) {
		*why = "armor label does not match the key file magic";
		return DIME_E_MALFORMED;
	}
	/* The reference demands length == input length - 5 exactly. */
	if (blen > dime_rd_left(&r)) {
		*why = "key file truncated";
		return DIME_E_TRUNCATED;
	}
	if (blen < dime_rd_left(&r)) {
		*why = "bytes after the key file";
		return DIME_E_TRAILING;
	}
	if (blen == KS_PRIME_BODY_BYTES) {
		*why =
		    "PRIME (magma) key file: its 1-octet encryption key length is not the libdime "
		    "format";
		return DIME_E_MALFORMED;
	}
	if (blen != KS_BODY_BYTES) {
		*why = "key file length is not 69";
		return DIME_E_MALFORMED;
	}
	dime_rd_sub(&r, &body, blen);
	enc_fid = magic == KS_MAGIC_ORG ? KS_FID_ENC_ORG : KS_FID_ENC_USER;
	*why = "key file fields malformed";
	if (dime_rd_u8(&body) != KS_FID_SIGN || dime_rd_u8(&body) != DIME_ED25519_SEED_BYTES) {
		*why = "signing key field is not [01][20]";
		return DIME_E_MALFORMED;
	}
	dime_rd_copy(&body, k->seed, sizeof(k->seed));
	if (dime_rd_u8(&body) != enc_fid) {
		*why = magic == KS_MAGIC_ORG ? "encryption key field id is not 3"
					     : "encryption key field id is not 2";
		return DIME_E_MALFORMED;
	}
	if (dime_rd_be16(&body) != DIME_SECP_PRIV_BYTES) {
		*why = "encryption key length is not [00 20]";
		return DIME_E_MALFORMED;
	}
	dime_rd_copy(&body, k->enc_priv, sizeof(k->enc_priv));
	if ((rc = dime_rd_finish(&body)) != DIME_OK)
		return rc; /* cannot happen: blen was checked */
	k->kind = magic == KS_MAGIC_ORG ? DIME_KEY_ORG : DIME_KEY_USER;
	if ((rc = ks_derive(k)) != DIME_OK) {
		*why = "encryption scalar is zero or not below the group order";
		return rc == DIME_E_MALFORMED ? rc : DIME_E_CRYPTO;
	}
	*why = "";
	return DIME_OK;
}

static int
ks_parse_seed(struct ks_slot *k, const char **why, const uint8_t *in, size_t len)
{
	if (len != DIME_ED25519_SEED_BYTES) {
		*why = "an ED25519 PRIVATE KEY holds exactly 32 bytes";
		return len < DIME_ED25519_SEED_BYTES ? DIME_E_TRUNCATED : DIME_E_TRAILING;
	}
	memcpy(k->seed, in, DIME_ED25519_SEED_BYTES);
	k->kind = DIME_KEY_SIGN;
	*why = "";
	return ks_derive(k);
}

static int
ks_only_space(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return 0;
	return 1;
}

static int
ks_parse_armor(struct ks_slot *k, const char **why, const uint8_t *in, size_t len)
{
	uint8_t bin[DIME_KEYFILE_MAX_BYTES];
	char label[DIME_ARMOR_LABEL_MAX];
	size_t bin_len = 0, used = 0;
	int rc;

	rc = dime_armor_decode(label, bin, sizeof(bin), &bin_len, &used, in, len);
	if (rc != DIME_OK) {
		*why = rc == DIME_E_BADSIG ? "armor CRC-24 mismatch" : "bad armor";
		goto out;
	}
	if (!ks_only_space(in + used, len - used)) {
		*why = "bytes after the armor END line";
		rc = DIME_E_TRAILING;
		goto out;
	}
	if (strcmp(label, KS_LABEL_ORG) == 0)
		rc = ks_parse_keyfile(k, why, bin, bin_len, KS_MAGIC_ORG);
	else if (strcmp(label, KS_LABEL_USER) == 0)
		rc = ks_parse_keyfile(k, why, bin, bin_len, KS_MAGIC_USER);
	else if (strcmp(label, KS_LABEL_SIGN) == 0)
		rc = ks_parse_seed(k, why, bin, bin_len);
	else {
		*why = "armor label is not a key label";
		rc = DIME_E_MALFORMED;
	}
out:
	dime_wipe(bin, sizeof(bin));
	return rc;
}

int
dime_ks_load_why(struct dime_ks *ks, uint32_t *id, const char **why, const uint8_t *in,
		 size_t in_len)
{
	struct ks_slot *k = NULL;
	const char *w = "";
	int rc;

	*id = DIME_KS_NONE;
	if (ks == NULL || (in == NULL && in_len > 0) || ks->remote) {
		w = ks != NULL && ks->remote ? "a remote keystore loads no key files"
					     : "no keystore or input";
		rc = DIME_E_INVALID;
		goto out;
	}
	if (in_len > DIME_KEYFILE_MAX_BYTES) {
		w = "key file larger than DIME_KEYFILE_MAX_BYTES";
		rc = DIME_E_LIMIT;
		goto out;
	}
	if ((k = ks_reserve(ks)) == NULL) {
		w = "out of secure memory";
		rc = DIME_E_NOMEM;
		goto out;
	}
	if (in_len > 0 && dime_armor_detect(in, in_len))
		rc = ks_parse_armor(k, &w, in, in_len);
	else if (in_len == DIME_ED25519_SEED_BYTES && !ks_looks_like_keyfile(in, in_len))
		rc = ks_parse_seed(k, &w, in, in_len);
	else
		rc = ks_parse_keyfile(k, &w, in, in_len, 0);
out:
	if (k != NULL) {
		if (rc == DIME_OK)
			*id = ks_commit(ks);
		else
			ks_abandon(ks, k);
	}
	if (why != NULL)
		*why = rc == DIME_OK ? "" : w;
	return rc;
}

int
dime_ks_load(struct dime_ks *ks, uint32_t *id, const uint8_t *in, size_t in_len)
{
	return dime_ks_load_why(ks, id, NULL, in, in_len);
}

int
dime_ks_generate(struct dime_ks *ks, uint32_t *id, enum dime_key_kind kind)
{
	struct ks_slot *k = NULL;
	int rc = DIME_E_INVALID;

	*id = DIME_KS_NONE;
	if (ks == NULL || ks->remote ||
	    (kind != DIME_KEY_ORG && kind != DIME_KEY_USER && kind != DIME_KEY_SIGN))
		goto out;
	rc = DIME_E_NOMEM;
	if ((k = ks_reserve(ks)) == NULL)
		goto out;
	rc = DIME_E_CRYPTO;
	k->kind = (uint32_t)kind;
	/* Keep the 32-byte binary SIGN form unambiguous (see ks_looks_like_keyfile). */
	do
		dime_random(k->seed, sizeof(k->seed));
	while (ks_looks_like_keyfile(k->seed, sizeof(k->seed)));
	if (dime_ed25519_pub(k->sign_pub, k->seed) != DIME_OK)
		goto out;
	if (kind != DIME_KEY_SIGN && dime_secp_keygen(k->enc_priv, k->enc_pub) != DIME_OK)
		goto out;
	rc = DIME_OK;
out:
	if (k != NULL) {
		if (rc == DIME_OK)
			*id = ks_commit(ks);
		else
			ks_abandon(ks, k);
	}
	return rc;
}

/* Serialize k into w in the binary form (key file, or the raw seed for DIME_KEY_SIGN). */
static void
ks_write_bin(struct dime_wr *w, const struct ks_slot *k)
{
	if (k->kind == DIME_KEY_SIGN) {
		dime_wr_bytes(w, k->seed, sizeof(k->seed));
		return;
	}
	dime_wr_be16(w, k->kind == DIME_KEY_ORG ? KS_MAGIC_ORG : KS_MAGIC_USER);
	dime_wr_be24(w, KS_BODY_BYTES);
	dime_wr_u8(w, KS_FID_SIGN);
	dime_wr_u8(w, DIME_ED25519_SEED_BYTES);
	dime_wr_bytes(w, k->seed, sizeof(k->seed));
	dime_wr_u8(w, k->kind == DIME_KEY_ORG ? KS_FID_ENC_ORG : KS_FID_ENC_USER);
	dime_wr_be16(w, DIME_SECP_PRIV_BYTES);
	dime_wr_bytes(w, k->enc_priv, sizeof(k->enc_priv));
}

int
dime_ks_export(const struct dime_ks *ks, uint8_t *out, size_t out_cap, size_t *out_len, uint32_t id,
	       int armored)
{
	const struct ks_slot *k = ks_get(ks, id);
	uint8_t bin[KS_FILE_BYTES];
	struct dime_wr w;
	const char *label;
	size_t need;
	int rc = DIME_E_NOTFOUND;

	*out_len = 0;
	if (k == NULL)
		goto out;
	if (ks->remote) {
		rc = DIME_E_INVALID;
		goto out;
	}
	dime_wr_init(&w, bin, sizeof(bin));
	ks_write_bin(&w, k);
	DIME_ASSERT(w.err == DIME_OK);
	label = k->kind == DIME_KEY_ORG	   ? KS_LABEL_ORG
		: k->kind == DIME_KEY_USER ? KS_LABEL_USER
					   : KS_LABEL_SIGN;
	need = armored ? dime_armor_encoded_len(label, w.off, DIME_ARMOR_CRC) : w.off;
	if (out == NULL) {
		*out_len = need;
		rc = DIME_OK;
		goto out;
	}
	rc = DIME_E_NOSPACE;
	if (armored) {
		/* The armor is NUL-terminated, like dime_signet_armor. */
		if (out_cap < need + 1)
			goto out;
		rc = dime_armor_encode((char *)out, out_cap, out_len, label, bin, w.off,
				       DIME_ARMOR_CRC);
		if (rc != DIME_OK)
			goto out;
		/* The encoder stages the base64 at the tail of out: leave none of it behind. */
		if (out_cap > need + 1)
			dime_wipe(out + need + 1, out_cap - need - 1);
	} else {
		if (out_cap < need)
			goto out;
		memcpy(out, bin, need);
		*out_len = need;
	}
	rc = DIME_OK;
out:
	dime_wipe(bin, sizeof(bin));
	if (rc != DIME_OK) {
		*out_len = 0;
		if (out != NULL)
			dime_wipe(out, out_cap);
	}
	return rc;
}

int
dime_ks_kind(const struct dime_ks *ks, enum dime_key_kind *kind, uint32_t id)
{
	const struct ks_slot *k = ks_get(ks, id);

	*kind = (enum dime_key_kind)0; /* no kind is 0 */
	if (k == NULL)
		return DIME_E_NOTFOUND;
	*kind = (enum dime_key_kind)k->kind;
	return DIME_OK;
}

int
dime_ks_sign_pub(const struct dime_ks *ks, uint8_t pub[DIME_ED25519_PUB_BYTES], uint32_t id)
{
	const struct ks_slot *k = ks_get(ks, id);

	memset(pub, 0, DIME_ED25519_PUB_BYTES);
	if (k == NULL)
		return DIME_E_NOTFOUND;
	memcpy(pub, k->sign_pub, DIME_ED25519_PUB_BYTES);
	return DIME_OK;
}

int
dime_ks_enc_pub(const struct dime_ks *ks, uint8_t pub[DIME_SECP_PUB_BYTES], uint32_t id)
{
	const struct ks_slot *k = ks_get(ks, id);

	memset(pub, 0, DIME_SECP_PUB_BYTES);
	if (k == NULL)
		return DIME_E_NOTFOUND;
	if (k->kind == DIME_KEY_SIGN)
		return DIME_E_INVALID;
	memcpy(pub, k->enc_pub, DIME_SECP_PUB_BYTES);
	return DIME_OK;
}

int
dime_ks_sign(const struct dime_ks *ks, uint8_t sig[DIME_SIG_BYTES], uint32_t id, const uint8_t *msg,
	     size_t msg_len)
{
	const struct ks_slot *k = ks_get(ks, id);

	memset(sig, 0, DIME_SIG_BYTES);
	if (k == NULL)
		return DIME_E_NOTFOUND;
	if (msg == NULL && msg_len > 0)
		return DIME_E_INVALID;
	if (ks->remote)
		return ks->be.sign(ks->be.ctx, sig, id, msg, msg_len);
	/* the slot's sign_pub was derived from its seed when the key was made or loaded */
	return dime_ed25519_sign_kp(sig, k->seed, k->sign_pub, msg, msg_len);
}

int
dime_ks_ecdh(const struct dime_ks *ks, uint8_t x[DIME_ECDH_BYTES], uint32_t id,
	     const uint8_t peer[DIME_SECP_PUB_BYTES])
{
	const struct ks_slot *k = ks_get(ks, id);

	memset(x, 0, DIME_ECDH_BYTES);
	if (k == NULL)
		return DIME_E_NOTFOUND;
	if (k->kind == DIME_KEY_SIGN)
		return DIME_E_INVALID;
	if (ks->remote) {
		int rc1, rc = ks->be.ecdh_batch(ks->be.ctx, id,
						(const uint8_t(*)[DIME_SECP_PUB_BYTES])peer, 1,
						(uint8_t(*)[DIME_ECDH_BYTES])x, &rc1);

		return rc == DIME_OK ? rc1 : rc;
	}
	return dime_secp_ecdh_x(x, k->enc_priv, peer);
}

int
dime_ks_ecdh_batch(const struct dime_ks *ks, uint32_t key_id,
		   const uint8_t (*pubs)[DIME_SECP_PUB_BYTES], size_t n,
		   uint8_t (*x)[DIME_ECDH_BYTES], int *rc)
{
	const struct ks_slot *k = ks_get(ks, key_id);
	int first = DIME_OK;

	if (k != NULL && k->kind != DIME_KEY_SIGN && ks->remote && n > 0) {
		first = ks->be.ecdh_batch(ks->be.ctx, key_id, pubs, n, x, rc);
		size_t carried = 0;

		/* first is the first failing rc[i] (a bad point fails that item alone), unless no
		 * item carries it: then it is the backend's own failure (AGAIN: key process down),
		 * and every item's */
		for (size_t i = 0; i < n; i++)
			carried += rc[i] == first;
		for (size_t i = 0; i < n && first != DIME_OK && carried == 0; i++)
			if (rc[i] == DIME_OK) {
				rc[i] = first;
				memset(x[i], 0, DIME_ECDH_BYTES);
			}
		return first;
	}
	for (size_t i = 0; i < n; i++) {
		memset(x[i], 0, DIME_ECDH_BYTES);
		if (k == NULL)
			rc[i] = DIME_E_NOTFOUND;
		else if (k->kind == DIME_KEY_SIGN)
			rc[i] = DIME_E_INVALID;
		else
			rc[i] = dime_secp_ecdh_x(x[i], k->enc_priv, pubs[i]);
		if (rc[i] != DIME_OK && first == DIME_OK)
			first = rc[i];
	}
	return first;
}

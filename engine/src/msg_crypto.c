/* D/MIME cryptography: KEK derivation, keyslots, payload decryption, and what each signature
 * covers (reference-format.md §5, §6.3, §6.6 as WIRE.md settles it). Private keys are reached
 * only through the keystore; every stack copy of a secret is wiped. */

#include <stdlib.h>
#include <string.h>

#include "dime/crypto.h"
#include "dime/keys.h"
#include "dime/signet.h"
#include "msg_int.h"

/* KEK = SHA-512(ECDH x): iv = H[0:16] ^ H[16:32], key = H[32:64] (reference-format §5). */
void
msg_kek_derive(struct msg_kek *k, const uint8_t x[DIME_ECDH_BYTES])
{
	uint8_t h[DIME_SHA512_BYTES];

	dime_sha512(h, x, DIME_ECDH_BYTES);
	for (size_t i = 0; i < DIME_AES_BLOCK_BYTES; i++)
		k->iv[i] = (uint8_t)(h[i] ^ h[16 + i]);
	memcpy(k->key, h + 32, DIME_AES_KEY_BYTES);
	k->rk = NULL;
	dime_wipe(h, sizeof(h));
}

int
msg_kek_for(const struct dime_ks *ks, struct msg_kek *k, uint32_t key_id,
	    const uint8_t eph[DIME_SECP_PUB_BYTES])
{
	uint8_t x[DIME_ECDH_BYTES];
	int rc;

	memset(k, 0, sizeof(*k));
	rc = dime_ks_ecdh(ks, x, key_id, eph);
	if (rc == DIME_OK)
		msg_kek_derive(k, x);
	dime_wipe(x, sizeof(x));
	return rc;
}

int
msg_slot_index(uint8_t type, uint8_t actor)
{
	uint8_t actors = dime_msg_chunk_actors(type);

	if ((actors & actor) == 0)
		return -1;
	return __builtin_popcount((unsigned)actors & ((unsigned)actor - 1u));
}

int
msg_kek_for_actor(struct msg_op *op, const struct dime_ks *ks, struct msg_kek *k, uint32_t key_id,
		  const struct msg_parsed *m, uint8_t actor)
{
	int rc;

	if (!m->rk.present || actor != DIME_ACTOR_RECIPIENT)
		return msg_op_kek(op, ks, k, key_id, m->eph);
	rc = msg_op_kek(op, ks, k, key_id, m->rk.eph);
	if (rc == DIME_OK)
		k->rk = m;
	return rc;
}

/* The record's keyslot for chunk c of m (c must be an element of m->ch), or NULL. The entries
 * are in ascending chunk order (msg_rk_check); chunk indices are not secret. */
static const uint8_t *
msg_rk_slot(const struct msg_parsed *m, const struct dime_msg_chunk_info *c)
{
	uintptr_t base = (uintptr_t)m->ch, at = (uintptr_t)c;
	size_t i, lo = 0, hi = m->rk.n_slots;

	if (at < base || (at - base) % sizeof(*c) != 0 || (at - base) / sizeof(*c) >= m->d.n_chunks)
		return NULL;
	i = (at - base) / sizeof(*c);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const uint8_t *e = m->rk.entries + mid * MSG_RK_ENTRY_BYTES;
		size_t v = (size_t)e[0] << 24 | (size_t)e[1] << 16 | (size_t)e[2] << 8 | e[3];

		if (v == i)
			return e + 4;
		if (v < i)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* slot = AES-256-CBC(KEK)(R16 || IV^R16 || key32) (reference-format §6.3). A re-key record's
 * KEK (k->rk) opens the record's slot in place of the chunk's own recipient slot. */
int
msg_slot_open(struct msg_ckey *ck, const struct dime_msg_chunk_info *c, uint8_t actor,
	      const struct msg_kek *k)
{
	uint8_t pt[DIME_MSG_KEYSLOT_BYTES];
	int idx = msg_slot_index(c->type, actor), rc;
	const uint8_t *slot;

	memset(ck, 0, sizeof(*ck));
	if (idx < 0 || (size_t)idx >= c->n_slots)
		return DIME_E_INVALID;
	if (k->rk != NULL && actor == DIME_ACTOR_RECIPIENT)
		slot = msg_rk_slot(k->rk, c);
	else
		slot = c->slots.p + (size_t)idx * DIME_MSG_KEYSLOT_BYTES;
	if (slot == NULL)
		return DIME_E_INVALID;
	rc = dime_aes256cbc_decrypt(pt, slot, DIME_MSG_KEYSLOT_BYTES, k->key, k->iv);
	if (rc == DIME_OK) {
		for (size_t i = 0; i < DIME_AES_BLOCK_BYTES; i++)
			ck->iv[i] = (uint8_t)(pt[i] ^ pt[16 + i]);
		memcpy(ck->key, pt + 32, DIME_AES_KEY_BYTES);
	}
	dime_wipe(pt, sizeof(pt));
	return rc;
}

void
msg_slot_plain(uint8_t pt[DIME_MSG_KEYSLOT_BYTES], const struct msg_ckey *ck)
{
	dime_random(pt, 16); /* fresh R per slot */
	for (size_t i = 0; i < DIME_AES_BLOCK_BYTES; i++)
		pt[16 + i] = (uint8_t)(ck->iv[i] ^ pt[i]);
	memcpy(pt + 32, ck->key, DIME_AES_KEY_BYTES);
}

int
msg_slot_seal(uint8_t out[DIME_MSG_KEYSLOT_BYTES], const struct msg_ckey *ck,
	      const struct msg_kek *k)
{
	uint8_t pt[DIME_MSG_KEYSLOT_BYTES];
	int rc;

	msg_slot_plain(pt, ck);
	rc = dime_aes256cbc_encrypt(out, pt, DIME_MSG_KEYSLOT_BYTES, k->key, k->iv);
	dime_wipe(pt, sizeof(pt));
	return rc;
}

int
msg_payload_decrypt(uint8_t **pt, const struct dime_msg_chunk_info *c, const struct msg_ckey *ck)
{
	uint8_t *p;
	int rc;

	*pt = NULL;
	p = malloc(c->payload.len > 0 ? c->payload.len : 1);
	if (p == NULL)
		return DIME_E_NOMEM;
	rc = dime_aes256cbc_decrypt(p, c->payload.p, c->payload.len, ck->key, ck->iv);
	if (rc != DIME_OK) {
		dime_wipe(p, c->payload.len);
		free(p);
		return rc;
	}
	*pt = p;
	return DIME_OK;
}

/* Tree signature input (reference-format §6.6). Reference form: SHA-512 of every chunk before
 * 225 except the destination chunk (libdime overwrites its slot), then 64 zero bytes, so the
 * buffer has one 64-byte entry per chunk. Spec-literal form: SHA-512 of every chunk before 225
 * in wire order, no zero tail. */
int
msg_tree_input(uint8_t **buf, size_t *len, const struct msg_parsed *m, size_t i_tree, int form)
{
	uint8_t *b;
	size_t n = 0;

	*buf = NULL;
	*len = 0;
	b = malloc(i_tree * DIME_SHA512_BYTES + DIME_SHA512_BYTES);
	if (b == NULL)
		return DIME_E_NOMEM;
	for (size_t i = 0; i < i_tree; i++) {
		if (form == 0 && m->ch[i].type == DIME_CHUNK_DESTINATION)
			continue;
		dime_sha512(b + n, m->ch[i].chunk.p, m->ch[i].chunk.len);
		n += DIME_SHA512_BYTES;
	}
	if (form == 0) {
		memset(b + n, 0, DIME_SHA512_BYTES);
		n += DIME_SHA512_BYTES;
	}
	*buf = b;
	*len = n;
	return DIME_OK;
}

/* Chunks are contiguous and in ascending order, so every signature covers one byte range:
 * chunks [0, end). */
struct dime_view
msg_cover(const struct msg_parsed *m, size_t end)
{
	struct dime_view v = {NULL, 0};

	if (end == 0 || end > m->d.n_chunks)
		return v;
	v.p = m->ch[0].chunk.p;
	v.len = (size_t)(m->ch[end - 1].chunk.p - v.p) + m->ch[end - 1].chunk.len;
	return v;
}

/* 226: 2..225; 248: the envelope and metadata sections (types < 64); 249: those and the
 * display section (types < 128); 255: every chunk before it. */
size_t
msg_cover_end(const struct msg_parsed *m, uint8_t sig_type)
{
	unsigned limit;
	size_t i;

	switch (sig_type) {
	case DIME_CHUNK_META_BOUNCE: limit = 64; break;
	case DIME_CHUNK_DISPLAY_BOUNCE: limit = 128; break;
	case DIME_CHUNK_AUTHOR_SIG: limit = DIME_CHUNK_AUTHOR_SIG; break;
	default: limit = DIME_CHUNK_ORG_SIG; break;
	}
	for (i = 0; i < m->d.n_chunks && m->ch[i].type < limit; i++)
		;
	return i;
}

int
msg_org_verify(const struct dime_signet *org, const uint8_t sig[DIME_SIG_BYTES], const uint8_t *msg,
	       size_t len)
{
	uint8_t pub[DIME_ED25519_PUB_BYTES], perms;
	size_t n;

	if (dime_signet_signing_key(org, pub) == DIME_OK &&
	    dime_ed25519_verify(sig, pub, msg, len) == DIME_OK)
		return DIME_OK;
	n = dime_signet_n_soks(org);
	for (size_t i = 0; i < n; i++) {
		if (dime_signet_sok(org, &perms, pub, i) != DIME_OK)
			continue;
		if ((perms & DIME_SOK_MESSAGES) == 0 || (perms & DIME_SOK_RESERVED) != 0)
			continue;
		if (dime_ed25519_verify(sig, pub, msg, len) == DIME_OK)
			return DIME_OK;
	}
	return DIME_E_BADSIG;
}

/* ---- the recipient signet of a re-keyed message (docs/rekey.md) ---- */

static void
msg_crypto_why(const char **why, const char *s)
{
	if (why != NULL)
		*why = s;
}

static int
msg_fp_of(const uint8_t fp[DIME_FP_BYTES], const struct dime_signet *s)
{
	uint8_t want[DIME_FP_BYTES];

	if (dime_signet_fingerprint(want, s, DIME_FP_CRYPTO) != DIME_OK)
		return 0;
	return dime_ct_equal(fp, want, DIME_FP_BYTES);
}

int
msg_ident_is(const struct dime_signet *s, const char *addr)
{
	struct dime_view id;
	size_t n = strlen(addr);

	if (dime_signet_identifier(s, &id) != DIME_OK || id.len != n || n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned a = id.p[i], b = (unsigned char)addr[i];

		if (a - 'A' < 26u)
			a += 32u;
		if (b - 'A' < 26u)
			b += 32u;
		if (a != b)
			return 0;
	}
	return 1;
}

int
msg_recipient_ok(const char **why, const struct msg_parsed *m, const struct dime_msg_envelope *env,
		 const struct dime_signet *recipient, uint8_t actor)
{
	if (!m->rk.present || actor != DIME_ACTOR_RECIPIENT) {
		if (recipient == NULL || msg_fp_of(env->recipient_fp, recipient))
			return 1;
		msg_crypto_why(why, "chunk 5: Recipient-Signet is not the recipient signet's "
				    "fingerprint");
		return 0;
	}
	/* The record is not signed: what binds it is that the author signed the old fingerprint
	 * and the address, and that the caller vouches for the new signet. */
	if (recipient == NULL) {
		msg_crypto_why(why, "re-keyed message: the recipient's new signet is required");
		return 0;
	}
	if (!msg_fp_of(m->rk.new_fp, recipient)) {
		msg_crypto_why(why, "re-key record: not for the given recipient signet");
		return 0;
	}
	if (!dime_ct_equal(m->rk.old_fp, env->recipient_fp, DIME_FP_BYTES)) {
		msg_crypto_why(why, "re-key record: its old fingerprint is not chunk 5's "
				    "Recipient-Signet");
		return 0;
	}
	if (!msg_ident_is(recipient, env->recipient)) {
		msg_crypto_why(why, "re-key record: the new signet is not chunk 5's Recipient");
		return 0;
	}
	return 1;
}

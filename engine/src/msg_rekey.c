/* Re-keying (docs/rekey.md): after the recipient rotates its signet, a stored message gets a
 * record holding the recipient's chunk keys rewrapped for the new signet, next to the original
 * bytes, so the old private key can be destroyed while every signature still verifies. The
 * container's reader is msg_rk_split / msg_rk_check (msg_codec.c); this is its one writer. */

#include <stdlib.h>
#include <string.h>

#include "dime/crypto.h"
#include "dime/keys.h"
#include "dime/msg.h"
#include "dime/signet.h"
#include "msg_int.h"
#include "wr.h"

static void
rekey_why(const char **why, const char *s)
{
	if (why != NULL)
		*why = s;
}

/* The container: [1850][N] version | old_fp | new_fp | eph | n | n x (index | slot) | message.
 * slots holds one sealed keyslot per chunk with a recipient keyslot, in wire order. */
static void
rekey_write(struct dime_wr *w, const struct msg_parsed *m, const uint8_t old_fp[DIME_FP_BYTES],
	    const uint8_t new_fp[DIME_FP_BYTES], const uint8_t eph[DIME_SECP_PUB_BYTES],
	    const uint8_t *slots, size_t n_slots, size_t body)
{
	size_t j = 0;

	dime_wr_be16(w, (uint16_t)DIME_MSG_REKEY_MAGIC);
	dime_wr_be32(w, (uint32_t)body);
	dime_wr_u8(w, DIME_MSG_REKEY_VERSION);
	dime_wr_bytes(w, old_fp, DIME_FP_BYTES);
	dime_wr_bytes(w, new_fp, DIME_FP_BYTES);
	dime_wr_bytes(w, eph, DIME_SECP_PUB_BYTES);
	dime_wr_be32(w, (uint32_t)n_slots);
	for (size_t i = 0; i < m->d.n_chunks; i++) {
		if ((m->ch[i].actors & DIME_ACTOR_RECIPIENT) == 0)
			continue;
		dime_wr_be32(w, (uint32_t)i);
		dime_wr_bytes(w, slots + j * DIME_MSG_KEYSLOT_BYTES, DIME_MSG_KEYSLOT_BYTES);
		j++;
	}
	dime_wr_bytes(w, m->rk.present ? m->rk.message.p : m->in,
		      m->rk.present ? m->rk.message.len : m->in_len);
}

int
dime_msg_rekey(const struct dime_ks *ks, uint8_t **out, size_t *out_len, const char **why,
	       const uint8_t *in, size_t in_len, uint32_t old_key,
	       const struct dime_signet *new_signet, const struct dime_msg_parties *p)
{
	struct dime_msg_opened o;
	struct dime_msg_envelope env;
	struct msg_parsed m;
	struct msg_kek kold, knew;
	struct msg_ckey ck;
	struct dime_wr w;
	uint8_t eph_priv[DIME_SECP_PRIV_BYTES], eph_pub[DIME_SECP_PUB_BYTES], x[DIME_ECDH_BYTES];
	uint8_t enc[DIME_SECP_PUB_BYTES], new_fp[DIME_FP_BYTES], *slots = NULL, *buf = NULL;
	size_t n_slots = 0, msg_len, body = 0, total = 0, j = 0;
	int rc;

	rekey_why(why, "");
	if (out == NULL || out_len == NULL || ks == NULL || new_signet == NULL || p == NULL) {
		rekey_why(why, "invalid argument");
		return DIME_E_INVALID;
	}
	*out = NULL;
	*out_len = 0;
	memset(&m, 0, sizeof(m));
	memset(&kold, 0, sizeof(kold));
	memset(&knew, 0, sizeof(knew));
	memset(&ck, 0, sizeof(ck));
	memset(eph_priv, 0, sizeof(eph_priv));
	memset(x, 0, sizeof(x));
	/* 1. Everything the recipient checks, exactly: a message that would not open is never
	 * re-keyed, so a record never blesses a broken message. The plaintext goes at once. */
	rc = dime_msg_open(ks, &o, why, in, in_len, DIME_ACTOR_RECIPIENT, old_key, p);
	if (rc != DIME_OK)
		return rc;
	env = o.env; /* author-signed: Recipient and Recipient-Signet */
	dime_msg_opened_free(&o);
	/* 2. The result must open for the new signet (msg_recipient_ok). */
	if (dime_signet_fingerprint(new_fp, new_signet, DIME_FP_CRYPTO) != DIME_OK ||
	    dime_signet_enc_key(new_signet, enc) != DIME_OK) {
		rekey_why(why, "the new signet has no crypto fingerprint or encryption key");
		rc = DIME_E_INVALID;
		goto out;
	}
	if (!msg_ident_is(new_signet, env.recipient)) {
		rekey_why(why, "the new signet's identifier is not chunk 5's Recipient");
		rc = DIME_E_INVALID;
		goto out;
	}
	/* 3. The old KEK (the current record's, when re-keyed), a fresh ephemeral key, the new
	 * KEK. */
	rc = msg_parse(&m, why, in, in_len);
	if (rc != DIME_OK)
		goto out;
	rc = msg_kek_for_actor(NULL, ks, &kold, old_key, &m, DIME_ACTOR_RECIPIENT);
	if (rc == DIME_OK)
		rc = dime_secp_keygen(eph_priv, eph_pub);
	if (rc == DIME_OK)
		rc = dime_secp_ecdh_x(x, eph_priv, enc);
	dime_wipe(eph_priv, sizeof(eph_priv));
	if (rc != DIME_OK) {
		rekey_why(why, "re-key: key agreement failed");
		rc = rc == DIME_E_MALFORMED ? DIME_E_INVALID : DIME_E_CRYPTO;
		goto out;
	}
	msg_kek_derive(&knew, x);
	dime_wipe(x, sizeof(x));
	/* 4. Every recipient keyslot: opened with the old KEK, sealed for the new signet (a fresh
	 * R per slot, as at wrap). */
	for (size_t i = 0; i < m.d.n_chunks; i++)
		if ((m.ch[i].actors & DIME_ACTOR_RECIPIENT) != 0)
			n_slots++;
	if ((slots = malloc(n_slots > 0 ? n_slots * DIME_MSG_KEYSLOT_BYTES : 1)) == NULL) {
		rekey_why(why, "out of memory");
		rc = DIME_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < m.d.n_chunks && rc == DIME_OK; i++) {
		if ((m.ch[i].actors & DIME_ACTOR_RECIPIENT) == 0)
			continue;
		rc = msg_slot_open(&ck, &m.ch[i], DIME_ACTOR_RECIPIENT, &kold);
		if (rc == DIME_OK)
			rc = msg_slot_seal(slots + j * DIME_MSG_KEYSLOT_BYTES, &ck, &knew);
		dime_wipe(&ck, sizeof(ck));
		if (rc != DIME_OK) {
			/* dime_msg_open just opened this slot: only the cipher can fail here */
			rekey_why(why, msg_why(m.ch[i].type, MSG_R_CRYPTO));
			rc = DIME_E_CRYPTO;
		}
		j++;
	}
	if (rc != DIME_OK)
		goto out;
	/* 5. Size, then bytes. */
	msg_len = m.rk.present ? m.rk.message.len : m.in_len;
	if (n_slots > (DIME_MSG_REKEY_MAX_BYTES - MSG_RK_HEADER_BYTES) / MSG_RK_ENTRY_BYTES ||
	    msg_len > DIME_MSG_REKEY_MAX_BYTES - MSG_RK_HEADER_BYTES -
			  n_slots * MSG_RK_ENTRY_BYTES - DIME_MSG_HEADER_BYTES) {
		rekey_why(why, "re-keyed message over DIME_MSG_REKEY_MAX_BYTES");
		rc = DIME_E_LIMIT;
		goto out;
	}
	body = MSG_RK_HEADER_BYTES + n_slots * MSG_RK_ENTRY_BYTES + msg_len;
	total = DIME_MSG_HEADER_BYTES + body;
	if ((buf = malloc(total)) == NULL) {
		rekey_why(why, "out of memory");
		rc = DIME_E_NOMEM;
		goto out;
	}
	dime_wr_init(&w, buf, total);
	rekey_write(&w, &m, env.recipient_fp, new_fp, eph_pub, slots, n_slots, body);
	DIME_ASSERT(w.err == DIME_OK && w.off == total);
out:
	dime_wipe(eph_priv, sizeof(eph_priv));
	dime_wipe(x, sizeof(x));
	dime_wipe(&ck, sizeof(ck));
	dime_wipe(&kold, sizeof(kold));
	dime_wipe(&knew, sizeof(knew));
	dime_wipe(&env, sizeof(env));
	if (slots != NULL) {
		dime_wipe(slots, n_slots * DIME_MSG_KEYSLOT_BYTES);
		free(slots);
	}
	msg_parsed_free(&m);
	if (rc != DIME_OK) {
		dime_msg_free(buf, total);
		return rc;
	}
	*out = buf;
	*out_len = total;
	return DIME_OK;
}

int
dime_msg_rekey_info(struct dime_msg_rekey_info *info, const char **why, const uint8_t *in,
		    size_t in_len)
{
	struct dime_msg_dump d;
	struct msg_rk rk;
	int rc;

	rekey_why(why, "");
	if (info == NULL) {
		rekey_why(why, "invalid argument");
		return DIME_E_INVALID;
	}
	memset(info, 0, sizeof(*info));
	/* the whole framing, the record against the message included */
	rc = dime_msg_dump(&d, NULL, 0, why, in, in_len);
	if (rc != DIME_OK)
		return rc;
	if (msg_rk_split(&rk, why, in, in_len) != DIME_OK) {
		info->message.p = in;
		info->message.len = in_len;
		return DIME_OK;
	}
	info->rekeyed = 1;
	memcpy(info->old_fp, rk.old_fp, DIME_FP_BYTES);
	memcpy(info->new_fp, rk.new_fp, DIME_FP_BYTES);
	info->n_slots = rk.n_slots;
	info->record = rk.record;
	info->message = rk.message;
	return DIME_OK;
}

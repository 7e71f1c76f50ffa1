/* D/MIME operations: author wrap, origin check and sign, destination accept, envelope peek,
 * author/recipient open. Verification order follows STYLE.md §4: signatures over ciphertext
 * first, then envelope chunks, then content; nothing is released from a failed message. */

#include <stdlib.h>
#include <string.h>

#include "dime/codec.h"
#include "dime/crypto.h"
#include "dime/keys.h"
#include "dime/msg.h"
#include "dime/signet.h"
#include "dime/gzip.h"
#include "msg_int.h"
#include "wr.h"

static void
ops_why(const char **why, const char *s)
{
	if (why != NULL)
		*why = s;
}

void
dime_msg_free(uint8_t *p, size_t len)
{
	if (p == NULL)
		return;
	dime_wipe(p, len);
	free(p);
}

static void
ops_free_secret(uint8_t *p, size_t len)
{
	if (p != NULL) {
		dime_wipe(p, len);
		free(p);
	}
}

/* ---- opening pieces ---- */

/* Open signature chunk i as actor: the decrypted 64-byte signature. */
static int
ops_sig_open(uint8_t sig[DIME_SIG_BYTES], const char **why, const struct msg_parsed *m, size_t i,
	     uint8_t actor, const struct msg_kek *k)
{
	const struct dime_msg_chunk_info *c = &m->ch[i];
	struct msg_ckey ck;
	int rc;

	memset(sig, 0, DIME_SIG_BYTES);
	rc = msg_slot_open(&ck, c, actor, k);
	if (rc == DIME_OK)
		rc = dime_aes256cbc_decrypt(sig, c->payload.p, DIME_SIG_BYTES, ck.key, ck.iv);
	dime_wipe(&ck, sizeof(ck));
	if (rc != DIME_OK) {
		ops_why(why, msg_why(c->type, MSG_R_SLOT));
		return DIME_E_BADSIG;
	}
	return DIME_OK;
}

/* Open standard chunk i as actor: decrypt, check the payload structure and, when author_pub is
 * not NULL, the author's plaintext signature over plaintext[64:].
 * Out: *pt (owned, payload.len bytes), *pl views into it. */
static int
ops_std_open(struct msg_op *op, uint8_t **pt, struct msg_payload *pl, const char **why,
	     const struct msg_parsed *m, size_t i, uint8_t actor, const struct msg_kek *k,
	     const uint8_t *author_pub)
{
	const struct dime_msg_chunk_info *c = &m->ch[i];
	struct msg_ckey ck;
	uint8_t *p = NULL;
	int rc;

	*pt = NULL;
	memset(pl, 0, sizeof(*pl));
	rc = msg_slot_open(&ck, c, actor, k);
	if (rc == DIME_OK)
		rc = msg_payload_decrypt(&p, c, &ck);
	dime_wipe(&ck, sizeof(ck));
	if (rc == DIME_E_NOMEM) {
		ops_why(why, "out of memory");
		return rc;
	}
	if (rc != DIME_OK) {
		ops_why(why, msg_why(c->type, MSG_R_SLOT));
		return DIME_E_BADSIG;
	}
	rc = msg_payload_decode(pl, why, p, c->payload.len, c->type);
	if (rc == DIME_OK && author_pub != NULL &&
	    msg_op_verify(op, pl->sig, author_pub, pl->signed_part.p, pl->signed_part.len,
			  MSG_OP_COPY) != DIME_OK) {
		ops_why(why, msg_why(c->type, MSG_R_SIG));
		rc = DIME_E_BADSIG;
	}
	if (rc != DIME_OK) {
		memset(pl, 0, sizeof(*pl));
		ops_free_secret(p, c->payload.len);
		return rc;
	}
	*pt = p;
	return DIME_OK;
}

/* The author's tree (225, either form) and full (226) signatures. */
static int
ops_check_author_sigs(struct msg_op *op, const char **why, const struct msg_parsed *m,
		      uint8_t actor, const struct msg_kek *k,
		      const uint8_t author_pub[DIME_ED25519_PUB_BYTES])
{
	uint8_t sig[DIME_SIG_BYTES], *buf = NULL;
	struct dime_view cover;
	size_t len = 0;
	int rc, ok = 0;

	rc = ops_sig_open(sig, why, m, m->i_tree, actor, k);
	if (rc != DIME_OK)
		return rc;
	/* the reference form (WIRE.md: emitted), then the spec-literal form */
	for (int form = 0; form < 2 && !ok; form++) {
		rc = msg_tree_input(&buf, &len, m, m->i_tree, form);
		if (rc != DIME_OK) {
			ops_why(why, "out of memory");
			return rc;
		}
		/* a batch run records form 0 and takes buf; if that fails, the job runs again
		 * alone and tries both forms */
		ok = msg_op_verify_take(op, sig, author_pub, &buf, len) == DIME_OK;
		free(buf);
	}
	if (!ok) {
		ops_why(why, "chunk 225: author tree signature does not verify (reference or "
			     "spec-literal form)");
		return DIME_E_BADSIG;
	}
	rc = ops_sig_open(sig, why, m, m->i_author, actor, k);
	if (rc != DIME_OK)
		return rc;
	cover = msg_cover(m, msg_cover_end(m, DIME_CHUNK_AUTHOR_SIG));
	if (msg_op_verify(op, sig, author_pub, cover.p, cover.len, MSG_OP_BORROW) != DIME_OK) {
		ops_why(why, "chunk 226: author full signature does not verify");
		return DIME_E_BADSIG;
	}
	return DIME_OK;
}

/* The origin's 248 and 249 (when present) and 255, against its POK or a messages SOK. */
static int
ops_check_org_sigs(struct msg_op *op, const char **why, const struct msg_parsed *m, uint8_t actor,
		   const struct msg_kek *k, const struct dime_signet *origin)
{
	const size_t idx[3] = {m->i_meta, m->i_disp, m->i_org};
	uint8_t sig[DIME_SIG_BYTES];

	for (int j = 0; j < 3; j++) {
		struct dime_view cover;
		int rc;

		if (idx[j] == MSG_NONE)
			continue;
		rc = ops_sig_open(sig, why, m, idx[j], actor, k);
		if (rc != DIME_OK)
			return rc;
		cover = msg_cover(m, msg_cover_end(m, m->ch[idx[j]].type));
		if (msg_op_org_verify(op, origin, sig, cover.p, cover.len) != DIME_OK) {
			ops_why(why, msg_why(m->ch[idx[j]].type, MSG_R_SIGCHUNK));
			return DIME_E_BADSIG;
		}
	}
	return DIME_OK;
}

/* Open envelope chunk i (4 or 5) and parse its text into env. */
static int
ops_env_open(struct msg_op *op, struct dime_msg_envelope *env, const char **why,
	     const struct msg_parsed *m, size_t i, uint8_t actor, const struct msg_kek *k,
	     const uint8_t *author_pub)
{
	struct msg_payload pl;
	uint8_t *pt = NULL;
	int rc;

	rc = ops_std_open(op, &pt, &pl, why, m, i, actor, k, author_pub);
	if (rc != DIME_OK)
		return rc;
	if ((pl.flags & ~DIME_MSG_FLAG_ALT_PAD) != 0) {
		/* the envelope text is never compressed or spanned (we never emit either; the
		 * reference cannot) */
		ops_why(why, msg_why(m->ch[i].type, MSG_R_ENVELOPE));
		rc = DIME_E_BADSIG;
	} else {
		rc = msg_envelope_parse(env, why, pl.data.p, pl.data.len,
					m->ch[i].type == DIME_CHUNK_ORIGIN);
	}
	ops_free_secret(pt, m->ch[i].payload.len);
	return rc;
}

/* Does fp equal s's crypto fingerprint? */
static int
ops_fp_is(const uint8_t fp[DIME_FP_BYTES], const struct dime_signet *s)
{
	uint8_t want[DIME_FP_BYTES];

	if (dime_signet_fingerprint(want, s, DIME_FP_CRYPTO) != DIME_OK)
		return 0;
	return dime_ct_equal(fp, want, DIME_FP_BYTES);
}

static int
ops_author_pub(uint8_t pub[DIME_ED25519_PUB_BYTES], const char **why,
	       const struct dime_msg_parties *p)
{
	if (p == NULL || p->author == NULL) {
		ops_why(why, "the author signet is required");
		return DIME_E_INVALID;
	}
	if (dime_signet_signing_key(p->author, pub) != DIME_OK) {
		ops_why(why, "the author signet has no signing key");
		return DIME_E_INVALID;
	}
	return DIME_OK;
}

/* ---- origin ---- */

static int
ops_origin_check(struct msg_op *op, const struct dime_ks *ks, struct dime_msg_envelope *env,
		 const char **why, const struct msg_parsed *m, uint32_t org_key,
		 const struct dime_msg_parties *p)
{
	uint8_t apub[DIME_ED25519_PUB_BYTES];
	struct msg_kek k;
	int rc;

	rc = ops_author_pub(apub, why, p);
	if (rc != DIME_OK)
		return rc;
	rc = msg_op_kek(op, ks, &k, org_key, m->eph);
	if (rc != DIME_OK) {
		ops_why(why, "the origin key cannot derive a KEK");
		return rc == DIME_E_MALFORMED ? DIME_E_BADSIG : rc;
	}
	rc = ops_check_author_sigs(op, why, m, DIME_ACTOR_ORIGIN, &k, apub);
	if (rc == DIME_OK)
		rc = ops_env_open(op, env, why, m, m->i_origin, DIME_ACTOR_ORIGIN, &k, apub);
	if (rc == DIME_OK && !ops_fp_is(env->author_fp, p->author)) {
		ops_why(why, "chunk 4: Author-Signet is not the author signet's fingerprint");
		rc = DIME_E_BADSIG;
	}
	dime_wipe(&k, sizeof(k));
	return rc;
}

int
dime_msg_origin_check(const struct dime_ks *ks, struct dime_msg_envelope *env, const char **why,
		      const uint8_t *in, size_t in_len, uint32_t org_key,
		      const struct dime_msg_parties *p)
{
	struct msg_parsed m;
	int rc;

	ops_why(why, "");
	if (env == NULL || ks == NULL) {
		ops_why(why, "invalid argument");
		return DIME_E_INVALID;
	}
	memset(env, 0, sizeof(*env));
	rc = msg_parse(&m, why, in, in_len);
	if (rc != DIME_OK)
		return rc;
	rc = ops_origin_check(NULL, ks, env, why, &m, org_key, p);
	msg_parsed_free(&m);
	if (rc != DIME_OK)
		memset(env, 0, sizeof(*env));
	return rc;
}

/* Is sign_key allowed to make org signatures for origin? Out: *use, the key id to sign with. */
static int
ops_org_signer(const struct dime_ks *ks, uint32_t *use, const char **why, uint32_t org_key,
	       uint32_t sign_key, const struct dime_signet *origin)
{
	uint8_t pub[DIME_ED25519_PUB_BYTES], want[DIME_ED25519_PUB_BYTES], perms;
	size_t n;

	*use = sign_key == DIME_KS_NONE ? org_key : sign_key;
	if (dime_ks_sign_pub(ks, pub, *use) != DIME_OK) {
		ops_why(why, "the signing key is not in the keystore");
		return DIME_E_NOTFOUND;
	}
	if (dime_signet_signing_key(origin, want) == DIME_OK && dime_ct_equal(pub, want, 32))
		return DIME_OK;
	n = dime_signet_n_soks(origin);
	for (size_t i = 0; i < n; i++)
		if (dime_signet_sok(origin, &perms, want, i) == DIME_OK &&
		    (perms & DIME_SOK_MESSAGES) != 0 && (perms & DIME_SOK_RESERVED) == 0 &&
		    dime_ct_equal(pub, want, 32))
			return DIME_OK;
	ops_why(why, "the signing key is neither the origin's POK nor a SOK with permission 2");
	return DIME_E_INVALID;
}

int
dime_msg_origin_sign(const struct dime_ks *ks, uint8_t **out, size_t *out_len,
		     struct dime_msg_envelope *env, const char **why, const uint8_t *in,
		     size_t in_len, uint32_t org_key, uint32_t sign_key,
		     const struct dime_msg_parties *p)
{
	return msg_origin_sign_op(NULL, ks, out, out_len, env, why, in, in_len, org_key, sign_key,
				  p, 0);
}

int
dime_msg_origin_sign_flags(const struct dime_ks *ks, uint8_t **out, size_t *out_len,
			   struct dime_msg_envelope *env, const char **why, const uint8_t *in,
			   size_t in_len, uint32_t org_key, uint32_t sign_key,
			   const struct dime_msg_parties *p, unsigned flags)
{
	return msg_origin_sign_op(NULL, ks, out, out_len, env, why, in, in_len, org_key, sign_key,
				  p, flags);
}

int
msg_origin_sign_op(struct msg_op *op, const struct dime_ks *ks, uint8_t **out, size_t *out_len,
		   struct dime_msg_envelope *env, const char **why, const uint8_t *in,
		   size_t in_len, uint32_t org_key, uint32_t sign_key,
		   const struct dime_msg_parties *p, unsigned flags)
{
	struct msg_parsed m, mo;
	struct msg_kek k;
	uint8_t *buf = NULL, sig[DIME_SIG_BYTES];
	uint32_t signer = DIME_KS_NONE;
	int rc;

	ops_why(why, "");
	if (out == NULL || out_len == NULL || env == NULL || ks == NULL) {
		ops_why(why, "invalid argument");
		return DIME_E_INVALID;
	}
	*out = NULL;
	*out_len = 0;
	memset(env, 0, sizeof(*env));
	memset(&mo, 0, sizeof(mo));
	memset(&k, 0, sizeof(k));
	rc = msg_parse(&m, why, in, in_len);
	if (rc != DIME_OK)
		return rc;
	if (p == NULL || p->origin == NULL) {
		ops_why(why, "the origin signet is required");
		rc = DIME_E_INVALID;
		goto out;
	}
	rc = ops_org_signer(ks, &signer, why, org_key, sign_key, p->origin);
	if (rc != DIME_OK)
		goto out;
	/* DIME_MSG_SIGN_OWN: this process made `in` with dime_msg_wrap a moment ago, so checking
	 * the author's signatures again would only repeat our own work (three Ed25519 verifications
	 * and an envelope decryption per message); env stays zeroed. */
	if ((flags & DIME_MSG_SIGN_OWN) == 0) {
		rc = ops_origin_check(op, ks, env, why, &m, org_key, p);
		if (rc != DIME_OK)
			goto out;
	}
	buf = malloc(in_len);
	if (buf == NULL) {
		ops_why(why, "out of memory");
		rc = DIME_E_NOMEM;
		goto out;
	}
	memcpy(buf, in, in_len);
	rc = msg_parse(&mo, why, buf, in_len);
	if (rc == DIME_OK)
		rc = msg_op_kek(op, ks, &k, org_key, mo.eph);
	/* 248, 249, then 255 (which covers the other two): sign, re-encrypt in place with the
	 * author-chosen key from the origin's keyslot (reference-format §6.7). */
	for (int j = 0; j < 3 && rc == DIME_OK; j++) {
		size_t i = j == 0 ? mo.i_meta : j == 1 ? mo.i_disp : mo.i_org;
		struct dime_view cover;
		struct msg_ckey ck;
		uint8_t *dst;

		if (i == MSG_NONE)
			continue;
		cover = msg_cover(&mo, msg_cover_end(&mo, mo.ch[i].type));
		rc = dime_ks_sign(ks, sig, signer, cover.p, cover.len);
		if (rc != DIME_OK) {
			ops_why(why, "signing failed");
			break;
		}
		if (msg_slot_open(&ck, &mo.ch[i], DIME_ACTOR_ORIGIN, &k) != DIME_OK) {
			ops_why(why, msg_why(mo.ch[i].type, MSG_R_SLOT));
			rc = DIME_E_BADSIG;
			break;
		}
		dst = buf + (mo.ch[i].payload.p - buf);
		rc = dime_aes256cbc_encrypt(dst, sig, DIME_SIG_BYTES, ck.key, ck.iv);
		dime_wipe(&ck, sizeof(ck));
	}
out:
	dime_wipe(&k, sizeof(k));
	msg_parsed_free(&mo);
	msg_parsed_free(&m);
	if (rc != DIME_OK) {
		memset(env, 0, sizeof(*env));
		dime_msg_free(buf, in_len);
		return rc;
	}
	*out = buf;
	*out_len = in_len;
	return DIME_OK;
}

/* ---- destination ---- */

int
dime_msg_accept(const struct dime_ks *ks, struct dime_msg_envelope *env, const char **why,
		const uint8_t *in, size_t in_len, uint32_t dest_key,
		const struct dime_msg_parties *p)
{
	return msg_accept_op(NULL, ks, env, why, in, in_len, dest_key, p);
}

int
msg_accept_op(struct msg_op *op, const struct dime_ks *ks, struct dime_msg_envelope *env,
	      const char **why, const uint8_t *in, size_t in_len, uint32_t dest_key,
	      const struct dime_msg_parties *p)
{
	struct msg_parsed m;
	struct msg_kek k;
	int rc;

	ops_why(why, "");
	if (env == NULL || ks == NULL) {
		ops_why(why, "invalid argument");
		return DIME_E_INVALID;
	}
	memset(env, 0, sizeof(*env));
	memset(&k, 0, sizeof(k));
	rc = msg_parse(&m, why, in, in_len);
	if (rc != DIME_OK)
		return rc;
	if (p == NULL || p->origin == NULL) {
		ops_why(why, "the origin signet is required");
		rc = DIME_E_INVALID;
		goto out;
	}
	rc = msg_op_kek(op, ks, &k, dest_key, m.eph);
	if (rc != DIME_OK) {
		ops_why(why, "the destination key cannot derive a KEK");
		rc = rc == DIME_E_MALFORMED ? DIME_E_BADSIG : rc;
		goto out;
	}
	rc = ops_check_org_sigs(op, why, &m, DIME_ACTOR_DESTINATION, &k, p->origin);
	if (rc != DIME_OK)
		goto out;
	/* the author is hidden from the destination: chunk 5's signature cannot be checked */
	rc = ops_env_open(op, env, why, &m, m.i_dest, DIME_ACTOR_DESTINATION, &k, NULL);
	if (rc == DIME_OK && !ops_fp_is(env->origin_fp, p->origin)) {
		ops_why(why, "chunk 5: Origin-Signet is not the origin signet's fingerprint");
		rc = DIME_E_BADSIG;
	}
out:
	dime_wipe(&k, sizeof(k));
	msg_parsed_free(&m);
	if (rc != DIME_OK)
		memset(env, 0, sizeof(*env));
	return rc;
}

int
dime_msg_envelope_peek(const struct dime_ks *ks, struct dime_msg_envelope *env, const char **why,
		       const uint8_t *in, size_t in_len, enum dime_msg_actor as, uint32_t key)
{
	return msg_envelope_peek_op(NULL, ks, env, why, in, in_len, as, key);
}

int
msg_envelope_peek_op(struct msg_op *op, const struct dime_ks *ks, struct dime_msg_envelope *env,
		     const char **why, const uint8_t *in, size_t in_len, enum dime_msg_actor as,
		     uint32_t key)
{
	struct msg_parsed m;
	struct msg_kek k;
	int rc;

	ops_why(why, "");
	if (env == NULL || ks == NULL ||
	    (as != DIME_ACTOR_AUTHOR && as != DIME_ACTOR_ORIGIN && as != DIME_ACTOR_DESTINATION &&
	     as != DIME_ACTOR_RECIPIENT)) {
		ops_why(why, "invalid argument");
		return DIME_E_INVALID;
	}
	memset(env, 0, sizeof(*env));
	rc = msg_parse(&m, why, in, in_len);
	if (rc != DIME_OK)
		return rc;
	rc = msg_kek_for_actor(op, ks, &k, key, &m, (uint8_t)as);
	if (rc != DIME_OK) {
		ops_why(why, "the key cannot derive a KEK");
		rc = rc == DIME_E_MALFORMED ? DIME_E_BADSIG : rc;
	}
	if (rc == DIME_OK && as != DIME_ACTOR_DESTINATION)
		rc = ops_env_open(NULL, env, why, &m, m.i_origin, (uint8_t)as, &k, NULL);
	if (rc == DIME_OK && as != DIME_ACTOR_ORIGIN)
		rc = ops_env_open(NULL, env, why, &m, m.i_dest, (uint8_t)as, &k, NULL);
	dime_wipe(&k, sizeof(k));
	msg_parsed_free(&m);
	if (rc != DIME_OK)
		memset(env, 0, sizeof(*env));
	return rc;
}

/* ---- author re-read, recipient ---- */

void
dime_msg_opened_free(struct dime_msg_opened *o)
{
	if (o == NULL)
		return;
	ops_free_secret((uint8_t *)(uintptr_t)o->common.p, o->common.len);
	ops_free_secret((uint8_t *)(uintptr_t)o->headers.p, o->headers.len);
	if (o->parts != NULL) {
		for (size_t i = 0; i < o->n_parts; i++)
			ops_free_secret((uint8_t *)(uintptr_t)o->parts[i].data.p,
					o->parts[i].data.len);
		free(o->parts);
	}
	dime_wipe(o, sizeof(*o));
}

/* Decompress a GZIP data segment. Out: *dst owned. */
static int
ops_gunzip(uint8_t **dst, size_t *dst_len, const char **why, uint8_t type, const uint8_t *src,
	   size_t len)
{
	uint32_t isize = 0;
	uint8_t *d;
	int rc;

	*dst = NULL;
	*dst_len = 0;
	/* ISIZE is untrusted: it only sizes the buffer, which is also the bomb limit, and the
	 * decompressor checks that the data really has that length. */
	if (dime_gzip_isize(&isize, src, len) != DIME_OK || isize > DIME_MSG_MAX_BYTES) {
		ops_why(why, msg_why(type, MSG_R_GZIP));
		return DIME_E_BADSIG;
	}
	if ((d = malloc(isize > 0 ? isize : 1)) == NULL) {
		ops_why(why, "out of memory");
		return DIME_E_NOMEM;
	}
	rc = dime_gzip_decompress(d, isize, dst_len, src, len);
	if (rc != DIME_OK || *dst_len != isize) {
		free(d); /* the decompressor wiped what it wrote */
		*dst_len = 0;
		ops_why(why, msg_why(type, MSG_R_GZIP));
		return DIME_E_BADSIG;
	}
	*dst = d;
	return DIME_OK;
}

/* Copy (or decompress) a data segment into an owned buffer. An empty result gets a 1-byte
 * allocation so that "present" is never a NULL pointer. */
static int
ops_take_data(struct dime_view *v, const char **why, uint8_t type, uint8_t flags,
	      const uint8_t *src, size_t len)
{
	uint8_t *d = NULL;
	size_t dl = 0;
	int rc;

	v->p = NULL;
	v->len = 0;
	if ((flags & DIME_MSG_FLAG_GZIP) != 0) {
		rc = ops_gunzip(&d, &dl, why, type, src, len);
		if (rc != DIME_OK)
			return rc;
	} else {
		d = malloc(len > 0 ? len : 1);
		if (d == NULL) {
			ops_why(why, "out of memory");
			return DIME_E_NOMEM;
		}
		memcpy(d, src, len);
		dl = len;
	}
	v->p = d;
	v->len = dl;
	return DIME_OK;
}

/* Open content chunks [first, end) as one part each, joining spanned runs. */
static int
ops_open_parts(struct msg_op *bop, struct dime_msg_opened *o, const char **why,
	       const struct msg_parsed *m, uint8_t actor, const struct msg_kek *k,
	       const uint8_t *apub)
{
	size_t i = m->content_first, cap = m->content_end - m->content_first;
	int rc = DIME_OK;

	if (cap == 0)
		return DIME_OK;
	o->parts = calloc(cap, sizeof(*o->parts));
	if (o->parts == NULL) {
		ops_why(why, "out of memory");
		return DIME_E_NOMEM;
	}
	while (i < m->content_end && rc == DIME_OK) {
		uint8_t type = m->ch[i].type, flags0 = 0, *joined = NULL;
		size_t jlen = 0, jcap = 0, pieces = 0;
		int more = 1;

		while (more && rc == DIME_OK) {
			struct msg_payload pl;
			uint8_t *pt = NULL;

			if (i >= m->content_end || m->ch[i].type != type) {
				ops_why(why, msg_why(type, MSG_R_SPANEND));
				rc = DIME_E_BADSIG;
				break;
			}
			rc = ops_std_open(bop, &pt, &pl, why, m, i, actor, k, apub);
			if (rc != DIME_OK)
				break;
			if (pieces == 0)
				flags0 = pl.flags;
			else if ((pl.flags & ~DIME_MSG_FLAG_SPAN & ~DIME_MSG_FLAG_ALT_PAD) !=
				 (flags0 & ~DIME_MSG_FLAG_SPAN & ~DIME_MSG_FLAG_ALT_PAD)) {
				ops_why(why, msg_why(type, MSG_R_SPANEND));
				rc = DIME_E_BADSIG;
			}
			more = (pl.flags & DIME_MSG_FLAG_SPAN) != 0;
			if (rc == DIME_OK && jlen + pl.data.len > jcap) {
				size_t ncap = (jlen + pl.data.len) * 2;
				uint8_t *nj = malloc(ncap);

				if (nj == NULL) {
					ops_why(why, "out of memory");
					rc = DIME_E_NOMEM;
				} else {
					if (jlen > 0)
						memcpy(nj, joined, jlen);
					ops_free_secret(joined, jcap);
					joined = nj;
					jcap = ncap;
				}
			}
			if (rc == DIME_OK) {
				memcpy(joined + jlen, pl.data.p, pl.data.len);
				jlen += pl.data.len;
			}
			ops_free_secret(pt, m->ch[i].payload.len);
			pieces++;
			i++;
		}
		/* spec: never more than 4 chunks unless the data needs them */
		if (rc == DIME_OK && pieces > 4 && jlen <= 4u * (size_t)DIME_MSG_DATA_MAX_BYTES) {
			ops_why(why, msg_why(type, MSG_R_SPAN4));
			rc = DIME_E_BADSIG;
		}
		if (rc == DIME_OK) {
			struct dime_msg_opened_part *op = &o->parts[o->n_parts];

			rc = ops_take_data(&op->data, why, type, flags0, joined, jlen);
			if (rc == DIME_OK) {
				op->type = type;
				op->flags = (uint8_t)(flags0 & ~DIME_MSG_FLAG_SPAN);
				o->n_parts++;
			}
		}
		ops_free_secret(joined, jcap);
	}
	return rc;
}

static int
ops_open_meta(struct msg_op *op, struct dime_view *v, uint8_t *flags, const char **why,
	      const struct msg_parsed *m, size_t i, uint8_t actor, const struct msg_kek *k,
	      const uint8_t *apub)
{
	struct msg_payload pl;
	uint8_t *pt = NULL;
	int rc;

	rc = ops_std_open(op, &pt, &pl, why, m, i, actor, k, apub);
	if (rc != DIME_OK)
		return rc;
	if ((pl.flags & DIME_MSG_FLAG_SPAN) != 0) {
		ops_why(why, msg_why(m->ch[i].type, MSG_R_SPANTYPE));
		rc = DIME_E_BADSIG;
	} else {
		*flags = pl.flags;
		rc = ops_take_data(v, why, m->ch[i].type, pl.flags, pl.data.p, pl.data.len);
	}
	ops_free_secret(pt, m->ch[i].payload.len);
	return rc;
}

int
dime_msg_open(const struct dime_ks *ks, struct dime_msg_opened *o, const char **why,
	      const uint8_t *in, size_t in_len, enum dime_msg_actor as, uint32_t key,
	      const struct dime_msg_parties *p)
{
	return msg_open_op(NULL, ks, o, why, in, in_len, as, key, p);
}

int
msg_open_op(struct msg_op *op, const struct dime_ks *ks, struct dime_msg_opened *o,
	    const char **why, const uint8_t *in, size_t in_len, enum dime_msg_actor as,
	    uint32_t key, const struct dime_msg_parties *p)
{
	uint8_t apub[DIME_ED25519_PUB_BYTES], actor = (uint8_t)as;
	struct msg_parsed m;
	struct msg_kek k;
	int rc;

	ops_why(why, "");
	if (o == NULL || ks == NULL || (as != DIME_ACTOR_AUTHOR && as != DIME_ACTOR_RECIPIENT)) {
		ops_why(why, "invalid argument");
		return DIME_E_INVALID;
	}
	memset(o, 0, sizeof(*o));
	memset(&k, 0, sizeof(k));
	rc = msg_parse(&m, why, in, in_len);
	if (rc != DIME_OK)
		return rc;
	rc = ops_author_pub(apub, why, p);
	if (rc == DIME_OK && as == DIME_ACTOR_RECIPIENT && p->origin == NULL) {
		ops_why(why, "the origin signet is required");
		rc = DIME_E_INVALID;
	}
	if (rc != DIME_OK)
		goto out;
	rc = msg_kek_for_actor(op, ks, &k, key, &m, actor);
	if (rc != DIME_OK) {
		ops_why(why, "the key cannot derive a KEK");
		rc = rc == DIME_E_MALFORMED ? DIME_E_BADSIG : rc;
		goto out;
	}
	/* signatures over ciphertext first (STYLE.md §4) */
	rc = ops_check_author_sigs(op, why, &m, actor, &k, apub);
	if (rc == DIME_OK && as == DIME_ACTOR_RECIPIENT)
		rc = ops_check_org_sigs(op, why, &m, actor, &k, p->origin);
	if (rc == DIME_OK)
		rc = ops_env_open(op, &o->env, why, &m, m.i_origin, actor, &k, apub);
	if (rc == DIME_OK)
		rc = ops_env_open(op, &o->env, why, &m, m.i_dest, actor, &k, apub);
	if (rc != DIME_OK)
		goto out;
	rc = DIME_E_BADSIG;
	if (!ops_fp_is(o->env.author_fp, p->author))
		ops_why(why, "chunk 4: Author-Signet is not the author signet's fingerprint");
	else if (p->destination != NULL && !ops_fp_is(o->env.destination_fp, p->destination))
		ops_why(why, "chunk 4: Destination-Signet is not the destination signet's "
			     "fingerprint");
	else if (p->origin != NULL && !ops_fp_is(o->env.origin_fp, p->origin))
		ops_why(why, "chunk 5: Origin-Signet is not the origin signet's fingerprint");
	else if (!msg_recipient_ok(why, &m, &o->env, p->recipient, actor))
		rc = DIME_E_BADSIG; /* the reason is set; a re-key record is checked here too */
	else
		rc = DIME_OK;
	if (rc != DIME_OK)
		goto out;
	/* content last */
	rc = ops_open_meta(op, &o->common, &o->common_flags, why, &m, m.i_common, actor, &k, apub);
	if (rc == DIME_OK && m.i_headers != MSG_NONE)
		rc = ops_open_meta(op, &o->headers, &o->headers_flags, why, &m, m.i_headers, actor,
				   &k, apub);
	if (rc == DIME_OK)
		rc = ops_open_parts(op, o, why, &m, actor, &k, apub);
out:
	dime_wipe(&k, sizeof(k));
	msg_parsed_free(&m);
	if (rc != DIME_OK)
		dime_msg_opened_free(o);
	return rc;
}

/* ---- author ---- */

/* One chunk to seal: its plaintext (owned) and drawn key. */
struct ops_item {
	uint8_t type;
	uint8_t *pt;
	size_t pt_len;
};

struct ops_wrap {
	const struct dime_ks *ks;
	uint32_t author_key;
	struct ops_item *items;
	size_t n_items, cap_items;
	struct msg_kek kek[4]; /* A, O, D, R */
	int alt_pad;
};

static int
ops_wrap_add(struct ops_wrap *w, const char **why, uint8_t type, uint8_t flags, const uint8_t *data,
	     size_t len)
{
	struct ops_item *it;
	struct dime_wr wr;
	size_t padlen = 0;
	uint8_t pad = 0, *pt;
	int rc;

	if (w->n_items == w->cap_items) {
		size_t ncap = w->cap_items * 2 + 8;
		struct ops_item *ni = realloc(w->items, ncap * sizeof(*ni));

		if (ni == NULL) {
			ops_why(why, "out of memory");
			return DIME_E_NOMEM;
		}
		w->items = ni;
		w->cap_items = ncap;
	}
	rc = msg_padding_choose(&padlen, &pad, len, w->alt_pad);
	if (rc != DIME_OK) {
		ops_why(why, msg_why(type, MSG_R_LIMIT));
		return rc;
	}
	if (w->alt_pad)
		flags |= DIME_MSG_FLAG_ALT_PAD;
	it = &w->items[w->n_items];
	it->type = type;
	it->pt_len = DIME_MSG_PAYLOAD_HEADER_BYTES + len + padlen;
	pt = malloc(it->pt_len);
	if (pt == NULL) {
		ops_why(why, "out of memory");
		return DIME_E_NOMEM;
	}
	dime_wr_init(&wr, pt, it->pt_len);
	dime_wr_fill(&wr, 0, DIME_SIG_BYTES);
	dime_wr_be24(&wr, (uint32_t)len);
	dime_wr_u8(&wr, flags);
	dime_wr_u8(&wr, pad);
	dime_wr_bytes(&wr, data, len);
	dime_wr_fill(&wr, pad, padlen);
	DIME_ASSERT(wr.err == DIME_OK && wr.off == it->pt_len);
	/* the signature (pt[0..64)) comes later, for every item at once: ops_wrap_sign */
	it->pt = pt;
	w->n_items++;
	return DIME_OK;
}

/* Every item's author signature over its payload after the signature field, in one keystore
 * call (a remote keystore answers them in one round trip). */
static int
ops_wrap_sign(struct ops_wrap *w, const char **why)
{
	const uint8_t **msgs;
	size_t *lens;
	uint8_t(*sigs)[DIME_SIG_BYTES];
	int *rcs, rc;

	if (w->n_items == 0)
		return DIME_OK;
	msgs = malloc(w->n_items * sizeof(*msgs));
	lens = malloc(w->n_items * sizeof(*lens));
	sigs = malloc(w->n_items * sizeof(*sigs));
	rcs = malloc(w->n_items * sizeof(*rcs));
	if (msgs == NULL || lens == NULL || sigs == NULL || rcs == NULL) {
		ops_why(why, "out of memory");
		rc = DIME_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < w->n_items; i++) {
		msgs[i] = w->items[i].pt + DIME_SIG_BYTES;
		lens[i] = w->items[i].pt_len - DIME_SIG_BYTES;
	}
	rc = dime_ks_sign_batch(w->ks, w->author_key, msgs, lens, w->n_items, sigs, rcs);
	if (rc != DIME_OK) {
		ops_why(why, "the author key cannot sign");
		goto out;
	}
	for (size_t i = 0; i < w->n_items; i++)
		memcpy(w->items[i].pt, sigs[i], DIME_SIG_BYTES);
out:
	free(msgs);
	free(lens);
	free(sigs);
	free(rcs);
	return rc;
}

/* Add a data segment, spanning it over several chunks when it exceeds one chunk's limit. */
static int
ops_wrap_add_data(struct ops_wrap *w, const char **why, uint8_t type, uint8_t flags,
		  const uint8_t *data, size_t len)
{
	do {
		size_t take = len > DIME_MSG_DATA_MAX_BYTES ? DIME_MSG_DATA_MAX_BYTES : len;
		uint8_t f = (uint8_t)(flags | (take < len ? DIME_MSG_FLAG_SPAN : 0));
		int rc;

		if (take < len && !msg_type_content(type)) {
			ops_why(why, msg_why(type, MSG_R_LIMIT));
			return DIME_E_LIMIT;
		}
		rc = ops_wrap_add(w, why, type, f, data, take);
		if (rc != DIME_OK)
			return rc;
		data += take;
		len -= take;
	} while (len > 0);
	return DIME_OK;
}

/* Compress per policy. Out: *use and *use_len (the input or *owned), *flags. */
static int
ops_wrap_compress(const uint8_t **use, size_t *use_len, uint8_t **owned, uint8_t *flags,
		  const char **why, const struct dime_msg_wrap_opts *opts, uint8_t type,
		  struct dime_view in)
{
	size_t cap, n = 0;
	uint8_t *z;
	int rc;

	*owned = NULL;
	*flags = 0;
	*use = in.p;
	*use_len = in.len;
	if (opts->gzip == DIME_MSG_GZIP_NEVER) {
		if (in.len == 0) {
			/* an empty segment cannot be stored raw (spec: data length 0 is rejected)
			 */
			ops_why(why, msg_why(type, MSG_R_ZERO));
			return DIME_E_INVALID;
		}
		return DIME_OK;
	}
	if ((cap = dime_gzip_bound(in.len)) == SIZE_MAX) {
		ops_why(why, msg_why(type, MSG_R_LIMIT));
		return DIME_E_LIMIT;
	}
	if ((z = malloc(cap)) == NULL) {
		ops_why(why, "out of memory");
		return DIME_E_NOMEM;
	}
	rc = dime_gzip_compress(z, cap, &n, in.p, in.len);
	if (rc != DIME_OK) {
		free(z);
		ops_why(why, msg_why(type, MSG_R_GZIP));
		return rc;
	}
	/* if-smaller keeps the raw bytes unless compression wins; an empty segment must be
	 * compressed to be stored at all */
	if (opts->gzip == DIME_MSG_GZIP_IF_SMALLER && in.len > 0 && n >= in.len) {
		ops_free_secret(z, n);
		return DIME_OK;
	}
	*owned = z;
	*use = z;
	*use_len = n;
	*flags = DIME_MSG_FLAG_GZIP;
	return DIME_OK;
}

/* The CBC streams of one message: every chunk payload under its drawn key and every keyslot
 * under its actor's KEK, all encrypted by one dime_aes256cbc_encrypt_many call (multi-buffer
 * AES-NI: the streams are independent, so they run interleaved; docs/simd.md). */
struct ops_lanes {
	struct dime_aes256cbc_lane *l;		 /* 5 per chunk: payload, up to 4 keyslots */
	struct msg_ckey *ck;			 /* one per chunk (secret) */
	uint8_t (*slot)[DIME_MSG_KEYSLOT_BYTES]; /* 4 per chunk: keyslot plaintexts (secret) */
	size_t n, n_ck, n_slot, cap_ck;
};

static int
ops_lanes_init(struct ops_lanes *ln, size_t n_chunks)
{
	memset(ln, 0, sizeof(*ln));
	ln->l = malloc(5 * n_chunks * sizeof(*ln->l));
	ln->ck = malloc(n_chunks * (sizeof(*ln->ck) + 4 * sizeof(*ln->slot)));
	if (ln->l == NULL || ln->ck == NULL)
		return DIME_E_NOMEM;
	ln->slot = (uint8_t(*)[DIME_MSG_KEYSLOT_BYTES])(void *)(ln->ck + n_chunks);
	ln->cap_ck = n_chunks;
	return DIME_OK;
}

static void
ops_lanes_fini(struct ops_lanes *ln)
{
	if (ln->ck != NULL)
		dime_wipe(ln->ck, ln->cap_ck * (sizeof(*ln->ck) + 4 * sizeof(*ln->slot)));
	free(ln->ck);
	free(ln->l);
	memset(ln, 0, sizeof(*ln));
}

static void
ops_lane(struct ops_lanes *ln, const uint8_t *key, const uint8_t *iv, const uint8_t *in,
	 uint8_t *out, size_t len)
{
	struct dime_aes256cbc_lane *x = &ln->l[ln->n++];

	x->key = key;
	x->iv = iv;
	x->in = in;
	x->out = out;
	x->len = len;
}

/* Lay out item it in w: header, then its payload and keyslots A,O,D,R as the type allows,
 * each queued on ln under a fresh key and IV; the bytes are encrypted later, all at once. */
static int
ops_seal(struct dime_wr *wr, const struct ops_wrap *w, struct ops_lanes *ln, uint8_t type,
	 const uint8_t *pt, size_t pt_len)
{
	uint8_t actors = dime_msg_chunk_actors(type), *dst;
	struct msg_ckey *ck;

	dime_wr_u8(wr, type);
	dime_wr_be24(wr, (uint32_t)pt_len);
	dst = dime_wr_reserve(wr, pt_len);
	if (dst == NULL) /* counting pass, or a sticky error */
		return wr->err;
	DIME_ASSERT(ln->n_ck < ln->cap_ck);
	ck = &ln->ck[ln->n_ck++];
	dime_random(ck->key, sizeof(ck->key));
	dime_random(ck->iv, sizeof(ck->iv));
	ops_lane(ln, ck->key, ck->iv, pt, dst, pt_len);
	for (unsigned a = 0; a < 4; a++) {
		uint8_t *slot;

		if ((actors & (1u << a)) == 0)
			continue;
		dst = dime_wr_reserve(wr, DIME_MSG_KEYSLOT_BYTES);
		if (dst == NULL)
			return wr->err;
		slot = ln->slot[ln->n_slot++];
		msg_slot_plain(slot, ck);
		ops_lane(ln, w->kek[a].key, w->kek[a].iv, slot, dst, DIME_MSG_KEYSLOT_BYTES);
	}
	return DIME_OK;
}

static size_t
ops_sealed_len(uint8_t type, size_t pt_len)
{
	return DIME_MSG_CHUNK_HEADER_BYTES + pt_len +
	       (size_t)__builtin_popcount(dime_msg_chunk_actors(type)) * DIME_MSG_KEYSLOT_BYTES;
}

/* Overwrite signature chunk i of the (owned) message with sig, under its A keyslot's key. */
static int
ops_fill_sig(uint8_t *buf, const struct msg_parsed *m, size_t i, const struct msg_kek *ka,
	     const uint8_t sig[DIME_SIG_BYTES])
{
	struct msg_ckey ck;
	int rc = msg_slot_open(&ck, &m->ch[i], DIME_ACTOR_AUTHOR, ka);

	if (rc == DIME_OK)
		rc = dime_aes256cbc_encrypt(buf + (m->ch[i].payload.p - buf), sig, DIME_SIG_BYTES,
					    ck.key, ck.iv);
	dime_wipe(&ck, sizeof(ck));
	return rc;
}

static int
ops_envelope_text(char *out, size_t cap, size_t *len, const char **why, const char *l1,
		  const struct dime_signet *s1, const char *l2, const struct dime_signet *s2)
{
	const struct dime_signet *s[2] = {s1, s2};
	const char *l[2] = {l1, l2};
	struct dime_wr wr;

	dime_wr_init(&wr, (uint8_t *)out, cap);
	for (int j = 0; j < 2; j++) {
		struct dime_view id;
		char fp[DIME_FP_B64_LEN + 1];

		if (dime_signet_identifier(s[j], &id) != DIME_OK || id.len == 0 ||
		    id.len >= DIME_MSG_ADDR_MAX) {
			ops_why(why, "a signet has no usable identifier (field 254)");
			return DIME_E_INVALID;
		}
		for (size_t i = 0; i < id.len; i++)
			if (id.p[i] < 0x21 || id.p[i] > 0x7e || id.p[i] == '>') {
				ops_why(why, "a signet identifier is not printable");
				return DIME_E_INVALID;
			}
		if (dime_signet_fingerprint_b64(fp, s[j], DIME_FP_CRYPTO) != DIME_OK) {
			ops_why(why, "a signet has no crypto fingerprint");
			return DIME_E_INVALID;
		}
		dime_wr_bytes(&wr, l[j], strlen(l[j]));
		dime_wr_bytes(&wr, ": <", 3);
		dime_wr_bytes(&wr, id.p, id.len);
		dime_wr_bytes(&wr, ">\r\n", 3);
		dime_wr_bytes(&wr, l[j], strlen(l[j]));
		dime_wr_bytes(&wr, "-Signet: [", 10);
		dime_wr_bytes(&wr, fp, DIME_FP_B64_LEN);
		dime_wr_bytes(&wr, "]\r\n", 3);
	}
	if (wr.err != DIME_OK) {
		ops_why(why, "envelope text too long");
		return DIME_E_INVALID;
	}
	*len = wr.off;
	return DIME_OK;
}

int
dime_msg_wrap(const struct dime_ks *ks, uint8_t **out, size_t *out_len, const char **why,
	      const struct dime_msg_parties *p, uint32_t author_key,
	      const struct dime_msg_content *c, const struct dime_msg_wrap_opts *opts)
{
	return msg_wrap_op(NULL, ks, out, out_len, why, p, author_key, c, opts);
}

/* pre: the batch's ephemeral key and KEKs, or NULL to draw and compute them here. */
int
msg_wrap_op(const struct msg_wrap_pre *pre, const struct dime_ks *ks, uint8_t **out,
	    size_t *out_len, const char **why, const struct dime_msg_parties *p,
	    uint32_t author_key, const struct dime_msg_content *c,
	    const struct dime_msg_wrap_opts *opts)
{
	static const struct dime_msg_wrap_opts defaults = {DIME_MSG_GZIP_IF_SMALLER,
							   DIME_MSG_PAD_REFERENCE};
	static const uint8_t zero_sig[DIME_SIG_BYTES] = {0};
	static const uint8_t sig_types[5] = {225, 226, 248, 249, 255};
	const struct dime_signet *actor_s[4];
	uint8_t eph_priv[DIME_SECP_PRIV_BYTES], eph_pub[DIME_SECP_PUB_BYTES];
	uint8_t apub[DIME_ED25519_PUB_BYTES], kpub[DIME_ED25519_PUB_BYTES], sig[DIME_SIG_BYTES];
	char env4[2 * (DIME_MSG_ADDR_MAX + DIME_FP_B64_LEN + 40)], env5[sizeof(env4)];
	size_t env4_len = 0, env5_len = 0, total = 0, body;
	struct ops_wrap w;
	struct ops_lanes ln;
	struct msg_parsed m;
	struct dime_wr wr;
	uint8_t *buf = NULL, *tree = NULL;
	size_t tree_len = 0;
	int rc = DIME_OK;
	unsigned last = 0;

	ops_why(why, "");
	if (out == NULL || out_len == NULL || ks == NULL || p == NULL || c == NULL) {
		ops_why(why, "invalid argument");
		return DIME_E_INVALID;
	}
	*out = NULL;
	*out_len = 0;
	memset(&w, 0, sizeof(w));
	memset(&m, 0, sizeof(m));
	memset(&ln, 0, sizeof(ln));
	if (opts == NULL)
		opts = &defaults;
	actor_s[0] = p->author;
	actor_s[1] = p->origin;
	actor_s[2] = p->destination;
	actor_s[3] = p->recipient;
	for (int a = 0; a < 4; a++)
		if (actor_s[a] == NULL) {
			ops_why(why, "all four signets are required");
			return DIME_E_INVALID;
		}
	if (c->n_parts > 0 && c->parts == NULL) {
		ops_why(why, "invalid argument: parts");
		return DIME_E_INVALID;
	}
	for (size_t i = 0; i < c->n_parts; i++) {
		unsigned t = c->parts[i].type;

		if ((t != DIME_CHUNK_DISPLAY && t != DIME_CHUNK_ATTACH) || t < last) {
			ops_why(why, "parts must be 67 or 131, displays before attachments");
			return DIME_E_INVALID;
		}
		last = t;
	}
	if (dime_signet_signing_key(p->author, apub) != DIME_OK ||
	    dime_ks_sign_pub(ks, kpub, author_key) != DIME_OK ||
	    !dime_ct_equal(apub, kpub, sizeof(apub))) {
		ops_why(why, "the author key does not match the author signet");
		return DIME_E_INVALID;
	}
	rc = ops_envelope_text(env4, sizeof(env4), &env4_len, why, "Author", p->author,
			       "Destination", p->destination);
	if (rc == DIME_OK)
		rc = ops_envelope_text(env5, sizeof(env5), &env5_len, why, "Recipient",
				       p->recipient, "Origin", p->origin);
	if (rc != DIME_OK)
		return rc;

	w.ks = ks;
	w.author_key = author_key;
	w.alt_pad = opts->padding == DIME_MSG_PAD_ALTERNATE;
	/* 1. plaintexts, each signed by the author (reference-format §6.7) */
	rc = ops_wrap_add(&w, why, DIME_CHUNK_ORIGIN, 0, (const uint8_t *)env4, env4_len);
	if (rc == DIME_OK)
		rc = ops_wrap_add(&w, why, DIME_CHUNK_DESTINATION, 0, (const uint8_t *)env5,
				  env5_len);
	for (size_t i = 0; i < c->n_parts + 2 && rc == DIME_OK; i++) {
		uint8_t type = i == 0	? DIME_CHUNK_COMMON
			       : i == 1 ? DIME_CHUNK_HEADERS
					: c->parts[i - 2].type;
		struct dime_view v = i == 0   ? c->common
				     : i == 1 ? c->headers
					      : c->parts[i - 2].data;
		const uint8_t *use;
		size_t use_len;
		uint8_t *owned, flags;

		rc = ops_wrap_compress(&use, &use_len, &owned, &flags, why, opts, type, v);
		if (rc == DIME_OK)
			rc = ops_wrap_add_data(&w, why, type, flags, use, use_len);
		ops_free_secret(owned, use_len);
	}
	if (rc == DIME_OK)
		rc = ops_wrap_sign(&w, why);
	if (rc != DIME_OK)
		goto out;
	/* 2. ephemeral key and the four KEKs (a batch computed them ahead, with the same
	 * per-actor results) */
	if (pre != NULL) {
		memcpy(eph_pub, pre->eph_pub, sizeof(eph_pub));
		memset(eph_priv, 0, sizeof(eph_priv));
		for (int a = 0; a < 4 && rc == DIME_OK; a++) {
			rc = pre->rc[a];
			if (rc == DIME_OK)
				w.kek[a] = pre->kek[a];
		}
	} else {
		rc = dime_secp_keygen(eph_priv, eph_pub);
	}
	for (int a = 0; a < 4 && rc == DIME_OK && pre == NULL; a++) {
		uint8_t enc[DIME_SECP_PUB_BYTES], x[DIME_ECDH_BYTES];

		rc = dime_signet_enc_key(actor_s[a], enc);
		if (rc == DIME_OK)
			rc = dime_secp_ecdh_x(x, eph_priv, enc);
		if (rc == DIME_OK)
			msg_kek_derive(&w.kek[a], x);
		dime_wipe(x, sizeof(x));
	}
	if (rc != DIME_OK) {
		ops_why(why, "a signet's encryption key is unusable");
		rc = DIME_E_INVALID;
		goto out;
	}
	/* 3. size, then the chunks */
	body = DIME_MSG_CHUNK_HEADER_BYTES + DIME_SECP_PUB_BYTES;
	for (size_t i = 0; i < w.n_items; i++)
		body += ops_sealed_len(w.items[i].type, w.items[i].pt_len);
	for (int j = 0; j < 5; j++)
		body += ops_sealed_len(sig_types[j], DIME_SIG_BYTES);
	if (body > DIME_MSG_MAX_BYTES - DIME_MSG_HEADER_BYTES) {
		ops_why(why, "message over DIME_MSG_MAX_BYTES");
		rc = DIME_E_LIMIT;
		goto out;
	}
	total = DIME_MSG_HEADER_BYTES + body;
	buf = malloc(total);
	if (buf == NULL || ops_lanes_init(&ln, w.n_items + 5) != DIME_OK) {
		ops_why(why, "out of memory");
		rc = DIME_E_NOMEM;
		goto out;
	}
	dime_wr_init(&wr, buf, total);
	dime_wr_be16(&wr, (uint16_t)DIME_MSG_MAGIC);
	dime_wr_be32(&wr, (uint32_t)body);
	dime_wr_u8(&wr, DIME_CHUNK_EPHEMERAL);
	dime_wr_be24(&wr, DIME_SECP_PUB_BYTES);
	dime_wr_bytes(&wr, eph_pub, DIME_SECP_PUB_BYTES);
	for (size_t i = 0; i < w.n_items && rc == DIME_OK; i++)
		rc = ops_seal(&wr, &w, &ln, w.items[i].type, w.items[i].pt, w.items[i].pt_len);
	/* 225 and 226 are sealed as zeros and filled below; 248/249/255 stay zero placeholders
	 * for the origin (reference-format §6.7 step 8) */
	for (int j = 0; j < 5 && rc == DIME_OK; j++)
		rc = ops_seal(&wr, &w, &ln, sig_types[j], zero_sig, DIME_SIG_BYTES);
	if (rc == DIME_OK)
		rc = dime_aes256cbc_encrypt_many(ln.l, ln.n);
	if (rc == DIME_OK && (wr.err != DIME_OK || wr.off != total))
		rc = DIME_E_CRYPTO;
	if (rc != DIME_OK) {
		ops_why(why, "sealing a chunk failed");
		goto out;
	}
	/* 4. tree (reference form), then full signature over 2..225 */
	rc = msg_parse(&m, why, buf, total);
	if (rc == DIME_OK)
		rc = msg_tree_input(&tree, &tree_len, &m, m.i_tree, 0);
	if (rc == DIME_OK)
		rc = dime_ks_sign(ks, sig, author_key, tree, tree_len);
	if (rc == DIME_OK)
		rc = ops_fill_sig(buf, &m, m.i_tree, &w.kek[0], sig);
	if (rc == DIME_OK) {
		struct dime_view cover = msg_cover(&m, msg_cover_end(&m, DIME_CHUNK_AUTHOR_SIG));

		rc = dime_ks_sign(ks, sig, author_key, cover.p, cover.len);
	}
	if (rc == DIME_OK)
		rc = ops_fill_sig(buf, &m, m.i_author, &w.kek[0], sig);
	if (rc != DIME_OK)
		ops_why(why, "author signatures failed");
out:
	ops_lanes_fini(&ln);
	free(tree);
	msg_parsed_free(&m);
	dime_wipe(eph_priv, sizeof(eph_priv));
	dime_wipe(w.kek, sizeof(w.kek));
	for (size_t i = 0; i < w.n_items; i++)
		ops_free_secret(w.items[i].pt, w.items[i].pt_len);
	free(w.items);
	if (rc != DIME_OK) {
		dime_msg_free(buf, buf == NULL ? 0 : total);
		return rc;
	}
	*out = buf;
	*out_len = total;
	return DIME_OK;
}

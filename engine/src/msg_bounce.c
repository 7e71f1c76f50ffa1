/* The D/MIME bounce object (docs/bounce.md): the destination returns the chunks the origin's
 * bounce signatures cover, unchanged; the origin proves with its own key and POK that they are a
 * message it signed. */

#include <stdlib.h>
#include <string.h>

#include "msg_int.h"
#include "rd.h"
#include "wr.h"

#define BOUNCE_MAX_CHUNKS 1024u

static void
bounce_why(const char **why, const char *s)
{
	if (why != NULL)
		*why = s;
}

static int
bounce_code_ok(unsigned code)
{
	return (code >= DIME_BOUNCE_UNKNOWN_RECIPIENT && code <= DIME_BOUNCE_TEMPORARY) ||
	       code == DIME_BOUNCE_OTHER;
}

static int
bounce_display_type(uint8_t t)
{
	return t >= DIME_CHUNK_DISPLAY_MULTI && t <= DIME_CHUNK_DISPLAY;
}

/* Which chunks of m go into the bounce, in order. Returns the count. */
static size_t
bounce_pick(size_t *idx, const struct msg_parsed *m, int with_display)
{
	size_t n = 0;

	for (size_t i = 0; i < m->d.n_chunks; i++) {
		uint8_t t = m->ch[i].type;

		if (t < 64 || (with_display && bounce_display_type(t)) ||
		    t == DIME_CHUNK_META_BOUNCE || (with_display && t == DIME_CHUNK_DISPLAY_BOUNCE))
			idx[n++] = i;
	}
	return n;
}

int
dime_msg_bounce(const struct dime_ks *ks, uint8_t **out, size_t *out_len, const char **why,
		const uint8_t *in, size_t in_len, uint32_t dest_key,
		const struct dime_msg_parties *p, enum dime_msg_bounce_code code,
		const char *reason, int with_display)
{
	struct dime_msg_envelope env;
	struct msg_parsed m;
	struct dime_wr w;
	size_t *idx = NULL, n = 0, rlen;
	uint8_t *buf = NULL;
	int rc;

	bounce_why(why, "");
	if (out == NULL || out_len == NULL)
		return DIME_E_INVALID;
	*out = NULL;
	*out_len = 0;
	memset(&m, 0, sizeof(m));
	rlen = reason != NULL ? strlen(reason) : 0;
	if (!bounce_code_ok((unsigned)code) || rlen > DIME_MSG_BOUNCE_REASON_MAX) {
		bounce_why(why, "bounce: bad reason code or reason longer than 1024 bytes");
		return DIME_E_INVALID;
	}
	/* Only a message the destination accepts can be bounced: the origin's signatures hold. */
	rc = dime_msg_accept(ks, &env, why, in, in_len, dest_key, p);
	dime_wipe(&env, sizeof(env));
	if (rc != DIME_OK)
		return rc;
	if ((rc = msg_parse(&m, why, in, in_len)) != DIME_OK)
		return rc;
	if (m.i_meta == MSG_NONE) {
		bounce_why(why, "bounce: the message has no metadata bounce signature (248)");
		rc = DIME_E_INVALID;
		goto out;
	}
	if ((idx = malloc(m.d.n_chunks * sizeof(*idx))) == NULL) {
		rc = DIME_E_NOMEM;
		goto out;
	}
	n = bounce_pick(idx, &m, with_display && m.i_disp != MSG_NONE);
	for (int pass = 0; pass < 2; pass++) {
		dime_wr_init(&w, buf, pass == 0 ? 0 : *out_len);
		dime_wr_be16(&w, DIME_MSG_BOUNCE_MAGIC);
		dime_wr_be32(&w, 0); /* patched below */
		dime_wr_u8(&w, (uint8_t)code);
		dime_wr_be16(&w, (uint16_t)rlen);
		dime_wr_bytes(&w, reason, rlen);
		for (size_t i = 0; i < n; i++)
			dime_wr_bytes(&w, m.ch[idx[i]].chunk.p, m.ch[idx[i]].chunk.len);
		if (w.err != DIME_OK || w.off - 6 > UINT32_MAX) {
			rc = w.err != DIME_OK ? w.err : DIME_E_LIMIT;
			goto out;
		}
		if (pass == 0) {
			*out_len = w.off;
			if ((buf = malloc(w.off)) == NULL) {
				rc = DIME_E_NOMEM;
				goto out;
			}
		}
	}
	{
		uint32_t body = (uint32_t)(*out_len - 6);

		buf[2] = (uint8_t)(body >> 24);
		buf[3] = (uint8_t)(body >> 16);
		buf[4] = (uint8_t)(body >> 8);
		buf[5] = (uint8_t)body;
	}
	*out = buf;
	buf = NULL;
	rc = DIME_OK;
out:
	free(idx);
	free(buf);
	msg_parsed_free(&m);
	if (rc != DIME_OK)
		*out_len = 0;
	return rc;
}

/* One chunk framed as in a message; views borrow r's input. */
static int
bounce_chunk(struct dime_msg_chunk_info *c, struct dime_rd *r, const uint8_t *base)
{
	size_t start = r->off, plen;
	uint8_t actors;

	memset(c, 0, sizeof(*c));
	c->type = dime_rd_u8(r);
	plen = dime_rd_be24(r);
	actors = dime_msg_chunk_actors(c->type);
	c->actors = actors;
	c->n_slots =
	    (uint8_t)((actors & 1) + (actors >> 1 & 1) + (actors >> 2 & 1) + (actors >> 3 & 1));
	c->payload.p = dime_rd_take(r, plen);
	c->payload.len = plen;
	c->slots.p = dime_rd_take(r, (size_t)c->n_slots * DIME_MSG_KEYSLOT_BYTES);
	c->slots.len = (size_t)c->n_slots * DIME_MSG_KEYSLOT_BYTES;
	if (r->err != DIME_OK)
		return r->err;
	c->offset = (size_t)(r->p + start - base);
	c->chunk.p = r->p + start;
	c->chunk.len = r->off - start;
	return DIME_OK;
}

/* The order a bounce's chunks must follow; returns the position class of a type, or -1. */
static int
bounce_rank(uint8_t t)
{
	switch (t) {
	case DIME_CHUNK_EPHEMERAL: return 0;
	case DIME_CHUNK_ORIGIN: return 1;
	case DIME_CHUNK_DESTINATION: return 2;
	case DIME_CHUNK_COMMON: return 3;
	case DIME_CHUNK_HEADERS: return 4;
	case DIME_CHUNK_DISPLAY_MULTI:
	case DIME_CHUNK_DISPLAY_ALT:
	case DIME_CHUNK_DISPLAY: return 5;
	case DIME_CHUNK_META_BOUNCE: return 6;
	case DIME_CHUNK_DISPLAY_BOUNCE: return 7;
	default: return -1;
	}
}

/* Decrypt signature chunk c with the origin's slot and verify it over cover. */
static int
bounce_sig_check(struct msg_op *op, const char **why, const struct dime_msg_chunk_info *c,
		 const struct msg_kek *k, const struct dime_signet *origin, const uint8_t *cover,
		 size_t cover_len)
{
	uint8_t sig[DIME_SIG_BYTES];
	struct msg_ckey ck;
	int rc;

	rc = msg_slot_open(&ck, c, DIME_ACTOR_ORIGIN, k);
	if (rc == DIME_OK)
		rc = dime_aes256cbc_decrypt(sig, c->payload.p, DIME_SIG_BYTES, ck.key, ck.iv);
	dime_wipe(&ck, sizeof(ck));
	if (rc != DIME_OK) {
		bounce_why(why, msg_why(c->type, MSG_R_SLOT));
		return DIME_E_BADSIG;
	}
	if (msg_op_org_verify(op, origin, sig, cover, cover_len) != DIME_OK) {
		bounce_why(why, msg_why(c->type, MSG_R_SIG));
		return DIME_E_BADSIG;
	}
	return DIME_OK;
}

int
dime_msg_bounce_verify(const struct dime_ks *ks, struct dime_msg_bounce_info *info,
		       const char **why, const uint8_t *in, size_t in_len, uint32_t org_key,
		       const struct dime_signet *origin)
{
	return msg_bounce_verify_op(NULL, ks, info, why, in, in_len, org_key, origin);
}

int
dime_msg_bounce_frame(const char **why, const uint8_t *in, size_t in_len)
{
	struct dime_msg_bounce_info info;
	int rc = msg_bounce_verify_op(NULL, NULL, &info, why, in, in_len, DIME_KS_NONE, NULL);

	dime_wipe(&info, sizeof(info));
	return rc;
}

int
msg_bounce_verify_op(struct msg_op *op, const struct dime_ks *ks, struct dime_msg_bounce_info *info,
		     const char **why, const uint8_t *in, size_t in_len, uint32_t org_key,
		     const struct dime_signet *origin)
{
	struct dime_msg_chunk_info *ch = NULL;
	struct msg_kek k;
	struct msg_ckey ck;
	struct msg_payload pl;
	struct dime_rd r, body;
	const uint8_t *reason, *chunks_start;
	uint8_t *pt = NULL;
	size_t n = 0, rlen, i_meta = MSG_NONE, i_disp = MSG_NONE, end_meta = 0, end_disp = 0;
	int rc = DIME_E_MALFORMED, last = -1, n_display = 0, seen[8] = {0};

	bounce_why(why, "");
	/* ks and origin both NULL: framing only (dime_msg_bounce_frame) */
	if (info == NULL || (ks == NULL) != (origin == NULL))
		return DIME_E_INVALID;
	memset(info, 0, sizeof(*info));
	memset(&k, 0, sizeof(k));
	dime_rd_init(&r, in, in_len);
	if (dime_rd_be16(&r) != DIME_MSG_BOUNCE_MAGIC && r.err == DIME_OK) {
		bounce_why(why, "bounce: not a bounce object (magic)");
		return DIME_E_MALFORMED;
	}
	dime_rd_sub(&r, &body, dime_rd_be32(&r));
	if (dime_rd_finish(&r) != DIME_OK) {
		bounce_why(why, "bounce: length does not match the object");
		return r.err;
	}
	info->code = (enum dime_msg_bounce_code)dime_rd_u8(&body);
	rlen = dime_rd_be16(&body);
	reason = dime_rd_take(&body, rlen);
	if (body.err != DIME_OK) {
		bounce_why(why, "bounce: truncated reason");
		rc = body.err;
		goto fail;
	}
	if (!bounce_code_ok((unsigned)info->code) || rlen > DIME_MSG_BOUNCE_REASON_MAX ||
	    memchr(reason, 0, rlen) != NULL) {
		bounce_why(why, "bounce: bad reason code or reason text");
		goto fail;
	}
	chunks_start = body.p + body.off;
	if ((ch = malloc(BOUNCE_MAX_CHUNKS * sizeof(*ch))) == NULL) {
		rc = DIME_E_NOMEM;
		goto fail;
	}
	while (body.off < body.len) {
		int rank;

		if (n == BOUNCE_MAX_CHUNKS) {
			bounce_why(why, "bounce: too many chunks");
			rc = DIME_E_LIMIT;
			goto fail;
		}
		if ((rc = bounce_chunk(&ch[n], &body, in)) != DIME_OK) {
			bounce_why(why, "bounce: truncated chunk");
			goto fail;
		}
		rank = bounce_rank(ch[n].type);
		/* ascending; only display chunks repeat */
		if (rank < 0 || rank < last || (rank == last && rank != 5)) {
			bounce_why(why, "bounce: chunks out of order or repeated");
			rc = DIME_E_MALFORMED;
			goto fail;
		}
		seen[rank] = 1;
		if (rank == 5)
			n_display++;
		if (rank <= 4)
			end_meta = body.off;
		if (rank <= 5)
			end_disp = body.off;
		if (rank == 6)
			i_meta = n;
		if (rank == 7)
			i_disp = n;
		last = rank;
		n++;
	}
	if (!seen[0] || !seen[1] || !seen[2] || !seen[3] || !seen[6] ||
	    (n_display > 0) != (i_disp != MSG_NONE) || ch[0].payload.len != DIME_SECP_PUB_BYTES) {
		bounce_why(why, "bounce: needs 2, 4, 5, 33 and 248, and 249 exactly with displays");
		rc = DIME_E_MALFORMED;
		goto fail;
	}
	for (size_t i = 1; i < n; i++)
		if (ch[i].payload.len == 0 || ch[i].payload.len % DIME_AES_BLOCK_BYTES != 0 ||
		    (msg_type_sig(ch[i].type) && ch[i].payload.len != DIME_SIG_BYTES)) {
			bounce_why(why, msg_why(ch[i].type, MSG_R_PLEN));
			rc = DIME_E_MALFORMED;
			goto fail;
		}
	if (ks == NULL) {
		free(ch);
		memset(info, 0, sizeof(*info));
		return DIME_OK;
	}
	rc = msg_op_kek(op, ks, &k, org_key, ch[0].payload.p);
	if (rc != DIME_OK) {
		bounce_why(why, "bounce: the organisation's key cannot derive a KEK");
		rc = rc == DIME_E_MALFORMED ? DIME_E_BADSIG : rc;
		goto fail;
	}
	/* Proof first: the signatures over ciphertext, before anything is decrypted. */
	rc = bounce_sig_check(op, why, &ch[i_meta], &k, origin, chunks_start,
			      (size_t)(body.p + end_meta - chunks_start));
	if (rc == DIME_OK && i_disp != MSG_NONE)
		rc = bounce_sig_check(op, why, &ch[i_disp], &k, origin, chunks_start,
				      (size_t)(body.p + end_disp - chunks_start));
	if (rc != DIME_OK)
		goto fail;
	rc = msg_slot_open(&ck, &ch[1], DIME_ACTOR_ORIGIN, &k);
	if (rc == DIME_OK)
		rc = msg_payload_decrypt(&pt, &ch[1], &ck);
	dime_wipe(&ck, sizeof(ck));
	if (rc == DIME_OK)
		rc = msg_payload_decode(&pl, why, pt, ch[1].payload.len, ch[1].type);
	if (rc == DIME_OK)
		rc = msg_envelope_parse(&info->env, why, pl.data.p, pl.data.len, 1);
	if (rc != DIME_OK) {
		bounce_why(why, msg_why(DIME_CHUNK_ORIGIN, MSG_R_ENVELOPE));
		rc = DIME_E_BADSIG;
		goto fail;
	}
	info->env.have_origin_chunk = 1;
	memcpy(info->reason, reason, rlen);
	info->reason[rlen] = 0;
	info->with_display = i_disp != MSG_NONE;
	dime_wipe(pt, ch[1].payload.len);
	free(pt);
	free(ch);
	dime_wipe(&k, sizeof(k));
	return DIME_OK;
fail:
	if (pt != NULL) {
		dime_wipe(pt, ch[1].payload.len);
		free(pt);
	}
	free(ch);
	dime_wipe(&k, sizeof(k));
	memset(info, 0, sizeof(*info));
	return rc == DIME_OK ? DIME_E_MALFORMED : rc;
}

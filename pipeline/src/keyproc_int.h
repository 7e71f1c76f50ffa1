#ifndef DIME_PIPELINE_KEYPROC_INT_H
#define DIME_PIPELINE_KEYPROC_INT_H
/* The key process wire format (docs/keyproc.md, byte by byte), shared by keyproc.c (server,
 * supervisor) and keyproc_client.c. One reader and one writer in the style of engine/src/rd.h
 * and wr.h (which are the engine's own): big-endian, bounds-checked, sticky error. */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dime/common.h"
#include "dime/crypto.h"

/* "DKP" and the version byte: a peer speaking another version is refused, never guessed at. */
#define KP_MAGIC 0x444b5001u

#define KP_OP_HELLO   1u
#define KP_OP_SIGN    2u
#define KP_OP_ECDH    3u
#define KP_OP_RELOAD  4u
#define KP_OP_RESTART 0x80u /* reply only: the supervisor saw the key process die */

#define KP_REQ_FD   1u /* request: the sign payload is in a memfd passed with SCM_RIGHTS */
#define KP_REP_MORE 1u /* reply: more datagrams of the same reply follow (hello) */

#define KP_REQ_HDR   48u /* magic 4, seq 4, op 1, flags 1, count 2, key 32, payload_len 4 */
#define KP_REP_HDR   16u /* magic 4, seq 4, op 1, flags 1, count 2, rc 4 */
#define KP_SIGN_ITEM 4u	 /* request: be32 input length */
#define KP_ECDH_ITEM DIME_SECP_PUB_BYTES
#define KP_SIGN_REP  (4u + DIME_SIG_BYTES)  /* rc, signature */
#define KP_ECDH_REP  (4u + DIME_ECDH_BYTES) /* rc, x */
#define KP_IDENT_MAX 256u
/* hello item: store kind 2, version 4, key kind 2, sign_pub 32, enc_pub 33, ident 256 */
#define KP_HELLO_ITEM (2u + 4u + 2u + DIME_ED25519_PUB_BYTES + DIME_SECP_PUB_BYTES + KP_IDENT_MAX)
#define KP_HELLO_PER  64u /* hello items per datagram: 21 KB */
/* The largest datagram either side sends: well under the default socket buffer (208 KiB), so
 * a datagram never waits for room that a slow peer would have to make. */
#define KP_DGRAM_MAX 65536u

struct kp_req {
	uint32_t magic, seq;
	uint8_t op, flags;
	uint16_t count;
	uint8_t key[DIME_ED25519_PUB_BYTES];
	uint32_t payload_len;
};

struct kp_rep {
	uint32_t magic, seq;
	uint8_t op, flags;
	uint16_t count;
	int32_t rc;
};

struct kp_rd {
	const uint8_t *p;
	size_t len, off;
	int err;
};

struct kp_wr {
	uint8_t *p;
	size_t cap, off;
	int err;
};

static inline void
kp_rd_init(struct kp_rd *r, const uint8_t *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->err = DIME_OK;
}

static inline size_t
kp_rd_left(const struct kp_rd *r)
{
	return r->err == DIME_OK ? r->len - r->off : 0;
}

static inline const uint8_t *
kp_rd_take(struct kp_rd *r, size_t n)
{
	const uint8_t *v;

	if (r->err != DIME_OK)
		return NULL;
	if (n > r->len - r->off) { /* never off + n > len */
		r->err = DIME_E_TRUNCATED;
		return NULL;
	}
	v = r->p + r->off;
	r->off += n;
	return v;
}

static inline uint8_t
kp_rd_u8(struct kp_rd *r)
{
	const uint8_t *b = kp_rd_take(r, 1);

	return b == NULL ? 0 : b[0];
}

static inline uint16_t
kp_rd_be16(struct kp_rd *r)
{
	const uint8_t *b = kp_rd_take(r, 2);

	return b == NULL ? 0 : (uint16_t)((unsigned)b[0] << 8 | b[1]);
}

static inline uint32_t
kp_rd_be32(struct kp_rd *r)
{
	const uint8_t *b = kp_rd_take(r, 4);

	return b == NULL ? 0
			 : (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static inline void
kp_rd_copy(struct kp_rd *r, uint8_t *dst, size_t n)
{
	const uint8_t *b = kp_rd_take(r, n);

	if (b == NULL)
		memset(dst, 0, n);
	else
		memcpy(dst, b, n);
}

static inline void
kp_wr_init(struct kp_wr *w, uint8_t *p, size_t cap)
{
	w->p = p;
	w->cap = cap;
	w->off = 0;
	w->err = DIME_OK;
}

static inline uint8_t *
kp_wr_reserve(struct kp_wr *w, size_t n)
{
	uint8_t *v;

	if (w->err != DIME_OK)
		return NULL;
	if (n > w->cap - w->off) {
		w->err = DIME_E_NOSPACE;
		return NULL;
	}
	v = w->p + w->off;
	w->off += n;
	return v;
}

static inline void
kp_wr_bytes(struct kp_wr *w, const void *src, size_t n)
{
	uint8_t *d = kp_wr_reserve(w, n);

	if (d != NULL && n > 0)
		memcpy(d, src, n);
}

static inline void
kp_wr_u8(struct kp_wr *w, uint8_t v)
{
	kp_wr_bytes(w, &v, 1);
}

static inline void
kp_wr_be16(struct kp_wr *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	kp_wr_bytes(w, b, 2);
}

static inline void
kp_wr_be32(struct kp_wr *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

	kp_wr_bytes(w, b, 4);
}

/* An rc travels as its two's complement in 32 bits. */
static inline void
kp_wr_rc(struct kp_wr *w, int rc)
{
	kp_wr_be32(w, (uint32_t)(int32_t)rc);
}

static inline int
kp_rd_rc(struct kp_rd *r)
{
	uint32_t v = kp_rd_be32(r);

	return v > 0x7fffffffu ? -(int)(0xffffffffu - v) - 1 : (int)v;
}

static inline void
kp_wr_req(struct kp_wr *w, const struct kp_req *q)
{
	kp_wr_be32(w, q->magic);
	kp_wr_be32(w, q->seq);
	kp_wr_u8(w, q->op);
	kp_wr_u8(w, q->flags);
	kp_wr_be16(w, q->count);
	kp_wr_bytes(w, q->key, sizeof(q->key));
	kp_wr_be32(w, q->payload_len);
}

static inline void
kp_rd_req(struct kp_rd *r, struct kp_req *q)
{
	q->magic = kp_rd_be32(r);
	q->seq = kp_rd_be32(r);
	q->op = kp_rd_u8(r);
	q->flags = kp_rd_u8(r);
	q->count = kp_rd_be16(r);
	kp_rd_copy(r, q->key, sizeof(q->key));
	q->payload_len = kp_rd_be32(r);
}

static inline void
kp_wr_rep(struct kp_wr *w, const struct kp_rep *p)
{
	kp_wr_be32(w, p->magic);
	kp_wr_be32(w, p->seq);
	kp_wr_u8(w, p->op);
	kp_wr_u8(w, p->flags);
	kp_wr_be16(w, p->count);
	kp_wr_rc(w, p->rc);
}

static inline void
kp_rd_rep(struct kp_rd *r, struct kp_rep *p)
{
	p->magic = kp_rd_be32(r);
	p->seq = kp_rd_be32(r);
	p->op = kp_rd_u8(r);
	p->flags = kp_rd_u8(r);
	p->count = kp_rd_be16(r);
	p->rc = (int32_t)kp_rd_rc(r);
}

#endif

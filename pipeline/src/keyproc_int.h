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
#include "rd.h" /* the engine's one reader and writer (STYLE.md §5) */
#include "wr.h"

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

/* An rc travels as its two's complement in 32 bits. */
static inline void
kp_wr_rc(struct dime_wr *w, int rc)
{
	dime_wr_be32(w, (uint32_t)(int32_t)rc);
}

static inline int
kp_rd_rc(struct dime_rd *r)
{
	uint32_t v = dime_rd_be32(r);

	return v > 0x7fffffffu ? -(int)(0xffffffffu - v) - 1 : (int)v;
}

static inline void
kp_wr_req(struct dime_wr *w, const struct kp_req *q)
{
	dime_wr_be32(w, q->magic);
	dime_wr_be32(w, q->seq);
	dime_wr_u8(w, q->op);
	dime_wr_u8(w, q->flags);
	dime_wr_be16(w, q->count);
	dime_wr_bytes(w, q->key, sizeof(q->key));
	dime_wr_be32(w, q->payload_len);
}

static inline void
kp_rd_req(struct dime_rd *r, struct kp_req *q)
{
	q->magic = dime_rd_be32(r);
	q->seq = dime_rd_be32(r);
	q->op = dime_rd_u8(r);
	q->flags = dime_rd_u8(r);
	q->count = dime_rd_be16(r);
	dime_rd_copy(r, q->key, sizeof(q->key));
	q->payload_len = dime_rd_be32(r);
}

static inline void
kp_wr_rep(struct dime_wr *w, const struct kp_rep *p)
{
	dime_wr_be32(w, p->magic);
	dime_wr_be32(w, p->seq);
	dime_wr_u8(w, p->op);
	dime_wr_u8(w, p->flags);
	dime_wr_be16(w, p->count);
	kp_wr_rc(w, p->rc);
}

static inline void
kp_rd_rep(struct dime_rd *r, struct kp_rep *p)
{
	p->magic = dime_rd_be32(r);
	p->seq = dime_rd_be32(r);
	p->op = dime_rd_u8(r);
	p->flags = dime_rd_u8(r);
	p->count = dime_rd_be16(r);
	p->rc = (int32_t)kp_rd_rc(r);
}

#endif

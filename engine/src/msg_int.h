#ifndef DIME_ENGINE_MSG_INT_H
#define DIME_ENGINE_MSG_INT_H
/* Private to the D/MIME engine (msg_codec.c, msg_crypto.c, msg_ops.c). */

#include <stddef.h>
#include <stdint.h>

#include "dime/msg.h"

#define MSG_NONE	   ((size_t)-1)
#define MSG_RESERVED_FLAGS 0x78u
#define MSG_FP_B64_LEN	   86u

/* A parsed message: the framing plus where the fixed chunks are. Views borrow in. */
struct msg_parsed {
	const uint8_t *in;
	size_t in_len;
	struct dime_msg_dump d;
	struct dime_msg_chunk_info *ch; /* malloc'd, d.n_chunks entries */
	size_t i_eph, i_origin, i_dest, i_common, i_headers, i_tree, i_author, i_meta, i_disp,
	    i_org;
	size_t content_first, content_end; /* [first, end) indices of chunks 3, 65..131 */
	uint8_t eph[DIME_SECP_PUB_BYTES];
	/* Re-key container (magic 1850, docs/rekey.md): the chunks above are the inner message's;
	 * rk.present == 0 for a plain message. Views borrow in. */
	struct msg_rk {
		int present;
		struct dime_view message; /* the original message bytes, tracing prefix included */
		struct dime_view record;  /* version through the last keyslot */
		uint8_t old_fp[DIME_FP_BYTES], new_fp[DIME_FP_BYTES];
		uint8_t eph[DIME_SECP_PUB_BYTES];
		size_t n_slots;
		const uint8_t *entries; /* n_slots x (be32 chunk index | 64-byte keyslot) */
	} rk;
};

/* An actor's key encryption key (reference-format §5). */
struct msg_kek {
	uint8_t key[DIME_AES_KEY_BYTES];
	uint8_t iv[DIME_AES_BLOCK_BYTES];
	/* Set only by msg_kek_for_actor: this KEK is the re-key record's, so msg_slot_open takes
	 * the recipient's slots from rk's record. NULL otherwise (msg_kek_derive clears it). */
	const struct msg_parsed *rk;
};

/* A chunk's own AES key and IV, recovered from a keyslot or drawn at wrap. */
struct msg_ckey {
	uint8_t key[DIME_AES_KEY_BYTES];
	uint8_t iv[DIME_AES_BLOCK_BYTES];
};

/* Decoded standard payload: views into the decrypted plaintext. */
struct msg_payload {
	const uint8_t *sig;
	struct dime_view signed_part; /* plaintext[64:] */
	struct dime_view data;
	uint8_t flags;
	uint8_t pad;
};

/* msg_codec.c */
int msg_parse(struct msg_parsed *m, const char **why, const uint8_t *in, size_t in_len);
void msg_parsed_free(struct msg_parsed *m);
int msg_type_content(uint8_t type);
/* Check the structure of a decrypted standard payload (length, flags, padding).
 * Returns: DIME_OK or DIME_E_BADSIG with *why naming the rule. */
int msg_payload_decode(struct msg_payload *pl, const char **why, const uint8_t *pt, size_t len,
		       uint8_t type);
/* Padding length for data_len bytes (including the 69-byte header? no: the bytes after data).
 * Out: *padlen, *pad_octet. alt: the alternate algorithm. Returns: DIME_OK or DIME_E_LIMIT. */
int msg_padding_choose(size_t *padlen, uint8_t *pad_octet, size_t data_len, int alt);
/* The envelope text of chunk 4 (origin_chunk != 0) or 5. */
int msg_envelope_parse(struct dime_msg_envelope *env, const char **why, const uint8_t *p,
		       size_t len, int origin_chunk);

/* Reasons: one static string per (chunk type, rule). */
enum msg_rule {
	MSG_R_SLOT,
	MSG_R_SIG,
	MSG_R_DATALEN,
	MSG_R_ZERO,
	MSG_R_RESERVED,
	MSG_R_ALTKEY,
	MSG_R_PADOCT,
	MSG_R_PADBYTE,
	MSG_R_ALTPAD,
	MSG_R_SPANEND,
	MSG_R_SPAN4,
	MSG_R_GZIP,
	MSG_R_SIGCHUNK,
	MSG_R_CRYPTO,
	MSG_R_ORDER,
	MSG_R_TWICE,
	MSG_R_PLEN,
	MSG_R_MISSING,
	MSG_R_LIMIT,
	MSG_R_ENVELOPE,
	MSG_R_SPANTYPE,
	MSG_R_TRUNCATED,
	MSG_R_NOGZIP,
	MSG_R_COUNT
};
const char *msg_why(uint8_t type, enum msg_rule rule);
int msg_type_sig(uint8_t type);

/* msg_crypto.c */
void msg_kek_derive(struct msg_kek *k, const uint8_t x[DIME_ECDH_BYTES]);
int msg_kek_for(const struct dime_ks *ks, struct msg_kek *k, uint32_t key_id,
		const uint8_t eph[DIME_SECP_PUB_BYTES]);
/* Slot index of actor within a chunk of type, or -1 when the type gives it none. */
int msg_slot_index(uint8_t type, uint8_t actor);
int msg_slot_open(struct msg_ckey *ck, const struct dime_msg_chunk_info *c, uint8_t actor,
		  const struct msg_kek *k);
int msg_slot_seal(uint8_t out[DIME_MSG_KEYSLOT_BYTES], const struct msg_ckey *ck,
		  const struct msg_kek *k);
/* The keyslot plaintext R16 || IV^R16 || key32 (fresh R) that msg_slot_seal encrypts. */
void msg_slot_plain(uint8_t pt[DIME_MSG_KEYSLOT_BYTES], const struct msg_ckey *ck);
/* Decrypt c's payload with ck into a malloc'd buffer. */
int msg_payload_decrypt(uint8_t **pt, const struct dime_msg_chunk_info *c,
			const struct msg_ckey *ck);
/* Tree signature input: form 0 = reference (quirk), 1 = spec-literal. malloc'd. */
int msg_tree_input(uint8_t **buf, size_t *len, const struct msg_parsed *m, size_t i_tree, int form);
/* The byte range an org or author signature covers: chunks [0, end) of m. */
struct dime_view msg_cover(const struct msg_parsed *m, size_t end);
size_t msg_cover_end(const struct msg_parsed *m, uint8_t sig_type);
/* Verify sig against the org signet's POK or any SOK with DIME_SOK_MESSAGES. */
int msg_org_verify(const struct dime_signet *org, const uint8_t sig[DIME_SIG_BYTES],
		   const uint8_t *msg, size_t len);

/* msg_batch.c: the op context a batch call threads through the operations. op == NULL (every
 * one-at-a-time call) means: compute and verify everything now, exactly as before. */
struct msg_op;
/* msg_kek_for, answered from the batch's table when it holds (key_id, eph). */
int msg_op_kek(struct msg_op *op, const struct dime_ks *ks, struct msg_kek *k, uint32_t key_id,
	       const uint8_t eph[DIME_SECP_PUB_BYTES]);
/* How a deferred check holds its message until the batch call. */
enum msg_op_hold {
	MSG_OP_BORROW, /* msg lives in the job's input: keep the pointer */
	MSG_OP_COPY    /* msg is a temporary (plaintext): copy it (wiped later) */
};
/* dime_ed25519_verify, or in a deferred batch run a recorded check assumed to pass (it may
 * still verify at once, e.g. a message too large to copy). */
int msg_op_verify(struct msg_op *op, const uint8_t sig[DIME_SIG_BYTES],
		  const uint8_t pub[DIME_ED25519_PUB_BYTES], const uint8_t *msg, size_t len,
		  enum msg_op_hold hold);
/* msg_op_verify over *buf (malloc'd, len bytes): a recorded check takes the buffer (wiped and
 * freed with the batch) and sets *buf = NULL; otherwise *buf stays the caller's. */
int msg_op_verify_take(struct msg_op *op, const uint8_t sig[DIME_SIG_BYTES],
		       const uint8_t pub[DIME_ED25519_PUB_BYTES], uint8_t **buf, size_t len);
/* msg_org_verify, or recorded (POK first, the SOKs with DIME_SOK_MESSAGES as alternatives);
 * msg borrowed from the job's input. */
int msg_op_org_verify(struct msg_op *op, const struct dime_signet *org,
		      const uint8_t sig[DIME_SIG_BYTES], const uint8_t *msg, size_t len);

/* The operations with an op context (msg_ops.c, msg_bounce.c, msg_mail.c). */
int msg_origin_sign_op(struct msg_op *op, const struct dime_ks *ks, uint8_t **out, size_t *out_len,
		       struct dime_msg_envelope *env, const char **why, const uint8_t *in,
		       size_t in_len, uint32_t org_key, uint32_t sign_key,
		       const struct dime_msg_parties *p, unsigned flags);
int msg_accept_op(struct msg_op *op, const struct dime_ks *ks, struct dime_msg_envelope *env,
		  const char **why, const uint8_t *in, size_t in_len, uint32_t dest_key,
		  const struct dime_msg_parties *p);
int msg_open_op(struct msg_op *op, const struct dime_ks *ks, struct dime_msg_opened *o,
		const char **why, const uint8_t *in, size_t in_len, enum dime_msg_actor as,
		uint32_t key, const struct dime_msg_parties *p);
int msg_bounce_verify_op(struct msg_op *op, const struct dime_ks *ks,
			 struct dime_msg_bounce_info *info, const char **why, const uint8_t *in,
			 size_t in_len, uint32_t org_key, const struct dime_signet *origin);
/* The ephemeral key and the four actor KEKs of a wrap, computed ahead by the batch.
 * rc[a]: dime_signet_enc_key, then ECDH, for actor a (A, O, D, R). */
struct msg_wrap_pre {
	uint8_t eph_pub[DIME_SECP_PUB_BYTES];
	int rc[4];
	struct msg_kek kek[4];
};
int msg_wrap_op(const struct msg_wrap_pre *pre, const struct dime_ks *ks, uint8_t **out,
		size_t *out_len, const char **why, const struct dime_msg_parties *p,
		uint32_t author_key, const struct dime_msg_content *c,
		const struct dime_msg_wrap_opts *opts);
int msg_wrap_mail_op(const struct msg_wrap_pre *pre, const struct dime_ks *ks, uint8_t **out,
		     size_t *out_len, const char **why, const struct dime_msg_parties *p,
		     uint32_t author_key, const uint8_t *mail, size_t mail_len,
		     const struct dime_msg_wrap_opts *opts);

/* ---- re-key container (docs/rekey.md; msg_codec.c, msg_crypto.c, msg_rekey.c) ---- */

#define MSG_RK_HEADER_BYTES (1u + 2u * DIME_FP_BYTES + DIME_SECP_PUB_BYTES + 4u) /* 166 */
#define MSG_RK_ENTRY_BYTES  (4u + DIME_MSG_KEYSLOT_BYTES)			 /* 68 */

/* Split a re-key container into its record and the message it carries, checking the
 * container's framing and the record's own fields (version, a valid ephemeral point, the slot
 * count against the bytes left). The record's chunk indices are checked against the message
 * by msg_rk_check. Returns: DIME_OK, DIME_E_NOTFOUND (in does not start with magic 1850:
 * nothing is set), or a framing error with *why. Out: *rk (zeroed on failure). */
int msg_rk_split(struct msg_rk *rk, const char **why, const uint8_t *in, size_t in_len);
/* Check that the record holds exactly one entry per chunk with a recipient keyslot, in wire
 * order, naming that chunk's index. The message must already have framed cleanly.
 * Returns: DIME_OK or DIME_E_MALFORMED with *why. */
int msg_rk_check(const struct msg_rk *rk, const char **why);

/* The KEK an actor opens m's keyslots with (through msg_op_kek; op may be NULL): from the
 * re-key record's ephemeral key when m has a record and actor is the recipient (and then
 * k->rk = m), else from chunk 2's. Returns: as msg_kek_for. Out: *k, zeroed on failure. */
struct msg_op;
int msg_kek_for_actor(struct msg_op *op, const struct dime_ks *ks, struct msg_kek *k,
		      uint32_t key_id, const struct msg_parsed *m, uint8_t actor);
/* The recipient-signet rule of an open (dime_msg_open). Plain message, or an actor other than
 * the recipient: recipient is NULL or its crypto fingerprint is env->recipient_fp. Re-keyed
 * message opened by the recipient: recipient is required, its crypto fingerprint is the
 * record's new one, the record's old one is env->recipient_fp (author-signed), and its
 * identifier is env->recipient (so a record cannot hand one user's message to another).
 * Returns: 1 when the rule holds, else 0 with *why set. */
int msg_recipient_ok(const char **why, const struct msg_parsed *m,
		     const struct dime_msg_envelope *env, const struct dime_signet *recipient,
		     uint8_t actor);
/* Returns: 1 when s's identifier (field 254) is addr, ASCII case-insensitively, else 0. */
int msg_ident_is(const struct dime_signet *s, const char *addr);

/* msg_ops.c: dime_msg_envelope_peek with the KEK looked up through op (may be NULL). */
int msg_envelope_peek_op(struct msg_op *op, const struct dime_ks *ks, struct dime_msg_envelope *env,
			 const char **why, const uint8_t *in, size_t in_len, enum dime_msg_actor as,
			 uint32_t key);

#endif

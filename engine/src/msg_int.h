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
};

/* An actor's key encryption key (reference-format §5). */
struct msg_kek {
	uint8_t key[DIME_AES_KEY_BYTES];
	uint8_t iv[DIME_AES_BLOCK_BYTES];
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

#endif

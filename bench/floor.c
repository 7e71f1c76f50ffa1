/* The crypto floor of each D/MIME operation: the primitive calls it cannot avoid, at the sizes
 * the real message gives, called directly on libsodium, libsecp256k1, OpenSSL EVP and isa-l.
 *
 * Rule: every primitive call the engine makes is in the floor, with the same library, the same
 * size and the same input bytes (the message's own chunks), except calls that repeat work the
 * engine has already done for this message or that only depend on constant inputs; those are a
 * cost the engine could shed, so they are the engine's overhead, not the floor:
 *   - dime_ed25519_sign re-derives the key pair from the seed (one extra base-point multiply)
 *     on every signature; the floor signs with an expanded key (crypto_sign_detached).
 *   - dime_aes256cbc_* allocate and free an EVP_CIPHER_CTX per call; the floor reuses one and
 *     still runs EVP_CipherInit_ex2 (the key schedule) on every call, as each chunk has its
 *     own key.
 *   - dime_secp_ecdh_x parses the signet's public key on every call; the floor parses the four
 *     signet keys once (wrap) but still parses the ephemeral key read from each message.
 *   - signet fingerprints (ops_fp_is, ops_envelope_text) hash constant signets: left out.
 *   - origin-sign derives the origin KEK twice (ops_origin_check, then again for re-signing):
 *     the floor derives it once.
 *   - wrap re-opens the author keyslot of 225 and 226 (ops_fill_sig) to get a chunk key it drew
 *     itself: the floor only re-encrypts.
 * Parsing, MIME splitting, copies, malloc and envelope text are engine work, not crypto: not
 * in the floor. */

#include "floor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <secp256k1.h>
#include <secp256k1_ecdh.h>
#include <sodium.h>

#include "dime/crypto.h"
#include "dime/gzip.h"
#include "dime/mime.h"
#include "dime/msg.h"

struct bench_floor_ctx {
	EVP_CIPHER *cipher;
	EVP_CIPHER_CTX *evp;
	secp256k1_context *secp;
	secp256k1_pubkey statics[5]; /* A, O, D, R, next R encryption keys, parsed once */
	uint8_t priv[32], eph_priv[32], eph_pub[33];
	uint8_t sk[crypto_sign_SECRETKEYBYTES], pk[crypto_sign_PUBLICKEYBYTES];
	uint8_t key[32], iv[16], x[32];
	uint8_t *scratch;
	size_t scratch_cap;
	int preparing; /* verify steps sign instead (valid signatures for the timed runs) */
};

struct fl_step {
	uint8_t kind;
	unsigned aux;	   /* ECDH_STATIC: peer index; VERIFY: signature index */
	const uint8_t *in; /* borrowed from the plan's own buffers */
	size_t len;
	uint8_t *out; /* NULL: scratch */
	size_t cap;   /* GZIP_*: output capacity */
};

struct bench_floor {
	struct fl_step *s;
	size_t n, cap;
	uint8_t *msg; /* copy of the message the plan reads (the op's input, or the wrap) */
	size_t msg_len;
	uint8_t *mail;	/* copy of the mail (wrap: gzip input) */
	uint8_t *split; /* dime_mime_split's buffer (chunks 33 and 34 data) */
	uint8_t **gz;	/* compressed segments (open: inflate input) */
	size_t n_gz;
	uint8_t *tree; /* tree signature input, written by the SHA-512 steps */
	uint8_t (*sigs)[DIME_SIG_BYTES];
	size_t n_sigs;
	size_t scratch_need;
};

static const char *const fl_names[BENCH_FL_N] = {"random",  "keygen", "ecdh",	"ecdh",
						 "sha512",  "sign",   "verify", "aes-enc",
						 "aes-dec", "gzip",   "gunzip"};

const char *
bench_floor_kind_name(enum bench_fl_kind k)
{
	return (unsigned)k < BENCH_FL_N ? fl_names[k] : "?";
}

/* ---- context ---- */

static int
fl_copy_x(unsigned char *out, const unsigned char *x32, const unsigned char *y32, void *data)
{
	(void)y32;
	(void)data;
	memcpy(out, x32, 32);
	return 1;
}

struct bench_floor_ctx *
bench_floor_ctx_new(const struct bench_fix *f)
{
	const struct dime_signet *s[5] = {f->author, f->org_a, f->org_b, f->recip, f->recip2};
	struct bench_floor_ctx *c = calloc(1, sizeof(*c));
	uint8_t seed[32], pub[33];

	if (c == NULL)
		return NULL;
	c->cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
	c->evp = EVP_CIPHER_CTX_new();
	c->secp = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
	randombytes_buf(seed, sizeof(seed));
	if (c->cipher == NULL || c->evp == NULL || c->secp == NULL ||
	    secp256k1_context_randomize(c->secp, seed) != 1 ||
	    dime_secp_keygen(c->priv, pub) != DIME_OK ||
	    dime_secp_keygen(c->eph_priv, c->eph_pub) != DIME_OK)
		goto fail;
	for (int a = 0; a < 5; a++)
		if (dime_signet_enc_key(s[a], pub) != DIME_OK ||
		    secp256k1_ec_pubkey_parse(c->secp, &c->statics[a], pub, sizeof(pub)) != 1)
			goto fail;
	crypto_sign_keypair(c->pk, c->sk);
	randombytes_buf(c->key, sizeof(c->key));
	randombytes_buf(c->iv, sizeof(c->iv));
	return c;
fail:
	bench_floor_ctx_free(c);
	return NULL;
}

void
bench_floor_ctx_free(struct bench_floor_ctx *c)
{
	if (c == NULL)
		return;
	EVP_CIPHER_CTX_free(c->evp);
	EVP_CIPHER_free(c->cipher);
	if (c->secp != NULL)
		secp256k1_context_destroy(c->secp);
	free(c->scratch);
	sodium_memzero(c, sizeof(*c));
	free(c);
}

/* ---- plan building ---- */

static int
fl_add(struct bench_floor *fl, uint8_t kind, const uint8_t *in, size_t len)
{
	struct fl_step *st;
	size_t need = len;

	if (fl->n == fl->cap) {
		size_t ncap = fl->cap * 2 + 64;
		struct fl_step *ns = realloc(fl->s, ncap * sizeof(*ns));

		if (ns == NULL)
			return DIME_E_NOMEM;
		fl->s = ns;
		fl->cap = ncap;
	}
	st = &fl->s[fl->n++];
	memset(st, 0, sizeof(*st));
	st->kind = kind;
	st->in = in;
	st->len = len;
	if (kind == BENCH_FL_VERIFY)
		st->aux = (unsigned)fl->n_sigs++;
	if (kind == BENCH_FL_GZIP_C)
		need = st->cap = dime_gzip_bound(len);
	if (need > fl->scratch_need)
		fl->scratch_need = need;
	return DIME_OK;
}

/* The framing, as dime_msg_dump gives it. Out: *ch malloc'd. */
static int
fl_dump(struct dime_msg_chunk_info **ch, size_t *n, const char **why, const uint8_t *in, size_t len)
{
	struct dime_msg_dump d;
	int rc = dime_msg_dump(&d, NULL, 0, why, in, len);

	*ch = NULL;
	*n = 0;
	if (rc != DIME_OK)
		return rc;
	if ((*ch = calloc(d.n_chunks + 1, sizeof(**ch))) == NULL)
		return DIME_E_NOMEM;
	rc = dime_msg_dump(&d, *ch, d.n_chunks, why, in, len);
	if (rc != DIME_OK) {
		free(*ch);
		*ch = NULL;
		return rc;
	}
	*n = d.n_chunks;
	return DIME_OK;
}

static size_t
fl_find(const struct dime_msg_chunk_info *ch, size_t n, uint8_t type)
{
	for (size_t i = 0; i < n; i++)
		if (ch[i].type == type)
			return i;
	return (size_t)-1;
}

/* What an org or author signature covers: chunks [0, first type >= limit) (msg_cover_end). */
static size_t
fl_cover_len(const struct dime_msg_chunk_info *ch, size_t n, uint8_t sig_type)
{
	unsigned limit = sig_type == DIME_CHUNK_META_BOUNCE	 ? 64
			 : sig_type == DIME_CHUNK_DISPLAY_BOUNCE ? 128
			 : sig_type == DIME_CHUNK_AUTHOR_SIG	 ? DIME_CHUNK_AUTHOR_SIG
								 : DIME_CHUNK_ORG_SIG;
	size_t i = 0;

	while (i < n && ch[i].type < limit)
		i++;
	if (i == 0)
		return 0;
	return (size_t)(ch[i - 1].chunk.p - ch[0].chunk.p) + ch[i - 1].chunk.len;
}

static int
fl_is_content(uint8_t t)
{
	return t == DIME_CHUNK_ALTERNATE || t == DIME_CHUNK_COMMON || t == DIME_CHUNK_HEADERS ||
	       (t >= DIME_CHUNK_DISPLAY_MULTI && t <= DIME_CHUNK_ATTACH);
}

/* The KEK an actor derives from the message's ephemeral key: ECDH (the point is parsed: it
 * comes from the message) and SHA-512 of x (msg_kek_for). */
static int
fl_kek(struct bench_floor *fl, const uint8_t *eph)
{
	int rc = fl_add(fl, BENCH_FL_ECDH, eph, DIME_SECP_PUB_BYTES);

	return rc != DIME_OK ? rc : fl_add(fl, BENCH_FL_SHA512, NULL, DIME_ECDH_BYTES);
}

/* Open a signature chunk (ops_sig_open): keyslot, then the 64-byte signature. */
static int
fl_sig_open(struct bench_floor *fl, const struct dime_msg_chunk_info *c, unsigned slot)
{
	int rc = fl_add(fl, BENCH_FL_AES_DEC, c->slots.p + slot * DIME_MSG_KEYSLOT_BYTES,
			DIME_MSG_KEYSLOT_BYTES);

	return rc != DIME_OK ? rc : fl_add(fl, BENCH_FL_AES_DEC, c->payload.p, DIME_SIG_BYTES);
}

/* Open a standard chunk (ops_std_open): keyslot, payload, and the author's plaintext signature
 * over plaintext[64:] when the actor can check it. */
static int
fl_std_open(struct bench_floor *fl, const struct dime_msg_chunk_info *c, unsigned slot, int verify)
{
	int rc = fl_add(fl, BENCH_FL_AES_DEC, c->slots.p + slot * DIME_MSG_KEYSLOT_BYTES,
			DIME_MSG_KEYSLOT_BYTES);

	if (rc == DIME_OK)
		rc = fl_add(fl, BENCH_FL_AES_DEC, c->payload.p, c->payload.len);
	if (rc == DIME_OK && verify)
		rc = fl_add(fl, BENCH_FL_VERIFY, c->payload.p + DIME_SIG_BYTES,
			    c->payload.len - DIME_SIG_BYTES);
	return rc;
}

static unsigned
fl_slot(uint8_t type, uint8_t actor)
{
	uint8_t actors = dime_msg_chunk_actors(type);

	return (unsigned)__builtin_popcount((unsigned)actors & ((unsigned)actor - 1u));
}

/* The author's tree and full signatures, checked (ops_check_author_sigs): 225 opened, SHA-512
 * of every chunk before it but 5 (reference form, the one we emit), one verify over the
 * digests; 226 opened, one verify over chunks 2..225. */
static int
fl_author_sigs_check(struct bench_floor *fl, const struct dime_msg_chunk_info *ch, size_t n,
		     uint8_t actor)
{
	size_t it = fl_find(ch, n, DIME_CHUNK_TREE_SIG), ia = fl_find(ch, n, DIME_CHUNK_AUTHOR_SIG);
	size_t k = 0;
	int rc = fl_sig_open(fl, &ch[it], fl_slot(DIME_CHUNK_TREE_SIG, actor));

	for (size_t i = 0; i < it && rc == DIME_OK; i++) {
		if (ch[i].type == DIME_CHUNK_DESTINATION)
			continue;
		rc = fl_add(fl, BENCH_FL_SHA512, ch[i].chunk.p, ch[i].chunk.len);
		fl->s[fl->n - 1].out = fl->tree + DIME_SHA512_BYTES * k++;
	}
	if (rc == DIME_OK)
		rc = fl_add(fl, BENCH_FL_VERIFY, fl->tree, (k + 1) * DIME_SHA512_BYTES);
	if (rc == DIME_OK)
		rc = fl_sig_open(fl, &ch[ia], fl_slot(DIME_CHUNK_AUTHOR_SIG, actor));
	if (rc == DIME_OK)
		rc = fl_add(fl, BENCH_FL_VERIFY, ch[0].chunk.p,
			    fl_cover_len(ch, n, DIME_CHUNK_AUTHOR_SIG));
	return rc;
}

/* The origin's 248, 249 and 255, checked (ops_check_org_sigs): open, one verify each (the POK
 * is tried first and signed them). */
static int
fl_org_sigs_check(struct bench_floor *fl, const struct dime_msg_chunk_info *ch, size_t n,
		  uint8_t actor)
{
	static const uint8_t types[3] = {DIME_CHUNK_META_BOUNCE, DIME_CHUNK_DISPLAY_BOUNCE,
					 DIME_CHUNK_ORG_SIG};
	int rc = DIME_OK;

	for (int j = 0; j < 3 && rc == DIME_OK; j++) {
		size_t i = fl_find(ch, n, types[j]);

		if (i == (size_t)-1)
			continue;
		rc = fl_sig_open(fl, &ch[i], fl_slot(types[j], actor));
		if (rc == DIME_OK)
			rc = fl_add(fl, BENCH_FL_VERIFY, ch[0].chunk.p,
				    fl_cover_len(ch, n, types[j]));
	}
	return rc;
}

/* WRAP (dime_msg_wrap_mail -> dime_msg_wrap), mirroring msg_ops.c step by step:
 *   ops_wrap_compress: one gzip per segment (33, 34, each part), kept only if smaller;
 *   ops_wrap_add: one author signature over plaintext[64:] per chunk 4, 5, 33, 34, content;
 *   step 2: one secp256k1 key pair, 4 x (ECDH with a signet key + SHA-512 = KEK);
 *   ops_seal per chunk (5 signature chunks included): random key (32) and IV (16), AES over
 *     the payload, per keyslot: random R (16) and AES over 64 bytes;
 *   step 4: SHA-512 of every chunk before 225 but 5, sign the digests, re-encrypt 225's 64
 *     bytes; sign chunks 2..225, re-encrypt 226's 64 bytes (ops_fill_sig's slot re-open of a
 *     key the author drew is left out). */
static int
fl_plan_wrap(struct bench_floor *fl, const struct dime_msg_chunk_info *ch, size_t n,
	     const struct dime_mime_content *mc)
{
	size_t it = fl_find(ch, n, DIME_CHUNK_TREE_SIG), k = 0;
	int rc = fl_add(fl, BENCH_FL_GZIP_C, mc->common.p, mc->common.len);

	if (rc == DIME_OK)
		rc = fl_add(fl, BENCH_FL_GZIP_C, mc->headers.p, mc->headers.len);
	for (size_t i = 0; i < mc->n_parts && rc == DIME_OK; i++)
		rc = fl_add(fl, BENCH_FL_GZIP_C, mc->parts[i].data.p, mc->parts[i].data.len);
	for (size_t i = 0; i < n && rc == DIME_OK; i++)
		if (ch[i].type == DIME_CHUNK_ORIGIN || ch[i].type == DIME_CHUNK_DESTINATION ||
		    fl_is_content(ch[i].type))
			rc = fl_add(fl, BENCH_FL_SIGN, ch[i].payload.p + DIME_SIG_BYTES,
				    ch[i].payload.len - DIME_SIG_BYTES);
	if (rc == DIME_OK)
		rc = fl_add(fl, BENCH_FL_KEYGEN, NULL, 0);
	for (unsigned a = 0; a < 4 && rc == DIME_OK; a++) {
		rc = fl_add(fl, BENCH_FL_ECDH_STATIC, NULL, 0);
		fl->s[fl->n - 1].aux = a;
		if (rc == DIME_OK)
			rc = fl_add(fl, BENCH_FL_SHA512, NULL, DIME_ECDH_BYTES);
	}
	for (size_t i = 0; i < n && rc == DIME_OK; i++) {
		if (ch[i].type == DIME_CHUNK_EPHEMERAL)
			continue;
		rc = fl_add(fl, BENCH_FL_RANDOM, NULL, DIME_AES_KEY_BYTES);
		if (rc == DIME_OK)
			rc = fl_add(fl, BENCH_FL_RANDOM, NULL, DIME_AES_BLOCK_BYTES);
		if (rc == DIME_OK)
			rc = fl_add(fl, BENCH_FL_AES_ENC, ch[i].payload.p, ch[i].payload.len);
		for (unsigned s = 0; s < ch[i].n_slots && rc == DIME_OK; s++) {
			rc = fl_add(fl, BENCH_FL_RANDOM, NULL, 16);
			if (rc == DIME_OK)
				rc = fl_add(fl, BENCH_FL_AES_ENC,
					    ch[i].slots.p + s * DIME_MSG_KEYSLOT_BYTES,
					    DIME_MSG_KEYSLOT_BYTES);
		}
	}
	for (size_t i = 0; i < it && rc == DIME_OK; i++) {
		if (ch[i].type == DIME_CHUNK_DESTINATION)
			continue;
		rc = fl_add(fl, BENCH_FL_SHA512, ch[i].chunk.p, ch[i].chunk.len);
		fl->s[fl->n - 1].out = fl->tree + DIME_SHA512_BYTES * k++;
	}
	if (rc == DIME_OK)
		rc = fl_add(fl, BENCH_FL_SIGN, fl->tree, (k + 1) * DIME_SHA512_BYTES);
	if (rc == DIME_OK)
		rc = fl_add(fl, BENCH_FL_AES_ENC, ch[it].payload.p, DIME_SIG_BYTES);
	if (rc == DIME_OK)
		rc = fl_add(fl, BENCH_FL_SIGN, ch[0].chunk.p,
			    fl_cover_len(ch, n, DIME_CHUNK_AUTHOR_SIG));
	if (rc == DIME_OK)
		rc = fl_add(fl, BENCH_FL_AES_ENC, ch[it + 1].payload.p, DIME_SIG_BYTES);
	return rc;
}

/* ORIGIN-SIGN (dime_msg_origin_sign): ops_origin_check = KEK; 225 and 226 checked
 * (fl_author_sigs_check); chunk 4 opened and its author signature verified; then for 248,
 * 249, 255: sign the cover with the POK, open the origin keyslot (the author chose the key),
 * re-encrypt the 64-byte signature. The engine's second KEK derivation is left out. */
static int
fl_plan_origin_sign(struct bench_floor *fl, const struct dime_msg_chunk_info *ch, size_t n)
{
	static const uint8_t types[3] = {DIME_CHUNK_META_BOUNCE, DIME_CHUNK_DISPLAY_BOUNCE,
					 DIME_CHUNK_ORG_SIG};
	size_t i4 = fl_find(ch, n, DIME_CHUNK_ORIGIN);
	int rc = fl_kek(fl, ch[0].payload.p);

	if (rc == DIME_OK)
		rc = fl_author_sigs_check(fl, ch, n, DIME_ACTOR_ORIGIN);
	if (rc == DIME_OK)
		rc = fl_std_open(fl, &ch[i4], fl_slot(DIME_CHUNK_ORIGIN, DIME_ACTOR_ORIGIN), 1);
	for (int j = 0; j < 3 && rc == DIME_OK; j++) {
		size_t i = fl_find(ch, n, types[j]);

		if (i == (size_t)-1)
			continue;
		rc = fl_add(fl, BENCH_FL_SIGN, ch[0].chunk.p, fl_cover_len(ch, n, types[j]));
		if (rc == DIME_OK)
			rc = fl_add(fl, BENCH_FL_AES_DEC,
				    ch[i].slots.p + fl_slot(types[j], DIME_ACTOR_ORIGIN) *
							DIME_MSG_KEYSLOT_BYTES,
				    DIME_MSG_KEYSLOT_BYTES);
		if (rc == DIME_OK)
			rc = fl_add(fl, BENCH_FL_AES_ENC, ch[i].payload.p, DIME_SIG_BYTES);
	}
	return rc;
}

/* ACCEPT (dime_msg_accept): KEK; 248, 249, 255 opened and verified (fl_org_sigs_check);
 * chunk 5 opened (its signature is the author's, which the destination cannot check). */
static int
fl_plan_accept(struct bench_floor *fl, const struct dime_msg_chunk_info *ch, size_t n)
{
	size_t i5 = fl_find(ch, n, DIME_CHUNK_DESTINATION);
	int rc = fl_kek(fl, ch[0].payload.p);

	if (rc == DIME_OK)
		rc = fl_org_sigs_check(fl, ch, n, DIME_ACTOR_DESTINATION);
	if (rc == DIME_OK)
		rc = fl_std_open(fl, &ch[i5],
				 fl_slot(DIME_CHUNK_DESTINATION, DIME_ACTOR_DESTINATION), 0);
	return rc;
}

/* OPEN as the recipient (dime_msg_open): KEK; 225 and 226 checked; 248, 249, 255 checked;
 * chunks 4 and 5 opened and their author signatures verified; then every content chunk (33,
 * 34, parts) opened, its author signature verified, and its data inflated when it was stored
 * compressed (ops_take_data). dime_msg_opened_mail's rebuild is MIME work: not in the floor. */
static int
fl_plan_open(struct bench_floor *fl, const struct dime_msg_chunk_info *ch, size_t n,
	     const struct dime_mime_content *mc)
{
	size_t seg = 0;
	int rc = fl_kek(fl, ch[0].payload.p);

	if (rc == DIME_OK)
		rc = fl_author_sigs_check(fl, ch, n, DIME_ACTOR_RECIPIENT);
	if (rc == DIME_OK)
		rc = fl_org_sigs_check(fl, ch, n, DIME_ACTOR_RECIPIENT);
	for (size_t i = 0; i < n && rc == DIME_OK; i++) {
		uint8_t t = ch[i].type;
		struct dime_view data;
		size_t zl = 0, cap;

		if (t != DIME_CHUNK_ORIGIN && t != DIME_CHUNK_DESTINATION && !fl_is_content(t))
			continue;
		rc = fl_std_open(fl, &ch[i], fl_slot(t, DIME_ACTOR_RECIPIENT), 1);
		if (rc != DIME_OK || !fl_is_content(t))
			continue;
		/* chunk 33, 34, then the parts, as wrap made them (no spanning below 16 MiB) */
		data = seg == 0 ? mc->common : seg == 1 ? mc->headers : mc->parts[seg - 2].data;
		if (seg >= fl->n_gz)
			return DIME_E_INVALID;
		cap = dime_gzip_bound(data.len);
		if ((fl->gz[seg] = malloc(cap)) == NULL)
			return DIME_E_NOMEM;
		rc = dime_gzip_compress(fl->gz[seg], cap, &zl, data.p, data.len);
		/* the if-smaller rule of ops_wrap_compress: did wrap store it compressed? */
		if (rc == DIME_OK && (data.len == 0 || zl < data.len)) {
			rc = fl_add(fl, BENCH_FL_GZIP_D, fl->gz[seg], zl);
			fl->s[fl->n - 1].cap = data.len;
			if (data.len > fl->scratch_need)
				fl->scratch_need = data.len;
		}
		seg++;
	}
	return rc;
}

/* REKEY (dime_msg_rekey): everything open does (its step 1 is dime_msg_open), then one
 * secp256k1 key pair, ECDH with the new signet's key + SHA-512 (the new KEK), and per chunk with
 * a recipient keyslot: random R (16) and AES over 64 bytes (msg_slot_seal). Left out: the
 * second derivation of the old KEK and the re-opening of recipient keyslots that the open
 * step has just opened. */
static int
fl_plan_rekey(struct bench_floor *fl, const struct dime_msg_chunk_info *ch, size_t n,
	      const struct dime_mime_content *mc)
{
	int rc = fl_plan_open(fl, ch, n, mc);

	if (rc == DIME_OK)
		rc = fl_add(fl, BENCH_FL_KEYGEN, NULL, 0);
	if (rc == DIME_OK) {
		rc = fl_add(fl, BENCH_FL_ECDH_STATIC, NULL, 0);
		fl->s[fl->n - 1].aux = 4;
	}
	if (rc == DIME_OK)
		rc = fl_add(fl, BENCH_FL_SHA512, NULL, DIME_ECDH_BYTES);
	for (size_t i = 0; i < n && rc == DIME_OK; i++) {
		if ((ch[i].actors & DIME_ACTOR_RECIPIENT) == 0)
			continue;
		rc = fl_add(fl, BENCH_FL_RANDOM, NULL, 16);
		if (rc == DIME_OK)
			rc = fl_add(fl, BENCH_FL_AES_ENC, ch[i].slots.p, DIME_MSG_KEYSLOT_BYTES);
	}
	return rc;
}

/* BOUNCE-VERIFY (dime_msg_bounce_verify): KEK from the returned ephemeral chunk; 248 (and
 * 249) opened with the origin keyslot and verified over the returned chunks; chunk 4 opened
 * (no signature check: the origin already proved the bounce is its own). */
static int
fl_plan_bounce(struct bench_floor *fl, const char **why)
{
	struct dime_msg_chunk_info ch[64];
	const uint8_t *p = fl->msg, *start, *end = fl->msg + fl->msg_len;
	size_t n = 0, rlen, end_meta = 0, end_disp = 0, i_meta = (size_t)-1, i_disp = (size_t)-1;
	size_t i4 = (size_t)-1;
	int rc;

	if (fl->msg_len < 9) {
		*why = "bounce: too short";
		return DIME_E_TRUNCATED;
	}
	rlen = (size_t)p[7] << 8 | p[8];
	start = p = fl->msg + 9 + rlen;
	while (p < end && n < 64) {
		uint8_t t = p[0], actors = dime_msg_chunk_actors(t);
		size_t plen = (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
		size_t slots = (size_t)__builtin_popcount(actors) * DIME_MSG_KEYSLOT_BYTES;

		if (plen + slots > (size_t)(end - p) - 4) {
			*why = "bounce: truncated chunk";
			return DIME_E_TRUNCATED;
		}
		memset(&ch[n], 0, sizeof(ch[n]));
		ch[n].type = t;
		ch[n].n_slots = (uint8_t)__builtin_popcount(actors);
		ch[n].chunk.p = p;
		ch[n].chunk.len = 4 + plen + slots;
		ch[n].payload.p = p + 4;
		ch[n].payload.len = plen;
		ch[n].slots.p = p + 4 + plen;
		ch[n].slots.len = slots;
		p += ch[n].chunk.len;
		if (t < 64)
			end_meta = (size_t)(p - start);
		if (t < 128 && t != DIME_CHUNK_META_BOUNCE)
			end_disp = (size_t)(p - start);
		if (t == DIME_CHUNK_META_BOUNCE)
			i_meta = n;
		if (t == DIME_CHUNK_DISPLAY_BOUNCE)
			i_disp = n;
		if (t == DIME_CHUNK_ORIGIN)
			i4 = n;
		n++;
	}
	if (n == 0 || i_meta == (size_t)-1 || i4 == (size_t)-1) {
		*why = "bounce: chunks missing";
		return DIME_E_MALFORMED;
	}
	rc = fl_kek(fl, ch[0].payload.p);
	if (rc == DIME_OK)
		rc = fl_sig_open(fl, &ch[i_meta],
				 fl_slot(DIME_CHUNK_META_BOUNCE, DIME_ACTOR_ORIGIN));
	if (rc == DIME_OK)
		rc = fl_add(fl, BENCH_FL_VERIFY, start, end_meta);
	if (rc == DIME_OK && i_disp != (size_t)-1) {
		rc = fl_sig_open(fl, &ch[i_disp],
				 fl_slot(DIME_CHUNK_DISPLAY_BOUNCE, DIME_ACTOR_ORIGIN));
		if (rc == DIME_OK)
			rc = fl_add(fl, BENCH_FL_VERIFY, start, end_disp);
	}
	if (rc == DIME_OK)
		rc = fl_std_open(fl, &ch[i4], fl_slot(DIME_CHUNK_ORIGIN, DIME_ACTOR_ORIGIN), 0);
	return rc;
}

int
bench_floor_new(struct bench_floor **out, const char **why, struct bench_floor_ctx *c,
		const struct bench_fix *f, enum bench_op op, const uint8_t *mail, size_t mail_len,
		const uint8_t *in, size_t in_len)
{
	struct bench_floor *fl = calloc(1, sizeof(*fl));
	struct dime_msg_chunk_info *ch = NULL;
	struct dime_mime_content mc;
	struct dime_mime_part *parts = NULL;
	size_t n = 0, split_len = 0, n_parts = 0;
	int rc = DIME_E_NOMEM;

	*out = NULL;
	*why = "";
	if (fl == NULL)
		return DIME_E_NOMEM;
	/* the mail's segments: wrap compresses them, open inflates them */
	if ((fl->mail = malloc(mail_len > 0 ? mail_len : 1)) == NULL)
		goto out;
	memcpy(fl->mail, mail, mail_len);
	rc = dime_mime_split_size(&split_len, &n_parts, fl->mail, mail_len);
	if (rc != DIME_OK)
		goto out;
	rc = DIME_E_NOMEM;
	if ((fl->split = malloc(split_len + 1)) == NULL ||
	    (parts = calloc(n_parts + 1, sizeof(*parts))) == NULL ||
	    (fl->gz = calloc(n_parts + 2, sizeof(*fl->gz))) == NULL)
		goto out;
	fl->n_gz = n_parts + 2;
	rc = dime_mime_split(&mc, fl->split, split_len, parts, n_parts, fl->mail, mail_len);
	if (rc != DIME_OK)
		goto out;
	/* the message whose framing the plan follows */
	if (op == BENCH_WRAP) {
		size_t out_len = 0;

		rc = dime_msg_wrap_mail(f->ks, &fl->msg, &out_len, why, &f->p, f->author_key, mail,
					mail_len, NULL);
		fl->msg_len = out_len;
	} else {
		rc = DIME_E_NOMEM;
		if ((fl->msg = malloc(in_len)) != NULL) {
			memcpy(fl->msg, in, in_len);
			fl->msg_len = in_len;
			rc = DIME_OK;
		}
	}
	if (rc != DIME_OK)
		goto out;
	if (op != BENCH_BOUNCE_VERIFY) {
		rc = fl_dump(&ch, &n, why, fl->msg, fl->msg_len);
		if (rc != DIME_OK)
			goto out;
	}
	rc = DIME_E_NOMEM;
	if ((fl->tree = calloc(n + 2, DIME_SHA512_BYTES)) == NULL)
		goto out;
	switch (op) {
	case BENCH_WRAP: rc = fl_plan_wrap(fl, ch, n, &mc); break;
	case BENCH_ORIGIN_SIGN: rc = fl_plan_origin_sign(fl, ch, n); break;
	case BENCH_ACCEPT: rc = fl_plan_accept(fl, ch, n); break;
	case BENCH_OPEN: rc = fl_plan_open(fl, ch, n, &mc); break;
	case BENCH_BOUNCE_VERIFY: rc = fl_plan_bounce(fl, why); break;
	case BENCH_REKEY: rc = fl_plan_rekey(fl, ch, n, &mc); break;
	case BENCH_N_OPS: rc = DIME_E_INVALID; break;
	}
	if (rc != DIME_OK)
		goto out;
	rc = DIME_E_NOMEM;
	if ((fl->sigs = calloc(fl->n_sigs + 1, DIME_SIG_BYTES)) == NULL)
		goto out;
	/* one preparation pass: the verify steps sign, so the timed runs verify valid
	 * signatures (the same work as the engine's successful path) */
	c->preparing = 1;
	rc = bench_floor_run(c, fl);
	c->preparing = 0;
	if (rc == DIME_OK)
		rc = bench_floor_run(c, fl);
	if (rc != DIME_OK)
		*why = "the floor plan does not run";
out:
	free(ch);
	free(parts);
	if (rc != DIME_OK) {
		bench_floor_free(fl);
		return rc;
	}
	*out = fl;
	return DIME_OK;
}

void
bench_floor_free(struct bench_floor *fl)
{
	if (fl == NULL)
		return;
	free(fl->s);
	if (fl->msg != NULL)
		sodium_memzero(fl->msg, fl->msg_len);
	free(fl->msg);
	free(fl->mail);
	free(fl->split);
	for (size_t i = 0; fl->gz != NULL && i < fl->n_gz; i++)
		free(fl->gz[i]);
	free(fl->gz);
	free(fl->tree);
	free(fl->sigs);
	free(fl);
}

/* ---- running ---- */

static int
fl_aes(struct bench_floor_ctx *c, uint8_t *out, const uint8_t *in, size_t len, int enc)
{
	int n = 0, fin = 0;

	if (EVP_CipherInit_ex2(c->evp, c->cipher, c->key, c->iv, enc, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(c->evp, 0) != 1 ||
	    (len > 0 && EVP_CipherUpdate(c->evp, out, &n, in, (int)len) != 1) ||
	    EVP_CipherFinal_ex(c->evp, out + n, &fin) != 1 || (size_t)n + (size_t)fin != len)
		return DIME_E_CRYPTO;
	return DIME_OK;
}

int
bench_floor_run(struct bench_floor_ctx *c, const struct bench_floor *fl)
{
	if (c->scratch_cap < fl->scratch_need + 64) {
		uint8_t *ns = realloc(c->scratch, fl->scratch_need + 64);

		if (ns == NULL)
			return DIME_E_NOMEM;
		c->scratch = ns;
		c->scratch_cap = fl->scratch_need + 64;
	}
	for (size_t i = 0; i < fl->n; i++) {
		const struct fl_step *st = &fl->s[i];
		uint8_t *o = st->out != NULL ? st->out : c->scratch;
		secp256k1_pubkey pk;
		size_t zl = 0, pl = 33;
		int ok = 1;

		switch (st->kind) {
		case BENCH_FL_RANDOM: randombytes_buf(o, st->len); break;
		case BENCH_FL_KEYGEN:
			randombytes_buf(c->eph_priv, sizeof(c->eph_priv));
			ok = secp256k1_ec_seckey_verify(c->secp, c->eph_priv) == 1 &&
			     secp256k1_ec_pubkey_create(c->secp, &pk, c->eph_priv) == 1 &&
			     secp256k1_ec_pubkey_serialize(c->secp, c->eph_pub, &pl, &pk,
							   SECP256K1_EC_COMPRESSED) == 1;
			break;
		case BENCH_FL_ECDH:
			ok = secp256k1_ec_pubkey_parse(c->secp, &pk, st->in, st->len) == 1 &&
			     secp256k1_ecdh(c->secp, c->x, &pk, c->priv, fl_copy_x, NULL) == 1;
			break;
		case BENCH_FL_ECDH_STATIC:
			ok = secp256k1_ecdh(c->secp, c->x, &c->statics[st->aux], c->eph_priv,
					    fl_copy_x, NULL) == 1;
			break;
		case BENCH_FL_SHA512:
			crypto_hash_sha512(o, st->in != NULL ? st->in : c->x, st->len);
			break;
		case BENCH_FL_SIGN:
			ok = crypto_sign_detached(o, NULL, st->in, st->len, c->sk) == 0;
			break;
		case BENCH_FL_VERIFY:
			if (c->preparing)
				ok = crypto_sign_detached(fl->sigs[st->aux], NULL, st->in, st->len,
							  c->sk) == 0;
			else
				ok = crypto_sign_verify_detached(fl->sigs[st->aux], st->in, st->len,
								 c->pk) == 0;
			break;
		case BENCH_FL_AES_ENC: ok = fl_aes(c, o, st->in, st->len, 1) == DIME_OK; break;
		case BENCH_FL_AES_DEC: ok = fl_aes(c, o, st->in, st->len, 0) == DIME_OK; break;
		case BENCH_FL_GZIP_C:
			ok = dime_gzip_compress(o, st->cap, &zl, st->in, st->len) == DIME_OK;
			break;
		case BENCH_FL_GZIP_D:
			ok = dime_gzip_decompress(o, st->cap, &zl, st->in, st->len) == DIME_OK &&
			     zl == st->cap;
			break;
		default: ok = 0; break;
		}
		if (!ok)
			return DIME_E_CRYPTO;
	}
	return DIME_OK;
}

void
bench_floor_counts(const struct bench_floor *fl, size_t n_calls[BENCH_FL_N],
		   size_t n_bytes[BENCH_FL_N])
{
	memset(n_calls, 0, BENCH_FL_N * sizeof(size_t));
	memset(n_bytes, 0, BENCH_FL_N * sizeof(size_t));
	for (size_t i = 0; i < fl->n; i++) {
		n_calls[fl->s[i].kind]++;
		n_bytes[fl->s[i].kind] += fl->s[i].len;
	}
}

void
bench_floor_describe(char *out, size_t cap, const struct bench_floor *fl)
{
	size_t calls[BENCH_FL_N], bytes[BENCH_FL_N], off = 0;

	bench_floor_counts(fl, calls, bytes);
	calls[BENCH_FL_ECDH] += calls[BENCH_FL_ECDH_STATIC];
	calls[BENCH_FL_ECDH_STATIC] = 0;
	out[0] = 0;
	for (int k = 0; k < BENCH_FL_N && off < cap; k++) {
		int w;

		if (calls[k] == 0)
			continue;
		if (k == BENCH_FL_KEYGEN || k == BENCH_FL_ECDH)
			w = snprintf(out + off, cap - off, "%s%zu %s", off ? ", " : "", calls[k],
				     fl_names[k]);
		else
			w = snprintf(out + off, cap - off, "%s%zu %s/%zuB", off ? ", " : "",
				     calls[k], fl_names[k], bytes[k]);
		if (w < 0)
			break;
		off += (size_t)w;
	}
}

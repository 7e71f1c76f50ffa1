#ifndef DIME_BENCH_FLOOR_H
#define DIME_BENCH_FLOOR_H
/* The crypto floor: for one operation on one real message, the list of primitive calls the
 * operation cannot avoid (derived from the message's own framing, payload sizes and keyslot
 * counts), run back to back with no engine around them. bench/floor.c says, per operation,
 * which engine steps each call mirrors and which engine calls are left out as redundant. */

#include <stddef.h>
#include <stdint.h>

#include "fixture.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Primitive kinds a plan is made of. */
enum bench_fl_kind {
	BENCH_FL_RANDOM = 0,  /* randombytes_buf */
	BENCH_FL_KEYGEN,      /* secp256k1 key pair (random scalar, pubkey_create, serialize) */
	BENCH_FL_ECDH,	      /* parse a peer point from the message + secp256k1_ecdh (raw x) */
	BENCH_FL_ECDH_STATIC, /* secp256k1_ecdh against a signet key parsed once */
	BENCH_FL_SHA512,      /* crypto_hash_sha512 */
	BENCH_FL_SIGN,	      /* crypto_sign_detached, expanded key */
	BENCH_FL_VERIFY,      /* crypto_sign_verify_detached */
	BENCH_FL_AES_ENC,     /* EVP AES-256-CBC, no padding, fresh key schedule */
	BENCH_FL_AES_DEC,
	BENCH_FL_GZIP_C, /* isa-l level 1 via dime_gzip_compress */
	BENCH_FL_GZIP_D, /* isa-l inflate via dime_gzip_decompress */
	BENCH_FL_N
};

/* Per-thread state: cipher context, secp256k1 context, keys, scratch. One per thread. */
struct bench_floor_ctx;
/* Returns: NULL on failure. The fixture's four signets give the static ECDH peers. */
struct bench_floor_ctx *bench_floor_ctx_new(const struct bench_fix *f);
void bench_floor_ctx_free(struct bench_floor_ctx *c);

struct bench_floor;

/* Build op's floor plan for one message. mail: the mail the message was made from (wrap's
 * input); in: op's input as bench_input_new made it. The plan copies what it needs.
 * A preparation pass runs once (valid signatures for the verify steps are made here).
 * Returns: DIME_OK, or an engine / framing error (*why). Out: *out, NULL on failure. */
int bench_floor_new(struct bench_floor **out, const char **why, struct bench_floor_ctx *c,
		    const struct bench_fix *f, enum bench_op op, const uint8_t *mail,
		    size_t mail_len, const uint8_t *in, size_t in_len);
void bench_floor_free(struct bench_floor *fl);

/* Run the plan once. Returns: DIME_OK, or DIME_E_CRYPTO when a primitive failed (a verify
 * that should pass did not: the plan is wrong). */
int bench_floor_run(struct bench_floor_ctx *c, const struct bench_floor *fl);

/* Calls and bytes per kind, for reports. */
void bench_floor_counts(const struct bench_floor *fl, size_t n_calls[BENCH_FL_N],
			size_t n_bytes[BENCH_FL_N]);
const char *bench_floor_kind_name(enum bench_fl_kind k);
/* One line: "1 keygen, 4 ecdh, 7 sign/12345B, ..." */
void bench_floor_describe(char *out, size_t cap, const struct bench_floor *fl);

#ifdef __cplusplus
}
#endif
#endif

#ifndef DIME_ENGINE_CRYPTO_H
#define DIME_ENGINE_CRYPTO_H
/* Thin wrappers over libsodium (Ed25519, SHA-512, randomness, secure memory),
 * libsecp256k1 (keys, ECDH with the raw x coordinate) and OpenSSL EVP (AES-256-CBC, no padding).
 * All functions are thread-safe after dime_global_init(). */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"
#include "dime/simd.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DIME_ED25519_PUB_BYTES	32
#define DIME_ED25519_SEED_BYTES 32
#define DIME_SIG_BYTES		64
#define DIME_SECP_PUB_BYTES	33
#define DIME_SECP_PRIV_BYTES	32
#define DIME_ECDH_BYTES		32
#define DIME_SHA512_BYTES	64
#define DIME_AES_KEY_BYTES	32
#define DIME_AES_BLOCK_BYTES	16

/* Once, before any thread starts: sodium_init, the SIMD table, the randomized secp256k1
 * context and the AES-256-CBC cipher. Returns: DIME_OK or DIME_E_CRYPTO. Idempotent. */
DIME_MUST_CHECK int dime_global_init(void);

/* Fill buf with len random bytes (randombytes_buf). */
void dime_random(void *buf, size_t len);

/* Wipe len bytes so the compiler cannot elide it. */
void dime_wipe(void *p, size_t len);

/* Constant-time equality. Returns: 1 when equal, 0 otherwise. */
int dime_ct_equal(const void *a, const void *b, size_t len);

/* Guarded, locked memory for secrets; freed memory is wiped. NULL on failure. */
void *dime_secure_alloc(size_t len);
void dime_secure_free(void *p);

void dime_sha512(uint8_t out[DIME_SHA512_BYTES], const uint8_t *in, size_t in_len);

struct dime_sha512_ctx {
	uint64_t opaque[32]; /* holds a crypto_hash_sha512_state */
};
void dime_sha512_init(struct dime_sha512_ctx *c);
void dime_sha512_update(struct dime_sha512_ctx *c, const uint8_t *in, size_t in_len);
void dime_sha512_final(struct dime_sha512_ctx *c, uint8_t out[DIME_SHA512_BYTES]);

/* Returns: DIME_OK. Out: pub derived from seed (RFC 8032). */
DIME_MUST_CHECK int dime_ed25519_pub(uint8_t pub[DIME_ED25519_PUB_BYTES],
				     const uint8_t seed[DIME_ED25519_SEED_BYTES]);
/* Returns: DIME_OK or DIME_E_CRYPTO. Out: sig (zeroed on failure). The expanded key is wiped. */
DIME_MUST_CHECK int dime_ed25519_sign(uint8_t sig[DIME_SIG_BYTES],
				      const uint8_t seed[DIME_ED25519_SEED_BYTES],
				      const uint8_t *msg, size_t msg_len);
/* As dime_ed25519_sign for a key pair whose pub was DERIVED from seed by dime_ed25519_pub
 * (never a pub from outside: a mismatched pub would leak the key). Saves the scalar
 * multiplication per signature; the keystore signs through it. */
DIME_MUST_CHECK int dime_ed25519_sign_kp(uint8_t sig[DIME_SIG_BYTES],
					 const uint8_t seed[DIME_ED25519_SEED_BYTES],
					 const uint8_t pub[DIME_ED25519_PUB_BYTES],
					 const uint8_t *msg, size_t msg_len);
/* Returns: DIME_OK or DIME_E_BADSIG. */
DIME_MUST_CHECK int dime_ed25519_verify(const uint8_t sig[DIME_SIG_BYTES],
					const uint8_t pub[DIME_ED25519_PUB_BYTES],
					const uint8_t *msg, size_t msg_len);
/* Returns: 1 when pub is a canonical point of large order, 0 otherwise. */
int dime_ed25519_pub_valid(const uint8_t pub[DIME_ED25519_PUB_BYTES]);

/* One signature check of a batch: the arguments of one dime_ed25519_verify call. */
struct dime_ed25519_check {
	const uint8_t *sig; /* DIME_SIG_BYTES */
	const uint8_t *pub; /* DIME_ED25519_PUB_BYTES */
	const uint8_t *msg; /* msg_len bytes; may be NULL when msg_len == 0 */
	size_t msg_len;
};

/* Verify n signatures at once, with exactly the verdicts of n dime_ed25519_verify calls:
 * ok[i] = 1 when dime_ed25519_verify(c[i].sig, c[i].pub, c[i].msg, c[i].msg_len) == DIME_OK,
 * else 0. That includes libsodium's strict rules (canonical S < L, canonical R and A, A not of
 * small order), so a batch never accepts what a single check refuses, nor the reverse.
 * How (simd's ed25519_verify_batch, docs/simd.md): the byte rules first, then per chunk of 64
 * one random linear combination of the equations checked with one multi-scalar
 * multiplication (fresh 128-bit coefficients from randombytes_buf per call), small-order
 * parts checked per item so that mixed-order keys and R cannot cancel, and on a failed
 * combination a bisection down to the failing items (none when ok is NULL). A last chunk of
 * fewer than 4 goes to libsodium one at a time, which is faster there. The verdicts stay
 * those of single checks (a wrong one with probability below 2^-127); only the cost changes.
 * In: c[0..n) (borrowed; n may be 0). ok may be NULL: only the return value is wanted, and
 *     the call may stop at the first failure.
 * Out: ok[0..n) when ok != NULL.
 * Returns: DIME_OK when every item verifies (and when n == 0), DIME_E_BADSIG otherwise.
 * Thread-safe; no allocation (about 300 KiB of stack). */
DIME_MUST_CHECK int dime_ed25519_verify_batch(const struct dime_ed25519_check *c, size_t n,
					      uint8_t *ok);

/* Returns: DIME_OK or DIME_E_MALFORMED (scalar zero or >= n). Out: compressed pub. */
DIME_MUST_CHECK int dime_secp_pub(uint8_t pub[DIME_SECP_PUB_BYTES],
				  const uint8_t priv[DIME_SECP_PRIV_BYTES]);
/* Returns: 1 when pub parses as a compressed secp256k1 point, 0 otherwise. */
int dime_secp_pub_valid(const uint8_t pub[DIME_SECP_PUB_BYTES]);
/* Random key pair. Returns: DIME_OK or DIME_E_CRYPTO. */
DIME_MUST_CHECK int dime_secp_keygen(uint8_t priv[DIME_SECP_PRIV_BYTES],
				     uint8_t pub[DIME_SECP_PUB_BYTES]);
/* x coordinate of priv * pub, 32 bytes big-endian (the DIME KDF input).
 * Returns: DIME_OK, DIME_E_MALFORMED (bad point), DIME_E_CRYPTO. Out: x, zeroed on failure. */
DIME_MUST_CHECK int dime_secp_ecdh_x(uint8_t x[DIME_ECDH_BYTES],
				     const uint8_t priv[DIME_SECP_PRIV_BYTES],
				     const uint8_t pub[DIME_SECP_PUB_BYTES]);
/* n independent dime_secp_ecdh_x computations (privs[i] with pubs[i]), with exactly their
 * results: rc[i] and x[i] are what dime_secp_ecdh_x(x[i], privs[i], pubs[i]) gives. Shaped for
 * a batched implementation (shared affine normalisation); today a loop.
 * In: privs[0..n), pubs[0..n) (borrowed; n may be 0).
 * Out: x[0..n) (x[i] zeroed when rc[i] != DIME_OK; the caller wipes the others), rc[0..n).
 * Returns: DIME_OK when every rc[i] is DIME_OK, else the first failing rc[i]. Thread-safe. */
DIME_MUST_CHECK int dime_secp_ecdh_x_batch(const uint8_t (*privs)[DIME_SECP_PRIV_BYTES],
					   const uint8_t (*pubs)[DIME_SECP_PUB_BYTES], size_t n,
					   uint8_t (*x)[DIME_ECDH_BYTES], int *rc);

/* AES-256-CBC without padding; len must be a multiple of 16; in and out may alias.
 * Returns: DIME_OK, DIME_E_INVALID (len not a multiple of 16) or DIME_E_CRYPTO. */
DIME_MUST_CHECK int dime_aes256cbc_encrypt(uint8_t *out, const uint8_t *in, size_t len,
					   const uint8_t key[DIME_AES_KEY_BYTES],
					   const uint8_t iv[DIME_AES_BLOCK_BYTES]);
DIME_MUST_CHECK int dime_aes256cbc_decrypt(uint8_t *out, const uint8_t *in, size_t len,
					   const uint8_t key[DIME_AES_KEY_BYTES],
					   const uint8_t iv[DIME_AES_BLOCK_BYTES]);

/* n independent AES-256-CBC encryptions at once (struct dime_aes256cbc_lane, dime/simd.h):
 * each l[i].out gets exactly what dime_aes256cbc_encrypt(l[i].out, l[i].in, l[i].len,
 * l[i].key, l[i].iv) gives. With AES-NI (SIMD level avx2 or vaes) the streams run interleaved
 * in the multi-buffer kernel (8 lanes, 16 with VAES); otherwise one OpenSSL call per lane
 * (the portable kernel is slower than EVP). docs/simd.md has the figures.
 * In: l[0..n) (borrowed; n may be 0). Within a lane in may equal out; out ranges must not
 *     overlap other lanes' buffers, keys or IVs. in/out may be NULL when len is 0.
 * Returns: DIME_OK, DIME_E_INVALID (a len not a multiple of 16, or over INT32_MAX: nothing is
 *          written) or DIME_E_CRYPTO (every lane's out zeroed).
 * Thread-safe; no allocation on the AES-NI path. */
DIME_MUST_CHECK int dime_aes256cbc_encrypt_many(const struct dime_aes256cbc_lane *l, size_t n);

#ifdef __cplusplus
}
#endif
#endif

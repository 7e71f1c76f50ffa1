#ifndef DIME_ENGINE_KEYS_H
#define DIME_ENGINE_KEYS_H
/* The keystore: the only place private keys live (sodium_malloc'd, wiped on free).
 * Everyone else holds a uint32_t key id. Request/response API, so it can later move into its
 * own process without changing callers.
 *
 * Key files (reference-format.md §4): [magic 1952 org | 2013 user][3-byte length]
 *   [01][0x20][32-byte Ed25519 seed] [03 org | 02 user][00 20][32-byte secp256k1 scalar]
 * armored as ORGANIZATIONAL KEY / USER KEY with the CRC line. SOK private keys, which key files
 * cannot hold, use the genrec form: ED25519 PRIVATE KEY armor over the raw 32-byte seed.
 *
 * A keystore is local (it holds the private halves) or remote (dime_ks_new_remote: it holds
 * only each key's kind and public halves, and hands sign and ECDH to a backend such as the key
 * process, pipeline/include/dime/keyproc.h). Callers cannot tell them apart, except that a
 * remote keystore cannot load, generate or export.
 *
 * Thread-safety: loading, generating and adding need exclusive access; after that, every const
 * function may be called from any number of threads (a remote backend must allow that too). */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"
#include "dime/crypto.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DIME_KS_NONE	       0u /* never a valid key id */
#define DIME_KEYFILE_MAX_BYTES 4096u

enum dime_key_kind {
	DIME_KEY_ORG = 1952,  /* org POK seed + encryption scalar */
	DIME_KEY_USER = 2013, /* user signing seed + encryption scalar */
	DIME_KEY_SIGN = 1     /* a lone Ed25519 seed (SOK, or a POK without its encryption key) */
};

struct dime_ks;

/* Returns: DIME_OK or DIME_E_NOMEM. Out: *out, NULL on failure. */
DIME_MUST_CHECK int dime_ks_new(struct dime_ks **out);

/* The private operations of a remote keystore. id is the keystore's own id of the key (as
 * dime_ks_add_public returned it); the backend maps it to wherever the key lives. Each call
 * has the contract of the local function it stands for (dime_ks_sign, dime_ks_ecdh_batch),
 * plus DIME_E_AGAIN when the backend cannot answer now (key process down or restarting): the
 * caller answers a temporary failure. Both must be callable from any number of threads. */
struct dime_ks_backend {
	int (*sign)(void *ctx, uint8_t sig[DIME_SIG_BYTES], uint32_t id, const uint8_t *msg,
		    size_t msg_len);
	int (*ecdh_batch)(void *ctx, uint32_t id, const uint8_t (*pubs)[DIME_SECP_PUB_BYTES],
			  size_t n, uint8_t (*x)[DIME_ECDH_BYTES], int *rc);
	void *ctx;
	/* Optional (NULL: sign is called per item): as dime_ks_sign_batch, in as few round trips
	 * as the backend can. */
	int (*sign_batch)(void *ctx, uint32_t id, const uint8_t *const *msgs, const size_t *lens,
			  size_t n, uint8_t (*sigs)[DIME_SIG_BYTES], int *rc);
};

/* A remote keystore over backend (copied; ctx borrowed for the keystore's life).
 * Returns: DIME_OK, DIME_E_INVALID (a NULL callback), DIME_E_NOMEM. Out: *out. */
DIME_MUST_CHECK int dime_ks_new_remote(struct dime_ks **out, const struct dime_ks_backend *backend);

/* Add a key known by its public halves (remote keystores only). enc_pub is ignored (may be
 * NULL) for DIME_KEY_SIGN. Ids are given in order: 1, 2, ...
 * Returns: DIME_OK, DIME_E_INVALID (a local keystore, a bad kind, an invalid point),
 * DIME_E_NOMEM. Out: *id (DIME_KS_NONE on failure). */
DIME_MUST_CHECK int dime_ks_add_public(struct dime_ks *ks, uint32_t *id, enum dime_key_kind kind,
				       const uint8_t sign_pub[DIME_ED25519_PUB_BYTES],
				       const uint8_t *enc_pub);

/* Returns: 1 when ks is remote, else 0. */
int dime_ks_is_remote(const struct dime_ks *ks);
/* Wipes and frees every key. NULL-safe. */
void dime_ks_free(struct dime_ks *ks);

/* Generate fresh keys of kind (local keystores; remote: DIME_E_INVALID).
 * Returns: DIME_OK, DIME_E_NOMEM, DIME_E_CRYPTO.
 * Out: *id (DIME_KS_NONE on failure). */
DIME_MUST_CHECK int dime_ks_generate(struct dime_ks *ks, uint32_t *id, enum dime_key_kind kind);

/* Load a key file, binary or armored (ORGANIZATIONAL KEY, USER KEY, ED25519 PRIVATE KEY).
 * Strict: magic, exact length, field ids and lengths, valid scalar.
 * Returns: DIME_OK, DIME_E_TRUNCATED, DIME_E_MALFORMED, DIME_E_TRAILING, DIME_E_BADSIG (armor
 *          CRC), DIME_E_LIMIT (over DIME_KEYFILE_MAX_BYTES), DIME_E_NOMEM.
 * Out: *id (DIME_KS_NONE on failure). Every temporary copy of the secret is wiped.
 * A remote keystore cannot load (DIME_E_INVALID). */
DIME_MUST_CHECK int dime_ks_load(struct dime_ks *ks, uint32_t *id, const uint8_t *in,
				 size_t in_len);

/* dime_ks_load, and *why (when why != NULL) = a static description of the failure, "" on
 * success (a PRIME/magma key file, for one, is named as such). A binary input of exactly 32
 * bytes that does not start like a key file header is a raw Ed25519 seed (DIME_KEY_SIGN). */
DIME_MUST_CHECK int dime_ks_load_why(struct dime_ks *ks, uint32_t *id, const char **why,
				     const uint8_t *in, size_t in_len);

/* Write key id as a key file (DIME_KEY_SIGN as ED25519 PRIVATE KEY). armored: PEM with CRC.
 * Binary DIME_KEY_SIGN is the raw 32-byte seed.
 * out == NULL: only *out_len is set (the size needed). Armored output is NUL-terminated, so
 * out_cap must be at least *out_len + 1 (as dime_signet_armor). On failure *out_len = 0 and
 * out is wiped.
 * Returns: DIME_OK, DIME_E_NOTFOUND, DIME_E_NOSPACE, DIME_E_INVALID (a remote keystore never
 * exports). The caller must wipe out. */
DIME_MUST_CHECK int dime_ks_export(const struct dime_ks *ks, uint8_t *out, size_t out_cap,
				   size_t *out_len, uint32_t id, int armored);

/* Returns: DIME_OK or DIME_E_NOTFOUND. Out: *kind. */
DIME_MUST_CHECK int dime_ks_kind(const struct dime_ks *ks, enum dime_key_kind *kind, uint32_t id);
/* Returns: DIME_OK or DIME_E_NOTFOUND. Out: the Ed25519 public key. */
DIME_MUST_CHECK int dime_ks_sign_pub(const struct dime_ks *ks, uint8_t pub[DIME_ED25519_PUB_BYTES],
				     uint32_t id);
/* Returns: DIME_OK, DIME_E_NOTFOUND, DIME_E_INVALID (DIME_KEY_SIGN has no encryption key). */
DIME_MUST_CHECK int dime_ks_enc_pub(const struct dime_ks *ks, uint8_t pub[DIME_SECP_PUB_BYTES],
				    uint32_t id);
/* Ed25519 signature with key id. Returns: DIME_OK, DIME_E_NOTFOUND, DIME_E_CRYPTO. */
DIME_MUST_CHECK int dime_ks_sign(const struct dime_ks *ks, uint8_t sig[DIME_SIG_BYTES], uint32_t id,
				 const uint8_t *msg, size_t msg_len);
/* n Ed25519 signatures with key id: sigs[i] and rc[i] are exactly what
 * dime_ks_sign(ks, sigs[i], id, msgs[i], lens[i]) gives. For a remote keystore, one request for
 * them all (the per-chunk signatures of a wrap: a key process round trip each would dominate).
 * Returns: DIME_OK when every rc[i] is DIME_OK, else the first failing rc[i]. Thread-safe. */
DIME_MUST_CHECK int dime_ks_sign_batch(const struct dime_ks *ks, uint32_t id,
				       const uint8_t *const *msgs, const size_t *lens, size_t n,
				       uint8_t (*sigs)[DIME_SIG_BYTES], int *rc);

/* Raw ECDH x coordinate with key id's encryption key.
 * Returns: DIME_OK, DIME_E_NOTFOUND, DIME_E_INVALID, DIME_E_MALFORMED (bad peer point). */
DIME_MUST_CHECK int dime_ks_ecdh(const struct dime_ks *ks, uint8_t x[DIME_ECDH_BYTES], uint32_t id,
				 const uint8_t peer[DIME_SECP_PUB_BYTES]);

/* Key id's encryption key against n peer points: rc[i] and x[i] are exactly what
 * dime_ks_ecdh(ks, x[i], id, pubs[i]) gives (an unknown id or a DIME_KEY_SIGN key gives every
 * item DIME_E_NOTFOUND or DIME_E_INVALID). One private key, many points: the shape a batched
 * implementation (shared precomputation of the scalar, one affine normalisation) needs; today a
 * loop. The private key is read in place and never copied out.
 * In: pubs[0..n) (borrowed; n may be 0).
 * Out: x[0..n) (zeroed where rc[i] != DIME_OK; the caller wipes the secrets), rc[0..n).
 * Returns: DIME_OK when every rc[i] is DIME_OK, else the first failing rc[i].
 * Thread-safe (a const keystore function). */
DIME_MUST_CHECK int dime_ks_ecdh_batch(const struct dime_ks *ks, uint32_t key_id,
				       const uint8_t (*pubs)[DIME_SECP_PUB_BYTES], size_t n,
				       uint8_t (*x)[DIME_ECDH_BYTES], int *rc);

#ifdef __cplusplus
}
#endif
#endif

#ifndef DIME_PIPELINE_SEAL_H
#define DIME_PIPELINE_SEAL_H
/* Private keys at rest (docs/identity.md, "Keys at rest"): the store's key-encryption key
 * (KEK), unlocked at open from a key file or an Argon2id passphrase, and the per-row sealing
 * of key blobs with XChaCha20-Poly1305 bound to (ident, kind, version). Private to
 * dime_pipeline: store.c is the only caller. */

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "dime/crypto.h"
#include "dime/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An unlocked KEK: two subkeys (AEAD, digest) in sodium_malloc'd memory. */
struct dime_seal;

/* A sealed blob: format byte, 24-byte random nonce, ciphertext, 16-byte tag. */
#define DIME_SEAL_NONCE_BYTES 24
#define DIME_SEAL_TAG_BYTES   16
#define DIME_SEAL_OVERHEAD    (1 + DIME_SEAL_NONCE_BYTES + DIME_SEAL_TAG_BYTES)

/* Format an error message into err (cap errlen; nothing when err is NULL or errlen 0): one
 * helper for store.c and seal.c. */
void dime_store_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The schema migration that creates the secrets meta table (store.c's migration list). */
extern const char *const dime_seal_migration[];

/* Is a row of this kind a private key, sealed at rest? */
int dime_seal_kind(enum dime_store_kind kind);

/* Unlock the store at path (db already migrated), or set its secrets up when the meta row is
 * missing: a new store, or a v1 store whose plaintext key rows are sealed here, in the same
 * transaction that records the meta. May create "<path>.key" (0600) and say so on stderr.
 * Returns: DIME_OK; DIME_E_BADSIG (wrong passphrase or key file); DIME_E_INVALID (no usable
 * key source: missing, bad mode or size, no passphrase); DIME_E_NOMEM; DIME_E_IO.
 * Out: *out, NULL on failure; err gets the reason. */
DIME_MUST_CHECK int dime_seal_new(struct dime_seal **out, sqlite3 *db, const char *path, char *err,
				  size_t errlen);
void dime_seal_free(struct dime_seal *s); /* NULL-safe; wipes */

/* Keyed BLAKE2b-512 of a plaintext key, for put's duplicate check (a plain SHA-512 of an
 * Ed25519 seed would be its secret scalar). */
void dime_seal_digest(const struct dime_seal *s, uint8_t out[DIME_SHA512_BYTES], const uint8_t *pt,
		      size_t pt_len);

/* Seal pt for row (ident, kind, version). out has pt_len + DIME_SEAL_OVERHEAD bytes.
 * Returns: DIME_OK or DIME_E_CRYPTO (out zeroed). */
DIME_MUST_CHECK int dime_seal_wrap(const struct dime_seal *s, uint8_t *out, const uint8_t *pt,
				   size_t pt_len, const char *ident, enum dime_store_kind kind,
				   uint32_t version);

/* Replace the malloc'd sealed blob *blob of row (ident, kind, version) by its plaintext
 * (malloc'd; the caller wipes and frees it, as for any key blob). The sealed copy is freed.
 * Returns: DIME_OK, DIME_E_BADSIG (tampered, moved from another row, or sealed under another
 * KEK), DIME_E_NOMEM. On failure *blob is freed and NULL, *blob_len 0. */
DIME_MUST_CHECK int dime_seal_unwrap(const struct dime_seal *s, uint8_t **blob, size_t *blob_len,
				     const char *ident, enum dime_store_kind kind,
				     uint32_t version);

/* Re-seal every key row under a new KEK and record it, in one transaction (all or nothing).
 * On success *s is replaced by the new KEK. file: the new key or passphrase file (unused for
 * DIME_STORE_TO_GENERATED). Returns: as dime_seal_new, plus DIME_E_AGAIN (another process
 * changed the KEK since this handle opened). Out: *n_keys. */
DIME_MUST_CHECK int dime_seal_rekey(struct dime_seal **s, size_t *n_keys, sqlite3 *db,
				    const char *path, enum dime_store_secrets_to to,
				    const char *file, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif

/* Crypto wrappers: libsodium for Ed25519, SHA-512, randomness and secure memory;
 * libsecp256k1 for the encryption keys and ECDH; OpenSSL EVP for AES-256-CBC.
 * Shared state (secp256k1 context, fetched cipher) is written once by dime_global_init(). */

#include <string.h>

#include <openssl/evp.h>
#include <secp256k1.h>
#include <secp256k1_ecdh.h>
#include <sodium.h>

#include "dime/crypto.h"
#include "dime/simd.h"

static secp256k1_context *crypto_secp;
static EVP_CIPHER *crypto_aes_cbc;

_Static_assert(sizeof(struct dime_sha512_ctx) >= sizeof(crypto_hash_sha512_state),
	       "dime_sha512_ctx too small");

int
dime_global_init(void)
{
	uint8_t seed[32];
	int rc = DIME_E_CRYPTO;

	if (crypto_secp != NULL && crypto_aes_cbc != NULL)
		return DIME_OK;
	if (sodium_init() < 0)
		return DIME_E_CRYPTO;
	(void)dime_simd_init(DIME_SIMD_MAX);
	crypto_secp = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
	if (crypto_secp == NULL)
		goto out;
	/* Blinding against side channels in signing and key generation. */
	randombytes_buf(seed, sizeof(seed));
	if (secp256k1_context_randomize(crypto_secp, seed) != 1)
		goto out;
	crypto_aes_cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
	if (crypto_aes_cbc == NULL)
		goto out;
	rc = DIME_OK;
out:
	sodium_memzero(seed, sizeof(seed));
	return rc;
}

void
dime_random(void *buf, size_t len)
{
	randombytes_buf(buf, len);
}

void
dime_wipe(void *p, size_t len)
{
	if (p != NULL && len > 0)
		sodium_memzero(p, len);
}

int
dime_ct_equal(const void *a, const void *b, size_t len)
{
	return sodium_memcmp(a, b, len) == 0;
}

void *
dime_secure_alloc(size_t len)
{
	return sodium_malloc(len);
}

void
dime_secure_free(void *p)
{
	sodium_free(p);
}

void
dime_sha512(uint8_t out[DIME_SHA512_BYTES], const uint8_t *in, size_t in_len)
{
	crypto_hash_sha512(out, in, in_len);
}

void
dime_sha512_init(struct dime_sha512_ctx *c)
{
	crypto_hash_sha512_init((crypto_hash_sha512_state *)(void *)c->opaque);
}

void
dime_sha512_update(struct dime_sha512_ctx *c, const uint8_t *in, size_t in_len)
{
	crypto_hash_sha512_update((crypto_hash_sha512_state *)(void *)c->opaque, in, in_len);
}

void
dime_sha512_final(struct dime_sha512_ctx *c, uint8_t out[DIME_SHA512_BYTES])
{
	crypto_hash_sha512_final((crypto_hash_sha512_state *)(void *)c->opaque, out);
	sodium_memzero(c, sizeof(*c));
}

int
dime_ed25519_pub(uint8_t pub[DIME_ED25519_PUB_BYTES], const uint8_t seed[DIME_ED25519_SEED_BYTES])
{
	uint8_t sk[crypto_sign_SECRETKEYBYTES];

	crypto_sign_seed_keypair(pub, sk, seed);
	sodium_memzero(sk, sizeof(sk));
	return DIME_OK;
}

int
dime_ed25519_sign(uint8_t sig[DIME_SIG_BYTES], const uint8_t seed[DIME_ED25519_SEED_BYTES],
		  const uint8_t *msg, size_t msg_len)
{
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	int rc = DIME_OK;

	crypto_sign_seed_keypair(pk, sk, seed);
	if (crypto_sign_detached(sig, NULL, msg, msg_len, sk) != 0) {
		sodium_memzero(sig, DIME_SIG_BYTES);
		rc = DIME_E_CRYPTO;
	}
	sodium_memzero(sk, sizeof(sk));
	return rc;
}

int
dime_ed25519_sign_kp(uint8_t sig[DIME_SIG_BYTES], const uint8_t seed[DIME_ED25519_SEED_BYTES],
		     const uint8_t pub[DIME_ED25519_PUB_BYTES], const uint8_t *msg, size_t msg_len)
{
	uint8_t sk[crypto_sign_SECRETKEYBYTES];
	int rc = DIME_OK;

	/* libsodium's secret key is seed || pub: with pub known, no scalar multiplication */
	memcpy(sk, seed, DIME_ED25519_SEED_BYTES);
	memcpy(sk + DIME_ED25519_SEED_BYTES, pub, DIME_ED25519_PUB_BYTES);
	if (crypto_sign_detached(sig, NULL, msg, msg_len, sk) != 0) {
		sodium_memzero(sig, DIME_SIG_BYTES);
		rc = DIME_E_CRYPTO;
	}
	sodium_memzero(sk, sizeof(sk));
	return rc;
}

int
dime_ed25519_verify(const uint8_t sig[DIME_SIG_BYTES], const uint8_t pub[DIME_ED25519_PUB_BYTES],
		    const uint8_t *msg, size_t msg_len)
{
	return crypto_sign_verify_detached(sig, msg, msg_len, pub) == 0 ? DIME_OK : DIME_E_BADSIG;
}

/* libsodium's byte rules, applied before any arithmetic (crypto_sign/ed25519/ref10/open.c):
 * S below L; R and A not one of the small-order encodings below (bit 255 ignored); A's y
 * below p. */
static const uint8_t ed_small_order[7][32] = {
    {0}, /* y = 0, order 4 */
    {1}, /* y = 1, the identity */
    {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4,
     0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
     0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05}, /* order 8 */
    {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b,
     0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39,
     0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a}, /* order 8 */
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, /* y = p - 1, order 2 */
    {0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, /* y = p, that is 0 */
    {0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, /* y = p + 1, that is 1 */
};

static int
ed_small_order_bytes(const uint8_t s[32])
{
	for (size_t k = 0; k < 7; k++)
		if (memcmp(s, ed_small_order[k], 31) == 0 &&
		    (s[31] & 0x7f) == ed_small_order[k][31])
			return 1;
	return 0;
}

/* y (bit 255 ignored) below p = 2^255 - 19 */
static int
ed_y_canonical(const uint8_t s[32])
{
	if ((s[31] & 0x7f) != 0x7f)
		return 1;
	for (int i = 30; i > 0; i--)
		if (s[i] != 0xff)
			return 1;
	return s[0] < 0xed;
}

static int
ed_s_canonical(const uint8_t s[32])
{
	static const uint8_t l[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58,
				      0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
				      0,    0,	  0,	0,    0,    0,	  0,	0,
				      0,    0,	  0,	0,    0,    0,	  0,	0x10};

	for (int i = 31; i >= 0; i--)
		if (s[i] != l[i])
			return s[i] < l[i];
	return 0;
}

#define ED_BATCH     64 /* the kernel's own chunk: one MSM per 64 signatures */
#define ED_BATCH_MIN 4	/* below this many, one-at-a-time libsodium is faster (measured) */

int
dime_ed25519_verify_batch(const struct dime_ed25519_check *c, size_t n, uint8_t *ok)
{
	struct dime_ed25519_item it[ED_BATCH];
	uint8_t okc[ED_BATCH], zr[ED_BATCH][16];
	size_t map[ED_BATCH];
	int rc = DIME_OK;

	for (size_t off = 0; off < n; off += ED_BATCH) {
		size_t k = n - off < ED_BATCH ? n - off : ED_BATCH, m = 0;

		if (k < ED_BATCH_MIN) {
			for (size_t i = 0; i < k && !(rc != DIME_OK && ok == NULL); i++) {
				const struct dime_ed25519_check *ci = &c[off + i];
				int good = dime_ed25519_verify(ci->sig, ci->pub, ci->msg,
							       ci->msg_len) == DIME_OK;

				if (ok != NULL)
					ok[off + i] = (uint8_t)good;
				if (!good)
					rc = DIME_E_BADSIG;
			}
			break; /* k < ED_BATCH_MIN only for the last chunk */
		}
		/* fresh coefficients per call, never seen by whoever made the signatures */
		randombytes_buf(zr, sizeof(zr[0]) * k);
		for (size_t i = 0; i < k; i++) {
			const struct dime_ed25519_check *ci = &c[off + i];
			struct dime_ed25519_item *x = &it[m];
			crypto_hash_sha512_state st;
			uint8_t h64[64], h[32];

			if (ok != NULL)
				ok[off + i] = 0;
			if (!ed_s_canonical(ci->sig + 32) || ed_small_order_bytes(ci->sig) ||
			    !ed_y_canonical(ci->pub) || ed_small_order_bytes(ci->pub)) {
				rc = DIME_E_BADSIG;
				if (ok == NULL)
					break;
				continue;
			}
			crypto_hash_sha512_init(&st);
			crypto_hash_sha512_update(&st, ci->sig, 32);
			crypto_hash_sha512_update(&st, ci->pub, 32);
			if (ci->msg_len > 0)
				crypto_hash_sha512_update(&st, ci->msg, ci->msg_len);
			crypto_hash_sha512_final(&st, h64);
			crypto_core_ed25519_scalar_reduce(h, h64);
			x->r = ci->sig;
			x->a = ci->pub;
			x->h8 = (uint8_t)(h[0] & 7);
			memset(x->z, 0, sizeof(x->z));
			memcpy(x->z, zr[i], sizeof(zr[i]));
			x->z[0] |= 1; /* never zero: a zero coefficient would check nothing */
			crypto_core_ed25519_scalar_mul(x->za, x->z, h);
			crypto_core_ed25519_scalar_mul(x->zs, x->z, ci->sig + 32);
			map[m++] = i;
		}
		if (ok == NULL) {
			/* only the answer: no bisection */
			if (rc == DIME_OK && !dime_simd()->ed25519_verify_batch(it, m, NULL))
				rc = DIME_E_BADSIG;
		} else {
			(void)dime_simd()->ed25519_verify_batch(it, m, okc);
			for (size_t j = 0; j < m; j++) {
				ok[off + map[j]] = okc[j];
				if (!okc[j])
					rc = DIME_E_BADSIG;
			}
		}
		sodium_memzero(it, sizeof(it));
		sodium_memzero(zr, sizeof(zr));
		if (rc != DIME_OK && ok == NULL)
			break;
	}
	return rc;
}

int
dime_ed25519_pub_valid(const uint8_t pub[DIME_ED25519_PUB_BYTES])
{
	return crypto_core_ed25519_is_valid_point(pub) == 1;
}

int
dime_secp_pub(uint8_t pub[DIME_SECP_PUB_BYTES], const uint8_t priv[DIME_SECP_PRIV_BYTES])
{
	secp256k1_pubkey pk;
	size_t len = DIME_SECP_PUB_BYTES;

	memset(pub, 0, DIME_SECP_PUB_BYTES);
	DIME_ASSERT(crypto_secp != NULL);
	if (secp256k1_ec_seckey_verify(crypto_secp, priv) != 1 ||
	    secp256k1_ec_pubkey_create(crypto_secp, &pk, priv) != 1)
		return DIME_E_MALFORMED;
	if (secp256k1_ec_pubkey_serialize(crypto_secp, pub, &len, &pk, SECP256K1_EC_COMPRESSED) !=
	    1)
		return DIME_E_CRYPTO;
	return DIME_OK;
}

int
dime_secp_pub_valid(const uint8_t pub[DIME_SECP_PUB_BYTES])
{
	secp256k1_pubkey pk;

	DIME_ASSERT(crypto_secp != NULL);
	if (pub[0] != 0x02 && pub[0] != 0x03)
		return 0;
	return secp256k1_ec_pubkey_parse(crypto_secp, &pk, pub, DIME_SECP_PUB_BYTES) == 1;
}

int
dime_secp_keygen(uint8_t priv[DIME_SECP_PRIV_BYTES], uint8_t pub[DIME_SECP_PUB_BYTES])
{
	/* A random 256-bit value is >= n with probability ~2^-128; retry bounds the loop. */
	for (int i = 0; i < 64; i++) {
		randombytes_buf(priv, DIME_SECP_PRIV_BYTES);
		if (dime_secp_pub(pub, priv) == DIME_OK)
			return DIME_OK;
	}
	sodium_memzero(priv, DIME_SECP_PRIV_BYTES);
	return DIME_E_CRYPTO;
}

/* DIME's KDF hashes the raw x coordinate itself, so ECDH must hand it over unhashed. */
static int
crypto_ecdh_copy_x(unsigned char *out, const unsigned char *x32, const unsigned char *y32,
		   void *data)
{
	(void)y32;
	(void)data;
	memcpy(out, x32, DIME_ECDH_BYTES);
	return 1;
}

int
dime_secp_ecdh_x(uint8_t x[DIME_ECDH_BYTES], const uint8_t priv[DIME_SECP_PRIV_BYTES],
		 const uint8_t pub[DIME_SECP_PUB_BYTES])
{
	secp256k1_pubkey pk;

	memset(x, 0, DIME_ECDH_BYTES);
	DIME_ASSERT(crypto_secp != NULL);
	if ((pub[0] != 0x02 && pub[0] != 0x03) ||
	    secp256k1_ec_pubkey_parse(crypto_secp, &pk, pub, DIME_SECP_PUB_BYTES) != 1)
		return DIME_E_MALFORMED;
	if (secp256k1_ecdh(crypto_secp, x, &pk, priv, crypto_ecdh_copy_x, NULL) != 1) {
		sodium_memzero(x, DIME_ECDH_BYTES);
		return DIME_E_CRYPTO;
	}
	return DIME_OK;
}

int
dime_secp_ecdh_x_batch(const uint8_t (*privs)[DIME_SECP_PRIV_BYTES],
		       const uint8_t (*pubs)[DIME_SECP_PUB_BYTES], size_t n,
		       uint8_t (*x)[DIME_ECDH_BYTES], int *rc)
{
	int first = DIME_OK;

	for (size_t i = 0; i < n; i++) {
		rc[i] = dime_secp_ecdh_x(x[i], privs[i], pubs[i]);
		if (rc[i] != DIME_OK && first == DIME_OK)
			first = rc[i];
	}
	return first;
}

static int
crypto_aes_cbc_run(uint8_t *out, const uint8_t *in, size_t len, const uint8_t *key,
		   const uint8_t *iv, int enc)
{
	EVP_CIPHER_CTX *c;
	int n = 0, fin = 0, rc = DIME_E_CRYPTO;

	if (len % DIME_AES_BLOCK_BYTES != 0 || len > (size_t)INT32_MAX)
		return DIME_E_INVALID;
	DIME_ASSERT(crypto_aes_cbc != NULL);
	if ((c = EVP_CIPHER_CTX_new()) == NULL)
		return DIME_E_NOMEM;
	if (EVP_CipherInit_ex2(c, crypto_aes_cbc, key, iv, enc, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(c, 0) != 1 ||
	    (len > 0 && EVP_CipherUpdate(c, out, &n, in, (int)len) != 1) ||
	    EVP_CipherFinal_ex(c, out + n, &fin) != 1 || (size_t)n + (size_t)fin != len)
		goto out;
	rc = DIME_OK;
out:
	EVP_CIPHER_CTX_free(c); /* wipes the key schedule */
	return rc;
}

int
dime_aes256cbc_encrypt(uint8_t *out, const uint8_t *in, size_t len,
		       const uint8_t key[DIME_AES_KEY_BYTES],
		       const uint8_t iv[DIME_AES_BLOCK_BYTES])
{
	return crypto_aes_cbc_run(out, in, len, key, iv, 1);
}

int
dime_aes256cbc_decrypt(uint8_t *out, const uint8_t *in, size_t len,
		       const uint8_t key[DIME_AES_KEY_BYTES],
		       const uint8_t iv[DIME_AES_BLOCK_BYTES])
{
	return crypto_aes_cbc_run(out, in, len, key, iv, 0);
}

int
dime_aes256cbc_encrypt_many(const struct dime_aes256cbc_lane *l, size_t n)
{
	const struct dime_simd_ops *t = dime_simd();
	int rc = DIME_OK;

	for (size_t i = 0; i < n; i++)
		if (l[i].len % DIME_AES_BLOCK_BYTES != 0 || l[i].len > (size_t)INT32_MAX)
			return DIME_E_INVALID;
	/* Every table above base has AES-NI (dispatch.c requires it for avx2). */
	if (t != dime_simd_table(DIME_SIMD_BASE)) {
		t->aes256cbc_encrypt_lanes(l, n);
		return DIME_OK;
	}
	for (size_t i = 0; i < n && rc == DIME_OK; i++)
		if (l[i].len > 0)
			rc = dime_aes256cbc_encrypt(l[i].out, l[i].in, l[i].len, l[i].key, l[i].iv);
	for (size_t i = 0; i < n && rc != DIME_OK; i++)
		if (l[i].len > 0)
			sodium_memzero(l[i].out, l[i].len);
	return rc;
}

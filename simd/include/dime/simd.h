#ifndef DIME_SIMD_SIMD_H
#define DIME_SIMD_SIMD_H
/* SIMD kernels behind one dispatch table, filled once by dime_simd_init() before any thread
 * starts; read-only afterwards. Every kernel has a portable base form. */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* avx2: AVX2 + AES-NI + PCLMUL; vaes: avx2 plus VAES, AVX-512F and AVX-512VL (16 AES lanes in
 * zmm registers). CPUID and the OS's saved vector state are both checked. */
enum dime_simd_level {
	DIME_SIMD_BASE = 0,
	DIME_SIMD_AVX2 = 1,
	DIME_SIMD_VAES = 2,
	DIME_SIMD_MAX = 2
};

/* One AES-256-CBC encryption stream (no padding) of a multi-buffer call. */
struct dime_aes256cbc_lane {
	const uint8_t *key; /* 32 bytes */
	const uint8_t *iv;  /* 16 bytes */
	const uint8_t *in;  /* len bytes; may equal out exactly (in place) */
	uint8_t *out;	    /* len bytes */
	size_t len;	    /* a multiple of 16; lanes may differ in length; 0 is allowed */
};

/* One signature of a batched Ed25519 verification, prepared by the caller: libsodium's byte
 * rules (S < L; R and A not among the small-order encodings; A's y below p) already hold. */
struct dime_ed25519_item {
	const uint8_t *r; /* 32: R, the first half of the signature */
	const uint8_t *a; /* 32: A, the public key */
	uint8_t h8;	  /* h mod 8, h = SHA-512(R || A || M) mod L */
	uint8_t z[32];	  /* the item's secret random coefficient, nonzero, below 2^128 */
	uint8_t za[32];	  /* z h mod L */
	uint8_t zs[32];	  /* z S mod L */
};

struct dime_simd_ops {
	const char *name;
	/* dst[i] = a[i] ^ b[i]; dst may alias a or b exactly. */
	void (*xor_bytes)(uint8_t *dst, const uint8_t *a, const uint8_t *b, size_t n);
	/* AES-256-CBC encryption of n independent streams l[0..n), each exactly as FIPS-197 with
	 * SP 800-38A CBC would give it: out = CBC-Enc(key, iv, in[0..len)). Whole blocks only: a
	 * len that is not a multiple of 16 is a caller bug (the engine checks; the kernel ignores
	 * the remainder). Within a lane in == out is allowed; otherwise no out range may overlap
	 * another lane's in, out, key or iv. n may be 0; pointers of a lane with len 0 are not
	 * read. Keys are expanded inside the kernel and the schedules wiped before it returns.
	 * Constant time in keys and data (no table lookups or branches on them); the time
	 * depends only on n and the lengths. base: portable arithmetic S-box (slow; for CPUs
	 * without AES-NI); avx2: AES-NI, 8 interleaved lanes; vaes: 16 lanes in zmm registers.
	 * Reentrant; no allocation. */
	void (*aes256cbc_encrypt_lanes)(const struct dime_aes256cbc_lane *l, size_t n);
	/* Base64 (RFC 4648 §4, standard alphabet) of n_groups whole 3-byte groups: out[0..4n)
	 * gets the characters of in[0..3n); no padding, no NUL. out must not overlap in. Reads
	 * exactly in[0..3n), writes exactly out[0..4n). Constant time: no branches or table
	 * lookups on the data. Reentrant; no allocation. */
	void (*b64_encode_blocks)(char *out, const uint8_t *in, size_t n_groups);
	/* Decode whole quads of the standard alphabet (A-Z a-z 0-9 + /) from the start of in:
	 * quad q (in[4q..4q+4)) gives out[3q..3q+3). Stops before the first quad holding any
	 * other byte ('=', CR, LF, space, ...), which the caller then handles.
	 * Returns: r <= n_quads, the number of quads decoded; out[0..3r) written, nothing past.
	 * Reads at most in[0..4 n_quads). out must not overlap in. The time depends only on r
	 * and n_quads, never on the values of the alphabet characters. Reentrant. */
	size_t (*b64_decode_blocks)(uint8_t *out, const char *in, size_t n_quads);
	/* ok[i] = 1 iff R_i == [S_i]B - [h_i]A_i, libsodium's cofactorless equation, with R_i
	 * and A_i decoded as libsodium does and R_i's bytes its canonical encoding; else 0.
	 * Exact per item: small-order parts are checked item by item, the prime-order parts with
	 * one random linear combination (error below 2^-127 over the z_i, which the caller must
	 * draw fresh and keep from the signers), bisected on failure. ok may be NULL: no
	 * bisection, only the answer. Returns: 1 when every item verifies, else 0. Variable time
	 * (public inputs only). Uses about 250 KiB of stack; no allocation; reentrant. */
	int (*ed25519_verify_batch)(const struct dime_ed25519_item *it, size_t n, uint8_t *ok);
};

/* Pick the best table the CPU supports, capped by max and by $DIME_SIMD (base|avx2|vaes).
 * Returns: the level chosen. Not thread-safe: call before starting threads. */
enum dime_simd_level dime_simd_init(enum dime_simd_level max);

/* Returns: the table in use (never NULL). */
const struct dime_simd_ops *dime_simd(void);

/* Each table, for tests that compare them. NULL when not built or not supported here. */
const struct dime_simd_ops *dime_simd_table(enum dime_simd_level level);

#ifdef __cplusplus
}
#endif
#endif

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

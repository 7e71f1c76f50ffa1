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

struct dime_simd_ops {
	const char *name;
	/* dst[i] = a[i] ^ b[i]; dst may alias a or b exactly. */
	void (*xor_bytes)(uint8_t *dst, const uint8_t *a, const uint8_t *b, size_t n);
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

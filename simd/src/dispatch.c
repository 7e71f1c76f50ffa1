/* The dispatch table: chosen once from CPUID and $DIME_SIMD, then read-only. */

#include <stdlib.h>
#include <string.h>

#include "simd_int.h"

static const struct dime_simd_ops *simd_cur = &dime_simd_base_ops;

enum dime_simd_level
dime_simd_init(enum dime_simd_level max)
{
	const char *cap = getenv("DIME_SIMD");

	if (cap != NULL && strcmp(cap, "base") == 0)
		max = DIME_SIMD_BASE;
	simd_cur = &dime_simd_base_ops;
#if defined(DIME_HAVE_AVX2)
	__builtin_cpu_init();
	if (max >= DIME_SIMD_AVX2 && __builtin_cpu_supports("avx2")) {
		simd_cur = &dime_simd_avx2_ops;
		return DIME_SIMD_AVX2;
	}
#else
	(void)max;
#endif
	return DIME_SIMD_BASE;
}

const struct dime_simd_ops *
dime_simd(void)
{
	return simd_cur;
}

const struct dime_simd_ops *
dime_simd_table(enum dime_simd_level level)
{
	switch (level) {
	case DIME_SIMD_BASE:
		return &dime_simd_base_ops;
#if defined(DIME_HAVE_AVX2)
	case DIME_SIMD_AVX2:
		__builtin_cpu_init();
		return __builtin_cpu_supports("avx2") ? &dime_simd_avx2_ops : NULL;
#endif
	default:
		return NULL;
	}
}

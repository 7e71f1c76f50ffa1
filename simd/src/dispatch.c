/* The dispatch table: chosen once from CPUID and $DIME_SIMD, then read-only. */

#include <stdlib.h>
#include <string.h>

#include "simd_int.h"

static const struct dime_simd_ops *simd_cur = &dime_simd_base_ops;

/* Is level usable here? __builtin_cpu_supports checks the OS's XSAVE state (XCR0) for the
 * AVX and AVX-512 features as well as CPUID. */
static int
simd_supported(enum dime_simd_level level)
{
	switch (level) {
	case DIME_SIMD_BASE:
		return 1;
#if defined(DIME_HAVE_AVX2)
	case DIME_SIMD_AVX2:
		__builtin_cpu_init();
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("aes") &&
		       __builtin_cpu_supports("pclmul");
	case DIME_SIMD_VAES:
		__builtin_cpu_init();
		return simd_supported(DIME_SIMD_AVX2) && __builtin_cpu_supports("vaes") &&
		       __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
#endif
	default:
		return 0;
	}
}

const struct dime_simd_ops *
dime_simd_table(enum dime_simd_level level)
{
	if (!simd_supported(level))
		return NULL;
	switch (level) {
	case DIME_SIMD_BASE:
		return &dime_simd_base_ops;
#if defined(DIME_HAVE_AVX2)
	case DIME_SIMD_AVX2:
		return &dime_simd_avx2_ops;
	case DIME_SIMD_VAES:
		return &dime_simd_vaes_ops;
#endif
	default:
		return NULL;
	}
}

enum dime_simd_level
dime_simd_init(enum dime_simd_level max)
{
	const char *cap = getenv("DIME_SIMD");

	if (cap != NULL && strcmp(cap, "base") == 0)
		max = DIME_SIMD_BASE;
	else if (cap != NULL && strcmp(cap, "avx2") == 0 && max > DIME_SIMD_AVX2)
		max = DIME_SIMD_AVX2;
	for (int l = (int)max; l > DIME_SIMD_BASE; l--)
		if (dime_simd_table((enum dime_simd_level)l) != NULL) {
			simd_cur = dime_simd_table((enum dime_simd_level)l);
			return (enum dime_simd_level)l;
		}
	simd_cur = &dime_simd_base_ops;
	return DIME_SIMD_BASE;
}

const struct dime_simd_ops *
dime_simd(void)
{
	return simd_cur;
}

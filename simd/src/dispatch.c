/* The dispatch table: chosen once from CPUID and $DIME_SIMD, then read-only. */

#include <stdlib.h>
#include <string.h>

#include "simd_int.h"

static const struct dime_simd_ops *simd_cur = &dime_simd_base_ops;

#if defined(DIME_HAVE_AVX2)
#include <cpuid.h>

/* CPU and OS support, read once from CPUID and XCR0. Our own bits rather than
 * __builtin_cpu_supports: compilers disagree on its feature names (clang 14 has no "vaes"),
 * and the OS must have enabled the vector state (OSXSAVE, then XCR0) before any wide
 * register is touched. */
struct simd_cpu {
	int avx2; /* AVX2 + AES-NI + PCLMULQDQ, YMM state enabled by the OS */
	int vaes; /* VAES + AVX-512F/VL, ZMM and opmask state enabled by the OS */
};

static unsigned long long
simd_xcr0(void)
{
	unsigned lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((unsigned long long)hi << 32) | lo;
}

static struct simd_cpu
simd_cpu(void)
{
	struct simd_cpu c = {0, 0};
	unsigned a, b, cx, d;

	if (!__get_cpuid(1, &a, &b, &cx, &d))
		return c;
	unsigned aes = (cx >> 25) & 1, pclmul = (cx >> 1) & 1, osxsave = (cx >> 27) & 1,
		 avx = (cx >> 28) & 1;
	if (!osxsave || !avx || __get_cpuid_max(0, NULL) < 7)
		return c;
	unsigned long long xcr0 = simd_xcr0();
	unsigned ymm_os = (xcr0 & 0x6) == 0x6;	 /* SSE and AVX state */
	unsigned zmm_os = (xcr0 & 0xe6) == 0xe6; /* plus opmask, ZMM_Hi256, Hi16_ZMM */
	__cpuid_count(7, 0, a, b, cx, d);
	unsigned avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1, avx512vl = (b >> 31) & 1,
		 vaes = (cx >> 9) & 1;
	c.avx2 = ymm_os && avx2 && aes && pclmul;
	c.vaes = c.avx2 && zmm_os && vaes && avx512f && avx512vl;
	return c;
}
#endif

/* Is level usable here? */
static int
simd_supported(enum dime_simd_level level)
{
#if defined(DIME_HAVE_AVX2)
	/* Bit 0: probed; bits 1 and 2: the levels. Probing twice gives the same answer, so a
	 * relaxed atomic is enough when threads race on the first call. */
	static int probed;
	int bits = __atomic_load_n(&probed, __ATOMIC_RELAXED);

	if (bits == 0) {
		struct simd_cpu c = simd_cpu();
		bits = 1 | c.avx2 << 1 | c.vaes << 2;
		__atomic_store_n(&probed, bits, __ATOMIC_RELAXED);
	}
#endif
	switch (level) {
	case DIME_SIMD_BASE: return 1;
#if defined(DIME_HAVE_AVX2)
	case DIME_SIMD_AVX2: return (bits >> 1) & 1;
	case DIME_SIMD_VAES: return (bits >> 2) & 1;
#endif
	default: return 0;
	}
}

const struct dime_simd_ops *
dime_simd_table(enum dime_simd_level level)
{
	if (!simd_supported(level))
		return NULL;
	switch (level) {
	case DIME_SIMD_BASE: return &dime_simd_base_ops;
#if defined(DIME_HAVE_AVX2)
	case DIME_SIMD_AVX2: return &dime_simd_avx2_ops;
	case DIME_SIMD_VAES: return &dime_simd_vaes_ops;
#endif
	default: return NULL;
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

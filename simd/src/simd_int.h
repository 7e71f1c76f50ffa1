#ifndef DIME_SIMD_SIMD_INT_H
#define DIME_SIMD_SIMD_INT_H
#include "dime/simd.h"

extern const struct dime_simd_ops dime_simd_base_ops;
#if defined(DIME_HAVE_AVX2)
extern const struct dime_simd_ops dime_simd_avx2_ops;
extern const struct dime_simd_ops dime_simd_vaes_ops;
#endif

void dime_simd_xor_base(uint8_t *dst, const uint8_t *a, const uint8_t *b, size_t n);
#endif

/* AVX2 kernels; compiled with -mavx2 and reached only through the dispatch table. */

#include <immintrin.h>

#include "simd_int.h"

static void
simd_xor_avx2(uint8_t *dst, const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t i = 0;

	for (; n - i >= 32; i += 32) {
		__m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(a + i));
		__m256i y = _mm256_loadu_si256((const __m256i *)(const void *)(b + i));

		_mm256_storeu_si256((__m256i *)(void *)(dst + i), _mm256_xor_si256(x, y));
	}
	dime_simd_xor_base(dst + i, a + i, b + i, n - i);
}

const struct dime_simd_ops dime_simd_avx2_ops = {
    .name = "avx2",
    .xor_bytes = simd_xor_avx2,
    .aes256cbc_encrypt_lanes = dime_simd_aes256cbc_avx2,
    .b64_encode_blocks = dime_simd_b64_encode_avx2,
    .b64_decode_blocks = dime_simd_b64_decode_avx2,
    .ed25519_verify_batch = dime_simd_ed25519_verify_batch_avx2,
};

/* The vaes table differs from avx2 only where a kernel has a VAES/AVX-512 form. */
const struct dime_simd_ops dime_simd_vaes_ops = {
    .name = "vaes",
    .xor_bytes = simd_xor_avx2,
    .aes256cbc_encrypt_lanes = dime_simd_aes256cbc_vaes,
    .b64_encode_blocks = dime_simd_b64_encode_avx2,
    .b64_decode_blocks = dime_simd_b64_decode_avx2,
    .ed25519_verify_batch = dime_simd_ed25519_verify_batch_avx2,
};

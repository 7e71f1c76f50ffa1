/* Portable kernels: the fallback table and the tail of every vector kernel. */

#include "simd_int.h"

void
dime_simd_xor_base(uint8_t *dst, const uint8_t *a, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = (uint8_t)(a[i] ^ b[i]);
}

const struct dime_simd_ops dime_simd_base_ops = {
    .name = "base",
    .xor_bytes = dime_simd_xor_base,
    .aes256cbc_encrypt_lanes = dime_simd_aes256cbc_base,
    .b64_encode_blocks = dime_simd_b64_encode_base,
    .b64_decode_blocks = dime_simd_b64_decode_base,
    .ed25519_verify_batch = dime_simd_ed25519_verify_batch_base,
};

#ifndef DIME_SIMD_SIMD_INT_H
#define DIME_SIMD_SIMD_INT_H
#include "dime/simd.h"

extern const struct dime_simd_ops dime_simd_base_ops;
#if defined(DIME_HAVE_AVX2)
extern const struct dime_simd_ops dime_simd_avx2_ops;
extern const struct dime_simd_ops dime_simd_vaes_ops;
#endif

void dime_simd_xor_base(uint8_t *dst, const uint8_t *a, const uint8_t *b, size_t n);

/* AES-256-CBC multi-buffer kernels (aes_base.c, aes_avx2.c, aes_vaes.c). */
void dime_simd_aes256cbc_base(const struct dime_aes256cbc_lane *l, size_t n);
#if defined(DIME_HAVE_AVX2)
void dime_simd_aes256cbc_avx2(const struct dime_aes256cbc_lane *l, size_t n);
void dime_simd_aes256cbc_vaes(const struct dime_aes256cbc_lane *l, size_t n);
#endif
/* Base64 block kernels (b64_base.c, b64_avx2.c); contracts in dime/simd.h. */
void dime_simd_b64_encode_base(char *out, const uint8_t *in, size_t n_groups);
size_t dime_simd_b64_decode_base(uint8_t *out, const char *in, size_t n_quads);
#if defined(DIME_HAVE_AVX2)
void dime_simd_b64_encode_avx2(char *out, const uint8_t *in, size_t n_groups);
size_t dime_simd_b64_decode_avx2(uint8_t *out, const char *in, size_t n_quads);
#endif
/* Batched Ed25519 verification (ed25519_base.c): radix-2^51 arithmetic; the avx2 form runs
 * the field exponentiations four at a time (ed25519_avx2.c). */
int dime_simd_ed25519_verify_batch_base(const struct dime_ed25519_item *it, size_t n, uint8_t *ok);
#if defined(DIME_HAVE_AVX2)
int dime_simd_ed25519_verify_batch_avx2(const struct dime_ed25519_item *it, size_t n, uint8_t *ok);
#endif
/* Wipe len bytes of key material so the compiler cannot drop the stores. */
void dime_simd_wipe(void *p, size_t len);
#endif

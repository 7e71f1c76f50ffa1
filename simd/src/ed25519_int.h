#ifndef DIME_SIMD_ED25519_INT_H
#define DIME_SIMD_ED25519_INT_H
/* Shared by the batched Ed25519 kernel (ed25519_base.c) and its vector exponentiations
 * (ed25519_avx2.c): field elements of GF(2^255 - 19) as five 51-bit limbs. */

#include <stddef.h>
#include <stdint.h>

typedef uint64_t dime_fe51[5];

enum dime_ed_pow {
	DIME_ED_POW_22523,   /* z^((p - 5)/8): square roots */
	DIME_ED_POW_QUARTER, /* z^((p - 1)/4): the quartic residue symbol */
};

/* x[i] = x[i]^e for i < n, in place. Limbs may be up to 2^54 in, are below 2^52 out. */
typedef void (*dime_ed_pow_many_fn)(dime_fe51 *x, size_t n, enum dime_ed_pow e);

#if defined(DIME_HAVE_AVX2)
/* Four exponentiations at once in AVX2 lanes (radix 2^25.5); the last n % 4 may go scalar. */
void dime_ed_pow_many_avx2(dime_fe51 *x, size_t n, enum dime_ed_pow e);
#endif
/* One at a time, scalar (ed25519_base.c); the avx2 form uses it for a lone remainder. */
void dime_ed_pow_many_base(dime_fe51 *x, size_t n, enum dime_ed_pow e);
#endif

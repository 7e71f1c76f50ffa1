/* Field exponentiations for the batched Ed25519 kernel, four at a time: each lane of a 256-bit
 * register holds one element's limb, ten limbs of 26 and 25 bits (radix 2^25.5), multiplied
 * with vpmuludq (32 x 32 -> 64 bits). An exponentiation is 254 squarings in a row, so the
 * lanes are four independent elements of one batch, never parts of one element. */

#include <immintrin.h>
#include <string.h>

#include "ed25519_int.h"

typedef struct {
	__m256i l[10];
} fe4;

#define M26 ((UINT64_C(1) << 26) - 1)
#define M25 ((UINT64_C(1) << 25) - 1)

static inline __attribute__((always_inline)) __m256i
mul19(__m256i c)
{
	/* 19 c for c of any 64-bit size: c + 2c + 16c */
	return _mm256_add_epi64(_mm256_add_epi64(c, _mm256_slli_epi64(c, 1)),
				_mm256_slli_epi64(c, 4));
}

/* h (64-bit sums, each below 2^63) to limbs below 2^26 / 2^25 (+ a little on limb 1) */
static inline __attribute__((always_inline)) void
fe4_carry(fe4 *o, __m256i h[10])
{
	const __m256i m26 = _mm256_set1_epi64x((long long)M26);
	const __m256i m25 = _mm256_set1_epi64x((long long)M25);
	__m256i c;

#pragma GCC unroll 10
	for (int i = 0; i < 9; i++) {
		int s = (i & 1) ? 25 : 26;

		c = _mm256_srli_epi64(h[i], s);
		h[i + 1] = _mm256_add_epi64(h[i + 1], c);
		h[i] = _mm256_and_si256(h[i], (i & 1) ? m25 : m26);
	}
	c = _mm256_srli_epi64(h[9], 25);
	h[9] = _mm256_and_si256(h[9], m25);
	h[0] = _mm256_add_epi64(h[0], mul19(c));
	c = _mm256_srli_epi64(h[0], 26);
	h[0] = _mm256_and_si256(h[0], m26);
	h[1] = _mm256_add_epi64(h[1], c);
	for (int i = 0; i < 10; i++)
		o->l[i] = h[i];
}

/* Limbs in: below 2^27. Products: a left factor up to 4 f_i (2^29) times 19 g_j (2^31.3),
 * at most ten per output limb: below 2^64. */
static void
fe4_mul(fe4 *o, const fe4 *f, const fe4 *g)
{
	__m256i f2[10], g19[10], h[10];
	const __m256i c19 = _mm256_set1_epi64x(19);

	for (int i = 0; i < 10; i++) {
		f2[i] = (i & 1) ? _mm256_add_epi64(f->l[i], f->l[i]) : f->l[i];
		g19[i] = _mm256_mul_epu32(g->l[i], c19);
		h[i] = _mm256_setzero_si256();
	}
#pragma GCC unroll 10
	for (int i = 0; i < 10; i++) {
#pragma GCC unroll 10
		for (int j = 0; j < 10; j++) {
			/* 2^(off i + off j) = 2^off(i+j) times 2 when both are odd, times 19 past
			 * 2^255 */
			__m256i a = (i & 1) && (j & 1) ? f2[i] : f->l[i];
			__m256i b = i + j >= 10 ? g19[j] : g->l[j];

			h[(i + j) % 10] = _mm256_add_epi64(h[(i + j) % 10], _mm256_mul_epu32(a, b));
		}
	}
	fe4_carry(o, h);
}

static void
fe4_sq(fe4 *o, const fe4 *f)
{
	__m256i f2[10], f4[10], f19[10], h[10];
	const __m256i c19 = _mm256_set1_epi64x(19);

	for (int i = 0; i < 10; i++) {
		f2[i] = _mm256_add_epi64(f->l[i], f->l[i]);
		f4[i] = _mm256_add_epi64(f2[i], f2[i]);
		f19[i] = _mm256_mul_epu32(f->l[i], c19);
		h[i] = _mm256_setzero_si256();
	}
#pragma GCC unroll 10
	for (int i = 0; i < 10; i++) {
#pragma GCC unroll 10
		for (int j = i; j < 10; j++) {
			int m = (i == j ? 1 : 2) * ((i & 1) && (j & 1) ? 2 : 1);
			__m256i a = m == 1 ? f->l[i] : m == 2 ? f2[i] : f4[i];
			__m256i b = i + j >= 10 ? f19[j] : f->l[j];

			h[(i + j) % 10] = _mm256_add_epi64(h[(i + j) % 10], _mm256_mul_epu32(a, b));
		}
	}
	fe4_carry(o, h);
}

static void
fe4_sqn(fe4 *o, const fe4 *f, int n)
{
	fe4_sq(o, f);
	while (--n > 0)
		fe4_sq(o, o);
}

/* z^(2^250 - 1) and z^11, as in ed25519_base.c */
static void
fe4_pow250(fe4 *t250, fe4 *z11, const fe4 *z)
{
	fe4 z2, z9, t0, t1;

	fe4_sq(&z2, z);
	fe4_sqn(&t0, &z2, 2);
	fe4_mul(&z9, &t0, z);
	fe4_mul(z11, &z9, &z2);
	fe4_sq(&t0, z11);
	fe4_mul(&t0, &t0, &z9);
	fe4_sqn(&t1, &t0, 5);
	fe4_mul(&t0, &t1, &t0);
	fe4_sqn(&t1, &t0, 10);
	fe4_mul(&t1, &t1, &t0);
	fe4_sqn(&z2, &t1, 20);
	fe4_mul(&t1, &z2, &t1);
	fe4_sqn(&t1, &t1, 10);
	fe4_mul(&t0, &t1, &t0);
	fe4_sqn(&t1, &t0, 50);
	fe4_mul(&t1, &t1, &t0);
	fe4_sqn(&z2, &t1, 100);
	fe4_mul(&t1, &z2, &t1);
	fe4_sqn(&t1, &t1, 50);
	fe4_mul(t250, &t1, &t0);
}

static void
fe4_pow(fe4 *o, const fe4 *z, enum dime_ed_pow e)
{
	fe4 t, z11, z3;

	fe4_pow250(&t, &z11, z);
	if (e == DIME_ED_POW_22523) {
		fe4_sqn(&t, &t, 2);
		fe4_mul(o, &t, z);
	} else {
		fe4_sqn(&t, &t, 3);
		fe4_sq(&z3, z);
		fe4_mul(&z3, &z3, z);
		fe4_mul(o, &t, &z3);
	}
}

/* 51-bit limbs (up to 2^54) carried, then split: limb k of the 51-bit form sits exactly at
 * limbs 2k (26 bits) and 2k + 1 (25 bits) of the 25.5 form. */
static void
fe4_load(fe4 *o, dime_fe51 *in, size_t n)
{
	uint64_t lane[10][4];

	for (size_t j = 0; j < 4; j++) {
		uint64_t h[5] = { 1, 0, 0, 0, 0 }; /* unused lanes compute 1^e */

		if (j < n)
			memcpy(h, in[j], sizeof(h));
		for (int r = 0; r < 2; r++) {
			for (int k = 0; k < 4; k++) {
				h[k + 1] += h[k] >> 51;
				h[k] &= (UINT64_C(1) << 51) - 1;
			}
			h[0] += 19 * (h[4] >> 51);
			h[4] &= (UINT64_C(1) << 51) - 1;
		}
		for (int k = 0; k < 5; k++) {
			lane[2 * k][j] = h[k] & M26;
			lane[2 * k + 1][j] = h[k] >> 26;
		}
	}
	for (int i = 0; i < 10; i++)
		o->l[i] = _mm256_set_epi64x((long long)lane[i][3], (long long)lane[i][2],
					    (long long)lane[i][1], (long long)lane[i][0]);
}

static void
fe4_store(dime_fe51 *out, size_t n, const fe4 *f)
{
	uint64_t lane[10][4];

	for (int i = 0; i < 10; i++)
		_mm256_storeu_si256((__m256i *)lane[i], f->l[i]);
	for (size_t j = 0; j < n; j++)
		for (int k = 0; k < 5; k++)
			out[j][k] = lane[2 * k][j] + (lane[2 * k + 1][j] << 26);
}

void
dime_ed_pow_many_avx2(dime_fe51 *x, size_t n, enum dime_ed_pow e)
{
	size_t i = 0;

	/* a lone last element is cheaper alone than in a vector of four */
	while (n - i >= 2) {
		size_t k = n - i < 4 ? n - i : 4;
		fe4 v, r;

		fe4_load(&v, x + i, k);
		fe4_pow(&r, &v, e);
		fe4_store(x + i, k, &r);
		i += k;
	}
	if (i < n)
		dime_ed_pow_many_base(x + i, n - i, e);
}

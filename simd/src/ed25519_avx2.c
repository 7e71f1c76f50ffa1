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

/* Two vectors (eight elements) go through every operation together: one squaring is a chain
 * of dependent steps, and two independent chains fill the pipeline that one leaves idle. */
#define W 2

#define M26 ((UINT64_C(1) << 26) - 1)
#define M25 ((UINT64_C(1) << 25) - 1)

static inline __attribute__((always_inline)) __m256i
mul19(__m256i c)
{
	/* 19 c for c of any 64-bit size: c + 2c + 16c */
	return _mm256_add_epi64(_mm256_add_epi64(c, _mm256_slli_epi64(c, 1)),
				_mm256_slli_epi64(c, 4));
}

static inline __attribute__((always_inline)) void
carry_step(__m256i h[10], int i)
{
	const __m256i m26 = _mm256_set1_epi64x((long long)M26);
	const __m256i m25 = _mm256_set1_epi64x((long long)M25);
	__m256i c = _mm256_srli_epi64(h[i], (i & 1) ? 25 : 26);

	h[i] = _mm256_and_si256(h[i], (i & 1) ? m25 : m26);
	if (i == 9)
		h[0] = _mm256_add_epi64(h[0], mul19(c));
	else
		h[i + 1] = _mm256_add_epi64(h[i + 1], c);
}

/* h (64-bit sums, each below 2^63) to limbs below 2^26 / 2^25 (a little more on limbs 1 and
 * 5), in two interleaved carry chains (0..4 and 5..9) as ref10 does, for a shorter path. */
static inline __attribute__((always_inline)) void
fe4_carry(fe4 o[W], __m256i h[W][10])
{
	static const int order[12] = {0, 5, 1, 6, 2, 7, 3, 8, 4, 9, 0, 5};

#pragma GCC unroll 12
	for (int s = 0; s < 12; s++)
#pragma GCC unroll 2
		for (int q = 0; q < W; q++)
			carry_step(h[q], order[s]);
	for (int q = 0; q < W; q++)
		for (int i = 0; i < 10; i++)
			o[q].l[i] = h[q][i];
}

/* Limbs in: below 2^27. Products: a left factor up to 4 f_i (2^29) times 19 g_j (2^31.3),
 * at most ten per output limb: below 2^64. */
static void
fe4_mul(fe4 o[W], const fe4 f[W], const fe4 g[W])
{
	__m256i f2[W][10], g19[W][10], h[W][10];
	const __m256i c19 = _mm256_set1_epi64x(19);

	for (int q = 0; q < W; q++)
		for (int i = 0; i < 10; i++) {
			f2[q][i] = (i & 1) ? _mm256_add_epi64(f[q].l[i], f[q].l[i]) : f[q].l[i];
			g19[q][i] = _mm256_mul_epu32(g[q].l[i], c19);
			h[q][i] = _mm256_setzero_si256();
		}
#pragma GCC unroll 10
	for (int i = 0; i < 10; i++) {
#pragma GCC unroll 10
		for (int j = 0; j < 10; j++) {
#pragma GCC unroll 2
			for (int q = 0; q < W; q++) {
				/* 2^(off i + off j) = 2^off(i+j), times 2 when both are odd, times
				 * 19 past 2^255 */
				__m256i a = (i & 1) && (j & 1) ? f2[q][i] : f[q].l[i];
				__m256i b = i + j >= 10 ? g19[q][j] : g[q].l[j];
				int k = (i + j) % 10;

				h[q][k] = _mm256_add_epi64(h[q][k], _mm256_mul_epu32(a, b));
			}
		}
	}
	fe4_carry(o, h);
}

static void
fe4_sq(fe4 o[W], const fe4 f[W])
{
	__m256i f2[W][10], f19[W][10], h[W][10];
	const __m256i c19 = _mm256_set1_epi64x(19);

	for (int q = 0; q < W; q++)
		for (int i = 0; i < 10; i++) {
			f2[q][i] = _mm256_add_epi64(f[q].l[i], f[q].l[i]);
			f19[q][i] = _mm256_mul_epu32(f[q].l[i], c19);
			h[q][i] = _mm256_setzero_si256();
		}
#pragma GCC unroll 10
	for (int i = 0; i < 10; i++) {
#pragma GCC unroll 10
		for (int j = i; j < 10; j++) {
#pragma GCC unroll 2
			for (int q = 0; q < W; q++) {
				/* the pair (i, j) twice when i < j, and twice more when both are
				 * odd */
				int m = (i == j ? 1 : 2) * ((i & 1) && (j & 1) ? 2 : 1);
				__m256i a = m == 1 ? f[q].l[i] : f2[q][i];
				__m256i b = i + j >= 10 ? f19[q][j] : f[q].l[j];
				int k = (i + j) % 10;

				if (m == 4)
					b = _mm256_add_epi64(b, b);
				h[q][k] = _mm256_add_epi64(h[q][k], _mm256_mul_epu32(a, b));
			}
		}
	}
	fe4_carry(o, h);
}

static void
fe4_sqn(fe4 o[W], const fe4 f[W], int n)
{
	fe4_sq(o, f);
	while (--n > 0)
		fe4_sq(o, o);
}

/* z^(2^250 - 1) and z^11, as in ed25519_base.c */
static void
fe4_pow250(fe4 t250[W], fe4 z11[W], const fe4 z[W])
{
	fe4 z2[W], z9[W], t0[W], t1[W];

	fe4_sq(z2, z);
	fe4_sqn(t0, z2, 2);
	fe4_mul(z9, t0, z);
	fe4_mul(z11, z9, z2);
	fe4_sq(t0, z11);
	fe4_mul(t0, t0, z9);
	fe4_sqn(t1, t0, 5);
	fe4_mul(t0, t1, t0);
	fe4_sqn(t1, t0, 10);
	fe4_mul(t1, t1, t0);
	fe4_sqn(z2, t1, 20);
	fe4_mul(t1, z2, t1);
	fe4_sqn(t1, t1, 10);
	fe4_mul(t0, t1, t0);
	fe4_sqn(t1, t0, 50);
	fe4_mul(t1, t1, t0);
	fe4_sqn(z2, t1, 100);
	fe4_mul(t1, z2, t1);
	fe4_sqn(t1, t1, 50);
	fe4_mul(t250, t1, t0);
}

static void
fe4_pow(fe4 o[W], const fe4 z[W], enum dime_ed_pow e)
{
	fe4 t[W], z11[W], z3[W];

	fe4_pow250(t, z11, z);
	if (e == DIME_ED_POW_22523) {
		fe4_sqn(t, t, 2);
		fe4_mul(o, t, z);
	} else {
		fe4_sqn(t, t, 3);
		fe4_sq(z3, z);
		fe4_mul(z3, z3, z);
		fe4_mul(o, t, z3);
	}
}

/* 51-bit limbs (up to 2^54) carried, then split: limb k of the 51-bit form sits exactly at
 * limbs 2k (26 bits) and 2k + 1 (25 bits) of the 25.5 form. */
static void
fe4_load(fe4 *o, dime_fe51 *in, size_t n)
{
	uint64_t lane[10][4];

	for (size_t j = 0; j < 4; j++) {
		uint64_t h[5] = {1, 0, 0, 0, 0}; /* unused lanes compute 1^e */

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
		_mm256_storeu_si256((__m256i *)(void *)lane[i], f->l[i]);
	for (size_t j = 0; j < n; j++)
		for (int k = 0; k < 5; k++)
			out[j][k] = lane[2 * k][j] + (lane[2 * k + 1][j] << 26);
}

void
dime_ed_pow_many_avx2(dime_fe51 *x, size_t n, enum dime_ed_pow e)
{
	size_t i = 0;

	/* eight at a time; a lone last element is cheaper alone */
	while (n - i >= 2) {
		size_t k = n - i < 4 * W ? n - i : 4 * W;
		fe4 v[W], r[W];

		for (int q = 0; q < W; q++) {
			size_t lo = 4 * (size_t)q, cnt = k > lo ? k - lo : 0;

			fe4_load(&v[q], x + i + (cnt ? lo : 0), cnt < 4 ? cnt : 4);
		}
		fe4_pow(r, v, e);
		for (int q = 0; q < W; q++) {
			size_t lo = 4 * (size_t)q, cnt = k > lo ? k - lo : 0;

			if (cnt > 0)
				fe4_store(x + i + lo, cnt < 4 ? cnt : 4, &r[q]);
		}
		i += k;
	}
	if (i < n)
		dime_ed_pow_many_base(x + i, n - i, e);
}

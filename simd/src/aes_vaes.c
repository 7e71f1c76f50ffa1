/* VAES multi-buffer AES-256-CBC (built with -mvaes -mavx512f -mavx512vl -maes -mavx2; reached
 * only through the dispatch table). 16 streams: 4 zmm registers of 4 streams each, one block
 * of each stream per 128-bit lane, gathered from and scattered to the 16 streams per block.
 * Fewer than 9 active streams fall back to the AES-NI widths of aes_avx2.c. */

#include "aes_mb_int.h"

static inline __m512i
aes_vaes_gather(const uint8_t *const *p)
{
	__m512i z = _mm512_castsi128_si512(aesmb_ld(p[0]));

	z = _mm512_inserti32x4(z, aesmb_ld(p[1]), 1);
	z = _mm512_inserti32x4(z, aesmb_ld(p[2]), 2);
	return _mm512_inserti32x4(z, aesmb_ld(p[3]), 3);
}

static inline void
aes_vaes_scatter(uint8_t *const *p, __m512i z)
{
	aesmb_st(p[0], _mm512_castsi512_si128(z));
	aesmb_st(p[1], _mm512_extracti32x4_epi32(z, 1));
	aesmb_st(p[2], _mm512_extracti32x4_epi32(z, 2));
	aesmb_st(p[3], _mm512_extracti32x4_epi32(z, 3));
}

static inline __m512i
aes_vaes_rk(const struct aesmb *m, unsigned r, unsigned q)
{
	return _mm512_load_si512((const void *)m->rk[r][4 * q]);
}

/* k blocks in slots 0..4Q-1: Q registers, 4 streams each. */
static inline __attribute__((always_inline)) void
aes_vaes_run_zmm(struct aesmb *m, size_t k, const unsigned Q)
{
	__m512i x[4];
	const uint8_t *in[16];
	uint8_t *out[16];

#pragma GCC unroll 16
	for (unsigned j = 0; j < 4 * Q; j++) {
		in[j] = m->in[j];
		out[j] = m->out[j];
	}
#pragma GCC unroll 16
	for (unsigned q = 0; q < Q; q++)
		x[q] = _mm512_load_si512((const void *)m->chain[4 * q]);
	for (size_t b = 0; b < k; b++) {
#pragma GCC unroll 16
		for (unsigned q = 0; q < Q; q++)
			x[q] = _mm512_ternarylogic_epi64(x[q], aes_vaes_gather(in + 4 * q),
							 aes_vaes_rk(m, 0, q), 0x96);
#pragma GCC unroll 16
		for (unsigned r = 1; r < 14; r++)
#pragma GCC unroll 16
			for (unsigned q = 0; q < Q; q++)
				x[q] = _mm512_aesenc_epi128(x[q], aes_vaes_rk(m, r, q));
#pragma GCC unroll 16
		for (unsigned q = 0; q < Q; q++) {
			x[q] = _mm512_aesenclast_epi128(x[q], aes_vaes_rk(m, 14, q));
			aes_vaes_scatter(out + 4 * q, x[q]);
		}
#pragma GCC unroll 16
		for (unsigned j = 0; j < 4 * Q; j++) {
			in[j] += m->step[j];
			out[j] += m->step[j];
		}
	}
#pragma GCC unroll 16
	for (unsigned q = 0; q < Q; q++)
		_mm512_store_si512((void *)m->chain[4 * q], x[q]);
#pragma GCC unroll 16
	for (unsigned j = 0; j < 4 * Q; j++) {
		m->in[j] = in[j];
		m->out[j] = out[j];
	}
}

static void
aes_vaes_run(struct aesmb *m, size_t k)
{
	if (m->active > 8) {
		aesmb_idle(m, 16);
		aes_vaes_run_zmm(m, k, 4);
	} else if (m->active > 4) {
		aesmb_idle(m, 8);
		aes_vaes_run_zmm(m, k, 2);
	} else if (m->active > 2) {
		aesmb_idle(m, 4);
		aesmb_run_xmm(m, k, 4);
	} else if (m->active == 2) {
		aesmb_run_xmm(m, k, 2);
	} else {
		aesmb_run_xmm(m, k, 1);
	}
}

void
dime_simd_aes256cbc_vaes(const struct dime_aes256cbc_lane *l, size_t n)
{
	struct aesmb m;

	aesmb_drive(&m, l, n, 16, aes_vaes_run);
}

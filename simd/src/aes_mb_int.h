#ifndef DIME_SIMD_AES_MB_INT_H
#define DIME_SIMD_AES_MB_INT_H
/* The AES-NI multi-buffer scheduler shared by aes_avx2.c and aes_vaes.c; included only by
 * files built with -maes (static inline: each includer compiles it with its own flags).
 *
 * Up to AESMB_MAX streams sit in slots. A run encrypts k blocks in every slot of the chosen
 * width, where k is the fewest blocks any active slot has left, so no slot overruns its
 * stream. A slot whose stream ends takes the next stream (key expanded on entry); when none
 * is left, the last active slot moves into the gap, so active slots stay 0..active-1. Slots of
 * the width beyond the active ones are idle: they encrypt into a scratch block. Lengths and
 * counts are public; nothing branches on or indexes by key or data. */

#include <immintrin.h>
#include <string.h>

#include "simd_int.h"

#define AESMB_MAX 16

struct aesmb {
	_Alignas(64) uint8_t rk[15][AESMB_MAX][16]; /* round r of slot j: a zmm loads 4 slots */
	_Alignas(64) uint8_t chain[AESMB_MAX][16];  /* the previous ciphertext (first: the IV) */
	_Alignas(16) uint8_t scratch[16];	    /* in and out of idle slots */
	const uint8_t *in[AESMB_MAX];
	uint8_t *out[AESMB_MAX];
	size_t left[AESMB_MAX]; /* blocks */
	size_t step[AESMB_MAX]; /* 16, or 0 when idle */
	const struct dime_aes256cbc_lane *l;
	size_t n, next;
	unsigned active;
};

static inline __m128i
aesmb_ld(const uint8_t *p)
{
	return _mm_loadu_si128((const __m128i *)(const void *)p);
}

static inline void
aesmb_st(uint8_t *p, __m128i v)
{
	_mm_storeu_si128((__m128i *)(void *)p, v);
}

/* Intel's AES-NI white paper form of the AES-256 key expansion (FIPS-197 §5.2). */
static inline __m128i
aesmb_mix(__m128i a)
{
	a = _mm_xor_si128(a, _mm_slli_si128(a, 4));
	a = _mm_xor_si128(a, _mm_slli_si128(a, 4));
	return _mm_xor_si128(a, _mm_slli_si128(a, 4));
}

#define AESMB_EXP_A(i, rcon)                                                                       \
	do {                                                                                       \
		t1 = _mm_xor_si128(aesmb_mix(t1),                                                  \
				   _mm_shuffle_epi32(_mm_aeskeygenassist_si128(t3, rcon), 0xff));  \
		aesmb_st(m->rk[i][j], t1);                                                         \
	} while (0)
#define AESMB_EXP_B(i)                                                                             \
	do {                                                                                       \
		t3 = _mm_xor_si128(aesmb_mix(t3),                                                  \
				   _mm_shuffle_epi32(_mm_aeskeygenassist_si128(t1, 0), 0xaa));     \
		aesmb_st(m->rk[i][j], t3);                                                         \
	} while (0)

static inline void
aesmb_expand(struct aesmb *m, unsigned j, const uint8_t key[32])
{
	__m128i t1 = aesmb_ld(key), t3 = aesmb_ld(key + 16);

	aesmb_st(m->rk[0][j], t1);
	aesmb_st(m->rk[1][j], t3);
	AESMB_EXP_A(2, 0x01);
	AESMB_EXP_B(3);
	AESMB_EXP_A(4, 0x02);
	AESMB_EXP_B(5);
	AESMB_EXP_A(6, 0x04);
	AESMB_EXP_B(7);
	AESMB_EXP_A(8, 0x08);
	AESMB_EXP_B(9);
	AESMB_EXP_A(10, 0x10);
	AESMB_EXP_B(11);
	AESMB_EXP_A(12, 0x20);
	AESMB_EXP_B(13);
	AESMB_EXP_A(14, 0x40);
}

/* Put the next stream with at least one block into slot j. Returns: 1, or 0 when none is left. */
static inline int
aesmb_take(struct aesmb *m, unsigned j)
{
	const struct dime_aes256cbc_lane *x;

	while (m->next < m->n && m->l[m->next].len < 16)
		m->next++;
	if (m->next == m->n)
		return 0;
	x = &m->l[m->next++];
	aesmb_expand(m, j, x->key);
	memcpy(m->chain[j], x->iv, 16);
	m->in[j] = x->in;
	m->out[j] = x->out;
	m->left[j] = x->len / 16;
	m->step[j] = 16;
	return 1;
}

static inline void
aesmb_move(struct aesmb *m, unsigned dst, unsigned src)
{
	for (unsigned r = 0; r < 15; r++)
		memcpy(m->rk[r][dst], m->rk[r][src], 16);
	memcpy(m->chain[dst], m->chain[src], 16);
	m->in[dst] = m->in[src];
	m->out[dst] = m->out[src];
	m->left[dst] = m->left[src];
	m->step[dst] = m->step[src];
}

/* Make slots active..w-1 idle for a run of width w. */
static inline void
aesmb_idle(struct aesmb *m, unsigned w)
{
	for (unsigned j = m->active; j < w; j++) {
		m->in[j] = m->scratch;
		m->out[j] = m->scratch;
		m->step[j] = 0;
	}
}

/* k blocks in slots 0..W-1, W lanes interleaved round by round so W aesenc are in flight.
 * Inputs are all loaded before any output is stored (idle slots share the scratch block). */
static inline __attribute__((always_inline)) void
aesmb_run_xmm(struct aesmb *m, size_t k, const unsigned W)
{
	__m128i x[8];
	const uint8_t *in[8];
	uint8_t *out[8];

#pragma GCC unroll 16
	for (unsigned j = 0; j < W; j++) {
		x[j] = _mm_load_si128((const __m128i *)(const void *)m->chain[j]);
		in[j] = m->in[j];
		out[j] = m->out[j];
	}
	for (size_t b = 0; b < k; b++) {
#pragma GCC unroll 16
		for (unsigned j = 0; j < W; j++)
			x[j] = _mm_xor_si128(
			    _mm_xor_si128(x[j], aesmb_ld(in[j])),
			    _mm_load_si128((const __m128i *)(const void *)m->rk[0][j]));
#pragma GCC unroll 16
		for (unsigned r = 1; r < 14; r++)
#pragma GCC unroll 16
			for (unsigned j = 0; j < W; j++)
				x[j] = _mm_aesenc_si128(
				    x[j],
				    _mm_load_si128((const __m128i *)(const void *)m->rk[r][j]));
#pragma GCC unroll 16
		for (unsigned j = 0; j < W; j++) {
			x[j] = _mm_aesenclast_si128(
			    x[j], _mm_load_si128((const __m128i *)(const void *)m->rk[14][j]));
			aesmb_st(out[j], x[j]);
			in[j] += m->step[j];
			out[j] += m->step[j];
		}
	}
#pragma GCC unroll 16
	for (unsigned j = 0; j < W; j++) {
		_mm_store_si128((__m128i *)(void *)m->chain[j], x[j]);
		m->in[j] = in[j];
		m->out[j] = out[j];
	}
}

/* One run of k blocks over slots 0..active-1 (and any idle slots the width needs). */
typedef void (*aesmb_run_fn)(struct aesmb *m, size_t k);

/* Encrypt l[0..n) with at most maxw slots in use; run does one run at the width it picks. */
static inline void
aesmb_drive(struct aesmb *m, const struct dime_aes256cbc_lane *l, size_t n, unsigned maxw,
	    aesmb_run_fn run)
{
	memset(m, 0, sizeof(*m));
	m->l = l;
	m->n = n;
	while (m->active < maxw && aesmb_take(m, m->active))
		m->active++;
	while (m->active > 0) {
		size_t k = SIZE_MAX;

		for (unsigned j = 0; j < m->active; j++)
			k = m->left[j] < k ? m->left[j] : k;
		run(m, k);
		for (unsigned j = 0; j < m->active; j++)
			m->left[j] -= k;
		for (unsigned j = 0; j < m->active;) {
			if (m->left[j] > 0 || aesmb_take(m, j)) {
				j++;
				continue;
			}
			m->active--;
			if (j != m->active)
				aesmb_move(m, j, m->active); /* re-check j: it may be done too */
		}
	}
	dime_simd_wipe(m, sizeof(*m));
}

#endif

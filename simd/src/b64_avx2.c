/* AVX2 base64 block kernels (RFC 4648 §4, standard alphabet); compiled with -mavx2 and reached
 * only through the dispatch table. 24 bytes <-> 32 characters per step; the tail goes to the
 * portable kernels. Shuffles index only constant 16-entry tables by lanes of data, which is a
 * register permutation, not a memory lookup: the time does not depend on the data. */

#include <immintrin.h>
#include <string.h>

#include "simd_int.h"

/* Encode: each 32-bit lane gets bytes s1 s0 s2 s1 of its 3-byte group, so that the 16-bit
 * halves are s0:s1 and s1:s2 and the four 6-bit fields sit at bits 10, 4 (low half) and 6, 0
 * (high half). The high 128-bit lane is loaded from in + 8, hence its indexes are 4 higher. */
static inline __m256i
b64_enc_split(const uint8_t *in)
{
	const __m256i spread =
	    _mm256_setr_epi8(1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10, 5, 4, 6, 5, 8, 7, 9,
			     8, 11, 10, 12, 11, 14, 13, 15, 14);
	__m128i lo = _mm_loadu_si128((const __m128i *)(const void *)in);
	__m128i hi = _mm_loadu_si128((const __m128i *)(const void *)(in + 8));
	__m256i x = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
	__m256i ac, bd;

	x = _mm256_shuffle_epi8(x, spread);
	/* a (bits 10..15 of the low half) and c (bits 6..11 of the high half) to bytes 0 and 2 */
	ac = _mm256_mulhi_epu16(_mm256_and_si256(x, _mm256_set1_epi32(0x0fc0fc00)),
				_mm256_set1_epi32(0x04000040));
	/* b (bits 4..9 of the low half) and d (bits 0..5 of the high half) to bytes 1 and 3 */
	bd = _mm256_mullo_epi16(_mm256_and_si256(x, _mm256_set1_epi32(0x003f03f0)),
				_mm256_set1_epi32(0x01000010));
	return _mm256_or_si256(ac, bd);
}

/* 6-bit values to characters: a class 0..13 from a saturating subtract and one compare picks
 * the offset to add (26..51 -> 0, 52..61 -> 1..10, 62 -> 11, 63 -> 12, 0..25 -> 13). */
static inline __m256i
b64_enc_ascii(__m256i v)
{
	const __m256i offs =
	    _mm256_setr_epi8(71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 65, 0, 0, 71, -4,
			     -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 65, 0, 0);
	__m256i cls = _mm256_subs_epu8(v, _mm256_set1_epi8(51));
	__m256i below26 = _mm256_cmpgt_epi8(_mm256_set1_epi8(26), v);

	cls = _mm256_or_si256(cls, _mm256_and_si256(below26, _mm256_set1_epi8(13)));
	return _mm256_add_epi8(v, _mm256_shuffle_epi8(offs, cls));
}

void
dime_simd_b64_encode_avx2(char *out, const uint8_t *in, size_t n_groups)
{
	size_t g = 0;

	/* Each step reads exactly in[3g .. 3g + 24) and writes out[4g .. 4g + 32). */
	for (; n_groups - g >= 16; g += 16) {
		__m256i c0 = b64_enc_ascii(b64_enc_split(in + 3 * g));
		__m256i c1 = b64_enc_ascii(b64_enc_split(in + 3 * g + 24));

		_mm256_storeu_si256((__m256i *)(void *)(out + 4 * g), c0);
		_mm256_storeu_si256((__m256i *)(void *)(out + 4 * g + 32), c1);
	}
	for (; n_groups - g >= 8; g += 8)
		_mm256_storeu_si256((__m256i *)(void *)(out + 4 * g),
				    b64_enc_ascii(b64_enc_split(in + 3 * g)));
	dime_simd_b64_encode_base(out + 4 * g, in + 3 * g, n_groups - g);
}

/* Decode: validity from the two nibbles. Each low nibble has the set of high-nibble classes
 * for which it is NOT in the alphabet; each high nibble has its class bit:
 *   bit 0: 0x2_ (only '+' 0x2B and '/' 0x2F)   bit 1: 0x3_ (only '0'..'9')
 *   bit 2: 0x4_, 0x6_ (all but 0x_0)            bit 3: 0x5_, 0x7_ (only 0x_0..0x_A)
 *   bit 4: 0x0_, 0x1_, 0x8_..0xF_ (none)
 * A byte is bad when the two sets meet. The value is the byte plus an offset chosen by its
 * high nibble, with '/' moved to slot 1 since it shares 0x2_ with '+'. */
static inline __m256i
b64_dec_bad(__m256i x, __m256i hi)
{
	const __m256i lo_bad =
	    _mm256_setr_epi8(0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1a,
			     0x1b, 0x1b, 0x1b, 0x1a, 0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
			     0x11, 0x11, 0x13, 0x1a, 0x1b, 0x1b, 0x1b, 0x1a);
	const __m256i hi_cls =
	    _mm256_setr_epi8(0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10,
			     0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08,
			     0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10);
	__m256i lo = _mm256_and_si256(x, _mm256_set1_epi8(0x0f));

	return _mm256_and_si256(_mm256_shuffle_epi8(lo_bad, lo), _mm256_shuffle_epi8(hi_cls, hi));
}

/* 32 valid characters to 24 bytes in the low 24 bytes of the result. */
static inline __m256i
b64_dec_pack(__m256i x, __m256i hi)
{
	const __m256i offs =
	    _mm256_setr_epi8(0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 19, 4,
			     -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
	const __m256i order =
	    _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1, 2, 1, 0, 6, 5,
			     4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
	__m256i slash = _mm256_cmpeq_epi8(x, _mm256_set1_epi8('/'));
	__m256i v = _mm256_add_epi8(x, _mm256_shuffle_epi8(offs, _mm256_add_epi8(hi, slash)));

	/* a b c d -> (a << 6 | b), (c << 6 | d) -> a << 18 | b << 12 | c << 6 | d per lane */
	v = _mm256_maddubs_epi16(v, _mm256_set1_epi32(0x01400140));
	v = _mm256_madd_epi16(v, _mm256_set1_epi32(0x00011000));
	/* big-endian 3 bytes of each lane, 12 per 128-bit half, then the halves joined */
	v = _mm256_shuffle_epi8(v, order);
	return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7));
}

static inline void
b64_dec_store24(uint8_t *out, __m256i v)
{
	_mm_storeu_si128((__m128i *)(void *)out, _mm256_castsi256_si128(v));
	_mm_storel_epi64((__m128i *)(void *)(out + 16), _mm256_extracti128_si256(v, 1));
}

size_t
dime_simd_b64_decode_avx2(uint8_t *out, const char *in, size_t n_quads)
{
	size_t q = 0;

	/* Each step reads exactly in[4q .. 4q + 32) and writes at most out[3q .. 3q + 24). */
	for (; n_quads - q >= 8; q += 8) {
		__m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(in + 4 * q));
		__m256i hi = _mm256_and_si256(_mm256_srli_epi32(x, 4), _mm256_set1_epi8(0x0f));
		__m256i bad = b64_dec_bad(x, hi);
		uint32_t good =
		    (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(bad, _mm256_setzero_si256()));
		__m256i v = b64_dec_pack(x, hi);

		if (good != 0xffffffffu) {
			/* Keep the whole quads before the first bad byte; where that byte is
			 * is the input's shape (a line break, padding), not secret. */
			size_t whole = (size_t)__builtin_ctz(~good) / 4;
			uint8_t tmp[32];

			if (whole == 0)
				return q;
			_mm256_storeu_si256((__m256i *)(void *)tmp, v);
			memcpy(out + 3 * q, tmp, 3 * whole);
			dime_simd_wipe(tmp, sizeof(tmp));
			return q + whole;
		}
		b64_dec_store24(out + 3 * q, v);
	}
	return q + dime_simd_b64_decode_base(out + 3 * q, in + 4 * q, n_quads - q);
}

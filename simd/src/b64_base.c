/* Portable base64 block kernels (RFC 4648 §4, standard alphabet): the fallback table and the
 * tail of the vector kernels. Characters are mapped by arithmetic on masks, never through a
 * table indexed by data, because base64 also carries armored private keys. */

#include "simd_int.h"

/* The character of a 6-bit value v (0..63): 'A' + v, then shifted into a-z, 0-9, '+', '/'.
 * (k - v) >> 8 is all ones exactly when v > k, for v < 256. */
static inline unsigned
b64_enc_char(unsigned v)
{
	unsigned c = v + 65u;

	c += ((25u - v) >> 8) & 6u;  /* 26..51: 'a' - 26 */
	c -= ((51u - v) >> 8) & 75u; /* 52..61: '0' - 52 */
	c -= ((61u - v) >> 8) & 15u; /* 62: '+' */
	c += ((62u - v) >> 8) & 3u;  /* 63: '/' */
	return c & 0xffu;
}

/* All ones when lo <= c <= hi, else 0 (c < 256, 0 < lo <= hi < 255). */
static inline unsigned
b64_in_range(unsigned c, unsigned lo, unsigned hi)
{
	return 0u - (((lo - 1u - c) & (c - hi - 1u)) >> 31);
}

/* The 6-bit value of character c, or a value with bit 8 set when c is not in the alphabet. */
static inline unsigned
b64_dec_char(unsigned c)
{
	unsigned uc = b64_in_range(c, 65u, 90u), lc = b64_in_range(c, 97u, 122u);
	unsigned dg = b64_in_range(c, 48u, 57u), pl = b64_in_range(c, 43u, 43u);
	unsigned sl = b64_in_range(c, 47u, 47u);
	unsigned v =
	    (uc & (c - 65u)) | (lc & (c - 71u)) | (dg & (c + 4u)) | (pl & 62u) | (sl & 63u);

	return (v & 0x3fu) | (~(uc | lc | dg | pl | sl) & 0x100u);
}

void
dime_simd_b64_encode_base(char *out, const uint8_t *in, size_t n_groups)
{
	for (size_t g = 0; g < n_groups; g++) {
		const uint8_t *s = in + 3 * g;
		uint32_t w = (uint32_t)s[0] << 16 | (uint32_t)s[1] << 8 | s[2];
		char *o = out + 4 * g;

		o[0] = (char)b64_enc_char(w >> 18);
		o[1] = (char)b64_enc_char(w >> 12 & 0x3fu);
		o[2] = (char)b64_enc_char(w >> 6 & 0x3fu);
		o[3] = (char)b64_enc_char(w & 0x3fu);
	}
}

size_t
dime_simd_b64_decode_base(uint8_t *out, const char *in, size_t n_quads)
{
	const unsigned char *s = (const unsigned char *)in;

	for (size_t q = 0; q < n_quads; q++, s += 4) {
		unsigned a = b64_dec_char(s[0]), b = b64_dec_char(s[1]);
		unsigned c = b64_dec_char(s[2]), d = b64_dec_char(s[3]);
		uint32_t w = a << 18 | b << 12 | c << 6 | d;

		/* Validity is the shape of the input (where line breaks and padding are), not
		 * its secret content: stopping here only tells where the first non-alphabet
		 * quad starts. */
		if ((a | b | c | d) & 0x100u)
			return q;
		out[3 * q] = (uint8_t)(w >> 16);
		out[3 * q + 1] = (uint8_t)(w >> 8);
		out[3 * q + 2] = (uint8_t)w;
	}
	return n_quads;
}

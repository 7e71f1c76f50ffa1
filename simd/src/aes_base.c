/* Portable AES-256-CBC multi-buffer kernel: the fallback for CPUs without AES-NI. Constant
 * time: SubBytes is computed, never looked up (GF(2^8) inversion as x^254 by an addition chain
 * on 8 bytes at once in a uint64), so neither keys nor data index memory or steer branches. */

#include <string.h>

#include "simd_int.h"

#define AES_LO1 UINT64_C(0x0101010101010101)

void
dime_simd_wipe(void *p, size_t len)
{
	volatile uint8_t *v = (volatile uint8_t *)p;

	for (size_t i = 0; i < len; i++)
		v[i] = 0;
	__asm__ __volatile__("" : : "r"(p) : "memory");
}

/* Multiply each of the 8 bytes by x modulo x^8 + x^4 + x^3 + x + 1. */
static uint64_t
aes_xtime8(uint64_t a)
{
	return ((a & UINT64_C(0x7f7f7f7f7f7f7f7f)) << 1) ^ (((a >> 7) & AES_LO1) * 0x1b);
}

/* Byte-wise GF(2^8) products of a and b; every bit of b becomes a mask, never a branch. */
static uint64_t
aes_gmul8(uint64_t a, uint64_t b)
{
	uint64_t r = 0;

	for (unsigned i = 0; i < 8; i++) {
		r ^= a & (((b >> i) & AES_LO1) * 0xff);
		a = aes_xtime8(a);
	}
	return r;
}

/* Rotate each byte left by k (1..4). */
static uint64_t
aes_rotb8(uint64_t x, unsigned k)
{
	uint64_t hi = AES_LO1 * ((0xffu << k) & 0xffu), lo = AES_LO1 * ((1u << k) - 1u);

	return ((x << k) & hi) | ((x >> (8 - k)) & lo);
}

/* The S-box on 8 bytes (FIPS-197 §5.1.1): inverse (0 maps to 0), then the affine map. */
static uint64_t
aes_sub8(uint64_t x)
{
	uint64_t x2 = aes_gmul8(x, x), x3 = aes_gmul8(x2, x), x6 = aes_gmul8(x3, x3);
	uint64_t x12 = aes_gmul8(x6, x6), x15 = aes_gmul8(x12, x3), t = aes_gmul8(x15, x15);

	t = aes_gmul8(t, t);		      /* x^60 */
	t = aes_gmul8(t, t);		      /* x^120 */
	t = aes_gmul8(t, t);		      /* x^240 */
	t = aes_gmul8(aes_gmul8(t, x12), x2); /* x^254 = x^-1 */
	return t ^ aes_rotb8(t, 1) ^ aes_rotb8(t, 2) ^ aes_rotb8(t, 3) ^ aes_rotb8(t, 4) ^
	       (AES_LO1 * 0x63);
}

static uint64_t
aes_ld64(const uint8_t *p)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void
aes_st64(uint8_t *p, uint64_t v)
{
	for (unsigned i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Key expansion, FIPS-197 §5.2 with Nk = 8: 15 round keys, 240 bytes. */
static void
aes_expand(uint8_t rk[240], const uint8_t key[32])
{
	uint8_t rcon = 1;

	memcpy(rk, key, 32);
	for (unsigned i = 8; i < 60; i++) {
		uint8_t t[8] = {0};

		memcpy(t, rk + 4 * (i - 1), 4);
		if (i % 8 == 0) {
			uint8_t t0 = t[0];

			t[0] = t[1];
			t[1] = t[2];
			t[2] = t[3];
			t[3] = t0;
		}
		if (i % 4 == 0) {
			aes_st64(t, aes_sub8(aes_ld64(t)));
			if (i % 8 == 0) {
				t[0] ^= rcon;
				rcon = (uint8_t)(rcon << 1); /* 7 uses: never reaches 0x80 << 1 */
			}
		}
		for (unsigned j = 0; j < 4; j++)
			rk[4 * i + j] = (uint8_t)(rk[4 * (i - 8) + j] ^ t[j]);
		dime_simd_wipe(t, sizeof(t));
	}
}

/* MixColumns on one column held little-endian: byte r is row r, so rotating right by 8 brings
 * row r+1 to row r. out[r] = 2a[r] ^ 3a[r+1] ^ a[r+2] ^ a[r+3]. */
static uint32_t
aes_mix32(uint32_t c)
{
	uint32_t r1 = c >> 8 | c << 24, r2 = c >> 16 | c << 16, r3 = c >> 24 | c << 8;
	uint32_t a = c ^ r1;
	uint32_t x2 = ((a & 0x7f7f7f7fu) << 1) ^ (((a >> 7) & 0x01010101u) * 0x1bu);

	return x2 ^ r1 ^ r2 ^ r3;
}

static void
aes_encrypt_block(uint8_t st[16], const uint8_t rk[240])
{
	uint8_t t[16];

	for (unsigned i = 0; i < 16; i++)
		st[i] ^= rk[i];
	for (unsigned r = 1; r <= 14; r++) {
		aes_st64(t, aes_sub8(aes_ld64(st)));
		aes_st64(t + 8, aes_sub8(aes_ld64(st + 8)));
		/* ShiftRows: row r of column c comes from column c + r */
		for (unsigned c = 0; c < 4; c++)
			for (unsigned row = 0; row < 4; row++)
				st[row + 4 * c] = t[row + 4 * ((c + row) & 3)];
		if (r != 14)
			for (unsigned c = 0; c < 4; c++) {
				uint32_t v = (uint32_t)st[4 * c] | (uint32_t)st[4 * c + 1] << 8 |
					     (uint32_t)st[4 * c + 2] << 16 |
					     (uint32_t)st[4 * c + 3] << 24;

				v = aes_mix32(v);
				for (unsigned b = 0; b < 4; b++)
					st[4 * c + b] = (uint8_t)(v >> (8 * b));
			}
		for (unsigned i = 0; i < 16; i++)
			st[i] ^= rk[16 * r + i];
	}
	dime_simd_wipe(t, sizeof(t));
}

/* Lane after lane: without AES-NI there is no latency to hide between streams. */
void
dime_simd_aes256cbc_base(const struct dime_aes256cbc_lane *l, size_t n)
{
	uint8_t rk[240], st[16];

	for (size_t i = 0; i < n; i++) {
		size_t nb = l[i].len / 16;

		if (nb == 0)
			continue;
		aes_expand(rk, l[i].key);
		memcpy(st, l[i].iv, 16);
		for (size_t b = 0; b < nb; b++) {
			for (unsigned j = 0; j < 16; j++)
				st[j] ^= l[i].in[16 * b + j];
			aes_encrypt_block(st, rk);
			memcpy(l[i].out + 16 * b, st, 16);
		}
	}
	dime_simd_wipe(rk, sizeof(rk));
	dime_simd_wipe(st, sizeof(st));
}

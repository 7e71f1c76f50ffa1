/* Fuzz base64 through the SIMD kernels: at every level the CPU has, dime_b64_decode,
 * dime_b64_encode and an armor body built from the input give exactly what a plain scalar
 * reference of the contract gives (codes, lengths, every output byte, zeroed on failure), and
 * every table's block kernels match the reference block by block. data[0] picks the flags and
 * the room; the rest is the text (or, for encode, the bytes). */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dime/codec.h"
#include "dime/simd.h"
#include "fuzz_common.h"

static const char fz_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int
fz_value(char c)
{
	const char *p = c == 0 ? NULL : strchr(fz_alpha, c);

	return p == NULL ? -1 : (int)(p - fz_alpha);
}

static int
fz_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The contract of dime_b64_decode (dime/codec.h), one character at a time. */
static int
fz_ref_decode(uint8_t *out, size_t cap, size_t *out_len, const char *in, size_t n, int flags)
{
	size_t eq = 0, exact, o = 0;
	unsigned acc = 0, bits = 0;

	*out_len = 0;
	while (eq < n && eq < 2 && in[n - 1 - eq] == '=')
		eq++;
	if ((eq > 0 && !(flags & DIME_B64_PAD)) ||
	    (eq == 0 && n % 4 != 0 && !(flags & DIME_B64_NOPAD)) || n % 4 == 1 ||
	    (eq > 0 && n % 4 != 0))
		return DIME_E_MALFORMED;
	exact = n / 4 * 3 + (n % 4 == 2 ? 1u : n % 4 == 3 ? 2u : 0u) - eq;
	if (exact > cap)
		return DIME_E_NOSPACE;
	for (size_t i = 0; i < n - eq; i++) {
		int v = fz_value(in[i]);

		if (v < 0)
			goto bad;
		acc = (acc << 6 | (unsigned)v) & 0xffffu;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	if ((acc & ((1u << bits) - 1)) != 0)
		goto bad; /* trailing bits must be zero */
	FUZZ_CHECK(o == exact);
	*out_len = o;
	return DIME_OK;
bad:
	memset(out, 0, cap);
	return DIME_E_MALFORMED;
}

static void
fz_ref_encode(char *out, const uint8_t *in, size_t n, int pad)
{
	size_t o = 0, i = 0;

	for (; n - i >= 3; i += 3) {
		out[o++] = fz_alpha[in[i] >> 2];
		out[o++] = fz_alpha[(in[i] & 3) << 4 | in[i + 1] >> 4];
		out[o++] = fz_alpha[(in[i + 1] & 15) << 2 | in[i + 2] >> 6];
		out[o++] = fz_alpha[in[i + 2] & 63];
	}
	if (n - i == 1) {
		out[o++] = fz_alpha[in[i] >> 2];
		out[o++] = fz_alpha[(in[i] & 3) << 4];
	} else if (n - i == 2) {
		out[o++] = fz_alpha[in[i] >> 2];
		out[o++] = fz_alpha[(in[i] & 3) << 4 | in[i + 1] >> 4];
		out[o++] = fz_alpha[(in[i + 1] & 15) << 2];
	}
	while (pad && o % 4 != 0)
		out[o++] = '=';
	out[o] = 0;
}

/* The kernels of table t against the reference on s[0..n). */
static void
fz_kernels(const struct dime_simd_ops *t, const char *s, size_t n, const uint8_t *bin,
	   size_t bin_len)
{
	size_t quads = n / 4, want = 0, got;
	uint8_t *a = malloc(3 * quads + 1), *b = malloc(3 * quads + 1);
	char *e1 = malloc(4 * (bin_len / 3) + 1), *e2 = malloc(4 * (bin_len / 3) + 8);

	FUZZ_CHECK(a != NULL && b != NULL && e1 != NULL && e2 != NULL);
	while (want < quads && fz_value(s[4 * want]) >= 0 && fz_value(s[4 * want + 1]) >= 0 &&
	       fz_value(s[4 * want + 2]) >= 0 && fz_value(s[4 * want + 3]) >= 0)
		want++;
	memset(b, 0x5c, 3 * quads + 1);
	got = t->b64_decode_blocks(b, s, quads);
	FUZZ_CHECK(got == want);
	for (size_t i = 3 * got; i < 3 * quads + 1; i++)
		FUZZ_CHECK(b[i] == 0x5c); /* nothing written past the decoded quads */
	if (got > 0) {
		size_t len = 0;

		/* whole valid quads decode as dime_b64_decode does them */
		FUZZ_CHECK(fz_ref_decode(a, 3 * got, &len, s, 4 * got, DIME_B64_PAD) == DIME_OK);
		FUZZ_CHECK(len == 3 * got && memcmp(a, b, len) == 0);
	}
	t->b64_encode_blocks(e1, bin, bin_len / 3);
	fz_ref_encode(e2, bin, bin_len / 3 * 3, 0);
	FUZZ_CHECK(memcmp(e1, e2, 4 * (bin_len / 3)) == 0);
	free(a);
	free(b);
	free(e1);
	free(e2);
}

/* The input as an armor body: '-' becomes '+' so no END line appears; skipped when a line is
 * CRC-shaped (5 characters after trimming, '=' then not '='). */
static void
fz_armor(const char *s, size_t n)
{
	static const char head[] = "-----BEGIN F-----\n", tail[] = "\n-----END F-----\n";
	size_t al = sizeof(head) - 1 + n + sizeof(tail) - 1, k = 0, cap = n, l1 = 0, l2 = 0;
	char *a = malloc(al), *body, *strip = malloc(n + 1);
	uint8_t *o1 = malloc(cap + 1), *o2 = malloc(cap + 1);
	char label[DIME_ARMOR_LABEL_MAX];
	int r1, r2;

	FUZZ_CHECK(a != NULL && strip != NULL && o1 != NULL && o2 != NULL);
	memcpy(a, head, sizeof(head) - 1);
	body = a + sizeof(head) - 1;
	for (size_t i = 0; i < n; i++)
		body[i] = s[i] == '-' ? '+' : s[i];
	memcpy(body + n, tail, sizeof(tail) - 1);
	for (size_t ls = 0; ls <= n;) {
		size_t le = ls, x, y;

		while (le < n && body[le] != '\n')
			le++;
		x = ls, y = le;
		while (x < y && fz_space(body[x]))
			x++;
		while (y > x && fz_space(body[y - 1]))
			y--;
		if (y - x == 5 && body[x] == '=' && body[x + 1] != '=')
			goto out;
		ls = le + 1;
	}
	for (size_t i = 0; i < n; i++)
		if (!fz_space(body[i]))
			strip[k++] = body[i];
	cap = (unsigned char)s[0] & 1 ? cap : cap / 2;
	memset(o1, 0x33, cap + 1);
	memset(o2, 0x33, cap + 1);
	r1 = dime_armor_decode(label, o1, cap, &l1, NULL, (const uint8_t *)a, al);
	r2 = fz_ref_decode(o2, cap, &l2, strip, k, DIME_B64_ANYPAD);
	/* every byte of out: decoded, wiped after a bad character, or untouched */
	FUZZ_CHECK(r1 == r2 && l1 == l2 && memcmp(o1, o2, cap + 1) == 0);
out:
	free(a);
	free(strip);
	free(o1);
	free(o2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct dime_simd_ops *start;
	enum dime_simd_level start_level = DIME_SIMD_BASE;
	const char *s = (const char *)data + 1;
	size_t n = size > 0 ? size - 1 : 0;
	int flags = size > 0 ? data[0] % 3 + 1 : DIME_B64_ANYPAD;
	size_t cap = size > 0 && (data[0] & 4) ? n / 4 * 3 + 3 : n / 4 * 3 - (n / 4 > 0);
	uint8_t *o1 = malloc(cap + 1), *o2 = malloc(cap + 1);
	char *e1 = malloc(n / 3 * 4 + 8), *e2 = malloc(n / 3 * 4 + 8);

	FUZZ_CHECK(o1 != NULL && o2 != NULL && e1 != NULL && e2 != NULL);
	if (start == NULL)
		start = dime_simd();
	for (int l = 0; l <= DIME_SIMD_MAX; l++)
		if (dime_simd_table((enum dime_simd_level)l) == start)
			start_level = (enum dime_simd_level)l;
	for (int l = 0; l <= DIME_SIMD_MAX; l++) {
		const struct dime_simd_ops *t = dime_simd_table((enum dime_simd_level)l);
		size_t l1 = 7, l2 = 7, el = 0;
		int r1, r2, pad = flags & DIME_B64_PAD ? DIME_B64_PAD : DIME_B64_NOPAD;

		if (t == NULL || (int)dime_simd_init((enum dime_simd_level)l) != l)
			continue;
		fz_kernels(t, s, n, data, size);
		memset(o1, 0x33, cap + 1);
		memset(o2, 0x33, cap + 1);
		r1 = dime_b64_decode(o1, cap, &l1, s, n, flags);
		r2 = fz_ref_decode(o2, cap, &l2, s, n, flags);
		FUZZ_CHECK(r1 == r2 && l1 == l2 && memcmp(o1, o2, cap + 1) == 0);
		/* encode the raw input: the reference's text, and it decodes back */
		FUZZ_CHECK(dime_b64_encode(e1, n / 3 * 4 + 8, &el, data, n, pad) == DIME_OK);
		fz_ref_encode(e2, data, n, pad == DIME_B64_PAD);
		FUZZ_CHECK(el == strlen(e2) && strcmp(e1, e2) == 0);
		if (n > 0)
			FUZZ_CHECK(dime_b64_encode(e1, el, &el, data, n, pad) == DIME_E_NOSPACE &&
				   el == 0);
		if (n > 0)
			fz_armor(s, n);
	}
	(void)dime_simd_init(start_level);
	free(o1);
	free(o2);
	free(e1);
	free(e2);
	return 0;
}

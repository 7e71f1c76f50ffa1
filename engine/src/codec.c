/* Base64, hex, CRC-24 and PEM armor. Base64 bulk goes through the SIMD block kernels
 * (dime_simd()->b64_*_blocks: constant-time in the characters' values); this file keeps the
 * strict rules: padding, canonical trailing bits, line breaks in armor. Armor is parsed here. */

#include <string.h>

#include <sodium.h>

#include "dime/codec.h"
#include "dime/simd.h"

size_t
dime_b64_encoded_len(size_t n, int flags)
{
	if (flags & DIME_B64_PAD && !(flags & DIME_B64_NOPAD))
		return (n + 2) / 3 * 4;
	return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

size_t
dime_b64_decoded_max(size_t n)
{
	return n / 4 * 3 + 3;
}

int
dime_b64_encode(char *out, size_t out_cap, size_t *out_len, const uint8_t *in, size_t in_len,
		int flags)
{
	const struct dime_simd_ops *k = dime_simd();
	int pad = (flags & DIME_B64_PAD) && !(flags & DIME_B64_NOPAD);
	size_t need = dime_b64_encoded_len(in_len, pad ? DIME_B64_PAD : DIME_B64_NOPAD);
	size_t groups = in_len / 3, rest = in_len % 3;

	*out_len = 0;
	if (out_cap < need + 1) {
		if (out_cap > 0)
			out[0] = 0;
		return DIME_E_NOSPACE;
	}
	k->b64_encode_blocks(out, in, groups);
	if (rest != 0) {
		/* The last 1 or 2 bytes as a zero-filled group: the zero bits make the
		 * trailing bits canonical; keep rest + 1 characters, then the padding. */
		uint8_t last[3] = {0, 0, 0};
		char q[4];

		memcpy(last, in + 3 * groups, rest);
		k->b64_encode_blocks(q, last, 1);
		memcpy(out + 4 * groups, q, rest + 1);
		if (pad)
			memset(out + 4 * groups + rest + 1, '=', 3 - rest);
		sodium_memzero(last, sizeof(last));
		sodium_memzero(q, sizeof(q));
	}
	/* NUL-terminated, and the rest of out zeroed as sodium_bin2base64 did before. */
	memset(out + need, 0, out_cap - need);
	*out_len = need;
	return DIME_OK;
}

static int
b64_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* 0x80 in each byte of x equal to c, 0 elsewhere (no carries cross bytes). */
static uint64_t
b64_swar_eq(uint64_t x, uint8_t c)
{
	const uint64_t low7 = 0x7f7f7f7f7f7f7f7fu;
	uint64_t t = x ^ (0x0101010101010101u * c);

	return ~(((t & low7) + low7) | t | low7);
}

/* Returns: how many bytes of p[0..n) b64_is_space accepts; 8 at a time. */
static size_t
b64_count_space(const char *p, size_t n)
{
	size_t k = 0, i = 0;

	for (; n - i >= 8; i += 8) {
		uint64_t x;

		memcpy(&x, p + i, 8);
		k += (size_t)__builtin_popcountll(b64_swar_eq(x, ' ') | b64_swar_eq(x, '\t') |
						  b64_swar_eq(x, '\r') | b64_swar_eq(x, '\n'));
	}
	for (; i < n; i++)
		k += (size_t)b64_is_space(p[i]);
	return k;
}

/* Strict decode of in[0..in_len); with skip_space, the bytes b64_is_space accepts are dropped
 * first, wherever they are (armor bodies). The rules are those of dime_b64_decode, checked in
 * the same order so the error codes match: the padding shape, then room, then the
 * characters. Whole quads go through the kernel; a quad the kernel stops at (a line break
 * inside it, a bad byte) is gathered here byte by byte and decoded as one quad. */
static int
b64_decode_span(uint8_t *out, size_t out_cap, size_t *out_len, const char *in, size_t in_len,
		int flags, int skip_space)
{
	const struct dime_simd_ops *k = dime_simd();
	size_t n = 0, eq = 0, exact, data, i = 0, got = 0, o = 0, nq = 0, j;
	char q[4];
	uint8_t t[3];
	int rc = DIME_E_MALFORMED;

	*out_len = 0;
	/* n: significant characters; eq: '=' among the last two of them */
	n = skip_space ? in_len - b64_count_space(in, in_len) : in_len;
	for (j = in_len; eq < 2 && j > 0; j--) {
		if (skip_space && b64_is_space(in[j - 1]))
			continue;
		if (in[j - 1] != '=')
			break;
		eq++;
	}
	if (eq > 0 && !(flags & DIME_B64_PAD))
		return DIME_E_MALFORMED;
	if (eq == 0 && n % 4 != 0 && !(flags & DIME_B64_NOPAD))
		return DIME_E_MALFORMED;
	if (n % 4 == 1)
		return DIME_E_MALFORMED;
	if (eq > 0 && n % 4 != 0)
		return DIME_E_MALFORMED;
	exact = n / 4 * 3 + (n % 4 == 2 ? 1u : n % 4 == 3 ? 2u : 0u) - eq;
	if (exact > out_cap)
		return DIME_E_NOSPACE;
	/* The first data = n - eq significant characters must all be in the alphabet; what
	 * follows them is the eq '=' just counted. data % 4 is 0, 2 or 3 here. */
	data = n - eq;
	i = 0;
	while (got < data) {
		if (nq == 0 && data - got >= 4) {
			size_t want = (data - got) / 4, room = (in_len - i) / 4, r;

			r = k->b64_decode_blocks(out + o, in + i, want < room ? want : room);
			i += 4 * r, got += 4 * r, o += 3 * r;
			if (got == data)
				break;
		}
		if (skip_space && b64_is_space(in[i])) {
			i++;
			continue;
		}
		q[nq++] = in[i++];
		got++;
		if (nq == 4) {
			if (k->b64_decode_blocks(out + o, q, 1) != 1)
				goto out;
			o += 3, nq = 0;
		}
	}
	if (nq > 0) {
		/* 2 or 3 characters: decode them as a quad filled with 'A' (zero bits); the
		 * byte the fill completes holds the trailing bits, which must be zero. */
		memset(q + nq, 'A', 4 - nq);
		if (k->b64_decode_blocks(t, q, 1) != 1 || t[nq - 1] != 0)
			goto out;
		memcpy(out + o, t, nq - 1);
		o += nq - 1;
	}
	DIME_ASSERT(o == exact);
	*out_len = o;
	rc = DIME_OK;
out:
	sodium_memzero(q, sizeof(q));
	sodium_memzero(t, sizeof(t));
	if (rc != DIME_OK)
		sodium_memzero(out, out_cap);
	return rc;
}

int
dime_b64_decode(uint8_t *out, size_t out_cap, size_t *out_len, const char *in, size_t in_len,
		int flags)
{
	return b64_decode_span(out, out_cap, out_len, in, in_len, flags, 0);
}

int
dime_hex_encode(char *out, size_t out_cap, const uint8_t *in, size_t in_len)
{
	if (in_len > (SIZE_MAX - 1) / 2 || out_cap < in_len * 2 + 1) {
		if (out_cap > 0)
			out[0] = 0;
		return DIME_E_NOSPACE;
	}
	sodium_bin2hex(out, out_cap, in, in_len);
	return DIME_OK;
}

int
dime_hex_decode(uint8_t *out, size_t out_cap, size_t *out_len, const char *in, size_t in_len)
{
	const char *end = NULL;
	size_t n = 0;

	*out_len = 0;
	if (in_len % 2 != 0)
		return DIME_E_MALFORMED;
	if (in_len / 2 > out_cap)
		return DIME_E_NOSPACE;
	if (sodium_hex2bin(out, out_cap, in, in_len, NULL, &n, &end) != 0 || end != in + in_len) {
		sodium_memzero(out, out_cap);
		return DIME_E_MALFORMED;
	}
	*out_len = n;
	return DIME_OK;
}

uint32_t
dime_crc24(const uint8_t *p, size_t len)
{
	uint32_t crc = 0xB704CEu;

	for (size_t i = 0; i < len; i++) {
		crc ^= (uint32_t)p[i] << 16;
		for (int b = 0; b < 8; b++) {
			crc <<= 1;
			if (crc & 0x1000000u)
				crc ^= 0x1864CFBu;
		}
	}
	return crc & 0xFFFFFFu;
}

/* ---- armor ---- */

#define ARMOR_DASH "-----"
#define ARMOR_COLS 64

static int
armor_label_ok(const char *label, size_t n)
{
	if (n == 0 || n >= DIME_ARMOR_LABEL_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (label[i] < 0x20 || label[i] > 0x7e || label[i] == '-')
			return 0;
	return 1;
}

int
dime_armor_detect(const uint8_t *in, size_t in_len)
{
	size_t i = 0;

	while (i < in_len && (in[i] == ' ' || in[i] == '\t' || in[i] == '\r' || in[i] == '\n'))
		i++;
	return in_len - i >= 11 && memcmp(in + i, "-----BEGIN ", 11) == 0;
}

size_t
dime_armor_encoded_len(const char *label, size_t in_len, int flags)
{
	size_t l = strlen(label);
	size_t b =
	    dime_b64_encoded_len(in_len, flags & DIME_ARMOR_NOPAD ? DIME_B64_NOPAD : DIME_B64_PAD);
	size_t lines = (b + ARMOR_COLS - 1) / ARMOR_COLS;
	size_t n = 11 + l + 6 + b + lines + 9 + l + 6;

	if (flags & DIME_ARMOR_CRC)
		n += 6;
	return n;
}

int
dime_armor_encode(char *out, size_t out_cap, size_t *out_len, const char *label, const uint8_t *in,
		  size_t in_len, int flags)
{
	size_t l = strlen(label), need = dime_armor_encoded_len(label, in_len, flags);
	size_t b64_len = 0, o = 0;
	char *b64 = NULL;
	int rc;

	*out_len = 0;
	if (out_cap > 0)
		out[0] = 0;
	if (!armor_label_ok(label, l))
		return DIME_E_INVALID;
	if (out_cap < need + 1)
		return DIME_E_NOSPACE;
	/* The base64 body is written at the tail of out, then folded into lines in place. */
	b64_len =
	    dime_b64_encoded_len(in_len, flags & DIME_ARMOR_NOPAD ? DIME_B64_NOPAD : DIME_B64_PAD);
	b64 = out + out_cap - (b64_len + 1);
	rc = dime_b64_encode(b64, b64_len + 1, &b64_len, in, in_len,
			     flags & DIME_ARMOR_NOPAD ? DIME_B64_NOPAD : DIME_B64_PAD);
	if (rc != DIME_OK)
		return rc;
	memcpy(out + o, "-----BEGIN ", 11), o += 11;
	memcpy(out + o, label, l), o += l;
	memcpy(out + o, ARMOR_DASH "\n", 6), o += 6;
	for (size_t i = 0; i < b64_len; i += ARMOR_COLS) {
		size_t k = b64_len - i < ARMOR_COLS ? b64_len - i : ARMOR_COLS;

		memmove(out + o, b64 + i, k), o += k;
		out[o++] = '\n';
	}
	if (flags & DIME_ARMOR_CRC) {
		uint32_t crc = dime_crc24(in, in_len);
		uint8_t c[3] = {(uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
		char cb[5];
		size_t cl;

		if (dime_b64_encode(cb, sizeof(cb), &cl, c, 3, DIME_B64_PAD) != DIME_OK)
			return DIME_E_NOSPACE;
		out[o++] = '=';
		memcpy(out + o, cb, 4), o += 4;
		out[o++] = '\n';
	}
	memcpy(out + o, "-----END ", 9), o += 9;
	memcpy(out + o, label, l), o += l;
	memcpy(out + o, ARMOR_DASH "\n", 6), o += 6;
	out[o] = 0;
	DIME_ASSERT(o == need);
	*out_len = o;
	return DIME_OK;
}

/* Find line [*pos, eol) and advance *pos past its terminator. Returns 0 at end of input. */
static int
armor_next_line(const uint8_t *in, size_t len, size_t *pos, size_t *ls, size_t *le)
{
	size_t i = *pos;
	const uint8_t *nl;

	if (i >= len)
		return 0;
	*ls = i;
	nl = memchr(in + i, '\n', len - i);
	i = nl != NULL ? (size_t)(nl - in) : len;
	*le = i;
	if (*le > *ls && in[*le - 1] == '\r')
		(*le)--;
	*pos = i < len ? i + 1 : i;
	return 1;
}

static int
armor_is_space(uint8_t c)
{
	return b64_is_space((char)c);
}

int
dime_armor_decode(char label[DIME_ARMOR_LABEL_MAX], uint8_t *out, size_t out_cap, size_t *out_len,
		  size_t *consumed, const uint8_t *in, size_t in_len)
{
	size_t pos = 0, ls = 0, le = 0, lab_len = 0, body_start = 0, body_end = 0, crc_at = 0;
	size_t end_pos = 0;
	int rc = DIME_E_MALFORMED, have_crc = 0, found = 0;
	uint8_t crc_bin[3];
	size_t crc_len = 0;

	memset(label, 0, DIME_ARMOR_LABEL_MAX);
	*out_len = 0;
	if (consumed != NULL)
		*consumed = 0;
	/* BEGIN line: skip leading blank lines only. */
	while (armor_next_line(in, in_len, &pos, &ls, &le)) {
		size_t a = ls, b = le;

		while (a < b && armor_is_space(in[a]))
			a++;
		while (b > a && armor_is_space(in[b - 1]))
			b--;
		if (a == b)
			continue;
		if (b - a < 16 || memcmp(in + a, "-----BEGIN ", 11) != 0 ||
		    memcmp(in + b - 5, ARMOR_DASH, 5) != 0)
			return DIME_E_MALFORMED;
		lab_len = b - 5 - (a + 11);
		if (lab_len >= DIME_ARMOR_LABEL_MAX)
			return DIME_E_LIMIT;
		if (!armor_label_ok((const char *)in + a + 11, lab_len))
			return DIME_E_MALFORMED;
		memcpy(label, in + a + 11, lab_len);
		found = 1;
		break;
	}
	if (!found)
		return DIME_E_MALFORMED;
	body_start = pos;
	/* Body lines up to END; a line starting with '=' (and not only padding) is the CRC. */
	found = 0;
	while (armor_next_line(in, in_len, &pos, &ls, &le)) {
		size_t a = ls, b = le;

		while (a < b && armor_is_space(in[a]))
			a++;
		while (b > a && armor_is_space(in[b - 1]))
			b--;
		if (b - a >= 9 && memcmp(in + a, "-----END ", 9) == 0) {
			if (b - a != 9 + lab_len + 5 || memcmp(in + a + 9, label, lab_len) != 0 ||
			    memcmp(in + b - 5, ARMOR_DASH, 5) != 0)
				goto fail;
			body_end = crc_at != 0 ? crc_at : ls;
			end_pos = pos;
			found = 1;
			break;
		}
		if (have_crc && a != b)
			goto fail; /* nothing but END may follow the CRC line */
		if (b - a == 5 && in[a] == '=' && in[a + 1] != '=') {
			if (dime_b64_decode(crc_bin, sizeof(crc_bin), &crc_len,
					    (const char *)in + a + 1, 4, DIME_B64_PAD) != DIME_OK ||
			    crc_len != 3)
				goto fail;
			have_crc = 1;
			crc_at = ls;
		}
	}
	if (!found)
		goto fail;
	/* The body's base64, line breaks and other whitespace skipped, straight into out. */
	rc = b64_decode_span(out, out_cap, out_len, (const char *)in + body_start,
			     body_end - body_start, DIME_B64_ANYPAD, 1);
	if (rc != DIME_OK)
		goto fail;
	if (have_crc) {
		uint32_t want = (uint32_t)crc_bin[0] << 16 | (uint32_t)crc_bin[1] << 8 | crc_bin[2];

		if (dime_crc24(out, *out_len) != want) {
			rc = DIME_E_BADSIG;
			goto fail;
		}
	}
	if (consumed != NULL)
		*consumed = end_pos;
	return DIME_OK;
fail:
	if (*out_len > 0)
		sodium_memzero(out, *out_len);
	*out_len = 0;
	memset(label, 0, DIME_ARMOR_LABEL_MAX);
	if (consumed != NULL)
		*consumed = 0;
	return rc == DIME_OK ? DIME_E_MALFORMED : rc;
}

/* Base64, hex, CRC-24 and PEM armor. Base64 goes through libsodium, whose decoder is
 * constant-time and rejects non-canonical trailing bits; armor is parsed here. */

#include <string.h>

#include <sodium.h>

#include "dime/codec.h"

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
	int pad = (flags & DIME_B64_PAD) && !(flags & DIME_B64_NOPAD);
	size_t need = dime_b64_encoded_len(in_len, pad ? DIME_B64_PAD : DIME_B64_NOPAD);

	*out_len = 0;
	if (out_cap < need + 1) {
		if (out_cap > 0)
			out[0] = 0;
		return DIME_E_NOSPACE;
	}
	sodium_bin2base64(out, out_cap, in, in_len,
			  pad ? sodium_base64_VARIANT_ORIGINAL
			      : sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	*out_len = need;
	return DIME_OK;
}

int
dime_b64_decode(uint8_t *out, size_t out_cap, size_t *out_len, const char *in, size_t in_len,
		int flags)
{
	size_t n = 0, eq = 0, exact;
	int variant;

	*out_len = 0;
	while (eq < in_len && eq < 2 && in[in_len - 1 - eq] == '=')
		eq++;
	if (eq > 0 && !(flags & DIME_B64_PAD))
		return DIME_E_MALFORMED;
	if (eq == 0 && in_len % 4 != 0 && !(flags & DIME_B64_NOPAD))
		return DIME_E_MALFORMED;
	if (in_len % 4 == 1)
		return DIME_E_MALFORMED;
	if (eq > 0 && in_len % 4 != 0)
		return DIME_E_MALFORMED;
	variant = eq > 0 ? sodium_base64_VARIANT_ORIGINAL
			 : sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
	exact = in_len / 4 * 3 + (in_len % 4 == 2 ? 1u : in_len % 4 == 3 ? 2u : 0u) - eq;
	if (exact > out_cap)
		return DIME_E_NOSPACE;
	if (sodium_base642bin(out, out_cap, in, in_len, NULL, &n, NULL, variant) != 0) {
		sodium_memzero(out, out_cap);
		return DIME_E_MALFORMED;
	}
	*out_len = n;
	return DIME_OK;
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
	size_t b = dime_b64_encoded_len(in_len, flags & DIME_ARMOR_NOPAD ? DIME_B64_NOPAD
									: DIME_B64_PAD);
	size_t lines = (b + ARMOR_COLS - 1) / ARMOR_COLS;
	size_t n = 11 + l + 6 + b + lines + 9 + l + 6;

	if (flags & DIME_ARMOR_CRC)
		n += 6;
	return n;
}

int
dime_armor_encode(char *out, size_t out_cap, size_t *out_len, const char *label,
		  const uint8_t *in, size_t in_len, int flags)
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
	b64_len = dime_b64_encoded_len(in_len, flags & DIME_ARMOR_NOPAD ? DIME_B64_NOPAD
									: DIME_B64_PAD);
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

	if (i >= len)
		return 0;
	*ls = i;
	while (i < len && in[i] != '\n')
		i++;
	*le = i;
	if (*le > *ls && in[*le - 1] == '\r')
		(*le)--;
	*pos = i < len ? i + 1 : i;
	return 1;
}

static int
armor_is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int
dime_armor_decode(char label[DIME_ARMOR_LABEL_MAX], uint8_t *out, size_t out_cap,
		  size_t *out_len, size_t *consumed, const uint8_t *in, size_t in_len)
{
	size_t pos = 0, ls = 0, le = 0, lab_len = 0, body_start = 0, body_end = 0, crc_at = 0;
	size_t n = 0, k = 0, end_pos = 0;
	char *b64 = NULL;
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
	/* Collect the base64 characters without whitespace, at the tail of out if it fits,
	 * else in a temporary buffer. */
	for (size_t i = body_start; i < body_end; i++)
		if (!armor_is_space(in[i]))
			n++;
	b64 = sodium_malloc(n + 1);
	if (b64 == NULL) {
		rc = DIME_E_NOMEM;
		goto fail;
	}
	for (size_t i = body_start; i < body_end; i++)
		if (!armor_is_space(in[i]))
			b64[k++] = (char)in[i];
	b64[k] = 0;
	rc = dime_b64_decode(out, out_cap, out_len, b64, k, DIME_B64_ANYPAD);
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
	sodium_free(b64);
	return DIME_OK;
fail:
	if (b64 != NULL)
		sodium_free(b64);
	if (*out_len > 0)
		sodium_memzero(out, *out_len);
	*out_len = 0;
	memset(label, 0, DIME_ARMOR_LABEL_MAX);
	if (consumed != NULL)
		*consumed = 0;
	return rc == DIME_OK ? DIME_E_MALFORMED : rc;
}

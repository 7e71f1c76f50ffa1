/* Base64 block kernels: every table's b64_encode_blocks / b64_decode_blocks against the
 * obviously-correct _ref forms below at all lengths 0..300, offsets 0..32, against guard
 * pages and guard bytes, every invalid byte at every position of a quad, and 1 MiB of random
 * data; then dime_b64_encode / dime_b64_decode / dime_armor_decode at every level against the
 * libsodium implementation they replaced (same codes, same bytes), line-broken armor, and
 * OpenSSL's EVP_EncodeBlock / EVP_DecodeBlock. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "dime/codec.h"
#include "dime/crypto.h"
#include "dime/simd.h"
#include "tlib.h"

#define BIG    (1u << 20)
#define GUARD  0xA5
#define MAXLEN 300

static const char ref_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* ---- _ref: the alphabet string, searched ---- */

static void
b64_encode_blocks_ref(char *out, const uint8_t *in, size_t n_groups)
{
	for (size_t g = 0; g < n_groups; g++) {
		const uint8_t *s = in + 3 * g;

		out[4 * g] = ref_alpha[s[0] >> 2];
		out[4 * g + 1] = ref_alpha[(s[0] & 3) << 4 | s[1] >> 4];
		out[4 * g + 2] = ref_alpha[(s[1] & 15) << 2 | s[2] >> 6];
		out[4 * g + 3] = ref_alpha[s[2] & 63];
	}
}

/* Returns: 0..63, or -1 when c is not in the alphabet. */
static int
ref_value(char c)
{
	const char *p = c == 0 ? NULL : strchr(ref_alpha, c);

	return p == NULL ? -1 : (int)(p - ref_alpha);
}

static size_t
b64_decode_blocks_ref(uint8_t *out, const char *in, size_t n_quads)
{
	for (size_t q = 0; q < n_quads; q++) {
		int v[4];

		for (int i = 0; i < 4; i++)
			if ((v[i] = ref_value(in[4 * q + (size_t)i])) < 0)
				return q;
		out[3 * q] = (uint8_t)(v[0] << 2 | v[1] >> 4);
		out[3 * q + 1] = (uint8_t)(v[1] << 4 | v[2] >> 2);
		out[3 * q + 2] = (uint8_t)(v[2] << 6 | v[3]);
	}
	return n_quads;
}

/* ---- the codec as it was before the kernels (libsodium), for exact semantics ---- */

static int
old_b64_encode(char *out, size_t out_cap, size_t *out_len, const uint8_t *in, size_t in_len,
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

static int
old_b64_decode(uint8_t *out, size_t out_cap, size_t *out_len, const char *in, size_t in_len,
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
	variant =
	    eq > 0 ? sodium_base64_VARIANT_ORIGINAL : sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
	exact = in_len / 4 * 3 + (in_len % 4 == 2 ? 1u : in_len % 4 == 3 ? 2u : 0u) - eq;
	if (exact > out_cap)
		return DIME_E_NOSPACE;
	/* The one intended difference: libsodium 1.0.18 (Debian) decodes every byte 0x80..0xFF
	 * as '/' (a signed-char slip in b64_char_to_byte), so the old decoder was not strict and
	 * "AAA/" had 129 spellings. The documented contract is the alphabet only. */
	for (size_t i = 0; i < in_len; i++)
		if ((unsigned char)in[i] >= 0x80) {
			sodium_memzero(out, out_cap);
			return DIME_E_MALFORMED;
		}
	if (sodium_base642bin(out, out_cap, in, in_len, NULL, &n, NULL, variant) != 0) {
		sodium_memzero(out, out_cap);
		return DIME_E_MALFORMED;
	}
	*out_len = n;
	return DIME_OK;
}

/* ---- helpers ---- */

static int
all_guard(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != GUARD)
			return 0;
	return 1;
}

static const struct dime_simd_ops *
table(int lvl)
{
	return dime_simd_table((enum dime_simd_level)lvl);
}

/* ---- the kernels ---- */

static int
test_kernels_lengths(const struct dime_simd_ops *t)
{
	static uint8_t src[3 * MAXLEN + 64], dec[3 * MAXLEN + 128];
	static char enc[4 * MAXLEN + 128], ref[4 * MAXLEN + 64];
	int bad = 0;

	t_rand_fill(src, sizeof(src));
	for (size_t n = 0; n <= MAXLEN && !bad; n++) {
		const uint8_t *pin;
		const char *pstr;

		/* input ending at a PROT_NONE page: any overread faults */
		pin = t_at_page_end(0, src, 3 * n);
		t->b64_encode_blocks(enc, pin, n);
		b64_encode_blocks_ref(ref, src, n);
		if (memcmp(enc, ref, 4 * n) != 0) {
			t_fail("%s encode %zu groups at page end differs from ref", t->name, n);
			bad = 1;
		}
		pstr = (const char *)t_at_page_end(1, ref, 4 * n);
		if (t->b64_decode_blocks(dec, pstr, n) != n || memcmp(dec, src, 3 * n) != 0) {
			t_fail("%s decode %zu quads at page end differs", t->name, n);
			bad = 1;
		}
		for (size_t off = 0; off <= 32 && !bad; off++) {
			size_t r;

			b64_encode_blocks_ref(ref + off, src + off, n);
			memset(enc, GUARD, sizeof(enc));
			t->b64_encode_blocks(enc + off, src + off, n);
			if (!all_guard((uint8_t *)enc, off) ||
			    memcmp(enc + off, ref + off, 4 * n) != 0 ||
			    !all_guard((uint8_t *)enc + off + 4 * n, 64)) {
				t_fail("%s encode off %zu groups %zu: got %.*s, want %.*s", t->name,
				       off, n, (int)(4 * n), enc + off, (int)(4 * n), ref + off);
				bad = 1;
			}
			memset(dec, GUARD, sizeof(dec));
			r = t->b64_decode_blocks(dec + off, ref + off, n);
			if (r != n || !all_guard(dec, off) || memcmp(dec + off, src + off, 3 * n) ||
			    !all_guard(dec + off + 3 * n, 64)) {
				t_fail("%s decode off %zu quads %zu: got %zu, want %zu", t->name,
				       off, n, r, n);
				bad = 1;
			}
		}
	}
	return bad;
}

/* Every byte outside the alphabet at every position of every quad of n: the kernel stops
 * right before that quad, and writes nothing past it. */
static int
test_kernels_invalid(const struct dime_simd_ops *t, size_t n)
{
	uint8_t src[3 * 40], dec[3 * 40 + 64];
	char str[4 * 40];
	int bad = 0;

	t_rand_fill(src, sizeof(src));
	for (size_t k = 0; k < n && !bad; k++)
		for (size_t pos = 0; pos < 4 && !bad; pos++)
			for (unsigned v = 0; v < 256 && !bad; v++) {
				size_t r, want;

				if (ref_value((char)v) >= 0)
					continue;
				b64_encode_blocks_ref(str, src, n);
				str[4 * k + pos] = (char)v;
				want = b64_decode_blocks_ref(dec, str, n);
				memset(dec, GUARD, sizeof(dec));
				r = t->b64_decode_blocks(dec, str, n);
				if (want != k || r != k || memcmp(dec, src, 3 * k) != 0 ||
				    !all_guard(dec + 3 * k, sizeof(dec) - 3 * k)) {
					t_fail(
					    "%s: byte 0x%02x at quad %zu pos %zu of %zu: got %zu, "
					    "want %zu (or wrote past it)",
					    t->name, v, k, pos, n, r, k);
					bad = 1;
				}
			}
	return bad;
}

static void
test_kernels_big(const struct dime_simd_ops *t, const uint8_t *src, const char *ref)
{
	char *enc = malloc(BIG / 3 * 4 + 4);
	uint8_t *dec = malloc(BIG);
	size_t groups = BIG / 3;

	if (enc == NULL || dec == NULL)
		abort();
	t->b64_encode_blocks(enc, src, groups);
	T_CHECK(memcmp(enc, ref, 4 * groups) == 0, "%s: 1 MiB encode differs from ref", t->name);
	T_CHECK(t->b64_decode_blocks(dec, enc, groups) == groups &&
		    memcmp(dec, src, 3 * groups) == 0,
		"%s: 1 MiB decode differs", t->name);
	/* a bad byte far in: stops exactly there */
	enc[4 * 77777 + 2] = '\n';
	T_CHECK(t->b64_decode_blocks(dec, enc, groups) == 77777, "%s: 1 MiB with LF", t->name);
	free(enc);
	free(dec);
}

/* ---- the codec at one level, against the implementation it replaced ---- */

static const char mix[] = "AQgw+/=9 \n\r\t*-=A=z\0";

static void
random_b64ish(char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t r = t_rand();

		s[i] = (r & 3) != 0 ? ref_alpha[(r >> 8) & 63] : mix[(r >> 16) % (sizeof(mix) - 1)];
	}
}

static int
test_codec_exact(const char *lvl)
{
	static uint8_t src[MAXLEN + 8], got[MAXLEN + 64], want[MAXLEN + 64];
	static char e1[4 * MAXLEN + 64], e2[4 * MAXLEN + 64], s[512];
	int bad = 0;

	t_rand_fill(src, sizeof(src));
	for (size_t n = 0; n <= MAXLEN && !bad; n++)
		for (int flags = 1; flags <= 3 && !bad; flags++) {
			size_t need = dime_b64_encoded_len(n, flags);
			size_t caps[] = {0, need, need + 1, need + 7};

			for (size_t c = 0; c < 4 && !bad; c++) {
				size_t l1 = 7, l2 = 7;
				int r1, r2;

				memset(e1, 'x', sizeof(e1));
				memset(e2, 'x', sizeof(e2));
				r1 = dime_b64_encode(e1, caps[c], &l1, src, n, flags);
				r2 = old_b64_encode(e2, caps[c], &l2, src, n, flags);
				if (r1 != r2 || l1 != l2 || memcmp(e1, e2, sizeof(e1)) != 0) {
					t_fail("%s encode len %zu flags %d cap %zu: got %d/%zu, "
					       "want %d/%zu",
					       lvl, n, flags, caps[c], r1, l1, r2, l2);
					bad = 1;
				}
			}
		}
	/* Decode: exact outputs and codes on valid strings, every strict prefix, and random
	 * strings mixing the alphabet with '=', whitespace and bytes outside it. */
	for (size_t n = 0; n <= 120 && !bad; n++)
		for (int flags = 1; flags <= 3; flags++) {
			size_t el = 0;

			if (dime_b64_encode(e1, sizeof(e1), &el, src, n,
					    flags == 3 ? (int)(n & 1) + 1 : flags) != DIME_OK) {
				t_fail("%s encode %zu", lvl, n);
				bad = 1;
				break;
			}
			for (size_t k = 0; k <= el; k++)
				for (size_t cap = n > 2 ? n - 2 : 0; cap <= n + 1; cap++) {
					size_t l1 = 9, l2 = 9;
					int r1, r2;

					memset(got, GUARD, sizeof(got));
					memset(want, GUARD, sizeof(want));
					r1 = dime_b64_decode(got, cap, &l1, e1, k, flags);
					r2 = old_b64_decode(want, cap, &l2, e1, k, flags);
					if (r1 != r2 || l1 != l2 ||
					    memcmp(got, want, sizeof(got))) {
						t_fail(
						    "%s decode %.*s flags %d cap %zu: got %d/%zu, "
						    "want %d/%zu",
						    lvl, (int)k, e1, flags, cap, r1, l1, r2, l2);
						bad = 1;
						k = el;
						break;
					}
				}
		}
	for (int it = 0; it < 200000 && !bad; it++) {
		size_t n = (size_t)(t_rand() % 40), cap = (size_t)(t_rand() % 32), l1 = 9, l2 = 9;
		int flags = (int)(t_rand() % 3) + 1, r1, r2;

		random_b64ish(s, n);
		if (t_rand() & 1) { /* mostly-valid: a real encoding with one byte changed */
			size_t el;

			n = (size_t)(t_rand() % 30);
			if (dime_b64_encode(s, sizeof(s), &el, src, n, (int)(t_rand() & 1) + 1) !=
			    0)
				abort();
			n = el;
			if (n > 0 && (t_rand() & 1))
				s[t_rand() % n] = mix[t_rand() % (sizeof(mix) - 1)];
			cap = t_rand() & 1 ? 64 : cap;
		}
		memset(got, GUARD, sizeof(got));
		memset(want, GUARD, sizeof(want));
		r1 = dime_b64_decode(got, cap, &l1, s, n, flags);
		r2 = old_b64_decode(want, cap, &l2, s, n, flags);
		if (r1 != r2 || l1 != l2 || memcmp(got, want, sizeof(got)) != 0) {
			t_fail("%s decode random %s (len %zu) flags %d cap %zu: got %d/%zu, want "
			       "%d/%zu",
			       lvl, t_hex((const uint8_t *)s, n), n, flags, cap, r1, l1, r2, l2);
			bad = 1;
		}
	}
	return bad;
}

/* ---- armor: line breaks in every place ---- */

/* The armor body decoded the old way: whitespace removed, then the old decoder. */
static int
old_armor_body(uint8_t *out, size_t cap, size_t *out_len, const char *body, size_t n)
{
	char *s = malloc(n + 1);
	size_t k = 0;
	int rc;

	if (s == NULL)
		abort();
	for (size_t i = 0; i < n; i++)
		if (body[i] != ' ' && body[i] != '\t' && body[i] != '\r' && body[i] != '\n')
			s[k++] = body[i];
	rc = old_b64_decode(out, cap, out_len, s, k, DIME_B64_ANYPAD);
	free(s);
	return rc;
}

/* "-----BEGIN T-----\n" body (wrapped at width, CRLF or LF, optional spaces) "-----END T-----\n"
 * Returns: length; body at *body_at, body_len bytes. */
static size_t
armor_build(char *a, const char *b64, size_t b64_len, size_t width, int crlf, int spaces,
	    size_t *body_at, size_t *body_len)
{
	size_t o = 0;

	memcpy(a, "-----BEGIN T-----\n", 18), o = 18;
	*body_at = o;
	for (size_t i = 0; i < b64_len; i += width) {
		size_t k = b64_len - i < width ? b64_len - i : width;

		for (size_t j = 0; j < k; j++) {
			a[o++] = b64[i + j];
			if (spaces && j + 1 < k && t_rand() % 7 == 0)
				a[o++] = t_rand() & 1 ? ' ' : '\t';
		}
		if (crlf)
			a[o++] = '\r';
		a[o++] = '\n';
	}
	*body_len = o - *body_at;
	memcpy(a + o, "-----END T-----\n", 16), o += 16;
	return o;
}

static int
test_armor(const char *lvl)
{
	static uint8_t src[MAXLEN], got[MAXLEN + 8], want[MAXLEN + 8];
	static char b64[4 * MAXLEN / 3 + 8], a[8 * MAXLEN];
	char label[DIME_ARMOR_LABEL_MAX];
	int bad = 0;

	t_rand_fill(src, sizeof(src));
	for (size_t n = 0; n <= MAXLEN && !bad; n += 1 + n / 16) {
		for (size_t width = 1; width <= 80 && !bad; width += width < 20 ? 1 : 7) {
			int variant = (int)(t_rand() % 8);
			size_t el, al, at, bl, ol = 9, wl = 9, used = 0;
			int r1, r2;

			if (dime_b64_encode(b64, sizeof(b64), &el, src, n,
					    variant & 1 ? DIME_B64_PAD : DIME_B64_NOPAD) != 0)
				abort();
			al = armor_build(a, b64, el, width, variant & 2, variant & 4, &at, &bl);
			r1 = dime_armor_decode(label, got, n, &ol, &used, (const uint8_t *)a, al);
			if (r1 != DIME_OK || ol != n || memcmp(got, src, n) != 0 || used != al ||
			    strcmp(label, "T") != 0) {
				t_fail("%s armor len %zu width %zu variant %d: got %d/%zu", lvl, n,
				       width, variant, r1, ol);
				bad = 1;
				break;
			}
			/* one byte inserted inside a line (never its first: no CRC or END
			 * line can appear), or one byte of room too little */
			if (bl > 1) {
				size_t p = at + 1 + (size_t)(t_rand() % (bl - 1));
				const char ins[] = "=*. \t\r\n-A/\x80";

				if (a[p - 1] == '\n')
					p++;
				memmove(a + p + 1, a + p, al - p);
				a[p] = ins[t_rand() % (sizeof(ins) - 1)];
				al++, bl++;
			}
			for (size_t cap = n > 0 ? n - 1 : 0; cap <= n + 1; cap++) {
				memset(got, GUARD, sizeof(got));
				memset(want, GUARD, sizeof(want));
				r1 = dime_armor_decode(label, got, cap, &ol, &used,
						       (const uint8_t *)a, al);
				r2 = old_armor_body(want, cap, &wl, a + at, bl);
				if (r2 != DIME_OK)
					wl = 0;
				if (r1 != r2 || ol != wl || memcmp(got, want, sizeof(got)) != 0) {
					t_fail("%s armor mutated len %zu width %zu cap %zu: got "
					       "%d/%zu, want %d/%zu",
					       lvl, n, width, cap, r1, ol, r2, wl);
					bad = 1;
					break;
				}
			}
		}
	}
	return bad;
}

static void
test_armor_big(const char *lvl, const uint8_t *src)
{
	size_t need = dime_armor_encoded_len("BIG", BIG, DIME_ARMOR_CRC);
	char *a = malloc(need + 1), *crlf = malloc(2 * need);
	uint8_t *out = malloc(BIG);
	char label[DIME_ARMOR_LABEL_MAX];
	size_t al = 0, cl = 0, ol = 0, used = 0;

	if (a == NULL || crlf == NULL || out == NULL)
		abort();
	T_CHECK(dime_armor_encode(a, need + 1, &al, "BIG", src, BIG, DIME_ARMOR_CRC) == DIME_OK,
		"%s: armor 1 MiB", lvl);
	for (size_t i = 0; i < al; i++) {
		if (a[i] == '\n')
			crlf[cl++] = '\r';
		crlf[cl++] = a[i];
	}
	T_CHECK(dime_armor_decode(label, out, BIG, &ol, &used, (const uint8_t *)a, al) == DIME_OK &&
		    ol == BIG && memcmp(out, src, BIG) == 0,
		"%s: 1 MiB armor (LF) round trip", lvl);
	T_CHECK(dime_armor_decode(label, out, BIG, &ol, &used, (const uint8_t *)crlf, cl) ==
			DIME_OK &&
		    ol == BIG && memcmp(out, src, BIG) == 0 && used == cl,
		"%s: 1 MiB armor (CRLF) round trip", lvl);
	free(a);
	free(crlf);
	free(out);
}

/* ---- OpenSSL ---- */

static void
test_openssl(const char *lvl, const uint8_t *big)
{
	static uint8_t src[700], back[700 + 8];
	static char ours[1000], theirs[1000];
	char *e1 = malloc(BIG / 3 * 4 + 8), *e2 = malloc(BIG / 3 * 4 + 8);
	uint8_t *d = malloc(BIG + 8);
	size_t el = 0, dl = 0;

	if (e1 == NULL || e2 == NULL || d == NULL)
		abort();
	t_rand_fill(src, sizeof(src));
	for (size_t n = 0; n <= sizeof(src); n++) {
		int tl = EVP_EncodeBlock((unsigned char *)theirs, src, (int)n), bl;

		if (dime_b64_encode(ours, sizeof(ours), &el, src, n, DIME_B64_PAD) != DIME_OK ||
		    tl < 0 || (size_t)tl != el || memcmp(ours, theirs, el) != 0) {
			t_fail("%s: EVP_EncodeBlock differs at len %zu", lvl, n);
			break;
		}
		bl = EVP_DecodeBlock(back, (const unsigned char *)ours, (int)el);
		if (dime_b64_decode(back, sizeof(back), &dl, theirs, (size_t)tl, DIME_B64_PAD) !=
			DIME_OK ||
		    dl != n || memcmp(back, src, n) != 0 || bl != (int)(el / 4 * 3)) {
			t_fail("%s: EVP_DecodeBlock / ours differ at len %zu", lvl, n);
			break;
		}
	}
	T_CHECK(dime_b64_encode(e1, BIG / 3 * 4 + 8, &el, big, BIG, DIME_B64_PAD) == DIME_OK &&
		    EVP_EncodeBlock((unsigned char *)e2, big, (int)BIG) == (int)el &&
		    memcmp(e1, e2, el) == 0,
		"%s: 1 MiB differs from EVP_EncodeBlock", lvl);
	T_CHECK(dime_b64_decode(d, BIG, &dl, e2, el, DIME_B64_PAD) == DIME_OK && dl == BIG &&
		    memcmp(d, big, BIG) == 0,
		"%s: 1 MiB EVP encoding decodes", lvl);
	free(e1);
	free(e2);
	free(d);
}

int
main(void)
{
	uint8_t *big = malloc(BIG);
	char *big_ref = malloc(BIG / 3 * 4 + 4);
	enum dime_simd_level top;

	if (big == NULL || big_ref == NULL)
		abort();
	t_init(); /* dime_simd_init with $DIME_SIMD: top is the highest level it allows */
	top = (enum dime_simd_level)0;
	for (int l = 0; l <= DIME_SIMD_MAX; l++)
		if (dime_simd() == table(l))
			top = (enum dime_simd_level)l;
	{
		/* the bytes libsodium 1.0.18 took for '/' are rejected, at every level below */
		uint8_t o[4];
		size_t ol = 9;

		T_CHECK(dime_b64_decode(o, sizeof(o), &ol, "AAA\x80", 4, DIME_B64_ANYPAD) ==
				DIME_E_MALFORMED &&
			    ol == 0,
			"byte 0x80 accepted");
		T_CHECK(dime_b64_decode(o, sizeof(o), &ol, "AAA/", 4, DIME_B64_ANYPAD) == DIME_OK &&
			    ol == 3 && o[2] == 0x3f,
			"AAA/");
	}
	t_rand_fill(big, BIG);
	b64_encode_blocks_ref(big_ref, big, BIG / 3);
	for (int lvl = DIME_SIMD_BASE; lvl <= DIME_SIMD_MAX; lvl++) {
		const struct dime_simd_ops *t = table(lvl);

		if (t == NULL)
			continue;
		T_CHECK(t->b64_encode_blocks != NULL && t->b64_decode_blocks != NULL,
			"%s: b64 slots empty", t->name);
		if (test_kernels_lengths(t) || test_kernels_invalid(t, 20) ||
		    test_kernels_invalid(t, 9) || test_kernels_invalid(t, 1))
			continue;
		test_kernels_big(t, big, big_ref);
	}
	/* Through the dispatch, at every level up to the one $DIME_SIMD allows. */
	for (int lvl = DIME_SIMD_BASE; lvl <= (int)top; lvl++) {
		const char *name;

		if (dime_simd_init((enum dime_simd_level)lvl) != (enum dime_simd_level)lvl)
			continue;
		name = dime_simd()->name;
		if (test_codec_exact(name) || test_armor(name))
			continue;
		test_armor_big(name, big);
		test_openssl(name, big);
	}
	(void)dime_simd_init(top);
	free(big);
	free(big_ref);
	return t_done("test_simd_b64");
}

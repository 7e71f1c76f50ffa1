/* dime_gzip_*: round trips from 0 bytes to a few MiB (random and compressible), interop with
 * zlib both ways (including a header with FNAME/FCOMMENT/FEXTRA), every strict prefix,
 * corrupted CRC and ISIZE, trailing bytes, the out_cap bomb limit, guard-page reads. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zlib.h>

#include "dime/gzip.h"
#include "tlib.h"

static uint8_t *
xmalloc(size_t n)
{
	uint8_t *p = malloc(n > 0 ? n : 1);

	if (p == NULL)
		abort();
	return p;
}

/* kind 0: random; 1: text-like (compressible); 2: all zero. */
static void
fill(uint8_t *p, size_t n, int kind)
{
	static const char words[] = "the quick brown fox jumps over the lazy dog\r\nSubject: ";

	if (kind == 0)
		randombytes_buf(p, n);
	else if (kind == 1)
		for (size_t i = 0; i < n; i++)
			p[i] = (uint8_t)words[(i * 7 + i / 97) % (sizeof(words) - 1)];
	else
		memset(p, 0, n);
}

/* zlib's gzip encoder (windowBits 31); with hdr, a header carrying name, comment and extra. */
static size_t
zlib_gzip(uint8_t *out, size_t cap, const uint8_t *in, size_t n, int hdr)
{
	z_stream z;
	gz_header h;
	static unsigned char extra[] = {'A', 'B', 2, 0, 'x', 'y'};
	size_t got;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	if (hdr) {
		memset(&h, 0, sizeof(h));
		h.name = (Bytef *)"message.eml";
		h.comment = (Bytef *)"a comment";
		h.extra = extra;
		h.extra_len = sizeof(extra);
		h.hcrc = 1;
		h.time = 1234567;
		if (deflateSetHeader(&z, &h) != Z_OK)
			abort();
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		abort();
	got = z.total_out;
	deflateEnd(&z);
	return got;
}

/* zlib's gzip decoder: returns the length, or SIZE_MAX when zlib rejects it. */
static size_t
zlib_gunzip(uint8_t *out, size_t cap, const uint8_t *in, size_t n)
{
	z_stream z;
	size_t got = SIZE_MAX;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 31) != Z_OK)
		abort();
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (inflate(&z, Z_FINISH) == Z_STREAM_END && z.avail_in == 0)
		got = z.total_out;
	inflateEnd(&z);
	return got;
}

static void
test_round_trips(void)
{
	static const size_t sizes[] = {0,     1,      2,      15,      16,	100,
				       1000,  4095,   4096,   65534,   65535,	65536,
				       65537, 100000, 262144, 1000000, 3u << 20};

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
		for (int kind = 0; kind < 3; kind++) {
			size_t n = sizes[s], bound = dime_gzip_bound(n), clen, dlen, zlen;
			uint8_t *in = xmalloc(n), *gz = xmalloc(bound), *back = xmalloc(n);
			uint32_t isize;
			int rc;

			fill(in, n, kind);
			rc = dime_gzip_compress(gz, bound, &clen, in, n);
			T_CHECK(rc == DIME_OK, "compress %zu/%d: got %d, want ok", n, kind, rc);
			if (rc != DIME_OK)
				goto next;
			T_CHECK(clen <= bound && clen >= DIME_GZIP_MIN_BYTES,
				"compress %zu/%d: len %zu, bound %zu", n, kind, clen, bound);
			if (kind == 2 && n >= 1000)
				T_CHECK(clen < n / 10, "zeros %zu: compressed to %zu", n, clen);
			rc = dime_gzip_isize(&isize, gz, clen);
			T_CHECK(rc == DIME_OK && isize == (uint32_t)n, "isize %zu: got %u", n,
				isize);
			/* Exact-size output buffer. */
			rc = dime_gzip_decompress(back, n, &dlen, gz, clen);
			T_CHECK(rc == DIME_OK && dlen == n && memcmp(back, in, n) == 0,
				"decompress %zu/%d: got %d len %zu", n, kind, rc, dlen);
			/* One byte short of room is the bomb limit. */
			if (n > 0) {
				rc = dime_gzip_decompress(back, n - 1, &dlen, gz, clen);
				T_CHECK(rc == DIME_E_NOSPACE && dlen == 0,
					"cap %zu-1/%d: got %d, want NOSPACE", n, kind, rc);
			}
			/* zlib reads ours. */
			zlen = zlib_gunzip(back, n + 1, gz, clen);
			T_CHECK(zlen == n && memcmp(back, in, n) == 0, "zlib reads %zu/%d: got %zu",
				n, kind, zlen);
			/* We read zlib's, plain and with every optional header field. */
			for (int hdr = 0; hdr < 2; hdr++) {
				size_t zcap = n + n / 100 + 200;
				uint8_t *zg = xmalloc(zcap);

				zlen = zlib_gzip(zg, zcap, in, n, hdr);
				rc = dime_gzip_decompress(back, n, &dlen, zg, zlen);
				T_CHECK(rc == DIME_OK && dlen == n && memcmp(back, in, n) == 0,
					"read zlib %zu/%d hdr %d: got %d len %zu", n, kind, hdr, rc,
					dlen);
				free(zg);
			}
next:
			free(in);
			free(gz);
			free(back);
		}
}

static void
test_compress_nospace(void)
{
	uint8_t in[5000], out[6000];
	size_t n = 99, full;

	fill(in, sizeof(in), 0);
	T_CHECK(dime_gzip_compress(out, sizeof(out), &full, in, sizeof(in)) == DIME_OK,
		"compress 5000 random");
	T_CHECK(dime_gzip_compress(out, full - 1, &n, in, sizeof(in)) == DIME_E_NOSPACE && n == 0,
		"compress into %zu-1: want NOSPACE, len %zu", full, n);
	T_CHECK(dime_gzip_compress(out, 3, &n, in, 0) == DIME_E_NOSPACE, "compress into 3 bytes");
	T_CHECK(dime_gzip_bound(DIME_GZIP_MAX_BYTES + (size_t)1) == SIZE_MAX, "bound over max");
	T_CHECK(dime_gzip_compress(out, sizeof(out), &n, in, (size_t)DIME_GZIP_MAX_BYTES + 1) ==
		    DIME_E_LIMIT,
		"compress over max: want LIMIT");
}

static void
test_bad_input(void)
{
	static const char text[] = "Subject: hello\r\n\r\nhello hello hello hello hello world\r\n";
	size_t tl = sizeof(text) - 1, clen, dlen;
	uint8_t gz[256], mut[256], back[256], *tail;
	uint32_t isize;
	int rc;

	T_CHECK(dime_gzip_compress(gz, sizeof(gz), &clen, (const uint8_t *)text, tl) == DIME_OK,
		"compress text");
	/* Guard page right after the member. */
	tail = (uint8_t *)(uintptr_t)t_at_page_end(0, gz, clen);
	rc = dime_gzip_decompress(back, sizeof(back), &dlen, tail, clen);
	T_CHECK(rc == DIME_OK && dlen == tl, "guard page: got %d", rc);
	/* Every strict prefix is truncated. */
	for (size_t k = 0; k < clen; k++) {
		const uint8_t *p = t_at_page_end(1, gz, k);

		dlen = 99;
		rc = dime_gzip_decompress(back, sizeof(back), &dlen, p, k);
		T_CHECK(rc == DIME_E_TRUNCATED || (k < 10 && rc == DIME_E_MALFORMED),
			"prefix %zu/%zu: got %d, want TRUNCATED", k, clen, rc);
		T_CHECK(dlen == 0, "prefix %zu: len %zu after failure", k, dlen);
	}
	/* Trailing garbage, and a second member, are rejected. */
	memcpy(mut, gz, clen);
	mut[clen] = 0;
	rc = dime_gzip_decompress(back, sizeof(back), &dlen, mut, clen + 1);
	T_CHECK(rc == DIME_E_TRAILING && dlen == 0, "trailing byte: got %d", rc);
	memcpy(mut + clen, gz, clen);
	rc = dime_gzip_decompress(back, sizeof(back), &dlen, mut, 2 * clen);
	T_CHECK(rc == DIME_E_TRAILING, "two members: got %d", rc);
	/* CRC and ISIZE corruption. */
	for (size_t i = clen - 8; i < clen; i++) {
		memcpy(mut, gz, clen);
		mut[i] ^= 0x01;
		dlen = 99;
		rc = dime_gzip_decompress(back, sizeof(back), &dlen, mut, clen);
		T_CHECK(rc == DIME_E_MALFORMED && dlen == 0, "trailer byte %zu flipped: got %d",
			i - (clen - 8), rc);
	}
	/* Bad magic, method, reserved flag. */
	for (size_t i = 0; i < 4; i++) {
		memcpy(mut, gz, clen);
		mut[i] = (uint8_t)(i == 3 ? 0xe0 : mut[i] ^ 0x40);
		rc = dime_gzip_decompress(back, sizeof(back), &dlen, mut, clen);
		T_CHECK(rc == DIME_E_MALFORMED || rc == DIME_E_TRUNCATED,
			"header byte %zu: got %d, want reject", i, rc);
	}
	/* Every single-bit flip is survived; most are caught. */
	for (size_t i = 0; i < clen * 8; i++) {
		memcpy(mut, gz, clen);
		mut[i / 8] ^= (uint8_t)(1u << (i % 8));
		rc = dime_gzip_decompress(back, sizeof(back), &dlen, mut, clen);
		if (rc == DIME_OK)
			T_CHECK(dlen == tl && memcmp(back, text, tl) == 0,
				"bit %zu: accepted different data", i);
	}
	/* Zero-capacity output: an empty member decodes, anything else is NOSPACE. */
	rc = dime_gzip_decompress(NULL, 0, &dlen, gz, clen);
	T_CHECK(rc == DIME_E_NOSPACE, "cap 0: got %d", rc);
	T_CHECK(dime_gzip_compress(mut, sizeof(mut), &clen, NULL, 0) == DIME_OK, "empty");
	rc = dime_gzip_decompress(NULL, 0, &dlen, mut, clen);
	T_CHECK(rc == DIME_OK && dlen == 0, "empty with cap 0: got %d", rc);
	rc = dime_gzip_decompress(back, sizeof(back), &dlen, NULL, 0);
	T_CHECK(rc == DIME_E_TRUNCATED, "no input: got %d", rc);
	T_CHECK(dime_gzip_isize(&isize, gz, 5) == DIME_E_TRUNCATED && isize == 0, "isize short");
	T_CHECK(dime_gzip_isize(&isize, (const uint8_t *)text, tl) == DIME_E_MALFORMED,
		"isize magic");
}

/* A bomb: 64 MiB of zeros is ~64 KiB of gzip; a 1 MiB cap stops it at the cap. */
static void
test_bomb(void)
{
	size_t n = 64u << 20, clen, dlen = 99;
	uint8_t *in = xmalloc(n), *gz = xmalloc(dime_gzip_bound(n)), *out = xmalloc(1u << 20);
	int rc;

	memset(in, 0, n);
	T_CHECK(dime_gzip_compress(gz, dime_gzip_bound(n), &clen, in, n) == DIME_OK, "bomb");
	rc = dime_gzip_decompress(out, 1u << 20, &dlen, gz, clen);
	T_CHECK(rc == DIME_E_NOSPACE && dlen == 0, "bomb under 1 MiB cap: got %d", rc);
	free(in);
	free(gz);
	free(out);
}

int
main(void)
{
	t_init();
	test_round_trips();
	test_compress_nospace();
	test_bad_input();
	test_bomb();
	return t_done("gzip");
}

/* GZIP for D/MIME data segments on isa-l's igzip: one-shot compress (stateless level 1) and a
 * bounded decompress that treats out_cap as the bomb limit, checks CRC-32 and ISIZE, and
 * rejects trailing bytes. */

#include <string.h>

#include <isa-l/igzip_lib.h>
#include <sodium.h>

#include "dime/gzip.h"

#define GZIP_HDR_BYTES	   10u
#define GZIP_TRAILER_BYTES 8u
#define GZIP_STORED_BLOCK  65535u /* RFC 1951 §3.2.4: LEN is 16 bits */
#define GZIP_STORED_HDR	   5u	  /* BFINAL/BTYPE byte + LEN + NLEN */
#define GZIP_SLACK	   64u	  /* isa-l's own margin around stored blocks */
/* isa-l counts in uint32_t; feed it windows no larger than this. */
#define GZIP_WINDOW 0x40000000u

size_t
dime_gzip_bound(size_t n)
{
	if (n > DIME_GZIP_MAX_BYTES)
		return SIZE_MAX;
	/* Worst case is all stored blocks; n <= 1 GiB so nothing here overflows. */
	return n + (n / GZIP_STORED_BLOCK + 1) * GZIP_STORED_HDR + GZIP_HDR_BYTES +
	       GZIP_TRAILER_BYTES + GZIP_SLACK;
}

int
dime_gzip_compress(uint8_t *out, size_t out_cap, size_t *out_len, const uint8_t *in, size_t in_len)
{
	struct isal_zstream zs;
	static const uint8_t empty[1] = {0};
	int rc = DIME_E_CRYPTO, irc;

	if (out_len == NULL)
		return DIME_E_INVALID;
	*out_len = 0;
	if ((in == NULL && in_len != 0) || (out == NULL && out_cap != 0))
		return DIME_E_INVALID;
	if (in_len > DIME_GZIP_MAX_BYTES)
		return DIME_E_LIMIT;
	if (out_cap < DIME_GZIP_MIN_BYTES)
		return DIME_E_NOSPACE;
	isal_deflate_stateless_init(&zs);
	/* isa-l never writes through next_in; the cast only drops const. */
	zs.next_in = (uint8_t *)(uintptr_t)(in != NULL ? in : empty);
	zs.avail_in = (uint32_t)in_len;
	zs.next_out = out;
	zs.avail_out = out_cap > UINT32_MAX ? UINT32_MAX : (uint32_t)out_cap;
	zs.level = 1; /* level 1 stateless needs no level_buf */
	zs.gzip_flag = IGZIP_GZIP;
	zs.end_of_stream = 1;
	zs.flush = NO_FLUSH;
	irc = isal_deflate_stateless(&zs);
	if (irc == STATELESS_OVERFLOW) {
		rc = DIME_E_NOSPACE;
		goto out;
	}
	if (irc != COMP_OK || zs.avail_in != 0 || zs.total_out > out_cap)
		goto out;
	*out_len = zs.total_out;
	rc = DIME_OK;
out:
	sodium_memzero(&zs, sizeof(zs)); /* history and hash of the plaintext */
	if (rc != DIME_OK && out_cap > 0)
		sodium_memzero(out,
			       out_cap > UINT32_MAX ? UINT32_MAX : out_cap); /* isa-l's reach */
	return rc;
}

/* Give isa-l the next window of input or output; returns how much is still held back. */
static size_t
gzip_window(size_t left)
{
	return left > GZIP_WINDOW ? GZIP_WINDOW : left;
}

int
dime_gzip_decompress(uint8_t *out, size_t out_cap, size_t *out_len, const uint8_t *in,
		     size_t in_len)
{
	struct inflate_state st;
	uint8_t probe[1];
	static const uint8_t empty[1] = {0};
	size_t in_left, out_left, produced = 0;
	int rc = DIME_E_MALFORMED, probing = 0;

	if (out_len == NULL)
		return DIME_E_INVALID;
	*out_len = 0;
	if ((in == NULL && in_len != 0) || (out == NULL && out_cap != 0))
		return DIME_E_INVALID;
	/* RFC 1952 §2.3.1: a decoder must reject reserved FLG bits; isa-l ignores them. */
	if (in_len > 3 && (in[3] & 0xe0) != 0)
		return DIME_E_MALFORMED;
	isal_inflate_init(&st);
	st.crc_flag = ISAL_GZIP;
	st.next_in = (uint8_t *)(uintptr_t)(in != NULL ? in : empty);
	st.avail_in = (uint32_t)gzip_window(in_len);
	in_left = in_len - st.avail_in;
	st.next_out = out != NULL ? out : probe;
	st.avail_out = (uint32_t)gzip_window(out_cap);
	out_left = out_cap - st.avail_out;
	if (out_cap == 0) {
		probing = 1;
		st.avail_out = 1;
	}
	for (;;) {
		uint32_t before_in = st.avail_in, before_out = st.avail_out;
		int irc;

		irc = isal_inflate(&st);
		if (probing && st.avail_out == 0) {
			rc = DIME_E_NOSPACE; /* one byte more than out_cap exists */
			goto out;
		}
		if (!probing)
			produced += before_out - st.avail_out;
		if (irc < 0) {
			rc = DIME_E_MALFORMED; /* bad wrapper, block, symbol, distance or CRC */
			goto out;
		}
		if (st.block_state == ISAL_BLOCK_FINISH)
			break;
		if (st.avail_in == 0 && in_left > 0) {
			st.avail_in = (uint32_t)gzip_window(in_left);
			in_left -= st.avail_in;
			continue;
		}
		if (st.avail_out == 0 && !probing) {
			if (out_left > 0) {
				st.avail_out = (uint32_t)gzip_window(out_left);
				out_left -= st.avail_out;
			} else {
				/* out_cap is full: only a clean end of the member may follow. */
				probing = 1;
				st.next_out = probe;
				st.avail_out = 1;
			}
			continue;
		}
		if (st.avail_in == before_in && st.avail_out == before_out) {
			rc = DIME_E_TRUNCATED; /* all input seen, room left, member not finished */
			goto out;
		}
	}
	if (st.avail_in != 0 || in_left != 0) {
		rc = DIME_E_TRAILING;
		goto out;
	}
	*out_len = produced;
	rc = DIME_OK;
out:
	sodium_memzero(&st, sizeof(st)); /* the history window is plaintext */
	sodium_memzero(probe, sizeof(probe));
	if (rc != DIME_OK && produced > 0)
		sodium_memzero(out, produced);
	return rc;
}

int
dime_gzip_isize(uint32_t *isize, const uint8_t *in, size_t in_len)
{
	const uint8_t *t;

	if (isize == NULL)
		return DIME_E_INVALID;
	*isize = 0;
	if (in == NULL || in_len < DIME_GZIP_MIN_BYTES)
		return DIME_E_TRUNCATED;
	if (in[0] != 0x1f || in[1] != 0x8b)
		return DIME_E_MALFORMED;
	t = in + in_len - 4; /* RFC 1952 §2.3.1: ISIZE, little-endian, last 4 bytes */
	*isize = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
	return DIME_OK;
}

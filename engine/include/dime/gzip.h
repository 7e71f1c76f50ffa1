#ifndef DIME_ENGINE_GZIP_H
#define DIME_ENGINE_GZIP_H
/* GZIP (RFC 1952) for D/MIME data segments (spec Part 6, flag 4), on isa-l's igzip.
 *
 * One-shot, caller buffers, no allocation, no I/O. Each call keeps its isa-l state on the
 * stack (about 85 KiB) and wipes it before returning, since it holds message plaintext.
 * Reentrant and thread-safe. */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest input dime_gzip_compress takes (1 GiB, the whole-message limit), so every length
 * fits isa-l's 32-bit counters. */
#define DIME_GZIP_MAX_BYTES 0x40000000u
/* A gzip member is at least a 10-byte header, an empty deflate block and an 8-byte trailer. */
#define DIME_GZIP_MIN_BYTES 20u

/* Returns: the most bytes dime_gzip_compress writes for n input bytes (stored-block worst case
 * plus header and trailer), or SIZE_MAX when n > DIME_GZIP_MAX_BYTES. */
size_t dime_gzip_bound(size_t n);

/* Compress in into one gzip member (10-byte header without name or time, OS 255, level 1).
 * Returns: DIME_OK, DIME_E_LIMIT (in_len > DIME_GZIP_MAX_BYTES), DIME_E_NOSPACE (out_cap too
 *          small; out_cap >= dime_gzip_bound(in_len) never fails so), DIME_E_CRYPTO (isa-l
 *          refused its parameters: a bug).
 * Out: out[0..*out_len); on failure *out_len = 0 and out[0..out_cap) holds no output.
 * In:  in may be NULL when in_len == 0. */
DIME_MUST_CHECK int dime_gzip_compress(uint8_t *out, size_t out_cap, size_t *out_len,
				       const uint8_t *in, size_t in_len) DIME_NONNULL(3);

/* Decompress exactly one gzip member (header fields FEXTRA/FNAME/FCOMMENT/FHCRC skipped), and
 * check its CRC-32 and ISIZE. out_cap is the caller's decompression-bomb limit: output beyond
 * it is never produced. Concatenated members are not accepted (the second one is trailing).
 * Returns: DIME_OK; DIME_E_NOSPACE (the data decompresses to more than out_cap bytes);
 *          DIME_E_TRUNCATED (input ends inside the member); DIME_E_MALFORMED (bad header, bad
 *          deflate data, CRC or length mismatch); DIME_E_TRAILING (bytes after the member).
 * Out: out[0..*out_len); on failure *out_len = 0 and the bytes written so far are wiped.
 * In:  out may be NULL when out_cap == 0; in may be NULL when in_len == 0. */
DIME_MUST_CHECK int dime_gzip_decompress(uint8_t *out, size_t out_cap, size_t *out_len,
					 const uint8_t *in, size_t in_len) DIME_NONNULL(3);

/* Read the ISIZE trailer: the claimed decompressed length mod 2^32. It is UNTRUSTED (anyone
 * can write any value, and lengths >= 4 GiB wrap): use it only as a hint for sizing, never
 * above the caller's own limit, and always pass that limit as out_cap to dime_gzip_decompress,
 * which is what enforces it.
 * Returns: DIME_OK or DIME_E_TRUNCATED (in_len < DIME_GZIP_MIN_BYTES) or DIME_E_MALFORMED (no
 *          gzip magic). Out: *isize (0 on failure). */
DIME_MUST_CHECK int dime_gzip_isize(uint32_t *isize, const uint8_t *in, size_t in_len)
    DIME_NONNULL(1);

#ifdef __cplusplus
}
#endif
#endif

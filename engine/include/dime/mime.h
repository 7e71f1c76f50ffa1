#ifndef DIME_ENGINE_MIME_H
#define DIME_ENGINE_MIME_H
/* Lossless translation between an RFC 5322/MIME message and D/MIME content chunks:
 * chunk 33 (common headers, in the reference's `Label: value\r\n` form), chunk 34 (a recipe:
 * every other byte of the message, plus where chunk 33 lines and the parts go), and the
 * display (67) and attachment (131) parts. dime_mime_join(dime_mime_split(m)) == m byte for
 * byte, for ANY input (not only well-formed mail). The encoding is in docs/mime.md.
 *
 * No allocation, no I/O, no globals: reentrant and thread-safe. Split reads the input once
 * (a MIME structure scanner of our own, not a full MIME parser: it decodes nothing). */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DIME_MIME_MAX_BYTES    0x40000000u /* 1 GiB, as DIME_MSG_MAX_BYTES */
#define DIME_MIME_MAX_DEPTH    32u	   /* nested multiparts; deeper ones are opaque parts */
#define DIME_MIME_BOUNDARY_MAX 256u	   /* longer boundaries: the multipart is opaque */

/* Part types: the D/MIME chunk types they go into. */
enum dime_mime_part_type {
	DIME_MIME_DISPLAY = 67, /* text leaves (not Content-Disposition: attachment) */
	DIME_MIME_ATTACH = 131	/* every other leaf */
};

/* One content part: chunk data for a display or attachment chunk. */
struct dime_mime_part {
	uint8_t type; /* enum dime_mime_part_type */
	struct dime_view data;
};

/* What dime_mime_split produces. common and headers point into the caller's buf; parts is the
 * caller's array, with the parts' data pointing INTO THE INPUT MESSAGE (which must outlive
 * them). Parts are in D/MIME wire order: all displays first, then all attachments, each kind
 * in message order; chunk 34 records where each goes. No part is empty (a 0-byte leaf stays
 * in chunk 34). */
struct dime_mime_content {
	struct dime_view common;  /* chunk 33 data; EMPTY when the message has none of the six */
	struct dime_view headers; /* chunk 34 data; never empty */
	struct dime_mime_part *parts;
	size_t n_parts, n_display, n_attach;
};

/* Exact sizes for dime_mime_split: buf_len bytes of buf and n_parts array entries.
 * Returns: DIME_OK or DIME_E_LIMIT (in_len > DIME_MIME_MAX_BYTES). Out: both 0 on failure.
 * In: in may be NULL when in_len == 0. */
DIME_MUST_CHECK int dime_mime_split_size(size_t *buf_len, size_t *n_parts, const uint8_t *in,
					 size_t in_len) DIME_NONNULL(1, 2);

/* Split a message into D/MIME content. Every byte string is a valid input: there is no
 * parse error. Chunk 33 holds, in the order Date, To, CC, From, Organization, Subject, the
 * FIRST top-level field with that name (case-insensitive), unfolded, outer whitespace
 * trimmed, control bytes other than TAB replaced by '?'; absent fields have no line (so a
 * reference peer, which requires Date, To, From and Subject, rejects chunk 33 of a message
 * lacking one of them).
 * Returns: DIME_OK, DIME_E_LIMIT (in_len > DIME_MIME_MAX_BYTES), DIME_E_NOSPACE (buf_cap or
 *          parts_cap below what dime_mime_split_size reports).
 * Out: *out (borrows buf, parts and in); zeroed on failure (buf and parts contents are then
 *      unspecified).
 * In:  buf/parts may be NULL when their capacity is 0; in may be NULL when in_len == 0. */
DIME_MUST_CHECK int dime_mime_split(struct dime_mime_content *out, uint8_t *buf, size_t buf_cap,
				    struct dime_mime_part *parts, size_t parts_cap,
				    const uint8_t *in, size_t in_len) DIME_NONNULL(1);

/* Rebuild the message from chunk 33, chunk 34 and the parts. parts may be in any order across
 * the two types (wire order, or message order), but within each type in the order split gave
 * them; every part must be used exactly once.
 * Returns: DIME_OK; DIME_E_MALFORMED (chunk 34 is not our encoding or is not canonical, chunk
 *          33 is not the reference form, a record names a chunk 33 line or a part that does not
 *          exist, a part is left over or has another type); DIME_E_NOSPACE (out_cap too
 *          small); DIME_E_LIMIT (the result would exceed DIME_MIME_MAX_BYTES).
 * Out: out[0..*out_len); with out == NULL nothing is written and *out_len is the size needed.
 *      On failure *out_len = 0 (out's contents unspecified).
 * In:  common/headers/parts data are borrowed; parts may be NULL when n_parts == 0. */
DIME_MUST_CHECK int dime_mime_join(uint8_t *out, size_t out_cap, size_t *out_len,
				   struct dime_view common, struct dime_view headers,
				   const struct dime_mime_part *parts, size_t n_parts)
    DIME_NONNULL(3);

#ifdef __cplusplus
}
#endif
#endif

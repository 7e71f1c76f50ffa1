#ifndef DIME_GATEWAY_OUTBUF_H
#define DIME_GATEWAY_OUTBUF_H
/* The reply buffer of the gateway's protocol machines (DMTP, ESMTP, socketmap, policy): octets
 * appended at the end, taken from the front by the caller as the socket accepts them. Grown by
 * copying, the old buffer wiped first, and wiped when freed: replies can echo what a peer sent.
 * Internal to the gateway library. Not thread-safe (one per session). */

#include <stddef.h>
#include <stdint.h>

struct dime_outbuf {
	uint8_t *p; /* p[off..len) is unsent */
	size_t off, len, cap;
};

/* Append n octets. Returns: 0, or -1 when memory ran out (nothing appended: the caller hangs
 * up, since later replies would be out of step). */
int dime_outbuf_put(struct dime_outbuf *o, const void *src, size_t n);
/* Octets not taken yet. */
size_t dime_outbuf_pending(const struct dime_outbuf *o);
/* The unsent octets: *len of them at the returned pointer (never NULL), valid until the next
 * put or done. */
const uint8_t *dime_outbuf_get(const struct dime_outbuf *o, size_t *len);
/* The caller sent the first n (n <= pending). */
void dime_outbuf_done(struct dime_outbuf *o, size_t n);
/* Wipe and free; o is empty and reusable after. */
void dime_outbuf_free(struct dime_outbuf *o);

#endif

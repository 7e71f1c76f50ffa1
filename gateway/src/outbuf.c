/* The protocol machines' reply buffer (outbuf.h). */

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "dime/common.h"
#include "outbuf.h"

int
dime_outbuf_put(struct dime_outbuf *o, const void *src, size_t n)
{
	if (o->off > 0 && o->off == o->len)
		o->off = o->len = 0;
	if (n > o->cap - o->len && o->off > 0) {
		memmove(o->p, o->p + o->off, o->len - o->off);
		o->len -= o->off;
		o->off = 0;
	}
	if (n > o->cap - o->len) {
		size_t cap = o->cap ? o->cap : 1024;
		uint8_t *nb;

		while (cap - o->len < n) {
			if (cap > SIZE_MAX / 2)
				return -1;
			cap *= 2;
		}
		if ((nb = malloc(cap)) == NULL)
			return -1;
		/* A copy rather than realloc: the old buffer is wiped before it goes back. */
		if (o->len > 0)
			memcpy(nb, o->p, o->len);
		if (o->p != NULL)
			sodium_memzero(o->p, o->cap);
		free(o->p);
		o->p = nb;
		o->cap = cap;
	}
	if (n > 0)
		memcpy(o->p + o->len, src, n);
	o->len += n;
	return 0;
}

size_t
dime_outbuf_pending(const struct dime_outbuf *o)
{
	return o->len - o->off;
}

const uint8_t *
dime_outbuf_get(const struct dime_outbuf *o, size_t *len)
{
	*len = o->len - o->off;
	return *len > 0 ? o->p + o->off : (const uint8_t *)"";
}

void
dime_outbuf_done(struct dime_outbuf *o, size_t n)
{
	DIME_ASSERT(n <= o->len - o->off);
	o->off += n;
	if (o->off == o->len)
		o->off = o->len = 0;
}

void
dime_outbuf_free(struct dime_outbuf *o)
{
	if (o->p != NULL)
		sodium_memzero(o->p, o->cap);
	free(o->p);
	memset(o, 0, sizeof(*o));
}

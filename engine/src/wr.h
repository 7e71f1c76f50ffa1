#ifndef DIME_ENGINE_WR_H
#define DIME_ENGINE_WR_H
/* The one binary writer. With p == NULL it only counts, so one serialize function gives
 * both the size and the bytes (STYLE.md §5). Sticky error like the reader. */

#include <string.h>

#include "dime/common.h"

struct dime_wr {
	uint8_t *p; /* NULL: count only */
	size_t cap, off;
	int err;
};

static inline void
dime_wr_init(struct dime_wr *w, uint8_t *p, size_t cap)
{
	w->p = p;
	w->cap = p == NULL ? SIZE_MAX : cap;
	w->off = 0;
	w->err = DIME_OK;
}

static inline void
dime_wr_fail(struct dime_wr *w, int err)
{
	if (w->err == DIME_OK)
		w->err = err;
}

/* Reserve n bytes. Returns: where to write them, or NULL when counting or on error. */
static inline uint8_t *
dime_wr_reserve(struct dime_wr *w, size_t n)
{
	uint8_t *v;

	if (w->err != DIME_OK)
		return NULL;
	if (n > w->cap - w->off) {
		w->err = w->p == NULL ? DIME_E_LIMIT : DIME_E_NOSPACE;
		return NULL;
	}
	v = w->p == NULL ? NULL : w->p + w->off;
	w->off += n;
	return v;
}

static inline void
dime_wr_bytes(struct dime_wr *w, const void *src, size_t n)
{
	uint8_t *d = dime_wr_reserve(w, n);

	if (d != NULL && n > 0)
		memcpy(d, src, n);
}

static inline void
dime_wr_fill(struct dime_wr *w, uint8_t v, size_t n)
{
	uint8_t *d = dime_wr_reserve(w, n);

	if (d != NULL && n > 0)
		memset(d, v, n);
}

static inline void
dime_wr_u8(struct dime_wr *w, uint8_t v)
{
	dime_wr_bytes(w, &v, 1);
}

static inline void
dime_wr_be16(struct dime_wr *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	dime_wr_bytes(w, b, 2);
}

/* v must fit in 24 bits: a larger value is a caller bug turned into DIME_E_LIMIT. */
static inline void
dime_wr_be24(struct dime_wr *w, uint32_t v)
{
	uint8_t b[3] = {(uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

	if (v > 0xffffffu) {
		dime_wr_fail(w, DIME_E_LIMIT);
		return;
	}
	dime_wr_bytes(w, b, 3);
}

static inline void
dime_wr_be32(struct dime_wr *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

	dime_wr_bytes(w, b, 4);
}

/* Overwrite a 24-bit value written earlier at offset at (for back-patched lengths). */
static inline void
dime_wr_patch_be24(struct dime_wr *w, size_t at, uint32_t v)
{
	if (w->err != DIME_OK || w->p == NULL)
		return;
	if (v > 0xffffffu || at > w->off || w->off - at < 3) {
		dime_wr_fail(w, DIME_E_LIMIT);
		return;
	}
	w->p[at] = (uint8_t)(v >> 16);
	w->p[at + 1] = (uint8_t)(v >> 8);
	w->p[at + 2] = (uint8_t)v;
}

#endif

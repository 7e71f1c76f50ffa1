#ifndef DIME_ENGINE_RD_H
#define DIME_ENGINE_RD_H
/* The one binary reader: big-endian, bounds-checked, sticky error (STYLE.md §5). */

#include <string.h>

#include "dime/common.h"

struct dime_rd {
	const uint8_t *p;
	size_t len, off;
	int err;
};

static inline void
dime_rd_init(struct dime_rd *r, const uint8_t *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->err = DIME_OK;
}

/* First error wins. */
static inline void
dime_rd_fail(struct dime_rd *r, int err)
{
	if (r->err == DIME_OK)
		r->err = err;
}

static inline size_t
dime_rd_left(const struct dime_rd *r)
{
	return r->err == DIME_OK ? r->len - r->off : 0;
}

static inline const uint8_t *
dime_rd_take(struct dime_rd *r, size_t n)
{
	const uint8_t *v;

	if (r->err != DIME_OK)
		return NULL;
	if (n > r->len - r->off) { /* never off + n > len */
		r->err = DIME_E_TRUNCATED;
		return NULL;
	}
	v = r->p + r->off;
	r->off += n;
	return v;
}

static inline uint8_t
dime_rd_u8(struct dime_rd *r)
{
	const uint8_t *b = dime_rd_take(r, 1);

	return b == NULL ? 0 : b[0];
}

static inline uint16_t
dime_rd_be16(struct dime_rd *r)
{
	const uint8_t *b = dime_rd_take(r, 2);

	return b == NULL ? 0 : (uint16_t)((unsigned)b[0] << 8 | b[1]);
}

static inline uint32_t
dime_rd_be24(struct dime_rd *r)
{
	const uint8_t *b = dime_rd_take(r, 3);

	return b == NULL ? 0 : (uint32_t)b[0] << 16 | (uint32_t)b[1] << 8 | b[2];
}

static inline uint32_t
dime_rd_be32(struct dime_rd *r)
{
	const uint8_t *b = dime_rd_take(r, 4);

	return b == NULL ? 0
			 : (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Copy n bytes into dst; dst is zeroed if the read fails. */
static inline void
dime_rd_copy(struct dime_rd *r, uint8_t *dst, size_t n)
{
	const uint8_t *b = dime_rd_take(r, n);

	if (b == NULL)
		memset(dst, 0, n);
	else
		memcpy(dst, b, n);
}

/* Open a sub-reader over the next n bytes (a nested length). */
static inline void
dime_rd_sub(struct dime_rd *r, struct dime_rd *sub, size_t n)
{
	const uint8_t *b = dime_rd_take(r, n);

	dime_rd_init(sub, b, b == NULL ? 0 : n);
	if (b == NULL)
		sub->err = r->err;
}

/* Demand exact consumption. Returns: r->err, or DIME_E_TRAILING. */
static inline int
dime_rd_finish(struct dime_rd *r)
{
	if (r->err == DIME_OK && r->off != r->len)
		r->err = DIME_E_TRAILING;
	return r->err;
}

#endif

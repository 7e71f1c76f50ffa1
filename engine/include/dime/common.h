#ifndef DIME_ENGINE_COMMON_H
#define DIME_ENGINE_COMMON_H
/* Error codes, attribute macros and size helpers shared by every dime-opa module. */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every fallible function returns DIME_OK or one of these negative codes. */
enum dime_err {
	DIME_OK = 0,
	DIME_E_TRUNCATED = -1, /* input ended before a complete value */
	DIME_E_MALFORMED = -2, /* input violates the format */
	DIME_E_LIMIT = -3,     /* a length exceeds a named limit */
	DIME_E_TRAILING = -4,  /* bytes left over after a complete value */
	DIME_E_NOSPACE = -5,   /* caller's buffer too small */
	DIME_E_BADSIG = -6,    /* signature, MAC or padding check failed */
	DIME_E_CRYPTO = -7,    /* a crypto library call failed */
	DIME_E_NOMEM = -8,
	DIME_E_IO = -9,
	DIME_E_AGAIN = -10,
	DIME_E_NOTFOUND = -11, /* a named object does not exist */
	DIME_E_INVALID = -12   /* an argument or state the operation cannot use */
};

/* Returns: a static, lower-case description of code; never NULL. */
const char *dime_strerror(int code);

#if defined(__GNUC__)
#define DIME_MUST_CHECK __attribute__((warn_unused_result))
#else
#define DIME_MUST_CHECK
#endif

/* Inside the library our own NULL checks must survive, so nonnull is dropped there. */
#if defined(__GNUC__) && !defined(DIME_BUILDING)
#define DIME_NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))
#else
#define DIME_NONNULL(...)
#endif

/* Abort on a broken invariant or API misuse, in every build. */
#define DIME_ASSERT(cond)                                                                          \
	do {                                                                                       \
		if (!(cond))                                                                       \
			dime_assert_fail(#cond, __FILE__, __LINE__);                               \
	} while (0)
#ifdef DIME_DEBUG
#define DIME_DEBUG_ASSERT(cond) DIME_ASSERT(cond)
#else
#define DIME_DEBUG_ASSERT(cond) ((void)0)
#endif

/* Never returns: reports the failed assertion on stderr and aborts. */
void dime_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

/* *out = a + b. Returns: DIME_OK or DIME_E_LIMIT on overflow (*out is then SIZE_MAX). */
static inline int
dime_size_add(size_t *out, size_t a, size_t b)
{
	if (__builtin_add_overflow(a, b, out)) {
		*out = SIZE_MAX;
		return DIME_E_LIMIT;
	}
	return DIME_OK;
}

/* A borrowed byte range. */
struct dime_view {
	const uint8_t *p;
	size_t len;
};

#ifdef __cplusplus
}
#endif
#endif

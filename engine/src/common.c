/* Error strings and the assertion handler. The handler writes straight to fd 2 because the
 * engine has no stdio: it runs only on programmer error, right before abort(). */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dime/common.h"

const char *
dime_strerror(int code)
{
	switch (code) {
	case DIME_OK: return "ok";
	case DIME_E_TRUNCATED: return "truncated";
	case DIME_E_MALFORMED: return "malformed";
	case DIME_E_LIMIT: return "length over limit";
	case DIME_E_TRAILING: return "trailing bytes";
	case DIME_E_NOSPACE: return "buffer too small";
	case DIME_E_BADSIG: return "bad signature or checksum";
	case DIME_E_CRYPTO: return "crypto library failure";
	case DIME_E_NOMEM: return "out of memory";
	case DIME_E_IO: return "i/o error";
	case DIME_E_AGAIN: return "try again";
	case DIME_E_NOTFOUND: return "not found";
	case DIME_E_INVALID: return "invalid argument";
	default: return "unknown error";
	}
}

static void
common_put(const char *s)
{
	size_t n = strlen(s);

	while (n > 0) {
		ssize_t w = write(2, s, n);

		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

void
dime_assert_fail(const char *expr, const char *file, int line)
{
	char num[16];
	int i = (int)sizeof(num) - 1;
	unsigned v = line < 0 ? 0u : (unsigned)line;

	num[i] = 0;
	do {
		num[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0 && i > 0);
	common_put("dime: assertion failed: ");
	common_put(expr);
	common_put(" at ");
	common_put(file);
	common_put(":");
	common_put(num + i);
	common_put("\n");
	abort();
}

/* Fuzz the gzip codec. Input is read two ways: as a gzip member (whatever decompresses must
 * re-compress and come back identical, within the bomb cap; failures leave *out_len 0) and as
 * plaintext (compress, then decompress gives the input back, and zlib-free bounds hold). */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dime/crypto.h"
#include "fuzz_common.h"
#include "dime/gzip.h"

#define FUZZ_GZIP_CAP (1u << 18) /* the bomb limit under test */

static void
fuzz_gzip_round_trip(const uint8_t *data, size_t size)
{
	size_t bound = dime_gzip_bound(size), clen = 99, dlen = 99;
	uint8_t *gz = malloc(bound), *back = malloc(size + 1);

	if (gz == NULL || back == NULL)
		abort();
	if (dime_gzip_compress(gz, bound, &clen, data, size) != DIME_OK || clen > bound)
		abort();
	if (dime_gzip_decompress(back, size, &dlen, gz, clen) != DIME_OK || dlen != size ||
	    (size > 0 && memcmp(back, data, size) != 0))
		abort();
	if (size > 0 && dime_gzip_decompress(back, size - 1, &dlen, gz, clen) != DIME_E_NOSPACE)
		abort();
	free(gz);
	free(back);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *out = malloc(FUZZ_GZIP_CAP);
	size_t out_len = 99;
	uint32_t isize;
	int rc;

	if (out == NULL)
		abort();
	rc = dime_gzip_decompress(out, FUZZ_GZIP_CAP, &out_len, data, size);
	if (rc != DIME_OK) {
		if (out_len != 0 || (rc != DIME_E_MALFORMED && rc != DIME_E_TRUNCATED &&
				     rc != DIME_E_TRAILING && rc != DIME_E_NOSPACE))
			abort();
	} else {
		/* A valid member carries its length mod 2^32 in ISIZE, checked by the decoder. */
		if (out_len > FUZZ_GZIP_CAP || dime_gzip_isize(&isize, data, size) != DIME_OK ||
		    isize != (uint32_t)out_len)
			abort();
		fuzz_gzip_round_trip(out, out_len);
	}
	fuzz_gzip_round_trip(data, size);
	free(out);
	return 0;
}

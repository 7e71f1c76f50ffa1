/* Fuzz the MIME splitter and joiner. Any input splits (split_size agrees with split), every part
 * is a non-empty view inside the input, displays come before attachments, and join gives the
 * input back byte for byte, with the parts in wire order or attachments first alike. Then the input
 * is also fed to join as a chunk 34 (with a fixed chunk 33): it must not crash, and whatever it
 * accepts it accepts at the size it reported. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dime/crypto.h"
#include "fuzz_common.h"
#include "dime/mime.h"

static void
fuzz_mime_join_raw(const uint8_t *data, size_t size)
{
	static const struct dime_mime_part part = {DIME_MIME_DISPLAY, {(const uint8_t *)"x", 1}};
	static const char c33[] = "Date: d\r\nTo: t\r\nSubject: a b\r\n";
	struct dime_view common = {(const uint8_t *)c33, sizeof(c33) - 1};
	struct dime_view headers = {data, size};
	size_t need = 99, got = 99;
	uint8_t *out;
	int rc = dime_mime_join(NULL, 0, &need, common, headers, &part, 1);

	if (rc != DIME_OK) {
		if (need != 0)
			abort();
		return;
	}
	if ((out = malloc(need + 1)) == NULL)
		abort();
	if (dime_mime_join(out, need, &got, common, headers, &part, 1) != DIME_OK || got != need)
		abort();
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t buf_len, n_parts, got = 99;
	struct dime_mime_content c;
	struct dime_mime_part *parts, *rev;
	uint8_t *buf, *back;

	if (dime_mime_split_size(&buf_len, &n_parts, data, size) != DIME_OK)
		abort();
	buf = malloc(buf_len);
	parts = malloc(n_parts * sizeof(*parts) + 1);
	rev = malloc(n_parts * sizeof(*parts) + 1);
	back = malloc(size + 1);
	if (buf == NULL || parts == NULL || rev == NULL || back == NULL)
		abort();
	if (dime_mime_split(&c, buf, buf_len, parts, n_parts, data, size) != DIME_OK ||
	    c.n_parts != n_parts || c.n_display + c.n_attach != n_parts ||
	    c.headers.len + c.common.len != buf_len)
		abort();
	for (size_t i = 0; i < n_parts; i++) {
		const struct dime_mime_part *p = &c.parts[i];

		if (p->type != (i < c.n_display ? DIME_MIME_DISPLAY : DIME_MIME_ATTACH) ||
		    p->data.len == 0 || p->data.p < data || p->data.len > size ||
		    (size_t)(p->data.p - data) > size - p->data.len)
			abort();
		/* attachments first, each kind still in its own order */
		rev[i < c.n_display ? c.n_attach + i : i - c.n_display] = *p;
	}
	if (dime_mime_join(back, size, &got, c.common, c.headers, c.parts, c.n_parts) != DIME_OK ||
	    got != size || (size > 0 && memcmp(back, data, size) != 0))
		abort();
	if (dime_mime_join(back, size, &got, c.common, c.headers, rev, n_parts) != DIME_OK ||
	    got != size || (size > 0 && memcmp(back, data, size) != 0))
		abort();
	free(buf);
	free(parts);
	free(rev);
	free(back);
	fuzz_mime_join_raw(data, size);
	return 0;
}

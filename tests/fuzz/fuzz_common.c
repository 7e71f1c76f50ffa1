/* What the fuzz targets share: the one-time setup (the engine's global init, then the target's
 * own fuzz_setup() when it has one), and the whole-versus-bytes driver of the stateful
 * machines. */

#include <stdlib.h>
#include <string.h>

#include "dime/crypto.h"
#include "fuzz_common.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (dime_global_init() != DIME_OK)
		abort();
	if (fuzz_setup != NULL)
		fuzz_setup();
	return 0;
}

void
fuzz_out_keep(struct fuzz_out *o, const uint8_t *p, size_t n)
{
	if (o->len + n <= FUZZ_OUT_MAX) {
		memcpy(o->p + o->len, p, n);
		o->len += n;
	}
}

int
fuzz_whole_vs_bytes(const uint8_t *data, size_t size, fuzz_run_fn run)
{
	static struct fuzz_out whole, bytes;
	static uint8_t *buf_a, *buf_b;

	if (size < 1)
		return 0;
	if (buf_a == NULL) {
		buf_a = malloc(FUZZ_OUT_MAX);
		buf_b = malloc(FUZZ_OUT_MAX);
		FUZZ_CHECK(buf_a != NULL && buf_b != NULL);
	}
	memset(&whole, 0, sizeof(whole));
	memset(&bytes, 0, sizeof(bytes));
	whole.p = buf_a;
	bytes.p = buf_b;
	run(&whole, data[0], data + 1, size - 1, size);
	run(&bytes, data[0], data + 1, size - 1, 1);
	FUZZ_CHECK(whole.len == bytes.len && memcmp(whole.p, bytes.p, whole.len) == 0);
	return 0;
}

void
fuzz_reply_line(const uint8_t *line, size_t len, int *cont_code)
{
	int code;

	FUZZ_CHECK(len >= 4);
	for (size_t j = 0; j < 3; j++)
		FUZZ_CHECK(line[j] >= '0' && line[j] <= '9');
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	FUZZ_CHECK(code >= 200 && code <= 599);
	FUZZ_CHECK(line[3] == ' ' || line[3] == '-');
	if (*cont_code != 0)
		FUZZ_CHECK(code == *cont_code);
	*cont_code = line[3] == '-' ? code : 0;
	for (size_t j = 4; j < len; j++)
		FUZZ_CHECK(line[j] >= 0x20 && line[j] <= 0x7e);
}

#ifndef DIME_TESTS_FUZZ_COMMON_H
#define DIME_TESTS_FUZZ_COMMON_H
/* Shared by every fuzz target: the libFuzzer entry points, the one-time setup, and the
 * whole-versus-bytes driver of the stateful machines. */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "dime/common.h"

/* A broken invariant is a finding: abort so libFuzzer (and the replay) reports it. */
#define FUZZ_CHECK(c)                                                                              \
	do {                                                                                       \
		if (!(c))                                                                          \
			abort();                                                                   \
	} while (0)

/* Does view v lie inside data[0..size)? An empty view may point anywhere. */
static inline int
fuzz_inside(struct dime_view v, const uint8_t *data, size_t size)
{
	if (v.len == 0)
		return 1;
	return v.p >= data && v.len <= size && (size_t)(v.p - data) <= size - v.len;
}

/* ---- the whole-versus-bytes property of the stateful machines (sessions, clients, pfmap) ----
 * A machine fed its input whole must write the same bytes as one fed a byte at a time. */

#define FUZZ_OUT_MAX (1u << 20) /* what one run keeps of its output */

/* What one run wrote. */
struct fuzz_out {
	uint8_t *p; /* FUZZ_OUT_MAX octets */
	size_t len;
};

/* Keep p[0..n) after what o holds, unless that would pass FUZZ_OUT_MAX (then nothing of it:
 * both runs skip the same bytes, as long as they wrote the same before). */
void fuzz_out_keep(struct fuzz_out *o, const uint8_t *p, size_t n);

/* One run of a target's machine: cfg (the input's first octet) configures it, data[0..size) is
 * fed in pieces of at most chunk octets, and all it writes goes through fuzz_out_keep(out). */
typedef void (*fuzz_run_fn)(struct fuzz_out *out, uint8_t cfg, const uint8_t *data, size_t size,
			    size_t chunk);

/* A target's LLVMFuzzerTestOneInput: run over data[1..size) with cfg data[0], fed whole and then
 * a byte at a time; aborts unless both wrote the same bytes. Returns: 0. */
int fuzz_whole_vs_bytes(const uint8_t *data, size_t size, fuzz_run_fn run);

/* One reply line as the SMTP and DMTP sessions write it, without its line ending (RFC 5321
 * §4.2): a code 200..599, ' ' (the last line) or '-' (more follow), printable ASCII; a
 * continuation keeps the code of the line before. Aborts otherwise.
 * In/Out: cont_code: the code of an open multi-line reply, or 0. */
void fuzz_reply_line(const uint8_t *line, size_t len, int *cont_code);

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A target that needs more than dime_global_init() defines this; it runs once after it. */
void fuzz_setup(void) __attribute__((weak));

#endif

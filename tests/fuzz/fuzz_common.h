#ifndef DIME_TESTS_FUZZ_COMMON_H
#define DIME_TESTS_FUZZ_COMMON_H
/* Shared by every fuzz target: the libFuzzer entry points and the one-time setup. */

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

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A target that needs more than dime_global_init() defines this; it runs once after it. */
void fuzz_setup(void) __attribute__((weak));

#endif

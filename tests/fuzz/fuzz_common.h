#ifndef DIME_TESTS_FUZZ_COMMON_H
#define DIME_TESTS_FUZZ_COMMON_H
/* Shared by every fuzz target: the libFuzzer entry points and the one-time setup. */

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A target that needs more than dime_global_init() defines this; it runs once after it. */
void fuzz_setup(void) __attribute__((weak));

#endif

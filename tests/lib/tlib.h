#ifndef DIME_TESTS_TLIB_H
#define DIME_TESTS_TLIB_H
/* Shared helpers for the unit tests: failure reporting, guard-page copies, file loading. */

#include <stddef.h>
#include <stdint.h>

#define T_SKIP 77

extern int t_failures;

/* Report a failure ("got X, want Y" style) and keep going. */
void t_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define T_CHECK(cond, ...)                                                                         \
	do {                                                                                       \
		if (!(cond))                                                                       \
			t_fail(__VA_ARGS__);                                                       \
	} while (0)

/* Copy len bytes so that they end right before a PROT_NONE page: an overread faults even
 * without ASan. The copy stays valid until the next call with the same slot (0..3). */
const uint8_t *t_at_page_end(int slot, const void *src, size_t len);

/* Read a file under the shared interop folder (or an absolute path). Aborts the test when the
 * file is missing. Out: *len. Returns malloc'd bytes (NUL-terminated). */
uint8_t *t_read(const char *name, size_t *len);

/* Path of the interop folder (DIME_INTEROP_DIR or $DIME_INTEROP). */
const char *t_interop_dir(void);

/* Hex of a buffer into a static string (for messages). */
const char *t_hex(const uint8_t *p, size_t n);

/* The test's temporary directory, made by t_mkdtemp; PATH_MAX bytes. */
extern char t_dir[4096];

/* Create $TMPDIR/<tag>_XXXXXX (default /tmp) into t_dir. Returns 0, or -1 (reported). */
int t_mkdtemp(const char *tag);

/* t_dir/name in a static buffer, one of eight in turn: copy a result that must last. */
const char *t_path(const char *name);

/* Write text to path (created or truncated); a failure is reported. Returns: 0, or -1. */
int t_write_text(const char *path, const char *text);

/* Remove path and, for a directory, everything below it. */
void t_rm_rf(const char *path);

/* A reproducible xorshift64 stream for test inputs: the same sequence on every run unless
 * t_rand_seed changes it. Never for anything whose secrecy a test relies on. */
uint64_t t_rand(void);
/* Uniform enough below n for test inputs; 0 when n == 0. */
uint32_t t_rand_below(uint32_t n);
void t_rand_fill(uint8_t *p, size_t n);
/* Mix s into the stream's state (s == 0 leaves it as it is). */
void t_rand_seed(uint64_t s);

/* Initialise the engine (dime_global_init) or exit 1. */
void t_init(void);

/* Print the summary and return the process exit code. */
int t_done(const char *name);

#endif

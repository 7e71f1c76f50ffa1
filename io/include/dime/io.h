#ifndef DIME_IO_IO_H
#define DIME_IO_IO_H
/* File and ring I/O that knows nothing of DIME. Functions return 0 or -errno, as liburing does. */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Read a whole file (path "-" reads standard input) of at most max bytes into a malloc'd
 * buffer with one spare NUL byte after the data.
 * Returns: 0, -EFBIG (longer than max), or -errno. Out: *buf (caller frees), *len; NULL/0 on
 * failure. */
int dime_io_read_file(uint8_t **buf, size_t *len, const char *path, size_t max);

/* Write len bytes to path atomically: a temporary file in the same directory with mode, fsync,
 * rename, fsync of the directory. Returns: 0 or -errno (the temporary file is removed). */
int dime_io_write_file(const char *path, const void *buf, size_t len, mode_t mode);

/* Write all of buf to fd, retrying short writes and EINTR. Returns: 0 or -errno. */
int dime_io_write_all(int fd, const void *buf, size_t len);

/* Returns: 1 when this kernel lets the process set up an io_uring, 0 otherwise (seccomp,
 * kernel.io_uring_disabled, old kernel). */
int dime_io_uring_available(void);

#ifdef __cplusplus
}
#endif
#endif

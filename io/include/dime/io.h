#ifndef DIME_IO_IO_H
#define DIME_IO_IO_H
/* File and ring I/O that knows nothing of DIME. Functions return 0 or -errno, as liburing does. */

#include <pthread.h>
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

/* fsync n files at once: up to DIME_IO_FSYNC_THREADS threads (the caller and helpers started
 * for the call) each take the next fd until none is left. ext4 and xfs give fsyncs that wait
 * together one journal commit, and the device gets their flushes queued instead of one after
 * the other: a group commit's cost is about one fsync, not n. A helper that cannot start leaves
 * its share to the others. An fd < 0 is skipped (errs[i] left as it is).
 * Out: errs[i] = 0 or the -errno of fsync(fds[i]); EINTR is retried. */
#define DIME_IO_FSYNC_THREADS 16u
void dime_io_fsync_many(const int *fds, size_t n, int *errs);

/* A group commit: threads that each hold one item to make durable call dime_io_group_run; the
 * first to find no commit running leads: it takes every item queued at that moment (at most
 * DIME_IO_GROUP_MAX) and calls commit(ctx, items, n) once for them; the others wait, and whoever
 * is still waiting when it ends leads the next group. Each call returns once its own item was
 * committed (commit stores each item's result in the item). One caller alone costs a group of
 * one; many at once share one commit's fsyncs. */
#define DIME_IO_GROUP_MAX 64u
struct dime_io_group_waiter;
struct dime_io_group {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int busy;
	struct dime_io_group_waiter *head, *tail;
	void (*commit)(void *ctx, void **items, size_t n);
	void *ctx;
};
/* Returns: 0, -ENOMEM (or the pthread error). */
int dime_io_group_init(struct dime_io_group *g, void (*commit)(void *ctx, void **items, size_t n),
		       void *ctx);
void dime_io_group_destroy(struct dime_io_group *g); /* no call may be running */
void dime_io_group_run(struct dime_io_group *g, void *item);

/* Returns: 1 when this kernel lets the process set up an io_uring, 0 otherwise (seccomp,
 * kernel.io_uring_disabled, old kernel). */
int dime_io_uring_available(void);

#ifdef __cplusplus
}
#endif
#endif

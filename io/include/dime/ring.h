#ifndef DIME_IO_RING_H
#define DIME_IO_RING_H
/* Batched whole-file reads, atomic file writes and streaming reads through io_uring, with a
 * plain-syscall mode that gives identical results. Knows nothing of DIME.
 *
 * Thread-safety: a struct dime_ring belongs to one thread at a time (one per worker); distinct
 * rings may be used concurrently. Every call finishes all the I/O it started before it returns,
 * so the buffers and paths it borrows may be released as soon as it returns.
 * Errors are returned as -errno, as liburing does; error messages belong to callers. */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct dime_ring;

enum dime_ring_mode {
	DIME_RING_AUTO = 0,  /* io_uring when it can be set up and has every opcode we use */
	DIME_RING_URING = 1, /* io_uring or fail */
	DIME_RING_PLAIN = 2  /* open/fstat/read/write/fsync/rename */
};

/* Open a ring of depth submission entries (1..4096; the io_uring form uses at least 4, the
 * number of SQEs one file may need at once). depth also bounds the number of files open at once.
 * DIME_RING_AUTO uses io_uring when the kernel lets this process set one up
 * (dime_io_uring_available()) and it supports OPENAT, OPENAT2, STATX, READ, WRITE, CLOSE, FSYNC,
 * RENAMEAT and UNLINKAT with reads at the file position (Linux 5.11+); else the plain form.
 * Returns: 0, -EINVAL (depth), -ENOMEM, or with DIME_RING_URING the io_uring setup error
 *          (-EOPNOTSUPP when an opcode is missing).
 * Out: *r, returns owned (dime_ring_close); NULL on failure. */
int dime_ring_open(struct dime_ring **r, unsigned depth, enum dime_ring_mode mode);

/* Returns: 1 when r submits through io_uring, 0 in the plain form. */
int dime_ring_is_uring(const struct dime_ring *r);

/* Release r (NULL-safe). */
void dime_ring_close(struct dime_ring *r);

/* One whole-file read. */
struct dime_io_rd {
	const char *path; /* In: borrowed for the call */
	size_t max;	  /* In: largest accepted file, bytes */
	uint8_t *buf; /* Out: malloc'd data plus one NUL byte after it; caller frees. NULL on err */
	size_t len;   /* Out: bytes of data; 0 on err */
	int err;      /* Out: 0 or -errno */
	unsigned flags; /* In: 0 or DIME_IO_RD_NO_SYMLINKS */
};

/* Refuse a symbolic link anywhere in the path (openat2 RESOLVE_NO_SYMLINKS; O_NOFOLLOW, which
 * checks only the last component, on kernels without openat2): err -ELOOP. */
#define DIME_IO_RD_NO_SYMLINKS 1u

/* Read n whole files. A file is read to end of file, so files that report size 0 (/proc) or
 * grow while read work too; a regular file whose size is above max is refused before reading.
 * Per-item err: -EFBIG (more than max bytes), -EISDIR (a directory), -ENOMEM, or the -errno of
 * open/statx/read. Items are independent: one failure does not stop the others.
 * Returns: 0, or -errno when the ring itself failed (then every unfinished item has that err;
 *          finished items keep their results).
 * In/Out: v[0..n): outputs cleared at entry. */
int dime_ring_read_files(struct dime_ring *r, struct dime_io_rd *v, size_t n);

/* One atomic file write. */
struct dime_io_wr {
	const char *path; /* In: final name; borrowed */
	const void *buf;  /* In: len bytes (may be NULL when len is 0); borrowed */
	size_t len;
	unsigned mode; /* In: permission bits, set with fchmod (the umask does not apply) */
	int sync;      /* In: nonzero: fsync the file before the rename, and its directory after */
	int err;       /* Out: 0 or -errno */
};

/* Write n files atomically. Each goes to a new temporary file in the same directory,
 * ".<basename>.tmp.XXXXXX" (basename cut to 200 bytes; created with O_EXCL, retried on a name
 * clash), is fsync'ed when sync, closed, then renamed over path. On any error the temporary
 * file is removed and err set: nothing is ever created or replaced under path except by the
 * final rename of a complete file. When any item had sync, each distinct directory of the
 * renamed sync items is fsync'ed once at the end; a failure there (other than EINVAL, a file
 * system that refuses directory fsync, or EACCES opening the directory) sets err on those items
 * although their files are complete in place. Items with the same path: the last rename wins.
 * Per-item err: -ENOENT (missing directory), -EISDIR (path is a directory, or ends in '/'),
 * -ENAMETOOLONG, -EIO (write made no progress), or the -errno of open/write/fsync/close/rename.
 * Returns: 0, or -errno when the ring itself failed (unfinished items get that err; their
 *          temporary files are removed).
 * In/Out: v[0..n): err cleared at entry. */
int dime_ring_write_files(struct dime_ring *r, struct dime_io_wr *v, size_t n);

/* Read up to len bytes of fd at offset off (fd must support pread: a regular file or block
 * device). Short reads, EINTR and EAGAIN are retried, so fewer than len bytes means end of file.
 * Returns: bytes read (0..len), or -errno. */
ssize_t dime_ring_pread(struct dime_ring *r, int fd, void *buf, size_t len, uint64_t off);

/* Testing aid: cap the bytes of one read or write operation (default and upper bound 1 GiB),
 * which forces the short-transfer paths. bytes 0 restores the default. */
void dime_ring_set_io_max(struct dime_ring *r, size_t bytes);

#ifdef __cplusplus
}
#endif
#endif

/* Batched file I/O for the pipeline. Each file is a small state machine (open, statx, read,
 * close; or open a temporary, write, fsync, close, rename) whose operations run either as
 * io_uring SQEs batched across many files, or one by one as plain syscalls. Both forms drive the
 * same step function, so they give the same results. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/openat2.h>
#include <liburing.h>
#include <sys/syscall.h>

#include "dime/io.h"
#include "dime/ring.h"

#define RING_IO_MAX                                                                                \
	((size_t)1 << 30) /* bytes per read/write op: fits the SQE's u32 and int res               \
			   */
#define RING_DEPTH_MAX	  4096u
#define RING_DEPTH_MIN	  4u /* the most SQEs one file needs at once is 3 */
#define RING_RETRY_MAX	  1000u
#define RING_TMP_BASE_MAX 200 /* ".<base>.tmp.XXXXXX" must stay under NAME_MAX */
#define RING_TMP_TRIES	  100u
#define RING_GROW_FIRST	  ((size_t)65536)
#define RING_MAX_CLAMP	  (SIZE_MAX / 4) /* so cap * 2 and max + 2 never overflow */
#define RING_OFF_CUR	  ((uint64_t)-1) /* io_uring: use the file position (IORING_FEAT_RW_CUR_POS) */

enum ring_opcode {
	RING_OP_OPENAT = 1,
	RING_OP_STATX,
	RING_OP_READ,
	RING_OP_WRITE,
	RING_OP_FSYNC,
	RING_OP_CLOSE,
	RING_OP_RENAME,
	RING_OP_UNLINK
};

#define RING_LINK     1u /* a failure cancels the rest of the chain (IOSQE_IO_LINK) */
#define RING_HARDLINK 2u /* the next op runs even if this one fails (IOSQE_IO_HARDLINK) */

struct ring_op {
	enum ring_opcode code;
	unsigned link;
	int no_symlinks; /* OPENAT: openat2 with RESOLVE_NO_SYMLINKS */
	int fd;
	const char *path;
	const char *path2;
	int flags;
	unsigned mode;
	void *buf;
	unsigned len;
	uint64_t off;
};

enum ring_kind { RING_KIND_READ, RING_KIND_WRITE, RING_KIND_DSYNC };

enum ring_stage {
	RING_ST_DONE = 0,
	RING_RD_OPEN,
	RING_RD_STAT,
	RING_RD_READ,
	RING_RD_CLOSE,
	RING_WR_OPEN,
	RING_WR_WRITE,
	RING_WR_FINISH,
	RING_WR_RENAME,
	RING_WR_CLEANUP,
	RING_DS_OPEN,
	RING_DS_SYNC
};

/* One file in progress. Invariant: nops > 0 while busy; pending counts the SQEs of the current
 * chain still in flight (io_uring form only). */
struct ring_slot {
	int busy;
	int submitted;
	size_t job;
	enum ring_stage stage;
	int fd;
	unsigned tries;
	unsigned nops;
	unsigned pending;
	struct ring_op ops[3];
	int res[3];
	struct statx stx;
	struct open_how how; /* OPENAT with no_symlinks: read by the kernel at submission */
	/* reads */
	uint8_t *buf;
	size_t len, cap, max;
	uint64_t size;
	int isreg;
	unsigned req;
	/* writes */
	char *tmp;
	size_t tmp_rand; /* offset of the random suffix in tmp */
	size_t off;
	unsigned tmp_tries;
	unsigned sync_pos; /* 1 when the finish chain starts with an fsync */
};

/* A directory to fsync after a write batch, and the items renamed into it. */
struct ring_dir {
	char *dir;
	size_t idx;
};

struct ring_run {
	struct dime_ring *r;
	enum ring_kind kind;
	size_t n;
	struct dime_io_rd *rd;
	struct dime_io_wr *wr;
	struct ring_dir *dirs; /* DSYNC: sorted by dir; jobs are the first entry of each group */
	size_t *groups;	       /* DSYNC: job j covers dirs[groups[j] .. groups[j + 1]) */
};

struct dime_ring {
	int uring;
	int broken; /* 0 or the -errno that broke the ring; every later call returns it */
	unsigned depth;
	uint32_t gen;
	uint64_t name_seq; /* temporary names: splitmix64 state */
	size_t io_max;
	size_t n_slots;
	struct ring_slot *slots;
	struct io_uring ring;
};

static size_t
ring_min(size_t a, size_t b)
{
	return a < b ? a : b;
}

static int
ring_transient(int res)
{
	return res == -EINTR || res == -EAGAIN;
}

static struct ring_op *
ring_op_add(struct ring_slot *s, enum ring_opcode code, int fd, unsigned link)
{
	struct ring_op *op = &s->ops[s->nops++];

	memset(op, 0, sizeof(*op));
	op->code = code;
	op->fd = fd;
	op->link = link;
	return op;
}

/* A transient failure of a one-op stage: keep ops as they are so the op is resubmitted. */
static int
ring_again(struct ring_slot *s, int res)
{
	if (!ring_transient(res) || s->tries >= RING_RETRY_MAX)
		return 0;
	s->tries++;
	return 1;
}

static void
ring_stage_set(struct ring_slot *s, enum ring_stage st)
{
	s->stage = st;
	s->nops = 0;
	s->tries = 0;
}

/* --- reads --- */

static void
ring_rd_read_op(struct dime_ring *r, struct ring_slot *s)
{
	struct ring_op *op;

	ring_stage_set(s, RING_RD_READ);
	s->req = (unsigned)ring_min(s->cap - 1 - s->len, r->io_max);
	op = ring_op_add(s, RING_OP_READ, s->fd, 0);
	op->buf = s->buf + s->len;
	op->len = s->req;
	op->off = RING_OFF_CUR;
}

static void
ring_rd_close(struct ring_run *run, struct ring_slot *s, int err)
{
	struct dime_io_rd *v = &run->rd[s->job];

	if (err != 0) {
		v->err = err;
		free(s->buf);
		s->buf = NULL;
	}
	ring_stage_set(s, RING_RD_CLOSE);
	ring_op_add(s, RING_OP_CLOSE, s->fd, 0);
}

static void
ring_rd_start(struct ring_run *run, struct ring_slot *s)
{
	struct ring_op *op;

	s->fd = -1;
	s->buf = NULL;
	s->len = 0;
	s->max = ring_min(run->rd[s->job].max, RING_MAX_CLAMP);
	ring_stage_set(s, RING_RD_OPEN);
	op = ring_op_add(s, RING_OP_OPENAT, -1, 0);
	op->path = run->rd[s->job].path;
	op->flags = O_RDONLY | O_CLOEXEC;
	op->no_symlinks = (run->rd[s->job].flags & DIME_IO_RD_NO_SYMLINKS) != 0;
}

static void
ring_rd_step(struct ring_run *run, struct ring_slot *s)
{
	struct dime_io_rd *v = &run->rd[s->job];
	int res = s->res[0];
	size_t ncap;
	uint8_t *nb;
	struct ring_op *op;

	switch (s->stage) {
	case RING_RD_OPEN:
		if (ring_again(s, res))
			return;
		if (res < 0) {
			v->err = res;
			ring_stage_set(s, RING_ST_DONE);
			return;
		}
		s->fd = res;
		ring_stage_set(s, RING_RD_STAT);
		op = ring_op_add(s, RING_OP_STATX, s->fd, 0);
		op->path = "";
		op->flags = AT_EMPTY_PATH;
		return;
	case RING_RD_STAT:
		if (ring_again(s, res))
			return;
		if (res < 0) {
			ring_rd_close(run, s, res);
			return;
		}
		if (S_ISDIR(s->stx.stx_mode)) {
			ring_rd_close(run, s, -EISDIR);
			return;
		}
		s->isreg = S_ISREG(s->stx.stx_mode);
		s->size = s->stx.stx_size;
		if (s->isreg && s->size > s->max) {
			ring_rd_close(run, s, -EFBIG);
			return;
		}
		/* One byte past the expected size shows growth; one more holds the NUL. */
		s->cap = s->isreg ? (size_t)s->size + 2 : ring_min(RING_GROW_FIRST, s->max + 1) + 1;
		if ((s->buf = malloc(s->cap)) == NULL) {
			ring_rd_close(run, s, -ENOMEM);
			return;
		}
		ring_rd_read_op(run->r, s);
		return;
	case RING_RD_READ:
		if (ring_again(s, res))
			return;
		if (res < 0) {
			ring_rd_close(run, s, res);
			return;
		}
		s->len += (size_t)res;
		/* End of file: read returned 0, or a regular file came up short once its stat size
		 * was reached (a short count before that is only a short read: go on). */
		if (res == 0 || (s->isreg && (unsigned)res < s->req && s->len >= s->size)) {
			s->buf[s->len] = 0;
			v->buf = s->buf;
			v->len = s->len;
			s->buf = NULL;
			ring_rd_close(run, s, 0);
			return;
		}
		if (s->len == s->cap - 1) {
			if (s->len > s->max) {
				ring_rd_close(run, s, -EFBIG);
				return;
			}
			ncap = ring_min(s->cap * 2, s->max + 2);
			if ((nb = realloc(s->buf, ncap)) == NULL) {
				ring_rd_close(run, s, -ENOMEM);
				return;
			}
			s->buf = nb;
			s->cap = ncap;
		}
		ring_rd_read_op(run->r, s);
		return;
	case RING_RD_CLOSE:
		s->fd = -1; /* closed whatever close returned; a read-only close error is moot */
		ring_stage_set(s, RING_ST_DONE);
		return;
	default: abort();
	}
}

/* --- writes --- */

/* Temporary names need to be unlikely to clash, not secret: O_CREAT | O_EXCL makes a clash
 * (or a planted file or link) harmless, and a clash only costs a retry. So they come from a
 * per-ring counter through splitmix64, seeded once from the kernel at dime_ring_open, instead
 * of one getrandom system call per file. */
static void
ring_wr_rand(struct dime_ring *r, char *p, size_t n)
{
	static const char alpha[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	uint64_t x = (r->name_seq += 0x9e3779b97f4a7c15u);

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
	x ^= x >> 31;
	for (size_t i = 0; i < n; i++) {
		p[i] = alpha[x % (sizeof(alpha) - 1)];
		x /= sizeof(alpha) - 1;
	}
}

/* tmp = <dir>/.<base cut to RING_TMP_BASE_MAX>.tmp.XXXXXX. Returns: 0 or -errno. */
static int
ring_wr_tmpname(struct dime_ring *r, struct ring_slot *s, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t dlen = slash == NULL ? 0 : (size_t)(slash - path) + 1;
	const char *base = path + dlen;
	size_t blen = strlen(base), tlen;

	if (path[0] == 0)
		return -ENOENT;
	if (blen == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return -EISDIR;
	if (blen > RING_TMP_BASE_MAX)
		blen = RING_TMP_BASE_MAX;
	tlen = dlen + 1 + blen + 5 + 6;
	if (tlen >= PATH_MAX)
		return -ENAMETOOLONG;
	if ((s->tmp = malloc(tlen + 1)) == NULL)
		return -ENOMEM;
	memcpy(s->tmp, path, dlen);
	s->tmp[dlen] = '.';
	memcpy(s->tmp + dlen + 1, base, blen);
	memcpy(s->tmp + dlen + 1 + blen, ".tmp.", 5);
	s->tmp_rand = dlen + 1 + blen + 5;
	ring_wr_rand(r, s->tmp + s->tmp_rand, 6);
	s->tmp[tlen] = 0;
	return 0;
}

static void
ring_wr_cleanup(struct ring_run *run, struct ring_slot *s, int err)
{
	struct ring_op *op;

	if (err != 0 && run->wr[s->job].err == 0)
		run->wr[s->job].err = err;
	ring_stage_set(s, RING_WR_CLEANUP);
	if (s->fd >= 0)
		ring_op_add(s, RING_OP_CLOSE, s->fd, RING_HARDLINK);
	op = ring_op_add(s, RING_OP_UNLINK, -1, 0);
	op->path = s->tmp;
}

static void
ring_wr_write_op(struct ring_run *run, struct ring_slot *s)
{
	const struct dime_io_wr *v = &run->wr[s->job];
	struct ring_op *op;

	ring_stage_set(s, RING_WR_WRITE);
	op = ring_op_add(s, RING_OP_WRITE, s->fd, 0);
	op->buf = (uint8_t *)(uintptr_t)v->buf + s->off;
	op->len = (unsigned)ring_min(v->len - s->off, run->r->io_max);
	op->off = RING_OFF_CUR;
}

/* fsync (when asked), close, rename: linked, so the rename runs only after both succeeded. */
static void
ring_wr_finish_ops(struct ring_run *run, struct ring_slot *s)
{
	struct ring_op *op;

	ring_stage_set(s, RING_WR_FINISH);
	s->sync_pos = run->wr[s->job].sync ? 1 : 0;
	if (s->sync_pos)
		ring_op_add(s, RING_OP_FSYNC, s->fd, RING_LINK);
	ring_op_add(s, RING_OP_CLOSE, s->fd, RING_LINK);
	op = ring_op_add(s, RING_OP_RENAME, -1, 0);
	op->path = s->tmp;
	op->path2 = run->wr[s->job].path;
}

static void
ring_wr_rename_op(struct ring_run *run, struct ring_slot *s)
{
	struct ring_op *op;

	ring_stage_set(s, RING_WR_RENAME);
	op = ring_op_add(s, RING_OP_RENAME, -1, 0);
	op->path = s->tmp;
	op->path2 = run->wr[s->job].path;
}

static void
ring_wr_start(struct ring_run *run, struct ring_slot *s)
{
	struct dime_io_wr *v = &run->wr[s->job];
	struct ring_op *op;
	int rc;

	s->fd = -1;
	s->tmp = NULL;
	s->off = 0;
	s->tmp_tries = 0;
	if (v->len > 0 && v->buf == NULL)
		rc = -EFAULT;
	else
		rc = ring_wr_tmpname(run->r, s, v->path);
	if (rc < 0) {
		v->err = rc;
		ring_stage_set(s, RING_ST_DONE);
		return;
	}
	ring_stage_set(s, RING_WR_OPEN);
	op = ring_op_add(s, RING_OP_OPENAT, -1, 0);
	op->path = s->tmp;
	op->flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
	op->mode = 0600;
}

static void
ring_wr_step(struct ring_run *run, struct ring_slot *s)
{
	struct dime_io_wr *v = &run->wr[s->job];
	int res = s->res[0], rf, rc, rr;

	switch (s->stage) {
	case RING_WR_OPEN:
		if (ring_again(s, res))
			return;
		if (res == -EEXIST && s->tmp_tries < RING_TMP_TRIES) {
			s->tmp_tries++; /* ops[0].path is s->tmp: a new suffix and resubmit */
			ring_wr_rand(run->r, s->tmp + s->tmp_rand, 6);
			return;
		}
		if (res < 0) {
			v->err = res; /* nothing was created */
			free(s->tmp);
			s->tmp = NULL;
			ring_stage_set(s, RING_ST_DONE);
			return;
		}
		s->fd = res;
		/* The one synchronous call: io_uring has no fchmod, and the umask must not apply.
		 */
		if (fchmod(s->fd, (mode_t)(v->mode & 07777)) < 0) {
			ring_wr_cleanup(run, s, -errno);
			return;
		}
		if (v->len == 0)
			ring_wr_finish_ops(run, s);
		else
			ring_wr_write_op(run, s);
		return;
	case RING_WR_WRITE:
		if (ring_again(s, res))
			return;
		if (res <= 0) {
			ring_wr_cleanup(run, s, res < 0 ? res : -EIO);
			return;
		}
		s->off += (size_t)res;
		if (s->off < v->len)
			ring_wr_write_op(run, s);
		else
			ring_wr_finish_ops(run, s);
		return;
	case RING_WR_FINISH:
		rf = s->sync_pos ? s->res[0] : 0;
		rc = s->res[s->sync_pos];
		rr = s->res[s->sync_pos + 1];
		if (rc != -ECANCELED)
			s->fd = -1; /* close released the fd, even when it failed */
		if (rf < 0) {
			if (ring_transient(rf) && s->fd >= 0 && s->tries < RING_RETRY_MAX) {
				unsigned t = s->tries + 1;

				ring_wr_finish_ops(run, s);
				s->tries = t;
				return;
			}
			ring_wr_cleanup(run, s, rf);
			return;
		}
		if (rc < 0) {
			ring_wr_cleanup(run, s, rc);
			return;
		}
		if (rr < 0) {
			if (ring_transient(rr)) {
				ring_wr_rename_op(run, s);
				s->tries = 1;
				return;
			}
			ring_wr_cleanup(run, s, rr);
			return;
		}
		free(s->tmp);
		s->tmp = NULL;
		ring_stage_set(s, RING_ST_DONE);
		return;
	case RING_WR_RENAME:
		if (ring_again(s, res))
			return;
		if (res < 0) {
			ring_wr_cleanup(run, s, res);
			return;
		}
		free(s->tmp);
		s->tmp = NULL;
		ring_stage_set(s, RING_ST_DONE);
		return;
	case RING_WR_CLEANUP:
		/* A cancelled close (its chain head failed) leaves the fd open: close it here. */
		if (s->ops[0].code == RING_OP_CLOSE && s->res[0] == -ECANCELED)
			close(s->fd);
		s->fd = -1;
		free(s->tmp);
		s->tmp = NULL;
		ring_stage_set(s, RING_ST_DONE);
		return;
	default: abort();
	}
}

/* --- directory fsync after a write batch --- */

static void
ring_ds_group_err(struct ring_run *run, size_t job, int err)
{
	for (size_t k = run->groups[job]; k < run->groups[job + 1]; k++)
		if (run->wr[run->dirs[k].idx].err == 0)
			run->wr[run->dirs[k].idx].err = err;
}

static void
ring_ds_start(struct ring_run *run, struct ring_slot *s)
{
	struct ring_op *op;

	s->fd = -1;
	ring_stage_set(s, RING_DS_OPEN);
	op = ring_op_add(s, RING_OP_OPENAT, -1, 0);
	op->path = run->dirs[run->groups[s->job]].dir;
	op->flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
}

static void
ring_ds_step(struct ring_run *run, struct ring_slot *s)
{
	int res = s->res[0];
	unsigned t;

	switch (s->stage) {
	case RING_DS_OPEN:
		if (ring_again(s, res))
			return;
		if (res < 0) {
			/* A directory we may write but not read cannot be opened to fsync it. */
			if (res != -EACCES && res != -EPERM)
				ring_ds_group_err(run, s->job, res);
			ring_stage_set(s, RING_ST_DONE);
			return;
		}
		s->fd = res;
		t = s->tries;
		ring_stage_set(s, RING_DS_SYNC);
		s->tries = t;
		ring_op_add(s, RING_OP_FSYNC, s->fd, RING_HARDLINK);
		ring_op_add(s, RING_OP_CLOSE, s->fd, 0);
		return;
	case RING_DS_SYNC:
		if (s->res[1] == -ECANCELED)
			close(s->fd);
		s->fd = -1;
		if (ring_transient(res) && s->tries < RING_RETRY_MAX) {
			t = s->tries + 1;
			ring_ds_start(run, s); /* the fd is gone: reopen */
			s->tries = t;
			return;
		}
		if (res < 0 && res != -EINVAL) /* EINVAL: the file system refuses directory fsync */
			ring_ds_group_err(run, s->job, res);
		ring_stage_set(s, RING_ST_DONE);
		return;
	default: abort();
	}
}

static void
ring_start(struct ring_run *run, struct ring_slot *s, size_t job)
{
	memset(s, 0, sizeof(*s));
	s->busy = 1;
	s->job = job;
	if (run->kind == RING_KIND_READ)
		ring_rd_start(run, s);
	else if (run->kind == RING_KIND_WRITE)
		ring_wr_start(run, s);
	else
		ring_ds_start(run, s);
}

static void
ring_step(struct ring_run *run, struct ring_slot *s)
{
	if (run->kind == RING_KIND_READ)
		ring_rd_step(run, s);
	else if (run->kind == RING_KIND_WRITE)
		ring_wr_step(run, s);
	else
		ring_ds_step(run, s);
}

/* --- plain executor --- */

static int
ring_plain_op(struct ring_slot *s, const struct ring_op *op)
{
	struct stat st;
	ssize_t n;
	int rc;

	switch (op->code) {
	case RING_OP_OPENAT:
		if (op->no_symlinks) {
			struct open_how how = {.flags = (uint64_t)op->flags,
					       .resolve = RESOLVE_NO_SYMLINKS};

			rc = (int)syscall(SYS_openat2, AT_FDCWD, op->path, &how, sizeof(how));
			if (rc >= 0 || errno != ENOSYS)
				return rc < 0 ? -errno : rc;
			rc = open(op->path, op->flags | O_NOFOLLOW);
			return rc < 0 ? -errno : rc;
		}
		rc = open(op->path, op->flags, (mode_t)op->mode);
		return rc < 0 ? -errno : rc;
	case RING_OP_STATX:
		if (fstat(op->fd, &st) < 0)
			return -errno;
		memset(&s->stx, 0, sizeof(s->stx));
		s->stx.stx_mode = (uint16_t)st.st_mode;
		s->stx.stx_size = (uint64_t)st.st_size;
		return 0;
	case RING_OP_READ:
		n = op->off == RING_OFF_CUR ? read(op->fd, op->buf, op->len)
					    : pread(op->fd, op->buf, op->len, (off_t)op->off);
		return n < 0 ? -errno : (int)n;
	case RING_OP_WRITE: n = write(op->fd, op->buf, op->len); return n < 0 ? -errno : (int)n;
	case RING_OP_FSYNC: return fsync(op->fd) < 0 ? -errno : 0;
	case RING_OP_CLOSE: return close(op->fd) < 0 ? -errno : 0;
	case RING_OP_RENAME: return rename(op->path, op->path2) < 0 ? -errno : 0;
	case RING_OP_UNLINK: return unlink(op->path) < 0 ? -errno : 0;
	}
	abort();
}

/* Run s's chain with io_uring's link rules: after a failed LINK op, the rest are -ECANCELED. */
static void
ring_plain_chain(struct ring_slot *s)
{
	int cancel = 0;

	for (unsigned i = 0; i < s->nops; i++) {
		const struct ring_op *op = &s->ops[i];

		s->res[i] = cancel ? -ECANCELED : ring_plain_op(s, op);
		if (s->res[i] < 0 && !(op->link & RING_HARDLINK))
			cancel = cancel || (op->link & RING_LINK) != 0 || s->res[i] == -ECANCELED;
	}
}

static int
ring_run_plain(struct ring_run *run)
{
	struct ring_slot *s = &run->r->slots[0];

	for (size_t j = 0; j < run->n; j++) {
		ring_start(run, s, j);
		while (s->stage != RING_ST_DONE) {
			ring_plain_chain(s);
			ring_step(run, s);
		}
		s->busy = 0;
	}
	return 0;
}

/* --- io_uring executor --- */

/* Would io_uring hand this chain to an io-wq worker thread instead of running it inline?
 * STATX, RENAMEAT and UNLINKAT always go to io-wq, and so does an OPENAT that may create
 * (O_CREAT cannot be tried non-blocking). Each such op costs two context switches and a
 * worker wake-up, more than the system call itself: measured on small files, the ring form
 * spent 5x the system time of the plain form. Those chains run as plain system calls on the
 * calling thread instead. A chain with an FSYNC stays in the ring: there io-wq runs the
 * group's fsyncs in parallel, which is the point. */
static int
ring_would_punt(const struct ring_slot *s)
{
	int punt = 0;

	for (unsigned k = 0; k < s->nops; k++)
		switch (s->ops[k].code) {
		case RING_OP_FSYNC: return 0;
		case RING_OP_STATX:
		case RING_OP_RENAME:
		case RING_OP_UNLINK: punt = 1; break;
		case RING_OP_OPENAT: punt |= (s->ops[k].flags & O_CREAT) != 0; break;
		default: break;
		}
	return punt;
}

static void
ring_inline(struct ring_run *run, struct ring_slot *s)
{
	while (s->stage != RING_ST_DONE && ring_would_punt(s)) {
		ring_plain_chain(s);
		ring_step(run, s);
	}
}

/* user_data: gen:24 | pos:8 | slot:32. A stale generation (left by a broken run) is dropped. */
static uint64_t
ring_tag(uint32_t gen, unsigned pos, size_t slot)
{
	return (uint64_t)(gen & 0xffffffu) << 40 | (uint64_t)(pos & 0xffu) << 32 | (uint32_t)slot;
}

static void
ring_prep(struct io_uring_sqe *sqe, struct ring_slot *s, const struct ring_op *op)
{
	switch (op->code) {
	case RING_OP_OPENAT:
		if (op->no_symlinks) {
			memset(&s->how, 0, sizeof(s->how));
			s->how.flags = (uint64_t)op->flags;
			s->how.resolve = RESOLVE_NO_SYMLINKS;
			io_uring_prep_openat2(sqe, AT_FDCWD, op->path, &s->how);
		} else {
			io_uring_prep_openat(sqe, AT_FDCWD, op->path, op->flags, (mode_t)op->mode);
		}
		break;
	case RING_OP_STATX:
		io_uring_prep_statx(sqe, op->fd, op->path, op->flags,
				    STATX_TYPE | STATX_MODE | STATX_SIZE, &s->stx);
		break;
	case RING_OP_READ: io_uring_prep_read(sqe, op->fd, op->buf, op->len, op->off); break;
	case RING_OP_WRITE: io_uring_prep_write(sqe, op->fd, op->buf, op->len, op->off); break;
	case RING_OP_FSYNC: io_uring_prep_fsync(sqe, op->fd, 0); break;
	case RING_OP_CLOSE: io_uring_prep_close(sqe, op->fd); break;
	case RING_OP_RENAME:
		io_uring_prep_renameat(sqe, AT_FDCWD, op->path, AT_FDCWD, op->path2, 0);
		break;
	case RING_OP_UNLINK: io_uring_prep_unlinkat(sqe, AT_FDCWD, op->path, 0); break;
	}
	if (op->link & RING_HARDLINK)
		io_uring_sqe_set_flags(sqe, IOSQE_IO_HARDLINK);
	else if (op->link & RING_LINK)
		io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK);
}

/* The ring failed: give every unfinished job err and release what is safe to release. Buffers
 * of chains still in flight are left allocated: the kernel may still write into them. */
static void
ring_abandon(struct ring_run *run, size_t next, int err)
{
	struct dime_ring *r = run->r;

	for (size_t i = 0; i < r->n_slots; i++) {
		struct ring_slot *s = &r->slots[i];

		if (!s->busy)
			continue;
		if (run->kind == RING_KIND_READ) {
			if (run->rd[s->job].err == 0 && run->rd[s->job].buf == NULL)
				run->rd[s->job].err = err; /* a buffer handed over is complete */
			if (!s->submitted)
				free(s->buf);
		} else if (run->kind == RING_KIND_WRITE) {
			if (run->wr[s->job].err == 0)
				run->wr[s->job].err = err;
			if (s->tmp != NULL)
				unlink(s->tmp);
			if (!s->submitted)
				free(s->tmp);
		} else {
			ring_ds_group_err(run, s->job, err);
		}
		if (!s->submitted && s->fd >= 0)
			close(s->fd);
		s->busy = 0;
	}
	for (; next < run->n; next++) {
		if (run->kind == RING_KIND_READ)
			run->rd[next].err = err;
		else if (run->kind == RING_KIND_WRITE)
			run->wr[next].err = err;
		else
			ring_ds_group_err(run, next, err);
	}
	r->broken = err;
}

static int
ring_run_uring(struct ring_run *run)
{
	struct dime_ring *r = run->r;
	size_t next = 0, active = 0;
	unsigned inflight = 0, stuck = 0;
	uint32_t gen = ++r->gen & 0xffffffu;

	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int ret;

		/* Finish started files before opening new ones: at most n_slots files are open. */
		for (size_t i = 0; i < r->n_slots; i++) {
			struct ring_slot *s = &r->slots[i];

			for (;;) {
				if (s->busy && !s->submitted)
					ring_inline(run, s);
				if (s->busy && s->stage == RING_ST_DONE) {
					s->busy = 0;
					active--;
				}
				if (s->busy || next >= run->n)
					break;
				ring_start(run, s, next++); /* may be done at once (bad path) */
				active++;
			}
			if (!s->busy || s->submitted || inflight + s->nops > r->depth)
				continue;
			if (s->ops[s->nops - 1].link !=
			    0) /* would link into the next slot's chain */
				abort();
			for (unsigned k = 0; k < s->nops; k++) {
				struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);

				if (sqe == NULL) { /* cannot happen: inflight <= depth <= SQ size */
					ring_abandon(run, next, -EBUSY);
					return -EBUSY;
				}
				ring_prep(sqe, s, &s->ops[k]);
				io_uring_sqe_set_data64(sqe, ring_tag(gen, k, i));
			}
			s->submitted = 1;
			s->pending = s->nops;
			inflight += s->nops;
		}
		if (active == 0 && next >= run->n)
			break;
		if (inflight == 0) /* broken invariant: a busy slot always fits an empty ring */
			abort();
		ret = io_uring_submit_and_wait(&r->ring, 1);
		if (ret < 0) {
			/* EINTR: a signal; EAGAIN/EBUSY: the kernel is short of resources or the CQ
			 * is backed up; reaping below makes room. Anything else breaks the ring. */
			if (!(ret == -EINTR || ret == -EAGAIN || ret == -EBUSY) ||
			    ++stuck > RING_RETRY_MAX) {
				ring_abandon(run, next, ret);
				return ret;
			}
		} else {
			stuck = 0;
		}
		io_uring_for_each_cqe(&r->ring, head, cqe)
		{
			uint64_t tag = io_uring_cqe_get_data64(cqe);
			size_t i = (uint32_t)tag;
			unsigned pos = (unsigned)(tag >> 32) & 0xffu;
			struct ring_slot *s;

			seen++;
			if ((uint32_t)(tag >> 40) != gen || i >= r->n_slots)
				continue;
			s = &r->slots[i];
			if (!s->busy || !s->submitted || pos >= s->nops || s->pending == 0)
				continue;
			s->res[pos] = cqe->res;
			inflight--;
			if (--s->pending == 0) {
				s->submitted = 0;
				ring_step(run, s);
			}
		}
		io_uring_cq_advance(&r->ring, seen);
	}
	return 0;
}

static int
ring_run(struct ring_run *run)
{
	if (run->r->broken != 0)
		return run->r->broken;
	if (run->n == 0)
		return 0;
	return run->r->uring ? ring_run_uring(run) : ring_run_plain(run);
}

/* --- public API --- */

static int
ring_uring_setup(struct dime_ring *r, unsigned entries)
{
	static const int need[] = {IORING_OP_OPENAT, IORING_OP_OPENAT2,	 IORING_OP_STATX,
				   IORING_OP_READ,   IORING_OP_WRITE,	 IORING_OP_CLOSE,
				   IORING_OP_FSYNC,  IORING_OP_RENAMEAT, IORING_OP_UNLINKAT};
	struct io_uring_probe *p;
	int rc;

	/* SUBMIT_ALL (5.18): one bad SQE does not hold back the rest of the batch. */
	rc = io_uring_queue_init(entries, &r->ring, IORING_SETUP_SUBMIT_ALL);
	if (rc == -EINVAL)
		rc = io_uring_queue_init(entries, &r->ring, 0);
	if (rc < 0)
		return rc;
	rc = 0;
	if (!(r->ring.features & IORING_FEAT_RW_CUR_POS) ||
	    (p = io_uring_get_probe_ring(&r->ring)) == NULL) {
		rc = -EOPNOTSUPP;
	} else {
		for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
			if (!io_uring_opcode_supported(p, need[i]))
				rc = -EOPNOTSUPP;
		io_uring_free_probe(p);
	}
	if (rc < 0)
		io_uring_queue_exit(&r->ring);
	return rc;
}

int
dime_ring_open(struct dime_ring **out, unsigned depth, enum dime_ring_mode mode)
{
	struct dime_ring *r;
	int rc;

	*out = NULL;
	if (depth == 0 || depth > RING_DEPTH_MAX ||
	    (mode != DIME_RING_AUTO && mode != DIME_RING_URING && mode != DIME_RING_PLAIN))
		return -EINVAL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -ENOMEM;
	r->io_max = RING_IO_MAX;
	r->depth = depth < RING_DEPTH_MIN ? RING_DEPTH_MIN : depth;
	if (getrandom(&r->name_seq, sizeof(r->name_seq), GRND_NONBLOCK) != sizeof(r->name_seq)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		r->name_seq = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^
			      (uint64_t)getpid() << 20 ^ (uint64_t)(uintptr_t)r;
	}
	if (mode != DIME_RING_PLAIN) {
		/* AUTO tries the setup itself rather than dime_io_uring_available(): same test,
		 * one ring fewer, and it also checks the opcodes. */
		rc = ring_uring_setup(r, r->depth);
		if (rc < 0 && mode == DIME_RING_URING) {
			free(r);
			return rc;
		}
		r->uring = rc == 0;
	}
	r->n_slots = r->uring ? r->depth : 1;
	if ((r->slots = calloc(r->n_slots, sizeof(*r->slots))) == NULL) {
		if (r->uring)
			io_uring_queue_exit(&r->ring);
		free(r);
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

int
dime_ring_is_uring(const struct dime_ring *r)
{
	return r->uring;
}

void
dime_ring_close(struct dime_ring *r)
{
	if (r == NULL)
		return;
	if (r->uring)
		io_uring_queue_exit(&r->ring);
	free(r->slots);
	free(r);
}

void
dime_ring_set_io_max(struct dime_ring *r, size_t bytes)
{
	r->io_max = bytes == 0 || bytes > RING_IO_MAX ? RING_IO_MAX : bytes;
}

int
dime_ring_read_files(struct dime_ring *r, struct dime_io_rd *v, size_t n)
{
	struct ring_run run = {.r = r, .kind = RING_KIND_READ, .n = n, .rd = v};

	for (size_t i = 0; i < n; i++) {
		v[i].buf = NULL;
		v[i].len = 0;
		v[i].err = 0;
	}
	return ring_run(&run);
}

static int
ring_dir_cmp(const void *a, const void *b)
{
	const struct ring_dir *x = a, *y = b;
	int c = strcmp(x->dir, y->dir);

	return c != 0 ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

/* fsync each distinct directory of the sync items that were renamed. */
static int
ring_wr_dirsync(struct dime_ring *r, struct dime_io_wr *v, size_t n)
{
	struct ring_run run = {.r = r, .kind = RING_KIND_DSYNC, .wr = v};
	size_t nd = 0, ng = 0;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		nd += v[i].sync && v[i].err == 0;
	if (nd == 0)
		return 0;
	run.dirs = calloc(nd, sizeof(*run.dirs));
	run.groups = calloc(nd + 1, sizeof(*run.groups));
	if (run.dirs == NULL || run.groups == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	nd = 0;
	for (size_t i = 0; i < n; i++) {
		const char *slash;
		size_t dl;

		if (!v[i].sync || v[i].err != 0)
			continue;
		slash = strrchr(v[i].path, '/');
		dl = slash == NULL ? 1 : slash == v[i].path ? 1 : (size_t)(slash - v[i].path);
		if ((run.dirs[nd].dir = malloc(dl + 1)) == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		memcpy(run.dirs[nd].dir, slash == NULL ? "." : v[i].path, dl);
		run.dirs[nd].dir[dl] = 0;
		run.dirs[nd++].idx = i;
	}
	qsort(run.dirs, nd, sizeof(*run.dirs), ring_dir_cmp);
	for (size_t k = 0; k < nd; k++)
		if (k == 0 || strcmp(run.dirs[k].dir, run.dirs[k - 1].dir) != 0)
			run.groups[ng++] = k;
	run.groups[ng] = nd;
	run.n = ng;
	rc = ring_run(&run);
out:
	if (rc == -ENOMEM) /* durability unknown: say so on every item that asked for it */
		for (size_t i = 0; i < n; i++)
			if (v[i].sync && v[i].err == 0)
				v[i].err = rc;
	if (run.dirs != NULL)
		for (size_t k = 0; k < nd; k++)
			free(run.dirs[k].dir);
	free(run.dirs);
	free(run.groups);
	return rc == -ENOMEM ? 0 : rc;
}

int
dime_ring_write_files(struct dime_ring *r, struct dime_io_wr *v, size_t n)
{
	struct ring_run run = {.r = r, .kind = RING_KIND_WRITE, .n = n, .wr = v};
	int rc;

	for (size_t i = 0; i < n; i++)
		v[i].err = 0;
	if ((rc = ring_run(&run)) < 0)
		return rc;
	return ring_wr_dirsync(r, v, n);
}

ssize_t
dime_ring_pread(struct dime_ring *r, int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	size_t done = 0;
	unsigned tries = 0;

	if (r->broken != 0)
		return r->broken;
	if (len > SSIZE_MAX || off > (uint64_t)INT64_MAX)
		return -EINVAL;
	while (done < len) {
		unsigned req = (unsigned)ring_min(len - done, r->io_max);
		int res;

		if (!r->uring) {
			ssize_t k = pread(fd, p + done, req, (off_t)(off + done));

			res = k < 0 ? -errno : (int)k;
		} else {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
			struct io_uring_cqe *cqe;
			uint32_t gen = ++r->gen & 0xffffffu;
			uint64_t tag = ring_tag(gen, 0, 0);
			int ret;

			if (sqe == NULL)
				return -EBUSY;
			io_uring_prep_read(sqe, fd, p + done, req, off + done);
			io_uring_sqe_set_data64(sqe, tag);
			do
				ret = io_uring_submit(&r->ring);
			while (ret == -EINTR);
			for (;;) {
				uint64_t got;

				if (ret >= 0)
					ret = io_uring_wait_cqe(&r->ring, &cqe);
				if (ret == -EINTR) {
					ret = 0;
					continue;
				}
				if (ret < 0) {
					/* The read may be in flight into buf, or stuck in the SQ:
					 * this ring is done. */
					r->broken = ret;
					return ret;
				}
				got = io_uring_cqe_get_data64(cqe);
				res = cqe->res;
				io_uring_cqe_seen(&r->ring, cqe);
				if (got == tag)
					break;
			}
		}
		if (ring_transient(res) && tries++ < RING_RETRY_MAX)
			continue;
		if (res < 0)
			return res;
		if (res == 0)
			break;
		done += (size_t)res;
	}
	return (ssize_t)done;
}

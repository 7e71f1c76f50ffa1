/* The durable spool: tmp/ (O_EXCL, write, fsync) → rename into queue/ → fsync(queue/) before
 * the caller may answer 254 (ECOSYSTEM.md §6.1: Postfix's rule, plus the directory fsync that
 * a plain rename needs on ext4/xfs). A spooled file is two envelope lines then the message. */
#include "spool_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dime/io.h"

#define SPOOL_RCPT "Recipient: "
#define SPOOL_ORIG "Origin: "
/* The files one dime_spool_put_many slice writes and fsyncs together (queue/ once per slice). */
#define SPOOL_GROUP_MAX DIME_IO_GROUP_MAX

static void spool_commit(void *ctx, void **items, size_t n);

static int
spool_mkdir_open(int dirfd, const char *name, char *why, size_t why_cap, const char *root)
{
	int fd;

	if (mkdirat(dirfd, name, 0700) != 0 && errno != EEXIST)
		goto fail;
	if ((fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		goto fail;
	return fd;
fail:
	snprintf(why, why_cap, "spool %s/%s: %s", root, name, strerror(errno));
	return -1;
}

/* tmp/ only ever holds files whose rename never happened: never acknowledged, so removed. */
static int
spool_recover(struct dime_spool *s, char *why, size_t why_cap)
{
	int fd = dup(s->tmp_fd);
	DIR *d;
	struct dirent *e;

	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		snprintf(why, why_cap, "spool %s/tmp: %s", s->root, strerror(errno));
		return DIME_E_IO;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (unlinkat(s->tmp_fd, e->d_name, 0) != 0 && errno != ENOENT) {
			snprintf(why, why_cap, "spool %s/tmp/%s: %s", s->root, e->d_name,
				 strerror(errno));
			closedir(d);
			return DIME_E_IO;
		}
	}
	closedir(d);
	if (fsync(s->tmp_fd) != 0 && errno != EINVAL) {
		snprintf(why, why_cap, "spool %s/tmp: fsync: %s", s->root, strerror(errno));
		return DIME_E_IO;
	}
	return DIME_OK;
}

int
dime_spool_open(struct dime_spool **out, const char *root, char *why, size_t why_cap)
{
	struct dime_spool *s;
	int rc = DIME_E_IO;

	*out = NULL;
	if (why_cap > 0)
		why[0] = '\0';
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return DIME_E_NOMEM;
	s->root_fd = s->tmp_fd = s->queue_fd = s->held_fd = -1;
	if (dime_io_group_init(&s->gc, spool_commit, s) != 0) {
		free(s);
		return DIME_E_NOMEM;
	}
	s->gc_init = 1;
	if (strlen(root) >= sizeof(s->root)) {
		snprintf(why, why_cap, "spool %.64s...: path too long", root);
		goto out;
	}
	strcpy(s->root, root);
	if (mkdir(root, 0700) != 0 && errno != EEXIST) {
		snprintf(why, why_cap, "spool %s: %s", root, strerror(errno));
		goto out;
	}
	if ((s->root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(why, why_cap, "spool %s: %s", root, strerror(errno));
		goto out;
	}
	if ((s->tmp_fd = spool_mkdir_open(s->root_fd, "tmp", why, why_cap, root)) < 0 ||
	    (s->queue_fd = spool_mkdir_open(s->root_fd, "queue", why, why_cap, root)) < 0 ||
	    (s->held_fd = spool_mkdir_open(s->root_fd, "held", why, why_cap, root)) < 0)
		goto out;
	/* The new directory entries themselves must survive a crash. */
	if (fsync(s->root_fd) != 0) {
		snprintf(why, why_cap, "spool %s: fsync: %s", root, strerror(errno));
		goto out;
	}
	rc = spool_recover(s, why, why_cap);
out:
	if (rc != DIME_OK) {
		dime_spool_close(s);
		return rc;
	}
	*out = s;
	return DIME_OK;
}

void
dime_spool_close(struct dime_spool *s)
{
	if (s == NULL)
		return;
	if (s->root_fd >= 0)
		close(s->root_fd);
	if (s->tmp_fd >= 0)
		close(s->tmp_fd);
	if (s->queue_fd >= 0)
		close(s->queue_fd);
	if (s->held_fd >= 0)
		close(s->held_fd);
	if (s->gc_init)
		dime_io_group_destroy(&s->gc);
	free(s);
}

static int
spool_id_ok(const char *id)
{
	size_t n = 0;

	for (; id[n] != '\0'; n++) {
		char ch = id[n];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.'))
			return 0;
	}
	/* "." and ".." are names of directories, and a leading dot hides a file */
	return n > 0 && n <= 128 && id[0] != '.';
}

/* An envelope value is one printable ASCII line. */
static int
spool_field_ok(const char *v)
{
	size_t n = 0;

	for (; v[n] != '\0'; n++)
		if ((unsigned char)v[n] < 0x21 || (unsigned char)v[n] > 0x7e)
			return 0;
	return n > 0 && n <= 512;
}

/* The id is in queue/: sync queue/ so the entry another writer renamed there is durable
 * before the caller says so (sync 0: the caller's group sync does it). Returns: DIME_E_AGAIN
 * with *err EEXIST, or DIME_E_IO. */
static int
spool_queued(struct dime_spool *s, int sync, int *err)
{
	if (sync && fsync(s->queue_fd) != 0) {
		*err = errno;
		return DIME_E_IO;
	}
	*err = EEXIST;
	return DIME_E_AGAIN;
}

/* The first half of a put: tmp/id created and written, its writeback started (so that a group
 * of files reaches the disk together and their fsyncs find the data there). Returns: DIME_OK
 * with *fd open, or what dime_spool_put returns (sync 0: queue/ not synced for EEXIST). */
static int
spool_write(struct dime_spool *s, const char *id, const char *recipient, const char *origin,
	    const uint8_t *msg, size_t len, int sync, int *fdp, int *err)
{
	char head[16 + 2 * 512 + 8];
	int fd, e, n;

	*err = 0;
	*fdp = -1;
	if (!spool_id_ok(id) || !spool_field_ok(recipient) || !spool_field_ok(origin))
		return DIME_E_INVALID;
	n = snprintf(head, sizeof(head), SPOOL_RCPT "%s\n" SPOOL_ORIG "%s\n", recipient, origin);
	if (n < 0 || (size_t)n >= sizeof(head))
		return DIME_E_INVALID;
	/* Already queued (a retransmission racing its first copy): durable once queue/ is
	 * synced, which its writer may not have done yet. */
	if (faccessat(s->queue_fd, id, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return spool_queued(s, sync, err);
	fd = openat(s->tmp_fd, id, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		/* the same id is being written right now, and that write may still fail */
		*err = errno == EEXIST ? EINPROGRESS : errno;
		return errno == EEXIST ? DIME_E_AGAIN : DIME_E_IO;
	}
	if ((e = -dime_io_write_all(fd, head, (size_t)n)) != 0 ||
	    (e = -dime_io_write_all(fd, msg, len)) != 0) {
		close(fd);
		unlinkat(s->tmp_fd, id, 0);
		*err = e;
		return DIME_E_IO;
	}
	/* Only a hint (the fsync below is what counts): its failure changes nothing. */
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	*fdp = fd;
	return DIME_OK;
}

/* The second half: fsync (unless synced: the caller did, and it succeeded) and close fd
 * (always), rename tmp/id into queue/ without replacing, fsync queue/ when sync. Returns what
 * dime_spool_put returns. */
static int
spool_link(struct dime_spool *s, const char *id, int fd, int synced, int sync, int *err)
{
	int e = 0, rc = DIME_E_IO, linked = 1;

	*err = 0;
	if (!synced && fsync(fd) != 0) {
		e = errno;
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		e = errno;
		goto out;
	}
	fd = -1;
	/* RENAME_NOREPLACE: never overwrite a queued message of the same id. */
	if (renameat2(s->tmp_fd, id, s->queue_fd, id, RENAME_NOREPLACE) != 0) {
		if (errno == EEXIST) {
			rc = spool_queued(s, sync, &e);
			goto out;
		}
		if (errno != EINVAL && errno != ENOSYS) {
			e = errno;
			goto out;
		}
		/* a file system without renameat2 flags: link then unlink gives the same rule */
		if (linkat(s->tmp_fd, id, s->queue_fd, id, 0) != 0) {
			if (errno == EEXIST)
				rc = spool_queued(s, sync, &e);
			else
				e = errno;
			goto out;
		}
		unlinkat(s->tmp_fd, id, 0);
	}
	linked = 0;
	if (sync && fsync(s->queue_fd) != 0) {
		/* The entry may or may not survive a crash: take it back so nothing is half-acked.
		 */
		e = errno;
		unlinkat(s->queue_fd, id, 0);
		goto out;
	}
	rc = DIME_OK;
out:
	if (fd >= 0)
		close(fd);
	if (linked)
		unlinkat(s->tmp_fd, id, 0);
	if (rc == DIME_E_IO)
		*err = e != 0 ? e : EIO;
	else if (rc == DIME_E_AGAIN)
		*err = e;
	return rc;
}

/* Puts that arrive together share one commit (dime_io_group_run): one put alone costs what
 * it did (a group of one); many threads putting at once (the gateway's workers) pay about one
 * fsync per group instead of one file and one queue/ fsync each. */
int
dime_spool_put(struct dime_spool *s, const char *id, const char *recipient, const char *origin,
	       const uint8_t *msg, size_t len, int *err)
{
	struct dime_spool_item it = {
	    .id = id, .recipient = recipient, .origin = origin, .msg = msg, .len = len};

	dime_io_group_run(&s->gc, &it);
	*err = it.err;
	return it.rc;
}

size_t
dime_spool_put_many(struct dime_spool *s, struct dime_spool_item *items, size_t n)
{
	int fds[SPOOL_GROUP_MAX] = {0}, errs[SPOOL_GROUP_MAX] = {0};
	size_t ok = 0, pending = 0;
	int e = 0;

	/* Larger groups go in slices (the fsyncs of each slice shared; queue/ once per slice). */
	if (n > SPOOL_GROUP_MAX) {
		for (size_t i = 0; i < n; i += SPOOL_GROUP_MAX)
			ok += dime_spool_put_many(
			    s, items + i, n - i < SPOOL_GROUP_MAX ? n - i : SPOOL_GROUP_MAX);
		return ok;
	}

	/* Every file written first, then all fsynced at once, then each renamed: the writes of
	 * the group go to the disk together, and their fsyncs wait on shared journal commits
	 * instead of one commit each. The fd rides in err. */
	for (size_t i = 0; i < n; i++) {
		struct dime_spool_item *it = &items[i];
		int fd = -1;

		it->rc = spool_write(s, it->id, it->recipient, it->origin, it->msg, it->len, 0, &fd,
				     &it->err);
		fds[i] = it->rc == DIME_OK ? fd : -1;
		if (it->rc == DIME_OK)
			it->err = fd;
	}
	dime_io_fsync_many(fds, n, errs);
	for (size_t i = 0; i < n; i++) {
		struct dime_spool_item *it = &items[i];

		if (fds[i] < 0 || errs[i] == 0)
			continue;
		/* settled as dime_spool_put would leave it: fd closed, tmp/ file removed */
		close(fds[i]);
		unlinkat(s->tmp_fd, it->id, 0);
		it->rc = DIME_E_IO;
		it->err = -errs[i];
	}
	/* Renames only after every fsync returned: a rename is what makes a file count, so none
	 * may reach the disk before its data. */
	for (size_t i = 0; i < n; i++) {
		struct dime_spool_item *it = &items[i];

		if (it->rc == DIME_OK)
			it->rc = spool_link(s, it->id, it->err, 1, 0, &it->err);
		if (it->rc == DIME_OK || (it->rc == DIME_E_AGAIN && it->err == EEXIST))
			pending++;
	}
	if (pending == 0)
		return 0;
	/* One fsync of queue/ makes every rename above durable (and an entry another writer
	 * renamed there, for an EEXIST): the cost the group shares. */
	if (fsync(s->queue_fd) != 0)
		e = errno != 0 ? errno : EIO;
	for (size_t i = 0; i < n; i++) {
		struct dime_spool_item *it = &items[i];
		int mine = it->rc == DIME_OK;

		if (!mine && !(it->rc == DIME_E_AGAIN && it->err == EEXIST))
			continue;
		if (e == 0) {
			ok += (size_t)mine;
			continue;
		}
		/* The entry may or may not survive a crash: take it back so nothing is half-acked
		 * (as dime_spool_put does). */
		if (mine)
			unlinkat(s->queue_fd, it->id, 0);
		it->rc = DIME_E_IO;
		it->err = e;
	}
	return ok;
}

/* The group commit's call: the queued puts as one dime_spool_put_many. */
static void
spool_commit(void *ctx, void **items, size_t n)
{
	struct dime_spool_item g[DIME_IO_GROUP_MAX];

	for (size_t i = 0; i < n; i++)
		g[i] = *(struct dime_spool_item *)items[i];
	(void)dime_spool_put_many(ctx, g, n);
	for (size_t i = 0; i < n; i++) {
		((struct dime_spool_item *)items[i])->rc = g[i].rc;
		((struct dime_spool_item *)items[i])->err = g[i].err;
	}
}

int
dime_spool_parse(const char *buf, size_t len, char *recipient, size_t rcpt_cap, char *origin,
		 size_t origin_cap, const char **msg, size_t *msg_len)
{
	const char *pfx[2] = {SPOOL_RCPT, SPOOL_ORIG};
	char *dst[2] = {recipient, origin};
	size_t cap[2] = {rcpt_cap, origin_cap};
	size_t off = 0;

	*msg = NULL;
	*msg_len = 0;
	recipient[0] = origin[0] = '\0';
	for (int i = 0; i < 2; i++) {
		size_t pl = strlen(pfx[i]);
		const char *nl;
		size_t vl;

		if (len - off < pl || memcmp(buf + off, pfx[i], pl) != 0)
			return DIME_E_MALFORMED;
		off += pl;
		nl = memchr(buf + off, '\n', len - off);
		if (nl == NULL)
			return DIME_E_MALFORMED;
		vl = (size_t)(nl - (buf + off));
		if (vl == 0 || vl >= cap[i])
			return DIME_E_MALFORMED;
		memcpy(dst[i], buf + off, vl);
		dst[i][vl] = '\0';
		off += vl + 1;
	}
	*msg = buf + off;
	*msg_len = len - off;
	return DIME_OK;
}

/* Whole-file reads and atomic writes for the CLI and the daemon's state, plus the io_uring
 * availability probe the pipeline uses to choose its I/O path. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <liburing.h>

#include "dime/io.h"

int
dime_io_read_file(uint8_t **buf, size_t *len, const char *path, size_t max)
{
	int fd = 0, rc = 0;
	size_t cap = 0, n = 0;
	uint8_t *p = NULL;

	*buf = NULL;
	*len = 0;
	if (strcmp(path, "-") != 0 && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	for (;;) {
		ssize_t r;

		if (cap - n < 2) {
			size_t ncap = cap == 0 ? 65536 : cap * 2;
			uint8_t *q;

			if (cap > max + 1) {
				rc = -EFBIG;
				goto out;
			}
			if ((q = realloc(p, ncap)) == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			p = q;
			cap = ncap;
		}
		r = read(fd, p + n, cap - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			rc = -EFBIG;
			goto out;
		}
	}
	if (p == NULL && (p = malloc(1)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	p[n] = 0;
	*buf = p;
	*len = n;
	p = NULL;
out:
	if (fd > 0)
		close(fd);
	free(p);
	return rc;
}

int
dime_io_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

struct io_fsync_group {
	const int *fds;
	int *errs;
	size_t n;
	atomic_size_t next;
};

static void *
io_fsync_run(void *arg)
{
	struct io_fsync_group *g = arg;
	size_t i;

	while ((i = atomic_fetch_add(&g->next, 1)) < g->n) {
		int rc;

		if (g->fds[i] < 0)
			continue;
		while ((rc = fsync(g->fds[i])) != 0 && errno == EINTR)
			;
		g->errs[i] = rc == 0 ? 0 : -(errno != 0 ? errno : EIO);
	}
	return NULL;
}

void
dime_io_fsync_many(const int *fds, size_t n, int *errs)
{
	pthread_t th[DIME_IO_FSYNC_THREADS - 1];
	struct io_fsync_group g = {.fds = fds, .errs = errs, .n = n};
	size_t n_th = 0, live = 0;

	for (size_t i = 0; i < n; i++)
		live += fds[i] >= 0;
	atomic_init(&g.next, 0);
	while (n_th + 1 < DIME_IO_FSYNC_THREADS && n_th + 1 < live &&
	       pthread_create(&th[n_th], NULL, io_fsync_run, &g) == 0)
		n_th++;
	io_fsync_run(&g);
	for (size_t t = 0; t < n_th; t++)
		pthread_join(th[t], NULL);
}

struct dime_io_group_waiter {
	void *item;
	int done;
	struct dime_io_group_waiter *next;
};

int
dime_io_group_init(struct dime_io_group *g, void (*commit)(void *ctx, void **items, size_t n),
		   void *ctx)
{
	int rc;

	memset(g, 0, sizeof(*g));
	g->commit = commit;
	g->ctx = ctx;
	if ((rc = pthread_mutex_init(&g->mu, NULL)) != 0)
		return -rc;
	if ((rc = pthread_cond_init(&g->cv, NULL)) != 0) {
		pthread_mutex_destroy(&g->mu);
		return -rc;
	}
	return 0;
}

void
dime_io_group_destroy(struct dime_io_group *g)
{
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
}

void
dime_io_group_run(struct dime_io_group *g, void *item)
{
	struct dime_io_group_waiter w = {item, 0, NULL};

	pthread_mutex_lock(&g->mu);
	if (g->tail != NULL)
		g->tail->next = &w;
	else
		g->head = &w;
	g->tail = &w;
	while (!w.done) {
		struct dime_io_group_waiter *batch[DIME_IO_GROUP_MAX];
		void *items[DIME_IO_GROUP_MAX];
		size_t n = 0;

		if (g->busy) {
			pthread_cond_wait(&g->cv, &g->mu);
			continue;
		}
		while (n < DIME_IO_GROUP_MAX && g->head != NULL) {
			batch[n] = g->head;
			items[n++] = g->head->item;
			g->head = g->head->next;
		}
		if (g->head == NULL)
			g->tail = NULL;
		g->busy = 1;
		pthread_mutex_unlock(&g->mu);
		g->commit(g->ctx, items, n);
		pthread_mutex_lock(&g->mu);
		for (size_t i = 0; i < n; i++)
			batch[i]->done = 1;
		g->busy = 0;
		pthread_cond_broadcast(&g->cv);
	}
	pthread_mutex_unlock(&g->mu);
}

int
dime_io_write_file(const char *path, const void *buf, size_t len, mode_t mode)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, dfd, rc;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
		return -errno;
	if (fchmod(fd, mode) < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = dime_io_write_all(fd, buf, len)) < 0)
		goto fail;
	if (fsync(fd) < 0) {
		rc = -errno;
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = -errno;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		rc = -errno;
		goto fail;
	}
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path == 0 ? 1 : slash - path),
			 path);
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)fsync(dfd); /* best effort: some filesystems refuse fsync on directories */
		close(dfd);
	}
	return 0;
fail:
	if (rc == 0)
		rc = -EIO;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return rc;
}

int
dime_io_uring_available(void)
{
	struct io_uring ring;

	if (io_uring_queue_init(2, &ring, 0) < 0)
		return 0;
	io_uring_queue_exit(&ring);
	return 1;
}

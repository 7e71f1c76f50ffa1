/* The outbound queue (dime/outq.h): msg/ and state/ files, an in-memory index. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dime/crypto.h"
#include "dime/io.h"
#include "dime/outq.h"

#define OUTQ_MAGIC	"DIMEOUTQ 2\n"
#define OUTQ_HEAD_MAX	1024u
#define OUTQ_STATE_MAX	1024u
#define OUTQ_FIRST_DEF	300u
#define OUTQ_MAXINT_DEF 43200u
#define OUTQ_DELAY_DEF	14400u
#define OUTQ_GIVEUP_DEF 432000u

struct dime_outq {
	pthread_mutex_t mu;
	struct dime_io_group gc; /* dime_outq_put's group commit */
	int gc_init;
	struct dime_outq_policy pol;
	unsigned flags;
	int root_fd, tmp_fd, msg_fd, state_fd;
	struct dime_outq_entry *e;
	size_t n, cap;
};

/* mkdir -p root (0700 for every directory made): the queue may live where nothing exists yet. */
static int
outq_mkdir_p(const char *root)
{
	char path[4096];
	size_t n = strlen(root);

	if (n == 0 || n >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(path, root, n + 1);
	for (size_t i = 1; i < n; i++) {
		if (path[i] != '/')
			continue;
		path[i] = 0;
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return -1;
		path[i] = '/';
	}
	return mkdir(path, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

static void
outq_why(char *why, size_t cap, const char *what, const char *path)
{
	if (why != NULL && cap > 0)
		snprintf(why, cap, "%s %s: %s", what, path, strerror(errno));
}

unsigned
dime_outq_interval(const struct dime_outq_policy *p, uint32_t attempts)
{
	uint64_t first = p != NULL && p->first_retry > 0 ? p->first_retry : OUTQ_FIRST_DEF;
	uint64_t cap = p != NULL && p->max_interval > 0 ? p->max_interval : OUTQ_MAXINT_DEF;
	uint64_t v = first;

	for (uint32_t i = 1; i < attempts && v < cap; i++)
		v *= 2;
	return (unsigned)(v < cap ? v : cap);
}

/* A value for the envelope or the state file: printable ASCII, no space, 1..255 octets. */
static int
outq_token_ok(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > 255)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

/* tmp/<name>.<pid> created (tmp, tmp_cap) and a then b written to it, not yet fsynced.
 * Returns: 0 (*fd open), or an errno (nothing left behind). */
static int
outq_tmp_write(struct dime_outq *q, char *tmp, size_t tmp_cap, const char *name, const void *a,
	       size_t a_len, const void *b, size_t b_len, int *fd)
{
	int rc;

	snprintf(tmp, tmp_cap, "%s.%ld", name, (long)getpid());
	(void)unlinkat(q->tmp_fd, tmp, 0);
	if ((*fd = openat(q->tmp_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		return errno != 0 ? errno : EIO;
	if ((rc = dime_io_write_all(*fd, a, a_len)) == 0 && b_len > 0)
		rc = dime_io_write_all(*fd, b, b_len);
	if (rc != 0) {
		close(*fd);
		*fd = -1;
		(void)unlinkat(q->tmp_fd, tmp, 0);
		return -rc;
	}
	return 0;
}

/* Write a then b to dir_fd/name through tmp/, durably: create, write, fsync, rename, fsync
 * dir. Returns: 0, or -1 with errno. */
static int
outq_write_durable(struct dime_outq *q, int dir_fd, const char *name, const void *a, size_t a_len,
		   const void *b, size_t b_len)
{
	char tmp[DIME_OUTQ_ID_MAX + 16];
	int fd, e;

	if ((e = outq_tmp_write(q, tmp, sizeof(tmp), name, a, a_len, b, b_len, &fd)) != 0) {
		errno = e;
		return -1;
	}
	if (fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (renameat(q->tmp_fd, tmp, dir_fd, name) != 0 || fsync(dir_fd) != 0)
		goto fail;
	return 0;
fail:
	e = errno != 0 ? errno : EIO;
	if (fd >= 0)
		close(fd);
	(void)unlinkat(q->tmp_fd, tmp, 0);
	errno = e;
	return -1;
}

static int
outq_write_state(struct dime_outq *q, const struct dime_outq_entry *e)
{
	char buf[OUTQ_STATE_MAX];
	int n = snprintf(buf, sizeof(buf),
			 "attempts %" PRIu32 "\nnext %" PRId64 "\ndelay_notified %d\nerror %s\n",
			 e->attempts, e->next, e->delay_notified,
			 e->last_error[0] != 0 ? e->last_error : "-");

	if (n < 0 || (size_t)n >= sizeof(buf)) {
		errno = EOVERFLOW;
		return -1;
	}
	return outq_write_durable(q, q->state_fd, e->id, buf, (size_t)n, NULL, 0);
}

/* Read up to cap-1 octets of dir_fd/name into buf (NUL-terminated). Returns: octets, or -1. */
static ssize_t
outq_read_head(int dir_fd, const char *name, char *buf, size_t cap, uint64_t *size)
{
	struct stat sb;
	ssize_t n;
	int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	if (size != NULL)
		*size = (uint64_t)sb.st_size;
	do
		n = pread(fd, buf, cap - 1, 0);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n >= 0)
		buf[n] = 0;
	return n;
}

/* Parse msg/<name>'s envelope into e: the magic line, then exactly the lines "origin D",
 * "origin-fp F", "author A", "recipient R", "destination-fp F" and "created T", then an empty
 * line. Returns: the header length, or 0 (malformed). */
static size_t
outq_parse_head(struct dime_outq_entry *e, const char *buf, size_t n)
{
	char origin[256], ofp[256], author[256], rcpt[256], dfp[256], region[OUTQ_HEAD_MAX];
	const size_t ml = sizeof(OUTQ_MAGIC) - 1;
	long long created;
	const char *end;
	size_t rl, lines = 0;
	int off = -1;

	if (n < ml || memcmp(buf, OUTQ_MAGIC, ml) != 0 || (end = strstr(buf + ml, "\n\n")) == NULL)
		return 0;
	rl = (size_t)(end - (buf + ml)); /* the lines, without the last LF */
	if (rl >= sizeof(region))
		return 0;
	memcpy(region, buf + ml, rl);
	region[rl] = 0;
	for (size_t i = 0; i < rl; i++)
		lines += region[i] == '\n';
	if (lines != 5 ||
	    sscanf(region,
		   "origin %255s origin-fp %255s author %255s recipient %255s destination-fp %255s "
		   "created %lld%n",
		   origin, ofp, author, rcpt, dfp, &created, &off) != 6 ||
	    off != (int)rl || strncmp(region, "origin ", 7) != 0 || !outq_token_ok(origin) ||
	    !outq_token_ok(ofp) || strlen(ofp) >= sizeof(e->origin_fp) || !outq_token_ok(author) ||
	    !outq_token_ok(rcpt) || !outq_token_ok(dfp) || strlen(dfp) >= sizeof(e->dest_fp) ||
	    created < 0)
		return 0;
	snprintf(e->origin, sizeof(e->origin), "%s", origin);
	memcpy(e->origin_fp, ofp, strlen(ofp) + 1); /* length checked above */
	snprintf(e->author, sizeof(e->author), "%s", author);
	snprintf(e->recipient, sizeof(e->recipient), "%s", rcpt);
	memcpy(e->dest_fp, dfp, strlen(dfp) + 1);
	e->created = created;
	return (size_t)(end + 2 - buf);
}

/* Apply state/<id> to e when present and well-formed (a damaged one is ignored: due now). */
static void
outq_load_state(struct dime_outq *q, struct dime_outq_entry *e)
{
	char buf[OUTQ_STATE_MAX], err[256];
	unsigned long attempts;
	long long next;
	int notified;

	e->next = e->created;
	if (outq_read_head(q->state_fd, e->id, buf, sizeof(buf), NULL) <= 0)
		return;
	if (sscanf(buf, "attempts %lu\nnext %lld\ndelay_notified %d\nerror %255[^\n]\n", &attempts,
		   &next, &notified, err) != 4 ||
	    attempts > UINT32_MAX || next < 0)
		return;
	e->attempts = (uint32_t)attempts;
	e->next = next;
	e->delay_notified = notified != 0;
	snprintf(e->last_error, sizeof(e->last_error), "%s", strcmp(err, "-") == 0 ? "" : err);
}

static int
outq_add(struct dime_outq *q, const struct dime_outq_entry *e)
{
	if (q->n == q->cap) {
		size_t cap = q->cap > 0 ? q->cap * 2 : 64;
		struct dime_outq_entry *g = realloc(q->e, cap * sizeof(*g));

		if (g == NULL)
			return DIME_E_NOMEM;
		q->e = g;
		q->cap = cap;
	}
	q->e[q->n++] = *e;
	return DIME_OK;
}

static struct dime_outq_entry *
outq_find(struct dime_outq *q, const char *id)
{
	for (size_t i = 0; i < q->n; i++)
		if (strcmp(q->e[i].id, id) == 0)
			return &q->e[i];
	return NULL;
}

static int
outq_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > DIME_OUTQ_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* Read msg/<name> into e (envelope, size of the message, state). Returns: 1 (e filled), 0 (not
 * a queue file: damaged or foreign), -1 (gone). */
static int
outq_load_msg(struct dime_outq *q, const char *name, struct dime_outq_entry *e)
{
	char buf[OUTQ_HEAD_MAX];
	ssize_t n;
	size_t head;

	memset(e, 0, sizeof(*e));
	n = outq_read_head(q->msg_fd, name, buf, sizeof(buf), &e->size);
	if (n < 0 && errno == ENOENT)
		return -1;
	if (!outq_name_ok(name) || n <= 0 || (head = outq_parse_head(e, buf, (size_t)n)) == 0)
		return 0;
	memcpy(e->id, name, strlen(name) + 1); /* outq_name_ok: it fits */
	e->size -= head;
	outq_load_state(q, e);
	return 1;
}

/* Not ours or damaged: kept aside for the operator, never delivered (owner only). */
static void
outq_set_aside(struct dime_outq *q, const char *name)
{
	char dst[300];

	if (q->flags & DIME_OUTQ_OPEN_READONLY)
		return;
	(void)mkdirat(q->root_fd, "corrupt", 0700);
	snprintf(dst, sizeof(dst), "corrupt/%s", name);
	(void)renameat(q->msg_fd, name, q->root_fd, dst);
}

static int
outq_rebuild(struct dime_outq *q, char *why, size_t why_cap)
{
	DIR *d;
	struct dirent *de;
	int fd, rc = DIME_OK;

	/* tmp/: never acknowledged (the owner's alone: another process may be writing there) */
	if (!(q->flags & DIME_OUTQ_OPEN_READONLY)) {
		if ((fd = dup(q->tmp_fd)) < 0 || (d = fdopendir(fd)) == NULL) {
			if (fd >= 0)
				close(fd);
			outq_why(why, why_cap, "cannot read", "tmp/");
			return DIME_E_IO;
		}
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				(void)unlinkat(q->tmp_fd, de->d_name, 0);
		closedir(d);
	}

	if ((fd = dup(q->msg_fd)) < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		outq_why(why, why_cap, "cannot read", "msg/");
		return DIME_E_IO;
	}
	while (rc == DIME_OK && (de = readdir(d)) != NULL) {
		struct dime_outq_entry e;
		int got;

		if (de->d_name[0] == '.')
			continue;
		if ((got = outq_load_msg(q, de->d_name, &e)) == 0)
			outq_set_aside(q, de->d_name);
		if (got == 1)
			rc = outq_add(q, &e);
	}
	closedir(d);
	/* state files whose message is gone (delivered, or deleted while we were down) */
	if (rc == DIME_OK && !(q->flags & DIME_OUTQ_OPEN_READONLY) &&
	    (fd = dup(q->state_fd)) >= 0 && (d = fdopendir(fd)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.' && outq_find(q, de->d_name) == NULL)
				(void)unlinkat(q->state_fd, de->d_name, 0);
		closedir(d);
	}
	return rc;
}

int
dime_outq_rescan(struct dime_outq *q, size_t *added, size_t *dropped)
{
	DIR *d;
	struct dirent *de;
	int fd, rc = DIME_OK;
	size_t n_add = 0, n_drop = 0;

	if (added != NULL)
		*added = 0;
	if (dropped != NULL)
		*dropped = 0;
	pthread_mutex_lock(&q->mu);
	if ((fd = dup(q->msg_fd)) < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		pthread_mutex_unlock(&q->mu);
		return DIME_E_IO;
	}
	rewinddir(d); /* the dup shares the offset of earlier scans */
	while (rc == DIME_OK && (de = readdir(d)) != NULL) {
		struct dime_outq_entry e;
		int got;

		if (de->d_name[0] == '.' || outq_find(q, de->d_name) != NULL)
			continue;
		if ((got = outq_load_msg(q, de->d_name, &e)) == 0)
			outq_set_aside(q, de->d_name);
		if (got == 1 && (rc = outq_add(q, &e)) == DIME_OK)
			n_add++;
	}
	closedir(d);
	for (size_t i = 0; rc == DIME_OK && i < q->n;) {
		struct dime_outq_entry *e = &q->e[i];
		struct stat sb;

		if (e->claimed) {
			i++;
			continue;
		}
		if (fstatat(q->msg_fd, e->id, &sb, 0) != 0 && errno == ENOENT) {
			if (!(q->flags & DIME_OUTQ_OPEN_READONLY))
				(void)unlinkat(q->state_fd, e->id, 0);
			q->e[i] = q->e[--q->n];
			n_drop++;
			continue;
		}
		{
			/* the state file wins (another process rewrote it); none: as it was */
			struct dime_outq_entry s = *e;
			char buf[OUTQ_STATE_MAX];

			if (outq_read_head(q->state_fd, e->id, buf, sizeof(buf), NULL) > 0) {
				outq_load_state(q, &s);
				e->next = s.next;
				e->attempts = s.attempts;
				e->delay_notified = s.delay_notified;
				memcpy(e->last_error, s.last_error, sizeof(e->last_error));
			}
		}
		i++;
	}
	pthread_mutex_unlock(&q->mu);
	if (added != NULL)
		*added = n_add;
	if (dropped != NULL)
		*dropped = n_drop;
	return rc;
}

int
dime_outq_get(struct dime_outq *q, const char *id, struct dime_outq_entry *out)
{
	struct dime_outq_entry *e;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&q->mu);
	if ((e = outq_find(q, id)) != NULL)
		*out = *e;
	pthread_mutex_unlock(&q->mu);
	return e != NULL ? DIME_OK : DIME_E_NOTFOUND;
}

static int
outq_subdir(int root_fd, const char *name, int create, char *why, size_t why_cap)
{
	int fd;

	if (create && mkdirat(root_fd, name, 0700) != 0 && errno != EEXIST) {
		outq_why(why, why_cap, "cannot create", name);
		return -1;
	}
	if ((fd = openat(root_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		outq_why(why, why_cap, "cannot open", name);
	return fd;
}

static void outq_commit(void *ctx, void **items, size_t n);

int
dime_outq_open(struct dime_outq **out, const char *root, const struct dime_outq_policy *policy,
	       char *why, size_t why_cap)
{
	return dime_outq_open_flags(out, root, policy, 0, why, why_cap);
}

int
dime_outq_open_flags(struct dime_outq **out, const char *root,
		     const struct dime_outq_policy *policy, unsigned flags, char *why,
		     size_t why_cap)
{
	struct dime_outq *q;
	int rc, create = !(flags & DIME_OUTQ_OPEN_READONLY);

	*out = NULL;
	if (why != NULL && why_cap > 0)
		why[0] = 0;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return DIME_E_NOMEM;
	q->root_fd = q->tmp_fd = q->msg_fd = q->state_fd = -1;
	q->flags = flags;
	pthread_mutex_init(&q->mu, NULL);
	if (dime_io_group_init(&q->gc, outq_commit, q) != 0) {
		pthread_mutex_destroy(&q->mu);
		free(q);
		return DIME_E_NOMEM;
	}
	q->gc_init = 1;
	if (policy != NULL)
		q->pol = *policy;
	if (q->pol.first_retry == 0)
		q->pol.first_retry = OUTQ_FIRST_DEF;
	if (q->pol.max_interval == 0)
		q->pol.max_interval = OUTQ_MAXINT_DEF;
	if (q->pol.delay_notice == 0)
		q->pol.delay_notice = OUTQ_DELAY_DEF;
	if (q->pol.give_up == 0)
		q->pol.give_up = OUTQ_GIVEUP_DEF;
	if (q->pol.give_up < q->pol.delay_notice) {
		if (why != NULL && why_cap > 0)
			snprintf(why, why_cap, "give_up is shorter than delay_notice");
		dime_outq_close(q);
		return DIME_E_INVALID;
	}
	if (create && outq_mkdir_p(root) != 0) {
		outq_why(why, why_cap, "cannot create", root);
		dime_outq_close(q);
		return DIME_E_IO;
	}
	if ((q->root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		outq_why(why, why_cap, "cannot open", root);
		dime_outq_close(q);
		return DIME_E_IO;
	}
	if ((q->tmp_fd = outq_subdir(q->root_fd, "tmp", create, why, why_cap)) < 0 ||
	    (q->msg_fd = outq_subdir(q->root_fd, "msg", create, why, why_cap)) < 0 ||
	    (q->state_fd = outq_subdir(q->root_fd, "state", create, why, why_cap)) < 0) {
		dime_outq_close(q);
		return DIME_E_IO;
	}
	if ((rc = outq_rebuild(q, why, why_cap)) != DIME_OK) {
		dime_outq_close(q);
		return rc;
	}
	*out = q;
	return DIME_OK;
}

void
dime_outq_close(struct dime_outq *q)
{
	if (q == NULL)
		return;
	{
		int fds[4] = {q->root_fd, q->tmp_fd, q->msg_fd, q->state_fd};

		for (int i = 0; i < 4; i++)
			if (fds[i] >= 0)
				close(fds[i]);
	}
	free(q->e);
	if (q->gc_init)
		dime_io_group_destroy(&q->gc);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

/* One message of a group put, while it is written. */
struct outq_pending {
	struct dime_outq_entry e;
	char head[OUTQ_HEAD_MAX];
	char tmp[DIME_OUTQ_ID_MAX + 16];
	size_t head_len;
	int fd;
};

/* The envelope checked, the entry and the file's head made. Returns: DIME_OK, DIME_E_INVALID. */
static int
outq_prepare(struct outq_pending *p, const struct dime_outq_item *it)
{
	const struct dime_outq_env *env = it->env;
	uint8_t rnd[16];
	int n;

	if (env == NULL || !outq_token_ok(env->origin) || !outq_token_ok(env->origin_fp) ||
	    strlen(env->origin_fp) >= sizeof(p->e.origin_fp) || !outq_token_ok(env->author) ||
	    !outq_token_ok(env->recipient) || !outq_token_ok(env->dest_fp) ||
	    strlen(env->dest_fp) >= sizeof(p->e.dest_fp) || (it->msg == NULL && it->len > 0) ||
	    it->now < 0)
		return DIME_E_INVALID;
	memset(&p->e, 0, sizeof(p->e));
	dime_random(rnd, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(p->e.id + 2 * i, 3, "%02x", rnd[i]);
	n = snprintf(p->head, sizeof(p->head),
		     OUTQ_MAGIC "origin %s\norigin-fp %s\nauthor %s\nrecipient %s\ndestination-fp "
				"%s\ncreated %" PRId64 "\n\n",
		     env->origin, env->origin_fp, env->author, env->recipient, env->dest_fp,
		     it->now);
	if (n < 0 || (size_t)n >= sizeof(p->head))
		return DIME_E_INVALID;
	p->head_len = (size_t)n;
	snprintf(p->e.origin, sizeof(p->e.origin), "%s", env->origin);
	snprintf(p->e.origin_fp, sizeof(p->e.origin_fp), "%s", env->origin_fp);
	snprintf(p->e.author, sizeof(p->e.author), "%s", env->author);
	snprintf(p->e.recipient, sizeof(p->e.recipient), "%s", env->recipient);
	snprintf(p->e.dest_fp, sizeof(p->e.dest_fp), "%s", env->dest_fp);
	p->e.created = p->e.next = it->now;
	p->e.size = it->len;
	return DIME_OK;
}

size_t
dime_outq_put_many(struct dime_outq *q, struct dime_outq_item *items, size_t n)
{
	struct outq_pending *p;
	int fds[DIME_IO_GROUP_MAX], errs[DIME_IO_GROUP_MAX];
	size_t ok = 0, renamed = 0;
	int dir_err = 0;

	if (n > DIME_IO_GROUP_MAX) { /* in slices: each shares its fsyncs */
		for (size_t i = 0; i < n; i += DIME_IO_GROUP_MAX)
			ok += dime_outq_put_many(
			    q, items + i, n - i < DIME_IO_GROUP_MAX ? n - i : DIME_IO_GROUP_MAX);
		return ok;
	}
	if (n == 0)
		return 0;
	if ((p = calloc(n, sizeof(*p))) == NULL) {
		for (size_t i = 0; i < n; i++) {
			items[i].rc = DIME_E_NOMEM;
			items[i].err = ENOMEM;
		}
		return 0;
	}
	/* every file written, then all fsynced at once, then renamed, then msg/ fsynced once */
	for (size_t i = 0; i < n; i++) {
		struct dime_outq_item *it = &items[i];

		it->id[0] = 0;
		it->err = 0;
		p[i].fd = -1;
		fds[i] = -1;
		errs[i] = 0;
		if ((it->rc = outq_prepare(&p[i], it)) != DIME_OK)
			continue;
		if ((it->err = outq_tmp_write(q, p[i].tmp, sizeof(p[i].tmp), p[i].e.id, p[i].head,
					      p[i].head_len, it->msg, it->len, &p[i].fd)) != 0) {
			it->rc = DIME_E_IO;
			continue;
		}
		fds[i] = p[i].fd;
	}
	dime_io_fsync_many(fds, n, errs);
	for (size_t i = 0; i < n; i++) {
		struct dime_outq_item *it = &items[i];

		if (fds[i] < 0)
			continue;
		if (close(p[i].fd) != 0 && errs[i] == 0)
			errs[i] = -(errno != 0 ? errno : EIO);
		if (errs[i] == 0 && renameat(q->tmp_fd, p[i].tmp, q->msg_fd, p[i].e.id) != 0)
			errs[i] = -(errno != 0 ? errno : EIO);
		if (errs[i] != 0) {
			(void)unlinkat(q->tmp_fd, p[i].tmp, 0);
			it->rc = DIME_E_IO;
			it->err = -errs[i];
			continue;
		}
		renamed++;
	}
	if (renamed > 0 && fsync(q->msg_fd) != 0)
		dir_err = errno != 0 ? errno : EIO;
	for (size_t i = 0; i < n; i++) {
		struct dime_outq_item *it = &items[i];
		int rc;

		if (fds[i] < 0 || errs[i] != 0)
			continue;
		if (dir_err != 0) {
			/* the entry may or may not survive a crash: take it back, nothing half-said
			 */
			(void)unlinkat(q->msg_fd, p[i].e.id, 0);
			it->rc = DIME_E_IO;
			it->err = dir_err;
			continue;
		}
		pthread_mutex_lock(&q->mu);
		rc = outq_add(q, &p[i].e);
		pthread_mutex_unlock(&q->mu);
		if (rc != DIME_OK) {
			/* durable but not indexed: the next open finds it; say so rather than lose
			 * it */
			it->rc = rc;
			it->err = ENOMEM;
			continue;
		}
		memcpy(it->id, p[i].e.id, sizeof(p[i].e.id));
		it->rc = DIME_OK;
		ok++;
	}
	free(p);
	return ok;
}

/* The group commit's call: the puts queued together as one dime_outq_put_many. */
static void
outq_commit(void *ctx, void **items, size_t n)
{
	struct dime_outq_item g[DIME_IO_GROUP_MAX];

	for (size_t i = 0; i < n; i++)
		g[i] = *(struct dime_outq_item *)items[i];
	(void)dime_outq_put_many(ctx, g, n);
	for (size_t i = 0; i < n; i++)
		*(struct dime_outq_item *)items[i] = g[i];
}

/* Puts made at once by several threads (the gateway's workers) share one commit. */
int
dime_outq_put(struct dime_outq *q, char id_out[DIME_OUTQ_ID_MAX + 1],
	      const struct dime_outq_env *env, const uint8_t *msg, size_t len, int64_t now,
	      int *err)
{
	struct dime_outq_item it = {.env = env, .msg = msg, .len = len, .now = now};

	dime_io_group_run(&q->gc, &it);
	*err = it.err;
	memcpy(id_out, it.id, sizeof(it.id));
	return it.rc;
}

size_t
dime_outq_due(struct dime_outq *q, struct dime_outq_entry *out, size_t cap, int64_t now)
{
	size_t got = 0;

	pthread_mutex_lock(&q->mu);
	while (got < cap) {
		struct dime_outq_entry *best = NULL;

		for (size_t i = 0; i < q->n; i++) {
			struct dime_outq_entry *e = &q->e[i];

			if (e->claimed || e->next > now)
				continue;
			if (best == NULL || e->created < best->created ||
			    (e->created == best->created && strcmp(e->id, best->id) < 0))
				best = e;
		}
		if (best == NULL)
			break;
		best->claimed = 1;
		out[got++] = *best;
	}
	pthread_mutex_unlock(&q->mu);
	return got;
}

int64_t
dime_outq_next_due(struct dime_outq *q)
{
	int64_t next = INT64_MAX;

	pthread_mutex_lock(&q->mu);
	for (size_t i = 0; i < q->n; i++)
		if (!q->e[i].claimed && q->e[i].next < next)
			next = q->e[i].next;
	pthread_mutex_unlock(&q->mu);
	return next;
}

int
dime_outq_read(struct dime_outq *q, const char *id, uint8_t **msg, size_t *len)
{
	char head[OUTQ_HEAD_MAX];
	struct dime_outq_entry e;
	uint64_t size = 0;
	ssize_t n;
	size_t hl;
	uint8_t *buf;
	int fd;

	*msg = NULL;
	*len = 0;
	if (!outq_name_ok(id))
		return DIME_E_NOTFOUND;
	memset(&e, 0, sizeof(e));
	if ((n = outq_read_head(q->msg_fd, id, head, sizeof(head), &size)) < 0)
		return errno == ENOENT ? DIME_E_NOTFOUND : DIME_E_IO;
	if ((hl = outq_parse_head(&e, head, (size_t)n)) == 0 || size < hl)
		return DIME_E_IO;
	if ((buf = malloc(size - hl > 0 ? (size_t)(size - hl) : 1)) == NULL)
		return DIME_E_NOMEM;
	if ((fd = openat(q->msg_fd, id, O_RDONLY | O_CLOEXEC)) < 0) {
		free(buf);
		return errno == ENOENT ? DIME_E_NOTFOUND : DIME_E_IO;
	}
	for (size_t off = 0; off < size - hl;) {
		ssize_t r = pread(fd, buf + off, (size_t)(size - hl) - off, (off_t)(hl + off));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			close(fd);
			free(buf);
			return DIME_E_IO;
		}
		off += (size_t)r;
	}
	close(fd);
	*msg = buf;
	*len = (size_t)(size - hl);
	return DIME_OK;
}

int
dime_outq_done(struct dime_outq *q, const char *id)
{
	int rc = DIME_OK;

	pthread_mutex_lock(&q->mu);
	for (size_t i = 0; i < q->n; i++) {
		if (strcmp(q->e[i].id, id) != 0)
			continue;
		/* the message first: a crash in between leaves a state file that open removes */
		if (unlinkat(q->msg_fd, id, 0) != 0 && errno != ENOENT)
			rc = DIME_E_IO;
		else {
			(void)unlinkat(q->state_fd, id, 0);
			if (fsync(q->msg_fd) != 0)
				rc = DIME_E_IO;
			q->e[i] = q->e[--q->n];
		}
		pthread_mutex_unlock(&q->mu);
		return rc;
	}
	pthread_mutex_unlock(&q->mu);
	return DIME_E_NOTFOUND;
}

int
dime_outq_deferred(struct dime_outq *q, const char *id, const char *error, int64_t now,
		   enum dime_outq_verdict *v, int64_t *next)
{
	struct dime_outq_entry *e, saved;
	int rc = DIME_OK;

	*v = DIME_OUTQ_RETRY;
	pthread_mutex_lock(&q->mu);
	if ((e = outq_find(q, id)) == NULL) {
		pthread_mutex_unlock(&q->mu);
		return DIME_E_NOTFOUND;
	}
	saved = *e;
	e->attempts++;
	e->claimed = 0;
	snprintf(e->last_error, sizeof(e->last_error), "%s", error != NULL ? error : "");
	/* one line of printable text in the state file */
	for (char *p = e->last_error; *p != 0; p++)
		if ((unsigned char)*p < ' ' || (unsigned char)*p >= 0x7f)
			*p = '?';
	e->next = now + (int64_t)dime_outq_interval(&q->pol, e->attempts);
	if (now - e->created >= (int64_t)q->pol.give_up) {
		*v = DIME_OUTQ_GIVE_UP;
		e->next = INT64_MAX; /* never handed out again: the caller bounces it */
	} else {
		if (!e->delay_notified && now - e->created >= (int64_t)q->pol.delay_notice) {
			e->delay_notified = 1;
			*v = DIME_OUTQ_NOTIFY_DELAY;
		}
		/* the last attempt falls at give_up, not past it */
		if (e->next > e->created + (int64_t)q->pol.give_up)
			e->next = e->created + (int64_t)q->pol.give_up;
	}
	if (outq_write_state(q, e) != 0) {
		/* not recorded: keep the old state, so nothing is skipped (the attempt repeats) */
		saved.claimed = 0;
		*e = saved;
		*v = DIME_OUTQ_RETRY;
		rc = DIME_E_IO;
	}
	if (next != NULL)
		*next = e->next;
	pthread_mutex_unlock(&q->mu);
	return rc;
}

void
dime_outq_release(struct dime_outq *q, const char *id)
{
	struct dime_outq_entry *e;

	pthread_mutex_lock(&q->mu);
	if ((e = outq_find(q, id)) != NULL)
		e->claimed = 0;
	pthread_mutex_unlock(&q->mu);
}

int
dime_outq_retry_now(struct dime_outq *q, const char *id, int64_t now)
{
	struct dime_outq_entry *e;
	int64_t was;
	int rc = DIME_OK;

	pthread_mutex_lock(&q->mu);
	if ((e = outq_find(q, id)) == NULL) {
		pthread_mutex_unlock(&q->mu);
		return DIME_E_NOTFOUND;
	}
	was = e->next;
	e->next = now;
	if (outq_write_state(q, e) != 0) {
		e->next = was;
		rc = DIME_E_IO;
	}
	pthread_mutex_unlock(&q->mu);
	return rc;
}

static int
outq_cmp_created(const void *a, const void *b)
{
	const struct dime_outq_entry *x = a, *y = b;

	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return strcmp(x->id, y->id);
}

size_t
dime_outq_list(struct dime_outq *q, int (*fn)(const struct dime_outq_entry *e, void *arg),
	       void *arg)
{
	struct dime_outq_entry *copy;
	size_t n, i;

	pthread_mutex_lock(&q->mu);
	n = q->n;
	copy = n > 0 ? malloc(n * sizeof(*copy)) : NULL;
	if (copy != NULL)
		memcpy(copy, q->e, n * sizeof(*copy));
	pthread_mutex_unlock(&q->mu);
	if (copy == NULL)
		return 0;
	qsort(copy, n, sizeof(*copy), outq_cmp_created);
	for (i = 0; i < n; i++)
		if (fn(&copy[i], arg) != 0) {
			i++;
			break;
		}
	free(copy);
	return i;
}

/* Batch inputs: a directory of files or a Maildir (names listed and sorted at open, contents
 * left to the reader), or an mbox streamed through a fixed buffer and split as mboxrd.
 * The contract (kinds, ordering, naming, mbox rules) is in dime/source.h. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dime/msg.h"
#include "dime/source.h"

_Static_assert(DIME_SOURCE_MAX_DEFAULT == DIME_MSG_MAX_BYTES, "the default is the DIME limit");

#define SRC_BUF_BYTES ((size_t)1 << 20) /* mbox read buffer */
#define SRC_MSG_FIRST ((size_t)65536)	/* first allocation of a message */

enum src_sub { SRC_SUB_NONE = 0, SRC_SUB_CUR = 1, SRC_SUB_NEW = 2 };

/* A listed file: its name in its directory, and the output name when that differs. */
struct src_ent {
	char *file;
	char *out;  /* NULL: same as file */
	char *real; /* a symbolic link inside the root: its target (no link in it); else NULL */
	int err;    /* a link we refuse: -EXDEV, yielded as an item error */
	size_t order;
	enum src_sub sub;
};

struct dime_source {
	enum dime_source_kind kind;
	char *root;
	char *real_root;   /* dir/Maildir: realpath of root (no symbolic link in it) */
	char *real_sub[3]; /* Maildir: realpath of cur/ and new/, indexed by enum src_sub */
	unsigned flags;
	int err; /* sticky source failure */
	const char *err_why;
	/* dir / Maildir */
	struct src_ent *ents;
	size_t n_ents, next;
	/* mbox */
	int fd;
	int is_reg;
	uint64_t fsize;
	uint8_t *buf;
	size_t head, tail;
	int eof, done;
	size_t max;
	uint64_t consumed;
	size_t ordinal;
	int started;	/* past the first From_ line: a message is being assembled */
	int in_line;	/* the next bytes continue a line longer than the buffer */
	int skip_line;	/* ... and that line is a From_ line, not message text */
	int prev_blank; /* the last complete line was blank */
	size_t blank_len;
	uint8_t *msg;
	size_t msg_len, msg_cap;
	int oversize;
};

/* --- directory and Maildir listing --- */

static int
src_ent_cmp_file(const void *a, const void *b)
{
	const struct src_ent *x = a, *y = b;
	int c = strcmp(x->file, y->file);

	return c != 0 ? c : (int)x->sub - (int)y->sub;
}

static const char *
src_ent_name(const struct src_ent *e)
{
	return e->out != NULL ? e->out : e->file;
}

static int
src_ent_cmp_name(const void *a, const void *b)
{
	const struct src_ent *const *x = a, *const *y = b;
	int c = strcmp(src_ent_name(*x), src_ent_name(*y));

	return c != 0 ? c : ((*x)->order > (*y)->order) - ((*x)->order < (*y)->order);
}

static int
src_safe_byte(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == ',' || c == '+' || c == '=' || c == '-';
}

/* Is real (a path from realpath) the root or inside it? */
static int
src_inside(const char *root, const char *real)
{
	size_t n = strlen(root);

	if (strcmp(root, "/") == 0)
		return 1;
	return strncmp(real, root, n) == 0 && (real[n] == 0 || real[n] == '/');
}

/* A symbolic link entry of dir: 1 when it leads to a regular file, with e->real its target
 * when that is inside the root, or e->err = -EXDEV when it leads out of it and links are not
 * followed; 0 to skip it (dangling, or not a regular file); -ENOMEM. */
static int
src_link(struct dime_source *s, int dfd, const char *dir, const char *name, struct src_ent *e)
{
	struct stat sb;
	char *path, *real;
	size_t n;

	if (fstatat(dfd, name, &sb, 0) != 0 || !S_ISREG(sb.st_mode))
		return 0;
	if (s->flags & DIME_SOURCE_FOLLOW_SYMLINKS)
		return 1;
	n = strlen(dir) + strlen(name) + 2;
	if ((path = malloc(n)) == NULL)
		return -ENOMEM;
	snprintf(path, n, "%s/%s", dir, name);
	real = realpath(path, NULL);
	free(path);
	if (real == NULL)
		return errno == ENOMEM ? -ENOMEM : 0; /* vanished since fstatat: skip */
	if (src_inside(s->real_root, real)) {
		e->real = real;
		return 1;
	}
	free(real);
	e->err = -EXDEV;
	return 1;
}

/* Append the regular, non-dot files of dir to s->ents. Returns: 0 or -errno. */
static int
src_list(struct dime_source *s, const char *dir, enum src_sub sub)
{
	DIR *d;
	struct dirent *e;
	size_t cap = s->n_ents;
	int rc = 0;

	if ((d = opendir(dir)) == NULL)
		return -errno;
	for (;;) {
		struct src_ent ent;
		int reg;

		errno = 0;
		if ((e = readdir(d)) == NULL) {
			rc = errno != 0 ? -errno : 0;
			break;
		}
		if (e->d_name[0] == '.')
			continue;
		memset(&ent, 0, sizeof(ent));
		if (e->d_type == DT_UNKNOWN) {
			struct stat sb;

			if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
				continue;
			reg = S_ISREG(sb.st_mode);
			if (S_ISLNK(sb.st_mode))
				reg = src_link(s, dirfd(d), dir, e->d_name, &ent);
		} else if (e->d_type == DT_LNK) {
			reg = src_link(s, dirfd(d), dir, e->d_name, &ent);
		} else {
			reg = e->d_type == DT_REG;
		}
		if (reg < 0) {
			rc = reg;
			break;
		}
		if (!reg)
			continue;
		if (s->n_ents == cap) {
			size_t ncap = cap < 64 ? 64 : cap * 2;
			struct src_ent *n = realloc(s->ents, ncap * sizeof(*n));

			if (n == NULL) {
				free(ent.real);
				rc = -ENOMEM;
				break;
			}
			s->ents = n;
			cap = ncap;
		}
		ent.sub = sub;
		s->ents[s->n_ents] = ent;
		if ((s->ents[s->n_ents].file = strdup(e->d_name)) == NULL) {
			free(ent.real);
			rc = -ENOMEM;
			break;
		}
		s->n_ents++;
	}
	closedir(d);
	return rc;
}

/* Maildir output names: sanitized; clashes get "cur_"/"new_", then "~N" (never a sanitized
 * byte, so a suffixed name cannot clash with anything). Returns: 0 or -ENOMEM. */
static int
src_maildir_names(struct dime_source *s)
{
	struct src_ent **ix = NULL;
	size_t n = s->n_ents, tilde = 0;
	int rc = -ENOMEM;

	for (size_t i = 0; i < n; i++) {
		struct src_ent *e = &s->ents[i];

		if ((e->out = strdup(e->file)) == NULL)
			goto out;
		for (char *p = e->out; *p != 0; p++)
			if (!src_safe_byte((unsigned char)*p))
				*p = '_';
	}
	if (n > 0 && (ix = malloc(n * sizeof(*ix))) == NULL)
		goto out;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++)
			ix[i] = &s->ents[i];
		qsort(ix, n, sizeof(*ix), src_ent_cmp_name);
		for (size_t i = 0; i < n;) {
			size_t j = i + 1;

			while (j < n && strcmp(src_ent_name(ix[i]), src_ent_name(ix[j])) == 0)
				j++;
			for (size_t k = i; j - i > 1 && k < j; k++) {
				char name[256], *o;

				if (pass == 1 && k == i)
					continue; /* the first keeps the name */
				if (pass == 0)
					snprintf(name, sizeof(name), "%s_%.251s",
						 ix[k]->sub == SRC_SUB_CUR ? "cur" : "new",
						 ix[k]->out);
				else
					snprintf(name, sizeof(name), "%.*s~%zu",
						 (int)(sizeof(name) - 22), ix[k]->out, ++tilde);
				if ((o = strdup(name)) == NULL)
					goto out;
				free(ix[k]->out);
				ix[k]->out = o;
			}
			i = j;
		}
	}
	rc = 0;
out:
	free(ix);
	return rc;
}

/* --- open / close --- */

static int
src_fill(struct dime_source *s)
{
	ssize_t r;

	if (s->head > 0) {
		memmove(s->buf, s->buf + s->head, s->tail - s->head);
		s->tail -= s->head;
		s->head = 0;
	}
	do
		r = read(s->fd, s->buf + s->tail, SRC_BUF_BYTES - s->tail);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		s->eof = 1;
	s->tail += (size_t)r;
	return 0;
}

static int
src_open_mbox(struct dime_source *s, const char *path, const char **why)
{
	struct stat sb;
	int rc;

	s->kind = DIME_SRC_MBOX;
	s->max = DIME_SOURCE_MAX_DEFAULT;
	if ((s->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		*why = "cannot open mbox";
		return -errno;
	}
	if (fstat(s->fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
		s->is_reg = 1;
		s->fsize = (uint64_t)sb.st_size;
	}
	if ((s->buf = malloc(SRC_BUF_BYTES)) == NULL)
		return -ENOMEM;
	/* The first line must be a From_ line: read until 5 bytes or the end. */
	while (s->tail < 5 && !s->eof)
		if ((rc = src_fill(s)) < 0) {
			*why = "cannot read mbox";
			return rc;
		}
	if (s->tail > 0 && (s->tail < 5 || memcmp(s->buf, "From ", 5) != 0)) {
		*why = "not an mbox: first line is not a From_ line";
		return -EINVAL;
	}
	return 0;
}

/* Maildir: the real path of root/cur or root/new, which must stay inside the root unless
 * links are followed. Returns: 0, -EXDEV (*why), -errno. */
static int
src_maildir_sub(struct dime_source *s, enum src_sub sub, const char *path, const char **why)
{
	if ((s->real_sub[sub] = realpath(path, NULL)) == NULL)
		return errno == ENOMEM ? -ENOMEM : -errno;
	if (!(s->flags & DIME_SOURCE_FOLLOW_SYMLINKS) &&
	    !src_inside(s->real_root, s->real_sub[sub])) {
		*why = "a Maildir folder is a symbolic link that leads outside the input "
		       "(--follow-symlinks allows it)";
		return -EXDEV;
	}
	return 0;
}

int
dime_source_open(struct dime_source **out, const char *path, unsigned flags, const char **why)
{
	struct dime_source *s;
	struct stat sb;
	size_t plen = strlen(path);
	char *sub = NULL;
	int rc = 0;

	*out = NULL;
	*why = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL || (s->root = strdup(path)) == NULL ||
	    (sub = malloc(plen + 8)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	s->fd = -1;
	s->flags = flags;
	if (stat(path, &sb) != 0) {
		rc = -errno;
		*why = "cannot stat input";
		goto out;
	}
	if (!S_ISDIR(sb.st_mode)) {
		if (S_ISREG(sb.st_mode) || S_ISFIFO(sb.st_mode) || S_ISCHR(sb.st_mode)) {
			rc = src_open_mbox(s, path, why);
		} else {
			rc = -EINVAL;
			*why = "input is not a directory or a file";
		}
		goto out;
	}
	/* Files are then named by their real path, so a link swapped in after listing is seen
	 * (the reader opens them refusing any symbolic link, DIME_SOURCE_NO_SYMLINKS). */
	if ((s->real_root = realpath(path, NULL)) == NULL) {
		rc = errno == ENOMEM ? -ENOMEM : -errno;
		*why = "cannot resolve the input directory";
		goto out;
	}
	{
		struct stat cur, nw;
		int maildir;

		snprintf(sub, plen + 8, "%s/cur", path);
		maildir = stat(sub, &cur) == 0 && S_ISDIR(cur.st_mode);
		snprintf(sub, plen + 8, "%s/new", path);
		maildir = maildir && stat(sub, &nw) == 0 && S_ISDIR(nw.st_mode);
		if (maildir) {
			s->kind = DIME_SRC_MAILDIR;
			snprintf(sub, plen + 8, "%s/cur", path);
			rc = src_maildir_sub(s, SRC_SUB_CUR, sub, why);
			if (rc == 0) {
				snprintf(sub, plen + 8, "%s/new", path);
				rc = src_maildir_sub(s, SRC_SUB_NEW, sub, why);
			}
			if (rc < 0)
				goto out;
			rc = src_list(s, s->real_sub[SRC_SUB_CUR], SRC_SUB_CUR);
			if (rc == 0)
				rc = src_list(s, s->real_sub[SRC_SUB_NEW], SRC_SUB_NEW);
		} else {
			s->kind = DIME_SRC_DIR;
			rc = src_list(s, s->real_root, SRC_SUB_NONE);
		}
	}
	if (rc < 0) {
		*why =
		    rc == -ENOMEM ? "out of memory listing the directory" : "cannot list directory";
		goto out;
	}
	if (s->n_ents > 0)
		qsort(s->ents, s->n_ents, sizeof(s->ents[0]), src_ent_cmp_file);
	for (size_t i = 0; i < s->n_ents; i++)
		s->ents[i].order = i;
	if (s->kind == DIME_SRC_MAILDIR && (rc = src_maildir_names(s)) < 0)
		*why = "out of memory naming the messages";
out:
	free(sub);
	if (rc < 0) {
		if (rc == -ENOMEM && *why == NULL)
			*why = "out of memory";
		dime_source_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

int
dime_source_contains(const struct dime_source *s, const char *path)
{
	char *real;
	int in;

	if (s->real_root == NULL)
		return 0;
	if ((real = realpath(path, NULL)) == NULL)
		return errno == ENOMEM ? -ENOMEM : 0;
	in = src_inside(s->real_root, real);
	free(real);
	return in;
}

enum dime_source_kind
dime_source_kind(const struct dime_source *s)
{
	return s->kind;
}

void
dime_source_set_max(struct dime_source *s, size_t bytes)
{
	s->max = bytes == 0 ? DIME_SOURCE_MAX_DEFAULT : bytes;
	if (s->max > SIZE_MAX / 2)
		s->max = SIZE_MAX / 2; /* max + 3 below must not overflow */
}

void
dime_source_item_free(struct dime_source_item *it)
{
	free(it->path);
	free(it->data);
	memset(it, 0, sizeof(*it));
}

void
dime_source_close(struct dime_source *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_ents; i++) {
		free(s->ents[i].file);
		free(s->ents[i].out);
		free(s->ents[i].real);
	}
	free(s->ents);
	if (s->fd >= 0)
		close(s->fd);
	free(s->buf);
	free(s->msg);
	free(s->root);
	free(s->real_root);
	free(s->real_sub[SRC_SUB_CUR]);
	free(s->real_sub[SRC_SUB_NEW]);
	free(s);
}

size_t
dime_source_count_hint(struct dime_source *s)
{
	double est;

	if (s->kind != DIME_SRC_MBOX)
		return s->n_ents;
	if (s->done)
		return s->ordinal;
	if (!s->is_reg || s->ordinal == 0 || s->consumed == 0)
		return 0;
	est = (double)s->ordinal * (double)s->fsize / (double)s->consumed;
	if (est < (double)s->ordinal)
		return s->ordinal;
	return est >= (double)SIZE_MAX ? SIZE_MAX : (size_t)est;
}

/* --- next --- */

static int
src_dir_next(struct dime_source *s, struct dime_source_item *it, const char **why)
{
	const struct src_ent *e;
	const char *dir;
	size_t n;

	if (s->next >= s->n_ents)
		return 0;
	e = &s->ents[s->next];
	snprintf(it->name, sizeof(it->name), "%s", src_ent_name(e));
	s->next++;
	if (e->err != 0) {
		it->err = e->err;
		it->why =
		    "a symbolic link that leads outside the input (--follow-symlinks allows it)";
		return 1;
	}
	if (s->flags & DIME_SOURCE_FOLLOW_SYMLINKS) {
		/* as given: root/[cur|new/]file */
		const char *pre = e->sub == SRC_SUB_CUR	  ? "/cur/"
				  : e->sub == SRC_SUB_NEW ? "/new/"
							  : "/";

		n = strlen(s->root) + strlen(pre) + strlen(e->file) + 1;
		if ((it->path = malloc(n)) == NULL)
			goto nomem;
		snprintf(it->path, n, "%s%s%s", s->root, pre, e->file);
		return 1;
	}
	it->no_symlinks = 1;
	if (e->real != NULL) {
		if ((it->path = strdup(e->real)) == NULL)
			goto nomem;
		return 1;
	}
	dir = e->sub == SRC_SUB_NONE ? s->real_root : s->real_sub[e->sub];
	n = strlen(dir) + strlen(e->file) + 2;
	if ((it->path = malloc(n)) == NULL)
		goto nomem;
	snprintf(it->path, n, "%s/%s", dir, e->file);
	return 1;
nomem:
	memset(it, 0, sizeof(*it));
	*why = "out of memory";
	return -ENOMEM;
}

static int
src_is_from(const uint8_t *p, size_t n)
{
	return n >= 5 && memcmp(p, "From ", 5) == 0;
}

/* Append n bytes of message text, or only count them once the message is over the maximum.
 * Up to max + 2 bytes are kept: the separator's blank line ("\r\n") is removed afterwards. */
static int
src_msg_add(struct dime_source *s, const uint8_t *p, size_t n)
{
	if (!s->oversize && n > s->max + 2 - s->msg_len) {
		s->oversize = 1;
		free(s->msg);
		s->msg = NULL;
		s->msg_cap = 0;
	}
	if (!s->oversize && n > 0) {
		if (s->msg_cap - s->msg_len < n + 1) {
			size_t ncap = s->msg_cap == 0 ? SRC_MSG_FIRST : s->msg_cap;
			uint8_t *m;

			while (ncap - s->msg_len < n + 1)
				ncap *= 2;
			if (ncap > s->max + 3)
				ncap = s->max + 3;
			if ((m = realloc(s->msg, ncap)) == NULL)
				return -ENOMEM;
			s->msg = m;
			s->msg_cap = ncap;
		}
		memcpy(s->msg + s->msg_len, p, n);
	}
	s->msg_len += n; /* counted even when oversize: it only grows within one message */
	return 0;
}

/* The message is complete: hand it over as an item and start the next one empty. */
static int
src_msg_emit(struct dime_source *s, struct dime_source_item *it)
{
	if (s->prev_blank) /* the blank line before a From_ line or the end is framing */
		s->msg_len -= s->blank_len;
	s->ordinal++;
	snprintf(it->name, sizeof(it->name), "msg-%06zu", s->ordinal);
	if (s->oversize || s->msg_len > s->max) {
		it->err = -EFBIG;
		it->why = "message larger than the maximum";
		free(s->msg);
	} else {
		if (s->msg == NULL && (s->msg = malloc(1)) == NULL)
			return -ENOMEM;
		s->msg[s->msg_len] = 0;
		it->data = s->msg;
		it->len = s->msg_len;
	}
	s->msg = NULL;
	s->msg_len = s->msg_cap = 0;
	s->oversize = 0;
	s->prev_blank = 0;
	return 1;
}

static int
src_mbox_next(struct dime_source *s, struct dime_source_item *it, const char **why)
{
	int rc;

	if (s->done)
		return 0;
	for (;;) {
		const uint8_t *p, *nl;
		size_t n, k;
		int complete;

		if (s->head == s->tail && s->eof) {
			s->done = 1;
			return s->started ? src_msg_emit(s, it) : 0;
		}
		p = s->buf + s->head;
		nl = memchr(p, '\n', s->tail - s->head);
		if (nl == NULL && !s->eof && !(s->head == 0 && s->tail == SRC_BUF_BYTES)) {
			if ((rc = src_fill(s)) < 0) {
				*why = "cannot read mbox";
				return rc;
			}
			continue;
		}
		/* A whole line, the last line (no newline at the end), or a full buffer of a
		 * longer line. */
		n = nl != NULL ? (size_t)(nl - p) + 1 : s->tail - s->head;
		complete = nl != NULL || s->eof;
		s->head += n;
		s->consumed += n;
		if (s->in_line) {
			if (!s->skip_line && (rc = src_msg_add(s, p, n)) < 0)
				goto nomem;
			if (complete)
				s->in_line = s->skip_line = 0;
			continue;
		}
		if ((!s->started || s->prev_blank) && src_is_from(p, n)) {
			int had = s->started;

			s->started = 1;
			s->in_line = s->skip_line = !complete;
			if (had)
				return src_msg_emit(s, it);
			continue;
		}
		if (!s->started) { /* open checked the first line; a pipe cannot change it */
			*why = "not an mbox: first line is not a From_ line";
			return -EINVAL;
		}
		for (k = 0; k < n && p[k] == '>'; k++)
			;
		if (k > 0 && src_is_from(p + k, n - k)) { /* mboxrd: >From -> From */
			p++;
			n--;
		}
		if ((rc = src_msg_add(s, p, n)) < 0)
			goto nomem;
		if (complete) {
			s->prev_blank =
			    (n == 1 && p[0] == '\n') || (n == 2 && p[0] == '\r' && p[1] == '\n');
			s->blank_len = n;
		} else {
			s->in_line = 1;
			s->prev_blank = 0;
		}
	}
nomem:
	*why = "out of memory";
	return -ENOMEM;
}

int
dime_source_next(struct dime_source *s, struct dime_source_item *it, const char **why)
{
	int rc;

	memset(it, 0, sizeof(*it));
	*why = NULL;
	if (s->err != 0) {
		*why = s->err_why;
		return s->err;
	}
	rc = s->kind == DIME_SRC_MBOX ? src_mbox_next(s, it, why) : src_dir_next(s, it, why);
	if (rc < 0) {
		if (*why == NULL)
			*why = "out of memory";
		dime_source_item_free(it);
		s->err = rc;
		s->err_why = *why;
	}
	return rc;
}

/* The delivery thread: drains the spool's queue/ in name order to a Maildir per user or to an
 * LMTP downstream (RFC 2033). A message leaves queue/ only after the delivery succeeded (the
 * Maildir file fsynced and renamed into new/ with new/ fsynced, or LMTP's 250 for the one
 * recipient): at least once across a crash. 4xx and local I/O errors retry with a doubling
 * backoff; 5xx moves the message to held/ with the reason logged. */
#include "dime/deliver.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "dime/dlog.h"
#include "dime/io.h"
#include "spool_int.h"

#define DELIVER_IO_TIMEOUT_S 300 /* LMTP: RFC 5321 §4.5.3.2's shortest reply timeouts */
#define DELIVER_RESCAN_MS    60000
#define DELIVER_NAME_CAP     129
#define DELIVER_ADDR_CAP     513
#define DELIVER_BATCH	     64 /* Maildir deliveries sharing one fsync of each new/ */

enum deliver_result { DELIVER_OK = 0, DELIVER_TEMP, DELIVER_PERM };

struct deliver_retry {
	char name[DELIVER_NAME_CAP];
	uint64_t next_ms;
	unsigned attempts;
};

/* A Maildir delivery written to tmp/ whose fsync, link into new/ and fsync of new/ wait for
 * the rest of its batch (deliver_flush): the batch's files are fsynced at once. */
struct deliver_pend {
	char name[DELIVER_NAME_CAP], rcpt[DELIVER_ADDR_CAP];
	int fd;		       /* the tmp/ file, written, open */
	char *tmp, *new, *dir; /* tmp/ path, new/ path, new/ itself */
	int err;	       /* after deliver_md_commit: 0 (durable in new/) or the errno */
	int dup;	       /* new/ held the message already (the same name: a repeat) */
	const char *what;      /* what err is about: tmp or dir */
};

struct dime_deliver {
	struct dime_spool *s;
	enum dime_dconf_delivery how;
	char maildir_root[4096], lmtp[512], hostname[256];
	unsigned retry_min_ms, retry_max_ms;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int kicked, stop, drain; /* under mu */
	struct deliver_retry *retry;
	size_t n_retry, cap_retry;
	atomic_ulong seq;	  /* Maildir names: unique within this process */
	struct dime_io_group now; /* dime_deliver_now's group commit */
	/* Maildir deliveries of this pass whose new/ is not fsynced yet: their spool files stay
	 * queued until it is (deliver_flush), so a crash before loses nothing. */
	struct deliver_pend pend[DELIVER_BATCH];
	size_t n_pend;
};

static uint64_t
deliver_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct deliver_retry *
deliver_retry_find(struct dime_deliver *d, const char *name)
{
	for (size_t i = 0; i < d->n_retry; i++)
		if (strcmp(d->retry[i].name, name) == 0)
			return &d->retry[i];
	return NULL;
}

static void
deliver_retry_drop(struct dime_deliver *d, const char *name)
{
	struct deliver_retry *r = deliver_retry_find(d, name);

	if (r != NULL)
		*r = d->retry[--d->n_retry];
}

/* Returns the wait before the next attempt, in ms; 0 if the table cannot grow (retry at the
 * next scan, which is no worse than forgetting the backoff). */
static uint64_t
deliver_retry_note(struct dime_deliver *d, const char *name)
{
	struct deliver_retry *r = deliver_retry_find(d, name);
	uint64_t wait;

	if (r == NULL) {
		if (d->n_retry == d->cap_retry) {
			size_t cap = d->cap_retry ? d->cap_retry * 2 : 16;
			struct deliver_retry *nr = realloc(d->retry, cap * sizeof(*nr));

			if (nr == NULL)
				return 0;
			d->retry = nr;
			d->cap_retry = cap;
		}
		r = &d->retry[d->n_retry++];
		memset(r, 0, sizeof(*r));
		snprintf(r->name, sizeof(r->name), "%s", name);
	}
	wait = d->retry_min_ms;
	for (unsigned i = 0; i < r->attempts && wait < d->retry_max_ms; i++)
		wait *= 2;
	if (wait > d->retry_max_ms)
		wait = d->retry_max_ms;
	r->attempts++;
	r->next_ms = deliver_now_ms() + wait;
	return wait;
}

/* local@domain, each part a safe single path component. */
static int
deliver_split_addr(const char *rcpt, char *local, char *domain)
{
	const char *at = strrchr(rcpt, '@');
	size_t ll, dl;

	if (at == NULL)
		return 0;
	ll = (size_t)(at - rcpt);
	dl = strlen(at + 1);
	if (ll == 0 || dl == 0 || ll > 255 || dl > 255)
		return 0;
	memcpy(local, rcpt, ll);
	local[ll] = '\0';
	for (size_t i = 0; i <= dl; i++) /* domains are case-insensitive: one directory */
		domain[i] =
		    (at[1 + i] >= 'A' && at[1 + i] <= 'Z') ? (char)(at[1 + i] + 32) : at[1 + i];
	if (local[0] == '.' || domain[0] == '.' || strchr(local, '/') != NULL ||
	    strchr(domain, '/') != NULL)
		return 0;
	return 1;
}

/* A path that does not fit is an error, never a shorter path. */
static int deliver_path(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
deliver_path(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int
deliver_mkdir(const char *path)
{
	return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/* The Maildir rule: write tmp/, fsync, link to new/NAME, fsync new/. NAME is the spool id
 * (the message's SHA-512) and the host: the same message always gets the same name, so a
 * delivery repeated after a crash between the link and the spool's unlink finds new/NAME
 * already there (EEXIST) and adds no second copy (dimed's kill -9 test). The tmp/ name adds
 * pid and a counter, unique per the Maildir convention. This writes tmp/ and fills *p; the
 * rest is deliver_flush's, for the whole batch at once. */
static enum deliver_result
deliver_maildir(struct dime_deliver *d, const char *id, const char *rcpt, const char *msg,
		size_t len, char *why, size_t why_cap, struct deliver_pend *p)
{
	char local[256], domain[256], box[4096 + 520], p_tmp[4096 + 800], p_new[4096 + 800];
	char name[400], host[256], p_dir[4096 + 800];
	struct timeval tv;
	int fd = -1, e;
	size_t hl = 0;

	if (!deliver_split_addr(rcpt, local, domain)) {
		snprintf(why, why_cap, "recipient \"%s\" is not a local@domain Maildir can hold",
			 rcpt);
		return DELIVER_PERM;
	}
	/* '/' and ':' cannot appear in a Maildir name's host part (the Maildir convention). */
	for (const char *h = d->hostname; *h != '\0' && hl + 4 < sizeof(host); h++) {
		if (*h == '/' || *h == ':') {
			hl += (size_t)snprintf(host + hl, sizeof(host) - hl, "\\%03o", *h);
			continue;
		}
		host[hl++] = *h;
	}
	host[hl] = '\0';
	if (deliver_path(box, sizeof(box), "%s/%s/%s", d->maildir_root, domain, local) != 0 ||
	    deliver_path(p_dir, sizeof(p_dir), "%s/new", box) != 0)
		goto io;
	gettimeofday(&tv, NULL);
	snprintf(name, sizeof(name), "%.128s.%s", id, host);
	if (deliver_path(p_tmp, sizeof(p_tmp), "%s/tmp/%lld.M%ldP%ldQ%lu.%s", box,
			 (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
			 atomic_fetch_add(&d->seq, 1) + 1, host) != 0 ||
	    deliver_path(p_new, sizeof(p_new), "%s/new/%s", box, name) != 0)
		goto io;
	/* The Maildir exists but for a user's first message: its directories are made only when
	 * the create finds tmp/ missing (six mkdirs per message otherwise). */
	fd = open(p_tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 && errno == ENOENT) {
		char sub[4096 + 800];

		for (size_t i = 0; i < 3; i++) {
			static const char *const dirs[3] = {"tmp", "new", "cur"};

			if (i == 0 && (deliver_path(sub, sizeof(sub), "%s/%s", d->maildir_root,
						    domain) != 0 ||
				       deliver_mkdir(d->maildir_root) != 0 ||
				       deliver_mkdir(sub) != 0 || deliver_mkdir(box) != 0))
				goto io;
			if (deliver_path(sub, sizeof(sub), "%s/%s", box, dirs[i]) != 0 ||
			    deliver_mkdir(sub) != 0)
				goto io;
		}
		fd = open(p_tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	}
	if (fd < 0)
		goto io;
	if ((e = dime_io_write_all(fd, msg, len)) != 0) {
		errno = -e;
		goto io;
	}
	/* Only a hint, so the batch's data is on its way to the disk before the fsyncs. */
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	p->tmp = strdup(p_tmp);
	p->new = strdup(p_new);
	p->dir = strdup(p_dir);
	if (p->tmp == NULL || p->new == NULL || p->dir == NULL) {
		free(p->tmp);
		free(p->new);
		free(p->dir);
		errno = ENOMEM;
		goto io;
	}
	p->fd = fd;
	return DELIVER_OK;
io:
	e = errno;
	snprintf(why, why_cap, "maildir %.900s: %s", box, strerror(e));
	if (fd >= 0) {
		close(fd);
		unlink(p_tmp);
	}
	return DELIVER_TEMP; /* disk full, permissions: the operator can fix it; keep it */
}

struct lmtp_conn {
	int fd;
	char in[1024];
	size_t in_len;
	char out[8192];
	size_t out_len;
	int failed;
};

static int
lmtp_connect(const char *target, char *why, size_t why_cap)
{
	struct timeval tv = {.tv_sec = DELIVER_IO_TIMEOUT_S};
	int fd = -1;

	if (strncmp(target, "unix:", 5) == 0) {
		struct sockaddr_un sun;

		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (strlen(target + 5) >= sizeof(sun.sun_path)) {
			snprintf(why, why_cap, "lmtp %s: path too long", target);
			return -1;
		}
		strcpy(sun.sun_path, target + 5);
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
		    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
			snprintf(why, why_cap, "lmtp %s: %s", target, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
	} else {
		char host[256];
		const char *colon = strrchr(target, ':'), *h = target;
		size_t hl;
		struct addrinfo hints, *res = NULL, *ai;
		int gai;

		if (colon == NULL) {
			snprintf(why, why_cap, "lmtp %s: want HOST:PORT", target);
			return -1;
		}
		hl = (size_t)(colon - target);
		if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
			h++;
			hl -= 2;
		}
		if (hl == 0 || hl >= sizeof(host)) {
			snprintf(why, why_cap, "lmtp %s: bad host", target);
			return -1;
		}
		memcpy(host, h, hl);
		host[hl] = '\0';
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		if ((gai = getaddrinfo(host, colon + 1, &hints, &res)) != 0) {
			snprintf(why, why_cap, "lmtp %s: %s", target, gai_strerror(gai));
			return -1;
		}
		for (ai = res; ai != NULL; ai = ai->ai_next) {
			fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
			if (fd >= 0) /* LMTP's pipelined commands and data: no Nagle wait */
				(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1},
						 sizeof(int));
			if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
				break;
			snprintf(why, why_cap, "lmtp %s: %s", target, strerror(errno));
			if (fd >= 0)
				close(fd);
			fd = -1;
		}
		freeaddrinfo(res);
		if (fd < 0)
			return -1;
	}
	/* The delivery thread blocks here by design; a hung downstream times out into a 4xx. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

static void
lmtp_flush(struct lmtp_conn *c)
{
	if (!c->failed && c->out_len > 0 && dime_io_write_all(c->fd, c->out, c->out_len) != 0)
		c->failed = 1;
	c->out_len = 0;
}

static void
lmtp_put(struct lmtp_conn *c, const char *p, size_t n)
{
	while (n > 0 && !c->failed) {
		size_t k = sizeof(c->out) - c->out_len;

		if (k == 0) {
			lmtp_flush(c);
			continue;
		}
		if (k > n)
			k = n;
		memcpy(c->out + c->out_len, p, k);
		c->out_len += k;
		p += k;
		n -= k;
	}
}

/* One reply, multi-line included (`250-...` then `250 ...`). Returns the code, or -1 on
 * I/O error, timeout or a malformed reply; text gets the last line. */
static int
lmtp_reply(struct lmtp_conn *c, char *text, size_t text_cap)
{
	for (;;) {
		char *nl = memchr(c->in, '\n', c->in_len);
		ssize_t n;

		if (nl != NULL) {
			size_t ll = (size_t)(nl - c->in) + 1, tl = ll - 1;
			int code, last;

			if (tl > 0 && c->in[tl - 1] == '\r')
				tl--;
			if (tl < 3 || c->in[0] < '2' || c->in[0] > '5' || c->in[1] < '0' ||
			    c->in[1] > '9' || c->in[2] < '0' || c->in[2] > '9' ||
			    (tl > 3 && c->in[3] != ' ' && c->in[3] != '-'))
				return -1;
			code = (c->in[0] - '0') * 100 + (c->in[1] - '0') * 10 + (c->in[2] - '0');
			last = tl == 3 || c->in[3] == ' ';
			snprintf(text, text_cap, "%.*s", (int)tl, c->in);
			memmove(c->in, c->in + ll, c->in_len - ll);
			c->in_len -= ll;
			if (last)
				return code;
			continue;
		}
		if (c->in_len == sizeof(c->in))
			return -1; /* a reply line longer than any RFC 5321 one */
		n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		c->in_len += (size_t)n;
	}
}

/* Send cmd, read the reply; returns the code or -1. */
static int
lmtp_cmd(struct lmtp_conn *c, const char *cmd, char *text, size_t text_cap)
{
	lmtp_put(c, cmd, strlen(cmd));
	lmtp_put(c, "\r\n", 2);
	lmtp_flush(c);
	if (c->failed)
		return -1;
	return lmtp_reply(c, text, text_cap);
}

/* DATA's body: every line ends in CRLF, a leading '.' is doubled (RFC 5321 §4.5.2), and the
 * terminator follows. A final line without LF still gets its CRLF. */
static void
lmtp_body(struct lmtp_conn *c, const char *msg, size_t len)
{
	size_t off = 0;

	while (off < len && !c->failed) {
		const char *nl = memchr(msg + off, '\n', len - off);
		size_t end = nl != NULL ? (size_t)(nl - msg) : len, ll = end - off;

		if (ll > 0 && msg[off + ll - 1] == '\r')
			ll--;
		if (ll > 0 && msg[off] == '.')
			lmtp_put(c, ".", 1);
		lmtp_put(c, msg + off, ll);
		lmtp_put(c, "\r\n", 2);
		off = nl != NULL ? end + 1 : len;
	}
	lmtp_put(c, ".\r\n", 3);
	lmtp_flush(c);
}

static enum deliver_result
deliver_code(int code)
{
	if (code >= 200 && code < 300)
		return DELIVER_OK;
	return code >= 500 ? DELIVER_PERM : DELIVER_TEMP; /* -1 (I/O) and 4xx: try again */
}

static enum deliver_result
deliver_lmtp(struct dime_deliver *d, const char *rcpt, const char *msg, size_t len, char *why,
	     size_t why_cap)
{
	struct lmtp_conn *c = calloc(1, sizeof(*c));
	char cmd[DELIVER_ADDR_CAP + 32], text[512];
	enum deliver_result r = DELIVER_TEMP;
	const char *step = "greeting";
	int code;

	if (c == NULL) {
		snprintf(why, why_cap, "out of memory");
		return DELIVER_TEMP;
	}
	text[0] = '\0';
	if ((c->fd = lmtp_connect(d->lmtp, why, why_cap)) < 0) {
		free(c);
		return DELIVER_TEMP;
	}
	if ((code = lmtp_reply(c, text, sizeof(text))) != 220)
		goto reply;
	step = "LHLO";
	snprintf(cmd, sizeof(cmd), "LHLO %s", d->hostname);
	if ((code = lmtp_cmd(c, cmd, text, sizeof(text))) != 250)
		goto reply;
	step = "MAIL FROM";
	/* The message is D/MIME: the DIME origin is inside it, LMTP gets a null reverse-path. */
	if ((code = lmtp_cmd(c, "MAIL FROM:<>", text, sizeof(text))) != 250)
		goto reply;
	step = "RCPT TO";
	snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>", rcpt);
	if ((code = lmtp_cmd(c, cmd, text, sizeof(text))) < 200 || code >= 300)
		goto reply;
	step = "DATA";
	if ((code = lmtp_cmd(c, "DATA", text, sizeof(text))) != 354)
		goto reply;
	lmtp_body(c, msg, len);
	step = "end of DATA";
	/* RFC 2033 §4.2: one reply per accepted recipient after the final dot; we sent one. */
	code = c->failed ? -1 : lmtp_reply(c, text, sizeof(text));
	if (code >= 200 && code < 300) {
		char bye[64];

		(void)lmtp_cmd(c, "QUIT", bye, sizeof(bye)); /* delivered whatever QUIT says */
		r = DELIVER_OK;
		goto out;
	}
reply:
	r = deliver_code(code);
	if (r == DELIVER_OK) /* a 2xx where another code was due: a broken server */
		r = DELIVER_TEMP;
	if (code < 0)
		snprintf(why, why_cap, "lmtp %s: %s: no reply (%s)", d->lmtp, step,
			 c->failed ? "write failed" : "closed, timeout or malformed");
	else
		snprintf(why, why_cap, "lmtp %s: %s: %s", d->lmtp, step, text);
	if (code > 0)
		(void)lmtp_cmd(c, "QUIT", text, sizeof(text));
out:
	close(c->fd);
	free(c);
	return r;
}

static int
deliver_read(int dirfd, const char *name, char **buf, size_t *len)
{
	struct stat sb;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	size_t off = 0;

	*buf = NULL;
	*len = 0;
	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    (*buf = malloc((size_t)sb.st_size + 1)) == NULL) {
		close(fd);
		return -1;
	}
	while (off < (size_t)sb.st_size) {
		ssize_t n = read(fd, *buf + off, (size_t)sb.st_size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	if (off != (size_t)sb.st_size) {
		free(*buf);
		*buf = NULL;
		return -1;
	}
	(*buf)[off] = '\0';
	*len = off;
	return 0;
}

/* Make n written Maildir files durable, as one group: their tmp/ files fsynced at once
 * (dime_io_fsync_many), each linked into new/ (an existing name is the same message: a
 * repeat), each new/ fsynced once. Sets each p[i].err (0: durable in new/), .dup, .what;
 * closes the fds and frees nothing. */
static void
deliver_md_commit(struct deliver_pend *p, size_t n)
{
	int fds[DELIVER_BATCH] = {0}, errs[DELIVER_BATCH] = {0}, dir_err[DELIVER_BATCH] = {0};
	size_t dir_of[DELIVER_BATCH] = {0}, n_dirs = 0;
	const char *dirs[DELIVER_BATCH];

	for (size_t i = 0; i < n; i++) {
		fds[i] = p[i].fd;
		errs[i] = 0;
	}
	dime_io_fsync_many(fds, n, errs);
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;

		p[i].err = -errs[i];
		p[i].dup = 0;
		p[i].what = p[i].tmp;
		dir_of[i] = 0;
		if (close(p[i].fd) != 0 && p[i].err == 0)
			p[i].err = errno;
		p[i].fd = -1;
		if (p[i].err == 0 && link(p[i].tmp, p[i].new) != 0) {
			if (errno == EEXIST)
				p[i].dup = 1;
			else
				p[i].err = errno;
		}
		unlink(p[i].tmp); /* linked, or failed: tmp/ keeps nothing */
		if (p[i].err != 0)
			continue;
		while (k < n_dirs && strcmp(dirs[k], p[i].dir) != 0)
			k++;
		if (k == n_dirs)
			dirs[n_dirs++] = p[i].dir;
		dir_of[i] = k;
	}
	for (size_t k = 0; k < n_dirs; k++) {
		int fd = open(dirs[k], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		dir_err[k] = 0;
		if (fd < 0 || fsync(fd) != 0)
			dir_err[k] = errno != 0 ? errno : EIO;
		if (fd >= 0)
			close(fd);
	}
	for (size_t i = 0; i < n; i++)
		if (p[i].err == 0 && dir_err[dir_of[i]] != 0) {
			/* in new/ but perhaps not durably: delivering again later is the
			 * at-least-once side of the trade */
			p[i].err = dir_err[dir_of[i]];
			p[i].what = p[i].dir;
		}
}

static void
deliver_pend_free(struct deliver_pend *p)
{
	free(p->tmp);
	free(p->new);
	free(p->dir);
	p->tmp = p->new = p->dir = NULL;
}

/* The pending Maildir deliveries of the thread's pass, as one group (deliver_md_commit), then
 * the spool files of those that are durable taken out of queue/ with one fsync of queue/ (a
 * crash that loses the unlink delivers again, and the Maildir name adds no second copy). */
static void
deliver_flush(struct dime_deliver *d)
{
	size_t gone = 0;

	deliver_md_commit(d->pend, d->n_pend);
	for (size_t i = 0; i < d->n_pend; i++) {
		struct deliver_pend *p = &d->pend[i];

		if (p->err != 0) {
			uint64_t wait = deliver_retry_note(d, p->name);

			dime_dlog(DIME_DLOG_WARNING, "deliver.deferred",
				  "id=%s to=%s retry_ms=%llu why=\"maildir %.900s: %s\"", p->name,
				  p->rcpt, (unsigned long long)wait, p->what, strerror(p->err));
			continue;
		}
		deliver_retry_drop(d, p->name);
		if (unlinkat(d->s->queue_fd, p->name, 0) != 0)
			dime_dlog(DIME_DLOG_WARNING, "deliver.unqueue",
				  "id=%s error=\"%s\" note=\"delivered; may be delivered again\"",
				  p->name, strerror(errno));
		else
			gone++;
		dime_dlog(DIME_DLOG_INFO, "deliver.ok", "id=%s to=%s via=maildir", p->name,
			  p->rcpt);
	}
	if (gone > 0 && fsync(d->s->queue_fd) != 0)
		dime_dlog(DIME_DLOG_WARNING, "deliver.unqueue",
			  "error=\"%s\" note=\"delivered; may be delivered again\"",
			  strerror(errno));
	for (size_t i = 0; i < d->n_pend; i++)
		deliver_pend_free(&d->pend[i]);
	d->n_pend = 0;
}

/* One dime_deliver_now call, on its caller's stack. */
struct deliver_now_item {
	const char *id, *rcpt;
	const uint8_t *msg;
	size_t len;
	int rc, dup;
	char *why;
	size_t why_cap;
};

/* The group commit's call: each item written to its tmp/, then all made durable at once. */
static void
deliver_now_commit(void *ctx, void **items, size_t n)
{
	struct dime_deliver *d = ctx;
	struct deliver_pend p[DELIVER_BATCH];
	struct deliver_now_item *at[DELIVER_BATCH];
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		struct deliver_now_item *it = items[i];
		enum deliver_result r;

		if (m == DELIVER_BATCH) { /* more than a batch: the rest as the next one */
			deliver_now_commit(d, items + i, n - i);
			break;
		}
		memset(&p[m], 0, sizeof(p[m]));
		r = deliver_maildir(d, it->id, it->rcpt, (const char *)it->msg, it->len, it->why,
				    it->why_cap, &p[m]);
		if (r != DELIVER_OK) {
			it->rc = r == DELIVER_PERM ? DIME_E_INVALID : DIME_E_IO;
			continue;
		}
		at[m++] = it;
	}
	deliver_md_commit(p, m);
	for (size_t i = 0; i < m; i++) {
		at[i]->rc = p[i].err == 0 ? DIME_OK : DIME_E_IO;
		at[i]->dup = p[i].dup;
		if (p[i].err != 0)
			snprintf(at[i]->why, at[i]->why_cap, "maildir %.900s: %s", p[i].what,
				 strerror(p[i].err));
		deliver_pend_free(&p[i]);
	}
}

int
dime_deliver_is_maildir(const struct dime_deliver *d)
{
	return d != NULL && d->how == DIME_DCONF_MAILDIR;
}

int
dime_deliver_now(struct dime_deliver *d, int *dup, const char *id, const char *rcpt,
		 const uint8_t *msg, size_t len, char *why, size_t why_cap)
{
	struct deliver_now_item it = {id, rcpt, msg, len, DIME_E_IO, 0, why, why_cap};

	*dup = 0;
	if (why_cap > 0)
		why[0] = '\0';
	if (!dime_deliver_is_maildir(d)) {
		snprintf(why, why_cap, "delivery is not to a Maildir");
		return DIME_E_INVALID;
	}
	dime_io_group_run(&d->now, &it);
	*dup = it.dup;
	return it.rc;
}

/* One queued file: deliver, then take it out of queue/ (or move it to held/); a Maildir
 * delivery is taken out by deliver_flush, once its new/ is fsynced. */
static void
deliver_one(struct dime_deliver *d, const char *name, int ignore_backoff)
{
	struct deliver_retry *rt = deliver_retry_find(d, name);
	char rcpt[DELIVER_ADDR_CAP], origin[DELIVER_ADDR_CAP], why[1024];
	const char *msg;
	size_t msg_len, len;
	char *buf;
	enum deliver_result r;

	if (rt != NULL && !ignore_backoff && deliver_now_ms() < rt->next_ms)
		return;
	why[0] = '\0';
	if (deliver_read(d->s->queue_fd, name, &buf, &len) != 0) {
		if (errno == ENOENT) { /* gone since the scan (an operator): nothing to retry */
			deliver_retry_drop(d, name);
			return;
		}
		dime_dlog(DIME_DLOG_WARNING, "deliver.read", "id=%s error=\"%s\"", name,
			  strerror(errno));
		deliver_retry_note(d, name);
		return;
	}
	if (dime_spool_parse(buf, len, rcpt, sizeof(rcpt), origin, sizeof(origin), &msg,
			     &msg_len) != DIME_OK) {
		r = DELIVER_PERM;
		snprintf(why, sizeof(why), "spool file without its envelope");
	} else if (d->how == DIME_DCONF_LMTP) {
		r = deliver_lmtp(d, rcpt, msg, msg_len, why, sizeof(why));
	} else {
		struct deliver_pend *p = &d->pend[d->n_pend];

		r = deliver_maildir(d, name, rcpt, msg, msg_len, why, sizeof(why), p);
		if (r == DELIVER_OK) {
			/* settled by deliver_flush, with the rest of the batch */
			free(buf);
			snprintf(p->name, sizeof(p->name), "%s", name);
			snprintf(p->rcpt, sizeof(p->rcpt), "%s", rcpt);
			if (++d->n_pend == DELIVER_BATCH)
				deliver_flush(d);
			return;
		}
	}
	free(buf);
	for (char *q = why; *q != '\0'; q++) /* the log quotes why with '"' */
		if (*q == '"')
			*q = '\'';
	if (r == DELIVER_OK) {
		deliver_retry_drop(d, name);
		if (unlinkat(d->s->queue_fd, name, 0) != 0 || fsync(d->s->queue_fd) != 0)
			dime_dlog(DIME_DLOG_WARNING, "deliver.unqueue",
				  "id=%s error=\"%s\" note=\"delivered; may be delivered again\"",
				  name, strerror(errno));
		dime_dlog(DIME_DLOG_INFO, "deliver.ok", "id=%s to=%s via=%s", name, rcpt,
			  d->how == DIME_DCONF_LMTP ? "lmtp" : "maildir");
		return;
	}
	if (r == DELIVER_TEMP) {
		uint64_t wait = deliver_retry_note(d, name);

		dime_dlog(DIME_DLOG_WARNING, "deliver.deferred",
			  "id=%s to=%s retry_ms=%llu why=\"%s\"", name, rcpt,
			  (unsigned long long)wait, why);
		return;
	}
	deliver_retry_drop(d, name);
	if (renameat(d->s->queue_fd, name, d->s->held_fd, name) != 0 || fsync(d->s->held_fd) != 0 ||
	    fsync(d->s->queue_fd) != 0) {
		dime_dlog(DIME_DLOG_ERROR, "deliver.hold", "id=%s error=\"%s\"", name,
			  strerror(errno));
		deliver_retry_note(d, name);
		return;
	}
	dime_dlog(DIME_DLOG_ERROR, "deliver.held", "id=%s to=%s why=\"%s\"", name, rcpt, why);
}

static int
deliver_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One pass over queue/ in name order. Returns the number of files seen. */
static size_t
deliver_pass(struct dime_deliver *d, int ignore_backoff)
{
	int fd = openat(d->s->queue_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (dir == NULL) {
		if (fd >= 0)
			close(fd);
		dime_dlog(DIME_DLOG_ERROR, "deliver.scan", "error=\"%s\"", strerror(errno));
		return 0;
	}
	while ((e = readdir(dir)) != NULL) {
		char *nm;

		if (e->d_name[0] == '.' || strlen(e->d_name) >= DELIVER_NAME_CAP)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			char **nn = realloc(names, nc * sizeof(*nn));

			if (nn == NULL)
				break; /* the rest waits for the next pass */
			names = nn;
			cap = nc;
		}
		if ((nm = strdup(e->d_name)) == NULL)
			break;
		names[n++] = nm;
	}
	closedir(dir);
	if (n > 0)
		qsort(names, n, sizeof(*names), deliver_cmp);
	for (size_t i = 0; i < n; i++) {
		deliver_one(d, names[i], ignore_backoff);
		free(names[i]);
	}
	deliver_flush(d);
	free(names);
	return n;
}

/* Wait until kicked, stopped, or the earliest retry (at most a rescan period). */
static void
deliver_wait(struct dime_deliver *d)
{
	uint64_t now = deliver_now_ms(), wait = DELIVER_RESCAN_MS;
	struct timespec ts;

	for (size_t i = 0; i < d->n_retry; i++) {
		uint64_t w = d->retry[i].next_ms > now ? d->retry[i].next_ms - now : 0;

		if (w < wait)
			wait = w;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(wait / 1000);
	ts.tv_nsec += (long)(wait % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&d->mu);
	while (!d->kicked && !d->stop)
		if (pthread_cond_timedwait(&d->cv, &d->mu, &ts) == ETIMEDOUT)
			break;
	d->kicked = 0;
	pthread_mutex_unlock(&d->mu);
}

static void *
deliver_main(void *arg)
{
	struct dime_deliver *d = arg;

	for (;;) {
		int stop, drain;

		pthread_mutex_lock(&d->mu);
		stop = d->stop;
		drain = d->drain;
		d->kicked = 0;
		pthread_mutex_unlock(&d->mu);
		if (stop) {
			/* drain: one last attempt at everything, backoff or not */
			if (drain)
				(void)deliver_pass(d, 1);
			break;
		}
		(void)deliver_pass(d, 0);
		deliver_wait(d);
	}
	return NULL;
}

int
dime_deliver_start(struct dime_deliver **out, const struct dime_dconf *c, struct dime_spool *s,
		   char *why, size_t why_cap)
{
	struct dime_deliver *d;
	pthread_condattr_t ca;
	int e;

	*out = NULL;
	if (why_cap > 0)
		why[0] = '\0';
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return DIME_E_NOMEM;
	d->s = s;
	d->how = c->delivery;
	snprintf(d->maildir_root, sizeof(d->maildir_root), "%s", c->maildir_root);
	snprintf(d->lmtp, sizeof(d->lmtp), "%s", c->lmtp);
	snprintf(d->hostname, sizeof(d->hostname), "%s",
		 c->hostname[0] != '\0' ? c->hostname : "localhost");
	d->retry_min_ms = c->retry_min_ms > 0 ? c->retry_min_ms : 1000;
	d->retry_max_ms = c->retry_max_ms >= d->retry_min_ms ? c->retry_max_ms : d->retry_min_ms;
	if (d->how == DIME_DCONF_LMTP && d->lmtp[0] == '\0') {
		snprintf(why, why_cap, "delivery = lmtp without an lmtp target");
		free(d);
		return DIME_E_INVALID;
	}
	if (d->how == DIME_DCONF_MAILDIR && deliver_mkdir(d->maildir_root) != 0) {
		snprintf(why, why_cap, "maildir_root %s: %s", d->maildir_root, strerror(errno));
		free(d);
		return DIME_E_IO;
	}
	if (dime_io_group_init(&d->now, deliver_now_commit, d) != 0) {
		free(d);
		return DIME_E_NOMEM;
	}
	pthread_mutex_init(&d->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cv, &ca);
	pthread_condattr_destroy(&ca);
	if ((e = pthread_create(&d->th, NULL, deliver_main, d)) != 0) {
		snprintf(why, why_cap, "delivery thread: %s", strerror(e));
		pthread_cond_destroy(&d->cv);
		pthread_mutex_destroy(&d->mu);
		dime_io_group_destroy(&d->now);
		free(d);
		return DIME_E_NOMEM;
	}
	*out = d;
	return DIME_OK;
}

void
dime_deliver_kick(struct dime_deliver *d)
{
	pthread_mutex_lock(&d->mu);
	d->kicked = 1;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

void
dime_deliver_stop(struct dime_deliver *d, int drain)
{
	if (d == NULL)
		return;
	pthread_mutex_lock(&d->mu);
	d->stop = 1;
	d->drain = drain;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
	pthread_join(d->th, NULL);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	dime_io_group_destroy(&d->now);
	free(d->retry);
	free(d);
}

/* The outbound delivery agent (dime/dagent.h): workers claim due messages from the outbound
 * queue, find the destination's record and hosts, send over DMTP, and record the outcome; delay
 * notices and bounces go to the author's Maildir as RFC 3464 reports. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dime/dagent.h"
#include "dime/dlog.h"
#include "dime/dns.h"
#include "dime/dx.h"
#include "dime/mrloc.h"
#include "dime/outq.h"

#define DAGENT_BATCH_DEF 2u
#define DAGENT_BATCH_MAX 64u
#define DAGENT_WAIT_MAX	 60 /* s: a worker looks again at least this often */
#define DAGENT_WHY	 512

struct dime_dagent {
	struct dime_dagent_conf c;
	char maildir_root[4096], hostname[256];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;		     /* under mu; read unlocked with __atomic */
	uint64_t kicks;		     /* under mu: bumped by every kick */
	int64_t last_scan;	     /* monotonic s of the last periodic rescan, under mu */
	unsigned long seq;	     /* Maildir names, under mu */
	struct dime_dagent_stats st; /* under mu */
	pthread_t *th;
	size_t n_th;
};

/* One worker's open session, reused for the next message to the same domain. */
struct dagent_sess {
	struct dime_dx *x;
	char domain[256];
};

static int64_t
dagent_now(struct dime_dagent *a)
{
	return a->c.now != NULL ? a->c.now(a->c.now_arg) : (int64_t)time(NULL);
}

static int64_t
dagent_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

static int
dagent_stopping(struct dime_dagent *a)
{
	return __atomic_load_n(&a->stop, __ATOMIC_ACQUIRE);
}

static void
dagent_count(struct dime_dagent *a, uint64_t *field)
{
	pthread_mutex_lock(&a->mu);
	(*field)++;
	pthread_mutex_unlock(&a->mu);
}

/* Printable ASCII on one line, for logs, the state file and the report. */
static void
dagent_clean(char *s)
{
	for (; *s != 0; s++)
		if ((unsigned char)*s < ' ' || (unsigned char)*s >= 0x7f || *s == '"')
			*s = *s == '\n' ? ' ' : '?';
}

/* ---- notices: RFC 3464 reports into the author's Maildir ---- */

static int dagent_path(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A path that fits, or -1 (ENAMETOOLONG). */
static int
dagent_path(char *buf, size_t cap, const char *fmt, ...)
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
dagent_mkdir(const char *path)
{
	return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

static void
dagent_date(char *out, size_t cap, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, cap, "%a, %d %b %Y %H:%M:%S +0000", &tm) == 0)
		snprintf(out, cap, "Thu, 01 Jan 1970 00:00:00 +0000");
}

/* The report's text (malloc'd, *len octets). failed: 1 bounce, 0 delay notice. */
static char *
dagent_dsn_text(struct dime_dagent *a, const struct dime_outq_entry *e, int failed,
		const char *reason, const uint8_t *msg, size_t msg_len, int64_t now, size_t *len)
{
	char date[64], arrival[64], why[DAGENT_WHY];
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	*len = 0;
	if (f == NULL)
		return NULL;
	snprintf(why, sizeof(why), "%s", reason != NULL && reason[0] != 0 ? reason : "unknown");
	dagent_clean(why);
	dagent_date(date, sizeof(date), now);
	dagent_date(arrival, sizeof(arrival), e->created);
	fprintf(f,
		"From: Mail Delivery System <MAILER-DAEMON@%s>\n"
		"To: <%s>\n"
		"Subject: %s\n"
		"Date: %s\n"
		"Message-ID: <%s.%s.%" PRId64 "@%s>\n"
		"Auto-Submitted: auto-replied\n"
		"MIME-Version: 1.0\n"
		"Content-Type: multipart/report; report-type=delivery-status;\n"
		"\tboundary=\"=_dime_dsn_%s\"\n"
		"\n"
		"This is a MIME-encapsulated message.\n"
		"\n"
		"--=_dime_dsn_%s\n"
		"Content-Type: text/plain; charset=us-ascii\n"
		"\n",
		e->origin, e->author,
		failed ? "Undelivered Mail Returned to Sender"
		       : "Delayed Mail (still being retried)",
		date, e->id, failed ? "bounce" : "delay", now, e->origin, e->id, e->id);
	if (failed)
		fprintf(f,
			"Your message to <%s> could not be delivered and will not be retried.\n"
			"\n"
			"Reason: %s\n",
			e->recipient, why);
	else
		fprintf(f,
			"Your message to <%s> has not been delivered yet. This is only a warning:\n"
			"it will be retried, and you will be told if it is finally given up.\n"
			"\n"
			"Reason: %s\n",
			e->recipient, why);
	fprintf(f,
		"\n"
		"The message is attached as it was queued (D/MIME, encrypted).\n"
		"Queue id: %s\n"
		"\n"
		"--=_dime_dsn_%s\n"
		"Content-Type: message/delivery-status\n"
		"\n"
		"Reporting-MTA: dns; %s\n"
		"X-Dime-Queue-ID: %s\n"
		"Arrival-Date: %s\n"
		"\n"
		"Final-Recipient: rfc822; %s\n"
		"Action: %s\n"
		"Status: %s\n"
		"Diagnostic-Code: X-Dime; %s\n"
		"Last-Attempt-Date: %s\n",
		e->id, e->id, a->hostname, e->id, arrival, e->recipient,
		failed ? "failed" : "delayed", failed ? "5.0.0" : "4.0.0", why, date);
	fprintf(f,
		"\n"
		"--=_dime_dsn_%s\n"
		"Content-Type: text/plain; charset=us-ascii\n"
		"Content-Description: the undelivered D/MIME message (ciphertext)\n"
		"Content-Disposition: attachment; filename=\"%s.dime\"\n"
		"\n",
		e->id, e->id);
	if (msg_len > 0)
		fwrite(msg, 1, msg_len, f);
	if (msg_len > 0 && msg[msg_len - 1] != '\n')
		fputc('\n', f);
	fprintf(f, "\n--=_dime_dsn_%s--\n", e->id);
	if (ferror(f) != 0) {
		fclose(f);
		free(buf);
		return NULL;
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

/* Write text into the author's Maildir: tmp/NAME, fsync, rename to new/NAME, fsync new/.
 * Returns: 0, or -1 (why). */
static int
dagent_maildir(struct dime_dagent *a, const char *author, const char *text, size_t len, int64_t now,
	       char *why, size_t why_cap)
{
	char local[256], domain[256], box[4400], tmp[4600], dst[4600], name[400], host[256];
	const char *at = strrchr(author, '@');
	unsigned long seq;
	int fd = -1, dfd = -1, rc = -1, made = 0;
	size_t off = 0;

	if (at == NULL || at == author || at[1] == 0 || (size_t)(at - author) >= sizeof(local) ||
	    strlen(at + 1) >= sizeof(domain) || strchr(author, '/') != NULL) {
		snprintf(why, why_cap, "author \"%s\" is not a local@domain Maildir can hold",
			 author);
		return -1;
	}
	memcpy(local, author, (size_t)(at - author));
	local[at - author] = 0;
	snprintf(domain, sizeof(domain), "%s", at + 1);
	if (strcmp(local, ".") == 0 || strcmp(local, "..") == 0 || strcmp(domain, ".") == 0 ||
	    strcmp(domain, "..") == 0) {
		snprintf(why, why_cap, "author \"%s\" is not a Maildir name", author);
		return -1;
	}
	snprintf(host, sizeof(host), "%s", a->hostname);
	for (char *p = host; *p != 0; p++)
		if (*p == '/' || *p == ':')
			*p = '_';
	pthread_mutex_lock(&a->mu);
	seq = ++a->seq;
	pthread_mutex_unlock(&a->mu);
	snprintf(name, sizeof(name), "%" PRId64 ".P%ldQ%luD.%s", now, (long)getpid(), seq, host);
	box[0] = 0;
	if (dagent_path(box, sizeof(box), "%s/%s", a->maildir_root, domain) != 0 ||
	    dagent_mkdir(a->maildir_root) != 0 || dagent_mkdir(box) != 0 ||
	    dagent_path(box, sizeof(box), "%s/%s/%s", a->maildir_root, domain, local) != 0 ||
	    dagent_mkdir(box) != 0)
		goto fail;
	{
		static const char *const sub[] = {"tmp", "new", "cur"};

		for (int i = 0; i < 3; i++)
			if (dagent_path(tmp, sizeof(tmp), "%s/%s", box, sub[i]) != 0 ||
			    dagent_mkdir(tmp) != 0)
				goto fail;
	}
	if (dagent_path(tmp, sizeof(tmp), "%s/tmp/%s", box, name) != 0 ||
	    dagent_path(dst, sizeof(dst), "%s/new/%s", box, name) != 0)
		goto fail;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		goto fail;
	made = 1;
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, dst) != 0)
		goto fail;
	made = 0;
	if (dagent_path(dst, sizeof(dst), "%s/new", box) != 0)
		goto fail;
	if ((dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(dfd) != 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	snprintf(why, why_cap, "maildir %.300s: %s", box, strerror(errno));
	if (made)
		(void)unlink(tmp); /* gone already when the rename was done */
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	return rc;
}

/* Tell the author. Returns: 0, or -1 (logged). */
static int
dagent_notify(struct dime_dagent *a, const struct dime_outq_entry *e, int failed,
	      const char *reason, const uint8_t *msg, size_t msg_len, int64_t now)
{
	char why[DAGENT_WHY] = "";
	size_t len = 0;
	char *text = dagent_dsn_text(a, e, failed, reason, msg, msg_len, now, &len);
	int rc = -1;

	if (text == NULL)
		snprintf(why, sizeof(why), "out of memory");
	else
		rc = dagent_maildir(a, e->author, text, len, now, why, sizeof(why));
	free(text);
	if (rc != 0) {
		dagent_clean(why);
		dime_dlog(DIME_DLOG_ERROR, failed ? "outq.bounce" : "outq.delay_notice",
			  "id=%s author=%s result=failed why=\"%s\"", e->id, e->author, why);
	} else {
		dime_dlog(DIME_DLOG_INFO, failed ? "outq.bounce" : "outq.delay_notice",
			  "id=%s author=%s rcpt=%s result=ok", e->id, e->author, e->recipient);
	}
	return rc;
}

/* ---- outcomes ---- */

static void dagent_bounce(struct dime_dagent *a, const struct dime_outq_entry *e,
			  const char *reason, const uint8_t *msg, size_t msg_len, int64_t now,
			  int at_give_up);

static void
dagent_defer(struct dime_dagent *a, const struct dime_outq_entry *e, const char *reason,
	     const uint8_t *msg, size_t msg_len, int64_t now)
{
	enum dime_outq_verdict v = DIME_OUTQ_RETRY;
	int64_t next = 0;
	char why[DAGENT_WHY];
	int rc;

	snprintf(why, sizeof(why), "%s", reason);
	dagent_clean(why);
	rc = dime_outq_deferred(a->c.q, e->id, why, now, &v, &next);
	if (rc != DIME_OK) {
		dime_dlog(DIME_DLOG_ERROR, "outq.deferred",
			  "id=%s rcpt=%s result=unrecorded err=%s why=\"%s\"", e->id, e->recipient,
			  dime_strerror(rc), why);
		return;
	}
	dagent_count(a, &a->st.deferred);
	dime_dlog(DIME_DLOG_INFO, "outq.deferred",
		  "id=%s rcpt=%s attempts=%" PRIu32 " next=%" PRId64 " why=\"%s\"", e->id,
		  e->recipient, e->attempts + 1, v == DIME_OUTQ_GIVE_UP ? (int64_t)-1 : next, why);
	if (v == DIME_OUTQ_NOTIFY_DELAY && dagent_notify(a, e, 0, why, msg, msg_len, now) == 0)
		dagent_count(a, &a->st.notices);
	if (v == DIME_OUTQ_GIVE_UP)
		dagent_bounce(a, e, why, msg, msg_len, now, 1);
}

/* A permanent failure, or the end of the schedule: bounce to the author, then forget it. When
 * the bounce cannot be written, the message stays (deferred) so that it is not lost silently,
 * until give-up, when it goes with an error in the log. */
static void
dagent_bounce(struct dime_dagent *a, const struct dime_outq_entry *e, const char *reason,
	      const uint8_t *msg, size_t msg_len, int64_t now, int at_give_up)
{
	int rc;

	if (dagent_notify(a, e, 1, reason, msg, msg_len, now) != 0 && !at_give_up) {
		char why[DAGENT_WHY];

		snprintf(why, sizeof(why), "bounce not written (%s)", reason);
		dagent_defer(a, e, why, msg, msg_len, now);
		return;
	}
	rc = dime_outq_done(a->c.q, e->id);
	dagent_count(a, &a->st.bounced);
	dime_dlog(rc == DIME_OK ? DIME_DLOG_INFO : DIME_DLOG_ERROR, "outq.bounced",
		  "id=%s rcpt=%s author=%s removed=%s", e->id, e->recipient, e->author,
		  rc == DIME_OK ? "yes" : dime_strerror(rc));
}

static void
dagent_delivered(struct dime_dagent *a, const struct dime_outq_entry *e, const char *host, int code)
{
	int rc = dime_outq_done(a->c.q, e->id);

	pthread_mutex_lock(&a->mu);
	a->st.delivered++;
	if (code == 255)
		a->st.duplicates++;
	pthread_mutex_unlock(&a->mu);
	dime_dlog(rc == DIME_OK ? DIME_DLOG_INFO : DIME_DLOG_ERROR, "outq.delivered",
		  "id=%s rcpt=%s host=%s code=%d attempts=%" PRIu32 "%s%s", e->id, e->recipient,
		  host, code, e->attempts + 1,
		  rc == DIME_OK ? "" : " removed=", rc == DIME_OK ? "" : dime_strerror(rc));
}

/* ---- one message ---- */

static void
dagent_close(struct dagent_sess *s)
{
	dime_dx_close(s->x);
	s->x = NULL;
	s->domain[0] = 0;
}

/* Open a session to domain's first reachable host. Returns: 0 (s->x open), or -1 (why: the
 * reason to record; a certificate mismatch wins over the other failures). */
static int
dagent_open(struct dime_dagent *a, struct dagent_sess *s, const char *domain, int64_t now,
	    char *why, size_t why_cap)
{
	struct dime_mr_result *mr = malloc(sizeof(*mr));
	struct dime_dx_hop *hops = calloc(DIME_DX_HOPS_MAX, sizeof(*hops));
	char hwhy[DAGENT_WHY] = "";
	size_t n = 0;
	int rc, mismatch = 0, ret = -1;

	if (mr == NULL || hops == NULL) {
		snprintf(why, why_cap, "out of memory");
		goto out;
	}
	rc = dime_mr_resolve_sync(a->c.dns, a->c.cache, mr, domain, now);
	if (rc != DIME_OK) {
		snprintf(why, why_cap, "record of %s: %s", domain, dime_strerror(rc));
		goto out;
	}
	if (mr->status != DIME_MR_FOUND) {
		/* the message is D/MIME already: without the record it waits, never goes naked */
		snprintf(why, why_cap, "no usable management record for %s: %s: %s", domain,
			 dime_mr_status_name(mr->status), mr->why);
		goto out;
	}
	rc =
	    dime_dx_route(hops, DIME_DX_HOPS_MAX, &n, a->c.dns, mr, a->c.ports, hwhy, sizeof(hwhy));
	if (rc != DIME_OK || n == 0) {
		snprintf(why, why_cap, "no host for %s: %s", domain, hwhy);
		goto out;
	}
	snprintf(why, why_cap, "no host of %s reachable", domain);
	for (size_t i = 0; i < n && !dagent_stopping(a); i++) {
		struct dime_dx_peer peer;

		memset(&peer, 0, sizeof(peer));
		peer.host = hops[i].host;
		peer.port = hops[i].port;
		peer.mode = hops[i].mode;
		peer.rec = &mr->rec;
		hwhy[0] = 0;
		rc = dime_dx_open(&s->x, a->c.dx, &peer, hwhy, sizeof(hwhy));
		if (rc == DIME_OK) {
			snprintf(s->domain, sizeof(s->domain), "%s", domain);
			dagent_count(a, &a->st.sessions);
			ret = 0;
			break;
		}
		dagent_clean(hwhy);
		if (rc == DIME_E_BADSIG) {
			/* an impostor or a stale record: never sent to; the next host may be right
			 */
			dagent_count(a, &a->st.tls_mismatch);
			dime_dlog(DIME_DLOG_WARNING, "outq.tls_mismatch",
				  "domain=%s host=%s port=%u why=\"%s\"", domain, hops[i].host,
				  hops[i].port, hwhy);
			snprintf(why, why_cap,
				 "certificate of %s:%u matches no tls= value of the record of %s",
				 hops[i].host, hops[i].port, domain);
			mismatch = 1;
		} else {
			dime_dlog(DIME_DLOG_DEBUG, "outq.connect",
				  "domain=%s host=%s port=%u result=failed why=\"%s\"", domain,
				  hops[i].host, hops[i].port, hwhy);
			if (!mismatch)
				snprintf(why, why_cap, "no host of %s reachable (last: %s)", domain,
					 hwhy);
		}
	}
out:
	free(mr);
	free(hops);
	return ret;
}

static void
dagent_one(struct dime_dagent *a, struct dagent_sess *s, const struct dime_outq_entry *e)
{
	const struct dime_dmtp_client_result *r = NULL;
	struct dime_dmtp_client_op op;
	char why[DAGENT_WHY] = "", host[300];
	const char *domain = strrchr(e->recipient, '@');
	uint8_t *msg = NULL;
	size_t len = 0;
	int64_t now = dagent_now(a);
	int rc;

	if ((rc = dime_outq_read(a->c.q, e->id, &msg, &len)) != DIME_OK) {
		if (rc == DIME_E_NOTFOUND) {
			/* deleted by the operator meanwhile: forget it */
			rc = dime_outq_done(a->c.q, e->id);
			dime_dlog(DIME_DLOG_INFO, "outq.vanished", "id=%s rcpt=%s index=%s", e->id,
				  e->recipient, rc == DIME_OK ? "dropped" : dime_strerror(rc));
		} else {
			dagent_defer(a, e, "cannot read the queued message", NULL, 0, now);
		}
		return;
	}
	if (domain == NULL || domain[1] == 0) {
		dagent_bounce(a, e, "the recipient has no domain", msg, len, now, 0);
		goto out;
	}
	domain++;
	if (s->x != NULL && strcmp(s->domain, domain) != 0)
		dagent_close(s);
	if (s->x == NULL && dagent_open(a, s, domain, now, why, sizeof(why)) != 0) {
		if (dagent_stopping(a))
			dime_outq_release(a->c.q, e->id); /* cut short: not an attempt */
		else
			dagent_defer(a, e, why, msg, len, now);
		goto out;
	}
	snprintf(host, sizeof(host), "%s", dime_dx_peer_name(s->x));
	memset(&op, 0, sizeof(op));
	op.kind = DIME_DMTP_CLIENT_SEND;
	op.from = e->origin;
	op.from_fp = e->origin_fp;
	op.to = domain; /* spec Part 7: RCPT TO names the destination domain */
	op.to_fp = e->dest_fp;
	op.msg = msg;
	op.msg_len = len;
	rc = dime_dx_run(s->x, &op, &r, why, sizeof(why));
	if (rc == DIME_E_INVALID) {
		/* the grammar refuses the envelope: no retry can change that */
		dagent_close(s);
		dagent_bounce(a, e, why, msg, len, now, 0);
		goto out;
	}
	if (rc != DIME_OK || r == NULL) {
		/* lost connection, 421, timeout: the outcome may be unknown; the resend is safe
		 * (255 DUPLICATE) */
		char w2[DAGENT_WHY];

		/* bounded so host and reason both fit: a reason cut short is still a reason */
		snprintf(w2, sizeof(w2), "%.255s: %.250s", host,
			 why[0] != 0 ? why : dime_strerror(rc));
		dagent_close(s);
		dagent_defer(a, e, w2, msg, len, now);
		goto out;
	}
	if (r->code == 250 || r->code == 254 || r->code == 255) {
		dagent_delivered(a, e, host, r->code);
	} else {
		snprintf(why, sizeof(why), "%s said %d %s (at %s)", host, r->code,
			 r->text != NULL ? r->text : "", r->stage != NULL ? r->stage : "?");
		if (r->code >= 500 && r->code < 600) {
			dagent_bounce(a, e, why, msg, len, now, 0);
		} else {
			if (r->code < 400 || r->code >= 500)
				dagent_close(s); /* a reply we do not understand: start afresh */
			dagent_defer(a, e, why, msg, len, now);
		}
	}
out:
	free(msg);
}

static int
dagent_by_domain(const void *x, const void *y)
{
	const struct dime_outq_entry *p = x, *q = y;
	const char *dp = strrchr(p->recipient, '@'), *dq = strrchr(q->recipient, '@');
	int c = strcmp(dp != NULL ? dp : "", dq != NULL ? dq : "");

	if (c != 0)
		return c;
	return p->created < q->created ? -1 : p->created > q->created;
}

/* Claim and deliver batches until nothing is due (or stop). Returns: messages attempted. */
static size_t
dagent_pass(struct dime_dagent *a)
{
	struct dime_outq_entry *ents;
	unsigned batch = a->c.batch > 0 ? a->c.batch : DAGENT_BATCH_DEF;
	size_t total = 0;

	if (batch > DAGENT_BATCH_MAX)
		batch = DAGENT_BATCH_MAX;
	if ((ents = calloc(batch, sizeof(*ents))) == NULL)
		return 0;
	/* The session outlives a claim: the next claim, for the same destination as a rule, goes
	 * on it without a new handshake, so claims stay small and the workers share the queue. */
	struct dagent_sess s = {NULL, ""};

	while (!dagent_stopping(a)) {
		size_t n = dime_outq_due(a->c.q, ents, batch, dagent_now(a)), i;

		if (n == 0)
			break;
		/* same destination next to each other: one session serves them in turn */
		qsort(ents, n, sizeof(*ents), dagent_by_domain);
		for (i = 0; i < n && !dagent_stopping(a); i++) {
			dagent_one(a, &s, &ents[i]);
			total++;
		}
		for (; i < n; i++) /* stopping: never started, due again at the next start */
			dime_outq_release(a->c.q, ents[i].id);
	}
	dagent_close(&s);
	free(ents);
	return total;
}

static void *
dagent_worker(void *arg)
{
	struct dime_dagent *a = arg;

	pthread_mutex_lock(&a->mu);
	while (!a->stop) {
		uint64_t seen = a->kicks;
		int64_t next, now, wait;
		struct timespec ts;

		pthread_mutex_unlock(&a->mu);
		(void)dagent_pass(a);
		pthread_mutex_lock(&a->mu);
		if (a->stop)
			break;
		if (a->c.rescan_s > 0 && dagent_mono() - a->last_scan >= (int64_t)a->c.rescan_s) {
			a->last_scan = dagent_mono();
			pthread_mutex_unlock(&a->mu);
			dime_dagent_rescan(a);
			pthread_mutex_lock(&a->mu);
			continue;
		}
		if (a->kicks != seen)
			continue;
		next = dime_outq_next_due(a->c.q);
		now = dagent_now(a);
		wait = next == INT64_MAX ? DAGENT_WAIT_MAX : next - now;
		if (wait <= 0)
			continue;
		if (wait > DAGENT_WAIT_MAX)
			wait = DAGENT_WAIT_MAX;
		if (a->c.rescan_s > 0 &&
		    a->last_scan + (int64_t)a->c.rescan_s - dagent_mono() < wait)
			wait = a->last_scan + (int64_t)a->c.rescan_s - dagent_mono();
		if (wait <= 0)
			wait = 1;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)wait;
		while (!a->stop && a->kicks == seen &&
		       pthread_cond_timedwait(&a->cv, &a->mu, &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

/* ---- API ---- */

int
dime_dagent_start(struct dime_dagent **out, const struct dime_dagent_conf *c, char *why,
		  size_t why_cap)
{
	struct dime_dagent *a;
	pthread_condattr_t ca;

	*out = NULL;
	if (why_cap > 0)
		why[0] = 0;
	if (c == NULL || c->q == NULL || c->dns == NULL || c->dx == NULL ||
	    c->maildir_root == NULL || c->maildir_root[0] == 0) {
		snprintf(why, why_cap,
			 "delivery agent: queue, DNS, DMTP settings and Maildir needed");
		return DIME_E_INVALID;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		snprintf(why, why_cap, "out of memory");
		return DIME_E_NOMEM;
	}
	a->c = *c;
	snprintf(a->maildir_root, sizeof(a->maildir_root), "%s", c->maildir_root);
	snprintf(a->hostname, sizeof(a->hostname), "%s",
		 c->hostname != NULL && c->hostname[0] != 0 ? c->hostname : "localhost");
	a->c.maildir_root = a->maildir_root;
	a->c.hostname = a->hostname;
	a->last_scan = dagent_mono();
	pthread_mutex_init(&a->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (c->workers > 0 && (a->th = calloc(c->workers, sizeof(*a->th))) == NULL) {
		dime_dagent_stop(a);
		snprintf(why, why_cap, "out of memory");
		return DIME_E_NOMEM;
	}
	for (unsigned i = 0; i < c->workers; i++) {
		if (pthread_create(&a->th[i], NULL, dagent_worker, a) != 0) {
			dime_dagent_stop(a);
			snprintf(why, why_cap, "cannot start a delivery thread");
			return DIME_E_IO;
		}
		a->n_th++;
	}
	*out = a;
	return DIME_OK;
}

void
dime_dagent_kick(struct dime_dagent *a)
{
	pthread_mutex_lock(&a->mu);
	a->kicks++;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

void
dime_dagent_rescan(struct dime_dagent *a)
{
	size_t added = 0, dropped = 0;
	int rc = dime_outq_rescan(a->c.q, &added, &dropped);

	if (rc != DIME_OK)
		dime_dlog(DIME_DLOG_ERROR, "outq.rescan", "result=failed err=%s",
			  dime_strerror(rc));
	else if (added > 0 || dropped > 0)
		dime_dlog(DIME_DLOG_INFO, "outq.rescan", "added=%zu dropped=%zu", added, dropped);
	dime_dagent_kick(a);
}

size_t
dime_dagent_run(struct dime_dagent *a)
{
	return dagent_pass(a);
}

void
dime_dagent_stats(struct dime_dagent *a, struct dime_dagent_stats *st)
{
	pthread_mutex_lock(&a->mu);
	*st = a->st;
	pthread_mutex_unlock(&a->mu);
}

void
dime_dagent_stop(struct dime_dagent *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	__atomic_store_n(&a->stop, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	for (size_t i = 0; i < a->n_th; i++)
		pthread_join(a->th[i], NULL);
	free(a->th);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

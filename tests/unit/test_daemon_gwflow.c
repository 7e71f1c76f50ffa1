/* The SMTP gateway's flows (dime/gwflow.h) on real stores made with the dime CLI: the
 * destination b.example served by a dimed on loopback and named by a static DNS file, our org
 * a.example. Inbound naked mail to a hosted user (spooled, opens as the user byte for byte), a
 * user without a signet (4xx, or 5xx when configured; nothing spooled), trustful and cautious
 * D/MIME into the outbound queue (accepted by the destination's store), a tampered cautious
 * message, naked mail through a scripted reinjection server (250 only after its 250; its 4xx;
 * down), strict policy, D/MIME toward a legacy domain, and a destination that does not
 * validate. */

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dime/dconf.h"
#include "dime/dns.h"
#include "dime/dx.h"
#include "dime/gwflow.h"
#include "dime/outq.h"
#include "dime/spool.h"
#include "tlib.h"

#if defined(DIME_CLI) && defined(DIMED)

static unsigned gf_port;
static pid_t gf_pid;

static int
gf_sh(const char *cmd)
{
	char buf[8192];
	int st;

	(void)snprintf(buf, sizeof(buf), "cd '%s' && { %s; }", t_dir, cmd);
	st = system(buf);
	return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

/* b.example (bob) behind a dimed; c.example's record names a certificate dmtp.b.example does
 * not have (nothing from it validates); a.example (ours): alice and the gateway identity. */
static int
gf_setup(void)
{
	static const char script[] =
	    "D=\"$PWD\"; dime() { '" DIME_CLI "' \"$@\"; }; "
	    "dime --store dst.db org create b.example >/dev/null 2>&1 && "
	    "dime --store dst.db user create bob@b.example >/dev/null 2>&1 && "
	    "dime --store src.db org create a.example >/dev/null 2>&1 && "
	    "dime --store src.db user create alice@a.example >/dev/null 2>&1 && "
	    "dime --store src.db user create postmaster@a.example >/dev/null 2>&1 && "
	    /* the destination knows our org (as its dimed would fetch it) */
	    "pok=$(dime --store src.db mrec generate --org a.example | "
	    "grep -o 'pok=[^ ;\"]*' | head -1 | cut -d= -f2) && "
	    "dime --store src.db store export a.example >a.sig && "
	    "dime --store dst.db store import --pok \"$pok\" a.sig >/dev/null 2>&1 && "
	    "openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem -days 2 "
	    "-subj /CN=dmtp.b.example -addext subjectAltName=DNS:dmtp.b.example >/dev/null 2>&1 && "
	    "openssl req -x509 -newkey rsa:2048 -nodes -keyout k2.pem -out c2.pem -days 2 "
	    "-subj /CN=other >/dev/null 2>&1 && "
	    "rec=$(dime --store dst.db mrec generate --org b.example --tls-cert c.pem --dx "
	    "dmtp.b.example | sed 's/^[^\"]*\"//; s/\"$//') && "
	    "rec2=$(dime --store dst.db mrec generate --org b.example --tls-cert c2.pem --dx "
	    "dmtp.b.example | sed 's/^[^\"]*\"//; s/\"$//') && "
	    "printf '_dime.b.example 600 TXT \"%s\"\\n_dime.c.example 600 TXT \"%s\"\\n"
	    "dmtp.b.example 600 A 127.0.0.1\\n' \"$rec\" \"$rec2\" >dns.txt && "
	    "printf 'hostname = dmtp.b.example\\nlisten = 127.0.0.1:0 dmtp\\nstore = %s/dst.db\\n"
	    "spool = %s/dspool\\nmaildir_root = %s/mail\\nkey_process = no\\n[tls]\\n"
	    "cert = %s/c.pem\\nkey = %s/k.pem\\n' \"$D\" \"$D\" \"$D\" \"$D\" \"$D\" >d.conf";

	return gf_sh(script);
}

static int
gf_start(void)
{
	char cmd[512], *end;
	uint8_t *p = NULL;
	size_t len = 0;
	struct timespec ts = {0, 20 * 1000 * 1000};

	(void)snprintf(cmd, sizeof(cmd),
		       "'%s' --config d.conf --ports-file ports 2>>dimed.log & echo $! >pid",
		       DIMED);
	if (gf_sh(cmd) != 0)
		return -1;
	for (int i = 0; i < 1500; i++) {
		free(p);
		p = access(t_path("ports"), R_OK) == 0 ? t_read(t_path("ports"), &len) : NULL;
		if (p != NULL && len > 1 && p[len - 1] == '\n')
			break;
		nanosleep(&ts, NULL);
	}
	if (p == NULL || len < 2) {
		free(p);
		return -1;
	}
	gf_port = (unsigned)strtoul((const char *)p, &end, 10);
	free(p);
	p = t_read(t_path("pid"), &len);
	gf_pid = p != NULL ? (pid_t)strtol((const char *)p, NULL, 10) : 0;
	free(p);
	return gf_port != 0 && gf_pid > 0 ? 0 : -1;
}

static void
gf_stop(void)
{
	struct timespec ts = {0, 20 * 1000 * 1000};

	if (gf_pid <= 0)
		return;
	(void)kill(gf_pid, SIGTERM);
	for (int i = 0; i < 500 && kill(gf_pid, 0) == 0; i++)
		nanosleep(&ts, NULL);
	if (kill(gf_pid, 0) == 0)
		(void)kill(gf_pid, SIGKILL);
	gf_pid = 0;
}

/* ---- a scripted reinjection server: one connection at a time ---- */

struct gf_srv {
	int fd;
	unsigned port;
	pthread_t th;
	volatile int stop;
	int dot_code; /* the reply to the final dot */
	pthread_mutex_t mu;
	char data[8192]; /* the last message's DATA, as sent (dot-stuffed) */
	size_t data_len;
	unsigned messages; /* transactions answered 250 at the dot */
};

static int
gf_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap) {
		char c;
		ssize_t r = recv(fd, &c, 1, 0);

		if (r <= 0)
			return -1;
		buf[n++] = c;
		if (c == '\n')
			break;
	}
	buf[n] = 0;
	return (int)n;
}

static void
gf_say(int fd, const char *s)
{
	(void)send(fd, s, strlen(s), MSG_NOSIGNAL);
}

static void
gf_session(struct gf_srv *s, int c)
{
	char line[1024], rep[64];

	gf_say(c, "220 reinject.test ESMTP\r\n");
	while (gf_line(c, line, sizeof(line)) > 0) {
		if (strncasecmp(line, "EHLO", 4) == 0 || strncasecmp(line, "LHLO", 4) == 0)
			gf_say(c, "250-reinject.test\r\n250 8BITMIME\r\n");
		else if (strncasecmp(line, "HELO", 4) == 0 || strncasecmp(line, "MAIL", 4) == 0 ||
			 strncasecmp(line, "RCPT", 4) == 0 || strncasecmp(line, "RSET", 4) == 0 ||
			 strncasecmp(line, "NOOP", 4) == 0)
			gf_say(c, "250 2.0.0 ok\r\n");
		else if (strncasecmp(line, "QUIT", 4) == 0) {
			gf_say(c, "221 2.0.0 bye\r\n");
			break;
		} else if (strncasecmp(line, "DATA", 4) == 0) {
			gf_say(c, "354 go\r\n");
			pthread_mutex_lock(&s->mu);
			s->data_len = 0;
			pthread_mutex_unlock(&s->mu);
			for (;;) {
				int n = gf_line(c, line, sizeof(line));

				if (n <= 0)
					return;
				if (strcmp(line, ".\r\n") == 0)
					break;
				pthread_mutex_lock(&s->mu);
				if (s->data_len + (size_t)n < sizeof(s->data)) {
					memcpy(s->data + s->data_len, line, (size_t)n);
					s->data_len += (size_t)n;
				}
				pthread_mutex_unlock(&s->mu);
			}
			pthread_mutex_lock(&s->mu);
			if (s->dot_code == 250)
				s->messages++;
			(void)snprintf(rep, sizeof(rep), "%d %s reinjected\r\n", s->dot_code,
				       s->dot_code == 250 ? "2.0.0" : "4.3.0");
			pthread_mutex_unlock(&s->mu);
			gf_say(c, rep);
		} else
			gf_say(c, "502 5.5.2 no\r\n");
	}
}

static void *
gf_serve(void *arg)
{
	struct gf_srv *s = arg;

	while (!s->stop) {
		struct pollfd p = {s->fd, POLLIN, 0};
		int c;

		if (poll(&p, 1, 100) <= 0)
			continue;
		if ((c = accept(s->fd, NULL, NULL)) < 0)
			continue;
		gf_session(s, c);
		close(c);
	}
	return NULL;
}

static int
gf_srv_start(struct gf_srv *s)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->dot_code = 250;
	pthread_mutex_init(&s->mu, NULL);
	if ((s->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    bind(s->fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->fd, 8) != 0 ||
	    getsockname(s->fd, (struct sockaddr *)&a, &al) != 0)
		return -1;
	s->port = ntohs(a.sin_port);
	return pthread_create(&s->th, NULL, gf_serve, s) == 0 ? 0 : -1;
}

static void
gf_srv_stop(struct gf_srv *s)
{
	s->stop = 1;
	pthread_join(s->th, NULL);
	close(s->fd);
	pthread_mutex_destroy(&s->mu);
}

/* ---- helpers ---- */

static size_t
gf_count(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* The first file of dir, read. */
static uint8_t *
gf_first(const char *dir, size_t *len)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[8192];
	uint8_t *r = NULL;

	if (d == NULL)
		return NULL;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.') {
			(void)snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			r = t_read(p, len);
			break;
		}
	closedir(d);
	return r;
}

static int
gf_write(const char *name, const uint8_t *p, size_t len)
{
	FILE *f = fopen(t_path(name), "wb");
	int ok = f != NULL && fwrite(p, 1, len, f) == len;

	if (f != NULL && fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

struct gf {
	struct dime_dconf conf;
	struct dime_spool *spool;
	struct dime_outq *outq;
	struct dime_dns *dns;
	struct dime_dx_conf dx;
	struct dime_dx_ports ports;
	struct dime_gw *gw;
	unsigned kicks;
};

static void
gf_kick(void *arg)
{
	((struct gf *)arg)->kicks++;
}

static int
gf_gw(struct gf *f, int policy, int unsigned_local, const char *reinject)
{
	struct dime_gw_env env;
	char why[512];

	dime_gw_free(f->gw);
	f->gw = NULL;
	f->conf.policy = policy;
	f->conf.unsigned_local = unsigned_local;
	(void)snprintf(f->conf.reinject, sizeof(f->conf.reinject), "%s", reinject);
	memset(&env, 0, sizeof(env));
	env.conf = &f->conf;
	env.spool = f->spool;
	env.outq = f->outq;
	env.outq_kick = gf_kick;
	env.outq_kick_arg = f;
	env.dns = f->dns;
	env.dx = &f->dx;
	env.ports = &f->ports;
	if (dime_gw_new(&f->gw, &env, why, sizeof(why)) != DIME_OK) {
		t_fail("dime_gw_new: %s", why);
		return -1;
	}
	return 0;
}

static const char gf_mail[] = "From: x@legacy.example\r\nTo: alice@a.example\r\n"
			      "Subject: hello\r\nMessage-ID: <1@legacy.example>\r\n\r\n"
			      "a body line\r\n.a line with a leading dot\r\n";

static int
gf_run(struct gf *f, struct dime_gw_verdict *v, const char *from, const char *to, const char *msg)
{
	int rc = dime_gw_rcpt(f->gw, v, from, to, (int64_t)time(NULL));

	if (rc != DIME_OK || v->code != 250)
		return rc;
	return dime_gw_message(f->gw, v, from, to, (const uint8_t *)msg, strlen(msg),
			       (int64_t)time(NULL));
}

/* Inbound to a hosted user: spooled, and it opens as the user to the original bytes. */
static void
test_inbound(struct gf *f)
{
	struct dime_gw_verdict v;
	uint8_t *p, *got;
	size_t len = 0, glen = 0, skip = 0;
	int rc, lines = 0;

	rc = gf_run(f, &v, "x@legacy.example", "Alice@A.example", gf_mail);
	T_CHECK(rc == DIME_OK && v.code == 250 && v.route == DIME_GW_LOCAL,
		"inbound: got rc %d code %d route %d (%s)", rc, v.code, v.route, v.text);
	T_CHECK(gf_count(t_path("spool/queue")) == 1, "inbound: %zu spooled, want 1",
		gf_count(t_path("spool/queue")));
	p = gf_first(t_path("spool/queue"), &len);
	/* two envelope lines (recipient, origin), then the binary message */
	while (p != NULL && skip < len && lines < 2)
		if (p[skip++] == '\n')
			lines++;
	T_CHECK(p != NULL && lines == 2 && memmem(p, skip, "alice@a.example", 15) != NULL,
		"inbound: the spool file's envelope");
	if (p == NULL || lines != 2 || gf_write("in.bin", p + skip, len - skip) != 0) {
		t_fail("inbound: cannot write the spooled message");
		free(p);
		return;
	}
	free(p);
	rc = gf_sh("'" DIME_CLI "' --store src.db msg open --as recipient --user alice@a.example "
		   "<in.bin >in.out 2>in.err");
	got = t_read(t_path("in.out"), &glen);
	T_CHECK(rc == 0 && got != NULL && glen == strlen(gf_mail) &&
		    memcmp(got, gf_mail, glen) == 0,
		"inbound: msg open as alice: exit %d, %zu bytes, want the %zu original", rc, glen,
		strlen(gf_mail));
	free(got);
	/* already D/MIME for her (armored in a mail): taken as it is, never wrapped again */
	rc = gf_sh("'" DIME_CLI "' --store src.db msg wrap --from postmaster@a.example --to "
		   "alice@a.example --origin-sign <in.out >in.arm 2>>in.err && "
		   "printf 'Subject: x\\r\\n\\r\\n' >in.mail && cat in.arm >>in.mail");
	got = rc == 0 ? t_read(t_path("in.mail"), &glen) : NULL;
	if (got != NULL) {
		char *m = malloc(glen + 1);

		memcpy(m, got, glen);
		m[glen] = 0;
		rc = gf_run(f, &v, "x@legacy.example", "alice@a.example", m);
		T_CHECK(rc == DIME_OK && v.code == 250 && gf_count(t_path("spool/queue")) == 2,
			"inbound D/MIME: got code %d (%s), %zu spooled", v.code, v.text,
			gf_count(t_path("spool/queue")));
		free(m);
	} else
		t_fail("inbound D/MIME: cannot make the message");
	free(got);
}

/* A user of ours without a signet: 4xx (or 5xx when configured), nothing spooled. */
static void
test_unsigned(struct gf *f)
{
	struct dime_gw_verdict v;
	size_t before = gf_count(t_path("spool/queue"));
	int rc;

	rc = dime_gw_rcpt(f->gw, &v, "x@legacy.example", "dave@a.example", (int64_t)time(NULL));
	T_CHECK(rc == DIME_OK && v.code / 100 == 4 && v.route == DIME_GW_DEFER,
		"no signet: got code %d route %d (%s), want 4xx", v.code, v.route, v.text);
	rc = dime_gw_message(f->gw, &v, "x@legacy.example", "dave@a.example",
			     (const uint8_t *)gf_mail, strlen(gf_mail), (int64_t)time(NULL));
	T_CHECK(rc == DIME_OK && v.code / 100 == 4, "no signet, DATA: got code %d", v.code);
	T_CHECK(gf_count(t_path("spool/queue")) == before, "no signet: something was spooled");
	if (gf_gw(f, DIME_POL_MIXED, DIME_DCONF_UNSIGNED_REFUSE, f->conf.reinject) != 0)
		return;
	rc = dime_gw_rcpt(f->gw, &v, "x@legacy.example", "dave@a.example", (int64_t)time(NULL));
	T_CHECK(rc == DIME_OK && v.code / 100 == 5, "no signet, refuse, RCPT: got code %d (%s)",
		v.code, v.text);
	rc = dime_gw_message(f->gw, &v, "x@legacy.example", "dave@a.example",
			     (const uint8_t *)gf_mail, strlen(gf_mail), (int64_t)time(NULL));
	T_CHECK(rc == DIME_OK && v.code / 100 == 5, "no signet, refuse: got code %d (%s)", v.code,
		v.text);
	T_CHECK(gf_count(t_path("spool/queue")) == before, "no signet: something was spooled");
	(void)gf_gw(f, DIME_POL_MIXED, DIME_DCONF_UNSIGNED_DEFER, f->conf.reinject);
}

/* Check the one new outq entry: its envelope, and that the destination accepts it. */
static void
gf_check_queued(struct gf *f, const char *what, const char *id, const char *author)
{
	struct dime_outq_entry e;
	uint8_t *msg = NULL, *fp = NULL;
	size_t len = 0, fl = 0;
	int rc;

	memset(&e, 0, sizeof(e));
	rc = dime_outq_get(f->outq, id, &e);
	fp = t_read(t_path("bfp"), &fl);
	while (fp != NULL && fl > 0 && (fp[fl - 1] == '\n' || fp[fl - 1] == ' '))
		fp[--fl] = 0;
	T_CHECK(rc == DIME_OK && strcmp(e.origin, "a.example") == 0 &&
		    strcmp(e.author, author) == 0 && strcmp(e.recipient, "bob@b.example") == 0 &&
		    fp != NULL && strcmp(e.dest_fp, (const char *)fp) == 0 && e.origin_fp[0] != 0,
		"%s: envelope: rc %d origin %s author %s recipient %s dest %s (want %s)", what, rc,
		e.origin, e.author, e.recipient, e.dest_fp, fp != NULL ? (char *)fp : "?");
	free(fp);
	rc = dime_outq_read(f->outq, id, &msg, &len);
	if (rc != DIME_OK || gf_write("q.arm", msg, len) != 0) {
		t_fail("%s: cannot read the queued message", what);
		free(msg);
		return;
	}
	free(msg);
	rc = gf_sh("'" DIME_CLI "' --store dst.db msg accept <q.arm >q.out 2>&1 && "
		   "grep -q '^ACCEPT bob@b.example ' q.out");
	T_CHECK(rc == 0, "%s: the destination does not accept the queued message", what);
}

/* The id in "queued as ID". */
static const char *
gf_id(const struct dime_gw_verdict *v)
{
	const char *p = strstr(v->text, "queued as ");

	return p != NULL ? p + 10 : "";
}

static void
test_trustful(struct gf *f)
{
	struct dime_gw_verdict v;
	size_t before = gf_count(t_path("outq/msg"));
	unsigned kicks = f->kicks;
	int rc;

	rc = gf_run(f, &v, "alice@a.example", "bob@b.example",
		    "From: alice@a.example\r\nTo: bob@b.example\r\nSubject: t\r\n\r\nhi\r\n");
	T_CHECK(rc == DIME_OK && v.code == 250 && v.route == DIME_GW_DMIME,
		"trustful: got code %d route %d (%s)", v.code, v.route, v.text);
	T_CHECK(gf_count(t_path("outq/msg")) == before + 1 && f->kicks == kicks + 1,
		"trustful: %zu queued (want %zu), %u kicks", gf_count(t_path("outq/msg")),
		before + 1, f->kicks - kicks);
	if (v.code == 250)
		gf_check_queued(f, "trustful", gf_id(&v), "alice@a.example");
	/* a sender we do not host, naked: the gateway signs for nobody else */
	before = gf_count(t_path("outq/msg"));
	rc = gf_run(f, &v, "mallory@legacy.example", "bob@b.example", "Subject: t\r\n\r\nhi\r\n");
	T_CHECK(rc == DIME_OK && v.code / 100 == 5 && gf_count(t_path("outq/msg")) == before,
		"stranger: got code %d (%s)", v.code, v.text);
}

static void
test_cautious(struct gf *f)
{
	struct dime_gw_verdict v;
	uint8_t *m = NULL;
	size_t len = 0, before;
	int rc;

	/* author-made D/MIME (not origin-signed), armored in the body of a mail */
	rc = gf_sh("printf 'Subject: c\\r\\n\\r\\ncautious\\r\\n' | '" DIME_CLI
		   "' --store src.db msg wrap --from alice@a.example --to bob@b.example >c.arm "
		   "2>c.err && printf 'From: alice@a.example\\r\\nSubject: x\\r\\n\\r\\n' "
		   ">c.mail && cat c.arm >>c.mail");
	m = rc == 0 ? t_read(t_path("c.mail"), &len) : NULL;
	if (m == NULL) {
		t_fail("cautious: cannot make the message");
		return;
	}
	before = gf_count(t_path("outq/msg"));
	{
		char *s = malloc(len + 1);

		memcpy(s, m, len);
		s[len] = 0;
		/* any sender: the author's own signatures are what is checked */
		rc = gf_run(f, &v, "", "bob@b.example", s);
		T_CHECK(rc == DIME_OK && v.code == 250 && v.route == DIME_GW_DMIME,
			"cautious: got code %d route %d (%s)", v.code, v.route, v.text);
		T_CHECK(gf_count(t_path("outq/msg")) == before + 1, "cautious: not queued");
		if (v.code == 250)
			gf_check_queued(f, "cautious", gf_id(&v), "alice@a.example");

		/* tampered: one base64 character in the middle of the armor changed */
		before = gf_count(t_path("outq/msg"));
		{
			char *b = strstr(s, "-----\n");
			size_t at;

			b = b != NULL ? b : strstr(s, "-----\r\n");
			at = b != NULL ? (size_t)(b - s) + (len - (size_t)(b - s)) / 2 : 0;
			while (at > 0 && at < len && (s[at] == '\n' || s[at] == '\r'))
				at++;
			if (at > 0 && at < len)
				s[at] = s[at] == 'A' ? 'B' : 'A';
		}
		rc = gf_run(f, &v, "alice@a.example", "bob@b.example", s);
		T_CHECK(rc == DIME_OK && v.code / 100 == 5 &&
			    gf_count(t_path("outq/msg")) == before,
			"tampered cautious: got code %d (%s), %zu queued", v.code, v.text,
			gf_count(t_path("outq/msg")) - before);
		free(s);
	}
	free(m);
}

static void
test_naked(struct gf *f)
{
	struct gf_srv s;
	struct dime_gw_verdict v;
	char rj[64];
	const char *mail = "From: alice@a.example\r\nTo: x@legacy.example\r\nSubject: n\r\n\r\n"
			   "naked\r\n";
	int rc;

	memset(&s, 0, sizeof(s));
	if (gf_srv_start(&s) != 0) {
		t_fail("naked: the scripted server did not start");
		return;
	}
	(void)snprintf(rj, sizeof(rj), "127.0.0.1:%u", s.port);
	if (gf_gw(f, DIME_POL_MIXED, DIME_DCONF_UNSIGNED_DEFER, rj) != 0)
		goto out;
	rc = gf_run(f, &v, "alice@a.example", "x@legacy.example", mail);
	pthread_mutex_lock(&s.mu);
	T_CHECK(rc == DIME_OK && v.code == 250 && v.route == DIME_GW_NAKED && s.messages == 1 &&
		    s.data_len == strlen(mail) && memcmp(s.data, mail, s.data_len) == 0,
		"naked: got code %d route %d (%s), the server took %u (%zu bytes)", v.code, v.route,
		v.text, s.messages, s.data_len);
	s.dot_code = 451; /* the reinjection defers: so do we */
	pthread_mutex_unlock(&s.mu);
	rc = gf_run(f, &v, "alice@a.example", "x@legacy.example", mail);
	T_CHECK(rc == DIME_OK && v.code / 100 == 4, "naked, reinjection 451: got code %d (%s)",
		v.code, v.text);
	/* D/MIME is never sent naked */
	rc = gf_run(f, &v, "alice@a.example", "x@legacy.example",
		    "Subject: x\r\n\r\n-----BEGIN ENCRYPTED MESSAGE-----\r\nAAAA\r\n"
		    "-----END ENCRYPTED MESSAGE-----\r\n");
	pthread_mutex_lock(&s.mu);
	T_CHECK(rc == DIME_OK && v.code / 100 == 5 && s.messages == 1,
		"D/MIME to legacy: got code %d (%s), server took %u", v.code, v.text, s.messages);
	pthread_mutex_unlock(&s.mu);
	/* strict: refused */
	if (gf_gw(f, DIME_POL_STRICT, DIME_DCONF_UNSIGNED_DEFER, rj) != 0)
		goto out;
	rc = gf_run(f, &v, "alice@a.example", "x@legacy.example", mail);
	T_CHECK(rc == DIME_OK && v.code / 100 == 5 && v.route == DIME_GW_REFUSE,
		"strict: got code %d route %d (%s)", v.code, v.route, v.text);
out:
	gf_srv_stop(&s);
	/* the reinjection down (nothing listens now): 4xx */
	if (gf_gw(f, DIME_POL_MIXED, DIME_DCONF_UNSIGNED_DEFER, rj) != 0)
		return;
	rc = gf_run(f, &v, "alice@a.example", "x@legacy.example", mail);
	T_CHECK(rc == DIME_OK && v.code / 100 == 4, "reinjection down: got code %d (%s)", v.code,
		v.text);
}

/* A destination whose record nothing validates against: 4xx, never naked. */
static void
test_bogus(struct gf *f)
{
	struct dime_gw_verdict v;
	int rc = dime_gw_rcpt(f->gw, &v, "alice@a.example", "bob@c.example", (int64_t)time(NULL));

	T_CHECK(rc == DIME_OK && v.code / 100 == 4 && v.route == DIME_GW_DEFER,
		"does not validate: got code %d route %d (%s)", v.code, v.route, v.text);
	rc = dime_gw_message(f->gw, &v, "alice@a.example", "bob@c.example",
			     (const uint8_t *)gf_mail, strlen(gf_mail), (int64_t)time(NULL));
	T_CHECK(rc == DIME_OK && v.code / 100 == 4, "does not validate, DATA: got code %d", v.code);
}

/* Users made after the gateway started: the first message for carol finds her signet only in
 * a fresh directory, which it then installs; dave is known after dime_gw_reload (SIGHUP). */
static void
test_new_users(struct gf *f)
{
	struct dime_gw_verdict v;
	char why[512] = "";
	int rc;

	rc = gf_sh("'" DIME_CLI "' --store src.db user create carol@a.example >/dev/null 2>&1");
	T_CHECK(rc == 0, "cannot create carol");
	rc = gf_run(f, &v, "x@legacy.example", "carol@a.example", gf_mail);
	T_CHECK(rc == DIME_OK && v.code == 250 && v.route == DIME_GW_LOCAL,
		"a user made after the start: got rc %d code %d (%s)", rc, v.code, v.text);
	rc = gf_sh("'" DIME_CLI "' --store src.db user create dave@a.example >/dev/null 2>&1");
	T_CHECK(rc == 0, "cannot create dave");
	T_CHECK(dime_gw_reload(f->gw, why, sizeof(why)) == DIME_OK, "reload: %s", why);
	rc = gf_run(f, &v, "x@legacy.example", "dave@a.example", gf_mail);
	T_CHECK(rc == DIME_OK && v.code == 250 && v.route == DIME_GW_LOCAL,
		"a user made before a reload: got rc %d code %d (%s)", rc, v.code, v.text);
	/* trustful mail from a user made after the start: signed with her new keys */
	rc = gf_run(f, &v, "carol@a.example", "bob@b.example", gf_mail);
	T_CHECK(rc == DIME_OK && v.code == 250 && v.route == DIME_GW_DMIME,
		"trustful from a new user: got rc %d code %d (%s)", rc, v.code, v.text);
}

int
main(void)
{
	static struct gf f;
	struct dime_dns_conf dc;
	char why[512];

	t_init();
	if (t_mkdtemp("gwflow") != 0 || gf_setup() != 0) {
		t_fail("setup");
		return t_done("daemon_gwflow");
	}
	if (gf_start() != 0) {
		t_fail("dimed did not start");
		return t_done("daemon_gwflow");
	}
	if (gf_sh("'" DIME_CLI "' --store dst.db store list | "
		  "awk '$1==\"b.example\" && $2==\"org-signet\" {print $NF}' >bfp") != 0)
		t_fail("the destination's fingerprint");
	memset(&dc, 0, sizeof(dc));
	dc.static_file = t_path("dns.txt");
	if (dime_dns_new(&f.dns, &dc, why, sizeof(why)) != DIME_OK ||
	    dime_spool_open(&f.spool, t_path("spool"), why, sizeof(why)) != DIME_OK ||
	    dime_outq_open(&f.outq, t_path("outq"), NULL, why, sizeof(why)) != DIME_OK) {
		t_fail("setup: %s", why);
		goto out;
	}
	f.dx.dns = f.dns;
	f.dx.helo = "a.example";
	f.dx.connect_timeout_ms = 5000;
	f.dx.reply_timeout_ms = 10000;
	f.ports.dx = gf_port;
	(void)snprintf(f.conf.store, sizeof(f.conf.store), "%s", t_path("src.db"));
	(void)snprintf(f.conf.hostname, sizeof(f.conf.hostname), "mx.a.example");
	{
		/* a reinjection that is not HOST:PORT is a configuration error */
		struct dime_gw_env env;
		struct dime_gw *bad = NULL;

		(void)snprintf(f.conf.reinject, sizeof(f.conf.reinject), "localhost");
		memset(&env, 0, sizeof(env));
		env.conf = &f.conf;
		env.spool = f.spool;
		env.outq = f.outq;
		T_CHECK(dime_gw_new(&bad, &env, why, sizeof(why)) == DIME_E_INVALID &&
			    bad == NULL && strstr(why, "reinject") != NULL,
			"bad reinject: got '%s'", why);
		dime_gw_free(bad);
	}
	if (gf_gw(&f, DIME_POL_MIXED, DIME_DCONF_UNSIGNED_DEFER, "") != 0)
		goto out;
	test_inbound(&f);
	test_unsigned(&f);
	test_trustful(&f);
	test_cautious(&f);
	test_bogus(&f);
	test_naked(&f);
	test_new_users(&f);
out:
	dime_gw_free(f.gw);
	dime_outq_close(f.outq);
	dime_spool_close(f.spool);
	dime_dns_free(f.dns);
	gf_stop();
	if (t_failures == 0)
		t_rm_rf(t_dir);
	return t_done("daemon_gwflow");
}

#else
int
main(void)
{
	return T_SKIP;
}
#endif

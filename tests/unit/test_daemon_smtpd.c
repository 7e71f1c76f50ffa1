/* dimed's SMTP listener glue over real sockets on 127.0.0.1: a loop thread, a pool, and a test
 * handler answering from a script (by recipient name) that records its calls. EHLO and
 * STARTTLS (an OpenSSL client), pipelined MAIL/RCPT/DATA, refusals at RCPT, DATA answered only
 * once the handler returned, mixed outcomes in SMTP mode, LMTP's reply per recipient, the
 * command timeout, slowloris (the timeouts count from the last complete line; the TLS
 * handshake's as a whole), drain, 1000 pipelined NOOPs, a dialogue sent 1 byte at a time. */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "dime/dconf.h"
#include "dime/dlog.h"
#include "dime/loop.h"
#include "dime/pool.h"
#include "dime/smtpd.h"
#include "dime/tlsctx.h"
#include "tlib.h"

/* ---- the handler: a script keyed by the recipient's local part ---- */

struct th {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned n_rcpt, n_msg;
	uint8_t msg[4096];
	size_t msg_len;
	char sender[256];
	int gate_closed;  /* "slow" recipients wait until it opens */
	int gate_entered; /* a "slow" message call is waiting */
};

static struct th g_th = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void
th_set(struct dime_gw_verdict *v, int code, const char *enh, const char *text)
{
	memset(v, 0, sizeof(*v));
	v->code = code;
	snprintf(v->enh, sizeof(v->enh), "%s", enh);
	snprintf(v->text, sizeof(v->text), "%s", text);
}

static int
th_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

static int
th_rcpt(void *arg, struct dime_gw_verdict *v, const char *sender, const char *rcpt, int64_t now)
{
	struct th *t = arg;

	(void)now;
	pthread_mutex_lock(&t->mu);
	t->n_rcpt++;
	snprintf(t->sender, sizeof(t->sender), "%s", sender);
	pthread_mutex_unlock(&t->mu);
	if (th_prefix(rcpt, "temp"))
		th_set(v, 451, "4.7.0", "try again later");
	else if (th_prefix(rcpt, "bad"))
		th_set(v, 550, "5.1.1", "no such user here");
	else if (th_prefix(rcpt, "pol"))
		th_set(v, 554, "5.7.1", "refused by policy");
	else if (th_prefix(rcpt, "err"))
		return DIME_E_NOMEM;
	else
		th_set(v, 250, "2.1.5", "");
	return DIME_OK;
}

static int
th_message(void *arg, struct dime_gw_verdict *v, const char *sender, const char *rcpt,
	   const uint8_t *msg, size_t len, int64_t now)
{
	struct th *t = arg;

	(void)sender;
	(void)now;
	pthread_mutex_lock(&t->mu);
	t->n_msg++;
	t->msg_len = len < sizeof(t->msg) ? len : sizeof(t->msg);
	memcpy(t->msg, msg, t->msg_len);
	if (th_prefix(rcpt, "slow")) {
		t->gate_entered = 1;
		pthread_cond_broadcast(&t->cv);
		while (t->gate_closed)
			pthread_cond_wait(&t->cv, &t->mu);
	}
	pthread_mutex_unlock(&t->mu);
	if (th_prefix(rcpt, "mtemp"))
		th_set(v, 451, "4.3.0", "spool busy");
	else if (th_prefix(rcpt, "mbad"))
		th_set(v, 554, "5.6.0", "cannot wrap");
	else
		th_set(v, 250, "2.0.0", "queued as T1");
	return DIME_OK;
}

static void
th_reset(void)
{
	pthread_mutex_lock(&g_th.mu);
	g_th.n_rcpt = g_th.n_msg = 0;
	g_th.msg_len = 0;
	g_th.gate_closed = g_th.gate_entered = 0;
	pthread_mutex_unlock(&g_th.mu);
}

static unsigned
th_count(unsigned *which)
{
	unsigned n;

	pthread_mutex_lock(&g_th.mu);
	n = *which;
	pthread_mutex_unlock(&g_th.mu);
	return n;
}

/* ---- the loop thread, and calls run on it ---- */

struct tloop {
	pthread_t tid;
	struct dime_io_loop *l;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int ready, rc, may_free;
};

static void *
tloop_main(void *arg)
{
	struct tloop *t = arg;
	struct dime_io_loop *l = NULL;
	int rc = dime_io_loop_new(&l, DIME_IO_AUTO);

	pthread_mutex_lock(&t->mu);
	t->l = l;
	t->rc = rc;
	t->ready = 1;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	if (rc == DIME_OK) {
		if (dime_io_loop_run(l) != DIME_OK)
			t->rc = DIME_E_IO;
		pthread_mutex_lock(&t->mu);
		while (!t->may_free)
			pthread_cond_wait(&t->cv, &t->mu);
		pthread_mutex_unlock(&t->mu);
		dime_io_loop_free(l);
	}
	return NULL;
}

struct oncall {
	void (*fn)(void *arg);
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
};

static void
oncall_run(void *arg)
{
	struct oncall *o = arg;

	o->fn(o->arg);
	pthread_mutex_lock(&o->mu);
	o->done = 1;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
}

/* Run fn(arg) on the loop thread and wait for it. */
static void
on_loop(struct tloop *t, void (*fn)(void *arg), void *arg)
{
	struct oncall o = {
	    .fn = fn, .arg = arg, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

	if (dime_io_loop_post(t->l, oncall_run, &o) != DIME_OK) {
		t_fail("dime_io_loop_post");
		return;
	}
	pthread_mutex_lock(&o.mu);
	while (!o.done)
		pthread_cond_wait(&o.cv, &o.mu);
	pthread_mutex_unlock(&o.mu);
}

/* ---- the server under test ---- */

struct tsrv {
	struct dime_dconf conf;
	struct dime_smtpd_env env;
	struct dime_smtpd *s;
	int rc;
	char why[256];
	unsigned ports[DIME_DCONF_MAX_LISTEN];
	size_t n_ports;
	/* drain */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int idle;
	size_t n_conns;
};

static void
tsrv_new_cb(void *arg)
{
	struct tsrv *t = arg;

	t->rc = dime_smtpd_new(&t->s, &t->env, t->why, sizeof(t->why));
	if (t->rc == DIME_OK)
		t->n_ports = dime_smtpd_ports(t->s, t->ports, DIME_DCONF_MAX_LISTEN);
}

static void
tsrv_idle(void *arg)
{
	struct tsrv *t = arg;

	pthread_mutex_lock(&t->mu);
	t->idle = 1;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

static void
tsrv_drain_cb(void *arg)
{
	struct tsrv *t = arg;

	dime_smtpd_drain(t->s, tsrv_idle, t);
}

static void
tsrv_free_cb(void *arg)
{
	struct tsrv *t = arg;

	dime_smtpd_free(t->s);
	t->s = NULL;
}

static void
tsrv_nconns_cb(void *arg)
{
	struct tsrv *t = arg;

	t->n_conns = dime_smtpd_n_conns(t->s);
}

/* Wait (bounded) until drain's idle callback ran. */
static int
tsrv_wait_idle(struct tsrv *t)
{
	struct timespec ts;
	int ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 20;
	pthread_mutex_lock(&t->mu);
	while (!t->idle && pthread_cond_timedwait(&t->cv, &t->mu, &ts) == 0)
		;
	ok = t->idle;
	pthread_mutex_unlock(&t->mu);
	return ok;
}

/* ---- a blocking client with a deadline on every read ---- */

struct cl {
	int fd;
	SSL_CTX *cctx;
	SSL *ssl;
	char buf[65536];
	size_t len;
	char last[1024]; /* the last reply line, CRLF stripped */
};

static int
cl_open(struct cl *c, unsigned port)
{
	struct sockaddr_in a;
	struct timeval tv = {.tv_sec = 20};
	int one = 1;

	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

static void
cl_close(struct cl *c)
{
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	SSL_CTX_free(c->cctx);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->ssl = NULL;
	c->cctx = NULL;
}

static int
cl_send_n(struct cl *c, const void *p, size_t n)
{
	const char *q = p;

	while (n > 0) {
		ssize_t w = c->ssl != NULL ? SSL_write(c->ssl, q, (int)n) : send(c->fd, q, n, 0);

		if (w <= 0)
			return -1;
		q += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
cl_send(struct cl *c, const char *s)
{
	return cl_send_n(c, s, strlen(s));
}

/* One reply (all its lines). Returns its code, or -1 on EOF, error or the 20 s deadline. */
static int
cl_reply(struct cl *c)
{
	for (;;) {
		char *eol = memchr(c->buf, '\n', c->len);
		ssize_t r;

		if (eol != NULL) {
			size_t ll = (size_t)(eol - c->buf) + 1;
			int done = ll >= 5 && c->buf[3] == ' ';
			int code = atoi(c->buf);
			size_t keep = ll - 2 < sizeof(c->last) ? ll - 2 : sizeof(c->last) - 1;

			if (ll < 2)
				keep = 0;
			memcpy(c->last, c->buf, keep);
			c->last[keep] = 0;
			memmove(c->buf, c->buf + ll, c->len - ll);
			c->len -= ll;
			if (done)
				return code;
			continue;
		}
		if (c->len == sizeof(c->buf))
			return -1;
		r = c->ssl != NULL
			? SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len))
			: recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (r <= 0)
			return -1;
		c->len += (size_t)r;
	}
}

/* Send s, expect a reply with code want (and text containing has, when not NULL). */
static void
cl_expect(struct cl *c, const char *s, int want, const char *has, const char *what)
{
	int got;

	if (s != NULL && cl_send(c, s) != 0) {
		t_fail("%s: send failed", what);
		return;
	}
	got = cl_reply(c);
	T_CHECK(got == want, "%s: got %d (%s), want %d", what, got, c->last, want);
	if (got == want && has != NULL)
		T_CHECK(strstr(c->last, has) != NULL, "%s: got \"%s\", want \"%s\" in it", what,
			c->last, has);
}

/* Is nothing readable now (no reply sent yet)? */
static int
cl_quiet(struct cl *c)
{
	char b;
	ssize_t r = recv(c->fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);

	return c->len == 0 && r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static const char msg_body[] = "Subject: hello\r\n\r\nline one\r\n..dot line\r\n.\r\n";
static const char msg_got[] = "Subject: hello\r\n\r\nline one\r\n.dot line\r\n";

/* ---- the tests ---- */

static void
test_starttls(struct tsrv *t)
{
	struct cl c;
	int saw_tls = 0, code;

	if (cl_open(&c, t->ports[0]) != 0) {
		t_fail("connect smtp");
		return;
	}
	cl_expect(&c, NULL, 220, "ESMTP", "banner");
	cl_send(&c, "EHLO mta.example\r\n");
	/* read the EHLO lines one at a time to see STARTTLS among them */
	for (;;) {
		char *eol;
		ssize_t r;

		while ((eol = memchr(c.buf, '\n', c.len)) == NULL) {
			r = recv(c.fd, c.buf + c.len, sizeof(c.buf) - c.len, 0);
			if (r <= 0)
				break;
			c.len += (size_t)r;
		}
		if (eol == NULL) {
			t_fail("EHLO: no complete reply");
			cl_close(&c);
			return;
		}
		*eol = 0;
		saw_tls |= strstr(c.buf, "STARTTLS") != NULL;
		code = c.buf[3] == ' ';
		c.len -= (size_t)(eol + 1 - c.buf);
		memmove(c.buf, eol + 1, c.len);
		if (code)
			break;
	}
	T_CHECK(saw_tls, "EHLO: STARTTLS not advertised");
	cl_expect(&c, "STARTTLS\r\n", 220, NULL, "STARTTLS");
	c.cctx = SSL_CTX_new(TLS_client_method());
	c.ssl = SSL_new(c.cctx);
	SSL_set_fd(c.ssl, c.fd);
	if (SSL_connect(c.ssl) != 1) {
		ERR_print_errors_fp(stderr);
		t_fail("STARTTLS: handshake failed");
		cl_close(&c);
		return;
	}
	T_CHECK(SSL_version(c.ssl) >= TLS1_2_VERSION, "TLS version 0x%x", SSL_version(c.ssl));
	cl_expect(&c, "EHLO mta.example\r\n", 250, NULL, "EHLO over TLS");
	cl_expect(&c, "STARTTLS\r\n", 503, NULL, "STARTTLS twice");
	cl_expect(&c, "MAIL FROM:<s@a.example>\r\n", 250, NULL, "MAIL over TLS");
	cl_expect(&c, "RCPT TO:<u@b.example>\r\n", 250, NULL, "RCPT over TLS");
	cl_expect(&c, "DATA\r\n", 354, NULL, "DATA over TLS");
	cl_expect(&c, msg_body, 250, "queued as T1", "message over TLS");
	cl_expect(&c, "QUIT\r\n", 221, NULL, "QUIT");
	cl_close(&c);
}

static void
test_pipelined(struct tsrv *t)
{
	struct cl c;

	th_reset();
	if (cl_open(&c, t->ports[0]) != 0) {
		t_fail("connect smtp");
		return;
	}
	cl_expect(&c, NULL, 220, NULL, "banner");
	cl_expect(&c, "EHLO mta.example\r\n", 250, NULL, "EHLO");
	cl_send(&c, "MAIL FROM:<s@a.example> BODY=8BITMIME\r\nRCPT TO:<u1@b.example>\r\n"
		    "RCPT TO:<u2@b.example>\r\nDATA\r\n");
	cl_expect(&c, NULL, 250, NULL, "pipelined MAIL");
	cl_expect(&c, NULL, 250, NULL, "pipelined RCPT 1");
	cl_expect(&c, NULL, 250, NULL, "pipelined RCPT 2");
	cl_expect(&c, NULL, 354, NULL, "pipelined DATA");
	cl_expect(&c, msg_body, 250, "2.0.0", "pipelined message");
	T_CHECK(th_count(&g_th.n_rcpt) == 2, "rcpt calls: got %u, want 2", th_count(&g_th.n_rcpt));
	T_CHECK(th_count(&g_th.n_msg) == 2, "message calls: got %u, want 2", th_count(&g_th.n_msg));
	pthread_mutex_lock(&g_th.mu);
	T_CHECK(g_th.msg_len == strlen(msg_got) && memcmp(g_th.msg, msg_got, g_th.msg_len) == 0,
		"message bytes: got %zu octets, want %zu", g_th.msg_len, strlen(msg_got));
	T_CHECK(strcmp(g_th.sender, "s@a.example") == 0, "sender: got \"%s\"", g_th.sender);
	pthread_mutex_unlock(&g_th.mu);
	/* a second transaction on the same connection, and RCPT refusals */
	cl_expect(&c, "MAIL FROM:<>\r\n", 250, NULL, "MAIL <>");
	cl_expect(&c, "RCPT TO:<bad@b.example>\r\n", 550, "5.1.1 no such user here", "RCPT bad");
	cl_expect(&c, "RCPT TO:<temp@b.example>\r\n", 451, "4.7.0 try again later", "RCPT temp");
	cl_expect(&c, "RCPT TO:<pol@b.example>\r\n", 554, "5.7.1 refused by policy", "RCPT pol");
	cl_expect(&c, "RCPT TO:<err@b.example>\r\n", 451, "4.3.0", "RCPT handler error");
	cl_expect(&c, "DATA\r\n", 503, NULL, "DATA with no recipient");
	cl_expect(&c, "RSET\r\n", 250, NULL, "RSET");
	cl_expect(&c, "QUIT\r\n", 221, NULL, "QUIT");
	cl_close(&c);
}

/* SMTP mode: one reply for all recipients. */
static void
test_mixed(struct tsrv *t)
{
	static const struct {
		const char *r1, *r2;
		int want;
		const char *has;
	} cases[] = {
	    {"ok1", "ok2", 250, "2.0.0"},
	    {"ok1", "mtemp", 451, "4.3.0 spool busy"},
	    {"ok1", "mbad", 554, "5.6.0 cannot wrap"},
	    {"mbad", "mtemp", 451, "4.3.0"}, /* a 4xx wins over a 5xx */
	};
	struct cl c;
	char line[256];

	if (cl_open(&c, t->ports[0]) != 0) {
		t_fail("connect smtp");
		return;
	}
	cl_expect(&c, NULL, 220, NULL, "banner");
	cl_expect(&c, "EHLO mta.example\r\n", 250, NULL, "EHLO");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		th_reset();
		cl_expect(&c, "MAIL FROM:<s@a.example>\r\n", 250, NULL, "mixed MAIL");
		snprintf(line, sizeof(line), "RCPT TO:<%s@b.example>\r\n", cases[i].r1);
		cl_expect(&c, line, 250, NULL, "mixed RCPT 1");
		snprintf(line, sizeof(line), "RCPT TO:<%s@b.example>\r\n", cases[i].r2);
		cl_expect(&c, line, 250, NULL, "mixed RCPT 2");
		cl_expect(&c, "DATA\r\n", 354, NULL, "mixed DATA");
		snprintf(line, sizeof(line), "mixed %s+%s", cases[i].r1, cases[i].r2);
		cl_expect(&c, msg_body, cases[i].want, cases[i].has, line);
		T_CHECK(th_count(&g_th.n_msg) == 2, "%s: message calls %u, want 2", line,
			th_count(&g_th.n_msg));
	}
	cl_close(&c);
}

static void
test_lmtp(struct tsrv *t)
{
	struct cl c;

	th_reset();
	if (cl_open(&c, t->ports[1]) != 0) {
		t_fail("connect lmtp");
		return;
	}
	cl_expect(&c, NULL, 220, "LMTP", "LMTP banner");
	cl_expect(&c, "LHLO mta.example\r\n", 250, NULL, "LHLO");
	cl_send(&c, "MAIL FROM:<s@a.example>\r\nRCPT TO:<ok@b.example>\r\n"
		    "RCPT TO:<mtemp@b.example>\r\nRCPT TO:<bad@b.example>\r\n"
		    "RCPT TO:<mbad@b.example>\r\nDATA\r\n");
	cl_expect(&c, NULL, 250, NULL, "LMTP MAIL");
	cl_expect(&c, NULL, 250, NULL, "LMTP RCPT ok");
	cl_expect(&c, NULL, 250, NULL, "LMTP RCPT mtemp");
	cl_expect(&c, NULL, 550, NULL, "LMTP RCPT bad");
	cl_expect(&c, NULL, 250, NULL, "LMTP RCPT mbad");
	cl_expect(&c, NULL, 354, NULL, "LMTP DATA");
	cl_expect(&c, msg_body, 250, "queued as T1", "LMTP reply 1 (ok)");
	cl_expect(&c, NULL, 451, "spool busy", "LMTP reply 2 (mtemp)");
	cl_expect(&c, NULL, 554, "cannot wrap", "LMTP reply 3 (mbad)");
	T_CHECK(th_count(&g_th.n_msg) == 3, "LMTP message calls: got %u, want 3",
		th_count(&g_th.n_msg));
	cl_expect(&c, "STARTTLS\r\n", 454, NULL, "LMTP has no STARTTLS");
	cl_expect(&c, "QUIT\r\n", 221, NULL, "LMTP QUIT");
	cl_close(&c);
}

/* DATA's reply waits for the handler. */
static void
test_data_waits(struct tsrv *t)
{
	struct cl c;
	struct timespec ts;
	int entered;

	th_reset();
	if (cl_open(&c, t->ports[0]) != 0) {
		t_fail("connect smtp");
		return;
	}
	cl_expect(&c, NULL, 220, NULL, "banner");
	cl_expect(&c, "EHLO mta.example\r\n", 250, NULL, "EHLO");
	cl_expect(&c, "MAIL FROM:<s@a.example>\r\n", 250, NULL, "MAIL");
	cl_expect(&c, "RCPT TO:<slow@b.example>\r\n", 250, NULL, "RCPT slow");
	cl_expect(&c, "DATA\r\n", 354, NULL, "DATA");
	pthread_mutex_lock(&g_th.mu);
	g_th.gate_closed = 1;
	pthread_mutex_unlock(&g_th.mu);
	cl_send(&c, msg_body);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 20;
	pthread_mutex_lock(&g_th.mu);
	while (!g_th.gate_entered && pthread_cond_timedwait(&g_th.cv, &g_th.mu, &ts) == 0)
		;
	entered = g_th.gate_entered;
	pthread_mutex_unlock(&g_th.mu);
	T_CHECK(entered, "the handler was not called");
	T_CHECK(cl_quiet(&c), "a reply came before the handler returned");
	pthread_mutex_lock(&g_th.mu);
	g_th.gate_closed = 0;
	pthread_cond_broadcast(&g_th.cv);
	pthread_mutex_unlock(&g_th.mu);
	cl_expect(&c, NULL, 250, NULL, "DATA after the handler");
	cl_close(&c);
}

static void
test_noops(struct tsrv *t)
{
	static char buf[1000 * 6 + 1];
	struct cl c;
	int bad = 0;

	if (cl_open(&c, t->ports[0]) != 0) {
		t_fail("connect smtp");
		return;
	}
	cl_expect(&c, NULL, 220, NULL, "banner");
	cl_expect(&c, "EHLO mta.example\r\n", 250, NULL, "EHLO");
	buf[0] = 0;
	for (int i = 0; i < 1000; i++)
		memcpy(buf + 6 * i, "NOOP\r\n", 7);
	cl_send(&c, buf);
	for (int i = 0; i < 1000; i++)
		if (cl_reply(&c) != 250 && bad++ == 0)
			t_fail("NOOP %d: got \"%s\", want 250", i, c.last);
	cl_expect(&c, "QUIT\r\n", 221, NULL, "QUIT after 1000 NOOPs");
	cl_close(&c);
}

static void
test_bytewise(struct tsrv *t)
{
	static const char dialog[] = "MAIL FROM:<s@a.example>\r\nRCPT TO:<u@b.example>\r\nDATA\r\n";
	struct cl c;

	th_reset();
	if (cl_open(&c, t->ports[0]) != 0) {
		t_fail("connect smtp");
		return;
	}
	cl_expect(&c, NULL, 220, NULL, "banner");
	for (const char *p = "EHLO mta.example\r\n"; *p; p++)
		cl_send_n(&c, p, 1);
	cl_expect(&c, NULL, 250, NULL, "bytewise EHLO");
	for (const char *p = dialog; *p; p++)
		cl_send_n(&c, p, 1);
	cl_expect(&c, NULL, 250, NULL, "bytewise MAIL");
	cl_expect(&c, NULL, 250, NULL, "bytewise RCPT");
	cl_expect(&c, NULL, 354, NULL, "bytewise DATA");
	for (const char *p = msg_body; *p; p++)
		cl_send_n(&c, p, 1);
	cl_expect(&c, NULL, 250, NULL, "bytewise message");
	pthread_mutex_lock(&g_th.mu);
	T_CHECK(g_th.msg_len == strlen(msg_got) && memcmp(g_th.msg, msg_got, g_th.msg_len) == 0,
		"bytewise message bytes: got %zu octets, want %zu", g_th.msg_len, strlen(msg_got));
	pthread_mutex_unlock(&g_th.mu);
	cl_close(&c);
}

/* Start dst on a copy of base's configuration and environment, changed by the caller after. */
static int
tsrv_clone(struct tloop *tl, struct tsrv *dst, const struct tsrv *base,
	   void (*edit)(struct dime_dconf *c))
{
	memcpy(&dst->conf, &base->conf, sizeof(dst->conf));
	edit(&dst->conf);
	dst->env = base->env;
	dst->env.conf = &dst->conf;
	dst->idle = 0;
	pthread_mutex_init(&dst->mu, NULL);
	pthread_cond_init(&dst->cv, NULL);
	on_loop(tl, tsrv_new_cb, dst);
	if (dst->rc != DIME_OK)
		t_fail("server: %d (%s)", dst->rc, dst->why);
	return dst->rc == DIME_OK ? 0 : -1;
}

static void
tsrv_stop(struct tloop *tl, struct tsrv *t)
{
	on_loop(tl, tsrv_drain_cb, t);
	T_CHECK(tsrv_wait_idle(t), "drain never idle");
	on_loop(tl, tsrv_free_cb, t);
}

static void
edit_timeout(struct dime_dconf *c)
{
	c->timeout_cmd_ms = 300;
}

static void
edit_data_timeout(struct dime_dconf *c)
{
	c->timeout_data_ms = 300;
}

static void
edit_tls_timeout(struct dime_dconf *c)
{
	c->timeout_tls_ms = 300;
}

static void
edit_max_conns(struct dime_dconf *c)
{
	c->max_conns = 1;
	c->max_conns_per_ip = 1; /* not applied: the MTA is one address */
}

/* A short command timeout: the banner, then nothing (no step that could race the timer). */
static void
test_timeout(struct tloop *tl, const struct tsrv *base)
{
	static struct tsrv t2;
	struct cl c;

	if (tsrv_clone(tl, &t2, base, edit_timeout) != 0)
		return;
	if (cl_open(&c, t2.ports[0]) == 0) {
		cl_expect(&c, NULL, 220, NULL, "timeout banner");
		cl_expect(&c, NULL, 421, "4.4.2", "idle session");
		T_CHECK(cl_reply(&c) == -1, "connection still open after 421");
		cl_close(&c);
	} else {
		t_fail("connect timeout server");
	}
	tsrv_stop(tl, &t2);
}

/* Slowloris (ECOSYSTEM P17): one byte of a line every 50 ms, never its LF. The timeout counts
 * from the last complete line, so the 421 comes while bytes still trickle; a timer re-armed by
 * every byte never fires (the test then gives up after 200 bytes, 10 s). */
static void
cl_trickle(struct cl *c, const char *what, const char *bytes, int want_421)
{
	struct pollfd pf = {.fd = c->fd, .events = POLLIN};
	size_t n = strlen(bytes);
	int i;

	for (i = 0; i < 200; i++) {
		if (poll(&pf, 1, 50) != 0)
			break; /* a reply (or the close) is there */
		if (send(c->fd, bytes + (size_t)i % n, 1, MSG_NOSIGNAL) != 1)
			break;
	}
	T_CHECK(i < 200, "%s: no reply after 200 bytes, 1 every 50 ms (a per-byte timer?)", what);
	if (want_421)
		cl_expect(c, NULL, 421, "4.4.2", what);
	T_CHECK(cl_reply(c) == -1, "%s: connection still open (or a reply: %s)", what, c->last);
}

static void
test_slowloris(struct tloop *tl, const struct tsrv *base)
{
	static struct tsrv t2, t3;
	struct cl c;

	/* A command line: timeout_cmd 300 ms from the banner. */
	if (tsrv_clone(tl, &t2, base, edit_timeout) != 0)
		return;
	if (cl_open(&c, t2.ports[0]) == 0) {
		cl_expect(&c, NULL, 220, NULL, "slowloris banner");
		cl_send(&c, "NOOP ");
		cl_trickle(&c, "slowloris in a command", "x", 1);
		cl_close(&c);
	} else {
		t_fail("connect slowloris server");
	}
	tsrv_stop(tl, &t2);
	/* A message line: timeout_data 300 ms (the commands have the default 10 min). */
	if (tsrv_clone(tl, &t3, base, edit_data_timeout) != 0)
		return;
	th_reset();
	if (cl_open(&c, t3.ports[0]) == 0) {
		cl_expect(&c, NULL, 220, NULL, "slowloris DATA banner");
		cl_expect(&c, "EHLO mta.example\r\n", 250, NULL, "slowloris EHLO");
		cl_expect(&c, "MAIL FROM:<s@a.example>\r\n", 250, NULL, "slowloris MAIL");
		cl_expect(&c, "RCPT TO:<u@b.example>\r\n", 250, NULL, "slowloris RCPT");
		cl_expect(&c, "DATA\r\n", 354, NULL, "slowloris DATA");
		cl_send(&c, "Subject: slow\r\n\r\nline ");
		cl_trickle(&c, "slowloris in DATA", "x", 1);
		cl_close(&c);
		T_CHECK(th_count(&g_th.n_msg) == 0, "slowloris DATA: the handler got a message");
	} else {
		t_fail("connect slowloris DATA server");
	}
	tsrv_stop(tl, &t3);
}

/* A STARTTLS handshake trickled one byte every 50 ms (a ClientHello announcing a 16 KiB
 * record): timeout_tls bounds the whole handshake, so the connection closes without a word
 * (no plaintext after the 220) while bytes still come (ECOSYSTEM P18). */
static void
test_tls_slowloris(struct tloop *tl, const struct tsrv *base)
{
	static struct tsrv t4;
	static const char hello[] = "\x16\x03\x01\x40\x01\x01\x01\x3f\xfc\x03\x03";
	struct cl c;

	if (tsrv_clone(tl, &t4, base, edit_tls_timeout) != 0)
		return;
	if (cl_open(&c, t4.ports[0]) == 0) {
		cl_expect(&c, NULL, 220, NULL, "tls slowloris banner");
		cl_expect(&c, "EHLO mta.example\r\n", 250, NULL, "tls slowloris EHLO");
		cl_expect(&c, "STARTTLS\r\n", 220, "Ready", "tls slowloris STARTTLS");
		cl_trickle(&c, "a trickled TLS handshake", hello, 0);
		cl_close(&c);
	} else {
		t_fail("connect tls slowloris server");
	}
	tsrv_stop(tl, &t4);
}

/* max_conns = 1: a second connection gets 421 and a close while the first is open. */
static void
test_max_conns(struct tloop *tl, const struct tsrv *base)
{
	static struct tsrv t4;
	struct cl c, c2;

	if (tsrv_clone(tl, &t4, base, edit_max_conns) != 0)
		return;
	if (cl_open(&c, t4.ports[0]) == 0) {
		cl_expect(&c, NULL, 220, NULL, "max_conns: first banner");
		if (cl_open(&c2, t4.ports[0]) == 0) {
			cl_expect(&c2, NULL, 421, "4.7.0", "over max_conns");
			T_CHECK(cl_reply(&c2) == -1, "over max_conns: still open");
			cl_close(&c2);
		} else {
			t_fail("connect over max_conns");
		}
		cl_expect(&c, "NOOP\r\n", 250, NULL, "max_conns: the first still served");
		cl_close(&c);
	} else {
		t_fail("connect max_conns server");
	}
	tsrv_stop(tl, &t4);
}

/* The MTA vanishes while its DATA is with the handler: the connection is freed once the job
 * completes (it borrows the session), and the server goes back to no connection. */
static void
test_vanish(struct tloop *tl, struct tsrv *t)
{
	struct cl c;
	struct timespec ts;
	int entered;

	th_reset();
	if (cl_open(&c, t->ports[0]) != 0) {
		t_fail("connect smtp");
		return;
	}
	cl_expect(&c, NULL, 220, NULL, "vanish banner");
	cl_expect(&c, "EHLO mta.example\r\n", 250, NULL, "vanish EHLO");
	cl_expect(&c, "MAIL FROM:<s@a.example>\r\n", 250, NULL, "vanish MAIL");
	cl_expect(&c, "RCPT TO:<slow@b.example>\r\n", 250, NULL, "vanish RCPT");
	cl_expect(&c, "DATA\r\n", 354, NULL, "vanish DATA");
	pthread_mutex_lock(&g_th.mu);
	g_th.gate_closed = 1;
	pthread_mutex_unlock(&g_th.mu);
	cl_send(&c, msg_body);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 20;
	pthread_mutex_lock(&g_th.mu);
	while (!g_th.gate_entered && pthread_cond_timedwait(&g_th.cv, &g_th.mu, &ts) == 0)
		;
	entered = g_th.gate_entered;
	pthread_mutex_unlock(&g_th.mu);
	T_CHECK(entered, "vanish: the handler was not called");
	cl_close(&c);
	pthread_mutex_lock(&g_th.mu);
	g_th.gate_closed = 0;
	pthread_cond_broadcast(&g_th.cv);
	pthread_mutex_unlock(&g_th.mu);
	/* poll, with a deadline, until the server has let the connection go */
	for (int i = 0; i < 2000; i++) {
		struct timespec pause = {0, 10 * 1000 * 1000};

		on_loop(tl, tsrv_nconns_cb, t);
		if (t->n_conns == 0)
			break;
		nanosleep(&pause, NULL);
	}
	T_CHECK(t->n_conns == 0, "vanish: %zu connection(s) left", t->n_conns);
}

/* Drain: an idle session gets 421 at once; one waiting for its DATA answer gets that answer,
 * then 421; idle runs once both are gone. */
static void
test_drain(struct tloop *tl, struct tsrv *t)
{
	struct cl idle, busy;
	struct timespec ts;

	th_reset();
	if (cl_open(&idle, t->ports[0]) != 0 || cl_open(&busy, t->ports[1]) != 0) {
		t_fail("connect for drain");
		return;
	}
	cl_expect(&idle, NULL, 220, NULL, "drain idle banner");
	cl_expect(&idle, "EHLO mta.example\r\n", 250, NULL, "drain idle EHLO");
	cl_expect(&busy, NULL, 220, NULL, "drain busy banner");
	cl_expect(&busy, "LHLO mta.example\r\n", 250, NULL, "drain busy LHLO");
	cl_expect(&busy, "MAIL FROM:<s@a.example>\r\n", 250, NULL, "drain MAIL");
	cl_expect(&busy, "RCPT TO:<slow@b.example>\r\n", 250, NULL, "drain RCPT");
	cl_expect(&busy, "DATA\r\n", 354, NULL, "drain DATA");
	pthread_mutex_lock(&g_th.mu);
	g_th.gate_closed = 1;
	pthread_mutex_unlock(&g_th.mu);
	cl_send(&busy, msg_body);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 20;
	pthread_mutex_lock(&g_th.mu);
	while (!g_th.gate_entered && pthread_cond_timedwait(&g_th.cv, &g_th.mu, &ts) == 0)
		;
	pthread_mutex_unlock(&g_th.mu);
	on_loop(tl, tsrv_drain_cb, t);
	cl_expect(&idle, NULL, 421, "4.3.2", "drain: idle session");
	T_CHECK(cl_quiet(&busy), "drain: the busy session was answered before its handler");
	on_loop(tl, tsrv_nconns_cb, t);
	T_CHECK(t->n_conns >= 1, "drain: busy connection gone (%zu)", t->n_conns);
	pthread_mutex_lock(&g_th.mu);
	g_th.gate_closed = 0;
	pthread_cond_broadcast(&g_th.cv);
	pthread_mutex_unlock(&g_th.mu);
	cl_expect(&busy, NULL, 250, NULL, "drain: busy DATA answer");
	cl_expect(&busy, NULL, 421, "4.3.2", "drain: busy session after its answer");
	T_CHECK(tsrv_wait_idle(t), "drain: idle never called");
	cl_close(&idle);
	cl_close(&busy);
	T_CHECK(cl_open(&idle, t->ports[0]) != 0 || cl_reply(&idle) == -1,
		"drain: still accepting");
	cl_close(&idle);
}

static void
test_no_handler(struct tloop *tl, const struct tsrv *base)
{
	static struct tsrv t3;

	memcpy(&t3.conf, &base->conf, sizeof(t3.conf));
	t3.env = base->env;
	t3.env.conf = &t3.conf;
	memset(&t3.env.handler, 0, sizeof(t3.env.handler));
	on_loop(tl, tsrv_new_cb, &t3);
	T_CHECK(t3.rc == DIME_E_INVALID && t3.s == NULL, "no handler: got %d", t3.rc);
	T_CHECK(strstr(t3.why, "handler") != NULL, "no handler: why \"%s\"", t3.why);
	/* without smtp/lmtp listeners no handler is needed, and nothing is bound */
	t3.conf.listen[0].mode = DIME_DCONF_DMTP;
	t3.conf.listen[1].mode = DIME_DCONF_POLICY;
	on_loop(tl, tsrv_new_cb, &t3);
	T_CHECK(t3.rc == DIME_OK && t3.n_ports == 2 && t3.ports[0] == 0 && t3.ports[1] == 0,
		"no smtp listener: rc %d, ports %u %u", t3.rc, t3.ports[0], t3.ports[1]);
	if (t3.rc == DIME_OK)
		on_loop(tl, tsrv_free_cb, &t3);
}

int
main(void)
{
	static struct tsrv t;
	struct tloop tl = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	struct dime_pl_pool_conf pc = {.workers = 2};
	struct dime_pl_pool *pool = NULL;
	struct dime_tlsctx *tls = NULL;
	char why[512];

	t_init();
	dime_dlog_init("test_daemon_smtpd", 0, DIME_DLOG_WARNING);
	if (t_mkdtemp("smtpd") != 0)
		return T_SKIP;
	if (dime_dconf_load(&t.conf, NULL, why, sizeof(why)) != DIME_OK) {
		t_fail("dconf defaults: %s", why);
		return t_done("test_daemon_smtpd");
	}
	snprintf(t.conf.hostname, sizeof(t.conf.hostname), "gw.example.org");
	t.conf.n_listen = 2;
	strcpy(t.conf.listen[0].host, "127.0.0.1");
	t.conf.listen[0].port = 0;
	t.conf.listen[0].mode = DIME_DCONF_SMTP;
	strcpy(t.conf.listen[1].host, "127.0.0.1");
	t.conf.listen[1].port = 0;
	t.conf.listen[1].mode = DIME_DCONF_LMTP_IN;
	snprintf(t.conf.certs[0].cert, sizeof(t.conf.certs[0].cert), "%s", t_path("cert.pem"));
	snprintf(t.conf.certs[0].key, sizeof(t.conf.certs[0].key), "%s", t_path("key.pem"));
	t.conf.n_certs = 1;
	if (dime_tlsctx_selfsigned("gw.example.org", t.conf.certs[0].cert, t.conf.certs[0].key, why,
				   sizeof(why)) != DIME_OK ||
	    dime_tlsctx_new(&tls, &t.conf, why, sizeof(why)) != DIME_OK) {
		t_fail("TLS: %s", why);
		return t_done("test_daemon_smtpd");
	}
	if (dime_pl_pool_new(&pool, &pc) != DIME_OK) {
		t_fail("pool");
		return t_done("test_daemon_smtpd");
	}
	if (pthread_create(&tl.tid, NULL, tloop_main, &tl) != 0) {
		t_fail("loop thread");
		return t_done("test_daemon_smtpd");
	}
	pthread_mutex_lock(&tl.mu);
	while (!tl.ready)
		pthread_cond_wait(&tl.cv, &tl.mu);
	pthread_mutex_unlock(&tl.mu);
	if (tl.rc != DIME_OK) {
		t_fail("loop: %d", tl.rc);
		return t_done("test_daemon_smtpd");
	}
	pthread_mutex_init(&t.mu, NULL);
	pthread_cond_init(&t.cv, NULL);
	t.env.conf = &t.conf;
	t.env.loop = tl.l;
	t.env.pool = pool;
	t.env.tls = tls;
	t.env.handler.rcpt = th_rcpt;
	t.env.handler.message = th_message;
	t.env.handler.arg = &g_th;
	on_loop(&tl, tsrv_new_cb, &t);
	if (t.rc != DIME_OK || t.n_ports != 2 || t.ports[0] == 0 || t.ports[1] == 0) {
		t_fail("dime_smtpd_new: %d (%s), %zu ports", t.rc, t.why, t.n_ports);
	} else {
		test_starttls(&t);
		test_pipelined(&t);
		test_mixed(&t);
		test_lmtp(&t);
		test_data_waits(&t);
		test_noops(&t);
		test_bytewise(&t);
		test_timeout(&tl, &t);
		test_slowloris(&tl, &t);
		test_tls_slowloris(&tl, &t);
		test_max_conns(&tl, &t);
		test_no_handler(&tl, &t);
		test_vanish(&tl, &t);
		test_drain(&tl, &t);
		on_loop(&tl, tsrv_free_cb, &t);
	}
	dime_pl_pool_free(pool);
	dime_io_loop_stop(tl.l);
	pthread_mutex_lock(&tl.mu);
	tl.may_free = 1;
	pthread_cond_broadcast(&tl.cv);
	pthread_mutex_unlock(&tl.mu);
	pthread_join(tl.tid, NULL);
	dime_tlsctx_free(tls);
	t_rm_rf(t_path(""));
	return t_done("test_daemon_smtpd");
}

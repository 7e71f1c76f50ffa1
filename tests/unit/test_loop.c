/* io event loop: echo servers over loopback, back-pressure and the send cap, pause, idle
 * timeouts, posts from another thread, timers, closes from inside callbacks, resets, TLS both
 * ways, STARTTLS injection and a failed handshake. Every case runs on io_uring and on epoll;
 * io_uring is skipped with a notice when this kernel or sandbox refuses it. */

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "dime/loop.h"
#include "tlib.h"

static const char *t_be = "";
static SSL_CTX *t_srv_ctx, *t_cli_ctx; /* made by t_tls_setup */
static int t_guard_fired;

static void T_FAIL(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* t_fail with the backend's name in front. */
static void
T_FAIL(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	t_fail("[%s] %s", t_be, buf);
}

static void
t_guard(void *arg)
{
	t_guard_fired = 1;
	dime_io_loop_stop(arg);
}

/* Run l until a callback stops it, or fail after ms. */
static void
t_run(struct dime_io_loop *l, unsigned ms, const char *what)
{
	struct dime_io_timer *g = NULL;

	t_guard_fired = 0;
	if (dime_io_timer_add(l, &g, ms, t_guard, l) != DIME_OK)
		abort();
	if (dime_io_loop_run(l) != DIME_OK)
		T_FAIL("%s: loop_run failed", what);
	if (t_guard_fired)
		T_FAIL("%s: did not finish within %u ms", what, ms);
	else
		dime_io_timer_cancel(g);
}

static struct dime_io_loop *
t_loop(enum dime_io_backend be)
{
	struct dime_io_loop *l = NULL;

	if (dime_io_loop_new(&l, be) != DIME_OK) {
		fprintf(stderr, "FAIL: loop_new(%d)\n", (int)be);
		exit(1);
	}
	return l;
}

static int
t_connect(unsigned port, int nonblock)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("connect");
		exit(1);
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (nonblock)
		(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static double
t_secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint8_t
t_pat(size_t i)
{
	return (uint8_t)(i * 7u + (i >> 8) * 13u + 1u);
}

/* ---- a configurable server: echo, with back-pressure ---- */

struct srv;
struct sconn {
	struct srv *s;
	struct dime_io_conn *c;
	uint8_t *got; /* everything received (plaintext) */
	size_t got_len, got_cap;
	int tls_ok, tls_fail, closed, err, in_cb, timeouts;
	uint64_t timeout_at;
};

struct srv {
	struct dime_io_loop *l;
	struct dime_io_listener *ls;
	unsigned port;
	int echo;
	int no_keep; /* do not keep what was received (memory figures) */
	int pause_on_accept;
	unsigned timeout_ms;
	SSL_CTX *tls; /* start TLS at accept */
	int starttls; /* plain until "STARTTLS\r\n" */
	int close_in_data;
	int close_in_tls, close_in_drain;
	int close_listener_in_accept;
	size_t max_pending, limit_hits;
	int n_accepted, n_closed, stop_after_closed;
	struct sconn *last;
	struct dime_io_timer *t;
};

static void
t_append(uint8_t **b, size_t *len, size_t *cap, const uint8_t *p, size_t n)
{
	if (*len + n > *cap) {
		size_t c = (*len + n) * 2;

		if ((*b = realloc(*b, c)) == NULL)
			abort();
		*cap = c;
	}
	memcpy(*b + *len, p, n);
	*len += n;
}

static void
s_data(void *ctx, const uint8_t *p, size_t n)
{
	struct sconn *sc = ctx;
	struct srv *s = sc->s;

	sc->in_cb = 1;
	if (!s->no_keep)
		t_append(&sc->got, &sc->got_len, &sc->got_cap, p, n);
	if (s->close_in_data) {
		dime_io_conn_close(sc->c, 0);
		dime_io_conn_close(sc->c, 1); /* twice, and after: no effect */
		if (sc->closed)
			T_FAIL("on_close ran inside dime_io_conn_close");
	} else if (s->echo) {
		int rc = dime_io_conn_send(sc->c, p, n);
		size_t pend = dime_io_conn_pending(sc->c);

		if (rc == DIME_E_LIMIT)
			s->limit_hits++;
		else if (rc != DIME_OK)
			T_FAIL("echo send: got %d", rc);
		if (pend > s->max_pending)
			s->max_pending = pend;
		if (pend > DIME_IO_SEND_CAP / 4)
			dime_io_conn_pause(sc->c, 1); /* back-pressure: on_drain resumes */
	}
	sc->in_cb = 0;
}

static void
s_drain(void *ctx)
{
	struct sconn *sc = ctx;

	sc->in_cb = 1;
	dime_io_conn_pause(sc->c, 0);
	if (sc->s->close_in_drain)
		dime_io_conn_close(sc->c, 0);
	sc->in_cb = 0;
}

static void
s_tls(void *ctx, int ok)
{
	struct sconn *sc = ctx;

	sc->in_cb = 1;
	if (ok)
		sc->tls_ok++;
	else
		sc->tls_fail++;
	if (sc->s->close_in_tls)
		dime_io_conn_close(sc->c, 1);
	sc->in_cb = 0;
}

static void
s_timeout(void *ctx)
{
	struct sconn *sc = ctx;

	sc->timeouts++;
	sc->timeout_at = dime_io_loop_now_ms(sc->s->l);
	if (dime_io_conn_send(sc->c, "421 idle\r\n", 10) != DIME_OK)
		T_FAIL("send 421");
	dime_io_conn_close(sc->c, 1);
}

static void
s_close(void *ctx, int err)
{
	struct sconn *sc = ctx;
	struct srv *s = sc->s;

	if (sc->in_cb)
		T_FAIL("on_close inside another callback");
	if (sc->closed++)
		T_FAIL("on_close twice");
	sc->err = err;
	s->n_closed++;
	if (s->last != sc) {
		free(sc->got);
		free(sc);
	}
	if (s->stop_after_closed && s->n_closed == s->stop_after_closed)
		dime_io_loop_stop(s->l);
}

static const struct dime_io_conn_ops s_ops = {
    .on_data = s_data,
    .on_tls = s_tls,
    .on_timeout = s_timeout,
    .on_close = s_close,
    .on_drain = s_drain,
};

static void
s_accept(void *ctx, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
	struct srv *s = ctx;
	struct sconn *sc = calloc(1, sizeof(*sc));

	if (sc == NULL || peer_len == 0 || peer->sa_family == AF_UNSPEC)
		T_FAIL("accept: no peer address");
	if (sc == NULL)
		abort();
	sc->s = s;
	if (dime_io_conn_new(s->l, &sc->c, fd, &s_ops, sc) != DIME_OK) {
		T_FAIL("conn_new");
		close(fd);
		free(sc);
		return;
	}
	s->n_accepted++;
	if (s->last != NULL && s->last->closed) {
		free(s->last->got);
		free(s->last);
	}	      /* else its on_close frees it */
	s->last = sc; /* kept after close for the checks */
	if (s->pause_on_accept)
		dime_io_conn_pause(sc->c, 1);
	if (s->timeout_ms)
		dime_io_conn_set_timeout(sc->c, s->timeout_ms);
	if (s->tls != NULL && dime_io_conn_start_tls(sc->c, s->tls) != DIME_OK)
		T_FAIL("start_tls");
	if (s->close_listener_in_accept) {
		dime_io_listener_close(s->ls);
		s->ls = NULL;
	}
}

static void
srv_start(struct srv *s, struct dime_io_loop *l, const char *host)
{
	int fd;

	s->l = l;
	if ((fd = dime_io_tcp_listen(host, 0, &s->port)) < 0 || s->port == 0) {
		perror("dime_io_tcp_listen");
		exit(1);
	}
	if (dime_io_listen(l, &s->ls, fd, s_accept, s) != DIME_OK) {
		fprintf(stderr, "FAIL: dime_io_listen\n");
		exit(1);
	}
}

static void
srv_end(struct srv *s)
{
	dime_io_listener_close(s->ls);
	s->ls = NULL;
}

static void
srv_free_last(struct srv *s)
{
	if (s->last != NULL && s->last->closed) {
		free(s->last->got);
		free(s->last);
	}
	s->last = NULL;
}

/* ---- in-loop clients ---- */

struct cli {
	struct dime_io_loop *l;
	struct dime_io_conn *c;
	const uint8_t *out; /* to send, honouring the cap */
	size_t out_len, out_off;
	uint8_t *got;
	size_t got_len, got_cap, want;
	int closed, err, tls_ok, tls_fail, done, stop_on_done;
	int *n_done, n_total;	/* shared counter across clients */
	SSL_CTX *tls_after_220; /* STARTTLS client */
	int sent_hello;
};

static void
c_pump(struct cli *k)
{
	while (k->out_off < k->out_len) {
		size_t n = k->out_len - k->out_off;
		int rc;

		if (n > 65536)
			n = 65536;
		rc = dime_io_conn_send(k->c, k->out + k->out_off, n);
		if (rc == DIME_E_LIMIT)
			return; /* on_drain calls again */
		if (rc != DIME_OK) {
			T_FAIL("client send: %d", rc);
			return;
		}
		k->out_off += n;
	}
}

static void
c_finish(struct cli *k)
{
	if (k->done)
		return;
	k->done = 1;
	if (k->n_done != NULL && ++*k->n_done == k->n_total)
		dime_io_loop_stop(k->l);
	if (k->stop_on_done)
		dime_io_loop_stop(k->l);
}

static void
c_data(void *ctx, const uint8_t *p, size_t n)
{
	struct cli *k = ctx;

	t_append(&k->got, &k->got_len, &k->got_cap, p, n);
	if (k->tls_after_220 != NULL && k->got_len >= 8 && memcmp(k->got, "220 go\r\n", 8) == 0) {
		SSL_CTX *ctx2 = k->tls_after_220;

		k->tls_after_220 = NULL;
		k->got_len = 0;
		if (dime_io_conn_start_tls_client(k->c, ctx2, "localhost") != DIME_OK)
			T_FAIL("start_tls_client");
		if (dime_io_conn_send(k->c, "HELLO\r\n", 7) != DIME_OK)
			T_FAIL("send HELLO");
		return;
	}
	if (k->want && k->got_len >= k->want)
		c_finish(k);
}

static void
c_tls(void *ctx, int ok)
{
	struct cli *k = ctx;

	if (ok)
		k->tls_ok++;
	else
		k->tls_fail++;
}

static void
c_close(void *ctx, int err)
{
	struct cli *k = ctx;

	if (k->closed++)
		T_FAIL("client on_close twice");
	k->err = err;
	c_finish(k);
}

static void
c_drain(void *ctx)
{
	c_pump(ctx);
}

static const struct dime_io_conn_ops c_ops = {
    .on_data = c_data,
    .on_tls = c_tls,
    .on_close = c_close,
    .on_drain = c_drain,
};

static void
cli_open(struct cli *k, struct dime_io_loop *l, unsigned port)
{
	k->l = l;
	if (dime_io_conn_new(l, &k->c, t_connect(port, 1), &c_ops, k) != DIME_OK) {
		fprintf(stderr, "FAIL: client conn_new\n");
		exit(1);
	}
}

/* ---- cases ---- */

static void
t_echo_many(enum dime_io_backend be)
{
	enum { N = 64, LEN = 3000 };
	struct dime_io_loop *l = t_loop(be);
	struct srv s = {.echo = 1};
	struct cli *k = calloc(N, sizeof(*k));
	static uint8_t msg[N][LEN];
	int n_done = 0;

	srv_start(&s, l, "127.0.0.1");
	for (int i = 0; i < N; i++) {
		for (size_t j = 0; j < LEN; j++)
			msg[i][j] = t_pat(j + (size_t)i * 31);
		cli_open(&k[i], l, s.port);
		k[i].out = msg[i];
		k[i].out_len = LEN;
		k[i].want = LEN;
		k[i].n_done = &n_done;
		k[i].n_total = N;
		c_pump(&k[i]);
	}
	t_run(l, 10000, "echo many");
	for (int i = 0; i < N; i++) {
		if (k[i].got_len != LEN || memcmp(k[i].got, msg[i], LEN) != 0)
			T_FAIL("echo client %d: got %zu bytes, want %d, same bytes", i,
			       k[i].got_len, LEN);
		dime_io_conn_close(k[i].c, 0);
	}
	s.stop_after_closed = N;
	if (s.n_closed < N)
		t_run(l, 5000, "echo many: server sees every close");
	if (s.n_accepted != N || s.n_closed != N)
		T_FAIL("echo many: accepted %d closed %d, want %d", s.n_accepted, s.n_closed, N);
	for (int i = 0; i < N; i++)
		if (k[i].closed != 1 || k[i].err != 0)
			T_FAIL("client %d: closed %d err %d", i, k[i].closed, k[i].err);
	srv_end(&s);
	dime_io_loop_free(l);
	srv_free_last(&s);
	for (int i = 0; i < N; i++)
		free(k[i].got);
	free(k);
}

/* A blocking client in another thread: one byte per write, then read the echo back. */
struct bytewise {
	unsigned port;
	struct dime_io_loop *l;
	int ok;
};

static void
t_stop_cb(void *arg)
{
	dime_io_loop_stop(arg);
}

static void *
bytewise_main(void *arg)
{
	struct bytewise *b = arg;
	const char *line = "EHLO one.byte.at.a.time.example\r\n";
	size_t n = strlen(line), got = 0;
	char back[64];
	int fd = t_connect(b->port, 0);

	for (size_t i = 0; i < n; i++) {
		if (write(fd, line + i, 1) != 1)
			break;
		usleep(200);
	}
	while (got < n) {
		ssize_t r = read(fd, back + got, n - got);

		if (r <= 0)
			break;
		got += (size_t)r;
	}
	b->ok = got == n && memcmp(back, line, n) == 0;
	close(fd);
	if (dime_io_loop_post(b->l, t_stop_cb, b->l) != DIME_OK)
		abort();
	return NULL;
}

static void
t_bytewise(enum dime_io_backend be)
{
	struct dime_io_loop *l = t_loop(be);
	struct srv s = {.echo = 1};
	struct bytewise b;
	pthread_t th;

	srv_start(&s, l, "127.0.0.1");
	b.port = s.port;
	b.l = l;
	b.ok = 0;
	pthread_create(&th, NULL, bytewise_main, &b);
	t_run(l, 10000, "one byte at a time");
	pthread_join(th, NULL);
	if (!b.ok)
		T_FAIL("one byte at a time: echo differs");
	srv_end(&s);
	dime_io_loop_free(l);
	srv_free_last(&s);
}

static void
t_large(enum dime_io_backend be)
{
	size_t len = (size_t)8 << 20;
	uint8_t *big = malloc(len);
	struct dime_io_loop *l = t_loop(be);
	struct srv s = {.echo = 1};
	struct cli k = {0};
	double t0;

	for (size_t i = 0; i < len; i++)
		big[i] = t_pat(i);
	srv_start(&s, l, "127.0.0.1");
	cli_open(&k, l, s.port);
	k.out = big;
	k.out_len = len;
	k.want = len;
	k.stop_on_done = 1;
	t0 = t_secs();
	c_pump(&k);
	if (k.out_off >= len || dime_io_conn_pending(k.c) > DIME_IO_SEND_CAP)
		T_FAIL("large: queued %zu of %zu at once, pending %zu > cap %zu", k.out_off, len,
		       dime_io_conn_pending(k.c), (size_t)DIME_IO_SEND_CAP);
	t_run(l, 30000, "large transfer");
	printf("test_loop: [%s] echo of %zu MiB through one loop (both ends): %.0f MiB/s\n", t_be,
	       len >> 20, (double)(len >> 20) / (t_secs() - t0));
	if (k.got_len != len || memcmp(k.got, big, len) != 0)
		T_FAIL("large: got %zu bytes back, want %zu identical", k.got_len, len);
	if (s.max_pending > DIME_IO_SEND_CAP)
		T_FAIL("large: server queued %zu, over the cap", s.max_pending);
	if (s.limit_hits != 0)
		T_FAIL("large: back-pressure should have kept the echo under the cap");
	dime_io_conn_close(k.c, 0);
	srv_end(&s);
	dime_io_loop_free(l);
	srv_free_last(&s);
	free(k.got);
	free(big);
}

/* The cap itself: a peer that never reads, everything queued inside one callback. */
static void
t_send_cap(enum dime_io_backend be)
{
	struct dime_io_loop *l = t_loop(be);
	struct srv s = {0};
	struct cli k = {0};
	static uint8_t chunk[65536];
	size_t queued = 0;
	int rc = DIME_OK, i;

	srv_start(&s, l, "127.0.0.1");
	cli_open(&k, l, s.port);
	for (i = 0; i < 100 && (rc = dime_io_conn_send(k.c, chunk, sizeof(chunk))) == DIME_OK; i++)
		queued += sizeof(chunk);
	if (rc != DIME_E_LIMIT || queued != DIME_IO_SEND_CAP)
		T_FAIL("cap: got rc %d after %zu bytes, want DIME_E_LIMIT after %zu", rc, queued,
		       (size_t)DIME_IO_SEND_CAP);
	if (dime_io_conn_send(k.c, chunk, 1) != DIME_E_LIMIT)
		T_FAIL("cap: one more byte accepted");
	if (dime_io_conn_pending(k.c) != DIME_IO_SEND_CAP)
		T_FAIL("cap: pending %zu", dime_io_conn_pending(k.c));
	dime_io_conn_close(k.c, 0);
	srv_end(&s);
	dime_io_loop_free(l);
	srv_free_last(&s);
	if (k.closed != 1)
		T_FAIL("cap: loop_free must run on_close once (got %d)", k.closed);
	free(k.got);
}

struct pausecheck {
	struct srv *s;
	size_t seen_while_paused;
};

static void
t_pause_resume_cb(void *arg)
{
	struct pausecheck *pc = arg;

	pc->seen_while_paused = pc->s->last != NULL ? pc->s->last->got_len : (size_t)-1;
	if (pc->s->last != NULL)
		dime_io_conn_pause(pc->s->last->c, 0);
}

static void
t_pause(enum dime_io_backend be)
{
	struct dime_io_loop *l = t_loop(be);
	struct srv s = {.echo = 1, .pause_on_accept = 1};
	struct cli k = {0};
	struct pausecheck pc = {&s, 0};
	const uint8_t msg[] = "held while paused\r\n";

	srv_start(&s, l, "127.0.0.1");
	cli_open(&k, l, s.port);
	k.out = msg;
	k.out_len = sizeof(msg) - 1;
	k.want = k.out_len;
	k.stop_on_done = 1;
	c_pump(&k);
	if (dime_io_timer_add(l, NULL, 150, t_pause_resume_cb, &pc) != DIME_OK)
		abort();
	t_run(l, 5000, "pause/resume");
	if (pc.seen_while_paused != 0)
		T_FAIL("pause: %zu bytes delivered while paused", pc.seen_while_paused);
	if (k.got_len != k.out_len || memcmp(k.got, msg, k.out_len) != 0)
		T_FAIL("pause: after resume got %zu bytes, want %zu", k.got_len, k.out_len);
	srv_end(&s);
	dime_io_loop_free(l);
	srv_free_last(&s);
	free(k.got);
}

static void
t_idle(enum dime_io_backend be)
{
	struct dime_io_loop *l = t_loop(be);
	struct srv s = {.timeout_ms = 120, .stop_after_closed = 1};
	struct cli k = {0};
	uint64_t t0;

	srv_start(&s, l, "127.0.0.1");
	cli_open(&k, l, s.port);
	t0 = dime_io_loop_now_ms(l);
	t_run(l, 5000, "idle timeout");
	if (s.last == NULL || s.last->timeouts != 1)
		T_FAIL("idle: on_timeout ran %d times, want 1", s.last ? s.last->timeouts : -1);
	else if (s.last->timeout_at - t0 < 110)
		T_FAIL("idle: fired after %llu ms, want >= 120",
		       (unsigned long long)(s.last->timeout_at - t0));
	/* The flushed close delivered the reply before the FIN. */
	k.stop_on_done = 1;
	if (k.closed == 0)
		t_run(l, 2000, "idle: client sees close");
	if (k.got_len != 10 || memcmp(k.got, "421 idle\r\n", 10) != 0)
		T_FAIL("idle: client got %zu bytes, want the 421 line", k.got_len);
	srv_end(&s);
	dime_io_loop_free(l);
	srv_free_last(&s);
	free(k.got);
}

struct poster {
	struct dime_io_loop *l;
	unsigned next, n, bad;
};

static struct poster t_poster;

static void
t_post_seq(void *arg)
{
	unsigned seq = (unsigned)(uintptr_t)arg;

	if (seq != t_poster.next)
		t_poster.bad++;
	t_poster.next = seq + 1;
	if (t_poster.next == t_poster.n)
		dime_io_loop_stop(t_poster.l);
}

static void *
poster_main(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < t_poster.n; i++) {
		if (dime_io_loop_post(t_poster.l, t_post_seq, (void *)(uintptr_t)i) != DIME_OK)
			abort();
		if (i % 97 == 0)
			usleep(100);
	}
	return NULL;
}

static void
t_post(enum dime_io_backend be)
{
	struct dime_io_loop *l = t_loop(be);
	pthread_t th;

	memset(&t_poster, 0, sizeof(t_poster));
	t_poster.l = l;
	t_poster.n = 20000;
	pthread_create(&th, NULL, poster_main, NULL);
	t_run(l, 10000, "post");
	pthread_join(th, NULL);
	if (t_poster.next != t_poster.n || t_poster.bad != 0)
		T_FAIL("post: ran %u of %u, %u out of order", t_poster.next, t_poster.n,
		       t_poster.bad);
	dime_io_loop_free(l);
}

static char t_fired[16];
static size_t t_n_fired;

static struct dime_io_loop *t_tl;

static void
t_timer_cb2(void *arg)
{
	t_fired[t_n_fired++] = (char)(uintptr_t)arg;
	if (arg == (void *)(uintptr_t)'c')
		dime_io_loop_stop(t_tl);
}

static void
t_timers(enum dime_io_backend be)
{
	struct dime_io_loop *l = t_loop(be);
	struct dime_io_timer *x = NULL, *y = NULL;

	t_tl = l;
	t_n_fired = 0;
	memset(t_fired, 0, sizeof(t_fired));
	if (dime_io_timer_add(l, NULL, 60, t_timer_cb2, (void *)(uintptr_t)'c') != DIME_OK ||
	    dime_io_timer_add(l, NULL, 20, t_timer_cb2, (void *)(uintptr_t)'a') != DIME_OK ||
	    dime_io_timer_add(l, &x, 30, t_timer_cb2, (void *)(uintptr_t)'X') != DIME_OK ||
	    dime_io_timer_add(l, NULL, 40, t_timer_cb2, (void *)(uintptr_t)'b') != DIME_OK ||
	    dime_io_timer_add(l, &y, 500, t_timer_cb2, (void *)(uintptr_t)'Y') != DIME_OK)
		abort();
	dime_io_timer_cancel(x);
	t_run(l, 5000, "timers");
	if (strcmp(t_fired, "abc") != 0)
		T_FAIL("timers: fired \"%s\", want \"abc\"", t_fired);
	dime_io_timer_cancel(y);
	dime_io_loop_free(l);
}

/* Close from inside on_data (twice), and the listener from inside on_accept. */
static void
t_close_in_cb(enum dime_io_backend be)
{
	struct dime_io_loop *l = t_loop(be);
	struct srv s = {.close_in_data = 1, .close_listener_in_accept = 1, .stop_after_closed = 1};
	struct cli k = {0};
	const uint8_t msg[] = "QUIT\r\n";

	srv_start(&s, l, "127.0.0.1");
	cli_open(&k, l, s.port);
	k.out = msg;
	k.out_len = 6;
	c_pump(&k);
	t_run(l, 5000, "close in callback");
	if (s.last == NULL || s.last->closed != 1 || s.last->err != 0)
		T_FAIL("close in callback: closed %d err %d", s.last ? s.last->closed : -1,
		       s.last ? s.last->err : -1);
	if (s.ls != NULL)
		T_FAIL("listener not closed");
	k.stop_on_done = 1;
	if (!k.closed)
		t_run(l, 5000, "close in callback: client sees EOF");
	if (k.closed != 1 || k.err != 0)
		T_FAIL("close in callback: client closed %d err %d", k.closed, k.err);
	dime_io_loop_free(l);
	srv_free_last(&s);
	free(k.got);
}

/* Close from inside on_tls (flushed: the session's last bytes go) and from inside on_drain. */
static void
t_close_in_cb2(enum dime_io_backend be)
{
	for (int mode = 0; mode < 2; mode++) {
		struct dime_io_loop *l = t_loop(be);
		struct srv s = {.echo = 1, .stop_after_closed = 1};
		struct cli k = {0};
		const uint8_t msg[] = "ping\r\n";

		s.close_in_tls = mode == 0;
		s.close_in_drain = mode == 1;
		s.tls = mode == 0 ? t_srv_ctx : NULL;
		srv_start(&s, l, "127.0.0.1");
		cli_open(&k, l, s.port);
		if (mode == 0 && dime_io_conn_start_tls_client(k.c, t_cli_ctx, NULL) != DIME_OK)
			T_FAIL("start_tls_client");
		k.out = msg;
		k.out_len = 6;
		c_pump(&k);
		t_run(l, 5000, mode == 0 ? "close in on_tls" : "close in on_drain");
		if (s.last == NULL || s.last->closed != 1 || s.last->err != 0 ||
		    (mode == 0 && s.last->tls_ok != 1))
			T_FAIL("close in %s: closed %d err %d", mode == 0 ? "on_tls" : "on_drain",
			       s.last ? s.last->closed : -1, s.last ? s.last->err : -1);
		k.stop_on_done = 1;
		if (!k.closed)
			t_run(l, 5000, "close in callback: client sees the end");
		if (k.closed != 1 || k.err != 0 || (mode == 1 && k.got_len != 6))
			T_FAIL("close in %s: client closed %d err %d got %zu",
			       mode == 0 ? "on_tls" : "on_drain", k.closed, k.err, k.got_len);
		srv_end(&s);
		dime_io_loop_free(l);
		srv_free_last(&s);
		free(k.got);
	}
}

static void
t_reset(enum dime_io_backend be)
{
	struct dime_io_loop *l = t_loop(be);
	struct srv s = {.echo = 1, .stop_after_closed = 1};
	struct linger lg = {1, 0};
	int fd;

	srv_start(&s, l, "127.0.0.1");
	fd = t_connect(s.port, 0);
	if (write(fd, "x", 1) != 1)
		abort();
	if (dime_io_timer_add(l, NULL, 50, t_stop_cb, l) != DIME_OK)
		abort();
	if (dime_io_loop_run(l) != DIME_OK || s.n_accepted != 1)
		T_FAIL("reset: not accepted");
	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd); /* RST */
	t_run(l, 5000, "peer reset");
	if (s.last == NULL || s.last->closed != 1 ||
	    (s.last->err != ECONNRESET && s.last->err != EPIPE))
		T_FAIL("reset: on_close err %d, want ECONNRESET", s.last ? s.last->err : -1);
	srv_end(&s);
	dime_io_loop_free(l);
	srv_free_last(&s);
}

/* ---- TLS ---- */

static void
t_tls_setup(void)
{
	EVP_PKEY *pk = EVP_RSA_gen(2048);
	X509 *x = X509_new();
	X509_NAME *nm;

	if (pk == NULL || x == NULL)
		abort();
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pk);
	nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
				   -1, 0);
	X509_set_issuer_name(x, nm);
	if (X509_sign(x, pk, EVP_sha256()) == 0)
		abort();
	t_srv_ctx = SSL_CTX_new(TLS_server_method());
	t_cli_ctx = SSL_CTX_new(TLS_client_method());
	if (t_srv_ctx == NULL || t_cli_ctx == NULL || SSL_CTX_use_certificate(t_srv_ctx, x) != 1 ||
	    SSL_CTX_use_PrivateKey(t_srv_ctx, pk) != 1 ||
	    SSL_CTX_set_min_proto_version(t_srv_ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(t_srv_ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(t_srv_ctx, "ECDHE-RSA-AES256-GCM-SHA384") != 1 ||
	    SSL_CTX_set_min_proto_version(t_cli_ctx, TLS1_2_VERSION) != 1)
		abort();
	SSL_CTX_set_verify(t_cli_ctx, SSL_VERIFY_NONE, NULL);
	X509_free(x);
	EVP_PKEY_free(pk);
}

static void
t_tls(enum dime_io_backend be)
{
	size_t len = (size_t)3 << 20;
	uint8_t *big = malloc(len);
	struct dime_io_loop *l = t_loop(be);
	struct srv s = {.echo = 1, .tls = t_srv_ctx};
	struct cli k = {0};
	SSL *ssl;
	double t0;

	for (size_t i = 0; i < len; i++)
		big[i] = t_pat(i * 3);
	srv_start(&s, l, "127.0.0.1");
	cli_open(&k, l, s.port);
	if (dime_io_conn_start_tls_client(k.c, t_cli_ctx, "localhost") != DIME_OK)
		T_FAIL("start_tls_client");
	if (dime_io_conn_start_tls_client(k.c, t_cli_ctx, "localhost") != DIME_E_INVALID)
		T_FAIL("second start_tls: want DIME_E_INVALID");
	k.out = big; /* queued during the handshake, then encrypted */
	k.out_len = len;
	k.want = len;
	k.stop_on_done = 1;
	t0 = t_secs();
	c_pump(&k);
	t_run(l, 30000, "TLS echo");
	printf("test_loop: [%s] TLS echo of %zu MiB (handshake included, both ends): %.0f MiB/s\n",
	       t_be, len >> 20, (double)(len >> 20) / (t_secs() - t0));
	if (k.tls_ok != 1 || s.last == NULL || s.last->tls_ok != 1)
		T_FAIL("TLS: handshake client %d server %d", k.tls_ok,
		       s.last ? s.last->tls_ok : -1);
	if (k.got_len != len || memcmp(k.got, big, len) != 0)
		T_FAIL("TLS: got %zu bytes back, want %zu identical", k.got_len, len);
	ssl = dime_io_conn_ssl(k.c);
	if (ssl == NULL || strcmp(SSL_get_cipher_name(ssl), "ECDHE-RSA-AES256-GCM-SHA384") != 0 ||
	    SSL_version(ssl) != TLS1_2_VERSION)
		T_FAIL("TLS: cipher %s version %x", ssl ? SSL_get_cipher_name(ssl) : "none",
		       ssl ? (unsigned)SSL_version(ssl) : 0u);
	/* A flushed close sends close_notify: the server sees an orderly end. */
	dime_io_conn_close(k.c, 1);
	s.stop_after_closed = 1;
	t_run(l, 5000, "TLS close");
	if (s.last == NULL || s.last->closed != 1 || s.last->err != 0)
		T_FAIL("TLS close: server closed %d err %d", s.last ? s.last->closed : -1,
		       s.last ? s.last->err : -1);
	srv_end(&s);
	dime_io_loop_free(l);
	srv_free_last(&s);
	free(k.got);
	free(big);
}

/* STARTTLS with injected plaintext: the client sends "STARTTLS\r\n" and, before the server's
 * go-ahead, "EVIL\r\n". The server must not treat it as TLS nor deliver it after TLS. */
struct st_srv {
	struct srv s;
	struct sconn *sc;
	size_t tls_from; /* got_len when TLS started */
};

static struct st_srv t_st;

static void
st_goahead(void *arg)
{
	struct sconn *sc = arg;

	t_st.tls_from = sc->got_len;
	if (dime_io_conn_send(sc->c, "220 go\r\n", 8) != DIME_OK ||
	    dime_io_conn_start_tls(sc->c, t_srv_ctx) != DIME_OK)
		T_FAIL("STARTTLS: go-ahead");
	dime_io_conn_pause(sc->c, 0);
}

static void
st_data(void *ctx, const uint8_t *p, size_t n)
{
	struct sconn *sc = ctx;

	t_append(&sc->got, &sc->got_len, &sc->got_cap, p, n);
	if (dime_io_conn_ssl(sc->c) == NULL && sc->got_len >= 10 &&
	    memcmp(sc->got, "STARTTLS\r\n", 10) == 0 && t_st.sc == NULL) {
		/* Answer later, paused: the injected bytes arrive meanwhile. */
		t_st.sc = sc;
		dime_io_conn_pause(sc->c, 1);
		if (dime_io_timer_add(sc->s->l, NULL, 100, st_goahead, sc) != DIME_OK)
			abort();
	}
	if (dime_io_conn_ssl(sc->c) != NULL && sc->got_len >= t_st.tls_from + 7)
		dime_io_loop_stop(sc->s->l);
}

static const struct dime_io_conn_ops st_ops = {
    .on_data = st_data,
    .on_tls = s_tls,
    .on_close = s_close,
};

static void
st_accept(void *ctx, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
	struct srv *s = ctx;
	struct sconn *sc = calloc(1, sizeof(*sc));

	(void)peer;
	(void)peer_len;
	sc->s = s;
	if (dime_io_conn_new(s->l, &sc->c, fd, &st_ops, sc) != DIME_OK)
		abort();
	s->last = sc;
}

static void
st_inject(void *arg)
{
	struct cli *k = arg;

	if (dime_io_conn_send(k->c, "EVIL\r\n", 6) != DIME_OK)
		T_FAIL("inject");
}

static void
t_starttls(enum dime_io_backend be)
{
	struct dime_io_loop *l = t_loop(be);
	struct cli k = {0};
	int fd;

	memset(&t_st, 0, sizeof(t_st));
	t_st.s.l = l;
	if ((fd = dime_io_tcp_listen("127.0.0.1", 0, &t_st.s.port)) < 0 ||
	    dime_io_listen(l, &t_st.s.ls, fd, st_accept, &t_st.s) != DIME_OK)
		abort();
	cli_open(&k, l, t_st.s.port);
	k.tls_after_220 = t_cli_ctx;
	if (dime_io_conn_send(k.c, "STARTTLS\r\n", 10) != DIME_OK)
		abort();
	if (dime_io_timer_add(l, NULL, 30, st_inject, &k) != DIME_OK)
		abort();
	t_run(l, 5000, "STARTTLS injection");
	if (t_st.sc == NULL || t_st.sc->tls_ok != 1 || t_st.sc->tls_fail != 0 || k.tls_ok != 1)
		T_FAIL("STARTTLS: handshake server ok %d fail %d, client %d",
		       t_st.sc ? t_st.sc->tls_ok : -1, t_st.sc ? t_st.sc->tls_fail : -1, k.tls_ok);
	else if (t_st.sc->got_len != t_st.tls_from + 7 ||
		 memcmp(t_st.sc->got + t_st.tls_from, "HELLO\r\n", 7) != 0 || t_st.tls_from != 10)
		T_FAIL("STARTTLS: server got %zu bytes (TLS from %zu), want only HELLO after",
		       t_st.sc->got_len, t_st.tls_from);
	dime_io_listener_close(t_st.s.ls);
	dime_io_loop_free(l);
	if (t_st.sc != NULL) {
		free(t_st.sc->got);
		free(t_st.sc);
	}
	free(k.got);
}

static void
t_tls_garbage(enum dime_io_backend be)
{
	struct dime_io_loop *l = t_loop(be);
	struct srv s = {.tls = t_srv_ctx, .stop_after_closed = 1};
	struct cli k = {0};
	const uint8_t junk[] = "GET / HTTP/1.0\r\nHost: not-tls\r\n\r\n";

	srv_start(&s, l, "127.0.0.1");
	cli_open(&k, l, s.port);
	k.out = junk;
	k.out_len = sizeof(junk) - 1;
	c_pump(&k);
	t_run(l, 5000, "TLS garbage");
	if (s.last == NULL || s.last->tls_fail != 1 || s.last->tls_ok != 0 || s.last->closed != 1 ||
	    s.last->err != EPROTO)
		T_FAIL("TLS garbage: on_tls(0) %d, closed %d err %d (want 1, 1, EPROTO)",
		       s.last ? s.last->tls_fail : -1, s.last ? s.last->closed : -1,
		       s.last ? s.last->err : -1);
	srv_end(&s);
	dime_io_loop_free(l);
	srv_free_last(&s);
	free(k.got);
}

static void
t_ipv6(enum dime_io_backend be)
{
	struct dime_io_loop *l;
	struct srv s = {.echo = 1};
	struct sockaddr_in6 sa;
	unsigned port = 0;
	char back[4];
	int fd = dime_io_tcp_listen("::1", 0, &port), cfd;

	if (fd < 0) {
		printf("test_loop: [%s] no IPv6 loopback here (%s): IPv6 case skipped\n", t_be,
		       strerror(errno));
		return;
	}
	l = t_loop(be);
	s.l = l;
	s.port = port;
	if (port == 0 || dime_io_listen(l, &s.ls, fd, s_accept, &s) != DIME_OK)
		T_FAIL("IPv6 listen: port %u", port);
	memset(&sa, 0, sizeof(sa));
	sa.sin6_family = AF_INET6;
	sa.sin6_port = htons((uint16_t)port);
	sa.sin6_addr = in6addr_loopback;
	cfd = socket(AF_INET6, SOCK_STREAM, 0);
	if (connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || write(cfd, "v6\n", 3) != 3)
		T_FAIL("IPv6 connect");
	shutdown(cfd, SHUT_WR);
	s.stop_after_closed = 1;
	t_run(l, 5000, "IPv6");
	if (read(cfd, back, 3) != 3 || memcmp(back, "v6\n", 3) != 0)
		T_FAIL("IPv6 echo");
	close(cfd);
	srv_end(&s);
	dime_io_loop_free(l);
	srv_free_last(&s);
}

/* Heap bytes held per idle connection: plain, and TLS after a handshake and 64 KiB each way.
 * Measured with mallinfo2 (not under ASan, whose allocator it does not see). */
static size_t
t_heap(void)
{
	/* The unit tests link jemalloc through dime_pipeline when it is installed: ask it. */
	typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
	mallctl_fn mallctl = (mallctl_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "mallctl");

	if (mallctl != NULL) {
		uint64_t epoch = 1;
		size_t allocated = 0, len = sizeof(allocated), elen = sizeof(epoch);

		if (mallctl("epoch", &epoch, &elen, &epoch, elen) == 0 &&
		    mallctl("stats.allocated", &allocated, &len, NULL, 0) == 0)
			return allocated;
	}
	return mallinfo2().uordblks;
}

static size_t t_mem_plain, t_mem_tls;

static void
t_memory(enum dime_io_backend be)
{
	enum { N = 100 };
	static uint8_t blob[65536];
	struct dime_io_loop *l = t_loop(be);
	struct srv s = {.echo = 1, .no_keep = 1, .tls = t_srv_ctx};
	struct dime_io_conn *pc[N];
	struct cli *k = calloc(N, sizeof(*k));
	size_t h0, h1;
	int n_done = 0, sv[2];

	/* Plain: one side of N socket pairs. */
	h0 = t_heap();
	for (int i = 0; i < N; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0 ||
		    dime_io_conn_new(l, &pc[i], sv[0], &c_ops, &k[i]) != DIME_OK)
			abort();
		k[i].want = 1u << 30;
		close(sv[1]);
	}
	h1 = t_heap();
	t_mem_plain = (h1 - h0) / N;
	for (int i = 0; i < N; i++)
		dime_io_conn_close(pc[i], 0);
	if (dime_io_timer_add(l, NULL, 20, t_stop_cb, l) != DIME_OK)
		abort();
	t_run(l, 2000, "memory: plain");
	memset(k, 0, N * sizeof(*k));

	/* TLS: N clients and N server connections on this loop, measured together. */
	srv_start(&s, l, "127.0.0.1");
	h0 = t_heap();
	for (int i = 0; i < N; i++) {
		cli_open(&k[i], l, s.port);
		if (dime_io_conn_start_tls_client(k[i].c, t_cli_ctx, "localhost") != DIME_OK)
			abort();
		k[i].out = blob;
		k[i].out_len = sizeof(blob);
		k[i].want = k[i].out_len;
		k[i].n_done = &n_done;
		k[i].n_total = N;
		c_pump(&k[i]);
	}
	t_run(l, 30000, "memory: TLS");
	for (int i = 0; i < N; i++) {
		free(k[i].got); /* the test's own buffers are not the loop's */
		k[i].got = NULL;
		k[i].got_cap = 0;
	}
	h1 = t_heap();
	/* The test's struct sconn per server connection is in the count: under 100 bytes. */

	t_mem_tls = (h1 - h0) / (2 * N);
	if (s.n_accepted != N || n_done != N)
		T_FAIL("memory: %d accepted, %d done, want %d", s.n_accepted, n_done, N);
	for (int i = 0; i < N; i++)
		dime_io_conn_close(k[i].c, 0);
	srv_end(&s);
	dime_io_loop_free(l);
	srv_free_last(&s);
	free(k);
	if (t_mem_plain == 0) { /* a sanitizer's allocator: neither jemalloc nor glibc's counts */
		printf("test_loop: [%s] heap per idle connection: not measurable here\n", t_be);
		return;
	}
	printf("test_loop: [%s] heap per idle connection: plain %zu bytes, TLS %zu bytes\n", t_be,
	       t_mem_plain, t_mem_tls);
#if !defined(__SANITIZE_ADDRESS__)
	if (t_mem_plain > 1024 || t_mem_tls > 48 * 1024)
		T_FAIL("memory per idle connection: plain %zu (max 1024), TLS %zu (max 49152)",
		       t_mem_plain, t_mem_tls);
#endif
}

/* AUTO falls back to epoll when io_uring is refused (seccomp here; kernel.io_uring_disabled=2
 * gives the same EPERM), and DIME_IO=uring then fails cleanly. In a child: the filter stays. */
static void
t_auto_fallback(void)
{
	struct sock_filter f[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {(unsigned short)(sizeof(f) / sizeof(f[0])), f};
	int st = 0;
	pid_t pid = fork();

	if (pid == 0) {
		struct dime_io_loop *l = NULL;
		int code = 0;

		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
			_exit(77);
		if (dime_io_loop_new(&l, DIME_IO_AUTO) != DIME_OK ||
		    strcmp(dime_io_loop_backend(l), "epoll") != 0)
			code |= 1;
		dime_io_loop_free(l);
		l = NULL;
		if (dime_io_loop_new(&l, DIME_IO_URING) != DIME_E_IO || l != NULL)
			code |= 2;
		_exit(code);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) {
		t_fail("auto fallback: child failed");
		return;
	}
	if (WEXITSTATUS(st) == 77)
		printf("test_loop: seccomp not available here: fallback case skipped\n");
	else if (WEXITSTATUS(st) != 0)
		t_fail("io_uring refused by seccomp: AUTO %s, URING %s",
		       WEXITSTATUS(st) & 1 ? "did not fall back to epoll" : "ok",
		       WEXITSTATUS(st) & 2 ? "did not fail with DIME_E_IO" : "ok");
}

static void
t_backend_env(void)
{
	struct dime_io_loop *l = NULL;

	setenv("DIME_IO", "kqueue", 1);
	if (dime_io_loop_new(&l, DIME_IO_AUTO) != DIME_E_INVALID || l != NULL)
		t_fail("DIME_IO=kqueue: want DIME_E_INVALID");
	setenv("DIME_IO", "epoll", 1);
	if (dime_io_loop_new(&l, DIME_IO_AUTO) != DIME_OK ||
	    strcmp(dime_io_loop_backend(l), "epoll") != 0)
		t_fail("DIME_IO=epoll: got %s", l ? dime_io_loop_backend(l) : "nothing");
	dime_io_loop_free(l);
	unsetenv("DIME_IO");
	dime_io_loop_free(NULL);
}

int
main(void)
{
	/* io_uring twice: multishot accept/recv, then the single-shot path of older kernels. */
	static const enum dime_io_backend bes[] = {DIME_IO_URING, DIME_IO_URING, DIME_IO_EPOLL};

	signal(SIGPIPE, SIG_IGN);
	t_tls_setup();
	t_backend_env();
	t_auto_fallback();
	for (size_t i = 0; i < sizeof(bes) / sizeof(bes[0]); i++) {
		struct dime_io_loop *l = NULL;

		if (i == 1)
			setenv("DIME_IO_URING_SINGLESHOT", "1", 1);
		else
			unsetenv("DIME_IO_URING_SINGLESHOT");
		if (dime_io_loop_new(&l, bes[i]) != DIME_OK) {
			printf("test_loop: io_uring cannot be set up here: its half is skipped\n");
			continue;
		}
		t_be = i == 1 ? "uring-singleshot" : dime_io_loop_backend(l);
		dime_io_loop_free(l);
		t_echo_many(bes[i]);
		t_bytewise(bes[i]);
		t_large(bes[i]);
		t_send_cap(bes[i]);
		t_pause(bes[i]);
		t_idle(bes[i]);
		t_post(bes[i]);
		t_timers(bes[i]);
		t_close_in_cb(bes[i]);
		t_close_in_cb2(bes[i]);
		t_reset(bes[i]);
		t_tls(bes[i]);
		t_starttls(bes[i]);
		t_tls_garbage(bes[i]);
		t_ipv6(bes[i]);
		t_memory(bes[i]);
		printf("test_loop: %s backend done\n", t_be);
	}
	SSL_CTX_free(t_srv_ctx);
	SSL_CTX_free(t_cli_ctx);
	return t_done("test_loop");
}

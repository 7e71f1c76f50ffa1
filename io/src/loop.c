/* The event loop's core: connections (receive path, send queue, pause, idle timeout, deferred
 * close), listeners, a timer heap and work posted from other threads. The backends
 * (loop_uring.c, loop_epoll.c) move bytes; TLS lives in conn_tls.c. Nothing here knows DIME. */

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "loop_int.h"

#define IO_CHUNK_MIN 4096u

/* ---- time and timers ---- */

static uint64_t
loop_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
io_loop_clock(struct dime_io_loop *l)
{
	l->now_ms = loop_clock_ms();
}

uint64_t
dime_io_loop_now_ms(const struct dime_io_loop *l)
{
	return l->now_ms;
}

static int
timer_before(const struct dime_io_timer *a, const struct dime_io_timer *b)
{
	return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void
heap_set(struct dime_io_loop *l, size_t i, struct dime_io_timer *t)
{
	l->heap[i] = t;
	t->idx = i;
}

static void
heap_up(struct dime_io_loop *l, size_t i)
{
	struct dime_io_timer *t = l->heap[i];

	while (i > 0 && timer_before(t, l->heap[(i - 1) / 2])) {
		heap_set(l, i, l->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(l, i, t);
}

static void
heap_down(struct dime_io_loop *l, size_t i)
{
	struct dime_io_timer *t = l->heap[i];

	for (;;) {
		size_t k = 2 * i + 1;

		if (k >= l->n_heap)
			break;
		if (k + 1 < l->n_heap && timer_before(l->heap[k + 1], l->heap[k]))
			k++;
		if (!timer_before(l->heap[k], t))
			break;
		heap_set(l, i, l->heap[k]);
		i = k;
	}
	heap_set(l, i, t);
}

int
io_timer_arm(struct dime_io_timer *t, unsigned ms)
{
	struct dime_io_loop *l = t->l;

	if (t->idx != IO_TIMER_OFF)
		io_timer_disarm(t);
	if (l->n_heap == l->heap_cap) {
		size_t cap = l->heap_cap ? l->heap_cap * 2 : 64;
		struct dime_io_timer **h = realloc(l->heap, cap * sizeof(*h));

		if (h == NULL)
			return DIME_E_NOMEM;
		l->heap = h;
		l->heap_cap = cap;
	}
	t->when = l->now_ms + ms;
	t->seq = l->timer_seq++;
	l->heap[l->n_heap] = t;
	t->idx = l->n_heap++;
	heap_up(l, t->idx);
	return DIME_OK;
}

void
io_timer_disarm(struct dime_io_timer *t)
{
	struct dime_io_loop *l = t->l;
	struct dime_io_timer *last;
	size_t i = t->idx;

	if (i == IO_TIMER_OFF)
		return;
	t->idx = IO_TIMER_OFF;
	l->n_heap--;
	if (i == l->n_heap)
		return;
	last = l->heap[l->n_heap];
	heap_set(l, i, last);
	heap_down(l, i);
	heap_up(l, last->idx);
}

static void
loop_timers(struct dime_io_loop *l)
{
	/* Only timers armed before this pass run now: a callback adding a 0 ms timer must not
	 * keep the loop here forever. */
	uint64_t seq_end = l->timer_seq;

	while (l->n_heap > 0 && l->heap[0]->when <= l->now_ms && l->heap[0]->seq < seq_end) {
		struct dime_io_timer *t = l->heap[0];
		void (*fn)(void *) = t->fn;
		void *arg = t->arg;

		io_timer_disarm(t);
		if (t->owned)
			free(t);
		fn(arg);
	}
}

int
dime_io_timer_add(struct dime_io_loop *l, struct dime_io_timer **out, unsigned ms,
		  void (*fn)(void *arg), void *arg)
{
	struct dime_io_timer *t;

	if (out != NULL)
		*out = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return DIME_E_NOMEM;
	t->l = l;
	t->idx = IO_TIMER_OFF;
	t->fn = fn;
	t->arg = arg;
	t->owned = 1;
	if (io_timer_arm(t, ms) != DIME_OK) {
		free(t);
		return DIME_E_NOMEM;
	}
	if (out != NULL)
		*out = t;
	return DIME_OK;
}

void
dime_io_timer_cancel(struct dime_io_timer *t)
{
	if (t == NULL)
		return;
	DIME_ASSERT(t->owned && t->idx != IO_TIMER_OFF);
	io_timer_disarm(t);
	free(t);
}

static void
timer_embed(struct dime_io_timer *t, struct dime_io_loop *l, void (*fn)(void *), void *arg)
{
	memset(t, 0, sizeof(*t));
	t->l = l;
	t->idx = IO_TIMER_OFF;
	t->fn = fn;
	t->arg = arg;
}

/* ---- send queues ---- */

int
io_queue_put(struct io_queue *q, const void *p, size_t n)
{
	const uint8_t *b = p;

	if (q->tail != NULL && q->tail->cap > q->tail->len) {
		size_t k = q->tail->cap - q->tail->len;

		if (k > n)
			k = n;
		memcpy(q->tail->data + q->tail->len, b, k);
		q->tail->len += k;
		q->len += k;
		b += k;
		n -= k;
	}
	if (n > 0) {
		size_t cap = n > IO_CHUNK_MIN ? n : IO_CHUNK_MIN;
		struct io_chunk *ch = malloc(sizeof(*ch) + cap);

		if (ch == NULL)
			return DIME_E_NOMEM;
		ch->next = NULL;
		ch->len = n;
		ch->off = 0;
		ch->cap = cap;
		memcpy(ch->data, b, n);
		if (q->tail != NULL)
			q->tail->next = ch;
		else
			q->head = ch;
		q->tail = ch;
		q->len += n;
	}
	return DIME_OK;
}

void
io_queue_clear(struct io_queue *q)
{
	struct io_chunk *ch, *next;

	for (ch = q->head; ch != NULL; ch = next) {
		next = ch->next;
		free(ch);
	}
	memset(q, 0, sizeof(*q));
}

/* ---- connections: core paths the backends call ---- */

void
io_conn_kick(struct dime_io_conn *c)
{
	struct dime_io_loop *l = c->l;

	if (c->queued)
		return;
	c->queued = 1;
	c->wnext = NULL;
	*l->work_tail = c;
	l->work_tail = &c->wnext;
}

void
io_conn_fail(struct dime_io_conn *c, int err)
{
	if (!c->dead) {
		c->dead = 1;
		c->err = err;
	}
	io_conn_kick(c);
}

void
io_conn_eof(struct dime_io_conn *c)
{
	/* The peer will send no more; what we queued for it still goes (nothing lost), bounded
	 * by the linger. */
	if (c->dead || c->closing)
		return;
	if (c->sq.len == 0 && c->pt.len == 0 && !c->send_inflight) {
		io_conn_fail(c, 0);
		return;
	}
	c->closing = 1;
	if (io_timer_arm(&c->linger, DIME_IO_LINGER_MS) != DIME_OK)
		io_conn_fail(c, 0);
	io_conn_kick(c);
}

int
io_conn_can_recv(const struct dime_io_conn *c)
{
	return !c->dead && !c->released && !c->closing && !c->paused && !c->sync;
}

static void
conn_deliver(struct dime_io_conn *c, const uint8_t *p, size_t n)
{
	if (c->ops->on_data != NULL)
		c->ops->on_data(c->ctx, p, n);
}

static void
conn_touch(struct dime_io_conn *c)
{
	if (c->timeout_ms == 0)
		return;
	c->idle_deadline = c->l->now_ms + c->timeout_ms;
	/* Lazy re-arm: the armed timer checks idle_deadline when it fires. */
	if (c->idle.idx == IO_TIMER_OFF && io_timer_arm(&c->idle, c->timeout_ms) != DIME_OK)
		io_conn_fail(c, ENOMEM);
}

void
io_conn_rx(struct dime_io_conn *c, const uint8_t *p, size_t n)
{
	/* Closing, dead, or discarding before STARTTLS: the bytes go nowhere. */
	if (c->dead || c->released || c->closing || c->sync || n == 0)
		return;
	c->rx_any = 1;
	conn_touch(c);
	if (c->ssl != NULL) {
		io_tls_rx(c, p, n);
		return;
	}
	if (c->paused || c->stash_off < c->stash_len) {
		/* io_uring: bytes that arrive before the cancelled receive ends (up to the
		 * buffer ring's worth: the kernel fills buffers while we look elsewhere). */
		if (c->stash_off > 0 && n > c->stash_cap - c->stash_len) { /* compact when full */
			memmove(c->stash, c->stash + c->stash_off, c->stash_len - c->stash_off);
			c->stash_len -= c->stash_off;
			c->stash_off = 0;
		}
		if (n > c->stash_cap - c->stash_len) {
			size_t cap = 2 * (c->stash_len + n);
			uint8_t *s = realloc(c->stash, cap);

			if (s == NULL) {
				io_conn_fail(c, ENOMEM);
				return;
			}
			c->stash = s;
			c->stash_cap = cap;
		}
		memcpy(c->stash + c->stash_len, p, n);
		c->stash_len += n;
		if (!c->paused)
			io_conn_kick(c);
		return;
	}
	conn_deliver(c, p, n);
}

void
io_conn_sent(struct dime_io_conn *c, size_t n)
{
	struct io_queue *q = &c->sq;

	DIME_ASSERT(n <= q->len);
	q->len -= n;
	while (n > 0 || (q->head != NULL && q->head->off == q->head->len)) {
		struct io_chunk *h = q->head;
		size_t k = h->len - h->off;

		if (k > n)
			k = n;
		h->off += k;
		n -= k;
		if (h->off == h->len) {
			q->head = h->next;
			if (q->head == NULL)
				q->tail = NULL;
			free(h);
			if (q->head == NULL)
				break;
		}
	}
	io_conn_kick(c);
}

static void
conn_free(struct dime_io_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	io_tls_free(c);
	io_queue_clear(&c->sq);
	io_queue_clear(&c->pt);
	free(c->stash);
	free(c);
}

static void
conn_work(struct dime_io_conn *c)
{
	struct dime_io_loop *l = c->l;

	/* Held bytes go in pieces, so a receiver that pauses again is honoured at once. */
	while (!c->dead && !c->paused && !c->closing && c->stash_off < c->stash_len) {
		size_t n = c->stash_len - c->stash_off;
		const uint8_t *p = c->stash + c->stash_off;

		if (n > IO_RXBUF_SIZE)
			n = IO_RXBUF_SIZE;
		c->stash_off += n;
		conn_deliver(c, p, n);
	}
	if (c->stash != NULL && c->stash_off == c->stash_len) {
		free(c->stash);
		c->stash = NULL;
		c->stash_off = c->stash_len = c->stash_cap = 0;
	}
	if (c->sync && !c->dead && !c->released)
		l->be->conn_update(c); /* STARTTLS: the discard may end now */
	if (!c->dead && c->ssl != NULL && !c->sync && !c->closing)
		io_tls_progress(c);
	if (!c->dead && c->closing && c->sq.len == 0 && c->pt.len == 0 && !c->send_inflight)
		io_conn_fail(c, 0);
	if (c->dead) {
		if (!c->reported) {
			c->reported = 1;
			io_timer_disarm(&c->idle);
			io_timer_disarm(&c->linger);
			if (c->ops->on_close != NULL)
				c->ops->on_close(c->ctx, c->err);
		}
		if (!c->released) {
			c->released = 1;
			if (c->prev != NULL)
				c->prev->next = c->next;
			else
				l->conns = c->next;
			if (c->next != NULL)
				c->next->prev = c->prev;
			c->next = l->dead_conns;
			c->prev = NULL;
			l->dead_conns = c;
			l->be->conn_release(c);
		}
		return;
	}
	l->be->conn_update(c);
	if (!c->dead && c->want_drain && c->sq.len == 0 && c->pt.len == 0 && !c->send_inflight &&
	    !c->closing) {
		c->want_drain = 0;
		if (c->ops->on_drain != NULL)
			c->ops->on_drain(c->ctx);
	}
}

static void
loop_work(struct dime_io_loop *l)
{
	struct dime_io_conn *c, **pc;
	struct dime_io_listener *ls, **pl;

	while ((c = l->work) != NULL) {
		l->work = c->wnext;
		if (l->work == NULL)
			l->work_tail = &l->work;
		c->queued = 0;
		conn_work(c);
	}
	for (pc = &l->dead_conns; (c = *pc) != NULL;) {
		if (c->n_inflight == 0 && !c->queued) {
			*pc = c->next;
			conn_free(c);
		} else {
			pc = &c->next;
		}
	}
	for (pl = &l->dead_listeners; (ls = *pl) != NULL;) {
		if (ls->n_inflight == 0) {
			*pl = ls->next;
			if (ls->fd >= 0)
				close(ls->fd);
			free(ls);
		} else {
			pl = &ls->next;
		}
	}
}

static void
conn_idle_fire(void *arg)
{
	struct dime_io_conn *c = arg;

	if (c->dead || c->timeout_ms == 0)
		return;
	if (c->l->now_ms < c->idle_deadline) {
		if (io_timer_arm(&c->idle, (unsigned)(c->idle_deadline - c->l->now_ms)) != DIME_OK)
			io_conn_fail(c, ENOMEM);
		return;
	}
	if (c->ops->on_timeout != NULL)
		c->ops->on_timeout(c->ctx);
}

static void
conn_linger_fire(void *arg)
{
	struct dime_io_conn *c = arg;

	/* The peer did not take the queued bytes in time. */
	io_conn_fail(c, c->sq.len > 0 || c->pt.len > 0 ? ETIMEDOUT : 0);
}

int
dime_io_conn_new(struct dime_io_loop *l, struct dime_io_conn **out, int fd,
		 const struct dime_io_conn_ops *ops, void *ctx)
{
	struct dime_io_conn *c;
	int one = 1;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return DIME_E_NOMEM;
	c->kind = IO_KIND_CONN;
	c->l = l;
	c->fd = fd;
	c->ops = ops;
	c->ctx = ctx;
	timer_embed(&c->idle, l, conn_idle_fire, c);
	timer_embed(&c->linger, l, conn_linger_fire, c);
	if (l->be->conn_add(c) != DIME_OK) {
		c->fd = -1; /* stays the caller's */
		conn_free(c);
		return DIME_E_IO;
	}
	/* Replies are small and already coalesced per loop iteration: do not wait for ACKs. Not
	 * a TCP socket (a socketpair in a test): harmless. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->next = l->conns;
	if (l->conns != NULL)
		l->conns->prev = c;
	l->conns = c;
	io_conn_kick(c);
	*out = c;
	return DIME_OK;
}

size_t
dime_io_conn_pending(const struct dime_io_conn *c)
{
	return c->sq.len + io_tls_pending(c);
}

int
dime_io_conn_send(struct dime_io_conn *c, const void *p, size_t n)
{
	size_t pend;
	int rc;

	if (c->dead || c->closing)
		return DIME_E_IO;
	if (n == 0)
		return DIME_OK;
	pend = dime_io_conn_pending(c);
	if (pend >= DIME_IO_SEND_CAP || n > DIME_IO_SEND_CAP - pend)
		return DIME_E_LIMIT;
	if (c->ssl != NULL)
		rc = io_tls_send(c, p, n);
	else
		rc = io_queue_put(&c->sq, p, n);
	if (rc == DIME_OK) {
		c->want_drain = 1;
		io_conn_kick(c);
	}
	return rc;
}

void
dime_io_conn_pause(struct dime_io_conn *c, int paused)
{
	c->paused = paused != 0;
	io_conn_kick(c);
}

static int
conn_start_tls(struct dime_io_conn *c, SSL_CTX *ctx, int server, const char *host)
{
	int rc;

	if (c->ssl != NULL)
		return DIME_E_INVALID;
	if (c->dead || c->closing)
		return DIME_E_IO;
	/* STARTTLS injection: whatever arrived before the go-ahead is not part of the TLS
	 * stream. The stash goes now; the backend discards the rest (its receive in flight and
	 * the socket buffer) before any queued byte, the go-ahead included, leaves (sync). */
	c->stash_off = c->stash_len = 0; /* freed by conn_work: on_data may be reading it */
	if ((rc = io_tls_start(c, ctx, server, host)) != DIME_OK)
		return rc;
	/* Implicit TLS (nothing received yet): the first bytes may be the ClientHello. */
	c->sync = c->rx_any;
	io_conn_kick(c);
	return DIME_OK;
}

int
dime_io_conn_start_tls(struct dime_io_conn *c, SSL_CTX *ctx)
{
	return conn_start_tls(c, ctx, 1, NULL);
}

int
dime_io_conn_start_tls_client(struct dime_io_conn *c, SSL_CTX *ctx, const char *host)
{
	return conn_start_tls(c, ctx, 0, host);
}

void *
dime_io_conn_ssl(struct dime_io_conn *c)
{
	return c->ssl;
}

void
dime_io_conn_set_timeout(struct dime_io_conn *c, unsigned ms)
{
	c->timeout_ms = ms;
	io_timer_disarm(&c->idle);
	if (ms == 0 || c->dead)
		return;
	c->idle_deadline = c->l->now_ms + ms;
	if (io_timer_arm(&c->idle, ms) != DIME_OK)
		io_conn_fail(c, ENOMEM);
}

void
dime_io_conn_close(struct dime_io_conn *c, int flush)
{
	if (c->dead)
		return;
	if (!flush) {
		io_conn_fail(c, 0);
		return;
	}
	if (c->closing)
		return;
	c->closing = 1;
	io_tls_shutdown(c);
	if (io_timer_arm(&c->linger, DIME_IO_LINGER_MS) != DIME_OK)
		io_conn_fail(c, 0);
	io_conn_kick(c);
}

/* ---- listeners ---- */

void
io_loop_accepted(struct dime_io_listener *ls, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (ls->closed) {
		close(fd);
		return;
	}
	memset(&ss, 0, sizeof(ss));
	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) {
		close(fd); /* reset before we looked: nothing to serve */
		return;
	}
	ls->on_accept(ls->ctx, fd, (struct sockaddr *)&ss, len);
}

int
dime_io_listen(struct dime_io_loop *l, struct dime_io_listener **out, int fd,
	       dime_io_accept_fn on_accept, void *ctx)
{
	struct dime_io_listener *ls;

	*out = NULL;
	if ((ls = calloc(1, sizeof(*ls))) == NULL)
		return DIME_E_NOMEM;
	ls->kind = IO_KIND_LISTENER;
	ls->l = l;
	ls->fd = fd;
	ls->on_accept = on_accept;
	ls->ctx = ctx;
	timer_embed(&ls->retry, l, NULL, ls);
	if (l->be->listen(ls) != DIME_OK) {
		free(ls);
		return DIME_E_IO;
	}
	ls->next = l->listeners;
	l->listeners = ls;
	*out = ls;
	return DIME_OK;
}

void
dime_io_listener_close(struct dime_io_listener *ls)
{
	struct dime_io_loop *l;
	struct dime_io_listener **pl;

	if (ls == NULL || ls->closed)
		return;
	l = ls->l;
	ls->closed = 1;
	io_timer_disarm(&ls->retry);
	for (pl = &l->listeners; *pl != ls; pl = &(*pl)->next)
		;
	*pl = ls->next;
	l->be->listener_close(ls);
	ls->next = l->dead_listeners;
	l->dead_listeners = ls;
}

int
dime_io_tcp_listen(const char *host, unsigned port, unsigned *bound_port)
{
	struct addrinfo hints, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char serv[16];
	int fd = -1, one = 1, e;

	if (bound_port != NULL)
		*bound_port = 0;
	if (port > 65535) {
		errno = EINVAL;
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	snprintf(serv, sizeof(serv), "%u", port);
	if ((e = getaddrinfo(host, serv, &hints, &ai)) != 0) {
		errno = e == EAI_SYSTEM ? errno : EINVAL;
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
		e = errno;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		errno = e;
		return -1;
	}
	freeaddrinfo(ai);
	if (bound_port != NULL)
		*bound_port = ss.ss_family == AF_INET6
				  ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
				  : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

/* ---- the loop ---- */

void
io_loop_wake_drain(struct dime_io_loop *l)
{
	uint64_t v;

	while (read(l->efd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		;
}

static void
loop_posts(struct dime_io_loop *l)
{
	struct io_post *p, *next;

	pthread_mutex_lock(&l->post_mu);
	p = l->post_head;
	l->post_head = l->post_tail = NULL;
	pthread_mutex_unlock(&l->post_mu);
	for (; p != NULL; p = next) {
		next = p->next;
		p->fn(p->arg);
		free(p);
	}
}

static void
loop_wake(struct dime_io_loop *l)
{
	uint64_t one = 1;
	ssize_t r;

	/* EAGAIN: the counter is saturated, the loop will wake anyway. */
	do
		r = write(l->efd, &one, sizeof(one));
	while (r < 0 && errno == EINTR);
}

int
dime_io_loop_post(struct dime_io_loop *l, void (*fn)(void *arg), void *arg)
{
	struct io_post *p = malloc(sizeof(*p));

	if (p == NULL)
		return DIME_E_NOMEM;
	p->next = NULL;
	p->fn = fn;
	p->arg = arg;
	pthread_mutex_lock(&l->post_mu);
	if (l->post_tail != NULL)
		l->post_tail->next = p;
	else
		l->post_head = p;
	l->post_tail = p;
	/* Wake under the lock: once it is released the loop may run p, return and be freed, so
	 * the eventfd must not be touched after (dime_io_loop_free takes the lock too). */
	loop_wake(l);
	pthread_mutex_unlock(&l->post_mu);
	return DIME_OK;
}

void
dime_io_loop_stop(struct dime_io_loop *l)
{
	atomic_store(&l->stop, 1);
	loop_wake(l);
}

int
dime_io_loop_run(struct dime_io_loop *l)
{
	int rc = DIME_OK;

	l->now_ms = loop_clock_ms();
	while (!atomic_exchange(&l->stop, 0)) {
		int timeout = -1;

		loop_posts(l);
		loop_work(l);
		if (l->work != NULL) {
			timeout = 0;
		} else if (l->n_heap > 0) {
			uint64_t w = l->heap[0]->when;

			l->now_ms = loop_clock_ms();
			timeout = w <= l->now_ms	    ? 0
				  : w - l->now_ms > INT_MAX ? INT_MAX
							    : (int)(w - l->now_ms);
		}
		if ((rc = l->be->wait(l, timeout)) != DIME_OK)
			break;
		l->now_ms = loop_clock_ms();
		loop_timers(l);
		loop_work(l);
	}
	return rc;
}

const char *
dime_io_loop_backend(const struct dime_io_loop *l)
{
	return l->be->name;
}

static int
loop_init_backend(struct dime_io_loop *l, const struct io_backend *be)
{
	l->be = be;
	if (be->init(l) == DIME_OK)
		return DIME_OK;
	l->be = NULL;
	return DIME_E_IO;
}

int
dime_io_loop_new(struct dime_io_loop **out, enum dime_io_backend be)
{
	struct dime_io_loop *l;
	int rc = DIME_E_NOMEM;

	*out = NULL;
	if (be == DIME_IO_AUTO) {
		const char *env = getenv("DIME_IO");

		if (env != NULL && strcmp(env, "uring") == 0)
			be = DIME_IO_URING;
		else if (env != NULL && strcmp(env, "epoll") == 0)
			be = DIME_IO_EPOLL;
		else if (env != NULL && env[0] != '\0')
			return DIME_E_INVALID;
	}
	if (be != DIME_IO_AUTO && be != DIME_IO_URING && be != DIME_IO_EPOLL)
		return DIME_E_INVALID;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return DIME_E_NOMEM;
	l->efd = -1;
	l->epfd = -1;
	l->work_tail = &l->work;
	l->wake_kind = IO_KIND_WAKE;
	l->now_ms = loop_clock_ms();
	atomic_init(&l->stop, 0);
	if (pthread_mutex_init(&l->post_mu, NULL) != 0) {
		free(l);
		return DIME_E_NOMEM;
	}
	l->rxbuf_cap = 2 * IO_RXBUF_SIZE; /* receive half, TLS plaintext half */
	if ((l->rxbuf = malloc(l->rxbuf_cap)) == NULL)
		goto out;
	rc = DIME_E_IO;
	if ((l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		goto out;
	if (be == DIME_IO_URING)
		rc = loop_init_backend(l, &dime_io_uring_backend);
	else if (be == DIME_IO_EPOLL)
		rc = loop_init_backend(l, &dime_io_epoll_backend);
	else if ((rc = loop_init_backend(l, &dime_io_uring_backend)) != DIME_OK)
		rc = loop_init_backend(l, &dime_io_epoll_backend); /* seccomp, io_uring_disabled */
out:
	if (rc != DIME_OK) {
		if (l->efd >= 0)
			close(l->efd);
		free(l->rxbuf);
		pthread_mutex_destroy(&l->post_mu);
		free(l);
		return rc;
	}
	*out = l;
	return DIME_OK;
}

void
dime_io_loop_free(struct dime_io_loop *l)
{
	struct dime_io_conn *c;
	struct dime_io_listener *ls;
	struct io_post *p, *next;
	size_t i;

	if (l == NULL)
		return;
	/* Work posted before the end still runs (a completion may own memory), while the
	 * connections it names are still open. */
	loop_posts(l);
	while (l->listeners != NULL)
		dime_io_listener_close(l->listeners);
	for (c = l->conns; c != NULL; c = c->next)
		io_conn_fail(c, 0);
	loop_work(l);
	/* io_uring: wait for what was cancelled, so no kernel op still points into our memory. */
	l->be->fini(l);
	loop_work(l);
	while ((c = l->dead_conns) != NULL) {
		l->dead_conns = c->next;
		conn_free(c);
	}
	while ((ls = l->dead_listeners) != NULL) {
		l->dead_listeners = ls->next;
		if (ls->fd >= 0)
			close(ls->fd);
		free(ls);
	}
	for (i = 0; i < l->n_heap; i++)
		if (l->heap[i]->owned)
			free(l->heap[i]);
	free(l->heap);
	for (p = l->post_head; p != NULL; p = next) {
		next = p->next;
		free(p);
	}
	/* a poster still inside dime_io_loop_post (waking us) finishes before the fd closes */
	pthread_mutex_lock(&l->post_mu);
	pthread_mutex_unlock(&l->post_mu);
	pthread_mutex_destroy(&l->post_mu);
	close(l->efd);
	free(l->rxbuf);
	free(l);
}

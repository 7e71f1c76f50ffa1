/* The epoll backend, for kernels or sandboxes without io_uring: level-triggered readiness,
 * recv into one buffer per loop (nothing per connection), non-blocking sends from the queue,
 * timeouts through epoll_wait's timeout over the core's timer heap. */

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop_int.h"

#define EP_EVENTS	     64
#define EP_READS_PER_EVENT   8 /* fairness: level-triggered brings the rest back */
#define EP_ACCEPTS_PER_EVENT 64
#define EP_ACCEPT_RETRY_MS   100u

static void
ep_write(struct dime_io_conn *c)
{
	struct io_chunk *h;

	while (!c->dead && (h = c->sq.head) != NULL) {
		ssize_t n =
		    send(c->fd, h->data + h->off, h->len - h->off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			io_conn_sent(c, (size_t)n);
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else {
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
				io_conn_fail(c, errno);
			break;
		}
	}
}

static void
ep_read(struct dime_io_loop *l, struct dime_io_conn *c)
{
	int i;

	for (i = 0; i < EP_READS_PER_EVENT && io_conn_can_recv(c); i++) {
		ssize_t n = recv(c->fd, l->rxbuf, IO_RXBUF_SIZE, MSG_DONTWAIT);

		if (n > 0) {
			io_conn_rx(c, l->rxbuf, (size_t)n);
			if ((size_t)n < IO_RXBUF_SIZE)
				break; /* drained, most likely: save a syscall */
		} else if (n == 0) {
			io_conn_eof(c);
			break;
		} else if (errno == EINTR) {
			continue;
		} else {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				io_conn_fail(c, errno);
			break;
		}
	}
}

static void
ep_set(struct dime_io_loop *l, int fd, void *ptr, uint32_t events)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = ptr;
	(void)epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev);
}

static void
ep_accept(struct dime_io_loop *l, struct dime_io_listener *ls)
{
	int i;

	for (i = 0; i < EP_ACCEPTS_PER_EVENT && !ls->closed; i++) {
		int fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			io_loop_accepted(ls, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			/* EMFILE and the like: level-triggered would spin; look again later. */
			ep_set(l, ls->fd, ls, 0);
			if (io_timer_arm(&ls->retry, EP_ACCEPT_RETRY_MS) != DIME_OK)
				ep_set(l, ls->fd, ls, EPOLLIN);
		}
		break;
	}
}

static void
ep_accept_retry(void *arg)
{
	struct dime_io_listener *ls = arg;

	if (!ls->closed)
		ep_set(ls->l, ls->fd, ls, EPOLLIN);
}

static int
ep_wait(struct dime_io_loop *l, int timeout_ms)
{
	struct epoll_event evs[EP_EVENTS];
	int n, i;

	n = epoll_wait(l->epfd, evs, EP_EVENTS, timeout_ms);
	io_loop_clock(l);
	if (n < 0)
		return errno == EINTR ? DIME_OK : DIME_E_IO;
	for (i = 0; i < n; i++) {
		enum io_kind kind = *(enum io_kind *)evs[i].data.ptr;
		uint32_t e = evs[i].events;

		if (kind == IO_KIND_WAKE) {
			io_loop_wake_drain(l);
		} else if (kind == IO_KIND_LISTENER) {
			ep_accept(l, evs[i].data.ptr);
		} else {
			struct dime_io_conn *c = evs[i].data.ptr;

			/* Freed only after this batch (loop_work), so c is valid even if dead. */
			if (c->dead || c->released)
				continue;
			if (e & (EPOLLIN | EPOLLHUP | EPOLLERR))
				ep_read(l, c);
			if (!c->dead && (e & EPOLLOUT))
				ep_write(c);
			if (!c->dead && (e & (EPOLLHUP | EPOLLERR)) && !io_conn_can_recv(c)) {
				/* Not reading (paused, flushing): HUP/ERR would repeat forever. */
				int err = 0;
				socklen_t len = sizeof(err);

				(void)getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
				io_conn_fail(c, err != 0 ? err : ECONNRESET);
			}
			io_conn_kick(c);
		}
	}
	return DIME_OK;
}

static int
ep_init(struct dime_io_loop *l)
{
	struct epoll_event ev;

	if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return DIME_E_IO;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &l->wake_kind;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->efd, &ev) != 0) {
		close(l->epfd);
		l->epfd = -1;
		return DIME_E_IO;
	}
	return DIME_OK;
}

static void
ep_fini(struct dime_io_loop *l)
{
	close(l->epfd);
	l->epfd = -1;
}

static int
ep_listen(struct dime_io_listener *ls)
{
	struct epoll_event ev;

	ls->retry.fn = ep_accept_retry;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = ls;
	return epoll_ctl(ls->l->epfd, EPOLL_CTL_ADD, ls->fd, &ev) == 0 ? DIME_OK : DIME_E_IO;
}

static void
ep_listener_close(struct dime_io_listener *ls)
{
	(void)epoll_ctl(ls->l->epfd, EPOLL_CTL_DEL, ls->fd, NULL);
}

static int
ep_conn_add(struct dime_io_conn *c)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.data.ptr = c;
	c->ep_events = 0;
	return epoll_ctl(c->l->epfd, EPOLL_CTL_ADD, c->fd, &ev) == 0 ? DIME_OK : DIME_E_IO;
}

static void
ep_conn_update(struct dime_io_conn *c)
{
	uint32_t ev;

	if (c->released)
		return;
	if (c->sync) {
		/* STARTTLS injection: drop what the peer sent before the go-ahead leaves. */
		while (recv(c->fd, c->l->rxbuf, IO_RXBUF_SIZE, MSG_DONTWAIT) > 0)
			;
		c->sync = 0;
	}
	if (c->sq.len > 0)
		ep_write(c);
	if (c->dead)
		return; /* the core comes back for it: a write failed */
	ev = (io_conn_can_recv(c) ? EPOLLIN : 0u) | (c->sq.len > 0 ? EPOLLOUT : 0u);
	if (ev != c->ep_events) {
		ep_set(c->l, c->fd, c, ev);
		c->ep_events = ev;
	}
}

static void
ep_conn_release(struct dime_io_conn *c)
{
	(void)epoll_ctl(c->l->epfd, EPOLL_CTL_DEL, c->fd, NULL);
}

const struct io_backend dime_io_epoll_backend = {
    .name = "epoll",
    .init = ep_init,
    .fini = ep_fini,
    .wait = ep_wait,
    .listen = ep_listen,
    .listener_close = ep_listener_close,
    .conn_add = ep_conn_add,
    .conn_update = ep_conn_update,
    .conn_release = ep_conn_release,
};

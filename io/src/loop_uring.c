/* The io_uring backend: multishot accept, multishot recv into a provided buffer ring shared by
 * every connection of the loop (single-shot recv where the kernel lacks multishot), one send
 * in flight per connection, the wake-up eventfd read through the ring, and timeouts through
 * io_uring_submit_and_wait_timeout. user_data is a pointer with the operation in its low bits;
 * the object stays allocated until its last operation completes (n_inflight). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop_int.h"

enum uring_op { U_ACCEPT = 1, U_RECV, U_SEND, U_WAKE, U_CANCEL };
#define U_OP_MASK	  7u
#define U_ACCEPT_RETRY_MS 100u /* after EMFILE and the like: let descriptors free up */

static uint64_t
uring_tag(const void *p, enum uring_op op)
{
	DIME_ASSERT(((uintptr_t)p & U_OP_MASK) == 0);
	return (uint64_t)(uintptr_t)p | (uint64_t)op;
}

static struct io_uring_sqe *
uring_sqe(struct dime_io_loop *l)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	if (sqe == NULL) {
		(void)io_uring_submit(&l->ring); /* SQ full: hand it to the kernel, then retry */
		sqe = io_uring_get_sqe(&l->ring);
	}
	DIME_ASSERT(sqe != NULL);
	return sqe;
}

static void
uring_cancel(struct dime_io_loop *l, uint64_t tag)
{
	struct io_uring_sqe *sqe = uring_sqe(l);

	io_uring_prep_cancel64(sqe, tag, 0);
	io_uring_sqe_set_data64(sqe, uring_tag(NULL, U_CANCEL));
	l->n_inflight++;
}

static void
uring_arm_wake(struct dime_io_loop *l)
{
	struct io_uring_sqe *sqe = uring_sqe(l);

	io_uring_prep_read(sqe, l->efd, &l->efd_val, sizeof(l->efd_val), 0);
	io_uring_sqe_set_data64(sqe, uring_tag(l, U_WAKE));
	l->n_inflight++;
}

static void
uring_arm_accept(struct dime_io_listener *ls)
{
	struct dime_io_loop *l = ls->l;
	struct io_uring_sqe *sqe = uring_sqe(l);

	if (l->ms_accept)
		io_uring_prep_multishot_accept(sqe, ls->fd, NULL, NULL,
					       SOCK_NONBLOCK | SOCK_CLOEXEC);
	else
		io_uring_prep_accept(sqe, ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, uring_tag(ls, U_ACCEPT));
	ls->n_inflight++;
	l->n_inflight++;
}

static void
uring_accept_retry(void *arg)
{
	struct dime_io_listener *ls = arg;

	if (!ls->closed && ls->n_inflight == 0)
		uring_arm_accept(ls);
}

static void
uring_recycle(struct dime_io_loop *l, unsigned bid)
{
	io_uring_buf_ring_add(l->br, l->bufs + (size_t)bid * IO_URING_BUF_SIZE, IO_URING_BUF_SIZE,
			      (unsigned short)bid, io_uring_buf_ring_mask(IO_URING_BUFS), 0);
	io_uring_buf_ring_advance(l->br, 1);
}

static void
uring_arm_recv(struct dime_io_conn *c)
{
	struct dime_io_loop *l = c->l;
	struct io_uring_sqe *sqe = uring_sqe(l);

	if (l->ms_recv)
		io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	else
		io_uring_prep_recv(sqe, c->fd, NULL, IO_URING_BUF_SIZE, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = IO_URING_BGID;
	io_uring_sqe_set_data64(sqe, uring_tag(c, U_RECV));
	c->recv_armed = 1;
	c->cancel_sent = 0;
	c->n_inflight++;
	l->n_inflight++;
}

static void
uring_on_accept(struct dime_io_loop *l, struct dime_io_listener *ls, int res, unsigned flags)
{
	int more = (flags & IORING_CQE_F_MORE) != 0;

	if (!more) {
		ls->n_inflight--;
		l->n_inflight--;
	}
	if (res >= 0)
		io_loop_accepted(ls, res);
	if (more || ls->closed || l->ring_ok == 0)
		return;
	if (res == -EINVAL && l->ms_accept) {
		l->ms_accept = 0; /* kernel before 5.19: one accept per SQE */
		uring_arm_accept(ls);
	} else if (res >= 0 || res == -EINTR || res == -EAGAIN || res == -ECONNABORTED) {
		uring_arm_accept(ls);
	} else if (io_timer_arm(&ls->retry, U_ACCEPT_RETRY_MS) != DIME_OK) {
		uring_arm_accept(ls);
	}
}

static void
uring_on_recv(struct dime_io_loop *l, struct dime_io_conn *c, int res, unsigned flags)
{
	int more = (flags & IORING_CQE_F_MORE) != 0;

	if (!more) {
		c->recv_armed = 0;
		c->cancel_sent = 0;
		c->n_inflight--;
		l->n_inflight--;
	}
	if (flags & IORING_CQE_F_BUFFER) {
		unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;

		if (res > 0)
			io_conn_rx(c, l->bufs + (size_t)bid * IO_URING_BUF_SIZE, (size_t)res);
		uring_recycle(l, bid);
	}
	if (res == 0) {
		io_conn_eof(c);
	} else if (res < 0) {
		if (res == -EINVAL && l->ms_recv && !more)
			l->ms_recv = 0; /* kernel before 6.0: single-shot recv */
		else if (res != -ENOBUFS && res != -ECANCELED && res != -EINTR && res != -EAGAIN)
			io_conn_fail(c, -res);
	}
	if (!more)
		io_conn_kick(c); /* re-arm, or finish a pause, a STARTTLS discard, a release */
}

static void
uring_on_send(struct dime_io_loop *l, struct dime_io_conn *c, int res)
{
	c->send_inflight = 0;
	c->n_inflight--;
	l->n_inflight--;
	if (res > 0)
		io_conn_sent(c, (size_t)res); /* a short send: the rest goes next */
	else if (res != -EAGAIN && res != -EINTR && res != 0)
		io_conn_fail(c, -res);
	io_conn_kick(c);
}

static void
uring_cqe(struct dime_io_loop *l, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	void *p = (void *)(uintptr_t)(ud & ~(uint64_t)U_OP_MASK);

	switch ((enum uring_op)(ud & U_OP_MASK)) {
	case U_ACCEPT: uring_on_accept(l, p, cqe->res, cqe->flags); break;
	case U_RECV: uring_on_recv(l, p, cqe->res, cqe->flags); break;
	case U_SEND: uring_on_send(l, p, cqe->res); break;
	case U_WAKE:
		l->n_inflight--;
		if (l->ring_ok)
			uring_arm_wake(l); /* posts run at the top of every iteration */
		break;
	case U_CANCEL: l->n_inflight--; break;
	default: DIME_ASSERT(0);
	}
}

static int
uring_wait(struct dime_io_loop *l, int timeout_ms)
{
	struct __kernel_timespec ts;
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;
	int r;

	ts.tv_sec = timeout_ms / 1000;
	ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
	r = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, timeout_ms >= 0 ? &ts : NULL, NULL);
	if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY)
		return DIME_E_IO;
	io_loop_clock(l);
	io_uring_for_each_cqe(&l->ring, head, cqe)
	{
		seen++;
		uring_cqe(l, cqe);
	}
	io_uring_cq_advance(&l->ring, seen);
	return DIME_OK;
}

static int
uring_init(struct dime_io_loop *l)
{
	static const int need[] = {IORING_OP_ACCEPT, IORING_OP_RECV, IORING_OP_SEND, IORING_OP_READ,
				   IORING_OP_ASYNC_CANCEL};
	struct io_uring_params params;
	struct io_uring_probe *probe;
	struct io_uring_buf_reg reg;
	size_t i;
	void *br;
	int r;

	memset(&params, 0, sizeof(params));
	params.flags = IORING_SETUP_COOP_TASKRUN; /* 5.19+: no IPI per completion */
	r = io_uring_queue_init_params(256, &l->ring, &params);
	if (r == -EINVAL) {
		memset(&params, 0, sizeof(params));
		r = io_uring_queue_init_params(256, &l->ring, &params);
	}
	if (r < 0)
		return DIME_E_IO; /* EPERM (seccomp, io_uring_disabled), ENOSYS */
	if ((probe = io_uring_get_probe_ring(&l->ring)) == NULL)
		goto fail;
	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!io_uring_opcode_supported(probe, need[i])) {
			io_uring_free_probe(probe);
			goto fail;
		}
	io_uring_free_probe(probe);

	l->br_bytes = IO_URING_BUFS * sizeof(struct io_uring_buf);
	br = mmap(NULL, l->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (br == MAP_FAILED)
		goto fail;
	l->br = br;
	if ((l->bufs = aligned_alloc(4096, (size_t)IO_URING_BUFS * IO_URING_BUF_SIZE)) == NULL)
		goto fail;
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)br;
	reg.ring_entries = IO_URING_BUFS;
	reg.bgid = IO_URING_BGID;
	if (io_uring_register_buf_ring(&l->ring, &reg, 0) != 0)
		goto fail; /* before 5.19: epoll serves */
	io_uring_buf_ring_init(l->br);
	for (i = 0; i < IO_URING_BUFS; i++)
		io_uring_buf_ring_add(l->br, l->bufs + i * IO_URING_BUF_SIZE, IO_URING_BUF_SIZE,
				      (unsigned short)i, io_uring_buf_ring_mask(IO_URING_BUFS),
				      (int)i);
	io_uring_buf_ring_advance(l->br, (int)IO_URING_BUFS);
	/* DIME_IO_URING_SINGLESHOT=1 takes the path of kernels before 5.19/6.0 (tests, CI). */
	l->ms_recv = l->ms_accept = getenv("DIME_IO_URING_SINGLESHOT") == NULL;
	l->ring_ok = 1;
	uring_arm_wake(l);
	return DIME_OK;
fail:
	io_uring_queue_exit(&l->ring);
	if (l->br != NULL)
		munmap(l->br, l->br_bytes);
	free(l->bufs);
	l->br = NULL;
	l->bufs = NULL;
	return DIME_E_IO;
}

static void
uring_fini(struct dime_io_loop *l)
{
	int tries;

	/* Everything is released: cancel the wake-up read and wait (bounded) until no
	 * operation points into memory we are about to free. */
	l->ring_ok = 0;
	uring_cancel(l, uring_tag(l, U_WAKE));
	for (tries = 0; l->n_inflight > 0 && tries < 500; tries++)
		if (uring_wait(l, 10) != DIME_OK)
			break;
	io_uring_queue_exit(&l->ring);
	munmap(l->br, l->br_bytes);
	free(l->bufs);
}

static int
uring_listen(struct dime_io_listener *ls)
{
	ls->retry.fn = uring_accept_retry;
	uring_arm_accept(ls);
	return DIME_OK;
}

static void
uring_listener_close(struct dime_io_listener *ls)
{
	if (ls->n_inflight > 0)
		uring_cancel(ls->l, uring_tag(ls, U_ACCEPT));
}

static int
uring_conn_add(struct dime_io_conn *c)
{
	(void)c;
	return DIME_OK;
}

/* Drop what sits in the socket buffer: STARTTLS injection. Non-blocking. */
static void
uring_discard(struct dime_io_conn *c)
{
	uint8_t junk[4096];

	while (recv(c->fd, junk, sizeof(junk), MSG_DONTWAIT) > 0)
		;
}

static void
uring_conn_update(struct dime_io_conn *c)
{
	struct dime_io_loop *l = c->l;
	struct io_chunk *h;

	if (c->released)
		return;
	if (c->sync && !c->recv_armed) {
		uring_discard(c);
		c->sync = 0;
	}
	if (io_conn_can_recv(c)) {
		if (!c->recv_armed)
			uring_arm_recv(c);
	} else if (c->recv_armed && !c->cancel_sent) {
		c->cancel_sent = 1;
		uring_cancel(l, uring_tag(c, U_RECV));
	}
	if (!c->sync && !c->send_inflight && (h = c->sq.head) != NULL) {
		struct io_uring_sqe *sqe = uring_sqe(l);
		size_t n = h->len - h->off;

		io_uring_prep_send(sqe, c->fd, h->data + h->off, n > (1u << 30) ? (1u << 30) : n,
				   MSG_NOSIGNAL);
		io_uring_sqe_set_data64(sqe, uring_tag(c, U_SEND));
		c->send_inflight = 1;
		c->n_inflight++;
		l->n_inflight++;
	}
}

static void
uring_conn_release(struct dime_io_conn *c)
{
	struct dime_io_loop *l = c->l;
	struct io_uring_sqe *sqe;

	if (c->n_inflight == 0)
		return;
	sqe = uring_sqe(l);
	io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, uring_tag(NULL, U_CANCEL));
	l->n_inflight++;
}

const struct io_backend dime_io_uring_backend = {
    .name = "uring",
    .init = uring_init,
    .fini = uring_fini,
    .wait = uring_wait,
    .listen = uring_listen,
    .listener_close = uring_listener_close,
    .conn_add = uring_conn_add,
    .conn_update = uring_conn_update,
    .conn_release = uring_conn_release,
};

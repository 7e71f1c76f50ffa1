#ifndef DIME_IO_LOOP_INT_H
#define DIME_IO_LOOP_INT_H
/* Private to io/: the event loop's state shared by the core (loop.c), the TLS layer
 * (conn_tls.c) and the two backends (loop_uring.c, loop_epoll.c). */

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <liburing.h>
#include <openssl/ssl.h>

#include "dime/loop.h"

/* One queued run of bytes to send. Chunks have a fixed capacity: a send in flight points into
 * data[off, len) while conn_send appends after len. */
struct io_chunk {
	struct io_chunk *next;
	size_t len, off, cap;
	uint8_t data[];
};

struct io_queue {
	struct io_chunk *head, *tail;
	size_t len; /* bytes not yet sent */
};

struct dime_io_timer {
	struct dime_io_loop *l;
	uint64_t when, seq; /* seq keeps timers with one deadline in order */
	size_t idx;	    /* in l->heap; IO_TIMER_OFF when not armed */
	void (*fn)(void *arg);
	void *arg;
	int owned; /* malloc'd by dime_io_timer_add (freed after it fires), else embedded */
};
#define IO_TIMER_OFF ((size_t)-1)

enum io_kind { IO_KIND_LISTENER = 1, IO_KIND_CONN, IO_KIND_WAKE };

struct dime_io_listener {
	enum io_kind kind; /* first: epoll's data.ptr points here */
	struct dime_io_loop *l;
	int fd;
	int closed;
	unsigned n_inflight; /* io_uring operations not yet completed */
	dime_io_accept_fn on_accept;
	void *ctx;
	struct dime_io_timer retry; /* io_uring: re-arm accept after EMFILE and the like */
	struct dime_io_listener *next;
};

struct dime_io_conn {
	enum io_kind kind; /* first: epoll's data.ptr points here */
	struct dime_io_loop *l;
	int fd;
	const struct dime_io_conn_ops *ops;
	void *ctx;

	struct io_queue sq; /* bytes for the socket (ciphertext under TLS) */
	struct io_queue pt; /* plaintext queued during a TLS handshake */
	uint8_t *stash;	    /* plain bytes received while paused (io_uring's window) */
	size_t stash_off, stash_len, stash_cap; /* undelivered: [stash_off, stash_len) */

	SSL *ssl; /* with two memory BIOs; NULL when plain */
	BIO *rbio, *wbio;

	unsigned timeout_ms;
	uint64_t idle_deadline;
	struct dime_io_timer idle;
	struct dime_io_timer linger;

	int err;	       /* for on_close */
	unsigned paused : 1;   /* user asked: no on_data */
	unsigned closing : 1;  /* dime_io_conn_close(c, 1): flushing */
	unsigned dead : 1;     /* on_close is due (or done) */
	unsigned reported : 1; /* on_close ran */
	unsigned released : 1; /* backend told to stop; fd closed once n_inflight is 0 */
	unsigned hs : 1;       /* TLS handshake in progress */
	unsigned sync : 1;     /* STARTTLS: discarding received bytes, sends held */
	unsigned want_drain : 1;
	unsigned queued : 1;  /* on l->work */
	unsigned shut_wr : 1; /* close_notify queued */
	unsigned rx_any : 1;  /* some byte was received (STARTTLS, not implicit TLS) */

	/* backend state */
	unsigned n_inflight;
	unsigned recv_armed : 1;
	unsigned send_inflight : 1;
	unsigned cancel_sent : 1;
	uint32_t ep_events;

	struct dime_io_conn *prev, *next; /* l->conns */
	struct dime_io_conn *wnext;	  /* l->work */
};

struct io_post {
	struct io_post *next;
	void (*fn)(void *arg);
	void *arg;
};

struct io_backend;

struct dime_io_loop {
	const struct io_backend *be;
	uint64_t now_ms;
	atomic_int stop;
	int efd; /* eventfd: post and stop wake the loop */

	pthread_mutex_t post_mu;
	struct io_post *post_head, *post_tail;

	struct dime_io_timer **heap;
	size_t n_heap, heap_cap;
	uint64_t timer_seq;

	struct dime_io_conn *conns;
	struct dime_io_conn *work, **work_tail;
	struct dime_io_listener *listeners, *dead_listeners;
	struct dime_io_conn *dead_conns; /* released, waiting for n_inflight == 0 */

	uint8_t *rxbuf; /* epoll's receive buffer and TLS's plaintext buffer: one per loop */
	size_t rxbuf_cap;

	/* io_uring */
	struct io_uring ring;
	int ring_ok;
	struct io_uring_buf_ring *br;
	size_t br_bytes;
	uint8_t *bufs;
	int ms_recv, ms_accept; /* multishot recv/accept work on this kernel */
	uint64_t efd_val;
	unsigned n_inflight;

	/* epoll */
	int epfd;
	enum io_kind wake_kind; /* epoll data.ptr for efd */
};

struct io_backend {
	const char *name;
	int (*init)(struct dime_io_loop *l);		     /* DIME_OK or DIME_E_IO */
	void (*fini)(struct dime_io_loop *l);		     /* after every release */
	int (*wait)(struct dime_io_loop *l, int timeout_ms); /* dispatch; DIME_OK/E_IO */
	int (*listen)(struct dime_io_listener *ls);	     /* DIME_OK or DIME_E_IO */
	void (*listener_close)(struct dime_io_listener *ls); /* stop; close fd when idle */
	int (*conn_add)(struct dime_io_conn *c);	     /* DIME_OK or DIME_E_IO */
	void (*conn_update)(struct dime_io_conn *c);	     /* arm recv, start sends */
	void (*conn_release)(struct dime_io_conn *c);	     /* cancel what is in flight */
};

#define IO_URING_BUFS	  256u /* provided buffers shared by every connection of a loop */
#define IO_URING_BUF_SIZE 8192u
#define IO_URING_BGID	  7
#define IO_RXBUF_SIZE	  16384u
#define IO_TLS_BIO_KEEP	  4096u /* a drained memory BIO larger than this is replaced */

extern const struct io_backend dime_io_uring_backend;
extern const struct io_backend dime_io_epoll_backend;

/* Core entry points the backends call (loop.c). */
/* Refresh l->now_ms: a backend calls it as its wait returns, before it runs any callback, so
 * timers armed there (an accepted connection's idle timeout) count from now and not from before
 * a long idle wait, which made them fire at once. */
void io_loop_clock(struct dime_io_loop *l);
void io_conn_rx(struct dime_io_conn *c, const uint8_t *p, size_t n);
void io_conn_fail(struct dime_io_conn *c, int err); /* err 0: peer closed */
void io_conn_eof(struct dime_io_conn *c);	    /* the peer closed: flush, then close */
void io_conn_sent(struct dime_io_conn *c, size_t n);
void io_conn_kick(struct dime_io_conn *c);
void io_loop_accepted(struct dime_io_listener *ls, int fd);
int io_conn_can_recv(const struct dime_io_conn *c);
void io_loop_wake_drain(struct dime_io_loop *l);
int io_timer_arm(struct dime_io_timer *t, unsigned ms);
void io_timer_disarm(struct dime_io_timer *t);

/* TLS (conn_tls.c). */
int io_tls_start(struct dime_io_conn *c, SSL_CTX *ctx, int server, const char *host);
void io_tls_rx(struct dime_io_conn *c, const uint8_t *p, size_t n);
void io_tls_progress(struct dime_io_conn *c);
int io_tls_send(struct dime_io_conn *c, const void *p, size_t n);
void io_tls_shutdown(struct dime_io_conn *c);
size_t io_tls_pending(const struct dime_io_conn *c);
void io_tls_free(struct dime_io_conn *c);
int io_queue_put(struct io_queue *q, const void *p, size_t n);
void io_queue_clear(struct io_queue *q);

#endif

#ifndef DIME_IO_LOOP_H
#define DIME_IO_LOOP_H
/* An event loop per thread for network servers and clients: listeners, byte-stream connections
 * (plain or TLS through OpenSSL memory BIOs), timers, and work posted from other threads.
 * Two backends behind one interface: io_uring (multishot accept and recv with a provided
 * buffer ring; timers from one heap, waited on with io_uring_submit_and_wait_timeout) and epoll,
 * chosen automatically (io_uring when the kernel lets us set up a ring, else epoll: seccomp,
 * kernel.io_uring_disabled) and forced with DIME_IO=uring|epoll. Knows nothing of DIME.
 *
 * Threading: every function runs on the loop's own thread (inside a callback or before
 * dime_io_loop_run), except dime_io_loop_post and dime_io_loop_stop, which any thread may
 * call. Callbacks run on the loop thread and never block it; a callback may close the
 * connection it is called for. */

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dime/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ssl_ctx_st SSL_CTX; /* OpenSSL's, without pulling in its headers */

enum dime_io_backend {
	DIME_IO_AUTO = 0, /* $DIME_IO if set (uring|epoll), else io_uring when usable, else epoll */
	DIME_IO_URING = 1,
	DIME_IO_EPOLL = 2
};

struct dime_io_loop;
struct dime_io_listener;
struct dime_io_conn;
struct dime_io_timer;

/* Returns: DIME_OK, DIME_E_NOMEM, DIME_E_IO (the backend asked for cannot be set up),
 * DIME_E_INVALID ($DIME_IO names no backend). */
DIME_MUST_CHECK int dime_io_loop_new(struct dime_io_loop **l, enum dime_io_backend be);
/* Runs the work already posted, closes every listener, connection and timer still open (their
 * close callbacks run; timers do not fire), then frees the loop. NULL-safe. */
void dime_io_loop_free(struct dime_io_loop *l);
/* "uring" or "epoll". */
const char *dime_io_loop_backend(const struct dime_io_loop *l);
/* Runs callbacks until dime_io_loop_stop. Returns: DIME_OK, DIME_E_IO. */
DIME_MUST_CHECK int dime_io_loop_run(struct dime_io_loop *l);
/* Any thread; async-signal-safe (a write to the wake-up fd). run returns after the callbacks
 * in progress. */
void dime_io_loop_stop(struct dime_io_loop *l);
/* Any thread: fn(arg) runs on the loop thread, in post order. Returns: DIME_OK,
 * DIME_E_NOMEM. */
DIME_MUST_CHECK int dime_io_loop_post(struct dime_io_loop *l, void (*fn)(void *arg), void *arg);
/* Monotonic milliseconds as the loop sees them (cached per iteration). */
uint64_t dime_io_loop_now_ms(const struct dime_io_loop *l);

/* ---- listeners ---- */

/* on_accept owns fd (non-blocking, close-on-exec) and usually wraps it in dime_io_conn_new.
 * peer is the remote address. */
typedef void (*dime_io_accept_fn)(void *ctx, int fd, const struct sockaddr *peer,
				  socklen_t peer_len);

/* Listen on a bound, listening socket fd (the loop takes ownership; on failure fd is still
 * the caller's). Returns: DIME_OK, DIME_E_NOMEM, DIME_E_IO. */
DIME_MUST_CHECK int dime_io_listen(struct dime_io_loop *l, struct dime_io_listener **out, int fd,
				   dime_io_accept_fn on_accept, void *ctx);
/* Stop accepting and close the socket. NULL-safe. */
void dime_io_listener_close(struct dime_io_listener *ls);

/* Helper: a TCP socket bound to host:port ("127.0.0.1", "::", "0.0.0.0"; port 0 picks one),
 * SO_REUSEADDR, listening, non-blocking. Returns the fd or -1 (errno). *bound_port when not
 * NULL. */
int dime_io_tcp_listen(const char *host, unsigned port, unsigned *bound_port);

/* ---- connections ---- */

/* Bytes a connection may hold queued for sending (ciphertext, plus plaintext waiting for a TLS
 * handshake): dime_io_conn_send past it fails with DIME_E_LIMIT and queues nothing. */
#define DIME_IO_SEND_CAP ((size_t)1 << 20)
/* How long dime_io_conn_close(c, 1) waits for the queue to drain before closing anyway. */
#define DIME_IO_LINGER_MS 2000u

struct dime_io_conn_ops {
	/* Received bytes (plaintext after TLS). Must consume all n (buffer what it keeps). */
	void (*on_data)(void *ctx, const uint8_t *p, size_t n);
	/* The TLS handshake ended: ok 1, or 0 (the connection closes next). */
	void (*on_tls)(void *ctx, int ok);
	/* The idle timer expired (dime_io_conn_set_timeout). */
	void (*on_timeout)(void *ctx);
	/* Last call for this connection: the peer closed (err 0), an error (err = errno, or
	 * EPROTO for TLS), or dime_io_conn_close. The conn is freed after it returns. */
	void (*on_close)(void *ctx, int err);
	/* The send queue has emptied after dime_io_conn_send queued bytes: a writer paused for
	 * back-pressure resumes here. Every callback may be NULL (on_data NULL discards). */
	void (*on_drain)(void *ctx);
};

/* Wrap an accepted or connected non-blocking fd (the conn takes ownership; on failure fd is
 * still the caller's, so it can answer 421 and close). Reading starts at once. Memory: about
 * 300 bytes idle, ~15 KiB with TLS (docs/io.md). Returns: DIME_OK, DIME_E_NOMEM, DIME_E_IO. */
DIME_MUST_CHECK int dime_io_conn_new(struct dime_io_loop *l, struct dime_io_conn **out, int fd,
				     const struct dime_io_conn_ops *ops, void *ctx);
/* Queue bytes (copied; encrypted first under TLS); they leave after the current callback.
 * Returns: DIME_OK, DIME_E_NOMEM, DIME_E_LIMIT (more than DIME_IO_SEND_CAP queued: the peer
 * does not read; nothing queued), DIME_E_IO (the connection is closing or failed). */
DIME_MUST_CHECK int dime_io_conn_send(struct dime_io_conn *c, const void *p, size_t n);
/* Stop (1) or resume (0) delivering received data: back-pressure. */
void dime_io_conn_pause(struct dime_io_conn *c, int paused);
/* Begin a server-side TLS handshake with ctx (the caller picks the certificate, SNI through
 * ctx's own callbacks). Bytes received and not yet delivered are discarded first (STARTTLS
 * injection): only bytes after the handshake reach on_data. on_tls reports the outcome.
 * Queue the go-ahead reply (220) with dime_io_conn_send in the same callback, just before this
 * call: sends leave only after the discard, so no byte the peer sent after seeing the reply is
 * lost.
 * Returns: DIME_OK, DIME_E_NOMEM, DIME_E_INVALID (TLS already on). */
DIME_MUST_CHECK int dime_io_conn_start_tls(struct dime_io_conn *c, SSL_CTX *ctx);
/* The same, client side; host is sent as SNI (may be NULL). */
DIME_MUST_CHECK int dime_io_conn_start_tls_client(struct dime_io_conn *c, SSL_CTX *ctx,
						  const char *host);
/* The OpenSSL SSL object once TLS is on (cipher, peer certificate), else NULL. */
void *dime_io_conn_ssl(struct dime_io_conn *c);
/* Idle timeout: on_timeout runs when no byte arrived for ms (0: none); re-armed by every
 * receive and by this call. */
void dime_io_conn_set_timeout(struct dime_io_conn *c, unsigned ms);
/* Close: after the queued bytes are sent (flush 1, bounded by a short linger) or at once.
 * on_close runs from the loop later, never inside this call. */
void dime_io_conn_close(struct dime_io_conn *c, int flush);
/* Bytes queued and not yet written (memory accounting, tests). */
size_t dime_io_conn_pending(const struct dime_io_conn *c);

/* ---- timers ---- */

/* One-shot: fn(arg) after ms. Returns: DIME_OK, DIME_E_NOMEM. Out: *t (may be NULL). */
DIME_MUST_CHECK int dime_io_timer_add(struct dime_io_loop *l, struct dime_io_timer **t, unsigned ms,
				      void (*fn)(void *arg), void *arg);
/* Cancel a timer that has not fired. NULL-safe. */
void dime_io_timer_cancel(struct dime_io_timer *t);

#ifdef __cplusplus
}
#endif

#endif

#ifndef DIME_DAEMON_CONN_INT_H
#define DIME_DAEMON_CONN_INT_H
/* Connection plumbing shared by dimed's servers (server.c: DMTP; smtpd.c: the SMTP gateway's
 * smtp/lmtp listeners; pfsvc.c: the socketmap and policy services): binding the listeners of some
 * modes, the peer's address for logs, and the bytes received but not yet fed to a session. Loop
 * thread only. */

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dime/common.h"
#include "dime/dconf.h"
#include "dime/loop.h"

#define DIME_CONN_HELD_PAUSE (16u * 1024) /* unread input past which reading pauses */
#define DIME_CONN_HELD_MAX   (1u << 20)	  /* a peer that ignores the pause: 421 or close */
#define DIME_CONN_IP_CAP     46u	  /* INET6_ADDRSTRLEN */

/* Bytes received and not yet consumed by the session (mail, addresses: wiped when the buffer
 * grows and when it is freed). */
struct dime_conn_held {
	uint8_t *p;
	size_t len, cap;
};

/* Append n bytes. Returns: DIME_OK; DIME_E_LIMIT (more than DIME_CONN_HELD_MAX would be held:
 * the peer ignored the pause); DIME_E_NOMEM. On failure nothing is appended. */
DIME_MUST_CHECK int dime_conn_held_add(struct dime_conn_held *h, const uint8_t *p, size_t n);
/* Drop the first n (<= h->len) bytes. */
void dime_conn_held_drop(struct dime_conn_held *h, size_t n);
void dime_conn_held_free(struct dime_conn_held *h);

/* The peer's address as text (logs, per-IP caps): "local" for a non-IP socket.
 * Out: ip (NUL-terminated, at most DIME_CONN_IP_CAP octets). */
void dime_conn_peer_ip(char ip[DIME_CONN_IP_CAP], const struct sockaddr *peer);

/* The line deadline of a session (server.c, smtpd.c): timeout_cmd and timeout_data count from
 * the end of the last complete line, timeout_tls bounds a handshake as a whole, since the io
 * idle timer is re-armed by every byte (a peer trickling a byte at a time would never meet it).
 * *t is the running deadline or NULL; fire must set *t to NULL first (the timer is spent). */
/* Start a deadline of ms (0: none) unless one runs: it runs from the last line end. Without
 * memory none starts (the idle timer still bounds a silent peer). */
void dime_conn_deadline_arm(struct dime_io_timer **t, struct dime_io_loop *loop, unsigned ms,
			    void (*fire)(void *arg), void *arg);
void dime_conn_deadline_stop(struct dime_io_timer **t);

/* One listener; owner is the server that bound it (on_accept gets the listener as ctx). */
struct dime_conn_listener {
	void *owner;
	struct dime_io_listener *io;
	enum dime_dconf_mode mode;
	unsigned port; /* bound (an ephemeral one for port 0); 0 for another server's listener */
};

/* Bind and listen on every cf->listen whose mode is in modes (bits 1u << mode), in cf order;
 * the others are left unbound (port 0).
 * Returns: DIME_OK; DIME_E_IO (why: which address and errno; the ones bound are closed again).
 * Out: ls[0 .. *n_ls - 1], one per cf->listen. */
DIME_MUST_CHECK int dime_conn_bind(struct dime_conn_listener ls[DIME_DCONF_MAX_LISTEN],
				   size_t *n_ls, const struct dime_dconf *cf,
				   struct dime_io_loop *loop, unsigned modes,
				   dime_io_accept_fn on_accept, void *owner, char *why,
				   size_t why_cap);
/* Close the listeners (stop accepting); ports stay known. */
void dime_conn_unbind(struct dime_conn_listener *ls, size_t n_ls);
/* The bound ports in cf->listen order. Returns: how many were written (at most cap). */
size_t dime_conn_ports(const struct dime_conn_listener *ls, size_t n_ls, unsigned *ports,
		       size_t cap);
#endif

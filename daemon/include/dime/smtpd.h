#ifndef DIME_DAEMON_SMTPD_H
#define DIME_DAEMON_SMTPD_H
/* dimed's SMTP listener glue (docs/smtp.md, "Listeners"): the smtp and lmtp listeners on the
 * DMTP server's io loop, one ESMTP session machine (dime/smtp_session.h) per connection, and
 * the session's RCPT and DATA queries answered off the loop, on the worker pool, by a handler
 * (the gateway's flows, dime/gwflow.h). MAIL is answered on the loop: any syntactically valid
 * sender is taken (the MTA already judged it), 421 once draining.
 *
 * DATA calls handler->message once per accepted recipient, in order, in one pool job. LMTP
 * answers each recipient with its own verdict. SMTP has one reply for the transaction: 250 only
 * when every recipient got 250, else the first 4xx, else the first 5xx. With mixed outcomes the
 * recipients that got 250 are already handled, and the MTA, seeing 4xx, sends the message to
 * all of them again: a duplicate. Use the lmtp listener, or set Postfix's
 * <transport>_destination_recipient_limit = 1 (docs/postfix.md). */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"
#include "dime/gwflow.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dime_dconf;
struct dime_io_loop;
struct dime_pl_pool;
struct dime_tlsctx;
struct dime_smtpd;

/* What answers the queries: the signatures of dime_gw_rcpt and dime_gw_message (arg is then the
 * struct dime_gw). Called on pool workers, several at a time: must be thread-safe, may block.
 * A return other than DIME_OK is answered 451 4.3.0; otherwise *v says: a 2xx code is OK, 452
 * NOSPACE, any other 4xx TEMPFAIL, a 5xx with an enhanced code 5.7.x POLICY, any other 5xx
 * REJECT; v->enh (when its class matches) and v->text replace the session's defaults. */
struct dime_smtpd_handler {
	int (*rcpt)(void *arg, struct dime_gw_verdict *v, const char *sender, const char *rcpt,
		    int64_t now);
	int (*message)(void *arg, struct dime_gw_verdict *v, const char *sender, const char *rcpt,
		       const uint8_t *msg, size_t len, int64_t now);
	void *arg;
};

/* What the listeners run on; all borrowed for the server's life. */
struct dime_smtpd_env {
	const struct dime_dconf *conf; /* listeners, hostname, max_message, smtp_max_rcpts,
					  smtp_bare_lf, max_conns, timeout_cmd/_data/_tls */
	struct dime_io_loop *loop;     /* the thread every call below runs on */
	struct dime_pl_pool *pool;     /* handler calls run here (dime_pl_pool_call) */
	/* STARTTLS on smtp listeners with its SMTP context (dime_tlsctx_smtp_for: TLS 1.2+,
	 * common ciphers, the same certificates); NULL: not offered. The server takes its own
	 * reference. lmtp listeners never offer STARTTLS. */
	struct dime_tlsctx *tls;
	struct dime_smtpd_handler handler;
};

/* Bind and listen on every conf->listen of mode smtp or lmtp (port 0: an ephemeral one).
 * Returns: DIME_OK, DIME_E_INVALID (why: an smtp/lmtp listener but no handler), DIME_E_IO
 *          (why: which address and errno), DIME_E_NOMEM.
 * Out: *out (NULL on failure). */
DIME_MUST_CHECK int dime_smtpd_new(struct dime_smtpd **out, const struct dime_smtpd_env *env,
				   char *why, size_t why_cap);
/* The bound ports, in conf->listen order, 0 for a listener of another mode.
 * Returns: how many were written (at most cap). */
size_t dime_smtpd_ports(const struct dime_smtpd *s, unsigned *ports, size_t cap);
/* New STARTTLS handshakes use tls from now on (SIGHUP); reference counting as
 * dime_server_set_tls. NULL: STARTTLS is no longer offered to new sessions. */
void dime_smtpd_set_tls(struct dime_smtpd *s, struct dime_tlsctx *tls);
/* Stop accepting; idle sessions get 421 now, busy ones after their transaction's reply;
 * idle(arg) runs on the loop once no connection is left (at once when none is). */
void dime_smtpd_drain(struct dime_smtpd *s, void (*idle)(void *arg), void *arg);
/* Connections open now. */
size_t dime_smtpd_n_conns(const struct dime_smtpd *s);
/* Close the listeners and free. Call it once no connection is left (after drain's idle
 * callback): a connection lives until its pool job has completed. NULL-safe. */
void dime_smtpd_free(struct dime_smtpd *s);

/* Does c have a listener of mode smtp or lmtp? */
int dime_smtpd_wanted(const struct dime_dconf *c);

#ifdef __cplusplus
}
#endif
#endif

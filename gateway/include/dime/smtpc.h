#ifndef DIME_GATEWAY_SMTPC_H
#define DIME_GATEWAY_SMTPC_H
/* A blocking SMTP/LMTP client for one hop the operator controls: the MTA's reinjection smtpd
 * (Postfix's 127.0.0.1:10026, docs/postfix.md), to which the gateway hands naked mail. One
 * transaction per call on a connection kept open between calls (RSET and reuse; a new one when
 * the peer closed it). Deadlines on every step (poll), no TLS (loopback by design: the
 * operator's own MTA), ESMTP with PIPELINING not required. The message is sent with CRLF line
 * ends, bare LF and bare CR made CRLF, and dot-stuffed: the bytes the peer stores are the
 * bytes given. Not thread-safe: one client per thread. */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dime_smtpc_conf {
	const char *host; /* numeric address or name */
	unsigned port;
	const char *helo;	  /* our name in EHLO/LHLO */
	int lmtp;		  /* 1: LHLO, and one reply per recipient after DATA */
	unsigned timeout_ms;	  /* connect, and each reply (0: 300 s, RFC 5321 4.5.3.2) */
	unsigned data_timeout_ms; /* the reply to the final dot (0: 600 s) */
};

/* The outcome of one transaction: the decisive reply (the first one that was not positive, or
 * the final dot's), with the stage it answered. */
struct dime_smtpc_reply {
	int code;	   /* 250, 4xx, 5xx; 0 when no reply came (connection lost, timeout) */
	char enh[16];	   /* its enhanced status code when the peer gave one, else "" */
	char text[256];	   /* its text (the last line's, printable ASCII, cut to fit) */
	const char *stage; /* "connect", "greeting", "ehlo", "mail", "rcpt", "data", "dot" */
};

struct dime_smtpc;

/* Returns: DIME_OK, DIME_E_NOMEM, DIME_E_INVALID (no host, port 0, helo missing). Connects on
 * the first send. Out: *out (NULL on failure). conf's strings are copied. */
DIME_MUST_CHECK int dime_smtpc_new(struct dime_smtpc **out, const struct dime_smtpc_conf *conf);
void dime_smtpc_free(struct dime_smtpc *c); /* NULL-safe: QUIT if connected, then close */

/* One transaction: MAIL FROM:<from> [SMTPUTF8] [BODY=8BITMIME], RCPT TO:<to> for each of the n
 * recipients, DATA, the message. from "" is the null reverse path. Connects (or reconnects)
 * as needed.
 * Returns: DIME_OK when a reply decided (r->code 250 all accepted; 4xx or 5xx the first
 *          refusal: nothing was accepted, the transaction was reset); DIME_E_IO when the
 *          connection failed or a deadline passed (r->code 0; after the final dot this means
 *          the outcome is unknown: the caller answers 4xx and the MTA retries, a duplicate
 *          being the lesser harm); DIME_E_INVALID (an address with CR, LF, '<' or '>', n 0);
 *          DIME_E_NOMEM. With lmtp, r is the first recipient's non-250 reply, or 250. */
DIME_MUST_CHECK int dime_smtpc_send(struct dime_smtpc *c, struct dime_smtpc_reply *r,
				    const char *from, const char *const *to, size_t n,
				    const uint8_t *msg, size_t len, int utf8);

#ifdef __cplusplus
}
#endif
#endif

#ifndef DIME_GATEWAY_DMTP_CLIENT_H
#define DIME_GATEWAY_DMTP_CLIENT_H
/* The client side of a DMTP session (DIME spec Part 7, WIRE.md "DMTP"): replies in, commands
 * out, the mirror of dime/dmtp_session.h. It opens the session (banner, EHLO, and on a
 * dual-protocol host `STARTTLS <host> MODE=DMTP` then EHLO again), runs one operation at a time
 * (SGNT, HIST, VRFY, or a message: MAIL, RCPT, DATA with dot-stuffing) and ends it with QUIT. It
 * never touches sockets, TLS, clocks or keys: the caller connects, does the handshakes, checks
 * the certificate against the management record, and applies the timeouts the actions name.
 * Not thread-safe; distinct clients are independent. */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"
#include "dime/dmtp.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DIME_DMTP_CLIENT_REPLY_DEFAULT (256u * 1024u) /* octets of one reply's text (a HIST) */

enum dime_dmtp_client_mode {
	DIME_DMTP_CLIENT_IMPLICIT = 1, /* TLS first (port 26), then the banner */
	DIME_DMTP_CLIENT_DUAL = 2      /* plaintext banner, then STARTTLS <host> MODE=DMTP */
};

struct dime_dmtp_client_conf {
	enum dime_dmtp_client_mode mode;
	const char *helo;     /* our host name for EHLO; borrowed for the client's life */
	const char *tls_host; /* DUAL: the host named in STARTTLS (the peer's name) */
	size_t reply_max;     /* 0: DIME_DMTP_CLIENT_REPLY_DEFAULT */
};

enum dime_dmtp_client_op_kind {
	DIME_DMTP_CLIENT_SGNT = 1, /* SGNT FOR=<x> [FINGERPRINT=[fp]] */
	DIME_DMTP_CLIENT_HIST = 2, /* HIST FOR=<mailbox> [START=[fp]] [STOP=[fp]] */
	DIME_DMTP_CLIENT_VRFY = 3, /* VRFY FOR=<x> FINGERPRINT=[fp] */
	DIME_DMTP_CLIENT_SEND = 4  /* MAIL, RCPT, DATA */
};

/* One operation. Strings and msg are borrowed until its result is done. */
struct dime_dmtp_client_op {
	enum dime_dmtp_client_op_kind kind;
	const char *target;	    /* SGNT, VRFY: domain or mailbox; HIST: mailbox */
	const char *fp;		    /* SGNT (optional), VRFY */
	const char *start, *stop;   /* HIST, optional */
	const char *from, *from_fp; /* SEND: MAIL FROM=<from> FINGERPRINT=[from_fp] */
	const char *to, *to_fp;	    /* SEND: RCPT TO=<to> FINGERPRINT=[to_fp] */
	const uint8_t *msg;	    /* SEND: the armored message, LF or CRLF lines */
	size_t msg_len;
};

struct dime_dmtp_client_result {
	int code; /* the final reply: of the SGNT/HIST/VRFY, or of the SEND step that ended */
	const char *stage; /* "SGNT", "HIST", "VRFY", "MAIL", "RCPT" or "DATA" */
	const char *text;  /* the reply's text, lines joined by LF (armors for 270/280/290) */
	char hash[DIME_DMTP_FP_CHARS + 1]; /* 254 ACCEPTED= / 255 DUPLICATE=, else "" */
};

/* Actions, from dime_dmtp_client_actions(). Send the pending output first, always. */
#define DIME_DMTP_CLIENT_ACT_TLS    0x01u /* start TLS (DUAL), then dime_dmtp_client_tls_done */
#define DIME_DMTP_CLIENT_ACT_READY  0x02u /* idle: submit an operation or quit */
#define DIME_DMTP_CLIENT_ACT_RESULT 0x04u /* an operation ended: read it, then result_done */
#define DIME_DMTP_CLIENT_ACT_CLOSE  0x08u /* the session is over: close */
#define DIME_DMTP_CLIENT_ACT_DATA   0x10u /* waiting for the DATA reply: the long timeout */

struct dime_dmtp_client;

/* Returns: DIME_OK, DIME_E_NOMEM, DIME_E_INVALID (no helo; DUAL without tls_host; a mode).
 * Out: *out (dime_dmtp_client_free), NULL on failure. */
DIME_MUST_CHECK int dime_dmtp_client_new(struct dime_dmtp_client **out,
					 const struct dime_dmtp_client_conf *conf);
void dime_dmtp_client_free(struct dime_dmtp_client *c); /* NULL-safe; wipes its buffers */

/* Feed received bytes (plaintext: after TLS, what TLS decrypted). Lines are taken while the
 * machine can use them; it stops at an action that needs the caller (TLS, a result, close).
 * Returns: octets consumed; feed the rest again after the action. */
size_t dime_dmtp_client_feed(struct dime_dmtp_client *c, const uint8_t *p, size_t len);

unsigned dime_dmtp_client_actions(const struct dime_dmtp_client *c);

/* Pending output: *len octets at the returned pointer, valid until the next call on c;
 * out_done drops the first n. */
const uint8_t *dime_dmtp_client_out(const struct dime_dmtp_client *c, size_t *len);
void dime_dmtp_client_out_done(struct dime_dmtp_client *c, size_t n);

/* Start an operation (only when READY). Returns: DIME_OK, DIME_E_INVALID (not ready, or a
 * value the command grammar refuses: why says which), DIME_E_NOMEM. */
DIME_MUST_CHECK int dime_dmtp_client_submit(struct dime_dmtp_client *c,
					    const struct dime_dmtp_client_op *op, const char **why);

/* The ended operation's result (NULL when none); valid until result_done. A SEND refused at
 * MAIL or RCPT resets the transaction (RSET) before READY comes back. */
const struct dime_dmtp_client_result *dime_dmtp_client_result(const struct dime_dmtp_client *c);
void dime_dmtp_client_result_done(struct dime_dmtp_client *c);

/* End the session: QUIT, then CLOSE once the server answers (or at once when not READY). */
void dime_dmtp_client_quit(struct dime_dmtp_client *c);

/* The TLS handshake asked by ACT_TLS ended: ok = 1 with TLS 1.2 and the DMTP cipher. */
void dime_dmtp_client_tls_done(struct dime_dmtp_client *c, int ok);

/* Why the session closed before QUIT completed ("" when it did not), and the last reply code
 * seen (421 when the server closed on us, say). */
const char *dime_dmtp_client_error(const struct dime_dmtp_client *c);
int dime_dmtp_client_last_code(const struct dime_dmtp_client *c);

#ifdef __cplusplus
}
#endif
#endif

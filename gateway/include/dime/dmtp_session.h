#ifndef DIME_GATEWAY_DMTP_SESSION_H
#define DIME_GATEWAY_DMTP_SESSION_H
/* The DMTP session machine (DIME spec Part 7, WIRE.md "DMTP"): bytes in, actions out. It splits
 * lines, tracks the session's state (banner, HELO/EHLO, MAIL, RCPT, DATA, TLS, DMTP or SMTP mode
 * on a dual-protocol port), formats every reply and asks its caller for what it cannot know
 * (origin signets, hosted domains, the verdict on a message, signets to serve). It never touches
 * keys, sockets, clocks or the store, so the server glue owns all of those. One session per
 * connection; a session is not thread-safe, distinct sessions are independent. The rules chosen
 * where the spec is silent are in docs/dimed.md. */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"
#include "dime/dmtp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Replies above this many unsent octets stop dime_dmtp_sess_feed (the caller flushes first). */
#define DIME_DMTP_SESS_OUT_HIGH	   16384u
#define DIME_DMTP_SESS_HASH_CHARS  86u	     /* SHA-512, base64 without padding */
#define DIME_DMTP_SESS_DEF_MAX_MSG 33554432u /* armored octets of one DATA when conf says 0 */

/* What the listener is. */
enum dime_dmtp_sess_kind {
	DIME_DMTP_SESS_DMTP = 1, /* implicit TLS (port 26): DMTP mode from the banner on */
	DIME_DMTP_SESS_DUAL = 2 /* plaintext ESMTP + DMTP banner; STARTTLS <h> MODE=DMTP elevates */
};

struct dime_dmtp_sess_conf {
	enum dime_dmtp_sess_kind kind;
	const char *hostname;  /* ours, in the banner and replies; borrowed for the session */
	size_t max_message;    /* octets of one DATA after unstuffing; 0: DEF_MAX_MSG */
	unsigned max_cmds;     /* command lines per session before 421; 0: no cap */
	int early_talk_reject; /* 1: bytes before the banner get 554 and a close; 0: held */
};

/* Actions, from dime_dmtp_sess_actions(). Send the pending output first, always. */
#define DIME_DMTP_ACT_QUERY 0x01u /* a query is open: answer it (dime_dmtp_sess_query) */
#define DIME_DMTP_ACT_TLS   0x02u /* after the output, start TLS; drop any buffered plaintext */
#define DIME_DMTP_ACT_CLOSE 0x04u /* after the output, close; feed nothing more */
#define DIME_DMTP_ACT_DATA  0x08u /* receiving a message: the caller's DATA timeout applies */

/* What the session asks. */
enum dime_dmtp_qkind {
	DIME_DMTP_Q_ORIGIN =
	    1,		      /* MAIL FROM=<domain> FINGERPRINT=[fp]: is the origin signet known? */
	DIME_DMTP_Q_RCPT = 2, /* RCPT TO=<domain> FINGERPRINT=[fp]: hosted, signet current? */
	DIME_DMTP_Q_DATA = 3, /* the message: verify, spool, answer */
	DIME_DMTP_Q_SGNT = 4,
	DIME_DMTP_Q_HIST = 5,
	DIME_DMTP_Q_VRFY = 6
};

/* One open query. cmd is the command that opened it (for DATA: the transaction's RCPT). For
 * DATA, data/data_len is the message as received: dot-unstuffed, CRLF made LF, the final
 * "<LF>.<LF>" removed except for the last line's LF. All of it borrowed from the session until
 * the answer or dime_dmtp_sess_free. */
struct dime_dmtp_query {
	enum dime_dmtp_qkind kind;
	uint64_t id; /* unique per session; an answer names it */
	struct dime_dmtp_cmd cmd;
	struct dime_dmtp_cmd mail; /* DATA: the transaction's MAIL command */
	const uint8_t *data;
	size_t data_len;
};

/* The answers; each query kind allows the ones listed (others are refused, see _answer). */
enum dime_dmtp_verdict {
	DIME_DMTP_V_OK = 1,	    /* ORIGIN, RCPT: 250 */
	DIME_DMTP_V_ORIGIN_TEMP,    /* ORIGIN: 470 ORIGIN SIGNET UNAVAILABLE (retry later) */
	DIME_DMTP_V_ORIGIN_PERM,    /* ORIGIN: 570 ORIGIN SIGNET UNAVAILABLE (72 h of failures) */
	DIME_DMTP_V_ORIGIN_INVALID, /* ORIGIN: 575 INVALID ORIGIN SIGNET */
	DIME_DMTP_V_RCPT_INVALID,   /* RCPT: 576 INVALID DESTINATION SIGNET (or domain not ours) */
	DIME_DMTP_V_ACCEPTED,	    /* DATA: 254 ACCEPTED=hash */
	DIME_DMTP_V_DUPLICATE,	    /* DATA: 255 DUPLICATE=hash */
	DIME_DMTP_V_INVALID,	    /* DATA: 451 DATA CORRUPTED (not D/MIME) */
	DIME_DMTP_V_BAD_ORIGIN,	    /* DATA: 578 INVALID ORIGIN SIGNATURE */
	DIME_DMTP_V_UNKNOWN_RECIPIENT, /* DATA: 510 INVALID RECIPIENT */
	DIME_DMTP_V_EXPIRED,	       /* DATA: 586 INVALID RECIPIENT SIGNET */
	DIME_DMTP_V_ORG_SIGNET,	       /* SGNT, VRFY: 270 + armor */
	DIME_DMTP_V_USER_SIGNET,       /* SGNT, VRFY: 280 + armor */
	DIME_DMTP_V_HISTORY,	       /* HIST: 290 + the armors of the chain */
	DIME_DMTP_V_ORG_CURRENT,       /* VRFY: 271 ORGANIZATIONAL SIGNET CURRENT */
	DIME_DMTP_V_USER_CURRENT,      /* VRFY: 281 USER SIGNET CURRENT */
	DIME_DMTP_V_UNAVAILABLE,       /* SGNT, HIST, VRFY: 576 SIGNET UNAVAILABLE */
	DIME_DMTP_V_SIGNET_TEMP,       /* SGNT, HIST, VRFY: 476 SIGNET TEMPORARILY UNAVAILABLE */
	DIME_DMTP_V_TEMPFAIL,	       /* any: 451 (store busy, spool full, pool full) */
	DIME_DMTP_V_BUSY	       /* any: 421 and close */
};

struct dime_dmtp_answer {
	uint64_t id; /* the query's */
	enum dime_dmtp_verdict verdict;
	char hash[DIME_DMTP_SESS_HASH_CHARS + 1]; /* ACCEPTED, DUPLICATE: 86 base64 chars */
	const char *armor; /* ORG/USER_SIGNET, HISTORY: armored text, LF or CRLF lines; borrowed */
	size_t armor_len;
};

struct dime_dmtp_sess;

/* A session for one connection. Nothing is sent until dime_dmtp_sess_start.
 * Returns: DIME_OK, DIME_E_NOMEM, DIME_E_INVALID (no hostname, hostname over 254 octets or
 *          not printable ASCII, kind unknown).
 * Out: *out owned by the caller (dime_dmtp_sess_free), NULL on failure. conf->hostname is
 *      borrowed for the session's life. */
DIME_MUST_CHECK int dime_dmtp_sess_new(struct dime_dmtp_sess **out,
				       const struct dime_dmtp_sess_conf *conf);

/* Free s (NULL-safe) and wipe its buffers. An open query's data pointer dies with it. */
void dime_dmtp_sess_free(struct dime_dmtp_sess *s);

/* Queue the banner: `220 <host> DMTP ...` (DMTP kind, after the TLS handshake) or `220 <host>
 * ESMTP DMTP ...` (dual). Once only; later calls do nothing. */
void dime_dmtp_sess_start(struct dime_dmtp_sess *s);

/* Feed received bytes. Lines are processed one at a time until all are used or one of: a query
 * opens, TLS must start, the session closes, or DIME_DMTP_SESS_OUT_HIGH octets of output wait.
 * Before the banner nothing is consumed (or, with early_talk_reject, 554 and a close).
 * Returns: octets consumed; the caller keeps the rest and feeds it again once the action is done
 * (after TLS starts it must drop it instead: plaintext never crosses into TLS). After a close
 * everything is consumed and ignored. */
size_t dime_dmtp_sess_feed(struct dime_dmtp_sess *s, const uint8_t *p, size_t len);

/* DIME_DMTP_ACT_* bits that hold now. */
unsigned dime_dmtp_sess_actions(const struct dime_dmtp_sess *s);

/* Pending output (LF-terminated reply lines): *len octets at the returned pointer, valid until
 * the next call on s. dime_dmtp_sess_out_done drops the first n of them (n <= *len). */
const uint8_t *dime_dmtp_sess_out(const struct dime_dmtp_sess *s, size_t *len);
void dime_dmtp_sess_out_done(struct dime_dmtp_sess *s, size_t n);

/* The open query, or NULL when none (borrowed, valid until the answer or free). */
const struct dime_dmtp_query *dime_dmtp_sess_query(const struct dime_dmtp_sess *s);

/* Answer the open query: the session formats the reply and goes on.
 * Returns: DIME_OK;
 *          DIME_E_INVALID no query open, a stale id, a verdict the query kind does not allow, a
 *          hash that is not 86 base64 characters, armor missing or not printable ASCII lines.
 *          The query is then still open except for a bad hash or armor, which answers 451
 *          (the caller's bug must not leave the peer hanging). */
DIME_MUST_CHECK int dime_dmtp_sess_answer(struct dime_dmtp_sess *s,
					  const struct dime_dmtp_answer *a);

/* The host of the STARTTLS that set DIME_DMTP_ACT_TLS ("" for a bare STARTTLS): it picks the
 * certificate. NUL-terminated, borrowed. */
const char *dime_dmtp_sess_tls_host(const struct dime_dmtp_sess *s);

enum dime_dmtp_tls_result {
	DIME_DMTP_TLS_FAILED = 0, /* handshake failed: close, nothing is sent */
	DIME_DMTP_TLS_OK = 1,	  /* with ECDHE-RSA-AES256-GCM-SHA384 */
	DIME_DMTP_TLS_WEAK = 2	  /* up, but another cipher: a DMTP elevation must fail (421) */
};

/* The handshake asked by DIME_DMTP_ACT_TLS ended. On success every piece of state is reset
 * (HELO included, spec "DUAL PROTOCOL HOSTS") and `250 OK DMTP` or `250 OK ESMTP` is queued.
 * Does nothing when no TLS start is pending. */
void dime_dmtp_sess_tls_done(struct dime_dmtp_sess *s, enum dime_dmtp_tls_result r);

/* The caller's timer fired: `421 <host> TIMEOUT` and close (nothing if already closing). */
void dime_dmtp_sess_timeout(struct dime_dmtp_sess *s);

/* The server is stopping: an idle session gets `421 <host> SHUTTING DOWN` and closes now; one in
 * DATA or with a query open finishes that transaction first, then gets the 421. */
void dime_dmtp_sess_drain(struct dime_dmtp_sess *s);

/* 1 once the connection is in DMTP mode (implicit TLS or elevated), else 0. */
int dime_dmtp_sess_is_dmtp(const struct dime_dmtp_sess *s);

/* The last reply code queued (0 before any), and the verb of the last command line parsed (-1
 * before any or when unparsable): for the caller's log lines, which must not carry arguments. */
int dime_dmtp_sess_last_code(const struct dime_dmtp_sess *s);
int dime_dmtp_sess_last_verb(const struct dime_dmtp_sess *s);

#ifdef __cplusplus
}
#endif
#endif

#ifndef DIME_GATEWAY_SMTP_SESSION_H
#define DIME_GATEWAY_SMTP_SESSION_H
/* The ESMTP server session machine (RFC 5321, with RFC 1870 SIZE, 2920 PIPELINING, 6152
 * 8BITMIME, 6531 SMTPUTF8, 2034 ENHANCEDSTATUSCODES, 3207 STARTTLS): bytes in, actions out, in
 * the shape of dmtp_session.h. It splits command lines, checks their syntax and sequence, checks
 * envelope addresses, de-frames DATA and formats every reply; it asks its caller whatever needs
 * policy, the store or the engine (may this sender / recipient pass, what becomes of this
 * message). No sockets, clocks, TLS library or store. One session per connection; a session is
 * not thread-safe, distinct sessions are independent. With conf->lmtp it speaks LMTP (RFC 2033):
 * LHLO instead of HELO/EHLO, and one reply per accepted recipient after DATA. The rules chosen
 * where the RFCs leave room are in docs/smtp.md ("SMTP session"). */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Replies above this many unsent octets stop dime_smtp_sess_feed (the caller flushes first). */
#define DIME_SMTP_SESS_OUT_HIGH	     16384u
#define DIME_SMTP_SESS_DEF_MAX_MSG   33554432u /* octets of one message when conf says 0 */
#define DIME_SMTP_SESS_DEF_MAX_RCPTS 100u      /* recipients per transaction when conf says 0 */
#define DIME_SMTP_SESS_MAX_RCPTS     100000u   /* the largest max_rcpts accepted */
#define DIME_SMTP_LINE_MAX	     512u /* a command line, CRLF included (RFC 5321 4.5.3.1.4) */
#define DIME_SMTP_TEXT_LINE_MAX	     998u /* a message line without its CRLF (RFC 5322 2.1.1) */
#define DIME_SMTP_LOCAL_MAX	     64u  /* octets of a local part (RFC 5321 4.5.3.1.1) */
#define DIME_SMTP_DOMAIN_MAX	     255u /* octets of a domain (RFC 5321 4.5.3.1.2) */
#define DIME_SMTP_PATH_MAX	     256u /* a path with its <> (RFC 5321 4.5.3.1.3) */
#define DIME_SMTP_HOST_MAX	     255u /* conf->hostname */
#define DIME_SMTP_SESS_TEXT_MAX	     400u /* a caller's reply text, after sanitizing */

/* What a bare line end (an LF without its CR, a CR without its LF) does, in commands and DATA. */
enum dime_smtp_bare_lf {
	/* Command lines may end in a bare LF; in DATA a bare LF ends a line and is stored as CRLF,
	 * a bare CR is kept as data. Either way DATA ends only at <CRLF>.<CRLF> (RFC 5321 4.1.1.4;
	 * ECOSYSTEM P3, P4). The default, like Postfix's smtpd_forbid_bare_newline=normalize. */
	DIME_SMTP_BARE_LF_NORMALIZE = 0,
	/* A command line ending in a bare LF gets 500 5.5.2 and is not run; a message holding a
	 * bare LF or bare CR is read to its real end and refused with 550 5.5.2. */
	DIME_SMTP_BARE_LF_REJECT = 1
};

struct dime_smtp_sess_conf {
	const char *hostname; /* ours, in the banner and replies; borrowed for the session */
	size_t max_message;   /* octets of one message after unstuffing (CRLF lines); 0: DEF */
	unsigned max_rcpts;   /* accepted recipients per transaction; 0: DEF; beyond: 452 */
	unsigned max_cmds;    /* command lines per session before 421; 0: no cap */
	int tls_available;    /* 1: advertise and offer STARTTLS (a certificate is loaded) */
	enum dime_smtp_bare_lf bare_lf;
	int reject_long_lines; /* 1: a message line over 998 octets gets 550 5.5.2 at the end;
				  0: accepted as is, flagged DIME_SMTP_DATA_LONG_LINES */
	int early_talk_reject; /* 1: bytes before the banner get 554 and a close; 0: held */
	int lmtp;	       /* 1: LMTP (RFC 2033): LHLO, and a DATA answer per recipient */
};

/* Actions, from dime_smtp_sess_actions(). Send the pending output first, always. */
#define DIME_SMTP_ACT_QUERY 0x01u /* a query is open: answer it (dime_smtp_sess_answer) */
#define DIME_SMTP_ACT_TLS   0x02u /* after the output, start TLS; drop unconsumed plaintext */
#define DIME_SMTP_ACT_CLOSE 0x04u /* after the output, close; feed nothing more */
#define DIME_SMTP_ACT_DATA  0x08u /* receiving a message: the caller's DATA timeout applies */

/* The commands, for dime_smtp_sess_last_verb. */
enum dime_smtp_verb {
	DIME_SMTP_HELO = 0,
	DIME_SMTP_EHLO,
	DIME_SMTP_MAIL,
	DIME_SMTP_RCPT,
	DIME_SMTP_DATA,
	DIME_SMTP_RSET,
	DIME_SMTP_NOOP,
	DIME_SMTP_QUIT,
	DIME_SMTP_VRFY,
	DIME_SMTP_HELP,
	DIME_SMTP_STARTTLS,
	DIME_SMTP_LHLO,
	DIME_SMTP_N_VERBS
};

/* MAIL's BODY= parameter (RFC 6152). */
enum dime_smtp_body {
	DIME_SMTP_BODY_NONE = 0, /* not given */
	DIME_SMTP_BODY_7BIT = 1,
	DIME_SMTP_BODY_8BITMIME = 2
};

/* A transaction's MAIL command. */
struct dime_smtp_mail {
	char addr[DIME_SMTP_PATH_MAX + 1]; /* the reverse-path without <> ("" for <>), source
					      route stripped; NUL-terminated; UTF-8 only with
					      smtputf8 */
	uint64_t size;			   /* SIZE=, 0 when not given */
	enum dime_smtp_body body;
	int smtputf8; /* SMTPUTF8 was given */
};

/* What the session asks. */
enum dime_smtp_qkind {
	DIME_SMTP_Q_MAIL = 1, /* may this sender open a transaction? */
	DIME_SMTP_Q_RCPT = 2, /* may this recipient be added? */
	DIME_SMTP_Q_DATA = 3  /* the message: handle it durably, then answer */
};

/* DATA query flags: what the message held (for the caller's policy and logs). */
#define DIME_SMTP_DATA_8BIT	  0x01u /* an octet over 0x7F */
#define DIME_SMTP_DATA_LONG_LINES 0x02u /* a line over DIME_SMTP_TEXT_LINE_MAX (accepted as is) */
#define DIME_SMTP_DATA_BARE_LF	  0x04u /* a bare LF, stored as CRLF (NORMALIZE) */
#define DIME_SMTP_DATA_BARE_CR	  0x08u /* a bare CR, kept as data (NORMALIZE) */

/* One open query; everything borrowed from the session until the answer or dime_smtp_sess_free.
 * For DATA, data/data_len is the message as received: dot-unstuffed, every line ending in CRLF,
 * the final "<CRLF>.<CRLF>" removed except for the last line's CRLF. */
struct dime_smtp_query {
	enum dime_smtp_qkind kind;
	uint64_t id;			   /* unique per session; an answer names it */
	const struct dime_smtp_mail *mail; /* MAIL: the command asked about; RCPT, DATA: the
					      transaction's */
	const char *rcpt;		   /* RCPT: the forward-path asked about (no <>, source
					      route stripped); NULL otherwise */
	const char *const *rcpts; /* RCPT, DATA: the recipients accepted so far, in order */
	size_t n_rcpts;
	const uint8_t *data; /* DATA only */
	size_t data_len;
	unsigned flags;	   /* DATA: DIME_SMTP_DATA_* */
	size_t rcpt_index; /* LMTP DATA: the recipient (index in rcpts) the next answer is for */
};

/* The answers. Reply per query kind (the caller's status and text may replace the defaults):
 *             MAIL                RCPT                DATA
 *   OK        250 2.1.0 Ok        250 2.1.5 Ok        250 2.0.0 Ok[: text]
 *   TEMPFAIL  451 4.3.0           451 4.3.0           451 4.3.0
 *   NOSPACE   452 4.3.1           452 4.3.1           452 4.3.1
 *   REJECT    550 5.1.0           550 5.1.1           554 5.6.0
 *   POLICY    550 5.7.1           554 5.7.1           554 5.7.1
 *   BUSY      421 4.3.2 and close, any kind
 * A DATA answer ends the transaction whatever the verdict. After-queue filter style: one verdict
 * for all of the transaction's recipients (Postfix then sends one recipient per transaction when
 * <transport>_destination_recipient_limit = 1). LMTP: the DATA query takes one answer per
 * accepted recipient, in the order of rcpts (q->rcpt_index says which is next); each queues that
 * recipient's reply, the query closes after the last (BUSY closes it and the session at once). */
enum dime_smtp_verdict {
	DIME_SMTP_V_OK = 1,
	DIME_SMTP_V_TEMPFAIL,
	DIME_SMTP_V_NOSPACE,
	DIME_SMTP_V_REJECT,
	DIME_SMTP_V_POLICY,
	DIME_SMTP_V_BUSY
};

struct dime_smtp_answer {
	uint64_t id; /* the query's */
	enum dime_smtp_verdict verdict;
	/* NULL: the default; else an enhanced status code "c.s.d" (RFC 3463: subject and detail
	 * of 1 to 3 digits) whose class c must match the verdict's (2, 4 or 5); not for BUSY. */
	const char *status;
	/* NULL or "": the default text; else the reply text, made a single line: octets outside
	 * printable ASCII become '?', and it is cut at DIME_SMTP_SESS_TEXT_MAX octets. */
	const char *text;
};

struct dime_smtp_sess;

/* A session for one connection. Nothing is sent until dime_smtp_sess_start.
 * Returns: DIME_OK, DIME_E_NOMEM, DIME_E_INVALID (no hostname, hostname over 255 octets or not
 *          printable ASCII without spaces and <>, max_rcpts over DIME_SMTP_SESS_MAX_RCPTS,
 *          bare_lf unknown).
 * Out: *out owned by the caller (dime_smtp_sess_free), NULL on failure. conf->hostname is
 *      borrowed for the session's life. */
DIME_MUST_CHECK int dime_smtp_sess_new(struct dime_smtp_sess **out,
				       const struct dime_smtp_sess_conf *conf);

/* Free s (NULL-safe) and wipe its buffers. An open query's pointers die with it. */
void dime_smtp_sess_free(struct dime_smtp_sess *s);

/* Queue the banner `220 <host> ESMTP dimed` (LMTP: `220 <host> LMTP dimed`). Once only; later
 * calls do nothing. */
void dime_smtp_sess_start(struct dime_smtp_sess *s);

/* Feed received bytes. Lines are processed one at a time (pipelining: every command in order)
 * until all are used or one of: a query opens, TLS must start, the session closes, or
 * DIME_SMTP_SESS_OUT_HIGH octets of output wait. Before the banner nothing is consumed (or, with
 * early_talk_reject, 554 and a close).
 * Returns: octets consumed; the caller keeps the rest and feeds it again once the action is done
 * (when TLS starts it must drop it instead: plaintext never crosses into TLS, RFC 3207 and
 * ECOSYSTEM P11). After a close everything is consumed and ignored. */
size_t dime_smtp_sess_feed(struct dime_smtp_sess *s, const uint8_t *p, size_t len);

/* DIME_SMTP_ACT_* bits that hold now. CLOSE comes alone. */
unsigned dime_smtp_sess_actions(const struct dime_smtp_sess *s);

/* Pending output (CRLF-terminated reply lines): *len octets at the returned pointer, valid until
 * the next call on s. dime_smtp_sess_out_done drops the first n of them (n <= *len). */
const uint8_t *dime_smtp_sess_out(const struct dime_smtp_sess *s, size_t *len);
void dime_smtp_sess_out_done(struct dime_smtp_sess *s, size_t n);

/* The open query, or NULL when none (borrowed, valid until the answer or free). */
const struct dime_smtp_query *dime_smtp_sess_query(const struct dime_smtp_sess *s);

/* Answer the open query: the session formats the reply and goes on (LMTP DATA: the reply for
 * recipient q->rcpt_index; the query stays open until every recipient has had its answer).
 * Returns: DIME_OK;
 *          DIME_E_INVALID no query open, a stale id, an unknown verdict, a malformed status or
 *          one whose class does not match the verdict. The query then stays open. */
DIME_MUST_CHECK int dime_smtp_sess_answer(struct dime_smtp_sess *s,
					  const struct dime_smtp_answer *a);

/* The handshake asked by DIME_SMTP_ACT_TLS ended. ok: the session starts afresh (RFC 3207 4.2:
 * HELO/EHLO and any transaction forgotten, the client must EHLO again, STARTTLS no longer
 * offered); nothing is queued. !ok: close, nothing is sent. Does nothing when no TLS start is
 * pending. */
void dime_smtp_sess_tls_done(struct dime_smtp_sess *s, int ok);

/* 1 once a STARTTLS handshake succeeded, else 0. */
int dime_smtp_sess_is_tls(const struct dime_smtp_sess *s);

/* The caller's timer fired: `421 4.4.2 <host> Error: timeout exceeded` and close (nothing if
 * already closing). */
void dime_smtp_sess_timeout(struct dime_smtp_sess *s);

/* The server is stopping: an idle session gets `421 4.3.2 <host> Service shutting down` and
 * closes now; one in DATA, with a query open or a TLS start pending finishes that first, then
 * gets the 421. */
void dime_smtp_sess_drain(struct dime_smtp_sess *s);

/* The last reply code queued (0 before any), and the verb of the last command line parsed
 * (enum dime_smtp_verb, or -1 before any or when unparsable): for the caller's log lines, which
 * must not carry arguments. dime_smtp_verb_name gives "EHLO" etc., "?" for anything else. */
int dime_smtp_sess_last_code(const struct dime_smtp_sess *s);
int dime_smtp_sess_last_verb(const struct dime_smtp_sess *s);
const char *dime_smtp_verb_name(int verb);

#ifdef __cplusplus
}
#endif
#endif

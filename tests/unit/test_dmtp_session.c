/* The DMTP session machine: scripted dialogues (send, expect the replies, answer the queries,
 * finish TLS) covering every command and reply code on the DMTP port and the dual-protocol
 * port, and the ECOSYSTEM §6.2 cases that live at this layer (P1, P6-P9, P11-P16, P24 codes).
 * Every script runs three times: input fed whole, one byte at a time and in 3-byte pieces. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dime/dmtp_session.h"
#include "tlib.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

#define FP86                                                                                       \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/ABCDEFGHIJKLMNOPQRSTUg"
#define H86	    "pKvURIxJVi2CgRXROh/M6pJ/UrTVRZKX+LQ+QtqJI4vBNibkPcs43bCCSIkn7JBPtCBXRDmD6IWFF51QVRr+Yg"
#define BANNER_DMTP "220 <mx.test> DMTP dimed ready\n"
#define BANNER_DUAL "220 <mx.test> ESMTP DMTP dimed ready\n"
#define EHLO_DMTP   "250-SIZE 33554432\n250 OK <mx.test>\n"
#define EHLO_PLAIN  "250-DMTP\n250-STARTTLS\n250 OK <mx.test>\n"
#define MAIL_LINE   "MAIL FROM=<alpha.example> FINGERPRINT=[" FP86 "]\n"
#define RCPT_LINE   "RCPT TO=<mx.test> FINGERPRINT=[" FP86 "]\n"
#define ORG_ARMOR                                                                                  \
	"-----BEGIN ORGANIZATIONAL SIGNET-----\r\nBVAAAWEBQt1Wjk8S\nAAAA\n"                        \
	"-----END ORGANIZATIONAL SIGNET-----\n"

/* Script operations. */
enum op {
	OP_END = 0,
	OP_START,  /* dime_dmtp_sess_start */
	OP_SEND,   /* s: bytes to feed (len: n, or strlen) */
	OP_EXPECT, /* s: the output since the last EXPECT; a line ending in '*' matches a prefix */
	OP_QUERY,  /* v: the open query's kind; s: for DATA, its data (NULL: not checked) */
	OP_NOQ,	   /* no query is open */
	OP_ANSWER, /* v: the verdict (hash H86; armor s) */
	OP_TLS,	   /* TLS is pending, host s; finish with result v (held plaintext dropped) */
	OP_CLOSED, /* the session is closing */
	OP_OPEN,   /* the session is not closing */
	OP_DRAIN,
	OP_TIMEOUT,
	OP_ACTS /* v: the exact action bits */
};

struct step {
	enum op op;
	const char *s;
	int v;
	size_t n;
};

struct script {
	const char *name;
	enum dime_dmtp_sess_kind kind;
	size_t max_message;
	unsigned max_cmds;
	int early;
	struct step steps[64];
};

#define START                                                                                      \
	{                                                                                          \
		OP_START, NULL, 0, 0                                                               \
	}
#define SEND(x)                                                                                    \
	{                                                                                          \
		OP_SEND, (x), 0, 0                                                                 \
	}
#define SENDN(x, n)                                                                                \
	{                                                                                          \
		OP_SEND, (x), 0, (n)                                                               \
	}
#define EXPECT(x)                                                                                  \
	{                                                                                          \
		OP_EXPECT, (x), 0, 0                                                               \
	}
#define QUERY(k)                                                                                   \
	{                                                                                          \
		OP_QUERY, NULL, DIME_DMTP_Q_##k, 0                                                 \
	}
#define QDATA(d)                                                                                   \
	{                                                                                          \
		OP_QUERY, (d), DIME_DMTP_Q_DATA, 0                                                 \
	}
#define NOQ                                                                                        \
	{                                                                                          \
		OP_NOQ, NULL, 0, 0                                                                 \
	}
#define ANSWER(v)                                                                                  \
	{                                                                                          \
		OP_ANSWER, NULL, DIME_DMTP_V_##v, 0                                                \
	}
#define ANSWER_A(v, a)                                                                             \
	{                                                                                          \
		OP_ANSWER, (a), DIME_DMTP_V_##v, 0                                                 \
	}
#define TLS(host, r)                                                                               \
	{                                                                                          \
		OP_TLS, (host), DIME_DMTP_TLS_##r, 0                                               \
	}
#define CLOSED                                                                                     \
	{                                                                                          \
		OP_CLOSED, NULL, 0, 0                                                              \
	}
#define OPEN                                                                                       \
	{                                                                                          \
		OP_OPEN, NULL, 0, 0                                                                \
	}
#define DRAIN                                                                                      \
	{                                                                                          \
		OP_DRAIN, NULL, 0, 0                                                               \
	}
#define TIMEOUT                                                                                    \
	{                                                                                          \
		OP_TIMEOUT, NULL, 0, 0                                                             \
	}
#define ACTS(a)                                                                                    \
	{                                                                                          \
		OP_ACTS, NULL, (a), 0                                                              \
	}

/* The MAIL + RCPT preamble of a DMTP transaction. */
#define TXN_OPEN                                                                                   \
	SEND("EHLO <client.example>\n"), EXPECT(EHLO_DMTP), SEND(MAIL_LINE), QUERY(ORIGIN),        \
	    ANSWER(OK), EXPECT("250 OK\n"), SEND(RCPT_LINE), QUERY(RCPT), ANSWER(OK),              \
	    EXPECT("250 OK\n"), SEND("DATA\n"), EXPECT("354 READY TO RECEIVE MESSAGE\n")

static const struct script scripts[] = {
    {"dmtp: a whole transaction, dot-unstuffed, then QUIT",
     DIME_DMTP_SESS_DMTP,
     0,
     0,
     0,
     {START, EXPECT(BANNER_DMTP), TXN_OPEN, SEND("-----BEGIN\n..dot\n.x\nend\n.\n"),
      QDATA("-----BEGIN\n.dot\nx\nend\n"), ACTS(DIME_DMTP_ACT_QUERY), ANSWER(ACCEPTED),
      EXPECT("254 ACCEPTED=" H86 "\n"), NOQ, SEND("QUIT\n"), EXPECT("221 BYE\n"), CLOSED}},
    {"dmtp: CRLF in DATA becomes LF, bare CR stays, \\r.\\r does not end",
     DIME_DMTP_SESS_DMTP,
     0,
     0,
     0,
     {START, EXPECT(BANNER_DMTP), TXN_OPEN, SEND("a\r\nb\rc\r.\r\n\r\n.\r\n"),
      QDATA("a\nb\rc\r.\n\n"), ANSWER(DUPLICATE), EXPECT("255 DUPLICATE=" H86 "\n"), SEND("DATA\n"),
      EXPECT("503 INVALID COMMAND SEQUENCE: MAIL FIRST\n")}},
    {"dmtp: empty message, and lock-step: commands behind a query wait for its answer",
     DIME_DMTP_SESS_DMTP,
     0,
     0,
     0,
     {START, EXPECT(BANNER_DMTP), SEND("HELO <c.example>\n" MAIL_LINE RCPT_LINE "DATA\n.\nNOOP\n"),
      EXPECT("250 OK <mx.test>\n"), QUERY(ORIGIN), ANSWER(OK), EXPECT("250 OK\n"), QUERY(RCPT),
      ANSWER(OK), EXPECT("250 OK\n354 READY TO RECEIVE MESSAGE\n"), QDATA(""), ANSWER(INVALID),
      EXPECT("451 DATA CORRUPTED\n250 OK\n")}},
    {"dmtp: global commands",
     DIME_DMTP_SESS_DMTP,
     0,
     0,
     0,
     {START,
      EXPECT(BANNER_DMTP),
      SEND("MODE\n"),
      EXPECT("250 OK DMTP\n"),
      SEND("noop\n"),
      EXPECT("250 OK\n"),
      SEND("NOOP any text at all\r\n"),
      EXPECT("250 OK\n"),
      SEND("RSET\n"),
      EXPECT("250 OK\n"),
      SEND("VERB\n"),
      EXPECT("250 OK\n"),
      SEND("HELP\n"),
      EXPECT("214-DATA\n214-EHLO\n214-HELO\n214-HELP\n214-HIST\n214-MAIL\n214-MODE\n214-NOOP\n"
	     "214-QUIT\n214-RCPT\n214-RSET\n214-SGNT\n214-STARTTLS\n214-VERB\n214 VRFY\n"),
      SEND("HELO <c.example>\n"),
      EXPECT("250 OK <mx.test>\n"),
      SEND("EHLO HOST=<c.example>\n"),
      EXPECT(EHLO_DMTP),
      SEND("STARTTLS <mx.test> MODE=DMTP\n"),
      EXPECT("503 INVALID COMMAND SEQUENCE: TLS ALREADY ACTIVE\n"),
      SEND("STARTTLS\n"),
      EXPECT("503 INVALID COMMAND SEQUENCE: TLS ALREADY ACTIVE\n"),
      SEND("QUIT\n"),
      EXPECT("221 BYE\n"),
      CLOSED,
      SEND("NOOP\n"),
      EXPECT("")}},
    {"P14: sequence errors",
     DIME_DMTP_SESS_DMTP,
     0,
     0,
     0,
     {START,
      EXPECT(BANNER_DMTP),
      SEND(MAIL_LINE),
      EXPECT("503 INVALID COMMAND SEQUENCE: HELO FIRST\n"),
      SEND(RCPT_LINE),
      EXPECT("503 INVALID COMMAND SEQUENCE: HELO FIRST\n"),
      SEND("DATA\n"),
      EXPECT("503 INVALID COMMAND SEQUENCE: HELO FIRST\n"),
      SEND("HELO <c.example>\n"),
      EXPECT("250 OK <mx.test>\n"),
      SEND(RCPT_LINE),
      EXPECT("503 INVALID COMMAND SEQUENCE: MAIL FIRST\n"),
      SEND("DATA\n"),
      EXPECT("503 INVALID COMMAND SEQUENCE: MAIL FIRST\n"),
      SEND(MAIL_LINE),
      QUERY(ORIGIN),
      ANSWER(OK),
      EXPECT("250 OK\n"),
      SEND("DATA\n"),
      EXPECT("503 INVALID COMMAND SEQUENCE: RCPT FIRST\n"),
      SEND(RCPT_LINE),
      QUERY(RCPT),
      ANSWER(OK),
      EXPECT("250 OK\n"),
      SEND(RCPT_LINE),
      NOQ,
      EXPECT("431 DESTINATION LIMITS EXCEEDED\n"),
      SEND("RSET\n"),
      EXPECT("250 OK\n"),
      SEND("DATA\n"),
      EXPECT("503 INVALID COMMAND SEQUENCE: MAIL FIRST\n"),
      OPEN}},
    {"P15: MAIL during a transaction aborts it first; a failed MAIL leaves none",
     DIME_DMTP_SESS_DMTP,
     0,
     0,
     0,
     {START,
      EXPECT(BANNER_DMTP),
      SEND("EHLO <c.example>\n"),
      EXPECT(EHLO_DMTP),
      SEND(MAIL_LINE),
      QUERY(ORIGIN),
      ANSWER(OK),
      EXPECT("250 OK\n"),
      SEND(RCPT_LINE),
      QUERY(RCPT),
      ANSWER(OK),
      EXPECT("250 OK\n"),
      SEND(MAIL_LINE),
      QUERY(ORIGIN),
      ANSWER(ORIGIN_TEMP),
      EXPECT("470 ORIGIN SIGNET UNAVAILABLE\n"),
      SEND("DATA\n"),
      EXPECT("503 INVALID COMMAND SEQUENCE: MAIL FIRST\n"),
      SEND(RCPT_LINE),
      EXPECT("503 INVALID COMMAND SEQUENCE: MAIL FIRST\n"),
      SEND(MAIL_LINE),
      QUERY(ORIGIN),
      ANSWER(ORIGIN_PERM),
      EXPECT("570 ORIGIN SIGNET UNAVAILABLE\n"),
      SEND(MAIL_LINE),
      QUERY(ORIGIN),
      ANSWER(ORIGIN_INVALID),
      EXPECT("575 INVALID ORIGIN SIGNET\n"),
      SEND(MAIL_LINE),
      QUERY(ORIGIN),
      ANSWER(TEMPFAIL),
      EXPECT("451 TRY AGAIN LATER\n"),
      SEND(MAIL_LINE),
      QUERY(ORIGIN),
      ANSWER(BUSY),
      EXPECT("421 <mx.test> BUSY, CLOSING CONNECTION\n"),
      CLOSED}},
    {"RCPT: 576 clears the transaction, 451 keeps MAIL",
     DIME_DMTP_SESS_DMTP,
     0,
     0,
     0,
     {START,
      EXPECT(BANNER_DMTP),
      SEND("EHLO <c.example>\n"),
      EXPECT(EHLO_DMTP),
      SEND(MAIL_LINE),
      QUERY(ORIGIN),
      ANSWER(OK),
      EXPECT("250 OK\n"),
      SEND(RCPT_LINE),
      QUERY(RCPT),
      ANSWER(TEMPFAIL),
      EXPECT("451 TRY AGAIN LATER\n"),
      SEND(RCPT_LINE),
      QUERY(RCPT),
      ANSWER(RCPT_INVALID),
      EXPECT("576 INVALID DESTINATION SIGNET\n"),
      SEND(RCPT_LINE),
      EXPECT("503 INVALID COMMAND SEQUENCE: MAIL FIRST\n"),
      SEND(MAIL_LINE),
      QUERY(ORIGIN),
      ANSWER(OK),
      EXPECT("250 OK\n"),
      SEND(RCPT_LINE),
      QUERY(RCPT),
      ANSWER(BUSY),
      EXPECT("421 <mx.test> BUSY, CLOSING CONNECTION\n"),
      CLOSED}},
    {"P24: DATA verdicts 578 510 586 451 and 421",
     DIME_DMTP_SESS_DMTP,
     0,
     0,
     0,
     {START,
      EXPECT(BANNER_DMTP),
      TXN_OPEN,
      SEND("x\n.\n"),
      QDATA("x\n"),
      ANSWER(BAD_ORIGIN),
      EXPECT("578 INVALID ORIGIN SIGNATURE\n"),
      SEND("DATA\n"),
      EXPECT("503 INVALID COMMAND SEQUENCE: MAIL FIRST\n"),
      SEND(MAIL_LINE RCPT_LINE "DATA\nx\n.\n"),
      QUERY(ORIGIN),
      ANSWER(OK),
      QUERY(RCPT),
      ANSWER(OK),
      QDATA("x\n"),
      ANSWER(UNKNOWN_RECIPIENT),
      EXPECT("250 OK\n250 OK\n354 READY TO RECEIVE MESSAGE\n510 INVALID RECIPIENT\n"),
      SEND(MAIL_LINE RCPT_LINE "DATA\nx\n.\n"),
      QUERY(ORIGIN),
      ANSWER(OK),
      QUERY(RCPT),
      ANSWER(OK),
      QDATA("x\n"),
      ANSWER(EXPIRED),
      EXPECT("250 OK\n250 OK\n354 READY TO RECEIVE MESSAGE\n586 INVALID RECIPIENT SIGNET\n"),
      SEND(MAIL_LINE RCPT_LINE "DATA\nx\n.\n"),
      QUERY(ORIGIN),
      ANSWER(OK),
      QUERY(RCPT),
      ANSWER(OK),
      QDATA("x\n"),
      ANSWER(TEMPFAIL),
      EXPECT("250 OK\n250 OK\n354 READY TO RECEIVE MESSAGE\n451 TRY AGAIN LATER\n"),
      SEND(MAIL_LINE RCPT_LINE "DATA\nx\n.\n"),
      QUERY(ORIGIN),
      ANSWER(OK),
      QUERY(RCPT),
      ANSWER(OK),
      QDATA("x\n"),
      ANSWER(BUSY),
      EXPECT("250 OK\n250 OK\n354 READY TO RECEIVE MESSAGE\n421 <mx.test> BUSY, CLOSING "
	     "CONNECTION\n"),
      CLOSED}},
    {"signet commands: 270 280 290 271 281 576 476, no HELO needed",
     DIME_DMTP_SESS_DMTP,
     0,
     0,
     0,
     {START,
      EXPECT(BANNER_DMTP),
      SEND("SGNT FOR=<alpha.example>\n"),
      QUERY(SGNT),
      ANSWER_A(ORG_SIGNET, ORG_ARMOR),
      EXPECT("270------BEGIN ORGANIZATIONAL SIGNET-----\n270-BVAAAWEBQt1Wjk8S\n270-AAAA\n"
	     "270------END ORGANIZATIONAL SIGNET-----\n270 OK\n"),
      SEND("SGNT FOR=<bob@alpha.example> FINGERPRINT=[" FP86 "]\n"),
      QUERY(SGNT),
      ANSWER_A(USER_SIGNET, "A\nB"),
      EXPECT("280-A\n280-B\n280 OK\n"),
      SEND("SGNT USER=<nobody@alpha.example>\n"),
      QUERY(SGNT),
      ANSWER(UNAVAILABLE),
      EXPECT("576 SIGNET UNAVAILABLE\n"),
      SEND("SGNT DOMAIN=<alpha.example>\n"),
      QUERY(SGNT),
      ANSWER(SIGNET_TEMP),
      EXPECT("476 SIGNET TEMPORARILY UNAVAILABLE\n"),
      SEND("HIST FOR=<bob@alpha.example> START=[" FP86 "]\n"),
      QUERY(HIST),
      ANSWER_A(HISTORY, "one\ntwo\n"),
      EXPECT("290-one\n290-two\n290 OK\n"),
      SEND("HIST FOR=<bob@alpha.example>\n"),
      QUERY(HIST),
      ANSWER(UNAVAILABLE),
      EXPECT("576 SIGNET UNAVAILABLE\n"),
      SEND("VRFY FOR=<alpha.example> FINGERPRINT=[" FP86 "]\n"),
      QUERY(VRFY),
      ANSWER(ORG_CURRENT),
      EXPECT("271 ORGANIZATIONAL SIGNET CURRENT\n"),
      SEND("VRFY FOR=<bob@alpha.example> FINGERPRINT=[" FP86 "]\n"),
      QUERY(VRFY),
      ANSWER(USER_CURRENT),
      EXPECT("281 USER SIGNET CURRENT\n"),
      SEND("VRFY FOR=<bob@alpha.example> FINGERPRINT=[" FP86 "]\n"),
      QUERY(VRFY),
      ANSWER_A(USER_SIGNET, "X\n"),
      EXPECT("280-X\n280 OK\n"),
      SEND("SGNT FOR=<alpha.example> FINGERPRINT=[ORGFP]\n"),
      NOQ,
      EXPECT("501 ARGUMENT SYNTAX ERROR*\n"),
      SEND("VRFY FOR=<alpha.example>\n"),
      NOQ,
      EXPECT("501 ARGUMENT SYNTAX ERROR*\n"),
      SEND("HIST FOR=<alpha.example>\n"),
      NOQ,
      EXPECT("501 ARGUMENT SYNTAX ERROR*\n"),
      SEND("SGNT FOR=<alpha.example>\n"),
      QUERY(SGNT),
      ANSWER(TEMPFAIL),
      EXPECT("451 TRY AGAIN LATER\n"),
      OPEN}},
    {"P6-P8, P1: syntax errors answer and keep serving",
     DIME_DMTP_SESS_DMTP,
     0,
     0,
     0,
     {START,
      EXPECT(BANNER_DMTP),
      SEND("FROB\n"),
      EXPECT("500 COMMAND SYNTAX ERROR*\n"),
      SEND("HELD\n"),
      EXPECT("500 COMMAND SYNTAX ERROR*\n"),
      SEND("MAIL FROM=<alpha.example>\n"),
      EXPECT("501 ARGUMENT SYNTAX ERROR*\n"),
      SEND("MAIL FROM=<alpha.example> FINGERPRINT=[AAAA]\n"),
      EXPECT("501 ARGUMENT SYNTAX ERROR*\n"),
      SENDN("NO\0OP\n", 6),
      EXPECT("500 COMMAND SYNTAX ERROR*\n"),
      SEND("NO\x01OP\n"),
      EXPECT("500 COMMAND SYNTAX ERROR*\n"),
      SEND("N\xc3\xa9OP\n"),
      EXPECT("500 COMMAND SYNTAX ERROR*\n"),
      SEND("HELO <c\xc3\xa9.example>\n"),
      EXPECT("501 ARGUMENT SYNTAX ERROR*\n"),
      SEND("RSET\rQUIT\r\n"),
      EXPECT("500 COMMAND SYNTAX ERROR: BARE CR\n"),
      OPEN,
      SEND("NOOP a\rb\n"),
      EXPECT("500 COMMAND SYNTAX ERROR: BARE CR\n"),
      SEND("\n"),
      EXPECT("500 COMMAND SYNTAX ERROR*\n"),
      SEND("\r\n"),
      EXPECT("500 COMMAND SYNTAX ERROR*\n"),
      SEND("HELO mx.alpha.example\n"),
      EXPECT("501 ARGUMENT SYNTAX ERROR*\n"),
      SEND("NOOP\n"),
      EXPECT("250 OK\n"),
      OPEN}},
    {"P8: extra whitespace around arguments is 501 (spec: one space separates them)",
     DIME_DMTP_SESS_DMTP,
     0,
     0,
     0,
     {START,
      EXPECT(BANNER_DMTP),
      SEND("EHLO  <client.example>\n"),
      EXPECT("501 ARGUMENT SYNTAX ERROR: EXTRA WHITESPACE\n"),
      SEND("EHLO <client.example> \r\n"),
      EXPECT("501 ARGUMENT SYNTAX ERROR: EXTRA WHITESPACE\n"),
      SEND("EHLO <client.example>\n"),
      EXPECT(EHLO_DMTP),
      SEND("MAIL  FROM=<alpha.example> FINGERPRINT=[" FP86 "]\n"),
      EXPECT("501 ARGUMENT SYNTAX ERROR: EXTRA WHITESPACE\n"),
      SEND("MAIL FROM=<alpha.example>  FINGERPRINT=[" FP86 "]\n"),
      EXPECT("501 ARGUMENT SYNTAX ERROR: EXTRA WHITESPACE\n"),
      SEND("SGNT FOR=<alpha.example> \n"),
      EXPECT("501 ARGUMENT SYNTAX ERROR: EXTRA WHITESPACE\n"),
      SEND("RSET \n"),
      EXPECT("501 ARGUMENT SYNTAX ERROR: EXTRA WHITESPACE\n"),
      SEND("NOOP  hello\n"),
      EXPECT("501 ARGUMENT SYNTAX ERROR: EXTRA WHITESPACE\n"),
      SEND("NOOP \n"),
      EXPECT("501 ARGUMENT SYNTAX ERROR: EXTRA WHITESPACE\n"),
      SEND("FROB  x\n"),
      EXPECT("500 COMMAND SYNTAX ERROR*\n"),
      NOQ,
      SEND("NOOP free  text, spaced  \n"),
      EXPECT("250 OK\n"),
      SEND(MAIL_LINE),
      QUERY(ORIGIN),
      ANSWER(OK),
      EXPECT("250 OK\n"),
      OPEN}},
    {"P8: extra whitespace in SMTP mode, the SMTP HELO form included",
     DIME_DMTP_SESS_DUAL,
     0,
     0,
     0,
     {START, EXPECT(BANNER_DUAL), SEND("EHLO  client.example\r\n"),
      EXPECT("501 ARGUMENT SYNTAX ERROR: EXTRA WHITESPACE\n"),
      SEND("STARTTLS  <mx.test> MODE=DMTP\n"),
      EXPECT("501 ARGUMENT SYNTAX ERROR: EXTRA WHITESPACE\n"), SEND("EHLO client.example\r\n"),
      EXPECT(EHLO_PLAIN), OPEN}},
    {"SMTP mode before TLS: DMTP commands 501, MODE says ESMTP",
     DIME_DMTP_SESS_DUAL,
     0,
     0,
     0,
     {START,
      EXPECT(BANNER_DUAL),
      SEND("EHLO client.example\r\n"),
      EXPECT(EHLO_PLAIN),
      SEND("HELO <client.example>\n"),
      EXPECT("250 OK <mx.test>\n"),
      SEND("MODE\n"),
      EXPECT("250 OK ESMTP\n"),
      SEND(MAIL_LINE),
      EXPECT("501 ARGUMENT SYNTAX ERROR: DMTP COMMAND IN SMTP MODE\n"),
      SEND(RCPT_LINE),
      EXPECT("501 ARGUMENT SYNTAX ERROR: DMTP COMMAND IN SMTP MODE\n"),
      SEND("DATA\n"),
      EXPECT("501 ARGUMENT SYNTAX ERROR: DMTP COMMAND IN SMTP MODE\n"),
      SEND("SGNT FOR=<alpha.example>\n"),
      EXPECT("501 ARGUMENT SYNTAX ERROR: DMTP COMMAND IN SMTP MODE\n"),
      SEND("HIST FOR=<b@alpha.example>\n"),
      EXPECT("501 ARGUMENT SYNTAX ERROR: DMTP COMMAND IN SMTP MODE\n"),
      SEND("VRFY FOR=<alpha.example> FINGERPRINT=[" FP86 "]\n"),
      EXPECT("501 ARGUMENT SYNTAX ERROR: DMTP COMMAND IN SMTP MODE\n"),
      SEND("MAIL FROM:<a@b.example>\r\n"),
      EXPECT("501 ARGUMENT SYNTAX ERROR*\n"),
      SEND("XYZZY\r\n"),
      EXPECT("500 COMMAND SYNTAX ERROR*\n"),
      NOQ,
      OPEN}},
    {"P12/P13: STARTTLS MODE=DMTP elevates, state resets, EHLO list changes, STARTTLS twice",
     DIME_DMTP_SESS_DUAL,
     0,
     0,
     0,
     {START,
      EXPECT(BANNER_DUAL),
      SEND("EHLO <client.example>\n"),
      EXPECT(EHLO_PLAIN),
      SEND("STARTTLS <mx.test> MODE=DMTP\n"),
      EXPECT("220 READY TO START TLS\n"),
      ACTS(DIME_DMTP_ACT_TLS),
      TLS("mx.test", OK),
      EXPECT("250 OK DMTP <mx.test>\n"),
      SEND("MODE\n"),
      EXPECT("250 OK DMTP\n"),
      SEND(MAIL_LINE),
      EXPECT("503 INVALID COMMAND SEQUENCE: HELO FIRST\n"),
      SEND("EHLO <client.example>\n"),
      EXPECT(EHLO_DMTP),
      SEND("STARTTLS <mx.test> MODE=DMTP\n"),
      EXPECT("503 INVALID COMMAND SEQUENCE: TLS ALREADY ACTIVE\n"),
      SEND(MAIL_LINE),
      QUERY(ORIGIN),
      ANSWER(OK),
      EXPECT("250 OK\n"),
      OPEN}},
    {"P11: plaintext behind STARTTLS is dropped, nothing answered over TLS but the greeting",
     DIME_DMTP_SESS_DUAL,
     0,
     0,
     0,
     {START, EXPECT(BANNER_DUAL), SEND("STARTTLS <mx.test> MODE=DMTP\nRSET\nQUIT\n"),
      EXPECT("220 READY TO START TLS\n"), TLS("mx.test", OK), EXPECT("250 OK DMTP <mx.test>\n"),
      NOQ, OPEN, SEND("NOOP\n"), EXPECT("250 OK\n")}},
    {"P16: bare STARTTLS gives SMTP mode over TLS; DMTP commands still 501",
     DIME_DMTP_SESS_DUAL,
     0,
     0,
     0,
     {START, EXPECT(BANNER_DUAL), SEND("EHLO client.example\r\n"), EXPECT(EHLO_PLAIN),
      SEND("STARTTLS\r\n"), EXPECT("220 READY TO START TLS\n"), TLS("", OK),
      EXPECT("250 OK ESMTP <mx.test>\n"), SEND("EHLO client.example\r\n"),
      EXPECT("250 OK <mx.test>\n"), SEND("MODE\r\n"), EXPECT("250 OK ESMTP\n"), SEND(MAIL_LINE),
      EXPECT("501 ARGUMENT SYNTAX ERROR: DMTP COMMAND IN SMTP MODE\n"), SEND("STARTTLS\r\n"),
      EXPECT("503 INVALID COMMAND SEQUENCE: TLS ALREADY ACTIVE\n"), SEND("BDAT 1\r\n"),
      EXPECT("500 COMMAND SYNTAX ERROR*\n"), OPEN}},
    {"STARTTLS MODE=SMTP gives SMTP mode; no MODE too",
     DIME_DMTP_SESS_DUAL,
     0,
     0,
     0,
     {START, EXPECT(BANNER_DUAL), SEND("STARTTLS <mx.test> MODE=SMTP\n"),
      EXPECT("220 READY TO START TLS\n"), TLS("mx.test", WEAK), EXPECT("250 OK ESMTP <mx.test>\n"),
      SEND("MODE\n"), EXPECT("250 OK ESMTP\n"), OPEN}},
    {"STARTTLS with no MODE: SMTP mode",
     DIME_DMTP_SESS_DUAL,
     0,
     0,
     0,
     {START, EXPECT(BANNER_DUAL), SEND("STARTTLS <other.test>\n"),
      EXPECT("220 READY TO START TLS\n"), TLS("other.test", OK), EXPECT("250 OK ESMTP <mx.test>\n"),
      OPEN}},
    {"P12: MODE=DMTP over another cipher fails with 421",
     DIME_DMTP_SESS_DUAL,
     0,
     0,
     0,
     {START, EXPECT(BANNER_DUAL), SEND("STARTTLS <mx.test> MODE=DMTP\n"),
      EXPECT("220 READY TO START TLS\n"), TLS("mx.test", WEAK),
      EXPECT("421 <mx.test> DMTP REQUIRES ECDHE-RSA-AES256-GCM-SHA384, CLOSING CONNECTION\n"),
      CLOSED}},
    {"failed handshake: close, nothing sent",
     DIME_DMTP_SESS_DUAL,
     0,
     0,
     0,
     {START, EXPECT(BANNER_DUAL), SEND("STARTTLS <mx.test> MODE=DMTP\n"),
      EXPECT("220 READY TO START TLS\n"), TLS("mx.test", FAILED), EXPECT(""), CLOSED}},
    {"P1: 512 octets pass, 513 get one 500, memory bounded, serving goes on",
     DIME_DMTP_SESS_DMTP,
     0,
     0,
     0,
     {START, EXPECT(BANNER_DMTP), SEND(NULL), EXPECT("250 OK\n"), OPEN}},
    {"P9: a command cap closes with 421",
     DIME_DMTP_SESS_DMTP,
     0,
     3,
     0,
     {START, EXPECT(BANNER_DMTP), SEND("NOOP\nNOOP\nNOOP\nNOOP\nNOOP\n"),
      EXPECT("250 OK\n250 OK\n250 OK\n421 <mx.test> TOO MANY COMMANDS, CLOSING CONNECTION\n"),
      CLOSED}},
    {"P19: DATA over the cap: drained, 552, no query, the session goes on",
     DIME_DMTP_SESS_DMTP,
     32,
     0,
     0,
     {START,
      EXPECT(BANNER_DMTP),
      SEND("EHLO <client.example>\n"),
      EXPECT("250-SIZE 32\n250 OK <mx.test>\n"),
      SEND(MAIL_LINE RCPT_LINE "DATA\n"),
      QUERY(ORIGIN),
      ANSWER(OK),
      QUERY(RCPT),
      ANSWER(OK),
      EXPECT("250 OK\n250 OK\n354 READY TO RECEIVE MESSAGE\n"),
      SEND("0123456789\n0123456789\n0123456789\n.\nNOOP\n"),
      NOQ,
      EXPECT("552 MESSAGE TOO LARGE (LIMIT 32 OCTETS)\n250 OK\n"),
      SEND("DATA\n"),
      EXPECT("503 INVALID COMMAND SEQUENCE: MAIL FIRST\n"),
      SEND(MAIL_LINE RCPT_LINE "DATA\n"),
      QUERY(ORIGIN),
      ANSWER(OK),
      QUERY(RCPT),
      ANSWER(OK),
      EXPECT("250 OK\n250 OK\n354 READY TO RECEIVE MESSAGE\n"),
      SEND("0123456789\n0123456789\n..34567890\n.\n"),
      QDATA("0123456789\n0123456789\n.34567890\n"),
      ANSWER(ACCEPTED),
      EXPECT("254 ACCEPTED=" H86 "\n")}},
    {"P10: early talker rejected by policy",
     DIME_DMTP_SESS_DUAL,
     0,
     0,
     1,
     {SEND("EHLO client.example\r\n"),
      EXPECT("554 <mx.test> PROTOCOL VIOLATION: TALKED BEFORE THE BANNER\n"), CLOSED}},
    {"P10: early talker held for the banner by default",
     DIME_DMTP_SESS_DUAL,
     0,
     0,
     0,
     {SEND("NOOP\r\n"), EXPECT(""), OPEN, START, EXPECT(BANNER_DUAL "250 OK\n"), OPEN}},
    {"timeout: 421 and close",
     DIME_DMTP_SESS_DMTP,
     0,
     0,
     0,
     {START, EXPECT(BANNER_DMTP), SEND("NOOP\n"), EXPECT("250 OK\n"), TIMEOUT,
      EXPECT("421 <mx.test> TIMEOUT, CLOSING CONNECTION\n"), CLOSED, TIMEOUT, EXPECT("")}},
    {"drain: an idle session closes at once",
     DIME_DMTP_SESS_DMTP,
     0,
     0,
     0,
     {START, EXPECT(BANNER_DMTP), DRAIN,
      EXPECT("421 <mx.test> SHUTTING DOWN, CLOSING CONNECTION\n"), CLOSED}},
    {"drain: DATA in flight finishes, then 421",
     DIME_DMTP_SESS_DMTP,
     0,
     0,
     0,
     {START, EXPECT(BANNER_DMTP), TXN_OPEN, SEND("abc\n"), ACTS(DIME_DMTP_ACT_DATA), DRAIN,
      EXPECT(""), OPEN, SEND(".\n"), QDATA("abc\n"), ANSWER(ACCEPTED),
      EXPECT("254 ACCEPTED=" H86 "\n421 <mx.test> SHUTTING DOWN, CLOSING CONNECTION\n"), CLOSED}},
};

/* ---- the driver ---- */

struct drv {
	struct dime_dmtp_sess *s;
	size_t chunk;
	uint8_t *held; /* input not yet consumed */
	size_t held_len;
	char *got; /* output since the last EXPECT */
	size_t got_len;
};

static void
drv_collect(struct drv *d)
{
	size_t n = 0;
	const uint8_t *p = dime_dmtp_sess_out(d->s, &n);

	if (n == 0)
		return;
	d->got = realloc(d->got, d->got_len + n + 1);
	if (d->got == NULL)
		abort();
	memcpy(d->got + d->got_len, p, n);
	d->got_len += n;
	d->got[d->got_len] = 0;
	dime_dmtp_sess_out_done(d->s, n);
}

/* Feed what is held in pieces of d->chunk until the session stops taking it. */
static void
drv_pump(struct drv *d)
{
	for (;;) {
		size_t off = d->held_len < d->chunk ? d->held_len : d->chunk, n, had;

		drv_collect(d);
		if (d->held_len == 0)
			return;
		had = d->got_len;
		n = dime_dmtp_sess_feed(d->s, d->held, off);
		if (n > off)
			abort();
		memmove(d->held, d->held + n, d->held_len - n);
		d->held_len -= n;
		drv_collect(d);
		if (n == 0 && d->got_len == had)
			return;
	}
}

static void
drv_send(struct drv *d, const void *p, size_t n)
{
	d->held = realloc(d->held, d->held_len + n + 1);
	if (d->held == NULL)
		abort();
	memcpy(d->held + d->held_len, p, n);
	d->held_len += n;
	drv_pump(d);
}

/* Does got match want, line by line, a want line ending in '*' matching a prefix? */
static int
drv_match(const char *got, const char *want)
{
	while (*want != 0) {
		const char *we = strchr(want, '\n'), *ge = strchr(got, '\n');
		size_t wl, gl;

		if (we == NULL || ge == NULL)
			return 0;
		wl = (size_t)(we - want);
		gl = (size_t)(ge - got);
		if (wl > 0 && want[wl - 1] == '*') {
			if (gl < wl - 1 || memcmp(got, want, wl - 1) != 0)
				return 0;
		} else if (gl != wl || memcmp(got, want, wl) != 0) {
			return 0;
		}
		want = we + 1;
		got = ge + 1;
	}
	return *got == 0;
}

static const char *
chunk_name(size_t c)
{
	return c == 1 ? "1-byte" : c == 3 ? "3-byte" : "whole";
}

static void
run_script(const struct script *sc, size_t chunk)
{
	struct dime_dmtp_sess_conf conf = {.kind = sc->kind,
					   .hostname = "mx.test",
					   .max_message = sc->max_message,
					   .max_cmds = sc->max_cmds,
					   .early_talk_reject = sc->early};
	struct drv d = {.chunk = chunk};
	const char *cn = chunk_name(chunk);

	if (dime_dmtp_sess_new(&d.s, &conf) != DIME_OK) {
		t_fail("%s: session_new failed", sc->name);
		return;
	}
	for (size_t i = 0; i < N_ELEMS(sc->steps) && sc->steps[i].op != OP_END; i++) {
		const struct step *st = &sc->steps[i];
		const struct dime_dmtp_query *q = dime_dmtp_sess_query(d.s);
		struct dime_dmtp_answer a;

		switch (st->op) {
		case OP_END: break;
		case OP_START:
			dime_dmtp_sess_start(d.s);
			drv_pump(&d);
			break;
		case OP_SEND:
			if (st->s == NULL) {
				/* P1: the 512-octet lines (LF and CRLF) pass; 513 and a 5,000-octet
				 * one get one 500 each. */
				char line[6000];

				memset(line, 'x', sizeof(line));
				memcpy(line, "NOOP ", 5);
				line[511] = '\n';
				drv_send(&d, line, 512);
				line[510] = '\r';
				drv_send(&d, line, 512);
				T_CHECK(drv_match(d.got ? d.got : "", "250 OK\n250 OK\n"),
					"%s [%s]: 512-octet lines: got %s", sc->name, cn, d.got);
				d.got_len = 0;
				d.got[0] = 0;
				line[510] = 'x';
				line[511] = 'x';
				line[512] = '\n';
				drv_send(&d, line, 513);
				line[512] = 'x';
				line[5000] = '\n';
				drv_send(&d, line, 5001);
				T_CHECK(drv_match(d.got ? d.got : "",
						  "500 COMMAND SYNTAX ERROR: LINE TOO LONG\n"
						  "500 COMMAND SYNTAX ERROR: LINE TOO LONG\n"),
					"%s [%s]: long lines: got %s", sc->name, cn, d.got);
				d.got_len = 0;
				d.got[0] = 0;
				drv_send(&d, "NOOP\n", 5);
			} else {
				drv_send(&d, st->s, st->n ? st->n : strlen(st->s));
			}
			break;
		case OP_EXPECT:
			T_CHECK(drv_match(d.got ? d.got : "", st->s),
				"%s [%s] step %zu: got \"%s\", want \"%s\"", sc->name, cn, i,
				d.got ? d.got : "", st->s);
			d.got_len = 0;
			if (d.got)
				d.got[0] = 0;
			break;
		case OP_QUERY:
			if (q == NULL || (int)q->kind != st->v) {
				t_fail("%s [%s] step %zu: got query %d, want %d", sc->name, cn, i,
				       q ? (int)q->kind : 0, st->v);
				goto out;
			}
			T_CHECK(dime_dmtp_sess_actions(d.s) & DIME_DMTP_ACT_QUERY,
				"%s [%s] step %zu: QUERY action missing", sc->name, cn, i);
			if (st->s != NULL)
				T_CHECK(q->data_len == strlen(st->s) &&
					    memcmp(q->data, st->s, q->data_len) == 0,
					"%s [%s] step %zu: got data \"%.*s\", want \"%s\"",
					sc->name, cn, i, (int)q->data_len, (const char *)q->data,
					st->s);
			if (q->kind == DIME_DMTP_Q_DATA)
				T_CHECK(strcmp(q->mail.addr, "alpha.example") == 0 &&
					    strcmp(q->cmd.addr, "mx.test") == 0 &&
					    strcmp(q->cmd.fp, FP86) == 0,
					"%s [%s] step %zu: DATA query lacks MAIL/RCPT", sc->name,
					cn, i);
			break;
		case OP_NOQ:
			T_CHECK(q == NULL, "%s [%s] step %zu: a query is open", sc->name, cn, i);
			break;
		case OP_ANSWER:
			if (q == NULL) {
				t_fail("%s [%s] step %zu: no query to answer", sc->name, cn, i);
				goto out;
			}
			memset(&a, 0, sizeof(a));
			a.id = q->id;
			a.verdict = (enum dime_dmtp_verdict)st->v;
			memcpy(a.hash, H86, sizeof(a.hash));
			a.armor = st->s;
			a.armor_len = st->s ? strlen(st->s) : 0;
			T_CHECK(dime_dmtp_sess_answer(d.s, &a) == DIME_OK,
				"%s [%s] step %zu: answer refused", sc->name, cn, i);
			drv_pump(&d);
			break;
		case OP_TLS:
			T_CHECK(dime_dmtp_sess_actions(d.s) & DIME_DMTP_ACT_TLS,
				"%s [%s] step %zu: no TLS pending", sc->name, cn, i);
			T_CHECK(strcmp(dime_dmtp_sess_tls_host(d.s), st->s) == 0,
				"%s [%s] step %zu: got host %s, want %s", sc->name, cn, i,
				dime_dmtp_sess_tls_host(d.s), st->s);
			drv_collect(&d);
			d.held_len = 0; /* plaintext never crosses into TLS (P11) */
			dime_dmtp_sess_tls_done(d.s, (enum dime_dmtp_tls_result)st->v);
			drv_pump(&d);
			break;
		case OP_CLOSED:
			T_CHECK(dime_dmtp_sess_actions(d.s) == DIME_DMTP_ACT_CLOSE,
				"%s [%s] step %zu: got actions %#x, want CLOSE", sc->name, cn, i,
				dime_dmtp_sess_actions(d.s));
			break;
		case OP_OPEN:
			T_CHECK(!(dime_dmtp_sess_actions(d.s) & DIME_DMTP_ACT_CLOSE),
				"%s [%s] step %zu: closing", sc->name, cn, i);
			break;
		case OP_DRAIN:
			dime_dmtp_sess_drain(d.s);
			drv_collect(&d);
			break;
		case OP_TIMEOUT:
			dime_dmtp_sess_timeout(d.s);
			drv_collect(&d);
			break;
		case OP_ACTS:
			T_CHECK(dime_dmtp_sess_actions(d.s) == (unsigned)st->v,
				"%s [%s] step %zu: got actions %#x, want %#x", sc->name, cn, i,
				dime_dmtp_sess_actions(d.s), (unsigned)st->v);
			break;
		}
	}
	T_CHECK(d.got_len == 0, "%s [%s]: unchecked output \"%s\"", sc->name, cn, d.got);
out:
	dime_dmtp_sess_free(d.s);
	free(d.held);
	free(d.got);
}

/* P9: 5,000 NOOPs in one write: every reply, in order, though the output passes the high-water
 * mark (feed stops, the caller flushes, feeds the rest). */
static void
test_pipeline_flood(void)
{
	struct dime_dmtp_sess_conf conf = {.kind = DIME_DMTP_SESS_DMTP, .hostname = "mx.test"};
	struct dime_dmtp_sess *s = NULL;
	size_t n_in = 5000 * 5, off = 0, stops = 0, got = 0, len;
	char *in = malloc(n_in);
	const uint8_t *p;

	if (in == NULL || dime_dmtp_sess_new(&s, &conf) != DIME_OK)
		abort();
	for (size_t i = 0; i < 5000; i++)
		memcpy(in + i * 5, "NOOP\n", 5);
	dime_dmtp_sess_start(s);
	p = dime_dmtp_sess_out(s, &len);
	dime_dmtp_sess_out_done(s, len);
	while (off < n_in) {
		size_t n = dime_dmtp_sess_feed(s, (const uint8_t *)in + off, n_in - off);

		off += n;
		if (off < n_in) {
			stops++;
			T_CHECK(dime_dmtp_sess_out(s, &len) != NULL &&
				    len >= DIME_DMTP_SESS_OUT_HIGH,
				"flood: feed stopped with only %zu octets pending", len);
		}
		p = dime_dmtp_sess_out(s, &len);
		for (size_t i = 0; i + 7 <= len; i += 7)
			got += memcmp(p + i, "250 OK\n", 7) == 0;
		T_CHECK(len % 7 == 0, "flood: partial reply in output");
		dime_dmtp_sess_out_done(s, len);
		if (n == 0 && len == 0)
			break;
	}
	T_CHECK(got == 5000, "flood: got %zu replies, want 5000", got);
	T_CHECK(stops > 0, "flood: the output high-water mark never stopped feed");
	dime_dmtp_sess_free(s);
	free(in);
}

/* The answer API refuses what would corrupt the dialogue. */
static void
test_answer_misuse(void)
{
	struct dime_dmtp_sess_conf conf = {.kind = DIME_DMTP_SESS_DMTP, .hostname = "mx.test"};
	struct dime_dmtp_sess *s = NULL;
	const struct dime_dmtp_query *q;
	struct dime_dmtp_answer a;
	const char *line = "SGNT FOR=<alpha.example>\n";
	size_t len;
	const uint8_t *p;

	if (dime_dmtp_sess_new(&s, &conf) != DIME_OK)
		abort();
	memset(&a, 0, sizeof(a));
	a.verdict = DIME_DMTP_V_OK;
	T_CHECK(dime_dmtp_sess_answer(s, &a) == DIME_E_INVALID, "answer with no query accepted");
	dime_dmtp_sess_start(s);
	T_CHECK(dime_dmtp_sess_feed(s, (const uint8_t *)line, strlen(line)) == strlen(line),
		"SGNT not consumed");
	q = dime_dmtp_sess_query(s);
	if (q == NULL) {
		t_fail("SGNT opened no query");
		goto out;
	}
	a.id = q->id + 1;
	a.verdict = DIME_DMTP_V_UNAVAILABLE;
	T_CHECK(dime_dmtp_sess_answer(s, &a) == DIME_E_INVALID, "stale id accepted");
	a.id = q->id;
	a.verdict = DIME_DMTP_V_ACCEPTED;
	T_CHECK(dime_dmtp_sess_answer(s, &a) == DIME_E_INVALID, "DATA verdict for SGNT accepted");
	a.verdict = (enum dime_dmtp_verdict)99;
	T_CHECK(dime_dmtp_sess_answer(s, &a) == DIME_E_INVALID, "verdict 99 accepted");
	T_CHECK(dime_dmtp_sess_query(s) != NULL, "a refused answer closed the query");
	a.verdict = DIME_DMTP_V_ORG_SIGNET;
	a.armor = "bad\x01line\n";
	a.armor_len = strlen(a.armor);
	T_CHECK(dime_dmtp_sess_answer(s, &a) == DIME_E_INVALID, "control octet in armor accepted");
	T_CHECK(dime_dmtp_sess_query(s) == NULL, "bad armor left the query open");
	p = dime_dmtp_sess_out(s, &len);
	T_CHECK(len >= 4 && memcmp(p + len - 36, "451 TRY AGAIN LATER: INTERNAL ERROR\n", 36) == 0,
		"bad armor: got \"%.*s\"", (int)len, (const char *)p);
	dime_dmtp_sess_out_done(s, len);
	/* A bad hash on 254 becomes 451, never a malformed 254. */
	{
		const char *t = "EHLO <c.example>\n" MAIL_LINE;

		T_CHECK(dime_dmtp_sess_feed(s, (const uint8_t *)t, strlen(t)) == strlen(t),
			"MAIL not consumed");
	}
	q = dime_dmtp_sess_query(s);
	T_CHECK(q != NULL && q->kind == DIME_DMTP_Q_ORIGIN, "no ORIGIN query");
out:
	dime_dmtp_sess_free(s);
	{
		struct dime_dmtp_sess_conf bad = {.kind = DIME_DMTP_SESS_DMTP, .hostname = "a b"};
		struct dime_dmtp_sess *x = (struct dime_dmtp_sess *)&bad;

		T_CHECK(dime_dmtp_sess_new(&x, &bad) == DIME_E_INVALID && x == NULL,
			"hostname with a space accepted");
		bad.hostname = "mx.test";
		bad.kind = (enum dime_dmtp_sess_kind)7;
		T_CHECK(dime_dmtp_sess_new(&x, &bad) == DIME_E_INVALID, "kind 7 accepted");
	}
}

/* A bad 254 hash: 451 and the transaction is over. */
static void
test_bad_hash(void)
{
	struct dime_dmtp_sess_conf conf = {.kind = DIME_DMTP_SESS_DMTP, .hostname = "mx.test"};
	struct dime_dmtp_sess *s = NULL;
	struct dime_dmtp_answer a;
	const char *t = "EHLO <c.example>\n" MAIL_LINE;
	const char *steps[] = {RCPT_LINE, "DATA\nx\n.\n"};
	size_t len;
	const uint8_t *p;

	if (dime_dmtp_sess_new(&s, &conf) != DIME_OK)
		abort();
	dime_dmtp_sess_start(s);
	(void)dime_dmtp_sess_feed(s, (const uint8_t *)t, strlen(t));
	for (size_t i = 0; i < 3; i++) {
		const struct dime_dmtp_query *q = dime_dmtp_sess_query(s);

		if (q == NULL) {
			t_fail("bad hash: no query at %zu", i);
			goto out;
		}
		memset(&a, 0, sizeof(a));
		a.id = q->id;
		a.verdict = i < 2 ? DIME_DMTP_V_OK : DIME_DMTP_V_ACCEPTED;
		memcpy(a.hash, "short", 6);
		if (i < 2) {
			T_CHECK(dime_dmtp_sess_answer(s, &a) == DIME_OK, "answer %zu refused", i);
			(void)dime_dmtp_sess_feed(s, (const uint8_t *)steps[i], strlen(steps[i]));
		} else {
			T_CHECK(dime_dmtp_sess_answer(s, &a) == DIME_E_INVALID,
				"short hash accepted");
		}
	}
	p = dime_dmtp_sess_out(s, &len);
	T_CHECK(len > 36 && memcmp(p + len - 36, "451 TRY AGAIN LATER: INTERNAL ERROR\n", 36) == 0,
		"bad hash: got \"%.*s\"", (int)len, (const char *)p);
out:
	dime_dmtp_sess_free(s);
}

int
main(void)
{
	static const size_t chunks[] = {(size_t)-1, 1, 3};

	t_init();
	for (size_t i = 0; i < N_ELEMS(scripts); i++)
		for (size_t c = 0; c < N_ELEMS(chunks); c++)
			run_script(&scripts[i], chunks[c]);
	test_pipeline_flood();
	test_answer_misuse();
	test_bad_hash();
	return t_done("test_dmtp_session");
}

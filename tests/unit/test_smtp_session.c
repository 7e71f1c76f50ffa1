/* The ESMTP session machine: scripted dialogues (send, expect the replies, answer the queries,
 * finish TLS) covering every command, reply and rule of docs/smtp.md "SMTP session", and the
 * ECOSYSTEM §6.2 cases that live at this layer (P1, P3, P4, P6-P12, P14, P16, P19, P20).
 * Every script runs three times: input fed whole, one byte at a time and in 3-byte pieces. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dime/smtp_session.h"
#include "tlib.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Expected output is written with LF line ends; the driver demands CRLF on every reply line. */
#define BANNER "220 mx.test ESMTP dimed\n"
#define EHLO_R                                                                                     \
	"250-mx.test\n250-PIPELINING\n250-SIZE 33554432\n250-ENHANCEDSTATUSCODES\n250-8BITMIME\n"  \
	"250 SMTPUTF8\n"
#define EHLO_TLS                                                                                   \
	"250-mx.test\n250-PIPELINING\n250-SIZE 33554432\n250-STARTTLS\n250-ENHANCEDSTATUSCODES\n"  \
	"250-8BITMIME\n250 SMTPUTF8\n"
#define MAIL_OK "250 2.1.0 Ok\n"
#define RCPT_OK "250 2.1.5 Ok\n"
#define GO_DATA "354 End data with <CR><LF>.<CR><LF>\n"

/* Script operations. */
enum op {
	OP_END = 0,
	OP_START,  /* dime_smtp_sess_start */
	OP_SEND,   /* s: bytes to feed (len: n, or strlen) */
	OP_EXPECT, /* s: the output since the last EXPECT, LF for CRLF; a line ending in '*' matches
		      a prefix */
	OP_QUERY,  /* v: the open query's kind; s: MAIL: its address, RCPT: the recipient, DATA: the
		      data (NULL: not checked); n: RCPT, DATA: the number of accepted recipients */
	OP_QFLAGS, /* v: the open DATA query's flags */
	OP_QMAIL,  /* the open query's MAIL: v: body, n: size, s: address */
	OP_NOQ,	   /* no query is open */
	OP_ANSWER, /* v: the verdict; s: text; t: status */
	OP_TLS,	   /* TLS is pending; finish with ok = v (held plaintext dropped) */
	OP_CLOSED, /* the session is closing */
	OP_OPEN,   /* the session is not closing */
	OP_DRAIN,
	OP_TIMEOUT,
	OP_ACTS,  /* v: the exact action bits */
	OP_VERB,  /* v: last_verb, n: last_code */
	OP_QINDEX /* v: the open DATA query's rcpt_index */
};

struct step {
	enum op op;
	const char *s, *t;
	int v;
	size_t n;
};

struct script {
	const char *name;
	struct dime_smtp_sess_conf conf; /* hostname set by the runner */
	struct step steps[72];
};

#define START                                                                                      \
	{                                                                                          \
		.op = OP_START                                                                     \
	}
#define SEND(x)                                                                                    \
	{                                                                                          \
		.op = OP_SEND, .s = (x)                                                            \
	}
#define SENDN(x, k)                                                                                \
	{                                                                                          \
		.op = OP_SEND, .s = (x), .n = (k)                                                  \
	}
#define EXPECT(x)                                                                                  \
	{                                                                                          \
		.op = OP_EXPECT, .s = (x)                                                          \
	}
#define QMAIL(a)                                                                                   \
	{                                                                                          \
		.op = OP_QUERY, .v = DIME_SMTP_Q_MAIL, .s = (a)                                    \
	}
#define QRCPT(a, k)                                                                                \
	{                                                                                          \
		.op = OP_QUERY, .v = DIME_SMTP_Q_RCPT, .s = (a), .n = (k)                          \
	}
#define QDATA(d, k)                                                                                \
	{                                                                                          \
		.op = OP_QUERY, .v = DIME_SMTP_Q_DATA, .s = (d), .n = (k)                          \
	}
#define QFLAGS(f)                                                                                  \
	{                                                                                          \
		.op = OP_QFLAGS, .v = (f)                                                          \
	}
#define QENV(a, b, z)                                                                              \
	{                                                                                          \
		.op = OP_QMAIL, .s = (a), .v = DIME_SMTP_BODY_##b, .n = (z)                        \
	}
#define NOQ                                                                                        \
	{                                                                                          \
		.op = OP_NOQ                                                                       \
	}
#define ANSWER(w)                                                                                  \
	{                                                                                          \
		.op = OP_ANSWER, .v = DIME_SMTP_V_##w                                              \
	}
#define ANSWER_T(w, x)                                                                             \
	{                                                                                          \
		.op = OP_ANSWER, .v = DIME_SMTP_V_##w, .s = (x)                                    \
	}
#define ANSWER_S(w, st, x)                                                                         \
	{                                                                                          \
		.op = OP_ANSWER, .v = DIME_SMTP_V_##w, .s = (x), .t = (st)                         \
	}
#define TLS(ok)                                                                                    \
	{                                                                                          \
		.op = OP_TLS, .v = (ok)                                                            \
	}
#define CLOSED                                                                                     \
	{                                                                                          \
		.op = OP_CLOSED                                                                    \
	}
#define OPEN                                                                                       \
	{                                                                                          \
		.op = OP_OPEN                                                                      \
	}
#define DRAIN                                                                                      \
	{                                                                                          \
		.op = OP_DRAIN                                                                     \
	}
#define TIMEOUT                                                                                    \
	{                                                                                          \
		.op = OP_TIMEOUT                                                                   \
	}
#define ACTS(a)                                                                                    \
	{                                                                                          \
		.op = OP_ACTS, .v = (a)                                                            \
	}
#define QINDEX(k)                                                                                  \
	{                                                                                          \
		.op = OP_QINDEX, .v = (k)                                                          \
	}
#define VERB(vb, c)                                                                                \
	{                                                                                          \
		.op = OP_VERB, .v = (vb), .n = (c)                                                 \
	}

/* EHLO, MAIL and one RCPT accepted. */
#define TXN_OPEN                                                                                   \
	SEND("EHLO client.example\r\n"), EXPECT(EHLO_R), SEND("MAIL FROM:<a@alpha.example>\r\n"),  \
	    QMAIL("a@alpha.example"), ANSWER(OK), EXPECT(MAIL_OK),                                 \
	    SEND("RCPT TO:<b@beta.example>\r\n"), QRCPT("b@beta.example", 0), ANSWER(OK),          \
	    EXPECT(RCPT_OK)
/* ... and DATA begun. */
#define TXN_DATA TXN_OPEN, SEND("DATA\r\n"), EXPECT(GO_DATA)
/* The same whatever the EHLO reply lists (six lines: no STARTTLS). */
#define TXN_DATA_ANY                                                                               \
	SEND("EHLO client.example\r\nMAIL FROM:<a@alpha.example>\r\n"), ANSWER(OK),                \
	    SEND("RCPT TO:<b@beta.example>\r\n"), ANSWER(OK), SEND("DATA\r\n"),                    \
	    EXPECT("250-mx.test\n*\n*\n*\n*\n*\n" MAIL_OK RCPT_OK GO_DATA)

#define REJ_LF                                                                                     \
	{                                                                                          \
		.bare_lf = DIME_SMTP_BARE_LF_REJECT                                                \
	}

static const struct script scripts[] = {
    {"a whole transaction: two recipients, dot-unstuffed, 250 with the caller's text, QUIT",
     {0},
     {START,
      EXPECT(BANNER),
      VERB(-1, 220),
      TXN_OPEN,
      SEND("RCPT TO:<c@beta.example>\r\n"),
      QRCPT("c@beta.example", 1),
      ANSWER(OK),
      EXPECT(RCPT_OK),
      SEND("DATA\r\n"),
      EXPECT(GO_DATA),
      ACTS(DIME_SMTP_ACT_DATA),
      SEND("Subject: x\r\n\r\n..dot\r\n.x\r\nend\r\n.\r\n"),
      QDATA("Subject: x\r\n\r\n.dot\r\nx\r\nend\r\n", 2),
      QFLAGS(0),
      ACTS(DIME_SMTP_ACT_QUERY),
      QENV("a@alpha.example", NONE, 0),
      VERB(DIME_SMTP_DATA, 354),
      ANSWER_T(OK, "Ok: queued as 4F2A"),
      EXPECT("250 2.0.0 Ok: queued as 4F2A\n"),
      NOQ,
      SEND("DATA\r\n"),
      EXPECT("503 5.5.1 Error: need MAIL command\n"),
      SEND("QUIT\r\n"),
      EXPECT("221 2.0.0 Bye\n"),
      VERB(DIME_SMTP_QUIT, 221),
      CLOSED,
      SEND("NOOP\r\n"),
      EXPECT("")}},
    {"empty message, first line dot-stuffed, 8-bit flagged; a second transaction",
     {0},
     {START,
      EXPECT(BANNER),
      TXN_DATA,
      SEND(".\r\n"),
      QDATA("", 1),
      ANSWER(OK),
      EXPECT("250 2.0.0 Ok\n"),
      SEND("MAIL FROM:<> BODY=8BITMIME SIZE=20\r\n"),
      QMAIL(""),
      QENV("", 8BITMIME, 20),
      ANSWER(OK),
      EXPECT(MAIL_OK),
      SEND("RCPT TO:<b@beta.example>\r\n"),
      QRCPT("b@beta.example", 0),
      ANSWER(OK),
      EXPECT(RCPT_OK),
      SEND("DATA\r\n"),
      EXPECT(GO_DATA),
      SEND("..\r\n\xc3\xa9t\xc3\xa9\r\n.\r\n"),
      QDATA(".\r\n\xc3\xa9t\xc3\xa9\r\n", 1),
      QFLAGS(DIME_SMTP_DATA_8BIT),
      QENV("", 8BITMIME, 20),
      ANSWER(OK),
      EXPECT("250 2.0.0 Ok\n")}},
    {"pipelining: a whole transaction in one write, each command after its query's answer",
     {0},
     {START, EXPECT(BANNER),
      SEND("EHLO c.example\r\nMAIL FROM:<a@alpha.example>\r\nRCPT TO:<b@beta.example>\r\n"
	   "RCPT TO:<c@beta.example>\r\nDATA\r\n"),
      EXPECT(EHLO_R), QMAIL("a@alpha.example"), ANSWER(OK), EXPECT(MAIL_OK),
      QRCPT("b@beta.example", 0), ANSWER_T(TEMPFAIL, "signet lookup timed out"),
      EXPECT("451 4.3.0 signet lookup timed out\n"), QRCPT("c@beta.example", 0), ANSWER(OK),
      EXPECT(RCPT_OK GO_DATA), SEND("x\r\n.\r\nNOOP\r\n"), QDATA("x\r\n", 1), EXPECT(""),
      ANSWER(OK), EXPECT("250 2.0.0 Ok\n250 2.0.0 Ok\n")}},
    {"greetings and global commands",
     {.tls_available = 1},
     {START,
      EXPECT(BANNER),
      SEND("HELO c.example\r\n"),
      EXPECT("250 mx.test\n"),
      SEND("ehlo c.example\r\n"),
      EXPECT(EHLO_TLS),
      VERB(DIME_SMTP_EHLO, 250),
      SEND("EHLO [192.0.2.1]\r\n"),
      EXPECT(EHLO_TLS),
      SEND("EHLO\r\n"),
      EXPECT("501 5.5.4 Syntax: EHLO hostname\n"),
      SEND("HELO a b\r\n"),
      EXPECT("501 5.5.4 Syntax: HELO hostname\n"),
      SEND("HELO \r\n"),
      EXPECT("501 5.5.4 Syntax: HELO hostname\n"),
      SEND("NOOP\r\nnoop any text\r\n"),
      EXPECT("250 2.0.0 Ok\n250 2.0.0 Ok\n"),
      SEND("RSET\r\nRSET x\r\n"),
      EXPECT("250 2.0.0 Ok\n501 5.5.4 Syntax: RSET\n"),
      SEND("VRFY postmaster\r\nVRFY\r\n"),
      EXPECT("252 2.5.0 Cannot VRFY user; send some mail\n501 5.5.4 Syntax: VRFY address\n"),
      SEND("HELP\r\nHELP MAIL\r\n"),
      EXPECT("214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS\n"
	     "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS\n"),
      SEND("EXPN staff\r\nSGNT <alpha.example>\r\nLHLO c.example\r\n"),
      EXPECT("500 5.5.2 Error: command not recognized\n500 5.5.2 Error: command not recognized\n"
	     "500 5.5.2 Error: command not recognized\n"),
      VERB(-1, 500),
      OPEN,
      SEND("QUIT now\r\n"),
      EXPECT("501 5.5.4 Syntax: QUIT\n"),
      SEND("quit\r\n"),
      EXPECT("221 2.0.0 Bye\n"),
      CLOSED}},
    {"P14: sequence errors",
     {0},
     {START,
      EXPECT(BANNER),
      SEND("MAIL FROM:<a@alpha.example>\r\n"),
      EXPECT("503 5.5.1 Error: send HELO/EHLO first\n"),
      SEND("RCPT TO:<b@beta.example>\r\n"),
      EXPECT("503 5.5.1 Error: send HELO/EHLO first\n"),
      SEND("DATA\r\n"),
      EXPECT("503 5.5.1 Error: send HELO/EHLO first\n"),
      SEND("HELO c.example\r\n"),
      EXPECT("250 mx.test\n"),
      SEND("RCPT TO:<b@beta.example>\r\n"),
      EXPECT("503 5.5.1 Error: need MAIL command\n"),
      SEND("DATA\r\n"),
      EXPECT("503 5.5.1 Error: need MAIL command\n"),
      SEND("MAIL FROM:<a@alpha.example>\r\n"),
      QMAIL("a@alpha.example"),
      ANSWER(OK),
      EXPECT(MAIL_OK),
      SEND("DATA\r\n"),
      EXPECT("503 5.5.1 Error: need RCPT command\n"),
      SEND("MAIL FROM:<a@alpha.example>\r\n"),
      EXPECT("503 5.5.1 Error: nested MAIL command\n"),
      SEND("RCPT TO:<b@beta.example>\r\n"),
      QRCPT("b@beta.example", 0),
      ANSWER(REJECT),
      EXPECT("550 5.1.1 Recipient address rejected\n"),
      SEND("DATA\r\n"),
      EXPECT("503 5.5.1 Error: need RCPT command\n"),
      SEND("DATA x\r\n"),
      EXPECT("501 5.5.4 Syntax: DATA\n"),
      SEND("EHLO c.example\r\n"),
      EXPECT(EHLO_R),
      SEND("RCPT TO:<b@beta.example>\r\n"),
      EXPECT("503 5.5.1 Error: need MAIL command\n"),
      SEND("MAIL FROM:<a@alpha.example>\r\n"),
      QMAIL("a@alpha.example"),
      ANSWER(OK),
      EXPECT(MAIL_OK),
      SEND("RSET\r\nRCPT TO:<b@beta.example>\r\n"),
      EXPECT("250 2.0.0 Ok\n503 5.5.1 Error: need MAIL command\n"),
      OPEN}},
    {"MAIL verdicts, with the caller's status and text",
     {0},
     {START,
      EXPECT(BANNER),
      SEND("EHLO c.example\r\n"),
      EXPECT(EHLO_R),
      SEND("MAIL FROM:<a@alpha.example>\r\n"),
      QMAIL("a@alpha.example"),
      ANSWER(REJECT),
      EXPECT("550 5.1.0 Sender address rejected\n"),
      SEND("RCPT TO:<b@beta.example>\r\n"),
      EXPECT("503 5.5.1 Error: need MAIL command\n"),
      SEND("MAIL FROM:<a@alpha.example>\r\n"),
      QMAIL("a@alpha.example"),
      ANSWER(POLICY),
      EXPECT("550 5.7.1 Sender address rejected by policy\n"),
      SEND("MAIL FROM:<a@alpha.example>\r\n"),
      QMAIL("a@alpha.example"),
      ANSWER_S(TEMPFAIL, "4.4.3", "DNS lookup failed"),
      EXPECT("451 4.4.3 DNS lookup failed\n"),
      SEND("MAIL FROM:<a@alpha.example>\r\n"),
      QMAIL("a@alpha.example"),
      ANSWER(NOSPACE),
      EXPECT("452 4.3.1 Insufficient system storage\n"),
      SEND("MAIL FROM:<a@alpha.example>\r\n"),
      QMAIL("a@alpha.example"),
      ANSWER(BUSY),
      EXPECT("421 4.3.2 mx.test Error: service busy, try again later\n"),
      CLOSED}},
    {"RCPT verdicts: refused recipients are not kept",
     {0},
     {START,
      EXPECT(BANNER),
      TXN_OPEN,
      SEND("RCPT TO:<c@beta.example>\r\n"),
      QRCPT("c@beta.example", 1),
      ANSWER(POLICY),
      EXPECT("554 5.7.1 Recipient address rejected by policy\n"),
      SEND("RCPT TO:<d@beta.example>\r\n"),
      QRCPT("d@beta.example", 1),
      ANSWER_S(REJECT, "5.1.10", "no such user here"),
      EXPECT("550 5.1.10 no such user here\n"),
      SEND("RCPT TO:<e@beta.example>\r\n"),
      QRCPT("e@beta.example", 1),
      ANSWER(NOSPACE),
      EXPECT("452 4.3.1 Insufficient system storage\n"),
      SEND("RCPT TO:<f@beta.example>\r\n"),
      QRCPT("f@beta.example", 1),
      ANSWER(OK),
      EXPECT(RCPT_OK),
      SEND("DATA\r\nx\r\n.\r\n"),
      EXPECT(GO_DATA),
      QDATA("x\r\n", 2),
      ANSWER_T(TEMPFAIL, "spool busy"),
      EXPECT("451 4.3.0 spool busy\n"),
      SEND("RCPT TO:<b@beta.example>\r\n"),
      EXPECT("503 5.5.1 Error: need MAIL command\n"),
      OPEN}},
    {"DATA verdicts end the transaction",
     {0},
     {START,
      EXPECT(BANNER),
      TXN_DATA,
      SEND("x\r\n.\r\n"),
      QDATA("x\r\n", 1),
      ANSWER(NOSPACE),
      EXPECT("452 4.3.1 Insufficient system storage\n"),
      SEND("MAIL FROM:<a@alpha.example>\r\n"),
      QMAIL(NULL),
      ANSWER(OK),
      SEND("RCPT TO:<b@beta.example>\r\n"),
      ANSWER(OK),
      SEND("DATA\r\nx\r\n.\r\n"),
      QDATA("x\r\n", 1),
      ANSWER(REJECT),
      EXPECT(MAIL_OK RCPT_OK GO_DATA "554 5.6.0 Message rejected\n"),
      SEND("MAIL FROM:<a@alpha.example>\r\n"),
      ANSWER(OK),
      SEND("RCPT TO:<b@beta.example>\r\n"),
      ANSWER(OK),
      SEND("DATA\r\nx\r\n.\r\n"),
      QDATA("x\r\n", 1),
      ANSWER_S(POLICY, "5.7.26", "naked mail refused for a strict domain"),
      EXPECT(MAIL_OK RCPT_OK GO_DATA "554 5.7.26 naked mail refused for a strict domain\n"),
      SEND("DATA\r\n"),
      EXPECT("503 5.5.1 Error: need MAIL command\n"),
      SEND("MAIL FROM:<a@alpha.example>\r\n"),
      ANSWER(OK),
      SEND("RCPT TO:<b@beta.example>\r\n"),
      ANSWER(OK),
      SEND("DATA\r\nx\r\n.\r\n"),
      QDATA("x\r\n", 1),
      ANSWER(BUSY),
      EXPECT(MAIL_OK RCPT_OK GO_DATA "421 4.3.2 mx.test Error: service busy, try again later\n"),
      CLOSED}},
    {"a caller's text is one line of printable ASCII, cut at 400",
     {0},
     {START, EXPECT(BANNER), TXN_DATA, SEND(".\r\n"), QDATA("", 1),
      ANSWER_T(OK, "queued\r\n250 2.0.0 forged\x01\xff"),
      EXPECT("250 2.0.0 queued??250 2.0.0 forged??\n")}},
    {"P1: command lines of 512 octets pass, longer ones get one 500 each",
     {0},
     {START, EXPECT(BANNER), SEND(NULL), OPEN}},
    {"P6, P7, P8: control octets, bare CR, 8-bit, spaces",
     {0},
     {START,
      EXPECT(BANNER),
      SENDN("NO\0OP\r\n", 7),
      EXPECT("500 5.5.2 Error: control character in command\n"),
      SEND("RSET\rQUIT\r\n"),
      EXPECT("500 5.5.2 Error: bare <CR> received\n"),
      OPEN,
      SEND("NOOP\x7f\r\nNO\tOP\r\n"),
      EXPECT("500 5.5.2 Error: control character in command\n"
	     "500 5.5.2 Error: control character in command\n"),
      SEND("NO\x1bOP\r\n"),
      EXPECT("500 5.5.2 Error: control character in command\n"),
      SEND("N\xc3\x96OP\r\nNOOP \xc3\xa9\r\n"),
      EXPECT("500 5.5.2 Error: command not recognized\n"
	     "501 5.5.4 Syntax error: 8-bit octets in command\n"),
      SEND("NOOP  x\r\nNOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOP\r\n"),
      EXPECT("500 5.5.2 Error: extra space after the command\n"
	     "500 5.5.2 Error: command not recognized\n"),
      SEND("\r\n \r\n"),
      EXPECT("500 5.5.2 Error: command not recognized\n"
	     "500 5.5.2 Error: command not recognized\n"),
      SEND("EHLO c.example\r\nMAIL  FROM:<a@alpha.example>\r\n"),
      EXPECT(EHLO_R "500 5.5.2 Error: extra space after the command\n"),
      SEND("NOOP\r\n"),
      EXPECT("250 2.0.0 Ok\n"),
      OPEN}},
    {"P3: bare LF ends a command line (normalize)",
     {0},
     {START, EXPECT(BANNER), SEND("NOOP\nEHLO c.example\n"), EXPECT("250 2.0.0 Ok\n" EHLO_R),
      SEND("MAIL FROM:<a@alpha.example>\n"), QMAIL("a@alpha.example"), ANSWER(OK),
      EXPECT(MAIL_OK)}},
    {"P3: bare LF refused in commands (reject)",
     REJ_LF,
     {START, EXPECT(BANNER), SEND("NOOP\nNOOP\r\nQUIT\n"),
      EXPECT("500 5.5.2 Error: bare <LF> received\n250 2.0.0 Ok\n"
	     "500 5.5.2 Error: bare <LF> received\n"),
      OPEN}},
    {"P4: smuggling (normalize): fake ends stay in the body, one message",
     {0},
     {START, EXPECT(BANNER), TXN_DATA,
      SEND("a\n.\nMAIL FROM:<evil@x.example>\r\nb\r\n.\nRCPT TO:<v@beta.example>\r\n"
	   "c\n.\r\nDATA\r\nd\r.\rQUIT\r\n.\r\nNOOP\r\n"),
      QDATA("a\r\n\r\nMAIL FROM:<evil@x.example>\r\nb\r\n\r\nRCPT TO:<v@beta.example>\r\n"
	    "c\r\n\r\nDATA\r\nd\r.\rQUIT\r\n",
	    1),
      QFLAGS(DIME_SMTP_DATA_BARE_LF | DIME_SMTP_DATA_BARE_CR), EXPECT(""), ANSWER(OK),
      EXPECT("250 2.0.0 Ok\n250 2.0.0 Ok\n"), NOQ}},
    {"P4: smuggling (normalize): CR and LF runs around dots",
     {0},
     {START, EXPECT(BANNER), TXN_DATA, SEND("\r\r\n.\r\r\n.\r.\r\n\n.\r\n.\r\n"),
      QDATA("\r\r\n\r\r\n\r.\r\n\r\n\r\n", 1),
      QFLAGS(DIME_SMTP_DATA_BARE_LF | DIME_SMTP_DATA_BARE_CR), ANSWER(OK),
      EXPECT("250 2.0.0 Ok\n")}},
    {"P4: smuggling (reject): read to the real end, then 550, and no message",
     REJ_LF,
     {START,
      EXPECT(BANNER),
      TXN_DATA,
      SEND("a\r\n.\nMAIL FROM:<evil@x.example>\r\n.\r\nNOOP\r\n"),
      EXPECT("550 5.5.2 Error: bare <CR> or <LF> in message data\n250 2.0.0 Ok\n"),
      NOQ,
      SEND("DATA\r\n"),
      EXPECT("503 5.5.1 Error: need MAIL command\n"),
      SEND("MAIL FROM:<a@alpha.example>\r\n"),
      ANSWER(OK),
      SEND("RCPT TO:<b@beta.example>\r\n"),
      ANSWER(OK),
      SEND("DATA\r\nx\ry\r\n.\r\n"),
      EXPECT(MAIL_OK RCPT_OK GO_DATA "550 5.5.2 Error: bare <CR> or <LF> in message data\n"),
      SEND("MAIL FROM:<a@alpha.example>\r\n"),
      ANSWER(OK),
      SEND("RCPT TO:<b@beta.example>\r\n"),
      ANSWER(OK),
      SEND("DATA\r\nclean\r\n.\r\n"),
      QDATA("clean\r\n", 1),
      QFLAGS(0),
      ANSWER(OK),
      EXPECT(MAIL_OK RCPT_OK GO_DATA "250 2.0.0 Ok\n")}},
    {"P19: SIZE over the limit at MAIL; a body over it drained, then 552",
     {.max_message = 64},
     {START,
      EXPECT(BANNER),
      SEND("EHLO c.example\r\n"),
      EXPECT("250-mx.test\n250-PIPELINING\n"
	     "250-SIZE 64\n*\n*\n*\n"),
      SEND("MAIL FROM:<a@alpha.example> SIZE=65\r\n"),
      EXPECT("552 5.3.4 Message size exceeds fixed limit\n"),
      SEND("MAIL FROM:<a@alpha.example> SIZE=99999999999999999999\r\n"),
      EXPECT("552 5.3.4 Message size exceeds fixed limit\n"),
      SEND("MAIL FROM:<a@alpha.example> SIZE=64\r\n"),
      QENV("a@alpha.example", NONE, 64),
      ANSWER(OK),
      SEND("RCPT TO:<b@beta.example>\r\n"),
      ANSWER(OK),
      SEND("DATA\r\n"),
      EXPECT(MAIL_OK RCPT_OK GO_DATA),
      SEND("0123456789012345678901234567890123456789012345678901234567890\r\n"
	   "0123456789012345678901234567890123456789012345678901234567890\r\n.\r\n"),
      NOQ,
      EXPECT("552 5.3.4 Message size exceeds fixed limit\n"),
      SEND("DATA\r\n"),
      EXPECT("503 5.5.1 Error: need MAIL command\n"),
      SEND("MAIL FROM:<a@alpha.example>\r\n"),
      ANSWER(OK),
      SEND("RCPT TO:<b@beta.example>\r\n"),
      ANSWER(OK),
      SEND("DATA\r\n0123456789012345678901234567890123456789012345678901234567890\r\n.\r\n"),
      QDATA("0123456789012345678901234567890123456789012345678901234567890\r\n", 1),
      ANSWER(OK),
      EXPECT(MAIL_OK RCPT_OK GO_DATA "250 2.0.0 Ok\n")}},
    {"MAIL parameters",
     {0},
     {START,
      EXPECT(BANNER),
      SEND("EHLO c.example\r\n"),
      EXPECT(EHLO_R),
      SEND("MAIL FROM:<a@alpha.example> SIZE=1x\r\n"),
      EXPECT("501 5.5.4 Syntax error in SIZE\n"),
      SEND("MAIL FROM:<a@alpha.example> SIZE=123456789012345678901\r\n"),
      EXPECT("501 5.5.4 Syntax error in SIZE\n"),
      SEND("MAIL FROM:<a@alpha.example> SIZE=1 SIZE=2\r\n"),
      EXPECT("501 5.5.4 Syntax error in SIZE\n"),
      SEND("MAIL FROM:<a@alpha.example> SIZE\r\n"),
      EXPECT("501 5.5.4 Syntax error in SIZE\n"),
      SEND("MAIL FROM:<a@alpha.example> BODY=9BIT\r\n"),
      EXPECT("501 5.5.4 Unsupported BODY type\n"),
      SEND("MAIL FROM:<a@alpha.example> SMTPUTF8=yes\r\n"),
      EXPECT("501 5.5.4 Syntax error in SMTPUTF8\n"),
      SEND("MAIL FROM:<a@alpha.example> AUTH=<>\r\n"),
      EXPECT("555 5.5.4 Unsupported MAIL parameter\n"),
      SEND("MAIL FROM:<a@alpha.example>  SIZE=1\r\n"),
      EXPECT("501 5.5.4 Syntax error in parameters\n"),
      SEND("MAIL FROM:<a@alpha.example> \r\n"),
      EXPECT("501 5.5.4 Syntax error in parameters\n"),
      SEND("MAIL FROM:<a@alpha.example>SIZE=1\r\n"),
      EXPECT("501 5.5.4 Syntax error in parameters\n"),
      SEND("MAIL FROM:<a@alpha.example> X=\r\n"),
      EXPECT("501 5.5.4 Syntax error in parameters\n"),
      SEND("MAIL FROM:<a@alpha.example> -X\r\n"),
      EXPECT("501 5.5.4 Syntax error in parameters\n"),
      SEND("MAIL FROM:<a@alpha.example> BODY=7bit\xc3\xa9\r\n"),
      EXPECT("501 5.5.4 Syntax error in parameters\n"),
      SEND("MAIL FROM: <a@alpha.example>\r\nMAIL TO:<a@alpha.example>\r\nMAIL\r\n"),
      EXPECT("501 5.5.4 Syntax: MAIL FROM:<address>\n501 5.5.4 Syntax: MAIL FROM:<address>\n"
	     "501 5.5.4 Syntax: MAIL FROM:<address>\n"),
      SEND("MAIL FROM:a@alpha.example\r\nMAIL FROM:<a@alpha.example\r\n"),
      EXPECT("501 5.5.4 Syntax: MAIL FROM:<address>\n501 5.5.4 Syntax: MAIL FROM:<address>\n"),
      SEND("mail from:<a@alpha.example> body=7bit size=0 smtputf8\r\n"),
      QENV("a@alpha.example", 7BIT, 0),
      ANSWER(OK),
      EXPECT(MAIL_OK),
      SEND("RCPT TO:<b@beta.example> NOTIFY=NEVER\r\nRCPT TO:<b@beta.example>  X\r\n"),
      EXPECT("555 5.5.4 Unsupported RCPT parameter\n501 5.5.4 Syntax error in parameters\n"),
      SEND("RCPT TO:b@beta.example\r\nRCPT FROM:<b@beta.example>\r\n"),
      EXPECT("501 5.5.4 Syntax: RCPT TO:<address>\n501 5.5.4 Syntax: RCPT TO:<address>\n"),
      OPEN}},
    {"addresses: accepted forms",
     {0},
     {START,
      EXPECT(BANNER),
      SEND("EHLO c.example\r\n"),
      EXPECT(EHLO_R),
      SEND("MAIL FROM:<@relay.example,@r2.example:a@alpha.example>\r\n"),
      QMAIL("a@alpha.example"),
      ANSWER(OK),
      EXPECT(MAIL_OK),
      SEND("RCPT TO:<postmaster>\r\n"),
      QRCPT("postmaster", 0),
      ANSWER(OK),
      SEND("RCPT TO:<PostMaster>\r\n"),
      QRCPT("PostMaster", 1),
      ANSWER(OK),
      SEND("RCPT TO:<\"a b>c\\\"d\"@beta.example>\r\n"),
      QRCPT("\"a b>c\\\"d\"@beta.example", 2),
      ANSWER(OK),
      SEND("RCPT TO:<x.y+tag!#$%&'*/=?^_`{|}~-@[192.0.2.1]>\r\n"),
      QRCPT("x.y+tag!#$%&'*/=?^_`{|}~-@[192.0.2.1]", 3),
      ANSWER(OK),
      SEND("RCPT TO:<u@[IPv6:2001:db8::1]>\r\n"),
      QRCPT("u@[IPv6:2001:db8::1]", 4),
      ANSWER(OK),
      SEND("RCPT TO:<u@a-b.c9.example>\r\n"),
      QRCPT("u@a-b.c9.example", 5),
      ANSWER(OK),
      EXPECT(RCPT_OK RCPT_OK RCPT_OK RCPT_OK RCPT_OK RCPT_OK),
      SEND("DATA\r\n.\r\n"),
      QDATA("", 6),
      ANSWER(OK),
      EXPECT(GO_DATA "250 2.0.0 Ok\n")}},
    {"addresses: refused forms",
     {0},
     {START,
      EXPECT(BANNER),
      SEND("EHLO c.example\r\n"),
      EXPECT(EHLO_R),
      SEND("MAIL FROM:<postmaster>\r\n"),
      EXPECT("501 5.1.7 Bad sender address syntax\n"),
      SEND("MAIL FROM:<a@alpha.example>\r\n"),
      ANSWER(OK),
      EXPECT(MAIL_OK),
      SEND("RCPT TO:<>\r\n"),
      EXPECT("501 5.1.3 Bad recipient address syntax\n"),
      SEND("RCPT TO:<b>\r\nRCPT TO:<@beta.example>\r\nRCPT TO:<b@>\r\n"),
      EXPECT("501 5.1.3 Bad recipient address syntax\n501 5.1.3 Bad recipient address syntax\n"
	     "501 5.1.3 Bad recipient address syntax\n"),
      SEND("RCPT TO:<a..b@beta.example>\r\nRCPT TO:<.a@beta.example>\r\nRCPT TO:<a.@beta."
	   "example>\r\n"),
      EXPECT("501 5.1.3 Bad recipient address syntax\n501 5.1.3 Bad recipient address syntax\n"
	     "501 5.1.3 Bad recipient address syntax\n"),
      SEND("RCPT TO:<b@-beta.example>\r\nRCPT TO:<b@beta-.example>\r\nRCPT TO:<b@beta..example>"
	   "\r\nRCPT TO:<b@beta.example.>\r\nRCPT TO:<b@be_ta.example>\r\n"),
      EXPECT("501 5.1.3 Bad recipient address syntax\n501 5.1.3 Bad recipient address syntax\n"
	     "501 5.1.3 Bad recipient address syntax\n501 5.1.3 Bad recipient address syntax\n"
	     "501 5.1.3 Bad recipient address syntax\n"),
      SEND("RCPT TO:<b@[300.0.0.1]>\r\nRCPT TO:<b@[1.2.3]>\r\nRCPT TO:<b@[]>\r\nRCPT "
	   "TO:<b@[x:]>\r\n"),
      EXPECT("501 5.1.3 Bad recipient address syntax\n501 5.1.3 Bad recipient address syntax\n"
	     "501 5.1.3 Bad recipient address syntax\n501 5.1.3 Bad recipient address syntax\n"),
      SEND("RCPT TO:<\"unterminated@beta.example>\r\nRCPT TO:<a\"b\"@beta.example>\r\n"),
      EXPECT("501 5.5.4 Syntax: RCPT TO:<address>\n501 5.1.3 Bad recipient address syntax\n"),
      SEND("RCPT TO:<@r.example:b@beta.example>\r\nRCPT TO:<@r.example,:b@beta.example>\r\n"),
      QRCPT("b@beta.example", 0),
      ANSWER(OK),
      EXPECT(RCPT_OK "501 5.1.3 Bad recipient address syntax\n"),
      SEND("RCPT TO:<\xc3\xa9@beta.example>\r\nRCPT TO:<b@b\xc3\xa9ta.example>\r\n"),
      EXPECT("553 5.6.7 Non-ASCII address requires SMTPUTF8\n"
	     "553 5.6.7 Non-ASCII address requires SMTPUTF8\n"),
      OPEN}},
    {"SMTPUTF8: UTF-8 addresses, well-formed only",
     {0},
     {START, EXPECT(BANNER), SEND("EHLO c.example\r\n"), EXPECT(EHLO_R),
      SEND("MAIL FROM:<\xc3\xa9@alpha.example>\r\n"),
      EXPECT("553 5.6.7 Non-ASCII address requires SMTPUTF8\n"),
      SEND("MAIL FROM:<\xc3\xa9@\xe6\x97\xa5\xe6\x9c\xac.example> SMTPUTF8\r\n"),
      QMAIL("\xc3\xa9@\xe6\x97\xa5\xe6\x9c\xac.example"), ANSWER(OK), EXPECT(MAIL_OK),
      SEND("RCPT TO:<\xc0\x80@beta.example>\r\nRCPT TO:<\xed\xa0\x80@beta.example>\r\n"
	   "RCPT TO:<\xc3@beta.example>\r\nRCPT TO:<\xf4\x90\x80\x80@beta.example>\r\n"),
      EXPECT("501 5.1.3 Bad recipient address syntax\n501 5.1.3 Bad recipient address syntax\n"
	     "501 5.1.3 Bad recipient address syntax\n501 5.1.3 Bad recipient address syntax\n"),
      SEND("RCPT TO:<\"\xf0\x9f\x93\xa7 x\"@b\xc3\xa9ta.example>\r\n"),
      QRCPT("\"\xf0\x9f\x93\xa7 x\"@b\xc3\xa9ta.example", 0), ANSWER(OK), EXPECT(RCPT_OK)}},
    {"recipients per transaction: the cap gives 452 4.5.3",
     {.max_rcpts = 2},
     {START, EXPECT(BANNER), TXN_OPEN, SEND("RCPT TO:<c@beta.example>\r\n"), ANSWER(OK),
      SEND("RCPT TO:<d@beta.example>\r\n"), NOQ,
      EXPECT(RCPT_OK "452 4.5.3 Error: too many recipients\n"), SEND("DATA\r\n.\r\n"), QDATA("", 2),
      ANSWER(OK), EXPECT(GO_DATA "250 2.0.0 Ok\n")}},
    {"P11, P12, P13: STARTTLS drops what rides behind it and forgets the greeting",
     {.tls_available = 1},
     {START,
      EXPECT(BANNER),
      SEND("STARTTLS x\r\n"),
      EXPECT("501 5.5.4 Syntax: STARTTLS\n"),
      SEND("EHLO c.example\r\nMAIL FROM:<a@alpha.example>\r\n"),
      EXPECT(EHLO_TLS),
      ANSWER(OK),
      EXPECT(MAIL_OK),
      SEND("STARTTLS\r\n"),
      EXPECT("503 5.5.1 Error: MAIL transaction in progress\n"),
      SEND("RSET\r\nSTARTTLS\r\nRSET\r\nMAIL FROM:<x@y.example>\r\n"),
      EXPECT("250 2.0.0 Ok\n220 2.0.0 Ready to start TLS\n"),
      ACTS(DIME_SMTP_ACT_TLS),
      VERB(DIME_SMTP_STARTTLS, 220),
      TLS(1),
      EXPECT(""),
      OPEN,
      SEND("MAIL FROM:<a@alpha.example>\r\n"),
      EXPECT("503 5.5.1 Error: send HELO/EHLO first\n"),
      SEND("EHLO c.example\r\n"),
      EXPECT(EHLO_R),
      SEND("STARTTLS\r\n"),
      EXPECT("503 5.5.1 Error: TLS already active\n"),
      SEND("HELP\r\n"),
      EXPECT("214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\n"),
      OPEN}},
    {"STARTTLS: not offered without a certificate",
     {0},
     {START, EXPECT(BANNER), SEND("STARTTLS\r\n"), EXPECT("454 4.7.0 TLS not available\n")}},
    {"STARTTLS: a failed handshake closes silently",
     {.tls_available = 1},
     {START, EXPECT(BANNER), SEND("STARTTLS\r\nNOOP\r\n"), EXPECT("220 2.0.0 Ready to start TLS\n"),
      TLS(0), EXPECT(""), CLOSED}},
    {"P10: an early talker is held until the banner",
     {0},
     {SEND("EHLO c.example\r\n"), EXPECT(""), OPEN, START, EXPECT(BANNER EHLO_R)}},
    {"P10: an early talker is refused",
     {.early_talk_reject = 1},
     {SEND("EHLO c.example\r\n"), EXPECT("554 5.5.0 mx.test Error: talked before the greeting\n"),
      CLOSED, START, EXPECT("")}},
    {"P9: the command cap",
     {.max_cmds = 3},
     {START, EXPECT(BANNER), SEND("NOOP\r\nBOGUS\r\nNOOP\r\nNOOP\r\nNOOP\r\n"),
      EXPECT("250 2.0.0 Ok\n500 5.5.2 Error: command not recognized\n250 2.0.0 Ok\n"
	     "421 4.7.0 mx.test Error: too many commands\n"),
      CLOSED}},
    {"timeout",
     {0},
     {START, EXPECT(BANNER), TXN_DATA, SEND("abc"), TIMEOUT,
      EXPECT("421 4.4.2 mx.test Error: timeout exceeded\n"), CLOSED, TIMEOUT, EXPECT("")}},
    {"drain: an idle session closes at once",
     {0},
     {START, EXPECT(BANNER), DRAIN, EXPECT("421 4.3.2 mx.test Service shutting down\n"), CLOSED}},
    {"drain: DATA in flight finishes, then 421",
     {0},
     {START, EXPECT(BANNER), TXN_DATA, SEND("abc\r\n"), ACTS(DIME_SMTP_ACT_DATA), DRAIN, EXPECT(""),
      OPEN, SEND(".\r\n"), QDATA("abc\r\n", 1), ANSWER(OK),
      EXPECT("250 2.0.0 Ok\n421 4.3.2 mx.test Service shutting down\n"), CLOSED}},
    {"drain: an open query is answered, then 421",
     {0},
     {START, EXPECT(BANNER), SEND("EHLO c.example\r\nMAIL FROM:<a@alpha.example>\r\n"),
      EXPECT(EHLO_R), DRAIN, EXPECT(""), ANSWER(OK),
      EXPECT(MAIL_OK "421 4.3.2 mx.test Service shutting down\n"), CLOSED}},
    {"drain: an oversized message still gets its 552 first",
     {.max_message = 4},
     {START, EXPECT(BANNER), TXN_DATA_ANY, DRAIN, SEND("12345\r\n.\r\n"),
      EXPECT("552 5.3.4 Message size exceeds fixed limit\n"
	     "421 4.3.2 mx.test Service shutting down\n"),
      CLOSED}},
    {"LMTP: LHLO only, and one DATA reply per accepted recipient, in order",
     {.lmtp = 1},
     {START,
      EXPECT("220 mx.test LMTP dimed\n"),
      SEND("EHLO c.example\r\nHELO c.example\r\nMAIL FROM:<a@alpha.example>\r\n"),
      EXPECT("500 5.5.2 Error: command not recognized\n500 5.5.2 Error: command not recognized\n"
	     "503 5.5.1 Error: send LHLO first\n"),
      SEND("LHLO\r\nLHLO c.example\r\nHELP\r\n"),
      EXPECT("501 5.5.4 Syntax: LHLO hostname\n" EHLO_R
	     "214 2.0.0 Commands: LHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\n"),
      VERB(DIME_SMTP_HELP, 214),
      SEND("MAIL FROM:<a@alpha.example>\r\nRCPT TO:<b@beta.example>\r\nRCPT "
	   "TO:<c@beta.example>\r\nRCPT TO:<d@beta.example>\r\nDATA\r\nx\r\n.\r\nNOOP\r\n"),
      ANSWER(OK),
      ANSWER(OK),
      ANSWER(REJECT),
      ANSWER(OK),
      EXPECT(MAIL_OK RCPT_OK "550 5.1.1 Recipient address rejected\n" RCPT_OK GO_DATA),
      QDATA("x\r\n", 2),
      QINDEX(0),
      ANSWER_T(OK, "b queued as 1"),
      EXPECT("250 2.0.0 b queued as 1\n"),
      QDATA("x\r\n", 2),
      QINDEX(1),
      ANSWER_S(NOSPACE, "4.2.2", "mailbox full"),
      EXPECT("452 4.2.2 mailbox full\n250 2.0.0 Ok\n"),
      NOQ,
      SEND("DATA\r\n"),
      EXPECT("503 5.5.1 Error: need MAIL command\n"),
      OPEN}},
    {"LMTP: drain waits for every recipient's reply; BUSY ends at once",
     {.lmtp = 1},
     {START, EXPECT("220 mx.test LMTP dimed\n"),
      SEND("LHLO c.example\r\nMAIL FROM:<a@alpha.example>\r\nRCPT TO:<b@beta.example>\r\n"
	   "RCPT TO:<c@beta.example>\r\nDATA\r\nx\r\n.\r\n"),
      ANSWER(OK), ANSWER(OK), ANSWER(OK), EXPECT(EHLO_R MAIL_OK RCPT_OK RCPT_OK GO_DATA), DRAIN,
      ANSWER(OK), EXPECT("250 2.0.0 Ok\n"), OPEN, ANSWER(OK),
      EXPECT("250 2.0.0 Ok\n421 4.3.2 mx.test Service shutting down\n"), CLOSED}},
    {"LMTP: BUSY for one recipient closes",
     {.lmtp = 1},
     {START, EXPECT("220 mx.test LMTP dimed\n"),
      SEND("LHLO c.example\r\nMAIL FROM:<a@alpha.example>\r\nRCPT TO:<b@beta.example>\r\n"
	   "RCPT TO:<c@beta.example>\r\nDATA\r\nx\r\n.\r\n"),
      ANSWER(OK), ANSWER(OK), ANSWER(OK), EXPECT(EHLO_R MAIL_OK RCPT_OK RCPT_OK GO_DATA),
      ANSWER(BUSY), EXPECT("421 4.3.2 mx.test Error: service busy, try again later\n"), CLOSED}},
};

/* ---- the driver ---- */

struct drv {
	struct dime_smtp_sess *s;
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
	const uint8_t *p = dime_smtp_sess_out(d->s, &n);

	if (n == 0)
		return;
	d->got = realloc(d->got, d->got_len + n + 1);
	if (d->got == NULL)
		abort();
	memcpy(d->got + d->got_len, p, n);
	d->got_len += n;
	d->got[d->got_len] = 0;
	dime_smtp_sess_out_done(d->s, n);
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
		n = dime_smtp_sess_feed(d->s, d->held, off);
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

/* Does got match want line by line, each got line ending in CRLF where want has LF, a want line
 * ending in '*' matching a prefix? */
static int
drv_match(const char *got, const char *want)
{
	while (*want != 0) {
		const char *we = strchr(want, '\n'), *ge = strchr(got, '\n');
		size_t wl, gl;

		if (we == NULL || ge == NULL || ge == got || ge[-1] != '\r')
			return 0;
		wl = (size_t)(we - want);
		gl = (size_t)(ge - got) - 1;
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
drv_expect(struct drv *d, const char *want, const char *name, const char *cn, size_t i)
{
	T_CHECK(drv_match(d->got ? d->got : "", want), "%s [%s] step %zu: got \"%s\", want \"%s\"",
		name, cn, i, d->got ? d->got : "", want);
	d->got_len = 0;
	if (d->got)
		d->got[0] = 0;
}

/* P1: the 512-octet lines (CRLF and bare LF) pass; 513 and a 5,000-octet one get one 500 each,
 * and the session goes on. */
static void
drv_long_lines(struct drv *d, const char *name, const char *cn, size_t i)
{
	static char line[6000];

	memset(line, 'x', sizeof(line));
	memcpy(line, "NOOP ", 5);
	line[510] = '\r';
	line[511] = '\n';
	drv_send(d, line, 512);
	line[510] = 'x';
	drv_send(d, line, 512);
	drv_expect(d, "250 2.0.0 Ok\n250 2.0.0 Ok\n", name, cn, i);
	T_CHECK(d->held_len == 0, "%s [%s]: a 512-octet line not consumed", name, cn);
	drv_send(d, "NOOP\r\n", 6);
	drv_expect(d, "250 2.0.0 Ok\n", name, cn, i);
	line[511] = 'x';
	line[512] = '\n';
	drv_send(d, line, 513);
	line[512] = 'x';
	line[4999] = '\r';
	line[5000] = '\n';
	drv_send(d, line, 5001);
	drv_send(d, "NOOP\r\n", 6);
	drv_expect(d,
		   "500 5.5.6 Error: line too long\n500 5.5.6 Error: line too long\n"
		   "250 2.0.0 Ok\n",
		   name, cn, i);
}

static void
run_script(const struct script *sc, size_t chunk)
{
	struct dime_smtp_sess_conf conf = sc->conf;
	struct drv d = {.chunk = chunk};
	const char *cn = chunk_name(chunk);

	conf.hostname = "mx.test";
	if (dime_smtp_sess_new(&d.s, &conf) != DIME_OK) {
		t_fail("%s: session_new failed", sc->name);
		return;
	}
	for (size_t i = 0; i < N_ELEMS(sc->steps) && sc->steps[i].op != OP_END; i++) {
		const struct step *st = &sc->steps[i];
		const struct dime_smtp_query *q = dime_smtp_sess_query(d.s);
		struct dime_smtp_answer a;

		switch (st->op) {
		case OP_END: break;
		case OP_START:
			dime_smtp_sess_start(d.s);
			drv_pump(&d);
			break;
		case OP_SEND:
			if (st->s == NULL)
				drv_long_lines(&d, sc->name, cn, i);
			else
				drv_send(&d, st->s, st->n ? st->n : strlen(st->s));
			break;
		case OP_EXPECT: drv_expect(&d, st->s, sc->name, cn, i); break;
		case OP_QUERY:
			if (q == NULL || (int)q->kind != st->v) {
				t_fail("%s [%s] step %zu: got query %d, want %d", sc->name, cn, i,
				       q ? (int)q->kind : 0, st->v);
				goto out;
			}
			T_CHECK(dime_smtp_sess_actions(d.s) & DIME_SMTP_ACT_QUERY,
				"%s [%s] step %zu: QUERY action missing", sc->name, cn, i);
			if (q->kind == DIME_SMTP_Q_MAIL) {
				T_CHECK(q->rcpt == NULL && q->n_rcpts == 0 && q->data == NULL,
					"%s [%s] step %zu: MAIL query with more", sc->name, cn, i);
				T_CHECK(st->s == NULL || strcmp(q->mail->addr, st->s) == 0,
					"%s [%s] step %zu: got MAIL <%s>, want <%s>", sc->name, cn,
					i, q->mail->addr, st->s);
				break;
			}
			T_CHECK(q->n_rcpts == st->n, "%s [%s] step %zu: got %zu rcpts, want %zu",
				sc->name, cn, i, q->n_rcpts, st->n);
			for (size_t k = 0; k < q->n_rcpts; k++)
				T_CHECK(q->rcpts[k] != NULL && strlen(q->rcpts[k]) <= 254,
					"%s [%s] step %zu: bad rcpt %zu", sc->name, cn, i, k);
			if (q->kind == DIME_SMTP_Q_RCPT) {
				T_CHECK(q->data == NULL && q->rcpt != NULL &&
					    (st->s == NULL || strcmp(q->rcpt, st->s) == 0),
					"%s [%s] step %zu: got RCPT <%s>, want <%s>", sc->name, cn,
					i, q->rcpt ? q->rcpt : "(null)", st->s);
			} else if (st->s != NULL) {
				T_CHECK(q->rcpt == NULL && q->data_len == strlen(st->s) &&
					    memcmp(q->data, st->s, q->data_len) == 0,
					"%s [%s] step %zu: got data \"%.*s\", want \"%s\"",
					sc->name, cn, i, (int)q->data_len, (const char *)q->data,
					st->s);
			}
			break;
		case OP_QFLAGS:
			T_CHECK(q != NULL && q->kind == DIME_SMTP_Q_DATA &&
				    q->flags == (unsigned)st->v,
				"%s [%s] step %zu: got flags %#x, want %#x", sc->name, cn, i,
				q ? q->flags : 0u, (unsigned)st->v);
			break;
		case OP_QMAIL:
			T_CHECK(q != NULL && strcmp(q->mail->addr, st->s) == 0 &&
				    (int)q->mail->body == st->v && q->mail->size == st->n,
				"%s [%s] step %zu: got MAIL <%s> body %d size %llu", sc->name, cn,
				i, q ? q->mail->addr : "", q ? (int)q->mail->body : -1,
				q ? (unsigned long long)q->mail->size : 0ull);
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
			a.verdict = (enum dime_smtp_verdict)st->v;
			a.text = st->s;
			a.status = st->t;
			T_CHECK(dime_smtp_sess_answer(d.s, &a) == DIME_OK,
				"%s [%s] step %zu: answer refused", sc->name, cn, i);
			drv_pump(&d);
			break;
		case OP_TLS:
			T_CHECK(dime_smtp_sess_actions(d.s) & DIME_SMTP_ACT_TLS,
				"%s [%s] step %zu: no TLS pending", sc->name, cn, i);
			drv_collect(&d);
			d.held_len = 0; /* plaintext never crosses into TLS (P11) */
			dime_smtp_sess_tls_done(d.s, st->v);
			T_CHECK(dime_smtp_sess_is_tls(d.s) == st->v,
				"%s [%s] step %zu: is_tls %d after tls_done(%d)", sc->name, cn, i,
				dime_smtp_sess_is_tls(d.s), st->v);
			drv_pump(&d);
			break;
		case OP_CLOSED:
			T_CHECK(dime_smtp_sess_actions(d.s) == DIME_SMTP_ACT_CLOSE,
				"%s [%s] step %zu: got actions %#x, want CLOSE", sc->name, cn, i,
				dime_smtp_sess_actions(d.s));
			break;
		case OP_OPEN:
			T_CHECK(!(dime_smtp_sess_actions(d.s) & DIME_SMTP_ACT_CLOSE),
				"%s [%s] step %zu: closing", sc->name, cn, i);
			break;
		case OP_DRAIN:
			dime_smtp_sess_drain(d.s);
			drv_pump(&d);
			break;
		case OP_TIMEOUT:
			dime_smtp_sess_timeout(d.s);
			drv_collect(&d);
			break;
		case OP_ACTS:
			T_CHECK(dime_smtp_sess_actions(d.s) == (unsigned)st->v,
				"%s [%s] step %zu: got actions %#x, want %#x", sc->name, cn, i,
				dime_smtp_sess_actions(d.s), (unsigned)st->v);
			break;
		case OP_QINDEX:
			T_CHECK(q != NULL && q->kind == DIME_SMTP_Q_DATA &&
				    q->rcpt_index == (size_t)st->v,
				"%s [%s] step %zu: got rcpt_index %zu, want %d", sc->name, cn, i,
				q ? q->rcpt_index : 0, st->v);
			break;
		case OP_VERB:
			T_CHECK(dime_smtp_sess_last_verb(d.s) == st->v &&
				    dime_smtp_sess_last_code(d.s) == (int)st->n,
				"%s [%s] step %zu: got verb %d code %d, want %d %zu", sc->name, cn,
				i, dime_smtp_sess_last_verb(d.s), dime_smtp_sess_last_code(d.s),
				st->v, st->n);
			break;
		}
	}
	T_CHECK(d.got_len == 0, "%s [%s]: unchecked output \"%s\"", sc->name, cn, d.got);
out:
	dime_smtp_sess_free(d.s);
	free(d.held);
	free(d.got);
}

/* ---- programmatic cases ---- */

static struct dime_smtp_sess *
new_sess(const struct dime_smtp_sess_conf *c)
{
	struct dime_smtp_sess_conf conf = *c;
	struct dime_smtp_sess *s = NULL;

	conf.hostname = "mx.test";
	if (dime_smtp_sess_new(&s, &conf) != DIME_OK)
		abort();
	dime_smtp_sess_start(s);
	return s;
}

/* Take every pending reply; return them NUL-terminated in a static buffer (cut at its size). */
static const char *
take(struct dime_smtp_sess *s)
{
	static char buf[4096];
	size_t n = 0;
	const uint8_t *p = dime_smtp_sess_out(s, &n);
	size_t k = n < sizeof(buf) - 1 ? n : sizeof(buf) - 1;

	memcpy(buf, p, k);
	buf[k] = 0;
	dime_smtp_sess_out_done(s, n);
	return buf;
}

static void
feed_all(struct dime_smtp_sess *s, const char *t)
{
	size_t n = strlen(t);

	T_CHECK(dime_smtp_sess_feed(s, (const uint8_t *)t, n) == n, "not all of \"%.40s\" consumed",
		t);
}

/* Answer the open query with verdict v (OK when there is none to answer: a failure). */
static void
answer(struct dime_smtp_sess *s, enum dime_smtp_verdict v)
{
	const struct dime_smtp_query *q = dime_smtp_sess_query(s);
	struct dime_smtp_answer a = {.verdict = v};

	if (q == NULL) {
		t_fail("no query to answer");
		return;
	}
	a.id = q->id;
	T_CHECK(dime_smtp_sess_answer(s, &a) == DIME_OK, "answer refused");
}

/* Open a transaction up to the 354. */
static void
open_data(struct dime_smtp_sess *s)
{
	feed_all(s, "EHLO c.example\r\nMAIL FROM:<a@alpha.example>\r\n");
	answer(s, DIME_SMTP_V_OK);
	feed_all(s, "RCPT TO:<b@beta.example>\r\n");
	answer(s, DIME_SMTP_V_OK);
	feed_all(s, "DATA\r\n");
	(void)take(s);
}

/* P9: 5,000 NOOPs in one write: every reply, in order, though the output passes the high-water
 * mark (feed stops, the caller flushes, feeds the rest). */
static void
test_pipeline_flood(void)
{
	struct dime_smtp_sess_conf conf = {0};
	struct dime_smtp_sess *s = new_sess(&conf);
	size_t n_in = 5000 * 6, off = 0, stops = 0, got = 0, len;
	char *in = malloc(n_in);
	const uint8_t *p;

	if (in == NULL)
		abort();
	for (size_t i = 0; i < 5000; i++)
		memcpy(in + i * 6, "NOOP\r\n", 6);
	(void)take(s);
	while (off < n_in) {
		size_t n = dime_smtp_sess_feed(s, (const uint8_t *)in + off, n_in - off);

		off += n;
		if (off < n_in) {
			stops++;
			T_CHECK(dime_smtp_sess_out(s, &len) != NULL &&
				    len >= DIME_SMTP_SESS_OUT_HIGH,
				"flood: feed stopped with only %zu octets pending", len);
		}
		p = dime_smtp_sess_out(s, &len);
		for (size_t i = 0; i + 14 <= len; i += 14)
			got += memcmp(p + i, "250 2.0.0 Ok\r\n", 14) == 0;
		T_CHECK(len % 14 == 0, "flood: partial reply in output");
		dime_smtp_sess_out_done(s, len);
		if (n == 0 && len == 0)
			break;
	}
	T_CHECK(got == 5000, "flood: got %zu replies, want 5000", got);
	T_CHECK(stops > 0, "flood: the output high-water mark never stopped feed");
	dime_smtp_sess_free(s);
	free(in);
}

/* P9: 10,000 pipelined RCPTs against the recipient cap and the command cap. */
static void
test_rcpt_flood(void)
{
	struct dime_smtp_sess_conf conf = {.max_cmds = 1000};
	struct dime_smtp_sess *s = new_sess(&conf);
	const char *line = "RCPT TO:<b@beta.example>\r\n";
	size_t ll = strlen(line), n_in = 10000 * ll, off = 0, ok = 0, full = 0;
	char *in = malloc(n_in);

	if (in == NULL)
		abort();
	for (size_t i = 0; i < 10000; i++)
		memcpy(in + i * ll, line, ll);
	feed_all(s, "EHLO c.example\r\nMAIL FROM:<a@alpha.example>\r\n");
	answer(s, DIME_SMTP_V_OK);
	(void)take(s);
	while (off < n_in && !(dime_smtp_sess_actions(s) & DIME_SMTP_ACT_CLOSE)) {
		size_t len;
		const char *p;

		off += dime_smtp_sess_feed(s, (const uint8_t *)in + off, n_in - off);
		if (dime_smtp_sess_query(s) != NULL)
			answer(s, DIME_SMTP_V_OK);
		p = (const char *)dime_smtp_sess_out(s, &len);
		for (const char *e = p; e < p + len;) {
			const char *nl = memchr(e, '\n', (size_t)(p + len - e));

			ok += strncmp(e, "250 2.1.5", 9) == 0;
			full += strncmp(e, "452 4.5.3", 9) == 0;
			if (strncmp(e, "421 4.7.0", 9) == 0)
				T_CHECK(ok + full == 998, "rcpt flood: 421 after %zu replies",
					ok + full);
			e = nl + 1;
		}
		dime_smtp_sess_out_done(s, len);
	}
	T_CHECK(ok == 100 && full == 898, "rcpt flood: got %zu accepted, %zu over the cap", ok,
		full);
	T_CHECK(dime_smtp_sess_actions(s) == DIME_SMTP_ACT_CLOSE, "rcpt flood: not closed");
	dime_smtp_sess_free(s);
	free(in);
}

/* P2: a 998-octet line passes unflagged, 999 is accepted whole and flagged; with
 * reject_long_lines it gets 550 5.5.2 at the end and the session goes on. */
static void
test_long_text_lines(void)
{
	static char body[3000];
	const struct dime_smtp_query *q;

	for (int rej = 0; rej < 2; rej++) {
		struct dime_smtp_sess_conf conf = {.reject_long_lines = rej};
		struct dime_smtp_sess *s = new_sess(&conf);

		for (size_t len = 998; len <= 999; len++) {
			memset(body, 'y', len);
			memcpy(body + len, "\r\n.\r\n", 6);
			open_data(s);
			feed_all(s, body);
			q = dime_smtp_sess_query(s);
			if (len == 998 || !rej) {
				unsigned want = len == 999 ? DIME_SMTP_DATA_LONG_LINES : 0u;

				T_CHECK(q != NULL && q->data_len == len + 2 &&
					    memcmp(q->data, body, len + 2) == 0 && q->flags == want,
					"long lines %d/%zu: got %zu octets flags %#x", rej, len,
					q ? q->data_len : 0, q ? q->flags : 0u);
				answer(s, DIME_SMTP_V_OK);
				T_CHECK(strcmp(take(s), "250 2.0.0 Ok\r\n") == 0,
					"long lines %d/%zu: no 250", rej, len);
			} else {
				T_CHECK(q == NULL, "long lines: a 999-octet line made a query");
				T_CHECK(strcmp(take(s), "550 5.5.2 Error: message line longer than "
							"998 octets\r\n") == 0,
					"long lines: no 550");
			}
		}
		feed_all(s, "NOOP\r\n");
		T_CHECK(strcmp(take(s), "250 2.0.0 Ok\r\n") == 0, "long lines: session lost");
		dime_smtp_sess_free(s);
	}
}

/* P19: 4 MiB streamed without SIZE against a 64 KiB cap: consumed to the end (bounded memory is
 * the implementation's: the buffer is dropped once over), 552, the session goes on. */
static void
test_huge_body(void)
{
	struct dime_smtp_sess_conf conf = {.max_message = 65536};
	struct dime_smtp_sess *s = new_sess(&conf);
	static char chunk[8192];

	for (size_t i = 0; i < sizeof(chunk); i += 64) {
		memset(chunk + i, 'z', 62);
		memcpy(chunk + i + 62, "\r\n", 2);
	}
	open_data(s);
	for (size_t i = 0; i < 512; i++) {
		size_t n = dime_smtp_sess_feed(s, (const uint8_t *)chunk, sizeof(chunk));

		if (n != sizeof(chunk)) {
			t_fail("huge body: feed stopped at chunk %zu", i);
			break;
		}
	}
	T_CHECK(dime_smtp_sess_actions(s) == DIME_SMTP_ACT_DATA, "huge body: not in DATA");
	T_CHECK(take(s)[0] == 0, "huge body: a reply before the end");
	feed_all(s, ".\r\n");
	T_CHECK(dime_smtp_sess_query(s) == NULL, "huge body: a query");
	T_CHECK(strcmp(take(s), "552 5.3.4 Message size exceeds fixed limit\r\n") == 0,
		"huge body: no 552");
	feed_all(s, "NOOP\r\n");
	T_CHECK(strcmp(take(s), "250 2.0.0 Ok\r\n") == 0, "huge body: session lost");
	/* P20: the peer goes away mid-DATA: the session is freed, no query ever opened. */
	open_data(s);
	feed_all(s, "partial\r\n");
	T_CHECK(dime_smtp_sess_query(s) == NULL, "mid-DATA: a query before the end");
	dime_smtp_sess_free(s);
}

/* The answer API refuses what would corrupt the dialogue, and keeps the query open then. */
static void
test_answer_misuse(void)
{
	struct dime_smtp_sess_conf conf = {0};
	struct dime_smtp_sess *s = new_sess(&conf);
	const struct dime_smtp_query *q;
	struct dime_smtp_answer a = {.verdict = DIME_SMTP_V_OK};
	static const struct {
		enum dime_smtp_verdict v;
		const char *st;
	} bad[] = {
	    {DIME_SMTP_V_TEMPFAIL, "5.1.1"},	{DIME_SMTP_V_OK, "4.0.0"},
	    {DIME_SMTP_V_REJECT, "5.1"},	{DIME_SMTP_V_REJECT, "5.1.1."},
	    {DIME_SMTP_V_REJECT, "5.1234.1"},	{DIME_SMTP_V_REJECT, "5.x.1"},
	    {DIME_SMTP_V_REJECT, ""},		{DIME_SMTP_V_REJECT, "5..1"},
	    {DIME_SMTP_V_BUSY, "4.3.2"},	{(enum dime_smtp_verdict)0, NULL},
	    {(enum dime_smtp_verdict)99, NULL},
	};

	T_CHECK(dime_smtp_sess_answer(s, &a) == DIME_E_INVALID, "answer with no query accepted");
	feed_all(s, "EHLO c.example\r\nMAIL FROM:<a@alpha.example>\r\n");
	(void)take(s);
	q = dime_smtp_sess_query(s);
	if (q == NULL) {
		t_fail("MAIL opened no query");
		goto out;
	}
	a.id = q->id + 1;
	T_CHECK(dime_smtp_sess_answer(s, &a) == DIME_E_INVALID, "stale id accepted");
	a.id = q->id;
	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		a.verdict = bad[i].v;
		a.status = bad[i].st;
		T_CHECK(dime_smtp_sess_answer(s, &a) == DIME_E_INVALID,
			"verdict %d status \"%s\" accepted", (int)bad[i].v,
			bad[i].st ? bad[i].st : "(null)");
		T_CHECK(dime_smtp_sess_query(s) == q, "a refused answer closed the query");
	}
	T_CHECK(take(s)[0] == 0, "a refused answer queued a reply");
	a.verdict = DIME_SMTP_V_OK;
	a.status = "2.1.0";
	T_CHECK(dime_smtp_sess_answer(s, &a) == DIME_OK, "a good status refused");
	T_CHECK(strcmp(take(s), "250 2.1.0 Ok\r\n") == 0, "good status: wrong reply");
	T_CHECK(dime_smtp_sess_answer(s, &a) == DIME_E_INVALID, "a second answer accepted");
	/* A text past 400 octets is cut, and the reply stays one line. */
	{
		static char longtext[1000];
		const char *r;

		memset(longtext, 'q', sizeof(longtext) - 1);
		feed_all(s, "RCPT TO:<b@beta.example>\r\n");
		q = dime_smtp_sess_query(s);
		if (q == NULL) {
			t_fail("RCPT opened no query");
			goto out;
		}
		a.id = q->id;
		a.verdict = DIME_SMTP_V_TEMPFAIL;
		a.status = NULL;
		a.text = longtext;
		T_CHECK(dime_smtp_sess_answer(s, &a) == DIME_OK, "long text refused");
		r = take(s);
		T_CHECK(strlen(r) == 10 + DIME_SMTP_SESS_TEXT_MAX + 2 &&
			    strncmp(r, "451 4.3.0 qqq", 13) == 0 && strchr(r, '\n') == r + 411,
			"long text: got %zu octets", strlen(r));
	}
out:
	dime_smtp_sess_free(s);
}

static void
test_conf(void)
{
	struct dime_smtp_sess_conf c = {.hostname = "mx.test"};
	struct dime_smtp_sess *x = (struct dime_smtp_sess *)&c;
	static char longhost[300];
	static const char *const bad_hosts[] = {NULL, "", "a b", "<mx>", "mx\x01", "h\xc3\xa9"};

	for (size_t i = 0; i < N_ELEMS(bad_hosts); i++) {
		c.hostname = bad_hosts[i];
		T_CHECK(dime_smtp_sess_new(&x, &c) == DIME_E_INVALID && x == NULL,
			"hostname %zu accepted", i);
	}
	memset(longhost, 'h', 256);
	c.hostname = longhost;
	T_CHECK(dime_smtp_sess_new(&x, &c) == DIME_E_INVALID, "256-octet hostname accepted");
	longhost[255] = 0;
	T_CHECK(dime_smtp_sess_new(&x, &c) == DIME_OK, "255-octet hostname refused");
	dime_smtp_sess_timeout(x); /* the longest 421 still fits a 512-octet line */
	{
		size_t n;
		const uint8_t *p = dime_smtp_sess_out(x, &n);

		T_CHECK(n == 10 + 255 + 24 + 2 && p[n - 2] == '\r', "long host 421: %zu octets", n);
	}
	dime_smtp_sess_free(x);
	c.hostname = "mx.test";
	c.max_rcpts = DIME_SMTP_SESS_MAX_RCPTS + 1;
	T_CHECK(dime_smtp_sess_new(&x, &c) == DIME_E_INVALID, "max_rcpts over the cap accepted");
	c.max_rcpts = 0;
	c.bare_lf = (enum dime_smtp_bare_lf)7;
	T_CHECK(dime_smtp_sess_new(&x, &c) == DIME_E_INVALID, "bare_lf 7 accepted");
	T_CHECK(dime_smtp_sess_new(&x, NULL) == DIME_E_INVALID, "NULL conf accepted");
	dime_smtp_sess_free(NULL);
	T_CHECK(strcmp(dime_smtp_verb_name(DIME_SMTP_STARTTLS), "STARTTLS") == 0 &&
		    strcmp(dime_smtp_verb_name(-1), "?") == 0 &&
		    strcmp(dime_smtp_verb_name(DIME_SMTP_N_VERBS), "?") == 0,
		"verb names");
}

/* Path "<" local "@" n_labels x (label "."), "example>": a 64-octet local part passes, 65 does
 * not; a 63-octet label passes, 64 does not; a path of 256 octets with its <> passes, 257 not. */
static int
try_rcpt(struct dime_smtp_sess *s, size_t local, size_t label, size_t n_labels, size_t *path)
{
	char cmd[1200];
	size_t k = (size_t)snprintf(cmd, sizeof(cmd), "RCPT TO:<");
	int got_q;

	memset(cmd + k, 'l', local);
	k += local;
	cmd[k++] = '@';
	for (size_t j = 0; j < n_labels; j++) {
		memset(cmd + k, 'd', label);
		k += label;
		cmd[k++] = '.';
	}
	memcpy(cmd + k, "example>\r\n", 11);
	*path = k; /* from the "<" at offset 8, with "example>" */
	feed_all(s, cmd);
	got_q = dime_smtp_sess_query(s) != NULL;
	if (got_q)
		answer(s, DIME_SMTP_V_OK);
	(void)take(s);
	return got_q;
}

static void
test_address_limits(void)
{
	struct dime_smtp_sess_conf conf = {.max_rcpts = 1000};
	struct dime_smtp_sess *s = new_sess(&conf);
	static const struct {
		size_t local, label, n_labels, path;
		int ok;
	} t[] = {
	    {64, 10, 1, 85, 1},	 {65, 10, 1, 86, 0},  {10, 63, 1, 84, 1}, {10, 64, 1, 85, 0},
	    {64, 63, 2, 202, 1}, {10, 60, 4, 264, 0}, {4, 60, 4, 258, 0}, {3, 60, 4, 257, 0},
	    {2, 60, 4, 256, 1},	 {1, 60, 4, 255, 1},
	};

	feed_all(s, "EHLO c.example\r\nMAIL FROM:<a@alpha.example>\r\n");
	answer(s, DIME_SMTP_V_OK);
	(void)take(s);
	for (size_t i = 0; i < N_ELEMS(t); i++) {
		size_t path = 0;
		int got = try_rcpt(s, t[i].local, t[i].label, t[i].n_labels, &path);

		T_CHECK(path == t[i].path, "address %zu: path of %zu, want %zu", i, path,
			t[i].path);
		T_CHECK(got == t[i].ok, "address %zu (local %zu, label %zu, path %zu): got %d", i,
			t[i].local, t[i].label, path, got);
	}
	dime_smtp_sess_free(s);
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
	test_rcpt_flood();
	test_long_text_lines();
	test_huge_body();
	test_answer_misuse();
	test_conf();
	test_address_limits();
	return t_done("test_smtp_session");
}

/* The DMTP session machine (DIME spec Part 7): splits received bytes into command lines or DATA,
 * keeps the session's state, formats every reply from one code table and opens a query when an
 * answer needs the store or the engine. No I/O, no clock, no keys: the server feeds bytes, sends
 * what is queued and answers queries, so every rule here is testable one byte at a time. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "dime/dmtp_session.h"
#include "outbuf.h"

/* Where a mail transaction stands (spec: MAIL, RCPT, DATA in that order). */
enum sess_txn { TXN_NONE = 0, TXN_MAIL, TXN_RCPT };

/* Where the DATA de-framer stands: at a line start, inside a line, after a CR not yet known to
 * end the line, after a leading dot, after a leading dot and a CR. */
enum sess_dst { DST_BOL = 0, DST_MID, DST_CR, DST_DOT, DST_DOTCR };

struct dime_dmtp_sess {
	struct dime_dmtp_sess_conf conf;
	int started, closed, tls_on, dmtp, helo, draining;
	int tls_pending, tls_target_dmtp;
	int skipping; /* an over-long line: drop bytes up to its LF, then one 500 */
	enum sess_txn txn;
	struct dime_dmtp_cmd mail, rcpt;
	char line[DIME_DMTP_LINE_MAX];
	size_t line_len;
	unsigned n_cmds;
	char tls_host[DIME_DMTP_ADDR_MAX + 1];
	int last_code, last_verb;

	struct dime_outbuf out; /* replies not sent yet */

	int in_data, msg_over, msg_nomem;
	enum sess_dst dst;
	uint8_t *msg;
	size_t msg_len, msg_cap;

	int q_open;
	uint64_t next_id;
	struct dime_dmtp_query q;
};

/* Command table flags. */
#define SESS_NEED_DMTP 0x1u /* 501 in SMTP mode (spec: "DUAL PROTOCOL HOSTS") */
#define SESS_NEED_HELO 0x2u /* 503 before HELO/EHLO (spec: "MESSAGE TRANSFER COMMANDS") */

typedef void (*sess_cmd_fn)(struct dime_dmtp_sess *s, const struct dime_dmtp_cmd *c);

/* ---- output ---- */

static void
sess_close(struct dime_dmtp_sess *s)
{
	s->closed = 1;
	s->tls_pending = 0;
}

static void
sess_put(struct dime_dmtp_sess *s, const char *p, size_t n)
{
	/* Out of memory for a reply: the peer cannot be answered in order, so the only honest
	 * thing left is to hang up. */
	if (dime_outbuf_put(&s->out, p, n) != 0)
		sess_close(s);
}

/* One reply line: "<code><sep><text>\n". */
static void sess_line(struct dime_dmtp_sess *s, int code, char sep, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
sess_line(struct dime_dmtp_sess *s, int code, char sep, const char *fmt, ...)
{
	char buf[1100]; /* a 1,000-octet armor line and its code */
	int n = snprintf(buf, sizeof(buf), "%03d%c", code, sep);
	va_list ap;
	int m;

	va_start(ap, fmt);
	m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	if ((size_t)m > sizeof(buf) - (size_t)n - 2)
		m = (int)(sizeof(buf) - (size_t)n - 2);
	buf[n + m] = '\n';
	sess_put(s, buf, (size_t)(n + m + 1));
	s->last_code = code;
}

#define sess_reply(s, code, ...) sess_line((s), (code), ' ', __VA_ARGS__)

static void
sess_421(struct dime_dmtp_sess *s, const char *why)
{
	sess_reply(s, 421, "<%s> %s, CLOSING CONNECTION", s->conf.hostname, why);
	sess_close(s);
}

/* ---- life cycle ---- */

static int
sess_host_ok(const char *h)
{
	size_t n;

	if (h == NULL || (n = strlen(h)) == 0 || n > DIME_DMTP_ADDR_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (h[i] < 0x21 || h[i] > 0x7e || h[i] == '<' || h[i] == '>')
			return 0;
	return 1;
}

int
dime_dmtp_sess_new(struct dime_dmtp_sess **out, const struct dime_dmtp_sess_conf *conf)
{
	struct dime_dmtp_sess *s;

	*out = NULL;
	if (conf == NULL || !sess_host_ok(conf->hostname) ||
	    (conf->kind != DIME_DMTP_SESS_DMTP && conf->kind != DIME_DMTP_SESS_DUAL))
		return DIME_E_INVALID;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return DIME_E_NOMEM;
	s->conf = *conf;
	if (s->conf.max_message == 0)
		s->conf.max_message = DIME_DMTP_SESS_DEF_MAX_MSG;
	/* Port 26 is TLS from the first byte, and DMTP only (spec "SINGLE PROTOCOL MODE"). */
	s->tls_on = s->dmtp = conf->kind == DIME_DMTP_SESS_DMTP;
	s->last_verb = -1;
	s->next_id = 1;
	*out = s;
	return DIME_OK;
}

static void
sess_msg_free(struct dime_dmtp_sess *s)
{
	if (s->msg != NULL)
		sodium_memzero(s->msg, s->msg_cap);
	free(s->msg);
	s->msg = NULL;
	s->msg_len = s->msg_cap = 0;
}

void
dime_dmtp_sess_free(struct dime_dmtp_sess *s)
{
	if (s == NULL)
		return;
	sess_msg_free(s);
	dime_outbuf_free(&s->out);
	sodium_memzero(s, sizeof(*s));
	free(s);
}

void
dime_dmtp_sess_start(struct dime_dmtp_sess *s)
{
	if (s->started || s->closed)
		return;
	s->started = 1;
	if (s->conf.kind == DIME_DMTP_SESS_DMTP)
		sess_reply(s, 220, "<%s> DMTP dimed ready", s->conf.hostname);
	else
		sess_reply(s, 220, "<%s> ESMTP DMTP dimed ready", s->conf.hostname);
}

/* ---- commands ---- */

static void
sess_txn_reset(struct dime_dmtp_sess *s)
{
	s->txn = TXN_NONE;
	memset(&s->mail, 0, sizeof(s->mail));
	memset(&s->rcpt, 0, sizeof(s->rcpt));
}

static void
sess_query(struct dime_dmtp_sess *s, enum dime_dmtp_qkind kind, const struct dime_dmtp_cmd *c)
{
	memset(&s->q, 0, sizeof(s->q));
	s->q.kind = kind;
	s->q.id = s->next_id++;
	if (c != NULL)
		s->q.cmd = *c;
	s->q_open = 1;
}

static void
sess_do_starttls(struct dime_dmtp_sess *s, const struct dime_dmtp_cmd *c)
{
	/* Implicit TLS, or STARTTLS done: a second one is out of sequence (ECOSYSTEM P12). */
	if (s->tls_on) {
		sess_reply(s, 503, "INVALID COMMAND SEQUENCE: TLS ALREADY ACTIVE");
		return;
	}
	/* MODE=DMTP elevates; no MODE or MODE=SMTP gives TLS in SMTP mode (spec, dual hosts). */
	s->tls_target_dmtp =
	    c != NULL && (c->flags & DIME_DMTP_F_MODE) && strcmp(c->mode, "DMTP") == 0;
	s->tls_host[0] = 0;
	if (c != NULL && (c->flags & DIME_DMTP_F_ADDR))
		memcpy(s->tls_host, c->addr, sizeof(s->tls_host));
	sess_reply(s, 220, "READY TO START TLS");
	s->tls_pending = 1;
}

static void
sess_starttls(struct dime_dmtp_sess *s, const struct dime_dmtp_cmd *c)
{
	sess_do_starttls(s, c);
}

static void
sess_helo_common(struct dime_dmtp_sess *s, int ehlo)
{
	/* A new greeting starts afresh, as RFC 5321's EHLO does; the spec only says the stored
	 * name is replaced, and a transaction begun under the old name must not survive it. */
	s->helo = 1;
	sess_txn_reset(s);
	if (!ehlo) {
		sess_reply(s, 250, "OK <%s>", s->conf.hostname);
		return;
	}
	/* Before elevation a dual host lists DMTP and STARTTLS; after it, or on port 26, never
	 * (spec, EHLO). */
	if (!s->tls_on) {
		sess_line(s, 250, '-', "DMTP");
		sess_line(s, 250, '-', "STARTTLS");
	}
	if (s->dmtp)
		sess_line(s, 250, '-', "SIZE %zu", s->conf.max_message);
	sess_reply(s, 250, "OK <%s>", s->conf.hostname);
}

static void
sess_helo(struct dime_dmtp_sess *s, const struct dime_dmtp_cmd *c)
{
	(void)c;
	sess_helo_common(s, 0);
}

static void
sess_ehlo(struct dime_dmtp_sess *s, const struct dime_dmtp_cmd *c)
{
	(void)c;
	sess_helo_common(s, 1);
}

static void
sess_mode(struct dime_dmtp_sess *s, const struct dime_dmtp_cmd *c)
{
	(void)c;
	sess_reply(s, 250, "OK %s", s->dmtp ? "DMTP" : "ESMTP");
}

static void
sess_rset(struct dime_dmtp_sess *s, const struct dime_dmtp_cmd *c)
{
	(void)c;
	sess_txn_reset(s);
	sess_reply(s, 250, "OK");
}

static void
sess_noop(struct dime_dmtp_sess *s, const struct dime_dmtp_cmd *c)
{
	(void)c;
	sess_reply(s, 250, "OK");
}

static void
sess_help(struct dime_dmtp_sess *s, const struct dime_dmtp_cmd *c)
{
	/* Alphabetical, as the spec recommends; HELD is in its sample but is no command. */
	static const char *const verbs[] = {"DATA", "EHLO", "HELO",	"HELP", "HIST",
					    "MAIL", "MODE", "NOOP",	"QUIT", "RCPT",
					    "RSET", "SGNT", "STARTTLS", "VERB", "VRFY"};
	size_t n = sizeof(verbs) / sizeof(verbs[0]);

	(void)c;
	for (size_t i = 0; i + 1 < n; i++)
		sess_line(s, 214, '-', "%s", verbs[i]);
	sess_reply(s, 214, "%s", verbs[n - 1]);
}

static void
sess_verb(struct dime_dmtp_sess *s, const struct dime_dmtp_cmd *c)
{
	/* A global command with no meaning given (spec): accepted, does nothing. */
	(void)c;
	sess_reply(s, 250, "OK");
}

static void
sess_quit(struct dime_dmtp_sess *s, const struct dime_dmtp_cmd *c)
{
	(void)c;
	sess_reply(s, 221, "BYE");
	sess_close(s);
}

static void
sess_mail(struct dime_dmtp_sess *s, const struct dime_dmtp_cmd *c)
{
	/* MAIL during a transaction = RSET + MAIL (spec: identical results either way). */
	sess_txn_reset(s);
	sess_query(s, DIME_DMTP_Q_ORIGIN, c);
}

static void
sess_rcpt(struct dime_dmtp_sess *s, const struct dime_dmtp_cmd *c)
{
	if (s->txn == TXN_NONE) {
		sess_reply(s, 503, "INVALID COMMAND SEQUENCE: MAIL FIRST");
		return;
	}
	/* One recipient per transaction, a D/MIME envelope holds one (spec, RCPT). */
	if (s->txn == TXN_RCPT) {
		sess_reply(s, 431, "DESTINATION LIMITS EXCEEDED");
		return;
	}
	sess_query(s, DIME_DMTP_Q_RCPT, c);
}

static void
sess_data(struct dime_dmtp_sess *s, const struct dime_dmtp_cmd *c)
{
	(void)c;
	if (s->txn != TXN_RCPT) {
		sess_reply(s, 503, "INVALID COMMAND SEQUENCE: %s FIRST",
			   s->txn == TXN_NONE ? "MAIL" : "RCPT");
		return;
	}
	sess_reply(s, 354, "READY TO RECEIVE MESSAGE");
	s->in_data = 1;
	s->dst = DST_BOL;
	s->msg_len = 0;
	s->msg_over = s->msg_nomem = 0;
}

static void
sess_sgnt(struct dime_dmtp_sess *s, const struct dime_dmtp_cmd *c)
{
	sess_query(s, DIME_DMTP_Q_SGNT, c);
}

static void
sess_hist(struct dime_dmtp_sess *s, const struct dime_dmtp_cmd *c)
{
	sess_query(s, DIME_DMTP_Q_HIST, c);
}

static void
sess_vrfy(struct dime_dmtp_sess *s, const struct dime_dmtp_cmd *c)
{
	sess_query(s, DIME_DMTP_Q_VRFY, c);
}

/* The command table, indexed by enum dime_dmtp_verb: {allowed-state flags, proceed}. */
static const struct {
	unsigned flags;
	sess_cmd_fn fn;
} sess_cmds[DIME_DMTP_N_VERBS] = {
    [DIME_DMTP_STARTTLS] = {0, sess_starttls},
    [DIME_DMTP_HELO] = {0, sess_helo},
    [DIME_DMTP_EHLO] = {0, sess_ehlo},
    [DIME_DMTP_MODE] = {0, sess_mode},
    [DIME_DMTP_RSET] = {0, sess_rset},
    [DIME_DMTP_NOOP] = {0, sess_noop},
    [DIME_DMTP_HELP] = {0, sess_help},
    [DIME_DMTP_QUIT] = {0, sess_quit},
    [DIME_DMTP_MAIL] = {SESS_NEED_DMTP | SESS_NEED_HELO, sess_mail},
    [DIME_DMTP_RCPT] = {SESS_NEED_DMTP | SESS_NEED_HELO, sess_rcpt},
    [DIME_DMTP_DATA] = {SESS_NEED_DMTP | SESS_NEED_HELO, sess_data},
    [DIME_DMTP_SGNT] = {SESS_NEED_DMTP, sess_sgnt},
    [DIME_DMTP_HIST] = {SESS_NEED_DMTP, sess_hist},
    [DIME_DMTP_VRFY] = {SESS_NEED_DMTP, sess_vrfy},
    [DIME_DMTP_VERB] = {0, sess_verb},
};

static char
sess_upper(char ch)
{
	return ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
}

/* Does line[0..n) (terminator included) start with the verb lit, case-insensitive, followed by
 * the terminator (rest == NULL) or a space (*rest: what follows the space)? */
static int
sess_verb_is(const char *line, size_t n, const char *lit, const char **rest)
{
	size_t l = strlen(lit);

	if (n <= l)
		return 0;
	for (size_t i = 0; i < l; i++)
		if (sess_upper(line[i]) != lit[i])
			return 0;
	if (rest == NULL)
		return (n == l + 1 && line[l] == '\n') ||
		       (n == l + 2 && line[l] == '\r' && line[l + 1] == '\n');
	if (line[l] != ' ')
		return 0;
	*rest = line + l + 1;
	return 1;
}

/* SMTP mode only: `HELO name` / `EHLO name` as SMTP clients send it (no <>). Returns: 1 for
 * HELO, 2 for EHLO, 0 when the line is not that. */
static int
sess_smtp_helo(const char *line, size_t n)
{
	const char *rest = NULL, *end = line + n;
	int which;

	if (sess_verb_is(line, n, "HELO", &rest))
		which = 1;
	else if (sess_verb_is(line, n, "EHLO", &rest))
		which = 2;
	else
		return 0;
	if (end[-1] == '\n')
		end--;
	if (end > rest && end[-1] == '\r')
		end--;
	if (end == rest)
		return 0;
	for (const char *p = rest; p < end; p++)
		if (*p < 0x21 || *p > 0x7e)
			return 0;
	return which;
}

/* Spec Part 7: "where an argument is supplied, it is separated from the verb or a previous
 * argument by a space character": one space, never two, none trailing (a rigid syntax; WIRE.md's
 * leniency is case and argument synonyms, not whitespace). NOOP's free text is free past the
 * one space that follows the verb. line[0..n) is a whole line, LF included. */
static int
sess_spacing_ok(const char *line, size_t n, int noop)
{
	size_t end = n - 1, i = 0;

	if (end > 0 && line[end - 1] == '\r')
		end--;
	while (i < end && line[i] != ' ')
		i++;
	if (i == end)
		return 1;
	if (i + 1 == end || line[i + 1] == ' ')
		return 0;
	if (noop)
		return 1;
	for (i++; i < end; i++)
		if (line[i] == ' ' && (i + 1 == end || line[i + 1] == ' '))
			return 0;
	return 1;
}

static void
sess_line_too_long(struct dime_dmtp_sess *s)
{
	sess_reply(s, 500, "COMMAND SYNTAX ERROR: LINE TOO LONG");
}

/* Count a command line against the cap. Returns: 1 to go on, 0 when the cap closed the session. */
static int
sess_count(struct dime_dmtp_sess *s)
{
	s->n_cmds++;
	if (s->conf.max_cmds != 0 && s->n_cmds > s->conf.max_cmds) {
		sess_421(s, "TOO MANY COMMANDS");
		return 0;
	}
	return 1;
}

/* One whole command line, LF included. */
static void
sess_command(struct dime_dmtp_sess *s, const char *line, size_t n)
{
	struct dime_dmtp_cmd c;
	const char *why = "";
	int rc, h;

	s->last_verb = -1;
	if (!sess_count(s))
		return;
	/* A CR anywhere but right before the LF is a bare CR: one error for the whole line, never
	 * two commands (ECOSYSTEM P7). */
	for (size_t i = 0; i + 1 < n; i++)
		if (line[i] == '\r' && i + 2 != n) {
			sess_reply(s, 500, "COMMAND SYNTAX ERROR: BARE CR");
			return;
		}
	/* A bare STARTTLS is what SMTP clients send: TLS in SMTP mode (brief, spec dual hosts). */
	if (sess_verb_is(line, n, "STARTTLS", NULL)) {
		s->last_verb = DIME_DMTP_STARTTLS;
		sess_do_starttls(s, NULL);
		return;
	}
	rc = dime_dmtp_parse(&c, &why, line, n);
	/* A known verb (parsed, or refused for its arguments) with extra spaces: 501, whatever
	 * the parser, which tolerates runs of spaces, made of it. */
	if ((rc == DIME_OK || rc == DIME_E_MALFORMED) &&
	    !sess_spacing_ok(line, n, rc == DIME_OK && c.verb == DIME_DMTP_NOOP)) {
		sess_reply(s, 501, "ARGUMENT SYNTAX ERROR: EXTRA WHITESPACE");
		return;
	}
	if (rc == DIME_OK)
		rc = dime_dmtp_check(&c, &why);
	if (rc != DIME_OK) {
		if (!s->dmtp && rc == DIME_E_MALFORMED && (h = sess_smtp_helo(line, n)) != 0) {
			s->last_verb = h == 1 ? DIME_DMTP_HELO : DIME_DMTP_EHLO;
			sess_helo_common(s, h == 2);
			return;
		}
		if (dime_dmtp_reply_code(rc) == 501)
			sess_reply(s, 501, "ARGUMENT SYNTAX ERROR: %s", why);
		else
			sess_reply(s, 500, "COMMAND SYNTAX ERROR: %s", why);
		return;
	}
	s->last_verb = (int)c.verb;
	if ((sess_cmds[c.verb].flags & SESS_NEED_DMTP) && !s->dmtp) {
		sess_reply(s, 501, "ARGUMENT SYNTAX ERROR: DMTP COMMAND IN SMTP MODE");
		return;
	}
	if ((sess_cmds[c.verb].flags & SESS_NEED_HELO) && !s->helo) {
		sess_reply(s, 503, "INVALID COMMAND SEQUENCE: HELO FIRST");
		return;
	}
	sess_cmds[c.verb].fn(s, &c);
}

/* ---- DATA ---- */

static void
sess_msg_add(struct dime_dmtp_sess *s, const uint8_t *p, size_t n)
{
	if (s->msg_over || s->msg_nomem)
		return;
	/* Never buffer past the cap: drop the message and drain to its end (552 then). */
	if (n > s->conf.max_message - s->msg_len) {
		s->msg_over = 1;
		sess_msg_free(s);
		return;
	}
	if (n > s->msg_cap - s->msg_len) {
		size_t cap = s->msg_cap ? s->msg_cap : 4096;
		uint8_t *nb;

		while (cap - s->msg_len < n)
			cap = cap > s->conf.max_message / 2 ? s->conf.max_message : cap * 2;
		nb = realloc(s->msg, cap);
		if (nb == NULL) {
			s->msg_nomem = 1;
			sess_msg_free(s);
			return;
		}
		s->msg = nb;
		s->msg_cap = cap;
	}
	memcpy(s->msg + s->msg_len, p, n);
	s->msg_len += n;
}

static void
sess_data_end(struct dime_dmtp_sess *s)
{
	s->in_data = 0;
	if (s->msg_over || s->msg_nomem) {
		sess_txn_reset(s);
		sess_msg_free(s);
		if (s->msg_over)
			sess_reply(s, 552, "MESSAGE TOO LARGE (LIMIT %zu OCTETS)",
				   s->conf.max_message);
		else
			sess_reply(s, 451, "TRY AGAIN LATER: OUT OF MEMORY");
		if (s->draining)
			sess_421(s, "SHUTTING DOWN");
		return;
	}
	sess_query(s, DIME_DMTP_Q_DATA, &s->rcpt);
	s->q.mail = s->mail;
	s->q.data = s->msg != NULL ? s->msg : (const uint8_t *)"";
	s->q.data_len = s->msg_len;
}

/* Consume message bytes up to and including the "<LF>.<LF>" that ends them. A line that starts
 * with a dot loses that dot (dot-stuffing, as SMTP), CRLF becomes LF, a bare CR stays data.
 * Returns: octets consumed. */
static size_t
sess_data_feed(struct dime_dmtp_sess *s, const uint8_t *p, size_t len)
{
	static const uint8_t lf = '\n', cr = '\r';
	size_t i = 0;

	while (i < len) {
		uint8_t c = p[i];

		if (s->dst == DST_MID) {
			/* Fast path: copy the run up to the next CR or LF at once. */
			size_t j = i;

			while (j < len && p[j] != '\r' && p[j] != '\n')
				j++;
			sess_msg_add(s, p + i, j - i);
			i = j;
			if (i == len)
				break;
			c = p[i];
		}
		i++;
		switch (s->dst) {
		case DST_DOT:
			if (c == '\n') {
				sess_data_end(s);
				return i;
			}
			if (c == '\r') {
				s->dst = DST_DOTCR;
				continue;
			}
			s->dst = DST_MID; /* the leading dot is dropped */
			break;
		case DST_DOTCR:
			if (c == '\n') {
				sess_data_end(s);
				return i;
			}
			s->dst = DST_MID; /* ".\rX": the dot goes, the bare CR stays */
			sess_msg_add(s, &cr, 1);
			break;
		case DST_CR:
			if (c == '\n') {
				sess_msg_add(s, &lf, 1);
				s->dst = DST_BOL;
				continue;
			}
			sess_msg_add(s, &cr, 1);
			s->dst = DST_MID;
			break;
		case DST_BOL:
			if (c == '.') {
				s->dst = DST_DOT;
				continue;
			}
			s->dst = DST_MID;
			break;
		case DST_MID: break;
		}
		if (c == '\r') {
			s->dst = DST_CR;
		} else if (c == '\n') {
			sess_msg_add(s, &lf, 1);
			s->dst = DST_BOL;
		} else {
			sess_msg_add(s, &c, 1);
			s->dst = DST_MID;
		}
	}
	return i;
}

/* ---- feeding ---- */

static size_t
sess_out_pending(const struct dime_dmtp_sess *s)
{
	return dime_outbuf_pending(&s->out);
}

size_t
dime_dmtp_sess_feed(struct dime_dmtp_sess *s, const uint8_t *p, size_t len)
{
	size_t i = 0;

	if (s->closed)
		return len;
	if (!s->started) {
		/* An early talker (ECOSYSTEM P10): rejected by policy, else held for the banner. */
		if (len > 0 && s->conf.early_talk_reject) {
			sess_reply(s, 554, "<%s> PROTOCOL VIOLATION: TALKED BEFORE THE BANNER",
				   s->conf.hostname);
			sess_close(s);
			return len;
		}
		return 0;
	}
	while (i < len) {
		uint8_t c;

		if (s->closed)
			return len;
		if (s->q_open || s->tls_pending || sess_out_pending(s) >= DIME_DMTP_SESS_OUT_HIGH)
			break;
		if (s->in_data) {
			i += sess_data_feed(s, p + i, len - i);
			continue;
		}
		c = p[i++];
		if (s->skipping) {
			if (c == '\n') {
				s->skipping = 0;
				if (sess_count(s))
					sess_line_too_long(s);
			}
			continue;
		}
		if (c == '\n') {
			s->line[s->line_len++] = '\n';
			sess_command(s, s->line, s->line_len);
			s->line_len = 0;
			continue;
		}
		/* 511 octets and no LF yet: with its LF the line would pass 512 (spec limit). */
		if (s->line_len >= DIME_DMTP_LINE_MAX - 1) {
			s->skipping = 1;
			s->line_len = 0;
			continue;
		}
		s->line[s->line_len++] = (char)c;
	}
	if (s->closed)
		return len;
	return i;
}

unsigned
dime_dmtp_sess_actions(const struct dime_dmtp_sess *s)
{
	unsigned a = 0;

	if (s->closed)
		return DIME_DMTP_ACT_CLOSE;
	if (s->q_open)
		a |= DIME_DMTP_ACT_QUERY;
	if (s->tls_pending)
		a |= DIME_DMTP_ACT_TLS;
	if (s->in_data)
		a |= DIME_DMTP_ACT_DATA;
	return a;
}

const uint8_t *
dime_dmtp_sess_out(const struct dime_dmtp_sess *s, size_t *len)
{
	return dime_outbuf_get(&s->out, len);
}

void
dime_dmtp_sess_out_done(struct dime_dmtp_sess *s, size_t n)
{
	dime_outbuf_done(&s->out, n);
}

const struct dime_dmtp_query *
dime_dmtp_sess_query(const struct dime_dmtp_sess *s)
{
	return s->q_open && !s->closed ? &s->q : NULL;
}

/* ---- answers ---- */

#define V(x)  (1u << DIME_DMTP_V_##x)
#define V_ANY (V(TEMPFAIL) | V(BUSY))

static unsigned
sess_allowed(enum dime_dmtp_qkind k)
{
	switch (k) {
	case DIME_DMTP_Q_ORIGIN:
		return V(OK) | V(ORIGIN_TEMP) | V(ORIGIN_PERM) | V(ORIGIN_INVALID) | V_ANY;
	case DIME_DMTP_Q_RCPT: return V(OK) | V(RCPT_INVALID) | V_ANY;
	case DIME_DMTP_Q_DATA:
		return V(ACCEPTED) | V(DUPLICATE) | V(INVALID) | V(BAD_ORIGIN) |
		       V(UNKNOWN_RECIPIENT) | V(EXPIRED) | V_ANY;
	case DIME_DMTP_Q_SGNT:
		return V(ORG_SIGNET) | V(USER_SIGNET) | V(UNAVAILABLE) | V(SIGNET_TEMP) | V_ANY;
	case DIME_DMTP_Q_HIST: return V(HISTORY) | V(UNAVAILABLE) | V(SIGNET_TEMP) | V_ANY;
	case DIME_DMTP_Q_VRFY:
		return V(ORG_SIGNET) | V(USER_SIGNET) | V(ORG_CURRENT) | V(USER_CURRENT) |
		       V(UNAVAILABLE) | V(SIGNET_TEMP) | V_ANY;
	}
	return 0;
}

static int
sess_hash_ok(const char *h)
{
	for (size_t i = 0; i < DIME_DMTP_SESS_HASH_CHARS; i++) {
		char ch = h[i];

		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '+' || ch == '/'))
			return 0;
	}
	return h[DIME_DMTP_SESS_HASH_CHARS] == 0;
}

/* Walk armor's lines (LF or CRLF; a last line without LF counts). emit 0: check only (printable
 * ASCII, at most 1,000 octets a line, at least one line); emit 1: queue "<code>-<line>". */
static int
sess_armor(struct dime_dmtp_sess *s, int code, const char *a, size_t n, int emit)
{
	size_t i = 0, lines = 0;

	while (i < n) {
		const char *nl = memchr(a + i, '\n', n - i);
		size_t end = nl != NULL ? (size_t)(nl - a) : n, l = end - i;

		if (l > 0 && a[i + l - 1] == '\r')
			l--;
		if (l > 1000)
			return 0;
		for (size_t j = 0; j < l; j++)
			if (a[i + j] < 0x20 || a[i + j] > 0x7e)
				return 0;
		if (emit)
			sess_line(s, code, '-', "%.*s", (int)l, a + i);
		lines++;
		i = nl != NULL ? end + 1 : n;
	}
	return lines > 0;
}

static void
sess_answer_reply(struct dime_dmtp_sess *s, const struct dime_dmtp_answer *a)
{
	switch (a->verdict) {
	case DIME_DMTP_V_OK: sess_reply(s, 250, "OK"); break;
	case DIME_DMTP_V_ORIGIN_TEMP: sess_reply(s, 470, "ORIGIN SIGNET UNAVAILABLE"); break;
	case DIME_DMTP_V_ORIGIN_PERM: sess_reply(s, 570, "ORIGIN SIGNET UNAVAILABLE"); break;
	case DIME_DMTP_V_ORIGIN_INVALID: sess_reply(s, 575, "INVALID ORIGIN SIGNET"); break;
	case DIME_DMTP_V_RCPT_INVALID: sess_reply(s, 576, "INVALID DESTINATION SIGNET"); break;
	case DIME_DMTP_V_ACCEPTED: sess_reply(s, 254, "ACCEPTED=%s", a->hash); break;
	case DIME_DMTP_V_DUPLICATE: sess_reply(s, 255, "DUPLICATE=%s", a->hash); break;
	case DIME_DMTP_V_INVALID: sess_reply(s, 451, "DATA CORRUPTED"); break;
	case DIME_DMTP_V_BAD_ORIGIN: sess_reply(s, 578, "INVALID ORIGIN SIGNATURE"); break;
	case DIME_DMTP_V_UNKNOWN_RECIPIENT: sess_reply(s, 510, "INVALID RECIPIENT"); break;
	case DIME_DMTP_V_EXPIRED: sess_reply(s, 586, "INVALID RECIPIENT SIGNET"); break;
	case DIME_DMTP_V_ORG_SIGNET:
		(void)sess_armor(s, 270, a->armor, a->armor_len, 1);
		sess_reply(s, 270, "OK");
		break;
	case DIME_DMTP_V_USER_SIGNET:
		(void)sess_armor(s, 280, a->armor, a->armor_len, 1);
		sess_reply(s, 280, "OK");
		break;
	case DIME_DMTP_V_HISTORY:
		(void)sess_armor(s, 290, a->armor, a->armor_len, 1);
		sess_reply(s, 290, "OK");
		break;
	case DIME_DMTP_V_ORG_CURRENT: sess_reply(s, 271, "ORGANIZATIONAL SIGNET CURRENT"); break;
	case DIME_DMTP_V_USER_CURRENT: sess_reply(s, 281, "USER SIGNET CURRENT"); break;
	case DIME_DMTP_V_UNAVAILABLE: sess_reply(s, 576, "SIGNET UNAVAILABLE"); break;
	case DIME_DMTP_V_SIGNET_TEMP: sess_reply(s, 476, "SIGNET TEMPORARILY UNAVAILABLE"); break;
	case DIME_DMTP_V_TEMPFAIL: sess_reply(s, 451, "TRY AGAIN LATER"); break;
	case DIME_DMTP_V_BUSY: sess_421(s, "BUSY"); break;
	}
}

int
dime_dmtp_sess_answer(struct dime_dmtp_sess *s, const struct dime_dmtp_answer *a)
{
	enum dime_dmtp_verdict v = a->verdict;
	int bad = 0;

	if (!s->q_open || s->closed || a->id != s->q.id || v < DIME_DMTP_V_OK ||
	    v > DIME_DMTP_V_BUSY || !(sess_allowed(s->q.kind) & (1u << v)))
		return DIME_E_INVALID;
	if ((v == DIME_DMTP_V_ACCEPTED || v == DIME_DMTP_V_DUPLICATE) && !sess_hash_ok(a->hash))
		bad = 1;
	if ((v == DIME_DMTP_V_ORG_SIGNET || v == DIME_DMTP_V_USER_SIGNET ||
	     v == DIME_DMTP_V_HISTORY) &&
	    (a->armor == NULL || !sess_armor(s, 0, a->armor, a->armor_len, 0)))
		bad = 1;
	if (bad)
		sess_reply(s, 451, "TRY AGAIN LATER: INTERNAL ERROR");
	else
		sess_answer_reply(s, a);
	switch (s->q.kind) {
	case DIME_DMTP_Q_ORIGIN:
		if (!bad && v == DIME_DMTP_V_OK) {
			s->txn = TXN_MAIL;
			s->mail = s->q.cmd;
		}
		break;
	case DIME_DMTP_Q_RCPT:
		if (!bad && v == DIME_DMTP_V_OK) {
			s->txn = TXN_RCPT;
			s->rcpt = s->q.cmd;
		} else if (v == DIME_DMTP_V_RCPT_INVALID) {
			sess_txn_reset(s); /* spec, RCPT: "clear any state information" */
		}
		break;
	case DIME_DMTP_Q_DATA:
		/* Whatever the verdict, the transaction is over (spec, DATA). */
		sess_txn_reset(s);
		sess_msg_free(s);
		break;
	default: break;
	}
	memset(&s->q, 0, sizeof(s->q));
	s->q_open = 0;
	if (s->draining && !s->closed)
		sess_421(s, "SHUTTING DOWN");
	return bad ? DIME_E_INVALID : DIME_OK;
}

/* ---- TLS, timers, shutdown ---- */

const char *
dime_dmtp_sess_tls_host(const struct dime_dmtp_sess *s)
{
	return s->tls_host;
}

void
dime_dmtp_sess_tls_done(struct dime_dmtp_sess *s, enum dime_dmtp_tls_result r)
{
	if (!s->tls_pending || s->closed)
		return;
	s->tls_pending = 0;
	if (r == DIME_DMTP_TLS_FAILED) {
		sess_close(s);
		return;
	}
	/* MODE=DMTP with another suite must fail (spec, dual hosts; ECOSYSTEM P12). */
	if (r != DIME_DMTP_TLS_OK && s->tls_target_dmtp) {
		sess_421(s, "DMTP REQUIRES ECDHE-RSA-AES256-GCM-SHA384");
		return;
	}
	/* Everything from before the handshake is forgotten, HELO included (spec). */
	s->tls_on = 1;
	s->dmtp = s->tls_target_dmtp;
	s->helo = 0;
	sess_txn_reset(s);
	s->line_len = 0;
	s->skipping = 0;
	sess_reply(s, 250, "OK %s <%s>", s->dmtp ? "DMTP" : "ESMTP", s->conf.hostname);
	if (s->draining)
		sess_421(s, "SHUTTING DOWN");
}

void
dime_dmtp_sess_timeout(struct dime_dmtp_sess *s)
{
	if (s->closed)
		return;
	sess_421(s, "TIMEOUT");
}

void
dime_dmtp_sess_drain(struct dime_dmtp_sess *s)
{
	if (s->closed)
		return;
	s->draining = 1;
	if (!s->in_data && !s->q_open && !s->tls_pending)
		sess_421(s, "SHUTTING DOWN");
}

int
dime_dmtp_sess_is_dmtp(const struct dime_dmtp_sess *s)
{
	return s->dmtp;
}

int
dime_dmtp_sess_last_code(const struct dime_dmtp_sess *s)
{
	return s->last_code;
}

int
dime_dmtp_sess_last_verb(const struct dime_dmtp_sess *s)
{
	return s->last_verb;
}

/* The ESMTP server session machine (RFC 5321): splits received bytes into command lines or DATA,
 * keeps the session's state, checks envelope addresses, formats every reply with its enhanced
 * status code and opens a query when an answer needs policy, the store or the engine. No I/O, no
 * clock, no TLS library: the server feeds bytes, sends what is queued and answers queries, so
 * every rule here is testable one byte at a time. The rules are in docs/smtp.md. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "dime/smtp_session.h"
#include "outbuf.h"

/* Where the DATA de-framer stands: at a line start, inside a line, after a CR not yet known to
 * end the line, after a leading dot, after a leading dot and a CR. */
enum sess_dst { DST_BOL = 0, DST_MID, DST_CR, DST_DOT, DST_DOTCR };

struct dime_smtp_sess {
	struct dime_smtp_sess_conf conf;
	int started, closed, tls_on, helo, draining, tls_pending;
	int skipping; /* an over-long command line: drop bytes up to its LF, then one 500 */
	char line[DIME_SMTP_LINE_MAX];
	size_t line_len;
	unsigned n_cmds;
	int last_code, last_verb;

	int in_txn;			     /* MAIL accepted */
	struct dime_smtp_mail mail;	     /* the transaction's, when in_txn */
	struct dime_smtp_mail q_mail;	     /* the MAIL a query asks about */
	char q_rcpt[DIME_SMTP_PATH_MAX + 1]; /* the RCPT a query asks about */
	char **rcpts;			     /* accepted recipients, each malloc'd */
	size_t n_rcpts, rcpts_cap;

	struct dime_outbuf out; /* replies not sent yet */

	int in_data, msg_over, msg_nomem;
	enum sess_dst dst;
	int bol_crlf;	 /* the previous message line ended in CRLF (or none yet) */
	size_t cur_line; /* octets stored of the current message line */
	unsigned dflags; /* DIME_SMTP_DATA_* seen so far */
	uint8_t *msg;
	size_t msg_len, msg_cap;

	int q_open;
	uint64_t next_id;
	struct dime_smtp_query q;
};

typedef void (*sess_cmd_fn)(struct dime_smtp_sess *s, const char *arg, size_t arg_len, int has_arg);

/* ---- output ---- */

static void
sess_close(struct dime_smtp_sess *s)
{
	s->closed = 1;
	s->tls_pending = 0;
}

static void
sess_put(struct dime_smtp_sess *s, const char *p, size_t n)
{
	/* Out of memory for a reply: the peer cannot be answered in order, so the only honest
	 * thing left is to hang up. */
	if (dime_outbuf_put(&s->out, p, n) != 0)
		sess_close(s);
}

/* One reply line: "<code><sep><text>CRLF", at most 512 octets (RFC 5321 4.5.3.1.5). */
static void sess_line(struct dime_smtp_sess *s, int code, char sep, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
sess_line(struct dime_smtp_sess *s, int code, char sep, const char *fmt, ...)
{
	char buf[DIME_SMTP_LINE_MAX];
	int n = snprintf(buf, sizeof(buf), "%03d%c", code, sep);
	va_list ap;
	int m;

	va_start(ap, fmt);
	m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	if ((size_t)m > sizeof(buf) - (size_t)n - 2)
		m = (int)(sizeof(buf) - (size_t)n - 2);
	buf[n + m] = '\r';
	buf[n + m + 1] = '\n';
	sess_put(s, buf, (size_t)(n + m + 2));
	s->last_code = code;
}

#define sess_reply(s, code, ...) sess_line((s), (code), ' ', __VA_ARGS__)

static void
sess_421(struct dime_smtp_sess *s, const char *status, const char *why)
{
	sess_reply(s, 421, "%s %s %s", status, s->conf.hostname, why);
	sess_close(s);
}

static void
sess_shutdown(struct dime_smtp_sess *s)
{
	sess_421(s, "4.3.2", "Service shutting down");
}

/* ---- life cycle ---- */

static int
sess_host_ok(const char *h)
{
	size_t n;

	if (h == NULL || (n = strlen(h)) == 0 || n > DIME_SMTP_HOST_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (h[i] < 0x21 || h[i] > 0x7e || h[i] == '<' || h[i] == '>')
			return 0;
	return 1;
}

int
dime_smtp_sess_new(struct dime_smtp_sess **out, const struct dime_smtp_sess_conf *conf)
{
	struct dime_smtp_sess *s;

	*out = NULL;
	if (conf == NULL || !sess_host_ok(conf->hostname) ||
	    conf->max_rcpts > DIME_SMTP_SESS_MAX_RCPTS ||
	    (conf->bare_lf != DIME_SMTP_BARE_LF_NORMALIZE &&
	     conf->bare_lf != DIME_SMTP_BARE_LF_REJECT))
		return DIME_E_INVALID;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return DIME_E_NOMEM;
	s->conf = *conf;
	if (s->conf.max_message == 0)
		s->conf.max_message = DIME_SMTP_SESS_DEF_MAX_MSG;
	if (s->conf.max_rcpts == 0)
		s->conf.max_rcpts = DIME_SMTP_SESS_DEF_MAX_RCPTS;
	s->last_verb = -1;
	s->next_id = 1;
	*out = s;
	return DIME_OK;
}

static void
sess_msg_free(struct dime_smtp_sess *s)
{
	if (s->msg != NULL)
		sodium_memzero(s->msg, s->msg_cap);
	free(s->msg);
	s->msg = NULL;
	s->msg_len = s->msg_cap = 0;
}

static void
sess_rcpts_clear(struct dime_smtp_sess *s)
{
	for (size_t i = 0; i < s->n_rcpts; i++) {
		sodium_memzero(s->rcpts[i], strlen(s->rcpts[i]));
		free(s->rcpts[i]);
		s->rcpts[i] = NULL;
	}
	s->n_rcpts = 0;
}

void
dime_smtp_sess_free(struct dime_smtp_sess *s)
{
	if (s == NULL)
		return;
	sess_msg_free(s);
	sess_rcpts_clear(s);
	free(s->rcpts);
	dime_outbuf_free(&s->out);
	sodium_memzero(s, sizeof(*s));
	free(s);
}

void
dime_smtp_sess_start(struct dime_smtp_sess *s)
{
	if (s->started || s->closed)
		return;
	s->started = 1;
	sess_reply(s, 220, "%s %s dimed", s->conf.hostname, s->conf.lmtp ? "LMTP" : "ESMTP");
}

/* ---- transactions and queries ---- */

static void
sess_txn_reset(struct dime_smtp_sess *s)
{
	s->in_txn = 0;
	memset(&s->mail, 0, sizeof(s->mail));
	sess_rcpts_clear(s);
}

static void
sess_query(struct dime_smtp_sess *s, enum dime_smtp_qkind kind)
{
	memset(&s->q, 0, sizeof(s->q));
	s->q.kind = kind;
	s->q.id = s->next_id++;
	s->q.mail = kind == DIME_SMTP_Q_MAIL ? &s->q_mail : &s->mail;
	s->q.rcpt = kind == DIME_SMTP_Q_RCPT ? s->q_rcpt : NULL;
	if (kind != DIME_SMTP_Q_MAIL) {
		s->q.rcpts = (const char *const *)s->rcpts;
		s->q.n_rcpts = s->n_rcpts;
	}
	s->q_open = 1;
}

/* ---- addresses (RFC 5321 4.1.2, RFC 6531 3.3) ---- */

enum sess_addr_rc { ADDR_OK = 0, ADDR_SYNTAX, ADDR_8BIT };

static int
sess_alpha(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int
sess_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int
sess_atext(unsigned char c)
{
	return sess_alpha(c) || sess_digit(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* Length of the well-formed UTF-8 sequence of a non-ASCII character at p[0..n) (RFC 3629: no
 * overlongs, no surrogates, nothing past U+10FFFF), or 0. */
static size_t
sess_utf8_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

/* Domain at p[0..n): sub-domains of letters, digits and inner hyphens (RFC 5321 4.1.2), 63
 * octets a label; with utf8 a label may hold UTF-8 characters (a U-label, RFC 6531 3.3); or an
 * address literal. Returns 1 when valid. */
static int
sess_domain_ok(const unsigned char *p, size_t n, int utf8)
{
	size_t i = 0;

	if (n == 0 || n > DIME_SMTP_DOMAIN_MAX)
		return 0;
	if (p[0] == '[') {
		/* address-literal: IPv4 dotted quad, "IPv6:" hex, or tag ":" dcontent. */
		size_t e = n - 1, k = 1;
		unsigned parts = 0;

		if (n < 3 || p[e] != ']')
			return 0;
		if (sess_digit(p[1])) {
			while (k < e) {
				unsigned v = 0, dig = 0;

				while (k < e && sess_digit(p[k]) && dig < 4) {
					v = v * 10 + (unsigned)(p[k++] - '0');
					dig++;
				}
				if (dig == 0 || dig > 3 || v > 255)
					return 0;
				parts++;
				if (k < e && (p[k] != '.' || ++k == e))
					return 0;
			}
			return parts == 4;
		}
		while (k < e && (sess_alpha(p[k]) || sess_digit(p[k]) || p[k] == '-'))
			k++;
		if (k == 1 || k >= e - 1 || p[k] != ':' || p[k - 1] == '-')
			return 0;
		for (k++; k < e; k++)
			if (p[k] < 33 || p[k] > 126 || p[k] == '[' || p[k] == '\\' || p[k] == ']')
				return 0;
		return 1;
	}
	while (i <= n) {
		size_t start = i;

		while (i < n && p[i] != '.') {
			if (p[i] >= 0x80) {
				size_t l = utf8 ? sess_utf8_len(p + i, n - i) : 0;

				if (l == 0)
					return 0;
				i += l;
			} else if (sess_alpha(p[i]) || sess_digit(p[i]) || p[i] == '-') {
				i++;
			} else {
				return 0;
			}
		}
		if (i == start || i - start > 63 || p[start] == '-' || p[i - 1] == '-')
			return 0;
		if (i == n)
			return 1;
		i++; /* the dot; a trailing one leaves an empty label */
	}
	return 0;
}

/* Check the path p[0..n) ("<" ... ">", as found by sess_path_extent) and copy its mailbox, the
 * source route dropped (RFC 5321 4.1.1.3: "SHOULD" ignore it), to out. is_mail: <> allowed;
 * otherwise <postmaster> without a domain is. utf8: the transaction has SMTPUTF8. */
static enum sess_addr_rc
sess_addr(char out[DIME_SMTP_PATH_MAX + 1], const char *path, size_t n, int is_mail, int utf8)
{
	const unsigned char *p = (const unsigned char *)path + 1;
	size_t len = n - 2, i = 0, at;

	out[0] = 0;
	/* Non-ASCII only with SMTPUTF8, and then well-formed UTF-8, so the walks below may step
	 * over whole characters. */
	for (size_t k = 0; k < len; k++)
		if (p[k] >= 0x80) {
			size_t cl = utf8 ? sess_utf8_len(p + k, len - k) : 0;

			if (!utf8)
				return ADDR_8BIT;
			if (cl == 0)
				return ADDR_SYNTAX;
			k += cl - 1;
		}
	if (n > DIME_SMTP_PATH_MAX)
		return ADDR_SYNTAX;
	if (len == 0)
		return is_mail ? ADDR_OK : ADDR_SYNTAX;
	/* A-d-l ":": "@dom,@dom:" before the mailbox. */
	if (p[0] == '@') {
		size_t colon = 0;

		while (colon < len && p[colon] != ':')
			colon++;
		if (colon == len)
			return ADDR_SYNTAX;
		for (size_t k = 0; k < colon;) {
			size_t e = k + 1;

			if (p[k] != '@')
				return ADDR_SYNTAX;
			while (e < colon && p[e] != ',')
				e++;
			if (!sess_domain_ok(p + k + 1, e - k - 1, utf8))
				return ADDR_SYNTAX;
			k = e == colon ? e : e + 1;
			if (e < colon && k == colon)
				return ADDR_SYNTAX; /* a trailing comma */
		}
		p += colon + 1;
		len -= colon + 1;
	}
	if (!is_mail && len == 10) {
		static const char pm[] = "postmaster";
		size_t k = 0;

		while (k < 10 && (p[k] | 0x20) == (unsigned char)pm[k])
			k++;
		if (k == 10)
			goto ok;
	}
	/* Local-part: Dot-string or Quoted-string. */
	if (i < len && p[i] == '"') {
		for (i++; i < len && p[i] != '"'; i++) {
			if (p[i] == '\\') {
				if (++i == len || p[i] < 32 || p[i] > 126)
					return ADDR_SYNTAX;
			} else if (p[i] >= 0x80) {
				i += sess_utf8_len(p + i, len - i) - 1; /* checked above */
			} else if (p[i] < 32 || p[i] > 126) {
				return ADDR_SYNTAX;
			}
		}
		if (i == len)
			return ADDR_SYNTAX;
		i++;
	} else {
		size_t atom = 0;

		for (; i < len && p[i] != '@'; i++) {
			if (p[i] == '.') {
				if (atom == 0)
					return ADDR_SYNTAX;
				atom = 0;
				continue;
			}
			if (p[i] >= 0x80)
				i += sess_utf8_len(p + i, len - i) - 1;
			else if (!sess_atext(p[i]))
				return ADDR_SYNTAX;
			atom++;
		}
		if (atom == 0)
			return ADDR_SYNTAX;
	}
	at = i;
	if (at > DIME_SMTP_LOCAL_MAX || at == len || p[at] != '@' ||
	    !sess_domain_ok(p + at + 1, len - at - 1, utf8))
		return ADDR_SYNTAX;
ok:
	memcpy(out, p, len);
	out[len] = 0;
	return ADDR_OK;
}

/* Length of the path "<...>" at the start of p[0..n), '>' included, or 0 when there is none.
 * A '>' inside a quoted local part does not end it. */
static size_t
sess_path_extent(const char *p, size_t n)
{
	int quoted = 0;

	if (n == 0 || p[0] != '<')
		return 0;
	for (size_t i = 1; i < n; i++) {
		if (quoted) {
			if (p[i] == '\\')
				i++;
			else if (p[i] == '"')
				quoted = 0;
		} else if (p[i] == '"') {
			quoted = 1;
		} else if (p[i] == '>') {
			return i + 1;
		} else if (p[i] == '<') {
			return 0;
		}
	}
	return 0;
}

/* ---- commands ---- */

static int
sess_prefix(const char *p, size_t n, const char *lit)
{
	size_t l = strlen(lit);

	if (n < l)
		return 0;
	for (size_t i = 0; i < l; i++)
		if ((sess_alpha((unsigned char)p[i]) ? (p[i] & ~0x20) : p[i]) != lit[i])
			return 0;
	return 1;
}

/* kind: 0 HELO, 1 EHLO, 2 LHLO (RFC 2033 4.1: EHLO's reply under another name). */
static void
sess_do_helo(struct dime_smtp_sess *s, const char *arg, size_t n, int has_arg, int kind)
{
	if (!has_arg || n == 0 || n > DIME_SMTP_DOMAIN_MAX || memchr(arg, ' ', n) != NULL) {
		sess_reply(s, 501, "5.5.4 Syntax: %s hostname",
			   kind == 2   ? "LHLO"
			   : kind == 1 ? "EHLO"
				       : "HELO");
		return;
	}
	/* A later greeting resets the transaction, as RSET does (RFC 5321 4.1.4). */
	s->helo = 1;
	sess_txn_reset(s);
	if (kind == 0) {
		sess_reply(s, 250, "%s", s->conf.hostname);
		return;
	}
	sess_line(s, 250, '-', "%s", s->conf.hostname);
	sess_line(s, 250, '-', "PIPELINING");
	sess_line(s, 250, '-', "SIZE %zu", s->conf.max_message);
	if (s->conf.tls_available && !s->tls_on)
		sess_line(s, 250, '-', "STARTTLS");
	sess_line(s, 250, '-', "ENHANCEDSTATUSCODES");
	sess_line(s, 250, '-', "8BITMIME");
	sess_reply(s, 250, "SMTPUTF8");
}

static void
sess_helo(struct dime_smtp_sess *s, const char *arg, size_t n, int has_arg)
{
	sess_do_helo(s, arg, n, has_arg, 0);
}

static void
sess_lhlo(struct dime_smtp_sess *s, const char *arg, size_t n, int has_arg)
{
	sess_do_helo(s, arg, n, has_arg, 2);
}

static void
sess_ehlo(struct dime_smtp_sess *s, const char *arg, size_t n, int has_arg)
{
	sess_do_helo(s, arg, n, has_arg, 1);
}

/* Parse MAIL's parameters p[0..n) (each " KEY[=VALUE]") into m. Returns the reply code to send
 * (0: all good), its text in *why. */
static int
sess_mail_params(struct dime_smtp_mail *m, const char **why, const char *p, size_t n,
		 size_t max_message)
{
	int seen_size = 0, seen_body = 0;
	size_t i = 0;

	while (i < n) {
		size_t k, ke, ve;

		if (p[i] != ' ' || i + 1 == n || p[i + 1] == ' ') {
			*why = "5.5.4 Syntax error in parameters";
			return 501;
		}
		k = ++i;
		while (i < n && p[i] != ' ')
			i++;
		ve = i;
		ke = k;
		while (ke < ve && p[ke] != '=')
			ke++;
		/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"); esmtp-value is
		 * %d33-60 / %d62-126 (RFC 5321 4.1.2). */
		if (ke == k || p[k] == '-' || (ke < ve && ke + 1 == ve)) {
			*why = "5.5.4 Syntax error in parameters";
			return 501;
		}
		for (size_t j = k; j < ve; j++) {
			unsigned char c = (unsigned char)p[j];

			if (j < ke ? !(sess_alpha(c) || sess_digit(c) || c == '-')
				   : j > ke && (c < 33 || c > 126 || c == '=')) {
				*why = "5.5.4 Syntax error in parameters";
				return 501;
			}
		}
		if (ke - k == 4 && sess_prefix(p + k, 4, "SIZE")) {
			uint64_t v = 0;

			if (seen_size++ || ke == ve || ve - ke - 1 > 20) {
				*why = "5.5.4 Syntax error in SIZE";
				return 501;
			}
			for (size_t j = ke + 1; j < ve; j++) {
				if (!sess_digit((unsigned char)p[j])) {
					*why = "5.5.4 Syntax error in SIZE";
					return 501;
				}
				v = v > (UINT64_MAX - 9) / 10 ? UINT64_MAX
							      : v * 10 + (uint64_t)(p[j] - '0');
			}
			m->size = v;
		} else if (ke - k == 4 && sess_prefix(p + k, 4, "BODY")) {
			if (seen_body++ || ke == ve) {
				*why = "5.5.4 Syntax error in BODY";
				return 501;
			}
			if (ve - ke - 1 == 4 && sess_prefix(p + ke + 1, 4, "7BIT")) {
				m->body = DIME_SMTP_BODY_7BIT;
			} else if (ve - ke - 1 == 8 && sess_prefix(p + ke + 1, 8, "8BITMIME")) {
				m->body = DIME_SMTP_BODY_8BITMIME;
			} else {
				*why = "5.5.4 Unsupported BODY type";
				return 501;
			}
		} else if (ke - k == 8 && sess_prefix(p + k, 8, "SMTPUTF8")) {
			if (m->smtputf8++ || ke != ve) {
				*why = "5.5.4 Syntax error in SMTPUTF8";
				return 501;
			}
		} else {
			*why = "5.5.4 Unsupported MAIL parameter";
			return 555;
		}
	}
	if (m->size > max_message) {
		*why = "5.3.4 Message size exceeds fixed limit";
		return 552;
	}
	return 0;
}

static void
sess_mail(struct dime_smtp_sess *s, const char *arg, size_t n, int has_arg)
{
	struct dime_smtp_mail *m = &s->q_mail;
	const char *why = "";
	size_t pl;
	int code;

	if (s->in_txn) {
		sess_reply(s, 503, "5.5.1 Error: nested MAIL command");
		return;
	}
	memset(m, 0, sizeof(*m));
	if (!has_arg || !sess_prefix(arg, n, "FROM:") ||
	    (pl = sess_path_extent(arg + 5, n - 5)) == 0) {
		sess_reply(s, 501, "5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	for (size_t i = 5 + pl; i < n; i++)
		if ((unsigned char)arg[i] >= 0x80) {
			sess_reply(s, 501, "5.5.4 Syntax error in parameters");
			return;
		}
	if ((code = sess_mail_params(m, &why, arg + 5 + pl, n - 5 - pl, s->conf.max_message)) !=
	    0) {
		sess_reply(s, code, "%s", why);
		return;
	}
	switch (sess_addr(m->addr, arg + 5, pl, 1, m->smtputf8)) {
	case ADDR_OK: break;
	case ADDR_8BIT: sess_reply(s, 553, "5.6.7 Non-ASCII address requires SMTPUTF8"); return;
	case ADDR_SYNTAX: sess_reply(s, 501, "5.1.7 Bad sender address syntax"); return;
	}
	sess_query(s, DIME_SMTP_Q_MAIL);
}

static void
sess_rcpt(struct dime_smtp_sess *s, const char *arg, size_t n, int has_arg)
{
	size_t pl;

	if (!s->in_txn) {
		sess_reply(s, 503, "5.5.1 Error: need MAIL command");
		return;
	}
	if (!has_arg || !sess_prefix(arg, n, "TO:") ||
	    (pl = sess_path_extent(arg + 3, n - 3)) == 0) {
		sess_reply(s, 501, "5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	if (3 + pl < n) {
		/* No RCPT parameter is offered (no DSN): any is unsupported, a broken one bad. */
		if (arg[3 + pl] != ' ' || 3 + pl + 1 == n || arg[3 + pl + 1] == ' ')
			sess_reply(s, 501, "5.5.4 Syntax error in parameters");
		else
			sess_reply(s, 555, "5.5.4 Unsupported RCPT parameter");
		return;
	}
	switch (sess_addr(s->q_rcpt, arg + 3, pl, 0, s->mail.smtputf8)) {
	case ADDR_OK: break;
	case ADDR_8BIT: sess_reply(s, 553, "5.6.7 Non-ASCII address requires SMTPUTF8"); return;
	case ADDR_SYNTAX: sess_reply(s, 501, "5.1.3 Bad recipient address syntax"); return;
	}
	if (s->n_rcpts >= s->conf.max_rcpts) {
		sess_reply(s, 452, "4.5.3 Error: too many recipients");
		return;
	}
	sess_query(s, DIME_SMTP_Q_RCPT);
}

static void
sess_data(struct dime_smtp_sess *s, const char *arg, size_t n, int has_arg)
{
	(void)arg;
	(void)n;
	if (has_arg) {
		sess_reply(s, 501, "5.5.4 Syntax: DATA");
		return;
	}
	if (!s->in_txn) {
		sess_reply(s, 503, "5.5.1 Error: need MAIL command");
		return;
	}
	if (s->n_rcpts == 0) {
		sess_reply(s, 503, "5.5.1 Error: need RCPT command");
		return;
	}
	sess_reply(s, 354, "End data with <CR><LF>.<CR><LF>");
	s->in_data = 1;
	s->dst = DST_BOL;
	s->bol_crlf = 1;
	s->cur_line = 0;
	s->dflags = 0;
	s->msg_len = 0;
	s->msg_over = s->msg_nomem = 0;
}

static void
sess_rset(struct dime_smtp_sess *s, const char *arg, size_t n, int has_arg)
{
	(void)arg;
	(void)n;
	if (has_arg) {
		sess_reply(s, 501, "5.5.4 Syntax: RSET");
		return;
	}
	sess_txn_reset(s);
	sess_reply(s, 250, "2.0.0 Ok");
}

static void
sess_noop(struct dime_smtp_sess *s, const char *arg, size_t n, int has_arg)
{
	(void)arg;
	(void)n;
	(void)has_arg; /* NOOP may carry a string, which is ignored (RFC 5321 4.1.1.9) */
	sess_reply(s, 250, "2.0.0 Ok");
}

static void
sess_quit(struct dime_smtp_sess *s, const char *arg, size_t n, int has_arg)
{
	(void)arg;
	(void)n;
	if (has_arg) {
		sess_reply(s, 501, "5.5.4 Syntax: QUIT");
		return;
	}
	sess_reply(s, 221, "2.0.0 Bye");
	sess_close(s);
}

static void
sess_vrfy(struct dime_smtp_sess *s, const char *arg, size_t n, int has_arg)
{
	(void)arg;
	if (!has_arg || n == 0) {
		sess_reply(s, 501, "5.5.4 Syntax: VRFY address");
		return;
	}
	/* RFC 5321 3.5.3: 252 when the server will not verify but accepts mail for delivery. */
	sess_reply(s, 252, "2.5.0 Cannot VRFY user; send some mail");
}

static void
sess_help(struct dime_smtp_sess *s, const char *arg, size_t n, int has_arg)
{
	(void)arg;
	(void)n;
	(void)has_arg;
	sess_reply(s, 214, "2.0.0 Commands: %s MAIL RCPT DATA RSET NOOP QUIT VRFY HELP%s",
		   s->conf.lmtp ? "LHLO" : "HELO EHLO",
		   s->conf.tls_available && !s->tls_on ? " STARTTLS" : "");
}

static void
sess_starttls(struct dime_smtp_sess *s, const char *arg, size_t n, int has_arg)
{
	(void)arg;
	(void)n;
	if (has_arg) {
		sess_reply(s, 501, "5.5.4 Syntax: STARTTLS");
		return;
	}
	/* STARTTLS twice, or after TLS (ECOSYSTEM P12). */
	if (s->tls_on) {
		sess_reply(s, 503, "5.5.1 Error: TLS already active");
		return;
	}
	if (!s->conf.tls_available) {
		sess_reply(s, 454, "4.7.0 TLS not available");
		return;
	}
	if (s->in_txn) {
		sess_reply(s, 503, "5.5.1 Error: MAIL transaction in progress");
		return;
	}
	sess_reply(s, 220, "2.0.0 Ready to start TLS");
	s->tls_pending = 1;
}

/* Command table flags. */
#define SESS_NEED_HELO 0x1u /* 503 before HELO/EHLO (RFC 5321 4.1.4) */
#define SESS_8BIT_OK   0x2u /* UTF-8 allowed in the argument (RFC 6531: the paths) */
#define SESS_SMTP_ONLY 0x4u /* an unknown command in LMTP (RFC 2033 4.1: LHLO replaces them) */
#define SESS_LMTP_ONLY 0x8u /* an unknown command in SMTP */

/* The command table, indexed by enum dime_smtp_verb: {verb, flags, proceed}. */
static const struct {
	const char *name;
	unsigned flags;
	sess_cmd_fn fn;
} sess_cmds[DIME_SMTP_N_VERBS] = {
    [DIME_SMTP_HELO] = {"HELO", SESS_SMTP_ONLY, sess_helo},
    [DIME_SMTP_EHLO] = {"EHLO", SESS_SMTP_ONLY, sess_ehlo},
    [DIME_SMTP_MAIL] = {"MAIL", SESS_NEED_HELO | SESS_8BIT_OK, sess_mail},
    [DIME_SMTP_RCPT] = {"RCPT", SESS_NEED_HELO | SESS_8BIT_OK, sess_rcpt},
    [DIME_SMTP_DATA] = {"DATA", SESS_NEED_HELO, sess_data},
    [DIME_SMTP_RSET] = {"RSET", 0, sess_rset},
    [DIME_SMTP_NOOP] = {"NOOP", 0, sess_noop},
    [DIME_SMTP_QUIT] = {"QUIT", 0, sess_quit},
    [DIME_SMTP_VRFY] = {"VRFY", 0, sess_vrfy},
    [DIME_SMTP_HELP] = {"HELP", 0, sess_help},
    [DIME_SMTP_STARTTLS] = {"STARTTLS", 0, sess_starttls},
    [DIME_SMTP_LHLO] = {"LHLO", SESS_LMTP_ONLY, sess_lhlo},
};

const char *
dime_smtp_verb_name(int verb)
{
	return verb >= 0 && verb < DIME_SMTP_N_VERBS ? sess_cmds[verb].name : "?";
}

/* Count a command line against the cap. Returns: 1 to go on, 0 when the cap closed the session. */
static int
sess_count(struct dime_smtp_sess *s)
{
	s->n_cmds++;
	if (s->conf.max_cmds != 0 && s->n_cmds > s->conf.max_cmds) {
		sess_421(s, "4.7.0", "Error: too many commands");
		return 0;
	}
	return 1;
}

/* One whole command line, LF included. */
static void
sess_command(struct dime_smtp_sess *s, const char *line, size_t n)
{
	size_t end = n - 1, vl = 0;
	int eightbit = 0, verb = -1;

	s->last_verb = -1;
	if (!sess_count(s))
		return;
	if (end > 0 && line[end - 1] == '\r') {
		end--;
	} else if (s->conf.bare_lf == DIME_SMTP_BARE_LF_REJECT) {
		sess_reply(s, 500, "5.5.2 Error: bare <LF> received");
		return;
	}
	/* A CR anywhere but right before the LF is a bare CR: one error for the whole line, never
	 * two commands (ECOSYSTEM P7); NUL and other controls are refused too (P6, P8). */
	for (size_t i = 0; i < end; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == '\r') {
			sess_reply(s, 500, "5.5.2 Error: bare <CR> received");
			return;
		}
		if (c < 0x20 || c == 0x7f) {
			sess_reply(s, 500, "5.5.2 Error: control character in command");
			return;
		}
		eightbit |= c >= 0x80;
	}
	while (vl < end && line[vl] != ' ')
		vl++;
	for (int v = 0; v < DIME_SMTP_N_VERBS; v++)
		if (strlen(sess_cmds[v].name) == vl && sess_prefix(line, vl, sess_cmds[v].name) &&
		    !(sess_cmds[v].flags & (s->conf.lmtp ? SESS_SMTP_ONLY : SESS_LMTP_ONLY))) {
			verb = v;
			break;
		}
	if (verb < 0) {
		sess_reply(s, 500, "5.5.2 Error: command not recognized");
		return;
	}
	/* One space between the verb and its argument (P8: a second one is an error). */
	if (vl + 1 < end && line[vl + 1] == ' ') {
		sess_reply(s, 500, "5.5.2 Error: extra space after the command");
		return;
	}
	s->last_verb = verb;
	if (eightbit && !(sess_cmds[verb].flags & SESS_8BIT_OK)) {
		sess_reply(s, 501, "5.5.4 Syntax error: 8-bit octets in command");
		return;
	}
	if ((sess_cmds[verb].flags & SESS_NEED_HELO) && !s->helo) {
		sess_reply(s, 503, "5.5.1 Error: send %s first",
			   s->conf.lmtp ? "LHLO" : "HELO/EHLO");
		return;
	}
	if (vl < end)
		sess_cmds[verb].fn(s, line + vl + 1, end - vl - 1, 1);
	else
		sess_cmds[verb].fn(s, line + end, 0, 0);
}

/* ---- DATA ---- */

static void
sess_msg_add(struct dime_smtp_sess *s, const uint8_t *p, size_t n)
{
	if (s->msg_over || s->msg_nomem)
		return;
	/* Never buffer past the cap: drop the message and drain to its end (552 then, P19). */
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

/* Octets of the current line's text. */
static void
sess_text(struct dime_smtp_sess *s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] >= 0x80) {
			s->dflags |= DIME_SMTP_DATA_8BIT;
			break;
		}
	s->cur_line += n;
	sess_msg_add(s, p, n);
}

static void
sess_bare_cr(struct dime_smtp_sess *s)
{
	static const uint8_t cr = '\r';

	s->dflags |= DIME_SMTP_DATA_BARE_CR;
	sess_text(s, &cr, 1);
}

/* The current line ends: in CRLF (crlf 1) or a bare LF (0). Either is stored as CRLF. */
static void
sess_eol(struct dime_smtp_sess *s, int crlf)
{
	static const uint8_t eol[2] = {'\r', '\n'};

	if (!crlf)
		s->dflags |= DIME_SMTP_DATA_BARE_LF;
	if (s->cur_line > DIME_SMTP_TEXT_LINE_MAX)
		s->dflags |= DIME_SMTP_DATA_LONG_LINES;
	sess_msg_add(s, eol, 2);
	s->cur_line = 0;
	s->bol_crlf = crlf;
	s->dst = DST_BOL;
}

static void
sess_data_end(struct dime_smtp_sess *s)
{
	int bare = (s->dflags & (DIME_SMTP_DATA_BARE_LF | DIME_SMTP_DATA_BARE_CR)) != 0;

	s->in_data = 0;
	if (s->msg_over || s->msg_nomem || (bare && s->conf.bare_lf == DIME_SMTP_BARE_LF_REJECT) ||
	    (s->conf.reject_long_lines && (s->dflags & DIME_SMTP_DATA_LONG_LINES))) {
		if (s->msg_over)
			sess_reply(s, 552, "5.3.4 Message size exceeds fixed limit");
		else if (s->msg_nomem)
			sess_reply(s, 452, "4.3.1 Insufficient system storage");
		else if (bare && s->conf.bare_lf == DIME_SMTP_BARE_LF_REJECT)
			sess_reply(s, 550, "5.5.2 Error: bare <CR> or <LF> in message data");
		else
			sess_reply(s, 550, "5.5.2 Error: message line longer than 998 octets");
		sess_txn_reset(s);
		sess_msg_free(s);
		if (s->draining)
			sess_shutdown(s);
		return;
	}
	sess_query(s, DIME_SMTP_Q_DATA);
	s->q.data = s->msg != NULL ? s->msg : (const uint8_t *)"";
	s->q.data_len = s->msg_len;
	s->q.flags = s->dflags;
}

/* Consume message bytes up to and including the <CRLF>.<CRLF> that ends them (RFC 5321
 * 4.1.1.4, 4.5.2). A line that starts with a dot loses that dot; lines end in CRLF or, a bare LF,
 * which is stored as CRLF; a bare CR stays data. Only a "." line ended by CRLF whose previous line
 * also ended by CRLF ends the message: "\n.\n", "\r\n.\n", "\n.\r\n" and "\r.\r" never do (P4).
 * Returns: octets consumed. */
static size_t
sess_data_feed(struct dime_smtp_sess *s, const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c;

		if (s->dst == DST_MID) {
			/* Fast path: the run up to the next CR or LF at once. */
			size_t j = i;

			while (j < len && p[j] != '\r' && p[j] != '\n')
				j++;
			sess_text(s, p + i, j - i);
			i = j;
			if (i == len)
				break;
		}
		c = p[i++];
		switch (s->dst) {
		case DST_DOT:
			if (c == '\r') {
				s->dst = DST_DOTCR;
				continue;
			}
			if (c == '\n') {
				sess_eol(s, 0); /* ".\n": an empty line, not the end */
				continue;
			}
			break; /* the leading dot is dropped */
		case DST_DOTCR:
			if (c == '\n') {
				if (s->bol_crlf) {
					sess_data_end(s);
					return i;
				}
				sess_eol(s, 1); /* "\n.\r\n": an empty line, not the end */
				continue;
			}
			sess_bare_cr(s); /* ".\rX": the dot goes, the bare CR stays */
			if (c == '\r') {
				s->dst = DST_CR;
				continue;
			}
			break;
		case DST_CR:
			if (c == '\n') {
				sess_eol(s, 1);
				continue;
			}
			sess_bare_cr(s);
			if (c == '\r')
				continue; /* still after a CR */
			break;
		case DST_BOL:
			if (c == '.') {
				s->dst = DST_DOT;
				continue;
			}
			break;
		case DST_MID: break;
		}
		if (c == '\r') {
			s->dst = DST_CR;
		} else if (c == '\n') {
			sess_eol(s, 0);
		} else {
			sess_text(s, &c, 1);
			s->dst = DST_MID;
		}
	}
	return i;
}

/* ---- feeding ---- */

static size_t
sess_out_pending(const struct dime_smtp_sess *s)
{
	return dime_outbuf_pending(&s->out);
}

size_t
dime_smtp_sess_feed(struct dime_smtp_sess *s, const uint8_t *p, size_t len)
{
	size_t i = 0;

	if (s->closed)
		return len;
	if (!s->started) {
		/* An early talker (ECOSYSTEM P10): rejected by policy, else held for the banner. */
		if (len > 0 && s->conf.early_talk_reject) {
			sess_reply(s, 554, "5.5.0 %s Error: talked before the greeting",
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
		if (s->q_open || s->tls_pending || sess_out_pending(s) >= DIME_SMTP_SESS_OUT_HIGH)
			break;
		if (s->in_data) {
			i += sess_data_feed(s, p + i, len - i);
			continue;
		}
		c = p[i++];
		if (s->skipping) {
			if (c == '\n') {
				s->skipping = 0;
				s->last_verb = -1;
				if (sess_count(s))
					sess_reply(s, 500, "5.5.6 Error: line too long");
			}
			continue;
		}
		if (c == '\n') {
			s->line[s->line_len++] = '\n';
			sess_command(s, s->line, s->line_len);
			s->line_len = 0;
			continue;
		}
		/* 511 octets and no LF yet: with its LF the line would pass 512 (RFC 5321
		 * 4.5.3.1.4). Memory stays bounded: the rest is dropped up to the LF (P1). */
		if (s->line_len >= DIME_SMTP_LINE_MAX - 1) {
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
dime_smtp_sess_actions(const struct dime_smtp_sess *s)
{
	unsigned a = 0;

	if (s->closed)
		return DIME_SMTP_ACT_CLOSE;
	if (s->q_open)
		a |= DIME_SMTP_ACT_QUERY;
	if (s->tls_pending)
		a |= DIME_SMTP_ACT_TLS;
	if (s->in_data)
		a |= DIME_SMTP_ACT_DATA;
	return a;
}

const uint8_t *
dime_smtp_sess_out(const struct dime_smtp_sess *s, size_t *len)
{
	return dime_outbuf_get(&s->out, len);
}

void
dime_smtp_sess_out_done(struct dime_smtp_sess *s, size_t n)
{
	dime_outbuf_done(&s->out, n);
}

const struct dime_smtp_query *
dime_smtp_sess_query(const struct dime_smtp_sess *s)
{
	return s->q_open && !s->closed ? &s->q : NULL;
}

/* ---- answers ---- */

/* Is st "c.s.d" with class c, subject and detail of 1 to 3 digits (RFC 3463)? */
static int
sess_status_ok(const char *st, char cls)
{
	size_t i = 2;

	if (st[0] != cls || st[1] != '.')
		return 0;
	for (int part = 0; part < 2; part++) {
		size_t d = 0;

		while (sess_digit((unsigned char)st[i]) && d < 4) {
			i++;
			d++;
		}
		if (d == 0 || d > 3 || (st[i - d] == '0' && d > 1))
			return 0;
		if (part == 0 && st[i++] != '.')
			return 0;
	}
	return st[i] == 0;
}

/* The reply code and default status and text of verdict v on a query of kind k. */
static void
sess_verdict_reply(enum dime_smtp_qkind k, enum dime_smtp_verdict v, int *code, const char **st,
		   const char **text)
{
	int i = k == DIME_SMTP_Q_MAIL ? 0 : k == DIME_SMTP_Q_RCPT ? 1 : 2;
	static const struct {
		int code[3];
		const char *st[3];
		const char *text[3];
	} t[] = {
	    [DIME_SMTP_V_OK] = {{250, 250, 250}, {"2.1.0", "2.1.5", "2.0.0"}, {"Ok", "Ok", "Ok"}},
	    [DIME_SMTP_V_TEMPFAIL] = {{451, 451, 451},
				      {"4.3.0", "4.3.0", "4.3.0"},
				      {"Error: try again later", "Error: try again later",
				       "Error: try again later"}},
	    [DIME_SMTP_V_NOSPACE] = {{452, 452, 452},
				     {"4.3.1", "4.3.1", "4.3.1"},
				     {"Insufficient system storage", "Insufficient system storage",
				      "Insufficient system storage"}},
	    [DIME_SMTP_V_REJECT] = {{550, 550, 554},
				    {"5.1.0", "5.1.1", "5.6.0"},
				    {"Sender address rejected", "Recipient address rejected",
				     "Message rejected"}},
	    [DIME_SMTP_V_POLICY] = {{550, 554, 554},
				    {"5.7.1", "5.7.1", "5.7.1"},
				    {"Sender address rejected by policy",
				     "Recipient address rejected by policy",
				     "Message rejected by policy"}},
	};

	*code = t[v].code[i];
	*st = t[v].st[i];
	*text = t[v].text[i];
}

int
dime_smtp_sess_answer(struct dime_smtp_sess *s, const struct dime_smtp_answer *a)
{
	enum dime_smtp_verdict v = a->verdict;
	char text[DIME_SMTP_SESS_TEXT_MAX + 1];
	const char *st = NULL, *deftext = NULL;
	int code = 0, ok;

	if (!s->q_open || s->closed || a->id != s->q.id || v < DIME_SMTP_V_OK ||
	    v > DIME_SMTP_V_BUSY)
		return DIME_E_INVALID;
	if (v != DIME_SMTP_V_BUSY) {
		sess_verdict_reply(s->q.kind, v, &code, &st, &deftext);
		if (a->status != NULL && !sess_status_ok(a->status, (char)('0' + code / 100)))
			return DIME_E_INVALID;
		if (a->status != NULL)
			st = a->status;
	} else if (a->status != NULL) {
		return DIME_E_INVALID;
	}
	/* The caller's text: one line of printable ASCII, whatever it holds (no reply injection).
	 */
	if (a->text != NULL && a->text[0] != 0) {
		size_t n = 0;

		for (; a->text[n] != 0 && n < DIME_SMTP_SESS_TEXT_MAX; n++)
			text[n] = a->text[n] >= 0x20 && a->text[n] <= 0x7e ? a->text[n] : '?';
		text[n] = 0;
		deftext = text;
	}
	ok = v == DIME_SMTP_V_OK;
	switch (s->q.kind) {
	case DIME_SMTP_Q_MAIL:
		if (ok) {
			s->in_txn = 1;
			s->mail = s->q_mail;
		}
		break;
	case DIME_SMTP_Q_RCPT:
		if (ok) {
			char *r = NULL, **nv = s->rcpts;
			size_t l = strlen(s->q_rcpt);

			if (s->n_rcpts == s->rcpts_cap) {
				size_t cap = s->rcpts_cap ? s->rcpts_cap * 2 : 8;

				if (cap > s->conf.max_rcpts)
					cap = s->conf.max_rcpts;
				nv = realloc(s->rcpts, cap * sizeof(*nv));
				if (nv != NULL) {
					s->rcpts = nv;
					s->rcpts_cap = cap;
				}
			}
			if (nv != NULL && (r = malloc(l + 1)) != NULL) {
				memcpy(r, s->q_rcpt, l + 1);
				s->rcpts[s->n_rcpts++] = r;
			} else {
				/* Not kept, so not accepted: the MTA retries it later. */
				v = DIME_SMTP_V_NOSPACE;
				sess_verdict_reply(s->q.kind, v, &code, &st, &deftext);
			}
		}
		break;
	case DIME_SMTP_Q_DATA: break;
	}
	if (v == DIME_SMTP_V_BUSY)
		sess_421(s, "4.3.2", "Error: service busy, try again later");
	else
		sess_reply(s, code, "%s %s", st, deftext);
	/* LMTP: one reply per accepted recipient (RFC 2033 4.2); the query stays open until the
	 * last one. */
	if (s->q.kind == DIME_SMTP_Q_DATA && s->conf.lmtp && !s->closed &&
	    ++s->q.rcpt_index < s->q.n_rcpts)
		return DIME_OK;
	if (s->q.kind == DIME_SMTP_Q_DATA) {
		/* Whatever the verdict, the transaction is over (RFC 5321 4.1.1.4). */
		sess_txn_reset(s);
		sess_msg_free(s);
	}
	memset(&s->q, 0, sizeof(s->q));
	s->q_open = 0;
	if (s->draining && !s->closed)
		sess_shutdown(s);
	return DIME_OK;
}

/* ---- TLS, timers, shutdown ---- */

void
dime_smtp_sess_tls_done(struct dime_smtp_sess *s, int ok)
{
	if (!s->tls_pending || s->closed)
		return;
	s->tls_pending = 0;
	if (!ok) {
		sess_close(s);
		return;
	}
	/* RFC 3207 4.2: everything from before the handshake is forgotten, the greeting too. */
	s->tls_on = 1;
	s->helo = 0;
	sess_txn_reset(s);
	s->line_len = 0;
	s->skipping = 0;
	if (s->draining)
		sess_shutdown(s);
}

int
dime_smtp_sess_is_tls(const struct dime_smtp_sess *s)
{
	return s->tls_on;
}

void
dime_smtp_sess_timeout(struct dime_smtp_sess *s)
{
	if (s->closed)
		return;
	sess_421(s, "4.4.2", "Error: timeout exceeded");
}

void
dime_smtp_sess_drain(struct dime_smtp_sess *s)
{
	if (s->closed)
		return;
	s->draining = 1;
	if (!s->in_data && !s->q_open && !s->tls_pending)
		sess_shutdown(s);
}

int
dime_smtp_sess_last_code(const struct dime_smtp_sess *s)
{
	return s->last_code;
}

int
dime_smtp_sess_last_verb(const struct dime_smtp_sess *s)
{
	return s->last_verb;
}

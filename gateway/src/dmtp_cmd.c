/* DMTP command lines (DIME spec Part 7): one line in, one struct out, and back. A tokenizer over
 * the line, one grammar per verb, and a formatter that proves its output by parsing it again.
 * Pure functions over caller memory; nothing here does I/O, allocates or keeps state. */

#include <string.h>

#include "dime/dmtp.h"

/* Verb names, indexed by enum dime_dmtp_verb. */
static const char *const dmtp_verbs[DIME_DMTP_N_VERBS] = {
    "STARTTLS", "HELO", "EHLO", "MODE", "RSET", "NOOP", "HELP", "QUIT",
    "MAIL",	"RCPT", "DATA", "SGNT", "HIST", "VRFY", "VERB",
};

#define DMTP_MAX_ARGS 3u /* HIST FOR START STOP, the longest grammar */

/* What an address argument may hold. */
enum dmtp_addr_kind {
	DMTP_HOST,    /* HELO/EHLO/STARTTLS: a host name or an address literal */
	DMTP_DOMAIN,  /* FROM, TO, DOMAIN=: a domain, no mailbox */
	DMTP_MAILBOX, /* USER=, and HIST's FOR: user@domain */
	DMTP_ANY      /* FOR= of SGNT and VRFY: either; a '@' makes it a mailbox */
};

/* One space-separated argument: `NAME=value` or a bare `value`. */
struct dmtp_arg {
	const char *name, *val;
	size_t name_len, val_len;
};

static char
dmtp_upper(char ch)
{
	return ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
}

/* Case-insensitive (ASCII, no locale) equality of s[0..n) with the upper-case lit. */
static int
dmtp_eq_nocase(const char *s, size_t n, const char *lit)
{
	size_t l = strlen(lit);

	if (n != l)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (dmtp_upper(s[i]) != lit[i])
			return 0;
	return 1;
}

static int
dmtp_is_b64(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '+' || ch == '/';
}

static int
dmtp_b64_value(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	return ch == '+' ? 62 : 63;
}

/* Split one argument at its first '='. A token that opens with '<' or '[' is a bare value. */
static void
dmtp_arg_split(struct dmtp_arg *a, const char *tok, size_t len)
{
	const char *eq = len > 0 && tok[0] != '<' && tok[0] != '[' ? memchr(tok, '=', len) : NULL;

	memset(a, 0, sizeof(*a));
	if (eq == NULL) {
		a->val = tok;
		a->val_len = len;
		return;
	}
	a->name = tok;
	a->name_len = (size_t)(eq - tok);
	a->val = eq + 1;
	a->val_len = len - a->name_len - 1;
}

/* Copy an <address> into out[DIME_DMTP_ADDR_MAX + 1]. Spec Part 7: addresses and domain names
 * are always enclosed by <>. Inside: 1..254 printable octets, no space or angle bracket (a
 * server echoes and looks these up; nothing legitimate needs them), and a mailbox is exactly
 * local@domain with both parts non-empty.
 * Returns: 1 for a mailbox, 0 for a domain, -1 (with *why) when the value does not fit kind. */
static int
dmtp_addr(char *out, const char **why, const struct dmtp_arg *a, enum dmtp_addr_kind kind)
{
	const char *v = a->val, *at = NULL;
	size_t n = a->val_len;

	if (n < 2 || v[0] != '<' || v[n - 1] != '>') {
		*why = "an address or domain must be enclosed in <>";
		return -1;
	}
	v++;
	n -= 2;
	if (n == 0) {
		*why = "empty address or domain in <>";
		return -1;
	}
	if (n > DIME_DMTP_ADDR_MAX) {
		*why = "address or domain longer than 254 characters";
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (ch <= 0x20 || ch >= 0x7f || ch == '<' || ch == '>') {
			*why = "an address or domain holds a space, control octet or angle bracket";
			return -1;
		}
		if (ch == '@') {
			if (at != NULL) {
				*why = "a mailbox has exactly one '@'";
				return -1;
			}
			at = v + i;
		}
	}
	if (at != NULL && (at == v || at == v + n - 1)) {
		*why = "a mailbox needs a local part and a domain around its '@'";
		return -1;
	}
	if (at != NULL && (kind == DMTP_HOST || kind == DMTP_DOMAIN)) {
		*why = kind == DMTP_HOST ? "a host name cannot hold '@'"
					 : "a domain is expected here, not a mailbox";
		return -1;
	}
	if (at == NULL && kind == DMTP_MAILBOX) {
		*why = "a mailbox (user@domain) is expected here";
		return -1;
	}
	memcpy(out, v, n);
	out[n] = 0;
	return at != NULL;
}

/* Copy a [fingerprint] into out[DIME_DMTP_FP_CHARS + 1]. Unpadded base64, spec Part 7 ("encoded
 * binary data argument values being enclosed by []"). Only the alphabet and the bound are checked
 * here; dime_dmtp_check() holds the length rule. Returns: 0 or -1 (with *why). */
static int
dmtp_fp(char *out, const char **why, const struct dmtp_arg *a)
{
	const char *v = a->val;
	size_t n = a->val_len;

	if (n < 2 || v[0] != '[' || v[n - 1] != ']') {
		*why = "a fingerprint must be enclosed in []";
		return -1;
	}
	v++;
	n -= 2;
	if (n == 0) {
		*why = "empty fingerprint in []";
		return -1;
	}
	if (n > DIME_DMTP_FP_CHARS) {
		*why = "fingerprint longer than 86 base64 characters";
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (!dmtp_is_b64(v[i])) {
			*why = "a fingerprint holds a character outside unpadded base64";
			return -1;
		}
	memcpy(out, v, n);
	out[n] = 0;
	return 0;
}

/* Is a's name one of the upper-case names (NULL-terminated list; "" matches a bare value)? */
static int
dmtp_arg_is(const struct dmtp_arg *a, const char *const *names)
{
	for (; *names != NULL; names++)
		if ((*names)[0] == 0
			? a->name == NULL
			: (a->name != NULL && dmtp_eq_nocase(a->name, a->name_len, *names)))
			return 1;
	return 0;
}

static const char *const dmtp_names_host[] = {"", "HOST", NULL};
static const char *const dmtp_names_for[] = {"FOR", "USER", "DOMAIN", NULL};
static const char *const dmtp_names_hist[] = {"FOR", "USER", NULL};
static const char *const dmtp_names_from[] = {"FROM", NULL};
static const char *const dmtp_names_to[] = {"TO", NULL};
static const char *const dmtp_names_fp[] = {"FINGERPRINT", NULL};
static const char *const dmtp_names_mode[] = {"MODE", NULL};
static const char *const dmtp_names_start[] = {"START", NULL};
static const char *const dmtp_names_stop[] = {"STOP", NULL};

/* FOR= and its libdime synonyms: USER= names a mailbox, DOMAIN= a domain, FOR= either. */
static int
dmtp_for(struct dime_dmtp_cmd *c, const char **why, const struct dmtp_arg *a, int hist)
{
	enum dmtp_addr_kind kind = DMTP_ANY;
	int r;

	if (!dmtp_arg_is(a, hist ? dmtp_names_hist : dmtp_names_for)) {
		*why = hist ? "HIST needs FOR=<mailbox> first"
			    : "the first argument must be FOR=<...>";
		return -1;
	}
	if (hist || dmtp_eq_nocase(a->name, a->name_len, "USER"))
		kind = DMTP_MAILBOX; /* HIST must not be used for organizational signets */
	else if (dmtp_eq_nocase(a->name, a->name_len, "DOMAIN"))
		kind = DMTP_DOMAIN;
	if ((r = dmtp_addr(c->addr, why, a, kind)) < 0)
		return -1;
	c->flags |= DIME_DMTP_F_ADDR | (r == 1 ? DIME_DMTP_F_MAILBOX : 0u);
	return 0;
}

/* A required `NAME=[fp]` into out. */
static int
dmtp_fp_arg(char *out, const char **why, const struct dmtp_arg *a, const char *const *names,
	    const char *why_name)
{
	if (!dmtp_arg_is(a, names)) {
		*why = why_name;
		return -1;
	}
	return dmtp_fp(out, why, a);
}

/* The grammar of each verb over its arguments a[0..n). Returns: 0 or -1 (with *why). */
static int
dmtp_args(struct dime_dmtp_cmd *c, const char **why, const struct dmtp_arg *a, size_t n)
{
	switch (c->verb) {
	case DIME_DMTP_STARTTLS: /* STARTTLS <host> [MODE=DMTP|SMTP] */
	case DIME_DMTP_HELO:	 /* HELO <host> */
	case DIME_DMTP_EHLO:
		if (n == 0 || n > (c->verb == DIME_DMTP_STARTTLS ? 2u : 1u)) {
			*why = n == 0 ? "a host is required: <host>" : "too many arguments";
			return -1;
		}
		if (!dmtp_arg_is(&a[0], dmtp_names_host)) {
			*why = "the host must come first, as <host> or HOST=<host>";
			return -1;
		}
		if (dmtp_addr(c->addr, why, &a[0], DMTP_HOST) < 0)
			return -1;
		c->flags |= DIME_DMTP_F_ADDR;
		if (n == 2) {
			/* The spec allows MODE to be missing; DMTP and SMTP are its only values
			 * (libdime's resolver sent DMTPv1, a dialect we do not speak). */
			if (!dmtp_arg_is(&a[1], dmtp_names_mode)) {
				*why = "STARTTLS takes MODE= after the host";
				return -1;
			}
			if (dmtp_eq_nocase(a[1].val, a[1].val_len, "DMTP"))
				memcpy(c->mode, "DMTP", 5);
			else if (dmtp_eq_nocase(a[1].val, a[1].val_len, "SMTP"))
				memcpy(c->mode, "SMTP", 5);
			else {
				*why = "MODE must be DMTP or SMTP";
				return -1;
			}
			c->flags |= DIME_DMTP_F_MODE;
		}
		return 0;
	case DIME_DMTP_MAIL: /* MAIL FROM=<domain> FINGERPRINT=[fp] */
	case DIME_DMTP_RCPT: /* RCPT TO=<domain> FINGERPRINT=[fp] */
		if (n != 2) {
			*why = c->verb == DIME_DMTP_MAIL
				   ? "MAIL needs FROM=<domain> FINGERPRINT=[fp]"
				   : "RCPT needs TO=<domain> FINGERPRINT=[fp]";
			return -1;
		}
		if (!dmtp_arg_is(&a[0],
				 c->verb == DIME_DMTP_MAIL ? dmtp_names_from : dmtp_names_to)) {
			*why = c->verb == DIME_DMTP_MAIL ? "MAIL needs FROM=<domain> first"
							 : "RCPT needs TO=<domain> first";
			return -1;
		}
		if (dmtp_addr(c->addr, why, &a[0], DMTP_DOMAIN) < 0 ||
		    dmtp_fp_arg(c->fp, why, &a[1], dmtp_names_fp, "FINGERPRINT=[fp] must follow") <
			0)
			return -1;
		c->flags |= DIME_DMTP_F_ADDR | DIME_DMTP_F_FP;
		return 0;
	case DIME_DMTP_SGNT: /* SGNT FOR=<x> [FINGERPRINT=[fp]] */
	case DIME_DMTP_VRFY: /* VRFY FOR=<x> FINGERPRINT=[fp] */
		if (n == 0 || n > 2 || (c->verb == DIME_DMTP_VRFY && n != 2)) {
			*why = c->verb == DIME_DMTP_VRFY ? "VRFY needs FOR=<...> FINGERPRINT=[fp]"
			       : n == 0			 ? "SGNT needs FOR=<...>"
							 : "too many arguments";
			return -1;
		}
		if (dmtp_for(c, why, &a[0], 0) < 0)
			return -1;
		if (n == 2) {
			if (dmtp_fp_arg(c->fp, why, &a[1], dmtp_names_fp,
					"the second argument must be FINGERPRINT=[fp]") < 0)
				return -1;
			c->flags |= DIME_DMTP_F_FP;
		}
		return 0;
	case DIME_DMTP_HIST: /* HIST FOR=<mailbox> [START=[fp]] [STOP=[fp]] */
		if (n == 0) {
			*why = "HIST needs FOR=<mailbox>";
			return -1;
		}
		if (dmtp_for(c, why, &a[0], 1) < 0)
			return -1;
		for (size_t i = 1; i < n; i++) {
			if (i == 1 && dmtp_arg_is(&a[i], dmtp_names_start)) {
				if (dmtp_fp(c->start, why, &a[i]) < 0)
					return -1;
				c->flags |= DIME_DMTP_F_START;
			} else if (!(c->flags & DIME_DMTP_F_STOP) &&
				   dmtp_arg_is(&a[i], dmtp_names_stop)) {
				if (dmtp_fp(c->stop, why, &a[i]) < 0)
					return -1;
				c->flags |= DIME_DMTP_F_STOP;
			} else {
				*why = "HIST takes START=[fp] then STOP=[fp] after FOR=<mailbox>";
				return -1;
			}
		}
		return 0;
	case DIME_DMTP_MODE: /* these accept no arguments (spec Part 7) */
	case DIME_DMTP_RSET:
	case DIME_DMTP_HELP:
	case DIME_DMTP_QUIT:
	case DIME_DMTP_DATA:
	case DIME_DMTP_VERB:
		if (n != 0) {
			*why = "this command takes no arguments";
			return -1;
		}
		return 0;
	case DIME_DMTP_NOOP: /* handled by the caller: its arguments are free text */ break;
	}
	DIME_ASSERT(0);
	return -1;
}

int
dime_dmtp_parse(struct dime_dmtp_cmd *c, const char **why, const char *line, size_t len)
{
	const char *dummy, *body = line;
	struct dmtp_arg a[DMTP_MAX_ARGS];
	size_t n, vlen = 0, na = 0, i;
	int verb = -1;

	if (why == NULL)
		why = &dummy;
	*why = "";
	if (c != NULL)
		memset(c, 0, sizeof(*c));
	if (c == NULL || (line == NULL && len > 0)) {
		*why = "no command or no line";
		return DIME_E_INVALID;
	}
	/* Spec Part 7: lines of 512 octets must be handled, terminator included; a server checks
	 * this on buffered bytes before a whole line arrives (STYLE.md §6), so longer is refused.
	 */
	if (len > DIME_DMTP_LINE_MAX) {
		*why = "line longer than 512 octets";
		return DIME_E_LIMIT;
	}
	if (len == 0 || line[len - 1] != '\n') {
		*why = "line does not end in LF";
		return DIME_E_TRUNCATED;
	}
	/* LF is the terminator; a CR right before it is the historical CRLF a server may accept. */
	n = len - 1;
	if (n > 0 && line[n - 1] == '\r')
		n--;
	while (vlen < n && body[vlen] != ' ')
		vlen++;
	for (i = 0; i < DIME_DMTP_N_VERBS; i++)
		if (dmtp_eq_nocase(body, vlen, dmtp_verbs[i])) {
			verb = (int)i;
			break;
		}
	if (verb < 0) {
		*why = "unknown verb";
		return DIME_E_NOTFOUND;
	}
	c->verb = (enum dime_dmtp_verb)verb;
	/* Spec Part 7: lines are ASCII 0x01..0x7F, and CR or LF never appear but as the
	 * terminator. Past the verb every octet must obey that (the verb itself already did). */
	for (i = vlen; i < n; i++) {
		unsigned char ch = (unsigned char)body[i];

		if (ch == 0 || ch >= 0x80 || ch == '\r' || ch == '\n') {
			*why = "a NUL, CR, LF or 8-bit octet inside the line";
			goto bad;
		}
	}
	/* Arguments are separated by a space; runs of spaces and trailing spaces cost nothing to
	 * accept. */
	i = vlen;
	if (c->verb == DIME_DMTP_NOOP) {
		/* Spec Part 7: a server must accept NOOP with arguments, whatever they are. */
		size_t end = n;

		while (i < end && body[i] == ' ')
			i++;
		while (end > i && body[end - 1] == ' ')
			end--;
		if (end > i) {
			DIME_ASSERT(end - i <= DIME_DMTP_TEXT_MAX); /* 512 less "NOOP " and LF */
			memcpy(c->text, body + i, end - i);
			c->text[end - i] = 0;
			c->flags |= DIME_DMTP_F_TEXT;
		}
		return DIME_OK;
	}
	for (;;) {
		size_t start;

		while (i < n && body[i] == ' ')
			i++;
		if (i == n)
			break;
		if (na == DMTP_MAX_ARGS) {
			*why = "too many arguments";
			goto bad;
		}
		start = i;
		while (i < n && body[i] != ' ')
			i++;
		dmtp_arg_split(&a[na++], body + start, i - start);
	}
	if (dmtp_args(c, why, a, na) == 0)
		return DIME_OK;
bad:
	memset(c, 0, sizeof(*c));
	return DIME_E_MALFORMED;
}

/* Bounded append for the formatter; err sticks once the buffer would overflow. */
struct dmtp_out {
	char *p;
	size_t cap, len;
	int err;
};

static void
dmtp_put(struct dmtp_out *o, const char *s, size_t n)
{
	if (o->err || n > o->cap - o->len) {
		o->err = 1;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void
dmtp_puts(struct dmtp_out *o, const char *s)
{
	dmtp_put(o, s, strlen(s));
}

/* Append `<sep>NAME<open>field<close>`; a field without a NUL inside its array is refused. */
static void
dmtp_put_field(struct dmtp_out *o, const char *pre, const char *field, size_t field_cap,
	       const char *post)
{
	const char *nul = memchr(field, 0, field_cap);

	if (nul == NULL) {
		o->err = 1;
		return;
	}
	dmtp_puts(o, pre);
	dmtp_put(o, field, (size_t)(nul - field));
	dmtp_puts(o, post);
}

int
dime_dmtp_format(char *out, size_t out_cap, size_t *out_len, const struct dime_dmtp_cmd *c)
{
	/* Room past the limit so an oversized struct shows up as a failed re-parse, not a cut. */
	char buf[DIME_DMTP_LINE_MAX + 64];
	struct dmtp_out o = {buf, sizeof(buf), 0, 0};
	struct dime_dmtp_cmd back;
	unsigned f;
	int rc = DIME_E_INVALID;

	if (out_len != NULL)
		*out_len = 0;
	if (out != NULL && out_cap > 0)
		out[0] = 0;
	if (c == NULL || out_len == NULL || (unsigned)c->verb >= DIME_DMTP_N_VERBS)
		return DIME_E_INVALID;
	f = c->flags;
	dmtp_puts(&o, dmtp_verbs[c->verb]);
	switch (c->verb) {
	case DIME_DMTP_STARTTLS:
	case DIME_DMTP_HELO:
	case DIME_DMTP_EHLO:
		if (f & DIME_DMTP_F_ADDR)
			dmtp_put_field(&o, " <", c->addr, sizeof(c->addr), ">");
		if (f & DIME_DMTP_F_MODE)
			dmtp_put_field(&o, " MODE=", c->mode, sizeof(c->mode), "");
		break;
	case DIME_DMTP_MAIL:
	case DIME_DMTP_RCPT:
		if (f & DIME_DMTP_F_ADDR)
			dmtp_put_field(&o, c->verb == DIME_DMTP_MAIL ? " FROM=<" : " TO=<", c->addr,
				       sizeof(c->addr), ">");
		if (f & DIME_DMTP_F_FP)
			dmtp_put_field(&o, " FINGERPRINT=[", c->fp, sizeof(c->fp), "]");
		break;
	case DIME_DMTP_SGNT:
	case DIME_DMTP_HIST:
	case DIME_DMTP_VRFY:
		if (f & DIME_DMTP_F_ADDR)
			dmtp_put_field(&o, " FOR=<", c->addr, sizeof(c->addr), ">");
		if (f & DIME_DMTP_F_FP)
			dmtp_put_field(&o, " FINGERPRINT=[", c->fp, sizeof(c->fp), "]");
		if (f & DIME_DMTP_F_START)
			dmtp_put_field(&o, " START=[", c->start, sizeof(c->start), "]");
		if (f & DIME_DMTP_F_STOP)
			dmtp_put_field(&o, " STOP=[", c->stop, sizeof(c->stop), "]");
		break;
	case DIME_DMTP_NOOP:
		if (f & DIME_DMTP_F_TEXT)
			dmtp_put_field(&o, " ", c->text, sizeof(c->text), "");
		break;
	case DIME_DMTP_MODE:
	case DIME_DMTP_RSET:
	case DIME_DMTP_HELP:
	case DIME_DMTP_QUIT:
	case DIME_DMTP_DATA:
	case DIME_DMTP_VERB: break;
	}
	dmtp_put(&o, "\n", 1); /* spec Part 7: LF is the only terminator a DMTP host generates */
	/* The formatted line must mean exactly c: anything missing, stray or malformed in c (a
	 * flag the verb does not take, an '@' in a host, a space in NOOP's edges) shows up here. */
	if (o.err || dime_dmtp_parse(&back, NULL, buf, o.len) != DIME_OK ||
	    !dime_dmtp_equal(&back, c))
		return DIME_E_INVALID;
	if (out != NULL) {
		if (out_cap < o.len + 1) {
			rc = DIME_E_NOSPACE;
			goto out;
		}
		memcpy(out, buf, o.len);
		out[o.len] = 0;
	}
	*out_len = o.len;
	rc = DIME_OK;
out:
	return rc;
}

/* A full fingerprint: 86 base64 characters encoding 64 bytes, so the last character's low four
 * bits are zero (the only canonical encoding). */
static int
dmtp_fp_full(const char *fp, size_t cap)
{
	const char *nul = memchr(fp, 0, cap);

	return nul != NULL && (size_t)(nul - fp) == DIME_DMTP_FP_CHARS &&
	       dmtp_is_b64(fp[DIME_DMTP_FP_CHARS - 1]) &&
	       (dmtp_b64_value(fp[DIME_DMTP_FP_CHARS - 1]) & 0xf) == 0;
}

int
dime_dmtp_check(const struct dime_dmtp_cmd *c, const char **why)
{
	const char *dummy;

	if (why == NULL)
		why = &dummy;
	*why = "";
	if (c == NULL) {
		*why = "no command";
		return DIME_E_MALFORMED;
	}
	if (((c->flags & DIME_DMTP_F_FP) && !dmtp_fp_full(c->fp, sizeof(c->fp))) ||
	    ((c->flags & DIME_DMTP_F_START) && !dmtp_fp_full(c->start, sizeof(c->start))) ||
	    ((c->flags & DIME_DMTP_F_STOP) && !dmtp_fp_full(c->stop, sizeof(c->stop)))) {
		*why = "a fingerprint must be 86 base64 characters (64 bytes, unpadded)";
		return DIME_E_MALFORMED;
	}
	return DIME_OK;
}

/* Equal NUL-terminated contents within cap bytes; a field with no NUL equals nothing. */
static int
dmtp_field_eq(const char *a, const char *b, size_t cap)
{
	const char *na = memchr(a, 0, cap), *nb = memchr(b, 0, cap);

	return na != NULL && nb != NULL && na - a == nb - b && memcmp(a, b, (size_t)(na - a)) == 0;
}

int
dime_dmtp_equal(const struct dime_dmtp_cmd *a, const struct dime_dmtp_cmd *b)
{
	unsigned f = a->flags;

	if (a->verb != b->verb || a->flags != b->flags)
		return 0;
	return (!(f & DIME_DMTP_F_ADDR) || dmtp_field_eq(a->addr, b->addr, sizeof(a->addr))) &&
	       (!(f & DIME_DMTP_F_FP) || dmtp_field_eq(a->fp, b->fp, sizeof(a->fp))) &&
	       (!(f & DIME_DMTP_F_START) || dmtp_field_eq(a->start, b->start, sizeof(a->start))) &&
	       (!(f & DIME_DMTP_F_STOP) || dmtp_field_eq(a->stop, b->stop, sizeof(a->stop))) &&
	       (!(f & DIME_DMTP_F_MODE) || dmtp_field_eq(a->mode, b->mode, sizeof(a->mode))) &&
	       (!(f & DIME_DMTP_F_TEXT) || dmtp_field_eq(a->text, b->text, sizeof(a->text)));
}

int
dime_dmtp_reply_code(int rc)
{
	if (rc == DIME_OK)
		return 0;
	return rc == DIME_E_MALFORMED ? 501 : 500;
}

const char *
dime_dmtp_verb_name(enum dime_dmtp_verb v)
{
	return (unsigned)v < DIME_DMTP_N_VERBS ? dmtp_verbs[v] : NULL;
}

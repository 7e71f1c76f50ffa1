/* The DMTP client session machine (dime/dmtp_client.h). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "dime/dmtp_client.h"
#include "dime/dmtpc.h"

enum cstate {
	C_BANNER,
	C_EHLO,
	C_STARTTLS,
	C_TLS,	   /* the caller's handshake */
	C_POSTTLS, /* the server's 250 OK DMTP after the handshake */
	C_READY,
	C_OP, /* SGNT, HIST, VRFY */
	C_MAIL,
	C_RCPT,
	C_DATA354,
	C_DATAEND,
	C_RESULT, /* the caller reads the result */
	C_RSET,
	C_QUIT,
	C_CLOSED
};

struct dime_dmtp_client {
	enum dime_dmtp_client_mode mode;
	const char *helo, *tls_host;
	enum cstate st;
	int after_rset; /* after the result: RSET before READY */
	uint8_t *out;
	size_t out_off, out_len, out_cap;
	char line[DIME_DMTPC_LINE_MAX + 1];
	size_t line_len;
	struct dime_dmtpc_reply r;
	char *text;
	size_t text_cap;
	struct dime_dmtp_client_op op;
	struct dime_dmtp_client_result res;
	char err[200];
	int last_code;
};

int
dime_dmtp_client_new(struct dime_dmtp_client **out, const struct dime_dmtp_client_conf *conf)
{
	struct dime_dmtp_client *c;

	*out = NULL;
	if (conf == NULL || conf->helo == NULL || conf->helo[0] == 0 ||
	    strlen(conf->helo) > DIME_DMTP_ADDR_MAX ||
	    (conf->mode != DIME_DMTP_CLIENT_IMPLICIT && conf->mode != DIME_DMTP_CLIENT_DUAL) ||
	    (conf->mode == DIME_DMTP_CLIENT_DUAL &&
	     (conf->tls_host == NULL || conf->tls_host[0] == 0 ||
	      strlen(conf->tls_host) > DIME_DMTP_ADDR_MAX)))
		return DIME_E_INVALID;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return DIME_E_NOMEM;
	c->text_cap = conf->reply_max > 0 ? conf->reply_max : DIME_DMTP_CLIENT_REPLY_DEFAULT;
	if ((c->text = malloc(c->text_cap)) == NULL) {
		free(c);
		return DIME_E_NOMEM;
	}
	c->mode = conf->mode;
	c->helo = conf->helo;
	c->tls_host = conf->tls_host;
	c->st = C_BANNER;
	dime_dmtpc_reply_init(&c->r, c->text, c->text_cap);
	*out = c;
	return DIME_OK;
}

void
dime_dmtp_client_free(struct dime_dmtp_client *c)
{
	if (c == NULL)
		return;
	if (c->out != NULL) {
		sodium_memzero(c->out, c->out_cap);
		free(c->out);
	}
	sodium_memzero(c->text, c->text_cap);
	free(c->text);
	sodium_memzero(c, sizeof(*c));
	free(c);
}

static void
cl_fail(struct dime_dmtp_client *c, const char *why, const char *text)
{
	if (c->st == C_CLOSED)
		return;
	snprintf(c->err, sizeof(c->err), "%s%s%.120s", why, text != NULL ? ": " : "",
		 text != NULL ? text : "");
	c->st = C_CLOSED;
}

/* Queue n octets of output. Returns: 0, or -1 (closed: out of memory). */
static int
cl_put(struct dime_dmtp_client *c, const void *p, size_t n)
{
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (n > c->out_cap - c->out_len) {
		size_t cap = c->out_cap > 0 ? c->out_cap : 1024;
		uint8_t *grown;

		while (cap - c->out_len < n) {
			if (cap > SIZE_MAX / 2) {
				cl_fail(c, "out of memory", NULL);
				return -1;
			}
			cap *= 2;
		}
		if ((grown = malloc(cap)) == NULL) {
			cl_fail(c, "out of memory", NULL);
			return -1;
		}
		if (c->out_len > 0)
			memcpy(grown, c->out, c->out_len);
		if (c->out != NULL) {
			sodium_memzero(c->out, c->out_cap);
			free(c->out);
		}
		c->out = grown;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
	return 0;
}

/* Format and queue a command. Returns: 0, or -1 (why set when the grammar refuses it). */
static int
cl_cmd(struct dime_dmtp_client *c, enum dime_dmtp_verb verb, const char *addr, const char *fp,
       const char *start, const char *stop, const char **why)
{
	struct dime_dmtp_cmd cmd;
	char line[DIME_DMTP_LINE_MAX + 1];
	size_t n;

	memset(&cmd, 0, sizeof(cmd));
	cmd.verb = verb;
	if (addr != NULL) {
		if (strlen(addr) > DIME_DMTP_ADDR_MAX) {
			*why = "address or host too long";
			return -1;
		}
		cmd.flags |= DIME_DMTP_F_ADDR;
		if (strchr(addr, '@') != NULL)
			cmd.flags |= DIME_DMTP_F_MAILBOX;
		snprintf(cmd.addr, sizeof(cmd.addr), "%s", addr);
	}
	if (verb == DIME_DMTP_STARTTLS) {
		cmd.flags |= DIME_DMTP_F_MODE;
		snprintf(cmd.mode, sizeof(cmd.mode), "DMTP");
	}
	{
		const char *v[3] = {fp, start, stop};
		char *dst[3] = {cmd.fp, cmd.start, cmd.stop};
		const unsigned f[3] = {DIME_DMTP_F_FP, DIME_DMTP_F_START, DIME_DMTP_F_STOP};

		for (int i = 0; i < 3; i++) {
			if (v[i] == NULL)
				continue;
			if (strlen(v[i]) > DIME_DMTP_FP_CHARS) {
				*why = "fingerprint too long";
				return -1;
			}
			cmd.flags |= f[i];
			snprintf(dst[i], DIME_DMTP_FP_CHARS + 1, "%s", v[i]);
		}
	}
	if (dime_dmtp_format(line, sizeof(line), &n, &cmd) != DIME_OK) {
		*why = "the DMTP grammar refuses these values";
		return -1;
	}
	return cl_put(c, line, n);
}

/* A banner or mode reply names DMTP among its words. */
static int
cl_says_dmtp(const char *text)
{
	for (const char *p = strstr(text, "DMTP"); p != NULL; p = strstr(p + 1, "DMTP"))
		if ((p == text || p[-1] == ' ') && (p[4] == '\0' || p[4] == ' ' || p[4] == '\n'))
			return 1;
	return 0;
}

static void
cl_ehlo(struct dime_dmtp_client *c)
{
	const char *why = "";

	if (cl_cmd(c, DIME_DMTP_EHLO, c->helo, NULL, NULL, NULL, &why) != 0)
		cl_fail(c, "cannot form EHLO", why);
	else
		c->st = C_EHLO;
}

static void
cl_result(struct dime_dmtp_client *c, const char *stage, int rset)
{
	memset(&c->res, 0, sizeof(c->res));
	c->res.code = c->r.code;
	c->res.stage = stage;
	c->res.text = c->text;
	if ((c->r.code == 254 && dime_dmtpc_reply_value(c->res.hash, sizeof(c->res.hash), c->text,
							"ACCEPTED=") != DIME_OK) ||
	    (c->r.code == 255 && dime_dmtpc_reply_value(c->res.hash, sizeof(c->res.hash), c->text,
							"DUPLICATE=") != DIME_OK))
		c->res.hash[0] = 0;
	c->after_rset = rset;
	c->st = C_RESULT;
}

/* The message, dot-stuffed, CRLF made LF, ending in LF "." LF. */
static void
cl_data(struct dime_dmtp_client *c)
{
	const uint8_t *m = c->op.msg;
	size_t n = c->op.msg_len, i = 0;

	while (i < n && c->st != C_CLOSED) {
		size_t e = i;
		size_t len;

		while (e < n && m[e] != '\n')
			e++;
		len = e - i;
		if (len > 0 && m[i + len - 1] == '\r')
			len--;
		if (len > 0 && m[i] == '.')
			(void)cl_put(c, ".", 1);
		(void)cl_put(c, m + i, len);
		(void)cl_put(c, "\n", 1);
		i = e < n ? e + 1 : e;
	}
	(void)cl_put(c, ".\n", 2);
}

/* One whole reply arrived. */
static void
cl_reply(struct dime_dmtp_client *c)
{
	int code = c->r.code;
	const char *why = "";

	c->last_code = code;
	if (code == 421 && c->st != C_QUIT) {
		cl_fail(c, "the server is closing the session", c->text);
		return;
	}
	switch (c->st) {
	case C_BANNER:
		if (code != 220)
			cl_fail(c, "the server refused the session", c->text);
		else if (!cl_says_dmtp(c->text))
			cl_fail(c, "the banner does not name DMTP: not a DMTP host", c->text);
		else if (c->mode == DIME_DMTP_CLIENT_DUAL) {
			if (cl_cmd(c, DIME_DMTP_STARTTLS, c->tls_host, NULL, NULL, NULL, &why) != 0)
				cl_fail(c, "cannot form STARTTLS", why);
			else
				c->st = C_STARTTLS;
		} else {
			cl_ehlo(c);
		}
		return;
	case C_STARTTLS:
		if (code != 220)
			cl_fail(c, "STARTTLS refused", c->text);
		else
			c->st = C_TLS;
		return;
	case C_POSTTLS:
		/* 250 OK DMTP: the mode the elevation reached */
		if (code != 250 || strncmp(c->text, "OK DMTP", 7) != 0 ||
		    (c->text[7] != 0 && c->text[7] != ' '))
			cl_fail(c, "the connection was not elevated into DMTP mode", c->text);
		else
			cl_ehlo(c);
		return;
	case C_EHLO:
		if (code != 250)
			cl_fail(c, "EHLO refused", c->text);
		else
			c->st = C_READY;
		return;
	case C_OP:
		cl_result(c,
			  c->op.kind == DIME_DMTP_CLIENT_SGNT	? "SGNT"
			  : c->op.kind == DIME_DMTP_CLIENT_HIST ? "HIST"
								: "VRFY",
			  0);
		return;
	case C_MAIL:
		if (code != 250) {
			cl_result(c, "MAIL", 1);
		} else if (cl_cmd(c, DIME_DMTP_RCPT, c->op.to, c->op.to_fp, NULL, NULL, &why) ==
			   0) {
			c->st = C_RCPT;
		} else {
			cl_fail(c, "cannot form RCPT", why);
		}
		return;
	case C_RCPT:
		if (code != 250) {
			cl_result(c, "RCPT", 1);
		} else if (cl_put(c, "DATA\n", 5) == 0) {
			c->st = C_DATA354;
		}
		return;
	case C_DATA354:
		if (code != 354) {
			cl_result(c, "DATA", 1);
			return;
		}
		c->st = C_DATAEND;
		cl_data(c);
		return;
	case C_DATAEND:
		/* the transaction ends with the DATA reply, whatever it is */
		cl_result(c, "DATA", 0);
		return;
	case C_RSET:
		if (code != 250)
			cl_fail(c, "RSET refused", c->text);
		else
			c->st = C_READY;
		return;
	case C_QUIT: c->st = C_CLOSED; return;
	case C_TLS:
	case C_READY:
	case C_RESULT:
	case C_CLOSED: break;
	}
	/* a reply nobody asked for (a server's own 421 is handled above) */
	cl_fail(c, "unexpected reply", c->text);
}

/* Does the state read replies now? */
static int
cl_reading(const struct dime_dmtp_client *c)
{
	return c->st != C_TLS && c->st != C_RESULT && c->st != C_CLOSED;
}

size_t
dime_dmtp_client_feed(struct dime_dmtp_client *c, const uint8_t *p, size_t len)
{
	size_t used = 0;
	/* Reaching READY hands control back (the caller submits); a feed made while READY reads
	 * what the server says unasked (a 421 before it closes). */
	int was_ready = c->st == C_READY;

	while (used < len && cl_reading(c)) {
		const uint8_t *lf = memchr(p + used, '\n', len - used);
		size_t take = lf != NULL ? (size_t)(lf - (p + used)) + 1 : len - used;
		const char *why = "";
		int rc;

		if (take > sizeof(c->line) - 1 - c->line_len) {
			cl_fail(c, "a reply line longer than 512 octets", NULL);
			return len;
		}
		memcpy(c->line + c->line_len, p + used, take);
		c->line_len += take;
		used += take;
		if (lf == NULL)
			break; /* a partial line: wait for the rest */
		rc = dime_dmtpc_reply_line(&c->r, &why, c->line, c->line_len);
		c->line_len = 0;
		if (rc == DIME_E_AGAIN)
			continue;
		if (rc != DIME_OK) {
			cl_fail(c, "bad reply", why);
			return len;
		}
		cl_reply(c);
		if (c->st == C_RESULT)
			break; /* the text stays for the caller until result_done */
		dime_dmtpc_reply_init(&c->r, c->text, c->text_cap);
		if (c->st == C_READY && !was_ready)
			break;
	}
	return c->st == C_CLOSED ? len : used;
}

unsigned
dime_dmtp_client_actions(const struct dime_dmtp_client *c)
{
	switch (c->st) {
	case C_TLS: return DIME_DMTP_CLIENT_ACT_TLS;
	case C_READY: return DIME_DMTP_CLIENT_ACT_READY;
	case C_RESULT: return DIME_DMTP_CLIENT_ACT_RESULT;
	case C_CLOSED: return DIME_DMTP_CLIENT_ACT_CLOSE;
	case C_DATAEND: return DIME_DMTP_CLIENT_ACT_DATA;
	default: return 0;
	}
}

const uint8_t *
dime_dmtp_client_out(const struct dime_dmtp_client *c, size_t *len)
{
	*len = c->out_len - c->out_off;
	return c->out != NULL ? c->out + c->out_off : (const uint8_t *)"";
}

void
dime_dmtp_client_out_done(struct dime_dmtp_client *c, size_t n)
{
	DIME_ASSERT(n <= c->out_len - c->out_off);
	c->out_off += n;
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
}

int
dime_dmtp_client_submit(struct dime_dmtp_client *c, const struct dime_dmtp_client_op *op,
			const char **why)
{
	const char *w = "";
	int rc = -1;

	*why = "";
	if (c->st != C_READY || op == NULL) {
		*why = "the session is not ready for an operation";
		return DIME_E_INVALID;
	}
	switch (op->kind) {
	case DIME_DMTP_CLIENT_SGNT:
		rc = cl_cmd(c, DIME_DMTP_SGNT, op->target, op->fp, NULL, NULL, &w);
		break;
	case DIME_DMTP_CLIENT_HIST:
		rc = cl_cmd(c, DIME_DMTP_HIST, op->target, NULL, op->start, op->stop, &w);
		break;
	case DIME_DMTP_CLIENT_VRFY:
		if (op->fp == NULL) {
			*why = "VRFY needs a fingerprint";
			return DIME_E_INVALID;
		}
		rc = cl_cmd(c, DIME_DMTP_VRFY, op->target, op->fp, NULL, NULL, &w);
		break;
	case DIME_DMTP_CLIENT_SEND:
		if (op->from == NULL || op->from_fp == NULL || op->to == NULL ||
		    op->to_fp == NULL || (op->msg == NULL && op->msg_len > 0)) {
			*why = "a message needs from, from_fp, to, to_fp and its bytes";
			return DIME_E_INVALID;
		}
		rc = cl_cmd(c, DIME_DMTP_MAIL, op->from, op->from_fp, NULL, NULL, &w);
		break;
	}
	if (rc != 0) {
		*why = w[0] != 0 ? w : "unknown operation";
		return c->st == C_CLOSED ? DIME_E_NOMEM : DIME_E_INVALID;
	}
	c->op = *op;
	c->st = op->kind == DIME_DMTP_CLIENT_SEND ? C_MAIL : C_OP;
	return DIME_OK;
}

const struct dime_dmtp_client_result *
dime_dmtp_client_result(const struct dime_dmtp_client *c)
{
	return c->st == C_RESULT ? &c->res : NULL;
}

void
dime_dmtp_client_result_done(struct dime_dmtp_client *c)
{
	if (c->st != C_RESULT)
		return;
	memset(&c->res, 0, sizeof(c->res));
	memset(&c->op, 0, sizeof(c->op));
	dime_dmtpc_reply_init(&c->r, c->text, c->text_cap);
	if (c->after_rset) {
		if (cl_put(c, "RSET\n", 5) == 0)
			c->st = C_RSET;
	} else {
		c->st = C_READY;
	}
}

void
dime_dmtp_client_quit(struct dime_dmtp_client *c)
{
	if (c->st == C_READY) {
		if (cl_put(c, "QUIT\n", 5) == 0)
			c->st = C_QUIT;
		return;
	}
	if (c->st != C_QUIT)
		cl_fail(c, "ended by the caller", NULL);
}

void
dime_dmtp_client_tls_done(struct dime_dmtp_client *c, int ok)
{
	if (c->st != C_TLS)
		return;
	if (!ok)
		cl_fail(c, "the TLS handshake failed or is not TLS 1.2 with the DMTP cipher", NULL);
	else
		c->st = C_POSTTLS;
}

const char *
dime_dmtp_client_error(const struct dime_dmtp_client *c)
{
	return c->err;
}

int
dime_dmtp_client_last_code(const struct dime_dmtp_client *c)
{
	return c->last_code;
}

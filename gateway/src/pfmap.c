/* The Postfix routing helpers as machines: the socketmap server (netstrings, socketmap_table(5))
 * and the policy delegation server (name=value lines, SMTPD_POLICY_README). Bytes in, answers
 * out, one query open at a time; no I/O, so every framing rule is testable one byte at a time.
 * The mapping from a policy outcome (dime_send_decide) to either answer lives here too. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "dime/pfmap.h"
#include "outbuf.h"

/* ---- shared: text checks, addresses ---- */

/* Is text a NUL-terminated run of at most DIME_PFMAP_TEXT_MAX printable ASCII octets? (The
 * array is DIME_PFMAP_TEXT_MAX + 1 long, so the NUL must be inside it.) Out: *n its length. */
static int
pfmap_text_ok(const char text[DIME_PFMAP_TEXT_MAX + 1], size_t *n)
{
	const char *z = memchr(text, 0, DIME_PFMAP_TEXT_MAX + 1);

	*n = 0;
	if (z == NULL)
		return 0;
	for (const char *c = text; c < z; c++)
		if (*c < 0x20 || *c > 0x7e)
			return 0;
	*n = (size_t)(z - text);
	return 1;
}

int
dime_pfmap_addr_domain(char *dom, size_t cap, const char *addr, size_t addr_len)
{
	const char *at = NULL, *d;
	size_t len, label = 0;

	if (cap > 0)
		dom[0] = 0;
	for (size_t i = addr_len; i > 0; i--)
		if (addr[i - 1] == '@') {
			at = addr + i - 1;
			break;
		}
	/* "@domain" is not an address Postfix routes (it is how fixed tables spell a domain). */
	if (at == NULL || at == addr)
		return DIME_E_INVALID;
	d = at + 1;
	len = addr_len - (size_t)(d - addr);
	if (len > 1 && d[len - 1] == '.')
		len--;
	if (len == 0 || len > DIME_PFMAP_DOMAIN_MAX)
		return DIME_E_INVALID;
	if (len >= cap)
		return DIME_E_NOSPACE;
	for (size_t i = 0; i < len; i++) {
		char c = d[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c == '.') {
			if (label == 0)
				goto bad;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
			if (++label > 63)
				goto bad;
		} else {
			goto bad; /* "[1.2.3.4]", 8-bit (U-label) and anything else */
		}
		dom[i] = c;
	}
	if (label == 0)
		goto bad;
	dom[len] = 0;
	return DIME_OK;
bad:
	dom[0] = 0;
	return DIME_E_INVALID;
}

/* ==== socketmap ==== */

/* Where the netstring reader stands: before the first digit, in the digits, in the payload,
 * before the comma. */
enum sm_st { SM_LEN0 = 0, SM_LEN, SM_DATA, SM_COMMA };

struct dime_pfmap_sm {
	struct dime_pfmap_sm_conf conf;
	int closed, draining, err;
	enum sm_st st;
	size_t want;   /* the netstring's length */
	int lead_zero; /* its first digit was 0: no digit may follow */
	char buf[DIME_PFMAP_SM_REQ_MAX + 1];
	size_t buf_len;
	char dom[DIME_PFMAP_DOMAIN_MAX + 1];
	struct dime_outbuf out;
	int q_open;
	uint64_t next_id, n_req;
	struct dime_pfmap_sm_query q;
};

static const char *const sm_words[] = {NULL, "OK", "NOTFOUND", "TEMP", "TIMEOUT", "PERM"};

static void
sm_close(struct dime_pfmap_sm *m, int err)
{
	if (!m->closed)
		m->err = err;
	m->closed = 1;
}

/* Queue "<len>:<WORD> <text>,". text has been checked. */
static void
sm_reply(struct dime_pfmap_sm *m, enum dime_pfmap_sm_status st, const char *text)
{
	char head[32];
	size_t wl = strlen(sm_words[st]), tl = strlen(text);
	int n = snprintf(head, sizeof(head), "%zu:%s ", wl + 1 + tl, sm_words[st]);

	if (n < 0 || dime_outbuf_put(&m->out, head, (size_t)n) != 0 ||
	    dime_outbuf_put(&m->out, text, tl) != 0 || dime_outbuf_put(&m->out, ",", 1) != 0) {
		/* Without the reply the next answers would be out of step: hang up instead. */
		sm_close(m, DIME_E_NOMEM);
		return;
	}
	if (m->draining || (m->conf.max_requests != 0 && m->n_req >= m->conf.max_requests))
		sm_close(m, DIME_OK);
}

static int
sm_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > DIME_PFMAP_SM_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return 0;
	return 1;
}

int
dime_pfmap_sm_new(struct dime_pfmap_sm **out, const struct dime_pfmap_sm_conf *conf)
{
	struct dime_pfmap_sm *m;

	*out = NULL;
	if (conf == NULL ||
	    (conf->map_name != NULL && !sm_name_ok(conf->map_name, strlen(conf->map_name))))
		return DIME_E_INVALID;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return DIME_E_NOMEM;
	m->conf = *conf;
	m->next_id = 1;
	*out = m;
	return DIME_OK;
}

void
dime_pfmap_sm_free(struct dime_pfmap_sm *m)
{
	if (m == NULL)
		return;
	dime_outbuf_free(&m->out);
	sodium_memzero(m, sizeof(*m));
	free(m);
}

/* One whole request is in buf[0..buf_len). */
static void
sm_request(struct dime_pfmap_sm *m)
{
	char *sp;
	const char *key;
	size_t name_len, key_len;

	m->n_req++;
	m->buf[m->buf_len] = 0;
	/* Postfix sends "name key" with the key as the address; no control character (NUL
	 * included) belongs in either, and 8-bit octets only in an SMTPUTF8 key. */
	for (size_t i = 0; i < m->buf_len; i++)
		if ((unsigned char)m->buf[i] < 0x20 || m->buf[i] == 0x7f) {
			sm_close(m, DIME_E_MALFORMED);
			return;
		}
	if ((sp = memchr(m->buf, ' ', m->buf_len)) == NULL ||
	    !sm_name_ok(m->buf, (size_t)(sp - m->buf))) {
		sm_close(m, DIME_E_MALFORMED);
		return;
	}
	name_len = (size_t)(sp - m->buf);
	*sp = 0;
	key = sp + 1;
	key_len = m->buf_len - name_len - 1;
	if (m->conf.map_name != NULL && strcmp(m->buf, m->conf.map_name) != 0) {
		sm_reply(m, DIME_PFMAP_SM_PERM, "unknown map name");
		return;
	}
	/* Not user@host-name (trivial-rewrite's "*" wildcard probe, an address literal, a bare
	 * local part): nothing DIME can route, so Postfix's own delivery applies. */
	if (dime_pfmap_addr_domain(m->dom, sizeof(m->dom), key, key_len) != DIME_OK) {
		sm_reply(m, DIME_PFMAP_SM_NOTFOUND, "");
		return;
	}
	m->q.id = m->next_id++;
	m->q.name = m->buf;
	m->q.key = key;
	m->q.key_len = key_len;
	m->q.domain = m->dom;
	m->q_open = 1;
}

size_t
dime_pfmap_sm_feed(struct dime_pfmap_sm *m, const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len && !m->closed) {
		uint8_t c;

		if (m->q_open || dime_outbuf_pending(&m->out) >= DIME_PFMAP_OUT_HIGH)
			break;
		if (m->st == SM_DATA) {
			size_t n = m->want - m->buf_len;

			if (n > len - i)
				n = len - i;
			memcpy(m->buf + m->buf_len, p + i, n);
			m->buf_len += n;
			i += n;
			if (m->buf_len == m->want)
				m->st = SM_COMMA;
			continue;
		}
		c = p[i++];
		switch (m->st) {
		case SM_LEN0:
			if (c < '0' || c > '9') {
				sm_close(m, DIME_E_MALFORMED);
				break;
			}
			m->want = (size_t)(c - '0');
			m->lead_zero = c == '0';
			m->st = SM_LEN;
			break;
		case SM_LEN:
			if (c >= '0' && c <= '9') {
				/* One encoding per length: "0" alone, never "01" (netstrings). */
				if (m->lead_zero) {
					sm_close(m, DIME_E_MALFORMED);
					break;
				}
				m->want = m->want * 10 + (size_t)(c - '0');
				if (m->want > DIME_PFMAP_SM_REQ_MAX)
					sm_close(m, DIME_E_LIMIT);
				break;
			}
			if (c != ':') {
				sm_close(m, DIME_E_MALFORMED);
				break;
			}
			m->buf_len = 0;
			m->st = m->want > 0 ? SM_DATA : SM_COMMA;
			break;
		case SM_COMMA:
			m->st = SM_LEN0;
			if (c != ',') {
				sm_close(m, DIME_E_MALFORMED);
				break;
			}
			sm_request(m);
			break;
		case SM_DATA: break; /* handled above */
		}
	}
	return m->closed ? len : i;
}

unsigned
dime_pfmap_sm_actions(const struct dime_pfmap_sm *m)
{
	if (m->closed)
		return DIME_PFMAP_ACT_CLOSE;
	return m->q_open ? DIME_PFMAP_ACT_QUERY : 0;
}

const uint8_t *
dime_pfmap_sm_out(const struct dime_pfmap_sm *m, size_t *len)
{
	return dime_outbuf_get(&m->out, len);
}

void
dime_pfmap_sm_out_done(struct dime_pfmap_sm *m, size_t n)
{
	dime_outbuf_done(&m->out, n);
}

const struct dime_pfmap_sm_query *
dime_pfmap_sm_query(const struct dime_pfmap_sm *m)
{
	return m->q_open ? &m->q : NULL;
}

int
dime_pfmap_sm_answer(struct dime_pfmap_sm *m, const struct dime_pfmap_sm_answer *a)
{
	size_t tl;
	int fits;

	if (!m->q_open || a == NULL || a->id != m->q.id || a->status < DIME_PFMAP_SM_OK ||
	    a->status > DIME_PFMAP_SM_PERM)
		return DIME_E_INVALID;
	fits = pfmap_text_ok(a->text, &tl);
	if (fits && a->status == DIME_PFMAP_SM_OK && tl == 0)
		fits = 0;
	if (fits && a->status == DIME_PFMAP_SM_NOTFOUND && tl != 0)
		fits = 0;
	m->q_open = 0;
	memset(&m->q, 0, sizeof(m->q));
	if (!fits) {
		sm_reply(m, DIME_PFMAP_SM_TEMP, "invalid answer");
		return DIME_E_INVALID;
	}
	sm_reply(m, a->status, a->text);
	return DIME_OK;
}

void
dime_pfmap_sm_drain(struct dime_pfmap_sm *m)
{
	m->draining = 1;
	if (!m->q_open)
		sm_close(m, DIME_OK);
}

int
dime_pfmap_sm_error(const struct dime_pfmap_sm *m)
{
	return m->err;
}

uint64_t
dime_pfmap_sm_requests(const struct dime_pfmap_sm *m)
{
	return m->n_req;
}

/* ==== policy delegation ==== */

/* The attributes kept; the others are read and ignored (SMTPD_POLICY_README: "the policy
 * server should ignore any attributes that it does not care about"). */
enum pol_attr {
	PA_REQUEST = 0,
	PA_PROTOCOL_STATE,
	PA_PROTOCOL_NAME,
	PA_HELO_NAME,
	PA_QUEUE_ID,
	PA_INSTANCE,
	PA_SENDER,
	PA_RECIPIENT,
	PA_CLIENT_ADDRESS,
	PA_CLIENT_NAME,
	PA_REVERSE_CLIENT_NAME,
	PA_SASL_METHOD,
	PA_SASL_USERNAME,
	PA_ENCRYPTION_PROTOCOL,
	PA_STRESS,
	PA_POLICY_CONTEXT,
	PA_SIZE,
	PA_RECIPIENT_COUNT,
	PA_N
};

static const char *const pol_attr_names[PA_N] = {"request",
						 "protocol_state",
						 "protocol_name",
						 "helo_name",
						 "queue_id",
						 "instance",
						 "sender",
						 "recipient",
						 "client_address",
						 "client_name",
						 "reverse_client_name",
						 "sasl_method",
						 "sasl_username",
						 "encryption_protocol",
						 "stress",
						 "policy_context",
						 "size",
						 "recipient_count"};

static const char *const pol_state_names[] = {NULL,   "CONNECT", "EHLO",	   "HELO", "MAIL",
					      "RCPT", "DATA",	 "END-OF-MESSAGE", "VRFY", "ETRN"};

#define POL_NAME_MAX 64u
#define POL_NONE     SIZE_MAX

struct dime_pfmap_pol {
	struct dime_pfmap_pol_conf conf;
	int closed, draining, err;
	char line[DIME_PFMAP_POL_LINE_MAX];
	size_t line_len;
	size_t req_len; /* octets of the request so far */
	unsigned n_attrs;
	/* Kept values, NUL-terminated, at val_off[]; a repeated attribute's older value stays
	 * behind unused, which the request cap bounds. */
	char vals[DIME_PFMAP_POL_REQ_MAX + DIME_PFMAP_POL_ATTRS_MAX];
	size_t vals_len;
	size_t val_off[PA_N];
	uint64_t size, rcpt_count;
	char dom[DIME_PFMAP_DOMAIN_MAX + 1];
	struct dime_outbuf out;
	int q_open;
	uint64_t next_id, n_req;
	struct dime_pfmap_pol_query q;
};

static void
pol_close(struct dime_pfmap_pol *p, int err)
{
	if (!p->closed)
		p->err = err;
	p->closed = 1;
}

static void
pol_req_reset(struct dime_pfmap_pol *p)
{
	p->line_len = p->req_len = p->vals_len = 0;
	p->n_attrs = 0;
	p->size = p->rcpt_count = 0;
	for (size_t i = 0; i < PA_N; i++)
		p->val_off[i] = POL_NONE;
}

int
dime_pfmap_pol_new(struct dime_pfmap_pol **out, const struct dime_pfmap_pol_conf *conf)
{
	struct dime_pfmap_pol *p;

	*out = NULL;
	if (conf == NULL)
		return DIME_E_INVALID;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return DIME_E_NOMEM;
	p->conf = *conf;
	p->next_id = 1;
	pol_req_reset(p);
	*out = p;
	return DIME_OK;
}

void
dime_pfmap_pol_free(struct dime_pfmap_pol *p)
{
	if (p == NULL)
		return;
	dime_outbuf_free(&p->out);
	sodium_memzero(p, sizeof(*p));
	free(p);
}

/* Queue "action=<word>[ <text>]\n\n" (checked by the caller). */
static void
pol_reply(struct dime_pfmap_pol *p, const char *word, const char *text)
{
	if (dime_outbuf_put(&p->out, "action=", 7) != 0 ||
	    dime_outbuf_put(&p->out, word, strlen(word)) != 0 ||
	    (text[0] != 0 && (dime_outbuf_put(&p->out, " ", 1) != 0 ||
			      dime_outbuf_put(&p->out, text, strlen(text)) != 0)) ||
	    dime_outbuf_put(&p->out, "\n\n", 2) != 0) {
		pol_close(p, DIME_E_NOMEM);
		return;
	}
	if (p->draining || (p->conf.max_requests != 0 && p->n_req >= p->conf.max_requests))
		pol_close(p, DIME_OK);
}

static const char *
pol_val(const struct dime_pfmap_pol *p, enum pol_attr a)
{
	return p->val_off[a] == POL_NONE ? "" : p->vals + p->val_off[a];
}

/* A decimal attribute: empty is 0 (SMTPD_POLICY_README: an unavailable value may be sent
 * empty or as 0). Returns: 0, or -1 (not digits, or over 2^64 - 1). */
static int
pol_number(uint64_t *out, const char *s, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t d = (uint64_t)(s[i] - '0');

		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* One attribute line, without its LF (and CR). */
static void
pol_attr_line(struct dime_pfmap_pol *p, const char *s, size_t n)
{
	const char *eq = memchr(s, '=', n);
	const char *v;
	size_t name_len, vlen, a;

	if (++p->n_attrs > DIME_PFMAP_POL_ATTRS_MAX) {
		pol_close(p, DIME_E_LIMIT);
		return;
	}
	if (eq == NULL || eq == s || (size_t)(eq - s) > POL_NAME_MAX) {
		pol_close(p, DIME_E_MALFORMED);
		return;
	}
	name_len = (size_t)(eq - s);
	for (size_t i = 0; i < name_len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-')) {
			pol_close(p, DIME_E_MALFORMED);
			return;
		}
	}
	v = eq + 1;
	vlen = n - name_len - 1;
	for (a = 0; a < PA_N; a++)
		if (strlen(pol_attr_names[a]) == name_len &&
		    memcmp(pol_attr_names[a], s, name_len) == 0)
			break;
	if (a == PA_N)
		return;
	for (size_t i = 0; i < vlen; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
			pol_close(p, DIME_E_MALFORMED);
			return;
		}
	if ((a == PA_SIZE && pol_number(&p->size, v, vlen) != 0) ||
	    (a == PA_RECIPIENT_COUNT && pol_number(&p->rcpt_count, v, vlen) != 0)) {
		pol_close(p, DIME_E_MALFORMED);
		return;
	}
	/* The request cap bounds the sum of values plus one NUL per line (see vals). */
	DIME_ASSERT(vlen + 1 <= sizeof(p->vals) - p->vals_len);
	memcpy(p->vals + p->vals_len, v, vlen);
	p->vals[p->vals_len + vlen] = 0;
	p->val_off[a] = p->vals_len;
	p->vals_len += vlen + 1;
}

/* The empty line: the request is whole. */
static void
pol_request(struct dime_pfmap_pol *p)
{
	struct dime_pfmap_pol_query *q = &p->q;
	const char *st;

	p->n_req++;
	if (strcmp(pol_val(p, PA_REQUEST), "smtpd_access_policy") != 0) {
		pol_close(p, DIME_E_MALFORMED);
		return;
	}
	memset(q, 0, sizeof(*q));
	st = pol_val(p, PA_PROTOCOL_STATE);
	q->state = DIME_PFMAP_ST_UNKNOWN;
	for (size_t i = 1; i < sizeof(pol_state_names) / sizeof(pol_state_names[0]); i++)
		if (strcmp(st, pol_state_names[i]) == 0)
			q->state = (enum dime_pfmap_pol_state)i;
	q->protocol_state = st;
	q->protocol_name = pol_val(p, PA_PROTOCOL_NAME);
	q->helo_name = pol_val(p, PA_HELO_NAME);
	q->queue_id = pol_val(p, PA_QUEUE_ID);
	q->instance = pol_val(p, PA_INSTANCE);
	q->sender = pol_val(p, PA_SENDER);
	q->recipient = pol_val(p, PA_RECIPIENT);
	q->client_address = pol_val(p, PA_CLIENT_ADDRESS);
	q->client_name = pol_val(p, PA_CLIENT_NAME);
	q->reverse_client_name = pol_val(p, PA_REVERSE_CLIENT_NAME);
	q->sasl_method = pol_val(p, PA_SASL_METHOD);
	q->sasl_username = pol_val(p, PA_SASL_USERNAME);
	q->encryption_protocol = pol_val(p, PA_ENCRYPTION_PROTOCOL);
	q->stress = pol_val(p, PA_STRESS);
	q->policy_context = pol_val(p, PA_POLICY_CONTEXT);
	q->size = p->size;
	q->recipient_count = p->rcpt_count;
	if (dime_pfmap_addr_domain(p->dom, sizeof(p->dom), q->recipient, strlen(q->recipient)) !=
	    DIME_OK)
		p->dom[0] = 0;
	q->rcpt_domain = p->dom;
	if (!p->conf.all_states && (q->state != DIME_PFMAP_ST_RCPT || p->dom[0] == 0)) {
		/* Nothing to decide: no recipient whose domain could have a policy. */
		memset(q, 0, sizeof(*q));
		pol_req_reset(p);
		pol_reply(p, "DUNNO", "");
		return;
	}
	q->id = p->next_id++;
	p->q_open = 1;
}

size_t
dime_pfmap_pol_feed(struct dime_pfmap_pol *p, const uint8_t *b, size_t len)
{
	size_t i = 0;

	while (i < len && !p->closed) {
		uint8_t c;

		if (p->q_open || dime_outbuf_pending(&p->out) >= DIME_PFMAP_OUT_HIGH)
			break;
		c = b[i++];
		if (c == 0) {
			pol_close(p, DIME_E_MALFORMED);
			break;
		}
		if (++p->req_len > DIME_PFMAP_POL_REQ_MAX) {
			pol_close(p, DIME_E_LIMIT);
			break;
		}
		if (c != '\n') {
			/* Room for this octet and the LF still to come. */
			if (p->line_len >= DIME_PFMAP_POL_LINE_MAX - 1) {
				pol_close(p, DIME_E_LIMIT);
				break;
			}
			p->line[p->line_len++] = (char)c;
			continue;
		}
		if (p->line_len > 0 && p->line[p->line_len - 1] == '\r')
			p->line_len--;
		if (p->line_len == 0) {
			pol_request(p);
			continue;
		}
		pol_attr_line(p, p->line, p->line_len);
		p->line_len = 0;
	}
	return p->closed ? len : i;
}

unsigned
dime_pfmap_pol_actions(const struct dime_pfmap_pol *p)
{
	if (p->closed)
		return DIME_PFMAP_ACT_CLOSE;
	return p->q_open ? DIME_PFMAP_ACT_QUERY : 0;
}

const uint8_t *
dime_pfmap_pol_out(const struct dime_pfmap_pol *p, size_t *len)
{
	return dime_outbuf_get(&p->out, len);
}

void
dime_pfmap_pol_out_done(struct dime_pfmap_pol *p, size_t n)
{
	dime_outbuf_done(&p->out, n);
}

const struct dime_pfmap_pol_query *
dime_pfmap_pol_query(const struct dime_pfmap_pol *p)
{
	return p->q_open ? &p->q : NULL;
}

int
dime_pfmap_pol_answer(struct dime_pfmap_pol *p, const struct dime_pfmap_pol_answer *a)
{
	static const char *const words[] = {NULL,    "DUNNO", "OK", "REJECT", "DEFER_IF_PERMIT",
					    "DEFER", NULL};
	char code[8];
	const char *word;
	size_t tl;
	int fits;

	if (!p->q_open || a == NULL || a->id != p->q.id || a->verdict < DIME_PFMAP_POL_DUNNO ||
	    a->verdict > DIME_PFMAP_POL_CODE)
		return DIME_E_INVALID;
	fits = pfmap_text_ok(a->text, &tl);
	switch (a->verdict) {
	case DIME_PFMAP_POL_DUNNO:
	case DIME_PFMAP_POL_OK:
		if (tl != 0)
			fits = 0;
		break;
	case DIME_PFMAP_POL_CODE:
		if (tl == 0 || a->code < 400 || a->code > 599)
			fits = 0;
		break;
	default: break;
	}
	p->q_open = 0;
	memset(&p->q, 0, sizeof(p->q));
	pol_req_reset(p);
	if (!fits) {
		/* SMTPD_POLICY_README: in trouble, no reply and a disconnect; Postfix retries and
		 * then applies its own default action, never a reply we did not mean. */
		pol_close(p, DIME_E_INVALID);
		return DIME_E_INVALID;
	}
	if (a->verdict == DIME_PFMAP_POL_CODE) {
		(void)snprintf(code, sizeof(code), "%d", a->code);
		word = code;
	} else {
		word = words[a->verdict];
	}
	pol_reply(p, word, a->text);
	return DIME_OK;
}

void
dime_pfmap_pol_drain(struct dime_pfmap_pol *p)
{
	p->draining = 1;
	if (!p->q_open)
		pol_close(p, DIME_OK);
}

int
dime_pfmap_pol_error(const struct dime_pfmap_pol *p)
{
	return p->err;
}

uint64_t
dime_pfmap_pol_requests(const struct dime_pfmap_pol *p)
{
	return p->n_req;
}

/* ==== from a policy outcome to an answer ==== */

/* prefix then why into out (cap DIME_PFMAP_TEXT_MAX + 1), cut to fit, every octet outside
 * printable ASCII made '?'. */
static void
route_text(char *out, const char *prefix, const char *why, const char *dflt)
{
	size_t n = 0, cap = DIME_PFMAP_TEXT_MAX;

	if (why == NULL || why[0] == 0)
		why = dflt;
	for (const char *s = prefix; *s != 0 && n < cap; s++)
		out[n++] = *s;
	for (const char *s = why; *s != 0 && n < cap; s++)
		out[n++] = (*s >= 0x20 && *s <= 0x7e) ? *s : '?';
	out[n] = 0;
}

int
dime_pfmap_route_sm(struct dime_pfmap_sm_answer *a, const struct dime_pfmap_route *route,
		    enum dime_send_action action, const char *why)
{
	size_t nl = 0;

	memset(a, 0, sizeof(*a));
	/* A bounded strlen: nl ends at DIME_PFMAP_TEXT_MAX + 1 when the text is too long. */
	if (route != NULL && route->nexthop != NULL)
		while (nl <= DIME_PFMAP_TEXT_MAX && route->nexthop[nl] != 0)
			nl++;
	if (nl == 0 || nl > DIME_PFMAP_TEXT_MAX) {
		a->status = DIME_PFMAP_SM_TEMP;
		route_text(a->text, "", "no D/MIME next hop configured", "");
		return DIME_E_INVALID;
	}
	for (size_t i = 0; i < nl; i++)
		if (route->nexthop[i] < 0x21 || route->nexthop[i] > 0x7e) {
			a->status = DIME_PFMAP_SM_TEMP;
			route_text(a->text, "", "bad D/MIME next hop configured", "");
			return DIME_E_INVALID;
		}
	switch (action) {
	case DIME_SEND_DMIME:
		a->status = DIME_PFMAP_SM_OK;
		memcpy(a->text, route->nexthop, nl + 1);
		return DIME_OK;
	case DIME_SEND_NAKED: a->status = DIME_PFMAP_SM_NOTFOUND; return DIME_OK;
	case DIME_SEND_DEFER:
		a->status = DIME_PFMAP_SM_TEMP;
		route_text(a->text, "", why, "DIME policy cannot be decided now");
		return DIME_OK;
	case DIME_SEND_REFUSE:
		a->status = DIME_PFMAP_SM_OK;
		if (route->refuse == DIME_PFMAP_REFUSE_GATEWAY) {
			memcpy(a->text, route->nexthop, nl + 1);
			return DIME_OK;
		}
		if (route->refuse != DIME_PFMAP_REFUSE_ERROR)
			break;
		/* error(8) bounces with the next hop as the reason, its status code first. */
		route_text(a->text, "error:5.7.1 ", why, "DIME policy refuses this recipient");
		return DIME_OK;
	}
	memset(a, 0, sizeof(*a));
	a->status = DIME_PFMAP_SM_TEMP;
	route_text(a->text, "", "unknown DIME policy action", "");
	return DIME_E_INVALID;
}

void
dime_pfmap_route_pol(struct dime_pfmap_pol_answer *a, enum dime_pfmap_pol_state st,
		     enum dime_send_action action, const char *why)
{
	memset(a, 0, sizeof(*a));
	a->verdict = DIME_PFMAP_POL_DUNNO;
	if (st != DIME_PFMAP_ST_RCPT)
		return;
	switch (action) {
	case DIME_SEND_DMIME:
	case DIME_SEND_NAKED: return;
	case DIME_SEND_REFUSE:
		a->verdict = DIME_PFMAP_POL_CODE;
		a->code = 550;
		route_text(a->text, "5.7.1 ", why, "DIME policy refuses this recipient");
		return;
	case DIME_SEND_DEFER: break;
	}
	/* DEFER, and an action this code does not know: never let it through unasked. */
	a->verdict = DIME_PFMAP_POL_DEFER_IF_PERMIT;
	route_text(a->text, "4.7.0 ", action == DIME_SEND_DEFER ? why : NULL,
		   "DIME policy cannot be decided now");
}

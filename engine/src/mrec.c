/* Management records: the `_dime` TXT record of DIME spec Part 4, as WIRE.md settles it.
 * A tokenizer over the joined TXT strings, one validator per field, a canonical writer, the
 * TXT-string splitter, and the tls field's signature. Pure functions over caller memory. */

#include <string.h>

#include "dime/codec.h"
#include "dime/mrec.h"
#include "wr.h"

#define MREC_POK_B64	 43u /* 32 bytes, unpadded */
#define MREC_TLS_B64	 86u /* 64 bytes, unpadded */
#define MREC_EXP_DEFAULT 30u
#define MREC_EXP_MAX	 3650u /* ten years: a longer cache lifetime is a typo, not a policy */
#define MREC_HOST_MAX	 253u  /* RFC 1035 presentation form, without the optional final dot */
#define MREC_LABEL_MAX	 63u

enum mrec_field { MREC_POK, MREC_TLS, MREC_VER, MREC_EXP, MREC_SYN, MREC_DX, MREC_POL, MREC_SUB };

/* DIME spec Part 4, "Field definitions": long and short names. */
static const struct {
	const char *name;
	enum mrec_field f;
} mrec_names[] = {
    {"pok", MREC_POK},	      {"primary", MREC_POK}, {"tls", MREC_TLS},	      {"ver", MREC_VER},
    {"version", MREC_VER},    {"exp", MREC_EXP},     {"expiry", MREC_EXP},    {"syn", MREC_SYN},
    {"syndicates", MREC_SYN}, {"dx", MREC_DX},	     {"deliver", MREC_DX},    {"pol", MREC_POL},
    {"policy", MREC_POL},     {"sub", MREC_SUB},     {"subdomain", MREC_SUB},
};

/* Indexed by enum mrec_field. */
static const char *const mrec_why_novalue[] = {
    "pok: a field needs a value (name=value)", "tls: a field needs a value (name=value)",
    "ver: a field needs a value (name=value)", "exp: a field needs a value (name=value)",
    "syn: a field needs a value (name=value)", "dx: a field needs a value (name=value)",
    "pol: a field needs a value (name=value)", "sub: a field needs a value (name=value)",
};

static const char *const mrec_pol_names[] = {"experimental", "mixed", "strict"};
static const char *const mrec_sub_names[] = {"explicit", "mixed", "strict"};

/* DIME spec Part 4: fields end at a space or ';'; a tab counts as a space, and extraneous
 * whitespace is ignored, so CR, LF, VT and FF (a record pasted from a file) separate too. */
static int
mrec_is_sep(char c)
{
	return c == ' ' || c == ';' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	       c == '\f';
}

static char
mrec_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Case-insensitive (ASCII only, no locale) equality of s[0..n) with the lower-case lit. */
static int
mrec_eq_nocase(const char *s, size_t n, const char *lit)
{
	size_t l = strlen(lit);

	if (n != l)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (mrec_lower(s[i]) != lit[i])
			return 0;
	return 1;
}

static int
mrec_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int
mrec_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
mrec_is_hex(char c)
{
	return mrec_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

enum mrec_host_verdict { MREC_HOST_OK = 0, MREC_HOST_IP = 1, MREC_HOST_BAD = 2 };

/* A dx or syn value. DIME spec Part 4 ("Syndicates", "Deliver"): a domain name, never an IP
 * address. Accepted: LDH labels of 1..63 characters, no hyphen at either end, at least two
 * labels, an optional final dot, at most 253 characters without it, and a last label that
 * starts with a letter (top-level domains do), which also keeps out every inet_aton() spelling
 * of an IPv4 address such as 127.1 or 0x7f.1. Reported as an IP address (the spec's own reason
 * to reject): only digits and dots (IPv4 in any inet_aton() form), hex digits, dots and at
 * least one ':' (IPv6, also IPv4-mapped), or a bracketed literal. */
static enum mrec_host_verdict
mrec_host_check(const char *s, size_t n)
{
	size_t labels = 0, label_len = 0, last_start = 0;
	int only_num = 1, only_ip6 = 1;

	if (n == 0)
		return MREC_HOST_BAD;
	if (s[0] == '[')
		return MREC_HOST_IP;
	for (size_t i = 0; i < n; i++) {
		if (!mrec_is_digit(s[i]) && s[i] != '.')
			only_num = 0;
		if (!mrec_is_hex(s[i]) && s[i] != '.' && s[i] != ':')
			only_ip6 = 0;
	}
	if (only_num || (only_ip6 && memchr(s, ':', n) != NULL))
		return MREC_HOST_IP;
	if (s[n - 1] == '.')
		n--; /* the root label */
	if (n == 0 || n > MREC_HOST_MAX)
		return MREC_HOST_BAD;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (label_len == 0 || label_len > MREC_LABEL_MAX || s[i - 1] == '-')
				return MREC_HOST_BAD;
			labels++;
			last_start = i - label_len;
			label_len = 0;
			continue;
		}
		if (!mrec_is_alpha(s[i]) && !mrec_is_digit(s[i]) && s[i] != '-')
			return MREC_HOST_BAD;
		if (label_len == 0 && s[i] == '-')
			return MREC_HOST_BAD;
		label_len++;
	}
	if (labels < 2 || !mrec_is_alpha(s[last_start]))
		return MREC_HOST_BAD;
	return MREC_HOST_OK;
}

/* A decimal number 1..MREC_EXP_MAX (exp days, and ver); leading zeros allowed, no sign.
 * Returns 0 when invalid. */
static uint32_t
mrec_parse_days(const char *s, size_t n)
{
	uint32_t v = 0;

	for (size_t i = 0; i < n; i++) {
		if (!mrec_is_digit(s[i]))
			return 0;
		v = v * 10u + (uint32_t)(s[i] - '0');
		if (v > MREC_EXP_MAX)
			return 0;
	}
	return v;
}

struct mrec_state {
	struct dime_mrec *m;
	unsigned seen_ver, seen_exp, seen_pol, seen_sub;
	const char *why;
};

static int
mrec_fail(struct mrec_state *st, int rc, const char *why)
{
	st->why = why;
	return rc;
}

/* One known field with a non-empty value. Unique fields: every instance must be valid, and the
 * first one wins (DIME spec Part 4: "the first valid field value encountered"). */
static int
mrec_field(struct mrec_state *st, enum mrec_field f, const char *v, size_t n)
{
	struct dime_mrec *m = st->m;
	size_t got = 0;

	switch (f) {
	case MREC_POK:
		if (m->n_poks >= DIME_MREC_MAX_VALUES)
			return mrec_fail(st, DIME_E_LIMIT, "pok: more than 16 values");
		if (n != MREC_POK_B64)
			return mrec_fail(st, DIME_E_MALFORMED,
					 "pok: value must be exactly 43 base64 characters without "
					 "padding");
		if (dime_b64_decode(m->poks[m->n_poks], DIME_ED25519_PUB_BYTES, &got, v, n,
				    DIME_B64_NOPAD) != DIME_OK ||
		    got != DIME_ED25519_PUB_BYTES)
			return mrec_fail(st, DIME_E_MALFORMED, "pok: value is not valid base64");
		if (!dime_ed25519_pub_valid(m->poks[m->n_poks]))
			return mrec_fail(st, DIME_E_MALFORMED,
					 "pok: value is not a valid Ed25519 public key");
		m->n_poks++;
		return DIME_OK;
	case MREC_TLS:
		if (m->n_tls >= DIME_MREC_MAX_VALUES)
			return mrec_fail(st, DIME_E_LIMIT, "tls: more than 16 values");
		if (n != MREC_TLS_B64)
			return mrec_fail(st, DIME_E_MALFORMED,
					 "tls: value must be exactly 86 base64 characters without "
					 "padding");
		if (dime_b64_decode(m->tls[m->n_tls], DIME_SIG_BYTES, &got, v, n, DIME_B64_NOPAD) !=
			DIME_OK ||
		    got != DIME_SIG_BYTES)
			return mrec_fail(st, DIME_E_MALFORMED, "tls: value is not valid base64");
		m->n_tls++;
		return DIME_OK;
	case MREC_DX:
	case MREC_SYN: {
		size_t *cnt = f == MREC_DX ? &m->n_dx : &m->n_syn;
		struct dime_view *views = f == MREC_DX ? m->dx : m->syn;
		enum mrec_host_verdict hv;

		if (*cnt >= DIME_MREC_MAX_VALUES)
			return mrec_fail(st, DIME_E_LIMIT,
					 f == MREC_DX ? "dx: more than 16 values"
						      : "syn: more than 16 values");
		hv = mrec_host_check(v, n);
		if (hv == MREC_HOST_IP)
			return mrec_fail(
			    st, DIME_E_MALFORMED,
			    f == MREC_DX ? "dx: an IP address is not allowed, only a host name"
					 : "syn: an IP address is not allowed, only a host name");
		if (hv != MREC_HOST_OK)
			return mrec_fail(st, DIME_E_MALFORMED,
					 f == MREC_DX ? "dx: value is not a valid host name"
						      : "syn: value is not a valid host name");
		views[*cnt].p = (const uint8_t *)v;
		views[*cnt].len = n;
		(*cnt)++;
		return DIME_OK;
	}
	case MREC_VER:
		/* DIME spec Part 4, "Version": only 1 exists; anything else is an error. */
		if (mrec_parse_days(v, n) != 1)
			return mrec_fail(st, DIME_E_MALFORMED,
					 "ver: the only supported version is 1");
		st->seen_ver = 1;
		m->version = 1;
		return DIME_OK;
	case MREC_EXP: {
		uint32_t d = mrec_parse_days(v, n);

		if (d == 0)
			return mrec_fail(
			    st, DIME_E_MALFORMED,
			    "exp: value must be a whole number of days from 1 to 3650");
		if (!st->seen_exp)
			m->expiry_days = d;
		st->seen_exp = 1;
		return DIME_OK;
	}
	case MREC_POL: {
		int p = -1;

		for (size_t i = 0; i < sizeof(mrec_pol_names) / sizeof(mrec_pol_names[0]); i++)
			if (mrec_eq_nocase(v, n, mrec_pol_names[i]))
				p = (int)i;
		if (p < 0)
			return mrec_fail(st, DIME_E_MALFORMED,
					 "pol: value must be experimental, mixed or strict");
		if (!st->seen_pol)
			m->policy = (enum dime_mrec_policy)p;
		st->seen_pol = 1;
		return DIME_OK;
	}
	case MREC_SUB: {
		int s = -1;

		for (size_t i = 0; i < sizeof(mrec_sub_names) / sizeof(mrec_sub_names[0]); i++)
			if (mrec_eq_nocase(v, n, mrec_sub_names[i]))
				s = (int)i;
		/* WIRE.md: the reference's "relaxed" and the spec text's "loose" mean mixed. */
		if (mrec_eq_nocase(v, n, "relaxed") || mrec_eq_nocase(v, n, "loose"))
			s = DIME_SUB_MIXED;
		if (s < 0)
			return mrec_fail(
			    st, DIME_E_MALFORMED,
			    "sub: value must be explicit, mixed or strict (relaxed and "
			    "loose read as mixed)");
		if (!st->seen_sub)
			m->subdomain = (enum dime_mrec_subdomain)s;
		st->seen_sub = 1;
		return DIME_OK;
	}
	}
	return mrec_fail(st, DIME_E_MALFORMED, "internal: unknown field");
}

int
dime_mrec_parse(struct dime_mrec *m, const char **why, const char *txt, size_t txt_len)
{
	struct mrec_state st;
	size_t i = 0;
	int rc = DIME_OK;

	memset(m, 0, sizeof(*m));
	memset(&st, 0, sizeof(st));
	st.m = m;
	st.why = "";
	m->version = 1;
	m->expiry_days = MREC_EXP_DEFAULT;
	m->policy = DIME_POL_MIXED;
	m->subdomain = DIME_SUB_MIXED;
	if (txt_len > DIME_MREC_MAX_BYTES) {
		rc = mrec_fail(&st, DIME_E_LIMIT, "record: longer than 4096 bytes");
		goto out;
	}
	if (txt == NULL && txt_len > 0) {
		rc = mrec_fail(&st, DIME_E_INVALID, "record: NULL text");
		goto out;
	}
	while (i < txt_len) {
		const char *tok, *eq;
		size_t start, tok_len, name_len;
		int f = -1;

		if (mrec_is_sep(txt[i])) {
			i++;
			continue;
		}
		start = i;
		while (i < txt_len && !mrec_is_sep(txt[i]))
			i++;
		tok = txt + start;
		tok_len = i - start;
		/* Split at the first '=': a value may itself hold '=' (then it is invalid). */
		eq = memchr(tok, '=', tok_len);
		name_len = eq == NULL ? tok_len : (size_t)(eq - tok);
		for (size_t k = 0; k < sizeof(mrec_names) / sizeof(mrec_names[0]); k++)
			if (mrec_eq_nocase(tok, name_len, mrec_names[k].name))
				f = (int)mrec_names[k].f;
		if (f < 0)
			continue; /* DIME spec Part 4: unknown fields are ignored */
		if (eq == NULL || name_len + 1 == tok_len) {
			rc = mrec_fail(&st, DIME_E_MALFORMED, mrec_why_novalue[f]);
			goto out;
		}
		rc = mrec_field(&st, (enum mrec_field)f, eq + 1, tok_len - name_len - 1);
		if (rc != DIME_OK)
			goto out;
	}
	/* DIME spec Part 4, "Primary": the only required field. */
	if (m->n_poks == 0)
		rc = mrec_fail(&st, DIME_E_MALFORMED, "pok: at least one primary key is required");
out:
	if (rc != DIME_OK)
		memset(m, 0, sizeof(*m));
	if (why != NULL)
		*why = rc == DIME_OK ? "" : st.why;
	return rc;
}

static void
mrec_wr_str(struct dime_wr *w, const char *s)
{
	dime_wr_bytes(w, s, strlen(s));
}

/* " name=" then the unpadded base64 of in. */
static void
mrec_wr_b64(struct dime_wr *w, const char *name, const uint8_t *in, size_t in_len)
{
	char b[MREC_TLS_B64 + 1];
	size_t n = 0;

	if (dime_b64_encode(b, sizeof(b), &n, in, in_len, DIME_B64_NOPAD) != DIME_OK) {
		dime_wr_fail(w, DIME_E_INVALID);
		return;
	}
	mrec_wr_str(w, name);
	dime_wr_bytes(w, b, n);
}

/* Everything generate writes must parse back to the same struct. */
static int
mrec_valid_for_output(const struct dime_mrec *m)
{
	if (m->version != 1 || m->n_poks == 0 || m->n_poks > DIME_MREC_MAX_VALUES ||
	    m->n_tls > DIME_MREC_MAX_VALUES || m->n_dx > DIME_MREC_MAX_VALUES ||
	    m->n_syn > DIME_MREC_MAX_VALUES || m->expiry_days == 0 || m->expiry_days > MREC_EXP_MAX)
		return 0;
	if ((unsigned)m->policy > DIME_POL_STRICT || (unsigned)m->subdomain > DIME_SUB_STRICT)
		return 0;
	for (size_t i = 0; i < m->n_poks; i++)
		if (!dime_ed25519_pub_valid(m->poks[i]))
			return 0;
	for (size_t i = 0; i < m->n_dx; i++)
		if (m->dx[i].p == NULL ||
		    mrec_host_check((const char *)m->dx[i].p, m->dx[i].len) != MREC_HOST_OK)
			return 0;
	for (size_t i = 0; i < m->n_syn; i++)
		if (m->syn[i].p == NULL ||
		    mrec_host_check((const char *)m->syn[i].p, m->syn[i].len) != MREC_HOST_OK)
			return 0;
	return 1;
}

int
dime_mrec_generate(char *out, size_t out_cap, size_t *out_len, const struct dime_mrec *m)
{
	struct dime_wr w;
	size_t need = 0;
	int rc;

	*out_len = 0;
	if (out != NULL && out_cap > 0)
		out[0] = 0;
	if (!mrec_valid_for_output(m))
		return DIME_E_INVALID;
	/* Pass 1 counts, pass 2 writes: the canonical order is
	 * ver pok... tls... dx... syn... [exp] pol sub, short names, single spaces. */
	for (int pass = 0; pass < 2; pass++) {
		dime_wr_init(&w, pass == 0 ? NULL : (uint8_t *)out, pass == 0 ? 0 : out_cap);
		mrec_wr_str(&w, "ver=1");
		for (size_t i = 0; i < m->n_poks; i++)
			mrec_wr_b64(&w, " pok=", m->poks[i], DIME_ED25519_PUB_BYTES);
		for (size_t i = 0; i < m->n_tls; i++)
			mrec_wr_b64(&w, " tls=", m->tls[i], DIME_SIG_BYTES);
		for (size_t i = 0; i < m->n_dx; i++) {
			mrec_wr_str(&w, " dx=");
			dime_wr_bytes(&w, m->dx[i].p, m->dx[i].len);
		}
		for (size_t i = 0; i < m->n_syn; i++) {
			mrec_wr_str(&w, " syn=");
			dime_wr_bytes(&w, m->syn[i].p, m->syn[i].len);
		}
		if (m->expiry_days != MREC_EXP_DEFAULT) {
			char d[8];
			size_t k = sizeof(d);
			uint32_t v = m->expiry_days;

			do {
				d[--k] = (char)('0' + v % 10u);
				v /= 10u;
			} while (v > 0);
			mrec_wr_str(&w, " exp=");
			dime_wr_bytes(&w, d + k, sizeof(d) - k);
		}
		mrec_wr_str(&w, " pol=");
		mrec_wr_str(&w, mrec_pol_names[m->policy]);
		mrec_wr_str(&w, " sub=");
		mrec_wr_str(&w, mrec_sub_names[m->subdomain]);
		if (pass == 0) {
			if (w.err != DIME_OK)
				return w.err;
			need = w.off;
			if (out == NULL) {
				*out_len = need;
				return DIME_OK;
			}
			if (out_cap < need + 1)
				return DIME_E_NOSPACE;
		}
	}
	rc = w.err;
	if (rc != DIME_OK || w.off != need) {
		if (out_cap > 0)
			out[0] = 0;
		return rc != DIME_OK ? rc : DIME_E_INVALID;
	}
	out[need] = 0;
	*out_len = need;
	return DIME_OK;
}

int
dime_mrec_split(struct dime_view *parts, size_t cap, size_t *n, const char *rec, size_t rec_len)
{
	size_t start = 0, k = 0;
	int rc = DIME_OK;

	*n = 0;
	if (cap > 0)
		memset(parts, 0, cap * sizeof(*parts));
	/* DIME spec Part 4, "Text records": no field spans two strings, so every string but the
	 * last ends with a separator. Greedy: each string takes as many whole fields as fit. */
	while (start < rec_len) {
		size_t left = rec_len - start, take;

		if (left <= DIME_MREC_TXT_STRING_MAX) {
			take = left;
		} else {
			take = DIME_MREC_TXT_STRING_MAX;
			while (take > 0 && !mrec_is_sep(rec[start + take - 1]))
				take--;
			if (take == 0) {
				rc = DIME_E_LIMIT; /* one field (with its separator) over 255 */
				goto out;
			}
		}
		if (k >= cap) {
			rc = DIME_E_NOSPACE;
			goto out;
		}
		parts[k].p = (const uint8_t *)rec + start;
		parts[k].len = take;
		k++;
		start += take;
	}
	*n = k;
out:
	if (rc != DIME_OK && cap > 0)
		memset(parts, 0, cap * sizeof(*parts));
	return rc;
}

int
dime_mrec_tls_sign(const struct dime_ks *ks, uint8_t sig[DIME_SIG_BYTES], uint32_t key_id,
		   const uint8_t *der, size_t der_len)
{
	int rc;

	memset(sig, 0, DIME_SIG_BYTES);
	if (der == NULL || der_len == 0)
		return DIME_E_INVALID;
	/* DIME spec Part 4, "TLS": the signature is over the DER certificate itself. */
	rc = dime_ks_sign(ks, sig, key_id, der, der_len);
	if (rc != DIME_OK)
		memset(sig, 0, DIME_SIG_BYTES);
	return rc;
}

int
dime_mrec_tls_check(const struct dime_mrec *m, const uint8_t *der, size_t der_len)
{
	uint8_t h[DIME_SHA512_BYTES];
	size_t n_tls = m->n_tls, n_poks = m->n_poks;
	int rc = DIME_E_BADSIG;

	if (der == NULL || der_len == 0 || n_tls == 0 || n_poks == 0)
		return DIME_E_BADSIG;
	if (n_tls > DIME_MREC_MAX_VALUES)
		n_tls = DIME_MREC_MAX_VALUES;
	if (n_poks > DIME_MREC_MAX_VALUES)
		n_poks = DIME_MREC_MAX_VALUES;
	/* WIRE.md: the spec's form (over the DER) or the reference genrec's (over SHA-512). */
	dime_sha512(h, der, der_len);
	for (size_t t = 0; t < n_tls && rc != DIME_OK; t++)
		for (size_t p = 0; p < n_poks && rc != DIME_OK; p++)
			if (dime_ed25519_verify(m->tls[t], m->poks[p], der, der_len) == DIME_OK ||
			    dime_ed25519_verify(m->tls[t], m->poks[p], h, sizeof(h)) == DIME_OK)
				rc = DIME_OK;
	return rc;
}

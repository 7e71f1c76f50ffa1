/* DMTP replies as a client reads them (spec Part 7 "Reply codes", RFC 5321 §4.2's multi-line
 * form, which DMTP keeps): one line at a time, so a reader can stop at the final line. */
#include "dime/dmtpc.h"

#include <string.h>

void
dime_dmtpc_reply_init(struct dime_dmtpc_reply *r, char *text, size_t text_cap)
{
	memset(r, 0, sizeof(*r));
	r->text = text;
	r->text_cap = text_cap;
	if (text_cap > 0)
		text[0] = '\0';
}

static int
dmtpc_fail(struct dime_dmtpc_reply *r, const char **why, const char *reason, int rc)
{
	if (why != NULL)
		*why = reason;
	r->done = 1; /* unusable until init */
	r->code = 0;
	r->text_len = 0;
	if (r->text_cap > 0)
		r->text[0] = '\0';
	return rc;
}

int
dime_dmtpc_reply_line(struct dime_dmtpc_reply *r, const char **why, const char *line, size_t len)
{
	size_t end, tl;
	int code, last;

	if (why != NULL)
		*why = "";
	if (r->done)
		return dmtpc_fail(r, why, "reply already complete", DIME_E_INVALID);
	if (len > DIME_DMTPC_LINE_MAX)
		return dmtpc_fail(r, why, "reply line longer than 512 octets", DIME_E_LIMIT);
	if (len == 0 || line[len - 1] != '\n')
		return dmtpc_fail(r, why, "reply line without LF", DIME_E_TRUNCATED);
	end = len - 1;
	if (end > 0 && line[end - 1] == '\r')
		end--;
	for (size_t i = 0; i < end; i++) {
		unsigned char ch = (unsigned char)line[i];

		if (ch == 0 || ch == '\r' || ch == '\n' || ch > 0x7e)
			return dmtpc_fail(r, why, "control or non-ASCII octet in a reply",
					  DIME_E_MALFORMED);
	}
	if (end < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
	    line[2] < '0' || line[2] > '9')
		return dmtpc_fail(r, why, "reply does not start with a 2xx-5xx code",
				  DIME_E_MALFORMED);
	if (end > 3 && line[3] != ' ' && line[3] != '-')
		return dmtpc_fail(r, why, "reply code not followed by a space or '-'",
				  DIME_E_MALFORMED);
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (r->n_lines > 0 && code != r->code)
		return dmtpc_fail(r, why, "a multi-line reply changed its code", DIME_E_MALFORMED);
	last = end == 3 || line[3] == ' ';
	tl = end > 4 ? end - 4 : 0;
	/* text_len + '\n' + tl + NUL must fit */
	if ((r->n_lines > 0 ? 1 : 0) + tl >= r->text_cap - r->text_len)
		return dmtpc_fail(r, why, "reply longer than the buffer", DIME_E_NOSPACE);
	if (r->n_lines > 0)
		r->text[r->text_len++] = '\n';
	memcpy(r->text + r->text_len, line + 4, tl);
	r->text_len += tl;
	r->text[r->text_len] = '\0';
	r->code = code;
	r->n_lines++;
	if (!last)
		return DIME_E_AGAIN;
	r->done = 1;
	return DIME_OK;
}

int
dime_dmtpc_reply_value(char *out, size_t out_cap, const char *text, const char *name)
{
	size_t nl = strlen(name);
	const char *p = text;

	if (out_cap > 0)
		out[0] = '\0';
	while ((p = strstr(p, name)) != NULL) {
		/* a whole token: at the start or after a space or newline */
		if (p == text || p[-1] == ' ' || p[-1] == '\n') {
			const char *v = p + nl;
			size_t vl = strcspn(v, " \n");

			if (vl >= out_cap)
				return DIME_E_NOSPACE;
			memcpy(out, v, vl);
			out[vl] = '\0';
			return DIME_OK;
		}
		p += nl;
	}
	return DIME_E_NOTFOUND;
}

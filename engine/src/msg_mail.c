/* Mail in and out of D/MIME: an RFC 5322 message split into chunks 33, 34 and the parts
 * (dime_mime_split) and wrapped; an opened message joined back byte for byte, or, when chunk 34
 * is not our lossless encoding (a message from another implementation), rendered as mail. */

#include <stdlib.h>
#include <string.h>

#include "dime/codec.h"
#include "dime/mime.h"
#include "dime/msg.h"
#include "msg_int.h"

int
dime_msg_wrap_mail(const struct dime_ks *ks, uint8_t **out, size_t *out_len, const char **why,
		   const struct dime_msg_parties *p, uint32_t author_key, const uint8_t *mail,
		   size_t mail_len, const struct dime_msg_wrap_opts *opts)
{
	return msg_wrap_mail_op(NULL, ks, out, out_len, why, p, author_key, mail, mail_len, opts);
}

/* pre: as msg_wrap_op. */
int
msg_wrap_mail_op(const struct msg_wrap_pre *pre, const struct dime_ks *ks, uint8_t **out,
		 size_t *out_len, const char **why, const struct dime_msg_parties *p,
		 uint32_t author_key, const uint8_t *mail, size_t mail_len,
		 const struct dime_msg_wrap_opts *opts)
{
	struct dime_mime_content mc;
	struct dime_mime_part *mparts = NULL;
	struct dime_msg_part *parts = NULL;
	struct dime_msg_content c;
	uint8_t *buf = NULL;
	size_t buf_len = 0, n_parts = 0;
	int rc;

	if (why != NULL)
		*why = "";
	if (out == NULL || out_len == NULL)
		return DIME_E_INVALID;
	*out = NULL;
	*out_len = 0;
	rc = dime_mime_split_size(&buf_len, &n_parts, mail, mail_len);
	if (rc != DIME_OK) {
		if (why != NULL)
			*why = "the message is larger than D/MIME carries";
		return rc;
	}
	buf = malloc(buf_len > 0 ? buf_len : 1);
	mparts = calloc(n_parts > 0 ? n_parts : 1, sizeof(*mparts));
	parts = calloc(n_parts > 0 ? n_parts : 1, sizeof(*parts));
	if (buf == NULL || mparts == NULL || parts == NULL) {
		rc = DIME_E_NOMEM;
		if (why != NULL)
			*why = "out of memory";
		goto out;
	}
	rc = dime_mime_split(&mc, buf, buf_len, mparts, n_parts, mail, mail_len);
	if (rc != DIME_OK) {
		if (why != NULL)
			*why = "the message cannot be split into chunks";
		goto out;
	}
	for (size_t i = 0; i < mc.n_parts; i++) {
		parts[i].type = mc.parts[i].type;
		parts[i].data = mc.parts[i].data;
	}
	c.common = mc.common;
	c.headers = mc.headers;
	c.parts = parts;
	c.n_parts = mc.n_parts;
	rc = msg_wrap_op(pre, ks, out, out_len, why, p, author_key, &c, opts);
out:
	if (buf != NULL)
		dime_wipe(buf, buf_len); /* chunk 33 and 34: plaintext headers */
	free(buf);
	free(mparts);
	free(parts);
	return rc;
}

/* Does a part start with its own MIME header block? */
static int
mail_has_headers(const struct dime_view *v)
{
	static const char pfx[] = "content-";

	if (v->len < sizeof(pfx) - 1)
		return 0;
	for (size_t i = 0; i < sizeof(pfx) - 1; i++) {
		uint8_t ch = v->p[i];

		if ((ch >= 'A' && ch <= 'Z' ? (uint8_t)(ch + 32) : ch) != (uint8_t)pfx[i])
			return 0;
	}
	return 1;
}

/* Chunks 33 and 34 as the header block, then the single display part as the body, or every part
 * in a multipart/mixed; a part without its own MIME headers gets a Content-Type by its chunk
 * type. CRLF line ends, as the reference writes its chunks. */
static int
mail_render(uint8_t **out, size_t *out_len, const struct dime_msg_opened *o)
{
	static const char ct_attach[] = "Content-Type: application/octet-stream\r\n"
					"Content-Disposition: attachment\r\n\r\n";
	static const char ct_text[] = "Content-Type: text/plain\r\n\r\n";
	static const char mixed[] =
	    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"";
	char boundary[5 + 24 + 1];
	uint8_t rnd[12], *b;
	size_t cap = o->common.len + o->headers.len + 256, n = 0, bl;
	int single = o->n_parts == 1 && o->parts[0].type != DIME_CHUNK_ATTACH;

	for (size_t i = 0; i < o->n_parts; i++)
		if (dime_size_add(&cap, cap, o->parts[i].data.len + 160) != DIME_OK)
			return DIME_E_LIMIT;
	if ((b = malloc(cap)) == NULL)
		return DIME_E_NOMEM;
	dime_random(rnd, sizeof(rnd));
	memcpy(boundary, "dime-", 5);
	if (dime_hex_encode(boundary + 5, sizeof(boundary) - 5, rnd, sizeof(rnd)) != DIME_OK) {
		free(b);
		return DIME_E_INVALID;
	}
	bl = strlen(boundary);
#define MAIL_PUT(p, l)                                                                             \
	do {                                                                                       \
		memcpy(b + n, (p), (l));                                                           \
		n += (l);                                                                          \
	} while (0)
	MAIL_PUT(o->common.p, o->common.len);
	MAIL_PUT(o->headers.p, o->headers.len);
	if (!single && o->n_parts > 0) {
		MAIL_PUT(mixed, sizeof(mixed) - 1);
		MAIL_PUT(boundary, bl);
		MAIL_PUT("\"\r\n", 3);
	}
	MAIL_PUT("\r\n", 2);
	for (size_t i = 0; i < o->n_parts; i++) {
		const struct dime_view *d = &o->parts[i].data;

		if (!single) {
			MAIL_PUT("--", 2);
			MAIL_PUT(boundary, bl);
			MAIL_PUT("\r\n", 2);
			if (!mail_has_headers(d)) {
				if (o->parts[i].type == DIME_CHUNK_ATTACH)
					MAIL_PUT(ct_attach, sizeof(ct_attach) - 1);
				else
					MAIL_PUT(ct_text, sizeof(ct_text) - 1);
			}
		}
		MAIL_PUT(d->p, d->len);
		if (!single)
			MAIL_PUT("\r\n", 2);
	}
	if (!single && o->n_parts > 0) {
		MAIL_PUT("--", 2);
		MAIL_PUT(boundary, bl);
		MAIL_PUT("--\r\n", 4);
	}
#undef MAIL_PUT
	*out = b;
	*out_len = n;
	return DIME_OK;
}

int
dime_msg_opened_mail(uint8_t **out, size_t *out_len, const struct dime_msg_opened *o)
{
	struct dime_mime_part *parts;
	size_t need = 0;
	int rc;

	if (out == NULL || out_len == NULL || o == NULL)
		return DIME_E_INVALID;
	*out = NULL;
	*out_len = 0;
	if ((parts = calloc(o->n_parts > 0 ? o->n_parts : 1, sizeof(*parts))) == NULL)
		return DIME_E_NOMEM;
	for (size_t i = 0; i < o->n_parts; i++) {
		/* multipart display and attachment types travel as ordinary content */
		parts[i].type = o->parts[i].type >= DIME_CHUNK_ATTACH_MULTI ? DIME_MIME_ATTACH
									    : DIME_MIME_DISPLAY;
		parts[i].data = o->parts[i].data;
	}
	rc = dime_mime_join(NULL, 0, &need, o->common, o->headers, parts, o->n_parts);
	if (rc == DIME_E_MALFORMED) {
		free(parts);
		return mail_render(out, out_len, o);
	}
	if (rc == DIME_OK && (*out = malloc(need > 0 ? need : 1)) == NULL)
		rc = DIME_E_NOMEM;
	if (rc == DIME_OK)
		rc = dime_mime_join(*out, need, out_len, o->common, o->headers, parts, o->n_parts);
	if (rc != DIME_OK) {
		if (*out != NULL)
			dime_wipe(*out, need);
		free(*out);
		*out = NULL;
		*out_len = 0;
	}
	free(parts);
	return rc;
}

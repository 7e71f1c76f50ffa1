/* dime_mime_split / dime_mime_join: a table of hand-made messages (line ends, 8-bit and NUL
 * bytes, missing/repeated/folded headers, broken and nested MIME, empty and absent bodies),
 * each checked for the exact round trip and the chunk classification; every strict prefix and
 * random mutations round-trip; join rejects what is not its encoding; guard-page reads. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "dime/mime.h"
#include "tlib.h"

struct mime_case {
	const char *name;
	const char *msg;
	size_t len;	      /* 0: strlen(msg) */
	size_t n_display;     /* want */
	size_t n_attach;      /* want */
	const char *common;   /* want chunk 33, or NULL: not checked */
	const char *display0; /* the first display starts with this, or NULL */
	const char *attach0;  /* the first attachment starts with this, or NULL */
};

#define ALL6                                                                                       \
	"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nTo: bob@beta.example\r\n"                         \
	"CC: carol@beta.example\r\nFrom: alice@alpha.example\r\n"                                  \
	"Organization: Alpha\r\nSubject: hello\r\n"

static const char nested_msg[] =
    "From: a@b.example\r\nTo: c@d.example\r\nSubject: nested\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
    "This is a multi-part message in MIME format.\r\n"
    "--outer\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n"
    "--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain body\r\n"
    "--inner\r\nContent-Type: text/html\r\n\r\n<p>html body</p>\r\n"
    "--inner--\r\n"
    "--outer\r\nContent-Type: image/png; name=x.png\r\nContent-Transfer-Encoding: base64\r\n"
    "\r\niVBORw0KGgo=\r\n"
    "--outer--\r\nepilogue text\r\n";

static const struct mime_case cases[] = {
    {"crlf all six", ALL6 "Message-ID: <1@a>\r\n\r\nbody\r\n", 0, 1, 0, ALL6, "body\r\n", NULL},
    {"lf only", "Date: d\nTo: t\nCC: c\nFrom: f\nOrganization: o\nSubject: s\nX-A: 1\n\nbody\n", 0,
     1, 0, "Date: d\r\nTo: t\r\nCC: c\r\nFrom: f\r\nOrganization: o\r\nSubject: s\r\n", "body\n",
     NULL},
    {"mixed line ends", "Subject: s\r\nFrom: f\nTo: t\r\n\nline1\r\nline2\nline3\r", 0, 1, 0,
     "To: t\r\nFrom: f\r\nSubject: s\r\n", "line1\r\nline2\n", NULL},
    {"8bit and nul", "Subject: caf\xc3\xa9 \x01 x\r\nFrom: \xff\r\n\r\nbin\x00\x01\xff\r\n", 39, 1,
     0, "From: \xff\r\nSubject: caf\xc3\xa9 ? x\r\n", "bin", NULL},
    {"nul in header name", "Sub\x00ject: x\r\nTo: t\r\n\r\nb", 23, 1, 0, "To: t\r\n", "b", NULL},
    {"no date two subjects", "Subject: first\r\nSubject: second\r\nTo: t\r\n\r\nb\r\n", 0, 1, 0,
     "To: t\r\nSubject: first\r\n", NULL, NULL},
    {"folded", "To: a@x.example,\r\n  b@x.example,\n\tc@x.example\r\nSubject: a\r\n b\r\n\r\nb", 0,
     1, 0, "To: a@x.example,  b@x.example,\tc@x.example\r\nSubject: a b\r\n", NULL, NULL},
    {"odd spelling", "subject:x  \r\nCc:   c \r\nFROM : f\r\nDate:\r\n\r\nb", 0, 1, 0,
     "Date: \r\nCC: c\r\nSubject: x\r\n", NULL, NULL},
    {"mixed attachment",
     "From: f\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
     "--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
     "--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
     "JVBERi0=\r\n--b1--\r\n",
     0, 1, 1, "From: f\r\n", "Content-Type: text/plain\r\n\r\nhi", "Content-Type: application/pdf"},
    {"nested alternative", nested_msg, 0, 2, 1,
     "To: c@d.example\r\nFrom: a@b.example\r\n"
     "Subject: nested\r\n",
     "Content-Type: text/plain; charset=utf-8\r\n\r\nplain body", "Content-Type: image/png"},
    {"boundary never appears",
     "Content-Type: multipart/mixed; boundary=zzz\r\n\r\n--other\r\nhello\r\n", 0, 1, 0, "",
     "--other\r\nhello\r\n", NULL},
    {"unterminated multipart",
     "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\n"
     "Content-Type: image/gif\r\n\r\nGIF89a",
     0, 1, 1, NULL, "\r\none", "Content-Type: image/gif\r\n\r\nGIF89a"},
    {"parts without content-type",
     "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nX: y\r\n\r\none\r\n--b\r\n\r\n"
     "two\r\n--b--",
     0, 2, 0, NULL, "X: y\r\n\r\none", NULL},
    {"multipart without boundary", "Content-Type: multipart/mixed\r\n\r\ntext\r\n", 0, 1, 0, NULL,
     "text\r\n", NULL},
    {"empty body", "Subject: s\r\n\r\n", 0, 0, 0, "Subject: s\r\n", NULL, NULL},
    {"no separator", "Subject: s\r\nFrom: f\r\n", 0, 0, 0, "From: f\r\nSubject: s\r\n", NULL, NULL},
    {"no separator no eol", "Subject: s", 0, 0, 0, "Subject: s\r\n", NULL, NULL},
    {"empty message", "", 0, 0, 0, "", NULL, NULL},
    {"only blank line", "\r\n", 0, 0, 0, "", NULL, NULL},
    {"body only", "\nhello", 0, 1, 0, "", "hello", NULL},
    {"preamble epilogue",
     "Content-Type: multipart/mixed; boundary=\"q q\"\r\n\r\npreamble\r\n--q q\r\n\r\nA\r\n"
     "--q q--  trailing\r\nepilogue\r\n--q q\r\nnot a part\r\n",
     0, 1, 0, NULL, "\r\nA", NULL},
    {"top-level pdf", "Content-Type: application/pdf\r\n\r\n%PDF-1.4", 0, 0, 1, NULL, NULL,
     "%PDF-1.4"},
    {"text as attachment",
     "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n"
     "Content-Disposition: attachment; filename=a.txt\r\n\r\nfile\r\n--b--\r\n",
     0, 0, 1, NULL, NULL, "Content-Type: text/plain\r\nContent-Disposition: attachment"},
    {"digest",
     "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: m1\r\n\r\nx\r\n"
     "--d\r\nContent-Type: text/plain\r\n\r\nnote\r\n--d--\r\n",
     0, 1, 1, NULL, "Content-Type: text/plain", "\r\nSubject: m1"},
    {"mbox from line", "From alice@example Mon Jan  1 00:00:00 2024\nFrom: a@x\nSubject: s\n\nb\n",
     0, 1, 0, "From: a@x\r\nSubject: s\r\n", "b\n", NULL},
    {"boundary prefix",
     "Content-Type: multipart/mixed; boundary=abc\r\n\r\n--abc\r\n"
     "Content-Type: multipart/alternative; boundary=abcdef\r\n\r\n--abcdef\r\n\r\nin\r\n"
     "--abcdef--\r\n--abc\r\nContent-Type: audio/x\r\n\r\nau\r\n--abc--\r\n",
     0, 1, 1, NULL, "\r\nin", "Content-Type: audio/x"},
    {"outer closes inner",
     "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
     "Content-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\r\nin\r\n"
     "--o\r\nContent-Type: video/x\r\n\r\nv\r\n--o--",
     0, 1, 1, NULL, "\r\nin", "Content-Type: video/x"},
    {"empty subject", "Subject:\r\nTo: \r\n\r\nb", 0, 1, 0, "To: \r\nSubject: \r\n", NULL, NULL},
    {"empty parts", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b\n--b\r\n\n--b--",
     0, 0, 0, NULL, NULL, NULL},
    {"padding and case",
     "CONTENT-TYPE: MULTIPART/Mixed;\r\n BOUNDARY=\"x\\\"y\"; charset=a\r\n\r\n--x\"y \t\r\n"
     "content-type: TEXT/html\r\n\r\n<b>\r\n--x\"y--\r\n",
     0, 1, 0, NULL, "content-type: TEXT/html", NULL},
    {"part headers end at delimiter",
     "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: image/x\r\n"
     "--b\r\nContent-Type: text/plain\r\n\r\nt\r\n--b--\r\n",
     0, 1, 1, NULL, "Content-Type: text/plain", "Content-Type: image/x"},
    {"lone cr in value", "Subject: a\rb\r\n\r\nx", 0, 1, 0, "Subject: a?b\r\n", "x", NULL},
    {"continuation first", " folded start\r\nSubject: s\r\n\r\nb", 0, 1, 0, "Subject: s\r\n", "b",
     NULL},
    {"whitespace-only fold", "Subject: a \r\n \r\nTo: t\r\n\r\nb", 0, 1, 0,
     "To: t\r\nSubject: a\r\n", "b", NULL},
};

static void *
xmalloc(size_t n)
{
	void *p = malloc(n > 0 ? n : 1);

	if (p == NULL)
		abort();
	return p;
}

/* Split (input at a page end), check the views and the size contract, join back exactly;
 * on success fills *c (borrowing *buf_out and *parts_out, which the caller frees). */
static int
rt_check(const char *name, const uint8_t *msg, size_t len, struct dime_mime_content *c,
	 uint8_t **buf_out, struct dime_mime_part **parts_out)
{
	const uint8_t *in = t_at_page_end(0, msg, len);
	size_t buf_len = 99, n_parts = 99, got = 99, need;
	uint8_t *buf, *back;
	struct dime_mime_part *parts;
	int rc, ok = 1;

	rc = dime_mime_split_size(&buf_len, &n_parts, in, len);
	if (rc != DIME_OK) {
		t_fail("%s: split_size got %d", name, rc);
		return 0;
	}
	buf = xmalloc(buf_len);
	parts = xmalloc(n_parts * sizeof(*parts) + 1);
	if (buf_len > 0) {
		rc = dime_mime_split(c, buf, buf_len - 1, parts, n_parts, in, len);
		T_CHECK(rc == DIME_E_NOSPACE && c->headers.len == 0, "%s: buf-1: got %d", name, rc);
	}
	if (n_parts > 0) {
		rc = dime_mime_split(c, buf, buf_len, parts, n_parts - 1, in, len);
		T_CHECK(rc == DIME_E_NOSPACE, "%s: parts-1: got %d", name, rc);
	}
	rc = dime_mime_split(c, buf, buf_len, parts, n_parts, in, len);
	if (rc != DIME_OK) {
		t_fail("%s: split got %d", name, rc);
		free(buf);
		free(parts);
		return 0;
	}
	T_CHECK(c->headers.len + c->common.len == buf_len && c->n_parts == n_parts &&
		    c->n_display + c->n_attach == n_parts && c->headers.len >= 4,
		"%s: sizes %zu+%zu vs %zu, parts %zu vs %zu", name, c->headers.len, c->common.len,
		buf_len, c->n_parts, n_parts);
	for (size_t i = 0; i < c->n_parts; i++) {
		const struct dime_mime_part *p = &c->parts[i];

		T_CHECK(p->type == (i < c->n_display ? DIME_MIME_DISPLAY : DIME_MIME_ATTACH),
			"%s: part %zu type %u out of order", name, i, p->type);
		T_CHECK(p->data.len > 0 && p->data.p >= in && p->data.len <= len &&
			    (size_t)(p->data.p - in) <= len - p->data.len,
			"%s: part %zu escapes the input", name, i);
	}
	rc = dime_mime_join(NULL, 0, &need, c->common, c->headers, c->parts, c->n_parts);
	T_CHECK(rc == DIME_OK && need == len, "%s: join size got %d %zu, want %zu", name, rc, need,
		len);
	back = xmalloc(len);
	rc = dime_mime_join(back, len, &got, c->common, c->headers, c->parts, c->n_parts);
	if (rc != DIME_OK || got != len || (len > 0 && memcmp(back, msg, len) != 0)) {
		t_fail("%s: round trip: rc %d, got %zu bytes, want %zu", name, rc, got, len);
		ok = 0;
	}
	if (len > 0) {
		rc = dime_mime_join(back, len - 1, &got, c->common, c->headers, c->parts,
				    c->n_parts);
		T_CHECK(rc == DIME_E_NOSPACE && got == 0, "%s: join len-1: got %d", name, rc);
	}
	free(back);
	*buf_out = buf;
	*parts_out = parts;
	return ok;
}

static int
starts(struct dime_view v, const char *s)
{
	size_t n = strlen(s);

	return v.len >= n && memcmp(v.p, s, n) == 0;
}

static void
test_table(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct mime_case *t = &cases[i];
		size_t len = t->len != 0 ? t->len : strlen(t->msg);
		struct dime_mime_content c;
		uint8_t *buf;
		struct dime_mime_part *parts;

		if (!rt_check(t->name, (const uint8_t *)t->msg, len, &c, &buf, &parts))
			continue;
		T_CHECK(c.n_display == t->n_display && c.n_attach == t->n_attach,
			"%s: got %zu display %zu attach, want %zu %zu", t->name, c.n_display,
			c.n_attach, t->n_display, t->n_attach);
		if (t->common != NULL)
			T_CHECK(c.common.len == strlen(t->common) &&
				    memcmp(c.common.p, t->common, c.common.len) == 0,
				"%s: chunk 33 got \"%.*s\", want \"%s\"", t->name,
				(int)c.common.len, (const char *)c.common.p, t->common);
		if (t->display0 != NULL)
			T_CHECK(c.n_display > 0 && starts(c.parts[0].data, t->display0),
				"%s: display 0 got \"%.*s\", want \"%s...\"", t->name,
				c.n_display > 0 ? (int)c.parts[0].data.len : 0,
				c.n_display > 0 ? (const char *)c.parts[0].data.p : "",
				t->display0);
		if (t->attach0 != NULL)
			T_CHECK(c.n_attach > 0 && starts(c.parts[c.n_display].data, t->attach0),
				"%s: attachment 0 wrong", t->name);
		free(buf);
		free(parts);
	}
}

/* `levels` nested multiparts around one text part. Up to DIME_MIME_MAX_DEPTH (32) open
 * multiparts are scanned, so the text is a display part; one level more and the innermost
 * multipart that does not fit is carried whole as an attachment. */
static void
test_depth_one(int levels, size_t want_display, size_t want_attach)
{
	char msg[8192], name[32];
	size_t n = 0;
	struct dime_mime_content c;
	uint8_t *buf;
	struct dime_mime_part *parts;

	n += (size_t)snprintf(msg + n, sizeof(msg) - n,
			      "Content-Type: multipart/mixed; boundary=b0\r\n\r\n");
	for (int d = 1; d < levels; d++)
		n += (size_t)snprintf(
		    msg + n, sizeof(msg) - n,
		    "--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n", d - 1, d);
	n += (size_t)snprintf(msg + n, sizeof(msg) - n, "--b%d\r\n\r\ndeep text\r\n--b%d--\r\n",
			      levels - 1, levels - 1);
	for (int d = levels - 2; d >= 0; d--)
		n += (size_t)snprintf(msg + n, sizeof(msg) - n, "--b%d--\r\n", d);
	snprintf(name, sizeof(name), "depth %d", levels);
	if (!rt_check(name, (const uint8_t *)msg, n, &c, &buf, &parts))
		return;
	T_CHECK(c.n_display == want_display && c.n_attach == want_attach,
		"%s: got %zu/%zu, want %zu/%zu", name, c.n_display, c.n_attach, want_display,
		want_attach);
	free(buf);
	free(parts);
}

static void
test_depth(void)
{
	test_depth_one(1, 1, 0);
	test_depth_one((int)DIME_MIME_MAX_DEPTH, 1, 0);
	test_depth_one((int)DIME_MIME_MAX_DEPTH + 1, 0, 1);
	test_depth_one(40, 0, 1);
}

static void
test_prefixes(void)
{
	const char *msgs[] = {nested_msg, cases[0].msg, cases[10].msg, cases[27].msg};
	char name[64];

	for (size_t m = 0; m < sizeof(msgs) / sizeof(msgs[0]); m++) {
		size_t len = strlen(msgs[m]);

		for (size_t k = 0; k < len; k++) {
			struct dime_mime_content c;
			uint8_t *buf;
			struct dime_mime_part *parts;

			snprintf(name, sizeof(name), "msg %zu prefix %zu", m, k);
			if (rt_check(name, (const uint8_t *)msgs[m], k, &c, &buf, &parts)) {
				free(buf);
				free(parts);
			}
		}
	}
}

/* Random mutations biased toward the bytes the scanner cares about. */
static void
test_mutations(void)
{
	static const uint8_t hot[] = {'-', '\r', '\n', ':', ' ', '\t', '"', ';', '=', 0, 0xff};
	size_t base_len = strlen(nested_msg);
	uint8_t *m = xmalloc(base_len + 64);
	char name[64];

	for (int it = 0; it < 3000 && t_failures == 0; it++) {
		size_t len = base_len, edits = 1 + randombytes_uniform(6);
		struct dime_mime_content c;
		uint8_t *buf;
		struct dime_mime_part *parts;

		memcpy(m, nested_msg, base_len);
		for (size_t e = 0; e < edits; e++) {
			size_t at = randombytes_uniform((uint32_t)len);
			uint32_t how = randombytes_uniform(4);

			if (how == 0)
				m[at] = hot[randombytes_uniform(sizeof(hot))];
			else if (how == 1)
				m[at] = (uint8_t)randombytes_uniform(256);
			else if (how == 2 && len > 1) { /* delete */
				memmove(m + at, m + at + 1, len - at - 1);
				len--;
			} else if (len < base_len + 60) { /* insert */
				memmove(m + at + 1, m + at, len - at);
				m[at] = hot[randombytes_uniform(sizeof(hot))];
				len++;
			}
		}
		snprintf(name, sizeof(name), "mutation %d", it);
		if (rt_check(name, m, len, &c, &buf, &parts)) {
			free(buf);
			free(parts);
		}
	}
	free(m);
}

/* Join is a parser of chunk 33/34: it rejects what split never writes. */
static void
test_join_rejects(void)
{
	const uint8_t *msg = (const uint8_t *)nested_msg;
	size_t len = strlen(nested_msg), got;
	struct dime_mime_content c;
	uint8_t *buf, *mut, *out = xmalloc(len + 4096);
	struct dime_mime_part *parts, swapped[8];
	struct dime_view h;
	int rc;

	if (!rt_check("rejects base", msg, len, &c, &buf, &parts))
		return;
	mut = xmalloc(c.headers.len + 16);
	/* Message order (display, display, attach -> attach first) joins the same. */
	swapped[0] = c.parts[2];
	swapped[1] = c.parts[0];
	swapped[2] = c.parts[1];
	rc = dime_mime_join(out, len, &got, c.common, c.headers, swapped, 3);
	T_CHECK(rc == DIME_OK && got == len && memcmp(out, msg, len) == 0, "reordered: got %d", rc);
	/* A part left over, a part missing, a foreign type. */
	rc = dime_mime_join(out, len + 4096, &got, c.common, c.headers, c.parts, 2);
	T_CHECK(rc == DIME_E_MALFORMED && got == 0, "missing part: got %d", rc);
	swapped[3] = c.parts[0];
	rc = dime_mime_join(out, len + 4096, &got, c.common, c.headers, swapped, 4);
	T_CHECK(rc == DIME_E_MALFORMED, "extra part: got %d", rc);
	swapped[0].type = 65;
	rc = dime_mime_join(out, len + 4096, &got, c.common, c.headers, swapped, 3);
	T_CHECK(rc == DIME_E_MALFORMED, "foreign part type: got %d", rc);
	/* Chunk 33 without the lines chunk 34 names, or not in the reference form. */
	rc = dime_mime_join(out, len + 4096, &got, (struct dime_view){NULL, 0}, c.headers, c.parts,
			    3);
	T_CHECK(rc == DIME_E_MALFORMED, "no chunk 33: got %d", rc);
	rc = dime_mime_join(out, len + 4096, &got,
			    (struct dime_view){(const uint8_t *)"Subject: x\r\nTo: y\r\n", 19},
			    c.headers, c.parts, 3);
	T_CHECK(rc == DIME_E_MALFORMED, "chunk 33 out of order: got %d", rc);
	rc = dime_mime_join(out, len + 4096, &got,
			    (struct dime_view){(const uint8_t *)"To: y\r\nSubject: x", 17},
			    c.headers, c.parts, 3);
	T_CHECK(rc == DIME_E_MALFORMED, "chunk 33 without CRLF: got %d", rc);
	/* Strict prefixes of chunk 34: rejected (a record cut, or a part left over). */
	for (size_t k = 0; k < c.headers.len; k++) {
		const uint8_t *p = t_at_page_end(1, c.headers.p, k);

		rc = dime_mime_join(out, len + 4096, &got, c.common, (struct dime_view){p, k},
				    c.parts, 3);
		/* Cut right after a record once every part is placed: a shorter message. */
		T_CHECK(rc == DIME_E_MALFORMED ||
			    (rc == DIME_OK && got < len && memcmp(out, msg, got) == 0),
			"chunk 34 prefix %zu: got %d", k, rc);
	}
	/* Foreign chunk 34 (plain header text) and a bad op. */
	h = (struct dime_view){(const uint8_t *)"X-A: b\r\n", 8};
	rc = dime_mime_join(out, len + 4096, &got, c.common, h, NULL, 0);
	T_CHECK(rc == DIME_E_MALFORMED, "foreign chunk 34: got %d", rc);
	memcpy(mut, c.headers.p, c.headers.len);
	mut[c.headers.len] = 9;
	rc = dime_mime_join(out, len + 4096, &got, c.common,
			    (struct dime_view){mut, c.headers.len + 1}, c.parts, 3);
	T_CHECK(rc == DIME_E_MALFORMED, "unknown op: got %d", rc);
	/* Two adjacent literals, a zero-length literal, a non-minimal varint. */
	{
		static const uint8_t two[] = {0, 'D', 'M', 1, 1, 1, 'a', 1, 1, 'b'};
		static const uint8_t zero[] = {0, 'D', 'M', 1, 1, 0};
		static const uint8_t wide[] = {0, 'D', 'M', 1, 1, 0x81, 0x00, 'a'};
		static const uint8_t one[] = {0, 'D', 'M', 1, 1, 2, 'a', 'b'};

		rc = dime_mime_join(out, 16, &got, (struct dime_view){NULL, 0},
				    (struct dime_view){two, sizeof(two)}, NULL, 0);
		T_CHECK(rc == DIME_E_MALFORMED, "adjacent literals: got %d", rc);
		rc = dime_mime_join(out, 16, &got, (struct dime_view){NULL, 0},
				    (struct dime_view){zero, sizeof(zero)}, NULL, 0);
		T_CHECK(rc == DIME_E_MALFORMED, "empty literal: got %d", rc);
		rc = dime_mime_join(out, 16, &got, (struct dime_view){NULL, 0},
				    (struct dime_view){wide, sizeof(wide)}, NULL, 0);
		T_CHECK(rc == DIME_E_MALFORMED, "non-minimal varint: got %d", rc);
		rc = dime_mime_join(out, 16, &got, (struct dime_view){NULL, 0},
				    (struct dime_view){one, sizeof(one)}, NULL, 0);
		T_CHECK(rc == DIME_OK && got == 2 && memcmp(out, "ab", 2) == 0,
			"literal only: got %d", rc);
	}
	/* Common-header records: unknown line, reserved bit, used twice, canonical prefix spelled
	 * out, a fold not before whitespace. */
	{
		static const struct dime_view c33 = {(const uint8_t *)"Subject: a b\r\n", 14};
		static const uint8_t ok[] = {0, 'D', 'M', 1, 4, 5, 1, 2, 'x', 'y'};
		static const uint8_t fold[] = {0, 'D', 'M', 1, 4, 0x45, 1, 2};
		static const uint8_t badfold[] = {0, 'D', 'M', 1, 4, 0x45, 1, 4};
		static const uint8_t line6[] = {0, 'D', 'M', 1, 4, 6};
		static const uint8_t resv[] = {0, 'D', 'M', 1, 4, 0x85};
		static const uint8_t twice[] = {0, 'D', 'M', 1, 4, 5, 4, 5};
		static const uint8_t spelled[] = {0,   'D', 'M', 1,   4,   0x0d, 9,   'S',
						  'u', 'b', 'j', 'e', 'c', 't',	 ':', ' '};

		rc =
		    dime_mime_join(out, 64, &got, c33, (struct dime_view){ok, sizeof(ok)}, NULL, 0);
		T_CHECK(rc == DIME_OK && got == 16 && memcmp(out, "Subject: a b\r\nxy", 16) == 0,
			"common record: got %d", rc);
		rc = dime_mime_join(out, 64, &got, c33, (struct dime_view){fold, sizeof(fold)},
				    NULL, 0);
		T_CHECK(rc == DIME_OK && got == 16 && memcmp(out, "Subject: a\r\n b\r\n", 16) == 0,
			"folded record: got %d %.*s", rc, (int)got, (const char *)out);
		rc = dime_mime_join(out, 64, &got, c33,
				    (struct dime_view){badfold, sizeof(badfold)}, NULL, 0);
		T_CHECK(rc == DIME_E_MALFORMED, "fold before non-space: got %d", rc);
		rc = dime_mime_join(out, 64, &got, c33, (struct dime_view){line6, sizeof(line6)},
				    NULL, 0);
		T_CHECK(rc == DIME_E_MALFORMED, "line 6: got %d", rc);
		rc = dime_mime_join(out, 64, &got, c33, (struct dime_view){resv, sizeof(resv)},
				    NULL, 0);
		T_CHECK(rc == DIME_E_MALFORMED, "reserved bit: got %d", rc);
		rc = dime_mime_join(out, 64, &got, c33, (struct dime_view){twice, sizeof(twice)},
				    NULL, 0);
		T_CHECK(rc == DIME_E_MALFORMED, "line used twice: got %d", rc);
		rc = dime_mime_join(out, 64, &got, c33,
				    (struct dime_view){spelled, sizeof(spelled)}, NULL, 0);
		T_CHECK(rc == DIME_E_MALFORMED, "canonical prefix spelled out: got %d", rc);
	}
	free(mut);
	free(out);
	free(buf);
	free(parts);
}

int
main(void)
{
	t_init();
	test_table();
	test_depth();
	test_prefixes();
	test_mutations();
	test_join_rejects();
	return t_done("mime");
}

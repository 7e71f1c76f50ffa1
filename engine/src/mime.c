/* MIME <-> D/MIME content. Split is a one-pass structure scanner: it cuts the message into
 * chunk 33 lines, chunk 34 records (literal bytes, common-header references, part slots) and
 * display/attachment parts, decoding nothing, so any byte string round-trips. Join replays
 * the records. The encoding is docs/mime.md. */

#include <string.h>

#include "dime/mime.h"
#include "rd.h"
#include "wr.h"

/* Chunk 34 opens with NUL 'D' 'M' version: a header block never starts with NUL, so foreign
 * chunk 34 data (plain header text) is told apart. */
#define MIME_MAGIC_BYTES 4u
static const uint8_t mime_magic[MIME_MAGIC_BYTES] = {0x00, 'D', 'M', 0x01};

enum mime_op {
	MIME_OP_LIT = 1,     /* varint n (>= 1), n bytes */
	MIME_OP_DISPLAY = 2, /* the next display part */
	MIME_OP_ATTACH = 3,  /* the next attachment part */
	MIME_OP_COMMON = 4   /* mode byte, [prefix], [suffix], [folds]: a chunk 33 line */
};

/* COMMON mode byte: bits 0-2 the chunk 33 line, bit 3 explicit prefix, bits 4-5 the suffix,
 * bit 6 folds follow, bit 7 reserved (0). */
#define MIME_M_LINE	 0x07u
#define MIME_M_PREFIX	 0x08u
#define MIME_M_SFX_SHIFT 4
#define MIME_M_FOLDS	 0x40u
#define MIME_M_RESERVED	 0x80u
enum mime_sfx { MIME_SFX_CRLF = 0, MIME_SFX_LF = 1, MIME_SFX_EXPLICIT = 2, MIME_SFX_NONE = 3 };

#define MIME_N_COMMON	6u
#define MIME_VARINT_MAX 5u /* 35 bits cover DIME_MIME_MAX_BYTES */

/* reference-format.md §6.5: the chunk 33 labels, in their fixed order. */
static const struct {
	const char *name;
	size_t len;
} mime_common[MIME_N_COMMON] = {{"Date", 4},	      {"To", 2},     {"CC", 2}, {"From", 4},
				{"Organization", 12}, {"Subject", 7}};

enum mime_kind { MIME_KIND_DISPLAY, MIME_KIND_ATTACH, MIME_KIND_CONTAINER };

struct mime_frame {
	uint8_t bnd[DIME_MIME_BOUNDARY_MAX];
	size_t bnd_len;
	size_t body;	 /* where the multipart body starts */
	size_t n_delims; /* delimiter lines seen (open or close) */
	int closed;	 /* close delimiter seen: the rest is epilogue */
	int digest;	 /* multipart/digest: parts default to message/rfc822 */
};

/* One header block as scanned: where it ends, and the first Content-Type and
 * Content-Disposition fields. */
struct mime_hdrs {
	size_t end;   /* after the blank line, or where the block stopped */
	int has_body; /* a blank line ended it */
	size_t ct_s, ct_e, cd_s, cd_e;
	int have_ct, have_cd;
};

struct mime_split {
	const uint8_t *in;
	size_t len;
	struct dime_wr w;	      /* chunk 34, then chunk 33 */
	size_t lit_from;	      /* start of the literal not yet written */
	struct dime_mime_part *parts; /* NULL: count only */
	size_t parts_cap, n_display, n_attach;
	int err;
	size_t cf_s[MIME_N_COMMON], cf_e[MIME_N_COMMON]; /* first field of each common label */
	int cf_have[MIME_N_COMMON];
	struct mime_frame frames[DIME_MIME_MAX_DEPTH];
	size_t depth;
};

static int
mime_is_wsp(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* Whitespace around a field value: folds included. */
static int
mime_is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static uint8_t
mime_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + ('a' - 'A')) : c;
}

static int
mime_ieq(const uint8_t *p, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (mime_lower(p[i]) != mime_lower((uint8_t)s[i]))
			return 0;
	return 1;
}

/* The field [p, p+n) is named `name` (any case), colon right after it. */
static int
mime_field_is(const uint8_t *p, size_t n, const char *name, size_t name_len)
{
	return n > name_len && p[name_len] == ':' && mime_ieq(p, name, name_len);
}

static void
mime_wr_varint(struct dime_wr *w, size_t v)
{
	do {
		uint8_t b = (uint8_t)(v & 0x7fu);

		v >>= 7;
		if (v != 0)
			b |= 0x80u;
		dime_wr_u8(w, b);
	} while (v != 0);
}

/* ---- split ---- */

/* First byte after the line starting at p (after its LF, or the end). */
static size_t
mime_line_end(const struct mime_split *s, size_t p)
{
	const uint8_t *nl;

	if (p >= s->len)
		return s->len;
	nl = memchr(s->in + p, '\n', s->len - p);
	return nl == NULL ? s->len : (size_t)(nl - s->in) + 1;
}

static int
mime_is_blank(const struct mime_split *s, size_t p)
{
	return s->in[p] == '\n' || (s->in[p] == '\r' && s->len - p > 1 && s->in[p + 1] == '\n');
}

/* RFC 2046 §5.1.1: the line break before a delimiter belongs to it. Returns where that line
 * break starts (p itself when there is none). */
static size_t
mime_eol_before(const struct mime_split *s, size_t p)
{
	if (p > 0 && s->in[p - 1] == '\n') {
		p--;
		if (p > 0 && s->in[p - 1] == '\r')
			p--;
	}
	return p;
}

/* Is the line [p, le) a delimiter of an open multipart? Returns: 1 + the index of the
 * innermost one it delimits, or 0. *close: it is the close delimiter. "--" boundary, then
 * "--" (close, anything may follow) or only whitespace to the end of the line. */
static size_t
mime_delim(const struct mime_split *s, size_t p, size_t le, int *close)
{
	size_t n = le - p;

	*close = 0;
	if (n < 3 || s->in[p] != '-' || s->in[p + 1] != '-')
		return 0;
	for (size_t i = s->depth; i-- > 0;) {
		const struct mime_frame *f = &s->frames[i];
		size_t q;

		if (f->closed || f->bnd_len > n - 2 ||
		    memcmp(s->in + p + 2, f->bnd, f->bnd_len) != 0)
			continue;
		q = p + 2 + f->bnd_len;
		if (le - q >= 2 && s->in[q] == '-' && s->in[q + 1] == '-') {
			*close = 1;
			return i + 1;
		}
		while (q < le && mime_is_space(s->in[q]))
			q++;
		if (q == le)
			return i + 1;
	}
	return 0;
}

/* Write the pending literal up to `to`. Literals are never adjacent: a flush always comes
 * right before another record. */
static void
mime_flush(struct mime_split *s, size_t to)
{
	DIME_ASSERT(to >= s->lit_from && to <= s->len);
	if (to > s->lit_from) {
		dime_wr_u8(&s->w, MIME_OP_LIT);
		mime_wr_varint(&s->w, to - s->lit_from);
		dime_wr_bytes(&s->w, s->in + s->lit_from, to - s->lit_from);
	}
	s->lit_from = to;
}

/* The leaf [a, b) becomes a part; an empty one stays in the literal (D/MIME forbids empty
 * data segments). Displays fill parts from the front, attachments from the back. */
static void
mime_emit_part(struct mime_split *s, size_t a, size_t b, enum mime_kind kind)
{
	struct dime_mime_part *pt;

	if (b <= a)
		return;
	mime_flush(s, a);
	dime_wr_u8(&s->w, kind == MIME_KIND_DISPLAY ? MIME_OP_DISPLAY : MIME_OP_ATTACH);
	s->lit_from = b;
	if (s->n_display + s->n_attach >= s->parts_cap && s->parts != NULL) {
		if (s->err == DIME_OK)
			s->err = DIME_E_NOSPACE;
		return;
	}
	if (kind == MIME_KIND_DISPLAY) {
		pt = s->parts == NULL ? NULL : &s->parts[s->n_display];
		s->n_display++;
	} else {
		pt = s->parts == NULL ? NULL : &s->parts[s->parts_cap - 1 - s->n_attach];
		s->n_attach++;
	}
	if (pt != NULL) {
		pt->type = kind == MIME_KIND_DISPLAY ? DIME_MIME_DISPLAY : DIME_MIME_ATTACH;
		pt->data.p = s->in + a;
		pt->data.len = b - a;
	}
}

/* Field [fs, fe) named common label k: prefix [fs, *q) (name, colon, leading space and
 * folds), value [*q, *r), suffix [*r, fe) (trailing space and the line break). */
static void
mime_field_cut(const struct mime_split *s, size_t k, size_t fs, size_t fe, size_t *q, size_t *r)
{
	size_t a = fs + mime_common[k].len + 1, b = fe;

	while (a < fe && mime_is_space(s->in[a]))
		a++;
	while (b > a && mime_is_space(s->in[b - 1]))
		b--;
	*q = a;
	*r = b;
}

/* A chunk 33 value byte needs replacing: a control byte other than TAB. */
static int
mime_is_ctl(uint8_t c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* A line break inside the value [q, r) at i: 0 (none), 1 (LF), 2 (CRLF). Inside a field a
 * line break is always followed by the continuation's whitespace, which is in the value. */
static size_t
mime_fold_at(const struct mime_split *s, size_t i, size_t r)
{
	if (s->in[i] == '\n')
		return 1;
	if (s->in[i] == '\r' && r - i > 1 && s->in[i + 1] == '\n')
		return 2;
	return 0;
}

/* First field of common label k: a COMMON record when the value holds no control byte (so the
 * chunk 33 line carries it exactly); otherwise the field stays literal. */
static void
mime_common_record(struct mime_split *s, size_t k, size_t fs, size_t fe)
{
	size_t q, r, n_folds = 0, o, prev;
	unsigned m = (unsigned)k;
	enum mime_sfx sfx;
	int canon_pfx;

	mime_field_cut(s, k, fs, fe, &q, &r);
	for (size_t i = q; i < r;) {
		size_t f = mime_fold_at(s, i, r);

		if (f > 0) {
			n_folds++;
			i += f;
			continue;
		}
		if (mime_is_ctl(s->in[i]))
			return;
		i++;
	}
	canon_pfx = q - fs == mime_common[k].len + 2 &&
		    memcmp(s->in + fs, mime_common[k].name, mime_common[k].len) == 0 &&
		    s->in[fs + mime_common[k].len + 1] == ' ';
	if (fe - r == 2 && s->in[r] == '\r' && s->in[r + 1] == '\n')
		sfx = MIME_SFX_CRLF;
	else if (fe - r == 1 && s->in[r] == '\n')
		sfx = MIME_SFX_LF;
	else if (fe == r)
		sfx = MIME_SFX_NONE;
	else
		sfx = MIME_SFX_EXPLICIT;
	if (!canon_pfx)
		m |= MIME_M_PREFIX;
	m |= (unsigned)sfx << MIME_M_SFX_SHIFT;
	if (n_folds > 0)
		m |= MIME_M_FOLDS;
	mime_flush(s, fs);
	dime_wr_u8(&s->w, MIME_OP_COMMON);
	dime_wr_u8(&s->w, (uint8_t)m);
	if (!canon_pfx) {
		mime_wr_varint(&s->w, q - fs);
		dime_wr_bytes(&s->w, s->in + fs, q - fs);
	}
	if (sfx == MIME_SFX_EXPLICIT) {
		mime_wr_varint(&s->w, fe - r);
		dime_wr_bytes(&s->w, s->in + r, fe - r);
	}
	if (n_folds > 0) {
		/* Each fold: (value bytes since the previous fold) << 1 | (1 for a bare LF). */
		mime_wr_varint(&s->w, n_folds);
		o = prev = 0;
		for (size_t i = q; i < r;) {
			size_t f = mime_fold_at(s, i, r);

			if (f > 0) {
				mime_wr_varint(&s->w, (o - prev) << 1 | (f == 1 ? 1u : 0u));
				prev = o;
				i += f;
				continue;
			}
			o++;
			i++;
		}
	}
	s->lit_from = fe;
}

/* Chunk 33 line for label k from its first field: unfolded, trimmed, control bytes -> '?'. */
static void
mime_common_line(struct mime_split *s, size_t k)
{
	size_t q, r;

	mime_field_cut(s, k, s->cf_s[k], s->cf_e[k], &q, &r);
	dime_wr_bytes(&s->w, mime_common[k].name, mime_common[k].len);
	dime_wr_bytes(&s->w, ": ", 2);
	for (size_t i = q; i < r;) {
		size_t f = mime_fold_at(s, i, r);

		if (f > 0) {
			i += f;
			continue;
		}
		dime_wr_u8(&s->w, mime_is_ctl(s->in[i]) ? (uint8_t)'?' : s->in[i]);
		i++;
	}
	dime_wr_bytes(&s->w, "\r\n", 2);
}

static void
mime_field(struct mime_split *s, size_t fs, size_t fe, int top, struct mime_hdrs *h)
{
	const uint8_t *p = s->in + fs;
	size_t n = fe - fs;

	if (!h->have_ct && mime_field_is(p, n, "Content-Type", 12)) {
		h->have_ct = 1;
		h->ct_s = fs;
		h->ct_e = fe;
	} else if (!h->have_cd && mime_field_is(p, n, "Content-Disposition", 19)) {
		h->have_cd = 1;
		h->cd_s = fs;
		h->cd_e = fe;
	}
	if (!top)
		return;
	for (size_t k = 0; k < MIME_N_COMMON; k++)
		if (!s->cf_have[k] &&
		    mime_field_is(p, n, mime_common[k].name, mime_common[k].len)) {
			s->cf_have[k] = 1;
			s->cf_s[k] = fs;
			s->cf_e[k] = fe;
			mime_common_record(s, k, fs, fe);
			return;
		}
}

/* Scan the header block starting at p: fields (a line plus its whitespace-led continuation
 * lines) up to a blank line, a delimiter line of an open multipart, or the end. */
static void
mime_scan_headers(struct mime_split *s, size_t p, int top, struct mime_hdrs *h)
{
	memset(h, 0, sizeof(*h));
	while (p < s->len) {
		size_t le, fe;
		int close;

		if (mime_is_blank(s, p)) {
			h->end = mime_line_end(s, p);
			h->has_body = 1;
			return;
		}
		le = mime_line_end(s, p);
		if (s->depth > 0 && mime_delim(s, p, le, &close) != 0) {
			h->end = p;
			return;
		}
		fe = le;
		while (fe < s->len && mime_is_wsp(s->in[fe]))
			fe = mime_line_end(s, fe);
		mime_field(s, p, fe, top, h);
		p = fe;
	}
	h->end = s->len;
}

/* Content-Type of a header block, as far as the split needs it. */
struct mime_ctype {
	int multipart, text, digest, unparsed;
	uint8_t *bnd; /* DIME_MIME_BOUNDARY_MAX bytes */
	size_t bnd_len;
	int bnd_too_long;
};

/* Value bytes of a field, with folds (CR, LF) skipped: a tiny cursor. */
struct mime_cur {
	const uint8_t *p;
	size_t i, n;
};

static int
mime_cur_peek(struct mime_cur *c)
{
	while (c->i < c->n && (c->p[c->i] == '\r' || c->p[c->i] == '\n'))
		c->i++;
	return c->i < c->n ? c->p[c->i] : -1;
}

static void
mime_cur_skip_wsp(struct mime_cur *c)
{
	int ch;

	while ((ch = mime_cur_peek(c)) == ' ' || ch == '\t')
		c->i++;
}

/* A token: up to whitespace or one of the stop bytes. Returns its length; copies up to cap
 * bytes (lower-cased) into t. */
static size_t
mime_cur_token(struct mime_cur *c, uint8_t *t, size_t cap, const char *stop)
{
	size_t n = 0;
	int ch;

	while ((ch = mime_cur_peek(c)) >= 0 && ch != ' ' && ch != '\t' &&
	       strchr(stop, ch) == NULL) {
		if (n < cap)
			t[n] = mime_lower((uint8_t)ch);
		n++;
		c->i++;
	}
	return n;
}

static void
mime_parse_ctype(const struct mime_split *s, const struct mime_hdrs *h, struct mime_ctype *ct)
{
	struct mime_cur c = {s->in, h->ct_s + 13, h->ct_e}; /* after "Content-Type:" */
	uint8_t type[16], sub[16], name[16];
	size_t tl, sl;

	mime_cur_skip_wsp(&c);
	tl = mime_cur_token(&c, type, sizeof(type), "/;");
	if (mime_cur_peek(&c) == '/')
		c.i++;
	sl = mime_cur_token(&c, sub, sizeof(sub), ";");
	ct->unparsed = tl == 0;
	ct->text = tl == 4 && memcmp(type, "text", 4) == 0;
	ct->multipart = tl == 9 && memcmp(type, "multipart", 9) == 0;
	ct->digest = ct->multipart && sl == 6 && memcmp(sub, "digest", 6) == 0;
	if (!ct->multipart)
		return;
	/* Parameters: ; name = value | "quoted\"value". The first boundary wins. */
	for (;;) {
		size_t nl;
		int ch;

		while ((ch = mime_cur_peek(&c)) >= 0 && ch != ';')
			c.i++;
		if (ch < 0)
			return;
		c.i++;
		mime_cur_skip_wsp(&c);
		nl = mime_cur_token(&c, name, sizeof(name), "=;");
		mime_cur_skip_wsp(&c);
		if (mime_cur_peek(&c) != '=')
			continue;
		c.i++;
		mime_cur_skip_wsp(&c);
		if (nl != 8 || memcmp(name, "boundary", 8) != 0)
			continue;
		ct->bnd_len = 0;
		if (mime_cur_peek(&c) == '"') {
			c.i++;
			while ((ch = mime_cur_peek(&c)) >= 0 && ch != '"') {
				if (ch == '\\') {
					c.i++;
					if ((ch = mime_cur_peek(&c)) < 0)
						break;
				}
				if (ct->bnd_len < DIME_MIME_BOUNDARY_MAX)
					ct->bnd[ct->bnd_len] = (uint8_t)ch;
				ct->bnd_len++;
				c.i++;
			}
		} else {
			while ((ch = mime_cur_peek(&c)) >= 0 && ch != ';' && ch != ' ' &&
			       ch != '\t') {
				if (ct->bnd_len < DIME_MIME_BOUNDARY_MAX)
					ct->bnd[ct->bnd_len] = (uint8_t)ch;
				ct->bnd_len++;
				c.i++;
			}
		}
		if (ct->bnd_len > DIME_MIME_BOUNDARY_MAX) {
			ct->bnd_too_long = 1;
			ct->bnd_len = 0;
		}
		return;
	}
}

/* What an entity is, from its header block. For a container, the next frame slot gets its
 * boundary; the caller pushes it. */
static enum mime_kind
mime_classify(struct mime_split *s, const struct mime_hdrs *h, int parent_digest)
{
	struct mime_ctype ct;
	uint8_t bnd[DIME_MIME_BOUNDARY_MAX];
	int attach_disp = 0;

	if (h->have_cd) {
		struct mime_cur c = {s->in, h->cd_s + 20, h->cd_e}; /* after the colon */
		uint8_t tok[16];

		mime_cur_skip_wsp(&c);
		attach_disp = mime_cur_token(&c, tok, sizeof(tok), ";") == 10 &&
			      memcmp(tok, "attachment", 10) == 0;
	}
	if (!h->have_ct) /* RFC 2045 §5.2 and RFC 2046 §5.1.5 defaults */
		return parent_digest || attach_disp ? MIME_KIND_ATTACH : MIME_KIND_DISPLAY;
	memset(&ct, 0, sizeof(ct));
	ct.bnd = bnd;
	mime_parse_ctype(s, h, &ct);
	if (ct.multipart) {
		/* Too deep to open, or a boundary we do not keep: carried whole. */
		if (ct.bnd_too_long || s->depth >= DIME_MIME_MAX_DEPTH)
			return MIME_KIND_ATTACH;
		if (ct.bnd_len == 0) /* a multipart without boundary is shown as text */
			return MIME_KIND_DISPLAY;
		memcpy(s->frames[s->depth].bnd, bnd, ct.bnd_len);
		s->frames[s->depth].bnd_len = ct.bnd_len;
		s->frames[s->depth].digest = ct.digest;
		return MIME_KIND_CONTAINER;
	}
	if ((ct.text || ct.unparsed) && !attach_disp)
		return MIME_KIND_DISPLAY;
	return MIME_KIND_ATTACH;
}

static void
mime_push(struct mime_split *s, size_t body)
{
	struct mime_frame *f = &s->frames[s->depth++];

	f->body = body;
	f->n_delims = 0;
	f->closed = 0;
}

/* A multipart ends at `end`. One whose boundary never appeared is a single text leaf. */
static void
mime_pop(struct mime_split *s, size_t end)
{
	struct mime_frame *f = &s->frames[--s->depth];

	if (f->n_delims == 0)
		mime_emit_part(s, f->body, end > f->body ? end : f->body, MIME_KIND_DISPLAY);
}

static void
mime_body(struct mime_split *s, size_t p)
{
	size_t leaf = 0;
	enum mime_kind leaf_kind = MIME_KIND_DISPLAY;
	int leaf_open = 0;

	while (p < s->len) {
		size_t le = mime_line_end(s, p), fi, eol;
		struct mime_frame *f;
		struct mime_hdrs h;
		enum mime_kind kind;
		int close;

		if ((fi = mime_delim(s, p, le, &close)) == 0) {
			p = le;
			continue;
		}
		eol = mime_eol_before(s, p);
		if (leaf_open) {
			mime_emit_part(s, leaf, eol > leaf ? eol : leaf, leaf_kind);
			leaf_open = 0;
		}
		while (s->depth > fi) /* an outer delimiter also ends the inner multiparts */
			mime_pop(s, eol);
		f = &s->frames[fi - 1];
		f->n_delims++;
		if (close) {
			f->closed = 1;
			p = le;
			continue;
		}
		mime_scan_headers(s, le, 0, &h);
		kind = mime_classify(s, &h, f->digest);
		if (kind == MIME_KIND_CONTAINER && h.has_body) {
			mime_push(s, h.end);
			p = h.end;
			continue;
		}
		if (kind == MIME_KIND_CONTAINER) /* a multipart part with no body at all */
			kind = MIME_KIND_ATTACH;
		leaf_open = 1;
		leaf = le;
		leaf_kind = kind;
		p = h.end;
	}
	if (leaf_open)
		mime_emit_part(s, leaf, s->len, leaf_kind);
	while (s->depth > 0)
		mime_pop(s, s->len);
}

static int
mime_split_run(struct mime_split *s, uint8_t *buf, size_t buf_cap, struct dime_mime_part *parts,
	       size_t parts_cap, const uint8_t *in, size_t in_len, size_t *n34)
{
	struct mime_hdrs h;
	enum mime_kind kind;

	memset(s, 0, sizeof(*s));
	s->in = in;
	s->len = in_len;
	s->parts = parts;
	s->parts_cap = parts_cap;
	dime_wr_init(&s->w, buf, buf_cap);
	dime_wr_bytes(&s->w, mime_magic, MIME_MAGIC_BYTES);
	mime_scan_headers(s, 0, 1, &h);
	if (h.has_body) {
		kind = mime_classify(s, &h, 0);
		if (kind == MIME_KIND_CONTAINER) {
			mime_push(s, h.end);
			mime_body(s, h.end);
		} else {
			mime_emit_part(s, h.end, in_len, kind);
		}
	}
	mime_flush(s, in_len);
	*n34 = s->w.off;
	for (size_t k = 0; k < MIME_N_COMMON; k++)
		if (s->cf_have[k])
			mime_common_line(s, k);
	if (s->w.err != DIME_OK)
		return s->w.err == DIME_E_LIMIT ? DIME_E_NOSPACE : s->w.err;
	return s->err;
}

int
dime_mime_split_size(size_t *buf_len, size_t *n_parts, const uint8_t *in, size_t in_len)
{
	struct mime_split s;
	size_t n34;
	int rc;

	if (buf_len == NULL || n_parts == NULL)
		return DIME_E_INVALID;
	*buf_len = 0;
	*n_parts = 0;
	if (in == NULL && in_len != 0)
		return DIME_E_INVALID;
	if (in_len > DIME_MIME_MAX_BYTES)
		return DIME_E_LIMIT;
	if ((rc = mime_split_run(&s, NULL, 0, NULL, 0, in, in_len, &n34)) != DIME_OK)
		return rc;
	*buf_len = s.w.off;
	*n_parts = s.n_display + s.n_attach;
	return DIME_OK;
}

int
dime_mime_split(struct dime_mime_content *out, uint8_t *buf, size_t buf_cap,
		struct dime_mime_part *parts, size_t parts_cap, const uint8_t *in, size_t in_len)
{
	struct mime_split s;
	size_t n34, na, nd;
	int rc;

	if (out == NULL)
		return DIME_E_INVALID;
	memset(out, 0, sizeof(*out));
	if ((in == NULL && in_len != 0) || (buf == NULL && buf_cap != 0) ||
	    (parts == NULL && parts_cap != 0))
		return DIME_E_INVALID;
	if (in_len > DIME_MIME_MAX_BYTES)
		return DIME_E_LIMIT;
	if (buf == NULL)
		return DIME_E_NOSPACE; /* chunk 34 is never empty */
	rc = mime_split_run(&s, buf, buf_cap, parts, parts_cap, in, in_len, &n34);
	if (rc == DIME_OK && parts == NULL && s.n_display + s.n_attach > 0)
		rc = DIME_E_NOSPACE;
	if (rc != DIME_OK)
		return rc;
	/* Attachments were stored backwards from the end: reverse, then move after displays. */
	nd = s.n_display;
	na = s.n_attach;
	for (size_t i = 0; i < na / 2; i++) {
		struct dime_mime_part t = parts[parts_cap - 1 - i];

		parts[parts_cap - 1 - i] = parts[parts_cap - na + i];
		parts[parts_cap - na + i] = t;
	}
	if (na > 0 && parts_cap - na != nd)
		memmove(&parts[nd], &parts[parts_cap - na], na * sizeof(*parts));
	out->headers.p = buf;
	out->headers.len = n34;
	out->common.p = buf + n34;
	out->common.len = s.w.off - n34;
	out->parts = parts;
	out->n_parts = nd + na;
	out->n_display = nd;
	out->n_attach = na;
	return DIME_OK;
}

/* ---- join ---- */

static size_t
mime_rd_varint(struct dime_rd *r)
{
	size_t v = 0;

	for (unsigned i = 0; i < MIME_VARINT_MAX; i++) {
		uint8_t b = dime_rd_u8(r);

		if (r->err != DIME_OK)
			return 0;
		v |= (size_t)(b & 0x7fu) << (7 * i);
		if ((b & 0x80u) == 0) {
			if (b == 0 && i > 0) /* not minimal */
				break;
			if (v > DIME_MIME_MAX_BYTES)
				break;
			return v;
		}
	}
	dime_rd_fail(r, DIME_E_MALFORMED);
	return 0;
}

/* Chunk 33 in the reference form: `Label: value\r\n` lines in the fixed order, each label at
 * most once, no CR or LF inside a value. */
static int
mime_parse_common(struct dime_view v, struct dime_view vals[MIME_N_COMMON], int have[MIME_N_COMMON])
{
	size_t p = 0, next = 0;

	memset(vals, 0, MIME_N_COMMON * sizeof(*vals));
	memset(have, 0, MIME_N_COMMON * sizeof(*have));
	while (p < v.len) {
		size_t k, e;

		for (k = next; k < MIME_N_COMMON; k++) {
			size_t nl = mime_common[k].len;

			if (v.len - p >= nl + 2 && memcmp(v.p + p, mime_common[k].name, nl) == 0 &&
			    v.p[p + nl] == ':' && v.p[p + nl + 1] == ' ')
				break;
		}
		if (k == MIME_N_COMMON)
			return DIME_E_MALFORMED;
		p += mime_common[k].len + 2;
		for (e = p; e < v.len && v.p[e] != '\r' && v.p[e] != '\n'; e++)
			;
		if (v.len - e < 2 || v.p[e] != '\r' || v.p[e + 1] != '\n')
			return DIME_E_MALFORMED;
		vals[k].p = v.p + p;
		vals[k].len = e - p;
		have[k] = 1;
		next = k + 1;
		p = e + 2;
	}
	return DIME_OK;
}

/* The next part of `type` at or after *cur; every part must be a display or an attachment. */
static const struct dime_mime_part *
mime_next_part(const struct dime_mime_part *parts, size_t n, size_t *cur, uint8_t type)
{
	while (*cur < n && parts[*cur].type != type)
		(*cur)++;
	if (*cur == n)
		return NULL;
	return &parts[(*cur)++];
}

static void
mime_join_common(struct dime_wr *w, struct dime_rd *r, unsigned m, struct dime_view val)
{
	size_t k = m & MIME_M_LINE, n, prev = 0;
	unsigned sfx = (m >> MIME_M_SFX_SHIFT) & 3u;
	const uint8_t *sfx_p = NULL, *b;
	size_t sfx_len = 0;

	if ((m & MIME_M_PREFIX) != 0) {
		n = mime_rd_varint(r);
		b = dime_rd_take(r, n);
		if (b != NULL && n == mime_common[k].len + 2 &&
		    memcmp(b, mime_common[k].name, mime_common[k].len) == 0 &&
		    b[mime_common[k].len] == ':' && b[mime_common[k].len + 1] == ' ')
			dime_rd_fail(r, DIME_E_MALFORMED); /* canonical prefix written out */
		if (b != NULL)
			dime_wr_bytes(w, b, n);
	} else {
		dime_wr_bytes(w, mime_common[k].name, mime_common[k].len);
		dime_wr_bytes(w, ": ", 2);
	}
	if (sfx == MIME_SFX_CRLF) {
		sfx_p = (const uint8_t *)"\r\n";
		sfx_len = 2;
	} else if (sfx == MIME_SFX_LF) {
		sfx_p = (const uint8_t *)"\n";
		sfx_len = 1;
	} else if (sfx == MIME_SFX_EXPLICIT) {
		sfx_len = mime_rd_varint(r);
		sfx_p = dime_rd_take(r, sfx_len);
		if (sfx_p != NULL && (sfx_len == 0 || (sfx_len == 1 && sfx_p[0] == '\n') ||
				      (sfx_len == 2 && sfx_p[0] == '\r' && sfx_p[1] == '\n')))
			dime_rd_fail(r, DIME_E_MALFORMED);
	}
	if ((m & MIME_M_FOLDS) != 0) {
		size_t n_folds = mime_rd_varint(r), o = 0;

		if (n_folds == 0 || n_folds > val.len)
			dime_rd_fail(r, DIME_E_MALFORMED);
		for (size_t i = 0; i < n_folds && r->err == DIME_OK; i++) {
			size_t d = mime_rd_varint(r);

			/* A fold sits between value bytes and before whitespace. */
			if ((d >> 1) == 0 || (d >> 1) >= val.len - o ||
			    !mime_is_wsp(val.p[o + (d >> 1)])) {
				dime_rd_fail(r, DIME_E_MALFORMED);
				break;
			}
			o += d >> 1;
			dime_wr_bytes(w, val.p + prev, o - prev);
			dime_wr_bytes(w, (d & 1u) != 0 ? "\n" : "\r\n", (d & 1u) != 0 ? 1u : 2u);
			prev = o;
		}
	}
	dime_wr_bytes(w, val.p + prev, val.len - prev);
	if (sfx_p != NULL && r->err == DIME_OK)
		dime_wr_bytes(w, sfx_p, sfx_len);
}

int
dime_mime_join(uint8_t *out, size_t out_cap, size_t *out_len, struct dime_view common,
	       struct dime_view headers, const struct dime_mime_part *parts, size_t n_parts)
{
	struct dime_view vals[MIME_N_COMMON];
	int have[MIME_N_COMMON], used[MIME_N_COMMON] = {0}, prev_lit = 0, rc;
	struct dime_rd r;
	struct dime_wr w;
	size_t di = 0, ai = 0;
	const uint8_t *magic;

	if (out_len == NULL)
		return DIME_E_INVALID;
	*out_len = 0;
	if ((common.p == NULL && common.len != 0) || (headers.p == NULL && headers.len != 0) ||
	    (parts == NULL && n_parts != 0))
		return DIME_E_INVALID;
	for (size_t i = 0; i < n_parts; i++)
		if ((parts[i].type != DIME_MIME_DISPLAY && parts[i].type != DIME_MIME_ATTACH) ||
		    (parts[i].data.p == NULL && parts[i].data.len != 0))
			return DIME_E_MALFORMED;
	if ((rc = mime_parse_common(common, vals, have)) != DIME_OK)
		return rc;
	dime_rd_init(&r, headers.p, headers.len);
	dime_wr_init(&w, out, out == NULL ? SIZE_MAX : out_cap);
	magic = dime_rd_take(&r, MIME_MAGIC_BYTES);
	if (magic == NULL || memcmp(magic, mime_magic, MIME_MAGIC_BYTES) != 0)
		return DIME_E_MALFORMED;
	while (r.err == DIME_OK && w.err == DIME_OK && dime_rd_left(&r) > 0) {
		uint8_t op = dime_rd_u8(&r);
		const struct dime_mime_part *pt;
		const uint8_t *lit;
		size_t n;
		unsigned m;

		switch (op) {
		case MIME_OP_LIT:
			n = mime_rd_varint(&r);
			if (prev_lit || (n == 0 && r.err == DIME_OK))
				dime_rd_fail(&r, DIME_E_MALFORMED);
			lit = dime_rd_take(&r, n);
			if (lit != NULL)
				dime_wr_bytes(&w, lit, n);
			break;
		case MIME_OP_DISPLAY:
		case MIME_OP_ATTACH:
			if (op == MIME_OP_DISPLAY)
				pt = mime_next_part(parts, n_parts, &di, DIME_MIME_DISPLAY);
			else
				pt = mime_next_part(parts, n_parts, &ai, DIME_MIME_ATTACH);
			if (pt == NULL || pt->data.len == 0)
				dime_rd_fail(&r, DIME_E_MALFORMED);
			else
				dime_wr_bytes(&w, pt->data.p, pt->data.len);
			break;
		case MIME_OP_COMMON:
			m = dime_rd_u8(&r);
			if (r.err != DIME_OK)
				break;
			if ((m & MIME_M_RESERVED) != 0 || (m & MIME_M_LINE) >= MIME_N_COMMON ||
			    !have[m & MIME_M_LINE] || used[m & MIME_M_LINE]) {
				dime_rd_fail(&r, DIME_E_MALFORMED);
				break;
			}
			used[m & MIME_M_LINE] = 1;
			mime_join_common(&w, &r, m, vals[m & MIME_M_LINE]);
			break;
		default: dime_rd_fail(&r, DIME_E_MALFORMED); break;
		}
		prev_lit = op == MIME_OP_LIT;
	}
	if (r.err != DIME_OK)
		return r.err == DIME_E_TRUNCATED ? DIME_E_MALFORMED : r.err;
	if (w.err != DIME_OK)
		return w.err;
	/* Every part used: none of either type is left after its cursor. */
	if (mime_next_part(parts, n_parts, &di, DIME_MIME_DISPLAY) != NULL ||
	    mime_next_part(parts, n_parts, &ai, DIME_MIME_ATTACH) != NULL)
		return DIME_E_MALFORMED;
	if (w.off > DIME_MIME_MAX_BYTES)
		return DIME_E_LIMIT;
	*out_len = w.off;
	return DIME_OK;
}

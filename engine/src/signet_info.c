/* Signet field labels and the decoding of informational fields for display (spec Part 5,
 * "Common fields", "Organizational signet fields", "User signet fields"). Nothing here takes
 * part in validation: a field that breaks its rule is returned marked invalid. */

#include <string.h>

#include "dime/signet.h"
#include "signet_int.h"

/* ---- labels ---- */

static const char *
info_common_label(uint8_t id)
{
	static const char *const short_fields[] = {
	    "Name",	      "Address", "Province",   "Country",
	    "Postal-Code",    "Phone",	 "Language",   "Currency",
	    "Cryptocurrency", "Motto",	 "Extensions", "Message-Size-Limit",
	};

	if (id >= 16 && id <= 27)
		return short_fields[id - 16];
	switch (id) {
	case 160: return "Website";
	case DIME_FID_UNDEFINED: return "Undefined-Fields";
	case DIME_FID_IMAGE: return "Image";
	case DIME_FID_FULL_SIG: return "Organizational-Signature"; /* the spec's label for 253 */
	case DIME_FID_IDENTIFIER: return "Signet-Identifier";
	case DIME_FID_ID_SIG: return "Organizational-Signature"; /* and for 255 */
	default: return NULL;
	}
}

const char *
dime_signet_field_label(enum dime_signet_type type, uint8_t id)
{
	static const char *const org_long[] = {
	    "Contact-Abuse",	   "Contact-Admin",
	    "Contact-Support",	   "Web-Access-Host",
	    "Web-Access-Location", "Web-Access-Certificate",
	    "Mail-Access-Host",	   "Mail-Access-Certificate",
	    "Onion-Access-Host",   "Onion-Access-Certificate",
	    "Onion-Delivery-Host", "Onion-Delivery-Certificate",
	};
	static const char *const user_key[] = {
	    "Signing-Key",	 "Encryption-Key", "Alternate-Encryption-Key",
	    "Custody-Signature", "User-Signature", "Organizational-Signature",
	};
	static const char *const user_short[] = {
	    "Supported-Codecs", "Title",      "Employer",	 "Gender",
	    "Alma-Mater",	"Supervisor", "Political-Party", "Extensions",
	};
	static const char *const user_long[] = {"Alternate-Address", "Resume", "Endorsements"};

	switch (type) {
	case DIME_SIGNET_SSR: return id >= 1 && id <= 5 ? user_key[id - 1] : NULL;
	case DIME_SIGNET_ORG:
		switch (id) {
		case 1: return "Primary-Organizational-Key";
		case 2: return "Secondary-Organizational-Key";
		case 3: return "Encryption-Key";
		case 4:
			return "Organizational-Signature"; /* the reference's crypto self-signature
							    */
		default: break;
		}
		if (id >= 200 && id <= 211)
			return org_long[id - 200];
		return info_common_label(id);
	case DIME_SIGNET_USER:
		if (id >= 1 && id <= 6)
			return user_key[id - 1];
		if (id >= 93 && id <= 100)
			return user_short[id - 93];
		if (id >= 200 && id <= 202)
			return user_long[id - 200];
		return info_common_label(id);
	default: return NULL;
	}
}

/* ---- text checks ---- */

struct info_text {
	size_t n_cp; /* code points */
	int valid;   /* well-formed UTF-8 (no overlongs, surrogates, or > U+10FFFF) */
	int space;   /* contains a whitespace code point */
	int ctl;     /* contains a control code point other than whitespace */
};

static int
info_is_space(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
	       (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
	       c == 0x205F || c == 0x3000;
}

static void
info_scan(struct info_text *t, const uint8_t *p, size_t len)
{
	size_t i = 0;

	memset(t, 0, sizeof(*t));
	t->valid = 1;
	while (i < len) {
		uint8_t b = p[i];
		uint32_t c, min;
		size_t k, n;

		if (b < 0x80) {
			c = b;
			n = 1;
			min = 0;
		} else if (b >= 0xC2 && b <= 0xDF) {
			c = b & 0x1Fu;
			n = 2;
			min = 0x80;
		} else if (b >= 0xE0 && b <= 0xEF) {
			c = b & 0x0Fu;
			n = 3;
			min = 0x800;
		} else if (b >= 0xF0 && b <= 0xF4) {
			c = b & 0x07u;
			n = 4;
			min = 0x10000;
		} else {
			t->valid = 0;
			return;
		}
		if (n > len - i) {
			t->valid = 0;
			return;
		}
		for (k = 1; k < n; k++) {
			if ((p[i + k] & 0xC0) != 0x80) {
				t->valid = 0;
				return;
			}
			c = c << 6 | (p[i + k] & 0x3Fu);
		}
		if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
			t->valid = 0;
			return;
		}
		if (info_is_space(c))
			t->space = 1;
		else if (c < 0x20 || (c >= 0x7F && c <= 0x9F))
			t->ctl = 1;
		t->n_cp++;
		i += n;
	}
}

static int
info_ascii_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static struct dime_view
info_trim(struct dime_view v)
{
	while (v.len > 0 && info_ascii_space(v.p[0])) {
		v.p++;
		v.len--;
	}
	while (v.len > 0 && info_ascii_space(v.p[v.len - 1]))
		v.len--;
	return v;
}

/* Split v at the first ';': *head before it, *tail after (empty when there is none). */
static void
info_split(struct dime_view *head, struct dime_view *tail, struct dime_view v)
{
	const uint8_t *semi = v.len > 0 ? memchr(v.p, ';', v.len) : NULL;

	*head = v;
	tail->p = NULL;
	tail->len = 0;
	if (semi == NULL)
		return;
	head->len = (size_t)(semi - v.p);
	tail->p = semi + 1;
	tail->len = v.len - head->len - 1;
}

/* A label or name a consumer may use: valid UTF-8, no whitespace, no control characters. */
static int
info_word_ok(struct dime_view v, size_t max_cp)
{
	struct info_text t;

	info_scan(&t, v.p, v.len);
	return v.len > 0 && t.valid && !t.space && !t.ctl && (max_cp == 0 || t.n_cp <= max_cp);
}

/* ---- item output ---- */

struct info_out {
	struct dime_signet_item *items;
	size_t cap, n;
	int full; /* an item did not fit */
	const char *label;
	uint8_t id;
};

static struct dime_signet_item *
info_add(struct info_out *o, struct dime_view value, int binary, int invalid)
{
	struct dime_signet_item *it;

	if (o->n >= o->cap) {
		o->full = 1;
		return NULL;
	}
	it = &o->items[o->n++];
	memset(it, 0, sizeof(*it));
	it->label = o->label;
	it->id = o->id;
	it->value = value;
	it->binary = (uint8_t)(binary != 0);
	it->invalid = (uint8_t)(invalid != 0);
	return it;
}

/* Text: malformed UTF-8 is shown as binary and marked invalid. */
static struct dime_signet_item *
info_add_text(struct info_out *o, struct dime_view value, int invalid)
{
	struct info_text t;

	info_scan(&t, value.p, value.len);
	return info_add(o, value, !t.valid, invalid || !t.valid);
}

/* ---- per-field rules ---- */

/* Phone: "digits[;LABEL]". A non-digit before ';' invalidates the number; a label longer than
 * 16 code points, with whitespace or bad UTF-8 is discarded (the default "Phone" applies).
 * Whitespace around the label is trimmed first: the spec's own sample is "4108546334; OFFICE". */
static void
info_phone(struct info_out *o, struct dime_view v)
{
	struct dime_view num, label;
	struct dime_signet_item *it;
	size_t i;

	info_split(&num, &label, v);
	for (i = 0; i < num.len; i++)
		if (num.p[i] < '0' || num.p[i] > '9')
			break;
	if (num.len == 0 || i < num.len) {
		(void)info_add_text(o, v, 1);
		return;
	}
	it = info_add(o, num, 0, 0);
	label = info_trim(label);
	if (it != NULL && info_word_ok(label, 16))
		it->sublabel = label;
}

/* A ';'-separated list (the last ';' optional): one item per non-empty entry. */
static void
info_list(struct info_out *o, struct dime_view v)
{
	struct dime_view head, tail;

	while (v.len > 0) {
		info_split(&head, &tail, v);
		head = info_trim(head);
		if (head.len > 0)
			(void)info_add_text(o, head, 0);
		if (tail.p == NULL)
			break;
		v = tail;
	}
}

/* "value[;label]": Title, Employer, Gender, Alma-Mater, Supervisor, Political-Party, Resume. */
static void
info_value_label(struct info_out *o, struct dime_view v)
{
	struct dime_view val, label;
	struct dime_signet_item *it;
	struct info_text t;

	info_split(&val, &label, v);
	val = info_trim(val);
	label = info_trim(label);
	it = info_add_text(o, val, 0);
	info_scan(&t, label.p, label.len);
	if (it != NULL && !it->invalid && label.len > 0 && t.valid && !t.ctl)
		it->sublabel = label;
}

static int
info_ascii_prefix_ci(struct dime_view v, const char *pre)
{
	size_t n = strlen(pre);

	if (v.len < n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = v.p[i];

		if (c >= 'A' && c <= 'Z')
			c = (uint8_t)(c - 'A' + 'a');
		if (c != (uint8_t)pre[i])
			return 0;
	}
	return 1;
}

/* Website: an http:// or https:// URL with a non-empty host, no whitespace or controls. */
static int
info_url_ok(struct dime_view v)
{
	struct info_text t;
	size_t i, end, host;

	info_scan(&t, v.p, v.len);
	if (!t.valid || t.space || t.ctl)
		return 0;
	if (info_ascii_prefix_ci(v, "https://"))
		i = 8;
	else if (info_ascii_prefix_ci(v, "http://"))
		i = 7;
	else
		return 0;
	for (end = i; end < v.len; end++)
		if (v.p[end] == '/' || v.p[end] == '?' || v.p[end] == '#')
			break;
	host = i; /* authority is v[i..end): [userinfo@]host[:port] */
	for (size_t k = i; k < end; k++)
		if (v.p[k] == '@')
			host = k + 1;
	if (host < end && v.p[host] == '[') { /* IPv6 literal */
		size_t k = host + 1;

		while (k < end && v.p[k] != ']')
			k++;
		if (k == end || k == host + 1)
			return 0;
		i = k + 1;
	} else {
		for (i = host; i < end && v.p[i] != ':'; i++)
			;
		if (i == host)
			return 0;
	}
	if (i < end) { /* :port */
		if (v.p[i] != ':' || i + 1 == end)
			return 0;
		for (i++; i < end; i++)
			if (v.p[i] < '0' || v.p[i] > '9')
				return 0;
	}
	return 1;
}

#define INFO_MSG_SIZE_MIN 1048576u /* "The minimum legal value is 1 megabyte" (bytes) */

static int
info_size_ok(struct dime_view v)
{
	uint64_t n = 0;

	if (v.len == 0)
		return 0;
	for (size_t i = 0; i < v.len; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return 0;
		if (n < ((uint64_t)1 << 40)) /* saturate: anything this large is legal */
			n = n * 10 + (uint64_t)(v.p[i] - '0');
	}
	return n >= INFO_MSG_SIZE_MIN;
}

static const char *const info_sok_perms[16] = {
    "no permission",
    "signets",
    "messages",
    "signets,messages",
    "tls",
    "signets,tls",
    "messages,tls",
    "signets,messages,tls",
    "software",
    "signets,software",
    "messages,software",
    "signets,messages,software",
    "tls,software",
    "signets,tls,software",
    "messages,tls,software",
    "signets,messages,tls,software",
};

static void
info_sok(struct info_out *o, struct dime_view v)
{
	struct dime_view key = {v.p + 2, DIME_ED25519_PUB_BYTES};
	uint8_t perms = v.p[0];
	const char *txt =
	    perms & DIME_SOK_RESERVED ? "reserved bits set" : info_sok_perms[perms & 15];
	/* Reserved bits: the SOK is ignored. None of the first three bits: not a usable SOK. */
	int bad = (perms & DIME_SOK_RESERVED) || !(perms & 7);
	struct dime_signet_item *it = info_add(o, key, 1, bad);

	if (it != NULL) {
		it->sublabel.p = (const uint8_t *)txt;
		it->sublabel.len = strlen(txt);
	}
}

static void
info_undefined(struct info_out *o, const struct dime_signet_field *f)
{
	struct info_text t;
	struct dime_signet_item *it;
	int name_ok = info_word_ok(f->name, 0);

	info_scan(&t, f->value.p, f->value.len);
	it = info_add(o, f->value, !t.valid || t.ctl, !name_ok);
	if (it != NULL)
		it->sublabel = f->name;
}

static const uint8_t info_png_magic[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};

int
dime_signet_field_items(struct dime_signet_item *items, size_t cap, size_t *n,
			const struct dime_signet *s, const struct dime_signet_field *f)
{
	struct info_out o;
	struct dime_view v = f->value;
	enum dime_signet_type t = s->type;
	uint8_t id = f->id;

	memset(&o, 0, sizeof(o));
	o.items = items;
	o.cap = cap;
	o.id = id;
	o.label = dime_signet_field_label(t, id);
	if (o.label == NULL)
		o.label = "Unrecognized";
	*n = 0;
	if (id <= 6) { /* keys and signatures */
		struct dime_view key = {v.p + 1, DIME_ED25519_PUB_BYTES};

		if (id == 1)
			(void)info_add(&o, key, 1, 0);
		else if (id == 2 && t == DIME_SIGNET_ORG)
			info_sok(&o, v);
		else if (v.len > 0)
			(void)info_add(&o, v, 1, 0);
	} else if (id == DIME_FID_FULL_SIG || id == DIME_FID_ID_SIG ||
		   (t == DIME_SIGNET_USER && id == 202 && v.len > 0)) {
		/* Signatures; Endorsements (signature, address, fingerprint) shown raw. */
		(void)info_add(&o, v, 1, 0);
	} else if (id == DIME_FID_UNDEFINED) {
		info_undefined(&o, f);
	} else if (v.len == 0) {
		/* "A length of 0 is functionally equivalent to the field being omitted." */
	} else if (id == DIME_FID_IMAGE) {
		(void)info_add(&o, v, 1, v.len < 8 || memcmp(v.p, info_png_magic, 8) != 0);
	} else if (id == DIME_FID_PHONE) {
		info_phone(&o, v);
	} else if (id == 22 || id == 23 || id == 24 || (t == DIME_SIGNET_USER && id == 93) ||
		   (t == DIME_SIGNET_USER && id == 200) ||
		   (t == DIME_SIGNET_ORG && id >= 203 && id <= 211 && id != 204)) {
		info_list(&o, v);
	} else if (t == DIME_SIGNET_USER && ((id >= 94 && id <= 99) || id == 201)) {
		info_value_label(&o, v);
	} else if (id == 27) {
		(void)info_add_text(&o, v, !info_size_ok(v));
	} else if (id == 160) {
		(void)info_add_text(&o, v, !info_url_ok(v));
	} else {
		(void)info_add_text(&o, v, 0);
	}
	*n = o.n;
	return o.full ? DIME_E_NOSPACE : DIME_OK;
}

/* Management records: the interop probes and genrec records, every parsing rule with its
 * reason, generate -> parse round trips, TXT-string splitting, the tls field against the
 * interop certificate, guard-page prefixes and single-byte mutations. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "dime/codec.h"
#include "dime/crypto.h"
#include "dime/keys.h"
#include "dime/mrec.h"
#include "tlib.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* org-alpha's POK (the probes' key), org-beta's POK, and the reference genrec's tls value. */
#define PA "G0uWecEWfHbZ8IMAOw5bsYL7mGS5opytFYyZkChFKaQ"
#define PB "AzkmvaSixxOgg7LOPjm2y8FV+RzkUq/TK1b6FrhDMwU"
#define TV "VZuUmIHUFXDteqkbxw5GKAWGoFkEeQd3K1/zIiR1Rd5x4gdXRrKPk6akrPqU4Ff2qusGsLi8wg1nkqU4ZXqODw"

static const char *
rc_name(int rc)
{
	return rc == DIME_OK ? "ok" : dime_strerror(rc);
}

static int
mrec_is_zero(const struct dime_mrec *m)
{
	static const struct dime_mrec zero;

	return memcmp(m, &zero, sizeof(zero)) == 0;
}

static int
view_eq(struct dime_view a, struct dime_view b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* Equal meaning: every field, views compared by content. */
static int
mrec_equal(const struct dime_mrec *a, const struct dime_mrec *b)
{
	if (a->version != b->version || a->expiry_days != b->expiry_days ||
	    a->policy != b->policy || a->subdomain != b->subdomain || a->n_poks != b->n_poks ||
	    a->n_tls != b->n_tls || a->n_dx != b->n_dx || a->n_syn != b->n_syn)
		return 0;
	for (size_t i = 0; i < a->n_poks; i++)
		if (memcmp(a->poks[i], b->poks[i], DIME_ED25519_PUB_BYTES) != 0)
			return 0;
	for (size_t i = 0; i < a->n_tls; i++)
		if (memcmp(a->tls[i], b->tls[i], DIME_SIG_BYTES) != 0)
			return 0;
	for (size_t i = 0; i < a->n_dx; i++)
		if (!view_eq(a->dx[i], b->dx[i]))
			return 0;
	for (size_t i = 0; i < a->n_syn; i++)
		if (!view_eq(a->syn[i], b->syn[i]))
			return 0;
	return 1;
}

/* Parse with the record placed right before a PROT_NONE page, and check the failure contract.
 * Returns the code. */
static int
parse_guarded(struct dime_mrec *m, const char **why, const char *rec, size_t len, int slot)
{
	const char *g = (const char *)t_at_page_end(slot, rec, len);
	int rc = dime_mrec_parse(m, why, g, len);

	if (rc == DIME_OK) {
		T_CHECK(**why == 0, "parse ok but why = \"%s\", want \"\"", *why);
	} else {
		T_CHECK(mrec_is_zero(m), "parse failed (%s) but the record is not zeroed",
			rc_name(rc));
		T_CHECK(*why != NULL && **why != 0, "parse failed (%s) without a reason",
			rc_name(rc));
	}
	return rc;
}

/* ---- the interop probes, read from the shared JSON file ---- */

/* Read one JSON string starting at the opening quote *p; unescapes \" \\ \/ \t \n \r.
 * Returns the malloc'd text (length in *len) and advances *p past the closing quote. */
static char *
json_string(const char **p, size_t *len)
{
	const char *s = *p + 1;
	char *out = malloc(strlen(s) + 1);
	size_t n = 0;

	if (out == NULL)
		abort();
	for (; *s != 0 && *s != '"'; s++) {
		if (*s != '\\') {
			out[n++] = *s;
			continue;
		}
		s++;
		switch (*s) {
		case 't': out[n++] = '\t'; break;
		case 'n': out[n++] = '\n'; break;
		case 'r': out[n++] = '\r'; break;
		case '"':
		case '\\':
		case '/': out[n++] = *s; break;
		default:
			t_fail("probes json: unsupported escape \\%c", *s);
			out[n++] = '?';
			break;
		}
	}
	out[n] = 0;
	*len = n;
	*p = *s == '"' ? s + 1 : s;
	return out;
}

/* The value of the next "key": "..." at or after *p, or NULL. */
static char *
json_next(const char **p, const char *key, size_t *len)
{
	char pat[64];
	const char *k;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	if ((k = strstr(*p, pat)) == NULL)
		return NULL;
	k += strlen(pat);
	while (*k == ' ' || *k == ':' || *k == '\n' || *k == '\t' || *k == '\r')
		k++;
	if (*k != '"')
		return NULL;
	*p = k;
	return json_string(p, len);
}

static void
test_probe_file(void)
{
	size_t len, n = 0;
	char *json = (char *)t_read("mrec-parse-probes.json", &len);
	const char *p = json;
	char *rec;
	size_t rec_len;

	while ((rec = json_next(&p, "record", &rec_len)) != NULL) {
		size_t vl;
		char *want = json_next(&p, "project", &vl);
		struct dime_mrec m;
		const char *why = NULL;
		int rc;

		if (want == NULL) {
			t_fail("probe %zu: no project verdict", n);
			free(rec);
			break;
		}
		rc = parse_guarded(&m, &why, rec, rec_len, 0);
		T_CHECK((rc == DIME_OK) == (strcmp(want, "accept") == 0),
			"probe %zu \"%s\": got %s (%s), want %s", n, rec, rc_name(rc), why, want);
		free(want);
		free(rec);
		n++;
	}
	T_CHECK(n >= 16, "probe file: read %zu probes, want at least 16", n);
	free(json);
}

/* ---- rules: one row per rule; accepted rows also give the parsed meaning ---- */

struct rule {
	const char *name, *rec;
	int rc;
	const char *why; /* exact reason for rejections */
	size_t poks, tls, dx, syn;
	uint32_t exp;
	enum dime_mrec_policy pol;
	enum dime_mrec_subdomain sub;
	const char *dx0; /* first dx, or NULL */
};

#define OK_(n, r, np, nt, nd, ns, e, p, s, d)                                                      \
	{                                                                                          \
		n, r, DIME_OK, "", np, nt, nd, ns, e, p, s, d                                      \
	}
#define BAD(n, r, c, w)                                                                            \
	{                                                                                          \
		n, r, c, w, 0, 0, 0, 0, 0, 0, 0, NULL                                              \
	}
#define MIX  DIME_POL_MIXED
#define EXPR DIME_POL_EXPERIMENTAL
#define STR  DIME_POL_STRICT
#define SMIX DIME_SUB_MIXED
#define SEXP DIME_SUB_EXPLICIT
#define SSTR DIME_SUB_STRICT

#define W_NOPOK	  "pok: at least one primary key is required"
#define W_POKLEN  "pok: value must be exactly 43 base64 characters without padding"
#define W_POKB64  "pok: value is not valid base64"
#define W_POKPT	  "pok: value is not a valid Ed25519 public key"
#define W_TLSLEN  "tls: value must be exactly 86 base64 characters without padding"
#define W_TLSB64  "tls: value is not valid base64"
#define W_VER	  "ver: the only supported version is 1"
#define W_EXP	  "exp: value must be a whole number of days from 1 to 3650"
#define W_POL	  "pol: value must be experimental, mixed or strict"
#define W_SUB	  "sub: value must be explicit, mixed or strict (relaxed and loose read as mixed)"
#define W_DXIP	  "dx: an IP address is not allowed, only a host name"
#define W_DXHOST  "dx: value is not a valid host name"
#define W_SYNIP	  "syn: an IP address is not allowed, only a host name"
#define W_SYNHOST "syn: value is not a valid host name"

static const struct rule rules[] = {
    /* The 16 probes of mrec-parse-probes.json, with what they mean. */
    OK_("probe 1", "ver=1 pok=" PA " pol=experimental sub=strict", 1, 0, 0, 0, 30, EXPR, SSTR,
	NULL),
    OK_("probe 2", "pok=" PA, 1, 0, 0, 0, 30, MIX, SMIX, NULL),
    OK_("probe 3 long name", "primary=" PA, 1, 0, 0, 0, 30, MIX, SMIX, NULL),
    OK_("probe 4 upper-case name", "POK=" PA, 1, 0, 0, 0, 30, MIX, SMIX, NULL),
    BAD("probe 5 padded pok", "pok=" PA "=", DIME_E_MALFORMED, W_POKLEN),
    BAD("probe 6 44-char pok", "pok=" PA "A", DIME_E_MALFORMED, W_POKLEN),
    OK_("probe 7 semicolons", "pok=" PA ";pol=mixed;sub=explicit", 1, 0, 0, 0, 30, MIX, SEXP, NULL),
    OK_("probe 8 tab", "pok=" PA "\tpol=mixed", 1, 0, 0, 0, 30, MIX, SMIX, NULL),
    OK_("probe 9 sub=mixed", "pok=" PA " pol=mixed sub=mixed", 1, 0, 0, 0, 30, MIX, SMIX, NULL),
    OK_("probe 10 sub=relaxed", "pok=" PA " pol=mixed sub=relaxed", 1, 0, 0, 0, 30, MIX, SMIX,
	NULL),
    OK_("probe 11 sub=loose", "pok=" PA " sub=loose", 1, 0, 0, 0, 30, MIX, SMIX, NULL),
    OK_("probe 12 dx syn exp",
	"pok=" PA " pol=strict dx=dmtp.alpha.example dx=dmtp2.alpha.example exp=30 "
	"syn=mirror.alpha.example",
	1, 0, 2, 1, 30, STR, SMIX, "dmtp.alpha.example"),
    OK_("probe 13 tls", "pok=" PA " tls=" TV, 1, 1, 0, 0, 30, MIX, SMIX, NULL),
    BAD("probe 14 padded tls", "pok=" PA " tls=" TV "==", DIME_E_MALFORMED, W_TLSLEN),
    BAD("probe 15 ver=2", "ver=2 pok=" PA, DIME_E_MALFORMED, W_VER),
    OK_("probe 16 same pok twice", "version=1 pok=" PA " pok=" PA, 2, 0, 0, 0, 30, MIX, SMIX, NULL),

    /* Names, long and short, any case; values any case. */
    OK_("long names",
	"version=1 primary=" PA " tls=" TV " deliver=dmtp.a.example syndicates=m.a.example "
	"expiry=7 policy=strict subdomain=explicit",
	1, 1, 1, 1, 7, STR, SEXP, "dmtp.a.example"),
    OK_("upper-case everything", "VER=1 PRIMARY=" PA " POL=STRICT SUB=EXPLICIT DX=DMTP.A.EXAMPLE",
	1, 0, 1, 0, 30, STR, SEXP, "DMTP.A.EXAMPLE"),
    OK_("mixed-case values", "Pok=" PA " PoLiCy=ExPeRiMeNtAl SubDomain=Relaxed", 1, 0, 0, 0, 30,
	EXPR, SMIX, NULL),
    OK_("sub=LOOSE", "pok=" PA " sub=LOOSE", 1, 0, 0, 0, 30, MIX, SMIX, NULL),
    OK_("sub=strict", "pok=" PA " sub=strict", 1, 0, 0, 0, 30, MIX, SSTR, NULL),

    /* Separators and whitespace. */
    OK_("runs of separators", "  \t;;pok=" PA " ;\t pol=strict  ;", 1, 0, 0, 0, 30, STR, SMIX,
	NULL),
    OK_("CRLF at the end", "pok=" PA "\r\n", 1, 0, 0, 0, 30, MIX, SMIX, NULL),
    OK_("fields on lines", "pok=" PA "\npol=strict\n", 1, 0, 0, 0, 30, STR, SMIX, NULL),
    OK_("whitespace only around pok", "\t pok=" PA " \t", 1, 0, 0, 0, 30, MIX, SMIX, NULL),

    /* Unknown fields are ignored, whatever their shape. */
    OK_("unknown fields", "ttl=1776 pok=" PA " sig=abc foo bar= =x x=y=z tcp=true", 1, 0, 0, 0, 30,
	MIX, SMIX, NULL),
    OK_("name that merely starts like pok", "pokx=1 poke=2 pok=" PA " dxx=1.2.3.4", 1, 0, 0, 0, 30,
	MIX, SMIX, NULL),

    /* Unique fields: the first wins; every instance must still be valid. */
    OK_("first pol wins", "pok=" PA " pol=strict pol=experimental", 1, 0, 0, 0, 30, STR, SMIX,
	NULL),
    OK_("first sub wins", "pok=" PA " sub=explicit subdomain=strict", 1, 0, 0, 0, 30, MIX, SEXP,
	NULL),
    OK_("first exp wins", "exp=7 pok=" PA " expiry=9", 1, 0, 0, 0, 7, MIX, SMIX, NULL),
    OK_("ver twice", "ver=1 pok=" PA " version=1", 1, 0, 0, 0, 30, MIX, SMIX, NULL),
    BAD("later invalid pol", "pok=" PA " pol=strict pol=bogus", DIME_E_MALFORMED, W_POL),
    BAD("later ver=2", "ver=1 pok=" PA " ver=2", DIME_E_MALFORMED, W_VER),

    /* pok. */
    BAD("no pok", "pol=strict", DIME_E_MALFORMED, W_NOPOK),
    BAD("empty record", "", DIME_E_MALFORMED, W_NOPOK),
    BAD("only separators", " ;\t; ", DIME_E_MALFORMED, W_NOPOK),
    BAD("42-char pok", "pok=G0uWecEWfHbZ8IMAOw5bsYL7mGS5opytFYyZkChFKa", DIME_E_MALFORMED,
	W_POKLEN),
    BAD("pok with a bad character", "pok=G0uWecEWfHbZ8IMAOw5bsYL7mGS5o*ytFYyZkChFKaQ",
	DIME_E_MALFORMED, W_POKB64),
    BAD("pok with non-canonical bits", "pok=G0uWecEWfHbZ8IMAOw5bsYL7mGS5opytFYyZkChFKaR",
	DIME_E_MALFORMED, W_POKB64),
    BAD("pok of url-safe base64", "pok=G0uWecEWfHbZ8IMAOw5bsYL7mGS5opytFYyZkChFK-_",
	DIME_E_MALFORMED, W_POKB64),
    BAD("pok ending in '='", "pok=G0uWecEWfHbZ8IMAOw5bsYL7mGS5opytFYyZkChFKa=", DIME_E_MALFORMED,
	W_POKB64),
    BAD("pok of a small-order point", "pok=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	DIME_E_MALFORMED, W_POKPT),
    BAD("pok of the identity", "pok=AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", DIME_E_MALFORMED,
	W_POKPT),
    BAD("one bad pok among good", "pok=" PA " pok=" PB " pok=" PA "=", DIME_E_MALFORMED, W_POKLEN),
    OK_("two different poks", "pok=" PA " pok=" PB, 2, 0, 0, 0, 30, MIX, SMIX, NULL),
    BAD("pok without '='", "pok", DIME_E_MALFORMED, "pok: a field needs a value (name=value)"),
    BAD("pok= empty", "pok= pol=strict", DIME_E_MALFORMED,
	"pok: a field needs a value (name=value)"),
    BAD("PRIMARY without value", "pok=" PA " PRIMARY", DIME_E_MALFORMED,
	"pok: a field needs a value (name=value)"),
    BAD("pok==value", "pok==" PA, DIME_E_MALFORMED, W_POKLEN),

    /* tls. */
    BAD("85-char tls",
	"pok=" PA " tls=VZuUmIHUFXDteqkbxw5GKAWGoFkEeQd3K1/"
	"zIiR1Rd5x4gdXRrKPk6akrPqU4Ff2qusGsLi8wg1nkqU4ZXqOD",
	DIME_E_MALFORMED, W_TLSLEN),
    BAD("tls with a bad character",
	"pok=" PA " tls=VZuUmIHUFXDteqkbxw5GKAWGoFkEeQd3K1/"
	"zIiR1Rd5x4gdXRrKPk6akrPqU4Ff2qusGsLi8wg1nkqU4ZXq.Dw",
	DIME_E_MALFORMED, W_TLSB64),
    BAD("tls with non-canonical bits",
	"pok=" PA " tls=VZuUmIHUFXDteqkbxw5GKAWGoFkEeQd3K1/"
	"zIiR1Rd5x4gdXRrKPk6akrPqU4Ff2qusGsLi8wg1nkqU4ZXqODx",
	DIME_E_MALFORMED, W_TLSB64),
    BAD("tls empty", "pok=" PA " tls=", DIME_E_MALFORMED,
	"tls: a field needs a value (name=value)"),
    OK_("two tls", "pok=" PA " tls=" TV " tls=" TV, 1, 2, 0, 0, 30, MIX, SMIX, NULL),

    /* ver. */
    BAD("ver=0", "ver=0 pok=" PA, DIME_E_MALFORMED, W_VER),
    BAD("ver=1.0", "ver=1.0 pok=" PA, DIME_E_MALFORMED, W_VER),
    BAD("ver=1x", "ver=1x pok=" PA, DIME_E_MALFORMED, W_VER),
    BAD("ver=+1", "ver=+1 pok=" PA, DIME_E_MALFORMED, W_VER),
    BAD("ver empty", "ver= pok=" PA, DIME_E_MALFORMED, "ver: a field needs a value (name=value)"),
    OK_("ver=01", "ver=01 pok=" PA, 1, 0, 0, 0, 30, MIX, SMIX, NULL),

    /* exp. */
    OK_("exp=1", "pok=" PA " exp=1", 1, 0, 0, 0, 1, MIX, SMIX, NULL),
    OK_("exp=3650", "pok=" PA " exp=3650", 1, 0, 0, 0, 3650, MIX, SMIX, NULL),
    OK_("exp=0007", "pok=" PA " exp=0007", 1, 0, 0, 0, 7, MIX, SMIX, NULL),
    BAD("exp=0", "pok=" PA " exp=0", DIME_E_MALFORMED, W_EXP),
    BAD("exp=3651", "pok=" PA " exp=3651", DIME_E_MALFORMED, W_EXP),
    BAD("exp=-1", "pok=" PA " exp=-1", DIME_E_MALFORMED, W_EXP),
    BAD("exp=30d", "pok=" PA " exp=30d", DIME_E_MALFORMED, W_EXP),
    BAD("exp overflow", "pok=" PA " exp=18446744073709551646", DIME_E_MALFORMED, W_EXP),
    BAD("exp empty", "pok=" PA " exp=;", DIME_E_MALFORMED,
	"exp: a field needs a value (name=value)"),

    /* pol and sub. */
    BAD("pol=bogus", "pok=" PA " pol=bogus", DIME_E_MALFORMED, W_POL),
    BAD("pol=relaxed", "pok=" PA " pol=relaxed", DIME_E_MALFORMED, W_POL),
    BAD("pol=mixedsyn=... (genrec bug)", "pok=" PA " pol=mixedsyn=mirror.alpha.example",
	DIME_E_MALFORMED, W_POL),
    BAD("pol=strictx", "pok=" PA " pol=strictx", DIME_E_MALFORMED, W_POL),
    BAD("sub=bogus", "pok=" PA " sub=bogus", DIME_E_MALFORMED, W_SUB),
    BAD("sub=experimental", "pok=" PA " sub=experimental", DIME_E_MALFORMED, W_SUB),
    BAD("sub empty", "pok=" PA " sub=", DIME_E_MALFORMED,
	"sub: a field needs a value (name=value)"),
    BAD("policy without '='", "pok=" PA " policy", DIME_E_MALFORMED,
	"pol: a field needs a value (name=value)"),

    /* dx and syn: host names only. */
    OK_("dx with a final dot", "pok=" PA " dx=dmtp.alpha.example.", 1, 0, 1, 0, 30, MIX, SMIX,
	"dmtp.alpha.example."),
    OK_("dx with hyphens and digits", "pok=" PA " dx=mx-1.alpha-2.example", 1, 0, 1, 0, 30, MIX,
	SMIX, "mx-1.alpha-2.example"),
    OK_("dx IDN", "pok=" PA " dx=dmtp.xn--bcher-kva.example", 1, 0, 1, 0, 30, MIX, SMIX,
	"dmtp.xn--bcher-kva.example"),
    OK_("dx numeric labels but a real TLD", "pok=" PA " dx=192.0.2.1.example", 1, 0, 1, 0, 30, MIX,
	SMIX, "192.0.2.1.example"),
    BAD("dx IPv4", "pok=" PA " dx=192.0.2.1", DIME_E_MALFORMED, W_DXIP),
    BAD("dx IPv4 with final dot", "pok=" PA " dx=192.0.2.1.", DIME_E_MALFORMED, W_DXIP),
    BAD("dx short IPv4", "pok=" PA " dx=10.1", DIME_E_MALFORMED, W_DXIP),
    BAD("dx IPv4 as one number", "pok=" PA " dx=3221225985", DIME_E_MALFORMED, W_DXIP),
    BAD("dx bracketed IPv4", "pok=" PA " dx=[192.0.2.1]", DIME_E_MALFORMED, W_DXIP),
    BAD("dx IPv6", "pok=" PA " dx=2001:db8::1", DIME_E_MALFORMED, W_DXIP),
    BAD("dx IPv6 loopback", "pok=" PA " dx=::1", DIME_E_MALFORMED, W_DXIP),
    BAD("dx bracketed IPv6 with port", "pok=" PA " dx=[2001:db8::1]:26", DIME_E_MALFORMED, W_DXIP),
    BAD("dx host:port", "pok=" PA " dx=dmtp.alpha.example:26", DIME_E_MALFORMED, W_DXHOST),
    BAD("dx IPv4-mapped IPv6", "pok=" PA " dx=::ffff:192.0.2.1", DIME_E_MALFORMED, W_DXIP),
    BAD("dx hex IPv4", "pok=" PA " dx=0x7f.0x1", DIME_E_MALFORMED, W_DXHOST),
    BAD("dx all-numeric TLD", "pok=" PA " dx=dmtp.alpha.123", DIME_E_MALFORMED, W_DXHOST),
    BAD("dx single label", "pok=" PA " dx=localhost", DIME_E_MALFORMED, W_DXHOST),
    BAD("dx leading hyphen", "pok=" PA " dx=-dmtp.alpha.example", DIME_E_MALFORMED, W_DXHOST),
    BAD("dx trailing hyphen", "pok=" PA " dx=dmtp-.alpha.example", DIME_E_MALFORMED, W_DXHOST),
    BAD("dx empty label", "pok=" PA " dx=dmtp..example", DIME_E_MALFORMED, W_DXHOST),
    BAD("dx leading dot", "pok=" PA " dx=.alpha.example", DIME_E_MALFORMED, W_DXHOST),
    BAD("dx two final dots", "pok=" PA " dx=alpha.example..", DIME_E_MALFORMED, W_DXHOST),
    BAD("dx underscore", "pok=" PA " dx=dmtp_1.alpha.example", DIME_E_MALFORMED, W_DXHOST),
    BAD("dx url", "pok=" PA " dx=dmtp://alpha.example", DIME_E_MALFORMED, W_DXHOST),
    BAD("dx non-ASCII", "pok=" PA " dx=d\xc3\xa9.example", DIME_E_MALFORMED, W_DXHOST),
    BAD("dx empty", "pok=" PA " dx=", DIME_E_MALFORMED, "dx: a field needs a value (name=value)"),
    BAD("deliver IPv4", "pok=" PA " deliver=192.0.2.1", DIME_E_MALFORMED, W_DXIP),
    BAD("syn IPv4", "pok=" PA " syn=198.51.100.7", DIME_E_MALFORMED, W_SYNIP),
    BAD("syndicates IPv6", "pok=" PA " syndicates=2001:db8::7", DIME_E_MALFORMED, W_SYNIP),
    BAD("syn bad host", "pok=" PA " syn=mirror..example", DIME_E_MALFORMED, W_SYNHOST),
    OK_("syn twice", "pok=" PA " syn=a.example syn=b.example", 1, 0, 0, 2, 30, MIX, SMIX, NULL),
};

static void
check_rule_meaning(const struct rule *r, const struct dime_mrec *m)
{
	T_CHECK(m->version == 1, "%s: version got %u, want 1", r->name, m->version);
	T_CHECK(m->n_poks == r->poks, "%s: poks got %zu, want %zu", r->name, m->n_poks, r->poks);
	T_CHECK(m->n_tls == r->tls, "%s: tls got %zu, want %zu", r->name, m->n_tls, r->tls);
	T_CHECK(m->n_dx == r->dx, "%s: dx got %zu, want %zu", r->name, m->n_dx, r->dx);
	T_CHECK(m->n_syn == r->syn, "%s: syn got %zu, want %zu", r->name, m->n_syn, r->syn);
	T_CHECK(m->expiry_days == r->exp, "%s: exp got %u, want %u", r->name, m->expiry_days,
		r->exp);
	T_CHECK(m->policy == r->pol, "%s: pol got %d, want %d", r->name, (int)m->policy,
		(int)r->pol);
	T_CHECK(m->subdomain == r->sub, "%s: sub got %d, want %d", r->name, (int)m->subdomain,
		(int)r->sub);
	if (r->dx0 != NULL && m->n_dx > 0)
		T_CHECK(m->dx[0].len == strlen(r->dx0) &&
			    memcmp(m->dx[0].p, r->dx0, m->dx[0].len) == 0,
			"%s: dx0 got %.*s, want %s", r->name, (int)m->dx[0].len,
			(const char *)m->dx[0].p, r->dx0);
}

static void
test_rules(void)
{
	for (size_t i = 0; i < N_ELEMS(rules); i++) {
		const struct rule *r = &rules[i];
		struct dime_mrec m;
		const char *why = NULL;
		int rc = parse_guarded(&m, &why, r->rec, strlen(r->rec), 0);

		T_CHECK(rc == r->rc, "%s: got %s (%s), want %s", r->name, rc_name(rc), why,
			rc_name(r->rc));
		if (rc != r->rc)
			continue;
		if (rc != DIME_OK) {
			T_CHECK(strcmp(why, r->why) == 0, "%s: reason got \"%s\", want \"%s\"",
				r->name, why, r->why);
			continue;
		}
		check_rule_meaning(r, &m);
	}
	/* POK bytes: the alpha key decodes to what base64 says. */
	{
		struct dime_mrec m;
		const char *why;
		uint8_t want[32];
		size_t n;

		T_CHECK(dime_b64_decode(want, sizeof(want), &n, PA, 43, DIME_B64_NOPAD) == DIME_OK,
			"decode PA");
		T_CHECK(dime_mrec_parse(&m, &why, "pok=" PA " pok=" PB, 4 + 43 + 5 + 43) ==
				DIME_OK &&
			    memcmp(m.poks[0], want, 32) == 0,
			"pok bytes");
		/* NULL why is allowed; NULL text with length 0 is an empty record. */
		T_CHECK(dime_mrec_parse(&m, NULL, NULL, 0) == DIME_E_MALFORMED && mrec_is_zero(&m),
			"NULL empty record");
		/* Views borrow the input. */
		{
			static const char rec[] = "pok=" PA " dx=dmtp.alpha.example";

			T_CHECK(dime_mrec_parse(&m, &why, rec, sizeof(rec) - 1) == DIME_OK &&
				    m.dx[0].p == (const uint8_t *)rec + 51 && m.dx[0].len == 18,
				"dx view does not borrow the input");
		}
	}
}

/* ---- limits: record size and values per field ---- */

static void
make_pok(char out[44], uint8_t pub[32], unsigned i)
{
	uint8_t seed[32];
	size_t n;

	memset(seed, 0, sizeof(seed));
	seed[0] = (uint8_t)i;
	seed[1] = (uint8_t)(i >> 8);
	seed[31] = 0x5a;
	if (dime_ed25519_pub(pub, seed) != DIME_OK ||
	    dime_b64_encode(out, 44, &n, pub, 32, DIME_B64_NOPAD) != DIME_OK || n != 43)
		abort();
}

static void
test_limits(void)
{
	static const char *const fields[] = {"pok", "tls", "dx", "syn"};
	static char rec[DIME_MREC_MAX_BYTES + 512];
	struct dime_mrec m;
	const char *why;
	size_t n;
	int rc;

	for (size_t f = 0; f < N_ELEMS(fields); f++) {
		for (unsigned count = 15; count <= 17; count++) {
			n = (size_t)snprintf(rec, sizeof(rec), "pok=%s", PB);
			for (unsigned k = 0; k < count; k++) {
				char pok[44];
				uint8_t pub[32];

				make_pok(pok, pub, k);
				if (f == 0)
					n += (size_t)snprintf(rec + n, sizeof(rec) - n, " pok=%s",
							      pok);
				else if (f == 1)
					n += (size_t)snprintf(rec + n, sizeof(rec) - n, " tls=%s",
							      TV);
				else
					n +=
					    (size_t)snprintf(rec + n, sizeof(rec) - n,
							     " %s=h%u.alpha.example", fields[f], k);
			}
			/* For pok the fixed PB counts too: 15 + 1 and 16 + 1 values. */
			rc = parse_guarded(&m, &why, rec, n, 0);
			{
				unsigned total = count + (f == 0 ? 1u : 0u);
				int want = total > DIME_MREC_MAX_VALUES ? DIME_E_LIMIT : DIME_OK;
				char want_why[64];

				snprintf(want_why, sizeof(want_why), "%s: more than 16 values",
					 fields[f]);
				T_CHECK(rc == want, "%u x %s: got %s (%s), want %s", total,
					fields[f], rc_name(rc), why, rc_name(want));
				if (want == DIME_E_LIMIT)
					T_CHECK(strcmp(why, want_why) == 0,
						"%u x %s: reason \"%s\"", total, fields[f], why);
			}
		}
	}
	/* Exactly 4096 bytes (padded with separators) is fine; 4097 is over. */
	memset(rec, ' ', sizeof(rec));
	memcpy(rec, "pok=" PA, 47);
	rc = parse_guarded(&m, &why, rec, DIME_MREC_MAX_BYTES, 0);
	T_CHECK(rc == DIME_OK, "4096-byte record: got %s (%s), want ok", rc_name(rc), why);
	rc = parse_guarded(&m, &why, rec, DIME_MREC_MAX_BYTES + 1, 0);
	T_CHECK(rc == DIME_E_LIMIT && strcmp(why, "record: longer than 4096 bytes") == 0,
		"4097-byte record: got %s (%s), want length over limit", rc_name(rc), why);

	/* Host-name lengths: a 63-character label and a 253-character name are the maximum. */
	{
		char host[300];
		size_t hl = 0;

		memset(host, 'a', 63);
		memcpy(host + 63, ".example", 9);
		n = (size_t)snprintf(rec, sizeof(rec), "pok=%s dx=%s", PA, host);
		rc = parse_guarded(&m, &why, rec, n, 0);
		T_CHECK(rc == DIME_OK, "63-char label: got %s (%s)", rc_name(rc), why);
		memset(host, 'a', 64);
		memcpy(host + 64, ".example", 9);
		n = (size_t)snprintf(rec, sizeof(rec), "pok=%s dx=%s", PA, host);
		rc = parse_guarded(&m, &why, rec, n, 0);
		T_CHECK(rc == DIME_E_MALFORMED && strcmp(why, W_DXHOST) == 0,
			"64-char label: got %s (%s)", rc_name(rc), why);
		/* 3 x (63 + '.') = 192, + 53 letters + ".example" (8) = 253. */
		for (int l = 0; l < 3; l++) {
			memset(host + hl, 'b', 63);
			hl += 63;
			host[hl++] = '.';
		}
		memset(host + hl, 'c', 53);
		hl += 53;
		memcpy(host + hl, ".example", 9);
		hl += 8;
		T_CHECK(hl == 253, "host length %zu", hl);
		n = (size_t)snprintf(rec, sizeof(rec), "pok=%s dx=%s", PA, host);
		rc = parse_guarded(&m, &why, rec, n, 0);
		T_CHECK(rc == DIME_OK, "253-char name: got %s (%s)", rc_name(rc), why);
		n = (size_t)snprintf(rec, sizeof(rec), "pok=%s dx=%s.", PA, host);
		rc = parse_guarded(&m, &why, rec, n, 0);
		T_CHECK(rc == DIME_OK, "253-char name with final dot: got %s (%s)", rc_name(rc),
			why);
		n = (size_t)snprintf(rec, sizeof(rec), "pok=%s dx=c%s", PA, host);
		rc = parse_guarded(&m, &why, rec, n, 0);
		T_CHECK(rc == DIME_E_MALFORMED, "254-char name: got %s (%s)", rc_name(rc), why);
	}
}

/* ---- the genrec records ---- */

static void
test_genrec(void)
{
	static const struct {
		const char *file;
		int rc;
		const char *why;
		size_t tls, dx;
		enum dime_mrec_policy pol;
		enum dime_mrec_subdomain sub;
	} g[] = {
	    {"mrec-genrec-minimal.txt", DIME_OK, "", 0, 0, EXPR, SSTR},
	    {"mrec-genrec-tls.txt", DIME_OK, "", 1, 1, STR, SSTR},
	    /* genrec writes "pol=mixedsyn=..." (no space before syn): pol's value is then
	     * "mixedsyn=mirror.alpha.example", not a policy. The reference rejects it too. */
	    {"mrec-genrec-syndicate.txt", DIME_E_MALFORMED, W_POL, 0, 0, MIX, SMIX},
	};

	for (size_t i = 0; i < N_ELEMS(g); i++) {
		size_t len;
		char *txt = (char *)t_read(g[i].file, &len);
		struct dime_mrec m;
		const char *why;
		int rc = parse_guarded(&m, &why, txt, len, 0);

		T_CHECK(rc == g[i].rc, "%s: got %s (%s), want %s", g[i].file, rc_name(rc), why,
			rc_name(g[i].rc));
		T_CHECK(strcmp(why, g[i].why) == 0, "%s: reason got \"%s\", want \"%s\"", g[i].file,
			why, g[i].why);
		if (rc == DIME_OK) {
			T_CHECK(m.n_poks == 1 && m.n_tls == g[i].tls && m.n_dx == g[i].dx &&
				    m.policy == g[i].pol && m.subdomain == g[i].sub,
				"%s: got poks %zu tls %zu dx %zu pol %d sub %d", g[i].file,
				m.n_poks, m.n_tls, m.n_dx, (int)m.policy, (int)m.subdomain);
		}
		free(txt);
	}
}

/* ---- generate -> parse ---- */

struct keyset {
	char b64[DIME_MREC_MAX_VALUES][44];
	uint8_t pub[DIME_MREC_MAX_VALUES][32];
};

static char hosts[DIME_MREC_MAX_VALUES][40];

static void
fill_mrec(struct dime_mrec *m, const struct keyset *ks, size_t np, size_t nt, size_t nd, size_t ns,
	  uint32_t exp, int pol, int sub)
{
	memset(m, 0, sizeof(*m));
	m->version = 1;
	m->expiry_days = exp;
	m->policy = (enum dime_mrec_policy)pol;
	m->subdomain = (enum dime_mrec_subdomain)sub;
	m->n_poks = np;
	for (size_t i = 0; i < np; i++)
		memcpy(m->poks[i], ks->pub[i], 32);
	m->n_tls = nt;
	for (size_t i = 0; i < nt; i++)
		for (size_t k = 0; k < DIME_SIG_BYTES; k++)
			m->tls[i][k] = (uint8_t)(i * 131 + k * 7 + 1);
	m->n_dx = nd;
	for (size_t i = 0; i < nd; i++) {
		m->dx[i].p = (const uint8_t *)hosts[i];
		m->dx[i].len = strlen(hosts[i]);
	}
	m->n_syn = ns;
	for (size_t i = 0; i < ns; i++) {
		m->syn[i].p = (const uint8_t *)hosts[DIME_MREC_MAX_VALUES - 1 - i];
		m->syn[i].len = strlen(hosts[DIME_MREC_MAX_VALUES - 1 - i]);
	}
}

/* Split rec, check the pieces, and return how many strings it took (0 on failure). */
static size_t
split_check(const char *what, const char *rec, size_t len)
{
	struct dime_view parts[64];
	size_t n = 99, at = 0;
	int rc = dime_mrec_split(parts, N_ELEMS(parts), &n, rec, len);

	if (rc != DIME_OK) {
		t_fail("%s: split got %s, want ok", what, rc_name(rc));
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		char last;

		T_CHECK(parts[i].len > 0 && parts[i].len <= DIME_MREC_TXT_STRING_MAX,
			"%s: string %zu has %zu bytes", what, i, parts[i].len);
		T_CHECK(parts[i].p == (const uint8_t *)rec + at, "%s: string %zu not contiguous",
			what, i);
		last = (char)parts[i].p[parts[i].len - 1];
		if (i + 1 < n)
			T_CHECK(last == ' ' || last == ';' || last == '\t' || last == '\n' ||
				    last == '\r',
				"%s: string %zu ends in '%c', want a separator", what, i, last);
		at += parts[i].len;
	}
	T_CHECK(at == len, "%s: strings cover %zu of %zu bytes", what, at, len);
	return n;
}

static void
test_generate(void)
{
	static const size_t n_poks[] = {1, 2, 16}, n_tls[] = {0, 1, 3, 16}, n_dx[] = {0, 1, 16},
			    n_syn[] = {0, 2};
	static const uint32_t exps[] = {1, 30, 365, 3650};
	struct keyset ks;
	struct dime_mrec m, back;
	static char out[16384];
	size_t combos = 0;

	for (unsigned i = 0; i < DIME_MREC_MAX_VALUES; i++) {
		make_pok(ks.b64[i], ks.pub[i], i);
		snprintf(hosts[i], sizeof(hosts[i]), "dmtp%u.Alpha-%u.example", i, i * 7);
	}
	for (size_t a = 0; a < N_ELEMS(n_poks); a++)
		for (size_t b = 0; b < N_ELEMS(n_tls); b++)
			for (size_t c = 0; c < N_ELEMS(n_dx); c++)
				for (size_t d = 0; d < N_ELEMS(n_syn); d++)
					for (size_t e = 0; e < N_ELEMS(exps); e++)
						for (int pol = 0; pol <= 2; pol++)
							for (int sub = 0; sub <= 2; sub++) {
								size_t need = 0, len = 0;
								const char *why;
								char what[128];
								int rc;

								fill_mrec(&m, &ks, n_poks[a],
									  n_tls[b], n_dx[c],
									  n_syn[d], exps[e], pol,
									  sub);
								snprintf(what, sizeof(what),
									 "gen p%zu t%zu d%zu s%zu "
									 "e%u pol%d sub%d",
									 n_poks[a], n_tls[b],
									 n_dx[c], n_syn[d], exps[e],
									 pol, sub);
								rc = dime_mrec_generate(NULL, 0,
											&need, &m);
								T_CHECK(rc == DIME_OK && need > 0,
									"%s: size got %s", what,
									rc_name(rc));
								rc = dime_mrec_generate(out, need,
											&len, &m);
								T_CHECK(
								    rc == DIME_E_NOSPACE &&
									len == 0 && out[0] == 0,
								    "%s: cap without NUL room got "
								    "%s, want buffer too small",
								    what, rc_name(rc));
								rc = dime_mrec_generate(
								    out, need + 1, &len, &m);
								T_CHECK(
								    rc == DIME_OK && len == need &&
									out[len] == 0 &&
									strlen(out) == len,
								    "%s: got %s len %zu, want ok "
								    "len %zu",
								    what, rc_name(rc), len, need);
								T_CHECK(strncmp(out, "ver=1 pok=",
										10) == 0,
									"%s: starts \"%.12s\"",
									what, out);
								rc = parse_guarded(&back, &why, out,
										   len, 1);
								T_CHECK(rc == DIME_OK,
									"%s: re-parse got %s (%s)",
									what, rc_name(rc), why);
								/* Views of back point into the
								 * guard copy; compare before it is
								 * replaced. */
								T_CHECK(
								    rc != DIME_OK ||
									mrec_equal(&m, &back),
								    "%s: round trip differs: %s",
								    what, out);
								if (len <= DIME_MREC_MAX_BYTES)
									(void)split_check(what, out,
											  len);
								combos++;
							}
	T_CHECK(combos == 2592, "combos %zu", combos);

	/* The canonical text, byte for byte. */
	{
		static const char want[] =
		    "ver=1 pok=" PA " tls=" TV " dx=dmtp.alpha.example syn=mirror.alpha.example "
		    "exp=7 pol=strict sub=explicit";
		static const char want_default[] = "ver=1 pok=" PA " pol=mixed sub=mixed";
		const char *why;
		size_t len;
		struct dime_mrec p;

		T_CHECK(dime_mrec_parse(
			    &p, &why,
			    "sub=explicit pol=strict exp=7 syn=mirror.alpha.example "
			    "dx=dmtp.alpha.example tls=" TV " pok=" PA " ver=1",
			    strlen("sub=explicit pol=strict exp=7 syn=mirror.alpha.example "
				   "dx=dmtp.alpha.example tls=" TV " pok=" PA " ver=1")) == DIME_OK,
			"canonical input: %s", why);
		T_CHECK(dime_mrec_generate(out, sizeof(out), &len, &p) == DIME_OK &&
			    strcmp(out, want) == 0,
			"canonical: got \"%s\", want \"%s\"", out, want);
		T_CHECK(dime_mrec_parse(&p, &why, "POLICY=Mixed primary=" PA, 21 + 43) == DIME_OK,
			"default input: %s", why);
		T_CHECK(dime_mrec_generate(out, sizeof(out), &len, &p) == DIME_OK &&
			    strcmp(out, want_default) == 0,
			"defaults: got \"%s\", want \"%s\" (exp=30 is the default, left out)", out,
			want_default);
	}

	/* Structs that would not parse back: DIME_E_INVALID, out cleared. */
	{
		static const char *const names[] = {
		    "no pok",	"bad pok point", "version 2", "expiry 0", "expiry 3651",
		    "policy 3", "subdomain 3",	 "dx IPv4",   "syn IPv6", "dx NULL",
		    "17 dx",	"17 tls",	 "17 pok",    "dx empty", "syn with space",
		};
		static const char ip4[] = "192.0.2.1", ip6[] = "2001:db8::1", sp[] = "a b.example";

		for (size_t i = 0; i < N_ELEMS(names); i++) {
			size_t len = 77;
			int rc;

			fill_mrec(&m, &ks, 2, 1, 1, 1, 30, 1, 1);
			switch (i) {
			case 0: m.n_poks = 0; break;
			case 1: memset(m.poks[1], 0, 32); break;
			case 2: m.version = 2; break;
			case 3: m.expiry_days = 0; break;
			case 4: m.expiry_days = 3651; break;
			case 5: m.policy = (enum dime_mrec_policy)3; break;
			case 6: m.subdomain = (enum dime_mrec_subdomain)3; break;
			case 7: m.dx[0].p = (const uint8_t *)ip4, m.dx[0].len = strlen(ip4); break;
			case 8:
				m.syn[0].p = (const uint8_t *)ip6, m.syn[0].len = strlen(ip6);
				break;
			case 9: m.dx[0].p = NULL; break;
			case 10: m.n_dx = 17; break;
			case 11: m.n_tls = 17; break;
			case 12: m.n_poks = 17; break;
			case 13: m.dx[0].len = 0; break;
			case 14: m.syn[0].p = (const uint8_t *)sp, m.syn[0].len = strlen(sp); break;
			}
			out[0] = 'x';
			rc = dime_mrec_generate(out, sizeof(out), &len, &m);
			T_CHECK(rc == DIME_E_INVALID && len == 0 && out[0] == 0,
				"generate %s: got %s len %zu, want invalid argument", names[i],
				rc_name(rc), len);
			rc = dime_mrec_generate(NULL, 0, &len, &m);
			T_CHECK(rc == DIME_E_INVALID && len == 0, "generate size %s: got %s",
				names[i], rc_name(rc));
		}
	}
}

/* ---- split ---- */

/* A valid record of exactly len bytes: a pok, then unknown filler fields. */
static size_t
record_of(char *rec, size_t len, const char *tail)
{
	size_t n = (size_t)snprintf(rec, len + 1, "pok=%s", PA), tl = tail ? strlen(tail) : 0;

	while (n + tl < len) {
		size_t room = len - n - tl; /* " x=" + filler */
		size_t take = room > 120 ? 100 : room;

		if (take < 4) { /* too short for a field: lengthen the pok run */
			memset(rec + n, ';', take);
			n += take;
			break;
		}
		rec[n++] = ' ';
		rec[n++] = 'x';
		rec[n++] = '=';
		memset(rec + n, 'f', take - 3);
		n += take - 3;
	}
	if (tail != NULL) {
		memcpy(rec + n, tail, tl);
		n += tl;
	}
	rec[n] = 0;
	return n;
}

static void
test_split(void)
{
	static const struct {
		size_t len, want_n;
	} sizes[] = {{47, 1}, {254, 1}, {255, 1}, {256, 2}, {510, 3}, {600, 3}, {4096, 0}};
	static char rec[5000], rec2[5000];
	struct dime_view parts[64];
	size_t n;
	int rc;

	for (size_t i = 0; i < N_ELEMS(sizes); i++) {
		char what[64];
		size_t len = record_of(rec, sizes[i].len, NULL), got;
		const char *g;
		struct dime_mrec a, b;
		const char *why;

		snprintf(what, sizeof(what), "split %zu", sizes[i].len);
		T_CHECK(len == sizes[i].len, "%s: built %zu bytes", what, len);
		got = split_check(what, rec, len);
		if (sizes[i].want_n != 0)
			T_CHECK(got == sizes[i].want_n, "%s: got %zu strings, want %zu", what, got,
				sizes[i].want_n);
		/* Guard page: split reads only what it was given. */
		g = (const char *)t_at_page_end(2, rec, len);
		rc = dime_mrec_split(parts, N_ELEMS(parts), &n, g, len);
		T_CHECK(rc == DIME_OK && n == got, "%s at page end: got %s n %zu", what,
			rc_name(rc), n);
		/* Joined back, the strings parse to the same record. */
		{
			size_t at = 0;

			for (size_t k = 0; k < n; k++) {
				memcpy(rec2 + at, parts[k].p, parts[k].len);
				at += parts[k].len;
			}
			T_CHECK(at == len && memcmp(rec2, rec, len) == 0, "%s: rejoin differs",
				what);
			T_CHECK(dime_mrec_parse(&a, &why, rec, len) == DIME_OK &&
				    dime_mrec_parse(&b, &why, rec2, at) == DIME_OK &&
				    mrec_equal(&a, &b),
				"%s: rejoined record differs in meaning", what);
		}
	}

	/* Field sizes at the edge: a 255-byte field fits a string only as the last field,
	 * since every other string must end with its separator. */
	{
		char field[300];

		memcpy(field, "x=", 2);
		memset(field + 2, 'v', 253); /* 255 bytes */
		field[255] = 0;
		n = (size_t)snprintf(rec, sizeof(rec), "pok=%s %s", PA, field);
		T_CHECK(split_check("255-byte last field", rec, n) == 2, "255-byte last field");
		n = (size_t)snprintf(rec, sizeof(rec), "pok=%s %s pol=strict", PA, field);
		rc = dime_mrec_split(parts, N_ELEMS(parts), &n, rec, strlen(rec));
		T_CHECK(rc == DIME_E_LIMIT && n == 0 && parts[0].p == NULL,
			"255-byte inner field: got %s n %zu, want length over limit", rc_name(rc),
			n);
		field[254] = 0; /* 254 bytes: fits with its separator */
		n = (size_t)snprintf(rec, sizeof(rec), "pok=%s %s pol=strict", PA, field);
		T_CHECK(split_check("254-byte inner field", rec, n) == 3, "254-byte inner field");
		memset(field + 2, 'v', 254);
		field[256] = 0; /* 256 bytes, last */
		n = (size_t)snprintf(rec, sizeof(rec), "pok=%s %s", PA, field);
		rc = dime_mrec_split(parts, N_ELEMS(parts), &n, rec, strlen(rec));
		T_CHECK(rc == DIME_E_LIMIT && n == 0, "256-byte last field: got %s", rc_name(rc));
		/* A 255-byte record without any separator is one string. */
		rc = dime_mrec_split(parts, N_ELEMS(parts), &n, field + 1, 255);
		T_CHECK(rc == DIME_OK && n == 1 && parts[0].len == 255, "255 bytes, no separator");
	}
	/* ';' and tabs are separators too. */
	{
		size_t len = record_of(rec, 600, NULL);

		for (size_t i = 0; i < len; i++)
			if (rec[i] == ' ')
				rec[i] = (char)(i % 2 ? ';' : '\t');
		T_CHECK(split_check("split at ; and tab", rec, len) == 3, "split at ; and tab");
	}
	/* Too few slots, and the empty record. */
	n = record_of(rec, 600, NULL);
	rc = dime_mrec_split(parts, 2, &n, rec, n);
	T_CHECK(rc == DIME_E_NOSPACE && n == 0 && parts[0].p == NULL && parts[1].p == NULL,
		"600 bytes into 2 strings: got %s n %zu", rc_name(rc), n);
	rc = dime_mrec_split(parts, N_ELEMS(parts), &n, "", 0);
	T_CHECK(rc == DIME_OK && n == 0, "empty record: got %s n %zu", rc_name(rc), n);
	rc = dime_mrec_split(parts, 0, &n, "pok=x", 5);
	T_CHECK(rc == DIME_E_NOSPACE && n == 0, "cap 0: got %s", rc_name(rc));
}

/* ---- the tls field ---- */

static uint8_t *
cert_der(size_t *len)
{
	size_t pem_len;
	uint8_t *pem = t_read("tls-cert.pem", &pem_len);
	BIO *bio = BIO_new_mem_buf(pem, (int)pem_len);
	X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	unsigned char *der = NULL;
	int n = x != NULL ? i2d_X509(x, &der) : -1;
	uint8_t *out = NULL;

	if (n > 0 && (out = malloc((size_t)n)) != NULL) {
		memcpy(out, der, (size_t)n);
		*len = (size_t)n;
	}
	OPENSSL_free(der);
	X509_free(x);
	BIO_free(bio);
	free(pem);
	if (out == NULL) {
		fprintf(stderr, "FAIL: cannot read tls-cert.pem as an X.509 certificate\n");
		exit(1);
	}
	return out;
}

static void
test_tls(void)
{
	size_t der_len = 0, len;
	uint8_t *der = cert_der(&der_len), h[DIME_SHA512_BYTES];
	char *txt = (char *)t_read("mrec-genrec-tls.txt", &len);
	struct dime_mrec m, m2;
	const char *why;
	struct dime_ks *ks = NULL;
	uint32_t id = DIME_KS_NONE;
	uint8_t sig[DIME_SIG_BYTES], pub[32];
	int rc;

	/* The reference's tls value (genrec, org-alpha's POK) signs SHA-512(DER), not the DER. */
	T_CHECK(dime_mrec_parse(&m, &why, txt, len) == DIME_OK && m.n_tls == 1,
		"genrec tls record: %s", why);
	dime_sha512(h, der, der_len);
	T_CHECK(dime_ed25519_verify(m.tls[0], m.poks[0], h, sizeof(h)) == DIME_OK,
		"genrec tls: got no signature over SHA-512(DER), want one");
	T_CHECK(dime_ed25519_verify(m.tls[0], m.poks[0], der, der_len) == DIME_E_BADSIG,
		"genrec tls: signature over the DER itself verified, want only the hash form");
	rc = dime_mrec_tls_check(&m, der, der_len);
	T_CHECK(rc == DIME_OK, "genrec tls check: got %s, want ok", rc_name(rc));
	/* The probe record with the same tls value. */
	T_CHECK(dime_mrec_parse(&m2, &why, "pok=" PA " tls=" TV, 4 + 43 + 5 + 86) == DIME_OK &&
		    dime_mrec_tls_check(&m2, der, der_len) == DIME_OK,
		"probe tls record check");
	/* Any other certificate, or another POK, fails. */
	der[der_len / 2] ^= 1;
	rc = dime_mrec_tls_check(&m, der, der_len);
	T_CHECK(rc == DIME_E_BADSIG, "altered certificate: got %s, want bad signature",
		rc_name(rc));
	der[der_len / 2] ^= 1;
	T_CHECK(dime_mrec_parse(&m2, &why, "pok=" PB " tls=" TV, 4 + 43 + 5 + 86) == DIME_OK &&
		    dime_mrec_tls_check(&m2, der, der_len) == DIME_E_BADSIG,
		"tls under another POK: want bad signature");
	T_CHECK(dime_mrec_parse(&m2, &why, "pok=" PA, 47) == DIME_OK &&
		    dime_mrec_tls_check(&m2, der, der_len) == DIME_E_BADSIG,
		"record without tls: want bad signature");
	T_CHECK(dime_mrec_tls_check(&m, der, 0) == DIME_E_BADSIG, "empty certificate");

	/* Our form: a fresh key signs the DER; the match may be any (tls, pok) pair. */
	if (dime_ks_new(&ks) != DIME_OK) {
		t_fail("dime_ks_new");
		goto out;
	}
	rc = dime_ks_generate(ks, &id, DIME_KEY_SIGN);
	T_CHECK(rc == DIME_OK, "ks generate: %s", rc_name(rc));
	T_CHECK(dime_ks_sign_pub(ks, pub, id) == DIME_OK, "ks sign_pub");
	rc = dime_mrec_tls_sign(ks, sig, id, der, der_len);
	T_CHECK(rc == DIME_OK, "tls sign: got %s", rc_name(rc));
	T_CHECK(dime_ed25519_verify(sig, pub, der, der_len) == DIME_OK,
		"our tls value does not verify over the DER");
	memset(&m2, 0, sizeof(m2));
	m2.version = 1, m2.expiry_days = 30, m2.policy = MIX, m2.subdomain = SMIX;
	m2.n_poks = 3;
	memcpy(m2.poks[0], m.poks[0], 32); /* alpha */
	T_CHECK(dime_b64_decode(m2.poks[1], 32, &len, PB, 43, DIME_B64_NOPAD) == DIME_OK, "PB");
	memcpy(m2.poks[2], pub, 32);
	m2.n_tls = 2;
	memset(m2.tls[0], 0x11, DIME_SIG_BYTES);
	memcpy(m2.tls[1], sig, DIME_SIG_BYTES);
	rc = dime_mrec_tls_check(&m2, der, der_len);
	T_CHECK(rc == DIME_OK, "our tls value as the last pair: got %s", rc_name(rc));
	/* Through generate and parse. */
	{
		char out[1024];
		struct dime_mrec m3;

		T_CHECK(dime_mrec_generate(out, sizeof(out), &len, &m2) == DIME_OK &&
			    dime_mrec_parse(&m3, &why, out, len) == DIME_OK &&
			    dime_mrec_tls_check(&m3, der, der_len) == DIME_OK,
			"generated record with our tls value: %s", why);
	}
	m2.n_poks = 2; /* without the signing key */
	T_CHECK(dime_mrec_tls_check(&m2, der, der_len) == DIME_E_BADSIG,
		"our tls value without its POK: want bad signature");
	/* Unknown key id: an error and a zeroed signature. */
	memset(sig, 0xee, sizeof(sig));
	rc = dime_mrec_tls_sign(ks, sig, id + 1000, der, der_len);
	T_CHECK(rc == DIME_E_NOTFOUND, "tls sign unknown key: got %s, want not found", rc_name(rc));
	T_CHECK(sig[0] == 0 && sig[63] == 0, "tls sign failure leaves the signature set");
	/* org-alpha's POK seed signs a value that verifies against the alpha POK. */
	{
		size_t kl;
		uint8_t *key = t_read("org-alpha.pok.ed25519.pem", &kl);
		uint32_t aid = DIME_KS_NONE;

		rc = dime_ks_load(ks, &aid, key, kl);
		free(key);
		T_CHECK(rc == DIME_OK, "load org-alpha POK: got %s", rc_name(rc));
		if (rc == DIME_OK) {
			T_CHECK(dime_mrec_tls_sign(ks, sig, aid, der, der_len) == DIME_OK,
				"alpha sign");
			memcpy(m.tls[0], sig, DIME_SIG_BYTES);
			T_CHECK(dime_mrec_tls_check(&m, der, der_len) == DIME_OK,
				"alpha's tls over the DER: want a match");
		}
	}
out:
	dime_ks_free(ks);
	free(txt);
	free(der);
}

/* ---- robustness: every strict prefix at a guard page, every single-byte mutation ---- */

static const char *const robust_records[] = {
    "ver=1 pok=" PA " tls=" TV " dx=dmtp.alpha.example syn=mirror.alpha.example exp=7 "
    "pol=strict sub=explicit",
    "version=1;primary=" PA ";deliver=dmtp.alpha.example.;policy=Experimental;subdomain=loose",
    "pok=" PA " pok=" PB " ttl=1776",
};

static void
test_prefixes_and_mutations(void)
{
	static const uint8_t subst[] = {0,   ' ', '\t', ';', '=', 'A', 'a',  '0',  '1',
					'.', ':', '-',	'/', '+', '[', 0x7f, 0x80, 0xff};
	size_t mutations = 0;

	for (size_t r = 0; r < N_ELEMS(robust_records); r++) {
		const char *rec = robust_records[r];
		size_t len = strlen(rec);
		char buf[512];
		struct dime_mrec m, back;
		const char *why;
		int rc;

		rc = parse_guarded(&m, &why, rec, len, 0);
		T_CHECK(rc == DIME_OK, "robust %zu: got %s (%s)", r, rc_name(rc), why);
		for (size_t k = 0; k < len; k++) {
			rc = parse_guarded(&m, &why, rec, k, 0);
			T_CHECK(rc == DIME_OK || rc == DIME_E_MALFORMED,
				"robust %zu prefix %zu: got %s", r, k, rc_name(rc));
		}
		/* Every byte replaced by every value of a hostile set, and by its neighbours. */
		memcpy(buf, rec, len);
		for (size_t k = 0; k < len; k++) {
			uint8_t orig = (uint8_t)rec[k];

			for (size_t s = 0; s < N_ELEMS(subst) + 2; s++) {
				uint8_t v = s < N_ELEMS(subst)
						? subst[s]
						: (uint8_t)(orig + (s == N_ELEMS(subst) ? 1 : 255));
				size_t need = 0, gl = 0;
				char gen[1024];

				if (v == orig)
					continue;
				buf[k] = (char)v;
				rc = parse_guarded(&m, &why, buf, len, 0);
				mutations++;
				if (rc != DIME_OK) {
					T_CHECK(rc == DIME_E_MALFORMED,
						"robust %zu byte %zu = %02x: got %s", r, k, v,
						rc_name(rc));
					continue;
				}
				/* Whatever is accepted re-generates to an equal record. */
				rc = dime_mrec_generate(NULL, 0, &need, &m);
				T_CHECK(rc == DIME_OK && need < sizeof(gen),
					"robust %zu byte %zu = %02x: generate size %s", r, k, v,
					rc_name(rc));
				rc = dime_mrec_generate(gen, sizeof(gen), &gl, &m);
				T_CHECK(rc == DIME_OK &&
					    dime_mrec_parse(&back, &why, gen, gl) == DIME_OK &&
					    mrec_equal(&m, &back),
					"robust %zu byte %zu = %02x: round trip \"%s\"", r, k, v,
					gen);
			}
			buf[k] = (char)orig;
		}
	}
	T_CHECK(mutations > 5000, "only %zu mutations", mutations);
	/* Every strict prefix of every accepted rule, at a guard page. */
	for (size_t i = 0; i < N_ELEMS(rules); i++) {
		size_t len = strlen(rules[i].rec);

		if (rules[i].rc != DIME_OK)
			continue;
		for (size_t k = 0; k < len; k++) {
			struct dime_mrec m;
			const char *why;
			int rc = parse_guarded(&m, &why, rules[i].rec, k, 0);

			T_CHECK(rc == DIME_OK || rc == DIME_E_MALFORMED, "%s prefix %zu: got %s",
				rules[i].name, k, rc_name(rc));
		}
	}
}

int
main(void)
{
	t_init();
	test_probe_file();
	test_rules();
	test_limits();
	test_genrec();
	test_generate();
	test_split();
	test_tls();
	test_prefixes_and_mutations();
	return t_done("test_mrec");
}

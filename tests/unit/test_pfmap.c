/* dime/pfmap.h: the Postfix socketmap and policy delegation machines. Scripted dialogues (send,
 * expect the output, check and answer the query, closed or not) cover every framing rule, the
 * limits on both sides of each, pipelined requests, bad input closing without a reply, every
 * answer's bytes and the caller's bad answers; each script runs fed whole, one byte at a time
 * and in 3-byte pieces, from a buffer ending at a PROT_NONE page. Then the domain helper and
 * the mapping from dime_send_decide's actions to both answers. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dime/pfmap.h"
#include "tlib.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- a driver for either machine ---- */

enum op {
	OP_END = 0,
	OP_SEND,   /* s: bytes to feed (n, or strlen) */
	OP_SENDNS, /* s: a payload to feed as one netstring */
	OP_EXPECT, /* s: the exact output since the last EXPECT (n, or strlen) */
	OP_NS,	   /* s: the output since the last EXPECT is this one netstring */
	OP_QUERY,  /* socketmap: s key, s2 domain (s3 map name when not NULL);
		      policy: s recipient, s2 rcpt_domain, v state */
	OP_NOQ,	   /* no query is open */
	OP_ANSWER, /* v status/verdict, s text (NULL: ""), n code; want DIME_OK */
	OP_BADANS, /* as ANSWER, want DIME_E_INVALID; v2 1: the query stays open */
	OP_STALE,  /* answer with a stale id: DIME_E_INVALID, query still open */
	OP_CLOSED, /* closed, dime_pfmap_*_error == v */
	OP_OPEN,   /* not closed */
	OP_DRAIN
};

struct step {
	enum op op;
	const char *s, *s2, *s3;
	int v, v2;
	size_t n;
};

#define SEND(x)                                                                                    \
	{                                                                                          \
		OP_SEND, (x), NULL, NULL, 0, 0, 0                                                  \
	}
#define SENDN(x, len)                                                                              \
	{                                                                                          \
		OP_SEND, (x), NULL, NULL, 0, 0, (len)                                              \
	}
#define SNS(x)                                                                                     \
	{                                                                                          \
		OP_SENDNS, (x), NULL, NULL, 0, 0, 0                                                \
	}
#define EXPECT(x)                                                                                  \
	{                                                                                          \
		OP_EXPECT, (x), NULL, NULL, 0, 0, 0                                                \
	}
#define NS(x)                                                                                      \
	{                                                                                          \
		OP_NS, (x), NULL, NULL, 0, 0, 0                                                    \
	}
#define SMQ(key, dom)                                                                              \
	{                                                                                          \
		OP_QUERY, (key), (dom), NULL, 0, 0, 0                                              \
	}
#define SMQN(key, dom, name)                                                                       \
	{                                                                                          \
		OP_QUERY, (key), (dom), (name), 0, 0, 0                                            \
	}
#define POLQ(rcpt, dom, st)                                                                        \
	{                                                                                          \
		OP_QUERY, (rcpt), (dom), NULL, DIME_PFMAP_ST_##st, 0, 0                            \
	}
#define NOQ                                                                                        \
	{                                                                                          \
		OP_NOQ, NULL, NULL, NULL, 0, 0, 0                                                  \
	}
#define SMA(st, text)                                                                              \
	{                                                                                          \
		OP_ANSWER, (text), NULL, NULL, DIME_PFMAP_SM_##st, 0, 0                            \
	}
#define POLA(vd, text)                                                                             \
	{                                                                                          \
		OP_ANSWER, (text), NULL, NULL, DIME_PFMAP_POL_##vd, 0, 0                           \
	}
#define POLC(code, text)                                                                           \
	{                                                                                          \
		OP_ANSWER, (text), NULL, NULL, DIME_PFMAP_POL_CODE, 0, (code)                      \
	}
#define BADANS(v, text, code, stays)                                                               \
	{                                                                                          \
		OP_BADANS, (text), NULL, NULL, (v), (stays), (code)                                \
	}
#define STALE                                                                                      \
	{                                                                                          \
		OP_STALE, NULL, NULL, NULL, 0, 0, 0                                                \
	}
#define CLOSED(e)                                                                                  \
	{                                                                                          \
		OP_CLOSED, NULL, NULL, NULL, (e), 0, 0                                             \
	}
#define OPEN                                                                                       \
	{                                                                                          \
		OP_OPEN, NULL, NULL, NULL, 0, 0, 0                                                 \
	}
#define DRAIN                                                                                      \
	{                                                                                          \
		OP_DRAIN, NULL, NULL, NULL, 0, 0, 0                                                \
	}

struct script {
	const char *name;
	const char *map_name; /* socketmap: conf.map_name ("dime" unless any_name) */
	int any_name;	      /* socketmap: conf.map_name NULL */
	int all_states;	      /* policy */
	unsigned max_requests;
	struct step steps[40];
};

/* One machine behind the same calls. */
struct drv {
	int pol; /* 0: socketmap, 1: policy */
	struct dime_pfmap_sm *sm;
	struct dime_pfmap_pol *pp;
	size_t chunk;	  /* feed pieces of at most this many octets (0: whole) */
	uint8_t *pending; /* fed, not yet consumed */
	size_t n_pending;
	char *got; /* output since the last EXPECT */
	size_t n_got;
	const char *where; /* script name and mode, for messages */
};

static size_t
drv_feed(struct drv *d, const uint8_t *p, size_t n)
{
	return d->pol ? dime_pfmap_pol_feed(d->pp, p, n) : dime_pfmap_sm_feed(d->sm, p, n);
}

static unsigned
drv_actions(const struct drv *d)
{
	return d->pol ? dime_pfmap_pol_actions(d->pp) : dime_pfmap_sm_actions(d->sm);
}

static void
drv_take_out(struct drv *d)
{
	size_t n = 0;
	const uint8_t *p = d->pol ? dime_pfmap_pol_out(d->pp, &n) : dime_pfmap_sm_out(d->sm, &n);

	if (n == 0)
		return;
	d->got = realloc(d->got, d->n_got + n + 1);
	if (d->got == NULL)
		abort();
	memcpy(d->got + d->n_got, p, n);
	d->n_got += n;
	d->got[d->n_got] = 0;
	if (d->pol)
		dime_pfmap_pol_out_done(d->pp, n);
	else
		dime_pfmap_sm_out_done(d->sm, n);
}

/* Feed what is pending, as a server would: in pieces, flushing the output, until all is taken
 * or the machine waits for an answer or has closed. The piece sits at the end of a page. */
static void
drv_pump(struct drv *d)
{
	while (d->n_pending > 0) {
		size_t piece = d->chunk == 0 || d->chunk > d->n_pending ? d->n_pending : d->chunk;
		const uint8_t *p = t_at_page_end(0, d->pending, piece);
		size_t used = drv_feed(d, p, piece);

		if (used > piece) {
			t_fail("%s: feed claims %zu of %zu octets", d->where, used, piece);
			used = piece;
		}
		memmove(d->pending, d->pending + used, d->n_pending - used);
		d->n_pending -= used;
		drv_take_out(d);
		if (used < piece &&
		    (drv_actions(d) & (DIME_PFMAP_ACT_QUERY | DIME_PFMAP_ACT_CLOSE)))
			break;
		if (used < piece && used == 0 && drv_actions(d) == 0) {
			/* stalled with the output taken: must not happen */
			t_fail("%s: feed stalls with no reason", d->where);
			break;
		}
	}
	drv_take_out(d);
}

static void
drv_send(struct drv *d, const char *s, size_t n)
{
	d->pending = realloc(d->pending, d->n_pending + n + 1);
	if (d->pending == NULL)
		abort();
	memcpy(d->pending + d->n_pending, s, n);
	d->n_pending += n;
	drv_pump(d);
}

static void
drv_fill_text(char text[DIME_PFMAP_TEXT_MAX + 1], const char *s)
{
	memset(text, 0, DIME_PFMAP_TEXT_MAX + 1);
	if (s == NULL)
		return;
	/* A text of DIME_PFMAP_TEXT_MAX + 1 octets fills the array with no NUL (a bad answer). */
	memcpy(text, s, strlen(s) > DIME_PFMAP_TEXT_MAX ? DIME_PFMAP_TEXT_MAX + 1 : strlen(s));
}

static int
drv_answer(struct drv *d, const struct step *st, int stale)
{
	if (d->pol) {
		const struct dime_pfmap_pol_query *q = dime_pfmap_pol_query(d->pp);
		struct dime_pfmap_pol_answer a;

		memset(&a, 0, sizeof(a));
		a.id = q != NULL ? q->id + (uint64_t)stale : 0;
		a.verdict = (enum dime_pfmap_pol_verdict)st->v;
		a.code = (int)st->n;
		drv_fill_text(a.text, st->s);
		return dime_pfmap_pol_answer(d->pp, &a);
	} else {
		const struct dime_pfmap_sm_query *q = dime_pfmap_sm_query(d->sm);
		struct dime_pfmap_sm_answer a;

		memset(&a, 0, sizeof(a));
		a.id = q != NULL ? q->id + (uint64_t)stale : 0;
		a.status = (enum dime_pfmap_sm_status)st->v;
		drv_fill_text(a.text, st->s);
		return dime_pfmap_sm_answer(d->sm, &a);
	}
}

static int
drv_has_query(const struct drv *d)
{
	return d->pol ? dime_pfmap_pol_query(d->pp) != NULL : dime_pfmap_sm_query(d->sm) != NULL;
}

static void
drv_check_query(struct drv *d, const struct step *st)
{
	if (d->pol) {
		const struct dime_pfmap_pol_query *q = dime_pfmap_pol_query(d->pp);

		if (q == NULL) {
			t_fail("%s: no policy query open, want recipient %s", d->where, st->s);
			return;
		}
		T_CHECK(strcmp(q->recipient, st->s) == 0 && strcmp(q->rcpt_domain, st->s2) == 0 &&
			    (int)q->state == st->v,
			"%s: query recipient %s domain %s state %d, want %s %s %d", d->where,
			q->recipient, q->rcpt_domain, (int)q->state, st->s, st->s2, st->v);
		T_CHECK((dime_pfmap_pol_actions(d->pp) & DIME_PFMAP_ACT_QUERY) != 0,
			"%s: query open without ACT_QUERY", d->where);
	} else {
		const struct dime_pfmap_sm_query *q = dime_pfmap_sm_query(d->sm);

		if (q == NULL) {
			t_fail("%s: no socketmap query open, want key %s", d->where, st->s);
			return;
		}
		T_CHECK(strcmp(q->key, st->s) == 0 && q->key_len == strlen(st->s) &&
			    strcmp(q->domain, st->s2) == 0 &&
			    strcmp(q->name, st->s3 ? st->s3 : "dime") == 0,
			"%s: query key %s domain %s name %s, want %s %s", d->where, q->key,
			q->domain, q->name, st->s, st->s2);
		T_CHECK((dime_pfmap_sm_actions(d->sm) & DIME_PFMAP_ACT_QUERY) != 0,
			"%s: query open without ACT_QUERY", d->where);
	}
}

static void
drv_expect(struct drv *d, const char *want, size_t n)
{
	if (d->n_got != n || (n > 0 && memcmp(d->got, want, n) != 0))
		t_fail("%s: output [%.*s], want [%.*s]", d->where, (int)d->n_got,
		       d->got ? d->got : "", (int)n, want);
	d->n_got = 0;
}

static void
run_script(const struct script *sc, int pol, size_t chunk)
{
	struct drv d;
	char where[160];
	int rc;

	memset(&d, 0, sizeof(d));
	d.pol = pol;
	d.chunk = chunk;
	snprintf(where, sizeof(where), "%s [%s, pieces of %zu]", sc->name,
		 pol ? "policy" : "socketmap", chunk);
	d.where = where;
	if (pol) {
		struct dime_pfmap_pol_conf c = {sc->all_states, sc->max_requests};

		rc = dime_pfmap_pol_new(&d.pp, &c);
	} else {
		struct dime_pfmap_sm_conf c = {
		    sc->any_name ? NULL : (sc->map_name ? sc->map_name : "dime"), sc->max_requests};

		rc = dime_pfmap_sm_new(&d.sm, &c);
	}
	if (rc != DIME_OK) {
		t_fail("%s: new: %d", where, rc);
		return;
	}
	for (const struct step *st = sc->steps; st->op != OP_END; st++) {
		switch (st->op) {
		case OP_SEND: drv_send(&d, st->s, st->n ? st->n : strlen(st->s)); break;
		case OP_SENDNS: {
			char ns[1200];
			int n = snprintf(ns, sizeof(ns), "%zu:%s,", strlen(st->s), st->s);

			drv_send(&d, ns, (size_t)n);
			break;
		}
		case OP_EXPECT: drv_expect(&d, st->s, st->n ? st->n : strlen(st->s)); break;
		case OP_NS: {
			char ns[1200];
			int n = snprintf(ns, sizeof(ns), "%zu:%s,", strlen(st->s), st->s);

			drv_expect(&d, ns, (size_t)n);
			break;
		}
		case OP_QUERY: drv_check_query(&d, st); break;
		case OP_NOQ:
			T_CHECK(!drv_has_query(&d) && (drv_actions(&d) & DIME_PFMAP_ACT_QUERY) == 0,
				"%s: a query is open", where);
			break;
		case OP_ANSWER:
			rc = drv_answer(&d, st, 0);
			T_CHECK(rc == DIME_OK, "%s: answer %d (%s): got %d", where, st->v,
				st->s ? st->s : "", rc);
			drv_pump(&d);
			break;
		case OP_BADANS:
			rc = drv_answer(&d, st, 0);
			T_CHECK(rc == DIME_E_INVALID, "%s: bad answer %d: got %d, want %d", where,
				st->v, rc, DIME_E_INVALID);
			T_CHECK(drv_has_query(&d) == (st->v2 != 0),
				"%s: bad answer %d: query open %d, want %d", where, st->v,
				drv_has_query(&d), st->v2);
			drv_pump(&d);
			break;
		case OP_STALE:
			rc = drv_answer(&d, st, 1);
			T_CHECK(rc == DIME_E_INVALID && drv_has_query(&d),
				"%s: stale answer: got %d, want %d and the query open", where, rc,
				DIME_E_INVALID);
			break;
		case OP_CLOSED: {
			int e = pol ? dime_pfmap_pol_error(d.pp) : dime_pfmap_sm_error(d.sm);

			T_CHECK((drv_actions(&d) & DIME_PFMAP_ACT_CLOSE) != 0 && e == st->v,
				"%s: closed %u error %d, want closed with %d", where,
				drv_actions(&d) & DIME_PFMAP_ACT_CLOSE, e, st->v);
			/* once closed, everything is taken and ignored */
			T_CHECK(drv_feed(&d, (const uint8_t *)"5:x y,", 6) == 6,
				"%s: a closed machine must consume everything", where);
			drv_take_out(&d);
			break;
		}
		case OP_OPEN:
			T_CHECK((drv_actions(&d) & DIME_PFMAP_ACT_CLOSE) == 0,
				"%s: closed (error %d)", where,
				pol ? dime_pfmap_pol_error(d.pp) : dime_pfmap_sm_error(d.sm));
			break;
		case OP_DRAIN:
			if (pol)
				dime_pfmap_pol_drain(d.pp);
			else
				dime_pfmap_sm_drain(d.sm);
			break;
		case OP_END: break;
		}
	}
	T_CHECK(d.n_got == 0, "%s: output left unchecked: [%.*s]", where, (int)d.n_got, d.got);
	dime_pfmap_sm_free(d.sm);
	dime_pfmap_pol_free(d.pp);
	free(d.pending);
	free(d.got);
}

static void
run_all(const struct script *scripts, size_t n, int pol)
{
	static const size_t chunks[] = {0, 1, 3};

	for (size_t i = 0; i < n; i++)
		for (size_t c = 0; c < N_ELEMS(chunks); c++)
			run_script(&scripts[i], pol, chunks[c]);
}

/* ---- socketmap ---- */

#define NEXTHOP "dime:[127.0.0.1]:10025"

/* Long inputs built at start. */
static char sm_cap_req[32 + DIME_PFMAP_SM_REQ_MAX];  /* a netstring at the payload cap */
static char sm_over_req[32 + DIME_PFMAP_SM_REQ_MAX]; /* one octet over */
static char text_max[DIME_PFMAP_TEXT_MAX + 1];	     /* DIME_PFMAP_TEXT_MAX octets */
static char text_over[DIME_PFMAP_TEXT_MAX + 2];	     /* one more */
static char ns_text_max[DIME_PFMAP_TEXT_MAX + 8];    /* "OK " + text_max */
static char long_name_req[128];			     /* a 65-octet map name */

static void
sm_build(void)
{
	size_t n = DIME_PFMAP_SM_REQ_MAX;
	int k;

	/* "dime a@" + a domain of 63-octet labels, over 253 octets: NOTFOUND, but taken */
	k = snprintf(sm_cap_req, sizeof(sm_cap_req), "%zu:dime a@", n);
	memset(sm_cap_req + k, 'b', n - 7);
	sm_cap_req[(size_t)k + n - 7] = ',';
	sm_cap_req[(size_t)k + n - 6] = 0;
	for (size_t i = (size_t)k + 64; i < (size_t)k + n - 7; i += 64)
		sm_cap_req[i] = '.';
	k = snprintf(sm_over_req, sizeof(sm_over_req), "%zu:dime a@", n + 1);
	memset(sm_over_req + k, 'b', n - 6);
	sm_over_req[(size_t)k + n - 6] = ',';
	sm_over_req[(size_t)k + n - 5] = 0;
	memset(text_max, 'x', DIME_PFMAP_TEXT_MAX);
	memset(text_over, 'y', DIME_PFMAP_TEXT_MAX + 1);
	snprintf(ns_text_max, sizeof(ns_text_max), "OK %s", text_max);
	memset(long_name_req, 0, sizeof(long_name_req));
	k = snprintf(long_name_req, sizeof(long_name_req), "%d:", 65 + 6);
	memset(long_name_req + k, 'm', 65);
	memcpy(long_name_req + k + 65, " a@b.c,", 7);
}

static const struct script sm_scripts[] = {
    {"lookup, OK with the next hop",
     NULL,
     0,
     0,
     0,
     {SEND("22:dime alice@example.org,"), SMQ("alice@example.org", "example.org"), EXPECT(""), OPEN,
      SMA(OK, NEXTHOP), EXPECT("25:OK " NEXTHOP ","), NOQ, OPEN}},
    {"every status, byte for byte",
     NULL,
     0,
     0,
     0,
     {SEND("10:dime a@b.c,"),
      SMQ("a@b.c", "b.c"),
      SMA(NOTFOUND, NULL),
      EXPECT("9:NOTFOUND ,"),
      SEND("10:dime a@b.c,"),
      SMA(TEMP, "dns timeout"),
      EXPECT("16:TEMP dns timeout,"),
      SEND("10:dime a@b.c,"),
      SMA(TEMP, NULL),
      EXPECT("5:TEMP ,"),
      SEND("10:dime a@b.c,"),
      SMA(TIMEOUT, "slow"),
      EXPECT("12:TIMEOUT slow,"),
      SEND("10:dime a@b.c,"),
      SMA(PERM, "config"),
      EXPECT("11:PERM config,"),
      SEND("10:dime a@b.c,"),
      SMA(OK, "x"),
      EXPECT("4:OK x,"),
      OPEN}},
    {"the domain is lower-cased, its final dot dropped; the key is as sent",
     NULL,
     0,
     0,
     0,
     {SNS("dime Bob.Smith@Mail.Example."), SMQ("Bob.Smith@Mail.Example.", "mail.example"),
      SMA(OK, NEXTHOP), NS("OK " NEXTHOP),
      /* the last '@' decides; a quoted local part may hold '@' and spaces */
      SNS("dime \"a@b c\"@x-1.example"), SMQ("\"a@b c\"@x-1.example", "x-1.example"),
      SMA(NOTFOUND, ""), NS("NOTFOUND "),
      /* SMTPUTF8: 8-bit in the local part is passed on */
      SNS("dime j\xc3\xb6rg@example.de"), SMQ("j\xc3\xb6rg@example.de", "example.de"),
      SMA(NOTFOUND, ""), NS("NOTFOUND ")}},
    {"pipelined requests are answered in order, one query at a time",
     NULL,
     0,
     0,
     0,
     {SEND("10:dime a@b.c,10:dime d@e.f,6:dime *,10:dime g@h.i,"), SMQ("a@b.c", "b.c"), EXPECT(""),
      SMA(OK, NEXTHOP), SMQ("d@e.f", "e.f"), EXPECT("25:OK " NEXTHOP ","), SMA(TEMP, "later"),
      /* "*" needs no query: it is answered and the next one opens */
      SMQ("g@h.i", "h.i"), EXPECT("10:TEMP later,9:NOTFOUND ,"), SMA(NOTFOUND, ""),
      EXPECT("9:NOTFOUND ,"), NOQ, OPEN}},
    {"keys that are not user@host-name are NOTFOUND without a query",
     NULL,
     0,
     0,
     0,
     {SEND("6:dime *,"),
      NOQ,
      NS("NOTFOUND "),
      SEND("9:dime user,"),
      NS("NOTFOUND "),
      SEND("5:dime ,"),
      NS("NOTFOUND "),
      SNS("dime a@[192.0.2.1]"),
      NS("NOTFOUND "),
      SNS("dime @example.org"),
      NS("NOTFOUND "),
      SNS("dime a@exa_mple.org"),
      NS("NOTFOUND "),
      SNS("dime a@b..org"),
      NS("NOTFOUND "),
      SNS("dime a@."),
      NS("NOTFOUND "),
      SNS("dime a@"),
      NS("NOTFOUND "),
      SNS("dime a@b\xc3\xbc\x63her.de"),
      NS("NOTFOUND "),
      SNS("dime a@"
	  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.org"),
      NS("NOTFOUND "),
      SNS("dime a@"
	  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.org"),
      SMQ("a@bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.org",
	  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.org"),
      SMA(NOTFOUND, ""),
      NS("NOTFOUND "),
      OPEN}},
    {"another map name is PERM without a query",
     NULL,
     0,
     0,
     0,
     {SEND("11:other a@b.c,"), NOQ, NS("PERM unknown map name"), SEND("10:Dime a@b.c,"),
      NS("PERM unknown map name"), SEND("10:dime a@b.c,"), SMQ("a@b.c", "b.c"), SMA(NOTFOUND, ""),
      NS("NOTFOUND "), OPEN}},
    {"any map name when none is configured",
     NULL,
     1,
     0,
     0,
     {SEND("12:routes a@b.c,"), SMQN("a@b.c", "b.c", "routes"), SMA(OK, "smtp:[x]"),
      NS("OK smtp:[x]"), OPEN}},
    {"the request cap: payload of exactly DIME_PFMAP_SM_REQ_MAX octets is taken",
     NULL,
     0,
     0,
     0,
     {SEND(sm_cap_req), NOQ, NS("NOTFOUND "), OPEN}},
    {"one octet over the cap closes (at the length, before the payload)",
     NULL,
     0,
     0,
     0,
     {SEND(sm_over_req), EXPECT(""), CLOSED(DIME_E_LIMIT)}},
    {"a length of many digits closes at the digit passing the cap",
     NULL,
     0,
     0,
     0,
     {SEND("10:dime a@b.c,99999999999999999999999"), SMQ("a@b.c", "b.c"), OPEN, SMA(TEMP, "x"),
      EXPECT("6:TEMP x,"), CLOSED(DIME_E_LIMIT)}},
    {"leading zero", NULL, 0, 0, 0, {SEND("010:dime a@b.c,"), CLOSED(DIME_E_MALFORMED)}},
    {"zero followed by a digit", NULL, 0, 0, 0, {SEND("00:,"), CLOSED(DIME_E_MALFORMED)}},
    {"the empty netstring has no space", NULL, 0, 0, 0, {SEND("0:,"), CLOSED(DIME_E_MALFORMED)}},
    {"no space between name and key", NULL, 0, 0, 0, {SEND("4:dime,"), CLOSED(DIME_E_MALFORMED)}},
    {"an empty map name", NULL, 0, 0, 0, {SEND("6: a@b.c,"), CLOSED(DIME_E_MALFORMED)}},
    {"a map name over 64 octets", NULL, 0, 0, 0, {SEND(long_name_req), CLOSED(DIME_E_MALFORMED)}},
    {"a letter for a length", NULL, 0, 0, 0, {SEND("x:dime a,"), CLOSED(DIME_E_MALFORMED)}},
    {"a sign", NULL, 0, 0, 0, {SEND("+6:dime *,"), CLOSED(DIME_E_MALFORMED)}},
    {"white space before the length",
     NULL,
     0,
     0,
     0,
     {SEND(" 6:dime *,"), CLOSED(DIME_E_MALFORMED)}},
    {"a line ending after the comma",
     NULL,
     0,
     0,
     0,
     {SEND("6:dime *,\n"), EXPECT("9:NOTFOUND ,"), CLOSED(DIME_E_MALFORMED)}},
    {"no colon", NULL, 0, 0, 0, {SEND("6;dime *,"), CLOSED(DIME_E_MALFORMED)}},
    {"no comma", NULL, 0, 0, 0, {SEND("6:dime *;"), CLOSED(DIME_E_MALFORMED)}},
    {"a length one short", NULL, 0, 0, 0, {SEND("5:dime *,"), CLOSED(DIME_E_MALFORMED)}},
    {"a control character in the key",
     NULL,
     0,
     0,
     0,
     {SEND("11:dime a\r@b.c,"), CLOSED(DIME_E_MALFORMED)}},
    {"a NUL in the key", NULL, 0, 0, 0, {SENDN("11:dime a\0@b.c,", 15), CLOSED(DIME_E_MALFORMED)}},
    {"a DEL in the name", NULL, 0, 0, 0, {SEND("7:di\x7fme *,"), CLOSED(DIME_E_MALFORMED)}},
    {"answers queued before the error stay queued",
     NULL,
     0,
     0,
     0,
     {SEND("6:dime *,6:dime *,X"), EXPECT("9:NOTFOUND ,9:NOTFOUND ,"), CLOSED(DIME_E_MALFORMED)}},
    {"a bad request behind an open query waits for the answer",
     NULL,
     0,
     0,
     0,
     {SEND("10:dime a@b.c,garbage"), SMQ("a@b.c", "b.c"), OPEN, SMA(OK, NEXTHOP), NS("OK " NEXTHOP),
      CLOSED(DIME_E_MALFORMED)}},
    {"a prefix is held: no output, no query, not closed",
     NULL,
     0,
     0,
     0,
     {SEND("1"), SEND("0"), SEND(":"), SEND("dime a@b."), NOQ, EXPECT(""), OPEN, SEND("c"), NOQ,
      OPEN, SEND(","), SMQ("a@b.c", "b.c"), SMA(NOTFOUND, ""), NS("NOTFOUND ")}},
    {"bad answers",
     NULL,
     0,
     0,
     0,
     {SEND("10:dime a@b.c,"), STALE, BADANS(0, NULL, 0, 1), BADANS(6, NULL, 0, 1), EXPECT(""),
      /* a text that does not fit the status: answered TEMP, so Postfix is not left waiting */
      BADANS(DIME_PFMAP_SM_NOTFOUND, "x", 0, 0), NS("TEMP invalid answer"), SEND("10:dime a@b.c,"),
      BADANS(DIME_PFMAP_SM_OK, "", 0, 0), NS("TEMP invalid answer"), SEND("10:dime a@b.c,"),
      BADANS(DIME_PFMAP_SM_OK, "a\tb", 0, 0), NS("TEMP invalid answer"), SEND("10:dime a@b.c,"),
      BADANS(DIME_PFMAP_SM_TEMP, "caf\xc3\xa9", 0, 0), NS("TEMP invalid answer"),
      SEND("10:dime a@b.c,"), BADANS(DIME_PFMAP_SM_OK, text_over, 0, 0), NS("TEMP invalid answer"),
      SEND("10:dime a@b.c,"), SMA(OK, text_max), NS(ns_text_max), NOQ,
      BADANS(DIME_PFMAP_SM_OK, "x", 0, 0), OPEN}},
    {"max_requests: closed after the last answer",
     NULL,
     0,
     0,
     2,
     {SEND("6:dime *,10:dime a@b.c,6:dime *,"), SMQ("a@b.c", "b.c"), OPEN, SMA(OK, NEXTHOP),
      EXPECT("9:NOTFOUND ,25:OK " NEXTHOP ","), CLOSED(DIME_OK)}},
    {"drain when idle closes at once", NULL, 0, 0, 0, {DRAIN, CLOSED(DIME_OK)}},
    {"drain with a query open closes after its answer",
     NULL,
     0,
     0,
     0,
     {SEND("10:dime a@b.c,6:dime *,"), SMQ("a@b.c", "b.c"), DRAIN, OPEN, SMA(OK, NEXTHOP),
      NS("OK " NEXTHOP), CLOSED(DIME_OK)}},
};

/* Output past DIME_PFMAP_OUT_HIGH stops feed; taking it lets feed go on. */
static void
test_sm_out_high(void)
{
	struct dime_pfmap_sm_conf c = {"dime", 0};
	struct dime_pfmap_sm *m = NULL;
	size_t n_req = 4000, len = 9 * n_req, used, total = 0, out = 0, rounds = 0;
	char *in = malloc(len);

	if (in == NULL || dime_pfmap_sm_new(&m, &c) != DIME_OK)
		abort();
	for (size_t i = 0; i < n_req; i++)
		memcpy(in + 9 * i, "6:dime *,", 9);
	used = dime_pfmap_sm_feed(m, (const uint8_t *)in, len);
	T_CHECK(used < len && used % 9 == 0 && dime_pfmap_sm_actions(m) == 0,
		"out high: feed took %zu of %zu, actions %u", used, len, dime_pfmap_sm_actions(m));
	dime_pfmap_sm_out(m, &out);
	T_CHECK(out >= DIME_PFMAP_OUT_HIGH && out < DIME_PFMAP_OUT_HIGH + 12,
		"out high: %zu octets wait", out);
	total = used;
	while (total < len && rounds++ < 100) {
		dime_pfmap_sm_out(m, &out);
		dime_pfmap_sm_out_done(m, out);
		used = dime_pfmap_sm_feed(m, (const uint8_t *)in + total, len - total);
		total += used;
	}
	dime_pfmap_sm_out(m, &out);
	T_CHECK(total == len && dime_pfmap_sm_requests(m) == n_req && out == 12 * (n_req % 1366),
		"out high: %zu of %zu taken, %llu requests", total, len,
		(unsigned long long)dime_pfmap_sm_requests(m));
	dime_pfmap_sm_free(m);
	free(in);
}

static void
test_sm_conf(void)
{
	struct dime_pfmap_sm *m = (struct dime_pfmap_sm *)(uintptr_t)1;
	struct dime_pfmap_sm_conf bad[] = {{"", 0}, {"di me", 0}, {"d\x01", 0}};

	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		T_CHECK(dime_pfmap_sm_new(&m, &bad[i]) == DIME_E_INVALID && m == NULL,
			"conf %zu: a bad map name is refused", i);
		m = (struct dime_pfmap_sm *)(uintptr_t)1;
	}
	T_CHECK(dime_pfmap_sm_new(&m, NULL) == DIME_E_INVALID && m == NULL, "conf NULL");
	dime_pfmap_sm_free(NULL);
}

/* ---- policy ---- */

#define POL_README                                                                                 \
	"request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=SMTP\n"                   \
	"helo_name=some.domain.tld\nqueue_id=8045F2AB23\nsender=foo@bar.tld\n"                     \
	"recipient=bar@Foo.TLD\nrecipient_count=0\nclient_address=1.2.3.4\n"                       \
	"client_name=another.domain.tld\nreverse_client_name=another.domain.tld\n"                 \
	"instance=123.456.7\nsasl_method=plain\nsasl_username=you\nsasl_sender=\nsize=12345\n"     \
	"ccert_subject=solaris9.porcupine.org\nccert_issuer=Wietse+20Venema\n"                     \
	"ccert_fingerprint=C2:9D:F4:87:71:73:73:D9:18:E7:C2:F3:C1:DA:6E:04\n"                      \
	"encryption_protocol=TLSv1/SSLv3\nencryption_cipher=DHE-RSA-AES256-SHA\n"                  \
	"encryption_keysize=256\netrn_domain=\nstress=\n"                                          \
	"ccert_pubkey_fingerprint=68:B3:29:DA:98:93:E3:40:99:C7:D8:AD:5C:B9:C9:40\n"               \
	"client_port=1234\npolicy_context=submission\nserver_address=10.3.2.1\n"                   \
	"server_port=54321\n\n"
#define RCPT(r) "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=" r "\n\n"
#define AT(st)	"request=smtpd_access_policy\nprotocol_state=" st "\nrecipient=a@b.c\n\n"

static char pol_line_max[DIME_PFMAP_POL_LINE_MAX + 256];  /* a line of LINE_MAX octets, LF in */
static char pol_line_over[DIME_PFMAP_POL_LINE_MAX + 256]; /* one more */
static char pol_attrs_max[DIME_PFMAP_POL_ATTRS_MAX * 8 + 128];
static char pol_attrs_over[DIME_PFMAP_POL_ATTRS_MAX * 8 + 128];
static char *pol_req_over; /* over DIME_PFMAP_POL_REQ_MAX octets in lines that each fit */
static char pol_reject_max[DIME_PFMAP_TEXT_MAX + 32]; /* "action=REJECT " + text_max */

static void
pol_build(void)
{
	size_t n, k;
	char *p;

	/* "x=" + value + LF is DIME_PFMAP_POL_LINE_MAX octets */
	n = (size_t)snprintf(pol_line_max, sizeof(pol_line_max), "%s", RCPT("a@b.c"));
	n -= 1; /* before the empty line */
	memcpy(pol_line_max + n, "x=", 2);
	memset(pol_line_max + n + 2, 'v', DIME_PFMAP_POL_LINE_MAX - 3);
	memcpy(pol_line_max + n + DIME_PFMAP_POL_LINE_MAX - 1, "\n\n", 3);
	memcpy(pol_line_over, pol_line_max, n + 2);
	memset(pol_line_over + n + 2, 'v', DIME_PFMAP_POL_LINE_MAX - 2);
	memcpy(pol_line_over + n + DIME_PFMAP_POL_LINE_MAX, "\n\n", 3);
	/* the request line and the recipient are 2 attributes; x=1 lines make up the rest */
	p = pol_attrs_max;
	p += sprintf(p, "request=smtpd_access_policy\nrecipient=a@b.c\nprotocol_state=RCPT\n");
	for (k = 3; k < DIME_PFMAP_POL_ATTRS_MAX; k++)
		p += sprintf(p, "x=1\n");
	sprintf(p, "\n");
	memcpy(pol_attrs_over, pol_attrs_max, (size_t)(p - pol_attrs_max));
	sprintf(pol_attrs_over + (p - pol_attrs_max), "x=1\n\n");
	/* 40 lines of 1000 octets: every line fits, the request does not */
	pol_req_over = malloc(41 * 1000 + 64);
	if (pol_req_over == NULL)
		abort();
	p = pol_req_over;
	p += sprintf(p, "request=smtpd_access_policy\n");
	for (k = 0; k < 40; k++) {
		memset(p, 'z', 999);
		p[0] = 'y';
		p[1] = '=';
		p[999] = '\n';
		p += 1000;
	}
	sprintf(p, "\n");
	snprintf(pol_reject_max, sizeof(pol_reject_max), "action=REJECT %s\n\n", text_max);
}

static const struct script pol_scripts[] = {
    {"the README's request: a query with every kept attribute",
     NULL,
     0,
     0,
     0,
     {SEND(POL_README), POLQ("bar@Foo.TLD", "foo.tld", RCPT), EXPECT(""), OPEN,
      POLC(550, "5.7.1 bar@Foo.TLD needs D/MIME"),
      EXPECT("action=550 5.7.1 bar@Foo.TLD needs D/MIME\n\n"), NOQ, OPEN}},
    {"every verdict, byte for byte",
     NULL,
     0,
     0,
     0,
     {SEND(RCPT("a@b.c")),
      POLA(DUNNO, NULL),
      EXPECT("action=DUNNO\n\n"),
      SEND(RCPT("a@b.c")),
      POLA(OK, ""),
      EXPECT("action=OK\n\n"),
      SEND(RCPT("a@b.c")),
      POLA(REJECT, NULL),
      EXPECT("action=REJECT\n\n"),
      SEND(RCPT("a@b.c")),
      POLA(REJECT, "no"),
      EXPECT("action=REJECT no\n\n"),
      SEND(RCPT("a@b.c")),
      POLA(DEFER_IF_PERMIT, "4.7.0 later"),
      EXPECT("action=DEFER_IF_PERMIT 4.7.0 later\n\n"),
      SEND(RCPT("a@b.c")),
      POLA(DEFER, "busy"),
      EXPECT("action=DEFER busy\n\n"),
      SEND(RCPT("a@b.c")),
      POLC(450, "4.7.1 wait"),
      EXPECT("action=450 4.7.1 wait\n\n"),
      SEND(RCPT("a@b.c")),
      POLC(599, "x"),
      EXPECT("action=599 x\n\n"),
      SEND(RCPT("a@b.c")),
      POLC(400, "y"),
      EXPECT("action=400 y\n\n"),
      SEND(RCPT("a@b.c")),
      POLA(REJECT, text_max),
      EXPECT(pol_reject_max),
      OPEN}},
    {"requests at other stages, or without a host-name recipient, are DUNNO at once",
     NULL,
     0,
     0,
     0,
     {SEND(AT("CONNECT") AT("EHLO") AT("HELO") AT("MAIL") AT("DATA") AT("END-OF-MESSAGE") AT("VRFY")
	       AT("ETRN") AT("BDAT") AT("rcpt")),
      NOQ,
      EXPECT("action=DUNNO\n\naction=DUNNO\n\naction=DUNNO\n\naction=DUNNO\n\n"
	     "action=DUNNO\n\naction=DUNNO\n\naction=DUNNO\n\naction=DUNNO\n\n"
	     "action=DUNNO\n\naction=DUNNO\n\n"),
      SEND(RCPT("postmaster") RCPT("") RCPT("a@[192.0.2.1]")
	       RCPT("a@b_c.d") "request=smtpd_access_policy\nrecipient=a@b.c\n\n"),
      NOQ,
      EXPECT("action=DUNNO\n\naction=DUNNO\n\naction=DUNNO\n\naction=DUNNO\n\n"
	     "action=DUNNO\n\n"),
      OPEN}},
    {"all_states: every request is a query, its state named",
     NULL,
     0,
     1,
     0,
     {SEND(AT("CONNECT") AT("END-OF-MESSAGE") AT("BDAT") RCPT("postmaster")),
      POLQ("a@b.c", "b.c", CONNECT), POLA(DUNNO, NULL), POLQ("a@b.c", "b.c", EOM),
      POLA(DUNNO, NULL), POLQ("a@b.c", "b.c", UNKNOWN), POLA(DUNNO, NULL),
      POLQ("postmaster", "", RCPT), POLA(DUNNO, NULL),
      EXPECT("action=DUNNO\n\naction=DUNNO\n\naction=DUNNO\n\naction=DUNNO\n\n"), OPEN}},
    {"pipelined requests answered in order; CRLF lines; the last duplicate counts",
     NULL,
     0,
     0,
     0,
     {SEND("request=smtpd_access_policy\r\nprotocol_state=RCPT\r\nrecipient=x@y.z\r\n"
	   "recipient=a@B.c\r\n\r\n" AT("MAIL") RCPT("d@e.f")),
      POLQ("a@B.c", "b.c", RCPT), EXPECT(""), POLA(DEFER_IF_PERMIT, "4.7.0 x"),
      POLQ("d@e.f", "e.f", RCPT), EXPECT("action=DEFER_IF_PERMIT 4.7.0 x\n\naction=DUNNO\n\n"),
      POLA(DUNNO, NULL), EXPECT("action=DUNNO\n\n"), NOQ, OPEN}},
    {"unknown attributes are ignored, whatever their value",
     NULL,
     0,
     0,
     0,
     {SEND("request=smtpd_access_policy\nprotocol_state=RCPT\nfuture_thing=a\tb\x01\x7f\xff\n"
	   "x.y-z_1=\nrecipient=a@b.c\n\n"),
      POLQ("a@b.c", "b.c", RCPT), POLA(DUNNO, NULL), EXPECT("action=DUNNO\n\n"), OPEN}},
    {"a value may hold '='",
     NULL,
     0,
     0,
     0,
     {SEND(RCPT("a=b@c.d")), POLQ("a=b@c.d", "c.d", RCPT), POLA(DUNNO, NULL),
      EXPECT("action=DUNNO\n\n")}},
    {"a line of DIME_PFMAP_POL_LINE_MAX octets is taken",
     NULL,
     0,
     0,
     0,
     {SEND(pol_line_max), POLQ("a@b.c", "b.c", RCPT), POLA(DUNNO, NULL), EXPECT("action=DUNNO\n\n"),
      OPEN}},
    {"one octet more closes",
     NULL,
     0,
     0,
     0,
     {SEND(pol_line_over), NOQ, EXPECT(""), CLOSED(DIME_E_LIMIT)}},
    {"DIME_PFMAP_POL_ATTRS_MAX attributes are taken",
     NULL,
     0,
     0,
     0,
     {SEND(pol_attrs_max), POLQ("a@b.c", "b.c", RCPT), POLA(DUNNO, NULL),
      EXPECT("action=DUNNO\n\n"), OPEN}},
    {"one more closes", NULL, 0, 0, 0, {SEND(pol_attrs_over), NOQ, CLOSED(DIME_E_LIMIT)}},
    {"no request attribute",
     NULL,
     0,
     0,
     0,
     {SEND("protocol_state=RCPT\nrecipient=a@b.c\n\n"), CLOSED(DIME_E_MALFORMED)}},
    {"an empty request", NULL, 0, 0, 0, {SEND("\n"), CLOSED(DIME_E_MALFORMED)}},
    {"another request type",
     NULL,
     0,
     0,
     0,
     {SEND("request=junk\nprotocol_state=RCPT\nrecipient=a@b.c\n\n"), CLOSED(DIME_E_MALFORMED)}},
    {"a line without '='",
     NULL,
     0,
     0,
     0,
     {SEND("request=smtpd_access_policy\nhello\n\n"), CLOSED(DIME_E_MALFORMED)}},
    {"an empty name",
     NULL,
     0,
     0,
     0,
     {SEND("request=smtpd_access_policy\n=x\n\n"), CLOSED(DIME_E_MALFORMED)}},
    {"a space in a name",
     NULL,
     0,
     0,
     0,
     {SEND("request =smtpd_access_policy\n\n"), CLOSED(DIME_E_MALFORMED)}},
    {"a name over 64 octets",
     NULL,
     0,
     0,
     0,
     {SEND("request=smtpd_access_policy\n"
	   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1\n\n"),
      CLOSED(DIME_E_MALFORMED)}},
    {"a NUL",
     NULL,
     0,
     0,
     0,
     {SENDN("request=smtpd_access_policy\nx=\0\n\n", 33), CLOSED(DIME_E_MALFORMED)}},
    {"a control character in a kept value",
     NULL,
     0,
     0,
     0,
     {SEND("request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a\tb@c.d\n\n"),
      CLOSED(DIME_E_MALFORMED)}},
    {"a CR inside a kept value",
     NULL,
     0,
     0,
     0,
     {SEND("request=smtpd_access_policy\nsender=a\rb@c.d\n\n"), CLOSED(DIME_E_MALFORMED)}},
    {"size not a number",
     NULL,
     0,
     0,
     0,
     {SEND("request=smtpd_access_policy\nsize=12a\n\n"), CLOSED(DIME_E_MALFORMED)}},
    {"size over 2^64",
     NULL,
     0,
     0,
     0,
     {SEND("request=smtpd_access_policy\nsize=18446744073709551616\n\n"),
      CLOSED(DIME_E_MALFORMED)}},
    {"recipient_count negative",
     NULL,
     0,
     0,
     0,
     {SEND("request=smtpd_access_policy\nrecipient_count=-1\n\n"), CLOSED(DIME_E_MALFORMED)}},
    {"requests answered before the bad one stay answered",
     NULL,
     0,
     0,
     0,
     {SEND(AT("MAIL") AT("MAIL") "junk\n"), EXPECT("action=DUNNO\n\naction=DUNNO\n\n"),
      CLOSED(DIME_E_MALFORMED)}},
    {"a prefix is held",
     NULL,
     0,
     0,
     0,
     {SEND("request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a@b.c\n"), NOQ, EXPECT(""),
      OPEN, SEND("\r"), NOQ, OPEN, SEND("\n"), POLQ("a@b.c", "b.c", RCPT), POLA(DUNNO, NULL),
      EXPECT("action=DUNNO\n\n")}},
    {"bad answers that leave the query open",
     NULL,
     0,
     0,
     0,
     {SEND(RCPT("a@b.c")), STALE, BADANS(0, NULL, 0, 1), BADANS(7, NULL, 0, 1), EXPECT(""), OPEN,
      POLA(DUNNO, NULL), EXPECT("action=DUNNO\n\n"), BADANS(1, NULL, 0, 0), OPEN}},
    {"text with DUNNO closes without a reply",
     NULL,
     0,
     0,
     0,
     {SEND(RCPT("a@b.c")), BADANS(DIME_PFMAP_POL_DUNNO, "x", 0, 0), EXPECT(""),
      CLOSED(DIME_E_INVALID)}},
    {"text with OK closes",
     NULL,
     0,
     0,
     0,
     {SEND(RCPT("a@b.c")), BADANS(DIME_PFMAP_POL_OK, "x", 0, 0), CLOSED(DIME_E_INVALID)}},
    {"CODE 399 closes",
     NULL,
     0,
     0,
     0,
     {SEND(RCPT("a@b.c")), BADANS(DIME_PFMAP_POL_CODE, "x", 399, 0), CLOSED(DIME_E_INVALID)}},
    {"CODE 600 closes",
     NULL,
     0,
     0,
     0,
     {SEND(RCPT("a@b.c")), BADANS(DIME_PFMAP_POL_CODE, "x", 600, 0), CLOSED(DIME_E_INVALID)}},
    {"CODE without text closes",
     NULL,
     0,
     0,
     0,
     {SEND(RCPT("a@b.c")), BADANS(DIME_PFMAP_POL_CODE, "", 550, 0), CLOSED(DIME_E_INVALID)}},
    {"a control character in the text closes",
     NULL,
     0,
     0,
     0,
     {SEND(RCPT("a@b.c")), BADANS(DIME_PFMAP_POL_REJECT, "a\nb", 0, 0), CLOSED(DIME_E_INVALID)}},
    {"a text over DIME_PFMAP_TEXT_MAX closes",
     NULL,
     0,
     0,
     0,
     {SEND(RCPT("a@b.c")), BADANS(DIME_PFMAP_POL_REJECT, text_over, 0, 0), CLOSED(DIME_E_INVALID)}},
    {"max_requests",
     NULL,
     0,
     0,
     2,
     {SEND(AT("MAIL") RCPT("a@b.c") AT("MAIL")), POLQ("a@b.c", "b.c", RCPT), OPEN,
      POLA(DUNNO, NULL), EXPECT("action=DUNNO\n\naction=DUNNO\n\n"), CLOSED(DIME_OK)}},
    {"drain when idle", NULL, 0, 0, 0, {DRAIN, CLOSED(DIME_OK)}},
    {"drain with a query open",
     NULL,
     0,
     0,
     0,
     {SEND(RCPT("a@b.c") AT("MAIL")), POLQ("a@b.c", "b.c", RCPT), DRAIN, OPEN, POLA(DUNNO, NULL),
      EXPECT("action=DUNNO\n\n"), CLOSED(DIME_OK)}},
};

/* The kept attributes of the README request, each where it belongs. */
static void
test_pol_fields(void)
{
	struct dime_pfmap_pol_conf c = {0, 0};
	struct dime_pfmap_pol *p = NULL;
	const struct dime_pfmap_pol_query *q;
	const char *in = POL_README;

	if (dime_pfmap_pol_new(&p, &c) != DIME_OK)
		abort();
	T_CHECK(dime_pfmap_pol_feed(p, (const uint8_t *)in, strlen(in)) == strlen(in),
		"fields: the whole request is taken");
	q = dime_pfmap_pol_query(p);
	if (q == NULL) {
		t_fail("fields: no query");
		dime_pfmap_pol_free(p);
		return;
	}
	T_CHECK(
	    q->id == 1 && q->state == DIME_PFMAP_ST_RCPT &&
		strcmp(q->protocol_state, "RCPT") == 0 && strcmp(q->protocol_name, "SMTP") == 0 &&
		strcmp(q->helo_name, "some.domain.tld") == 0 &&
		strcmp(q->queue_id, "8045F2AB23") == 0 && strcmp(q->instance, "123.456.7") == 0 &&
		strcmp(q->sender, "foo@bar.tld") == 0 && strcmp(q->recipient, "bar@Foo.TLD") == 0 &&
		strcmp(q->client_address, "1.2.3.4") == 0 &&
		strcmp(q->client_name, "another.domain.tld") == 0 &&
		strcmp(q->reverse_client_name, "another.domain.tld") == 0 &&
		strcmp(q->sasl_method, "plain") == 0 && strcmp(q->sasl_username, "you") == 0 &&
		strcmp(q->encryption_protocol, "TLSv1/SSLv3") == 0 && strcmp(q->stress, "") == 0 &&
		strcmp(q->policy_context, "submission") == 0 && q->size == 12345 &&
		q->recipient_count == 0 && strcmp(q->rcpt_domain, "foo.tld") == 0,
	    "fields: a kept attribute is wrong (sender %s, size %llu)", q->sender,
	    (unsigned long long)q->size);
	dime_pfmap_pol_free(p);

	/* numbers: empty is 0, the largest fits; absent attributes are "" */
	in = "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a@b.c\n"
	     "size=18446744073709551615\nrecipient_count=\n\n";
	if (dime_pfmap_pol_new(&p, &c) != DIME_OK)
		abort();
	(void)dime_pfmap_pol_feed(p, (const uint8_t *)in, strlen(in));
	q = dime_pfmap_pol_query(p);
	T_CHECK(q != NULL && q->size == UINT64_MAX && q->recipient_count == 0 &&
		    strcmp(q->sender, "") == 0 && strcmp(q->helo_name, "") == 0,
		"numbers: size %llu", q ? (unsigned long long)q->size : 0ULL);
	dime_pfmap_pol_free(p);
	dime_pfmap_pol_free(NULL);
	T_CHECK(dime_pfmap_pol_new(&p, NULL) == DIME_E_INVALID && p == NULL, "conf NULL");
}

static void
test_pol_req_over(void)
{
	struct dime_pfmap_pol_conf c = {0, 0};
	struct dime_pfmap_pol *p = NULL;
	size_t n = strlen(pol_req_over);

	T_CHECK(n > DIME_PFMAP_POL_REQ_MAX, "the long request is %zu octets", n);
	if (dime_pfmap_pol_new(&p, &c) != DIME_OK)
		abort();
	T_CHECK(dime_pfmap_pol_feed(p, (const uint8_t *)pol_req_over, n) == n &&
		    dime_pfmap_pol_actions(p) == DIME_PFMAP_ACT_CLOSE &&
		    dime_pfmap_pol_error(p) == DIME_E_LIMIT,
		"request over the cap: actions %u error %d", dime_pfmap_pol_actions(p),
		dime_pfmap_pol_error(p));
	dime_pfmap_pol_free(p);
}

/* ---- the domain helper ---- */

static void
test_addr_domain(void)
{
	static const struct {
		const char *addr, *want; /* want NULL: DIME_E_INVALID */
	} v[] = {
	    {"a@b.c", "b.c"},
	    {"A@EXAMPLE.ORG", "example.org"},
	    {"a@example.org.", "example.org"},
	    {"\"x@y\"@z.example", "z.example"},
	    {"a@xn--bcher-kva.example", "xn--bcher-kva.example"},
	    {"a@1-2.3", "1-2.3"},
	    {"a@b", "b"},
	    {"a@", NULL},
	    {"a@.", NULL},
	    {"@b.c", NULL},
	    {"b.c", NULL},
	    {"", NULL},
	    {"a@b..c", NULL},
	    {"a@.b.c", NULL},
	    {"a@b.c..", NULL},
	    {"a@b_c", NULL},
	    {"a@b c", NULL},
	    {"a@[1.2.3.4]", NULL},
	    {"a@b\xc3\xbc.c", NULL},
	};
	char dom[DIME_PFMAP_DOMAIN_MAX + 1], big[DIME_PFMAP_DOMAIN_MAX + 8];
	int rc;

	for (size_t i = 0; i < N_ELEMS(v); i++) {
		memset(dom, 'Z', sizeof(dom));
		rc = dime_pfmap_addr_domain(dom, sizeof(dom), v[i].addr, strlen(v[i].addr));
		if (v[i].want == NULL)
			T_CHECK(rc == DIME_E_INVALID && dom[0] == 0, "domain of [%s]: got %d [%s]",
				v[i].addr, rc, rc == DIME_OK ? dom : "");
		else
			T_CHECK(rc == DIME_OK && strcmp(dom, v[i].want) == 0,
				"domain of [%s]: got %d [%s], want %s", v[i].addr, rc,
				rc == DIME_OK ? dom : "", v[i].want);
	}
	/* length: 253 octets pass (with or without a final dot), 254 do not; labels 63 */
	big[0] = 'a';
	big[1] = '@';
	for (size_t i = 0; i < DIME_PFMAP_DOMAIN_MAX + 1; i++)
		big[2 + i] = (i % 50 == 49) ? '.' : 'd';
	T_CHECK(dime_pfmap_addr_domain(dom, sizeof(dom), big, 2 + DIME_PFMAP_DOMAIN_MAX) == DIME_OK,
		"253 octets pass");
	big[2 + DIME_PFMAP_DOMAIN_MAX] = '.';
	T_CHECK(dime_pfmap_addr_domain(dom, sizeof(dom), big, 3 + DIME_PFMAP_DOMAIN_MAX) == DIME_OK,
		"253 octets and the root dot pass");
	big[2 + DIME_PFMAP_DOMAIN_MAX] = 'd';
	T_CHECK(dime_pfmap_addr_domain(dom, sizeof(dom), big, 3 + DIME_PFMAP_DOMAIN_MAX) ==
		    DIME_E_INVALID,
		"254 octets fail");
	T_CHECK(dime_pfmap_addr_domain(dom, 4, "a@b.cd", 6) == DIME_E_NOSPACE && dom[0] == 0,
		"a short buffer");
	/* the length bounds the address: bytes after it are not read */
	T_CHECK(dime_pfmap_addr_domain(dom, sizeof(dom), "a@b.c@x_y", 5) == DIME_OK &&
		    strcmp(dom, "b.c") == 0,
		"addr_len bounds the address");
	{
		const char *p = (const char *)t_at_page_end(1, "u@example.org", 13);

		T_CHECK(dime_pfmap_addr_domain(dom, sizeof(dom), p, 13) == DIME_OK &&
			    strcmp(dom, "example.org") == 0,
			"at a page end");
	}
}

/* ---- the mapping ---- */

static void
test_route(void)
{
	struct dime_pfmap_route r = {NEXTHOP, DIME_PFMAP_REFUSE_ERROR};
	struct dime_pfmap_route gw = {NEXTHOP, DIME_PFMAP_REFUSE_GATEWAY};
	struct dime_pfmap_sm_answer a;
	struct dime_pfmap_pol_answer pa;
	char longwhy[DIME_PFMAP_TEXT_MAX * 2];
	int rc;

	rc = dime_pfmap_route_sm(&a, &r, DIME_SEND_DMIME, "signet ok");
	T_CHECK(rc == DIME_OK && a.status == DIME_PFMAP_SM_OK && strcmp(a.text, NEXTHOP) == 0 &&
		    a.id == 0,
		"sm dmime: %d %d %s", rc, a.status, a.text);
	rc = dime_pfmap_route_sm(&a, &r, DIME_SEND_NAKED, "legacy");
	T_CHECK(rc == DIME_OK && a.status == DIME_PFMAP_SM_NOTFOUND && a.text[0] == 0,
		"sm naked: %d %d %s", rc, a.status, a.text);
	rc = dime_pfmap_route_sm(&a, &r, DIME_SEND_DEFER, "dns timeout");
	T_CHECK(rc == DIME_OK && a.status == DIME_PFMAP_SM_TEMP &&
		    strcmp(a.text, "dns timeout") == 0,
		"sm defer: %d %d %s", rc, a.status, a.text);
	rc = dime_pfmap_route_sm(&a, &r, DIME_SEND_DEFER, NULL);
	T_CHECK(rc == DIME_OK && a.status == DIME_PFMAP_SM_TEMP && a.text[0] != 0,
		"sm defer without why: %s", a.text);
	rc = dime_pfmap_route_sm(&a, &r, DIME_SEND_REFUSE, "strict\x01\xff");
	T_CHECK(rc == DIME_OK && a.status == DIME_PFMAP_SM_OK &&
		    strcmp(a.text, "error:5.7.1 strict??") == 0,
		"sm refuse: %d %d %s", rc, a.status, a.text);
	rc = dime_pfmap_route_sm(&a, &gw, DIME_SEND_REFUSE, "strict");
	T_CHECK(rc == DIME_OK && a.status == DIME_PFMAP_SM_OK && strcmp(a.text, NEXTHOP) == 0,
		"sm refuse to the gateway: %d %d %s", rc, a.status, a.text);
	rc = dime_pfmap_route_sm(&a, &r, (enum dime_send_action)9, "x");
	T_CHECK(rc == DIME_E_INVALID && a.status == DIME_PFMAP_SM_TEMP, "sm unknown action: %d %d",
		rc, a.status);
	{
		struct dime_pfmap_route bad[] = {{NULL, DIME_PFMAP_REFUSE_ERROR},
						 {"", DIME_PFMAP_REFUSE_ERROR},
						 {"dime:[x] y", DIME_PFMAP_REFUSE_ERROR},
						 {text_over, DIME_PFMAP_REFUSE_ERROR},
						 {NEXTHOP, (enum dime_pfmap_refuse)7}};

		for (size_t i = 0; i < N_ELEMS(bad); i++) {
			rc = dime_pfmap_route_sm(&a, &bad[i],
						 i == 4 ? DIME_SEND_REFUSE : DIME_SEND_DMIME, "x");
			T_CHECK(rc == DIME_E_INVALID && a.status == DIME_PFMAP_SM_TEMP &&
				    a.text[0] != 0,
				"sm bad route %zu: %d %d", i, rc, a.status);
		}
		T_CHECK(dime_pfmap_route_sm(&a, NULL, DIME_SEND_NAKED, "x") == DIME_E_INVALID,
			"sm route NULL");
	}
	memset(longwhy, 'w', sizeof(longwhy) - 1);
	longwhy[sizeof(longwhy) - 1] = 0;
	rc = dime_pfmap_route_sm(&a, &r, DIME_SEND_REFUSE, longwhy);
	T_CHECK(rc == DIME_OK && strlen(a.text) == DIME_PFMAP_TEXT_MAX &&
		    strncmp(a.text, "error:5.7.1 www", 15) == 0,
		"sm refuse, long why cut: %zu", strlen(a.text));

	dime_pfmap_route_pol(&pa, DIME_PFMAP_ST_RCPT, DIME_SEND_REFUSE, "strict");
	T_CHECK(pa.verdict == DIME_PFMAP_POL_CODE && pa.code == 550 &&
		    strcmp(pa.text, "5.7.1 strict") == 0,
		"pol refuse: %d %d %s", pa.verdict, pa.code, pa.text);
	dime_pfmap_route_pol(&pa, DIME_PFMAP_ST_RCPT, DIME_SEND_DEFER, "dns");
	T_CHECK(pa.verdict == DIME_PFMAP_POL_DEFER_IF_PERMIT && strcmp(pa.text, "4.7.0 dns") == 0,
		"pol defer: %d %s", pa.verdict, pa.text);
	dime_pfmap_route_pol(&pa, DIME_PFMAP_ST_RCPT, DIME_SEND_DMIME, "ok");
	T_CHECK(pa.verdict == DIME_PFMAP_POL_DUNNO && pa.text[0] == 0, "pol dmime: %d", pa.verdict);
	dime_pfmap_route_pol(&pa, DIME_PFMAP_ST_RCPT, DIME_SEND_NAKED, "legacy");
	T_CHECK(pa.verdict == DIME_PFMAP_POL_DUNNO, "pol naked: %d", pa.verdict);
	dime_pfmap_route_pol(&pa, DIME_PFMAP_ST_RCPT, (enum dime_send_action)9, "x");
	T_CHECK(pa.verdict == DIME_PFMAP_POL_DEFER_IF_PERMIT && strncmp(pa.text, "4.7.0 ", 6) == 0,
		"pol unknown action defers: %d %s", pa.verdict, pa.text);
	dime_pfmap_route_pol(&pa, DIME_PFMAP_ST_RCPT, DIME_SEND_REFUSE, longwhy);
	T_CHECK(pa.verdict == DIME_PFMAP_POL_CODE && strlen(pa.text) == DIME_PFMAP_TEXT_MAX,
		"pol refuse, long why cut: %zu", strlen(pa.text));
	for (int st = DIME_PFMAP_ST_UNKNOWN; st <= DIME_PFMAP_ST_ETRN; st++) {
		if (st == DIME_PFMAP_ST_RCPT)
			continue;
		dime_pfmap_route_pol(&pa, (enum dime_pfmap_pol_state)st, DIME_SEND_REFUSE, "x");
		T_CHECK(pa.verdict == DIME_PFMAP_POL_DUNNO, "pol refuse at state %d: %d", st,
			pa.verdict);
	}
}

/* dime_send_decide to the wire: a strict sender to a legacy domain, both services. */
static void
test_route_wire(void)
{
	struct dime_mr_result dest;
	struct dime_pfmap_route r = {NEXTHOP, DIME_PFMAP_REFUSE_ERROR};
	struct dime_pfmap_sm_conf sc = {"dime", 0};
	struct dime_pfmap_pol_conf pc = {0, 0};
	struct dime_pfmap_sm *m = NULL;
	struct dime_pfmap_pol *p = NULL;
	struct dime_pfmap_sm_answer a;
	struct dime_pfmap_pol_answer pa;
	const char *why = NULL, *in;
	enum dime_send_action act;
	char want[512];
	const uint8_t *out;
	size_t n = 0;

	memset(&dest, 0, sizeof(dest));
	dest.status = DIME_MR_LEGACY;
	act = dime_send_decide(DIME_POL_STRICT, &dest, DIME_OK, &why);
	T_CHECK(act == DIME_SEND_REFUSE && why != NULL, "decide: %d", act);

	if (dime_pfmap_sm_new(&m, &sc) != DIME_OK || dime_pfmap_pol_new(&p, &pc) != DIME_OK)
		abort();
	in = "23:dime bob@legacy.example,";
	(void)dime_pfmap_sm_feed(m, (const uint8_t *)in, strlen(in));
	T_CHECK(dime_pfmap_sm_query(m) != NULL, "wire: socketmap query");
	if (dime_pfmap_sm_query(m) != NULL) {
		T_CHECK(dime_pfmap_route_sm(&a, &r, act, why) == DIME_OK, "wire: route_sm");
		a.id = dime_pfmap_sm_query(m)->id;
		T_CHECK(dime_pfmap_sm_answer(m, &a) == DIME_OK, "wire: sm answer");
		out = dime_pfmap_sm_out(m, &n);
		snprintf(want, sizeof(want), "%zu:OK error:5.7.1 %s,", strlen(why) + 15, why);
		T_CHECK(n == strlen(want) && memcmp(out, want, n) == 0, "wire: socketmap [%.*s]",
			(int)n, (const char *)out);
	}
	in = RCPT("bob@legacy.example");
	(void)dime_pfmap_pol_feed(p, (const uint8_t *)in, strlen(in));
	T_CHECK(dime_pfmap_pol_query(p) != NULL, "wire: policy query");
	if (dime_pfmap_pol_query(p) != NULL) {
		dime_pfmap_route_pol(&pa, dime_pfmap_pol_query(p)->state, act, why);
		pa.id = dime_pfmap_pol_query(p)->id;
		T_CHECK(dime_pfmap_pol_answer(p, &pa) == DIME_OK, "wire: pol answer");
		out = dime_pfmap_pol_out(p, &n);
		snprintf(want, sizeof(want), "action=550 5.7.1 %s\n\n", why);
		T_CHECK(n == strlen(want) && memcmp(out, want, n) == 0, "wire: policy [%.*s]",
			(int)n, (const char *)out);
	}
	dime_pfmap_sm_free(m);
	dime_pfmap_pol_free(p);
}

int
main(void)
{
	sm_build();
	pol_build();
	run_all(sm_scripts, N_ELEMS(sm_scripts), 0);
	test_sm_out_high();
	test_sm_conf();
	run_all(pol_scripts, N_ELEMS(pol_scripts), 1);
	test_pol_fields();
	test_pol_req_over();
	test_addr_domain();
	test_route();
	test_route_wire();
	free(pol_req_over);
	if (t_failures) {
		fprintf(stderr, "test_pfmap: %d failures\n", t_failures);
		return 1;
	}
	return 0;
}

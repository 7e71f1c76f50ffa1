/* dime/dmtp_client.h against the real server machine (dime/dmtp_session.h), in memory: both
 * listener kinds, every operation, refusals and RSET, dot-stuffing and line ends, a server
 * closing with 421, TLS failures, bad and oversized replies, and byte-at-a-time delivery. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dime/dmtp_client.h"
#include "dime/dmtp_session.h"
#include "tlib.h"

#define HASH                                                                                       \
	"HashOfTheMessageHashOfTheMessageHashOfTheMessageHashOfTheMessageHashOfTheMessageHashOf"
#define FP86                                                                                       \
	"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define ARMOR "-----BEGIN ORGANIZATIONAL SIGNET-----\nAAAA\n-----END ORGANIZATIONAL SIGNET-----\n"

/* How the test's server glue answers. */
struct glue {
	enum dime_dmtp_verdict rcpt; /* RCPT's verdict */
	enum dime_dmtp_verdict data; /* DATA's */
	int tls_ok;		     /* what both sides' handshakes give */
	int drain_after_ready;	     /* drain the server once the client is ready */
	uint8_t got[4096];	     /* the last DATA as the server received it */
	size_t got_len;
	int n_queries;
};

static void
answer(struct dime_dmtp_sess *s, struct glue *g)
{
	const struct dime_dmtp_query *q = dime_dmtp_sess_query(s);
	struct dime_dmtp_answer a;

	memset(&a, 0, sizeof(a));
	a.id = q->id;
	g->n_queries++;
	switch (q->kind) {
	case DIME_DMTP_Q_ORIGIN: a.verdict = DIME_DMTP_V_OK; break;
	case DIME_DMTP_Q_RCPT: a.verdict = g->rcpt; break;
	case DIME_DMTP_Q_DATA:
		a.verdict = g->data;
		memcpy(a.hash, HASH, sizeof(HASH));
		if (q->data_len <= sizeof(g->got)) {
			memcpy(g->got, q->data, q->data_len);
			g->got_len = q->data_len;
		}
		break;
	case DIME_DMTP_Q_SGNT:
	case DIME_DMTP_Q_HIST:
		a.verdict =
		    q->kind == DIME_DMTP_Q_SGNT ? DIME_DMTP_V_ORG_SIGNET : DIME_DMTP_V_HISTORY;
		a.armor = ARMOR;
		a.armor_len = sizeof(ARMOR) - 1;
		break;
	case DIME_DMTP_Q_VRFY: a.verdict = DIME_DMTP_V_ORG_CURRENT; break;
	}
	T_CHECK(dime_dmtp_sess_answer(s, &a) == DIME_OK, "server answer");
}

/* Move bytes both ways until the client needs its caller (ready, result, close) or nothing
 * moves. step: octets handed over per feed (0: all). Returns the client's actions. */
static unsigned
pump(struct dime_dmtp_client *c, struct dime_dmtp_sess *s, struct glue *g, size_t step)
{
	for (int rounds = 0; rounds < 100000; rounds++) {
		const uint8_t *p;
		size_t n, used, moved = 0;
		unsigned ca = dime_dmtp_client_actions(c), sa;

		/* client -> server */
		p = dime_dmtp_client_out(c, &n);
		if (n > 0) {
			size_t k = step > 0 && step < n ? step : n;

			used = dime_dmtp_sess_feed(s, p, k);
			dime_dmtp_client_out_done(c, used);
			moved += used;
		}
		sa = dime_dmtp_sess_actions(s);
		if (sa & DIME_DMTP_ACT_QUERY) {
			answer(s, g);
			moved++;
		}
		/* server -> client */
		p = dime_dmtp_sess_out(s, &n);
		if (n > 0 && !(ca & (DIME_DMTP_CLIENT_ACT_RESULT | DIME_DMTP_CLIENT_ACT_CLOSE))) {
			size_t k = step > 0 && step < n ? step : n;

			used = dime_dmtp_client_feed(c, p, k);
			dime_dmtp_sess_out_done(s, used);
			moved += used;
		}
		sa = dime_dmtp_sess_actions(s);
		ca = dime_dmtp_client_actions(c);
		if ((sa & DIME_DMTP_ACT_TLS) && (ca & DIME_DMTP_CLIENT_ACT_TLS)) {
			dime_dmtp_sess_tls_done(s, g->tls_ok ? DIME_DMTP_TLS_OK
							     : DIME_DMTP_TLS_FAILED);
			dime_dmtp_client_tls_done(c, g->tls_ok);
			moved++;
		}
		ca = dime_dmtp_client_actions(c);
		if ((ca & DIME_DMTP_CLIENT_ACT_READY) && g->drain_after_ready) {
			g->drain_after_ready = 0;
			dime_dmtp_sess_drain(s);
			moved++;
		}
		if (ca & (DIME_DMTP_CLIENT_ACT_READY | DIME_DMTP_CLIENT_ACT_RESULT |
			  DIME_DMTP_CLIENT_ACT_CLOSE)) {
			(void)dime_dmtp_client_out(c, &n);
			if (n == 0)
				return ca;
		}
		if (moved == 0)
			return ca;
	}
	return dime_dmtp_client_actions(c);
}

static void
session(enum dime_dmtp_sess_kind kind, size_t step)
{
	struct dime_dmtp_sess_conf sconf = {kind, "mx.example.net", 0, 0, 0};
	struct dime_dmtp_client_conf cconf = {
	    kind == DIME_DMTP_SESS_DMTP ? DIME_DMTP_CLIENT_IMPLICIT : DIME_DMTP_CLIENT_DUAL,
	    "mx.example.org", "mx.example.net", 0};
	struct dime_dmtp_sess *s = NULL;
	struct dime_dmtp_client *c = NULL;
	const struct dime_dmtp_client_result *r;
	struct dime_dmtp_client_op op;
	struct glue g;
	const char *why;
	/* CRLF lines and a line starting with a dot: the server must get LF lines, unstuffed */
	static const char msg[] = "-----BEGIN ENCRYPTED MESSAGE-----\r\n.AAAA\r\n..BB\n"
				  "-----END ENCRYPTED MESSAGE-----\r\n";
	static const char want[] = "-----BEGIN ENCRYPTED MESSAGE-----\n.AAAA\n..BB\n"
				   "-----END ENCRYPTED MESSAGE-----\n";
	unsigned a;

	memset(&g, 0, sizeof(g));
	g.rcpt = DIME_DMTP_V_OK;
	g.data = DIME_DMTP_V_ACCEPTED;
	g.tls_ok = 1;
	if (dime_dmtp_sess_new(&s, &sconf) != DIME_OK ||
	    dime_dmtp_client_new(&c, &cconf) != DIME_OK) {
		t_fail("setup");
		goto out;
	}
	dime_dmtp_sess_start(s);
	a = pump(c, s, &g, step);
	T_CHECK(a == DIME_DMTP_CLIENT_ACT_READY,
		"kind %d step %zu: ready after the opening (%u: %s)", (int)kind, step, a,
		dime_dmtp_client_error(c));
	T_CHECK(dime_dmtp_sess_is_dmtp(s), "the server is in DMTP mode");

	memset(&op, 0, sizeof(op));
	op.kind = DIME_DMTP_CLIENT_SGNT;
	op.target = "example.net";
	T_CHECK(dime_dmtp_client_submit(c, &op, &why) == DIME_OK, "SGNT: %s", why);
	a = pump(c, s, &g, step);
	r = dime_dmtp_client_result(c);
	T_CHECK(a == DIME_DMTP_CLIENT_ACT_RESULT && r != NULL && r->code == 270 &&
		    strcmp(r->stage, "SGNT") == 0 && strstr(r->text, "AAAA") != NULL,
		"SGNT: 270 with the armor (%d '%s')", r != NULL ? r->code : 0,
		r != NULL ? r->text : "");
	T_CHECK(dime_dmtp_client_submit(c, &op, &why) == DIME_E_INVALID,
		"no second operation before result_done");
	dime_dmtp_client_result_done(c);

	op.kind = DIME_DMTP_CLIENT_VRFY;
	op.fp = FP86;
	T_CHECK(dime_dmtp_client_submit(c, &op, &why) == DIME_OK, "VRFY: %s", why);
	(void)pump(c, s, &g, step);
	r = dime_dmtp_client_result(c);
	T_CHECK(r != NULL && r->code == 271, "VRFY: 271");
	dime_dmtp_client_result_done(c);

	op.kind = DIME_DMTP_CLIENT_HIST;
	op.target = "bob@example.net";
	op.fp = NULL;
	T_CHECK(dime_dmtp_client_submit(c, &op, &why) == DIME_OK, "HIST: %s", why);
	(void)pump(c, s, &g, step);
	r = dime_dmtp_client_result(c);
	T_CHECK(r != NULL && r->code == 290 && strstr(r->text, "SIGNET") != NULL, "HIST: 290");
	dime_dmtp_client_result_done(c);

	/* a message refused at RCPT: the result names the step; RSET; then one that goes */
	memset(&op, 0, sizeof(op));
	op.kind = DIME_DMTP_CLIENT_SEND;
	op.from = "example.org";
	op.from_fp = FP86;
	op.to = "example.net";
	op.to_fp = FP86;
	op.msg = (const uint8_t *)msg;
	op.msg_len = sizeof(msg) - 1;
	g.rcpt = DIME_DMTP_V_RCPT_INVALID;
	T_CHECK(dime_dmtp_client_submit(c, &op, &why) == DIME_OK, "SEND: %s", why);
	(void)pump(c, s, &g, step);
	r = dime_dmtp_client_result(c);
	T_CHECK(r != NULL && r->code == 576 && strcmp(r->stage, "RCPT") == 0,
		"SEND refused at RCPT: 576 (%d %s)", r != NULL ? r->code : 0,
		r != NULL ? r->stage : "");
	dime_dmtp_client_result_done(c);
	a = pump(c, s, &g, step);
	T_CHECK(a == DIME_DMTP_CLIENT_ACT_READY, "ready again after RSET (%u)", a);
	g.rcpt = DIME_DMTP_V_OK;
	T_CHECK(dime_dmtp_client_submit(c, &op, &why) == DIME_OK, "SEND 2: %s", why);
	(void)pump(c, s, &g, step);
	r = dime_dmtp_client_result(c);
	T_CHECK(r != NULL && r->code == 254 && strcmp(r->stage, "DATA") == 0 &&
		    strcmp(r->hash, HASH) == 0,
		"SEND: 254 with the hash (%d '%s')", r != NULL ? r->code : 0,
		r != NULL ? r->hash : "");
	T_CHECK(g.got_len == sizeof(want) - 1 && memcmp(g.got, want, g.got_len) == 0,
		"the server got the message with LF lines, unstuffed (%zu octets: %.*s)", g.got_len,
		(int)g.got_len, (const char *)g.got);
	dime_dmtp_client_result_done(c);

	g.data = DIME_DMTP_V_DUPLICATE;
	T_CHECK(dime_dmtp_client_submit(c, &op, &why) == DIME_OK, "SEND 3");
	(void)pump(c, s, &g, step);
	r = dime_dmtp_client_result(c);
	T_CHECK(r != NULL && r->code == 255 && strcmp(r->hash, HASH) == 0, "SEND again: 255");
	dime_dmtp_client_result_done(c);

	dime_dmtp_client_quit(c);
	a = pump(c, s, &g, step);
	T_CHECK(a == DIME_DMTP_CLIENT_ACT_CLOSE && dime_dmtp_client_error(c)[0] == 0 &&
		    dime_dmtp_client_last_code(c) == 221,
		"QUIT: closed cleanly (%u '%s' %d)", a, dime_dmtp_client_error(c),
		dime_dmtp_client_last_code(c));
out:
	dime_dmtp_client_free(c);
	dime_dmtp_sess_free(s);
}

/* The server closes on us, or TLS fails: CLOSE with a reason. */
static void
failures(void)
{
	struct dime_dmtp_sess_conf sconf = {DIME_DMTP_SESS_DUAL, "mx.example.net", 0, 0, 0};
	struct dime_dmtp_client_conf cconf = {DIME_DMTP_CLIENT_DUAL, "mx.example.org",
					      "mx.example.net", 0};
	struct dime_dmtp_sess *s = NULL;
	struct dime_dmtp_client *c = NULL;
	struct glue g;
	unsigned a;

	for (int k = 0; k < 2; k++) {
		memset(&g, 0, sizeof(g));
		g.tls_ok = k == 0 ? 0 : 1;
		g.drain_after_ready = k == 1;
		if (dime_dmtp_sess_new(&s, &sconf) != DIME_OK ||
		    dime_dmtp_client_new(&c, &cconf) != DIME_OK) {
			t_fail("setup");
			break;
		}
		dime_dmtp_sess_start(s);
		a = pump(c, s, &g, 0);
		if (k == 1) /* ready, then the drain's 421 arrives */
			a = pump(c, s, &g, 0);
		T_CHECK(a == DIME_DMTP_CLIENT_ACT_CLOSE && dime_dmtp_client_error(c)[0] != 0,
			"case %d: closed with a reason (%u '%s')", k, a, dime_dmtp_client_error(c));
		if (k == 1)
			T_CHECK(dime_dmtp_client_last_code(c) == 421, "drain: 421 seen");
		dime_dmtp_client_free(c);
		dime_dmtp_sess_free(s);
		c = NULL;
		s = NULL;
	}
}

static void
feed_text(const char *text, const char *want_err)
{
	struct dime_dmtp_client_conf cconf = {DIME_DMTP_CLIENT_IMPLICIT, "mx.example.org", NULL, 0};
	struct dime_dmtp_client *c = NULL;

	if (dime_dmtp_client_new(&c, &cconf) != DIME_OK) {
		t_fail("new");
		return;
	}
	{
		size_t off = 0, n;

		/* as an idle caller would: feed again what READY handed back */
		while (off < strlen(text) &&
		       (n = dime_dmtp_client_feed(c, (const uint8_t *)text + off,
						  strlen(text) - off)) > 0)
			off += n;
		T_CHECK(off == strlen(text), "'%.30s': everything consumed once closed", text);
	}
	T_CHECK(dime_dmtp_client_actions(c) == DIME_DMTP_CLIENT_ACT_CLOSE &&
		    strstr(dime_dmtp_client_error(c), want_err) != NULL,
		"'%.30s': closed with '%s' (got '%s')", text, want_err, dime_dmtp_client_error(c));
	dime_dmtp_client_free(c);
}

static void
bad_replies(void)
{
	char long_line[700];
	struct dime_dmtp_client_conf bad = {DIME_DMTP_CLIENT_DUAL, "mx.example.org", NULL, 0};
	struct dime_dmtp_client *c = NULL;

	feed_text("hello\n", "bad reply");
	feed_text("220 mx.example.net ESMTP ready\n", "does not name DMTP");
	feed_text("554 go away\n", "refused the session");
	feed_text("220-mx DMTP\n221 changed code\n", "bad reply");
	feed_text("220 mx DMTP\n250 unasked\n250 more\n", "");
	memset(long_line, 'x', sizeof(long_line));
	memcpy(long_line, "220 ", 4);
	long_line[sizeof(long_line) - 2] = '\n';
	long_line[sizeof(long_line) - 1] = 0;
	feed_text(long_line, "longer than 512");
	T_CHECK(dime_dmtp_client_new(&c, &bad) == DIME_E_INVALID && c == NULL,
		"DUAL without a TLS host is refused");
	bad.mode = DIME_DMTP_CLIENT_IMPLICIT;
	bad.helo = NULL;
	T_CHECK(dime_dmtp_client_new(&c, &bad) == DIME_E_INVALID, "no EHLO name is refused");
}

int
main(void)
{
	t_init();
	session(DIME_DMTP_SESS_DMTP, 0);
	session(DIME_DMTP_SESS_DUAL, 0);
	session(DIME_DMTP_SESS_DMTP, 1); /* one octet at a time */
	session(DIME_DMTP_SESS_DUAL, 7);
	failures();
	bad_replies();
	return t_done("dmtp_client");
}

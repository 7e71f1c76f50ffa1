/* dimed's store lookups for MAIL, RCPT, SGNT, HIST and VRFY (dime_server_lookup) over a store
 * made with the dime CLI: a hosted org and a user with two signet versions. Each verdict of
 * docs/dimed.md "Lookups", and the armor served decodes to the signet the command named. Then
 * the DATA side: the 254 identifier against a known SHA-512, and the verdicts of real ACCEPT
 * jobs (a good message, author output without the origin's signature, a flipped byte, junk). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dime/plmsg.h"
#include "dime/server.h"
#include "dime/signet.h"
#include "tlib.h"

static const char *cli = DIME_CLI;
static int64_t now_s = 2000000000; /* the lookups' clock: the origin tests age it */

struct fps {
	char full[4][DIME_FP_B64_LEN + 1], core[4][DIME_FP_B64_LEN + 1];
	size_t n;
	struct dime_store *st;
};

static int
run(const char *store, const char *args)
{
	char cmd[8192];

	snprintf(cmd, sizeof(cmd), "%s --store %s %s >/dev/null 2>&1", cli, store, args);
	return system(cmd);
}

static int
row_fps(const struct dime_store_row *row, void *arg)
{
	struct fps *f = arg;
	struct dime_signet *s = NULL;
	uint8_t *blob = NULL;
	size_t len = 0;

	if (f->n == 4)
		return 1;
	if (dime_store_get_row(f->st, &blob, &len, row->rowid) != DIME_OK ||
	    dime_signet_parse(&s, NULL, blob, len) != DIME_OK ||
	    dime_signet_fingerprint_b64(f->full[f->n], s, DIME_FP_FULL) != DIME_OK ||
	    dime_signet_fingerprint_b64(f->core[f->n], s, DIME_FP_CRYPTO) != DIME_OK)
		t_fail("cannot fingerprint row %lld", (long long)row->rowid);
	T_CHECK(strcmp(f->full[f->n], row->fingerprint) == 0, "row fingerprint differs");
	dime_signet_free(s);
	free(blob);
	f->n++;
	return 0;
}

/* Look line up; check the verdict and, when want_fp, that the armor holds n_want signets and
 * the first has that full fingerprint (for HIST, a core signet: its full fingerprint is the core
 * one). */
static void
check(struct dime_store *st, const char *line, enum dime_dmtp_verdict want, const char *want_fp,
      size_t n_want)
{
	struct dime_dmtp_query q;
	struct dime_dmtp_answer a;
	const char *why = "";
	char *armor = NULL;
	int rc;

	memset(&q, 0, sizeof(q));
	q.id = 42;
	if (dime_dmtp_parse(&q.cmd, &why, line, strlen(line)) != DIME_OK) {
		t_fail("%s: does not parse: %s", line, why);
		return;
	}
	switch (q.cmd.verb) {
	case DIME_DMTP_MAIL: q.kind = DIME_DMTP_Q_ORIGIN; break;
	case DIME_DMTP_RCPT: q.kind = DIME_DMTP_Q_RCPT; break;
	case DIME_DMTP_SGNT: q.kind = DIME_DMTP_Q_SGNT; break;
	case DIME_DMTP_HIST: q.kind = DIME_DMTP_Q_HIST; break;
	default: q.kind = DIME_DMTP_Q_VRFY; break;
	}
	rc = dime_server_lookup(st, &a, &armor, &q, now_s);
	T_CHECK(rc == DIME_OK && a.id == 42, "%s: rc %d", line, rc);
	T_CHECK(a.verdict == want, "%s: got verdict %d, want %d", line, (int)a.verdict, (int)want);
	T_CHECK((armor != NULL) == (want_fp != NULL) && a.armor == armor, "%s: armor %s", line,
		armor ? "present" : "missing");
	if (armor != NULL && want_fp != NULL) {
		const char *p = armor;
		size_t n = 0;
		char got[DIME_FP_B64_LEN + 1] = "";

		while ((p = strstr(p, "-----BEGIN")) != NULL) {
			const char *end = strstr(p, "-----END");
			const char *eol = end ? strchr(end, '\n') : NULL;
			struct dime_signet *s = NULL;

			if (eol == NULL)
				break;
			if (dime_signet_load(&s, NULL, (const uint8_t *)p, (size_t)(eol + 1 - p)) !=
			    DIME_OK) {
				t_fail("%s: armor %zu does not load", line, n);
				break;
			}
			/* A core signet has no full signature: its full fingerprint is its core
			 * one, which a full signet's never is. */
			if (n == 0 && dime_signet_fingerprint_b64(got, s, DIME_FP_FULL) != DIME_OK)
				got[0] = 0;
			dime_signet_free(s);
			n++;
			p = eol + 1;
		}
		T_CHECK(n == n_want, "%s: got %zu signets, want %zu", line, n, n_want);
		T_CHECK(strcmp(got, want_fp) == 0, "%s: got fingerprint %s, want %s", line, got,
			want_fp);
		T_CHECK(a.armor_len == strlen(armor), "%s: armor_len", line);
	}
	free(armor);
}

/* One ACCEPT job through a fresh run, as a pool worker would run it. Returns: the job's rc. */
static int
accept_one(struct dime_pl_dir *dir, const uint8_t *in, size_t len)
{
	struct dime_pl_msg_conf c;
	struct dime_pl_msg *m = NULL;
	struct dime_pl_msg_worker *w = NULL;
	struct dime_pl_msg_job j;
	char why[DIME_PL_MSG_WHY_MAX];
	int rc;

	memset(&c, 0, sizeof(c));
	memset(&j, 0, sizeof(j));
	c.op = DIME_PL_MSG_ACCEPT;
	if (dime_pl_msg_new(&m, why, sizeof(why), dir, &c) != DIME_OK ||
	    dime_pl_msg_worker_new(&w, m, 1) != DIME_OK) {
		t_fail("accept run: %s", why);
		dime_pl_msg_free(m);
		return DIME_E_INVALID;
	}
	j.in = in;
	j.in_len = len;
	(void)dime_pl_msg_run(w, &j, 1);
	rc = j.rc;
	dime_pl_msg_job_clear(&j);
	dime_pl_msg_worker_free(w);
	dime_pl_msg_free(m);
	return rc;
}

/* Wrap a mail from alice to bob with the CLI's library path (dime_pl_msg WRAP). */
static int
wrap_one(struct dime_pl_dir *dir, int origin_sign, uint8_t **out, size_t *out_len)
{
	static const char mail[] = "From: alice@alpha.example\r\nTo: bob@alpha.example\r\n"
				   "Subject: hi\r\n\r\nhello\r\n";
	struct dime_pl_msg_conf c;
	struct dime_pl_msg *m = NULL;
	struct dime_pl_msg_worker *w = NULL;
	struct dime_pl_msg_job j;
	char why[DIME_PL_MSG_WHY_MAX];

	memset(&c, 0, sizeof(c));
	memset(&j, 0, sizeof(j));
	c.op = DIME_PL_MSG_WRAP;
	c.from = "alice@alpha.example";
	c.to = "bob@alpha.example";
	c.origin_sign = origin_sign;
	*out = NULL;
	if (dime_pl_msg_new(&m, why, sizeof(why), dir, &c) != DIME_OK ||
	    dime_pl_msg_worker_new(&w, m, 1) != DIME_OK) {
		t_fail("wrap run: %s", why);
		dime_pl_msg_free(m);
		return DIME_E_INVALID;
	}
	j.in = (const uint8_t *)mail;
	j.in_len = sizeof(mail) - 1;
	(void)dime_pl_msg_run(w, &j, 1);
	if (j.rc == DIME_OK) {
		*out = malloc(j.out_len);
		if (*out == NULL)
			abort();
		memcpy(*out, j.out, j.out_len);
		*out_len = j.out_len;
	} else {
		t_fail("wrap: %s", j.why);
	}
	dime_pl_msg_job_clear(&j);
	dime_pl_msg_worker_free(w);
	dime_pl_msg_free(m);
	return *out != NULL ? DIME_OK : DIME_E_INVALID;
}

static void
test_data_side(const char *path)
{
	static const struct {
		int rc;
		enum dime_dmtp_verdict want;
	} map[] = {
	    {DIME_OK, DIME_DMTP_V_ACCEPTED},
	    {DIME_E_TRUNCATED, DIME_DMTP_V_INVALID},
	    {DIME_E_MALFORMED, DIME_DMTP_V_INVALID},
	    {DIME_E_TRAILING, DIME_DMTP_V_INVALID},
	    {DIME_E_LIMIT, DIME_DMTP_V_INVALID},
	    {DIME_E_INVALID, DIME_DMTP_V_INVALID},
	    {DIME_E_BADSIG, DIME_DMTP_V_BAD_ORIGIN},
	    {DIME_E_NOTFOUND, DIME_DMTP_V_UNKNOWN_RECIPIENT},
	    {DIME_E_NOMEM, DIME_DMTP_V_TEMPFAIL},
	    {DIME_E_IO, DIME_DMTP_V_TEMPFAIL},
	    {DIME_E_AGAIN, DIME_DMTP_V_TEMPFAIL},
	    {DIME_E_CRYPTO, DIME_DMTP_V_TEMPFAIL},
	};
	uint8_t hash[64], *good = NULL, *unsig = NULL, junk[300];
	size_t good_len = 0, unsig_len = 0;
	char id[DIME_DMTP_SESS_HASH_CHARS + 1];
	struct dime_pl_dir *dir = NULL;
	const char *why = "";
	int rc;

	T_CHECK(dime_server_msg_id(hash, id, (const uint8_t *)"abc", 3) == DIME_OK &&
		    strcmp(id,
			   "3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q"
			   "86A4qmslPpUyknw") == 0 &&
		    hash[0] == 0xdd && hash[63] == 0x9f,
		"msg id of \"abc\": got %s", id);
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		T_CHECK(dime_server_accept_verdict(map[i].rc) == map[i].want,
			"accept verdict of %d: got %d, want %d", map[i].rc,
			(int)dime_server_accept_verdict(map[i].rc), (int)map[i].want);

	if (run(path, "user create alice@alpha.example") != 0 ||
	    dime_pl_dir_open(&dir, path, &why) != DIME_OK) {
		t_fail("directory: %s", why);
		return;
	}
	if (wrap_one(dir, 1, &good, &good_len) != DIME_OK ||
	    wrap_one(dir, 0, &unsig, &unsig_len) != DIME_OK)
		goto out;
	rc = accept_one(dir, good, good_len);
	T_CHECK(dime_server_accept_verdict(rc) == DIME_DMTP_V_ACCEPTED, "good message: rc %d", rc);
	/* Author output has no origin signature: 578 (spec, DATA). */
	rc = accept_one(dir, unsig, unsig_len);
	T_CHECK(dime_server_accept_verdict(rc) == DIME_DMTP_V_BAD_ORIGIN, "unsigned: rc %d", rc);
	/* Flipped bits across the message: a tampered message is refused for good (578 or 451 DATA
	 * CORRUPTED), never a temporary failure that invites a retry. Bytes the destination cannot
	 * check (the author's encrypted signatures) may pass: that is the engine's accept rule. */
	{
		size_t n_bad = 0;

		for (size_t i = 0; i < good_len; i += 97) {
			enum dime_dmtp_verdict v;

			good[i] ^= 0x01;
			v = dime_server_accept_verdict(accept_one(dir, good, good_len));
			good[i] ^= 0x01;
			n_bad += v == DIME_DMTP_V_BAD_ORIGIN;
			T_CHECK(v == DIME_DMTP_V_BAD_ORIGIN || v == DIME_DMTP_V_INVALID ||
				    v == DIME_DMTP_V_UNKNOWN_RECIPIENT || v == DIME_DMTP_V_ACCEPTED,
				"byte %zu flipped: verdict %d", i, (int)v);
		}
		T_CHECK(n_bad > 0, "no flipped byte gave 578");
	}
	memset(junk, 'j', sizeof(junk));
	rc = accept_one(dir, junk, sizeof(junk));
	T_CHECK(dime_server_accept_verdict(rc) == DIME_DMTP_V_INVALID, "junk: rc %d", rc);
	rc = accept_one(dir, good, 7);
	T_CHECK(dime_server_accept_verdict(rc) == DIME_DMTP_V_INVALID, "truncated: rc %d", rc);
out:
	free(good);
	free(unsig);
	dime_pl_dir_close(dir);
}

/* Put alpha's org signet under ident (its last byte flipped when tamper: the full signature
 * then fails) with fingerprint fp, in state. Returns: the row id, or -1. */
static int64_t
put_org_as(struct dime_store *st, const char *ident, const char *fp, int tamper,
	   enum dime_store_state state)
{
	uint8_t *blob = NULL;
	size_t len = 0;
	struct dime_store_row row;
	int64_t id = -1;

	if (dime_store_get(st, &blob, &len, NULL, "alpha.example", DIME_STORE_ORG_SIGNET, 0) !=
		DIME_OK ||
	    len == 0)
		goto out;
	if (tamper)
		blob[len - 1] ^= 0x01;
	if (dime_store_put(st, NULL, ident, DIME_STORE_ORG_SIGNET, blob, len, 0, 0, fp) !=
		DIME_OK ||
	    dime_store_find(st, &row, ident, DIME_STORE_ORG_SIGNET, blob, len) != DIME_OK ||
	    dime_store_set_state(st, row.rowid, state) != DIME_OK)
		goto out;
	id = row.rowid;
out:
	free(blob);
	if (id < 0)
		t_fail("cannot store an org signet as %s", ident);
	return id;
}

static void
mail_at(struct dime_store *st, const char *domain, const char *fp, int64_t at,
	enum dime_dmtp_verdict want)
{
	char line[1024];

	now_s = at;
	snprintf(line, sizeof(line), "MAIL FROM=<%s> FINGERPRINT=[%s]\n", domain, fp);
	check(st, line, want, NULL, 0);
}

/* MAIL's origin codes (spec Part 7, MAIL): 470, then 570 after 72 hours of failures for the
 * same (domain, fingerprint), forgotten 72 hours after its last reference; 575 for a signet
 * held only as pending, or one that no longer verifies; a 250 clears the failures. */
static void
test_origin(struct dime_store *st, const struct fps *org, const struct fps *bob)
{
	const int64_t h = 3600, t0 = 2000000000;
	int64_t row;

	mail_at(st, "gamma.example", bob->full[1], t0, DIME_DMTP_V_ORIGIN_TEMP);
	mail_at(st, "gamma.example", bob->full[1], t0 + 71 * h, DIME_DMTP_V_ORIGIN_TEMP);
	mail_at(st, "gamma.example", bob->full[1], t0 + 72 * h - 1, DIME_DMTP_V_ORIGIN_TEMP);
	mail_at(st, "gamma.example", bob->full[1], t0 + 72 * h, DIME_DMTP_V_ORIGIN_PERM);
	/* another fingerprint of the same domain has its own clock */
	mail_at(st, "gamma.example", bob->core[1], t0 + 72 * h, DIME_DMTP_V_ORIGIN_TEMP);
	/* still referenced within 72 hours: still 570 */
	mail_at(st, "gamma.example", bob->full[1], t0 + 140 * h, DIME_DMTP_V_ORIGIN_PERM);
	/* 72 hours and a second without a reference: forgotten, a fresh 470 */
	mail_at(st, "gamma.example", bob->full[1], t0 + 212 * h + 1, DIME_DMTP_V_ORIGIN_TEMP);
	mail_at(st, "gamma.example", bob->full[1], t0 + 250 * h, DIME_DMTP_V_ORIGIN_TEMP);
	mail_at(st, "gamma.example", bob->full[1], t0 + 284 * h + 1, DIME_DMTP_V_ORIGIN_PERM);

	/* 575: the fingerprint only as a pending signet; a stored signet that fails to verify
	 * (named, or the domain's latest when the fingerprint is unknown) */
	put_org_as(st, "pending.example", org->full[0], 0, DIME_STORE_PENDING);
	mail_at(st, "pending.example", org->full[0], t0, DIME_DMTP_V_ORIGIN_INVALID);
	mail_at(st, "pending.example", org->core[0], t0, DIME_DMTP_V_ORIGIN_INVALID);
	mail_at(st, "pending.example", bob->full[0], t0, DIME_DMTP_V_ORIGIN_TEMP);
	put_org_as(st, "tampered.example", org->full[0], 1, DIME_STORE_VERIFIED);
	mail_at(st, "tampered.example", org->full[0], t0, DIME_DMTP_V_ORIGIN_INVALID);
	mail_at(st, "tampered.example", bob->full[0], t0, DIME_DMTP_V_ORIGIN_INVALID);

	/* a signet that arrives ends the failures: 250, and a later failure starts afresh */
	mail_at(st, "delta.example", org->full[0], t0, DIME_DMTP_V_ORIGIN_TEMP);
	mail_at(st, "delta.example", org->full[0], t0 + 40 * h, DIME_DMTP_V_ORIGIN_TEMP);
	mail_at(st, "delta.example", org->full[0], t0 + 73 * h, DIME_DMTP_V_ORIGIN_PERM);
	row = put_org_as(st, "delta.example", org->full[0], 0, DIME_STORE_VERIFIED);
	mail_at(st, "delta.example", org->full[0], t0 + 74 * h, DIME_DMTP_V_OK);
	T_CHECK(row >= 0 && dime_store_delete(st, row) == DIME_OK, "delete delta's signet");
	mail_at(st, "delta.example", org->full[0], t0 + 75 * h, DIME_DMTP_V_ORIGIN_TEMP);
	now_s = t0;
}

static int
row_created(const struct dime_store_row *row, void *arg)
{
	int64_t *created = arg;

	if (row->version >= 1 && row->version <= 4)
		created[row->version - 1] = row->created;
	return 0;
}

/* 586: a user signet version replaced more than DIME_SERVER_STALE_S ago is stale; the current
 * one, one replaced less long ago, and a fingerprint or recipient not stored are not. */
static void
test_stale(struct dime_store *st, const struct fps *org, const struct fps *bob)
{
	static const struct {
		const char *rcpt;
		int fp; /* 0: bob's v1 crypto fp, 1: v2's, 2: the org's */
		int64_t after;
		int want;
	} cases[] = {
	    {"bob@alpha.example", 0, DIME_SERVER_STALE_S + 1, 1},
	    {"bob@alpha.example", 0, DIME_SERVER_STALE_S, 0},
	    {"bob@alpha.example", 0, 0, 0},
	    {"bob@alpha.example", 1, 10 * (int64_t)DIME_SERVER_STALE_S, 0},
	    {"bob@alpha.example", 2, 10 * (int64_t)DIME_SERVER_STALE_S, 0},
	    {"eve@alpha.example", 0, 10 * (int64_t)DIME_SERVER_STALE_S, 0},
	};
	int64_t created[4] = {0};
	int stale = -1, rc;

	if (dime_store_list(st, "bob@alpha.example", DIME_STORE_USER_SIGNET, row_created,
			    created) != DIME_OK ||
	    created[1] == 0) {
		t_fail("bob's versions");
		return;
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *fp = cases[i].fp == 2 ? org->core[0] : bob->core[cases[i].fp];

		rc = dime_server_rcpt_stale(st, &stale, cases[i].rcpt, fp,
					    created[1] + cases[i].after);
		T_CHECK(rc == DIME_OK && stale == cases[i].want,
			"stale case %zu: got rc %d stale %d, want %d", i, rc, stale, cases[i].want);
	}
}

int
main(void)
{
	struct fps org, bob;
	struct dime_store *st = NULL;
	char err[256], line[1024];
	const char *path;

	t_init();
	if (t_mkdtemp("dimed_lookup") != 0)
		return 1;
	path = t_path("s.db");
	if (run(path, "org create alpha.example") != 0 ||
	    run(path, "user create bob@alpha.example") != 0 ||
	    run(path, "user create bob@alpha.example --rotate") != 0) {
		t_fail("the dime CLI could not make the store");
		goto out;
	}
	if (dime_store_open(&st, path, err, sizeof(err)) != DIME_OK) {
		t_fail("store_open: %s", err);
		goto out;
	}
	memset(&org, 0, sizeof(org));
	memset(&bob, 0, sizeof(bob));
	org.st = bob.st = st;
	if (dime_store_list(st, "alpha.example", DIME_STORE_ORG_SIGNET, row_fps, &org) != DIME_OK ||
	    dime_store_list(st, "bob@alpha.example", DIME_STORE_USER_SIGNET, row_fps, &bob) !=
		DIME_OK ||
	    org.n != 1 || bob.n != 2) {
		t_fail("store holds %zu org and %zu user signets, want 1 and 2", org.n, bob.n);
		goto out;
	}

	/* SGNT */
	check(st, "SGNT FOR=<alpha.example>\n", DIME_DMTP_V_ORG_SIGNET, org.full[0], 1);
	snprintf(line, sizeof(line), "SGNT FOR=<alpha.example> FINGERPRINT=[%s]\n", org.full[0]);
	check(st, line, DIME_DMTP_V_ORG_SIGNET, org.full[0], 1);
	snprintf(line, sizeof(line), "SGNT FOR=<alpha.example> FINGERPRINT=[%s]\n", bob.full[0]);
	check(st, line, DIME_DMTP_V_UNAVAILABLE, NULL, 0);
	check(st, "SGNT FOR=<bob@alpha.example>\n", DIME_DMTP_V_USER_SIGNET, bob.full[1], 1);
	snprintf(line, sizeof(line), "SGNT FOR=<bob@alpha.example> FINGERPRINT=[%s]\n",
		 bob.full[0]);
	check(st, line, DIME_DMTP_V_USER_SIGNET, bob.full[0], 1);
	snprintf(line, sizeof(line), "SGNT FOR=<bob@alpha.example> FINGERPRINT=[%s]\n",
		 bob.core[0]);
	check(st, line, DIME_DMTP_V_USER_SIGNET, bob.full[0], 1); /* full, from a core fp */
	check(st, "SGNT FOR=<nobody@alpha.example>\n", DIME_DMTP_V_UNAVAILABLE, NULL, 0);
	check(st, "SGNT FOR=<gamma.example>\n", DIME_DMTP_V_UNAVAILABLE, NULL, 0);

	/* VRFY */
	snprintf(line, sizeof(line), "VRFY FOR=<alpha.example> FINGERPRINT=[%s]\n", org.full[0]);
	check(st, line, DIME_DMTP_V_ORG_CURRENT, NULL, 0);
	snprintf(line, sizeof(line), "VRFY FOR=<alpha.example> FINGERPRINT=[%s]\n", bob.full[0]);
	check(st, line, DIME_DMTP_V_ORG_SIGNET, org.full[0], 1);
	snprintf(line, sizeof(line), "VRFY FOR=<bob@alpha.example> FINGERPRINT=[%s]\n",
		 bob.core[1]);
	check(st, line, DIME_DMTP_V_USER_CURRENT, NULL, 0);
	snprintf(line, sizeof(line), "VRFY FOR=<bob@alpha.example> FINGERPRINT=[%s]\n",
		 bob.core[0]);
	check(st, line, DIME_DMTP_V_USER_SIGNET, bob.full[1], 1);
	snprintf(line, sizeof(line), "VRFY FOR=<bob@alpha.example> FINGERPRINT=[%s]\n",
		 bob.full[1]);
	check(st, line, DIME_DMTP_V_UNAVAILABLE, NULL, 0);
	snprintf(line, sizeof(line), "VRFY FOR=<eve@alpha.example> FINGERPRINT=[%s]\n",
		 bob.core[1]);
	check(st, line, DIME_DMTP_V_UNAVAILABLE, NULL, 0);

	/* HIST: core signets, oldest first */
	check(st, "HIST FOR=<bob@alpha.example>\n", DIME_DMTP_V_HISTORY, bob.core[0], 2);
	snprintf(line, sizeof(line), "HIST FOR=<bob@alpha.example> START=[%s]\n", bob.core[1]);
	check(st, line, DIME_DMTP_V_HISTORY, bob.core[1], 1);
	snprintf(line, sizeof(line), "HIST FOR=<bob@alpha.example> STOP=[%s]\n", bob.core[0]);
	check(st, line, DIME_DMTP_V_HISTORY, bob.core[0], 1);
	snprintf(line, sizeof(line), "HIST FOR=<bob@alpha.example> START=[%s] STOP=[%s]\n",
		 bob.core[1], bob.core[0]);
	check(st, line, DIME_DMTP_V_UNAVAILABLE, NULL, 0);
	snprintf(line, sizeof(line), "HIST FOR=<bob@alpha.example> START=[%s]\n", org.full[0]);
	check(st, line, DIME_DMTP_V_UNAVAILABLE, NULL, 0);
	check(st, "HIST FOR=<eve@alpha.example>\n", DIME_DMTP_V_UNAVAILABLE, NULL, 0);

	/* MAIL and RCPT */
	snprintf(line, sizeof(line), "MAIL FROM=<alpha.example> FINGERPRINT=[%s]\n", org.full[0]);
	check(st, line, DIME_DMTP_V_OK, NULL, 0);
	snprintf(line, sizeof(line), "MAIL FROM=<alpha.example> FINGERPRINT=[%s]\n", bob.full[0]);
	check(st, line, DIME_DMTP_V_ORIGIN_TEMP, NULL, 0);
	snprintf(line, sizeof(line), "MAIL FROM=<gamma.example> FINGERPRINT=[%s]\n", org.full[0]);
	check(st, line, DIME_DMTP_V_ORIGIN_TEMP, NULL, 0);
	snprintf(line, sizeof(line), "RCPT TO=<alpha.example> FINGERPRINT=[%s]\n", org.full[0]);
	check(st, line, DIME_DMTP_V_OK, NULL, 0);
	/* the crypto fingerprint, as a D/MIME envelope holds it (what dime dmtp send puts) */
	snprintf(line, sizeof(line), "RCPT TO=<alpha.example> FINGERPRINT=[%s]\n", org.core[0]);
	check(st, line, DIME_DMTP_V_OK, NULL, 0);
	snprintf(line, sizeof(line), "RCPT TO=<alpha.example> FINGERPRINT=[%s]\n", bob.full[1]);
	check(st, line, DIME_DMTP_V_RCPT_INVALID, NULL, 0);
	snprintf(line, sizeof(line), "RCPT TO=<gamma.example> FINGERPRINT=[%s]\n", org.full[0]);
	check(st, line, DIME_DMTP_V_RCPT_INVALID, NULL, 0);

	test_origin(st, &org, &bob);
	test_stale(st, &org, &bob);

	/* DATA is not a lookup */
	{
		struct dime_dmtp_query q;
		struct dime_dmtp_answer a;
		char *armor = (char *)"x";

		memset(&q, 0, sizeof(q));
		q.kind = DIME_DMTP_Q_DATA;
		T_CHECK(dime_server_lookup(st, &a, &armor, &q, now_s) == DIME_E_INVALID &&
			    armor == NULL,
			"DATA query looked up");
	}
	dime_store_close(st);
	st = NULL;
	test_data_side(path);
out:
	dime_store_close(st);
	t_rm_rf(t_dir);
	return t_done("test_daemon_lookup");
}

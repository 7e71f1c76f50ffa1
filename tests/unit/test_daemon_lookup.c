/* dimed's store lookups for MAIL, RCPT, SGNT, HIST and VRFY (dime_server_lookup) over a store
 * made with the dime CLI: a hosted org and a user with two signet versions. Each verdict of
 * docs/dimed.md "Lookups", and the armor served decodes to the signet the command named. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dime/server.h"
#include "dime/signet.h"
#include "tlib.h"

static const char *cli = DIME_CLI;

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
	rc = dime_server_lookup(st, &a, &armor, &q);
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
	snprintf(line, sizeof(line), "RCPT TO=<alpha.example> FINGERPRINT=[%s]\n", bob.full[1]);
	check(st, line, DIME_DMTP_V_RCPT_INVALID, NULL, 0);
	snprintf(line, sizeof(line), "RCPT TO=<gamma.example> FINGERPRINT=[%s]\n", org.full[0]);
	check(st, line, DIME_DMTP_V_RCPT_INVALID, NULL, 0);

	/* DATA is not a lookup */
	{
		struct dime_dmtp_query q;
		struct dime_dmtp_answer a;
		char *armor = (char *)"x";

		memset(&q, 0, sizeof(q));
		q.kind = DIME_DMTP_Q_DATA;
		T_CHECK(dime_server_lookup(st, &a, &armor, &q) == DIME_E_INVALID && armor == NULL,
			"DATA query looked up");
	}
out:
	dime_store_close(st);
	t_rm_rf(t_dir);
	return t_done("test_daemon_lookup");
}

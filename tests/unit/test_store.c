/* The embedded store: file modes, WAL, versions, duplicates, identifiers, listing, two
 * handles, large blobs, the default paths, durability settings, open-existing, pending rows,
 * transactions and the v1 migration, each in a fresh temporary directory. */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "dime/store.h"
#include "tlib.h"

static int
t_mode(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (int)(sb.st_mode & 07777) : -1;
}

static struct dime_store *
t_open(const char *path)
{
	struct dime_store *st = NULL;
	char err[256];
	int rc = dime_store_open(&st, path, err, sizeof(err));

	if (rc != DIME_OK || st == NULL) {
		t_fail("open %s: got %d (%s), want ok", path ? path : "(default)", rc, err);
		exit(t_done("test_store"));
	}
	return st;
}

static void
t_put(struct dime_store *st, const char *ident, enum dime_store_kind kind, const char *text,
      int hosted, uint32_t want_version)
{
	uint32_t v = 99;
	int rc =
	    dime_store_put(st, &v, ident, kind, (const uint8_t *)text, strlen(text), hosted, 0, "");

	T_CHECK(rc == DIME_OK && v == want_version, "put %s/%d %s: got %d v%u, want ok v%u", ident,
		(int)kind, text, rc, v, want_version);
}

/* Fetch and compare bytes; returns the row through r when non-NULL. */
static void
t_get(struct dime_store *st, const char *ident, enum dime_store_kind kind, uint32_t version,
      const char *want, struct dime_store_row *r)
{
	struct dime_store_row row;
	uint8_t *blob = NULL;
	size_t len = 0;
	int rc = dime_store_get(st, &blob, &len, &row, ident, kind, version);

	T_CHECK(rc == DIME_OK && len == strlen(want) && memcmp(blob, want, len) == 0,
		"get %s/%d v%u: got %d '%.*s', want '%s'", ident, (int)kind, version, rc, (int)len,
		blob != NULL ? (const char *)blob : "", want);
	free(blob);
	if (r != NULL)
		*r = row;
}

static void
test_open_modes(void)
{
	char db[PATH_MAX + 64];
	struct dime_store *st;
	sqlite3 *raw = NULL;
	sqlite3_stmt *stmt = NULL;
	mode_t before;

	snprintf(db, sizeof(db), "%s", t_path("a/b/c/dime.db"));
	before = umask(022); /* a permissive umask must not leak into the files */
	st = t_open(db);
	T_CHECK(umask(022) == 022, "umask not restored");
	T_CHECK(strcmp(dime_store_path(st), db) == 0, "path: got %s, want %s", dime_store_path(st),
		db);
	T_CHECK(t_mode(t_path("a")) == 0700 && t_mode(t_path("a/b")) == 0700 &&
		    t_mode(t_path("a/b/c")) == 0700,
		"nested dirs: got %o %o %o, want 700", t_mode(t_path("a")), t_mode(t_path("a/b")),
		t_mode(t_path("a/b/c")));
	t_put(st, "example.org", DIME_STORE_ORG_SIGNET, "org v1", 1, 1);
	T_CHECK(t_mode(db) == 0600, "db mode: got %o, want 600", t_mode(db));
	T_CHECK(t_mode(t_path("a/b/c/dime.db-wal")) == 0600, "wal mode: got %o, want 600",
		t_mode(t_path("a/b/c/dime.db-wal")));
	T_CHECK(t_mode(t_path("a/b/c/dime.db-shm")) == 0600, "shm mode: got %o, want 600",
		t_mode(t_path("a/b/c/dime.db-shm")));

	/* A second, plain connection sees the persistent WAL mode and the schema version. */
	if (sqlite3_open_v2(db, &raw, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		t_fail("raw open: %s", sqlite3_errmsg(raw));
	} else {
		if (sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &stmt, NULL) == SQLITE_OK &&
		    sqlite3_step(stmt) == SQLITE_ROW)
			T_CHECK(strcmp((const char *)sqlite3_column_text(stmt, 0), "wal") == 0,
				"journal_mode: got %s, want wal", sqlite3_column_text(stmt, 0));
		else
			t_fail("journal_mode query: %s", sqlite3_errmsg(raw));
		sqlite3_finalize(stmt);
		stmt = NULL;
		if (sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &stmt, NULL) == SQLITE_OK &&
		    sqlite3_step(stmt) == SQLITE_ROW)
			T_CHECK(sqlite3_column_int(stmt, 0) == 6, "user_version: got %d, want 6",
				sqlite3_column_int(stmt, 0));
		else
			t_fail("user_version query: %s", sqlite3_errmsg(raw));
		sqlite3_finalize(stmt);
	}
	sqlite3_close(raw);
	dime_store_close(st);
	umask(before);

	/* Reopening keeps the data; a loosened file is tightened again. */
	T_CHECK(chmod(db, 0644) == 0, "chmod");
	st = t_open(db);
	T_CHECK(t_mode(db) == 0600, "reopen db mode: got %o, want 600", t_mode(db));
	t_get(st, "example.org", DIME_STORE_ORG_SIGNET, 0, "org v1", NULL);
	dime_store_close(st);
}

static void
test_open_failures(void)
{
	struct dime_store *st = (struct dime_store *)&st;
	char err[128] = "stale";
	FILE *f = fopen(t_path("plainfile"), "w");

	T_CHECK(f != NULL && fclose(f) == 0, "create plainfile");
	/* A parent that is a file. */
	T_CHECK(dime_store_open(&st, t_path("plainfile/x/dime.db"), err, sizeof(err)) == DIME_E_IO,
		"open under a file: want DIME_E_IO");
	T_CHECK(st == NULL && err[0] != '\0' && strcmp(err, "stale") != 0,
		"open failure outputs: st %p err '%s'", (void *)st, err);
	/* Not a database. */
	f = fopen(t_path("junk.db"), "w");
	T_CHECK(f != NULL &&
		    fputs("this is not an SQLite database, but long enough to look at it...\n"
			  "..............................................................\n",
			  f) >= 0 &&
		    fclose(f) == 0,
		"create junk.db");
	st = (struct dime_store *)&st;
	err[0] = '\0';
	T_CHECK(dime_store_open(&st, t_path("junk.db"), err, sizeof(err)) == DIME_E_IO &&
		    st == NULL && err[0] != '\0',
		"open junk: want DIME_E_IO with a message, got '%s'", err);
	/* err may be NULL. */
	T_CHECK(dime_store_open(&st, t_path("junk.db"), NULL, 0) == DIME_E_IO && st == NULL,
		"open junk, no err buffer");
	T_CHECK(dime_store_open(&st, "", err, sizeof(err)) == DIME_E_IO && st == NULL,
		"open empty path");
}

static void
test_versions(void)
{
	struct dime_store *st = t_open(t_path("v.db"));
	struct dime_store_row row;
	uint8_t *blob = (uint8_t *)&row;
	size_t len = 77;
	uint32_t v = 99;
	int rc;

	t_put(st, "alice@example.org", DIME_STORE_USER_SIGNET, "alice one", 0, 1);
	t_put(st, "alice@example.org", DIME_STORE_USER_SIGNET, "alice two", 0, 2);
	t_put(st, "alice@example.org", DIME_STORE_USER_SIGNET, "alice three", 0, 3);
	/* Identical bytes: no new row, the stored version is reported (even an old one). */
	t_put(st, "alice@example.org", DIME_STORE_USER_SIGNET, "alice two", 0, 2);
	t_put(st, "ALICE@Example.ORG", DIME_STORE_USER_SIGNET, "alice three", 0, 3);
	/* Same bytes, another kind: a separate series. */
	t_put(st, "alice@example.org", DIME_STORE_SSR, "alice two", 0, 1);
	/* A prefix of stored bytes is not a duplicate. */
	t_put(st, "alice@example.org", DIME_STORE_USER_SIGNET, "alice tw", 0, 4);

	t_get(st, "alice@example.org", DIME_STORE_USER_SIGNET, 0, "alice tw", &row);
	T_CHECK(row.version == 4 && row.kind == DIME_STORE_USER_SIGNET && row.rowid > 0 &&
		    strcmp(row.ident, "alice@example.org") == 0 && row.created > 0,
		"latest row: v%u kind %d ident %s", row.version, (int)row.kind, row.ident);
	t_get(st, "alice@example.org", DIME_STORE_USER_SIGNET, 1, "alice one", &row);
	T_CHECK(row.version == 1, "v1 row: got v%u", row.version);
	t_get(st, "Alice@EXAMPLE.org", DIME_STORE_USER_SIGNET, 3, "alice three", NULL);
	t_get(st, "alice@example.org", DIME_STORE_SSR, 0, "alice two", NULL);

	/* Missing: version, ident, kind. Outputs are zeroed. */
	rc = dime_store_get(st, &blob, &len, &row, "alice@example.org", DIME_STORE_USER_SIGNET, 5);
	T_CHECK(rc == DIME_E_NOTFOUND && blob == NULL && len == 0 && row.rowid == 0 &&
		    row.ident[0] == '\0' && row.version == 0,
		"missing version: got %d", rc);
	rc = dime_store_get(st, &blob, &len, NULL, "bob@example.org", DIME_STORE_USER_SIGNET, 0);
	T_CHECK(rc == DIME_E_NOTFOUND && blob == NULL && len == 0, "missing ident: got %d", rc);
	rc = dime_store_get(st, &blob, &len, NULL, "alice@example.org", DIME_STORE_USER_KEY, 0);
	T_CHECK(rc == DIME_E_NOTFOUND, "missing kind: got %d", rc);
	rc = dime_store_get_row(st, &blob, &len, 12345);
	T_CHECK(rc == DIME_E_NOTFOUND && blob == NULL && len == 0, "missing rowid: got %d", rc);

	/* Metadata round trip; version may be NULL; an empty blob is a blob. */
	rc = dime_store_put(st, NULL, "example.org", DIME_STORE_SOK_KEY, (const uint8_t *)"k", 1, 1,
			    0xa5, NULL);
	T_CHECK(rc == DIME_OK, "put with NULL version/fingerprint: got %d", rc);
	rc = dime_store_put(st, &v, "example.org", DIME_STORE_ORG_SIGNET, NULL, 0, 1, 0,
			    "FP+/0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
	T_CHECK(rc == DIME_OK && v == 1, "put empty blob: got %d v%u", rc, v);
	rc = dime_store_get(st, &blob, &len, &row, "example.org", DIME_STORE_ORG_SIGNET, 0);
	T_CHECK(rc == DIME_OK && blob != NULL && len == 0 && row.hosted == 1 &&
		    strcmp(row.fingerprint, "FP+/0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"
					    "MNOPQRSTUVWXYZ") == 0,
		"empty blob get: got %d len %zu fp %s", rc, len, row.fingerprint);
	free(blob);
	rc = dime_store_get(st, &blob, &len, &row, "example.org", DIME_STORE_SOK_KEY, 0);
	T_CHECK(rc == DIME_OK && len == 1 && row.perms == 0xa5 && row.fingerprint[0] == '\0',
		"sok row: got %d perms %u", rc, row.perms);
	free(blob);
	blob = NULL;
	rc = dime_store_get_row(st, &blob, &len, row.rowid);
	T_CHECK(rc == DIME_OK && len == 1 && blob[0] == 'k', "get_row: got %d", rc);
	free(blob);
	dime_store_close(st);
}

static void
test_hosted(void)
{
	struct dime_store *st = t_open(t_path("h.db"));
	struct dime_store_row row;

	/* Imported as foreign, then the key arrives as hosted: every row of the ident turns
	 * hosted, and a later foreign import does not turn it back. */
	t_put(st, "bob@beta.example", DIME_STORE_USER_SIGNET, "bob v1", 0, 1);
	t_get(st, "bob@beta.example", DIME_STORE_USER_SIGNET, 0, "bob v1", &row);
	T_CHECK(row.hosted == 0, "foreign signet: hosted %d", row.hosted);
	t_put(st, "bob@beta.example", DIME_STORE_USER_KEY, "bob key", 1, 1);
	t_get(st, "bob@beta.example", DIME_STORE_USER_SIGNET, 1, "bob v1", &row);
	T_CHECK(row.hosted == 1, "earlier row after hosted put: hosted %d", row.hosted);
	t_put(st, "bob@beta.example", DIME_STORE_USER_SIGNET, "bob v2", 0, 2);
	t_get(st, "bob@beta.example", DIME_STORE_USER_SIGNET, 2, "bob v2", &row);
	T_CHECK(row.hosted == 1, "sticky hosted: hosted %d", row.hosted);
	/* A duplicate put with hosted set still promotes. */
	t_put(st, "carol@beta.example", DIME_STORE_SSR, "carol", 0, 1);
	t_put(st, "carol@beta.example", DIME_STORE_SSR, "carol", 2, 1);
	t_get(st, "carol@beta.example", DIME_STORE_SSR, 0, "carol", &row);
	T_CHECK(row.hosted == 1, "duplicate hosted put: hosted %d", row.hosted);
	/* Another identity is unaffected. */
	t_put(st, "dave@beta.example", DIME_STORE_SSR, "dave", 0, 1);
	t_get(st, "dave@beta.example", DIME_STORE_SSR, 0, "dave", &row);
	T_CHECK(row.hosted == 0, "other ident: hosted %d", row.hosted);
	dime_store_close(st);
}

struct ident_case {
	const char *name;
	size_t len; /* 0: use text as is */
	const char *text;
	int want;
};

static void
test_idents(void)
{
	static const struct ident_case cases[] = {
	    {"empty", 0, "", DIME_E_INVALID},
	    {"NULL", 0, NULL, DIME_E_INVALID},
	    {"tab", 0, "a\tb@example.org", DIME_E_INVALID},
	    {"newline", 0, "example.org\n", DIME_E_INVALID},
	    {"del", 0, "exa\x7fmple.org", DIME_E_INVALID},
	    {"255 bytes", 255, NULL, DIME_OK},
	    {"256 bytes", 256, NULL, DIME_E_INVALID},
	    {"1000 bytes", 1000, NULL, DIME_E_INVALID},
	    {"utf-8 kept", 0, "j\xc3\xbcrgen@example.org", DIME_OK},
	};
	struct dime_store *st = t_open(t_path("i.db"));
	char big[1001];
	uint8_t *blob;
	size_t len;
	uint32_t v;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct ident_case *c = &cases[i];
		const char *id = c->text;
		int rc;

		if (c->len > 0) {
			memset(big, 'x', c->len);
			big[c->len] = '\0';
			id = big;
		}
		v = 99;
		rc = dime_store_put(st, &v, id, DIME_STORE_SSR, (const uint8_t *)"x", 1, 0, 0, "");
		T_CHECK(rc == c->want, "put ident %s: got %d, want %d", c->name, rc, c->want);
		T_CHECK(rc != DIME_OK || v == 1, "put ident %s: v%u", c->name, v);
		T_CHECK(rc == DIME_OK || v == 0, "put ident %s: v%u after failure", c->name, v);
		blob = (uint8_t *)&v;
		len = 5;
		rc = dime_store_get(st, &blob, &len, NULL, id, DIME_STORE_SSR, 0);
		T_CHECK(rc == (c->want == DIME_OK ? DIME_OK : c->want),
			"get ident %s: got %d, want %d", c->name, rc, c->want);
		T_CHECK(rc == DIME_OK || (blob == NULL && len == 0), "get ident %s: outputs",
			c->name);
		free(blob);
	}
	/* Other argument checks. */
	T_CHECK(dime_store_put(st, &v, "example.org", (enum dime_store_kind)7, (const uint8_t *)"x",
			       1, 0, 0, "") == DIME_E_INVALID,
		"unknown kind accepted");
	T_CHECK(dime_store_put(st, &v, "example.org", DIME_STORE_SSR, NULL, 3, 0, 0, "") ==
		    DIME_E_INVALID,
		"NULL blob with a length accepted");
	memset(big, 'f', 88);
	big[88] = '\0';
	T_CHECK(dime_store_put(st, &v, "example.org", DIME_STORE_SSR, (const uint8_t *)"x", 1, 0, 0,
			       big) == DIME_E_INVALID,
		"88-byte fingerprint accepted");
	big[87] = '\0';
	T_CHECK(dime_store_put(st, &v, "example.org", DIME_STORE_SSR, (const uint8_t *)"x", 1, 0, 0,
			       big) == DIME_OK,
		"87-byte fingerprint refused");
	dime_store_close(st);
}

struct walk {
	struct dime_store *st;
	char seen[16][300];
	int n, stop_after, nested_ok;
};

static int
walk_row(const struct dime_store_row *row, void *arg)
{
	struct walk *w = arg;
	uint8_t *blob = NULL;
	size_t len = 0;

	if (w->n < 16)
		snprintf(w->seen[w->n], sizeof(w->seen[0]), "%s %d v%u", row->ident, (int)row->kind,
			 row->version);
	w->n++;
	/* Reads through the same handle while the walk is open. */
	if (dime_store_get_row(w->st, &blob, &len, row->rowid) == DIME_OK) {
		free(blob);
		if (dime_store_get(w->st, &blob, &len, NULL, row->ident, row->kind, row->version) ==
		    DIME_OK)
			w->nested_ok++;
		free(blob);
	}
	return w->stop_after > 0 && w->n >= w->stop_after;
}

static void
test_list(void)
{
	static const char *const want_all[] = {
	    "a.example 1 v1",	   "a.example 1776 v1",	  "a.example 1776 v2",
	    "b@a.example 1215 v1", "b@a.example 1789 v1", "z.example 1 v1",
	};
	struct dime_store *st = t_open(t_path("l.db"));
	struct walk w;
	int rc;

	/* Inserted out of order on purpose. */
	t_put(st, "z.example", DIME_STORE_SOK_KEY, "z sok", 1, 1);
	t_put(st, "B@A.example", DIME_STORE_USER_SIGNET, "b signet", 0, 1);
	t_put(st, "a.example", DIME_STORE_ORG_SIGNET, "a org 1", 0, 1);
	t_put(st, "b@a.example", DIME_STORE_SSR, "b ssr", 0, 1);
	t_put(st, "a.example", DIME_STORE_SOK_KEY, "a sok", 0, 1);
	t_put(st, "a.example", DIME_STORE_ORG_SIGNET, "a org 2", 0, 2);

	memset(&w, 0, sizeof(w));
	w.st = st;
	rc = dime_store_list(st, NULL, 0, walk_row, &w);
	T_CHECK(rc == DIME_OK && w.n == 6 && w.nested_ok == 6, "list all: got %d n %d nested %d",
		rc, w.n, w.nested_ok);
	for (int i = 0; i < 6 && i < w.n; i++)
		T_CHECK(strcmp(w.seen[i], want_all[i]) == 0, "list all [%d]: got %s, want %s", i,
			w.seen[i], want_all[i]);

	memset(&w, 0, sizeof(w));
	w.st = st;
	w.stop_after = 2;
	rc = dime_store_list(st, NULL, 0, walk_row, &w);
	T_CHECK(rc == DIME_OK && w.n == 2, "early stop: got %d n %d, want 2", rc, w.n);

	memset(&w, 0, sizeof(w));
	w.st = st;
	rc = dime_store_list(st, "A.EXAMPLE", 0, walk_row, &w);
	T_CHECK(rc == DIME_OK && w.n == 3 && strcmp(w.seen[0], "a.example 1 v1") == 0 &&
		    strcmp(w.seen[2], "a.example 1776 v2") == 0,
		"list ident: got %d n %d", rc, w.n);

	memset(&w, 0, sizeof(w));
	w.st = st;
	rc = dime_store_list(st, NULL, DIME_STORE_SOK_KEY, walk_row, &w);
	T_CHECK(rc == DIME_OK && w.n == 2 && strcmp(w.seen[0], "a.example 1 v1") == 0 &&
		    strcmp(w.seen[1], "z.example 1 v1") == 0,
		"list kind: got %d n %d", rc, w.n);

	memset(&w, 0, sizeof(w));
	w.st = st;
	rc = dime_store_list(st, "b@a.example", DIME_STORE_SSR, walk_row, &w);
	T_CHECK(rc == DIME_OK && w.n == 1 && strcmp(w.seen[0], "b@a.example 1215 v1") == 0,
		"list ident+kind: got %d n %d", rc, w.n);

	memset(&w, 0, sizeof(w));
	w.st = st;
	rc = dime_store_list(st, "nobody.example", 0, walk_row, &w);
	T_CHECK(rc == DIME_OK && w.n == 0, "list none: got %d n %d", rc, w.n);
	rc = dime_store_list(st, "", 0, walk_row, &w);
	T_CHECK(rc == DIME_E_INVALID && w.n == 0, "list bad ident: got %d", rc);
	dime_store_close(st);
}

static void
test_two_handles(void)
{
	struct dime_store *a = t_open(t_path("two.db"));
	struct dime_store *b = t_open(t_path("two.db"));

	t_put(a, "x.example", DIME_STORE_ORG_SIGNET, "from a", 0, 1);
	t_get(b, "x.example", DIME_STORE_ORG_SIGNET, 0, "from a", NULL);
	t_put(b, "x.example", DIME_STORE_ORG_SIGNET, "from b", 0, 2);
	t_get(a, "x.example", DIME_STORE_ORG_SIGNET, 0, "from b", NULL);
	/* b's duplicate check sees a's rows. */
	t_put(b, "x.example", DIME_STORE_ORG_SIGNET, "from a", 0, 1);
	t_put(a, "x.example", DIME_STORE_ORG_SIGNET, "from a again", 0, 3);
	t_get(b, "x.example", DIME_STORE_ORG_SIGNET, 3, "from a again", NULL);
	dime_store_close(a);
	dime_store_close(b);

	/* Reopen after both closed. */
	a = t_open(t_path("two.db"));
	t_get(a, "x.example", DIME_STORE_ORG_SIGNET, 0, "from a again", NULL);
	t_get(a, "x.example", DIME_STORE_ORG_SIGNET, 2, "from b", NULL);
	dime_store_close(a);
}

static void
test_large(void)
{
	const size_t n = 20u << 20;
	struct dime_store *st = t_open(t_path("big.db"));
	uint8_t *in = malloc(n), *out = NULL;
	size_t len = 0;
	uint32_t v = 0;
	int rc;

	if (in == NULL) {
		t_fail("malloc %zu", n);
		dime_store_close(st);
		return;
	}
	for (size_t i = 0; i < n; i++)
		in[i] = (uint8_t)(i * 2654435761u >> 13);
	rc = dime_store_put(st, &v, "big.example", DIME_STORE_ORG_SIGNET, in, n, 0, 0, "");
	T_CHECK(rc == DIME_OK && v == 1, "put 20 MB: got %d v%u", rc, v);
	rc = dime_store_put(st, &v, "big.example", DIME_STORE_ORG_SIGNET, in, n, 0, 0, "");
	T_CHECK(rc == DIME_OK && v == 1, "re-put 20 MB: got %d v%u, want v1", rc, v);
	rc = dime_store_get(st, &out, &len, NULL, "big.example", DIME_STORE_ORG_SIGNET, 0);
	T_CHECK(rc == DIME_OK && len == n && memcmp(in, out, n) == 0, "get 20 MB: got %d len %zu",
		rc, len);
	free(out);
	free(in);
	dime_store_close(st);
}

static void
test_defaults(void)
{
	char cwd[PATH_MAX];
	struct dime_store *st;

	/* $DIME_STORE. */
	T_CHECK(setenv("DIME_STORE", t_path("env/dir/store.db"), 1) == 0, "setenv");
	st = t_open(NULL);
	T_CHECK(strcmp(dime_store_path(st), t_path("env/dir/store.db")) == 0, "env path: got %s",
		dime_store_path(st));
	t_put(st, "env.example", DIME_STORE_SSR, "env", 0, 1);
	dime_store_close(st);
	T_CHECK(t_mode(t_path("env/dir/store.db")) == 0600, "env store mode: got %o",
		t_mode(t_path("env/dir/store.db")));
	st = t_open(t_path("env/dir/store.db"));
	t_get(st, "env.example", DIME_STORE_SSR, 0, "env", NULL);
	dime_store_close(st);

	/* Unset (and empty): ./var/dime.db under the working directory. */
	T_CHECK(getcwd(cwd, sizeof(cwd)) != NULL, "getcwd");
	T_CHECK(mkdir(t_path("cwd"), 0700) == 0 && chdir(t_path("cwd")) == 0, "chdir");
	T_CHECK(setenv("DIME_STORE", "", 1) == 0, "setenv empty");
	st = t_open(NULL);
	T_CHECK(strcmp(dime_store_path(st), "./var/dime.db") == 0, "default path: got %s",
		dime_store_path(st));
	dime_store_close(st);
	T_CHECK(unsetenv("DIME_STORE") == 0, "unsetenv");
	st = t_open(NULL);
	T_CHECK(strcmp(dime_store_path(st), "./var/dime.db") == 0, "default path: got %s",
		dime_store_path(st));
	dime_store_close(st);
	T_CHECK(t_mode(t_path("cwd/var")) == 0700 && t_mode(t_path("cwd/var/dime.db")) == 0600,
		"default store modes: got %o %o", t_mode(t_path("cwd/var")),
		t_mode(t_path("cwd/var/dime.db")));
	T_CHECK(chdir(cwd) == 0, "chdir back");
}

/* synchronous=FULL (a returned commit survives power loss) and secure_delete on every handle. */
static void
test_settings(void)
{
	struct dime_store *st = t_open(t_path("set.db"));
	struct dime_store_settings set;
	int rc = dime_store_settings(st, &set);

	T_CHECK(rc == DIME_OK && set.synchronous == 2 && set.secure_delete == 1 &&
		    set.schema_version == 6 && set.busy_ms >= 5000,
		"settings: got %d sync %d secure_delete %d schema %d busy %d, want 0 2 1 6 >=5000",
		rc, set.synchronous, set.secure_delete, set.schema_version, set.busy_ms);
	dime_store_close(st);
}

/* Read-only commands open with DIME_STORE_OPEN_EXISTING: a missing store stays missing. */
static void
test_open_existing(void)
{
	struct dime_store *st = (struct dime_store *)&st;
	char err[512] = "";
	int rc;

	rc = dime_store_open_flags(&st, t_path("nodir/none.db"), DIME_STORE_OPEN_EXISTING, err,
				   sizeof(err));
	T_CHECK(rc == DIME_E_NOTFOUND && st == NULL && strstr(err, "no store at ") != NULL,
		"open missing: got %d '%s', want DIME_E_NOTFOUND 'no store at ...'", rc, err);
	T_CHECK(t_mode(t_path("nodir")) == -1, "open missing created its directory");
	T_CHECK(mkdir(t_path("emptydir"), 0700) == 0, "mkdir");
	rc = dime_store_open_flags(&st, t_path("emptydir/none.db"), DIME_STORE_OPEN_EXISTING, err,
				   sizeof(err));
	T_CHECK(rc == DIME_E_NOTFOUND && t_mode(t_path("emptydir/none.db")) == -1,
		"open missing in a dir: got %d, file mode %o", rc,
		t_mode(t_path("emptydir/none.db")));
	rc = dime_store_open_flags(&st, t_path("x.db"), 0x80, err, sizeof(err));
	T_CHECK(rc == DIME_E_INVALID && st == NULL, "unknown flag: got %d", rc);
	/* An existing store opens and reads. */
	st = t_open(t_path("emptydir/made.db"));
	t_put(st, "e.example", DIME_STORE_ORG_SIGNET, "e", 0, 1);
	dime_store_close(st);
	rc = dime_store_open_flags(&st, t_path("emptydir/made.db"), DIME_STORE_OPEN_EXISTING, err,
				   sizeof(err));
	T_CHECK(rc == DIME_OK && st != NULL, "open existing: got %d '%s'", rc, err);
	if (st != NULL) {
		t_get(st, "e.example", DIME_STORE_ORG_SIGNET, 0, "e", NULL);
		dime_store_close(st);
	}
}

struct t_rows {
	int n, n_pending;
	int64_t rowid[8];
	uint32_t version[8];
};

static int
t_rows_add(const struct dime_store_row *row, void *arg)
{
	struct t_rows *r = arg;

	if (r->n < 8) {
		r->rowid[r->n] = row->rowid;
		r->version[r->n] = row->version;
	}
	r->n++;
	r->n_pending += row->state == DIME_STORE_PENDING;
	return 0;
}

/* Pending rows are stored apart: get and list (what wrap and accept use) never see them. */
static void
test_pending(void)
{
	struct dime_store *st = t_open(t_path("pend.db"));
	struct dime_store_row row;
	struct t_rows r;
	uint8_t *blob = NULL;
	size_t len = 0;
	int rc;

	t_put(st, "bob@p.example", DIME_STORE_USER_SIGNET, "bob v1", 0, 1);
	t_put(st, "bob@p.example", DIME_STORE_USER_SIGNET, "bob v2", 0, 2);
	rc = dime_store_find(st, &row, "BOB@p.example", DIME_STORE_USER_SIGNET,
			     (const uint8_t *)"bob v2", 6);
	T_CHECK(rc == DIME_OK && row.version == 2 && row.state == DIME_STORE_VERIFIED,
		"find v2: got %d v%u state %d", rc, row.version, (int)row.state);
	T_CHECK(dime_store_set_state(st, row.rowid, DIME_STORE_PENDING) == DIME_OK, "set pending");
	/* The latest verified version is v1 now; v2 by number is not found. */
	t_get(st, "bob@p.example", DIME_STORE_USER_SIGNET, 0, "bob v1", NULL);
	rc = dime_store_get(st, &blob, &len, NULL, "bob@p.example", DIME_STORE_USER_SIGNET, 2);
	T_CHECK(rc == DIME_E_NOTFOUND && blob == NULL, "get pending v2: got %d, want NOTFOUND", rc);
	memset(&r, 0, sizeof(r));
	T_CHECK(dime_store_list(st, NULL, 0, t_rows_add, &r) == DIME_OK && r.n == 1 &&
		    r.n_pending == 0,
		"list: got %d rows %d pending, want 1 0", r.n, r.n_pending);
	memset(&r, 0, sizeof(r));
	T_CHECK(dime_store_list_all(st, "bob@p.example", 0, t_rows_add, &r) == DIME_OK &&
		    r.n == 2 && r.n_pending == 1 && r.version[1] == 2,
		"list_all: got %d rows %d pending, want 2 1", r.n, r.n_pending);
	/* A pending row's bytes are still found (put reports it as the duplicate). */
	rc = dime_store_find(st, &row, "bob@p.example", DIME_STORE_USER_SIGNET,
			     (const uint8_t *)"bob v2", 6);
	T_CHECK(rc == DIME_OK && row.state == DIME_STORE_PENDING, "find pending: got %d state %d",
		rc, (int)row.state);
	t_put(st, "bob@p.example", DIME_STORE_USER_SIGNET, "bob v2", 0, 2);
	rc = dime_store_find(st, &row, "bob@p.example", DIME_STORE_USER_SIGNET,
			     (const uint8_t *)"nope", 4);
	T_CHECK(rc == DIME_E_NOTFOUND && row.rowid == 0, "find absent: got %d", rc);
	/* Promoted: visible again. */
	T_CHECK(dime_store_set_state(st, r.rowid[1], DIME_STORE_VERIFIED) == DIME_OK, "promote");
	t_get(st, "bob@p.example", DIME_STORE_USER_SIGNET, 0, "bob v2", NULL);
	T_CHECK(dime_store_set_state(st, r.rowid[1], (enum dime_store_state)7) == DIME_E_INVALID,
		"bad state accepted");
	T_CHECK(dime_store_delete(st, r.rowid[1]) == DIME_OK &&
		    dime_store_delete(st, r.rowid[1]) == DIME_E_NOTFOUND &&
		    dime_store_set_state(st, r.rowid[1], DIME_STORE_VERIFIED) == DIME_E_NOTFOUND,
		"delete");
	t_get(st, "bob@p.example", DIME_STORE_USER_SIGNET, 0, "bob v1", NULL);
	dime_store_close(st);
}

/* begin/commit make several puts one unit; rollback undoes them all; a second handle waits for
 * the write lock instead of failing, and sees nothing before commit. */
static void
test_tx(void)
{
	struct dime_store *a = t_open(t_path("tx.db"));
	struct dime_store *b = t_open(t_path("tx.db"));
	uint8_t *blob = NULL;
	size_t len = 0;
	uint32_t v = 0;
	int rc;

	T_CHECK(dime_store_begin(a) == DIME_OK, "begin");
	t_put(a, "t.example", DIME_STORE_ORG_KEY, "key", 1, 1);
	t_put(a, "t.example", DIME_STORE_ORG_SIGNET, "signet", 1, 1);
	/* A failed put inside keeps the transaction and the earlier puts. */
	rc = dime_store_put(a, &v, "", DIME_STORE_ORG_SIGNET, (const uint8_t *)"x", 1, 1, 0, "");
	T_CHECK(rc == DIME_E_INVALID, "bad put in tx: got %d", rc);
	t_get(a, "t.example", DIME_STORE_ORG_KEY, 0, "key", NULL);
	rc = dime_store_get(b, &blob, &len, NULL, "t.example", DIME_STORE_ORG_KEY, 0);
	T_CHECK(rc == DIME_E_NOTFOUND, "uncommitted row seen by another handle: %d", rc);
	free(blob);
	blob = NULL;
	dime_store_rollback(a);
	rc = dime_store_get(a, &blob, &len, NULL, "t.example", DIME_STORE_ORG_KEY, 0);
	T_CHECK(rc == DIME_E_NOTFOUND, "rolled back row still there: %d", rc);
	free(blob);
	blob = NULL;
	dime_store_rollback(a); /* a no-op outside a transaction */

	T_CHECK(dime_store_begin(a) == DIME_OK, "begin 2");
	t_put(a, "t.example", DIME_STORE_ORG_KEY, "key", 1, 1);
	t_put(a, "t.example", DIME_STORE_ORG_SIGNET, "signet", 1, 1);
	T_CHECK(dime_store_commit(a) == DIME_OK, "commit");
	t_get(b, "t.example", DIME_STORE_ORG_SIGNET, 0, "signet", NULL);
	/* Outside a transaction put is its own transaction again. */
	t_put(b, "t.example", DIME_STORE_ORG_SIGNET, "signet 2", 1, 2);
	t_get(a, "t.example", DIME_STORE_ORG_SIGNET, 0, "signet 2", NULL);
	/* Closing with an open transaction rolls it back. */
	T_CHECK(dime_store_begin(b) == DIME_OK, "begin 3");
	t_put(b, "t.example", DIME_STORE_ORG_SIGNET, "signet 3", 1, 3);
	dime_store_close(b);
	t_get(a, "t.example", DIME_STORE_ORG_SIGNET, 0, "signet 2", NULL);
	dime_store_close(a);
}

/* A version 1 store: columns without state. Signets of other domains become pending (v1 stored
 * them unverified beside verified ones), hosted rows and keys stay verified. */
static void
test_migrate_v1(void)
{
	static const char *const v1[] = {
	    "CREATE TABLE objects (rowid INTEGER PRIMARY KEY, ident TEXT NOT NULL, kind INTEGER "
	    "NOT NULL, version INTEGER NOT NULL CHECK (version >= 1), hosted INTEGER NOT NULL "
	    "CHECK (hosted IN (0, 1)), perms INTEGER NOT NULL CHECK (perms BETWEEN 0 AND 255), "
	    "fingerprint TEXT NOT NULL, blob BLOB NOT NULL, sha512 BLOB NOT NULL, created INTEGER "
	    "NOT NULL, UNIQUE (ident, kind, version))",
	    "CREATE INDEX objects_ident_kind_sha512 ON objects (ident, kind, sha512)",
	    "INSERT INTO objects VALUES (1, 'h.example', 1776, 1, 1, 0, '', x'01', x'00', 1)",
	    "INSERT INTO objects VALUES (2, 'u@h.example', 1789, 1, 1, 0, '', x'02', x'00', 1)",
	    "INSERT INTO objects VALUES (3, 'f.example', 1776, 1, 0, 0, '', x'03', x'00', 1)",
	    "INSERT INTO objects VALUES (4, 'v@f.example', 1789, 1, 0, 0, '', x'04', x'00', 1)",
	    "INSERT INTO objects VALUES (5, 'v@f.example', 2013, 1, 0, 0, '', x'05', x'00', 1)",
	    "PRAGMA user_version = 1",
	};
	struct dime_store *st;
	struct t_rows r;
	sqlite3 *raw = NULL;
	uint8_t *blob = NULL;
	size_t len = 0;
	int ok = sqlite3_open(t_path("v1.db"), &raw) == SQLITE_OK;

	for (size_t i = 0; ok && i < sizeof(v1) / sizeof(v1[0]); i++)
		ok = sqlite3_exec(raw, v1[i], NULL, NULL, NULL) == SQLITE_OK;
	T_CHECK(ok, "make v1 store: %s", sqlite3_errmsg(raw));
	sqlite3_close(raw);
	st = t_open(t_path("v1.db"));
	memset(&r, 0, sizeof(r));
	T_CHECK(dime_store_list_all(st, NULL, 0, t_rows_add, &r) == DIME_OK && r.n == 5 &&
		    r.n_pending == 2,
		"migrated: got %d rows %d pending, want 5 2", r.n, r.n_pending);
	memset(&r, 0, sizeof(r));
	T_CHECK(dime_store_list(st, NULL, 0, t_rows_add, &r) == DIME_OK && r.n == 3 &&
		    r.rowid[0] == 1 && r.rowid[1] == 2 && r.rowid[2] == 5,
		"migrated verified rows: got %d", r.n);
	T_CHECK(dime_store_get(st, &blob, &len, NULL, "v@f.example", DIME_STORE_USER_SIGNET, 0) ==
		    DIME_E_NOTFOUND,
		"a v1 foreign user signet is still served");
	free(blob);
	{
		/* the v4 table exists after migrating from v1 */
		uint8_t h[DIME_STORE_SEEN_BYTES] = {1};
		int already = -1;

		T_CHECK(dime_store_seen_put(st, h, &already) == DIME_OK && already == 0,
			"seen_put on a migrated store: already %d", already);
	}
	dime_store_close(st);
}

/* The signet resolver's table: one entry per (ident, kind), replaced by each put, found or
 * absent, case-insensitive idents, only signet kinds, persistent. */
static void
test_fetch(void)
{
	struct dime_store *st = t_open(t_path("fetch.db"));
	int64_t at = -1;
	int absent = -1, rc;

	rc = dime_store_fetch_get(st, &at, &absent, "b.example", DIME_STORE_ORG_SIGNET);
	T_CHECK(rc == DIME_E_NOTFOUND && at == 0 && absent == 0,
		"get before put: got %d %lld %d, want NOTFOUND 0 0", rc, (long long)at, absent);
	T_CHECK(dime_store_fetch_put(st, "B.Example", DIME_STORE_ORG_SIGNET, 1000, 0) == DIME_OK,
		"put org");
	T_CHECK(dime_store_fetch_put(st, "u@b.example", DIME_STORE_USER_SIGNET, 2000, 1) == DIME_OK,
		"put absent user");
	rc = dime_store_fetch_get(st, &at, &absent, "b.example", DIME_STORE_ORG_SIGNET);
	T_CHECK(rc == DIME_OK && at == 1000 && absent == 0, "org: got %d %lld %d, want 0 1000 0",
		rc, (long long)at, absent);
	rc = dime_store_fetch_get(st, &at, &absent, "b.example", DIME_STORE_USER_SIGNET);
	T_CHECK(rc == DIME_E_NOTFOUND, "the kind is part of the key: got %d", rc);
	rc = dime_store_fetch_get(st, &at, &absent, "U@B.EXAMPLE", DIME_STORE_USER_SIGNET);
	T_CHECK(rc == DIME_OK && at == 2000 && absent == 1, "user: got %d %lld %d, want 0 2000 1",
		rc, (long long)at, absent);
	/* replaced, not added: found again, newer */
	T_CHECK(dime_store_fetch_put(st, "u@b.example", DIME_STORE_USER_SIGNET, 3000, 0) == DIME_OK,
		"put user found");
	dime_store_close(st);
	st = t_open(t_path("fetch.db"));
	rc = dime_store_fetch_get(st, &at, &absent, "u@b.example", DIME_STORE_USER_SIGNET);
	T_CHECK(rc == DIME_OK && at == 3000 && absent == 0,
		"user after reopen: got %d %lld %d, want 0 3000 0", rc, (long long)at, absent);
	T_CHECK(dime_store_fetch_del(st, "u@b.example", DIME_STORE_USER_SIGNET) == DIME_OK, "del");
	T_CHECK(dime_store_fetch_del(st, "u@b.example", DIME_STORE_USER_SIGNET) == DIME_E_NOTFOUND,
		"del twice");
	T_CHECK(dime_store_fetch_put(st, "b.example", DIME_STORE_ORG_KEY, 1, 0) == DIME_E_INVALID,
		"a key kind is refused");
	T_CHECK(dime_store_fetch_put(st, "", DIME_STORE_ORG_SIGNET, 1, 0) == DIME_E_INVALID,
		"an empty ident is refused");
	rc = dime_store_fetch_get(st, &at, &absent, "bad\nname", DIME_STORE_ORG_SIGNET);
	T_CHECK(rc == DIME_E_INVALID && at == 0, "a control character: got %d", rc);
	dime_store_close(st);
}

/* A version 5 store (the last without the fetched table) gains it, its rows kept. */
static void
test_migrate_v5(void)
{
	struct dime_store *st = t_open(t_path("v5.db"));
	sqlite3 *raw = NULL;
	int64_t at = 0;
	int absent = 0, ok;

	t_put(st, "f.example", DIME_STORE_ORG_SIGNET, "signet", 0, 1);
	dime_store_close(st);
	ok = sqlite3_open(t_path("v5.db"), &raw) == SQLITE_OK &&
	     sqlite3_exec(raw, "DROP TABLE fetched; PRAGMA user_version = 5", NULL, NULL, NULL) ==
		 SQLITE_OK;
	T_CHECK(ok, "make v5 store: %s", sqlite3_errmsg(raw));
	sqlite3_close(raw);
	st = t_open(t_path("v5.db"));
	t_get(st, "f.example", DIME_STORE_ORG_SIGNET, 0, "signet", NULL);
	T_CHECK(dime_store_fetch_put(st, "f.example", DIME_STORE_ORG_SIGNET, 7, 0) == DIME_OK &&
		    dime_store_fetch_get(st, &at, &absent, "f.example", DIME_STORE_ORG_SIGNET) ==
			DIME_OK &&
		    at == 7,
		"fetched on a migrated v5 store: at %lld", (long long)at);
	dime_store_close(st);
}

/* The 255 DUPLICATE table: insert-or-report, lookups, states, deletion, persistence. */
static void
test_seen(void)
{
	struct dime_store *st = t_open(t_path("seen.db"));
	uint8_t h1[DIME_STORE_SEEN_BYTES], h2[DIME_STORE_SEEN_BYTES];
	enum dime_store_seen_state state = DIME_STORE_SEEN_DELIVERED;
	int64_t received = -1;
	int64_t now = (int64_t)time(NULL);
	int already = -1, rc;

	memset(h1, 0xa5, sizeof(h1));
	memcpy(h2, h1, sizeof(h2));
	h2[63] ^= 1; /* differs in the last byte only: the whole hash is the key */
	rc = dime_store_seen_get(st, h1, &received, &state);
	T_CHECK(rc == DIME_E_NOTFOUND && received == 0 && state == DIME_STORE_SEEN_ACCEPTED,
		"get before put: got %d %lld %d, want NOTFOUND 0 0", rc, (long long)received,
		(int)state);
	rc = dime_store_seen_put(st, h1, &already);
	T_CHECK(rc == DIME_OK && already == 0, "first put: got %d already %d, want ok 0", rc,
		already);
	rc = dime_store_seen_put(st, h1, &already);
	T_CHECK(rc == DIME_OK && already == 1, "second put: got %d already %d, want ok 1", rc,
		already);
	rc = dime_store_seen_put(st, h2, &already);
	T_CHECK(rc == DIME_OK && already == 0, "other hash: got %d already %d, want ok 0", rc,
		already);
	rc = dime_store_seen_get(st, h1, &received, &state);
	T_CHECK(rc == DIME_OK && received >= now - 5 && received <= now + 5 &&
		    state == DIME_STORE_SEEN_ACCEPTED,
		"get: got %d %lld %d", rc, (long long)received, (int)state);
	T_CHECK(dime_store_seen_set_state(st, h1, DIME_STORE_SEEN_DELIVERED) == DIME_OK,
		"set_state delivered");
	T_CHECK(dime_store_seen_set_state(st, h1, (enum dime_store_seen_state)7) == DIME_E_INVALID,
		"set_state 7 accepted");
	dime_store_close(st);

	/* persistent across handles */
	st = t_open(t_path("seen.db"));
	rc = dime_store_seen_get(st, h1, NULL, &state);
	T_CHECK(rc == DIME_OK && state == DIME_STORE_SEEN_DELIVERED,
		"reopened: got %d state %d, want ok delivered", rc, (int)state);
	rc = dime_store_seen_put(st, h1, &already);
	T_CHECK(rc == DIME_OK && already == 1, "reopened put: already %d, want 1", already);
	T_CHECK(dime_store_seen_del(st, h1) == DIME_OK, "del");
	T_CHECK(dime_store_seen_del(st, h1) == DIME_E_NOTFOUND, "del twice");
	T_CHECK(dime_store_seen_set_state(st, h1, DIME_STORE_SEEN_DELIVERED) == DIME_E_NOTFOUND,
		"set_state of a deleted hash");
	rc = dime_store_seen_put(st, h1, &already);
	T_CHECK(rc == DIME_OK && already == 0, "put after del: already %d, want 0", already);
	dime_store_close(st);
}

/* Processes racing to accept the same messages: each hash is new for exactly one of them. */
static void
test_seen_race(void)
{
	enum { PROCS = 4, HASHES = 50 };
	const char *path = t_path("race.db");
	pid_t pid[PROCS];
	int fds[PROCS][2], firsts = 0;
	struct dime_store *st = t_open(path);

	dime_store_close(st); /* created and migrated once, before the race */
	for (int p = 0; p < PROCS; p++) {
		if (pipe(fds[p]) != 0 || (pid[p] = fork()) < 0) {
			t_fail("pipe/fork");
			return;
		}
		if (pid[p] == 0) {
			struct dime_store *cst = NULL;
			char err[256];
			int mine = 0;

			close(fds[p][0]);
			if (dime_store_open(&cst, path, err, sizeof(err)) != DIME_OK)
				_exit(2);
			for (int i = 0; i < HASHES; i++) {
				uint8_t h[DIME_STORE_SEEN_BYTES] = {0};
				int already = 1;

				h[0] = (uint8_t)i;
				if (dime_store_seen_put(cst, h, &already) != DIME_OK)
					_exit(3);
				mine += already == 0;
			}
			dime_store_close(cst);
			if (write(fds[p][1], &mine, sizeof(mine)) != (ssize_t)sizeof(mine))
				_exit(4);
			_exit(0);
		}
		close(fds[p][1]);
	}
	for (int p = 0; p < PROCS; p++) {
		int mine = 0, status = 0;

		if (read(fds[p][0], &mine, sizeof(mine)) == (ssize_t)sizeof(mine))
			firsts += mine;
		close(fds[p][0]);
		waitpid(pid[p], &status, 0);
		T_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "racer %d: status %d", p,
			status);
	}
	T_CHECK(firsts == HASHES, "racing puts: %d reported new, want exactly %d", firsts, HASHES);
}

int
main(void)
{
	t_init();
	if (t_mkdtemp("dime-store") != 0)
		return 1;
	test_open_modes();
	test_open_failures();
	test_versions();
	test_hosted();
	test_idents();
	test_list();
	test_two_handles();
	test_large();
	test_defaults();
	test_settings();
	test_open_existing();
	test_pending();
	test_tx();
	test_migrate_v1();
	test_seen();
	test_seen_race();
	test_fetch();
	test_migrate_v5();
	t_rm_rf(t_dir);
	return t_done("test_store");
}

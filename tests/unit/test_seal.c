/* Private keys at rest (pipeline/src/seal.c through the store API): round trip, no plaintext
 * in the file, wrong passphrase or key file refused at open, blobs moved between rows or
 * tampered refused, rekey-secrets all or nothing, and the migration of a v1 plaintext store.
 * Argon2id runs at its minimum cost here (DIME_PWHASH_COST=min, read at creation only). */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "dime/crypto.h"
#include "dime/store.h"
#include "tlib.h"

#define SEAL_OVERHEAD 41 /* format byte, 24-byte nonce, 16-byte tag */

static const char key_alice[] = "alice user key: 0123456789abcdef0123456789abcdef";
static const char key_bob[] = "bob user key: fedcba9876543210fedcba9876543210!!";
static const char key_org[] = "example.org org key: the quick brown fox jumps....";
static const char key_sok[] = "example.org sok key: pack my box with five dozen...";

static void
t_env(const char *key_file, const char *pass_file)
{
	if (key_file != NULL)
		setenv("DIME_KEY_FILE", key_file, 1);
	else
		unsetenv("DIME_KEY_FILE");
	if (pass_file != NULL)
		setenv("DIME_PASSPHRASE_FILE", pass_file, 1);
	else
		unsetenv("DIME_PASSPHRASE_FILE");
}

static void
t_write(const char *path, const void *p, size_t n, int mode)
{
	FILE *f;

	(void)unlink(path);
	f = fopen(path, "w");
	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0 ||
	    chmod(path, (mode_t)mode) != 0)
		t_fail("write %s: %s", path, strerror(errno));
}

static size_t
t_slurp(const char *path, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return 0;
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

static int
t_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* Does the file at path hold the bytes of s anywhere? */
static int
t_file_has(const char *path, const char *s)
{
	static uint8_t buf[1 << 22];
	size_t n = t_slurp(path, buf, sizeof(buf)), m = strlen(s);

	for (size_t i = 0; i + m <= n; i++)
		if (memcmp(buf + i, s, m) == 0)
			return 1;
	return 0;
}

static struct dime_store *
t_open_ok(const char *path, const char *what)
{
	struct dime_store *st = NULL;
	char err[512] = "";
	int rc = dime_store_open(&st, path, err, sizeof(err));

	if (rc != DIME_OK || st == NULL) {
		t_fail("%s: open %s: got %d (%s), want ok", what, path, rc, err);
		exit(t_done("test_seal"));
	}
	return st;
}

/* Opening must fail with want, no handle, and a message containing msg. */
static void
t_open_fails(const char *path, int want, const char *msg, const char *what)
{
	struct dime_store *st = (struct dime_store *)&st;
	char err[512] = "";
	int rc = dime_store_open(&st, path, err, sizeof(err));

	T_CHECK(rc == want && st == NULL && strstr(err, msg) != NULL,
		"%s: open: got %d (%s), want %d with '%s'", what, rc, err, want, msg);
	if (rc == DIME_OK)
		dime_store_close(st);
}

static void
t_put_key(struct dime_store *st, const char *ident, enum dime_store_kind kind, const char *key,
	  uint32_t want_version)
{
	uint32_t v = 99;
	int rc = dime_store_put(st, &v, ident, kind, (const uint8_t *)key, strlen(key), 1, 0, "");

	T_CHECK(rc == DIME_OK && v == want_version, "put %s/%d: got %d v%u, want ok v%u", ident,
		(int)kind, rc, v, want_version);
}

/* get (and get_row) return want, or fail with want_rc and zeroed outputs. */
static void
t_get_key(struct dime_store *st, const char *ident, enum dime_store_kind kind, uint32_t version,
	  const char *want, int want_rc, const char *what)
{
	struct dime_store_row row;
	uint8_t *blob = NULL;
	size_t len = 0;
	int rc = dime_store_get(st, &blob, &len, &row, ident, kind, version);

	if (want_rc != DIME_OK) {
		T_CHECK(rc == want_rc && blob == NULL && len == 0 && row.rowid == 0,
			"%s: get %s/%d v%u: got %d, want %d and no blob", what, ident, (int)kind,
			version, rc, want_rc);
	} else {
		T_CHECK(rc == DIME_OK && len == strlen(want) && memcmp(blob, want, len) == 0,
			"%s: get %s/%d v%u: got %d len %zu, want '%s'", what, ident, (int)kind,
			version, rc, len, want);
	}
	if (blob != NULL) {
		dime_wipe(blob, len);
		free(blob);
		blob = NULL;
	}
	/* get_row must agree: it is how the directory loads hosted keys. */
	if (rc == DIME_OK || rc == want_rc) {
		int64_t rowid = row.rowid;
		struct dime_store_row r2;

		if (rc != DIME_OK &&
		    dime_store_get(st, &blob, &len, &r2, ident, kind, version) != DIME_OK) {
			/* find the rowid through list: the row exists even though it does not open
			 */
			sqlite3 *raw = NULL;
			sqlite3_stmt *q = NULL;

			rowid = 0;
			if (sqlite3_open(dime_store_path(st), &raw) == SQLITE_OK &&
			    sqlite3_prepare_v2(raw,
					       "SELECT rowid FROM objects WHERE ident = ?1 AND "
					       "kind = ?2 AND version = ?3",
					       -1, &q, NULL) == SQLITE_OK &&
			    sqlite3_bind_text(q, 1, ident, -1, SQLITE_STATIC) == SQLITE_OK &&
			    sqlite3_bind_int(q, 2, (int)kind) == SQLITE_OK &&
			    sqlite3_bind_int(q, 3, (int)version) == SQLITE_OK &&
			    sqlite3_step(q) == SQLITE_ROW)
				rowid = sqlite3_column_int64(q, 0);
			sqlite3_finalize(q);
			sqlite3_close(raw);
		}
		if (rowid == 0)
			return;
		rc = dime_store_get_row(st, &blob, &len, rowid);
		if (want_rc != DIME_OK)
			T_CHECK(rc == want_rc && blob == NULL && len == 0,
				"%s: get_row %s/%d v%u: got %d, want %d", what, ident, (int)kind,
				version, rc, want_rc);
		else
			T_CHECK(
			    rc == DIME_OK && len == strlen(want) && memcmp(blob, want, len) == 0,
			    "%s: get_row %s/%d v%u: got %d", what, ident, (int)kind, version, rc);
		if (blob != NULL) {
			dime_wipe(blob, len);
			free(blob);
		}
	}
}

/* ---- raw access to the database, as an attacker with the file would have ---- */

static sqlite3 *
t_raw(const char *path)
{
	sqlite3 *db = NULL;

	if (sqlite3_open(path, &db) != SQLITE_OK) {
		t_fail("raw open %s: %s", path, sqlite3_errmsg(db));
		exit(t_done("test_seal"));
	}
	sqlite3_busy_timeout(db, 5000);
	return db;
}

/* The stored blob of (ident, kind, version) into buf; returns its length (0: missing). */
static size_t
t_raw_blob(sqlite3 *db, uint8_t *buf, size_t cap, const char *ident, enum dime_store_kind kind,
	   uint32_t version, uint8_t sha[64])
{
	sqlite3_stmt *q = NULL;
	size_t n = 0;

	if (sqlite3_prepare_v2(db,
			       "SELECT blob, sha512 FROM objects WHERE ident = ?1 AND kind = ?2 "
			       "AND version = ?3",
			       -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_bind_text(q, 1, ident, -1, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_bind_int(q, 2, (int)kind) == SQLITE_OK &&
	    sqlite3_bind_int(q, 3, (int)version) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW) {
		n = (size_t)sqlite3_column_bytes(q, 0);
		if (n > cap)
			n = cap;
		memcpy(buf, sqlite3_column_blob(q, 0), n);
		if (sha != NULL && sqlite3_column_bytes(q, 1) == 64)
			memcpy(sha, sqlite3_column_blob(q, 1), 64);
	}
	sqlite3_finalize(q);
	return n;
}

static void
t_raw_set_blob(sqlite3 *db, const uint8_t *blob, size_t n, const char *ident,
	       enum dime_store_kind kind, uint32_t version)
{
	sqlite3_stmt *q = NULL;

	if (sqlite3_prepare_v2(db,
			       "UPDATE objects SET blob = ?1 WHERE ident = ?2 AND kind = ?3 AND "
			       "version = ?4",
			       -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_bind_blob(q, 1, blob, (int)n, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(q, 2, ident, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int(q, 3, (int)kind) != SQLITE_OK ||
	    sqlite3_bind_int(q, 4, (int)version) != SQLITE_OK || sqlite3_step(q) != SQLITE_DONE ||
	    sqlite3_changes(db) != 1)
		t_fail("raw update %s/%d v%u: %s", ident, (int)kind, version, sqlite3_errmsg(db));
	sqlite3_finalize(q);
}

static size_t
t_raw_meta(sqlite3 *db, uint8_t *buf, size_t cap)
{
	sqlite3_stmt *q = NULL;
	size_t n = 0;

	if (sqlite3_prepare_v2(db, "SELECT mode || ':' || hex(verifier) FROM secrets", -1, &q,
			       NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW) {
		n = (size_t)sqlite3_column_bytes(q, 0);
		if (n > cap)
			n = cap;
		memcpy(buf, sqlite3_column_text(q, 0), n);
	}
	sqlite3_finalize(q);
	return n;
}

/* ---- tests ---- */

/* A store created with nothing configured gets "<path>.key" (0600, 32 bytes); keys go in and
 * come out as they were, are stored sealed (no plaintext, no plain SHA-512), and duplicates
 * are still recognised. */
static void
test_round_trip(void)
{
	const char *db = t_path("rt/dime.db");
	char key[4096];
	struct dime_store *st;
	uint8_t blob[512], sha[64], plain_sha[DIME_SHA512_BYTES], kb[64];
	sqlite3 *raw;
	struct stat sb;
	size_t n;

	t_env(NULL, NULL);
	snprintf(key, sizeof(key), "%s.key", db);
	st = t_open_ok(db, "round trip");
	T_CHECK(stat(key, &sb) == 0 && (sb.st_mode & 0777) == 0600 && sb.st_size == 32,
		"generated key file: mode %o size %lld, want 600 and 32", (unsigned)sb.st_mode,
		(long long)sb.st_size);
	t_put_key(st, "alice@example.org", DIME_STORE_USER_KEY, key_alice, 1);
	t_put_key(st, "alice@example.org", DIME_STORE_USER_KEY, key_bob, 2);
	t_put_key(st, "example.org", DIME_STORE_ORG_KEY, key_org, 1);
	t_put_key(st, "example.org", DIME_STORE_SOK_KEY, key_sok, 1);
	t_put_key(st, "example.org", DIME_STORE_ORG_SIGNET, "org signet, stored as is", 1);
	/* the same plaintext again: the keyed digest still finds it */
	t_put_key(st, "alice@example.org", DIME_STORE_USER_KEY, key_alice, 1);
	t_put_key(st, "alice@example.org", DIME_STORE_USER_KEY, key_bob, 2);
	t_get_key(st, "alice@example.org", DIME_STORE_USER_KEY, 1, key_alice, DIME_OK, "rt");
	t_get_key(st, "alice@example.org", DIME_STORE_USER_KEY, 0, key_bob, DIME_OK, "rt");
	t_get_key(st, "example.org", DIME_STORE_ORG_KEY, 0, key_org, DIME_OK, "rt");
	t_get_key(st, "example.org", DIME_STORE_SOK_KEY, 0, key_sok, DIME_OK, "rt");
	t_get_key(st, "example.org", DIME_STORE_ORG_SIGNET, 0, "org signet, stored as is", DIME_OK,
		  "rt");

	raw = t_raw(db);
	n = t_raw_blob(raw, blob, sizeof(blob), "alice@example.org", DIME_STORE_USER_KEY, 1, sha);
	dime_sha512(plain_sha, (const uint8_t *)key_alice, strlen(key_alice));
	T_CHECK(n == strlen(key_alice) + SEAL_OVERHEAD && blob[0] == 1,
		"sealed blob: got %zu bytes, first %u; want %zu, 1", n, blob[0],
		strlen(key_alice) + SEAL_OVERHEAD);
	T_CHECK(memcmp(sha, plain_sha, 64) != 0, "the sha512 column of a key is its plain SHA-512");
	n = t_raw_blob(raw, blob, sizeof(blob), "example.org", DIME_STORE_ORG_SIGNET, 1, NULL);
	T_CHECK(n == strlen("org signet, stored as is"), "a signet is stored as is: %zu bytes", n);
	sqlite3_close(raw);
	dime_store_close(st);
	/* No plaintext key anywhere in the file (the WAL is checkpointed at close). */
	T_CHECK(!t_file_has(db, key_alice) && !t_file_has(db, key_org) && !t_file_has(db, key_sok),
		"a plaintext key is in the store file");
	T_CHECK(t_file_has(db, "org signet, stored as is"), "the signet should be in the file");

	/* Reopen: the same key file unlocks it. */
	st = t_open_ok(db, "round trip reopen");
	t_get_key(st, "alice@example.org", DIME_STORE_USER_KEY, 1, key_alice, DIME_OK, "reopen");
	dime_store_close(st);

	/* Another key file of the right shape: refused at open, with the clear message. */
	T_CHECK(t_slurp(key, kb, sizeof(kb)) == 32, "read key file");
	kb[0] ^= 1;
	t_write(key, kb, 32, 0600);
	t_open_fails(db, DIME_E_BADSIG, "wrong passphrase or key file for store", "flipped key");
	kb[0] ^= 1;
	t_write(key, kb, 32, 0600);
	st = t_open_ok(db, "key file restored");
	dime_store_close(st);
}

static int t_cb_calls;

static int
t_cb_pass(char *buf, size_t cap, const char *path, void *arg)
{
	t_cb_calls++;
	(void)path;
	if (arg == NULL)
		return DIME_E_NOTFOUND;
	snprintf(buf, cap, "%s", (const char *)arg);
	return DIME_OK;
}

/* A passphrase store: the right passphrase (file or callback) opens it; a wrong one, none, or
 * an unsafe file is refused at open with a clear message. Key files likewise. */
static void
test_wrong_secret(void)
{
	const char *db = t_path("pw/dime.db");
	char pw1[4096], pw2[4096], k1[4096], k2[4096], beside[4096];
	struct dime_store *st;
	uint8_t kb[40];

	snprintf(pw1, sizeof(pw1), "%s", t_path("pw1"));
	snprintf(pw2, sizeof(pw2), "%s", t_path("pw2"));
	snprintf(k1, sizeof(k1), "%s", t_path("k1"));
	snprintf(k2, sizeof(k2), "%s", t_path("k2"));
	t_write(pw1, "correct horse battery staple\nsecond line ignored\n", 50, 0600);
	t_write(pw2, "correct horse battery stapler\n", 30, 0600);
	t_env(NULL, pw1);
	st = t_open_ok(db, "passphrase create");
	snprintf(beside, sizeof(beside), "%s.key", db);
	T_CHECK(!t_exists(beside), "a passphrase store must not get a key file beside it");
	t_put_key(st, "alice@example.org", DIME_STORE_USER_KEY, key_alice, 1);
	dime_store_close(st);

	/* The cost was recorded at creation; the variable is not read at open (a bogus value
	 * would be refused if it were). */
	{
		sqlite3 *raw = t_raw(db);
		sqlite3_stmt *q = NULL;

		if (sqlite3_prepare_v2(raw, "SELECT opslimit, memlimit, length(salt) FROM secrets",
				       -1, &q, NULL) == SQLITE_OK &&
		    sqlite3_step(q) == SQLITE_ROW)
			T_CHECK(sqlite3_column_int64(q, 0) == 1 &&
				    sqlite3_column_int64(q, 1) == 8192 &&
				    sqlite3_column_int(q, 2) == 16,
				"recorded cost: got %lld %lld salt %d, want 1 8192 16",
				(long long)sqlite3_column_int64(q, 0),
				(long long)sqlite3_column_int64(q, 1), sqlite3_column_int(q, 2));
		else
			t_fail("secrets row: %s", sqlite3_errmsg(raw));
		sqlite3_finalize(q);
		sqlite3_close(raw);
	}
	setenv("DIME_PWHASH_COST", "bogus", 1);
	st = t_open_ok(db, "passphrase reopen");
	setenv("DIME_PWHASH_COST", "min", 1);
	t_get_key(st, "alice@example.org", DIME_STORE_USER_KEY, 0, key_alice, DIME_OK, "pw");
	dime_store_close(st);
	t_env(NULL, pw2);
	t_open_fails(db, DIME_E_BADSIG, "wrong passphrase or key file for store", "wrong pw");
	t_env(NULL, NULL);
	t_open_fails(db, DIME_E_INVALID, "sealed with a passphrase", "no pw");
	t_env(k1, NULL); /* a key file does not open a passphrase store */
	t_open_fails(db, DIME_E_INVALID, "sealed with a passphrase", "key file for pw store");
	t_env(NULL, pw1);
	chmod(pw1, 0640);
	t_open_fails(db, DIME_E_INVALID, "chmod 600", "group-readable passphrase file");
	chmod(pw1, 0400);
	st = t_open_ok(db, "0400 passphrase file");
	dime_store_close(st);
	t_write(pw2, "\n", 1, 0600);
	t_env(NULL, pw2);
	t_open_fails(db, DIME_E_INVALID, "empty", "empty passphrase");

	/* The callback (the CLI's terminal prompt) is asked when no file is set. */
	t_env(NULL, NULL);
	dime_store_set_passphrase_fn(t_cb_pass, (void *)"correct horse battery staple");
	t_cb_calls = 0;
	st = t_open_ok(db, "callback");
	T_CHECK(t_cb_calls == 1, "callback calls: got %d, want 1", t_cb_calls);
	t_get_key(st, "alice@example.org", DIME_STORE_USER_KEY, 0, key_alice, DIME_OK, "cb");
	dime_store_close(st);
	dime_store_set_passphrase_fn(t_cb_pass, (void *)"Correct horse battery staple");
	t_open_fails(db, DIME_E_BADSIG, "wrong passphrase or key file for store", "wrong cb");
	dime_store_set_passphrase_fn(t_cb_pass, NULL);
	t_open_fails(db, DIME_E_INVALID, "run on a terminal", "no terminal");
	dime_store_set_passphrase_fn(t_cb_pass, (void *)"");
	t_open_fails(db, DIME_E_INVALID, "no passphrase", "empty answer");
	dime_store_set_passphrase_fn(NULL, NULL);

	/* Key file stores. */
	db = t_path("kf/dime.db");
	t_rand_fill(kb, sizeof(kb));
	t_write(k1, kb, 32, 0600);
	kb[5] ^= 0x80;
	t_write(k2, kb, 32, 0600);
	t_env(k1, NULL);
	st = t_open_ok(db, "key file create");
	t_put_key(st, "example.org", DIME_STORE_ORG_KEY, key_org, 1);
	dime_store_close(st);
	t_env(k2, NULL);
	t_open_fails(db, DIME_E_BADSIG, "wrong passphrase or key file for store", "wrong key");
	t_env(k1, pw1); /* the key file comes first */
	st = t_open_ok(db, "key file and passphrase");
	t_get_key(st, "example.org", DIME_STORE_ORG_KEY, 0, key_org, DIME_OK, "kf");
	dime_store_close(st);
	t_env(NULL, NULL);
	t_open_fails(db, DIME_E_INVALID, "is missing", "no key file");
	t_env(k1, NULL);
	chmod(k1, 0644);
	t_open_fails(db, DIME_E_INVALID, "chmod 600", "world-readable key file");
	chmod(k1, 0604);
	t_open_fails(db, DIME_E_INVALID, "chmod 600", "other-readable key file");
	chmod(k1, 0400);
	st = t_open_ok(db, "0400 key file");
	dime_store_close(st);
	t_write(k2, kb, 31, 0600);
	t_env(k2, NULL);
	t_open_fails(db, DIME_E_INVALID, "want exactly 32", "short key file");
	t_write(k2, kb, 33, 0600);
	t_open_fails(db, DIME_E_INVALID, "want exactly 32", "long key file");
	t_env(t_path("nonexistent"), NULL);
	t_open_fails(db, DIME_E_INVALID, "No such file", "missing key file");
	t_env(NULL, NULL);
}

/* A sealed blob copied to another row (ident, version or kind), or changed in any byte, does
 * not open: get and get_row fail with DIME_E_BADSIG and give no bytes. */
static void
test_moved_and_tampered(void)
{
	const char *db = t_path("mv/dime.db");
	struct dime_store *st;
	uint8_t a1[256], a2[256], b1[256], org[256], sok[256];
	size_t na1, na2, nb1, norg, nsok;
	sqlite3 *raw;

	t_env(NULL, NULL);
	st = t_open_ok(db, "moved");
	t_put_key(st, "alice@example.org", DIME_STORE_USER_KEY, key_alice, 1);
	t_put_key(st, "alice@example.org", DIME_STORE_USER_KEY, key_alice + 1, 2);
	t_put_key(st, "bob@example.org", DIME_STORE_USER_KEY, key_bob, 1);
	t_put_key(st, "example.org", DIME_STORE_ORG_KEY, key_org, 1);
	t_put_key(st, "example.org", DIME_STORE_SOK_KEY, key_sok, 1);
	raw = t_raw(db);
	na1 = t_raw_blob(raw, a1, sizeof(a1), "alice@example.org", DIME_STORE_USER_KEY, 1, NULL);
	na2 = t_raw_blob(raw, a2, sizeof(a2), "alice@example.org", DIME_STORE_USER_KEY, 2, NULL);
	nb1 = t_raw_blob(raw, b1, sizeof(b1), "bob@example.org", DIME_STORE_USER_KEY, 1, NULL);
	norg = t_raw_blob(raw, org, sizeof(org), "example.org", DIME_STORE_ORG_KEY, 1, NULL);
	nsok = t_raw_blob(raw, sok, sizeof(sok), "example.org", DIME_STORE_SOK_KEY, 1, NULL);
	T_CHECK(na1 > SEAL_OVERHEAD && na2 > 0 && nb1 > 0 && norg > 0 && nsok > 0, "raw blobs");

	/* another ident */
	t_raw_set_blob(raw, a1, na1, "bob@example.org", DIME_STORE_USER_KEY, 1);
	t_get_key(st, "bob@example.org", DIME_STORE_USER_KEY, 1, NULL, DIME_E_BADSIG, "ident");
	t_raw_set_blob(raw, b1, nb1, "bob@example.org", DIME_STORE_USER_KEY, 1);
	t_get_key(st, "bob@example.org", DIME_STORE_USER_KEY, 1, key_bob, DIME_OK, "restored");
	/* another version */
	t_raw_set_blob(raw, a1, na1, "alice@example.org", DIME_STORE_USER_KEY, 2);
	t_get_key(st, "alice@example.org", DIME_STORE_USER_KEY, 2, NULL, DIME_E_BADSIG, "version");
	t_raw_set_blob(raw, a2, na2, "alice@example.org", DIME_STORE_USER_KEY, 2);
	/* another kind */
	t_raw_set_blob(raw, sok, nsok, "example.org", DIME_STORE_ORG_KEY, 1);
	t_get_key(st, "example.org", DIME_STORE_ORG_KEY, 1, NULL, DIME_E_BADSIG, "kind");
	t_raw_set_blob(raw, org, norg, "example.org", DIME_STORE_ORG_KEY, 1);
	t_get_key(st, "example.org", DIME_STORE_ORG_KEY, 1, key_org, DIME_OK, "restored kind");

	/* every single-bit change, every truncation */
	for (size_t i = 0; i < na1; i++) {
		a1[i] ^= (uint8_t)(1u << (i % 8));
		t_raw_set_blob(raw, a1, na1, "alice@example.org", DIME_STORE_USER_KEY, 1);
		t_get_key(st, "alice@example.org", DIME_STORE_USER_KEY, 1, NULL, DIME_E_BADSIG,
			  "flip");
		a1[i] ^= (uint8_t)(1u << (i % 8));
	}
	for (size_t k = 0; k < na1; k += 7) {
		t_raw_set_blob(raw, a1, k, "alice@example.org", DIME_STORE_USER_KEY, 1);
		t_get_key(st, "alice@example.org", DIME_STORE_USER_KEY, 1, NULL, DIME_E_BADSIG,
			  "truncated");
	}
	t_raw_set_blob(raw, a1, na1, "alice@example.org", DIME_STORE_USER_KEY, 1);
	t_get_key(st, "alice@example.org", DIME_STORE_USER_KEY, 1, key_alice, DIME_OK, "restored");
	sqlite3_close(raw);
	dime_store_close(st);
}

/* rekey-secrets: every key moves to the new KEK, the old one stops working; a row that does
 * not open stops the whole rekey with nothing changed; a stale handle is told to retry. */
static void
test_rekey(void)
{
	const char *db = t_path("rk/dime.db");
	char k1[4096], k2[4096], pw[4096], beside[4096], fresh[4096], err[512];
	uint8_t kb[32], before[3][256], after[256], meta0[512], meta1[512], oldkey[32], newkey[32];
	size_t nb[3], nm0, nm1, n = 0;
	struct dime_store *st, *st2;
	sqlite3 *raw;
	int rc;

	snprintf(k1, sizeof(k1), "%s", t_path("rk-k1"));
	snprintf(k2, sizeof(k2), "%s", t_path("rk-k2"));
	snprintf(pw, sizeof(pw), "%s", t_path("rk-pw"));
	snprintf(beside, sizeof(beside), "%s.key", db);
	snprintf(fresh, sizeof(fresh), "%s.key.new", db);
	t_rand_fill(kb, 32);
	t_write(k1, kb, 32, 0600);
	kb[0] ^= 1;
	t_write(k2, kb, 32, 0600);
	t_write(pw, "rekey passphrase\n", 17, 0600);

	t_env(NULL, NULL);
	st = t_open_ok(db, "rekey");
	t_put_key(st, "alice@example.org", DIME_STORE_USER_KEY, key_alice, 1);
	t_put_key(st, "example.org", DIME_STORE_ORG_KEY, key_org, 1);
	t_put_key(st, "example.org", DIME_STORE_SOK_KEY, key_sok, 1);
	/* generated -> key file: the old "<path>.key" opens nothing any more and is removed */
	rc = dime_store_rekey_secrets(st, &n, DIME_STORE_TO_KEY_FILE, k1, err, sizeof(err));
	T_CHECK(rc == DIME_OK && n == 3, "rekey to k1: got %d n %zu (%s)", rc, n, err);
	T_CHECK(!t_exists(beside), "the old generated key file should be gone");
	t_get_key(st, "example.org", DIME_STORE_ORG_KEY, 0, key_org, DIME_OK,
		  "after rekey, same handle");
	t_put_key(st, "bob@example.org", DIME_STORE_USER_KEY, key_bob, 1);
	dime_store_close(st);
	t_open_fails(db, DIME_E_INVALID, "is missing", "old key gone");
	t_env(k2, NULL);
	t_open_fails(db, DIME_E_BADSIG, "wrong passphrase or key file", "k2 before its rekey");
	t_env(k1, NULL);
	st = t_open_ok(db, "k1");
	t_get_key(st, "bob@example.org", DIME_STORE_USER_KEY, 0, key_bob, DIME_OK, "k1");

	/* All or nothing: damage the last key row, rekey fails, nothing moved. */
	raw = t_raw(db);
	nb[0] = t_raw_blob(raw, before[0], 256, "alice@example.org", DIME_STORE_USER_KEY, 1, NULL);
	nb[1] = t_raw_blob(raw, before[1], 256, "example.org", DIME_STORE_ORG_KEY, 1, NULL);
	nb[2] = t_raw_blob(raw, before[2], 256, "bob@example.org", DIME_STORE_USER_KEY, 1, NULL);
	nm0 = t_raw_meta(raw, meta0, sizeof(meta0));
	before[2][nb[2] - 1] ^= 1;
	t_raw_set_blob(raw, before[2], nb[2], "bob@example.org", DIME_STORE_USER_KEY, 1);
	rc = dime_store_rekey_secrets(st, &n, DIME_STORE_TO_KEY_FILE, k2, err, sizeof(err));
	T_CHECK(rc == DIME_E_BADSIG && n == 0 && strstr(err, "bob@example.org") != NULL,
		"rekey over a damaged row: got %d n %zu (%s), want DIME_E_BADSIG", rc, n, err);
	T_CHECK(t_raw_blob(raw, after, 256, "alice@example.org", DIME_STORE_USER_KEY, 1, NULL) ==
			nb[0] &&
		    memcmp(after, before[0], nb[0]) == 0,
		"alice's row changed by a failed rekey");
	T_CHECK(t_raw_blob(raw, after, 256, "example.org", DIME_STORE_ORG_KEY, 1, NULL) == nb[1] &&
		    memcmp(after, before[1], nb[1]) == 0,
		"the org row changed by a failed rekey");
	nm1 = t_raw_meta(raw, meta1, sizeof(meta1));
	T_CHECK(nm0 > 0 && nm0 == nm1 && memcmp(meta0, meta1, nm0) == 0,
		"the meta row changed by a failed rekey");
	t_get_key(st, "alice@example.org", DIME_STORE_USER_KEY, 0, key_alice, DIME_OK,
		  "old KEK after a failed rekey");
	dime_store_close(st);
	t_env(k2, NULL);
	t_open_fails(db, DIME_E_BADSIG, "wrong passphrase or key file", "k2 after a failed rekey");
	t_env(k1, NULL);
	st = t_open_ok(db, "k1 after a failed rekey");
	before[2][nb[2] - 1] ^= 1;
	t_raw_set_blob(raw, before[2], nb[2], "bob@example.org", DIME_STORE_USER_KEY, 1);
	sqlite3_close(raw);

	/* A second handle opened before a rekey elsewhere must not rekey on stale grounds. */
	st2 = t_open_ok(db, "second handle");
	rc = dime_store_rekey_secrets(st, &n, DIME_STORE_TO_PASSPHRASE_FILE, pw, err, sizeof(err));
	T_CHECK(rc == DIME_OK && n == 4, "rekey to passphrase: got %d n %zu (%s)", rc, n, err);
	T_CHECK(t_exists(k1), "a key file of the operator's is never removed");
	rc = dime_store_rekey_secrets(st2, &n, DIME_STORE_TO_KEY_FILE, k2, err, sizeof(err));
	T_CHECK(rc == DIME_E_AGAIN && strstr(err, "rekeyed by another process") != NULL,
		"stale handle rekey: got %d (%s), want DIME_E_AGAIN", rc, err);
	dime_store_close(st2);
	dime_store_close(st);
	t_open_fails(db, DIME_E_INVALID, "sealed with a passphrase", "k1 after rekey to pw");
	t_env(NULL, pw);
	st = t_open_ok(db, "pw");
	t_get_key(st, "alice@example.org", DIME_STORE_USER_KEY, 0, key_alice, DIME_OK, "pw");

	/* -> generated: "<path>.key" appears (0600) and opens the store with nothing set. */
	rc = dime_store_rekey_secrets(st, &n, DIME_STORE_TO_GENERATED, NULL, err, sizeof(err));
	T_CHECK(rc == DIME_OK && n == 4 && t_exists(beside) && !t_exists(fresh),
		"rekey to generated: got %d n %zu (%s)", rc, n, err);
	dime_store_close(st);
	t_env(NULL, NULL);
	st = t_open_ok(db, "generated");
	t_get_key(st, "example.org", DIME_STORE_SOK_KEY, 0, key_sok, DIME_OK, "generated");

	/* A rekey that died between its commit and the rename: the next open finishes it. */
	T_CHECK(t_slurp(beside, oldkey, 32) == 32, "read key");
	rc = dime_store_rekey_secrets(st, &n, DIME_STORE_TO_GENERATED, NULL, err, sizeof(err));
	T_CHECK(rc == DIME_OK, "rekey to generated again: got %d (%s)", rc, err);
	dime_store_close(st);
	T_CHECK(t_slurp(beside, newkey, 32) == 32 && memcmp(oldkey, newkey, 32) != 0, "new key");
	T_CHECK(rename(beside, fresh) == 0, "rename");
	t_write(beside, oldkey, 32, 0600);
	st = t_open_ok(db, "interrupted rekey");
	T_CHECK(!t_exists(fresh) && t_slurp(beside, kb, 32) == 32 && memcmp(kb, newkey, 32) == 0,
		"the interrupted rekey was not finished");
	t_get_key(st, "alice@example.org", DIME_STORE_USER_KEY, 0, key_alice, DIME_OK, "finished");
	/* bad targets: nothing changes */
	rc = dime_store_rekey_secrets(st, &n, DIME_STORE_TO_KEY_FILE, t_path("nope"), err,
				      sizeof(err));
	T_CHECK(rc == DIME_E_INVALID && n == 0, "rekey to a missing file: got %d", rc);
	chmod(k2, 0644);
	rc = dime_store_rekey_secrets(st, &n, DIME_STORE_TO_KEY_FILE, k2, err, sizeof(err));
	T_CHECK(rc == DIME_E_INVALID && strstr(err, "chmod 600") != NULL,
		"rekey to an open key file: got %d (%s)", rc, err);
	dime_store_close(st);
	st = t_open_ok(db, "after refused rekeys");
	dime_store_close(st);
}

/* A v1 store (schema of this build before secrets) with plaintext keys: sealed at first open
 * with the key available, plaintext gone from the file, duplicates still found. */
static void
t_make_v1(const char *path)
{
	static const char *const v1[] = {
	    "CREATE TABLE objects (rowid INTEGER PRIMARY KEY, ident TEXT NOT NULL, kind INTEGER "
	    "NOT NULL, version INTEGER NOT NULL CHECK (version >= 1), hosted INTEGER NOT NULL "
	    "CHECK (hosted IN (0, 1)), perms INTEGER NOT NULL CHECK (perms BETWEEN 0 AND 255), "
	    "fingerprint TEXT NOT NULL, blob BLOB NOT NULL, sha512 BLOB NOT NULL, created INTEGER "
	    "NOT NULL, UNIQUE (ident, kind, version))",
	    "CREATE INDEX objects_ident_kind_sha512 ON objects (ident, kind, sha512)",
	    "PRAGMA journal_mode = WAL",
	    "PRAGMA user_version = 1",
	};
	static const struct {
		const char *ident;
		int kind;
		const char *blob;
	} rows[] = {
	    {"example.org", DIME_STORE_ORG_KEY, key_org},
	    {"example.org", DIME_STORE_SOK_KEY, key_sok},
	    {"example.org", DIME_STORE_ORG_SIGNET, "v1 org signet bytes"},
	    {"alice@example.org", DIME_STORE_USER_KEY, key_alice},
	};
	sqlite3 *db = NULL;

	T_CHECK(mkdir(t_path("v1"), 0700) == 0, "mkdir v1");
	if (sqlite3_open(path, &db) != SQLITE_OK) {
		t_fail("v1 open: %s", sqlite3_errmsg(db));
		return;
	}
	for (size_t i = 0; i < sizeof(v1) / sizeof(v1[0]); i++)
		T_CHECK(sqlite3_exec(db, v1[i], NULL, NULL, NULL) == SQLITE_OK, "v1 %s: %s", v1[i],
			sqlite3_errmsg(db));
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		sqlite3_stmt *q = NULL;
		uint8_t sha[DIME_SHA512_BYTES];
		size_t n = strlen(rows[i].blob);

		dime_sha512(sha, (const uint8_t *)rows[i].blob, n);
		if (sqlite3_prepare_v2(
			db,
			"INSERT INTO objects (ident, kind, version, hosted, perms, "
			"fingerprint, blob, sha512, created) VALUES (?1, ?2, 1, 1, 0, "
			"'', ?3, ?4, 1)",
			-1, &q, NULL) != SQLITE_OK ||
		    sqlite3_bind_text(q, 1, rows[i].ident, -1, SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_bind_int(q, 2, rows[i].kind) != SQLITE_OK ||
		    sqlite3_bind_blob(q, 3, rows[i].blob, (int)n, SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_bind_blob(q, 4, sha, 64, SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_step(q) != SQLITE_DONE)
			t_fail("v1 insert: %s", sqlite3_errmsg(db));
		sqlite3_finalize(q);
	}
	sqlite3_close(db);
}

static void
test_migration(void)
{
	const char *db = t_path("v1/dime.db");
	char beside[4096], pw[4096];
	struct dime_store *st;
	uint8_t blob[256];
	sqlite3 *raw;
	sqlite3_stmt *q = NULL;

	snprintf(beside, sizeof(beside), "%s.key", db);
	t_make_v1(db);
	T_CHECK(t_file_has(db, key_alice), "the v1 fixture should hold a plaintext key");
	t_env(NULL, NULL);
	st = t_open_ok(db, "v1 migration");
	T_CHECK(t_exists(beside), "migration with nothing configured: no generated key file");
	t_get_key(st, "example.org", DIME_STORE_ORG_KEY, 0, key_org, DIME_OK, "migrated");
	t_get_key(st, "example.org", DIME_STORE_SOK_KEY, 0, key_sok, DIME_OK, "migrated");
	t_get_key(st, "alice@example.org", DIME_STORE_USER_KEY, 0, key_alice, DIME_OK, "migrated");
	t_get_key(st, "example.org", DIME_STORE_ORG_SIGNET, 0, "v1 org signet bytes", DIME_OK,
		  "migrated signet");
	/* the digest was recomputed: the same key is still a duplicate, not a version 2 */
	t_put_key(st, "alice@example.org", DIME_STORE_USER_KEY, key_alice, 1);
	raw = t_raw(db);
	T_CHECK(t_raw_blob(raw, blob, sizeof(blob), "alice@example.org", DIME_STORE_USER_KEY, 1,
			   NULL) == strlen(key_alice) + SEAL_OVERHEAD,
		"migrated row is not sealed");
	if (sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		T_CHECK(sqlite3_column_int(q, 0) >= 3, "user_version: got %d, want >= 3 (secrets)",
			sqlite3_column_int(q, 0));
	sqlite3_finalize(q);
	sqlite3_close(raw);
	dime_store_close(st);
	T_CHECK(!t_file_has(db, key_alice) && !t_file_has(db, key_org) && !t_file_has(db, key_sok),
		"a plaintext key survived the migration in the store file");
	st = t_open_ok(db, "migrated reopen");
	t_get_key(st, "alice@example.org", DIME_STORE_USER_KEY, 0, key_alice, DIME_OK, "reopen");
	dime_store_close(st);

	/* With a passphrase configured, a v1 store is sealed under it. */
	t_rm_rf(t_path("v1"));
	t_make_v1(db);
	snprintf(pw, sizeof(pw), "%s", t_path("v1-pw"));
	t_write(pw, "migrate me\n", 11, 0600);
	t_env(NULL, pw);
	st = t_open_ok(db, "v1 passphrase migration");
	T_CHECK(!t_exists(beside), "passphrase migration made a key file");
	t_get_key(st, "alice@example.org", DIME_STORE_USER_KEY, 0, key_alice, DIME_OK, "pw mig");
	dime_store_close(st);
	t_env(NULL, NULL);
	t_open_fails(db, DIME_E_INVALID, "sealed with a passphrase", "pw migration, no pw");
}

/* Concurrent first opens of one new store agree on one KEK (one of them generates it). */
static void
test_parallel_create(void)
{
	const char *db = t_path("par/dime.db");
	struct dime_store *a, *b;

	t_env(NULL, NULL);
	a = t_open_ok(db, "first");
	b = t_open_ok(db, "second");
	t_put_key(a, "alice@example.org", DIME_STORE_USER_KEY, key_alice, 1);
	t_get_key(b, "alice@example.org", DIME_STORE_USER_KEY, 0, key_alice, DIME_OK,
		  "two handles");
	dime_store_close(a);
	dime_store_close(b);
}

int
main(void)
{
	t_init();
	if (t_mkdtemp("dime-seal") != 0)
		return 1;
	/* Argon2id at its minimum cost: tests would take seconds per passphrase at moderate */
	setenv("DIME_PWHASH_COST", "min", 1);
	test_round_trip();
	test_wrong_secret();
	test_moved_and_tampered();
	test_rekey();
	test_migration();
	test_parallel_create();
	t_rm_rf(t_dir);
	return t_done("test_seal");
}

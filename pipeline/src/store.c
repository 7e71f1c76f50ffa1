/* The embedded store: one SQLite database in WAL mode holding DIME objects as bytes plus
 * metadata, every version of every (ident, kind). Private keys live inside, so the database
 * and its -wal/-shm files are created 0600 and its directory 0700. Nothing here logs: SQLite's
 * failures become DIME_E_IO (DIME_E_NOMEM for its out-of-memory) and open's err message. */

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "dime/crypto.h"
#include "dime/store.h"
#include "seal.h"

#define DIME_STORE_DEFAULT_PATH "./var/dime.db"
/* Concurrent CLI processes (org create, user create --rotate) queue on BEGIN IMMEDIATE: each
 * holds the write lock for a few key generations and signatures, so a writer waits rather than
 * fails while a handful of others finish. */
#define DIME_STORE_BUSY_MS   30000
#define DIME_STORE_IDENT_CAP 256 /* sizeof(row.ident): idents are at most 255 bytes */
#define DIME_STORE_FP_CAP    88	 /* sizeof(row.fingerprint) */

struct dime_store {
	sqlite3 *db;
	char *path;
	int in_tx; /* inside dime_store_begin: put uses a savepoint, not its own transaction */
	struct dime_seal *seal; /* the unlocked key-encryption key of key rows (seal.c) */
};

/* Schema migrations: store_migrations[i] takes user_version i to i + 1, and ends by setting
 * user_version (PRAGMA takes no bound parameters, so each version is a constant string).
 * The UNIQUE constraint already indexes (ident, kind, version), which serves lookups by
 * (ident, kind); the extra index adds sha512 so the duplicate check of put is one probe. */
static const char *const store_migration_v1[] = {
    "CREATE TABLE objects ("
    " rowid INTEGER PRIMARY KEY,"
    " ident TEXT NOT NULL,"
    " kind INTEGER NOT NULL,"
    " version INTEGER NOT NULL CHECK (version >= 1),"
    " hosted INTEGER NOT NULL CHECK (hosted IN (0, 1)),"
    " perms INTEGER NOT NULL CHECK (perms BETWEEN 0 AND 255),"
    " fingerprint TEXT NOT NULL,"
    " blob BLOB NOT NULL,"
    " sha512 BLOB NOT NULL,"
    " created INTEGER NOT NULL,"
    " UNIQUE (ident, kind, version))",
    "CREATE INDEX objects_ident_kind_sha512 ON objects (ident, kind, sha512)",
    "PRAGMA user_version = 1",
    NULL,
};

/* v2: a verification state per row. Version 1 stored a user signet whose org was absent, and an
 * org signet imported without --pok, as "unverified" beside verified rows: neither can be told
 * apart now, so every signet of another domain (not hosted) becomes pending, and importing its
 * org signet with --pok verifies it again (dime store import). Hosted rows were made here. */
static const char *const store_migration_v2[] = {
    "ALTER TABLE objects ADD COLUMN state INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1))",
    "UPDATE objects SET state = 1 WHERE hosted = 0 AND kind IN (1776, 1789)",
    "PRAGMA user_version = 2",
    NULL,
};

/* v4: the SHA-512 of every message a DMTP DATA accepted, so a retransmission gets
 * 255 DUPLICATE (spec Part 7) instead of a second delivery. WITHOUT ROWID: the hash is the key. */
static const char *const store_migration_v4[] = {
    "CREATE TABLE seen ("
    " hash BLOB PRIMARY KEY CHECK (length(hash) = 64),"
    " received INTEGER NOT NULL,"
    " state INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1))"
    ") WITHOUT ROWID",
    "PRAGMA user_version = 4",
    NULL,
};

/* v5: origin signets a MAIL named and that could not be had (spec Part 7 MAIL: 470, then 570
 * after 72 hours of failures; forgotten after a further 72 hours without a reference): when the
 * first failure was, when the last reference. The index on last serves the forgetting. */
static const char *const store_migration_v5[] = {
    "CREATE TABLE origin_fail ("
    " domain TEXT NOT NULL,"
    " fingerprint TEXT NOT NULL,"
    " first INTEGER NOT NULL,"
    " last INTEGER NOT NULL,"
    " PRIMARY KEY (domain, fingerprint)"
    ") WITHOUT ROWID",
    "CREATE INDEX origin_fail_last ON origin_fail (last)",
    "PRAGMA user_version = 5",
    NULL,
};

/* v6: what the signet resolver (dime/sigfetch.h) last learned of another domain's identity:
 * when a signet of (ident, kind) was fetched or confirmed current, or when its absence (576)
 * was, so that fresh answers are used without asking again. The signets themselves are rows
 * of objects. */
static const char *const store_migration_v6[] = {
    "CREATE TABLE fetched ("
    " ident TEXT NOT NULL,"
    " kind INTEGER NOT NULL,"
    " at INTEGER NOT NULL,"
    " absent INTEGER NOT NULL CHECK (absent IN (0, 1)),"
    " PRIMARY KEY (ident, kind)"
    ") WITHOUT ROWID",
    "PRAGMA user_version = 6",
    NULL,
};

/* v3: the secrets meta table (seal.c); key rows still in plaintext are sealed by dime_seal_new. */
static const char *const *const store_migrations[] = {store_migration_v1,  store_migration_v2,
						      dime_seal_migration, store_migration_v4,
						      store_migration_v5,  store_migration_v6};
#define DIME_STORE_SCHEMA_VERSION ((int)(sizeof(store_migrations) / sizeof(store_migrations[0])))

void
dime_store_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* SQLite result code to ours: only its out-of-memory is not an I/O failure. */
static int
store_err(int sqlite_rc)
{
	return (sqlite_rc & 0xff) == SQLITE_NOMEM ? DIME_E_NOMEM : DIME_E_IO;
}

/* Run one constant statement to completion, discarding any rows. Returns: a SQLite code. */
static int
store_exec(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
	if (rc != SQLITE_OK)
		goto out;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		;
	if (rc == SQLITE_DONE)
		rc = SQLITE_OK;
out:
	if (sqlite3_finalize(stmt) != SQLITE_OK && rc == SQLITE_OK)
		rc = SQLITE_ERROR;
	return rc;
}

/* Run a constant statement returning one integer (PRAGMA user_version). */
static int
store_query_int(sqlite3 *db, const char *sql, int64_t *v)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	*v = 0;
	rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
	if (rc != SQLITE_OK)
		goto out;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*v = sqlite3_column_int64(stmt, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_ERROR;
	}
out:
	if (sqlite3_finalize(stmt) != SQLITE_OK && rc == SQLITE_OK)
		rc = SQLITE_ERROR;
	return rc;
}

/* Leave a failed write transaction; harmless when none is open. */
static void
store_rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		(void)store_exec(db, "ROLLBACK");
}

/* Copy an identifier into buf lower-cased (ASCII only: other bytes, such as UTF-8, are kept).
 * Returns: DIME_OK or DIME_E_INVALID (NULL, empty, >= 256 bytes, or a control character). */
static int
store_ident(char buf[DIME_STORE_IDENT_CAP], const char *ident)
{
	size_t i;

	memset(buf, 0, DIME_STORE_IDENT_CAP);
	if (ident == NULL || ident[0] == '\0')
		return DIME_E_INVALID;
	for (i = 0; ident[i] != '\0'; i++) {
		unsigned char c = (unsigned char)ident[i];

		if (i + 1 >= DIME_STORE_IDENT_CAP || c < 0x20 || c == 0x7f) {
			memset(buf, 0, DIME_STORE_IDENT_CAP);
			return DIME_E_INVALID;
		}
		buf[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	return DIME_OK;
}

static int
store_kind_valid(enum dime_store_kind kind)
{
	switch (kind) {
	case DIME_STORE_SOK_KEY:
	case DIME_STORE_SSR:
	case DIME_STORE_ORG_SIGNET:
	case DIME_STORE_USER_SIGNET:
	case DIME_STORE_ORG_KEY:
	case DIME_STORE_USER_KEY: return 1;
	}
	return 0;
}

/* Create each missing directory above the file at path, mode 0700 (existing ones are left
 * as they are). Returns: 0, or -1 with errno set and the failing directory in err. */
static int
store_mkdirs(const char *path, char *err, size_t errlen)
{
	char *dir = NULL, *slash, *p;
	int rc = -1, saved = 0;

	if ((dir = strdup(path)) == NULL) {
		saved = errno;
		dime_store_errf(err, errlen, "out of memory");
		goto out;
	}
	if ((slash = strrchr(dir, '/')) == NULL) { /* the current directory */
		rc = 0;
		goto out;
	}
	if (slash == dir) { /* the root */
		rc = 0;
		goto out;
	}
	*slash = '\0';
	/* Make each prefix of dir that ends before a '/', then dir itself. */
	for (p = dir + 1;; p++) {
		char c = *p;
		struct stat sb;

		if (c != '/' && c != '\0')
			continue;
		if (p[-1] != '/') { /* "a//b": that prefix was made already */
			*p = '\0';
			/* An existing directory may answer EACCES rather than EEXIST. */
			if (mkdir(dir, 0700) != 0) {
				saved = errno;
				if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
					if (saved == EEXIST)
						saved = ENOTDIR;
					dime_store_errf(err, errlen, "mkdir %s: %s", dir,
							strerror(saved));
					goto out;
				}
			}
			*p = c;
		}
		if (c == '\0')
			break;
	}
	rc = 0;
out:
	free(dir);
	if (rc != 0)
		errno = saved;
	return rc;
}

/* Tighten a file SQLite made next to the database (-wal, -shm); absent is fine. */
static int
store_chmod_sidecar(const char *path, const char *suffix, char *err, size_t errlen)
{
	size_t n = strlen(path), m = strlen(suffix);
	char *p = malloc(n + m + 1);
	int rc = -1;

	if (p == NULL) {
		dime_store_errf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(p, path, n);
	memcpy(p + n, suffix, m + 1);
	if (chmod(p, 0600) != 0 && errno != ENOENT) {
		dime_store_errf(err, errlen, "chmod %s: %s", p, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(p);
	return rc;
}

/* Bring the schema to DIME_STORE_SCHEMA_VERSION. Another process may be doing the same, so
 * the version is read again inside the write transaction. */
static int
store_migrate(sqlite3 *db, char *err, size_t errlen)
{
	int64_t v = 0;
	int rc;

	if ((rc = store_query_int(db, "PRAGMA user_version", &v)) != SQLITE_OK)
		goto fail;
	if (v == DIME_STORE_SCHEMA_VERSION)
		return SQLITE_OK;
	if ((rc = store_exec(db, "BEGIN IMMEDIATE")) != SQLITE_OK ||
	    (rc = store_query_int(db, "PRAGMA user_version", &v)) != SQLITE_OK)
		goto fail;
	if (v < 0 || v > DIME_STORE_SCHEMA_VERSION) {
		store_rollback(db);
		dime_store_errf(err, errlen,
				"schema version %lld is not known to this build (max %d)",
				(long long)v, DIME_STORE_SCHEMA_VERSION);
		return SQLITE_ERROR;
	}
	for (; v < DIME_STORE_SCHEMA_VERSION; v++)
		for (const char *const *s = store_migrations[v]; *s != NULL; s++)
			if ((rc = store_exec(db, *s)) != SQLITE_OK)
				goto fail;
	if ((rc = store_exec(db, "COMMIT")) != SQLITE_OK)
		goto fail;
	return SQLITE_OK;
fail:
	dime_store_errf(err, errlen, "schema: %s", sqlite3_errmsg(db));
	store_rollback(db);
	return rc;
}

/* Connection settings. journal_mode answers with the mode in force, which stays "delete"
 * (or "memory") where WAL is impossible, so it is checked rather than assumed. */
static int
store_configure(sqlite3 *db, char *err, size_t errlen)
{
	sqlite3_stmt *stmt = NULL;
	const unsigned char *mode;
	int rc;

	if ((rc = sqlite3_extended_result_codes(db, 1)) != SQLITE_OK ||
	    (rc = sqlite3_busy_timeout(db, DIME_STORE_BUSY_MS)) != SQLITE_OK)
		goto fail;
	if ((rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL)) !=
	    SQLITE_OK)
		goto fail;
	if ((rc = sqlite3_step(stmt)) != SQLITE_ROW)
		goto fail;
	mode = sqlite3_column_text(stmt, 0);
	if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
		dime_store_errf(err, errlen, "journal_mode is %s, want wal",
				mode != NULL ? (const char *)mode : "(null)");
		rc = SQLITE_ERROR;
		goto out;
	}
	rc = sqlite3_finalize(stmt);
	stmt = NULL;
	if (rc != SQLITE_OK)
		goto fail;
	/* FULL: a commit that returned is on disk even after a power loss (NORMAL may lose the
	 * last transactions of a WAL database), since the store holds private keys and queues.
	 * secure_delete: deleted rows (refused pending signets, and later keys and queue entries)
	 * are overwritten with zeros, not left in free pages. */
	if ((rc = store_exec(db, "PRAGMA synchronous = FULL")) != SQLITE_OK ||
	    (rc = store_exec(db, "PRAGMA secure_delete = ON")) != SQLITE_OK ||
	    (rc = store_exec(db, "PRAGMA foreign_keys = ON")) != SQLITE_OK)
		goto fail;
	rc = SQLITE_OK;
	goto out;
fail:
	if (rc == SQLITE_OK || rc == SQLITE_DONE)
		rc = SQLITE_ERROR;
	dime_store_errf(err, errlen, "%s", sqlite3_errmsg(db));
out:
	(void)sqlite3_finalize(stmt); /* errors were taken from step already */
	return rc;
}

int
dime_store_open(struct dime_store **out, const char *path, char *err, size_t errlen)
{
	return dime_store_open_flags(out, path, 0, err, errlen);
}

/* Process-wide SQLite settings, before its first use. Memory statistics off: with them on,
 * every SQLite allocation takes one global mutex, which dimed's many threads (each with its
 * own connection) then queue on. Fails harmlessly (SQLITE_MISUSE) if SQLite was already
 * initialised by someone else. */
static pthread_once_t store_once = PTHREAD_ONCE_INIT;

static void
store_global_config(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int
dime_store_open_flags(struct dime_store **out, const char *path, unsigned flags, char *err,
		      size_t errlen)
{
	struct dime_store *st = NULL;
	struct stat sb;
	mode_t old_mask = 0;
	int masked = 0, src, rc = DIME_E_IO;
	int open_flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;

	DIME_ASSERT(out != NULL);
	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	path = dime_store_resolve_path(path);
	if (path[0] == '\0') {
		dime_store_errf(err, errlen, "empty store path");
		goto out;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL || (st->path = strdup(path)) == NULL) {
		dime_store_errf(err, errlen, "out of memory");
		goto out;
	}
	if (flags & ~(DIME_STORE_OPEN_EXISTING | DIME_STORE_OPEN_NO_SECRETS)) {
		dime_store_errf(err, errlen, "unknown open flags 0x%x", flags);
		rc = DIME_E_INVALID;
		goto out;
	}
	if (flags & DIME_STORE_OPEN_EXISTING) {
		/* A command that only reads must not leave an empty store (and its directory)
		 * behind a mistyped path. SQLite without OPEN_CREATE refuses a missing file too;
		 * the stat gives the clear answer first. */
		if (stat(path, &sb) != 0 && errno == ENOENT) {
			dime_store_errf(err, errlen, "no store at %s", path);
			rc = DIME_E_NOTFOUND;
			goto out;
		}
	} else {
		if (store_mkdirs(path, err, errlen) != 0)
			goto out;
		open_flags |= SQLITE_OPEN_CREATE;
	}
	/* umask is per process: opening a store races with other threads creating files, so
	 * stores are opened before threads start (or by one thread at a time). SQLite gives the
	 * -wal and -shm files the database file's mode; the chmods below cover pre-existing
	 * files. Every file is created between here and the restore at out. */
	old_mask = umask(077);
	masked = 1;
	pthread_once(&store_once, store_global_config);
	src = sqlite3_open_v2(path, &st->db, open_flags, NULL);
	if (src != SQLITE_OK) {
		dime_store_errf(err, errlen, "%s: %s", path,
				st->db != NULL ? sqlite3_errmsg(st->db) : sqlite3_errstr(src));
		rc = store_err(src);
		goto out;
	}
	if (chmod(path, 0600) != 0) {
		dime_store_errf(err, errlen, "chmod %s: %s", path, strerror(errno));
		goto out;
	}
	if ((src = store_configure(st->db, err, errlen)) != SQLITE_OK ||
	    (src = store_migrate(st->db, err, errlen)) != SQLITE_OK) {
		rc = store_err(src);
		goto out;
	}
	/* Without secrets the key-encryption key is never read: a front end that uses the key
	 * process cannot unseal what it can read. */
	if (!(flags & DIME_STORE_OPEN_NO_SECRETS) &&
	    (rc = dime_seal_new(&st->seal, st->db, path, err, errlen)) != DIME_OK)
		goto out;
	rc = DIME_E_IO;
	if (store_chmod_sidecar(path, "-wal", err, errlen) != 0 ||
	    store_chmod_sidecar(path, "-shm", err, errlen) != 0)
		goto out;
	*out = st;
	st = NULL;
	rc = DIME_OK;
out:
	if (masked)
		(void)umask(old_mask);
	dime_store_close(st);
	return rc;
}

void
dime_store_close(struct dime_store *st)
{
	if (st == NULL)
		return;
	/* Every statement is finalized before its function returns, so close cannot be
	 * refused; close_v2 would defer rather than leak if one ever were not. */
	(void)sqlite3_close_v2(st->db);
	dime_seal_free(st->seal);
	free(st->path);
	free(st);
}

const char *
dime_store_resolve_path(const char *path)
{
	if (path == NULL) {
		path = getenv("DIME_STORE");
		if (path == NULL || path[0] == '\0')
			path = DIME_STORE_DEFAULT_PATH;
	}
	return path;
}

const char *
dime_store_path(const struct dime_store *st)
{
	DIME_ASSERT(st != NULL);
	return st->path;
}

/* Bind a byte range; a zero-length range must still bind a blob, not NULL. */
static int
store_bind_blob(sqlite3_stmt *stmt, int col, const uint8_t *p, size_t len)
{
	static const uint8_t empty[1];

	return sqlite3_bind_blob64(stmt, col, len > 0 ? p : empty, (sqlite3_uint64)len,
				   SQLITE_STATIC);
}

/* The body of put, inside BEGIN IMMEDIATE. Returns: a SQLite code; *version on success. */
static int
store_put_tx(sqlite3 *db, uint32_t *version, const char *ident, enum dime_store_kind kind,
	     const uint8_t *blob, size_t blob_len, int hosted, uint8_t perms, const char *fp,
	     const uint8_t sha[DIME_SHA512_BYTES], const struct dime_seal *seal)
{
	sqlite3_stmt *stmt = NULL;
	uint8_t *sealed = NULL;
	/* A key is stored sealed, DIME_SEAL_OVERHEAD bytes longer (put bounds blob_len). */
	size_t stored_len = seal != NULL ? blob_len + DIME_SEAL_OVERHEAD : blob_len;
	int64_t next = 0;
	int rc;

	*version = 0;
	/* hosted is sticky per identity: once any object of ident was stored as hosted (say its
	 * keys), every row of ident reads as hosted, whatever later imports say; storing with
	 * hosted set marks the earlier rows too, even when the bytes are a duplicate. So
	 * row.hosted always answers "does this OPA serve ident", and never flips back. */
	if (hosted) {
		if ((rc = sqlite3_prepare_v2(db,
					     "UPDATE objects SET hosted = 1 WHERE ident = ?1 AND "
					     "hosted = 0",
					     -1, &stmt, NULL)) != SQLITE_OK ||
		    (rc = sqlite3_bind_text(stmt, 1, ident, -1, SQLITE_STATIC)) != SQLITE_OK ||
		    (rc = sqlite3_step(stmt)) != SQLITE_DONE)
			goto out;
	} else {
		if ((rc =
			 sqlite3_prepare_v2(db,
					    "SELECT EXISTS (SELECT 1 FROM objects WHERE ident = ?1 "
					    "AND hosted = 1)",
					    -1, &stmt, NULL)) != SQLITE_OK ||
		    (rc = sqlite3_bind_text(stmt, 1, ident, -1, SQLITE_STATIC)) != SQLITE_OK ||
		    (rc = sqlite3_step(stmt)) != SQLITE_ROW)
			goto out;
		hosted = sqlite3_column_int(stmt, 0) != 0;
	}
	if ((rc = sqlite3_finalize(stmt)) != SQLITE_OK)
		goto out_finalized;

	/* The same bytes already stored for (ident, kind): report that version. */
	stmt = NULL;
	if ((rc = sqlite3_prepare_v2(
		 db,
		 "SELECT version FROM objects WHERE ident = ?1 AND kind = ?2 AND "
		 "sha512 = ?3 AND length(blob) = ?4 ORDER BY version LIMIT 1",
		 -1, &stmt, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 1, ident, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(stmt, 2, (int)kind)) != SQLITE_OK ||
	    (rc = sqlite3_bind_blob(stmt, 3, sha, DIME_SHA512_BYTES, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 4, (sqlite3_int64)stored_len)) != SQLITE_OK)
		goto out;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*version = (uint32_t)sqlite3_column_int64(stmt, 0);
		rc = SQLITE_OK;
		goto out;
	}
	if (rc != SQLITE_DONE)
		goto out;
	if ((rc = sqlite3_finalize(stmt)) != SQLITE_OK)
		goto out_finalized;

	stmt = NULL;
	if ((rc = sqlite3_prepare_v2(db,
				     "SELECT coalesce(max(version), 0) + 1 FROM objects WHERE "
				     "ident = ?1 AND kind = ?2",
				     -1, &stmt, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 1, ident, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(stmt, 2, (int)kind)) != SQLITE_OK ||
	    (rc = sqlite3_step(stmt)) != SQLITE_ROW)
		goto out;
	next = sqlite3_column_int64(stmt, 0);
	if ((rc = sqlite3_finalize(stmt)) != SQLITE_OK)
		goto out_finalized;
	if (next < 1 || next > (int64_t)UINT32_MAX) {
		rc = SQLITE_RANGE; /* 2^32 - 1 versions: treated as an I/O failure */
		goto out_finalized;
	}

	/* The version is known only now, and the seal binds it (with ident and kind). */
	if (seal != NULL) {
		if ((sealed = malloc(stored_len)) == NULL) {
			rc = SQLITE_NOMEM;
			goto out_finalized;
		}
		if (dime_seal_wrap(seal, sealed, blob, blob_len, ident, kind, (uint32_t)next) !=
		    DIME_OK) {
			rc = SQLITE_ERROR;
			goto out_finalized;
		}
		blob = sealed;
		blob_len = stored_len;
	}
	stmt = NULL;
	if ((rc = sqlite3_prepare_v2(db,
				     "INSERT INTO objects (ident, kind, version, hosted, perms, "
				     "fingerprint, blob, sha512, created) VALUES (?1, ?2, ?3, ?4, "
				     "?5, ?6, ?7, ?8, ?9)",
				     -1, &stmt, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 1, ident, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(stmt, 2, (int)kind)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 3, next)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(stmt, 4, hosted)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(stmt, 5, perms)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 6, fp, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = store_bind_blob(stmt, 7, blob, blob_len)) != SQLITE_OK ||
	    (rc = sqlite3_bind_blob(stmt, 8, sha, DIME_SHA512_BYTES, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 9, (sqlite3_int64)time(NULL))) != SQLITE_OK ||
	    (rc = sqlite3_step(stmt)) != SQLITE_DONE)
		goto out;
	*version = (uint32_t)next;
	rc = SQLITE_OK;
out:
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		rc = SQLITE_ERROR; /* a statement answered other than expected */
	/* Errors are already in rc from step; finalize repeats them. */
	if (sqlite3_finalize(stmt) != SQLITE_OK && rc == SQLITE_OK)
		rc = SQLITE_ERROR;
out_finalized:
	free(sealed); /* ciphertext */
	if (rc != SQLITE_OK)
		*version = 0;
	return rc;
}

int
dime_store_put(struct dime_store *st, uint32_t *version, const char *ident,
	       enum dime_store_kind kind, const uint8_t *blob, size_t blob_len, int hosted,
	       uint8_t perms, const char *fingerprint)
{
	char id[DIME_STORE_IDENT_CAP];
	uint8_t sha[DIME_SHA512_BYTES];
	uint32_t v = 0;
	int src, rc;

	DIME_ASSERT(st != NULL);
	if (version != NULL)
		*version = 0;
	if (fingerprint == NULL)
		fingerprint = "";
	if ((rc = store_ident(id, ident)) != DIME_OK)
		goto out;
	rc = DIME_E_INVALID;
	if (!store_kind_valid(kind) || (blob == NULL && blob_len > 0) ||
	    strlen(fingerprint) >= DIME_STORE_FP_CAP)
		goto out;
	if (blob == NULL)
		blob = (const uint8_t *)"";
	if (dime_seal_kind(kind)) {
		if (blob_len > SIZE_MAX - DIME_SEAL_OVERHEAD || st->seal == NULL)
			goto out;
		/* keyed: a plain SHA-512 of an Ed25519 seed is its secret scalar */
		dime_seal_digest(st->seal, sha, blob, blob_len);
	} else {
		dime_sha512(sha, blob, blob_len);
	}
	/* Inside the caller's transaction a savepoint keeps a failed put from undoing the rest. */
	if ((src = store_exec(st->db, st->in_tx ? "SAVEPOINT put" : "BEGIN IMMEDIATE")) !=
	    SQLITE_OK) {
		rc = store_err(src);
		goto out;
	}
	if ((src = store_put_tx(st->db, &v, id, kind, blob, blob_len, hosted != 0, perms,
				fingerprint, sha, dime_seal_kind(kind) ? st->seal : NULL)) !=
		SQLITE_OK ||
	    (src = store_exec(st->db, st->in_tx ? "RELEASE put" : "COMMIT")) != SQLITE_OK) {
		if (st->in_tx) {
			(void)store_exec(st->db, "ROLLBACK TO put");
			(void)store_exec(st->db, "RELEASE put");
		} else {
			store_rollback(st->db);
		}
		v = 0;
		rc = store_err(src);
		goto out;
	}
	if (version != NULL)
		*version = v;
	rc = DIME_OK;
out:
	return rc;
}

/* Fill row from columns rowid, ident, kind, version, hosted, perms, fingerprint, created.
 * Returns: DIME_OK, or DIME_E_IO for a value the schema should have kept out. */
static int
store_row_read(struct dime_store_row *row, sqlite3_stmt *stmt)
{
	const unsigned char *ident = sqlite3_column_text(stmt, 1);
	size_t ident_len = (size_t)sqlite3_column_bytes(stmt, 1);
	const unsigned char *fp = sqlite3_column_text(stmt, 6);
	size_t fp_len = (size_t)sqlite3_column_bytes(stmt, 6);
	int64_t version = sqlite3_column_int64(stmt, 3);

	memset(row, 0, sizeof(*row));
	if (ident == NULL || ident_len >= sizeof(row->ident) || fp == NULL ||
	    fp_len >= sizeof(row->fingerprint) || version < 1 || version > (int64_t)UINT32_MAX)
		return DIME_E_IO;
	row->rowid = sqlite3_column_int64(stmt, 0);
	memcpy(row->ident, ident, ident_len);
	row->kind = (enum dime_store_kind)sqlite3_column_int(stmt, 2);
	row->version = (uint32_t)version;
	row->hosted = sqlite3_column_int(stmt, 4) != 0;
	row->perms = (uint8_t)sqlite3_column_int(stmt, 5);
	memcpy(row->fingerprint, fp, fp_len);
	row->created = sqlite3_column_int64(stmt, 7);
	return DIME_OK;
}

/* Fill row->state from column col. Returns: DIME_OK, or DIME_E_IO for an unknown state. */
static int
store_row_state(struct dime_store_row *row, sqlite3_stmt *stmt, int col)
{
	int v = sqlite3_column_int(stmt, col);

	if (v != DIME_STORE_VERIFIED && v != DIME_STORE_PENDING)
		return DIME_E_IO;
	row->state = (enum dime_store_state)v;
	return DIME_OK;
}

/* Copy the blob in column col into fresh memory (never NULL, even when empty). */
static int
store_blob_read(uint8_t **blob, size_t *blob_len, sqlite3_stmt *stmt, int col)
{
	const void *p = sqlite3_column_blob(stmt, col);
	int n = sqlite3_column_bytes(stmt, col);
	uint8_t *copy;

	if (n < 0 || (p == NULL && n > 0))
		return sqlite3_errcode(sqlite3_db_handle(stmt)) == SQLITE_NOMEM ? DIME_E_NOMEM
										: DIME_E_IO;
	if ((copy = malloc(n > 0 ? (size_t)n : 1)) == NULL)
		return DIME_E_NOMEM;
	if (n > 0)
		memcpy(copy, p, (size_t)n);
	*blob = copy;
	*blob_len = (size_t)n;
	return DIME_OK;
}

static void
store_blob_drop(uint8_t **blob, size_t *blob_len)
{
	if (*blob != NULL) {
		dime_wipe(*blob, *blob_len); /* may hold a private key */
		free(*blob);
	}
	*blob = NULL;
	*blob_len = 0;
}

int
dime_store_get(struct dime_store *st, uint8_t **blob, size_t *blob_len, struct dime_store_row *row,
	       const char *ident, enum dime_store_kind kind, uint32_t version)
{
	sqlite3_stmt *stmt = NULL;
	struct dime_store_row r;
	char id[DIME_STORE_IDENT_CAP];
	int src, rc;

	DIME_ASSERT(st != NULL && blob != NULL && blob_len != NULL);
	*blob = NULL;
	*blob_len = 0;
	memset(&r, 0, sizeof(r));
	if (row != NULL)
		memset(row, 0, sizeof(*row));
	if ((rc = store_ident(id, ident)) != DIME_OK)
		goto out;
	/* Version 0 is the latest: the unique index walks (ident, kind) backwards. */
	if ((src = sqlite3_prepare_v2(
		 st->db,
		 "SELECT rowid, ident, kind, version, hosted, perms, "
		 "fingerprint, created, blob, state FROM objects WHERE ident = ?1 "
		 "AND kind = ?2 AND (?3 = 0 OR version = ?3) AND state = 0 ORDER "
		 "BY version DESC LIMIT 1",
		 -1, &stmt, NULL)) != SQLITE_OK ||
	    (src = sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_int(stmt, 2, (int)kind)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(stmt, 3, version)) != SQLITE_OK) {
		rc = store_err(src);
		goto out;
	}
	src = sqlite3_step(stmt);
	if (src == SQLITE_DONE) {
		rc = DIME_E_NOTFOUND;
		goto out;
	}
	if (src != SQLITE_ROW) {
		rc = store_err(src);
		goto out;
	}
	if ((rc = store_row_read(&r, stmt)) != DIME_OK ||
	    (rc = store_row_state(&r, stmt, 9)) != DIME_OK ||
	    (rc = store_blob_read(blob, blob_len, stmt, 8)) != DIME_OK)
		goto out;
	if (dime_seal_kind(r.kind) &&
	    (rc = st->seal == NULL ? DIME_E_INVALID
				   : dime_seal_unwrap(st->seal, blob, blob_len, r.ident, r.kind,
						      r.version)) != DIME_OK)
		goto out;
	if (row != NULL)
		*row = r;
	rc = DIME_OK;
out:
	if (sqlite3_finalize(stmt) != SQLITE_OK && rc == DIME_OK)
		rc = DIME_E_IO;
	if (rc != DIME_OK) {
		store_blob_drop(blob, blob_len);
		if (row != NULL)
			memset(row, 0, sizeof(*row));
	}
	return rc;
}

/* The walk behind dime_store_list (verified rows) and dime_store_list_all (every row). */
static int
store_walk(struct dime_store *st, const char *ident, enum dime_store_kind kind, int all,
	   dime_store_row_fn fn, void *arg)
{
	static const char *const sql_one =
	    "SELECT rowid, ident, kind, version, hosted, perms, fingerprint, created, state FROM "
	    "objects WHERE ident = ?1 AND (?2 = 0 OR kind = ?2) AND (?3 OR state = 0) ORDER BY "
	    "ident, kind, version";
	static const char *const sql_all =
	    "SELECT rowid, ident, kind, version, hosted, perms, fingerprint, created, state FROM "
	    "objects WHERE (?2 = 0 OR kind = ?2) AND (?3 OR state = 0) ORDER BY ident, kind, "
	    "version";
	sqlite3_stmt *stmt = NULL;
	struct dime_store_row r;
	char id[DIME_STORE_IDENT_CAP];
	int src, rc = DIME_E_IO;

	DIME_ASSERT(st != NULL && fn != NULL);
	if (ident != NULL && (rc = store_ident(id, ident)) != DIME_OK)
		goto out;
	if ((src = sqlite3_prepare_v2(st->db, ident != NULL ? sql_one : sql_all, -1, &stmt,
				      NULL)) != SQLITE_OK ||
	    (ident != NULL &&
	     (src = sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC)) != SQLITE_OK) ||
	    (src = sqlite3_bind_int(stmt, 2, (int)kind)) != SQLITE_OK ||
	    (src = sqlite3_bind_int(stmt, 3, all != 0)) != SQLITE_OK) {
		rc = store_err(src);
		goto out;
	}
	/* fn runs while the statement is open: it may read the store (get, get_row) through the
	 * same handle, but must not write to it (a put could show up later in this walk). */
	while ((src = sqlite3_step(stmt)) == SQLITE_ROW) {
		if ((rc = store_row_read(&r, stmt)) != DIME_OK ||
		    (rc = store_row_state(&r, stmt, 8)) != DIME_OK)
			goto out;
		if (fn(&r, arg) != 0)
			break;
	}
	if (src != SQLITE_ROW && src != SQLITE_DONE) {
		rc = store_err(src);
		goto out;
	}
	rc = DIME_OK;
out:
	if (sqlite3_finalize(stmt) != SQLITE_OK && rc == DIME_OK)
		rc = DIME_E_IO;
	return rc;
}

int
dime_store_list(struct dime_store *st, const char *ident, enum dime_store_kind kind,
		dime_store_row_fn fn, void *arg)
{
	return store_walk(st, ident, kind, 0, fn, arg);
}

int
dime_store_list_all(struct dime_store *st, const char *ident, enum dime_store_kind kind,
		    dime_store_row_fn fn, void *arg)
{
	return store_walk(st, ident, kind, 1, fn, arg);
}

int
dime_store_get_row(struct dime_store *st, uint8_t **blob, size_t *blob_len, int64_t rowid)
{
	sqlite3_stmt *stmt = NULL;
	struct dime_store_row r;
	int src, rc = DIME_E_IO;

	DIME_ASSERT(st != NULL && blob != NULL && blob_len != NULL);
	*blob = NULL;
	*blob_len = 0;
	if ((src = sqlite3_prepare_v2(st->db,
				      "SELECT rowid, ident, kind, version, hosted, perms, "
				      "fingerprint, created, blob FROM objects WHERE rowid = ?1",
				      -1, &stmt, NULL)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(stmt, 1, rowid)) != SQLITE_OK) {
		rc = store_err(src);
		goto out;
	}
	src = sqlite3_step(stmt);
	if (src == SQLITE_DONE) {
		rc = DIME_E_NOTFOUND;
		goto out;
	}
	if (src != SQLITE_ROW) {
		rc = store_err(src);
		goto out;
	}
	if ((rc = store_row_read(&r, stmt)) != DIME_OK ||
	    (rc = store_blob_read(blob, blob_len, stmt, 8)) != DIME_OK)
		goto out;
	if (dime_seal_kind(r.kind))
		rc = st->seal == NULL
			 ? DIME_E_INVALID
			 : dime_seal_unwrap(st->seal, blob, blob_len, r.ident, r.kind, r.version);
out:
	if (sqlite3_finalize(stmt) != SQLITE_OK && rc == DIME_OK)
		rc = DIME_E_IO;
	if (rc != DIME_OK)
		store_blob_drop(blob, blob_len);
	return rc;
}

int
dime_store_begin(struct dime_store *st)
{
	int src;

	DIME_ASSERT(st != NULL && !st->in_tx);
	/* IMMEDIATE takes the write lock now (waiting up to the busy timeout), so what the
	 * caller reads next cannot change before it writes: no upgrade deadlock, no stale
	 * existence check. */
	if ((src = store_exec(st->db, "BEGIN IMMEDIATE")) != SQLITE_OK) {
		store_rollback(st->db);
		return store_err(src);
	}
	st->in_tx = 1;
	return DIME_OK;
}

int
dime_store_commit(struct dime_store *st)
{
	int src;

	DIME_ASSERT(st != NULL && st->in_tx);
	st->in_tx = 0;
	if ((src = store_exec(st->db, "COMMIT")) != SQLITE_OK) {
		store_rollback(st->db);
		return store_err(src);
	}
	return DIME_OK;
}

void
dime_store_rollback(struct dime_store *st)
{
	if (st == NULL || !st->in_tx)
		return;
	st->in_tx = 0;
	store_rollback(st->db);
}

/* Run one statement with (int64, int) parameters that changes rows. Returns: DIME_OK,
 * DIME_E_NOTFOUND (no row changed), DIME_E_IO or DIME_E_NOMEM. */
static int
store_change(struct dime_store *st, const char *sql, int64_t a, int b)
{
	sqlite3_stmt *stmt = NULL;
	int src, rc;

	if ((src = sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(stmt, 1, a)) != SQLITE_OK ||
	    (sqlite3_bind_parameter_count(stmt) >= 2 &&
	     (src = sqlite3_bind_int(stmt, 2, b)) != SQLITE_OK) ||
	    (src = sqlite3_step(stmt)) != SQLITE_DONE) {
		rc = store_err(src);
		goto out;
	}
	rc = sqlite3_changes(st->db) > 0 ? DIME_OK : DIME_E_NOTFOUND;
out:
	(void)sqlite3_finalize(stmt); /* errors were taken from step already */
	return rc;
}

int
dime_store_set_state(struct dime_store *st, int64_t rowid, enum dime_store_state state)
{
	DIME_ASSERT(st != NULL);
	if (state != DIME_STORE_VERIFIED && state != DIME_STORE_PENDING)
		return DIME_E_INVALID;
	return store_change(st, "UPDATE objects SET state = ?2 WHERE rowid = ?1", rowid,
			    (int)state);
}

int
dime_store_delete(struct dime_store *st, int64_t rowid)
{
	DIME_ASSERT(st != NULL);
	return store_change(st, "DELETE FROM objects WHERE rowid = ?1", rowid, 0);
}

int
dime_store_find(struct dime_store *st, struct dime_store_row *row, const char *ident,
		enum dime_store_kind kind, const uint8_t *blob, size_t blob_len)
{
	sqlite3_stmt *stmt = NULL;
	uint8_t sha[DIME_SHA512_BYTES];
	char id[DIME_STORE_IDENT_CAP];
	int src, rc;

	DIME_ASSERT(st != NULL && row != NULL && (blob != NULL || blob_len == 0));
	memset(row, 0, sizeof(*row));
	if ((rc = store_ident(id, ident)) != DIME_OK)
		return rc;
	if (blob == NULL)
		blob = (const uint8_t *)"";
	if (dime_seal_kind(kind) && st->seal == NULL)
		return DIME_E_INVALID;
	if (dime_seal_kind(kind))
		dime_seal_digest(st->seal, sha, blob, blob_len);
	else
		dime_sha512(sha, blob, blob_len);
	/* The same probe as put's duplicate check, so find answers what put would do. */
	if ((src = sqlite3_prepare_v2(
		 st->db,
		 "SELECT rowid, ident, kind, version, hosted, perms, fingerprint, created, state "
		 "FROM objects WHERE ident = ?1 AND kind = ?2 AND sha512 = ?3 AND length(blob) = "
		 "?4 ORDER BY version LIMIT 1",
		 -1, &stmt, NULL)) != SQLITE_OK ||
	    (src = sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_int(stmt, 2, (int)kind)) != SQLITE_OK ||
	    (src = sqlite3_bind_blob(stmt, 3, sha, DIME_SHA512_BYTES, SQLITE_STATIC)) !=
		SQLITE_OK ||
	    (src = sqlite3_bind_int64(stmt, 4, (sqlite3_int64)blob_len)) != SQLITE_OK) {
		rc = store_err(src);
		goto out;
	}
	src = sqlite3_step(stmt);
	if (src == SQLITE_DONE)
		rc = DIME_E_NOTFOUND;
	else if (src != SQLITE_ROW)
		rc = store_err(src);
	else if ((rc = store_row_read(row, stmt)) == DIME_OK)
		rc = store_row_state(row, stmt, 8);
out:
	(void)sqlite3_finalize(stmt);
	if (rc != DIME_OK)
		memset(row, 0, sizeof(*row));
	return rc;
}

int
dime_store_settings(struct dime_store *st, struct dime_store_settings *out)
{
	int64_t sync = 0, sdel = 0, ver = 0;
	int src;

	DIME_ASSERT(st != NULL && out != NULL);
	memset(out, 0, sizeof(*out));
	if ((src = store_query_int(st->db, "PRAGMA synchronous", &sync)) != SQLITE_OK ||
	    (src = store_query_int(st->db, "PRAGMA secure_delete", &sdel)) != SQLITE_OK ||
	    (src = store_query_int(st->db, "PRAGMA user_version", &ver)) != SQLITE_OK)
		return store_err(src);
	out->synchronous = (int)sync;
	out->secure_delete = (int)sdel;
	out->schema_version = (int)ver;
	out->busy_ms = DIME_STORE_BUSY_MS;
	return DIME_OK;
}

int
dime_store_rekey_secrets(struct dime_store *st, size_t *n_keys, enum dime_store_secrets_to to,
			 const char *file, char *err, size_t errlen)
{
	size_t n = 0;
	int rc;

	DIME_ASSERT(st != NULL);
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (st->seal == NULL) {
		dime_store_errf(err, errlen, "the store was opened without its secrets");
		return DIME_E_INVALID;
	}
	rc = dime_seal_rekey(&st->seal, &n, st->db, st->path, to, file, err, errlen);
	if (n_keys != NULL)
		*n_keys = rc == DIME_OK ? n : 0;
	return rc;
}

/* Run one statement binding (hash, a, b) to ?1..?3 (unused ones ignored). Returns: a SQLite
 * code; *changes the rows changed. */
static int
store_seen_exec(struct dime_store *st, const char *sql, const uint8_t hash[DIME_STORE_SEEN_BYTES],
		int64_t a, int b, int *changes)
{
	sqlite3_stmt *stmt = NULL;
	int src, np;

	*changes = 0;
	if ((src = sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL)) != SQLITE_OK)
		goto out;
	np = sqlite3_bind_parameter_count(stmt);
	if ((src = sqlite3_bind_blob(stmt, 1, hash, DIME_STORE_SEEN_BYTES, SQLITE_STATIC)) !=
		SQLITE_OK ||
	    (np >= 2 && (src = sqlite3_bind_int64(stmt, 2, a)) != SQLITE_OK) ||
	    (np >= 3 && (src = sqlite3_bind_int(stmt, 3, b)) != SQLITE_OK))
		goto out;
	if ((src = sqlite3_step(stmt)) == SQLITE_DONE) {
		src = SQLITE_OK;
		*changes = sqlite3_changes(st->db);
	}
out:
	(void)sqlite3_finalize(stmt); /* errors were taken from step already */
	return src;
}

int
dime_store_seen_put(struct dime_store *st, const uint8_t hash[DIME_STORE_SEEN_BYTES], int *already)
{
	int src, changes;

	DIME_ASSERT(st != NULL && hash != NULL && already != NULL);
	*already = 0;
	/* One statement, so atomic against every other connection: of two racing accepts of
	 * the same message exactly one inserts (changes == 1); the other learns it was seen. */
	src = store_seen_exec(st,
			      "INSERT INTO seen (hash, received, state) VALUES (?1, ?2, 0) "
			      "ON CONFLICT (hash) DO NOTHING",
			      hash, (int64_t)time(NULL), 0, &changes);
	if (src != SQLITE_OK)
		return store_err(src);
	*already = changes == 0;
	return DIME_OK;
}

int
dime_store_seen_get(struct dime_store *st, const uint8_t hash[DIME_STORE_SEEN_BYTES],
		    int64_t *received, enum dime_store_seen_state *state)
{
	sqlite3_stmt *stmt = NULL;
	int src, rc;

	DIME_ASSERT(st != NULL && hash != NULL);
	if (received != NULL)
		*received = 0;
	if (state != NULL)
		*state = DIME_STORE_SEEN_ACCEPTED;
	if ((src = sqlite3_prepare_v2(st->db, "SELECT received, state FROM seen WHERE hash = ?1",
				      -1, &stmt, NULL)) != SQLITE_OK ||
	    (src = sqlite3_bind_blob(stmt, 1, hash, DIME_STORE_SEEN_BYTES, SQLITE_STATIC)) !=
		SQLITE_OK) {
		rc = store_err(src);
		goto out;
	}
	src = sqlite3_step(stmt);
	if (src == SQLITE_DONE) {
		rc = DIME_E_NOTFOUND;
		goto out;
	}
	if (src != SQLITE_ROW) {
		rc = store_err(src);
		goto out;
	}
	if (received != NULL)
		*received = sqlite3_column_int64(stmt, 0);
	if (state != NULL)
		*state = sqlite3_column_int(stmt, 1) == 1 ? DIME_STORE_SEEN_DELIVERED
							  : DIME_STORE_SEEN_ACCEPTED;
	rc = DIME_OK;
out:
	(void)sqlite3_finalize(stmt);
	return rc;
}

int
dime_store_seen_set_state(struct dime_store *st, const uint8_t hash[DIME_STORE_SEEN_BYTES],
			  enum dime_store_seen_state state)
{
	int src, changes;

	DIME_ASSERT(st != NULL && hash != NULL);
	if (state != DIME_STORE_SEEN_ACCEPTED && state != DIME_STORE_SEEN_DELIVERED)
		return DIME_E_INVALID;
	src = store_seen_exec(st, "UPDATE seen SET state = ?3 WHERE hash = ?1", hash, 0, (int)state,
			      &changes);
	if (src != SQLITE_OK)
		return store_err(src);
	return changes > 0 ? DIME_OK : DIME_E_NOTFOUND;
}

int
dime_store_seen_del(struct dime_store *st, const uint8_t hash[DIME_STORE_SEEN_BYTES])
{
	int src, changes;

	DIME_ASSERT(st != NULL && hash != NULL);
	src = store_seen_exec(st, "DELETE FROM seen WHERE hash = ?1", hash, 0, 0, &changes);
	if (src != SQLITE_OK)
		return store_err(src);
	return changes > 0 ? DIME_OK : DIME_E_NOTFOUND;
}

/* Bind (domain, fingerprint, a, b) to ?1..?4 (unused ones ignored) and step once. Returns: a
 * SQLite code (SQLITE_ROW with *col0 the first column, else SQLITE_OK); *changes the rows
 * changed. */
static int
store_origin_exec(struct dime_store *st, const char *sql, const char *domain, const char *fp,
		  int64_t a, int64_t b, int64_t *col0, int *changes)
{
	sqlite3_stmt *stmt = NULL;
	int src, np;

	*changes = 0;
	if ((src = sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL)) != SQLITE_OK)
		goto out;
	np = sqlite3_bind_parameter_count(stmt);
	if ((np >= 1 &&
	     (src = sqlite3_bind_text(stmt, 1, domain, -1, SQLITE_STATIC)) != SQLITE_OK) ||
	    (np >= 2 && (src = sqlite3_bind_text(stmt, 2, fp, -1, SQLITE_STATIC)) != SQLITE_OK) ||
	    (np >= 3 && (src = sqlite3_bind_int64(stmt, 3, a)) != SQLITE_OK) ||
	    (np >= 4 && (src = sqlite3_bind_int64(stmt, 4, b)) != SQLITE_OK))
		goto out;
	src = sqlite3_step(stmt);
	if (src == SQLITE_ROW && col0 != NULL)
		*col0 = sqlite3_column_int64(stmt, 0);
	if (src == SQLITE_DONE) {
		src = SQLITE_OK;
		*changes = sqlite3_changes(st->db);
	}
out:
	(void)sqlite3_finalize(stmt);
	return src;
}

static int
store_origin_args_ok(const char *domain, const char *fp)
{
	return domain != NULL && fp != NULL && domain[0] != 0 && fp[0] != 0 &&
	       strlen(domain) < 256 && strlen(fp) < 88;
}

int
dime_store_origin_fail(struct dime_store *st, int64_t *first, const char *domain, const char *fp,
		       int64_t now)
{
	int src, changes, own_tx = 0, rc;
	int64_t n = 0;

	DIME_ASSERT(st != NULL && first != NULL);
	*first = 0;
	if (!store_origin_args_ok(domain, fp))
		return DIME_E_INVALID;
	if (!st->in_tx) {
		if ((rc = dime_store_begin(st)) != DIME_OK)
			return rc;
		own_tx = 1;
	}
	/* Forget what has not been referenced for DIME_STORE_ORIGIN_FORGET_S. */
	src = store_origin_exec(st, "DELETE FROM origin_fail WHERE last < ?3", NULL, NULL,
				now - DIME_STORE_ORIGIN_FORGET_S, 0, NULL, &changes);
	if (src != SQLITE_OK)
		goto fail;
	src = store_origin_exec(st,
				"UPDATE origin_fail SET last = max(last, ?3) "
				"WHERE domain = ?1 AND fingerprint = ?2",
				domain, fp, now, 0, NULL, &changes);
	if (src != SQLITE_OK)
		goto fail;
	if (changes == 0) {
		/* A new entry; the table is bounded, so a peer naming random fingerprints cannot
		 * grow it without limit (past the bound the failure is not recorded: 470). */
		src = store_origin_exec(st, "SELECT count(*) FROM origin_fail", NULL, NULL, 0, 0,
					&n, &changes);
		if (src != SQLITE_ROW)
			goto fail;
		if (n >= DIME_STORE_ORIGIN_MAX) {
			rc = DIME_E_LIMIT;
			goto out;
		}
		src =
		    store_origin_exec(st,
				      "INSERT INTO origin_fail (domain, fingerprint, first, last) "
				      "VALUES (?1, ?2, ?3, ?3)",
				      domain, fp, now, 0, NULL, &changes);
		if (src != SQLITE_OK)
			goto fail;
		*first = now;
		rc = DIME_OK;
		goto out;
	}
	src = store_origin_exec(
	    st, "SELECT first FROM origin_fail WHERE domain = ?1 AND fingerprint = ?2", domain, fp,
	    0, 0, first, &changes);
	if (src != SQLITE_ROW)
		goto fail;
	rc = DIME_OK;
	goto out;
fail:
	rc = store_err(src);
out:
	if (own_tx) {
		if (rc == DIME_OK || rc == DIME_E_LIMIT) {
			int crc = dime_store_commit(st);

			if (crc != DIME_OK)
				rc = crc;
		} else {
			dime_store_rollback(st);
		}
	}
	if (rc != DIME_OK)
		*first = 0;
	return rc;
}

int
dime_store_origin_clear(struct dime_store *st, const char *domain, const char *fp)
{
	int src, changes;
	int64_t one = 0;

	DIME_ASSERT(st != NULL);
	if (!store_origin_args_ok(domain, fp))
		return DIME_E_INVALID;
	/* A read first: the usual case (nothing recorded) takes no write lock. */
	src = store_origin_exec(st,
				"SELECT 1 FROM origin_fail WHERE domain = ?1 AND fingerprint = ?2",
				domain, fp, 0, 0, &one, &changes);
	if (src == SQLITE_OK)
		return DIME_E_NOTFOUND;
	if (src != SQLITE_ROW)
		return store_err(src);
	src =
	    store_origin_exec(st, "DELETE FROM origin_fail WHERE domain = ?1 AND fingerprint = ?2",
			      domain, fp, 0, 0, NULL, &changes);
	if (src != SQLITE_OK)
		return store_err(src);
	return changes > 0 ? DIME_OK : DIME_E_NOTFOUND;
}

/* ---- what the signet resolver fetched ---- */

static int
store_fetch_kind_ok(enum dime_store_kind kind)
{
	return kind == DIME_STORE_ORG_SIGNET || kind == DIME_STORE_USER_SIGNET;
}

int
dime_store_fetch_put(struct dime_store *st, const char *ident, enum dime_store_kind kind,
		     int64_t at, int absent)
{
	char id[DIME_STORE_IDENT_CAP];
	sqlite3_stmt *stmt = NULL;
	int src, rc;

	DIME_ASSERT(st != NULL);
	if (store_ident(id, ident) != DIME_OK || !store_fetch_kind_ok(kind))
		return DIME_E_INVALID;
	if ((src = sqlite3_prepare_v2(st->db,
				      "INSERT OR REPLACE INTO fetched (ident, kind, at, absent) "
				      "VALUES (?1, ?2, ?3, ?4)",
				      -1, &stmt, NULL)) != SQLITE_OK ||
	    (src = sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_int(stmt, 2, (int)kind)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(stmt, 3, at)) != SQLITE_OK ||
	    (src = sqlite3_bind_int(stmt, 4, absent ? 1 : 0)) != SQLITE_OK ||
	    (src = sqlite3_step(stmt)) != SQLITE_DONE) {
		rc = store_err(src);
		goto out;
	}
	rc = DIME_OK;
out:
	(void)sqlite3_finalize(stmt);
	return rc;
}

int
dime_store_fetch_get(struct dime_store *st, int64_t *at, int *absent, const char *ident,
		     enum dime_store_kind kind)
{
	char id[DIME_STORE_IDENT_CAP];
	sqlite3_stmt *stmt = NULL;
	int src, rc;

	DIME_ASSERT(st != NULL && at != NULL && absent != NULL);
	*at = 0;
	*absent = 0;
	if (store_ident(id, ident) != DIME_OK || !store_fetch_kind_ok(kind))
		return DIME_E_INVALID;
	if ((src = sqlite3_prepare_v2(
		 st->db, "SELECT at, absent FROM fetched WHERE ident = ?1 AND kind = ?2", -1, &stmt,
		 NULL)) != SQLITE_OK ||
	    (src = sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_int(stmt, 2, (int)kind)) != SQLITE_OK) {
		rc = store_err(src);
		goto out;
	}
	src = sqlite3_step(stmt);
	if (src == SQLITE_DONE) {
		rc = DIME_E_NOTFOUND;
	} else if (src == SQLITE_ROW) {
		*at = sqlite3_column_int64(stmt, 0);
		*absent = sqlite3_column_int(stmt, 1) != 0;
		rc = DIME_OK;
	} else {
		rc = store_err(src);
	}
out:
	(void)sqlite3_finalize(stmt);
	return rc;
}

int
dime_store_fetch_del(struct dime_store *st, const char *ident, enum dime_store_kind kind)
{
	char id[DIME_STORE_IDENT_CAP];
	sqlite3_stmt *stmt = NULL;
	int src, rc;

	DIME_ASSERT(st != NULL);
	if (store_ident(id, ident) != DIME_OK || !store_fetch_kind_ok(kind))
		return DIME_E_INVALID;
	if ((src = sqlite3_prepare_v2(st->db, "DELETE FROM fetched WHERE ident = ?1 AND kind = ?2",
				      -1, &stmt, NULL)) != SQLITE_OK ||
	    (src = sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_int(stmt, 2, (int)kind)) != SQLITE_OK ||
	    (src = sqlite3_step(stmt)) != SQLITE_DONE) {
		rc = store_err(src);
		goto out;
	}
	rc = sqlite3_changes(st->db) > 0 ? DIME_OK : DIME_E_NOTFOUND;
out:
	(void)sqlite3_finalize(stmt);
	return rc;
}

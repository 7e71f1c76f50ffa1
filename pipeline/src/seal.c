/* Private keys at rest: the store's key-encryption key (KEK) comes from a 32-byte key file or
 * from a passphrase through Argon2id, is checked against a sealed verifier in the secrets meta
 * table, and seals each key row with XChaCha20-Poly1305 whose associated data is the row's
 * (ident, kind, version). docs/identity.md, "Keys at rest", is the operator's view. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "seal.h"

#define SEAL_FORMAT	    1 /* first byte of a sealed blob, and secrets.format */
#define SEAL_KEY_BYTES	    32
#define SEAL_SALT_BYTES	    crypto_pwhash_argon2id_SALTBYTES
#define SEAL_PASS_CAP	    1024 /* passphrase bytes, NUL included */
#define SEAL_AD_PREFIX	    "dime-opa sealed key v1"
#define SEAL_VERIFIER_AD    "dime-opa secrets verifier v1"
#define SEAL_VERIFIER_PT    "dime-opa: this store's key-encryption key"
#define SEAL_VERIFIER_BYTES (sizeof(SEAL_VERIFIER_PT) - 1 + DIME_SEAL_OVERHEAD)
#define SEAL_KDF_CONTEXT    "dimeseal"

enum seal_mode { SEAL_MODE_KEY_FILE = 1, SEAL_MODE_PASSPHRASE = 2 };

struct dime_seal {
	uint8_t aead[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	uint8_t mac[crypto_generichash_KEYBYTES];
	int beside; /* unlocked with "<store>.key" */
};

/* The secrets meta row: how the KEK is obtained, and a value sealed under it. */
struct seal_meta {
	enum seal_mode mode;
	uint8_t salt[SEAL_SALT_BYTES];
	unsigned long long opslimit;
	size_t memlimit;
	uint8_t verifier[SEAL_VERIFIER_BYTES];
};

/* One row, created by the migration and written once the KEK is chosen; the CHECKs keep a
 * second row (and unknown modes) out. */
const char *const dime_seal_migration[] = {
    "CREATE TABLE secrets ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " format INTEGER NOT NULL,"
    " mode TEXT NOT NULL CHECK (mode IN ('key-file', 'passphrase')),"
    " salt BLOB,"
    " opslimit INTEGER,"
    " memlimit INTEGER,"
    " verifier BLOB NOT NULL)",
    "PRAGMA user_version = 3",
    NULL,
};

/* Set before threads start (dime_store_set_passphrase_fn), read-only afterwards. */
static dime_store_passphrase_fn seal_pass_fn;
static void *seal_pass_arg;

void
dime_store_set_passphrase_fn(dime_store_passphrase_fn fn, void *arg)
{
	seal_pass_fn = fn;
	seal_pass_arg = arg;
}

int
dime_seal_kind(enum dime_store_kind kind)
{
	return kind == DIME_STORE_SOK_KEY || kind == DIME_STORE_ORG_KEY ||
	       kind == DIME_STORE_USER_KEY;
}

static struct dime_seal *
seal_alloc(void)
{
	struct dime_seal *s = sodium_malloc(sizeof(*s));

	if (s != NULL)
		memset(s, 0, sizeof(*s));
	return s;
}

void
dime_seal_free(struct dime_seal *s)
{
	if (s != NULL)
		sodium_free(s); /* wipes */
}

/* Both subkeys from the 32-byte master (key file bytes or Argon2id output). */
static void
seal_derive(struct dime_seal *s, const uint8_t master[SEAL_KEY_BYTES])
{
	(void)crypto_kdf_derive_from_key(s->aead, sizeof(s->aead), 1, SEAL_KDF_CONTEXT, master);
	(void)crypto_kdf_derive_from_key(s->mac, sizeof(s->mac), 2, SEAL_KDF_CONTEXT, master);
}

/* "<path><suffix>", malloc'd. */
static char *
seal_path(const char *path, const char *suffix)
{
	size_t n = strlen(path), m = strlen(suffix);
	char *p = malloc(n + m + 1);

	if (p != NULL) {
		memcpy(p, path, n);
		memcpy(p + n, suffix, m + 1);
	}
	return p;
}

/* Associated data of a key row: prefix, NUL, kind and version (big-endian), ident. The ident
 * comes last, so no length is needed to keep the encoding unambiguous. */
static size_t
seal_ad(uint8_t ad[sizeof(SEAL_AD_PREFIX) + 8 + 256], const char *ident, enum dime_store_kind kind,
	uint32_t version)
{
	size_t n = sizeof(SEAL_AD_PREFIX), id_len = strnlen(ident, 255);
	uint32_t k = (uint32_t)kind;

	memcpy(ad, SEAL_AD_PREFIX, n); /* with its NUL */
	ad[n++] = (uint8_t)(k >> 24);
	ad[n++] = (uint8_t)(k >> 16);
	ad[n++] = (uint8_t)(k >> 8);
	ad[n++] = (uint8_t)k;
	ad[n++] = (uint8_t)(version >> 24);
	ad[n++] = (uint8_t)(version >> 16);
	ad[n++] = (uint8_t)(version >> 8);
	ad[n++] = (uint8_t)version;
	memcpy(ad + n, ident, id_len);
	return n + id_len;
}

static int
seal_encrypt(const struct dime_seal *s, uint8_t *out, const uint8_t *pt, size_t pt_len,
	     const uint8_t *ad, size_t ad_len)
{
	unsigned long long clen = 0;

	out[0] = SEAL_FORMAT;
	randombytes_buf(out + 1, DIME_SEAL_NONCE_BYTES);
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + 1 + DIME_SEAL_NONCE_BYTES, &clen, pt,
						       pt_len, ad, ad_len, NULL, out + 1,
						       s->aead) != 0 ||
	    clen != pt_len + DIME_SEAL_TAG_BYTES) {
		sodium_memzero(out, pt_len + DIME_SEAL_OVERHEAD);
		return DIME_E_CRYPTO;
	}
	return DIME_OK;
}

/* pt receives in_len - DIME_SEAL_OVERHEAD bytes. Returns: DIME_OK or DIME_E_BADSIG. */
static int
seal_decrypt(const struct dime_seal *s, uint8_t *pt, const uint8_t *in, size_t in_len,
	     const uint8_t *ad, size_t ad_len)
{
	unsigned long long mlen = 0;

	if (in_len < DIME_SEAL_OVERHEAD || in[0] != SEAL_FORMAT)
		return DIME_E_BADSIG;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		pt, &mlen, NULL, in + 1 + DIME_SEAL_NONCE_BYTES, in_len - 1 - DIME_SEAL_NONCE_BYTES,
		ad, ad_len, in + 1, s->aead) != 0) {
		sodium_memzero(pt, in_len - DIME_SEAL_OVERHEAD);
		return DIME_E_BADSIG;
	}
	return DIME_OK;
}

void
dime_seal_digest(const struct dime_seal *s, uint8_t out[DIME_SHA512_BYTES], const uint8_t *pt,
		 size_t pt_len)
{
	(void)crypto_generichash(out, DIME_SHA512_BYTES, pt, pt_len, s->mac, sizeof(s->mac));
}

int
dime_seal_wrap(const struct dime_seal *s, uint8_t *out, const uint8_t *pt, size_t pt_len,
	       const char *ident, enum dime_store_kind kind, uint32_t version)
{
	uint8_t ad[sizeof(SEAL_AD_PREFIX) + 8 + 256];
	size_t ad_len = seal_ad(ad, ident, kind, version);

	return seal_encrypt(s, out, pt, pt_len, ad, ad_len);
}

int
dime_seal_unwrap(const struct dime_seal *s, uint8_t **blob, size_t *blob_len, const char *ident,
		 enum dime_store_kind kind, uint32_t version)
{
	uint8_t ad[sizeof(SEAL_AD_PREFIX) + 8 + 256];
	size_t ad_len = seal_ad(ad, ident, kind, version), n = 0;
	uint8_t *pt = NULL;
	int rc = DIME_E_BADSIG;

	if (*blob_len < DIME_SEAL_OVERHEAD)
		goto out;
	n = *blob_len - DIME_SEAL_OVERHEAD;
	if ((pt = malloc(n > 0 ? n : 1)) == NULL) {
		rc = DIME_E_NOMEM;
		goto out;
	}
	if ((rc = seal_decrypt(s, pt, *blob, *blob_len, ad, ad_len)) != DIME_OK)
		goto out;
out:
	free(*blob); /* ciphertext: nothing to wipe */
	*blob = NULL;
	*blob_len = 0;
	if (rc != DIME_OK) {
		free(pt); /* wiped by seal_decrypt */
		return rc;
	}
	*blob = pt;
	*blob_len = n;
	return DIME_OK;
}

/* Read a secret file: a regular file or a pipe, closed to group and other (the check is on the
 * open descriptor, so a swap after the check cannot pass). Reads up to cap bytes; *len == cap
 * means "at least cap". Returns: DIME_OK, DIME_E_INVALID (missing, wrong type or mode),
 * DIME_E_IO. On failure buf is wiped. */
static int
seal_read_secret(uint8_t *buf, size_t cap, size_t *len, const char *path, const char *what,
		 char *err, size_t errlen)
{
	struct stat sb;
	size_t n = 0;
	int fd, rc = DIME_E_INVALID;

	*len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		int e = errno;

		dime_store_errf(err, errlen, "%s %s: %s", what, path, strerror(e));
		return e == ENOENT || e == EACCES || e == ENOTDIR ? DIME_E_INVALID : DIME_E_IO;
	}
	if (fstat(fd, &sb) != 0) {
		dime_store_errf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		rc = DIME_E_IO;
		goto out;
	}
	if (!S_ISREG(sb.st_mode) && !S_ISFIFO(sb.st_mode)) {
		dime_store_errf(err, errlen, "%s %s: not a regular file", what, path);
		goto out;
	}
	if ((sb.st_mode & 077) != 0) {
		dime_store_errf(err, errlen,
				"%s %s: mode %03o lets group or other in; chmod 600 %s", what, path,
				(unsigned)(sb.st_mode & 0777), path);
		goto out;
	}
	while (n < cap) {
		ssize_t r = read(fd, buf + n, cap - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			dime_store_errf(err, errlen, "%s %s: %s", what, path, strerror(errno));
			rc = DIME_E_IO;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*len = n;
	rc = DIME_OK;
out:
	(void)close(fd);
	if (rc != DIME_OK)
		sodium_memzero(buf, cap);
	return rc;
}

static int
seal_read_key_file(uint8_t key[SEAL_KEY_BYTES], const char *path, char *err, size_t errlen)
{
	uint8_t buf[SEAL_KEY_BYTES + 1];
	size_t n = 0;
	int rc;

	if ((rc = seal_read_secret(buf, sizeof(buf), &n, path, "key file", err, errlen)) != DIME_OK)
		goto out;
	if (n != SEAL_KEY_BYTES) {
		dime_store_errf(err, errlen, "key file %s: %s%zu bytes, want exactly %d", path,
				n > SEAL_KEY_BYTES ? "more than " : "",
				n > SEAL_KEY_BYTES ? n - 1 : n, SEAL_KEY_BYTES);
		rc = DIME_E_INVALID;
		goto out;
	}
	memcpy(key, buf, SEAL_KEY_BYTES);
out:
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

/* The first line of a passphrase file (a trailing CR is dropped) into pass (SEAL_PASS_CAP). */
static int
seal_read_pass_file(char pass[SEAL_PASS_CAP], const char *path, char *err, size_t errlen)
{
	uint8_t buf[SEAL_PASS_CAP];
	size_t n = 0, line;
	uint8_t *nl;
	int rc;

	memset(pass, 0, SEAL_PASS_CAP);
	if ((rc = seal_read_secret(buf, sizeof(buf), &n, path, "passphrase file", err, errlen)) !=
	    DIME_OK)
		goto out;
	nl = memchr(buf, '\n', n);
	line = nl != NULL ? (size_t)(nl - buf) : n;
	if (line > 0 && buf[line - 1] == '\r')
		line--;
	rc = DIME_E_INVALID;
	if (line >= SEAL_PASS_CAP) {
		dime_store_errf(err, errlen, "passphrase file %s: first line over %d bytes", path,
				SEAL_PASS_CAP - 1);
		goto out;
	}
	if (line == 0) {
		dime_store_errf(err, errlen, "passphrase file %s: the first line is empty", path);
		goto out;
	}
	if (memchr(buf, '\0', line) != NULL) {
		dime_store_errf(err, errlen, "passphrase file %s: NUL byte in the first line",
				path);
		goto out;
	}
	memcpy(pass, buf, line);
	rc = DIME_OK;
out:
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

/* Argon2id cost of a new passphrase KEK: MODERATE, unless $DIME_PWHASH_COST names another
 * level. Read only when a KEK is created (store creation, rekey-secrets); opening uses the
 * recorded values, so the variable cannot weaken an existing store. "min" is for tests. */
static int
seal_pwhash_cost(unsigned long long *ops, size_t *mem, char *err, size_t errlen)
{
	const char *c = getenv("DIME_PWHASH_COST");

	*ops = crypto_pwhash_argon2id_OPSLIMIT_MODERATE;
	*mem = crypto_pwhash_argon2id_MEMLIMIT_MODERATE;
	if (c == NULL || c[0] == '\0' || strcmp(c, "moderate") == 0)
		return DIME_OK;
	if (strcmp(c, "min") == 0) {
		*ops = crypto_pwhash_argon2id_OPSLIMIT_MIN;
		*mem = crypto_pwhash_argon2id_MEMLIMIT_MIN;
	} else if (strcmp(c, "interactive") == 0) {
		*ops = crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE;
		*mem = crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE;
	} else if (strcmp(c, "sensitive") == 0) {
		*ops = crypto_pwhash_argon2id_OPSLIMIT_SENSITIVE;
		*mem = crypto_pwhash_argon2id_MEMLIMIT_SENSITIVE;
	} else {
		dime_store_errf(err, errlen,
				"DIME_PWHASH_COST=%s: want min, interactive, moderate or sensitive",
				c);
		return DIME_E_INVALID;
	}
	return DIME_OK;
}

static int
seal_from_pass(struct dime_seal *s, const char *pass, const struct seal_meta *m, char *err,
	       size_t errlen)
{
	uint8_t master[SEAL_KEY_BYTES];
	int rc = DIME_OK;

	if (crypto_pwhash(master, sizeof(master), pass, strlen(pass), m->salt, m->opslimit,
			  m->memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0) {
		dime_store_errf(err, errlen,
				"Argon2id with %zu bytes of memory failed (out of memory?)",
				m->memlimit);
		rc = DIME_E_NOMEM;
		goto out;
	}
	seal_derive(s, master);
out:
	sodium_memzero(master, sizeof(master));
	return rc;
}

static int
seal_from_key_file(struct dime_seal *s, const char *path, char *err, size_t errlen)
{
	uint8_t master[SEAL_KEY_BYTES];
	int rc;

	if ((rc = seal_read_key_file(master, path, err, errlen)) == DIME_OK)
		seal_derive(s, master);
	sodium_memzero(master, sizeof(master));
	return rc;
}

/* Does s open the verifier? A wrong KEK fails here, before any key row is touched. */
static int
seal_verify(const struct dime_seal *s, const struct seal_meta *m)
{
	uint8_t pt[sizeof(SEAL_VERIFIER_PT) - 1];
	int rc;

	rc = seal_decrypt(s, pt, m->verifier, sizeof(m->verifier),
			  (const uint8_t *)SEAL_VERIFIER_AD, sizeof(SEAL_VERIFIER_AD) - 1);
	if (rc == DIME_OK && sodium_memcmp(pt, SEAL_VERIFIER_PT, sizeof(pt)) != 0)
		rc = DIME_E_BADSIG;
	sodium_memzero(pt, sizeof(pt));
	return rc;
}

/* ---- the meta row ---- */

static int
seal_sql_err(sqlite3 *db, int src, char *err, size_t errlen)
{
	dime_store_errf(err, errlen, "secrets: %s", sqlite3_errmsg(db));
	return (src & 0xff) == SQLITE_NOMEM ? DIME_E_NOMEM : DIME_E_IO;
}

static int
seal_exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static void
seal_rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		(void)seal_exec(db, "ROLLBACK");
}

/* Returns: DIME_OK (*found says whether the row exists), DIME_E_IO for a row that breaks the
 * format (a damaged or newer store), or a SQLite failure. */
static int
seal_meta_read(struct seal_meta *m, int *found, sqlite3 *db, char *err, size_t errlen)
{
	sqlite3_stmt *stmt = NULL;
	const unsigned char *mode;
	int src, rc = DIME_E_IO;

	memset(m, 0, sizeof(*m));
	*found = 0;
	if ((src = sqlite3_prepare_v2(db,
				      "SELECT format, mode, salt, opslimit, memlimit, verifier "
				      "FROM secrets WHERE id = 1",
				      -1, &stmt, NULL)) != SQLITE_OK) {
		rc = seal_sql_err(db, src, err, errlen);
		goto out;
	}
	src = sqlite3_step(stmt);
	if (src == SQLITE_DONE) {
		rc = DIME_OK;
		goto out;
	}
	if (src != SQLITE_ROW) {
		rc = seal_sql_err(db, src, err, errlen);
		goto out;
	}
	*found = 1;
	mode = sqlite3_column_text(stmt, 1);
	if (sqlite3_column_int64(stmt, 0) != SEAL_FORMAT || mode == NULL ||
	    sqlite3_column_bytes(stmt, 5) != (int)sizeof(m->verifier)) {
		dime_store_errf(err, errlen, "secrets: unknown format (a newer build, or damage)");
		goto out;
	}
	memcpy(m->verifier, sqlite3_column_blob(stmt, 5), sizeof(m->verifier));
	if (strcmp((const char *)mode, "key-file") == 0) {
		m->mode = SEAL_MODE_KEY_FILE;
	} else {
		sqlite3_int64 ops = sqlite3_column_int64(stmt, 3),
			      mem = sqlite3_column_int64(stmt, 4);

		m->mode = SEAL_MODE_PASSPHRASE;
		/* Bounded, so that a damaged row cannot ask for 4 TiB or for no work at all. */
		if (sqlite3_column_bytes(stmt, 2) != (int)sizeof(m->salt) ||
		    ops < (sqlite3_int64)crypto_pwhash_argon2id_OPSLIMIT_MIN ||
		    ops > (sqlite3_int64)crypto_pwhash_argon2id_OPSLIMIT_SENSITIVE ||
		    mem < (sqlite3_int64)crypto_pwhash_argon2id_MEMLIMIT_MIN ||
		    mem > (sqlite3_int64)crypto_pwhash_argon2id_MEMLIMIT_SENSITIVE) {
			dime_store_errf(err, errlen, "secrets: Argon2id parameters out of range");
			goto out;
		}
		memcpy(m->salt, sqlite3_column_blob(stmt, 2), sizeof(m->salt));
		m->opslimit = (unsigned long long)ops;
		m->memlimit = (size_t)mem;
	}
	rc = DIME_OK;
out:
	(void)sqlite3_finalize(stmt);
	return rc;
}

/* Insert (or replace) the meta row; inside the caller's transaction. */
static int
seal_meta_write(sqlite3 *db, const struct seal_meta *m, char *err, size_t errlen)
{
	sqlite3_stmt *stmt = NULL;
	int pass = m->mode == SEAL_MODE_PASSPHRASE, src;

	if ((src =
		 sqlite3_prepare_v2(db,
				    "INSERT OR REPLACE INTO secrets (id, format, mode, salt, "
				    "opslimit, memlimit, verifier) VALUES (1, ?1, ?2, ?3, ?4, ?5, "
				    "?6)",
				    -1, &stmt, NULL)) != SQLITE_OK ||
	    (src = sqlite3_bind_int(stmt, 1, SEAL_FORMAT)) != SQLITE_OK ||
	    (src = sqlite3_bind_text(stmt, 2, pass ? "passphrase" : "key-file", -1,
				     SQLITE_STATIC)) != SQLITE_OK ||
	    (src = pass ? sqlite3_bind_blob(stmt, 3, m->salt, sizeof(m->salt), SQLITE_STATIC)
			: sqlite3_bind_null(stmt, 3)) != SQLITE_OK ||
	    (src = pass ? sqlite3_bind_int64(stmt, 4, (sqlite3_int64)m->opslimit)
			: sqlite3_bind_null(stmt, 4)) != SQLITE_OK ||
	    (src = pass ? sqlite3_bind_int64(stmt, 5, (sqlite3_int64)m->memlimit)
			: sqlite3_bind_null(stmt, 5)) != SQLITE_OK ||
	    (src = sqlite3_bind_blob(stmt, 6, m->verifier, sizeof(m->verifier), SQLITE_STATIC)) !=
		SQLITE_OK ||
	    (src = sqlite3_step(stmt)) != SQLITE_DONE) {
		int rc = seal_sql_err(db, src, err, errlen);

		(void)sqlite3_finalize(stmt);
		return rc;
	}
	(void)sqlite3_finalize(stmt);
	return DIME_OK;
}

/* ---- key files beside the store ---- */

static int
seal_fsync_dir(const char *file)
{
	char *dir = strdup(file), *slash;
	int fd, rc = -1;

	if (dir == NULL)
		return -1;
	slash = strrchr(dir, '/');
	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		rc = fsync(fd);
		(void)close(fd);
	}
	free(dir);
	return rc;
}

/* Create path (O_EXCL, 0600) with 32 fresh random bytes, synced with its directory, and derive
 * s from them. Returns: DIME_OK, DIME_E_IO (errno in err: EEXIST among others). */
static int
seal_generate(struct dime_seal *s, const char *path, char *err, size_t errlen)
{
	uint8_t master[SEAL_KEY_BYTES];
	int fd, rc = DIME_E_IO;
	size_t n = 0;

	randombytes_buf(master, sizeof(master));
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		dime_store_errf(err, errlen, "key file %s: %s", path, strerror(errno));
		goto out;
	}
	while (n < sizeof(master)) {
		ssize_t w = write(fd, master + n, sizeof(master) - n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		n += (size_t)w;
	}
	if (n != sizeof(master) || fsync(fd) != 0) {
		dime_store_errf(err, errlen, "key file %s: %s", path, strerror(errno));
		(void)close(fd);
		(void)unlink(path);
		goto out;
	}
	if (close(fd) != 0 || seal_fsync_dir(path) != 0) {
		dime_store_errf(err, errlen, "key file %s: %s", path, strerror(errno));
		(void)unlink(path);
		goto out;
	}
	seal_derive(s, master);
	rc = DIME_OK;
out:
	sodium_memzero(master, sizeof(master));
	return rc;
}

/* Do a and b name the same file? (a missing file is not the same as anything) */
static int
seal_same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* ---- unlocking ---- */

/* The key-file KEK of an existing store: $DIME_KEY_FILE, else "<path>.key". A rekey to a
 * generated key that committed but died before renaming "<path>.key.new" over "<path>.key" is
 * finished here: the new file is only taken when it opens the verifier. */
static int
seal_unlock_key_file(struct dime_seal *s, const struct seal_meta *m, const char *path, char *err,
		     size_t errlen)
{
	const char *env = getenv("DIME_KEY_FILE");
	char *beside = NULL, *fresh = NULL;
	int rc = DIME_E_NOMEM;

	if (env != NULL && env[0] != '\0') {
		if ((rc = seal_from_key_file(s, env, err, errlen)) == DIME_OK &&
		    (rc = seal_verify(s, m)) != DIME_OK)
			dime_store_errf(err, errlen, "wrong passphrase or key file for store %s",
					path);
		return rc;
	}
	if ((beside = seal_path(path, ".key")) == NULL ||
	    (fresh = seal_path(path, ".key.new")) == NULL)
		goto out;
	s->beside = 1;
	rc = seal_from_key_file(s, beside, err, errlen);
	if (rc == DIME_OK && (rc = seal_verify(s, m)) != DIME_OK)
		dime_store_errf(err, errlen, "wrong passphrase or key file for store %s", path);
	if (rc != DIME_OK && access(fresh, F_OK) == 0) {
		char err2[256] = "";

		if (seal_from_key_file(s, fresh, err2, sizeof(err2)) == DIME_OK &&
		    seal_verify(s, m) == DIME_OK) {
			if (rename(fresh, beside) != 0 || seal_fsync_dir(beside) != 0) {
				dime_store_errf(err, errlen, "rename %s: %s", fresh,
						strerror(errno));
				rc = DIME_E_IO;
				goto out;
			}
			fprintf(stderr, "dime: %s: finished an interrupted rekey-secrets (%s)\n",
				path, beside);
			rc = DIME_OK;
		}
	}
	if (rc == DIME_E_INVALID && access(beside, F_OK) != 0)
		dime_store_errf(
		    err, errlen,
		    "store %s is sealed with a key file: set DIME_KEY_FILE (%s is missing)", path,
		    beside);
out:
	free(beside);
	free(fresh);
	return rc;
}

static int
seal_unlock_pass(struct dime_seal *s, const struct seal_meta *m, const char *path, char *err,
		 size_t errlen)
{
	const char *env = getenv("DIME_PASSPHRASE_FILE");
	char *pass = sodium_malloc(SEAL_PASS_CAP);
	int rc;

	if (pass == NULL) {
		dime_store_errf(err, errlen, "out of memory");
		return DIME_E_NOMEM;
	}
	memset(pass, 0, SEAL_PASS_CAP);
	if (env != NULL && env[0] != '\0') {
		rc = seal_read_pass_file(pass, env, err, errlen);
	} else if (seal_pass_fn != NULL) {
		rc = seal_pass_fn(pass, SEAL_PASS_CAP, path, seal_pass_arg);
		pass[SEAL_PASS_CAP - 1] = '\0';
		if (rc == DIME_OK && pass[0] == '\0')
			rc = DIME_E_INVALID;
		if (rc == DIME_E_NOTFOUND)
			dime_store_errf(
			    err, errlen,
			    "store %s is sealed with a passphrase: set DIME_PASSPHRASE_FILE "
			    "or run on a terminal",
			    path);
		else if (rc != DIME_OK)
			dime_store_errf(err, errlen,
					"store %s: no passphrase (empty, or over %d bytes)", path,
					SEAL_PASS_CAP - 1);
		if (rc != DIME_OK)
			rc = DIME_E_INVALID;
	} else {
		dime_store_errf(err, errlen,
				"store %s is sealed with a passphrase: set DIME_PASSPHRASE_FILE",
				path);
		rc = DIME_E_INVALID;
	}
	if (rc == DIME_OK && (rc = seal_from_pass(s, pass, m, err, errlen)) == DIME_OK &&
	    (rc = seal_verify(s, m)) != DIME_OK)
		dime_store_errf(err, errlen, "wrong passphrase or key file for store %s", path);
	sodium_free(pass);
	return rc;
}

/* ---- re-sealing rows ---- */

/* Re-seal every key row from `from` (NULL: plaintext, a v1 store) to `to`, and recompute its
 * digest; inside the caller's transaction. Rowids are collected first, so no row is updated
 * under an open SELECT of the same table. Returns: DIME_OK, DIME_E_BADSIG (a row does not
 * open: the caller rolls back), or a SQLite failure. */
static int
seal_reseal_rows(sqlite3 *db, size_t *n_keys, const struct dime_seal *from,
		 const struct dime_seal *to, char *err, size_t errlen)
{
	sqlite3_stmt *sel = NULL, *upd = NULL;
	int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	uint8_t *blob = NULL, *sealed = NULL;
	size_t blob_len = 0;
	int src, rc = DIME_E_IO;

	*n_keys = 0;
	if ((src = sqlite3_prepare_v2(db,
				      "SELECT rowid FROM objects WHERE kind IN (?1, ?2, ?3) ORDER "
				      "BY rowid",
				      -1, &sel, NULL)) != SQLITE_OK ||
	    (src = sqlite3_bind_int(sel, 1, DIME_STORE_SOK_KEY)) != SQLITE_OK ||
	    (src = sqlite3_bind_int(sel, 2, DIME_STORE_ORG_KEY)) != SQLITE_OK ||
	    (src = sqlite3_bind_int(sel, 3, DIME_STORE_USER_KEY)) != SQLITE_OK)
		goto sqlfail;
	while ((src = sqlite3_step(sel)) == SQLITE_ROW) {
		if (n == cap) {
			size_t c = cap ? cap * 2 : 64;
			int64_t *p = realloc(ids, c * sizeof(*p));

			if (p == NULL) {
				rc = DIME_E_NOMEM;
				goto out;
			}
			ids = p;
			cap = c;
		}
		ids[n++] = sqlite3_column_int64(sel, 0);
	}
	if (src != SQLITE_DONE)
		goto sqlfail;
	(void)sqlite3_finalize(sel);
	sel = NULL;
	if ((src = sqlite3_prepare_v2(db,
				      "SELECT ident, kind, version, blob FROM objects WHERE rowid "
				      "= ?1",
				      -1, &sel, NULL)) != SQLITE_OK ||
	    (src = sqlite3_prepare_v2(db,
				      "UPDATE objects SET blob = ?1, sha512 = ?2 WHERE rowid = ?3",
				      -1, &upd, NULL)) != SQLITE_OK)
		goto sqlfail;
	for (size_t i = 0; i < n; i++) {
		char ident[256];
		const unsigned char *id;
		const void *p;
		enum dime_store_kind kind;
		sqlite3_int64 version;
		int len;
		uint8_t digest[DIME_SHA512_BYTES];

		if ((src = sqlite3_reset(sel)) != SQLITE_OK ||
		    (src = sqlite3_bind_int64(sel, 1, ids[i])) != SQLITE_OK ||
		    (src = sqlite3_step(sel)) != SQLITE_ROW)
			goto sqlfail;
		id = sqlite3_column_text(sel, 0);
		kind = (enum dime_store_kind)sqlite3_column_int(sel, 1);
		version = sqlite3_column_int64(sel, 2);
		p = sqlite3_column_blob(sel, 3);
		len = sqlite3_column_bytes(sel, 3);
		if (id == NULL || strlen((const char *)id) >= sizeof(ident) || len < 0 ||
		    (p == NULL && len > 0) || version < 1 || version > (sqlite3_int64)UINT32_MAX) {
			dime_store_errf(err, errlen, "secrets: key row %lld is damaged",
					(long long)ids[i]);
			rc = DIME_E_IO;
			goto out;
		}
		snprintf(ident, sizeof(ident), "%s", (const char *)id);
		blob_len = (size_t)len;
		if ((blob = malloc(blob_len > 0 ? blob_len : 1)) == NULL) {
			rc = DIME_E_NOMEM;
			goto out;
		}
		if (blob_len > 0)
			memcpy(blob, p, blob_len);
		if (from != NULL && (rc = dime_seal_unwrap(from, &blob, &blob_len, ident, kind,
							   (uint32_t)version)) != DIME_OK) {
			dime_store_errf(
			    err, errlen,
			    "%s key of %s v%lld does not open (tampered or moved): nothing "
			    "changed",
			    kind == DIME_STORE_SOK_KEY	 ? "sok"
			    : kind == DIME_STORE_ORG_KEY ? "org"
							 : "user",
			    ident, (long long)version);
			goto out;
		}
		if ((sealed = malloc(blob_len + DIME_SEAL_OVERHEAD)) == NULL) {
			rc = DIME_E_NOMEM;
			goto out;
		}
		if ((rc = dime_seal_wrap(to, sealed, blob, blob_len, ident, kind,
					 (uint32_t)version)) != DIME_OK)
			goto out;
		dime_seal_digest(to, digest, blob, blob_len);
		sodium_memzero(blob, blob_len);
		free(blob);
		blob = NULL;
		if ((src = sqlite3_reset(upd)) != SQLITE_OK ||
		    (src = sqlite3_bind_blob64(upd, 1, sealed,
					       (sqlite3_uint64)(blob_len + DIME_SEAL_OVERHEAD),
					       SQLITE_STATIC)) != SQLITE_OK ||
		    (src = sqlite3_bind_blob(upd, 2, digest, sizeof(digest), SQLITE_STATIC)) !=
			SQLITE_OK ||
		    (src = sqlite3_bind_int64(upd, 3, ids[i])) != SQLITE_OK ||
		    (src = sqlite3_step(upd)) != SQLITE_DONE)
			goto sqlfail;
		free(sealed);
		sealed = NULL;
		blob_len = 0;
	}
	*n_keys = n;
	rc = DIME_OK;
	goto out;
sqlfail:
	rc = seal_sql_err(db, src, err, errlen);
out:
	if (blob != NULL) {
		sodium_memzero(blob, blob_len);
		free(blob);
	}
	free(sealed);
	free(ids);
	(void)sqlite3_finalize(sel);
	(void)sqlite3_finalize(upd);
	return rc;
}

/* A new KEK for target `to`: from a key file, a passphrase file (fresh salt, cost from
 * $DIME_PWHASH_COST), or generated into gen_path. Fills m (mode, salt, cost, verifier). */
static int
seal_make(struct dime_seal *s, struct seal_meta *m, enum dime_store_secrets_to to, const char *file,
	  const char *gen_path, char *err, size_t errlen)
{
	char *pass = NULL;
	int rc;

	memset(m, 0, sizeof(*m));
	switch (to) {
	case DIME_STORE_TO_KEY_FILE:
		m->mode = SEAL_MODE_KEY_FILE;
		rc = seal_from_key_file(s, file, err, errlen);
		break;
	case DIME_STORE_TO_GENERATED:
		m->mode = SEAL_MODE_KEY_FILE;
		rc = seal_generate(s, gen_path, err, errlen);
		break;
	case DIME_STORE_TO_PASSPHRASE_FILE:
		m->mode = SEAL_MODE_PASSPHRASE;
		if ((pass = sodium_malloc(SEAL_PASS_CAP)) == NULL) {
			rc = DIME_E_NOMEM;
			break;
		}
		randombytes_buf(m->salt, sizeof(m->salt));
		if ((rc = seal_pwhash_cost(&m->opslimit, &m->memlimit, err, errlen)) == DIME_OK &&
		    (rc = seal_read_pass_file(pass, file, err, errlen)) == DIME_OK)
			rc = seal_from_pass(s, pass, m, err, errlen);
		sodium_free(pass);
		break;
	default: rc = DIME_E_INVALID; break;
	}
	if (rc == DIME_OK)
		rc = seal_encrypt(s, m->verifier, (const uint8_t *)SEAL_VERIFIER_PT,
				  sizeof(SEAL_VERIFIER_PT) - 1, (const uint8_t *)SEAL_VERIFIER_AD,
				  sizeof(SEAL_VERIFIER_AD) - 1);
	return rc;
}

/* First open of a store without a meta row (new, or v1 with plaintext keys). Under BEGIN
 * IMMEDIATE, so one process sets the secrets up while others wait and then unlock.
 * Returns: DIME_OK (*s set), DIME_E_AGAIN (another process got there first: unlock), or an
 * error. */
static int
seal_setup(struct dime_seal **out, sqlite3 *db, const char *path, char *err, size_t errlen)
{
	const char *key_env = getenv("DIME_KEY_FILE"), *pass_env = getenv("DIME_PASSPHRASE_FILE");
	struct dime_seal *s = NULL;
	struct seal_meta m;
	char *beside = NULL;
	size_t n_keys = 0;
	int found = 0, generated = 0, src, rc;

	/* Plaintext keys of a v1 store are overwritten here: freed cells and pages must be
	 * zeroed rather than left in the file (the connection keeps the setting). */
	if ((src = seal_exec(db, "PRAGMA secure_delete = ON")) != SQLITE_OK ||
	    (src = seal_exec(db, "BEGIN IMMEDIATE")) != SQLITE_OK)
		return seal_sql_err(db, src, err, errlen);
	if ((rc = seal_meta_read(&m, &found, db, err, errlen)) != DIME_OK)
		goto out;
	if (found) {
		rc = DIME_E_AGAIN;
		goto out;
	}
	rc = DIME_E_NOMEM;
	if ((s = seal_alloc()) == NULL || (beside = seal_path(path, ".key")) == NULL)
		goto out;
	if (key_env != NULL && key_env[0] != '\0') {
		rc = seal_make(s, &m, DIME_STORE_TO_KEY_FILE, key_env, NULL, err, errlen);
	} else if (pass_env != NULL && pass_env[0] != '\0') {
		rc = seal_make(s, &m, DIME_STORE_TO_PASSPHRASE_FILE, pass_env, NULL, err, errlen);
	} else if (access(beside, F_OK) == 0) {
		/* left by a setup that died before its commit, or put there by the operator */
		s->beside = 1;
		rc = seal_make(s, &m, DIME_STORE_TO_KEY_FILE, beside, NULL, err, errlen);
	} else {
		s->beside = 1;
		rc = seal_make(s, &m, DIME_STORE_TO_GENERATED, NULL, beside, err, errlen);
		generated = rc == DIME_OK;
	}
	if (rc != DIME_OK ||
	    (rc = seal_reseal_rows(db, &n_keys, NULL, s, err, errlen)) != DIME_OK ||
	    (rc = seal_meta_write(db, &m, err, errlen)) != DIME_OK)
		goto out;
	if ((src = seal_exec(db, "COMMIT")) != SQLITE_OK) {
		rc = seal_sql_err(db, src, err, errlen);
		goto out;
	}
	if (generated)
		fprintf(stderr,
			"dime: store %s: generated its key file %s (0600); keep it, and back it up "
			"apart from the store\n",
			path, beside);
	if (n_keys > 0)
		fprintf(stderr, "dime: store %s: sealed %zu plaintext private key%s at rest\n",
			path, n_keys, n_keys == 1 ? "" : "s");
	*out = s;
	s = NULL;
out:
	seal_rollback(db);
	if (rc != DIME_OK && generated)
		(void)unlink(beside); /* nothing is sealed under it */
	free(beside);
	dime_seal_free(s);
	sodium_memzero(&m, sizeof(m));
	return rc;
}

int
dime_seal_new(struct dime_seal **out, sqlite3 *db, const char *path, char *err, size_t errlen)
{
	struct dime_seal *s = NULL;
	struct seal_meta m;
	int found = 0, rc;

	*out = NULL;
	for (int attempt = 0; attempt < 2; attempt++) {
		if ((rc = seal_meta_read(&m, &found, db, err, errlen)) != DIME_OK)
			goto out;
		if (found)
			break;
		if ((rc = seal_setup(out, db, path, err, errlen)) != DIME_E_AGAIN)
			goto out;
	}
	if (!found) {
		dime_store_errf(err, errlen, "secrets: the meta row keeps changing");
		rc = DIME_E_IO;
		goto out;
	}
	if ((s = seal_alloc()) == NULL) {
		dime_store_errf(err, errlen, "out of memory");
		rc = DIME_E_NOMEM;
		goto out;
	}
	rc = m.mode == SEAL_MODE_KEY_FILE ? seal_unlock_key_file(s, &m, path, err, errlen)
					  : seal_unlock_pass(s, &m, path, err, errlen);
	if (rc != DIME_OK)
		goto out;
	*out = s;
	s = NULL;
out:
	dime_seal_free(s);
	sodium_memzero(&m, sizeof(m));
	return rc;
}

int
dime_seal_rekey(struct dime_seal **cur, size_t *n_keys, sqlite3 *db, const char *path,
		enum dime_store_secrets_to to, const char *file, char *err, size_t errlen)
{
	struct dime_seal *s = NULL;
	struct seal_meta m, now;
	char *beside = NULL, *fresh = NULL;
	int found = 0, created = 0, src, rc = DIME_E_NOMEM;

	*n_keys = 0;
	if ((beside = seal_path(path, ".key")) == NULL ||
	    (fresh = seal_path(path, ".key.new")) == NULL || (s = seal_alloc()) == NULL) {
		dime_store_errf(err, errlen, "out of memory");
		goto out;
	}
	if ((to == DIME_STORE_TO_GENERATED) != (file == NULL)) {
		dime_store_errf(err, errlen,
				"rekey-secrets: a file is needed for a key or passphrase "
				"file, and none for a generated key");
		rc = DIME_E_INVALID;
		goto out;
	}
	/* Blobs sealed under the old KEK must not survive in freed space: whoever holds the old
	 * passphrase or key file could open them. */
	if ((src = seal_exec(db, "PRAGMA secure_delete = ON")) != SQLITE_OK ||
	    (src = seal_exec(db, "BEGIN IMMEDIATE")) != SQLITE_OK) {
		rc = seal_sql_err(db, src, err, errlen);
		goto out;
	}
	/* The meta row may have changed since this handle unlocked: re-check inside the lock. */
	if ((rc = seal_meta_read(&now, &found, db, err, errlen)) != DIME_OK)
		goto out;
	if (!found || seal_verify(*cur, &now) != DIME_OK) {
		dime_store_errf(err, errlen, "store %s was rekeyed by another process; run again",
				path);
		rc = DIME_E_AGAIN;
		goto out;
	}
	if (to == DIME_STORE_TO_GENERATED)
		/* The current KEK opened the verifier, so a "<path>.key.new" is left over from a
		 * rekey that never committed: nothing is sealed under it. */
		(void)unlink(fresh);
	if ((rc = seal_make(s, &m, to, file, fresh, err, errlen)) != DIME_OK)
		goto out; /* seal_generate removes what it made */
	created = to == DIME_STORE_TO_GENERATED;
	if ((rc = seal_reseal_rows(db, n_keys, *cur, s, err, errlen)) != DIME_OK ||
	    (rc = seal_meta_write(db, &m, err, errlen)) != DIME_OK)
		goto out;
	if ((src = seal_exec(db, "COMMIT")) != SQLITE_OK) {
		rc = seal_sql_err(db, src, err, errlen);
		goto out;
	}
	created = 0;
	rc = DIME_OK;
	/* Committed: the store is sealed under s. Give the generated file its name (a crash
	 * before the rename is finished by the next open), or drop a "<path>.key" that now opens
	 * nothing; a target file that is "<path>.key" itself stays. */
	if (to == DIME_STORE_TO_GENERATED) {
		s->beside = 1;
		/* ENOENT: an open in another process found the commit and did the rename */
		if ((rename(fresh, beside) != 0 &&
		     (errno != ENOENT || access(beside, F_OK) != 0)) ||
		    seal_fsync_dir(beside) != 0) {
			dime_store_errf(err, errlen,
					"rekeyed, but rename %s: %s (the next open finishes it)",
					fresh, strerror(errno));
			rc = DIME_E_IO;
		}
	} else if ((*cur)->beside &&
		   !(to == DIME_STORE_TO_KEY_FILE && seal_same_file(file, beside))) {
		if (unlink(beside) != 0 && errno != ENOENT) {
			dime_store_errf(err, errlen, "rekeyed, but the old key file %s stays: %s",
					beside, strerror(errno));
			rc = DIME_E_IO;
		}
	} else if (to == DIME_STORE_TO_KEY_FILE && seal_same_file(file, beside)) {
		s->beside = 1;
	}
	dime_seal_free(*cur);
	*cur = s;
	s = NULL;
out:
	seal_rollback(db);
	if (created)
		(void)unlink(fresh);
	free(beside);
	free(fresh);
	dime_seal_free(s);
	sodium_memzero(&m, sizeof(m));
	return rc;
}

#ifndef DIME_PIPELINE_STORE_H
#define DIME_PIPELINE_STORE_H
/* The embedded store: one SQLite database in WAL mode (default ./var/dime.db or $DIME_STORE),
 * created with file mode 0600. It holds hosted orgs and users, every version of every signet
 * (for custody checks and HIST), signets of other domains, and private key files.
 * It stores bytes and metadata; callers parse and validate them with the engine.
 *
 * Thread-safety: one struct dime_store per thread. */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dime_store;

/* What a stored object is. Values equal the DIME magic numbers, SOK seeds use 1. */
enum dime_store_kind {
	DIME_STORE_SOK_KEY = 1,
	DIME_STORE_SSR = 1215,
	DIME_STORE_ORG_SIGNET = 1776,
	DIME_STORE_USER_SIGNET = 1789,
	DIME_STORE_ORG_KEY = 1952,
	DIME_STORE_USER_KEY = 2013
};

/* How far a stored signet is trusted. Verified: every check passed (an org signet against a
 * POK from its management record, a user signet against its verified org, custody against the
 * previous stored version); keys and hosted objects made here are verified. Pending: every
 * check that could be made passed, but the trust anchor is missing (a user signet whose org
 * signet is not stored or is itself pending; an org signet imported without a POK). Pending
 * rows are kept apart: dime_store_get and dime_store_list never return them, so nothing wraps
 * to or accepts from them; dime_store_list_all and dime_store_get_row do. */
enum dime_store_state { DIME_STORE_VERIFIED = 0, DIME_STORE_PENDING = 1 };

/* Metadata of one stored object (strings owned by the row struct). */
struct dime_store_row {
	int64_t rowid;
	char ident[256]; /* domain or address, lower case */
	enum dime_store_kind kind;
	uint32_t version;     /* 1, 2, ... per (ident, kind) */
	int hosted;	      /* this OPA serves the identity */
	uint8_t perms;	      /* SOK keys: permission bits */
	char fingerprint[88]; /* signets: full fingerprint (b64); keys: "" */
	int64_t created;      /* unix seconds */
	enum dime_store_state state;
};

/* dime_store_open_flags: open only an existing store (read-only commands), never create one. */
#define DIME_STORE_OPEN_EXISTING 1u
/* dime_store_open_flags: never read the key-encryption key (no passphrase, no key file). Key
 * rows are listed (metadata) but never returned, put, found or re-sealed: DIME_E_INVALID. For
 * processes that reach keys through the key process (dime/keyproc.h). */
#define DIME_STORE_OPEN_NO_SECRETS 2u

/* Open or create the store at path (NULL: $DIME_STORE, else ./var/dime.db), creating the parent
 * directory (0700) and the schema, and unlock its private keys (docs/identity.md, "Keys at
 * rest"): with $DIME_KEY_FILE, $DIME_PASSPHRASE_FILE (or the passphrase callback), else the key
 * file "<path>.key", generated (0600, one line on stderr) when a store is created with none.
 * Returns: DIME_OK, DIME_E_IO, DIME_E_BADSIG (wrong passphrase or key file), DIME_E_INVALID
 * (no usable key or passphrase: missing, mode open to group/other, wrong size), DIME_E_NOMEM.
 * Out: *out, NULL on failure; err (when non-NULL, cap errlen) receives the reason on failure. */
DIME_MUST_CHECK int dime_store_open(struct dime_store **out, const char *path, char *err,
				    size_t errlen);
/* As dime_store_open; with DIME_STORE_OPEN_EXISTING a missing file is DIME_E_NOTFOUND (err:
 * "no store at PATH") and neither it nor its directory is created. Unknown flags:
 * DIME_E_INVALID. */
DIME_MUST_CHECK int dime_store_open_flags(struct dime_store **out, const char *path, unsigned flags,
					  char *err, size_t errlen);
void dime_store_close(struct dime_store *st); /* NULL-safe; rolls back an open transaction */

/* Returns: the path dime_store_open would use for path: path, else $DIME_STORE, else
 * ./var/dime.db (borrowed; for messages before a store is open). */
const char *dime_store_resolve_path(const char *path);

/* Returns: the path in use (borrowed). */
const char *dime_store_path(const struct dime_store *st);

/* Store an object as the next version of (ident, kind), state verified (see
 * dime_store_set_state). Storing bytes identical to an existing version of the same
 * (ident, kind) is a no-op that reports that version, whatever its state.
 * Inside dime_store_begin a failed put undoes only itself; the transaction stays open.
 * hosted is sticky per identity: once any object of ident is hosted, all of them are.
 * blob may be empty; fingerprint may be NULL (stored as "").
 * Returns: DIME_OK, DIME_E_INVALID (ident empty, >= 256 bytes or with control characters;
 *          unknown kind; NULL blob with a length; fingerprint >= 88 bytes), DIME_E_NOMEM,
 *          DIME_E_IO.
 * Out: *version (may be NULL). */
DIME_MUST_CHECK int dime_store_put(struct dime_store *st, uint32_t *version, const char *ident,
				   enum dime_store_kind kind, const uint8_t *blob, size_t blob_len,
				   int hosted, uint8_t perms, const char *fingerprint);

/* Fetch verified version (0: the latest verified one) of (ident, kind); pending rows are
 * never returned (DIME_E_NOTFOUND). *blob is malloc'd: the caller wipes (keys) and frees it.
 * Keys come back in plaintext, unsealed here. Returns: DIME_OK, DIME_E_NOTFOUND,
 * DIME_E_INVALID (bad ident), DIME_E_IO, DIME_E_NOMEM, DIME_E_BADSIG (a sealed key that does
 * not open: tampered, or moved from another row).
 * Out: *blob, *blob_len, *row (may be NULL); NULL/0 on failure. */
DIME_MUST_CHECK int dime_store_get(struct dime_store *st, uint8_t **blob, size_t *blob_len,
				   struct dime_store_row *row, const char *ident,
				   enum dime_store_kind kind, uint32_t version);

/* Call fn for each verified row matching ident (NULL: all) and kind (0: all), ordered by
 * ident, kind, version. fn returning nonzero stops the walk; fn may read the store through st,
 * never write. Returns: DIME_OK, DIME_E_INVALID (bad ident) or DIME_E_IO. */
typedef int (*dime_store_row_fn)(const struct dime_store_row *row, void *arg);
DIME_MUST_CHECK int dime_store_list(struct dime_store *st, const char *ident,
				    enum dime_store_kind kind, dime_store_row_fn fn, void *arg);

/* As dime_store_list, pending rows included (row->state tells them apart): for `store list`,
 * import checks and re-verification, never for choosing a party to trust. */
DIME_MUST_CHECK int dime_store_list_all(struct dime_store *st, const char *ident,
					enum dime_store_kind kind, dime_store_row_fn fn, void *arg);

/* The row holding exactly these bytes for (ident, kind), in any state (what put would report
 * as a duplicate). Returns: DIME_OK, DIME_E_NOTFOUND, DIME_E_INVALID (bad ident), DIME_E_IO.
 * Out: *row, zeroed on failure. */
DIME_MUST_CHECK int dime_store_find(struct dime_store *st, struct dime_store_row *row,
				    const char *ident, enum dime_store_kind kind,
				    const uint8_t *blob, size_t blob_len);

/* Mark a row verified or pending / delete it (secure_delete overwrites it).
 * Returns: DIME_OK, DIME_E_NOTFOUND (no such row), DIME_E_INVALID (state), DIME_E_IO. */
DIME_MUST_CHECK int dime_store_set_state(struct dime_store *st, int64_t rowid,
					 enum dime_store_state state);
DIME_MUST_CHECK int dime_store_delete(struct dime_store *st, int64_t rowid);

/* One write transaction over several calls (check, then put keys and signet): begin takes the
 * database's write lock at once (BEGIN IMMEDIATE), waiting for other writers up to a busy
 * timeout, so what is read inside cannot change before commit. No nesting. rollback is
 * NULL-safe and a no-op outside a transaction; a failed commit has rolled back.
 * Returns: DIME_OK, DIME_E_IO (includes a lock not obtained in time), DIME_E_NOMEM. */
DIME_MUST_CHECK int dime_store_begin(struct dime_store *st);
DIME_MUST_CHECK int dime_store_commit(struct dime_store *st);
void dime_store_rollback(struct dime_store *st);

/* The connection's durability settings, for tests and diagnostics. */
struct dime_store_settings {
	int synchronous;    /* SQLite's number: 2 = FULL */
	int secure_delete;  /* 1 = on */
	int schema_version; /* PRAGMA user_version */
	int busy_ms;	    /* how long a writer waits for another */
};
DIME_MUST_CHECK int dime_store_settings(struct dime_store *st, struct dime_store_settings *out);

/* Fetch the blob of a row found by dime_store_list. Same ownership as dime_store_get. */
DIME_MUST_CHECK int dime_store_get_row(struct dime_store *st, uint8_t **blob, size_t *blob_len,
				       int64_t rowid);

/* Where the passphrase of a passphrase-sealed store comes from when $DIME_PASSPHRASE_FILE is
 * not set: a prompt, which only tools/ may show (the pipeline never reads the terminal).
 * Returns: DIME_OK with a NUL-terminated passphrase in buf (cap bytes; the store wipes it),
 * DIME_E_NOTFOUND (no terminal to ask), or another error. */
typedef int (*dime_store_passphrase_fn)(char *buf, size_t cap, const char *store_path, void *arg);

/* Register the passphrase callback (NULL: none). Call once, before any thread opens a store. */
void dime_store_set_passphrase_fn(dime_store_passphrase_fn fn, void *arg);

/* Where rekey-secrets moves the store's key-encryption key. */
enum dime_store_secrets_to {
	DIME_STORE_TO_KEY_FILE = 1,	   /* a 32-byte key file (mode 0600 or 0400) */
	DIME_STORE_TO_PASSPHRASE_FILE = 2, /* the first line of a file, through Argon2id */
	DIME_STORE_TO_GENERATED = 3	   /* fresh random bytes in "<path>.key" */
};

/* Re-seal every private key of the store under a new key-encryption key and record it, in one
 * transaction: all keys move or none. A generated key file replaces "<path>.key" once the
 * transaction is committed; a "<path>.key" that no longer opens anything is removed.
 * file: the new key or passphrase file; NULL for DIME_STORE_TO_GENERATED.
 * Returns: DIME_OK, DIME_E_INVALID (unusable file), DIME_E_BADSIG (a stored key does not open:
 * nothing changed), DIME_E_AGAIN (another process rekeyed the store since st was opened),
 * DIME_E_IO, DIME_E_NOMEM. On failure the store keeps its old key-encryption key.
 * Out: *n_keys (may be NULL): keys re-sealed; err receives the reason on failure. */
DIME_MUST_CHECK int dime_store_rekey_secrets(struct dime_store *st, size_t *n_keys,
					     enum dime_store_secrets_to to, const char *file,
					     char *err, size_t errlen);

/* The 255 DUPLICATE table (spec Part 7, DATA): the SHA-512 of each message a DATA accepted.
 * The hash is of the armored message as received (the ACCEPTED=<hash> value, decoded). */
#define DIME_STORE_SEEN_BYTES 64

enum dime_store_seen_state {
	DIME_STORE_SEEN_ACCEPTED = 0, /* acknowledged with 254, in the spool */
	DIME_STORE_SEEN_DELIVERED = 1 /* delivered locally (Maildir or LMTP) */
};

/* Record hash as accepted now, atomically: of several connections or processes putting the
 * same hash at once, exactly one gets *already == 0. Call it before answering 254; if the
 * message then cannot be spooled, dime_store_seen_del takes the record back so that the
 * sender's retry is not answered 255 for a message that was never kept.
 * Returns: DIME_OK, DIME_E_IO, DIME_E_NOMEM. Out: *already 1 if hash was there (nothing
 * changed), 0 if this call inserted it; 0 on failure. Thread-safe per st as the store is. */
DIME_MUST_CHECK int dime_store_seen_put(struct dime_store *st,
					const uint8_t hash[DIME_STORE_SEEN_BYTES], int *already);
/* Look hash up. Returns: DIME_OK, DIME_E_NOTFOUND, DIME_E_IO, DIME_E_NOMEM.
 * Out (each may be NULL): *received (Unix seconds), *state; 0 / ACCEPTED on failure. */
DIME_MUST_CHECK int dime_store_seen_get(struct dime_store *st,
					const uint8_t hash[DIME_STORE_SEEN_BYTES],
					int64_t *received, enum dime_store_seen_state *state);
/* Mark hash delivered (or back to accepted) / forget it.
 * Returns: DIME_OK, DIME_E_NOTFOUND (not recorded), DIME_E_INVALID (state), DIME_E_IO. */
DIME_MUST_CHECK int dime_store_seen_set_state(struct dime_store *st,
					      const uint8_t hash[DIME_STORE_SEEN_BYTES],
					      enum dime_store_seen_state state);
DIME_MUST_CHECK int dime_store_seen_del(struct dime_store *st,
					const uint8_t hash[DIME_STORE_SEEN_BYTES]);

/* Origin signets a DMTP MAIL named and this host could not have (spec Part 7, MAIL): answered
 * 470 at first, 570 once the failures have lasted DIME_STORE_ORIGIN_PERM_S; an entry not
 * referenced for DIME_STORE_ORIGIN_FORGET_S is forgotten (the next failure starts afresh). At
 * most DIME_STORE_ORIGIN_MAX entries. Times are Unix seconds passed in (tests age them). */
#define DIME_STORE_ORIGIN_PERM_S   (72 * 3600)
#define DIME_STORE_ORIGIN_FORGET_S (72 * 3600)
#define DIME_STORE_ORIGIN_MAX	   65536

/* Record a failure to have the origin signet (domain, fingerprint) at now, after forgetting
 * every entry last referenced before now - DIME_STORE_ORIGIN_FORGET_S: a new entry starts at
 * now, a known one keeps its first failure and is referenced at now. One transaction of its
 * own unless called inside dime_store_begin.
 * Returns: DIME_OK, DIME_E_INVALID (domain or fingerprint empty or too long), DIME_E_LIMIT
 * (the table is full: nothing recorded), DIME_E_IO, DIME_E_NOMEM.
 * Out: *first the time of the first recorded failure; 0 on failure. */
DIME_MUST_CHECK int dime_store_origin_fail(struct dime_store *st, int64_t *first,
					   const char *domain, const char *fingerprint,
					   int64_t now);
/* Forget (domain, fingerprint): its signet is available. Takes no write lock when nothing is
 * recorded. Returns: DIME_OK, DIME_E_NOTFOUND (nothing recorded), DIME_E_INVALID, DIME_E_IO. */
DIME_MUST_CHECK int dime_store_origin_clear(struct dime_store *st, const char *domain,
					    const char *fingerprint);

/* What the signet resolver (dime/sigfetch.h) last learned of a signet of another domain, per
 * (ident, kind) with kind DIME_STORE_ORG_SIGNET or DIME_STORE_USER_SIGNET: when (Unix seconds)
 * it was fetched or confirmed current (absent 0; the signet is the latest verified row of
 * objects), or when the other domain said there is none (absent 1: 576). One row per
 * (ident, kind): a put replaces it. ident as dime_store_put takes it (lower-cased).
 * Returns: DIME_OK, DIME_E_INVALID (bad ident or kind), DIME_E_IO, DIME_E_NOMEM. */
DIME_MUST_CHECK int dime_store_fetch_put(struct dime_store *st, const char *ident,
					 enum dime_store_kind kind, int64_t at, int absent);
/* Returns: DIME_OK, DIME_E_NOTFOUND (never recorded), DIME_E_INVALID, DIME_E_IO, DIME_E_NOMEM.
 * Out: *at, *absent (0 and 0 on failure). */
DIME_MUST_CHECK int dime_store_fetch_get(struct dime_store *st, int64_t *at, int *absent,
					 const char *ident, enum dime_store_kind kind);
/* Forget the entry (the next lookup asks the other domain).
 * Returns: DIME_OK, DIME_E_NOTFOUND, DIME_E_INVALID, DIME_E_IO. */
DIME_MUST_CHECK int dime_store_fetch_del(struct dime_store *st, const char *ident,
					 enum dime_store_kind kind);

#ifdef __cplusplus
}
#endif
#endif

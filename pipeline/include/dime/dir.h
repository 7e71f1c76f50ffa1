#ifndef DIME_PIPELINE_DIR_H
#define DIME_PIPELINE_DIR_H
/* The party directory: every hosted private key loaded once into one keystore, indexed by
 * (identity, kind), and a bounded cache of parsed signets indexed by (identity, kind,
 * fingerprint) that also remembers misses for a while. The message path (dime/plmsg.h), and
 * through it `dime msg`, `dime batch` and the daemon, find keys and signets here.
 *
 * Thread-safe: the store handle and the cache sit behind one mutex; the keystore and the key
 * index are read-only after dime_pl_dir_open. A signet returned by dime_pl_dir_signet is a
 * reference: it stays valid until the caller gives it back with dime_pl_dir_release, even if
 * the cache evicts its entry meanwhile (it is freed on the last release). */

#include <stddef.h>
#include <stdint.h>

#include "dime/keys.h"
#include "dime/msg.h"
#include "dime/signet.h"
#include "dime/store.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dime_pl_dir;

#define DIME_PL_DIR_CACHE_DEFAULT    4096u /* cached signets (hits and misses) */
#define DIME_PL_DIR_MISS_TTL_DEFAULT 2000u /* ms a miss is remembered */

/* One hosted key: which identity and version it is, and its id in the keystore. */
struct dime_pl_keyinfo {
	uint32_t id;
	enum dime_store_kind kind; /* DIME_STORE_ORG_KEY or DIME_STORE_USER_KEY */
	uint32_t version;
	char ident[256];
};

struct dime_pl_dir_conf {
	size_t cache_max;     /* entries kept (0: DIME_PL_DIR_CACHE_DEFAULT); at least 1 */
	unsigned miss_ttl_ms; /* 0: DIME_PL_DIR_MISS_TTL_DEFAULT. A signet imported while a
			       * run goes on is found once its miss expires. */
	/* Where the hosted keys are. NULL: loaded from the store, which is opened with its
	 * secrets, into a keystore the directory owns. Otherwise (the key process,
	 * dime/keyproc.h): ks (borrowed, it outlives the directory) holds keys[0..n_keys),
	 * ordered by ident, kind, version, and the store is opened without its secrets
	 * (DIME_STORE_OPEN_NO_SECRETS), so no private key ever enters this process. */
	struct dime_ks *ks;
	const struct dime_pl_keyinfo *keys;
	size_t n_keys;
};

/* What the cache did, for tests and benchmarks. */
struct dime_pl_dir_stats {
	uint64_t hits;	    /* found parsed */
	uint64_t miss_hits; /* a remembered miss answered without the store */
	uint64_t loads;	    /* store lookups (each may parse several versions) */
	uint64_t evictions;
	size_t entries; /* now cached, misses included */
	size_t pinned;	/* entries evicted but still referenced */
};

/* Open the store and load every hosted key (every version: a message may be addressed to a
 * signet that has since been rotated). conf may be NULL (defaults).
 * Returns: DIME_OK, DIME_E_NOTFOUND (no store at the path: none is created; *why names the
 * path), DIME_E_IO, DIME_E_NOMEM. Out: *d (NULL on failure). *why. */
DIME_MUST_CHECK int dime_pl_dir_open(struct dime_pl_dir **d, const char *store_path,
				     const char **why);
DIME_MUST_CHECK int dime_pl_dir_open_conf(struct dime_pl_dir **d, const char *store_path,
					  const struct dime_pl_dir_conf *conf, const char **why);
/* Frees the directory; every reference must have been released. NULL-safe. */
void dime_pl_dir_close(struct dime_pl_dir *d);

const struct dime_ks *dime_pl_dir_ks(const struct dime_pl_dir *d);

/* The signet of ident whose crypto fingerprint is fp (NULL: the latest version), parsed once.
 * A miss is remembered for miss_ttl_ms.
 * Returns: DIME_OK, DIME_E_NOTFOUND (*why: "no signet of this party in the store" or "no stored
 *          version has the fingerprint the message names"), DIME_E_MALFORMED (a damaged stored
 *          signet), DIME_E_IO, DIME_E_NOMEM.
 * Out: *s, a reference (dime_pl_dir_release); NULL on failure. */
DIME_MUST_CHECK int dime_pl_dir_signet(struct dime_pl_dir *d, const struct dime_signet **s,
				       const char **why, const char *ident,
				       enum dime_store_kind kind, const uint8_t *fp);
/* Give back a reference from dime_pl_dir_signet. NULL-safe. */
void dime_pl_dir_release(struct dime_pl_dir *d, const struct dime_signet *s);
/* Release every signet of p and zero it. */
void dime_pl_dir_parties_release(struct dime_pl_dir *d, struct dime_msg_parties *p);

/* The latest hosted key of ident (an index lookup). Returns: DIME_OK or DIME_E_NOTFOUND. */
DIME_MUST_CHECK int dime_pl_dir_key(const struct dime_pl_dir *d, uint32_t *key, const char *ident,
				    enum dime_store_kind kind);

/* The hosted key of kind that opens msg's envelope as actor `as`, with the envelope peeked.
 * D/MIME keyslots are ciphertext: nothing in the clear names the org or user a message is for,
 * so the key is found by opening the actor's keyslot. With `only` (the address or domain the
 * caller knows the message is for: --user, the SMTP recipient's domain) only that identity's
 * keys are tried, newest first, through the index; without it every hosted key of kind is
 * tried, the one that worked last first. The KEKs derived on the way are recorded in memo when
 * it is not NULL (dime_msg_keks: the operation then reuses them).
 * Returns: DIME_OK, DIME_E_NOTFOUND (*why names what was tried), DIME_E_AGAIN (a key could not
 *          be used now: a remote keystore's key process did not answer; retry later).
 * Out: *key, *ident (owned by the directory), *env (zeroed on failure). */
DIME_MUST_CHECK int dime_pl_dir_find(struct dime_pl_dir *d, uint32_t *key, const char **ident,
				     struct dime_msg_envelope *env, const char **why,
				     const uint8_t *msg, size_t len, enum dime_msg_actor as,
				     enum dime_store_kind kind, const char *only,
				     struct dime_msg_keks *memo);

/* Every hosted key of kind, in load order. Out: ids/idents (owned), up to cap (ids and idents
 * may be NULL when cap is 0). Returns: the total count, which may exceed cap. */
size_t dime_pl_dir_keys(const struct dime_pl_dir *d, uint32_t *ids, const char **idents, size_t cap,
			enum dime_store_kind kind);

void dime_pl_dir_stats(struct dime_pl_dir *d, struct dime_pl_dir_stats *st);

#ifdef __cplusplus
}
#endif
#endif

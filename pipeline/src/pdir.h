#ifndef DIME_PIPELINE_PDIR_H
#define DIME_PIPELINE_PDIR_H
/* The party directory of a batch: every hosted private key loaded once into one keystore, and
 * a cache of parsed signets shared by the workers (the same few orgs and users sign most
 * messages, so each signet is read from the store and parsed once per run).
 * Thread-safe: the store handle and the cache sit behind one mutex; the keystore is read-only
 * after pdir_open, and cached signets are immutable until pdir_close. */

#include <stdint.h>

#include "dime/keys.h"
#include "dime/msg.h"
#include "dime/signet.h"
#include "dime/store.h"

struct pdir;

/* Open the store and load every hosted key (every version: a message may be addressed to a
 * signet that has since been rotated). Returns: DIME_OK, DIME_E_IO, DIME_E_NOMEM. *why. */
int pdir_open(struct pdir **d, const char *store_path, const char **why);
void pdir_close(struct pdir *d);

const struct dime_ks *pdir_ks(const struct pdir *d);

/* The signet of ident whose crypto fingerprint is fp (NULL: the latest version), parsed once.
 * Returns: DIME_OK, DIME_E_NOTFOUND (*why), DIME_E_MALFORMED (a damaged stored signet),
 * DIME_E_NOMEM. Out: *s, owned by the directory. */
int pdir_signet(struct pdir *d, const struct dime_signet **s, const char **why, const char *ident,
		enum dime_store_kind kind, const uint8_t *fp);

/* The latest hosted key of ident. Returns: DIME_OK or DIME_E_NOTFOUND. */
int pdir_key(struct pdir *d, uint32_t *key, const char *ident, enum dime_store_kind kind);

/* The hosted key of kind (restricted to ident `only` when not NULL) that opens msg's envelope
 * as actor `as`. The key that worked last is tried first.
 * Returns: DIME_OK, DIME_E_NOTFOUND (*why). Out: *key, *ident (owned by the directory), *env. */
int pdir_find(struct pdir *d, uint32_t *key, const char **ident, struct dime_msg_envelope *env,
	      const char **why, const uint8_t *msg, size_t len, enum dime_msg_actor as,
	      enum dime_store_kind kind, const char *only);

/* Every hosted key of kind, in load order. Out: ids/idents (owned), up to cap. Returns: count. */
size_t pdir_keys(const struct pdir *d, uint32_t *ids, const char **idents, size_t cap,
		 enum dime_store_kind kind);

#endif

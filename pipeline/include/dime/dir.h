#ifndef DIME_PIPELINE_DIR_H
#define DIME_PIPELINE_DIR_H
/* The party directory: every hosted private key loaded once into one keystore, and a cache of
 * parsed signets (the same few orgs and users sign most messages, so each signet is read from
 * the store and parsed once per run). `dime msg` and the batch workers find the keys and
 * signets of a message through it, so both look them up the same way.
 * Thread-safe: the store handle and the cache sit behind one mutex; the keystore is read-only
 * after dime_pl_dir_open, and cached signets are immutable until dime_pl_dir_close. */

#include <stddef.h>
#include <stdint.h>

#include "dime/keys.h"
#include "dime/msg.h"
#include "dime/signet.h"
#include "dime/store.h"

struct dime_pl_dir;

/* Open the store and load every hosted key (every version: a message may be addressed to a
 * signet that has since been rotated). Returns: DIME_OK, DIME_E_IO, DIME_E_NOMEM. *why. */
int dime_pl_dir_open(struct dime_pl_dir **d, const char *store_path, const char **why);
void dime_pl_dir_close(struct dime_pl_dir *d);

const struct dime_ks *dime_pl_dir_ks(const struct dime_pl_dir *d);

/* The signet of ident whose crypto fingerprint is fp (NULL: the latest version), parsed once.
 * Returns: DIME_OK, DIME_E_NOTFOUND (*why), DIME_E_MALFORMED (a damaged stored signet),
 * DIME_E_NOMEM. Out: *s, owned by the directory. */
int dime_pl_dir_signet(struct dime_pl_dir *d, const struct dime_signet **s, const char **why, const char *ident,
		enum dime_store_kind kind, const uint8_t *fp);

/* The latest hosted key of ident. Returns: DIME_OK or DIME_E_NOTFOUND. */
int dime_pl_dir_key(struct dime_pl_dir *d, uint32_t *key, const char *ident, enum dime_store_kind kind);

/* The hosted key of kind (restricted to ident `only` when not NULL) that opens msg's envelope
 * as actor `as`. The key that worked last is tried first. The KEKs derived on the way are
 * recorded in memo when it is not NULL (dime_msg_keks: the operation then reuses them).
 * Returns: DIME_OK, DIME_E_NOTFOUND (*why). Out: *key, *ident (owned by the directory), *env. */
int dime_pl_dir_find(struct dime_pl_dir *d, uint32_t *key, const char **ident, struct dime_msg_envelope *env,
	      const char **why, const uint8_t *msg, size_t len, enum dime_msg_actor as,
	      enum dime_store_kind kind, const char *only, struct dime_msg_keks *memo);

/* Every hosted key of kind, in load order. Out: ids/idents (owned), up to cap. Returns: count. */
size_t dime_pl_dir_keys(const struct dime_pl_dir *d, uint32_t *ids, const char **idents, size_t cap,
		 enum dime_store_kind kind);

/* Everything an actor needs for one message: the hosted key that opens it (kind by actor:
 * org keys for the origin and destination, user keys for the author and recipient; `only`
 * restricts to one identity) and the signets the operation needs, each the version with the
 * fingerprint the envelope names:
 *   origin: author, and the opening org's latest signet as the origin;
 *   destination: origin;
 *   author, recipient: all four; for the recipient of a re-keyed message (docs/rekey.md) the
 *   recipient signet is the stored version the record is for, and the version the envelope
 *   names must be stored too (both are versions of one address in our own store).
 * Returns: DIME_OK, DIME_E_NOTFOUND (no hosted key opens it, or a signet is missing; *why),
 *          the framing errors of dime_msg_rekey_info, DIME_E_MALFORMED (a damaged stored
 *          signet), DIME_E_NOMEM. memo: as for dime_pl_dir_find.
 * Out: *key, *ident (owned by the directory), *env (the opened envelope halves), *p (signets
 *      owned by the directory). */
int dime_pl_dir_msg(struct dime_pl_dir *d, uint32_t *key, const char **ident,
		    struct dime_msg_envelope *env, struct dime_msg_parties *p, const char **why,
		    const uint8_t *msg, size_t len, enum dime_msg_actor as, const char *only,
		    struct dime_msg_keks *memo);

#endif

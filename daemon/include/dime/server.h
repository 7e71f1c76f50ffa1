#ifndef DIME_DAEMON_SERVER_H
#define DIME_DAEMON_SERVER_H
/* dimed's DMTP server glue. For now the store side of the session's queries: the answers to
 * MAIL (origin signet known?), RCPT (domain hosted, destination signet ours?), SGNT, HIST and
 * VRFY, looked up in the embedded store. The listeners and connections that call it from the
 * io loops through the worker pool (dime_pl_pool_call) are not written yet (docs/dimed.md). */

#include "dime/common.h"
#include "dime/dmtp_session.h"
#include "dime/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Answer q (ORIGIN, RCPT, SGNT, HIST or VRFY) from st. Blocking (SQLite): call it on a pool
 * worker, never a loop thread. The rules (docs/dimed.md, "Lookups"):
 *  ORIGIN  250 when a verified signet of the origin domain has exactly that full fingerprint,
 *          else 470 (no side-channel lookup is made, so never 570/575);
 *  RCPT    250 when the domain is hosted here and the fingerprint is the full fingerprint of
 *          one of its org signets, else 576;
 *  SGNT    hosted identities only: the current signet, or the version whose full (or, for a
 *          user, core) fingerprint is given: 270/280, else 576;
 *  HIST    hosted users only: the core signets from START (default: the first) to STOP
 *          (default: the current), oldest first: 290, else 576;
 *  VRFY    271/281 when the (org: full; user: core) fingerprint is the current one, else the
 *          current signet (270/280); a user's full fingerprint, or an identity not hosted: 576.
 * A store failure gives 451 (ORIGIN, RCPT) or 476 (SGNT, HIST, VRFY).
 * Returns: DIME_OK, DIME_E_INVALID (q is a DATA query), DIME_E_NOMEM.
 * Out: *a with a->id = q->id and the verdict; *armor the armored signet(s) for 270/280/290
 *      (malloc'd, the caller frees it; a->armor points into it), else NULL. On failure *a is
 *      zeroed and *armor NULL. Thread-safety: as st's (one store handle per thread). */
DIME_MUST_CHECK int dime_server_lookup(struct dime_store *st, struct dime_dmtp_answer *a,
				       char **armor, const struct dime_dmtp_query *q);

#ifdef __cplusplus
}
#endif
#endif

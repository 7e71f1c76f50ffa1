#ifndef DIME_DAEMON_SERVER_H
#define DIME_DAEMON_SERVER_H
/* dimed's DMTP server glue: listeners and connections on one io loop, one session machine
 * (dime/dmtp_session.h) per connection, and the session's queries answered off the loop through
 * the worker pool: store lookups (dime_server_lookup) and spool writes by dime_pl_pool_call,
 * message verification on an ACCEPT lane (dime_pl_pool_submit). docs/dimed.md. */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"
#include "dime/dmtp_session.h"
#include "dime/store.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dime_dconf;
struct dime_io_loop;
struct dime_pl_pool;
struct dime_spool;
struct dime_deliver;
struct dime_tlsctx;
struct dime_server;

/* What the server runs on; all borrowed for the server's life. */
struct dime_server_env {
	const struct dime_dconf *conf; /* listeners, limits, timeouts, hostname, store path */
	struct dime_io_loop *loop;     /* the server's thread: every call below runs on it */
	struct dime_pl_pool *pool;
	unsigned accept_lane; /* a lane of pool running DIME_PL_MSG_ACCEPT over the store */
	struct dime_spool *spool;
	struct dime_deliver *deliver; /* kicked after each spooled message; may be NULL */
	struct dime_tlsctx *tls;      /* the server takes its own reference (dime_tlsctx_ref) */
	/* MAIL from an origin whose fingerprint the store does not hold: fetch the origin's org
	 * signet (the signet resolver, dime/sigfetch.h) into st and say how it went: DIME_OK (a
	 * validated signet is stored now: the lookup runs again), DIME_E_NOTFOUND (the origin
	 * has no management record, or its host has no signet: 575), DIME_E_BADSIG (what it
	 * serves does not validate: 575), anything else (could not tell now: 470). Runs on a
	 * pool worker and may block on the network. NULL: the store alone decides. */
	int (*fetch_origin)(void *arg, struct dime_store *st, const char *domain, int64_t now);
	void *fetch_arg;
	/* Where an unknown origin's signet is fetched (over DNS and DMTP, for up to
	 * connect_timeout): threads that wait on the network, not pool's CPU workers, which a
	 * slow origin would otherwise hold while DATA verifications and the store lookups of
	 * every other MAIL and RCPT queue. NULL: pool. */
	struct dime_pl_pool *lookup_pool;
};

/* Bind and listen on every conf->listen of mode dmtp or dual (port 0: an ephemeral one); the
 * other modes are the SMTP gateway's services, bound by their own servers.
 * Returns: DIME_OK, DIME_E_IO (why: which address and errno), DIME_E_NOMEM.
 * Out: *out (NULL on failure). */
DIME_MUST_CHECK int dime_server_new(struct dime_server **out, const struct dime_server_env *env,
				    char *why, size_t why_cap);
/* The bound ports, in conf->listen order, 0 for a listener of another mode. Returns: how many
 * were written (at most cap). */
size_t dime_server_ports(const struct dime_server *s, unsigned *ports, size_t cap);
/* New sessions use tls from now on (SIGHUP); sessions in progress keep their context. The
 * server takes its own reference to tls (and dime_server_new to env->tls), and each session to
 * the set it handshakes with, so the caller may drop its reference to a replaced set at once
 * (dime_tlsctx_free): the set lives until the last session using it ends. */
void dime_server_set_tls(struct dime_server *s, struct dime_tlsctx *tls);
/* New DATA verifications go to lane from now on (SIGHUP after a key rotation: a lane over the
 * new keys); jobs already queued finish on theirs. On the loop thread. */
void dime_server_set_accept_lane(struct dime_server *s, unsigned lane);
/* Stop accepting; idle sessions get 421 now, busy ones after their transaction; idle(arg) runs
 * on the loop once no connection is left. */
void dime_server_drain(struct dime_server *s, void (*idle)(void *arg), void *arg);
/* Connections open now. */
size_t dime_server_n_conns(const struct dime_server *s);
/* Close the listeners and free. Call it once no connection is left (after drain's idle
 * callback): a connection lives until its last pool job has completed. NULL-safe. */
void dime_server_free(struct dime_server *s);

/* Answer q (ORIGIN, RCPT, SGNT, HIST or VRFY) from st at time now (Unix seconds; tests pass
 * an aged one). Blocking (SQLite): call it on a pool worker, never a loop thread. The rules
 * (docs/dimed.md, "Lookups"):
 *  ORIGIN  250 when a verified org signet of the origin domain has that full (or crypto)
 *          fingerprint and still verifies (its signatures against its POK); 575 when it does
 *          not, when the store holds the fingerprint only as a pending (unverifiable) signet,
 *          or when the fingerprint is unknown and the domain's latest stored org signet fails
 *          verification; else the failure is recorded (dime_store_origin_fail: a write) and
 *          answered 470, or 570 once failures for that (domain, fingerprint) have lasted 72
 *          hours (DIME_STORE_ORIGIN_PERM_S); an entry unreferenced for a further 72 hours is
 *          forgotten. A 250 clears the record. No side-channel lookup is made yet (resolver);
 *  RCPT    250 when the domain is hosted here and the fingerprint is the full (or crypto, as
 *          D/MIME envelopes carry it) fingerprint of one of its org signets, else 576;
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
				       char **armor, const struct dime_dmtp_query *q, int64_t now);

/* The stale threshold for user signets (spec Part 7, DATA: "current, or within the expiry
 * threshold for stale user signets"): 30 days, the management record's default expiry, i.e.
 * how long a sender's resolver may keep using a signet it fetched. docs/dimed.md. */
#define DIME_SERVER_STALE_S (30 * 86400)

/* 586: was the message encrypted to a version of recipient's user signet that stopped being
 * current (a later version was stored) more than DIME_SERVER_STALE_S before now? fp is the
 * base64 crypto fingerprint the envelope's chunk 5 names (what an ACCEPT job reports: "ACCEPT
 * <recipient> <fp>"). A recipient or fingerprint the store does not hold (verified) is not
 * stale: nothing says it expired. Blocking (SQLite): a pool worker.
 * Returns: DIME_OK, DIME_E_IO, DIME_E_NOMEM. Out: *stale, 0 on failure. */
DIME_MUST_CHECK int dime_server_rcpt_stale(struct dime_store *st, int *stale, const char *recipient,
					   const char *fp, int64_t now);

/* The transaction identifier of 254 ACCEPTED= and 255 DUPLICATE= (spec, DATA): SHA-512 of the
 * binary message, base64 without padding, exactly 86 characters. The same bytes key the
 * duplicate table (dime_store_seen_*).
 * Out: hash (64 bytes), id (NUL-terminated); both zeroed on failure.
 * Returns: DIME_OK or DIME_E_CRYPTO. */
DIME_MUST_CHECK int dime_server_msg_id(uint8_t hash[64], char id[DIME_DMTP_SESS_HASH_CHARS + 1],
				       const uint8_t *msg, size_t len);

/* The DATA verdict for the rc of an ACCEPT job (dime_pl_msg_accept) that failed:
 *  framing errors (TRUNCATED, MALFORMED, TRAILING, LIMIT, INVALID) -> INVALID (451 DATA
 *  CORRUPTED: not a D/MIME message we can read);
 *  BADSIG -> BAD_ORIGIN (578: the origin's signature, or a keyslot, does not verify; toward a
 *  peer these are one, STYLE.md section 3);
 *  NOTFOUND -> UNKNOWN_RECIPIENT (510: no hosted party for the envelope);
 *  anything else (NOMEM, IO, AGAIN, CRYPTO, NOSPACE) -> TEMPFAIL (451, retry).
 * DIME_OK is no failure: ACCEPTED (the caller spools before it answers). */
enum dime_dmtp_verdict dime_server_accept_verdict(int rc);

#ifdef __cplusplus
}
#endif
#endif

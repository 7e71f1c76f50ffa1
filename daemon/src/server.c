/* dimed's DMTP server glue. The store side of the session's queries (each lookup reads the
 * versions of one identity's signets and picks the one the command names; signets are served
 * only for identities this OPA hosts, spec Part 7 SGNT), the DATA identifier and verdicts, and
 * the network side: listeners, one session per connection, jobs on the worker pool. */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <sodium.h>

#include "dime/codec.h"
#include "dime/dconf.h"
#include "dime/deliver.h"
#include "dime/dlog.h"
#include "dime/loop.h"
#include "dime/plmsg.h"
#include "dime/pool.h"
#include "dime/server.h"
#include "dime/signet.h"
#include "dime/spool.h"
#include "dime/tlsctx.h"

#include "conn_int.h"

/* The rows of one (ident, kind), oldest first. */
struct srv_rows {
	struct dime_store_row *r;
	size_t n, cap;
	int nomem;
};

static int
srv_row_add(const struct dime_store_row *row, void *arg)
{
	struct srv_rows *rs = arg;

	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 8;
		struct dime_store_row *nr = realloc(rs->r, cap * sizeof(*nr));

		if (nr == NULL) {
			rs->nomem = 1;
			return 1;
		}
		rs->r = nr;
		rs->cap = cap;
	}
	rs->r[rs->n++] = *row;
	return 0;
}

/* Pending rows only (dime_store_list_all walks both states). */
static int
srv_row_add_pending(const struct dime_store_row *row, void *arg)
{
	return row->state == DIME_STORE_PENDING ? srv_row_add(row, arg) : 0;
}

/* Returns: DIME_OK (rs filled, possibly empty), DIME_E_IO, DIME_E_NOMEM. An ident the store
 * refuses is simply unknown. pending: the pending rows instead of the verified ones. */
static int
srv_rows_get_state(struct dime_store *st, struct srv_rows *rs, const char *ident,
		   enum dime_store_kind kind, int pending)
{
	int rc;

	memset(rs, 0, sizeof(*rs));
	rc = pending ? dime_store_list_all(st, ident, kind, srv_row_add_pending, rs)
		     : dime_store_list(st, ident, kind, srv_row_add, rs);
	if (rs->nomem)
		return DIME_E_NOMEM;
	if (rc == DIME_E_INVALID)
		return DIME_OK;
	return rc;
}

static int
srv_rows_get(struct dime_store *st, struct srv_rows *rs, const char *ident,
	     enum dime_store_kind kind)
{
	return srv_rows_get_state(st, rs, ident, kind, 0);
}

/* The hosted rows only: a lookup for an identity we do not serve finds nothing. */
static int
srv_hosted(const struct srv_rows *rs)
{
	return rs->n > 0 && rs->r[rs->n - 1].hosted;
}

static int
srv_load(struct dime_store *st, struct dime_signet **s, const struct dime_store_row *row)
{
	uint8_t *blob = NULL;
	size_t len = 0;
	int rc;

	*s = NULL;
	rc = dime_store_get_row(st, &blob, &len, row->rowid);
	if (rc == DIME_OK)
		rc = dime_signet_parse(s, NULL, blob, len);
	free(blob);
	return rc;
}

/* Append the armor of s (split at a core level when core) to *out. */
static int
srv_armor_add(char **out, size_t *out_len, const struct dime_signet *s, int core)
{
	struct dime_signet *c = NULL;
	const struct dime_signet *use = s;
	size_t need = 0, got = 0;
	char *nb;
	int rc;

	if (core) {
		rc = dime_signet_split(&c, s, DIME_LEVEL_CRYPTO);
		if (rc != DIME_OK)
			return rc;
		use = c;
	}
	rc = dime_signet_armor(NULL, 0, &need, use);
	if (rc != DIME_OK)
		goto out;
	nb = realloc(*out, *out_len + need + 1);
	if (nb == NULL) {
		rc = DIME_E_NOMEM;
		goto out;
	}
	*out = nb;
	rc = dime_signet_armor(nb + *out_len, need + 1, &got, use);
	if (rc == DIME_OK)
		*out_len += got;
	(*out)[*out_len] = 0;
out:
	dime_signet_free(c);
	return rc;
}

/* Does row (or its signet's core fingerprint, when core) have fingerprint fp? */
static int
srv_fp_match(struct dime_store *st, const struct dime_store_row *row, const char *fp, int core,
	     int *err)
{
	struct dime_signet *s = NULL;
	char b64[DIME_FP_B64_LEN + 1];
	int rc, hit;

	if (!core)
		return strcmp(row->fingerprint, fp) == 0;
	if ((rc = srv_load(st, &s, row)) != DIME_OK ||
	    (rc = dime_signet_fingerprint_b64(b64, s, DIME_FP_CRYPTO)) != DIME_OK) {
		dime_signet_free(s);
		*err = rc;
		return 0;
	}
	hit = strcmp(b64, fp) == 0;
	dime_signet_free(s);
	return hit;
}

/* Index of the row matching fp (full, or also core/crypto when core), or -1. */
static long
srv_find(struct dime_store *st, const struct srv_rows *rs, const char *fp, int core, int *err)
{
	for (size_t i = rs->n; i-- > 0;) {
		if (srv_fp_match(st, &rs->r[i], fp, 0, err))
			return (long)i;
		if (core && srv_fp_match(st, &rs->r[i], fp, 1, err))
			return (long)i;
		if (*err != DIME_OK)
			return -1;
	}
	return -1;
}

static int
srv_serve(struct dime_store *st, struct dime_dmtp_answer *a, char **armor, size_t *armor_len,
	  const struct dime_store_row *row, int user)
{
	struct dime_signet *s = NULL;
	int rc = srv_load(st, &s, row);

	if (rc == DIME_OK)
		rc = srv_armor_add(armor, armor_len, s, 0);
	dime_signet_free(s);
	if (rc == DIME_OK)
		a->verdict = user ? DIME_DMTP_V_USER_SIGNET : DIME_DMTP_V_ORG_SIGNET;
	return rc;
}

static int
srv_sgnt(struct dime_store *st, struct dime_dmtp_answer *a, char **armor, size_t *armor_len,
	 const struct dime_dmtp_cmd *c)
{
	int user = (c->flags & DIME_DMTP_F_MAILBOX) != 0, err = DIME_OK, rc;
	struct srv_rows rs;
	long at;

	rc = srv_rows_get(st, &rs, c->addr, user ? DIME_STORE_USER_SIGNET : DIME_STORE_ORG_SIGNET);
	if (rc != DIME_OK)
		goto out;
	a->verdict = DIME_DMTP_V_UNAVAILABLE;
	if (!srv_hosted(&rs))
		goto out;
	at = (long)rs.n - 1;
	if (c->flags & DIME_DMTP_F_FP)
		at = srv_find(st, &rs, c->fp, user, &err);
	if ((rc = err) != DIME_OK || at < 0)
		goto out;
	rc = srv_serve(st, a, armor, armor_len, &rs.r[at], user);
out:
	free(rs.r);
	return rc;
}

static int
srv_vrfy(struct dime_store *st, struct dime_dmtp_answer *a, char **armor, size_t *armor_len,
	 const struct dime_dmtp_cmd *c)
{
	int user = (c->flags & DIME_DMTP_F_MAILBOX) != 0, err = DIME_OK, rc;
	struct srv_rows rs;
	const struct dime_store_row *cur;

	rc = srv_rows_get(st, &rs, c->addr, user ? DIME_STORE_USER_SIGNET : DIME_STORE_ORG_SIGNET);
	if (rc != DIME_OK)
		goto out;
	a->verdict = DIME_DMTP_V_UNAVAILABLE;
	if (!srv_hosted(&rs))
		goto out;
	cur = &rs.r[rs.n - 1];
	/* Users are checked by core fingerprint; a full one is refused (spec, VRFY). */
	if (user && strcmp(cur->fingerprint, c->fp) == 0)
		goto out;
	if (srv_fp_match(st, cur, c->fp, user, &err)) {
		a->verdict = user ? DIME_DMTP_V_USER_CURRENT : DIME_DMTP_V_ORG_CURRENT;
		goto out;
	}
	if ((rc = err) != DIME_OK)
		goto out;
	rc = srv_serve(st, a, armor, armor_len, cur, user);
out:
	free(rs.r);
	return rc;
}

static int
srv_hist(struct dime_store *st, struct dime_dmtp_answer *a, char **armor, size_t *armor_len,
	 const struct dime_dmtp_cmd *c)
{
	struct srv_rows rs;
	long from = 0, to;
	int err = DIME_OK, rc;

	rc = srv_rows_get(st, &rs, c->addr, DIME_STORE_USER_SIGNET);
	if (rc != DIME_OK)
		goto out;
	a->verdict = DIME_DMTP_V_UNAVAILABLE;
	if (!srv_hosted(&rs))
		goto out;
	to = (long)rs.n - 1;
	if (c->flags & DIME_DMTP_F_START)
		from = srv_find(st, &rs, c->start, 1, &err);
	if (err == DIME_OK && (c->flags & DIME_DMTP_F_STOP))
		to = srv_find(st, &rs, c->stop, 1, &err);
	if ((rc = err) != DIME_OK || from < 0 || to < from)
		goto out;
	for (long i = from; i <= to && rc == DIME_OK; i++) {
		struct dime_signet *s = NULL;

		rc = srv_load(st, &s, &rs.r[i]);
		if (rc == DIME_OK)
			rc = srv_armor_add(armor, armor_len, s, 1);
		dime_signet_free(s);
	}
	if (rc == DIME_OK)
		a->verdict = DIME_DMTP_V_HISTORY;
out:
	free(rs.r);
	return rc;
}

/* Does the stored org signet of row still verify (its signatures against its own POK; the POK
 * itself was checked against the management record when it was stored)? Returns: DIME_OK with
 * *valid set, or a store error (DIME_E_IO, DIME_E_NOMEM). Bytes that no longer parse are
 * invalid, not an error. */
static int
srv_org_valid(struct dime_store *st, const struct dime_store_row *row, int *valid)
{
	uint8_t *blob = NULL, pok[DIME_ED25519_PUB_BYTES];
	struct dime_signet *s = NULL;
	struct dime_signet_verdict v;
	struct dime_signet_trust trust;
	size_t len = 0;
	int rc;

	*valid = 0;
	rc = dime_store_get_row(st, &blob, &len, row->rowid);
	if (rc != DIME_OK)
		goto out;
	memset(&trust, 0, sizeof(trust));
	trust.poks = (const uint8_t(*)[DIME_ED25519_PUB_BYTES])pok;
	trust.n_poks = 1;
	*valid = dime_signet_parse(&s, NULL, blob, len) == DIME_OK &&
		 dime_signet_signing_key(s, pok) == DIME_OK &&
		 dime_signet_validate(&v, s, &trust) == DIME_OK && v.kind == DIME_SIGNET_VALID;
out:
	dime_signet_free(s);
	free(blob);
	return rc;
}

/* MAIL FROM=<d> FINGERPRINT=[fp] (spec Part 7, MAIL; docs/dimed.md "Lookups"): 250 when a
 * verified org signet of d has fp (full or crypto) and still verifies; 575 when that signet no
 * longer verifies, when fp is held only by a pending (unverifiable) signet of d, or when fp is
 * unknown and d's latest verified org signet fails verification; otherwise the failure is
 * recorded (dime_store_origin_fail) and answered 470, or 570 once the failures to have this
 * (d, fp) have lasted 72 hours. */
static int
srv_origin(struct dime_store *st, struct dime_dmtp_answer *a, const struct dime_dmtp_cmd *c,
	   int64_t now)
{
	struct srv_rows rs, pend;
	int rc, err = DIME_OK, valid = 0;
	int64_t first = 0;
	long at;

	memset(&pend, 0, sizeof(pend));
	if ((rc = srv_rows_get(st, &rs, c->addr, DIME_STORE_ORG_SIGNET)) != DIME_OK)
		goto out;
	at = srv_find(st, &rs, c->fp, 1, &err);
	if ((rc = err) != DIME_OK)
		goto out;
	if (at >= 0) {
		if ((rc = srv_org_valid(st, &rs.r[at], &valid)) != DIME_OK)
			goto out;
		a->verdict = valid ? DIME_DMTP_V_OK : DIME_DMTP_V_ORIGIN_INVALID;
		if (valid && (rc = dime_store_origin_clear(st, c->addr, c->fp)) == DIME_E_NOTFOUND)
			rc = DIME_OK;
		goto out;
	}
	if ((rc = srv_rows_get_state(st, &pend, c->addr, DIME_STORE_ORG_SIGNET, 1)) != DIME_OK)
		goto out;
	at = srv_find(st, &pend, c->fp, 1, &err);
	if ((rc = err) != DIME_OK)
		goto out;
	if (at >= 0) {
		a->verdict = DIME_DMTP_V_ORIGIN_INVALID;
		goto out;
	}
	if (rs.n > 0) {
		if ((rc = srv_org_valid(st, &rs.r[rs.n - 1], &valid)) != DIME_OK)
			goto out;
		if (!valid) {
			a->verdict = DIME_DMTP_V_ORIGIN_INVALID;
			goto out;
		}
	}
	rc = dime_store_origin_fail(st, &first, c->addr, c->fp, now);
	if (rc == DIME_E_LIMIT || rc == DIME_E_INVALID) {
		/* Not recorded (table full; a name the store refuses): 470, never 570. */
		first = now;
		rc = DIME_OK;
	}
	if (rc == DIME_OK)
		a->verdict = now - first >= DIME_STORE_ORIGIN_PERM_S ? DIME_DMTP_V_ORIGIN_PERM
								     : DIME_DMTP_V_ORIGIN_TEMP;
out:
	free(rs.r);
	free(pend.r);
	return rc;
}

/* RCPT: is there an org signet of the domain with this full (or crypto) fingerprint, and is
 * the domain ours? */
static int
srv_rcpt(struct dime_store *st, struct dime_dmtp_answer *a, const struct dime_dmtp_cmd *c)
{
	struct srv_rows rs;
	int rc = srv_rows_get(st, &rs, c->addr, DIME_STORE_ORG_SIGNET), err = DIME_OK;

	if (rc == DIME_OK) {
		/* Full fingerprints per WIRE.md; the crypto one too, which is what a D/MIME
		 * envelope carries and so what a sender taking it from there puts in RCPT. */
		int ok = srv_hosted(&rs) && srv_find(st, &rs, c->fp, 1, &err) >= 0;

		a->verdict = ok ? DIME_DMTP_V_OK : DIME_DMTP_V_RCPT_INVALID;
	}
	free(rs.r);
	return rc;
}

int
dime_server_lookup(struct dime_store *st, struct dime_dmtp_answer *a, char **armor,
		   const struct dime_dmtp_query *q, int64_t now)
{
	size_t armor_len = 0;
	int rc, sig = 0;

	memset(a, 0, sizeof(*a));
	*armor = NULL;
	switch (q->kind) {
	case DIME_DMTP_Q_ORIGIN: rc = srv_origin(st, a, &q->cmd, now); break;
	case DIME_DMTP_Q_RCPT: rc = srv_rcpt(st, a, &q->cmd); break;
	case DIME_DMTP_Q_SGNT:
		sig = 1;
		rc = srv_sgnt(st, a, armor, &armor_len, &q->cmd);
		break;
	case DIME_DMTP_Q_HIST:
		sig = 1;
		rc = srv_hist(st, a, armor, &armor_len, &q->cmd);
		break;
	case DIME_DMTP_Q_VRFY:
		sig = 1;
		rc = srv_vrfy(st, a, armor, &armor_len, &q->cmd);
		break;
	default: return DIME_E_INVALID;
	}
	if (rc == DIME_E_NOMEM) {
		free(*armor);
		*armor = NULL;
		memset(a, 0, sizeof(*a));
		return rc;
	}
	if (rc != DIME_OK) {
		/* The store failed (I/O, a row that does not parse): the peer may retry. */
		free(*armor);
		*armor = NULL;
		a->verdict = sig ? DIME_DMTP_V_SIGNET_TEMP : DIME_DMTP_V_TEMPFAIL;
	}
	if (*armor != NULL && a->verdict != DIME_DMTP_V_ORG_SIGNET &&
	    a->verdict != DIME_DMTP_V_USER_SIGNET && a->verdict != DIME_DMTP_V_HISTORY) {
		free(*armor);
		*armor = NULL;
	}
	a->id = q->id;
	a->armor = *armor;
	a->armor_len = *armor != NULL ? strlen(*armor) : 0;
	return DIME_OK;
}

int
dime_server_rcpt_stale(struct dime_store *st, int *stale, const char *recipient, const char *fp,
		       int64_t now)
{
	struct srv_rows rs;
	int err = DIME_OK, rc;
	long at;

	*stale = 0;
	if ((rc = srv_rows_get(st, &rs, recipient, DIME_STORE_USER_SIGNET)) != DIME_OK)
		goto out;
	/* The envelope names the signet by its crypto fingerprint (reference-format 3.5). */
	at = srv_find(st, &rs, fp, 1, &err);
	if ((rc = err) != DIME_OK)
		goto out;
	/* Not current: a later version replaced it, at that version's creation. */
	if (at >= 0 && (size_t)at + 1 < rs.n)
		*stale = now - rs.r[at + 1].created > DIME_SERVER_STALE_S;
out:
	free(rs.r);
	if (rc != DIME_OK)
		*stale = 0;
	return rc;
}

int
dime_server_msg_id(uint8_t hash[64], char id[DIME_DMTP_SESS_HASH_CHARS + 1], const uint8_t *msg,
		   size_t len)
{
	size_t n = 0;

	memset(id, 0, DIME_DMTP_SESS_HASH_CHARS + 1);
	if (crypto_hash_sha512(hash, len > 0 ? msg : (const uint8_t *)"", len) != 0 ||
	    dime_b64_encode(id, DIME_DMTP_SESS_HASH_CHARS + 1, &n, hash, 64, DIME_B64_NOPAD) !=
		DIME_OK ||
	    n != DIME_DMTP_SESS_HASH_CHARS) {
		memset(hash, 0, 64);
		memset(id, 0, DIME_DMTP_SESS_HASH_CHARS + 1);
		return DIME_E_CRYPTO;
	}
	return DIME_OK;
}

enum dime_dmtp_verdict
dime_server_accept_verdict(int rc)
{
	switch (rc) {
	case DIME_OK: return DIME_DMTP_V_ACCEPTED;
	case DIME_E_TRUNCATED:
	case DIME_E_MALFORMED:
	case DIME_E_TRAILING:
	case DIME_E_LIMIT:
	case DIME_E_INVALID: return DIME_DMTP_V_INVALID;
	case DIME_E_BADSIG: return DIME_DMTP_V_BAD_ORIGIN;
	case DIME_E_NOTFOUND: return DIME_DMTP_V_UNKNOWN_RECIPIENT;
	default: return DIME_DMTP_V_TEMPFAIL;
	}
}

/* ==== the network side: listeners, connections, jobs ==== */

#define SRV_STORES    64u    /* store handles kept for the workers */
#define SRV_GC_MAX    128u   /* DATA commits in one group commit */
#define SRV_WAIT_TICK 10u    /* ms between retries of jobs the full pool refused */
#define SRV_WAIT_MAX  30000u /* ms a refused job may wait for room, then 451 */

struct srv_conn;

/* LOOKUP answers from the store on the CPU workers; FETCH, only for an origin the store does
 * not hold, fetches its signet on the lookup workers (it waits on the network) and looks again. */
enum srv_stage { SRV_LOOKUP = 1, SRV_FETCH, SRV_PREP, SRV_ACCEPT, SRV_COMMIT };

/* One query in flight. The session (and the message it borrows to the query) lives until the
 * job completes: a connection that dies meanwhile is freed by the completion. */
struct srv_job {
	struct dime_pl_pool_job pj;
	struct srv_conn *c;
	enum srv_stage stage;
	const struct dime_dmtp_query *q;
	struct dime_dmtp_answer a;
	char *armor;
	uint8_t *bin;
	size_t bin_len;
	uint8_t hash[64];
	int decided; /* a.verdict is final */
	int delivered_before;
	struct dime_pl_pool *on; /* the pool the current step was queued on (cancel) */
	char recipient[256];
	char rcpt_fp[DIME_FP_B64_LEN + 1]; /* the recipient signet's crypto fingerprint (ACCEPT) */
	struct srv_job *gc_next;	   /* in the server's group-commit queue */
};

struct srv_conn {
	struct dime_server *srv;
	struct dime_io_conn *io;
	struct dime_dmtp_sess *sess;
	struct srv_conn *prev, *next;
	struct srv_job *job;
	SSL_CTX *tls;		     /* the context this session started with (SIGHUP keeps it) */
	struct dime_tlsctx *tlsset;  /* tls's set: a reference held until the connection ends */
	struct dime_io_timer *greet; /* the banner's pause (greet_pause), until it fires */
	struct dime_io_timer *line_timer; /* the line deadline (srv_line_arm), NULL: none */
	struct dime_conn_held held;
	int implicit, started, closing, dead, paused;
	/* Back-pressure: job was refused by the full pool; it waits in the server's list (in
	 * arrival order) with reading stopped, and goes in when a retry finds room. */
	int waiting;
	uint64_t wait_since; /* loop ms */
	struct srv_conn *wnext;
	char ip[DIME_CONN_IP_CAP];
};

struct dime_server {
	struct dime_server_env env;
	struct dime_conn_listener ls[DIME_DCONF_MAX_LISTEN];
	size_t n_ls;
	struct srv_conn *conns;
	size_t n_conns;
	int draining;
	void (*idle)(void *arg);
	void *idle_arg;
	pthread_mutex_t mu; /* the store handles below, used by pool workers */
	struct dime_store *stores[SRV_STORES];
	size_t n_stores;
	/* Group commit: DATA commits queued here while one worker call (the committer) spools
	 * them a group at a time; gc_active while that call is queued or running. */
	pthread_mutex_t gc_mu;
	pthread_cond_t gc_idle;
	struct srv_job *gc_head, *gc_tail;
	size_t gc_len; /* queued, bounded by queue_max as the pool's queue is */
	int gc_active;
	/* Connections whose job waits for room in the pool, oldest first; the timer retries. */
	struct srv_conn *w_head, *w_tail;
	struct dime_io_timer *w_timer;
};

/* ---- store handles for the workers (one per thread at a time) ---- */

static struct dime_store *
srv_store_take(struct dime_server *s)
{
	struct dime_store *st = NULL;
	char err[256];

	pthread_mutex_lock(&s->mu);
	if (s->n_stores > 0)
		st = s->stores[--s->n_stores];
	pthread_mutex_unlock(&s->mu);
	/* lookups need signets and the duplicate table, never a private key */
	if (st == NULL &&
	    dime_store_open_flags(&st, s->env.conf->store,
				  DIME_STORE_OPEN_EXISTING | DIME_STORE_OPEN_NO_SECRETS, err,
				  sizeof(err)) != DIME_OK) {
		dime_dlog(DIME_DLOG_ERROR, "store.open", "why=\"%s\"", err);
		st = NULL;
	}
	return st;
}

static void
srv_store_give(struct dime_server *s, struct dime_store *st)
{
	if (st == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	if (s->n_stores < SRV_STORES) {
		s->stores[s->n_stores++] = st;
		st = NULL;
	}
	pthread_mutex_unlock(&s->mu);
	dime_store_close(st);
}

/* ---- connections ---- */

static void srv_pump(struct srv_conn *c);

/* ---- the line deadline ----
 * timeout_cmd and timeout_data count from the end of the last complete line received (or from
 * the reply the peer waited for), not from its last byte: the io idle timer is re-armed by every
 * packet, so a peer trickling one byte at a time, or TLS records without data, would hold the
 * session for ever (spec Part 7: the timeouts count from the last complete line; ECOSYSTEM
 * P17). The same timer bounds a TLS handshake as a whole (timeout_tls: implicit TLS, or after
 * STARTTLS), however slowly its records trickle in (P18). The idle timer stays as the bound for
 * an idle peer. As smtpd.c's. */

/* A deadline passed: during a TLS handshake a close without a word (nothing may follow in
 * plaintext); else the session's 421 and a close. */
static void
srv_expire(struct srv_conn *c, int line)
{
	int tls = !c->started || (dime_dmtp_sess_actions(c->sess) & DIME_DMTP_ACT_TLS) != 0;

	dime_dlog(DIME_DLOG_INFO, "conn.timeout", "peer=%s line=%d tls=%d", c->ip, line, tls);
	if (tls) {
		c->closing = 1;
		dime_io_conn_close(c->io, 0);
		return;
	}
	dime_dmtp_sess_timeout(c->sess);
	srv_pump(c);
}

static void
srv_line_fire(void *arg)
{
	struct srv_conn *c = arg;

	c->line_timer = NULL;
	if (!c->closing)
		srv_expire(c, 1);
}

static void
srv_line_stop(struct srv_conn *c)
{
	dime_conn_deadline_stop(&c->line_timer);
}

static void
srv_line_arm(struct srv_conn *c, unsigned ms)
{
	if (!c->closing)
		dime_conn_deadline_arm(&c->line_timer, c->srv->env.loop, ms, srv_line_fire, c);
}

static void
srv_conn_free(struct srv_conn *c)
{
	struct dime_server *s = c->srv;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->n_conns--;
	srv_line_stop(c);
	dime_dmtp_sess_free(c->sess);
	dime_tlsctx_free(c->tlsset);
	dime_conn_held_free(&c->held);
	free(c);
	if (s->draining && s->n_conns == 0 && s->idle != NULL)
		s->idle(s->idle_arg);
}

/* Reading stops while the job waits for the pool, or while unread input piles up; it resumes
 * when neither holds. */
static void
srv_read_update(struct srv_conn *c)
{
	int want = c->waiting || c->held.len >= DIME_CONN_HELD_PAUSE;

	if (c->closing || c->io == NULL || want == c->paused)
		return;
	c->paused = want;
	dime_io_conn_pause(c->io, want);
}

static void
srv_job_free(struct srv_job *j)
{
	dime_pl_msg_job_clear(&j->pj.mj);
	free(j->armor);
	free(j->bin);
	free(j);
}

static void
srv_send(struct srv_conn *c)
{
	size_t n = 0;
	const uint8_t *p = dime_dmtp_sess_out(c->sess, &n);

	if (n == 0)
		return;
	if (dime_io_conn_send(c->io, p, n) != DIME_OK) {
		/* The peer does not read its replies: nothing more can be said in order. */
		c->closing = 1;
		dime_io_conn_close(c->io, 0);
	}
	dime_dmtp_sess_out_done(c->sess, n);
}

/* ---- jobs ---- */

/* An origin the store does not know yet: fetch its org signet, then look again (docs/dimed.md
 * "Lookups"). A 470 that has lasted 72 hours (570) is final; no fetch then. */
static int
srv_fetch_origin(const struct dime_server *s, struct dime_store *st, struct dime_dmtp_answer *a,
		 char **armor, const struct dime_dmtp_query *q, int64_t now)
{
	int rc;

	if (s->env.fetch_origin == NULL || q->kind != DIME_DMTP_Q_ORIGIN ||
	    a->verdict != DIME_DMTP_V_ORIGIN_TEMP)
		return DIME_OK;
	rc = s->env.fetch_origin(s->env.fetch_arg, st, q->cmd.addr, now);
	if (rc == DIME_E_NOTFOUND || rc == DIME_E_BADSIG) {
		a->verdict = DIME_DMTP_V_ORIGIN_INVALID;
		return DIME_OK;
	}
	if (rc != DIME_OK)
		return DIME_OK; /* 470 stands: the sender retries */
	return dime_server_lookup(st, a, armor, q, now);
}

/* A lookup step: fetch 0, the store's answer; 1, the origin's signet fetched, then the store
 * asked again. Any failure is 451 (TEMPFAIL). */
static void
srv_lookup_step(struct srv_job *j, int fetch)
{
	struct dime_server *s = j->c->srv;
	struct dime_store *st = srv_store_take(s);
	int64_t now = (int64_t)time(NULL);
	int rc = st == NULL ? DIME_E_IO
		 : fetch    ? srv_fetch_origin(s, st, &j->a, &j->armor, j->q, now)
			    : dime_server_lookup(st, &j->a, &j->armor, j->q, now);

	if (rc != DIME_OK) {
		free(j->armor);
		j->armor = NULL;
		memset(&j->a, 0, sizeof(j->a));
		j->a.verdict = DIME_DMTP_V_TEMPFAIL;
	}
	srv_store_give(s, st);
}

static void
srv_run_lookup(struct dime_pl_pool_job *pj, void *arg)
{
	(void)pj;
	srv_lookup_step(arg, 0);
}

/* Does the lookup's answer call for a fetch (an origin the store does not hold)? */
static int
srv_wants_fetch(const struct srv_job *j)
{
	return j->c->srv->env.fetch_origin != NULL && j->q->kind == DIME_DMTP_Q_ORIGIN &&
	       j->a.verdict == DIME_DMTP_V_ORIGIN_TEMP;
}

static void
srv_run_fetch(struct dime_pl_pool_job *pj, void *arg)
{
	(void)pj;
	srv_lookup_step(arg, 1);
}

/* DATA, first step: the armor to binary, the identifier, and a message seen before. */
static void
srv_run_prep(struct dime_pl_pool_job *pj, void *arg)
{
	struct srv_job *j = arg;
	struct dime_store *st;
	const char *why = "";
	int armored = 0, rc;
	char id[DIME_DMTP_SESS_HASH_CHARS + 1];

	(void)pj;
	rc = dime_pl_msg_decode(&j->bin, &j->bin_len, &armored, &why, DIME_PL_MSG_ACCEPT, 0,
				j->q->data, j->q->data_len);
	if (rc != DIME_OK) {
		j->a.verdict = rc == DIME_E_NOMEM ? DIME_DMTP_V_TEMPFAIL : DIME_DMTP_V_INVALID;
		j->decided = 1;
		return;
	}
	if (dime_server_msg_id(j->hash, id, j->bin, j->bin_len) != DIME_OK) {
		j->a.verdict = DIME_DMTP_V_TEMPFAIL;
		j->decided = 1;
		return;
	}
	memcpy(j->a.hash, id, sizeof(j->a.hash));
	if ((st = srv_store_take(j->c->srv)) == NULL) {
		j->a.verdict = DIME_DMTP_V_TEMPFAIL;
		j->decided = 1;
		return;
	}
	rc = dime_store_seen_get(st, j->hash, NULL, NULL);
	srv_store_give(j->c->srv, st);
	/* 255 for a message already accepted here (its 254 was sent: it is spooled or
	 * delivered). */
	if (rc == DIME_OK) {
		j->a.verdict = DIME_DMTP_V_DUPLICATE;
		j->decided = 1;
	} else if (rc != DIME_OK && rc != DIME_E_NOTFOUND) {
		j->a.verdict = DIME_DMTP_V_TEMPFAIL;
		j->decided = 1;
	}
}

/* DATA, last step: the durable spool write, then the hash record, before 254. The spool
 * decides duplicates (the name is the hash; a queued one is never replaced), so a crash
 * between the two steps loses nothing: the sender, without its 254, sends again, and meets
 * the spooled copy (255) or, once it is delivered, a delivery that adds no second copy.
 * Commits run as a group (the ones that arrived while the previous group was being written):
 * each file is still written and fsynced, but queue/ is fsynced once and the seen records go
 * in one transaction, which is what bounded dimed at one fsync-bound commit per message. */
static void
srv_commit_group(struct dime_server *s, struct srv_job *g)
{
	struct dime_spool_item items[SRV_GC_MAX];
	char names[SRV_GC_MAX][DIME_DMTP_SESS_HASH_CHARS + 1];
	struct srv_job *js[SRV_GC_MAX];
	struct srv_job *dups[SRV_GC_MAX];
	struct dime_store *st = srv_store_take(s);
	size_t n = 0, n_dup = 0, n_all = 0, ok;
	int already = 0, stale = 0;
	int64_t now = (int64_t)time(NULL);

	/* g holds at most SRV_GC_MAX (srv_gc_run cuts the queue so). */
	for (struct srv_job *j = g; j != NULL; j = j->gc_next) {
		char *name = names[n];
		int dup = 0, rc;

		n_all++;
		j->a.verdict = DIME_DMTP_V_TEMPFAIL;
		/* Accepted since its PREP looked (an earlier group, and its spool file may be
		 * delivered and gone already): 255, never a second 254. Groups run one after the
		 * other, each recording its hashes before the next starts, so this look is
		 * decisive. */
		/* 586 (spec Part 7, DATA): encrypted to a user signet that stopped being current
		 * more than the stale threshold ago. Not spooled. */
		rc = st != NULL ? dime_server_rcpt_stale(st, &stale, j->recipient, j->rcpt_fp, now)
				: DIME_E_IO;
		if (rc != DIME_OK)
			continue; /* the store failed: 451, the sender retries */
		if (stale) {
			j->a.verdict = DIME_DMTP_V_EXPIRED;
			continue;
		}
		rc = dime_store_seen_get(st, j->hash, NULL, NULL);
		if (rc == DIME_OK) {
			j->a.verdict = DIME_DMTP_V_DUPLICATE;
			continue;
		}
		if (rc != DIME_E_NOTFOUND)
			continue; /* the store failed: 451, the sender retries */
		/* The same message twice in one group (two senders, or one retrying on another
		 * connection): it is spooled once; the later copy takes the first's outcome as
		 * a duplicate below, never the spool's "being written" (451). */
		for (size_t i = 0; i < n && !dup; i++)
			dup = sodium_memcmp(js[i]->hash, j->hash, sizeof(j->hash)) == 0;
		if (dup) {
			dups[n_dup++] = j;
			continue;
		}
		js[n] = j;
		/* The spool name: the identifier in the URL-safe base64 alphabet. */
		memcpy(name, j->a.hash, sizeof(names[n]));
		for (size_t i = 0; name[i] != 0; i++)
			name[i] = name[i] == '+' ? '-' : name[i] == '/' ? '_' : name[i];
		items[n] = (struct dime_spool_item){.id = name,
						    .recipient = j->recipient,
						    .origin = j->q->mail.addr,
						    .msg = j->bin,
						    .len = j->bin_len};
		n++;
	}
	ok = dime_spool_put_many(s->env.spool, items, n);
	for (size_t i = 0; i < n; i++) {
		if (items[i].rc == DIME_OK)
			js[i]->a.verdict = DIME_DMTP_V_ACCEPTED;
		else if (items[i].rc == DIME_E_AGAIN && items[i].err == EEXIST)
			js[i]->a.verdict = DIME_DMTP_V_DUPLICATE;
		else if (items[i].rc !=
			 DIME_E_AGAIN) /* EINPROGRESS: being spooled elsewhere: 451 */
			dime_dlog(DIME_DLOG_ERROR, "spool.put", "rc=%d errno=%d", items[i].rc,
				  items[i].err);
	}
	for (size_t d = 0; d < n_dup; d++)
		for (size_t i = 0; i < n; i++)
			if (sodium_memcmp(js[i]->hash, dups[d]->hash, sizeof(dups[d]->hash)) == 0) {
				/* Queued durably by the first copy (254 or 255): a duplicate. */
				if (js[i]->a.verdict != DIME_DMTP_V_TEMPFAIL)
					dups[d]->a.verdict = DIME_DMTP_V_DUPLICATE;
				break;
			}
	/* One line per group: how many commits shared the queue/ fsync (docs/dimed.md). */
	dime_dlog(DIME_DLOG_INFO, "spool.group", "n=%zu spooled=%zu dup_in_group=%zu", n_all, ok,
		  n_dup);
	if (ok == 0) {
		srv_store_give(s, st);
		return;
	}
	if (s->env.deliver != NULL)
		dime_deliver_kick(s->env.deliver);
	/* The messages are safe; without the records a resend after delivery is verified again
	 * and answered 254, and its delivery adds no copy (deliver.c names by the hash). One
	 * transaction for the group: one journal sync instead of one per message. */
	if (st == NULL || dime_store_begin(st) != DIME_OK) {
		dime_dlog(DIME_DLOG_WARNING, "seen.put", "why=\"cannot record the message hash\"");
		srv_store_give(s, st);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (items[i].rc == DIME_OK &&
		    dime_store_seen_put(st, js[i]->hash, &already) != DIME_OK)
			dime_dlog(DIME_DLOG_WARNING, "seen.put",
				  "why=\"cannot record the message hash\"");
	if (dime_store_commit(st) != DIME_OK)
		dime_dlog(DIME_DLOG_WARNING, "seen.put",
			  "why=\"cannot record the message hashes\"");
	srv_store_give(s, st);
}

static void srv_job_done(struct dime_pl_pool_job *pj, void *arg);

/* On the loop: a committed job completes as any pool job would. */
static void
srv_gc_done(void *arg)
{
	struct srv_job *j = arg;

	srv_job_done(&j->pj, j);
}

/* The committer's pool call: commit what is queued, a group at a time, until nothing is. */
static void
srv_gc_run(struct dime_pl_pool_job *pj, void *arg)
{
	struct dime_server *s = arg;
	struct srv_job *g = NULL, *j, *next;

	(void)pj;
	pthread_mutex_lock(&s->gc_mu);
	for (;;) {
		/* Each completion goes to the loop under gc_mu, and the last step clears
		 * gc_active under it too: dime_server_free waits for that, so s outlives us. */
		for (j = g; j != NULL; j = next) {
			next = j->gc_next;
			j->gc_next = NULL;
			while (dime_io_loop_post(s->env.loop, srv_gc_done, j) != DIME_OK) {
				struct timespec ms = {0, 1000000};

				nanosleep(&ms, NULL);
			}
		}
		if ((g = s->gc_head) == NULL)
			break;
		/* At most SRV_GC_MAX per group; the rest stay queued for the next one. */
		j = g;
		for (size_t n = 1; n < SRV_GC_MAX && j->gc_next != NULL; n++)
			j = j->gc_next;
		for (struct srv_job *k = g; k != j->gc_next; k = k->gc_next)
			s->gc_len--;
		s->gc_head = j->gc_next;
		if (s->gc_head == NULL)
			s->gc_tail = NULL;
		j->gc_next = NULL;
		pthread_mutex_unlock(&s->gc_mu);
		srv_commit_group(s, g);
		pthread_mutex_lock(&s->gc_mu);
	}
	s->gc_active = 0;
	pthread_cond_broadcast(&s->gc_idle);
	pthread_mutex_unlock(&s->gc_mu);
}

static void
srv_gc_free(struct dime_pl_pool_job *pj, void *arg)
{
	(void)arg;
	free(pj);
}

/* Queue j for the next group; start the committer when none is at work. Loop thread.
 * Returns: DIME_OK, DIME_E_AGAIN (the pool is full), DIME_E_NOMEM. */
static int
srv_gc_queue(struct srv_job *j)
{
	struct dime_server *s = j->c->srv;
	struct dime_pl_pool_job *pj = NULL;
	int rc = DIME_OK;

	pthread_mutex_lock(&s->gc_mu);
	/* Bounded like the pool's own queue: past queue_max the commit waits (back-pressure). */
	if (s->gc_len >=
	    (s->env.conf->queue_max != 0 ? s->env.conf->queue_max : DIME_PL_POOL_QUEUE_DEFAULT)) {
		rc = DIME_E_AGAIN;
		goto out;
	}
	if (!s->gc_active) {
		/* Its own memory, freed by its completion on the worker: the next committer may
		 * start before the pool is done with this one. */
		if ((pj = calloc(1, sizeof(*pj))) == NULL) {
			rc = DIME_E_NOMEM;
			goto out;
		}
		pj->run = srv_gc_run;
		pj->done = srv_gc_free;
		pj->arg = s;
		/* Under gc_mu (the pool never calls back into us holding its own lock), so no
		 * commit is queued behind a committer that failed to start. */
		if ((rc = dime_pl_pool_call(s->env.pool, pj, NULL)) != DIME_OK) {
			free(pj);
			goto out;
		}
		s->gc_active = 1;
	}
	j->gc_next = NULL;
	if (s->gc_tail != NULL)
		s->gc_tail->gc_next = j;
	else
		s->gc_head = j;
	s->gc_tail = j;
	s->gc_len++;
out:
	pthread_mutex_unlock(&s->gc_mu);
	return rc;
}

/* Queue j's next step. Returns: DIME_OK, or DIME_E_AGAIN (the pool is full: 451 now). */
static int
srv_job_queue(struct srv_job *j)
{
	struct dime_server *s = j->c->srv;

	j->pj.done = srv_job_done;
	j->pj.arg = j;
	switch (j->stage) {
	case SRV_LOOKUP:
		j->pj.run = srv_run_lookup;
		j->on = s->env.pool;
		return dime_pl_pool_call(j->on, &j->pj, s->env.loop);
	case SRV_FETCH:
		j->pj.run = srv_run_fetch;
		j->on = s->env.lookup_pool != NULL ? s->env.lookup_pool : s->env.pool;
		return dime_pl_pool_call(j->on, &j->pj, s->env.loop);
	case SRV_PREP:
		j->pj.run = srv_run_prep;
		j->on = s->env.pool;
		return dime_pl_pool_call(s->env.pool, &j->pj, s->env.loop);
	case SRV_ACCEPT:
		j->pj.run = NULL;
		dime_pl_msg_job_clear(&j->pj.mj);
		j->pj.mj.in = j->bin;
		j->pj.mj.in_len = j->bin_len;
		j->on = s->env.pool;
		return dime_pl_pool_submit(s->env.pool, s->env.accept_lane, &j->pj, s->env.loop);
	case SRV_COMMIT: return srv_gc_queue(j);
	}
	return DIME_E_INVALID;
}

static void srv_job_answer(struct srv_conn *c, struct srv_job *j);
static void srv_wait_retry(struct dime_server *s);

static void
srv_wait_tick(void *arg)
{
	struct dime_server *s = arg;

	s->w_timer = NULL;
	srv_wait_retry(s);
}

static void
srv_wait_arm(struct dime_server *s)
{
	if (s->w_head != NULL && s->w_timer == NULL &&
	    dime_io_timer_add(s->env.loop, &s->w_timer, SRV_WAIT_TICK, srv_wait_tick, s) != DIME_OK)
		s->w_timer = NULL; /* the next completion retries */
}

/* c's job was refused (DIME_E_AGAIN): it waits, c reads nothing more (the bytes it holds stay
 * held), and a retry queues it once the pool has room (STYLE.md section 6: a full queue stops
 * the reading). */
static void
srv_wait_add(struct srv_conn *c)
{
	struct dime_server *s = c->srv;

	if (!c->waiting) {
		c->waiting = 1;
		c->wait_since = dime_io_loop_now_ms(s->env.loop);
		c->wnext = NULL;
		if (s->w_tail != NULL)
			s->w_tail->wnext = c;
		else
			s->w_head = c;
		s->w_tail = c;
		dime_dlog(DIME_DLOG_WARNING, "pool.full", "peer=%s action=pause", c->ip);
	}
	srv_read_update(c);
	srv_wait_arm(s);
}

/* Take c out of the wait list (it is there). */
static void
srv_wait_remove(struct srv_conn *c)
{
	struct dime_server *s = c->srv;
	struct srv_conn **pp = &s->w_head, *prev = NULL;

	while (*pp != c) {
		prev = *pp;
		pp = &(*pp)->wnext;
	}
	*pp = c->wnext;
	if (s->w_tail == c)
		s->w_tail = prev;
	c->wnext = NULL;
	c->waiting = 0;
}

/* Queue the waiting jobs, oldest first, until the pool refuses one (then the rest keep their
 * place). A job that waited SRV_WAIT_MAX gets 451 (the pool is stuck or stopping). */
static void
srv_wait_retry(struct dime_server *s)
{
	uint64_t now = dime_io_loop_now_ms(s->env.loop);
	struct srv_conn *c;

	while ((c = s->w_head) != NULL) {
		struct srv_job *j = c->job;
		int rc = srv_job_queue(j);

		if (rc == DIME_E_AGAIN && now - c->wait_since < SRV_WAIT_MAX)
			break;
		srv_wait_remove(c);
		if (rc == DIME_OK) {
			srv_read_update(c);
			continue;
		}
		j->a.verdict = DIME_DMTP_V_TEMPFAIL;
		srv_job_answer(c, j); /* may start (and queue) the connection's next job */
		srv_read_update(c);
	}
	srv_wait_arm(s);
}

static void
srv_job_answer(struct srv_conn *c, struct srv_job *j)
{
	const struct dime_dmtp_query *q = dime_dmtp_sess_query(c->sess);
	int rc;

	c->job = NULL;
	if (q != NULL) {
		j->a.id = q->id;
		rc = dime_dmtp_sess_answer(c->sess, &j->a);
		if (rc != DIME_OK)
			dime_dlog(DIME_DLOG_ERROR, "dmtp.answer", "peer=%s verdict=%d rc=%d", c->ip,
				  (int)j->a.verdict, rc);
		if (j->stage >= SRV_PREP)
			dime_dlog(DIME_DLOG_INFO, "dmtp.data", "peer=%s code=%d len=%zu", c->ip,
				  dime_dmtp_sess_last_code(c->sess), j->bin_len);
	}
	srv_job_free(j);
	srv_pump(c);
}

/* Runs on the loop for every step of every job. */
static void
srv_job_step(struct srv_job *j)
{
	struct srv_conn *c = j->c;
	int rc;

	if (c->dead) {
		c->job = NULL;
		srv_job_free(j);
		srv_conn_free(c);
		return;
	}
	if (j->stage == SRV_ACCEPT) {
		if (j->pj.mj.rc != DIME_OK) {
			j->a.verdict = dime_server_accept_verdict(j->pj.mj.rc);
			j->decided = 1;
		} else {
			/* "ACCEPT <recipient> <fp>": the recipient must be at the RCPT domain
			 * (spec: 510 when not affiliated with it). */
			const char *r = j->pj.mj.line + 7, *sp = strchr(r, ' '), *at;
			size_t n = sp != NULL ? (size_t)(sp - r) : strlen(r);

			if (strncmp(j->pj.mj.line, "ACCEPT ", 7) != 0 || n == 0 ||
			    n >= sizeof(j->recipient)) {
				j->a.verdict = DIME_DMTP_V_TEMPFAIL;
				j->decided = 1;
			} else {
				memcpy(j->recipient, r, n);
				j->recipient[n] = 0;
				if (sp != NULL)
					snprintf(j->rcpt_fp, sizeof(j->rcpt_fp), "%s", sp + 1);
				at = strchr(j->recipient, '@');
				if (at == NULL || strcmp(at + 1, j->q->cmd.addr) != 0) {
					j->a.verdict = DIME_DMTP_V_UNKNOWN_RECIPIENT;
					j->decided = 1;
				}
			}
		}
	}
	if ((j->stage == SRV_LOOKUP && !srv_wants_fetch(j)) || j->stage == SRV_FETCH ||
	    j->stage == SRV_COMMIT || j->decided) {
		srv_job_answer(c, j);
		return;
	}
	j->stage = j->stage == SRV_LOOKUP ? SRV_FETCH
		   : j->stage == SRV_PREP ? SRV_ACCEPT
					  : SRV_COMMIT;
	rc = srv_job_queue(j);
	if (rc == DIME_E_AGAIN) {
		srv_wait_add(c); /* the next step waits for room, as a first one does */
	} else if (rc != DIME_OK) {
		j->a.verdict = DIME_DMTP_V_TEMPFAIL;
		srv_job_answer(c, j);
	}
}

static void
srv_job_done(struct dime_pl_pool_job *pj, void *arg)
{
	struct srv_job *j = arg;
	struct dime_server *s = j->c->srv;

	(void)pj;
	srv_job_step(j);
	/* A job has left the pool: there may be room for one that waits. */
	srv_wait_retry(s);
}

static void
srv_job_start(struct srv_conn *c, const struct dime_dmtp_query *q)
{
	struct srv_job *j = calloc(1, sizeof(*j));
	int rc;

	if (j == NULL) {
		struct dime_dmtp_answer a = {.id = q->id, .verdict = DIME_DMTP_V_TEMPFAIL};

		if (dime_dmtp_sess_answer(c->sess, &a) != DIME_OK)
			dime_dlog(DIME_DLOG_ERROR, "dmtp.answer", "peer=%s rc=invalid", c->ip);
		return;
	}
	j->c = c;
	j->q = q;
	j->stage = q->kind == DIME_DMTP_Q_DATA ? SRV_PREP : SRV_LOOKUP;
	c->job = j;
	rc = srv_job_queue(j);
	if (rc == DIME_E_AGAIN) {
		srv_wait_add(c);
	} else if (rc != DIME_OK) {
		c->job = NULL;
		j->a.id = q->id;
		j->a.verdict = DIME_DMTP_V_TEMPFAIL;
		if (dime_dmtp_sess_answer(c->sess, &j->a) != DIME_OK)
			dime_dlog(DIME_DLOG_ERROR, "dmtp.answer", "peer=%s rc=invalid", c->ip);
		srv_job_free(j);
	}
}

/* ---- the connection pump: session actions to io calls ---- */

static void
srv_pump(struct srv_conn *c)
{
	const struct dime_dconf *cf = c->srv->env.conf;
	unsigned ms;

	for (;;) {
		unsigned act;
		size_t n;

		if (c->closing)
			return;
		srv_send(c);
		if (c->closing)
			return;
		act = dime_dmtp_sess_actions(c->sess);
		if (act & DIME_DMTP_ACT_CLOSE) {
			c->closing = 1;
			dime_io_conn_close(c->io, 1);
			return;
		}
		if (act & DIME_DMTP_ACT_TLS) {
			/* The 220 was queued above, before the handshake; plaintext after STARTTLS
			 * is dropped (held here, and by io for what it has not delivered). */
			c->held.len = 0;
			/* The set in force now (SIGHUP): held until the connection ends, since
			 * the handshake's SNI callback reads it. */
			dime_tlsctx_free(c->tlsset);
			c->tlsset = dime_tlsctx_ref(c->srv->env.tls);
			c->tls = dime_tlsctx_for(c->tlsset, dime_dmtp_sess_tls_host(c->sess));
			dime_io_conn_set_timeout(c->io, cf->timeout_tls_ms);
			srv_line_stop(c); /* the whole handshake has timeout_tls, then a new line */
			srv_line_arm(c, cf->timeout_tls_ms);
			if (dime_io_conn_start_tls(c->io, c->tls) != DIME_OK)
				dime_dmtp_sess_tls_done(c->sess, DIME_DMTP_TLS_FAILED);
			else
				return;
			continue;
		}
		if (act & DIME_DMTP_ACT_QUERY) {
			if (c->job == NULL)
				srv_job_start(c, dime_dmtp_sess_query(c->sess));
			if (c->job != NULL) {
				/* The peer waits for us: no idle timeout while we work; the next
				 * line's deadline starts with our reply. */
				srv_line_stop(c);
				dime_io_conn_set_timeout(c->io, 0);
				return;
			}
			continue;
		}
		if (c->held.len == 0)
			break;
		n = dime_dmtp_sess_feed(c->sess, c->held.p, c->held.len);
		if (n > 0 && memchr(c->held.p, '\n', n) != NULL)
			srv_line_stop(c); /* a line ended: the next one gets the whole timeout */
		dime_conn_held_drop(&c->held, n);
		if (n == 0 && dime_dmtp_sess_actions(c->sess) == act)
			break;
	}
	ms = (dime_dmtp_sess_actions(c->sess) & DIME_DMTP_ACT_DATA) ? cf->timeout_data_ms
								    : cf->timeout_cmd_ms;
	dime_io_conn_set_timeout(c->io, ms);
	if (c->started)
		srv_line_arm(c, ms);
	srv_read_update(c);
}

static void
srv_on_data(void *ctx, const uint8_t *p, size_t n)
{
	struct srv_conn *c = ctx;
	int rc;

	if (c->closing || n == 0)
		return;
	rc = dime_conn_held_add(&c->held, p, n);
	if (rc == DIME_E_LIMIT) {
		dime_dmtp_sess_timeout(c->sess); /* 421 and close: it ignored the pause */
		srv_pump(c);
		return;
	}
	if (rc != DIME_OK) {
		c->closing = 1;
		dime_io_conn_close(c->io, 0);
		return;
	}
	/* during the greeting pause the unstarted session judges early bytes (554 or hold) */
	if (c->started || c->greet != NULL)
		srv_pump(c);
	srv_read_update(c);
}

static void
srv_greet(void *arg)
{
	struct srv_conn *c = arg;

	c->greet = NULL;
	if (c->closing || c->started)
		return;
	c->started = 1;
	dime_dmtp_sess_start(c->sess);
	srv_pump(c);
}

/* The banner: now, or after greet_pause. Bytes that arrive before it reach the session
 * unstarted, which answers 554 and closes (early_talk_reject) or holds them. */
static void
srv_begin(struct srv_conn *c)
{
	unsigned ms = c->srv->env.conf->greet_pause_ms;

	if (ms > 0 && dime_io_timer_add(c->srv->env.loop, &c->greet, ms, srv_greet, c) == DIME_OK)
		return;
	srv_greet(c);
}

static void
srv_on_tls(void *ctx, int ok)
{
	struct srv_conn *c = ctx;
	SSL *ssl;
	const char *cipher;

	if (c->closing)
		return;
	srv_line_stop(c); /* the handshake's deadline */
	ssl = dime_io_conn_ssl(c->io);
	cipher = ok && ssl != NULL ? SSL_get_cipher_name(ssl) : NULL;
	if (c->implicit && !c->started) {
		if (!ok) {
			c->closing = 1;
			dime_io_conn_close(c->io, 0);
			return;
		}
		srv_begin(c);
		return;
	} else {
		dime_dmtp_sess_tls_done(
		    c->sess, !ok ? DIME_DMTP_TLS_FAILED
			     : cipher != NULL && strcmp(cipher, "ECDHE-RSA-AES256-GCM-SHA384") == 0
				 ? DIME_DMTP_TLS_OK
				 : DIME_DMTP_TLS_WEAK);
	}
	srv_pump(c);
}

static void
srv_on_timeout(void *ctx)
{
	struct srv_conn *c = ctx;

	if (!c->closing)
		srv_expire(c, 0);
}

static void
srv_on_close(void *ctx, int err)
{
	struct srv_conn *c = ctx;

	dime_dlog(DIME_DLOG_INFO, "conn.close", "peer=%s err=%d", c->ip, err);
	dime_io_timer_cancel(c->greet); /* its callback would find c freed */
	c->greet = NULL;
	srv_line_stop(c);
	c->dead = 1;
	c->closing = 1; /* nothing may touch c->io from here on (drain, a late job) */
	c->io = NULL;
	if (c->waiting) {
		/* Its job never went in: nothing in the pool refers to it. */
		srv_wait_remove(c);
		srv_job_free(c->job);
		c->job = NULL;
	}
	if (c->job != NULL) {
		/* The completion frees the connection (the job borrows its session). A commit is
		 * not the pool's to cancel (it waits in the group-commit queue) and is never
		 * abandoned half-way: it completes normally. */
		if (c->job->stage != SRV_COMMIT && c->job->on != NULL)
			dime_pl_pool_cancel(c->job->on, &c->job->pj);
		return;
	}
	srv_conn_free(c);
}

static void
srv_on_drain(void *ctx)
{
	(void)ctx;
}

static const struct dime_io_conn_ops srv_conn_ops = {
    .on_data = srv_on_data,
    .on_tls = srv_on_tls,
    .on_timeout = srv_on_timeout,
    .on_close = srv_on_close,
    .on_drain = srv_on_drain,
};

static size_t
srv_count_ip(const struct dime_server *s, const char *ip)
{
	size_t n = 0;

	for (const struct srv_conn *c = s->conns; c != NULL; c = c->next)
		n += strcmp(c->ip, ip) == 0;
	return n;
}

static void
srv_on_accept(void *ctx, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
	struct dime_conn_listener *l = ctx;
	struct dime_server *s = l->owner;
	const struct dime_dconf *cf = s->env.conf;
	struct dime_dmtp_sess_conf sc = {.kind = l->mode == DIME_DCONF_DMTP ? DIME_DMTP_SESS_DMTP
									    : DIME_DMTP_SESS_DUAL,
					 .hostname = cf->hostname,
					 .max_message = cf->max_message,
					 .max_cmds = cf->max_cmds,
					 .early_talk_reject = cf->early_talk_reject};
	struct srv_conn *c = calloc(1, sizeof(*c));
	int over;

	(void)peer_len;
	if (c == NULL || dime_dmtp_sess_new(&c->sess, &sc) != DIME_OK) {
		free(c);
		close(fd);
		return;
	}
	dime_conn_peer_ip(c->ip, peer);
	over = (cf->max_conns != 0 && s->n_conns >= cf->max_conns) ||
	       (cf->max_conns_per_ip != 0 && srv_count_ip(s, c->ip) >= cf->max_conns_per_ip);
	c->srv = s;
	c->implicit = l->mode == DIME_DCONF_DMTP;
	if (dime_io_conn_new(s->env.loop, &c->io, fd, &srv_conn_ops, c) != DIME_OK) {
		dime_dmtp_sess_free(c->sess);
		free(c);
		return;
	}
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	dime_dlog(DIME_DLOG_INFO, "conn.open", "peer=%s port=%u over_cap=%d", c->ip, l->port, over);
	if (over) {
		/* 421 then close (spec: a line starting with 421 before a unilateral close). On
		 * the TLS port it cannot be said before a handshake: just close. */
		c->closing = 1;
		if (!c->implicit) {
			static const char busy[] = "421 TOO MANY CONNECTIONS, CLOSING CONNECTION\n";

			if (dime_io_conn_send(c->io, busy, sizeof(busy) - 1) != DIME_OK)
				dime_dlog(DIME_DLOG_DEBUG, "conn.send", "peer=%s rc=fail", c->ip);
		}
		dime_io_conn_close(c->io, 1);
		return;
	}
	if (c->implicit) {
		c->tlsset = dime_tlsctx_ref(s->env.tls);
		c->tls = dime_tlsctx_for(c->tlsset, NULL);
		dime_io_conn_set_timeout(c->io, cf->timeout_tls_ms);
		srv_line_arm(c, cf->timeout_tls_ms); /* the handshake as a whole */
		if (dime_io_conn_start_tls(c->io, c->tls) != DIME_OK) {
			c->closing = 1;
			dime_io_conn_close(c->io, 0);
		}
		return;
	}
	srv_begin(c);
}

int
dime_server_new(struct dime_server **out, const struct dime_server_env *env, char *why,
		size_t why_cap)
{
	struct dime_server *s;
	const struct dime_dconf *cf = env->conf;
	int rc;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return DIME_E_NOMEM;
	s->env = *env;
	dime_tlsctx_ref(s->env.tls);
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->gc_mu, NULL);
	pthread_cond_init(&s->gc_idle, NULL);
	rc = dime_conn_bind(s->ls, &s->n_ls, cf, env->loop,
			    (1u << DIME_DCONF_DMTP) | (1u << DIME_DCONF_DUAL), srv_on_accept, s,
			    why, why_cap);
	if (rc != DIME_OK) {
		dime_server_free(s);
		return rc;
	}
	*out = s;
	return DIME_OK;
}

size_t
dime_server_ports(const struct dime_server *s, unsigned *ports, size_t cap)
{
	return dime_conn_ports(s->ls, s->n_ls, ports, cap);
}

void
dime_server_set_accept_lane(struct dime_server *s, unsigned lane)
{
	s->env.accept_lane = lane;
}

void
dime_server_set_tls(struct dime_server *s, struct dime_tlsctx *tls)
{
	dime_tlsctx_ref(tls);
	dime_tlsctx_free(s->env.tls);
	s->env.tls = tls;
}

size_t
dime_server_n_conns(const struct dime_server *s)
{
	return s->n_conns;
}

void
dime_server_drain(struct dime_server *s, void (*idle)(void *arg), void *arg)
{
	struct srv_conn *c, *next;

	s->draining = 1;
	s->idle = idle;
	s->idle_arg = arg;
	dime_conn_unbind(s->ls, s->n_ls);
	for (c = s->conns; c != NULL; c = next) {
		next = c->next;
		if (c->closing)
			continue;
		if (!c->started) {
			c->closing = 1;
			dime_io_conn_close(c->io, 0);
			continue;
		}
		dime_dmtp_sess_drain(c->sess);
		srv_pump(c);
	}
	if (s->n_conns == 0 && idle != NULL)
		idle(arg);
}

void
dime_server_free(struct dime_server *s)
{
	if (s == NULL)
		return;
	dime_conn_unbind(s->ls, s->n_ls);
	dime_io_timer_cancel(s->w_timer);
	/* A committer still finishing its last step uses s. */
	pthread_mutex_lock(&s->gc_mu);
	while (s->gc_active)
		pthread_cond_wait(&s->gc_idle, &s->gc_mu);
	pthread_mutex_unlock(&s->gc_mu);
	pthread_cond_destroy(&s->gc_idle);
	pthread_mutex_destroy(&s->gc_mu);
	while (s->n_stores > 0)
		dime_store_close(s->stores[--s->n_stores]);
	pthread_mutex_destroy(&s->mu);
	dime_tlsctx_free(s->env.tls);
	free(s);
}

/* dimed's DMTP server glue: the store side of the session's queries. Each lookup reads the
 * versions of one identity's signets, picks the one the command names, and hands back the
 * verdict and, for 270/280/290, the armor. Signets are served only for identities this OPA
 * hosts (spec Part 7, SGNT: "only ... domains in which it is the authoritative source"). */

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "dime/codec.h"
#include "dime/server.h"
#include "dime/signet.h"

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

/* Returns: DIME_OK (rs filled, possibly empty), DIME_E_IO, DIME_E_NOMEM. An ident the store
 * refuses is simply unknown. */
static int
srv_rows_get(struct dime_store *st, struct srv_rows *rs, const char *ident,
	     enum dime_store_kind kind)
{
	int rc;

	memset(rs, 0, sizeof(*rs));
	rc = dime_store_list(st, ident, kind, srv_row_add, rs);
	if (rs->nomem)
		return DIME_E_NOMEM;
	if (rc == DIME_E_INVALID)
		return DIME_OK;
	return rc;
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

/* Index of the row matching fp (full, or core too when user), or -1. */
static long
srv_find(struct dime_store *st, const struct srv_rows *rs, const char *fp, int user, int *err)
{
	for (size_t i = rs->n; i-- > 0;) {
		if (srv_fp_match(st, &rs->r[i], fp, 0, err))
			return (long)i;
		if (user && srv_fp_match(st, &rs->r[i], fp, 1, err))
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

/* ORIGIN and RCPT: is there an org signet of the domain with this full fingerprint (RCPT: and
 * is the domain ours)? */
static int
srv_org_fp(struct dime_store *st, struct dime_dmtp_answer *a, const struct dime_dmtp_cmd *c,
	   int rcpt)
{
	struct srv_rows rs;
	int rc = srv_rows_get(st, &rs, c->addr, DIME_STORE_ORG_SIGNET), err = DIME_OK;

	if (rc == DIME_OK) {
		int ok = (!rcpt || srv_hosted(&rs)) && srv_find(st, &rs, c->fp, 0, &err) >= 0;

		if (rcpt)
			a->verdict = ok ? DIME_DMTP_V_OK : DIME_DMTP_V_RCPT_INVALID;
		else
			a->verdict = ok ? DIME_DMTP_V_OK : DIME_DMTP_V_ORIGIN_TEMP;
	}
	free(rs.r);
	return rc;
}

int
dime_server_lookup(struct dime_store *st, struct dime_dmtp_answer *a, char **armor,
		   const struct dime_dmtp_query *q)
{
	size_t armor_len = 0;
	int rc, sig = 0;

	memset(a, 0, sizeof(*a));
	*armor = NULL;
	switch (q->kind) {
	case DIME_DMTP_Q_ORIGIN: rc = srv_org_fp(st, a, &q->cmd, 0); break;
	case DIME_DMTP_Q_RCPT: rc = srv_org_fp(st, a, &q->cmd, 1); break;
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

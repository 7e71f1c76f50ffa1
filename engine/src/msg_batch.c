/* Batched D/MIME operations (msg.h "batches"): KEKs precomputed by one dime_ks_ecdh_batch per
 * key id, every signature check of every job recorded and decided by one
 * dime_ed25519_verify_batch call, and any job with a failing check run again alone, so each
 * job's result is exactly the single call's. */

#include <stdlib.h>
#include <string.h>

#include "dime/crypto.h"
#include "dime/keys.h"
#include "dime/msg.h"
#include "dime/signet.h"
#include "msg_int.h"
#include "rd.h"

/* A signed plaintext over BATCH_COPY_MAX bytes is verified at once rather than copied: its
 * decryption and hashing dwarf what batching saves. BATCH_COPY_TOTAL bounds the copies one
 * batch holds. */
#define BATCH_COPY_MAX	 65536u
#define BATCH_COPY_TOTAL (16u << 20)
/* Secret scratch entries (32 bytes each) a batch keeps on the stack, wiped, instead of in
 * sodium_malloc'd memory: up to 8 wraps' 4 actors. */
#define MSG_BATCH_STACK_SLOTS 32u

/* One precomputed KEK: what msg_kek_for(ks, key_id, eph) returns. */
struct batch_kek {
	uint32_t key_id;
	uint8_t eph[DIME_SECP_PUB_BYTES];
	int rc;
	struct msg_kek k; /* zero when rc != DIME_OK */
	uint8_t known;	  /* prepass: taken from a job's memo, no ECDH needed */
};

struct dime_msg_keks {
	struct batch_kek *e;
	size_t n, cap;
};

/* One deferred check: sig by pub (or by one of n_alt alternative keys) over msg. */
struct batch_rec {
	size_t job;
	uint8_t sig[DIME_SIG_BYTES];
	uint8_t pub[DIME_ED25519_PUB_BYTES];
	const uint8_t *msg;
	size_t len;
	uint8_t *owned;	   /* msg, when the record holds it; wiped and freed with the op */
	size_t alt, n_alt; /* alternative keys: alts[alt .. alt + n_alt) */
};

struct msg_op {
	struct batch_kek *keks; /* sorted by (key_id, eph), distinct */
	size_t n_keks;
	struct dime_msg_keks *memo; /* consulted after keks; a miss is recorded there */
	int defer;		    /* record checks instead of making them */
	size_t job;
	struct batch_rec *recs;
	size_t n_recs, cap_recs;
	uint8_t (*alts)[DIME_ED25519_PUB_BYTES];
	size_t n_alts, cap_alts;
	size_t copied;
};

enum batch_kind { BATCH_ORIGIN_SIGN, BATCH_ACCEPT, BATCH_OPEN, BATCH_BOUNCE };

/* ---- KEK table ---- */

static int
batch_kek_cmp(const void *a, const void *b)
{
	const struct batch_kek *x = a, *y = b;

	if (x->key_id != y->key_id)
		return x->key_id < y->key_id ? -1 : 1;
	return memcmp(x->eph, y->eph, DIME_SECP_PUB_BYTES); /* public keys: no secret compared */
}

/* ---- the caller's memo ---- */

int
dime_msg_keks_new(struct dime_msg_keks **out, size_t cap)
{
	struct dime_msg_keks *c;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return DIME_E_NOMEM;
	if (cap > 0 && (c->e = calloc(cap, sizeof(*c->e))) == NULL) {
		free(c);
		return DIME_E_NOMEM;
	}
	c->cap = cap;
	*out = c;
	return DIME_OK;
}

void
dime_msg_keks_clear(struct dime_msg_keks *c)
{
	if (c == NULL)
		return;
	dime_wipe(c->e, c->n * sizeof(*c->e));
	c->n = 0;
}

void
dime_msg_keks_free(struct dime_msg_keks *c)
{
	if (c == NULL)
		return;
	dime_msg_keks_clear(c);
	free(c->e);
	free(c);
}

static const struct batch_kek *
memo_find(const struct dime_msg_keks *c, uint32_t key_id, const uint8_t eph[DIME_SECP_PUB_BYTES])
{
	if (c == NULL)
		return NULL;
	for (size_t i = 0; i < c->n; i++)
		if (c->e[i].key_id == key_id && memcmp(c->e[i].eph, eph, DIME_SECP_PUB_BYTES) == 0)
			return &c->e[i];
	return NULL;
}

static void
memo_add(struct dime_msg_keks *c, uint32_t key_id, const uint8_t eph[DIME_SECP_PUB_BYTES], int rc,
	 const struct msg_kek *k)
{
	if (c == NULL || c->n == c->cap)
		return;
	c->e[c->n].key_id = key_id;
	memcpy(c->e[c->n].eph, eph, DIME_SECP_PUB_BYTES);
	c->e[c->n].rc = rc;
	c->e[c->n].k = *k;
	c->n++;
}

int
dime_msg_envelope_peek_memo(struct dime_msg_keks *memo, const struct dime_ks *ks,
			    struct dime_msg_envelope *env, const char **why, const uint8_t *in,
			    size_t in_len, enum dime_msg_actor as, uint32_t key)
{
	struct msg_op op;
	int rc;

	memset(&op, 0, sizeof(op));
	op.memo = memo;
	rc = msg_envelope_peek_op(&op, ks, env, why, in, in_len, as, key);
	memset(&op, 0, sizeof(op));
	return rc;
}

/* ---- KEK lookups ---- */

int
msg_op_kek(struct msg_op *op, const struct dime_ks *ks, struct msg_kek *k, uint32_t key_id,
	   const uint8_t eph[DIME_SECP_PUB_BYTES])
{
	struct batch_kek want;
	const struct batch_kek *hit = NULL;
	int rc;

	if (op == NULL)
		return msg_kek_for(ks, k, key_id, eph);
	if (op->n_keks > 0) {
		memset(&want, 0, sizeof(want));
		want.key_id = key_id;
		memcpy(want.eph, eph, DIME_SECP_PUB_BYTES);
		hit = bsearch(&want, op->keks, op->n_keks, sizeof(*op->keks), batch_kek_cmp);
	}
	if (hit == NULL)
		hit = memo_find(op->memo, key_id, eph);
	if (hit != NULL) {
		*k = hit->k;
		return hit->rc;
	}
	/* an ephemeral key nobody saw before: compute it now (and remember it) */
	rc = msg_kek_for(ks, k, key_id, eph);
	memo_add(op->memo, key_id, eph, rc, k);
	return rc;
}

/* The ephemeral key a job will derive its KEK from, as the operation will read it.
 * Returns: 1 when found. A miss only costs the job its own ECDH later. */
static int
batch_eph(uint8_t eph[DIME_SECP_PUB_BYTES], enum batch_kind kind, const struct dime_msg_job *j)
{
	struct msg_parsed m;
	struct dime_rd r;
	int found = 0;

	if (j->in == NULL)
		return 0;
	if (kind == BATCH_BOUNCE) {
		/* magic, length, code, reason, then chunk 2 first (docs/bounce.md) */
		dime_rd_init(&r, j->in, j->in_len);
		(void)dime_rd_be16(&r);
		(void)dime_rd_be32(&r);
		(void)dime_rd_u8(&r);
		(void)dime_rd_take(&r, dime_rd_be16(&r));
		if (dime_rd_u8(&r) != DIME_CHUNK_EPHEMERAL ||
		    dime_rd_be24(&r) != DIME_SECP_PUB_BYTES)
			return 0;
		dime_rd_copy(&r, eph, DIME_SECP_PUB_BYTES);
		return r.err == DIME_OK;
	}
	if (msg_parse(&m, NULL, j->in, j->in_len) == DIME_OK) {
		memcpy(eph, m.eph, DIME_SECP_PUB_BYTES);
		found = 1;
	}
	msg_parsed_free(&m);
	return found;
}

/* Fill op's table: one dime_ks_ecdh_batch call per distinct key id over the distinct
 * ephemeral keys of its jobs. Any allocation failure leaves the table empty (every job then
 * derives its own KEK, with the same result). */
static void
batch_keks(struct msg_op *op, const struct dime_ks *ks, const struct dime_msg_job *jobs, size_t n,
	   enum batch_kind kind)
{
	struct batch_kek *t;
	uint8_t(*pubs)[DIME_SECP_PUB_BYTES] = NULL, (*x)[DIME_ECDH_BYTES] = NULL;
	uint8_t x_st[MSG_BATCH_STACK_SLOTS][DIME_ECDH_BYTES]; /* a small batch's, wiped */
	int *rcs = NULL;
	size_t m = 0, u = 0;

	if (ks == NULL || n == 0 || (t = calloc(n, sizeof(*t))) == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		if (batch_eph(t[m].eph, kind, &jobs[i])) {
			const struct batch_kek *known =
			    memo_find(jobs[i].keks, jobs[i].key, t[m].eph);

			t[m].key_id = jobs[i].key;
			if (known != NULL) {
				t[m] = *known;
				t[m].known = 1;
			}
			m++;
		}
	if (m == 0)
		goto out;
	qsort(t, m, sizeof(*t), batch_kek_cmp);
	for (size_t i = 0; i < m; i++)
		if (u == 0 || batch_kek_cmp(&t[u - 1], &t[i]) != 0)
			t[u++] = t[i];
		else if (t[i].known && !t[u - 1].known)
			t[u - 1] = t[i];
	pubs = malloc(u * sizeof(*pubs));
	x = u <= MSG_BATCH_STACK_SLOTS ? x_st : dime_secure_alloc(u * sizeof(*x));
	rcs = malloc(u * sizeof(*rcs));
	if (pubs == NULL || x == NULL || rcs == NULL)
		goto out;
	for (size_t i = 0; i < u;) {
		size_t e = i, c = 0, at[64];

		while (e < u && t[e].key_id == t[i].key_id)
			e++;
		/* the pairs a peek already derived need no ECDH; the rest go in one call per key,
		 * in slices of at most 64 */
		for (size_t q = i; q <= e; q++) {
			if (q < e && !t[q].known) {
				memcpy(pubs[c], t[q].eph, DIME_SECP_PUB_BYTES);
				at[c++] = q;
			}
			if (c == 64 || (q == e && c > 0)) {
				if (dime_ks_ecdh_batch(ks, t[i].key_id,
						       (const uint8_t(*)[DIME_SECP_PUB_BYTES])pubs,
						       c, x, rcs) != DIME_OK) {
					/* rcs[] holds each item's own result, as msg_kek_for's */
				}
				for (size_t w = 0; w < c; w++) {
					t[at[w]].rc = rcs[w];
					if (rcs[w] == DIME_OK)
						msg_kek_derive(&t[at[w]].k, x[w]);
				}
				dime_wipe(x, c * sizeof(*x));
				c = 0;
			}
		}
		i = e;
	}
	op->keks = t;
	op->n_keks = u;
	t = NULL;
out:
	free(pubs);
	if (x == x_st)
		dime_wipe(x_st, sizeof(x_st));
	else if (x != NULL)
		dime_secure_free(x);
	free(rcs);
	if (t != NULL) {
		dime_wipe(t, n * sizeof(*t));
		free(t);
	}
}

/* ---- deferred checks ---- */

/* A new record for the current job, or NULL (the caller then verifies at once). */
static struct batch_rec *
batch_rec_new(struct msg_op *op, const uint8_t sig[DIME_SIG_BYTES],
	      const uint8_t pub[DIME_ED25519_PUB_BYTES], const uint8_t *msg, size_t len)
{
	struct batch_rec *r;

	if (op->n_recs == op->cap_recs) {
		size_t ncap = op->cap_recs * 2 + 16;
		struct batch_rec *nr = realloc(op->recs, ncap * sizeof(*nr));

		if (nr == NULL)
			return NULL;
		op->recs = nr;
		op->cap_recs = ncap;
	}
	r = &op->recs[op->n_recs++];
	memset(r, 0, sizeof(*r));
	r->job = op->job;
	memcpy(r->sig, sig, DIME_SIG_BYTES);
	memcpy(r->pub, pub, DIME_ED25519_PUB_BYTES);
	r->msg = msg;
	r->len = len;
	return r;
}

int
msg_op_verify(struct msg_op *op, const uint8_t sig[DIME_SIG_BYTES],
	      const uint8_t pub[DIME_ED25519_PUB_BYTES], const uint8_t *msg, size_t len,
	      enum msg_op_hold hold)
{
	uint8_t *copy = NULL;

	if (op == NULL || !op->defer)
		return dime_ed25519_verify(sig, pub, msg, len);
	if (hold == MSG_OP_COPY) {
		if (len > BATCH_COPY_MAX || len > BATCH_COPY_TOTAL - op->copied ||
		    (copy = malloc(len > 0 ? len : 1)) == NULL)
			return dime_ed25519_verify(sig, pub, msg, len);
		if (len > 0)
			memcpy(copy, msg, len);
	}
	{
		struct batch_rec *r = batch_rec_new(op, sig, pub, copy != NULL ? copy : msg, len);

		if (r == NULL) {
			dime_msg_free(copy, len);
			return dime_ed25519_verify(sig, pub, msg, len);
		}
		if (copy != NULL) {
			r->owned = copy;
			r->len = len;
			op->copied += len;
		}
	}
	return DIME_OK; /* assumed; decided by batch_resolve */
}

int
msg_op_verify_take(struct msg_op *op, const uint8_t sig[DIME_SIG_BYTES],
		   const uint8_t pub[DIME_ED25519_PUB_BYTES], uint8_t **buf, size_t len)
{
	struct batch_rec *r;

	if (op == NULL || !op->defer || (r = batch_rec_new(op, sig, pub, *buf, len)) == NULL)
		return dime_ed25519_verify(sig, pub, *buf, len);
	r->owned = *buf;
	*buf = NULL;
	return DIME_OK;
}

int
msg_op_org_verify(struct msg_op *op, const struct dime_signet *org,
		  const uint8_t sig[DIME_SIG_BYTES], const uint8_t *msg, size_t len)
{
	uint8_t pub[DIME_ED25519_PUB_BYTES], perms;
	struct batch_rec *r = NULL;
	size_t n, first_alt;

	if (op == NULL || !op->defer)
		return msg_org_verify(org, sig, msg, len);
	/* the candidates of msg_org_verify, in its order: POK, then each SOK with the messages
	 * permission; the first is the record's key, the others its alternatives */
	first_alt = op->n_alts;
	if (dime_signet_signing_key(org, pub) == DIME_OK &&
	    (r = batch_rec_new(op, sig, pub, msg, len)) == NULL)
		return msg_org_verify(org, sig, msg, len);
	n = dime_signet_n_soks(org);
	for (size_t i = 0; i < n; i++) {
		if (dime_signet_sok(org, &perms, pub, i) != DIME_OK)
			continue;
		if ((perms & DIME_SOK_MESSAGES) == 0 || (perms & DIME_SOK_RESERVED) != 0)
			continue;
		if (r == NULL) {
			if ((r = batch_rec_new(op, sig, pub, msg, len)) == NULL)
				return msg_org_verify(org, sig, msg, len);
			continue;
		}
		if (op->n_alts == op->cap_alts) {
			size_t ncap = op->cap_alts * 2 + 16;
			uint8_t(*na)[DIME_ED25519_PUB_BYTES] =
			    realloc(op->alts, ncap * sizeof(*na));

			if (na == NULL) {
				/* drop this record: decide the whole OR now */
				op->n_recs--;
				op->n_alts = first_alt;
				return msg_org_verify(org, sig, msg, len);
			}
			op->alts = na;
			op->cap_alts = ncap;
		}
		memcpy(op->alts[op->n_alts++], pub, DIME_ED25519_PUB_BYTES);
	}
	if (r == NULL) /* no key could have signed: msg_org_verify refuses too */
		return DIME_E_BADSIG;
	r->alt = first_alt;
	r->n_alt = op->n_alts - first_alt;
	return DIME_OK;
}

/* Decide every record: one batch over the records' first keys, then one over the alternative
 * keys of those that failed. Out: bad[job] = 1 when any of its records fails (or when the
 * batch cannot be run: the job is then simply run again alone). */
static void
batch_resolve(struct msg_op *op, uint8_t *bad, struct dime_msg_job *jobs)
{
	struct dime_ed25519_check *c = NULL;
	uint8_t *ok = NULL, *ok2 = NULL;
	size_t *owner = NULL, m = 0;

	if (op->n_recs == 0)
		return;
	c = malloc((op->n_recs + op->n_alts) * sizeof(*c));
	ok = malloc(op->n_recs);
	ok2 = malloc(op->n_alts > 0 ? op->n_alts : 1);
	owner = malloc((op->n_alts > 0 ? op->n_alts : 1) * sizeof(*owner));
	if (c == NULL || ok == NULL || ok2 == NULL || owner == NULL) {
		for (size_t i = 0; i < op->n_recs; i++)
			bad[op->recs[i].job] = 1;
		goto out;
	}
	for (size_t i = 0; i < op->n_recs; i++) {
		const struct batch_rec *r = &op->recs[i];

		c[i].sig = r->sig;
		c[i].pub = r->pub;
		c[i].msg = r->msg;
		c[i].msg_len = r->len;
		jobs[r->job].n_batched++;
	}
	if (dime_ed25519_verify_batch(c, op->n_recs, ok) == DIME_OK)
		goto out; /* the common case: every check of every job holds */
	for (size_t i = 0; i < op->n_recs; i++) {
		const struct batch_rec *r = &op->recs[i];

		for (size_t a = 0; !ok[i] && a < r->n_alt; a++) {
			c[m].sig = r->sig;
			c[m].pub = op->alts[r->alt + a];
			c[m].msg = r->msg;
			c[m].msg_len = r->len;
			owner[m++] = i;
		}
	}
	if (m > 0 && dime_ed25519_verify_batch(c, m, ok2) != DIME_OK) {
		/* ok2[] says which alternatives hold */
	}
	for (size_t q = 0; q < m; q++)
		if (ok2[q])
			ok[owner[q]] = 1; /* msg_org_verify: any listed key may sign */
	for (size_t i = 0; i < op->n_recs; i++)
		if (!ok[i])
			bad[op->recs[i].job] = 1;
out:
	free(c);
	free(ok);
	free(ok2);
	free(owner);
}

/* Wipe and free what the records hold; the table stays. */
static void
batch_recs_free(struct msg_op *op)
{
	for (size_t i = 0; i < op->n_recs; i++)
		dime_msg_free(op->recs[i].owned, op->recs[i].len);
	free(op->recs);
	free(op->alts);
	op->recs = NULL;
	op->alts = NULL;
	op->n_recs = op->cap_recs = op->n_alts = op->cap_alts = 0;
	op->copied = 0;
}

static void
batch_op_fini(struct msg_op *op)
{
	batch_recs_free(op);
	if (op->keks != NULL) {
		dime_wipe(op->keks, op->n_keks * sizeof(*op->keks));
		free(op->keks);
	}
	memset(op, 0, sizeof(*op));
}

/* ---- jobs ---- */

static void
batch_job_clear(struct dime_msg_job *j)
{
	j->rc = DIME_OK;
	j->why = "";
	memset(&j->env, 0, sizeof(j->env));
	j->out = NULL;
	j->out_len = 0;
	memset(&j->opened, 0, sizeof(j->opened));
	j->n_batched = 0;
	j->rerun = 0;
}

/* Undo a job's deferred result before it runs again alone. */
static void
batch_job_release(struct dime_msg_job *j)
{
	dime_msg_free(j->out, j->out_len);
	dime_msg_opened_free(&j->opened);
	if (j->bounce != NULL)
		dime_wipe(j->bounce, sizeof(*j->bounce));
	j->out = NULL;
	j->out_len = 0;
	dime_wipe(&j->env, sizeof(j->env));
}

static void
batch_job_run(struct msg_op *op, const struct dime_ks *ks, struct dime_msg_job *j,
	      enum batch_kind kind, uint32_t sign_key, enum dime_msg_actor as)
{
	struct dime_msg_bounce_info local;

	switch (kind) {
	case BATCH_ORIGIN_SIGN:
		j->rc = msg_origin_sign_op(op, ks, &j->out, &j->out_len, &j->env, &j->why, j->in,
					   j->in_len, j->key, sign_key, j->p,
					   j->own ? DIME_MSG_SIGN_OWN : 0u);
		break;
	case BATCH_ACCEPT:
		j->rc = msg_accept_op(op, ks, &j->env, &j->why, j->in, j->in_len, j->key, j->p);
		break;
	case BATCH_OPEN:
		j->rc =
		    msg_open_op(op, ks, &j->opened, &j->why, j->in, j->in_len, as, j->key, j->p);
		j->env = j->opened.env;
		break;
	case BATCH_BOUNCE: {
		struct dime_msg_bounce_info *info = j->bounce != NULL ? j->bounce : &local;

		j->rc = msg_bounce_verify_op(op, ks, info, &j->why, j->in, j->in_len, j->key,
					     j->p != NULL ? j->p->origin : NULL);
		j->env = info->env;
		if (info == &local)
			dime_wipe(&local, sizeof(local));
		break;
	}
	}
}

static int
batch_first_rc(const struct dime_msg_job *jobs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (jobs[i].rc != DIME_OK)
			return jobs[i].rc;
	return DIME_OK;
}

static int
batch_run(const struct dime_ks *ks, struct dime_msg_job *jobs, size_t n, enum batch_kind kind,
	  uint32_t sign_key, enum dime_msg_actor as)
{
	struct msg_op op;
	uint8_t *bad;

	if (jobs == NULL && n > 0)
		return DIME_E_INVALID;
	memset(&op, 0, sizeof(op));
	for (size_t i = 0; i < n; i++)
		batch_job_clear(&jobs[i]);
	batch_keks(&op, ks, jobs, n, kind);
	/* without the flags, nothing is deferred: every job runs as the single call */
	bad = calloc(n > 0 ? n : 1, 1);
	op.defer = bad != NULL;
	for (size_t i = 0; i < n; i++) {
		op.job = i;
		op.memo = jobs[i].keks;
		batch_job_run(&op, ks, &jobs[i], kind, sign_key, as);
	}
	if (op.defer)
		batch_resolve(&op, bad, jobs);
	batch_recs_free(&op);
	op.defer = 0;
	for (size_t i = 0; bad != NULL && i < n; i++) {
		if (!bad[i])
			continue;
		batch_job_release(&jobs[i]);
		op.memo = jobs[i].keks;
		batch_job_run(&op, ks, &jobs[i], kind, sign_key, as);
		jobs[i].rerun = 1;
	}
	batch_op_fini(&op);
	free(bad);
	return batch_first_rc(jobs, n);
}

int
dime_msg_origin_sign_batch(const struct dime_ks *ks, struct dime_msg_job *jobs, size_t n,
			   uint32_t sign_key)
{
	return batch_run(ks, jobs, n, BATCH_ORIGIN_SIGN, sign_key, DIME_ACTOR_ORIGIN);
}

int
dime_msg_accept_batch(const struct dime_ks *ks, struct dime_msg_job *jobs, size_t n)
{
	return batch_run(ks, jobs, n, BATCH_ACCEPT, DIME_KS_NONE, DIME_ACTOR_DESTINATION);
}

int
dime_msg_open_batch(const struct dime_ks *ks, struct dime_msg_job *jobs, size_t n,
		    enum dime_msg_actor as)
{
	return batch_run(ks, jobs, n, BATCH_OPEN, DIME_KS_NONE, as);
}

int
dime_msg_bounce_verify_batch(const struct dime_ks *ks, struct dime_msg_job *jobs, size_t n)
{
	return batch_run(ks, jobs, n, BATCH_BOUNCE, DIME_KS_NONE, DIME_ACTOR_ORIGIN);
}

/* ---- wrap ---- */

int
dime_msg_wrap_mail_batch(const struct dime_ks *ks, struct dime_msg_job *jobs, size_t n,
			 const struct dime_msg_wrap_opts *opts)
{
	struct msg_wrap_pre *pre = NULL;
	uint8_t *have = NULL, (*privs)[DIME_SECP_PRIV_BYTES] = NULL;
	uint8_t(*pubs)[DIME_SECP_PUB_BYTES] = NULL, (*x)[DIME_ECDH_BYTES] = NULL;
	/* A small batch (the gateway's: a message or a few) keeps its ephemeral keys and shared
	 * secrets on the stack, wiped, as a single wrap does: sodium_malloc's mmap, mprotect and
	 * munmap per call cost more than the wrap's ECDH and flush every thread's TLB. */
	uint8_t privs_st[MSG_BATCH_STACK_SLOTS][DIME_SECP_PRIV_BYTES];
	uint8_t x_st[MSG_BATCH_STACK_SLOTS][DIME_ECDH_BYTES];
	size_t *at = NULL, m = 0;
	int *rcs = NULL;

	if (jobs == NULL && n > 0)
		return DIME_E_INVALID;
	for (size_t i = 0; i < n; i++)
		batch_job_clear(&jobs[i]);
	if (n > 0) {
		pre = calloc(n, sizeof(*pre));
		have = calloc(n, 1);
		int small = n <= MSG_BATCH_STACK_SLOTS / 4;

		privs = small ? privs_st : dime_secure_alloc(4 * n * sizeof(*privs));
		x = small ? x_st : dime_secure_alloc(4 * n * sizeof(*x));
		pubs = malloc(4 * n * sizeof(*pubs));
		at = malloc(4 * n * sizeof(*at));
		rcs = malloc(4 * n * sizeof(*rcs));
	}
	/* Ahead of the jobs: each one's ephemeral key and its 4 actor points, then one ECDH
	 * batch for all of them. A job left out (missing signets, no memory) draws its own. */
	for (size_t i = 0; i < n && pre != NULL && have != NULL && privs != NULL && x != NULL &&
			   pubs != NULL && at != NULL && rcs != NULL;
	     i++) {
		const struct dime_msg_parties *p = jobs[i].p;
		const struct dime_signet *s[4];
		uint8_t priv[DIME_SECP_PRIV_BYTES];

		if (p == NULL || p->author == NULL || p->origin == NULL || p->destination == NULL ||
		    p->recipient == NULL)
			continue;
		s[0] = p->author;
		s[1] = p->origin;
		s[2] = p->destination;
		s[3] = p->recipient;
		if (dime_secp_keygen(priv, pre[i].eph_pub) != DIME_OK) {
			dime_wipe(priv, sizeof(priv));
			continue;
		}
		for (size_t a = 0; a < 4; a++) {
			pre[i].rc[a] = dime_signet_enc_key(s[a], pubs[m]);
			if (pre[i].rc[a] != DIME_OK)
				continue;
			memcpy(privs[m], priv, sizeof(priv));
			at[m++] = 4 * i + a;
		}
		dime_wipe(priv, sizeof(priv));
		have[i] = 1;
	}
	if (m > 0) {
		if (dime_secp_ecdh_x_batch((const uint8_t(*)[DIME_SECP_PRIV_BYTES])privs,
					   (const uint8_t(*)[DIME_SECP_PUB_BYTES])pubs, m, x,
					   rcs) != DIME_OK) {
			/* rcs[] holds each pair's result, which the job reports as wrap would */
		}
		for (size_t q = 0; q < m; q++) {
			struct msg_wrap_pre *w = &pre[at[q] / 4];

			w->rc[at[q] % 4] = rcs[q];
			if (rcs[q] == DIME_OK)
				msg_kek_derive(&w->kek[at[q] % 4], x[q]);
		}
	}
	if (privs == privs_st) {
		dime_wipe(privs_st, sizeof(privs_st));
		dime_wipe(x_st, sizeof(x_st));
	} else {
		if (privs != NULL)
			dime_secure_free(privs); /* wipes */
		if (x != NULL)
			dime_secure_free(x);
	}
	for (size_t i = 0; i < n; i++) {
		struct dime_msg_job *j = &jobs[i];

		j->rc =
		    msg_wrap_mail_op(have != NULL && have[i] ? &pre[i] : NULL, ks, &j->out,
				     &j->out_len, &j->why, j->p, j->key, j->in, j->in_len, opts);
	}
	if (pre != NULL) {
		dime_wipe(pre, n * sizeof(*pre));
		free(pre);
	}
	free(have);
	free(pubs);
	free(at);
	free(rcs);
	return batch_first_rc(jobs, n);
}

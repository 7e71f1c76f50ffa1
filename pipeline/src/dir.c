/* The party directory: hosted keys loaded once and indexed by identity, signets parsed once and
 * kept in a bounded LRU cache that remembers misses (dime/dir.h). */

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dime/crypto.h"
#include "dime/dir.h"

/* One (ident, kind) run of d->keys: rows are listed by ident, kind, version, so every version
 * of one identity's keys is contiguous, oldest first. */
struct dir_kslot {
	uint32_t first, n; /* n == 0: empty slot */
};

struct dir_sig {
	struct dir_sig *hnext;	       /* chain of d->sigs, by (kind, ident, latest | fp) */
	struct dir_sig *pnext;	       /* chain of d->ptrs, by signet address (hits only) */
	struct dir_sig *lprev, *lnext; /* LRU list, most recent first; in_table entries only */
	enum dime_store_kind kind;
	uint8_t latest;	  /* looked up without a fingerprint */
	uint8_t in_table; /* 0: evicted, alive only while referenced */
	uint8_t fp[DIME_FP_BYTES];
	char ident[256];
	struct dime_signet *s; /* NULL: a remembered miss */
	int rc;		       /* a miss: what the lookup returned */
	const char *why;
	uint64_t expires_ns; /* a miss: forgotten after this */
	uint32_t refs;
};

struct dime_pl_dir {
	pthread_mutex_t mu;
	struct dime_store *st;
	struct dime_ks *ks;
	int ks_owned; /* 0: the caller's (a key process client) */
	struct dime_pl_keyinfo *keys;
	size_t n_keys, cap_keys;
	struct dir_kslot *kidx; /* open addressing, n_kidx a power of two */
	size_t n_kidx;
	_Atomic size_t last_user, last_org; /* index of the key that opened the last message */
	/* the signet cache, under mu */
	struct dir_sig **sigs, **ptrs; /* n_buckets each, a power of two */
	size_t n_buckets;
	struct dir_sig *lru_head, *lru_tail;
	size_t n_entries, n_pinned, cache_max;
	uint64_t miss_ttl_ns;
	uint64_t hits, miss_hits, loads, evictions;
};

static uint64_t
dir_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint32_t
dir_hash(const char *ident, enum dime_store_kind kind, const uint8_t *fp)
{
	uint32_t h = 2166136261u ^ (uint32_t)kind;

	for (const char *p = ident; *p != 0; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	if (fp != NULL)
		for (size_t i = 0; i < 8; i++) /* fingerprints are hashes: a few bytes will do */
			h = (h ^ fp[i]) * 16777619u;
	return h;
}

static size_t
dir_ptr_hash(const struct dime_pl_dir *d, const struct dime_signet *s)
{
	uintptr_t v = (uintptr_t)s;

	return (size_t)((v >> 4) ^ (v >> 17)) & (d->n_buckets - 1);
}

/* ---- hosted keys ---- */

struct dir_load {
	struct dime_pl_dir *d;
	int rc;
};

static int
dir_load_row(const struct dime_store_row *row, void *arg)
{
	struct dir_load *l = arg;
	struct dime_pl_dir *d = l->d;
	uint8_t *blob = NULL;
	size_t len = 0;
	uint32_t id = DIME_KS_NONE;

	if (!row->hosted)
		return 0;
	if (dime_store_get_row(d->st, &blob, &len, row->rowid) != DIME_OK)
		return 0;
	if (dime_ks_load(d->ks, &id, blob, len) == DIME_OK) {
		if (d->n_keys == d->cap_keys) {
			size_t cap = d->cap_keys ? d->cap_keys * 2 : 16;
			struct dime_pl_keyinfo *k = realloc(d->keys, cap * sizeof(*k));

			if (k == NULL) {
				l->rc = DIME_E_NOMEM;
				dime_wipe(blob, len);
				free(blob);
				return 1;
			}
			d->keys = k;
			d->cap_keys = cap;
		}
		d->keys[d->n_keys].id = id;
		d->keys[d->n_keys].kind = row->kind;
		d->keys[d->n_keys].version = row->version;
		snprintf(d->keys[d->n_keys].ident, sizeof(d->keys[0].ident), "%s", row->ident);
		d->n_keys++;
	}
	/* a damaged key row is skipped: the messages it would open fail with "no hosted key" */
	dime_wipe(blob, len);
	free(blob);
	return 0;
}

static struct dir_kslot *
dir_kslot_find(const struct dime_pl_dir *d, const char *ident, enum dime_store_kind kind)
{
	size_t mask = d->n_kidx - 1, i;

	if (d->n_kidx == 0)
		return NULL;
	for (i = dir_hash(ident, kind, NULL) & mask;; i = (i + 1) & mask) {
		struct dir_kslot *s = &d->kidx[i];

		if (s->n == 0)
			return s; /* the empty slot where it would go */
		if (d->keys[s->first].kind == kind && strcmp(d->keys[s->first].ident, ident) == 0)
			return s;
	}
}

static int
dir_index_keys(struct dime_pl_dir *d)
{
	size_t n = 16;

	while (n < 2 * d->n_keys)
		n *= 2;
	if ((d->kidx = calloc(n, sizeof(*d->kidx))) == NULL)
		return DIME_E_NOMEM;
	d->n_kidx = n;
	for (size_t i = 0; i < d->n_keys; i++) {
		struct dir_kslot *s = dir_kslot_find(d, d->keys[i].ident, d->keys[i].kind);

		if (s->n == 0)
			s->first = (uint32_t)i;
		/* runs are contiguous (listed by ident, kind, version) */
		s->n = (uint32_t)(i - s->first + 1);
	}
	return DIME_OK;
}

int
dime_pl_dir_open(struct dime_pl_dir **out, const char *store_path, const char **why)
{
	return dime_pl_dir_open_conf(out, store_path, NULL, why);
}

int
dime_pl_dir_open_conf(struct dime_pl_dir **out, const char *store_path,
		      const struct dime_pl_dir_conf *conf, const char **why)
{
	static const enum dime_store_kind kinds[2] = {DIME_STORE_ORG_KEY, DIME_STORE_USER_KEY};
	/* *why must outlive this call: the store's reason (wrong passphrase, missing key file) */
	static _Thread_local char err[512];
	struct dime_pl_dir *d;
	struct dir_load l;
	size_t nb = 64;
	int rc;

	*out = NULL;
	*why = "";
	err[0] = 0;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return DIME_E_NOMEM;
	pthread_mutex_init(&d->mu, NULL);
	d->cache_max =
	    conf != NULL && conf->cache_max > 0 ? conf->cache_max : DIME_PL_DIR_CACHE_DEFAULT;
	d->miss_ttl_ns =
	    (uint64_t)(conf != NULL && conf->miss_ttl_ms > 0 ? conf->miss_ttl_ms
							     : DIME_PL_DIR_MISS_TTL_DEFAULT) *
	    1000000u;
	while (nb < d->cache_max && nb < ((size_t)1 << 24))
		nb *= 2;
	d->n_buckets = nb;
	d->sigs = calloc(nb, sizeof(*d->sigs));
	d->ptrs = calloc(nb, sizeof(*d->ptrs));
	if (d->sigs == NULL || d->ptrs == NULL) {
		dime_pl_dir_close(d);
		return DIME_E_NOMEM;
	}
	if ((rc = dime_store_open_flags(
		 &d->st, store_path,
		 DIME_STORE_OPEN_EXISTING |
		     (conf != NULL && conf->ks != NULL ? DIME_STORE_OPEN_NO_SECRETS : 0),
		 err, sizeof(err))) != DIME_OK) {
		if (err[0] == 0)
			snprintf(err, sizeof(err), "%s",
				 rc == DIME_E_NOTFOUND ? "no store at this path"
						       : "cannot open the store");
		*why = err;
		dime_pl_dir_close(d);
		return rc == DIME_E_NOTFOUND ? rc : DIME_E_IO;
	}
	l.d = d;
	l.rc = DIME_OK;
	if (conf != NULL && conf->ks != NULL) {
		d->ks = conf->ks;
		if (conf->n_keys > 0 &&
		    (d->keys = malloc(conf->n_keys * sizeof(*d->keys))) == NULL) {
			dime_pl_dir_close(d);
			return DIME_E_NOMEM;
		}
		if (conf->n_keys > 0)
			memcpy(d->keys, conf->keys, conf->n_keys * sizeof(*d->keys));
		d->n_keys = d->cap_keys = conf->n_keys;
	} else if (dime_ks_new(&d->ks) != DIME_OK) {
		dime_pl_dir_close(d);
		return DIME_E_NOMEM;
	} else {
		d->ks_owned = 1;
	}
	for (int i = 0; i < 2 && l.rc == DIME_OK && d->ks_owned; i++)
		if (dime_store_list(d->st, NULL, kinds[i], dir_load_row, &l) != DIME_OK) {
			*why = "cannot list the store's keys";
			l.rc = DIME_E_IO;
		}
	if (l.rc == DIME_OK && dir_index_keys(d) != DIME_OK)
		l.rc = DIME_E_NOMEM;
	if (l.rc != DIME_OK) {
		dime_pl_dir_close(d);
		return l.rc;
	}
	*out = d;
	return DIME_OK;
}

static void
dir_sig_free(struct dir_sig *e)
{
	dime_signet_free(e->s);
	free(e);
}

void
dime_pl_dir_close(struct dime_pl_dir *d)
{
	if (d == NULL)
		return;
	/* evicted entries still referenced: a caller broke the contract, but free them anyway
	 * (before the table's entries, which the same chains pass through) */
	for (size_t b = 0; d->ptrs != NULL && b < d->n_buckets; b++)
		for (struct dir_sig *e = d->ptrs[b], *next; e != NULL; e = next) {
			next = e->pnext;
			if (!e->in_table)
				dir_sig_free(e);
		}
	for (struct dir_sig *e = d->lru_head, *next; e != NULL; e = next) {
		next = e->lnext;
		dir_sig_free(e);
	}
	free(d->sigs);
	free(d->ptrs);
	free(d->kidx);
	free(d->keys);
	if (d->ks_owned)
		dime_ks_free(d->ks);
	dime_store_close(d->st);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

const struct dime_ks *
dime_pl_dir_ks(const struct dime_pl_dir *d)
{
	return d->ks;
}

/* ---- the signet cache (all under d->mu) ---- */

static void
dir_lru_unlink(struct dime_pl_dir *d, struct dir_sig *e)
{
	if (e->lprev != NULL)
		e->lprev->lnext = e->lnext;
	else
		d->lru_head = e->lnext;
	if (e->lnext != NULL)
		e->lnext->lprev = e->lprev;
	else
		d->lru_tail = e->lprev;
	e->lprev = e->lnext = NULL;
}

static void
dir_lru_push(struct dime_pl_dir *d, struct dir_sig *e)
{
	e->lprev = NULL;
	e->lnext = d->lru_head;
	if (d->lru_head != NULL)
		d->lru_head->lprev = e;
	d->lru_head = e;
	if (d->lru_tail == NULL)
		d->lru_tail = e;
}

static void
dir_ptr_unlink(struct dime_pl_dir *d, struct dir_sig *e)
{
	struct dir_sig **pp = &d->ptrs[dir_ptr_hash(d, e->s)];

	while (*pp != NULL && *pp != e)
		pp = &(*pp)->pnext;
	if (*pp == e)
		*pp = e->pnext;
}

/* Take e out of the table and the LRU list; it is freed now, or on its last release. */
static void
dir_evict(struct dime_pl_dir *d, struct dir_sig *e)
{
	struct dir_sig **pp =
	    &d->sigs[dir_hash(e->ident, e->kind, e->latest ? NULL : e->fp) & (d->n_buckets - 1)];

	while (*pp != NULL && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp == e)
		*pp = e->hnext;
	dir_lru_unlink(d, e);
	e->in_table = 0;
	d->n_entries--;
	if (e->refs > 0) {
		d->n_pinned++;
		return;
	}
	if (e->s != NULL)
		dir_ptr_unlink(d, e);
	dir_sig_free(e);
}

static void
dir_trim(struct dime_pl_dir *d)
{
	while (d->n_entries > d->cache_max && d->lru_tail != NULL) {
		d->evictions++;
		dir_evict(d, d->lru_tail);
	}
}

static struct dir_sig *
dir_lookup(struct dime_pl_dir *d, const char *ident, enum dime_store_kind kind, const uint8_t *fp)
{
	struct dir_sig *e = d->sigs[dir_hash(ident, kind, fp) & (d->n_buckets - 1)];

	for (; e != NULL; e = e->hnext)
		if (e->kind == kind && strcmp(e->ident, ident) == 0 &&
		    (fp == NULL ? e->latest : !e->latest && memcmp(e->fp, fp, DIME_FP_BYTES) == 0))
			return e;
	return NULL;
}

/* Insert a hit (s) or a miss (s NULL: rc, why). Takes s. Returns the entry or NULL (no memory:
 * s is freed). */
static struct dir_sig *
dir_insert(struct dime_pl_dir *d, const char *ident, enum dime_store_kind kind, const uint8_t *fp,
	   struct dime_signet *s, int rc, const char *why)
{
	struct dir_sig *e;
	size_t b;

	if (strlen(ident) >= sizeof(e->ident) || (e = calloc(1, sizeof(*e))) == NULL) {
		dime_signet_free(s);
		return NULL;
	}
	e->kind = kind;
	e->latest = fp == NULL;
	if (fp != NULL)
		memcpy(e->fp, fp, DIME_FP_BYTES);
	memcpy(e->ident, ident, strlen(ident) + 1);
	e->s = s;
	e->rc = rc;
	e->why = why;
	e->expires_ns = s == NULL ? dir_now_ns() + d->miss_ttl_ns : 0;
	e->in_table = 1;
	b = dir_hash(ident, kind, fp) & (d->n_buckets - 1);
	e->hnext = d->sigs[b];
	d->sigs[b] = e;
	if (s != NULL) {
		b = dir_ptr_hash(d, s);
		e->pnext = d->ptrs[b];
		d->ptrs[b] = e;
	}
	dir_lru_push(d, e);
	d->n_entries++;
	return e;
}

/* Find the stored version matching fp (or the latest) and parse it. Versions parsed on the
 * way that do not match are cached too: the next message probably names one of them. */
static int
dir_signet_load(struct dime_pl_dir *d, struct dime_signet **out, const char **why,
		const char *ident, enum dime_store_kind kind, const uint8_t *fp)
{
	*out = NULL;
	d->loads++;
	/* version 0 is the latest; then walk 1, 2, ... until none is left */
	for (uint32_t v = 0;; v++) {
		uint8_t *blob = NULL, got[DIME_FP_BYTES];
		size_t len = 0;
		const char *pwhy = "";
		struct dime_signet *s = NULL;
		int rc = dime_store_get(d->st, &blob, &len, NULL, ident, kind, v);

		if (rc == DIME_E_NOTFOUND || (rc == DIME_E_INVALID && v == 0)) {
			*why = fp != NULL && v > 0
				   ? "no stored version has the fingerprint the message names"
				   : "no signet of this party in the store";
			return DIME_E_NOTFOUND;
		}
		if (rc != DIME_OK) {
			*why = "the store cannot be read";
			return rc == DIME_E_NOMEM ? rc : DIME_E_IO;
		}
		rc = dime_signet_parse(&s, &pwhy, blob, len);
		free(blob);
		if (rc != DIME_OK) {
			*why = "the store holds a damaged signet";
			return DIME_E_MALFORMED;
		}
		if (fp == NULL) {
			*out = s;
			return DIME_OK;
		}
		if (dime_signet_fingerprint(got, s, DIME_FP_CRYPTO) == DIME_OK) {
			if (memcmp(got, fp, DIME_FP_BYTES) == 0) {
				*out = s;
				return DIME_OK;
			}
			if (v > 0 && dir_lookup(d, ident, kind, got) == NULL) {
				(void)dir_insert(d, ident, kind, got, s, DIME_OK, "");
				continue;
			}
		}
		dime_signet_free(s);
	}
}

int
dime_pl_dir_signet(struct dime_pl_dir *d, const struct dime_signet **out, const char **why,
		   const char *ident, enum dime_store_kind kind, const uint8_t *fp)
{
	struct dir_sig *e;
	struct dime_signet *s = NULL;
	const char *lwhy = "";
	int rc;

	*out = NULL;
	*why = "";
	pthread_mutex_lock(&d->mu);
	e = dir_lookup(d, ident, kind, fp);
	if (e != NULL && e->s == NULL && dir_now_ns() >= e->expires_ns) {
		dir_evict(d, e); /* an old miss: ask the store again */
		e = NULL;
	}
	if (e != NULL) {
		dir_lru_unlink(d, e);
		dir_lru_push(d, e);
		if (e->s == NULL) {
			d->miss_hits++;
			*why = e->why;
			rc = e->rc;
		} else {
			d->hits++;
			e->refs++;
			*out = e->s;
			rc = DIME_OK;
		}
		pthread_mutex_unlock(&d->mu);
		return rc;
	}
	rc = dir_signet_load(d, &s, &lwhy, ident, kind, fp);
	/* remember what the store said: a signet or its absence (not a failing store) */
	if (rc == DIME_OK || rc == DIME_E_NOTFOUND || rc == DIME_E_MALFORMED) {
		e = dir_insert(d, ident, kind, fp, s, rc, lwhy);
		if (e == NULL && rc == DIME_OK)
			rc = DIME_E_NOMEM;
		if (e != NULL && rc == DIME_OK) {
			e->refs++;
			*out = e->s;
		}
	}
	*why = rc == DIME_E_NOMEM ? "out of memory" : lwhy;
	dir_trim(d);
	pthread_mutex_unlock(&d->mu);
	return rc;
}

void
dime_pl_dir_release(struct dime_pl_dir *d, const struct dime_signet *s)
{
	struct dir_sig *e;

	if (d == NULL || s == NULL)
		return;
	pthread_mutex_lock(&d->mu);
	for (e = d->ptrs[dir_ptr_hash(d, s)]; e != NULL && e->s != s; e = e->pnext)
		;
	DIME_ASSERT(e != NULL && e->refs > 0);
	if (--e->refs == 0 && !e->in_table) {
		d->n_pinned--;
		dir_ptr_unlink(d, e);
		dir_sig_free(e);
	}
	pthread_mutex_unlock(&d->mu);
}

void
dime_pl_dir_parties_release(struct dime_pl_dir *d, struct dime_msg_parties *p)
{
	dime_pl_dir_release(d, p->author);
	dime_pl_dir_release(d, p->origin);
	dime_pl_dir_release(d, p->destination);
	dime_pl_dir_release(d, p->recipient);
	memset(p, 0, sizeof(*p));
}

void
dime_pl_dir_stats(struct dime_pl_dir *d, struct dime_pl_dir_stats *st)
{
	pthread_mutex_lock(&d->mu);
	st->hits = d->hits;
	st->miss_hits = d->miss_hits;
	st->loads = d->loads;
	st->evictions = d->evictions;
	st->entries = d->n_entries;
	st->pinned = d->n_pinned;
	pthread_mutex_unlock(&d->mu);
}

/* ---- keys ---- */

int
dime_pl_dir_key(const struct dime_pl_dir *d, uint32_t *key, const char *ident,
		enum dime_store_kind kind)
{
	const struct dir_kslot *s = dir_kslot_find(d, ident, kind);

	*key = DIME_KS_NONE;
	if (s == NULL || s->n == 0)
		return DIME_E_NOTFOUND;
	*key = d->keys[s->first + s->n - 1].id; /* the newest version */
	return DIME_OK;
}

size_t
dime_pl_dir_keys(const struct dime_pl_dir *d, uint32_t *ids, const char **idents, size_t cap,
		 enum dime_store_kind kind)
{
	size_t n = 0;

	for (size_t i = 0; i < d->n_keys; i++)
		if (d->keys[i].kind == kind) {
			if (n < cap) {
				ids[n] = d->keys[i].id;
				idents[n] = d->keys[i].ident;
			}
			n++;
		}
	return n;
}

static int
dir_try(struct dime_pl_dir *d, struct dime_msg_envelope *env, const uint8_t *msg, size_t len,
	enum dime_msg_actor as, size_t i, struct dime_msg_keks *memo)
{
	const char *pwhy = "";

	return dime_msg_envelope_peek_memo(memo, d->ks, env, &pwhy, msg, len, as, d->keys[i].id);
}

int
dime_pl_dir_find(struct dime_pl_dir *d, uint32_t *key, const char **ident,
		 struct dime_msg_envelope *env, const char **why, const uint8_t *msg, size_t len,
		 enum dime_msg_actor as, enum dime_store_kind kind, const char *only,
		 struct dime_msg_keks *memo)
{
	_Atomic size_t *last = kind == DIME_STORE_USER_KEY ? &d->last_user : &d->last_org;
	size_t first = atomic_load_explicit(last, memory_order_relaxed), hit = SIZE_MAX;
	int rc = DIME_OK;

	*key = DIME_KS_NONE;
	*ident = NULL;
	/* A key that cannot answer now (DIME_E_AGAIN: a remote keystore whose key process is
	 * restarting) stops the search: the message may well be ours, so this is a temporary
	 * failure, not "not found". */
	if (only != NULL) {
		const struct dir_kslot *s = dir_kslot_find(d, only, kind);

		/* the identity's keys, newest first: a message to a rotated signet is rarer */
		for (size_t k = s != NULL ? s->n : 0;
		     k > 0 && hit == SIZE_MAX && rc != DIME_E_AGAIN; k--)
			if ((rc = dir_try(d, env, msg, len, as, s->first + k - 1, memo)) == DIME_OK)
				hit = s->first + k - 1;
		if (hit == SIZE_MAX) {
			memset(env, 0, sizeof(*env));
			*why = rc == DIME_E_AGAIN ? "its keys cannot be used now (try again)"
			       : s == NULL || s->n == 0
				   ? "it is not hosted here (no keys in the store)"
				   : "none of its keys opens this message";
			return rc == DIME_E_AGAIN ? rc : DIME_E_NOTFOUND;
		}
	} else {
		for (size_t k = 0; k < d->n_keys && hit == SIZE_MAX && rc != DIME_E_AGAIN; k++) {
			size_t i = (first + k) % d->n_keys;

			if (d->keys[i].kind == kind &&
			    (rc = dir_try(d, env, msg, len, as, i, memo)) == DIME_OK)
				hit = i;
		}
		if (hit == SIZE_MAX) {
			memset(env, 0, sizeof(*env));
			*why = rc == DIME_E_AGAIN ? "the hosted keys cannot be used now (try again)"
			       : kind == DIME_STORE_USER_KEY
				   ? "no hosted user's keys open this message"
				   : "no hosted organisation's keys open this message";
			return rc == DIME_E_AGAIN ? rc : DIME_E_NOTFOUND;
		}
		atomic_store_explicit(last, hit, memory_order_relaxed);
	}
	*key = d->keys[hit].id;
	*ident = d->keys[hit].ident;
	return DIME_OK;
}

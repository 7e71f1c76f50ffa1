/* The party directory: hosted keys loaded once, signets parsed once (dime/dir.h). */

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dime/crypto.h"
#include "dime/dir.h"

struct dir_key {
	uint32_t id;
	enum dime_store_kind kind;
	uint32_t version;
	char ident[256];
};

struct dir_sig {
	struct dir_sig *next;
	enum dime_store_kind kind;
	int latest; /* looked up without a fingerprint */
	uint8_t fp[DIME_FP_BYTES];
	char ident[256];
	struct dime_signet *s;
};

#define DIR_BUCKETS 256u

struct dime_pl_dir {
	pthread_mutex_t mu;
	struct dime_store *st;
	struct dime_ks *ks;
	struct dir_key *keys;
	size_t n_keys, cap_keys;
	_Atomic size_t last_user, last_org; /* index of the key that opened the last message */
	struct dir_sig *sigs[DIR_BUCKETS];
};

static unsigned
dir_hash(const char *ident, enum dime_store_kind kind)
{
	uint32_t h = 2166136261u ^ (uint32_t)kind;

	for (const char *p = ident; *p != 0; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h % DIR_BUCKETS;
}

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
			struct dir_key *k = realloc(d->keys, cap * sizeof(*k));

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

int
dime_pl_dir_open(struct dime_pl_dir **out, const char *store_path, const char **why)
{
	static const enum dime_store_kind kinds[2] = {DIME_STORE_ORG_KEY, DIME_STORE_USER_KEY};
	/* *why must outlive this call: the store's reason (wrong passphrase, missing key file) */
	static _Thread_local char err[512];
	struct dime_pl_dir *d;
	struct dir_load l;
	int rc;

	*out = NULL;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return DIME_E_NOMEM;
	pthread_mutex_init(&d->mu, NULL);
	if ((rc = dime_store_open_flags(&d->st, store_path, DIME_STORE_OPEN_EXISTING, err,
					sizeof(err))) != DIME_OK) {
		if (err[0] == 0)
			snprintf(err, sizeof(err), "%s",
				 rc == DIME_E_NOTFOUND ? "no store at this path" : "cannot open the store");
		*why = err;
		dime_pl_dir_close(d);
		return DIME_E_IO;
	}
	if (dime_ks_new(&d->ks) != DIME_OK) {
		dime_pl_dir_close(d);
		return DIME_E_NOMEM;
	}
	l.d = d;
	l.rc = DIME_OK;
	for (int i = 0; i < 2 && l.rc == DIME_OK; i++)
		if (dime_store_list(d->st, NULL, kinds[i], dir_load_row, &l) != DIME_OK) {
			*why = "cannot list the store's keys";
			l.rc = DIME_E_IO;
		}
	if (l.rc != DIME_OK) {
		dime_pl_dir_close(d);
		return l.rc;
	}
	*out = d;
	return DIME_OK;
}

void
dime_pl_dir_close(struct dime_pl_dir *d)
{
	if (d == NULL)
		return;
	for (size_t b = 0; b < DIR_BUCKETS; b++)
		for (struct dir_sig *e = d->sigs[b], *next; e != NULL; e = next) {
			next = e->next;
			dime_signet_free(e->s);
			free(e);
		}
	free(d->keys);
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

/* Under d->mu: find the stored version matching fp (or the latest) and parse it. */
static int
dir_signet_load(struct dime_pl_dir *d, struct dime_signet **out, const char **why,
		const char *ident, enum dime_store_kind kind, const uint8_t *fp)
{
	*out = NULL;
	/* version 0 is the latest; then walk 1, 2, ... until none is left */
	for (uint32_t v = 0;; v++) {
		uint8_t *blob = NULL, got[DIME_FP_BYTES];
		size_t len = 0;
		const char *pwhy = "";
		struct dime_signet *s = NULL;
		int rc = dime_store_get(d->st, &blob, &len, NULL, ident, kind, v);

		if (rc == DIME_E_NOTFOUND) {
			*why = fp != NULL
				   ? "no signet in the store with the fingerprint the message "
				     "names"
				   : "no signet of this party in the store";
			return rc;
		}
		if (rc != DIME_OK) {
			*why = "the store cannot be read";
			return rc;
		}
		rc = dime_signet_parse(&s, &pwhy, blob, len);
		free(blob);
		if (rc != DIME_OK) {
			*why = "the store holds a damaged signet";
			return DIME_E_MALFORMED;
		}
		if (fp == NULL || (dime_signet_fingerprint(got, s, DIME_FP_CRYPTO) == DIME_OK &&
				   memcmp(got, fp, DIME_FP_BYTES) == 0)) {
			*out = s;
			return DIME_OK;
		}
		dime_signet_free(s);
	}
}

int
dime_pl_dir_signet(struct dime_pl_dir *d, const struct dime_signet **out, const char **why,
		   const char *ident, enum dime_store_kind kind, const uint8_t *fp)
{
	unsigned b = dir_hash(ident, kind);
	struct dir_sig *e;
	struct dime_signet *s = NULL;
	int rc;

	*out = NULL;
	pthread_mutex_lock(&d->mu);
	for (e = d->sigs[b]; e != NULL; e = e->next)
		if (e->kind == kind && strcmp(e->ident, ident) == 0 &&
		    (fp == NULL ? e->latest : !e->latest && memcmp(e->fp, fp, DIME_FP_BYTES) == 0))
			break;
	if (e != NULL) {
		*out = e->s;
		pthread_mutex_unlock(&d->mu);
		return DIME_OK;
	}
	/* Misses are not cached: a signet imported while the batch runs is found next time. */
	rc = dir_signet_load(d, &s, why, ident, kind, fp);
	if (rc == DIME_OK) {
		if (strlen(ident) >= sizeof(e->ident) || (e = calloc(1, sizeof(*e))) == NULL) {
			dime_signet_free(s);
			pthread_mutex_unlock(&d->mu);
			return DIME_E_NOMEM;
		}
		e->kind = kind;
		e->latest = fp == NULL;
		if (fp != NULL)
			memcpy(e->fp, fp, DIME_FP_BYTES);
		memcpy(e->ident, ident, strlen(ident) + 1);
		e->s = s;
		e->next = d->sigs[b];
		d->sigs[b] = e;
		*out = s;
	}
	pthread_mutex_unlock(&d->mu);
	return rc;
}

int
dime_pl_dir_key(struct dime_pl_dir *d, uint32_t *key, const char *ident, enum dime_store_kind kind)
{
	uint32_t best = 0;

	*key = DIME_KS_NONE;
	for (size_t i = 0; i < d->n_keys; i++)
		if (d->keys[i].kind == kind && strcmp(d->keys[i].ident, ident) == 0 &&
		    d->keys[i].version > best) {
			best = d->keys[i].version;
			*key = d->keys[i].id;
		}
	return *key == DIME_KS_NONE ? DIME_E_NOTFOUND : DIME_OK;
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

int
dime_pl_dir_find(struct dime_pl_dir *d, uint32_t *key, const char **ident,
		 struct dime_msg_envelope *env, const char **why, const uint8_t *msg, size_t len,
		 enum dime_msg_actor as, enum dime_store_kind kind, const char *only,
		 struct dime_msg_keks *memo)
{
	_Atomic size_t *last = kind == DIME_STORE_USER_KEY ? &d->last_user : &d->last_org;
	size_t first = atomic_load_explicit(last, memory_order_relaxed);

	*key = DIME_KS_NONE;
	*ident = NULL;
	for (size_t k = 0; k < d->n_keys; k++) {
		size_t i = (first + k) % d->n_keys;
		const char *pwhy = "";

		if (d->keys[i].kind != kind ||
		    (only != NULL && strcmp(only, d->keys[i].ident) != 0))
			continue;
		if (dime_msg_envelope_peek_memo(memo, d->ks, env, &pwhy, msg, len, as,
						d->keys[i].id) != DIME_OK)
			continue;
		atomic_store_explicit(last, i, memory_order_relaxed);
		*key = d->keys[i].id;
		*ident = d->keys[i].ident;
		return DIME_OK;
	}
	memset(env, 0, sizeof(*env));
	*why = kind == DIME_STORE_USER_KEY ? "no hosted user's keys open this message"
					   : "no hosted organisation's keys open this message";
	return DIME_E_NOTFOUND;
}

int
dime_pl_dir_msg(struct dime_pl_dir *d, uint32_t *key, const char **ident,
		struct dime_msg_envelope *env, struct dime_msg_parties *p, const char **why,
		const uint8_t *msg, size_t len, enum dime_msg_actor as, const char *only,
		struct dime_msg_keks *memo)
{
	const struct dime_signet *s[4] = {NULL, NULL, NULL, NULL};
	struct dime_msg_rekey_info ri;
	int org = as == DIME_ACTOR_ORIGIN || as == DIME_ACTOR_DESTINATION, rc;

	memset(p, 0, sizeof(*p));
	rc = dime_pl_dir_find(d, key, ident, env, why, msg, len, as,
			      org ? DIME_STORE_ORG_KEY : DIME_STORE_USER_KEY, only, memo);
	if (rc != DIME_OK) {
		if (as == DIME_ACTOR_DESTINATION)
			*why = "no hosted organisation is the destination of this message";
		return rc;
	}
	if (as == DIME_ACTOR_ORIGIN) {
		if ((rc = dime_pl_dir_signet(d, &s[0], why, env->author, DIME_STORE_USER_SIGNET,
					     env->author_fp)) != DIME_OK ||
		    (rc = dime_pl_dir_signet(d, &s[1], why, *ident, DIME_STORE_ORG_SIGNET, NULL)) !=
			DIME_OK)
			return rc;
	} else if (as == DIME_ACTOR_DESTINATION) {
		if ((rc = dime_pl_dir_signet(d, &s[1], why, env->origin, DIME_STORE_ORG_SIGNET,
					     env->origin_fp)) != DIME_OK)
			return rc;
	} else {
		if ((rc = dime_pl_dir_signet(d, &s[0], why, env->author, DIME_STORE_USER_SIGNET,
					     env->author_fp)) != DIME_OK ||
		    (rc = dime_pl_dir_signet(d, &s[1], why, env->origin, DIME_STORE_ORG_SIGNET,
					     env->origin_fp)) != DIME_OK ||
		    (rc = dime_pl_dir_signet(d, &s[2], why, env->destination, DIME_STORE_ORG_SIGNET,
					     env->destination_fp)) != DIME_OK ||
		    (rc = dime_pl_dir_signet(d, &s[3], why, env->recipient, DIME_STORE_USER_SIGNET,
					     env->recipient_fp)) != DIME_OK)
			return rc;
		if (as == DIME_ACTOR_RECIPIENT) {
			if ((rc = dime_msg_rekey_info(&ri, why, msg, len)) != DIME_OK)
				return rc;
			/* the record's claim is only a lookup key: dime_msg_open checks it */
			if (ri.rekeyed &&
			    dime_pl_dir_signet(d, &s[3], why, env->recipient,
					       DIME_STORE_USER_SIGNET, ri.new_fp) != DIME_OK) {
				*why = "the re-key record is for a signet that is not a stored "
				       "version of the recipient";
				return DIME_E_NOTFOUND;
			}
		}
	}
	p->author = s[0];
	p->origin = s[1];
	p->destination = s[2];
	p->recipient = s[3];
	return DIME_OK;
}

/* The message path (dime/plmsg.h): input classification, party lookup through the directory,
 * one batched engine call per group, verdict lines. `dime msg`, `dime batch` and the daemon
 * all come through here, so a message gets the same verdict and reason whoever asks. */

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dime/codec.h"
#include "dime/crypto.h"
#include "dime/msg_armor.h"
#include "dime/plmsg.h"

#define PLMSG_NOT "not a D/MIME message: "

struct dime_pl_msg {
	struct dime_pl_msg_conf conf;
	struct dime_pl_dir *dir;
	/* wrap: the parties and keys of the whole run (references held until free) */
	struct dime_msg_parties wp;
	uint32_t author_key, org_key;
	/* rekey: the new signet as given */
	uint8_t new_fp[DIME_FP_BYTES];
	/* bounce-verify: every hosted org, and the one that verified last */
	uint32_t *org_ids;
	const char **org_idents;
	size_t n_orgs;
	_Atomic size_t org_last;
};

struct dime_pl_msg_worker {
	const struct dime_pl_msg *m;
	size_t cap;
	struct dime_msg_keks *memo;	 /* the group's peeks' KEKs, reused by its batch call */
	struct dime_msg_job *jb;	 /* the engine's jobs, cap */
	struct dime_msg_parties *p;	 /* per job's parties (references), cap */
	struct dime_msg_bounce_info *bi; /* cap */
	size_t *map;			 /* jb[k] is jobs[map[k]] */
};

/* ---- reasons ---- */

static void
plmsg_fail(struct dime_pl_msg_job *j, int rc, const char *why)
{
	j->rc = rc;
	j->why = why;
}

static void plmsg_failf(struct dime_pl_msg_job *j, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
plmsg_failf(struct dime_pl_msg_job *j, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(j->msg, sizeof(j->msg), fmt, ap);
	va_end(ap);
	j->rc = rc;
	j->why = j->msg;
}

static void
plmsg_not_dime(struct dime_pl_msg_job *j, int rc, const char *why)
{
	plmsg_failf(j, rc, PLMSG_NOT "%s", why != NULL && *why ? why : dime_strerror(rc));
}

/* ---- the run ---- */

static const char *
plmsg_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at == NULL || at == addr || at[1] == 0 ? NULL : at + 1;
}

/* A signet the run or a job needs, with a reason naming it when it is missing. */
static int
plmsg_signet(struct dime_pl_dir *dir, const struct dime_signet **s, char *why, size_t cap,
	     const char *role, const char *ident, enum dime_store_kind kind, const uint8_t *fp)
{
	const char *dwhy = "";
	int rc = dime_pl_dir_signet(dir, s, &dwhy, ident, kind, fp);

	if (rc != DIME_OK)
		snprintf(why, cap, "missing the %s signet of %s: %s", role, ident, dwhy);
	return rc;
}

static int
plmsg_setup_wrap(struct dime_pl_msg *m, char *why, size_t cap)
{
	const struct dime_pl_msg_conf *c = &m->conf;
	const char *fd, *td;
	int rc;

	if (c->from == NULL || c->to == NULL || (fd = plmsg_domain(c->from)) == NULL ||
	    (td = plmsg_domain(c->to)) == NULL) {
		snprintf(why, cap, "wrap needs --from and --to addresses");
		return DIME_E_INVALID;
	}
	if ((rc = plmsg_signet(m->dir, &m->wp.author, why, cap, "author", c->from,
			       DIME_STORE_USER_SIGNET, NULL)) != DIME_OK ||
	    (rc = plmsg_signet(m->dir, &m->wp.origin, why, cap, "origin", fd, DIME_STORE_ORG_SIGNET,
			       NULL)) != DIME_OK ||
	    (rc = plmsg_signet(m->dir, &m->wp.destination, why, cap, "destination", td,
			       DIME_STORE_ORG_SIGNET, NULL)) != DIME_OK ||
	    (rc = plmsg_signet(m->dir, &m->wp.recipient, why, cap, "recipient", c->to,
			       DIME_STORE_USER_SIGNET, NULL)) != DIME_OK)
		return rc == DIME_E_NOTFOUND || rc == DIME_E_MALFORMED ? DIME_E_NOTFOUND : rc;
	if (dime_pl_dir_key(m->dir, &m->author_key, c->from, DIME_STORE_USER_KEY) != DIME_OK) {
		snprintf(why, cap, "missing the keys of the author %s (not hosted here)", c->from);
		return DIME_E_NOTFOUND;
	}
	if (c->origin_sign &&
	    dime_pl_dir_key(m->dir, &m->org_key, fd, DIME_STORE_ORG_KEY) != DIME_OK) {
		snprintf(why, cap,
			 "--origin-sign: missing the keys of the origin %s (not hosted here)", fd);
		return DIME_E_NOTFOUND;
	}
	return DIME_OK;
}

static int
plmsg_setup_rekey(struct dime_pl_msg *m, char *why, size_t cap)
{
	struct dime_signet *s = NULL;
	const char *pwhy = "";
	int rc;

	if (m->conf.to_signet == NULL) {
		snprintf(why, cap, "rekey needs the new signet");
		return DIME_E_INVALID;
	}
	rc = dime_signet_load(&s, &pwhy, m->conf.to_signet, m->conf.to_signet_len);
	if (rc == DIME_OK && dime_signet_fingerprint(m->new_fp, s, DIME_FP_CRYPTO) != DIME_OK)
		rc = DIME_E_INVALID;
	dime_signet_free(s);
	if (rc != DIME_OK) {
		snprintf(why, cap, "the new signet is not a valid signet: %s",
			 *pwhy ? pwhy : dime_strerror(rc));
		return DIME_E_INVALID;
	}
	return DIME_OK;
}

static int
plmsg_setup_orgs(struct dime_pl_msg *m)
{
	size_t n = dime_pl_dir_keys(m->dir, NULL, NULL, 0, DIME_STORE_ORG_KEY);

	m->org_ids = calloc(n ? n : 1, sizeof(*m->org_ids));
	m->org_idents = calloc(n ? n : 1, sizeof(*m->org_idents));
	if (m->org_ids == NULL || m->org_idents == NULL)
		return DIME_E_NOMEM;
	m->n_orgs = dime_pl_dir_keys(m->dir, m->org_ids, m->org_idents, n, DIME_STORE_ORG_KEY);
	return DIME_OK;
}

int
dime_pl_msg_new(struct dime_pl_msg **out, char *why, size_t why_cap, struct dime_pl_dir *dir,
		const struct dime_pl_msg_conf *conf)
{
	struct dime_pl_msg *m;
	int rc = DIME_OK;

	*out = NULL;
	if (why_cap > 0)
		why[0] = 0;
	if (conf == NULL || dir == NULL || conf->op < DIME_PL_MSG_WRAP ||
	    conf->op > DIME_PL_MSG_BOUNCE_VERIFY ||
	    (conf->op == DIME_PL_MSG_OPEN && conf->as != DIME_ACTOR_RECIPIENT &&
	     conf->as != DIME_ACTOR_AUTHOR)) {
		snprintf(why, why_cap, "invalid message operation");
		return DIME_E_INVALID;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return DIME_E_NOMEM;
	m->conf = *conf;
	m->dir = dir;
	if (conf->op == DIME_PL_MSG_WRAP)
		rc = plmsg_setup_wrap(m, why, why_cap);
	else if (conf->op == DIME_PL_MSG_REKEY)
		rc = plmsg_setup_rekey(m, why, why_cap);
	else if (conf->op == DIME_PL_MSG_BOUNCE_VERIFY)
		rc = plmsg_setup_orgs(m);
	if (rc == DIME_E_NOMEM)
		snprintf(why, why_cap, "out of memory");
	if (rc != DIME_OK) {
		dime_pl_msg_free(m);
		return rc;
	}
	*out = m;
	return DIME_OK;
}

void
dime_pl_msg_free(struct dime_pl_msg *m)
{
	if (m == NULL)
		return;
	dime_pl_dir_parties_release(m->dir, &m->wp);
	free(m->org_ids);
	free(m->org_idents);
	free(m);
}

int
dime_pl_msg_worker_new(struct dime_pl_msg_worker **out, const struct dime_pl_msg *m,
		       size_t group_max)
{
	struct dime_pl_msg_worker *w;

	*out = NULL;
	if (group_max == 0)
		group_max = 1;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return DIME_E_NOMEM;
	w->m = m;
	w->cap = group_max;
	w->jb = calloc(group_max, sizeof(*w->jb));
	w->p = calloc(group_max, sizeof(*w->p));
	w->bi = calloc(group_max, sizeof(*w->bi));
	w->map = calloc(group_max, sizeof(*w->map));
	/* a KEK per message peeked, and one per extra hosted key tried */
	if (w->jb == NULL || w->p == NULL || w->bi == NULL || w->map == NULL ||
	    dime_msg_keks_new(&w->memo, 2 * group_max) != DIME_OK) {
		dime_pl_msg_worker_free(w);
		return DIME_E_NOMEM;
	}
	*out = w;
	return DIME_OK;
}

void
dime_pl_msg_worker_free(struct dime_pl_msg_worker *w)
{
	if (w == NULL)
		return;
	dime_msg_keks_free(w->memo);
	free(w->jb);
	free(w->p);
	if (w->bi != NULL) {
		dime_wipe(w->bi, w->cap * sizeof(*w->bi));
		free(w->bi);
	}
	free(w->map);
	free(w);
}

void
dime_pl_msg_job_clear(struct dime_pl_msg_job *j)
{
	dime_msg_free(j->out, j->out_len);
	j->out = NULL;
	j->out_len = 0;
	j->rc = DIME_OK;
	j->why = "";
	j->line[0] = 0;
	j->msg[0] = 0;
	j->missing[0] = 0;
}

static void
plmsg_job_start(struct dime_pl_msg_job *j)
{
	j->out = NULL;
	j->out_len = 0;
	j->rc = DIME_OK;
	j->why = "";
	j->line[0] = 0;
	j->msg[0] = 0;
	j->missing[0] = 0;
}

/* ---- input ---- */

static size_t
plmsg_limit(enum dime_pl_msg_op op, size_t limit)
{
	size_t eng = op == DIME_PL_MSG_WRAP ? DIME_MSG_MAX_BYTES / 2
		     : op == DIME_PL_MSG_OPEN || op == DIME_PL_MSG_REKEY ||
			     op == DIME_PL_MSG_ACCEPT || op == DIME_PL_MSG_ORIGIN_SIGN ||
			     op == DIME_PL_MSG_BOUNCE
			 ? DIME_MSG_REKEY_MAX_BYTES
			 : DIME_MSG_MAX_BYTES;

	return limit == 0 || limit > eng ? eng : limit;
}

size_t
dime_pl_msg_input_max(enum dime_pl_msg_op op, size_t limit)
{
	size_t bin = plmsg_limit(op, limit), b64;

	if (op == DIME_PL_MSG_WRAP)
		return bin;
	/* base64 at 64 columns with CRLF line ends, plus the armor lines */
	b64 = (bin + 2) / 3 * 4;
	return b64 + (b64 / 64 + 1) * 2 + 512;
}

int
dime_pl_msg_input_bound(size_t *bound, const char **why, enum dime_pl_msg_op op, size_t limit,
			const uint8_t *head, size_t head_len)
{
	size_t i = 0, total;
	unsigned magic;

	*bound = dime_pl_msg_input_max(op, limit);
	*why = "";
	if (op == DIME_PL_MSG_WRAP)
		return DIME_OK; /* any bytes are mail */
	while (i < head_len &&
	       (head[i] == ' ' || head[i] == '\t' || head[i] == '\r' || head[i] == '\n'))
		i++;
	if (i > 0 || (head_len > 0 && head[0] == '-')) {
		if (head_len - i < 11)
			return DIME_E_AGAIN;
		if (memcmp(head + i, "-----BEGIN ", 11) == 0)
			return DIME_OK; /* armor: the label and the rest are for the decoder */
		goto not_dime;
	}
	if (head_len < DIME_MSG_HEADER_BYTES)
		return DIME_E_AGAIN;
	magic = (unsigned)head[0] << 8 | head[1];
	total = (size_t)head[2] << 24 | (size_t)head[3] << 16 | (size_t)head[4] << 8 | head[5];
	if (magic == DIME_MSG_TRACING_MAGIC && op != DIME_PL_MSG_BOUNCE_VERIFY)
		return DIME_OK; /* a tracing prefix: its length says nothing about the message's */
	if (op == DIME_PL_MSG_BOUNCE_VERIFY
		? magic != DIME_MSG_BOUNCE_MAGIC
		: magic != DIME_MSG_MAGIC && magic != DIME_MSG_REKEY_MAGIC)
		goto not_dime;
	if (total > plmsg_limit(op, limit) - DIME_MSG_HEADER_BYTES) {
		*why = PLMSG_NOT "larger than the size limit";
		return DIME_E_LIMIT;
	}
	/* one byte more than the header says: enough to see trailing bytes, never more */
	*bound = total + DIME_MSG_HEADER_BYTES + 1;
	return DIME_OK;
not_dime:
	*why = op == DIME_PL_MSG_BOUNCE_VERIFY
		   ? PLMSG_NOT "it starts with neither bounce armor nor the bounce magic (1849)"
		   : PLMSG_NOT "it starts with neither D/MIME armor nor a D/MIME magic number";
	return DIME_E_MALFORMED;
}

int
dime_pl_msg_decode(uint8_t **out, size_t *out_len, int *armored, const char **why,
		   enum dime_pl_msg_op op, size_t limit, const uint8_t *in, size_t in_len)
{
	const char *uwhy = "";
	size_t bound = 0;
	int rc;

	*out = NULL;
	*out_len = 0;
	*armored = 0;
	*why = "";
	if (in_len > dime_pl_msg_input_max(op, limit)) {
		*why = op == DIME_PL_MSG_WRAP ? "the mail is larger than the size limit"
					      : PLMSG_NOT "larger than the size limit";
		return DIME_E_LIMIT;
	}
	if (op == DIME_PL_MSG_WRAP) {
		if ((*out = malloc(in_len + 1)) == NULL)
			return DIME_E_NOMEM;
		if (in_len > 0)
			memcpy(*out, in, in_len);
		*out_len = in_len;
		return DIME_OK;
	}
	if (in_len == 0) {
		*why = PLMSG_NOT "empty input";
		return DIME_E_MALFORMED;
	}
	rc = dime_pl_msg_input_bound(&bound, why, op, limit, in, in_len);
	if (rc != DIME_OK && rc != DIME_E_AGAIN)
		return rc;
	rc = dime_msg_unarmor(out, out_len, armored, &uwhy, in, in_len,
			      op == DIME_PL_MSG_BOUNCE_VERIFY ? DIME_BOUNCE_ARMOR_LABEL
							      : DIME_MSG_ARMOR_LABEL);
	if (rc == DIME_E_NOMEM)
		return rc;
	if (rc != DIME_OK) {
		*why = strcmp(uwhy, "armor label is not the expected one") == 0 ? PLMSG_NOT
			   "armor label is not the expected one"
		       : strcmp(uwhy, "armor CRC does not match") == 0
			   ? PLMSG_NOT "armor CRC does not match"
			   : PLMSG_NOT "armor does not decode";
		return DIME_E_MALFORMED;
	}
	if (*out_len > plmsg_limit(op, limit)) {
		dime_msg_free(*out, *out_len);
		*out = NULL;
		*out_len = 0;
		*armored = 0;
		*why = PLMSG_NOT "larger than the size limit";
		return DIME_E_LIMIT;
	}
	return DIME_OK;
}

/* ---- parties ---- */

/* Is the job's input a D/MIME message (a plain message or a re-keyed container)? */
static int
plmsg_frame(struct dime_pl_msg_job *j, struct dime_msg_rekey_info *ri)
{
	const char *why = "";
	int rc;

	if (j->in_len == 0) {
		plmsg_fail(j, DIME_E_TRUNCATED, PLMSG_NOT "empty input");
		return DIME_E_TRUNCATED;
	}
	rc = dime_msg_rekey_info(ri, &why, j->in, j->in_len);
	if (rc != DIME_OK)
		plmsg_not_dime(j, rc, why);
	return rc;
}

/* The hosted key that opens job j as actor as, and the signets the operation needs, each the
 * version the envelope names by fingerprint:
 *   origin: author, and the opening org's latest signet as the origin;
 *   destination: origin;
 *   author, recipient: all four; for the recipient of a re-keyed message (docs/rekey.md) the
 *   recipient signet is the stored version the record is for, and the version the envelope
 *   names must be stored too (both are versions of one address in our own store).
 * p holds references on success and on failure (release with dime_pl_dir_parties_release). */
static int
plmsg_parties(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *j, uint32_t *key,
	      struct dime_msg_parties *p, struct dime_msg_envelope *env, enum dime_msg_actor as,
	      const struct dime_msg_rekey_info *ri)
{
	const struct dime_pl_msg *m = w->m;
	struct dime_pl_dir *dir = m->dir;
	const char *ident = NULL, *why = "";
	const char *only =
	    as == DIME_ACTOR_ORIGIN || as == DIME_ACTOR_DESTINATION ? m->conf.org : m->conf.user;
	int org = as == DIME_ACTOR_ORIGIN || as == DIME_ACTOR_DESTINATION, rc;

	memset(p, 0, sizeof(*p));
	rc = dime_pl_dir_find(dir, key, &ident, env, &why, j->in, j->in_len, as,
			      org ? DIME_STORE_ORG_KEY : DIME_STORE_USER_KEY, only, w->memo);
	if (rc != DIME_OK) {
		if (only != NULL)
			plmsg_failf(j, rc, "%s: %s", only, why);
		else if (as == DIME_ACTOR_DESTINATION)
			plmsg_fail(j, rc,
				   "no hosted organisation is the destination of this message");
		else if (as == DIME_ACTOR_ORIGIN)
			plmsg_fail(j, rc, "no hosted organisation is the origin of this message");
		else if (as == DIME_ACTOR_RECIPIENT && !ri->rekeyed)
			plmsg_fail(j, rc,
				   "no hosted user's keys open this message (if the recipient's "
				   "keys were rotated and the old ones removed, the message needed "
				   "`dime msg rekey` first)");
		else
			plmsg_fail(j, rc, why);
		return rc;
	}
#define PLMSG_GET(slot, role, id, kind, fp)                                                        \
	do {                                                                                       \
		if ((rc = plmsg_signet(dir, &(slot), j->msg, sizeof(j->msg), role, id, kind,       \
				       fp)) != DIME_OK) {                                          \
			j->rc = rc == DIME_E_MALFORMED || rc == DIME_E_NOTFOUND ? DIME_E_NOTFOUND  \
										: rc;              \
			j->why = j->msg;                                                           \
			if (rc == DIME_E_NOTFOUND)                                                 \
				snprintf(j->missing, sizeof(j->missing), "%s", (id));              \
			return j->rc;                                                              \
		}                                                                                  \
	} while (0)
	if (as == DIME_ACTOR_ORIGIN) {
		PLMSG_GET(p->author, "author", env->author, DIME_STORE_USER_SIGNET, env->author_fp);
		PLMSG_GET(p->origin, "origin", ident, DIME_STORE_ORG_SIGNET, NULL);
	} else if (as == DIME_ACTOR_DESTINATION) {
		PLMSG_GET(p->origin, "origin", env->origin, DIME_STORE_ORG_SIGNET, env->origin_fp);
	} else {
		PLMSG_GET(p->author, "author", env->author, DIME_STORE_USER_SIGNET, env->author_fp);
		PLMSG_GET(p->origin, "origin", env->origin, DIME_STORE_ORG_SIGNET, env->origin_fp);
		PLMSG_GET(p->destination, "destination", env->destination, DIME_STORE_ORG_SIGNET,
			  env->destination_fp);
		PLMSG_GET(p->recipient, "recipient", env->recipient, DIME_STORE_USER_SIGNET,
			  env->recipient_fp);
		if (as == DIME_ACTOR_RECIPIENT && ri->rekeyed) {
			const struct dime_signet *s = NULL;
			const char *dwhy = "";

			/* the record's claim is only a lookup key: dime_msg_open checks it */
			if (dime_pl_dir_signet(dir, &s, &dwhy, env->recipient,
					       DIME_STORE_USER_SIGNET, ri->new_fp) != DIME_OK) {
				plmsg_failf(
				    j, DIME_E_NOTFOUND,
				    "the re-key record is for a signet that is not a stored "
				    "version of the recipient %s",
				    env->recipient);
				return DIME_E_NOTFOUND;
			}
			dime_pl_dir_release(dir, p->recipient);
			p->recipient = s;
		}
	}
#undef PLMSG_GET
	return DIME_OK;
}

/* ---- the group calls ---- */

static size_t
plmsg_failed(const struct dime_pl_msg_job *jobs, size_t n)
{
	size_t f = 0;

	for (size_t i = 0; i < n; i++)
		f += jobs[i].rc != DIME_OK;
	return f;
}

/* Take a finished engine job's result into j (outputs move). */
static void
plmsg_take(struct dime_pl_msg_job *j, struct dime_msg_job *b)
{
	if (b->rc != DIME_OK) {
		plmsg_fail(j, b->rc, b->why);
		dime_msg_free(b->out, b->out_len);
		dime_msg_opened_free(&b->opened);
		b->out = NULL;
		b->out_len = 0;
		return;
	}
	j->out = b->out;
	j->out_len = b->out_len;
	b->out = NULL;
	b->out_len = 0;
}

/* Prepare the message jobs of one slice as actor as: framing, key, parties. Returns the count
 * of engine jobs in w->jb (job k is jobs[w->map[k]]). */
static size_t
plmsg_prepare(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n,
	      enum dime_msg_actor as)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		struct dime_pl_msg_job *j = &jobs[i];
		struct dime_msg_rekey_info ri;
		struct dime_msg_envelope env;
		uint32_t key = DIME_KS_NONE;

		plmsg_job_start(j);
		if (plmsg_frame(j, &ri) != DIME_OK)
			continue;
		if (plmsg_parties(w, j, &key, &w->p[k], &env, as, &ri) != DIME_OK) {
			dime_pl_dir_parties_release(w->m->dir, &w->p[k]);
			continue;
		}
		memset(&w->jb[k], 0, sizeof(w->jb[k]));
		w->jb[k].in = j->in;
		w->jb[k].in_len = j->in_len;
		w->jb[k].p = &w->p[k];
		w->jb[k].key = key;
		w->jb[k].keks = w->memo;
		w->map[k++] = i;
	}
	return k;
}

static void
plmsg_release(struct dime_pl_msg_worker *w, size_t k)
{
	for (size_t i = 0; i < k; i++)
		dime_pl_dir_parties_release(w->m->dir, &w->p[i]);
	dime_msg_keks_clear(w->memo);
}

/* Run fn over jobs in slices of at most w->cap. */
typedef void (*plmsg_slice_fn)(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs,
			       size_t n);

static size_t
plmsg_slices(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n,
	     enum dime_pl_msg_op op, plmsg_slice_fn fn)
{
	DIME_ASSERT(w != NULL && w->m->conf.op == op && (jobs != NULL || n == 0));
	for (size_t i = 0; i < n; i += w->cap)
		fn(w, jobs + i, n - i < w->cap ? n - i : w->cap);
	return plmsg_failed(jobs, n);
}

static void
plmsg_wrap_slice(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n)
{
	const struct dime_pl_msg *m = w->m;
	const struct dime_ks *ks = dime_pl_dir_ks(m->dir);
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		plmsg_job_start(&jobs[i]);
		memset(&w->jb[i], 0, sizeof(w->jb[i]));
		w->jb[i].in = jobs[i].in;
		w->jb[i].in_len = jobs[i].in_len;
		w->jb[i].p = &m->wp;
		w->jb[i].key = m->author_key;
	}
	(void)dime_msg_wrap_mail_batch(ks, w->jb, n, &m->conf.wrap);
	if (!m->conf.origin_sign) {
		for (size_t i = 0; i < n; i++)
			plmsg_take(&jobs[i], &w->jb[i]);
		return;
	}
	/* the wrapped messages become the inputs of the origin's batch: our own output, so the
	 * author's signatures are not verified again (DIME_MSG_SIGN_OWN) */
	for (size_t i = 0; i < n; i++) {
		struct dime_msg_job *b = &w->jb[i];

		if (b->rc != DIME_OK) {
			plmsg_take(&jobs[i], b);
			continue;
		}
		/* keep the wrapped bytes in jobs[i].out until the signed copy replaces them */
		jobs[i].out = b->out;
		jobs[i].out_len = b->out_len;
		w->map[k] = i;
		memset(&w->jb[k], 0, sizeof(w->jb[k]));
		w->jb[k].in = jobs[i].out;
		w->jb[k].in_len = jobs[i].out_len;
		w->jb[k].p = &m->wp;
		w->jb[k].key = m->org_key;
		w->jb[k].own = 1;
		k++;
	}
	(void)dime_msg_origin_sign_batch(ks, w->jb, k, DIME_KS_NONE);
	for (size_t q = 0; q < k; q++) {
		struct dime_pl_msg_job *j = &jobs[w->map[q]];

		dime_msg_free(j->out, j->out_len);
		j->out = NULL;
		j->out_len = 0;
		plmsg_take(j, &w->jb[q]);
		if (j->rc != DIME_OK)
			plmsg_failf(j, j->rc, "origin-sign: %s", w->jb[q].why);
	}
}

size_t
dime_pl_msg_wrap(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n)
{
	return plmsg_slices(w, jobs, n, DIME_PL_MSG_WRAP, plmsg_wrap_slice);
}

static void
plmsg_origin_sign_slice(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n)
{
	size_t k = plmsg_prepare(w, jobs, n, DIME_ACTOR_ORIGIN);

	/* a message read from elsewhere: the author's signatures are verified (no own flag) */
	(void)dime_msg_origin_sign_batch(dime_pl_dir_ks(w->m->dir), w->jb, k, DIME_KS_NONE);
	for (size_t q = 0; q < k; q++)
		plmsg_take(&jobs[w->map[q]], &w->jb[q]);
	plmsg_release(w, k);
}

size_t
dime_pl_msg_origin_sign(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n)
{
	return plmsg_slices(w, jobs, n, DIME_PL_MSG_ORIGIN_SIGN, plmsg_origin_sign_slice);
}

static void
plmsg_accept_slice(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n)
{
	size_t k = plmsg_prepare(w, jobs, n, DIME_ACTOR_DESTINATION);

	(void)dime_msg_accept_batch(dime_pl_dir_ks(w->m->dir), w->jb, k);
	for (size_t q = 0; q < k; q++)
		plmsg_take(&jobs[w->map[q]], &w->jb[q]);
	for (size_t q = 0; q < k; q++) {
		struct dime_pl_msg_job *j = &jobs[w->map[q]];
		char fp[DIME_FP_B64_LEN + 1];
		size_t fpn = 0;

		if (j->rc != DIME_OK)
			continue;
		if (dime_b64_encode(fp, sizeof(fp), &fpn, w->jb[q].env.recipient_fp, DIME_FP_BYTES,
				    DIME_B64_NOPAD) != DIME_OK) {
			plmsg_fail(j, DIME_E_NOSPACE,
				   "the recipient fingerprint cannot be encoded");
			continue;
		}
		snprintf(j->line, sizeof(j->line), "ACCEPT %s %s", w->jb[q].env.recipient, fp);
	}
	for (size_t i = 0; i < n; i++)
		if (jobs[i].rc != DIME_OK)
			snprintf(jobs[i].line, sizeof(jobs[i].line), "REJECT %s", jobs[i].why);
	plmsg_release(w, k);
}

size_t
dime_pl_msg_accept(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n)
{
	return plmsg_slices(w, jobs, n, DIME_PL_MSG_ACCEPT, plmsg_accept_slice);
}

static void
plmsg_open_slice(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n)
{
	size_t k = plmsg_prepare(w, jobs, n, w->m->conf.as);

	(void)dime_msg_open_batch(dime_pl_dir_ks(w->m->dir), w->jb, k, w->m->conf.as);
	for (size_t q = 0; q < k; q++) {
		struct dime_pl_msg_job *j = &jobs[w->map[q]];
		struct dime_msg_job *b = &w->jb[q];
		int rc;

		if (b->rc != DIME_OK) {
			plmsg_take(j, b);
			continue;
		}
		/* all or nothing: the mail exists only once everything has passed */
		rc = dime_msg_opened_mail(&j->out, &j->out_len, &b->opened);
		dime_msg_opened_free(&b->opened);
		if (rc != DIME_OK)
			plmsg_fail(j, rc, "the opened content does not rebuild a message");
	}
	plmsg_release(w, k);
}

size_t
dime_pl_msg_open(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n)
{
	return plmsg_slices(w, jobs, n, DIME_PL_MSG_OPEN, plmsg_open_slice);
}

static void
plmsg_rekey_slice(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n)
{
	const struct dime_pl_msg *m = w->m;
	size_t k = plmsg_prepare(w, jobs, n, DIME_ACTOR_RECIPIENT);

	/* re-keying opens and re-seals one message at a time (no batched form) */
	for (size_t q = 0; q < k; q++) {
		struct dime_pl_msg_job *j = &jobs[w->map[q]];
		struct dime_msg_job *b = &w->jb[q];
		struct dime_msg_envelope env;
		const struct dime_signet *stored = NULL;
		const char *why = "";
		int rc;

		/* Only a signet the store accepted (import and user create check it against its
		 * org) is worth re-keying to, and then open finds it: use the stored copy. */
		rc = dime_msg_envelope_peek_memo(w->memo, dime_pl_dir_ks(m->dir), &env, &why, b->in,
						 b->in_len, DIME_ACTOR_RECIPIENT, b->key);
		if (rc != DIME_OK) {
			plmsg_fail(j, rc, why);
			continue;
		}
		if (dime_pl_dir_signet(m->dir, &stored, &why, env.recipient, DIME_STORE_USER_SIGNET,
				       m->new_fp) != DIME_OK) {
			plmsg_failf(j, DIME_E_NOTFOUND,
				    "the new signet is not a stored signet of %s (import it first)",
				    env.recipient);
			continue;
		}
		b->rc = dime_msg_rekey(dime_pl_dir_ks(m->dir), &b->out, &b->out_len, &b->why, b->in,
				       b->in_len, b->key, stored, b->p);
		dime_pl_dir_release(m->dir, stored);
		plmsg_take(j, b);
	}
	plmsg_release(w, k);
}

size_t
dime_pl_msg_rekey(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n)
{
	return plmsg_slices(w, jobs, n, DIME_PL_MSG_REKEY, plmsg_rekey_slice);
}

static void
plmsg_bounce_slice(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n)
{
	const struct dime_pl_msg *m = w->m;
	size_t k = plmsg_prepare(w, jobs, n, DIME_ACTOR_DESTINATION);

	for (size_t q = 0; q < k; q++) {
		struct dime_msg_job *b = &w->jb[q];

		b->rc = dime_msg_bounce(dime_pl_dir_ks(m->dir), &b->out, &b->out_len, &b->why,
					b->in, b->in_len, b->key, b->p, m->conf.code,
					m->conf.reason, m->conf.display);
		plmsg_take(&jobs[w->map[q]], b);
	}
	plmsg_release(w, k);
}

size_t
dime_pl_msg_bounce(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n)
{
	return plmsg_slices(w, jobs, n, DIME_PL_MSG_BOUNCE, plmsg_bounce_slice);
}

static void
plmsg_bounce_verify_slice(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n)
{
	struct dime_pl_msg *m = (struct dime_pl_msg *)(uintptr_t)w->m;
	const struct dime_ks *ks = dime_pl_dir_ks(m->dir);
	size_t first = atomic_load_explicit(&m->org_last, memory_order_relaxed), pending = 0;
	uint8_t *done = NULL;

	for (size_t i = 0; i < n; i++) {
		const char *why = "";
		int rc;

		plmsg_job_start(&jobs[i]);
		rc = jobs[i].in_len == 0 ? DIME_E_TRUNCATED
					 : dime_msg_bounce_frame(&why, jobs[i].in, jobs[i].in_len);
		if (rc == DIME_E_NOMEM)
			plmsg_fail(&jobs[i], rc, "out of memory");
		else if (rc != DIME_OK)
			plmsg_not_dime(&jobs[i], rc, jobs[i].in_len == 0 ? "empty input" : why);
		else
			pending++;
		/* rc stays DIME_OK for the pending ones until an org decides */
	}
	if (pending > 0 && m->n_orgs == 0)
		for (size_t i = 0; i < n; i++)
			if (jobs[i].rc == DIME_OK)
				plmsg_fail(&jobs[i], DIME_E_NOTFOUND,
					   "no hosted organisation (the store holds no "
					   "organisation keys)");
	if (pending > 0 && m->n_orgs > 0 && (done = calloc(n, 1)) == NULL)
		for (size_t i = 0; i < n; i++)
			if (jobs[i].rc == DIME_OK)
				plmsg_fail(&jobs[i], DIME_E_NOMEM, "out of memory");
	for (size_t t = 0; done != NULL && t < m->n_orgs && pending > 0; t++) {
		size_t o = (first + t) % m->n_orgs, k = 0;
		const struct dime_signet *origin = NULL;
		struct dime_msg_parties p;
		const char *why = "";

		if (dime_pl_dir_signet(m->dir, &origin, &why, m->org_idents[o],
				       DIME_STORE_ORG_SIGNET, NULL) != DIME_OK)
			continue;
		memset(&p, 0, sizeof(p));
		p.origin = origin;
		for (size_t i = 0; i < n; i++) {
			if (jobs[i].rc != DIME_OK || done[i])
				continue;
			memset(&w->jb[k], 0, sizeof(w->jb[k]));
			w->jb[k].in = jobs[i].in;
			w->jb[k].in_len = jobs[i].in_len;
			w->jb[k].p = &p;
			w->jb[k].key = m->org_ids[o];
			w->jb[k].bounce = &w->bi[k];
			w->jb[k].keks = w->memo;
			w->map[k++] = i;
		}
		(void)dime_msg_bounce_verify_batch(ks, w->jb, k);
		for (size_t q = 0; q < k; q++) {
			struct dime_pl_msg_job *j = &jobs[w->map[q]];
			const struct dime_msg_bounce_info *b = &w->bi[q];

			if (w->jb[q].rc != DIME_OK) {
				/* kept if no other org verifies it */
				j->why = m->n_orgs == 1
					     ? w->jb[q].why
					     : "no hosted organisation signed the bounced "
					       "message";
				continue;
			}
			snprintf(j->line, sizeof(j->line), "BOUNCE %s %s %u %s", b->env.author,
				 b->env.destination, (unsigned)b->code, b->reason);
			done[w->map[q]] = 1;
			pending--;
			atomic_store_explicit(&m->org_last, o, memory_order_relaxed);
		}
		dime_wipe(w->bi, k * sizeof(*w->bi));
		dime_pl_dir_release(m->dir, origin);
		dime_msg_keks_clear(w->memo);
	}
	for (size_t i = 0; i < n; i++) {
		struct dime_pl_msg_job *j = &jobs[i];

		if (j->rc == DIME_OK && (done == NULL || !done[i]))
			plmsg_fail(j, DIME_E_BADSIG,
				   *j->why ? j->why
					   : "no hosted organisation signed the bounced message");
		if (j->rc != DIME_OK)
			snprintf(j->line, sizeof(j->line), "INVALID %s", j->why);
	}
	free(done);
}

size_t
dime_pl_msg_bounce_verify(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n)
{
	return plmsg_slices(w, jobs, n, DIME_PL_MSG_BOUNCE_VERIFY, plmsg_bounce_verify_slice);
}

size_t
dime_pl_msg_run(struct dime_pl_msg_worker *w, struct dime_pl_msg_job *jobs, size_t n)
{
	switch (w->m->conf.op) {
	case DIME_PL_MSG_WRAP: return dime_pl_msg_wrap(w, jobs, n);
	case DIME_PL_MSG_ORIGIN_SIGN: return dime_pl_msg_origin_sign(w, jobs, n);
	case DIME_PL_MSG_ACCEPT: return dime_pl_msg_accept(w, jobs, n);
	case DIME_PL_MSG_OPEN: return dime_pl_msg_open(w, jobs, n);
	case DIME_PL_MSG_REKEY: return dime_pl_msg_rekey(w, jobs, n);
	case DIME_PL_MSG_BOUNCE: return dime_pl_msg_bounce(w, jobs, n);
	case DIME_PL_MSG_BOUNCE_VERIFY: return dime_pl_msg_bounce_verify(w, jobs, n);
	}
	DIME_ASSERT(0);
	return n;
}

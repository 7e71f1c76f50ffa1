/* The SMTP gateway's flows (dime/gwflow.h, docs/smtp.md "Flows"): per recipient, naked inbound
 * mail wrapped for a hosted user and spooled, mail to other DIME domains wrapped (trustful) or
 * verified (cautious) and origin-signed into the outbound queue, naked mail handed to the
 * MTA's reinjection. One message path: the pipeline's (dime/plmsg.h), as `dime send` takes. */

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dime/dconf.h"
#include "dime/deliver.h"
#include "dime/dir.h"
#include "dime/dlog.h"
#include "dime/gwflow.h"
#include "dime/keyproc.h"
#include "dime/keys.h"
#include "dime/msg_armor.h"
#include "dime/outq.h"
#include "dime/plmsg.h"
#include "dime/sendpath.h"
#include "dime/server.h"
#include "dime/sigfetch.h"
#include "dime/smtpc.h"
#include "dime/spool.h"
#include "dime/store.h"

/* The local part of the hosted identity that authors inbound naked mail for its org
 * (docs/smtp.md "Flows": the organisation as author). */
#define GW_AUTHOR_LOCAL "postmaster"
#define GW_POOL_MAX	64u /* idle store handles and reinjection clients kept */
#define GW_ARMOR_BEGIN	"-----BEGIN " DIME_MSG_ARMOR_LABEL "-----"
#define GW_ARMOR_END	"-----END " DIME_MSG_ARMOR_LABEL "-----"

/* A directory shared by the flows running on it: freed when the last of them lets go. */
struct gw_dir {
	struct dime_pl_dir *dir;
	struct dime_ks *ks; /* with the key process: its keystore and listing dir borrows */
	struct dime_pl_keyinfo *keys;
	size_t n_keys;
	size_t refs; /* under dime_gw.mu */
};

struct dime_gw {
	struct dime_gw_env env;
	/* The hosted keys: replaced by dime_gw_reload (SIGHUP) and when a message finds a party
	 * only in a fresh directory; a flow holds a reference for its run (under mu). */
	struct gw_dir *dir;
	struct dime_smtpc_conf sc;
	char rhost[256], helo[256];
	int have_reinject;
	pthread_mutex_t mu; /* the two pools and dir */
	struct dime_store *stores[GW_POOL_MAX];
	size_t n_stores;
	struct dime_smtpc *clients[GW_POOL_MAX];
	size_t n_clients;
};

/* ---- small pieces ---- */

static void gw_set(struct dime_gw_verdict *v, enum dime_gw_route route, int code, const char *enh,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
gw_set(struct dime_gw_verdict *v, enum dime_gw_route route, int code, const char *enh,
       const char *fmt, ...)
{
	va_list ap;

	v->route = route;
	v->code = code;
	(void)snprintf(v->enh, sizeof(v->enh), "%s", enh);
	va_start(ap, fmt);
	(void)vsnprintf(v->text, sizeof(v->text), fmt, ap);
	va_end(ap);
	/* one printable ASCII line: whatever a reason held (a peer's text) is made safe */
	for (char *p = v->text; *p != 0; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = ' ';
}

/* A 4xx or 5xx by the kind of failure: anything that may pass is retried. */
static void
gw_fail(struct dime_gw_verdict *v, int rc, const char *what, const char *why)
{
	if (rc == DIME_E_NOMEM || rc == DIME_E_IO || rc == DIME_E_AGAIN)
		gw_set(v, DIME_GW_DEFER, 451, "4.3.0", "%s: %s", what, why);
	else
		gw_set(v, DIME_GW_REFUSE, 554, "5.7.1", "%s: %s", what, why);
}

/* addr lower-cased into out: local@domain, printable, no spaces or brackets. Returns the
 * domain inside out, or NULL. */
static const char *
gw_addr(char *out, size_t cap, const char *addr)
{
	size_t n = strlen(addr);
	const char *at;

	if (n == 0 || n >= cap)
		return NULL;
	for (size_t i = 0; i <= n; i++) {
		unsigned char c = (unsigned char)addr[i];

		if (i < n && (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '"'))
			return NULL;
		out[i] = (char)tolower(c);
	}
	at = strrchr(out, '@');
	if (at == NULL || at == out || at[1] == 0)
		return NULL;
	return at + 1;
}

static struct dime_store *
gw_store_take(struct dime_gw *g)
{
	struct dime_store *st = NULL;
	char err[256];

	pthread_mutex_lock(&g->mu);
	if (g->n_stores > 0)
		st = g->stores[--g->n_stores];
	pthread_mutex_unlock(&g->mu);
	/* lookups and the outbound queue's envelope need signets, never a private key */
	if (st == NULL &&
	    dime_store_open_flags(&st, g->env.conf->store,
				  DIME_STORE_OPEN_EXISTING | DIME_STORE_OPEN_NO_SECRETS, err,
				  sizeof(err)) != DIME_OK)
		st = NULL;
	return st;
}

static void
gw_store_give(struct dime_gw *g, struct dime_store *st)
{
	if (st == NULL)
		return;
	pthread_mutex_lock(&g->mu);
	if (g->n_stores < GW_POOL_MAX) {
		g->stores[g->n_stores++] = st;
		st = NULL;
	}
	pthread_mutex_unlock(&g->mu);
	dime_store_close(st);
}

/* Where the armor block of a D/MIME message sits in msg, if it holds one: from the BEGIN line
 * to the end of the END line. Returns 1 (found: *off, *n), 0. */
static int
gw_armor_find(const uint8_t *msg, size_t len, size_t *off, size_t *n)
{
	const uint8_t *b = memmem(msg, len, GW_ARMOR_BEGIN, sizeof(GW_ARMOR_BEGIN) - 1), *e;

	if (b == NULL)
		return 0;
	e = memmem(b, len - (size_t)(b - msg), GW_ARMOR_END, sizeof(GW_ARMOR_END) - 1);
	*off = (size_t)(b - msg);
	if (e == NULL) {
		*n = len - *off; /* truncated armor: still D/MIME, never wrapped or sent naked */
		return 1;
	}
	e += sizeof(GW_ARMOR_END) - 1;
	*n = (size_t)(e - b);
	return 1;
}

/* Does ident have a current hosted signet of kind (DIME_STORE_ORG_SIGNET: an org hosted here;
 * DIME_STORE_USER_SIGNET: a hosted user with a current signet)? Returns 1, 0, or -1 (the store
 * failed). */
static int
gw_hosted(struct dime_store *st, const char *ident, enum dime_store_kind kind)
{
	struct dime_store_row row;
	uint8_t *blob = NULL;
	size_t len = 0;
	int rc = dime_store_get(st, &blob, &len, &row, ident, kind, 0);

	free(blob);
	if (rc == DIME_E_IO)
		return -1;
	return rc == DIME_OK && row.hosted;
}

/* ---- the message path ---- */

/* The hosted keys and signets, as a directory: over the key process's keystore (a listing of
 * its keys taken now, so a reload sees the keys it loaded since) when dimed runs one, else
 * loaded from the store here. Returns: DIME_OK (*out), DIME_E_NOMEM, or the failure (why). */
static int
gw_dir_open(const struct dime_gw *g, struct gw_dir **out, const char **why)
{
	struct gw_dir *d = calloc(1, sizeof(*d));
	int rc;

	*out = NULL;
	if (d == NULL)
		return DIME_E_NOMEM;
	if (g->env.kp != NULL) {
		struct dime_pl_dir_conf dc;

		rc = dime_kp_client_keys(g->env.kp, &d->ks, &d->keys, &d->n_keys);
		if (rc != DIME_OK) {
			*why = rc == DIME_E_AGAIN ? "the key process did not answer in time"
						  : "the key process cannot list its keys";
			free(d);
			return rc;
		}
		memset(&dc, 0, sizeof(dc));
		dc.ks = d->ks;
		dc.keys = d->keys;
		dc.n_keys = d->n_keys;
		rc = dime_pl_dir_open_conf(&d->dir, g->env.conf->store, &dc, why);
	} else {
		rc = dime_pl_dir_open(&d->dir, g->env.conf->store, why);
	}
	if (rc != DIME_OK) {
		dime_ks_free(d->ks);
		free(d->keys);
		free(d);
		return rc;
	}
	d->refs = 1;
	*out = d;
	return DIME_OK;
}

static struct gw_dir *
gw_dir_take(struct dime_gw *g)
{
	struct gw_dir *d;

	pthread_mutex_lock(&g->mu);
	d = g->dir;
	d->refs++;
	pthread_mutex_unlock(&g->mu);
	return d;
}

/* Let go of d (NULL-safe); the last reference closes it. */
static void
gw_dir_give(struct dime_gw *g, struct gw_dir *d)
{
	size_t left;

	if (d == NULL)
		return;
	pthread_mutex_lock(&g->mu);
	left = --d->refs;
	pthread_mutex_unlock(&g->mu);
	if (left == 0) {
		dime_pl_dir_close(d->dir); /* before the keystore it borrows */
		dime_ks_free(d->ks);
		free(d->keys);
		free(d);
	}
}

/* Make d (its one reference passes to the gateway) the one new flows use; the one before goes
 * when its last flow ends. */
static void
gw_dir_install(struct dime_gw *g, struct gw_dir *d)
{
	struct gw_dir *old;

	pthread_mutex_lock(&g->mu);
	old = g->dir;
	g->dir = d;
	pthread_mutex_unlock(&g->mu);
	gw_dir_give(g, old);
}

int
dime_gw_reload(struct dime_gw *g, char *why, size_t why_cap)
{
	struct gw_dir *d = NULL;
	const char *dwhy = "";
	int rc = gw_dir_open(g, &d, &dwhy);

	if (rc != DIME_OK) {
		(void)snprintf(why, why_cap, "%s", dwhy);
		return rc;
	}
	gw_dir_install(g, d);
	return DIME_OK;
}

/* Run one job of conf->op over the gateway's directory; when a party is missing there (a key
 * or signet added since the directory was loaded), once more over a fresh directory, which
 * then serves the messages after this one too. */
static int
gw_pl_run(struct dime_gw *g, struct dime_pl_msg_job *j, const struct dime_pl_msg_conf *mc,
	  char *why, size_t why_cap)
{
	struct gw_dir *cur = gw_dir_take(g), *fresh = NULL;
	int rc = DIME_E_NOTFOUND;

	for (int pass = 0; pass < 2 && rc == DIME_E_NOTFOUND; pass++) {
		struct dime_pl_dir *dir = cur->dir;
		struct dime_pl_msg *m = NULL;
		struct dime_pl_msg_worker *w = NULL;
		const char *dwhy = "";

		if (pass == 1) {
			rc = gw_dir_open(g, &fresh, &dwhy);
			if (rc != DIME_OK) {
				(void)snprintf(why, why_cap, "%s", dwhy);
				rc = rc == DIME_E_NOMEM || rc == DIME_E_AGAIN ? rc : DIME_E_IO;
				break;
			}
			dir = fresh->dir;
		}
		dime_pl_msg_job_clear(j);
		rc = dime_pl_msg_new(&m, why, why_cap, dir, mc);
		if (rc == DIME_OK && (rc = dime_pl_msg_worker_new(&w, m, 1)) == DIME_OK) {
			(void)dime_pl_msg_run(w, j, 1);
			rc = j->rc;
			if (rc != DIME_OK)
				(void)snprintf(why, why_cap, "%s", j->why != NULL ? j->why : "");
		}
		dime_pl_msg_worker_free(w);
		dime_pl_msg_free(m);
	}
	gw_dir_give(g, cur);
	if (fresh != NULL && rc != DIME_E_NOTFOUND)
		gw_dir_install(g, fresh); /* it knew more */
	else
		gw_dir_give(g, fresh);
	return rc;
}

/* ---- RCPT ---- */

struct gw_route {
	enum dime_gw_route route;
	const char *rdomain; /* inside rcpt */
	struct dime_send_route sr;
};

/* Where rcpt goes, with the answer for it now. Returns DIME_OK or DIME_E_NOMEM. */
static int
gw_route(struct dime_gw *g, struct gw_route *r, struct dime_gw_verdict *v, struct dime_store *st,
	 const char *rcpt, int64_t now)
{
	struct dime_sf_conf sf;
	int h, rc;

	r->route = DIME_GW_DEFER;
	r->rdomain = strrchr(rcpt, '@') + 1;
	if ((h = gw_hosted(st, r->rdomain, DIME_STORE_ORG_SIGNET)) < 0) {
		gw_set(v, DIME_GW_DEFER, 451, "4.3.0", "the store cannot be read");
		return DIME_OK;
	}
	if (h) {
		r->route = DIME_GW_LOCAL;
		if ((h = gw_hosted(st, rcpt, DIME_STORE_USER_SIGNET)) < 0) {
			gw_set(v, DIME_GW_DEFER, 451, "4.3.0", "the store cannot be read");
		} else if (h) {
			gw_set(v, DIME_GW_LOCAL, 250, "2.1.5", "a DIME user hosted here");
		} else if (g->env.conf->unsigned_local == DIME_DCONF_UNSIGNED_REFUSE) {
			gw_set(v, DIME_GW_REFUSE, 550, "5.7.1",
			       "the recipient has no current signet here");
		} else {
			/* fail closed: the MTA keeps the mail until the user has a signet */
			gw_set(v, DIME_GW_DEFER, 450, "4.7.1",
			       "the recipient has no current signet here yet");
		}
		return DIME_OK;
	}
	memset(&sf, 0, sizeof(sf));
	sf.dns = g->env.dns;
	sf.mr_cache = g->env.mr_cache;
	sf.dx = g->env.dx;
	sf.ports = g->env.ports;
	rc = dime_send_route(&r->sr, &sf, st, g->env.conf->policy, rcpt, now);
	if (rc == DIME_E_NOMEM)
		return rc;
	if (rc != DIME_OK) {
		gw_set(v, DIME_GW_DEFER, 451, "4.3.0", "the store: %s", dime_strerror(rc));
		return DIME_OK;
	}
	switch (r->sr.act) {
	case DIME_SEND_DMIME:
		r->route = DIME_GW_DMIME;
		gw_set(v, DIME_GW_DMIME, 250, "2.1.5", "D/MIME over DMTP");
		break;
	case DIME_SEND_NAKED:
		r->route = DIME_GW_NAKED;
		if (!g->have_reinject)
			gw_set(v, DIME_GW_DEFER, 451, "4.3.5", "no reinjection is configured");
		else
			gw_set(v, DIME_GW_NAKED, 250, "2.1.5", "a legacy domain: naked");
		break;
	case DIME_SEND_REFUSE:
		r->route = DIME_GW_REFUSE;
		gw_set(v, DIME_GW_REFUSE, 550, "5.7.1", "refused by policy: %s", r->sr.why);
		break;
	case DIME_SEND_DEFER:
		r->route = DIME_GW_DEFER;
		gw_set(v, DIME_GW_DEFER, 451, "4.4.3", "cannot tell now: %s", r->sr.why);
		break;
	}
	return DIME_OK;
}

int
dime_gw_rcpt(struct dime_gw *g, struct dime_gw_verdict *v, const char *sender, const char *rcpt,
	     int64_t now)
{
	struct gw_route r;
	struct dime_store *st;
	char to[256];
	int rc;

	(void)sender; /* who may send is decided at DATA (cautious mail comes from anyone) */
	memset(v, 0, sizeof(*v));
	memset(&r, 0, sizeof(r));
	if (gw_addr(to, sizeof(to), rcpt) == NULL) {
		gw_set(v, DIME_GW_REFUSE, 501, "5.1.3", "not an address");
		return DIME_OK;
	}
	if ((st = gw_store_take(g)) == NULL) {
		gw_set(v, DIME_GW_DEFER, 451, "4.3.0", "the store cannot be opened");
		return DIME_OK;
	}
	rc = gw_route(g, &r, v, st, to, now);
	gw_store_give(g, st);
	return rc;
}

/* ---- DATA ---- */

/* Store bin (binary D/MIME) for the hosted user rcpt, named by its hash as DMTP names what it
 * accepts. With Maildir delivery it goes straight into the user's Maildir (group-committed with
 * the other workers' messages): the MTA holds the mail until our 250, so a queue of ours would
 * only add a file written, fsynced and deleted per message. Otherwise (LMTP) it is spooled and
 * the delivery woken. */
static void
gw_spool(struct dime_gw *g, struct dime_gw_verdict *v, const char *rcpt, const char *origin,
	 const uint8_t *bin, size_t len)
{
	uint8_t hash[64];
	char id[DIME_DMTP_SESS_HASH_CHARS + 1], why[1024];
	int rc, e = 0, dup = 0;

	if (dime_server_msg_id(hash, id, bin, len) != DIME_OK) {
		gw_set(v, DIME_GW_DEFER, 451, "4.3.0", "cannot name the message");
		return;
	}
	for (size_t i = 0; id[i] != 0; i++)
		id[i] = id[i] == '+' ? '-' : id[i] == '/' ? '_' : id[i];
	if (dime_deliver_is_maildir(g->env.deliver)) {
		rc = dime_deliver_now(g->env.deliver, &dup, id, rcpt, bin, len, why, sizeof(why));
		if (rc == DIME_OK)
			gw_set(v, DIME_GW_LOCAL, 250, "2.0.0", "delivered as %.*s%s", 16, id,
			       dup ? " (a duplicate)" : "");
		else if (rc == DIME_E_INVALID)
			gw_set(v, DIME_GW_REFUSE, 550, "5.1.1",
			       "no mailbox can hold the recipient");
		else
			gw_set(v, DIME_GW_DEFER, 451, "4.3.0", "cannot deliver now");
		if (rc != DIME_OK) /* the paths name the mailbox: the log, not the MTA, gets them */
			dime_dlog(DIME_DLOG_WARNING, "deliver.now", "id=%.16s why=\"%s\"", id, why);
		return;
	}
	rc = dime_spool_put(g->env.spool, id, rcpt, origin, bin, len, &e);
	if (rc == DIME_E_AGAIN && e == EEXIST) {
		/* the same message is queued durably already */
		gw_set(v, DIME_GW_LOCAL, 250, "2.0.0", "queued as %.*s (a duplicate)", 16, id);
		return;
	}
	if (rc != DIME_OK) {
		gw_set(v, DIME_GW_DEFER, 451, "4.3.0", "cannot spool: %s%s%s", dime_strerror(rc),
		       e != 0 ? ": " : "", e != 0 ? strerror(e) : "");
		return;
	}
	if (g->env.deliver != NULL)
		dime_deliver_kick(g->env.deliver);
	gw_set(v, DIME_GW_LOCAL, 250, "2.0.0", "queued as %.*s", 16, id);
}

/* Inbound for a hosted user: naked mail wrapped (the org's gateway identity as author,
 * origin-signed), D/MIME taken as it is only when it is accepted as a message for rcpt. */
static void
gw_local(struct dime_gw *g, struct dime_gw_verdict *v, const char *rcpt, const char *domain,
	 const uint8_t *msg, size_t len, int armored, size_t aoff, size_t alen)
{
	struct dime_pl_msg_conf mc;
	struct dime_pl_msg_job j;
	char why[DIME_PL_MSG_WHY_MAX], author[300], want[DIME_PL_MSG_LINE_MAX];
	uint8_t *bin = NULL;
	size_t bin_len = 0;
	const char *dwhy = "";
	int rc, a = 0;

	memset(&mc, 0, sizeof(mc));
	memset(&j, 0, sizeof(j));
	if (armored) {
		rc = dime_pl_msg_decode(&bin, &bin_len, &a, &dwhy, DIME_PL_MSG_ACCEPT, 0,
					msg + aoff, alen);
		if (rc != DIME_OK) {
			gw_fail(v, rc, "a D/MIME message that cannot be read", dwhy);
			goto out;
		}
		mc.op = DIME_PL_MSG_ACCEPT;
		mc.org = domain;
		j.in = bin;
		j.in_len = bin_len;
		rc = gw_pl_run(g, &j, &mc, why, sizeof(why));
		(void)snprintf(want, sizeof(want), "ACCEPT %s ", rcpt);
		if (rc == DIME_OK && strncmp(j.line, want, strlen(want)) != 0) {
			gw_set(v, DIME_GW_REFUSE, 554, "5.7.1",
			       "a D/MIME message for another recipient");
			goto out;
		}
		if (rc != DIME_OK) {
			gw_fail(v, rc, "the D/MIME message is not accepted", why);
			goto out;
		}
		gw_spool(g, v, rcpt, domain, bin, bin_len);
		goto out;
	}
	(void)snprintf(author, sizeof(author), "%s@%s", GW_AUTHOR_LOCAL, domain);
	mc.op = DIME_PL_MSG_WRAP;
	mc.from = author;
	mc.to = rcpt;
	mc.origin_sign = 1;
	mc.wrap.gzip = DIME_MSG_GZIP_IF_SMALLER;
	mc.wrap.padding = DIME_MSG_PAD_REFERENCE;
	j.in = msg;
	j.in_len = len;
	rc = gw_pl_run(g, &j, &mc, why, sizeof(why));
	if (rc == DIME_E_NOTFOUND) {
		/* the gateway identity (or the recipient's signet) is missing: an operator fix,
		 * never a plaintext copy */
		gw_set(v, DIME_GW_DEFER, 451, "4.3.5", "cannot wrap for the recipient: %s", why);
		goto out;
	}
	if (rc != DIME_OK) {
		gw_fail(v, rc, "cannot wrap", why);
		goto out;
	}
	gw_spool(g, v, rcpt, domain, j.out, j.out_len);
out:
	dime_pl_msg_job_clear(&j);
	if (bin != NULL) {
		dime_wipe(bin, bin_len);
		free(bin);
	}
}

/* Queue bin (binary, origin-signed) for DMTP with its envelope. */
static void
gw_queue(struct dime_gw *g, struct dime_gw_verdict *v, const struct dime_outq_env *env,
	 const uint8_t *bin, size_t len, int64_t now)
{
	char id[DIME_OUTQ_ID_MAX + 1], *armor = NULL;
	size_t alen = 0;
	int rc, e = 0;

	rc = dime_msg_armor(&armor, &alen, bin, len, NULL, 0);
	if (rc != DIME_OK) {
		gw_fail(v, rc, "cannot armor", dime_strerror(rc));
		return;
	}
	rc = dime_outq_put(g->env.outq, id, env, (const uint8_t *)armor, alen, now, &e);
	free(armor);
	if (rc != DIME_OK) {
		gw_set(v, DIME_GW_DEFER, 451, "4.3.0", "cannot queue: %s%s%s", dime_strerror(rc),
		       e != 0 ? ": " : "", e != 0 ? strerror(e) : "");
		return;
	}
	if (g->env.outq_kick != NULL)
		g->env.outq_kick(g->env.outq_kick_arg);
	gw_set(v, DIME_GW_DMIME, 250, "2.0.0", "queued as %s", id);
}

/* To another DIME domain: cautious when the body is author-made D/MIME (verified as the
 * origin, origin-signed), else trustful for a hosted sender (wrapped with its keys). */
static void
gw_dmime(struct dime_gw *g, struct dime_gw_verdict *v, struct dime_store *st,
	 const struct gw_route *r, const char *from, const char *rcpt, const uint8_t *msg,
	 size_t len, int armored, size_t aoff, size_t alen, int64_t now)
{
	struct dime_pl_msg_conf mc;
	struct dime_pl_msg_job j;
	struct dime_outq_env env;
	struct dime_msg_envelope menv;
	char why[DIME_PL_MSG_WHY_MAX], origin_fp[88], author[DIME_MSG_ADDR_MAX + 1];
	uint8_t *bin = NULL;
	size_t bin_len = 0;
	const char *dwhy = "", *sdomain = from[0] != 0 ? strrchr(from, '@') + 1 : "", *adomain;
	const char *ident = NULL; /* inside cur's directory: held until out */
	struct gw_dir *cur = NULL;
	uint32_t key = 0;
	int rc, a = 0;

	memset(&mc, 0, sizeof(mc));
	memset(&j, 0, sizeof(j));
	memset(&menv, 0, sizeof(menv));
	if (armored) {
		rc = dime_pl_msg_decode(&bin, &bin_len, &a, &dwhy, DIME_PL_MSG_ORIGIN_SIGN, 0,
					msg + aoff, alen);
		if (rc != DIME_OK) {
			gw_fail(v, rc, "a D/MIME message that cannot be read", dwhy);
			goto out;
		}
		/* Who wrote it, for whom: chunk 4, opened with a hosted org's key (ours, or the
		 * message is not ours to sign). */
		cur = gw_dir_take(g);
		rc = dime_pl_dir_find(cur->dir, &key, &ident, &menv, &dwhy, bin, bin_len,
				      DIME_ACTOR_ORIGIN, DIME_STORE_ORG_KEY, NULL, NULL);
		if (rc != DIME_OK) {
			gw_fail(v, rc == DIME_E_NOTFOUND ? DIME_E_BADSIG : rc,
				"a D/MIME message not for an org hosted here", dwhy);
			goto out;
		}
		(void)snprintf(author, sizeof(author), "%s", menv.author);
		adomain = strrchr(author, '@') != NULL ? strrchr(author, '@') + 1 : "";
		if (strcasecmp(menv.destination, r->rdomain) != 0 ||
		    strcasecmp(adomain, ident) != 0) {
			gw_set(v, DIME_GW_REFUSE, 554, "5.7.1",
			       "the D/MIME envelope does not match the recipient's domain");
			goto out;
		}
		mc.op = DIME_PL_MSG_ORIGIN_SIGN;
		mc.org = ident;
		j.in = bin;
		j.in_len = bin_len;
		rc = gw_pl_run(g, &j, &mc, why, sizeof(why));
		if (rc != DIME_OK) {
			gw_fail(v,
				rc == DIME_E_NOTFOUND || rc == DIME_E_INVALID ? DIME_E_BADSIG : rc,
				"the D/MIME message does not verify", why);
			goto out;
		}
		rc = dime_send_author(st, origin_fp, author, adomain, why, sizeof(why));
		if (rc == DIME_E_IO) {
			gw_set(v, DIME_GW_DEFER, 451, "4.3.0", "%s", why);
			goto out;
		}
		if (origin_fp[0] == 0) {
			/* an author we do not host: the org signet alone names the origin */
			struct dime_store_row row;
			uint8_t *blob = NULL;
			size_t blen = 0;

			rc = dime_store_get(st, &blob, &blen, &row, adomain, DIME_STORE_ORG_SIGNET,
					    0);
			free(blob);
			if (rc != DIME_OK || row.fingerprint[0] == 0) {
				gw_set(v, DIME_GW_DEFER, 451, "4.3.0", "no org signet for %s",
				       adomain);
				goto out;
			}
			memcpy(origin_fp, row.fingerprint, sizeof(origin_fp));
		}
	} else {
		/* trustful: the gateway signs only for senders it hosts, with their keys */
		rc = from[0] != 0 && gw_hosted(st, sdomain, DIME_STORE_ORG_SIGNET) == 1
			 ? dime_send_author(st, origin_fp, from, sdomain, why, sizeof(why))
			 : DIME_E_NOTFOUND;
		if (rc == DIME_E_IO) {
			gw_set(v, DIME_GW_DEFER, 451, "4.3.0", "%s", why);
			goto out;
		}
		if (rc != DIME_OK) {
			gw_set(v, DIME_GW_REFUSE, 550, "5.7.1",
			       "sender not hosted here: the gateway signs only for its users");
			goto out;
		}
		(void)snprintf(author, sizeof(author), "%s", from);
		mc.op = DIME_PL_MSG_WRAP;
		mc.from = from;
		mc.to = rcpt;
		mc.origin_sign = 1;
		mc.wrap.gzip = DIME_MSG_GZIP_IF_SMALLER;
		mc.wrap.padding = DIME_MSG_PAD_REFERENCE;
		j.in = msg;
		j.in_len = len;
		rc = gw_pl_run(g, &j, &mc, why, sizeof(why));
		if (rc != DIME_OK) {
			/* NOTFOUND: a signet the resolver just validated is gone: retry */
			gw_fail(v, rc == DIME_E_NOTFOUND ? DIME_E_AGAIN : rc, "cannot wrap", why);
			goto out;
		}
		adomain = sdomain;
	}
	memset(&env, 0, sizeof(env));
	env.origin = adomain;
	env.origin_fp = origin_fp;
	env.author = author;
	env.recipient = rcpt;
	env.dest_fp = r->sr.dest_fp;
	gw_queue(g, v, &env, j.out, j.out_len, now);
out:
	gw_dir_give(g, cur);
	dime_pl_msg_job_clear(&j);
	if (bin != NULL) {
		dime_wipe(bin, bin_len);
		free(bin);
	}
}

/* To a legacy domain: through the reinjection, 250 only after its 250. */
static void
gw_naked(struct dime_gw *g, struct dime_gw_verdict *v, const char *from, const char *rcpt,
	 const uint8_t *msg, size_t len)
{
	struct dime_smtpc *c = NULL;
	struct dime_smtpc_reply rep;
	const char *to[1] = {rcpt};
	int rc;

	pthread_mutex_lock(&g->mu);
	if (g->n_clients > 0)
		c = g->clients[--g->n_clients];
	pthread_mutex_unlock(&g->mu);
	if (c == NULL && (rc = dime_smtpc_new(&c, &g->sc)) != DIME_OK) {
		gw_set(v, DIME_GW_DEFER, 451, "4.3.0", "the reinjection client: %s",
		       dime_strerror(rc));
		return;
	}
	memset(&rep, 0, sizeof(rep));
	rc = dime_smtpc_send(c, &rep, from, to, 1, msg, len, 0);
	if (rc != DIME_OK || rep.code == 0) {
		/* after the final dot an unknown outcome: 4xx, a duplicate the lesser harm */
		gw_set(v, DIME_GW_DEFER, 451, "4.4.2", "the reinjection did not answer (%s)",
		       rep.stage != NULL ? rep.stage : dime_strerror(rc));
		dime_smtpc_free(c);
		return;
	}
	if (rep.code >= 200 && rep.code < 300)
		gw_set(v, DIME_GW_NAKED, 250, "2.0.0", "reinjected: %s", rep.text);
	else
		gw_set(v, rep.code >= 500 ? DIME_GW_REFUSE : DIME_GW_DEFER, rep.code,
		       rep.enh[0] != 0	 ? rep.enh
		       : rep.code >= 500 ? "5.0.0"
					 : "4.0.0",
		       "the reinjection said: %s", rep.text);
	pthread_mutex_lock(&g->mu);
	if (g->n_clients < GW_POOL_MAX) {
		g->clients[g->n_clients++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&g->mu);
	dime_smtpc_free(c);
}

int
dime_gw_message(struct dime_gw *g, struct dime_gw_verdict *v, const char *sender, const char *rcpt,
		const uint8_t *msg, size_t len, int64_t now)
{
	struct gw_route r;
	struct dime_store *st;
	char to[256], from[256];
	size_t aoff = 0, alen = 0;
	int rc, armored;

	memset(v, 0, sizeof(*v));
	memset(&r, 0, sizeof(r));
	from[0] = 0;
	if (gw_addr(to, sizeof(to), rcpt) == NULL ||
	    (sender[0] != 0 && gw_addr(from, sizeof(from), sender) == NULL)) {
		gw_set(v, DIME_GW_REFUSE, 501, "5.1.3", "not an address");
		return DIME_OK;
	}
	if ((st = gw_store_take(g)) == NULL) {
		gw_set(v, DIME_GW_DEFER, 451, "4.3.0", "the store cannot be opened");
		return DIME_OK;
	}
	/* judged again: the signets and records may have changed since RCPT */
	rc = gw_route(g, &r, v, st, to, now);
	if (rc != DIME_OK || v->code != 250)
		goto out;
	armored = gw_armor_find(msg, len, &aoff, &alen);
	switch (r.route) {
	case DIME_GW_LOCAL: gw_local(g, v, to, r.rdomain, msg, len, armored, aoff, alen); break;
	case DIME_GW_DMIME:
		gw_dmime(g, v, st, &r, from, to, msg, len, armored, aoff, alen, now);
		break;
	case DIME_GW_NAKED:
		if (armored)
			gw_set(v, DIME_GW_REFUSE, 554, "5.7.1",
			       "D/MIME is never sent naked to a legacy domain");
		else
			gw_naked(g, v, from, to, msg, len);
		break;
	default: gw_set(v, DIME_GW_DEFER, 451, "4.3.0", "no route"); break;
	}
out:
	gw_store_give(g, st);
	return rc;
}

/* ---- life ---- */

/* HOST:PORT or [HOST]:PORT. Returns 0, -1. */
static int
gw_hostport(char *host, size_t cap, unsigned *port, const char *s)
{
	const char *colon = strrchr(s, ':'), *h = s;
	size_t n;
	char *end = NULL;
	unsigned long p;

	if (colon == NULL)
		return -1;
	n = (size_t)(colon - s);
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		h = s + 1;
		n -= 2;
	}
	if (n == 0 || n >= cap)
		return -1;
	memcpy(host, h, n);
	host[n] = 0;
	p = strtoul(colon + 1, &end, 10);
	if (end == colon + 1 || *end != 0 || p == 0 || p > 65535)
		return -1;
	*port = (unsigned)p;
	return 0;
}

int
dime_gw_new(struct dime_gw **out, const struct dime_gw_env *env, char *why, size_t why_cap)
{
	struct dime_gw *g;
	const char *dwhy = "";
	int rc;

	*out = NULL;
	if (why_cap > 0)
		why[0] = 0;
	if (env == NULL || env->conf == NULL || env->spool == NULL || env->outq == NULL) {
		(void)snprintf(why, why_cap, "the gateway needs a configuration, spool and queue");
		return DIME_E_INVALID;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return DIME_E_NOMEM;
	g->env = *env;
	if (env->conf->reinject[0] != 0) {
		if (gw_hostport(g->rhost, sizeof(g->rhost), &g->sc.port, env->conf->reinject) !=
		    0) {
			(void)snprintf(why, why_cap, "reinject: %s is not HOST:PORT",
				       env->conf->reinject);
			free(g);
			return DIME_E_INVALID;
		}
		g->have_reinject = 1;
	}
	(void)snprintf(g->helo, sizeof(g->helo), "%s",
		       env->conf->hostname[0] != 0 ? env->conf->hostname : "localhost");
	g->sc.host = g->rhost;
	g->sc.helo = g->helo;
	if (pthread_mutex_init(&g->mu, NULL) != 0) {
		free(g);
		return DIME_E_NOMEM;
	}
	rc = gw_dir_open(g, &g->dir, &dwhy);
	if (rc != DIME_OK) {
		(void)snprintf(why, why_cap, "the store: %s", dwhy);
		pthread_mutex_destroy(&g->mu);
		free(g);
		return rc == DIME_E_NOMEM ? rc : DIME_E_INVALID;
	}
	*out = g;
	return DIME_OK;
}

void
dime_gw_free(struct dime_gw *g)
{
	if (g == NULL)
		return;
	for (size_t i = 0; i < g->n_stores; i++)
		dime_store_close(g->stores[i]);
	for (size_t i = 0; i < g->n_clients; i++)
		dime_smtpc_free(g->clients[i]);
	gw_dir_give(g, g->dir);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

/* dimed: the DMTP daemon. Reads its configuration (or the embedded default), starts the key
 * process (docs/dimed.md "Key custody") before anything reads the store's secrets, opens the
 * store without them, the spool, TLS contexts and worker pool, binds, drops root, serves DMTP on
 * one io loop thread in the foreground, delivers the outbound queue to other domains (the
 * delivery agent, docs/delivery.md), and handles SIGTERM/SIGINT (drain, then exit), SIGHUP
 * (reload configuration, certificates and keys; a bad one is logged and the old one kept) and
 * SIGUSR1 (rescan the outbound queue: `dime send` and `dime queue` signal it). */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dime/crypto.h"
#include "dime/dagent.h"
#include "dime/dconf.h"
#include "dime/deliver.h"
#include "dime/dir.h"
#include "dime/dlog.h"
#include "dime/gwflow.h"
#include "dime/dns.h"
#include "dime/dx.h"
#include "dime/keyproc.h"
#include "dime/loop.h"
#include "dime/mrloc.h"
#include "dime/outq.h"
#include "dime/pfsvc.h"
#include "dime/plmsg.h"
#include "dime/pool.h"
#include "dime/privsep.h"
#include "dime/rng.h"
#include "dime/server.h"
#include "dime/sigfetch.h"
#include "dime/smtpd.h"
#include "dime/spool.h"
#include "dime/tlsctx.h"

static const char usage[] =
    "usage: dimed [--config FILE] [--ports-file FILE]\n"
    "       dimed --check-config [--config FILE]\n"
    "\n"
    "Serves DMTP in the foreground. Without --config: hostname from the system, store\n"
    "var/dime.db, spool var/spool, Maildir var/mail, listeners 127.0.0.1:2626 (DMTP, implicit\n"
    "TLS) and 127.0.0.1:2525 (dual, STARTTLS), a self-signed certificate made in var/tls/ when\n"
    "missing. --ports-file writes the bound ports, one per line, in listener order (port 0 in\n"
    "the configuration picks a free one). SIGTERM drains and exits, SIGHUP reloads the\n"
    "configuration, certificates and keys (after a rotation). The private keys live in a key\n"
    "process dimed starts (key_process = yes, the default); dimed writes its pid to\n"
    "<store>.dimed.pid and, started as root with `user = NAME`, runs as NAME after binding.\n"
    "The outbound queue (outq) is delivered over DMTP by outbound_workers threads; SIGUSR1\n"
    "rescans it (messages `dime send` queued, `dime queue retry|delete`).\n";

#define DIMED_CERT "var/tls/cert.pem" /* the embedded default's, made when missing */
#define DIMED_KEY  "var/tls/key.pem"

/* The sanitizer runtimes make system calls a production build never does: under them the key
 * process runs without its seccomp filter (keyproc.h), with the rest of its hardening. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define DIMED_KP_HARDEN (DIME_KP_HARDEN_ALL & ~DIME_KP_HARDEN_SECCOMP)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define DIMED_KP_HARDEN (DIME_KP_HARDEN_ALL & ~DIME_KP_HARDEN_SECCOMP)
#endif
#endif
#ifndef DIMED_KP_HARDEN
#define DIMED_KP_HARDEN DIME_KP_HARDEN_ALL
#endif

/* One set of hosted keys and what runs on them: the directory, the ACCEPT run and its pool
 * lane. SIGHUP makes a new one for new jobs (a rotation); jobs queued on an older lane finish
 * on the keys they started with, then it is freed (dimed_gen_reap). */
struct dimed_gen {
	struct dime_ks *ks; /* the key process client's remote keystore (NULL: in-process) */
	struct dime_pl_keyinfo *keys;
	size_t n_keys;
	struct dime_pl_dir *dir;
	struct dime_pl_msg *run;
	unsigned lane;
	struct dimed_gen *next; /* older */
};

struct dimed {
	const char *conf_path;
	struct dime_dconf conf;
	struct dime_io_loop *loop;
	struct dime_server *srv;
	struct dime_smtpd *smtpd; /* the smtp/lmtp listeners (NULL: none configured) */
	struct dime_pfsvc *pfsvc; /* socketmap and policy listeners (NULL: none configured) */
	unsigned n_draining;	  /* servers whose drain has not reached idle yet */
	struct dime_tlsctx *tls, *tls_old;
	struct dime_pl_pool *pool;
	struct dime_pl_pool *gw_pool;	  /* the gateway's flows block on I/O: their own threads */
	struct dime_pl_pool *lookup_pool; /* DMTP lookups that may fetch: their own threads */
	struct dime_kp_client *kp;
	pid_t kp_pid;		   /* the key process's supervisor (0: key_process = no) */
	struct dimed_gen *gen;	   /* the current one first; touched on the loop thread only */
	struct dime_dagent *agent; /* the outbound delivery agent (set before signals run) */
	struct dime_gw *gw;	   /* the SMTP gateway's flows (NULL: no smtp/lmtp listener) */
	int reap_armed;		   /* a dimed_gen_reap timer is pending */
	int stopping;
};

static int
dimed_level(const char *s)
{
	if (strcmp(s, "error") == 0)
		return DIME_DLOG_ERROR;
	if (strcmp(s, "warning") == 0)
		return DIME_DLOG_WARNING;
	if (strcmp(s, "debug") == 0)
		return DIME_DLOG_DEBUG;
	return DIME_DLOG_INFO;
}

static int
dimed_mkdirs(const char *path)
{
	char tmp[4096];

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -1;
	for (char *p = tmp + 1; *p != 0; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* Load the configuration; with no certificate configured (the embedded default), use
 * var/tls/{cert,key}.pem, made self-signed when missing. Returns 0 or -1 (why filled). */
static int
dimed_load(struct dime_dconf *c, const char *path, int make_cert, char *why, size_t why_cap)
{
	if (dime_dconf_load(c, path, why, why_cap) != DIME_OK)
		return -1;
	if (c->n_certs == 0) {
		struct dime_dconf_cert *d = &c->certs[0];

		strcpy(d->cert, DIMED_CERT);
		strcpy(d->key, DIMED_KEY);
		c->n_certs = 1;
		if (make_cert && access(d->cert, R_OK) != 0) {
			if (dimed_mkdirs("var/tls") != 0) {
				snprintf(why, why_cap, "cannot create var/tls: %s",
					 strerror(errno));
				return -1;
			}
			if (dime_tlsctx_selfsigned(c->hostname, d->cert, d->key, why, why_cap) !=
			    DIME_OK)
				return -1;
			dime_dlog(DIME_DLOG_INFO, "tls.selfsigned", "cert=%s host=%s", d->cert,
				  c->hostname);
		}
	}
	return 0;
}

/* ---- key custody ---- */

static void
dimed_gen_free(struct dimed_gen *g)
{
	if (g == NULL)
		return;
	dime_pl_msg_free(g->run);
	dime_pl_dir_close(g->dir);
	dime_ks_free(g->ks);
	free(g->keys);
	free(g);
}

/* The hosted keys now, and a directory and ACCEPT lane over them. With the key process the
 * store is opened without its secrets (dime_pl_dir_conf.ks); without, the keys are loaded here.
 * Blocking (a key process round trip, the store): call it off the loop. Returns 0 or -1 (why). */
static int
dimed_gen_new(struct dimed *d, struct dimed_gen **out, char *why, size_t why_cap)
{
	struct dimed_gen *g = calloc(1, sizeof(*g));
	struct dime_pl_msg_conf mc;
	const char *dwhy = "";
	int rc;

	*out = NULL;
	if (g == NULL) {
		snprintf(why, why_cap, "out of memory");
		return -1;
	}
	if (d->kp != NULL) {
		struct dime_pl_dir_conf dc;

		if ((rc = dime_kp_client_keys(d->kp, &g->ks, &g->keys, &g->n_keys)) != DIME_OK) {
			snprintf(why, why_cap, "key process: %s",
				 rc == DIME_E_AGAIN ? "no answer in time (its log says why)"
						    : dime_strerror(rc));
			goto fail;
		}
		memset(&dc, 0, sizeof(dc));
		dc.ks = g->ks;
		dc.keys = g->keys;
		dc.n_keys = g->n_keys;
		rc = dime_pl_dir_open_conf(&g->dir, d->conf.store, &dc, &dwhy);
	} else {
		rc = dime_pl_dir_open(&g->dir, d->conf.store, &dwhy);
	}
	if (rc != DIME_OK) {
		snprintf(why, why_cap, "store: %s", dwhy);
		goto fail;
	}
	memset(&mc, 0, sizeof(mc));
	mc.op = DIME_PL_MSG_ACCEPT;
	if (dime_pl_msg_new(&g->run, why, why_cap, g->dir, &mc) != DIME_OK)
		goto fail;
	if (dime_pl_pool_lane(d->pool, &g->lane, g->run) != DIME_OK) {
		snprintf(why, why_cap, "cannot add a worker pool lane");
		goto fail;
	}
	if (d->kp == NULL)
		g->n_keys = dime_pl_dir_keys(g->dir, NULL, NULL, 0, DIME_STORE_ORG_KEY) +
			    dime_pl_dir_keys(g->dir, NULL, NULL, 0, DIME_STORE_USER_KEY);
	*out = g;
	return 0;
fail:
	/* a lane once added borrows its run until the pool is freed: never reached after it */
	dimed_gen_free(g);
	return -1;
}

/* Start the key process under its supervisor, with a channel per worker and two more (the
 * signal thread's reloads). It forks: call it before any thread starts. */
static int
dimed_kp_start(struct dimed *d, char *why, size_t why_cap)
{
	struct dime_kp_conf kc;
	int fds[DIME_KP_CHANNELS_MAX];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t n = (d->conf.workers > 0 ? d->conf.workers : cpus > 0 ? (size_t)cpus : 1) + 2;

	if (n > DIME_KP_CHANNELS_MAX)
		n = DIME_KP_CHANNELS_MAX;
	memset(&kc, 0, sizeof(kc));
	kc.harden = DIMED_KP_HARDEN;
	kc.log_fd = STDERR_FILENO;
	if (dime_kp_spawn(&d->kp_pid, fds, n, d->conf.store, &kc, 1, why, why_cap) != DIME_OK)
		return -1;
	if (dime_kp_client_new(&d->kp, fds, n, d->conf.key_timeout_ms) != DIME_OK) {
		snprintf(why, why_cap, "key process: cannot make its client");
		return -1;
	}
	dime_dlog(DIME_DLOG_INFO, "keyproc.start", "supervisor=%ld channels=%zu timeout_ms=%u",
		  (long)d->kp_pid, n, d->conf.key_timeout_ms);
	return 0;
}

/* Stop the supervisor (it stops its key process). After a drop dimed may not signal it: the
 * closed channels and its parent-death signal end it all the same. Waits at most 2 s. */
static void
dimed_kp_stop(struct dimed *d)
{
	struct timespec ts = {0, 20 * 1000 * 1000};

	dime_kp_client_free(d->kp);
	d->kp = NULL;
	if (d->kp_pid <= 0)
		return;
	if (kill(d->kp_pid, SIGTERM) != 0) {
		d->kp_pid =
		    0; /* EPERM after the drop: it goes when we do (its parent-death signal) */
		return;
	}
	for (int i = 0; i < 100; i++) {
		if (waitpid(d->kp_pid, NULL, WNOHANG) != 0)
			break;
		nanosleep(&ts, NULL);
	}
	d->kp_pid = 0;
}

/* ---- signals: a thread waits for them and posts to the loop ---- */

static void
dimed_idle(void *arg)
{
	struct dimed *d = arg;

	if (d->n_draining > 0 && --d->n_draining > 0)
		return; /* another server still has connections */
	dime_io_loop_stop(d->loop);
}

static void
dimed_on_term(void *arg)
{
	struct dimed *d = arg;

	if (d->stopping)
		return;
	d->stopping = 1;
	dime_dlog(DIME_DLOG_INFO, "dimed.drain", "conns=%zu smtp_conns=%zu",
		  dime_server_n_conns(d->srv), d->smtpd ? dime_smtpd_n_conns(d->smtpd) : 0);
	d->n_draining = 1 + (d->smtpd != NULL) + (d->pfsvc != NULL);
	if (d->pfsvc != NULL)
		dime_pfsvc_drain(d->pfsvc, dimed_idle, d);
	dime_server_drain(d->srv, dimed_idle, d);
	if (d->smtpd != NULL)
		dime_smtpd_drain(d->smtpd, dimed_idle, d);
}

/* What the signal thread prepared for a SIGHUP: the new keys (NULL: reloading them failed, the
 * old stay). */
struct dimed_hup {
	struct dimed *d;
	struct dimed_gen *gen;
};

/* Free the older generations whose lanes have no job left: nothing submits to them any more
 * (the server takes the newest lane), so once pending reads 0 their directory is unused.
 * Re-armed every second while one is left. On the loop thread. */
static void
dimed_gen_reap(void *arg)
{
	struct dimed *d = arg;
	struct dimed_gen **pp = &d->gen->next;
	int left = 0;

	d->reap_armed = 0;
	while (*pp != NULL) {
		struct dimed_gen *g = *pp;

		if (dime_pl_pool_lane_pending(d->pool, g->lane) == 0) {
			*pp = g->next;
			dime_dlog(DIME_DLOG_INFO, "dimed.keys", "retired_lane=%u keys=%zu", g->lane,
				  g->n_keys);
			dimed_gen_free(g);
		} else {
			pp = &g->next;
			left = 1;
		}
	}
	if (left && !d->stopping &&
	    dime_io_timer_add(d->loop, NULL, 1000, dimed_gen_reap, d) == DIME_OK)
		d->reap_armed = 1;
}

static void
dimed_on_hup(void *arg)
{
	struct dimed_hup *h = arg;
	struct dimed *d = h->d;
	struct dime_dconf nc;
	struct dime_tlsctx *t = NULL;
	char why[512] = "";

	if (h->gen != NULL) {
		/* New accepts go to the new lane; the old one is freed once its jobs have run. */
		h->gen->next = d->gen;
		d->gen = h->gen;
		dime_server_set_accept_lane(d->srv, h->gen->lane);
		dime_dlog(DIME_DLOG_INFO, "dimed.keys", "result=ok keys=%zu lane=%u",
			  h->gen->n_keys, h->gen->lane);
		if (!d->reap_armed)
			dimed_gen_reap(d);
	}
	free(h);
	if (dimed_load(&nc, d->conf_path, 1, why, sizeof(why)) != 0 ||
	    dime_tlsctx_new(&t, &nc, why, sizeof(why)) != DIME_OK) {
		dime_dlog(DIME_DLOG_ERROR, "dimed.reload", "result=kept_old why=\"%s\"", why);
		return;
	}
	/* New sessions take the new contexts; the one before the last can go (sessions still
	 * using it hold OpenSSL references of their own). Listeners and limits stay as they
	 * were started: a restart changes those. */
	dime_tlsctx_free(d->tls_old);
	d->tls_old = d->tls;
	d->tls = t;
	dime_server_set_tls(d->srv, t);
	if (d->smtpd != NULL)
		dime_smtpd_set_tls(d->smtpd, t);
	dime_dlog(DIME_DLOG_INFO, "dimed.reload", "result=ok certs=%zu", nc.n_certs);
}

/* SIGHUP, on the signal thread (it may block): the key process reloads from the store, and a
 * directory over its keys is made; the loop then swaps it in with the configuration. */
static void
dimed_hup(struct dimed *d)
{
	struct dimed_hup *h = calloc(1, sizeof(*h));
	char why[512] = "";
	int rc = DIME_OK;

	if (h == NULL) {
		dime_dlog(DIME_DLOG_ERROR, "dimed.signal", "sig=%d why=nomem", SIGHUP);
		return;
	}
	h->d = d;
	/* AGAIN: the key process restarted meanwhile (or was slow); its successor serves a retry */
	if (d->kp != NULL && (rc = dime_kp_client_reload(d->kp)) == DIME_E_AGAIN)
		rc = dime_kp_client_reload(d->kp);
	if (d->kp != NULL && rc != DIME_OK)
		dime_dlog(DIME_DLOG_ERROR, "dimed.keys",
			  "result=kept_old why=\"key process reload: %s\"", dime_strerror(rc));
	else if (dimed_gen_new(d, &h->gen, why, sizeof(why)) != 0)
		dime_dlog(DIME_DLOG_ERROR, "dimed.keys", "result=kept_old why=\"%s\"", why);
	else if (d->gw != NULL && dime_gw_reload(d->gw, why, sizeof(why)) != DIME_OK)
		dime_dlog(DIME_DLOG_ERROR, "dimed.keys", "result=kept_old part=gateway why=\"%s\"",
			  why);
	if (dime_io_loop_post(d->loop, dimed_on_hup, h) != DIME_OK) {
		dime_dlog(DIME_DLOG_ERROR, "dimed.signal", "sig=%d why=nomem", SIGHUP);
		dimed_gen_free(h->gen); /* never fed: its lane gets no job */
		free(h);
	}
}

static void *
dimed_signals(void *arg)
{
	struct dimed *d = arg;
	sigset_t set;
	int sig = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP)
			dimed_hup(d);
		else if (sig == SIGUSR1)
			dime_dagent_rescan(d->agent); /* blocking directory reads: fine here */
		else if (dime_io_loop_post(d->loop, dimed_on_term, d) != DIME_OK)
			dime_dlog(DIME_DLOG_ERROR, "dimed.signal", "sig=%d why=nomem", sig);
	}
	return NULL;
}

static int
dimed_outq_one(const struct dime_outq_entry *e, void *arg)
{
	(void)e;
	(*(size_t *)arg)++;
	return 0;
}

static size_t
dimed_outq_count(struct dime_outq *q)
{
	size_t n = 0;

	(void)dime_outq_list(q, dimed_outq_one, &n);
	return n;
}

/* The delivery counters and the record cache's hit rate (docs/delivery.md, the benchmark). */
static void
dimed_outq_stats(struct dime_dagent *a, struct dime_mr_cache *c)
{
	struct dime_dagent_stats st;
	struct dime_mr_cache_stats cs;
	uint64_t looked;

	dime_dagent_stats(a, &st);
	dime_mr_cache_stats(c, &cs);
	looked = cs.hits + cs.misses;
	dime_dlog(DIME_DLOG_INFO, "outq.stats",
		  "delivered=%llu duplicates=%llu deferred=%llu bounced=%llu notices=%llu "
		  "sessions=%llu tls_mismatch=%llu mr_hits=%llu mr_misses=%llu mr_hit_rate=%.3f",
		  (unsigned long long)st.delivered, (unsigned long long)st.duplicates,
		  (unsigned long long)st.deferred, (unsigned long long)st.bounced,
		  (unsigned long long)st.notices, (unsigned long long)st.sessions,
		  (unsigned long long)st.tls_mismatch, (unsigned long long)cs.hits,
		  (unsigned long long)cs.misses,
		  looked > 0 ? (double)cs.hits / (double)looked : 0.0);
}

/* What MAIL's lookup needs to fetch an unknown origin's org signet (server.h fetch_origin). */
struct dimed_fetch {
	struct dime_sf_conf sf;
};

static int
dimed_fetch_origin(void *arg, struct dime_store *st, const char *domain, int64_t now)
{
	const struct dimed_fetch *f = arg;
	struct dime_sf_result r;
	int rc = dime_sf_resolve(&r, &f->sf, st, domain, now);

	dime_dlog(rc == DIME_OK ? DIME_DLOG_INFO : DIME_DLOG_WARNING, "origin.fetch",
		  "domain=%s result=%s basis=%s host=%s why=\"%s\"", domain,
		  rc == DIME_OK ? "ok" : dime_strerror(rc), dime_sr_basis_name(r.basis), r.host,
		  r.why);
	dime_sf_result_clear(&r);
	return rc;
}

/* The SMTP gateway's handler: its flows (dime/gwflow.h) over d->gw. */
static int
dimed_gw_rcpt(void *arg, struct dime_gw_verdict *v, const char *sender, const char *rcpt,
	      int64_t now)
{
	return dime_gw_rcpt(arg, v, sender, rcpt, now);
}

static int
dimed_gw_message(void *arg, struct dime_gw_verdict *v, const char *sender, const char *rcpt,
		 const uint8_t *msg, size_t len, int64_t now)
{
	return dime_gw_message(arg, v, sender, rcpt, msg, len, now);
}

static struct dime_smtpd_handler
dimed_gw_handler(struct dimed *d)
{
	struct dime_smtpd_handler h;

	memset(&h, 0, sizeof(h));
	h.rcpt = dimed_gw_rcpt;
	h.message = dimed_gw_message;
	h.arg = d->gw;
	return h;
}

/* A message went into the outbound queue: wake the delivery agent (started after the gateway:
 * until then a queued message waits for its first scan). */
static void
dimed_outq_kick(void *arg)
{
	struct dimed *d = arg;
	struct dime_dagent *a = __atomic_load_n(&d->agent, __ATOMIC_ACQUIRE);

	if (a != NULL)
		dime_dagent_kick(a);
}

/* Any of the gateway's listeners (smtp, lmtp, socketmap, policy) configured? */
static int
dimed_gw_wanted(const struct dime_dconf *c)
{
	for (size_t i = 0; i < c->n_listen; i++)
		if (c->listen[i].mode == DIME_DCONF_SMTP ||
		    c->listen[i].mode == DIME_DCONF_LMTP_IN ||
		    c->listen[i].mode == DIME_DCONF_SOCKETMAP ||
		    c->listen[i].mode == DIME_DCONF_POLICY)
			return 1;
	return 0;
}

/* The gateway's flows, when one of its listeners is configured. With the key process its keys
 * come through it (each directory the gateway makes lists them then: SIGHUP's reload and a
 * message for a party added since see the new ones). */
static int
dimed_gw_new(struct dimed *d, const struct dime_gw_env *base, char *why, size_t why_cap)
{
	struct dime_gw_env ge = *base;

	ge.kp = d->kp;
	if (dime_gw_new(&d->gw, &ge, why, why_cap) != DIME_OK)
		return -1;
	return 0;
}

/* ---- the Postfix lookup services: socketmap and policy (dime/pfsvc.h) ---- */

/* Bind the socketmap and policy listeners, if any are configured. ports: the other servers'
 * bound ports in listener order (the default next hop is the first smtp listener's); the
 * services' own are merged in. Returns: 0, or -1 (why). */
static int
dimed_pfsvc_start(struct dimed *d, unsigned *ports, char *why, size_t why_cap)
{
	struct dime_pfsvc_env env;
	unsigned mine[DIME_DCONF_MAX_LISTEN];
	size_t n;
	int any = 0;

	for (size_t i = 0; i < d->conf.n_listen; i++)
		any |= d->conf.listen[i].mode == DIME_DCONF_SOCKETMAP ||
		       d->conf.listen[i].mode == DIME_DCONF_POLICY;
	if (!any)
		return 0;
	memset(&env, 0, sizeof(env));
	env.conf = &d->conf;
	env.loop = d->loop;
	env.pool = d->gw_pool; /* the gateway's RCPT decision may wait on DNS and DMTP */
	env.route = dimed_gw_rcpt;
	env.route_arg = d->gw;
	env.deadline_ms = d->conf.lookup_timeout_ms;
	env.ports = ports;
	env.n_ports = DIME_DCONF_MAX_LISTEN;
	if (dime_pfsvc_new(&d->pfsvc, &env, why, why_cap) != DIME_OK)
		return -1;
	n = dime_pfsvc_ports(d->pfsvc, mine, DIME_DCONF_MAX_LISTEN);
	for (size_t i = 0; i < n; i++)
		if (mine[i] != 0)
			ports[i] = mine[i];
	return 0;
}

/* A pool of threads that wait on I/O (fsync, DNS, DMTP, the reinjection): one job at a time
 * each, no batching. Returns: what dime_pl_pool_new returns. */
static int
dimed_io_pool(struct dime_pl_pool **out, const struct dime_dconf *conf, unsigned workers)
{
	struct dime_pl_pool_conf pc;

	memset(&pc, 0, sizeof(pc));
	pc.workers = workers;
	pc.batch_max = 1;
	pc.queue_max = conf->queue_max;
	return dime_pl_pool_new(out, &pc);
}

int
main(int argc, char **argv)
{
	struct dimed d;
	struct dime_spool *spool = NULL;
	struct dime_deliver *dlv = NULL;
	struct dime_dns *dns = NULL;
	struct dime_mr_cache *mrc = NULL;
	struct dime_outq *outq = NULL;
	struct dime_dns_conf dnsc;
	struct dime_dx_conf dxc;
	struct dime_dx_ports dxp;
	struct dime_pl_pool_conf pc;
	struct dime_server_env env;
	struct dimed_fetch fetch;
	const char *ports_file = NULL;
	FILE *ports_f = NULL;
	char why[1024] = "", pid_path[4096] = "";
	int check = 0, rc = 1, pid_fd = -1, dropped = 0;
	unsigned ports[DIME_DCONF_MAX_LISTEN];
	sigset_t set;
	pthread_t sig_thread;

	memset(&d, 0, sizeof(d));
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			d.conf_path = argv[++i];
		} else if (strcmp(argv[i], "--ports-file") == 0 && i + 1 < argc) {
			ports_file = argv[++i];
		} else if (strcmp(argv[i], "--check-config") == 0) {
			check = 1;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		} else {
			fprintf(stderr, "dimed: unknown argument '%s'\n%s", argv[i], usage);
			return 2;
		}
	}
	if (dime_pl_rng_install() != DIME_OK || dime_global_init() != 0) {
		fprintf(stderr, "dimed: cannot initialise the crypto libraries\n");
		return 1;
	}
	if (check) {
		struct dime_tlsctx *t = NULL;

		/* The configuration and certificates only: the store (and its secrets) is never
		 * opened here. */
		if (dimed_load(&d.conf, d.conf_path, 0, why, sizeof(why)) != 0) {
			fprintf(stderr, "dimed: %s\n", why);
			return 1;
		}
		/* The embedded certificate is made at the first start: not an error yet. */
		if (strcmp(d.conf.certs[0].cert, DIMED_CERT) == 0 &&
		    access(DIMED_CERT, R_OK) != 0) {
			printf("dimed: configuration %s is valid; %s will be made at start\n",
			       d.conf_path ? d.conf_path : "(default)", DIMED_CERT);
			return 0;
		}
		if (dime_tlsctx_new(&t, &d.conf, why, sizeof(why)) != DIME_OK) {
			fprintf(stderr, "dimed: %s\n", why);
			return 1;
		}
		dime_tlsctx_free(t);
		printf("dimed: configuration %s is valid\n",
		       d.conf_path ? d.conf_path : "(default)");
		return 0;
	}
	/* Signals go to the signal thread only: block them before any thread or child starts
	 * (the key process's supervisor sets its own). */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (dimed_load(&d.conf, d.conf_path, 1, why, sizeof(why)) != 0)
		goto fail;
	dime_dlog_init("dimed", d.conf.log_syslog,
		       (enum dime_dlog_level)dimed_level(d.conf.log_level));
	/* First, while this process is single-threaded and has read no secret: the key process
	 * forks from here, so it inherits neither threads nor anything read later. */
	if (d.conf.key_process && dimed_kp_start(&d, why, sizeof(why)) != 0)
		goto fail;
	if (dime_tlsctx_new(&d.tls, &d.conf, why, sizeof(why)) != DIME_OK)
		goto fail;
	memset(&pc, 0, sizeof(pc));
	pc.workers = d.conf.workers;
	pc.batch_max = d.conf.batch_max;
	pc.deadline_us = d.conf.batch_deadline_us;
	pc.queue_max = d.conf.queue_max;
	if (dime_pl_pool_new(&d.pool, &pc) != DIME_OK) {
		snprintf(why, sizeof(why), "cannot start the worker pool");
		goto fail;
	}
	if (dimed_gen_new(&d, &d.gen, why, sizeof(why)) != 0)
		goto fail;
	dime_dlog(DIME_DLOG_INFO, "dimed.keys", "result=ok keys=%zu custody=%s", d.gen->n_keys,
		  d.kp != NULL ? "key_process" : "in_process");
	if (dime_spool_open(&spool, d.conf.spool, why, sizeof(why)) != DIME_OK ||
	    dime_deliver_start(&dlv, &d.conf, spool, why, sizeof(why)) != DIME_OK)
		goto fail;
	/* Outbound: the queue, DNS (its resolver thread starts here, after the key process fork)
	 * and the record cache; the agent starts once root is dropped. */
	{
		struct dime_outq_policy op = {d.conf.outq_first_retry_s, d.conf.outq_max_interval_s,
					      d.conf.outq_delay_notice_s, d.conf.outq_give_up_s};

		dime_dconf_outbound(&d.conf, &dnsc, &dxc, &dxp);
		if (dime_outq_open(&outq, d.conf.outq, &op, why, sizeof(why)) != DIME_OK)
			goto fail;
		if (dime_dns_new(&dns, &dnsc, why, sizeof(why)) != DIME_OK)
			goto fail;
		dxc.dns = dns; /* peers' addresses through the same resolver (static A lines) */
		if (dime_mr_cache_new(&mrc, 0) != DIME_OK) {
			snprintf(why, sizeof(why), "out of memory");
			goto fail;
		}
	}
	if (dime_io_loop_new(&d.loop, DIME_IO_AUTO) != DIME_OK) {
		snprintf(why, sizeof(why), "cannot set up the event loop");
		goto fail;
	}
	memset(&env, 0, sizeof(env));
	env.conf = &d.conf;
	env.loop = d.loop;
	env.pool = d.pool;
	env.accept_lane = d.gen->lane;
	env.spool = spool;
	env.deliver = dlv;
	env.tls = d.tls;
	memset(&fetch, 0, sizeof(fetch));
	fetch.sf.dns = dns;
	fetch.sf.mr_cache = mrc;
	fetch.sf.dx = &dxc;
	fetch.sf.ports = &dxp;
	env.fetch_origin = dimed_fetch_origin;
	env.fetch_arg = &fetch;
	if (dimed_io_pool(&d.lookup_pool, &d.conf, d.conf.lookup_workers) != DIME_OK) {
		snprintf(why, sizeof(why), "cannot start the lookup workers");
		goto fail;
	}
	env.lookup_pool = d.lookup_pool;
	if (dime_server_new(&d.srv, &env, why, sizeof(why)) != DIME_OK)
		goto fail;
	/* The SMTP gateway (docs/smtp.md): its flows (dime/gwflow.h) on their own workers, behind
	 * the smtp/lmtp listeners (dime/smtpd.h) and the socketmap/policy services
	 * (dime/pfsvc.h), all on the DMTP server's loop and TLS set. */
	if (dimed_gw_wanted(&d.conf)) {
		struct dime_gw_env ge;

		memset(&ge, 0, sizeof(ge));
		ge.conf = &d.conf;
		ge.spool = spool;
		ge.deliver = dlv;
		ge.outq = outq;
		ge.outq_kick = dimed_outq_kick;
		ge.outq_kick_arg = &d;
		ge.dns = dns;
		ge.mr_cache = mrc;
		ge.dx = &dxc;
		ge.ports = &dxp;
		if (dimed_gw_new(&d, &ge, why, sizeof(why)) != 0)
			goto fail;
		if (dimed_io_pool(&d.gw_pool, &d.conf, d.conf.gateway_workers) != DIME_OK) {
			snprintf(why, sizeof(why), "cannot start the gateway's workers");
			goto fail;
		}
	}
	if (dime_smtpd_wanted(&d.conf)) {
		struct dime_smtpd_env senv;

		memset(&senv, 0, sizeof(senv));
		senv.conf = &d.conf;
		senv.loop = d.loop;
		senv.pool = d.gw_pool;
		senv.tls = d.tls;
		senv.handler = dimed_gw_handler(&d);
		if (dime_smtpd_new(&d.smtpd, &senv, why, sizeof(why)) != DIME_OK)
			goto fail;
	}
	/* ports[i] from whichever server owns listener i (the others report 0); the services'
	 * default next hop is the first smtp listener's bound port */
	memset(ports, 0, sizeof(ports));
	(void)dime_server_ports(d.srv, ports, DIME_DCONF_MAX_LISTEN);
	if (d.smtpd != NULL) {
		unsigned sports[DIME_DCONF_MAX_LISTEN];
		size_t ns = dime_smtpd_ports(d.smtpd, sports, DIME_DCONF_MAX_LISTEN);

		for (size_t i = 0; i < ns; i++)
			if (sports[i] != 0)
				ports[i] = sports[i];
	}
	if (dimed_pfsvc_start(&d, ports, why, sizeof(why)) != 0)
		goto fail;
	/* Written before the drop (its directory may be root's); locked for as long as we run. */
	if (dime_dconf_pid_file(&d.conf, pid_path, sizeof(pid_path)) != DIME_OK) {
		snprintf(why, sizeof(why), "pid file name too long");
		goto fail;
	}
	if (dime_privsep_pid_write(&pid_fd, pid_path, why, sizeof(why)) != DIME_OK)
		goto fail;
	if (ports_file != NULL && (ports_f = fopen(ports_file, "w")) == NULL) {
		snprintf(why, sizeof(why), "cannot write %s: %s", ports_file, strerror(errno));
		goto fail;
	}
	/* Listeners bound, key process forked: nothing needs root any more. */
	if (dime_privsep_drop(&dropped, d.conf.user, why, sizeof(why)) != DIME_OK)
		goto fail;
	if (dropped)
		dime_dlog(DIME_DLOG_INFO, "dimed.privsep", "user=%s uid=%ld", d.conf.user,
			  (long)getuid());
	else if (d.conf.user[0] != '\0')
		dime_dlog(DIME_DLOG_WARNING, "dimed.privsep",
			  "user=%s result=ignored why=\"not started as root\"", d.conf.user);
	{
		struct dime_dagent_conf ac;

		memset(&ac, 0, sizeof(ac));
		ac.q = outq;
		ac.dns = dns;
		ac.cache = mrc;
		ac.dx = &dxc;
		ac.ports = &dxp;
		ac.maildir_root = d.conf.maildir_root;
		ac.hostname = d.conf.hostname;
		ac.workers = d.conf.outbound_workers;
		ac.rescan_s = 60; /* a safety net: SIGUSR1 is the prompt way */
		if (dime_dagent_start(&d.agent, &ac, why, sizeof(why)) != DIME_OK)
			goto fail;
		dime_dlog(DIME_DLOG_INFO, "outq.start", "root=%s workers=%u queued=%zu",
			  d.conf.outq, d.conf.outbound_workers, dimed_outq_count(outq));
	}
	{
		size_t n = d.conf.n_listen < DIME_DCONF_MAX_LISTEN ? d.conf.n_listen
								   : DIME_DCONF_MAX_LISTEN;

		for (size_t i = 0; i < n; i++) {
			dime_dlog(DIME_DLOG_INFO, "dimed.listen", "host=%s port=%u mode=%s",
				  d.conf.listen[i].host, ports[i],
				  dime_dconf_mode_name(d.conf.listen[i].mode));
			if (ports_f != NULL)
				fprintf(ports_f, "%u\n", ports[i]);
		}
		/* written last: a test that sees the ports sees a dimed that has dropped root */
		if (ports_file != NULL && (ports_f == NULL || fclose(ports_f) != 0)) {
			ports_f = NULL;
			snprintf(why, sizeof(why), "cannot write %s", ports_file);
			goto fail;
		}
		ports_f = NULL;
	}
	if (pthread_create(&sig_thread, NULL, dimed_signals, &d) != 0) {
		snprintf(why, sizeof(why), "cannot start the signal thread");
		goto fail;
	}
	pthread_detach(sig_thread);
	dime_dlog(DIME_DLOG_INFO, "dimed.start", "backend=%s host=%s pid=%ld",
		  dime_io_loop_backend(d.loop), d.conf.hostname, (long)getpid());
	if (dime_io_loop_run(d.loop) != DIME_OK)
		dime_dlog(DIME_DLOG_ERROR, "dimed.loop", "why=io");
	rc = 0;
	dime_dlog(DIME_DLOG_INFO, "dimed.stop", "conns=%zu", dime_server_n_conns(d.srv));
	goto out;
fail:
	fprintf(stderr, "dimed: %s\n", why);
	dime_dlog(DIME_DLOG_ERROR, "dimed.fail", "why=\"%s\"", why);
out:
	if (ports_f != NULL)
		fclose(ports_f);
	dime_server_free(d.srv);
	dime_smtpd_free(d.smtpd);
	dime_pfsvc_free(d.pfsvc); /* its late jobs complete through the pool, then the loop */
	dime_pl_pool_free(d.pool);
	dime_pl_pool_free(d.gw_pool);
	dime_pl_pool_free(d.lookup_pool);
	dime_gw_free(d.gw); /* after the pools: no worker runs a flow any more */
	dime_deliver_stop(dlv, rc == 0);
	if (d.agent != NULL) {
		/* the transactions in progress end; the rest stays queued for the next start */
		dimed_outq_stats(d.agent, mrc);
		dime_dagent_stop(d.agent);
	}
	dime_outq_close(outq);
	dime_mr_cache_free(mrc);
	dime_dns_free(dns);
	dime_io_loop_free(d.loop);
	while (d.gen != NULL) {
		struct dimed_gen *g = d.gen;

		d.gen = g->next;
		dimed_gen_free(g);
	}
	dimed_kp_stop(&d);
	dime_spool_close(spool);
	dime_tlsctx_free(d.tls);
	dime_tlsctx_free(d.tls_old);
	dime_privsep_pid_remove(pid_fd, pid_path);
	return rc;
}

/* dimed: the DMTP daemon. Reads its configuration (or the embedded default), opens the store,
 * spool, TLS contexts and worker pool, serves DMTP on one io loop thread in the foreground, and
 * handles SIGTERM/SIGINT (drain, then exit) and SIGHUP (reload configuration and certificates;
 * a bad one is logged and the old one kept). */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dime/crypto.h"
#include "dime/dconf.h"
#include "dime/deliver.h"
#include "dime/dir.h"
#include "dime/dlog.h"
#include "dime/loop.h"
#include "dime/plmsg.h"
#include "dime/pool.h"
#include "dime/rng.h"
#include "dime/server.h"
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
    "the configuration picks a free one). SIGTERM drains and exits, SIGHUP reloads.\n";

#define DIMED_CERT "var/tls/cert.pem" /* the embedded default's, made when missing */
#define DIMED_KEY  "var/tls/key.pem"

struct dimed {
	const char *conf_path;
	struct dime_dconf conf;
	struct dime_io_loop *loop;
	struct dime_server *srv;
	struct dime_tlsctx *tls, *tls_old;
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

/* ---- signals: a thread waits for them and posts to the loop ---- */

static void
dimed_idle(void *arg)
{
	struct dimed *d = arg;

	dime_io_loop_stop(d->loop);
}

static void
dimed_on_term(void *arg)
{
	struct dimed *d = arg;

	if (d->stopping)
		return;
	d->stopping = 1;
	dime_dlog(DIME_DLOG_INFO, "dimed.drain", "conns=%zu", dime_server_n_conns(d->srv));
	dime_server_drain(d->srv, dimed_idle, d);
}

static void
dimed_on_hup(void *arg)
{
	struct dimed *d = arg;
	struct dime_dconf nc;
	struct dime_tlsctx *t = NULL;
	char why[512] = "";

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
	dime_dlog(DIME_DLOG_INFO, "dimed.reload", "result=ok certs=%zu", nc.n_certs);
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
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (dime_io_loop_post(d->loop, sig == SIGHUP ? dimed_on_hup : dimed_on_term, d) !=
		    DIME_OK)
			dime_dlog(DIME_DLOG_ERROR, "dimed.signal", "sig=%d why=nomem", sig);
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	struct dimed d;
	struct dime_pl_dir *dir = NULL;
	struct dime_pl_msg *run = NULL;
	struct dime_pl_pool *pool = NULL;
	struct dime_spool *spool = NULL;
	struct dime_deliver *dlv = NULL;
	struct dime_pl_msg_conf mc;
	struct dime_pl_pool_conf pc;
	struct dime_server_env env;
	const char *ports_file = NULL, *dwhy = "";
	char why[1024] = "";
	int check = 0, rc = 1;
	unsigned lane = 0, ports[DIME_DCONF_MAX_LISTEN];
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
	/* Signals go to the signal thread only: block them before any thread starts. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (dimed_load(&d.conf, d.conf_path, 1, why, sizeof(why)) != 0)
		goto fail;
	dime_dlog_init("dimed", d.conf.log_syslog,
		       (enum dime_dlog_level)dimed_level(d.conf.log_level));
	if (dime_tlsctx_new(&d.tls, &d.conf, why, sizeof(why)) != DIME_OK)
		goto fail;
	if (dime_pl_dir_open(&dir, d.conf.store, &dwhy) != DIME_OK) {
		snprintf(why, sizeof(why), "store: %s", dwhy);
		goto fail;
	}
	memset(&mc, 0, sizeof(mc));
	mc.op = DIME_PL_MSG_ACCEPT;
	if (dime_pl_msg_new(&run, why, sizeof(why), dir, &mc) != DIME_OK)
		goto fail;
	memset(&pc, 0, sizeof(pc));
	pc.workers = d.conf.workers;
	pc.batch_max = d.conf.batch_max;
	pc.deadline_us = d.conf.batch_deadline_us;
	pc.queue_max = d.conf.queue_max;
	if (dime_pl_pool_new(&pool, &pc) != DIME_OK ||
	    dime_pl_pool_lane(pool, &lane, run) != DIME_OK) {
		snprintf(why, sizeof(why), "cannot start the worker pool");
		goto fail;
	}
	if (dime_spool_open(&spool, d.conf.spool, why, sizeof(why)) != DIME_OK ||
	    dime_deliver_start(&dlv, &d.conf, spool, why, sizeof(why)) != DIME_OK)
		goto fail;
	if (dime_io_loop_new(&d.loop, DIME_IO_AUTO) != DIME_OK) {
		snprintf(why, sizeof(why), "cannot set up the event loop");
		goto fail;
	}
	memset(&env, 0, sizeof(env));
	env.conf = &d.conf;
	env.loop = d.loop;
	env.pool = pool;
	env.accept_lane = lane;
	env.spool = spool;
	env.deliver = dlv;
	env.tls = d.tls;
	if (dime_server_new(&d.srv, &env, why, sizeof(why)) != DIME_OK)
		goto fail;
	{
		size_t n = dime_server_ports(d.srv, ports, DIME_DCONF_MAX_LISTEN);
		FILE *f = ports_file != NULL ? fopen(ports_file, "w") : NULL;

		for (size_t i = 0; i < n; i++) {
			dime_dlog(DIME_DLOG_INFO, "dimed.listen", "host=%s port=%u mode=%s",
				  d.conf.listen[i].host, ports[i],
				  d.conf.listen[i].mode == DIME_DCONF_DMTP ? "dmtp" : "dual");
			if (f != NULL)
				fprintf(f, "%u\n", ports[i]);
		}
		if (ports_file != NULL && (f == NULL || fclose(f) != 0)) {
			snprintf(why, sizeof(why), "cannot write %s", ports_file);
			goto fail;
		}
	}
	if (pthread_create(&sig_thread, NULL, dimed_signals, &d) != 0) {
		snprintf(why, sizeof(why), "cannot start the signal thread");
		goto fail;
	}
	pthread_detach(sig_thread);
	dime_dlog(DIME_DLOG_INFO, "dimed.start", "backend=%s host=%s", dime_io_loop_backend(d.loop),
		  d.conf.hostname);
	if (dime_io_loop_run(d.loop) != DIME_OK)
		dime_dlog(DIME_DLOG_ERROR, "dimed.loop", "why=io");
	rc = 0;
	dime_dlog(DIME_DLOG_INFO, "dimed.stop", "conns=%zu", dime_server_n_conns(d.srv));
	goto out;
fail:
	fprintf(stderr, "dimed: %s\n", why);
	dime_dlog(DIME_DLOG_ERROR, "dimed.fail", "why=\"%s\"", why);
out:
	dime_server_free(d.srv);
	dime_pl_pool_free(pool);
	dime_deliver_stop(dlv, rc == 0);
	dime_io_loop_free(d.loop);
	dime_pl_msg_free(run);
	dime_spool_close(spool);
	dime_pl_dir_close(dir);
	dime_tlsctx_free(d.tls);
	dime_tlsctx_free(d.tls_old);
	return rc;
}

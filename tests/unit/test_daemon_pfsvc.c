/* dimed's socketmap and policy services (dime/pfsvc.h) over real loopback sockets: the loop on
 * its own thread, queries on a worker pool, a scripted route handler recording its calls.
 * Socketmap netstrings one at a time and pipelined, a bad frame closing, policy requests, the
 * deadline answer (TEMP / DEFER_IF_PERMIT) with the connection still usable, postmap -q against
 * the service (skipped without postmap), the default next hop, and drain. With --serve it runs
 * the service for tests/smtp/test_pfsvc_postfix.sh (a real Postfix asking it). */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dime/dconf.h"
#include "dime/loop.h"
#include "dime/pfsvc.h"
#include "dime/pool.h"
#include "tlib.h"

#define NEXTHOP	    "dime:[127.0.0.1]:10025"
#define WAIT_MS	    20000 /* a safety net for a hung service, never a measure */
#define DEADLINE_MS 1500u

/* ---- the scripted handler ---- */

static int h_log; /* --serve: log each call on stdout */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned calls, blocked, release;
	char sender[256], rcpt[256]; /* the last call's */
} h = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, "", ""};

static int
route(void *arg, struct dime_gw_verdict *v, const char *sender, const char *rcpt, int64_t now)
{
	const char *dom = strrchr(rcpt, '@');

	(void)arg;
	(void)now;
	pthread_mutex_lock(&h.mu);
	h.calls++;
	snprintf(h.sender, sizeof(h.sender), "%s", sender);
	snprintf(h.rcpt, sizeof(h.rcpt), "%s", rcpt);
	if (h_log) {
		printf("route %s <%s>\n", rcpt, sender);
		fflush(stdout);
	}
	if (dom != NULL && strcmp(dom, "@block.example") == 0) {
		/* held until the test lets it go (the deadline, drain) */
		unsigned mine = ++h.blocked;

		pthread_cond_broadcast(&h.cv);
		while (h.release < mine)
			pthread_cond_wait(&h.cv, &h.mu);
	}
	pthread_mutex_unlock(&h.mu);
	memset(v, 0, sizeof(*v));
	v->code = 250;
	if (dom == NULL)
		return DIME_E_INVALID;
	dom++;
	if (strcmp(dom, "fail.example") == 0)
		return DIME_E_NOMEM;
	if (strcmp(dom, "dmime.example") == 0 || strcmp(dom, "block.example") == 0)
		v->route = DIME_GW_DMIME;
	else if (strcasecmp(dom, "local.example") == 0)
		v->route = DIME_GW_LOCAL;
	else if (strcmp(dom, "defer.example") == 0) {
		v->route = DIME_GW_DEFER;
		v->code = 451;
		snprintf(v->text, sizeof(v->text), "signet unavailable now");
	} else if (strcmp(dom, "refuse.example") == 0) {
		v->route = DIME_GW_REFUSE;
		v->code = 550;
		snprintf(v->text, sizeof(v->text), "strict domain, no signet");
	} else
		v->route = DIME_GW_NAKED;
	return DIME_OK;
}

static void
h_wait_blocked(unsigned n)
{
	pthread_mutex_lock(&h.mu);
	while (h.blocked < n)
		pthread_cond_wait(&h.cv, &h.mu);
	pthread_mutex_unlock(&h.mu);
}

static void
h_release(void)
{
	pthread_mutex_lock(&h.mu);
	h.release++;
	pthread_cond_broadcast(&h.cv);
	pthread_mutex_unlock(&h.mu);
}

static unsigned
h_calls(void)
{
	unsigned n;

	pthread_mutex_lock(&h.mu);
	n = h.calls;
	pthread_mutex_unlock(&h.mu);
	return n;
}

/* ---- a blocking client ---- */

static int
cli_connect(unsigned port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int
cli_send(int fd, const char *s)
{
	size_t n = strlen(s);

	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read until want bytes came, EOF, or WAIT_MS passed. Returns the bytes read. */
static size_t
cli_read(int fd, char *buf, size_t want)
{
	size_t have = 0;

	while (have < want) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t r;

		if (poll(&p, 1, WAIT_MS) <= 0)
			break;
		if ((r = recv(fd, buf + have, want - have, 0)) <= 0)
			break;
		have += (size_t)r;
	}
	buf[have] = 0;
	return have;
}

/* Does the server close fd (EOF or reset) with nothing more said? */
static int
cli_eof(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char b;

	if (poll(&p, 1, WAIT_MS) <= 0)
		return 0;
	return recv(fd, &b, 1, 0) <= 0;
}

/* A socketmap request or answer as a netstring. */
static const char *
ns(const char *payload)
{
	static char b[4][1024];
	static int at;

	at = (at + 1) % 4;
	snprintf(b[at], sizeof(b[at]), "%zu:%s,", strlen(payload), payload);
	return b[at];
}

/* One request, one answer. */
static void
sm_expect(int fd, const char *key, const char *want)
{
	char req[512], got[1024];
	const char *w = ns(want);

	snprintf(req, sizeof(req), "dime %s", key);
	T_CHECK(cli_send(fd, ns(req)) == 0, "send %s", key);
	cli_read(fd, got, strlen(w));
	T_CHECK(strcmp(got, w) == 0, "socketmap %s: got [%s], want [%s]", key, got, w);
}

static const char *
pol_req(const char *state, const char *sender, const char *rcpt)
{
	static char b[1024];

	snprintf(b, sizeof(b),
		 "request=smtpd_access_policy\nprotocol_state=%s\nprotocol_name=ESMTP\n"
		 "client_address=192.0.2.7\nsender=%s\nrecipient=%s\n\n",
		 state, sender, rcpt);
	return b;
}

static void
pol_expect(int fd, const char *state, const char *sender, const char *rcpt, const char *want)
{
	char got[1024];

	T_CHECK(cli_send(fd, pol_req(state, sender, rcpt)) == 0, "send policy %s", rcpt);
	cli_read(fd, got, strlen(want));
	T_CHECK(strcmp(got, want) == 0, "policy %s %s: got [%s], want [%s]", state, rcpt, got,
		want);
}

/* ---- the loop thread ---- */

struct svc {
	struct dime_io_loop *loop;
	struct dime_pfsvc *s;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int idle;
};

static void *
loop_main(void *arg)
{
	struct svc *v = arg;

	if (dime_io_loop_run(v->loop) != DIME_OK)
		t_fail("loop run");
	return NULL;
}

static void
on_idle(void *arg)
{
	struct svc *v = arg;

	pthread_mutex_lock(&v->mu);
	v->idle = 1;
	pthread_cond_broadcast(&v->cv);
	pthread_mutex_unlock(&v->mu);
	dime_io_loop_stop(v->loop);
}

static void
do_drain(void *arg)
{
	struct svc *v = arg;

	dime_pfsvc_drain(v->s, on_idle, v);
}

static void
conf_init(struct dime_dconf *cf)
{
	char why[256];

	if (dime_dconf_load(cf, NULL, why, sizeof(why)) != DIME_OK) {
		fprintf(stderr, "dconf defaults: %s\n", why);
		exit(1);
	}
	cf->n_listen = 0;
}

static void
conf_listen(struct dime_dconf *cf, const char *host, unsigned port, enum dime_dconf_mode m)
{
	struct dime_dconf_listen *l = &cf->listen[cf->n_listen++];

	snprintf(l->host, sizeof(l->host), "%s", host);
	l->port = port;
	l->mode = m;
}

/* ---- postmap ---- */

static const char *
find_postmap(void)
{
	static const char *const paths[] = {"/usr/sbin/postmap", "/usr/bin/postmap"};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

static int
run(const char *cmd, char *out, size_t cap)
{
	FILE *f = popen(cmd, "r");
	size_t n = 0;
	int st;

	out[0] = 0;
	if (f == NULL)
		return -1;
	while (n + 1 < cap) {
		size_t r = fread(out + n, 1, cap - 1 - n, f);

		if (r == 0)
			break;
		n += r;
	}
	out[n] = 0;
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
test_postmap(unsigned port)
{
	const char *postmap = find_postmap();
	char cmd[8192], out[4096];
	int rc;
	static const struct {
		const char *key, *want;
		int rc, sub;
	} cases[] = {
	    {"bob@dmime.example", NEXTHOP "\n", 0, 0},
	    {"Bob@Local.Example", NEXTHOP "\n", 0, 0},
	    {"bob@naked.example", "", 1, 0},
	    {"bob@defer.example", "socketmap server temporary error: signet unavailable now", 1, 1},
	    {"bob@refuse.example", "error:5.7.1 strict domain, no signet\n", 0, 0},
	};

	if (postmap == NULL) {
		fprintf(stderr, "test_daemon_pfsvc: no postmap, its part skipped\n");
		return;
	}
	if (t_mkdtemp("pfsvc") != 0 || t_write_text(t_path("main.cf"), "") != 0)
		return;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(cmd, sizeof(cmd), "%s -c %s -q '%s' socketmap:inet:127.0.0.1:%u:dime 2>&1",
			 postmap, t_dir, cases[i].key, port);
		rc = run(cmd, out, sizeof(out));
		T_CHECK(rc == cases[i].rc && (cases[i].sub ? strstr(out, cases[i].want) != NULL
							   : strcmp(out, cases[i].want) == 0),
			"postmap -q %s: exit %d [%s], want %d [%s]", cases[i].key, rc, out,
			cases[i].rc, cases[i].want);
	}
	/* several keys over one connection */
	snprintf(cmd, sizeof(cmd),
		 "printf 'a@dmime.example\\nb@naked.example\\nc@refuse.example\\n' | "
		 "%s -c %s -q - socketmap:inet:127.0.0.1:%u:dime 2>&1",
		 postmap, t_dir, port);
	rc = run(cmd, out, sizeof(out));
	T_CHECK(rc == 0 &&
		    strcmp(out, "a@dmime.example\t" NEXTHOP "\n"
				"c@refuse.example\terror:5.7.1 strict domain, no signet\n") == 0,
		"postmap -q -: exit %d [%s]", rc, out);
	t_rm_rf(t_dir);
}

/* ---- new(): handler, next hop ---- */

static void
test_new_errors(struct dime_io_loop *loop, struct dime_pl_pool *pool)
{
	struct dime_dconf cf;
	struct dime_pfsvc_env env;
	struct dime_pfsvc *s = NULL;
	unsigned ports[DIME_DCONF_MAX_LISTEN] = {0, 0, 0};
	char why[512];
	int rc;

	conf_init(&cf);
	memset(&env, 0, sizeof(env));
	env.conf = &cf;
	env.loop = loop;
	env.pool = pool;
	env.route = route;

	/* no socketmap or policy listener: nothing bound, nothing needed */
	conf_listen(&cf, "127.0.0.1", 0, DIME_DCONF_DMTP);
	env.route = NULL;
	rc = dime_pfsvc_new(&s, &env, why, sizeof(why));
	T_CHECK(rc == DIME_OK && s != NULL && dime_pfsvc_ports(s, ports, 3) == 1 && ports[0] == 0,
		"dmtp only: rc %d", rc);
	dime_pfsvc_free(s);

	/* a policy listener and no handler: refused */
	conf_listen(&cf, "127.0.0.1", 0, DIME_DCONF_POLICY);
	rc = dime_pfsvc_new(&s, &env, why, sizeof(why));
	T_CHECK(rc == DIME_E_INVALID && s == NULL && strstr(why, "handler") != NULL,
		"no handler: rc %d [%s]", rc, why);
	env.route = route;

	/* a socketmap without a next hop nor an smtp listener */
	conf_listen(&cf, "127.0.0.1", 0, DIME_DCONF_SOCKETMAP);
	rc = dime_pfsvc_new(&s, &env, why, sizeof(why));
	T_CHECK(rc == DIME_E_INVALID && s == NULL && strstr(why, "socketmap_nexthop") != NULL,
		"no next hop: rc %d [%s]", rc, why);

	/* an smtp listener whose port is not known yet */
	conf_listen(&cf, "0.0.0.0", 0, DIME_DCONF_SMTP);
	rc = dime_pfsvc_new(&s, &env, why, sizeof(why));
	T_CHECK(rc == DIME_E_INVALID && s == NULL, "smtp port 0: rc %d [%s]", rc, why);

	/* its bound port, from the server that owns it; a wildcard host becomes loopback */
	ports[3] = 10099;
	env.ports = ports;
	env.n_ports = 4;
	rc = dime_pfsvc_new(&s, &env, why, sizeof(why));
	T_CHECK(rc == DIME_OK && strcmp(dime_pfsvc_nexthop(s), "dime:[127.0.0.1]:10099") == 0,
		"default next hop: rc %d [%s]", rc, s != NULL ? dime_pfsvc_nexthop(s) : why);
	dime_pfsvc_free(s);
	s = NULL;

	/* socketmap_nexthop wins; one with a space is refused */
	snprintf(cf.socketmap_nexthop, sizeof(cf.socketmap_nexthop), "smtp:[gw.example]:25");
	rc = dime_pfsvc_new(&s, &env, why, sizeof(why));
	T_CHECK(rc == DIME_OK && strcmp(dime_pfsvc_nexthop(s), "smtp:[gw.example]:25") == 0,
		"socketmap_nexthop: rc %d", rc);
	dime_pfsvc_free(s);
	s = NULL;
	snprintf(cf.socketmap_nexthop, sizeof(cf.socketmap_nexthop), "dime:[a b]:1");
	rc = dime_pfsvc_new(&s, &env, why, sizeof(why));
	T_CHECK(rc == DIME_E_INVALID && s == NULL, "a next hop with a space: rc %d", rc);
}

/* --serve NEXTHOP PORTSFILE: the service with the scripted handler on loopback for a Postfix
 * instance (tests/smtp/test_pfsvc_postfix.sh): "SOCKETMAP_PORT POLICY_PORT" written to
 * PORTSFILE once listening, each handler call logged on stdout ("route RCPT <SENDER>"), SIGTERM
 * drains and exits 0. */
static int
serve(const char *nexthop, const char *ports_file)
{
	struct dime_pl_pool_conf pc = {.workers = 2};
	struct dime_pl_pool *pool = NULL;
	struct dime_dconf cf;
	struct dime_pfsvc_env env;
	struct svc v;
	unsigned ports[DIME_DCONF_MAX_LISTEN];
	char why[512];
	sigset_t set;
	int sig = 0;
	FILE *f;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	t_init();
	memset(&v, 0, sizeof(v));
	pthread_mutex_init(&v.mu, NULL);
	pthread_cond_init(&v.cv, NULL);
	conf_init(&cf);
	conf_listen(&cf, "127.0.0.1", 0, DIME_DCONF_SOCKETMAP);
	conf_listen(&cf, "127.0.0.1", 0, DIME_DCONF_POLICY);
	snprintf(cf.socketmap_nexthop, sizeof(cf.socketmap_nexthop), "%s", nexthop);
	if (dime_io_loop_new(&v.loop, DIME_IO_AUTO) != DIME_OK ||
	    dime_pl_pool_new(&pool, &pc) != DIME_OK)
		return 1;
	memset(&env, 0, sizeof(env));
	env.conf = &cf;
	env.loop = v.loop;
	env.pool = pool;
	env.route = route;
	h_log = 1;
	if (dime_pfsvc_new(&v.s, &env, why, sizeof(why)) != DIME_OK) {
		fprintf(stderr, "dime_pfsvc_new: %s\n", why);
		return 1;
	}
	(void)dime_pfsvc_ports(v.s, ports, 2);
	if ((f = fopen(ports_file, "w")) == NULL || fprintf(f, "%u %u\n", ports[0], ports[1]) < 0 ||
	    fclose(f) != 0)
		return 1;
	if (pthread_create(&v.th, NULL, loop_main, &v) != 0)
		return 1;
	sigwait(&set, &sig);
	if (dime_io_loop_post(v.loop, do_drain, &v) != DIME_OK)
		dime_io_loop_stop(v.loop);
	pthread_join(v.th, NULL);
	dime_pfsvc_free(v.s);
	dime_pl_pool_free(pool);
	dime_io_loop_free(v.loop);
	return t_failures != 0;
}

int
main(int argc, char **argv)
{
	struct dime_pl_pool_conf pc = {.workers = 2};
	struct dime_pl_pool *pool = NULL;
	struct dime_dconf cf;
	struct dime_pfsvc_env env;
	struct svc v;
	unsigned ports[DIME_DCONF_MAX_LISTEN], smp, polp;
	unsigned smtp_ports[1] = {10025};
	char why[512], got[2048];
	int fd, fd2, idle_fd;
	size_t n;

	if (argc == 4 && strcmp(argv[1], "--serve") == 0)
		return serve(argv[2], argv[3]);
	t_init();
	memset(&v, 0, sizeof(v));
	pthread_mutex_init(&v.mu, NULL);
	pthread_cond_init(&v.cv, NULL);
	if (dime_io_loop_new(&v.loop, DIME_IO_AUTO) != DIME_OK ||
	    dime_pl_pool_new(&pool, &pc) != DIME_OK) {
		fprintf(stderr, "loop or pool\n");
		return 1;
	}
	test_new_errors(v.loop, pool);

	conf_init(&cf);
	conf_listen(&cf, "127.0.0.1", 0, DIME_DCONF_SMTP);
	conf_listen(&cf, "127.0.0.1", 0, DIME_DCONF_SOCKETMAP);
	conf_listen(&cf, "127.0.0.1", 0, DIME_DCONF_POLICY);
	memset(&env, 0, sizeof(env));
	env.conf = &cf;
	env.loop = v.loop;
	env.pool = pool;
	env.route = route;
	env.ports = smtp_ports;
	env.n_ports = 1;
	env.deadline_ms = DEADLINE_MS;
	if (dime_pfsvc_new(&v.s, &env, why, sizeof(why)) != DIME_OK) {
		fprintf(stderr, "dime_pfsvc_new: %s\n", why);
		return 1;
	}
	n = dime_pfsvc_ports(v.s, ports, DIME_DCONF_MAX_LISTEN);
	T_CHECK(n == 3 && ports[0] == 0 && ports[1] != 0 && ports[2] != 0,
		"ports: n %zu [%u %u %u]", n, ports[0], ports[1], ports[2]);
	T_CHECK(strcmp(dime_pfsvc_nexthop(v.s), NEXTHOP) == 0, "next hop [%s]",
		dime_pfsvc_nexthop(v.s));
	smp = ports[1];
	polp = ports[2];
	if (pthread_create(&v.th, NULL, loop_main, &v) != 0)
		return 1;

	/* socketmap: one at a time, the handler sees the key as sent and no sender */
	if ((fd = cli_connect(smp)) < 0) {
		fprintf(stderr, "connect socketmap\n");
		return 1;
	}
	sm_expect(fd, "bob@dmime.example", "OK " NEXTHOP);
	pthread_mutex_lock(&h.mu);
	T_CHECK(strcmp(h.rcpt, "bob@dmime.example") == 0 && h.sender[0] == 0,
		"handler saw rcpt [%s] sender [%s]", h.rcpt, h.sender);
	pthread_mutex_unlock(&h.mu);
	sm_expect(fd, "alice@local.example", "OK " NEXTHOP);
	sm_expect(fd, "bob@naked.example", "NOTFOUND ");
	sm_expect(fd, "bob@defer.example", "TEMP signet unavailable now");
	sm_expect(fd, "bob@refuse.example", "OK error:5.7.1 strict domain, no signet");
	sm_expect(fd, "bob@fail.example", "TEMP the lookup failed, try again later");
	/* answered by the machine alone: no query, no handler call */
	{
		unsigned before = h_calls();

		T_CHECK(cli_send(fd, ns("other bob@dmime.example")) == 0, "send");
		cli_read(fd, got, strlen(ns("PERM unknown map name")));
		T_CHECK(strcmp(got, ns("PERM unknown map name")) == 0, "other map: [%s]", got);
		sm_expect(fd, "*", "NOTFOUND ");
		T_CHECK(h_calls() == before, "handler called %u times for machine answers",
			h_calls() - before);
	}

	/* pipelined: four requests in one write, four answers in order */
	{
		char req[1024], want[1024];

		snprintf(req, sizeof(req), "%s", ns("dime a@dmime.example"));
		strcat(req, ns("dime b@naked.example"));
		strcat(req, ns("dime c@refuse.example"));
		strcat(req, ns("dime d@local.example"));
		snprintf(want, sizeof(want), "%s", ns("OK " NEXTHOP));
		strcat(want, ns("NOTFOUND "));
		strcat(want, ns("OK error:5.7.1 strict domain, no signet"));
		strcat(want, ns("OK " NEXTHOP));
		T_CHECK(cli_send(fd, req) == 0, "send pipelined");
		cli_read(fd, got, strlen(want));
		T_CHECK(strcmp(got, want) == 0, "pipelined: got [%s], want [%s]", got, want);
	}

	/* a bad frame closes without a reply; answers queued before it still come */
	T_CHECK(cli_send(fd, ns("dime x@dmime.example")) == 0 && cli_send(fd, "12x:junk,") == 0,
		"send bad frame");
	cli_read(fd, got, strlen(ns("OK " NEXTHOP)));
	T_CHECK(strcmp(got, ns("OK " NEXTHOP)) == 0, "before the bad frame: [%s]", got);
	T_CHECK(cli_eof(fd), "a bad frame: not closed");
	close(fd);

	/* policy */
	if ((fd = cli_connect(polp)) < 0) {
		fprintf(stderr, "connect policy\n");
		return 1;
	}
	pol_expect(fd, "RCPT", "carol@x.example", "bob@refuse.example",
		   "action=550 5.7.1 strict domain, no signet\n\n");
	pthread_mutex_lock(&h.mu);
	T_CHECK(strcmp(h.rcpt, "bob@refuse.example") == 0 &&
		    strcmp(h.sender, "carol@x.example") == 0,
		"policy handler saw rcpt [%s] sender [%s]", h.rcpt, h.sender);
	pthread_mutex_unlock(&h.mu);
	pol_expect(fd, "RCPT", "", "bob@defer.example",
		   "action=DEFER_IF_PERMIT 4.7.0 signet unavailable now\n\n");
	pol_expect(fd, "RCPT", "carol@x.example", "bob@dmime.example", "action=DUNNO\n\n");
	pol_expect(fd, "RCPT", "carol@x.example", "bob@naked.example", "action=DUNNO\n\n");
	pol_expect(fd, "RCPT", "carol@x.example", "bob@fail.example",
		   "action=DEFER_IF_PERMIT 4.7.0 the lookup failed, try again later\n\n");
	pol_expect(fd, "MAIL", "carol@x.example", "", "action=DUNNO\n\n");
	/* pipelined */
	{
		char req[2048];

		snprintf(req, sizeof(req), "%s",
			 pol_req("RCPT", "carol@x.example", "a@refuse.example"));
		strcat(req, pol_req("RCPT", "carol@x.example", "b@dmime.example"));
		T_CHECK(cli_send(fd, req) == 0, "send");
		cli_read(fd, got,
			 strlen("action=550 5.7.1 strict domain, no signet\n\n"
				"action=DUNNO\n\n"));
		T_CHECK(
		    strcmp(got, "action=550 5.7.1 strict domain, no signet\n\naction=DUNNO\n\n") ==
			0,
		    "policy pipelined: [%s]", got);
	}
	/* a bad request closes without a reply */
	T_CHECK(cli_send(fd, "request=smtpd_access_policy\nno equals sign\n\n") == 0, "send");
	T_CHECK(cli_eof(fd), "a bad policy request: not closed");
	close(fd);

	/* the deadline: a handler that hangs gets TEMP / DEFER_IF_PERMIT, and the connection
	 * goes on with the next request while the job is still running */
	if ((fd = cli_connect(smp)) < 0 || (fd2 = cli_connect(polp)) < 0) {
		fprintf(stderr, "connect\n");
		return 1;
	}
	sm_expect(fd, "slow@block.example", "TEMP the lookup timed out, try again later");
	sm_expect(fd, "bob@naked.example", "NOTFOUND ");
	h_release();
	pol_expect(fd2, "RCPT", "carol@x.example", "slow@block.example",
		   "action=DEFER_IF_PERMIT 4.7.0 the lookup timed out, try again later\n\n");
	h_release();
	pol_expect(fd2, "RCPT", "carol@x.example", "bob@dmime.example", "action=DUNNO\n\n");
	close(fd2);

	/* postmap, Postfix's own socketmap client */
	test_postmap(smp);

	/* drain: the idle connection closes at once, the busy one after its answer, then idle;
	 * the listeners are closed */
	if ((idle_fd = cli_connect(polp)) < 0) {
		fprintf(stderr, "connect\n");
		return 1;
	}
	sm_expect(fd, "bob@dmime.example", "OK " NEXTHOP);
	{
		char req[256];

		snprintf(req, sizeof(req), "%s", ns("dime busy@block.example"));
		T_CHECK(cli_send(fd, req) == 0, "send");
	}
	h_wait_blocked(3);
	if (dime_io_loop_post(v.loop, do_drain, &v) != DIME_OK)
		t_fail("post drain");
	T_CHECK(cli_eof(idle_fd), "drain: the idle connection stays open");
	close(idle_fd);
	/* the listener's socket may close a little after drain (io_uring cancels its accept
	 * asynchronously): a connection that got in meanwhile is closed unserved */
	{
		int late = cli_connect(smp);

		T_CHECK(late < 0 ||
			    (cli_send(late, ns("dime bob@dmime.example")) == 0 && cli_eof(late)),
			"drain: the socketmap listener still serves");
		if (late >= 0)
			close(late);
	}
	h_release();
	/* the answer (OK, or TEMP if the deadline came first on a loaded machine), then EOF */
	n = cli_read(fd, got, strlen(ns("OK " NEXTHOP)));
	T_CHECK(strcmp(got, ns("OK " NEXTHOP)) == 0 ||
		    strstr(got, "TEMP the lookup timed out") != NULL,
		"drain: the busy one's answer [%s]", got);
	T_CHECK(cli_eof(fd), "drain: the busy connection stays open");
	close(fd);
	pthread_mutex_lock(&v.mu);
	{
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += WAIT_MS / 1000;
		while (!v.idle && pthread_cond_timedwait(&v.cv, &v.mu, &until) == 0)
			;
	}
	T_CHECK(v.idle, "drain: idle never called");
	pthread_mutex_unlock(&v.mu);
	if (!v.idle)
		dime_io_loop_stop(v.loop);
	pthread_join(v.th, NULL);
	T_CHECK(dime_pfsvc_n_conns(v.s) == 0, "conns left: %zu", dime_pfsvc_n_conns(v.s));
	dime_pfsvc_free(v.s);
	dime_pl_pool_free(pool);
	dime_io_loop_free(v.loop);
	return t_done("test_daemon_pfsvc");
}

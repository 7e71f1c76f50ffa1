/* dimed's socketmap and policy services: listeners and connections on the io loop, one pfmap
 * machine per connection, each query a pool job running the route handler, answered through
 * dime_pfmap_route_sm/_pol, or DEFER when the deadline passes first. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "dime/dconf.h"
#include "dime/dlog.h"
#include "dime/loop.h"
#include "dime/pfmap.h"
#include "dime/pfsvc.h"
#include "dime/pool.h"

#include "conn_int.h"

struct pfsvc_conn;

/* One query in flight. It owns copies of its strings, so the connection may answer (deadline)
 * or go away (close) while the worker still runs: c is then NULL and the completion only frees
 * the job. */
struct pfsvc_job {
	struct dime_pl_pool_job pj;
	struct pfsvc_conn *c;
	dime_pfsvc_route_fn route;
	void *route_arg;
	char *sender, *rcpt;
	size_t sender_len, rcpt_len;
	int rc;
	struct dime_gw_verdict v;
};

struct pfsvc_conn {
	struct dime_pfsvc *svc;
	struct dime_io_conn *io;
	int pol; /* policy (else socketmap) */
	struct dime_pfmap_sm *sm;
	struct dime_pfmap_pol *pp;
	struct pfsvc_conn *prev, *next;
	struct pfsvc_job *job;
	struct dime_io_timer *deadline;
	struct dime_conn_held held;
	int closing, paused;
	char ip[DIME_CONN_IP_CAP];
};

struct dime_pfsvc {
	struct dime_pfsvc_env env;
	struct dime_conn_listener ls[DIME_DCONF_MAX_LISTEN];
	size_t n_ls;
	struct dime_pfmap_route route;
	char nexthop[DIME_PFMAP_TEXT_MAX + 1];
	struct pfsvc_conn *conns;
	size_t n_conns;
	int draining;
	void (*idle)(void *arg);
	void *idle_arg;
};

/* ---- the two machines behind one face ---- */

static size_t
pfsvc_feed(struct pfsvc_conn *c, const uint8_t *p, size_t n)
{
	return c->pol ? dime_pfmap_pol_feed(c->pp, p, n) : dime_pfmap_sm_feed(c->sm, p, n);
}

static unsigned
pfsvc_actions(const struct pfsvc_conn *c)
{
	return c->pol ? dime_pfmap_pol_actions(c->pp) : dime_pfmap_sm_actions(c->sm);
}

static int
pfsvc_query_open(const struct pfsvc_conn *c)
{
	return c->pol ? dime_pfmap_pol_query(c->pp) != NULL : dime_pfmap_sm_query(c->sm) != NULL;
}

static void
pfsvc_drain_machine(struct pfsvc_conn *c)
{
	if (c->pol)
		dime_pfmap_pol_drain(c->pp);
	else
		dime_pfmap_sm_drain(c->sm);
}

static void
pfsvc_send(struct pfsvc_conn *c)
{
	size_t n = 0;
	const uint8_t *p = c->pol ? dime_pfmap_pol_out(c->pp, &n) : dime_pfmap_sm_out(c->sm, &n);

	if (n == 0)
		return;
	if (dime_io_conn_send(c->io, p, n) != DIME_OK) {
		/* The client does not read its answers: nothing more can be said in order. */
		c->closing = 1;
		dime_io_conn_close(c->io, 0);
	}
	if (c->pol)
		dime_pfmap_pol_out_done(c->pp, n);
	else
		dime_pfmap_sm_out_done(c->sm, n);
}

/* The socketmap's action for a gateway route: LOCAL and DMIME both go to the gateway. */
static enum dime_send_action
pfsvc_action(enum dime_gw_route r)
{
	switch (r) {
	case DIME_GW_LOCAL:
	case DIME_GW_DMIME: return DIME_SEND_DMIME;
	case DIME_GW_NAKED: return DIME_SEND_NAKED;
	case DIME_GW_REFUSE: return DIME_SEND_REFUSE;
	case DIME_GW_DEFER: return DIME_SEND_DEFER;
	}
	return DIME_SEND_DEFER;
}

/* Answer c's open query with action and why (may be NULL). */
static void
pfsvc_answer(struct pfsvc_conn *c, enum dime_send_action action, const char *why)
{
	int rc;

	if (c->pol) {
		const struct dime_pfmap_pol_query *q = dime_pfmap_pol_query(c->pp);
		struct dime_pfmap_pol_answer a;

		if (q == NULL)
			return;
		dime_pfmap_route_pol(&a, q->state, action, why);
		a.id = q->id;
		rc = dime_pfmap_pol_answer(c->pp, &a);
		sodium_memzero(&a, sizeof(a));
	} else {
		const struct dime_pfmap_sm_query *q = dime_pfmap_sm_query(c->sm);
		struct dime_pfmap_sm_answer a;

		if (q == NULL)
			return;
		/* On failure a is a TEMP with a reason: still the answer to give. */
		if (dime_pfmap_route_sm(&a, &c->svc->route, action, why) != DIME_OK)
			dime_dlog(DIME_DLOG_ERROR, "pfsvc.route", "why=\"bad next hop\"");
		a.id = q->id;
		rc = dime_pfmap_sm_answer(c->sm, &a);
		sodium_memzero(&a, sizeof(a));
	}
	if (rc != DIME_OK)
		dime_dlog(DIME_DLOG_ERROR, "pfsvc.answer", "peer=%s action=%s rc=%d", c->ip,
			  dime_send_action_name(action), rc);
	/* A machine that kept the query open (cannot happen with the ids above) would be asked
	 * again forever: close instead. */
	if (pfsvc_query_open(c) && !c->closing) {
		c->closing = 1;
		dime_io_conn_close(c->io, 0);
	}
}

/* ---- jobs ---- */

static void
pfsvc_job_free(struct pfsvc_job *j)
{
	if (j == NULL)
		return;
	/* addresses: wiped, as the machines wipe theirs */
	if (j->sender != NULL)
		sodium_memzero(j->sender, j->sender_len);
	if (j->rcpt != NULL)
		sodium_memzero(j->rcpt, j->rcpt_len);
	free(j->sender);
	free(j->rcpt);
	dime_pl_msg_job_clear(&j->pj.mj);
	sodium_memzero(&j->v, sizeof(j->v));
	free(j);
}

/* On a worker. */
static void
pfsvc_run(struct dime_pl_pool_job *pj, void *arg)
{
	struct pfsvc_job *j = arg;

	(void)pj;
	memset(&j->v, 0, sizeof(j->v));
	j->rc = j->route(j->route_arg, &j->v, j->sender, j->rcpt, (int64_t)time(NULL));
	/* the verdict's text must be a C string whatever the handler did */
	j->v.text[sizeof(j->v.text) - 1] = 0;
}

static void pfsvc_pump(struct pfsvc_conn *c);

/* On the loop, once per job. */
static void
pfsvc_done(struct dime_pl_pool_job *pj, void *arg)
{
	struct pfsvc_job *j = arg;
	struct pfsvc_conn *c = j->c;

	(void)pj;
	if (c == NULL) {
		/* answered by the deadline, or the connection closed: nothing to say */
		pfsvc_job_free(j);
		return;
	}
	c->job = NULL;
	dime_io_timer_cancel(c->deadline);
	c->deadline = NULL;
	/* (a job that never ran has a zero route: a DEFER too) */
	if (j->rc != DIME_OK)
		pfsvc_answer(c, DIME_SEND_DEFER, "the lookup failed, try again later");
	else
		pfsvc_answer(c, pfsvc_action(j->v.route), j->v.text[0] != 0 ? j->v.text : NULL);
	pfsvc_job_free(j);
	pfsvc_pump(c);
}

/* On the loop: the query took too long. It is answered DEFER now; the job, still queued or
 * running, completes later and is dropped. */
static void
pfsvc_deadline(void *arg)
{
	struct pfsvc_conn *c = arg;
	struct pfsvc_job *j = c->job;

	c->deadline = NULL;
	if (j == NULL)
		return;
	c->job = NULL;
	j->c = NULL;
	dime_pl_pool_cancel(c->svc->env.pool, &j->pj); /* still queued: out; running: goes on */
	dime_dlog(DIME_DLOG_WARNING, "pfsvc.deadline", "peer=%s ms=%u", c->ip,
		  c->svc->env.deadline_ms);
	pfsvc_answer(c, DIME_SEND_DEFER, "the lookup timed out, try again later");
	pfsvc_pump(c);
}

static char *
pfsvc_dup(const char *s, size_t *len)
{
	char *d;

	*len = strlen(s) + 1;
	if ((d = malloc(*len)) != NULL)
		memcpy(d, s, *len);
	return d;
}

/* Start the job for c's open query; a query that cannot start is answered DEFER at once. */
static void
pfsvc_job_start(struct pfsvc_conn *c)
{
	struct dime_pfsvc *s = c->svc;
	struct pfsvc_job *j = calloc(1, sizeof(*j));
	const char *sender = "", *rcpt;
	int rc;

	if (c->pol) {
		const struct dime_pfmap_pol_query *q = dime_pfmap_pol_query(c->pp);

		sender = q->sender;
		rcpt = q->recipient;
	} else {
		rcpt = dime_pfmap_sm_query(c->sm)->key;
	}
	if (j == NULL || (j->sender = pfsvc_dup(sender, &j->sender_len)) == NULL ||
	    (j->rcpt = pfsvc_dup(rcpt, &j->rcpt_len)) == NULL) {
		pfsvc_job_free(j);
		pfsvc_answer(c, DIME_SEND_DEFER, "out of memory, try again later");
		return;
	}
	j->c = c;
	j->route = s->env.route;
	j->route_arg = s->env.route_arg;
	j->pj.run = pfsvc_run;
	j->pj.done = pfsvc_done;
	j->pj.arg = j;
	rc = dime_pl_pool_call(s->env.pool, &j->pj, s->env.loop);
	if (rc != DIME_OK) {
		/* The pool is full or stopping: Postfix retries a TEMP, never waits on us. */
		dime_dlog(DIME_DLOG_WARNING, "pool.full", "peer=%s action=defer", c->ip);
		pfsvc_job_free(j);
		pfsvc_answer(c, DIME_SEND_DEFER, "busy, try again later");
		return;
	}
	c->job = j;
	if (dime_io_timer_add(s->env.loop, &c->deadline, s->env.deadline_ms, pfsvc_deadline, c) !=
	    DIME_OK) {
		c->deadline = NULL; /* no memory for the timer: the job still answers */
		dime_dlog(DIME_DLOG_WARNING, "pfsvc.deadline", "peer=%s why=\"no timer\"", c->ip);
	}
}

/* ---- connections ---- */

static void
pfsvc_conn_free(struct pfsvc_conn *c)
{
	struct dime_pfsvc *s = c->svc;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->n_conns--;
	dime_pfmap_sm_free(c->sm);
	dime_pfmap_pol_free(c->pp);
	dime_conn_held_free(&c->held);
	free(c);
	if (s->draining && s->n_conns == 0 && s->idle != NULL)
		s->idle(s->idle_arg);
}

static void
pfsvc_read_update(struct pfsvc_conn *c)
{
	int want = c->held.len >= DIME_CONN_HELD_PAUSE;

	if (c->closing || c->io == NULL || want == c->paused)
		return;
	c->paused = want;
	dime_io_conn_pause(c->io, want);
}

/* Machine actions to io calls: send, close, start the query's job, feed what is held. */
static void
pfsvc_pump(struct pfsvc_conn *c)
{
	for (;;) {
		unsigned act;
		size_t n;

		if (c->closing)
			return;
		pfsvc_send(c);
		if (c->closing)
			return;
		act = pfsvc_actions(c);
		if (act & DIME_PFMAP_ACT_CLOSE) {
			int err = c->pol ? dime_pfmap_pol_error(c->pp) : dime_pfmap_sm_error(c->sm);

			if (err != DIME_OK)
				dime_dlog(DIME_DLOG_INFO, "pfsvc.close", "peer=%s rc=%d", c->ip,
					  err);
			c->closing = 1;
			dime_io_conn_close(c->io, 1);
			return;
		}
		if (act & DIME_PFMAP_ACT_QUERY) {
			if (c->job == NULL)
				pfsvc_job_start(c);
			if (c->job != NULL) {
				/* Postfix waits for us: no idle timeout while the job runs (the
				 * deadline bounds it). */
				dime_io_conn_set_timeout(c->io, 0);
				pfsvc_read_update(c);
				return;
			}
			continue;
		}
		if (c->held.len == 0)
			break;
		n = pfsvc_feed(c, c->held.p, c->held.len);
		dime_conn_held_drop(&c->held, n);
		if (n == 0 && pfsvc_actions(c) == act)
			break;
	}
	dime_io_conn_set_timeout(c->io, c->svc->env.conf->timeout_cmd_ms);
	pfsvc_read_update(c);
}

static void
pfsvc_on_data(void *ctx, const uint8_t *p, size_t n)
{
	struct pfsvc_conn *c = ctx;

	if (c->closing || n == 0)
		return;
	if (dime_conn_held_add(&c->held, p, n) != DIME_OK) {
		/* Past DIME_CONN_HELD_MAX the peer ignored the pause; or no memory. Neither
		 * protocol has a busy reply (SMTP's 421): close. */
		c->closing = 1;
		dime_io_conn_close(c->io, 0);
		return;
	}
	pfsvc_pump(c);
	pfsvc_read_update(c);
}

static void
pfsvc_on_timeout(void *ctx)
{
	struct pfsvc_conn *c = ctx;

	if (c->closing)
		return;
	/* Neither protocol has a goodbye: an idle client is closed (Postfix reconnects). */
	c->closing = 1;
	dime_io_conn_close(c->io, 0);
}

static void
pfsvc_on_close(void *ctx, int err)
{
	struct pfsvc_conn *c = ctx;

	dime_dlog(DIME_DLOG_DEBUG, "pfsvc.conn.close", "peer=%s err=%d", c->ip, err);
	c->closing = 1;
	c->io = NULL;
	dime_io_timer_cancel(c->deadline);
	c->deadline = NULL;
	if (c->job != NULL) {
		/* The job owns what it reads: it completes alone and is dropped. */
		c->job->c = NULL;
		dime_pl_pool_cancel(c->svc->env.pool, &c->job->pj);
		c->job = NULL;
	}
	pfsvc_conn_free(c);
}

static const struct dime_io_conn_ops pfsvc_conn_ops = {
    .on_data = pfsvc_on_data,
    .on_timeout = pfsvc_on_timeout,
    .on_close = pfsvc_on_close,
};

static size_t
pfsvc_count_ip(const struct dime_pfsvc *s, const char *ip)
{
	size_t n = 0;

	for (const struct pfsvc_conn *c = s->conns; c != NULL; c = c->next)
		n += strcmp(c->ip, ip) == 0;
	return n;
}

static void
pfsvc_on_accept(void *ctx, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
	struct dime_conn_listener *l = ctx;
	struct dime_pfsvc *s = l->owner;
	const struct dime_dconf *cf = s->env.conf;
	struct pfsvc_conn *c = calloc(1, sizeof(*c));
	int rc;

	(void)peer_len;
	if (c == NULL || s->draining) {
		/* draining: an accept the listener's close did not cancel in time */
		free(c);
		close(fd);
		return;
	}
	c->svc = s;
	c->pol = l->mode == DIME_DCONF_POLICY;
	if (c->pol) {
		struct dime_pfmap_pol_conf pc = {.all_states = 0, .max_requests = 0};

		rc = dime_pfmap_pol_new(&c->pp, &pc);
	} else {
		struct dime_pfmap_sm_conf sc = {.map_name = DIME_PFSVC_MAP_NAME, .max_requests = 0};

		rc = dime_pfmap_sm_new(&c->sm, &sc);
	}
	if (rc != DIME_OK) {
		free(c);
		close(fd);
		return;
	}
	dime_conn_peer_ip(c->ip, peer);
	/* Postfix opens few connections and keeps them; a flood is refused by closing (neither
	 * protocol has a busy reply: the client reads the EOF as a temporary error). */
	if ((cf->max_conns != 0 && s->n_conns >= cf->max_conns) ||
	    (cf->max_conns_per_ip != 0 && pfsvc_count_ip(s, c->ip) >= cf->max_conns_per_ip) ||
	    dime_io_conn_new(s->env.loop, &c->io, fd, &pfsvc_conn_ops, c) != DIME_OK) {
		dime_dlog(DIME_DLOG_WARNING, "pfsvc.refused", "peer=%s port=%u", c->ip, l->port);
		dime_pfmap_sm_free(c->sm);
		dime_pfmap_pol_free(c->pp);
		free(c);
		close(fd);
		return;
	}
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	dime_dlog(DIME_DLOG_DEBUG, "pfsvc.conn.open", "peer=%s port=%u mode=%s", c->ip, l->port,
		  dime_dconf_mode_name(l->mode));
	dime_io_conn_set_timeout(c->io, cf->timeout_cmd_ms);
}

/* The default next hop: the first smtp listener, reached on loopback when it listens on a
 * wildcard address. Returns: DIME_OK, DIME_E_INVALID (why). */
static int
pfsvc_nexthop(struct dime_pfsvc *s, char *why, size_t why_cap)
{
	const struct dime_dconf *cf = s->env.conf;

	if (cf->socketmap_nexthop[0] != 0) {
		if (strlen(cf->socketmap_nexthop) >= sizeof(s->nexthop)) {
			snprintf(why, why_cap, "socketmap_nexthop is too long");
			return DIME_E_INVALID;
		}
		memcpy(s->nexthop, cf->socketmap_nexthop, strlen(cf->socketmap_nexthop) + 1);
	} else {
		for (size_t i = 0; i < cf->n_listen && i < DIME_DCONF_MAX_LISTEN; i++) {
			const char *h = cf->listen[i].host;
			unsigned port = cf->listen[i].port;

			if (cf->listen[i].mode != DIME_DCONF_SMTP)
				continue;
			if (s->env.ports != NULL && i < s->env.n_ports && s->env.ports[i] != 0)
				port = s->env.ports[i];
			if (port == 0) {
				snprintf(why, why_cap,
					 "the socketmap's next hop: the smtp listener %s has no "
					 "port yet; set socketmap_nexthop",
					 h);
				return DIME_E_INVALID;
			}
			if (strcmp(h, "0.0.0.0") == 0 || h[0] == 0)
				h = "127.0.0.1";
			else if (strcmp(h, "::") == 0)
				h = "::1";
			snprintf(s->nexthop, sizeof(s->nexthop), "dime:[%s]:%u", h, port);
			break;
		}
		if (s->nexthop[0] == 0) {
			snprintf(why, why_cap,
				 "a socketmap listener needs socketmap_nexthop or an smtp listener "
				 "(where the DIME-enabled recipients go)");
			return DIME_E_INVALID;
		}
	}
	/* A next hop pfmap would refuse is a configuration error, found now, not per query. */
	{
		struct dime_pfmap_sm_answer a;

		if (dime_pfmap_route_sm(&a, &s->route, DIME_SEND_DMIME, NULL) != DIME_OK) {
			snprintf(why, why_cap,
				 "socketmap_nexthop \"%s\": not printable ASCII without spaces",
				 s->nexthop);
			return DIME_E_INVALID;
		}
	}
	return DIME_OK;
}

int
dime_pfsvc_new(struct dime_pfsvc **out, const struct dime_pfsvc_env *env, char *why, size_t why_cap)
{
	struct dime_pfsvc *s;
	const struct dime_dconf *cf = env->conf;
	int need_hop = 0, rc;

	*out = NULL;
	if (why_cap > 0)
		why[0] = 0;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return DIME_E_NOMEM;
	s->env = *env;
	if (s->env.deadline_ms == 0)
		s->env.deadline_ms = DIME_PFSVC_DEADLINE_MS;
	s->route.nexthop = s->nexthop;
	s->route.refuse = DIME_PFMAP_REFUSE_ERROR;
	for (size_t i = 0; i < cf->n_listen && i < DIME_DCONF_MAX_LISTEN; i++) {
		if (cf->listen[i].mode == DIME_DCONF_SOCKETMAP)
			need_hop = 1;
		if (cf->listen[i].mode == DIME_DCONF_SOCKETMAP ||
		    cf->listen[i].mode == DIME_DCONF_POLICY) {
			if (env->route == NULL) {
				snprintf(why, why_cap,
					 "listener %s:%u (%s): no gateway route handler in this "
					 "build",
					 cf->listen[i].host, cf->listen[i].port,
					 dime_dconf_mode_name(cf->listen[i].mode));
				dime_pfsvc_free(s);
				return DIME_E_INVALID;
			}
		}
	}
	if (need_hop && (rc = pfsvc_nexthop(s, why, why_cap)) != DIME_OK) {
		dime_pfsvc_free(s);
		return rc;
	}
	if ((rc = dime_conn_bind(s->ls, &s->n_ls, cf, env->loop,
				 1u << DIME_DCONF_SOCKETMAP | 1u << DIME_DCONF_POLICY,
				 pfsvc_on_accept, s, why, why_cap)) != DIME_OK) {
		dime_pfsvc_free(s);
		return rc;
	}
	*out = s;
	return DIME_OK;
}

size_t
dime_pfsvc_ports(const struct dime_pfsvc *s, unsigned *ports, size_t cap)
{
	return dime_conn_ports(s->ls, s->n_ls, ports, cap);
}

const char *
dime_pfsvc_nexthop(const struct dime_pfsvc *s)
{
	return s->nexthop;
}

size_t
dime_pfsvc_n_conns(const struct dime_pfsvc *s)
{
	return s->n_conns;
}

void
dime_pfsvc_drain(struct dime_pfsvc *s, void (*idle)(void *arg), void *arg)
{
	struct pfsvc_conn *c, *next;

	s->draining = 1;
	s->idle = idle;
	s->idle_arg = arg;
	dime_conn_unbind(s->ls, s->n_ls);
	for (c = s->conns; c != NULL; c = next) {
		next = c->next;
		if (c->closing)
			continue;
		pfsvc_drain_machine(c);
		pfsvc_pump(c);
	}
	if (s->n_conns == 0 && idle != NULL)
		idle(arg);
}

void
dime_pfsvc_free(struct dime_pfsvc *s)
{
	if (s == NULL)
		return;
	dime_conn_unbind(s->ls, s->n_ls);
	free(s);
}

/* dimed's SMTP listener glue: the smtp and lmtp listeners for the MTA, one ESMTP session per
 * connection, RCPT and DATA answered by the handler on the worker pool. Listeners, peer address
 * and held input come from conn.c, shared with server.c; the pump, the back-pressure wait list,
 * timeouts, drain and caps follow server.c's, over the SMTP session's types. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dime/dconf.h"
#include "dime/dlog.h"
#include "dime/loop.h"
#include "dime/pool.h"
#include "dime/smtp_session.h"
#include "dime/smtpd.h"
#include "dime/tlsctx.h"

#include "conn_int.h"

#define SMD_WAIT_TICK 10u    /* ms between retries of jobs the full pool refused */
#define SMD_WAIT_MAX  30000u /* ms a refused job may wait for room, then 451 */

struct smd_conn;

/* One RCPT or DATA query in flight. The session (whose strings and message the query borrows)
 * lives until the job completes: a connection that dies meanwhile is freed by the completion. */
struct smd_job {
	struct dime_pl_pool_job pj;
	struct smd_conn *c;
	const struct dime_smtp_query *q;
	int ran;
	struct dime_gw_verdict *v; /* RCPT: one; DATA: one per recipient */
	size_t n_v;
};

struct smd_conn {
	struct dime_smtpd *srv;
	struct dime_io_conn *io;
	struct dime_smtp_sess *sess;
	struct smd_conn *prev, *next;
	struct smd_job *job;
	struct dime_tlsctx *tlsset; /* held from STARTTLS until the connection ends */
	struct dime_conn_held held;
	struct dime_io_timer *line_timer; /* the line deadline (smd_line_arm), NULL: none */
	int lmtp, closing, dead, paused;
	int waiting; /* the job waits for room in the pool (reading stopped) */
	uint64_t wait_since;
	struct smd_conn *wnext;
	char ip[DIME_CONN_IP_CAP];
};

struct dime_smtpd {
	struct dime_smtpd_env env;
	struct dime_conn_listener ls[DIME_DCONF_MAX_LISTEN];
	size_t n_ls;
	struct smd_conn *conns;
	size_t n_conns;
	int draining;
	void (*idle)(void *arg);
	void *idle_arg;
	struct smd_conn *w_head, *w_tail;
	struct dime_io_timer *w_timer;
};

int
dime_smtpd_wanted(const struct dime_dconf *c)
{
	for (size_t i = 0; i < c->n_listen && i < DIME_DCONF_MAX_LISTEN; i++)
		if (c->listen[i].mode == DIME_DCONF_SMTP || c->listen[i].mode == DIME_DCONF_LMTP_IN)
			return 1;
	return 0;
}

/* ---- verdicts ---- */

/* The handler's verdict as a session answer (the strings borrow v). */
static void
smd_answer_from(struct dime_smtp_answer *a, const struct dime_gw_verdict *v)
{
	int cls = v->code / 100;

	a->status = NULL;
	a->text = v->text[0] != '\0' ? v->text : NULL;
	if (cls == 2)
		a->verdict = DIME_SMTP_V_OK;
	else if (v->code == 452)
		a->verdict = DIME_SMTP_V_NOSPACE;
	else if (cls == 5 && strncmp(v->enh, "5.7.", 4) == 0)
		a->verdict = DIME_SMTP_V_POLICY;
	else if (cls == 5)
		a->verdict = DIME_SMTP_V_REJECT;
	else
		a->verdict = DIME_SMTP_V_TEMPFAIL; /* 4xx, or a code that makes no sense */
	if ((cls == 2 || cls == 4 || cls == 5) && v->enh[0] == (char)('0' + cls))
		a->status = v->enh;
}

/* Answer the open query with a; a status or text the session refuses falls back to its
 * defaults, so the query is always answered. */
static void
smd_answer(struct smd_conn *c, struct dime_smtp_answer *a)
{
	const struct dime_smtp_query *q = dime_smtp_sess_query(c->sess);

	if (q == NULL)
		return;
	a->id = q->id;
	if (dime_smtp_sess_answer(c->sess, a) == DIME_OK)
		return;
	a->status = NULL;
	a->text = NULL;
	if (dime_smtp_sess_answer(c->sess, a) != DIME_OK)
		dime_dlog(DIME_DLOG_ERROR, "smtp.answer", "peer=%s verdict=%d rc=invalid", c->ip,
			  (int)a->verdict);
}

static void
smd_tempfail(struct smd_conn *c)
{
	struct dime_smtp_answer a = {.verdict = DIME_SMTP_V_TEMPFAIL};
	const struct dime_smtp_query *q = dime_smtp_sess_query(c->sess);
	size_t n = q != NULL ? q->n_rcpts + 1 : 0;

	/* LMTP DATA takes one answer per recipient (bounded: a refused answer cannot loop) */
	while (n-- > 0 && dime_smtp_sess_query(c->sess) != NULL)
		smd_answer(c, &a);
}

/* ---- connections ---- */

static void smd_pump(struct smd_conn *c);

/* ---- the line deadline ----
 * timeout_cmd and timeout_data count from the end of the last complete line received (or from
 * the reply the peer waited for), not from its last byte: the io idle timer is re-armed by every
 * packet, so a peer trickling one byte at a time, or TLS records without data, would hold the
 * session for ever (ECOSYSTEM P17; the DIME spec's timeouts count from the last complete line).
 * The same timer bounds a STARTTLS handshake as a whole (timeout_tls), however slowly its
 * records trickle in (ECOSYSTEM P18). The idle timer stays as the bound for an idle peer. */

/* A timer expired: 421 and a close; during the TLS handshake a close without a word (nothing
 * may follow the 220 in plaintext, RFC 3207). */
static void
smd_expire(struct smd_conn *c, int line)
{
	int tls = (dime_smtp_sess_actions(c->sess) & DIME_SMTP_ACT_TLS) != 0;

	dime_dlog(DIME_DLOG_INFO, "conn.timeout", "peer=%s line=%d tls=%d", c->ip, line, tls);
	if (tls) {
		c->closing = 1;
		dime_io_conn_close(c->io, 0);
		return;
	}
	dime_smtp_sess_timeout(c->sess);
	smd_pump(c);
}

static void
smd_line_fire(void *arg)
{
	struct smd_conn *c = arg;

	c->line_timer = NULL;
	if (!c->closing)
		smd_expire(c, 1);
}

static void
smd_line_stop(struct smd_conn *c)
{
	dime_conn_deadline_stop(&c->line_timer);
}

static void
smd_line_arm(struct smd_conn *c, unsigned ms)
{
	if (!c->closing)
		dime_conn_deadline_arm(&c->line_timer, c->srv->env.loop, ms, smd_line_fire, c);
}

static void
smd_conn_free(struct smd_conn *c)
{
	struct dime_smtpd *s = c->srv;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->n_conns--;
	smd_line_stop(c);
	dime_smtp_sess_free(c->sess);
	dime_tlsctx_free(c->tlsset);
	dime_conn_held_free(&c->held);
	free(c);
	if (s->draining && s->n_conns == 0 && s->idle != NULL)
		s->idle(s->idle_arg);
}

static void
smd_read_update(struct smd_conn *c)
{
	int want = c->waiting || c->held.len >= DIME_CONN_HELD_PAUSE;

	if (c->closing || c->io == NULL || want == c->paused)
		return;
	c->paused = want;
	dime_io_conn_pause(c->io, want);
}

static void
smd_job_free(struct smd_job *j)
{
	if (j == NULL)
		return;
	free(j->v);
	free(j);
}

static void
smd_send(struct smd_conn *c)
{
	size_t n = 0;
	const uint8_t *p = dime_smtp_sess_out(c->sess, &n);

	if (n == 0)
		return;
	if (dime_io_conn_send(c->io, p, n) != DIME_OK) {
		c->closing = 1;
		dime_io_conn_close(c->io, 0);
	}
	dime_smtp_sess_out_done(c->sess, n);
}

/* ---- jobs ---- */

/* On a pool worker. */
static void
smd_run(struct dime_pl_pool_job *pj, void *arg)
{
	struct smd_job *j = arg;
	const struct dime_smtpd_handler *h = &j->c->srv->env.handler;
	const struct dime_smtp_query *q = j->q;
	int64_t now = (int64_t)time(NULL);

	(void)pj;
	j->ran = 1;
	for (size_t i = 0; i < j->n_v; i++) {
		struct dime_gw_verdict *v = &j->v[i];
		int rc = q->kind == DIME_SMTP_Q_RCPT
			     ? h->rcpt(h->arg, v, q->mail->addr, q->rcpt, now)
			     : h->message(h->arg, v, q->mail->addr, q->rcpts[i], q->data,
					  q->data_len, now);

		v->enh[sizeof(v->enh) - 1] = '\0';
		v->text[sizeof(v->text) - 1] = '\0';
		if (rc != DIME_OK) {
			memset(v, 0, sizeof(*v));
			v->code = 451;
		}
	}
}

static void smd_wait_retry(struct dime_smtpd *s);

/* The verdicts to replies, on the loop. */
static void
smd_job_answer(struct smd_conn *c, struct smd_job *j)
{
	const struct dime_smtp_query *q = dime_smtp_sess_query(c->sess);
	struct dime_smtp_answer a;
	size_t pick = 0;

	c->job = NULL;
	if (q == NULL || !j->ran) {
		smd_tempfail(c);
	} else if (q->kind == DIME_SMTP_Q_RCPT) {
		memset(&a, 0, sizeof(a));
		smd_answer_from(&a, &j->v[0]);
		smd_answer(c, &a);
		dime_dlog(DIME_DLOG_INFO, "smtp.rcpt", "peer=%s code=%d", c->ip,
			  dime_smtp_sess_last_code(c->sess));
	} else if (c->lmtp) {
		size_t len = q->data_len; /* q dies with the last answer */

		for (size_t i = 0; i < j->n_v && dime_smtp_sess_query(c->sess) != NULL; i++) {
			memset(&a, 0, sizeof(a));
			smd_answer_from(&a, &j->v[i]);
			smd_answer(c, &a);
		}
		smd_tempfail(c); /* nothing left open, normally */
		dime_dlog(DIME_DLOG_INFO, "smtp.data", "peer=%s lmtp=1 rcpts=%zu len=%zu", c->ip,
			  j->n_v, len);
	} else {
		/* One reply for all: 250 only if all got 250, else the first 4xx, else the
		 * first 5xx (the duplicate risk of mixed outcomes: smtpd.h). */
		int mixed = 0, any_ok = 0;
		size_t n_ok = 0, first_4 = j->n_v, first_5 = j->n_v;
		size_t len = q->data_len;

		for (size_t i = 0; i < j->n_v; i++) {
			int cls = j->v[i].code / 100;

			if (cls == 2)
				n_ok++;
			else if (cls == 5 && first_5 == j->n_v)
				first_5 = i;
			else if (cls != 5 && first_4 == j->n_v)
				first_4 = i;
		}
		any_ok = n_ok > 0;
		pick = first_4 < j->n_v ? first_4 : first_5 < j->n_v ? first_5 : 0;
		mixed = any_ok && n_ok < j->n_v;
		memset(&a, 0, sizeof(a));
		if (j->n_v == 0)
			a.verdict = DIME_SMTP_V_TEMPFAIL;
		else
			smd_answer_from(&a, &j->v[pick]);
		smd_answer(c, &a);
		dime_dlog(mixed ? DIME_DLOG_WARNING : DIME_DLOG_INFO, "smtp.data",
			  "peer=%s rcpts=%zu ok=%zu code=%d len=%zu%s", c->ip, j->n_v, n_ok,
			  dime_smtp_sess_last_code(c->sess), len,
			  mixed ? " mixed=1 risk=duplicate" : "");
	}
	smd_job_free(j);
	smd_pump(c);
}

static void
smd_job_done(struct dime_pl_pool_job *pj, void *arg)
{
	struct smd_job *j = arg;
	struct smd_conn *c = j->c;
	struct dime_smtpd *s = c->srv;

	(void)pj;
	if (c->dead) {
		c->job = NULL;
		smd_job_free(j);
		smd_conn_free(c);
	} else {
		smd_job_answer(c, j);
	}
	smd_wait_retry(s);
}

static int
smd_job_queue(struct smd_job *j)
{
	struct dime_smtpd *s = j->c->srv;

	j->pj.run = smd_run;
	j->pj.done = smd_job_done;
	j->pj.arg = j;
	return dime_pl_pool_call(s->env.pool, &j->pj, s->env.loop);
}

static void
smd_wait_tick(void *arg)
{
	struct dime_smtpd *s = arg;

	s->w_timer = NULL;
	smd_wait_retry(s);
}

static void
smd_wait_arm(struct dime_smtpd *s)
{
	if (s->w_head != NULL && s->w_timer == NULL &&
	    dime_io_timer_add(s->env.loop, &s->w_timer, SMD_WAIT_TICK, smd_wait_tick, s) != DIME_OK)
		s->w_timer = NULL; /* the next completion retries */
}

/* c's job was refused by the full pool: it waits, c reads nothing more (STYLE.md section 6). */
static void
smd_wait_add(struct smd_conn *c)
{
	struct dime_smtpd *s = c->srv;

	if (!c->waiting) {
		c->waiting = 1;
		c->wait_since = dime_io_loop_now_ms(s->env.loop);
		c->wnext = NULL;
		if (s->w_tail != NULL)
			s->w_tail->wnext = c;
		else
			s->w_head = c;
		s->w_tail = c;
		dime_dlog(DIME_DLOG_WARNING, "pool.full", "peer=%s action=pause", c->ip);
	}
	smd_read_update(c);
	smd_wait_arm(s);
}

static void
smd_wait_remove(struct smd_conn *c)
{
	struct dime_smtpd *s = c->srv;
	struct smd_conn **pp = &s->w_head, *prev = NULL;

	while (*pp != c) {
		prev = *pp;
		pp = &(*pp)->wnext;
	}
	*pp = c->wnext;
	if (s->w_tail == c)
		s->w_tail = prev;
	c->wnext = NULL;
	c->waiting = 0;
}

/* Queue the waiting jobs, oldest first, until the pool refuses one. A job that waited
 * SMD_WAIT_MAX gets 451. */
static void
smd_wait_retry(struct dime_smtpd *s)
{
	uint64_t now = dime_io_loop_now_ms(s->env.loop);
	struct smd_conn *c;

	while ((c = s->w_head) != NULL) {
		struct smd_job *j = c->job;
		int rc = smd_job_queue(j);

		if (rc == DIME_E_AGAIN && now - c->wait_since < SMD_WAIT_MAX)
			break;
		smd_wait_remove(c);
		if (rc == DIME_OK) {
			smd_read_update(c);
			continue;
		}
		smd_job_answer(c, j); /* not run: 451 */
		smd_read_update(c);
	}
	smd_wait_arm(s);
}

/* MAIL on the loop; RCPT and DATA to the pool. */
static void
smd_query(struct smd_conn *c, const struct dime_smtp_query *q)
{
	struct smd_job *j;
	int rc;

	if (q->kind == DIME_SMTP_Q_MAIL) {
		struct dime_smtp_answer a = {.verdict = c->srv->draining ? DIME_SMTP_V_BUSY
									 : DIME_SMTP_V_OK};

		smd_answer(c, &a);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (j != NULL) {
		j->n_v = q->kind == DIME_SMTP_Q_RCPT ? 1 : q->n_rcpts;
		j->v = calloc(j->n_v ? j->n_v : 1, sizeof(*j->v));
	}
	if (j == NULL || j->v == NULL) {
		smd_job_free(j);
		smd_tempfail(c);
		return;
	}
	j->c = c;
	j->q = q;
	c->job = j;
	rc = smd_job_queue(j);
	if (rc == DIME_E_AGAIN) {
		smd_wait_add(c);
	} else if (rc != DIME_OK) {
		c->job = NULL;
		smd_job_free(j);
		smd_tempfail(c);
	}
}

/* ---- the pump: session actions to io calls ---- */

static void
smd_pump(struct smd_conn *c)
{
	const struct dime_dconf *cf = c->srv->env.conf;
	unsigned ms;

	for (;;) {
		unsigned act;
		size_t n;

		if (c->closing)
			return;
		smd_send(c);
		if (c->closing)
			return;
		act = dime_smtp_sess_actions(c->sess);
		if (act & DIME_SMTP_ACT_CLOSE) {
			c->closing = 1;
			dime_io_conn_close(c->io, 1);
			return;
		}
		if (act & DIME_SMTP_ACT_TLS) {
			/* The 220 went out above; plaintext after STARTTLS is dropped. */
			SSL_CTX *ctx;

			c->held.len = 0;
			smd_line_stop(c); /* the whole handshake has timeout_tls, then a new line */
			smd_line_arm(c, cf->timeout_tls_ms);
			dime_tlsctx_free(c->tlsset);
			c->tlsset = dime_tlsctx_ref(c->srv->env.tls);
			ctx = c->tlsset != NULL ? dime_tlsctx_smtp_for(c->tlsset, NULL) : NULL;
			dime_io_conn_set_timeout(c->io, cf->timeout_tls_ms);
			if (ctx != NULL && dime_io_conn_start_tls(c->io, ctx) == DIME_OK)
				return;
			dime_smtp_sess_tls_done(c->sess, 0);
			continue;
		}
		if (act & DIME_SMTP_ACT_QUERY) {
			if (c->job == NULL)
				smd_query(c, dime_smtp_sess_query(c->sess));
			if (c->job != NULL) {
				/* The MTA waits for us: no idle timeout while the handler works;
				 * the next line's deadline starts with our reply. */
				smd_line_stop(c);
				dime_io_conn_set_timeout(c->io, 0);
				return;
			}
			continue;
		}
		if (c->held.len == 0)
			break;
		n = dime_smtp_sess_feed(c->sess, c->held.p, c->held.len);
		if (n > 0 && memchr(c->held.p, '\n', n) != NULL)
			smd_line_stop(c); /* a line ended: the next one gets the whole timeout */
		dime_conn_held_drop(&c->held, n);
		if (n == 0 && dime_smtp_sess_actions(c->sess) == act)
			break;
	}
	ms = (dime_smtp_sess_actions(c->sess) & DIME_SMTP_ACT_DATA) ? cf->timeout_data_ms
								    : cf->timeout_cmd_ms;
	dime_io_conn_set_timeout(c->io, ms);
	smd_line_arm(c, ms);
	smd_read_update(c);
}

static void
smd_on_data(void *ctx, const uint8_t *p, size_t n)
{
	struct smd_conn *c = ctx;
	int rc;

	if (c->closing || n == 0)
		return;
	rc = dime_conn_held_add(&c->held, p, n);
	if (rc == DIME_E_LIMIT) {
		dime_smtp_sess_timeout(c->sess); /* 421 and close: it ignored the pause */
		smd_pump(c);
		return;
	}
	if (rc != DIME_OK) {
		c->closing = 1;
		dime_io_conn_close(c->io, 0);
		return;
	}
	if (c->job == NULL)
		smd_pump(c);
	smd_read_update(c);
}

static void
smd_on_tls(void *ctx, int ok)
{
	struct smd_conn *c = ctx;

	if (c->closing)
		return;
	dime_dlog(DIME_DLOG_INFO, "smtp.tls", "peer=%s ok=%d", c->ip, ok);
	smd_line_stop(c); /* the handshake's deadline */
	dime_smtp_sess_tls_done(c->sess, ok);
	smd_pump(c);
}

static void
smd_on_timeout(void *ctx)
{
	struct smd_conn *c = ctx;

	if (!c->closing)
		smd_expire(c, 0);
}

static void
smd_on_close(void *ctx, int err)
{
	struct smd_conn *c = ctx;

	dime_dlog(DIME_DLOG_INFO, "conn.close", "peer=%s err=%d", c->ip, err);
	smd_line_stop(c);
	c->dead = 1;
	c->closing = 1;
	c->io = NULL;
	if (c->waiting) {
		smd_wait_remove(c);
		smd_job_free(c->job);
		c->job = NULL;
	}
	if (c->job != NULL) {
		/* The completion frees the connection (the job borrows its session). */
		dime_pl_pool_cancel(c->srv->env.pool, &c->job->pj);
		return;
	}
	smd_conn_free(c);
}

static const struct dime_io_conn_ops smd_conn_ops = {
    .on_data = smd_on_data,
    .on_tls = smd_on_tls,
    .on_timeout = smd_on_timeout,
    .on_close = smd_on_close,
};

static void
smd_on_accept(void *ctx, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
	struct dime_conn_listener *l = ctx;
	struct dime_smtpd *s = l->owner;
	const struct dime_dconf *cf = s->env.conf;
	int lmtp = l->mode == DIME_DCONF_LMTP_IN;
	/* The MTA is the only client: no greeting pause, early talk held (it never does), no
	 * command cap (max_cmds would cut its cached connections into deferrals). */
	struct dime_smtp_sess_conf sc = {
	    .hostname = cf->hostname,
	    .max_message = cf->max_message,
	    .max_rcpts = cf->smtp_max_rcpts,
	    .max_cmds = 0, /* the MTA reuses connections: no per-session cap */
	    .tls_available = !lmtp && s->env.tls != NULL,
	    .bare_lf =
		cf->smtp_bare_lf_reject ? DIME_SMTP_BARE_LF_REJECT : DIME_SMTP_BARE_LF_NORMALIZE,
	    .lmtp = lmtp,
	};
	struct smd_conn *c = calloc(1, sizeof(*c));
	int over;

	(void)peer_len;
	if (c == NULL || dime_smtp_sess_new(&c->sess, &sc) != DIME_OK) {
		dime_dlog(DIME_DLOG_ERROR, "conn.open", "port=%u why=session", l->port);
		free(c);
		close(fd);
		return;
	}
	dime_conn_peer_ip(c->ip, peer);
	/* max_conns only: every connection comes from the MTA's address, where a per-IP cap
	 * would just be a lower max_conns that turns its concurrency into deferrals. */
	over = cf->max_conns != 0 && s->n_conns >= cf->max_conns;
	c->srv = s;
	c->lmtp = lmtp;
	if (dime_io_conn_new(s->env.loop, &c->io, fd, &smd_conn_ops, c) != DIME_OK) {
		dime_smtp_sess_free(c->sess);
		free(c);
		close(fd);
		return;
	}
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	dime_dlog(DIME_DLOG_INFO, "conn.open", "peer=%s port=%u mode=%s over_cap=%d", c->ip,
		  l->port, lmtp ? "lmtp" : "smtp", over);
	if (over) {
		static const char busy[] = "421 4.7.0 Too many connections, closing\r\n";

		c->closing = 1;
		if (dime_io_conn_send(c->io, busy, sizeof(busy) - 1) != DIME_OK)
			dime_dlog(DIME_DLOG_DEBUG, "conn.send", "peer=%s rc=fail", c->ip);
		dime_io_conn_close(c->io, 1);
		return;
	}
	dime_smtp_sess_start(c->sess);
	smd_pump(c);
}

int
dime_smtpd_new(struct dime_smtpd **out, const struct dime_smtpd_env *env, char *why, size_t why_cap)
{
	struct dime_smtpd *s;
	const struct dime_dconf *cf = env->conf;
	int rc;

	*out = NULL;
	if (why_cap > 0)
		why[0] = '\0';
	if (dime_smtpd_wanted(cf) && (env->handler.rcpt == NULL || env->handler.message == NULL)) {
		snprintf(why, why_cap,
			 "an smtp/lmtp listener is configured but no gateway handler is "
			 "available (see dimed_gw_handler in daemon/main.c)");
		return DIME_E_INVALID;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return DIME_E_NOMEM;
	s->env = *env;
	dime_tlsctx_ref(s->env.tls);
	rc = dime_conn_bind(s->ls, &s->n_ls, cf, env->loop,
			    (1u << DIME_DCONF_SMTP) | (1u << DIME_DCONF_LMTP_IN), smd_on_accept, s,
			    why, why_cap);
	if (rc != DIME_OK) {
		dime_smtpd_free(s);
		return rc;
	}
	*out = s;
	return DIME_OK;
}

size_t
dime_smtpd_ports(const struct dime_smtpd *s, unsigned *ports, size_t cap)
{
	return dime_conn_ports(s->ls, s->n_ls, ports, cap);
}

void
dime_smtpd_set_tls(struct dime_smtpd *s, struct dime_tlsctx *tls)
{
	dime_tlsctx_ref(tls);
	dime_tlsctx_free(s->env.tls);
	s->env.tls = tls;
}

size_t
dime_smtpd_n_conns(const struct dime_smtpd *s)
{
	return s->n_conns;
}

void
dime_smtpd_drain(struct dime_smtpd *s, void (*idle)(void *arg), void *arg)
{
	struct smd_conn *c, *next;

	s->draining = 1;
	s->idle = idle;
	s->idle_arg = arg;
	dime_conn_unbind(s->ls, s->n_ls);
	for (c = s->conns; c != NULL; c = next) {
		next = c->next;
		if (c->closing)
			continue;
		dime_smtp_sess_drain(c->sess);
		smd_pump(c);
	}
	if (s->n_conns == 0 && idle != NULL)
		idle(arg);
}

void
dime_smtpd_free(struct dime_smtpd *s)
{
	if (s == NULL)
		return;
	dime_conn_unbind(s->ls, s->n_ls);
	dime_io_timer_cancel(s->w_timer);
	dime_tlsctx_free(s->env.tls);
	free(s);
}

/* DNS lookups (dime/dns.h): libunbound with validation, driven by one resolver thread that
 * waits on unbound's fd and posts each answer to the asking loop; or a static file. */

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <unbound.h>

#include "dime/dns.h"
#include "dime/loop.h"

#define DNS_TIMEOUT_DEFAULT_MS 10000u
#define DNS_NAME_MAX	       253u
#define DNS_STATIC_LINE_MAX    8192u

/* An answer owned by the module: one allocation for the arrays, one per record. */
struct dns_result {
	struct dime_dns_answer a;
	uint8_t **rr;
	size_t *rr_len;
	char *why;
	char name[DNS_NAME_MAX + 1];
};

struct dime_dns_query {
	struct dime_dns *d;
	struct dime_io_loop *loop; /* NULL: a blocking caller waits on cv */
	dime_dns_fn fn;
	void *arg;
	atomic_int cancelled;
	int async_id;
	int in_unbound;
	uint64_t deadline_ms;
	struct dime_dns_query *prev, *next; /* d->pending, under d->mu */
	int rc;
	struct dns_result *res;
	char name[DNS_NAME_MAX + 1];
	uint16_t type;
	/* blocking callers */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
};

struct static_rr {
	char name[DNS_NAME_MAX + 1];
	uint16_t type;
	uint32_t ttl;
	uint8_t *rdata;
	size_t len;
};

struct dime_dns {
	struct ub_ctx *ub; /* NULL in static mode */
	struct static_rr *st;
	size_t n_st;
	unsigned timeout_ms;
	pthread_t thread;
	int thread_ok;
	int efd; /* wakes the thread: new query (deadline) or stop */
	atomic_int stop;
	pthread_mutex_t mu; /* pending list */
	struct dime_dns_query *pending;
};

static uint64_t
dns_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

const char *
dime_dns_sec_name(enum dime_dns_sec s)
{
	switch (s) {
	case DIME_DNS_SECURE: return "secure";
	case DIME_DNS_BOGUS: return "bogus";
	case DIME_DNS_CONFIGURED: return "configured";
	case DIME_DNS_INSECURE: break;
	}
	return "insecure";
}

static void dns_why(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
dns_why(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || cap == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
}

/* Wake the resolver thread. An eventfd write fails only when the counter would overflow,
 * and then the thread is awake already. */
static void
dns_wake(struct dime_dns *d)
{
	uint64_t one = 1;
	ssize_t n = write(d->efd, &one, sizeof(one));

	(void)n;
}

static int
dns_name_ok(const char *name)
{
	size_t len = name != NULL ? strlen(name) : 0;

	if (len == 0 || len > DNS_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] <= ' ' || name[i] == 0x7f)
			return 0;
	return 1;
}

static void
dns_result_free(struct dns_result *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->a.n; i++)
		free(r->rr[i]);
	free(r->rr);
	free(r->rr_len);
	free(r->why);
	free(r);
}

/* A result of n records (filled by the caller), or NULL. */
static struct dns_result *
dns_result_new(const char *name, uint16_t type, size_t n)
{
	struct dns_result *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->a.name = r->name;
	r->a.type = type;
	r->a.why_bogus = "";
	if (n > 0 && ((r->rr = calloc(n, sizeof(*r->rr))) == NULL ||
		      (r->rr_len = calloc(n, sizeof(*r->rr_len))) == NULL)) {
		dns_result_free(r);
		return NULL;
	}
	return r;
}

/* Copy one record's rdata into r (records are added in order). */
static int
dns_result_add(struct dns_result *r, const void *p, size_t len)
{
	uint8_t *c = malloc(len > 0 ? len : 1);

	if (c == NULL)
		return DIME_E_NOMEM;
	if (len > 0)
		memcpy(c, p, len);
	r->rr[r->a.n] = c;
	r->rr_len[r->a.n] = len;
	r->a.n++;
	r->a.rr = (const uint8_t *const *)r->rr;
	r->a.rr_len = r->rr_len;
	return DIME_OK;
}

/* ---- static mode ---- */

/* Parse `"str" "str" ...` into TXT rdata. Returns: DIME_OK or DIME_E_MALFORMED. */
static int
static_txt(uint8_t *out, size_t cap, size_t *len, const char *p)
{
	size_t o = 0;

	*len = 0;
	for (;;) {
		size_t at;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == 0 || *p == '\n' || *p == '\r')
			break;
		if (*p++ != '"' || o >= cap)
			return DIME_E_MALFORMED;
		at = o++;
		while (*p != '"') {
			if (*p == 0)
				return DIME_E_MALFORMED;
			if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
				p++;
			if (o >= cap || o - at - 1 >= 255)
				return DIME_E_MALFORMED;
			out[o++] = (uint8_t)*p++;
		}
		p++;
		out[at] = (uint8_t)(o - at - 1);
	}
	if (o == 0)
		return DIME_E_MALFORMED; /* a TXT record has at least one string */
	*len = o;
	return DIME_OK;
}

/* A host name in wire format (labels, no compression): "." is the root (one zero octet), a final
 * dot is optional. Returns: DIME_OK or DIME_E_MALFORMED (an empty or over-long label or name). */
static int
static_name_wire(uint8_t *out, size_t cap, size_t *len, const char *name)
{
	size_t o = 0, n = strlen(name);

	*len = 0;
	if (n > 1 && name[n - 1] == '.')
		n--;
	if (n == 0 || !dns_name_ok(name))
		return DIME_E_MALFORMED;
	if (!(n == 1 && name[0] == '.')) {
		size_t i = 0;

		while (i < n) {
			size_t e = i;

			while (e < n && name[e] != '.')
				e++;
			if (e == i || e - i > 63 || e - i + 1 > cap - o)
				return DIME_E_MALFORMED;
			out[o++] = (uint8_t)(e - i);
			memcpy(out + o, name + i, e - i);
			o += e - i;
			i = e + 1;
			if (e + 1 == n)
				return DIME_E_MALFORMED; /* "a..": an empty last label */
		}
	}
	if (o >= cap || o + 1 > 255)
		return DIME_E_MALFORMED;
	out[o++] = 0;
	*len = o;
	return DIME_OK;
}

/* The rdata of one static line's value (after name, ttl and type). Returns: DIME_OK or
 * DIME_E_MALFORMED. */
static int
static_rdata(uint8_t *out, size_t cap, size_t *len, uint16_t type, const char *p)
{
	char a[DNS_NAME_MAX + 2], b[DNS_NAME_MAX + 2];
	int off = 0;

	*len = 0;
	if (type == DIME_DNS_TYPE_TXT)
		return static_txt(out, cap, len, p);
	if (type == DIME_DNS_TYPE_A || type == DIME_DNS_TYPE_AAAA) {
		int af = type == DIME_DNS_TYPE_A ? AF_INET : AF_INET6;
		size_t n = type == DIME_DNS_TYPE_A ? 4 : 16;

		if (sscanf(p, "%254s %n", a, &off) != 1 || p[off] != 0 || cap < n ||
		    inet_pton(af, a, out) != 1)
			return DIME_E_MALFORMED;
		*len = n;
		return DIME_OK;
	}
	if (type == DIME_DNS_TYPE_MX) {
		unsigned long pref;
		char *end;
		size_t n;

		/* preference (16 bits, big-endian), then the exchange's name */
		if (sscanf(p, "%254s %254s %n", a, b, &off) != 2 || p[off] != 0 || cap < 2)
			return DIME_E_MALFORMED;
		pref = strtoul(a, &end, 10);
		if (*end != 0 || a[0] < '0' || a[0] > '9' || pref > 65535 ||
		    static_name_wire(out + 2, cap - 2, &n, b) != DIME_OK)
			return DIME_E_MALFORMED;
		out[0] = (uint8_t)(pref >> 8);
		out[1] = (uint8_t)pref;
		*len = n + 2;
		return DIME_OK;
	}
	return DIME_E_MALFORMED;
}

static int
static_load(struct dime_dns *d, const char *path, char *why, size_t why_cap)
{
	static const struct {
		const char *name;
		uint16_t type;
	} types[] = {{"TXT", DIME_DNS_TYPE_TXT},
		     {"A", DIME_DNS_TYPE_A},
		     {"AAAA", DIME_DNS_TYPE_AAAA},
		     {"MX", DIME_DNS_TYPE_MX}};
	FILE *f = fopen(path, "re");
	char *line = NULL;
	uint8_t *rd = NULL;
	long lineno = 0;
	int rc = DIME_OK;

	if (f == NULL) {
		dns_why(why, why_cap, "%s: cannot open: %s", path, strerror(errno));
		return DIME_E_IO;
	}
	if ((line = malloc(DNS_STATIC_LINE_MAX)) == NULL ||
	    (rd = malloc(DNS_STATIC_LINE_MAX)) == NULL) {
		rc = DIME_E_NOMEM;
		goto out;
	}
	while (fgets(line, DNS_STATIC_LINE_MAX, f) != NULL) {
		char name[DNS_NAME_MAX + 2], type[16];
		unsigned long ttl;
		int off = 0;
		size_t len;
		uint16_t qtype = 0;
		struct static_rr *grown;
		char *p = line;

		lineno++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\n' || *p == '\r' || *p == 0)
			continue;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			dns_why(why, why_cap, "%s:%ld: line too long", path, lineno);
			rc = DIME_E_MALFORMED;
			goto out;
		}
		line[strcspn(line, "\r\n")] = 0;
		if (sscanf(p, "%254s %lu %15s %n", name, &ttl, type, &off) == 3 && off > 0)
			for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
				if (strcmp(type, types[i].name) == 0)
					qtype = types[i].type;
		if (qtype == 0 || ttl > 0x7fffffffUL) {
			dns_why(why, why_cap,
				"%s:%ld: expected: name ttl TXT \"text\" ..., name ttl A|AAAA "
				"address, or name ttl MX preference host",
				path, lineno);
			rc = DIME_E_MALFORMED;
			goto out;
		}
		len = strlen(name);
		if (len > 1 && name[len - 1] == '.')
			name[len - 1] = 0; /* both spellings of a name are the same name */
		if (!dns_name_ok(name) ||
		    static_rdata(rd, DNS_STATIC_LINE_MAX, &len, qtype, p + off) != DIME_OK) {
			dns_why(why, why_cap, "%s:%ld: bad name or %s value", path, lineno, type);
			rc = DIME_E_MALFORMED;
			goto out;
		}
		if ((grown = realloc(d->st, (d->n_st + 1) * sizeof(*d->st))) == NULL) {
			rc = DIME_E_NOMEM;
			goto out;
		}
		d->st = grown;
		memset(&d->st[d->n_st], 0, sizeof(d->st[0]));
		memcpy(d->st[d->n_st].name, name, strlen(name) + 1); /* dns_name_ok: it fits */
		d->st[d->n_st].type = qtype;
		d->st[d->n_st].ttl = (uint32_t)ttl;
		if ((d->st[d->n_st].rdata = malloc(len)) == NULL) {
			rc = DIME_E_NOMEM;
			goto out;
		}
		memcpy(d->st[d->n_st].rdata, rd, len);
		d->st[d->n_st].len = len;
		d->n_st++;
	}
	if (ferror(f)) {
		dns_why(why, why_cap, "%s: read error (line %ld)", path, lineno);
		rc = DIME_E_IO;
	}
out:
	free(line);
	free(rd);
	fclose(f);
	return rc;
}

static struct dns_result *
static_answer(const struct dime_dns *d, const char *name, uint16_t type)
{
	struct dns_result *r;
	size_t n = 0, len = strlen(name);
	char q[DNS_NAME_MAX + 2];
	uint32_t ttl = UINT32_MAX;

	snprintf(q, sizeof(q), "%s", name);
	if (len > 1 && q[len - 1] == '.')
		q[len - 1] = 0;
	for (size_t i = 0; i < d->n_st; i++)
		if (d->st[i].type == type && strcasecmp(d->st[i].name, q) == 0)
			n++;
	if ((r = dns_result_new(name, type, n)) == NULL)
		return NULL;
	r->a.sec = DIME_DNS_CONFIGURED;
	r->a.rcode = n > 0 ? DIME_DNS_NOERROR : DIME_DNS_NXDOMAIN;
	for (size_t i = 0; i < d->n_st; i++) {
		if (d->st[i].type != type || strcasecmp(d->st[i].name, q) != 0)
			continue;
		if (dns_result_add(r, d->st[i].rdata, d->st[i].len) != DIME_OK) {
			dns_result_free(r);
			return NULL;
		}
		if (d->st[i].ttl < ttl)
			ttl = d->st[i].ttl; /* an RRset has one TTL: the smallest is the safe one */
	}
	r->a.ttl = n > 0 ? ttl : 0;
	return r;
}

/* ---- completion ---- */

static void
dns_deliver(void *arg)
{
	struct dime_dns_query *q = arg;

	if (!atomic_load(&q->cancelled))
		q->fn(q->arg, q->rc, q->rc == DIME_OK ? &q->res->a : NULL);
	dns_result_free(q->res);
	free(q);
}

/* The answer is in q (rc, res): hand it to the asker. Never under d->mu. */
static void
dns_complete(struct dime_dns_query *q)
{
	if (q->loop == NULL) {
		pthread_mutex_lock(&q->mu);
		q->done = 1;
		pthread_cond_signal(&q->cv);
		pthread_mutex_unlock(&q->mu);
		return;
	}
	/* A post fails only without memory: try again shortly rather than lose the answer
	 * (the asker waits on it). */
	while (dime_io_loop_post(q->loop, dns_deliver, q) != DIME_OK) {
		struct timespec ts = {0, 10 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
}

static void
dns_unlink(struct dime_dns *d, struct dime_dns_query *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		d->pending = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
}

/* libunbound's callback, on the resolver thread inside ub_process. */
static void
dns_ub_done(void *arg, int err, struct ub_result *res)
{
	struct dime_dns_query *q = arg;
	struct dime_dns *d = q->d;
	size_t n = 0;

	pthread_mutex_lock(&d->mu);
	dns_unlink(d, q);
	q->in_unbound = 0;
	pthread_mutex_unlock(&d->mu);
	q->rc = DIME_OK;
	if (err != 0 || res == NULL) {
		/* unbound could not even try (no memory, a bad configuration): SERVFAIL */
		if ((q->res = dns_result_new(q->name, q->type, 0)) == NULL)
			q->rc = DIME_E_NOMEM;
		else
			q->res->a.rcode = DIME_DNS_SERVFAIL;
	} else {
		if (res->havedata)
			while (res->data[n] != NULL)
				n++;
		if ((q->res = dns_result_new(res->qname, (uint16_t)res->qtype, n)) == NULL) {
			q->rc = DIME_E_NOMEM;
		} else {
			q->res->a.rcode = res->rcode;
			q->res->a.ttl = res->ttl > 0 ? (uint32_t)res->ttl : 0;
			q->res->a.sec = res->bogus    ? DIME_DNS_BOGUS
					: res->secure ? DIME_DNS_SECURE
						      : DIME_DNS_INSECURE;
			if (res->bogus && res->why_bogus != NULL &&
			    (q->res->why = strdup(res->why_bogus)) != NULL)
				q->res->a.why_bogus = q->res->why;
			for (size_t i = 0; i < n && q->rc == DIME_OK; i++)
				if (dns_result_add(q->res, res->data[i], (size_t)res->len[i]) !=
				    DIME_OK)
					q->rc = DIME_E_NOMEM;
		}
	}
	ub_resolve_free(res);
	dns_complete(q);
}

/* Queries past their deadline: cancelled in unbound and answered SERVFAIL. */
static void
dns_expire(struct dime_dns *d, uint64_t now)
{
	for (;;) {
		struct dime_dns_query *q;

		pthread_mutex_lock(&d->mu);
		for (q = d->pending; q != NULL && q->deadline_ms > now; q = q->next)
			;
		if (q != NULL) {
			dns_unlink(d, q);
			if (q->in_unbound)
				(void)ub_cancel(d->ub, q->async_id);
			q->in_unbound = 0;
		}
		pthread_mutex_unlock(&d->mu);
		if (q == NULL)
			return;
		q->rc = DIME_OK;
		if ((q->res = dns_result_new(q->name, q->type, 0)) == NULL)
			q->rc = DIME_E_NOMEM;
		else
			q->res->a.rcode = DIME_DNS_SERVFAIL;
		dns_complete(q);
	}
}

static void *
dns_thread(void *arg)
{
	struct dime_dns *d = arg;

	while (!atomic_load(&d->stop)) {
		struct pollfd p[2] = {{ub_fd(d->ub), POLLIN, 0}, {d->efd, POLLIN, 0}};
		uint64_t now = dns_now_ms(), next = UINT64_MAX;
		int timeout;

		pthread_mutex_lock(&d->mu);
		for (struct dime_dns_query *q = d->pending; q != NULL; q = q->next)
			if (q->deadline_ms < next)
				next = q->deadline_ms;
		pthread_mutex_unlock(&d->mu);
		timeout = next == UINT64_MAX ? -1 : next <= now ? 0 : (int)(next - now);
		if (poll(p, 2, timeout) < 0 && errno != EINTR)
			break;
		if (p[1].revents & POLLIN) {
			uint64_t v;
			ssize_t n = read(d->efd, &v, sizeof(v)); /* non-blocking: resets it */

			(void)n;
		}
		if (p[0].revents & POLLIN)
			(void)ub_process(d->ub);
		dns_expire(d, dns_now_ms());
	}
	return NULL;
}

/* ---- public ---- */

int
dime_dns_new(struct dime_dns **out, const struct dime_dns_conf *conf, char *why, size_t why_cap)
{
	struct dime_dns *d;
	int rc = DIME_E_IO, urc = 0;
	const char *what = "";

	*out = NULL;
	if (why != NULL && why_cap > 0)
		why[0] = 0;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return DIME_E_NOMEM;
	d->efd = -1;
	pthread_mutex_init(&d->mu, NULL);
	d->timeout_ms =
	    conf != NULL && conf->timeout_ms > 0 ? conf->timeout_ms : DNS_TIMEOUT_DEFAULT_MS;
	if (conf != NULL && conf->static_file != NULL) {
		if ((rc = static_load(d, conf->static_file, why, why_cap)) != DIME_OK)
			goto fail;
		*out = d;
		return DIME_OK;
	}
	if ((d->ub = ub_ctx_create()) == NULL) {
		rc = DIME_E_NOMEM;
		goto fail;
	}
	if (conf != NULL && conf->config_file != NULL &&
	    (urc = ub_ctx_config(d->ub, conf->config_file)) != 0)
		what = conf->config_file;
	else if (conf != NULL && conf->resolv_conf != NULL &&
		 (urc = ub_ctx_resolvconf(d->ub, conf->resolv_conf)) != 0)
		what = conf->resolv_conf;
	else if (conf != NULL && conf->trust_anchor_file != NULL &&
		 (urc = ub_ctx_add_ta_file(d->ub, conf->trust_anchor_file)) != 0)
		what = conf->trust_anchor_file;
	else if (conf != NULL && conf->auto_trust_anchor != NULL &&
		 (urc = ub_ctx_add_ta_autr(d->ub, conf->auto_trust_anchor)) != 0)
		what = conf->auto_trust_anchor;
	/* 1: unbound works in a thread of this process (0 would fork a helper process) */
	else if ((urc = ub_ctx_async(d->ub, 1)) != 0)
		what = "async mode";
	if (urc != 0) {
		if (why != NULL && why_cap > 0)
			snprintf(why, why_cap, "unbound: %s: %s", what, ub_strerror(urc));
		goto fail;
	}
	if ((d->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		dns_why(why, why_cap, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&d->thread, NULL, dns_thread, d) != 0) {
		dns_why(why, why_cap, "cannot start the resolver thread");
		goto fail;
	}
	d->thread_ok = 1;
	*out = d;
	return DIME_OK;
fail:
	dime_dns_free(d);
	return rc;
}

void
dime_dns_free(struct dime_dns *d)
{
	if (d == NULL)
		return;
	if (d->thread_ok) {
		atomic_store(&d->stop, 1);
		dns_wake(d);
		pthread_join(d->thread, NULL);
	}
	/* queries still in unbound: ub_ctx_delete drops them; free ours (never answered) */
	while (d->pending != NULL) {
		struct dime_dns_query *q = d->pending;

		dns_unlink(d, q);
		if (q->loop != NULL) {
			free(q);
		} else {
			q->rc = DIME_E_IO;
			dns_complete(q);
		}
	}
	if (d->ub != NULL)
		ub_ctx_delete(d->ub);
	if (d->efd >= 0)
		close(d->efd);
	for (size_t i = 0; i < d->n_st; i++)
		free(d->st[i].rdata);
	free(d->st);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

/* Start q (fields set by the caller): static answers complete at once. */
static int
dns_start(struct dime_dns *d, struct dime_dns_query *q, const char *name, uint16_t type)
{
	int urc;

	snprintf(q->name, sizeof(q->name), "%s", name);
	q->type = type;
	if (d->ub == NULL) {
		q->rc = DIME_OK;
		if ((q->res = static_answer(d, name, type)) == NULL)
			return DIME_E_NOMEM;
		dns_complete(q);
		return DIME_OK;
	}
	q->deadline_ms = dns_now_ms() + d->timeout_ms;
	pthread_mutex_lock(&d->mu);
	/* under mu: the callback (which unlinks) cannot run before q is linked */
	q->next = d->pending;
	if (d->pending != NULL)
		d->pending->prev = q;
	d->pending = q;
	q->in_unbound = 1;
	urc = ub_resolve_async(d->ub, name, type, 1 /* IN */, q, dns_ub_done, &q->async_id);
	if (urc != 0) {
		dns_unlink(d, q);
		q->in_unbound = 0;
	}
	pthread_mutex_unlock(&d->mu);
	if (urc != 0)
		return urc == UB_NOMEM ? DIME_E_NOMEM : DIME_E_IO;
	dns_wake(d); /* the thread recomputes its deadline */
	return DIME_OK;
}

int
dime_dns_query(struct dime_dns *d, struct dime_io_loop *loop, const char *name, uint16_t type,
	       dime_dns_fn fn, void *arg, struct dime_dns_query **out)
{
	struct dime_dns_query *q;
	int rc;

	if (out != NULL)
		*out = NULL;
	if (d == NULL || loop == NULL || fn == NULL || !dns_name_ok(name))
		return DIME_E_INVALID;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return DIME_E_NOMEM;
	q->d = d;
	q->loop = loop;
	q->fn = fn;
	q->arg = arg;
	if (out != NULL)
		*out = q;
	if ((rc = dns_start(d, q, name, type)) != DIME_OK) {
		if (out != NULL)
			*out = NULL;
		dns_result_free(q->res);
		free(q);
	}
	return rc;
}

void
dime_dns_cancel(struct dime_dns_query *q)
{
	if (q != NULL)
		atomic_store(&q->cancelled, 1);
}

int
dime_dns_query_sync(struct dime_dns *d, const char *name, uint16_t type, dime_dns_fn fn, void *arg)
{
	struct dime_dns_query q;
	int rc;

	if (d == NULL || fn == NULL || !dns_name_ok(name))
		return DIME_E_INVALID;
	memset(&q, 0, sizeof(q));
	q.d = d;
	pthread_mutex_init(&q.mu, NULL);
	pthread_cond_init(&q.cv, NULL);
	if ((rc = dns_start(d, &q, name, type)) == DIME_OK) {
		pthread_mutex_lock(&q.mu);
		while (!q.done)
			pthread_cond_wait(&q.cv, &q.mu);
		pthread_mutex_unlock(&q.mu);
		rc = q.rc;
		fn(arg, rc, rc == DIME_OK ? &q.res->a : NULL);
	}
	dns_result_free(q.res);
	pthread_cond_destroy(&q.cv);
	pthread_mutex_destroy(&q.mu);
	return rc;
}

int
dime_dns_txt_join(char *out, size_t cap, size_t *out_len, const uint8_t *rr, size_t rr_len)
{
	size_t o = 0, i = 0;

	*out_len = 0;
	if (cap == 0)
		return DIME_E_NOSPACE;
	out[0] = 0;
	while (i < rr_len) {
		size_t n = rr[i++];

		if (n > rr_len - i)
			return DIME_E_MALFORMED;
		if (memchr(rr + i, 0, n) != NULL)
			return DIME_E_INVALID;
		if (n >= cap - o)
			return DIME_E_NOSPACE;
		memcpy(out + o, rr + i, n);
		o += n;
		i += n;
	}
	out[o] = 0;
	*out_len = o;
	return DIME_OK;
}

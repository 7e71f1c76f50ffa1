/* dimed's configuration file: inih does the line syntax (key = value, [sections], `#` and `;`
 * comments, indented continuation lines as repeated keys); this file gives each key its type,
 * range and default, and names the first bad line as FILE:LINE. */
#include "dime/dconf.h"
#include "dime/dns.h"
#include "dime/dx.h"
#include "dime/mrec.h"
#include "dime/pool.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct dconf_parse {
	struct dime_dconf *c;
	const char *path;
	FILE *f;
	unsigned line;	      /* lines handed to inih so far: the one being parsed */
	int listen_from_file; /* the first `listen` line replaces the default listeners */
	int failed;
	char *why;
	size_t why_cap;
};

static void dconf_fail(struct dconf_parse *p, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Keep the first error only: inih goes on parsing after a handler refuses a line. */
static void
dconf_fail(struct dconf_parse *p, const char *key, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->failed++)
		return;
	if (p->why_cap == 0)
		return;
	n = snprintf(p->why, p->why_cap, "%s:%u: %s: ", p->path, p->line, key);
	if (n < 0 || (size_t)n >= p->why_cap)
		return;
	va_start(ap, fmt);
	vsnprintf(p->why + n, p->why_cap - (size_t)n, fmt, ap);
	va_end(ap);
}

/* An fgets for inih that counts lines (Debian's inih is built without INI_HANDLER_LINENO) and
 * refuses a line longer than inih's buffer instead of letting inih split it in two. */
static char *
dconf_reader(char *str, int num, void *stream)
{
	struct dconf_parse *p = stream;
	size_t n;

	if (fgets(str, num, p->f) == NULL)
		return NULL;
	p->line++;
	n = strlen(str);
	if (n > 0 && str[n - 1] != '\n' && !feof(p->f)) {
		int ch;

		dconf_fail(p, "line", "longer than %d characters", num - 3);
		while ((ch = fgetc(p->f)) != EOF && ch != '\n')
			;
		str[0] = '\0'; /* an empty line: inih skips it */
	}
	return str;
}

/* A count: digits only, within [lo, hi]. */
static int
dconf_uint(struct dconf_parse *p, const char *key, const char *v, unsigned long long lo,
	   unsigned long long hi, unsigned long long *out)
{
	char *end;
	unsigned long long x;

	errno = 0;
	if (v[0] < '0' || v[0] > '9' || (x = strtoull(v, &end, 10), errno != 0) || *end != '\0') {
		dconf_fail(p, key, "\"%s\" is not a number", v);
		return 0;
	}
	if (x < lo || x > hi) {
		dconf_fail(p, key, "%llu is out of range [%llu, %llu]", x, lo, hi);
		return 0;
	}
	*out = x;
	return 1;
}

/* A number with a unit suffix: mult[i] is what suffix sfx[i] multiplies by; "" is the unit
 * without a suffix. Case-insensitive suffixes. */
static int
dconf_scaled(struct dconf_parse *p, const char *key, const char *v, const char *const *sfx,
	     const unsigned long long *mult, size_t n_sfx, unsigned long long hi,
	     unsigned long long *out)
{
	char *end;
	unsigned long long x;

	errno = 0;
	if (v[0] < '0' || v[0] > '9' || (x = strtoull(v, &end, 10), errno != 0))
		goto bad;
	for (size_t i = 0; i < n_sfx; i++) {
		if (strcasecmp(end, sfx[i]) != 0)
			continue;
		if (x > hi / mult[i]) {
			dconf_fail(p, key, "\"%s\" is more than the limit %llu", v, hi);
			return 0;
		}
		*out = x * mult[i];
		return 1;
	}
bad:
	dconf_fail(p, key, "\"%s\" is not a number with a unit", v);
	return 0;
}

static int
dconf_size(struct dconf_parse *p, const char *key, const char *v, unsigned long long hi,
	   size_t *out)
{
	static const char *const sfx[] = {"", "k", "m"};
	static const unsigned long long mult[] = {1, 1024, 1024 * 1024};
	unsigned long long x;

	if (!dconf_scaled(p, key, v, sfx, mult, 3, hi, &x))
		return 0;
	*out = (size_t)x;
	return 1;
}

/* A duration in unit_us microseconds (1000: milliseconds); no suffix means seconds. */
static int
dconf_duration(struct dconf_parse *p, const char *key, const char *v, unsigned long long unit_us,
	       unsigned *out)
{
	static const char *const sfx[] = {"", "s", "m", "ms", "h", "d"};
	static const unsigned long long mult[] = {1000000, 1000000,    60000000,
						  1000,	   3600000000, 86400000000};
	unsigned long long us;

	if (!dconf_scaled(p, key, v, sfx, mult, 6, (unsigned long long)UINT_MAX * unit_us, &us))
		return 0;
	if (us % unit_us != 0) {
		dconf_fail(p, key, "\"%s\" is finer than %s", v, unit_us == 1000 ? "1ms" : "1us");
		return 0;
	}
	*out = (unsigned)(us / unit_us);
	return 1;
}

static int
dconf_str(struct dconf_parse *p, const char *key, const char *v, char *dst, size_t cap)
{
	size_t n = strlen(v);

	if (n >= cap) {
		dconf_fail(p, key, "longer than %zu characters", cap - 1);
		return 0;
	}
	memcpy(dst, v, n + 1);
	return 1;
}

static int
dconf_bool(struct dconf_parse *p, const char *key, const char *v, int *out)
{
	if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
	    strcasecmp(v, "on") == 0)
		*out = 1;
	else if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0 ||
		 strcasecmp(v, "off") == 0)
		*out = 0;
	else {
		dconf_fail(p, key, "\"%s\" is not yes or no", v);
		return 0;
	}
	return 1;
}

/* `HOST:PORT MODE` or `[V6]:PORT MODE`; MODE dmtp (implicit TLS) or dual. */
static int
dconf_listen(struct dconf_parse *p, const char *v)
{
	struct dime_dconf *c = p->c;
	struct dime_dconf_listen l;
	const char *host, *colon, *sp, *mode;
	size_t host_len;
	char port[8];
	unsigned long long x;

	memset(&l, 0, sizeof(l));
	if (!p->listen_from_file) {
		p->listen_from_file = 1;
		c->n_listen = 0;
	}
	if (c->n_listen == DIME_DCONF_MAX_LISTEN) {
		dconf_fail(p, "listen", "more than %d listeners", DIME_DCONF_MAX_LISTEN);
		return 0;
	}
	sp = strpbrk(v, " \t");
	if (sp == NULL) {
		dconf_fail(p, "listen", "\"%s\": want HOST:PORT MODE", v);
		return 0;
	}
	mode = sp;
	while (*mode == ' ' || *mode == '\t')
		mode++;
	if (strcasecmp(mode, "dmtp") == 0)
		l.mode = DIME_DCONF_DMTP;
	else if (strcasecmp(mode, "dual") == 0)
		l.mode = DIME_DCONF_DUAL;
	else if (strcasecmp(mode, "smtp") == 0)
		l.mode = DIME_DCONF_SMTP;
	else if (strcasecmp(mode, "lmtp") == 0)
		l.mode = DIME_DCONF_LMTP_IN;
	else if (strcasecmp(mode, "socketmap") == 0)
		l.mode = DIME_DCONF_SOCKETMAP;
	else if (strcasecmp(mode, "policy") == 0)
		l.mode = DIME_DCONF_POLICY;
	else {
		dconf_fail(p, "listen",
			   "mode \"%s\": want dmtp, dual, smtp, lmtp, socketmap or policy", mode);
		return 0;
	}
	if (v[0] == '[') {
		const char *rb = memchr(v, ']', (size_t)(sp - v));

		if (rb == NULL || rb[1] != ':') {
			dconf_fail(p, "listen", "\"%s\": want [ADDRESS]:PORT", v);
			return 0;
		}
		host = v + 1;
		host_len = (size_t)(rb - host);
		colon = rb + 1;
	} else {
		colon = NULL;
		for (const char *q = v; q < sp; q++)
			if (*q == ':')
				colon = q;
		if (colon == NULL) {
			dconf_fail(p, "listen", "\"%s\": want HOST:PORT", v);
			return 0;
		}
		host = v;
		host_len = (size_t)(colon - v);
	}
	if (host_len == 0 || host_len >= sizeof(l.host) || (size_t)(sp - colon - 1) == 0 ||
	    (size_t)(sp - colon - 1) >= sizeof(port)) {
		dconf_fail(p, "listen", "\"%s\": bad host or port", v);
		return 0;
	}
	memcpy(l.host, host, host_len);
	memcpy(port, colon + 1, (size_t)(sp - colon - 1));
	port[sp - colon - 1] = '\0';
	if (!dconf_uint(p, "listen", port, 0, 65535, &x))
		return 0;
	l.port = (unsigned)x;
	c->listen[c->n_listen++] = l;
	return 1;
}

/* The certificate slot of section `tls` (the default, slot 0) or `tls NAME`. */
static struct dime_dconf_cert *
dconf_cert_slot(struct dconf_parse *p, const char *section)
{
	struct dime_dconf *c = p->c;
	const char *name = section + 3;

	while (*name == ' ' || *name == '\t')
		name++;
	if (c->n_certs == 0)
		c->n_certs = 1; /* slot 0 stays the default even if [tls NAME] comes first */
	if (name[0] == '\0')
		return &c->certs[0];
	for (size_t i = 1; i < c->n_certs; i++)
		if (strcasecmp(c->certs[i].name, name) == 0)
			return &c->certs[i];
	if (c->n_certs == DIME_DCONF_MAX_CERTS) {
		dconf_fail(p, section, "more than %d certificates", DIME_DCONF_MAX_CERTS);
		return NULL;
	}
	if (strlen(name) >= sizeof(c->certs[0].name)) {
		dconf_fail(p, section, "host name too long");
		return NULL;
	}
	strcpy(c->certs[c->n_certs].name, name);
	return &c->certs[c->n_certs++];
}

static int
dconf_tls(struct dconf_parse *p, const char *section, const char *key, const char *v)
{
	struct dime_dconf_cert *slot = dconf_cert_slot(p, section);
	char *dst;

	if (slot == NULL)
		return 0;
	if (strcmp(key, "cert") == 0)
		dst = slot->cert;
	else if (strcmp(key, "key") == 0)
		dst = slot->key;
	else {
		dconf_fail(p, key, "unknown key in [%s] (cert, key)", section);
		return 0;
	}
	if (!dconf_str(p, key, v, dst, sizeof(slot->cert)))
		return 0;
	if (access(v, R_OK) != 0) {
		int e = errno;

		dconf_fail(p, key, "%s: %s", v, strerror(e));
		dst[0] = '\0';
		return 0;
	}
	return 1;
}

static int
dconf_handler(void *user, const char *section, const char *key, const char *v)
{
	struct dconf_parse *p = user;
	struct dime_dconf *c = p->c;
	unsigned long long x;

	if (strncmp(section, "tls", 3) == 0 &&
	    (section[3] == '\0' || section[3] == ' ' || section[3] == '\t'))
		return dconf_tls(p, section, key, v);
	if (section[0] != '\0') {
		dconf_fail(p, key, "unknown section [%s] ([tls] or [tls NAME])", section);
		return 0;
	}
	if (strcmp(key, "hostname") == 0)
		return dconf_str(p, key, v, c->hostname, sizeof(c->hostname));
	if (strcmp(key, "store") == 0)
		return dconf_str(p, key, v, c->store, sizeof(c->store));
	if (strcmp(key, "spool") == 0)
		return dconf_str(p, key, v, c->spool, sizeof(c->spool));
	if (strcmp(key, "listen") == 0)
		return dconf_listen(p, v);
	if (strcmp(key, "delivery") == 0) {
		if (strcasecmp(v, "maildir") == 0)
			c->delivery = DIME_DCONF_MAILDIR;
		else if (strcasecmp(v, "lmtp") == 0)
			c->delivery = DIME_DCONF_LMTP;
		else {
			dconf_fail(p, key, "\"%s\": want maildir or lmtp", v);
			return 0;
		}
		return 1;
	}
	if (strcmp(key, "maildir_root") == 0)
		return dconf_str(p, key, v, c->maildir_root, sizeof(c->maildir_root));
	if (strcmp(key, "lmtp") == 0) {
		if (strncmp(v, "unix:", 5) != 0 && strrchr(v, ':') == NULL) {
			dconf_fail(p, key, "\"%s\": want unix:/PATH or HOST:PORT", v);
			return 0;
		}
		return dconf_str(p, key, v, c->lmtp, sizeof(c->lmtp));
	}
	if (strcmp(key, "workers") == 0) {
		if (!dconf_uint(p, key, v, 0, 1024, &x))
			return 0;
		c->workers = (unsigned)x;
		return 1;
	}
	if (strcmp(key, "batch_max") == 0) {
		if (!dconf_uint(p, key, v, 1, 4096, &x))
			return 0;
		c->batch_max = (size_t)x;
		return 1;
	}
	if (strcmp(key, "batch_deadline") == 0)
		return dconf_duration(p, key, v, 1, &c->batch_deadline_us);
	if (strcmp(key, "queue_max") == 0) {
		if (!dconf_uint(p, key, v, 1, 1u << 24, &x))
			return 0;
		c->queue_max = (size_t)x;
		return 1;
	}
	if (strcmp(key, "max_message") == 0)
		return dconf_size(p, key, v, 0x40000000ull, &c->max_message);
	if (strcmp(key, "max_conns") == 0 || strcmp(key, "max_conns_per_ip") == 0 ||
	    strcmp(key, "max_cmds") == 0) {
		if (!dconf_uint(p, key, v, 1, 1u << 20, &x))
			return 0;
		if (strcmp(key, "max_conns") == 0)
			c->max_conns = (unsigned)x;
		else if (strcmp(key, "max_conns_per_ip") == 0)
			c->max_conns_per_ip = (unsigned)x;
		else
			c->max_cmds = (unsigned)x;
		return 1;
	}
	if (strcmp(key, "timeout_cmd") == 0)
		return dconf_duration(p, key, v, 1000, &c->timeout_cmd_ms);
	if (strcmp(key, "timeout_data") == 0)
		return dconf_duration(p, key, v, 1000, &c->timeout_data_ms);
	if (strcmp(key, "timeout_tls") == 0)
		return dconf_duration(p, key, v, 1000, &c->timeout_tls_ms);
	if (strcmp(key, "greet_pause") == 0)
		return dconf_duration(p, key, v, 1000, &c->greet_pause_ms);
	if (strcmp(key, "retry_min") == 0)
		return dconf_duration(p, key, v, 1000, &c->retry_min_ms);
	if (strcmp(key, "outq") == 0)
		return dconf_str(p, key, v, c->outq, sizeof(c->outq));
	if (strcmp(key, "policy") == 0) {
		if (strcasecmp(v, "experimental") == 0)
			c->policy = DIME_POL_EXPERIMENTAL;
		else if (strcasecmp(v, "mixed") == 0)
			c->policy = DIME_POL_MIXED;
		else if (strcasecmp(v, "strict") == 0)
			c->policy = DIME_POL_STRICT;
		else {
			dconf_fail(p, key, "\"%s\": want experimental, mixed or strict", v);
			return 0;
		}
		return 1;
	}
	if (strcmp(key, "dns_static") == 0)
		return dconf_str(p, key, v, c->dns_static, sizeof(c->dns_static));
	if (strcmp(key, "dns_config") == 0)
		return dconf_str(p, key, v, c->dns_config, sizeof(c->dns_config));
	if (strcmp(key, "trust_anchor") == 0)
		return dconf_str(p, key, v, c->trust_anchor, sizeof(c->trust_anchor));
	if (strcmp(key, "resolv_conf") == 0)
		return dconf_str(p, key, v, c->resolv_conf, sizeof(c->resolv_conf));
	if (strcmp(key, "dns_timeout") == 0)
		return dconf_duration(p, key, v, 1000, &c->dns_timeout_ms);
	if (strcmp(key, "connect_timeout") == 0)
		return dconf_duration(p, key, v, 1000, &c->connect_timeout_ms);
	if (strcmp(key, "tls_ca_file") == 0)
		return dconf_str(p, key, v, c->tls_ca_file, sizeof(c->tls_ca_file));
	if (strcmp(key, "dx_port") == 0) {
		if (!dconf_uint(p, key, v, 1, 65535, &x))
			return 0;
		c->dx_port = (unsigned)x;
		return 1;
	}
	if (strcmp(key, "mx_ports") == 0) {
		unsigned a = 0, b = 0;
		int n = 0;

		if (sscanf(v, "%u %u %n", &a, &b, &n) != 2 || v[n] != '\0' || a == 0 || a > 65535 ||
		    b == 0 || b > 65535) {
			dconf_fail(p, key, "\"%s\": want two ports, e.g. 25 587", v);
			return 0;
		}
		c->mx_ports[0] = a;
		c->mx_ports[1] = b;
		return 1;
	}
	if (strcmp(key, "outbound_workers") == 0) {
		if (!dconf_uint(p, key, v, 1, 1024, &x))
			return 0;
		c->outbound_workers = (unsigned)x;
		return 1;
	}
	if (strcmp(key, "outq_first_retry") == 0)
		return dconf_duration(p, key, v, 1000000, &c->outq_first_retry_s);
	if (strcmp(key, "outq_max_interval") == 0)
		return dconf_duration(p, key, v, 1000000, &c->outq_max_interval_s);
	if (strcmp(key, "outq_delay_notice") == 0)
		return dconf_duration(p, key, v, 1000000, &c->outq_delay_notice_s);
	if (strcmp(key, "outq_give_up") == 0)
		return dconf_duration(p, key, v, 1000000, &c->outq_give_up_s);
	if (strcmp(key, "retry_max") == 0)
		return dconf_duration(p, key, v, 1000, &c->retry_max_ms);
	if (strcmp(key, "reinject") == 0) {
		if (v[0] != '\0' && strrchr(v, ':') == NULL) {
			dconf_fail(p, key, "\"%s\": want HOST:PORT", v);
			return 0;
		}
		return dconf_str(p, key, v, c->reinject, sizeof(c->reinject));
	}
	if (strcmp(key, "socketmap_nexthop") == 0)
		return dconf_str(p, key, v, c->socketmap_nexthop, sizeof(c->socketmap_nexthop));
	if (strcmp(key, "unsigned_local") == 0) {
		if (strcasecmp(v, "defer") == 0)
			c->unsigned_local = DIME_DCONF_UNSIGNED_DEFER;
		else if (strcasecmp(v, "refuse") == 0)
			c->unsigned_local = DIME_DCONF_UNSIGNED_REFUSE;
		else {
			dconf_fail(p, key, "\"%s\": want defer or refuse", v);
			return 0;
		}
		return 1;
	}
	if (strcmp(key, "gateway_workers") == 0) {
		if (!dconf_uint(p, key, v, 1, 1024, &x))
			return 0;
		c->gateway_workers = (unsigned)x;
		return 1;
	}
	if (strcmp(key, "lookup_workers") == 0) {
		if (!dconf_uint(p, key, v, 1, 1024, &x))
			return 0;
		c->lookup_workers = (unsigned)x;
		return 1;
	}
	if (strcmp(key, "lookup_timeout") == 0) {
		if (!dconf_duration(p, key, v, 1000, &c->lookup_timeout_ms))
			return 0;
		if (c->lookup_timeout_ms == 0 || c->lookup_timeout_ms > 90000) {
			dconf_fail(p, key, "\"%s\": want 1ms to 90s (below Postfix's 100 s)", v);
			return 0;
		}
		return 1;
	}
	if (strcmp(key, "smtp_max_rcpts") == 0) {
		if (!dconf_uint(p, key, v, 1, 10000, &x))
			return 0;
		c->smtp_max_rcpts = (unsigned)x;
		return 1;
	}
	if (strcmp(key, "smtp_bare_lf") == 0) {
		if (strcasecmp(v, "normalize") == 0)
			c->smtp_bare_lf_reject = 0;
		else if (strcasecmp(v, "reject") == 0)
			c->smtp_bare_lf_reject = 1;
		else {
			dconf_fail(p, key, "\"%s\": want normalize or reject", v);
			return 0;
		}
		return 1;
	}
	if (strcmp(key, "log") == 0) {
		if (strcasecmp(v, "stderr") == 0)
			c->log_syslog = 0;
		else if (strcasecmp(v, "syslog") == 0)
			c->log_syslog = 1;
		else {
			dconf_fail(p, key, "\"%s\": want stderr or syslog", v);
			return 0;
		}
		return 1;
	}
	if (strcmp(key, "log_level") == 0) {
		if (strcmp(v, "error") != 0 && strcmp(v, "warning") != 0 &&
		    strcmp(v, "info") != 0 && strcmp(v, "debug") != 0) {
			dconf_fail(p, key, "\"%s\": want error, warning, info or debug", v);
			return 0;
		}
		return dconf_str(p, key, v, c->log_level, sizeof(c->log_level));
	}
	if (strcmp(key, "early_talk_reject") == 0)
		return dconf_bool(p, key, v, &c->early_talk_reject);
	if (strcmp(key, "key_process") == 0)
		return dconf_bool(p, key, v, &c->key_process);
	if (strcmp(key, "key_timeout") == 0) {
		if (!dconf_duration(p, key, v, 1000, &c->key_timeout_ms))
			return 0;
		if (c->key_timeout_ms == 0 || c->key_timeout_ms > 3600000) {
			dconf_fail(p, key, "\"%s\" is out of range [1ms, 60m]", v);
			return 0;
		}
		return 1;
	}
	if (strcmp(key, "user") == 0) {
		/* Checked here so --check-config names it; applied after bind (dimed.md). */
		if (getpwnam(v) == NULL) {
			dconf_fail(p, key, "\"%s\": no such user", v);
			return 0;
		}
		return dconf_str(p, key, v, c->user, sizeof(c->user));
	}
	if (strcmp(key, "pid_file") == 0)
		return dconf_str(p, key, v, c->pid_file, sizeof(c->pid_file));
	dconf_fail(p, key, "unknown key");
	return 0;
}

/* The defaults; docs/dimed.conf lists the same values (a test loads it and compares). */
static void
dconf_defaults(struct dime_dconf *c)
{
	memset(c, 0, sizeof(*c));
	if (gethostname(c->hostname, sizeof(c->hostname) - 1) != 0 || c->hostname[0] == '\0')
		strcpy(c->hostname, "localhost");
	strcpy(c->store, "var/dime.db");
	strcpy(c->spool, "var/spool");
	strcpy(c->listen[0].host, "127.0.0.1");
	c->listen[0].port = 2626;
	c->listen[0].mode = DIME_DCONF_DMTP;
	strcpy(c->listen[1].host, "127.0.0.1");
	c->listen[1].port = 2525;
	c->listen[1].mode = DIME_DCONF_DUAL;
	c->n_listen = 2;
	c->delivery = DIME_DCONF_MAILDIR;
	strcpy(c->maildir_root, "var/mail");
	c->workers = 0;
	c->batch_max = 64;
	c->batch_deadline_us = DIME_PL_POOL_DEADLINE_DEFAULT;
	c->queue_max = 4096;
	c->max_message = 10u * 1024 * 1024;
	c->max_conns = 1024;
	c->max_conns_per_ip = 32;
	c->max_cmds = 1000;
	c->timeout_cmd_ms = 600000; /* spec Part 7: at least 1 minute, 10 recommended */
	c->timeout_data_ms = 600000;
	c->timeout_tls_ms = 30000;
	c->log_syslog = 0;
	strcpy(c->log_level, "info");
	c->early_talk_reject = 1;
	c->retry_min_ms = 10000;
	c->retry_max_ms = 3600000;
	c->key_process = 1;
	c->key_timeout_ms = 5000;
	strcpy(c->outq, "var/outq");
	c->policy = DIME_POL_MIXED;
	strcpy(c->trust_anchor, "/usr/share/dns/root.key");
	c->dns_timeout_ms = 10000;
	c->dx_port = 26;
	c->mx_ports[0] = 25;
	c->mx_ports[1] = 587;
	c->outbound_workers = 8;
	c->connect_timeout_ms = 30000;
	c->outq_first_retry_s = 300;
	c->outq_max_interval_s = 43200;
	c->outq_delay_notice_s = 14400;
	c->outq_give_up_s = 432000;
	c->unsigned_local = DIME_DCONF_UNSIGNED_DEFER;
	c->smtp_max_rcpts = 100;
	c->lookup_timeout_ms = 30000;
	c->lookup_workers = 8;
	c->gateway_workers = 16;
}

int
dime_dconf_load(struct dime_dconf *c, const char *path, char *why, size_t why_cap)
{
	struct dconf_parse p;
	int rc;

	if (why_cap > 0)
		why[0] = '\0';
	dconf_defaults(c);
	if (path == NULL)
		return DIME_OK;
	memset(&p, 0, sizeof(p));
	p.c = c;
	p.path = path;
	p.why = why;
	p.why_cap = why_cap;
	if ((p.f = fopen(path, "r")) == NULL) {
		int e = errno;

		if (why_cap > 0)
			snprintf(why, why_cap, "%s: %s", path, strerror(e));
		return DIME_E_IO;
	}
	rc = ini_parse_stream(dconf_reader, &p, dconf_handler, &p);
	if (rc != 0 && !p.failed) {
		/* inih's own syntax errors (no '=', unclosed '[') */
		p.line = rc > 0 ? (unsigned)rc : p.line;
		dconf_fail(&p, "line", "not `key = value` nor a [section]");
	}
	p.line = 0;
	if (!p.failed && ferror(p.f)) {
		int e = errno;

		if (why_cap > 0)
			snprintf(why, why_cap, "%s: %s", path, strerror(e));
		fclose(p.f);
		dconf_defaults(c);
		return DIME_E_IO;
	}
	fclose(p.f);
	for (size_t i = 0; !p.failed && i < c->n_certs; i++) {
		const struct dime_dconf_cert *ct = &c->certs[i];

		if (ct->cert[0] == '\0' || ct->key[0] == '\0')
			snprintf(why, why_cap, "%s: [tls%s%s]: needs both cert and key%s", path,
				 i > 0 ? " " : "", ct->name,
				 i > 0 && c->certs[0].cert[0] == '\0' ? " (and [tls] a default)"
								      : "");
		else
			continue;
		p.failed = 1;
	}
	if (!p.failed && c->delivery == DIME_DCONF_LMTP && c->lmtp[0] == '\0') {
		snprintf(why, why_cap, "%s: delivery = lmtp needs lmtp = unix:/PATH or HOST:PORT",
			 path);
		p.failed = 1;
	}
	if (!p.failed &&
	    (c->outq_first_retry_s == 0 || c->outq_max_interval_s == 0 ||
	     c->outq_first_retry_s > c->outq_max_interval_s || c->outq_max_interval_s > 43200 ||
	     c->outq_give_up_s < 72 * 3600 || c->outq_delay_notice_s > c->outq_give_up_s)) {
		/* spec Part 4: retried at least every 12 hours for at least 72 */
		snprintf(why, why_cap,
			 "%s: outq_*: want 0 < first_retry <= max_interval <= 12h, give_up >= 72h, "
			 "delay_notice <= give_up",
			 path);
		p.failed = 1;
	}
	if (!p.failed && c->retry_min_ms > c->retry_max_ms) {
		snprintf(why, why_cap, "%s: retry_min is longer than retry_max", path);
		p.failed = 1;
	}
	if (p.failed) {
		dconf_defaults(c);
		return DIME_E_INVALID;
	}
	return DIME_OK;
}

int
dime_dconf_pid_file(const struct dime_dconf *c, char *out, size_t cap)
{
	int n = c->pid_file[0] != '\0'
		    ? snprintf(out, cap, "%s", c->pid_file)
		    : snprintf(out, cap, "%s%s", c->store, DIME_DCONF_PID_SUFFIX);

	if (n < 0 || (size_t)n >= cap) {
		if (cap > 0)
			out[0] = '\0';
		return DIME_E_NOSPACE;
	}
	return DIME_OK;
}

void
dime_dconf_outbound(const struct dime_dconf *c, struct dime_dns_conf *dns, struct dime_dx_conf *dx,
		    struct dime_dx_ports *ports)
{
	if (dns != NULL) {
		memset(dns, 0, sizeof(*dns));
		dns->timeout_ms = c->dns_timeout_ms;
		if (c->dns_static[0] != '\0')
			dns->static_file = c->dns_static;
		else {
			dns->config_file = c->dns_config[0] != '\0' ? c->dns_config : NULL;
			dns->trust_anchor_file =
			    c->trust_anchor[0] != '\0' ? c->trust_anchor : NULL;
			dns->resolv_conf = c->resolv_conf[0] != '\0' ? c->resolv_conf : NULL;
		}
	}
	if (dx != NULL) {
		memset(dx, 0, sizeof(*dx));
		dx->helo = c->hostname;
		dx->ca_file = c->tls_ca_file[0] != '\0' ? c->tls_ca_file : NULL;
		dx->connect_timeout_ms = c->connect_timeout_ms;
	}
	if (ports != NULL) {
		ports->dx = c->dx_port;
		ports->mx[0] = c->mx_ports[0];
		ports->mx[1] = c->mx_ports[1];
	}
}

const char *
dime_dconf_mode_name(enum dime_dconf_mode m)
{
	switch (m) {
	case DIME_DCONF_DMTP: return "dmtp";
	case DIME_DCONF_DUAL: return "dual";
	case DIME_DCONF_SMTP: return "smtp";
	case DIME_DCONF_LMTP_IN: return "lmtp";
	case DIME_DCONF_SOCKETMAP: return "socketmap";
	case DIME_DCONF_POLICY: return "policy";
	}
	return "?";
}

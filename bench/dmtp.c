/* dime-bench dmtp: messages accepted per second by dimed over loopback TLS, with 1, 8 and 64
 * clients that each keep one connection and send MAIL, RCPT, DATA in a loop, against
 * `dime batch accept` over the same kind of messages in the same run, without and with --sync
 * (dimed answers 254 only once the message is durable; plain batch accept fsyncs nothing);
 * medians over --repeat runs; the DATA reply latency (from the final "." to the 254) per
 * message; dimed's memory per idle connection.
 * docs/capacity.md, "DMTP". */

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "dime/codec.h"
#include "dime/msg_armor.h"
#include "fixture.h"

#define DMTP_MAX_LEVELS 8
#define DMTP_MAX_REPEAT 15

struct dmtp_opts {
	unsigned levels[DMTP_MAX_LEVELS];
	size_t n_levels;
	size_t count;	 /* messages per level and repeat */
	unsigned repeat; /* runs per level; medians are reported */
	size_t size;
	unsigned idle; /* idle connections for the memory figure */
	unsigned workers;
	const char *dimed, *dime, *out;
};

struct dmtp_msg {
	char *armor; /* the DATA payload: armored message, LF lines, ".\n" appended */
	size_t len;
	uint8_t *bin; /* the binary message, for the batch baseline */
	size_t bin_len;
};

struct dmtp_run {
	const struct dmtp_opts *o;
	struct dmtp_msg *msgs;
	size_t first, n;     /* this level's messages: msgs[first, first + n) */
	_Atomic size_t next; /* the next message to send */
	_Atomic size_t ok, dup, failed;
	double *lat_ms; /* per message */
	unsigned port;
	char from[256], to[256]; /* "MAIL FROM=<...> FINGERPRINT=[...]\n", RCPT likewise */
	char err[256];
	pthread_mutex_t mu;
};

static int
dmtp_usage(int status)
{
	FILE *f = status == 0 ? stdout : stderr;

	fprintf(
	    f,
	    "usage: dime-bench dmtp [--clients LIST] [--count N] [--repeat R] [--size SIZE]\n"
	    "                       [--idle N] [--workers N] [--dimed PATH] [--dime PATH]\n"
	    "                       [--out DIR]\n"
	    "\n"
	    "Starts dimed on a loopback port with a temporary store holding both benchmark\n"
	    "organisations, then for each client count sends N distinct origin-signed messages\n"
	    "over DMTP (implicit TLS, one connection per client, reused) and reports accepted\n"
	    "msg/s, the p50/p99 DATA reply latency and the ratios to `dime batch accept` and to\n"
	    "`dime batch accept --sync` over N messages of the same size, both run just before\n"
	    "(dimed acknowledges only durable messages; plain batch accept fsyncs nothing);\n"
	    "each figure is the median of R runs with fresh messages. Then dimed's RSS growth\n"
	    "per idle TLS connection.\n"
	    "\n"
	    "  --clients LIST  concurrent clients (default: 1,8,64)\n"
	    "  --count N       messages per client count and run (default: 2000)\n"
	    "  --repeat R      runs per client count, medians reported (default: 1, at most 15)\n"
	    "  --size SIZE     mail size, 1k,10k,100k or bytes (default: 10k)\n"
	    "  --idle N        idle connections for the memory figure (default: 500; 0: skip)\n"
	    "  --workers N     dimed's and the batch's workers (default: the online CPUs)\n"
	    "  --dimed PATH    the daemon (default: dimed beside dime-bench)\n"
	    "  --dime PATH     the CLI for the batch baseline (default: dime beside dime-bench)\n"
	    "  --out DIR       dmtp.csv and dmtp.json (default: build/bench-out)\n");
	return status;
}

/* ---- a blocking DMTP client: TLS 1.2, the one cipher, LF lines ---- */

struct dconn {
	int fd;
	SSL *ssl;
	char buf[8192];
	size_t have, off;
};

static SSL_CTX *
dmtp_client_ctx(void)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());

	if (c == NULL)
		return NULL;
	if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(c, "ECDHE-RSA-AES256-GCM-SHA384") != 1) {
		SSL_CTX_free(c);
		return NULL;
	}
	/* DIME authenticates the server by its management record's tls= field, not X.509 */
	SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	return c;
}

static void
dconn_close(struct dconn *c)
{
	if (c->ssl != NULL) {
		(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->fd >= 0)
		close(c->fd);
	c->ssl = NULL;
	c->fd = -1;
}

static int
dconn_tcp(unsigned port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One line (LF included) into line (cap). Returns: its length, or -1. */
static long
dconn_line(struct dconn *c, char *line, size_t cap)
{
	size_t n = 0;

	for (;;) {
		while (c->off < c->have) {
			char ch = c->buf[c->off++];

			if (n + 1 < cap)
				line[n++] = ch;
			if (ch == '\n') {
				line[n] = 0;
				return (long)n;
			}
		}
		int r = SSL_read(c->ssl, c->buf, (int)sizeof(c->buf));

		if (r <= 0)
			return -1;
		c->have = (size_t)r;
		c->off = 0;
	}
}

/* A whole reply (the lines "NNN-..." up to "NNN ..."). Returns: its code, or -1. */
static int
dconn_reply(struct dconn *c, char *last, size_t cap)
{
	for (;;) {
		long n = dconn_line(c, last, cap);

		if (n > 0 && last[n - 1] == '\n')
			last[--n] = 0;
		if (n < 4 || last[0] < '2' || last[0] > '5')
			return -1;
		if (last[3] != '-')
			return atoi(last);
	}
}

static int
dconn_send(struct dconn *c, const void *p, size_t n)
{
	const char *q = p;

	while (n > 0) {
		int w = SSL_write(c->ssl, q, n > (1u << 30) ? 1 << 30 : (int)n);

		if (w <= 0)
			return -1;
		q += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Connect, TLS, banner 220, EHLO 250. Returns: 0 or -1 (why in err). */
static int
dconn_open(struct dconn *c, SSL_CTX *ctx, unsigned port, char *err, size_t errlen)
{
	char line[600];

	memset(c, 0, sizeof(*c));
	if ((c->fd = dconn_tcp(port)) < 0) {
		snprintf(err, errlen, "connect 127.0.0.1:%u: %s", port, strerror(errno));
		return -1;
	}
	if ((c->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
	    SSL_set_tlsext_host_name(c->ssl, "localhost") != 1 || SSL_connect(c->ssl) != 1) {
		snprintf(err, errlen, "TLS handshake failed: %s",
			 ERR_reason_error_string(ERR_get_error()));
		dconn_close(c);
		return -1;
	}
	if (dconn_reply(c, line, sizeof(line)) != 220 ||
	    dconn_send(c, "EHLO <bench.example>\n", 21) != 0 ||
	    dconn_reply(c, line, sizeof(line)) != 250) {
		snprintf(err, errlen, "banner or EHLO refused: %.200s", line);
		dconn_close(c);
		return -1;
	}
	return 0;
}

/* ---- one client count ---- */

static void *
dmtp_client(void *arg)
{
	struct dmtp_run *r = arg;
	SSL_CTX *ctx = dmtp_client_ctx();
	struct dconn c;
	char line[600], err[256];
	size_t i;

	if (ctx == NULL || dconn_open(&c, ctx, r->port, err, sizeof(err)) != 0) {
		pthread_mutex_lock(&r->mu);
		snprintf(r->err, sizeof(r->err), "%s", ctx == NULL ? "no TLS context" : err);
		pthread_mutex_unlock(&r->mu);
		SSL_CTX_free(ctx);
		return NULL;
	}
	while ((i = atomic_fetch_add(&r->next, 1)) < r->n) {
		const struct dmtp_msg *m = &r->msgs[r->first + i];
		uint64_t t0;
		int code;

		if (dconn_send(&c, r->from, strlen(r->from)) != 0 ||
		    dconn_reply(&c, line, sizeof(line)) != 250 ||
		    dconn_send(&c, r->to, strlen(r->to)) != 0 ||
		    dconn_reply(&c, line, sizeof(line)) != 250 ||
		    dconn_send(&c, "DATA\n", 5) != 0 ||
		    dconn_reply(&c, line, sizeof(line)) != 354) {
			atomic_fetch_add(&r->failed, 1);
			pthread_mutex_lock(&r->mu);
			snprintf(r->err, sizeof(r->err), "transaction refused: %.200s", line);
			pthread_mutex_unlock(&r->mu);
			break;
		}
		if (dconn_send(&c, m->armor, m->len) != 0)
			break;
		t0 = bench_now_ns();
		code = dconn_reply(&c, line, sizeof(line));
		r->lat_ms[i] = (double)(bench_now_ns() - t0) / 1e6;
		if (code == 254) {
			atomic_fetch_add(&r->ok, 1);
		} else if (code == 255) {
			atomic_fetch_add(&r->dup, 1);
		} else {
			atomic_fetch_add(&r->failed, 1);
			pthread_mutex_lock(&r->mu);
			snprintf(r->err, sizeof(r->err), "DATA: %.200s", line);
			pthread_mutex_unlock(&r->mu);
			if (code < 0)
				break;
		}
	}
	(void)dconn_send(&c, "QUIT\n", 5);
	dconn_close(&c);
	SSL_CTX_free(ctx);
	return NULL;
}

/* ---- setup: certificate, messages, the daemon ---- */

/* A self-signed RSA-2048 certificate for localhost into dir/tls.crt and dir/tls.key. */
static int
dmtp_cert(const char *dir)
{
	char path[600];
	EVP_PKEY *k = EVP_RSA_gen(2048);
	X509 *x = X509_new();
	FILE *f = NULL;
	int ok = 0;

	if (k == NULL || x == NULL)
		goto out;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	if (X509_sign(x, k, EVP_sha256()) <= 0)
		goto out;
	snprintf(path, sizeof(path), "%s/tls.crt", dir);
	if ((f = fopen(path, "w")) == NULL || PEM_write_X509(f, x) != 1 || fclose(f) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/tls.key", dir);
	f = NULL;
	if ((f = fopen(path, "w")) == NULL || fchmod(fileno(f), 0600) != 0 ||
	    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) != 1 || fclose(f) != 0)
		goto out;
	f = NULL;
	ok = 1;
out:
	if (f != NULL)
		fclose(f);
	X509_free(x);
	EVP_PKEY_free(k);
	return ok ? 0 : -1;
}

/* n distinct origin-signed messages of size bytes, binary and armored for DATA. */
static int
dmtp_msgs(const struct bench_fix *f, struct dmtp_msg *m, size_t n, size_t size)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t *mail = bench_mail_new(size, 0x5eed0000u + i);
		char *a = NULL;
		size_t alen = 0;
		int rc;

		if (mail == NULL)
			return -1;
		rc = bench_input_new(f, &m[i].bin, &m[i].bin_len, BENCH_ACCEPT, mail, size);
		free(mail);
		if (rc != DIME_OK ||
		    dime_msg_armor(&a, &alen, m[i].bin, m[i].bin_len, NULL, 1) != DIME_OK)
			return -1;
		/* armor lines never start with '.', so no dot-stuffing; then the end mark */
		if ((m[i].armor = malloc(alen + 3)) == NULL) {
			free(a);
			return -1;
		}
		memcpy(m[i].armor, a, alen);
		m[i].len = alen;
		if (m[i].len > 0 && m[i].armor[m[i].len - 1] != '\n')
			m[i].armor[m[i].len++] = '\n';
		memcpy(m[i].armor + m[i].len, ".\n", 2);
		m[i].len += 2;
		free(a);
	}
	return 0;
}

/* A loopback port free now (the daemon binds it a moment later). */
static unsigned
dmtp_free_port(void)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	unsigned port = 0;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &al) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static pid_t
dmtp_start(const struct dmtp_opts *o, const char *dir, unsigned port, unsigned workers)
{
	char conf[600], logp[600];
	FILE *f;
	pid_t pid;

	snprintf(conf, sizeof(conf), "%s/dimed.conf", dir);
	if ((f = fopen(conf, "w")) == NULL)
		return -1;
	fprintf(f,
		"hostname = localhost\n"
		"store = %s/dime.db\n"
		"spool = %s/spool\n"
		"maildir_root = %s/mail\n"
		"listen = 127.0.0.1:%u dmtp\n"
		"workers = %u\n"
		"max_conns = 100000\n"
		"max_conns_per_ip = 100000\n"
		"max_cmds = 1000000\n"
		"log_level = warning\n"
		"[tls]\n"
		"cert = %s/tls.crt\n"
		"key = %s/tls.key\n",
		dir, dir, dir, port, workers, dir, dir);
	if (fclose(f) != 0)
		return -1;
	snprintf(logp, sizeof(logp), "%s/dimed.log", dir);
	if ((pid = fork()) == 0) {
		int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(o->dimed, o->dimed, "--config", conf, (char *)NULL);
		_exit(127);
	}
	if (pid < 0)
		return -1;
	bench_tmpdir_child(pid);
	/* up when it takes a connection */
	for (int i = 0; i < 200; i++) {
		int fd = dconn_tcp(port), st;

		if (fd >= 0) {
			close(fd);
			return pid;
		}
		if (waitpid(pid, &st, WNOHANG) == pid)
			break;
		usleep(50000);
	}
	fprintf(stderr, "dime-bench dmtp: dimed did not start (log: %s)\n", logp);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static long
dmtp_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	fclose(f);
	return kib;
}

/* `dime batch accept` (with --sync when sync) over msgs[first, first + n) written to
 * dir/batch-in. Returns: msg/s or -1. */
static double
dmtp_batch(const struct dmtp_opts *o, const char *dir, const struct dmtp_msg *m, size_t n,
	   unsigned workers, int sync)
{
	char in[600], out[600], path[1300], store[600], w[16];
	uint64_t t0;
	pid_t pid;
	int st;

	snprintf(in, sizeof(in), "%s/batch-in", dir);
	snprintf(out, sizeof(out), "%s/batch-out", dir);
	snprintf(store, sizeof(store), "%s/dime.db", dir);
	snprintf(w, sizeof(w), "%u", workers);
	if (mkdir(in, 0700) != 0 && errno != EEXIST)
		return -1;
	for (size_t i = 0; i < n; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/m%zu.dime", in, i);
		if ((f = fopen(path, "w")) == NULL ||
		    fwrite(m[i].bin, 1, m[i].bin_len, f) != m[i].bin_len || fclose(f) != 0)
			return -1;
	}
	t0 = bench_now_ns();
	if ((pid = fork()) == 0) {
		int fd = open("/dev/null", O_WRONLY);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(o->dime, o->dime, "--store", store, "batch", "accept", "--in", in, "--out",
		      out, "--workers", w, sync ? "--sync" : "--no-sync", (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -1;
	double s = (double)(bench_now_ns() - t0) / 1e9;

	/* the next level writes its own inputs and outputs */
	snprintf(path, sizeof(path), "rm -rf '%s' '%s'", in, out);
	if (system(path) != 0)
		return -1;
	return (double)n / s;
}

static int
dmtp_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* "MAIL FROM=<dom> FINGERPRINT=[fp]" (verb "MAIL FROM") or "RCPT TO=..." with s's full
 * fingerprint. */
static int
dmtp_fp_line(char *out, size_t cap, const char *verb, const char *dom, const struct dime_signet *s)
{
	uint8_t fp[DIME_FP_BYTES];
	char b[DIME_FP_B64_LEN + 1];
	size_t n = 0;

	if (dime_signet_fingerprint(fp, s, DIME_FP_FULL) != DIME_OK ||
	    dime_b64_encode(b, sizeof(b), &n, fp, sizeof(fp), DIME_B64_NOPAD) != DIME_OK)
		return -1;
	b[n] = 0;
	snprintf(out, cap, "%s=<%s> FINGERPRINT=[%s]\n", verb, dom, b);
	return 0;
}

static int
dmtp_levels(struct dmtp_opts *o, const char *v)
{
	char buf[128], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", v);
	o->n_levels = 0;
	for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		long x = strtol(t, NULL, 10);

		if (x < 1 || x > 4096 || o->n_levels == DMTP_MAX_LEVELS)
			return -1;
		o->levels[o->n_levels++] = (unsigned)x;
	}
	return o->n_levels > 0 ? 0 : -1;
}

/* The binary beside dime-bench (same build), else name on the PATH. */
static const char *
dmtp_beside(char *out, size_t cap, const char *name)
{
	char self[512];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n > 0) {
		self[n] = 0;
		if ((slash = strrchr(self, '/')) != NULL) {
			*slash = 0;
			snprintf(out, cap, "%s/%s", self, name);
			if (access(out, X_OK) == 0)
				return out;
		}
	}
	return name;
}

int
bench_dmtp_main(int argc, char **argv)
{
	static char dimed_path[600], dime_path[600];
	struct dmtp_opts o = {.levels = {1, 8, 64},
			      .n_levels = 3,
			      .count = 2000,
			      .repeat = 1,
			      .size = 10240,
			      .idle = 500,
			      .out = "build/bench-out"};
	struct bench_machine mach;
	struct bench_fix f;
	struct dmtp_msg *msgs = NULL;
	char dir[256] = "", path[700], mline[256];
	const char *why = "";
	unsigned port;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	pid_t pid = -1;
	FILE *csv = NULL, *js = NULL;
	size_t total = 0;
	int rc = 1;
	struct rlimit rl;

	o.workers = ncpu > 0 ? (unsigned)ncpu : 1;
	o.dimed = dmtp_beside(dimed_path, sizeof(dimed_path), "dimed");
	o.dime = dmtp_beside(dime_path, sizeof(dime_path), "dime");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
			return dmtp_usage(0);
		if (v == NULL)
			return dmtp_usage(2);
		if (strcmp(a, "--clients") == 0) {
			if (dmtp_levels(&o, v) != 0)
				return dmtp_usage(2);
		} else if (strcmp(a, "--count") == 0) {
			if ((o.count = strtoul(v, NULL, 10)) == 0)
				return dmtp_usage(2);
		} else if (strcmp(a, "--repeat") == 0) {
			o.repeat = (unsigned)strtoul(v, NULL, 10);
			if (o.repeat == 0 || o.repeat > DMTP_MAX_REPEAT)
				return dmtp_usage(2);
		} else if (strcmp(a, "--size") == 0) {
			if ((o.size = bench_size_parse(v)) == 0)
				return dmtp_usage(2);
		} else if (strcmp(a, "--idle") == 0) {
			o.idle = (unsigned)strtoul(v, NULL, 10);
		} else if (strcmp(a, "--workers") == 0) {
			if ((o.workers = (unsigned)strtoul(v, NULL, 10)) == 0)
				return dmtp_usage(2);
		} else if (strcmp(a, "--dimed") == 0) {
			o.dimed = v;
		} else if (strcmp(a, "--dime") == 0) {
			o.dime = v;
		} else if (strcmp(a, "--out") == 0) {
			o.out = v;
		} else {
			return dmtp_usage(2);
		}
		i++;
	}
	signal(SIGPIPE, SIG_IGN);
	/* every client and idle connection is a descriptor here and in dimed */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (bench_fix_init(&f, &why) != DIME_OK) {
		fprintf(stderr, "dime-bench dmtp: fixture: %s\n", why);
		return 1;
	}
	bench_machine_init(&mach);
	if (bench_tmpdir_new(dir, sizeof(dir), "dime-bench-dmtp", NULL) != 0) {
		perror("dime-bench dmtp: temporary directory");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/dime.db", dir);
	total = o.count * o.n_levels * o.repeat;
	fprintf(stderr, "dime-bench dmtp: %zu messages of %zu bytes, dimed %s\n", total, o.size,
		o.dimed);
	if (bench_store_fill(&f, path) != DIME_OK || dmtp_cert(dir) != 0 ||
	    (msgs = calloc(total, sizeof(*msgs))) == NULL ||
	    dmtp_msgs(&f, msgs, total, o.size) != 0) {
		fprintf(stderr, "dime-bench dmtp: setup failed\n");
		goto out;
	}
	if ((port = dmtp_free_port()) == 0 || (pid = dmtp_start(&o, dir, port, o.workers)) < 0)
		goto out;
	if (mkdir(o.out, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "dime-bench dmtp: %s: %s\n", o.out, strerror(errno));
		goto out;
	}
	snprintf(path, sizeof(path), "%s/dmtp.csv", o.out);
	if ((csv = fopen(path, "w")) == NULL)
		goto out;
	fprintf(csv, "clients,messages,repeat,accepted,duplicate,failed,msgs_per_s,"
		     "batch_accept_msgs_per_s,vs_batch,batch_accept_sync_msgs_per_s,vs_batch_sync,"
		     "data_p50_ms,data_p99_ms,workers\n");
	snprintf(path, sizeof(path), "%s/dmtp.json", o.out);
	if ((js = fopen(path, "w")) == NULL)
		goto out;
	fprintf(js, "{\n");
	bench_machine_json(js, &mach);
	fprintf(js, "  \"size\": %zu, \"workers\": %u, \"repeat\": %u,\n  \"levels\": [", o.size,
		o.workers, o.repeat);
	printf("%8s %9s %9s %9s %9s %9s %9s %9s %s\n", "clients", "msg/s", "batch/s", "vs batch",
	       "sync/s", "vs sync", "p50 ms", "p99 ms", "failed");
	for (size_t l = 0; l < o.n_levels; l++) {
		/* per repeat, then sorted for the medians: dimed msg/s, batch msg/s, batch --sync
		 * msg/s, the two same-run ratios, p50, p99 */
		double m[7][DMTP_MAX_REPEAT];
		size_t ok = 0, dup = 0, failed = 0;
		char err[256] = "";

		for (unsigned rep = 0; rep < o.repeat; rep++) {
			struct dmtp_run r;
			pthread_t *th;
			uint64_t t0;
			double secs, rate, base, bsync, p50 = 0, p99 = 0;
			size_t got;

			memset(&r, 0, sizeof(r));
			r.o = &o;
			r.msgs = msgs;
			r.first = (l * o.repeat + rep) * o.count;
			r.n = o.count;
			r.port = port;
			pthread_mutex_init(&r.mu, NULL);
			if (dmtp_fp_line(r.from, sizeof(r.from), "MAIL FROM", BENCH_ORG_A,
					 f.org_a) != 0 ||
			    dmtp_fp_line(r.to, sizeof(r.to), "RCPT TO", BENCH_ORG_B, f.org_b) !=
				0 ||
			    (r.lat_ms = calloc(o.count, sizeof(double))) == NULL ||
			    (th = calloc(o.levels[l], sizeof(*th))) == NULL)
				goto out;
			base = dmtp_batch(&o, dir, msgs + r.first, o.count, o.workers, 0);
			bsync = dmtp_batch(&o, dir, msgs + r.first, o.count, o.workers, 1);
			t0 = bench_now_ns();
			for (unsigned c = 0; c < o.levels[l]; c++)
				if (pthread_create(&th[c], NULL, dmtp_client, &r) != 0)
					th[c] = 0;
			for (unsigned c = 0; c < o.levels[l]; c++)
				if (th[c] != 0)
					pthread_join(th[c], NULL);
			secs = (double)(bench_now_ns() - t0) / 1e9;
			got = atomic_load(&r.ok) + atomic_load(&r.dup);
			rate = (double)atomic_load(&r.ok) / secs;
			if (got > 0) {
				size_t k = 0;

				for (size_t i = 0; i < o.count; i++)
					if (r.lat_ms[i] > 0)
						r.lat_ms[k++] = r.lat_ms[i];
				qsort(r.lat_ms, k, sizeof(double), dmtp_cmp);
				p50 = r.lat_ms[k / 2];
				p99 = r.lat_ms[k * 99 / 100 < k ? k * 99 / 100 : k - 1];
			}
			m[0][rep] = rate;
			m[1][rep] = base;
			m[2][rep] = bsync;
			m[3][rep] = base > 0 ? rate / base : 0;
			m[4][rep] = bsync > 0 ? rate / bsync : 0;
			m[5][rep] = p50;
			m[6][rep] = p99;
			ok += atomic_load(&r.ok);
			dup += atomic_load(&r.dup);
			failed += atomic_load(&r.failed);
			if (r.err[0] != 0)
				snprintf(err, sizeof(err), "%s", r.err);
			free(th);
			free(r.lat_ms);
			pthread_mutex_destroy(&r.mu);
		}
		for (size_t k = 0; k < 7; k++)
			qsort(m[k], o.repeat, sizeof(double), dmtp_cmp);
#define DMTP_MED(k) m[k][o.repeat / 2]
		printf("%8u %9.0f %9.0f %8.2fx %9.0f %8.2fx %9.2f %9.2f %zu%s%s\n", o.levels[l],
		       DMTP_MED(0), DMTP_MED(1), DMTP_MED(3), DMTP_MED(2), DMTP_MED(4), DMTP_MED(5),
		       DMTP_MED(6), failed, err[0] ? " " : "", err);
		fprintf(csv, "%u,%zu,%u,%zu,%zu,%zu,%.1f,%.1f,%.3f,%.1f,%.3f,%.3f,%.3f,%u\n",
			o.levels[l], o.count, o.repeat, ok, dup, failed, DMTP_MED(0), DMTP_MED(1),
			DMTP_MED(3), DMTP_MED(2), DMTP_MED(4), DMTP_MED(5), DMTP_MED(6), o.workers);
		fprintf(js,
			"%s\n    {\"clients\": %u, \"accepted\": %zu, \"failed\": %zu, "
			"\"msgs_per_s\": %.1f, \"batch_accept_msgs_per_s\": %.1f, "
			"\"vs_batch\": %.3f, \"batch_accept_sync_msgs_per_s\": %.1f, "
			"\"vs_batch_sync\": %.3f, \"data_p50_ms\": %.3f, \"data_p99_ms\": %.3f}",
			l ? "," : "", o.levels[l], ok, failed, DMTP_MED(0), DMTP_MED(1),
			DMTP_MED(3), DMTP_MED(2), DMTP_MED(4), DMTP_MED(5), DMTP_MED(6));
#undef DMTP_MED
	}
	fprintf(js, "\n  ],\n");
	if (o.idle > 0) {
		SSL_CTX *ctx = dmtp_client_ctx();
		struct dconn *cs = calloc(o.idle, sizeof(*cs));
		unsigned opened = 0;
		long before, after;
		char err[256];

		sleep(1);
		before = dmtp_rss_kib(pid);
		for (; ctx != NULL && cs != NULL && opened < o.idle; opened++)
			if (dconn_open(&cs[opened], ctx, port, err, sizeof(err)) != 0) {
				fprintf(stderr, "dime-bench dmtp: idle connection %u: %s\n", opened,
					err);
				break;
			}
		sleep(1);
		after = dmtp_rss_kib(pid);
		if (opened > 0 && before > 0 && after > 0) {
			double per = (double)(after - before) * 1024.0 / opened;

			printf("idle: %u TLS connections after EHLO, dimed RSS +%ld KiB: %.1f KiB "
			       "per connection\n",
			       opened, after - before, per / 1024.0);
			fprintf(
			    js,
			    "  \"idle_connections\": %u, \"idle_bytes_per_connection\": %.0f,\n",
			    opened, per);
		}
		for (unsigned i = 0; i < opened; i++)
			dconn_close(&cs[i]);
		free(cs);
		SSL_CTX_free(ctx);
	}
	bench_machine_end(&mach);
	bench_machine_line(mline, sizeof(mline), &mach);
	printf("%s\n", mline);
	fprintf(js, "  \"done\": true\n}\n");
	rc = 0;
out:
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
		bench_tmpdir_child(0);
	}
	if (csv != NULL)
		fclose(csv);
	if (js != NULL)
		fclose(js);
	if (msgs != NULL)
		for (size_t i = 0; i < total; i++) {
			free(msgs[i].armor);
			free(msgs[i].bin);
		}
	free(msgs);
	if (dir[0] != 0)
		bench_tmpdir_remove(dir);
	bench_fix_fini(&f);
	return rc;
}

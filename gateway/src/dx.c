/* The outbound DMTP connection (dime/dx.h): resolve, connect and speak TLS with poll()
 * deadlines around the client session machine (dime/dmtp_client.h), which alone decides what
 * is said; and the order of hosts to try for a destination (its dx values, then its MX hosts).
 * TLS runs over memory BIOs so every socket write is send(MSG_NOSIGNAL): no SIGPIPE. */

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "dime/dns.h"
#include "dime/dx.h"
#include "dime/mrloc.h"
#include "dime/sigres.h"

#define DX_CIPHER	"ECDHE-RSA-AES256-GCM-SHA384" /* spec Part 7: the one DMTP suite */
#define DX_RSA_MIN_BITS 2048			      /* spec Part 7 "Certificates" */
#define DX_ADDRS_MAX	16u			      /* addresses of one host tried */
#define DX_IN_CAP	16384u			      /* plaintext read ahead */
#define DX_CHUNK	16384u			      /* plaintext per TLS write */
#define DX_MX_MAX	64u			      /* MX records looked at */

struct dx_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

struct dime_dx {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *rbio, *wbio; /* owned by ssl */
	struct dime_dmtp_client *c;
	unsigned tls;	   /* DIME_SR_TLS_* */
	int broken;	   /* the connection failed: close at once, no QUIT */
	int have_result;   /* a result is out: result_done before anything else */
	uint64_t deadline; /* monotonic ms: the current wait ends here */
	unsigned connect_ms, reply_ms, data_ms;
	const char *ca_file;
	char host[256];
	char name[320]; /* host[addr]:port */
	char err[256];	/* what the I/O layer saw */
	size_t in_off, in_len;
	uint8_t in[DX_IN_CAP];
};

static uint64_t
dx_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static void dx_why(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
dx_why(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || cap == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
}

/* The I/O layer's failure: x->err says what, and the connection is over. Returns -1. */
static int dx_fail(struct dime_dx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
dx_fail(struct dime_dx *x, const char *fmt, ...)
{
	va_list ap;

	if (!x->broken) {
		va_start(ap, fmt);
		vsnprintf(x->err, sizeof(x->err), fmt, ap);
		va_end(ap);
	}
	x->broken = 1;
	return -1;
}

/* The last OpenSSL error as text (the queue is cleared). */
static const char *
dx_ssl_err(char *buf, size_t cap)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(buf, cap, "failed");
	else
		ERR_error_string_n(e, buf, cap);
	ERR_clear_error();
	return buf;
}

/* Start the timer of the wait that begins now: the DATA reply's long one while the machine
 * waits for it, else one reply's (spec Part 7 "Timeouts": counted from the last complete line
 * sent or received). */
static void
dx_arm(struct dime_dx *x)
{
	unsigned a = x->c != NULL ? dime_dmtp_client_actions(x->c) : 0;

	x->deadline = dx_now() + ((a & DIME_DMTP_CLIENT_ACT_DATA) ? x->data_ms : x->reply_ms);
}

/* Wait for events on the socket until the deadline. Returns: 0, or -1 (timed out, failed). */
static int
dx_wait(struct dime_dx *x, short events)
{
	for (;;) {
		struct pollfd p = {x->fd, events, 0};
		uint64_t now = dx_now();
		int r;

		if (now >= x->deadline)
			return dx_fail(x, "timed out");
		r = poll(&p, 1, (int)(x->deadline - now > 60000u ? 60000u : x->deadline - now));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return dx_fail(x, "poll: %s", strerror(errno));
	}
}

/* ---- raw socket I/O ---- */

static int
dx_send_raw(struct dime_dx *x, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t k = send(x->fd, p, n, MSG_NOSIGNAL);

		if (k > 0) {
			p += k;
			n -= (size_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (dx_wait(x, POLLOUT) != 0)
				return -1;
			continue;
		}
		return dx_fail(x, "send: %s", k < 0 ? strerror(errno) : "nothing sent");
	}
	return 0;
}

/* Some bytes into p (at most cap). Returns: the count (> 0), or -1 (closed, failed, timed
 * out). */
static ssize_t
dx_recv_raw(struct dime_dx *x, uint8_t *p, size_t cap)
{
	for (;;) {
		ssize_t k = recv(x->fd, p, cap, 0);

		if (k > 0)
			return k;
		if (k == 0)
			return dx_fail(x, "the server closed the connection");
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return dx_fail(x, "recv: %s", strerror(errno));
		if (dx_wait(x, POLLIN) != 0)
			return -1;
	}
}

/* ---- TLS over memory BIOs ---- */

/* Send whatever TLS has written. */
static int
dx_flush_tls(struct dime_dx *x)
{
	uint8_t buf[4096];

	while (BIO_ctrl_pending(x->wbio) > 0) {
		int n = BIO_read(x->wbio, buf, (int)sizeof(buf));

		if (n <= 0)
			return dx_fail(x, "TLS: cannot take its output");
		if (dx_send_raw(x, buf, (size_t)n) != 0)
			return -1;
	}
	return 0;
}

/* Feed TLS the socket's next bytes. */
static int
dx_fill_tls(struct dime_dx *x)
{
	uint8_t buf[4096];
	ssize_t n = dx_recv_raw(x, buf, sizeof(buf));

	if (n < 0)
		return -1;
	if (BIO_write(x->rbio, buf, (int)n) != (int)n)
		return dx_fail(x, "TLS: cannot take its input");
	return 0;
}

/* One TLS call (0 handshake, 1 read, 2 write) to completion. Returns: what it returned (> 0),
 * or -1 (x->err set). */
static int
dx_tls_call(struct dime_dx *x, int what, void *p, int n)
{
	for (;;) {
		char e[200];
		int r = what == 0   ? SSL_do_handshake(x->ssl)
			: what == 1 ? SSL_read(x->ssl, p, n)
				    : SSL_write(x->ssl, p, n);
		int err = r > 0 ? SSL_ERROR_NONE : SSL_get_error(x->ssl, r);

		if (dx_flush_tls(x) != 0)
			return -1;
		if (r > 0)
			return r;
		if (err == SSL_ERROR_WANT_READ) {
			if (dx_fill_tls(x) != 0)
				return -1;
			continue;
		}
		if (err == SSL_ERROR_ZERO_RETURN)
			return dx_fail(x, "the server closed the TLS session");
		return dx_fail(x, "TLS %s: %s",
			       what == 0   ? "handshake"
			       : what == 1 ? "read"
					   : "write",
			       dx_ssl_err(e, sizeof(e)));
	}
}

/* ---- plaintext (DMTP) I/O ---- */

static int
dx_write(struct dime_dx *x, const uint8_t *p, size_t n)
{
	while (n > 0) {
		size_t k = n > DX_CHUNK ? DX_CHUNK : n;

		if (x->ssl != NULL) {
			if (dx_tls_call(x, 2, (void *)(uintptr_t)p, (int)k) != (int)k)
				return x->broken ? -1 : dx_fail(x, "TLS write: short");
		} else if (dx_send_raw(x, p, k) != 0) {
			return -1;
		}
		p += k;
		n -= k;
		dx_arm(x); /* lines went out: the wait starts again */
	}
	return 0;
}

/* Read more plaintext into x->in. */
static int
dx_read(struct dime_dx *x)
{
	size_t room;
	ssize_t got;

	if (x->in_off == x->in_len) {
		x->in_off = x->in_len = 0;
	} else if (x->in_off > 0) {
		memmove(x->in, x->in + x->in_off, x->in_len - x->in_off);
		x->in_len -= x->in_off;
		x->in_off = 0;
	}
	room = sizeof(x->in) - x->in_len;
	DIME_ASSERT(room > 0); /* the machine takes partial lines into its own buffer */
	if (x->ssl != NULL)
		got = dx_tls_call(x, 1, x->in + x->in_len, (int)room);
	else
		got = dx_recv_raw(x, x->in + x->in_len, room);
	if (got <= 0)
		return -1;
	if (memchr(x->in + x->in_len, '\n', (size_t)got) != NULL)
		dx_arm(x); /* a complete line arrived */
	x->in_len += (size_t)got;
	return 0;
}

/* Move bytes until the machine needs its caller. Returns: its actions (TLS, READY, RESULT or
 * CLOSE), or 0 when the connection failed (x->broken, x->err). */
static unsigned
dx_pump(struct dime_dx *x)
{
	dx_arm(x);
	for (;;) {
		size_t n;
		const uint8_t *p = dime_dmtp_client_out(x->c, &n);
		unsigned a;

		if (n > 0) {
			if (dx_write(x, p, n) != 0)
				return 0;
			dime_dmtp_client_out_done(x->c, n);
			continue;
		}
		a = dime_dmtp_client_actions(x->c);
		if (a & (DIME_DMTP_CLIENT_ACT_TLS | DIME_DMTP_CLIENT_ACT_READY |
			 DIME_DMTP_CLIENT_ACT_RESULT | DIME_DMTP_CLIENT_ACT_CLOSE))
			return a;
		if (x->in_off < x->in_len) {
			size_t used =
			    dime_dmtp_client_feed(x->c, x->in + x->in_off, x->in_len - x->in_off);

			x->in_off += used;
			if (used > 0)
				continue;
		}
		if (dx_read(x) != 0)
			return 0;
	}
}

/* ---- addresses ---- */

struct dx_res {
	struct dx_addr a[DX_ADDRS_MAX];
	size_t n;
	unsigned port;
	int failed, bogus;
	char why_bogus[160];
};

static void
dx_res_add(struct dx_res *r, int af, const void *addr)
{
	struct dx_addr *d;

	if (r->n >= DX_ADDRS_MAX)
		return;
	d = &r->a[r->n++];
	memset(d, 0, sizeof(*d));
	if (af == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)(void *)&d->ss;

		s->sin_family = AF_INET;
		s->sin_port = htons((uint16_t)r->port);
		memcpy(&s->sin_addr, addr, 4);
		d->len = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)(void *)&d->ss;

		s->sin6_family = AF_INET6;
		s->sin6_port = htons((uint16_t)r->port);
		memcpy(&s->sin6_addr, addr, 16);
		d->len = sizeof(*s);
	}
}

static void
dx_on_addr(void *arg, int rc, const struct dime_dns_answer *a)
{
	struct dx_res *r = arg;

	if (rc != DIME_OK || a == NULL) {
		r->failed = 1;
		return;
	}
	if (a->sec == DIME_DNS_BOGUS) {
		/* never used: a forged address could lead anywhere */
		r->bogus = 1;
		snprintf(r->why_bogus, sizeof(r->why_bogus), "%s", a->why_bogus);
		return;
	}
	if (a->rcode != DIME_DNS_NOERROR && a->rcode != DIME_DNS_NXDOMAIN) {
		r->failed = 1;
		return;
	}
	for (size_t i = 0; i < a->n; i++) {
		if (a->type == DIME_DNS_TYPE_A && a->rr_len[i] == 4)
			dx_res_add(r, AF_INET, a->rr[i]);
		else if (a->type == DIME_DNS_TYPE_AAAA && a->rr_len[i] == 16)
			dx_res_add(r, AF_INET6, a->rr[i]);
	}
}

/* Is host an IP address? Out: the address, when out != NULL. */
static int
dx_literal(const char *host, struct dx_res *out)
{
	uint8_t b[16];

	if (inet_pton(AF_INET, host, b) == 1) {
		if (out != NULL)
			dx_res_add(out, AF_INET, b);
		return 1;
	}
	if (inet_pton(AF_INET6, host, b) == 1) {
		if (out != NULL)
			dx_res_add(out, AF_INET6, b);
		return 1;
	}
	return 0;
}

/* host's addresses, A before AAAA. Returns: DIME_OK (r->n > 0), DIME_E_AGAIN (why). */
static int
dx_resolve(struct dx_res *r, const struct dime_dx_conf *conf, const char *host, char *why,
	   size_t why_cap)
{
	if (dx_literal(host, r))
		return DIME_OK;
	if (conf->dns != NULL) {
		static const uint16_t types[2] = {DIME_DNS_TYPE_A, DIME_DNS_TYPE_AAAA};

		for (int i = 0; i < 2; i++)
			if (dime_dns_query_sync(conf->dns, host, types[i], dx_on_addr, r) !=
			    DIME_OK)
				r->failed = 1;
		if (r->bogus) {
			dx_why(why, why_cap, "DNSSEC validation of its address failed (bogus: %s)",
			       r->why_bogus);
			r->n = 0;
			return DIME_E_AGAIN;
		}
	} else {
		struct addrinfo hints, *res = NULL;
		int e;

		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_family = AF_UNSPEC;
		if ((e = getaddrinfo(host, NULL, &hints, &res)) != 0) {
			dx_why(why, why_cap, "cannot resolve: %s", gai_strerror(e));
			return DIME_E_AGAIN;
		}
		for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
			if (ai->ai_family == AF_INET)
				dx_res_add(r, AF_INET,
					   &((const struct sockaddr_in *)(const void *)ai->ai_addr)
						->sin_addr);
			else if (ai->ai_family == AF_INET6)
				dx_res_add(r, AF_INET6,
					   &((const struct sockaddr_in6 *)(const void *)ai->ai_addr)
						->sin6_addr);
		}
		freeaddrinfo(res);
	}
	if (r->n == 0) {
		dx_why(why, why_cap, "%s", r->failed ? "the address lookup failed" : "no address");
		return DIME_E_AGAIN;
	}
	return DIME_OK;
}

static void
dx_addr_text(char *out, size_t cap, const struct dx_addr *a)
{
	const void *p =
	    a->ss.ss_family == AF_INET
		? (const void *)&((const struct sockaddr_in *)(const void *)&a->ss)->sin_addr
		: (const void *)&((const struct sockaddr_in6 *)(const void *)&a->ss)->sin6_addr;

	if (inet_ntop(a->ss.ss_family, p, out, (socklen_t)cap) == NULL)
		snprintf(out, cap, "?");
}

/* Connect to a with a deadline. Returns: the socket (non-blocking), or -1 (*err: errno). */
static int
dx_connect(const struct dx_addr *a, unsigned ms, int *err)
{
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	uint64_t deadline = dx_now() + ms;
	socklen_t sl = sizeof(*err);

	if (fd < 0) {
		*err = errno;
		return -1;
	}
	/* A command and its data go out as separate TLS records: without this, Nagle holds
	 * the second until the first is ACKed, and the peer delays that ACK (40 ms a message). */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0)
		return fd;
	if (errno != EINPROGRESS && errno != EINTR) {
		*err = errno;
		close(fd);
		return -1;
	}
	for (;;) {
		struct pollfd p = {fd, POLLOUT, 0};
		uint64_t now = dx_now();
		int r;

		if (now >= deadline) {
			*err = ETIMEDOUT;
			close(fd);
			return -1;
		}
		r = poll(&p, 1, (int)(deadline - now > 60000u ? 60000u : deadline - now));
		if (r > 0)
			break;
		if (r < 0 && errno != EINTR) {
			*err = errno;
			close(fd);
			return -1;
		}
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &sl) != 0)
		*err = errno;
	if (*err != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- the handshake and the certificate ---- */

/* The client contexts, one per CA bundle, made once per process: building one reads and
 * parses the whole bundle, which every session paid before. Never freed (a handful at most:
 * dimed and the CLI name one bundle). */
#define DX_CTX_CACHE 8

static struct {
	char *ca_file; /* NULL: OpenSSL's default paths */
	SSL_CTX *ctx;
} dx_ctxs[DX_CTX_CACHE];
static size_t dx_n_ctxs;
static pthread_mutex_t dx_ctx_mu = PTHREAD_MUTEX_INITIALIZER;

static SSL_CTX *
dx_ctx_make(const char *ca_file)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, DX_CIPHER) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	/* The handshake never fails on the chain: the outcome is reported (DIME_SR_TLS_CA), and
	 * the record's tls= values are what is enforced. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if ((ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
			     : SSL_CTX_set_default_verify_paths(ctx)) != 1)
		ERR_clear_error(); /* no CA to check against: the CA bit stays clear */
	return ctx;
}

/* A reference to the context for ca_file (the caller frees it with SSL_CTX_free), or NULL. */
static SSL_CTX *
dx_ctx_get(const char *ca_file)
{
	SSL_CTX *ctx = NULL;

	pthread_mutex_lock(&dx_ctx_mu);
	for (size_t i = 0; i < dx_n_ctxs && ctx == NULL; i++)
		if ((ca_file == NULL) == (dx_ctxs[i].ca_file == NULL) &&
		    (ca_file == NULL || strcmp(ca_file, dx_ctxs[i].ca_file) == 0))
			ctx = dx_ctxs[i].ctx;
	if (ctx != NULL) {
		SSL_CTX_up_ref(ctx); /* the caller's reference to the cached one */
	} else if ((ctx = dx_ctx_make(ca_file)) != NULL && dx_n_ctxs < DX_CTX_CACHE) {
		char *copy = ca_file != NULL ? strdup(ca_file) : NULL;

		if (ca_file == NULL || copy != NULL) { /* else served uncached */
			dx_ctxs[dx_n_ctxs].ca_file = copy;
			dx_ctxs[dx_n_ctxs++].ctx = ctx;
			SSL_CTX_up_ref(ctx); /* the cache's own */
		}
	}
	pthread_mutex_unlock(&dx_ctx_mu);
	return ctx;
}

/* TLS 1.2 with the DMTP suite, then the certificate rules of the header. Returns: DIME_OK,
 * DIME_E_AGAIN (x->err), DIME_E_BADSIG (x->err), DIME_E_NOMEM. */
static int
dx_tls(struct dime_dx *x, const struct dime_dx_peer *peer)
{
	X509 *cert = NULL;
	unsigned char *der = NULL;
	X509_VERIFY_PARAM *vp;
	char e[200];
	int der_len, bits, rc = DIME_E_AGAIN;

	if ((x->ctx = dx_ctx_get(x->ca_file)) == NULL) {
		dx_fail(x, "TLS setup: %s", dx_ssl_err(e, sizeof(e)));
		return DIME_E_NOMEM;
	}
	if ((x->ssl = SSL_new(x->ctx)) == NULL || (x->rbio = BIO_new(BIO_s_mem())) == NULL ||
	    (x->wbio = BIO_new(BIO_s_mem())) == NULL) {
		BIO_free(x->rbio);
		x->rbio = NULL;
		dx_fail(x, "TLS setup: out of memory");
		return DIME_E_NOMEM;
	}
	SSL_set_bio(x->ssl, x->rbio, x->wbio);
	SSL_set_connect_state(x->ssl);
	vp = SSL_get0_param(x->ssl);
	X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (dx_literal(peer->host, NULL)) {
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, peer->host) != 1)
			ERR_clear_error();
	} else if (SSL_set_tlsext_host_name(x->ssl, peer->host) != 1 ||
		   X509_VERIFY_PARAM_set1_host(vp, peer->host, 0) != 1) {
		/* SNI is the dx value (spec Part 7 "Single protocol mode") */
		dx_fail(x, "TLS setup: the host name: %s", dx_ssl_err(e, sizeof(e)));
		return DIME_E_AGAIN;
	}
	x->deadline = dx_now() + x->connect_ms;
	if (dx_tls_call(x, 0, NULL, 0) != 1)
		return DIME_E_AGAIN;
	if (SSL_version(x->ssl) != TLS1_2_VERSION ||
	    strcmp(SSL_get_cipher_name(x->ssl), DX_CIPHER) != 0) {
		dx_fail(x, "negotiated %s %s, DMTP needs TLSv1.2 %s", SSL_get_version(x->ssl),
			SSL_get_cipher_name(x->ssl), DX_CIPHER);
		return DIME_E_AGAIN;
	}
	if ((cert = SSL_get1_peer_certificate(x->ssl)) == NULL) {
		dx_fail(x, "the server showed no certificate");
		return DIME_E_AGAIN;
	}
	if ((bits = EVP_PKEY_get_bits(X509_get0_pubkey(cert))) < DX_RSA_MIN_BITS) {
		dx_fail(x, "a certificate key of %d bits, DMTP needs RSA of at least %d", bits,
			DX_RSA_MIN_BITS);
		goto out;
	}
	if ((der_len = i2d_X509(cert, &der)) <= 0) {
		dx_fail(x, "cannot encode the server certificate");
		goto out;
	}
	/* spec Part 4 "TLS": a record with tls= values names the only certificates to talk to */
	if (peer->rec != NULL && peer->rec->n_tls > 0) {
		if (dime_mrec_tls_check(peer->rec, der, (size_t)der_len) != DIME_OK) {
			dx_fail(x, "the certificate matches none of the record's tls= values");
			rc = DIME_E_BADSIG;
			goto out;
		}
		x->tls |= DIME_SR_TLS_RECORD;
	}
	if (SSL_get_verify_result(x->ssl) == X509_V_OK)
		x->tls |= DIME_SR_TLS_CA;
	rc = DIME_OK;
out:
	OPENSSL_free(der);
	X509_free(cert);
	return rc;
}

/* ---- the connection ---- */

static void
dx_free(struct dime_dx *x)
{
	SSL_free(x->ssl); /* frees the BIOs */
	SSL_CTX_free(x->ctx);
	if (x->fd >= 0)
		close(x->fd);
	dime_dmtp_client_free(x->c);
	sodium_memzero(x->in, sizeof(x->in));
	free(x);
}

/* How a session the machine closed ends: a 4xx (or 421) is temporary; anything else the peer
 * said is not DMTP as we speak it. */
static int
dx_closed(struct dime_dx *x, char *why, size_t why_cap)
{
	int code = dime_dmtp_client_last_code(x->c);

	x->broken = 1;
	dx_why(why, why_cap, "%s: %s", x->name, dime_dmtp_client_error(x->c));
	return code >= 400 && code < 500 ? DIME_E_AGAIN : DIME_E_MALFORMED;
}

int
dime_dx_open(struct dime_dx **out, const struct dime_dx_conf *conf, const struct dime_dx_peer *peer,
	     char *why, size_t why_cap)
{
	struct dime_dmtp_client_conf cc;
	struct dime_dx *x = NULL;
	struct dx_res *res = NULL;
	char addr[INET6_ADDRSTRLEN];
	int rc = DIME_E_AGAIN, err = 0;

	if (out != NULL)
		*out = NULL;
	dx_why(why, why_cap, "%s", "");
	if (out == NULL || conf == NULL || peer == NULL || conf->helo == NULL ||
	    conf->helo[0] == 0 || peer->host == NULL || peer->host[0] == 0 ||
	    strlen(peer->host) >= sizeof(x->host) || peer->port == 0 || peer->port > 65535 ||
	    (peer->mode != DIME_DMTP_CLIENT_IMPLICIT && peer->mode != DIME_DMTP_CLIENT_DUAL)) {
		dx_why(why, why_cap, "dx: a bad configuration or peer");
		return DIME_E_INVALID;
	}
	if ((x = calloc(1, sizeof(*x))) == NULL || (res = calloc(1, sizeof(*res))) == NULL) {
		free(x);
		return DIME_E_NOMEM;
	}
	x->fd = -1;
	x->connect_ms =
	    conf->connect_timeout_ms > 0 ? conf->connect_timeout_ms : DIME_DX_CONNECT_TIMEOUT_MS;
	x->reply_ms =
	    conf->reply_timeout_ms > 0 ? conf->reply_timeout_ms : DIME_DX_REPLY_TIMEOUT_MS;
	x->data_ms = conf->data_timeout_ms > 0 ? conf->data_timeout_ms : DIME_DX_DATA_TIMEOUT_MS;
	x->ca_file = conf->ca_file;
	memcpy(x->host, peer->host, strlen(peer->host) + 1);
	snprintf(x->name, sizeof(x->name), "%s:%u", x->host, peer->port);

	res->port = peer->port;
	if ((rc = dx_resolve(res, conf, x->host, x->err, sizeof(x->err))) != DIME_OK) {
		dx_why(why, why_cap, "%s: %s", x->name, x->err);
		goto fail;
	}
	for (size_t i = 0; i < res->n && x->fd < 0; i++) {
		x->fd = dx_connect(&res->a[i], x->connect_ms, &err);
		if (x->fd >= 0)
			dx_addr_text(addr, sizeof(addr), &res->a[i]);
	}
	if (x->fd < 0) {
		dx_why(why, why_cap, "%s: connect: %s (%zu address%s tried)", x->name,
		       strerror(err), res->n, res->n == 1 ? "" : "es");
		rc = DIME_E_AGAIN;
		goto fail;
	}
	snprintf(x->name, sizeof(x->name), "%s[%s]:%u", x->host, addr, peer->port);

	memset(&cc, 0, sizeof(cc));
	cc.mode = peer->mode;
	cc.helo = conf->helo;
	cc.tls_host = x->host;
	if ((rc = dime_dmtp_client_new(&x->c, &cc)) != DIME_OK) {
		dx_why(why, why_cap, "%s: %s", x->name,
		       rc == DIME_E_NOMEM ? "out of memory" : "the helo name or host is refused");
		goto fail;
	}
	if (peer->mode == DIME_DMTP_CLIENT_IMPLICIT && (rc = dx_tls(x, peer)) != DIME_OK) {
		dx_why(why, why_cap, "%s: %s", x->name, x->err);
		goto fail;
	}
	for (;;) {
		unsigned a = dx_pump(x);

		if (x->broken) {
			dx_why(why, why_cap, "%s: %s", x->name, x->err);
			rc = DIME_E_AGAIN;
			goto fail;
		}
		if (a & DIME_DMTP_CLIENT_ACT_READY)
			break;
		if (a & DIME_DMTP_CLIENT_ACT_CLOSE) {
			rc = dx_closed(x, why, why_cap);
			goto fail;
		}
		if (a & DIME_DMTP_CLIENT_ACT_TLS) {
			/* plaintext read past the 220 never crosses into TLS (injection) */
			x->in_off = x->in_len = 0;
			if ((rc = dx_tls(x, peer)) != DIME_OK) {
				dx_why(why, why_cap, "%s: %s", x->name, x->err);
				goto fail;
			}
			dime_dmtp_client_tls_done(x->c, 1);
		}
	}
	free(res);
	*out = x;
	return DIME_OK;
fail:
	free(res);
	dx_free(x);
	return rc;
}

unsigned
dime_dx_tls(const struct dime_dx *x)
{
	return x->tls;
}

const char *
dime_dx_peer_name(const struct dime_dx *x)
{
	return x->name;
}

/* Hand back the last result and get READY again (a refused SEND's RSET). Returns: its actions,
 * 0 when the connection failed. */
static unsigned
dx_settle(struct dime_dx *x)
{
	if (x->have_result) {
		dime_dmtp_client_result_done(x->c);
		x->have_result = 0;
	}
	if (dime_dmtp_client_actions(x->c) & DIME_DMTP_CLIENT_ACT_READY)
		return DIME_DMTP_CLIENT_ACT_READY;
	return dx_pump(x);
}

int
dime_dx_run(struct dime_dx *x, const struct dime_dmtp_client_op *op,
	    const struct dime_dmtp_client_result **r, char *why, size_t why_cap)
{
	const char *w = "";
	unsigned a;
	int rc;

	if (r != NULL)
		*r = NULL;
	dx_why(why, why_cap, "%s", "");
	if (x == NULL || op == NULL || r == NULL)
		return DIME_E_INVALID;
	if (x->broken) {
		dx_why(why, why_cap, "%s: the session is over: %s", x->name, x->err);
		return DIME_E_AGAIN;
	}
	a = dx_settle(x);
	if (x->broken) {
		dx_why(why, why_cap, "%s: %s", x->name, x->err);
		return DIME_E_AGAIN;
	}
	if (!(a & DIME_DMTP_CLIENT_ACT_READY)) {
		(void)dx_closed(x, why, why_cap);
		return DIME_E_AGAIN;
	}
	if ((rc = dime_dmtp_client_submit(x->c, op, &w)) != DIME_OK) {
		dx_why(why, why_cap, "%s: %s", x->name, w);
		if (rc == DIME_E_NOMEM)
			x->broken = 1;
		return rc;
	}
	a = dx_pump(x);
	if (x->broken) {
		dx_why(why, why_cap, "%s: %s", x->name, x->err);
		return DIME_E_AGAIN;
	}
	if (a & DIME_DMTP_CLIENT_ACT_RESULT) {
		*r = dime_dmtp_client_result(x->c);
		x->have_result = 1;
		return DIME_OK;
	}
	/* the server closed (421) or broke the protocol: the session is over either way */
	(void)dx_closed(x, why, why_cap);
	return DIME_E_AGAIN;
}

void
dime_dx_close(struct dime_dx *x)
{
	if (x == NULL)
		return;
	if (!x->broken && x->c != NULL) {
		unsigned a = dx_settle(x);

		if (!x->broken && (a & DIME_DMTP_CLIENT_ACT_READY)) {
			dime_dmtp_client_quit(x->c);
			(void)dx_pump(x); /* 221, then CLOSE */
		}
		if (!x->broken && x->ssl != NULL) {
			x->deadline = dx_now() + x->reply_ms;
			if (SSL_shutdown(x->ssl) >= 0)
				(void)dx_flush_tls(x); /* close_notify; no wait for the peer's */
		}
	}
	ERR_clear_error();
	dx_free(x);
}

/* ---- where to connect ---- */

struct dx_mx {
	char host[256];
	unsigned pref;
	uint32_t rnd; /* order among equal preferences */
};

struct dx_mxset {
	struct dx_mx mx[DX_MX_MAX];
	size_t n;
	int failed, bogus, rcode;
	char why_bogus[160];
};

/* A host name from wire-format labels, uncompressed (unbound hands rdata that way), exactly
 * filling len. Returns: 1 (out: the dotted name, "" for the root), 0 when it is not a host
 * name (compression, a label with characters no host name has, trailing bytes). */
static int
dx_wire_name(char *out, size_t cap, const uint8_t *p, size_t len)
{
	size_t i = 0, o = 0;

	out[0] = 0;
	for (;;) {
		size_t l;

		if (i >= len)
			return 0;
		l = p[i++];
		if (l == 0)
			break;
		if (l > 63 || l > len - i || o + l + 2 > cap)
			return 0; /* 0xC0: a compression pointer; 0x40: an extended label */
		if (o > 0)
			out[o++] = '.';
		for (size_t k = 0; k < l; k++) {
			char c = (char)p[i + k];

			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '-' || c == '_'))
				return 0;
			out[o++] = c;
		}
		i += l;
	}
	out[o] = 0;
	return i == len && o <= 253;
}

static void
dx_on_mx(void *arg, int rc, const struct dime_dns_answer *a)
{
	struct dx_mxset *s = arg;

	if (rc != DIME_OK || a == NULL) {
		s->failed = 1;
		return;
	}
	s->rcode = a->rcode;
	if (a->sec == DIME_DNS_BOGUS) {
		s->bogus = 1;
		snprintf(s->why_bogus, sizeof(s->why_bogus), "%s", a->why_bogus);
		return;
	}
	if (a->rcode != DIME_DNS_NOERROR && a->rcode != DIME_DNS_NXDOMAIN) {
		s->failed = 1;
		return;
	}
	for (size_t i = 0; i < a->n && s->n < DX_MX_MAX; i++) {
		struct dx_mx *m = &s->mx[s->n];

		if (a->type != DIME_DNS_TYPE_MX || a->rr_len[i] < 3 ||
		    !dx_wire_name(m->host, sizeof(m->host), a->rr[i] + 2, a->rr_len[i] - 2))
			continue;
		/* the null MX (RFC 7505: no mail here) and IP addresses (spec Part 7: never
		 * valid MX values) are not hosts to try */
		if (m->host[0] == 0 || dx_literal(m->host, NULL))
			continue;
		m->pref = (unsigned)a->rr[i][0] << 8 | a->rr[i][1];
		m->rnd = randombytes_random();
		s->n++;
	}
}

static int
dx_mx_cmp(const void *pa, const void *pb)
{
	const struct dx_mx *a = pa, *b = pb;

	if (a->pref != b->pref)
		return a->pref < b->pref ? -1 : 1;
	return a->rnd < b->rnd ? -1 : a->rnd > b->rnd;
}

/* Append a hop unless cap is reached. */
static void
dx_hop(struct dime_dx_hop *hops, size_t cap, size_t *n, const char *host, unsigned port,
       enum dime_dmtp_client_mode mode)
{
	if (*n >= cap)
		return;
	snprintf(hops[*n].host, sizeof(hops[*n].host), "%s", host);
	hops[*n].port = port;
	hops[*n].mode = mode;
	(*n)++;
}

int
dime_dx_route(struct dime_dx_hop *hops, size_t cap, size_t *n, struct dime_dns *dns,
	      const struct dime_mr_result *mr, const struct dime_dx_ports *ports, char *why,
	      size_t why_cap)
{
	char dx[DIME_MREC_MAX_VALUES][256];
	size_t n_dx = 0, n_mx = 0;
	unsigned dx_port = ports != NULL && ports->dx != 0 ? ports->dx : 26u;
	unsigned mx_port[2] = {25u, 587u};
	struct dx_mxset *s = NULL;
	int rc;

	if (n != NULL)
		*n = 0;
	dx_why(why, why_cap, "%s", "");
	if (hops == NULL || cap == 0 || n == NULL || dns == NULL || mr == NULL ||
	    mr->status != DIME_MR_FOUND) {
		dx_why(why, why_cap, "dx route: no found record to route by");
		return DIME_E_INVALID;
	}
	if (ports != NULL && (ports->mx[0] != 0 || ports->mx[1] != 0)) {
		mx_port[0] = ports->mx[0];
		mx_port[1] = ports->mx[1];
	}
	/* the record's dx values, unique (case and a final dot aside), in random order (spec
	 * Part 7 "Connections") */
	for (size_t i = 0; i < mr->rec.n_dx && i < DIME_MREC_MAX_VALUES; i++) {
		size_t len = mr->rec.dx[i].len;
		int dup = 0;

		if (len > 0 && mr->rec.dx[i].p[len - 1] == '.')
			len--;
		if (len == 0 || len > 253)
			continue;
		memcpy(dx[n_dx], mr->rec.dx[i].p, len);
		dx[n_dx][len] = 0;
		for (size_t k = 0; k < n_dx && !dup; k++)
			dup = strcasecmp(dx[k], dx[n_dx]) == 0;
		if (!dup)
			n_dx++;
	}
	for (size_t i = n_dx; i > 1; i--) {
		size_t j = randombytes_uniform((uint32_t)i);
		char t[256];

		memcpy(t, dx[i - 1], sizeof(t));
		memcpy(dx[i - 1], dx[j], sizeof(t));
		memcpy(dx[j], t, sizeof(t));
	}
	for (size_t i = 0; i < n_dx; i++)
		dx_hop(hops, cap, n, dx[i], dx_port, DIME_DMTP_CLIENT_IMPLICIT);

	/* then the domain's MX hosts, dual protocol, by preference, random among equals */
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		*n = 0;
		return DIME_E_NOMEM;
	}
	if (dime_dns_query_sync(dns, mr->domain, DIME_DNS_TYPE_MX, dx_on_mx, s) != DIME_OK)
		s->failed = 1;
	if (s->bogus || s->failed) {
		if (s->bogus)
			dx_why(why, why_cap, "the MX of %s: DNSSEC validation failed (bogus: %s)",
			       mr->domain, s->why_bogus);
		else
			dx_why(why, why_cap, "the MX of %s: the lookup failed", mr->domain);
		/* the dx hosts do not depend on it: they are tried alone */
		rc = n_dx > 0 ? DIME_OK : DIME_E_AGAIN;
		goto out;
	}
	qsort(s->mx, s->n, sizeof(s->mx[0]), dx_mx_cmp);
	for (size_t i = 0; i < s->n && n_mx < DIME_DX_HOPS_MAX; i++) {
		int dup = 0;

		for (size_t k = 0; k < i && !dup; k++)
			dup = strcasecmp(s->mx[k].host, s->mx[i].host) == 0;
		if (dup)
			continue;
		n_mx++;
		for (int k = 0; k < 2; k++)
			if (mx_port[k] != 0)
				dx_hop(hops, cap, n, s->mx[i].host, mx_port[k],
				       DIME_DMTP_CLIENT_DUAL);
	}
	if (*n == 0) {
		dx_why(why, why_cap, "%s has no dx value and no MX host", mr->domain);
		rc = DIME_E_NOTFOUND;
		goto out;
	}
	rc = DIME_OK;
out:
	free(s);
	if (rc != DIME_OK && n != NULL) {
		memset(hops, 0, cap * sizeof(*hops));
		*n = 0;
	}
	return rc;
}

/* dime/dx.h against a real TCP+TLS server in a thread of the test (the server session machine,
 * dime/dmtp_session.h, with a self-signed RSA certificate made here): implicit and dual modes,
 * the record's tls= values (match; mismatch refused before any command), the CA check, SNI,
 * a refused connection, a server that stops answering, 421 mid-session, SEND answered 254 and
 * 255, SGNT's armor; names through the static DNS file, an IP literal, getaddrinfo, and a host
 * whose first address refuses. Then dime_dx_route over a static DNS file. */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dime/codec.h"
#include "dime/dns.h"
#include "dime/dmtp_session.h"
#include "dime/dx.h"
#include "dime/keys.h"
#include "dime/mrloc.h"
#include "dime/sigres.h"
#include "tlib.h"

#define HOST "dx1.example.test"
#define HASH                                                                                       \
	"HashOfTheMessageHashOfTheMessageHashOfTheMessageHashOfTheMessageHashOfTheMessageHashOf"
#define FP86                                                                                       \
	"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define ARMOR	    "-----BEGIN ORGANIZATIONAL SIGNET-----\nAAAA\n-----END ORGANIZATIONAL SIGNET-----\n"
#define SRV_WAIT_MS 20000 /* the server thread's own safety net, never reached when all is well */

static SSL_CTX *t_srv_ctx;
static uint8_t *t_der; /* the server certificate */
static size_t t_der_len;
static struct dime_ks *t_ks;
static uint32_t t_pok;
static uint8_t t_pub[32];
static struct dime_dns *t_dns;

/* ---- the server ---- */

struct srv {
	enum dime_dmtp_sess_kind kind;
	int silent;	    /* a query kind never answered: read until the client goes */
	const char *banner; /* plaintext said instead of a session: read until the client goes */
	enum dime_dmtp_verdict sgnt;
	enum dime_dmtp_verdict data[4]; /* DATA verdicts, in order */
	int lfd;
	unsigned port;
	pthread_t th;
	/* what happened, read after the join */
	size_t tls_bytes; /* octets received inside TLS */
	int n_queries, n_data, handshakes, timed_out, quit_seen;
	char sni[256];
	uint8_t got[1024];
	size_t got_len;
};

static SSL *
srv_tls(struct srv *v, int fd)
{
	SSL *ssl = SSL_new(t_srv_ctx);
	const char *sni;

	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || SSL_accept(ssl) != 1) {
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	v->handshakes++;
	sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	snprintf(v->sni, sizeof(v->sni), "%s", sni != NULL ? sni : "");
	return ssl;
}

static int
srv_send(SSL *ssl, int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t k = ssl != NULL ? SSL_write(ssl, p, (int)n) : send(fd, p, n, MSG_NOSIGNAL);

		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static ssize_t
srv_recv(struct srv *v, SSL *ssl, int fd, uint8_t *p, size_t cap)
{
	struct pollfd pf = {fd, POLLIN, 0};

	if ((ssl == NULL || SSL_pending(ssl) == 0) && poll(&pf, 1, SRV_WAIT_MS) != 1) {
		v->timed_out = 1;
		return -1;
	}
	return ssl != NULL ? SSL_read(ssl, p, (int)cap) : recv(fd, p, cap, 0);
}

static void
srv_answer(struct srv *v, struct dime_dmtp_sess *s)
{
	const struct dime_dmtp_query *q = dime_dmtp_sess_query(s);
	struct dime_dmtp_answer a;

	memset(&a, 0, sizeof(a));
	a.id = q->id;
	v->n_queries++;
	switch (q->kind) {
	case DIME_DMTP_Q_ORIGIN:
	case DIME_DMTP_Q_RCPT: a.verdict = DIME_DMTP_V_OK; break;
	case DIME_DMTP_Q_DATA:
		a.verdict = v->data[v->n_data < 4 ? v->n_data : 3];
		v->n_data++;
		memcpy(a.hash, HASH, sizeof(HASH));
		if (q->data_len <= sizeof(v->got)) {
			memcpy(v->got, q->data, q->data_len);
			v->got_len = q->data_len;
		}
		break;
	case DIME_DMTP_Q_SGNT:
	case DIME_DMTP_Q_HIST:
		a.verdict = q->kind == DIME_DMTP_Q_SGNT ? v->sgnt : DIME_DMTP_V_HISTORY;
		a.armor = ARMOR;
		a.armor_len = sizeof(ARMOR) - 1;
		break;
	case DIME_DMTP_Q_VRFY: a.verdict = DIME_DMTP_V_ORG_CURRENT; break;
	}
	if (dime_dmtp_sess_answer(s, &a) != DIME_OK)
		t_fail("server: answer refused");
}

static void *
srv_main(void *arg)
{
	struct srv *v = arg;
	struct dime_dmtp_sess_conf sc = {v->kind, HOST, 0, 0, 0};
	struct dime_dmtp_sess *s = NULL;
	struct pollfd pf = {v->lfd, POLLIN, 0};
	SSL *ssl = NULL;
	uint8_t in[4096];
	size_t in_off = 0, in_len = 0;
	int fd = -1;
	sigset_t pipe;

	/* The server's writes may hit a client that left; the client's own writes must never
	 * raise SIGPIPE, so it stays unblocked on the test's main thread. */
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);
	if (poll(&pf, 1, SRV_WAIT_MS) != 1 || (fd = accept(v->lfd, NULL, NULL)) < 0) {
		v->timed_out = 1;
		return NULL;
	}
	if (v->banner != NULL) {
		if (srv_send(NULL, fd, (const uint8_t *)v->banner, strlen(v->banner)) == 0)
			while (srv_recv(v, NULL, fd, in, sizeof(in)) > 0)
				;
		goto out;
	}
	if (dime_dmtp_sess_new(&s, &sc) != DIME_OK)
		goto out;
	if (v->kind == DIME_DMTP_SESS_DMTP && (ssl = srv_tls(v, fd)) == NULL)
		goto out;
	dime_dmtp_sess_start(s);
	for (;;) {
		size_t n;
		const uint8_t *p = dime_dmtp_sess_out(s, &n);
		unsigned a;
		ssize_t got;

		if (n > 0) {
			if (srv_send(ssl, fd, p, n) != 0)
				break;
			dime_dmtp_sess_out_done(s, n);
			continue;
		}
		a = dime_dmtp_sess_actions(s);
		if (a & DIME_DMTP_ACT_CLOSE)
			break;
		if (a & DIME_DMTP_ACT_TLS) {
			in_off = in_len = 0;
			ssl = srv_tls(v, fd);
			dime_dmtp_sess_tls_done(s, ssl != NULL ? DIME_DMTP_TLS_OK
							       : DIME_DMTP_TLS_FAILED);
			continue;
		}
		if ((a & DIME_DMTP_ACT_QUERY) && (int)dime_dmtp_sess_query(s)->kind != v->silent) {
			srv_answer(v, s);
			continue;
		}
		if (!(a & DIME_DMTP_ACT_QUERY) && in_off < in_len) {
			size_t used = dime_dmtp_sess_feed(s, in + in_off, in_len - in_off);

			in_off += used;
			if (used > 0)
				continue;
		}
		if (in_off == in_len)
			in_off = in_len = 0;
		if (in_len == sizeof(in))
			break;
		if ((got = srv_recv(v, ssl, fd, in + in_len, sizeof(in) - in_len)) <= 0)
			break;
		if (ssl != NULL)
			v->tls_bytes += (size_t)got;
		for (size_t i = 0; i + 4 <= (size_t)got; i++)
			if (memcmp(in + in_len + i, "QUIT", 4) == 0)
				v->quit_seen = 1;
		in_len += (size_t)got;
	}
out:
	SSL_free(ssl);
	if (fd >= 0)
		close(fd);
	dime_dmtp_sess_free(s);
	ERR_clear_error();
	return NULL;
}

static int
srv_start(struct srv *v, enum dime_dmtp_sess_kind kind)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	memset(v, 0, sizeof(*v));
	v->kind = kind;
	v->sgnt = DIME_DMTP_V_ORG_SIGNET;
	v->data[0] = v->data[1] = v->data[2] = v->data[3] = DIME_DMTP_V_ACCEPTED;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((v->lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    bind(v->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(v->lfd, 4) != 0 ||
	    getsockname(v->lfd, (struct sockaddr *)&sa, &sl) != 0) {
		t_fail("server socket");
		return -1;
	}
	v->port = ntohs(sa.sin_port);
	return 0;
}

static void
srv_run(struct srv *v)
{
	if (pthread_create(&v->th, NULL, srv_main, v) != 0) {
		t_fail("server thread");
		exit(1);
	}
}

static void
srv_join(struct srv *v)
{
	pthread_join(v->th, NULL);
	close(v->lfd);
	T_CHECK(!v->timed_out, "server: waited %d ms for the client", SRV_WAIT_MS);
}

/* ---- fixtures ---- */

static void
setup_tls(void)
{
	EVP_PKEY *pk = EVP_RSA_gen(2048);
	X509 *x = X509_new();
	X509_NAME *nm;
	X509_EXTENSION *ext;
	X509V3_CTX v3;
	unsigned char *der = NULL;
	int n;
	FILE *f;

	if (pk == NULL || x == NULL)
		abort();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pk);
	nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)HOST, -1, -1, 0);
	X509_set_issuer_name(x, nm);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:" HOST);
	if (ext == NULL || X509_add_ext(x, ext, -1) != 1)
		abort();
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
	if (ext == NULL || X509_add_ext(x, ext, -1) != 1)
		abort();
	X509_EXTENSION_free(ext);
	if (X509_sign(x, pk, EVP_sha256()) == 0)
		abort();
	if ((n = i2d_X509(x, &der)) <= 0 || (t_der = malloc((size_t)n)) == NULL)
		abort();
	memcpy(t_der, der, (size_t)n);
	t_der_len = (size_t)n;
	OPENSSL_free(der);
	if ((f = fopen(t_path("ca.pem"), "w")) == NULL || PEM_write_X509(f, x) != 1)
		abort();
	fclose(f);
	t_srv_ctx = SSL_CTX_new(TLS_server_method());
	if (t_srv_ctx == NULL || SSL_CTX_use_certificate(t_srv_ctx, x) != 1 ||
	    SSL_CTX_use_PrivateKey(t_srv_ctx, pk) != 1 ||
	    SSL_CTX_set_min_proto_version(t_srv_ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(t_srv_ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(t_srv_ctx, "ECDHE-RSA-AES256-GCM-SHA384") != 1)
		abort();
	X509_free(x);
	EVP_PKEY_free(pk);
}

static void
setup_keys(void)
{
	if (dime_ks_new(&t_ks) != DIME_OK ||
	    dime_ks_generate(t_ks, &t_pok, DIME_KEY_SIGN) != DIME_OK ||
	    dime_ks_sign_pub(t_ks, t_pub, t_pok) != DIME_OK)
		abort();
}

static void
setup_dns(void)
{
	struct dime_dns_conf dc = {0};
	char why[256];

	dc.static_file = t_path("zone");
	t_write_text(dc.static_file,
		     "# the dx tests' hosts\n" HOST " 60 A 127.0.0.1\n"
		     "dx2.example.test 60 A 127.0.0.3\n" /* nothing listens there: refused */
		     "dx2.example.test 60 A 127.0.0.1\n"
		     "example.test 60 MX 20 mx-b.example.test\n"
		     "example.test 60 MX 10 mx-a.example.test.\n"
		     "example.test 60 MX 20 MX-C.example.test\n"
		     "example.test 60 MX 30 192.0.2.1\n"	 /* an IP: ignored */
		     "example.test 60 MX 40 mx-a.example.test\n" /* the same host again */
		     "nullmx.example.test 60 MX 0 .\n"
		     "onemx.example.test 60 MX 5 mx.onemx.example.test\n");
	if (dime_dns_new(&t_dns, &dc, why, sizeof(why)) != DIME_OK) {
		fprintf(stderr, "FAIL: static DNS: %s\n", why);
		exit(1);
	}
}

/* A record whose tls= value signs der (the POK signs the certificate's DER, spec form). */
static void
record_for(struct dime_mrec *m, const uint8_t *der, size_t der_len)
{
	memset(m, 0, sizeof(*m));
	m->version = 1;
	m->expiry_days = 30;
	m->n_poks = 1;
	memcpy(m->poks[0], t_pub, 32);
	m->n_tls = 1;
	if (dime_mrec_tls_sign(t_ks, m->tls[0], t_pok, der, der_len) != DIME_OK)
		abort();
}

static void
conf_init(struct dime_dx_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->dns = t_dns;
	c->helo = "client.example.org";
	c->ca_file = t_path("ca.pem");
	c->connect_timeout_ms = 10000;
	c->reply_timeout_ms = 10000;
	c->data_timeout_ms = 10000;
}

static const char msg[] = "-----BEGIN ENCRYPTED MESSAGE-----\r\n.AAAA\r\n"
			  "-----END ENCRYPTED MESSAGE-----\r\n";
static const char msg_want[] = "-----BEGIN ENCRYPTED MESSAGE-----\n.AAAA\n"
			       "-----END ENCRYPTED MESSAGE-----\n";

static void
op_send(struct dime_dmtp_client_op *op)
{
	memset(op, 0, sizeof(*op));
	op->kind = DIME_DMTP_CLIENT_SEND;
	op->from = "example.org";
	op->from_fp = FP86;
	op->to = "example.test";
	op->to_fp = FP86;
	op->msg = (const uint8_t *)msg;
	op->msg_len = sizeof(msg) - 1;
}

/* ---- connections ---- */

/* A whole session in either mode: SGNT's armor, SEND accepted then duplicate, VRFY. */
static void
test_session(enum dime_dmtp_sess_kind kind)
{
	const char *k = kind == DIME_DMTP_SESS_DMTP ? "implicit" : "dual";
	struct srv v;
	struct dime_dx_conf conf;
	struct dime_dx_peer peer;
	struct dime_mrec rec;
	struct dime_dx *x = NULL;
	const struct dime_dmtp_client_result *r;
	struct dime_dmtp_client_op op;
	char why[512], want_name[128];
	int rc;

	if (srv_start(&v, kind) != 0)
		return;
	v.data[1] = DIME_DMTP_V_DUPLICATE;
	srv_run(&v);
	conf_init(&conf);
	record_for(&rec, t_der, t_der_len);
	peer.host = HOST;
	peer.port = v.port;
	peer.mode = kind == DIME_DMTP_SESS_DMTP ? DIME_DMTP_CLIENT_IMPLICIT : DIME_DMTP_CLIENT_DUAL;
	peer.rec = &rec;
	rc = dime_dx_open(&x, &conf, &peer, why, sizeof(why));
	T_CHECK(rc == DIME_OK && x != NULL, "%s: open: got %d (%s), want ok", k, rc, why);
	if (x == NULL)
		goto out;
	T_CHECK(dime_dx_tls(x) == (DIME_SR_TLS_RECORD | DIME_SR_TLS_CA),
		"%s: tls bits: got %u, want record and CA", k, dime_dx_tls(x));
	snprintf(want_name, sizeof(want_name), HOST "[127.0.0.1]:%u", v.port);
	T_CHECK(strcmp(dime_dx_peer_name(x), want_name) == 0, "%s: peer name: got %s, want %s", k,
		dime_dx_peer_name(x), want_name);

	memset(&op, 0, sizeof(op));
	op.kind = DIME_DMTP_CLIENT_SGNT;
	op.target = "example.test";
	rc = dime_dx_run(x, &op, &r, why, sizeof(why));
	T_CHECK(rc == DIME_OK && r != NULL && r->code == 270 && strcmp(r->stage, "SGNT") == 0 &&
		    strstr(r->text, "-----BEGIN ORGANIZATIONAL SIGNET-----\nAAAA\n") != NULL,
		"%s: SGNT: got %d code %d text '%s', want 270 with the armor (%s)", k, rc,
		r != NULL ? r->code : 0, r != NULL ? r->text : "", why);

	op_send(&op);
	rc = dime_dx_run(x, &op, &r, why, sizeof(why));
	T_CHECK(rc == DIME_OK && r != NULL && r->code == 254 && strcmp(r->stage, "DATA") == 0 &&
		    strcmp(r->hash, HASH) == 0,
		"%s: SEND: got %d code %d hash '%s', want 254 ACCEPTED=hash (%s)", k, rc,
		r != NULL ? r->code : 0, r != NULL ? r->hash : "", why);
	rc = dime_dx_run(x, &op, &r, why, sizeof(why));
	T_CHECK(rc == DIME_OK && r != NULL && r->code == 255 && strcmp(r->hash, HASH) == 0,
		"%s: SEND again: got %d code %d, want 255 DUPLICATE=hash (%s)", k, rc,
		r != NULL ? r->code : 0, why);

	memset(&op, 0, sizeof(op));
	op.kind = DIME_DMTP_CLIENT_VRFY;
	op.target = "example.test";
	op.fp = FP86;
	rc = dime_dx_run(x, &op, &r, why, sizeof(why));
	T_CHECK(rc == DIME_OK && r != NULL && r->code == 271, "%s: VRFY: got %d code %d (%s)", k,
		rc, r != NULL ? r->code : 0, why);
	/* a value the grammar refuses: INVALID, and the session goes on */
	op.fp = "not a fingerprint";
	rc = dime_dx_run(x, &op, &r, why, sizeof(why));
	T_CHECK(rc == DIME_E_INVALID && r == NULL, "%s: bad VRFY: got %d, want invalid", k, rc);
	op.fp = FP86;
	rc = dime_dx_run(x, &op, &r, why, sizeof(why));
	T_CHECK(rc == DIME_OK && r != NULL && r->code == 271,
		"%s: VRFY after a refused one: got %d (%s)", k, rc, why);
	dime_dx_close(x);
out:
	srv_join(&v);
	T_CHECK(v.quit_seen, "%s: the server saw no QUIT", k);
	T_CHECK(v.handshakes == 1 && strcmp(v.sni, HOST) == 0,
		"%s: SNI: got '%s', want the host name", k, v.sni);
	T_CHECK(v.n_data == 2 && v.got_len == sizeof(msg_want) - 1 &&
		    memcmp(v.got, msg_want, v.got_len) == 0,
		"%s: the server got %d messages, the last '%.*s'", k, v.n_data, (int)v.got_len,
		(const char *)v.got);
}

/* A certificate the record does not name: refused right after the handshake, so the server
 * never receives a byte inside TLS (no EHLO, no MAIL). */
static void
test_mismatch(enum dime_dmtp_sess_kind kind)
{
	const char *k = kind == DIME_DMTP_SESS_DMTP ? "implicit" : "dual";
	struct srv v;
	struct dime_dx_conf conf;
	struct dime_dx_peer peer;
	struct dime_mrec rec;
	struct dime_dx *x = (struct dime_dx *)&v; /* must come back NULL */
	uint8_t *other = malloc(t_der_len);
	char why[512];
	int rc;

	if (other == NULL || srv_start(&v, kind) != 0) {
		free(other);
		return;
	}
	srv_run(&v);
	memcpy(other, t_der, t_der_len);
	other[t_der_len / 2] ^= 1; /* another certificate's DER */
	conf_init(&conf);
	record_for(&rec, other, t_der_len);
	free(other);
	peer.host = HOST;
	peer.port = v.port;
	peer.mode = kind == DIME_DMTP_SESS_DMTP ? DIME_DMTP_CLIENT_IMPLICIT : DIME_DMTP_CLIENT_DUAL;
	peer.rec = &rec;
	rc = dime_dx_open(&x, &conf, &peer, why, sizeof(why));
	T_CHECK(rc == DIME_E_BADSIG && x == NULL && strstr(why, "tls=") != NULL &&
		    strstr(why, HOST "[127.0.0.1]:") == why,
		"%s: mismatch: got %d (%s), want bad signature naming the host", k, rc, why);
	dime_dx_close(x);
	srv_join(&v);
	T_CHECK(v.handshakes == 1 && v.tls_bytes == 0 && v.n_queries == 0,
		"%s: mismatch: the server got %zu octets inside TLS, want none", k, v.tls_bytes);

	/* a record without tls= values: nothing to match, so no refusal and no record bit */
	if (srv_start(&v, kind) != 0)
		return;
	srv_run(&v);
	memset(&rec, 0, sizeof(rec));
	rec.version = 1;
	rec.n_poks = 1;
	memcpy(rec.poks[0], t_pub, 32);
	peer.port = v.port;
	conf.ca_file = NULL; /* default paths: they do not hold our self-signed certificate */
	rc = dime_dx_open(&x, &conf, &peer, why, sizeof(why));
	T_CHECK(rc == DIME_OK && x != NULL && dime_dx_tls(x) == 0,
		"%s: no tls= and no CA: got %d bits %u, want ok and none (%s)", k, rc,
		x != NULL ? dime_dx_tls(x) : 99u, why);
	dime_dx_close(x);
	srv_join(&v);
}

/* Host names to addresses: an IP literal (no SNI, the CA check cannot name it), getaddrinfo,
 * the static file with a first address that refuses, and a name without an address. */
static void
test_addresses(void)
{
	static const struct {
		const char *host;
		int use_dns;
		int want;
		const char *addr;
		unsigned tls;
		const char *sni;
	} cases[] = {
	    {"127.0.0.1", 1, DIME_OK, "127.0.0.1[127.0.0.1]:", 0, ""},
	    {"127.0.0.1", 0, DIME_OK, "127.0.0.1[127.0.0.1]:", 0, ""},
	    {"localhost", 0, DIME_OK, "localhost[127.0.0.1]:", 0, "localhost"},
	    {"dx2.example.test", 1, DIME_OK, "dx2.example.test[127.0.0.1]:", 0, "dx2.example.test"},
	    {HOST, 1, DIME_OK, HOST "[127.0.0.1]:", DIME_SR_TLS_CA, HOST},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct srv v;
		struct dime_dx_conf conf;
		struct dime_dx_peer peer = {cases[i].host, 0, DIME_DMTP_CLIENT_IMPLICIT, NULL};
		struct dime_dx *x = NULL;
		char why[512];
		int rc;

		if (srv_start(&v, DIME_DMTP_SESS_DMTP) != 0)
			return;
		srv_run(&v);
		conf_init(&conf);
		if (!cases[i].use_dns)
			conf.dns = NULL;
		peer.port = v.port;
		rc = dime_dx_open(&x, &conf, &peer, why, sizeof(why));
		T_CHECK(rc == cases[i].want && x != NULL &&
			    strncmp(dime_dx_peer_name(x), cases[i].addr, strlen(cases[i].addr)) ==
				0 &&
			    dime_dx_tls(x) == cases[i].tls,
			"address %zu (%s): got %d '%s' bits %u, want %d '%s' bits %u (%s)", i,
			cases[i].host, rc, x != NULL ? dime_dx_peer_name(x) : "",
			x != NULL ? dime_dx_tls(x) : 0u, cases[i].want, cases[i].addr, cases[i].tls,
			why);
		dime_dx_close(x);
		srv_join(&v);
		T_CHECK(strcmp(v.sni, cases[i].sni) == 0, "address %zu: SNI '%s', want '%s'", i,
			v.sni, cases[i].sni);
	}
	/* no address at all: temporary (another host, or later) */
	{
		struct dime_dx_conf conf;
		struct dime_dx_peer peer = {"nowhere.example.test", 26, DIME_DMTP_CLIENT_IMPLICIT,
					    NULL};
		struct dime_dx *x = NULL;
		char why[512];
		int rc;

		conf_init(&conf);
		rc = dime_dx_open(&x, &conf, &peer, why, sizeof(why));
		T_CHECK(rc == DIME_E_AGAIN && x == NULL && strstr(why, "no address") != NULL &&
			    strncmp(why, "nowhere.example.test:26: ", 25) == 0,
			"no address: got %d (%s), want again", rc, why);
	}
}

/* A refused port, a server that stops answering, a 421 in the middle, bad arguments. */
static void
test_failures(void)
{
	struct dime_dx_conf conf;
	struct dime_dx_peer peer = {"127.0.0.1", 0, DIME_DMTP_CLIENT_IMPLICIT, NULL};
	struct dime_dx *x = NULL;
	const struct dime_dmtp_client_result *r;
	struct dime_dmtp_client_op op;
	struct srv v;
	char why[512];
	int rc;

	conf_init(&conf);
	memset(&op, 0, sizeof(op));
	op.kind = DIME_DMTP_CLIENT_SGNT;
	op.target = "example.test";

	/* refused: a port that was just free */
	if (srv_start(&v, DIME_DMTP_SESS_DMTP) != 0)
		return;
	close(v.lfd);
	peer.port = v.port;
	rc = dime_dx_open(&x, &conf, &peer, why, sizeof(why));
	T_CHECK(rc == DIME_E_AGAIN && x == NULL && strstr(why, "connect") != NULL,
		"refused: got %d (%s), want again", rc, why);

	/* silent after the opening: the reply timeout ends the wait. The other timeout is longer
	 * than the server's own safety net, so waiting on the wrong one fails the test. */
	for (int i = 0; i < 2; i++) {
		const char *k = i == 0 ? "silent to SGNT" : "silent to DATA";
		struct dime_dmtp_client_op send;

		if (srv_start(&v, DIME_DMTP_SESS_DMTP) != 0)
			return;
		v.silent = i == 0 ? DIME_DMTP_Q_SGNT : DIME_DMTP_Q_DATA;
		srv_run(&v);
		conf.reply_timeout_ms = i == 0 ? 300 : 3 * SRV_WAIT_MS;
		conf.data_timeout_ms = i == 0 ? 3 * SRV_WAIT_MS : 300;
		peer.port = v.port;
		op_send(&send);
		rc = dime_dx_open(&x, &conf, &peer, why, sizeof(why));
		T_CHECK(rc == DIME_OK, "%s: open: got %d (%s)", k, rc, why);
		if (x != NULL) {
			rc = dime_dx_run(x, i == 0 ? &op : &send, &r, why, sizeof(why));
			T_CHECK(rc == DIME_E_AGAIN && r == NULL && strstr(why, "timed out") != NULL,
				"%s: got %d (%s), want again after the timeout", k, rc, why);
			rc = dime_dx_run(x, &op, &r, why, sizeof(why));
			T_CHECK(rc == DIME_E_AGAIN, "%s: a second run: got %d, want again", k, rc);
			dime_dx_close(x);
			x = NULL;
		}
		srv_join(&v);
		T_CHECK(!v.quit_seen, "%s: QUIT sent after a timeout", k);
	}
	conf.reply_timeout_ms = conf.data_timeout_ms = 10000;

	/* 421 in the middle of the session */
	if (srv_start(&v, DIME_DMTP_SESS_DUAL) != 0)
		return;
	v.sgnt = DIME_DMTP_V_BUSY;
	srv_run(&v);
	peer.host = HOST;
	peer.mode = DIME_DMTP_CLIENT_DUAL;
	peer.port = v.port;
	rc = dime_dx_open(&x, &conf, &peer, why, sizeof(why));
	T_CHECK(rc == DIME_OK, "421: open: got %d (%s)", rc, why);
	if (x != NULL) {
		rc = dime_dx_run(x, &op, &r, why, sizeof(why));
		T_CHECK(rc == DIME_E_AGAIN && r == NULL && strstr(why, "closing") != NULL,
			"421: got %d (%s), want again", rc, why);
		dime_dx_close(x);
		x = NULL;
	}
	srv_join(&v);
	T_CHECK(!v.quit_seen, "421: QUIT sent after the server closed");

	/* a plaintext server on the implicit port: the handshake fails, temporary */
	if (srv_start(&v, DIME_DMTP_SESS_DUAL) != 0)
		return;
	srv_run(&v);
	peer.mode = DIME_DMTP_CLIENT_IMPLICIT;
	peer.port = v.port;
	rc = dime_dx_open(&x, &conf, &peer, why, sizeof(why));
	T_CHECK(rc == DIME_E_AGAIN && x == NULL && strstr(why, "TLS") != NULL,
		"plaintext on the implicit port: got %d (%s), want again", rc, why);
	srv_join(&v);

	/* dual hosts that are not DMTP hosts, or not now */
	{
		static const struct {
			const char *banner;
			int want;
		} b[] = {
		    {"220 mx.example.test ESMTP Postfix\n", DIME_E_MALFORMED},
		    {"554 mx.example.test no service\n", DIME_E_MALFORMED},
		    {"421 mx.example.test busy, later\n", DIME_E_AGAIN},
		    {"220 mx.example.test ESMTP DMTP\n", DIME_E_AGAIN}, /* then silence */
		};
		for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++) {
			if (srv_start(&v, DIME_DMTP_SESS_DUAL) != 0)
				return;
			v.banner = b[i].banner;
			srv_run(&v);
			peer.mode = DIME_DMTP_CLIENT_DUAL;
			peer.port = v.port;
			conf.reply_timeout_ms = 300;
			rc = dime_dx_open(&x, &conf, &peer, why, sizeof(why));
			T_CHECK(rc == b[i].want && x == NULL, "banner %zu: got %d (%s), want %d", i,
				rc, why, b[i].want);
			srv_join(&v);
		}
		conf.reply_timeout_ms = 10000;
	}

	/* arguments */
	peer.port = 0;
	T_CHECK(dime_dx_open(&x, &conf, &peer, why, sizeof(why)) == DIME_E_INVALID && x == NULL,
		"port 0: want invalid");
	peer.port = 26;
	conf.helo = NULL;
	T_CHECK(dime_dx_open(&x, &conf, &peer, why, sizeof(why)) == DIME_E_INVALID && x == NULL,
		"no helo: want invalid");
	dime_dx_close(NULL);
}

/* ---- dime_dx_route ---- */

static void
mr_for(struct dime_mr_result *mr, const char *domain, const char *dx)
{
	char pok[64];
	size_t n;
	const char *why = "";

	memset(mr, 0, sizeof(*mr));
	mr->status = DIME_MR_FOUND;
	mr->sec = DIME_DNS_CONFIGURED;
	snprintf(mr->target, sizeof(mr->target), "%s", domain);
	snprintf(mr->domain, sizeof(mr->domain), "%s", domain);
	snprintf(mr->name, sizeof(mr->name), "_dime.%s", domain);
	if (dime_b64_encode(pok, sizeof(pok), &n, t_pub, 32, DIME_B64_NOPAD) != DIME_OK)
		abort();
	snprintf(mr->txt, sizeof(mr->txt), "ver=1 pok=%s%s", pok, dx);
	if (dime_mrec_parse(&mr->rec, &why, mr->txt, strlen(mr->txt)) != DIME_OK) {
		t_fail("record '%s': %s", mr->txt, why);
		exit(1);
	}
}

static int
hop_is(const struct dime_dx_hop *h, const char *host, unsigned port,
       enum dime_dmtp_client_mode mode)
{
	return strcmp(h->host, host) == 0 && h->port == port && h->mode == mode;
}

static void
test_route(void)
{
	static struct dime_mr_result mr;
	struct dime_dx_hop hops[DIME_DX_HOPS_MAX];
	struct dime_dx_ports ports = {2626, {2525, 5587}};
	char why[512];
	size_t n = 0;
	int rc, seen_first[3] = {0, 0, 0}, b_first = 0, c_first = 0;

	mr_for(&mr, "example.test",
	       " dx=dx1.example.test dx=dx2.example.test dx=DX1.example.test. dx=dx3.example.test");
	for (int round = 0; round < 64; round++) {
		int have[3] = {0, 0, 0};

		rc =
		    dime_dx_route(hops, DIME_DX_HOPS_MAX, &n, t_dns, &mr, &ports, why, sizeof(why));
		if (rc != DIME_OK || n != 9) {
			t_fail("route: got %d n %zu (%s), want 9 hops", rc, n, why);
			return;
		}
		for (size_t i = 0; i < 3; i++) {
			T_CHECK(hops[i].port == 2626 && hops[i].mode == DIME_DMTP_CLIENT_IMPLICIT,
				"route: dx hop %zu on %u mode %d", i, hops[i].port,
				(int)hops[i].mode);
			for (int k = 0; k < 3; k++) {
				char want[32];

				snprintf(want, sizeof(want), "dx%d.example.test", k + 1);
				if (strcasecmp(hops[i].host, want) == 0) {
					have[k]++;
					if (i == 0)
						seen_first[k] = 1;
				}
			}
		}
		T_CHECK(have[0] == 1 && have[1] == 1 && have[2] == 1,
			"route: every unique dx name once: got %d %d %d", have[0], have[1],
			have[2]);
		T_CHECK(hop_is(&hops[3], "mx-a.example.test", 2525, DIME_DMTP_CLIENT_DUAL) &&
			    hop_is(&hops[4], "mx-a.example.test", 5587, DIME_DMTP_CLIENT_DUAL),
			"route: the preferred MX first, both ports: got %s:%u %s:%u", hops[3].host,
			hops[3].port, hops[4].host, hops[4].port);
		if (strcmp(hops[5].host, "mx-b.example.test") == 0) {
			b_first = 1;
			T_CHECK(hop_is(&hops[7], "MX-C.example.test", 2525, DIME_DMTP_CLIENT_DUAL),
				"route: then mx-c: got %s", hops[7].host);
		} else {
			c_first = 1;
			T_CHECK(
			    hop_is(&hops[5], "MX-C.example.test", 2525, DIME_DMTP_CLIENT_DUAL) &&
				hop_is(&hops[7], "mx-b.example.test", 2525, DIME_DMTP_CLIENT_DUAL),
			    "route: the equal MX hosts: got %s then %s", hops[5].host,
			    hops[7].host);
		}
		T_CHECK(hops[6].port == 5587 && hops[8].port == 5587 &&
			    strcmp(hops[5].host, hops[6].host) == 0,
			"route: each MX host on both ports in turn");
	}
	T_CHECK(seen_first[0] + seen_first[1] + seen_first[2] >= 2,
		"route: the dx order never changed in 64 rounds");
	T_CHECK(b_first && c_first, "route: equal MX preferences never changed order in 64 rounds");

	/* default ports; cap; one MX port */
	rc = dime_dx_route(hops, DIME_DX_HOPS_MAX, &n, t_dns, &mr, NULL, why, sizeof(why));
	T_CHECK(rc == DIME_OK && n == 9 && hops[0].port == 26 && hops[3].port == 25 &&
		    hops[4].port == 587,
		"route: default ports: got %d n %zu %u %u %u", rc, n, hops[0].port, hops[3].port,
		hops[4].port);
	rc = dime_dx_route(hops, 2, &n, t_dns, &mr, NULL, why, sizeof(why));
	T_CHECK(rc == DIME_OK && n == 2 && hops[0].port == 26 && hops[1].port == 26,
		"route: cap 2: got %d n %zu", rc, n);
	ports.mx[1] = 0;
	rc = dime_dx_route(hops, DIME_DX_HOPS_MAX, &n, t_dns, &mr, &ports, why, sizeof(why));
	T_CHECK(rc == DIME_OK && n == 6 &&
		    hop_is(&hops[3], "mx-a.example.test", 2525, DIME_DMTP_CLIENT_DUAL),
		"route: one MX port: got %d n %zu", rc, n);

	/* no dx: the MX host alone */
	mr_for(&mr, "onemx.example.test", "");
	rc = dime_dx_route(hops, DIME_DX_HOPS_MAX, &n, t_dns, &mr, NULL, why, sizeof(why));
	T_CHECK(rc == DIME_OK && n == 2 &&
		    hop_is(&hops[0], "mx.onemx.example.test", 25, DIME_DMTP_CLIENT_DUAL) &&
		    hop_is(&hops[1], "mx.onemx.example.test", 587, DIME_DMTP_CLIENT_DUAL),
		"route: MX only: got %d n %zu %s", rc, n, hops[0].host);
	/* no dx and no MX; the null MX */
	mr_for(&mr, "nomx.example.test", "");
	rc = dime_dx_route(hops, DIME_DX_HOPS_MAX, &n, t_dns, &mr, NULL, why, sizeof(why));
	T_CHECK(rc == DIME_E_NOTFOUND && n == 0 && strstr(why, "nomx.example.test") != NULL,
		"route: no dx, no MX: got %d n %zu (%s), want not found", rc, n, why);
	mr_for(&mr, "nullmx.example.test", "");
	rc = dime_dx_route(hops, DIME_DX_HOPS_MAX, &n, t_dns, &mr, NULL, why, sizeof(why));
	T_CHECK(rc == DIME_E_NOTFOUND && n == 0, "route: null MX: got %d n %zu, want not found", rc,
		n);
	/* a dx value and no MX */
	mr_for(&mr, "nomx.example.test", " dx=dx1.example.test");
	rc = dime_dx_route(hops, DIME_DX_HOPS_MAX, &n, t_dns, &mr, NULL, why, sizeof(why));
	T_CHECK(rc == DIME_OK && n == 1 &&
		    hop_is(&hops[0], "dx1.example.test", 26, DIME_DMTP_CLIENT_IMPLICIT),
		"route: dx only: got %d n %zu", rc, n);
	/* not a found record */
	mr.status = DIME_MR_LEGACY;
	rc = dime_dx_route(hops, DIME_DX_HOPS_MAX, &n, t_dns, &mr, NULL, why, sizeof(why));
	T_CHECK(rc == DIME_E_INVALID && n == 0, "route: legacy: got %d, want invalid", rc);
}

int
main(void)
{
	t_init();
	if (t_mkdtemp("dx") != 0)
		return 1;
	setup_tls();
	setup_keys();
	setup_dns();
	test_session(DIME_DMTP_SESS_DMTP);
	test_session(DIME_DMTP_SESS_DUAL);
	test_mismatch(DIME_DMTP_SESS_DMTP);
	test_mismatch(DIME_DMTP_SESS_DUAL);
	test_addresses();
	test_failures();
	test_route();
	dime_dns_free(t_dns);
	dime_ks_free(t_ks);
	SSL_CTX_free(t_srv_ctx);
	free(t_der);
	t_rm_rf(t_dir);
	return t_done("dx");
}

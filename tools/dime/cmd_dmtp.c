/* dime dmtp send / sgnt / hist / vrfy / raw: a blocking DMTP client over TLS 1.2 with the one
 * DMTP cipher suite, implicit (port 26) or elevated with STARTTLS <host> MODE=DMTP (dual
 * hosts). Replies go to stdout as received; what the client itself says goes to stderr. */

#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli.h"
#include "dime/codec.h"
#include "dime/dir.h"
#include "dime/dmtp.h"
#include "dime/dmtpc.h"
#include "dime/msg_armor.h"
#include "dime/mrec.h"

#define DMTP_CIPHER	 "ECDHE-RSA-AES256-GCM-SHA384"
#define DMTP_REPLY_CAP	 (1u << 20) /* a multi-line reply: a HIST chain of armored signets */
#define DMTP_TIMEOUT_DEF 600u	    /* s; the spec has the sender wait >= 8 min after DATA */

struct dmtp_opts {
	const char *to, *starttls, *sni, *mrec, *helo;
	unsigned timeout_s;
	const char *from_domain, *from_fp, *to_domain, *to_fp; /* send */
	const char *fp, *start, *stop;			       /* sgnt, hist, vrfy */
	const char *arg;				       /* FOR / ADDR */
};

struct dmtp_conn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	char in[4096];
	size_t in_off, in_len;
	char *reply; /* DMTP_REPLY_CAP */
	int code;    /* of the last reply */
};

static const char dmtp_common_usage[] =
    "connection:\n"
    "  --to HOST:PORT     the DMTP host ([V6]:PORT for IPv6); required\n"
    "  --starttls HOST    a dual-protocol host: plain banner, then STARTTLS <HOST> MODE=DMTP\n"
    "                     (default: implicit TLS, as on port 26)\n"
    "  --sni NAME         the TLS server name (default: the STARTTLS host, else none)\n"
    "  --mrec RECORD      the destination's _dime record: its tls= values must match the\n"
    "                     server certificate (else its SHA-512 is printed on stderr)\n"
    "  --helo NAME        the name sent with EHLO (default: this host's name)\n"
    "  --timeout SECONDS  per reply (default 600)\n"
    "TLS 1.2 with ECDHE-RSA-AES256-GCM-SHA384 only; no X.509 validation (DIME checks the\n"
    "certificate through the record's tls= field). Replies are printed on stdout.\n"
    "Exit status: 0 on a 2xx final reply, 1 on a 4xx/5xx one, 2 on usage, connection or\n"
    "protocol errors.\n";

static const char send_usage[] =
    "usage: dime dmtp send --to HOST:PORT [connection options] [--from-domain D --from-fp FP\n"
    "                      --to-domain D --to-fp FP] < MESSAGE\n"
    "\n"
    "Sends one D/MIME message (armored or binary, on stdin) with MAIL, RCPT and DATA. The\n"
    "origin and destination domains and fingerprints come from the message's envelope, opened\n"
    "with the origin organisation's key from the store, unless given.\n";
static const char sgnt_usage[] =
    "usage: dime dmtp sgnt FOR [--fp FP] --to HOST:PORT [connection options]\n"
    "\n"
    "Asks for the signet of FOR (a domain or a mailbox), the current one or the one with FP.\n";
static const char hist_usage[] =
    "usage: dime dmtp hist ADDR [--start FP] [--stop FP] --to HOST:PORT [connection options]\n"
    "\n"
    "Asks for the chain of a user's signets.\n";
static const char vrfy_usage[] =
    "usage: dime dmtp vrfy FOR --fp FP --to HOST:PORT [connection options]\n"
    "\n"
    "Asks whether the signet of FOR with FP is current.\n";
static const char raw_usage[] =
    "usage: dime dmtp raw --to HOST:PORT [connection options] < LINES\n"
    "\n"
    "Sends each line of stdin and prints the replies (after a 354, lines are sent without\n"
    "waiting until a line holding a single dot). A line STARTTLS ... that gets a 220 starts\n"
    "TLS. The exit status follows the last reply. For tests.\n";

static void
dmtp_ssl_err(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		cli_err("dmtp: %s: %s", what, buf);
	} else {
		cli_err("dmtp: %s: %s", what, errno != 0 ? strerror(errno) : "connection closed");
	}
	ERR_clear_error();
}

static int
dmtp_connect(struct dmtp_conn *c, const char *to, unsigned timeout_s)
{
	char host[256];
	const char *colon = strrchr(to, ':'), *h = to;
	size_t hl;
	struct addrinfo hints, *res = NULL, *ai;
	struct timeval tv = {.tv_sec = (time_t)timeout_s};
	int gai, e = 0;

	if (colon == NULL || colon[1] == '\0')
		return cli_err("dmtp: --to %s: want HOST:PORT", to);
	hl = (size_t)(colon - to);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(host))
		return cli_err("dmtp: --to %s: bad host", to);
	memcpy(host, h, hl);
	host[hl] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((gai = getaddrinfo(host, colon + 1, &hints, &res)) != 0)
		return cli_err("dmtp: %s: %s", to, gai_strerror(gai));
	c->fd = -1;
	for (ai = res; ai != NULL && c->fd < 0; ai = ai->ai_next) {
		c->fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (c->fd >= 0 && connect(c->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			e = errno;
			close(c->fd);
			c->fd = -1;
		}
	}
	freeaddrinfo(res);
	if (c->fd < 0)
		return cli_err("dmtp: %s: %s", to, strerror(e != 0 ? e : EHOSTUNREACH));
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return CLI_OK;
}

static int
dmtp_write(struct dmtp_conn *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k;

		if (c->ssl != NULL) {
			int w = SSL_write(c->ssl, p, n > 1u << 30 ? 1 << 30 : (int)n);

			if (w <= 0) {
				dmtp_ssl_err("write");
				return CLI_ERR;
			}
			k = w;
		} else {
			k = write(c->fd, p, n);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				return cli_err("dmtp: write: %s", strerror(errno));
		}
		p += k;
		n -= (size_t)k;
	}
	return CLI_OK;
}

/* One line into line (cap > DIME_DMTPC_LINE_MAX), terminator included. Returns its length, 0
 * on EOF, -1 on error, timeout or a line over the limit (reported). */
static long
dmtp_line(struct dmtp_conn *c, char *line, size_t cap)
{
	size_t n = 0;

	for (;;) {
		while (c->in_off < c->in_len) {
			char ch = c->in[c->in_off++];

			if (n + 1 >= cap || n >= DIME_DMTPC_LINE_MAX) {
				cli_err("dmtp: reply line longer than %u octets",
					DIME_DMTPC_LINE_MAX);
				return -1;
			}
			line[n++] = ch;
			if (ch == '\n') {
				line[n] = '\0';
				return (long)n;
			}
		}
		if (c->ssl != NULL) {
			int r = SSL_read(c->ssl, c->in, (int)sizeof(c->in));

			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);

				if (e == SSL_ERROR_ZERO_RETURN && n == 0)
					return 0;
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					cli_err("dmtp: no reply within the timeout");
					return -1;
				}
				if (n == 0 && e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
					return 0; /* closed without close_notify */
				dmtp_ssl_err("read");
				return -1;
			}
			c->in_len = (size_t)r;
		} else {
			ssize_t r = read(c->fd, c->in, sizeof(c->in));

			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				cli_err("dmtp: read: %s", errno == EAGAIN || errno == EWOULDBLOCK
							      ? "no reply within the timeout"
							      : strerror(errno));
				return -1;
			}
			if (r == 0)
				return n == 0 ? 0 : -1;
			c->in_len = (size_t)r;
		}
		c->in_off = 0;
	}
}

/* Read one whole reply, printing each line. Returns CLI_OK (c->code, c->reply set) or CLI_ERR. */
static int
dmtp_reply(struct dmtp_conn *c)
{
	struct dime_dmtpc_reply r;
	char line[DIME_DMTPC_LINE_MAX + 2];
	const char *why;
	int rc;

	c->code = 0;
	dime_dmtpc_reply_init(&r, c->reply, DMTP_REPLY_CAP);
	do {
		long n = dmtp_line(c, line, sizeof(line));

		if (n == 0)
			return cli_err("dmtp: the server closed the connection");
		if (n < 0)
			return CLI_ERR;
		fwrite(line, 1, (size_t)n, stdout);
		rc = dime_dmtpc_reply_line(&r, &why, line, (size_t)n);
	} while (rc == DIME_E_AGAIN);
	fflush(stdout);
	if (rc != DIME_OK)
		return cli_err("dmtp: bad reply: %s", why);
	c->code = r.code;
	return CLI_OK;
}

/* Send one command line (LF added) and read its reply. */
static int
dmtp_cmd(struct dmtp_conn *c, const char *line)
{
	if (dmtp_write(c, line, strlen(line)) != CLI_OK || dmtp_write(c, "\n", 1) != CLI_OK)
		return CLI_ERR;
	return dmtp_reply(c);
}

static int
dmtp_cmd_struct(struct dmtp_conn *c, const struct dime_dmtp_cmd *cmd)
{
	char line[DIME_DMTP_LINE_MAX + 1];
	size_t n;

	if (dime_dmtp_format(line, sizeof(line), &n, cmd) != DIME_OK)
		return cli_err("dmtp: cannot form a %s command from these arguments",
			       dime_dmtp_verb_name(cmd->verb));
	if (dmtp_write(c, line, n) != CLI_OK)
		return CLI_ERR;
	return dmtp_reply(c);
}

/* The certificate the server showed: checked against the record's tls= values when a record is
 * given (DIME spec Part 7: the TLS field, not X.509, validates a DMTP host), else its SHA-512
 * printed so that the user sees what they talk to. */
static int
dmtp_check_cert(struct dmtp_conn *c, const struct dmtp_opts *o)
{
	X509 *x = SSL_get1_peer_certificate(c->ssl);
	unsigned char *der = NULL, md[64];
	char b64[DIME_FP_B64_LEN + 1];
	size_t b64_len = 0;
	int der_len, rc = CLI_ERR;

	if (x == NULL)
		return cli_err("dmtp: the server showed no certificate");
	if ((der_len = i2d_X509(x, &der)) <= 0 ||
	    EVP_Digest(der, (size_t)der_len, md, NULL, EVP_sha512(), NULL) != 1 ||
	    dime_b64_encode(b64, sizeof(b64), &b64_len, md, sizeof(md), DIME_B64_NOPAD) !=
		DIME_OK) {
		cli_err("dmtp: cannot read the server certificate");
		goto out;
	}
	if (o->mrec == NULL) {
		fprintf(stderr,
			"dime: dmtp: server certificate SHA-512(DER) %s (not validated: "
			"no --mrec)\n",
			b64);
		rc = CLI_OK;
		goto out;
	}
	{
		char *argv1[1] = {(char *)o->mrec};
		struct dime_mrec m;
		const char *why;
		size_t len;
		char *rec = cli_mrec_join(1, argv1, 0, &len, &why);

		if (rec == NULL) {
			cli_err("dmtp: --mrec: %s", why);
			goto out;
		}
		if (dime_mrec_parse(&m, &why, rec, len) != DIME_OK) {
			free(rec);
			cli_err("dmtp: --mrec: %s", why);
			goto out;
		}
		free(rec);
		if (dime_mrec_tls_check(&m, der, (size_t)der_len) != DIME_OK) {
			cli_no("dmtp: the server certificate (SHA-512 %s) matches no tls= value of "
			       "the record",
			       b64);
			rc = CLI_NO;
			goto out;
		}
		fprintf(stderr, "dime: dmtp: server certificate matches the record's tls=\n");
		rc = CLI_OK;
	}
out:
	OPENSSL_free(der);
	X509_free(x);
	return rc;
}

static int
dmtp_tls(struct dmtp_conn *c, const struct dmtp_opts *o, const char *sni)
{
	int rc;

	if ((c->ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(c->ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(c->ctx, DMTP_CIPHER) != 1 ||
	    (c->ssl = SSL_new(c->ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		dmtp_ssl_err("TLS setup");
		return CLI_ERR;
	}
	SSL_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);
	SSL_set_options(c->ssl, SSL_OP_NO_RENEGOTIATION);
	if (sni != NULL && SSL_set_tlsext_host_name(c->ssl, sni) != 1) {
		dmtp_ssl_err("SNI");
		return CLI_ERR;
	}
	if ((rc = SSL_connect(c->ssl)) != 1) {
		dmtp_ssl_err("TLS handshake");
		SSL_free(c->ssl);
		c->ssl = NULL;
		return CLI_ERR;
	}
	/* the context allows nothing else, but a DMTP session on anything else must stop */
	if (SSL_version(c->ssl) != TLS1_2_VERSION ||
	    strcmp(SSL_get_cipher_name(c->ssl), DMTP_CIPHER) != 0)
		return cli_err("dmtp: negotiated %s %s, DMTP needs TLSv1.2 %s",
			       SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl), DMTP_CIPHER);
	return dmtp_check_cert(c, o);
}

/* A DMTP banner or mode reply names DMTP among its words. */
static int
dmtp_says_dmtp(const char *text)
{
	const char *p = strstr(text, "DMTP");

	return p != NULL && (p == text || p[-1] == ' ') && (p[4] == '\0' || p[4] == ' ');
}

/* Connect, TLS, banner, EHLO: a DMTP session ready for commands. Returns CLI_OK, CLI_NO (the
 * server refused us, or its certificate is not the record's), CLI_ERR. */
static int
dmtp_open(struct dmtp_conn *c, const struct dmtp_opts *o, int ehlo)
{
	char line[300], me[256];
	int rc;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	if ((c->reply = malloc(DMTP_REPLY_CAP)) == NULL)
		return cli_err("dmtp: out of memory");
	if ((rc = dmtp_connect(c, o->to, o->timeout_s)) != CLI_OK)
		return rc;
	if (o->starttls == NULL) {
		if ((rc = dmtp_tls(c, o, o->sni)) != CLI_OK)
			return rc;
		if ((rc = dmtp_reply(c)) != CLI_OK)
			return rc;
		if (c->code != 220)
			return cli_no("dmtp: %s refused the session (%d)", o->to, c->code);
		if (!dmtp_says_dmtp(c->reply))
			return cli_no("dmtp: %s: the banner does not name DMTP", o->to);
	} else {
		if ((rc = dmtp_reply(c)) != CLI_OK)
			return rc;
		if (c->code != 220)
			return cli_no("dmtp: %s refused the session (%d)", o->to, c->code);
		/* spec Part 7, dual protocol hosts: no DMTP in the banner, no elevation */
		if (!dmtp_says_dmtp(c->reply))
			return cli_no("dmtp: %s: the banner does not name DMTP: not a DMTP host",
				      o->to);
		snprintf(line, sizeof(line), "STARTTLS <%s> MODE=DMTP", o->starttls);
		if ((rc = dmtp_cmd(c, line)) != CLI_OK)
			return rc;
		if (c->code != 220)
			return cli_no("dmtp: STARTTLS refused (%d)", c->code);
		if ((rc = dmtp_tls(c, o, o->sni != NULL ? o->sni : o->starttls)) != CLI_OK)
			return rc;
		/* after the handshake: 250 OK DMTP ... (the third token names the mode) */
		if ((rc = dmtp_reply(c)) != CLI_OK)
			return rc;
		if (c->code != 250 || strncmp(c->reply, "OK DMTP", 7) != 0 ||
		    (c->reply[7] != '\0' && c->reply[7] != ' ')) {
			(void)dmtp_cmd(c, "QUIT");
			return cli_no("dmtp: the connection was not elevated into DMTP mode");
		}
	}
	if (!ehlo)
		return CLI_OK;
	if (o->helo != NULL)
		snprintf(me, sizeof(me), "%s", o->helo);
	else if (gethostname(me, sizeof(me) - 1) != 0 || me[0] == '\0')
		strcpy(me, "localhost");
	me[sizeof(me) - 1] = '\0';
	snprintf(line, sizeof(line), "EHLO <%s>", me);
	if ((rc = dmtp_cmd(c, line)) != CLI_OK)
		return rc;
	return c->code == 250 ? CLI_OK : cli_no("dmtp: EHLO refused (%d)", c->code);
}

static void
dmtp_close(struct dmtp_conn *c, int quit)
{
	if (quit && c->fd >= 0)
		(void)dmtp_cmd(c, "QUIT");
	if (c->ssl != NULL) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	free(c->reply);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static int
dmtp_verdict(int code)
{
	return code >= 200 && code < 300 ? CLI_OK : CLI_NO;
}

/* Options common to every subcommand plus the ones in `extra` (name, field). Positional
 * arguments: at most `n_pos` (into o->arg). Returns CLI_OK, or CLI_ERR (usage printed). */
static int
dmtp_parse(struct dmtp_opts *o, int argc, char **argv, const char *usage, int n_pos,
	   const char *const *extra_names, const char **const *extra_vals)
{
	int pos = 0;

	memset(o, 0, sizeof(*o));
	o->timeout_s = DMTP_TIMEOUT_DEF;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], **dst = NULL;
		static const char *const names[] = {"--to",   "--starttls", "--sni",
						    "--mrec", "--helo",	    NULL};
		const char **vals[] = {&o->to, &o->starttls, &o->sni, &o->mrec, &o->helo};

		for (int k = 0; names[k] != NULL; k++)
			if (strcmp(a, names[k]) == 0)
				dst = vals[k];
		for (int k = 0; extra_names != NULL && extra_names[k] != NULL; k++)
			if (strcmp(a, extra_names[k]) == 0)
				dst = extra_vals[k];
		if (strcmp(a, "--timeout") == 0) {
			char *end;
			unsigned long t;

			if (i + 1 >= argc)
				return cli_err("dmtp: --timeout needs a value\n%s", usage);
			t = strtoul(argv[++i], &end, 10);
			if (*end != '\0' || t == 0 || t > 86400)
				return cli_err("dmtp: --timeout %s: want 1..86400 seconds",
					       argv[i]);
			o->timeout_s = (unsigned)t;
			continue;
		}
		if (dst != NULL) {
			if (i + 1 >= argc)
				return cli_err("dmtp: %s needs a value\n%s", a, usage);
			*dst = argv[++i];
			continue;
		}
		if (a[0] == '-' && a[1] != '\0')
			return cli_err("dmtp: unknown option %s\n%s", a, usage);
		if (pos++ >= n_pos)
			return cli_err("dmtp: unexpected argument %s\n%s", a, usage);
		o->arg = a;
	}
	if (o->to == NULL)
		return cli_err("dmtp: --to HOST:PORT missing\n%s", usage);
	if (n_pos > 0 && o->arg == NULL)
		return cli_err("dmtp: argument missing\n%s", usage);
	return CLI_OK;
}

static int
dmtp_help(int argc, char **argv, const char *usage)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			printf("%s\n%s", usage, dmtp_common_usage);
			return 1;
		}
	return 0;
}

/* Fill what --from-domain/--from-fp/--to-domain/--to-fp left out from the envelope: the
 * origin's org key opens chunk 4 (author, destination and its fingerprint); the origin's
 * fingerprint is its latest org signet's full one. */
static int
dmtp_envelope(struct dmtp_opts *o, char from_domain[256], char from_fp[DIME_FP_B64_LEN + 1],
	      char to_domain[256], char to_fp[DIME_FP_B64_LEN + 1], const uint8_t *bin,
	      size_t bin_len)
{
	struct dime_pl_dir *dir = NULL;
	struct dime_msg_envelope env;
	const struct dime_signet *s = NULL;
	const char *why = "", *ident = NULL;
	uint32_t key;
	size_t n;
	int rc = CLI_ERR;

	snprintf(from_domain, 256, "%s", o->from_domain != NULL ? o->from_domain : "");
	snprintf(from_fp, DIME_FP_B64_LEN + 1, "%s", o->from_fp != NULL ? o->from_fp : "");
	snprintf(to_domain, 256, "%s", o->to_domain != NULL ? o->to_domain : "");
	snprintf(to_fp, DIME_FP_B64_LEN + 1, "%s", o->to_fp != NULL ? o->to_fp : "");
	if (from_domain[0] && from_fp[0] && to_domain[0] && to_fp[0])
		return CLI_OK;
	if (dime_pl_dir_open(&dir, cli.store_path, &why) != DIME_OK)
		return cli_err("dmtp: %s (or give --from-domain --from-fp --to-domain --to-fp)",
			       why);
	if (dime_pl_dir_find(dir, &key, &ident, &env, &why, bin, bin_len, DIME_ACTOR_ORIGIN,
			     DIME_STORE_ORG_KEY, o->from_domain, NULL) != DIME_OK) {
		cli_err("dmtp: no hosted organisation opens the message's origin envelope: %s",
			why);
		goto out;
	}
	if (from_domain[0] == '\0')
		snprintf(from_domain, 256, "%s", ident);
	if (to_domain[0] == '\0')
		snprintf(to_domain, 256, "%s", env.destination);
	if (to_fp[0] == '\0' && dime_b64_encode(to_fp, DIME_FP_B64_LEN + 1, &n, env.destination_fp,
						DIME_FP_BYTES, DIME_B64_NOPAD) != DIME_OK) {
		cli_err("dmtp: cannot encode the destination fingerprint");
		goto out;
	}
	if (from_fp[0] == '\0') {
		if (dime_pl_dir_signet(dir, &s, &why, from_domain, DIME_STORE_ORG_SIGNET, NULL) !=
		    DIME_OK) {
			cli_err("dmtp: the org signet of %s: %s", from_domain, why);
			goto out;
		}
		if (dime_signet_fingerprint_b64(from_fp, s, DIME_FP_FULL) != DIME_OK) {
			cli_err("dmtp: cannot fingerprint the org signet of %s", from_domain);
			goto out;
		}
	}
	rc = CLI_OK;
out:
	if (s != NULL)
		dime_pl_dir_release(dir, s);
	dime_pl_dir_close(dir);
	return rc;
}

static int
dmtp_fill(struct dime_dmtp_cmd *cmd, enum dime_dmtp_verb verb, const char *addr, const char *fp)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->verb = verb;
	if (addr != NULL) {
		if (strlen(addr) > DIME_DMTP_ADDR_MAX)
			return cli_err("dmtp: %s: longer than %u characters", addr,
				       DIME_DMTP_ADDR_MAX);
		cmd->flags |= DIME_DMTP_F_ADDR;
		snprintf(cmd->addr, sizeof(cmd->addr), "%s", addr);
		if (strchr(addr, '@') != NULL)
			cmd->flags |= DIME_DMTP_F_MAILBOX;
	}
	if (fp != NULL) {
		if (strlen(fp) > DIME_DMTP_FP_CHARS)
			return cli_err("dmtp: fingerprint %s: longer than %u characters", fp,
				       DIME_DMTP_FP_CHARS);
		cmd->flags |= DIME_DMTP_F_FP;
		snprintf(cmd->fp, sizeof(cmd->fp), "%s", fp);
	}
	return CLI_OK;
}

static int
dmtp_send(int argc, char **argv)
{
	static const char *const names[] = {"--from-domain", "--from-fp", "--to-domain", "--to-fp",
					    NULL};
	struct dmtp_opts o;
	const char **vals[] = {&o.from_domain, &o.from_fp, &o.to_domain, &o.to_fp};
	char from_domain[256], from_fp[DIME_FP_B64_LEN + 1], to_domain[256],
	    to_fp[DIME_FP_B64_LEN + 1];
	struct dime_dmtp_cmd cmd;
	struct dmtp_conn c;
	uint8_t *raw = NULL, *bin = NULL;
	char *arm = NULL, *out = NULL;
	size_t raw_len = 0, bin_len = 0, arm_len = 0, n = 0;
	const char *why = "";
	int armored, rc;

	if (dmtp_help(argc, argv, send_usage))
		return CLI_OK;
	if (dmtp_parse(&o, argc, argv, send_usage, 0, names, vals) != CLI_OK)
		return CLI_ERR;
	memset(&c, 0, sizeof(c));
	c.fd = -1;
	if ((rc = cli_read(&raw, &raw_len, "-", DIME_MSG_MAX_BYTES * 2u)) != CLI_OK)
		goto out;
	if (dime_msg_unarmor(&bin, &bin_len, &armored, &why, raw, raw_len, NULL) != DIME_OK ||
	    bin_len == 0) {
		rc = cli_err("dmtp: not a D/MIME message: %s", bin_len == 0 ? "empty" : why);
		goto out;
	}
	if ((rc = dmtp_envelope(&o, from_domain, from_fp, to_domain, to_fp, bin, bin_len)) !=
	    CLI_OK)
		goto out;
	/* DATA carries the armored form with LF line ends (spec Part 7) */
	if (dime_msg_armor(&arm, &arm_len, bin, bin_len, NULL, 0) != DIME_OK) {
		rc = cli_err("dmtp: cannot armor the message");
		goto out;
	}
	/* dot-stuffing: a line that starts with '.' gets another (the server removes one) */
	if ((out = malloc(arm_len * 2 + 8)) == NULL) {
		rc = cli_err("dmtp: out of memory");
		goto out;
	}
	for (size_t i = 0; i < arm_len; i++) {
		if (arm[i] == '.' && (i == 0 || arm[i - 1] == '\n'))
			out[n++] = '.';
		out[n++] = arm[i];
	}
	if (n > 0 && out[n - 1] != '\n')
		out[n++] = '\n';
	memcpy(out + n, ".\n", 2);
	n += 2;

	if ((rc = dmtp_open(&c, &o, 1)) != CLI_OK)
		goto out;
	if ((rc = dmtp_fill(&cmd, DIME_DMTP_MAIL, from_domain, from_fp)) != CLI_OK ||
	    (rc = dmtp_cmd_struct(&c, &cmd)) != CLI_OK)
		goto out;
	if ((rc = dmtp_verdict(c.code)) != CLI_OK)
		goto quit;
	if ((rc = dmtp_fill(&cmd, DIME_DMTP_RCPT, to_domain, to_fp)) != CLI_OK ||
	    (rc = dmtp_cmd_struct(&c, &cmd)) != CLI_OK)
		goto out;
	if ((rc = dmtp_verdict(c.code)) != CLI_OK)
		goto quit;
	if ((rc = dmtp_cmd(&c, "DATA")) != CLI_OK)
		goto out;
	if (c.code != 354) {
		rc = dmtp_verdict(c.code) == CLI_OK ? CLI_ERR : CLI_NO;
		goto quit;
	}
	if ((rc = dmtp_write(&c, out, n)) != CLI_OK || (rc = dmtp_reply(&c)) != CLI_OK)
		goto out;
	rc = dmtp_verdict(c.code); /* 254 ACCEPTED or 255 DUPLICATE */
quit:
	dmtp_close(&c, 1);
out:
	dmtp_close(&c, 0);
	free(raw);
	if (bin != NULL)
		free(bin);
	free(arm);
	free(out);
	return rc;
}

static int
dmtp_query(int argc, char **argv, enum dime_dmtp_verb verb, const char *usage)
{
	static const char *const names[] = {"--fp", "--start", "--stop", NULL};
	struct dmtp_opts o;
	const char **vals[] = {&o.fp, &o.start, &o.stop};
	struct dime_dmtp_cmd cmd;
	struct dmtp_conn c;
	int rc;

	if (dmtp_help(argc, argv, usage))
		return CLI_OK;
	if (dmtp_parse(&o, argc, argv, usage, 1, names, vals) != CLI_OK)
		return CLI_ERR;
	if (verb != DIME_DMTP_HIST && (o.start != NULL || o.stop != NULL))
		return cli_err("dmtp: --start/--stop are for hist\n%s", usage);
	if (verb == DIME_DMTP_HIST && o.fp != NULL)
		return cli_err("dmtp: hist takes --start/--stop, not --fp\n%s", usage);
	if (verb == DIME_DMTP_VRFY && o.fp == NULL)
		return cli_err("dmtp: vrfy needs --fp\n%s", usage);
	if (dmtp_fill(&cmd, verb, o.arg, o.fp) != CLI_OK)
		return CLI_ERR;
	if (o.start != NULL) {
		cmd.flags |= DIME_DMTP_F_START;
		snprintf(cmd.start, sizeof(cmd.start), "%.86s", o.start);
	}
	if (o.stop != NULL) {
		cmd.flags |= DIME_DMTP_F_STOP;
		snprintf(cmd.stop, sizeof(cmd.stop), "%.86s", o.stop);
	}
	{
		char line[DIME_DMTP_LINE_MAX + 1];
		size_t n;

		/* refuse bad arguments before connecting */
		if (dime_dmtp_format(line, sizeof(line), &n, &cmd) != DIME_OK)
			return cli_err("dmtp: not a valid %s: check FOR and the fingerprints\n%s",
				       dime_dmtp_verb_name(verb), usage);
	}
	if ((rc = dmtp_open(&c, &o, 1)) != CLI_OK) {
		dmtp_close(&c, 0);
		return rc;
	}
	if ((rc = dmtp_cmd_struct(&c, &cmd)) == CLI_OK)
		rc = dmtp_verdict(c.code);
	dmtp_close(&c, rc != CLI_ERR);
	return rc;
}

static int
dmtp_sgnt(int argc, char **argv)
{
	return dmtp_query(argc, argv, DIME_DMTP_SGNT, sgnt_usage);
}

static int
dmtp_hist(int argc, char **argv)
{
	return dmtp_query(argc, argv, DIME_DMTP_HIST, hist_usage);
}

static int
dmtp_vrfy(int argc, char **argv)
{
	return dmtp_query(argc, argv, DIME_DMTP_VRFY, vrfy_usage);
}

/* Lines from stdin, sent as they are (LF-terminated); a reply is read after each, except
 * inside DATA. STARTTLS answered with 220 starts TLS and reads the mode reply. */
static int
dmtp_raw(int argc, char **argv)
{
	struct dmtp_opts o;
	struct dmtp_conn c;
	char line[8192];
	int rc, in_data = 0, last = 0;

	if (dmtp_help(argc, argv, raw_usage))
		return CLI_OK;
	if (dmtp_parse(&o, argc, argv, raw_usage, 0, NULL, NULL) != CLI_OK)
		return CLI_ERR;
	memset(&c, 0, sizeof(c));
	c.fd = -1;
	if ((c.reply = malloc(DMTP_REPLY_CAP)) == NULL)
		return cli_err("dmtp: out of memory");
	if ((rc = dmtp_connect(&c, o.to, o.timeout_s)) != CLI_OK)
		goto out;
	if (o.starttls == NULL && (rc = dmtp_tls(&c, &o, o.sni)) != CLI_OK)
		goto out;
	if ((rc = dmtp_reply(&c)) != CLI_OK)
		goto out;
	last = c.code;
	while (fgets(line, sizeof(line), stdin) != NULL) {
		size_t n = strlen(line);

		if (n == 0 || line[n - 1] != '\n') {
			if (n + 1 >= sizeof(line)) {
				rc = cli_err("dmtp: raw: input line longer than %zu octets",
					     sizeof(line) - 2);
				goto out;
			}
			line[n++] = '\n'; /* the last line without LF */
			line[n] = '\0';
		}
		if ((rc = dmtp_write(&c, line, n)) != CLI_OK)
			goto out;
		if (in_data) {
			if (strcmp(line, ".\n") != 0 && strcmp(line, ".\r\n") != 0)
				continue;
			in_data = 0;
		}
		if ((rc = dmtp_reply(&c)) != CLI_OK)
			goto out;
		last = c.code;
		if (c.code == 354)
			in_data = 1;
		if (c.code == 220 && c.ssl == NULL && strncasecmp(line, "STARTTLS", 8) == 0) {
			const char *sni = o.sni;
			char host[256];

			if (sni == NULL && sscanf(line + 8, " <%255[^>]>", host) == 1)
				sni = host;
			if ((rc = dmtp_tls(&c, &o, sni)) != CLI_OK ||
			    (rc = dmtp_reply(&c)) != CLI_OK)
				goto out;
			last = c.code;
		}
		if (c.code == 221)
			break;
	}
	rc = last >= 200 && last < 400 ? CLI_OK : CLI_NO;
out:
	dmtp_close(&c, 0);
	return rc;
}

int
cmd_dmtp(int argc, char **argv)
{
	static const struct cli_cmd cmds[] = {
	    {"send", "send a D/MIME message (MAIL, RCPT, DATA)", dmtp_send},
	    {"sgnt", "fetch a signet (SGNT)", dmtp_sgnt},
	    {"hist", "fetch a user's signet chain (HIST)", dmtp_hist},
	    {"vrfy", "ask whether a signet is current (VRFY)", dmtp_vrfy},
	    {"raw", "send stdin's lines, print the replies (tests)", dmtp_raw},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch("dmtp", cmds, argc, argv);
}

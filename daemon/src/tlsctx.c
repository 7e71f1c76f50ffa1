/* The server's TLS contexts (spec Part 7; ECOSYSTEM.md §4.1): TLS 1.2 only, the one DMTP
 * cipher suite, no renegotiation, RSA certificates of at least 2048 bits. One SSL_CTX per
 * certificate; the servername callback of every context moves a handshake to the context
 * named by SNI, and any other name stays on the default, which the spec requires. */
#include "dime/tlsctx.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define TLSCTX_CIPHER	    "ECDHE-RSA-AES256-GCM-SHA384"
#define TLSCTX_RSA_MIN_BITS 2048

struct dime_tlsctx {
	/* The loader's reference plus one per holder (the server, each session that may still
	 * handshake): the servername callback of every context reads this struct, so it must
	 * outlive any handshake started on one of its contexts. */
	atomic_uint refs;
	size_t n;
	SSL_CTX *ctx[DIME_DCONF_MAX_CERTS];  /* ctx[0]: the default */
	SSL_CTX *smtp[DIME_DCONF_MAX_CERTS]; /* the same certificates, SMTP's policy */
	char name[DIME_DCONF_MAX_CERTS][256];
};

static void
tlsctx_why_ssl(char *why, size_t why_cap, const char *what, const char *path)
{
	char e[256];
	unsigned long code = ERR_peek_last_error();

	ERR_error_string_n(code, e, sizeof(e));
	ERR_clear_error();
	snprintf(why, why_cap, "%s: %s: %s", path, what, code != 0 ? e : "failed");
}

static int
tlsctx_servername(SSL *ssl, int *alert, void *arg)
{
	struct dime_tlsctx *t = arg;
	const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	SSL_CTX *const *set = t->ctx;

	(void)alert;
	if (host == NULL)
		return SSL_TLSEXT_ERR_NOACK; /* no SNI: the context chosen before stays */
	/* stay within the policy the handshake started with (DMTP's or SMTP's) */
	for (size_t i = 0; i < t->n; i++)
		if (SSL_get_SSL_CTX(ssl) == t->smtp[i])
			set = t->smtp;
	for (size_t i = 1; i < t->n; i++)
		if (strcasecmp(t->name[i], host) == 0) {
			if (SSL_set_SSL_CTX(ssl, set[i]) == NULL)
				return SSL_TLSEXT_ERR_ALERT_FATAL;
			return SSL_TLSEXT_ERR_OK;
		}
	/* An unknown name keeps the context the caller picked (the default or the STARTTLS
	 * host's); not acknowledging it is what the spec's "default certificate" means. */
	return SSL_TLSEXT_ERR_NOACK;
}

/* The DMTP policy, identical on every context: SSL_set_SSL_CTX moves only the certificate,
 * so the protocol and cipher limits must already hold on the context a handshake starts on.
 * smtp: the SMTP gateway's policy instead (STARTTLS toward the MTA): TLS 1.2 and later,
 * OpenSSL's default cipher lists (the system's security level), no renegotiation. */
static SSL_CTX *
tlsctx_one(struct dime_tlsctx *t, const struct dime_dconf_cert *cc, int smtp, char *why,
	   size_t why_cap)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *pk = NULL, *pub;
	X509 *x = NULL;
	FILE *f;

	if (ctx == NULL) {
		tlsctx_why_ssl(why, why_cap, "SSL_CTX_new", cc->cert);
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    (!smtp && (SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) != 1 ||
		       SSL_CTX_set_cipher_list(ctx, TLSCTX_CIPHER) != 1))) {
		tlsctx_why_ssl(why, why_cap, "TLS policy", cc->cert);
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
				     SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); /* idle connections hold no buffers */
	/* Check the certificate and key ourselves first: the system's security level would
	 * refuse a small key too, but with a message that does not say what DMTP needs. */
	if ((f = fopen(cc->cert, "r")) == NULL) {
		snprintf(why, why_cap, "%s: %s", cc->cert, strerror(errno));
		goto fail;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL) {
		tlsctx_why_ssl(why, why_cap, "not a PEM certificate", cc->cert);
		goto fail;
	}
	pub = X509_get0_pubkey(x);
	if (pub == NULL || EVP_PKEY_get_base_id(pub) != EVP_PKEY_RSA) {
		snprintf(why, why_cap, "%s: not an RSA certificate (DMTP needs ECDHE-RSA)",
			 cc->cert);
		goto fail;
	}
	if (EVP_PKEY_get_bits(pub) < TLSCTX_RSA_MIN_BITS) {
		snprintf(why, why_cap, "%s: RSA key of %d bits, DMTP needs at least %d", cc->cert,
			 EVP_PKEY_get_bits(pub), TLSCTX_RSA_MIN_BITS);
		goto fail;
	}
	if ((f = fopen(cc->key, "r")) == NULL) {
		snprintf(why, why_cap, "%s: %s", cc->key, strerror(errno));
		goto fail;
	}
	pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (pk == NULL) {
		tlsctx_why_ssl(why, why_cap, "not a PEM private key", cc->key);
		goto fail;
	}
	if (X509_check_private_key(x, pk) != 1) {
		ERR_clear_error();
		snprintf(why, why_cap, "%s: key does not match the certificate %s", cc->key,
			 cc->cert);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cc->cert) != 1) {
		tlsctx_why_ssl(why, why_cap, "cannot use the certificate", cc->cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey(ctx, pk) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		tlsctx_why_ssl(why, why_cap, "cannot use the key", cc->key);
		goto fail;
	}
	X509_free(x);
	EVP_PKEY_free(pk);
	SSL_CTX_set_tlsext_servername_callback(ctx, tlsctx_servername);
	SSL_CTX_set_tlsext_servername_arg(ctx, t);
	return ctx;
fail:
	X509_free(x);
	EVP_PKEY_free(pk);
	SSL_CTX_free(ctx);
	return NULL;
}

int
dime_tlsctx_new(struct dime_tlsctx **out, const struct dime_dconf *c, char *why, size_t why_cap)
{
	struct dime_tlsctx *t;

	*out = NULL;
	if (why_cap > 0)
		why[0] = '\0';
	if (c->n_certs == 0 || c->certs[0].cert[0] == '\0') {
		snprintf(why, why_cap, "no default certificate ([tls] cert, key)");
		return DIME_E_INVALID;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return DIME_E_NOMEM;
	atomic_init(&t->refs, 1);
	for (size_t i = 0; i < c->n_certs && i < DIME_DCONF_MAX_CERTS; i++) {
		if ((t->ctx[i] = tlsctx_one(t, &c->certs[i], 0, why, why_cap)) == NULL ||
		    (t->smtp[i] = tlsctx_one(t, &c->certs[i], 1, why, why_cap)) == NULL) {
			t->n = i + 1;
			dime_tlsctx_free(t);
			return DIME_E_INVALID;
		}
		snprintf(t->name[i], sizeof(t->name[i]), "%s", i == 0 ? "" : c->certs[i].name);
		t->n = i + 1;
	}
	*out = t;
	return DIME_OK;
}

struct dime_tlsctx *
dime_tlsctx_ref(struct dime_tlsctx *t)
{
	if (t != NULL)
		atomic_fetch_add(&t->refs, 1);
	return t;
}

void
dime_tlsctx_free(struct dime_tlsctx *t)
{
	if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	for (size_t i = 0; i < t->n; i++) {
		SSL_CTX_free(t->ctx[i]); /* sessions that hold a reference keep their context */
		SSL_CTX_free(t->smtp[i]);
	}
	free(t);
}

SSL_CTX *
dime_tlsctx_for(struct dime_tlsctx *t, const char *host)
{
	if (host != NULL)
		for (size_t i = 1; i < t->n; i++)
			if (strcasecmp(t->name[i], host) == 0)
				return t->ctx[i];
	return t->ctx[0];
}

SSL_CTX *
dime_tlsctx_smtp_for(struct dime_tlsctx *t, const char *host)
{
	if (host != NULL)
		for (size_t i = 1; i < t->n; i++)
			if (strcasecmp(t->name[i], host) == 0)
				return t->smtp[i];
	return t->smtp[0];
}

static int
tlsctx_write_pem(const char *path, mode_t mode, X509 *x, EVP_PKEY *pk, char *why, size_t why_cap)
{
	char tmp[4200];
	FILE *f = NULL;
	int fd, ok;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		snprintf(why, why_cap, "%s: path too long", path);
		return DIME_E_IO;
	}
	unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) < 0 ||
	    (f = fdopen(fd, "w")) == NULL) {
		snprintf(why, why_cap, "%s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return DIME_E_IO;
	}
	ok = x != NULL ? PEM_write_X509(f, x)
		       : PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
	ok = ok == 1 && fflush(f) == 0 && fsync(fileno(f)) == 0;
	if (fclose(f) != 0)
		ok = 0;
	/* Written whole under a temporary name, then renamed: never a half certificate. */
	if (!ok || rename(tmp, path) != 0) {
		snprintf(why, why_cap, "%s: %s", path, strerror(errno != 0 ? errno : EIO));
		unlink(tmp);
		return DIME_E_IO;
	}
	return DIME_OK;
}

int
dime_tlsctx_selfsigned(const char *host, const char *cert_path, const char *key_path, char *why,
		       size_t why_cap)
{
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	X509_NAME *nm;
	X509_EXTENSION *ext = NULL;
	X509V3_CTX v3;
	char san[300];
	uint8_t serial[16];
	BIGNUM *bn = NULL;
	int rc = DIME_E_CRYPTO;

	if (why_cap > 0)
		why[0] = '\0';
	if (strlen(host) == 0 || strlen(host) > 253 || strpbrk(host, ",\r\n /") != NULL) {
		snprintf(why, why_cap, "\"%s\" is not a host name", host);
		return DIME_E_CRYPTO;
	}
	snprintf(san, sizeof(san), "DNS:%s", host);
	if ((pk = EVP_RSA_gen(3072)) == NULL || (x = X509_new()) == NULL ||
	    RAND_bytes(serial, sizeof(serial)) != 1)
		goto out;
	serial[0] &= 0x7f; /* a positive serial number (RFC 5280 §4.1.2.2) */
	if ((bn = BN_bin2bn(serial, sizeof(serial), NULL)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL ||
	    X509_set_version(x, 2) != 1 || X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600) == NULL ||
	    X509_set_pubkey(x, pk) != 1)
		goto out;
	nm = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)host, -1, -1,
				       0) != 1 ||
	    X509_set_issuer_name(x, nm) != 1)
		goto out;
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san)) == NULL ||
	    X509_add_ext(x, ext, -1) != 1)
		goto out;
	if (X509_sign(x, pk, EVP_sha256()) <= 0)
		goto out;
	if ((rc = tlsctx_write_pem(key_path, 0600, NULL, pk, why, why_cap)) != DIME_OK ||
	    (rc = tlsctx_write_pem(cert_path, 0644, x, NULL, why, why_cap)) != DIME_OK)
		goto out;
	rc = DIME_OK;
out:
	if (rc == DIME_E_CRYPTO && (why_cap == 0 || why[0] == '\0'))
		tlsctx_why_ssl(why, why_cap, "self-signed certificate", host);
	X509_EXTENSION_free(ext);
	BN_free(bn);
	X509_free(x);
	EVP_PKEY_free(pk);
	return rc;
}

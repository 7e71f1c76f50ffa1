/* The server's TLS contexts: a self-signed RSA-3072 certificate with its SAN; handshakes in
 * memory (BIO pairs) with a TLS 1.2 client succeed with the one cipher and fail for TLS 1.3,
 * another cipher, or renegotiation; SNI picks the named certificate and unknown names get the
 * default; RSA keys below 2048 bits, mismatched keys and unreadable files are refused. */

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "dime/tlsctx.h"
#include "tlib.h"

/* Run a handshake between a fresh client and a server SSL on ctx. Returns 1 on success; *cn
 * gets the subject CN the client saw. */
static int
t_handshake(SSL_CTX *sctx, int client_max, const char *ciphers, const char *sni, char *cn,
	    size_t cn_cap, SSL **keep_c, SSL **keep_s)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
	BIO *cb = NULL, *sb = NULL;
	int ok = 0;

	cn[0] = '\0';
	SSL_CTX_free(cctx); /* c holds its reference */
	BIO_new_bio_pair(&cb, 0, &sb, 0);
	SSL_set_bio(c, cb, cb);
	SSL_set_bio(s, sb, sb);
	SSL_set_min_proto_version(c, TLS1_2_VERSION);
	SSL_set_max_proto_version(c, client_max);
	if (ciphers != NULL)
		SSL_set_cipher_list(c, ciphers);
	if (sni != NULL)
		SSL_set_tlsext_host_name(c, sni);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	for (int i = 0; i < 50; i++) {
		int rc = SSL_do_handshake(c), rs = SSL_do_handshake(s);

		if (rc == 1 && rs == 1) {
			ok = 1;
			break;
		}
		if ((rc != 1 && SSL_get_error(c, rc) != SSL_ERROR_WANT_READ) ||
		    (rs != 1 && SSL_get_error(s, rs) != SSL_ERROR_WANT_READ))
			break;
	}
	if (ok) {
		X509 *peer = SSL_get1_peer_certificate(c);

		X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn,
					  (int)cn_cap);
		X509_free(peer);
	}
	ERR_clear_error();
	if (ok && keep_c != NULL) {
		*keep_c = c;
		*keep_s = s;
		return ok;
	}
	SSL_free(c);
	SSL_free(s);
	return ok;
}

static int
t_make_rsa(const char *host, int bits, const char *cert, const char *key)
{
	EVP_PKEY *pk = EVP_RSA_gen((unsigned)bits);
	X509 *x = X509_new();
	FILE *f;
	int ok;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pk);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)host, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	ok = X509_sign(x, pk, EVP_sha256()) > 0;
	if ((f = fopen(cert, "w")) != NULL) {
		ok = ok && PEM_write_X509(f, x) == 1;
		fclose(f);
	}
	if ((f = fopen(key, "w")) != NULL) {
		ok = ok && PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) == 1;
		fclose(f);
	}
	X509_free(x);
	EVP_PKEY_free(pk);
	return ok;
}

static void
t_cert(struct dime_dconf_cert *c, const char *name, const char *cert, const char *key)
{
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->cert, sizeof(c->cert), "%s", cert);
	snprintf(c->key, sizeof(c->key), "%s", key);
}

int
main(void)
{
	struct dime_dconf conf;
	struct dime_tlsctx *t = NULL;
	char why[512], cn[256], p_dc[4096], p_dk[4096], p_sc[4096], p_sk[4096];
	struct stat sb;
	SSL *c = NULL, *s = NULL;
	int rc;

	if (t_mkdtemp("tlsctx") != 0)
		return 1;
	snprintf(p_dc, sizeof(p_dc), "%s", t_path("default.pem"));
	snprintf(p_dk, sizeof(p_dk), "%s", t_path("default.key"));
	snprintf(p_sc, sizeof(p_sc), "%s", t_path("sni.pem"));
	snprintf(p_sk, sizeof(p_sk), "%s", t_path("sni.key"));

	/* The embedded default's certificate: RSA-3072, v3, SAN DNS:host, key 0600. */
	rc = dime_tlsctx_selfsigned("default.example.org", p_dc, p_dk, why, sizeof(why));
	T_CHECK(rc == DIME_OK, "selfsigned: got %d (%s)", rc, why);
	T_CHECK(stat(p_dk, &sb) == 0 && (sb.st_mode & 0777) == 0600, "key mode: got %o",
		(unsigned)sb.st_mode & 0777);
	{
		FILE *f = fopen(p_dc, "r");
		X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
		GENERAL_NAMES *san;

		T_CHECK(x != NULL, "selfsigned: no certificate");
		if (x != NULL) {
			T_CHECK(X509_get_version(x) == 2, "version: got %ld, want 2 (v3)",
				X509_get_version(x));
			T_CHECK(EVP_PKEY_get_bits(X509_get0_pubkey(x)) == 3072, "bits: got %d",
				EVP_PKEY_get_bits(X509_get0_pubkey(x)));
			san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
			T_CHECK(san != NULL && sk_GENERAL_NAME_num(san) == 1 &&
				    sk_GENERAL_NAME_value(san, 0)->type == GEN_DNS &&
				    strcmp((const char *)ASN1_STRING_get0_data(
					       sk_GENERAL_NAME_value(san, 0)->d.dNSName),
					   "default.example.org") == 0,
				"SAN: want DNS:default.example.org");
			GENERAL_NAMES_free(san);
			X509_free(x);
		}
		if (f != NULL)
			fclose(f);
	}
	T_CHECK(t_make_rsa("sni.example.org", 2048, p_sc, p_sk), "cannot make the SNI cert");

	memset(&conf, 0, sizeof(conf));
	t_cert(&conf.certs[0], "", p_dc, p_dk);
	t_cert(&conf.certs[1], "sni.example.org", p_sc, p_sk);
	conf.n_certs = 2;
	rc = dime_tlsctx_new(&t, &conf, why, sizeof(why));
	T_CHECK(rc == DIME_OK, "tlsctx_new: got %d (%s)", rc, why);
	if (rc != DIME_OK)
		return t_done("test_daemon_tls");

	T_CHECK(t_handshake(dime_tlsctx_for(t, NULL), TLS1_3_VERSION, NULL, NULL, cn, sizeof(cn),
			    &c, &s),
		"TLS 1.2 handshake failed");
	if (c != NULL) {
		T_CHECK(SSL_version(c) == TLS1_2_VERSION, "version: got %s, want TLSv1.2",
			SSL_get_version(c));
		T_CHECK(strcmp(SSL_get_cipher_name(c), "ECDHE-RSA-AES256-GCM-SHA384") == 0,
			"cipher: got %s", SSL_get_cipher_name(c));
		T_CHECK(strcmp(cn, "default.example.org") == 0, "no SNI: got CN %s", cn);
		/* the server refuses a client's renegotiation */
		T_CHECK(SSL_renegotiate(c) != 1 || SSL_do_handshake(c) != 1 ||
			    SSL_read(s, cn, 1) > 0 || SSL_renegotiate_pending(c) == 1,
			"renegotiation went through");
		T_CHECK((SSL_get_options(s) & SSL_OP_NO_RENEGOTIATION) != 0,
			"SSL_OP_NO_RENEGOTIATION not set");
		SSL_free(c);
		SSL_free(s);
		ERR_clear_error();
	}
	T_CHECK(t_handshake(dime_tlsctx_for(t, NULL), TLS1_2_VERSION, NULL, "sni.example.org", cn,
			    sizeof(cn), NULL, NULL) &&
		    strcmp(cn, "sni.example.org") == 0,
		"SNI sni.example.org: got CN %s", cn);
	T_CHECK(t_handshake(dime_tlsctx_for(t, NULL), TLS1_2_VERSION, NULL, "SNI.Example.ORG", cn,
			    sizeof(cn), NULL, NULL) &&
		    strcmp(cn, "sni.example.org") == 0,
		"SNI in capitals: got CN %s", cn);
	T_CHECK(t_handshake(dime_tlsctx_for(t, NULL), TLS1_2_VERSION, NULL, "other.example.org", cn,
			    sizeof(cn), NULL, NULL) &&
		    strcmp(cn, "default.example.org") == 0,
		"unknown SNI: got CN %s, want the default", cn);
	T_CHECK(t_handshake(dime_tlsctx_for(t, "sni.example.org"), TLS1_2_VERSION, NULL, NULL, cn,
			    sizeof(cn), NULL, NULL) &&
		    strcmp(cn, "sni.example.org") == 0,
		"STARTTLS host: got CN %s", cn);
	T_CHECK(dime_tlsctx_for(t, "nope.example") == dime_tlsctx_for(t, NULL),
		"unknown host: not the default context");
	T_CHECK(!t_handshake(dime_tlsctx_for(t, NULL), TLS1_2_VERSION,
			     "ECDHE-RSA-AES128-GCM-SHA256", NULL, cn, sizeof(cn), NULL, NULL),
		"another cipher was accepted");
	T_CHECK(!t_handshake(dime_tlsctx_for(t, NULL), TLS1_2_VERSION, "AES256-GCM-SHA384", NULL,
			     cn, sizeof(cn), NULL, NULL),
		"a non-ECDHE cipher was accepted");
	/* The SMTP gateway's contexts: TLS 1.3 and other ciphers, the same certificates and SNI;
	 * SNI stays within the SMTP policy. */
	T_CHECK(dime_tlsctx_smtp_for(t, NULL) != dime_tlsctx_for(t, NULL),
		"smtp: the DMTP context was returned");
	if (t_handshake(dime_tlsctx_smtp_for(t, NULL), TLS1_3_VERSION, NULL, "sni.example.org", cn,
			sizeof(cn), &c, &s)) {
		T_CHECK(SSL_version(c) == TLS1_3_VERSION, "smtp: got %s, want TLSv1.3",
			SSL_get_version(c));
		T_CHECK(strcmp(cn, "sni.example.org") == 0, "smtp SNI: got CN %s", cn);
		SSL_free(c);
		SSL_free(s);
	} else {
		t_fail("smtp: TLS 1.3 handshake failed");
	}
	T_CHECK(t_handshake(dime_tlsctx_smtp_for(t, NULL), TLS1_2_VERSION,
			    "ECDHE-RSA-AES128-GCM-SHA256", "sni.example.org", cn, sizeof(cn), NULL,
			    NULL) &&
		    strcmp(cn, "sni.example.org") == 0,
		"smtp: TLS 1.2 with another cipher after SNI refused (CN %s)", cn);
	T_CHECK(t_handshake(dime_tlsctx_smtp_for(t, "sni.example.org"), TLS1_2_VERSION, NULL, NULL,
			    cn, sizeof(cn), NULL, NULL) &&
		    strcmp(cn, "sni.example.org") == 0,
		"smtp STARTTLS host: got CN %s", cn);
	ERR_clear_error();
	{
		/* a TLS 1.3-only client */
		SSL_CTX *sctx = dime_tlsctx_for(t, NULL);
		SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
		SSL *cc = SSL_new(cctx), *ss = SSL_new(sctx);
		BIO *cb = NULL, *sb2 = NULL;
		int ok = 0;

		BIO_new_bio_pair(&cb, 0, &sb2, 0);
		SSL_set_bio(cc, cb, cb);
		SSL_set_bio(ss, sb2, sb2);
		SSL_set_min_proto_version(cc, TLS1_3_VERSION);
		SSL_set_connect_state(cc);
		SSL_set_accept_state(ss);
		for (int i = 0; i < 20; i++)
			if (SSL_do_handshake(cc) == 1 && SSL_do_handshake(ss) == 1) {
				ok = 1;
				break;
			} else
				(void)SSL_do_handshake(ss);
		T_CHECK(!ok, "a TLS 1.3 client got through");
		SSL_free(cc);
		SSL_free(ss);
		SSL_CTX_free(cctx);
		ERR_clear_error();
	}
	{
		/* References (SIGHUP): the loader drops its own while a session still holds one;
		 * the set keeps serving an SNI handshake (its callback reads the set), and the
		 * holder's drop frees it (ASan sees a use after free or a leak otherwise). */
		struct dime_tlsctx *held = dime_tlsctx_ref(t);

		T_CHECK(held == t, "ref returns another set");
		dime_tlsctx_free(t);
		T_CHECK(t_handshake(dime_tlsctx_for(held, NULL), TLS1_2_VERSION, NULL,
				    "sni.example.org", cn, sizeof(cn), NULL, NULL) &&
			    strcmp(cn, "sni.example.org") == 0,
			"SNI after the loader's free: got CN %s", cn);
		T_CHECK(dime_tlsctx_ref(NULL) == NULL, "ref of NULL");
		t = held;
	}
	dime_tlsctx_free(t);
	t = NULL;

	/* Refusals: RSA-1024, a key of another certificate, a missing file, no default. */
	T_CHECK(t_make_rsa("weak.example.org", 1024, t_path("weak.pem"), t_path("weak.key")),
		"cannot make the weak cert");
	t_cert(&conf.certs[1], "weak.example.org", t_path("weak.pem"), t_path("weak.key"));
	rc = dime_tlsctx_new(&t, &conf, why, sizeof(why));
	T_CHECK(rc == DIME_E_INVALID && t == NULL && strstr(why, "1024 bits") != NULL,
		"RSA-1024: got %d (%s)", rc, why);
	t_cert(&conf.certs[1], "x.example.org", p_sc, p_dk);
	rc = dime_tlsctx_new(&t, &conf, why, sizeof(why));
	T_CHECK(rc == DIME_E_INVALID && t == NULL && strstr(why, "does not match") != NULL,
		"key mismatch: got %d (%s)", rc, why);
	t_cert(&conf.certs[1], "x.example.org", t_path("missing.pem"), p_sk);
	rc = dime_tlsctx_new(&t, &conf, why, sizeof(why));
	T_CHECK(rc == DIME_E_INVALID && t == NULL && strstr(why, "missing.pem") != NULL,
		"missing file: got %d (%s)", rc, why);
	conf.n_certs = 0;
	rc = dime_tlsctx_new(&t, &conf, why, sizeof(why));
	T_CHECK(rc == DIME_E_INVALID && t == NULL, "no certificate: got %d", rc);
	rc = dime_tlsctx_selfsigned("bad host/x", t_path("b.pem"), t_path("b.key"), why,
				    sizeof(why));
	T_CHECK(rc != DIME_OK, "selfsigned for a bad host name: got ok");
	t_rm_rf(t_dir);
	return t_done("test_daemon_tls");
}

#ifndef DIME_DAEMON_TLSCTX_H
#define DIME_DAEMON_TLSCTX_H
/* The server's TLS contexts: TLS 1.2 only, ECDHE-RSA-AES256-GCM-SHA384 only, no
 * renegotiation, RSA keys of at least 2048 bits; one context per configured certificate, SNI
 * (or the STARTTLS host) picks it, unknown names get the default. Reload swaps the set
 * atomically for new sessions (SIGHUP); sessions in progress keep theirs. */

#include <stddef.h>

#include "dime/common.h"
#include "dime/dconf.h"

typedef struct ssl_ctx_st SSL_CTX;
struct dime_tlsctx;

/* Load every certificate of c (certs[0] the default). Returns: DIME_OK, DIME_E_INVALID (why:
 * which file, what is wrong: unreadable, key mismatch, RSA < 2048), DIME_E_NOMEM. */
DIME_MUST_CHECK int dime_tlsctx_new(struct dime_tlsctx **t, const struct dime_dconf *c, char *why,
				    size_t why_cap);
/* Reference counted: dime_tlsctx_new returns t with one reference, each holder that may still
 * run a handshake on one of its contexts (the server, a session) takes its own, and
 * dime_tlsctx_free drops one; the last frees the set. A handshake needs t itself until its
 * ClientHello's SNI has been seen (the servername callback reads t), so a session holds its
 * reference until it ends; after it, OpenSSL's own count keeps the SSL_CTX. Any thread.
 * Returns: t. NULL-safe. */
struct dime_tlsctx *dime_tlsctx_ref(struct dime_tlsctx *t);
/* Drop one reference (see dime_tlsctx_ref). NULL-safe. */
void dime_tlsctx_free(struct dime_tlsctx *t);
/* The context for host (NULL or unknown: the default); its SNI callback switches to the
 * matching one during the handshake. Borrowed, valid while t lives. */
SSL_CTX *dime_tlsctx_for(struct dime_tlsctx *t, const char *host);
/* The same for the SMTP gateway's STARTTLS (dime/smtpd.h): the same certificates and SNI
 * choice, but TLS 1.2 and later with OpenSSL's default ciphers (the MTA is no DMTP peer; the
 * DMTP contexts above are unchanged). Borrowed, valid while t lives. */
SSL_CTX *dime_tlsctx_smtp_for(struct dime_tlsctx *t, const char *host);

/* Write a self-signed RSA-3072 certificate for host into cert_path and key_path (0600), for
 * the embedded default. Returns: DIME_OK, DIME_E_IO, DIME_E_CRYPTO. */
DIME_MUST_CHECK int dime_tlsctx_selfsigned(const char *host, const char *cert_path,
					   const char *key_path, char *why, size_t why_cap);
#endif

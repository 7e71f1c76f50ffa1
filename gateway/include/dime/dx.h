#ifndef DIME_GATEWAY_DX_H
#define DIME_GATEWAY_DX_H
/* One outbound DMTP connection, blocking: the transport around the client session machine
 * (dime/dmtp_client.h) for callers that own a thread (the delivery agent's workers, the signet
 * fetcher, the CLI). It resolves the host (A, then AAAA, through dime/dns.h so that DNSSEC test
 * zones and the offline file apply; an IP literal is used as is), connects with a deadline,
 * speaks TLS 1.2 with the one DMTP cipher suite (implicit on port 26, or elevated with
 * `STARTTLS <host> MODE=DMTP` on a dual-protocol host), checks the server certificate, and runs
 * operations one at a time. docs/delivery.md.
 *
 * Certificate (spec Part 4 "TLS"; WIRE.md): when the destination's record lists tls= values,
 * the certificate must match one of them (dime_mrec_tls_check: the spec's form over the DER or
 * the reference's over SHA-512(DER)) or the connection is refused before any command
 * (DIME_E_BADSIG): nothing is ever sent to an impostor. Independently, the certificate is
 * checked against the CA bundle for the host's name; the outcome is reported, never enforced
 * here (dime/sigres.h decides what a CA-only validation is good for).
 *
 * Not thread-safe; distinct connections are independent. */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"
#include "dime/dmtp_client.h"
#include "dime/mrec.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dime_dns;

#define DIME_DX_CONNECT_TIMEOUT_MS 30000u  /* TCP connect and the TLS handshake, each */
#define DIME_DX_REPLY_TIMEOUT_MS   300000u /* one command's reply (RFC 5321 4.5.3.2: 5 min) */
#define DIME_DX_DATA_TIMEOUT_MS	   600000u /* the reply to the message (spec: >= 8 min) */

struct dime_dx_conf {
	struct dime_dns *dns; /* host names to addresses (NULL: getaddrinfo, the system's) */
	const char *helo;     /* our host name for EHLO */
	const char *ca_file;  /* PEM bundle for the CA check (NULL: OpenSSL's default paths) */
	unsigned connect_timeout_ms; /* 0: DIME_DX_CONNECT_TIMEOUT_MS */
	unsigned reply_timeout_ms;   /* 0: DIME_DX_REPLY_TIMEOUT_MS */
	unsigned data_timeout_ms;    /* 0: DIME_DX_DATA_TIMEOUT_MS */
};

struct dime_dx_peer {
	const char *host; /* the host name (dx value or MX target), or an IP literal */
	unsigned port;
	enum dime_dmtp_client_mode mode; /* IMPLICIT (port 26) or DUAL (25, 587) */
	/* The destination's record, or NULL (no record check: diagnostics only, `dime dmtp`). */
	const struct dime_mrec *rec;
};

struct dime_dx;

/* Connect to peer and open the session (banner, EHLO, STARTTLS on DUAL, EHLO): ready for
 * operations. Every address of the host is tried in turn until one connects.
 * Returns: DIME_OK; DIME_E_AGAIN (temporary: no address, refused, timed out, TLS failed, a 4xx
 * banner or 421: try another host or later); DIME_E_BADSIG (the certificate matches none of the
 * record's tls= values); DIME_E_MALFORMED (the peer does not speak DMTP: a 5xx banner, a banner
 * without DMTP, STARTTLS or EHLO refused with a 5xx, no `250 OK DMTP` after STARTTLS, a protocol
 * violation; an EHLO reply inside TLS lists no DMTP keyword, spec "EHLO", so none is asked
 * for); DIME_E_NOMEM; DIME_E_INVALID (conf or peer).
 * Out: *out (dime_dx_close), NULL on failure; why (cap why_cap): "host[addr]:port: reason". */
DIME_MUST_CHECK int dime_dx_open(struct dime_dx **out, const struct dime_dx_conf *conf,
				 const struct dime_dx_peer *peer, char *why, size_t why_cap);

/* How the certificate was checked: DIME_SR_TLS_RECORD (it matched a tls= value of peer->rec)
 * and DIME_SR_TLS_CA (it chains to the CA bundle and names peer->host), bits of dime/sigres.h. */
unsigned dime_dx_tls(const struct dime_dx *x);

/* The peer's address as "host[addr]:port", for logs. */
const char *dime_dx_peer_name(const struct dime_dx *x);

/* Run one operation and wait for its result (a reply code of any class is DIME_OK: read
 * r->code). r and its strings stay valid until the next call on x.
 * Returns: DIME_OK; DIME_E_AGAIN (the connection failed or timed out, or the server said 421:
 * the session is over, the outcome of a SEND that reached DATA is unknown, so resend later: a
 * 255 DUPLICATE then says it arrived); DIME_E_INVALID (why: the command grammar refused a
 * value); DIME_E_NOMEM. */
DIME_MUST_CHECK int dime_dx_run(struct dime_dx *x, const struct dime_dmtp_client_op *op,
				const struct dime_dmtp_client_result **r, char *why,
				size_t why_cap);

/* ---- where to connect (spec Part 4 "Connections") ---- */

#define DIME_DX_HOPS_MAX 24u

struct dime_dx_ports {
	unsigned dx;	/* single-protocol (implicit TLS) port of dx hosts (0: 26) */
	unsigned mx[2]; /* dual-protocol ports of MX hosts, in order (0, 0: 25 then 587) */
};

struct dime_dx_hop {
	char host[256];
	unsigned port;
	enum dime_dmtp_client_mode mode;
};

struct dime_mr_result;

/* The hosts to try for a destination whose record mr found, in order: the record's dx values
 * in random order (every one, at least three unique names when the record has them) on
 * ports->dx, implicit TLS; then the MX hosts of mr->domain (looked up through dns, by
 * preference, random among equals, IP literals and the null MX ignored, at most
 * DIME_DX_HOPS_MAX) each on ports->mx[0] then ports->mx[1], dual protocol. ports may be NULL
 * (26; 25, 587); mx {0, 0} is 25 then 587, and one 0 of a pair leaves that port out. At most
 * cap hops, the first ones of that order.
 * Returns: DIME_OK (*n >= 1; when the MX lookup failed or was bogus but there are dx values,
 * the dx hosts alone, and why says what happened to the MX lookup), DIME_E_NOTFOUND (no dx
 * value and no MX: why says so), DIME_E_AGAIN (no dx value, and the MX lookup failed or was
 * bogus), DIME_E_INVALID (mr is not a found record, dns NULL, cap 0), DIME_E_NOMEM.
 * Out: hops[0..*n); *n = 0 on failure. */
DIME_MUST_CHECK int dime_dx_route(struct dime_dx_hop *hops, size_t cap, size_t *n,
				  struct dime_dns *dns, const struct dime_mr_result *mr,
				  const struct dime_dx_ports *ports, char *why, size_t why_cap);

/* QUIT (bounded by the reply timeout, or at once after a failure), close, free. NULL-safe. */
void dime_dx_close(struct dime_dx *x);

#ifdef __cplusplus
}
#endif
#endif

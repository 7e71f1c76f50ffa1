#ifndef DIME_IO_DNS_H
#define DIME_IO_DNS_H
/* DNS lookups with DNSSEC validation (libunbound), for loops and for blocking callers.
 * docs/dns.md.
 *
 * Every answer says how far it can be trusted: SECURE (a chain of signatures from a configured
 * trust anchor, or a proven non-existence), INSECURE (no anchor covers the name), BOGUS (the
 * signatures are wrong, expired or missing where an anchor says they must exist: the data, if
 * any, must not be used), or CONFIGURED (offline mode: the operator's file of records is the
 * answer). Callers decide what each level is good for; nothing here downgrades a bogus answer.
 *
 * Offline mode (dime_dns_conf.static_file) answers from a file and never touches the network,
 * for the embedded default and tests without a DNS server. Lines:
 *     <name> <ttl> TXT "<string>" ["<string>" ...]
 *     <name> <ttl> A <IPv4 address>
 *     <name> <ttl> AAAA <IPv6 address>
 *     <name> <ttl> MX <preference> <host name>     ("." is the null MX)
 * the lines of a name and type are its RRset, in file order; a name with no line of the asked
 * type gets NXDOMAIN; '#' starts a comment. Answers carry wire-format rdata as from the network
 * (A: 4 octets, AAAA: 16, MX: a 16-bit preference then the name's labels, uncompressed).
 *
 * Asynchronous lookups run on one resolver thread owned by the handle (libunbound's own thread
 * does the network); the answer is posted to the caller's loop, so no loop thread ever blocks.
 * This module knows nothing of DIME: the management-record rules are the pipeline's.
 *
 * Thread-safety: dime_dns_query and dime_dns_query_sync may be called from any thread;
 * dime_dns_cancel only from the thread of the loop the query was made on. */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dime_io_loop;
struct dime_dns;
struct dime_dns_query;

#define DIME_DNS_TYPE_A	   1u
#define DIME_DNS_TYPE_MX   15u
#define DIME_DNS_TYPE_TXT  16u
#define DIME_DNS_TYPE_AAAA 28u

#define DIME_DNS_NOERROR  0
#define DIME_DNS_SERVFAIL 2
#define DIME_DNS_NXDOMAIN 3

enum dime_dns_sec {
	DIME_DNS_INSECURE = 0,
	DIME_DNS_SECURE = 1,
	DIME_DNS_BOGUS = 2,
	DIME_DNS_CONFIGURED = 3
};

/* Returns: a static name ("secure", "insecure", "bogus", "configured"). */
const char *dime_dns_sec_name(enum dime_dns_sec s);

struct dime_dns_conf {
	const char *static_file; /* offline mode; every other field is then ignored */
	const char *config_file; /* an unbound configuration (stub zones, options); may be NULL */
	const char *trust_anchor_file; /* DS or DNSKEY records (ub_ctx_add_ta_file); may be NULL */
	const char *auto_trust_anchor; /* RFC 5011 state file (production: a writable copy of
					* /usr/share/dns/root.key); may be NULL */
	const char *resolv_conf; /* forward to these servers instead of iterating; may be NULL */
	unsigned timeout_ms;	 /* an answer not there by then is SERVFAIL (0: 10,000) */
};

/* One answer. rr[i] is the rdata of record i, wire format (TXT: <len><bytes>... strings). */
struct dime_dns_answer {
	int rcode;
	enum dime_dns_sec sec;
	const char *why_bogus; /* BOGUS: the validator's reason, else "" */
	uint32_t ttl;	       /* the RRset's TTL (0 on a failure or negative answer without one) */
	size_t n;
	const uint8_t *const *rr;
	const size_t *rr_len;
	const char *name; /* the name asked */
	uint16_t type;
};

/* Returns: DIME_OK, DIME_E_IO (why: a file or option unbound refused), DIME_E_NOMEM,
 * DIME_E_MALFORMED (a static file line; why: file and line). Out: *out (NULL on failure). */
DIME_MUST_CHECK int dime_dns_new(struct dime_dns **out, const struct dime_dns_conf *conf, char *why,
				 size_t why_cap);
/* Stops the resolver thread. Answers not yet posted are dropped; callers cancel or wait for
 * their queries first. NULL-safe. */
void dime_dns_free(struct dime_dns *d);

/* fn(arg, rc, a) runs on loop with rc DIME_OK and the answer (valid only during the call), or
 * rc DIME_E_IO / DIME_E_NOMEM and a NULL answer. Never runs inside this call.
 * Returns: DIME_OK, DIME_E_INVALID (name empty, longer than 253 or with control characters),
 * DIME_E_NOMEM, DIME_E_IO. Out: *q (may be NULL), a handle for dime_dns_cancel until fn runs. */
typedef void (*dime_dns_fn)(void *arg, int rc, const struct dime_dns_answer *a);
DIME_MUST_CHECK int dime_dns_query(struct dime_dns *d, struct dime_io_loop *loop, const char *name,
				   uint16_t type, dime_dns_fn fn, void *arg,
				   struct dime_dns_query **q);
/* fn will not run. Call on the loop's thread, before fn has run. */
void dime_dns_cancel(struct dime_dns_query *q);

/* Blocking: the same lookup, answered to fn before returning (for the CLI and pool workers).
 * Returns: as dime_dns_query, and fn's rc. */
DIME_MUST_CHECK int dime_dns_query_sync(struct dime_dns *d, const char *name, uint16_t type,
					dime_dns_fn fn, void *arg);

/* TXT rdata to one string: its character-strings concatenated with nothing in between
 * (spec Part 4: every string but the last ends in a space or ';'), NUL-terminated.
 * Returns: DIME_OK, DIME_E_MALFORMED (a length past the end), DIME_E_NOSPACE, DIME_E_INVALID
 * (a NUL byte in the text). Out: out, *out_len (without the NUL). */
DIME_MUST_CHECK int dime_dns_txt_join(char *out, size_t cap, size_t *out_len, const uint8_t *rr,
				      size_t rr_len);

#ifdef __cplusplus
}
#endif
#endif

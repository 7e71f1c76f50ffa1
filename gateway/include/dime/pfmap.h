#ifndef DIME_GATEWAY_PFMAP_H
#define DIME_GATEWAY_PFMAP_H
/* Routing helpers for Postfix (issue 13), as pure machines: bytes in, answers out, no sockets,
 * no DNS, no clock. Two services, one machine each:
 *
 *  - the socketmap server (Postfix socketmap_table(5)): `transport_maps =
 *    socketmap:inet:127.0.0.1:9026:dime` sends the netstring "dime user@domain"; the caller
 *    decides and the machine sends "OK dime:[127.0.0.1]:10025", "NOTFOUND ", "TEMP reason", ...
 *  - the policy delegation server (Postfix SMTPD_POLICY_README): `check_policy_service
 *    inet:127.0.0.1:9027` sends name=value lines ending in an empty line at RCPT time; the
 *    machine answers "action=DUNNO", "action=550 5.7.1 ...", ...
 *
 * Both follow the DMTP session machine's shape (dime/dmtp_session.h): feed bytes, send the
 * pending output, answer the open query, close when the actions say so. One query is open at a
 * time and pipelined requests are answered in order. A machine serves one connection; it is not
 * thread-safe, distinct machines are independent. dime_pfmap_route_sm/_pol map the policy
 * outcome of a recipient (dime/policy.h) to either answer. docs/postfix-maps.md has the wire
 * rules, the limits and the main.cf lines. */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"
#include "dime/policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits. */
#define DIME_PFMAP_SM_REQ_MAX	 10000u /* payload octets of one request netstring */
#define DIME_PFMAP_SM_NAME_MAX	 64u	/* octets of the map name in a request */
#define DIME_PFMAP_TEXT_MAX	 400u	/* octets of the data or reason of one answer */
#define DIME_PFMAP_POL_LINE_MAX	 4096u	/* octets of one attribute line, LF included */
#define DIME_PFMAP_POL_ATTRS_MAX 100u	/* attribute lines in one request */
#define DIME_PFMAP_POL_REQ_MAX	 32768u /* octets of one request, the empty line included */
#define DIME_PFMAP_OUT_HIGH	 16384u /* unsent octets that stop feed (the caller flushes) */
#define DIME_PFMAP_DOMAIN_MAX	 253u

/* Actions, from dime_pfmap_sm_actions / dime_pfmap_pol_actions. Send the output first. */
#define DIME_PFMAP_ACT_QUERY 0x01u /* a query is open: answer it */
#define DIME_PFMAP_ACT_CLOSE 0x02u /* after the output (if any), close; feed nothing more */

/* The domain of an address: the part after the last '@', lower-cased, a trailing dot removed,
 * checked to be a host name (LDH labels of 1..63 octets, at most 253 octets).
 * Returns: DIME_OK; DIME_E_INVALID (no '@', an empty local part, an address literal, 8-bit or
 *          other characters, a bad label); DIME_E_NOSPACE (cap below the domain's length + 1).
 * Out: dom, NUL-terminated on success, "" on failure (when cap > 0). */
DIME_MUST_CHECK int dime_pfmap_addr_domain(char *dom, size_t cap, const char *addr,
					   size_t addr_len);

/* ==== socketmap ==== */

struct dime_pfmap_sm_conf {
	/* The map name we serve ("dime"), compared exactly; other names get "PERM" without a
	 * query. NULL: every name is served (the query carries it). Borrowed for the machine's
	 * life. */
	const char *map_name;
	unsigned max_requests; /* requests per connection, then close after the answer; 0: none */
};

/* One lookup. Every string is NUL-terminated and borrowed until the answer or free. */
struct dime_pfmap_sm_query {
	uint64_t id;	    /* unique per machine; the answer names it */
	const char *name;   /* the map name */
	const char *key;    /* the full key: the address as Postfix sent it */
	size_t key_len;	    /* octets of key */
	const char *domain; /* the key's domain, as dime_pfmap_addr_domain gives it */
};

enum dime_pfmap_sm_status {
	DIME_PFMAP_SM_OK = 1,	    /* "OK <text>": text required (the transport:nexthop) */
	DIME_PFMAP_SM_NOTFOUND = 2, /* "NOTFOUND ": text must be empty */
	DIME_PFMAP_SM_TEMP = 3,	    /* "TEMP <text>": Postfix defers (4.3.0) and retries */
	DIME_PFMAP_SM_TIMEOUT = 4,  /* "TIMEOUT <text>": as TEMP */
	DIME_PFMAP_SM_PERM = 5	    /* "PERM <text>": Postfix reads a configuration error */
};

struct dime_pfmap_sm_answer {
	uint64_t id; /* the query's */
	enum dime_pfmap_sm_status status;
	char text[DIME_PFMAP_TEXT_MAX + 1]; /* NUL-terminated printable ASCII, or "" */
};

struct dime_pfmap_sm;

/* A machine for one socketmap connection.
 * Returns: DIME_OK, DIME_E_NOMEM, DIME_E_INVALID (map_name empty, over SM_NAME_MAX octets or
 *          not printable ASCII without spaces).
 * Out: *out owned by the caller (dime_pfmap_sm_free), NULL on failure. */
DIME_MUST_CHECK int dime_pfmap_sm_new(struct dime_pfmap_sm **out,
				      const struct dime_pfmap_sm_conf *conf);

/* Free m (NULL-safe) and wipe its buffers (they held addresses). */
void dime_pfmap_sm_free(struct dime_pfmap_sm *m);

/* Feed received bytes. Netstrings are taken one at a time until all bytes are used or one of:
 * a query opens, the machine closes, or DIME_PFMAP_OUT_HIGH octets of output wait. Requests
 * that need no decision (another map name, a key that is not user@host-name) are answered
 * without a query. A framing or request error closes the machine without a reply (Postfix
 * reads the EOF as a lookup error and reconnects); answers already queued stay queued.
 * Returns: octets consumed; the caller keeps the rest and feeds it again after answering.
 * After a close everything is consumed and ignored. */
size_t dime_pfmap_sm_feed(struct dime_pfmap_sm *m, const uint8_t *p, size_t len);

/* DIME_PFMAP_ACT_* bits that hold now. */
unsigned dime_pfmap_sm_actions(const struct dime_pfmap_sm *m);

/* Pending output (whole netstrings): *len octets at the returned pointer, valid until the next
 * call on m. dime_pfmap_sm_out_done drops the first n of them (n <= *len). */
const uint8_t *dime_pfmap_sm_out(const struct dime_pfmap_sm *m, size_t *len);
void dime_pfmap_sm_out_done(struct dime_pfmap_sm *m, size_t n);

/* The open query, or NULL when none. */
const struct dime_pfmap_sm_query *dime_pfmap_sm_query(const struct dime_pfmap_sm *m);

/* Answer the open query: the machine queues the reply netstring and goes on.
 * Returns: DIME_OK;
 *          DIME_E_INVALID no query open, a stale id or an unknown status (the query stays
 *          open), or a text that does not fit the status (empty for OK, not empty for
 *          NOTFOUND, not NUL-terminated within DIME_PFMAP_TEXT_MAX, control or 8-bit
 *          characters): the query is then answered "TEMP invalid answer" so Postfix is not
 *          left waiting on the caller's bug. */
DIME_MUST_CHECK int dime_pfmap_sm_answer(struct dime_pfmap_sm *m,
					 const struct dime_pfmap_sm_answer *a);

/* The server is stopping: an idle machine closes now; one with a query open closes after the
 * answer. */
void dime_pfmap_sm_drain(struct dime_pfmap_sm *m);

/* Why the machine closed, for the caller's log: DIME_OK (not closed, the request cap, or a
 * drain), DIME_E_MALFORMED (framing, a request without a space, control characters),
 * DIME_E_LIMIT (a netstring over DIME_PFMAP_SM_REQ_MAX), DIME_E_NOMEM (no room for a reply). */
int dime_pfmap_sm_error(const struct dime_pfmap_sm *m);

/* Requests taken so far (answered with or without a query). */
uint64_t dime_pfmap_sm_requests(const struct dime_pfmap_sm *m);

/* ==== policy delegation ==== */

struct dime_pfmap_pol_conf {
	/* 0: only RCPT-stage requests whose recipient has a host-name domain open a query,
	 * the others are answered DUNNO at once; 1: every request opens a query. */
	int all_states;
	unsigned max_requests; /* requests per connection, then close after the answer; 0: none */
};

/* The SMTP stage a request comes from (protocol_state). */
enum dime_pfmap_pol_state {
	DIME_PFMAP_ST_UNKNOWN = 0, /* absent or not one of the names below */
	DIME_PFMAP_ST_CONNECT,
	DIME_PFMAP_ST_EHLO,
	DIME_PFMAP_ST_HELO,
	DIME_PFMAP_ST_MAIL,
	DIME_PFMAP_ST_RCPT,
	DIME_PFMAP_ST_DATA,
	DIME_PFMAP_ST_EOM, /* END-OF-MESSAGE */
	DIME_PFMAP_ST_VRFY,
	DIME_PFMAP_ST_ETRN
};

/* One policy request: the attributes kept, each "" when absent, NUL-terminated and borrowed
 * until the answer or free. When an attribute comes twice the last value counts. */
struct dime_pfmap_pol_query {
	uint64_t id;
	enum dime_pfmap_pol_state state;
	const char *protocol_state, *protocol_name, *helo_name, *queue_id, *instance;
	const char *sender, *recipient;
	const char *client_address, *client_name, *reverse_client_name;
	const char *sasl_method, *sasl_username, *encryption_protocol, *stress, *policy_context;
	uint64_t size;		  /* the size attribute (0 when absent or empty) */
	uint64_t recipient_count; /* the recipient_count attribute (0 when absent or empty) */
	const char *rcpt_domain;  /* the recipient's domain (dime_pfmap_addr_domain), or "" */
};

enum dime_pfmap_pol_verdict {
	DIME_PFMAP_POL_DUNNO = 1,	    /* "action=DUNNO": no opinion, the next restriction */
	DIME_PFMAP_POL_OK = 2,		    /* "action=OK": accept (skips later restrictions!) */
	DIME_PFMAP_POL_REJECT = 3,	    /* "action=REJECT <text>" ($access_map_reject_code) */
	DIME_PFMAP_POL_DEFER_IF_PERMIT = 4, /* "action=DEFER_IF_PERMIT <text>": 450 unless a
					       later restriction rejects */
	DIME_PFMAP_POL_DEFER = 5,	    /* "action=DEFER <text>": 450 now */
	DIME_PFMAP_POL_CODE = 6		    /* "action=<code> <text>": code 400..599, text needed */
};

struct dime_pfmap_pol_answer {
	uint64_t id;
	enum dime_pfmap_pol_verdict verdict;
	int code;			    /* CODE only */
	char text[DIME_PFMAP_TEXT_MAX + 1]; /* printable ASCII; must be "" for DUNNO and OK */
};

struct dime_pfmap_pol;

/* A machine for one policy connection. Returns: DIME_OK, DIME_E_NOMEM, DIME_E_INVALID (conf
 * NULL). Out: *out owned by the caller (dime_pfmap_pol_free), NULL on failure. */
DIME_MUST_CHECK int dime_pfmap_pol_new(struct dime_pfmap_pol **out,
				       const struct dime_pfmap_pol_conf *conf);

/* Free p (NULL-safe) and wipe its buffers. */
void dime_pfmap_pol_free(struct dime_pfmap_pol *p);

/* Feed received bytes: lines are taken until all are used, a query opens, the machine closes
 * or DIME_PFMAP_OUT_HIGH octets of output wait. A line is name=value and LF (a CR before the
 * LF is dropped); an empty line ends the request. A bad request closes the machine without a
 * reply, as SMTPD_POLICY_README asks of a server in trouble (Postfix retries, then applies
 * its smtpd_policy_service_default_action): a line over DIME_PFMAP_POL_LINE_MAX, more than
 * DIME_PFMAP_POL_ATTRS_MAX attributes or DIME_PFMAP_POL_REQ_MAX octets, a NUL, a line without
 * '=' or with a name that is not [A-Za-z0-9_.-]{1,64}, a control character in a kept value,
 * a size or recipient_count that is not a decimal number, a request attribute missing or not
 * smtpd_access_policy. Returns: octets consumed, as dime_pfmap_sm_feed. */
size_t dime_pfmap_pol_feed(struct dime_pfmap_pol *p, const uint8_t *b, size_t len);

/* As the dime_pfmap_sm_ functions of the same names: the actions, the pending output ("action="
 * lines, each followed by an empty line) and the open query (borrowed until the answer). */
unsigned dime_pfmap_pol_actions(const struct dime_pfmap_pol *p);
const uint8_t *dime_pfmap_pol_out(const struct dime_pfmap_pol *p, size_t *len);
void dime_pfmap_pol_out_done(struct dime_pfmap_pol *p, size_t n);
const struct dime_pfmap_pol_query *dime_pfmap_pol_query(const struct dime_pfmap_pol *p);

/* Answer the open query: "action=<...>" and an empty line are queued.
 * Returns: DIME_OK;
 *          DIME_E_INVALID no query open, a stale id or an unknown verdict (the query stays
 *          open), or a code or text that does not fit the verdict (text not NUL-terminated
 *          within DIME_PFMAP_TEXT_MAX, control or 8-bit characters, text with DUNNO or OK, no
 *          text or a code outside 400..599 with CODE): the machine then closes without a
 *          reply, so Postfix applies its default action rather than a reply we did not mean. */
DIME_MUST_CHECK int dime_pfmap_pol_answer(struct dime_pfmap_pol *p,
					  const struct dime_pfmap_pol_answer *a);

/* As dime_pfmap_sm_drain, _error (plus DIME_E_INVALID: closed after a bad answer) and
 * _requests. */
void dime_pfmap_pol_drain(struct dime_pfmap_pol *p);
int dime_pfmap_pol_error(const struct dime_pfmap_pol *p);
uint64_t dime_pfmap_pol_requests(const struct dime_pfmap_pol *p);

/* ==== from a policy outcome to an answer ==== */

/* What the socketmap answers for a recipient dime_send_decide refuses. */
enum dime_pfmap_refuse {
	DIME_PFMAP_REFUSE_ERROR = 0,  /* "OK error:5.7.1 <why>": Postfix's error(8) bounces it */
	DIME_PFMAP_REFUSE_GATEWAY = 1 /* "OK <nexthop>": the gateway decides again, refuses */
};

struct dime_pfmap_route {
	const char *nexthop; /* the transport:nexthop for D/MIME, e.g. "dime:[127.0.0.1]:10025" */
	enum dime_pfmap_refuse refuse;
};

/* The socketmap answer for action (dime_send_decide's, with its why, which may be NULL):
 * DMIME "OK <nexthop>", NAKED "NOTFOUND ", DEFER "TEMP <why>", REFUSE per route->refuse.
 * why is cut to fit and anything but printable ASCII becomes '?'. Out: *a (its id is 0: the
 * caller sets it). Thread-safe. Returns: DIME_OK, DIME_E_INVALID (nexthop NULL, empty, not
 * printable ASCII without spaces or over DIME_PFMAP_TEXT_MAX; refuse or action unknown): *a
 * is then "TEMP" with a reason. */
DIME_MUST_CHECK int dime_pfmap_route_sm(struct dime_pfmap_sm_answer *a,
					const struct dime_pfmap_route *route,
					enum dime_send_action action, const char *why);

/* The policy answer for action at protocol state st: at RCPT, REFUSE is "550 5.7.1 <why>"
 * and DEFER "DEFER_IF_PERMIT 4.7.0 <why>"; DMIME and NAKED, and every action at another
 * state, are DUNNO (never OK: that would skip the restrictions after ours). Out: *a (id 0). */
void dime_pfmap_route_pol(struct dime_pfmap_pol_answer *a, enum dime_pfmap_pol_state st,
			  enum dime_send_action action, const char *why);

#ifdef __cplusplus
}
#endif
#endif

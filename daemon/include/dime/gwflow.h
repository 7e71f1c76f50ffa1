#ifndef DIME_DAEMON_GWFLOW_H
#define DIME_DAEMON_GWFLOW_H
/* The SMTP gateway's flows (docs/smtp.md, "Flows"): what dimed does with mail its MTA hands it,
 * one recipient at a time, between the naked world and DIME.
 *  - a hosted user (inbound naked mail): wrapped into D/MIME for the user's current signet and
 *    spooled like a message DMTP accepted (dime/spool.h; the delivery agent puts it in the
 *    Maildir). A user without a current signet: conf->unsigned_local (defer by default: the
 *    MTA keeps the mail; never a plaintext copy). Mail that is already D/MIME is spooled as it
 *    is only if it verifies as a message for that user; never wrapped twice.
 *  - another DIME domain (the policy says D/MIME): trustful, when the sender is a hosted user
 *    whose keys the store holds: wrapped with the user's keys, origin-signed, queued for DMTP
 *    (dime/outq.h); cautious, when the body is author-made D/MIME (armored): verified as the
 *    origin, origin-signed, queued. The same path as `dime send`.
 *  - a legacy domain: naked, through the MTA's reinjection smtpd (conf->reinject), when the
 *    policy allows (dime/policy.h); refused under strict; D/MIME is never sent naked.
 *  - the policy cannot tell now (DNS, the destination's hosts): 4xx, so the MTA retries.
 * 250 only once the message is durable where it went (spool or outbound queue fsynced, or the
 * reinjection answered 250); 4xx on any doubt; 5xx only when no retry can help.
 *
 * Blocking (store, DNS and DMTP fetches, fsync, the reinjection's SMTP): call from pool
 * workers, never a loop thread. One dime_gw serves every worker: thread-safe. Knows nothing of
 * sockets toward the MTA (the SMTP session glue does) and logs no address or body. */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dime_dconf;
struct dime_kp_client;
struct dime_outq;
struct dime_spool;
struct dime_deliver;
struct dime_dns;
struct dime_mr_cache;
struct dime_dx_conf;
struct dime_dx_ports;

/* What the flows run on; all borrowed for the gateway's life. */
struct dime_gw_env {
	const struct dime_dconf *conf; /* store, policy, reinject, unsigned_local, hostname */
	/* Where the hosted keys are: the key process (dime/keyproc.h), so no private key enters
	 * this process (each directory the gateway makes lists its keys then, so a reload sees
	 * the keys it loaded since); NULL: loaded from the store here. Borrowed. */
	struct dime_kp_client *kp;
	struct dime_spool *spool;     /* local users' D/MIME goes here ... */
	struct dime_deliver *deliver; /* ... and this is kicked after (may be NULL) */
	struct dime_outq *outq;	      /* other DIME domains' messages (dimed's agents deliver) */
	void (*outq_kick)(void *arg); /* tell the agents a message was queued (may be NULL) */
	void *outq_kick_arg;
	/* the signet resolver (dime/sigfetch.h) over dimed's DNS handle and record cache */
	struct dime_dns *dns;
	struct dime_mr_cache *mr_cache;
	const struct dime_dx_conf *dx;
	const struct dime_dx_ports *ports;
};

struct dime_gw;

/* Returns: DIME_OK, DIME_E_NOMEM, DIME_E_INVALID (why: a bad conf, e.g. reinject unparsable).
 * Out: *out (NULL on failure). */
DIME_MUST_CHECK int dime_gw_new(struct dime_gw **out, const struct dime_gw_env *env, char *why,
				size_t why_cap);
void dime_gw_free(struct dime_gw *g); /* NULL-safe */

/* The hosted keys and signets again (SIGHUP, after the key process reloaded): new flows use
 * the new directory, flows running finish on theirs. Blocking. A message that finds a party
 * only in a fresh directory installs that one by itself.
 * Returns: DIME_OK, DIME_E_NOMEM, or the directory's failure (why; the old one stays). */
DIME_MUST_CHECK int dime_gw_reload(struct dime_gw *g, char *why, size_t why_cap);

enum dime_gw_route {
	DIME_GW_LOCAL = 1, /* a hosted user of ours */
	DIME_GW_DMIME = 2, /* another DIME domain, over DMTP */
	DIME_GW_NAKED = 3, /* a legacy domain, through the reinjection */
	DIME_GW_REFUSE = 4,
	DIME_GW_DEFER = 5
};

/* An SMTP answer for the MTA. */
struct dime_gw_verdict {
	enum dime_gw_route route;
	int code;	/* 250, 4xx or 5xx */
	char enh[16];	/* the enhanced status code, e.g. "2.0.0", "4.7.0", "5.7.1" */
	char text[256]; /* one printable ASCII line, no CR/LF: "queued as ID", the reason */
};

/* RCPT time: where mail for rcpt goes, and whether it can be taken now (250), later (4xx) or
 * never (5xx). sender is the reverse path ("" for <>). Blocking (store, DNS, DMTP fetches).
 * Returns: DIME_OK (*v filled, whatever the answer), DIME_E_NOMEM. */
DIME_MUST_CHECK int dime_gw_rcpt(struct dime_gw *g, struct dime_gw_verdict *v, const char *sender,
				 const char *rcpt, int64_t now);

/* DATA time: handle msg (the mail as the MTA sent it, CRLF lines, dot-unstuffed) for rcpt:
 * durably, as the header says, or not at all (nothing spooled, queued or reinjected when the
 * answer is not 250). Blocking.
 * Returns: DIME_OK (*v filled, whatever the answer), DIME_E_NOMEM. */
DIME_MUST_CHECK int dime_gw_message(struct dime_gw *g, struct dime_gw_verdict *v,
				    const char *sender, const char *rcpt, const uint8_t *msg,
				    size_t len, int64_t now);

#ifdef __cplusplus
}
#endif
#endif

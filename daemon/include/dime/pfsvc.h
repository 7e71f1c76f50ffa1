#ifndef DIME_DAEMON_PFSVC_H
#define DIME_DAEMON_PFSVC_H
/* dimed's Postfix lookup services (issue 13): the `socketmap` and `policy` listeners of the
 * configuration, on one io loop, one pure machine (dime/pfmap.h) per connection, and each
 * query decided off the loop by a pool job calling the env's route handler (dime_gw_rcpt's
 * signature). The verdict's route goes through dime_pfmap_route_sm / _route_pol:
 *   LOCAL, DMIME  socketmap "OK <nexthop>" (both go through the gateway: inbound naked mail to
 *                 a hosted user is wrapped by dimed), policy DUNNO;
 *   NAKED         "NOTFOUND " (Postfix's normal delivery), DUNNO;
 *   DEFER         "TEMP <text>", "DEFER_IF_PERMIT 4.7.0 <text>" at RCPT;
 *   REFUSE        "OK error:5.7.1 <text>", "550 5.7.1 <text>" at RCPT.
 * A handler failing, a full pool, or a query not decided within the deadline is a DEFER.
 * docs/postfix-maps.md has the wire rules; docs/dimed.conf the listeners. */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"
#include "dime/gwflow.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dime_dconf;
struct dime_io_loop;
struct dime_pl_pool;
struct dime_pfsvc;

/* A recipient's route at RCPT time (dime_gw_rcpt). Runs on a pool worker; may block. sender is
 * the policy request's sender ("" for <>); the socketmap has none and passes "". Returns:
 * DIME_OK (*v filled) or an error (the answer is then a DEFER). */
typedef int (*dime_pfsvc_route_fn)(void *arg, struct dime_gw_verdict *v, const char *sender,
				   const char *rcpt, int64_t now);

/* The map name served (socketmap:inet:HOST:PORT:dime); other names get PERM. */
#define DIME_PFSVC_MAP_NAME "dime"
/* How long one query may take before it is answered DEFER (Postfix gives up after 100 s). */
#define DIME_PFSVC_DEADLINE_MS 30000u

/* What the services run on; all borrowed for the service's life. */
struct dime_pfsvc_env {
	const struct dime_dconf *conf; /* listeners, socketmap_nexthop, timeout_cmd_ms, caps */
	struct dime_io_loop *loop;     /* every call below runs on it */
	struct dime_pl_pool *pool;     /* dime_pl_pool_call jobs, one per query */
	dime_pfsvc_route_fn route;     /* required */
	void *route_arg;
	/* The bound ports of the other servers, in conf->listen order (0 where unknown), for the
	 * default next hop "dime:[HOST]:PORT" of the first smtp listener. NULL: conf's ports. */
	const unsigned *ports;
	size_t n_ports;
	unsigned deadline_ms; /* per query; 0: DIME_PFSVC_DEADLINE_MS */
};

/* Bind and listen on every conf->listen of mode socketmap or policy (port 0: an ephemeral
 * one). The socketmap's next hop is conf->socketmap_nexthop, else "dime:[HOST]:PORT" of the
 * first smtp listener (HOST 127.0.0.1 or ::1 for a wildcard address), else there is none and
 * a socketmap listener is an error.
 * Returns: DIME_OK, DIME_E_INVALID (why: no route handler, no next hop, a bad one),
 *          DIME_E_IO (why: which address and errno), DIME_E_NOMEM.
 * Out: *out (NULL on failure). */
DIME_MUST_CHECK int dime_pfsvc_new(struct dime_pfsvc **out, const struct dime_pfsvc_env *env,
				   char *why, size_t why_cap);
/* The bound ports, in conf->listen order, 0 for a listener of another mode. Returns: how many
 * were written (at most cap). */
size_t dime_pfsvc_ports(const struct dime_pfsvc *s, unsigned *ports, size_t cap);
/* The socketmap's next hop ("" when no socketmap listener needs one). */
const char *dime_pfsvc_nexthop(const struct dime_pfsvc *s);
/* Stop accepting; idle connections close now, one with a query open after its answer; idle(arg)
 * runs on the loop once no connection is left (at once when none is). */
void dime_pfsvc_drain(struct dime_pfsvc *s, void (*idle)(void *arg), void *arg);
/* Connections open now. */
size_t dime_pfsvc_n_conns(const struct dime_pfsvc *s);
/* Close the listeners and free. Call it once no connection is left (after drain's idle
 * callback). Jobs still running (past their deadline) hold nothing of s: they complete on the
 * loop and free themselves, so the pool and the loop must outlive them (dime_pl_pool_free, then
 * dime_io_loop_free). NULL-safe. */
void dime_pfsvc_free(struct dime_pfsvc *s);

#ifdef __cplusplus
}
#endif
#endif

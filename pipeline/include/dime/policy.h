#ifndef DIME_PIPELINE_POLICY_H
#define DIME_PIPELINE_POLICY_H
/* How a message leaves for another domain: the policy dispositions of spec Part 4 ("Policy",
 * figure 6) for a DIME-enabled sender, decided from our organisation's policy, the destination's
 * management record and what the signet resolver found for the recipient. docs/delivery.md
 * "Policy". Pure and thread-safe.
 *
 *   destination    | sender experimental  | sender mixed         | sender strict
 *   legacy         | naked                | naked                | refuse
 *   experimental   | D/MIME, else naked   | D/MIME, else naked   | D/MIME, else refuse
 *   mixed, strict  | D/MIME, else refuse  | D/MIME, else refuse  | D/MIME, else refuse
 *
 * "else" is a recipient the destination says has no signet (576): it is not DIME-enabled. Every
 * doubt defers, never downgrades: a DNS failure, a bogus or unparsable record, a signet that
 * does not validate or a host that cannot be reached is retried (and bounced after the queue
 * gives up), never sent naked. */

#include "dime/mrec.h"
#include "dime/mrloc.h"

#ifdef __cplusplus
extern "C" {
#endif

enum dime_send_action {
	DIME_SEND_DMIME = 0,  /* wrap to the recipient's signet and send over DMTP */
	DIME_SEND_NAKED = 1,  /* the destination takes naked mail: hand it to SMTP */
	DIME_SEND_REFUSE = 2, /* permanent: bounce to the author */
	DIME_SEND_DEFER = 3   /* temporary: keep it and try again later */
};

/* Returns: a static name ("dmime", "naked", "refuse", "defer"). */
const char *dime_send_action_name(enum dime_send_action a);

/* ours: our organisation's policy. dest: the destination's record (dime/mrloc.h). sig: the
 * signet resolver's outcome for the recipient (dime/sigfetch.h): DIME_OK, validated;
 * DIME_E_NOTFOUND, the address has no signet; anything else, could not tell or did not validate.
 * sig is read only when dest->status is FOUND. Out: *why, static text (may be NULL). */
enum dime_send_action dime_send_decide(enum dime_mrec_policy ours,
				       const struct dime_mr_result *dest, int sig,
				       const char **why);

#ifdef __cplusplus
}
#endif
#endif

/* The policy dispositions (dime/policy.h). */

#include "dime/policy.h"

const char *
dime_send_action_name(enum dime_send_action a)
{
	switch (a) {
	case DIME_SEND_DMIME: return "dmime";
	case DIME_SEND_NAKED: return "naked";
	case DIME_SEND_REFUSE: return "refuse";
	case DIME_SEND_DEFER: return "defer";
	}
	return "unknown";
}

static enum dime_send_action
send_why(enum dime_send_action a, const char **why, const char *text)
{
	if (why != NULL)
		*why = text;
	return a;
}

enum dime_send_action
dime_send_decide(enum dime_mrec_policy ours, const struct dime_mr_result *dest, int sig,
		 const char **why)
{
	if (dest == NULL)
		return send_why(DIME_SEND_DEFER, why, "no verdict on the destination");
	switch (dest->status) {
	case DIME_MR_LEGACY:
		if (ours == DIME_POL_STRICT)
			return send_why(
			    DIME_SEND_REFUSE, why,
			    "the destination is not DIME-enabled and our policy is strict");
		return send_why(DIME_SEND_NAKED, why, "the destination is not DIME-enabled");
	case DIME_MR_TEMPFAIL:
		return send_why(DIME_SEND_DEFER, why,
				"the destination's management record cannot be looked up now");
	case DIME_MR_BOGUS:
		return send_why(DIME_SEND_DEFER, why,
				"the destination's management record fails DNSSEC validation");
	case DIME_MR_INVALID:
		return send_why(DIME_SEND_DEFER, why,
				"the destination's management record does not parse");
	case DIME_MR_FOUND: break;
	default: return send_why(DIME_SEND_DEFER, why, "no verdict on the destination");
	}
	if (sig == DIME_OK)
		return send_why(DIME_SEND_DMIME, why, "the recipient's signet validated");
	if (sig != DIME_E_NOTFOUND)
		return send_why(DIME_SEND_DEFER, why,
				"the recipient's signet cannot be fetched or validated now");
	if (dest->rec.policy == DIME_POL_EXPERIMENTAL && ours != DIME_POL_STRICT)
		return send_why(DIME_SEND_NAKED, why,
				"the recipient is not DIME-enabled at an experimental destination");
	return send_why(DIME_SEND_REFUSE, why,
			ours == DIME_POL_STRICT
			    ? "the recipient has no signet and our policy is strict"
			    : "the recipient has no signet and the destination takes only D/MIME");
}

/* dime/policy.h: spec Part 4 figure 6 for a DIME-enabled sender, cell by cell, and every doubt
 * deferring instead of going naked. */

#include <string.h>

#include "dime/policy.h"
#include "tlib.h"

static struct dime_mr_result
dest_with(enum dime_mr_status st, enum dime_mrec_policy pol)
{
	struct dime_mr_result r;

	memset(&r, 0, sizeof(r));
	r.status = st;
	r.rec.policy = pol;
	return r;
}

static void
test_matrix(void)
{
	static const enum dime_mrec_policy pols[] = {DIME_POL_EXPERIMENTAL, DIME_POL_MIXED,
						     DIME_POL_STRICT};
	/* [ours][destination]: the recipient without a signet (576) */
	static const enum dime_send_action no_signet[3][3] = {
	    {DIME_SEND_NAKED, DIME_SEND_REFUSE, DIME_SEND_REFUSE},
	    {DIME_SEND_NAKED, DIME_SEND_REFUSE, DIME_SEND_REFUSE},
	    {DIME_SEND_REFUSE, DIME_SEND_REFUSE, DIME_SEND_REFUSE}};

	for (size_t o = 0; o < 3; o++) {
		struct dime_mr_result legacy = dest_with(DIME_MR_LEGACY, DIME_POL_MIXED);
		const char *why = NULL;

		T_CHECK(dime_send_decide(pols[o], &legacy, DIME_OK, &why) ==
				(pols[o] == DIME_POL_STRICT ? DIME_SEND_REFUSE : DIME_SEND_NAKED) &&
			    why != NULL && why[0] != 0,
			"ours %zu to legacy", o);
		for (size_t d = 0; d < 3; d++) {
			struct dime_mr_result r = dest_with(DIME_MR_FOUND, pols[d]);

			T_CHECK(dime_send_decide(pols[o], &r, DIME_OK, NULL) == DIME_SEND_DMIME,
				"ours %zu dest %zu, signet: D/MIME", o, d);
			T_CHECK(dime_send_decide(pols[o], &r, DIME_E_NOTFOUND, NULL) ==
				    no_signet[o][d],
				"ours %zu dest %zu, no signet: %s", o, d,
				dime_send_action_name(no_signet[o][d]));
			T_CHECK(
			    dime_send_decide(pols[o], &r, DIME_E_AGAIN, NULL) == DIME_SEND_DEFER &&
				dime_send_decide(pols[o], &r, DIME_E_BADSIG, NULL) ==
				    DIME_SEND_DEFER,
			    "ours %zu dest %zu: a signet not fetched or not valid defers", o, d);
		}
	}
}

static void
test_doubt_never_naked(void)
{
	static const enum dime_mr_status doubt[] = {DIME_MR_TEMPFAIL, DIME_MR_BOGUS,
						    DIME_MR_INVALID};

	for (size_t i = 0; i < 3; i++) {
		struct dime_mr_result r = dest_with(doubt[i], DIME_POL_EXPERIMENTAL);

		/* sig is ignored unless FOUND: even "validated" does not make it D/MIME */
		T_CHECK(dime_send_decide(DIME_POL_EXPERIMENTAL, &r, DIME_OK, NULL) ==
				DIME_SEND_DEFER &&
			    dime_send_decide(DIME_POL_EXPERIMENTAL, &r, DIME_E_NOTFOUND, NULL) ==
				DIME_SEND_DEFER,
			"%s defers", dime_mr_status_name(doubt[i]));
	}
	T_CHECK(dime_send_decide(DIME_POL_MIXED, NULL, DIME_OK, NULL) == DIME_SEND_DEFER,
		"no verdict defers");
	T_CHECK(strcmp(dime_send_action_name(DIME_SEND_NAKED), "naked") == 0, "names");
}

int
main(void)
{
	test_matrix();
	test_doubt_never_naked();
	return t_done("policy");
}

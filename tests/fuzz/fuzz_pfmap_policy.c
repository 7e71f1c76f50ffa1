/* Fuzz the policy delegation machine (dime/pfmap.h). The first byte picks all_states, the
 * request cap and how queries are answered; the rest is what Postfix sends. Invariants: the
 * output is a run of "action=<printable>" lines each followed by an empty line, one per request
 * answered, feed never claims more than it was given, a stalled feed always has a reason, a
 * query's strings are NUL-terminated and free of control characters, its rcpt_domain is what
 * dime_pfmap_addr_domain makes of its recipient, and feeding the same input whole or one byte
 * at a time gives the same bytes. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dime/pfmap.h"
#include "fuzz_common.h"

struct fuzz_run {
	struct fuzz_out *out;
	uint64_t replies;
};

static void
fuzz_take_out(struct dime_pfmap_pol *p, struct fuzz_run *r)
{
	size_t n = 0;
	const uint8_t *b = dime_pfmap_pol_out(p, &n);

	if (n == 0)
		return;
	for (size_t i = 0; i < n;) {
		const uint8_t *nl = memchr(b + i, '\n', n - i);
		size_t l;

		FUZZ_CHECK(nl != NULL);
		l = (size_t)(nl - (b + i));
		FUZZ_CHECK(l > 7 && l <= 7 + 16 + DIME_PFMAP_TEXT_MAX &&
			   memcmp(b + i, "action=", 7) == 0);
		for (size_t j = 0; j < l; j++)
			FUZZ_CHECK(b[i + j] >= 0x20 && b[i + j] <= 0x7e);
		FUZZ_CHECK(i + l + 1 < n && b[i + l + 1] == '\n');
		r->replies++;
		i += l + 2;
	}
	fuzz_out_keep(r->out, b, n);
	dime_pfmap_pol_out_done(p, n);
}

static void
fuzz_str_ok(const char *s)
{
	FUZZ_CHECK(s != NULL);
	for (; *s != 0; s++)
		FUZZ_CHECK((unsigned char)*s >= 0x20 && *s != 0x7f);
}

static void
fuzz_answer(struct dime_pfmap_pol *p, const struct dime_pfmap_pol_query *q, unsigned seed)
{
	const char *strs[] = {q->protocol_state,
			      q->protocol_name,
			      q->helo_name,
			      q->queue_id,
			      q->instance,
			      q->sender,
			      q->recipient,
			      q->client_address,
			      q->client_name,
			      q->reverse_client_name,
			      q->sasl_method,
			      q->sasl_username,
			      q->encryption_protocol,
			      q->stress,
			      q->policy_context};
	struct dime_pfmap_pol_answer a;
	char dom[DIME_PFMAP_DOMAIN_MAX + 1];
	int rc;

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		fuzz_str_ok(strs[i]);
	if (dime_pfmap_addr_domain(dom, sizeof(dom), q->recipient, strlen(q->recipient)) != DIME_OK)
		dom[0] = 0;
	FUZZ_CHECK(strcmp(dom, q->rcpt_domain) == 0);
	memset(&a, 0, sizeof(a));
	a.id = q->id;
	a.verdict = (enum dime_pfmap_pol_verdict)(1 + seed % 6);
	a.code = (seed / 6) % 2 ? 550 : 250;
	switch ((seed / 12) % 4) {
	case 0: memcpy(a.text, "5.7.1 refused", 13); break;
	case 1: break;
	case 2: memcpy(a.text, "bad\ntext", 8); break;
	default: memset(a.text, 'x', sizeof(a.text)); break; /* no NUL */
	}
	rc = dime_pfmap_pol_answer(p, &a);
	FUZZ_CHECK(rc == DIME_OK || rc == DIME_E_INVALID);
	FUZZ_CHECK(dime_pfmap_pol_query(p) == NULL);
	if (rc != DIME_OK)
		FUZZ_CHECK(dime_pfmap_pol_actions(p) == DIME_PFMAP_ACT_CLOSE &&
			   dime_pfmap_pol_error(p) == DIME_E_INVALID);
}

static void
fuzz_machine(struct fuzz_out *out, uint8_t cfg, const uint8_t *data, size_t size, size_t chunk)
{
	struct fuzz_run run = {.out = out}, *r = &run;
	struct dime_pfmap_pol_conf conf = {cfg & 1, (cfg >> 1) & 3};
	struct dime_pfmap_pol *p = NULL;
	size_t off = 0;
	unsigned n_q = 0;

	FUZZ_CHECK(dime_pfmap_pol_new(&p, &conf) == DIME_OK);
	while (off < size) {
		size_t want = size - off < chunk ? size - off : chunk;
		size_t n = dime_pfmap_pol_feed(p, data + off, want), pending = 0;
		unsigned act;
		const struct dime_pfmap_pol_query *q;

		FUZZ_CHECK(n <= want);
		off += n;
		(void)dime_pfmap_pol_out(p, &pending);
		fuzz_take_out(p, r);
		act = dime_pfmap_pol_actions(p);
		if (act & DIME_PFMAP_ACT_CLOSE) {
			FUZZ_CHECK(act == DIME_PFMAP_ACT_CLOSE && n == want);
			break;
		}
		q = dime_pfmap_pol_query(p);
		FUZZ_CHECK((q != NULL) == ((act & DIME_PFMAP_ACT_QUERY) != 0));
		if (q != NULL) {
			if (!conf.all_states)
				FUZZ_CHECK(q->state == DIME_PFMAP_ST_RCPT &&
					   q->rcpt_domain[0] != 0);
			fuzz_answer(p, q, (unsigned)(cfg >> 3) + n_q++ * 7u);
			fuzz_take_out(p, r);
		} else {
			FUZZ_CHECK(n == want || pending >= DIME_PFMAP_OUT_HIGH);
		}
	}
	if (!(dime_pfmap_pol_actions(p) & DIME_PFMAP_ACT_CLOSE)) {
		dime_pfmap_pol_drain(p);
		if (dime_pfmap_pol_query(p) != NULL)
			fuzz_answer(p, dime_pfmap_pol_query(p), 0);
		fuzz_take_out(p, r);
		FUZZ_CHECK(dime_pfmap_pol_actions(p) == DIME_PFMAP_ACT_CLOSE);
	}
	/* At most one reply per request; the ones missing closed the machine. */
	FUZZ_CHECK(r->replies <= dime_pfmap_pol_requests(p));
	if (dime_pfmap_pol_error(p) == DIME_OK)
		FUZZ_CHECK(r->replies == dime_pfmap_pol_requests(p));
	dime_pfmap_pol_free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_whole_vs_bytes(data, size, fuzz_machine);
}

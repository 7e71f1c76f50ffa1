/* Fuzz the socketmap machine (dime/pfmap.h). The first byte picks the map name, the request cap
 * and how queries are answered; the rest is what Postfix sends. Invariants: the output is a run
 * of well-formed netstrings (minimal length, printable payload, one of the five reply words,
 * NOTFOUND bare), one reply per request taken, feed never claims more than it was given, a
 * stalled feed always has a reason, a query's domain is what dime_pfmap_addr_domain makes of
 * its key, and feeding the same input whole or one byte at a time gives the same bytes. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dime/pfmap.h"
#include "fuzz_common.h"

struct fuzz_run {
	struct fuzz_out *out;
	uint64_t replies;
};

/* Check every netstring of p[0..n) (whole ones only) and keep a copy. */
static void
fuzz_take_out(struct dime_pfmap_sm *m, struct fuzz_run *r)
{
	static const char *const words[] = {"OK ", "NOTFOUND ", "TEMP ", "TIMEOUT ", "PERM "};
	size_t n = 0;
	const uint8_t *p = dime_pfmap_sm_out(m, &n);

	if (n == 0)
		return;
	for (size_t i = 0; i < n;) {
		size_t len = 0, d = i, w;

		FUZZ_CHECK(p[d] >= '0' && p[d] <= '9');
		FUZZ_CHECK(p[d] != '0' || (d + 1 < n && p[d + 1] == ':')); /* no leading zero */
		while (d < n && p[d] >= '0' && p[d] <= '9') {
			len = len * 10 + (size_t)(p[d] - '0');
			FUZZ_CHECK(len <= DIME_PFMAP_TEXT_MAX + 9);
			d++;
		}
		FUZZ_CHECK(d < n && p[d] == ':');
		d++;
		FUZZ_CHECK(len < n - d && p[d + len] == ',');
		for (w = 0; w < 5; w++)
			if (len >= strlen(words[w]) &&
			    memcmp(p + d, words[w], strlen(words[w])) == 0)
				break;
		FUZZ_CHECK(w < 5);
		if (w == 1)
			FUZZ_CHECK(len == 9);
		if (w == 0)
			FUZZ_CHECK(len > 3);
		for (size_t j = 0; j < len; j++)
			FUZZ_CHECK(p[d + j] >= 0x20 && p[d + j] <= 0x7e);
		r->replies++;
		i = d + len + 1;
	}
	fuzz_out_keep(r->out, p, n);
	dime_pfmap_sm_out_done(m, n);
}

static void
fuzz_answer(struct dime_pfmap_sm *m, const struct dime_pfmap_sm_query *q, unsigned seed)
{
	struct dime_pfmap_sm_answer a;
	char dom[DIME_PFMAP_DOMAIN_MAX + 1];
	int rc;

	/* The query's view of the request. */
	FUZZ_CHECK(q->key != NULL && strlen(q->key) == q->key_len);
	FUZZ_CHECK(q->name != NULL && q->name[0] != 0 && strchr(q->name, ' ') == NULL);
	FUZZ_CHECK(dime_pfmap_addr_domain(dom, sizeof(dom), q->key, q->key_len) == DIME_OK &&
		   strcmp(dom, q->domain) == 0);
	for (const char *c = q->domain; *c != 0; c++)
		FUZZ_CHECK((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' ||
			   *c == '.');
	memset(&a, 0, sizeof(a));
	a.id = q->id;
	a.status = (enum dime_pfmap_sm_status)(1 + seed % 5);
	switch ((seed / 5) % 4) {
	case 0: memcpy(a.text, "dime:[127.0.0.1]:10025", 22); break;
	case 1: break;
	case 2: memcpy(a.text, "bad\ttext", 8); break;
	default: memset(a.text, 'x', sizeof(a.text)); break; /* no NUL */
	}
	rc = dime_pfmap_sm_answer(m, &a);
	FUZZ_CHECK(rc == DIME_OK || rc == DIME_E_INVALID);
	FUZZ_CHECK(dime_pfmap_sm_query(m) == NULL); /* answered either way */
	if ((seed / 5) % 4 >= 2)
		FUZZ_CHECK(rc == DIME_E_INVALID);
}

static void
fuzz_machine(struct fuzz_out *out, uint8_t cfg, const uint8_t *data, size_t size, size_t chunk)
{
	struct fuzz_run run = {.out = out}, *r = &run;
	struct dime_pfmap_sm_conf conf = {(cfg & 1) ? NULL : "dime", (cfg >> 1) & 3};
	struct dime_pfmap_sm *m = NULL;
	size_t off = 0;
	unsigned n_q = 0;

	FUZZ_CHECK(dime_pfmap_sm_new(&m, &conf) == DIME_OK);
	while (off < size) {
		size_t want = size - off < chunk ? size - off : chunk;
		size_t n = dime_pfmap_sm_feed(m, data + off, want), pending = 0;
		unsigned act;
		const struct dime_pfmap_sm_query *q;

		FUZZ_CHECK(n <= want);
		off += n;
		(void)dime_pfmap_sm_out(m, &pending);
		fuzz_take_out(m, r);
		act = dime_pfmap_sm_actions(m);
		if (act & DIME_PFMAP_ACT_CLOSE) {
			FUZZ_CHECK(act == DIME_PFMAP_ACT_CLOSE && n == want);
			break;
		}
		q = dime_pfmap_sm_query(m);
		FUZZ_CHECK((q != NULL) == ((act & DIME_PFMAP_ACT_QUERY) != 0));
		if (q != NULL) {
			fuzz_answer(m, q, (unsigned)(cfg >> 3) + n_q++ * 7u);
			fuzz_take_out(m, r);
		} else {
			FUZZ_CHECK(n == want || pending >= DIME_PFMAP_OUT_HIGH);
		}
	}
	if (!(dime_pfmap_sm_actions(m) & DIME_PFMAP_ACT_CLOSE)) {
		dime_pfmap_sm_drain(m);
		if (dime_pfmap_sm_query(m) != NULL)
			fuzz_answer(m, dime_pfmap_sm_query(m), 0);
		fuzz_take_out(m, r);
		FUZZ_CHECK(dime_pfmap_sm_actions(m) == DIME_PFMAP_ACT_CLOSE);
	}
	/* Every request taken got its one reply (unless closed for want of memory). */
	if (dime_pfmap_sm_error(m) != DIME_E_NOMEM)
		FUZZ_CHECK(r->replies == dime_pfmap_sm_requests(m) ||
			   (r->replies + 1 == dime_pfmap_sm_requests(m) &&
			    dime_pfmap_sm_error(m) == DIME_E_MALFORMED));
	dime_pfmap_sm_free(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_whole_vs_bytes(data, size, fuzz_machine);
}

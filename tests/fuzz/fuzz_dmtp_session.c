/* Fuzz whole DMTP sessions. The first byte picks the listener kind, the caps and how queries
 * and TLS are answered; the rest is what the peer sends. Invariants: every reply line is
 * "NNN" + ' ' or '-' + printable ASCII + LF, continuation lines keep their code, feed never
 * claims more than it was given, a stalled feed always has a reason (query, TLS, close), a DATA
 * query never exceeds the cap, and feeding the same input whole or one byte at a time gives the
 * same replies byte for byte. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dime/dmtp_session.h"
#include "fuzz_common.h"

struct fuzz_run {
	struct fuzz_out *out;
	int cont_code; /* the code of an open multi-line reply, or 0 */
};

static void
fuzz_take_out(struct dime_dmtp_sess *s, struct fuzz_run *r)
{
	size_t n = 0;
	const uint8_t *p = dime_dmtp_sess_out(s, &n);

	if (n == 0)
		return;
	FUZZ_CHECK(p[n - 1] == '\n'); /* whole lines only */
	for (size_t i = 0; i < n;) {
		const uint8_t *nl = memchr(p + i, '\n', n - i);
		size_t l = (size_t)(nl - (p + i));

		FUZZ_CHECK(l >= 4 && l <= 1100);
		fuzz_reply_line(p + i, l, &r->cont_code);
		i += l + 1;
	}
	fuzz_out_keep(r->out, p, n);
	dime_dmtp_sess_out_done(s, n);
}

static const enum dime_dmtp_verdict fuzz_verdicts[] = {
    DIME_DMTP_V_OK,	      DIME_DMTP_V_ORIGIN_TEMP,
    DIME_DMTP_V_ORIGIN_PERM,  DIME_DMTP_V_ORIGIN_INVALID,
    DIME_DMTP_V_RCPT_INVALID, DIME_DMTP_V_ACCEPTED,
    DIME_DMTP_V_DUPLICATE,    DIME_DMTP_V_INVALID,
    DIME_DMTP_V_BAD_ORIGIN,   DIME_DMTP_V_UNKNOWN_RECIPIENT,
    DIME_DMTP_V_EXPIRED,      DIME_DMTP_V_ORG_SIGNET,
    DIME_DMTP_V_USER_SIGNET,  DIME_DMTP_V_HISTORY,
    DIME_DMTP_V_ORG_CURRENT,  DIME_DMTP_V_USER_CURRENT,
    DIME_DMTP_V_UNAVAILABLE,  DIME_DMTP_V_SIGNET_TEMP,
    DIME_DMTP_V_TEMPFAIL,     DIME_DMTP_V_BUSY};
#define FUZZ_N_VERDICTS (sizeof(fuzz_verdicts) / sizeof(fuzz_verdicts[0]))

/* Answer the open query: try verdicts from a seed-chosen start until one fits its kind. */
static void
fuzz_answer(struct dime_dmtp_sess *s, const struct dime_dmtp_query *q, unsigned seed,
	    size_t max_message)
{
	struct dime_dmtp_answer a;

	if (q->kind == DIME_DMTP_Q_DATA)
		FUZZ_CHECK(q->data_len <= max_message && (q->data_len == 0 || q->data != NULL));
	memset(&a, 0, sizeof(a));
	a.id = q->id;
	memset(a.hash, 'A', DIME_DMTP_SESS_HASH_CHARS);
	a.armor = "-----BEGIN USER SIGNET-----\nQUJD\n-----END USER SIGNET-----\n";
	a.armor_len = strlen(a.armor);
	for (size_t i = 0; i < FUZZ_N_VERDICTS; i++) {
		a.verdict = fuzz_verdicts[(seed + i) % FUZZ_N_VERDICTS];
		if (dime_dmtp_sess_answer(s, &a) == DIME_OK)
			return;
		FUZZ_CHECK(dime_dmtp_sess_query(s) == q); /* a refused answer keeps it open */
	}
	FUZZ_CHECK(0); /* TEMPFAIL fits every kind */
}

/* One session over data[0..size) in pieces of chunk octets. */
static void
fuzz_session(struct fuzz_out *out, uint8_t cfg, const uint8_t *data, size_t size, size_t chunk)
{
	struct fuzz_run run = {.out = out}, *r = &run;
	struct dime_dmtp_sess_conf conf = {.kind = (cfg & 1) ? DIME_DMTP_SESS_DUAL
							     : DIME_DMTP_SESS_DMTP,
					   .hostname = "mx.fuzz.example",
					   .max_message = (cfg & 2) ? 64 : 4096,
					   .max_cmds = (cfg & 4) ? 20 : 0,
					   .early_talk_reject = 0};
	struct dime_dmtp_sess *s = NULL;
	size_t off = 0;
	unsigned n_q = 0, n_tls = 0;

	FUZZ_CHECK(dime_dmtp_sess_new(&s, &conf) == DIME_OK);
	dime_dmtp_sess_start(s);
	fuzz_take_out(s, r);
	while (off < size) {
		size_t want = size - off < chunk ? size - off : chunk;
		size_t n = dime_dmtp_sess_feed(s, data + off, want);
		unsigned act;
		const struct dime_dmtp_query *q;

		size_t pending = 0;

		FUZZ_CHECK(n <= want);
		off += n;
		(void)dime_dmtp_sess_out(s, &pending);
		fuzz_take_out(s, r);
		act = dime_dmtp_sess_actions(s);
		if (act & DIME_DMTP_ACT_CLOSE) {
			FUZZ_CHECK(act == DIME_DMTP_ACT_CLOSE && n == want);
			break;
		}
		q = dime_dmtp_sess_query(s);
		FUZZ_CHECK((q != NULL) == ((act & DIME_DMTP_ACT_QUERY) != 0));
		if (q != NULL) {
			fuzz_answer(s, q, (cfg >> 3) + n_q++ * 7u, conf.max_message);
			fuzz_take_out(s, r);
		} else if (act & DIME_DMTP_ACT_TLS) {
			/* Plaintext held past STARTTLS would be dropped by a server; here the rest
			 * of the input plays the part of what arrives over TLS. */
			dime_dmtp_sess_tls_done(
			    s, (enum dime_dmtp_tls_result)(((cfg >> 5) + n_tls++) % 3));
			fuzz_take_out(s, r);
		} else {
			/* Stalled for no reason, unless replies filled the high-water mark. */
			FUZZ_CHECK(n == want || pending >= DIME_DMTP_SESS_OUT_HIGH);
		}
	}
	if (!(dime_dmtp_sess_actions(s) & DIME_DMTP_ACT_CLOSE)) {
		dime_dmtp_sess_drain(s);
		fuzz_take_out(s, r);
		if (dime_dmtp_sess_query(s) != NULL) {
			fuzz_answer(s, dime_dmtp_sess_query(s), 18, conf.max_message);
			fuzz_take_out(s, r);
		}
	}
	dime_dmtp_sess_free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_whole_vs_bytes(data, size, fuzz_session);
}

/* Fuzz whole ESMTP and LMTP sessions. The first byte picks the configuration (bare LF policy,
 * caps, TLS, long lines, LMTP) and how queries are answered; the rest is what the client sends, and
 * each query is answered with a verdict, status and text picked from the input. Invariants: every
 * reply line is "NNN" + ' ' or '-' + printable ASCII + CRLF within 512 octets, continuation lines
 * keep their code, feed never claims more than it was given, a stalled feed always has a reason
 * (query, TLS, close, full output), a refused answer leaves the query open, a DATA query holds CRLF
 * lines within the cap whose flags tell the truth, and feeding the same input whole or one byte at
 * a time gives the same replies byte for byte. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dime/smtp_session.h"
#include "fuzz_common.h"

struct fuzz_run {
	struct fuzz_out *out;
	int cont_code; /* the code of an open multi-line reply, or 0 */
};

static void
fuzz_take_out(struct dime_smtp_sess *s, struct fuzz_run *r)
{
	size_t n = 0;
	const uint8_t *p = dime_smtp_sess_out(s, &n);

	if (n == 0)
		return;
	FUZZ_CHECK(n >= 2 && p[n - 2] == '\r' && p[n - 1] == '\n'); /* whole lines only */
	for (size_t i = 0; i < n;) {
		const uint8_t *nl = memchr(p + i, '\n', n - i);
		size_t l = (size_t)(nl - (p + i)); /* CR included */

		FUZZ_CHECK(l >= 5 && l + 1 <= DIME_SMTP_LINE_MAX && p[i + l - 1] == '\r');
		fuzz_reply_line(p + i, l - 1, &r->cont_code);
		i += l + 1;
	}
	fuzz_out_keep(r->out, p, n);
	dime_smtp_sess_out_done(s, n);
}

static void
fuzz_check_addr(const char *a)
{
	size_t n = strlen(a);

	FUZZ_CHECK(n <= DIME_SMTP_PATH_MAX - 2);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)a[i] >= 0x20 && a[i] != 0x7f);
}

/* What a DATA query holds must match its flags and the configuration. */
static void
fuzz_check_data(const struct dime_smtp_query *q, const struct dime_smtp_sess_conf *c)
{
	unsigned want = 0;
	size_t line = 0;

	FUZZ_CHECK(q->data != NULL && q->data_len <= c->max_message);
	FUZZ_CHECK(q->n_rcpts >= 1 && q->n_rcpts <= c->max_rcpts);
	FUZZ_CHECK(q->data_len == 0 ||
		   (q->data_len >= 2 && memcmp(q->data + q->data_len - 2, "\r\n", 2) == 0));
	for (size_t i = 0; i < q->data_len; i++) {
		uint8_t b = q->data[i];

		if (b == '\n') {
			FUZZ_CHECK(i > 0 && q->data[i - 1] == '\r');
			if (line - 1 > DIME_SMTP_TEXT_LINE_MAX)
				want |= DIME_SMTP_DATA_LONG_LINES;
			line = 0;
			continue;
		}
		line++;
		if (b >= 0x80)
			want |= DIME_SMTP_DATA_8BIT;
		if (b == '\r' && (i + 1 == q->data_len || q->data[i + 1] != '\n'))
			want |= DIME_SMTP_DATA_BARE_CR;
	}
	FUZZ_CHECK((q->flags & ~(unsigned)DIME_SMTP_DATA_BARE_LF) == want);
	if (c->bare_lf == DIME_SMTP_BARE_LF_REJECT)
		FUZZ_CHECK((q->flags & (DIME_SMTP_DATA_BARE_LF | DIME_SMTP_DATA_BARE_CR)) == 0);
	if (c->reject_long_lines)
		FUZZ_CHECK(!(q->flags & DIME_SMTP_DATA_LONG_LINES));
}

/* Answer the open query: verdict, status and text from seed and the input before it; a status
 * that does not fit is refused and the query stays open for a plain answer. */
static void
fuzz_answer(struct dime_smtp_sess *s, const struct dime_smtp_query *q, unsigned seed,
	    const uint8_t *in, size_t in_len, const struct dime_smtp_sess_conf *c)
{
	static const char *const statuses[] = {NULL, "4.4.3", "5.7.26", "2.0.0", "9.9.9", "5.1"};
	struct dime_smtp_answer a;
	char text[24];
	size_t tl = in_len < sizeof(text) - 1 ? in_len : sizeof(text) - 1;

	switch (q->kind) {
	case DIME_SMTP_Q_MAIL:
		FUZZ_CHECK(q->rcpt == NULL && q->n_rcpts == 0 && q->data == NULL);
		fuzz_check_addr(q->mail->addr);
		break;
	case DIME_SMTP_Q_RCPT:
		FUZZ_CHECK(q->rcpt != NULL && q->data == NULL && q->n_rcpts < c->max_rcpts);
		fuzz_check_addr(q->rcpt);
		FUZZ_CHECK(q->rcpt[0] != 0);
		break;
	case DIME_SMTP_Q_DATA: fuzz_check_data(q, c); break;
	}
	for (size_t i = 0; i < q->n_rcpts; i++)
		fuzz_check_addr(q->rcpts[i]);
	memcpy(text, in + in_len - tl, tl);
	text[tl] = 0;
	memset(&a, 0, sizeof(a));
	a.id = q->id;
	a.verdict = (enum dime_smtp_verdict)(1 + seed % 6);
	a.status = statuses[(seed / 6) % 6];
	a.text = (seed / 36) % 2 ? text : NULL;
	if (dime_smtp_sess_answer(s, &a) == DIME_OK)
		return;
	FUZZ_CHECK(dime_smtp_sess_query(s) == q); /* a refused answer keeps it open */
	a.status = NULL;
	FUZZ_CHECK(dime_smtp_sess_answer(s, &a) == DIME_OK);
}

/* One session over data[0..size) in pieces of chunk octets. */
static void
fuzz_session(struct fuzz_out *out, uint8_t cfg, const uint8_t *data, size_t size, size_t chunk)
{
	struct fuzz_run run = {.out = out}, *r = &run;
	struct dime_smtp_sess_conf conf = {.hostname = "mx.fuzz.example",
					   .bare_lf = (cfg & 1) ? DIME_SMTP_BARE_LF_REJECT
								: DIME_SMTP_BARE_LF_NORMALIZE,
					   .max_message = (cfg & 2) ? 64 : 4096,
					   .max_cmds = (cfg & 4) ? 20 : 0,
					   .tls_available = (cfg & 8) != 0,
					   .reject_long_lines = (cfg & 16) != 0,
					   .max_rcpts = (cfg & 32) ? 3 : 100,
					   .lmtp = (cfg & 64) != 0,
					   .early_talk_reject = 0};
	struct dime_smtp_sess *s = NULL;
	size_t off = 0;
	unsigned n_q = 0, n_tls = 0;

	FUZZ_CHECK(dime_smtp_sess_new(&s, &conf) == DIME_OK);
	dime_smtp_sess_start(s);
	fuzz_take_out(s, r);
	while (off < size) {
		size_t want = size - off < chunk ? size - off : chunk;
		size_t n = dime_smtp_sess_feed(s, data + off, want), pending = 0;
		unsigned act;
		const struct dime_smtp_query *q;

		FUZZ_CHECK(n <= want);
		off += n;
		(void)dime_smtp_sess_out(s, &pending);
		fuzz_take_out(s, r);
		act = dime_smtp_sess_actions(s);
		if (act & DIME_SMTP_ACT_CLOSE) {
			FUZZ_CHECK(act == DIME_SMTP_ACT_CLOSE && n == want);
			break;
		}
		q = dime_smtp_sess_query(s);
		FUZZ_CHECK((q != NULL) == ((act & DIME_SMTP_ACT_QUERY) != 0));
		FUZZ_CHECK(!((act & DIME_SMTP_ACT_QUERY) && (act & DIME_SMTP_ACT_DATA)));
		if (q != NULL) {
			/* LMTP DATA takes an answer per recipient: the same query until then. */
			for (size_t k = 0; q != NULL; k++) {
				unsigned seed =
				    (cfg >> 7) + n_q++ * 7u + (off >= 2 ? data[off - 2] : 0u);

				FUZZ_CHECK(q->rcpt_index == k && (k == 0 || conf.lmtp));
				fuzz_answer(s, q, seed, data, off, &conf);
				fuzz_take_out(s, r);
				q = dime_smtp_sess_query(s);
			}
		} else if (act & DIME_SMTP_ACT_TLS) {
			/* Plaintext held past STARTTLS would be dropped by a server; here the rest
			 * of the input plays the part of what arrives over TLS. */
			FUZZ_CHECK(conf.tls_available && !dime_smtp_sess_is_tls(s));
			dime_smtp_sess_tls_done(s, (int)((cfg >> 7) + n_tls++) % 3 != 0);
			fuzz_take_out(s, r);
		} else {
			/* Stalled for no reason, unless replies filled the high-water mark. */
			FUZZ_CHECK(n == want || pending >= DIME_SMTP_SESS_OUT_HIGH);
		}
	}
	if (!(dime_smtp_sess_actions(s) & DIME_SMTP_ACT_CLOSE)) {
		dime_smtp_sess_drain(s);
		fuzz_take_out(s, r);
		while (dime_smtp_sess_query(s) != NULL) {
			fuzz_answer(s, dime_smtp_sess_query(s), 0, data, off, &conf);
			fuzz_take_out(s, r);
		}
	}
	dime_smtp_sess_free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_whole_vs_bytes(data, size, fuzz_session);
}

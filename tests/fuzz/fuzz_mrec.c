/* Fuzz the management-record parser. Whatever parses must generate a record that parses to the
 * same meaning; the generated record must split into TXT strings that re-join to it; failures
 * must leave the output zeroed with a reason. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dime/crypto.h"
#include "fuzz_common.h"
#include "dime/mrec.h"

static int
fuzz_view_eq(struct dime_view a, struct dime_view b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static int
fuzz_view_inside(struct dime_view v, const void *base, size_t len)
{
	const uint8_t *b = base;

	return v.p >= b && v.len <= len && (size_t)(v.p - b) <= len - v.len;
}

static void
fuzz_same(const struct dime_mrec *a, const struct dime_mrec *b)
{
	if (a->version != b->version || a->expiry_days != b->expiry_days ||
	    a->policy != b->policy || a->subdomain != b->subdomain || a->n_poks != b->n_poks ||
	    a->n_tls != b->n_tls || a->n_dx != b->n_dx || a->n_syn != b->n_syn)
		abort();
	if (memcmp(a->poks, b->poks, a->n_poks * sizeof(a->poks[0])) != 0 ||
	    memcmp(a->tls, b->tls, a->n_tls * sizeof(a->tls[0])) != 0)
		abort();
	for (size_t i = 0; i < a->n_dx; i++)
		if (!fuzz_view_eq(a->dx[i], b->dx[i]))
			abort();
	for (size_t i = 0; i < a->n_syn; i++)
		if (!fuzz_view_eq(a->syn[i], b->syn[i]))
			abort();
}

/* The parser's separators: space, ';', and whitespace (tab, CR, LF, VT, FF). */
static int
fuzz_is_sep(char c)
{
	return c == ' ' || c == ';' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	       c == '\f';
}

/* A split must cover rec exactly, in strings of 1..255 bytes, each but the last ending at a
 * separator; LIMIT only when some field is too long to stand in a string of its own. */
static void
fuzz_split(const char *rec, size_t len)
{
	struct dime_view parts[96];
	size_t n = 0, at = 0;
	int rc = dime_mrec_split(parts, sizeof(parts) / sizeof(parts[0]), &n, rec, len);

	if (rc == DIME_E_LIMIT) {
		size_t run = 0, longest = 0;

		for (size_t i = 0; i < len; i++) {
			run = fuzz_is_sep(rec[i]) ? 0 : run + 1;
			if (run > longest)
				longest = run;
		}
		if (n != 0 || longest < DIME_MREC_TXT_STRING_MAX)
			abort();
		return;
	}
	/* More strings than slots: a clean refusal, nothing written past the array. */
	if (rc == DIME_E_NOSPACE) {
		if (n > sizeof(parts) / sizeof(parts[0]))
			abort();
		return;
	}
	if (rc != DIME_OK)
		abort();
	for (size_t i = 0; i < n; i++) {
		char last;

		if (parts[i].len == 0 || parts[i].len > DIME_MREC_TXT_STRING_MAX ||
		    parts[i].p != (const uint8_t *)rec + at)
			abort();
		last = (char)parts[i].p[parts[i].len - 1];
		if (i + 1 < n && !fuzz_is_sep(last))
			abort();
		at += parts[i].len;
	}
	if (at != len)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct dime_mrec zero;
	struct dime_mrec m, back;
	const char *why = NULL;
	char *gen = NULL;
	size_t need = 0, len = 0;
	int rc = dime_mrec_parse(&m, &why, (const char *)data, size);

	if (why == NULL)
		abort();
	if (rc != DIME_OK) {
		if (memcmp(&m, &zero, sizeof(m)) != 0 || why[0] == 0 ||
		    (rc != DIME_E_MALFORMED && rc != DIME_E_LIMIT) ||
		    (rc == DIME_E_LIMIT && size <= DIME_MREC_MAX_BYTES &&
		     strstr(why, "more than 16") == NULL))
			abort();
		fuzz_split((const char *)data, size); /* the splitter takes any text */
		return 0;
	}
	if (why[0] != 0 || size > DIME_MREC_MAX_BYTES || m.version != 1 || m.n_poks == 0 ||
	    m.n_poks > DIME_MREC_MAX_VALUES || m.n_tls > DIME_MREC_MAX_VALUES ||
	    m.n_dx > DIME_MREC_MAX_VALUES || m.n_syn > DIME_MREC_MAX_VALUES || m.expiry_days == 0 ||
	    m.expiry_days > 3650)
		abort();
	for (size_t i = 0; i < m.n_dx; i++)
		if (!fuzz_view_inside(m.dx[i], data, size))
			abort();
	for (size_t i = 0; i < m.n_syn; i++)
		if (!fuzz_view_inside(m.syn[i], data, size))
			abort();
	if (dime_mrec_generate(NULL, 0, &need, &m) != DIME_OK || need == 0)
		abort();
	if ((gen = malloc(need + 1)) == NULL)
		abort();
	if (dime_mrec_generate(gen, need, &len, &m) != DIME_E_NOSPACE || len != 0)
		abort();
	if (dime_mrec_generate(gen, need + 1, &len, &m) != DIME_OK || len != need || gen[len] != 0)
		abort();
	/* A generated record can be longer than the limit only through many long values. */
	if (len <= DIME_MREC_MAX_BYTES) {
		if (dime_mrec_parse(&back, &why, gen, len) != DIME_OK)
			abort();
		fuzz_same(&m, &back);
	}
	fuzz_split(gen, len);
	/* The tls check answers yes or no, nothing else; bounded work. */
	if (m.n_tls * m.n_poks <= 4) {
		rc = dime_mrec_tls_check(&m, data, size);
		if (rc != DIME_OK && rc != DIME_E_BADSIG)
			abort();
	}
	free(gen);
	return 0;
}

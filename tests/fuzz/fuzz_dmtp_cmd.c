/* Fuzz the DMTP command-line parser and formatter. Invariants: only the documented errors, each
 * with a reason and a zeroed command; LIMIT exactly past 512 octets and TRUNCATED exactly without
 * a final LF; every accepted field NUL-terminated within its bound; format -> parse gives the
 * same command byte for byte, in at most 512 octets ending in a lone LF; the verb's case and a
 * CRLF terminator change nothing. Inputs without an LF are also tried with one appended. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dime/dmtp.h"
#include "fuzz_common.h"

static int
fuzz_is_zero(const struct dime_dmtp_cmd *c)
{
	static const struct dime_dmtp_cmd zero;

	return memcmp(c, &zero, sizeof(zero)) == 0;
}

static int
fuzz_terminated(const char *f, size_t cap, size_t min)
{
	const char *nul = memchr(f, 0, cap);

	return nul != NULL && (size_t)(nul - f) >= min;
}

/* Parse, check the result's shape, and when accepted the round trip. Returns: parse's code. */
static int
fuzz_one(struct dime_dmtp_cmd *c, const char *line, size_t len)
{
	struct dime_dmtp_cmd back;
	const char *why = NULL;
	char out[DIME_DMTP_LINE_MAX + 1], again[DIME_DMTP_LINE_MAX + 1];
	size_t n = 0, need = 0, n2 = 0;
	unsigned f;
	int rc = dime_dmtp_parse(c, &why, line, len);

	FUZZ_CHECK(why != NULL);
	if (len > DIME_DMTP_LINE_MAX) {
		FUZZ_CHECK(rc == DIME_E_LIMIT);
	} else if (len == 0 || line[len - 1] != '\n') {
		FUZZ_CHECK(rc == DIME_E_TRUNCATED);
	}
	if (rc != DIME_OK) {
		FUZZ_CHECK(rc == DIME_E_LIMIT || rc == DIME_E_TRUNCATED || rc == DIME_E_NOTFOUND ||
			   rc == DIME_E_MALFORMED);
		FUZZ_CHECK(fuzz_is_zero(c) && why[0] != 0);
		FUZZ_CHECK(dime_dmtp_reply_code(rc) == (rc == DIME_E_MALFORMED ? 501 : 500));
		return rc;
	}
	f = c->flags;
	FUZZ_CHECK(why[0] == 0 && (unsigned)c->verb < DIME_DMTP_N_VERBS);
	FUZZ_CHECK((f & ~0x7fu) == 0 && (!(f & DIME_DMTP_F_MAILBOX) || (f & DIME_DMTP_F_ADDR)));
	FUZZ_CHECK(fuzz_terminated(c->addr, sizeof(c->addr), f & DIME_DMTP_F_ADDR ? 1 : 0));
	FUZZ_CHECK(fuzz_terminated(c->fp, sizeof(c->fp), f & DIME_DMTP_F_FP ? 1 : 0));
	FUZZ_CHECK(fuzz_terminated(c->start, sizeof(c->start), f & DIME_DMTP_F_START ? 1 : 0));
	FUZZ_CHECK(fuzz_terminated(c->stop, sizeof(c->stop), f & DIME_DMTP_F_STOP ? 1 : 0));
	FUZZ_CHECK(fuzz_terminated(c->text, sizeof(c->text), f & DIME_DMTP_F_TEXT ? 1 : 0));
	FUZZ_CHECK(!(f & DIME_DMTP_F_MODE) || strcmp(c->mode, "DMTP") == 0 ||
		   strcmp(c->mode, "SMTP") == 0);
	FUZZ_CHECK(!(f & DIME_DMTP_F_MAILBOX) == (strchr(c->addr, '@') == NULL));
	rc = dime_dmtp_check(c, &why);
	FUZZ_CHECK((rc == DIME_OK && why[0] == 0) || (rc == DIME_E_MALFORMED && why[0] != 0));

	FUZZ_CHECK(dime_dmtp_format(NULL, 0, &need, c) == DIME_OK);
	FUZZ_CHECK(dime_dmtp_format(out, need, &n, c) == DIME_E_NOSPACE && n == 0);
	FUZZ_CHECK(dime_dmtp_format(out, sizeof(out), &n, c) == DIME_OK && n == need);
	FUZZ_CHECK(n <= DIME_DMTP_LINE_MAX && out[n] == 0 && out[n - 1] == '\n');
	FUZZ_CHECK(memchr(out, '\n', n - 1) == NULL && memchr(out, '\r', n) == NULL);
	FUZZ_CHECK(dime_dmtp_parse(&back, NULL, out, n) == DIME_OK);
	FUZZ_CHECK(memcmp(&back, c, sizeof(back)) == 0 && dime_dmtp_equal(&back, c));
	/* Our own output is canonical: formatting it again changes nothing. */
	FUZZ_CHECK(dime_dmtp_format(again, sizeof(again), &n2, &back) == DIME_OK && n2 == n &&
		   memcmp(again, out, n) == 0);
	return DIME_OK;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dime_dmtp_cmd c, alt;
	const char *line = (const char *)data;
	char *buf;
	size_t v = 0;
	int rc = fuzz_one(&c, line, size);

	if (size >= DIME_DMTP_LINE_MAX)
		return 0;
	if ((buf = malloc(size + 1)) == NULL)
		abort();
	memcpy(buf, data, size);
	if (size == 0 || line[size - 1] != '\n') {
		/* Most inputs lack the LF: give them one, so the grammar is reached. */
		buf[size] = '\n';
		(void)fuzz_one(&c, buf, size + 1);
		free(buf);
		return 0;
	}
	/* The verb's case does not matter. */
	while (v < size && buf[v] != ' ') {
		if (buf[v] >= 'a' && buf[v] <= 'z')
			buf[v] = (char)(buf[v] - 'a' + 'A');
		v++;
	}
	FUZZ_CHECK(fuzz_one(&alt, buf, size) == rc && (rc != DIME_OK || dime_dmtp_equal(&alt, &c)));
	/* CRLF means LF: drop the CR (unless another CR before it would become the terminator's).
	 */
	if (size >= 3 && line[size - 2] == '\r' && line[size - 3] != '\r') {
		memcpy(buf, data, size);
		buf[size - 2] = '\n';
		FUZZ_CHECK(fuzz_one(&alt, buf, size - 1) == rc &&
			   (rc != DIME_OK || dime_dmtp_equal(&alt, &c)));
	}
	free(buf);
	return 0;
}

/* Fuzz the reinjection client's reply reader (gateway/src/smtpc.c) with whatever the MTA may
 * answer. Invariants: a reply is claimed only up to a LF inside the input, its code is 200..599,
 * its enhanced code is empty or "c.s.d" of the reply's class, its text is printable ASCII; the
 * same bytes cut right before the final LF are incomplete, and the claimed bytes alone parse
 * again to the same reply. */

#include <stdint.h>
#include <string.h>

#include "dime/smtpc.h"
#include "fuzz_common.h"

/* Internal to smtpc.c, exported for this target (not part of dime/smtpc.h). */
int dime_smtpc_reply_scan(struct dime_smtpc_reply *r, unsigned *caps, size_t *used, const char *buf,
			  size_t len);

static void
fuzz_enh_ok(const char *e, int code)
{
	size_t i = 2;

	if (e[0] == '\0')
		return;
	FUZZ_CHECK(e[0] - '0' == code / 100 && e[1] == '.');
	for (int part = 0; part < 2; part++) {
		size_t d = 0;

		while (e[i] >= '0' && e[i] <= '9') {
			i++;
			d++;
		}
		FUZZ_CHECK(d >= 1 && d <= 3);
		if (part == 0)
			FUZZ_CHECK(e[i++] == '.');
	}
	FUZZ_CHECK(e[i] == '\0');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dime_smtpc_reply r, r2;
	const char *buf = (const char *)data;
	unsigned caps = 0, caps2 = 0;
	size_t used = 0, used2 = 0;
	int rc = dime_smtpc_reply_scan(&r, &caps, &used, buf, size);

	FUZZ_CHECK(rc == DIME_OK || rc == DIME_E_AGAIN || rc == DIME_E_LIMIT ||
		   rc == DIME_E_MALFORMED);
	if (rc != DIME_OK) {
		FUZZ_CHECK(used == 0 && caps == 0 && r.code == 0);
		return 0;
	}
	FUZZ_CHECK(used >= 4 && used <= size && buf[used - 1] == '\n');
	FUZZ_CHECK(r.code >= 200 && r.code <= 599 && r.stage == NULL);
	FUZZ_CHECK(memchr(r.enh, '\0', sizeof(r.enh)) != NULL);
	fuzz_enh_ok(r.enh, r.code);
	FUZZ_CHECK(memchr(r.text, '\0', sizeof(r.text)) != NULL);
	for (const char *t = r.text; *t != '\0'; t++)
		FUZZ_CHECK(*t >= 0x20 && *t < 0x7f);
	/* the claimed bytes alone give the same reply; without their last LF, none yet */
	FUZZ_CHECK(dime_smtpc_reply_scan(&r2, &caps2, &used2, buf, used) == DIME_OK);
	FUZZ_CHECK(used2 == used && caps2 == caps && r2.code == r.code &&
		   strcmp(r2.enh, r.enh) == 0 && strcmp(r2.text, r.text) == 0);
	FUZZ_CHECK(dime_smtpc_reply_scan(&r2, &caps2, &used2, buf, used - 1) == DIME_E_AGAIN);
	return 0;
}

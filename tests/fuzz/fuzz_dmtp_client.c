/* Fuzz the DMTP client machine with whatever a hostile server may answer. The first byte picks
 * the mode, the operations asked when ready and how TLS ends; the rest is the server's bytes.
 * Invariants: feed never claims more than it was given, a stalled feed always has a reason
 * (TLS, a result, close), every command line the client writes ends in LF and stays within 512
 * octets except inside DATA, results carry a code 200..599, and feeding the input whole or one
 * byte at a time gives the same commands byte for byte. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dime/dmtp_client.h"
#include "fuzz_common.h"

#define FP "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

static void
fuzz_take(struct dime_dmtp_client *c, struct fuzz_out *out, int in_data)
{
	size_t n = 0;
	const uint8_t *p = dime_dmtp_client_out(c, &n);

	if (n == 0)
		return;
	FUZZ_CHECK(p[n - 1] == '\n');
	if (!in_data)
		for (size_t i = 0; i < n;) {
			const uint8_t *nl = memchr(p + i, '\n', n - i);

			FUZZ_CHECK(nl != NULL && (size_t)(nl - (p + i)) + 1 <= 512);
			i = (size_t)(nl - p) + 1;
		}
	fuzz_out_keep(out, p, n);
	dime_dmtp_client_out_done(c, n);
}

/* Submit the next operation, quit, or stay idle (returns 1). */
static int
fuzz_ready(struct dime_dmtp_client *c, uint8_t cfg, unsigned n_op)
{
	static const char msg[] = "-----BEGIN ENCRYPTED MESSAGE-----\n.QUJD\n"
				  "-----END ENCRYPTED MESSAGE-----\n";
	struct dime_dmtp_client_op op;
	unsigned k = ((unsigned)(cfg >> 4) + n_op) % 6;
	const char *why;

	if (k == 5)
		return 1;
	if (k == 4) {
		dime_dmtp_client_quit(c);
		return 0;
	}
	memset(&op, 0, sizeof(op));
	op.kind = (enum dime_dmtp_client_op_kind)(k + 1);
	op.target = "bob@example.net";
	op.fp = FP;
	op.from = "example.org";
	op.from_fp = FP;
	op.to = "example.net";
	op.to_fp = FP;
	op.msg = (const uint8_t *)msg;
	op.msg_len = sizeof(msg) - 1;
	FUZZ_CHECK(dime_dmtp_client_submit(c, &op, &why) == DIME_OK);
	return 0;
}

static void
fuzz_client(struct fuzz_out *out, uint8_t cfg, const uint8_t *data, size_t size, size_t chunk)
{
	struct dime_dmtp_client_conf conf = {(cfg & 1) ? DIME_DMTP_CLIENT_DUAL
						       : DIME_DMTP_CLIENT_IMPLICIT,
					     "mx.fuzz.example", "peer.fuzz.example", 4096};
	struct dime_dmtp_client *c = NULL;
	size_t off = 0;
	unsigned n_ops = 0;
	int idle = 0;

	FUZZ_CHECK(dime_dmtp_client_new(&c, &conf) == DIME_OK);
	while (off < size) {
		size_t want = size - off < chunk ? size - off : chunk;
		size_t n = dime_dmtp_client_feed(c, data + off, want);
		unsigned act = dime_dmtp_client_actions(c);

		FUZZ_CHECK(n <= want);
		off += n;
		fuzz_take(c, out, (act & DIME_DMTP_CLIENT_ACT_DATA) != 0);
		if (act & DIME_DMTP_CLIENT_ACT_CLOSE) {
			FUZZ_CHECK(n == want);
			break;
		}
		if (act & DIME_DMTP_CLIENT_ACT_TLS) {
			dime_dmtp_client_tls_done(c, ((cfg >> 1) + n_ops) % 5 != 0);
		} else if (act & DIME_DMTP_CLIENT_ACT_RESULT) {
			const struct dime_dmtp_client_result *res = dime_dmtp_client_result(c);

			FUZZ_CHECK(res != NULL && res->code >= 200 && res->code <= 599);
			dime_dmtp_client_result_done(c);
		} else if (!(act & DIME_DMTP_CLIENT_ACT_READY)) {
			FUZZ_CHECK(n == want); /* stalled for no reason */
		}
		/* Decide at once on every entry into READY (before feeding more), so that whole and
		 * byte-wise runs act at the same point; an idle client reads what comes unasked. */
		if ((dime_dmtp_client_actions(c) & DIME_DMTP_CLIENT_ACT_READY) && !idle)
			idle = fuzz_ready(c, cfg, n_ops++);
		fuzz_take(c, out, 1);
	}
	dime_dmtp_client_free(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_whole_vs_bytes(data, size, fuzz_client);
}

/* Fuzz the D/MIME framing (dime_msg_dump). Invariants: the counting pass and the filling pass
 * agree; every view lies inside the input; chunks are contiguous, in wire order, and end
 * exactly at the end of the input; each chunk's keyslot count matches its type; a tracing
 * prefix sits right before the 1847 header. Envelope peeking with a throwaway key must fail
 * cleanly (no crash) on anything. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dime/crypto.h"
#include "fuzz_common.h"
#include "dime/keys.h"
#include "dime/msg.h"

static struct dime_ks *fuzz_ks;
static uint32_t fuzz_key;

void
fuzz_setup(void)
{
	if (dime_ks_new(&fuzz_ks) != DIME_OK ||
	    dime_ks_generate(fuzz_ks, &fuzz_key, DIME_KEY_ORG) != DIME_OK)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dime_msg_dump d, d2;
	struct dime_msg_chunk_info *ch;
	struct dime_msg_envelope env;
	const char *why = NULL;
	size_t next;
	int rc;

	if (fuzz_ks == NULL)
		LLVMFuzzerInitialize(NULL, NULL);
	rc = dime_msg_dump(&d, NULL, 0, &why, data, size);
	FUZZ_CHECK(why != NULL);
	if (rc != DIME_OK) {
		FUZZ_CHECK(d.n_chunks == 0 && *why != 0);
		return 0;
	}
	FUZZ_CHECK(d.n_chunks > 0 && d.n_chunks <= size / 4);
	ch = calloc(d.n_chunks, sizeof(*ch));
	FUZZ_CHECK(ch != NULL);
	rc = dime_msg_dump(&d2, ch, d.n_chunks, &why, data, size);
	FUZZ_CHECK(rc == DIME_OK && d2.n_chunks == d.n_chunks && d2.msg_offset == d.msg_offset);
	FUZZ_CHECK(fuzz_inside(d2.tracing, data, size));
	if (d2.tracing.len > 0)
		FUZZ_CHECK(d2.tracing.p == data + 4 && d2.msg_offset == 4 + d2.tracing.len);
	next = d2.msg_offset + DIME_MSG_HEADER_BYTES;
	for (size_t i = 0; i < d2.n_chunks; i++) {
		const struct dime_msg_chunk_info *c = &ch[i];

		FUZZ_CHECK(c->offset == next && c->chunk.p == data + c->offset);
		FUZZ_CHECK(fuzz_inside(c->chunk, data, size) &&
			   fuzz_inside(c->payload, data, size) &&
			   fuzz_inside(c->slots, data, size));
		FUZZ_CHECK(c->chunk.p[0] == c->type && c->actors == dime_msg_chunk_actors(c->type));
		FUZZ_CHECK(c->payload.p == c->chunk.p + DIME_MSG_CHUNK_HEADER_BYTES);
		FUZZ_CHECK(c->slots.len == (size_t)c->n_slots * DIME_MSG_KEYSLOT_BYTES);
		FUZZ_CHECK(c->chunk.len ==
			   DIME_MSG_CHUNK_HEADER_BYTES + c->payload.len + c->slots.len);
		FUZZ_CHECK(strcmp(dime_msg_chunk_name(c->type), "unknown") != 0);
		next += c->chunk.len;
	}
	FUZZ_CHECK(next == size);
	/* a key that is no party: every step must fail cleanly, never crash */
	rc = dime_msg_envelope_peek(fuzz_ks, &env, &why, data, size, DIME_ACTOR_DESTINATION,
				    fuzz_key);
	if (rc != DIME_OK)
		FUZZ_CHECK(env.have_destination_chunk == 0 && env.recipient[0] == 0);
	free(ch);
	return 0;
}

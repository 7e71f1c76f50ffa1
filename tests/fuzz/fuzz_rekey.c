/* Fuzz the re-key container (docs/rekey.md): dime_msg_rekey_info and dime_msg_dump over it.
 * Invariants: info and dump agree on what they accept; a container's record and message views
 * lie inside the input, the record right after the 6-byte header and the message right after
 * the record, ending the input; the record is 166 + 68 * n_slots bytes with one slot per
 * chunk but the ephemeral one; rebuilding header + record + message gives the input back; the
 * message alone frames as a plain message with the same chunks, whose offsets shift by where
 * it starts. Opening as the recipient with a throwaway key must fail cleanly. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dime/crypto.h"
#include "dime/keys.h"
#include "dime/msg.h"
#include "fuzz_common.h"

static struct dime_ks *fuzz_ks;
static uint32_t fuzz_key;

void
fuzz_setup(void)
{
	if (dime_ks_new(&fuzz_ks) != DIME_OK ||
	    dime_ks_generate(fuzz_ks, &fuzz_key, DIME_KEY_USER) != DIME_OK)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dime_msg_rekey_info info;
	struct dime_msg_dump d, di;
	struct dime_msg_chunk_info *ch = NULL, *chi = NULL;
	struct dime_msg_envelope env;
	const char *why = NULL;
	uint8_t *re;
	size_t off;
	int rc, rd;

	if (fuzz_ks == NULL)
		LLVMFuzzerInitialize(NULL, NULL);
	rc = dime_msg_rekey_info(&info, &why, data, size);
	FUZZ_CHECK(why != NULL);
	rd = dime_msg_dump(&d, NULL, 0, &why, data, size);
	FUZZ_CHECK(rc == rd);
	if (rc != DIME_OK) {
		FUZZ_CHECK(*why != 0 && info.rekeyed == 0 && info.message.p == NULL &&
			   info.record.p == NULL);
		return 0;
	}
	FUZZ_CHECK(fuzz_inside(info.message, data, size));
	if (!info.rekeyed) {
		FUZZ_CHECK(info.message.p == data && info.message.len == size &&
			   info.record.len == 0 && info.n_slots == 0);
	} else {
		FUZZ_CHECK(size >= 6 && data[0] == (DIME_MSG_REKEY_MAGIC >> 8) &&
			   data[1] == (DIME_MSG_REKEY_MAGIC & 0xffu));
		FUZZ_CHECK(fuzz_inside(info.record, data, size) && info.record.p == data + 6);
		FUZZ_CHECK(info.record.len == 166 + 68 * info.n_slots);
		FUZZ_CHECK(info.message.p == info.record.p + info.record.len &&
			   info.message.p + info.message.len == data + size);
		FUZZ_CHECK(info.n_slots + 1 == d.n_chunks);
		/* the round trip: header + record + message is the input */
		re = malloc(size);
		FUZZ_CHECK(re != NULL);
		re[0] = data[0];
		re[1] = data[1];
		off = size - 6;
		re[2] = (uint8_t)(off >> 24);
		re[3] = (uint8_t)(off >> 16);
		re[4] = (uint8_t)(off >> 8);
		re[5] = (uint8_t)off;
		memcpy(re + 6, info.record.p, info.record.len);
		memcpy(re + 6 + info.record.len, info.message.p, info.message.len);
		FUZZ_CHECK(memcmp(re, data, size) == 0);
		free(re);
		/* the message alone is a plain message with the same chunks */
		rc = dime_msg_dump(&di, NULL, 0, &why, info.message.p, info.message.len);
		FUZZ_CHECK(rc == DIME_OK && di.n_chunks == d.n_chunks);
		ch = calloc(d.n_chunks, sizeof(*ch));
		chi = calloc(d.n_chunks, sizeof(*chi));
		FUZZ_CHECK(ch != NULL && chi != NULL);
		FUZZ_CHECK(dime_msg_dump(&d, ch, d.n_chunks, &why, data, size) == DIME_OK);
		FUZZ_CHECK(dime_msg_dump(&di, chi, d.n_chunks, &why, info.message.p,
					 info.message.len) == DIME_OK);
		off = (size_t)(info.message.p - data);
		FUZZ_CHECK(d.msg_offset == di.msg_offset + off);
		for (size_t i = 0; i < d.n_chunks; i++)
			FUZZ_CHECK(ch[i].offset == chi[i].offset + off &&
				   ch[i].type == chi[i].type && ch[i].chunk.p == chi[i].chunk.p);
		free(ch);
		free(chi);
	}
	/* a key that is no party: every step must fail cleanly, never crash */
	rc =
	    dime_msg_envelope_peek(fuzz_ks, &env, &why, data, size, DIME_ACTOR_RECIPIENT, fuzz_key);
	if (rc != DIME_OK)
		FUZZ_CHECK(env.have_destination_chunk == 0 && env.recipient[0] == 0);
	return 0;
}

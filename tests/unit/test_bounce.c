/* The bounce object (docs/bounce.md): the destination builds it from an accepted interop
 * message, the origin verifies it with its own key and POK; tampering, the wrong organisation,
 * unsigned messages and every truncation are refused. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dime/msg.h"
#include "tlib.h"

struct party {
	struct dime_signet *signet;
	uint32_t key;
};

static struct dime_ks *ks;

static void
load_party(struct party *p, const char *signet_file, const char *keys_file)
{
	size_t len;
	uint8_t *b = t_read(signet_file, &len);
	const char *why = "";

	if (dime_signet_load(&p->signet, &why, b, len) != DIME_OK)
		t_fail("%s: %s", signet_file, why);
	free(b);
	b = t_read(keys_file, &len);
	if (dime_ks_load(ks, &p->key, b, len) != DIME_OK)
		t_fail("%s does not load", keys_file);
	free(b);
}

int
main(void)
{
	struct party alpha, beta;
	struct dime_msg_parties parties;
	struct dime_msg_bounce_info info;
	uint8_t *msg, *bounce = NULL, *b2 = NULL;
	size_t len, blen = 0, b2len = 0;
	const char *why = "";
	int rc;

	t_init();
	if (dime_ks_new(&ks) != DIME_OK)
		return 1;
	load_party(&alpha, "org-alpha.signet.bin", "org-alpha.keys.pem");
	load_party(&beta, "org-beta.signet.bin", "org-beta.keys.pem");
	memset(&parties, 0, sizeof(parties));
	parties.origin = alpha.signet;
	parties.destination = beta.signet;

	/* Metadata only. */
	msg = t_read("msg-small.complete.bin", &len);
	rc = dime_msg_bounce(ks, &bounce, &blen, &why, msg, len, beta.key, &parties,
			     DIME_BOUNCE_UNKNOWN_RECIPIENT, "no such user", 0);
	T_CHECK(rc == DIME_OK, "bounce msg-small: got %d (%s), want ok", rc, why);
	rc = dime_msg_bounce_verify(ks, &info, &why, bounce, blen, alpha.key, alpha.signet);
	T_CHECK(rc == DIME_OK, "verify: got %d (%s), want ok", rc, why);
	T_CHECK(strcmp(info.env.author, "alice@alpha.example") == 0 &&
		    strcmp(info.env.destination, "beta.example") == 0,
		"verify: envelope %s -> %s", info.env.author, info.env.destination);
	T_CHECK(info.code == DIME_BOUNCE_UNKNOWN_RECIPIENT &&
		    strcmp(info.reason, "no such user") == 0 && !info.with_display,
		"verify: reason %d '%s' display %d", info.code, info.reason, info.with_display);

	/* The wrong organisation cannot verify it. */
	rc = dime_msg_bounce_verify(ks, &info, &why, bounce, blen, beta.key, beta.signet);
	T_CHECK(rc == DIME_E_BADSIG, "verify as beta: got %d, want BADSIG", rc);
	rc = dime_msg_bounce_verify(ks, &info, &why, bounce, blen, alpha.key, beta.signet);
	T_CHECK(rc == DIME_E_BADSIG, "verify against beta's POK: got %d, want BADSIG", rc);

	/* Every bit of the returned chunks is covered, except the reason text (the destination's
	 * word) and the keyslots of 248 that are not the origin's (A, D, R: the last 256 bytes but
	 * the O slot), which the origin never uses. */
	{
		size_t chunks_at = 2 + 4 + 1 + 2 + strlen("no such user");

		for (size_t i = chunks_at; i < blen; i++) {
			if (i >= blen - 256 && !(i >= blen - 192 && i < blen - 128))
				continue;
			bounce[i] ^= 0x10;
			rc = dime_msg_bounce_verify(ks, &info, &why, bounce, blen, alpha.key,
						    alpha.signet);
			bounce[i] ^= 0x10;
			if (rc == DIME_OK) {
				t_fail("flip at %zu of %zu accepted", i, blen);
				break;
			}
			T_CHECK(info.reason[0] == 0, "flip at %zu: info not zeroed", i);
		}
	}
	/* Every strict prefix fails cleanly against a guard page. */
	for (size_t k = 0; k < blen; k++) {
		const uint8_t *g = t_at_page_end(0, bounce, k);

		if (dime_msg_bounce_verify(ks, &info, &why, g, k, alpha.key, alpha.signet) ==
		    DIME_OK) {
			t_fail("prefix %zu accepted", k);
			break;
		}
	}
	/* Trailing bytes. */
	b2 = malloc(blen + 1);
	memcpy(b2, bounce, blen);
	b2[blen] = 0;
	T_CHECK(dime_msg_bounce_verify(ks, &info, &why, b2, blen + 1, alpha.key, alpha.signet) !=
		    DIME_OK,
		"trailing byte accepted");
	free(b2);
	b2 = NULL;
	dime_msg_free(bounce, blen);
	free(msg);

	/* With the display chunks and 249. */
	msg = t_read("msg-attach.complete.bin", &len);
	rc = dime_msg_bounce(ks, &b2, &b2len, &why, msg, len, beta.key, &parties,
			     DIME_BOUNCE_TOO_LARGE, "", 1);
	T_CHECK(rc == DIME_OK, "bounce msg-attach with display: got %d (%s)", rc, why);
	rc = dime_msg_bounce_verify(ks, &info, &why, b2, b2len, alpha.key, alpha.signet);
	T_CHECK(rc == DIME_OK && info.with_display && info.code == DIME_BOUNCE_TOO_LARGE,
		"verify with display: got %d (%s) display %d", rc, why, info.with_display);
	dime_msg_free(b2, b2len);
	free(msg);

	/* Only what the destination accepts can be bounced. */
	{
		static const char *const refused[] = {
		    "msg-small.author-output.bin", "x-bad-org-sig-bitflip.bin",
		    "msg-metabounce.complete.bin", "x-truncated.bin"};

		for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
			msg = t_read(refused[i], &len);
			b2 = NULL;
			rc = dime_msg_bounce(ks, &b2, &b2len, &why, msg, len, beta.key, &parties,
					     DIME_BOUNCE_REFUSED, "x", 0);
			T_CHECK(rc != DIME_OK && b2 == NULL && b2len == 0,
				"bounce of %s: got %d, want refusal", refused[i], rc);
			free(msg);
		}
	}
	/* Bad arguments. */
	msg = t_read("msg-small.complete.bin", &len);
	T_CHECK(dime_msg_bounce(ks, &b2, &b2len, &why, msg, len, beta.key, &parties,
				(enum dime_msg_bounce_code)9, "x", 0) == DIME_E_INVALID,
		"bad code accepted");
	free(msg);

	dime_signet_free(alpha.signet);
	dime_signet_free(beta.signet);
	dime_ks_free(ks);
	return t_done("test_bounce");
}

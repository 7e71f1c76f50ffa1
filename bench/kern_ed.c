/* dime-bench kernels: Ed25519 verification, dime_ed25519_verify_batch in batches of 16 and 64
 * against libsodium's crypto_sign_verify_detached one signature at a time, on the same
 * signatures: each under its own key (the general case), then each batch's under 4 keys
 * ("_hotkey", the mail case: a few organisations sign most messages). 100-byte messages, all
 * distinct. Samples of the three alternate, so a change of clock speed hits them alike. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "bench.h"
#include "dime/crypto.h"
#include "dime/simd.h"

#define KE_N   2048 /* signatures per sample: 128 batches of 16, 32 of 64 */
#define KE_MSG 100
#define KE_HOT 4

enum ke_who { KE_SODIUM, KE_B16, KE_B64, KE_WHO };

struct ke_set {
	uint8_t (*pub)[32], (*sig)[64], (*msg)[KE_MSG];
	struct dime_ed25519_check *c;
	uint8_t *ok;
};

static void
ke_free(struct ke_set *s)
{
	free(s->pub);
	free(s->sig);
	free(s->msg);
	free(s->c);
	free(s->ok);
}

/* n_keys 0: a key per signature; else signature i under one of n_keys keys, drawn at random.
 * Returns: 0, or 1 when allocation or signing fails. */
static int
ke_make(struct ke_set *s, unsigned n_keys)
{
	uint8_t hot_pk[KE_HOT][32], hot_sk[KE_HOT][64], sk[64];

	memset(s, 0, sizeof(*s));
	s->pub = malloc(KE_N * sizeof(*s->pub));
	s->sig = malloc(KE_N * sizeof(*s->sig));
	s->msg = malloc(KE_N * sizeof(*s->msg));
	s->c = malloc(KE_N * sizeof(*s->c));
	s->ok = malloc(KE_N);
	if (s->pub == NULL || s->sig == NULL || s->msg == NULL || s->c == NULL || s->ok == NULL)
		return 1;
	for (unsigned k = 0; k < n_keys && k < KE_HOT; k++)
		if (crypto_sign_keypair(hot_pk[k], hot_sk[k]) != 0)
			return 1;
	for (size_t i = 0; i < KE_N; i++) {
		const uint8_t *key = sk;

		randombytes_buf(s->msg[i], KE_MSG);
		memcpy(s->msg[i], &i, sizeof(i)); /* distinct, whatever the random bytes */
		if (n_keys == 0) {
			if (crypto_sign_keypair(s->pub[i], sk) != 0)
				return 1;
		} else {
			unsigned k = randombytes_uniform(n_keys);

			memcpy(s->pub[i], hot_pk[k], 32);
			key = hot_sk[k];
		}
		if (crypto_sign_detached(s->sig[i], NULL, s->msg[i], KE_MSG, key) != 0)
			return 1;
		s->c[i].sig = s->sig[i];
		s->c[i].pub = s->pub[i];
		s->c[i].msg = s->msg[i];
		s->c[i].msg_len = KE_MSG;
	}
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(hot_sk, sizeof(hot_sk));
	return 0;
}

/* Seconds per signature, one sample over all KE_N. */
static double
ke_sample(struct ke_set *s, enum ke_who who, int *err)
{
	double t0 = bench_kern_now();
	size_t b = who == KE_B16 ? 16 : 64;

	if (who == KE_SODIUM) {
		for (size_t i = 0; i < KE_N; i++)
			*err |= crypto_sign_verify_detached(s->sig[i], s->msg[i], KE_MSG,
							    s->pub[i]) != 0;
	} else {
		for (size_t off = 0; off < KE_N; off += b)
			*err |= dime_ed25519_verify_batch(s->c + off, b, s->ok + off) != DIME_OK;
	}
	return (bench_kern_now() - t0) / KE_N;
}

/* Every verdict once, outside timing: all must verify, both ways. */
static int
ke_verdicts(struct ke_set *s)
{
	for (size_t b = 16; b <= 64; b *= 4) {
		memset(s->ok, 0, KE_N);
		for (size_t off = 0; off < KE_N; off += b)
			if (dime_ed25519_verify_batch(s->c + off, b, s->ok + off) != DIME_OK)
				return 1;
		for (size_t i = 0; i < KE_N; i++)
			if (s->ok[i] != 1)
				return 1;
	}
	for (size_t i = 0; i < KE_N; i++)
		if (crypto_sign_verify_detached(s->sig[i], s->msg[i], KE_MSG, s->pub[i]) != 0)
			return 1;
	return 0;
}

/* Medians of the three, sampled in turn after one warm-up round. Returns: 0, or 1. */
static int
ke_run(struct ke_set *s, unsigned repeats, const char *suffix)
{
	double *v[KE_WHO], med[KE_WHO];
	char name[64], note[64];
	int err = 0, rc = 1;

	for (int w = 0; w < KE_WHO; w++)
		v[w] = malloc(repeats * sizeof(double));
	for (int w = 0; w < KE_WHO; w++)
		if (v[w] == NULL)
			goto out;
	for (int w = 0; w < KE_WHO; w++)
		(void)ke_sample(s, (enum ke_who)w, &err);
	for (unsigned r = 0; r < repeats; r++)
		for (int w = 0; w < KE_WHO; w++)
			v[w][r] = ke_sample(s, (enum ke_who)w, &err);
	for (int w = 0; w < KE_WHO; w++)
		med[w] = bench_kern_median(v[w], repeats);
	if (err) {
		fprintf(stderr, "kern_ed: a timed verification failed\n");
		goto out;
	}
	snprintf(note, sizeof(note), "per signature (%s)", dime_simd()->name);
	snprintf(name, sizeof(name), "ed25519_verify_batch16%s", suffix);
	bench_kern_report(name, "libsodium_verify", med[KE_B16], med[KE_SODIUM], note);
	snprintf(name, sizeof(name), "ed25519_verify_batch64%s", suffix);
	bench_kern_report(name, "libsodium_verify", med[KE_B64], med[KE_SODIUM], note);
	rc = 0;
out:
	for (int w = 0; w < KE_WHO; w++)
		free(v[w]);
	return rc;
}

int
bench_kern_ed(unsigned repeats)
{
	struct ke_set all, hot;
	int rc = 1;

	memset(&all, 0, sizeof(all));
	memset(&hot, 0, sizeof(hot));
	if (ke_make(&all, 0) != 0 || ke_make(&hot, KE_HOT) != 0) {
		fprintf(stderr, "kern_ed: setup failed\n");
		goto out;
	}
	if (ke_verdicts(&all) != 0 || ke_verdicts(&hot) != 0) {
		fprintf(stderr, "kern_ed: a valid signature does not verify\n");
		goto out;
	}
	if (ke_run(&all, repeats, "") != 0 || ke_run(&hot, repeats, "_hotkey") != 0)
		goto out;
	rc = 0;
out:
	ke_free(&all);
	ke_free(&hot);
	return rc;
}

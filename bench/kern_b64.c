/* dime-bench kernels: base64 of 1 MiB through dime_b64_encode / dime_b64_decode (the SIMD
 * level dime_simd_init chose) against OpenSSL's EVP_EncodeBlock / EVP_DecodeBlock on the same
 * bytes. Both sides write into buffers allocated and touched before timing. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "bench.h"
#include "dime/codec.h"
#include "dime/crypto.h"
#include "dime/simd.h"

#define KB_LEN	 (1u << 20)
#define KB_ITERS 8 /* calls per sample */

enum kb_who { KB_ENC, KB_EVP_ENC, KB_DEC, KB_EVP_DEC };

struct kb {
	uint8_t *bin, *back;
	char *txt, *txt2;
	size_t txt_len, txt_cap;
};

/* Seconds per call, one sample of KB_ITERS calls. */
static double
kb_sample(struct kb *b, enum kb_who who, int *err)
{
	double t0 = bench_kern_now();
	size_t n = 0;

	for (unsigned i = 0; i < KB_ITERS; i++) {
		switch (who) {
		case KB_ENC:
			*err |= dime_b64_encode(b->txt2, b->txt_cap, &n, b->bin, KB_LEN,
						DIME_B64_PAD) != DIME_OK;
			break;
		case KB_EVP_ENC:
			*err |= EVP_EncodeBlock((unsigned char *)b->txt2, b->bin, (int)KB_LEN) !=
				(int)b->txt_len;
			break;
		case KB_DEC:
			*err |= dime_b64_decode(b->back, KB_LEN, &n, b->txt, b->txt_len,
						DIME_B64_PAD) != DIME_OK;
			break;
		case KB_EVP_DEC:
			/* returns the 3-byte groups, padding bytes included */
			*err |= EVP_DecodeBlock(b->back, (const unsigned char *)b->txt,
						(int)b->txt_len) != (int)(b->txt_len / 4 * 3);
			break;
		}
	}
	return (bench_kern_now() - t0) / KB_ITERS;
}

static double
kb_median(struct kb *b, enum kb_who who, unsigned repeats, int *err)
{
	double *v = malloc(repeats * sizeof(*v)), m;

	if (v == NULL) {
		*err = 1;
		return 0;
	}
	(void)kb_sample(b, who, err); /* warm up: caches, page faults, frequency */
	for (unsigned r = 0; r < repeats; r++)
		v[r] = kb_sample(b, who, err);
	m = bench_kern_median(v, repeats);
	free(v);
	return m;
}

int
bench_kern_b64(unsigned repeats)
{
	struct kb b;
	char note[64];
	double ours, theirs;
	int err = 0, rc = 1;
	size_t n = 0;

	memset(&b, 0, sizeof(b));
	b.txt_len = dime_b64_encoded_len(KB_LEN, DIME_B64_PAD);
	b.txt_cap = b.txt_len + 1; /* EVP_EncodeBlock writes a NUL too */
	b.bin = malloc(KB_LEN);
	b.back = malloc(KB_LEN + 3); /* EVP_DecodeBlock writes the padding bytes as well */
	b.txt = malloc(b.txt_cap);
	b.txt2 = malloc(b.txt_cap);
	if (b.bin == NULL || b.back == NULL || b.txt == NULL || b.txt2 == NULL)
		goto out;
	dime_random(b.bin, KB_LEN);
	memset(b.back, 0, KB_LEN + 3);
	memset(b.txt2, 0, b.txt_cap);
	/* Same text from both encoders, and both decoders give the bytes back. */
	if (dime_b64_encode(b.txt, b.txt_cap, &n, b.bin, KB_LEN, DIME_B64_PAD) != DIME_OK ||
	    n != b.txt_len ||
	    EVP_EncodeBlock((unsigned char *)b.txt2, b.bin, (int)KB_LEN) != (int)b.txt_len ||
	    memcmp(b.txt, b.txt2, b.txt_len) != 0) {
		fprintf(stderr, "kern_b64: encoders differ\n");
		goto out;
	}
	if (dime_b64_decode(b.back, KB_LEN, &n, b.txt, b.txt_len, DIME_B64_PAD) != DIME_OK ||
	    n != KB_LEN || memcmp(b.back, b.bin, KB_LEN) != 0) {
		fprintf(stderr, "kern_b64: decode differs\n");
		goto out;
	}
	snprintf(note, sizeof(note), "per 1 MiB call (%s)", dime_simd()->name);
	ours = kb_median(&b, KB_ENC, repeats, &err);
	theirs = kb_median(&b, KB_EVP_ENC, repeats, &err);
	bench_kern_report("base64_encode_1m", "EVP_EncodeBlock", ours, theirs, note);
	ours = kb_median(&b, KB_DEC, repeats, &err);
	theirs = kb_median(&b, KB_EVP_DEC, repeats, &err);
	bench_kern_report("base64_decode_1m", "EVP_DecodeBlock", ours, theirs, note);
	if (err) {
		fprintf(stderr, "kern_b64: a timed call failed\n");
		goto out;
	}
	rc = 0;
out:
	free(b.bin);
	free(b.back);
	free(b.txt);
	free(b.txt2);
	return rc;
}

/* dime-bench kernels: multi-buffer AES-256-CBC encryption (dime_aes256cbc_encrypt_many and
 * each SIMD table) against OpenSSL EVP encrypting the same streams one after another, and,
 * when built with it, Intel's multi-buffer library (libipsec-mb) on the same streams.
 * Key expansion is inside every timed call: each stream has its own key, as in wrap. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "bench.h"
#include "dime/crypto.h"
#include "dime/simd.h"

#if defined(DIME_BENCH_HAVE_IPSEC_MB)
#include <intel-ipsec-mb.h>
#endif

#define KA_MAX_STREAMS 40
#define KA_MAX_LEN     4096

struct ka {
	uint8_t key[KA_MAX_STREAMS][32], iv[KA_MAX_STREAMS][16];
	/* rows of 4096 + 80 and 4096 + 144 bytes: streams 4 KiB apart would all fall into the
	 * same L1 sets and alias 4K-wise between loads and stores, which real buffers do not */
	uint8_t in[KA_MAX_STREAMS][KA_MAX_LEN + 80], out[KA_MAX_STREAMS][KA_MAX_LEN + 144];
	uint8_t want[KA_MAX_STREAMS][KA_MAX_LEN + 144];
	struct dime_aes256cbc_lane l[KA_MAX_STREAMS];
	EVP_CIPHER_CTX *evp;
	EVP_CIPHER *cbc;
};

static void
ka_setup(struct ka *a, size_t n, size_t len)
{
	for (size_t i = 0; i < n; i++) {
		a->l[i].key = a->key[i];
		a->l[i].iv = a->iv[i];
		a->l[i].in = a->in[i];
		a->l[i].out = a->out[i];
		a->l[i].len = len;
	}
}

/* OpenSSL, one stream after another: the single-stream baseline (one context reused). */
static int
ka_openssl(struct ka *a, size_t n, uint8_t (*out)[KA_MAX_LEN + 144])
{
	for (size_t i = 0; i < n; i++) {
		int o = 0, f = 0;

		if (EVP_EncryptInit_ex2(a->evp, a->cbc, a->key[i], a->iv[i], NULL) != 1 ||
		    EVP_CIPHER_CTX_set_padding(a->evp, 0) != 1 ||
		    EVP_EncryptUpdate(a->evp, out[i], &o, a->in[i], (int)a->l[i].len) != 1 ||
		    EVP_EncryptFinal_ex(a->evp, out[i] + o, &f) != 1)
			return -1;
	}
	return 0;
}

enum ka_who { KA_MANY, KA_TABLE, KA_OPENSSL, KA_IPSEC };

struct ka_ipsec;
static int ka_ipsec_run(struct ka_ipsec *m, struct ka *a, size_t n);

/* Seconds per call of who, one sample of iters calls. */
static double
ka_sample(struct ka *a, enum ka_who who, const struct dime_simd_ops *t, struct ka_ipsec *ipsec,
	  size_t n, unsigned iters, int *err)
{
	double t0 = bench_kern_now();

	for (unsigned i = 0; i < iters; i++) {
		switch (who) {
		case KA_MANY: *err |= dime_aes256cbc_encrypt_many(a->l, n) != DIME_OK; break;
		case KA_TABLE: t->aes256cbc_encrypt_lanes(a->l, n); break;
		case KA_OPENSSL: *err |= ka_openssl(a, n, a->out) != 0; break;
		case KA_IPSEC: *err |= ka_ipsec_run(ipsec, a, n) != 0; break;
		}
	}
	return (bench_kern_now() - t0) / iters;
}

static int
ka_same(const struct ka *a, size_t n, const char *who)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(a->out[i], a->want[i], a->l[i].len) != 0) {
			fprintf(stderr, "kern_aes: %s differs from OpenSSL on stream %zu\n", who,
				i);
			return -1;
		}
	return 0;
}

#if defined(DIME_BENCH_HAVE_IPSEC_MB)
/* The library's job API: expanded keys are the caller's (IMB_AES_KEYEXP_256, done in the
 * timed call for parity), jobs are submitted and completed out of order, flushed at the end. */
struct ka_ipsec {
	IMB_MGR *mgr;
	_Alignas(16) uint8_t enc[KA_MAX_STREAMS][16 * 15], dec[KA_MAX_STREAMS][16 * 15];
	IMB_ARCH arch;
};

static int
ka_ipsec_run(struct ka_ipsec *m, struct ka *a, size_t n)
{
	IMB_JOB *job;
	size_t done = 0;

	for (size_t i = 0; i < n; i++) {
		IMB_AES_KEYEXP_256(m->mgr, a->key[i], m->enc[i], m->dec[i]);
		job = IMB_GET_NEXT_JOB(m->mgr);
		job->cipher_direction = IMB_DIR_ENCRYPT;
		job->chain_order = IMB_ORDER_CIPHER_HASH;
		job->cipher_mode = IMB_CIPHER_CBC;
		job->hash_alg = IMB_AUTH_NULL;
		job->enc_keys = m->enc[i];
		job->dec_keys = m->dec[i];
		job->key_len_in_bytes = IMB_KEY_256_BYTES;
		job->src = a->in[i];
		job->dst = a->out[i];
		job->cipher_start_src_offset_in_bytes = 0;
		job->msg_len_to_cipher_in_bytes = a->l[i].len;
		job->iv = a->iv[i];
		job->iv_len_in_bytes = 16;
		job->user_data = NULL;
		for (job = IMB_SUBMIT_JOB(m->mgr); job != NULL;
		     job = IMB_GET_COMPLETED_JOB(m->mgr)) {
			if (job->status != IMB_STATUS_COMPLETED)
				return -1;
			done++;
		}
	}
	while ((job = IMB_FLUSH_JOB(m->mgr)) != NULL) {
		if (job->status != IMB_STATUS_COMPLETED)
			return -1;
		done++;
	}
	return done == n ? 0 : -1;
}

static const char *
ka_ipsec_arch(IMB_ARCH a)
{
	return a == IMB_ARCH_AVX512 ? "avx512"
	       : a == IMB_ARCH_AVX2 ? "avx2"
	       : a == IMB_ARCH_SSE  ? "sse"
				    : "other";
}
#else
struct ka_ipsec {
	int unused;
};

static int
ka_ipsec_run(struct ka_ipsec *m, struct ka *a, size_t n)
{
	(void)m;
	(void)a;
	(void)n;
	return -1;
}
#endif

#define KA_REPEATS_MAX 64
#define KA_WHO_MAX     (3 + DIME_SIMD_MAX + 1)

static size_t
ka_add(enum ka_who *who, const struct dime_simd_ops **tab, const char **label, size_t nw,
       enum ka_who w, const struct dime_simd_ops *t, const char *l)
{
	who[nw] = w;
	tab[nw] = t;
	label[nw] = l;
	return nw + 1;
}

/* One shape (n streams of len bytes): the dispatch against OpenSSL, then each table and the
 * library as extra lines. Samples of all contenders alternate within each repeat, so a busy
 * machine slows them alike; each line reports the medians. */
static int
ka_shape(struct ka *a, struct ka_ipsec *ipsec, const char *shape, size_t n, size_t len,
	 unsigned repeats, unsigned iters)
{
	static double v[KA_WHO_MAX][KA_REPEATS_MAX];
	enum ka_who who[KA_WHO_MAX];
	const struct dime_simd_ops *tab[KA_WHO_MAX];
	const char *label[KA_WHO_MAX];
	char name[96], note[64], lib[48];
	size_t nw = 0;
	int err = 0;

	if (repeats > KA_REPEATS_MAX)
		repeats = KA_REPEATS_MAX;
	ka_setup(a, n, len);
	if (ka_openssl(a, n, a->want) != 0)
		return -1;
	nw = ka_add(who, tab, label, nw, KA_OPENSSL, NULL, "openssl_cbc_single");
	nw = ka_add(who, tab, label, nw, KA_MANY, NULL, "");
	for (int lvl = DIME_SIMD_BASE; lvl <= DIME_SIMD_MAX; lvl++) {
		const struct dime_simd_ops *t = dime_simd_table((enum dime_simd_level)lvl);

		if (t != NULL)
			nw = ka_add(who, tab, label, nw, KA_TABLE, t, t->name);
	}
#if defined(DIME_BENCH_HAVE_IPSEC_MB)
	snprintf(lib, sizeof(lib), "ipsec-mb %s %s", IMB_VERSION_STR, ka_ipsec_arch(ipsec->arch));
	nw = ka_add(who, tab, label, nw, KA_IPSEC, NULL, lib);
#else
	(void)lib;
#endif
	for (size_t w = 1; w < nw; w++) { /* every contender must match OpenSSL first */
		memset(a->out, 0, sizeof(a->out));
		(void)ka_sample(a, who[w], tab[w], ipsec, n, 1, &err);
		if (err != 0 ||
		    ka_same(a, n, w == 1 ? "dime_aes256cbc_encrypt_many" : label[w]) != 0)
			return -1;
	}
	for (unsigned r = 0; r < repeats; r++)
		for (size_t w = 0; w < nw; w++) {
			/* base is arithmetic and slow: fewer calls per sample */
			unsigned it =
			    tab[w] == dime_simd_table(DIME_SIMD_BASE) ? 1 + iters / 100 : iters;

			v[w][r] = ka_sample(a, who[w], tab[w], ipsec, n, it, &err);
		}
	if (err != 0)
		return -1;
	snprintf(note, sizeof(note), "per %zu x %zu B", n, len);
	for (size_t w = 0; w < nw; w++)
		v[w][0] = bench_kern_median(v[w], repeats);
	for (size_t w = 1; w < nw; w++) {
		if (w == 1)
			snprintf(name, sizeof(name), "aes256cbc_encrypt_%s", shape);
		else
			snprintf(name, sizeof(name), "aes256cbc_encrypt_%s[%s]", shape, label[w]);
		bench_kern_report(name, "openssl_cbc_single", v[w][0], v[0][0], note);
	}
	return 0;
}

int
bench_kern_aes(unsigned repeats)
{
	struct ka *a = calloc(1, sizeof(*a));
	struct ka_ipsec *ipsec = calloc(1, sizeof(*ipsec));
	int rc = 1;

	if (a == NULL || ipsec == NULL)
		goto out;
	dime_random(a->key, sizeof(a->key));
	dime_random(a->iv, sizeof(a->iv));
	dime_random(a->in, sizeof(a->in));
	a->evp = EVP_CIPHER_CTX_new();
	a->cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
	if (a->evp == NULL || a->cbc == NULL)
		goto out;
#if defined(DIME_BENCH_HAVE_IPSEC_MB)
	ipsec->mgr = alloc_mb_mgr(0);
	if (ipsec->mgr == NULL)
		goto out;
	init_mb_mgr_auto(ipsec->mgr, &ipsec->arch);
#else
	printf("    (libipsec-mb not found at build time: no library line)\n");
#endif
	printf("    (simd level: %s)\n", dime_simd()->name);
	if (ka_shape(a, ipsec, "8x4k", 8, 4096, repeats, 200) != 0 ||
	    ka_shape(a, ipsec, "16x4k", 16, 4096, repeats, 100) != 0 ||
	    ka_shape(a, ipsec, "40x64", 40, 64, repeats, 2000) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "kern_aes: failed\n");
#if defined(DIME_BENCH_HAVE_IPSEC_MB)
	if (ipsec != NULL && ipsec->mgr != NULL)
		free_mb_mgr(ipsec->mgr);
#endif
	if (a != NULL) {
		EVP_CIPHER_CTX_free(a->evp);
		EVP_CIPHER_free(a->cbc);
	}
	free(a);
	free(ipsec);
	return rc;
}

/* The per-thread CSPRNG behind randombytes_buf: installed into libsodium, distinct streams per
 * thread, a fork child does not repeat its parent's output, reseeds happen on schedule, and
 * the output passes basic statistical sanity checks (monobit, byte histogram, no repeats). */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "dime/crypto.h"
#include "dime/rng.h"
#include "tlib.h"

#define T_THREADS 4

struct t_thread {
	pthread_t tid;
	uint8_t out[64];
	uint64_t reseeds;
};

static void *
t_draw(void *arg)
{
	struct t_thread *t = arg;

	randombytes_buf(t->out, sizeof(t->out));
	t->reseeds = dime_pl_rng_reseeds();
	return NULL;
}

static void
t_threads(void)
{
	struct t_thread th[T_THREADS];
	uint8_t mine[64];

	randombytes_buf(mine, sizeof(mine));
	for (int i = 0; i < T_THREADS; i++)
		T_CHECK(pthread_create(&th[i].tid, NULL, t_draw, &th[i]) == 0, "pthread_create");
	for (int i = 0; i < T_THREADS; i++)
		pthread_join(th[i].tid, NULL);
	for (int i = 0; i < T_THREADS; i++) {
		T_CHECK(th[i].reseeds == 1, "thread %d: seeded %llu times, want 1 (its own seed)",
			i, (unsigned long long)th[i].reseeds);
		T_CHECK(memcmp(th[i].out, mine, sizeof(mine)) != 0,
			"thread %d repeats main's stream", i);
		for (int k = 0; k < i; k++)
			T_CHECK(memcmp(th[i].out, th[k].out, sizeof(mine)) != 0,
				"threads %d and %d drew the same bytes", i, k);
	}
}

/* Without a reseed in the child, parent and child would hand out the same next bytes (the
 * pool and the key are copied by fork). */
static void
t_fork(void)
{
	uint8_t warm[16], parent[32], child[32];
	int p[2], status = 0;
	uint64_t before;
	pid_t pid;

	randombytes_buf(warm, sizeof(warm)); /* the pool is partly used: the worst case */
	if (pipe(p) != 0) {
		t_fail("pipe");
		return;
	}
	before = dime_pl_rng_reseeds();
	pid = fork();
	if (pid < 0) {
		t_fail("fork");
		return;
	}
	if (pid == 0) {
		uint8_t out[40];

		randombytes_buf(out, 32);
		memcpy(out + 32, &(uint64_t){dime_pl_rng_reseeds()}, 8);
		_exit(write(p[1], out, sizeof(out)) == (ssize_t)sizeof(out) ? 0 : 1);
	}
	randombytes_buf(parent, sizeof(parent));
	close(p[1]);
	{
		uint8_t got[40];
		uint64_t child_reseeds;

		T_CHECK(read(p[0], got, sizeof(got)) == (ssize_t)sizeof(got), "read from child");
		memcpy(child, got, 32);
		memcpy(&child_reseeds, got + 32, 8);
		T_CHECK(child_reseeds == before + 1, "child: reseeds got %llu, want %llu",
			(unsigned long long)child_reseeds, (unsigned long long)before + 1);
	}
	close(p[0]);
	waitpid(pid, &status, 0);
	T_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed");
	T_CHECK(memcmp(parent, child, sizeof(parent)) != 0,
		"parent and fork child drew the same bytes");
	T_CHECK(dime_pl_rng_reseeds() == before, "the parent reseeded because of the fork");
}

static void
t_reseed(void)
{
	uint8_t *buf = malloc(1 << 20);
	uint64_t before;

	if (buf == NULL)
		abort();
	before = dime_pl_rng_reseeds();
	dime_pl_rng_set_reseed_bytes(4096);
	for (int i = 0; i < 256; i++)
		randombytes_buf(buf, 4096 + 100); /* > 4096 per draw: at least one reseed each */
	T_CHECK(dime_pl_rng_reseeds() - before >= 255, "reseeds after 1 MiB at 4 KiB: got %llu",
		(unsigned long long)(dime_pl_rng_reseeds() - before));
	before = dime_pl_rng_reseeds();
	for (int i = 0; i < 4096; i++)
		randombytes_buf(buf, 32); /* small draws through the pool: 128 KiB */
	T_CHECK(dime_pl_rng_reseeds() - before >= 31, "reseeds over small draws: got %llu",
		(unsigned long long)(dime_pl_rng_reseeds() - before));
	dime_pl_rng_set_reseed_bytes(0);
	before = dime_pl_rng_reseeds();
	randombytes_stir();
	T_CHECK(dime_pl_rng_reseeds() == before + 1, "randombytes_stir does not reseed");
	free(buf);
}

/* Sanity, not proof: 8 Mbit through both paths (small draws from the pool, large draws). */
static void
t_sanity(void)
{
	const size_t n = 1 << 20;
	uint8_t *buf = malloc(n);
	uint64_t ones = 0, hist[256] = {0};
	double chi = 0, e = (double)n / 256, sd = 0;
	size_t repeats = 0;

	if (buf == NULL)
		abort();
	for (size_t off = 0; off < n / 2; off += 24)
		randombytes_buf(buf + off, off + 24 <= n / 2 ? 24 : n / 2 - off);
	randombytes_buf(buf + n / 2, n / 2);
	for (size_t i = 0; i < n; i++) {
		ones += (uint64_t)__builtin_popcount(buf[i]);
		hist[buf[i]]++;
	}
	for (int b = 0; b < 256; b++)
		chi += ((double)hist[b] - e) * ((double)hist[b] - e) / e;
	/* 8 Mbit: sd of the ones count is sqrt(8M)/2 = 1448; allow 6 sd */
	sd = ((double)ones - (double)n * 4) / 1448.2;
	T_CHECK(sd > -6 && sd < 6, "monobit: %llu ones in %zu bits (%.1f sd)",
		(unsigned long long)ones, n * 8, sd);
	/* 255 degrees of freedom: mean 255, sd 22.6; 400 is beyond 6 sd */
	T_CHECK(chi < 400, "byte histogram chi-square %.1f, want < 400", chi);
	for (size_t i = 32; i + 16 <= n; i += 4096)
		repeats += memcmp(buf + i, buf + i - 32, 16) == 0;
	T_CHECK(repeats == 0, "repeated 16-byte blocks");
	T_CHECK(strcmp(randombytes_implementation_name(), "dime_pl_rng") == 0,
		"libsodium uses '%s', not dime_pl_rng", randombytes_implementation_name());
	free(buf);
}

int
main(void)
{
	t_init();
	T_CHECK(dime_pl_rng_install() == DIME_OK, "install");
	T_CHECK(dime_pl_rng_install() == DIME_OK, "second install");
	T_CHECK(dime_global_init() == DIME_OK, "init");
	t_threads();
	t_fork();
	t_reseed();
	t_sanity();
	return t_done("test_rng");
}

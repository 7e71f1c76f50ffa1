/* The per-thread ChaCha20 generator behind randombytes_buf (dime/rng.h): seeded and reseeded
 * from getrandom, fast key erasure, reseeded after fork, wiped at thread exit. It replaces
 * libsodium's default, which makes one getrandom system call per randombytes_buf. */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "dime/rng.h"

#define RNG_KEY_BYTES  crypto_stream_chacha20_KEYBYTES
#define RNG_POOL_BYTES 512u /* output per refill; 32 more bytes of each refill are the next key */

_Static_assert(RNG_KEY_BYTES == 32, "ChaCha20 key");

struct rng_state {
	int seeded;
	unsigned fork_gen; /* rng_fork_gen when seeded: a fork since then forces a reseed */
	pid_t pid;
	uint8_t key[RNG_KEY_BYTES];
	uint8_t pool[RNG_POOL_BYTES];
	size_t avail; /* unread bytes at the end of pool; the read ones are already zero */
	uint64_t since_reseed, reseed_bytes, reseeds;
	time_t seeded_at;
};

static _Thread_local struct rng_state rng_tls;
static _Atomic unsigned rng_fork_gen;
static pthread_key_t rng_exit_key;
static pthread_once_t rng_once = PTHREAD_ONCE_INIT;
static int rng_key_ok;

static void
rng_wipe(void *p)
{
	struct rng_state *st = p;

	if (st != NULL)
		sodium_memzero(st, sizeof(*st));
}

static void
rng_on_fork_child(void)
{
	atomic_fetch_add(&rng_fork_gen, 1);
}

static void
rng_global_init(void)
{
	rng_key_ok = pthread_key_create(&rng_exit_key, rng_wipe) == 0;
	(void)pthread_atfork(NULL, NULL, rng_on_fork_child);
}

static time_t
rng_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec;
}

/* 32 bytes from the kernel, or abort: there is no safe way to go on without them. */
static void
rng_kernel(uint8_t seed[RNG_KEY_BYTES])
{
	size_t got = 0;

	while (got < RNG_KEY_BYTES) {
		ssize_t r = getrandom(seed + got, RNG_KEY_BYTES - got, 0);

		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == ENOSYS) {
			int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

			while (fd >= 0 && got < RNG_KEY_BYTES) {
				ssize_t k = read(fd, seed + got, RNG_KEY_BYTES - got);

				if (k > 0)
					got += (size_t)k;
				else if (!(k < 0 && errno == EINTR))
					break;
			}
			if (fd >= 0)
				close(fd);
			if (got == RNG_KEY_BYTES)
				return;
		}
		abort();
	}
}

/* key = BLAKE2b-256(old key || kernel seed): a reseed never loses entropy already held. */
static void
rng_reseed(struct rng_state *st)
{
	uint8_t seed[RNG_KEY_BYTES];
	crypto_generichash_state h;

	if (!st->seeded) {
		(void)pthread_once(&rng_once, rng_global_init);
		if (rng_key_ok)
			(void)pthread_setspecific(rng_exit_key, st);
		sodium_memzero(st->key, sizeof(st->key));
		if (st->reseed_bytes == 0)
			st->reseed_bytes = DIME_PL_RNG_RESEED_BYTES;
	}
	rng_kernel(seed);
	crypto_generichash_init(&h, NULL, 0, RNG_KEY_BYTES);
	crypto_generichash_update(&h, st->key, sizeof(st->key));
	crypto_generichash_update(&h, seed, sizeof(seed));
	crypto_generichash_final(&h, st->key, sizeof(st->key));
	sodium_memzero(&h, sizeof(h));
	sodium_memzero(seed, sizeof(seed));
	/* output drawn under the old key is dropped: after a fork, parent and child would share it
	 */
	sodium_memzero(st->pool, sizeof(st->pool));
	st->avail = 0;
	st->since_reseed = 0;
	st->seeded_at = rng_now();
	st->fork_gen = atomic_load_explicit(&rng_fork_gen, memory_order_relaxed);
	st->pid = getpid();
	st->seeded = 1;
	st->reseeds++;
}

/* Fast key erasure: one ChaCha20 run gives the next key and a pool of output. */
static void
rng_refill(struct rng_state *st)
{
	static const uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];
	uint8_t block[RNG_KEY_BYTES + RNG_POOL_BYTES];

	if (st->since_reseed >= st->reseed_bytes ||
	    rng_now() - st->seeded_at >= (time_t)DIME_PL_RNG_RESEED_SECONDS || getpid() != st->pid)
		rng_reseed(st);
	crypto_stream_chacha20(block, sizeof(block), nonce, st->key);
	memcpy(st->key, block, RNG_KEY_BYTES);
	memcpy(st->pool, block + RNG_KEY_BYTES, RNG_POOL_BYTES);
	sodium_memzero(block, sizeof(block));
	st->avail = RNG_POOL_BYTES;
}

/* Take n bytes from the pool (n <= avail) and wipe them there. */
static void
rng_take(struct rng_state *st, uint8_t *out, size_t n)
{
	uint8_t *p = st->pool + RNG_POOL_BYTES - st->avail;

	memcpy(out, p, n);
	sodium_memzero(p, n);
	st->avail -= n;
	st->since_reseed += n;
}

void
dime_pl_rng_buf(void *buf, size_t n)
{
	struct rng_state *st = &rng_tls;
	uint8_t *out = buf;

	if (!st->seeded || st->since_reseed >= st->reseed_bytes ||
	    st->fork_gen != atomic_load_explicit(&rng_fork_gen, memory_order_relaxed))
		rng_reseed(st);
	if (n > RNG_POOL_BYTES) {
		/* a large draw: its own one-time key from the pool, then the stream under it */
		static const uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];
		uint8_t k[RNG_KEY_BYTES];

		if (st->avail < sizeof(k))
			rng_refill(st);
		rng_take(st, k, sizeof(k));
		crypto_stream_chacha20(out, n, nonce, k);
		sodium_memzero(k, sizeof(k));
		st->since_reseed += n;
		return;
	}
	while (n > 0) {
		size_t k;

		if (st->avail == 0)
			rng_refill(st);
		k = n < st->avail ? n : st->avail;
		rng_take(st, out, k);
		out += k;
		n -= k;
	}
}

uint64_t
dime_pl_rng_reseeds(void)
{
	return rng_tls.reseeds;
}

void
dime_pl_rng_set_reseed_bytes(uint64_t bytes)
{
	rng_tls.reseed_bytes = bytes == 0 ? DIME_PL_RNG_RESEED_BYTES : bytes;
}

/* ---- libsodium's interface ---- */

static const char *
rng_impl_name(void)
{
	return "dime_pl_rng";
}

static uint32_t
rng_impl_random(void)
{
	uint32_t v;

	dime_pl_rng_buf(&v, sizeof(v));
	return v;
}

static void
rng_impl_stir(void)
{
	rng_reseed(&rng_tls);
}

static void
rng_impl_buf(void *buf, size_t n)
{
	dime_pl_rng_buf(buf, n);
}

static int
rng_impl_close(void)
{
	rng_wipe(&rng_tls);
	return 0;
}

static struct randombytes_implementation rng_impl = {
    .implementation_name = rng_impl_name,
    .random = rng_impl_random,
    .stir = rng_impl_stir,
    .uniform = NULL, /* libsodium derives it from random() without bias */
    .buf = rng_impl_buf,
    .close = rng_impl_close,
};

int
dime_pl_rng_install(void)
{
	static _Atomic int installed;

	if (atomic_exchange(&installed, 1) != 0)
		return DIME_OK;
	(void)pthread_once(&rng_once, rng_global_init);
	return randombytes_set_implementation(&rng_impl) == 0 ? DIME_OK : DIME_E_CRYPTO;
}

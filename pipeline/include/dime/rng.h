#ifndef DIME_PIPELINE_RNG_H
#define DIME_PIPELINE_RNG_H
/* A per-thread CSPRNG behind libsodium's randombytes_buf, so the engine's many small draws
 * (ephemeral keys, IVs, padding: dozens per message) cost no system call each.
 *
 * Each thread keeps a ChaCha20 key seeded from the kernel (getrandom) on its first draw and
 * reseeded (the old key hashed with 32 fresh kernel bytes) after DIME_PL_RNG_RESEED_BYTES of
 * output or DIME_PL_RNG_RESEED_SECONDS, in a child after fork (pthread_atfork, and the process
 * id is checked at every refill), and on randombytes_stir(). Output follows fast key erasure:
 * each refill runs ChaCha20 under the current key, the first 32 bytes become the next key and
 * the rest is handed out once and wiped as it goes, so a state read later never shows earlier
 * output. A thread's state is wiped when the thread exits (randombytes_close wipes the calling
 * thread's state now).
 *
 * The kernel failing to give randomness (getrandom other than EINTR, /dev/urandom unusable) is
 * not recoverable: the process aborts, as libsodium's own generator does. */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DIME_PL_RNG_RESEED_BYTES   ((uint64_t)1 << 20)
#define DIME_PL_RNG_RESEED_SECONDS 60u

/* Make this generator libsodium's (randombytes_set_implementation). Call once, from main,
 * before dime_global_init() and before any thread starts; a second call does nothing.
 * Returns: DIME_OK, or DIME_E_CRYPTO when libsodium refuses the implementation. */
DIME_MUST_CHECK int dime_pl_rng_install(void);

/* n random bytes from the calling thread's generator (what randombytes_buf gives once
 * installed; usable without installing). Thread-safe: every thread has its own state. */
void dime_pl_rng_buf(void *buf, size_t n);

/* Testing aid: the number of times the calling thread's generator was seeded or reseeded from
 * the kernel. */
uint64_t dime_pl_rng_reseeds(void);

/* Testing aid: reseed the calling thread after this many output bytes (0 restores
 * DIME_PL_RNG_RESEED_BYTES). */
void dime_pl_rng_set_reseed_bytes(uint64_t bytes);

#ifdef __cplusplus
}
#endif
#endif

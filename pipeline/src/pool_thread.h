#ifndef DIME_PIPELINE_POOL_THREAD_H
#define DIME_PIPELINE_POOL_THREAD_H
/* What every pipeline worker thread does when it starts (the batch run's workers and the
 * pool's): shared here so the two kinds of worker cannot drift apart. */

/* Bind the calling thread to a jemalloc arena of its own (when built with jemalloc): the
 * workers' many short-lived message buffers then never contend on one allocator lock. The
 * per-thread RNG (dime/rng.h) needs nothing here: once installed, each thread seeds its own
 * state on its first draw and wipes it when the thread exits. */
void dime_pl_thread_start(void);

#endif

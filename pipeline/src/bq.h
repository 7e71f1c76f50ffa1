#ifndef DIME_PIPELINE_BQ_H
#define DIME_PIPELINE_BQ_H
/* A bounded multi-producer multi-consumer queue of pointers: the back-pressure between the
 * feeder, the workers and the collector. */

#include <pthread.h>
#include <stddef.h>

struct bq {
	pthread_mutex_t mu;
	pthread_cond_t not_empty, not_full;
	void **buf;
	size_t cap, head, n;
	int closed;
};

/* Returns: 0, or -1 when out of memory. */
int bq_init(struct bq *q, size_t cap);
void bq_destroy(struct bq *q);

/* Block while full. Returns: 0, or -1 when the queue was closed (p is not queued). */
int bq_push(struct bq *q, void *p);

/* Take up to max items, blocking until at least one is there or the queue is closed and empty.
 * With timeout_ms >= 0, give up after that long. Returns: the count (0: closed and empty, or
 * the timeout passed). */
size_t bq_pop_many(struct bq *q, void **out, size_t max, int timeout_ms);

/* Free slots right now (a hint: another producer may take them). */
size_t bq_space(struct bq *q);

/* No more pushes; poppers drain what is left, then get 0. */
void bq_close(struct bq *q);

#endif

/* Bounded queue (bq.h). */

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "bq.h"

int
bq_init(struct bq *q, size_t cap)
{
	q->buf = calloc(cap ? cap : 1, sizeof(void *));
	if (q->buf == NULL)
		return -1;
	q->cap = cap ? cap : 1;
	q->head = q->n = 0;
	q->closed = 0;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->not_empty, NULL);
	pthread_cond_init(&q->not_full, NULL);
	return 0;
}

void
bq_destroy(struct bq *q)
{
	if (q->buf == NULL)
		return;
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->not_empty);
	pthread_cond_destroy(&q->not_full);
	free(q->buf);
	q->buf = NULL;
}

int
bq_push(struct bq *q, void *p)
{
	pthread_mutex_lock(&q->mu);
	while (q->n == q->cap && !q->closed)
		pthread_cond_wait(&q->not_full, &q->mu);
	if (q->closed) {
		pthread_mutex_unlock(&q->mu);
		return -1;
	}
	q->buf[(q->head + q->n) % q->cap] = p;
	q->n++;
	pthread_cond_signal(&q->not_empty);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

size_t
bq_pop_many(struct bq *q, void **out, size_t max, int timeout_ms)
{
	struct timespec until;
	size_t k = 0;

	if (timeout_ms >= 0) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		until.tv_sec += timeout_ms / 1000 + until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
	}
	pthread_mutex_lock(&q->mu);
	while (q->n == 0 && !q->closed) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&q->not_empty, &q->mu);
		} else if (pthread_cond_timedwait(&q->not_empty, &q->mu, &until) == ETIMEDOUT) {
			break;
		}
	}
	while (k < max && q->n > 0) {
		out[k++] = q->buf[q->head];
		q->head = (q->head + 1) % q->cap;
		q->n--;
	}
	if (k > 0)
		pthread_cond_broadcast(&q->not_full);
	/* leftovers: wake another consumer so items never wait behind a sleeping one */
	if (q->n > 0)
		pthread_cond_signal(&q->not_empty);
	pthread_mutex_unlock(&q->mu);
	return k;
}

size_t
bq_space(struct bq *q)
{
	size_t s;

	pthread_mutex_lock(&q->mu);
	s = q->cap - q->n;
	pthread_mutex_unlock(&q->mu);
	return s;
}

void
bq_close(struct bq *q)
{
	pthread_mutex_lock(&q->mu);
	q->closed = 1;
	pthread_cond_broadcast(&q->not_empty);
	pthread_cond_broadcast(&q->not_full);
	pthread_mutex_unlock(&q->mu);
}

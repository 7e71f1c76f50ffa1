/* dime/outq.h: durable put and read, claims, the retry schedule with an injected clock (growing,
 * never more than 12 hours apart, over 72 hours and more), the delay notice once, giving up,
 * operator retry, reopen after a crash (the index rebuilt from the files, tmp/ emptied, damaged
 * files set aside), a full disk, and group puts (alone or from many threads at once). */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dime/outq.h"
#include "tlib.h"

static const uint8_t MSG[] = "-----BEGIN ENCRYPTED MESSAGE-----\nQUJD\n"
			     "-----END ENCRYPTED MESSAGE-----\n";

/* An envelope from origin to recipient (compound literal: lives in the enclosing block). */
#define ENV(o, r)                                                                                  \
	(&(struct dime_outq_env){.origin = (o),                                                    \
				 .origin_fp = "b3JnLWZw",                                          \
				 .author = "alice@example.org",                                    \
				 .recipient = (r),                                                 \
				 .dest_fp = "ZGVzdC1mcA"})

static void
test_schedule(void)
{
	const int64_t t0 = 1800000000;
	struct dime_outq *q = NULL;
	struct dime_outq_entry e[4];
	enum dime_outq_verdict v;
	char id[DIME_OUTQ_ID_MAX + 1], why[256];
	int64_t now = t0, next = 0, last = t0;
	int err, notices = 0, gave_up = 0;
	uint32_t attempts = 0;
	unsigned max_gap = 0;

	T_CHECK(dime_outq_interval(NULL, 1) == 300 && dime_outq_interval(NULL, 2) == 600 &&
		    dime_outq_interval(NULL, 9) == 43200 && dime_outq_interval(NULL, 40) == 43200,
		"intervals: 5 min doubling, capped at 12 h");
	T_CHECK(dime_outq_open(&q, t_path("q"), NULL, why, sizeof(why)) == DIME_OK, "open: %s",
		why);
	if (q == NULL)
		return;
	T_CHECK(dime_outq_put(q, id, ENV("example.org", "bob@example.net"), MSG, sizeof(MSG) - 1,
			      t0, &err) == DIME_OK &&
		    strlen(id) == 32,
		"put (%d)", err);
	T_CHECK(dime_outq_next_due(q) == t0, "due at once");
	T_CHECK(dime_outq_due(q, e, 4, t0) == 1 && strcmp(e[0].id, id) == 0 &&
		    strcmp(e[0].recipient, "bob@example.net") == 0 && e[0].size == sizeof(MSG) - 1,
		"claimed once");
	T_CHECK(dime_outq_due(q, e, 4, t0) == 0, "a claimed entry is not handed out twice");
	/* every attempt fails: follow the schedule to the end */
	while (!gave_up && attempts < 100) {
		T_CHECK(dime_outq_deferred(q, id, "451 busy\nsecond line", now, &v, &next) ==
			    DIME_OK,
			"deferred");
		attempts++;
		if (v == DIME_OUTQ_NOTIFY_DELAY) {
			notices++;
			T_CHECK(now - t0 >= 4 * 3600, "the delay notice not before 4 hours");
		}
		if (v == DIME_OUTQ_GIVE_UP) {
			gave_up = 1;
			T_CHECK(now - t0 >= 72 * 3600, "retried for at least 72 hours (%lld h)",
				(long long)(now - t0) / 3600);
			break;
		}
		T_CHECK(next > now, "the next attempt is later");
		if ((unsigned)(next - now) > max_gap)
			max_gap = (unsigned)(next - now);
		T_CHECK(dime_outq_due(q, e, 4, next - 1) == 0, "not due before its time");
		now = next;
		T_CHECK(dime_outq_due(q, e, 4, now) == 1, "due at its time");
		last = now;
	}
	T_CHECK(gave_up && notices == 1 && max_gap <= 12 * 3600 && attempts >= 10,
		"given up after %u attempts, %d notice(s), longest gap %u s", attempts, notices,
		max_gap);
	T_CHECK(last - t0 <= 5 * 86400, "the last attempt falls at give_up");
	T_CHECK(dime_outq_due(q, e, 4, INT64_MAX - 1) == 0, "a given-up entry is never handed out");
	{
		uint8_t *m = NULL;
		size_t len = 0;

		T_CHECK(dime_outq_read(q, id, &m, &len) == DIME_OK && len == sizeof(MSG) - 1 &&
			    memcmp(m, MSG, len) == 0,
			"read gives the message back");
		free(m);
	}
	T_CHECK(dime_outq_done(q, id) == DIME_OK, "done (bounced)");
	T_CHECK(dime_outq_done(q, id) == DIME_E_NOTFOUND, "done twice");
	T_CHECK(dime_outq_put(q, id, ENV("bad origin", "bob@example.net"), MSG, 3, t0, &err) ==
		    DIME_E_INVALID,
		"a space in the origin is refused");
	dime_outq_close(q);
	t_rm_rf(t_path("q"));
}

struct listing {
	int n;
	char first[DIME_OUTQ_ID_MAX + 1];
	uint32_t attempts;
	char error[256];
};

static int
on_entry(const struct dime_outq_entry *e, void *arg)
{
	struct listing *l = arg;

	if (l->n++ == 0) {
		snprintf(l->first, sizeof(l->first), "%s", e->id);
		l->attempts = e->attempts;
		snprintf(l->error, sizeof(l->error), "%s", e->last_error);
	}
	return 0;
}

static void
test_reopen(void)
{
	const int64_t t0 = 1800000000;
	struct dime_outq *q = NULL;
	struct dime_outq_entry e[4];
	enum dime_outq_verdict v;
	char a[DIME_OUTQ_ID_MAX + 1], b[DIME_OUTQ_ID_MAX + 1], why[256], path[4200];
	struct listing l;
	struct stat sb;
	int err;

	if (dime_outq_open(&q, t_path("q2"), NULL, why, sizeof(why)) != DIME_OK) {
		t_fail("open: %s", why);
		return;
	}
	T_CHECK(dime_outq_put(q, a, ENV("example.org", "a@example.net"), MSG, sizeof(MSG) - 1, t0,
			      &err) == DIME_OK &&
		    dime_outq_put(q, b, ENV("example.org", "b@example.net"), MSG, 4, t0 + 1,
				  &err) == DIME_OK,
		"two puts");
	T_CHECK(dime_outq_due(q, e, 4, t0 + 5) == 2 && strcmp(e[0].id, a) == 0, "oldest first");
	T_CHECK(dime_outq_deferred(q, a, "connection refused", t0 + 5, &v, NULL) == DIME_OK,
		"a deferred");
	/* b stays claimed: a crash now must not lose it */
	dime_outq_close(q);
	q = NULL;
	/* a half-written file in tmp/ and a damaged message and a foreign name in msg/ */
	snprintf(path, sizeof(path), "%s/tmp/partial", t_path("q2"));
	t_write_text(path, "half");
	snprintf(path, sizeof(path), "%s/msg/0123456789abcdef0123456789abcdef", t_path("q2"));
	t_write_text(path, "not a queue file");
	snprintf(path, sizeof(path), "%s/msg/README", t_path("q2"));
	t_write_text(path, "x");
	snprintf(path, sizeof(path), "%s/state/fedcba9876543210fedcba9876543210", t_path("q2"));
	t_write_text(path, "attempts 1\nnext 0\ndelay_notified 0\nerror -\n");

	T_CHECK(dime_outq_open(&q, t_path("q2"), NULL, why, sizeof(why)) == DIME_OK, "reopen: %s",
		why);
	if (q == NULL)
		return;
	memset(&l, 0, sizeof(l));
	T_CHECK(dime_outq_list(q, on_entry, &l) == 2 && l.n == 2 && strcmp(l.first, a) == 0 &&
		    l.attempts == 1 && strcmp(l.error, "connection refused") == 0,
		"reopen: both messages, a's state kept (%d, %u, '%s')", l.n, l.attempts, l.error);
	T_CHECK(dime_outq_due(q, e, 4, t0 + 5) == 1 && strcmp(e[0].id, b) == 0,
		"reopen: the claimed-at-crash message is due again, a waits for its time");
	T_CHECK(strcmp(e[0].origin, "example.org") == 0 &&
		    strcmp(e[0].origin_fp, "b3JnLWZw") == 0 &&
		    strcmp(e[0].author, "alice@example.org") == 0 &&
		    strcmp(e[0].recipient, "b@example.net") == 0 &&
		    strcmp(e[0].dest_fp, "ZGVzdC1mcA") == 0,
		"reopen: the envelope read back whole");
	snprintf(path, sizeof(path), "%s/tmp/partial", t_path("q2"));
	T_CHECK(stat(path, &sb) != 0, "reopen: tmp/ emptied");
	snprintf(path, sizeof(path), "%s/corrupt/0123456789abcdef0123456789abcdef", t_path("q2"));
	T_CHECK(stat(path, &sb) == 0, "reopen: the damaged message set aside in corrupt/");
	snprintf(path, sizeof(path), "%s/state/fedcba9876543210fedcba9876543210", t_path("q2"));
	T_CHECK(stat(path, &sb) != 0, "reopen: a state file without its message removed");
	T_CHECK(dime_outq_retry_now(q, a, t0 + 6) == DIME_OK &&
		    dime_outq_due(q, e, 4, t0 + 6) == 1 && strcmp(e[0].id, a) == 0,
		"operator retry makes it due now");
	dime_outq_release(q, a);
	T_CHECK(dime_outq_due(q, e, 4, t0 + 6) == 1, "a released entry is due again");
	T_CHECK(dime_outq_done(q, a) == DIME_OK && dime_outq_done(q, b) == DIME_OK, "both done");
	dime_outq_close(q);
	q = NULL;
	T_CHECK(dime_outq_open(&q, t_path("q2"), NULL, why, sizeof(why)) == DIME_OK &&
		    dime_outq_list(q, on_entry, &l) == 0,
		"done is durable: nothing after reopen");
	dime_outq_close(q);
	t_rm_rf(t_path("q2"));
}

/* Two processes on one queue: dimed (the owner) and `dime send` / `dime queue` (another handle,
 * read-only for the CLI). The owner's rescan picks up new messages, the operator's retry (the
 * state file wins) and delete (the entry goes); the read-only open changes nothing. */
static void
test_rescan(void)
{
	const int64_t t0 = 1800000000;
	struct dime_outq *own = NULL, *ro = NULL, *other = NULL;
	struct dime_outq_entry e[4], g;
	enum dime_outq_verdict v;
	char a[DIME_OUTQ_ID_MAX + 1], b[DIME_OUTQ_ID_MAX + 1], why[256], path[4200];
	size_t added = 9, dropped = 9;
	struct stat sb;
	int err;

	T_CHECK(dime_outq_open_flags(&ro, t_path("q4"), NULL, DIME_OUTQ_OPEN_READONLY, why,
				     sizeof(why)) == DIME_E_IO &&
		    ro == NULL && stat(t_path("q4"), &sb) != 0,
		"read-only: a missing queue is an error, nothing created");
	if (dime_outq_open(&own, t_path("q4"), NULL, why, sizeof(why)) != DIME_OK ||
	    dime_outq_open(&other, t_path("q4"), NULL, why, sizeof(why)) != DIME_OK) {
		t_fail("open: %s", why);
		goto out;
	}
	T_CHECK(dime_outq_put(other, a, ENV("example.org", "a@example.net"), MSG, 4, t0, &err) ==
		    DIME_OK,
		"put by another process");
	T_CHECK(dime_outq_due(own, e, 4, t0) == 0, "the owner does not see it before a rescan");
	T_CHECK(dime_outq_rescan(own, &added, &dropped) == DIME_OK && added == 1 && dropped == 0,
		"rescan: one added (%zu, %zu)", added, dropped);
	T_CHECK(dime_outq_rescan(own, &added, &dropped) == DIME_OK && added == 0 && dropped == 0,
		"rescan again: nothing new");
	T_CHECK(dime_outq_due(own, e, 4, t0) == 1 && strcmp(e[0].id, a) == 0 &&
		    strcmp(e[0].recipient, "a@example.net") == 0 && e[0].size == 4,
		"the rescanned entry is due, envelope and size read");
	T_CHECK(dime_outq_deferred(own, a, "451 busy", t0, &v, NULL) == DIME_OK, "deferred");

	/* a half-written file of a writer in tmp/, a damaged file in msg/: read-only leaves both */
	snprintf(path, sizeof(path), "%s/tmp/inflight", t_path("q4"));
	t_write_text(path, "half");
	snprintf(path, sizeof(path), "%s/msg/00000000000000000000000000000bad", t_path("q4"));
	t_write_text(path, "not a queue file");
	if (dime_outq_open_flags(&ro, t_path("q4"), NULL, DIME_OUTQ_OPEN_READONLY, why,
				 sizeof(why)) != DIME_OK) {
		t_fail("read-only open: %s", why);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/tmp/inflight", t_path("q4"));
	T_CHECK(stat(path, &sb) == 0, "read-only: tmp/ not emptied");
	snprintf(path, sizeof(path), "%s/msg/00000000000000000000000000000bad", t_path("q4"));
	T_CHECK(stat(path, &sb) == 0, "read-only: a damaged message left in place");
	T_CHECK(dime_outq_get(ro, a, &g) == DIME_OK && g.attempts == 1 &&
		    strcmp(g.last_error, "451 busy") == 0 &&
		    dime_outq_get(ro, "00000000000000000000000000000bad", &g) == DIME_E_NOTFOUND,
		"read-only: sees the owner's state, skips the damaged file");

	/* operator retry: the state file is rewritten; the owner's rescan takes it */
	T_CHECK(dime_outq_retry_now(ro, a, t0 + 7) == DIME_OK, "retry by the operator");
	T_CHECK(dime_outq_due(own, e, 4, t0 + 7) == 0, "not due for the owner before a rescan");
	T_CHECK(dime_outq_rescan(own, &added, &dropped) == DIME_OK && added == 0,
		"owner rescan after retry");
	T_CHECK(dime_outq_due(own, e, 4, t0 + 7) == 1 && strcmp(e[0].id, a) == 0,
		"due at the operator's time");
	snprintf(path, sizeof(path), "%s/corrupt/00000000000000000000000000000bad", t_path("q4"));
	T_CHECK(stat(path, &sb) == 0, "owner rescan: the damaged file set aside");

	/* operator delete: a claimed entry stays with its worker; an unclaimed one goes */
	T_CHECK(dime_outq_put(other, b, ENV("example.org", "b@example.net"), MSG, 4, t0, &err) ==
			DIME_OK &&
		    dime_outq_rescan(own, &added, NULL) == DIME_OK && added == 1,
		"b put and rescanned");
	T_CHECK(dime_outq_rescan(ro, &added, NULL) == DIME_OK && added == 1 &&
		    dime_outq_done(ro, a) == DIME_OK && dime_outq_done(ro, b) == DIME_OK,
		"deleted by the operator");
	T_CHECK(dime_outq_rescan(own, &added, &dropped) == DIME_OK && dropped == 1,
		"rescan: the unclaimed one dropped (%zu)", dropped);
	T_CHECK(dime_outq_get(own, a, &g) == DIME_OK && g.claimed,
		"the claimed one is still its worker's");
	T_CHECK(dime_outq_done(own, a) == DIME_OK, "its worker reports it done");
	T_CHECK(dime_outq_rescan(own, &added, &dropped) == DIME_OK && dropped == 0 &&
		    dime_outq_due(own, e, 4, INT64_MAX - 1) == 0,
		"nothing left");
out:
	dime_outq_close(ro);
	dime_outq_close(own);
	dime_outq_close(other);
	t_rm_rf(t_path("q4"));
}

/* A write that fails (the queue's tmp/ removed under it: any uid, root included): an error with
 * its errno, nothing indexed. */
static void
test_write_failure(void)
{
	struct dime_outq *q = NULL;
	struct dime_outq_policy bad = {0, 0, 3600, 60};
	struct dime_outq_entry e[2];
	char id[DIME_OUTQ_ID_MAX + 1], why[256], path[4200];
	int err = 0;

	T_CHECK(dime_outq_open(&q, t_path("q3"), &bad, why, sizeof(why)) == DIME_E_INVALID &&
		    q == NULL,
		"a policy giving up before the delay notice is refused");
	if (dime_outq_open(&q, t_path("q3"), NULL, why, sizeof(why)) != DIME_OK) {
		t_fail("open: %s", why);
		return;
	}
	snprintf(path, sizeof(path), "%s/tmp", t_path("q3"));
	T_CHECK(rmdir(path) == 0, "rmdir tmp");
	T_CHECK(dime_outq_put(q, id, ENV("example.org", "b@example.net"), MSG, 4, 1, &err) ==
			DIME_E_IO &&
		    err == ENOENT && id[0] == 0,
		"a failed write is an error with its errno (%d)", err);
	T_CHECK(dime_outq_due(q, e, 2, 10) == 0, "nothing indexed after a failed put");
	dime_outq_close(q);
	t_rm_rf(t_path("q3"));
}

/* A group put: each item gets the result a lone put would (a bad envelope fails alone), and
 * puts from 8 threads at once all land with distinct ids, every one indexed once. */
struct t_conc {
	struct dime_outq *q;
	int fails;
	char ids[16][DIME_OUTQ_ID_MAX + 1];
};

static void *
t_conc_run(void *arg)
{
	struct t_conc *c = arg;

	for (int i = 0; i < 16; i++) {
		int err = 0;

		if (dime_outq_put(c->q, c->ids[i], ENV("example.org", "c@example.net"), MSG, 4, 1,
				  &err) != DIME_OK)
			c->fails++;
	}
	return NULL;
}

static void
test_put_many(void)
{
	struct dime_outq *q = NULL;
	struct dime_outq_item it[3] = {
	    {.env = ENV("example.org", "a@example.net"), .msg = MSG, .len = 4, .now = 1},
	    {.env = ENV("bad origin", "a@example.net"), .msg = MSG, .len = 4, .now = 1},
	    {.env = ENV("example.org", "b@example.net"), .msg = MSG, .len = 4, .now = 1}};
	static struct t_conc c[8];
	pthread_t th[8];
	static struct dime_outq_entry e[256];
	char why[256];
	size_t got, fails = 0;

	if (dime_outq_open(&q, t_path("q4"), NULL, why, sizeof(why)) != DIME_OK) {
		t_fail("open: %s", why);
		return;
	}
	T_CHECK(dime_outq_put_many(q, it, 3) == 2, "put_many: want 2 of 3");
	T_CHECK(it[0].rc == DIME_OK && it[0].id[0] != 0 && it[1].rc == DIME_E_INVALID &&
		    it[1].id[0] == 0 && it[2].rc == DIME_OK && strcmp(it[0].id, it[2].id) != 0,
		"put_many results: %d %d %d", it[0].rc, it[1].rc, it[2].rc);
	for (int t = 0; t < 8; t++) {
		c[t].q = q;
		T_CHECK(pthread_create(&th[t], NULL, t_conc_run, &c[t]) == 0, "thread %d", t);
	}
	for (int t = 0; t < 8; t++) {
		pthread_join(th[t], NULL);
		fails += (size_t)c[t].fails;
	}
	T_CHECK(fails == 0, "concurrent puts: %zu failed", fails);
	got = dime_outq_due(q, e, 256, 10);
	T_CHECK(got == 2 + 8 * 16, "due after the puts: %zu, want %d", got, 2 + 8 * 16);
	for (size_t i = 0; i < got; i++)
		for (size_t k = i + 1; k < got; k++)
			if (strcmp(e[i].id, e[k].id) == 0)
				t_fail("id %s twice in the index", e[i].id);
	dime_outq_close(q);
	if (dime_outq_open(&q, t_path("q4"), NULL, why, sizeof(why)) == DIME_OK) {
		T_CHECK(dime_outq_due(q, e, 256, 10) == got, "after a reopen: not %zu entries",
			got);
		dime_outq_close(q);
	}
	t_rm_rf(t_path("q4"));
}

int
main(void)
{
	t_init();
	if (t_mkdtemp("outq") != 0)
		return 1;
	test_schedule();
	test_reopen();
	test_rescan();
	test_write_failure();
	test_put_many();
	t_rm_rf(t_dir);
	return t_done("outq");
}

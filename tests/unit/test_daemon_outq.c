/* dime/outq.h: durable put and read, claims, the retry schedule with an injected clock (growing,
 * never more than 12 hours apart, over 72 hours and more), the delay notice once, giving up,
 * operator retry, reopen after a crash (the index rebuilt from the files, tmp/ emptied, damaged
 * files set aside), and a full disk. */

#include <errno.h>
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

int
main(void)
{
	t_init();
	if (t_mkdtemp("outq") != 0)
		return 1;
	test_schedule();
	test_reopen();
	test_write_failure();
	t_rm_rf(t_dir);
	return t_done("outq");
}

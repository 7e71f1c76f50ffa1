/* dime/dagent.h with an injected clock and no reachable destination (a static DNS file without
 * its record: the message is D/MIME and must wait, never go naked): every attempt is deferred
 * on the queue's schedule, the author gets one delay notice after delay_notice and a bounce at
 * give_up, both RFC 3464 reports in the author's Maildir carrying the queued ciphertext and
 * nothing else of the message; then the queue is empty. The delivery over DMTP itself (254, 255
 * after a crash, a certificate mismatch, a 5xx bounce) runs between two dimeds:
 * tests/cli/test_dagent.sh. */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dime/dagent.h"
#include "dime/dns.h"
#include "dime/dx.h"
#include "dime/mrloc.h"
#include "dime/outq.h"
#include "tlib.h"

static const uint8_t MSG[] = "-----BEGIN ENCRYPTED MESSAGE-----\nQUJDREVGR0g=\n"
			     "-----END ENCRYPTED MESSAGE-----\n";

static int64_t clock_now;

static int64_t
fake_now(void *arg)
{
	(void)arg;
	return clock_now;
}

/* The files of dir, sorted by name; their contents concatenated into *all (malloc'd). */
static int
maildir_files(const char *dir, char **all)
{
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort), files = 0;
	size_t len = 0;

	*all = calloc(1, 1);
	for (int i = 0; i < n; i++) {
		char path[4400];
		size_t flen = 0;
		uint8_t *b;

		if (names[i]->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
			if ((b = t_read(path, &flen)) != NULL) {
				char *g = realloc(*all, len + flen + 1);

				if (g != NULL) {
					memcpy(g + len, b, flen);
					len += flen;
					g[len] = 0;
					*all = g;
				}
				free(b);
			}
			files++;
		}
		free(names[i]);
	}
	free(names);
	return files;
}

static void
test_schedule(void)
{
	const int64_t t0 = 1800000000;
	struct dime_outq_policy pol = {60, 3600, 4 * 3600, 72 * 3600};
	struct dime_outq_env env = {.origin = "a.test",
				    .origin_fp = "b3JnLWZw",
				    .author = "alice@a.test",
				    .recipient = "bob@b.test",
				    .dest_fp = "ZGVzdC1mcA"};
	struct dime_outq *q = NULL;
	struct dime_dns *dns = NULL;
	struct dime_mr_cache *cache = NULL;
	struct dime_dagent *a = NULL;
	struct dime_dagent_conf ac;
	struct dime_dagent_stats st;
	struct dime_dx_conf dx = {.helo = "mx.a.test"};
	struct dime_dns_conf dc = {.static_file = NULL};
	struct dime_outq_entry e;
	char why[512], id[DIME_OUTQ_ID_MAX + 1], dns_file[4200], newdir[4200], *all = NULL;
	int err, rounds = 0, notice_at = -1;
	size_t ran;

	snprintf(dns_file, sizeof(dns_file), "%s", t_path("dns.txt"));
	t_write_text(dns_file, "_dime.elsewhere.test 300 TXT \"ver=1\"\n");
	dc.static_file = dns_file;
	if (dime_outq_open(&q, t_path("outq"), &pol, why, sizeof(why)) != DIME_OK ||
	    dime_dns_new(&dns, &dc, why, sizeof(why)) != DIME_OK ||
	    dime_mr_cache_new(&cache, 0) != DIME_OK) {
		t_fail("setup: %s", why);
		goto out;
	}
	memset(&ac, 0, sizeof(ac));
	ac.q = q;
	ac.dns = dns;
	ac.cache = cache;
	ac.dx = &dx;
	ac.maildir_root = t_path("mail");
	ac.hostname = "mx.a.test";
	ac.now = fake_now;
	T_CHECK(dime_dagent_start(&a, &ac, why, sizeof(why)) == DIME_OK, "start: %s", why);
	if (a == NULL)
		goto out;
	T_CHECK(dime_outq_put(q, id, &env, MSG, sizeof(MSG) - 1, t0, &err) == DIME_OK, "put");
	snprintf(newdir, sizeof(newdir), "%s/a.test/alice/new", t_path("mail"));
	clock_now = t0;
	for (;;) {
		int64_t next;

		ran = dime_dagent_run(a);
		T_CHECK(ran == 1, "round %d: one attempt (got %zu)", rounds, ran);
		if (dime_outq_get(q, id, &e) != DIME_OK)
			break; /* bounced */
		T_CHECK(e.attempts == (uint32_t)rounds + 1, "round %d: attempts %u", rounds,
			e.attempts);
		T_CHECK(strstr(e.last_error, "no usable management record for b.test") != NULL,
			"round %d: the reason is kept ('%s')", rounds, e.last_error);
		if (notice_at < 0 && maildir_files(newdir, &all) == 1)
			notice_at = rounds;
		free(all);
		all = NULL;
		next = dime_outq_next_due(q);
		T_CHECK(next > clock_now && next - clock_now <= 3600, "round %d: next in (0, 1 h]",
			rounds);
		clock_now = next - 1;
		T_CHECK(dime_dagent_run(a) == 0, "round %d: nothing before its time", rounds);
		clock_now = next;
		if (++rounds > 200) {
			t_fail("never gave up");
			break;
		}
	}
	T_CHECK(clock_now - t0 >= 72 * 3600, "bounced only at give_up (%lld h)",
		(long long)(clock_now - t0) / 3600);
	T_CHECK(notice_at >= 0, "a delay notice was written");
	T_CHECK(maildir_files(newdir, &all) == 2, "the notice and the bounce, nothing else");
	if (all != NULL) {
		const char *delayed = strstr(all, "Action: delayed");
		const char *failed = strstr(all, "Action: failed");

		T_CHECK(delayed != NULL && failed != NULL, "one delayed, one failed report");
		T_CHECK(strstr(all, "From: Mail Delivery System <MAILER-DAEMON@a.test>") != NULL &&
			    strstr(all, "To: <alice@a.test>") != NULL &&
			    strstr(all, "Content-Type: multipart/report; report-type=delivery-"
					"status;") != NULL &&
			    strstr(all, "Content-Type: message/delivery-status") != NULL &&
			    strstr(all, "Final-Recipient: rfc822; bob@b.test") != NULL &&
			    strstr(all, "Status: 5.0.0") != NULL &&
			    strstr(all, "Status: 4.0.0") != NULL,
			"RFC 3464 reports from MAILER-DAEMON@origin to the author");
		T_CHECK(strstr(all, (const char *)MSG) != NULL &&
			    strstr(strstr(all, (const char *)MSG) + 1, (const char *)MSG) != NULL,
			"both carry the queued ciphertext as is");
		T_CHECK(strstr(all, "no usable management record for b.test") != NULL,
			"the reason is said");
	}
	free(all);
	all = NULL;
	dime_dagent_stats(a, &st);
	T_CHECK(st.notices == 1 && st.bounced == 1 && st.delivered == 0 &&
		    st.deferred == (uint64_t)rounds + 1 && st.sessions == 0,
		"stats: notices %llu bounced %llu deferred %llu", (unsigned long long)st.notices,
		(unsigned long long)st.bounced, (unsigned long long)st.deferred);
	T_CHECK(dime_outq_next_due(q) == INT64_MAX, "the queue is empty");
out:
	dime_dagent_stop(a);
	dime_mr_cache_free(cache);
	dime_dns_free(dns);
	dime_outq_close(q);
}

/* Workers: a kick after a put gets it attempted (deferred here) without waiting for a timer;
 * stop returns while the queue still holds it. */
static void
test_workers(void)
{
	struct dime_outq_env env = {.origin = "a.test",
				    .origin_fp = "b3JnLWZw",
				    .author = "alice@a.test",
				    .recipient = "carol@c.test",
				    .dest_fp = "ZGVzdC1mcA"};
	struct dime_outq *q = NULL;
	struct dime_dns *dns = NULL;
	struct dime_dagent *a = NULL;
	struct dime_dagent_conf ac;
	struct dime_dx_conf dx = {.helo = "mx.a.test"};
	struct dime_dns_conf dc = {.static_file = NULL};
	struct dime_outq_entry e;
	char why[512], id[DIME_OUTQ_ID_MAX + 1];
	int err;

	dc.static_file = t_path("dns.txt");
	if (dime_outq_open(&q, t_path("outq2"), NULL, why, sizeof(why)) != DIME_OK ||
	    dime_dns_new(&dns, &dc, why, sizeof(why)) != DIME_OK) {
		t_fail("setup: %s", why);
		goto out;
	}
	memset(&ac, 0, sizeof(ac));
	ac.q = q;
	ac.dns = dns;
	ac.dx = &dx;
	ac.maildir_root = t_path("mail2");
	ac.workers = 3;
	T_CHECK(dime_dagent_start(&a, &ac, why, sizeof(why)) == DIME_OK, "start: %s", why);
	if (a == NULL)
		goto out;
	T_CHECK(dime_outq_put(q, id, &env, MSG, sizeof(MSG) - 1, (int64_t)time(NULL), &err) ==
		    DIME_OK,
		"put");
	dime_dagent_kick(a);
	/* a condition, not a sleep: poll until the attempt is recorded (60 s at most) */
	for (int i = 0; i < 6000; i++) {
		if (dime_outq_get(q, id, &e) == DIME_OK && e.attempts > 0)
			break;
		{
			struct timespec ts = {0, 10 * 1000 * 1000};

			nanosleep(&ts, NULL);
		}
	}
	T_CHECK(dime_outq_get(q, id, &e) == DIME_OK && e.attempts == 1 && !e.claimed,
		"a worker attempted it once and gave it back deferred");
	dime_dagent_stop(a);
	a = NULL;
	T_CHECK(dime_outq_get(q, id, &e) == DIME_OK, "still queued after stop");
out:
	dime_dagent_stop(a);
	dime_dns_free(dns);
	dime_outq_close(q);
}

int
main(void)
{
	t_init();
	if (t_mkdtemp("dagent") != 0)
		return 1;
	test_schedule();
	test_workers();
	t_rm_rf(t_dir);
	return t_done("dagent");
}

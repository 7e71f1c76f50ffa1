/* Delivery from the spool: to a Maildir per user (exact bytes in new/, modes 0700, queue/
 * emptied, unusable recipients held), and by LMTP to a tiny LMTP server in this test (over a
 * unix socket and TCP): the dialogue, CRLF and dot-stuffing on the wire, 4xx kept in queue/
 * and retried with backoff until it passes, 5xx moved to held/. */

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "dime/deliver.h"
#include "dime/dlog.h"
#include "dime/spool.h"
#include "tlib.h"

static int
t_count(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Wait up to ms for dir to hold want entries. */
static int
t_wait_count(const char *dir, int want, int ms)
{
	struct timespec ts = {0, 10 * 1000 * 1000};

	for (int i = 0; i < ms / 10; i++) {
		if (t_count(dir) == want)
			return 1;
		nanosleep(&ts, NULL);
	}
	return t_count(dir) == want;
}

static char *
t_slurp_one(const char *dir, size_t *len)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[8192], *buf = NULL;
	FILE *f;

	*len = 0;
	if (d == NULL)
		return NULL;
	while ((e = readdir(d)) != NULL && e->d_name[0] == '.')
		;
	if (e != NULL) {
		snprintf(path, sizeof(path), "%.7000s/%.255s", dir, e->d_name);
		if ((f = fopen(path, "rb")) != NULL) {
			buf = calloc(1, 1 << 16);
			*len = fread(buf, 1, (1 << 16) - 1, f);
			fclose(f);
		}
	}
	closedir(d);
	return buf;
}

static int
t_mode(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (int)(sb.st_mode & 0777) : -1;
}

static const char t_msg[] = "-----BEGIN DIME ENCRYPTED MESSAGE-----\n"
			    ".starts with a dot\n"
			    "..two dots\n"
			    "crlf line\r\n"
			    ".\n"
			    "-----END DIME ENCRYPTED MESSAGE-----"; /* no final LF */
/* What must cross the wire inside DATA, terminator included. */
static const char t_wire[] = "-----BEGIN DIME ENCRYPTED MESSAGE-----\r\n"
			     "..starts with a dot\r\n"
			     "...two dots\r\n"
			     "crlf line\r\n"
			     "..\r\n"
			     "-----END DIME ENCRYPTED MESSAGE-----\r\n"
			     ".\r\n";

static void
t_conf(struct dime_dconf *c, const char *name)
{
	char why[256];

	if (dime_dconf_load(c, NULL, why, sizeof(why)) != DIME_OK)
		t_fail("defaults");
	snprintf(c->spool, sizeof(c->spool), "%s", t_path(name));
	snprintf(c->maildir_root, sizeof(c->maildir_root), "%s/mail", t_path(name));
	snprintf(c->hostname, sizeof(c->hostname), "mx:test/host");
	c->retry_min_ms = 100;
	c->retry_max_ms = 400;
}

static void
test_maildir(void)
{
	struct dime_dconf c;
	struct dime_spool *s = NULL;
	struct dime_deliver *d = NULL;
	char why[512], dir[8192];
	int err = 0;
	size_t len;
	char *got;

	t_conf(&c, "md");
	T_CHECK(dime_spool_open(&s, c.spool, why, sizeof(why)) == DIME_OK, "spool: %s", why);
	T_CHECK(dime_spool_put(s, "a1", "alice@Example.ORG", "other.org", (const uint8_t *)t_msg,
			       sizeof(t_msg) - 1, &err) == DIME_OK,
		"put a1");
	T_CHECK(dime_spool_put(s, "a2", "alice@example.org", "other.org", (const uint8_t *)"two", 3,
			       &err) == DIME_OK,
		"put a2");
	T_CHECK(dime_spool_put(s, "b1", "../../etc@example.org", "o", (const uint8_t *)"x", 1,
			       &err) == DIME_OK,
		"put b1");
	T_CHECK(dime_spool_put(s, "b2", "no-at-sign", "o", (const uint8_t *)"x", 1, &err) ==
		    DIME_OK,
		"put b2");
	T_CHECK(dime_deliver_start(&d, &c, s, why, sizeof(why)) == DIME_OK, "start: %s", why);
	dime_deliver_kick(d);
	snprintf(dir, sizeof(dir), "%s/queue", c.spool);
	T_CHECK(t_wait_count(dir, 0, 5000), "queue/ not drained: %d left", t_count(dir));
	snprintf(dir, sizeof(dir), "%s/example.org/alice/new", c.maildir_root);
	T_CHECK(t_count(dir) == 2, "new/: got %d messages, want 2", t_count(dir));
	snprintf(dir, sizeof(dir), "%s/held", c.spool);
	T_CHECK(t_count(dir) == 2, "held/: got %d, want 2 (bad recipients)", t_count(dir));
	snprintf(dir, sizeof(dir), "%s/example.org/alice", c.maildir_root);
	T_CHECK(t_mode(dir) == 0700, "maildir mode: got %o, want 0700", t_mode(dir));
	snprintf(dir, sizeof(dir), "%s/example.org/alice/cur", c.maildir_root);
	T_CHECK(t_mode(dir) == 0700, "cur/ mode: got %o", t_mode(dir));
	snprintf(dir, sizeof(dir), "%s/example.org/alice/tmp", c.maildir_root);
	T_CHECK(t_count(dir) == 0, "tmp/: got %d files, want 0", t_count(dir));
	/* a message put while the thread runs is delivered after a kick */
	T_CHECK(dime_spool_put(s, "a3", "bob@example.org", "o", (const uint8_t *)t_msg,
			       sizeof(t_msg) - 1, &err) == DIME_OK,
		"put a3");
	dime_deliver_kick(d);
	snprintf(dir, sizeof(dir), "%s/example.org/bob/new", c.maildir_root);
	T_CHECK(t_wait_count(dir, 1, 5000), "bob/new: got %d, want 1", t_count(dir));
	got = t_slurp_one(dir, &len);
	T_CHECK(got != NULL && len == sizeof(t_msg) - 1 && memcmp(got, t_msg, len) == 0,
		"maildir bytes differ (got %zu, want %zu)", len, sizeof(t_msg) - 1);
	free(got);
	{
		/* the Maildir name: the spool id and the host with '/' and ':' escaped, the same
		 * for every delivery of one message (a repeat after a crash adds no copy) */
		DIR *dd = opendir(dir);
		struct dirent *e;

		while (dd != NULL && (e = readdir(dd)) != NULL)
			if (e->d_name[0] != '.')
				T_CHECK(strcmp(e->d_name, "a3.mx\\072test\\057host") == 0,
					"maildir name: got %s", e->d_name);
		if (dd != NULL)
			closedir(dd);
	}
	{
		/* A crash after the Maildir link and before the spool's unlink: the same message
		 * is delivered again at restart. It must not appear twice. */
		char q[4200];

		/* the link shows before the spool file goes: wait for the first delivery to end,
		 * or the put finds a3 still queued (EEXIST) */
		snprintf(q, sizeof(q), "%s/queue", c.spool);
		T_CHECK(t_wait_count(q, 0, 5000), "queue/ not drained after a3: %d left",
			t_count(q));
		T_CHECK(dime_spool_put(s, "a3", "bob@example.org", "o", (const uint8_t *)t_msg,
				       sizeof(t_msg) - 1, &err) == DIME_OK,
			"put a3 again");
		dime_deliver_kick(d);
		T_CHECK(t_wait_count(q, 0, 5000), "queue/ not drained: %d left", t_count(q));
		T_CHECK(t_count(dir) == 1, "bob/new after a repeated delivery: got %d, want 1",
			t_count(dir));
	}
	dime_deliver_stop(d, 1);
	dime_spool_close(s);
}

/* More messages than one delivery batch (64), for three users: each batch's files are fsynced
 * together and linked after; every message lands once, tmp/ is left empty, queue/ drained. */
static void
test_maildir_batches(void)
{
	struct dime_dconf c;
	struct dime_spool *s = NULL;
	struct dime_deliver *d = NULL;
	const char *users[3] = {"u0", "u1", "u2"};
	char why[512], dir[8192];
	int err = 0, n[3] = {0, 0, 0};

	t_conf(&c, "mdb");
	T_CHECK(dime_spool_open(&s, c.spool, why, sizeof(why)) == DIME_OK, "spool: %s", why);
	for (int i = 0; i < 150; i++) {
		char id[32], rcpt[64], body[64];
		int bl = snprintf(body, sizeof(body), "message %d\r\n", i);

		snprintf(id, sizeof(id), "m%03d", i);
		snprintf(rcpt, sizeof(rcpt), "%s@example.org", users[i % 3]);
		n[i % 3]++;
		T_CHECK(dime_spool_put(s, id, rcpt, "o", (const uint8_t *)body, (size_t)bl, &err) ==
			    DIME_OK,
			"put %s", id);
	}
	T_CHECK(dime_deliver_start(&d, &c, s, why, sizeof(why)) == DIME_OK, "start: %s", why);
	dime_deliver_kick(d);
	snprintf(dir, sizeof(dir), "%s/queue", c.spool);
	T_CHECK(t_wait_count(dir, 0, 10000), "queue/ not drained: %d left", t_count(dir));
	for (int u = 0; u < 3; u++) {
		snprintf(dir, sizeof(dir), "%s/example.org/%s/new", c.maildir_root, users[u]);
		T_CHECK(t_count(dir) == n[u], "%s/new: got %d, want %d", users[u], t_count(dir),
			n[u]);
		snprintf(dir, sizeof(dir), "%s/example.org/%s/tmp", c.maildir_root, users[u]);
		T_CHECK(t_count(dir) == 0, "%s/tmp: got %d files, want 0", users[u], t_count(dir));
	}
	dime_deliver_stop(d, 1);
	dime_spool_close(s);
}

/* dime_deliver_now, the gateway's path past the spool: 8 threads at once each deliver 10
 * messages (every one lands once, tmp/ empty, the spool untouched); the same id again is a
 * duplicate with no second copy; a recipient no Maildir can hold is refused. */
struct t_now {
	struct dime_deliver *d;
	int t, fails;
};

static void *
t_now_run(void *arg)
{
	struct t_now *c = arg;

	for (int i = 0; i < 10; i++) {
		char id[32], rcpt[64], body[64], why[512];
		int dup = -1, bl = snprintf(body, sizeof(body), "now %d %d\r\n", c->t, i);

		snprintf(id, sizeof(id), "n%d-%d", c->t, i);
		snprintf(rcpt, sizeof(rcpt), "u%d@example.org", c->t % 3);
		if (dime_deliver_now(c->d, &dup, id, rcpt, (const uint8_t *)body, (size_t)bl, why,
				     sizeof(why)) != DIME_OK ||
		    dup != 0) {
			fprintf(stderr, "deliver_now %s: %s\n", id, why);
			c->fails++;
		}
	}
	return NULL;
}

static void
test_deliver_now(void)
{
	struct dime_dconf c;
	struct dime_spool *s = NULL;
	struct dime_deliver *d = NULL;
	struct t_now tn[8];
	pthread_t th[8];
	char why[512], dir[8192];
	int fails = 0, dup = -1, total = 0, rc;

	t_conf(&c, "now");
	T_CHECK(dime_spool_open(&s, c.spool, why, sizeof(why)) == DIME_OK, "spool: %s", why);
	T_CHECK(dime_deliver_start(&d, &c, s, why, sizeof(why)) == DIME_OK, "start: %s", why);
	T_CHECK(dime_deliver_is_maildir(d), "a Maildir delivery says it is not");
	for (int t = 0; t < 8; t++) {
		tn[t] = (struct t_now){d, t, 0};
		T_CHECK(pthread_create(&th[t], NULL, t_now_run, &tn[t]) == 0, "thread %d", t);
	}
	for (int t = 0; t < 8; t++) {
		pthread_join(th[t], NULL);
		fails += tn[t].fails;
	}
	T_CHECK(fails == 0, "deliver_now: %d of 80 failed", fails);
	for (int u = 0; u < 3; u++) {
		snprintf(dir, sizeof(dir), "%s/example.org/u%d/new", c.maildir_root, u);
		total += t_count(dir);
		snprintf(dir, sizeof(dir), "%s/example.org/u%d/tmp", c.maildir_root, u);
		T_CHECK(t_count(dir) == 0, "u%d/tmp: %d files left", u, t_count(dir));
	}
	T_CHECK(total == 80, "deliver_now: %d messages in new/, want 80", total);
	snprintf(dir, sizeof(dir), "%s/queue", c.spool);
	T_CHECK(t_count(dir) == 0, "deliver_now used the spool: %d files", t_count(dir));
	rc = dime_deliver_now(d, &dup, "n0-0", "u0@example.org", (const uint8_t *)"again", 5, why,
			      sizeof(why));
	T_CHECK(rc == DIME_OK && dup == 1, "the same id again: rc %d dup %d, want ok, 1", rc, dup);
	snprintf(dir, sizeof(dir), "%s/example.org/u0/new", c.maildir_root);
	T_CHECK(t_count(dir) == 30, "u0/new after a repeat: %d, want 30", t_count(dir));
	rc = dime_deliver_now(d, &dup, "bad1", "no-at-sign", (const uint8_t *)"x", 1, why,
			      sizeof(why));
	T_CHECK(rc == DIME_E_INVALID && why[0] != 0, "a recipient without @: rc %d (%s)", rc, why);
	dime_deliver_stop(d, 1);
	c.delivery = DIME_DCONF_LMTP;
	snprintf(c.lmtp, sizeof(c.lmtp), "127.0.0.1:1");
	T_CHECK(dime_deliver_start(&d, &c, s, why, sizeof(why)) == DIME_OK, "start: %s", why);
	T_CHECK(!dime_deliver_is_maildir(d), "an LMTP delivery says it is a Maildir one");
	rc = dime_deliver_now(d, &dup, "l1", "u0@example.org", (const uint8_t *)"x", 1, why,
			      sizeof(why));
	T_CHECK(rc == DIME_E_INVALID, "deliver_now with LMTP: rc %d, want DIME_E_INVALID", rc);
	dime_deliver_stop(d, 0);
	dime_spool_close(s);
}

/* The LMTP server: one connection at a time, RCPT answered by the local part's prefix
 * ("temp" 451 until t_lmtp_heal, "perm" 550, others 250); DATA recorded raw. */
struct t_lmtp {
	int lfd;
	atomic_int stop, healed, n_data, n_temp;
	char data[8192];
	size_t data_len;
	char lhlo[256];
	pthread_t th;
};

static int
t_lmtp_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap) {
		ssize_t k = read(fd, buf + n, 1);

		if (k <= 0)
			return -1;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
	return (int)n;
}

static void
t_say(int fd, const char *s)
{
	if (write(fd, s, strlen(s)) < 0)
		return;
}

static void *
t_lmtp_main(void *arg)
{
	struct t_lmtp *L = arg;
	char line[1100];

	while (!atomic_load(&L->stop)) {
		int fd = accept(L->lfd, NULL, NULL), rcpt_ok = 0;

		if (fd < 0)
			continue;
		t_say(fd, "220 test LMTP\r\n");
		while (t_lmtp_line(fd, line, sizeof(line)) > 0) {
			if (strncmp(line, "LHLO ", 5) == 0) {
				snprintf(L->lhlo, sizeof(L->lhlo), "%.200s", line);
				t_say(fd, "250-test\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
			} else if (strcmp(line, "MAIL FROM:<>\r\n") == 0) {
				t_say(fd, "250 2.1.0 ok\r\n");
			} else if (strncmp(line, "RCPT TO:<temp", 13) == 0 &&
				   !atomic_load(&L->healed)) {
				atomic_fetch_add(&L->n_temp, 1);
				t_say(fd, "451 4.3.0 try later\r\n");
			} else if (strncmp(line, "RCPT TO:<perm", 13) == 0) {
				t_say(fd, "550 5.1.1 no such user\r\n");
			} else if (strncmp(line, "RCPT TO:<", 9) == 0) {
				rcpt_ok = 1;
				t_say(fd, "250 2.1.5 ok\r\n");
			} else if (strcmp(line, "DATA\r\n") == 0 && rcpt_ok) {
				size_t off = 0;
				int n;

				t_say(fd, "354 go\r\n");
				while ((n = t_lmtp_line(fd, line, sizeof(line))) > 0) {
					if ((size_t)n < sizeof(L->data) - off) {
						memcpy(L->data + off, line, (size_t)n);
						off += (size_t)n;
					}
					if (strcmp(line, ".\r\n") == 0)
						break;
				}
				L->data_len = off;
				atomic_fetch_add(&L->n_data, 1);
				t_say(fd, "250 2.0.0 delivered\r\n");
			} else if (strcmp(line, "QUIT\r\n") == 0) {
				t_say(fd, "221 bye\r\n");
				break;
			} else {
				t_say(fd, "500 what\r\n");
			}
		}
		close(fd);
	}
	return NULL;
}

static void
test_lmtp(int tcp)
{
	struct t_lmtp *L = calloc(1, sizeof(*L));
	struct dime_dconf c;
	struct dime_spool *s = NULL;
	struct dime_deliver *d = NULL;
	char why[512], dir[8192];
	int err = 0;

	t_conf(&c, tcp ? "lmtp_tcp" : "lmtp_unix");
	c.delivery = DIME_DCONF_LMTP;
	if (tcp) {
		struct sockaddr_in sin;
		socklen_t sl = sizeof(sin);

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		L->lfd = socket(AF_INET, SOCK_STREAM, 0);
		T_CHECK(bind(L->lfd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
			    getsockname(L->lfd, (struct sockaddr *)&sin, &sl) == 0,
			"bind tcp");
		snprintf(c.lmtp, sizeof(c.lmtp), "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
	} else {
		struct sockaddr_un sun;

		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", t_path("lmtp.sock"));
		L->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
		T_CHECK(bind(L->lfd, (struct sockaddr *)&sun, sizeof(sun)) == 0, "bind unix");
		snprintf(c.lmtp, sizeof(c.lmtp), "unix:%s", sun.sun_path);
	}
	T_CHECK(listen(L->lfd, 8) == 0, "listen");
	pthread_create(&L->th, NULL, t_lmtp_main, L);

	T_CHECK(dime_spool_open(&s, c.spool, why, sizeof(why)) == DIME_OK, "spool: %s", why);
	T_CHECK(dime_spool_put(s, "m1", "alice@example.org", "other.org", (const uint8_t *)t_msg,
			       sizeof(t_msg) - 1, &err) == DIME_OK,
		"put m1");
	T_CHECK(dime_spool_put(s, "m2", "temp@example.org", "o", (const uint8_t *)"x", 1, &err) ==
		    DIME_OK,
		"put m2");
	T_CHECK(dime_spool_put(s, "m3", "perm@example.org", "o", (const uint8_t *)"x", 1, &err) ==
		    DIME_OK,
		"put m3");
	T_CHECK(dime_deliver_start(&d, &c, s, why, sizeof(why)) == DIME_OK, "start: %s", why);
	snprintf(dir, sizeof(dir), "%s/held", c.spool);
	T_CHECK(t_wait_count(dir, 1, 5000), "held/: got %d, want 1 (the 550)", t_count(dir));
	snprintf(dir, sizeof(dir), "%s/queue", c.spool);
	T_CHECK(t_wait_count(dir, 1, 5000), "queue/: got %d, want 1 (the 451)", t_count(dir));
	T_CHECK(atomic_load(&L->n_data) == 1, "DATA transactions: got %d, want 1",
		atomic_load(&L->n_data));
	T_CHECK(L->data_len == sizeof(t_wire) - 1 && memcmp(L->data, t_wire, L->data_len) == 0,
		"DATA on the wire: got \"%.*s\"", (int)L->data_len, L->data);
	T_CHECK(strcmp(L->lhlo, "LHLO mx:test/host\r\n") == 0, "LHLO: got %s", L->lhlo);
	/* the 451 is retried with backoff (100 ms, 200 ms, ...), not in a tight loop */
	{
		struct timespec ts = {0, 700 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	/* 0, 0.1, 0.3, 0.7 s: at most 4 (6 for slack); a retry loop without backoff makes
	 * hundreds. At least 1 even on a loaded machine. */
	T_CHECK(atomic_load(&L->n_temp) >= 1 && atomic_load(&L->n_temp) <= 6,
		"451 attempts in 0.7 s: got %d, want 1..6 (backoff)", atomic_load(&L->n_temp));
	atomic_store(&L->healed, 1);
	T_CHECK(t_wait_count(dir, 0, 5000), "queue/ after the downstream healed: got %d",
		t_count(dir));
	T_CHECK(atomic_load(&L->n_data) == 2, "DATA transactions: got %d, want 2",
		atomic_load(&L->n_data));
	dime_deliver_stop(d, 1);
	dime_spool_close(s);

	/* the downstream is gone: the message stays queued (4xx-like), nothing is lost */
	atomic_store(&L->stop, 1);
	shutdown(L->lfd, SHUT_RDWR);
	close(L->lfd);
	pthread_join(L->th, NULL);
	if (!tcp)
		unlink(t_path("lmtp.sock"));
	T_CHECK(dime_spool_open(&s, c.spool, why, sizeof(why)) == DIME_OK, "spool: %s", why);
	T_CHECK(dime_spool_put(s, "m4", "alice@example.org", "o", (const uint8_t *)"x", 1, &err) ==
		    DIME_OK,
		"put m4");
	T_CHECK(dime_deliver_start(&d, &c, s, why, sizeof(why)) == DIME_OK, "start: %s", why);
	{
		struct timespec ts = {0, 300 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	dime_deliver_stop(d, 1);
	T_CHECK(t_count(dir) == 1, "queue/ with the downstream down: got %d, want 1", t_count(dir));
	dime_spool_close(s);
	free(L);
}

int
main(void)
{
	if (t_mkdtemp("deliver") != 0)
		return 1;
	dime_dlog_init("test", 0, DIME_DLOG_ERROR);
	test_maildir();
	test_maildir_batches();
	test_deliver_now();
	test_lmtp(0);
	test_lmtp(1);
	t_rm_rf(t_dir);
	return t_done("test_daemon_deliver");
}

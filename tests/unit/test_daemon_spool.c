/* The durable spool: a put lands whole in queue/ with its envelope, ids are checked, a second
 * put of one id is refused, open removes tmp/ leftovers, and a put that fails (file too large,
 * disk full, read-only file system) returns DIME_E_IO with the errno and leaves no file. A
 * group put (dime_spool_put_many) gives each item the result a lone put would, fsyncs its files
 * at once, and a file whose fsync fails fails that item alone. Lone puts made at once by many
 * threads are committed in groups. */
#define _GNU_SOURCE /* unshare(2) */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dime/spool.h"
#include "tlib.h"

/* fsync(2) as the spool sees it: this definition wins over libc's at link time (the spool is a
 * static library), so a test can fail the fsync of one named tmp/ file with EIO, as a disk
 * that lost a write would, and see how many fsyncs are in flight at once. */
static const char *t_fsync_fail;			   /* a tmp/ file name, or NULL */
static long t_fsync_delay_ns;				   /* how long each fsync takes at least */
static atomic_int t_fsync_in, t_fsync_peak, t_fsync_queue; /* the last: fsyncs of queue/ */

int
fsync(int fd)
{
	char link[64], path[4200];
	struct timespec ts = {0, t_fsync_delay_ns};
	ssize_t n;
	size_t fl;
	int in, peak, rc;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	path[n > 0 ? n : 0] = 0;
	fl = t_fsync_fail != NULL ? strlen(t_fsync_fail) : 0;
	in = atomic_fetch_add(&t_fsync_in, 1) + 1;
	peak = atomic_load(&t_fsync_peak);
	while (in > peak && !atomic_compare_exchange_weak(&t_fsync_peak, &peak, in))
		;
	if (n > 6 && strcmp(path + n - 6, "/queue") == 0)
		atomic_fetch_add(&t_fsync_queue, 1);
	if (t_fsync_delay_ns > 0)
		nanosleep(&ts, NULL);
	if (fl > 0 && (size_t)n > fl + 5 && strcmp(path + n - (ssize_t)fl, t_fsync_fail) == 0 &&
	    strncmp(path + n - (ssize_t)fl - 5, "/tmp/", 5) == 0) {
		errno = EIO;
		rc = -1;
	} else {
		rc = (int)syscall(SYS_fsync, fd);
	}
	atomic_fetch_sub(&t_fsync_in, 1);
	return rc;
}

static int
t_count(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static struct dime_spool *
t_open(const char *root)
{
	struct dime_spool *s = NULL;
	char why[512];
	int rc = dime_spool_open(&s, root, why, sizeof(why));

	if (rc != DIME_OK) {
		t_fail("open %s: got %d (%s), want ok", root, rc, why);
		exit(t_done("test_daemon_spool"));
	}
	return s;
}

static void
t_put_and_read(void)
{
	const char *root = t_path("s1");
	static const uint8_t msg[] = "-----BEGIN DIME-----\nAAAA\n-----END DIME-----\n";
	struct dime_spool *s = t_open(root);
	char path[4200], buf[256];
	struct stat sb;
	FILE *f;
	size_t n;
	int err = -1, rc;

	rc = dime_spool_put(s, "m1", "alice@example.org", "other.org", msg, sizeof(msg) - 1, &err);
	T_CHECK(rc == DIME_OK && err == 0, "put: got %d err %d, want ok", rc, err);
	snprintf(path, sizeof(path), "%s/queue/m1", root);
	f = fopen(path, "r");
	T_CHECK(f != NULL, "queue/m1 missing");
	if (f != NULL) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		fclose(f);
		T_CHECK(strncmp(buf, "Recipient: alice@example.org\nOrigin: other.org\n", 47) ==
				0 &&
			    strcmp(buf + 47, (const char *)msg) == 0,
			"queue/m1: got \"%s\"", buf);
	}
	T_CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600, "queue/m1 mode: got %o",
		(unsigned)sb.st_mode & 0777);
	snprintf(path, sizeof(path), "%s/queue", root);
	T_CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0700, "queue mode: got %o",
		(unsigned)sb.st_mode & 0777);
	rc = dime_spool_put(s, "m1", "bob@example.org", "other.org", msg, 3, &err);
	T_CHECK(rc == DIME_E_AGAIN && err == EEXIST,
		"same id again: got %d errno %d, want DIME_E_AGAIN EEXIST (a duplicate)", rc, err);
	/* the same id being written by another call (its tmp/ file exists): not a duplicate yet */
	snprintf(path, sizeof(path), "%s/tmp/m2", root);
	close(open(path, O_WRONLY | O_CREAT | O_EXCL, 0600));
	rc = dime_spool_put(s, "m2", "bob@example.org", "other.org", msg, 3, &err);
	T_CHECK(rc == DIME_E_AGAIN && err == EINPROGRESS,
		"id in flight: got %d errno %d, want DIME_E_AGAIN EINPROGRESS", rc, err);
	unlink(path);
	snprintf(path, sizeof(path), "%s/tmp", root);
	T_CHECK(t_count(path) == 0, "tmp/ after puts: got %d files, want 0", t_count(path));

	static const char *const bad_ids[] = {"",     ".",   "..",   "a/b", "../x",
					      ".hid", "a b", "a\nb", "é"};
	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		rc = dime_spool_put(s, bad_ids[i], "a@b", "b", msg, 3, &err);
		T_CHECK(rc == DIME_E_INVALID, "id \"%s\": got %d, want DIME_E_INVALID", bad_ids[i],
			rc);
	}
	char longid[130];
	memset(longid, 'a', 129);
	longid[129] = '\0';
	T_CHECK(dime_spool_put(s, longid, "a@b", "b", msg, 3, &err) == DIME_E_INVALID,
		"129-char id accepted");
	longid[128] = '\0';
	T_CHECK(dime_spool_put(s, longid, "a@b", "b", msg, 3, &err) == DIME_OK,
		"128-char id refused");
	T_CHECK(dime_spool_put(s, "m2", "a@b\nOrigin: evil", "b", msg, 3, &err) == DIME_E_INVALID,
		"a recipient with a newline was accepted");
	T_CHECK(dime_spool_put(s, "m3", "a@b", "", msg, 3, &err) == DIME_E_INVALID,
		"an empty origin was accepted");
	dime_spool_close(s);

	/* Recovery: leftovers in tmp/ were never acknowledged and go; queue/ stays. */
	snprintf(path, sizeof(path), "%s/tmp/half", root);
	f = fopen(path, "w");
	T_CHECK(f != NULL && fputs("Recipient: x", f) >= 0 && fclose(f) == 0, "cannot make %s",
		path);
	s = t_open(root);
	snprintf(path, sizeof(path), "%s/tmp", root);
	T_CHECK(t_count(path) == 0, "tmp/ after recovery: got %d files, want 0", t_count(path));
	snprintf(path, sizeof(path), "%s/queue", root);
	T_CHECK(t_count(path) == 2, "queue/ after recovery: got %d files, want 2", t_count(path));
	dime_spool_close(s);
}

/* EFBIG through RLIMIT_FSIZE: the same failure path as a full disk, without privileges. */
static void
t_put_fails_clean(void)
{
	const char *root = t_path("s2");
	struct dime_spool *s = t_open(root);
	struct rlimit old, lim;
	uint8_t *big = calloc(1, 1 << 20);
	char path[4200];
	int err = 0, rc;

	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = 65536;
	T_CHECK(big != NULL && setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
	rc = dime_spool_put(s, "big", "a@b", "b", big, 1 << 20, &err);
	setrlimit(RLIMIT_FSIZE, &old);
	T_CHECK(rc == DIME_E_IO && err == EFBIG, "too large: got %d errno %d, want DIME_E_IO EFBIG",
		rc, err);
	snprintf(path, sizeof(path), "%s/tmp", root);
	T_CHECK(t_count(path) == 0, "tmp/ after a failed put: got %d files", t_count(path));
	snprintf(path, sizeof(path), "%s/queue", root);
	T_CHECK(t_count(path) == 0, "queue/ after a failed put: got %d files", t_count(path));
	/* the spool still works afterwards */
	T_CHECK(dime_spool_put(s, "small", "a@b", "b", big, 100, &err) == DIME_OK,
		"put after a failure");
	dime_spool_close(s);
	free(big);
}

static int
t_write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* ENOSPC and EROFS on a real tmpfs, in a user and mount namespace of a child process.
 * Returns the child's exit code: 0 pass, 1 fail, 77 no namespaces here. */
static int
t_child_fs(const char *mnt)
{
	char map[64], path[4200], why[512];
	struct dime_spool *s = NULL;
	uint8_t *big;
	uid_t uid = getuid();
	gid_t gid = getgid();
	int err = 0, rc, fails = 0;

	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
		return 77;
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
	if (t_write_file("/proc/self/uid_map", map) != 0)
		return 77;
	t_write_file("/proc/self/setgroups", "deny");
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
	if (t_write_file("/proc/self/gid_map", map) != 0)
		return 77;
	if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
	    mount("tmpfs", mnt, "tmpfs", 0, "size=256k") != 0)
		return 77;
	snprintf(path, sizeof(path), "%s/spool", mnt);
	if (dime_spool_open(&s, path, why, sizeof(why)) != DIME_OK) {
		fprintf(stderr, "FAIL: open on tmpfs: %s\n", why);
		return 1;
	}
	if ((big = calloc(1, 1 << 20)) == NULL)
		return 1;
	rc = dime_spool_put(s, "full", "a@b", "b", big, 1 << 20, &err);
	if (rc != DIME_E_IO || err != ENOSPC) {
		fprintf(stderr, "FAIL: disk full: got %d errno %d, want DIME_E_IO ENOSPC\n", rc,
			err);
		fails++;
	}
	snprintf(path, sizeof(path), "%s/spool/tmp", mnt);
	if (t_count(path) != 0) {
		fprintf(stderr, "FAIL: tmp/ after ENOSPC: %d files\n", t_count(path));
		fails++;
	}
	snprintf(path, sizeof(path), "%s/spool/queue", mnt);
	if (t_count(path) != 0) {
		fprintf(stderr, "FAIL: queue/ after ENOSPC: %d files\n", t_count(path));
		fails++;
	}
	/* space again: the spool works (recovery when space returns) */
	if (dime_spool_put(s, "fits", "a@b", "b", big, 1000, &err) != DIME_OK) {
		fprintf(stderr, "FAIL: put after ENOSPC: errno %d\n", err);
		fails++;
	}
	if (mount("tmpfs", mnt, NULL, MS_REMOUNT | MS_RDONLY, NULL) != 0) {
		fprintf(stderr, "FAIL: remount read-only: %s\n", strerror(errno));
		return 1;
	}
	rc = dime_spool_put(s, "ro", "a@b", "b", big, 1000, &err);
	if (rc != DIME_E_IO || err != EROFS) {
		fprintf(stderr, "FAIL: read-only: got %d errno %d, want DIME_E_IO EROFS\n", rc,
			err);
		fails++;
	}
	if (t_count(path) != 1) {
		fprintf(stderr, "FAIL: queue/ after EROFS: %d files, want 1\n", t_count(path));
		fails++;
	}
	dime_spool_close(s);
	free(big);
	return fails ? 1 : 0;
}

static void
t_disk_full_and_read_only(void)
{
	const char *mnt = t_path("mnt");
	pid_t pid;
	int st = 0;

	mkdir(mnt, 0700);
	fflush(NULL);
	if ((pid = fork()) == 0)
		_exit(t_child_fs(mnt));
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) {
		t_fail("ENOSPC/EROFS child did not finish");
		return;
	}
	if (WEXITSTATUS(st) == 77)
		printf(
		    "test_daemon_spool: no user namespaces here: ENOSPC/EROFS on tmpfs skipped\n");
	else
		T_CHECK(WEXITSTATUS(st) == 0, "ENOSPC/EROFS on tmpfs: child exit %d",
			WEXITSTATUS(st));
}

/* One group with every outcome: two new, a duplicate of one of them in the same group (being
 * written by the group: EINPROGRESS, 451, the retry meets the queued copy), one queued before,
 * one being written elsewhere, a bad id, one too large. */
static void
t_put_many(void)
{
	const char *root = t_path("s4");
	struct dime_spool *s = t_open(root);
	static const uint8_t msg[] = "group message\n";
	uint8_t *big = calloc(1, 1 << 20);
	struct dime_spool_item it[7];
	const char *ids[7] = {"g1", "g2", "g1", "pre", "busy", "bad/id", "big"};
	const int want_rc[7] = {DIME_OK,      DIME_OK,	      DIME_E_AGAIN, DIME_E_AGAIN,
				DIME_E_AGAIN, DIME_E_INVALID, DIME_E_IO};
	const int want_err[7] = {0, 0, EINPROGRESS, EEXIST, EINPROGRESS, 0, EFBIG};
	struct rlimit old, lim;
	char path[4200], buf[64];
	FILE *f;
	size_t ok, n;
	int err = 0;

	T_CHECK(big != NULL, "calloc");
	T_CHECK(dime_spool_put(s, "pre", "a@b", "b", msg, 3, &err) == DIME_OK, "put pre");
	snprintf(path, sizeof(path), "%s/tmp/busy", root);
	f = fopen(path, "w");
	T_CHECK(f != NULL && fclose(f) == 0, "cannot make %s", path);
	for (size_t i = 0; i < 7; i++)
		it[i] = (struct dime_spool_item){.id = ids[i],
						 .recipient = "alice@example.org",
						 .origin = "other.org",
						 .msg = i == 6 ? big : msg,
						 .len = i == 6 ? (size_t)1 << 20 : sizeof(msg) - 1,
						 .rc = -99,
						 .err = -99};
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = 65536;
	T_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
	ok = dime_spool_put_many(s, it, 7);
	setrlimit(RLIMIT_FSIZE, &old);
	T_CHECK(ok == 2, "put_many: got %zu ok, want 2", ok);
	for (size_t i = 0; i < 7; i++)
		T_CHECK(it[i].rc == want_rc[i] && it[i].err == want_err[i],
			"item %zu (%s): got rc %d err %d, want %d %d", i, ids[i], it[i].rc,
			it[i].err, want_rc[i], want_err[i]);
	snprintf(path, sizeof(path), "%s/queue", root);
	T_CHECK(t_count(path) == 3, "queue/ after the group: got %d files, want 3 (g1 g2 pre)",
		t_count(path));
	snprintf(path, sizeof(path), "%s/tmp", root);
	T_CHECK(t_count(path) == 1, "tmp/ after the group: got %d files, want 1 (busy)",
		t_count(path));
	snprintf(path, sizeof(path), "%s/queue/g2", root);
	f = fopen(path, "r");
	T_CHECK(f != NULL, "queue/g2 missing");
	if (f != NULL) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = 0;
		fclose(f);
		T_CHECK(
		    strcmp(buf,
			   "Recipient: alice@example.org\nOrigin: other.org\ngroup message\n") == 0,
		    "queue/g2: got \"%s\"", buf);
	}
	/* the in-group duplicate's retry */
	it[2].rc = it[2].err = -99;
	T_CHECK(dime_spool_put_many(s, &it[2], 1) == 0 && it[2].rc == DIME_E_AGAIN &&
		    it[2].err == EEXIST,
		"retry of g1: got rc %d err %d, want EEXIST", it[2].rc, it[2].err);
	/* nothing to sync: no item counts */
	it[0].id = "bad/again";
	T_CHECK(dime_spool_put_many(s, it, 1) == 0 && it[0].rc == DIME_E_INVALID,
		"put_many of a bad id: got rc %d", it[0].rc);
	dime_spool_close(s);
	free(big);
}

/* A group of eight new messages whose fourth file fails its fsync: that item alone is
 * DIME_E_IO with EIO and leaves no file; the seven others are queued. The files are fsynced
 * at once (each fsync takes 20 ms here, so they overlap if the spool lets them). */
static void
t_put_many_fsync_fails(void)
{
	const char *root = t_path("s5");
	struct dime_spool *s = t_open(root);
	static const uint8_t msg[] = "group message\n";
	const char *ids[8] = {"h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7"};
	struct dime_spool_item it[8];
	char path[4200];
	size_t ok;
	int peak;

	for (size_t i = 0; i < 8; i++)
		it[i] = (struct dime_spool_item){.id = ids[i],
						 .recipient = "alice@example.org",
						 .origin = "other.org",
						 .msg = msg,
						 .len = sizeof(msg) - 1,
						 .rc = -99,
						 .err = -99};
	t_fsync_fail = "h3";
	t_fsync_delay_ns = 20 * 1000 * 1000;
	atomic_store(&t_fsync_peak, 0);
	ok = dime_spool_put_many(s, it, 8);
	peak = atomic_load(&t_fsync_peak);
	t_fsync_fail = NULL;
	t_fsync_delay_ns = 0;
	T_CHECK(ok == 7, "put_many with a failing fsync: got %zu ok, want 7", ok);
	for (size_t i = 0; i < 8; i++) {
		int want_rc = i == 3 ? DIME_E_IO : DIME_OK, want_err = i == 3 ? EIO : 0;

		T_CHECK(it[i].rc == want_rc && it[i].err == want_err,
			"item %zu (%s): got rc %d err %d, want %d %d", i, ids[i], it[i].rc,
			it[i].err, want_rc, want_err);
		snprintf(path, sizeof(path), "%s/queue/%s", root, ids[i]);
		T_CHECK((access(path, F_OK) == 0) == (i != 3), "queue/%s: got %s, want %s", ids[i],
			access(path, F_OK) == 0 ? "present" : "absent",
			i != 3 ? "present" : "absent");
	}
	snprintf(path, sizeof(path), "%s/tmp", root);
	T_CHECK(t_count(path) == 0, "tmp/ after the group: got %d files, want 0", t_count(path));
	T_CHECK(peak >= 4, "fsyncs in flight at once: got %d, want at least 4 of 8", peak);
	/* the failed one is a new put the next time, and succeeds */
	it[3].rc = it[3].err = -99;
	T_CHECK(dime_spool_put_many(s, &it[3], 1) == 1 && it[3].rc == DIME_OK,
		"retry of h3: got rc %d err %d, want ok", it[3].rc, it[3].err);
	dime_spool_close(s);
}

/* Lone puts from many threads at once share group commits: every one is queued with its own
 * result, and queue/ is fsynced far fewer times than once per put (each fsync takes 10 ms here,
 * so puts arriving during one commit wait and form the next group). */
#define T_CONC_THREADS 16
#define T_CONC_PUTS    8

struct t_conc {
	struct dime_spool *s;
	int t, fails;
};

static void *
t_conc_run(void *arg)
{
	struct t_conc *c = arg;
	static const uint8_t msg[] = "concurrent message\n";

	for (int i = 0; i < T_CONC_PUTS; i++) {
		char id[32];
		int err = -99, rc;

		snprintf(id, sizeof(id), "c%d-%d", c->t, i);
		rc = dime_spool_put(c->s, id, "alice@example.org", "other.org", msg,
				    sizeof(msg) - 1, &err);
		c->fails += rc != DIME_OK || err != 0;
	}
	return NULL;
}

static void
t_put_concurrent(void)
{
	const char *root = t_path("s6");
	struct dime_spool *s = t_open(root);
	pthread_t th[T_CONC_THREADS];
	struct t_conc c[T_CONC_THREADS];
	char path[4200];
	int fails = 0, syncs, started = 0;

	t_fsync_delay_ns = 10 * 1000 * 1000;
	atomic_store(&t_fsync_queue, 0);
	for (int t = 0; t < T_CONC_THREADS; t++) {
		c[t] = (struct t_conc){.s = s, .t = t};
		if (pthread_create(&th[t], NULL, t_conc_run, &c[t]) != 0)
			break;
		started++;
	}
	for (int t = 0; t < started; t++) {
		pthread_join(th[t], NULL);
		fails += c[t].fails;
	}
	syncs = atomic_load(&t_fsync_queue);
	t_fsync_delay_ns = 0;
	T_CHECK(started == T_CONC_THREADS, "started %d threads of %d", started, T_CONC_THREADS);
	T_CHECK(fails == 0, "concurrent puts: %d failed", fails);
	snprintf(path, sizeof(path), "%s/queue", root);
	T_CHECK(t_count(path) == started * T_CONC_PUTS, "queue/: got %d files, want %d",
		t_count(path), started * T_CONC_PUTS);
	T_CHECK(syncs > 0 && syncs <= started * T_CONC_PUTS / 2,
		"queue/ fsynced %d times for %d puts: not grouped", syncs, started * T_CONC_PUTS);
	printf("concurrent puts: %d puts, %d fsyncs of queue/\n", started * T_CONC_PUTS, syncs);
	dime_spool_close(s);
}

int
main(void)
{
	if (t_mkdtemp("spool") != 0)
		return 1;
	t_put_and_read();
	t_put_fails_clean();
	t_put_many();
	t_put_many_fsync_fails();
	t_put_concurrent();
	t_disk_full_and_read_only();
	t_rm_rf(t_dir);
	return t_done("test_daemon_spool");
}

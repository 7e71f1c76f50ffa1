/* dimed's pid file and privilege drop (dime/privsep.h): a live holder is found by its lock and
 * signalled; a second dimed is refused; a stale or forged file is never signalled; as root, the
 * drop changes every id and root cannot be regained. */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dime/privsep.h"
#include "tlib.h"

/* Run fn in a child (locks and identities are per process); returns its exit status. */
static int
t_in_child(int (*fn)(const char *), const char *arg)
{
	pid_t pid = fork();
	int st = 0;

	if (pid == 0)
		_exit(fn(arg));
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* In a child: another process holds path, so writing it must fail with AGAIN; then signal the
 * holder (SIGUSR1) through it. 0: as expected. */
static int
t_child_second(const char *path)
{
	char why[256];
	pid_t pid;
	int fd, rc;

	rc = dime_privsep_pid_write(&fd, path, why, sizeof(why));
	if (rc != DIME_E_AGAIN || fd != -1 || strstr(why, "runs on it") == NULL)
		return 1;
	rc = dime_privsep_pid_signal(&pid, path, SIGUSR1, why, sizeof(why));
	if (rc != DIME_OK || pid != getppid())
		return 2;
	return 0;
}

/* In a child: nobody (live) holds path: NOTFOUND and no signal. */
static int
t_child_stale(const char *path)
{
	char why[256];
	pid_t pid = 1;
	int rc = dime_privsep_pid_signal(&pid, path, SIGUSR1, why, sizeof(why));

	return rc == DIME_E_NOTFOUND && pid == 0 ? 0 : 1;
}

static void
t_pid_file(void)
{
	const char *path = t_path("d.pid");
	char why[256], buf[32];
	sigset_t set, pend;
	FILE *f;
	int fd, rc, st;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	rc = t_in_child(t_child_stale, path);
	T_CHECK(rc == 0, "no file: child got %d, want NOTFOUND", rc);
	rc = dime_privsep_pid_write(&fd, path, why, sizeof(why));
	T_CHECK(rc == DIME_OK && fd >= 0, "write: got %d (%s)", rc, why);
	if (rc != DIME_OK)
		return;
	/* read through fd: closing any other descriptor of the file would drop the lock */
	memset(buf, 0, sizeof(buf));
	T_CHECK(pread(fd, buf, sizeof(buf) - 1, 0) > 0 && atol(buf) == (long)getpid(),
		"pid file holds \"%s\", want %ld", buf, (long)getpid());
	st = t_in_child(t_child_second, path);
	T_CHECK(st == 0, "second writer / signal: child status %d, want 0", st);
	sigpending(&pend);
	T_CHECK(sigismember(&pend, SIGUSR1), "the holder was not signalled");
	{
		int sig = 0;

		if (sigismember(&pend, SIGUSR1))
			sigwait(&set, &sig);
	}
	/* A file whose text names another pid than the lock's holder is not signalled. */
	T_CHECK(pwrite(fd, "424242\n   ", 10, 0) == 10, "rewrite");
	st = t_in_child(t_child_second, path);
	T_CHECK(st == 2, "forged text: child status %d, want 2 (refused)", st);
	/* Removed: gone. Left behind unlocked (a crash): stale, not signalled. */
	dime_privsep_pid_remove(fd, path);
	T_CHECK(access(path, F_OK) != 0, "pid file still there after remove");
	f = fopen(path, "w");
	if (f != NULL) {
		fprintf(f, "%ld\n", (long)getpid());
		fclose(f);
	}
	st = t_in_child(t_child_stale, path);
	T_CHECK(st == 0, "stale file: child status %d, want 0 (NOTFOUND)", st);
	sigpending(&pend);
	T_CHECK(!sigismember(&pend, SIGUSR1), "a stale pid file was signalled");
	sigprocmask(SIG_UNBLOCK, &set, NULL);
}

/* In a child (root only): drop to nobody; every id changed, root cannot come back. */
static int
t_child_drop(const char *user)
{
	char why[256];
	int dropped = 0, rc = dime_privsep_drop(&dropped, user, why, sizeof(why));

	if (rc != DIME_OK || !dropped)
		return 1;
	if (getuid() == 0 || geteuid() == 0 || getgid() == 0 || getegid() == 0)
		return 2;
	if (setuid(0) == 0 || seteuid(0) == 0)
		return 3;
	if (getgroups(0, NULL) > 1)
		return 4;
	return 0;
}

static void
t_drop(void)
{
	char why[256];
	int dropped = 1, rc;

	rc = dime_privsep_drop(&dropped, "", why, sizeof(why));
	T_CHECK(rc == DIME_OK && dropped == 0, "no user: got %d dropped %d", rc, dropped);
	if (geteuid() != 0) {
		/* not root: nothing to drop, and nothing changes */
		rc = dime_privsep_drop(&dropped, "nobody", why, sizeof(why));
		T_CHECK(rc == DIME_OK && dropped == 0, "not root: got %d dropped %d", rc, dropped);
		printf("test_daemon_privsep: not root, the drop itself is not exercised\n");
		return;
	}
	rc = dime_privsep_drop(&dropped, "no-such-user-dimed-test", why, sizeof(why));
	T_CHECK(rc == DIME_E_NOTFOUND && dropped == 0 && strstr(why, "no such user") != NULL,
		"unknown user: got %d \"%s\"", rc, why);
	rc = dime_privsep_drop(&dropped, "root", why, sizeof(why));
	T_CHECK(rc == DIME_E_IO && dropped == 0, "user root: got %d, want IO", rc);
	rc = t_in_child(t_child_drop, "nobody");
	T_CHECK(rc == 0, "drop to nobody: child status %d, want 0", rc);
}

int
main(void)
{
	if (t_mkdtemp("privsep") != 0)
		return 1;
	t_pid_file();
	t_drop();
	t_rm_rf(t_dir);
	return t_done("test_daemon_privsep");
}

/* dimed's privilege drop and pid file (dime/privsep.h). The drop follows OpenSMTPD and Postfix:
 * groups first (while still root), then gid, then uid, then prove root cannot come back. */
#include "dime/privsep.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
dime_privsep_drop(int *dropped, const char *user, char *why, size_t why_cap)
{
	struct passwd *pw;
	uid_t uid;
	gid_t gid;

	*dropped = 0;
	if (why_cap > 0)
		why[0] = '\0';
	if (user[0] == '\0' || geteuid() != 0)
		return DIME_OK;
	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		if (why_cap > 0)
			snprintf(why, why_cap, "user %s: no such user", user);
		return DIME_E_NOTFOUND;
	}
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (uid == 0) { /* a "user" that is root drops nothing: refuse rather than pretend */
		if (why_cap > 0)
			snprintf(why, why_cap, "user %s: is uid 0", user);
		return DIME_E_IO;
	}
	if (setgroups(1, &gid) != 0) {
		snprintf(why, why_cap, "user %s: setgroups: %s", user, strerror(errno));
		return DIME_E_IO;
	}
	if (setresgid(gid, gid, gid) != 0) {
		snprintf(why, why_cap, "user %s: setresgid: %s", user, strerror(errno));
		return DIME_E_IO;
	}
	if (setresuid(uid, uid, uid) != 0) {
		snprintf(why, why_cap, "user %s: setresuid: %s", user, strerror(errno));
		return DIME_E_IO;
	}
	if (setuid(0) == 0 || seteuid(0) == 0 || getuid() != uid || geteuid() != uid ||
	    getgid() != gid || getegid() != gid) {
		if (why_cap > 0)
			snprintf(why, why_cap, "user %s: root could be regained after the drop",
				 user);
		return DIME_E_IO;
	}
	*dropped = 1;
	return DIME_OK;
}

int
dime_privsep_pid_write(int *fd, const char *path, char *why, size_t why_cap)
{
	struct flock fl;
	char buf[32];
	int f, n, rc = DIME_E_IO;

	*fd = -1;
	if (why_cap > 0)
		why[0] = '\0';
	if ((f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644)) < 0) {
		snprintf(why, why_cap, "pid file %s: %s", path, strerror(errno));
		return DIME_E_IO;
	}
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(f, F_SETLK, &fl) != 0) {
		int e = errno;

		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		if ((e == EAGAIN || e == EACCES) && fcntl(f, F_GETLK, &fl) == 0 &&
		    fl.l_type != F_UNLCK) {
			if (why_cap > 0)
				snprintf(why, why_cap, "pid file %s: dimed pid %ld runs on it",
					 path, (long)fl.l_pid);
			rc = DIME_E_AGAIN;
		} else {
			snprintf(why, why_cap, "pid file %s: lock: %s", path, strerror(e));
		}
		goto fail;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(f, 0) != 0 || pwrite(f, buf, (size_t)n, 0) != n) {
		snprintf(why, why_cap, "pid file %s: write: %s", path, strerror(errno));
		goto fail;
	}
	*fd = f;
	return DIME_OK;
fail:
	close(f);
	return rc;
}

void
dime_privsep_pid_remove(int fd, const char *path)
{
	if (fd < 0)
		return;
	/* unlink while the lock is held: a dimed starting now cannot have taken the name yet */
	(void)unlink(path);
	close(fd);
}

int
dime_privsep_pid_signal(pid_t *pid, const char *path, int sig, char *why, size_t why_cap)
{
	struct flock fl;
	char buf[32];
	ssize_t n;
	long v;
	char *end;
	int f, rc = DIME_E_IO;

	*pid = 0;
	if (why_cap > 0)
		why[0] = '\0';
	if ((f = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT) {
			if (why_cap > 0)
				snprintf(why, why_cap, "no pid file %s", path);
			return DIME_E_NOTFOUND;
		}
		snprintf(why, why_cap, "pid file %s: %s", path, strerror(errno));
		return DIME_E_IO;
	}
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(f, F_GETLK, &fl) != 0) {
		snprintf(why, why_cap, "pid file %s: lock: %s", path, strerror(errno));
		goto out;
	}
	if (fl.l_type == F_UNLCK) {
		if (why_cap > 0)
			snprintf(why, why_cap, "pid file %s is stale: no dimed holds it", path);
		rc = DIME_E_NOTFOUND;
		goto out;
	}
	/* The lock's holder is the authority; the text must agree, or the file is not ours. */
	n = pread(f, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	v = strtol(buf, &end, 10);
	if (n <= 0 || end == buf || (*end != '\n' && *end != '\0') || v != (long)fl.l_pid ||
	    v <= 1) {
		if (why_cap > 0)
			snprintf(why, why_cap,
				 "pid file %s: holds \"%.20s\" but pid %ld has it locked", path,
				 buf, (long)fl.l_pid);
		goto out;
	}
	*pid = fl.l_pid;
	if (kill(fl.l_pid, sig) != 0) {
		snprintf(why, why_cap, "cannot signal the dimed of %s: %s", path, strerror(errno));
		goto out;
	}
	rc = DIME_OK;
out:
	close(f);
	return rc;
}

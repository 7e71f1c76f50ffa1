#ifndef DIME_DAEMON_PRIVSEP_H
#define DIME_DAEMON_PRIVSEP_H
/* dimed's process hygiene: dropping root after bind (the key process, forked before, keeps it),
 * and the pid file through which `dime user create --rotate` finds a running dimed. The pid
 * file is locked (fcntl) for as long as dimed runs, so a stale file left by a crash or by a
 * dimed that could no longer unlink it is told apart from a live one by the lock, never by a
 * pid that may have been reused. */

#include <stddef.h>
#include <sys/types.h>

#include "dime/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Become user (its uid, gid and supplementary groups) when running as root; user "" or not
 * root: nothing changes (*dropped 0). After a change, regaining root must fail (checked).
 * Every thread of the process changes (glibc's setxid broadcast).
 * Returns: DIME_OK, DIME_E_NOTFOUND (no such user), DIME_E_IO (a set*id call failed, or root
 * could be regained: the caller must not serve). why: the reason.
 * Out: *dropped: 1 when the identity changed. */
DIME_MUST_CHECK int dime_privsep_drop(int *dropped, const char *user, char *why, size_t why_cap);

/* Create or take over path (0644), lock it for this process, and write the pid. The lock is an
 * fcntl lock: it is not inherited by children and goes with the process.
 * Returns: DIME_OK, DIME_E_AGAIN (another live process holds it: why names its pid), DIME_E_IO.
 * Out: *fd, the descriptor to keep open (-1 on failure). */
DIME_MUST_CHECK int dime_privsep_pid_write(int *fd, const char *path, char *why, size_t why_cap);

/* Remove the pid file (best effort: after a drop its directory may not be writable; the lock
 * going away with fd already marks it stale) and close fd. fd < 0: nothing. */
void dime_privsep_pid_remove(int fd, const char *path);

/* Send sig to the live process that holds path's lock.
 * Returns: DIME_OK, DIME_E_NOTFOUND (no file, or nobody holds it: no dimed runs),
 * DIME_E_IO (why: cannot read it, or kill refused, e.g. EPERM).
 * Out: *pid, the process signalled (or found), else 0. */
DIME_MUST_CHECK int dime_privsep_pid_signal(pid_t *pid, const char *path, int sig, char *why,
					    size_t why_cap);

#ifdef __cplusplus
}
#endif
#endif

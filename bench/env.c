/* What the long dime-bench commands share: the machine a run was measured on (for the JSON and
 * the charts), progress with an ETA on stderr, and temporary directories that are removed at
 * exit and on SIGINT, SIGTERM, SIGHUP and SIGPIPE, so an interrupted run leaves no store or
 * keyring behind. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_commit.h"
#include "dime/simd.h"

/* ---- the machine ---- */

/* Keeps printable ASCII except the quotes and backslash, which JSON and gnuplot strings would
 * need escaped: a CPU model never needs them. */
static void
env_clean(char *s)
{
	for (; *s != 0; s++)
		if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\'' || *s == '\\')
			*s = ' ';
}

static void
env_cpu_model(char *out, size_t cap)
{
	char line[512];
	FILE *f = fopen("/proc/cpuinfo", "r");

	snprintf(out, cap, "unknown");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *v = strchr(line, ':');

		/* x86 says "model name"; arm64 has no model name, only "CPU part" numbers */
		if (strncmp(line, "model name", 10) != 0 || v == NULL)
			continue;
		for (v++; *v == ' ' || *v == '\t'; v++)
			;
		v[strcspn(v, "\n")] = 0;
		if (*v != 0)
			snprintf(out, cap, "%s", v);
		break;
	}
	fclose(f);
	env_clean(out);
}

/* The commit the binary was built from (bench/commit.cmake at every build); outside a
 * checkout then, the commit of the checkout it runs in, if any. */
static void
env_commit(char *out, size_t cap)
{
	char line[64] = "";
	FILE *p;

	snprintf(out, cap, "%s", DIME_BENCH_COMMIT);
	if (strcmp(out, "unknown") != 0)
		return;
	if ((p = popen("git rev-parse --short HEAD 2>/dev/null", "r")) == NULL)
		return;
	if (fgets(line, sizeof(line), p) != NULL) {
		line[strcspn(line, "\n")] = 0;
		if (line[0] != 0)
			snprintf(out, cap, "%s", line);
	}
	pclose(p);
	env_clean(out);
}

static void
env_load(double la[3])
{
	if (getloadavg(la, 3) != 3)
		la[0] = la[1] = la[2] = -1;
}

void
bench_machine_init(struct bench_machine *m)
{
	time_t now = time(NULL);
	struct tm tm;

	memset(m, 0, sizeof(*m));
	env_cpu_model(m->cpu, sizeof(m->cpu));
	snprintf(m->simd, sizeof(m->simd), "%s", dime_simd()->name);
	m->cores = sysconf(_SC_NPROCESSORS_ONLN);
	env_load(m->load_start);
	m->load_end[0] = m->load_end[1] = m->load_end[2] = -1;
	env_commit(m->commit, sizeof(m->commit));
	if (gmtime_r(&now, &tm) != NULL)
		strftime(m->date, sizeof(m->date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	else
		snprintf(m->date, sizeof(m->date), "unknown");
}

void
bench_machine_end(struct bench_machine *m)
{
	env_load(m->load_end);
}

void
bench_machine_json(FILE *f, const struct bench_machine *m)
{
	fprintf(f,
		"  \"machine\": {\"cpu_model\": \"%s\", \"simd\": \"%s\", \"cores_online\": %ld, "
		"\"loadavg_start\": [%.2f, %.2f, %.2f], \"loadavg_end\": [%.2f, %.2f, %.2f], "
		"\"commit\": \"%s\", \"date\": \"%s\"},\n",
		m->cpu, m->simd, m->cores, m->load_start[0], m->load_start[1], m->load_start[2],
		m->load_end[0], m->load_end[1], m->load_end[2], m->commit, m->date);
}

void
bench_machine_line(char *out, size_t cap, const struct bench_machine *m)
{
	snprintf(out, cap,
		 "%s, SIMD %s, %ld cores online, load %.2f at start, %.2f at end, "
		 "commit %s, %s",
		 m->cpu, m->simd, m->cores, m->load_start[0], m->load_end[0], m->commit, m->date);
}

/* ---- progress ---- */

void
bench_progress_init(struct bench_progress *p, int mode, double total)
{
	memset(p, 0, sizeof(*p));
	p->tty = isatty(STDERR_FILENO);
	p->on = mode > 0 || (mode < 0 && p->tty);
	p->total = total;
	p->t0 = bench_kern_now();
}

static void
env_dur(char *out, size_t cap, double s)
{
	if (s < 0)
		s = 0;
	if (s >= 3600)
		snprintf(out, cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
	else if (s >= 60)
		snprintf(out, cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
	else
		snprintf(out, cap, "%ds", (int)(s + 0.5));
}

void
bench_progress_step(struct bench_progress *p, const char *what, double cost)
{
	double el = bench_kern_now() - p->t0;
	char eta[32] = "?", ela[32];

	if (p->on) {
		/* the ETA extrapolates what the finished steps cost, setup included */
		if (p->done > 0)
			env_dur(eta, sizeof(eta), el / p->done * (p->total - p->done));
		env_dur(ela, sizeof(ela), el);
		fprintf(stderr, "%s[%3.0f%%] %s; %s elapsed, ETA %s%s", p->tty ? "\r" : "",
			p->total > 0 ? 100.0 * p->done / p->total : 0.0, what, ela, eta,
			p->tty ? "\033[K" : "\n");
		fflush(stderr);
	}
	p->done += cost;
}

void
bench_progress_end(struct bench_progress *p)
{
	if (p->on && p->tty) {
		fprintf(stderr, "\r\033[K");
		fflush(stderr);
	}
}

/* ---- temporary directories ---- */

#define ENV_TMP_MAX   4
#define ENV_TMP_DEPTH 4

static char env_tmp[ENV_TMP_MAX][256];
static char *const *env_hook[ENV_TMP_MAX];
static int env_handlers;
static volatile pid_t env_child; /* a child that may write into the directories */

/* Removes everything under the directory dfd, then nothing else. Only system calls, so that
 * the signal handler can use it (opendir and nftw allocate). A pass that removes entries is
 * followed by another from the start, since unlinking while reading a directory may skip
 * entries. */
static void
env_rm_under(int dfd, int depth)
{
	char buf[2048];
	int again = 1;

	for (int pass = 0; again && pass < 16; pass++) {
		long n;

		again = 0;
		if (lseek(dfd, 0, SEEK_SET) != 0)
			return;
		while ((n = syscall(SYS_getdents64, dfd, buf, sizeof(buf))) > 0) {
			for (long off = 0; off < n;) {
				/* struct linux_dirent64: ino 8, off 8, reclen 2, type 1, name */
				unsigned short reclen;
				unsigned char type = (unsigned char)buf[off + 18];
				const char *name = buf + off + 19;
				int sub;

				memcpy(&reclen, buf + off + 16, sizeof(reclen));
				off += reclen;
				if (reclen == 0)
					return;
				if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
					continue;
				again = 1;
				if (type != DT_DIR && unlinkat(dfd, name, 0) == 0)
					continue;
				if (depth >= ENV_TMP_DEPTH)
					continue;
				sub = openat(dfd, name,
					     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (sub >= 0) {
					env_rm_under(sub, depth + 1);
					close(sub);
				}
				unlinkat(dfd, name, AT_REMOVEDIR);
			}
		}
	}
}

static void
env_rm_tree(const char *path)
{
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (dfd < 0)
		return;
	env_rm_under(dfd, 0);
	close(dfd);
	rmdir(path);
}

/* Runs argv (argv[0] an absolute path) and waits for it; async-signal-safe. */
static void
env_run(char *const *argv)
{
	extern char **environ;
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execve(argv[0], argv, environ);
		_exit(127);
	}
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
}

static void
env_on_signal(int sig)
{
	struct sigaction sa;
	int saved = errno;
	pid_t child = env_child;

	/* a gpg still running would recreate its home after the removal */
	if (child > 0 && kill(child, SIGKILL) == 0)
		while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
			;
	for (int i = 0; i < ENV_TMP_MAX; i++)
		if (env_tmp[i][0] != 0) {
			if (env_hook[i] != NULL)
				env_run(env_hook[i]);
			env_rm_tree(env_tmp[i]);
			env_tmp[i][0] = 0;
		}
	/* die of the signal, so the caller's shell sees what happened */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
	raise(sig);
	errno = saved;
}

static void
env_at_exit(void)
{
	for (int i = 0; i < ENV_TMP_MAX; i++)
		if (env_tmp[i][0] != 0)
			bench_tmpdir_remove(env_tmp[i]);
}

int
bench_tmpdir_new(char *path, size_t cap, const char *prefix, char *const *hook)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
	const char *tmp = getenv("TMPDIR");
	int slot = -1;

	for (int i = 0; i < ENV_TMP_MAX && slot < 0; i++)
		if (env_tmp[i][0] == 0)
			slot = i;
	if (slot < 0 || tmp == NULL || tmp[0] == 0)
		tmp = slot < 0 ? NULL : "/tmp";
	if (tmp == NULL || (size_t)snprintf(path, cap, "%s/%s.XXXXXX", tmp, prefix) >= cap ||
	    strlen(path) >= sizeof(env_tmp[0])) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (!env_handlers) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = env_on_signal;
		sigfillset(&sa.sa_mask); /* one handler at a time */
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
			struct sigaction old;

			/* a signal the caller ignores (nohup, SIGPIPE under some shells) stays
			 * ignored */
			if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
				continue;
			sigaction(sigs[i], &sa, NULL);
		}
		atexit(env_at_exit);
		env_handlers = 1;
	}
	/* blocked while the slot is filled, so the handler sees the name whole */
	{
		sigset_t all, old;

		sigfillset(&all);
		sigprocmask(SIG_BLOCK, &all, &old);
		if (mkdtemp(path) == NULL) {
			int e = errno;

			sigprocmask(SIG_SETMASK, &old, NULL);
			errno = e;
			return -1;
		}
		snprintf(env_tmp[slot], sizeof(env_tmp[slot]), "%s", path);
		env_hook[slot] = hook;
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
	return 0;
}

void
bench_tmpdir_child(int pid)
{
	env_child = pid;
}

void
bench_tmpdir_remove(const char *path)
{
	sigset_t all, old;
	char copy[256];

	snprintf(copy, sizeof(copy), "%s", path); /* path may be env_tmp's own slot */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	for (int i = 0; i < ENV_TMP_MAX; i++)
		if (env_tmp[i][0] != 0 && strcmp(env_tmp[i], copy) == 0) {
			if (env_hook[i] != NULL)
				env_run(env_hook[i]);
			env_rm_tree(env_tmp[i]);
			env_tmp[i][0] = 0;
			env_hook[i] = NULL;
		}
	sigprocmask(SIG_SETMASK, &old, NULL);
}

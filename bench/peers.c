/* dime-bench peers: the same mail through `gpg --encrypt --sign`, one process per message as an
 * MTA would spawn it (Ed25519 signing key, Curve25519 encryption subkey, made by the bench in a
 * temporary GNUPGHOME), against our wrap + origin-sign per message, in process, one thread. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "fixture.h"

#define PEERS_MAX_SIZES 8

static char peers_home[256];
/* Run before GNUPGHOME is removed, at exit or on a signal: stop the agent gpg started there.
 * Filled once the directory exists; until then a no-op. */
static char peers_kill_cmd[400] = ":";
static char *const peers_kill[] = {"/bin/sh", "-c", peers_kill_cmd, NULL};

static void
peers_cleanup(void)
{
	if (peers_home[0] == 0)
		return;
	bench_tmpdir_remove(peers_home);
	peers_home[0] = 0;
}

static int
peers_usage(int status)
{
	fprintf(
	    status == 0 ? stdout : stderr,
	    "usage: dime-bench peers [--sizes LIST] [--count N] [--progress | --no-progress]\n"
	    "\n"
	    "The same mails through `gpg --encrypt --sign`, one process per message as an MTA\n"
	    "hook runs it (a temporary GNUPGHOME, removed at exit and on SIGINT/SIGTERM), against\n"
	    "dime wrap + origin-sign in process on one thread. Exits 77 without gpg.\n"
	    "\n"
	    "  --sizes LIST   mail sizes, 1k,10k,100k,1m or bytes (default: 1k,10k,100k,1m)\n"
	    "  --count N      gpg runs per size (default: 20); dime runs at least as many and\n"
	    "                 at least 0.5 s\n"
	    "  --progress     progress on stderr even when it is not a terminal (default: only\n"
	    "                 on a terminal); --no-progress: never\n");
	return status;
}

/* Run gpg with argv, mail on its stdin, output discarded. Returns: gpg's exit status, or -1. */
static int
peers_gpg(char *const argv[], const uint8_t *mail, size_t len)
{
	int fd[2], st = 0;
	pid_t pid;
	size_t off = 0;

	if (pipe(fd) != 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(fd[0], 0);
		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		close(fd[0]);
		close(fd[1]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(fd[0]);
	bench_tmpdir_child(pid);
	while (off < len) {
		ssize_t w = write(fd[1], mail + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	close(fd[1]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			bench_tmpdir_child(0);
			return -1;
		}
	bench_tmpdir_child(0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Make the key pair and return its fingerprint. */
static int
peers_keygen(char *fpr, size_t cap)
{
	char cmd[600], line[512];
	FILE *p;
	int rc = -1;

	snprintf(cmd, sizeof(cmd),
		 "gpg --homedir '%s' --batch --pinentry-mode loopback --passphrase '' "
		 "--quick-gen-key 'dime-bench <bench@alpha.example>' ed25519 sign never "
		 ">/dev/null 2>&1",
		 peers_home);
	if (system(cmd) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "gpg --homedir '%s' --batch --with-colons --list-keys 2>/dev/null", peers_home);
	if ((p = popen(cmd, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), p) != NULL)
		if (strncmp(line, "fpr:", 4) == 0 && rc != 0) {
			char *s = line + 4, *e;

			while (*s == ':')
				s++;
			if ((e = strchr(s, ':')) != NULL)
				*e = 0;
			snprintf(fpr, cap, "%.100s", s);
			rc = 0;
		}
	pclose(p);
	if (rc != 0)
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "gpg --homedir '%s' --batch --pinentry-mode loopback --passphrase '' "
		 "--quick-add-key %s cv25519 encr never >/dev/null 2>&1",
		 peers_home, fpr);
	return system(cmd) == 0 ? 0 : -1;
}

int
bench_peers_main(int argc, char **argv)
{
	size_t sizes[PEERS_MAX_SIZES], n_sizes = 0;
	const char *size_arg = "1k,10k,100k,1m";
	char buf[128], fpr[128];
	unsigned count = 20;
	struct bench_fix f;
	struct bench_progress pg;
	const char *why = "";
	int status = 1, rc, progress = -1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return peers_usage(0);
		if (strcmp(argv[i], "--progress") == 0 || strcmp(argv[i], "--no-progress") == 0) {
			progress = argv[i][2] == 'p';
			continue;
		}
		if (i + 1 >= argc)
			goto usage;
		if (strcmp(argv[i], "--sizes") == 0)
			size_arg = argv[++i];
		else if (strcmp(argv[i], "--count") == 0)
			count = (unsigned)atoi(argv[++i]);
		else
			goto usage;
	}
	snprintf(buf, sizeof(buf), "%s", size_arg);
	for (char *t = strtok(buf, ","); t != NULL; t = strtok(NULL, ",")) {
		if (n_sizes == PEERS_MAX_SIZES || (sizes[n_sizes] = bench_size_parse(t)) == 0)
			goto usage;
		n_sizes++;
	}
	if (count == 0 || n_sizes == 0)
		goto usage;
	if (system("command -v gpg >/dev/null 2>&1") != 0) {
		printf("dime-bench peers: gpg not found (install gnupg): skipped\n");
		return 77;
	}
	if ((rc = bench_fix_init(&f, &why)) != DIME_OK) {
		fprintf(stderr, "dime-bench peers: setup: %s: %s\n", why, dime_strerror(rc));
		return 1;
	}
	if (bench_tmpdir_new(peers_home, sizeof(peers_home), "dime-bench-gpg", peers_kill) != 0) {
		peers_home[0] = 0;
		perror("dime-bench peers: temporary GNUPGHOME");
		goto out;
	}
	snprintf(peers_kill_cmd, sizeof(peers_kill_cmd),
		 "gpgconf --homedir '%s' --kill gpg-agent >/dev/null 2>&1", peers_home);
	if (peers_keygen(fpr, sizeof(fpr)) != 0) {
		fprintf(stderr, "dime-bench peers: gpg key generation failed\n");
		goto out;
	}
	printf("dime-bench peers: %u messages per size; gpg %s (ed25519 + cv25519, one process "
	       "per message) vs dime wrap + origin-sign (in process, one thread)\n",
	       count, fpr);
	printf("%6s %12s %12s %10s %10s %8s\n", "size", "gpg msg/s", "dime msg/s", "gpg ms",
	       "dime ms", "ratio");
	fflush(stdout);
	bench_progress_init(&pg, progress, (double)n_sizes * 2);
	for (size_t s = 0; s < n_sizes; s++) {
		char *gargv[] = {"gpg",	      "--homedir",
				 peers_home,  "--batch",
				 "--yes",     "--quiet",
				 "--no-tty",  "--trust-model",
				 "always",    "--pinentry-mode",
				 "loopback",  "--passphrase",
				 "",	      "-u",
				 fpr,	      "-r",
				 fpr,	      "--output",
				 "/dev/null", "--encrypt",
				 "--sign",    NULL};
		uint8_t **mails = calloc(count, sizeof(*mails));
		uint64_t t0, t_gpg, t_dime;
		unsigned n_dime = 0;
		char sz[16], what[64];
		int ok = mails != NULL;

		bench_size_name(sz, sizeof(sz), sizes[s]);
		snprintf(what, sizeof(what), "%s: %u gpg processes", sz, count);
		bench_progress_step(&pg, what, 1);
		for (unsigned i = 0; ok && i < count; i++)
			ok = (mails[i] = bench_mail_new(sizes[s], 9000 + i)) != NULL;
		/* one unmeasured run each: gpg-agent starts, caches warm */
		if (ok && peers_gpg(gargv, mails[0], sizes[s]) != 0) {
			fprintf(stderr, "dime-bench peers: gpg --encrypt --sign failed\n");
			ok = 0;
		}
		t0 = bench_now_ns();
		for (unsigned i = 0; ok && i < count; i++)
			ok = peers_gpg(gargv, mails[i], sizes[s]) == 0;
		t_gpg = bench_now_ns() - t0;
		/* ours: at least as many messages, and at least half a second */
		snprintf(what, sizeof(what), "%s: dime wrap + origin-sign", sz);
		bench_progress_step(&pg, what, 1);
		t0 = bench_now_ns();
		while (ok && (n_dime < count || bench_now_ns() - t0 < 500000000u)) {
			const uint8_t *m = mails[n_dime % count];
			uint8_t *w = NULL, *sgn = NULL;
			size_t wl = 0, sl = 0;
			struct dime_msg_envelope env;

			rc = dime_msg_wrap_mail(f.ks, &w, &wl, &why, &f.p, f.author_key, m,
						sizes[s], NULL);
			if (rc == DIME_OK)
				rc = dime_msg_origin_sign(f.ks, &sgn, &sl, &env, &why, w, wl,
							  f.org_a_key, DIME_KS_NONE, &f.p);
			dime_msg_free(w, wl);
			dime_msg_free(sgn, sl);
			if (rc != DIME_OK) {
				fprintf(stderr, "dime-bench peers: wrap/origin-sign: %s\n", why);
				ok = 0;
			}
			n_dime++;
		}
		t_dime = bench_now_ns() - t0;
		for (unsigned i = 0; mails != NULL && i < count; i++)
			free(mails[i]);
		free(mails);
		if (!ok)
			goto out;
		bench_progress_end(&pg);
		{
			double g = (double)count / ((double)t_gpg / 1e9);
			double d = (double)n_dime / ((double)t_dime / 1e9);

			printf("%6s %12.1f %12.1f %10.2f %10.3f %7.1fx\n", sz, g, d, 1e3 / g,
			       1e3 / d, d / g);
			fflush(stdout);
		}
	}
	printf("ratio: dime msg/s / gpg msg/s (gpg pays a process start and an agent round trip "
	       "per message, as under an MTA)\n");
	status = 0;
out:
	bench_fix_fini(&f);
	peers_cleanup();
	return status;
usage:
	return peers_usage(2);
}

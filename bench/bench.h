#ifndef DIME_BENCH_BENCH_H
#define DIME_BENCH_BENCH_H
/* The dime-bench subcommands; each takes argv from its own name on and returns the exit
 * status (0 ok, 1 failure, 2 usage, 77 skipped). */

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

int bench_micro_main(int argc, char **argv);
int bench_capacity_main(int argc, char **argv);
int bench_peers_main(int argc, char **argv);
int bench_kernels_main(int argc, char **argv);
int bench_dmtp_main(int argc, char **argv);

/* bench/kernels.c: timing helpers for the kernel comparisons (bench/kern_*.c). */
double bench_kern_now(void);
/* Sorts v. Returns: the median of v[0..n). */
double bench_kern_median(double *v, size_t n);
/* Prints "<name> <base/ours>x vs <baseline>" and the medians behind it. */
void bench_kern_report(const char *name, const char *baseline, double ours_s, double base_s,
		       const char *unit_note);
/* bench/kern_aes.c: multi-buffer AES-256-CBC against OpenSSL (and libipsec-mb when built).
 * Returns: 0, or 1 when a kernel's output differs or setup fails. */
int bench_kern_aes(unsigned repeats);
/* bench/kern_b64.c: base64 of 1 MiB (dime_b64_encode/decode at the chosen SIMD level) against
 * EVP_EncodeBlock / EVP_DecodeBlock. Returns: 0, or 1 when outputs differ or setup fails. */
int bench_kern_b64(unsigned repeats);
/* bench/kern_ed.c: dime_ed25519_verify_batch in batches of 16 and 64 against libsodium's
 * crypto_sign_verify_detached one at a time, per signature, a key per signature and 4 keys per
 * batch ("_hotkey"). Returns: 0, or 1 when a valid signature fails or setup fails. */
int bench_kern_ed(unsigned repeats);

/* bench/env.c: the machine a run was measured on, for the JSON and the charts. */
struct bench_machine {
	char cpu[128];			   /* "model name" of /proc/cpuinfo, or "unknown" */
	char simd[32];			   /* the dispatch level in use (dime_simd()->name) */
	long cores;			   /* online CPUs */
	double load_start[3], load_end[3]; /* load averages (1, 5, 15 min); -1 unknown */
	char commit[48]; /* the commit built from (bench/commit.cmake), or "unknown" */
	char date[32];	 /* ISO 8601, UTC, at the start */
};
/* At the start of a run (after dime_global_init: it reads the SIMD level). */
void bench_machine_init(struct bench_machine *m);
/* At the end: the load average then. */
void bench_machine_end(struct bench_machine *m);
/* Writes the line `  "machine": {...},` of a JSON object. */
void bench_machine_json(FILE *f, const struct bench_machine *m);
/* One line in words for charts and tables. */
void bench_machine_line(char *out, size_t cap, const struct bench_machine *m);

/* Progress on stderr: on a terminal (mode -1), always (1) or never (0). total is the run's cost
 * in any unit; each step says what starts and what it costs in that unit. */
struct bench_progress {
	int on, tty;
	double total, done, t0;
};
void bench_progress_init(struct bench_progress *p, int mode, double total);
/* Prints "[ 42%] what; 1m03s elapsed, ETA 1m27s", then counts cost as done. */
void bench_progress_step(struct bench_progress *p, const char *what, double cost);
/* Clears the terminal line. */
void bench_progress_end(struct bench_progress *p);

/* Makes the private directory $TMPDIR/prefix.XXXXXX (TMPDIR unset: /tmp) into path, removed
 * with everything in it at exit, by bench_tmpdir_remove, or on SIGINT, SIGTERM, SIGHUP and
 * SIGPIPE (the process then dies of the signal). hook, if not NULL, is an argv (argv[0] an
 * absolute path, borrowed for good) run before the removal, e.g. to stop a gpg-agent.
 * Returns: 0, or -1 with errno. */
int bench_tmpdir_new(char *path, size_t cap, const char *prefix, char *const *hook);
void bench_tmpdir_remove(const char *path);
/* The child (pid, or 0 for none) to kill before the removal on a signal: one that writes into a
 * temporary directory, such as a gpg run. */
void bench_tmpdir_child(int pid);

#ifdef __cplusplus
}
#endif
#endif

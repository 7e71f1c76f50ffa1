#ifndef DIME_BENCH_BENCH_H
#define DIME_BENCH_BENCH_H
/* The dime-bench subcommands; each takes argv from its own name on and returns the exit
 * status (0 ok, 1 failure, 2 usage, 77 skipped). */

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

int bench_micro_main(int argc, char **argv);
int bench_capacity_main(int argc, char **argv);
int bench_peers_main(int argc, char **argv);
int bench_kernels_main(int argc, char **argv);

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

#ifdef __cplusplus
}
#endif
#endif

/* dime-bench kernels: each SIMD kernel against its baseline, in one run, one line per
 * comparison: "<name> <ratio>x vs <baseline>" followed by the medians behind it. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "dime/crypto.h"

double
bench_kern_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int
kern_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double
bench_kern_median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), kern_cmp);
	return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void
bench_kern_report(const char *name, const char *baseline, double ours_s, double base_s,
		  const char *unit_note)
{
	printf("%s %.2fx vs %s\n", name, ours_s > 0 ? base_s / ours_s : 0.0, baseline);
	printf("    median %s: ours %.3f us, %s %.3f us\n", unit_note, ours_s * 1e6, baseline,
	       base_s * 1e6);
}

int
bench_kernels_main(int argc, char **argv)
{
	unsigned repeats = 7;

	for (int i = 1; i < argc; i++) {
		int help = strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;

		if (strcmp(argv[i], "--repeats") == 0 && i + 1 < argc) {
			repeats = (unsigned)strtoul(argv[++i], NULL, 10);
		} else {
			fprintf(help ? stdout : stderr,
				"usage: dime-bench kernels [--repeats R]\n\n"
				"Each SIMD kernel against its baseline at the dispatched level "
				"(DIME_SIMD=base|avx2 caps\nit): multi-buffer AES-256-CBC, "
				"base64, batched Ed25519 verify. One line per\ncomparison, "
				"\"<name> <ratio>x vs <baseline>\", then the medians behind it.\n\n"
				"  --repeats R   timed runs per kernel, the median is kept "
				"(default: 7; "
				"1 to 1000)\n");
			return help ? 0 : 2;
		}
	}
	if (repeats == 0 || repeats > 1000)
		repeats = 7;
	if (dime_global_init() != DIME_OK) {
		fprintf(stderr, "dime-bench: init failed\n");
		return 1;
	}
	/* Each kernel family adds its comparisons here (bench/kern_*.c). */
	int rc = bench_kern_aes(repeats);
	rc |= bench_kern_b64(repeats);
	rc |= bench_kern_ed(repeats);
	return rc;
}

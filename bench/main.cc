// dime-bench: micro (Google Benchmark), capacity (the batch pipeline against the crypto
// floor), peers (gpg per message against wrap + origin-sign). docs/capacity.md explains each.

#include <cstdio>
#include <cstring>

#include "bench.h"
#include "dime/rng.h"

static const char usage[] =
    "usage: dime-bench micro [google benchmark flags]\n"
    "       dime-bench capacity [--ops wrap,origin-sign,accept,open,bounce-verify,rekey]\n"
    "                           [--sizes 1k,10k,100k,1m] [--workers 1..N] [--seconds S]\n"
    "                           [--repeats R] [--out DIR] [--no-batching] [--progress]\n"
    "       dime-bench capacity --recommend [--ops OP] [--sizes SIZE] [--batches 1,8,16,32,64]\n"
    "       dime-bench peers [--sizes 1k,10k,100k,1m] [--count N] [--progress]\n"
    "       dime-bench kernels [--repeats R]\n"
    "       dime-bench dmtp [--clients 1,8,64] [--count N] [--size SIZE] [--idle N]\n"
    "       dime-bench COMMAND --help: what it does, every option and its default\n";

int
main(int argc, char **argv)
{
	if (dime_pl_rng_install() != DIME_OK) // the engine's randomness, before any thread
		return 2;
	if (argc < 2 || std::strcmp(argv[1], "-h") == 0 || std::strcmp(argv[1], "--help") == 0) {
		std::fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (std::strcmp(argv[1], "micro") == 0)
		return bench_micro_main(argc - 1, argv + 1);
	if (std::strcmp(argv[1], "capacity") == 0)
		return bench_capacity_main(argc - 1, argv + 1);
	if (std::strcmp(argv[1], "peers") == 0)
		return bench_peers_main(argc - 1, argv + 1);
	if (std::strcmp(argv[1], "kernels") == 0)
		return bench_kernels_main(argc - 1, argv + 1);
	if (std::strcmp(argv[1], "dmtp") == 0)
		return bench_dmtp_main(argc - 1, argv + 1);
	std::fprintf(stderr, "dime-bench: unknown command %s\n%s", argv[1], usage);
	return 2;
}

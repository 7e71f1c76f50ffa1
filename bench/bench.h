#ifndef DIME_BENCH_BENCH_H
#define DIME_BENCH_BENCH_H
/* The dime-bench subcommands; each takes argv from its own name on and returns the exit
 * status (0 ok, 1 failure, 2 usage, 77 skipped). */

#ifdef __cplusplus
extern "C" {
#endif

int bench_micro_main(int argc, char **argv);
int bench_capacity_main(int argc, char **argv);
int bench_peers_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif

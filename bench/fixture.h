#ifndef DIME_BENCH_FIXTURE_H
#define DIME_BENCH_FIXTURE_H
/* What every dime-bench command shares: two organisations and two users built in memory with
 * the signet_create API (as tests/unit/test_msg.c does), generated mail, each operation's input
 * derived from it, one in-process run of each operation, and a temporary store holding the
 * parties the way `dime org create` / `dime user create` store them. */

#include <stddef.h>
#include <stdint.h>

#include "dime/keys.h"
#include "dime/msg.h"
#include "dime/signet.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BENCH_ORG_A  "alpha.example"
#define BENCH_ORG_B  "beta.example"
#define BENCH_AUTHOR "alice@alpha.example"
#define BENCH_RECIP  "bob@beta.example"

/* The operations the benches time, in table order. */
enum bench_op {
	BENCH_WRAP = 0,		 /* mail -> author output (dime_msg_wrap_mail) */
	BENCH_ORIGIN_SIGN = 1,	 /* author output -> signed (dime_msg_origin_sign) */
	BENCH_ACCEPT = 2,	 /* signed -> verdict (dime_msg_accept) */
	BENCH_OPEN = 3,		 /* signed -> opened, as the recipient (dime_msg_open) */
	BENCH_BOUNCE_VERIFY = 4, /* bounce object -> verdict (dime_msg_bounce_verify) */
	BENCH_REKEY = 5, /* signed -> re-keyed for the recipient's next signet (dime_msg_rekey) */
	BENCH_N_OPS = 6
};

/* Returns: "wrap", "origin-sign", "accept", "open", "bounce-verify", "rekey". */
const char *bench_op_name(enum bench_op op);
/* Returns: the op, or -1 for an unknown name. */
int bench_op_parse(const char *name);

struct bench_fix {
	struct dime_ks *ks;
	uint32_t org_a_key, org_b_key, author_key, recip_key; /* DIME_KEY_ORG / DIME_KEY_USER */
	struct dime_signet *org_a, *org_b, *author, *recip;
	uint32_t recip2_key;	    /* the recipient's rotated keys (rekey's target) */
	struct dime_signet *recip2; /* its next signet, custody signed by recip_key */
	struct dime_msg_parties p;  /* author, origin (a), destination (b), recipient */
};

/* dime_global_init, keys and signets. Returns: DIME_OK or an engine error (*why says where). */
int bench_fix_init(struct bench_fix *f, const char **why);
void bench_fix_fini(struct bench_fix *f);

/* A plain-text RFC 5322 mail of exactly size bytes (headers + body of pseudo-English words,
 * CRLF lines), distinct for each seed. Returns: malloc'd bytes, or NULL (no memory). */
uint8_t *bench_mail_new(size_t size, uint64_t seed);

/* The input op takes for this mail: the mail itself (wrap), the author output (origin-sign),
 * the origin-signed message (accept, open, rekey), the destination's bounce with display chunks
 * (bounce-verify). Returns: DIME_OK or the failing engine call's error.
 * Out: *out (malloc'd), *out_len. */
int bench_input_new(const struct bench_fix *f, uint8_t **out, size_t *out_len, enum bench_op op,
		    const uint8_t *mail, size_t mail_len);

/* Run op once on its input, in process, with the engine API the pipeline calls.
 * Returns: DIME_OK or the engine's error. Out: *out_len, the output size (0 for verdicts). */
int bench_op_run(const struct bench_fix *f, size_t *out_len, enum bench_op op, const uint8_t *in,
		 size_t in_len);

/* Create a store at dir/dime.db holding both orgs (key + signet) and both users (key +
 * signet), hosted, as `dime org create` / `dime user create` write them.
 * Returns: DIME_OK or the store's error. */
int bench_store_fill(const struct bench_fix *f, const char *path);

/* "1k" "10k" "100k" "1m" "4096" -> bytes. Returns: 0 for a bad size. */
size_t bench_size_parse(const char *s);
/* 1024 -> "1k", 1048576 -> "1m", else the number. */
void bench_size_name(char *out, size_t cap, size_t size);

/* Monotonic nanoseconds. */
uint64_t bench_now_ns(void);

#ifdef __cplusplus
}
#endif
#endif

#ifndef DIME_TOOLS_CLI_H
#define DIME_TOOLS_CLI_H
/* Shared plumbing of the dime CLI: exit codes, input loading, output, store access. */

#include <stddef.h>
#include <stdint.h>

#include "dime/keys.h"
#include "dime/mrec.h"
#include "dime/signet.h"
#include "dime/store.h"

/* Exit codes: 0 success / valid / accept, 1 invalid / reject / refused, 2 usage or I/O. */
enum { CLI_OK = 0, CLI_NO = 1, CLI_ERR = 2 };

/* Global options, set by main before a command runs. */
struct cli {
	const char *store_path; /* NULL: $DIME_STORE or ./var/dime.db */
	const char *prog;
};
extern struct cli cli;

/* One subcommand: name, one-line summary, handler (argv[0] is the command name). */
struct cli_cmd {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
};

/* Print to stderr "dime: " + message and return CLI_ERR / CLI_NO. */
int cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_no(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Dispatch argv[1] among cmds (argv[0] is the group name). */
int cli_dispatch(const char *group, const struct cli_cmd *cmds, int argc, char **argv);

/* Does argv hold -h/--help? Then print usage (stdout) and return 1. */
int cli_wants_help(int argc, char **argv, const char *usage);

/* Read a whole file ("-" = stdin) up to max bytes. Prints the error. Returns CLI_OK/CLI_ERR. */
int cli_read(uint8_t **buf, size_t *len, const char *path, size_t max);

/* Load a signet file (armored or binary). Prints the reason on failure.
 * Returns: CLI_OK, CLI_NO (not a valid signet), CLI_ERR (I/O). */
int cli_load_signet(struct dime_signet **s, const char *path);

/* Open the store (cli.store_path), creating it when missing. Prints the error. */
int cli_store(struct dime_store **st);
/* The same for commands that only read: a missing store is "no store at PATH" (CLI_ERR) and is
 * not created. */
int cli_store_existing(struct dime_store **st);

/* Lower-case ASCII copy of s into out (cap). Returns 0, or -1 if it does not fit. */
int cli_lower(char *out, size_t cap, const char *s);

/* The domain part of an address (after the last '@'), or NULL. */
const char *cli_domain_of(const char *address);

/* Names for enums. */
const char *cli_type_name(enum dime_signet_type t);
const char *cli_level_name(enum dime_signet_level l);

/* Informational options shared by org create and user create: parse one option into info.
 * Returns 1 if the option was consumed, 0 if it is not an info option, -1 on a bad value. */
struct cli_info {
	struct dime_signet_info items[64];
	size_t n;
};
int cli_info_option(struct cli_info *info, const char *opt, const char *val);
extern const char cli_info_usage[];

/* Print a signet's fields with the spec's labels (dime signet show). */
void cli_print_signet(const struct dime_signet *s);

/* Validate s; the verdict is in *v. */
void cli_validate(struct dime_signet_verdict *v, const struct dime_signet *s,
		  const struct dime_signet_trust *trust);

/* Print a signet armored to stdout. Returns CLI_OK or CLI_ERR. */
int cli_print_armored(const struct dime_signet *s);

/* Fetch the latest stored signet of ident (org or user). Returns CLI_OK, CLI_NO (absent), CLI_ERR.
 */
int cli_store_signet(struct dime_signet **s, struct dime_store *st, const char *ident,
		     enum dime_store_kind kind, uint32_t version);

/* Load the latest key of (ident, kind) from the store into ks. Returns CLI_OK, CLI_NO, CLI_ERR. */
int cli_store_key(uint32_t *id, struct dime_ks *ks, struct dime_store *st, const char *ident,
		  enum dime_store_kind kind);

/* Print a management record as a zone-file line with TXT strings split at field bounds. */
int cli_print_txt(const char *domain, const char *rec);

/* Record options (--dx --syn --exp --pol --sub) into m. Returns 1 consumed, 0 not ours, -1 bad. */
/* Join the TXT strings of one management record as a resolver does: bare strings or zone-file
 * quoted strings in argv[first..argc), optionally after the `OWNER [TTL] [CLASS] TXT` that
 * `org create` prints. Returns: the record (caller frees; *len its length), or NULL with *why. */
char *cli_mrec_join(int argc, char **argv, int first, size_t *len, const char **why);

int org_record_option(struct dime_mrec *m, const char *opt, const char *val);
/* Generate the record for m and print it as a zone line. */
int org_print_record(const char *domain, const struct dime_mrec *m);

/* Command groups. */
int cmd_org(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_store(int argc, char **argv);
int cmd_signet(int argc, char **argv);
int cmd_mrec(int argc, char **argv);
struct dime_dconf;
/* Tell a dimed running on c (its pid file) to rescan its outbound queue (SIGUSR1): after
 * `dime send` and `dime queue retry|delete`. Never an error: without dimed the queue waits. */
void cli_outq_notify(const struct dime_dconf *c);
/* The same, silent and thread-safe: DIME_OK (*pid signalled), DIME_E_NOTFOUND (no dimed runs),
 * DIME_E_IO (why). */
int cli_outq_signal(const struct dime_dconf *c, long *pid, char *why, size_t cap);
/* Fetch and validate target's signets (an address: the user's and its org's; a domain: the
 * org's) with the signet resolver (dime/sigfetch.h) over c's DNS and ports, into c's store.
 * Returns DIME_OK, or the resolver's failure with why (cap octets). */
int cli_fetch_signets(const struct dime_dconf *c, const char *target, char *why, size_t cap);

int cmd_conformance(int argc, char **argv);
int cmd_msg(int argc, char **argv);
int cmd_batch(int argc, char **argv);
int cmd_dmtp(int argc, char **argv);
int cmd_resolve(int argc, char **argv);
int cmd_queue(int argc, char **argv);
int cmd_send(int argc, char **argv);

#endif

/* dime: the command-line face of dime-opa. Thin: parse arguments, call the libraries, print. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "dime/crypto.h"
#include "dime/rng.h"

struct cli cli;

static const struct cli_cmd main_cmds[] = {
    {"org", "create hosted organisations (keys, signet, _dime record)", cmd_org},
    {"user", "create hosted users (keys, SSR, signet)", cmd_user},
    {"store", "import into and list the embedded store", cmd_store},
    {"signet", "show, verify, fingerprint and split signets", cmd_signet},
    {"mrec", "check and generate _dime management records", cmd_mrec},
    {"msg", "D/MIME: wrap, origin-sign, accept, open, dump", cmd_msg},
    {"batch", "run a msg operation over a directory, Maildir or mbox with workers", cmd_batch},
    {"dmtp", "talk to a DMTP server: send, sgnt, hist, vrfy, raw", cmd_dmtp},
    {"resolve", "find and validate a domain's management record (DNSSEC) and its signets",
     cmd_resolve},
    {"send", "wrap mail to other DIME domains and queue it for dimed", cmd_send},
    {"queue", "list, show, retry and delete messages of the outbound queue", cmd_queue},
    {"conformance", "run the interop vectors of a folder", cmd_conformance},
    {NULL, NULL, NULL},
};

static void
main_usage(FILE *f)
{
	fprintf(f, "usage: dime [--store PATH] COMMAND ...\n\n"
		   "options:\n"
		   "  --store PATH   the embedded store (default $DIME_STORE, else ./var/dime.db)\n"
		   "  --version      print the version\n"
		   "  -h, --help     this help; every command takes --help too\n\ncommands:\n");
	for (const struct cli_cmd *c = main_cmds; c->name != NULL; c++)
		fprintf(f, "  %-12s %s\n", c->name, c->summary);
}

/* The passphrase of a passphrase-sealed store, asked on the terminal (stdin) without echo.
 * Read byte by byte from the descriptor: stdio would keep a copy in its buffer. */
static int
main_passphrase(char *buf, size_t cap, const char *store_path, void *arg)
{
	struct termios old, quiet;
	size_t n = 0;
	int rc = DIME_E_IO, toolong = 0;

	(void)arg;
	memset(buf, 0, cap);
	if (cap < 2 || !isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &old) != 0)
		return DIME_E_NOTFOUND;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	/* Echo goes off (and type-ahead is dropped) before the prompt shows, so nothing typed
	 * after the prompt can be echoed. */
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0)
		return DIME_E_NOTFOUND;
	fprintf(stderr, "passphrase for store %s: ", store_path);
	fflush(stderr);
	for (;;) {
		char c;
		ssize_t r = read(STDIN_FILENO, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break; /* end of input: take what was typed */
		if (c == '\n') {
			rc = DIME_OK;
			break;
		}
		if (n + 1 >= cap) { /* too long: refuse rather than cut */
			toolong = 1;
			continue;
		}
		buf[n++] = c;
		c = 0;
	}
	if (n > 0)
		rc = DIME_OK;
	if (toolong)
		rc = DIME_E_INVALID;
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	fputc('\n', stderr);
	if (rc != DIME_OK)
		dime_wipe(buf, cap);
	return rc;
}

int
main(int argc, char **argv)
{
	int i = 1, rc;

	cli.prog = "dime";
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "--store") == 0 && i + 1 < argc) {
			cli.store_path = argv[i + 1];
			i += 2;
		} else if (strncmp(argv[i], "--store=", 8) == 0) {
			cli.store_path = argv[i] + 8;
			i++;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			main_usage(stdout);
			return CLI_OK;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("dime (dime-opa) 0.1.0\n");
			return CLI_OK;
		} else {
			fprintf(stderr, "dime: unknown option %s\n", argv[i]);
			main_usage(stderr);
			return CLI_ERR;
		}
	}
	if (i >= argc) {
		main_usage(stderr);
		return CLI_ERR;
	}
	if (dime_pl_rng_install() != DIME_OK || dime_global_init() != 0) { /* RNG: before threads */
		fprintf(stderr, "dime: cannot initialise the crypto libraries\n");
		return CLI_ERR;
	}
	/* before any command starts threads */
	dime_store_set_passphrase_fn(main_passphrase, NULL);
	for (const struct cli_cmd *c = main_cmds; c->name != NULL; c++)
		if (strcmp(argv[i], c->name) == 0) {
			rc = c->run(argc - i, argv + i);
			if (fflush(stdout) != 0) {
				perror("dime: stdout");
				return CLI_ERR;
			}
			return rc;
		}
	fprintf(stderr, "dime: unknown command '%s'\n", argv[i]);
	main_usage(stderr);
	return CLI_ERR;
}

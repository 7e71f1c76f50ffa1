/* dime signet show / verify / fingerprint / split. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dime/codec.h"
#include "dime/mrec.h"

static const char show_usage[] =
    "usage: dime signet show FILE\n"
    "\n"
    "Prints every field of a signet or SSR (armored or binary) with the spec's labels, the\n"
    "informational fields decoded, and its fingerprints. Nothing is verified.\n";
static const char verify_usage[] =
    "usage: dime signet verify FILE [--org FILE] [--previous FILE] [--pok B64]...\n"
    "                          [--mrec RECORD]\n"
    "\n"
    "Validates a signet or SSR and prints VALID <kind> <level> or INVALID <reason>.\n"
    "  --org FILE       the org signet a user signet is checked against (POK or a SOK\n"
    "                   allowed to sign signets)\n"
    "  --previous FILE  the previous signet of this user, for the custody signature\n"
    "  --pok B64        a POK from the org's management record (org signets)\n"
    "  --mrec RECORD    take the POKs from a management record instead\n"
    "Exit status: 0 valid, 1 invalid, 2 usage or I/O error.\n";
static const char fp_usage[] =
    "usage: dime signet fingerprint [--kind ssr|crypto|full|id] FILE\n"
    "\n"
    "Prints the fingerprint (SHA-512, unpadded base64) of a signet. Default: full for\n"
    "signets, ssr for SSRs.\n";
static const char split_usage[] =
    "usage: dime signet split --crypto|--full [--binary] FILE\n"
    "\n"
    "Prints the signet cut after its crypto signature (org field 4, user field 6) or after\n"
    "its full signature (253), armored unless --binary.\n";

static const struct {
	const char *name;
	enum dime_fp_kind kind;
} signet_fp_kinds[] = {
    {"ssr", DIME_FP_SSR}, {"crypto", DIME_FP_CRYPTO}, {"full", DIME_FP_FULL}, {"id", DIME_FP_ID}};

/* One positional FILE among options with values. Returns the file or NULL (usage printed). */
static const char *
signet_one_file(int argc, char **argv, const char *const *valued, const char *usage)
{
	const char *file = NULL;

	for (int i = 1; i < argc; i++) {
		int takes = 0;

		for (const char *const *v = valued; *v != NULL; v++)
			if (strcmp(argv[i], *v) == 0)
				takes = 1;
		if (takes) {
			i++;
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1] != 0)
			continue;
		if (file != NULL) {
			cli_err("one FILE only\n%s", usage);
			return NULL;
		}
		file = argv[i];
	}
	if (file == NULL)
		cli_err("FILE missing\n%s", usage);
	return file;
}

static int
signet_show(int argc, char **argv)
{
	static const char *const valued[] = {NULL};
	struct dime_signet *s = NULL;
	const char *file;
	int rc;

	if (cli_wants_help(argc, argv, show_usage))
		return CLI_OK;
	if ((file = signet_one_file(argc, argv, valued, show_usage)) == NULL)
		return CLI_ERR;
	if ((rc = cli_load_signet(&s, file)) != CLI_OK)
		return rc;
	cli_print_signet(s);
	for (size_t i = 0; i < sizeof(signet_fp_kinds) / sizeof(signet_fp_kinds[0]); i++) {
		char fp[DIME_FP_B64_LEN + 1];

		if (dime_signet_fingerprint_b64(fp, s, signet_fp_kinds[i].kind) == DIME_OK)
			printf("fingerprint %-6s %s\n", signet_fp_kinds[i].name, fp);
	}
	dime_signet_free(s);
	return CLI_OK;
}

static int
signet_verify(int argc, char **argv)
{
	static const char *const valued[] = {"--org", "--previous", "--pok", "--mrec", NULL};
	uint8_t poks[DIME_MREC_MAX_VALUES][DIME_ED25519_PUB_BYTES];
	struct dime_signet *s = NULL, *org = NULL, *prev = NULL;
	struct dime_signet_trust trust;
	struct dime_signet_verdict v;
	const char *file, *org_file = NULL, *prev_file = NULL;
	size_t n_poks = 0;
	int rc = CLI_ERR;

	memset(&trust, 0, sizeof(trust));
	if (cli_wants_help(argc, argv, verify_usage))
		return CLI_OK;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];

		if (o[0] != '-' || o[1] == 0)
			continue;
		if (i + 1 >= argc)
			return cli_err("signet verify: %s needs a value\n%s", o, verify_usage);
		if (strcmp(o, "--org") == 0) {
			org_file = argv[i + 1];
		} else if (strcmp(o, "--previous") == 0) {
			prev_file = argv[i + 1];
		} else if (strcmp(o, "--pok") == 0) {
			size_t n = 0;

			if (n_poks >= DIME_MREC_MAX_VALUES ||
			    dime_b64_decode(poks[n_poks], DIME_ED25519_PUB_BYTES, &n, argv[i + 1],
					    strlen(argv[i + 1]), DIME_B64_NOPAD) != DIME_OK ||
			    n != DIME_ED25519_PUB_BYTES)
				return cli_err("signet verify: --pok needs 43 base64 characters");
			n_poks++;
		} else if (strcmp(o, "--mrec") == 0) {
			struct dime_mrec m;
			const char *why = "";
			size_t len = 0;
			char *rec = cli_mrec_join(i + 2, argv, i + 1, &len, &why);

			/* the record alone or the whole TXT line `org create` prints */
			if (rec == NULL)
				return cli_err("signet verify: --mrec: %s", why);
			if (dime_mrec_parse(&m, &why, rec, len) != DIME_OK) {
				free(rec);
				return cli_err("signet verify: --mrec: %s", why);
			}
			free(rec);
			for (size_t k = 0; k < m.n_poks && n_poks < DIME_MREC_MAX_VALUES; k++)
				memcpy(poks[n_poks++], m.poks[k], DIME_ED25519_PUB_BYTES);
		} else {
			return cli_err("signet verify: unknown option %s\n%s", o, verify_usage);
		}
		i++;
	}
	if ((file = signet_one_file(argc, argv, valued, verify_usage)) == NULL)
		return CLI_ERR;
	/* The trust inputs must load; a bad one is a usage problem, not a verdict. */
	if (org_file != NULL && cli_load_signet(&org, org_file) != CLI_OK)
		goto out;
	if (prev_file != NULL && cli_load_signet(&prev, prev_file) != CLI_OK)
		goto out;
	{
		uint8_t *buf = NULL;
		size_t len = 0;
		const char *why = "";
		int e;

		if (cli_read(&buf, &len, file, DIME_SIGNET_MAX_BYTES * 2) != CLI_OK)
			goto out;
		e = dime_signet_load(&s, &why, buf, len);
		free(buf);
		if (e != DIME_OK) {
			printf("INVALID %s%s%s\n", dime_strerror(e), *why ? ": " : "", why);
			rc = CLI_NO;
			goto out;
		}
	}
	trust.poks = (const uint8_t(*)[DIME_ED25519_PUB_BYTES])poks;
	trust.n_poks = n_poks;
	trust.org = org;
	trust.previous = prev;
	if (dime_signet_validate(&v, s, &trust) == DIME_OK && v.kind == DIME_SIGNET_VALID) {
		printf("VALID %s %s\n", cli_type_name(dime_signet_type(s)),
		       cli_level_name(v.level));
		rc = CLI_OK;
	} else {
		printf("INVALID %s%s\n",
		       v.kind == DIME_SIGNET_BROKEN_CUSTODY ? "broken custody: " : "", v.reason);
		rc = CLI_NO;
	}
out:
	dime_signet_free(s);
	dime_signet_free(org);
	dime_signet_free(prev);
	return rc;
}

static int
signet_fingerprint(int argc, char **argv)
{
	static const char *const valued[] = {"--kind", NULL};
	struct dime_signet *s = NULL;
	const char *file, *kind_name = NULL;
	char fp[DIME_FP_B64_LEN + 1];
	enum dime_fp_kind kind = DIME_FP_FULL;
	int rc;

	if (cli_wants_help(argc, argv, fp_usage))
		return CLI_OK;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--kind") == 0 && i + 1 < argc)
			kind_name = argv[++i];
		else if (argv[i][0] == '-' && argv[i][1] != 0)
			return cli_err("signet fingerprint: unknown option %s\n%s", argv[i],
				       fp_usage);
	}
	if (kind_name != NULL) {
		size_t k;

		for (k = 0; k < sizeof(signet_fp_kinds) / sizeof(signet_fp_kinds[0]); k++)
			if (strcmp(kind_name, signet_fp_kinds[k].name) == 0)
				break;
		if (k == sizeof(signet_fp_kinds) / sizeof(signet_fp_kinds[0]))
			return cli_err("signet fingerprint: --kind is ssr, crypto, full or id");
		kind = signet_fp_kinds[k].kind;
	}
	if ((file = signet_one_file(argc, argv, valued, fp_usage)) == NULL)
		return CLI_ERR;
	if ((rc = cli_load_signet(&s, file)) != CLI_OK)
		return rc;
	if (kind_name == NULL && dime_signet_type(s) == DIME_SIGNET_SSR)
		kind = DIME_FP_SSR;
	rc = dime_signet_fingerprint_b64(fp, s, kind);
	if (rc == DIME_OK)
		printf("%s\n", fp);
	else
		rc = cli_no("signet fingerprint: %s has no %s fingerprint",
			    cli_type_name(dime_signet_type(s)), kind_name ? kind_name : "full");
	dime_signet_free(s);
	return rc == DIME_OK ? CLI_OK : rc;
}

static int
signet_split(int argc, char **argv)
{
	static const char *const valued[] = {NULL};
	struct dime_signet *s = NULL, *part = NULL;
	enum dime_signet_level at = DIME_LEVEL_NONE;
	const char *file;
	int binary = 0, rc, e;

	if (cli_wants_help(argc, argv, split_usage))
		return CLI_OK;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--crypto") == 0 || strcmp(argv[i], "--full") == 0) {
			if (at != DIME_LEVEL_NONE)
				return cli_err("signet split: one of --crypto or --full\n%s",
					       split_usage);
			at = argv[i][2] == 'c' ? DIME_LEVEL_CRYPTO : DIME_LEVEL_FULL;
		} else if (strcmp(argv[i], "--binary") == 0) {
			binary = 1;
		} else if (argv[i][0] == '-' && argv[i][1] != 0) {
			return cli_err("signet split: unknown option %s\n%s", argv[i], split_usage);
		}
	}
	if (at == DIME_LEVEL_NONE)
		return cli_err("signet split: --crypto or --full\n%s", split_usage);
	if ((file = signet_one_file(argc, argv, valued, split_usage)) == NULL)
		return CLI_ERR;
	if ((rc = cli_load_signet(&s, file)) != CLI_OK)
		return rc;
	e = dime_signet_split(&part, s, at);
	if (e != DIME_OK) {
		rc = cli_no("signet split: %s: no %s signature to split at", file,
			    at == DIME_LEVEL_CRYPTO ? "crypto" : "full");
	} else if (binary) {
		struct dime_view b = dime_signet_bytes(part);

		rc = fwrite(b.p, 1, b.len, stdout) == b.len ? CLI_OK
							    : cli_err("stdout: write failed");
	} else {
		rc = cli_print_armored(part);
	}
	dime_signet_free(part);
	dime_signet_free(s);
	return rc;
}

int
cmd_signet(int argc, char **argv)
{
	static const struct cli_cmd cmds[] = {
	    {"show", "print a signet's fields and fingerprints", signet_show},
	    {"verify", "validate a signet: VALID <kind> <level> or INVALID <reason>",
	     signet_verify},
	    {"fingerprint", "print a fingerprint", signet_fingerprint},
	    {"split", "cut a signet at its crypto or full signature", signet_split},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch("signet", cmds, argc, argv);
}

/* dime user create: a hosted user's keys and SSR, signed into a user signet by the org when the
 * org's keys are in the store; --rotate links the new signet to the previous one by custody. */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dime/dconf.h"
#include "dime/privsep.h"

static const char user_create_usage[] =
    "usage: dime [--store PATH] user create ADDRESS [--rotate] [info]\n"
    "\n"
    "Generates the user's keys and signet signing request (SSR). When the store holds the\n"
    "keys of the address's organisation, the org signs the SSR into a user signet with its\n"
    "POK. Prints the signet (or the SSR) armored.\n"
    "\n"
    "  --rotate   replace an existing user's keys: the new SSR carries a custody signature\n"
    "             by the previous signing key. A dimed running on this store (found through\n"
    "             STORE.dimed.pid) is told to reload its keys (SIGHUP): no restart\n";

/* Tell a dimed serving this store that its keys changed. The rotation is committed whatever
 * happens here: a failure is reported, never an error of the command. */
static void
user_notify_dimed(const char *store_path)
{
	char pidfile[4096], why[512];
	pid_t pid = 0;
	int n = snprintf(pidfile, sizeof(pidfile), "%s%s", store_path, DIME_DCONF_PID_SUFFIX);
	int rc;

	if (n < 0 || (size_t)n >= sizeof(pidfile))
		return;
	rc = dime_privsep_pid_signal(&pid, pidfile, SIGHUP, why, sizeof(why));
	if (rc == DIME_OK)
		fprintf(stderr, "dime: signalled dimed (pid %ld) to reload its keys\n", (long)pid);
	else if (rc == DIME_E_IO)
		fprintf(stderr,
			"dime: warning: %s; send the running dimed SIGHUP to load the new keys\n",
			why);
	/* NOTFOUND: no dimed runs on this store; nothing to say */
}

static int
user_create(int argc, char **argv)
{
	struct cli_info info = {.n = 0};
	struct dime_store *st = NULL;
	struct dime_ks *ks = NULL;
	struct dime_signet *ssr = NULL, *signet = NULL, *prev = NULL, *org = NULL;
	uint32_t user_key = DIME_KS_NONE, prev_key = DIME_KS_NONE, org_key = DIME_KS_NONE;
	const char *arg = NULL, *domain;
	char address[256], fp[DIME_FP_B64_LEN + 1];
	uint8_t keybuf[DIME_KEYFILE_MAX_BYTES];
	size_t keylen = 0;
	int rotate = 0, rc = CLI_ERR, e;

	if (cli_wants_help(argc, argv, user_create_usage)) {
		fputs(cli_info_usage, stdout);
		return CLI_OK;
	}
	for (int i = 1; i < argc; i++) {
		int r;

		if (strcmp(argv[i], "--rotate") == 0) {
			rotate = 1;
		} else if (argv[i][0] != '-') {
			if (arg != NULL)
				return cli_err("user create: one ADDRESS only\n%s",
					       user_create_usage);
			arg = argv[i];
		} else if (i + 1 < argc &&
			   (r = cli_info_option(&info, argv[i], argv[i + 1])) != 0) {
			if (r < 0)
				return cli_err("user create: bad value for %s", argv[i]);
			i++;
		} else {
			return cli_err("user create: unknown option %s\n%s", argv[i],
				       user_create_usage);
		}
	}
	if (arg == NULL)
		return cli_err("user create: ADDRESS missing\n%s", user_create_usage);
	if (cli_lower(address, sizeof(address), arg) != 0 ||
	    (domain = cli_domain_of(address)) == NULL)
		return cli_err("user create: '%s' is not an address (local@domain)", arg);
	if (cli_store(&st) != CLI_OK)
		return CLI_ERR;
	if (dime_ks_new(&ks) != DIME_OK) {
		rc = cli_err("out of memory");
		goto out;
	}
	/* One transaction from reading the previous version to the last put: concurrent creators
	 * of one address queue on the write lock, so one creates it and the others see it exists,
	 * and concurrent rotations each link to the version stored just before theirs. */
	if ((e = dime_store_begin(st)) != DIME_OK)
		goto store_fail;
	/* The previous version, signet or SSR, is what custody links to. */
	e = cli_store_signet(&prev, st, address, DIME_STORE_USER_SIGNET, 0);
	if (e == CLI_NO)
		e = cli_store_signet(&prev, st, address, DIME_STORE_SSR, 0);
	if (e == CLI_ERR)
		goto out;
	if (prev != NULL && !rotate) {
		rc = cli_no("user create: %s exists; use --rotate to replace its keys", address);
		goto out;
	}
	if (rotate) {
		if (prev == NULL) {
			rc = cli_no("user create: --rotate: %s has no previous signet in the store",
				    address);
			goto out;
		}
		e = cli_store_key(&prev_key, ks, st, address, DIME_STORE_USER_KEY);
		if (e != CLI_OK) {
			rc = e == CLI_NO
				 ? cli_no("user create: --rotate: the previous keys of %s are "
					  "not in the store",
					  address)
				 : e;
			goto out;
		}
	}
	if (dime_ks_generate(ks, &user_key, DIME_KEY_USER) != DIME_OK ||
	    (e = dime_signet_ssr_create(&ssr, ks, user_key, prev_key)) != DIME_OK) {
		rc = cli_err("user create: cannot build the SSR");
		goto out;
	}
	e = cli_store_key(&org_key, ks, st, domain, DIME_STORE_ORG_KEY);
	if (e == CLI_ERR)
		goto out;
	if (e == CLI_OK) {
		if (cli_store_signet(&org, st, domain, DIME_STORE_ORG_SIGNET, 0) != CLI_OK) {
			rc =
			    cli_err("user create: the store has keys but no signet for %s", domain);
			goto out;
		}
		e = dime_signet_ssr_sign(&signet, ssr, prev, org, ks, org_key, info.items, info.n,
					 address);
		if (e != DIME_OK) {
			rc = cli_no("user create: the org could not sign %s: %s", address,
				    dime_strerror(e));
			goto out;
		}
	} else if (info.n > 0) {
		rc = cli_no("user create: informational fields are added by the org, whose keys "
			    "for %s are not in the store",
			    domain);
		goto out;
	}
	/* Keys first, then the signet: never a published signet without its private keys. */
	if ((e = dime_ks_export(ks, keybuf, sizeof(keybuf), &keylen, user_key, 0)) != DIME_OK ||
	    (e = dime_store_put(st, NULL, address, DIME_STORE_USER_KEY, keybuf, keylen, 1, 0,
				"")) != DIME_OK)
		goto store_fail;
	{
		const struct dime_signet *out = signet != NULL ? signet : ssr;
		struct dime_view b = dime_signet_bytes(out);

		if ((e = dime_signet_fingerprint_b64(
			 fp, out, signet != NULL ? DIME_FP_FULL : DIME_FP_SSR)) != DIME_OK ||
		    (e = dime_store_put(st, NULL, address,
					signet != NULL ? DIME_STORE_USER_SIGNET : DIME_STORE_SSR,
					b.p, b.len, 1, 0, fp)) != DIME_OK ||
		    (e = dime_store_commit(st)) != DIME_OK)
			goto store_fail;
		if (signet != NULL)
			fprintf(stderr, "dime: %s user %s, signed by %s; full fingerprint %s\n",
				rotate ? "rotated" : "created", address, domain, fp);
		else
			fprintf(stderr,
				"dime: %s user %s; the keys of %s are not in the store, so this is "
				"an SSR awaiting the org's signature (ssr fingerprint %s)\n",
				rotate ? "rotated" : "created", address, domain, fp);
		rc = cli_print_armored(out);
		/* new keys either way: the gateway's trustful flow signs with a new user's */
		if (signet != NULL)
			user_notify_dimed(dime_store_path(st));
	}
	goto out;
store_fail:
	rc = cli_err("user create: store: %s", dime_strerror(e));
out:
	dime_store_rollback(st); /* nothing half-made is left behind; a no-op after commit */
	dime_wipe(keybuf, sizeof(keybuf));
	dime_signet_free(ssr);
	dime_signet_free(signet);
	dime_signet_free(prev);
	dime_signet_free(org);
	dime_ks_free(ks);
	dime_store_close(st);
	return rc;
}

int
cmd_user(int argc, char **argv)
{
	static const struct cli_cmd cmds[] = {
	    {"create", "create (or --rotate) a user: keys, SSR, signet", user_create},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch("user", cmds, argc, argv);
}

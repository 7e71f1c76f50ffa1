/* dime org create: a hosted organisation's keys and signet into the store, and its _dime record. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dime/codec.h"
#include "dime/mrec.h"

static const char org_create_usage[] =
    "usage: dime [--store PATH] org create DOMAIN [--sok PERMS]... [record options] [info]\n"
    "\n"
    "Generates the organisation's keys (POK and encryption key) and any secondary keys, signs\n"
    "its signet, stores all of it, and prints the _dime TXT record to publish.\n"
    "\n"
    "  --sok PERMS    add a secondary organisational key; PERMS is a number (1-15) or a\n"
    "                 comma list of: signets, messages, tls, software\n"
    "record options (for the printed TXT record):\n"
    "  --dx HOST --syn HOST (repeatable) --exp DAYS --pol experimental|mixed|strict\n"
    "  --sub explicit|mixed|strict\n";

/* Returns: perms, or -1. */
static int
org_parse_perms(const char *s)
{
	static const struct {
		const char *name;
		int bit;
	} names[] = {{"signets", DIME_SOK_SIGNETS},
		     {"messages", DIME_SOK_MESSAGES},
		     {"tls", DIME_SOK_TLS},
		     {"software", DIME_SOK_SOFTWARE}};
	char *end;
	long v = strtol(s, &end, 10);
	int perms = 0;

	if (*s != 0 && *end == 0)
		return v >= 1 && v <= 15 ? (int)v : -1;
	while (*s != 0) {
		size_t n = strcspn(s, ",");
		int found = 0;

		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strlen(names[i].name) == n && strncmp(s, names[i].name, n) == 0) {
				perms |= names[i].bit;
				found = 1;
			}
		if (!found)
			return -1;
		s += n;
		if (*s == ',')
			s++;
	}
	return perms == 0 ? -1 : perms;
}

int
org_record_option(struct dime_mrec *m, const char *opt, const char *val)
{
	if (strcmp(opt, "--dx") == 0 || strcmp(opt, "--syn") == 0) {
		size_t *n = opt[2] == 'd' ? &m->n_dx : &m->n_syn;
		struct dime_view *v = opt[2] == 'd' ? m->dx : m->syn;

		if (*n >= DIME_MREC_MAX_VALUES)
			return -1;
		v[*n].p = (const uint8_t *)val;
		v[*n].len = strlen(val);
		(*n)++;
		return 1;
	}
	if (strcmp(opt, "--exp") == 0) {
		char *end;
		unsigned long d = strtoul(val, &end, 10);

		if (*val == 0 || *end != 0 || d == 0 || d > 3650)
			return -1;
		m->expiry_days = (uint32_t)d;
		return 1;
	}
	if (strcmp(opt, "--pol") == 0) {
		if (strcmp(val, "experimental") == 0)
			m->policy = DIME_POL_EXPERIMENTAL;
		else if (strcmp(val, "mixed") == 0)
			m->policy = DIME_POL_MIXED;
		else if (strcmp(val, "strict") == 0)
			m->policy = DIME_POL_STRICT;
		else
			return -1;
		return 1;
	}
	if (strcmp(opt, "--sub") == 0) {
		if (strcmp(val, "explicit") == 0)
			m->subdomain = DIME_SUB_EXPLICIT;
		else if (strcmp(val, "mixed") == 0)
			m->subdomain = DIME_SUB_MIXED;
		else if (strcmp(val, "strict") == 0)
			m->subdomain = DIME_SUB_STRICT;
		else
			return -1;
		return 1;
	}
	return 0;
}

int
org_print_record(const char *domain, const struct dime_mrec *m)
{
	size_t need = 0, n = 0;
	char *rec;
	int rc;

	rc = dime_mrec_generate(NULL, 0, &need, m);
	if (rc != DIME_OK)
		return cli_err("cannot generate the record: %s", dime_strerror(rc));
	if ((rec = malloc(need + 1)) == NULL)
		return cli_err("out of memory");
	rc = dime_mrec_generate(rec, need + 1, &n, m);
	if (rc == DIME_OK)
		rc = cli_print_txt(domain, rec);
	else
		rc = cli_err("cannot generate the record: %s", dime_strerror(rc));
	free(rec);
	return rc;
}

static int
org_store_key(struct dime_store *st, const struct dime_ks *ks, uint32_t id, const char *domain,
	      enum dime_store_kind kind, uint8_t perms)
{
	uint8_t buf[DIME_KEYFILE_MAX_BYTES];
	size_t n = 0;
	int rc = dime_ks_export(ks, buf, sizeof(buf), &n, id, 0);

	if (rc == DIME_OK)
		rc = dime_store_put(st, NULL, domain, kind, buf, n, 1, perms, "");
	dime_wipe(buf, sizeof(buf));
	return rc;
}

static int
org_create(int argc, char **argv)
{
	struct cli_info info = {.n = 0};
	struct dime_signet_sok_spec soks[16];
	struct dime_mrec m;
	struct dime_store *st = NULL;
	struct dime_signet *s = NULL, *old = NULL;
	struct dime_ks *ks = NULL;
	uint32_t org_key = DIME_KS_NONE;
	size_t n_soks = 0;
	char domain[256], fp[DIME_FP_B64_LEN + 1];
	const char *arg = NULL;
	int rc = CLI_ERR, e;

	memset(&m, 0, sizeof(m));
	m.version = 1;
	m.expiry_days = 30;
	m.policy = DIME_POL_MIXED;
	m.subdomain = DIME_SUB_MIXED;
	if (cli_wants_help(argc, argv, org_create_usage)) {
		fputs(cli_info_usage, stdout);
		return CLI_OK;
	}
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		int r;

		if (o[0] != '-') {
			if (arg != NULL)
				return cli_err("org create: one DOMAIN only\n%s", org_create_usage);
			arg = o;
			continue;
		}
		if (i + 1 >= argc)
			return cli_err("org create: %s needs a value", o);
		if (strcmp(o, "--sok") == 0) {
			int p = org_parse_perms(argv[i + 1]);

			if (p < 0 || n_soks >= 16)
				return cli_err("org create: bad --sok '%s'", argv[i + 1]);
			soks[n_soks].perms = (uint8_t)p;
			soks[n_soks].key_id = DIME_KS_NONE;
			n_soks++;
		} else if ((r = org_record_option(&m, o, argv[i + 1])) != 0 ||
			   (r = cli_info_option(&info, o, argv[i + 1])) != 0) {
			if (r < 0)
				return cli_err("org create: bad value for %s: '%s'", o,
					       argv[i + 1]);
		} else {
			return cli_err("org create: unknown option %s\n%s", o, org_create_usage);
		}
		i++;
	}
	if (arg == NULL)
		return cli_err("org create: DOMAIN missing\n%s", org_create_usage);
	if (cli_lower(domain, sizeof(domain), arg) != 0 || strchr(domain, '@') != NULL)
		return cli_err("org create: '%s' is not a domain", arg);
	if (cli_store(&st) != CLI_OK)
		return CLI_ERR;
	/* One transaction from the existence check to the last put: concurrent creators of one
	 * domain queue on the write lock, and all but the first see it exists. */
	if ((e = dime_store_begin(st)) != DIME_OK) {
		rc = cli_err("org create: store: %s", dime_strerror(e));
		goto out;
	}
	if ((e = cli_store_signet(&old, st, domain, DIME_STORE_ORG_SIGNET, 0)) != CLI_NO) {
		if (e == CLI_OK)
			rc = cli_no("org create: %s already exists in %s", domain,
				    dime_store_path(st));
		goto out;
	}
	if (dime_ks_new(&ks) != DIME_OK ||
	    dime_ks_generate(ks, &org_key, DIME_KEY_ORG) != DIME_OK) {
		rc = cli_err("org create: key generation failed");
		goto out;
	}
	for (size_t i = 0; i < n_soks; i++)
		if (dime_ks_generate(ks, &soks[i].key_id, DIME_KEY_SIGN) != DIME_OK) {
			rc = cli_err("org create: key generation failed");
			goto out;
		}
	e = dime_signet_org_create(&s, ks, org_key, soks, n_soks, info.items, info.n, domain);
	if (e != DIME_OK) {
		rc = cli_no("org create: cannot build the signet for %s: %s", domain,
			    dime_strerror(e));
		goto out;
	}
	/* Keys first: a signet without its keys in the store would be useless. */
	e = org_store_key(st, ks, org_key, domain, DIME_STORE_ORG_KEY, 0);
	for (size_t i = 0; e == DIME_OK && i < n_soks; i++)
		e = org_store_key(st, ks, soks[i].key_id, domain, DIME_STORE_SOK_KEY,
				  soks[i].perms);
	if (e == DIME_OK && (e = dime_signet_fingerprint_b64(fp, s, DIME_FP_FULL)) == DIME_OK) {
		struct dime_view b = dime_signet_bytes(s);

		e = dime_store_put(st, NULL, domain, DIME_STORE_ORG_SIGNET, b.p, b.len, 1, 0, fp);
	}
	if (e == DIME_OK)
		e = dime_store_commit(st);
	if (e != DIME_OK) {
		rc = cli_err("org create: store: %s", dime_strerror(e));
		goto out;
	}
	if (dime_ks_sign_pub(ks, m.poks[0], org_key) != DIME_OK)
		goto out;
	m.n_poks = 1;
	fprintf(stderr, "dime: created org %s (%zu SOK%s), full fingerprint %s\n", domain, n_soks,
		n_soks == 1 ? "" : "s", fp);
	rc = org_print_record(domain, &m);
out:
	dime_store_rollback(st); /* nothing half-made is left behind; a no-op after commit */
	dime_signet_free(s);
	dime_signet_free(old);
	dime_ks_free(ks);
	dime_store_close(st);
	return rc;
}

int
cmd_org(int argc, char **argv)
{
	static const struct cli_cmd cmds[] = {
	    {"create", "create an organisation: keys, signet, _dime record", org_create},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch("org", cmds, argc, argv);
}

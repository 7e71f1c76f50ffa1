/* dime store import / list: bring signets, SSRs and key files into the embedded store, and show
 * what it holds. Imports are checked: signets parse, user signets verify against a stored org
 * signet when there is one, and key files are matched to the signet they belong to. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dime/codec.h"

static const char store_import_usage[] =
	"usage: dime [--store PATH] store import [--as IDENT] [--hosted] [--pok B64]... FILE...\n"
	"\n"
	"Imports signets, SSRs and private key files (armored or binary). A signet is filed\n"
	"under its identifier (field 254), a key file under the identity whose stored signet\n"
	"carries its public key. A user signet is verified against its org's stored signet, an\n"
	"org signet against the POKs given with --pok, before it is stored.\n"
	"\n"
	"  --as IDENT   file the objects under IDENT (needed for SSRs, which carry no identifier)\n"
	"  --hosted     mark the imported identities as hosted here\n"
	"  --pok B64    a POK from the org's management record (43 base64 characters)\n";

static const char store_list_usage[] = "usage: dime [--store PATH] store list [IDENT]\n"
				       "\n"
				       "Lists every stored object: identity, kind, version, hosted,\n"
				       "and for signets the full fingerprint (SSRs: ssr fingerprint).\n";

static const char *
store_kind_name(enum dime_store_kind k)
{
	switch (k) {
	case DIME_STORE_SOK_KEY: return "sok-key";
	case DIME_STORE_SSR: return "ssr";
	case DIME_STORE_ORG_SIGNET: return "org-signet";
	case DIME_STORE_USER_SIGNET: return "user-signet";
	case DIME_STORE_ORG_KEY: return "org-key";
	case DIME_STORE_USER_KEY: return "user-key";
	}
	return "unknown";
}

/* Matching a key to its identity: walk the stored signets and compare public keys. */
struct store_match {
	struct dime_store *st;
	uint8_t pub[DIME_ED25519_PUB_BYTES];
	int sign_only; /* a lone Ed25519 key: POK or SOK of an org signet */
	char ident[256];
	uint8_t perms;
	int found;
};

static int
store_match_row(const struct dime_store_row *row, void *arg)
{
	struct store_match *m = arg;
	struct dime_signet *s = NULL;
	uint8_t pub[DIME_ED25519_PUB_BYTES], perms = 0;

	if (row->kind != DIME_STORE_ORG_SIGNET && row->kind != DIME_STORE_USER_SIGNET &&
	    row->kind != DIME_STORE_SSR)
		return 0;
	if (cli_store_signet(&s, m->st, row->ident, row->kind, row->version) != CLI_OK)
		return 0;
	if (dime_signet_signing_key(s, pub) == DIME_OK && memcmp(pub, m->pub, sizeof(pub)) == 0) {
		m->found = 1;
	} else if (m->sign_only) {
		for (size_t i = 0; i < dime_signet_n_soks(s); i++)
			if (dime_signet_sok(s, &perms, pub, i) == DIME_OK &&
			    memcmp(pub, m->pub, sizeof(pub)) == 0) {
				m->found = 1;
				m->perms = perms;
			}
	}
	if (m->found)
		snprintf(m->ident, sizeof(m->ident), "%s", row->ident);
	dime_signet_free(s);
	return m->found;
}

static int
store_import_key(struct dime_store *st, const char *path, const uint8_t *buf, size_t len,
		 const char *as, int hosted)
{
	struct dime_ks *ks = NULL;
	struct store_match m;
	enum dime_key_kind kind = DIME_KEY_SIGN;
	enum dime_store_kind sk;
	uint32_t id = DIME_KS_NONE, version = 0;
	uint8_t out[DIME_KEYFILE_MAX_BYTES];
	size_t n = 0;
	int rc = CLI_ERR, e;

	memset(&m, 0, sizeof(m));
	m.st = st;
	if (dime_ks_new(&ks) != DIME_OK)
		return cli_err("out of memory");
	if ((e = dime_ks_load(ks, &id, buf, len)) != DIME_OK) {
		rc = cli_no("%s: not a valid key file: %s", path, dime_strerror(e));
		goto out;
	}
	if (dime_ks_kind(ks, &kind, id) != DIME_OK || dime_ks_sign_pub(ks, m.pub, id) != DIME_OK)
		goto out;
	m.sign_only = kind == DIME_KEY_SIGN;
	if (dime_store_list(st, as, 0, store_match_row, &m) != DIME_OK)
		goto out;
	if (!m.found) {
		rc = as != NULL ? cli_no("%s: no stored signet of %s carries this key", path, as)
				: cli_no("%s: no stored signet carries this key; import the signet "
					 "first",
					 path);
		goto out;
	}
	sk = kind == DIME_KEY_ORG ? DIME_STORE_ORG_KEY
	     : kind == DIME_KEY_USER ? DIME_STORE_USER_KEY
				     : DIME_STORE_SOK_KEY;
	/* Keys are stored in the binary reference format whatever form they came in. */
	if ((e = dime_ks_export(ks, out, sizeof(out), &n, id, 0)) != DIME_OK ||
	    (e = dime_store_put(st, &version, m.ident, sk, out, n, hosted, m.perms, "")) != DIME_OK) {
		rc = cli_err("%s: store: %s", path, dime_strerror(e));
		goto out;
	}
	printf("imported %s %s v%u\n", store_kind_name(sk), m.ident, version);
	rc = CLI_OK;
out:
	dime_wipe(out, sizeof(out));
	dime_ks_free(ks);
	return rc;
}

static int
store_import_signet(struct dime_store *st, const char *path, const uint8_t *buf, size_t len,
		    const char *as, int hosted, const uint8_t (*poks)[DIME_ED25519_PUB_BYTES],
		    size_t n_poks)
{
	struct dime_signet *s = NULL, *org = NULL;
	struct dime_signet_trust trust;
	struct dime_signet_verdict v;
	struct dime_view idv = {NULL, 0};
	enum dime_signet_type t;
	enum dime_store_kind sk;
	char ident[256], fp[DIME_FP_B64_LEN + 1];
	const char *why = "", *checked = "unverified";
	uint32_t version = 0;
	int rc = CLI_ERR, e;

	memset(&trust, 0, sizeof(trust));
	if ((e = dime_signet_load(&s, &why, buf, len)) != DIME_OK)
		return cli_no("%s: not a valid signet: %s%s%s", path, dime_strerror(e),
			      *why ? ": " : "", why);
	t = dime_signet_type(s);
	if (as != NULL) {
		snprintf(ident, sizeof(ident), "%s", as);
	} else if (dime_signet_identifier(s, &idv) == DIME_OK && idv.len > 0 &&
		   idv.len < sizeof(ident)) {
		memcpy(ident, idv.p, idv.len);
		ident[idv.len] = 0;
	} else {
		rc = cli_no("%s: the %s carries no identifier; name it with --as", path,
			    cli_type_name(t));
		goto out;
	}
	if (cli_lower(ident, sizeof(ident), ident) != 0)
		goto out;
	if (t == DIME_SIGNET_USER) {
		const char *dom = cli_domain_of(ident);

		if (dom != NULL && (e = cli_store_signet(&org, st, dom, DIME_STORE_ORG_SIGNET, 0)) ==
					   CLI_ERR)
			goto out;
		trust.org = org;
	} else if (t == DIME_SIGNET_ORG) {
		trust.poks = poks;
		trust.n_poks = n_poks;
	}
	if (t == DIME_SIGNET_SSR || trust.org != NULL || trust.n_poks > 0) {
		cli_validate(&v, s, &trust);
		/* Custody cannot be judged at import without the chain: accept, as stored history
		 * is what later custody checks walk. */
		if (v.kind == DIME_SIGNET_INVALID) {
			rc = cli_no("%s: refused: %s", path, v.reason);
			goto out;
		}
		checked = v.kind == DIME_SIGNET_VALID ? "verified" : "custody unchecked";
	}
	sk = t == DIME_SIGNET_ORG ? DIME_STORE_ORG_SIGNET
	     : t == DIME_SIGNET_USER ? DIME_STORE_USER_SIGNET
				     : DIME_STORE_SSR;
	if ((e = dime_signet_fingerprint_b64(fp, s, t == DIME_SIGNET_SSR ? DIME_FP_SSR
									  : DIME_FP_FULL)) !=
		    DIME_OK ||
	    (e = dime_store_put(st, &version, ident, sk, dime_signet_bytes(s).p,
				dime_signet_bytes(s).len, hosted, 0, fp)) != DIME_OK) {
		rc = cli_err("%s: store: %s", path, dime_strerror(e));
		goto out;
	}
	printf("imported %s %s v%u %s (%s)\n", store_kind_name(sk), ident, version, fp, checked);
	rc = CLI_OK;
out:
	dime_signet_free(s);
	dime_signet_free(org);
	return rc;
}

/* Key files and signets are told apart by their armor label or their magic number. */
static int
store_is_key(const uint8_t *buf, size_t len)
{
	if (dime_armor_detect(buf, len)) {
		const char *p = strstr((const char *)buf, "-----BEGIN ");

		return p != NULL && (strncmp(p + 11, "ORGANIZATIONAL KEY-", 19) == 0 ||
				     strncmp(p + 11, "USER KEY-", 9) == 0 ||
				     strncmp(p + 11, "ED25519 PRIVATE KEY-", 20) == 0);
	}
	return len >= 2 && ((buf[0] << 8 | buf[1]) == 1952 || (buf[0] << 8 | buf[1]) == 2013);
}

static int
store_import(int argc, char **argv)
{
	uint8_t poks[16][DIME_ED25519_PUB_BYTES];
	size_t n_poks = 0, nfiles = 0;
	const char *as = NULL;
	char asl[256];
	int hosted = 0, rc = CLI_OK;
	struct dime_store *st = NULL;

	if (cli_wants_help(argc, argv, store_import_usage))
		return CLI_OK;
	for (int i = 1; i < argc; i++) {
		size_t n = 0;

		if (strcmp(argv[i], "--hosted") == 0) {
			hosted = 1;
		} else if (strcmp(argv[i], "--as") == 0 && i + 1 < argc) {
			if (cli_lower(asl, sizeof(asl), argv[++i]) != 0 || asl[0] == 0)
				return cli_err("store import: bad --as");
			as = asl;
		} else if (strcmp(argv[i], "--pok") == 0 && i + 1 < argc) {
			const char *b = argv[++i];

			if (n_poks >= 16 ||
			    dime_b64_decode(poks[n_poks], sizeof(poks[0]), &n, b, strlen(b),
					    DIME_B64_NOPAD) != DIME_OK ||
			    n != DIME_ED25519_PUB_BYTES)
				return cli_err("store import: --pok needs 43 base64 characters");
			n_poks++;
		} else if (argv[i][0] == '-' && argv[i][1] != 0) {
			return cli_err("store import: unknown option %s\n%s", argv[i],
				       store_import_usage);
		} else {
			nfiles++;
		}
	}
	if (nfiles == 0)
		return cli_err("store import: no FILE\n%s", store_import_usage);
	if (cli_store(&st) != CLI_OK)
		return CLI_ERR;
	for (int i = 1; i < argc; i++) {
		uint8_t *buf = NULL;
		size_t len = 0;
		int r;

		if (strcmp(argv[i], "--as") == 0 || strcmp(argv[i], "--pok") == 0) {
			i++;
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1] != 0)
			continue;
		if (cli_read(&buf, &len, argv[i], DIME_SIGNET_MAX_BYTES * 2) != CLI_OK) {
			rc = CLI_ERR;
			continue;
		}
		if (store_is_key(buf, len))
			r = store_import_key(st, argv[i], buf, len, as, hosted);
		else
			r = store_import_signet(st, argv[i], buf, len, as, hosted,
						(const uint8_t(*)[DIME_ED25519_PUB_BYTES])poks, n_poks);
		dime_wipe(buf, len);
		free(buf);
		/* Keep going: one bad file does not stop the rest; the exit code reports it. */
		if (r > rc)
			rc = r;
	}
	dime_store_close(st);
	return rc;
}

static int
store_list_row(const struct dime_store_row *row, void *arg)
{
	(void)arg;
	printf("%-32s %-12s v%-3u %-7s", row->ident, store_kind_name(row->kind), row->version,
	       row->hosted ? "hosted" : "-");
	if (row->kind == DIME_STORE_SOK_KEY)
		printf(" perms=%u", row->perms);
	if (row->fingerprint[0] != 0)
		printf(" %s", row->fingerprint);
	putchar('\n');
	return 0;
}

static int
store_list(int argc, char **argv)
{
	struct dime_store *st = NULL;
	char ident[256];
	int rc;

	if (cli_wants_help(argc, argv, store_list_usage))
		return CLI_OK;
	if (argc > 2)
		return cli_err("store list: one IDENT at most\n%s", store_list_usage);
	if (argc == 2 && cli_lower(ident, sizeof(ident), argv[1]) != 0)
		return cli_err("store list: bad IDENT");
	if (cli_store(&st) != CLI_OK)
		return CLI_ERR;
	rc = dime_store_list(st, argc == 2 ? ident : NULL, 0, store_list_row, NULL);
	dime_store_close(st);
	return rc == DIME_OK ? CLI_OK : cli_err("store list: %s", dime_strerror(rc));
}

static const char store_export_usage[] =
	"usage: dime [--store PATH] store export IDENT [--version N] [--binary]\n"
	"\n"
	"Prints the stored signet (or SSR) of IDENT, armored unless --binary. Version 0 or no\n"
	"--version: the latest. Private keys are never exported.\n";

static int
store_export(int argc, char **argv)
{
	struct dime_store *st = NULL;
	struct dime_signet *s = NULL;
	const char *ident = NULL;
	char id[256];
	unsigned long version = 0;
	int binary = 0, rc;

	if (cli_wants_help(argc, argv, store_export_usage))
		return CLI_OK;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--binary") == 0) {
			binary = 1;
		} else if (strcmp(argv[i], "--version") == 0 && i + 1 < argc) {
			char *end;

			version = strtoul(argv[++i], &end, 10);
			if (*end != 0 || version > UINT32_MAX)
				return cli_err("store export: bad --version");
		} else if (argv[i][0] == '-' || ident != NULL) {
			return cli_err("store export: unexpected %s\n%s", argv[i], store_export_usage);
		} else {
			ident = argv[i];
		}
	}
	if (ident == NULL || cli_lower(id, sizeof(id), ident) != 0)
		return cli_err("store export: IDENT missing\n%s", store_export_usage);
	if (cli_store(&st) != CLI_OK)
		return CLI_ERR;
	rc = cli_store_signet(&s, st, id, strchr(id, '@') != NULL ? DIME_STORE_USER_SIGNET
								  : DIME_STORE_ORG_SIGNET,
			      (uint32_t)version);
	if (rc == CLI_NO && strchr(id, '@') != NULL)
		rc = cli_store_signet(&s, st, id, DIME_STORE_SSR, (uint32_t)version);
	if (rc == CLI_NO)
		rc = cli_no("store export: no signet of %s%s", id, version ? " at that version" : "");
	if (rc == CLI_OK) {
		if (binary) {
			struct dime_view b = dime_signet_bytes(s);

			rc = fwrite(b.p, 1, b.len, stdout) == b.len ? CLI_OK : cli_err("write failed");
		} else {
			rc = cli_print_armored(s);
		}
	}
	dime_signet_free(s);
	dime_store_close(st);
	return rc;
}

static const char store_rekey_usage[] =
	"usage: dime [--store PATH] store rekey-secrets --to-key-file FILE\n"
	"       dime [--store PATH] store rekey-secrets --to-passphrase-file FILE\n"
	"       dime [--store PATH] store rekey-secrets --to-generated\n"
	"\n"
	"Re-seals every private key of the store under a new key-encryption key, in one\n"
	"transaction: all keys move or none. The store is opened with the current key\n"
	"($DIME_KEY_FILE, $DIME_PASSPHRASE_FILE or a prompt, else PATH.key).\n"
	"\n"
	"  --to-key-file FILE         exactly 32 bytes, mode 0600 or 0400; later commands\n"
	"                             need DIME_KEY_FILE=FILE (unless FILE is PATH.key)\n"
	"  --to-passphrase-file FILE  the file's first line, through Argon2id (cost:\n"
	"                             $DIME_PWHASH_COST, default moderate); later commands\n"
	"                             need DIME_PASSPHRASE_FILE or a terminal\n"
	"  --to-generated             32 random bytes in PATH.key (0600)\n"
	"\n"
	"A PATH.key that no longer opens the store is removed.\n";

static int
store_rekey_secrets(int argc, char **argv)
{
	enum dime_store_secrets_to to = 0;
	struct dime_store *st = NULL;
	const char *file = NULL;
	char err[512] = "";
	size_t n = 0;
	int e;

	if (cli_wants_help(argc, argv, store_rekey_usage))
		return CLI_OK;
	for (int i = 1; i < argc; i++) {
		enum dime_store_secrets_to t;

		if (strcmp(argv[i], "--to-key-file") == 0 && i + 1 < argc)
			t = DIME_STORE_TO_KEY_FILE;
		else if (strcmp(argv[i], "--to-passphrase-file") == 0 && i + 1 < argc)
			t = DIME_STORE_TO_PASSPHRASE_FILE;
		else if (strcmp(argv[i], "--to-generated") == 0)
			t = DIME_STORE_TO_GENERATED;
		else
			return cli_err("store rekey-secrets: unexpected %s\n%s", argv[i],
				       store_rekey_usage);
		if (to != 0)
			return cli_err("store rekey-secrets: one target only\n%s", store_rekey_usage);
		to = t;
		if (t != DIME_STORE_TO_GENERATED)
			file = argv[++i];
	}
	if (to == 0)
		return cli_err("store rekey-secrets: no target\n%s", store_rekey_usage);
	if (file != NULL && file[0] == '\0')
		return cli_err("store rekey-secrets: empty file name");
	if (cli_store(&st) != CLI_OK)
		return CLI_ERR;
	e = dime_store_rekey_secrets(st, &n, to, file, err, sizeof(err));
	if (e != DIME_OK) {
		dime_store_close(st);
		/* a key that does not open is the store's content refusing, not a usage error */
		if (e == DIME_E_BADSIG)
			return cli_no("store rekey-secrets: %s", err);
		return cli_err("store rekey-secrets: %s", err);
	}
	if (to == DIME_STORE_TO_GENERATED)
		printf("re-sealed %zu private key%s under the generated key file %s.key\n", n,
		       n == 1 ? "" : "s", dime_store_path(st));
	else if (to == DIME_STORE_TO_KEY_FILE)
		printf("re-sealed %zu private key%s under the key file %s; set DIME_KEY_FILE=%s\n", n,
		       n == 1 ? "" : "s", file, file);
	else
		printf("re-sealed %zu private key%s under the passphrase of %s; set "
		       "DIME_PASSPHRASE_FILE=%s\n",
		       n, n == 1 ? "" : "s", file, file);
	dime_store_close(st);
	return CLI_OK;
}

int
cmd_store(int argc, char **argv)
{
	static const struct cli_cmd cmds[] = {
		{"import", "import signets, SSRs and key files", store_import},
		{"list", "list what the store holds", store_list},
		{"export", "print a stored signet", store_export},
		{"rekey-secrets", "re-seal the private keys under a new key or passphrase",
		 store_rekey_secrets},
		{NULL, NULL, NULL},
	};

	return cli_dispatch("store", cmds, argc, argv);
}

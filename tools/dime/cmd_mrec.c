/* dime mrec check / generate: the `_dime` TXT management record. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dime/codec.h"

static const char check_usage[] =
    "usage: dime mrec check [--cert FILE] 'RECORD' ['STRING']...\n"
    "\n"
    "Parses and validates a management record. Several arguments are the TXT strings of one\n"
    "record and are joined as a resolver joins them; a zone-style '\"a\" \"b\"' argument is\n"
    "unquoted, and the whole line that `org create` prints is taken as it is\n"
    "('_dime.example.org. IN TXT \"ver=1 pok=...\"', in one argument or several).\n"
    "Prints ACCEPT and what the record says, or REJECT <reason>.\n"
    "  --cert FILE   also check the certificate (PEM or DER) against the record's tls fields\n"
    "Exit status: 0 accept, 1 reject, 2 usage or I/O error.\n";
static const char generate_usage[] =
    "usage: dime [--store PATH] mrec generate (--org DOMAIN | --pok B64... [--key FILE])\n"
    "                          [--tls-cert FILE]... [--dx HOST]... [--syn HOST]...\n"
    "                          [--exp DAYS] [--pol experimental|mixed|strict]\n"
    "                          [--sub explicit|mixed|strict]\n"
    "\n"
    "Prints a _dime TXT record, split into strings of at most 255 bytes at field bounds.\n"
    "  --org DOMAIN    take the POK from the store's signet of DOMAIN; its key signs --tls-cert\n"
    "  --pok B64       a POK (43 base64 characters), repeatable (rotation: old and new)\n"
    "  --key FILE      the POK's private key file, to sign --tls-cert without a store\n"
    "  --tls-cert FILE a DMTP certificate (PEM or DER) to sign into a tls field\n";

/* True when the word at w (n bytes) is `TXT`, in any case. */
static int
mrec_is_txt(const char *w, size_t n)
{
	return n == 3 && (w[0] | 0x20) == 't' && (w[1] | 0x20) == 'x' && (w[2] | 0x20) == 't';
}

/* Where the record starts: just past `OWNER [TTL] [CLASS] TXT` when the arguments open with
 * it (the line `org create` prints, whole in one argument or split by the shell), else at
 * argument first. A record field always holds '=', a zone-file prefix word never does, so the
 * two cannot be confused. */
static void
mrec_skip_owner(int *arg, size_t *off, int argc, char **argv, int first)
{
	int words = 0;

	*arg = first;
	*off = 0;
	for (int i = first; i < argc; i++) {
		const char *a = argv[i];
		size_t k = 0, w;

		for (;;) {
			k += strspn(a + k, " \t");
			if (a[k] == 0)
				break;
			if (a[k] == '"')
				return;
			w = strcspn(a + k, " \t\"");
			if (memchr(a + k, '=', w) != NULL || ++words > 4)
				return;
			k += w;
			if (words >= 2 && mrec_is_txt(a + k - w, w)) {
				*arg = i;
				*off = k;
				return;
			}
		}
	}
}

/* Copy the zone-file strings of a ("a" "b" ...) into out, unquoted, with the \X and \DDD
 * escapes of RFC 1035 §5.1 undone. Returns: the bytes written, or (size_t)-1 with *why set
 * when a is not a sequence of complete quoted strings. */
static size_t
mrec_unquote(char *out, const char *a, const char **why)
{
	size_t n = 0, k = 0;

	for (;;) {
		k += strspn(a + k, " \t\r\n");
		if (a[k] == 0)
			return n;
		if (a[k] != '"') {
			*why = "text outside the quoted strings";
			return (size_t)-1;
		}
		for (k++; a[k] != '"'; k++) {
			if (a[k] == 0) {
				*why = "a quoted string is not closed";
				return (size_t)-1;
			}
			if (a[k] == '\\' && a[k + 1] >= '0' && a[k + 1] <= '9' && a[k + 2] >= '0' &&
			    a[k + 2] <= '9' && a[k + 3] >= '0' && a[k + 3] <= '9') {
				int v =
				    (a[k + 1] - '0') * 100 + (a[k + 2] - '0') * 10 + a[k + 3] - '0';

				if (v > 255) {
					*why = "a \\DDD escape above 255";
					return (size_t)-1;
				}
				out[n++] = (char)v;
				k += 3;
			} else if (a[k] == '\\' && a[k + 1] != 0) {
				out[n++] = a[++k];
			} else {
				out[n++] = a[k];
			}
		}
		k++;
	}
}

/* Join the TXT strings of one record as a resolver does. Arguments may be bare strings, or
 * zone-file quoted strings, optionally after the `OWNER [TTL] [CLASS] TXT` that `org create`
 * prints. Returns: the record (caller frees), or NULL with *why set. */
char *
cli_mrec_join(int argc, char **argv, int first, size_t *len, const char **why)
{
	size_t total = 0, n = 0, off = 0;
	int arg = first;
	char *out;

	*len = 0;
	for (int i = first; i < argc; i++)
		total += strlen(argv[i]);
	if ((out = malloc(total + 1)) == NULL) {
		*why = "out of memory";
		return NULL;
	}
	mrec_skip_owner(&arg, &off, argc, argv, first);
	for (int i = arg; i < argc; i++) {
		const char *a = argv[i] + (i == arg ? off : 0);
		size_t l;

		if (i == arg && off > 0)
			a += strspn(a, " \t"); /* the blank after TXT */
		if (a[strspn(a, " \t")] == '"') {
			if ((l = mrec_unquote(out + n, a, why)) == (size_t)-1) {
				free(out);
				return NULL;
			}
		} else {
			l = strlen(a);
			memcpy(out + n, a, l);
		}
		n += l;
	}
	if (n == 0) {
		*why = "no record text";
		free(out);
		return NULL;
	}
	out[n] = 0;
	*len = n;
	return out;
}

/* A certificate as DER: PEM is de-armored with our own decoder (no CRC line in X.509 PEM). */
static int
mrec_read_cert(uint8_t **der, size_t *der_len, const char *path)
{
	uint8_t *buf = NULL, *out = NULL;
	size_t len = 0, n = 0, used = 0;
	char label[DIME_ARMOR_LABEL_MAX];

	*der = NULL;
	*der_len = 0;
	if (cli_read(&buf, &len, path, 1u << 20) != CLI_OK)
		return CLI_ERR;
	if (!dime_armor_detect(buf, len)) {
		*der = buf;
		*der_len = len;
		return CLI_OK;
	}
	if ((out = malloc(len)) == NULL ||
	    dime_armor_decode(label, out, len, &n, &used, buf, len) != DIME_OK ||
	    strcmp(label, "CERTIFICATE") != 0) {
		free(out);
		free(buf);
		return cli_err("%s: not a PEM certificate", path);
	}
	free(buf);
	*der = out;
	*der_len = n;
	return CLI_OK;
}

static const char *
mrec_pol_name(enum dime_mrec_policy p)
{
	return p == DIME_POL_EXPERIMENTAL ? "experimental"
	       : p == DIME_POL_STRICT	  ? "strict"
					  : "mixed";
}

static const char *
mrec_sub_name(enum dime_mrec_subdomain s)
{
	return s == DIME_SUB_EXPLICIT ? "explicit" : s == DIME_SUB_STRICT ? "strict" : "mixed";
}

static int
mrec_check(int argc, char **argv)
{
	struct dime_mrec m;
	const char *why = "", *cert = NULL;
	char *rec;
	size_t len = 0;
	int first = 1, rc;

	if (cli_wants_help(argc, argv, check_usage))
		return CLI_OK;
	if (argc > 2 && strcmp(argv[1], "--cert") == 0) {
		cert = argv[2];
		first = 3;
	}
	if (first >= argc)
		return cli_err("mrec check: RECORD missing\n%s", check_usage);
	if ((rec = cli_mrec_join(argc, argv, first, &len, &why)) == NULL)
		return cli_err("mrec check: %s", why);
	rc = dime_mrec_parse(&m, &why, rec, len);
	if (rc != DIME_OK) {
		printf("REJECT %s\n", why);
		free(rec);
		return CLI_NO;
	}
	printf("ACCEPT ver=%u pok=%zu tls=%zu dx=%zu syn=%zu exp=%u pol=%s sub=%s\n", m.version,
	       m.n_poks, m.n_tls, m.n_dx, m.n_syn, m.expiry_days, mrec_pol_name(m.policy),
	       mrec_sub_name(m.subdomain));
	for (size_t i = 0; i < m.n_dx; i++)
		printf("dx %.*s\n", (int)m.dx[i].len, (const char *)m.dx[i].p);
	rc = CLI_OK;
	if (cert != NULL) {
		uint8_t *der = NULL;
		size_t der_len = 0;

		if (mrec_read_cert(&der, &der_len, cert) != CLI_OK) {
			rc = CLI_ERR;
		} else if (dime_mrec_tls_check(&m, der, der_len) == DIME_OK) {
			printf("CERT MATCH %s\n", cert);
		} else {
			printf("CERT MISMATCH %s\n", cert);
			rc = CLI_NO;
		}
		free(der);
	}
	free(rec);
	return rc;
}

static int
mrec_generate(int argc, char **argv)
{
	struct dime_mrec m;
	struct dime_store *st = NULL;
	struct dime_ks *ks = NULL;
	struct dime_signet *org = NULL;
	const char *org_name = NULL, *key_file = NULL, *certs[DIME_MREC_MAX_VALUES];
	char domain[256];
	size_t n_certs = 0;
	uint32_t key = DIME_KS_NONE;
	int rc = CLI_ERR, r;

	memset(&m, 0, sizeof(m));
	m.version = 1;
	m.expiry_days = 30;
	m.policy = DIME_POL_MIXED;
	m.subdomain = DIME_SUB_MIXED;
	if (cli_wants_help(argc, argv, generate_usage))
		return CLI_OK;
	for (int i = 1; i < argc; i += 2) { /* every option takes a value */
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			return cli_err("mrec generate: %s needs a value\n%s", o, generate_usage);
		if (strcmp(o, "--org") == 0) {
			org_name = v;
		} else if (strcmp(o, "--key") == 0) {
			key_file = v;
		} else if (strcmp(o, "--tls-cert") == 0) {
			if (n_certs >= DIME_MREC_MAX_VALUES)
				return cli_err("mrec generate: too many --tls-cert");
			certs[n_certs++] = v;
		} else if (strcmp(o, "--pok") == 0) {
			size_t n = 0;

			if (m.n_poks >= DIME_MREC_MAX_VALUES ||
			    dime_b64_decode(m.poks[m.n_poks], DIME_ED25519_PUB_BYTES, &n, v,
					    strlen(v), DIME_B64_NOPAD) != DIME_OK ||
			    n != DIME_ED25519_PUB_BYTES)
				return cli_err("mrec generate: --pok needs 43 base64 characters");
			m.n_poks++;
		} else if ((r = org_record_option(&m, o, v)) != 0) {
			if (r < 0)
				return cli_err("mrec generate: bad value for %s: '%s'", o, v);
		} else {
			return cli_err("mrec generate: unknown option %s\n%s", o, generate_usage);
		}
	}
	if ((org_name == NULL) == (m.n_poks == 0))
		return cli_err("mrec generate: give --org or --pok\n%s", generate_usage);
	if (dime_ks_new(&ks) != DIME_OK)
		return cli_err("out of memory");
	if (org_name != NULL) {
		if (cli_lower(domain, sizeof(domain), org_name) != 0)
			goto out;
		if (cli_store_existing(&st) != CLI_OK)
			goto out;
		if ((r = cli_store_signet(&org, st, domain, DIME_STORE_ORG_SIGNET, 0)) != CLI_OK) {
			rc = r == CLI_NO
				 ? cli_no("mrec generate: no signet for %s in the store", domain)
				 : r;
			goto out;
		}
		if (dime_signet_signing_key(org, m.poks[0]) != DIME_OK)
			goto out;
		m.n_poks = 1;
		if (n_certs > 0 &&
		    (r = cli_store_key(&key, ks, st, domain, DIME_STORE_ORG_KEY)) != CLI_OK) {
			rc = r == CLI_NO
				 ? cli_no("mrec generate: the keys of %s are not in the store",
					  domain)
				 : r;
			goto out;
		}
	} else if (n_certs > 0) {
		uint8_t *buf = NULL;
		size_t len = 0;

		if (key_file == NULL) {
			rc = cli_err("mrec generate: --tls-cert needs --org or --key");
			goto out;
		}
		if (cli_read(&buf, &len, key_file, DIME_KEYFILE_MAX_BYTES * 2) != CLI_OK)
			goto out;
		r = dime_ks_load(ks, &key, buf, len);
		dime_wipe(buf, len);
		free(buf);
		if (r != DIME_OK) {
			rc = cli_err("%s: not a key file: %s", key_file, dime_strerror(r));
			goto out;
		}
	}
	if (key != DIME_KS_NONE) {
		uint8_t pub[DIME_ED25519_PUB_BYTES];
		int ours = 0;

		if (dime_ks_sign_pub(ks, pub, key) != DIME_OK)
			goto out;
		for (size_t i = 0; i < m.n_poks; i++)
			ours |= memcmp(pub, m.poks[i], sizeof(pub)) == 0;
		if (!ours) {
			rc = cli_no("mrec generate: the signing key is none of the record's POKs");
			goto out;
		}
	}
	for (size_t i = 0; i < n_certs; i++) {
		uint8_t *der = NULL;
		size_t der_len = 0;

		if (mrec_read_cert(&der, &der_len, certs[i]) != CLI_OK)
			goto out;
		r = dime_mrec_tls_sign(ks, m.tls[m.n_tls], key, der, der_len);
		free(der);
		if (r != DIME_OK) {
			rc = cli_err("mrec generate: signing %s: %s", certs[i], dime_strerror(r));
			goto out;
		}
		m.n_tls++;
	}
	if (org_name != NULL) {
		rc = org_print_record(domain, &m);
	} else {
		size_t need = 0, n = 0, np = 0;
		struct dime_view parts[32];
		char *rec;

		if ((r = dime_mrec_generate(NULL, 0, &need, &m)) != DIME_OK) {
			rc = cli_err("mrec generate: %s", dime_strerror(r));
			goto out;
		}
		if ((rec = malloc(need + 1)) == NULL)
			goto out;
		if (dime_mrec_generate(rec, need + 1, &n, &m) == DIME_OK &&
		    dime_mrec_split(parts, 32, &np, rec, n) == DIME_OK) {
			for (size_t i = 0; i < np; i++)
				printf("%s\"%.*s\"", i ? " " : "", (int)parts[i].len,
				       (const char *)parts[i].p);
			putchar('\n');
			rc = CLI_OK;
		}
		free(rec);
	}
out:
	dime_signet_free(org);
	dime_ks_free(ks);
	dime_store_close(st);
	return rc;
}

int
cmd_mrec(int argc, char **argv)
{
	static const struct cli_cmd cmds[] = {
	    {"check", "validate a record: ACCEPT ... or REJECT <reason>", mrec_check},
	    {"generate", "print a record for publishing", mrec_generate},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch("mrec", cmds, argc, argv);
}

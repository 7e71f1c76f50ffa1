/* dime conformance DIR: runs the interop vectors of DIR/manifest.json and
 * DIR/mrec-parse-probes.json against the verdicts this project must give (project_expect /
 * project), doing the real work: files are loaded, signets validated against their party's org
 * signet and POK, fingerprints compared, records parsed. File names in the manifest are resolved
 * by their base name inside DIR, so any folder laid out the same way runs. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "conf.h"
#include "dime/codec.h"
#include "dime/io.h"
#include "dime/mrec.h"

static const char conf_usage[] =
    "usage: dime conformance DIR\n"
    "\n"
    "Runs every case of DIR/manifest.json and every probe of DIR/mrec-parse-probes.json.\n"
    "Prints PASS <id>, FAIL <id>: <why> or SKIP <id>: <why> per case, then N passed, M failed.\n"
    "Exit status: 0 when nothing failed, 1 otherwise, 2 when DIR cannot be read.\n";

void
conf_result(struct conf *c, const char *id, const char *fmt, ...)
{
	va_list ap;

	if (fmt == NULL) {
		printf("PASS %s\n", id);
		c->passed++;
		return;
	}
	printf("FAIL %s: ", id);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	c->failed++;
}

const char *
conf_str(const json_t *o, const char *key)
{
	const json_t *v = o != NULL ? json_object_get(o, key) : NULL;

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A manifest path inside DIR: its base name, as the manifest says; failing that, the shortest
 * trailing part of the path that exists in DIR (fixtures kept in a subfolder). */
static void
conf_path(char *out, size_t cap, const struct conf *c, const char *manifest_path)
{
	const char *base = strrchr(manifest_path, '/');

	snprintf(out, cap, "%s/%s", c->dir, base != NULL ? base + 1 : manifest_path);
	if (access(out, F_OK) == 0 || base == NULL)
		return;
	for (const char *p = base - 1; p > manifest_path; p--)
		if (*p == '/') {
			snprintf(out, cap, "%s/%s", c->dir, p + 1);
			if (access(out, F_OK) == 0)
				return;
		}
	snprintf(out, cap, "%s/%s", c->dir, base + 1);
}

int
conf_read(uint8_t **buf, size_t *len, const struct conf *c, const char *manifest_path)
{
	char path[4096];

	conf_path(path, sizeof(path), c, manifest_path);
	return dime_io_read_file(buf, len, path, DIME_SIGNET_MAX_BYTES * 2) == 0 ? 0 : -1;
}

int
conf_signet(struct dime_signet **s, const char **why, const struct conf *c, const char *mpath,
	    int binary_only)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	*s = NULL;
	if (mpath == NULL || conf_read(&buf, &len, c, mpath) != 0) {
		*why = "file missing";
		return -1;
	}
	rc = binary_only ? dime_signet_parse(s, why, buf, len) : dime_signet_load(s, why, buf, len);
	if (rc != DIME_OK && (*why == NULL || **why == 0))
		*why = dime_strerror(rc);
	free(buf);
	return rc == DIME_OK ? 0 : -1;
}

const json_t *
conf_party(const struct conf *c, const char *name)
{
	return name != NULL ? json_object_get(c->parties, name) : NULL;
}

static int
conf_hex32(uint8_t out[32], const char *hex)
{
	size_t n = 0;

	return hex != NULL && dime_hex_decode(out, 32, &n, hex, strlen(hex)) == DIME_OK && n == 32
		   ? 0
		   : -1;
}

/* The party a signet belongs to: the one whose sign_pub_hex is the signet's signing key (a
 * user's key for user signets and SSRs, the POK for org signets). Taken from the data, not from
 * file or case names, so that a renamed copy of the vectors runs the same. Returns NULL when
 * no party, or more than one, holds that key. */
static const char *
conf_party_of(const struct conf *c, const struct dime_signet *s)
{
	uint8_t key[32], pub[32];
	const char *name, *found = NULL;
	json_t *p;
	int n = 0;

	if (dime_signet_signing_key(s, key) != DIME_OK)
		return NULL;
	json_object_foreach(c->parties, name, p) {
		if (conf_hex32(pub, conf_str(p, "sign_pub_hex")) == 0 &&
		    memcmp(pub, key, 32) == 0) {
			found = name;
			n++;
		}
	}
	return n == 1 ? found : NULL;
}

static const char *
conf_verdict_name(const struct dime_signet_verdict *v)
{
	return v->kind == DIME_SIGNET_VALID	       ? "valid"
	       : v->kind == DIME_SIGNET_BROKEN_CUSTODY ? "broken-custody"
						       : "invalid";
}

static const struct {
	const char *name;
	enum dime_fp_kind kind;
} conf_fp_kinds[] = {
    {"ssr", DIME_FP_SSR}, {"crypto", DIME_FP_CRYPTO}, {"full", DIME_FP_FULL}, {"id", DIME_FP_ID}};

/* Set up trust for signet s of a party: org signets get the party's POK, user signets and SSRs
 * the party's org signet. *org receives a signet the caller frees. */
static int
conf_trust(struct dime_signet_trust *t, struct dime_signet **org, uint8_t pok[32],
	   const struct conf *c, const struct dime_signet *s, const char *party_name,
	   const char **why)
{
	const json_t *p = conf_party(c, party_name);

	*org = NULL;
	if (p == NULL) {
		*why = "no such party in the manifest";
		return -1;
	}
	if (dime_signet_type(s) == DIME_SIGNET_ORG ||
	    (conf_str(p, "organization") == NULL && conf_str(p, "sign_pub_hex") != NULL &&
	     dime_signet_type(s) == DIME_SIGNET_USER)) {
		if (conf_hex32(pok, conf_str(p, "sign_pub_hex")) != 0) {
			*why = "party has no sign_pub_hex";
			return -1;
		}
		if (dime_signet_type(s) == DIME_SIGNET_ORG) {
			t->poks = (const uint8_t(*)[32])pok;
			t->n_poks = 1;
			return 0;
		}
		/* A user signet validated against an org party: that org's signet. */
		return conf_signet(org, why, c, conf_str(p, "signet_bin"), 1) == 0
			   ? (t->org = *org, 0)
			   : -1;
	}
	p = conf_party(c, conf_str(p, "organization"));
	if (p == NULL) {
		*why = "party has no organization";
		return -1;
	}
	if (conf_signet(org, why, c, conf_str(p, "signet_bin"), 1) != 0)
		return -1;
	t->org = *org;
	return 0;
}

/* The keys file of a party must hold the private halves of the signet's public keys. */
static const char *
conf_keys_match(const struct conf *c, const struct dime_signet *s, const json_t *party)
{
	struct dime_ks *ks = NULL;
	uint8_t *buf = NULL, a[DIME_SECP_PUB_BYTES], b[DIME_SECP_PUB_BYTES];
	size_t len = 0;
	uint32_t id = 0;
	const char *why = NULL, *kf = conf_str(party, "keys_file");

	if (kf == NULL)
		return NULL;
	if (conf_read(&buf, &len, c, kf) != 0)
		return "keys file missing";
	if (dime_ks_new(&ks) != DIME_OK || dime_ks_load(ks, &id, buf, len) != DIME_OK)
		why = "keys file does not load";
	else if (dime_ks_sign_pub(ks, a, id) != DIME_OK ||
		 dime_signet_signing_key(s, b) != DIME_OK ||
		 memcmp(a, b, DIME_ED25519_PUB_BYTES) != 0)
		why = "keys file signing key differs from the signet's";
	else if (dime_ks_enc_pub(ks, a, id) != DIME_OK || dime_signet_enc_key(s, b) != DIME_OK ||
		 memcmp(a, b, DIME_SECP_PUB_BYTES) != 0)
		why = "keys file encryption key differs from the signet's";
	dime_wipe(buf, len);
	free(buf);
	dime_ks_free(ks);
	return why;
}

static void
conf_signet_case(struct conf *c, const json_t *cs, const char *id)
{
	const json_t *files = json_object_get(cs, "files"),
		     *pe = json_object_get(cs, "project_expect");
	const json_t *fps = json_object_get(pe, "fingerprints");
	const char *bin = conf_str(files, "binary"), *arm = conf_str(files, "armored"), *why = "";
	const char *want = conf_str(pe, "verdict"), *want_level = conf_str(pe, "level");
	struct dime_signet *s = NULL, *s2 = NULL, *org = NULL, *prev = NULL;
	struct dime_signet_trust trust;
	struct dime_signet_verdict v;
	char fp[DIME_FP_B64_LEN + 1];
	uint8_t pok[32];
	const char *key, *party;
	json_t *val;

	memset(&trust, 0, sizeof(trust));
	if (pe == NULL || want == NULL) {
		conf_result(c, id, "manifest has no project_expect.verdict");
		return;
	}
	if (conf_signet(&s, &why, c, bin != NULL ? bin : arm, bin != NULL) != 0) {
		conf_result(c, id, "%s does not load: %s", bin != NULL ? bin : arm, why);
		goto out;
	}
	if (bin != NULL && arm != NULL) {
		if (conf_signet(&s2, &why, c, arm, 0) != 0) {
			conf_result(c, id, "armored file does not load: %s", why);
			goto out;
		}
		if (dime_signet_bytes(s).len != dime_signet_bytes(s2).len ||
		    memcmp(dime_signet_bytes(s).p, dime_signet_bytes(s2).p,
			   dime_signet_bytes(s).len) != 0) {
			conf_result(c, id, "binary and armored files differ");
			goto out;
		}
	}
	json_object_foreach((json_t *)fps, key, val) {
		size_t k;

		for (k = 0; k < sizeof(conf_fp_kinds) / sizeof(conf_fp_kinds[0]); k++)
			if (strcmp(key, conf_fp_kinds[k].name) == 0)
				break;
		if (k == sizeof(conf_fp_kinds) / sizeof(conf_fp_kinds[0])) {
			conf_result(c, id, "unknown fingerprint kind %s", key);
			goto out;
		}
		if (dime_signet_fingerprint_b64(fp, s, conf_fp_kinds[k].kind) != DIME_OK ||
		    !json_is_string(val) || strcmp(fp, json_string_value(val)) != 0) {
			conf_result(c, id, "%s fingerprint: got %s, want %s", key, fp,
				    json_is_string(val) ? json_string_value(val) : "?");
			goto out;
		}
	}
	if ((party = conf_party_of(c, s)) == NULL) {
		conf_result(c, id,
			    "no single party of the manifest holds the signet's signing key");
		goto out;
	}
	if (conf_trust(&trust, &org, pok, c, s, party, &why) != 0) {
		conf_result(c, id, "trust for %s: %s", party, why);
		goto out;
	}
	if ((why = conf_keys_match(c, s, conf_party(c, party))) != NULL) {
		conf_result(c, id, "%s", why);
		goto out;
	}
	if (conf_str(pe, "previous") != NULL) {
		const json_t *pp = conf_party(c, conf_str(pe, "previous"));

		if (conf_signet(&prev, &why, c, conf_str(pp, "signet_bin"), 1) != 0) {
			conf_result(c, id, "previous signet: %s", why);
			goto out;
		}
		trust.previous = prev;
	}
	cli_validate(&v, s, &trust);
	if (strcmp(conf_verdict_name(&v), want) != 0 ||
	    (want_level != NULL && strcmp(cli_level_name(v.level), want_level) != 0)) {
		conf_result(c, id, "got %s %s (%s), want %s %s", conf_verdict_name(&v),
			    cli_level_name(v.level), v.reason, want, want_level ? want_level : "");
		goto out;
	}
	if (conf_str(pe, "without_previous") != NULL) {
		trust.previous = NULL;
		cli_validate(&v, s, &trust);
		if (strcmp(conf_verdict_name(&v), conf_str(pe, "without_previous")) != 0) {
			conf_result(c, id, "without previous: got %s (%s), want %s",
				    conf_verdict_name(&v), v.reason,
				    conf_str(pe, "without_previous"));
			goto out;
		}
	}
	conf_result(c, id, NULL);
out:
	dime_signet_free(s);
	dime_signet_free(s2);
	dime_signet_free(org);
	dime_signet_free(prev);
}

static void
conf_signet_variant(struct conf *c, const json_t *cs, const char *id)
{
	const json_t *files = json_object_get(cs, "files"),
		     *pe = json_object_get(cs, "project_expect");
	const char *bin = conf_str(files, "binary"), *arm = conf_str(files, "armored");
	const char *want = conf_str(pe, "verdict"), *against = conf_str(pe, "validated_against");
	const char *why = "", *got;
	struct dime_signet *s = NULL, *org = NULL;
	struct dime_signet_trust trust;
	struct dime_signet_verdict v;
	uint8_t pok[32];

	memset(&trust, 0, sizeof(trust));
	if (want == NULL || against == NULL) {
		conf_result(c, id, "manifest has no project_expect verdict / validated_against");
		return;
	}
	if (conf_signet(&s, &why, c, bin != NULL ? bin : arm, bin != NULL) != 0) {
		got = "invalid";
	} else if (conf_trust(&trust, &org, pok, c, s, against, &why) != 0) {
		conf_result(c, id, "trust for %s: %s", against, why);
		goto out;
	} else {
		cli_validate(&v, s, &trust);
		got = conf_verdict_name(&v);
		why = v.reason;
	}
	if (strcmp(got, want) != 0)
		conf_result(c, id, "got %s (%s), want %s", got, why, want);
	else
		conf_result(c, id, NULL);
out:
	dime_signet_free(s);
	dime_signet_free(org);
}

/* A party's files agree with the manifest: keys derive the listed public keys, the signet
 * carries them, the POK/SOK seed files derive the POK and a SOK with the listed permissions. */
static void
conf_party_check(struct conf *c, const char *name, const json_t *p)
{
	char id[128];
	struct dime_signet *s = NULL;
	struct dime_ks *ks = NULL;
	uint8_t want[33], got[33], *buf = NULL;
	size_t len = 0, n = 0;
	uint32_t kid = 0;
	const char *why = "";

	snprintf(id, sizeof(id), "party:%s", name);
	if (dime_ks_new(&ks) != DIME_OK)
		return;
	if (conf_signet(&s, &why, c, conf_str(p, "signet_bin"), 1) != 0) {
		conf_result(c, id, "signet: %s", why);
		goto out;
	}
	if (conf_hex32(want, conf_str(p, "sign_pub_hex")) != 0 ||
	    dime_signet_signing_key(s, got) != DIME_OK || memcmp(want, got, 32) != 0) {
		conf_result(c, id, "signet signing key differs from sign_pub_hex");
		goto out;
	}
	if (conf_str(p, "enc_pub_compressed_hex") == NULL ||
	    dime_hex_decode(want, sizeof(want), &n, conf_str(p, "enc_pub_compressed_hex"),
			    strlen(conf_str(p, "enc_pub_compressed_hex"))) != DIME_OK ||
	    n != 33 || dime_signet_enc_key(s, got) != DIME_OK || memcmp(want, got, 33) != 0) {
		conf_result(c, id, "signet encryption key differs from enc_pub_compressed_hex");
		goto out;
	}
	if ((why = conf_keys_match(c, s, p)) != NULL) {
		conf_result(c, id, "%s", why);
		goto out;
	}
	if (conf_str(p, "pok_ed25519_pem") != NULL) {
		if (conf_read(&buf, &len, c, conf_str(p, "pok_ed25519_pem")) != 0 ||
		    dime_ks_load(ks, &kid, buf, len) != DIME_OK ||
		    dime_ks_sign_pub(ks, got, kid) != DIME_OK ||
		    dime_signet_signing_key(s, want) != DIME_OK || memcmp(got, want, 32) != 0) {
			conf_result(c, id, "POK seed file does not derive the signet's POK");
			goto out;
		}
		dime_wipe(buf, len);
		free(buf);
		buf = NULL;
	}
	if (conf_str(p, "sok1_ed25519_pem") != NULL) {
		json_int_t perms = json_integer_value(json_object_get(p, "sok1_permissions"));
		int found = 0;

		if (conf_read(&buf, &len, c, conf_str(p, "sok1_ed25519_pem")) != 0 ||
		    dime_ks_load(ks, &kid, buf, len) != DIME_OK ||
		    dime_ks_sign_pub(ks, got, kid) != DIME_OK) {
			conf_result(c, id, "SOK seed file does not load");
			goto out;
		}
		for (size_t i = 0; i < dime_signet_n_soks(s); i++) {
			uint8_t pm = 0;

			if (dime_signet_sok(s, &pm, want, i) == DIME_OK &&
			    memcmp(want, got, 32) == 0 && pm == perms)
				found = 1;
		}
		if (!found) {
			conf_result(c, id, "SOK seed file matches no SOK with permissions %lld",
				    (long long)perms);
			goto out;
		}
	}
	conf_result(c, id, NULL);
out:
	if (buf != NULL) {
		dime_wipe(buf, len);
		free(buf);
	}
	dime_signet_free(s);
	dime_ks_free(ks);
}

static void
conf_mrec_case(struct conf *c, const json_t *cs, const char *id)
{
	const json_t *files = json_object_get(cs, "files"),
		     *pe = json_object_get(cs, "project_expect");
	const char *want, *why = "";
	uint8_t *txt = NULL, *cert = NULL, *der = NULL;
	size_t len = 0, clen = 0, dlen = 0, used = 0;
	struct dime_mrec m;
	int rc;

	/* project_expect is "accept" or "reject"; an object with a verdict is taken too, as the
	 * other kinds of case carry theirs. */
	want = json_is_string(pe) ? json_string_value(pe) : conf_str(pe, "verdict");
	if (want == NULL || (strcmp(want, "accept") != 0 && strcmp(want, "reject") != 0)) {
		conf_result(c, id, "manifest has no project_expect accept or reject");
		return;
	}
	if (conf_read(&txt, &len, c, conf_str(files, "txt")) != 0) {
		conf_result(c, id, "file missing");
		return;
	}
	while (len > 0 && (txt[len - 1] == '\n' || txt[len - 1] == '\r'))
		len--;
	rc = dime_mrec_parse(&m, &why, (const char *)txt, len);
	if ((rc == DIME_OK) != (strcmp(want, "accept") == 0)) {
		conf_result(c, id, "got %s (%s), want %s", rc == DIME_OK ? "accept" : "reject", why,
			    want);
		goto out;
	}
	if (rc == DIME_OK) {
		/* Every POK must be some org party's key. */
		for (size_t i = 0; i < m.n_poks; i++) {
			const char *k;
			json_t *p;
			int found = 0;

			json_object_foreach(c->parties, k, p) {
				uint8_t pub[32];

				if (conf_hex32(pub, conf_str(p, "sign_pub_hex")) == 0 &&
				    memcmp(pub, m.poks[i], 32) == 0)
					found = 1;
			}
			if (!found) {
				conf_result(c, id, "pok %zu is no party's key", i);
				goto out;
			}
		}
	}
	if (rc == DIME_OK && conf_str(files, "tls_cert") != NULL) {
		char label[DIME_ARMOR_LABEL_MAX];

		if (conf_read(&cert, &clen, c, conf_str(files, "tls_cert")) != 0 ||
		    (der = malloc(clen + 1)) == NULL ||
		    dime_armor_decode(label, der, clen, &dlen, &used, cert, clen) != DIME_OK) {
			conf_result(c, id, "certificate does not load");
			goto out;
		}
		if (dime_mrec_tls_check(&m, der, dlen) != DIME_OK) {
			conf_result(c, id, "tls field does not match the certificate");
			goto out;
		}
	}
	conf_result(c, id, NULL);
out:
	free(txt);
	free(cert);
	free(der);
}

static void
conf_mrec_probes(struct conf *c, const char *case_id, const char *mpath)
{
	char path[4096], id[256];
	json_error_t jerr;
	json_t *probes;
	size_t i;
	json_t *p;

	if (mpath == NULL) {
		conf_result(c, case_id, "manifest names no probe file");
		return;
	}
	conf_path(path, sizeof(path), c, mpath);
	if ((probes = json_load_file(path, 0, &jerr)) == NULL || !json_is_array(probes)) {
		conf_result(c, case_id, "cannot read %s: %s", path, jerr.text);
		json_decref(probes);
		return;
	}
	json_array_foreach(probes, i, p) {
		const char *rec = conf_str(p, "record"), *want = conf_str(p, "project"), *why = "";
		struct dime_mrec m;
		int rc;

		snprintf(id, sizeof(id), "%s#%zu", case_id, i + 1);
		if (rec == NULL || want == NULL) {
			conf_result(c, id, "probe lacks record or project");
			continue;
		}
		rc = dime_mrec_parse(&m, &why, rec, strlen(rec));
		if ((rc == DIME_OK) != (strcmp(want, "accept") == 0))
			conf_result(c, id, "'%s': got %s (%s), want %s", rec,
				    rc == DIME_OK ? "accept" : "reject", why, want);
		else
			conf_result(c, id, NULL);
	}
	json_decref(probes);
}

/* PRIME (magma) files use another encoding: our parsers must refuse them, cleanly. */
static void
conf_prime(struct conf *c, const json_t *cs, const char *id)
{
	const json_t *files = json_object_get(cs, "files");
	struct dime_signet *s = NULL;
	struct dime_ks *ks = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	uint32_t kid = 0;
	const char *why = "";
	int sig_ok, key_ok;

	if (conf_signet(&s, &why, c, conf_str(files, "signet"), 0) == 0) {
		sig_ok = 1;
		dime_signet_free(s);
	} else {
		sig_ok = strcmp(why, "file missing") == 0 ? -1 : 0;
	}
	if (conf_read(&buf, &len, c, conf_str(files, "key")) != 0) {
		key_ok = -1;
	} else {
		key_ok = dime_ks_new(&ks) == DIME_OK && dime_ks_load(ks, &kid, buf, len) == DIME_OK;
		dime_ks_free(ks);
		dime_wipe(buf, len);
		free(buf);
	}
	if (sig_ok < 0 || key_ok < 0)
		conf_result(c, id, "fixture files missing");
	else if (sig_ok || key_ok)
		conf_result(c, id, "a PRIME %s was accepted as a libdime one",
			    sig_ok ? "signet" : "key");
	else
		conf_result(c, id, NULL);
}

int
cmd_conformance(int argc, char **argv)
{
	struct conf c;
	char path[4096];
	json_error_t jerr;
	json_t *man, *cases, *cs;
	const char *name;
	json_t *p;
	size_t i;

	memset(&c, 0, sizeof(c));
	if (cli_wants_help(argc, argv, conf_usage))
		return CLI_OK;
	if (argc != 2)
		return cli_err("conformance: DIR missing\n%s", conf_usage);
	c.dir = argv[1];
	snprintf(path, sizeof(path), "%s/manifest.json", c.dir);
	if ((man = json_load_file(path, 0, &jerr)) == NULL)
		return cli_err("conformance: %s: %s (line %d)", path, jerr.text, jerr.line);
	c.parties = json_object_get(man, "parties");
	cases = json_object_get(man, "cases");
	if (!json_is_object(c.parties) || !json_is_array(cases)) {
		json_decref(man);
		return cli_err("conformance: %s lacks parties or cases", path);
	}
	json_object_foreach(c.parties, name, p)
		conf_party_check(&c, name, p);
	json_array_foreach(cases, i, cs) {
		const char *id = conf_str(cs, "id"), *kind = conf_str(cs, "kind");

		if (id == NULL || kind == NULL) {
			conf_result(&c, "?", "case %zu lacks id or kind", i);
			continue;
		}
		if (strcmp(kind, "signet-org") == 0 || strcmp(kind, "signet-user") == 0 ||
		    strcmp(kind, "signet-ssr") == 0) {
			conf_signet_case(&c, cs, id);
		} else if (strcmp(kind, "signet-variant") == 0) {
			conf_signet_variant(&c, cs, id);
		} else if (strcmp(kind, "management-record") == 0) {
			conf_mrec_case(&c, cs, id);
		} else if (strcmp(kind, "management-record-parse") == 0) {
			conf_mrec_probes(&c, id, conf_str(json_object_get(cs, "files"), "json"));
		} else if (strcmp(kind, "prime-org-signet+key") == 0) {
			conf_prime(&c, cs, id);
		} else if (strncmp(kind, "dmime", 5) == 0) {
			conf_dmime_case(&c, cs, id);
		} else if (strncmp(kind, "dmtp", 4) == 0) {
			conf_dmtp_case(&c, cs, id);
		} else {
			conf_result(&c, id, "unknown case kind %s", kind);
		}
	}
	json_decref(man);
	printf("%d skipped\n%d passed, %d failed\n", c.skipped, c.passed, c.failed);
	return c.failed == 0 ? CLI_OK : CLI_NO;
}

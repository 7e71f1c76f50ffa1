/* dime store import / list: bring signets, SSRs and key files into the embedded store, and show
 * what it holds. Imports are checked: signets parse, user signets verify against a stored org
 * signet when there is one, and key files are matched to the signet they belong to. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "dime/codec.h"

static const char store_import_usage[] =
    "usage: dime [--store PATH] store import [--as IDENT] [--hosted] [--pok B64]...\n"
    "                                        [--no-custody] FILE...\n"
    "\n"
    "Imports signets, SSRs and private key files (armored or binary). A signet is filed\n"
    "under its identifier (field 254), a key file under the identity whose stored signet\n"
    "carries its public key. Every check that can be made must pass, or nothing is stored:\n"
    "an org signet is checked against the POKs given with --pok; a user signet's own keys\n"
    "and self-signature always, its org signatures against its org's stored signet, and a\n"
    "new version's custody signature against the previous stored version.\n"
    "A signet whose trust anchor is missing (an org signet without --pok, a user signet\n"
    "whose org is not stored or pending) is stored pending: never used to wrap or accept,\n"
    "shown by store list. Importing the org signet with --pok verifies its domain's pending\n"
    "users (and drops those that fail).\n"
    "\n"
    "  --as IDENT     file the objects under IDENT (needed for SSRs, which carry no identifier)\n"
    "  --hosted       mark the imported identities as hosted here\n"
    "  --pok B64      a POK from the org's management record (43 base64 characters)\n"
    "  --no-custody   accept a fully verified user signet with a new key and no custody\n"
    "                 signature as the start of a new custody chain (a lost key)\n";

static const char store_list_usage[] =
    "usage: dime [--store PATH] store list [IDENT]\n"
    "\n"
    "Lists every stored object: identity, kind, version, hosted, state (verified or pending:\n"
    "see store import), and for signets the full fingerprint (SSRs: ssr fingerprint).\n";

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

static int store_row_signet(struct dime_signet **s, struct dime_store *st, int64_t rowid,
			    const char *ident);

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
	if (store_row_signet(&s, m->st, row->rowid, row->ident) != CLI_OK)
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
	/* A key may arrive before its signet is verified (pending): it is matched all the same. */
	if (dime_store_list_all(st, as, 0, store_match_row, &m) != DIME_OK)
		goto out;
	if (!m.found) {
		rc = as != NULL ? cli_no("%s: no stored signet of %s carries this key", path, as)
				: cli_no("%s: no stored signet carries this key; import the signet "
					 "first",
					 path);
		goto out;
	}
	sk = kind == DIME_KEY_ORG    ? DIME_STORE_ORG_KEY
	     : kind == DIME_KEY_USER ? DIME_STORE_USER_KEY
				     : DIME_STORE_SOK_KEY;
	/* Keys are stored in the binary reference format whatever form they came in. */
	if ((e = dime_ks_export(ks, out, sizeof(out), &n, id, 0)) != DIME_OK ||
	    (e = dime_store_put(st, &version, m.ident, sk, out, n, hosted, m.perms, "")) !=
		DIME_OK) {
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

/* The SSR inside a user signet (fields before 6, under the SSR magic): what can be checked of
 * a user signet without its org is what an SSR carries (keys, self-signature, custody).
 * Returns: DIME_OK or a parse error; *out owned. */
static int
store_ssr_part(struct dime_signet **out, const struct dime_signet *s)
{
	const struct dime_signet_field *f6 = dime_signet_find(s, DIME_FID_USER_ORG_SIG);
	struct dime_view b = dime_signet_bytes(s);
	size_t n = f6 != NULL ? f6->off : b.len - DIME_SIGNET_HEADER_BYTES;
	uint8_t *buf;
	int rc;

	*out = NULL;
	if (dime_signet_type(s) == DIME_SIGNET_SSR)
		return dime_signet_parse(out, NULL, b.p, b.len);
	if ((buf = malloc(DIME_SIGNET_HEADER_BYTES + n)) == NULL)
		return DIME_E_NOMEM;
	buf[0] = DIME_SIGNET_SSR >> 8;
	buf[1] = DIME_SIGNET_SSR & 0xff;
	buf[2] = (uint8_t)(n >> 16);
	buf[3] = (uint8_t)(n >> 8);
	buf[4] = (uint8_t)n;
	memcpy(buf + DIME_SIGNET_HEADER_BYTES, b.p + DIME_SIGNET_HEADER_BYTES, n);
	rc = dime_signet_parse(out, NULL, buf, DIME_SIGNET_HEADER_BYTES + n);
	free(buf);
	return rc;
}

/* The stored signet (any state) that custody of a new user signet or SSR of ident links to:
 * the latest user signet below version `below` (0: any), else the latest SSR. */
struct store_prev {
	uint32_t below;
	int64_t rowid;
	uint32_t version;
	enum dime_store_kind kind;
};

static int
store_prev_row(const struct dime_store_row *row, void *arg)
{
	struct store_prev *p = arg;

	if (row->kind == DIME_STORE_USER_SIGNET && (p->below == 0 || row->version < p->below)) {
		p->rowid = row->rowid;
		p->version = row->version;
		p->kind = row->kind;
	} else if (row->kind == DIME_STORE_SSR && p->kind != DIME_STORE_USER_SIGNET) {
		p->rowid = row->rowid;
		p->version = row->version;
		p->kind = row->kind;
	}
	return 0;
}

/* Parse the stored row rowid. Returns: CLI_OK, CLI_ERR (printed). */
static int
store_row_signet(struct dime_signet **s, struct dime_store *st, int64_t rowid, const char *ident)
{
	uint8_t *blob = NULL;
	size_t len = 0;
	const char *why = "";
	int rc;

	*s = NULL;
	if ((rc = dime_store_get_row(st, &blob, &len, rowid)) != DIME_OK)
		return cli_err("store: %s", dime_strerror(rc));
	rc = dime_signet_parse(s, &why, blob, len);
	free(blob);
	if (rc != DIME_OK)
		return cli_err("store holds a damaged signet for %s: %s", ident, why);
	return CLI_OK;
}

/* Custody of a user signet or SSR s against the stored history of ident (DIME spec: a new key
 * is endorsed by the previous one through field 4):
 *   - nothing stored before: nothing to link to (the first version this store sees);
 *   - field 4 present: it must verify with the previous version's signing key;
 *   - field 4 absent: the signing key must be the previous one's (same key, new fields), or
 *     the operator said --no-custody (a new chain start, only for a fully verified signet).
 * below: the version s is stored as when re-verifying it (0 at import).
 * Returns: CLI_OK, CLI_NO (*why set), CLI_ERR. Out: *note, a remark for the output. */
static int
store_custody(const char **why, const char **note, struct dime_store *st,
	      const struct dime_signet *s, const char *ident, uint32_t below, int no_custody)
{
	struct store_prev p;
	struct dime_signet *prev = NULL, *ssr = NULL;
	struct dime_signet_trust trust;
	struct dime_signet_verdict v;
	uint8_t a[DIME_ED25519_PUB_BYTES], b[DIME_ED25519_PUB_BYTES];
	int rc = CLI_ERR;

	*why = "";
	*note = "";
	memset(&p, 0, sizeof(p));
	memset(&trust, 0, sizeof(trust));
	p.below = below;
	if (dime_store_list_all(st, ident, 0, store_prev_row, &p) != DIME_OK) {
		rc = cli_err("store: cannot list %s", ident);
		goto out;
	}
	if (p.rowid == 0) {
		if (dime_signet_find(s, DIME_FID_USER_CUSTODY) != NULL)
			*note = "; custody not checked: no earlier version stored";
		rc = CLI_OK;
		goto out;
	}
	if (store_row_signet(&prev, st, p.rowid, ident) != CLI_OK)
		goto out;
	if (dime_signet_find(s, DIME_FID_USER_CUSTODY) != NULL) {
		if (store_ssr_part(&ssr, s) != DIME_OK) {
			*why = "malformed";
			rc = CLI_NO;
			goto out;
		}
		trust.previous = prev;
		cli_validate(&v, ssr, &trust);
		if (v.kind != DIME_SIGNET_VALID) {
			*why =
			    "custody signature (field 4) does not verify with the previous stored "
			    "version's key";
			rc = CLI_NO;
			goto out;
		}
		rc = CLI_OK;
		goto out;
	}
	if (dime_signet_signing_key(s, a) == DIME_OK &&
	    dime_signet_signing_key(prev, b) == DIME_OK && memcmp(a, b, sizeof(a)) == 0) {
		rc = CLI_OK;
		goto out;
	}
	if (no_custody) {
		*note = "; --no-custody: a new custody chain starts here";
		rc = CLI_OK;
		goto out;
	}
	*why = "a new signing key without a custody signature (field 4) by the previous stored "
	       "version; --no-custody starts a new chain";
	rc = CLI_NO;
out:
	dime_signet_free(prev);
	dime_signet_free(ssr);
	return rc;
}

/* The latest org signet of domain, verified first, else pending. Returns: CLI_OK, CLI_NO,
 * CLI_ERR; *state. */
struct store_latest {
	int64_t rowid;
};

static int
store_latest_row(const struct dime_store_row *row, void *arg)
{
	((struct store_latest *)arg)->rowid = row->rowid;
	return 0;
}

static int
store_org_any(struct dime_signet **org, enum dime_store_state *state, struct dime_store *st,
	      const char *domain)
{
	struct store_latest l = {0};
	int rc = cli_store_signet(org, st, domain, DIME_STORE_ORG_SIGNET, 0);

	*state = DIME_STORE_VERIFIED;
	if (rc != CLI_NO)
		return rc;
	if (dime_store_list_all(st, domain, DIME_STORE_ORG_SIGNET, store_latest_row, &l) != DIME_OK)
		return cli_err("store: cannot list %s", domain);
	if (l.rowid == 0)
		return CLI_NO;
	*state = DIME_STORE_PENDING;
	return store_row_signet(org, st, l.rowid, domain);
}

struct store_pending {
	const char *domain;
	size_t n, cap;
	struct dime_store_row *rows;
	int err;
};

static int
store_pending_row(const struct dime_store_row *row, void *arg)
{
	struct store_pending *p = arg;
	const char *dom = cli_domain_of(row->ident);

	if (row->state != DIME_STORE_PENDING || dom == NULL || strcmp(dom, p->domain) != 0)
		return 0;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		struct dime_store_row *r = realloc(p->rows, cap * sizeof(*r));

		if (r == NULL) {
			p->err = 1;
			return 1;
		}
		p->rows = r;
		p->cap = cap;
	}
	p->rows[p->n++] = *row;
	return 0;
}

/* The org signet of domain is verified now: check each pending user signet of the domain
 * against it, in version order (custody links to the versions kept before it). Valid ones
 * become verified, the others are deleted. Runs inside the import's transaction.
 * Returns: CLI_OK or CLI_ERR. */
static int
store_reverify(struct dime_store *st, const char *domain, const struct dime_signet *org)
{
	struct store_pending p;
	int rc = CLI_ERR, e;

	memset(&p, 0, sizeof(p));
	p.domain = domain;
	if (dime_store_list_all(st, NULL, DIME_STORE_USER_SIGNET, store_pending_row, &p) !=
		DIME_OK ||
	    p.err) {
		rc = cli_err("store: cannot list the pending signets of %s", domain);
		goto out;
	}
	for (size_t i = 0; i < p.n; i++) {
		const struct dime_store_row *r = &p.rows[i];
		struct dime_signet *s = NULL;
		struct dime_signet_trust trust;
		struct dime_signet_verdict v;
		const char *why = "", *note = "";
		int c;

		memset(&trust, 0, sizeof(trust));
		trust.org = org;
		if (store_row_signet(&s, st, r->rowid, r->ident) != CLI_OK)
			goto out;
		cli_validate(&v, s, &trust);
		/* custody is judged by store_custody against the stored history, not here */
		if (v.kind == DIME_SIGNET_INVALID) {
			why = v.reason;
			c = CLI_NO;
		} else {
			c = store_custody(&why, &note, st, s, r->ident, r->version, 0);
		}
		dime_signet_free(s);
		if (c == CLI_ERR)
			goto out;
		if (c == CLI_OK) {
			e = dime_store_set_state(st, r->rowid, DIME_STORE_VERIFIED);
			if (e == DIME_OK)
				printf("verified pending user-signet %s v%u %s\n", r->ident,
				       r->version, r->fingerprint);
		} else {
			e = dime_store_delete(st, r->rowid);
			if (e == DIME_OK)
				printf("dropped pending user-signet %s v%u %s: %s\n", r->ident,
				       r->version, r->fingerprint, why);
		}
		if (e != DIME_OK) {
			rc = cli_err("store: %s", dime_strerror(e));
			goto out;
		}
	}
	rc = CLI_OK;
out:
	free(p.rows);
	return rc;
}

/* Check a signet as far as the store allows, then file it verified or pending (see
 * enum dime_store_state). One transaction: the checks read the state they write into. */
static int
store_import_signet(struct dime_store *st, const char *path, const uint8_t *buf, size_t len,
		    const char *as, int hosted, const uint8_t (*poks)[DIME_ED25519_PUB_BYTES],
		    size_t n_poks, int no_custody)
{
	struct dime_signet *s = NULL, *org = NULL, *ssr = NULL;
	struct dime_signet_trust trust;
	struct dime_signet_verdict v;
	struct dime_store_row dup;
	struct dime_view idv = {NULL, 0}, b;
	enum dime_signet_type t;
	enum dime_store_kind sk;
	enum dime_store_state state = DIME_STORE_VERIFIED, org_state = DIME_STORE_VERIFIED;
	uint8_t own_pok[1][DIME_ED25519_PUB_BYTES];
	char ident[256], fp[DIME_FP_B64_LEN + 1], pending[300] = "";
	const char *why = "", *note = "", *dom = NULL;
	uint32_t version = 0;
	int rc = CLI_ERR, e, have_dup = 0;

	memset(&trust, 0, sizeof(trust));
	if ((e = dime_signet_load(&s, &why, buf, len)) != DIME_OK)
		return cli_no("%s: not a valid signet: %s%s%s", path, dime_strerror(e),
			      *why ? ": " : "", why);
	t = dime_signet_type(s);
	b = dime_signet_bytes(s);
	if (dime_signet_identifier(s, &idv) != DIME_OK)
		idv.len = 0;
	if (as != NULL) {
		snprintf(ident, sizeof(ident), "%s", as);
	} else if (idv.len > 0 && idv.len < sizeof(ident)) {
		memcpy(ident, idv.p, idv.len);
		ident[idv.len] = 0;
	} else {
		rc = cli_no("%s: the %s carries no identifier; name it with --as", path,
			    cli_type_name(t));
		goto out;
	}
	if (cli_lower(ident, sizeof(ident), ident) != 0)
		goto out;
	/* A signet names itself (field 254, signed): filing it under another name is refused. */
	if (as != NULL && idv.len > 0 &&
	    (idv.len != strlen(as) || strncasecmp((const char *)idv.p, as, idv.len) != 0)) {
		rc = cli_no("%s: refused: the signet is for %.*s, not %s", path,
			    (int)(idv.len < 256 ? idv.len : 256), (const char *)idv.p, as);
		goto out;
	}
	if (t != DIME_SIGNET_ORG && (dom = cli_domain_of(ident)) == NULL) {
		rc = cli_no("%s: refused: '%s' is not an address (local@domain)", path, ident);
		goto out;
	}
	sk = t == DIME_SIGNET_ORG    ? DIME_STORE_ORG_SIGNET
	     : t == DIME_SIGNET_USER ? DIME_STORE_USER_SIGNET
				     : DIME_STORE_SSR;
	if ((e = dime_signet_fingerprint_b64(
		 fp, s, t == DIME_SIGNET_SSR ? DIME_FP_SSR : DIME_FP_FULL)) != DIME_OK) {
		rc = cli_no("%s: refused: %s", path, dime_strerror(e));
		goto out;
	}
	if ((e = dime_store_begin(st)) != DIME_OK) {
		rc = cli_err("%s: store: %s", path, dime_strerror(e));
		goto out;
	}

	/* 1. What the signet proves by itself and against its trust anchor, when stored. */
	if (t == DIME_SIGNET_ORG) {
		if (n_poks == 0) {
			/* Without a POK from DNS only its own signatures can be checked. */
			if (dime_signet_signing_key(s, own_pok[0]) != DIME_OK)
				memset(own_pok, 0, sizeof(own_pok));
			trust.poks = (const uint8_t(*)[DIME_ED25519_PUB_BYTES])own_pok;
			trust.n_poks = 1;
			state = DIME_STORE_PENDING;
			snprintf(pending, sizeof(pending), "pending: no --pok to check it against");
		} else {
			trust.poks = poks;
			trust.n_poks = n_poks;
		}
		cli_validate(&v, s, &trust);
		why = v.reason;
	} else {
		if ((e = store_ssr_part(&ssr, s)) != DIME_OK) {
			rc = cli_no("%s: refused: %s", path, dime_strerror(e));
			goto out;
		}
		/* keys and self-signature; custody (BROKEN without a previous) comes in step 2 */
		cli_validate(&v, ssr, NULL);
		why = v.reason;
		if (v.kind == DIME_SIGNET_BROKEN_CUSTODY)
			v.kind = DIME_SIGNET_VALID;
		if (v.kind == DIME_SIGNET_VALID && t == DIME_SIGNET_USER) {
			if ((e = store_org_any(&org, &org_state, st, dom)) == CLI_ERR)
				goto out;
			if (org != NULL) {
				trust.org = org;
				cli_validate(&v, s, &trust);
				why = v.reason;
				if (v.kind == DIME_SIGNET_BROKEN_CUSTODY)
					v.kind = DIME_SIGNET_VALID;
			}
			if (org == NULL || org_state == DIME_STORE_PENDING) {
				state = DIME_STORE_PENDING;
				snprintf(pending, sizeof(pending), "pending: org %s %s", dom,
					 org == NULL ? "not stored" : "pending");
			}
		}
	}
	if (v.kind != DIME_SIGNET_VALID) {
		rc = cli_no("%s: refused: %s", path, why);
		goto out;
	}

	/* 2. Custody against the stored history, unless these exact bytes are stored already. */
	e = dime_store_find(st, &dup, ident, sk, b.p, b.len);
	if (e != DIME_OK && e != DIME_E_NOTFOUND) {
		rc = cli_err("%s: store: %s", path, dime_strerror(e));
		goto out;
	}
	have_dup = e == DIME_OK;
	/* A stored pending copy about to be verified is judged as re-verification would. */
	if (have_dup && dup.state == DIME_STORE_PENDING && state == DIME_STORE_VERIFIED &&
	    t != DIME_SIGNET_ORG) {
		e = store_custody(&why, &note, st, s, ident, dup.version, 0);
		if (e == CLI_ERR)
			goto out;
		if (e == CLI_NO) {
			rc = cli_no("%s: refused: %s", path, why);
			goto out;
		}
	}
	if (!have_dup && t != DIME_SIGNET_ORG) {
		if (no_custody && state != DIME_STORE_VERIFIED) {
			rc =
			    cli_no("%s: refused: --no-custody needs the signet fully verified (%s)",
				   path, pending);
			goto out;
		}
		e = store_custody(&why, &note, st, s, ident, 0, no_custody);
		if (e == CLI_ERR)
			goto out;
		if (e == CLI_NO) {
			rc = cli_no("%s: refused: %s", path, why);
			goto out;
		}
	}

	/* 3. File it. A stored duplicate keeps its version; a pending one may be verified now,
	 * a verified one is never demoted. */
	if ((e = dime_store_put(st, &version, ident, sk, b.p, b.len, hosted, 0, fp)) != DIME_OK) {
		rc = cli_err("%s: store: %s", path, dime_strerror(e));
		goto out;
	}
	if (have_dup && dup.state == DIME_STORE_VERIFIED)
		state = DIME_STORE_VERIFIED;
	if ((!have_dup && state == DIME_STORE_PENDING) || (have_dup && dup.state != state)) {
		if ((e = dime_store_find(st, &dup, ident, sk, b.p, b.len)) != DIME_OK ||
		    (e = dime_store_set_state(st, dup.rowid, state)) != DIME_OK) {
			rc = cli_err("%s: store: %s", path, dime_strerror(e));
			goto out;
		}
	}
	printf("imported %s %s v%u %s (%s%s)\n", store_kind_name(sk), ident, version, fp,
	       state == DIME_STORE_VERIFIED ? "verified" : pending, note);
	/* 4. A verified org signet settles the pending users of its domain. */
	if (t == DIME_SIGNET_ORG && state == DIME_STORE_VERIFIED &&
	    store_reverify(st, ident, s) != CLI_OK)
		goto out;
	if ((e = dime_store_commit(st)) != DIME_OK) {
		rc = cli_err("%s: store: %s", path, dime_strerror(e));
		goto out;
	}
	rc = CLI_OK;
out:
	dime_store_rollback(st);
	dime_signet_free(s);
	dime_signet_free(org);
	dime_signet_free(ssr);
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
	int hosted = 0, no_custody = 0, rc = CLI_OK;
	struct dime_store *st = NULL;

	if (cli_wants_help(argc, argv, store_import_usage))
		return CLI_OK;
	for (int i = 1; i < argc; i++) {
		size_t n = 0;

		if (strcmp(argv[i], "--hosted") == 0) {
			hosted = 1;
		} else if (strcmp(argv[i], "--no-custody") == 0) {
			no_custody = 1;
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
						(const uint8_t(*)[DIME_ED25519_PUB_BYTES])poks,
						n_poks, no_custody);
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
	printf("%-32s %-12s v%-3u %-7s %-8s", row->ident, store_kind_name(row->kind), row->version,
	       row->hosted ? "hosted" : "-",
	       row->state == DIME_STORE_PENDING ? "pending" : "verified");
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
	for (int i = 1; i < argc; i++)
		if (argv[i][0] == '-')
			return cli_err("store list: unknown option %s\n%s", argv[i],
				       store_list_usage);
	if (argc > 2)
		return cli_err("store list: one IDENT at most\n%s", store_list_usage);
	if (argc == 2 && cli_lower(ident, sizeof(ident), argv[1]) != 0)
		return cli_err("store list: bad IDENT");
	if (cli_store_existing(&st) != CLI_OK)
		return CLI_ERR;
	rc = dime_store_list_all(st, argc == 2 ? ident : NULL, 0, store_list_row, NULL);
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
			return cli_err("store export: unexpected %s\n%s", argv[i],
				       store_export_usage);
		} else {
			ident = argv[i];
		}
	}
	if (ident == NULL || cli_lower(id, sizeof(id), ident) != 0)
		return cli_err("store export: IDENT missing\n%s", store_export_usage);
	if (cli_store_existing(&st) != CLI_OK)
		return CLI_ERR;
	rc = cli_store_signet(
	    &s, st, id, strchr(id, '@') != NULL ? DIME_STORE_USER_SIGNET : DIME_STORE_ORG_SIGNET,
	    (uint32_t)version);
	if (rc == CLI_NO && strchr(id, '@') != NULL)
		rc = cli_store_signet(&s, st, id, DIME_STORE_SSR, (uint32_t)version);
	if (rc == CLI_NO)
		rc = cli_no("store export: no signet of %s%s", id,
			    version ? " at that version" : "");
	if (rc == CLI_OK) {
		if (binary) {
			struct dime_view b = dime_signet_bytes(s);

			rc = fwrite(b.p, 1, b.len, stdout) == b.len ? CLI_OK
								    : cli_err("write failed");
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
			return cli_err("store rekey-secrets: one target only\n%s",
				       store_rekey_usage);
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
		printf("re-sealed %zu private key%s under the key file %s; set DIME_KEY_FILE=%s\n",
		       n, n == 1 ? "" : "s", file, file);
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

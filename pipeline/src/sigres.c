/* Checking fetched signets (dime/sigres.h). */

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dime/sigres.h"

const char *
dime_sr_basis_name(enum dime_sr_basis b)
{
	switch (b) {
	case DIME_SR_DNSSEC: return "dnssec";
	case DIME_SR_CA_TLS: return "ca-tls";
	case DIME_SR_NONE: break;
	}
	return "none";
}

/* Does text[i..] start a line equal to "-----<word> " (BEGIN or END)? */
static int
sr_marker(const char *text, size_t len, size_t i, const char *word)
{
	size_t wl = strlen(word);

	return len - i >= 5 + wl && memcmp(text + i, "-----", 5) == 0 &&
	       memcmp(text + i + 5, word, wl) == 0;
}

size_t
dime_sr_armor_blocks(struct dime_view *blocks, size_t cap, const char *text, size_t len)
{
	size_t i = 0, n = 0;

	while (i < len) {
		size_t start, e;

		while (i < len &&
		       (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
			i++;
		if (i == len)
			break;
		if (!sr_marker(text, len, i, "BEGIN "))
			return 0;
		start = i;
		/* to the END line, then the end of that line */
		for (e = i; e < len; e++)
			if ((e == 0 || text[e - 1] == '\n') && sr_marker(text, len, e, "END "))
				break;
		if (e == len)
			return 0;
		while (e < len && text[e] != '\n')
			e++;
		if (n < cap) {
			size_t end = e;

			while (end > start && text[end - 1] == '\r')
				end--;
			blocks[n].p = (const uint8_t *)text + start;
			blocks[n].len = end - start;
		}
		n++;
		i = e;
	}
	return n;
}

/* Parse exactly one armored signet of type from text. */
static int
sr_one(struct dime_signet **out, const char **why, const char *text, size_t len,
       enum dime_signet_type type)
{
	struct dime_view b;
	const char *w = "";

	*out = NULL;
	if (dime_sr_armor_blocks(&b, 1, text, len) != 1) {
		*why = "the reply does not hold exactly one armored signet";
		return DIME_E_MALFORMED;
	}
	if (dime_signet_load(out, &w, b.p, b.len) != DIME_OK) {
		*why = w[0] != 0 ? w : "the signet does not parse";
		return DIME_E_MALFORMED;
	}
	if (dime_signet_type(*out) != type) {
		dime_signet_free(*out);
		*out = NULL;
		*why =
		    type == DIME_SIGNET_ORG ? "not an organisational signet" : "not a user signet";
		return DIME_E_MALFORMED;
	}
	return DIME_OK;
}

/* Does s's identifier (field 254) equal name, ignoring case? */
static int
sr_names(const struct dime_signet *s, const char *name)
{
	struct dime_view id;
	size_t n = strlen(name);

	if (n > 1 && name[n - 1] == '.')
		n--;
	return dime_signet_identifier(s, &id) == DIME_OK && id.len == n &&
	       strncasecmp((const char *)id.p, name, n) == 0;
}

int
dime_sr_org(struct dime_signet **out, enum dime_sr_basis *basis, const char **why,
	    const struct dime_mr_result *mr, unsigned tls, const char *text, size_t len)
{
	struct dime_signet_trust trust;
	struct dime_signet_verdict v;
	struct dime_signet *s = NULL;
	int rc;

	*out = NULL;
	*basis = DIME_SR_NONE;
	*why = "";
	if (mr == NULL || mr->status != DIME_MR_FOUND || mr->rec.n_poks == 0) {
		*why = "no management record applies";
		return DIME_E_INVALID;
	}
	if (mr->rec.n_tls > 0 && !(tls & DIME_SR_TLS_RECORD)) {
		*why = "the host's certificate matches none of the record's tls= values";
		return DIME_E_BADSIG;
	}
	if ((rc = sr_one(&s, why, text, len, DIME_SIGNET_ORG)) != DIME_OK)
		return rc;
	if (!sr_names(s, mr->domain)) {
		*why = "the org signet names another domain";
		rc = DIME_E_BADSIG;
		goto out;
	}
	memset(&trust, 0, sizeof(trust));
	trust.poks = (const uint8_t(*)[DIME_ED25519_PUB_BYTES])mr->rec.poks;
	trust.n_poks = mr->rec.n_poks;
	if (dime_signet_validate(&v, s, &trust) != DIME_OK) {
		*why = v.reason[0] != 0 ? v.reason : "the org signet does not validate";
		rc = DIME_E_BADSIG;
		goto out;
	}
	if (mr->sec == DIME_DNS_SECURE || mr->sec == DIME_DNS_CONFIGURED) {
		*basis = DIME_SR_DNSSEC;
	} else if (tls & DIME_SR_TLS_CA) {
		*basis = DIME_SR_CA_TLS;
	} else {
		*why = "the record is not DNSSEC-validated and the host's certificate is not "
		       "CA-validated";
		rc = DIME_E_BADSIG;
		goto out;
	}
	*out = s;
	s = NULL;
	rc = DIME_OK;
out:
	dime_signet_free(s);
	return rc;
}

/* Validate s as a user signet of org, linked to previous when given. */
static int
sr_check_user(const char **why, const struct dime_signet *s, const struct dime_signet *org,
	      const struct dime_signet *previous)
{
	struct dime_signet_trust trust;
	struct dime_signet_verdict v;

	memset(&trust, 0, sizeof(trust));
	trust.org = org;
	trust.previous = previous;
	if (dime_signet_validate(&v, s, &trust) == DIME_OK)
		return DIME_OK;
	/* Nothing cached to link to: a rotated signet's custody cannot be checked, and custody
	 * is checked last, so everything else (self, org, full, id signatures) has passed. */
	if (previous == NULL && v.kind == DIME_SIGNET_BROKEN_CUSTODY &&
	    dime_signet_find(s, DIME_FID_USER_CUSTODY) != NULL)
		return DIME_OK;
	*why = v.reason[0] != 0 ? v.reason : "the user signet does not validate";
	return DIME_E_BADSIG;
}

int
dime_sr_user(struct dime_signet **out, const char **why, const char *address,
	     const struct dime_signet *org, const struct dime_signet *previous, const char *text,
	     size_t len)
{
	struct dime_signet *s = NULL;
	int rc;

	*out = NULL;
	*why = "";
	if (org == NULL || address == NULL) {
		*why = "no validated org signet";
		return DIME_E_BADSIG;
	}
	if ((rc = sr_one(&s, why, text, len, DIME_SIGNET_USER)) != DIME_OK)
		return rc;
	if (!sr_names(s, address)) {
		*why = "the user signet names another address";
		rc = DIME_E_BADSIG;
	} else {
		rc = sr_check_user(why, s, org, previous);
	}
	if (rc == DIME_OK)
		*out = s;
	else
		dime_signet_free(s);
	return rc;
}

/* The same version: equal crypto fingerprints (a core signet and its full form agree). */
static int
sr_same_version(const struct dime_signet *a, const struct dime_signet *b)
{
	uint8_t fa[DIME_FP_BYTES], fb[DIME_FP_BYTES];

	return dime_signet_fingerprint(fa, a, DIME_FP_CRYPTO) == DIME_OK &&
	       dime_signet_fingerprint(fb, b, DIME_FP_CRYPTO) == DIME_OK &&
	       memcmp(fa, fb, sizeof(fa)) == 0;
}

int
dime_sr_hist(struct dime_signet **last, size_t *n, size_t *at, const char **why,
	     const struct dime_signet *org, const struct dime_signet *previous, const char *text,
	     size_t len, size_t max)
{
	struct dime_view *b;
	struct dime_signet *prev = NULL, *cur = NULL;
	size_t nb;
	int rc = DIME_OK;

	*last = NULL;
	*n = *at = 0;
	*why = "";
	if (org == NULL) {
		*why = "no validated org signet";
		return DIME_E_BADSIG;
	}
	nb = dime_sr_armor_blocks(NULL, 0, text, len);
	if (nb == 0) {
		*why = "the reply holds no armored signets, or something else";
		return DIME_E_MALFORMED;
	}
	if (nb > max) {
		*why = "a longer chain than allowed";
		return DIME_E_LIMIT;
	}
	if ((b = calloc(nb, sizeof(*b))) == NULL)
		return DIME_E_NOMEM;
	(void)dime_sr_armor_blocks(b, nb, text, len);
	for (size_t i = 0; i < nb; i++) {
		const char *w = "";

		*at = i;
		if (dime_signet_load(&cur, &w, b[i].p, b[i].len) != DIME_OK) {
			*why = w[0] != 0 ? w : "a signet of the chain does not parse";
			rc = DIME_E_MALFORMED;
			break;
		}
		if (dime_signet_type(cur) != DIME_SIGNET_USER) {
			*why = "the chain holds something other than user signets";
			rc = DIME_E_MALFORMED;
			break;
		}
		/* The chain may start at the version held here (same crypto fingerprint): that one
		 * was validated when it was cached, and the next links to it. Otherwise the first
		 * links to the held version, and each next one to the one before. */
		if (i == 0 && previous != NULL && sr_same_version(cur, previous)) {
			/* nothing to check */
		} else if ((rc = sr_check_user(why, cur, org, i > 0 ? prev : previous)) !=
			   DIME_OK) {
			break;
		}
		dime_signet_free(prev);
		prev = cur;
		cur = NULL;
		*n = i + 1;
	}
	dime_signet_free(cur);
	if (rc == DIME_OK)
		*last = prev;
	else
		dime_signet_free(prev);
	free(b);
	return rc;
}

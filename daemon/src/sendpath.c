/* The steps of sending to another domain shared by `dime send` and the SMTP gateway: the
 * trustful author check and resolve-then-decide (dime/sendpath.h). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dime/sendpath.h"
#include "dime/sigfetch.h"
#include "dime/store.h"

static int
send_count_row(const struct dime_store_row *row, void *arg)
{
	(void)row;
	(*(size_t *)arg)++;
	return 0;
}

int
dime_send_author(struct dime_store *st, char origin_fp[88], const char *author, const char *domain,
		 char *why, size_t why_cap)
{
	struct dime_store_row row;
	uint8_t *blob = NULL;
	size_t len = 0, n_keys;
	int rc;

	origin_fp[0] = 0;
	rc = dime_store_get(st, &blob, &len, &row, author, DIME_STORE_USER_SIGNET, 0);
	free(blob);
	blob = NULL;
	if (rc == DIME_E_IO)
		goto io;
	if (rc != DIME_OK || !row.hosted) {
		(void)snprintf(why, why_cap, "%s is not a user hosted in this store", author);
		return DIME_E_NOTFOUND;
	}
	/* the key's metadata only: a store opened without its secrets (the key process holds
	 * them) lists key rows but never returns them */
	n_keys = 0;
	rc = dime_store_list(st, author, DIME_STORE_USER_KEY, send_count_row, &n_keys);
	if (rc == DIME_E_IO)
		goto io;
	if ((rc != DIME_OK && rc != DIME_E_INVALID) || n_keys == 0) {
		(void)snprintf(why, why_cap, "the keys of %s are not in this store", author);
		return DIME_E_NOTFOUND;
	}
	rc = dime_store_get(st, &blob, &len, &row, domain, DIME_STORE_ORG_SIGNET, 0);
	free(blob);
	if (rc == DIME_E_IO)
		goto io;
	if (rc != DIME_OK || !row.hosted || row.fingerprint[0] == 0) {
		(void)snprintf(why, why_cap, "%s is not an org hosted in this store", domain);
		return DIME_E_NOTFOUND;
	}
	memcpy(origin_fp, row.fingerprint, sizeof(row.fingerprint));
	return DIME_OK;
io:
	(void)snprintf(why, why_cap, "the store: %s", dime_strerror(rc));
	return DIME_E_IO;
}

int
dime_send_route(struct dime_send_route *r, const struct dime_sf_conf *sf, struct dime_store *st,
		int policy, const char *rcpt, int64_t now)
{
	struct dime_sf_result *res;
	const char *why = "";

	memset(r, 0, sizeof(*r));
	if ((res = calloc(1, sizeof(*res))) == NULL)
		return DIME_E_NOMEM;
	r->rc = dime_sf_resolve(res, sf, st, rcpt, now);
	r->act = dime_send_decide((enum dime_mrec_policy)policy, &res->mr, r->rc, &why);
	(void)snprintf(r->why, sizeof(r->why), "%s%s%s", why != NULL ? why : "",
		       res->why[0] != 0 ? ": " : "", res->why);
	(void)snprintf(r->dest_fp, sizeof(r->dest_fp), "%s", res->org_fp);
	dime_sf_result_clear(res);
	free(res);
	if (r->rc == DIME_E_NOMEM || r->rc == DIME_E_IO)
		return r->rc;
	return DIME_OK;
}

#ifndef DIME_PIPELINE_SIGRES_H
#define DIME_PIPELINE_SIGRES_H
/* Checking signets fetched from another domain (spec Parts 4, 5 and 7, docs/resolver.md
 * "Signets"): what a SGNT, HIST or VRFY reply carried, judged against the management record
 * and the org signet. Pure (no I/O): the caller fetches over DMTP and says how the DMTP host's
 * certificate was checked. Thread-safe.
 *
 * When an org signet counts as validated (spec Part 4 "TLS", the desktop-client walk-through):
 *  - its record was DNSSEC-validated (or configured by the operator): the POK match is enough;
 *  - otherwise only if the DMTP host's certificate was validated by a certificate authority for
 *    the host's name;
 *  - otherwise it is not validated, and is never used to encrypt or accept. */

#include <stddef.h>

#include "dime/common.h"
#include "dime/mrloc.h"
#include "dime/signet.h"

#ifdef __cplusplus
extern "C" {
#endif

enum dime_sr_basis {
	DIME_SR_NONE = 0,   /* not validated */
	DIME_SR_DNSSEC = 1, /* the record was DNSSEC-validated or configured */
	DIME_SR_CA_TLS = 2  /* the record was not, but the host's certificate was CA-validated */
};

/* Returns: a static name ("none", "dnssec", "ca-tls"). */
const char *dime_sr_basis_name(enum dime_sr_basis b);

/* How the certificate of the DMTP host that answered was checked, bits: RECORD, it matched a
 * tls= value of the record (the spec's or the SHA-512 form); CA, it chained to a trusted
 * certificate authority and named the host. */
#define DIME_SR_TLS_RECORD 1u
#define DIME_SR_TLS_CA	   2u

/* The org signet of mr->target's governing domain from a SGNT reply's text (one armored signet).
 * Checks: the record was found; when it lists tls= values, the certificate matched one (spec
 * Part 4: a consumer must confirm the certificate against them); the signet parses, is an org
 * signet, names that domain (field 254, case-insensitive), and validates against the record's
 * POKs; then the basis above. tls: DIME_SR_TLS_* bits.
 * Returns: DIME_OK (validated: *basis DNSSEC or CA_TLS), DIME_E_BADSIG (it does not validate,
 * or nothing validates the record: *why says which), DIME_E_MALFORMED (not one armored
 * signet), DIME_E_INVALID (mr is not a found record), DIME_E_NOMEM.
 * Out: *out (owned; dime_signet_free) only on DIME_OK; *basis; *why static. */
DIME_MUST_CHECK int dime_sr_org(struct dime_signet **out, enum dime_sr_basis *basis,
				const char **why, const struct dime_mr_result *mr, unsigned tls,
				const char *text, size_t len);

/* A user signet of address from a SGNT or VRFY reply's text: parses, is a user signet, names the
 * address (case-insensitive), validates against org (a validated org signet) and, when
 * previous is given (the version cached here), links to it by custody. Without previous, a
 * rotated signet's custody signature cannot be checked and is accepted on the org's signatures
 * alone (spec Part 5: custody is checked when a previous signet is cached; dime_sr_hist
 * establishes it otherwise).
 * Returns: DIME_OK, DIME_E_BADSIG, DIME_E_MALFORMED, DIME_E_NOMEM. Out: *out on DIME_OK. */
DIME_MUST_CHECK int dime_sr_user(struct dime_signet **out, const char **why, const char *address,
				 const struct dime_signet *org, const struct dime_signet *previous,
				 const char *text, size_t len);

/* A HIST reply's text: the armored core signets of one user, oldest first. Each must validate
 * against org; the first links by custody to previous when given (the version cached here; a
 * chain may also start at that version itself), or, with nothing cached, stands on the org's
 * signatures alone; each next one links to the one before.
 * Returns: DIME_OK, DIME_E_BADSIG (a broken link: *why and *at, the index), DIME_E_MALFORMED,
 * DIME_E_LIMIT (more than max signets), DIME_E_NOMEM.
 * Out: *n validated links; *last (owned) the newest signet of the chain on DIME_OK. */
DIME_MUST_CHECK int dime_sr_hist(struct dime_signet **last, size_t *n, size_t *at, const char **why,
				 const struct dime_signet *org, const struct dime_signet *previous,
				 const char *text, size_t len, size_t max);

/* Split text into its armored blocks ("-----BEGIN X-----" ... "-----END X-----"), in order.
 * Returns: the number of blocks (may exceed cap: only the first cap are filled), or 0 when text
 * holds anything but blocks and whitespace, or an unterminated block. */
size_t dime_sr_armor_blocks(struct dime_view *blocks, size_t cap, const char *text, size_t len);

#ifdef __cplusplus
}
#endif
#endif

/* dime resolve: find the management record that applies to a domain or address and say how it
 * was validated (docs/resolver.md). */

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "dime/codec.h"
#include "dime/dns.h"
#include "dime/mrloc.h"

#define RESOLVE_ROOT_ANCHOR "/usr/share/dns/root.key" /* Debian's dns-root-data */

static const char resolve_usage[] =
    "usage: dime resolve DOMAIN|ADDRESS [dns options] [--json]\n"
    "\n"
    "Walks from the organisational domain to DOMAIN asking _dime then _dx TXT records, applies\n"
    "the subdomain policies, and prints the management record that applies and how it was\n"
    "validated (secure: DNSSEC; insecure: no DNSSEC; configured: a static file).\n"
    "\n"
    "dns options (default: iterate from the root, validating with " RESOLVE_ROOT_ANCHOR "):\n"
    "  --dns-static FILE     answer from FILE (lines: name ttl TXT \"text\" ...), no network\n"
    "  --dns-config FILE     an unbound configuration (stub or forward zones, options)\n"
    "  --trust-anchor FILE   DS or DNSKEY records to validate with (repeatable: the last wins)\n"
    "  --resolv-conf FILE    forward to these name servers instead of iterating\n"
    "  --timeout SECONDS     per DNS query (default 10)\n"
    "\n"
    "Exit status: 0 a record applies; 1 legacy (proven: no record), bogus, invalid or a\n"
    "temporary failure (the verdict is printed); 2 usage or setup errors.\n";

static int
resolve_print_json(const struct dime_mr_result *r)
{
	json_t *o = json_object(), *dx = json_array(), *poks = json_array();
	char *s;
	int rc = CLI_ERR;

	if (o == NULL || dx == NULL || poks == NULL)
		goto out;
	json_object_set_new(o, "target", json_string(r->target));
	json_object_set_new(o, "verdict", json_string(dime_mr_status_name(r->status)));
	json_object_set_new(o, "validation", json_string(dime_dns_sec_name(r->sec)));
	if (r->status == DIME_MR_FOUND) {
		json_object_set_new(o, "domain", json_string(r->domain));
		json_object_set_new(o, "name", json_string(r->name));
		json_object_set_new(o, "record", json_string(r->txt));
		json_object_set_new(o, "ttl", json_integer(r->ttl));
		for (size_t i = 0; i < r->rec.n_poks; i++) {
			char b64[64];
			size_t n;

			if (dime_b64_encode(b64, sizeof(b64), &n, r->rec.poks[i],
					    sizeof(r->rec.poks[i]), DIME_B64_NOPAD) == DIME_OK)
				json_array_append_new(poks, json_string(b64));
		}
		for (size_t i = 0; i < r->rec.n_dx; i++)
			json_array_append_new(
			    dx, json_stringn((const char *)r->rec.dx[i].p, r->rec.dx[i].len));
		json_object_set(o, "poks", poks);
		json_object_set(o, "dx", dx);
		json_object_set_new(o, "policy",
				    json_string(r->rec.policy == DIME_POL_STRICT ? "strict"
						: r->rec.policy == DIME_POL_EXPERIMENTAL
						    ? "experimental"
						    : "mixed"));
	} else {
		json_object_set_new(o, "why", json_string(r->why));
	}
	if ((s = json_dumps(o, JSON_COMPACT)) != NULL) {
		printf("%s\n", s);
		free(s);
		rc = CLI_OK;
	}
out:
	json_decref(dx);
	json_decref(poks);
	json_decref(o);
	return rc;
}

static void
resolve_print(const struct dime_mr_result *r)
{
	static const char *const pol[] = {"experimental", "mixed", "strict"};
	static const char *const sub[] = {"explicit", "mixed", "strict"};

	printf("target:     %s\n", r->target);
	printf("verdict:    %s\n", dime_mr_status_name(r->status));
	printf("validation: %s%s\n", dime_dns_sec_name(r->sec),
	       r->sec == DIME_DNS_SECURE ? " (DNSSEC)"
	       : r->sec == DIME_DNS_INSECURE
		   ? " (no DNSSEC: the org signet needs a CA-validated TLS "
		     "certificate)"
	       : r->sec == DIME_DNS_BOGUS ? " (DNSSEC validation failed)"
					  : " (static file)");
	if (r->status != DIME_MR_FOUND) {
		printf("why:        %s\n", r->why);
		return;
	}
	printf("record:     %s (%s)\n", r->name,
	       strcmp(r->domain, r->target) == 0 ? "the domain's own" : "an ancestor's, applied");
	printf("ttl:        %u s\n", r->ttl);
	printf("text:       %s\n", r->txt);
	for (size_t i = 0; i < r->rec.n_poks; i++) {
		char b64[64];
		size_t n;

		if (dime_b64_encode(b64, sizeof(b64), &n, r->rec.poks[i], sizeof(r->rec.poks[i]),
				    DIME_B64_NOPAD) == DIME_OK)
			printf("pok:        %s\n", b64);
	}
	for (size_t i = 0; i < r->rec.n_dx; i++)
		printf("dx:         %.*s\n", (int)r->rec.dx[i].len, (const char *)r->rec.dx[i].p);
	printf("tls:        %zu signature(s)\n", r->rec.n_tls);
	printf("policy:     %s, subdomains %s, expiry %u days\n", pol[r->rec.policy],
	       sub[r->rec.subdomain], r->rec.expiry_days);
}

int
cmd_resolve(int argc, char **argv)
{
	struct dime_dns_conf conf;
	struct dime_dns *dns = NULL;
	struct dime_mr_result *r = NULL;
	const char *target = NULL;
	char why[512];
	int json = 0, rc = CLI_ERR;

	if (cli_wants_help(argc, argv, resolve_usage))
		return CLI_OK;
	memset(&conf, 0, sizeof(conf));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--json") == 0) {
			json = 1;
			continue;
		}
		if (a[0] == '-' && v == NULL)
			return cli_err("resolve: %s needs a value\n%s", a, resolve_usage);
		if (strcmp(a, "--dns-static") == 0)
			conf.static_file = v;
		else if (strcmp(a, "--dns-config") == 0)
			conf.config_file = v;
		else if (strcmp(a, "--trust-anchor") == 0)
			conf.trust_anchor_file = v;
		else if (strcmp(a, "--resolv-conf") == 0)
			conf.resolv_conf = v;
		else if (strcmp(a, "--timeout") == 0) {
			char *end;
			unsigned long s = strtoul(v, &end, 10);

			if (*v == 0 || *end != 0 || s == 0 || s > 600)
				return cli_err("resolve: --timeout: 1..600 seconds");
			conf.timeout_ms = (unsigned)s * 1000u;
		} else if (a[0] == '-') {
			return cli_err("resolve: unknown option %s\n%s", a, resolve_usage);
		} else if (target == NULL) {
			target = a;
			continue;
		} else {
			return cli_err("resolve: one DOMAIN or ADDRESS\n%s", resolve_usage);
		}
		i++;
	}
	if (target == NULL)
		return cli_err("resolve: which domain?\n%s", resolve_usage);
	if (conf.static_file == NULL && conf.trust_anchor_file == NULL)
		conf.trust_anchor_file = RESOLVE_ROOT_ANCHOR; /* never resolve without validating */
	if ((r = malloc(sizeof(*r))) == NULL)
		return cli_err("resolve: out of memory");
	if (dime_dns_new(&dns, &conf, why, sizeof(why)) != DIME_OK) {
		rc = cli_err("resolve: %s", why[0] != 0 ? why : "cannot set up the resolver");
		goto out;
	}
	switch (dime_mr_resolve_sync(dns, NULL, r, target, (int64_t)time(NULL))) {
	case DIME_OK: break;
	case DIME_E_INVALID: rc = cli_err("resolve: %s: %s", target, r->why); goto out;
	default: rc = cli_err("resolve: out of memory"); goto out;
	}
	if (json ? resolve_print_json(r) != CLI_OK : (resolve_print(r), 0))
		goto out;
	rc = r->status == DIME_MR_FOUND ? CLI_OK : CLI_NO;
out:
	dime_dns_free(dns);
	free(r);
	return rc;
}

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
#include "dime/dconf.h"
#include "dime/dx.h"
#include "dime/mrloc.h"
#include "dime/sigfetch.h"

#define RESOLVE_ROOT_ANCHOR "/usr/share/dns/root.key" /* Debian's dns-root-data */

static const char resolve_usage[] =
    "usage: dime resolve DOMAIN|ADDRESS [dns options] [--json]\n"
    "       dime [--store PATH] resolve --signets DOMAIN|ADDRESS [dns options] [dmtp options]\n"
    "       dime resolve --signets --config dimed.conf DOMAIN|ADDRESS [--json]\n"
    "\n"
    "Walks from the organisational domain to DOMAIN asking _dime then _dx TXT records, applies\n"
    "the subdomain policies, and prints the management record that applies and how it was\n"
    "validated (secure: DNSSEC; insecure: no DNSSEC; configured: a static file).\n"
    "\n"
    "--signets also fetches the signets over DMTP from the domain's hosts (dx, then MX), as\n"
    "dime send and dimed do: the org signet (validated against the record's POKs; basis dnssec\n"
    "or ca-tls) and, for an address, the user's (against the org signet, custody checked with\n"
    "HIST when a stored version does not link directly). What validated is kept in the store\n"
    "(--store, $DIME_STORE, or the config's) and used for a day without asking again (source:\n"
    "fetched now, cached, or refreshed: confirmed current with VRFY); an address without a\n"
    "signet (576) is remembered for an hour. Prints the host that answered, each signet's\n"
    "fingerprint and how it was had.\n"
    "\n"
    "  --config FILE         dimed's configuration: its store, DNS and ports (instead of the\n"
    "                        dns and dmtp options)\n"
    "\n"
    "dmtp options (--signets):\n"
    "  --dx-port PORT        port of dx hosts, implicit TLS (default 26)\n"
    "  --ca-file FILE        CA bundle for the hosts' certificates (default: the system's)\n"
    "\n"
    "dns options (default: iterate from the root, validating with " RESOLVE_ROOT_ANCHOR "):\n"
    "  --dns-static FILE     answer from FILE (lines: name ttl TXT \"text\" ...), no network\n"
    "  --dns-config FILE     an unbound configuration (stub or forward zones, options)\n"
    "  --trust-anchor FILE   DS or DNSKEY records to validate with (repeatable: the last wins)\n"
    "  --resolv-conf FILE    forward to these name servers instead of iterating\n"
    "  --timeout SECONDS     per DNS query (default 10)\n"
    "\n"
    "Exit status: 0 a record applies (--signets: and the signets validated); 1 legacy (proven:\n"
    "no record), bogus, invalid or a temporary failure (the verdict is printed), or (--signets)\n"
    "no signet, a signet that does not validate, no host answered; 2 usage or setup errors.\n";

static const char *
resolve_src_name(enum dime_sf_source s)
{
	switch (s) {
	case DIME_SF_FETCHED: return "fetched";
	case DIME_SF_CACHED: return "cached";
	case DIME_SF_REFRESHED: return "refreshed";
	}
	return "";
}

static const char *
resolve_sf_rc_name(int rc)
{
	switch (rc) {
	case DIME_OK: return "ok";
	case DIME_E_NOTFOUND: return "notfound";
	case DIME_E_AGAIN: return "again";
	case DIME_E_BADSIG: return "badsig";
	default: return "error";
	}
}

/* The signets part of --signets: text lines, or an object for --json. */
static void
resolve_print_signets(const struct dime_sf_result *s, int rc)
{
	printf("signets:    %s\n", resolve_sf_rc_name(rc));
	if (s->host[0] != 0)
		printf("host:       %s\n", s->host);
	if (s->org != NULL)
		printf("org:        %s (%s, %s)\n", s->org_fp, dime_sr_basis_name(s->basis),
		       resolve_src_name(s->org_src));
	if (s->user != NULL) {
		printf("user:       %s (%s", s->user_fp, resolve_src_name(s->user_src));
		if (s->hist_links > 0)
			printf(", custody through %zu HIST link(s)", s->hist_links);
		printf(")\n");
	}
	if (rc != DIME_OK)
		printf("why:        %s\n", s->why);
}

static json_t *
resolve_signets_json(const struct dime_sf_result *s, int rc)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "result", json_string(resolve_sf_rc_name(rc)));
	json_object_set_new(o, "host", json_string(s->host));
	if (s->org != NULL) {
		json_object_set_new(o, "org_fp", json_string(s->org_fp));
		json_object_set_new(o, "basis", json_string(dime_sr_basis_name(s->basis)));
		json_object_set_new(o, "org_source", json_string(resolve_src_name(s->org_src)));
	}
	if (s->user != NULL) {
		json_object_set_new(o, "user_fp", json_string(s->user_fp));
		json_object_set_new(o, "user_source", json_string(resolve_src_name(s->user_src)));
		json_object_set_new(o, "hist_links", json_integer((json_int_t)s->hist_links));
	}
	if (rc != DIME_OK)
		json_object_set_new(o, "why", json_string(s->why));
	return o;
}

static int
resolve_print_json(const struct dime_mr_result *r, json_t *signets)
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
	if (signets != NULL)
		json_object_set(o, "signets", signets);
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
	if (r->name[0] == 0) {
		printf("record:     none asked (the domain is hosted here)\n");
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

/* --signets: fetch and validate the signets (dime/sigfetch.h) with the store. */
static int
resolve_signets(struct dime_sf_result *sf, struct dime_dns *dns, const struct dime_dx_conf *dx_in,
		const struct dime_dx_ports *ports, const char *store_path, const char *target)
{
	struct dime_sf_conf conf;
	struct dime_dx_conf dx = *dx_in;
	struct dime_store *st = NULL;
	char err[512];
	int rc;

	if (dime_store_open(&st, store_path, err, sizeof(err)) != DIME_OK) {
		(void)cli_err("resolve: the store: %s", err);
		return DIME_E_IO;
	}
	dx.dns = dns;
	memset(&conf, 0, sizeof(conf));
	conf.dns = dns;
	conf.dx = &dx;
	conf.ports = ports;
	rc = dime_sf_resolve(sf, &conf, st, target, (int64_t)time(NULL));
	if (rc == DIME_E_IO || rc == DIME_E_NOMEM)
		(void)cli_err("resolve: %s: %s", target, dime_strerror(rc));
	dime_store_close(st);
	return rc;
}

int
cmd_resolve(int argc, char **argv)
{
	static struct dime_dconf dconf; /* large: not on the stack */
	struct dime_dns_conf conf;
	struct dime_dx_conf dx;
	struct dime_dx_ports ports;
	struct dime_dns *dns = NULL;
	struct dime_mr_result *r = NULL;
	struct dime_sf_result *sf = NULL;
	const char *target = NULL, *config = NULL, *store_path = cli.store_path;
	char why[512];
	json_t *sj = NULL;
	int json = 0, signets = 0, rc = CLI_ERR, src = DIME_OK;

	if (cli_wants_help(argc, argv, resolve_usage))
		return CLI_OK;
	memset(&conf, 0, sizeof(conf));
	memset(&dx, 0, sizeof(dx));
	memset(&ports, 0, sizeof(ports));
	dx.helo = "localhost";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--json") == 0) {
			json = 1;
			continue;
		}
		if (strcmp(a, "--signets") == 0) {
			signets = 1;
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
		else if (strcmp(a, "--config") == 0)
			config = v;
		else if (strcmp(a, "--ca-file") == 0)
			dx.ca_file = v;
		else if (strcmp(a, "--timeout") == 0 || strcmp(a, "--dx-port") == 0) {
			char *end;
			unsigned long s = strtoul(v, &end, 10);
			int port = a[2] == 'd';

			if (*v == 0 || *end != 0 || s == 0 || s > (port ? 65535 : 600))
				return cli_err("resolve: %s: 1..%u", a, port ? 65535u : 600u);
			if (port)
				ports.dx = (unsigned)s;
			else
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
	if (config != NULL) {
		if (dime_dconf_load(&dconf, config, why, sizeof(why)) != DIME_OK)
			return cli_err("resolve: %s", why);
		dime_dconf_outbound(&dconf, &conf, &dx, &ports);
		store_path = dconf.store;
	}
	if (conf.static_file == NULL && conf.trust_anchor_file == NULL)
		conf.trust_anchor_file = RESOLVE_ROOT_ANCHOR; /* never resolve without validating */
	if ((r = malloc(sizeof(*r))) == NULL || (sf = calloc(1, sizeof(*sf))) == NULL) {
		rc = cli_err("resolve: out of memory");
		goto out;
	}
	if (dime_dns_new(&dns, &conf, why, sizeof(why)) != DIME_OK) {
		rc = cli_err("resolve: %s", why[0] != 0 ? why : "cannot set up the resolver");
		goto out;
	}
	if (signets) {
		src = resolve_signets(sf, dns, &dx, &ports, store_path, target);
		if (src == DIME_E_IO || src == DIME_E_NOMEM)
			goto out;
		if (src == DIME_E_INVALID && sf->mr.target[0] == 0) {
			rc = cli_err("resolve: %s: %s", target, sf->why);
			goto out;
		}
		dime_mr_result_copy(r, &sf->mr);
		if (json && (sj = resolve_signets_json(sf, src)) == NULL) {
			rc = cli_err("resolve: out of memory");
			goto out;
		}
	} else {
		switch (dime_mr_resolve_sync(dns, NULL, r, target, (int64_t)time(NULL))) {
		case DIME_OK: break;
		case DIME_E_INVALID: rc = cli_err("resolve: %s: %s", target, r->why); goto out;
		default: rc = cli_err("resolve: out of memory"); goto out;
		}
	}
	if (json) {
		if (resolve_print_json(r, sj) != CLI_OK)
			goto out;
	} else {
		resolve_print(r);
		if (signets)
			resolve_print_signets(sf, src);
	}
	rc = r->status == DIME_MR_FOUND && src == DIME_OK ? CLI_OK : CLI_NO;
out:
	json_decref(sj);
	dime_sf_result_clear(sf);
	dime_dns_free(dns);
	free(sf);
	free(r);
	return rc;
}

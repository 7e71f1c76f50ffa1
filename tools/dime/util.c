/* CLI plumbing shared by the commands: errors, file and store access, printing signets. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <signal.h>

#include "cli.h"
#include "dime/dconf.h"
#include "dime/privsep.h"
#include "dime/sigfetch.h"
#include "dime/store.h"
#include "dime/codec.h"
#include "dime/io.h"
#include "dime/mrec.h"

static int __attribute__((format(printf, 2, 0))) cli_vreport(int code, const char *fmt, va_list ap)
{
	fputs("dime: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	return code;
}

int
cli_err(const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = cli_vreport(CLI_ERR, fmt, ap);
	va_end(ap);
	return rc;
}

int
cli_no(const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = cli_vreport(CLI_NO, fmt, ap);
	va_end(ap);
	return rc;
}

int
cli_wants_help(int argc, char **argv, const char *usage)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(usage, stdout);
			return 1;
		}
	}
	return 0;
}

int
cli_dispatch(const char *group, const struct cli_cmd *cmds, int argc, char **argv)
{
	int help = argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0;

	if (!help)
		for (const struct cli_cmd *c = cmds; c->name != NULL; c++)
			if (strcmp(argv[1], c->name) == 0)
				return c->run(argc - 1, argv + 1);
	if (!help)
		fprintf(stderr, "dime %s: unknown command '%s'\n", group, argv[1]);
	fprintf(help && argc >= 2 ? stdout : stderr, "usage: dime %s COMMAND ...\n\ncommands:\n",
		group);
	for (const struct cli_cmd *c = cmds; c->name != NULL; c++)
		fprintf(help && argc >= 2 ? stdout : stderr, "  %-14s %s\n", c->name, c->summary);
	return help && argc >= 2 ? CLI_OK : CLI_ERR;
}

int
cli_read(uint8_t **buf, size_t *len, const char *path, size_t max)
{
	int rc = dime_io_read_file(buf, len, path, max);

	if (rc == -EFBIG)
		return cli_err("%s: larger than %zu bytes", path, max);
	if (rc < 0)
		return cli_err("%s: %s", path, strerror(-rc));
	return CLI_OK;
}

int
cli_load_signet(struct dime_signet **s, const char *path)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	const char *why = "";
	int rc;

	*s = NULL;
	if (cli_read(&buf, &len, path, DIME_SIGNET_MAX_BYTES * 2) != CLI_OK)
		return CLI_ERR;
	rc = dime_signet_load(s, &why, buf, len);
	free(buf);
	if (rc != DIME_OK)
		return cli_no("%s: not a valid signet: %s%s%s", path, dime_strerror(rc),
			      *why ? ": " : "", why);
	return CLI_OK;
}

int
cli_store(struct dime_store **st)
{
	char err[256] = "";

	if (dime_store_open(st, cli.store_path, err, sizeof(err)) != DIME_OK)
		return cli_err("cannot open the store %s: %s",
			       dime_store_resolve_path(cli.store_path), err);
	return CLI_OK;
}

int
cli_store_existing(struct dime_store **st)
{
	char err[512] = "";
	int rc =
	    dime_store_open_flags(st, cli.store_path, DIME_STORE_OPEN_EXISTING, err, sizeof(err));

	if (rc == DIME_E_NOTFOUND)
		return cli_err("%s", err); /* "no store at PATH" */
	if (rc != DIME_OK)
		return cli_err("cannot open the store %s: %s",
			       dime_store_resolve_path(cli.store_path), err);
	return CLI_OK;
}

int
cli_lower(char *out, size_t cap, const char *s)
{
	size_t n = strlen(s);

	if (n + 1 > cap)
		return -1;
	for (size_t i = 0; i <= n; i++)
		out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
	return 0;
}

const char *
cli_domain_of(const char *address)
{
	const char *at = strrchr(address, '@');

	return at == NULL || at == address || at[1] == 0 ? NULL : at + 1;
}

const char *
cli_type_name(enum dime_signet_type t)
{
	switch (t) {
	case DIME_SIGNET_ORG: return "org";
	case DIME_SIGNET_USER: return "user";
	case DIME_SIGNET_SSR: return "ssr";
	}
	return "unknown";
}

const char *
cli_level_name(enum dime_signet_level l)
{
	switch (l) {
	case DIME_LEVEL_SSR: return "ssr";
	case DIME_LEVEL_CRYPTO: return "crypto";
	case DIME_LEVEL_FULL: return "full";
	case DIME_LEVEL_ID: return "id";
	case DIME_LEVEL_NONE: break;
	}
	return "none";
}

/* Informational options: the spec's common fields by name, plus raw ids and undefined fields. */
static const struct {
	const char *opt;
	uint8_t id;
} cli_info_opts[] = {
    {"--name", 16},	{"--address", 17},   {"--province", 18},   {"--country", 19},
    {"--postal", 20},	{"--phone", 21},     {"--language", 22},   {"--currency", 23},
    {"--crypto", 24},	{"--motto", 25},     {"--size-limit", 27}, {"--website", 160},
    {"--title", 94},	{"--employer", 95},  {"--abuse", 200},	   {"--admin", 201},
    {"--support", 202}, {"--web-host", 203}, {"--mail-host", 206},
};

const char cli_info_usage[] =
    "informational fields (repeat --phone; values are UTF-8 text):\n"
    "  --name TEXT --address TEXT --province TEXT --country TEXT --postal TEXT\n"
    "  --phone 'DIGITS[;LABEL]' --language 'en-US[;fr]' --currency 'USD[;EUR]' --crypto TEXT\n"
    "  --motto TEXT --size-limit BYTES --website URL\n"
    "  org only:  --abuse ADDR --admin ADDR --support ADDR --web-host HOST --mail-host HOST\n"
    "  user only: --title 'TEXT[;LABEL]' --employer 'TEXT[;LABEL]'\n"
    "  --field ID=VALUE      any field id 16-250 by number\n"
    "  --undefined NAME=VALUE an undefined (251) field\n";

int
cli_info_option(struct cli_info *info, const char *opt, const char *val)
{
	struct dime_signet_info *it;

	if (info->n >= sizeof(info->items) / sizeof(info->items[0]))
		return -1;
	it = &info->items[info->n];
	memset(it, 0, sizeof(*it));
	for (size_t i = 0; i < sizeof(cli_info_opts) / sizeof(cli_info_opts[0]); i++)
		if (strcmp(opt, cli_info_opts[i].opt) == 0) {
			it->id = cli_info_opts[i].id;
			it->value.p = (const uint8_t *)val;
			it->value.len = strlen(val);
			info->n++;
			return 1;
		}
	if (strcmp(opt, "--field") == 0 || strcmp(opt, "--undefined") == 0) {
		const char *eq = strchr(val, '=');

		if (eq == NULL)
			return -1;
		if (opt[2] == 'f') {
			char *end;
			long id = strtol(val, &end, 10);

			if (end != eq || id < 16 || id > 250)
				return -1;
			it->id = (uint8_t)id;
		} else {
			it->id = DIME_FID_UNDEFINED;
			it->name.p = (const uint8_t *)val;
			it->name.len = (size_t)(eq - val);
		}
		it->value.p = (const uint8_t *)eq + 1;
		it->value.len = strlen(eq + 1);
		info->n++;
		return 1;
	}
	return 0;
}

static void
cli_print_b64(const struct dime_view *v)
{
	char *b = malloc(dime_b64_encoded_len(v->len, DIME_B64_NOPAD) + 1);
	size_t n;

	if (b != NULL && dime_b64_encode(b, dime_b64_encoded_len(v->len, DIME_B64_NOPAD) + 1, &n,
					 v->p, v->len, DIME_B64_NOPAD) == DIME_OK)
		fputs(b, stdout);
	free(b);
}

/* Text values are printed with control characters escaped, so a hostile signet cannot drive
 * the terminal. */
static void
cli_print_text(const struct dime_view *v)
{
	for (size_t i = 0; i < v->len; i++) {
		uint8_t c = v->p[i];

		if (c < 0x20 || c == 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

void
cli_print_signet(const struct dime_signet *s)
{
	struct dime_view all = dime_signet_bytes(s);
	size_t nf = dime_signet_n_fields(s);

	printf("%s signet, %zu bytes, %zu fields\n", cli_type_name(dime_signet_type(s)), all.len,
	       nf);
	for (size_t i = 0; i < nf; i++) {
		const struct dime_signet_field *f = dime_signet_field_at(s, i);
		struct dime_signet_item items[32];
		size_t n = 0;

		if (dime_signet_field_items(items, 32, &n, s, f) != DIME_OK && n == 0)
			continue;
		for (size_t k = 0; k < n; k++) {
			const struct dime_signet_item *it = &items[k];

			printf("%3u %-28s ", f->id, it->label);
			if (it->binary)
				cli_print_b64(&it->value);
			else
				cli_print_text(&it->value);
			if (it->sublabel.len > 0) {
				fputs(" (", stdout);
				cli_print_text(&it->sublabel);
				fputs(")", stdout);
			}
			if (it->invalid)
				fputs("  [invalid: ignored]", stdout);
			putchar('\n');
		}
	}
}

int
cli_print_armored(const struct dime_signet *s)
{
	size_t need = 0, n = 0;
	char *out;
	int rc;

	if (dime_signet_armor(NULL, 0, &need, s) != DIME_OK || (out = malloc(need + 1)) == NULL)
		return cli_err("out of memory");
	rc = dime_signet_armor(out, need + 1, &n, s);
	if (rc == DIME_OK)
		fwrite(out, 1, n, stdout);
	free(out);
	return rc == DIME_OK ? CLI_OK : cli_err("armor: %s", dime_strerror(rc));
}

int
cli_store_signet(struct dime_signet **s, struct dime_store *st, const char *ident,
		 enum dime_store_kind kind, uint32_t version)
{
	uint8_t *blob = NULL;
	size_t len = 0;
	const char *why = "";
	int rc;

	*s = NULL;
	rc = dime_store_get(st, &blob, &len, NULL, ident, kind, version);
	if (rc == DIME_E_NOTFOUND)
		return CLI_NO;
	if (rc != DIME_OK)
		return cli_err("store: %s", dime_strerror(rc));
	rc = dime_signet_parse(s, &why, blob, len);
	free(blob);
	if (rc != DIME_OK)
		return cli_err("store holds a damaged signet for %s: %s", ident, why);
	return CLI_OK;
}

int
cli_store_key(uint32_t *id, struct dime_ks *ks, struct dime_store *st, const char *ident,
	      enum dime_store_kind kind)
{
	uint8_t *blob = NULL;
	size_t len = 0;
	int rc;

	*id = DIME_KS_NONE;
	rc = dime_store_get(st, &blob, &len, NULL, ident, kind, 0);
	if (rc == DIME_E_NOTFOUND)
		return CLI_NO;
	if (rc != DIME_OK)
		return cli_err("store: %s", dime_strerror(rc));
	rc = dime_ks_load(ks, id, blob, len);
	dime_wipe(blob, len);
	free(blob);
	if (rc != DIME_OK)
		return cli_err("store holds a damaged key for %s: %s", ident, dime_strerror(rc));
	return CLI_OK;
}

int
cli_print_txt(const char *domain, const char *rec)
{
	struct dime_view parts[32];
	size_t n = 0;
	int rc = dime_mrec_split(parts, 32, &n, rec, strlen(rec));

	if (rc != DIME_OK)
		return cli_err("cannot split the record into TXT strings: %s", dime_strerror(rc));
	printf("_dime.%s. IN TXT", domain);
	for (size_t i = 0; i < n; i++)
		printf(" \"%.*s\"", (int)parts[i].len, (const char *)parts[i].p);
	putchar('\n');
	return CLI_OK;
}

void
cli_validate(struct dime_signet_verdict *v, const struct dime_signet *s,
	     const struct dime_signet_trust *trust)
{
	int rc = dime_signet_validate(v, s, trust);

	/* The verdict and the return code must agree; the callers read the verdict. */
	DIME_ASSERT((rc == DIME_OK) == (v->kind == DIME_SIGNET_VALID));
}

int
cli_outq_signal(const struct dime_dconf *c, long *pid_out, char *why, size_t cap)
{
	char pidfile[4096];
	pid_t pid = 0;
	int rc;

	*pid_out = 0;
	if ((rc = dime_dconf_pid_file(c, pidfile, sizeof(pidfile))) != DIME_OK) {
		(void)snprintf(why, cap, "no pid file");
		return rc;
	}
	rc = dime_privsep_pid_signal(&pid, pidfile, SIGUSR1, why, cap);
	*pid_out = (long)pid;
	return rc;
}

void
cli_outq_notify(const struct dime_dconf *c)
{
	char why[512];
	long pid = 0;
	int rc = cli_outq_signal(c, &pid, why, sizeof(why));

	if (rc == DIME_OK)
		fprintf(stderr, "dime: signalled dimed (pid %ld) to rescan its queue\n", pid);
	else if (rc == DIME_E_IO)
		fprintf(stderr, "dime: warning: %s; send the running dimed SIGUSR1 to rescan\n",
			why);
	/* NOTFOUND: no dimed runs; it reads the queue when it starts */
}

int
cli_fetch_signets(const struct dime_dconf *c, const char *target, char *why, size_t cap)
{
	struct dime_dns_conf dns_conf;
	struct dime_dx_conf dx;
	struct dime_dx_ports ports;
	struct dime_sf_conf sf;
	struct dime_sf_result *res = NULL;
	struct dime_dns *dns = NULL;
	struct dime_store *st = NULL;
	char err[512];
	int rc;

	if ((res = calloc(1, sizeof(*res))) == NULL) {
		(void)snprintf(why, cap, "out of memory");
		return DIME_E_NOMEM;
	}
	if ((rc = dime_store_open_flags(&st, c->store, DIME_STORE_OPEN_EXISTING, err,
					sizeof(err))) != DIME_OK) {
		(void)snprintf(why, cap, "%s", err);
		goto out;
	}
	dime_dconf_outbound(c, &dns_conf, &dx, &ports);
	if ((rc = dime_dns_new(&dns, &dns_conf, err, sizeof(err))) != DIME_OK) {
		(void)snprintf(why, cap, "DNS: %s", err);
		goto out;
	}
	dx.dns = dns;
	memset(&sf, 0, sizeof(sf));
	sf.dns = dns;
	sf.dx = &dx;
	sf.ports = &ports;
	rc = dime_sf_resolve(res, &sf, st, target, (int64_t)time(NULL));
	if (rc != DIME_OK)
		(void)snprintf(why, cap, "%s", res->why[0] != 0 ? res->why : dime_strerror(rc));
out:
	dime_sf_result_clear(res);
	free(res);
	dime_dns_free(dns);
	dime_store_close(st);
	return rc;
}

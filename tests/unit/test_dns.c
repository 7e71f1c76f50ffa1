/* dime/dns.h: the static file mode, TXT joining, answers posted to loops on both backends, and
 * the DNSSEC matrix against nsd serving signed zones (tests/dns/mkzones.sh): secure, proven
 * NXDOMAIN, bogus (tampered, expired, unsigned under an anchor), insecure, a record large enough
 * to need TCP, and a dead server within the timeout. */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dime/dns.h"
#include "dime/loop.h"
#include "tlib.h"

struct got {
	int calls, rc, rcode;
	enum dime_dns_sec sec;
	uint32_t ttl;
	size_t n;
	char txt[4096];
	char why[256];
	struct dime_io_loop *stop; /* stop this loop when answered */
};

static void
on_answer(void *arg, int rc, const struct dime_dns_answer *a)
{
	struct got *g = arg;
	size_t len;

	g->calls++;
	g->rc = rc;
	g->txt[0] = 0;
	if (rc == DIME_OK) {
		g->rcode = a->rcode;
		g->sec = a->sec;
		g->ttl = a->ttl;
		g->n = a->n;
		snprintf(g->why, sizeof(g->why), "%s", a->why_bogus);
		if (a->n > 0 && a->type == DIME_DNS_TYPE_TXT &&
		    dime_dns_txt_join(g->txt, sizeof(g->txt), &len, a->rr[0], a->rr_len[0]) !=
			DIME_OK)
			snprintf(g->txt, sizeof(g->txt), "<bad txt>");
	}
	if (g->stop != NULL)
		dime_io_loop_stop(g->stop);
}

static void
test_txt_join(void)
{
	static const uint8_t two[] = {3, 'a', 'b', ' ', 2, 'c', 'd'};
	static const uint8_t empty_str[] = {0};
	static const uint8_t past[] = {5, 'a', 'b'};
	static const uint8_t nul[] = {2, 'a', 0};
	char out[8];
	size_t len;

	T_CHECK(dime_dns_txt_join(out, sizeof(out), &len, two, sizeof(two)) == DIME_OK &&
		    len == 5 && strcmp(out, "ab cd") == 0,
		"txt_join: two strings concatenated, got '%s'", out);
	T_CHECK(dime_dns_txt_join(out, sizeof(out), &len, empty_str, 1) == DIME_OK && len == 0,
		"txt_join: one empty string");
	T_CHECK(dime_dns_txt_join(out, sizeof(out), &len, past, sizeof(past)) == DIME_E_MALFORMED,
		"txt_join: a length past the end is malformed");
	T_CHECK(dime_dns_txt_join(out, sizeof(out), &len, nul, sizeof(nul)) == DIME_E_INVALID,
		"txt_join: a NUL in the text is refused");
	T_CHECK(dime_dns_txt_join(out, 5, &len, two, sizeof(two)) == DIME_E_NOSPACE,
		"txt_join: no room for the NUL");
}

static void
test_static(void)
{
	struct dime_dns_conf conf = {0};
	struct dime_dns *d = NULL;
	struct got g;
	char why[256];
	const char *path = t_path("records");

	t_write_text(path, "# the embedded default's records\n"
			   "_dime.example.org 3600 TXT \"ver=1 pok=abc \" \"pol=strict\"\n"
			   "  _dime.second.example. 60 TXT \"a\\\"b\"\n"
			   "\n");
	conf.static_file = path;
	T_CHECK(dime_dns_new(&d, &conf, why, sizeof(why)) == DIME_OK, "static: %s", why);
	if (d == NULL)
		return;
	memset(&g, 0, sizeof(g));
	T_CHECK(dime_dns_query_sync(d, "_DIME.Example.ORG.", DIME_DNS_TYPE_TXT, on_answer, &g) ==
		    DIME_OK,
		"static: sync query");
	T_CHECK(
	    g.calls == 1 && g.rcode == DIME_DNS_NOERROR && g.sec == DIME_DNS_CONFIGURED &&
		g.ttl == 3600 && g.n == 1 && strcmp(g.txt, "ver=1 pok=abc pol=strict") == 0,
	    "static: case-insensitive name with a trailing dot: calls %d rcode %d sec %d ttl %u "
	    "'%s'",
	    g.calls, g.rcode, (int)g.sec, g.ttl, g.txt);
	memset(&g, 0, sizeof(g));
	T_CHECK(dime_dns_query_sync(d, "_dime.second.example", DIME_DNS_TYPE_TXT, on_answer, &g) ==
			DIME_OK &&
		    strcmp(g.txt, "a\"b") == 0 && g.ttl == 60,
		"static: escaped quote, got '%s'", g.txt);
	memset(&g, 0, sizeof(g));
	T_CHECK(dime_dns_query_sync(d, "_dime.missing.example", DIME_DNS_TYPE_TXT, on_answer, &g) ==
			DIME_OK &&
		    g.rcode == DIME_DNS_NXDOMAIN && g.n == 0 && g.sec == DIME_DNS_CONFIGURED,
		"static: a name without a line is NXDOMAIN (rcode %d)", g.rcode);
	memset(&g, 0, sizeof(g));
	T_CHECK(dime_dns_query_sync(d, "_dime.example.org", DIME_DNS_TYPE_MX, on_answer, &g) ==
			DIME_OK &&
		    g.rcode == DIME_DNS_NXDOMAIN,
		"static: a type without a line is NXDOMAIN");
	T_CHECK(dime_dns_query_sync(d, "", DIME_DNS_TYPE_TXT, on_answer, &g) == DIME_E_INVALID,
		"static: an empty name is refused");
	T_CHECK(dime_dns_query_sync(d, "a b.example", DIME_DNS_TYPE_TXT, on_answer, &g) ==
		    DIME_E_INVALID,
		"static: a name with a space is refused");
	dime_dns_free(d);

	/* malformed files: the error names the line */
	{
		static const char *const bad[] = {
		    "_dime.x 60 TXT\n",		       /* no strings */
		    "_dime.x 60 A \"1.2.3.4\"\n",      /* not TXT */
		    "_dime.x sixty TXT \"a\"\n",       /* ttl */
		    "_dime.x 60 TXT \"unterminated\n", /* quote */
		    "_dime.x 60 TXT a\n",	       /* unquoted */
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			char text[256];

			snprintf(text, sizeof(text), "# comment\n%s", bad[i]);
			t_write_text(path, text);
			d = NULL;
			why[0] = 0;
			T_CHECK(dime_dns_new(&d, &conf, why, sizeof(why)) == DIME_E_MALFORMED &&
				    d == NULL && strstr(why, ":2:") != NULL,
				"static: bad line %zu refused with its line number (why '%s')", i,
				why);
			dime_dns_free(d);
		}
	}
	conf.static_file = t_path("no-such-file");
	T_CHECK(dime_dns_new(&d, &conf, why, sizeof(why)) == DIME_E_IO && d == NULL,
		"static: a missing file is an error");
}

/* The rdata of every record of one answer, as received. */
struct raw {
	int rc, rcode;
	enum dime_dns_sec sec;
	uint32_t ttl;
	size_t n;
	uint8_t rr[4][64];
	size_t len[4];
};

static void
on_raw(void *arg, int rc, const struct dime_dns_answer *a)
{
	struct raw *g = arg;

	memset(g, 0, sizeof(*g));
	g->rc = rc;
	if (rc != DIME_OK)
		return;
	g->rcode = a->rcode;
	g->sec = a->sec;
	g->ttl = a->ttl;
	g->n = a->n;
	for (size_t i = 0; i < a->n && i < 4; i++) {
		g->len[i] = a->rr_len[i] <= sizeof(g->rr[i]) ? a->rr_len[i] : 0;
		memcpy(g->rr[i], a->rr[i], g->len[i]);
	}
}

static int
raw_is(const struct raw *g, size_t i, const void *want, size_t want_len)
{
	return i < g->n && g->len[i] == want_len && memcmp(g->rr[i], want, want_len) == 0;
}

/* A, AAAA and MX lines: wire-format rdata as unbound would give it, in file order. */
static void
test_static_addr(void)
{
	struct dime_dns_conf conf = {0};
	struct dime_dns *d = NULL;
	struct raw g;
	char why[256];
	const char *path = t_path("records-addr");
	static const uint8_t a1[] = {127, 0, 0, 2}, a2[] = {10, 1, 2, 3};
	static const uint8_t v6[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	static const uint8_t mx1[] = {0, 10, 4, 'h', 'o', 's', 't', 4, 'n', 'a', 'm', 'e', 0};
	static const uint8_t mx2[] = {0x01, 0x02, 2, 'm', 'x', 1, 'b', 0};
	static const uint8_t null_mx[] = {0, 0, 0};

	t_write_text(path, "dx.example.org 300 A 127.0.0.2\n"
			   "dx.example.org. 60 A 10.1.2.3   \n"
			   "dx.example.org 300 AAAA ::1\r\n"
			   "example.org 300 MX 10 host.name\n"
			   "example.org 300 MX 258 mx.b.\n"
			   "null.example.org 300 MX 0 .\n"
			   "_dime.example.org 300 TXT \"ver=1\"\n");
	conf.static_file = path;
	T_CHECK(dime_dns_new(&d, &conf, why, sizeof(why)) == DIME_OK, "static addr: %s", why);
	if (d == NULL)
		return;
	T_CHECK(dime_dns_query_sync(d, "DX.example.org", DIME_DNS_TYPE_A, on_raw, &g) == DIME_OK &&
		    g.rcode == DIME_DNS_NOERROR && g.sec == DIME_DNS_CONFIGURED && g.n == 2 &&
		    g.ttl == 60 && raw_is(&g, 0, a1, 4) && raw_is(&g, 1, a2, 4),
		"static A: got rcode %d n %zu ttl %u, want two addresses in file order, ttl 60",
		g.rcode, g.n, g.ttl);
	T_CHECK(dime_dns_query_sync(d, "dx.example.org", DIME_DNS_TYPE_AAAA, on_raw, &g) ==
			DIME_OK &&
		    g.n == 1 && raw_is(&g, 0, v6, 16),
		"static AAAA: got n %zu, want ::1 in 16 octets", g.n);
	T_CHECK(dime_dns_query_sync(d, "example.org", DIME_DNS_TYPE_MX, on_raw, &g) == DIME_OK &&
		    g.n == 2 && raw_is(&g, 0, mx1, sizeof(mx1)) && raw_is(&g, 1, mx2, sizeof(mx2)),
		"static MX: got n %zu (len %zu), want preference and labels", g.n, g.len[0]);
	T_CHECK(dime_dns_query_sync(d, "null.example.org", DIME_DNS_TYPE_MX, on_raw, &g) ==
			DIME_OK &&
		    g.n == 1 && raw_is(&g, 0, null_mx, sizeof(null_mx)),
		"static MX 0 .: got n %zu, want the null MX (preference 0, the root)", g.n);
	T_CHECK(dime_dns_query_sync(d, "example.org", DIME_DNS_TYPE_A, on_raw, &g) == DIME_OK &&
		    g.rcode == DIME_DNS_NXDOMAIN && g.n == 0,
		"static: a name with MX lines but no A line has no address");
	dime_dns_free(d);

	/* malformed values: the error names the line */
	{
		static const char *const bad[] = {
		    "x.example 60 A 1.2.3\n",		    /* not an address */
		    "x.example 60 A 1.2.3.4 5.6.7.8\n",	    /* trailing junk */
		    "x.example 60 A ::1\n",		    /* IPv6 in an A line */
		    "x.example 60 AAAA 1.2.3.4\n",	    /* IPv4 in an AAAA line */
		    "x.example 60 A\n",			    /* no address */
		    "x.example 60 MX 10\n",		    /* no host */
		    "x.example 60 MX host.example\n",	    /* no preference */
		    "x.example 60 MX 65536 host.example\n", /* preference over 16 bits */
		    "x.example 60 MX -1 host.example\n",    /* negative preference */
		    "x.example 60 MX 10 a..example\n",	    /* empty label */
		    "x.example 60 MX 10 "
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example\n",
		    "x.example 60 MX 10 host.example extra\n", /* trailing junk */
		    "x.example 60 CNAME host.example\n",       /* a type the file does not have */
		    "x.example 60 mx 10 host.example\n",       /* types are upper case */
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			char text[512];

			snprintf(text, sizeof(text), "x.example 60 A 1.2.3.4\n%s", bad[i]);
			t_write_text(path, text);
			d = NULL;
			why[0] = 0;
			T_CHECK(dime_dns_new(&d, &conf, why, sizeof(why)) == DIME_E_MALFORMED &&
				    d == NULL && strstr(why, ":2:") != NULL,
				"static addr: bad line %zu refused with its line number (why '%s')",
				i, why);
			dime_dns_free(d);
		}
	}
}

/* The answer arrives on the loop, never inside dime_dns_query; a cancelled one never does. */
static void
test_async(enum dime_io_backend be, const struct dime_dns_conf *conf, const char *name,
	   enum dime_dns_sec want)
{
	struct dime_io_loop *l = NULL;
	struct dime_dns *d = NULL;
	struct dime_dns_query *q = NULL, *q2 = NULL;
	struct got g, g2;
	char why[256];

	if (dime_io_loop_new(&l, be) != DIME_OK) {
		printf("test_dns: backend %d unavailable here, async part skipped\n", (int)be);
		return;
	}
	T_CHECK(dime_dns_new(&d, conf, why, sizeof(why)) == DIME_OK, "async: %s", why);
	if (d == NULL) {
		dime_io_loop_free(l);
		return;
	}
	memset(&g, 0, sizeof(g));
	memset(&g2, 0, sizeof(g2));
	g.stop = l;
	T_CHECK(dime_dns_query(d, l, name, DIME_DNS_TYPE_TXT, on_answer, &g2, &q2) == DIME_OK,
		"async: query to cancel");
	dime_dns_cancel(q2);
	T_CHECK(dime_dns_query(d, l, name, DIME_DNS_TYPE_TXT, on_answer, &g, &q) == DIME_OK,
		"async: query");
	T_CHECK(g.calls == 0, "async: the answer never comes inside the call");
	T_CHECK(dime_io_loop_run(l) == DIME_OK, "async: loop run");
	T_CHECK(g.calls == 1 && g.rc == DIME_OK && g.rcode == DIME_DNS_NOERROR && g.sec == want &&
		    strstr(g.txt, "ver=1") != NULL,
		"async (%s): %s answered: calls %d rc %d rcode %d sec %s '%s'",
		dime_io_loop_backend(l), name, g.calls, g.rc, g.rcode, dime_dns_sec_name(g.sec),
		g.txt);
	/* the cancelled query may still be in flight: let it land, then check it stayed quiet */
	for (int i = 0; i < 20; i++) {
		struct got g3;

		memset(&g3, 0, sizeof(g3));
		g3.stop = l;
		if (dime_dns_query(d, l, name, DIME_DNS_TYPE_TXT, on_answer, &g3, NULL) !=
			DIME_OK ||
		    dime_io_loop_run(l) != DIME_OK)
			break;
	}
	T_CHECK(g2.calls == 0, "async: a cancelled query's callback never runs");
	dime_dns_free(d);
	dime_io_loop_free(l);
}

static void
check_live(struct dime_dns *d, const char *name, int rcode, enum dime_dns_sec sec,
	   const char *txt_has)
{
	struct got g;
	int rc;

	memset(&g, 0, sizeof(g));
	rc = dime_dns_query_sync(d, name, DIME_DNS_TYPE_TXT, on_answer, &g);
	T_CHECK(rc == DIME_OK && g.calls == 1 && g.rcode == rcode && g.sec == sec,
		"live %s: rc %d rcode %d (want %d) sec %s (want %s) why '%s'", name, rc, g.rcode,
		rcode, dime_dns_sec_name(g.sec), dime_dns_sec_name(sec), g.why);
	if (txt_has != NULL)
		T_CHECK(strstr(g.txt, txt_has) != NULL, "live %s: text '%.60s' lacks '%s'", name,
			g.txt, txt_has);
	if (sec == DIME_DNS_BOGUS)
		T_CHECK(g.why[0] != 0, "live %s: a bogus answer says why", name);
}

static void
test_live(void)
{
	char cmd[8192], conf_path[4200], ta_path[4200], pid_path[4200];
	struct dime_dns_conf conf = {0};
	struct dime_dns *d = NULL;
	char why[256];
	FILE *f;
	long pid = 0;
	const char *dir = t_path("zones");

	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && sh '%s' '%s' >'%s/mkzones.log' 2>&1", dir,
		 DIME_DNS_SCRIPT, dir, dir);
	if (system(cmd) != 0) {
		snprintf(cmd, sizeof(cmd), "cat '%s/mkzones.log' >&2", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "(no log)\n");
		t_fail("live: mkzones.sh failed (nsd, ldnsutils: tools/install-deps.sh)");
		return;
	}
	snprintf(conf_path, sizeof(conf_path), "%s/unbound.conf", dir);
	snprintf(ta_path, sizeof(ta_path), "%s/ta.ds", dir);
	snprintf(pid_path, sizeof(pid_path), "%s/nsd.pid", dir);
	conf.config_file = conf_path;
	conf.trust_anchor_file = ta_path;
	conf.timeout_ms = 8000;
	T_CHECK(dime_dns_new(&d, &conf, why, sizeof(why)) == DIME_OK, "live: new: %s", why);
	if (d != NULL) {
		check_live(d, "_dime.good.dime.test", DIME_DNS_NOERROR, DIME_DNS_SECURE,
			   "ver=1 pok=");
		check_live(d, "_dime.missing.good.dime.test", DIME_DNS_NXDOMAIN, DIME_DNS_SECURE,
			   NULL);
		check_live(d, "_dime.bogus.dime.test", DIME_DNS_NOERROR, DIME_DNS_BOGUS, NULL);
		check_live(d, "_dime.expired.dime.test", DIME_DNS_NOERROR, DIME_DNS_BOGUS, NULL);
		check_live(d, "_dime.unsigned.dime.test", DIME_DNS_NOERROR, DIME_DNS_BOGUS, NULL);
		check_live(d, "_dime.insecure.dime.test", DIME_DNS_NOERROR, DIME_DNS_INSECURE,
			   "ver=1");
		check_live(d, "_big.big.dime.test", DIME_DNS_NOERROR, DIME_DNS_SECURE,
			   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		{
			struct got g;

			memset(&g, 0, sizeof(g));
			T_CHECK(dime_dns_query_sync(d, "_big.big.dime.test", DIME_DNS_TYPE_TXT,
						    on_answer, &g) == DIME_OK &&
				    strlen(g.txt) == 1500,
				"live: the large record whole over TCP (%zu)", strlen(g.txt));
		}
		dime_dns_free(d);
	}
	test_async(DIME_IO_EPOLL, &conf, "_dime.good.dime.test", DIME_DNS_SECURE);
	test_async(DIME_IO_URING, &conf, "_dime.good.dime.test", DIME_DNS_SECURE);

	/* the server gone: an answer (SERVFAIL) within the timeout, never a hang */
	if ((f = fopen(pid_path, "r")) != NULL) {
		if (fscanf(f, "%ld", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	if (pid > 0) {
		struct got g;

		kill((pid_t)pid, SIGTERM);
		for (int i = 0; i < 50 && kill((pid_t)pid, 0) == 0; i++)
			usleep(100000);
		conf.timeout_ms = 1500;
		d = NULL;
		T_CHECK(dime_dns_new(&d, &conf, why, sizeof(why)) == DIME_OK, "dead: new: %s", why);
		memset(&g, 0, sizeof(g));
		if (d != NULL)
			T_CHECK(dime_dns_query_sync(d, "_dime.good.dime.test", DIME_DNS_TYPE_TXT,
						    on_answer, &g) == DIME_OK &&
				    g.rcode == DIME_DNS_SERVFAIL && g.sec != DIME_DNS_SECURE,
				"dead server: SERVFAIL (rcode %d sec %s)", g.rcode,
				dime_dns_sec_name(g.sec));
		dime_dns_free(d);
	} else {
		t_fail("live: no nsd pid");
	}
}

int
main(void)
{
	struct dime_dns_conf sconf = {0};

	t_init();
	if (t_mkdtemp("dns") != 0)
		return 1;
	test_txt_join();
	test_static();
	test_static_addr();
	sconf.static_file = t_path("records");
	t_write_text(sconf.static_file, "_dime.example.org 3600 TXT \"ver=1 pok=abc\"\n");
	test_async(DIME_IO_EPOLL, &sconf, "_dime.example.org", DIME_DNS_CONFIGURED);
	test_async(DIME_IO_URING, &sconf, "_dime.example.org", DIME_DNS_CONFIGURED);
	test_live();
	t_rm_rf(t_dir);
	return t_done("dns");
}

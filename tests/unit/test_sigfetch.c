/* The signet resolver against a real dimed on loopback (made with the dime CLI, a static DNS
 * file naming it): first fetch, the cache rules with an injected clock (fresh: no network, the
 * destination even stopped; stale: VRFY; absence remembered), a failed refresh keeping the
 * stored signet, rotations (a direct custody link, then HIST), a certificate that matches no
 * tls= value, a legacy domain, a hosted domain. */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dime/dns.h"
#include "dime/sigfetch.h"
#include "tlib.h"

#if defined(DIME_CLI) && defined(DIMED)

static unsigned sf_port;

/* Run a shell command in t_dir. Returns its exit status (-1 when it did not run). */
static int
sf_sh(const char *cmd)
{
	char buf[8192];
	int st;

	(void)snprintf(buf, sizeof(buf), "cd '%s' && { %s; }", t_dir, cmd);
	st = system(buf);
	return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

/* The destination: b.example with bob, a certificate for dmtp.b.example, a dimed config. */
static int
sf_setup(void)
{
	static const char script[] =
	    "D=\"$PWD\"; dime() { '" DIME_CLI "' --store \"$D/dst.db\" \"$@\"; }; "
	    "dime org create b.example >/dev/null 2>&1 && "
	    "dime user create bob@b.example >/dev/null 2>&1 && "
	    "openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem -days 2 "
	    "-subj /CN=dmtp.b.example -addext subjectAltName=DNS:dmtp.b.example >/dev/null 2>&1 && "
	    "openssl req -x509 -newkey rsa:2048 -nodes -keyout k2.pem -out c2.pem -days 2 "
	    "-subj /CN=other >/dev/null 2>&1 && "
	    "rec=$(dime mrec generate --org b.example --tls-cert c.pem --dx dmtp.b.example | "
	    "sed 's/^[^\"]*\"//; s/\"$//') && "
	    "rec2=$(dime mrec generate --org b.example --tls-cert c2.pem --dx dmtp.b.example | "
	    "sed 's/^[^\"]*\"//; s/\"$//') && "
	    "printf '_dime.b.example 600 TXT \"%s\"\\n_dime.c.example 600 TXT \"%s\"\\n"
	    "dmtp.b.example 600 A 127.0.0.1\\n' \"$rec\" \"$rec2\" >dns.txt && "
	    "printf 'hostname = dmtp.b.example\\nlisten = 127.0.0.1:0 dmtp\\nstore = %s/dst.db\\n"
	    "spool = %s/spool\\nmaildir_root = %s/mail\\nkey_process = no\\n[tls]\\n"
	    "cert = %s/c.pem\\nkey = %s/k.pem\\n' \"$D\" \"$D\" \"$D\" \"$D\" \"$D\" >d.conf";

	return sf_sh(script);
}

static pid_t sf_pid;

static int
sf_start(void)
{
	char cmd[512], *end;
	uint8_t *p = NULL;
	size_t len = 0;
	struct timespec ts = {0, 20 * 1000 * 1000};

	(void)unlink(t_path("ports"));
	(void)snprintf(cmd, sizeof(cmd),
		       "'%s' --config d.conf --ports-file ports 2>>dimed.log & echo $! >pid",
		       DIMED);
	if (sf_sh(cmd) != 0)
		return -1;
	for (int i = 0; i < 500; i++) {
		free(p);
		p = access(t_path("ports"), R_OK) == 0 ? t_read(t_path("ports"), &len) : NULL;
		if (p != NULL && len > 1 && p[len - 1] == '\n')
			break;
		nanosleep(&ts, NULL);
	}
	if (p == NULL || len < 2) {
		free(p);
		return -1;
	}
	sf_port = (unsigned)strtoul((const char *)p, &end, 10);
	free(p);
	p = t_read(t_path("pid"), &len);
	sf_pid = p != NULL ? (pid_t)strtol((const char *)p, NULL, 10) : 0;
	free(p);
	return sf_port != 0 && sf_pid > 0 ? 0 : -1;
}

static void
sf_stop(void)
{
	struct timespec ts = {0, 20 * 1000 * 1000};

	if (sf_pid <= 0)
		return;
	(void)kill(sf_pid, SIGTERM);
	for (int i = 0; i < 500 && kill(sf_pid, 0) == 0; i++)
		nanosleep(&ts, NULL);
	if (kill(sf_pid, 0) == 0)
		(void)kill(sf_pid, SIGKILL);
	sf_pid = 0;
}

static int
sf_resolve(struct dime_sf_result *r, struct dime_store *st, const char *target, int64_t now)
{
	static struct dime_dns *dns;
	static struct dime_dx_conf dx;
	static struct dime_dx_ports ports;
	struct dime_sf_conf conf;

	if (dns == NULL) {
		struct dime_dns_conf dc;
		char why[256];

		memset(&dc, 0, sizeof(dc));
		dc.static_file = t_path("dns.txt");
		if (dime_dns_new(&dns, &dc, why, sizeof(why)) != DIME_OK) {
			t_fail("dns: %s", why);
			return DIME_E_IO;
		}
		dx.dns = dns;
		dx.helo = "a.example";
		dx.connect_timeout_ms = 5000;
		dx.reply_timeout_ms = 10000;
	}
	if (dns == NULL || st == NULL) { /* the end: free it */
		dime_dns_free(dns);
		dns = NULL;
		return DIME_OK;
	}
	ports.dx = sf_port;
	memset(&conf, 0, sizeof(conf));
	conf.dns = dns;
	conf.dx = &dx;
	conf.ports = &ports;
	return dime_sf_resolve(r, &conf, st, target, now);
}

static void
test_cache(struct dime_store *st)
{
	struct dime_sf_result r;
	struct dime_store_row row;
	uint8_t *blob = NULL;
	size_t len = 0;
	int64_t t0 = (int64_t)time(NULL), stale = t0 + DIME_SF_SIGNET_TTL + 10;
	int rc;

	/* the first time: both fetched over DMTP, validated, kept */
	rc = sf_resolve(&r, st, "Bob@B.example", t0);
	T_CHECK(rc == DIME_OK && r.org != NULL && r.user != NULL && r.org_src == DIME_SF_FETCHED &&
		    r.user_src == DIME_SF_FETCHED && r.basis == DIME_SR_DNSSEC &&
		    (r.tls & DIME_SR_TLS_RECORD) && r.host[0] != 0,
		"first: got %d org %d user %d basis %d tls %u host '%s' (%s)", rc, r.org_src,
		r.user_src, r.basis, r.tls, r.host, r.why);
	rc = dime_store_get(st, &blob, &len, &row, "bob@b.example", DIME_STORE_USER_SIGNET, 0);
	T_CHECK(rc == DIME_OK && !row.hosted && row.state == DIME_STORE_VERIFIED &&
		    strcmp(row.fingerprint, r.user_fp) == 0,
		"the user signet is stored verified, not hosted: rc %d hosted %d", rc, row.hosted);
	free(blob);
	dime_sf_result_clear(&r);

	/* no signet: 576, remembered */
	rc = sf_resolve(&r, st, "nobody@b.example", t0);
	T_CHECK(rc == DIME_E_NOTFOUND && r.org != NULL && r.user == NULL &&
		    r.org_src == DIME_SF_CACHED,
		"absent: got %d org %p src %d (%s)", rc, (void *)r.org, r.org_src, r.why);
	dime_sf_result_clear(&r);

	/* fresh: the destination is not even asked (it is stopped) */
	sf_stop();
	rc = sf_resolve(&r, st, "bob@b.example", t0 + 60);
	T_CHECK(rc == DIME_OK && r.org_src == DIME_SF_CACHED && r.user_src == DIME_SF_CACHED &&
		    r.host[0] == 0,
		"fresh: got %d org %d user %d host '%s' (%s)", rc, r.org_src, r.user_src, r.host,
		r.why);
	dime_sf_result_clear(&r);
	rc = sf_resolve(&r, st, "nobody@b.example", t0 + 60);
	T_CHECK(rc == DIME_E_NOTFOUND, "absence remembered: got %d (%s)", rc, r.why);
	dime_sf_result_clear(&r);
	/* the absence expired and nobody answers: could not tell */
	rc = sf_resolve(&r, st, "nobody@b.example", t0 + DIME_SF_NEG_TTL + 10);
	T_CHECK(rc == DIME_E_AGAIN, "absence expired, host down: got %d (%s)", rc, r.why);
	dime_sf_result_clear(&r);
	/* stale and the refresh fails temporarily: the stored signets serve on */
	rc = sf_resolve(&r, st, "bob@b.example", stale);
	T_CHECK(rc == DIME_OK && r.org_src == DIME_SF_CACHED && r.user_src == DIME_SF_CACHED,
		"stale, host down: got %d org %d user %d (%s)", rc, r.org_src, r.user_src, r.why);
	dime_sf_result_clear(&r);

	/* stale: confirmed with VRFY */
	if (sf_start() != 0) {
		t_fail("dimed did not restart");
		return;
	}
	rc = sf_resolve(&r, st, "bob@b.example", stale);
	T_CHECK(rc == DIME_OK && r.org_src == DIME_SF_REFRESHED &&
		    r.user_src == DIME_SF_REFRESHED && r.host[0] != 0,
		"stale: got %d org %d user %d (%s)", rc, r.org_src, r.user_src, r.why);
	dime_sf_result_clear(&r);
	/* and fresh again from then */
	rc = sf_resolve(&r, st, "bob@b.example", stale + 60);
	T_CHECK(rc == DIME_OK && r.user_src == DIME_SF_CACHED, "refreshed is fresh: got %d %d", rc,
		r.user_src);
	dime_sf_result_clear(&r);
}

static void
test_rotation(struct dime_store *st)
{
	struct dime_sf_result r;
	int64_t t1 = (int64_t)time(NULL) + 3 * (int64_t)DIME_SF_SIGNET_TTL;
	int rc;

	/* one rotation: the new signet links to the stored one directly */
	if (sf_sh("'" DIME_CLI "' --store dst.db user create bob@b.example --rotate "
		  ">/dev/null 2>&1") != 0)
		t_fail("rotate bob");
	rc = sf_resolve(&r, st, "bob@b.example", t1);
	T_CHECK(rc == DIME_OK && r.user_src == DIME_SF_FETCHED && r.hist_links == 0,
		"one rotation: got %d src %d links %zu (%s)", rc, r.user_src, r.hist_links, r.why);
	dime_sf_result_clear(&r);
	/* two more: the stored version is two links behind, HIST fills the gap */
	if (sf_sh("'" DIME_CLI "' --store dst.db user create bob@b.example --rotate "
		  ">/dev/null 2>&1 && '" DIME_CLI "' --store dst.db user create bob@b.example "
		  "--rotate >/dev/null 2>&1") != 0)
		t_fail("rotate bob twice");
	rc = sf_resolve(&r, st, "bob@b.example", t1 + 2 * (int64_t)DIME_SF_SIGNET_TTL);
	T_CHECK(rc == DIME_OK && r.user_src == DIME_SF_FETCHED && r.hist_links >= 2,
		"two rotations: got %d src %d links %zu (%s)", rc, r.user_src, r.hist_links, r.why);
	dime_sf_result_clear(&r);
}

static void
test_failures(struct dime_store *st)
{
	struct dime_sf_result r;
	int64_t now = (int64_t)time(NULL);
	int rc;

	/* c.example's record signs another certificate: the host is never trusted */
	rc = sf_resolve(&r, st, "c.example", now);
	T_CHECK(rc == DIME_E_BADSIG && r.org == NULL, "certificate mismatch: got %d (%s)", rc,
		r.why);
	dime_sf_result_clear(&r);
	rc = sf_resolve(&r, st, "x@legacy.example", now);
	T_CHECK(rc == DIME_E_NOTFOUND && r.mr.status == DIME_MR_LEGACY, "legacy: got %d (%s)", rc,
		r.why);
	dime_sf_result_clear(&r);
	rc = sf_resolve(&r, st, "not an address@@x", now);
	T_CHECK(rc == DIME_E_INVALID, "bad target: got %d", rc);
	dime_sf_result_clear(&r);
}

/* A domain the store hosts is answered from it, without DNS or DMTP. */
static void
test_hosted(void)
{
	struct dime_sf_result r;
	struct dime_store *st = NULL;
	char err[256];
	int rc;

	if (dime_store_open(&st, t_path("dst.db"), err, sizeof(err)) != DIME_OK) {
		t_fail("open dst.db: %s", err);
		return;
	}
	rc = sf_resolve(&r, st, "bob@b.example", (int64_t)time(NULL));
	T_CHECK(rc == DIME_OK && r.user != NULL && r.host[0] == 0 && r.org_src == DIME_SF_CACHED,
		"hosted: got %d (%s)", rc, r.why);
	dime_sf_result_clear(&r);
	rc = sf_resolve(&r, st, "nobody@b.example", (int64_t)time(NULL));
	T_CHECK(rc == DIME_E_NOTFOUND, "hosted, no such user: got %d", rc);
	dime_sf_result_clear(&r);
	dime_store_close(st);
}

int
main(void)
{
	struct dime_store *st = NULL;
	char err[256];

	t_init();
	if (system("command -v openssl >/dev/null 2>&1") != 0) {
		printf("no openssl: skip\n");
		return 77;
	}
	if (t_mkdtemp("dime-sigfetch") != 0)
		return 1;
	if (sf_setup() != 0 || sf_start() != 0) {
		t_fail("setup: the destination dimed did not start");
		(void)sf_sh("cat dimed.log >&2");
		sf_stop();
		return t_done("test_sigfetch");
	}
	if (dime_store_open(&st, t_path("src.db"), err, sizeof(err)) != DIME_OK) {
		t_fail("open src.db: %s", err);
	} else {
		test_cache(st);
		test_rotation(st);
		test_failures(st);
		dime_store_close(st);
	}
	test_hosted();
	sf_stop();
	(void)sf_resolve(NULL, NULL, NULL, 0);
	t_rm_rf(t_dir);
	return t_done("test_sigfetch");
}

#else

int
main(void)
{
	printf("built without the dime CLI or dimed: skip\n");
	return 77;
}

#endif

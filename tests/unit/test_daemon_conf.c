/* dimed's configuration: the sample in docs/ loads clean and equals the defaults; every kind of
 * value (sizes, durations, listeners, [tls] sections) parses; each bad line is named FILE:LINE. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dime/dconf.h"
#include "dime/mrec.h"
#include "tlib.h"

#ifndef DIME_DOCS_DIR
#define DIME_DOCS_DIR "docs"
#endif

static const char *
t_write(const char *name, const char *text)
{
	const char *p = t_path(name);
	FILE *f = fopen(p, "w");

	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
		t_fail("cannot write %s", p);
		exit(t_done("test_daemon_conf"));
	}
	return p;
}

static void
t_sample_is_defaults(void)
{
	struct dime_dconf def, got;
	char why[512];
	int rc;

	rc = dime_dconf_load(&def, NULL, why, sizeof(why));
	T_CHECK(rc == DIME_OK, "defaults: got %d, want ok", rc);
	rc = dime_dconf_load(&got, DIME_DOCS_DIR "/dimed.conf", why, sizeof(why));
	T_CHECK(rc == DIME_OK, "docs/dimed.conf: got %d (%s), want ok", rc, why);
	/* Both came from the same memset+defaults, so the bytes must be equal. */
	T_CHECK(memcmp(&def, &got, sizeof(def)) == 0, "docs/dimed.conf differs from the defaults");
	/* Key custody is on unless turned off: a missing line must not put keys in dimed. */
	T_CHECK(got.key_process == 1 && got.key_timeout_ms == 5000 && got.user[0] == '\0' &&
		    got.pid_file[0] == '\0',
		"key defaults: got key_process %d key_timeout %u user \"%s\" pid_file \"%s\"",
		got.key_process, got.key_timeout_ms, got.user, got.pid_file);
	T_CHECK(got.n_listen == 2 && got.listen[0].port == 2626 &&
		    got.listen[0].mode == DIME_DCONF_DMTP && got.listen[1].mode == DIME_DCONF_DUAL,
		"default listeners: got %zu", got.n_listen);
}

static void
t_values(void)
{
	struct dime_dconf c;
	char why[512], text[2048];
	const char *cert = t_write("c.pem", "x"), *key = t_write("k.pem", "y");
	int rc;

	snprintf(text, sizeof(text),
		 "# comment\n"
		 "hostname = mx.example.org\n"
		 "listen = 127.0.0.1:0 dual\n"
		 "listen = [::1]:2626 dmtp\n"
		 "listen = 127.0.0.2:2525\tdual\n"
		 "max_message = 64k\n"
		 "timeout_cmd = 2m\n"
		 "timeout_data = 90\n"
		 "timeout_tls = 500ms\n"
		 "batch_deadline = 3ms\n"
		 "delivery = lmtp\n"
		 "lmtp = unix:/run/lmtp\n"
		 "log = syslog ; inline comment\n"
		 "early_talk_reject = no\n"
		 "key_process = no\n"
		 "key_timeout = 250ms\n"
		 "lookup_timeout = 5s\n"
		 "user = nobody\n"
		 "pid_file = /run/dimed.pid\n"
		 "[tls other.example.org]\n"
		 "cert = %s\nkey = %s\n"
		 "[tls]\n"
		 "cert = %s\nkey = %s\n",
		 cert, key, cert, key);
	rc = dime_dconf_load(&c, t_write("a.conf", text), why, sizeof(why));
	T_CHECK(rc == DIME_OK, "values: got %d (%s), want ok", rc, why);
	if (rc != DIME_OK)
		return;
	T_CHECK(strcmp(c.hostname, "mx.example.org") == 0, "hostname: got %s", c.hostname);
	T_CHECK(c.n_listen == 3 && c.listen[2].mode == DIME_DCONF_DUAL &&
		    strcmp(c.listen[2].host, "127.0.0.2") == 0,
		"listen: got %zu, want 3 (the file replaces the defaults; a tab separates too)",
		c.n_listen);
	T_CHECK(strcmp(c.listen[0].host, "127.0.0.1") == 0 && c.listen[0].port == 0 &&
		    c.listen[0].mode == DIME_DCONF_DUAL,
		"listen[0]: got %s:%u %d", c.listen[0].host, c.listen[0].port, c.listen[0].mode);
	T_CHECK(strcmp(c.listen[1].host, "::1") == 0 && c.listen[1].port == 2626 &&
		    c.listen[1].mode == DIME_DCONF_DMTP,
		"listen[1]: got %s:%u %d", c.listen[1].host, c.listen[1].port, c.listen[1].mode);
	T_CHECK(c.max_message == 65536, "max_message: got %zu, want 65536", c.max_message);
	T_CHECK(c.timeout_cmd_ms == 120000, "timeout_cmd: got %u", c.timeout_cmd_ms);
	T_CHECK(c.timeout_data_ms == 90000, "timeout_data: got %u", c.timeout_data_ms);
	T_CHECK(c.timeout_tls_ms == 500, "timeout_tls: got %u", c.timeout_tls_ms);
	T_CHECK(c.batch_deadline_us == 3000, "batch_deadline: got %u", c.batch_deadline_us);
	T_CHECK(c.delivery == DIME_DCONF_LMTP && strcmp(c.lmtp, "unix:/run/lmtp") == 0,
		"lmtp: got %d %s", c.delivery, c.lmtp);
	T_CHECK(c.log_syslog == 1, "log: got %d", c.log_syslog);
	T_CHECK(c.early_talk_reject == 0, "early_talk_reject: got %d", c.early_talk_reject);
	T_CHECK(c.key_process == 0, "key_process: got %d, want 0", c.key_process);
	T_CHECK(c.key_timeout_ms == 250, "key_timeout: got %u, want 250", c.key_timeout_ms);
	T_CHECK(c.lookup_timeout_ms == 5000, "lookup_timeout: got %u, want 5000",
		c.lookup_timeout_ms);
	T_CHECK(strcmp(c.user, "nobody") == 0, "user: got %s", c.user);
	T_CHECK(strcmp(c.pid_file, "/run/dimed.pid") == 0, "pid_file: got %s", c.pid_file);
	T_CHECK(c.n_certs == 2 && c.certs[0].name[0] == '\0' &&
		    strcmp(c.certs[0].cert, cert) == 0 &&
		    strcmp(c.certs[1].name, "other.example.org") == 0 &&
		    strcmp(c.certs[1].key, key) == 0,
		"certs: got %zu [%s] [%s]", c.n_certs, c.certs[0].name, c.certs[1].name);
}

static void
t_errors(void)
{
	static const struct {
		const char *name, *text, *want; /* want: in why, after "FILE:" */
	} v[] = {
	    {"unknown key", "hostname = a\nfrobnicate = 1\n", ":2: frobnicate: unknown key"},
	    {"bad size", "max_message = 10x\n", ":1: max_message:"},
	    {"size too big", "max_message = 2048m\n", ":1: max_message:"},
	    {"bad duration", "\n\ntimeout_cmd = soon\n", ":3: timeout_cmd:"},
	    {"bad mode", "listen = 127.0.0.1:26 pop3\n", ":1: listen: mode"},
	    {"bad reinject", "reinject = localhost\n", ":1: reinject: "},
	    {"bad unsigned_local", "unsigned_local = plain\n", ":1: unsigned_local: "},
	    {"bad smtp_bare_lf", "smtp_bare_lf = keep\n", ":1: smtp_bare_lf: "},
	    {"bad smtp_max_rcpts", "smtp_max_rcpts = 0\n", ":1: smtp_max_rcpts"},
	    {"bad lookup_timeout", "lookup_timeout = 0\n", ":1: lookup_timeout"},
	    {"long lookup_timeout", "lookup_timeout = 2m\n", ":1: lookup_timeout"},
	    {"no port", "listen = 127.0.0.1 dmtp\n", ":1: listen:"},
	    {"port range", "listen = 127.0.0.1:65536 dmtp\n", ":1: listen:"},
	    {"bad v6", "listen = [::1:26 dmtp\n", ":1: listen:"},
	    {"missing cert", "[tls]\ncert = /nonexistent/c.pem\n", ":2: cert: /nonexistent"},
	    {"unknown section", "[smtp]\nport = 1\n", ":2: port: unknown section"},
	    {"tls key", "[tls]\nchain = x\n", ":2: chain: unknown key"},
	    {"syntax", "hostname = a\nthis is not a pair\n", ":2:"},
	    {"bool", "early_talk_reject = maybe\n", ":1: early_talk_reject:"},
	    {"lmtp without target", "delivery = lmtp\n", "needs lmtp"},
	    {"cert without key", "[tls]\ncert = @C\n", "needs both cert and key"},
	    {"workers range", "workers = 100000\n", ":1: workers:"},
	    {"retry order", "retry_min = 2m\nretry_max = 1m\n", "retry_min"},
	    {"give up too soon", "outq_give_up = 71h\n", "outq_"},
	    {"interval over 12h", "outq_max_interval = 13h\n", "outq_"},
	    {"policy", "policy = lax\n", "policy"},
	    {"mx ports", "mx_ports = 25\n", "mx_ports"},
	    {"dx port", "dx_port = 70000\n", "dx_port"},
	    {"key_process bool", "key_process = perhaps\n", ":1: key_process:"},
	    {"key_timeout zero", "key_timeout = 0\n", ":1: key_timeout: \"0\" is out of range"},
	    {"key_timeout unit", "key_timeout = 5x\n", ":1: key_timeout:"},
	    {"key_timeout long", "key_timeout = 61m\n", ":1: key_timeout:"},
	    {"no such user", "\nuser = no-such-user-dimed-test\n", ":2: user: \"no-such-user"},
	};
	char why[512], text[512], name[32];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct dime_dconf c;
		const char *p;
		int rc;

		const char *at = strstr(v[i].text, "@C");

		if (at != NULL) /* the name of a file that exists */
			snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - v[i].text), v[i].text,
				 t_path("c.pem"), at + 2);
		else
			snprintf(text, sizeof(text), "%s", v[i].text);
		snprintf(name, sizeof(name), "e%zu.conf", i);
		p = t_write(name, text);
		rc = dime_dconf_load(&c, p, why, sizeof(why));
		T_CHECK(rc == DIME_E_INVALID, "%s: got %d, want DIME_E_INVALID", v[i].name, rc);
		T_CHECK(strncmp(why, p, strlen(p)) == 0 && strstr(why, v[i].want) != NULL,
			"%s: got \"%s\", want \"%s%s\"", v[i].name, why, p, v[i].want);
	}
}

/* The outbound keys: values, units up to days, and the defaults the spec asks for. */
static void
t_outbound(void)
{
	struct dime_dconf c;
	char why[512];
	int rc;

	T_CHECK(dime_dconf_load(&c, NULL, why, sizeof(why)) == DIME_OK && c.dx_port == 26 &&
		    c.mx_ports[0] == 25 && c.mx_ports[1] == 587 && c.policy == DIME_POL_MIXED &&
		    c.outq_max_interval_s == 43200 && c.outq_give_up_s >= 72 * 3600 &&
		    strcmp(c.outq, "var/outq") == 0,
		"outbound defaults");
	rc = dime_dconf_load(&c,
			     t_write("out.conf",
				     "policy = strict\noutq_give_up = 3d\n"
				     "outq_first_retry = 1s\noutq_delay_notice = 90m\n"
				     "mx_ports = 2525 2587\ndx_port = 2626\n"
				     "dns_static = /x/records.txt\noutbound_workers = 2\n"),
			     why, sizeof(why));
	T_CHECK(rc == DIME_OK && c.policy == DIME_POL_STRICT && c.outq_give_up_s == 3 * 86400 &&
		    c.outq_first_retry_s == 1 && c.outq_delay_notice_s == 5400 &&
		    c.mx_ports[0] == 2525 && c.mx_ports[1] == 2587 && c.dx_port == 2626 &&
		    strcmp(c.dns_static, "/x/records.txt") == 0 && c.outbound_workers == 2,
		"outbound keys: %d %s", rc, why);
}

static void
t_long_line(void)
{
	struct dime_dconf c;
	char why[512], text[1200];
	int rc;

	/* inih's buffer is 200 bytes: a longer line must be an error, not two lines */
	memset(text, 'a', sizeof(text));
	memcpy(text, "hostname = ", 11);
	memcpy(text + 1000, "\nworkers = 1\n", 14);
	rc = dime_dconf_load(&c, t_write("long.conf", text), why, sizeof(why));
	T_CHECK(rc == DIME_E_INVALID && strstr(why, ":1: line: longer than") != NULL,
		"long line: got %d \"%s\"", rc, why);
	rc = dime_dconf_load(&c, t_path("nonexistent.conf"), why, sizeof(why));
	T_CHECK(rc == DIME_E_IO && strstr(why, "No such file") != NULL, "missing file: got %d %s",
		rc, why);
}

/* The pid file: configured, else next to the store (where `dime user create --rotate` looks). */
static void
t_pid_file(void)
{
	struct dime_dconf c;
	char why[512], out[64];
	int rc;

	rc = dime_dconf_load(&c, NULL, why, sizeof(why));
	T_CHECK(rc == DIME_OK, "defaults: got %d", rc);
	rc = dime_dconf_pid_file(&c, out, sizeof(out));
	T_CHECK(rc == DIME_OK && strcmp(out, "var/dime.db.dimed.pid") == 0,
		"default pid file: got %d %s, want var/dime.db.dimed.pid", rc, out);
	strcpy(c.pid_file, "/run/d.pid");
	rc = dime_dconf_pid_file(&c, out, sizeof(out));
	T_CHECK(rc == DIME_OK && strcmp(out, "/run/d.pid") == 0, "pid_file: got %d %s", rc, out);
	memset(c.store, 'a', 100);
	c.store[100] = '\0';
	c.pid_file[0] = '\0';
	rc = dime_dconf_pid_file(&c, out, sizeof(out));
	T_CHECK(rc == DIME_E_NOSPACE && out[0] == '\0', "long: got %d \"%s\", want NOSPACE, \"\"",
		rc, out);
}

int
main(void)
{
	if (t_mkdtemp("dconf") != 0)
		return 1;
	t_sample_is_defaults();
	t_values();
	t_errors();
	t_outbound();
	t_long_line();
	t_pid_file();
	t_rm_rf(t_dir);
	return t_done("test_daemon_conf");
}

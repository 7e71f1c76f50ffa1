#ifndef DIME_DAEMON_DCONF_H
#define DIME_DAEMON_DCONF_H
/* dimed's configuration: `key = value` lines (inih), [sections] for TLS certificates per host
 * name. Every key, its default and its meaning: docs/dimed.conf (the commented sample). */

#include <stddef.h>

#include "dime/common.h"

#define DIME_DCONF_MAX_LISTEN  8
#define DIME_DCONF_MAX_CERTS   16
#define DIME_DCONF_MAX_DOMAINS 64

enum dime_dconf_mode {
	DIME_DCONF_DMTP = 1, /* implicit TLS, banner `220 <host> DMTP ...` (port 26) */
	DIME_DCONF_DUAL = 2, /* plain banner, ESMTP + DMTP; STARTTLS <host> MODE=DMTP elevates */
	/* The SMTP gateway (docs/smtp.md, docs/postfix.md): loopback services for the MTA. */
	DIME_DCONF_SMTP = 3,	  /* ESMTP: the MTA's after-queue content filter (10025) */
	DIME_DCONF_LMTP_IN = 4,	  /* the same over LMTP (a reply per recipient) */
	DIME_DCONF_SOCKETMAP = 5, /* Postfix socketmap: which recipients go to the gateway */
	DIME_DCONF_POLICY = 6	  /* Postfix policy delegation: refusals at RCPT time */
};

/* What the gateway does with naked inbound mail for a hosted user it cannot wrap for (no
 * current signet): keep it with the MTA (4xx, the default: fail closed), or refuse it (5xx). */
enum dime_dconf_unsigned { DIME_DCONF_UNSIGNED_DEFER = 1, DIME_DCONF_UNSIGNED_REFUSE = 2 };

struct dime_dconf_listen {
	char host[64];
	unsigned port; /* 0: an ephemeral port (tests) */
	enum dime_dconf_mode mode;
};

struct dime_dconf_cert {
	char name[256]; /* SNI / STARTTLS host it serves; "" for the default */
	char cert[4096], key[4096];
};

enum dime_dconf_delivery { DIME_DCONF_MAILDIR = 1, DIME_DCONF_LMTP = 2 };

struct dime_dconf {
	char hostname[256]; /* in banners and replies */
	char store[4096];   /* the embedded store (keys behind the keystore interface) */
	char spool[4096];   /* spool root: tmp/, queue/ */
	struct dime_dconf_listen listen[DIME_DCONF_MAX_LISTEN];
	size_t n_listen;
	struct dime_dconf_cert certs[DIME_DCONF_MAX_CERTS]; /* certs[0] is the default */
	size_t n_certs;
	enum dime_dconf_delivery delivery;
	char maildir_root[4096]; /* <root>/<domain>/<user>/{tmp,new,cur} */
	char lmtp[512];		 /* unix:/path or host:port */
	unsigned workers;	 /* 0: online CPUs */
	size_t batch_max;
	unsigned batch_deadline_us;
	size_t queue_max;
	size_t max_message; /* octets of one DATA (armored) */
	unsigned max_conns; /* all clients */
	unsigned max_conns_per_ip;
	unsigned max_cmds;	  /* commands per session before 421 */
	unsigned timeout_cmd_ms;  /* waiting for a command line (spec: >= 1 min; 10 min) */
	unsigned timeout_data_ms; /* between DATA bytes */
	unsigned timeout_tls_ms;  /* the TLS handshake */
	int log_syslog;		  /* 0: stderr */
	char log_level[16];	  /* error, warning, info, debug */
	int early_talk_reject;	  /* 1: 554 to a client that talks before the banner */
	unsigned retry_min_ms;	  /* delivery: first wait after a 4xx (doubles each time) */
	unsigned retry_max_ms;	  /* delivery: longest wait between attempts */
	unsigned greet_pause_ms;  /* banner held this long, so an early talker shows (0: none) */
	int key_process;	  /* 1: private keys only in a key process (dime/keyproc.h) */
	unsigned key_timeout_ms;  /* one key process round trip, then 451 */
	char user[64];		  /* "" : keep the starting user; else setuid to it after bind */
	char pid_file[4096];	  /* "" : <store>.dimed.pid (dime_dconf_pid_file) */

	/* Outbound: other domains (docs/delivery.md). */
	char outq[4096];	     /* the outbound queue's root (dime/outq.h) */
	int policy;		     /* enum dime_mrec_policy: ours, as our record publishes it */
	char dns_static[4096];	     /* offline: a file of records (dime/dns.h); else DNS */
	char dns_config[4096];	     /* an unbound configuration (stub and forward zones) */
	char trust_anchor[4096];     /* DNSSEC anchor (default /usr/share/dns/root.key) */
	char resolv_conf[4096];	     /* forward to these resolvers instead of iterating */
	unsigned dns_timeout_ms;     /* one DNS answer */
	unsigned dx_port;	     /* dx hosts, implicit TLS (26) */
	unsigned mx_ports[2];	     /* MX hosts, dual protocol, in order (25, 587) */
	char tls_ca_file[4096];	     /* CA bundle for peers' certificates ("": system's) */
	unsigned outbound_workers;   /* delivery threads, each one DMTP session at a time */
	unsigned connect_timeout_ms; /* TCP connect and TLS handshake to a peer */
	unsigned outq_first_retry_s; /* dime/outq.h policy */
	unsigned outq_max_interval_s;
	unsigned outq_delay_notice_s;
	unsigned outq_give_up_s;

	/* The SMTP gateway (docs/smtp.md). */
	char reinject[512];	     /* HOST:PORT of the MTA's reinjection smtpd (10026): naked mail
				      * leaves through it; "" : naked mail is refused (4xx) */
	char socketmap_nexthop[512]; /* the socketmap's answer for D/MIME recipients ("" : the
				      * first smtp listener as "dime:[HOST]:PORT") */
	int unsigned_local;	     /* enum dime_dconf_unsigned */
	unsigned smtp_max_rcpts;     /* recipients per transaction (452 beyond) */
	int smtp_bare_lf_reject;     /* 1: a bare LF in a message is refused; 0: normalised */
	unsigned gateway_workers;    /* threads running the flows: they wait on fsync, the
				      * reinjection and DNS, so more of them than CPUs */
	unsigned lookup_workers;     /* threads fetching the signets of DMTP origins the store
				      * does not hold: they wait on the network */
	unsigned lookup_timeout_ms;  /* a socketmap or policy query undecided this long is
				      * answered "try later" (Postfix waits 100 s) */
};

/* Defaults, then path (NULL: defaults only). Unknown keys, bad values, missing files named by
 * a key: DIME_E_INVALID with why "FILE:LINE: key: reason" (cap why_cap).
 * Returns: DIME_OK, DIME_E_INVALID, DIME_E_IO (cannot read path). */
DIME_MUST_CHECK int dime_dconf_load(struct dime_dconf *c, const char *path, char *why,
				    size_t why_cap);

/* "dmtp", "dual", "smtp", "lmtp", "socketmap", "policy" (as `listen` takes them). */
const char *dime_dconf_mode_name(enum dime_dconf_mode m);

struct dime_dns_conf;
struct dime_dx_conf;
struct dime_dx_ports;

/* The outbound settings as the modules take them: DNS (dns_static wins; else dns_config,
 * trust_anchor, resolv_conf), the DMTP client (helo = hostname) and the peers' ports. The
 * outputs borrow c's strings. Any output may be NULL. */
void dime_dconf_outbound(const struct dime_dconf *c, struct dime_dns_conf *dns,
			 struct dime_dx_conf *dx, struct dime_dx_ports *ports);

/* The pid file dimed writes: c->pid_file, else <store>.dimed.pid (DIME_DCONF_PID_SUFFIX), the
 * name `dime user create --rotate` looks for next to the store it changed.
 * Returns: DIME_OK, DIME_E_NOSPACE (over cap; out is then ""). */
#define DIME_DCONF_PID_SUFFIX ".dimed.pid"
DIME_MUST_CHECK int dime_dconf_pid_file(const struct dime_dconf *c, char *out, size_t cap);
#endif

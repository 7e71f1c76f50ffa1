/* dime send: resolve each recipient's signets (dime/sigfetch.h), decide by policy
 * (dime/policy.h), wrap to the ones that take D/MIME with the origin's signatures and queue
 * them for dimed's delivery agent (dime/outq.h). It delivers nothing itself. */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "dime/dconf.h"
#include "dime/dir.h"
#include "dime/dns.h"
#include "dime/msg_armor.h"
#include "dime/outq.h"
#include "dime/plmsg.h"
#include "dime/policy.h"
#include "dime/privsep.h"
#include "dime/sigfetch.h"

#define SEND_TO_MAX	 64u
#define SEND_EX_TEMPFAIL 75 /* sysexits.h EX_TEMPFAIL */

static const char send_usage[] =
    "usage: dime send --config dimed.conf --from AUTHOR --to RECIPIENT [--to ...] < mail\n"
    "\n"
    "Sends the RFC 5322 mail on stdin from AUTHOR (a user hosted in dimed's store, with keys)\n"
    "to each RECIPIENT of another domain, as dimed would: finds the recipient's management\n"
    "record and signets (fetched over DMTP and kept in the store; see dime resolve --signets),\n"
    "decides by our policy (the config's policy) and the destination's, and for D/MIME wraps\n"
    "the mail to the recipient with the origin's signatures and puts it in dimed's outbound\n"
    "queue (outq), one message per recipient. A running dimed is told to look at its queue\n"
    "(SIGUSR1); one that is not running picks the queue up when it starts.\n"
    "\n"
    "Prints one line per recipient:\n"
    "  queued ID RECIPIENT          in the queue, for delivery over DMTP\n"
    "  naked RECIPIENT: WHY         the destination takes plain mail: nothing is queued (naked\n"
    "                               mail leaves through the SMTP gateway, not this command)\n"
    "  refused RECIPIENT: WHY       permanent: policy forbids it, or it cannot be wrapped\n"
    "  deferred RECIPIENT: WHY      could not tell now (DNS, no host answered): try later\n"
    "\n"
    "options:\n"
    "  --config FILE   dimed's configuration (store, outq, policy, DNS, ports)\n"
    "  --from ADDRESS  the author\n"
    "  --to ADDRESS    a recipient (repeatable, up to 64)\n"
    "\n"
    "Exit status: 0 all queued; 75 some deferred and none refused or naked; 1 some refused or\n"
    "naked; 2 usage or setup errors.\n";

struct send_rcpt {
	char addr[256];
	int rc; /* dime_sf_resolve */
	enum dime_send_action act;
	char why[DIME_PL_MSG_WHY_MAX + 64];
	char dest_fp[88];
};

/* The author: hosted here, with a user key (trustful mode); origin_fp: the current hosted org
 * signet of its domain, which the origin signatures come from. */
static int
send_author(struct dime_store *st, char origin_fp[88], const char *author, const char *domain)
{
	struct dime_store_row row;
	uint8_t *blob = NULL;
	size_t len = 0;
	int rc;

	rc = dime_store_get(st, &blob, &len, &row, author, DIME_STORE_USER_SIGNET, 0);
	free(blob);
	blob = NULL;
	if (rc != DIME_OK || !row.hosted)
		return cli_err("send: %s is not a user hosted in this store", author);
	rc = dime_store_get(st, &blob, &len, &row, author, DIME_STORE_USER_KEY, 0);
	if (blob != NULL) {
		dime_wipe(blob, len);
		free(blob);
		blob = NULL;
	}
	if (rc != DIME_OK)
		return cli_err("send: the keys of %s are not in this store", author);
	rc = dime_store_get(st, &blob, &len, &row, domain, DIME_STORE_ORG_SIGNET, 0);
	free(blob);
	if (rc != DIME_OK || !row.hosted || row.fingerprint[0] == 0)
		return cli_err("send: %s is not an org hosted in this store", domain);
	memcpy(origin_fp, row.fingerprint, sizeof(row.fingerprint));
	return CLI_OK;
}

/* Wrap the mail to one recipient (origin-signed) and queue it. Returns CLI_OK or CLI_NO with
 * rp->why set, or CLI_ERR. */
static int
send_queue(struct dime_pl_dir *dir, struct dime_outq *q, struct send_rcpt *rp, const char *author,
	   const char *origin, const char *origin_fp, const uint8_t *mail, size_t mail_len,
	   char id[DIME_OUTQ_ID_MAX + 1])
{
	struct dime_pl_msg_conf conf;
	struct dime_pl_msg *m = NULL;
	struct dime_pl_msg_worker *w = NULL;
	struct dime_pl_msg_job j;
	struct dime_outq_env env;
	char swhy[DIME_PL_MSG_WHY_MAX], *armor = NULL;
	size_t armor_len = 0;
	int rc = CLI_ERR, e = 0;

	memset(&j, 0, sizeof(j));
	memset(&conf, 0, sizeof(conf));
	conf.op = DIME_PL_MSG_WRAP;
	conf.from = author;
	conf.to = rp->addr;
	conf.origin_sign = 1;
	conf.wrap.gzip = DIME_MSG_GZIP_IF_SMALLER;
	conf.wrap.padding = DIME_MSG_PAD_REFERENCE;
	if (dime_pl_msg_new(&m, swhy, sizeof(swhy), dir, &conf) != DIME_OK) {
		(void)snprintf(rp->why, sizeof(rp->why), "%s", swhy);
		rc = CLI_NO;
		goto out;
	}
	if (dime_pl_msg_worker_new(&w, m, 1) != DIME_OK) {
		rc = cli_err("out of memory");
		goto out;
	}
	j.in = mail;
	j.in_len = mail_len;
	(void)dime_pl_msg_run(w, &j, 1);
	if (j.rc != DIME_OK) {
		(void)snprintf(rp->why, sizeof(rp->why), "%s", j.why);
		rc = CLI_NO;
		goto out;
	}
	if (dime_msg_armor(&armor, &armor_len, j.out, j.out_len, DIME_MSG_ARMOR_LABEL, 1) !=
	    DIME_OK) {
		rc = cli_err("send: armor: out of memory");
		goto out;
	}
	memset(&env, 0, sizeof(env));
	env.origin = origin;
	env.origin_fp = origin_fp;
	env.author = author;
	env.recipient = rp->addr;
	env.dest_fp = rp->dest_fp;
	rc = dime_outq_put(q, id, &env, (const uint8_t *)armor, armor_len, (int64_t)time(NULL), &e);
	if (rc != DIME_OK) {
		rc = cli_err("send: cannot queue for %s: %s%s%s", rp->addr, dime_strerror(rc),
			     e != 0 ? ": " : "", e != 0 ? strerror(e) : "");
		goto out;
	}
	rc = CLI_OK;
out:
	free(armor);
	dime_pl_msg_job_clear(&j);
	dime_pl_msg_worker_free(w);
	dime_pl_msg_free(m);
	return rc;
}

int
cmd_send(int argc, char **argv)
{
	static struct dime_dconf conf; /* large: not on the stack */
	struct dime_dns_conf dns_conf;
	struct dime_dx_conf dx;
	struct dime_dx_ports ports;
	struct dime_sf_conf sf;
	struct dime_sf_result *res = NULL;
	struct dime_dns *dns = NULL;
	struct dime_store *st = NULL;
	struct dime_pl_dir *dir = NULL;
	struct dime_outq *q = NULL;
	struct send_rcpt *rcpts = NULL;
	const char *config = NULL, *from_arg = NULL, *to_args[SEND_TO_MAX], *why = "";
	char from[256], origin[256], origin_fp[88], err[512];
	uint8_t *mail = NULL;
	size_t n_to = 0, mail_len = 0, n_queued = 0, n_refused = 0, n_deferred = 0;
	int rc = CLI_ERR;

	if (cli_wants_help(argc, argv, send_usage))
		return CLI_OK;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			return cli_err("send: %s needs a value\n%s", a, send_usage);
		if (strcmp(a, "--config") == 0)
			config = v;
		else if (strcmp(a, "--from") == 0)
			from_arg = v;
		else if (strcmp(a, "--to") == 0) {
			if (n_to == SEND_TO_MAX)
				return cli_err("send: at most %u recipients", SEND_TO_MAX);
			to_args[n_to++] = v;
		} else
			return cli_err("send: unknown argument %s\n%s", a, send_usage);
		i++;
	}
	if (config == NULL || from_arg == NULL || n_to == 0)
		return cli_err("send: --config, --from and --to are needed\n%s", send_usage);
	if (cli_lower(from, sizeof(from), from_arg) != 0 || cli_domain_of(from) == NULL)
		return cli_err("send: --from: %s is not an address", from_arg);
	(void)snprintf(origin, sizeof(origin), "%s", cli_domain_of(from));
	if (dime_dconf_load(&conf, config, err, sizeof(err)) != DIME_OK)
		return cli_err("send: %s", err);
	if ((rcpts = calloc(n_to, sizeof(*rcpts))) == NULL ||
	    (res = calloc(1, sizeof(*res))) == NULL) {
		rc = cli_err("out of memory");
		goto out;
	}
	for (size_t i = 0; i < n_to; i++) {
		if (cli_lower(rcpts[i].addr, sizeof(rcpts[i].addr), to_args[i]) != 0 ||
		    cli_domain_of(rcpts[i].addr) == NULL) {
			rc = cli_err("send: --to: %s is not an address", to_args[i]);
			goto out;
		}
	}
	if ((rc = cli_read(&mail, &mail_len, "-", dime_pl_msg_input_max(DIME_PL_MSG_WRAP, 0))) !=
	    CLI_OK)
		goto out;
	rc = CLI_ERR;
	if (dime_store_open_flags(&st, conf.store, DIME_STORE_OPEN_EXISTING, err, sizeof(err)) !=
	    DIME_OK) {
		rc = cli_err("send: %s", err);
		goto out;
	}
	if ((rc = send_author(st, origin_fp, from, origin)) != CLI_OK)
		goto out;
	rc = CLI_ERR;
	dime_dconf_outbound(&conf, &dns_conf, &dx, &ports);
	if (dime_dns_new(&dns, &dns_conf, err, sizeof(err)) != DIME_OK) {
		rc = cli_err("send: DNS: %s", err);
		goto out;
	}
	dx.dns = dns;
	memset(&sf, 0, sizeof(sf));
	sf.dns = dns;
	sf.dx = &dx;
	sf.ports = &ports;

	/* Every recipient resolved first: the directory opened after sees what was fetched. */
	for (size_t i = 0; i < n_to; i++) {
		struct send_rcpt *rp = &rcpts[i];

		rp->rc = dime_sf_resolve(res, &sf, st, rp->addr, (int64_t)time(NULL));
		rp->act =
		    dime_send_decide((enum dime_mrec_policy)conf.policy, &res->mr, rp->rc, &why);
		if (rp->rc == DIME_E_NOMEM || rp->rc == DIME_E_IO) {
			dime_sf_result_clear(res);
			rc = cli_err("send: %s: %s", rp->addr, dime_strerror(rp->rc));
			goto out;
		}
		(void)snprintf(rp->why, sizeof(rp->why), "%s%s%s", why,
			       res->why[0] != 0 ? ": " : "", res->why);
		(void)snprintf(rp->dest_fp, sizeof(rp->dest_fp), "%s", res->org_fp);
		dime_sf_result_clear(res);
	}
	for (size_t i = 0; i < n_to; i++) {
		struct send_rcpt *rp = &rcpts[i];
		char id[DIME_OUTQ_ID_MAX + 1];

		switch (rp->act) {
		case DIME_SEND_DMIME:
			if (dir == NULL && dime_pl_dir_open(&dir, conf.store, &why) != DIME_OK) {
				rc = cli_err("send: cannot open the store %s: %s", conf.store, why);
				goto out;
			}
			if (q == NULL &&
			    dime_outq_open(&q, conf.outq, NULL, err, sizeof(err)) != DIME_OK) {
				rc = cli_err("send: the outbound queue: %s", err);
				goto out;
			}
			rc = send_queue(dir, q, rp, from, origin, origin_fp, mail, mail_len, id);
			if (rc == CLI_ERR)
				goto out;
			if (rc == CLI_OK) {
				printf("queued %s %s\n", id, rp->addr);
				n_queued++;
			} else {
				printf("refused %s: %s\n", rp->addr, rp->why);
				n_refused++;
			}
			break;
		case DIME_SEND_NAKED:
			printf("naked %s: %s\n", rp->addr, rp->why);
			n_refused++;
			break;
		case DIME_SEND_REFUSE:
			printf("refused %s: %s\n", rp->addr, rp->why);
			n_refused++;
			break;
		case DIME_SEND_DEFER:
			printf("deferred %s: %s\n", rp->addr, rp->why);
			n_deferred++;
			break;
		}
	}
	if (n_queued > 0)
		cli_outq_notify(&conf);
	rc = n_refused > 0 ? CLI_NO : n_deferred > 0 ? SEND_EX_TEMPFAIL : CLI_OK;
out:
	(void)fflush(stdout);
	dime_outq_close(q);
	dime_pl_dir_close(dir);
	dime_store_close(st);
	dime_dns_free(dns);
	free(res);
	free(rcpts);
	if (mail != NULL) {
		dime_wipe(mail, mail_len);
		free(mail);
	}
	return rc;
}

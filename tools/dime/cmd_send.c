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
#include "dime/batch.h"
#include "dime/dns.h"
#include "dime/io.h"
#include "dime/outq.h"
#include "dime/plmsg.h"
#include "dime/source.h"
#include "dime/policy.h"
#include "dime/privsep.h"
#include "dime/sendpath.h"
#include "dime/sigfetch.h"

#define SEND_TO_MAX	 64u
#define SEND_EX_TEMPFAIL 75 /* sysexits.h EX_TEMPFAIL */

static const char send_usage[] =
    "usage: dime send --config dimed.conf --from AUTHOR --to RECIPIENT [--to ...] < mail\n"
    "       dime send --config dimed.conf --from AUTHOR --to RECIPIENT [--to ...] --in PATH\n"
    "                 [--workers N]\n"
    "\n"
    "Sends the RFC 5322 mail on stdin (or every mail of PATH: a directory of files, a Maildir\n"
    "or an mbox, as dime batch reads them) from AUTHOR (a user hosted in dimed's store, with\n"
    "keys) to each RECIPIENT of another domain, as dimed would: finds the recipient's management\n"
    "record and signets (fetched over DMTP and kept in the store; see dime resolve --signets),\n"
    "decides by our policy (the config's policy) and the destination's, and for D/MIME wraps\n"
    "the mail to the recipient with the origin's signatures and puts it in dimed's outbound\n"
    "queue (outq), one message per recipient. A running dimed is told to look at its queue\n"
    "(SIGUSR1); one that is not running picks the queue up when it starts.\n"
    "\n"
    "Prints one line per recipient (with --in: per recipient and mail, the mail's name last):\n"
    "  queued ID RECIPIENT [NAME]   in the queue, for delivery over DMTP\n"
    "  naked RECIPIENT: WHY         the destination takes plain mail: nothing is queued (naked\n"
    "                               mail leaves through the SMTP gateway, not this command)\n"
    "  refused RECIPIENT [NAME]: WHY  permanent: policy forbids it, or it cannot be wrapped\n"
    "  deferred RECIPIENT: WHY      could not tell now (DNS, no host answered): try later\n"
    "\n"
    "options:\n"
    "  --config FILE   dimed's configuration (store, outq, policy, DNS, ports)\n"
    "  --from ADDRESS  the author\n"
    "  --to ADDRESS    a recipient (repeatable, up to 64)\n"
    "  --in PATH       the mails to send (default: one mail on stdin)\n"
    "  --workers N     wrapping threads with --in (default: the online CPUs)\n"
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

/* The batch's sink: each wrapped message goes into the outbound queue (durable when put
 * returns); the receipt is its queue ID. Called from the batch's workers (outq is
 * thread-safe). */
struct send_sink {
	struct dime_outq *q;
	struct dime_outq_env env;
	const struct dime_dconf *conf;
	unsigned long queued; /* atomic: puts so far */
};

/* A bulk send tells a running dimed every SEND_NOTIFY_EVERY messages, so delivery starts
 * while the rest is still being wrapped (the final notice comes after the run). */
#define SEND_NOTIFY_EVERY 32u

static void
send_put(void *ctx, struct dime_batch_out *o, size_t n)
{
	static __thread char why_buf[DIME_IO_GROUP_MAX][256];
	struct send_sink *k = ctx;
	struct dime_outq_item it[DIME_IO_GROUP_MAX];
	int64_t now = (int64_t)time(NULL);
	unsigned long before, after;

	if (n > DIME_IO_GROUP_MAX) { /* the queue commits in slices of this anyway */
		send_put(ctx, o, DIME_IO_GROUP_MAX);
		send_put(ctx, o + DIME_IO_GROUP_MAX, n - DIME_IO_GROUP_MAX);
		return;
	}
	for (size_t i = 0; i < n; i++)
		it[i] = (struct dime_outq_item){
		    .env = &k->env, .msg = o[i].out, .len = o[i].len, .now = now};
	(void)dime_outq_put_many(k->q, it, n); /* one commit for the group */
	for (size_t i = 0; i < n; i++) {
		int e = it[i].err;

		o[i].rc = it[i].rc;
		if (it[i].rc != DIME_OK) {
			(void)snprintf(why_buf[i], sizeof(why_buf[i]), "cannot queue: %s%s%s",
				       dime_strerror(it[i].rc), e != 0 ? ": " : "",
				       e != 0 ? strerror(e) : "");
			o[i].why = why_buf[i];
			continue;
		}
		(void)snprintf(o[i].line, o[i].line_cap, "%s", it[i].id);
	}
	before = __atomic_fetch_add(&k->queued, n, __ATOMIC_RELAXED);
	after = before + n;
	if (after / SEND_NOTIFY_EVERY != before / SEND_NOTIFY_EVERY) {
		char swhy[256];
		long pid;

		(void)cli_outq_signal(k->conf, &pid, swhy, sizeof(swhy)); /* best effort */
	}
}

/* One item of stdin: the mail read before the run (the pipeline frees it). */
struct send_one {
	uint8_t *mail;
	size_t len;
};

static int
send_one_next(void *ctx, struct dime_batch_item *it, const char **why)
{
	struct send_one *o = ctx;

	(void)why;
	if (o->mail == NULL)
		return 0;
	(void)snprintf(it->name, sizeof(it->name), "stdin");
	it->data = o->mail;
	it->len = o->len;
	o->mail = NULL;
	return 1;
}

struct send_tally {
	const char *rcpt;
	int named; /* print the item's name (--in) */
	size_t queued, refused;
};

static void
send_on_result(void *ctx, const struct dime_batch_result *r)
{
	struct send_tally *t = ctx;

	if (r->ok == 1) {
		printf("queued %s %s%s%s\n", r->line != NULL ? r->line : "?", t->rcpt,
		       t->named ? " " : "", t->named ? r->name : "");
		t->queued++;
	} else if (r->ok == 0 || r->ok == -2) {
		printf("refused %s%s%s: %s\n", t->rcpt, t->named ? " " : "",
		       t->named ? r->name : "",
		       r->ok == -2 ? "stopped before it was wrapped" : r->why);
		t->refused++;
	}
}

/* Wrap every mail of the source to one recipient (origin-signed) and queue each. Returns
 * CLI_OK (the tally says how each went) or CLI_ERR (the run could not start). */
static int
send_run(struct send_tally *t, const struct dime_batch_conf *bc, const char *store_path,
	 struct dime_batch_source *src, struct send_sink *k, const char *author)
{
	struct dime_batch_params par;
	struct dime_batch_sink sink;
	struct dime_batch_summary sum;
	const char *why = "";
	int rc;

	memset(&par, 0, sizeof(par));
	par.op = DIME_BATCH_WRAP;
	par.from = author;
	par.to = t->rcpt;
	par.origin_sign = 1;
	par.wrap.gzip = DIME_MSG_GZIP_IF_SMALLER;
	par.wrap.padding = DIME_MSG_PAD_REFERENCE;
	memset(&sink, 0, sizeof(sink));
	sink.put = send_put;
	sink.ctx = k;
	memset(&sum, 0, sizeof(sum));
	rc = dime_batch_run(bc, &par, store_path, src, &sink, send_on_result, t, &sum, &why);
	if (rc != DIME_OK && sum.ok + sum.failed + sum.not_started == 0) {
		if (rc == DIME_E_NOTFOUND || rc == DIME_E_INVALID) {
			/* a party the wrap needs (the recipient's signet) is missing or unusable:
			 * permanent for this recipient, not for the run */
			printf("refused %s: %s\n", t->rcpt, why);
			t->refused++;
			return CLI_OK;
		}
		return cli_err("send: %s: %s", t->rcpt, why);
	}
	if (rc != DIME_OK)
		fprintf(stderr, "dime: send: %s: %s\n", t->rcpt, why);
	return CLI_OK;
}

int
cmd_send(int argc, char **argv)
{
	static struct dime_dconf conf; /* large: not on the stack */
	struct dime_dns_conf dns_conf;
	struct dime_dx_conf dx;
	struct dime_dx_ports ports;
	struct dime_sf_conf sf;
	struct dime_send_route *route = NULL;
	struct dime_dns *dns = NULL;
	struct dime_store *st = NULL;
	struct dime_outq *q = NULL;
	struct dime_source *src = NULL;
	struct send_rcpt *rcpts = NULL;
	struct dime_batch_conf bc;
	const char *config = NULL, *from_arg = NULL, *in = NULL, *to_args[SEND_TO_MAX], *why = "";
	char from[256], origin[256], origin_fp[88], err[512];
	uint8_t *mail = NULL;
	size_t n_to = 0, mail_len = 0, n_queued = 0, n_refused = 0, n_deferred = 0, n_runs = 0;
	unsigned long workers = 0;
	int rc = CLI_ERR;

	if (cli_wants_help(argc, argv, send_usage))
		return CLI_OK;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end = NULL;

		if (v == NULL)
			return cli_err("send: %s needs a value\n%s", a, send_usage);
		if (strcmp(a, "--config") == 0)
			config = v;
		else if (strcmp(a, "--from") == 0)
			from_arg = v;
		else if (strcmp(a, "--in") == 0)
			in = v;
		else if (strcmp(a, "--workers") == 0) {
			workers = strtoul(v, &end, 10);
			if (end == v || *end != 0 || workers < 1 || workers > 256)
				return cli_err("send: --workers takes 1 to 256");
		} else if (strcmp(a, "--to") == 0) {
			if (n_to == SEND_TO_MAX)
				return cli_err("send: at most %u recipients", SEND_TO_MAX);
			to_args[n_to++] = v;
		} else
			return cli_err("send: unknown argument %s\n%s", a, send_usage);
		i++;
	}
	if (config == NULL || from_arg == NULL || n_to == 0)
		return cli_err("send: --config, --from and --to are needed\n%s", send_usage);
	if (workers != 0 && in == NULL)
		return cli_err("send: --workers goes with --in");
	if (cli_lower(from, sizeof(from), from_arg) != 0 || cli_domain_of(from) == NULL)
		return cli_err("send: --from: %s is not an address", from_arg);
	(void)snprintf(origin, sizeof(origin), "%s", cli_domain_of(from));
	if (dime_dconf_load(&conf, config, err, sizeof(err)) != DIME_OK)
		return cli_err("send: %s", err);
	if ((rcpts = calloc(n_to, sizeof(*rcpts))) == NULL ||
	    (route = calloc(1, sizeof(*route))) == NULL) {
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
	if (in != NULL) {
		if (dime_source_open(&src, in, 0, &why) != 0) {
			rc = cli_err("send: %s: %s", in, why);
			goto out;
		}
	} else if ((rc = cli_read(&mail, &mail_len, "-",
				  dime_pl_msg_input_max(DIME_PL_MSG_WRAP, 0))) != CLI_OK)
		goto out;
	rc = CLI_ERR;
	if (dime_store_open_flags(&st, conf.store, DIME_STORE_OPEN_EXISTING, err, sizeof(err)) !=
	    DIME_OK) {
		rc = cli_err("send: %s", err);
		goto out;
	}
	if (dime_send_author(st, origin_fp, from, origin, err, sizeof(err)) != DIME_OK) {
		rc = cli_err("send: %s", err);
		goto out;
	}
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

	/* Every recipient resolved first, once however many mails there are: the wrapping opens
	 * the store after and sees what was fetched. */
	for (size_t i = 0; i < n_to; i++) {
		struct send_rcpt *rp = &rcpts[i];

		if (dime_send_route(route, &sf, st, conf.policy, rp->addr, (int64_t)time(NULL)) !=
		    DIME_OK) {
			rc = cli_err("send: %s: %s", rp->addr, dime_strerror(route->rc));
			goto out;
		}
		rp->rc = route->rc;
		rp->act = route->act;
		(void)snprintf(rp->why, sizeof(rp->why), "%s", route->why);
		(void)snprintf(rp->dest_fp, sizeof(rp->dest_fp), "%s", route->dest_fp);
	}
	dime_store_close(st); /* the batch's threads open their own handles */
	st = NULL;
	memset(&bc, 0, sizeof(bc));
	bc.workers = in != NULL ? (unsigned)workers : 1;
	bc.io = in != NULL ? DIME_BATCH_IO_AUTO : DIME_BATCH_IO_PLAIN;
	for (size_t i = 0; i < n_to; i++) {
		struct send_rcpt *rp = &rcpts[i];
		struct send_tally t = {rp->addr, in != NULL, 0, 0};
		struct send_sink k;
		struct send_one one;
		struct dime_batch_source bs;

		switch (rp->act) {
		case DIME_SEND_DMIME:
			if (q == NULL &&
			    dime_outq_open(&q, conf.outq, NULL, err, sizeof(err)) != DIME_OK) {
				rc = cli_err("send: the outbound queue: %s", err);
				goto out;
			}
			memset(&k, 0, sizeof(k));
			k.q = q;
			k.env.origin = origin;
			k.env.origin_fp = origin_fp;
			k.env.author = from;
			k.env.recipient = rp->addr;
			k.env.dest_fp = rp->dest_fp;
			k.conf = &conf;
			if (in != NULL) {
				/* each recipient reads the input from its start: the source opened
				 * (and checked) up front serves the first, a new one each later */
				if (n_runs > 0) {
					dime_source_close(src);
					src = NULL;
				}
				if (src == NULL && dime_source_open(&src, in, 0, &why) != 0) {
					rc = cli_err("send: %s: %s", in, why);
					goto out;
				}
				dime_batch_source_of(&bs, src);
			} else {
				/* the pipeline takes (and frees) the copy; ours serves the next */
				if ((one.mail = malloc(mail_len + 1)) == NULL) {
					rc = cli_err("out of memory");
					goto out;
				}
				memcpy(one.mail, mail, mail_len);
				one.len = mail_len;
				memset(&bs, 0, sizeof(bs));
				bs.ctx = &one;
				bs.next = send_one_next;
				bs.count_hint = 1;
			}
			rc = send_run(&t, &bc, conf.store, &bs, &k, from);
			n_runs++;
			if (in == NULL && one.mail != NULL) {
				dime_wipe(one.mail, one.len);
				free(one.mail);
			}
			if (rc != CLI_OK)
				goto out;
			n_queued += t.queued;
			n_refused += t.refused;
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
	dime_source_close(src);
	dime_store_close(st);
	dime_dns_free(dns);
	free(route);
	free(rcpts);
	if (mail != NULL) {
		dime_wipe(mail, mail_len);
		free(mail);
	}
	return rc;
}

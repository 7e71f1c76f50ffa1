/* dime msg: D/MIME as the author (wrap), the origin (origin-sign), the destination (accept) and
 * the recipient or author (open), plus dump. Thin: parse argv, read the input (bounded), call
 * the message path (pipeline/include/dime/plmsg.h, which `dime batch` uses too), print. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dime/codec.h"
#include "dime/dconf.h"
#include "dime/dir.h"
#include "dime/plmsg.h"
#include "dime/io.h"
#include "dime/msg.h"
#include "dime/msg_armor.h"

static const char wrap_usage[] =
    "usage: dime [--store PATH] msg wrap --from ADDR --to ADDR [--origin-sign] [--binary]\n"
    "                          [--gzip never|always|if-smaller] [--padding reference|alternate]\n"
    "                          < message.eml > message.dime\n"
    "\n"
    "Wraps an RFC 5322 message as the author ADDR for the recipient --to. The store must hold\n"
    "the signets of the author, both organisations and the recipient, and the author's keys\n"
    "(and the origin's keys for --origin-sign). Armored output unless --binary.\n";
static const char open_usage[] =
    "usage: dime [--store PATH] msg open --as recipient|author [--user ADDR] [--max-size N]\n"
    "                          [--config dimed.conf] < in > message.eml\n"
    "\n"
    "Verifies everything the actor can check and writes the original message. On any failure\n"
    "nothing is written and the exit status is 1. --user names the hosted user whose keys to\n"
    "use; without it every hosted user's keys are tried. --max-size N refuses a message\n"
    "over N bytes (default and upper bound: the engine's limit) after reading at most N\n"
    "bytes of its armor. --config: use dimed's store, and when the store lacks a signet the\n"
    "message names (the author's, typically), fetch and validate it as dime resolve\n"
    "--signets does (dimed's DNS and ports), then open.\n";
static const char osign_usage[] =
    "usage: dime [--store PATH] msg origin-sign [--binary] < in > out\n"
    "\n"
    "As the origin organisation (a hosted org whose key opens the message), verifies the\n"
    "author's signatures and adds the organisational signatures 248, 249 and 255.\n"
    "Output in the input's form (armored or binary) unless --binary.\n";
static const char accept_usage[] =
    "usage: dime [--store PATH] msg accept [--org DOMAIN] [--max-size N] < in\n"
    "\n"
    "As the destination organisation, opens the destination chunk and checks the origin's\n"
    "signatures. Prints ACCEPT <recipient address> <recipient signet fingerprint> or\n"
    "REJECT <reason>. Exit status: 0 accept, 1 reject, 2 usage or I/O error. --org names the\n"
    "hosted organisation the message is for (only its keys are tried); --max-size as for\n"
    "msg open.\n";
static const char bounce_usage[] =
    "usage: dime [--store PATH] msg bounce [--code N] [--reason TEXT] [--display] [--binary]\n"
    "                          < message > bounce\n"
    "\n"
    "As the destination organisation, builds the bounce object the origin needs (see\n"
    "docs/bounce.md) for a message it accepts. Codes: 1 unknown recipient (default),\n"
    "2 refused, 3 too large, 4 signet changed, 5 temporary, 255 other. --display returns the\n"
    "display chunks and their signature too. Armored output unless --binary.\n";
static const char bverify_usage[] =
    "usage: dime [--store PATH] msg bounce-verify < bounce\n"
    "\n"
    "As the origin organisation, checks that a bounce refers to a message it signed. Prints\n"
    "BOUNCE <author> <destination> <code> <reason> or INVALID <reason>; exit 0 or 1.\n";
static const char rekey_usage[] =
    "usage: dime [--store PATH] msg rekey --to-signet FILE [--user ADDR] [--binary]\n"
    "                          < message > rekeyed\n"
    "\n"
    "As the recipient, after rotating its signet: verifies the message as `msg open --as\n"
    "recipient` would, then adds a re-key record (docs/rekey.md) holding the chunk keys\n"
    "rewrapped for the signet in FILE, which must be a stored version of the recipient's\n"
    "signet. The message's own bytes are kept unchanged, so every signature still verifies,\n"
    "and the result opens with the new key alone: the old one can then be destroyed. A\n"
    "re-keyed message gets its record replaced. Armored output unless --binary.\n";
static const char dump_usage[] =
    "usage: dime msg dump < in\n"
    "\n"
    "Prints a message's structure without any key: tracing prefix, each\n"
    "chunk's offset, type, name, payload length and keyslot actors.\n";

/* Read stdin up to max bytes, never more than max + 1: a larger input is refused without being
 * read to its end. As soon as the first bytes tell (dime_pl_msg_input_bound), max shrinks to
 * what the object can hold, or the input is refused unread.
 * Returns: CLI_OK, CLI_NO (*over: larger than max; or *why), CLI_ERR (printed). */
static int
msg_read_bounded(uint8_t **out, size_t *out_len, int *over, const char **why,
		 enum dime_pl_msg_op op, size_t limit)
{
	uint8_t *p = NULL;
	size_t n = 0, cap = 0, max = dime_pl_msg_input_max(op, limit);
	int decided = op == DIME_PL_MSG_WRAP;

	*out = NULL;
	*out_len = 0;
	*over = 0;
	for (;;) {
		if (!decided && n > 0) {
			size_t bound = max;
			int b = dime_pl_msg_input_bound(&bound, why, op, limit, p, n);

			if (b == DIME_E_LIMIT) {
				*over = 1;
				break;
			}
			if (b == DIME_E_MALFORMED) {
				dime_wipe(p, n);
				free(p);
				return CLI_NO;
			}
			if (b == DIME_OK) {
				decided = 1;
				max = bound < max ? bound : max;
			}
		}
		ssize_t r;

		if (n > max) {
			*over = 1;
			break;
		}
		if (n == cap) {
			size_t ncap = cap == 0 ? 65536 : cap * 2;
			uint8_t *q;

			if (ncap > max + 1)
				ncap = max + 1;
			if (ncap <= n) {
				*over = 1;
				break;
			}
			if ((q = realloc(p, ncap)) == NULL) {
				free(p);
				return cli_err("out of memory");
			}
			p = q;
			cap = ncap;
		}
		/* never ask for more than max + 1 bytes in all */
		r = read(0, p + n, (cap < max + 1 ? cap : max + 1) - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			free(p);
			return cli_err("stdin: %s", strerror(e));
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max)
		*over = 1;
	if (*over) {
		dime_wipe(p, n);
		free(p);
		return CLI_NO;
	}
	*out = p != NULL ? p : malloc(1);
	*out_len = n;
	return *out != NULL ? CLI_OK : cli_err("out of memory");
}

/* The input of op as the binary object it works on. Returns CLI_OK, CLI_NO (*why: "not a
 * D/MIME message: ..."), CLI_ERR (printed). */
static int
msg_input(uint8_t **bin, size_t *bin_len, int *armored, const char **why, enum dime_pl_msg_op op,
	  size_t limit)
{
	uint8_t *raw = NULL;
	size_t raw_len = 0;
	int over = 0, rc;

	*bin = NULL;
	*bin_len = 0;
	*armored = 0;
	*why = "";
	rc = msg_read_bounded(&raw, &raw_len, &over, why, op, limit);
	if (rc == CLI_NO && over)
		*why = op == DIME_PL_MSG_WRAP ? "the mail is larger than the size limit"
					      : "not a D/MIME message: larger than the size limit";
	if (rc == CLI_NO)
		return CLI_NO;
	if (rc != CLI_OK)
		return rc;
	rc = dime_pl_msg_decode(bin, bin_len, armored, why, op, limit, raw, raw_len);
	dime_wipe(raw, raw_len);
	free(raw);
	if (rc == DIME_E_NOMEM)
		return cli_err("out of memory");
	return rc == DIME_OK ? CLI_OK : CLI_NO;
}

/* Write p as is (label NULL) or armored under label (with the CRC line when crc). */
static int
msg_write_as(const uint8_t *p, size_t len, const char *label, int crc)
{
	char *a = NULL;
	size_t n = 0;
	int rc;

	if (label == NULL)
		return fwrite(p, 1, len, stdout) == len ? CLI_OK : cli_err("stdout: write failed");
	rc = dime_msg_armor(&a, &n, p, len, label, crc);
	if (rc != DIME_OK)
		return cli_err("armor: %s", dime_strerror(rc));
	rc = fwrite(a, 1, n, stdout) == n ? CLI_OK : cli_err("stdout: write failed");
	free(a);
	return rc;
}

/* One message through the message path: read, decode, look up, run, print. The verdict line
 * (accept, bounce-verify) goes to stdout whatever the outcome; other failures are printed as
 * "dime: msg CMD: reason". out_label: armor of the output (NULL: binary). */
struct msg_call {
	const char *cmd;
	struct dime_pl_msg_conf conf;
	size_t limit;
	int binary;    /* --binary */
	int keep_form; /* output in the input's form (origin-sign) */
	const char *label;
	int crc;
	const struct dime_dconf *fetch; /* --config: fetch a missing signet, then run again */
};

/* A party's signet is missing: fetch it once per identity (at most one per envelope party),
 * and say whether the job is worth running again. */
static int
msg_fetch(const struct msg_call *c, const struct dime_pl_msg_job *j, char tried[4][256],
	  size_t *n_tried)
{
	char why[512];
	int rc;

	if (c->fetch == NULL || j->rc != DIME_E_NOTFOUND || j->missing[0] == 0 || *n_tried == 4)
		return 0;
	for (size_t i = 0; i < *n_tried; i++)
		if (strcmp(tried[i], j->missing) == 0)
			return 0; /* fetched already: the store still lacks that version */
	(void)snprintf(tried[(*n_tried)++], 256, "%s", j->missing);
	rc = cli_fetch_signets(c->fetch, j->missing, why, sizeof(why));
	if (rc != DIME_OK) {
		fprintf(stderr, "dime: msg %s: cannot fetch the signets of %s: %s\n", c->cmd,
			j->missing, why);
		return 0;
	}
	fprintf(stderr, "dime: msg %s: fetched and validated the signets of %s\n", c->cmd,
		j->missing);
	return 1;
}

static int
msg_call(struct msg_call *c)
{
	struct dime_pl_dir *dir = NULL;
	struct dime_pl_msg *m = NULL;
	struct dime_pl_msg_worker *w = NULL;
	struct dime_pl_msg_job j;
	uint8_t *in = NULL;
	size_t in_len = 0;
	const char *why = "";
	char swhy[DIME_PL_MSG_WHY_MAX], tried[4][256];
	size_t n_tried = 0;
	int armored = 0,
	    verdict = c->conf.op == DIME_PL_MSG_ACCEPT || c->conf.op == DIME_PL_MSG_BOUNCE_VERIFY,
	    rc;

	memset(&j, 0, sizeof(j));
	rc = msg_input(&in, &in_len, &armored, &why, c->conf.op, c->limit);
	if (rc == CLI_NO) {
		if (verdict)
			printf("%s %s\n", c->conf.op == DIME_PL_MSG_ACCEPT ? "REJECT" : "INVALID",
			       why);
		else
			cli_no("msg %s: %s", c->cmd, why);
		goto out;
	}
	if (rc != CLI_OK)
		goto out;
again:
	if ((rc = dime_pl_dir_open(&dir, cli.store_path, &why)) != DIME_OK) {
		/* NOTFOUND: why is "no store at PATH" */
		rc = rc == DIME_E_NOTFOUND ? cli_err("msg %s: %s", c->cmd, why)
					   : cli_err("msg %s: cannot open the store %s: %s", c->cmd,
						     dime_store_resolve_path(cli.store_path), why);
		goto out;
	}
	if ((rc = dime_pl_msg_new(&m, swhy, sizeof(swhy), dir, &c->conf)) != DIME_OK) {
		rc = rc == DIME_E_NOMEM ? cli_err("out of memory")
					: cli_no("msg %s: %s", c->cmd, swhy);
		goto out;
	}
	if (dime_pl_msg_worker_new(&w, m, 1) != DIME_OK) {
		rc = cli_err("out of memory");
		goto out;
	}
	j.in = in;
	j.in_len = in_len;
	(void)dime_pl_msg_run(w, &j, 1);
	if (msg_fetch(c, &j, tried, &n_tried)) {
		/* the directory caches what it looked up: a new one sees the fetched signets */
		dime_pl_msg_job_clear(&j);
		dime_pl_msg_worker_free(w);
		dime_pl_msg_free(m);
		dime_pl_dir_close(dir);
		w = NULL;
		m = NULL;
		dir = NULL;
		goto again;
	}
	if (verdict) {
		printf("%s\n", j.line);
		rc = j.rc == DIME_OK ? CLI_OK : CLI_NO;
	} else if (j.rc != DIME_OK) {
		rc = j.rc == DIME_E_NOMEM ? cli_err("msg %s: out of memory", c->cmd)
					  : cli_no("msg %s: %s", c->cmd, j.why);
	} else {
		/* all or nothing: written only once everything has passed */
		rc =
		    msg_write_as(j.out, j.out_len,
				 c->binary || (c->keep_form && !armored) ? NULL : c->label, c->crc);
	}
out:
	dime_pl_msg_job_clear(&j);
	dime_pl_msg_worker_free(w);
	dime_pl_msg_free(m);
	dime_pl_dir_close(dir);
	if (in != NULL) {
		dime_wipe(in, in_len);
		free(in);
	}
	return rc;
}

static void
msg_call_init(struct msg_call *c, const char *cmd, enum dime_pl_msg_op op)
{
	memset(c, 0, sizeof(*c));
	c->cmd = cmd;
	c->conf.op = op;
	c->label = DIME_MSG_ARMOR_LABEL;
}

/* --max-size N. Returns 1 consumed, 0 not this option, -1 bad value. */
static int
msg_opt_size(struct msg_call *c, const char *o, const char *v)
{
	char *end;
	unsigned long long n;

	if (strcmp(o, "--max-size") != 0 || v == NULL)
		return 0;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || *end != 0 || n == 0 || v[0] == '-')
		return -1;
	c->limit = n > SIZE_MAX ? SIZE_MAX : (size_t)n;
	return 1;
}

static int
msg_wrap(int argc, char **argv)
{
	struct msg_call c;
	const char *from_arg = NULL, *to_arg = NULL;
	char from[256], to[256];

	msg_call_init(&c, "wrap", DIME_PL_MSG_WRAP);
	c.conf.wrap.gzip = DIME_MSG_GZIP_IF_SMALLER;
	c.conf.wrap.padding = DIME_MSG_PAD_REFERENCE;
	if (cli_wants_help(argc, argv, wrap_usage))
		return CLI_OK;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(o, "--origin-sign") == 0) {
			c.conf.origin_sign = 1;
			continue;
		}
		if (strcmp(o, "--binary") == 0) {
			c.binary = 1;
			continue;
		}
		if (v == NULL)
			return cli_err("msg wrap: unknown argument %s\n%s", o, wrap_usage);
		if (strcmp(o, "--from") == 0)
			from_arg = v;
		else if (strcmp(o, "--to") == 0)
			to_arg = v;
		else if (strcmp(o, "--gzip") == 0 && strcmp(v, "never") == 0)
			c.conf.wrap.gzip = DIME_MSG_GZIP_NEVER;
		else if (strcmp(o, "--gzip") == 0 && strcmp(v, "always") == 0)
			c.conf.wrap.gzip = DIME_MSG_GZIP_ALWAYS;
		else if (strcmp(o, "--gzip") == 0 && strcmp(v, "if-smaller") == 0)
			c.conf.wrap.gzip = DIME_MSG_GZIP_IF_SMALLER;
		else if (strcmp(o, "--padding") == 0 && strcmp(v, "reference") == 0)
			c.conf.wrap.padding = DIME_MSG_PAD_REFERENCE;
		else if (strcmp(o, "--padding") == 0 && strcmp(v, "alternate") == 0)
			c.conf.wrap.padding = DIME_MSG_PAD_ALTERNATE;
		else
			return cli_err("msg wrap: bad argument %s %s\n%s", o, v, wrap_usage);
		i++;
	}
	if (from_arg == NULL || to_arg == NULL || cli_lower(from, sizeof(from), from_arg) != 0 ||
	    cli_lower(to, sizeof(to), to_arg) != 0 || cli_domain_of(from) == NULL ||
	    cli_domain_of(to) == NULL)
		return cli_err("msg wrap: --from and --to take addresses\n%s", wrap_usage);
	c.conf.from = from;
	c.conf.to = to;
	return msg_call(&c);
}

static int
msg_open(int argc, char **argv)
{
	struct msg_call c;
	const char *as = NULL;
	char user[256];

	static struct dime_dconf dconf; /* large: not on the stack */
	char err[512];

	msg_call_init(&c, "open", DIME_PL_MSG_OPEN);
	c.binary = 1; /* the mail, as is */
	if (cli_wants_help(argc, argv, open_usage))
		return CLI_OK;
	for (int i = 1; i < argc; i++) {
		int s = msg_opt_size(&c, argv[i], i + 1 < argc ? argv[i + 1] : NULL);

		if (s < 0)
			return cli_err("msg open: bad --max-size");
		if (s > 0) {
			i++;
		} else if (strcmp(argv[i], "--as") == 0 && i + 1 < argc) {
			as = argv[++i];
		} else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc) {
			if (cli_lower(user, sizeof(user), argv[++i]) != 0)
				return cli_err("msg open: bad --user");
			c.conf.user = user;
		} else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			if (dime_dconf_load(&dconf, argv[++i], err, sizeof(err)) != DIME_OK)
				return cli_err("msg open: %s", err);
			cli.store_path = dconf.store;
			c.fetch = &dconf;
		} else {
			return cli_err("msg open: unknown argument %s\n%s", argv[i], open_usage);
		}
	}
	if (as == NULL || (strcmp(as, "recipient") != 0 && strcmp(as, "author") != 0))
		return cli_err("msg open: --as recipient|author\n%s", open_usage);
	c.conf.as = as[0] == 'r' ? DIME_ACTOR_RECIPIENT : DIME_ACTOR_AUTHOR;
	return msg_call(&c);
}

static int
msg_rekey(int argc, char **argv)
{
	struct msg_call c;
	const char *to_file = NULL;
	char user[256];
	uint8_t *signet = NULL;
	size_t signet_len = 0;
	int rc;

	msg_call_init(&c, "rekey", DIME_PL_MSG_REKEY);
	if (cli_wants_help(argc, argv, rekey_usage))
		return CLI_OK;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--binary") == 0) {
			c.binary = 1;
		} else if (strcmp(argv[i], "--to-signet") == 0 && i + 1 < argc) {
			to_file = argv[++i];
		} else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc) {
			if (cli_lower(user, sizeof(user), argv[++i]) != 0)
				return cli_err("msg rekey: bad --user");
			c.conf.user = user;
		} else {
			return cli_err("msg rekey: unknown argument %s\n%s", argv[i], rekey_usage);
		}
	}
	if (to_file == NULL)
		return cli_err("msg rekey: --to-signet FILE is required\n%s", rekey_usage);
	if (cli_read(&signet, &signet_len, to_file, DIME_SIGNET_MAX_BYTES * 2) != CLI_OK)
		return CLI_ERR;
	c.conf.to_signet = signet;
	c.conf.to_signet_len = signet_len;
	rc = msg_call(&c);
	free(signet);
	return rc;
}

static int
msg_origin_sign(int argc, char **argv)
{
	struct msg_call c;

	msg_call_init(&c, "origin-sign", DIME_PL_MSG_ORIGIN_SIGN);
	c.keep_form = 1;
	if (cli_wants_help(argc, argv, osign_usage))
		return CLI_OK;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--binary") == 0)
			c.binary = 1;
		else
			return cli_err("msg origin-sign: unknown argument %s\n%s", argv[i],
				       osign_usage);
	}
	return msg_call(&c);
}

static int
msg_accept(int argc, char **argv)
{
	struct msg_call c;
	char org[256];

	msg_call_init(&c, "accept", DIME_PL_MSG_ACCEPT);
	if (cli_wants_help(argc, argv, accept_usage))
		return CLI_OK;
	for (int i = 1; i < argc; i++) {
		int s = msg_opt_size(&c, argv[i], i + 1 < argc ? argv[i + 1] : NULL);

		if (s < 0)
			return cli_err("msg accept: bad --max-size");
		if (s > 0) {
			i++;
		} else if (strcmp(argv[i], "--org") == 0 && i + 1 < argc) {
			if (cli_lower(org, sizeof(org), argv[++i]) != 0)
				return cli_err("msg accept: bad --org");
			c.conf.org = org;
		} else {
			return cli_err("msg accept: unknown argument %s\n%s", argv[i],
				       accept_usage);
		}
	}
	return msg_call(&c);
}

static int
msg_bounce(int argc, char **argv)
{
	struct msg_call c;
	long code = DIME_BOUNCE_UNKNOWN_RECIPIENT;

	msg_call_init(&c, "bounce", DIME_PL_MSG_BOUNCE);
	c.label = DIME_BOUNCE_ARMOR_LABEL;
	c.crc = 1;
	c.conf.reason = "";
	if (cli_wants_help(argc, argv, bounce_usage))
		return CLI_OK;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--binary") == 0) {
			c.binary = 1;
		} else if (strcmp(argv[i], "--display") == 0) {
			c.conf.display = 1;
		} else if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc) {
			c.conf.reason = argv[++i];
		} else if (strcmp(argv[i], "--code") == 0 && i + 1 < argc) {
			char *end;

			code = strtol(argv[++i], &end, 10);
			if (*end != 0 || code < 1 || code > 255)
				return cli_err("msg bounce: bad --code");
		} else {
			return cli_err("msg bounce: unknown argument %s\n%s", argv[i],
				       bounce_usage);
		}
	}
	c.conf.code = (enum dime_msg_bounce_code)code;
	return msg_call(&c);
}

/* The origin: the message path tries every hosted org (docs/bounce.md). */
static int
msg_bounce_verify(int argc, char **argv)
{
	struct msg_call c;

	msg_call_init(&c, "bounce-verify", DIME_PL_MSG_BOUNCE_VERIFY);
	if (cli_wants_help(argc, argv, bverify_usage))
		return CLI_OK;
	if (argc > 1)
		return cli_err("msg bounce-verify: unknown argument %s\n%s", argv[1],
			       bverify_usage);
	return msg_call(&c);
}

static int
msg_dump(int argc, char **argv)
{
	struct dime_msg_dump d;
	struct dime_msg_chunk_info *ch = NULL;
	uint8_t *in = NULL;
	size_t len = 0;
	const char *why = "";
	int armored = 0, rc, e;

	if (cli_wants_help(argc, argv, dump_usage))
		return CLI_OK;
	if (argc > 1)
		return cli_err("msg dump: unknown argument %s\n%s", argv[1], dump_usage);
	/* dump reads what open reads */
	if ((rc = msg_input(&in, &len, &armored, &why, DIME_PL_MSG_OPEN, 0)) != CLI_OK)
		return rc == CLI_NO ? cli_no("msg dump: %s", why) : rc;
	e = dime_msg_dump(&d, NULL, 0, &why, in, len);
	if (e == DIME_OK && (ch = calloc(d.n_chunks ? d.n_chunks : 1, sizeof(*ch))) == NULL)
		e = DIME_E_NOMEM;
	if (e == DIME_OK)
		e = dime_msg_dump(&d, ch, d.n_chunks, &why, in, len);
	if (e == DIME_E_NOMEM) {
		rc = cli_err("msg dump: out of memory");
	} else if (e != DIME_OK) {
		rc = cli_no("msg dump: not a D/MIME message: %s", *why ? why : dime_strerror(e));
	} else {
		struct dime_msg_rekey_info ri;
		char nfp[DIME_FP_B64_LEN + 1];
		size_t nb = 0;

		printf("D/MIME message, %zu bytes%s, %zu chunks\n", len,
		       armored ? " (armored)" : "", d.n_chunks);
		if (dime_msg_rekey_info(&ri, &why, in, len) == DIME_OK && ri.rekeyed &&
		    dime_b64_encode(nfp, sizeof(nfp), &nb, ri.new_fp, DIME_FP_BYTES,
				    DIME_B64_NOPAD) == DIME_OK)
			printf("re-key record, %zu bytes, %zu keyslots for signet %s\n",
			       ri.record.len, ri.n_slots, nfp);
		if (d.tracing.len > 0 || d.msg_offset > 0)
			printf("tracing prefix, %zu bytes\n", d.tracing.len);
		printf("%10s %4s %-30s %10s %s\n", "offset", "type", "name", "payload", "keyslots");
		for (size_t i = 0; i < d.n_chunks; i++)
			printf("%10zu %4u %-30s %10zu %s\n", ch[i].offset, ch[i].type,
			       dime_msg_chunk_name(ch[i].type), ch[i].payload.len,
			       ch[i].n_slots ? dime_msg_actors_str(ch[i].actors) : "-");
		rc = CLI_OK;
	}
	free(ch);
	free(in);
	return rc;
}

int
cmd_msg(int argc, char **argv)
{
	static const struct cli_cmd cmds[] = {
	    {"wrap", "wrap a message as its author", msg_wrap},
	    {"origin-sign", "add the origin's signatures (as the origin org)", msg_origin_sign},
	    {"accept", "check a message as the destination org", msg_accept},
	    {"open", "open a message as its recipient or author", msg_open},
	    {"rekey", "re-key a message for the recipient's new signet", msg_rekey},
	    {"bounce", "build a bounce for the origin (as the destination org)", msg_bounce},
	    {"bounce-verify", "check a bounce (as the origin org)", msg_bounce_verify},
	    {"dump", "print a message's structure", msg_dump},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch("msg", cmds, argc, argv);
}

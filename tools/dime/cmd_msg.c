/* dime msg: D/MIME as the author (wrap), the origin (origin-sign), the destination (accept) and
 * the recipient or author (open), plus dump. Keys and signets come from the store; the hosted
 * identity a message is for is found by trying the store's keys on its keyslots. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dime/codec.h"
#include "dime/dir.h"
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
	"usage: dime [--store PATH] msg open --as recipient|author [--user ADDR] < in > message.eml\n"
	"\n"
	"Verifies everything the actor can check and writes the original message. On any failure\n"
	"nothing is written and the exit status is 1. --user names the hosted user whose keys to\n"
	"use; without it every hosted user's keys are tried.\n";
static const char osign_usage[] =
	"usage: dime [--store PATH] msg origin-sign [--binary] < in > out\n"
	"\n"
	"As the origin organisation (a hosted org whose key opens the message), verifies the\n"
	"author's signatures and adds the organisational signatures 248, 249 and 255.\n"
	"Output in the input's form (armored or binary) unless --binary.\n";
static const char accept_usage[] =
	"usage: dime [--store PATH] msg accept < in\n"
	"\n"
	"As the destination organisation, opens the destination chunk and checks the origin's\n"
	"signatures. Prints ACCEPT <recipient address> <recipient signet fingerprint> or\n"
	"REJECT <reason>. Exit status: 0 accept, 1 reject, 2 usage or I/O error.\n";
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
static const char dump_usage[] = "usage: dime msg dump < in\n"
				 "\n"
				 "Prints a message's structure without any key: tracing prefix, each\n"
				 "chunk's offset, type, name, payload length and keyslot actors.\n";

/* An object from a file or stdin, armored under label or binary. *armored says which. */
static int
msg_read_as(uint8_t **out, size_t *out_len, int *armored, const char *path, const char *label)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	const char *why = "";
	int rc;

	if (cli_read(&buf, &len, path, (size_t)DIME_MSG_MAX_BYTES * 2) != CLI_OK)
		return CLI_ERR;
	rc = dime_msg_unarmor(out, out_len, armored, &why, buf, len, label);
	free(buf);
	if (rc == DIME_E_NOMEM)
		return cli_err("out of memory");
	if (rc != DIME_OK)
		return cli_no("input is not an armored %s (%s)", label, why);
	return CLI_OK;
}

static int
msg_read(uint8_t **out, size_t *out_len, int *armored, const char *path)
{
	return msg_read_as(out, out_len, armored, path, DIME_MSG_ARMOR_LABEL);
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

static int
msg_write(const uint8_t *p, size_t len, int armored)
{
	return msg_write_as(p, len, armored ? DIME_MSG_ARMOR_LABEL : NULL, 0);
}

/* The message's hosted key and signets, through the store's party directory (the same lookup
 * `dime batch` uses: pipeline/include/dime/dir.h). f->only restricts the hosted identity. */
struct msg_find {
	struct dime_pl_dir *dir;
	const char *only;
	uint32_t key;
	const char *ident;
	struct dime_msg_envelope env;
	struct dime_msg_parties p;
	const char *why;
};

/* Open the store's directory. Prints the error. Returns: CLI_OK, CLI_ERR. */
static int
msg_dir(struct dime_pl_dir **d)
{
	const char *why = "";

	if (dime_pl_dir_open(d, cli.store_path, &why) != DIME_OK)
		return cli_err("cannot open the store %s: %s",
			       cli.store_path ? cli.store_path : "(default)", why);
	return CLI_OK;
}

/* Find what actor `as` needs for msg. Returns: CLI_OK, CLI_NO (not ours, or a signet is
 * missing: f->why, nothing printed), CLI_ERR (printed). */
static int
msg_find(struct msg_find *f, const uint8_t *msg, size_t len, enum dime_msg_actor as)
{
	int rc;

	f->why = "";
	if (msg_dir(&f->dir) != CLI_OK)
		return CLI_ERR;
	rc = dime_pl_dir_msg(f->dir, &f->key, &f->ident, &f->env, &f->p, &f->why, msg, len, as,
			     f->only, NULL);
	if (rc == DIME_E_NOMEM || rc == DIME_E_IO)
		return cli_err("store: %s", dime_strerror(rc));
	return rc == DIME_OK ? CLI_OK : CLI_NO;
}

static int
msg_wrap(int argc, char **argv)
{
	struct dime_pl_dir *dir = NULL;
	const struct dime_ks *ks;
	struct dime_msg_parties p;
	struct dime_msg_wrap_opts opts;
	struct dime_msg_envelope env;
	const char *from_arg = NULL, *to_arg = NULL, *why = "";
	char from[256], to[256];
	uint8_t *in = NULL, *out = NULL, *signed_out = NULL;
	size_t len = 0, out_len = 0, signed_len = 0;
	uint32_t author_key = DIME_KS_NONE, org_key = DIME_KS_NONE;
	int origin_sign = 0, binary = 0, rc = CLI_ERR, e;

	memset(&p, 0, sizeof(p));
	memset(&opts, 0, sizeof(opts));
	opts.gzip = DIME_MSG_GZIP_IF_SMALLER;
	opts.padding = DIME_MSG_PAD_REFERENCE;
	if (cli_wants_help(argc, argv, wrap_usage))
		return CLI_OK;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(o, "--origin-sign") == 0) {
			origin_sign = 1;
			continue;
		}
		if (strcmp(o, "--binary") == 0) {
			binary = 1;
			continue;
		}
		if (v == NULL)
			return cli_err("msg wrap: unknown argument %s\n%s", o, wrap_usage);
		if (strcmp(o, "--from") == 0)
			from_arg = v;
		else if (strcmp(o, "--to") == 0)
			to_arg = v;
		else if (strcmp(o, "--gzip") == 0 && strcmp(v, "never") == 0)
			opts.gzip = DIME_MSG_GZIP_NEVER;
		else if (strcmp(o, "--gzip") == 0 && strcmp(v, "always") == 0)
			opts.gzip = DIME_MSG_GZIP_ALWAYS;
		else if (strcmp(o, "--gzip") == 0 && strcmp(v, "if-smaller") == 0)
			opts.gzip = DIME_MSG_GZIP_IF_SMALLER;
		else if (strcmp(o, "--padding") == 0 && strcmp(v, "reference") == 0)
			opts.padding = DIME_MSG_PAD_REFERENCE;
		else if (strcmp(o, "--padding") == 0 && strcmp(v, "alternate") == 0)
			opts.padding = DIME_MSG_PAD_ALTERNATE;
		else
			return cli_err("msg wrap: bad argument %s %s\n%s", o, v, wrap_usage);
		i++;
	}
	if (from_arg == NULL || to_arg == NULL || cli_lower(from, sizeof(from), from_arg) != 0 ||
	    cli_lower(to, sizeof(to), to_arg) != 0 || cli_domain_of(from) == NULL ||
	    cli_domain_of(to) == NULL)
		return cli_err("msg wrap: --from and --to take addresses\n%s", wrap_usage);
	if ((rc = cli_read(&in, &len, "-", DIME_MSG_MAX_BYTES / 2)) != CLI_OK)
		return rc;
	if ((rc = msg_dir(&dir)) != CLI_OK)
		goto out;
	ks = dime_pl_dir_ks(dir);
	if (dime_pl_dir_signet(dir, &p.author, &why, from, DIME_STORE_USER_SIGNET, NULL) !=
		    DIME_OK ||
	    dime_pl_dir_signet(dir, &p.origin, &why, cli_domain_of(from), DIME_STORE_ORG_SIGNET,
			       NULL) != DIME_OK ||
	    dime_pl_dir_signet(dir, &p.destination, &why, cli_domain_of(to), DIME_STORE_ORG_SIGNET,
			       NULL) != DIME_OK ||
	    dime_pl_dir_signet(dir, &p.recipient, &why, to, DIME_STORE_USER_SIGNET, NULL) !=
		    DIME_OK) {
		rc = cli_no("msg wrap: %s", why);
		goto out;
	}
	if (dime_pl_dir_key(dir, &author_key, from, DIME_STORE_USER_KEY) != DIME_OK) {
		rc = cli_no("msg wrap: the keys of %s are not in the store", from);
		goto out;
	}
	if (origin_sign &&
	    dime_pl_dir_key(dir, &org_key, cli_domain_of(from), DIME_STORE_ORG_KEY) != DIME_OK) {
		rc = cli_no("msg wrap: --origin-sign: the keys of %s are not in the store",
			    cli_domain_of(from));
		goto out;
	}
	e = dime_msg_wrap_mail(ks, &out, &out_len, &why, &p, author_key, in, len, &opts);
	if (e != DIME_OK) {
		rc = cli_no("msg wrap: %s", why);
		goto out;
	}
	if (origin_sign) {
		e = dime_msg_origin_sign(ks, &signed_out, &signed_len, &env, &why, out, out_len,
					 org_key, DIME_KS_NONE, &p);
		if (e != DIME_OK) {
			rc = cli_no("msg wrap: origin-sign: %s", why);
			goto out;
		}
	}
	rc = origin_sign ? msg_write(signed_out, signed_len, !binary)
			 : msg_write(out, out_len, !binary);
out:
	dime_msg_free(out, out_len);
	dime_msg_free(signed_out, signed_len);
	if (in != NULL) {
		dime_wipe(in, len);
		free(in);
	}
	dime_pl_dir_close(dir);
	return rc;
}

static int
msg_open(int argc, char **argv)
{
	struct msg_find f;
	struct dime_msg_opened o;
	const char *as = NULL, *why = "";
	char user[256];
	uint8_t *in = NULL, *eml = NULL;
	size_t len = 0;
	size_t eml_len = 0;
	enum dime_msg_actor actor;
	int armored = 0, rc = CLI_ERR, e;

	memset(&f, 0, sizeof(f));
	memset(&o, 0, sizeof(o));
	if (cli_wants_help(argc, argv, open_usage))
		return CLI_OK;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--as") == 0 && i + 1 < argc) {
			as = argv[++i];
		} else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc) {
			if (cli_lower(user, sizeof(user), argv[++i]) != 0)
				return cli_err("msg open: bad --user");
			f.only = user;
		} else {
			return cli_err("msg open: unknown argument %s\n%s", argv[i], open_usage);
		}
	}
	if (as == NULL || (strcmp(as, "recipient") != 0 && strcmp(as, "author") != 0))
		return cli_err("msg open: --as recipient|author\n%s", open_usage);
	if ((rc = msg_read(&in, &len, &armored, "-")) != CLI_OK)
		return rc;
	actor = as[0] == 'r' ? DIME_ACTOR_RECIPIENT : DIME_ACTOR_AUTHOR;
	/* The envelope names every party by fingerprint: the directory fetches those versions. */
	if ((rc = msg_find(&f, in, len, actor)) != CLI_OK) {
		if (rc == CLI_NO)
			rc = cli_no("msg open: %s%s", f.why,
				    actor == DIME_ACTOR_RECIPIENT && f.key == DIME_KS_NONE
					    ? " (if the recipient's keys were rotated and the old "
					      "ones removed, the message needed `dime msg rekey` "
					      "first)"
					    : "");
		goto out;
	}
	e = dime_msg_open(dime_pl_dir_ks(f.dir), &o, &why, in, len, actor, f.key, &f.p);
	if (e != DIME_OK) {
		rc = cli_no("msg open: %s", why);
		goto out;
	}
	if ((e = dime_msg_opened_mail(&eml, &eml_len, &o)) != DIME_OK) {
		rc = cli_no("msg open: the opened content does not rebuild a message: %s",
			    dime_strerror(e));
		goto out;
	}
	/* All or nothing: the message is written only once everything has passed. */
	rc = fwrite(eml, 1, eml_len, stdout) == eml_len ? CLI_OK : cli_err("stdout: write failed");
out:
	if (eml != NULL) {
		dime_wipe(eml, eml_len);
		free(eml);
	}
	dime_msg_opened_free(&o);
	free(in);
	dime_pl_dir_close(f.dir);
	return rc;
}

static int
msg_rekey(int argc, char **argv)
{
	struct msg_find f;
	struct dime_signet *to = NULL;
	const struct dime_signet *stored = NULL;
	const char *to_file = NULL, *why = "";
	char user[256];
	uint8_t *in = NULL, *out = NULL, fp[DIME_FP_BYTES];
	size_t len = 0, out_len = 0;
	int armored = 0, binary = 0, rc = CLI_ERR, e;

	memset(&f, 0, sizeof(f));
	if (cli_wants_help(argc, argv, rekey_usage))
		return CLI_OK;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--binary") == 0) {
			binary = 1;
		} else if (strcmp(argv[i], "--to-signet") == 0 && i + 1 < argc) {
			to_file = argv[++i];
		} else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc) {
			if (cli_lower(user, sizeof(user), argv[++i]) != 0)
				return cli_err("msg rekey: bad --user");
			f.only = user;
		} else {
			return cli_err("msg rekey: unknown argument %s\n%s", argv[i], rekey_usage);
		}
	}
	if (to_file == NULL)
		return cli_err("msg rekey: --to-signet FILE is required\n%s", rekey_usage);
	if ((rc = cli_load_signet(&to, to_file)) != CLI_OK)
		return rc;
	if ((rc = msg_read(&in, &len, &armored, "-")) != CLI_OK)
		goto out;
	if ((rc = msg_find(&f, in, len, DIME_ACTOR_RECIPIENT)) != CLI_OK) {
		if (rc == CLI_NO)
			rc = cli_no("msg rekey: %s", f.why);
		goto out;
	}
	/* Only a signet the store accepted (import and user create check it against the org) is
	 * worth re-keying to, and then msg open finds it. */
	if (dime_signet_fingerprint(fp, to, DIME_FP_CRYPTO) != DIME_OK ||
	    dime_pl_dir_signet(f.dir, &stored, &why, f.env.recipient, DIME_STORE_USER_SIGNET, fp) !=
		    DIME_OK) {
		rc = cli_no("msg rekey: %s is not a stored signet of %s (import it first)", to_file,
			    f.env.recipient);
		goto out;
	}
	e = dime_msg_rekey(dime_pl_dir_ks(f.dir), &out, &out_len, &why, in, len, f.key, stored,
			   &f.p);
	if (e != DIME_OK) {
		rc = cli_no("msg rekey: %s", why);
		goto out;
	}
	rc = msg_write(out, out_len, !binary);
out:
	dime_msg_free(out, out_len);
	free(in);
	dime_signet_free(to);
	dime_pl_dir_close(f.dir);
	return rc;
}

static int
msg_origin_sign(int argc, char **argv)
{
	struct msg_find f;
	struct dime_msg_envelope env;
	uint8_t *in = NULL, *out = NULL;
	size_t len = 0;
	size_t out_len = 0;
	const char *why = "";
	int armored = 0, binary = 0, rc = CLI_ERR, e;

	memset(&f, 0, sizeof(f));
	if (cli_wants_help(argc, argv, osign_usage))
		return CLI_OK;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--binary") == 0)
			binary = 1;
		else
			return cli_err("msg origin-sign: unknown argument %s\n%s", argv[i], osign_usage);
	}
	if ((rc = msg_read(&in, &len, &armored, "-")) != CLI_OK)
		return rc;
	if ((rc = msg_find(&f, in, len, DIME_ACTOR_ORIGIN)) != CLI_OK) {
		if (rc == CLI_NO)
			rc = cli_no("msg origin-sign: %s", f.why);
		goto out;
	}
	e = dime_msg_origin_sign(dime_pl_dir_ks(f.dir), &out, &out_len, &env, &why, in, len, f.key,
				 DIME_KS_NONE, &f.p);
	if (e != DIME_OK) {
		rc = cli_no("msg origin-sign: %s", why);
		goto out;
	}
	rc = msg_write(out, out_len, armored && !binary);
out:
	dime_msg_free(out, out_len);
	free(in);
	dime_pl_dir_close(f.dir);
	return rc;
}

static int
msg_accept(int argc, char **argv)
{
	struct msg_find f;
	struct dime_msg_envelope env;
	uint8_t *in = NULL;
	size_t len = 0;
	char fp[DIME_FP_B64_LEN + 1];
	size_t n = 0;
	const char *why = "";
	int armored = 0, rc = CLI_ERR;

	memset(&f, 0, sizeof(f));
	if (cli_wants_help(argc, argv, accept_usage))
		return CLI_OK;
	if (argc > 1)
		return cli_err("msg accept: unknown argument %s\n%s", argv[1], accept_usage);
	if ((rc = msg_read(&in, &len, &armored, "-")) != CLI_OK) {
		if (rc == CLI_NO)
			printf("REJECT not a D/MIME message\n");
		return rc;
	}
	if ((rc = msg_find(&f, in, len, DIME_ACTOR_DESTINATION)) != CLI_OK) {
		if (rc == CLI_NO)
			printf("REJECT %s\n", f.why);
		goto out;
	}
	if (dime_msg_accept(dime_pl_dir_ks(f.dir), &env, &why, in, len, f.key, &f.p) != DIME_OK) {
		printf("REJECT %s\n", why);
		rc = CLI_NO;
		goto out;
	}
	if (dime_b64_encode(fp, sizeof(fp), &n, env.recipient_fp, DIME_FP_BYTES, DIME_B64_NOPAD) !=
	    DIME_OK)
		goto out;
	printf("ACCEPT %s %s\n", env.recipient, fp);
	rc = CLI_OK;
out:
	free(in);
	dime_pl_dir_close(f.dir);
	return rc;
}


static int
msg_bounce(int argc, char **argv)
{
	struct msg_find f;
	uint8_t *in = NULL, *out = NULL;
	size_t len = 0;
	size_t out_len = 0;
	const char *why = "", *reason = "";
	long code = DIME_BOUNCE_UNKNOWN_RECIPIENT;
	int armored = 0, binary = 0, display = 0, rc = CLI_ERR;

	memset(&f, 0, sizeof(f));
	if (cli_wants_help(argc, argv, bounce_usage))
		return CLI_OK;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--binary") == 0) {
			binary = 1;
		} else if (strcmp(argv[i], "--display") == 0) {
			display = 1;
		} else if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc) {
			reason = argv[++i];
		} else if (strcmp(argv[i], "--code") == 0 && i + 1 < argc) {
			char *end;

			code = strtol(argv[++i], &end, 10);
			if (*end != 0 || code < 1 || code > 255)
				return cli_err("msg bounce: bad --code");
		} else {
			return cli_err("msg bounce: unknown argument %s\n%s", argv[i], bounce_usage);
		}
	}
	if ((rc = msg_read(&in, &len, &armored, "-")) != CLI_OK)
		return rc;
	if ((rc = msg_find(&f, in, len, DIME_ACTOR_DESTINATION)) != CLI_OK) {
		if (rc == CLI_NO)
			rc = cli_no("msg bounce: %s", f.why);
		goto out;
	}
	if (dime_msg_bounce(dime_pl_dir_ks(f.dir), &out, &out_len, &why, in, len, f.key, &f.p,
			    (enum dime_msg_bounce_code)code, reason, display) != DIME_OK) {
		rc = cli_no("msg bounce: %s", why);
		goto out;
	}
	rc = msg_write_as(out, out_len, binary ? NULL : DIME_BOUNCE_ARMOR_LABEL, 1);
out:
	dime_msg_free(out, out_len);
	free(in);
	dime_pl_dir_close(f.dir);
	return rc;
}

/* The origin: bounces name no org in the clear, so each hosted org's key and latest signet is
 * tried until one verifies the bounce. */
static int
msg_bounce_verify(int argc, char **argv)
{
	struct dime_pl_dir *dir = NULL;
	struct dime_msg_bounce_info info;
	uint32_t ids[64];
	const char *idents[64], *why = "no hosted organisation";
	uint8_t *in = NULL;
	size_t len = 0, n_orgs;
	int armored = 0, rc;

	if (cli_wants_help(argc, argv, bverify_usage))
		return CLI_OK;
	if (argc > 1)
		return cli_err("msg bounce-verify: unknown argument %s\n%s", argv[1], bverify_usage);
	if ((rc = msg_read_as(&in, &len, &armored, "-", DIME_BOUNCE_ARMOR_LABEL)) != CLI_OK) {
		if (rc == CLI_NO)
			printf("INVALID not an armored bounce\n");
		return rc;
	}
	if ((rc = msg_dir(&dir)) != CLI_OK)
		goto out;
	n_orgs = dime_pl_dir_keys(dir, ids, idents, 64, DIME_STORE_ORG_KEY);
	rc = CLI_NO;
	for (size_t i = 0; i < n_orgs && i < 64 && rc != CLI_OK; i++) {
		const struct dime_signet *org = NULL;
		const char *swhy = "";

		if (dime_pl_dir_signet(dir, &org, &swhy, idents[i], DIME_STORE_ORG_SIGNET, NULL) ==
			    DIME_OK &&
		    dime_msg_bounce_verify(dime_pl_dir_ks(dir), &info, &why, in, len, ids[i], org) ==
			    DIME_OK)
			rc = CLI_OK;
	}
	if (rc == CLI_OK)
		printf("BOUNCE %s %s %u %s\n", info.env.author, info.env.destination,
		       (unsigned)info.code, info.reason);
	else
		printf("INVALID %s\n", why);
out:
	free(in);
	dime_pl_dir_close(dir);
	return rc;
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
	if ((rc = msg_read(&in, &len, &armored, "-")) != CLI_OK)
		return rc;
	e = dime_msg_dump(&d, NULL, 0, &why, in, len);
	if (e == DIME_OK && (ch = calloc(d.n_chunks ? d.n_chunks : 1, sizeof(*ch))) == NULL)
		e = DIME_E_NOMEM;
	if (e == DIME_OK)
		e = dime_msg_dump(&d, ch, d.n_chunks, &why, in, len);
	if (e != DIME_OK) {
		rc = cli_no("msg dump: %s%s%s", dime_strerror(e), *why ? ": " : "", why);
	} else {
		struct dime_msg_rekey_info ri;
		char nfp[DIME_FP_B64_LEN + 1];
		size_t nb = 0;

		printf("D/MIME message, %zu bytes%s, %zu chunks\n", len, armored ? " (armored)" : "",
		       d.n_chunks);
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

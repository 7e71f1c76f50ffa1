/* dime msg: D/MIME as the author (wrap), the origin (origin-sign), the destination (accept) and
 * the recipient or author (open), plus dump. Keys and signets come from the store; the hosted
 * identity a message is for is found by trying the store's keys on its keyslots. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dime/codec.h"
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

/* The stored signet of ident whose crypto fingerprint is fp (any version); fp NULL: latest. */
static int
msg_signet(struct dime_signet **out, struct dime_store *st, const char *ident,
	   enum dime_store_kind kind, const uint8_t *fp)
{
	uint8_t got[DIME_FP_BYTES];
	int rc;

	*out = NULL;
	for (uint32_t v = 0;; v++) {
		/* version 0 is the latest; then walk 1, 2, ... until none is left */
		rc = cli_store_signet(out, st, ident, kind, v);
		if (rc != CLI_OK)
			return rc == CLI_NO ? cli_no("no signet of %s in the store%s", ident,
						     fp ? " with the fingerprint the message names"
							: "")
					    : rc;
		if (fp == NULL || (dime_signet_fingerprint(got, *out, DIME_FP_CRYPTO) == DIME_OK &&
				   memcmp(got, fp, DIME_FP_BYTES) == 0))
			return CLI_OK;
		dime_signet_free(*out);
		*out = NULL;
	}
}

/* Try each hosted key of kind until one opens the message's envelope as actor `as`. */
struct msg_find {
	struct dime_store *st;
	struct dime_ks *ks;
	const uint8_t *msg;
	size_t len;
	enum dime_msg_actor as;
	const char *only; /* restrict to this identity, or NULL */
	uint32_t key;
	char ident[256];
	struct dime_msg_envelope env;
};

/* Every stored version of a key is tried: a message may be addressed to a signet that has
 * since been rotated. */
static int
msg_find_row(const struct dime_store_row *row, void *arg)
{
	struct msg_find *f = arg;
	const char *why = "";
	uint32_t id = DIME_KS_NONE;
	uint8_t *blob = NULL;
	size_t len = 0;
	int rc;

	if (!row->hosted || (f->only != NULL && strcmp(f->only, row->ident) != 0))
		return 0;
	if (dime_store_get_row(f->st, &blob, &len, row->rowid) != DIME_OK)
		return 0;
	rc = dime_ks_load(f->ks, &id, blob, len);
	dime_wipe(blob, len);
	free(blob);
	if (rc != DIME_OK ||
	    dime_msg_envelope_peek(f->ks, &f->env, &why, f->msg, f->len, f->as, id) != DIME_OK)
		return 0;
	f->key = id;
	snprintf(f->ident, sizeof(f->ident), "%s", row->ident);
	return 1;
}

/* Open the store and find the hosted key of kind that opens msg as actor `as`; f->st and f->ks
 * are the caller's to release. Returns: CLI_OK, CLI_NO (no hosted identity opens it), CLI_ERR. */
static int
msg_find(struct msg_find *f, const uint8_t *msg, size_t len, enum dime_msg_actor as,
	 enum dime_store_kind kind)
{
	f->msg = msg;
	f->len = len;
	f->as = as;
	if (cli_store(&f->st) != CLI_OK)
		return CLI_ERR;
	if (dime_ks_new(&f->ks) != DIME_OK)
		return cli_err("out of memory");
	if (dime_store_list(f->st, f->only, kind, msg_find_row, f) != DIME_OK)
		return cli_err("store: cannot list keys");
	return f->key != DIME_KS_NONE ? CLI_OK : CLI_NO;
}

/* The four signets the envelope f->env names, each the version with the fingerprint it names.
 * For the recipient of a re-keyed message, s[3] is the recipient's signet the record is for
 * (dime_msg_open requires it), and the version the envelope names must be stored too: both
 * are versions of the one address in our own store. The caller frees s[0..3]. */
static int
msg_parties(struct dime_signet *s[4], const struct msg_find *f, enum dime_msg_actor as)
{
	struct dime_msg_rekey_info ri;
	struct dime_signet *named = NULL;
	const char *why = "";
	int rc;

	if ((rc = msg_signet(&s[0], f->st, f->env.author, DIME_STORE_USER_SIGNET,
			     f->env.author_fp)) != CLI_OK ||
	    (rc = msg_signet(&s[1], f->st, f->env.origin, DIME_STORE_ORG_SIGNET,
			     f->env.origin_fp)) != CLI_OK ||
	    (rc = msg_signet(&s[2], f->st, f->env.destination, DIME_STORE_ORG_SIGNET,
			     f->env.destination_fp)) != CLI_OK)
		return rc;
	if (dime_msg_rekey_info(&ri, &why, f->msg, f->len) != DIME_OK)
		return cli_no("%s", why);
	if (!ri.rekeyed || as != DIME_ACTOR_RECIPIENT)
		return msg_signet(&s[3], f->st, f->env.recipient, DIME_STORE_USER_SIGNET,
				  f->env.recipient_fp);
	if ((rc = msg_signet(&named, f->st, f->env.recipient, DIME_STORE_USER_SIGNET,
			     f->env.recipient_fp)) != CLI_OK)
		return rc;
	dime_signet_free(named);
	rc = msg_signet(&s[3], f->st, f->env.recipient, DIME_STORE_USER_SIGNET, ri.new_fp);
	return rc == CLI_NO ? cli_no("the re-key record is for a signet that is not a stored "
				     "version of %s",
				     f->env.recipient)
			    : rc;
}

static int
msg_wrap(int argc, char **argv)
{
	struct dime_store *st = NULL;
	struct dime_ks *ks = NULL;
	struct dime_signet *s[4] = {NULL, NULL, NULL, NULL};
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
	rc = CLI_ERR;
	if (cli_store(&st) != CLI_OK || dime_ks_new(&ks) != DIME_OK)
		goto out;
	if ((rc = msg_signet(&s[0], st, from, DIME_STORE_USER_SIGNET, NULL)) != CLI_OK ||
	    (rc = msg_signet(&s[1], st, cli_domain_of(from), DIME_STORE_ORG_SIGNET, NULL)) != CLI_OK ||
	    (rc = msg_signet(&s[2], st, cli_domain_of(to), DIME_STORE_ORG_SIGNET, NULL)) != CLI_OK ||
	    (rc = msg_signet(&s[3], st, to, DIME_STORE_USER_SIGNET, NULL)) != CLI_OK)
		goto out;
	if ((rc = cli_store_key(&author_key, ks, st, from, DIME_STORE_USER_KEY)) != CLI_OK) {
		if (rc == CLI_NO)
			rc = cli_no("msg wrap: the keys of %s are not in the store", from);
		goto out;
	}
	if (origin_sign &&
	    (rc = cli_store_key(&org_key, ks, st, cli_domain_of(from), DIME_STORE_ORG_KEY)) !=
		    CLI_OK) {
		if (rc == CLI_NO)
			rc = cli_no("msg wrap: --origin-sign: the keys of %s are not in the store",
				    cli_domain_of(from));
		goto out;
	}
	p.author = s[0];
	p.origin = s[1];
	p.destination = s[2];
	p.recipient = s[3];
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
	for (int i = 0; i < 4; i++)
		dime_signet_free(s[i]);
	dime_ks_free(ks);
	dime_store_close(st);
	return rc;
}

static int
msg_open(int argc, char **argv)
{
	struct msg_find f;
	struct dime_signet *s[4] = {NULL, NULL, NULL, NULL};
	struct dime_msg_parties p;
	struct dime_msg_opened o;
	const char *as = NULL, *why = "";
	char user[256];
	uint8_t *in = NULL, *eml = NULL;
	size_t len = 0;
	size_t eml_len = 0;
	int armored = 0, rc = CLI_ERR, e;

	memset(&f, 0, sizeof(f));
	memset(&p, 0, sizeof(p));
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
	if ((rc = msg_find(&f, in, len,
			   as[0] == 'r' ? DIME_ACTOR_RECIPIENT : DIME_ACTOR_AUTHOR,
			   DIME_STORE_USER_KEY)) != CLI_OK) {
		if (rc == CLI_NO)
			rc = cli_no("msg open: no hosted user's keys open this message as the %s%s", as,
				    as[0] == 'r' ? " (if the recipient's keys were rotated and the "
						   "old ones removed, the message needed `dime msg "
						   "rekey` first)"
						 : "");
		goto out;
	}
	/* The envelope names every party by fingerprint: fetch exactly those versions. */
	if ((rc = msg_parties(s, &f, f.as)) != CLI_OK)
		goto out;
	p.author = s[0];
	p.origin = s[1];
	p.destination = s[2];
	p.recipient = s[3];
	e = dime_msg_open(f.ks, &o, &why, in, f.len, f.as, f.key, &p);
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
	for (int i = 0; i < 4; i++)
		dime_signet_free(s[i]);
	dime_ks_free(f.ks);
	dime_store_close(f.st);
	return rc;
}

static int
msg_rekey(int argc, char **argv)
{
	struct msg_find f;
	struct dime_signet *s[4] = {NULL, NULL, NULL, NULL}, *to = NULL, *stored = NULL;
	struct dime_msg_parties p;
	const char *to_file = NULL, *why = "";
	char user[256];
	uint8_t *in = NULL, *out = NULL, fp[DIME_FP_BYTES];
	size_t len = 0, out_len = 0;
	int armored = 0, binary = 0, rc = CLI_ERR, e;

	memset(&f, 0, sizeof(f));
	memset(&p, 0, sizeof(p));
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
	if ((rc = msg_find(&f, in, len, DIME_ACTOR_RECIPIENT, DIME_STORE_USER_KEY)) != CLI_OK) {
		if (rc == CLI_NO)
			rc = cli_no("msg rekey: no hosted user's keys open this message as the "
				    "recipient");
		goto out;
	}
	if ((rc = msg_parties(s, &f, DIME_ACTOR_RECIPIENT)) != CLI_OK)
		goto out;
	/* Only a signet the store accepted (import and user create check it against the org) is
	 * worth re-keying to, and then msg open finds it. */
	if (dime_signet_fingerprint(fp, to, DIME_FP_CRYPTO) != DIME_OK ||
	    msg_signet(&stored, f.st, f.env.recipient, DIME_STORE_USER_SIGNET, fp) != CLI_OK) {
		rc = cli_no("msg rekey: %s is not a stored signet of %s (import it first)", to_file,
			    f.env.recipient);
		goto out;
	}
	p.author = s[0];
	p.origin = s[1];
	p.destination = s[2];
	p.recipient = s[3];
	e = dime_msg_rekey(f.ks, &out, &out_len, &why, in, f.len, f.key, stored, &p);
	if (e != DIME_OK) {
		rc = cli_no("msg rekey: %s", why);
		goto out;
	}
	rc = msg_write(out, out_len, !binary);
out:
	dime_msg_free(out, out_len);
	free(in);
	for (int i = 0; i < 4; i++)
		dime_signet_free(s[i]);
	dime_signet_free(to);
	dime_signet_free(stored);
	dime_ks_free(f.ks);
	dime_store_close(f.st);
	return rc;
}

static int
msg_origin_sign(int argc, char **argv)
{
	struct msg_find f;
	struct dime_signet *author = NULL, *origin = NULL;
	struct dime_msg_parties p;
	struct dime_msg_envelope env;
	uint8_t *in = NULL, *out = NULL;
	size_t len = 0;
	size_t out_len = 0;
	const char *why = "";
	int armored = 0, binary = 0, rc = CLI_ERR, e;

	memset(&f, 0, sizeof(f));
	memset(&p, 0, sizeof(p));
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
	if ((rc = msg_find(&f, in, len, DIME_ACTOR_ORIGIN, DIME_STORE_ORG_KEY)) != CLI_OK) {
		if (rc == CLI_NO)
			rc = cli_no("msg origin-sign: no hosted organisation can open this message");
		goto out;
	}
	if ((rc = msg_signet(&author, f.st, f.env.author, DIME_STORE_USER_SIGNET,
			     f.env.author_fp)) != CLI_OK ||
	    (rc = msg_signet(&origin, f.st, f.ident, DIME_STORE_ORG_SIGNET, NULL)) != CLI_OK)
		goto out;
	p.author = author;
	p.origin = origin;
	e = dime_msg_origin_sign(f.ks, &out, &out_len, &env, &why, in, f.len, f.key, DIME_KS_NONE,
				 &p);
	if (e != DIME_OK) {
		rc = cli_no("msg origin-sign: %s", why);
		goto out;
	}
	rc = msg_write(out, out_len, armored && !binary);
out:
	dime_msg_free(out, out_len);
	free(in);
	dime_signet_free(author);
	dime_signet_free(origin);
	dime_ks_free(f.ks);
	dime_store_close(f.st);
	return rc;
}

static int
msg_accept(int argc, char **argv)
{
	struct msg_find f;
	struct dime_signet *origin = NULL;
	struct dime_msg_parties p;
	struct dime_msg_envelope env;
	uint8_t *in = NULL;
	size_t len = 0;
	char fp[DIME_FP_B64_LEN + 1];
	size_t n = 0;
	const char *why = "";
	int armored = 0, rc = CLI_ERR;

	memset(&f, 0, sizeof(f));
	memset(&p, 0, sizeof(p));
	if (cli_wants_help(argc, argv, accept_usage))
		return CLI_OK;
	if (argc > 1)
		return cli_err("msg accept: unknown argument %s\n%s", argv[1], accept_usage);
	if ((rc = msg_read(&in, &len, &armored, "-")) != CLI_OK) {
		if (rc == CLI_NO)
			printf("REJECT not a D/MIME message\n");
		return rc;
	}
	if ((rc = msg_find(&f, in, len, DIME_ACTOR_DESTINATION, DIME_STORE_ORG_KEY)) != CLI_OK) {
		if (rc == CLI_NO) {
			printf("REJECT no hosted organisation is the destination of this message\n");
			rc = CLI_NO;
		}
		goto out;
	}
	if ((rc = msg_signet(&origin, f.st, f.env.origin, DIME_STORE_ORG_SIGNET, f.env.origin_fp)) !=
	    CLI_OK) {
		if (rc == CLI_NO)
			printf("REJECT the origin's signet (%s) is not in the store\n", f.env.origin);
		goto out;
	}
	p.origin = origin;
	if (dime_msg_accept(f.ks, &env, &why, in, f.len, f.key, &p) != DIME_OK) {
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
	dime_signet_free(origin);
	dime_ks_free(f.ks);
	dime_store_close(f.st);
	return rc;
}


static int
msg_bounce(int argc, char **argv)
{
	struct msg_find f;
	struct dime_signet *origin = NULL;
	struct dime_msg_parties p;
	uint8_t *in = NULL, *out = NULL;
	size_t len = 0;
	size_t out_len = 0;
	const char *why = "", *reason = "";
	long code = DIME_BOUNCE_UNKNOWN_RECIPIENT;
	int armored = 0, binary = 0, display = 0, rc = CLI_ERR;

	memset(&f, 0, sizeof(f));
	memset(&p, 0, sizeof(p));
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
	if ((rc = msg_find(&f, in, len, DIME_ACTOR_DESTINATION, DIME_STORE_ORG_KEY)) != CLI_OK) {
		if (rc == CLI_NO)
			rc = cli_no("msg bounce: no hosted organisation is the destination");
		goto out;
	}
	if ((rc = msg_signet(&origin, f.st, f.env.origin, DIME_STORE_ORG_SIGNET, f.env.origin_fp)) !=
	    CLI_OK)
		goto out;
	p.origin = origin;
	if (dime_msg_bounce(f.ks, &out, &out_len, &why, in, f.len, f.key, &p,
			    (enum dime_msg_bounce_code)code, reason, display) != DIME_OK) {
		rc = cli_no("msg bounce: %s", why);
		goto out;
	}
	rc = msg_write_as(out, out_len, binary ? NULL : DIME_BOUNCE_ARMOR_LABEL, 1);
out:
	dime_msg_free(out, out_len);
	free(in);
	dime_signet_free(origin);
	dime_ks_free(f.ks);
	dime_store_close(f.st);
	return rc;
}

/* The origin: try each hosted org's key and signet until one verifies the bounce. */
struct msg_bverify {
	struct dime_store *st;
	struct dime_ks *ks;
	const uint8_t *in;
	size_t len;
	struct dime_msg_bounce_info info;
	const char *why;
	int ok;
};

static int
msg_bverify_row(const struct dime_store_row *row, void *arg)
{
	struct msg_bverify *b = arg;
	struct dime_signet *org = NULL;
	uint32_t id = DIME_KS_NONE;
	uint8_t *blob = NULL;
	size_t n = 0;
	int rc;

	if (!row->hosted || dime_store_get_row(b->st, &blob, &n, row->rowid) != DIME_OK)
		return 0;
	rc = dime_ks_load(b->ks, &id, blob, n);
	dime_wipe(blob, n);
	free(blob);
	if (rc != DIME_OK || cli_store_signet(&org, b->st, row->ident, DIME_STORE_ORG_SIGNET, 0) !=
				     CLI_OK)
		return 0;
	rc = dime_msg_bounce_verify(b->ks, &b->info, &b->why, b->in, b->len, id, org);
	dime_signet_free(org);
	b->ok = rc == DIME_OK;
	return b->ok;
}

static int
msg_bounce_verify(int argc, char **argv)
{
	struct msg_bverify b;
	uint8_t *bin = NULL;
	size_t n = 0;
	int armored = 0, rc = CLI_ERR;

	memset(&b, 0, sizeof(b));
	b.why = "no hosted organisation";
	if (cli_wants_help(argc, argv, bverify_usage))
		return CLI_OK;
	if (argc > 1)
		return cli_err("msg bounce-verify: unknown argument %s\n%s", argv[1], bverify_usage);
	if ((rc = msg_read_as(&bin, &n, &armored, "-", DIME_BOUNCE_ARMOR_LABEL)) != CLI_OK) {
		if (rc == CLI_NO)
			printf("INVALID not an armored bounce\n");
		return rc;
	}
	b.in = bin;
	b.len = n;
	rc = CLI_ERR;
	if (cli_store(&b.st) != CLI_OK || dime_ks_new(&b.ks) != DIME_OK)
		goto out;
	if (dime_store_list(b.st, NULL, DIME_STORE_ORG_KEY, msg_bverify_row, &b) != DIME_OK) {
		rc = cli_err("store: cannot list keys");
		goto out;
	}
	if (b.ok) {
		printf("BOUNCE %s %s %u %s\n", b.info.env.author, b.info.env.destination,
		       (unsigned)b.info.code, b.info.reason);
		rc = CLI_OK;
	} else {
		printf("INVALID %s\n", b.why);
		rc = CLI_NO;
	}
out:
	free(bin);
	dime_ks_free(b.ks);
	dime_store_close(b.st);
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

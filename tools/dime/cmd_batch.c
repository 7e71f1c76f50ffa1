/* dime batch: one operation of `dime msg` over a directory, a Maildir or an mbox, through the
 * pipeline's worker pool (pipeline/include/dime/batch.h). */

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "dime/batch.h"
#include "dime/source.h"

static const char batch_usage[] =
    "usage: dime [--store PATH] batch OP --in PATH --out DIR [--workers N] [--json FILE]\n"
    "                                [--batch N] [--io auto|uring|io-thread|plain]\n"
    "                                [--sync|--no-sync] [--redo] [--follow-symlinks]\n"
    "                                [--key-process]\n"
    "                                [OP options]\n"
    "\n"
    "OP is wrap, origin-sign, accept, open, rekey or bounce-verify, with the options of\n"
    "`dime msg OP`:\n"
    "  wrap           --from ADDR --to ADDR [--origin-sign] [--binary]\n"
    "                 [--gzip never|always|if-smaller] [--padding reference|alternate]\n"
    "  origin-sign    [--binary]\n"
    "  open           --as recipient|author [--user ADDR]\n"
    "  rekey          --to-signet FILE [--user ADDR] [--binary]\n"
    "--in takes a directory of files, a Maildir (cur/ and new/) or an mbox file (mboxrd).\n"
    "Each input NAME gives --out/NAME.dime (wrap, origin-sign, rekey), NAME.eml (open) or\n"
    "NAME.txt (accept, bounce-verify: the verdict line), written under a temporary name and\n"
    "renamed, so an interrupted batch leaves only complete files. A rerun skips inputs whose\n"
    "output exists and is complete (--redo rewrites them). --sync (the default for open,\n"
    "whose outputs are plaintext) fsyncs each output before renaming it. SIGINT/SIGTERM stop\n"
    "taking work; in-flight messages finish, queued ones are reported as not started.\n"
    "--out is created when missing (mode 0700) and may not be --in or inside it. Symbolic\n"
    "links in --in that lead outside it are refused unless --follow-symlinks.\n"
    "--workers: default the online CPUs. --batch: messages per batched engine call (default\n"
    "32; 1 turns batching off). --json FILE: the summary and every failure as JSON.\n"
    "--key-process: the private keys stay in a separate, hardened process for the run\n"
    "(docs/keyproc.md); this one opens the store without its secrets. Same outputs.\n"
    "Exit status: 0 all done, 1 some messages failed or the batch was stopped, 2 usage or\n"
    "setup error.\n";

/* ---- progress, failures, JSON ---- */

struct batch_ui {
	int tty;
	uint64_t total, done, ok, failed, skipped, not_started, bytes;
	struct timespec t0, last;
	json_t *failures;
	uint64_t json_lost; /* failures the JSON could not hold (out of memory) */
};

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when the bytes there are not one
 * (stray continuation, overlong form, surrogate, above U+10FFFF, cut short). */
static size_t
batch_utf8_len(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t k;
	unsigned long cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		k = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		k = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		k = 4, cp = c & 0x07;
	else
		return 0;
	if (k > n)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3fu);
	}
	if ((k == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (k == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return k;
}

/* A JSON string for a file name: valid UTF-8 as is; each byte that is not part of valid
 * UTF-8 becomes the four characters \xHH, and a backslash becomes \\ , so every name is
 * listed (jansson refuses invalid UTF-8) and distinct names stay distinct. */
static json_t *
batch_json_name(const char *name)
{
	const unsigned char *p = (const unsigned char *)name;
	size_t n = strlen(name), o = 0;
	char *buf = malloc(4 * n + 1);
	json_t *j;

	if (buf == NULL)
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t k = batch_utf8_len(p + i, n - i);

		if (k == 0) {
			o += (size_t)sprintf(buf + o, "\\x%02X", p[i]);
			i++;
		} else if (p[i] == '\\') {
			buf[o++] = '\\';
			buf[o++] = '\\';
			i++;
		} else {
			memcpy(buf + o, p + i, k);
			o += k;
			i += k;
		}
	}
	j = json_stringn(buf, o);
	free(buf);
	return j;
}

static json_t *
batch_json_failure(const struct dime_batch_result *r)
{
	json_t *f = json_object(), *name = batch_json_name(r->name);
	json_t *why = batch_json_name(r->why); /* names appear in some reasons too */

	if (f == NULL || name == NULL || why == NULL || json_object_set_new(f, "name", name) != 0) {
		json_decref(name);
		json_decref(why);
		json_decref(f);
		return NULL;
	}
	if (json_object_set_new(f, "why", why) != 0 ||
	    json_object_set_new(f, "error", json_string(dime_strerror(r->rc))) != 0 ||
	    (r->sys_errno != 0 &&
	     json_object_set_new(f, "errno", json_integer(r->sys_errno)) != 0)) {
		json_decref(f);
		return NULL;
	}
	return f;
}

static double
batch_elapsed(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void
batch_progress(struct batch_ui *u, int final)
{
	struct timespec now;
	double t, rate;
	char eta[32] = "?";
	int width = 30, fill = 0;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!final && batch_elapsed(&u->last, &now) < 0.2)
		return;
	u->last = now;
	t = batch_elapsed(&u->t0, &now);
	rate = t > 0 ? (double)u->done / t : 0;
	if (u->total > 0) {
		uint64_t d = u->done > u->total ? u->total : u->done;

		fill = (int)((double)width * (double)d / (double)u->total);
		if (rate > 0)
			snprintf(eta, sizeof(eta), "%.0fs", (double)(u->total - d) / rate);
	}
	fprintf(stderr, "\r[%.*s%*s] %llu", fill, "##############################", width - fill,
		"", (unsigned long long)u->done);
	if (u->total > 0)
		fprintf(stderr, "/%llu", (unsigned long long)u->total);
	fprintf(stderr, "  %.0f msg/s  ETA %s  (%llu failed)%s", rate, eta,
		(unsigned long long)u->failed, final ? "\n" : "  ");
}

static void
batch_on_result(void *ctx, const struct dime_batch_result *r)
{
	struct batch_ui *u = ctx;

	u->done++;
	if (r->ok == 1) {
		u->ok++;
		u->bytes += r->in_bytes;
	} else if (r->ok == -1) {
		u->skipped++;
	} else if (r->ok == -2) {
		u->not_started++;
	} else {
		u->failed++;
		/* every failure is named, on a line of its own, whatever the progress shows */
		if (u->tty)
			fprintf(stderr, "\r%*s\r", 78, "");
		fprintf(stderr, "dime: batch: %s: %s\n", r->name, r->why);
		if (u->failures != NULL) {
			json_t *f = batch_json_failure(r);

			if (f == NULL || json_array_append_new(u->failures, f) != 0)
				u->json_lost++;
		}
	}
	if (u->tty)
		batch_progress(u, 0);
}

static int
batch_write_json(FILE *fp, const char *path, const char *op, const struct dime_batch_summary *s,
		 struct batch_ui *u)
{
	double rate = s->seconds > 0 ? (double)s->ok / s->seconds : 0;
	double mbs = s->seconds > 0 ? (double)s->in_bytes / 1e6 / s->seconds : 0;
	json_t *j =
	    json_pack("{s:s, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:I, s:I, s:I, s:s, s:b, "
		      "s:I, s:I, s:O}",
		      "op", op, "ok", (json_int_t)s->ok, "failed", (json_int_t)s->failed, "skipped",
		      (json_int_t)s->skipped, "not_started", (json_int_t)s->not_started, "seconds",
		      s->seconds, "msg_per_s", rate, "mb_per_s", mbs, "in_bytes",
		      (json_int_t)s->in_bytes, "out_bytes", (json_int_t)s->out_bytes, "workers",
		      (json_int_t)s->workers, "io", s->io ? s->io : "", "stopped", s->stopped,
		      "engine_batches", (json_int_t)s->engine_batches, "engine_items",
		      (json_int_t)s->engine_items, "failures", u->failures);
	int rc;

	if (j == NULL)
		return cli_err("batch: cannot build the JSON summary");
	if (u->json_lost > 0 && json_object_set_new(j, "failures_not_listed",
						    json_integer((json_int_t)u->json_lost)) != 0) {
		json_decref(j);
		return cli_err("batch: cannot build the JSON summary");
	}
	/* the file was opened (truncated) before the run, so a bad path failed up front */
	rc = json_dumpf(j, fp, JSON_INDENT(2)) == 0 && fputc('\n', fp) != EOF && fflush(fp) == 0
		 ? CLI_OK
		 : cli_err("batch: cannot write %s: %s", path, strerror(errno));
	json_decref(j);
	return rc;
}

static void
batch_on_signal(int sig)
{
	(void)sig;
	dime_batch_stop();
}

/* ---- options ---- */

struct batch_args {
	struct dime_batch_conf conf;
	struct dime_batch_params par;
	const char *in, *out, *json, *to_signet_path;
	int sync_set, follow;
	char from[256], to[256], user[256];
};

static int
batch_parse(struct batch_args *a, int argc, char **argv)
{
	enum dime_batch_op op = dime_batch_op_parse(argv[1]);

	a->par.op = op;
	a->par.wrap.gzip = DIME_MSG_GZIP_IF_SMALLER;
	a->par.wrap.padding = DIME_MSG_PAD_REFERENCE;
	a->conf.resume = 1;
	if (op == 0)
		return cli_err("batch: unknown operation %s\n%s", argv[1], batch_usage);
	for (int i = 2; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end;

		if (strcmp(o, "--origin-sign") == 0 && op == DIME_BATCH_WRAP) {
			a->par.origin_sign = 1;
			continue;
		}
		if (strcmp(o, "--binary") == 0 &&
		    (op == DIME_BATCH_WRAP || op == DIME_BATCH_REKEY ||
		     op == DIME_BATCH_ORIGIN_SIGN)) {
			a->par.binary = 1;
			continue;
		}
		if (strcmp(o, "--sync") == 0 || strcmp(o, "--no-sync") == 0) {
			a->conf.sync = o[2] == 's';
			a->sync_set = 1;
			continue;
		}
		if (strcmp(o, "--follow-symlinks") == 0) {
			a->follow = 1;
			continue;
		}
		if (strcmp(o, "--key-process") == 0) {
			a->conf.key_process = 1;
			continue;
		}
		if (strcmp(o, "--redo") == 0) {
			a->conf.resume = 0;
			continue;
		}
		if (v == NULL)
			return cli_err("batch: unknown argument %s\n%s", o, batch_usage);
		i++;
		if (strcmp(o, "--in") == 0) {
			a->in = v;
		} else if (strcmp(o, "--out") == 0) {
			a->out = v;
		} else if (strcmp(o, "--json") == 0) {
			a->json = v;
		} else if (strcmp(o, "--workers") == 0 || strcmp(o, "--batch") == 0) {
			unsigned long n = strtoul(v, &end, 10);

			if (*end != 0 || n < 1 || n > 1024)
				return cli_err("batch: %s takes 1..1024", o);
			if (o[2] == 'w')
				a->conf.workers = (unsigned)n;
			else
				a->conf.batch_max = (unsigned)n;
		} else if (strcmp(o, "--io") == 0) {
			if (strcmp(v, "auto") == 0)
				a->conf.io = DIME_BATCH_IO_AUTO;
			else if (strcmp(v, "uring") == 0)
				a->conf.io = DIME_BATCH_IO_RING_PER_WORKER;
			else if (strcmp(v, "io-thread") == 0)
				a->conf.io = DIME_BATCH_IO_THREAD;
			else if (strcmp(v, "plain") == 0)
				a->conf.io = DIME_BATCH_IO_PLAIN;
			else
				return cli_err("batch: --io auto|uring|io-thread|plain");
		} else if (strcmp(o, "--from") == 0 && op == DIME_BATCH_WRAP) {
			if (cli_lower(a->from, sizeof(a->from), v) != 0)
				return cli_err("batch: bad --from");
			a->par.from = a->from;
		} else if (strcmp(o, "--to") == 0 && op == DIME_BATCH_WRAP) {
			if (cli_lower(a->to, sizeof(a->to), v) != 0)
				return cli_err("batch: bad --to");
			a->par.to = a->to;
		} else if (strcmp(o, "--gzip") == 0 && op == DIME_BATCH_WRAP) {
			if (strcmp(v, "never") == 0)
				a->par.wrap.gzip = DIME_MSG_GZIP_NEVER;
			else if (strcmp(v, "always") == 0)
				a->par.wrap.gzip = DIME_MSG_GZIP_ALWAYS;
			else if (strcmp(v, "if-smaller") == 0)
				a->par.wrap.gzip = DIME_MSG_GZIP_IF_SMALLER;
			else
				return cli_err("batch: --gzip never|always|if-smaller");
		} else if (strcmp(o, "--padding") == 0 && op == DIME_BATCH_WRAP) {
			if (strcmp(v, "reference") == 0)
				a->par.wrap.padding = DIME_MSG_PAD_REFERENCE;
			else if (strcmp(v, "alternate") == 0)
				a->par.wrap.padding = DIME_MSG_PAD_ALTERNATE;
			else
				return cli_err("batch: --padding reference|alternate");
		} else if (strcmp(o, "--as") == 0 && op == DIME_BATCH_OPEN) {
			if (strcmp(v, "recipient") == 0)
				a->par.as = DIME_ACTOR_RECIPIENT;
			else if (strcmp(v, "author") == 0)
				a->par.as = DIME_ACTOR_AUTHOR;
			else
				return cli_err("batch: --as recipient|author");
		} else if (strcmp(o, "--user") == 0 &&
			   (op == DIME_BATCH_OPEN || op == DIME_BATCH_REKEY)) {
			if (cli_lower(a->user, sizeof(a->user), v) != 0)
				return cli_err("batch: bad --user");
			a->par.user = a->user;
		} else if (strcmp(o, "--to-signet") == 0 && op == DIME_BATCH_REKEY) {
			a->to_signet_path = v;
		} else {
			return cli_err("batch %s: unknown argument %s\n%s", argv[1], o,
				       batch_usage);
		}
	}
	if (a->in == NULL || a->out == NULL)
		return cli_err("batch: --in and --out are required\n%s", batch_usage);
	if (op == DIME_BATCH_WRAP && (a->par.from == NULL || a->par.to == NULL))
		return cli_err("batch wrap: --from and --to are required");
	if (op == DIME_BATCH_OPEN && a->par.as == 0)
		return cli_err("batch open: --as recipient|author is required");
	if (op == DIME_BATCH_REKEY && a->to_signet_path == NULL)
		return cli_err("batch rekey: --to-signet FILE is required");
	/* opened mail is plaintext: make it durable before it is named done, so a crash never
	 * leaves an empty or cut .eml that a rerun would take as complete */
	if (!a->sync_set)
		a->conf.sync = op == DIME_BATCH_OPEN;
	return CLI_OK;
}

int
cmd_batch(int argc, char **argv)
{
	struct batch_args a;
	struct batch_ui u;
	struct dime_source *src = NULL;
	struct dime_batch_source bsrc;
	struct dime_batch_sink sink;
	struct dime_batch_summary sum;
	struct sigaction sa;
	uint8_t *signet = NULL;
	size_t signet_len = 0;
	FILE *json_fp = NULL;
	const char *why = "";
	char ns[48] = "";
	int rc;

	if (argc < 2 || cli_wants_help(argc, argv, batch_usage)) {
		if (argc < 2)
			return cli_err("%s", batch_usage);
		return CLI_OK;
	}
	/* SIGINT/SIGTERM stop the run from the start (a signal during setup stops it before the
	 * first item) to the exit (one after the run changes nothing): never the default death,
	 * which would leave no summary. The process ends when this command returns. */
	dime_batch_stop_clear();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = batch_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	memset(&a, 0, sizeof(a));
	memset(&u, 0, sizeof(u));
	if ((rc = batch_parse(&a, argc, argv)) != CLI_OK)
		return rc;
	if (a.to_signet_path != NULL) {
		if (cli_read(&signet, &signet_len, a.to_signet_path, 1u << 20) != CLI_OK)
			return CLI_ERR;
		a.par.to_signet = signet;
		a.par.to_signet_len = signet_len;
	}
	if (dime_source_open(&src, a.in, a.follow ? DIME_SOURCE_FOLLOW_SYMLINKS : 0, &why) != 0) {
		free(signet);
		return cli_err("batch: %s: %s", a.in, why);
	}
	/* the output directory must exist to be compared with the input: outputs written into
	 * the input would be read back as input by the next run */
	if (dime_batch_out_dir(a.out, &why) != DIME_OK || dime_source_contains(src, a.out) != 0) {
		if (why[0] == 0)
			why = "--out is --in or inside it";
		dime_source_close(src);
		free(signet);
		return cli_err("batch: %s: %s", a.out, why);
	}
	if (a.json != NULL && (json_fp = fopen(a.json, "w")) == NULL) {
		int e = errno;

		dime_source_close(src);
		free(signet);
		return cli_err("batch: cannot open %s: %s", a.json, strerror(e));
	}
	dime_batch_source_of(&bsrc, src);
	memset(&sink, 0, sizeof(sink));
	sink.dir = a.out;
	u.tty = isatty(STDERR_FILENO);
	u.total = bsrc.count_hint;
	u.failures = a.json != NULL ? json_array() : NULL;
	clock_gettime(CLOCK_MONOTONIC, &u.t0);
	u.last = u.t0;

	rc = dime_batch_run(&a.conf, &a.par, cli.store_path, &bsrc, &sink, batch_on_result, &u,
			    &sum, &why);
	if (u.tty)
		batch_progress(&u, 1);
	dime_source_close(src);
	free(signet);
	if (rc != DIME_OK && sum.ok + sum.failed + sum.skipped + sum.not_started == 0) {
		json_decref(u.failures);
		if (json_fp != NULL)
			fclose(json_fp);
		return cli_err("batch %s: %s", argv[1], why);
	}
	if (rc != DIME_OK)
		fprintf(stderr, "dime: batch %s: %s\n", argv[1], why);
	if (sum.not_started > 0)
		snprintf(ns, sizeof(ns), ", %llu not started", (unsigned long long)sum.not_started);
	printf("%s: %llu ok, %llu failed, %llu skipped%s in %.2f s: %.1f msg/s, %.2f MB/s "
	       "(%u workers, %s I/O)%s\n",
	       dime_batch_op_name(a.par.op), (unsigned long long)sum.ok,
	       (unsigned long long)sum.failed, (unsigned long long)sum.skipped, ns, sum.seconds,
	       sum.seconds > 0 ? (double)sum.ok / sum.seconds : 0.0,
	       sum.seconds > 0 ? (double)sum.in_bytes / 1e6 / sum.seconds : 0.0, sum.workers,
	       sum.io, sum.stopped ? ", stopped: rerun to resume" : "");
	if (json_fp != NULL) {
		if (batch_write_json(json_fp, a.json, dime_batch_op_name(a.par.op), &sum, &u) !=
		    CLI_OK)
			rc = DIME_E_IO;
		if (fclose(json_fp) != 0 && rc == DIME_OK) {
			(void)cli_err("batch: cannot write %s: %s", a.json, strerror(errno));
			rc = DIME_E_IO;
		}
	}
	json_decref(u.failures);
	if (rc != DIME_OK)
		return CLI_ERR;
	return sum.failed > 0 || sum.stopped ? CLI_NO : CLI_OK;
}

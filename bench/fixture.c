/* dime-bench fixture: parties built in memory, generated mail, each operation's input and one
 * in-process run of each operation, and a temporary store for the batch pipeline. Everything
 * here is setup: nothing in this file is on a timed path except bench_op_run. */

#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dime/crypto.h"
#include "dime/store.h"

static const char *const bench_op_names[BENCH_N_OPS] = {"wrap", "origin-sign",	 "accept",
							"open", "bounce-verify", "rekey"};

const char *
bench_op_name(enum bench_op op)
{
	return (unsigned)op < BENCH_N_OPS ? bench_op_names[op] : "?";
}

int
bench_op_parse(const char *name)
{
	for (int i = 0; i < BENCH_N_OPS; i++)
		if (strcmp(name, bench_op_names[i]) == 0)
			return i;
	return -1;
}

uint64_t
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
fix_org(struct bench_fix *f, uint32_t *key, struct dime_signet **s, const char *domain)
{
	int rc = dime_ks_generate(f->ks, key, DIME_KEY_ORG);

	if (rc == DIME_OK)
		rc = dime_signet_org_create(s, f->ks, *key, NULL, 0, NULL, 0, domain);
	return rc;
}

static int
fix_user(struct bench_fix *f, uint32_t *key, struct dime_signet **s, const struct dime_signet *org,
	 uint32_t org_key, const char *address, uint32_t prev_key, const struct dime_signet *prev)
{
	struct dime_signet *ssr = NULL;
	int rc = dime_ks_generate(f->ks, key, DIME_KEY_USER);

	if (rc == DIME_OK)
		rc = dime_signet_ssr_create(&ssr, f->ks, *key, prev_key);
	if (rc == DIME_OK)
		rc = dime_signet_ssr_sign(s, ssr, prev, org, f->ks, org_key, NULL, 0, address);
	dime_signet_free(ssr);
	return rc;
}

int
bench_fix_init(struct bench_fix *f, const char **why)
{
	int rc;

	memset(f, 0, sizeof(*f));
	*why = "dime_global_init";
	if ((rc = dime_global_init()) != DIME_OK)
		return rc;
	*why = "dime_ks_new";
	if ((rc = dime_ks_new(&f->ks)) != DIME_OK)
		return rc;
	*why = "org signets";
	if ((rc = fix_org(f, &f->org_a_key, &f->org_a, BENCH_ORG_A)) != DIME_OK ||
	    (rc = fix_org(f, &f->org_b_key, &f->org_b, BENCH_ORG_B)) != DIME_OK)
		goto fail;
	*why = "user signets";
	if ((rc = fix_user(f, &f->author_key, &f->author, f->org_a, f->org_a_key, BENCH_AUTHOR,
			   DIME_KS_NONE, NULL)) != DIME_OK ||
	    (rc = fix_user(f, &f->recip_key, &f->recip, f->org_b, f->org_b_key, BENCH_RECIP,
			   DIME_KS_NONE, NULL)) != DIME_OK ||
	    (rc = fix_user(f, &f->recip2_key, &f->recip2, f->org_b, f->org_b_key, BENCH_RECIP,
			   f->recip_key, f->recip)) != DIME_OK)
		goto fail;
	f->p.author = f->author;
	f->p.origin = f->org_a;
	f->p.destination = f->org_b;
	f->p.recipient = f->recip;
	*why = "";
	return DIME_OK;
fail:
	bench_fix_fini(f);
	return rc;
}

void
bench_fix_fini(struct bench_fix *f)
{
	dime_signet_free(f->org_a);
	dime_signet_free(f->org_b);
	dime_signet_free(f->author);
	dime_signet_free(f->recip);
	dime_signet_free(f->recip2);
	dime_ks_free(f->ks);
	memset(f, 0, sizeof(*f));
}

/* ---- mail ---- */

static const char *const fix_words[] = {
    "the",	 "of",	      "and",	  "to",	     "in",	 "a",	    "is",	"that",
    "for",	 "it",	      "as",	  "was",     "with",	 "be",	    "by",	"on",
    "not",	 "he",	      "this",	  "are",     "or",	 "his",	    "from",	"at",
    "which",	 "but",	      "have",	  "an",	     "had",	 "they",    "you",	"were",
    "their",	 "one",	      "all",	  "we",	     "can",	 "her",	    "has",	"there",
    "been",	 "if",	      "more",	  "when",    "will",	 "would",   "who",	"so",
    "no",	 "meeting",   "budget",	  "quarter", "report",	 "server",  "message",	"delivery",
    "schedule",	 "customer",  "invoice",  "project", "review",	 "draft",   "attached", "please",
    "thanks",	 "regards",   "tomorrow", "monday",  "question", "answer",  "update",	"status",
    "encrypted", "signature", "domain",	  "policy",  "network",	 "storage", "release",	"version"};

/* xorshift64*: cheap, deterministic per seed. */
static uint64_t
fix_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

uint8_t *
bench_mail_new(size_t size, uint64_t seed)
{
	char hdr[512];
	uint8_t *m = malloc(size > 0 ? size : 1);
	uint64_t s = seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
	size_t n, line = 0;
	int hl;

	if (m == NULL)
		return NULL;
	hl = snprintf(hdr, sizeof(hdr),
		      "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
		      "From: Alice <" BENCH_AUTHOR ">\r\n"
		      "To: Bob <" BENCH_RECIP ">\r\n"
		      "Subject: bench message %llu\r\n"
		      "Message-ID: <%llu.bench@" BENCH_ORG_A ">\r\n"
		      "MIME-Version: 1.0\r\n"
		      "Content-Type: text/plain; charset=utf-8\r\n\r\n",
		      (unsigned long long)seed, (unsigned long long)seed);
	n = (size_t)hl < size ? (size_t)hl : size;
	memcpy(m, hdr, n);
	while (n + 2 < size) {
		const char *w =
		    fix_words[fix_rand(&s) % (sizeof(fix_words) / sizeof(fix_words[0]))];
		size_t wl = strlen(w);

		if (line > 0 && line + 1 + wl > 72) {
			m[n++] = '\r';
			m[n++] = '\n';
			line = 0;
			continue;
		}
		if (line > 0) {
			m[n++] = ' ';
			line++;
		}
		for (size_t i = 0; i < wl && n + 2 < size; i++, line++)
			m[n++] = (uint8_t)w[i];
	}
	for (; n < size; n++)
		m[n] = n + 1 == size ? '\n' : n + 2 == size ? '\r' : '.';
	return m;
}

size_t
bench_size_parse(const char *s)
{
	char *end = NULL;
	unsigned long long v = strtoull(s, &end, 10);

	if (end == s)
		return 0;
	if (*end == 'k' || *end == 'K')
		v *= 1024u, end++;
	else if (*end == 'm' || *end == 'M')
		v *= 1024u * 1024u, end++;
	if (*end != 0 || v == 0 || v > 256u * 1024u * 1024u)
		return 0;
	return (size_t)v;
}

void
bench_size_name(char *out, size_t cap, size_t size)
{
	if (size % (1024u * 1024u) == 0)
		snprintf(out, cap, "%zum", size / (1024u * 1024u));
	else if (size % 1024u == 0)
		snprintf(out, cap, "%zuk", size / 1024u);
	else
		snprintf(out, cap, "%zu", size);
}

/* ---- inputs and runs ---- */

int
bench_input_new(const struct bench_fix *f, uint8_t **out, size_t *out_len, enum bench_op op,
		const uint8_t *mail, size_t mail_len)
{
	struct dime_msg_envelope env;
	uint8_t *w = NULL, *s = NULL;
	size_t wl = 0, sl = 0;
	const char *why = "";
	int rc;

	*out = NULL;
	*out_len = 0;
	if (op == BENCH_WRAP) {
		if ((*out = malloc(mail_len)) == NULL)
			return DIME_E_NOMEM;
		memcpy(*out, mail, mail_len);
		*out_len = mail_len;
		return DIME_OK;
	}
	rc = dime_msg_wrap_mail(f->ks, &w, &wl, &why, &f->p, f->author_key, mail, mail_len, NULL);
	if (rc == DIME_OK && op == BENCH_ORIGIN_SIGN) {
		*out = w;
		*out_len = wl;
		return DIME_OK;
	}
	if (rc == DIME_OK)
		rc = dime_msg_origin_sign(f->ks, &s, &sl, &env, &why, w, wl, f->org_a_key,
					  DIME_KS_NONE, &f->p);
	dime_msg_free(w, wl);
	if (rc != DIME_OK)
		return rc;
	if (op != BENCH_BOUNCE_VERIFY) {
		*out = s;
		*out_len = sl;
		return DIME_OK;
	}
	rc = dime_msg_bounce(f->ks, out, out_len, &why, s, sl, f->org_b_key, &f->p,
			     DIME_BOUNCE_REFUSED, "recipient refused (bench)", 1);
	dime_msg_free(s, sl);
	return rc;
}

int
bench_op_run(const struct bench_fix *f, size_t *out_len, enum bench_op op, const uint8_t *in,
	     size_t in_len)
{
	struct dime_msg_envelope env;
	struct dime_msg_opened o;
	struct dime_msg_bounce_info bi;
	uint8_t *out = NULL;
	const char *why = "";
	int rc = DIME_E_INVALID;

	*out_len = 0;
	switch (op) {
	case BENCH_WRAP:
		rc = dime_msg_wrap_mail(f->ks, &out, out_len, &why, &f->p, f->author_key, in,
					in_len, NULL);
		dime_msg_free(out, *out_len);
		break;
	case BENCH_ORIGIN_SIGN:
		rc = dime_msg_origin_sign(f->ks, &out, out_len, &env, &why, in, in_len,
					  f->org_a_key, DIME_KS_NONE, &f->p);
		dime_msg_free(out, *out_len);
		break;
	case BENCH_ACCEPT:
		rc = dime_msg_accept(f->ks, &env, &why, in, in_len, f->org_b_key, &f->p);
		break;
	case BENCH_OPEN:
		/* as the pipeline's open does: verify and decrypt, then rebuild the mail */
		rc = dime_msg_open(f->ks, &o, &why, in, in_len, DIME_ACTOR_RECIPIENT, f->recip_key,
				   &f->p);
		if (rc == DIME_OK) {
			rc = dime_msg_opened_mail(&out, out_len, &o);
			dime_msg_free(out, *out_len);
		}
		dime_msg_opened_free(&o);
		break;
	case BENCH_BOUNCE_VERIFY:
		rc = dime_msg_bounce_verify(f->ks, &bi, &why, in, in_len, f->org_a_key, f->org_a);
		break;
	case BENCH_REKEY:
		rc = dime_msg_rekey(f->ks, &out, out_len, &why, in, in_len, f->recip_key, f->recip2,
				    &f->p);
		dime_msg_free(out, *out_len);
		break;
	case BENCH_N_OPS: break;
	}
	return rc;
}

/* ---- store ---- */

static int
fix_store_key(struct dime_store *st, const struct dime_ks *ks, uint32_t id, const char *ident,
	      enum dime_store_kind kind)
{
	uint8_t buf[DIME_KEYFILE_MAX_BYTES];
	size_t n = 0;
	int rc = dime_ks_export(ks, buf, sizeof(buf), &n, id, 0);

	if (rc == DIME_OK)
		rc = dime_store_put(st, NULL, ident, kind, buf, n, 1, 0, "");
	dime_wipe(buf, sizeof(buf));
	return rc;
}

static int
fix_store_signet(struct dime_store *st, const struct dime_signet *s, const char *ident,
		 enum dime_store_kind kind)
{
	char fp[DIME_FP_B64_LEN + 1];
	struct dime_view b = dime_signet_bytes(s);
	int rc = dime_signet_fingerprint_b64(fp, s, DIME_FP_FULL);

	if (rc == DIME_OK)
		rc = dime_store_put(st, NULL, ident, kind, b.p, b.len, 1, 0, fp);
	return rc;
}

int
bench_store_fill(const struct bench_fix *f, const char *path)
{
	struct dime_store *st = NULL;
	char err[256];
	int rc = dime_store_open(&st, path, err, sizeof(err));

	if (rc != DIME_OK) {
		fprintf(stderr, "dime-bench: store %s: %s\n", path, err);
		return rc;
	}
	/* keys first, then signets, as cmd_org.c and cmd_user.c do */
	if ((rc = fix_store_key(st, f->ks, f->org_a_key, BENCH_ORG_A, DIME_STORE_ORG_KEY)) ==
		DIME_OK &&
	    (rc = fix_store_signet(st, f->org_a, BENCH_ORG_A, DIME_STORE_ORG_SIGNET)) == DIME_OK &&
	    (rc = fix_store_key(st, f->ks, f->org_b_key, BENCH_ORG_B, DIME_STORE_ORG_KEY)) ==
		DIME_OK &&
	    (rc = fix_store_signet(st, f->org_b, BENCH_ORG_B, DIME_STORE_ORG_SIGNET)) == DIME_OK &&
	    (rc = fix_store_key(st, f->ks, f->author_key, BENCH_AUTHOR, DIME_STORE_USER_KEY)) ==
		DIME_OK &&
	    (rc = fix_store_signet(st, f->author, BENCH_AUTHOR, DIME_STORE_USER_SIGNET)) ==
		DIME_OK &&
	    (rc = fix_store_key(st, f->ks, f->recip_key, BENCH_RECIP, DIME_STORE_USER_KEY)) ==
		DIME_OK &&
	    (rc = fix_store_signet(st, f->recip, BENCH_RECIP, DIME_STORE_USER_SIGNET)) == DIME_OK &&
	    /* the rotation rekey re-keys to: batch rekey only takes a stored signet */
	    (rc = fix_store_key(st, f->ks, f->recip2_key, BENCH_RECIP, DIME_STORE_USER_KEY)) ==
		DIME_OK)
		rc = fix_store_signet(st, f->recip2, BENCH_RECIP, DIME_STORE_USER_SIGNET);
	dime_store_close(st);
	return rc;
}

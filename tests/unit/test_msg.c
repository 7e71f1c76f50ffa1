/* D/MIME: every dmime / dmime-variant case of manifest.json acted out for every actor with
 * project_expect's verdict, plaintexts compared; author outputs re-read, origin-signed, accepted
 * and opened; our own wrap -> origin-sign -> accept -> open round trips; framing rules (order,
 * duplicates, unknown types, keyslot actor sets, every strict prefix); payload rules (padding,
 * flags, lengths); and single-bit flips in every chunk and keyslot of msg-small against each
 * actor's verdict. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dime/crypto.h"
#include "dime/keys.h"
#include "dime/msg.h"
#include "dime/signet.h"
#include "msg_int.h"
#include "tlib.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

enum { AUTHOR, ORIGIN, DEST, RECIP, N_ACTORS };
static const char *const actor_name[N_ACTORS] = {"author", "origin", "destination", "recipient"};

struct part_file {
	uint8_t type;
	const char *file;
};

struct mcase {
	const char *id, *message, *author_output;
	int want[N_ACTORS]; /* 1 accept, 0 reject, -1 not given */
	const char *party[N_ACTORS];
	const char *common, *other;
	size_t n_parts;
	struct part_file parts[4];
};

static const struct mcase cases[] = {
    {"dmime:msg-small",
     "msg-small.complete.bin",
     "msg-small.author-output.bin",
     {1, 1, 1, 1},
     {"user-alice", "org-alpha", "org-beta", "user-bob"},
     "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nTo: Bob <bob@beta.example>\r\nFrom: Alice "
     "<alice@alpha.example>\r\nOrganization: Alpha\r\nSubject: Small text\r\n",
     "X-Vector: msg-small\r\n",
     1,
     {{67, "msg-small.complete.recipient.display0.plain"}}},
    {"dmime:msg-attach",
     "msg-attach.complete.bin",
     "msg-attach.author-output.bin",
     {1, 1, 1, 1},
     {"user-alice", "org-alpha", "org-beta", "user-bob"},
     "Date: Tue, 02 Jan 2024 10:00:00 +0000\r\nTo: Bob <bob@beta.example>\r\nCC: Dave "
     "<dave@beta.example>\r\nFrom: Alice <alice@alpha.example>\r\nSubject: With attachments\r\n",
     "X-Vector: msg-attach\r\nMessage-ID: <v2@alpha.example>\r\n",
     3,
     {{67, "msg-attach.complete.recipient.display0.plain"},
      {131, "msg-attach.complete.recipient.attach0.plain"},
      {131, "msg-attach.complete.recipient.attach1.plain"}}},
    {"dmime:msg-large",
     "msg-large.complete.bin",
     "msg-large.author-output.bin",
     {1, 1, 1, 1},
     {"user-alice", "org-alpha", "org-beta", "user-bob"},
     "Date: Wed, 03 Jan 2024 12:00:00 +0000\r\nTo: Bob <bob@beta.example>\r\nFrom: Alice "
     "<alice@alpha.example>\r\nSubject: Large body\r\n",
     "X-Vector: msg-large\r\n",
     1,
     {{67, "msg-large.complete.recipient.display0.plain"}}},
    {"dmime:msg-reverse",
     "msg-reverse.complete.bin",
     "msg-reverse.author-output.bin",
     {1, 1, 1, 1},
     {"user-bob", "org-beta", "org-alpha", "user-carol-v2"},
     "Date: Fri, 05 Jan 2024 09:30:00 +0000\r\nTo: Carol <carol@alpha.example>\r\nFrom: Bob "
     "<bob@beta.example>\r\nOrganization: Beta\r\nSubject: Reverse direction\r\n",
     "In-Reply-To: <v2@alpha.example>\r\n",
     1,
     {{67, "msg-reverse.complete.recipient.display0.plain"}}},
    {"dmime:msg-metabounce",
     "msg-metabounce.complete.bin",
     "msg-metabounce.author-output.bin",
     {1, 1, 0, 0},
     {"user-alice", "org-alpha", "org-beta", "user-bob"},
     "Date: Sun, 07 Jan 2024 07:00:00 +0000\r\nTo: Bob <bob@beta.example>\r\nFrom: Alice "
     "<alice@alpha.example>\r\nSubject: Meta bounce only\r\n",
     NULL,
     1,
     {{67, "msg-metabounce.complete.author.display0.plain"}}},
    {"dmime:msg-attach-desc",
     NULL,
     "msg-attach-desc.author-output.bin",
     {-1, -1, -1, -1},
     {"user-alice", "org-alpha", "org-beta", "user-bob"},
     NULL,
     NULL,
     0,
     {{0, NULL}}},
    {"dmime-variant:x-resealed-clean",
     "x-resealed-clean.bin",
     NULL,
     {1, 1, 1, 1},
     {"user-alice", "org-alpha", "org-beta", "user-bob"},
     NULL,
     NULL,
     0,
     {{0, NULL}}},
    {"dmime-variant:x-bad-padding-byte",
     "x-bad-padding-byte.bin",
     NULL,
     {0, 1, 1, 0},
     {"user-alice", "org-alpha", "org-beta", "user-bob"},
     NULL,
     NULL,
     0,
     {{0, NULL}}},
    {"dmime-variant:x-bad-org-sig-bitflip",
     "x-bad-org-sig-bitflip.bin",
     NULL,
     {1, 1, 0, 0},
     {"user-alice", "org-alpha", "org-beta", "user-bob"},
     NULL,
     NULL,
     0,
     {{0, NULL}}},
    {"dmime-variant:x-truncated",
     "x-truncated.bin",
     NULL,
     {0, 0, 0, 0},
     {"user-alice", "org-alpha", "org-beta", "user-bob"},
     NULL,
     NULL,
     0,
     {{0, NULL}}},
    {"dmime-variant:x-bad-magic",
     "x-bad-magic.bin",
     NULL,
     {0, 0, 0, 0},
     {"user-alice", "org-alpha", "org-beta", "user-bob"},
     NULL,
     NULL,
     0,
     {{0, NULL}}},
    {"dmime-variant:x-tree-sig-spec-literal",
     "x-tree-sig-spec-literal.bin",
     NULL,
     {1, 1, 1, 1},
     {"user-alice", "org-alpha", "org-beta", "user-bob"},
     NULL,
     NULL,
     0,
     {{0, NULL}}},
    {"dmime-variant:x-tracing-prefix",
     "x-tracing-prefix.bin",
     NULL,
     {1, 1, 1, 1},
     {"user-alice", "org-alpha", "org-beta", "user-bob"},
     NULL,
     NULL,
     0,
     {{0, NULL}}},
    {"dmime-variant:x-reserved-flag",
     "x-reserved-flag.bin",
     NULL,
     {0, 1, 1, 0},
     {"user-alice", "org-alpha", "org-beta", "user-bob"},
     NULL,
     NULL,
     0,
     {{0, NULL}}},
};

/* ---- parties ---- */

struct party {
	const char *name;
	uint32_t key;
	struct dime_signet *signet;
};

static struct dime_ks *ks;
static struct party parties[8];
static size_t n_parties;

static struct party *
party_get(const char *name)
{
	char fn[128];
	uint8_t *b;
	size_t len;
	struct party *p;
	const char *why = "";

	for (size_t i = 0; i < n_parties; i++)
		if (strcmp(parties[i].name, name) == 0)
			return &parties[i];
	if (n_parties == N_OF(parties)) {
		fprintf(stderr, "too many parties\n");
		exit(1);
	}
	p = &parties[n_parties++];
	p->name = name;
	snprintf(fn, sizeof(fn), "%s.keys.pem", name);
	b = t_read(fn, &len);
	if (dime_ks_load(ks, &p->key, b, len) != DIME_OK) {
		fprintf(stderr, "cannot load %s\n", fn);
		exit(1);
	}
	free(b);
	snprintf(fn, sizeof(fn), "%s.signet.pem", name);
	b = t_read(fn, &len);
	if (dime_signet_load(&p->signet, &why, b, len) != DIME_OK) {
		fprintf(stderr, "cannot load %s: %s\n", fn, why);
		exit(1);
	}
	free(b);
	return p;
}

struct who {
	struct party *a[N_ACTORS];
	struct dime_msg_parties ps;
};

static void
who_init(struct who *w, const char *const names[N_ACTORS])
{
	for (int i = 0; i < N_ACTORS; i++)
		w->a[i] = party_get(names[i]);
	w->ps.author = w->a[AUTHOR]->signet;
	w->ps.origin = w->a[ORIGIN]->signet;
	w->ps.destination = w->a[DEST]->signet;
	w->ps.recipient = w->a[RECIP]->signet;
}

/* The whole job of one actor (WIRE.md "Conformance verdicts"). For author and recipient the
 * opened message is returned in *o when o != NULL (caller frees). */
static int
act(const struct who *w, int actor, const uint8_t *msg, size_t len, struct dime_msg_opened *o,
    const char **why)
{
	struct dime_msg_envelope env;
	struct dime_msg_opened tmp;
	int rc;

	switch (actor) {
	case ORIGIN:
		return dime_msg_origin_check(ks, &env, why, msg, len, w->a[ORIGIN]->key, &w->ps);
	case DEST: return dime_msg_accept(ks, &env, why, msg, len, w->a[DEST]->key, &w->ps);
	default:
		rc = dime_msg_open(ks, o != NULL ? o : &tmp, why, msg, len,
				   actor == AUTHOR ? DIME_ACTOR_AUTHOR : DIME_ACTOR_RECIPIENT,
				   w->a[actor]->key, &w->ps);
		if (o == NULL)
			dime_msg_opened_free(&tmp);
		return rc;
	}
}

static int
view_eq(struct dime_view v, const char *s)
{
	return v.len == strlen(s) && memcmp(v.p, s, v.len) == 0;
}

/* Compare an opened message with the case's plaintexts. */
static void
check_plain(const char *tag, const struct mcase *c, const struct dime_msg_opened *o)
{
	if (c->common != NULL)
		T_CHECK(view_eq(o->common, c->common), "%s: common headers differ", tag);
	if (c->other != NULL)
		T_CHECK(view_eq(o->headers, c->other), "%s: other headers differ", tag);
	if (c->common == NULL)
		return;
	T_CHECK(o->n_parts == c->n_parts, "%s: got %zu parts, want %zu", tag, o->n_parts,
		c->n_parts);
	for (size_t i = 0; i < c->n_parts && i < o->n_parts; i++) {
		size_t len;
		uint8_t *want = t_read(c->parts[i].file, &len);

		T_CHECK(o->parts[i].type == c->parts[i].type, "%s: part %zu type %u, want %u", tag,
			i, o->parts[i].type, c->parts[i].type);
		T_CHECK(o->parts[i].data.len == len && memcmp(o->parts[i].data.p, want, len) == 0,
			"%s: part %zu differs from %s", tag, i, c->parts[i].file);
		free(want);
	}
	T_CHECK(o->env.author[0] != 0 && o->env.recipient[0] != 0 && o->env.origin[0] != 0 &&
		    o->env.destination[0] != 0,
		"%s: envelope incomplete", tag);
}

static const struct mcase *
plain_of(const struct mcase *c)
{
	/* the x- variants are derived from msg-small */
	if (c->common == NULL && strncmp(c->id, "dmime-variant:", 14) == 0)
		return &cases[0];
	return c;
}

static void
test_vectors(void)
{
	for (size_t k = 0; k < N_OF(cases); k++) {
		const struct mcase *c = &cases[k];
		struct who w;

		who_init(&w, c->party);
		if (c->message != NULL) {
			size_t len;
			uint8_t *msg = t_read(c->message, &len);
			const uint8_t *g = t_at_page_end(0, msg, len);

			for (int a = 0; a < N_ACTORS; a++) {
				struct dime_msg_opened o;
				const char *why = "";
				int rc;

				if (c->want[a] < 0)
					continue;
				memset(&o, 0, sizeof(o));
				rc = act(&w, a, g, len, (a == AUTHOR || a == RECIP) ? &o : NULL,
					 &why);
				T_CHECK((rc == DIME_OK) == (c->want[a] == 1),
					"%s as %s: got %d (%s), want %s", c->id, actor_name[a], rc,
					why, c->want[a] ? "accept" : "reject");
				if (rc == DIME_OK && (a == AUTHOR || a == RECIP)) {
					char tag[128];

					snprintf(tag, sizeof(tag), "%s as %s", c->id,
						 actor_name[a]);
					check_plain(tag, plain_of(c), &o);
				}
				if (rc != DIME_OK)
					T_CHECK(o.parts == NULL && o.common.p == NULL &&
						    o.n_parts == 0,
						"%s as %s: plaintext released on failure", c->id,
						actor_name[a]);
				dime_msg_opened_free(&o);
			}
			free(msg);
		}
		if (c->author_output != NULL) {
			size_t len, slen = 0;
			uint8_t *msg = t_read(c->author_output, &len), *signed_msg = NULL;
			struct dime_msg_envelope env;
			struct dime_msg_opened o;
			const char *why = "";
			int rc;

			rc = act(&w, AUTHOR, msg, len, &o, &why);
			T_CHECK(rc == DIME_OK, "%s author output, author: got %d (%s)", c->id, rc,
				why);
			if (rc == DIME_OK)
				check_plain(c->id, c, &o);
			dime_msg_opened_free(&o);
			rc = act(&w, DEST, msg, len, NULL, &why);
			T_CHECK(rc == DIME_E_BADSIG, "%s unsigned: destination got %d, want BADSIG",
				c->id, rc);
			rc = dime_msg_origin_sign(ks, &signed_msg, &slen, &env, &why, msg, len,
						  w.a[ORIGIN]->key, DIME_KS_NONE, &w.ps);
			T_CHECK(rc == DIME_OK, "%s origin-sign: got %d (%s)", c->id, rc, why);
			if (rc == DIME_OK) {
				for (int a = 0; a < N_ACTORS; a++) {
					rc = act(&w, a, signed_msg, slen, a == RECIP ? &o : NULL,
						 &why);
					T_CHECK(rc == DIME_OK, "%s signed by us, %s: got %d (%s)",
						c->id, actor_name[a], rc, why);
					if (rc == DIME_OK && a == RECIP) {
						check_plain(c->id, c, &o);
						dime_msg_opened_free(&o);
					}
				}
			}
			dime_msg_free(signed_msg, slen);
			free(msg);
		}
	}
}

/* ---- framing ---- */

static void
test_dump_small(void)
{
	size_t len, n;
	uint8_t *msg = t_read("msg-small.complete.bin", &len);
	struct dime_msg_dump d;
	struct dime_msg_chunk_info ch[16];
	static const uint8_t want_types[] = {2, 4, 5, 33, 34, 67, 225, 226, 248, 249, 255};
	static const char *const want_actors[] = {"",	 "AOR", "ADR",	"AR",	"AR",  "AR",
						  "AOR", "AOR", "AODR", "AODR", "AODR"};
	const char *why = "";
	int rc;

	rc = dime_msg_dump(&d, NULL, 0, &why, msg, len);
	T_CHECK(rc == DIME_OK && d.n_chunks == 11, "dump count: got %d n=%zu (%s)", rc, d.n_chunks,
		why);
	rc = dime_msg_dump(&d, ch, 4, &why, msg, len);
	T_CHECK(rc == DIME_E_NOSPACE, "dump small cap: got %d, want NOSPACE", rc);
	rc = dime_msg_dump(&d, ch, N_OF(ch), &why, msg, len);
	T_CHECK(rc == DIME_OK && d.n_chunks == N_OF(want_types), "dump: got %d", rc);
	n = rc == DIME_OK ? d.n_chunks : 0;
	for (size_t i = 0; i < n; i++) {
		T_CHECK(ch[i].type == want_types[i], "chunk %zu: type %u, want %u", i, ch[i].type,
			want_types[i]);
		T_CHECK(strcmp(dime_msg_actors_str(ch[i].actors), want_actors[i]) == 0,
			"chunk %u: actors %s, want %s", ch[i].type,
			dime_msg_actors_str(ch[i].actors), want_actors[i]);
		T_CHECK(ch[i].slots.len == ch[i].n_slots * 64u, "chunk %u: slot bytes", ch[i].type);
	}
	T_CHECK(n > 1 && ch[1].offset == 43 && ch[1].payload.len == 416,
		"origin chunk offset/len as the manifest");
	T_CHECK(strcmp(dime_msg_chunk_name(249), "org-display-bounce-signature") == 0, "names");

	/* every strict prefix: DIME_E_TRUNCATED, guard page behind */
	for (size_t k = 0; k < len; k++) {
		rc = dime_msg_dump(&d, ch, N_OF(ch), &why, t_at_page_end(1, msg, k), k);
		if (rc != DIME_E_TRUNCATED) {
			t_fail("prefix %zu: got %d (%s), want TRUNCATED", k, rc, why);
			break;
		}
	}
	/* a tracing prefix is reported and kept */
	{
		size_t tl;
		uint8_t *t = t_read("x-tracing-prefix.bin", &tl);

		rc = dime_msg_dump(&d, ch, N_OF(ch), &why, t, tl);
		T_CHECK(rc == DIME_OK && d.tracing.len > 0 && d.msg_offset == 4 + d.tracing.len,
			"tracing prefix: got %d", rc);
		free(t);
	}
	free(msg);
}

/* Rebuild msg-small from its chunks in another order / with changes. */
static size_t
rebuild(uint8_t *out, const uint8_t *msg, const struct dime_msg_chunk_info *ch, const size_t *order,
	size_t n)
{
	size_t off = 6, body = 0;

	(void)msg;
	for (size_t i = 0; i < n; i++) {
		memcpy(out + off, ch[order[i]].chunk.p, ch[order[i]].chunk.len);
		off += ch[order[i]].chunk.len;
		body += ch[order[i]].chunk.len;
	}
	out[0] = 0x07;
	out[1] = 0x37;
	out[2] = (uint8_t)(body >> 24);
	out[3] = (uint8_t)(body >> 16);
	out[4] = (uint8_t)(body >> 8);
	out[5] = (uint8_t)body;
	return off;
}

static void
test_framing_rules(void)
{
	size_t len;
	uint8_t *msg = t_read("msg-small.complete.bin", &len), *buf = malloc(2 * len);
	struct dime_msg_dump d;
	struct dime_msg_chunk_info ch[16], ch2[16];
	const char *why = "";
	size_t n, blen;
	int rc;

	rc = dime_msg_dump(&d, ch, N_OF(ch), &why, msg, len);
	n = d.n_chunks;
	{ /* identity */
		size_t ord[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

		blen = rebuild(buf, msg, ch, ord, n);
		T_CHECK(blen == len && memcmp(buf, msg, len) == 0, "rebuild identity");
	}
	{ /* 33 before 5: out of order */
		size_t ord[] = {0, 1, 3, 2, 4, 5, 6, 7, 8, 9, 10};

		blen = rebuild(buf, msg, ch, ord, n);
		rc = dime_msg_dump(&d, ch2, N_OF(ch2), &why, buf, blen);
		T_CHECK(rc == DIME_E_MALFORMED, "order: got %d (%s)", rc, why);
	}
	{ /* 4 twice */
		size_t ord[] = {0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

		blen = rebuild(buf, msg, ch, ord, n + 1);
		rc = dime_msg_dump(&d, ch2, N_OF(ch2), &why, buf, blen);
		T_CHECK(rc == DIME_E_MALFORMED, "duplicate: got %d (%s)", rc, why);
	}
	{ /* 67 twice is fine at the framing level */
		size_t ord[] = {0, 1, 2, 3, 4, 5, 5, 6, 7, 8, 9, 10};

		blen = rebuild(buf, msg, ch, ord, n + 1);
		rc = dime_msg_dump(&d, ch2, N_OF(ch2), &why, buf, blen);
		T_CHECK(rc == DIME_OK, "67 twice: got %d (%s)", rc, why);
	}
	{ /* 255 missing */
		size_t ord[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};

		blen = rebuild(buf, msg, ch, ord, n - 1);
		rc = dime_msg_dump(&d, ch2, N_OF(ch2), &why, buf, blen);
		T_CHECK(rc == DIME_E_MALFORMED && strstr(why, "255") != NULL,
			"255 missing: got %d (%s)", rc, why);
	}
	{ /* unknown type; trailing byte; bad magic */
		memcpy(buf, msg, len);
		buf[ch[4].offset] = 35;
		rc = dime_msg_dump(&d, ch2, N_OF(ch2), &why, buf, len);
		T_CHECK(rc == DIME_E_MALFORMED, "unknown type: got %d", rc);
		memcpy(buf, msg, len);
		buf[len] = 0;
		rc = dime_msg_dump(&d, ch2, N_OF(ch2), &why, buf, len + 1);
		T_CHECK(rc == DIME_E_TRAILING, "trailing: got %d", rc);
		buf[0] = 0x08;
		rc = dime_msg_dump(&d, ch2, N_OF(ch2), &why, buf, len);
		T_CHECK(rc == DIME_E_MALFORMED, "magic: got %d", rc);
	}
	free(buf);
	free(msg);
}

/* ---- payload rules (msg_payload_decode) ---- */

static size_t
mk_payload(uint8_t *pt, size_t data_len, uint8_t flags, uint8_t pad, size_t padlen, uint8_t padbyte)
{
	memset(pt, 0, 64);
	pt[64] = (uint8_t)(data_len >> 16);
	pt[65] = (uint8_t)(data_len >> 8);
	pt[66] = (uint8_t)data_len;
	pt[67] = flags;
	pt[68] = pad;
	memset(pt + 69, 'x', data_len);
	memset(pt + 69 + data_len, padbyte, padlen);
	return 69 + data_len + padlen;
}

static void
test_payload_rules(void)
{
	static uint8_t pt[2048];
	struct msg_payload pl;
	const char *why = "";
	size_t n;
	int rc;

	n = mk_payload(pt, 11, 0, 176, 176, 176);
	T_CHECK(msg_payload_decode(&pl, &why, pt, n, 67) == DIME_OK && pl.data.len == 11,
		"good payload: %s", why);
	n = mk_payload(pt, 187, 0, 0, 256, 0); /* padlen 256: pad octet 0 */
	T_CHECK(msg_payload_decode(&pl, &why, pt, n, 67) == DIME_OK, "padlen 256: %s", why);
	n = mk_payload(pt, 11, 0, 176, 176, 176);
	pt[100] = 175;
	rc = msg_payload_decode(&pl, &why, pt, n, 67);
	T_CHECK(rc == DIME_E_BADSIG && strcmp(why, "chunk 67: padding byte differs from the pad "
						   "octet") == 0,
		"bad padding byte: got %d (%s)", rc, why);
	n = mk_payload(pt, 11, 0, 175, 176, 175);
	rc = msg_payload_decode(&pl, &why, pt, n, 131);
	T_CHECK(rc == DIME_E_BADSIG && strstr(why, "chunk 131: pad octet") != NULL,
		"bad pad octet: got %d (%s)", rc, why);
	for (unsigned b = 8; b <= 64; b <<= 1) {
		n = mk_payload(pt, 11, (uint8_t)b, 176, 176, 176);
		rc = msg_payload_decode(&pl, &why, pt, n, 33);
		T_CHECK(rc == DIME_E_BADSIG && strstr(why, "reserved") != NULL,
			"reserved flag %u: got %d", b, rc);
	}
	n = mk_payload(pt, 11, 2, 176, 176, 176);
	T_CHECK(msg_payload_decode(&pl, &why, pt, n, 67) == DIME_E_BADSIG, "alt key flag");
	n = mk_payload(pt, 11, 128, 176, 176, 176);
	T_CHECK(msg_payload_decode(&pl, &why, pt, n, 4) == DIME_E_BADSIG, "span on chunk 4");
	T_CHECK(msg_payload_decode(&pl, &why, pt, n, 67) == DIME_OK, "span on chunk 67");
	n = mk_payload(pt, 0, 0, 187, 187, 187);
	T_CHECK(msg_payload_decode(&pl, &why, pt, n, 67) == DIME_E_BADSIG, "zero data length");
	n = mk_payload(pt, 11, 0, 176, 176, 176);
	pt[66] = 200; /* data longer than the payload */
	T_CHECK(msg_payload_decode(&pl, &why, pt, n, 67) == DIME_E_BADSIG, "data overflow");
	/* alternate: 69+11 = 80 aligned, 3 stuffing blocks */
	n = mk_payload(pt, 11, 1, 3, 48, 3);
	T_CHECK(msg_payload_decode(&pl, &why, pt, n, 67) == DIME_OK, "alt pad good: %s", why);
	n = mk_payload(pt, 11, 1, 2, 48, 2);
	T_CHECK(msg_payload_decode(&pl, &why, pt, n, 67) == DIME_E_BADSIG, "alt pad bad");
	n = mk_payload(pt, 12, 1, 1, 31, 1); /* 81 -> 15 alignment + 16 */
	T_CHECK(msg_payload_decode(&pl, &why, pt, n, 67) == DIME_OK, "alt pad align: %s", why);
	/* the generators produce what the checker accepts */
	for (size_t dl = 1; dl < 700; dl += 7)
		for (int alt = 0; alt < 2; alt++) {
			size_t padlen;
			uint8_t pad;

			T_CHECK(msg_padding_choose(&padlen, &pad, dl, alt) == DIME_OK, "choose");
			T_CHECK((69 + dl + padlen) % 16 == 0 && 69 + dl + padlen >= 256 &&
				    69 + dl + padlen <= sizeof(pt),
				"padding %zu alt %d: %zu", dl, alt, padlen);
			n = mk_payload(pt, dl, (uint8_t)alt, pad, padlen, pad);
			T_CHECK(msg_payload_decode(&pl, &why, pt, n, 67) == DIME_OK,
				"generated padding %zu alt %d: %s", dl, alt, why);
		}
}

/* ---- single-bit flips in msg-small ---- */

static void
test_bitflips(void)
{
	const char *names[N_ACTORS] = {"user-alice", "org-alpha", "org-beta", "user-bob"};
	size_t len;
	uint8_t *msg = t_read("msg-small.complete.bin", &len), *buf = malloc(len);
	struct dime_msg_dump d;
	struct dime_msg_chunk_info ch[16];
	const char *why = "";
	size_t i_226 = 7, i_255 = 10;
	struct who w;

	who_init(&w, names);
	T_CHECK(dime_msg_dump(&d, ch, N_OF(ch), &why, msg, len) == DIME_OK, "dump");
	for (size_t i = 0; i < d.n_chunks; i++) {
		/* region -1: the payload; 0..n_slots-1: a keyslot */
		for (int region = -1; region < (int)ch[i].n_slots; region++) {
			size_t at = region < 0
					? ch[i].offset + 4 + ch[i].payload.len / 2
					: (size_t)(ch[i].slots.p - msg) + (size_t)region * 64 + 17;
			char slot = 0;

			if (region >= 0) {
				/* which actor's slot is this? */
				int k = 0;

				for (int a = 0; a < 4; a++)
					if (ch[i].actors & (1 << a)) {
						if (k == region)
							slot = "AODR"[a];
						k++;
					}
			}
			memcpy(buf, msg, len);
			buf[at] ^= 0x10;
			for (int a = 0; a < N_ACTORS; a++) {
				int want_reject, rc;
				size_t guard = a == AUTHOR || a == ORIGIN ? i_226 : i_255;
				char mine = "AODR"[a];

				/* everything before the actor's last checked signature is covered;
				 * that signature chunk itself only through the actor's slot */
				want_reject =
				    i < guard || (i == guard && (region < 0 || slot == mine));
				rc = act(&w, a, buf, len, NULL, &why);
				T_CHECK((rc != DIME_OK) == want_reject,
					"flip chunk %u %s%c as %s: got %d (%s), want %s",
					ch[i].type, region < 0 ? "payload" : "slot ",
					region < 0 ? ' ' : slot, actor_name[a], rc, why,
					want_reject ? "reject" : "accept");
			}
		}
	}
	free(buf);
	free(msg);
}

/* Structural corruption of real messages: every chunk removed, duplicated, or swapped with the
 * next one (outer length fixed up), against every actor's verdict. Only the author and the
 * origin, whose checks stop at 226, may accept a message that lost 248 or 249. */
static void
structural_one(const char *file)
{
	const char *names[N_ACTORS] = {"user-alice", "org-alpha", "org-beta", "user-bob"};
	size_t len, n;
	uint8_t *msg = t_read(file, &len), *buf = malloc(2 * len);
	struct dime_msg_dump d;
	struct dime_msg_chunk_info ch[32];
	const char *why = "";
	static const char *const ops[] = {"remove", "duplicate", "swap with next"};
	struct who w;

	who_init(&w, names);
	if (dime_msg_dump(&d, ch, N_OF(ch), &why, msg, len) != DIME_OK || d.msg_offset != 0) {
		t_fail("%s: dump", file);
		goto out;
	}
	for (size_t i = 0; i < d.n_chunks; i++)
		for (int op = 0; op < 3; op++) {
			if (op == 2 && i + 1 == d.n_chunks)
				continue;
			n = DIME_MSG_HEADER_BYTES;
			memcpy(buf, msg, n);
			for (size_t j = 0; j < d.n_chunks; j++) {
				size_t k = j;

				if (op == 0 && j == i)
					continue;
				if (op == 2 && j == i)
					k = i + 1;
				else if (op == 2 && j == i + 1)
					k = i;
				memcpy(buf + n, ch[k].chunk.p, ch[k].chunk.len);
				n += ch[k].chunk.len;
				if (op == 1 && j == i) {
					memcpy(buf + n, ch[j].chunk.p, ch[j].chunk.len);
					n += ch[j].chunk.len;
				}
			}
			buf[2] = (uint8_t)((n - 6) >> 24);
			buf[3] = (uint8_t)((n - 6) >> 16);
			buf[4] = (uint8_t)((n - 6) >> 8);
			buf[5] = (uint8_t)(n - 6);
			for (int a = 0; a < N_ACTORS; a++) {
				int want_accept = op == 0 && (a == AUTHOR || a == ORIGIN) &&
						  (ch[i].type == DIME_CHUNK_META_BOUNCE ||
						   ch[i].type == DIME_CHUNK_DISPLAY_BOUNCE);
				int rc = act(&w, a, buf, n, NULL, &why);

				T_CHECK((rc == DIME_OK) == want_accept,
					"%s: %s chunk %zu (type %u) as %s: got %d (%s), want %s",
					file, ops[op], i, ch[i].type, actor_name[a], rc, why,
					want_accept ? "accept" : "reject");
			}
		}
out:
	free(buf);
	free(msg);
}

static void
test_structural(void)
{
	structural_one("msg-small.complete.bin");
	structural_one("msg-attach.complete.bin");
}

/* ---- our own messages ---- */

static void
fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 31u + seed) ^ (i >> 7));
}

static void
roundtrip(const char *tag, const size_t *sizes, const uint8_t *types, size_t n_parts,
	  const struct dime_msg_wrap_opts *opts)
{
	const char *names[N_ACTORS] = {"user-alice", "org-alpha", "org-beta", "user-bob"};
	static const char common[] = "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nTo: Bob "
				     "<bob@beta.example>\r\nFrom: Alice <alice@alpha.example>\r\n"
				     "Subject: round trip\r\n";
	static const char other[] = "X-Test: yes\r\n";
	struct dime_msg_part parts[8];
	uint8_t *bufs[8] = {0}, *msg = NULL, *smsg = NULL;
	size_t len = 0, slen = 0;
	struct dime_msg_content c;
	struct dime_msg_envelope env;
	struct dime_msg_opened o;
	const char *why = "";
	struct who w;
	int rc;

	who_init(&w, names);
	for (size_t i = 0; i < n_parts; i++) {
		bufs[i] = malloc(sizes[i] + 1);
		fill(bufs[i], sizes[i], (unsigned)i);
		parts[i].type = types[i];
		parts[i].data.p = bufs[i];
		parts[i].data.len = sizes[i];
	}
	c.common.p = (const uint8_t *)common;
	c.common.len = sizeof(common) - 1;
	c.headers.p = (const uint8_t *)other;
	c.headers.len = sizeof(other) - 1;
	c.parts = parts;
	c.n_parts = n_parts;
	rc = dime_msg_wrap(ks, &msg, &len, &why, &w.ps, w.a[AUTHOR]->key, &c, opts);
	T_CHECK(rc == DIME_OK, "%s: wrap got %d (%s)", tag, rc, why);
	if (rc != DIME_OK)
		goto out;
	rc = act(&w, AUTHOR, msg, len, NULL, &why);
	T_CHECK(rc == DIME_OK, "%s: author re-read got %d (%s)", tag, rc, why);
	rc = dime_msg_origin_sign(ks, &smsg, &slen, &env, &why, msg, len, w.a[ORIGIN]->key,
				  DIME_KS_NONE, &w.ps);
	T_CHECK(rc == DIME_OK && strcmp(env.author, "alice@alpha.example") == 0 &&
		    strcmp(env.destination, "beta.example") == 0,
		"%s: origin-sign got %d (%s)", tag, rc, why);
	if (rc != DIME_OK)
		goto out;
	rc = dime_msg_accept(ks, &env, &why, smsg, slen, w.a[DEST]->key, &w.ps);
	T_CHECK(rc == DIME_OK && strcmp(env.recipient, "bob@beta.example") == 0 &&
		    strcmp(env.origin, "alpha.example") == 0,
		"%s: accept got %d (%s)", tag, rc, why);
	{
		uint8_t fp[DIME_FP_BYTES];

		T_CHECK(dime_signet_fingerprint(fp, w.ps.recipient, DIME_FP_CRYPTO) == DIME_OK &&
			    memcmp(fp, env.recipient_fp, sizeof(fp)) == 0,
			"%s: recipient fingerprint", tag);
	}
	rc = dime_msg_open(ks, &o, &why, smsg, slen, DIME_ACTOR_RECIPIENT, w.a[RECIP]->key, &w.ps);
	T_CHECK(rc == DIME_OK, "%s: recipient open got %d (%s)", tag, rc, why);
	if (rc == DIME_OK) {
		T_CHECK(view_eq(o.common, common) && view_eq(o.headers, other), "%s: headers", tag);
		T_CHECK(o.n_parts == n_parts, "%s: %zu parts, want %zu", tag, o.n_parts, n_parts);
		for (size_t i = 0; i < n_parts && i < o.n_parts; i++)
			T_CHECK(o.parts[i].type == types[i] && o.parts[i].data.len == sizes[i] &&
				    memcmp(o.parts[i].data.p, bufs[i], sizes[i]) == 0,
				"%s: part %zu differs", tag, i);
		/* the flags as received: GZIP on every part when the policy said always */
		for (size_t i = 0;
		     opts != NULL && opts->gzip == DIME_MSG_GZIP_ALWAYS && i < o.n_parts; i++)
			T_CHECK((o.parts[i].flags & DIME_MSG_FLAG_GZIP) != 0,
				"%s: part %zu not gzip", tag, i);
		dime_msg_opened_free(&o);
	}
	/* the other recipient/author keys cannot open it */
	rc = dime_msg_open(ks, &o, &why, smsg, slen, DIME_ACTOR_RECIPIENT, w.a[ORIGIN]->key, &w.ps);
	T_CHECK(rc == DIME_E_BADSIG, "%s: wrong key got %d", tag, rc);
out:
	dime_msg_free(msg, len);
	dime_msg_free(smsg, slen);
	for (size_t i = 0; i < n_parts; i++)
		free(bufs[i]);
}

static void
test_roundtrips(void)
{
	static const size_t s1[] = {1}, s2[] = {50}, s3[] = {186, 187, 188}, s4[] = {100000};
	static const size_t s5[] = {5, 3000, 17, 1, 4096};
	static const uint8_t t1[] = {67}, t3[] = {67, 67, 131}, t5[] = {67, 67, 131, 131, 131};
	struct dime_msg_wrap_opts alt = {DIME_MSG_GZIP_NEVER, DIME_MSG_PAD_ALTERNATE};

	roundtrip("no body", NULL, NULL, 0, NULL);
	roundtrip("1 byte", s1, t1, 1, NULL);
	roundtrip("50 bytes", s2, t1, 1, NULL);
	roundtrip("186/187/188", s3, t3, 3, NULL);
	roundtrip("100000", s4, t1, 1, NULL);
	roundtrip("5 parts", s5, t5, 5, NULL);
	roundtrip("5 parts alternate padding", s5, t5, 5, &alt);
	{
		struct dime_msg_wrap_opts gz = {DIME_MSG_GZIP_ALWAYS, DIME_MSG_PAD_REFERENCE};
		static const size_t s7[] = {0, 70000, 1};
		static const uint8_t t7[] = {67, 131, 131};

		roundtrip("gzip always", s5, t5, 5, &gz);
		roundtrip("gzip always, an empty part", s7, t7, 3, &gz);
		roundtrip("gzip if-smaller, an empty part", s7, t7, 3, NULL);
	}
	/* spanning: one display part over the single-chunk limit (flag 128) */
	{
		static const size_t s6[] = {DIME_MSG_DATA_MAX_BYTES + 1000u, 3};
		static const uint8_t t6[] = {67, 131};

		roundtrip("spanned display", s6, t6, 2, NULL);
	}
	/* 40 MiB: three spanned chunks in one attachment, and the four-chunk boundary around it */
	{
		static const size_t s8[] = {40u << 20}, s9[] = {3u * DIME_MSG_DATA_MAX_BYTES},
				    s10[] = {3u * DIME_MSG_DATA_MAX_BYTES + 1u};
		static const uint8_t t8[] = {131};
		struct dime_msg_wrap_opts raw = {DIME_MSG_GZIP_NEVER, DIME_MSG_PAD_REFERENCE};

		roundtrip("40 MiB attachment", s8, t8, 1, &raw);
		roundtrip("exactly three full chunks", s9, t8, 1, &raw);
		roundtrip("three full chunks and one byte", s10, t8, 1, &raw);
	}
}

/* Org signatures by a SOK with permission bit 2 verify; a foreign key is refused. */
static void
test_sok(void)
{
	const char *names[N_ACTORS] = {"user-alice", "org-alpha", "org-beta", "user-bob"};
	size_t len, slen = 0, kl;
	uint8_t *msg = t_read("msg-small.author-output.bin", &len), *smsg = NULL;
	uint8_t *kb = t_read("org-alpha.sok1.ed25519.pem", &kl);
	struct dime_msg_envelope env;
	const char *why = "";
	uint32_t sok = DIME_KS_NONE;
	struct who w;
	int rc;

	who_init(&w, names);
	T_CHECK(dime_ks_load(ks, &sok, kb, kl) == DIME_OK, "load SOK");
	rc = dime_msg_origin_sign(ks, &smsg, &slen, &env, &why, msg, len, w.a[ORIGIN]->key, sok,
				  &w.ps);
	T_CHECK(rc == DIME_OK, "SOK origin-sign: got %d (%s)", rc, why);
	if (rc == DIME_OK) {
		rc = act(&w, DEST, smsg, slen, NULL, &why);
		T_CHECK(rc == DIME_OK, "SOK-signed accept: got %d (%s)", rc, why);
		rc = act(&w, RECIP, smsg, slen, NULL, &why);
		T_CHECK(rc == DIME_OK, "SOK-signed open: got %d (%s)", rc, why);
	}
	dime_msg_free(smsg, slen);
	smsg = NULL;
	rc = dime_msg_origin_sign(ks, &smsg, &slen, &env, &why, msg, len, w.a[ORIGIN]->key,
				  w.a[DEST]->key, &w.ps);
	T_CHECK(rc == DIME_E_INVALID && smsg == NULL && slen == 0,
		"foreign signing key: got %d, want INVALID", rc);
	/* the origin signet's POK but the wrong author signet: rejected */
	w.ps.author = w.a[RECIP]->signet;
	rc = dime_msg_origin_check(ks, &env, &why, msg, len, w.a[ORIGIN]->key, &w.ps);
	T_CHECK(rc == DIME_E_BADSIG && env.author[0] == 0, "wrong author signet: got %d", rc);
	free(kb);
	free(msg);
}

int
main(void)
{
	t_init();
	if (dime_ks_new(&ks) != DIME_OK)
		return 1;
	test_dump_small();
	test_framing_rules();
	test_payload_rules();
	test_vectors();
	test_bitflips();
	test_structural();
	test_roundtrips();
	test_sok();
	for (size_t i = 0; i < n_parties; i++)
		dime_signet_free(parties[i].signet);
	dime_ks_free(ks);
	return t_done("test_msg");
}

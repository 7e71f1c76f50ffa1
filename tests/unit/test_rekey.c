/* Re-keying (docs/rekey.md): wrap -> origin-sign -> rekey -> open with a keystore holding only
 * the new key gives the same plaintext; every original signature still verifies (origin check,
 * accept, author open, of the container and of the bytes it carries); re-keying twice replaces
 * the record; old keys no longer open it; forged records (random slots, another message's
 * record, swapped slots, another user's message handed over) give BADSIG and no plaintext;
 * every strict prefix and one-bit flips in the record are rejected; the interop messages
 * re-keyed to fresh signets open. */

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

struct party {
	const char *name;
	uint32_t key;
	struct dime_signet *signet;
};

static struct dime_ks *ks; /* the interop parties' keys */
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

/* A fresh user: its key alone in its own keystore, its signet signed by org. */
struct user {
	struct dime_ks *ks;
	uint32_t key;
	struct dime_signet *signet;
};

static void
user_new(struct user *u, const char *address, const struct party *org)
{
	struct dime_signet *ssr = NULL;

	memset(u, 0, sizeof(*u));
	if (dime_ks_new(&u->ks) != DIME_OK ||
	    dime_ks_generate(u->ks, &u->key, DIME_KEY_USER) != DIME_OK ||
	    dime_signet_ssr_create(&ssr, u->ks, u->key, DIME_KS_NONE) != DIME_OK ||
	    dime_signet_ssr_sign(&u->signet, ssr, NULL, org->signet, ks, org->key, NULL, 0,
				 address) != DIME_OK) {
		fprintf(stderr, "cannot create user %s\n", address);
		exit(1);
	}
	dime_signet_free(ssr);
}

static void
user_free(struct user *u)
{
	dime_signet_free(u->signet);
	dime_ks_free(u->ks);
	memset(u, 0, sizeof(*u));
}

static int
view_same(struct dime_view a, struct dime_view b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* Same plaintext and envelope. */
static int
opened_same(const struct dime_msg_opened *a, const struct dime_msg_opened *b)
{
	if (!view_same(a->common, b->common) || !view_same(a->headers, b->headers) ||
	    a->n_parts != b->n_parts || memcmp(&a->env, &b->env, sizeof(a->env)) != 0)
		return 0;
	for (size_t i = 0; i < a->n_parts; i++)
		if (a->parts[i].type != b->parts[i].type ||
		    !view_same(a->parts[i].data, b->parts[i].data))
			return 0;
	return 1;
}

static int
released_nothing(const struct dime_msg_opened *o)
{
	return o->parts == NULL && o->common.p == NULL && o->headers.p == NULL && o->n_parts == 0;
}

static void
fp_of(uint8_t fp[DIME_FP_BYTES], const struct dime_signet *s)
{
	if (dime_signet_fingerprint(fp, s, DIME_FP_CRYPTO) != DIME_OK) {
		fprintf(stderr, "no fingerprint\n");
		exit(1);
	}
}

/* alice -> recipient, origin-signed by org-alpha. */
static uint8_t *
make_msg(size_t *len, const struct dime_signet *recipient, const char *body)
{
	static const char common[] = "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nTo: Bob "
				     "<bob@beta.example>\r\nFrom: Alice <alice@alpha.example>\r\n"
				     "Subject: re-key\r\n";
	static const char other[] = "X-Test: rekey\r\n";
	struct party *a = party_get("user-alice"), *o = party_get("org-alpha"),
		     *d = party_get("org-beta");
	struct dime_msg_parties p = {a->signet, o->signet, d->signet, recipient};
	struct dime_msg_part parts[2];
	struct dime_msg_content c;
	struct dime_msg_envelope env;
	uint8_t *msg = NULL, *smsg = NULL;
	size_t mlen = 0;
	const char *why = "";

	parts[0].type = DIME_CHUNK_DISPLAY;
	parts[0].data.p = (const uint8_t *)body;
	parts[0].data.len = strlen(body);
	parts[1].type = DIME_CHUNK_ATTACH;
	parts[1].data.p = (const uint8_t *)"attachment bytes\x00\x01\x02";
	parts[1].data.len = 19;
	c.common.p = (const uint8_t *)common;
	c.common.len = sizeof(common) - 1;
	c.headers.p = (const uint8_t *)other;
	c.headers.len = sizeof(other) - 1;
	c.parts = parts;
	c.n_parts = 2;
	*len = 0;
	if (dime_msg_wrap(ks, &msg, &mlen, &why, &p, a->key, &c, NULL) != DIME_OK ||
	    dime_msg_origin_sign(ks, &smsg, len, &env, &why, msg, mlen, o->key, DIME_KS_NONE, &p) !=
		DIME_OK) {
		fprintf(stderr, "cannot build a message: %s\n", why);
		exit(1);
	}
	dime_msg_free(msg, mlen);
	return smsg;
}

static struct dime_msg_parties
parties_for(const struct dime_signet *recipient)
{
	struct dime_msg_parties p = {party_get("user-alice")->signet,
				     party_get("org-alpha")->signet, party_get("org-beta")->signet,
				     recipient};

	return p;
}

/* Open as the recipient; *o is freed unless keep. Returns the code. */
static int
open_r(const struct dime_ks *k, uint32_t key, const uint8_t *in, size_t len,
       const struct dime_signet *recipient, struct dime_msg_opened *o, const char **why)
{
	struct dime_msg_parties p = parties_for(recipient);
	struct dime_msg_opened tmp;
	int rc;

	rc = dime_msg_open(k, o != NULL ? o : &tmp, why, in, len, DIME_ACTOR_RECIPIENT, key, &p);
	if (o == NULL) {
		T_CHECK(rc == DIME_OK || released_nothing(&tmp), "plaintext released on failure");
		dime_msg_opened_free(&tmp);
	}
	return rc;
}

/* What an attacker who knows a message's chunk keys can write without the engine's writer: a
 * container with a record for new_signet, built from the parts the engine exposes. */
static uint8_t *
forge_container(size_t *out_len, const uint8_t *msg, size_t len, const struct dime_ks *k_old,
		uint32_t old_key, const uint8_t old_fp[DIME_FP_BYTES],
		const struct dime_signet *new_signet)
{
	struct msg_parsed m;
	struct msg_kek kold, knew;
	struct msg_ckey ck;
	uint8_t priv[32], eph[33], enc[33], x[32], new_fp[DIME_FP_BYTES], *b;
	size_t n = 0, off, body;
	const char *why = "";

	if (msg_parse(&m, &why, msg, len) != DIME_OK ||
	    msg_kek_for(k_old, &kold, old_key, m.eph) != DIME_OK ||
	    dime_signet_enc_key(new_signet, enc) != DIME_OK ||
	    dime_secp_keygen(priv, eph) != DIME_OK || dime_secp_ecdh_x(x, priv, enc) != DIME_OK) {
		fprintf(stderr, "forge: setup failed\n");
		exit(1);
	}
	memset(&knew, 0, sizeof(knew));
	msg_kek_derive(&knew, x);
	fp_of(new_fp, new_signet);
	for (size_t i = 0; i < m.d.n_chunks; i++)
		n += (m.ch[i].actors & DIME_ACTOR_RECIPIENT) != 0;
	body = 1 + 64 + 64 + 33 + 4 + n * 68 + len;
	b = malloc(6 + body);
	b[0] = 0x07;
	b[1] = 0x3a; /* 1850 */
	b[2] = (uint8_t)(body >> 24);
	b[3] = (uint8_t)(body >> 16);
	b[4] = (uint8_t)(body >> 8);
	b[5] = (uint8_t)body;
	b[6] = 1;
	memcpy(b + 7, old_fp, 64);
	memcpy(b + 71, new_fp, 64);
	memcpy(b + 135, eph, 33);
	b[168] = (uint8_t)(n >> 24);
	b[169] = (uint8_t)(n >> 16);
	b[170] = (uint8_t)(n >> 8);
	b[171] = (uint8_t)n;
	off = 172;
	for (size_t i = 0; i < m.d.n_chunks; i++) {
		if ((m.ch[i].actors & DIME_ACTOR_RECIPIENT) == 0)
			continue;
		b[off] = (uint8_t)(i >> 24);
		b[off + 1] = (uint8_t)(i >> 16);
		b[off + 2] = (uint8_t)(i >> 8);
		b[off + 3] = (uint8_t)i;
		if (msg_slot_open(&ck, &m.ch[i], DIME_ACTOR_RECIPIENT, &kold) != DIME_OK ||
		    msg_slot_seal(b + off + 4, &ck, &knew) != DIME_OK) {
			fprintf(stderr, "forge: slot\n");
			exit(1);
		}
		off += 68;
	}
	memcpy(b + off, msg, len);
	*out_len = off + len;
	msg_parsed_free(&m);
	return b;
}

/* ---- wrap, rekey, open; signatures; replacement ---- */

static void
test_roundtrip_and_replace(void)
{
	struct party *alice = party_get("user-alice"), *alpha = party_get("org-alpha"),
		     *beta = party_get("org-beta"), *bob = party_get("user-bob");
	struct user bob2, bob3;
	struct dime_msg_parties p;
	struct dime_msg_rekey_info info, info2;
	struct dime_msg_opened o0, o1, o;
	struct dime_msg_envelope env;
	struct dime_msg_dump d0, d1;
	struct dime_msg_chunk_info ch0[32], ch1[32];
	uint8_t *smsg, *c1 = NULL, *c2 = NULL, *bad = NULL, fp[DIME_FP_BYTES];
	size_t slen, c1_len = 0, c2_len = 0, bad_len = 0;
	const char *why = "";
	int rc;

	user_new(&bob2, "bob@beta.example", beta);
	user_new(&bob3, "bob@beta.example", beta);
	smsg = make_msg(&slen, bob->signet, "hello, re-keyed world\r\n");
	rc = open_r(ks, bob->key, smsg, slen, bob->signet, &o0, &why);
	T_CHECK(rc == DIME_OK, "plain open: got %d (%s)", rc, why);

	/* plain: not re-keyed */
	rc = dime_msg_rekey_info(&info, &why, smsg, slen);
	T_CHECK(rc == DIME_OK && !info.rekeyed && info.message.p == smsg &&
		    info.message.len == slen,
		"info of a plain message: got %d rekeyed %d", rc, info.rekeyed);

	p = parties_for(bob->signet);
	rc = dime_msg_rekey(ks, &c1, &c1_len, &why, smsg, slen, bob->key, bob2.signet, &p);
	T_CHECK(rc == DIME_OK, "rekey: got %d (%s)", rc, why);
	if (rc != DIME_OK)
		goto out;
	/* the original bytes, bit-identical, at the end; one record before them */
	T_CHECK(c1_len > slen && memcmp(c1 + c1_len - slen, smsg, slen) == 0,
		"container does not end with the original message");
	T_CHECK(c1[0] == 0x07 && c1[1] == 0x3a, "container magic is not 1850");
	rc = dime_msg_rekey_info(&info, &why, c1, c1_len);
	fp_of(fp, bob->signet);
	T_CHECK(rc == DIME_OK && info.rekeyed && memcmp(info.old_fp, fp, 64) == 0, "info old fp");
	fp_of(fp, bob2.signet);
	T_CHECK(rc == DIME_OK && memcmp(info.new_fp, fp, 64) == 0, "info new fp");
	T_CHECK(info.message.len == slen && memcmp(info.message.p, smsg, slen) == 0,
		"info message");
	T_CHECK(dime_msg_dump(&d0, ch0, N_OF(ch0), &why, smsg, slen) == DIME_OK &&
		    dime_msg_dump(&d1, ch1, N_OF(ch1), &why, c1, c1_len) == DIME_OK,
		"dump of the container: %s", why);
	T_CHECK(d1.n_chunks == d0.n_chunks && info.n_slots == d0.n_chunks - 1,
		"dump: %zu chunks, want %zu; %zu slots", d1.n_chunks, d0.n_chunks, info.n_slots);
	T_CHECK(info.record.len == 166 + 68 * info.n_slots &&
		    info.record.p + info.record.len == info.message.p && info.record.p == c1 + 6,
		"record view: %zu bytes", info.record.len);
	for (size_t i = 0; i < d0.n_chunks && i < d1.n_chunks; i++)
		T_CHECK(ch1[i].offset == ch0[i].offset + (c1_len - slen) &&
			    ch1[i].type == ch0[i].type,
			"dump chunk %zu offset %zu, want %zu", i, ch1[i].offset,
			ch0[i].offset + (c1_len - slen));
	T_CHECK(d1.msg_offset == c1_len - slen, "dump msg_offset %zu", d1.msg_offset);

	/* the new key alone (its own keystore) opens it, same plaintext */
	rc = open_r(bob2.ks, bob2.key, c1, c1_len, bob2.signet, &o1, &why);
	T_CHECK(rc == DIME_OK, "open with the new key only: got %d (%s)", rc, why);
	if (rc == DIME_OK) {
		T_CHECK(opened_same(&o0, &o1), "re-keyed plaintext differs");
		dime_msg_opened_free(&o1);
	}
	rc =
	    dime_msg_envelope_peek(bob2.ks, &env, &why, c1, c1_len, DIME_ACTOR_RECIPIENT, bob2.key);
	T_CHECK(rc == DIME_OK && strcmp(env.recipient, "bob@beta.example") == 0, "peek new key: %d",
		rc);
	/* the new signet is required; the old key no longer opens it through the record */
	rc = open_r(bob2.ks, bob2.key, c1, c1_len, NULL, NULL, &why);
	T_CHECK(rc == DIME_E_BADSIG, "no recipient signet: got %d, want BADSIG", rc);
	rc = open_r(bob2.ks, bob2.key, c1, c1_len, bob->signet, NULL, &why);
	T_CHECK(rc == DIME_E_BADSIG, "old signet given: got %d, want BADSIG", rc);
	rc = open_r(ks, bob->key, c1, c1_len, bob2.signet, NULL, &why);
	T_CHECK(rc == DIME_E_BADSIG, "old key on the container: got %d, want BADSIG", rc);
	rc = open_r(ks, bob->key, c1, c1_len, bob->signet, NULL, &why);
	T_CHECK(rc == DIME_E_BADSIG, "old key+signet on the container: got %d, want BADSIG", rc);
	rc = dime_msg_envelope_peek(ks, &env, &why, c1, c1_len, DIME_ACTOR_RECIPIENT, bob->key);
	T_CHECK(rc != DIME_OK, "peek with the old key: got %d", rc);

	/* every original signature still verifies: the other actors ignore the record */
	p = parties_for(bob2.signet);
	rc = dime_msg_origin_check(ks, &env, &why, c1, c1_len, alpha->key, &p);
	T_CHECK(rc == DIME_OK, "origin check of the container: got %d (%s)", rc, why);
	rc = dime_msg_accept(ks, &env, &why, c1, c1_len, beta->key, &p);
	T_CHECK(rc == DIME_OK, "accept of the container: got %d (%s)", rc, why);
	p = parties_for(bob->signet);
	rc = dime_msg_open(ks, &o, &why, c1, c1_len, DIME_ACTOR_AUTHOR, alice->key, &p);
	T_CHECK(rc == DIME_OK, "author open of the container: got %d (%s)", rc, why);
	dime_msg_opened_free(&o);
	rc = dime_msg_open(ks, &o, &why, info.message.p, info.message.len, DIME_ACTOR_AUTHOR,
			   alice->key, &p);
	T_CHECK(rc == DIME_OK, "author open of the inner bytes: got %d (%s)", rc, why);
	dime_msg_opened_free(&o);
	rc = dime_msg_accept(ks, &env, &why, info.message.p, info.message.len, beta->key, &p);
	T_CHECK(rc == DIME_OK, "accept of the inner bytes: got %d (%s)", rc, why);

	/* refusals: a new signet for someone else; a key that does not open the message */
	rc = dime_msg_rekey(ks, &bad, &bad_len, &why, smsg, slen, bob->key, alice->signet, &p);
	T_CHECK(rc == DIME_E_INVALID && bad == NULL && bad_len == 0,
		"rekey to another user's signet: got %d, want INVALID", rc);
	rc = dime_msg_rekey(ks, &bad, &bad_len, &why, smsg, slen, alice->key, bob2.signet, &p);
	T_CHECK(rc == DIME_E_BADSIG && bad == NULL, "rekey with a wrong key: got %d, want BADSIG",
		rc);
	p = parties_for(bob2.signet);
	rc = dime_msg_rekey(ks, &bad, &bad_len, &why, c1, c1_len, bob->key, bob3.signet, &p);
	T_CHECK(rc == DIME_E_BADSIG && bad == NULL,
		"rekey a container with the key it replaced: got %d, want BADSIG", rc);
	p = parties_for(bob->signet);
	rc = dime_msg_rekey(bob2.ks, &bad, &bad_len, &why, c1, c1_len, bob2.key, bob3.signet, &p);
	T_CHECK(rc == DIME_E_BADSIG && bad == NULL,
		"rekey a container naming the old signet: got %d, want BADSIG", rc);

	/* twice: the record is replaced, not stacked */
	p = parties_for(bob2.signet);
	rc = dime_msg_rekey(bob2.ks, &c2, &c2_len, &why, c1, c1_len, bob2.key, bob3.signet, &p);
	T_CHECK(rc == DIME_OK, "rekey twice: got %d (%s)", rc, why);
	if (rc != DIME_OK)
		goto out;
	rc = dime_msg_rekey_info(&info2, &why, c2, c2_len);
	fp_of(fp, bob3.signet);
	T_CHECK(rc == DIME_OK && info2.rekeyed && memcmp(info2.new_fp, fp, 64) == 0 &&
		    memcmp(info2.old_fp, info.old_fp, 64) == 0,
		"second record's fingerprints");
	T_CHECK(c2_len == c1_len && info2.n_slots == info.n_slots && info2.message.len == slen &&
		    memcmp(info2.message.p, smsg, slen) == 0,
		"second container: %zu bytes, want %zu (one record, same message)", c2_len, c1_len);
	T_CHECK(memcmp(info2.record.p + 135, info.record.p + 135, 33) != 0,
		"second record reuses the ephemeral key");
	rc = open_r(bob3.ks, bob3.key, c2, c2_len, bob3.signet, &o1, &why);
	T_CHECK(rc == DIME_OK, "open twice re-keyed with the newest key: got %d (%s)", rc, why);
	if (rc == DIME_OK) {
		T_CHECK(opened_same(&o0, &o1), "twice re-keyed plaintext differs");
		dime_msg_opened_free(&o1);
	}
	rc = open_r(bob2.ks, bob2.key, c2, c2_len, bob2.signet, NULL, &why);
	T_CHECK(rc == DIME_E_BADSIG, "second-newest key on the new container: got %d, want BADSIG",
		rc);
	rc = open_r(bob2.ks, bob2.key, c2, c2_len, bob3.signet, NULL, &why);
	T_CHECK(rc == DIME_E_BADSIG, "second-newest key, newest signet: got %d, want BADSIG", rc);
	rc = open_r(ks, bob->key, c2, c2_len, bob->signet, NULL, &why);
	T_CHECK(rc == DIME_E_BADSIG, "original key on the new container: got %d, want BADSIG", rc);
out:
	dime_msg_opened_free(&o0);
	dime_msg_free(c1, c1_len);
	dime_msg_free(c2, c2_len);
	free(smsg);
	user_free(&bob2);
	user_free(&bob3);
}

/* ---- forged records ---- */

static void
test_forged(void)
{
	struct party *bob = party_get("user-bob"), *beta = party_get("org-beta");
	struct user bob2, eve;
	struct dime_msg_parties p;
	struct dime_msg_rekey_info info, info_b;
	struct dime_msg_opened o;
	uint8_t *smsg, *smsg2, *c1 = NULL, *cb = NULL, *f = NULL, fp[DIME_FP_BYTES];
	size_t slen, slen2, c1_len = 0, cb_len = 0, f_len = 0;
	const char *why = "";
	int rc;

	user_new(&bob2, "bob@beta.example", beta);
	user_new(&eve, "eve@beta.example", beta);
	smsg = make_msg(&slen, bob->signet, "first message\r\n");
	smsg2 = make_msg(&slen2, bob->signet, "other message\r\n");
	p = parties_for(bob->signet);
	if (dime_msg_rekey(ks, &c1, &c1_len, &why, smsg, slen, bob->key, bob2.signet, &p) !=
		DIME_OK ||
	    dime_msg_rekey(ks, &cb, &cb_len, &why, smsg2, slen2, bob->key, bob2.signet, &p) !=
		DIME_OK ||
	    dime_msg_rekey_info(&info, &why, c1, c1_len) != DIME_OK ||
	    dime_msg_rekey_info(&info_b, &why, cb, cb_len) != DIME_OK) {
		t_fail("forged: setup: %s", why);
		goto out;
	}
	f = malloc(c1_len);
	/* (a) random keyslots */
	memcpy(f, c1, c1_len);
	for (size_t j = 0; j < info.n_slots; j++)
		dime_random(f + 6 + 166 + j * 68 + 4, 64);
	memset(&o, 0xa5, sizeof(o));
	rc = open_r(bob2.ks, bob2.key, f, c1_len, bob2.signet, &o, &why);
	T_CHECK(rc == DIME_E_BADSIG && released_nothing(&o), "random slots: got %d (%s)", rc, why);
	dime_msg_opened_free(&o);
	/* (b) the record of another message (same layout), spliced in */
	T_CHECK(info.record.len == info_b.record.len, "forged: records differ in size");
	memcpy(f, c1, c1_len);
	memcpy(f + 6, info_b.record.p, info.record.len);
	rc = open_r(bob2.ks, bob2.key, f, c1_len, bob2.signet, &o, &why);
	T_CHECK(rc == DIME_E_BADSIG && released_nothing(&o),
		"another message's record: got %d (%s)", rc, why);
	dime_msg_opened_free(&o);
	/* (c) two of its own slots swapped (chunks 4 and 5), and one slot of chunk 33 only */
	memcpy(f, c1, c1_len);
	memcpy(f + 6 + 166 + 4, c1 + 6 + 166 + 68 + 4, 64);
	memcpy(f + 6 + 166 + 68 + 4, c1 + 6 + 166 + 4, 64);
	rc = open_r(bob2.ks, bob2.key, f, c1_len, bob2.signet, NULL, &why);
	T_CHECK(rc == DIME_E_BADSIG, "swapped slots: got %d (%s)", rc, why);
	memcpy(f, c1, c1_len);
	memcpy(f + 6 + 166 + 2 * 68 + 4, info_b.record.p + 166 + 2 * 68 + 4, 64);
	rc = open_r(bob2.ks, bob2.key, f, c1_len, bob2.signet, NULL, &why);
	T_CHECK(rc == DIME_E_BADSIG, "one foreign slot: got %d (%s)", rc, why);
	free(f);
	f = NULL;

	/* (d) the forger's own tool works: a record built outside the engine for bob's message
	 * and bob's new signet opens (the control for (e)) */
	fp_of(fp, bob->signet);
	f = forge_container(&f_len, smsg, slen, ks, bob->key, fp, bob2.signet);
	rc = open_r(bob2.ks, bob2.key, f, f_len, bob2.signet, NULL, &why);
	T_CHECK(rc == DIME_OK, "forge control: got %d (%s)", rc, why);
	free(f);
	/* (e) eve, who can read a message addressed to her, hands it to bob's new signet with a
	 * record that is honest about her fingerprint: every signature holds, but chunk 5 names
	 * eve as the recipient, so bob's open refuses it */
	{
		uint8_t *em, *forged;
		size_t em_len, forged_len;
		struct dime_msg_parties pe = parties_for(eve.signet);
		struct dime_msg_opened oe;

		em = make_msg(&em_len, eve.signet, "for eve only\r\n");
		rc = dime_msg_open(eve.ks, &oe, &why, em, em_len, DIME_ACTOR_RECIPIENT, eve.key,
				   &pe);
		T_CHECK(rc == DIME_OK, "eve's message opens for eve: %d (%s)", rc, why);
		dime_msg_opened_free(&oe);
		rc = dime_msg_rekey(eve.ks, &forged, &forged_len, &why, em, em_len, eve.key,
				    bob2.signet, &pe);
		T_CHECK(rc == DIME_E_INVALID, "rekey eve's message to bob: got %d, want INVALID",
			rc);
		fp_of(fp, eve.signet);
		forged = forge_container(&forged_len, em, em_len, eve.ks, eve.key, fp, bob2.signet);
		rc = open_r(bob2.ks, bob2.key, forged, forged_len, bob2.signet, &o, &why);
		T_CHECK(rc == DIME_E_BADSIG && strstr(why, "Recipient") != NULL &&
			    released_nothing(&o),
			"eve's message handed to bob: got %d (%s), want BADSIG", rc, why);
		dime_msg_opened_free(&o);
		/* lying about the old fingerprint instead: chunk 5 is author-signed */
		free(forged);
		fp_of(fp, bob->signet);
		forged = forge_container(&forged_len, em, em_len, eve.ks, eve.key, fp, bob2.signet);
		rc = open_r(bob2.ks, bob2.key, forged, forged_len, bob2.signet, NULL, &why);
		T_CHECK(rc == DIME_E_BADSIG, "eve's message, bob's old fingerprint: got %d (%s)",
			rc, why);
		free(forged);
		free(em);
	}
out:
	dime_msg_free(c1, c1_len);
	dime_msg_free(cb, cb_len);
	free(smsg);
	free(smsg2);
	user_free(&bob2);
	user_free(&eve);
}

/* ---- truncation and bit flips ---- */

static void
test_framing(void)
{
	struct party *bob = party_get("user-bob"), *beta = party_get("org-beta");
	struct user bob2;
	struct dime_msg_parties p;
	struct dime_msg_rekey_info info;
	struct dime_msg_dump d;
	struct dime_msg_opened o;
	uint8_t *smsg, *c1 = NULL, *f = NULL;
	size_t slen, c1_len = 0, flips = 0, head;
	const char *why = "";
	int rc;

	user_new(&bob2, "bob@beta.example", beta);
	smsg = make_msg(&slen, bob->signet, "framing\r\n");
	p = parties_for(bob->signet);
	if (dime_msg_rekey(ks, &c1, &c1_len, &why, smsg, slen, bob->key, bob2.signet, &p) !=
		DIME_OK ||
	    dime_msg_rekey_info(&info, &why, c1, c1_len) != DIME_OK) {
		t_fail("framing: setup: %s", why);
		goto out;
	}
	/* every strict prefix: TRUNCATED from the parser, nothing from open */
	for (size_t k = 0; k < c1_len; k++) {
		const uint8_t *g = t_at_page_end(0, c1, k);

		rc = dime_msg_dump(&d, NULL, 0, &why, g, k);
		if (rc != DIME_E_TRUNCATED) {
			t_fail("prefix %zu: dump got %d (%s), want TRUNCATED", k, rc, why);
			break;
		}
		rc = dime_msg_rekey_info(&info, &why, g, k);
		if (rc != DIME_E_TRUNCATED) {
			t_fail("prefix %zu: info got %d (%s), want TRUNCATED", k, rc, why);
			break;
		}
		rc = open_r(bob2.ks, bob2.key, g, k, bob2.signet, NULL, &why);
		if (rc != DIME_E_TRUNCATED) {
			t_fail("prefix %zu: open got %d (%s), want TRUNCATED", k, rc, why);
			break;
		}
	}
	T_CHECK(dime_msg_rekey_info(&info, &why, c1, c1_len) == DIME_OK, "info");
	/* one bit flipped in each byte of the container header and the record */
	f = malloc(c1_len + 1);
	head = 6 + info.record.len;
	for (size_t i = 0; i < head; i++) {
		memcpy(f, c1, c1_len);
		f[i] ^= (uint8_t)(1u << (i % 8));
		memset(&o, 0, sizeof(o));
		rc = open_r(bob2.ks, bob2.key, t_at_page_end(1, f, c1_len), c1_len, bob2.signet, &o,
			    &why);
		if (rc == DIME_OK || !released_nothing(&o)) {
			t_fail("flip at %zu: got %d, want a rejection", i, rc);
			dime_msg_opened_free(&o);
			break;
		}
		/* slots and fingerprints are not framing: they fail as BADSIG */
		if (i >= 7 && i < 7 + 128)
			T_CHECK(rc == DIME_E_BADSIG, "flip in a fingerprint at %zu: got %d", i, rc);
		if (i >= 6 + 166 && (i - 6 - 166) % 68 >= 4)
			T_CHECK(rc == DIME_E_BADSIG, "flip in a slot at %zu: got %d", i, rc);
		if (i == 6)
			T_CHECK(rc == DIME_E_MALFORMED, "flip in the version: got %d", rc);
		flips++;
	}
	T_CHECK(flips == head, "flips: %zu of %zu", flips, head);
	/* a trailing byte; a container inside a container */
	memcpy(f, c1, c1_len);
	f[c1_len] = 0;
	rc = dime_msg_dump(&d, NULL, 0, &why, f, c1_len + 1);
	T_CHECK(rc == DIME_E_TRAILING, "trailing byte: got %d", rc);
	{
		uint8_t *n2 = NULL;
		size_t n2_len = 0;
		struct dime_msg_rekey_info i2;

		/* wrap c1 as if it were the message: the inner magic must be 1847 */
		n2 = malloc(c1_len + info.record.len + 6);
		memcpy(n2, c1, 6 + info.record.len);
		memcpy(n2 + 6 + info.record.len, c1, c1_len);
		n2_len = c1_len + info.record.len + 6;
		{
			size_t body = n2_len - 6;

			n2[2] = (uint8_t)(body >> 24);
			n2[3] = (uint8_t)(body >> 16);
			n2[4] = (uint8_t)(body >> 8);
			n2[5] = (uint8_t)body;
		}
		rc = dime_msg_rekey_info(&i2, &why, n2, n2_len);
		T_CHECK(rc == DIME_E_MALFORMED, "nested container: got %d (%s)", rc, why);
		free(n2);
	}
	/* a record with one slot too few (count fixed up): the count must match the message */
	{
		size_t l2 = c1_len - 68, body = l2 - 6;
		uint32_t n = (uint32_t)info.n_slots - 1;

		memcpy(f, c1, 6 + 166 + 68 * n);
		memcpy(f + 6 + 166 + 68 * n, c1 + 6 + info.record.len, slen);
		f[2] = (uint8_t)(body >> 24);
		f[3] = (uint8_t)(body >> 16);
		f[4] = (uint8_t)(body >> 8);
		f[5] = (uint8_t)body;
		f[6 + 165] = (uint8_t)n;
		rc = dime_msg_dump(&d, NULL, 0, &why, f, l2);
		T_CHECK(rc == DIME_E_MALFORMED, "one slot short: got %d (%s)", rc, why);
	}
out:
	free(f);
	dime_msg_free(c1, c1_len);
	free(smsg);
	user_free(&bob2);
}

/* ---- the reference's messages, re-keyed to fresh signets ---- */

static void
test_interop(void)
{
	static const struct {
		const char *file;
		const char *party[4]; /* author, origin, destination, recipient */
		int opens;
	} cases[] = {
	    {"msg-small.complete.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 1},
	    {"msg-attach.complete.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 1},
	    {"msg-large.complete.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 1},
	    {"msg-reverse.complete.bin", {"user-bob", "org-beta", "org-alpha", "user-carol-v2"}, 1},
	    {"x-tracing-prefix.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 1},
	    {"x-tree-sig-spec-literal.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 1},
	    /* the recipient rejects these, so they are never re-keyed */
	    {"msg-metabounce.complete.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 0},
	    {"x-bad-padding-byte.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 0},
	    {"x-bad-org-sig-bitflip.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 0},
	};

	for (size_t k = 0; k < N_OF(cases); k++) {
		struct party *a = party_get(cases[k].party[0]), *o = party_get(cases[k].party[1]),
			     *d = party_get(cases[k].party[2]), *r = party_get(cases[k].party[3]);
		struct dime_msg_parties p = {a->signet, o->signet, d->signet, r->signet}, p2;
		struct dime_msg_opened o0, o1;
		struct dime_msg_rekey_info info;
		struct dime_view id;
		struct user nu;
		char addr[DIME_MSG_ADDR_MAX];
		size_t len, c_len = 0;
		uint8_t *msg = t_read(cases[k].file, &len), *c = NULL;
		const char *why = "";
		int rc;

		if (dime_signet_identifier(r->signet, &id) != DIME_OK || id.len >= sizeof(addr)) {
			t_fail("%s: recipient has no identifier", cases[k].file);
			free(msg);
			continue;
		}
		memcpy(addr, id.p, id.len);
		addr[id.len] = 0;
		user_new(&nu, addr, d);
		rc = dime_msg_rekey(ks, &c, &c_len, &why, msg, len, r->key, nu.signet, &p);
		if (!cases[k].opens) {
			T_CHECK(rc != DIME_OK && c == NULL && c_len == 0,
				"%s: a message the recipient rejects was re-keyed (%d)",
				cases[k].file, rc);
			goto next;
		}
		T_CHECK(rc == DIME_OK, "%s: rekey got %d (%s)", cases[k].file, rc, why);
		if (rc != DIME_OK)
			goto next;
		rc = dime_msg_rekey_info(&info, &why, c, c_len);
		T_CHECK(rc == DIME_OK && info.rekeyed && info.message.len == len &&
			    memcmp(info.message.p, msg, len) == 0,
			"%s: the container does not carry the original bytes", cases[k].file);
		p2 = p;
		p2.recipient = nu.signet;
		rc = dime_msg_open(ks, &o0, &why, msg, len, DIME_ACTOR_RECIPIENT, r->key, &p);
		T_CHECK(rc == DIME_OK, "%s: plain open %d", cases[k].file, rc);
		rc = dime_msg_open(nu.ks, &o1, &why, c, c_len, DIME_ACTOR_RECIPIENT, nu.key, &p2);
		T_CHECK(rc == DIME_OK, "%s: re-keyed open with the new key only: got %d (%s)",
			cases[k].file, rc, why);
		if (rc == DIME_OK)
			T_CHECK(opened_same(&o0, &o1), "%s: plaintext differs", cases[k].file);
		dime_msg_opened_free(&o0);
		dime_msg_opened_free(&o1);
		rc = dime_msg_open(ks, &o1, &why, c, c_len, DIME_ACTOR_RECIPIENT, r->key, &p2);
		T_CHECK(rc == DIME_E_BADSIG, "%s: old key opens the container: %d", cases[k].file,
			rc);
		dime_msg_opened_free(&o1);
next:
		dime_msg_free(c, c_len);
		user_free(&nu);
		free(msg);
	}
}

int
main(void)
{
	t_init();
	if (dime_ks_new(&ks) != DIME_OK)
		return 1;
	test_roundtrip_and_replace();
	test_forged();
	test_framing();
	test_interop();
	for (size_t i = 0; i < n_parties; i++)
		dime_signet_free(parties[i].signet);
	dime_ks_free(ks);
	return t_done("test_rekey");
}

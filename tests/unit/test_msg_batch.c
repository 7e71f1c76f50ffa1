/* Batched engine calls give exactly the one-at-a-time results: dime_ed25519_verify_batch against
 * dime_ed25519_verify (RFC 8032, random, corrupted, non-canonical and small-order inputs);
 * dime_ks_ecdh_batch and dime_secp_ecdh_x_batch against single ECDH; and every dime_msg_*_batch
 * over a few hundred generated and interop messages, valid and corrupted, in batches of 1, 2, 7
 * and 64: each job's rc, why, envelope and outputs equal the single call's. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dime/codec.h"
#include "dime/crypto.h"
#include "dime/keys.h"
#include "dime/msg.h"
#include "dime/signet.h"
#include "tlib.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static struct dime_ks *ks;

/* Reproducible choices (the crypto itself draws from randombytes). */

/* ---- Ed25519 batch ---- */

static const uint8_t ed_L[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
				 0xa2, 0xde, 0xf9, 0xde, 0x14, 0,    0,	   0,	 0,    0,    0,
				 0,    0,    0,	   0,	 0,    0,    0,	   0,	 0,    0x10};

struct ed_item {
	uint8_t sig[64], pub[32], msg[80];
	size_t msg_len;
};

/* s += L (little-endian): a non-canonical S that a strict verifier refuses. */
static void
ed_add_L(uint8_t s[32])
{
	unsigned c = 0;

	for (int i = 0; i < 32; i++) {
		c += (unsigned)s[i] + ed_L[i];
		s[i] = (uint8_t)c;
		c >>= 8;
	}
}

static size_t
ed_load_rfc(struct ed_item *it, size_t cap)
{
	char path[1024], line[2048];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/ed25519_rfc8032.txt", DIME_VECTORS_DIR);
	if ((f = fopen(path, "r")) == NULL) {
		t_fail("cannot open %s", path);
		return 0;
	}
	while (fgets(line, sizeof(line), f) != NULL && n < cap) {
		char *eq = strstr(line, " = "), *v;
		size_t got = 0;

		if (line[0] == '#' || eq == NULL)
			continue;
		v = eq + 3;
		v[strcspn(v, "\r\n")] = 0;
		if (strncmp(line, "pub", 3) == 0)
			T_CHECK(dime_hex_decode(it[n].pub, 32, &got, v, strlen(v)) == DIME_OK,
				"rfc pub");
		else if (strncmp(line, "msg", 3) == 0) {
			T_CHECK(dime_hex_decode(it[n].msg, sizeof(it[n].msg), &got, v, strlen(v)) ==
				    DIME_OK,
				"rfc msg");
			it[n].msg_len = got;
		} else if (strncmp(line, "sig", 3) == 0) {
			T_CHECK(dime_hex_decode(it[n].sig, 64, &got, v, strlen(v)) == DIME_OK,
				"rfc sig");
			n++;
		}
	}
	fclose(f);
	return n;
}

static void
test_ed25519_batch(void)
{
	struct ed_item it[400];
	struct dime_ed25519_check c[400];
	uint8_t ok[400];
	size_t n = ed_load_rfc(it, 3), n_bad = 0;
	static const size_t sizes[] = {0, 1, 2, 7, 64, 400};

	T_CHECK(n == 3, "rfc8032 vectors: got %zu, want 3", n);
	while (n < N_OF(it)) {
		struct ed_item *e = &it[n];
		uint8_t seed[32];
		unsigned kind = t_rand_below(10);

		dime_random(seed, sizeof(seed));
		e->msg_len = t_rand_below(sizeof(e->msg) + 1);
		dime_random(e->msg, e->msg_len);
		if (dime_ed25519_pub(e->pub, seed) != DIME_OK ||
		    dime_ed25519_sign(e->sig, seed, e->msg, e->msg_len) != DIME_OK)
			t_fail("ed25519 sign");
		switch (kind) {
		case 0: e->sig[t_rand_below(64)] ^= (uint8_t)(1u << t_rand_below(8)); break;
		case 1: e->pub[t_rand_below(32)] ^= (uint8_t)(1u << t_rand_below(8)); break;
		case 2:
			if (e->msg_len > 0)
				e->msg[t_rand_below((uint32_t)e->msg_len)] ^= 1;
			else
				e->msg_len = 1;
			break;
		case 3: ed_add_L(e->sig + 32); break; /* S + L: non-canonical */
		case 4:				      /* small-order public key: the identity */
			memset(e->pub, 0, 32);
			e->pub[0] = 1;
			break;
		case 5: /* non-canonical encoding: y = p + 1 */
			memset(e->pub, 0xff, 32);
			e->pub[0] = 0xee;
			e->pub[31] = 0x7f;
			break;
		case 6: /* small-order R (the identity) */
			memset(e->sig, 0, 32);
			e->sig[0] = 1;
			break;
		default: break; /* valid */
		}
		n++;
	}
	/* shuffle so every batch mixes valid and invalid */
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = t_rand_below((uint32_t)(i + 1));
		struct ed_item tmp = it[i];

		it[i] = it[j];
		it[j] = tmp;
	}
	for (size_t i = 0; i < n; i++) {
		c[i].sig = it[i].sig;
		c[i].pub = it[i].pub;
		c[i].msg = it[i].msg;
		c[i].msg_len = it[i].msg_len;
	}
	for (size_t s = 0; s < N_OF(sizes); s++) {
		size_t bs = sizes[s];

		for (size_t off = 0; off < n && bs > 0; off += bs) {
			size_t k = off + bs <= n ? bs : n - off;
			int want_all = DIME_OK, rc, rc2;

			memset(ok, 0xaa, sizeof(ok));
			rc = dime_ed25519_verify_batch(c + off, k, ok);
			rc2 = dime_ed25519_verify_batch(c + off, k, NULL);
			for (size_t i = 0; i < k; i++) {
				int want = dime_ed25519_verify(c[off + i].sig, c[off + i].pub,
							       c[off + i].msg,
							       c[off + i].msg_len) == DIME_OK;

				if (!want)
					want_all = DIME_E_BADSIG;
				T_CHECK(ok[i] == (uint8_t)want,
					"ed25519 batch %zu, item %zu: got %u, want %d", bs, off + i,
					ok[i], want);
			}
			T_CHECK(rc == want_all && rc2 == want_all,
				"ed25519 batch %zu at %zu: got %d/%d, want %d", bs, off, rc, rc2,
				want_all);
		}
	}
	T_CHECK(dime_ed25519_verify_batch(c, 0, ok) == DIME_OK, "empty batch");
	for (size_t i = 0; i < n; i++)
		n_bad += dime_ed25519_verify(c[i].sig, c[i].pub, c[i].msg, c[i].msg_len) != DIME_OK;
	T_CHECK(n_bad > 50 && n_bad < n - 50, "ed25519 mix: %zu bad of %zu", n_bad, n);
}

/* ---- ECDH batch ---- */

static void
test_ecdh_batch(uint32_t org_key, uint32_t user_key, uint32_t sign_key)
{
	enum { N = 40 };
	uint8_t pubs[N][33], x[N][32], privs[N][32], want_x[32];
	int rc[N];
	const uint32_t ids[] = {org_key, user_key, sign_key, 9999};

	for (size_t i = 0; i < N; i++) {
		uint8_t priv[32];

		if (dime_secp_keygen(priv, pubs[i]) != DIME_OK)
			t_fail("keygen");
		memcpy(privs[i], priv, 32);
		switch (i % 7) {
		case 3: pubs[i][0] = 0x04; break;		   /* not a compressed point */
		case 5: memset(pubs[i] + 1, 0xff, 32); break;	   /* x >= p */
		case 6: pubs[i][1 + t_rand_below(32)] ^= 1; break; /* maybe off the curve */
		default: break;
		}
	}
	for (size_t k = 0; k < N_OF(ids); k++) {
		int all = DIME_OK, got;

		memset(x, 0xaa, sizeof(x));
		got = dime_ks_ecdh_batch(ks, ids[k], (const uint8_t(*)[33])pubs, N, x, rc);
		for (size_t i = 0; i < N; i++) {
			int w = dime_ks_ecdh(ks, want_x, ids[k], pubs[i]);

			if (w != DIME_OK && all == DIME_OK)
				all = w;
			T_CHECK(rc[i] == w && memcmp(x[i], want_x, 32) == 0,
				"ks_ecdh_batch key %u item %zu: got %d, want %d", ids[k], i, rc[i],
				w);
		}
		T_CHECK(got == all, "ks_ecdh_batch key %u: got %d, want %d", ids[k], got, all);
	}
	/* pairs: each private key against the next item's point */
	{
		uint8_t ppubs[N][33];
		int all = DIME_OK, got;

		for (size_t i = 0; i < N; i++)
			memcpy(ppubs[i], pubs[(i + 1) % N], 33);
		got = dime_secp_ecdh_x_batch((const uint8_t(*)[32])privs,
					     (const uint8_t(*)[33])ppubs, N, x, rc);
		for (size_t i = 0; i < N; i++) {
			int w = dime_secp_ecdh_x(want_x, privs[i], ppubs[i]);

			if (w != DIME_OK && all == DIME_OK)
				all = w;
			T_CHECK(rc[i] == w && memcmp(x[i], want_x, 32) == 0,
				"secp_ecdh_x_batch item %zu: got %d, want %d", i, rc[i], w);
		}
		T_CHECK(got == all, "secp_ecdh_x_batch: got %d, want %d", got, all);
	}
	dime_wipe(privs, sizeof(privs));
	dime_wipe(x, sizeof(x));
}

/* ---- parties ---- */

struct org {
	const char *name;
	uint32_t key, sok; /* sok: a SOK with the messages bit, or DIME_KS_NONE */
	struct dime_signet *s;
};

struct user {
	const char *name;
	uint32_t key;
	int org;
	struct dime_signet *s;
};

static struct org orgs[8];
static struct user users[16];
static size_t n_orgs, n_users;

static uint32_t
load_key(const char *file)
{
	size_t len;
	uint8_t *b = t_read(file, &len);
	uint32_t id = DIME_KS_NONE;

	T_CHECK(dime_ks_load(ks, &id, b, len) == DIME_OK, "load %s", file);
	free(b);
	return id;
}

static struct dime_signet *
load_signet(const char *file)
{
	size_t len;
	uint8_t *b = t_read(file, &len);
	struct dime_signet *s = NULL;
	const char *why = "";

	T_CHECK(dime_signet_load(&s, &why, b, len) == DIME_OK, "load %s: %s", file, why);
	free(b);
	return s;
}

static int
interop_org(const char *name, const char *sok_file)
{
	char f[128];
	struct org *o = &orgs[n_orgs];

	o->name = name;
	snprintf(f, sizeof(f), "%s.keys.pem", name);
	o->key = load_key(f);
	snprintf(f, sizeof(f), "%s.signet.pem", name);
	o->s = load_signet(f);
	o->sok = sok_file != NULL ? load_key(sok_file) : DIME_KS_NONE;
	return (int)n_orgs++;
}

static void
interop_user(const char *name, int org)
{
	char f[128];
	struct user *u = &users[n_users++];

	u->name = name;
	u->org = org;
	snprintf(f, sizeof(f), "%s.keys.pem", name);
	u->key = load_key(f);
	snprintf(f, sizeof(f), "%s.signet.pem", name);
	u->s = load_signet(f);
}

static int
gen_org(const char *domain, int with_sok)
{
	struct org *o = &orgs[n_orgs];
	struct dime_signet_sok_spec soks[2];
	uint32_t other = DIME_KS_NONE;
	size_t ns = 0;

	o->name = domain;
	o->sok = DIME_KS_NONE;
	T_CHECK(dime_ks_generate(ks, &o->key, DIME_KEY_ORG) == DIME_OK, "generate org");
	if (with_sok) {
		/* a SOK without the messages bit first: the batch must skip it as
		 * msg_org_verify does */
		T_CHECK(dime_ks_generate(ks, &other, DIME_KEY_SIGN) == DIME_OK &&
			    dime_ks_generate(ks, &o->sok, DIME_KEY_SIGN) == DIME_OK,
			"generate SOKs");
		soks[ns++] = (struct dime_signet_sok_spec){other, DIME_SOK_TLS};
		soks[ns++] = (struct dime_signet_sok_spec){o->sok, DIME_SOK_MESSAGES};
	}
	T_CHECK(dime_signet_org_create(&o->s, ks, o->key, soks, ns, NULL, 0, domain) == DIME_OK,
		"org_create %s", domain);
	return (int)n_orgs++;
}

static void
gen_user(const char *addr, int org)
{
	struct user *u = &users[n_users++];
	struct dime_signet *ssr = NULL;

	u->name = addr;
	u->org = org;
	T_CHECK(dime_ks_generate(ks, &u->key, DIME_KEY_USER) == DIME_OK, "generate user");
	T_CHECK(dime_signet_ssr_create(&ssr, ks, u->key, DIME_KS_NONE) == DIME_OK, "ssr %s", addr);
	T_CHECK(dime_signet_ssr_sign(&u->s, ssr, NULL, orgs[org].s, ks, orgs[org].key, NULL, 0,
				     addr) == DIME_OK,
		"ssr_sign %s", addr);
	dime_signet_free(ssr);
}

/* ---- messages ---- */

/* One input of the corpus with the parties it names. */
struct item {
	uint8_t *msg;
	size_t len;
	int author, recip; /* users[] */
	int signed_;	   /* origin-signed (complete) */
	struct dime_msg_parties p;
	uint32_t key_delta; /* 1: use a wrong key for the job */
};

static struct item items[1200];
static size_t n_items;

static void
parties_of(struct dime_msg_parties *p, int a, int r)
{
	p->author = users[a].s;
	p->origin = orgs[users[a].org].s;
	p->destination = orgs[users[r].org].s;
	p->recipient = users[r].s;
}

static struct item *
item_add(uint8_t *msg, size_t len, int a, int r, int signed_)
{
	struct item *it;

	if (n_items == N_OF(items)) {
		free(msg);
		return NULL;
	}
	it = &items[n_items++];
	memset(it, 0, sizeof(*it));
	it->msg = msg;
	it->len = len;
	it->author = a;
	it->recip = r;
	it->signed_ = signed_;
	parties_of(&it->p, a, r);
	return it;
}

static uint8_t *
dup_bytes(const uint8_t *p, size_t len)
{
	uint8_t *d = malloc(len > 0 ? len : 1);

	if (d == NULL) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	if (len > 0)
		memcpy(d, p, len);
	return d;
}

static char *
make_mail(size_t *len, int k)
{
	size_t body =
	    k % 17 == 0 ? 100000u + (size_t)t_rand_below(5000) : 40u + (size_t)t_rand_below(600);
	size_t cap = body + 512;
	char *m = malloc(cap);
	int n;

	if (m == NULL)
		exit(1);
	n = snprintf(m, cap,
		     "From: a%d@example\r\nTo: b@example\r\nSubject: batch %d\r\n"
		     "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n\r\n",
		     k, k);
	for (size_t i = 0; i < body; i++)
		m[(size_t)n + i] = (char)(i % 64 == 63 ? '\n' : 'a' + (char)t_rand_below(26));
	*len = (size_t)n + body;
	return m;
}

/* Flip one bit of msg inside the given kind of region. */
static void
corrupt(uint8_t *msg, size_t len, int how)
{
	struct dime_msg_chunk_info ch[64];
	struct dime_msg_dump d;
	const char *why = "";
	size_t n_ch = 0;

	if (dime_msg_dump(&d, ch, N_OF(ch), &why, msg, len) == DIME_OK)
		n_ch = d.n_chunks;
	if (n_ch == 0 || how == 0) {
		msg[t_rand_below((uint32_t)len)] ^= (uint8_t)(1u << t_rand_below(8));
		return;
	}
	for (int tries = 0; tries < 32; tries++) {
		const struct dime_msg_chunk_info *c = &ch[t_rand_below((uint32_t)n_ch)];

		if (how == 1 && c->n_slots > 0) { /* a keyslot */
			msg[c->slots.p - msg + t_rand_below((uint32_t)c->slots.len)] ^= 0x01;
			return;
		}
		if (how == 2 && c->type >= DIME_CHUNK_TREE_SIG) { /* a signature chunk */
			msg[c->payload.p - msg + t_rand_below((uint32_t)c->payload.len)] ^= 0x80;
			return;
		}
		if (how == 3 && c->type > DIME_CHUNK_EPHEMERAL && c->type < DIME_CHUNK_TREE_SIG) {
			msg[c->payload.p - msg + t_rand_below((uint32_t)c->payload.len)] ^= 0x04;
			return;
		}
	}
	msg[t_rand_below((uint32_t)len)] ^= 0x20;
}

/* Variants of a message: corrupted copies, a truncation, wrong parties. */
static void
add_variants(const struct item *base)
{
	int a = base->author, r = base->recip;
	struct item *it;

	for (int how = 0; how < 4; how++) {
		uint8_t *m = dup_bytes(base->msg, base->len);

		corrupt(m, base->len, how);
		item_add(m, base->len, a, r, base->signed_);
	}
	item_add(dup_bytes(base->msg, base->len), 1 + t_rand_below((uint32_t)base->len - 1), a, r,
		 base->signed_);
	/* the wrong author, then the wrong origin/destination signets */
	it = item_add(dup_bytes(base->msg, base->len), base->len, a, r, base->signed_);
	if (it != NULL)
		it->p.author = users[(size_t)(a + 1) % n_users].s;
	it = item_add(dup_bytes(base->msg, base->len), base->len, a, r, base->signed_);
	if (it != NULL) {
		it->p.origin = orgs[(size_t)(users[a].org + 1) % n_orgs].s;
		it->p.destination = orgs[(size_t)(users[r].org + 1) % n_orgs].s;
	}
	it = item_add(dup_bytes(base->msg, base->len), base->len, a, r, base->signed_);
	if (it != NULL)
		it->key_delta = 1;
}

static const struct {
	const char *file;
	const char *who[4]; /* author, origin, destination, recipient */
	int signed_;
} interop_msgs[] = {
    {"msg-small.complete.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 1},
    {"msg-attach.complete.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 1},
    {"msg-large.complete.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 1},
    {"msg-reverse.complete.bin", {"user-bob", "org-beta", "org-alpha", "user-carol-v2"}, 1},
    {"msg-metabounce.complete.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 1},
    {"msg-small.author-output.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 0},
    {"msg-attach.author-output.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 0},
    {"msg-attach-desc.author-output.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 0},
    {"msg-reverse.author-output.bin", {"user-bob", "org-beta", "org-alpha", "user-carol-v2"}, 0},
    {"x-resealed-clean.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 1},
    {"x-bad-padding-byte.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 1},
    {"x-bad-org-sig-bitflip.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 1},
    {"x-truncated.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 1},
    {"x-bad-magic.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 1},
    {"x-tree-sig-spec-literal.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 1},
    {"x-tracing-prefix.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 1},
    {"x-reserved-flag.bin", {"user-alice", "org-alpha", "org-beta", "user-bob"}, 1},
};

static int
user_by_name(const char *name)
{
	for (size_t i = 0; i < n_users; i++)
		if (strcmp(users[i].name, name) == 0)
			return (int)i;
	t_fail("no user %s", name);
	return 0;
}

/* ---- comparing one job with the single call ---- */

static int
view_same(struct dime_view a, struct dime_view b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static int
opened_same(const struct dime_msg_opened *a, const struct dime_msg_opened *b)
{
	if (memcmp(&a->env, &b->env, sizeof(a->env)) != 0 || !view_same(a->common, b->common) ||
	    !view_same(a->headers, b->headers) || a->common_flags != b->common_flags ||
	    a->headers_flags != b->headers_flags || a->n_parts != b->n_parts)
		return 0;
	for (size_t i = 0; i < a->n_parts; i++)
		if (a->parts[i].type != b->parts[i].type ||
		    a->parts[i].flags != b->parts[i].flags ||
		    !view_same(a->parts[i].data, b->parts[i].data))
			return 0;
	return 1;
}

enum op {
	OP_ORIGIN_SIGN,
	OP_ORIGIN_SIGN_SOK,
	OP_ACCEPT,
	OP_OPEN_AUTHOR,
	OP_OPEN_RECIP,
	OP_BOUNCE,
	OP_COUNT
};
static const char *const op_name[OP_COUNT] = {"origin-sign",  "origin-sign(SOK)", "accept",
					      "open(author)", "open(recipient)",  "bounce-verify"};

static uint32_t
job_key(enum op op, const struct item *it)
{
	uint32_t k;

	switch (op) {
	case OP_ORIGIN_SIGN:
	case OP_ORIGIN_SIGN_SOK:
	case OP_BOUNCE: k = orgs[users[it->author].org].key; break;
	case OP_ACCEPT: k = orgs[users[it->recip].org].key; break;
	case OP_OPEN_AUTHOR: k = users[it->author].key; break;
	default: k = users[it->recip].key; break;
	}
	return it->key_delta ? k + 1 : k;
}

/* The single call's result for job j. */
static void
single(enum op op, uint32_t sign_key, struct dime_msg_job *j)
{
	memset(&j->env, 0, sizeof(j->env));
	j->out = NULL;
	j->out_len = 0;
	memset(&j->opened, 0, sizeof(j->opened));
	j->why = NULL;
	switch (op) {
	case OP_ORIGIN_SIGN:
	case OP_ORIGIN_SIGN_SOK:
		j->rc = dime_msg_origin_sign(ks, &j->out, &j->out_len, &j->env, &j->why, j->in,
					     j->in_len, j->key, sign_key, j->p);
		break;
	case OP_ACCEPT:
		j->rc = dime_msg_accept(ks, &j->env, &j->why, j->in, j->in_len, j->key, j->p);
		break;
	case OP_OPEN_AUTHOR:
	case OP_OPEN_RECIP:
		j->rc = dime_msg_open(
		    ks, &j->opened, &j->why, j->in, j->in_len,
		    op == OP_OPEN_AUTHOR ? DIME_ACTOR_AUTHOR : DIME_ACTOR_RECIPIENT, j->key, j->p);
		j->env = j->opened.env;
		break;
	default:
		j->rc = dime_msg_bounce_verify(ks, j->bounce, &j->why, j->in, j->in_len, j->key,
					       j->p->origin);
		j->env = j->bounce->env;
		break;
	}
}

static int
batch(enum op op, uint32_t sign_key, struct dime_msg_job *jobs, size_t n)
{
	switch (op) {
	case OP_ORIGIN_SIGN:
	case OP_ORIGIN_SIGN_SOK: return dime_msg_origin_sign_batch(ks, jobs, n, sign_key);
	case OP_ACCEPT: return dime_msg_accept_batch(ks, jobs, n);
	case OP_OPEN_AUTHOR: return dime_msg_open_batch(ks, jobs, n, DIME_ACTOR_AUTHOR);
	case OP_OPEN_RECIP: return dime_msg_open_batch(ks, jobs, n, DIME_ACTOR_RECIPIENT);
	default: return dime_msg_bounce_verify_batch(ks, jobs, n);
	}
}

static void
job_free(struct dime_msg_job *j)
{
	dime_msg_free(j->out, j->out_len);
	dime_msg_opened_free(&j->opened);
	j->out = NULL;
	j->out_len = 0;
}

struct run_stats {
	size_t jobs, ok, reruns, reruns_ok, sigs, peeked;
};

/* Run every input through op one at a time, then in batches of each size, and compare. */
static void
compare_op(enum op op, uint32_t sign_key, const uint8_t *const *in, const size_t *in_len,
	   const struct dime_msg_parties *const *p, const uint32_t *keys, size_t n,
	   struct run_stats *st)
{
	static const size_t sizes[] = {1, 2, 7, 64};
	static const enum dime_msg_actor op_actor[OP_COUNT] = {
	    DIME_ACTOR_ORIGIN, DIME_ACTOR_ORIGIN,    DIME_ACTOR_DESTINATION,
	    DIME_ACTOR_AUTHOR, DIME_ACTOR_RECIPIENT, DIME_ACTOR_ORIGIN};
	struct dime_msg_job *want = calloc(n, sizeof(*want)), *got = calloc(n, sizeof(*got));
	struct dime_msg_keks *memo = NULL;
	struct dime_msg_bounce_info *wb = calloc(n, sizeof(*wb)), *gb = calloc(n, sizeof(*gb));

	if (want == NULL || got == NULL || wb == NULL || gb == NULL ||
	    dime_msg_keks_new(&memo, 16) != DIME_OK)
		exit(1);
	for (size_t i = 0; i < n; i++) {
		want[i].in = in[i];
		want[i].in_len = in_len[i];
		want[i].p = p[i];
		want[i].key = keys[i];
		want[i].bounce = &wb[i];
		single(op, sign_key, &want[i]);
		st->ok += want[i].rc == DIME_OK;
	}
	st->jobs += n;
	for (size_t s = 0; s < N_OF(sizes); s++) {
		for (size_t i = 0; i < n; i++) {
			memset(&got[i], 0x5a, sizeof(got[i])); /* outputs must all be written */
			got[i].in = in[i];
			got[i].in_len = in_len[i];
			got[i].p = p[i];
			got[i].key = keys[i];
			got[i].bounce = op == OP_BOUNCE ? &gb[i] : NULL;
			got[i].keks = NULL;
			got[i].own = 0; /* an input: never our own wrap output here */
		}
		for (size_t off = 0; off < n; off += sizes[s]) {
			size_t k = off + sizes[s] <= n ? sizes[s] : n - off;
			int rc, first = DIME_OK;

			/* batches of 7 first peek every job through a memo, as the pipeline does:
			 * the KEKs then come from the memo and nothing may change */
			if (sizes[s] == 7 && op != OP_BOUNCE) {
				dime_msg_keks_clear(memo);
				for (size_t i = off; i < off + k; i++) {
					struct dime_msg_envelope env;
					const char *why = "";

					/* a failed peek leaves the memo as is: the job's
					 * verdict must still equal the single call's */
					if (dime_msg_envelope_peek_memo(memo, ks, &env, &why, in[i],
									in_len[i], op_actor[op],
									keys[i]) == DIME_OK)
						st->peeked++;
					got[i].keks = memo;
				}
			}
			rc = batch(op, sign_key, got + off, k);

			for (size_t i = off; i < off + k; i++)
				if (want[i].rc != DIME_OK && first == DIME_OK)
					first = want[i].rc;
			T_CHECK(rc == first, "%s batch %zu at %zu: returned %d, want %d",
				op_name[op], sizes[s], off, rc, first);
		}
		for (size_t i = 0; i < n; i++) {
			const struct dime_msg_job *w = &want[i], *g = &got[i];

			if (g->rc != w->rc || g->why != w->why ||
			    memcmp(&g->env, &w->env, sizeof(w->env)) != 0 ||
			    g->out_len != w->out_len ||
			    (w->out_len > 0 && memcmp(g->out, w->out, w->out_len) != 0) ||
			    !opened_same(&g->opened, &w->opened) ||
			    (op == OP_BOUNCE && memcmp(&gb[i], &wb[i], sizeof(wb[i])) != 0))
				t_fail("%s batch %zu job %zu: got %d (%s), want %d (%s)%s",
				       op_name[op], sizes[s], i, g->rc, g->why, w->rc, w->why,
				       g->rc == w->rc && g->why == w->why ? ": outputs differ"
									  : "");
			if (sizes[s] == 64) {
				st->reruns += g->rerun;
				st->reruns_ok += g->rerun && g->rc == DIME_OK;
				st->sigs += g->n_batched;
			}
			job_free(&got[i]);
		}
	}
	for (size_t i = 0; i < n; i++)
		job_free(&want[i]);
	free(want);
	free(got);
	free(wb);
	free(gb);
	dime_msg_keks_free(memo);
}

/* ---- wrap ---- */

static void
test_wrap_batch(uint8_t **mails, size_t *mail_lens, size_t n_mails)
{
	struct dime_msg_job *want = calloc(n_mails, sizeof(*want)),
			    *got = calloc(n_mails, sizeof(*got));
	struct dime_msg_parties *ps = calloc(n_mails, sizeof(*ps));
	size_t n_ok = 0;

	if (want == NULL || got == NULL || ps == NULL)
		exit(1);
	for (size_t i = 0; i < n_mails; i++) {
		int a = (int)t_rand_below((uint32_t)n_users),
		    r = (int)t_rand_below((uint32_t)n_users);
		uint32_t key = users[a].key;

		parties_of(&ps[i], a, r);
		switch (i % 11) {
		case 3: key = users[(size_t)(a + 1) % n_users].key; break; /* wrong author key */
		case 5: ps[i].recipient = NULL; break;
		case 7: ps[i].destination = users[r].s; break; /* fine: a user has an enc key */
		case 9: key = orgs[0].sok; break;	       /* a sign-only key */
		default: break;
		}
		want[i].in = got[i].in = mails[i];
		want[i].in_len = got[i].in_len = mail_lens[i];
		want[i].p = got[i].p = &ps[i];
		want[i].key = got[i].key = key;
		want[i].rc = dime_msg_wrap_mail(ks, &want[i].out, &want[i].out_len, &want[i].why,
						&ps[i], key, mails[i], mail_lens[i], NULL);
	}
	for (size_t off = 0; off < n_mails; off += 7) {
		size_t k = off + 7 <= n_mails ? 7 : n_mails - off;

		(void)!dime_msg_wrap_mail_batch(ks, got + off, k, NULL);
	}
	for (size_t i = 0; i < n_mails; i++) {
		const struct dime_msg_job *w = &want[i], *g = &got[i];

		T_CHECK(g->rc == w->rc && g->why == w->why && (g->out != NULL) == (w->out != NULL),
			"wrap batch job %zu: got %d (%s), want %d (%s)", i, g->rc, g->why, w->rc,
			w->why);
		/* random parts differ; the sizes and what the author reads back must not */
		if (g->rc == DIME_OK && w->rc == DIME_OK) {
			struct dime_msg_opened o;
			const char *why = "";
			uint8_t *mail = NULL;
			size_t mail_len = 0;
			int rc;

			n_ok++;
			rc = dime_msg_open(ks, &o, &why, g->out, g->out_len, DIME_ACTOR_AUTHOR,
					   g->key, g->p);
			if (rc == DIME_OK && dime_msg_opened_mail(&mail, &mail_len, &o) == DIME_OK)
				T_CHECK(mail_len == g->in_len && memcmp(mail, g->in, mail_len) == 0,
					"wrap batch job %zu: the mail does not come back", i);
			else
				t_fail("wrap batch job %zu: author cannot open: %d (%s)", i, rc,
				       why);
			free(mail);
			dime_msg_opened_free(&o);
		}
		job_free(&want[i]);
		job_free(&got[i]);
	}
	T_CHECK(n_ok > n_mails / 2 && n_ok < n_mails, "wrap: %zu of %zu ok", n_ok, n_mails);
	free(want);
	free(got);
	free(ps);
}

int
main(void)
{
	enum { N_GEN = 90 };
	uint8_t *mails[N_GEN];
	size_t mail_lens[N_GEN], n_base;
	int alpha, beta, gamma, delta;

	t_init();
	if (dime_ks_new(&ks) != DIME_OK)
		return 1;
	test_ed25519_batch();

	alpha = interop_org("org-alpha", "org-alpha.sok1.ed25519.pem");
	beta = interop_org("org-beta", NULL);
	gamma = gen_org("gamma.example", 1);
	delta = gen_org("delta.example", 0);
	interop_user("user-alice", alpha);
	interop_user("user-bob", beta);
	interop_user("user-carol-v2", alpha);
	gen_user("gina@gamma.example", gamma);
	gen_user("gus@gamma.example", gamma);
	gen_user("dora@delta.example", delta);
	gen_user("dan@delta.example", delta);
	test_ecdh_batch(orgs[gamma].key, users[3].key, orgs[gamma].sok);
	if (t_failures > 0)
		return t_done("test_msg_batch");

	/* generated: wrap, then origin-sign (by the POK, or by a SOK where the org has one) */
	for (int k = 0; k < N_GEN; k++) {
		int a = (int)t_rand_below((uint32_t)n_users),
		    r = (int)t_rand_below((uint32_t)n_users);
		struct dime_msg_parties p;
		struct dime_msg_envelope env;
		uint8_t *msg = NULL, *signed_msg = NULL;
		size_t len = 0, slen = 0;
		const char *why = "";
		uint32_t sk = (k % 2 && orgs[users[a].org].sok != DIME_KS_NONE)
				  ? orgs[users[a].org].sok
				  : DIME_KS_NONE;
		struct item *it;

		mails[k] = (uint8_t *)make_mail(&mail_lens[k], k);
		parties_of(&p, a, r);
		if (dime_msg_wrap_mail(ks, &msg, &len, &why, &p, users[a].key, mails[k],
				       mail_lens[k], NULL) != DIME_OK) {
			t_fail("wrap %d: %s", k, why);
			continue;
		}
		if (dime_msg_origin_sign(ks, &signed_msg, &slen, &env, &why, msg, len,
					 orgs[users[a].org].key, sk, &p) != DIME_OK) {
			t_fail("origin-sign %d: %s", k, why);
			dime_msg_free(msg, len);
			continue;
		}
		item_add(dup_bytes(msg, len), len, a, r, 0); /* author output */
		it = item_add(dup_bytes(signed_msg, slen), slen, a, r, 1);
		dime_msg_free(msg, len);
		dime_msg_free(signed_msg, slen);
		if (it != NULL && k % 3 == 0)
			add_variants(it);
	}
	n_base = n_items;
	for (size_t i = 0; i < N_OF(interop_msgs); i++) {
		size_t len;
		uint8_t *m = t_read(interop_msgs[i].file, &len);
		struct item *it =
		    item_add(m, len, user_by_name(interop_msgs[i].who[0]),
			     user_by_name(interop_msgs[i].who[3]), interop_msgs[i].signed_);

		if (it != NULL && i < 2)
			add_variants(it);
	}
	printf("corpus: %zu messages (%zu generated)\n", n_items, n_base);
	{
		const uint8_t **in = calloc(N_OF(items), sizeof(*in));
		size_t *lens = calloc(N_OF(items), sizeof(*lens));
		const struct dime_msg_parties **ps = calloc(N_OF(items), sizeof(*ps));
		uint32_t *keys = calloc(N_OF(items), sizeof(*keys));
		uint8_t *bounces[N_OF(items)];
		size_t n_b = 0;
		struct dime_msg_parties bparties[N_OF(items)];

		if (in == NULL || lens == NULL || ps == NULL || keys == NULL)
			return 1;
		for (int op = OP_ORIGIN_SIGN; op < OP_BOUNCE; op++) {
			struct run_stats st;
			/* the SOK run signs everything with gamma's SOK: other origins refuse */
			uint32_t sk = op == OP_ORIGIN_SIGN_SOK ? orgs[gamma].sok : DIME_KS_NONE;

			memset(&st, 0, sizeof(st));
			for (size_t i = 0; i < n_items; i++) {
				in[i] = items[i].msg;
				lens[i] = items[i].len;
				ps[i] = &items[i].p;
				keys[i] = job_key((enum op)op, &items[i]);
			}
			compare_op((enum op)op, sk, in, lens, ps, keys, n_items, &st);
			printf("%-17s %zu jobs, %zu ok, batch of 64: %zu checks batched, %zu "
			       "re-runs (%zu of them ok)\n",
			       op_name[op], st.jobs, st.ok, st.sigs, st.reruns, st.reruns_ok);
			T_CHECK(st.ok > 0 && st.ok < st.jobs, "%s: %zu of %zu ok", op_name[op],
				st.ok, st.jobs);
			/* the memo path must really have been taken (peeks that opened envelopes)
			 */
			T_CHECK(st.peeked > 0, "%s: no peek through the memo succeeded",
				op_name[op]);
			/* only a spec-literal tree signature (one interop variant) may cost a
			 * valid job its batch result */
			T_CHECK(st.reruns_ok <= 2, "%s: %zu valid jobs were re-run", op_name[op],
				st.reruns_ok);
		}
		/* bounces of every message the destination accepts, some corrupted */
		for (size_t i = 0; i < n_items && n_b < 300; i++) {
			const struct item *it = &items[i];
			uint8_t *b = NULL;
			size_t blen = 0;
			const char *why = "";

			if (it->key_delta ||
			    dime_msg_bounce(ks, &b, &blen, &why, it->msg, it->len,
					    orgs[users[it->recip].org].key, &it->p,
					    DIME_BOUNCE_REFUSED, "no", (int)(i % 2)) != DIME_OK)
				continue;
			bparties[n_b] = it->p;
			keys[n_b] = orgs[users[it->author].org].key;
			switch (i % 5) {
			case 1: b[t_rand_below((uint32_t)blen)] ^= 0x08; break;
			case 2: blen = 1 + t_rand_below((uint32_t)blen - 1); break;
			case 3:
				bparties[n_b].origin =
				    orgs[(size_t)(users[it->author].org + 1) % n_orgs].s;
				break;
			default: break;
			}
			bounces[n_b] = b;
			in[n_b] = b;
			lens[n_b] = blen;
			ps[n_b] = &bparties[n_b];
			n_b++;
		}
		{
			struct run_stats st;

			memset(&st, 0, sizeof(st));
			compare_op(OP_BOUNCE, DIME_KS_NONE, in, lens, ps, keys, n_b, &st);
			printf("%-17s %zu jobs, %zu ok, batch of 64: %zu checks batched, %zu "
			       "re-runs (%zu of them ok)\n",
			       op_name[OP_BOUNCE], st.jobs, st.ok, st.sigs, st.reruns,
			       st.reruns_ok);
			T_CHECK(st.ok > 0 && st.ok < st.jobs && st.reruns_ok == 0,
				"bounce: %zu of %zu ok, %zu valid re-runs", st.ok, st.jobs,
				st.reruns_ok);
		}
		for (size_t i = 0; i < n_b; i++)
			free(bounces[i]);
		/* NULL jobs, empty batches */
		T_CHECK(dime_msg_accept_batch(ks, NULL, 1) == DIME_E_INVALID, "NULL jobs");
		T_CHECK(dime_msg_accept_batch(ks, NULL, 0) == DIME_OK, "empty batch");
		free(in);
		free(lens);
		free(ps);
		free(keys);
	}
	test_wrap_batch(mails, mail_lens, N_GEN);

	for (size_t i = 0; i < n_items; i++)
		free(items[i].msg);
	for (int i = 0; i < N_GEN; i++)
		free(mails[i]);
	for (size_t i = 0; i < n_users; i++)
		dime_signet_free(users[i].s);
	for (size_t i = 0; i < n_orgs; i++)
		dime_signet_free(orgs[i].s);
	dime_ks_free(ks);
	return t_done("test_msg_batch");
}

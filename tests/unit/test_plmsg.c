/* The message path (dime/plmsg.h) and the party directory (dime/dir.h): every operation on good
 * and bad input, "not a D/MIME message: <why>" for inputs that are not one, missing parties
 * named, bounce-verify with more than 64 hosted organisations, the signet cache's bound and its
 * remembered misses. The stores are made with the dime CLI (DIME_CLI). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dime/crypto.h"
#include "dime/dir.h"
#include "dime/msg.h"
#include "dime/msg_armor.h"
#include "dime/plmsg.h"
#include "tlib.h"

#define NOT_DIME "not a D/MIME message: "

static const char *cli = DIME_CLI;

static int
run(const char *store, const char *args)
{
	char cmd[8192];

	snprintf(cmd, sizeof(cmd), "%s --store %s %s >/dev/null 2>&1", cli, store, args);
	return system(cmd);
}

/* One job of op through a fresh run (as `dime msg` does). Returns the job's rc; the job keeps
 * its outputs (the caller clears them). */
static int
one(struct dime_pl_dir *dir, const struct dime_pl_msg_conf *c, struct dime_pl_msg_job *j,
    const uint8_t *in, size_t in_len)
{
	struct dime_pl_msg *m = NULL;
	struct dime_pl_msg_worker *w = NULL;
	char why[DIME_PL_MSG_WHY_MAX];

	memset(j, 0, sizeof(*j));
	if (dime_pl_msg_new(&m, why, sizeof(why), dir, c) != DIME_OK ||
	    dime_pl_msg_worker_new(&w, m, 4) != DIME_OK) {
		t_fail("run setup: %s", why);
		dime_pl_msg_free(m);
		return DIME_E_INVALID;
	}
	j->in = in;
	j->in_len = in_len;
	(void)dime_pl_msg_run(w, j, 1);
	dime_pl_msg_worker_free(w);
	dime_pl_msg_free(m);
	return j->rc;
}

static struct dime_pl_msg_conf
conf_of(enum dime_pl_msg_op op)
{
	struct dime_pl_msg_conf c;

	memset(&c, 0, sizeof(c));
	c.op = op;
	c.as = DIME_ACTOR_RECIPIENT;
	c.code = DIME_BOUNCE_UNKNOWN_RECIPIENT;
	c.reason = "gone";
	return c;
}

static const char mail[] = "From: alice@alpha.test\r\nTo: bob@beta.test\r\nSubject: hi\r\n\r\n"
			   "hello\r\n";

/* ---- every op, good input ---- */

static void
test_ops(struct dime_pl_dir *dir, uint8_t **signed_out, size_t *signed_len)
{
	struct dime_pl_msg_conf c = conf_of(DIME_PL_MSG_WRAP);
	struct dime_pl_msg_job j, k;
	uint8_t *unsig = NULL;
	size_t unsig_len = 0;

	*signed_out = NULL;
	c.from = "alice@alpha.test";
	c.to = "bob@beta.test";
	T_CHECK(one(dir, &c, &j, (const uint8_t *)mail, sizeof(mail) - 1) == DIME_OK, "wrap: %s",
		j.why);
	unsig = j.out;
	unsig_len = j.out_len;
	j.out = NULL;
	c.origin_sign = 1;
	T_CHECK(one(dir, &c, &j, (const uint8_t *)mail, sizeof(mail) - 1) == DIME_OK,
		"wrap --origin-sign: %s", j.why);
	*signed_out = j.out;
	*signed_len = j.out_len;
	j.out = NULL;
	if (unsig == NULL || *signed_out == NULL)
		return;

	c = conf_of(DIME_PL_MSG_ACCEPT);
	T_CHECK(one(dir, &c, &j, *signed_out, *signed_len) == DIME_OK &&
		    strncmp(j.line, "ACCEPT bob@beta.test ", 21) == 0,
		"accept: got '%s'", j.line);
	T_CHECK(one(dir, &c, &j, unsig, unsig_len) != DIME_OK && strncmp(j.line, "REJECT ", 7) == 0,
		"accept of author output: got '%s'", j.line);
	c.org = "beta.test";
	T_CHECK(one(dir, &c, &j, *signed_out, *signed_len) == DIME_OK, "accept --org: %s", j.why);
	c.org = "alpha.test";
	T_CHECK(one(dir, &c, &j, *signed_out, *signed_len) == DIME_E_NOTFOUND &&
		    strstr(j.why, "alpha.test") != NULL,
		"accept --org of the wrong org: got '%s'", j.why);

	c = conf_of(DIME_PL_MSG_OPEN);
	T_CHECK(one(dir, &c, &j, *signed_out, *signed_len) == DIME_OK &&
		    j.out_len == sizeof(mail) - 1 && memcmp(j.out, mail, j.out_len) == 0,
		"open as recipient: %s", j.why);
	dime_pl_msg_job_clear(&j);
	c.as = DIME_ACTOR_AUTHOR;
	T_CHECK(one(dir, &c, &j, *signed_out, *signed_len) == DIME_OK &&
		    j.out_len == sizeof(mail) - 1 && memcmp(j.out, mail, j.out_len) == 0,
		"open as author: %s", j.why);
	dime_pl_msg_job_clear(&j);
	c.as = DIME_ACTOR_RECIPIENT;
	c.user = "nobody@beta.test";
	T_CHECK(one(dir, &c, &j, *signed_out, *signed_len) == DIME_E_NOTFOUND &&
		    strstr(j.why, "nobody@beta.test") != NULL,
		"open --user of a stranger: got '%s'", j.why);

	/* origin-sign of a message read from elsewhere verifies the author: a damaged 226 fails */
	c = conf_of(DIME_PL_MSG_ORIGIN_SIGN);
	T_CHECK(one(dir, &c, &j, unsig, unsig_len) == DIME_OK, "origin-sign: %s", j.why);
	dime_pl_msg_job_clear(&j);

	c = conf_of(DIME_PL_MSG_BOUNCE);
	T_CHECK(one(dir, &c, &j, *signed_out, *signed_len) == DIME_OK, "bounce: %s", j.why);
	c = conf_of(DIME_PL_MSG_BOUNCE_VERIFY);
	T_CHECK(j.out != NULL && one(dir, &c, &k, j.out, j.out_len) == DIME_OK &&
		    strcmp(k.line, "BOUNCE alice@alpha.test beta.test 1 gone") == 0,
		"bounce-verify: got '%s'", k.line);
	if (j.out != NULL) {
		j.out[j.out_len / 2] ^= 1;
		T_CHECK(one(dir, &c, &k, j.out, j.out_len) != DIME_OK &&
			    strncmp(k.line, "INVALID ", 8) == 0,
			"bounce-verify of a damaged bounce: got '%s'", k.line);
	}
	dime_pl_msg_job_clear(&j);
	dime_msg_free(unsig, unsig_len);
}

/* ---- wrap --origin-sign does not verify its own signatures ---- */

static void
test_sign_own(struct dime_pl_dir *dir)
{
	struct dime_msg_parties p;
	struct dime_msg_envelope env;
	const char *why = "";
	uint8_t *w = NULL, *out = NULL;
	size_t w_len = 0, out_len = 0;
	uint32_t akey = DIME_KS_NONE, okey = DIME_KS_NONE;
	struct dime_msg_dump d;
	struct dime_msg_chunk_info ch[32];

	memset(&p, 0, sizeof(p));
	T_CHECK(dime_pl_dir_signet(dir, &p.author, &why, "alice@alpha.test", DIME_STORE_USER_SIGNET,
				   NULL) == DIME_OK &&
		    dime_pl_dir_signet(dir, &p.origin, &why, "alpha.test", DIME_STORE_ORG_SIGNET,
				       NULL) == DIME_OK &&
		    dime_pl_dir_signet(dir, &p.destination, &why, "beta.test",
				       DIME_STORE_ORG_SIGNET, NULL) == DIME_OK &&
		    dime_pl_dir_signet(dir, &p.recipient, &why, "bob@beta.test",
				       DIME_STORE_USER_SIGNET, NULL) == DIME_OK &&
		    dime_pl_dir_key(dir, &akey, "alice@alpha.test", DIME_STORE_USER_KEY) ==
			DIME_OK &&
		    dime_pl_dir_key(dir, &okey, "alpha.test", DIME_STORE_ORG_KEY) == DIME_OK,
		"parties: %s", why);
	if (dime_msg_wrap_mail(dime_pl_dir_ks(dir), &w, &w_len, &why, &p, akey,
			       (const uint8_t *)mail, sizeof(mail) - 1, NULL) != DIME_OK ||
	    dime_msg_dump(&d, ch, 32, &why, w, w_len) != DIME_OK) {
		t_fail("wrap: %s", why);
		goto out;
	}
	/* damage the author's full signature (226): a verifying origin refuses, one that signs
	 * its own output does not look */
	for (size_t i = 0; i < d.n_chunks; i++)
		if (ch[i].type == DIME_CHUNK_AUTHOR_SIG)
			w[ch[i].payload.p - w] ^= 1;
	T_CHECK(dime_msg_origin_sign(dime_pl_dir_ks(dir), &out, &out_len, &env, &why, w, w_len,
				     okey, DIME_KS_NONE, &p) == DIME_E_BADSIG,
		"origin-sign of a damaged 226 verifies");
	T_CHECK(dime_msg_origin_sign_flags(dime_pl_dir_ks(dir), &out, &out_len, &env, &why, w,
					   w_len, okey, DIME_KS_NONE, &p,
					   DIME_MSG_SIGN_OWN) == DIME_OK,
		"DIME_MSG_SIGN_OWN still verified the author: %s", why);
out:
	dime_msg_free(out, out_len);
	dime_msg_free(w, w_len);
	dime_pl_dir_parties_release(dir, &p);
}

/* ---- inputs that are not D/MIME messages ---- */

static void
check_not_dime(struct dime_pl_dir *dir, enum dime_pl_msg_op op, const char *name,
	       const uint8_t *raw, size_t raw_len, size_t limit)
{
	struct dime_pl_msg_conf c = conf_of(op);
	struct dime_pl_msg_job j;
	uint8_t *bin = NULL;
	size_t bin_len = 0;
	const char *why = "";
	int armored = 0, rc;

	if (op == DIME_PL_MSG_REKEY) {
		c.to_signet = NULL; /* set below */
		return;
	}
	rc = dime_pl_msg_decode(&bin, &bin_len, &armored, &why, op, limit, raw, raw_len);
	if (rc == DIME_OK) {
		rc = one(dir, &c, &j, bin, bin_len);
		why = j.why;
	}
	T_CHECK(rc != DIME_OK && strncmp(why, NOT_DIME, strlen(NOT_DIME)) == 0,
		"op %d, %s: got '%s'", (int)op, name, why);
	if (rc != DIME_OK && (op == DIME_PL_MSG_ACCEPT || op == DIME_PL_MSG_BOUNCE_VERIFY) &&
	    bin != NULL)
		T_CHECK(strncmp(j.line,
				op == DIME_PL_MSG_ACCEPT ? "REJECT " NOT_DIME : "INVALID " NOT_DIME,
				op == DIME_PL_MSG_ACCEPT ? 7 + strlen(NOT_DIME)
							 : 8 + strlen(NOT_DIME)) == 0,
			"op %d, %s: line '%s'", (int)op, name, j.line);
	if (bin != NULL)
		dime_pl_msg_job_clear(&j);
	free(bin);
}

static void
test_not_dime(struct dime_pl_dir *dir, const uint8_t *msg, size_t msg_len)
{
	static const enum dime_pl_msg_op ops[] = {DIME_PL_MSG_ORIGIN_SIGN, DIME_PL_MSG_ACCEPT,
						  DIME_PL_MSG_OPEN, DIME_PL_MSG_BOUNCE,
						  DIME_PL_MSG_BOUNCE_VERIFY};
	uint8_t rnd[3000], *trail = malloc(msg_len + 1), big[64];
	size_t bound = 0;
	const char *why = "";

	t_rand_fill(rnd, sizeof(rnd));
	rnd[0] = 'x';
	memcpy(trail, msg, msg_len);
	trail[msg_len] = 0;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		check_not_dime(dir, ops[i], "empty", (const uint8_t *)"", 0, 0);
		check_not_dime(dir, ops[i], "random", rnd, sizeof(rnd), 0);
		check_not_dime(dir, ops[i], "eml", (const uint8_t *)mail, sizeof(mail) - 1, 0);
		check_not_dime(dir, ops[i], "oversize", msg, msg_len, msg_len / 2);
		/* a bounce is not a message either way round */
		if (ops[i] == DIME_PL_MSG_BOUNCE_VERIFY)
			check_not_dime(dir, ops[i], "a message", msg, msg_len, 0);
		else
			check_not_dime(dir, ops[i], "trailing", trail, msg_len + 1, 0);
	}
	/* a header announcing more than the limit is refused from its first 6 bytes */
	memcpy(big, msg, 6);
	big[2] = 0x7f;
	T_CHECK(dime_pl_msg_input_bound(&bound, &why, DIME_PL_MSG_ACCEPT, 1u << 20, big, 6) ==
			DIME_E_LIMIT &&
		    strcmp(why, NOT_DIME "larger than the size limit") == 0,
		"input_bound of a huge header: %s", why);
	T_CHECK(dime_pl_msg_input_bound(&bound, &why, DIME_PL_MSG_ACCEPT, 0, msg, 6) == DIME_OK &&
		    bound == msg_len + 1,
		"input_bound of a message: %zu, want %zu", bound, msg_len + 1);
	free(trail);
}

/* ---- the cache ---- */

static void
test_cache(const char *store)
{
	struct dime_pl_dir_conf conf = {
	    .cache_max = 2, .miss_ttl_ms = 3000}; /* 3 s: user create may be slow under load */
	struct dime_pl_dir *d = NULL;
	struct dime_pl_dir_stats st;
	const struct dime_signet *held[4];
	static const char *ids[4] = {"alpha.test", "beta.test", "alice@alpha.test",
				     "bob@beta.test"};
	static const enum dime_store_kind kinds[4] = {DIME_STORE_ORG_SIGNET, DIME_STORE_ORG_SIGNET,
						      DIME_STORE_USER_SIGNET,
						      DIME_STORE_USER_SIGNET};
	const struct dime_signet *s = NULL;
	const char *why = "";
	uint8_t fp[DIME_FP_BYTES];
	struct timespec ttl = {3, 100 * 1000 * 1000};

	if (dime_pl_dir_open_conf(&d, store, &conf, &why) != DIME_OK) {
		t_fail("dir: %s", why);
		return;
	}
	/* four references held in a cache of two: evicted entries stay valid until released */
	for (int i = 0; i < 4; i++)
		T_CHECK(dime_pl_dir_signet(d, &held[i], &why, ids[i], kinds[i], NULL) == DIME_OK,
			"%s: %s", ids[i], why);
	dime_pl_dir_stats(d, &st);
	T_CHECK(st.entries <= 2 && st.evictions >= 2 && st.pinned == 2,
		"bound: %zu entries, %llu evictions, %zu pinned", st.entries,
		(unsigned long long)st.evictions, st.pinned);
	for (int i = 0; i < 4; i++) {
		T_CHECK(dime_signet_fingerprint(fp, held[i], DIME_FP_CRYPTO) == DIME_OK,
			"held signet %d unusable", i);
		dime_pl_dir_release(d, held[i]);
	}
	dime_pl_dir_stats(d, &st);
	T_CHECK(st.pinned == 0 && st.entries <= 2, "after release: %zu pinned", st.pinned);
	/* many lookups never grow it */
	for (int r = 0; r < 50; r++) {
		T_CHECK(dime_pl_dir_signet(d, &s, &why, ids[r % 4], kinds[r % 4], NULL) == DIME_OK,
			"lookup %d", r);
		dime_pl_dir_release(d, s);
	}
	dime_pl_dir_stats(d, &st);
	T_CHECK(st.entries <= 2, "bound after 50 lookups: %zu", st.entries);

	/* a miss is remembered (no store lookup) until it expires; then a signet created
	 * meanwhile is found */
	dime_pl_dir_stats(d, &st);
	{
		uint64_t loads0 = st.loads, misses0 = st.miss_hits;

		T_CHECK(dime_pl_dir_signet(d, &s, &why, "late@alpha.test", DIME_STORE_USER_SIGNET,
					   NULL) == DIME_E_NOTFOUND,
			"late user found before it exists");
		T_CHECK(run(store, "user create late@alpha.test") == 0, "user create late");
		T_CHECK(dime_pl_dir_signet(d, &s, &why, "late@alpha.test", DIME_STORE_USER_SIGNET,
					   NULL) == DIME_E_NOTFOUND,
			"a remembered miss went to the store");
		dime_pl_dir_stats(d, &st);
		T_CHECK(st.loads == loads0 + 1 && st.miss_hits == misses0 + 1,
			"miss cache: %llu loads, %llu miss hits",
			(unsigned long long)(st.loads - loads0),
			(unsigned long long)(st.miss_hits - misses0));
		nanosleep(&ttl, NULL);
		T_CHECK(dime_pl_dir_signet(d, &s, &why, "late@alpha.test", DIME_STORE_USER_SIGNET,
					   NULL) == DIME_OK,
			"the late signet is not found once the miss expired: %s", why);
		dime_pl_dir_release(d, s);
	}
	dime_pl_dir_close(d);
}

/* ---- more than 64 hosted organisations ---- */

static void
test_many_orgs(void)
{
	char store[4200], args[256];
	struct dime_pl_dir *d = NULL;
	struct dime_pl_msg_conf c;
	struct dime_pl_msg_job j, b, v;
	const char *why = "";
	int ok = 1;

	snprintf(store, sizeof(store), "%s", t_path("orgs.db"));
	for (int i = 0; i < 70 && ok; i++) {
		snprintf(args, sizeof(args), "org create o%02d.test", i);
		ok = run(store, args) == 0;
	}
	/* zz sorts after the 70 others: the old scan stopped at 64 */
	ok = ok && run(store, "org create zz.test") == 0 &&
	     run(store, "org create beta.test") == 0 &&
	     run(store, "user create alice@zz.test") == 0 &&
	     run(store, "user create bob@beta.test") == 0;
	if (!ok || dime_pl_dir_open(&d, store, &why) != DIME_OK) {
		t_fail("the store of 72 orgs: %s", why);
		return;
	}
	T_CHECK(dime_pl_dir_keys(d, NULL, NULL, 0, DIME_STORE_ORG_KEY) == 72, "72 org keys");
	c = conf_of(DIME_PL_MSG_WRAP);
	c.from = "alice@zz.test";
	c.to = "bob@beta.test";
	c.origin_sign = 1;
	if (one(d, &c, &j, (const uint8_t *)mail, sizeof(mail) - 1) != DIME_OK) {
		t_fail("wrap: %s", j.why);
		dime_pl_dir_close(d);
		return;
	}
	c = conf_of(DIME_PL_MSG_BOUNCE);
	T_CHECK(one(d, &c, &b, j.out, j.out_len) == DIME_OK, "bounce: %s", b.why);
	c = conf_of(DIME_PL_MSG_BOUNCE_VERIFY);
	T_CHECK(b.out != NULL && one(d, &c, &v, b.out, b.out_len) == DIME_OK &&
		    strcmp(v.line, "BOUNCE alice@zz.test beta.test 1 gone") == 0,
		"bounce-verify with 72 orgs: got '%s'", v.line);
	dime_pl_msg_job_clear(&j);
	dime_pl_msg_job_clear(&b);
	dime_pl_dir_close(d);
}

/* ---- a remote keystore that cannot answer (the key process restarting) ---- */

/* A backend over the local directory's keystore: remote id i is local id map[i - 1]; with
 * down, every request fails as a client whose key process does not answer. */
struct tremote {
	const struct dime_ks *local;
	uint32_t map[64];
	int down;
};

static int
tremote_sign(void *ctx, uint8_t sig[DIME_SIG_BYTES], uint32_t id, const uint8_t *msg, size_t len)
{
	struct tremote *r = ctx;

	if (r->down)
		return DIME_E_AGAIN;
	return dime_ks_sign(r->local, sig, r->map[id - 1], msg, len);
}

static int
tremote_ecdh(void *ctx, uint32_t id, const uint8_t (*pubs)[DIME_SECP_PUB_BYTES], size_t n,
	     uint8_t (*x)[DIME_ECDH_BYTES], int *rc)
{
	struct tremote *r = ctx;

	if (r->down) {
		for (size_t i = 0; i < n; i++)
			rc[i] = DIME_E_AGAIN;
		return DIME_E_AGAIN;
	}
	return dime_ks_ecdh_batch(r->local, r->map[id - 1], pubs, n, x, rc);
}

static int
tkeyinfo_cmp(const void *a, const void *b)
{
	const struct dime_pl_keyinfo *x = a, *y = b;
	int c = strcmp(x->ident, y->ident);

	if (c != 0)
		return c;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->version < y->version ? -1 : x->version > y->version;
}

/* An accept whose keys do not answer is a temporary failure (the daemon's 451), never "no
 * hosted organisation" (510): the message is fine, the key process is restarting. */
static void
test_remote_again(const char *store, struct dime_pl_dir *local, const uint8_t *msg, size_t len)
{
	static const enum dime_store_kind kinds[2] = {DIME_STORE_ORG_KEY, DIME_STORE_USER_KEY};
	struct tremote r;
	struct dime_ks_backend be = {tremote_sign, tremote_ecdh, &r, NULL};
	struct dime_ks *ks = NULL;
	struct dime_pl_keyinfo keys[64];
	struct dime_pl_dir_conf conf;
	struct dime_pl_dir *d = NULL;
	struct dime_pl_msg_conf c = conf_of(DIME_PL_MSG_ACCEPT);
	struct dime_pl_msg_job j;
	const char *why = "";
	size_t n = 0;

	memset(&r, 0, sizeof(r));
	r.local = dime_pl_dir_ks(local);
	if (dime_ks_new_remote(&ks, &be) != DIME_OK) {
		t_fail("remote keystore");
		return;
	}
	for (int k = 0; k < 2; k++) {
		uint32_t ids[32];
		const char *idents[32];
		size_t m = dime_pl_dir_keys(local, ids, idents, 32, kinds[k]);

		for (size_t i = 0; i < m && i < 32 && n < 64; i++, n++) {
			uint8_t sp[DIME_ED25519_PUB_BYTES], ep[DIME_SECP_PUB_BYTES];
			enum dime_key_kind kk;

			memset(&keys[n], 0, sizeof(keys[n]));
			T_CHECK(dime_ks_kind(r.local, &kk, ids[i]) == DIME_OK &&
				    dime_ks_sign_pub(r.local, sp, ids[i]) == DIME_OK &&
				    dime_ks_enc_pub(r.local, ep, ids[i]) == DIME_OK &&
				    dime_ks_add_public(ks, &keys[n].id, kk, sp, ep) == DIME_OK,
				"remote key %zu", n);
			r.map[keys[n].id - 1] = ids[i];
			keys[n].kind = kinds[k];
			keys[n].version = (uint32_t)i + 1;
			snprintf(keys[n].ident, sizeof(keys[n].ident), "%s", idents[i]);
		}
	}
	qsort(keys, n, sizeof(keys[0]), tkeyinfo_cmp);
	memset(&conf, 0, sizeof(conf));
	conf.ks = ks;
	conf.keys = keys;
	conf.n_keys = n;
	if (dime_pl_dir_open_conf(&d, store, &conf, &why) != DIME_OK) {
		t_fail("remote dir: %s", why);
		dime_ks_free(ks);
		return;
	}
	T_CHECK(one(d, &c, &j, msg, len) == DIME_OK && strncmp(j.line, "ACCEPT ", 7) == 0,
		"remote accept: got '%s'", j.line);
	r.down = 1;
	T_CHECK(one(d, &c, &j, msg, len) == DIME_E_AGAIN, "remote accept, keys down: got %d (%s)",
		j.rc, j.why);
	c.org = "beta.test";
	T_CHECK(one(d, &c, &j, msg, len) == DIME_E_AGAIN,
		"remote accept --org, keys down: got %d (%s)", j.rc, j.why);
	r.down = 0;
	T_CHECK(one(d, &c, &j, msg, len) == DIME_OK, "remote accept, keys back: got %d (%s)", j.rc,
		j.why);
	dime_pl_dir_close(d);
	dime_ks_free(ks);
}

int
main(void)
{
	char store[4200];
	struct dime_pl_dir *dir = NULL;
	struct dime_pl_msg_conf c;
	struct dime_pl_msg_job j;
	uint8_t *msg = NULL;
	size_t msg_len = 0;
	const char *why = "";
	char swhy[DIME_PL_MSG_WHY_MAX];
	struct dime_pl_msg *m = NULL;

	t_init();
	T_CHECK(dime_global_init() == DIME_OK, "init");
	if (t_mkdtemp("dime_plmsg") != 0)
		return 1;
	snprintf(store, sizeof(store), "%s", t_path("store.db"));
	if (run(store, "org create alpha.test") != 0 || run(store, "org create beta.test") != 0 ||
	    run(store, "user create alice@alpha.test") != 0 ||
	    run(store, "user create bob@beta.test") != 0) {
		t_fail("cannot build the store with %s", cli);
		return t_done("test_plmsg");
	}
	if (dime_pl_dir_open(&dir, store, &why) != DIME_OK) {
		t_fail("dir: %s", why);
		return t_done("test_plmsg");
	}
	test_ops(dir, &msg, &msg_len);
	test_sign_own(dir);
	if (msg != NULL)
		test_not_dime(dir, msg, msg_len);
	if (msg != NULL)
		test_remote_again(store, dir, msg, msg_len);

	/* missing parties are named */
	c = conf_of(DIME_PL_MSG_WRAP);
	c.from = "alice@alpha.test";
	c.to = "carol@beta.test";
	T_CHECK(dime_pl_msg_new(&m, swhy, sizeof(swhy), dir, &c) == DIME_E_NOTFOUND &&
		    strstr(swhy, "recipient") != NULL && strstr(swhy, "carol@beta.test") != NULL,
		"wrap to a stranger: got '%s'", swhy);
	c.to = "bob@gamma.test";
	T_CHECK(dime_pl_msg_new(&m, swhy, sizeof(swhy), dir, &c) == DIME_E_NOTFOUND &&
		    strstr(swhy, "gamma.test") != NULL,
		"wrap to an unknown org: got '%s'", swhy);
	c.from = "bob@beta.test";
	c.to = "alice@alpha.test";
	c.origin_sign = 1;
	T_CHECK(one(dir, &c, &j, (const uint8_t *)mail, sizeof(mail) - 1) == DIME_OK, "wrap back");
	dime_pl_msg_job_clear(&j);

	/* rekey: bad inputs are named as such, the new signet must be stored */
	c = conf_of(DIME_PL_MSG_REKEY);
	c.to_signet = (const uint8_t *)"junk";
	c.to_signet_len = 4;
	T_CHECK(dime_pl_msg_new(&m, swhy, sizeof(swhy), dir, &c) == DIME_E_INVALID &&
		    strstr(swhy, "not a valid signet") != NULL,
		"rekey to junk: got '%s'", swhy);

	dime_msg_free(msg, msg_len);
	dime_pl_dir_close(dir);
	test_cache(store);
	test_many_orgs();
	t_rm_rf(t_dir);
	return t_done("test_plmsg");
}

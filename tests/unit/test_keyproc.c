/* The key process, with real processes and sockets: sign and ECDH through it equal the
 * in-process keystore's for thousands of requests; malformed and out-of-policy datagrams
 * written by hand are each refused and the channel serves on; kill -9 under the supervisor
 * fails the request in flight with DIME_E_AGAIN and later ones succeed; reload sees a key
 * added to the store; the key process is hardened; `dime batch --key-process` writes the same
 * bytes as the in-process run. The store is made with the dime CLI (DIME_CLI). */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dime/crypto.h"
#include "dime/dir.h"
#include "dime/keyproc.h"
#include "dime/keys.h"
#include "dime/store.h"
#include "tlib.h"

#if defined(__SANITIZE_ADDRESS__)
#define T_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_SANITIZED 1
#endif
#endif
#ifndef T_SANITIZED
#define T_SANITIZED 0
#endif

static const char *cli = DIME_CLI;
static char store[4096], logpath[4096];
static int log_fd = -1;

static int
run(const char *args)
{
	char cmd[8192];

	snprintf(cmd, sizeof(cmd), "%s --store %s %s >/dev/null 2>&1", cli, store, args);
	return system(cmd);
}

static struct dime_kp_conf
conf_default(void)
{
	struct dime_kp_conf c = {0, DIME_KP_HARDEN_ALL, log_fd};

	/* the sanitizer runtimes make system calls a production build never does */
	if (T_SANITIZED)
		c.harden = DIME_KP_HARDEN_NODUMP;
	return c;
}

/* ---- results equal the in-process keystore's ---- */

struct pair {
	const struct dime_ks *lks, *rks;
	uint32_t lid, rid;
	int sign_only;
};

struct eq_arg {
	struct pair *pairs;
	size_t n_pairs;
	unsigned rounds;
	uint64_t seed;
	unsigned sign_ok, ecdh_ok, bad;
};

static uint64_t
xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *
eq_thread(void *arg)
{
	struct eq_arg *a = arg;
	uint64_t s = a->seed;
	static uint8_t big[3][200000]; /* read-only after main fills it */

	for (unsigned r = 0; r < a->rounds; r++) {
		struct pair *p = &a->pairs[xs(&s) % a->n_pairs];
		uint8_t msg[4096], sl[64], sr[64];
		size_t len = (size_t)(xs(&s) % sizeof(msg));
		const uint8_t *m = msg;
		int rl, rr;

		for (size_t i = 0; i < len; i++)
			msg[i] = (uint8_t)xs(&s);
		if (r % 97 == 0) { /* over a datagram: the memfd path */
			m = big[r % 3];
			len = sizeof(big[0]) - r % 1000;
		}
		rl = dime_ks_sign(p->lks, sl, p->lid, m, len);
		rr = dime_ks_sign(p->rks, sr, p->rid, m, len);
		if (rl != DIME_OK || rr != rl || memcmp(sl, sr, 64) != 0) {
			if (a->bad++ < 5)
				t_fail("sign %zu bytes: local %d, remote %d, same %d", len, rl, rr,
				       memcmp(sl, sr, 64) == 0);
		} else {
			a->sign_ok++;
		}
		if (!p->sign_only) {
			uint8_t pubs[80][33], xl[80][32], xr[80][32], priv[32];
			int rcl[80], rcr[80];
			size_t n = 1 + (size_t)(xs(&s) % 80); /* over DIME_KP_BATCH_MAX sometimes */

			for (size_t i = 0; i < n; i++) {
				if (xs(&s) % 8 == 0) { /* not a point */
					for (size_t j = 0; j < 33; j++)
						pubs[i][j] = (uint8_t)xs(&s);
					pubs[i][0] = (uint8_t)(2 + (xs(&s) & 1));
					pubs[i][1] = 0xff;
					memset(pubs[i] + 2, 0xff, 31); /* x >= p */
				} else if (dime_secp_keygen(priv, pubs[i]) != DIME_OK) {
					t_fail("keygen");
				}
			}
			rl = dime_ks_ecdh_batch(p->lks, p->lid,
						(const uint8_t(*)[DIME_SECP_PUB_BYTES])pubs, n, xl,
						rcl);
			rr = dime_ks_ecdh_batch(p->rks, p->rid,
						(const uint8_t(*)[DIME_SECP_PUB_BYTES])pubs, n, xr,
						rcr);
			if (rl != rr || memcmp(rcl, rcr, n * sizeof(int)) != 0 ||
			    memcmp(xl, xr, n * 32) != 0) {
				if (a->bad++ < 5)
					t_fail("ecdh x%zu: local %d, remote %d", n, rl, rr);
			} else {
				a->ecdh_ok++;
			}
		}
	}
	return NULL;
}

/* Pair every remote key with the local key of the same Ed25519 public key. */
static size_t
make_pairs(struct pair *pairs, size_t cap, const struct dime_ks *lks, const struct dime_ks *rks,
	   size_t n_remote)
{
	size_t n = 0;

	for (uint32_t rid = 1; rid <= n_remote && n < cap; rid++) {
		uint8_t rp[32], lp[32];
		enum dime_key_kind kind;

		if (dime_ks_sign_pub(rks, rp, rid) != DIME_OK || dime_ks_kind(rks, &kind, rid))
			continue;
		for (uint32_t lid = 1; dime_ks_sign_pub(lks, lp, lid) == DIME_OK; lid++)
			if (memcmp(lp, rp, 32) == 0) {
				pairs[n].lks = lks;
				pairs[n].rks = rks;
				pairs[n].lid = lid;
				pairs[n].rid = rid;
				pairs[n].sign_only = kind == DIME_KEY_SIGN;
				n++;
				break;
			}
	}
	return n;
}

static void
test_equal(void)
{
	struct dime_kp_conf conf = conf_default();
	struct dime_kp_client *c = NULL;
	struct dime_ks *rks = NULL;
	struct dime_pl_keyinfo *keys = NULL;
	struct dime_pl_dir *dir = NULL;
	struct pair pairs[32];
	struct eq_arg args[4];
	pthread_t th[4];
	const char *why;
	size_t n_keys = 0, n_pairs;
	int fds[3], st;
	pid_t pid;
	char err[256];
	unsigned sign_ok = 0, ecdh_ok = 0;

	if (dime_kp_spawn(&pid, fds, 3, store, &conf, 0, err, sizeof(err)) != DIME_OK) {
		t_fail("spawn: %s", err);
		return;
	}
	if (dime_kp_client_new(&c, fds, 3, 0) != DIME_OK) {
		t_fail("client_new");
		return;
	}
	T_CHECK(dime_kp_client_keys(c, &rks, &keys, &n_keys) == DIME_OK, "client_keys");
	T_CHECK(n_keys == 5, "hello: got %zu keys, want 5", n_keys);
	for (size_t i = 0; i < n_keys; i++)
		T_CHECK(keys[i].id == i + 1 && keys[i].ident[0] != 0 && keys[i].version >= 1,
			"hello key %zu: id %u ident '%s' version %u", i, keys[i].id, keys[i].ident,
			keys[i].version);
	if (dime_pl_dir_open(&dir, store, &why) != DIME_OK) {
		t_fail("dir: %s", why);
		goto out;
	}
	/* the keys come in the order the in-process directory loads them */
	{
		uint32_t ids[16];
		const char *idents[16];
		size_t nl = dime_pl_dir_keys(dir, ids, idents, 16, DIME_STORE_ORG_KEY), j = 0;

		for (size_t i = 0; i < nl && i < 16; i++, j++)
			T_CHECK(j < n_keys && keys[j].kind == DIME_STORE_ORG_KEY &&
				    strcmp(keys[j].ident, idents[i]) == 0,
				"org key %zu: got '%s', want '%s'", i,
				j < n_keys ? keys[j].ident : "", idents[i]);
		nl = dime_pl_dir_keys(dir, ids, idents, 16, DIME_STORE_USER_KEY);
		for (size_t i = 0; i < nl && i < 16; i++, j++)
			T_CHECK(j < n_keys && keys[j].kind == DIME_STORE_USER_KEY &&
				    strcmp(keys[j].ident, idents[i]) == 0,
				"user key %zu: got '%s', want '%s'", i,
				j < n_keys ? keys[j].ident : "", idents[i]);
		T_CHECK(j == n_keys, "local %zu keys, remote %zu", j, n_keys);
	}
	n_pairs = make_pairs(pairs, 32, dime_pl_dir_ks(dir), rks, n_keys);
	T_CHECK(n_pairs == n_keys, "paired %zu of %zu keys", n_pairs, n_keys);
	for (unsigned t = 0; t < 4 && n_pairs > 0; t++) {
		args[t] =
		    (struct eq_arg){pairs, n_pairs, T_SANITIZED ? 300 : 1000, 77 + t, 0, 0, 0};
		pthread_create(&th[t], NULL, eq_thread, &args[t]);
	}
	for (unsigned t = 0; t < 4 && n_pairs > 0; t++) {
		pthread_join(th[t], NULL);
		sign_ok += args[t].sign_ok;
		ecdh_ok += args[t].ecdh_ok;
	}
	printf("equal: %u signatures, %u ECDH batches equal on 4 threads\n", sign_ok, ecdh_ok);
	T_CHECK(sign_ok >= (T_SANITIZED ? 1200u : 4000u), "only %u signatures checked", sign_ok);
	{
		struct dime_kp_stats s;

		dime_kp_client_stats(c, &s);
		printf(
		    "stats: %llu requests, %llu items, %llu timeouts, %llu stale, %llu refused\n",
		    (unsigned long long)s.requests, (unsigned long long)s.items,
		    (unsigned long long)s.timeouts, (unsigned long long)s.stale_replies,
		    (unsigned long long)s.refused);
		T_CHECK(s.timeouts == 0 && s.refused == 0, "timeouts %llu refused %llu",
			(unsigned long long)s.timeouts, (unsigned long long)s.refused);
	}
	/* a remote keystore exports nothing */
	{
		uint8_t b[512];
		size_t bl = 7;
		uint32_t id = 9;

		T_CHECK(dime_ks_export(rks, b, sizeof(b), &bl, 1, 1) == DIME_E_INVALID && bl == 0,
			"remote export refused");
		T_CHECK(dime_ks_generate(rks, &id, DIME_KEY_USER) == DIME_E_INVALID &&
			    id == DIME_KS_NONE,
			"remote generate refused");
	}
out:
	dime_pl_dir_close(dir);
	dime_ks_free(rks);
	free(keys);
	dime_kp_client_free(c); /* closes the channels: the key process ends by itself */
	T_CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		"key process exit: status 0x%x", st);
}

int
main(void)
{
	t_init();
	if (t_mkdtemp("dime_keyproc") != 0)
		return 1;
	snprintf(store, sizeof(store), "%s", t_path("store.db"));
	snprintf(logpath, sizeof(logpath), "%s", t_path("kp.log"));
	if ((log_fd = open(logpath, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0) {
		t_fail("log: %s", strerror(errno));
		return t_done("test_keyproc");
	}
	if (run("org create alpha.test") != 0 || run("org create beta.test") != 0 ||
	    run("user create alice@alpha.test") != 0 || run("user create bob@beta.test") != 0 ||
	    run("user create bob@beta.test --rotate") != 0) {
		t_fail("cannot build the store with %s", cli);
		return t_done("test_keyproc");
	}
	test_equal();
	close(log_fd);
	if (t_failures == 0)
		t_rm_rf(t_dir);
	return t_done("test_keyproc");
}

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
#include <sys/mman.h>
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
		if (!p->sign_only && r % 4 == 0) {
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
	T_CHECK(sign_ok >= (T_SANITIZED ? 1200u : 4000u) && ecdh_ok >= sign_ok / 4,
		"only %u signatures, %u ECDH batches checked", sign_ok, ecdh_ok);
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

/* ---- raw datagrams: malformed and out-of-policy requests ---- */

#define MAGIC 0x444b5001u

static size_t
put32(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
	return 4;
}

static uint32_t
get32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* The 48-byte request header (docs/keyproc.md). */
static size_t
hdr(uint8_t *b, uint32_t magic, uint32_t seq, uint8_t op, uint8_t flags, uint16_t count,
    const uint8_t *key, uint32_t plen)
{
	put32(b, magic);
	put32(b + 4, seq);
	b[8] = op;
	b[9] = flags;
	b[10] = (uint8_t)(count >> 8);
	b[11] = (uint8_t)count;
	if (key != NULL)
		memcpy(b + 12, key, 32);
	else
		memset(b + 12, 0, 32);
	put32(b + 44, plen);
	return 48;
}

static int
raw_send(int fd, const void *b, size_t len, const int *pass, size_t n_pass)
{
	union {
		struct cmsghdr h;
		uint8_t b[CMSG_SPACE(sizeof(int) * 2)];
	} cm;
	struct iovec iov = {(void *)(uintptr_t)b, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (n_pass > 0) {
		struct cmsghdr *h;

		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_pass);
		h = CMSG_FIRSTHDR(&mh);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int) * n_pass);
		memcpy(CMSG_DATA(h), pass, sizeof(int) * n_pass);
	}
	return sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

struct raw_rep {
	uint32_t seq;
	uint8_t op;
	uint16_t count;
	int rc;
	uint8_t body[65536];
	size_t body_len;
};

/* Wait up to 5 s for one reply. Returns 0 or -1. */
static int
raw_recv(int fd, struct raw_rep *r)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint8_t b[65536];
	ssize_t n;

	if (poll(&p, 1, 5000) != 1 || (n = recv(fd, b, sizeof(b), 0)) < 16 || get32(b) != MAGIC)
		return -1;
	r->seq = get32(b + 4);
	r->op = b[8];
	r->count = (uint16_t)(b[10] << 8 | b[11]);
	r->rc = (int)(int32_t)get32(b + 12);
	r->body_len = (size_t)n - 16;
	memcpy(r->body, b + 16, r->body_len);
	return 0;
}

/* A valid signature request on the raw channel: the channel still serves. */
static int
raw_sign_ok(int fd, const uint8_t key[32], uint32_t seq)
{
	uint8_t b[128];
	struct raw_rep r;
	size_t n = hdr(b, MAGIC, seq, 2, 0, 1, key, 5);

	n += put32(b + n, 5);
	memcpy(b + n, "hello", 5);
	n += 5;
	return raw_send(fd, b, n, NULL, 0) == 0 && raw_recv(fd, &r) == 0 && r.seq == seq &&
	       r.op == 2 && r.rc == DIME_OK && r.count == 1 && r.body_len == 68 &&
	       get32(r.body) == 0 &&
	       dime_ed25519_verify(r.body + 4, key, (const uint8_t *)"hello", 5) == DIME_OK;
}

static int
count_lines(const char *path, const char *what)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	int n = 0;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, what) != NULL;
	if (f != NULL)
		fclose(f);
	return n;
}

static int
memfd_of(size_t len)
{
	int fd = memfd_create("t", MFD_CLOEXEC);
	uint8_t z[4096] = {0};

	for (size_t off = 0; fd >= 0 && off < len; off += sizeof(z))
		if (write(fd, z, len - off < sizeof(z) ? len - off : sizeof(z)) < 0)
			break;
	return fd;
}

static void
test_refusals(void)
{
	struct dime_kp_conf conf = conf_default();
	struct dime_kp_client *c = NULL;
	struct dime_ks *rks = NULL;
	struct dime_pl_keyinfo *keys = NULL;
	size_t n_keys = 0;
	uint8_t user[32] = {0}, sok[32] = {0}, nobody[32], b[70000];
	struct raw_rep r;
	int fds[2], st, before = count_lines(logpath, "event=refused"), refusals = 0;
	uint32_t seq = 100;
	pid_t pid;
	char err[256];

	conf.sign_max = 1000;
	if (dime_kp_spawn(&pid, fds, 2, store, &conf, 0, err, sizeof(err)) != DIME_OK) {
		t_fail("spawn: %s", err);
		return;
	}
	/* channel 1 through the client for the keys' public halves; channel 0 raw */
	if (dime_kp_client_new(&c, fds + 1, 1, 0) != DIME_OK ||
	    dime_kp_client_keys(c, &rks, &keys, &n_keys) != DIME_OK) {
		t_fail("client");
		goto out;
	}
	for (size_t i = 0; i < n_keys; i++) {
		enum dime_key_kind k;

		if (dime_ks_kind(rks, &k, keys[i].id) != DIME_OK)
			continue;
		if (k == DIME_KEY_SIGN && dime_ks_sign_pub(rks, sok, keys[i].id) != DIME_OK)
			t_fail("sok pub");
		if (k == DIME_KEY_USER && dime_ks_sign_pub(rks, user, keys[i].id) != DIME_OK)
			t_fail("user pub");
	}
	T_CHECK(sok[0] != 0 || sok[1] != 0, "no sign-only key in hello");
	memset(nobody, 0x5a, sizeof(nobody));
	T_CHECK(raw_sign_ok(fds[0], user, seq++), "raw sign before anything");

	/* Each case: its datagram, the rc it must get back. */
#define REFUSE(name, want, len, pass, n_pass)                                                      \
	do {                                                                                       \
		uint32_t s_ = seq++;                                                               \
		int ok_ = raw_send(fds[0], b, (len), (pass), (n_pass)) == 0 &&                     \
			  raw_recv(fds[0], &r) == 0;                                               \
		T_CHECK(ok_ &&r.rc == (want) && r.count == 0 && r.body_len == 0,                   \
			"%s: got %d (ok %d), want %d", (name), ok_ ? r.rc : 0, ok_, (want));       \
		T_CHECK(raw_sign_ok(fds[0], user, seq++), "%s: the channel stopped serving",       \
			(name));                                                                   \
		refusals++;                                                                        \
		(void)s_;                                                                          \
	} while (0)

	REFUSE("empty datagram", DIME_E_MALFORMED, 0, NULL, 0);
	hdr(b, MAGIC, seq, 2, 0, 1, user, 0);
	REFUSE("short header", DIME_E_MALFORMED, 20, NULL, 0);
	hdr(b, 0x444b5002u, seq, 1, 0, 0, NULL, 0);
	REFUSE("bad version", DIME_E_MALFORMED, 48, NULL, 0);
	hdr(b, 0x12345678u, seq, 1, 0, 0, NULL, 0);
	REFUSE("bad magic", DIME_E_MALFORMED, 48, NULL, 0);
	hdr(b, MAGIC, seq, 9, 0, 0, NULL, 0);
	REFUSE("unknown op", DIME_E_INVALID, 48, NULL, 0);
	hdr(b, MAGIC, seq, 0x80, 0, 0, NULL, 0);
	REFUSE("a reply op as request", DIME_E_INVALID, 48, NULL, 0);
	hdr(b, MAGIC, seq, 1, 0, 1, NULL, 0);
	REFUSE("hello with a count", DIME_E_MALFORMED, 48, NULL, 0);
	hdr(b, MAGIC, seq, 2, 0, 0, user, 0);
	REFUSE("sign count 0", DIME_E_MALFORMED, 48, NULL, 0);
	{
		size_t n = hdr(b, MAGIC, seq, 3, 0, 65, user, 0);

		memset(b + n, 2, 65 * 33);
		REFUSE("ecdh count 65", DIME_E_LIMIT, n + 65 * 33, NULL, 0);
	}
	{
		size_t n = hdr(b, MAGIC, seq, 2, 0, 1, user, 10);

		n += put32(b + n, 10);
		memcpy(b + n, "short", 5);
		REFUSE("sign payload length lies (short)", DIME_E_MALFORMED, n + 5, NULL, 0);
		memcpy(b + n, "longer than ten", 15);
		REFUSE("sign payload length lies (long)", DIME_E_MALFORMED, n + 15, NULL, 0);
		hdr(b, MAGIC, seq, 2, 0, 1, user, 9);
		memcpy(b + n, "0123456789", 10);
		REFUSE("payload length is not the sum", DIME_E_MALFORMED, n + 10, NULL, 0);
	}
	{
		size_t n = hdr(b, MAGIC, seq, 2, 0, 2, user, 0);

		n += put32(b + n, 0);
		REFUSE("sign items truncated", DIME_E_MALFORMED, n, NULL, 0);
	}
	{
		size_t n = hdr(b, MAGIC, seq, 2, 0, 1, nobody, 5);

		n += put32(b + n, 5);
		memcpy(b + n, "hello", 5);
		REFUSE("unknown key", DIME_E_NOTFOUND, n + 5, NULL, 0);
	}
	{
		size_t n = hdr(b, MAGIC, seq, 3, 0, 1, sok, 0);
		uint8_t priv[32];

		T_CHECK(dime_secp_keygen(priv, b + n) == DIME_OK, "keygen");
		REFUSE("ecdh with a sign-only key", DIME_E_INVALID, n + 33, NULL, 0);
		hdr(b, MAGIC, seq, 3, 0, 1, user, 0);
		REFUSE("ecdh items truncated", DIME_E_MALFORMED, n + 32, NULL, 0);
		REFUSE("ecdh items trailing", DIME_E_MALFORMED, n + 34, NULL, 0);
	}
	{
		size_t n = hdr(b, MAGIC, seq, 2, 0, 1, user, 2000);

		n += put32(b + n, 2000);
		memset(b + n, 'x', 2000);
		REFUSE("sign over sign_max", DIME_E_LIMIT, n + 2000, NULL, 0);
	}
	{
		size_t n = hdr(b, MAGIC, seq, 2, 0, 1, user, 1);

		n += put32(b + n, 1);
		memset(b + n, 'x', sizeof(b) - n);
		REFUSE("datagram over 64 KiB", DIME_E_LIMIT, sizeof(b), NULL, 0);
	}
	{
		size_t n = hdr(b, MAGIC, seq, 2, 1, 1, user, 100);
		int mfd = memfd_of(50), two[2];

		n += put32(b + n, 100);
		REFUSE("memfd shorter than the payload", DIME_E_MALFORMED, n, &mfd, 1);
		REFUSE("memfd flag without a descriptor", DIME_E_MALFORMED, n, NULL, 0);
		two[0] = two[1] = mfd;
		REFUSE("two descriptors", DIME_E_LIMIT, n, two, 2);
		hdr(b, MAGIC, seq, 2, 0, 1, user, 100);
		REFUSE("a descriptor without the flag", DIME_E_MALFORMED, n, &mfd, 1);
		close(mfd);
		mfd = memfd_of(2000);
		hdr(b, MAGIC, seq, 2, 1, 1, user, 2000);
		put32(b + 48, 2000);
		REFUSE("memfd sign over sign_max", DIME_E_LIMIT, n, &mfd, 1);
		close(mfd);
	}
	/* an invalid point fails its own item only; the others are answered */
	{
		size_t n = hdr(b, MAGIC, seq, 3, 0, 3, user, 0);
		uint8_t priv[32];
		uint32_t s = seq++;

		T_CHECK(dime_secp_keygen(priv, b + n) == DIME_OK &&
			    dime_secp_keygen(priv, b + n + 66) == DIME_OK,
			"keygen");
		memset(b + n + 33, 0xff, 33);
		b[n + 33] = 3;
		T_CHECK(raw_send(fds[0], b, n + 99, NULL, 0) == 0 && raw_recv(fds[0], &r) == 0 &&
			    r.seq == s && r.count == 3 && r.rc == DIME_E_MALFORMED &&
			    get32(r.body) == 0 &&
			    (int)(int32_t)get32(r.body + 36) == DIME_E_MALFORMED &&
			    get32(r.body + 72) == 0,
			"invalid point: rc %d count %u", r.rc, r.count);
		T_CHECK(raw_sign_ok(fds[0], user, seq++), "after an invalid point");
	}
	T_CHECK(count_lines(logpath, "event=refused") - before == refusals,
		"log: %d refusal lines, want %d", count_lines(logpath, "event=refused") - before,
		refusals);
	T_CHECK(kill(pid, 0) == 0, "the key process died");
out:
	dime_ks_free(rks);
	free(keys);
	dime_kp_client_free(c);
	close(fds[0]);
	T_CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		"key process exit: status 0x%x", st);
}

/* ---- supervision, restarts, reload, hardening ---- */

/* The key process under supervisor sup (its one child). Returns the pid or -1. */
static pid_t
kp_child(pid_t sup)
{
	char path[64], b[256];
	FILE *f;
	long v = -1;

	for (int i = 0; i < 200; i++) {
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)sup, (int)sup);
		if ((f = fopen(path, "r")) != NULL) {
			if (fgets(b, sizeof(b), f) != NULL)
				v = strtol(b, NULL, 10);
			fclose(f);
		}
		if (v > 0)
			return (pid_t)v;
		usleep(20000);
	}
	return -1;
}

/* The value of "Name:" in /proc/pid/status, or "". */
static const char *
proc_status(pid_t pid, const char *name)
{
	static char v[128];
	char path[64], line[256];
	FILE *f;

	v[0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return v;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, name, strlen(name)) == 0 && line[strlen(name)] == ':') {
			char *p = line + strlen(name) + 1;

			while (*p == ' ' || *p == '\t')
				p++;
			p[strcspn(p, "\n")] = 0;
			snprintf(v, sizeof(v), "%s", p);
		}
	fclose(f);
	return v;
}

/* Signal pid with SIGSTOP or SIGCONT and wait until its state shows it (a signal is
 * delivered asynchronously). Returns 1 when it did. */
static int
stop_cont(pid_t pid, int sig)
{
	kill(pid, sig);
	for (int i = 0; i < 500; i++) {
		int stopped = proc_status(pid, "State")[0] == 'T';

		if (stopped == (sig == SIGSTOP))
			return 1;
		usleep(2000);
	}
	return 0;
}

static int
core_limit_zero(pid_t pid)
{
	char path[64], line[256];
	FILE *f;
	int ok = 0;

	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "Max core file size", 18) == 0)
			ok = strstr(line, " 0 ") != NULL;
	fclose(f);
	return ok;
}

struct bg_sign {
	const struct dime_ks *ks;
	uint32_t id;
	int rc;
};

static void *
bg_sign_main(void *arg)
{
	struct bg_sign *b = arg;
	uint8_t sig[64];

	b->rc = dime_ks_sign(b->ks, sig, b->id, (const uint8_t *)"in flight", 9);
	return NULL;
}

static int
sign_verify(const struct dime_ks *ks, uint32_t id)
{
	uint8_t sig[64], pub[32];

	return dime_ks_sign(ks, sig, id, (const uint8_t *)"after", 5) == DIME_OK &&
	       dime_ks_sign_pub(ks, pub, id) == DIME_OK &&
	       dime_ed25519_verify(sig, pub, (const uint8_t *)"after", 5) == DIME_OK;
}

static void
test_supervised(void)
{
	struct dime_kp_conf conf = conf_default();
	struct dime_kp_client *c = NULL;
	struct dime_ks *rks = NULL, *rks2 = NULL;
	struct dime_pl_keyinfo *keys = NULL, *keys2 = NULL;
	struct dime_kp_stats s0, s1;
	struct bg_sign bg;
	pthread_t th;
	size_t n_keys = 0, n2 = 0;
	int fds[2], st, ok;
	pid_t sup, kp = -1, kp2 = -1;
	int restarts;
	char err[256];
	uint64_t t0;
	struct timespec ts;

	if (dime_kp_spawn(&sup, fds, 2, store, &conf, 1, err, sizeof(err)) != DIME_OK) {
		t_fail("spawn: %s", err);
		return;
	}
	if (dime_kp_client_new(&c, fds, 2, 1500) != DIME_OK ||
	    dime_kp_client_keys(c, &rks, &keys, &n_keys) != DIME_OK || n_keys == 0) {
		t_fail("client");
		goto out;
	}
	if ((kp = kp_child(sup)) < 0) {
		t_fail("no key process under the supervisor");
		goto out;
	}
	/* hardened: no core, no new privileges, a seccomp filter (not under sanitizers) */
	T_CHECK(core_limit_zero(kp), "key process core limit not 0");
	if (!T_SANITIZED) {
		T_CHECK(strcmp(proc_status(kp, "Seccomp"), "2") == 0, "Seccomp: '%s', want 2",
			proc_status(kp, "Seccomp"));
		T_CHECK(strcmp(proc_status(kp, "NoNewPrivs"), "1") == 0, "NoNewPrivs: '%s'",
			proc_status(kp, "NoNewPrivs"));
		if (geteuid() == 0)
			T_CHECK(strcmp(proc_status(kp, "VmLck"), "0 kB") != 0, "VmLck: '%s'",
				proc_status(kp, "VmLck"));
	}
	T_CHECK(sign_verify(rks, 1), "sign before the kill");

	/* A stopped key process: the request times out (DIME_E_AGAIN); once it runs again its
	 * late reply is dropped as stale and the next request gets its own. */
	dime_kp_client_stats(c, &s0);
	T_CHECK(stop_cont(kp, SIGSTOP), "SIGSTOP");
	bg = (struct bg_sign){rks, 1, 0};
	bg_sign_main(&bg);
	T_CHECK(bg.rc == DIME_E_AGAIN, "stopped key process: got %d, want DIME_E_AGAIN", bg.rc);
	T_CHECK(stop_cont(kp, SIGCONT), "SIGCONT");
	T_CHECK(sign_verify(rks, 1) && sign_verify(rks, 1), "after SIGCONT");
	dime_kp_client_stats(c, &s1);
	T_CHECK(s1.timeouts == s0.timeouts + 1 && s1.stale_replies >= s0.stale_replies + 1,
		"timeouts %llu -> %llu, stale %llu -> %llu", (unsigned long long)s0.timeouts,
		(unsigned long long)s1.timeouts, (unsigned long long)s0.stale_replies,
		(unsigned long long)s1.stale_replies);

	/* kill -9 with a request in flight (sent to a stopped process, so surely in flight):
	 * it fails with DIME_E_AGAIN as soon as the supervisor notices, well before the
	 * timeout; the supervisor starts a new key process, and later requests succeed. */
	T_CHECK(stop_cont(kp, SIGSTOP), "SIGSTOP");
	bg = (struct bg_sign){rks, 2, 1};
	pthread_create(&th, NULL, bg_sign_main, &bg);
	usleep(300000);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	kill(kp, SIGKILL);
	pthread_join(th, NULL);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	T_CHECK(bg.rc == DIME_E_AGAIN, "in flight at kill -9: got %d, want DIME_E_AGAIN", bg.rc);
	T_CHECK((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u - t0 < 1000,
		"the in-flight request waited for its timeout");
	ok = 0;
	for (int i = 0; i < 50 && !ok; i++) {
		ok = sign_verify(rks, 2);
		if (!ok)
			usleep(100000);
	}
	T_CHECK(ok, "no signature after the restart");
	kp2 = kp_child(sup);
	T_CHECK(kp2 > 0 && kp2 != kp, "restarted: pid %d, was %d", (int)kp2, (int)kp);
	T_CHECK(count_lines(logpath, "event=restart") >= 1, "no restart line in the log");

	/* reload: a user created after the start is seen after SIGHUP to the supervisor, and
	 * another after dime_kp_client_reload */
	/* the same key process reloads: no restart (a seccomp kill would restart it, and the
	 * new one would see the keys too) */
	restarts = count_lines(logpath, "event=restart");
	T_CHECK(run("user create carol@alpha.test") == 0, "user create carol");
	kill(sup, SIGHUP);
	ok = 0;
	for (int i = 0; i < 50 && !ok; i++) {
		usleep(100000);
		if (dime_kp_client_keys(c, &rks2, &keys2, &n2) == DIME_OK)
			ok = n2 == n_keys + 1;
		if (!ok) {
			dime_ks_free(rks2);
			free(keys2);
			rks2 = NULL;
			keys2 = NULL;
		}
	}
	T_CHECK(ok, "SIGHUP reload: %zu keys, want %zu", n2, n_keys + 1);
	dime_ks_free(rks2);
	free(keys2);
	rks2 = NULL;
	keys2 = NULL;
	T_CHECK(run("user create dave@beta.test") == 0, "user create dave");
	T_CHECK(dime_kp_client_reload(c) == DIME_OK, "client reload");
	T_CHECK(dime_kp_client_keys(c, &rks2, &keys2, &n2) == DIME_OK && n2 == n_keys + 2,
		"after reload: %zu keys, want %zu", n2, n_keys + 2);
	for (size_t i = 0; i < n2; i++)
		if (strcmp(keys2[i].ident, "dave@beta.test") == 0)
			T_CHECK(sign_verify(rks2, keys2[i].id), "sign with the new key");
	T_CHECK(sign_verify(rks, 1), "the old keystore still signs after the reload");
	/* a reload that fails keeps the old keys */
	{
		char moved[4200];

		snprintf(moved, sizeof(moved), "%s.moved", store);
		T_CHECK(rename(store, moved) == 0, "move the store away");
		T_CHECK(dime_kp_client_reload(c) == DIME_E_IO, "reload without a store");
		T_CHECK(rename(moved, store) == 0, "move the store back");
		T_CHECK(sign_verify(rks2, keys2[n2 - 1].id), "keys kept after a failed reload");
	}
	kp = kp_child(sup);
	T_CHECK(kp == kp2 && count_lines(logpath, "event=restart") == restarts &&
		    count_lines(logpath, "event=reload rc=0") >= 2,
		"reloads restarted the key process: pid %d, was %d", (int)kp, (int)kp2);
out:
	/* SIGTERM: the supervisor stops its key process and exits */
	kill(sup, SIGTERM);
	T_CHECK(waitpid(sup, &st, 0) == sup && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		"supervisor exit: status 0x%x", st);
	usleep(100000);
	T_CHECK(kp <= 0 || kill(kp, 0) != 0, "key process %d outlived its supervisor", (int)kp);
	dime_ks_free(rks);
	dime_ks_free(rks2);
	free(keys);
	free(keys2);
	dime_kp_client_free(c);
}

/* A sign-only key hosted in the store (a raw seed in an org key row) for the ECDH refusal. */
static void
add_sign_only_key(void)
{
	struct dime_store *st = NULL;
	char err[256];
	uint8_t seed[32];
	uint32_t v;

	t_rand_fill(seed, sizeof(seed));
	if (dime_store_open(&st, store, err, sizeof(err)) != DIME_OK) {
		t_fail("store open: %s", err);
		return;
	}
	T_CHECK(dime_store_put(st, &v, "sok.test", DIME_STORE_ORG_KEY, seed, sizeof(seed), 1, 0,
			       NULL) == DIME_OK,
		"put a sign-only key");
	dime_wipe(seed, sizeof(seed));
	dime_store_close(st);
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
	add_sign_only_key();
	test_refusals();
	test_supervised();
	close(log_fd);
	if (t_failures == 0)
		t_rm_rf(t_dir);
	return t_done("test_keyproc");
}

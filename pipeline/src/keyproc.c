/* The key process (dime/keyproc.h, docs/keyproc.md): loads the hosted keys from the store,
 * hardens itself and answers sign and ECDH requests on its channels, one thread per channel;
 * and its spawner and supervisor. The only code that holds decrypted private keys besides the
 * in-process keystore of the CLI. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dime/keyproc.h"
#include "dime/store.h"
#include "keyproc_int.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define KP_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define KP_SANITIZED 1
#endif
#endif
#ifndef KP_SANITIZED
#define KP_SANITIZED 0
#endif

#define KP_THREAD_STACK	  (256u << 10) /* locked with MCL_FUTURE: keep it small */
#define KP_BACKOFF_MIN_MS 100u
#define KP_BACKOFF_MAX_MS 5000u
#define KP_FAST_DEATH_MS  1000u /* a key process dying sooner than this backs off */

/* One hosted key as hello describes it. */
struct kp_hosted {
	char ident[KP_IDENT_MAX];
	uint16_t store_kind, key_kind;
	uint32_t version, id;
	uint8_t sign_pub[DIME_ED25519_PUB_BYTES];
	uint8_t enc_pub[DIME_SECP_PUB_BYTES];
};

/* The loaded keys: immutable once built, swapped whole on reload. */
struct kp_keys {
	struct dime_ks *ks;
	struct kp_hosted *v; /* load order: ORG keys, then USER keys, each by ident, version */
	size_t n, cap;
	uint32_t *by_pub; /* indices into v, sorted by sign_pub */
};

struct kp_srv {
	const char *store_path;
	size_t sign_max;
	int log_fd;
	pthread_mutex_t log_mu;
	pthread_rwlock_t lk; /* readers: requests; writer: the reload's swap */
	struct kp_keys *keys;
	pthread_t main;
	_Atomic size_t live; /* channel threads still serving */
	/* The channel threads start before the hardening (so the filter can refuse clone: no
	 * thread or process is ever made after it) and wait here until it is in place. */
	pthread_mutex_t go_mu;
	pthread_cond_t go_cv;
	int go;
};

struct kp_chan_arg {
	struct kp_srv *s;
	int fd;
};

static void __attribute__((format(printf, 2, 3))) kp_log(struct kp_srv *s, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	if (s->log_fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	pthread_mutex_lock(&s->log_mu);
	(void)!write(s->log_fd, line, (size_t)n);
	pthread_mutex_unlock(&s->log_mu);
}

static const char *
kp_op_name(unsigned op)
{
	switch (op) {
	case KP_OP_HELLO: return "hello";
	case KP_OP_SIGN: return "sign";
	case KP_OP_ECDH: return "ecdh";
	case KP_OP_RELOAD: return "reload";
	default: return "unknown";
	}
}

/* ---- keys ---- */

static void
kp_keys_free(struct kp_keys *k)
{
	if (k == NULL)
		return;
	dime_ks_free(k->ks); /* wipes every secret */
	free(k->v);
	free(k->by_pub);
	free(k);
}

struct kp_load {
	struct dime_store *st;
	struct kp_keys *k;
	int rc;
};

static int
kp_load_row(const struct dime_store_row *row, void *arg)
{
	struct kp_load *l = arg;
	struct kp_keys *k = l->k;
	struct kp_hosted *h;
	enum dime_key_kind kind;
	uint8_t *blob = NULL;
	size_t len = 0;
	uint32_t id = DIME_KS_NONE;

	/* as the in-process directory (dir.c): hosted rows only; a damaged row is skipped */
	if (!row->hosted || dime_store_get_row(l->st, &blob, &len, row->rowid) != DIME_OK)
		return 0;
	if (dime_ks_load(k->ks, &id, blob, len) != DIME_OK)
		goto out;
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 16;
		struct kp_hosted *v = realloc(k->v, cap * sizeof(*v));

		if (v == NULL) {
			l->rc = DIME_E_NOMEM;
			goto out;
		}
		k->v = v;
		k->cap = cap;
	}
	h = &k->v[k->n];
	memset(h, 0, sizeof(*h));
	snprintf(h->ident, sizeof(h->ident), "%s", row->ident);
	h->store_kind = (uint16_t)row->kind;
	h->version = row->version;
	h->id = id;
	if (dime_ks_kind(k->ks, &kind, id) != DIME_OK ||
	    dime_ks_sign_pub(k->ks, h->sign_pub, id) != DIME_OK)
		goto out;
	h->key_kind = (uint16_t)kind;
	if (kind != DIME_KEY_SIGN && dime_ks_enc_pub(k->ks, h->enc_pub, id) != DIME_OK)
		goto out;
	k->n++;
out:
	dime_wipe(blob, len);
	free(blob);
	return l->rc != DIME_OK;
}

static const struct kp_keys *kp_sort_keys; /* qsort has no argument: set under the load */

static int
kp_cmp_pub(const void *a, const void *b)
{
	return memcmp(kp_sort_keys->v[*(const uint32_t *)a].sign_pub,
		      kp_sort_keys->v[*(const uint32_t *)b].sign_pub, DIME_ED25519_PUB_BYTES);
}

static pthread_mutex_t kp_sort_mu = PTHREAD_MUTEX_INITIALIZER;

/* Open the store with its secrets, load every hosted key of every version, close the store
 * (which wipes its key-encryption key). Returns: DIME_OK, DIME_E_IO (err: why), DIME_E_NOMEM. */
static int
kp_keys_load(struct kp_keys **out, const char *path, char *err, size_t errlen)
{
	static const enum dime_store_kind kinds[2] = {DIME_STORE_ORG_KEY, DIME_STORE_USER_KEY};
	struct kp_load l = {0};
	int rc;

	*out = NULL;
	err[0] = 0;
	if ((l.k = calloc(1, sizeof(*l.k))) == NULL || dime_ks_new(&l.k->ks) != DIME_OK) {
		snprintf(err, errlen, "out of memory");
		rc = DIME_E_NOMEM;
		goto out;
	}
	if ((rc = dime_store_open_flags(&l.st, path, DIME_STORE_OPEN_EXISTING, err, errlen)) !=
	    DIME_OK) {
		if (err[0] == 0)
			snprintf(err, errlen, "cannot open the store");
		rc = DIME_E_IO;
		goto out;
	}
	l.rc = DIME_OK;
	for (int i = 0; i < 2 && l.rc == DIME_OK; i++)
		if (dime_store_list(l.st, NULL, kinds[i], kp_load_row, &l) != DIME_OK &&
		    l.rc == DIME_OK) {
			snprintf(err, errlen, "cannot list the store's keys");
			l.rc = DIME_E_IO;
		}
	if ((rc = l.rc) != DIME_OK)
		goto out;
	if (l.k->n > 0 && (l.k->by_pub = malloc(l.k->n * sizeof(*l.k->by_pub))) == NULL) {
		rc = DIME_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < l.k->n; i++)
		l.k->by_pub[i] = (uint32_t)i;
	pthread_mutex_lock(&kp_sort_mu);
	kp_sort_keys = l.k;
	if (l.k->n > 1)
		qsort(l.k->by_pub, l.k->n, sizeof(*l.k->by_pub), kp_cmp_pub);
	kp_sort_keys = NULL;
	pthread_mutex_unlock(&kp_sort_mu);
out:
	dime_store_close(l.st);
	if (rc != DIME_OK) {
		if (err[0] == 0)
			snprintf(err, errlen, "%s", dime_strerror(rc));
		kp_keys_free(l.k);
		return rc;
	}
	*out = l.k;
	return DIME_OK;
}

/* The keystore id of the key whose Ed25519 public key is pub. A key hosted under several
 * identities or versions has one secret, so any of its entries will do. */
static const struct kp_hosted *
kp_keys_find(const struct kp_keys *k, const uint8_t pub[DIME_ED25519_PUB_BYTES])
{
	size_t lo = 0, hi = k->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct kp_hosted *h = &k->v[k->by_pub[mid]];
		int c = memcmp(pub, h->sign_pub, DIME_ED25519_PUB_BYTES); /* public: not secret */

		if (c == 0)
			return h;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static int
kp_reload(struct kp_srv *s)
{
	struct kp_keys *k = NULL, *old;
	char err[256];
	int rc = kp_keys_load(&k, s->store_path, err, sizeof(err));

	if (rc != DIME_OK) {
		kp_log(s, "dime-kp: event=reload rc=%d why=\"%s\" (the old keys stay)", rc, err);
		return DIME_E_IO;
	}
	pthread_rwlock_wrlock(&s->lk);
	old = s->keys;
	s->keys = k;
	pthread_rwlock_unlock(&s->lk);
	kp_keys_free(old);
	kp_log(s, "dime-kp: event=reload rc=0 keys=%zu", k->n);
	return DIME_OK;
}

/* ---- serving ---- */

struct kp_in {
	struct kp_req q;
	struct dime_rd items; /* the items and, inline, the payload after them */
	int fd;		      /* the memfd passed with the request, -1: none */
};

static int
kp_send(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	do
		n = send(fd, p, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)len ? 0 : -1;
}

static void
kp_rep_head(struct dime_wr *w, const struct kp_req *q, uint8_t flags, uint16_t count, int rc)
{
	struct kp_rep p = {KP_MAGIC, q->seq, q->op, flags, count, (int32_t)rc};

	kp_wr_rep(w, &p);
}

/* Sign count inputs: lengths in the items, bytes inline after them or in the memfd. */
static int
kp_do_sign(struct kp_srv *s, const struct kp_keys *k, const struct kp_hosted *h, struct kp_in *in,
	   struct dime_wr *w, const char **why)
{
	uint32_t lens[DIME_KP_BATCH_MAX];
	size_t total = 0;
	uint8_t *copy = NULL;
	const uint8_t *pay;
	int rc = DIME_OK, first = DIME_OK;

	for (size_t i = 0; i < in->q.count; i++) {
		lens[i] = dime_rd_be32(&in->items);
		if (dime_size_add(&total, total, lens[i]) != DIME_OK)
			break;
	}
	if (in->items.err != DIME_OK) {
		*why = "items truncated";
		return DIME_E_MALFORMED;
	}
	if (total != in->q.payload_len) {
		*why = "payload length is not the sum of the inputs";
		return DIME_E_MALFORMED;
	}
	if (total > s->sign_max) {
		*why = "sign input over sign_max";
		return DIME_E_LIMIT;
	}
	if (in->fd < 0) {
		if (dime_rd_left(&in->items) != total) {
			*why = "inline payload length lies";
			return DIME_E_MALFORMED;
		}
		pay = dime_rd_take(&in->items, total);
	} else {
		struct stat sb;
		size_t got = 0;

		if (dime_rd_left(&in->items) != 0) {
			*why = "bytes after the items of a memfd request";
			return DIME_E_MALFORMED;
		}
		if (fstat(in->fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < 0 ||
		    (uint64_t)sb.st_size != total) {
			*why = "memfd size is not the payload length";
			return DIME_E_MALFORMED;
		}
		/* Ed25519 hashes the message twice: signing bytes the client can still change
		 * between the two passes would leak the key. So copy once, sign the copy. */
		if (total > 0 && (copy = malloc(total)) == NULL) {
			*why = "out of memory";
			return DIME_E_NOMEM;
		}
		while (got < total) {
			ssize_t n = pread(in->fd, copy + got, total - got, (off_t)got);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		if (got != total) {
			free(copy);
			*why = "memfd shorter than it said";
			return DIME_E_MALFORMED;
		}
		pay = copy;
	}
	kp_rep_head(w, &in->q, 0, in->q.count, DIME_OK);
	for (size_t i = 0, off = 0; i < in->q.count; i++) {
		uint8_t sig[DIME_SIG_BYTES];

		rc = dime_ks_sign(k->ks, sig, h->id, total == 0 ? (const uint8_t *)"" : pay + off,
				  lens[i]);
		if (rc != DIME_OK)
			memset(sig, 0, sizeof(sig));
		if (first == DIME_OK)
			first = rc;
		kp_wr_rc(w, rc);
		dime_wr_bytes(w, sig, sizeof(sig));
		off += lens[i];
	}
	free(copy);
	/* the overall rc is the first item's failure, patched in place (offset 12) */
	if (first != DIME_OK && w->err == DIME_OK) {
		struct dime_wr p;

		dime_wr_init(&p, w->p + 12, 4);
		kp_wr_rc(&p, first);
	}
	return DIME_OK;
}

static int
kp_do_ecdh(const struct kp_keys *k, const struct kp_hosted *h, struct kp_in *in, struct dime_wr *w,
	   const char **why)
{
	uint8_t pubs[DIME_KP_BATCH_MAX][DIME_SECP_PUB_BYTES];
	uint8_t x[DIME_KP_BATCH_MAX][DIME_ECDH_BYTES];
	int rc[DIME_KP_BATCH_MAX], first;
	size_t n = in->q.count;

	if (h->key_kind == DIME_KEY_SIGN) {
		*why = "ecdh with a sign-only key";
		return DIME_E_INVALID;
	}
	if (in->q.payload_len != 0 || in->fd >= 0) {
		*why = "ecdh takes no payload";
		return DIME_E_MALFORMED;
	}
	for (size_t i = 0; i < n; i++)
		dime_rd_copy(&in->items, pubs[i], KP_ECDH_ITEM);
	if (in->items.err != DIME_OK || dime_rd_left(&in->items) != 0) {
		*why = "ecdh items are not count points";
		return DIME_E_MALFORMED;
	}
	first =
	    dime_ks_ecdh_batch(k->ks, h->id, (const uint8_t(*)[DIME_SECP_PUB_BYTES])pubs, n, x, rc);
	kp_rep_head(w, &in->q, 0, (uint16_t)n, first);
	for (size_t i = 0; i < n; i++) {
		kp_wr_rc(w, rc[i]);
		dime_wr_bytes(w, x[i], DIME_ECDH_BYTES);
	}
	dime_wipe(x, sizeof(x));
	return DIME_OK;
}

/* Hello: every key in load order, KP_HELLO_PER a datagram, all but the last flagged MORE. */
static int
kp_do_hello(const struct kp_keys *k, const struct kp_req *q, int fd, uint8_t *buf)
{
	size_t i = 0;

	do {
		size_t m = k->n - i < KP_HELLO_PER ? k->n - i : KP_HELLO_PER;
		struct dime_wr w;

		dime_wr_init(&w, buf, KP_DGRAM_MAX);
		kp_rep_head(&w, q, i + m < k->n ? KP_REP_MORE : 0, (uint16_t)m, DIME_OK);
		for (size_t j = i; j < i + m; j++) {
			const struct kp_hosted *h = &k->v[j];
			uint8_t ident[KP_IDENT_MAX] = {0};

			memcpy(ident, h->ident, strlen(h->ident));
			dime_wr_be16(&w, h->store_kind);
			dime_wr_be32(&w, h->version);
			dime_wr_be16(&w, h->key_kind);
			dime_wr_bytes(&w, h->sign_pub, sizeof(h->sign_pub));
			dime_wr_bytes(&w, h->enc_pub, sizeof(h->enc_pub));
			dime_wr_bytes(&w, ident, sizeof(ident));
		}
		DIME_ASSERT(w.err == DIME_OK);
		if (kp_send(fd, buf, w.off) != 0)
			return -1;
		i += m;
	} while (i < k->n);
	return 0;
}

/* One datagram in, one reply out (several for hello). Returns -1 when the channel is gone. */
static int
kp_handle(struct kp_srv *s, int fd, const uint8_t *dg, size_t len, int truncated, int pfd,
	  uint8_t *out)
{
	struct kp_in in = {.fd = pfd};
	struct dime_rd r;
	struct dime_wr w;
	const struct kp_hosted *h = NULL;
	const struct kp_keys *k;
	const char *why = "";
	int rc = DIME_OK, ret;

	dime_rd_init(&r, dg, len);
	kp_rd_req(&r, &in.q);
	if (len >= 8) { /* answer even a broken header with the sequence number it carries */
		struct dime_rd s8;

		dime_rd_init(&s8, dg + 4, 4);
		in.q.seq = dime_rd_be32(&s8);
	} else {
		in.q.seq = 0;
	}
	if (len >= 9)
		in.q.op = dg[8];
	else
		in.q.op = 0;
	dime_rd_init(&in.items, dg + (len < KP_REQ_HDR ? len : KP_REQ_HDR),
		     len < KP_REQ_HDR ? 0 : len - KP_REQ_HDR);
	if (truncated) {
		rc = DIME_E_LIMIT;
		why = "datagram larger than the limit";
	} else if (r.err != DIME_OK) {
		rc = DIME_E_MALFORMED;
		why = "short header";
	} else if (in.q.magic != KP_MAGIC) {
		rc = DIME_E_MALFORMED;
		why = "bad magic or version";
	} else if (in.q.op < KP_OP_HELLO || in.q.op > KP_OP_RELOAD) {
		rc = DIME_E_INVALID;
		why = "unknown op";
	} else if ((in.q.flags & ~KP_REQ_FD) != 0 ||
		   ((in.q.flags & KP_REQ_FD) != 0) != (pfd >= 0)) {
		rc = DIME_E_MALFORMED;
		why = "bad flags or a descriptor without the flag";
	} else if (in.q.op == KP_OP_HELLO || in.q.op == KP_OP_RELOAD) {
		if (in.q.count != 0 || in.q.payload_len != 0 || len != KP_REQ_HDR || pfd >= 0) {
			rc = DIME_E_MALFORMED;
			why = "hello and reload take nothing";
		}
	} else if (in.q.count == 0) {
		rc = DIME_E_MALFORMED;
		why = "count 0";
	} else if (in.q.count > DIME_KP_BATCH_MAX) {
		rc = DIME_E_LIMIT;
		why = "count over the batch limit";
	} else if (in.q.op == KP_OP_ECDH && pfd >= 0) {
		rc = DIME_E_MALFORMED;
		why = "a descriptor with ecdh";
	}
	if (rc == DIME_OK && in.q.op == KP_OP_RELOAD) {
		rc = kp_reload(s);
		why = rc == DIME_OK ? "" : "reload failed";
		dime_wr_init(&w, out, KP_DGRAM_MAX);
		kp_rep_head(&w, &in.q, 0, 0, rc);
		return kp_send(fd, out, w.off);
	}
	if (rc != DIME_OK)
		goto refuse;
	pthread_rwlock_rdlock(&s->lk);
	k = s->keys;
	if (in.q.op == KP_OP_HELLO) {
		ret = kp_do_hello(k, &in.q, fd, out);
		pthread_rwlock_unlock(&s->lk);
		return ret;
	}
	if ((h = kp_keys_find(k, in.q.key)) == NULL) {
		rc = DIME_E_NOTFOUND;
		why = "unknown key";
	} else {
		dime_wr_init(&w, out, KP_DGRAM_MAX);
		rc = in.q.op == KP_OP_SIGN ? kp_do_sign(s, k, h, &in, &w, &why)
					   : kp_do_ecdh(k, h, &in, &w, &why);
	}
	pthread_rwlock_unlock(&s->lk);
	if (rc == DIME_OK) {
		DIME_ASSERT(w.err == DIME_OK);
		ret = kp_send(fd, out, w.off);
		dime_wipe(out, w.off); /* ECDH x values are secrets */
		return ret;
	}
refuse:
	kp_log(s, "dime-kp: event=refused op=%s seq=%u len=%zu rc=%d why=\"%s\"",
	       kp_op_name(in.q.op), in.q.seq, len, rc, why);
	dime_wr_init(&w, out, KP_DGRAM_MAX);
	kp_rep_head(&w, &in.q, 0, 0, rc);
	return kp_send(fd, out, w.off);
}

/* A zero-length read is a zero-length datagram or the peer's close: POLLHUP tells. */
static int
kp_peer_gone(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) < 0 || (p.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static void *
kp_chan_main(void *arg)
{
	struct kp_chan_arg *a = arg;
	struct kp_srv *s = a->s;
	uint8_t *in, *out;
	union {
		struct cmsghdr h;
		uint8_t b[CMSG_SPACE(sizeof(int) * 8)];
	} cm;

	pthread_mutex_lock(&s->go_mu);
	while (!s->go)
		pthread_cond_wait(&s->go_cv, &s->go_mu);
	pthread_mutex_unlock(&s->go_mu);
	in = malloc(KP_DGRAM_MAX);
	out = malloc(KP_DGRAM_MAX);
	while (in != NULL && out != NULL) {
		struct iovec iov = {in, KP_DGRAM_MAX};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		int pfd = -1, extra = 0;
		ssize_t n;

		mh.msg_control = cm.b;
		mh.msg_controllen = sizeof(cm.b);
		n = recvmsg(a->fd, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		/* every descriptor received is closed below, whatever the request */
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
				int f;

				memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(f));
				if (pfd < 0)
					pfd = f;
				else {
					close(f);
					extra = 1;
				}
			}
		}
		if (n == 0 && pfd < 0 && kp_peer_gone(a->fd))
			break;
		if (extra || (mh.msg_flags & MSG_CTRUNC)) { /* more than one descriptor */
			if (pfd >= 0)
				close(pfd);
			pfd = -1;
			mh.msg_flags |= MSG_TRUNC;
		}
		if (kp_handle(s, a->fd, in, (size_t)n, (mh.msg_flags & MSG_TRUNC) != 0, pfd, out) !=
		    0) {
			if (pfd >= 0)
				close(pfd);
			break;
		}
		if (pfd >= 0)
			close(pfd);
	}
	free(in);
	free(out);
	close(a->fd);
	if (atomic_fetch_sub(&s->live, 1) == 1)
		pthread_kill(s->main, SIGUSR1); /* the last channel closed: the main thread ends */
	return NULL;
}

/* ---- hardening ---- */

static int
kp_seccomp(void)
{
	/* What serving and reloading (SQLite reading the store) need; nothing that reaches the
	 * network, starts programs or threads (no clone: the threads exist already), or changes
	 * identities. TSYNC: every thread of the process gets the filter at once. */
	static const int allow[] = {
	    SCMP_SYS(read),
	    SCMP_SYS(write),
	    SCMP_SYS(pread64),
	    SCMP_SYS(pwrite64),
	    SCMP_SYS(recvmsg),
	    SCMP_SYS(sendmsg),
	    SCMP_SYS(sendto),
	    SCMP_SYS(recvfrom),
	    SCMP_SYS(close),
	    SCMP_SYS(fstat),
	    SCMP_SYS(newfstatat),
	    SCMP_SYS(stat),
	    SCMP_SYS(lstat),
	    SCMP_SYS(statx),
	    SCMP_SYS(lseek),
	    SCMP_SYS(openat),
	    SCMP_SYS(open),
	    SCMP_SYS(fcntl),
	    SCMP_SYS(flock),
	    SCMP_SYS(fsync),
	    SCMP_SYS(fdatasync),
	    SCMP_SYS(ftruncate),
	    SCMP_SYS(unlink),
	    SCMP_SYS(unlinkat),
	    SCMP_SYS(access),
	    SCMP_SYS(faccessat),
	    SCMP_SYS(faccessat2),
	    SCMP_SYS(getcwd),
	    SCMP_SYS(readlink),
	    SCMP_SYS(readlinkat),
	    SCMP_SYS(fchmod),
	    SCMP_SYS(fchown),
	    SCMP_SYS(geteuid),
	    SCMP_SYS(getuid),
	    SCMP_SYS(getegid),
	    SCMP_SYS(getgid),
	    SCMP_SYS(getpid),
	    SCMP_SYS(gettid),
	    SCMP_SYS(getppid),
	    SCMP_SYS(mmap),
	    SCMP_SYS(munmap),
	    SCMP_SYS(mremap),
	    SCMP_SYS(mprotect),
	    SCMP_SYS(madvise),
	    SCMP_SYS(brk),
	    SCMP_SYS(mlock),
	    SCMP_SYS(munlock),
	    SCMP_SYS(futex),
	    SCMP_SYS(set_robust_list),
	    SCMP_SYS(rseq),
	    SCMP_SYS(exit),
	    SCMP_SYS(exit_group),
	    SCMP_SYS(rt_sigreturn),
	    SCMP_SYS(rt_sigprocmask),
	    SCMP_SYS(rt_sigtimedwait),
	    SCMP_SYS(rt_sigaction),
	    SCMP_SYS(sigaltstack),
	    SCMP_SYS(tgkill),
	    SCMP_SYS(clock_gettime),
	    SCMP_SYS(gettimeofday),
	    SCMP_SYS(nanosleep),
	    SCMP_SYS(clock_nanosleep),
	    SCMP_SYS(sched_yield),
	    SCMP_SYS(getrandom),
	    SCMP_SYS(poll),
	    SCMP_SYS(ppoll),
	    SCMP_SYS(prctl),
	    SCMP_SYS(sysinfo),
	    SCMP_SYS(sched_getaffinity),
	    SCMP_SYS(getdents64),
	    SCMP_SYS(uname),
	    SCMP_SYS(umask),
	    SCMP_SYS(chmod),
	    SCMP_SYS(fchmodat),
	    SCMP_SYS(restart_syscall),
	};
	scmp_filter_ctx f = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int rc = -1;

	if (f == NULL)
		return -1;
	if (seccomp_attr_set(f, SCMP_FLTATR_CTL_TSYNC, 1) != 0)
		goto out;
	for (size_t i = 0; i < sizeof(allow) / sizeof(allow[0]); i++)
		if (allow[i] >= 0 && seccomp_rule_add(f, SCMP_ACT_ALLOW, allow[i], 0) != 0)
			goto out;
	/* NO_NEW_PRIVS is set by seccomp_load (SCMP_FLTATR_CTL_NNP defaults to on) */
	rc = seccomp_load(f) == 0 ? 0 : -1;
out:
	seccomp_release(f);
	return rc;
}

static void
kp_harden(struct kp_srv *s, unsigned harden)
{
	if (harden & DIME_KP_HARDEN_NODUMP) {
		struct rlimit no = {0, 0};

		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || setrlimit(RLIMIT_CORE, &no) != 0)
			kp_log(s, "dime-kp: event=harden what=nodump errno=%d", errno);
	}
	if ((harden & DIME_KP_HARDEN_MLOCK) && KP_SANITIZED) {
		kp_log(s, "dime-kp: event=harden what=mlock skipped=sanitizer");
	} else if (harden & DIME_KP_HARDEN_MLOCK) {
		struct rlimit ml;
		int flags = MCL_CURRENT;

		/* MCL_FUTURE under a finite limit would make later allocations fail: only where
		 * the limit cannot bite (unlimited, or root, whose CAP_IPC_LOCK ignores it) */
		if (getrlimit(RLIMIT_MEMLOCK, &ml) == 0 &&
		    (ml.rlim_cur == RLIM_INFINITY || geteuid() == 0))
			flags |= MCL_FUTURE;
		if (mlockall(flags) != 0)
			kp_log(s, "dime-kp: event=harden what=mlock errno=%d", errno);
	}
	if ((harden & DIME_KP_HARDEN_SECCOMP) && KP_SANITIZED) {
		kp_log(s, "dime-kp: event=harden what=seccomp skipped=sanitizer");
	} else if ((harden & DIME_KP_HARDEN_SECCOMP) && kp_seccomp() != 0) {
		kp_log(s, "dime-kp: event=harden what=seccomp errno=%d", errno);
	}
}

/* ---- the process ---- */

int
dime_kp_serve(const char *store_path, const int *fds, size_t n, const struct dime_kp_conf *conf)
{
	struct kp_srv s;
	struct kp_chan_arg args[DIME_KP_CHANNELS_MAX];
	pthread_t th[DIME_KP_CHANNELS_MAX];
	pthread_attr_t attr;
	sigset_t set;
	char err[256];
	size_t started = 0;
	int sig, done = 0;

	memset(&s, 0, sizeof(s));
	s.store_path = store_path;
	s.sign_max = conf != NULL && conf->sign_max > 0 ? conf->sign_max : DIME_KP_SIGN_MAX_DEFAULT;
	s.log_fd = conf != NULL ? conf->log_fd : -1;
	pthread_mutex_init(&s.log_mu, NULL);
	pthread_rwlock_init(&s.lk, NULL);
	if (n == 0 || n > DIME_KP_CHANNELS_MAX || fds == NULL) {
		kp_log(&s, "dime-kp: event=start rc=%d why=\"bad channel count\"", DIME_E_INVALID);
		return 2;
	}
	/* Signals: the parent's handlers mean nothing here. HUP reloads, TERM ends, USR1 is the
	 * last channel thread saying it is done; INT (a terminal's ^C) is the parent's business. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (kp_keys_load(&s.keys, store_path, err, sizeof(err)) != DIME_OK) {
		kp_log(&s, "dime-kp: event=start rc=%d why=\"%s\"", DIME_E_IO, err);
		return 2;
	}
	kp_log(&s, "dime-kp: event=start keys=%zu channels=%zu", s.keys->n, n);
	/* A reload never asks a terminal (no thread runs yet, as the setter wants): the filter
	 * has no ioctl, and a passphrase store reloads from $DIME_PASSPHRASE_FILE or fails,
	 * keeping the old keys. */
	dime_store_set_passphrase_fn(NULL, NULL);
	s.main = pthread_self();
	pthread_mutex_init(&s.go_mu, NULL);
	pthread_cond_init(&s.go_cv, NULL);
	atomic_store(&s.live, n);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, KP_THREAD_STACK);
	for (size_t i = 0; i < n; i++) {
		args[i].s = &s;
		args[i].fd = fds[i];
		if (pthread_create(&th[i], &attr, kp_chan_main, &args[i]) != 0) {
			kp_log(&s, "dime-kp: event=start why=\"cannot start thread %zu\"", i);
			/* the channels without a thread close: their clients see EOF */
			for (size_t j = i; j < n; j++)
				close(fds[j]);
			if (atomic_fetch_sub(&s.live, n - i) == n - i)
				done = 1;
			break;
		}
		started++;
	}
	pthread_attr_destroy(&attr);
	kp_harden(&s, conf != NULL ? conf->harden : DIME_KP_HARDEN_ALL);
	pthread_mutex_lock(&s.go_mu);
	s.go = 1;
	pthread_cond_broadcast(&s.go_cv);
	pthread_mutex_unlock(&s.go_mu);
	while (!done) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			(void)kp_reload(&s);
		} else if (sig == SIGTERM) {
			/* threads may be mid-request: the keys go with the process, not before */
			kp_log(&s, "dime-kp: event=stop why=SIGTERM");
			return 0;
		} else if (sig == SIGUSR1 && atomic_load(&s.live) == 0) {
			done = 1;
		}
	}
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	kp_keys_free(s.keys);
	kp_log(&s, "dime-kp: event=stop why=\"every channel closed\"");
	return 0;
}

/* ---- spawning and supervision ---- */

static uint64_t
kp_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static int
kp_fd_kept(int fd, const int *keep, size_t n_keep)
{
	for (size_t i = 0; i < n_keep; i++)
		if (keep[i] == fd)
			return 1;
	return 0;
}

/* In a fresh child: close every descriptor but stdio and keep[0..n): no listening socket, no
 * store connection, no client end reaches the key process. */
static void
kp_close_others(const int *keep, size_t n_keep)
{
	int fds[1024];
	size_t n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (d == NULL) {
		for (int fd = 3; fd < 4096; fd++)
			if (!kp_fd_kept(fd, keep, n_keep))
				close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL && n < sizeof(fds) / sizeof(fds[0])) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && fd > 2 && fd != dirfd(d) &&
		    !kp_fd_kept(fd, keep, n_keep))
			fds[n++] = fd;
	}
	closedir(d);
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

static void
kp_child_signals(void)
{
	sigset_t none;

	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGUSR1, SIG_DFL);
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&none);
	pthread_sigmask(SIG_SETMASK, &none, NULL);
}

/* Tell every channel's client that requests in flight are lost (it answers them
 * DIME_E_AGAIN at once instead of at its timeout). */
static void
kp_notify_restart(const int *fds, size_t n)
{
	uint8_t b[KP_REP_HDR];
	struct kp_rep p = {KP_MAGIC, 0, KP_OP_RESTART, 0, 0, DIME_E_AGAIN};
	struct dime_wr w;

	dime_wr_init(&w, b, sizeof(b));
	kp_wr_rep(&w, &p);
	for (size_t i = 0; i < n; i++)
		(void)!send(fds[i], b, sizeof(b), MSG_NOSIGNAL | MSG_DONTWAIT);
}

static pid_t
kp_start(const char *store_path, const int *fds, size_t n, const struct dime_kp_conf *conf)
{
	pid_t parent = getpid(), pid = fork();

	if (pid != 0)
		return pid;
	kp_child_signals();
	/* the supervisor gone, the key process goes too */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) != 0 || getppid() != parent)
		_exit(1);
	_exit(dime_kp_serve(store_path, fds, n, conf));
}

static void __attribute__((noreturn))
kp_supervise(const char *store_path, const int *fds, size_t n, const struct dime_kp_conf *conf)
{
	struct kp_srv s = {.log_fd = conf != NULL ? conf->log_fd : -1};
	uint64_t started, restart_at = 0;
	unsigned backoff = 0;
	sigset_t set;
	pid_t child;

	pthread_mutex_init(&s.log_mu, NULL);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	child = kp_start(store_path, fds, n, conf);
	started = kp_now_ms();
	if (child < 0) { /* fork failed: try again later, as after a death */
		kp_log(&s, "dime-kp: event=restart why=\"fork: %s\"", strerror(errno));
		restart_at = started + KP_BACKOFF_MAX_MS;
	}
	for (;;) {
		struct timespec ts = {1, 0};
		int status, sig;
		pid_t p;

		if (child <= 0 && restart_at != 0) {
			uint64_t now = kp_now_ms();

			if (now >= restart_at) {
				child = kp_start(store_path, fds, n, conf);
				started = now;
				restart_at = 0;
				if (child < 0) {
					kp_log(&s, "dime-kp: event=restart why=\"fork: %s\"",
					       strerror(errno));
					restart_at = now + KP_BACKOFF_MAX_MS;
				}
				continue;
			}
			ts.tv_sec = (time_t)((restart_at - now) / 1000u);
			ts.tv_nsec = (long)((restart_at - now) % 1000u) * 1000000L;
		}
		sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGTERM) {
			if (child > 0) {
				kill(child, SIGTERM);
				while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
					;
			}
			_exit(0);
		}
		if (sig == SIGHUP && child > 0)
			kill(child, SIGHUP);
		while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
			uint64_t up = kp_now_ms() - started;

			if (p != child)
				continue;
			child = 0;
			if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
				_exit(0); /* every channel closed by its client: nobody to serve */
			kp_notify_restart(fds, n);
			backoff = up < KP_FAST_DEATH_MS
				      ? (backoff == 0
					     ? KP_BACKOFF_MIN_MS
					     : (backoff * 2 > KP_BACKOFF_MAX_MS ? KP_BACKOFF_MAX_MS
										: backoff * 2))
				      : 0;
			kp_log(&s,
			       "dime-kp: event=restart status=%d signal=%d uptime_ms=%llu "
			       "backoff_ms=%u",
			       WIFEXITED(status) ? WEXITSTATUS(status) : -1,
			       WIFSIGNALED(status) ? WTERMSIG(status) : 0, (unsigned long long)up,
			       backoff);
			restart_at = kp_now_ms() + backoff;
			if (restart_at == 0)
				restart_at = 1;
		}
	}
}

int
dime_kp_spawn(pid_t *pid, int *fds, size_t n, const char *store_path,
	      const struct dime_kp_conf *conf, int supervise, char *err, size_t errlen)
{
	int srv[DIME_KP_CHANNELS_MAX], keep[DIME_KP_CHANNELS_MAX + 1];
	size_t made = 0;
	pid_t parent = getpid(), p;
	int rc = DIME_E_IO;

	*pid = -1;
	if (err != NULL && errlen > 0)
		err[0] = 0;
	if (n == 0 || n > DIME_KP_CHANNELS_MAX || fds == NULL) {
		if (err != NULL)
			snprintf(err, errlen, "channels: %zu (1 to %u)", n, DIME_KP_CHANNELS_MAX);
		return DIME_E_INVALID;
	}
	for (; made < n; made++) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
			if (err != NULL)
				snprintf(err, errlen, "socketpair: %s", strerror(errno));
			goto out;
		}
		fds[made] = sv[0];
		srv[made] = sv[1];
	}
	if ((p = fork()) < 0) {
		if (err != NULL)
			snprintf(err, errlen, "fork: %s", strerror(errno));
		goto out;
	}
	if (p == 0) {
		size_t nk = 0;

		kp_child_signals();
		if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) != 0 || getppid() != parent)
			_exit(1);
		for (size_t i = 0; i < n; i++)
			keep[nk++] = srv[i];
		if (conf != NULL && conf->log_fd >= 0)
			keep[nk++] = conf->log_fd;
		kp_close_others(keep, nk);
		if (supervise)
			kp_supervise(store_path, srv, n, conf);
		_exit(dime_kp_serve(store_path, srv, n, conf));
	}
	*pid = p;
	rc = DIME_OK;
out:
	for (size_t i = 0; i < made; i++) {
		close(srv[i]);
		if (rc != DIME_OK) {
			close(fds[i]);
			fds[i] = -1;
		}
	}
	return rc;
}

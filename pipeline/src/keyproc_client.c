/* The key process client (dime/keyproc.h): channels checked out one request at a time, each
 * round trip bounded by a timeout, replies matched by sequence number; and the remote keystore
 * backend that turns dime_ks_sign / dime_ks_ecdh_batch into requests. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dime/keyproc.h"
#include "dime/store.h"
#include "keyproc_int.h"

struct kp_chan {
	int fd;
	uint32_t seq;
	int busy;
	uint8_t *buf; /* KP_DGRAM_MAX: the request, then each reply datagram */
};

/* A remote keystore's backend context: its ids (1..n) to the keys' Ed25519 public keys.
 * Owned by the client (a keystore only borrows its backend's context), freed with it. */
struct kp_map {
	struct kp_map *next;
	struct dime_kp_client *c;
	size_t n;
	uint8_t (*pubs)[DIME_ED25519_PUB_BYTES];
};

struct dime_kp_client {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct kp_chan ch[DIME_KP_CHANNELS_MAX];
	size_t n;
	unsigned timeout_ms;
	struct kp_map *maps; /* under mu */
	_Atomic uint64_t requests, items, timeouts, stale, refused;
};

int
dime_kp_client_new(struct dime_kp_client **out, const int *fds, size_t n, unsigned timeout_ms)
{
	struct dime_kp_client *c;

	*out = NULL;
	if (fds == NULL || n == 0 || n > DIME_KP_CHANNELS_MAX)
		return DIME_E_INVALID;
	for (size_t i = 0; i < n; i++)
		if (fds[i] < 0)
			return DIME_E_INVALID;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return DIME_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		if ((c->ch[i].buf = malloc(KP_DGRAM_MAX)) == NULL) {
			for (size_t j = 0; j < i; j++)
				free(c->ch[j].buf);
			free(c);
			return DIME_E_NOMEM;
		}
		c->ch[i].fd = fds[i];
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->n = n;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : DIME_KP_TIMEOUT_DEFAULT;
	*out = c;
	return DIME_OK;
}

void
dime_kp_client_free(struct dime_kp_client *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++) {
		close(c->ch[i].fd);
		dime_wipe(c->ch[i].buf, KP_DGRAM_MAX);
		free(c->ch[i].buf);
	}
	for (struct kp_map *m = c->maps, *next; m != NULL; m = next) {
		next = m->next;
		free(m->pubs);
		free(m);
	}
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

void
dime_kp_client_stats(struct dime_kp_client *c, struct dime_kp_stats *st)
{
	st->requests = atomic_load(&c->requests);
	st->items = atomic_load(&c->items);
	st->timeouts = atomic_load(&c->timeouts);
	st->stale_replies = atomic_load(&c->stale);
	st->refused = atomic_load(&c->refused);
}

static struct kp_chan *
kp_checkout(struct dime_kp_client *c)
{
	struct kp_chan *ch = NULL;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		for (size_t i = 0; i < c->n && ch == NULL; i++)
			if (!c->ch[i].busy)
				ch = &c->ch[i];
		if (ch != NULL)
			break;
		pthread_cond_wait(&c->cv, &c->mu);
	}
	ch->busy = 1;
	pthread_mutex_unlock(&c->mu);
	return ch;
}

static void
kp_checkin(struct dime_kp_client *c, struct kp_chan *ch)
{
	pthread_mutex_lock(&c->mu);
	ch->busy = 0;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static uint64_t
kp_client_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* Called for each reply datagram of the request (several for hello). items: what follows the
 * header, to be consumed exactly. Returns: DIME_OK or the request's failure. */
typedef int (*kp_rep_fn)(void *arg, const struct kp_rep *p, struct dime_rd *items);

struct kp_out {
	uint8_t op;
	uint16_t count;
	const uint8_t *key; /* NULL: zeros */
	const uint8_t *items;
	size_t items_len;
	const uint8_t *payload; /* inline payload, or NULL with payload_len in the memfd */
	uint32_t payload_len;
	int memfd; /* -1: none */
};

/* Everything already queued on the channel is stale: a reply to a request given up on, or a
 * restart notice from before this request. Returns: 0, or -1 when the channel is closed. */
static int
kp_drain(struct dime_kp_client *c, struct kp_chan *ch)
{
	for (;;) {
		ssize_t n = recv(ch->fd, ch->buf, KP_DGRAM_MAX, MSG_DONTWAIT);

		if (n > 0) {
			dime_wipe(ch->buf, (size_t)n); /* a stale ECDH reply holds secrets */
			atomic_fetch_add(&c->stale, 1);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return -1;
	}
}

static int
kp_call(struct dime_kp_client *c, const struct kp_out *o, kp_rep_fn fn, void *arg)
{
	struct kp_chan *ch = kp_checkout(c);
	struct kp_req q = {KP_MAGIC, 0,	  o->op,	 o->memfd >= 0 ? KP_REQ_FD : 0,
			   o->count, {0}, o->payload_len};
	union {
		struct cmsghdr h;
		uint8_t b[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov;
	struct msghdr mh;
	struct dime_wr w;
	uint64_t deadline = kp_client_now_ms() + c->timeout_ms;
	size_t sent_len = 0, used = 0; /* the bytes of ch->buf written, to wipe */
	int rc = DIME_E_AGAIN, more = 1;
	ssize_t n;

	if (o->key != NULL)
		memcpy(q.key, o->key, sizeof(q.key));
	if (++ch->seq == 0) /* 0 is the supervisor's: never a request's */
		ch->seq = 1;
	q.seq = ch->seq;
	/* before the request is written: draining reads into the same buffer */
	if (kp_drain(c, ch) != 0)
		goto out;
	dime_wr_init(&w, ch->buf, KP_DGRAM_MAX);
	kp_wr_req(&w, &q);
	dime_wr_bytes(&w, o->items, o->items_len);
	if (o->payload != NULL)
		dime_wr_bytes(&w, o->payload, o->payload_len);
	DIME_ASSERT(w.err == DIME_OK); /* callers size requests under KP_DGRAM_MAX */
	iov.iov_base = ch->buf;
	iov.iov_len = w.off;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (o->memfd >= 0) {
		struct cmsghdr *h;

		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.b;
		mh.msg_controllen = sizeof(cm.b);
		h = CMSG_FIRSTHDR(&mh);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &o->memfd, sizeof(int));
	}
	sent_len = used = w.off;
	do
		n = sendmsg(ch->fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sent_len)
		goto out; /* the key process end is gone: temporary */
	atomic_fetch_add(&c->requests, 1);
	atomic_fetch_add(&c->items, o->count);
	while (more) {
		struct pollfd p = {.fd = ch->fd, .events = POLLIN};
		uint64_t now = kp_client_now_ms();
		struct dime_rd r;
		struct kp_rep rep;
		int pr;

		if (now >= deadline) {
			atomic_fetch_add(&c->timeouts, 1);
			rc = DIME_E_AGAIN;
			goto out;
		}
		pr = poll(&p, 1, (int)(deadline - now));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			goto out;
		if (pr == 0)
			continue; /* the deadline check above ends it */
		n = recv(ch->fd, ch->buf, KP_DGRAM_MAX, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (n <= 0) { /* closed: the key process is gone for good */
			rc = DIME_E_AGAIN;
			goto out;
		}
		if ((size_t)n > used)
			used = (size_t)n;
		dime_rd_init(&r, ch->buf, (size_t)n);
		kp_rd_rep(&r, &rep);
		if (r.err != DIME_OK || rep.magic != KP_MAGIC) {
			rc = DIME_E_IO;
			goto out;
		}
		if (rep.op == KP_OP_RESTART && rep.seq == 0) {
			/* the key process died after this request was sent: it may have taken the
			 * request with it. A reply from the new one, if any, is dropped as stale.
			 */
			rc = DIME_E_AGAIN;
			goto out;
		}
		if (rep.seq != q.seq) {
			atomic_fetch_add(&c->stale, 1);
			continue;
		}
		if (rep.op != q.op) {
			rc = DIME_E_IO;
			goto out;
		}
		if (rep.rc != DIME_OK && rep.count == 0)
			atomic_fetch_add(&c->refused, 1);
		more = (rep.flags & KP_REP_MORE) != 0;
		rc = fn(arg, &rep, &r);
		if (rc != DIME_OK)
			goto out;
	}
out:
	/* replies carry ECDH secrets; what kp_drain read was wiped there */
	dime_wipe(ch->buf, used);
	kp_checkin(c, ch);
	return rc;
}

/* ---- sign ---- */

struct kp_sign_res {
	uint8_t *sig;
};

static int
kp_sign_rep(void *arg, const struct kp_rep *p, struct dime_rd *r)
{
	struct kp_sign_res *s = arg;
	int rc;

	if (p->count == 0)
		return p->rc != DIME_OK ? p->rc : DIME_E_IO;
	if (p->count != 1)
		return DIME_E_IO;
	rc = kp_rd_rc(r);
	dime_rd_copy(r, s->sig, DIME_SIG_BYTES);
	if (r->err != DIME_OK || dime_rd_left(r) != 0)
		return DIME_E_IO;
	return rc;
}

/* A payload too big for a datagram goes in a sealed memfd (the key process copies it once
 * anyway: it does not rely on the seals). Returns: the fd, or -1. */
static int
kp_memfd(const uint8_t *msg, size_t len)
{
	int fd = memfd_create("dime-kp-sign", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	size_t off = 0;

	if (fd < 0)
		return -1;
	while (off < len) {
		ssize_t n = write(fd, msg + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	(void)fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
	return fd;
}

static int
kp_be_sign(void *ctx, uint8_t sig[DIME_SIG_BYTES], uint32_t id, const uint8_t *msg, size_t msg_len)
{
	struct kp_map *m = ctx;
	struct kp_sign_res res = {sig};
	uint8_t item[KP_SIGN_ITEM];
	struct kp_out o = {KP_OP_SIGN, 1, NULL, item, sizeof(item), NULL, 0, -1};
	struct dime_wr w;
	int rc;

	memset(sig, 0, DIME_SIG_BYTES);
	if (id == DIME_KS_NONE || id > m->n)
		return DIME_E_NOTFOUND;
	if (msg_len > UINT32_MAX)
		return DIME_E_LIMIT;
	o.key = m->pubs[id - 1];
	o.payload_len = (uint32_t)msg_len;
	dime_wr_init(&w, item, sizeof(item));
	dime_wr_be32(&w, (uint32_t)msg_len);
	if (msg_len <= KP_DGRAM_MAX - KP_REQ_HDR - KP_SIGN_ITEM)
		o.payload = msg_len > 0 ? msg : (const uint8_t *)"";
	else if ((o.memfd = kp_memfd(msg, msg_len)) < 0)
		return DIME_E_IO;
	rc = kp_call(m->c, &o, kp_sign_rep, &res);
	if (o.memfd >= 0)
		close(o.memfd);
	if (rc != DIME_OK)
		memset(sig, 0, DIME_SIG_BYTES);
	return rc;
}

struct kp_sign_many {
	size_t n;
	uint8_t (*sigs)[DIME_SIG_BYTES];
	int *rc;
};

static int
kp_sign_many_rep(void *arg, const struct kp_rep *p, struct dime_rd *r)
{
	struct kp_sign_many *s = arg;

	if (p->count == 0) /* refused whole: every item gets the reason */
		return p->rc != DIME_OK ? p->rc : DIME_E_IO;
	if (p->count != s->n)
		return DIME_E_IO;
	for (size_t i = 0; i < s->n; i++) {
		s->rc[i] = kp_rd_rc(r);
		dime_rd_copy(r, s->sigs[i], DIME_SIG_BYTES);
	}
	if (r->err != DIME_OK || dime_rd_left(r) != 0)
		return DIME_E_IO;
	return DIME_OK;
}

/* Up to DIME_KP_BATCH_MAX signatures per request: lengths as items, the inputs one after the
 * other as the payload (inline when the datagram holds them, else in a memfd). */
static int
kp_be_sign_batch(void *ctx, uint32_t id, const uint8_t *const *msgs, const size_t *lens, size_t n,
		 uint8_t (*sigs)[DIME_SIG_BYTES], int *rc)
{
	struct kp_map *m = ctx;
	int first = DIME_OK;

	for (size_t i = 0; i < n; i++) {
		memset(sigs[i], 0, DIME_SIG_BYTES);
		rc[i] = DIME_E_NOTFOUND;
	}
	if (id == DIME_KS_NONE || id > m->n)
		return n > 0 ? DIME_E_NOTFOUND : DIME_OK;
	for (size_t i = 0; i < n;) {
		size_t k = n - i < DIME_KP_BATCH_MAX ? n - i : DIME_KP_BATCH_MAX, total = 0;
		uint8_t items[DIME_KP_BATCH_MAX * KP_SIGN_ITEM], *payload = NULL;
		struct kp_sign_many res = {k, sigs + i, rc + i};
		struct kp_out o = {
		    KP_OP_SIGN, (uint16_t)k, m->pubs[id - 1], items, k * KP_SIGN_ITEM, NULL, 0, -1};
		struct dime_wr w;
		int crc = DIME_OK;

		dime_wr_init(&w, items, sizeof(items));
		for (size_t j = i; j < i + k; j++) {
			if (lens[j] > UINT32_MAX - total) {
				crc = DIME_E_LIMIT;
				break;
			}
			dime_wr_be32(&w, (uint32_t)lens[j]);
			total += lens[j];
		}
		if (crc == DIME_OK && (payload = malloc(total > 0 ? total : 1)) == NULL)
			crc = DIME_E_NOMEM;
		if (crc == DIME_OK) {
			size_t off = 0;

			for (size_t j = i; j < i + k; j++) {
				if (lens[j] > 0)
					memcpy(payload + off, msgs[j], lens[j]);
				off += lens[j];
			}
			o.payload_len = (uint32_t)total;
			if (total <= KP_DGRAM_MAX - KP_REQ_HDR - k * KP_SIGN_ITEM)
				o.payload = payload;
			else if ((o.memfd = kp_memfd(payload, total)) < 0)
				crc = DIME_E_IO;
		}
		if (crc == DIME_OK)
			crc = kp_call(m->c, &o, kp_sign_many_rep, &res);
		if (o.memfd >= 0)
			close(o.memfd);
		free(payload);
		for (size_t j = i; j < i + k; j++) {
			if (crc != DIME_OK)
				rc[j] = crc;
			if (rc[j] != DIME_OK)
				memset(sigs[j], 0, DIME_SIG_BYTES);
			if (first == DIME_OK)
				first = rc[j];
		}
		i += k;
	}
	return first;
}

/* ---- ECDH ---- */

struct kp_ecdh_res {
	size_t n;
	uint8_t (*x)[DIME_ECDH_BYTES];
	int *rc;
};

static int
kp_ecdh_rep(void *arg, const struct kp_rep *p, struct dime_rd *r)
{
	struct kp_ecdh_res *e = arg;

	if (p->count == 0) /* refused whole: every item gets the reason */
		return p->rc != DIME_OK ? p->rc : DIME_E_IO;
	if (p->count != e->n)
		return DIME_E_IO;
	for (size_t i = 0; i < e->n; i++) {
		e->rc[i] = kp_rd_rc(r);
		dime_rd_copy(r, e->x[i], DIME_ECDH_BYTES);
	}
	if (r->err != DIME_OK || dime_rd_left(r) != 0)
		return DIME_E_IO;
	return DIME_OK;
}

static int
kp_be_ecdh(void *ctx, uint32_t id, const uint8_t (*pubs)[DIME_SECP_PUB_BYTES], size_t n,
	   uint8_t (*x)[DIME_ECDH_BYTES], int *rc)
{
	struct kp_map *m = ctx;
	int first = DIME_OK;

	for (size_t i = 0; i < n; i++) {
		memset(x[i], 0, DIME_ECDH_BYTES);
		rc[i] = DIME_E_NOTFOUND;
	}
	if (id == DIME_KS_NONE || id > m->n)
		return n > 0 ? DIME_E_NOTFOUND : DIME_OK;
	for (size_t i = 0; i < n;) {
		size_t k = n - i < DIME_KP_BATCH_MAX ? n - i : DIME_KP_BATCH_MAX;
		struct kp_ecdh_res e = {k, x + i, rc + i};
		struct kp_out o = {
		    KP_OP_ECDH, (uint16_t)k, m->pubs[id - 1], pubs[i], k * KP_ECDH_ITEM, NULL,
		    0,		-1};
		int crc = kp_call(m->c, &o, kp_ecdh_rep, &e);

		for (size_t j = i; j < i + k; j++) {
			if (crc != DIME_OK)
				rc[j] = crc;
			if (rc[j] != DIME_OK)
				memset(x[j], 0, DIME_ECDH_BYTES);
			if (first == DIME_OK)
				first = rc[j];
		}
		i += k;
	}
	return first;
}

/* ---- hello, reload ---- */

struct kp_hello {
	struct dime_pl_keyinfo *info;
	uint8_t (*sign_pub)[DIME_ED25519_PUB_BYTES];
	uint8_t (*enc_pub)[DIME_SECP_PUB_BYTES];
	enum dime_key_kind *kind;
	size_t n, cap;
};

static int
kp_hello_grow(struct kp_hello *h, size_t want)
{
	size_t cap = h->cap ? h->cap : 16;
	void *a, *b, *c, *d;

	while (cap < want)
		cap *= 2;
	if (cap == h->cap)
		return DIME_OK;
	a = realloc(h->info, cap * sizeof(*h->info));
	if (a != NULL)
		h->info = a;
	b = realloc(h->sign_pub, cap * sizeof(*h->sign_pub));
	if (b != NULL)
		h->sign_pub = b;
	c = realloc(h->enc_pub, cap * sizeof(*h->enc_pub));
	if (c != NULL)
		h->enc_pub = c;
	d = realloc(h->kind, cap * sizeof(*h->kind));
	if (d != NULL)
		h->kind = d;
	if (a == NULL || b == NULL || c == NULL || d == NULL)
		return DIME_E_NOMEM;
	h->cap = cap;
	return DIME_OK;
}

static int
kp_hello_rep(void *arg, const struct kp_rep *p, struct dime_rd *r)
{
	struct kp_hello *h = arg;
	int rc;

	if (p->rc != DIME_OK)
		return p->rc;
	if (p->count > KP_HELLO_PER)
		return DIME_E_IO;
	if ((rc = kp_hello_grow(h, h->n + p->count)) != DIME_OK)
		return rc;
	for (size_t i = 0; i < p->count; i++) {
		struct dime_pl_keyinfo *k = &h->info[h->n];
		uint16_t sk = dime_rd_be16(r), kk;
		const uint8_t *ident;

		memset(k, 0, sizeof(*k));
		k->kind = (enum dime_store_kind)sk;
		k->version = dime_rd_be32(r);
		kk = dime_rd_be16(r);
		dime_rd_copy(r, h->sign_pub[h->n], DIME_ED25519_PUB_BYTES);
		dime_rd_copy(r, h->enc_pub[h->n], DIME_SECP_PUB_BYTES);
		ident = dime_rd_take(r, KP_IDENT_MAX);
		if (r->err != DIME_OK || ident == NULL || memchr(ident, 0, KP_IDENT_MAX) == NULL ||
		    ident[0] == 0 || (sk != DIME_STORE_ORG_KEY && sk != DIME_STORE_USER_KEY) ||
		    (kk != DIME_KEY_ORG && kk != DIME_KEY_USER && kk != DIME_KEY_SIGN))
			return DIME_E_IO;
		memcpy(k->ident, ident, KP_IDENT_MAX);
		h->kind[h->n] = (enum dime_key_kind)kk;
		h->n++;
	}
	return dime_rd_left(r) == 0 ? DIME_OK : DIME_E_IO;
}

int
dime_kp_client_keys(struct dime_kp_client *c, struct dime_ks **ks, struct dime_pl_keyinfo **keys,
		    size_t *n)
{
	struct kp_hello h = {0};
	struct kp_out o = {KP_OP_HELLO, 0, NULL, NULL, 0, NULL, 0, -1};
	struct kp_map *m = NULL;
	struct dime_ks_backend be = {kp_be_sign, kp_be_ecdh, NULL, kp_be_sign_batch};
	int rc;

	*ks = NULL;
	*keys = NULL;
	*n = 0;
	if ((rc = kp_call(c, &o, kp_hello_rep, &h)) != DIME_OK)
		goto out;
	rc = DIME_E_NOMEM;
	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (h.n > 0 && (m->pubs = malloc(h.n * sizeof(*m->pubs))) == NULL))
		goto out;
	m->c = c;
	be.ctx = m;
	if ((rc = dime_ks_new_remote(ks, &be)) != DIME_OK)
		goto out;
	for (size_t i = 0; i < h.n; i++) {
		uint32_t id;

		if ((rc = dime_ks_add_public(*ks, &id, h.kind[i], h.sign_pub[i], h.enc_pub[i])) !=
		    DIME_OK) {
			rc = rc == DIME_E_NOMEM ? rc
						: DIME_E_IO; /* the key process sent a bad key */
			goto out;
		}
		DIME_ASSERT(id == i + 1); /* dime_ks_add_public gives ids in order */
		memcpy(m->pubs[i], h.sign_pub[i], DIME_ED25519_PUB_BYTES);
		h.info[i].id = id;
	}
	m->n = h.n;
	pthread_mutex_lock(&c->mu);
	m->next = c->maps;
	c->maps = m;
	pthread_mutex_unlock(&c->mu);
	m = NULL;
	*keys = h.info;
	*n = h.n;
	h.info = NULL;
	rc = DIME_OK;
out:
	if (rc != DIME_OK) {
		dime_ks_free(*ks);
		*ks = NULL;
	}
	if (m != NULL)
		free(m->pubs);
	free(m);
	free(h.info);
	free(h.sign_pub);
	free(h.enc_pub);
	free(h.kind);
	return rc;
}

static int
kp_reload_rep(void *arg, const struct kp_rep *p, struct dime_rd *r)
{
	(void)arg;
	if (p->count != 0 || dime_rd_left(r) != 0)
		return DIME_E_IO;
	return p->rc == DIME_OK ? DIME_OK : DIME_E_IO;
}

int
dime_kp_client_reload(struct dime_kp_client *c)
{
	struct kp_out o = {KP_OP_RELOAD, 0, NULL, NULL, 0, NULL, 0, -1};

	return kp_call(c, &o, kp_reload_rep, NULL);
}

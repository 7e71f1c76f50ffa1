/* dime_ed25519_verify_batch gives libsodium's verdict on every item: ok[i] ==
 * (crypto_sign_verify_detached(sig, msg, len, pub) == 0), the return value is DIME_OK exactly when
 * every item passes, and the ok == NULL form returns the same. Batches of 1 to 200 mix valid
 * signatures (many keys, hot keys) with RFC 8032 §7.1 vectors, the edge cases of "Taming the many
 * EdDSAs" (Chalkias, Garillot, Nikolaenko 2020) built with libsodium's own point and scalar API,
 * pairs of bad signatures whose torsion errors cancel (T and -T), and a differential loop of
 * random items: 200,000 by default, $DIME_TEST_ED25519_N for a long run ($DIME_TEST_ED25519_SEED
 * varies the items). */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "dime/crypto.h"
#include "tlib.h"

#define N_OF(a)	  (sizeof(a) / sizeof((a)[0]))
#define MSG_MAX	  320 /* messages up to 300 bytes, and one more for the length flips */
#define N_KEYS	  64
#define N_HOT	  4 /* keys 0..3: the hot keys, with their torsion-shifted points */
#define N_NONCE	  4
#define N_FILL	  1024
#define BATCH_MAX 200
#define N_SHOWN	  20 /* mismatches printed in full */

static const size_t sizes[] = {1, 2, 3, 7, 16, 63, 64, 65, 200};

/* L = 2^252 + 27742317777372353535851937790883648493, little-endian */
static const uint8_t ed_L[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
				 0xa2, 0xde, 0xf9, 0xde, 0x14, 0,    0,	   0,	 0,    0,    0,
				 0,    0,    0,	   0,	 0,    0,    0,	   0,	 0,    0x10};
static const uint8_t pt_id[32] = {1}; /* the identity, y = 1 */
static const uint8_t zero32[32];

/* One item of a batch, with libsodium's verdict once computed. */
struct tc {
	uint8_t sig[64], pub[32], mbuf[MSG_MAX];
	const uint8_t *ext; /* the message when it is not in mbuf (RFC 8032 vectors) */
	size_t msg_len;
	uint8_t msg_null; /* pass msg = NULL (msg_len is 0) */
	int8_t want;	  /* crypto_sign_verify_detached == 0; -1 before it is asked */
	int8_t pred;	  /* the verdict the construction promises; -1 when it promises none */
	char kind[56];
};

struct key {
	uint8_t a[32];				/* the secret scalar mod L: pub = [a]B */
	uint8_t pub[32];			/* A */
	uint8_t sk[64];				/* libsodium's secret key */
	uint8_t r[N_NONCE][32], R[N_NONCE][32]; /* nonces, reused across messages (a test only) */
	uint8_t at[8][32];			/* A + [k]T8 (hot keys only) */
	uint8_t rt[N_NONCE][8][32];		/* R + [k]T8 (hot keys only) */
};

static struct key keys[N_KEYS];
static uint8_t so[8][32]; /* so[k] = [k]T8, T8 of order 8: the 8 points of small order */
static struct tc fill[N_FILL];

/* Encodings, each with what libsodium's decoder makes of it (pt_small_index). */
static uint8_t nc_small[8][32]; /* small-order points: y = p-1, p, p+1 and x = 0 with bit 255 */
static int nc_small_k[8];
static const char *nc_small_name[8];
static size_t n_nc_small;
static uint8_t nc_big[40][32]; /* y + p for the points with y < 19, bit 255 clear and set */
static size_t n_nc_big;
static uint8_t off_curve[48][32]; /* no point at all */
static size_t n_off;

static size_t n_checked, n_mismatch, n_diff;

/* An unoptimized build (make test-asan: Debug, ASan and UBSan) runs the verifier some 50 times
 * slower: there the repetitions shrink, each case runs at one batch size and the random loop
 * defaults to 2,000 items, for the memory checks rather than the statistics. */
#if defined(__OPTIMIZE__)
static const int light = 0;
#else
static const int light = 1;
#endif

/* n repetitions, an eighth of them (at least one) in a light run */
static int
reps(int n)
{
	return light ? (n + 7) / 8 : n;
}

static double
now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- reproducible choices (t_rand; the verifier's own coefficients come from randombytes) ---- */

/* Run this one? Always, but one time in four in a light run. */
static int
some(void)
{
	return !light || t_rand_below(4) == 0;
}

/* A scalar mod L from the test's generator. */
static void
rng_scalar(uint8_t s[32])
{
	uint8_t w[64];

	t_rand_fill(w, sizeof(w));
	crypto_core_ed25519_scalar_reduce(s, w);
}

/* ---- points: libsodium's crypto_core_ed25519_add takes any point on the curve ---- */

static int
pt_is_id(const uint8_t p[32])
{
	return memcmp(p, pt_id, 32) == 0;
}

static void
pt_add(uint8_t out[32], const uint8_t p[32], const uint8_t q[32])
{
	if (crypto_core_ed25519_add(out, p, q) != 0) {
		fprintf(stderr, "FAIL: crypto_core_ed25519_add refused a point\n");
		exit(1);
	}
}

/* [n]P by double and add: crypto_scalarmult_ed25519 refuses points outside the prime-order
 * subgroup, and these are exactly the ones wanted here. */
static void
pt_mul(uint8_t out[32], const uint8_t n[32], const uint8_t p[32])
{
	uint8_t acc[32];
	int top = 255;

	memcpy(acc, pt_id, 32);
	while (top >= 0 && !((n[top / 8] >> (top % 8)) & 1))
		top--;
	for (int b = top; b >= 0; b--) {
		pt_add(acc, acc, acc);
		if ((n[b / 8] >> (b % 8)) & 1)
			pt_add(acc, acc, p);
	}
	memcpy(out, acc, 32);
}

/* What libsodium's decoder makes of b: the index k of so[] it names, -1 for a point not of small
 * order, -2 for no point. */
static int
pt_small_index(const uint8_t b[32])
{
	uint8_t c[32];

	if (crypto_core_ed25519_add(c, b, pt_id) != 0)
		return -2;
	for (int k = 0; k < 8; k++)
		if (memcmp(c, so[k], 32) == 0)
			return k;
	return -1;
}

/* The torsion subgroup, generated by T8 = [L]P for the first point P (y = 2, 3, ...) whose
 * small-order part has order 8. */
static void
setup_torsion(void)
{
	uint8_t c[32], p[32], t[32], t4[32];
	static const uint8_t four[32] = {4};

	for (unsigned y = 2;; y++) {
		memset(c, 0, sizeof(c));
		c[0] = (uint8_t)y;
		if (crypto_core_ed25519_add(p, c, pt_id) != 0)
			continue;
		pt_mul(t, ed_L, p);
		pt_mul(t4, four, t);
		if (!pt_is_id(t4))
			break;
	}
	memcpy(so[0], pt_id, 32);
	for (int k = 1; k < 8; k++)
		pt_add(so[k], so[k - 1], t);
	pt_add(c, so[7], t);
	T_CHECK(pt_is_id(c), "setup: [8]T8 is not the identity");
	for (int k = 0; k < 8; k++) {
		T_CHECK(crypto_core_ed25519_is_valid_point(so[k]) == 0,
			"setup: libsodium calls small-order point %d valid", k);
		for (int j = 0; j < k; j++)
			T_CHECK(memcmp(so[j], so[k], 32) != 0, "setup: so[%d] == so[%d]", j, k);
	}
}

static void
add_nc_small(const uint8_t e[32], const char *name)
{
	memcpy(nc_small[n_nc_small], e, 32);
	nc_small_k[n_nc_small] = pt_small_index(e);
	T_CHECK(nc_small_k[n_nc_small] >= 0, "setup: %s is not a small-order point to libsodium",
		name);
	nc_small_name[n_nc_small++] = name;
}

/* The encodings of the edge cases, from p's bytes and libsodium's decoder. */
static void
setup_encodings(void)
{
	static const char *const names[3][2] = {
	    {"y=p-1", "y=p-1|sign"}, {"y=p", "y=p|sign"}, {"y=p+1", "y=p+1|sign"}};
	uint8_t e[32];

	for (int d = 0; d < 3; d++)
		for (int s = 0; s < 2; s++) {
			memset(e, 0xff, sizeof(e));
			e[0] = (uint8_t)(0xec + d); /* p = 2^255 - 19 ends ed ff .. ff 7f */
			e[31] = s ? 0xff : 0x7f;
			add_nc_small(e, names[d][s]);
		}
	memset(e, 0, sizeof(e));
	e[31] = 0x80;
	add_nc_small(e, "y=0|sign");
	e[0] = 1;
	add_nc_small(e, "y=1|sign");
	/* y < 19 is the only y with a second encoding, y + p */
	for (unsigned y = 0; y < 19; y++) {
		uint8_t c[32] = {(uint8_t)y};
		int k = pt_small_index(c);

		memset(e, 0xff, sizeof(e));
		e[0] = (uint8_t)(0xed + y);
		e[31] = 0x7f;
		if (k == -1) {
			memcpy(nc_big[n_nc_big++], e, 32);
			e[31] |= 0x80;
			memcpy(nc_big[n_nc_big++], e, 32);
		} else if (k == -2) {
			memcpy(off_curve[n_off++], c, 32);
			c[31] |= 0x80;
			memcpy(off_curve[n_off++], c, 32);
			memcpy(off_curve[n_off++], e, 32);
		}
	}
	while (n_off < N_OF(off_curve)) {
		t_rand_fill(e, sizeof(e));
		if (pt_small_index(e) == -2)
			memcpy(off_curve[n_off++], e, 32);
	}
	T_CHECK(n_nc_big >= 10, "setup: only %zu non-canonical encodings of y < 19", n_nc_big);
}

static void
setup_keys(void)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		struct key *k = &keys[i];
		uint8_t seed[32], h[64], w[64] = {0}, chk[32];

		t_rand_fill(seed, sizeof(seed));
		if (crypto_sign_seed_keypair(k->pub, k->sk, seed) != 0 ||
		    crypto_sign_ed25519_sk_to_seed(seed, k->sk) != 0) {
			t_fail("setup: keypair");
			exit(1);
		}
		/* RFC 8032 5.1.5: a = clamp(SHA-512(seed)[0..32)) */
		crypto_hash_sha512(h, seed, sizeof(seed));
		h[0] &= 248;
		h[31] &= 127;
		h[31] |= 64;
		memcpy(w, h, 32);
		crypto_core_ed25519_scalar_reduce(k->a, w);
		if (crypto_scalarmult_ed25519_base_noclamp(chk, k->a) != 0 ||
		    memcmp(chk, k->pub, 32) != 0)
			t_fail("setup: [a]B is not the public key of key %zu", i);
		for (int n = 0; n < N_NONCE; n++) {
			rng_scalar(k->r[n]);
			if (crypto_scalarmult_ed25519_base_noclamp(k->R[n], k->r[n]) != 0)
				t_fail("setup: [r]B");
		}
		if (i >= N_HOT)
			continue;
		for (int t = 0; t < 8; t++) {
			pt_add(k->at[t], k->pub, so[t]);
			for (int n = 0; n < N_NONCE; n++)
				pt_add(k->rt[n][t], k->R[n], so[t]);
		}
	}
}

/* ---- items ---- */

static const uint8_t *
tc_msg(const struct tc *t)
{
	return t->msg_null ? NULL : t->ext != NULL ? t->ext : t->mbuf;
}

static void tc_kind(struct tc *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
tc_kind(struct tc *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->kind, sizeof(t->kind), fmt, ap);
	va_end(ap);
}

/* libsodium's verdict, asked once; a construction that promised one is checked against it. */
static int
tc_want(struct tc *t)
{
	if (t->want < 0) {
		t->want = crypto_sign_verify_detached(t->sig, tc_msg(t), t->msg_len, t->pub) == 0;
		if (t->pred >= 0 && t->want != t->pred)
			t_fail("construction of %s: libsodium says %d, the construction %d",
			       t->kind, t->want, t->pred);
	}
	return t->want;
}

static void
msg_random(struct tc *t, size_t max)
{
	t->ext = NULL;
	t->msg_len = t_rand_below((uint32_t)max + 1);
	t_rand_fill(t->mbuf, t->msg_len);
	t->msg_null = t->msg_len == 0 && t_rand_below(2);
}

/* S = r + h a (mod L), h = SHA-512(Rb || Ab || M) mod L over the bytes Rb and Ab exactly as given:
 * an honest signer's equation for whatever points those bytes name.
 * Returns: h mod 8, all that the small-order part of [h]A depends on. */
static unsigned
tc_sign(struct tc *t, const uint8_t Rb[32], const uint8_t r[32], const uint8_t Ab[32],
	const uint8_t a[32])
{
	crypto_hash_sha512_state st;
	uint8_t h64[64], h[32], ha[32];

	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, Rb, 32);
	crypto_hash_sha512_update(&st, Ab, 32);
	if (t->msg_len > 0)
		crypto_hash_sha512_update(&st, t->ext != NULL ? t->ext : t->mbuf, t->msg_len);
	crypto_hash_sha512_final(&st, h64);
	crypto_core_ed25519_scalar_reduce(h, h64);
	crypto_core_ed25519_scalar_mul(ha, h, a);
	crypto_core_ed25519_scalar_add(t->sig + 32, r, ha);
	memcpy(t->sig, Rb, 32);
	memcpy(t->pub, Ab, 32);
	t->want = -1;
	t->pred = -1;
	return h[0] & 7u;
}

/* Is there an h mod 8 with (tr + h ta == 0 mod 8) == eq? */
static int
tc_can(int tr, int ta, int eq)
{
	for (unsigned h = 0; h < 8; h++)
		if ((((unsigned)tr + h * (unsigned)ta) % 8 == 0) == eq)
			return 1;
	return 0;
}

/* The item over R bytes Rb (nonce r, small-order part [tr]T8) and A bytes Ab (scalar a, small-order
 * part [ta]T8): with S = r + h a, [S]B - [h]A = [r]B - [h ta]T8, so the cofactorless equation
 * holds iff tr + h ta = 0 (mod 8). libsodium then accepts iff rules_ok (both encodings canonical,
 * neither point of small order). tr or ta < 0: no known small-order part, nothing promised unless
 * the rules fail. want_eq: 1 draws messages until the equation holds, 0 until it fails, -1 takes
 * the first. Returns: 1, or 0 when no message gave what was asked. */
static int
tc_grind(struct tc *t, const uint8_t Rb[32], const uint8_t r[32], int tr, const uint8_t Ab[32],
	 const uint8_t a[32], int ta, int rules_ok, int want_eq)
{
	for (int i = 0; i < 400; i++) {
		unsigned h8;
		int eq;

		msg_random(t, 300);
		h8 = tc_sign(t, Rb, r, Ab, a);
		if (tr < 0 || ta < 0) {
			t->pred = rules_ok ? -1 : 0;
			return 1;
		}
		eq = ((unsigned)tr + h8 * (unsigned)ta) % 8 == 0;
		t->pred = (int8_t)(rules_ok && eq);
		if (want_eq < 0 || eq == want_eq)
			return 1;
	}
	return 0;
}

static void
b_valid(struct tc *t, size_t ki, int real)
{
	const struct key *k = &keys[ki];

	msg_random(t, 300);
	if (real) {
		crypto_sign_detached(t->sig, NULL, t->mbuf, t->msg_len, k->sk);
		memcpy(t->pub, k->pub, 32);
		t->want = -1;
	} else {
		unsigned n = t_rand_below(N_NONCE);

		(void)tc_sign(t, k->R[n], k->r[n], k->pub, k->a);
	}
	t->pred = 1;
	tc_kind(t, "valid, key %zu%s%s", ki, real ? ", crypto_sign" : "",
		t->msg_null ? ", msg NULL" : "");
}

/* Mixed-order A = A + [ta]T8 and R = R + [tr]T8, honestly signed (hot key hk). */
static int
b_mixed(struct tc *t, const struct key *hk, unsigned ta, unsigned tr, int want_eq)
{
	unsigned n = t_rand_below(N_NONCE);
	const char *what = ta && tr ? "mixed-order A and R"
			   : ta	    ? "mixed-order A"
			   : tr	    ? "mixed-order R"
				    : "valid";
	int got =
	    tc_grind(t, hk->rt[n][tr], hk->r[n], (int)tr, hk->at[ta], hk->a, (int)ta, 1, want_eq);

	tc_kind(t, "%s A+[%u]T8, R+[%u]T8", what, ta, tr);
	return got;
}

/* A = [ta]T8 alone (a = 0), R = R + [tr]T8. */
static int
b_small_a(struct tc *t, const struct key *hk, unsigned ta, unsigned tr, int want_eq)
{
	unsigned n = t_rand_below(N_NONCE);
	int got =
	    tc_grind(t, hk->rt[n][tr], hk->r[n], (int)tr, so[ta], zero32, (int)ta, 0, want_eq);

	tc_kind(t, "small-order A [%u]T8, R+[%u]T8, eq %d", ta, tr, want_eq);
	return got;
}

/* R = [tr]T8 alone (r = 0, so S = h a), A = A + [ta]T8. */
static int
b_small_r(struct tc *t, const struct key *hk, unsigned tr, unsigned ta, int want_eq)
{
	int got = tc_grind(t, so[tr], zero32, (int)tr, hk->at[ta], hk->a, (int)ta, 0, want_eq);

	tc_kind(t, "small-order R [%u]T8, A+[%u]T8, eq %d", tr, ta, want_eq);
	return got;
}

/* Both of small order: S = 0. */
static int
b_small_ar(struct tc *t, unsigned ta, unsigned tr, int want_eq)
{
	int got = tc_grind(t, so[tr], zero32, (int)tr, so[ta], zero32, (int)ta, 0, want_eq);

	tc_kind(t, "small-order A [%u]T8 and R [%u]T8, S=0, eq %d", ta, tr, want_eq);
	return got;
}

/* nc_small[i] as A (a = 0) or as R (r = 0, with A + T8 when R is not the identity, so that the
 * equation can hold). */
static int
b_nc_small(struct tc *t, const struct key *hk, size_t i, int as_r, int want_eq)
{
	unsigned n = t_rand_below(N_NONCE);
	int k = nc_small_k[i], got;

	if (as_r) {
		int ta = k == 0 ? 0 : 1;

		got = tc_grind(t, nc_small[i], zero32, k, hk->at[ta], hk->a, ta, 0, want_eq);
	} else {
		got = tc_grind(t, hk->R[n], hk->r[n], 0, nc_small[i], zero32, k, 0, want_eq);
	}
	tc_kind(t, "small-order %s %s, eq %d", as_r ? "R" : "A", nc_small_name[i], want_eq);
	return got;
}

/* Bytes that name no canonical point (or none at all) as A or as R: always refused. */
static void
b_bad_point(struct tc *t, const struct key *k, const uint8_t p[32], int as_r, const char *what)
{
	unsigned n = t_rand_below(N_NONCE);

	if (as_r)
		(void)tc_grind(t, p, k->r[n], -2, k->pub, k->a, 0, 0, -1);
	else
		(void)tc_grind(t, k->R[n], k->r[n], 0, p, k->a, -2, 0, -1);
	tc_kind(t, "%s %s %02x..%02x", what, as_r ? "R" : "A", p[0], p[31]);
}

/* s += m L (little-endian). Returns: 1, or 0 when it would not fit in 256 bits. */
static int
sc_add_mL(uint8_t s[32], unsigned m)
{
	uint8_t o[32];
	unsigned c = 0;

	for (int i = 0; i < 32; i++) {
		c += s[i] + m * ed_L[i];
		o[i] = (uint8_t)c;
		c >>= 8;
	}
	if (c != 0)
		return 0;
	memcpy(s, o, 32);
	return 1;
}

/* A valid signature with S replaced: v 1..14 S + vL, 15..18 top bits set, 19 S = L,
 * 20 S = 2^256 - 1, 21 S = L - 1, 22 S = 0. */
static void
b_bad_s(struct tc *t, size_t ki, unsigned v)
{
	static const uint8_t top[4] = {0x20, 0x40, 0x80, 0xe0};
	uint8_t *s = t->sig + 32;

	b_valid(t, ki, 0);
	t->pred = 0;
	if (v >= 1 && v <= 14) {
		if (!sc_add_mL(s, v))
			(void)sc_add_mL(s, 1);
	} else if (v <= 18) {
		s[31] |= top[v - 15];
	} else if (v == 19) {
		memcpy(s, ed_L, 32);
	} else if (v == 20) {
		memset(s, 0xff, 32);
	} else if (v == 21) {
		memcpy(s, ed_L, 32);
		s[0]--;
		t->pred = -1;
	} else {
		memset(s, 0, 32);
		t->pred = -1;
	}
	tc_kind(t, "non-canonical S (variant %u), key %zu", v, ki);
}

/* A valid signature with one change: 0 a bit of sig, 1 a bit of pub, 2 a bit of msg, 3 msg one
 * byte longer or shorter. */
static void
b_flip(struct tc *t, size_t ki, unsigned where)
{
	unsigned bit;

	b_valid(t, ki, t_rand_below(4) == 0);
	t->pred = -1;
	switch (where) {
	case 0:
		bit = t_rand_below(512);
		t->sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		tc_kind(t, "valid with sig bit %u flipped", bit);
		break;
	case 1:
		bit = t_rand_below(256);
		t->pub[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		tc_kind(t, "valid with pub bit %u flipped", bit);
		break;
	case 2:
		if (t->msg_len == 0) {
			t->msg_len = 1;
			t->mbuf[0] = (uint8_t)t_rand_below(256);
		} else {
			bit = t_rand_below((uint32_t)t->msg_len * 8);
			t->mbuf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		t->msg_null = 0;
		tc_kind(t, "valid with a msg bit flipped (len %zu)", t->msg_len);
		break;
	default:
		if (t->msg_len > 0 && t_rand_below(2)) {
			t->msg_len--;
		} else {
			t->mbuf[t->msg_len++] = (uint8_t)t_rand_below(256);
			t->msg_null = 0;
		}
		tc_kind(t, "valid with msg length changed to %zu", t->msg_len);
		break;
	}
}

/* 0 random sig and pub, 1 random sig with a real pub, 2 valid sig with a random pub, 3 random R,
 * 4 random S below L, 5 all zero, 6 all 0xff. */
static void
b_garbage(struct tc *t, size_t ki, unsigned v)
{
	b_valid(t, ki, 0);
	t->pred = -1;
	switch (v) {
	case 0: t_rand_fill(t->sig, 64), t_rand_fill(t->pub, 32); break;
	case 1: t_rand_fill(t->sig, 64); break;
	case 2: t_rand_fill(t->pub, 32); break;
	case 3: t_rand_fill(t->sig, 32); break;
	case 4: rng_scalar(t->sig + 32); break;
	case 5: memset(t->sig, 0, 64), memset(t->pub, 0, 32); break;
	default: memset(t->sig, 0xff, 64), memset(t->pub, 0xff, 32); break;
	}
	tc_kind(t, "garbage variant %u", v);
}

/* A signature wrong only by [e]T8 (R' = R + [e]T8, everything else honest): always refused. */
static void
b_torsion_err(struct tc *t, unsigned e)
{
	const struct key *hk = &keys[t_rand_below(N_HOT)];
	unsigned n = t_rand_below(N_NONCE);

	(void)tc_grind(t, hk->rt[n][e % 8], hk->r[n], (int)(e % 8), hk->pub, hk->a, 0, 1, -1);
	tc_kind(t, "torsion error [%u]T8 in R", e % 8);
}

/* A valid signature with S + [m]d (mod L), m = -2..2: wrong by the prime-order point [m d]B.
 * Such errors cancel in a sum whose coefficients are known or equal. */
static void
b_s_delta(struct tc *t, size_t ki, const uint8_t d[32], int m)
{
	uint8_t *s = t->sig + 32;

	b_valid(t, ki, 0);
	for (int j = 0; j < (m < 0 ? -m : m); j++)
		if (m < 0)
			crypto_core_ed25519_scalar_sub(s, s, d);
		else
			crypto_core_ed25519_scalar_add(s, s, d);
	t->pred = m == 0 || sodium_is_zero(d, 32) ? 1 : 0;
	tc_kind(t, "S%+d*d (d = %02x..), key %zu", m, d[0], ki);
}

/* ---- running batches ---- */

/* Mismatches per phase, for the summary. */
static struct {
	const char *phase;
	size_t n;
} per_phase[16];

static void
count_phase(const char *phase)
{
	for (size_t i = 0; i < N_OF(per_phase); i++)
		if (per_phase[i].phase == NULL || strcmp(per_phase[i].phase, phase) == 0) {
			per_phase[i].phase = phase;
			per_phase[i].n++;
			return;
		}
}

static void
mismatch(const char *phase, size_t n, size_t i, const struct tc *t, unsigned got)
{
	count_phase(phase);
	if (++n_mismatch > N_SHOWN)
		return;
	t_fail("%s: batch of %zu, item %zu (%s): batch says %u, libsodium says %d", phase, n, i,
	       t->kind, got, t->want);
	fprintf(stderr, "    sig %s\n", t_hex(t->sig, 64));
	fprintf(stderr, "    pub %s msg_len %zu%s\n", t_hex(t->pub, 32), t->msg_len,
		t->msg_null ? " (NULL)" : "");
}

/* b[0..n) through dime_ed25519_verify_batch, against libsodium item by item; then, when
 * with_null, the ok == NULL form for the return value alone. */
static void
check_batch(const char *phase, struct tc *const *b, size_t n, int with_null)
{
	struct dime_ed25519_check c[BATCH_MAX] = {{0}};
	uint8_t ok[BATCH_MAX + 1];
	int all = 1, rc, want_rc;

	for (size_t i = 0; i < n; i++) {
		c[i].sig = b[i]->sig;
		c[i].pub = b[i]->pub;
		c[i].msg = tc_msg(b[i]);
		c[i].msg_len = b[i]->msg_len;
		if (!tc_want(b[i]))
			all = 0;
	}
	want_rc = all ? DIME_OK : DIME_E_BADSIG;
	memset(ok, 0xaa, sizeof(ok));
	rc = dime_ed25519_verify_batch(c, n, ok);
	for (size_t i = 0; i < n; i++)
		if (ok[i] != (uint8_t)b[i]->want)
			mismatch(phase, n, i, b[i], ok[i]);
	if (ok[n] != 0xaa && (count_phase(phase), ++n_mismatch <= N_SHOWN))
		t_fail("%s: batch of %zu wrote ok[%zu]", phase, n, n);
	if (rc != want_rc && (count_phase(phase), ++n_mismatch <= N_SHOWN))
		t_fail("%s: batch of %zu (first item %s): returned %d, want %d", phase, n,
		       b[0]->kind, rc, want_rc);
	if (with_null) {
		rc = dime_ed25519_verify_batch(c, n, NULL);
		if (rc != want_rc && (count_phase(phase), ++n_mismatch <= N_SHOWN))
			t_fail("%s: batch of %zu (first item %s), ok NULL: returned %d, want %d",
			       phase, n, b[0]->kind, rc, want_rc);
	}
	n_checked += n;
}

/* A batch of n: g[0..m) at random distinct positions, valid signatures around them. */
static void
run_mixed(const char *phase, struct tc *const *g, size_t m, size_t n)
{
	struct tc *b[BATCH_MAX];
	size_t pos[BATCH_MAX];

	for (size_t i = 0; i < n; i++) {
		b[i] = &fill[t_rand_below(N_FILL)];
		pos[i] = i;
	}
	for (size_t j = 0; j < m && j < n; j++) {
		size_t x = j + t_rand_below((uint32_t)(n - j)), tmp = pos[j];

		pos[j] = pos[x];
		pos[x] = tmp;
		b[pos[j]] = g[j];
	}
	check_batch(phase, b, n, 1);
}

/* g[0..m) at the given positions of a batch of n, valid signatures elsewhere. */
static void
run_at(const char *phase, struct tc *const *g, const size_t *at, size_t m, size_t n)
{
	struct tc *b[BATCH_MAX];

	for (size_t i = 0; i < n; i++)
		b[i] = &fill[t_rand_below(N_FILL)];
	for (size_t j = 0; j < m; j++)
		b[at[j]] = g[j];
	check_batch(phase, b, n, 1);
}

static void
setup_fill(void)
{
	for (size_t i = 0; i < N_FILL; i++) {
		/* half from the hot keys, the rest from many keys; one in eight by crypto_sign */
		b_valid(&fill[i],
			i % 2 ? t_rand_below(N_HOT) : N_HOT + t_rand_below(N_KEYS - N_HOT),
			i % 8 == 3);
		T_CHECK(tc_want(&fill[i]) == 1, "setup: filler %zu (%s) does not verify", i,
			fill[i].kind);
	}
}

/* ---- RFC 8032 section 7.1: TEST 1, 2, 3 and 1024 ---- */

static const struct {
	const char *name, *seed, *pub, *msg, *sig;
} rfc[] = {
    {"rfc8032 TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"rfc8032 TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"rfc8032 TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
     "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
    {"rfc8032 TEST 1024", "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
     "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
     "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98"
     "fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d8"
     "79de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d"
     "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc"
     "1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4fe"
     "ba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e"
     "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbef"
     "efd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7"
     "aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1"
     "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2"
     "d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24"
     "554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270"
     "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc"
     "2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07"
     "07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba"
     "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51a"
     "ddd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429e"
     "c96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7"
     "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c"
     "42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8"
     "ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df"
     "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08"
     "d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649"
     "de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4"
     "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a3"
     "2ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e"
     "6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f"
     "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5"
     "0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1"
     "369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d"
     "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c"
     "0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0",
     "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350"
     "aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03"},
};
static uint8_t rfc_msg[N_OF(rfc)][1023];

static int
hex_in(uint8_t *out, size_t cap, size_t *len, const char *hex)
{
	return sodium_hex2bin(out, cap, hex, strlen(hex), NULL, len, NULL) == 0;
}

/* The vector as an item; the typed-in hex is checked against libsodium's own signing. */
static void
b_rfc(struct tc *t, size_t v)
{
	uint8_t seed[32], pk[32], sk[64], sig[64];
	size_t l1 = 0, l2 = 0, l3 = 0, l4 = 0;

	memset(t, 0, sizeof(*t));
	if (!hex_in(seed, 32, &l1, rfc[v].seed) || !hex_in(t->pub, 32, &l2, rfc[v].pub) ||
	    !hex_in(rfc_msg[v], sizeof(rfc_msg[v]), &l3, rfc[v].msg) ||
	    !hex_in(t->sig, 64, &l4, rfc[v].sig) || l1 != 32 || l2 != 32 || l4 != 64) {
		t_fail("%s: hex", rfc[v].name);
		return;
	}
	t->ext = rfc_msg[v];
	t->msg_len = l3;
	t->want = -1;
	t->pred = 1;
	tc_kind(t, "%s", rfc[v].name);
	if (crypto_sign_seed_keypair(pk, sk, seed) != 0 || memcmp(pk, t->pub, 32) != 0 ||
	    crypto_sign_detached(sig, NULL, t->ext, t->msg_len, sk) != 0 ||
	    memcmp(sig, t->sig, 64) != 0)
		t_fail("%s: the vector is not libsodium's signature", rfc[v].name);
}

/* ---- the cases ---- */

static struct tc *
tc_next(struct tc *cs, size_t *n, size_t cap)
{
	if (*n >= cap)
		abort();
	return &cs[(*n)++];
}

/* Every edge case once, with libsodium's verdict and the construction's promise.
 * Returns: the number of items written to cs. */
static size_t
build_cases(struct tc *cs, size_t cap)
{
	size_t n = 0;
	unsigned acc[8][8], rej[8][8]; /* mixed-order A and R: [ta][tr] verdicts seen */

#define NEXT tc_next(cs, &n, cap)
	memset(acc, 0, sizeof(acc));
	memset(rej, 0, sizeof(rej));
	for (size_t v = 0; v < N_OF(rfc); v++) {
		struct tc *t = NEXT;

		b_rfc(t, v);
		if (v == 0) { /* the empty message, passed as NULL */
			struct tc *u = NEXT;

			*u = *t;
			u->msg_null = 1;
			tc_kind(u, "%s, msg NULL", rfc[v].name);
		}
		for (int f = 0; f < 3; f++) {
			struct tc *u = NEXT;
			unsigned bit = f == 2 ? 255 + 256 * (v % 2) : t_rand_below(512);

			*u = *t;
			u->sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			u->want = -1;
			u->pred = -1;
			tc_kind(u, "%s, sig bit %u flipped", rfc[v].name, bit);
		}
	}
	for (size_t i = 0; i < 40; i++)
		b_valid(NEXT, i % 3 ? N_HOT + t_rand_below(N_KEYS - N_HOT) : t_rand_below(N_HOT),
			i % 5 == 0);
	/* small-order A: each of the 8 points, equation holding and failing */
	for (unsigned ta = 0; ta < 8; ta++)
		for (int eq = 0; eq < 2; eq++)
			for (int r = 0; r < 2; r++) {
				unsigned tr = r ? t_rand_below(8) : 0;

				if (tc_can((int)tr, (int)ta, eq))
					T_CHECK(
					    b_small_a(NEXT, &keys[t_rand_below(N_HOT)], ta, tr, eq),
					    "small-order A %u: grinding", ta);
			}
	/* small-order R: each of the 8 points, with an honest A and a mixed-order A */
	for (unsigned tr = 0; tr < 8; tr++)
		for (int eq = 0; eq < 2; eq++)
			for (unsigned ta = 0; ta < 8; ta += 1 + 2 * t_rand_below(3))
				if (tc_can((int)tr, (int)ta, eq))
					T_CHECK(
					    b_small_r(NEXT, &keys[t_rand_below(N_HOT)], tr, ta, eq),
					    "small-order R %u: grinding", tr);
	/* both of small order, S = 0 */
	for (unsigned ta = 0; ta < 8; ta++)
		for (unsigned tr = 0; tr < 8; tr++)
			for (int eq = 0; eq < 2; eq++)
				if (tc_can((int)tr, (int)ta, eq))
					T_CHECK(b_small_ar(NEXT, ta, tr, eq),
						"small A and R: grinding");
	/* non-canonical encodings of small-order points, as A and as R */
	for (size_t i = 0; i < n_nc_small; i++)
		for (int as_r = 0; as_r < 2; as_r++)
			for (int eq = 0; eq < 2; eq++) {
				int k = nc_small_k[i], ta = as_r ? (k == 0 ? 0 : 1) : k,
				    tr = as_r ? k : 0;

				if (k >= 0 && tc_can(tr, ta, eq))
					T_CHECK(b_nc_small(NEXT, &keys[t_rand_below(N_HOT)], i,
							   as_r, eq),
						"%s: grinding", nc_small_name[i]);
			}
	/* non-canonical encodings (y + p) of other points, and bytes that are no point */
	for (size_t i = 0; i < n_nc_big; i++)
		for (int as_r = 0; as_r < 2; as_r++)
			b_bad_point(NEXT, &keys[t_rand_below(N_KEYS)], nc_big[i], as_r,
				    "non-canonical");
	for (size_t i = 0; i < n_off; i++)
		for (int as_r = 0; as_r < 2; as_r++)
			b_bad_point(NEXT, &keys[t_rand_below(N_KEYS)], off_curve[i], as_r,
				    "not on the curve");
	/* mixed-order A, R and both, honestly signed; the verdict hangs on h mod 8 */
	for (unsigned ta = 0; ta < 8; ta++)
		for (unsigned tr = 0; tr < 8; tr++) {
			for (int j = 0; j < 6; j++) {
				struct tc *t = NEXT;
				int eq = j < 2 ? 1 : j < 4 ? 0 : -1;

				if (eq >= 0 && !tc_can((int)tr, (int)ta, eq)) {
					n--;
					continue;
				}
				T_CHECK(b_mixed(t, &keys[j % N_HOT], ta, tr, eq),
					"mixed A+[%u]T8 R+[%u]T8: grinding", ta, tr);
				if (tc_want(t))
					acc[ta][tr]++;
				else
					rej[ta][tr]++;
			}
			T_CHECK(acc[ta][tr] > 0 || !tc_can((int)tr, (int)ta, 1),
				"mixed A+[%u]T8 R+[%u]T8: libsodium accepted none", ta, tr);
			T_CHECK(rej[ta][tr] > 0 || !tc_can((int)tr, (int)ta, 0),
				"mixed A+[%u]T8 R+[%u]T8: libsodium refused none", ta, tr);
		}
	for (unsigned ta = 1; ta < 8; ta++)
		T_CHECK(acc[ta][0] > 0 && rej[ta][0] > 0,
			"mixed-order A [%u]T8: accepted %u, refused %u: want both", ta, acc[ta][0],
			rej[ta][0]);
	for (unsigned v = 1; v <= 22; v++)
		for (int j = 0; j < 2; j++)
			b_bad_s(NEXT,
				j ? t_rand_below(N_HOT) : N_HOT + t_rand_below(N_KEYS - N_HOT), v);
	for (unsigned i = 0; i < 80; i++)
		b_flip(NEXT, t_rand_below(N_KEYS), i % 4);
	for (unsigned i = 0; i < 35; i++)
		b_garbage(NEXT, t_rand_below(N_KEYS), i % 7);
#undef NEXT
	return n;
}

/* Phase 1: each case alone and among valid signatures, at every batch size. */
static void
test_cases(void)
{
	enum { CAP = 2048 };
	struct tc *cs = calloc(CAP, sizeof(*cs));
	struct tc **order = calloc(CAP, sizeof(*order));
	size_t n, n_acc = 0;

	if (cs == NULL || order == NULL)
		abort();
	n = build_cases(cs, CAP);
	for (size_t i = 0; i < n; i++) {
		order[i] = &cs[i];
		n_acc += (size_t)tc_want(&cs[i]);
	}
	T_CHECK(n_acc > 50 && n - n_acc > 50, "cases: %zu accepted of %zu", n_acc, n);
	for (size_t s = 0; s < N_OF(sizes); s++) {
		size_t m = sizes[s] < 16 ? 1 : sizes[s] / 8;

		for (size_t i = n - 1; i > 0; i--) {
			size_t j = t_rand_below((uint32_t)(i + 1));
			struct tc *tmp = order[i];

			order[i] = order[j];
			order[j] = tmp;
		}
		for (size_t i = 0; i < n; i += m)
			if (!light || (i / m + s) % N_OF(sizes) == 0)
				run_mixed("cases", order + i, n - i < m ? n - i : m, sizes[s]);
	}
	/* every seventh case with its sig, pub and msg ending at a PROT_NONE page: no overread */
	for (size_t i = 0; i < n; i += light ? 49 : 7) {
		struct tc g = cs[i],
			  *b[3] = {&fill[t_rand_below(N_FILL)], &g, &fill[t_rand_below(N_FILL)]};
		struct dime_ed25519_check c[3];
		uint8_t ok[3];
		int rc;

		for (size_t j = 0; j < 3; j++) {
			c[j].sig = b[j]->sig;
			c[j].pub = b[j]->pub;
			c[j].msg = tc_msg(b[j]);
			c[j].msg_len = b[j]->msg_len;
		}
		c[1].sig = t_at_page_end(0, g.sig, 64);
		c[1].pub = t_at_page_end(1, g.pub, 32);
		if (c[1].msg != NULL)
			c[1].msg = t_at_page_end(2, c[1].msg, g.msg_len);
		rc = dime_ed25519_verify_batch(c + 1, 1, ok);
		if (rc != (g.want ? DIME_OK : DIME_E_BADSIG) || ok[0] != (uint8_t)g.want) {
			count_phase("guard pages");
			if (++n_mismatch <= N_SHOWN)
				t_fail(
				    "guard pages, %s alone: returned %d, ok %u; libsodium says %d",
				    g.kind, rc, ok[0], g.want);
		}
		rc = dime_ed25519_verify_batch(c, 3, ok);
		if (ok[1] != (uint8_t)g.want || ok[0] != 1 || ok[2] != 1) {
			count_phase("guard pages");
			if (++n_mismatch <= N_SHOWN)
				t_fail("guard pages, %s between two valid: ok %u %u %u; libsodium "
				       "says 1 %d 1",
				       g.kind, ok[0], ok[1], ok[2], g.want);
		}
	}
	free(cs);
	free(order);
}

/* Phase 2: bad signatures whose torsion errors cancel in a sum. libsodium refuses each; so must
 * the batch, whatever its coefficients. */
static void
test_adversarial(void)
{
	static const unsigned ks[] = {4, 2, 6, 1, 3, 5, 7}; /* orders 2, 4, 4, 8, 8, 8, 8 */
	struct tc *pool = calloc(2 * BATCH_MAX, sizeof(*pool));
	struct tc *g[BATCH_MAX];

	if (pool == NULL)
		abort();
	for (size_t x = 0; x < N_OF(ks); x++) {
		unsigned k = ks[x];
		struct tc *p = &pool[0], *q = &pool[1];

		/* R1 + T and R2 - T, under two keys and under one */
		for (int same = 0; same < 2; same++) {
			const struct key *k1 = &keys[0], *k2 = &keys[same ? 0 : 1];
			unsigned n1 = 0, n2 = same ? 1 : 0;

			(void)tc_grind(p, k1->rt[n1][k], k1->r[n1], (int)k, k1->pub, k1->a, 0, 1,
				       -1);
			(void)tc_grind(q, k2->rt[n2][8 - k], k2->r[n2], (int)(8 - k), k2->pub,
				       k2->a, 0, 1, -1);
			tc_kind(p, "pair: R1+[%u]T8%s", k, same ? ", same key" : "");
			tc_kind(q, "pair: R2-[%u]T8%s", k, same ? ", same key" : "");
			g[0] = p, g[1] = q;
			T_CHECK(!tc_want(p) && !tc_want(q), "pair %u: libsodium accepts one", k);
			for (int rep = 0; rep < reps(24); rep++) {
				struct tc *rev[2] = {q, p};

				check_batch("pair alone", g, 2, 1);
				check_batch("pair alone", rev, 2, 1);
			}
			for (size_t s = 1; s < N_OF(sizes); s++)
				for (int rep = 0; rep < reps(3); rep++)
					if (some())
						run_mixed("pair among valid", g, 2, sizes[s]);
			/* on both sides of the verifier's 64-item chunks */
			for (size_t s = 0; s < 4; s++) {
				static const size_t at[4][2] = {
				    {63, 64}, {0, 64}, {64, 0}, {127, 128}};

				if (some())
					run_at("pair across chunks", g, at[s], 2, s < 3 ? 65 : 200);
			}
		}
		/* mixed-order A with error [h k]T8, against a mixed-order R cancelling it */
		{
			const struct key *hk = &keys[2];
			unsigned e = 0, n = 0;

			for (int i = 0; i < 100 && e == 0; i++) {
				unsigned h8;

				msg_random(p, 300);
				h8 = tc_sign(p, hk->R[n], hk->r[n], hk->at[k], hk->a);
				e = (h8 * k) % 8;
			}
			T_CHECK(e != 0, "pair %u: no message with [h]T != 0", k);
			p->pred = 0;
			tc_kind(p, "pair: A+[%u]T8, error [%u]T8", k, e);
			(void)tc_grind(q, keys[3].rt[1][8 - e], keys[3].r[1], (int)(8 - e),
				       keys[3].pub, keys[3].a, 0, 1, -1);
			tc_kind(q, "pair: R-[%u]T8 against A+[%u]T8", e, k);
			for (int rep = 0; rep < reps(16); rep++)
				check_batch("mixed-A pair alone", g, 2, 1);
			for (size_t s = 1; s < N_OF(sizes); s++)
				if (some())
					run_mixed("mixed-A pair among valid", g, 2, sizes[s]);
		}
		/* one bad signature repeated: 2, 4 and 8 copies of the same torsion error */
		(void)tc_grind(p, keys[1].rt[2][k], keys[1].r[2], (int)k, keys[1].pub, keys[1].a, 0,
			       1, -1);
		tc_kind(p, "copies of R+[%u]T8", k);
		for (size_t c = 2; c <= 8; c *= 2) {
			for (size_t i = 0; i < c; i++)
				g[i] = p;
			for (int rep = 0; rep < reps(8); rep++)
				check_batch("copies alone", g, c, 1);
			for (size_t s = 0; s < N_OF(sizes); s++)
				if (sizes[s] > c && some())
					run_mixed("copies among valid", g, c, sizes[s]);
		}
	}
	/* errors of prime order that cancel: S + d and S - d (a sum with equal coefficients, or
	 * with any the signer can predict, would accept them), S + 2d and S - d, S + d, S + d and
	 * S - 2d */
	for (int rep = 0; rep < (light ? 4 : 12); rep++) {
		static const int ms[4][3] = {{1, -1, 0}, {2, -1, 0}, {1, -2, 0}, {1, 1, -2}};
		const int *m = ms[rep % 4];
		size_t cnt = m[2] != 0 ? 3 : 2;
		uint8_t d[32] = {1};

		if (rep >= 4)
			rng_scalar(d);
		for (size_t i = 0; i < cnt; i++) {
			b_s_delta(&pool[i], rep % 2 ? 0 : i, d, m[i]);
			g[i] = &pool[i];
		}
		for (int r = 0; r < reps(8); r++)
			check_batch("prime-order errors alone", g, cnt, 1);
		for (size_t s = 2; s < N_OF(sizes); s++)
			if (some())
				run_mixed("prime-order errors among valid", g, cnt, sizes[s]);
	}
	/* whole batches of bad signatures whose errors sum to the identity: pairs e, -e, and for an
	 * odd size one triple e, e, -2e; errors of small order (rep 0: all of order 2), and in
	 * rep 5 of prime order (S + d, S - d) */
	for (size_t s = 1; s < N_OF(sizes); s++)
		for (int rep = 0; rep < 6; rep++) {
			size_t n = sizes[s], i = 0;
			uint8_t d[32];

			if (light && rep != 0 && rep != 1 && rep != 5)
				continue;
			rng_scalar(d);
			if (n % 2) {
				unsigned e = rep % 2 ? 1 : 2 + 4 * t_rand_below(2);

				if (rep == 5) {
					b_s_delta(&pool[0], t_rand_below(N_KEYS), d, 1);
					b_s_delta(&pool[1], t_rand_below(N_KEYS), d, 1);
					b_s_delta(&pool[2], t_rand_below(N_KEYS), d, -2);
				} else {
					b_torsion_err(&pool[0], e);
					b_torsion_err(&pool[1], e);
					b_torsion_err(&pool[2], 16 - 2 * e);
				}
				i = 3;
			}
			for (; i < n; i += 2) {
				unsigned e = rep == 0 ? 4 : 1 + t_rand_below(7);

				if (rep == 5) {
					b_s_delta(&pool[i], t_rand_below(N_KEYS), d, 1);
					b_s_delta(&pool[i + 1], t_rand_below(N_KEYS), d, -1);
				} else {
					b_torsion_err(&pool[i], e);
					b_torsion_err(&pool[i + 1], 8 - e);
				}
			}
			for (i = 0; i < n; i++)
				g[i] = &pool[i];
			for (i = n - 1; i > 0; i--) {
				size_t j = t_rand_below((uint32_t)(i + 1));
				struct tc *tmp = g[i];

				g[i] = g[j];
				g[j] = tmp;
			}
			check_batch("all bad, errors cancelling", g, n, 1);
		}
	free(pool);
}

/* One random item of any kind, about one in four refused. */
static void
gen_random(struct tc *t)
{
	unsigned w = t_rand_below(100), ka = 1 + t_rand_below(7), kr = 1 + t_rand_below(7);
	const struct key *hk = &keys[t_rand_below(N_HOT)];

	if (w < 40)
		b_valid(t, N_HOT + t_rand_below(N_KEYS - N_HOT), 0);
	else if (w < 55)
		b_valid(t, t_rand_below(N_HOT), 0);
	else if (w < 58)
		b_valid(t, t_rand_below(N_KEYS), 1);
	else if (w < 64)
		(void)b_mixed(t, hk, 0, kr, -1);
	else if (w < 72)
		(void)b_mixed(t, hk, ka, 0, -1);
	else if (w < 75)
		(void)b_mixed(t, hk, ka, kr,
			      tc_can((int)kr, (int)ka, 1) ? (int)t_rand_below(2) : -1);
	else if (w < 77)
		(void)b_small_a(t, hk, t_rand_below(8), t_rand_below(8), -1);
	else if (w < 79)
		(void)b_small_r(t, hk, t_rand_below(8), t_rand_below(8), -1);
	else if (w < 81)
		(void)b_nc_small(t, hk, t_rand_below((uint32_t)n_nc_small), (int)t_rand_below(2),
				 -1);
	else if (w < 82)
		b_bad_point(t, hk,
			    t_rand_below(2) ? nc_big[t_rand_below((uint32_t)n_nc_big)]
					    : off_curve[t_rand_below((uint32_t)n_off)],
			    (int)t_rand_below(2), "bad encoding");
	else if (w < 85)
		b_bad_s(t, t_rand_below(N_KEYS), 1 + t_rand_below(22));
	else if (w < 93)
		b_flip(t, t_rand_below(N_KEYS), t_rand_below(4));
	else if (w < 95)
		b_garbage(t, t_rand_below(N_KEYS), t_rand_below(7));
	else if (w < 97) { /* S + d or S - d, d = 1: pairs cancel in a plain sum */
		static const uint8_t one[32] = {1};

		b_s_delta(t, t_rand_below(N_KEYS), one, t_rand_below(2) ? 1 : -1);
	} else
		b_torsion_err(t, 4); /* order 2: copies and pairs cancel under odd coefficients */
}

/* Phase 3: random items, each drawn into 5 batches of random sizes with new neighbours; now
 * and then one item twice in a batch. */
static void
test_differential(size_t total)
{
	enum { POOL = 512, PASSES = 5 };
	struct tc *pool = calloc(POOL, sizeof(*pool));
	size_t perm[POOL], done = 0, n_acc = 0, n_items = 0;

	if (pool == NULL)
		abort();
	while (done < total) {
		for (size_t i = 0; i < POOL; i++) {
			gen_random(&pool[i]);
			n_acc += (size_t)tc_want(&pool[i]);
			perm[i] = i;
		}
		n_items += POOL;
		for (int pass = 0; pass < PASSES && done < total; pass++) {
			for (size_t i = POOL - 1; i > 0; i--) {
				size_t j = t_rand_below((uint32_t)(i + 1)), tmp = perm[i];

				perm[i] = perm[j];
				perm[j] = tmp;
			}
			for (size_t at = 0; at < POOL && done < total;) {
				struct tc *b[BATCH_MAX];
				size_t s = sizes[t_rand_below(N_OF(sizes))];

				if (s > POOL - at)
					s = POOL - at;
				if (s > total - done)
					s = total - done;
				for (size_t i = 0; i < s; i++)
					b[i] = &pool[perm[at + i]];
				if (s > 1 && t_rand_below(8) == 0)
					b[t_rand_below((uint32_t)s)] = b[t_rand_below((uint32_t)s)];
				/* the ok == NULL form on one batch in six: it costs as much */
				check_batch("random", b, s, t_rand_below(6) == 0);
				at += s;
				done += s;
			}
		}
	}
	n_diff = done;
	T_CHECK(n_acc > n_items / 2 && n_acc < n_items - n_items / 8, "random: %zu of %zu accepted",
		n_acc, n_items);
	free(pool);
}

static size_t
env_size(const char *name, size_t dflt)
{
	const char *v = getenv(name);
	char *end;
	unsigned long long x;

	if (v == NULL || *v == 0)
		return dflt;
	x = strtoull(v, &end, 0);
	return *end == 0 ? (size_t)x : dflt;
}

int
main(void)
{
	struct dime_ed25519_check c0;
	uint8_t ok0 = 0x55;
	size_t total = env_size("DIME_TEST_ED25519_N", light ? 2000 : 200000), seed;
	double t0, t1, t2, t3;

	t_init();
	t0 = now_s();
	seed = env_size("DIME_TEST_ED25519_SEED", 0);
	t_rand_seed(seed);
	memset(&c0, 0, sizeof(c0));
	T_CHECK(dime_ed25519_verify_batch(&c0, 0, &ok0) == DIME_OK && ok0 == 0x55,
		"empty batch with ok");
	T_CHECK(dime_ed25519_verify_batch(&c0, 0, NULL) == DIME_OK, "empty batch, ok NULL");
	setup_torsion();
	setup_encodings();
	setup_keys();
	setup_fill();
	if (t_failures > 0)
		return t_done("test_ed25519_batch");
	test_cases();
	t1 = now_s();
	test_adversarial();
	t2 = now_s();
	test_differential(total);
	t3 = now_s();
	if (n_mismatch > N_SHOWN)
		t_fail("%zu mismatches in all, the first %d shown", n_mismatch, N_SHOWN);
	for (size_t i = 0; i < N_OF(per_phase) && per_phase[i].phase != NULL; i++)
		fprintf(stderr, "    %zu mismatches in \"%s\"\n", per_phase[i].n,
			per_phase[i].phase);
	printf("test_ed25519_batch: %zu items checked (%zu random), seed %zu%s; %.1f s (setup and "
	       "cases %.1f, pairs %.1f, random %.1f)\n",
	       n_checked, n_diff, seed, light ? ", light (unoptimized build)" : "", t3 - t0,
	       t1 - t0, t2 - t1, t3 - t2);
	return t_done("test_ed25519_batch");
}

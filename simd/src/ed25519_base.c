/* Batched Ed25519 verification on edwards25519 arithmetic written here: field elements in
 * radix 2^51 with 128-bit products, points in extended coordinates (Hisil, Wong, Carter and
 * Dawson), one Straus multi-scalar multiplication per batch (signed 5-bit windows, shared
 * doublings), bisection to the failing items.
 *
 * The verdict must be libsodium's cofactorless one, R == [S]B - [h]A, for every input. A
 * random linear combination alone cannot promise that: the error E_i = R_i + [h_i]A_i - [S_i]B
 * of a bad signature may be a point of small order (a mixed-order R or A), and small-order
 * errors of two items can cancel in the sum (T and -T) or vanish under an even coefficient.
 * So the equation is split in two parts, each checked exactly:
 *  - torsion, per item: the small-order part of E_i is that of C_i = R_i + [h_i mod 8]A_i (B has
 *    prime order), and C_i is tested for membership in the prime-order subgroup (8E) with
 *    three exponentiations: C in 2E iff its Montgomery u is a square; then one half Q of C
 *    (C in 8E iff Q in 4E), and Q in 4E iff the 4-Tate pairing e4(T4, Q) = 1, a quartic
 *    residue symbol in F_p (4 | p - 1). Costs about one sixth of a libsodium verification,
 *    instead of the whole scalar multiplication [L]C.
 *  - prime order, batched: with every E_i torsion-free, [8] sum z_i E_i = O iff all E_i = O
 *    except with probability about 2^-127 over the caller's random z_i (the [8] removes the
 *    small-order junk that reducing the coefficients of mixed-order A modulo L introduces).
 * Variable time: every input here is public (signatures, keys, hashes, random coefficients
 * that the attacker never sees before signing). */

#include <string.h>

#include "ed25519_int.h"
#include "simd_int.h"

typedef dime_fe51 fe;
__extension__ typedef unsigned __int128 u128;

#define M51 ((UINT64_C(1) << 51) - 1)

static const fe fe_one = {1, 0, 0, 0, 0};
static const fe ed_d = {0x34dca135978a3ULL, 0x1a8283b156ebdULL, 0x5e7a26001c029ULL,
			0x739c663a03cbbULL, 0x52036cee2b6ffULL};
static const fe ed_d2 = {0x69b9426b2f159ULL, 0x35050762add7aULL, 0x3cf44c0038052ULL,
			 0x6738cc7407977ULL, 0x2406d9dc56dffULL};
static const fe ed_sqrtm1 = {0x61b274a0ea0b0ULL, 0xd5a5fc8f189dULL, 0x7ef5e9cbd0c60ULL,
			     0x78595a6804c9eULL, 0x2b8324804fc1dULL};
static const fe ed_bx = {0x62d608f25d51aULL, 0x412a4b4f6592aULL, 0x75b7171a4b31dULL,
			 0x1ff60527118feULL, 0x216936d3cd6e5ULL};
static const fe ed_by = {0x6666666666658ULL, 0x4ccccccccccccULL, 0x1999999999999ULL,
			 0x3333333333333ULL, 0x6666666666666ULL};
/* Montgomery form v^2 = u^3 + A u^2 + u, A = 486662: u = (1 + y)/(1 - y), v = c u / x with
 * c = sqrt(-486664); T4 = (1, v4), v4 = sqrt(A + 2), generates its rational 4-torsion; when
 * the halving radicand X is not a square, X' = (A^2 - 4)/X is, and its root is r k/X with
 * r^2 = +-i X and k = ed_kp = sqrt(-i (A^2 - 4)) or ed_km = sqrt(i (A^2 - 4)). */
static const fe mont_a = {486662, 0, 0, 0, 0};
static const fe mont_c = {0x604aaff457e06ULL, 0x2296fa350598dULL, 0x7f13dfb16874fULL,
			  0x35de93d846e01ULL, 0xf26edf460a00ULL};
static const fe mont_v4 = {0x248ef9c884415ULL, 0xe509526c7d34ULL, 0x7d29bbd8d6847ULL,
			   0x157e10fd3bd6bULL, 0x6be4f497f9a9cULL};
static const fe ed_kp = {0x71277b3ba5222ULL, 0x2970a394eb516ULL, 0xb29a3e775c7bULL,
			 0xf75f12ecb490ULL, 0x219fc5bc27acfULL};
static const fe ed_km = {0x48befa14b6386ULL, 0x3d8b4d0d98017ULL, 0x40e99219f1a86ULL,
			 0x5f873e60f4e67ULL, 0x797f018b3b0eeULL};
/* L = 2^252 + 27742317777372353535851937790883648493, little-endian 64-bit words */
static const uint64_t sc_l[4] = {0x5812631a5cf5d3edULL, 0x14def9dea2f79cd6ULL, 0,
				 0x1000000000000000ULL};

/* ---- field ----
 * Products and squares leave limbs below 2^51 + 2^15; sums and differences are not carried,
 * so an operand may grow to about 2^54 (the products' bound: 5 * 19 * 2^108 < 2^115, and the
 * final carry is multiplied by 19 in 128 bits). fe_sub's subtrahend must be below 4p's limbs
 * (about 2^53): a product, a constant, or one sum of two products. */

static inline __attribute__((always_inline)) void
fe_copy(fe h, const fe f)
{
	memcpy(h, f, sizeof(fe));
}

static inline __attribute__((always_inline)) void
fe_carry(fe h)
{
	h[1] += h[0] >> 51;
	h[0] &= M51;
	h[2] += h[1] >> 51;
	h[1] &= M51;
	h[3] += h[2] >> 51;
	h[2] &= M51;
	h[4] += h[3] >> 51;
	h[3] &= M51;
	h[0] += 19 * (h[4] >> 51);
	h[4] &= M51;
}

static inline __attribute__((always_inline)) void
fe_add(fe h, const fe f, const fe g)
{
	for (int i = 0; i < 5; i++)
		h[i] = f[i] + g[i];
}

/* f - g + 4p, so no limb goes negative */
static inline __attribute__((always_inline)) void
fe_sub(fe h, const fe f, const fe g)
{
	h[0] = f[0] + 0x1FFFFFFFFFFFB4ULL - g[0];
	for (int i = 1; i < 5; i++)
		h[i] = f[i] + 0x1FFFFFFFFFFFFCULL - g[i];
}

/* Any operand (carried first, so the subtraction cannot go below zero). */
static void
fe_neg(fe h, const fe f)
{
	static const fe zero = {0, 0, 0, 0, 0};
	fe t;

	fe_copy(t, f);
	fe_carry(t);
	fe_sub(h, zero, t);
}

static inline __attribute__((always_inline)) void
fe_reduce128(fe h, u128 r0, u128 r1, u128 r2, u128 r3, u128 r4)
{
	r1 += (uint64_t)(r0 >> 51);
	r2 += (uint64_t)(r1 >> 51);
	r3 += (uint64_t)(r2 >> 51);
	r4 += (uint64_t)(r3 >> 51);
	u128 h0 = ((uint64_t)r0 & M51) + (r4 >> 51) * 19;
	h[1] = ((uint64_t)r1 & M51) + (uint64_t)(h0 >> 51);
	h[0] = (uint64_t)h0 & M51;
	h[2] = (uint64_t)r2 & M51;
	h[3] = (uint64_t)r3 & M51;
	h[4] = (uint64_t)r4 & M51;
}

static inline __attribute__((always_inline)) void
fe_mul(fe h, const fe f, const fe g)
{
	const uint64_t f0 = f[0], f1 = f[1], f2 = f[2], f3 = f[3], f4 = f[4];
	const uint64_t g0 = g[0], g1 = g[1], g2 = g[2], g3 = g[3], g4 = g[4];
	const uint64_t g1_19 = 19 * g1, g2_19 = 19 * g2, g3_19 = 19 * g3, g4_19 = 19 * g4;
	u128 r0 = (u128)f0 * g0 + (u128)f1 * g4_19 + (u128)f2 * g3_19 + (u128)f3 * g2_19 +
		  (u128)f4 * g1_19;
	u128 r1 =
	    (u128)f0 * g1 + (u128)f1 * g0 + (u128)f2 * g4_19 + (u128)f3 * g3_19 + (u128)f4 * g2_19;
	u128 r2 =
	    (u128)f0 * g2 + (u128)f1 * g1 + (u128)f2 * g0 + (u128)f3 * g4_19 + (u128)f4 * g3_19;
	u128 r3 = (u128)f0 * g3 + (u128)f1 * g2 + (u128)f2 * g1 + (u128)f3 * g0 + (u128)f4 * g4_19;
	u128 r4 = (u128)f0 * g4 + (u128)f1 * g3 + (u128)f2 * g2 + (u128)f3 * g1 + (u128)f4 * g0;

	fe_reduce128(h, r0, r1, r2, r3, r4);
}

static inline __attribute__((always_inline)) void
fe_sq(fe h, const fe f)
{
	const uint64_t f0 = f[0], f1 = f[1], f2 = f[2], f3 = f[3], f4 = f[4];
	const uint64_t f0_2 = 2 * f0, f1_2 = 2 * f1, f3_19 = 19 * f3, f4_19 = 19 * f4;
	u128 r0 = (u128)f0 * f0 + (u128)f1_2 * f4_19 + (u128)(2 * f2) * f3_19;
	u128 r1 = (u128)f0_2 * f1 + (u128)(2 * f2) * f4_19 + (u128)f3 * f3_19;
	u128 r2 = (u128)f0_2 * f2 + (u128)f1 * f1 + (u128)(2 * f3) * f4_19;
	u128 r3 = (u128)f0_2 * f3 + (u128)f1_2 * f2 + (u128)f4 * f4_19;
	u128 r4 = (u128)f0_2 * f4 + (u128)f1_2 * f3 + (u128)f2 * f2;

	fe_reduce128(h, r0, r1, r2, r3, r4);
}

static void
fe_sqn(fe h, const fe f, int n)
{
	fe_sq(h, f);
	while (--n > 0)
		fe_sq(h, h);
}

static uint64_t
load64_le(const uint8_t *s)
{
	uint64_t x = 0;

	for (int i = 7; i >= 0; i--)
		x = x << 8 | s[i];
	return x;
}

static void
store64_le(uint8_t *s, uint64_t x)
{
	for (int i = 0; i < 8; i++, x >>= 8)
		s[i] = (uint8_t)x;
}

/* The low 255 bits of s; the top bit (the sign of x in a point encoding) is ignored. */
static void
fe_frombytes(fe h, const uint8_t s[32])
{
	h[0] = load64_le(s) & M51;
	h[1] = (load64_le(s + 6) >> 3) & M51;
	h[2] = (load64_le(s + 12) >> 6) & M51;
	h[3] = (load64_le(s + 19) >> 1) & M51;
	h[4] = (load64_le(s + 24) >> 12) & M51;
}

/* The canonical encoding (value reduced below p). */
static void
fe_tobytes(uint8_t s[32], const fe f)
{
	fe h;
	uint64_t q;

	fe_copy(h, f);
	fe_carry(h);
	fe_carry(h);
	q = (h[0] + 19) >> 51;
	q = (h[1] + q) >> 51;
	q = (h[2] + q) >> 51;
	q = (h[3] + q) >> 51;
	q = (h[4] + q) >> 51; /* 1 iff h >= p */
	h[0] += 19 * q;
	h[1] += h[0] >> 51;
	h[0] &= M51;
	h[2] += h[1] >> 51;
	h[1] &= M51;
	h[3] += h[2] >> 51;
	h[2] &= M51;
	h[4] += h[3] >> 51;
	h[3] &= M51;
	h[4] &= M51;
	store64_le(s, h[0] | h[1] << 51);
	store64_le(s + 8, h[1] >> 13 | h[2] << 38);
	store64_le(s + 16, h[2] >> 26 | h[3] << 25);
	store64_le(s + 24, h[3] >> 39 | h[4] << 12);
}

static int
fe_iszero(const fe f)
{
	uint8_t s[32];
	uint8_t acc = 0;

	fe_tobytes(s, f);
	for (int i = 0; i < 32; i++)
		acc |= s[i];
	return acc == 0;
}

static int
fe_eq(const fe f, const fe g)
{
	uint8_t a[32], b[32];

	fe_tobytes(a, f);
	fe_tobytes(b, g);
	return memcmp(a, b, 32) == 0;
}

static int
fe_isneg(const fe f)
{
	uint8_t s[32];

	fe_tobytes(s, f);
	return s[0] & 1;
}

/* z^(2^250 - 1) and z^11: the common head of the exponentiation chains below. */
static void
fe_pow250(fe t250, fe z11, const fe z)
{
	fe z2, z9, t0, t1;

	fe_sq(z2, z);
	fe_sqn(t0, z2, 2);
	fe_mul(z9, t0, z);
	fe_mul(z11, z9, z2);
	fe_sq(t0, z11);
	fe_mul(t0, t0, z9); /* 2^5 - 1 */
	fe_sqn(t1, t0, 5);
	fe_mul(t0, t1, t0); /* 2^10 - 1 */
	fe_sqn(t1, t0, 10);
	fe_mul(t1, t1, t0); /* 2^20 - 1 */
	fe_sqn(z2, t1, 20);
	fe_mul(t1, z2, t1); /* 2^40 - 1 */
	fe_sqn(t1, t1, 10);
	fe_mul(t0, t1, t0); /* 2^50 - 1 */
	fe_sqn(t1, t0, 50);
	fe_mul(t1, t1, t0); /* 2^100 - 1 */
	fe_sqn(z2, t1, 100);
	fe_mul(t1, z2, t1); /* 2^200 - 1 */
	fe_sqn(t1, t1, 50);
	fe_mul(t250, t1, t0); /* 2^250 - 1 */
}

static void
fe_invert(fe h, const fe z)
{
	fe t, z11;

	fe_pow250(t, z11, z);
	fe_sqn(t, t, 5);
	fe_mul(h, t, z11); /* 2^255 - 21 = p - 2 */
}

/* z^((p - 5)/8) = z^(2^252 - 3) */
static void
fe_pow22523(fe h, const fe z)
{
	fe t, z11;

	fe_pow250(t, z11, z);
	fe_sqn(t, t, 2);
	fe_mul(h, t, z);
}

/* z^((p - 1)/4) = z^(2^253 - 5): 1, -1, i or -i (0 for z = 0) */
static void
fe_pow_quarter(fe h, const fe z)
{
	fe t, z11, z3;

	fe_pow250(t, z11, z);
	fe_sqn(t, t, 3);
	fe_sq(z3, z);
	fe_mul(z3, z3, z);
	fe_mul(h, t, z3);
}

enum { SR_SQUARE = 1, SR_NON_I = 2, SR_NON_MINUS_I = 3 };

/* sqrt(u/v) in two halves around the exponentiation, so that a batch shares one vector call:
 * sr_pre gives base = u v^7 (to be raised to (p-5)/8) and v3 = v^3. */
static void
sr_pre(fe base, fe v3, const fe u, const fe v)
{
	fe v7;

	fe_sq(v3, v);
	fe_mul(v3, v3, v);
	fe_sq(v7, v3);
	fe_mul(v7, v7, v);
	fe_mul(base, u, v7);
}

/* From pw = base^((p-5)/8): r = sqrt(u/v) when u/v is a square (v != 0), returning
 * SR_SQUARE. Otherwise r is the candidate u v^3 pw, whose v r^2 is i u (SR_NON_I) or -i u
 * (SR_NON_MINUS_I). */
static int
sr_post(fe r, const fe u, const fe v, const fe v3, const fe pw)
{
	fe t, check, nu;

	fe_mul(t, pw, v3);
	fe_mul(r, t, u);
	fe_sq(check, r);
	fe_mul(check, check, v);
	if (fe_eq(check, u))
		return SR_SQUARE;
	fe_neg(nu, u);
	if (fe_eq(check, nu)) {
		fe_mul(r, r, ed_sqrtm1);
		return SR_SQUARE;
	}
	fe_mul(t, u, ed_sqrtm1);
	return fe_eq(check, t) ? SR_NON_I : SR_NON_MINUS_I;
}

void
dime_ed_pow_many_base(dime_fe51 *x, size_t n, enum dime_ed_pow e)
{
	for (size_t i = 0; i < n; i++) {
		if (e == DIME_ED_POW_22523)
			fe_pow22523(x[i], x[i]);
		else
			fe_pow_quarter(x[i], x[i]);
	}
}

/* ---- points ---- */

struct ed_pt {
	fe X, Y, Z, T; /* x = X/Z, y = Y/Z, xy = T/Z */
};

struct ed_cached {
	fe ypx, ymx, z2, t2d; /* Y+X, Y-X, 2Z, 2dT */
};

static void
ed_identity(struct ed_pt *p)
{
	memset(p, 0, sizeof(*p));
	p->Y[0] = 1;
	p->Z[0] = 1;
}

static void
ed_to_cached(struct ed_cached *c, const struct ed_pt *p)
{
	fe_add(c->ypx, p->Y, p->X);
	fe_sub(c->ymx, p->Y, p->X);
	fe_add(c->z2, p->Z, p->Z);
	fe_mul(c->t2d, p->T, ed_d2);
}

/* r = p + q (neg = 0) or p - q (neg = 1); r may be p */
static void
ed_add(struct ed_pt *r, const struct ed_pt *p, const struct ed_cached *q, int neg)
{
	fe a, b, c, d, e, f, g, h;

	fe_sub(a, p->Y, p->X);
	fe_add(b, p->Y, p->X);
	fe_mul(a, a, neg ? q->ypx : q->ymx);
	fe_mul(b, b, neg ? q->ymx : q->ypx);
	fe_mul(c, p->T, q->t2d);
	fe_mul(d, p->Z, q->z2);
	fe_sub(e, b, a);
	fe_add(h, b, a);
	if (neg) {
		fe_add(f, d, c);
		fe_sub(g, d, c);
	} else {
		fe_sub(f, d, c);
		fe_add(g, d, c);
	}
	fe_mul(r->X, e, f);
	fe_mul(r->Y, g, h);
	fe_mul(r->T, e, h);
	fe_mul(r->Z, f, g);
}

/* r = 2p; r may be p */
static void
ed_dbl(struct ed_pt *r, const struct ed_pt *p)
{
	fe a, b, c, e, f, g, h;

	fe_sq(a, p->X);
	fe_sq(b, p->Y);
	fe_sq(c, p->Z);
	fe_add(c, c, c);
	fe_add(h, a, b);
	fe_add(e, p->X, p->Y);
	fe_sq(e, e);
	fe_sub(e, h, e);
	fe_sub(g, a, b);
	fe_add(f, c, g);
	fe_mul(r->X, e, f);
	fe_mul(r->Y, g, h);
	fe_mul(r->T, e, h);
	fe_mul(r->Z, f, g);
}

static int
ed_is_identity(const struct ed_pt *p)
{
	return fe_iszero(p->X) && fe_eq(p->Y, p->Z);
}

/* tab[k] = (2k + 1) p, k = 0..7 */
static void
ed_table(struct ed_cached tab[8], const struct ed_pt *p)
{
	struct ed_pt p2, cur = *p;
	struct ed_cached c2;

	ed_dbl(&p2, p);
	ed_to_cached(&c2, &p2);
	ed_to_cached(&tab[0], p);
	for (int k = 1; k < 8; k++) {
		ed_add(&cur, &cur, &c2, 0);
		ed_to_cached(&tab[k], &cur);
	}
}

/* ---- scalars (little-endian 32 bytes, below L) ---- */

static void
sc_load(uint64_t w[4], const uint8_t s[32])
{
	for (int i = 0; i < 4; i++)
		w[i] = load64_le(s + 8 * i);
}

/* a = a + b mod L, both below L */
static void
sc_add(uint64_t a[4], const uint64_t b[4])
{
	uint64_t t[4], c = 0, br = 0;

	for (int i = 0; i < 4; i++) {
		u128 s = (u128)a[i] + b[i] + c;
		a[i] = (uint64_t)s;
		c = (uint64_t)(s >> 64);
	}
	for (int i = 0; i < 4; i++) {
		u128 d = (u128)a[i] - sc_l[i] - br;
		t[i] = (uint64_t)d;
		br = (uint64_t)(d >> 64) & 1;
	}
	if (!br) /* a >= L (a < 2L < 2^254: no carry out above) */
		memcpy(a, t, sizeof(t));
}

/* Signed 5-bit-window NAF of w (< 2^253): digits odd in [-15, 15] or 0, nonzero ones at
 * least 5 apart. Returns: one past the highest nonzero digit (0 for w = 0). */
static int
sc_naf5(int8_t naf[256], const uint64_t w[4])
{
	uint64_t x[5] = {w[0], w[1], w[2], w[3], 0};
	uint64_t carry = 0;
	int top = 0;

	memset(naf, 0, 256);
	for (int pos = 0; pos < 256;) {
		int idx = pos / 64, bit = pos % 64;
		uint64_t buf =
		    bit < 59 ? x[idx] >> bit : (x[idx] >> bit) | (x[idx + 1] << (64 - bit));
		uint64_t win = carry + (buf & 31);

		if ((win & 1) == 0) {
			pos++;
			continue;
		}
		if (win < 16) {
			carry = 0;
			naf[pos] = (int8_t)win;
		} else {
			carry = 1;
			naf[pos] = (int8_t)((int)win - 32);
		}
		top = pos + 1;
		pos += 5;
	}
	return top;
}

/* ---- the batch ---- */

#define ED_CHUNK 64

struct ed_batch {
	size_t na;
	uint8_t aidx[ED_CHUNK];		     /* item -> distinct key */
	struct ed_cached tab_r[ED_CHUNK][8]; /* odd multiples of R_i */
	struct ed_cached tab_a[ED_CHUNK][8]; /* odd multiples of each distinct A */
	struct ed_cached tab_b[8];	     /* odd multiples of -B */
	int8_t naf_r[ED_CHUNK][256];
	int top_r[ED_CHUNK];
	uint64_t za[ED_CHUNK][4], zs[ED_CHUNK][4];
	/* per sub-check scratch */
	uint64_t acoef[ED_CHUNK][4];
	int8_t naf_a[ED_CHUNK][256], naf_b[256];
	int top_a[ED_CHUNK];
	uint8_t aused[ED_CHUNK];
};

/* q += d P for a window digit d (odd, |d| <= 15, or 0) and tab the odd multiples of P */
static void
ed_add_digit(struct ed_pt *q, const struct ed_cached tab[8], int8_t d)
{
	if (d != 0)
		ed_add(q, q, &tab[(d < 0 ? -d : d) / 2], d < 0);
}

/* [8] (sum_{i in idx} z_i R_i + za_i A_i - zs_i B) == O */
static int
ed_msm_ok(struct ed_batch *b, const uint8_t *idx, size_t m)
{
	uint64_t bcoef[4] = {0, 0, 0, 0};
	struct ed_pt q;
	int top = 0, top_b;

	memset(b->aused, 0, b->na);
	for (size_t k = 0; k < m; k++) {
		size_t i = idx[k], a = b->aidx[i];

		if (!b->aused[a]) {
			b->aused[a] = 1;
			memset(b->acoef[a], 0, sizeof(b->acoef[a]));
		}
		sc_add(b->acoef[a], b->za[i]);
		sc_add(bcoef, b->zs[i]);
		if (b->top_r[i] > top)
			top = b->top_r[i];
	}
	for (size_t a = 0; a < b->na; a++)
		if (b->aused[a]) {
			b->top_a[a] = sc_naf5(b->naf_a[a], b->acoef[a]);
			if (b->top_a[a] > top)
				top = b->top_a[a];
		}
	top_b = sc_naf5(b->naf_b, bcoef);
	if (top_b > top)
		top = top_b;
	ed_identity(&q);
	for (int pos = top - 1; pos >= 0; pos--) {
		ed_dbl(&q, &q);
		for (size_t k = 0; k < m; k++)
			ed_add_digit(&q, b->tab_r[idx[k]], b->naf_r[idx[k]][pos]);
		for (size_t a = 0; a < b->na; a++)
			if (b->aused[a])
				ed_add_digit(&q, b->tab_a[a], b->naf_a[a][pos]);
		ed_add_digit(&q, b->tab_b, b->naf_b[pos]);
	}
	for (int k = 0; k < 3; k++)
		ed_dbl(&q, &q);
	return ed_is_identity(&q);
}

/* Items idx[0..m) passed every per-item check; set ok for each, bisecting on failure. */
static void
ed_bisect(struct ed_batch *b, const uint8_t *idx, size_t m, uint8_t *ok)
{
	if (m == 0)
		return;
	if (ed_msm_ok(b, idx, m)) {
		for (size_t k = 0; k < m; k++)
			ok[idx[k]] = 1;
		return;
	}
	if (m == 1)
		return;
	ed_bisect(b, idx, m / 2, ok);
	ed_bisect(b, idx + m / 2, m - m / 2, ok);
}

/* libsodium's decoding (ge25519_frombytes) of enc[0..n): y from the low 255 bits,
 * x = sqrt((y^2 - 1) / (d y^2 + 1)) with the sign of bit 255; bad[k] = 1 when x^2 has no root.
 * One shared exponentiation call for all n. */
static void
ed_decode_many(struct ed_pt *p, uint8_t *bad, const uint8_t *const *enc, size_t n,
	       dime_ed_pow_many_fn pw)
{
	fe u[2 * ED_CHUNK], v[2 * ED_CHUNK], v3[2 * ED_CHUNK], base[2 * ED_CHUNK];

	for (size_t k = 0; k < n; k++) {
		fe_frombytes(p[k].Y, enc[k]);
		fe_sq(u[k], p[k].Y);
		fe_mul(v[k], u[k], ed_d);
		fe_sub(u[k], u[k], fe_one);
		fe_add(v[k], v[k], fe_one);
		sr_pre(base[k], v3[k], u[k], v[k]);
	}
	pw(base, n, DIME_ED_POW_22523);
	for (size_t k = 0; k < n; k++) {
		bad[k] = sr_post(p[k].X, u[k], v[k], v3[k], base[k]) != SR_SQUARE;
		if (bad[k])
			continue;
		if (fe_isneg(p[k].X) != (enc[k][31] >> 7))
			fe_neg(p[k].X, p[k].X);
		fe_copy(p[k].Z, fe_one);
		fe_mul(p[k].T, p[k].X, p[k].Y);
	}
}

/* Which of c[idx[0..n)] lie in the prime-order subgroup 8E: tf[k] = 1 or 0. The group is
 * Z/8 x Z/L. Step 1: C in 2E iff its Montgomery u = (1 + y)/(1 - y) is a square. Step 2: one
 * half Q of C, u_Q = u + r1 s + w with r1 = sqrt(u), w = v / r1, s^2 = 2u + A + 2w (when that
 * is not a square, (A^2 - 4)/(2u + A + 2w) is, for the other signs of r1 and w; kept as a
 * fraction over dd). C in 8E iff Q in 4E. Step 3: Q in 4E iff (l^2 u_Q^3)^((p-1)/4) = 1, the
 * reduced 4-Tate pairing with T4, l = v_Q - v4 u_Q its tangent line; the fraction's
 * denominators go as dd^8, a fourth power. Each step is one exponentiation shared by the
 * batch; all inversions share one. */
static void
ed_torsion_free_many(uint8_t *tf, const struct ed_pt *c, const uint8_t *idx, size_t n,
		     dime_ed_pow_many_fn pw)
{
	fe u[ED_CHUNK], v[ED_CHUNK], r1[ED_CHUNK], w[ED_CHUNK], xs[ED_CHUNK], dd[ED_CHUNK];
	fe sn[ED_CHUNK], base[ED_CHUNK], v3[ED_CHUNK], acc[ED_CHUNK], t, f, inv;
	uint8_t sel[ED_CHUNK];
	size_t nd = 0, m;

	/* x = 0 means y = +-1: the identity is torsion-free, the point of order 2 is not */
	for (size_t k = 0; k < n; k++) {
		const struct ed_pt *p = &c[idx[k]];

		tf[k] = 0;
		if (fe_iszero(p->X)) {
			tf[k] = fe_eq(p->Y, p->Z) ? 1 : 0;
			continue;
		}
		fe_sub(t, p->Z, p->Y);
		fe_mul(u[k], t, p->X); /* (Z - Y) X, inverted below */
		if (nd == 0)
			fe_copy(acc[k], u[k]);
		else
			fe_mul(acc[k], acc[sel[nd - 1]], u[k]);
		sel[nd++] = (uint8_t)k;
	}
	if (nd == 0)
		return;
	fe_invert(inv, acc[sel[nd - 1]]);
	for (size_t j = nd; j-- > 0;) {
		size_t k = sel[j];
		const struct ed_pt *p = &c[idx[k]];
		fe di, zpy, zmy;

		if (j > 0) {
			fe_mul(di, inv, acc[sel[j - 1]]);
			fe_mul(inv, inv, u[k]);
		} else {
			fe_copy(di, inv);
		}
		fe_sub(zmy, p->Z, p->Y);
		fe_add(zpy, p->Z, p->Y);
		fe_mul(u[k], zpy, p->X);
		fe_mul(u[k], u[k], di); /* (1 + y)/(1 - y) */
		fe_mul(v[k], u[k], mont_c);
		fe_mul(v[k], v[k], p->Z);
		fe_mul(v[k], v[k], zmy);
		fe_mul(v[k], v[k], di); /* c u / x */
	}
	/* step 1: r = 1/sqrt(u) */
	for (size_t j = 0; j < nd; j++)
		sr_pre(base[j], v3[j], fe_one, u[sel[j]]);
	pw(base, nd, DIME_ED_POW_22523);
	m = 0;
	for (size_t j = 0; j < nd; j++) {
		size_t k = sel[j];
		fe r;

		if (sr_post(r, fe_one, u[k], v3[j], base[j]) != SR_SQUARE)
			continue; /* not in 2E */
		fe_mul(r1[k], u[k], r);
		fe_mul(w[k], v[k], r);
		fe_add(xs[k], u[k], u[k]);
		fe_add(xs[k], xs[k], mont_a);
		fe_add(xs[k], xs[k], w[k]);
		fe_add(xs[k], xs[k], w[k]);
		fe_carry(xs[k]);
		sel[m++] = (uint8_t)k;
	}
	/* step 2: s = sqrt(xs) */
	for (size_t j = 0; j < m; j++)
		fe_copy(base[j], xs[sel[j]]); /* sr_pre(xs, 1): base = xs, v3 = 1 */
	pw(base, m, DIME_ED_POW_22523);
	for (size_t j = 0; j < m; j++) {
		size_t k = sel[j];
		int sr = sr_post(sn[k], xs[k], fe_one, fe_one, base[j]);

		if (sr == SR_SQUARE) {
			fe_copy(dd[k], fe_one);
		} else {
			fe_neg(r1[k], r1[k]);
			fe_neg(w[k], w[k]);
			fe_copy(dd[k], xs[k]);
			fe_mul(sn[k], sn[k], sr == SR_NON_I ? ed_kp : ed_km);
		}
		fe uq, l, vq;

		fe_mul(uq, u[k], dd[k]);
		fe_mul(t, r1[k], sn[k]);
		fe_add(uq, uq, t);
		fe_mul(t, w[k], dd[k]);
		fe_add(uq, uq, t); /* u_Q dd */
		fe_carry(uq);
		fe_mul(l, r1[k], dd[k]);
		fe_add(l, l, sn[k]); /* lambda dd */
		fe_mul(t, r1[k], sn[k]);
		fe_mul(f, w[k], dd[k]);
		fe_add(t, t, f);
		fe_mul(l, l, t);
		fe_sq(t, dd[k]);
		fe_mul(t, t, v[k]);
		fe_sub(vq, l, t); /* v_Q dd^2 */
		fe_mul(t, mont_v4, uq);
		fe_mul(t, t, dd[k]);
		fe_sub(l, vq, t);
		fe_sq(f, l);
		fe_sq(t, uq);
		fe_mul(t, t, uq);
		fe_mul(f, f, t);
		fe_mul(base[j], f, dd[k]);
	}
	/* step 3: the quartic symbol */
	pw(base, m, DIME_ED_POW_QUARTER);
	for (size_t j = 0; j < m; j++)
		tf[sel[j]] = fe_eq(base[j], fe_one) ? 1 : 0;
}

/* ok == NULL: only whether all verify (no bisection). Returns: 1 when every item verifies. */
static int
ed_chunk(struct ed_batch *b, const struct dime_ed25519_item *it, size_t n, uint8_t *ok,
	 dime_ed_pow_many_fn pw)
{
	struct ed_pt pt[2 * ED_CHUNK], c[ED_CHUNK], negb;
	const uint8_t *enc[2 * ED_CHUNK];
	uint8_t bad[2 * ED_CHUNK], first[ED_CHUNK], live[ED_CHUNK], idx[ED_CHUNK], tf[ED_CHUNK];
	size_t m = 0, nl = 0;

	b->na = 0;
	for (size_t i = 0; i < n; i++) {
		size_t a;

		if (ok != NULL)
			ok[i] = 0;
		for (a = 0; a < b->na; a++)
			if (memcmp(it[first[a]].a, it[i].a, 32) == 0)
				break;
		if (a == b->na)
			first[b->na++] = (uint8_t)i;
		b->aidx[i] = (uint8_t)a;
	}
	/* every distinct key and every R in one decoding pass: pt[0..na) keys, pt[na + i] R_i */
	for (size_t a = 0; a < b->na; a++)
		enc[a] = it[first[a]].a;
	for (size_t i = 0; i < n; i++)
		enc[b->na + i] = it[i].r;
	ed_decode_many(pt, bad, enc, b->na + n, pw);
	for (size_t a = 0; a < b->na; a++)
		if (!bad[a])
			ed_table(b->tab_a[a], &pt[a]);
	for (size_t i = 0; i < n; i++) {
		const struct ed_pt *r = &pt[b->na + i];
		uint8_t re[32], xb[32];
		size_t a = b->aidx[i];
		unsigned h8 = it[i].h8 & 7;

		live[i] = 0;
		if (bad[a] || bad[b->na + i])
			continue;
		/* libsodium compares R's bytes with the canonical encoding of [S]B - [h]A: bytes
		 * that are not the canonical encoding of their point never match */
		fe_tobytes(re, r->Y);
		fe_tobytes(xb, r->X);
		re[31] = (uint8_t)(re[31] | (xb[0] & 1) << 7);
		if (memcmp(re, it[i].r, 32) != 0)
			continue;
		/* C = R + [h mod 8] A carries the small-order part of the item's error; the key's
		 * table holds its odd multiples, so at most two additions */
		c[i] = *r;
		if (h8 != 0) {
			if (h8 % 2 == 0)
				ed_add(&c[i], &c[i], &b->tab_a[a][0], 0);
			ed_add(&c[i], &c[i], &b->tab_a[a][(h8 - 1) / 2], 0);
		}
		ed_table(b->tab_r[i], r);
		idx[nl++] = (uint8_t)i;
	}
	ed_torsion_free_many(tf, c, idx, nl, pw);
	for (size_t k = 0; k < nl; k++)
		live[idx[k]] = tf[k];
	for (size_t i = 0; i < n; i++) {
		uint64_t z[4];

		if (!live[i])
			continue;
		sc_load(b->za[i], it[i].za);
		sc_load(b->zs[i], it[i].zs);
		sc_load(z, it[i].z);
		b->top_r[i] = sc_naf5(b->naf_r[i], z);
		idx[m++] = (uint8_t)i;
	}
	fe_neg(negb.X, ed_bx);
	fe_copy(negb.Y, ed_by);
	fe_copy(negb.Z, fe_one);
	fe_mul(negb.T, negb.X, negb.Y);
	ed_table(b->tab_b, &negb);
	if (ok == NULL)
		return m == n && ed_msm_ok(b, idx, m);
	ed_bisect(b, idx, m, ok);
	for (size_t i = 0; i < n; i++)
		if (!ok[i])
			return 0;
	return 1;
}

static int
ed_verify_batch(const struct dime_ed25519_item *it, size_t n, uint8_t *ok, dime_ed_pow_many_fn pw)
{
	struct ed_batch b;
	int all = 1;

	for (size_t off = 0; off < n; off += ED_CHUNK) {
		size_t k = n - off < ED_CHUNK ? n - off : ED_CHUNK;

		all &= ed_chunk(&b, it + off, k, ok != NULL ? ok + off : NULL, pw);
		if (!all && ok == NULL)
			break;
	}
	return all;
}

int
dime_simd_ed25519_verify_batch_base(const struct dime_ed25519_item *it, size_t n, uint8_t *ok)
{
	return ed_verify_batch(it, n, ok, dime_ed_pow_many_base);
}

#if defined(DIME_HAVE_AVX2)
int
dime_simd_ed25519_verify_batch_avx2(const struct dime_ed25519_item *it, size_t n, uint8_t *ok)
{
	return ed_verify_batch(it, n, ok, dime_ed_pow_many_avx2);
}
#endif

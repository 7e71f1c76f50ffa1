/* Fuzz dime_ed25519_verify_batch against libsodium: every ok[i] must be
 * (crypto_sign_verify_detached(sig, msg, len, pub) == 0), and the return value, with ok and with
 * ok == NULL, DIME_OK exactly when all are. The input is cut into up to 16 items, each raw bytes
 * or derived from an honest signature by one of two fixed keys (a small-order point added to A or
 * R, S + L, then a few byte changes) so that the fuzzer reaches the deep checks, or a copy of an
 * earlier item (copies of a torsion error cancel in a naive sum). Item formats, by the top bits
 * of its first byte c:
 *   00, 01  raw: 64 bytes sig, 32 bytes pub, 1 byte len, len bytes msg (msg NULL when len is 0
 *           and c is odd); bytes past the end of the input are zero
 *   10      derived: c = 10 tr:3 ta:3, then d (bit 0 key, bits 1-2 changes, bit 3 msg NULL when
 *           empty, bit 4 S + L, bit 5 A = [ta]T8 alone, bit 6 R = [tr]T8 alone, bit 7 S + k
 *           mod L for a signed byte k: errors k B that cancel in a plain sum), len, msg, k when
 *           bit 7, and (position in sig || pub, xor) per change
 *   11      a copy of item (c & 15) mod the items so far */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "dime/crypto.h"
#include "fuzz_common.h"

#define FE_ITEMS 16

struct fe_key {
	uint8_t a[32], pub[32];
	uint8_t at[8][32]; /* pub + [k]T8 */
};

struct fe_item {
	uint8_t sig[64], pub[32];
	const uint8_t *msg;
	size_t msg_len;
};

static const uint8_t fe_id[32] = {1};
static const uint8_t fe_L[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
				 0xa2, 0xde, 0xf9, 0xde, 0x14, 0,    0,	   0,	 0,    0,    0,
				 0,    0,    0,	   0,	 0,    0,    0,	   0,	 0,    0x10};
static uint8_t fe_so[8][32]; /* [k]T8: the points of small order */
static struct fe_key fe_keys[2];

/* [n]P by double and add on crypto_core_ed25519_add, which takes points outside the
 * prime-order subgroup (crypto_scalarmult_ed25519 does not). */
static void
fe_mul(uint8_t out[32], const uint8_t n[32], const uint8_t p[32])
{
	uint8_t acc[32];

	memcpy(acc, fe_id, 32);
	for (int b = 255; b >= 0; b--) {
		FUZZ_CHECK(crypto_core_ed25519_add(acc, acc, acc) == 0);
		if ((n[b / 8] >> (b % 8)) & 1)
			FUZZ_CHECK(crypto_core_ed25519_add(acc, acc, p) == 0);
	}
	memcpy(out, acc, 32);
}

void
fuzz_setup(void)
{
	static const uint8_t four[32] = {4};
	uint8_t c[32], p[32], t[32], t4[32], seed[32], h[64], w[64];

	/* T8 = [L]P for the first P (y = 2, 3, ...) with a small-order part of order 8 */
	for (unsigned y = 2;; y++) {
		memset(c, 0, sizeof(c));
		c[0] = (uint8_t)y;
		if (crypto_core_ed25519_add(p, c, fe_id) != 0)
			continue;
		fe_mul(t, fe_L, p);
		fe_mul(t4, four, t);
		if (memcmp(t4, fe_id, 32) != 0)
			break;
	}
	memcpy(fe_so[0], fe_id, 32);
	for (int k = 1; k < 8; k++)
		FUZZ_CHECK(crypto_core_ed25519_add(fe_so[k], fe_so[k - 1], t) == 0);
	for (int i = 0; i < 2; i++) {
		struct fe_key *k = &fe_keys[i];

		for (int j = 0; j < 32; j++)
			seed[j] = (uint8_t)(0x5a * i + j + 1);
		crypto_hash_sha512(h, seed, sizeof(seed));
		h[0] &= 248; /* RFC 8032 5.1.5 */
		h[31] &= 127;
		h[31] |= 64;
		memset(w, 0, sizeof(w));
		memcpy(w, h, 32);
		crypto_core_ed25519_scalar_reduce(k->a, w);
		FUZZ_CHECK(crypto_scalarmult_ed25519_base_noclamp(k->pub, k->a) == 0);
		for (int s = 0; s < 8; s++)
			FUZZ_CHECK(crypto_core_ed25519_add(k->at[s], k->pub, fe_so[s]) == 0);
	}
}

/* Takes up to n bytes at *p (zero past the end). */
static void
fe_take(uint8_t *out, size_t n, const uint8_t **p, const uint8_t *end)
{
	size_t k = (size_t)(end - *p) < n ? (size_t)(end - *p) : n;

	memcpy(out, *p, k);
	memset(out + k, 0, n - k);
	*p += k;
}

static unsigned
fe_byte(const uint8_t **p, const uint8_t *end)
{
	return *p < end ? *(*p)++ : 0;
}

static void
fe_msg(struct fe_item *it, int null_ok, const uint8_t **p, const uint8_t *end)
{
	size_t len = fe_byte(p, end);

	if (len > (size_t)(end - *p))
		len = (size_t)(end - *p);
	it->msg = len == 0 && null_ok ? NULL : *p;
	it->msg_len = len;
	*p += len;
}

/* An honest signature by key (d & 1) over A' = A + [ta]T8 (or [ta]T8 alone) and R' = [r]B +
 * [tr]T8 (or [tr]T8 alone), then the changes d asks for. */
static void
fe_derive(struct fe_item *it, unsigned c, const uint8_t **p, const uint8_t *end)
{
	static const uint8_t zero[32];
	unsigned d = fe_byte(p, end), ta = c & 7, tr = (c >> 3) & 7;
	const uint8_t db = (uint8_t)d;
	const struct fe_key *k = &fe_keys[d & 1];
	const uint8_t *a = d & 0x20 ? zero : k->a;
	crypto_hash_sha512_state st;
	uint8_t r[32], rb[32], h64[64], h[32], ha[32];

	fe_msg(it, d & 8, p, end);
	memcpy(it->pub, d & 0x20 ? fe_so[ta] : k->at[ta], 32);
	/* the nonce from the key and the message, as RFC 8032 does */
	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, k->pub, 32);
	crypto_hash_sha512_update(&st, &db, 1);
	if (it->msg_len > 0)
		crypto_hash_sha512_update(&st, it->msg, it->msg_len);
	crypto_hash_sha512_final(&st, h64);
	crypto_core_ed25519_scalar_reduce(r, h64);
	if (d & 0x40) {
		memset(r, 0, sizeof(r));
		memcpy(it->sig, fe_so[tr], 32);
	} else {
		FUZZ_CHECK(crypto_scalarmult_ed25519_base_noclamp(rb, r) == 0);
		FUZZ_CHECK(crypto_core_ed25519_add(it->sig, rb, fe_so[tr]) == 0);
	}
	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, it->sig, 32);
	crypto_hash_sha512_update(&st, it->pub, 32);
	if (it->msg_len > 0)
		crypto_hash_sha512_update(&st, it->msg, it->msg_len);
	crypto_hash_sha512_final(&st, h64);
	crypto_core_ed25519_scalar_reduce(h, h64);
	crypto_core_ed25519_scalar_mul(ha, h, a);
	crypto_core_ed25519_scalar_add(it->sig + 32, r, ha);
	if (d & 0x80) {
		int8_t dk = (int8_t)fe_byte(p, end);
		uint8_t kk[32] = {(uint8_t)(dk < 0 ? -dk : dk)};

		if (dk < 0)
			crypto_core_ed25519_scalar_sub(it->sig + 32, it->sig + 32, kk);
		else
			crypto_core_ed25519_scalar_add(it->sig + 32, it->sig + 32, kk);
	}
	if (d & 0x10) { /* S + L: the same S mod L, not canonical */
		unsigned carry = 0;

		for (int i = 0; i < 32; i++) {
			carry += (unsigned)it->sig[32 + i] + fe_L[i];
			it->sig[32 + i] = (uint8_t)carry;
			carry >>= 8;
		}
	}
	for (unsigned n = (d >> 1) & 3; n > 0; n--) {
		unsigned pos = fe_byte(p, end) % 96, x = fe_byte(p, end);

		if (pos < 64)
			it->sig[pos] ^= (uint8_t)x;
		else
			it->pub[pos - 64] ^= (uint8_t)x;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fe_item it[FE_ITEMS];
	struct dime_ed25519_check ch[FE_ITEMS] = {{0}};
	uint8_t ok[FE_ITEMS + 1];
	const uint8_t *p = data, *end = data + size;
	size_t n = 0;
	int all = 1, rc;

	while (p < end && n < FE_ITEMS) {
		unsigned c = *p++;
		struct fe_item *x = &it[n];

		if (c >> 6 == 3) {
			if (n == 0)
				continue;
			*x = it[(c & 15) % n];
		} else if (c >> 6 == 2) {
			fe_derive(x, c, &p, end);
		} else {
			fe_take(x->sig, 64, &p, end);
			fe_take(x->pub, 32, &p, end);
			fe_msg(x, c & 1, &p, end);
		}
		n++;
	}
	for (size_t i = 0; i < n; i++) {
		ch[i].sig = it[i].sig;
		ch[i].pub = it[i].pub;
		ch[i].msg = it[i].msg;
		ch[i].msg_len = it[i].msg_len;
	}
	memset(ok, 0xaa, sizeof(ok));
	rc = dime_ed25519_verify_batch(ch, n, ok);
	for (size_t i = 0; i < n; i++) {
		int want = crypto_sign_verify_detached(it[i].sig, it[i].msg, it[i].msg_len,
						       it[i].pub) == 0;

		FUZZ_CHECK(ok[i] == (uint8_t)want);
		all &= want;
	}
	FUZZ_CHECK(ok[n] == 0xaa);
	FUZZ_CHECK(rc == (all ? DIME_OK : DIME_E_BADSIG));
	FUZZ_CHECK(dime_ed25519_verify_batch(ch, n, NULL) == rc);
	return 0;
}

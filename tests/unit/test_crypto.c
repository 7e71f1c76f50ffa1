/* Crypto wrappers against known answers typed in from the standards (tests/vectors/):
 * Ed25519 (RFC 8032 §7.1), SHA-512 (FIPS 180), AES-256-CBC (SP 800-38A F.2.5/F.2.6), the DIME
 * KEK of the interop message msg-small, secp256k1 ECDH against OpenSSL's EVP_PKEY_derive, and
 * outputs zeroed on failure. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "dime/codec.h"
#include "dime/crypto.h"
#include "dime/keys.h"
#include "tlib.h"

/* ---- vector files: "key = hex" lines, records separated by blank lines, # comments ---- */

#define VEC_MAX_FIELDS 8
#define VEC_MAX_BYTES  256

struct vec {
	char name[96];
	char key[VEC_MAX_FIELDS][16];
	uint8_t val[VEC_MAX_FIELDS][VEC_MAX_BYTES];
	size_t len[VEC_MAX_FIELDS];
	size_t n;
};

/* The folder of known-answer files: $DIME_VECTORS, else the build's DIME_VECTORS_DIR. */
static const char *
vec_dir(void)
{
	const char *env = getenv("DIME_VECTORS");

	if (env != NULL && env[0] != 0)
		return env;
	return DIME_VECTORS_DIR;
}

static const uint8_t *
vec_get(const struct vec *v, const char *key, size_t *len)
{
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->key[i], key) == 0) {
			*len = v->len[i];
			return v->val[i];
		}
	t_fail("%s: vector has no '%s'", v->name, key);
	*len = 0;
	return NULL;
}

/* Read every record of file into vs[0..*n). Returns 0, or -1 when the file is unusable. */
static int
vec_load(struct vec *vs, size_t cap, size_t *n, const char *file)
{
	char path[1200], line[1024];
	FILE *f;
	struct vec *cur = NULL;

	*n = 0;
	snprintf(path, sizeof(path), "%s/%s", vec_dir(), file);
	if ((f = fopen(path, "r")) == NULL) {
		t_fail("cannot open %s", path);
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *eq, *k, *val, *e;
		size_t l = strlen(line);

		while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' '))
			line[--l] = 0;
		if (l == 0) {
			cur = NULL;
			continue;
		}
		if (line[0] == '#')
			continue;
		if ((eq = strchr(line, '=')) == NULL) {
			t_fail("%s: bad line '%s'", file, line);
			continue;
		}
		*eq = 0;
		k = line;
		for (e = eq; e > k && e[-1] == ' ';)
			*--e = 0;
		val = eq + 1;
		while (*val == ' ')
			val++;
		if (cur == NULL) {
			if (*n == cap) {
				t_fail("%s: too many records", file);
				break;
			}
			cur = &vs[(*n)++];
			memset(cur, 0, sizeof(*cur));
		}
		if (strcmp(k, "name") == 0) {
			snprintf(cur->name, sizeof(cur->name), "%s", val);
			continue;
		}
		if (cur->n == VEC_MAX_FIELDS) {
			t_fail("%s: too many fields", file);
			continue;
		}
		if (strlen(k) >= sizeof(cur->key[0])) {
			t_fail("%s: key '%s' too long", file, k);
			continue;
		}
		memcpy(cur->key[cur->n], k, strlen(k) + 1);
		if (dime_hex_decode(cur->val[cur->n], VEC_MAX_BYTES, &cur->len[cur->n], val,
				    strlen(val)) != DIME_OK)
			t_fail("%s: %s: bad hex for %s", file, cur->name, k);
		cur->n++;
	}
	fclose(f);
	if (*n == 0)
		t_fail("%s: no records", file);
	return 0;
}

/* ---- known answers ---- */

static void
test_ed25519_rfc8032(void)
{
	struct vec vs[8];
	size_t n = 0;

	if (vec_load(vs, 8, &n, "ed25519_rfc8032.txt") != 0)
		return;
	T_CHECK(n == 3, "ed25519: got %zu records, want 3", n);
	for (size_t i = 0; i < n; i++) {
		const struct vec *v = &vs[i];
		size_t sl, pl, ml, gl;
		const uint8_t *seed = vec_get(v, "seed", &sl), *pub = vec_get(v, "pub", &pl);
		const uint8_t *msg = vec_get(v, "msg", &ml), *sig = vec_get(v, "sig", &gl);
		uint8_t got_pub[32], got_sig[64], bad[64];

		if (seed == NULL || pub == NULL || msg == NULL || sig == NULL || sl != 32 ||
		    pl != 32 || gl != 64) {
			t_fail("%s: malformed vector", v->name);
			continue;
		}
		T_CHECK(dime_ed25519_pub(got_pub, seed) == DIME_OK && memcmp(got_pub, pub, 32) == 0,
			"%s: pub got %s", v->name, t_hex(got_pub, 32));
		T_CHECK(dime_ed25519_sign(got_sig, seed, msg, ml) == DIME_OK &&
			    memcmp(got_sig, sig, 64) == 0,
			"%s: sig got %s", v->name, t_hex(got_sig, 64));
		T_CHECK(dime_ed25519_verify(sig, pub, msg, ml) == DIME_OK, "%s: verify", v->name);
		T_CHECK(dime_ed25519_pub_valid(pub), "%s: pub_valid", v->name);
		for (size_t b = 0; b < 64; b += 7) {
			memcpy(bad, sig, 64);
			bad[b] ^= 0x01;
			T_CHECK(dime_ed25519_verify(bad, pub, msg, ml) == DIME_E_BADSIG,
				"%s: flipped sig byte %zu verified", v->name, b);
		}
	}
}

static void
test_sha512_fips180(void)
{
	struct vec vs[4];
	size_t n = 0;

	if (vec_load(vs, 4, &n, "sha512_fips180.txt") != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		size_t ml, dl;
		const uint8_t *msg = vec_get(&vs[i], "msg", &ml), *md = vec_get(&vs[i], "md", &dl);
		uint8_t got[64];
		struct dime_sha512_ctx c;

		if (msg == NULL || md == NULL || dl != 64)
			continue;
		dime_sha512(got, msg, ml);
		T_CHECK(memcmp(got, md, 64) == 0, "%s: got %s", vs[i].name, t_hex(got, 64));
		/* Incremental, one byte at a time. */
		dime_sha512_init(&c);
		for (size_t k = 0; k < ml; k++)
			dime_sha512_update(&c, msg + k, 1);
		dime_sha512_final(&c, got);
		T_CHECK(memcmp(got, md, 64) == 0, "%s incremental: got %s", vs[i].name,
			t_hex(got, 64));
	}
}

static void
test_aes_sp800_38a(void)
{
	struct vec vs[4];
	size_t n = 0;

	if (vec_load(vs, 4, &n, "aes256cbc_sp800_38a.txt") != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		size_t kl, il, pl, cl;
		const uint8_t *key = vec_get(&vs[i], "key", &kl), *iv = vec_get(&vs[i], "iv", &il);
		const uint8_t *pt = vec_get(&vs[i], "pt", &pl), *ct = vec_get(&vs[i], "ct", &cl);
		uint8_t got[VEC_MAX_BYTES];

		if (key == NULL || iv == NULL || pt == NULL || ct == NULL || kl != 32 || il != 16 ||
		    pl != cl) {
			t_fail("%s: malformed vector", vs[i].name);
			continue;
		}
		/* F.2.5: encrypt. */
		T_CHECK(dime_aes256cbc_encrypt(got, pt, pl, key, iv) == DIME_OK &&
			    memcmp(got, ct, cl) == 0,
			"%s encrypt: got %s", vs[i].name, t_hex(got, cl));
		/* F.2.6: decrypt. */
		T_CHECK(dime_aes256cbc_decrypt(got, ct, cl, key, iv) == DIME_OK &&
			    memcmp(got, pt, pl) == 0,
			"%s decrypt: got %s", vs[i].name, t_hex(got, pl));
		/* In place. */
		memcpy(got, pt, pl);
		T_CHECK(dime_aes256cbc_encrypt(got, got, pl, key, iv) == DIME_OK &&
			    memcmp(got, ct, cl) == 0,
			"%s in place", vs[i].name);
		T_CHECK(dime_aes256cbc_encrypt(got, pt, pl - 1, key, iv) == DIME_E_INVALID,
			"%s: unaligned length accepted", vs[i].name);
	}
}

/* KEK = SHA-512(ECDH x); iv = H[0:16] ^ H[16:32]; key = H[32:64] (reference-format.md §5). */
static void
test_dime_kek(void)
{
	struct vec vs[8];
	size_t n = 0;
	struct dime_ks *ks = NULL;

	if (vec_load(vs, 8, &n, "dime_kek_msg_small.txt") != 0)
		return;
	T_CHECK(n == 4, "kek: got %zu records, want 4 actors", n);
	if (dime_ks_new(&ks) != DIME_OK) {
		t_fail("ks_new");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct vec *v = &vs[i];
		size_t al, bl, cl, dl, el;
		const uint8_t *priv = vec_get(v, "priv", &al), *pub = vec_get(v, "pub", &bl);
		const uint8_t *peer = vec_get(v, "peer", &cl), *iv = vec_get(v, "iv", &dl);
		const uint8_t *key = vec_get(v, "key", &el);
		uint8_t x[32], h[64], got_iv[16], got_pub[33];

		if (priv == NULL || pub == NULL || peer == NULL || iv == NULL || key == NULL ||
		    al != 32 || bl != 33 || cl != 33 || dl != 16 || el != 32) {
			t_fail("%s: malformed vector", v->name);
			continue;
		}
		T_CHECK(dime_secp_pub(got_pub, priv) == DIME_OK && memcmp(got_pub, pub, 33) == 0,
			"%s: pub got %s", v->name, t_hex(got_pub, 33));
		T_CHECK(dime_secp_ecdh_x(x, priv, peer) == DIME_OK, "%s: ecdh", v->name);
		dime_sha512(h, x, 32);
		for (int k = 0; k < 16; k++)
			got_iv[k] = (uint8_t)(h[k] ^ h[16 + k]);
		T_CHECK(memcmp(got_iv, iv, 16) == 0, "%s: iv got %s, want %s", v->name,
			t_hex(got_iv, 16), t_hex(iv, 16));
		T_CHECK(memcmp(h + 32, key, 32) == 0, "%s: key got %s", v->name, t_hex(h + 32, 32));
		dime_wipe(x, sizeof(x));
		dime_wipe(h, sizeof(h));
	}
	dime_ks_free(ks);
}

/* ---- secp256k1 ECDH against OpenSSL ---- */

static EVP_PKEY *
ossl_keygen(uint8_t priv[32], uint8_t pub[33])
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
	BIGNUM *bn = NULL;
	uint8_t u[65];
	size_t ul = 0;

	if (k == NULL)
		return NULL;
	/* OpenSSL's own encoding is uncompressed (04 || x || y): compress it here. */
	if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &bn) != 1 ||
	    BN_bn2binpad(bn, priv, 32) != 32 ||
	    EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, u, sizeof(u),
					    &ul) != 1 ||
	    ul != 65 || u[0] != 0x04) {
		BN_clear_free(bn);
		EVP_PKEY_free(k);
		return NULL;
	}
	BN_clear_free(bn);
	pub[0] = (uint8_t)(0x02 | (u[64] & 1));
	memcpy(pub + 1, u + 1, 32);
	return k;
}

static void
test_ecdh_openssl(void)
{
	for (int i = 0; i < 16; i++) {
		uint8_t ap[32], apub[33], bp[32], bpub[33], mine[33], x1[32], x2[32], ox[64];
		EVP_PKEY *a = ossl_keygen(ap, apub), *b = ossl_keygen(bp, bpub);
		EVP_PKEY_CTX *c = NULL;
		size_t ol = sizeof(ox);

		if (a == NULL || b == NULL) {
			t_fail("openssl keygen %d", i);
			EVP_PKEY_free(a);
			EVP_PKEY_free(b);
			continue;
		}
		T_CHECK(dime_secp_pub(mine, ap) == DIME_OK && memcmp(mine, apub, 33) == 0,
			"pair %d: pub got %s, want %s", i, t_hex(mine, 33), t_hex(apub, 33));
		if ((c = EVP_PKEY_CTX_new(a, NULL)) == NULL || EVP_PKEY_derive_init(c) != 1 ||
		    EVP_PKEY_derive_set_peer(c, b) != 1 || EVP_PKEY_derive(c, ox, &ol) != 1 ||
		    ol != 32)
			t_fail("pair %d: EVP_PKEY_derive", i);
		T_CHECK(dime_secp_ecdh_x(x1, ap, bpub) == DIME_OK && memcmp(x1, ox, 32) == 0,
			"pair %d: ecdh got %s, want %s", i, t_hex(x1, 32), t_hex(ox, 32));
		T_CHECK(dime_secp_ecdh_x(x2, bp, apub) == DIME_OK && memcmp(x2, x1, 32) == 0,
			"pair %d: ecdh not symmetric", i);
		EVP_PKEY_CTX_free(c);
		EVP_PKEY_free(a);
		EVP_PKEY_free(b);
	}
}

/* ---- outputs zeroed on failure ---- */

static int
all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

static void
test_zero_on_failure(void)
{
	static const uint8_t zero32[32];
	/* The group order n: the smallest scalar that is too big. */
	static const char order_hex[] =
	    "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
	uint8_t n_order[32], priv[32], pub[33], x[32], bad[33];
	size_t l;
	struct dime_ks *ks = NULL;
	uint32_t id = 0;

	T_CHECK(dime_hex_decode(n_order, sizeof(n_order), &l, order_hex, 64) == DIME_OK, "hex");
	memset(pub, 0xAA, sizeof(pub));
	T_CHECK(dime_secp_pub(pub, zero32) == DIME_E_MALFORMED && all_zero(pub, 33),
		"secp_pub(0): want MALFORMED and zeroed");
	memset(pub, 0xAA, sizeof(pub));
	T_CHECK(dime_secp_pub(pub, n_order) == DIME_E_MALFORMED && all_zero(pub, 33),
		"secp_pub(n): want MALFORMED and zeroed");
	T_CHECK(dime_secp_keygen(priv, pub) == DIME_OK, "keygen");

	/* Bad points: wrong prefix, x not on the curve, x >= p, uncompressed prefix. */
	{
		struct {
			const char *name;
			uint8_t first, fill;
		} pts[] = {{"prefix 00", 0x00, 0x11},
			   {"prefix 04", 0x04, 0x11},
			   {"prefix 05", 0x05, 0x11},
			   {"x = ff..ff", 0x02, 0xff},
			   {"x = 0", 0x02, 0x00}};

		for (size_t i = 0; i < sizeof(pts) / sizeof(pts[0]); i++) {
			bad[0] = pts[i].first;
			memset(bad + 1, pts[i].fill, 32);
			memset(x, 0xAA, sizeof(x));
			T_CHECK(dime_secp_ecdh_x(x, priv, bad) == DIME_E_MALFORMED &&
				    all_zero(x, 32),
				"ecdh %s: want MALFORMED and zeroed", pts[i].name);
			T_CHECK(!dime_secp_pub_valid(bad), "pub_valid %s", pts[i].name);
		}
		/* 02 || 5: x = 5 has no square root mod p (x^3 + 7 = 132 is a non-residue). */
		memset(bad, 0, sizeof(bad));
		bad[0] = 0x02;
		bad[32] = 5;
		memset(x, 0xAA, sizeof(x));
		T_CHECK(dime_secp_ecdh_x(x, priv, bad) == DIME_E_MALFORMED && all_zero(x, 32),
			"ecdh x=5: want MALFORMED and zeroed");
	}
	/* The same through the keystore. */
	if (dime_ks_new(&ks) == DIME_OK && dime_ks_generate(ks, &id, DIME_KEY_USER) == DIME_OK) {
		uint8_t sig[64];

		bad[0] = 0x03;
		memset(bad + 1, 0xff, 32);
		memset(x, 0xAA, sizeof(x));
		T_CHECK(dime_ks_ecdh(ks, x, id, bad) == DIME_E_MALFORMED && all_zero(x, 32),
			"ks_ecdh bad point: want MALFORMED and zeroed");
		memset(x, 0xAA, sizeof(x));
		T_CHECK(dime_ks_ecdh(ks, x, id + 7, pub) == DIME_E_NOTFOUND && all_zero(x, 32),
			"ks_ecdh unknown id: want NOTFOUND and zeroed");
		memset(sig, 0xAA, sizeof(sig));
		T_CHECK(dime_ks_sign(ks, sig, DIME_KS_NONE, sig, 1) == DIME_E_NOTFOUND &&
			    all_zero(sig, 64),
			"ks_sign id 0: want NOTFOUND and zeroed");
	} else {
		t_fail("keystore setup");
	}
	dime_ks_free(ks);
	dime_wipe(priv, sizeof(priv));
}

/* The keystore's signing path (seed + derived pub) gives the same signatures as from the seed. */
static void
test_sign_kp(void)
{
	for (int i = 0; i < 200; i++) {
		uint8_t seed[32], pub[32], a[64], b[64], msg[97];

		dime_random(seed, sizeof(seed));
		dime_random(msg, sizeof(msg));
		T_CHECK(dime_ed25519_pub(pub, seed) == DIME_OK, "pub");
		T_CHECK(dime_ed25519_sign(a, seed, msg, (size_t)i % sizeof(msg)) == DIME_OK &&
			    dime_ed25519_sign_kp(b, seed, pub, msg, (size_t)i % sizeof(msg)) ==
				DIME_OK &&
			    memcmp(a, b, 64) == 0,
			"sign_kp differs from sign (%d)", i);
	}
}

int
main(void)
{
	t_init();
	test_ed25519_rfc8032();
	test_sha512_fips180();
	test_aes_sp800_38a();
	test_dime_kek();
	test_ecdh_openssl();
	test_zero_on_failure();
	test_sign_kp();
	return t_done("test_crypto");
}

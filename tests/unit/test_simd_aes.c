/* AES-256-CBC multi-buffer kernels: every table's aes256cbc_encrypt_lanes against SP 800-38A
 * F.2.5, a table-driven FIPS-197 reference and OpenSSL (dime_aes256cbc_encrypt), on random
 * keys and IVs, 0..40 lanes of unequal lengths 0..4 KiB, in place and not, with guard bytes
 * around every output; then dime_aes256cbc_encrypt_many at the level $DIME_SIMD selects. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dime/codec.h"
#include "dime/crypto.h"
#include "dime/simd.h"
#include "tlib.h"

#define MAX_LANES 40
#define MAX_LEN	  4096
#define GUARD	  16

/* ---- reference: FIPS-197 straight from the text, S-box table built by search ---- */

static uint8_t ref_sbox[256], ref_mul2[256], ref_mul3[256];

static uint8_t
ref_xtime(uint8_t a)
{
	return (uint8_t)((a << 1) ^ ((a & 0x80) ? 0x1b : 0));
}

static uint8_t
ref_gmul(uint8_t a, uint8_t b)
{
	uint8_t r = 0;

	for (int i = 0; i < 8; i++) {
		if (b & 1)
			r ^= a;
		a = ref_xtime(a);
		b >>= 1;
	}
	return r;
}

static void
ref_init(void)
{
	for (unsigned x = 0; x < 256; x++) {
		uint8_t inv = 0, s;

		for (unsigned y = 1; y < 256 && x != 0; y++)
			if (ref_gmul((uint8_t)x, (uint8_t)y) == 1)
				inv = (uint8_t)y;
		s = inv;
		for (int i = 1; i <= 4; i++)
			s ^= (uint8_t)(inv << i | inv >> (8 - i));
		ref_sbox[x] = (uint8_t)(s ^ 0x63);
		ref_mul2[x] = ref_gmul((uint8_t)x, 2);
		ref_mul3[x] = ref_gmul((uint8_t)x, 3);
	}
}

static void
ref_expand(uint8_t w[240], const uint8_t key[32])
{
	uint8_t rcon = 1;

	memcpy(w, key, 32);
	for (int i = 8; i < 60; i++) {
		uint8_t t[4];

		memcpy(t, w + 4 * (i - 1), 4);
		if (i % 8 == 0) {
			uint8_t t0 = t[0];

			t[0] = (uint8_t)(ref_sbox[t[1]] ^ rcon);
			t[1] = ref_sbox[t[2]];
			t[2] = ref_sbox[t[3]];
			t[3] = ref_sbox[t0];
			rcon = ref_xtime(rcon);
		} else if (i % 8 == 4) {
			for (int j = 0; j < 4; j++)
				t[j] = ref_sbox[t[j]];
		}
		for (int j = 0; j < 4; j++)
			w[4 * i + j] = (uint8_t)(w[4 * (i - 8) + j] ^ t[j]);
	}
}

static void
ref_block(uint8_t s[16], const uint8_t w[240])
{
	for (int i = 0; i < 16; i++)
		s[i] ^= w[i];
	for (int r = 1; r <= 14; r++) {
		uint8_t t[16];

		for (int c = 0; c < 4; c++) /* SubBytes + ShiftRows */
			for (int row = 0; row < 4; row++)
				t[row + 4 * c] = ref_sbox[s[row + 4 * ((c + row) % 4)]];
		if (r < 14)
			for (int c = 0; c < 4; c++) { /* MixColumns */
				uint8_t *a = t + 4 * c, b[4];

				for (int row = 0; row < 4; row++)
					b[row] = (uint8_t)(ref_mul2[a[row]] ^
							   ref_mul3[a[(row + 1) % 4]] ^
							   a[(row + 2) % 4] ^ a[(row + 3) % 4]);
				memcpy(a, b, 4);
			}
		for (int i = 0; i < 16; i++)
			s[i] = (uint8_t)(t[i] ^ w[16 * r + i]);
	}
}

static void
aes256cbc_encrypt_ref(uint8_t *out, const uint8_t *in, size_t len, const uint8_t key[32],
		      const uint8_t iv[16])
{
	uint8_t w[240], c[16];

	ref_expand(w, key);
	memcpy(c, iv, 16);
	for (size_t b = 0; b + 16 <= len; b += 16) {
		for (int i = 0; i < 16; i++)
			c[i] ^= in[b + (size_t)i];
		ref_block(c, w);
		memcpy(out + b, c, 16);
	}
}

/* ---- SP 800-38A F.2.5 from tests/vectors ---- */

struct kat {
	uint8_t key[32], iv[16], pt[64], ct[64];
	int ok;
};

static int
kat_field(const char *line, const char *name, uint8_t *dst, size_t want)
{
	size_t nl = strlen(name), got = 0;
	const char *v;

	if (strncmp(line, name, nl) != 0 || line[nl] != ' ')
		return 0;
	v = strchr(line, '=');
	if (v == NULL)
		return 0;
	v++;
	while (*v == ' ')
		v++;
	if (dime_hex_decode(dst, want, &got, v, strcspn(v, "\r\n ")) != DIME_OK || got != want) {
		t_fail("sp800-38a: bad %s", name);
		return 0;
	}
	return 1;
}

static void
kat_load(struct kat *k)
{
	const char *dir = getenv("DIME_VECTORS");
	char path[1200], line[1024];
	int have = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/aes256cbc_sp800_38a.txt",
		 dir != NULL && dir[0] != 0 ? dir : DIME_VECTORS_DIR);
	memset(k, 0, sizeof(*k));
	if ((f = fopen(path, "r")) == NULL) {
		t_fail("cannot open %s", path);
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL)
		have |= kat_field(line, "key", k->key, 32) | kat_field(line, "iv", k->iv, 16) << 1 |
			kat_field(line, "pt", k->pt, 64) << 2 |
			kat_field(line, "ct", k->ct, 64) << 3;
	fclose(f);
	k->ok = have == 15;
	T_CHECK(k->ok, "sp800-38a: got fields %#x, want 0xf", have);
}

/* ---- lanes ---- */

struct lanes {
	struct dime_aes256cbc_lane l[MAX_LANES];
	uint8_t key[MAX_LANES][32], iv[MAX_LANES][16];
	uint8_t *in[MAX_LANES], *buf[MAX_LANES], *want[MAX_LANES];
	size_t n;
};

/* shape: 0 random lengths, 1 all 4 KiB, 2 decreasing, 3 increasing, 4 mostly tiny with zeros. */
static size_t
lane_len(int shape, size_t i, size_t n)
{
	switch (shape) {
	case 1: return MAX_LEN;
	case 2: return 16 * ((n - i) * 7 % 257);
	case 3: return 16 * (i * 11 % 257);
	case 4: return 16 * t_rand_below(5);
	default: return 16 * t_rand_below(MAX_LEN / 16 + 1);
	}
}

/* Random lanes; buf[i] = GUARD | out | GUARD with out = in for in-place lanes (odd i when
 * inplace), filled with a pattern the kernel must leave alone. */
static void
lanes_make(struct lanes *s, size_t n, int shape, int inplace)
{
	s->n = n;
	for (size_t i = 0; i < n; i++) {
		size_t len = lane_len(shape, i, n);

		dime_random(s->key[i], 32);
		dime_random(s->iv[i], 16);
		s->in[i] = malloc(MAX_LEN);
		s->buf[i] = malloc(MAX_LEN + 2 * GUARD);
		s->want[i] = malloc(MAX_LEN);
		if (s->in[i] == NULL || s->buf[i] == NULL || s->want[i] == NULL) {
			fprintf(stderr, "out of memory\n");
			exit(1);
		}
		dime_random(s->in[i], MAX_LEN);
		memset(s->buf[i], 0xa5, MAX_LEN + 2 * GUARD);
		if (inplace && i % 2 == 1)
			memcpy(s->buf[i] + GUARD, s->in[i], len);
		aes256cbc_encrypt_ref(s->want[i], s->in[i], len, s->key[i], s->iv[i]);
		s->l[i].key = s->key[i];
		s->l[i].iv = s->iv[i];
		s->l[i].in = inplace && i % 2 == 1 ? s->buf[i] + GUARD : s->in[i];
		s->l[i].out = s->buf[i] + GUARD;
		s->l[i].len = len;
	}
}

static void
lanes_free(struct lanes *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->in[i]);
		free(s->buf[i]);
		free(s->want[i]);
	}
	s->n = 0;
}

/* Returns: 1 when every lane holds its reference ciphertext and the guards are untouched. */
static int
lanes_check(const struct lanes *s, const char *what, size_t n, int shape, int inplace)
{
	for (size_t i = 0; i < s->n; i++) {
		const uint8_t *b = s->buf[i];
		size_t len = s->l[i].len;

		for (size_t g = 0; g < GUARD; g++)
			if (b[g] != 0xa5 || b[GUARD + len + g] != 0xa5) {
				t_fail(
				    "%s n=%zu shape=%d inplace=%d: lane %zu wrote outside its %zu "
				    "bytes",
				    what, n, shape, inplace, i, len);
				return 0;
			}
		if (memcmp(b + GUARD, s->want[i], len) != 0) {
			t_fail("%s n=%zu shape=%d inplace=%d: lane %zu (len %zu) got %s", what, n,
			       shape, inplace, i, len, t_hex(b + GUARD, len < 32 ? len : 32));
			return 0;
		}
	}
	return 1;
}

static void
test_ref_vs_openssl(const struct kat *k)
{
	uint8_t got[64], in[MAX_LEN], a[MAX_LEN], b[MAX_LEN], key[32], iv[16];

	if (k->ok) {
		aes256cbc_encrypt_ref(got, k->pt, 64, k->key, k->iv);
		T_CHECK(memcmp(got, k->ct, 64) == 0, "ref sp800-38a: got %s", t_hex(got, 64));
	}
	for (int t = 0; t < 20; t++) {
		size_t len = 16 * t_rand_below(MAX_LEN / 16 + 1);

		dime_random(key, 32);
		dime_random(iv, 16);
		dime_random(in, len);
		aes256cbc_encrypt_ref(a, in, len, key, iv);
		T_CHECK(dime_aes256cbc_encrypt(b, in, len, key, iv) == DIME_OK &&
			    memcmp(a, b, len) == 0,
			"ref vs OpenSSL differ at len %zu", len);
	}
}

static void
test_table(const struct dime_simd_ops *t, const struct kat *k)
{
	struct lanes s;
	uint8_t got[64];
	int bad = 0;

	T_CHECK(t->aes256cbc_encrypt_lanes != NULL, "%s: no aes256cbc_encrypt_lanes", t->name);
	if (t->aes256cbc_encrypt_lanes == NULL)
		return;
	if (k->ok) {
		struct dime_aes256cbc_lane one = {k->key, k->iv, k->pt, got, 64};

		t->aes256cbc_encrypt_lanes(&one, 1);
		T_CHECK(memcmp(got, k->ct, 64) == 0, "%s sp800-38a: got %s, want %s", t->name,
			t_hex(got, 64), t_hex(k->ct, 64));
		/* the same vector in place, at every slot position of 20 lanes */
		for (size_t at = 0; at < 20; at++) {
			lanes_make(&s, 20, 4, 0);
			memcpy(s.key[at], k->key, 32);
			memcpy(s.iv[at], k->iv, 16);
			memcpy(s.buf[at] + GUARD, k->pt, 64);
			s.l[at].in = s.buf[at] + GUARD;
			s.l[at].len = 64;
			memcpy(s.want[at], k->ct, 64);
			t->aes256cbc_encrypt_lanes(s.l, s.n);
			bad |= !lanes_check(&s, t->name, 20, -1, 1);
			lanes_free(&s);
		}
	}
	for (size_t n = 0; n <= MAX_LANES && !bad; n++)
		for (int shape = 0; shape < 5 && !bad; shape++)
			for (int inplace = 0; inplace < 2 && !bad; inplace++) {
				/* base is arithmetic and slow: past 8 lanes, a few counts only */
				if (strcmp(t->name, "base") == 0 && n > 8 && n != 17 && n != 40)
					continue;
				lanes_make(&s, n, shape, inplace);
				t->aes256cbc_encrypt_lanes(s.l, s.n);
				bad |= !lanes_check(&s, t->name, n, shape, inplace);
				lanes_free(&s);
			}
	/* n == 0 with a NULL array */
	t->aes256cbc_encrypt_lanes(NULL, 0);
}

/* The engine entry at the level $DIME_SIMD picked, against OpenSSL one lane at a time. */
static void
test_many(void)
{
	struct lanes s;
	int bad = 0;

	for (size_t n = 0; n <= MAX_LANES && !bad; n += 3)
		for (int shape = 0; shape < 5 && !bad; shape++) {
			lanes_make(&s, n, shape, 1);
			for (size_t i = 0; i < n; i++) /* OpenSSL as the reference this time */
				T_CHECK(dime_aes256cbc_encrypt(s.want[i], s.in[i], s.l[i].len,
							       s.key[i], s.iv[i]) == DIME_OK,
					"OpenSSL encrypt failed");
			T_CHECK(dime_aes256cbc_encrypt_many(s.l, s.n) == DIME_OK,
				"encrypt_many failed");
			bad |= !lanes_check(&s, "encrypt_many", n, shape, 1);
			lanes_free(&s);
		}
	T_CHECK(dime_aes256cbc_encrypt_many(NULL, 0) == DIME_OK, "encrypt_many n=0");
	/* a bad length anywhere: DIME_E_INVALID and nothing written */
	lanes_make(&s, 9, 1, 0);
	s.l[7].len = 4008;
	T_CHECK(dime_aes256cbc_encrypt_many(s.l, s.n) == DIME_E_INVALID,
		"encrypt_many with len 4008: want DIME_E_INVALID");
	for (size_t i = 0; i < s.n; i++)
		for (size_t j = 0; j < MAX_LEN + 2 * GUARD; j++)
			if (s.buf[i][j] != 0xa5) {
				t_fail("encrypt_many wrote lane %zu after DIME_E_INVALID", i);
				j = MAX_LEN + 2 * GUARD;
				i = s.n;
			}
	lanes_free(&s);
}

int
main(void)
{
	struct kat k;
	int tables = 0;

	t_init();
	ref_init();
	T_CHECK(ref_sbox[0] == 0x63 && ref_sbox[0x53] == 0xed && ref_sbox[0xff] == 0x16,
		"ref S-box: got %02x %02x %02x", ref_sbox[0], ref_sbox[0x53], ref_sbox[0xff]);
	kat_load(&k);
	test_ref_vs_openssl(&k);
	for (int lvl = DIME_SIMD_BASE; lvl <= DIME_SIMD_MAX; lvl++) {
		const struct dime_simd_ops *t = dime_simd_table((enum dime_simd_level)lvl);

		if (t == NULL) {
			printf("test_simd_aes: level %d not supported here\n", lvl);
			continue;
		}
		test_table(t, &k);
		tables++;
	}
	printf("test_simd_aes: %d tables, dispatch %s\n", tables, dime_simd()->name);
	test_many();
	return t_done("test_simd_aes");
}

/* The keystore and key files: the interop key files load, give the manifest's public keys and
 * export back byte for byte (armored and binary); every strict prefix is rejected, every
 * single-byte mutation survived; PRIME files refused; generate/export/load round trips; sign,
 * verify and ECDH through key ids. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dime/codec.h"
#include "dime/crypto.h"
#include "dime/keys.h"
#include "tlib.h"

/* From shared/interop/manifest.json "parties": sign_pub_hex, enc_pub_compressed_hex. */
struct party {
	const char *file;
	enum dime_key_kind kind;
	const char *sign_pub, *enc_pub;
};

static const struct party parties[] = {
    {"org-alpha.keys.pem", DIME_KEY_ORG,
     "1b4b9679c1167c76d9f083003b0e5bb182fb9864b9a29cad158c9990284529a4",
     "0251f80efea809a9a308fb395500e502529a8caec57df2c1a818219b9343117309"},
    {"org-beta.keys.pem", DIME_KEY_ORG,
     "033926bda4a2c713a083b2ce3e39b6cbc155f91ce452afd32b56fa16b8433305",
     "022387d8ea1f9dd23b3ee49497562fb13e945cf0df91155ea7021e336ee95087d5"},
    {"user-alice.keys.pem", DIME_KEY_USER,
     "6622979348c78ed180d2b3a0a5956292a7f99c73d1c6462b9308ca60f6502b48",
     "03dc8d500606be73ec6f219846e10c6fed8f3318dce9cf17fdf92fb1367617605f"},
    {"user-bob.keys.pem", DIME_KEY_USER,
     "94d0afa1afbd82433002020c405394010ea22972a10f569527ee805bf7e89a5c",
     "039f89f2a97962bd1061e2a51332b7d05d989b323e70d9fb61d362fb387f9a7b31"},
    {"user-carol-v1.keys.pem", DIME_KEY_USER,
     "9299de4c4711db78802b519ab3aa6c8f6baa2839e9a33ad4ae236ae57a53f149",
     "0261d635cc85bc3022ffb7a22d728be00c823a900d05ef8cb102c3c1593ed3412c"},
    {"user-carol-v2.keys.pem", DIME_KEY_USER,
     "f5576d223af94ddd459bbb4fa0afb1b648f1a817d2c14e27f182e5cbca0bb7ee",
     "033b89c0747bc0077610e8d2be235bb1dc2e7ed7cc0dd947ded7f9021dd79a7010"},
    /* genrec seeds: the POK files must give the org's POK; the SOK has no manifest pub. */
    {"org-alpha.pok.ed25519.pem", DIME_KEY_SIGN,
     "1b4b9679c1167c76d9f083003b0e5bb182fb9864b9a29cad158c9990284529a4", NULL},
    {"org-beta.pok.ed25519.pem", DIME_KEY_SIGN,
     "033926bda4a2c713a083b2ce3e39b6cbc155f91ce452afd32b56fa16b8433305", NULL},
    {"org-alpha.sok1.ed25519.pem", DIME_KEY_SIGN, NULL, NULL},
};

static struct dime_ks *ks;

static const char *
hexs(const uint8_t *p, size_t n)
{
	return t_hex(p, n);
}

/* Load in; check kind and public keys against p. Returns the id or DIME_KS_NONE. */
static uint32_t
load_check(const struct party *p, const char *form, const uint8_t *in, size_t len)
{
	uint32_t id = DIME_KS_NONE;
	enum dime_key_kind kind;
	uint8_t sp[32], ep[33];
	const char *why = NULL;
	int rc = dime_ks_load_why(ks, &id, &why, in, len);

	if (rc != DIME_OK) {
		t_fail("%s %s: load got %d (%s), want ok", p->file, form, rc, why);
		return DIME_KS_NONE;
	}
	T_CHECK(id != DIME_KS_NONE && why != NULL && why[0] == 0, "%s %s: id/why", p->file, form);
	T_CHECK(dime_ks_kind(ks, &kind, id) == DIME_OK && kind == p->kind, "%s %s: kind %d",
		p->file, form, (int)kind);
	T_CHECK(dime_ks_sign_pub(ks, sp, id) == DIME_OK, "%s %s: sign_pub", p->file, form);
	if (p->sign_pub != NULL)
		T_CHECK(strcmp(hexs(sp, 32), p->sign_pub) == 0, "%s %s: sign_pub got %s, want %s",
			p->file, form, hexs(sp, 32), p->sign_pub);
	if (p->kind == DIME_KEY_SIGN) {
		T_CHECK(dime_ks_enc_pub(ks, ep, id) == DIME_E_INVALID, "%s %s: enc_pub of a seed",
			p->file, form);
	} else {
		T_CHECK(dime_ks_enc_pub(ks, ep, id) == DIME_OK &&
			    strcmp(hexs(ep, 33), p->enc_pub) == 0,
			"%s %s: enc_pub got %s, want %s", p->file, form, hexs(ep, 33), p->enc_pub);
	}
	return id;
}

/* Every strict prefix of a binary key file fails with DIME_E_TRUNCATED, read at a page end. */
static void
check_prefixes(const char *name, const uint8_t *bin, size_t len)
{
	for (size_t k = 0; k < len; k++) {
		uint32_t id = 99;
		int rc = dime_ks_load(ks, &id, t_at_page_end(0, bin, k), k);

		T_CHECK(rc == DIME_E_TRUNCATED && id == DIME_KS_NONE,
			"%s: prefix %zu: got %d, want DIME_E_TRUNCATED", name, k, rc);
	}
}

/* Every single-byte change is survived; what still loads exports to the mutated bytes.
 * every_value: all 255 replacement values per byte (else bit flips, 00 and ff). */
static void
check_mutations(const char *name, const uint8_t *bin, size_t len, int every_value)
{
	uint8_t back[DIME_KEYFILE_MAX_BYTES];
	/* One guard-page copy (its page is writable), mutated in place and restored. */
	uint8_t *m = (uint8_t *)(uintptr_t)t_at_page_end(1, bin, len);
	size_t ok = 0;

	for (size_t i = 0; i < len; i++) {
		struct dime_ks *mk = NULL; /* one store per position keeps memory small */

		if (dime_ks_new(&mk) != DIME_OK) {
			t_fail("ks_new");
			return;
		}
		for (unsigned v = 0; v < 256; v++) {
			uint32_t id = DIME_KS_NONE;
			size_t bl = 0;
			int rc;

			if (v == bin[i])
				continue;
			/* Other files: the eight bit flips of each byte, plus 00 and ff. */
			if (!every_value && v != 0 && v != 0xff &&
			    __builtin_popcount(v ^ bin[i]) != 1)
				continue;
			m[i] = (uint8_t)v;
			rc = dime_ks_load(mk, &id, m, len);
			/* Header, field ids and lengths are fixed: a change there must fail. */
			if (i < 5 || i == 5 || i == 6 || (i >= 39 && i <= 41)) {
				T_CHECK(rc != DIME_OK, "%s: byte %zu = %02x accepted", name, i, v);
			} else {
				if (i >= 7 && i < 39)
					T_CHECK(rc == DIME_OK,
						"%s: seed byte %zu = %02x rejected (%d)", name, i,
						v, rc);
				if (rc != DIME_OK) {
					T_CHECK(rc == DIME_E_MALFORMED, "%s: byte %zu: got %d",
						name, i, rc);
				} else {
					ok++;
					T_CHECK(dime_ks_export(mk, back, sizeof(back), &bl, id,
							       0) == DIME_OK &&
						    bl == len && memcmp(back, m, len) == 0,
						"%s: byte %zu = %02x: export differs", name, i, v);
					dime_wipe(back, sizeof(back));
				}
			}
			m[i] = bin[i];
		}
		dime_ks_free(mk);
	}
	T_CHECK(ok > 0, "%s: no mutation loaded", name);
	dime_wipe(m, len);
}

static void
test_interop_files(void)
{
	for (size_t i = 0; i < sizeof(parties) / sizeof(parties[0]); i++) {
		const struct party *p = &parties[i];
		size_t flen = 0, blen = 0, elen = 0;
		uint8_t *file = t_read(p->file, &flen);
		uint8_t bin[DIME_KEYFILE_MAX_BYTES], out[DIME_KEYFILE_MAX_BYTES];
		char label[DIME_ARMOR_LABEL_MAX];
		uint32_t id, id2;

		/* Armored: load, export armored, same bytes. */
		id = load_check(p, "armored", t_at_page_end(0, file, flen), flen);
		if (id == DIME_KS_NONE)
			goto next;
		T_CHECK(dime_ks_export(ks, NULL, 0, &elen, id, 1) == DIME_OK && elen == flen,
			"%s: armored size got %zu, want %zu", p->file, elen, flen);
		T_CHECK(dime_ks_export(ks, out, sizeof(out), &elen, id, 1) == DIME_OK &&
			    elen == flen && memcmp(out, file, flen) == 0 && out[flen] == 0,
			"%s: armored export differs:\n%.*s", p->file, (int)elen, (const char *)out);
		T_CHECK(dime_ks_export(ks, out, flen, &elen, id, 1) == DIME_E_NOSPACE && elen == 0,
			"%s: armored export without room for the NUL", p->file);
		/* Binary: de-armor, load, export binary, same bytes. */
		if (dime_armor_decode(label, bin, sizeof(bin), &blen, NULL, file, flen) !=
		    DIME_OK) {
			t_fail("%s: de-armor", p->file);
			goto next;
		}
		T_CHECK(blen == (p->kind == DIME_KEY_SIGN ? 32u : 74u), "%s: binary %zu bytes",
			p->file, blen);
		id2 = load_check(p, "binary", t_at_page_end(0, bin, blen), blen);
		if (id2 == DIME_KS_NONE)
			goto next;
		T_CHECK(id2 == id + 1, "%s: ids not sequential (%u, %u)", p->file, id, id2);
		T_CHECK(dime_ks_export(ks, out, sizeof(out), &elen, id2, 0) == DIME_OK &&
			    elen == blen && memcmp(out, bin, blen) == 0,
			"%s: binary export differs", p->file);
		T_CHECK(dime_ks_export(ks, out, blen - 1, &elen, id2, 0) == DIME_E_NOSPACE &&
			    elen == 0,
			"%s: binary export short buffer", p->file);
		/* Binary export of the armored load equals the de-armored bytes too. */
		T_CHECK(dime_ks_export(ks, out, sizeof(out), &elen, id, 0) == DIME_OK &&
			    elen == blen && memcmp(out, bin, blen) == 0,
			"%s: binary export of the armored load differs", p->file);
		if (p->kind != DIME_KEY_SIGN) {
			check_prefixes(p->file, bin, blen);
			check_mutations(p->file, bin, blen, i == 0 || i == 2);
		}
		/* Armored prefixes: all fail, up to the END line's final newline. */
		for (size_t k = 0; k + 1 < flen; k++) {
			uint32_t x = 5;

			T_CHECK(dime_ks_load(ks, &x, t_at_page_end(2, file, k), k) != DIME_OK &&
				    x == DIME_KS_NONE,
				"%s: armored prefix %zu accepted", p->file, k);
		}
next:
		dime_wipe(bin, sizeof(bin));
		dime_wipe(out, sizeof(out));
		dime_wipe(file, flen);
		free(file);
	}
}

static void
test_rejects(void)
{
	size_t flen = 0, blen = 0;
	uint8_t *file = t_read("org-alpha.keys.pem", &flen);
	uint8_t bin[DIME_KEYFILE_MAX_BYTES + 8], buf[DIME_KEYFILE_MAX_BYTES + 8];
	char label[DIME_ARMOR_LABEL_MAX];
	const char *why = NULL;
	uint32_t id = 7;
	int rc;

	if (dime_armor_decode(label, bin, sizeof(bin), &blen, NULL, file, flen) != DIME_OK ||
	    blen != 74) {
		t_fail("org-alpha de-armor");
		goto out;
	}
	/* Trailing bytes, binary and armored. */
	memcpy(buf, bin, blen);
	buf[blen] = 0;
	rc = dime_ks_load(ks, &id, t_at_page_end(0, buf, blen + 1), blen + 1);
	T_CHECK(rc == DIME_E_TRAILING && id == DIME_KS_NONE, "binary + 1: got %d", rc);
	memcpy(buf, file, flen);
	memcpy(buf + flen, "x\n", 2);
	rc = dime_ks_load(ks, &id, t_at_page_end(0, buf, flen + 2), flen + 2);
	T_CHECK(rc == DIME_E_TRAILING, "armor + text: got %d", rc);
	memcpy(buf + flen, " \n", 2);
	rc = dime_ks_load(ks, &id, t_at_page_end(0, buf, flen + 2), flen + 2);
	T_CHECK(rc == DIME_OK, "armor + whitespace: got %d", rc);
	/* The length field lies. */
	memcpy(buf, bin, blen);
	buf[4] = 0x46;
	memcpy(buf + blen, "\0", 1);
	rc = dime_ks_load(ks, &id, buf, blen + 1);
	T_CHECK(rc == DIME_E_MALFORMED, "length 70: got %d", rc);
	/* Scalar zero, and the group order n. */
	{
		static const uint8_t n_order[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
						    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
						    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b,
						    0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};

		memcpy(buf, bin, blen);
		memset(buf + 42, 0, 32);
		rc = dime_ks_load_why(ks, &id, &why, buf, blen);
		T_CHECK(rc == DIME_E_MALFORMED && id == DIME_KS_NONE, "zero scalar: got %d", rc);
		memcpy(buf + 42, n_order, 32);
		rc = dime_ks_load(ks, &id, buf, blen);
		T_CHECK(rc == DIME_E_MALFORMED, "scalar n: got %d", rc);
	}
	/* Magic and label disagree; an org file under USER KEY. */
	{
		char arm[512];
		size_t al = 0;

		T_CHECK(dime_armor_encode(arm, sizeof(arm), &al, "USER KEY", bin, blen,
					  DIME_ARMOR_CRC) == DIME_OK,
			"encode");
		rc = dime_ks_load(ks, &id, (const uint8_t *)arm, al);
		T_CHECK(rc == DIME_E_MALFORMED, "org bytes under USER KEY: got %d", rc);
		T_CHECK(dime_armor_encode(arm, sizeof(arm), &al, "ORGANIZATIONAL SIGNET", bin, blen,
					  DIME_ARMOR_CRC) == DIME_OK,
			"encode");
		rc = dime_ks_load(ks, &id, (const uint8_t *)arm, al);
		T_CHECK(rc == DIME_E_MALFORMED, "key under a signet label: got %d", rc);
		/* Without the CRC line: accepted (WIRE.md). A wrong CRC: DIME_E_BADSIG. */
		T_CHECK(dime_armor_encode(arm, sizeof(arm), &al, "ORGANIZATIONAL KEY", bin, blen,
					  0) == DIME_OK,
			"encode");
		rc = dime_ks_load(ks, &id, (const uint8_t *)arm, al);
		T_CHECK(rc == DIME_OK, "armor without CRC: got %d", rc);
		memcpy(buf, file, flen);
		{
			char *crc = strstr((char *)buf, "\n=");

			if (crc != NULL)
				crc[2] = crc[2] == 'A' ? 'B' : 'A';
		}
		rc = dime_ks_load(ks, &id, buf, flen);
		T_CHECK(rc == DIME_E_BADSIG, "bad CRC: got %d", rc);
		/* ED25519 PRIVATE KEY of 31 and 33 bytes. */
		T_CHECK(dime_armor_encode(arm, sizeof(arm), &al, "ED25519 PRIVATE KEY", bin, 31,
					  DIME_ARMOR_CRC) == DIME_OK,
			"encode");
		T_CHECK(dime_ks_load(ks, &id, (const uint8_t *)arm, al) == DIME_E_TRUNCATED,
			"31-byte seed");
		T_CHECK(dime_armor_encode(arm, sizeof(arm), &al, "ED25519 PRIVATE KEY", bin, 33,
					  DIME_ARMOR_CRC) == DIME_OK,
			"encode");
		T_CHECK(dime_ks_load(ks, &id, (const uint8_t *)arm, al) == DIME_E_TRAILING,
			"33-byte seed");
	}
	/* Unknown magic, and the "encrypted" magics the reference defines but never writes. */
	{
		static const uint16_t magics[] = {0, 1947, 1976, 1776, 1789, 1215, 0xffff};

		for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
			memcpy(buf, bin, blen);
			buf[0] = (uint8_t)(magics[i] >> 8);
			buf[1] = (uint8_t)magics[i];
			rc = dime_ks_load(ks, &id, buf, blen);
			T_CHECK(rc == DIME_E_MALFORMED, "magic %u: got %d", magics[i], rc);
		}
	}
	/* Over the limit. */
	{
		uint8_t *big = calloc(1, DIME_KEYFILE_MAX_BYTES + 1);

		if (big != NULL) {
			memcpy(big, bin, blen);
			rc = dime_ks_load(ks, &id, big, DIME_KEYFILE_MAX_BYTES + 1);
			T_CHECK(rc == DIME_E_LIMIT, "over the limit: got %d", rc);
			free(big);
		}
	}
	rc = dime_ks_load(ks, &id, NULL, 0);
	T_CHECK(rc == DIME_E_TRUNCATED, "empty input: got %d", rc);
out:
	dime_wipe(bin, sizeof(bin));
	dime_wipe(buf, sizeof(buf));
	dime_wipe(file, flen);
	free(file);
}

/* PRIME (magma) key files: a 1-octet length for the encryption key, refused by name. */
static void
test_prime(void)
{
	size_t flen = 0, blen = 0;
	uint8_t *file = t_read("magma-fixtures/dime.localhost.localdomain.key", &flen);
	uint8_t bin[DIME_KEYFILE_MAX_BYTES];
	char label[DIME_ARMOR_LABEL_MAX];
	const char *why = NULL;
	uint32_t id = 3;
	int rc = dime_ks_load_why(ks, &id, &why, file, flen);

	T_CHECK(rc == DIME_E_MALFORMED && id == DIME_KS_NONE, "prime armored: got %d", rc);
	T_CHECK(why != NULL && strstr(why, "PRIME") != NULL, "prime armored: why '%s'",
		why == NULL ? "(null)" : why);
	if (dime_armor_decode(label, bin, sizeof(bin), &blen, NULL, file, flen) == DIME_OK) {
		rc = dime_ks_load_why(ks, &id, &why, t_at_page_end(0, bin, blen), blen);
		T_CHECK(rc == DIME_E_MALFORMED && strstr(why, "PRIME") != NULL,
			"prime binary: got %d (%s)", rc, why);
	} else {
		t_fail("prime de-armor");
	}
	/* The PRIME signet file is not a key at all. */
	free(file);
	file = t_read("magma-fixtures/dime.localhost.localdomain.signet", &flen);
	rc = dime_ks_load_why(ks, &id, &why, file, flen);
	T_CHECK(rc == DIME_E_MALFORMED, "prime signet as key: got %d (%s)", rc, why);
	dime_wipe(bin, sizeof(bin));
	free(file);
}

static void
test_generate(void)
{
	static const enum dime_key_kind kinds[] = {DIME_KEY_ORG, DIME_KEY_USER, DIME_KEY_SIGN};

	for (size_t i = 0; i < 3; i++)
		for (int armored = 0; armored <= 1; armored++) {
			uint8_t out[DIME_KEYFILE_MAX_BYTES], sp1[32], sp2[32], ep1[33], ep2[33];
			uint8_t sig[64], x1[32], x2[32];
			static const uint8_t msg[] = "dime keystore test message";
			size_t need = 0, len = 0;
			uint32_t a = 0, b = 0;
			enum dime_key_kind k;

			if (dime_ks_generate(ks, &a, kinds[i]) != DIME_OK) {
				t_fail("generate kind %d", (int)kinds[i]);
				continue;
			}
			T_CHECK(dime_ks_export(ks, NULL, 0, &need, a, armored) == DIME_OK,
				"size kind %d", (int)kinds[i]);
			T_CHECK(dime_ks_export(ks, out, need + 1, &len, a, armored) == DIME_OK &&
				    len == need,
				"export kind %d armored %d", (int)kinds[i], armored);
			if (dime_ks_load(ks, &b, t_at_page_end(0, out, len), len) != DIME_OK) {
				t_fail("reload kind %d armored %d", (int)kinds[i], armored);
				continue;
			}
			T_CHECK(dime_ks_kind(ks, &k, b) == DIME_OK && k == kinds[i], "reload kind");
			T_CHECK(dime_ks_sign_pub(ks, sp1, a) == DIME_OK &&
				    dime_ks_sign_pub(ks, sp2, b) == DIME_OK &&
				    memcmp(sp1, sp2, 32) == 0,
				"reload sign_pub kind %d", (int)kinds[i]);
			/* Sign with one id, verify with the other's public key. */
			T_CHECK(dime_ks_sign(ks, sig, a, msg, sizeof(msg)) == DIME_OK &&
				    dime_ed25519_verify(sig, sp2, msg, sizeof(msg)) == DIME_OK,
				"sign/verify kind %d", (int)kinds[i]);
			sig[5] ^= 1;
			T_CHECK(dime_ed25519_verify(sig, sp2, msg, sizeof(msg)) == DIME_E_BADSIG,
				"tampered sig verified");
			if (kinds[i] == DIME_KEY_SIGN) {
				memset(ep1, 2, sizeof(ep1));
				T_CHECK(dime_ks_ecdh(ks, x1, a, ep1) == DIME_E_INVALID,
					"ecdh with a lone seed");
				dime_wipe(out, sizeof(out));
				continue;
			}
			T_CHECK(dime_ks_enc_pub(ks, ep1, a) == DIME_OK &&
				    dime_ks_enc_pub(ks, ep2, b) == DIME_OK &&
				    memcmp(ep1, ep2, 33) == 0,
				"reload enc_pub kind %d", (int)kinds[i]);
			/* ECDH through the keystore, both directions, with a fresh peer. */
			{
				uint8_t pp[32], pq[33];

				T_CHECK(dime_secp_keygen(pp, pq) == DIME_OK, "keygen");
				T_CHECK(dime_ks_ecdh(ks, x1, b, pq) == DIME_OK &&
					    dime_secp_ecdh_x(x2, pp, ep1) == DIME_OK &&
					    memcmp(x1, x2, 32) == 0,
					"ecdh kind %d", (int)kinds[i]);
				dime_wipe(pp, sizeof(pp));
			}
			dime_wipe(out, sizeof(out));
		}
	/* Bad kind and missing ids. */
	{
		uint32_t id = 9;
		uint8_t pub[33];
		enum dime_key_kind k;
		size_t l = 1;

		T_CHECK(dime_ks_generate(ks, &id, (enum dime_key_kind)7) == DIME_E_INVALID &&
			    id == DIME_KS_NONE,
			"generate kind 7");
		T_CHECK(dime_ks_kind(ks, &k, 100000) == DIME_E_NOTFOUND, "kind of missing id");
		T_CHECK(dime_ks_sign_pub(ks, pub, 0) == DIME_E_NOTFOUND, "sign_pub id 0");
		T_CHECK(dime_ks_export(ks, NULL, 0, &l, 100000, 1) == DIME_E_NOTFOUND && l == 0,
			"export missing id");
	}
}

/* Ids are 1, 2, 3... in a fresh store, which grows and keeps every key. */
static void
test_growth(void)
{
	struct dime_ks *k2 = NULL;
	uint8_t pubs[100][32], p[32];

	if (dime_ks_new(&k2) != DIME_OK) {
		t_fail("ks_new");
		return;
	}
	for (uint32_t i = 0; i < 100; i++) {
		uint32_t id = 0;

		T_CHECK(dime_ks_generate(k2, &id, i % 3 == 0 ? DIME_KEY_SIGN : DIME_KEY_USER) ==
				DIME_OK &&
			    id == i + 1,
			"id %u: got %u", i + 1, id);
		T_CHECK(dime_ks_sign_pub(k2, pubs[i], id) == DIME_OK, "sign_pub %u", id);
	}
	for (uint32_t i = 0; i < 100; i++)
		T_CHECK(dime_ks_sign_pub(k2, p, i + 1) == DIME_OK && memcmp(p, pubs[i], 32) == 0,
			"key %u changed after growth", i + 1);
	dime_ks_free(k2);
	dime_ks_free(NULL);
}

/* A remote keystore over a backend that answers from a local keystore of the same keys (the
 * key process's part, without the process: tests/unit/test_keyproc.c runs the real one). */
struct remote_be {
	const struct dime_ks *local;
	int down; /* answer DIME_E_AGAIN and touch nothing, as a backend whose peer is gone */
	unsigned calls;
};

static int
remote_sign(void *ctx, uint8_t sig[DIME_SIG_BYTES], uint32_t id, const uint8_t *msg, size_t msg_len)
{
	struct remote_be *b = ctx;

	b->calls++;
	if (b->down) {
		memset(sig, 0, DIME_SIG_BYTES);
		return DIME_E_AGAIN;
	}
	return dime_ks_sign(b->local, sig, id, msg, msg_len);
}

static int
remote_ecdh(void *ctx, uint32_t id, const uint8_t (*pubs)[DIME_SECP_PUB_BYTES], size_t n,
	    uint8_t (*x)[DIME_ECDH_BYTES], int *rc)
{
	struct remote_be *b = ctx;

	b->calls++;
	if (b->down) {
		for (size_t i = 0; i < n; i++) /* a lazy backend: items left looking fine */
			rc[i] = DIME_OK;
		return DIME_E_AGAIN;
	}
	return dime_ks_ecdh_batch(b->local, id, pubs, n, x, rc);
}

static void
test_remote(void)
{
	struct dime_ks *local = NULL, *rks = NULL;
	struct remote_be be = {0};
	struct dime_ks_backend backend = {remote_sign, remote_ecdh, &be};
	static const char *files[] = {"org-alpha.keys.pem", "user-bob.keys.pem",
				      "org-beta.pok.ed25519.pem"};
	uint32_t lid[3], rid[3];

	if (dime_ks_new(&local) != DIME_OK) {
		t_fail("ks_new");
		return;
	}
	be.local = local;
	T_CHECK(dime_ks_new_remote(&rks, &(struct dime_ks_backend){NULL, remote_ecdh, &be}) ==
			DIME_E_INVALID &&
		    rks == NULL,
		"remote without sign");
	if (dime_ks_new_remote(&rks, &backend) != DIME_OK) {
		t_fail("ks_new_remote");
		dime_ks_free(local);
		return;
	}
	T_CHECK(dime_ks_is_remote(rks) && !dime_ks_is_remote(local), "is_remote");
	for (size_t i = 0; i < 3; i++) {
		size_t len = 0;
		uint8_t *in = t_read(files[i], &len);
		uint8_t sp[32], ep[33];
		enum dime_key_kind kind;
		uint32_t id = 5;
		const char *why = "";

		T_CHECK(dime_ks_load(local, &lid[i], in, len) == DIME_OK, "%s: load", files[i]);
		/* a remote keystore loads, generates and exports nothing */
		T_CHECK(dime_ks_load_why(rks, &id, &why, in, len) == DIME_E_INVALID &&
			    id == DIME_KS_NONE && strstr(why, "remote") != NULL,
			"%s: remote load got '%s'", files[i], why);
		free(in);
		T_CHECK(dime_ks_kind(local, &kind, lid[i]) == DIME_OK &&
			    dime_ks_sign_pub(local, sp, lid[i]) == DIME_OK,
			"%s: pub", files[i]);
		if (kind != DIME_KEY_SIGN)
			T_CHECK(dime_ks_enc_pub(local, ep, lid[i]) == DIME_OK, "%s: enc", files[i]);
		T_CHECK(dime_ks_add_public(local, &id, kind, sp, ep) == DIME_E_INVALID &&
			    id == DIME_KS_NONE,
			"add_public to a local keystore");
		T_CHECK(dime_ks_add_public(rks, &rid[i], kind, sp,
					   kind == DIME_KEY_SIGN ? NULL : ep) == DIME_OK &&
			    rid[i] == lid[i],
			"%s: add_public id %u, want %u", files[i], rid[i], lid[i]);
	}
	{
		uint8_t out[DIME_KEYFILE_MAX_BYTES], sp[32] = {0}, bad[33];
		size_t l = 3;
		uint32_t id = 5;

		T_CHECK(dime_ks_generate(rks, &id, DIME_KEY_USER) == DIME_E_INVALID &&
			    id == DIME_KS_NONE,
			"remote generate");
		T_CHECK(dime_ks_export(rks, out, sizeof(out), &l, rid[0], 1) == DIME_E_INVALID &&
			    l == 0,
			"remote export");
		memset(bad, 0, sizeof(bad));
		T_CHECK(dime_ks_add_public(rks, &id, DIME_KEY_USER, sp, bad) == DIME_E_INVALID,
			"add_public with no point");
		T_CHECK(dime_ks_add_public(rks, &id, (enum dime_key_kind)7, sp, NULL) ==
			    DIME_E_INVALID,
			"add_public kind 7");
	}
	/* results equal the local keystore's: signatures, and ECDH item by item, a bad point
	 * failing only its own item */
	for (size_t i = 0; i < 3; i++) {
		uint8_t msg[300], s1[64], s2[64], pubs[6][33], x1[6][32], x2[6][32], pp[32];
		int rc1[6], rc2[6], r1, r2;

		t_rand_fill(msg, sizeof(msg));
		T_CHECK(dime_ks_sign(local, s1, lid[i], msg, sizeof(msg)) == DIME_OK &&
			    dime_ks_sign(rks, s2, rid[i], msg, sizeof(msg)) == DIME_OK &&
			    memcmp(s1, s2, 64) == 0,
			"%s: remote signature differs", files[i]);
		for (size_t j = 0; j < 6; j++)
			T_CHECK(dime_secp_keygen(pp, pubs[j]) == DIME_OK, "keygen");
		memset(pubs[2], 0xff, 33);
		pubs[2][0] = 2; /* x >= p: not a point */
		r1 = dime_ks_ecdh_batch(local, lid[i], (const uint8_t(*)[33])pubs, 6, x1, rc1);
		r2 = dime_ks_ecdh_batch(rks, rid[i], (const uint8_t(*)[33])pubs, 6, x2, rc2);
		T_CHECK(r1 == r2 && memcmp(rc1, rc2, sizeof(rc1)) == 0 &&
			    memcmp(x1, x2, sizeof(x1)) == 0,
			"%s: remote ecdh batch: got %d (item 0: %d), want %d (item 0: %d)",
			files[i], r2, rc2[0], r1, rc1[0]);
		if (i < 2)
			T_CHECK(r1 == DIME_E_MALFORMED && rc1[0] == DIME_OK && rc1[2] == r1,
				"%s: one bad point fails one item: %d %d", files[i], rc1[0],
				rc1[2]);
		T_CHECK(dime_ks_ecdh(rks, x2[0], rid[i], pubs[0]) == rc1[0] &&
			    memcmp(x1[0], x2[0], 32) == 0,
			"%s: remote ecdh", files[i]);
		dime_wipe(pp, sizeof(pp));
		dime_wipe(x1, sizeof(x1));
		dime_wipe(x2, sizeof(x2));
	}
	/* the backend's own failure is every item's */
	{
		uint8_t pubs[3][33], x[3][32], pp[32], sig[64];
		int rc[3];

		for (size_t j = 0; j < 3; j++)
			T_CHECK(dime_secp_keygen(pp, pubs[j]) == DIME_OK, "keygen");
		be.down = 1;
		T_CHECK(dime_ks_ecdh_batch(rks, rid[0], (const uint8_t(*)[33])pubs, 3, x, rc) ==
				DIME_E_AGAIN &&
			    rc[0] == DIME_E_AGAIN && rc[1] == DIME_E_AGAIN && rc[2] == DIME_E_AGAIN,
			"backend down: items %d %d %d", rc[0], rc[1], rc[2]);
		T_CHECK(dime_ks_sign(rks, sig, rid[0], pp, 32) == DIME_E_AGAIN, "sign when down");
		be.down = 0;
		dime_wipe(pp, sizeof(pp));
	}
	dime_ks_free(rks);
	dime_ks_free(local);
}

int
main(void)
{
	t_init();
	if (dime_ks_new(&ks) != DIME_OK) {
		t_fail("ks_new");
		return t_done("test_keys");
	}
	test_interop_files();
	test_rejects();
	test_prime();
	test_generate();
	test_growth();
	test_remote();
	dime_ks_free(ks);
	return t_done("test_keys");
}

/* base64, hex, CRC-24, armor, and the reader/writer: table-driven known answers, the
 * reference's armor files, every strict prefix, and guard-page reads. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dime/codec.h"
#include "rd.h"
#include "tlib.h"
#include "wr.h"

struct b64_case {
	const char *name, *text;
	int flags;
	const char *want_hex; /* NULL: must be rejected */
};

static const struct b64_case b64_cases[] = {
    {"empty", "", DIME_B64_ANYPAD, ""},
    {"rfc4648 f", "Zg==", DIME_B64_PAD, "66"},
    {"rfc4648 fo", "Zm8=", DIME_B64_PAD, "666f"},
    {"rfc4648 foo", "Zm9v", DIME_B64_PAD, "666f6f"},
    {"rfc4648 foob nopad", "Zm9vYg", DIME_B64_NOPAD, "666f6f62"},
    {"rfc4648 fooba any", "Zm9vYmE", DIME_B64_ANYPAD, "666f6f6261"},
    {"pad required", "Zg", DIME_B64_PAD, NULL},
    {"pad forbidden", "Zg==", DIME_B64_NOPAD, NULL},
    {"non-canonical bits", "Zh==", DIME_B64_PAD, NULL},
    {"non-canonical nopad", "Zh", DIME_B64_NOPAD, NULL},
    {"whitespace", "Zm9v Yg", DIME_B64_ANYPAD, NULL},
    {"bad char", "Zm9v*g==", DIME_B64_ANYPAD, NULL},
    {"lone char", "Zm9vY", DIME_B64_ANYPAD, NULL},
    {"too much pad", "Zg===", DIME_B64_ANYPAD, NULL},
    {"urlsafe alphabet", "-_8=", DIME_B64_ANYPAD, NULL},
};

static void
test_b64(void)
{
	for (size_t i = 0; i < sizeof(b64_cases) / sizeof(b64_cases[0]); i++) {
		const struct b64_case *c = &b64_cases[i];
		uint8_t out[64];
		size_t n = 99;
		int rc = dime_b64_decode(out, sizeof(out), &n, c->text, strlen(c->text), c->flags);

		if (c->want_hex == NULL) {
			T_CHECK(rc != DIME_OK, "b64 %s: got ok, want reject", c->name);
			T_CHECK(n == 0, "b64 %s: out_len %zu after failure", c->name, n);
			continue;
		}
		T_CHECK(rc == DIME_OK, "b64 %s: got %d, want ok", c->name, rc);
		T_CHECK(strcmp(t_hex(out, n), c->want_hex) == 0, "b64 %s: got %s, want %s", c->name,
			t_hex(out, n), c->want_hex);
	}
	/* Round trips at every length, both forms; exact-size buffers. */
	for (size_t len = 0; len < 70; len++) {
		uint8_t in[70], back[70];
		char text[100];
		size_t tl, bl;

		for (size_t k = 0; k < len; k++)
			in[k] = (uint8_t)(k * 37 + len);
		for (int f = DIME_B64_PAD; f <= DIME_B64_NOPAD; f++) {
			T_CHECK(dime_b64_encode(text, dime_b64_encoded_len(len, f) + 1, &tl, in,
						len, f) == DIME_OK,
				"encode len %zu", len);
			T_CHECK(tl == dime_b64_encoded_len(len, f), "encoded_len %zu", len);
			T_CHECK(dime_b64_decode(back, len, &bl, text, tl, f) == DIME_OK &&
				    bl == len && memcmp(back, in, len) == 0,
				"round trip len %zu flags %d", len, f);
			if (len > 0)
				T_CHECK(dime_b64_decode(back, len - 1, &bl, text, tl, f) ==
					    DIME_E_NOSPACE,
					"nospace len %zu", len);
		}
		T_CHECK(dime_b64_encode(text, dime_b64_encoded_len(len, DIME_B64_PAD), &tl, in, len,
					DIME_B64_PAD) == DIME_E_NOSPACE,
			"encode nospace len %zu", len);
	}
}

static void
test_hex_crc(void)
{
	uint8_t b[4];
	size_t n;

	T_CHECK(dime_hex_decode(b, sizeof(b), &n, "00ff7A", 6) == DIME_OK && n == 3 && b[2] == 0x7a,
		"hex decode");
	T_CHECK(dime_hex_decode(b, sizeof(b), &n, "0g", 2) == DIME_E_MALFORMED, "hex bad char");
	T_CHECK(dime_hex_decode(b, sizeof(b), &n, "012", 3) == DIME_E_MALFORMED, "hex odd");
	/* RFC 4880: CRC-24 of the empty string is the initial value. */
	T_CHECK(dime_crc24(NULL, 0) == 0xB704CE, "crc24 empty: got %06x", dime_crc24(NULL, 0));
	T_CHECK(dime_crc24((const uint8_t *)"123456789", 9) == 0x21CF02,
		"crc24 check value: got %06x, want 21cf02",
		dime_crc24((const uint8_t *)"123456789", 9));
}

static const char *armor_files[] = {
    "org-alpha.signet.pem", "user-bob.signet.pem",    "user-alice.ssr.pem",
    "org-alpha.keys.pem",   "user-carol-v2.keys.pem", "org-alpha.pok.ed25519.pem",
};

static void
test_armor_files(void)
{
	for (size_t i = 0; i < sizeof(armor_files) / sizeof(armor_files[0]); i++) {
		size_t len, out_len, consumed, elen;
		uint8_t *pem = t_read(armor_files[i], &len);
		uint8_t bin[8192];
		char label[DIME_ARMOR_LABEL_MAX], again[16384];
		const uint8_t *g = t_at_page_end(0, pem, len);
		int rc = dime_armor_decode(label, bin, sizeof(bin), &out_len, &consumed, g, len);

		T_CHECK(rc == DIME_OK, "%s: decode got %d", armor_files[i], rc);
		T_CHECK(consumed == len, "%s: consumed %zu of %zu", armor_files[i], consumed, len);
		/* Our writer emits the reference's exact bytes. */
		rc = dime_armor_encode(again, sizeof(again), &elen, label, bin, out_len,
				       DIME_ARMOR_CRC);
		T_CHECK(rc == DIME_OK && elen == len && memcmp(again, pem, len) == 0,
			"%s: re-armor differs", armor_files[i]);
		T_CHECK(elen == dime_armor_encoded_len(label, out_len, DIME_ARMOR_CRC),
			"%s: encoded_len", armor_files[i]);
		/* Every strict prefix fails cleanly, reading only what it was given. */
		for (size_t k = 0; k < len; k++) {
			g = t_at_page_end(0, pem, k);
			rc = dime_armor_decode(label, bin, sizeof(bin), &out_len, &consumed, g, k);
			/* Cutting only the final LF leaves a complete block. */
			if (k == len - 1) {
				T_CHECK(rc == DIME_OK, "%s: without final LF got %d",
					armor_files[i], rc);
				continue;
			}
			T_CHECK(rc != DIME_OK && out_len == 0 && consumed == 0,
				"%s: prefix %zu accepted", armor_files[i], k);
		}
		free(pem);
	}
}

static void
test_armor_variants(void)
{
	static const uint8_t data[] =
	    "dime armor test payload, long enough to wrap over a line or two of base64";
	char pem[1024], alt[1024], label[DIME_ARMOR_LABEL_MAX];
	uint8_t out[256];
	size_t len, out_len, consumed;

	T_CHECK(dime_armor_encode(pem, sizeof(pem), &len, "USER SIGNET", data, sizeof(data),
				  DIME_ARMOR_CRC) == DIME_OK,
		"encode");
	/* Without the CRC line: accepted. */
	T_CHECK(dime_armor_encode(alt, sizeof(alt), &len, "USER SIGNET", data, sizeof(data), 0) ==
			DIME_OK &&
		    dime_armor_decode(label, out, sizeof(out), &out_len, &consumed,
				      (const uint8_t *)alt, len) == DIME_OK &&
		    out_len == sizeof(data),
		"armor without CRC rejected");
	/* Unpadded, CRLF line ends: accepted. */
	{
		char crlf[2048];
		size_t o = 0;

		T_CHECK(dime_armor_encode(alt, sizeof(alt), &len, "ENCRYPTED MESSAGE", data,
					  sizeof(data), DIME_ARMOR_NOPAD) == DIME_OK,
			"encode nopad");
		for (size_t i = 0; i < len; i++) {
			if (alt[i] == '\n')
				crlf[o++] = '\r';
			crlf[o++] = alt[i];
		}
		T_CHECK(dime_armor_decode(label, out, sizeof(out), &out_len, &consumed,
					  (const uint8_t *)crlf, o) == DIME_OK &&
			    strcmp(label, "ENCRYPTED MESSAGE") == 0 && out_len == sizeof(data),
			"CRLF unpadded armor rejected");
	}
	/* A wrong CRC: DIME_E_BADSIG. */
	{
		char *eq;

		T_CHECK(dime_armor_encode(alt, sizeof(alt), &len, "USER SIGNET", data, sizeof(data),
					  DIME_ARMOR_CRC) == DIME_OK,
			"encode");
		eq = strstr(alt, "\n=");
		eq[2] = eq[2] == 'A' ? 'B' : 'A';
		T_CHECK(dime_armor_decode(label, out, sizeof(out), &out_len, &consumed,
					  (const uint8_t *)alt, len) == DIME_E_BADSIG,
			"bad CRC accepted");
	}
	/* Mismatched END label. */
	{
		const char *bad = "-----BEGIN USER SIGNET-----\nZm9v\n-----END USER KEY-----\n";

		T_CHECK(dime_armor_decode(label, out, sizeof(out), &out_len, &consumed,
					  (const uint8_t *)bad, strlen(bad)) == DIME_E_MALFORMED,
			"END label mismatch accepted");
	}
	T_CHECK(dime_armor_detect((const uint8_t *)"\n  -----BEGIN X-----", 19), "detect");
	T_CHECK(!dime_armor_detect((const uint8_t *)"\x06\xf0", 2), "detect binary");
}

static void
test_rd_wr(void)
{
	static const uint8_t in[] = {0x06, 0xf0, 0x00, 0x01, 0x02, 0xaa, 0xbb, 0xcc, 0xdd};
	struct dime_rd r, sub;
	struct dime_wr w;
	uint8_t buf[16];

	dime_rd_init(&r, in, sizeof(in));
	T_CHECK(dime_rd_be16(&r) == 0x06f0, "be16");
	T_CHECK(dime_rd_be24(&r) == 0x000102, "be24");
	dime_rd_sub(&r, &sub, 2);
	T_CHECK(dime_rd_u8(&sub) == 0xaa && dime_rd_u8(&sub) == 0xbb &&
		    dime_rd_finish(&sub) == DIME_OK,
		"sub-reader");
	T_CHECK(dime_rd_finish(&r) == DIME_E_TRAILING, "trailing");
	dime_rd_init(&r, in, sizeof(in));
	T_CHECK(dime_rd_be32(&r) == 0x06f00001u, "be32");
	(void)dime_rd_take(&r, 100);
	T_CHECK(r.err == DIME_E_TRUNCATED && dime_rd_u8(&r) == 0, "sticky truncation");
	T_CHECK(dime_rd_finish(&r) == DIME_E_TRUNCATED, "first error wins");

	dime_wr_init(&w, NULL, 0);
	dime_wr_be16(&w, 1789);
	dime_wr_be24(&w, 5);
	T_CHECK(w.err == DIME_OK && w.off == 5, "counting writer");
	dime_wr_init(&w, buf, 4);
	dime_wr_be24(&w, 0x123456);
	dime_wr_be16(&w, 1);
	T_CHECK(w.err == DIME_E_NOSPACE && w.off == 3, "writer nospace");
	dime_wr_init(&w, buf, sizeof(buf));
	dime_wr_be24(&w, 0x1000000u);
	T_CHECK(w.err == DIME_E_LIMIT, "be24 overflow");
}

int
main(void)
{
	t_init();
	test_b64();
	test_hex_crc();
	test_armor_files();
	test_armor_variants();
	test_rd_wr();
	return t_done("test_codec");
}

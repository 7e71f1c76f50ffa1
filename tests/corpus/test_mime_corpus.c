/* Real mail through dime_mime_split / dime_mime_join: every raw message (*.txt) of the
 * SpamAssassin public corpus (tests/corpus/fetch-spamassassin.sh) must come back byte for
 * byte. Reports message, byte and chunk counts. Each file's MD5 is checked against the hash in
 * its name, so we know the bytes are the dataset's originals. Then each message goes the whole
 * way as D/MIME: wrapped by alice@alpha.test for bob@beta.test, origin-signed, accepted by the
 * destination and opened by the recipient, whose copy must equal the original byte for byte.
 * Usage: test_mime_corpus <dir with easy-ham-1/, spam-2/, ...>. Exit 0 pass, 1 fail, 77 skip. */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <openssl/evp.h>

#include "dime/crypto.h"
#include "dime/keys.h"
#include "dime/mime.h"
#include "dime/msg.h"
#include "dime/signet.h"

struct corpus_stats {
	size_t messages, bytes, display, attach, c33_bytes, c34_bytes, md5_ok, ref_readable;
	size_t no_parts, failures, part_bytes, dmime_ok, dmime_bytes;
};

/* Two organisations and their users, made fresh for the run. */
static struct {
	struct dime_ks *ks;
	uint32_t k[4]; /* alice, alpha, beta, bob */
	struct dime_signet *s[4];
	struct dime_msg_parties p;
} corpus_world;

static void
corpus_world_init(void)
{
	struct dime_signet *ssr = NULL;
	static const enum dime_key_kind kinds[4] = {DIME_KEY_USER, DIME_KEY_ORG, DIME_KEY_ORG,
						    DIME_KEY_USER};

	if (dime_global_init() != DIME_OK || dime_ks_new(&corpus_world.ks) != DIME_OK)
		abort();
	for (int i = 0; i < 4; i++)
		if (dime_ks_generate(corpus_world.ks, &corpus_world.k[i], kinds[i]) != DIME_OK)
			abort();
	if (dime_signet_org_create(&corpus_world.s[1], corpus_world.ks, corpus_world.k[1], NULL, 0,
				   NULL, 0, "alpha.test") != DIME_OK ||
	    dime_signet_org_create(&corpus_world.s[2], corpus_world.ks, corpus_world.k[2], NULL, 0,
				   NULL, 0, "beta.test") != DIME_OK)
		abort();
	for (int u = 0; u < 4; u += 3) {
		int org = u == 0 ? 1 : 2;

		if (dime_signet_ssr_create(&ssr, corpus_world.ks, corpus_world.k[u],
					   DIME_KS_NONE) != DIME_OK ||
		    dime_signet_ssr_sign(&corpus_world.s[u], ssr, NULL, corpus_world.s[org],
					 corpus_world.ks, corpus_world.k[org], NULL, 0,
					 u == 0 ? "alice@alpha.test" : "bob@beta.test") != DIME_OK)
			abort();
		dime_signet_free(ssr);
	}
	corpus_world.p.author = corpus_world.s[0];
	corpus_world.p.origin = corpus_world.s[1];
	corpus_world.p.destination = corpus_world.s[2];
	corpus_world.p.recipient = corpus_world.s[3];
}

static void
corpus_world_fini(void)
{
	for (int i = 0; i < 4; i++)
		dime_signet_free(corpus_world.s[i]);
	dime_ks_free(corpus_world.ks);
}

/* The product path: dime_msg_wrap_mail -> origin-sign -> accept -> open -> dime_msg_opened_mail.
 * Returns 0 when the recipient's copy is the original. */
static int
corpus_dmime(struct corpus_stats *st, const char *path, const uint8_t *msg, size_t len)
{
	struct dime_msg_envelope env;
	struct dime_msg_opened o;
	uint8_t *w = NULL, *sgn = NULL, *back = NULL;
	size_t wl = 0, sl = 0, got = 0;
	const char *why = "";
	int rc;

	memset(&o, 0, sizeof(o));
	rc = dime_msg_wrap_mail(corpus_world.ks, &w, &wl, &why, &corpus_world.p, corpus_world.k[0],
				msg, len, NULL);
	if (rc == DIME_OK)
		rc = dime_msg_origin_sign(corpus_world.ks, &sgn, &sl, &env, &why, w, wl,
					  corpus_world.k[1], DIME_KS_NONE, &corpus_world.p);
	if (rc == DIME_OK)
		rc = dime_msg_accept(corpus_world.ks, &env, &why, sgn, sl, corpus_world.k[2],
				     &corpus_world.p);
	if (rc == DIME_OK)
		rc = dime_msg_open(corpus_world.ks, &o, &why, sgn, sl, DIME_ACTOR_RECIPIENT,
				   corpus_world.k[3], &corpus_world.p);
	if (rc == DIME_OK) {
		rc = dime_msg_opened_mail(&back, &got, &o);
		why = "rebuilding the mail";
	}
	if (rc != DIME_OK || got != len || memcmp(back, msg, len) != 0) {
		fprintf(stderr, "FAIL: %s: D/MIME round trip: rc %d (%s)\n", path, rc, why);
		rc = 1;
	} else {
		st->dmime_ok++;
		st->dmime_bytes += sl;
		rc = 0;
	}
	dime_msg_opened_free(&o);
	dime_msg_free(w, wl);
	dime_msg_free(sgn, sl);
	free(back);
	return rc;
}

static uint8_t *
corpus_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	*len = 0;
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n)
		*len = (size_t)n;
	else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* Names are NNNNN.<md5 of the file>.txt. */
static int
corpus_md5_ok(const char *name, const uint8_t *msg, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	const char *dot = strchr(name, '.');
	char hex[2 * EVP_MAX_MD_SIZE + 1];

	if (dot == NULL || EVP_Digest(msg, len, md, &md_len, EVP_md5(), NULL) != 1 || md_len != 16)
		return 0;
	for (unsigned i = 0; i < md_len; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return strncmp(dot + 1, hex, 32) == 0;
}

/* The reference's chunk 33 parser requires these four lines. */
static int
corpus_ref_readable(struct dime_view c)
{
	static const char *need[] = {"Date: ", "To: ", "From: ", "Subject: "};
	int have = 0;

	for (size_t p = 0; p < c.len;) {
		const uint8_t *e = memchr(c.p + p, '\n', c.len - p);
		size_t ll = e == NULL ? c.len - p : (size_t)(e - (c.p + p)) + 1;

		for (int k = 0; k < 4; k++)
			if (ll >= strlen(need[k]) && memcmp(c.p + p, need[k], strlen(need[k])) == 0)
				have |= 1 << k;
		p += ll;
	}
	return have == 15;
}

static void
corpus_one(struct corpus_stats *st, const char *path, const char *name)
{
	size_t len, buf_len, n_parts, got;
	uint8_t *msg = corpus_read(path, &len), *buf = NULL, *back = NULL;
	struct dime_mime_part *parts = NULL;
	struct dime_mime_content c;
	int rc;

	if (msg == NULL) {
		fprintf(stderr, "FAIL: cannot read %s\n", path);
		st->failures++;
		return;
	}
	st->messages++;
	st->bytes += len;
	st->md5_ok += (size_t)corpus_md5_ok(name, msg, len);
	rc = dime_mime_split_size(&buf_len, &n_parts, msg, len);
	if (rc == DIME_OK) {
		buf = malloc(buf_len + 1);
		parts = malloc(n_parts * sizeof(*parts) + 1);
		back = malloc(len + 1);
		if (buf == NULL || parts == NULL || back == NULL)
			abort();
		rc = dime_mime_split(&c, buf, buf_len, parts, n_parts, msg, len);
	}
	if (rc == DIME_OK)
		rc = dime_mime_join(back, len, &got, c.common, c.headers, c.parts, c.n_parts);
	if (rc != DIME_OK || got != len || memcmp(back, msg, len) != 0) {
		fprintf(stderr, "FAIL: %s: rc %d, round trip differs\n", path, rc);
		st->failures++;
	} else {
		st->display += c.n_display;
		st->attach += c.n_attach;
		st->c33_bytes += c.common.len;
		st->c34_bytes += c.headers.len;
		st->ref_readable += (size_t)corpus_ref_readable(c.common);
		st->no_parts += c.n_parts == 0;
		for (size_t i = 0; i < c.n_parts; i++)
			st->part_bytes += c.parts[i].data.len;
		if (corpus_dmime(st, path, msg, len) != 0)
			st->failures++;
	}
	free(msg);
	free(buf);
	free(parts);
	free(back);
}

static int
corpus_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every *.txt under dir/<group>/, in name order. */
static void
corpus_dir(struct corpus_stats *st, const char *dir, int depth)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap == 0 ? 1024 : cap * 2;
			if ((names = realloc(names, cap * sizeof(*names))) == NULL)
				abort();
		}
		if ((names[n++] = strdup(e->d_name)) == NULL)
			abort();
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), corpus_cmp);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		struct stat sb;
		size_t nl = strlen(names[i]);

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) && depth == 0)
			corpus_dir(st, path, 1);
		else if (depth == 1 && nl > 4 && strcmp(names[i] + nl - 4, ".txt") == 0)
			corpus_one(st, path, names[i]);
		free(names[i]);
	}
	free(names);
}

int
main(int argc, char **argv)
{
	struct corpus_stats st;

	memset(&st, 0, sizeof(st));
	if (argc != 2) {
		fprintf(stderr, "usage: %s <corpus data dir>\n", argv[0]);
		return 1;
	}
	corpus_world_init();
	corpus_dir(&st, argv[1], 0);
	corpus_world_fini();
	if (st.messages == 0) {
		fprintf(stderr,
			"skip: no *.txt messages under %s (run "
			"tests/corpus/fetch-spamassassin.sh)\n",
			argv[1]);
		return 77;
	}
	printf("spamassassin corpus: %zu messages, %zu bytes, %zu byte-identical round trips, "
	       "%zu failures\n",
	       st.messages, st.bytes, st.messages - st.failures, st.failures);
	printf("  D/MIME wrap -> origin-sign -> accept -> open, byte-identical: %zu of %zu "
	       "(%zu bytes of D/MIME)\n",
	       st.dmime_ok, st.messages, st.dmime_bytes);
	printf("  raw bytes verified by the MD5 in the file name: %zu of %zu\n", st.md5_ok,
	       st.messages);
	printf("  display chunks %zu, attachment chunks %zu, messages with no part %zu\n",
	       st.display, st.attach, st.no_parts);
	printf("  chunk 33 %zu bytes, chunk 34 %zu bytes (%.1f%% of the input)\n", st.c33_bytes,
	       st.c34_bytes, st.bytes > 0 ? 100.0 * (double)st.c34_bytes / (double)st.bytes : 0.0);
	printf("  parts %zu bytes; encoding overhead (33 + 34 + parts - input) %zd bytes\n",
	       st.part_bytes,
	       (ssize_t)(st.c33_bytes + st.c34_bytes + st.part_bytes) - (ssize_t)st.bytes);
	printf("  chunk 33 has Date, To, From and Subject (reference-readable): %zu of %zu\n",
	       st.ref_readable, st.messages);
	return st.failures == 0 ? 0 : 1;
}

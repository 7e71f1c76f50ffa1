/* Batch sources: directory ordering and skipping, Maildir naming, the mboxrd splitting table,
 * messages longer than the read buffer, oversize items, pipes, and flat memory over a 200 MB
 * mbox, each in a fresh temporary directory. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dime/source.h"
#include "tlib.h"

#if defined(__SANITIZE_ADDRESS__)
/* ASan keeps freed blocks in a 256 MB quarantine, which the RSS check would count. */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "quarantine_size_mb=16";
}
#endif

static void
t_put(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "FAIL: cannot create %s\n", path);
		exit(1);
	}
}

static char *
t_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b = malloc(4096);
	size_t n = 0;

	if (f == NULL || b == NULL) {
		free(b);
		if (f != NULL)
			fclose(f);
		return NULL;
	}
	n = fread(b, 1, 4095, f);
	b[n] = 0;
	fclose(f);
	*len = n;
	return b;
}

/* --- directory of files --- */

static void
t_dir_source(void)
{
	static const char *want[] = {"10", "2", "A", "a", "b", "link", "x:y z"};
	const size_t nw = sizeof(want) / sizeof(want[0]);
	struct dime_source *s = NULL;
	struct dime_source_item it;
	const char *why = NULL;
	size_t n = 0;
	int rc;

	mkdir(t_path("d"), 0700);
	for (size_t i = 0; i < nw; i++)
		if (strcmp(want[i], "link") != 0) {
			char name[64];

			snprintf(name, sizeof(name), "d/%s", want[i]);
			t_put(t_path(name), want[i], strlen(want[i]));
		}
	t_put(t_path("d/.hidden"), "h", 1);
	mkdir(t_path("d/sub"), 0700);
	t_put(t_path("d/sub/inner"), "i", 1);
	T_CHECK(symlink("a", t_path("d/link")) == 0, "symlink");
	T_CHECK(symlink("nowhere", t_path("d/dangling")) == 0, "symlink");
	T_CHECK(symlink("sub", t_path("d/dirlink")) == 0, "symlink");
	T_CHECK(mkfifo(t_path("d/fifo"), 0600) == 0, "mkfifo");

	rc = dime_source_open(&s, t_path("d"), 0, &why);
	if (rc != 0) {
		t_fail("dir: open: got %d (%s)", rc, why ? why : "");
		return;
	}
	T_CHECK(dime_source_kind(s) == DIME_SRC_DIR, "dir: kind %d", dime_source_kind(s));
	T_CHECK(dime_source_count_hint(s) == nw, "dir: count hint got %zu, want %zu",
		dime_source_count_hint(s), nw);
	while ((rc = dime_source_next(s, &it, &why)) == 1) {
		if (n >= nw) {
			t_fail("dir: extra item %s", it.name);
		} else {
			T_CHECK(strcmp(it.name, want[n]) == 0, "dir: item %zu: got '%s', want '%s'",
				n, it.name, want[n]);
			{
				char wantpath[PATH_MAX + 300];

				/* a link inside the input is named by its target */
				snprintf(wantpath, sizeof(wantpath), "%s/d/%s", t_dir,
					 strcmp(want[n], "link") == 0 ? "a" : want[n]);
				T_CHECK(it.path != NULL && strcmp(it.path, wantpath) == 0,
					"dir: item %zu path got '%s', want '%s'", n,
					it.path ? it.path : "(null)", wantpath);
			}
			T_CHECK(it.data == NULL && it.len == 0 && it.err == 0 && it.why == NULL,
				"dir: item %zu carries data or an error", n);
			T_CHECK(it.no_symlinks == 1, "dir: item %zu: no_symlinks not set", n);
		}
		n++;
		dime_source_item_free(&it);
		T_CHECK(it.path == NULL && it.name[0] == 0, "item_free does not zero the item");
	}
	T_CHECK(rc == 0 && n == nw, "dir: got %zu items (rc %d), want %zu", n, rc, nw);
	T_CHECK(dime_source_next(s, &it, &why) == 0, "dir: next after the end is not 0");
	dime_source_close(s);

	/* An empty directory and a directory with only cur/ (not a Maildir: cur/ is skipped). */
	mkdir(t_path("empty"), 0700);
	mkdir(t_path("onlycur"), 0700);
	mkdir(t_path("onlycur/cur"), 0700);
	t_put(t_path("onlycur/cur/m"), "m", 1);
	for (int k = 0; k < 2; k++) {
		rc = dime_source_open(&s, t_path(k == 0 ? "empty" : "onlycur"), 0, &why);
		if (rc != 0) {
			t_fail("dir %d: open: %d", k, rc);
			continue;
		}
		T_CHECK(dime_source_kind(s) == DIME_SRC_DIR, "dir %d: kind", k);
		T_CHECK(dime_source_next(s, &it, &why) == 0, "dir %d: not empty", k);
		T_CHECK(dime_source_count_hint(s) == 0, "dir %d: hint", k);
		dime_source_close(s);
	}
	/* Missing input. */
	s = (struct dime_source *)&s;
	rc = dime_source_open(&s, t_path("no-such"), 0, &why);
	T_CHECK(rc == -ENOENT && s == NULL && why != NULL, "missing input: got %d", rc);
}

/* --- symbolic links: those leaving the input are refused unless followed --- */

static void
t_symlinks(void)
{
	static const struct {
		const char *name;
		int want_err;	  /* default: 0 or -EXDEV */
		const char *want; /* default: the path under t_dir it is read from */
	} cases[] = {
	    {"abs-in", 0, "ln/f"}, /* absolute link to a file inside */
	    {"f", 0, "ln/f"},
	    {"rel-in", 0, "ln/sub/g"}, /* relative link into a subdirectory */
	    {"rel-out", -EXDEV, NULL}, /* ../secret */
	    {"shadow", -EXDEV, NULL},  /* absolute link outside */
	    {"up-in", 0, "ln/f"},      /* ../ln/f: leaves and comes back */
	};
	const size_t nc = sizeof(cases) / sizeof(cases[0]);
	char target[PATH_MAX + 64], root[PATH_MAX + 64];
	struct dime_source *s = NULL;
	struct dime_source_item it;
	const char *why = NULL;
	int rc;

	mkdir(t_path("ln"), 0700);
	mkdir(t_path("ln/sub"), 0700);
	t_put(t_path("ln/f"), "f", 1);
	t_put(t_path("ln/sub/g"), "g", 1);
	t_put(t_path("secret"), "s", 1);
	snprintf(target, sizeof(target), "%s", t_path("ln/f"));
	T_CHECK(symlink(target, t_path("ln/abs-in")) == 0, "symlink");
	T_CHECK(symlink("sub/g", t_path("ln/rel-in")) == 0, "symlink");
	T_CHECK(symlink("../secret", t_path("ln/rel-out")) == 0, "symlink");
	snprintf(target, sizeof(target), "%s", t_path("secret"));
	T_CHECK(symlink(target, t_path("ln/shadow")) == 0, "symlink");
	T_CHECK(symlink("../ln/f", t_path("ln/up-in")) == 0, "symlink");
	T_CHECK(symlink("sub", t_path("ln/dirlink")) == 0, "symlink"); /* not a file: skipped */
	snprintf(root, sizeof(root), "%s", t_path("ln"));
	for (int follow = 0; follow < 2; follow++) {
		size_t n = 0;

		rc = dime_source_open(&s, root, follow ? DIME_SOURCE_FOLLOW_SYMLINKS : 0, &why);
		if (rc != 0) {
			t_fail("links: open: %d (%s)", rc, why ? why : "");
			return;
		}
		while ((rc = dime_source_next(s, &it, &why)) == 1) {
			char want[PATH_MAX + 300];
			int werr = follow ? 0 : cases[n].want_err;

			if (n >= nc) {
				t_fail("links: extra item %s", it.name);
				dime_source_item_free(&it);
				break;
			}
			if (follow)
				snprintf(want, sizeof(want), "%s/ln/%s", t_dir, cases[n].name);
			else if (cases[n].want != NULL)
				snprintf(want, sizeof(want), "%s/%s", t_dir, cases[n].want);
			T_CHECK(strcmp(it.name, cases[n].name) == 0,
				"links: item %zu got '%s', want '%s'", n, it.name, cases[n].name);
			T_CHECK(it.err == werr, "links follow=%d %s: err got %d, want %d", follow,
				it.name, it.err, werr);
			if (werr != 0)
				T_CHECK(it.path == NULL && it.why != NULL &&
					    strstr(it.why, "outside"),
					"links %s: a refused link carries a path or no reason",
					it.name);
			else
				T_CHECK(
				    it.path != NULL && strcmp(it.path, want) == 0 &&
					it.no_symlinks == !follow,
				    "links follow=%d %s: path got '%s' (no_symlinks %d), want '%s'",
				    follow, it.name, it.path ? it.path : "(null)", it.no_symlinks,
				    want);
			n++;
			dime_source_item_free(&it);
		}
		T_CHECK(rc == 0 && n == nc, "links follow=%d: %zu items (rc %d), want %zu", follow,
			n, rc, nc);
		/* --out must not be --in or inside it */
		T_CHECK(dime_source_contains(s, root) == 1, "contains: the root itself");
		T_CHECK(dime_source_contains(s, t_path("ln/sub")) == 1, "contains: a subdirectory");
		T_CHECK(dime_source_contains(s, t_path("ln/dirlink")) == 1,
			"contains: a link inside");
		T_CHECK(dime_source_contains(s, t_path("secret")) == 0, "contains: outside");
		T_CHECK(dime_source_contains(s, t_path("lnx")) == 0, "contains: missing sibling");
		dime_source_close(s);
	}
	/* a Maildir whose cur/ leads outside the input */
	mkdir(t_path("mdl"), 0700);
	mkdir(t_path("mdl/new"), 0700);
	mkdir(t_path("elsewhere"), 0700);
	t_put(t_path("elsewhere/m"), "m", 1);
	snprintf(target, sizeof(target), "%s", t_path("elsewhere"));
	T_CHECK(symlink(target, t_path("mdl/cur")) == 0, "symlink");
	rc = dime_source_open(&s, t_path("mdl"), 0, &why);
	T_CHECK(rc == -EXDEV && s == NULL && why != NULL && strstr(why, "outside"),
		"maildir cur/ outside: got %d (%s), want -EXDEV", rc, why ? why : "");
	dime_source_close(s);
	rc = dime_source_open(&s, t_path("mdl"), DIME_SOURCE_FOLLOW_SYMLINKS, &why);
	T_CHECK(rc == 0 && dime_source_count_hint(s) == 1, "maildir cur/ followed: got %d", rc);
	dime_source_close(s);
}

/* --- Maildir --- */

static int
t_safe_name(const char *n)
{
	if (n[0] == 0 || n[0] == '.' || strlen(n) > 255)
		return 0;
	for (; *n != 0; n++)
		if (!((*n >= 'A' && *n <= 'Z') || (*n >= 'a' && *n <= 'z') ||
		      (*n >= '0' && *n <= '9') || strchr("._,+=-~", *n) != NULL))
			return 0;
	return 1;
}

static void
t_maildir(void)
{
	/* file (relative to the Maildir; its content is the same string) -> output name */
	static const struct {
		const char *file, *want;
	} tab[] = {
	    {"cur/1700000001.M1.host:2,S", "1700000001.M1.host_2,S"},
	    {"new/1700000002.M2.host", "1700000002.M2.host"},
	    {"cur/1700000003.x:2,", "1700000003.x_2,"},
	    {"cur/same", "cur_same"},
	    {"new/same", "new_same"},
	    {"new/bad name\twith:colon", "bad_name_with_colon"},
	    {"cur/a:2,S", "cur_a_2,S"},
	    {"cur/a_2,S", "cur_a_2,S~1"},
	    {"new/cur_x", "cur_x"},
	};
	const size_t nt = sizeof(tab) / sizeof(tab[0]);
	char *names[16];
	int seen[16] = {0};
	struct dime_source *s = NULL;
	struct dime_source_item it;
	const char *why = NULL, *prev_file = "";
	size_t n = 0;
	int rc;

	mkdir(t_path("md"), 0700);
	mkdir(t_path("md/cur"), 0700);
	mkdir(t_path("md/new"), 0700);
	mkdir(t_path("md/tmp"), 0700);
	for (size_t i = 0; i < nt; i++) {
		char rel[300];

		snprintf(rel, sizeof(rel), "md/%s", tab[i].file);
		t_put(t_path(rel), tab[i].file, strlen(tab[i].file));
	}
	t_put(t_path("md/tmp/1699999999.being.delivered"), "tmp", 3);
	t_put(t_path("md/cur/.dotfile"), "dot", 3);
	mkdir(t_path("md/new/subdir"), 0700);

	rc = dime_source_open(&s, t_path("md"), 0, &why);
	if (rc != 0) {
		t_fail("maildir: open: %d (%s)", rc, why ? why : "");
		return;
	}
	T_CHECK(dime_source_kind(s) == DIME_SRC_MAILDIR, "maildir: kind %d", dime_source_kind(s));
	T_CHECK(dime_source_count_hint(s) == nt, "maildir: hint %zu, want %zu",
		dime_source_count_hint(s), nt);
	while ((rc = dime_source_next(s, &it, &why)) == 1) {
		size_t len = 0, i;
		char *content = it.path ? t_slurp(it.path, &len) : NULL;
		const char *base;

		if (content == NULL) {
			t_fail("maildir: cannot read item %s (%s)", it.name,
			       it.path ? it.path : "");
			dime_source_item_free(&it);
			continue;
		}
		for (i = 0; i < nt && strcmp(tab[i].file, content) != 0; i++)
			;
		if (i == nt) {
			t_fail("maildir: unexpected item %s -> '%s'", it.name, content);
		} else {
			T_CHECK(strcmp(it.name, tab[i].want) == 0,
				"maildir: %s: name got '%s', want '%s'", tab[i].file, it.name,
				tab[i].want);
			seen[i]++;
		}
		T_CHECK(t_safe_name(it.name), "maildir: name '%s' is not filesystem-safe", it.name);
		/* Sorted by file name (then cur before new). */
		base = strchr(content, '/') + 1;
		T_CHECK(strcmp(prev_file, base) <= 0, "maildir: order: '%s' after '%s'", base,
			prev_file);
		if (n < 16)
			names[n] = strdup(it.name);
		prev_file = i < nt ? strchr(tab[i].file, '/') + 1 : "";
		n++;
		free(content);
		dime_source_item_free(&it);
	}
	T_CHECK(rc == 0 && n == nt, "maildir: got %zu items (rc %d), want %zu", n, rc, nt);
	for (size_t i = 0; i < nt; i++)
		T_CHECK(seen[i] == 1, "maildir: %s seen %d times", tab[i].file, seen[i]);
	for (size_t i = 0; i < n && i < 16; i++)
		for (size_t j = i + 1; j < n && j < 16; j++)
			T_CHECK(strcmp(names[i], names[j]) != 0, "maildir: name '%s' twice",
				names[i]);
	for (size_t i = 0; i < n && i < 16; i++)
		free(names[i]);
	dime_source_close(s);

	/* tmp/ is optional. */
	t_rm_rf(t_path("md/tmp"));
	rc = dime_source_open(&s, t_path("md"), 0, &why);
	T_CHECK(rc == 0 && dime_source_kind(s) == DIME_SRC_MAILDIR, "maildir without tmp/: rc %d",
		rc);
	dime_source_close(s);
}

/* --- mbox table --- */

struct t_mbox_case {
	const char *name;
	const char *in;
	int want_rc; /* open */
	const char *want[6];
	size_t n_want;
};

static const struct t_mbox_case t_mbox_cases[] = {
    {"empty file", "", 0, {NULL}, 0},
    {"one message",
     "From a@b Mon Jan  1 00:00:00 2024\nSubject: x\n\nbody\n",
     0,
     {"Subject: x\n\nbody\n"},
     1},
    {"one message, trailing blank line", "From a\nS: x\n\nbody\n\n", 0, {"S: x\n\nbody\n"}, 1},
    {"many", "From a\nA\n\nFrom b\nB\n\nFrom c\nC\n", 0, {"A\n", "B\n", "C\n"}, 3},
    {"From in body, no blank line before",
     "From a\nA\nFrom me\nx\n\nFrom b\nB\n",
     0,
     {"A\nFrom me\nx\n", "B\n"},
     2},
    {"From after a blank line separates",
     "From a\nA\n\nFrom x is a separator\nmore\n",
     0,
     {"A\n", "more\n"},
     2},
    {"mboxrd unescape",
     "From a\n>From x\n>>From y\n>>>From z\n> From w\n>Fromage\nFrom\n",
     0,
     {"From x\n>From y\n>>From z\n> From w\n>Fromage\nFrom\n"},
     1},
    {"escaped From after a blank line", "From a\nA\n\n>From b\n", 0, {"A\n\nFrom b\n"}, 1},
    {"CRLF",
     "From a\r\nS: x\r\n\r\nbody\r\n\r\nFrom b\r\nB\r\n\r\n",
     0,
     {"S: x\r\n\r\nbody\r\n", "B\r\n"},
     2},
    {"CRLF unescape", "From a\r\n>From x\r\n", 0, {"From x\r\n"}, 1},
    {"no newline at end of file", "From a\nA\n\nFrom b\nlast", 0, {"A\n", "last"}, 2},
    {"empty message", "From a\n\nFrom b\nB\n", 0, {"", "B\n"}, 2},
    {"only a From_ line", "From a\n", 0, {""}, 1},
    {"From_ line without newline", "From a", 0, {""}, 1},
    {"two blank lines", "From a\nA\n\n\nFrom b\n", 0, {"A\n\n", ""}, 2},
    {"not an mbox", "Subject: x\n\nbody\n", -EINVAL, {NULL}, 0},
    {"shorter than From_", "Fro", -EINVAL, {NULL}, 0},
    {"leading blank line", "\nFrom a\nA\n", -EINVAL, {NULL}, 0},
};

/* Run one mbox through a source; return items in *out (data or NULL for an error item). */
static int
t_mbox_run(const char *file, size_t max, struct dime_source_item *out, size_t cap, size_t *n,
	   const char **why)
{
	struct dime_source *s = NULL;
	struct dime_source_item it;
	int rc;

	*n = 0;
	if ((rc = dime_source_open(&s, file, 0, why)) != 0)
		return rc;
	if (dime_source_kind(s) != DIME_SRC_MBOX)
		t_fail("%s: kind %d, want mbox", file, dime_source_kind(s));
	if (max != 0)
		dime_source_set_max(s, max);
	while ((rc = dime_source_next(s, &it, why)) == 1) {
		if (dime_source_count_hint(s) < *n + 1)
			t_fail("%s: count hint %zu below the %zu items yielded", file,
			       dime_source_count_hint(s), *n + 1);
		if (*n < cap)
			out[*n] = it;
		else
			dime_source_item_free(&it);
		(*n)++;
	}
	if (rc == 0 && dime_source_count_hint(s) != *n)
		t_fail("%s: count hint at the end %zu, want %zu", file, dime_source_count_hint(s),
		       *n);
	if (rc == 0 && dime_source_next(s, &it, why) != 0)
		t_fail("%s: next after the end is not 0", file);
	dime_source_close(s);
	return rc;
}

static void
t_mbox_table(void)
{
	for (size_t c = 0; c < sizeof(t_mbox_cases) / sizeof(t_mbox_cases[0]); c++) {
		const struct t_mbox_case *tc = &t_mbox_cases[c];
		struct dime_source_item items[8];
		const char *why = NULL;
		size_t n = 0;
		int rc;

		t_put(t_path("t.mbox"), tc->in, strlen(tc->in));
		rc = t_mbox_run(t_path("t.mbox"), 0, items, 8, &n, &why);
		if (rc != tc->want_rc) {
			t_fail("mbox %s: rc got %d, want %d (%s)", tc->name, rc, tc->want_rc,
			       why ? why : "");
			continue;
		}
		if (rc != 0) {
			T_CHECK(why != NULL && strstr(why, "not an mbox") != NULL,
				"mbox %s: why got '%s'", tc->name, why ? why : "(null)");
			continue;
		}
		T_CHECK(n == tc->n_want, "mbox %s: got %zu messages, want %zu", tc->name, n,
			tc->n_want);
		for (size_t i = 0; i < n && i < 8; i++) {
			char want_name[32];

			snprintf(want_name, sizeof(want_name), "msg-%06zu", i + 1);
			T_CHECK(strcmp(items[i].name, want_name) == 0, "mbox %s: name '%s'",
				tc->name, items[i].name);
			T_CHECK(items[i].path == NULL && items[i].err == 0,
				"mbox %s: #%zu path/err set", tc->name, i);
			if (i < tc->n_want &&
			    (items[i].data == NULL || items[i].len != strlen(tc->want[i]) ||
			     memcmp(items[i].data, tc->want[i], items[i].len) != 0 ||
			     items[i].data[items[i].len] != 0))
				t_fail("mbox %s: #%zu got '%.*s', want '%s'", tc->name, i,
				       (int)items[i].len,
				       items[i].data ? (const char *)items[i].data : "",
				       tc->want[i]);
			dime_source_item_free(&items[i]);
		}
	}
	unlink(t_path("t.mbox"));
}

/* Messages larger than the 1 MiB buffer, a From_ line and a ">From " line longer than it. */
static void
t_mbox_large(void)
{
	const size_t body = (size_t)3 << 20, longl = (size_t)5 << 19, froml = (size_t)3 << 19;
	size_t cap = froml + body + longl + 1024, len = 0, wlen = 0;
	char *in = malloc(cap), *want = malloc(cap);
	struct dime_source_item items[4];
	const char *why = NULL;
	size_t n = 0;
	int rc;

	if (in == NULL || want == NULL)
		abort();
	memcpy(in, "From ", 5);
	memset(in + 5, 'x', froml);
	len = 5 + froml;
	in[len++] = '\n';
	while (wlen < body) { /* 3 MiB of 80-byte lines, some looking like From_ lines */
		int k = snprintf(want + wlen, cap - wlen,
				 "%s line %08zu abcdefghijklmnopqrstuvwxyz"
				 "0123456789abcdefghijklmnopqrstuvwxyz..\n",
				 wlen % 7 == 0 ? "From" : "Body", wlen);

		wlen += (size_t)k;
	}
	memcpy(in + len, want, wlen);
	len += wlen;
	in[len++] = '>'; /* a ">From " line of 2.5 MiB: unescaped to "From ..." */
	memcpy(in + len, "From ", 5);
	memcpy(want + wlen, "From ", 5);
	len += 5;
	wlen += 5;
	memset(in + len, 'y', longl);
	memset(want + wlen, 'y', longl);
	len += longl;
	wlen += longl;
	in[len++] = '\n';
	want[wlen++] = '\n';
	memcpy(in + len, "\nFrom b\nsmall\n\n", 15);
	len += 15;
	t_put(t_path("large.mbox"), in, len);
	rc = t_mbox_run(t_path("large.mbox"), 0, items, 4, &n, &why);
	T_CHECK(rc == 0 && n == 2, "large mbox: rc %d, %zu messages, want 2", rc, n);
	if (n >= 1)
		T_CHECK(items[0].len == wlen && memcmp(items[0].data, want, wlen) == 0,
			"large mbox: message 1 got %zu bytes, want %zu (or bytes differ)",
			items[0].len, wlen);
	if (n >= 2)
		T_CHECK(items[1].len == 6 && memcmp(items[1].data, "small\n", 6) == 0,
			"large mbox: message 2 got %zu bytes", items[1].len);
	for (size_t i = 0; i < n && i < 4; i++)
		dime_source_item_free(&items[i]);
	unlink(t_path("large.mbox"));
	free(in);
	free(want);
}

/* A message over the maximum is an item with -EFBIG; the source goes on. */
static void
t_mbox_oversize(void)
{
	char in[4096], m100[101], m101[102], m100crlf[101];
	size_t len = 0, n = 0;
	struct dime_source_item items[8];
	const char *why = NULL;
	int rc;

	memset(m100, 'a', 99);
	m100[99] = '\n';
	m100[100] = 0;
	memset(m101, 'b', 100);
	m101[100] = '\n';
	m101[101] = 0;
	memset(m100crlf, 'c', 98);
	memcpy(m100crlf + 98, "\r\n", 3);
	len += (size_t)snprintf(in + len, sizeof(in) - len, "From 1\nsmall\n\n");
	len += (size_t)snprintf(in + len, sizeof(in) - len, "From 2\n");
	for (int i = 0; i < 20; i++)
		len +=
		    (size_t)snprintf(in + len, sizeof(in) - len, "twenty bytes line %d\n", i % 10);
	len += (size_t)snprintf(in + len, sizeof(in) - len, "\nFrom 3\n%s\n", m100);
	len += (size_t)snprintf(in + len, sizeof(in) - len, "From 4\n%s\n", m101);
	len += (size_t)snprintf(in + len, sizeof(in) - len, "From 5\r\n%s\r\n", m100crlf);
	len += (size_t)snprintf(in + len, sizeof(in) - len, "From 6\nend\n");
	t_put(t_path("over.mbox"), in, len);
	rc = t_mbox_run(t_path("over.mbox"), 100, items, 8, &n, &why);
	T_CHECK(rc == 0 && n == 6, "oversize: rc %d (%s), %zu items, want 6", rc, why ? why : "",
		n);
	{
		static const int want_err[6] = {0, -EFBIG, 0, -EFBIG, 0, 0};
		static const size_t want_len[6] = {6, 0, 100, 0, 100, 4};

		for (size_t i = 0; i < n && i < 6; i++) {
			char want_name[32];

			snprintf(want_name, sizeof(want_name), "msg-%06zu", i + 1);
			T_CHECK(items[i].err == want_err[i] && items[i].len == want_len[i] &&
				    strcmp(items[i].name, want_name) == 0,
				"oversize #%zu (%s): err %d len %zu, want err %d len %zu", i,
				items[i].name, items[i].err, items[i].len, want_err[i],
				want_len[i]);
			if (want_err[i] != 0)
				T_CHECK(items[i].data == NULL && items[i].why != NULL,
					"oversize #%zu: data or no why", i);
			dime_source_item_free(&items[i]);
		}
	}
	unlink(t_path("over.mbox"));
}

/* An mbox through a pipe: no size, so no estimate until the end. */
static void
t_mbox_pipe(void)
{
	static const char in[] = "From a\nA\n\nFrom b\nB\n\nFrom c\nC\n";
	struct dime_source *s = NULL;
	struct dime_source_item it;
	const char *why = NULL;
	size_t n = 0;
	pid_t pid;
	int rc;

	if (mkfifo(t_path("fifo.mbox"), 0600) != 0) {
		t_fail("mkfifo: %s", strerror(errno));
		return;
	}
	fflush(NULL);
	if ((pid = fork()) == 0) {
		int fd = open(t_path("fifo.mbox"), O_WRONLY);

		_exit(fd >= 0 && write(fd, in, sizeof(in) - 1) == (ssize_t)sizeof(in) - 1 ? 0 : 1);
	}
	rc = dime_source_open(&s, t_path("fifo.mbox"), 0, &why);
	if (rc != 0) {
		t_fail("pipe: open: %d (%s)", rc, why ? why : "");
	} else {
		while ((rc = dime_source_next(s, &it, &why)) == 1) {
			if (n < 2)
				T_CHECK(dime_source_count_hint(s) == 0,
					"pipe: hint %zu before the end", dime_source_count_hint(s));
			n++;
			dime_source_item_free(&it);
		}
		T_CHECK(rc == 0 && n == 3 && dime_source_count_hint(s) == 3,
			"pipe: rc %d, %zu items, hint %zu", rc, n, dime_source_count_hint(s));
		dime_source_close(s);
	}
	waitpid(pid, NULL, 0);
	unlink(t_path("fifo.mbox"));
}

/* A file that cannot be read is a source failure with a reason. */
static void
t_mbox_unreadable(void)
{
	struct dime_source *s = (struct dime_source *)&s;
	const char *why = NULL;
	int rc = dime_source_open(&s, "/proc/self/mem", 0, &why); /* read at offset 0: EIO */

	T_CHECK(rc < 0 && s == NULL && why != NULL && strstr(why, "mbox") != NULL,
		"unreadable mbox: got %d (%s)", rc, why ? why : "(null)");
	if (geteuid() != 0) {
		t_put(t_path("locked.mbox"), "From a\nA\n", 9);
		chmod(t_path("locked.mbox"), 0);
		rc = dime_source_open(&s, t_path("locked.mbox"), 0, &why);
		T_CHECK(rc == -EACCES, "unreadable mbox: got %d, want -EACCES", rc);
	} else {
		printf("test_source: running as root: permission-denied mbox not checked\n");
	}
}

static size_t
t_rss(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, res = 0;

	if (f == NULL)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &res) != 2)
		res = 0;
	fclose(f);
	return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

/* 200 MB of mbox with resident memory flat: the source holds its buffer and one message. */
static void
t_mbox_memory(void)
{
	const size_t total = (size_t)200 << 20;
	char *msg = malloc(16384), *chunk = malloc((size_t)4 << 20);
	size_t mlen = 0, clen = 0, written = 0, count = 0, n = 0, bytes = 0, base, peak = 0;
	struct dime_source *s = NULL;
	struct dime_source_item it;
	const char *why = NULL;
	struct timespec t0, t1;
	FILE *f;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (msg == NULL || chunk == NULL || (f = fopen(t_path("big.mbox"), "wb")) == NULL)
		abort();
	mlen = (size_t)snprintf(msg, 16384, "Subject: load\nFrom: a@example.org\n\n");
	while (mlen < 8000)
		mlen +=
		    (size_t)snprintf(msg + mlen, 16384 - mlen,
				     "body line with some text to fill the message %zu\n", mlen);
	while (written < total) {
		clen = 0;
		while (clen + mlen + 64 < ((size_t)4 << 20) && written + clen < total) {
			clen += (size_t)snprintf(chunk + clen, 64, "From x@y %zu\n", count++);
			memcpy(chunk + clen, msg, mlen);
			clen += mlen;
			chunk[clen++] = '\n';
		}
		if (fwrite(chunk, 1, clen, f) != clen)
			abort();
		written += clen;
	}
	fclose(f);
	free(chunk);
	base = t_rss();
	rc = dime_source_open(&s, t_path("big.mbox"), 0, &why);
	if (rc != 0) {
		t_fail("memory: open %d", rc);
		free(msg);
		return;
	}
	while ((rc = dime_source_next(s, &it, &why)) == 1) {
		if (it.len != mlen)
			t_fail("memory: message %zu has %zu bytes, want %zu", n, it.len, mlen);
		bytes += it.len;
		n++;
		dime_source_item_free(&it);
		if (n % 1000 == 0) {
			size_t r = t_rss();

			if (r > peak)
				peak = r;
		}
	}
	dime_source_close(s);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	T_CHECK(rc == 0 && n == count, "memory: rc %d, %zu messages, want %zu", rc, n, count);
	T_CHECK(peak < base + ((size_t)64 << 20),
		"memory: resident grew by %zu KiB over 200 MB of mbox, want < 64 MiB",
		(peak - base) >> 10);
	printf("test_source: 200 MB mbox, %zu messages, RSS +%zu KiB, %.2f s\n", n,
	       peak > base ? (peak - base) >> 10 : 0,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	unlink(t_path("big.mbox"));
	free(msg);
	(void)bytes;
}

int
main(void)
{
	if (t_mkdtemp("dime_source") != 0)
		return 1;
	t_dir_source();
	t_symlinks();
	t_maildir();
	t_mbox_table();
	t_mbox_large();
	t_mbox_oversize();
	t_mbox_pipe();
	t_mbox_unreadable();
	t_mbox_memory();
	t_rm_rf(t_dir);
	return t_done("test_source");
}

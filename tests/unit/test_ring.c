/* io ring: batched whole-file reads, atomic writes and pread, in the plain form and through
 * io_uring (that half is skipped with a note when this kernel or sandbox refuses io_uring),
 * each run in a fresh temporary directory. */

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
#include <unistd.h>

#include "dime/io.h"
#include "dime/ring.h"
#include "tlib.h"

static const char *t_mode_name = "";

/* Deterministic bytes that differ per file and per offset. */
static uint8_t *
t_pattern(size_t len, unsigned seed)
{
	uint8_t *p = malloc(len + 1);
	uint32_t x = seed * 2654435761u + 1;

	if (p == NULL)
		abort();
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
	return p;
}

static void
t_put(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "FAIL: cannot create %s\n", path);
		exit(1);
	}
}

/* Names in dir, sorted, joined with '|' (dotfiles included: a leftover temporary shows). */
static int
t_cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *
t_listing(const char *dir)
{
	static char out[8192];
	char *names[256];
	size_t n = 0;
	DIR *d = opendir(dir);
	struct dirent *e;

	out[0] = 0;
	if (d == NULL)
		return "(no dir)";
	while ((e = readdir(d)) != NULL && n < 256)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, n, sizeof(names[0]), t_cmpstr);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			strncat(out, "|", sizeof(out) - strlen(out) - 1);
		strncat(out, names[i], sizeof(out) - strlen(out) - 1);
		free(names[i]);
	}
	return out;
}

static void
t_free_rd(struct dime_io_rd *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].buf);
		v[i].buf = NULL;
	}
}

/* --- reads --- */

struct t_rd_case {
	const char *name;
	const char *file; /* under t_dir; absolute when starting with '/' */
	size_t max;
	int want_err;
	size_t want_len;
	const uint8_t *want; /* NULL: compare with dime_io_read_file of the same path */
};

static void
t_reads(enum dime_ring_mode mode)
{
	enum { MIB5 = 5 << 20 };
	uint8_t *big = t_pattern(MIB5, 5), *m4096 = t_pattern(4096, 7), *m4097 = t_pattern(4097, 8);
	const int root = geteuid() == 0;
	struct t_rd_case cases[] = {
	    {"empty", "empty", 4096, 0, 0, (const uint8_t *)""},
	    {"one byte", "one", 4096, 0, 1, (const uint8_t *)"x"},
	    {"exactly max", "m4096", 4096, 0, 4096, m4096},
	    {"max+1", "m4097", 4096, -EFBIG, 0, NULL},
	    {"5 MiB", "big", 8 << 20, 0, MIB5, big},
	    {"5 MiB, max 5 MiB-1", "big", MIB5 - 1, -EFBIG, 0, NULL},
	    {"missing", "nope", 4096, -ENOENT, 0, NULL},
	    {"directory", "adir", 4096, -EISDIR, 0, NULL},
	    {"not a directory", "one/x", 4096, -ENOTDIR, 0, NULL},
	    {"permission denied", "secret", 4096, root ? 0 : -EACCES, 3, (const uint8_t *)"abc"},
	    {"proc file (size 0)", "/proc/version", 1 << 20, 0, 0, NULL},
	    {"proc file over max", "/proc/version", 4, -EFBIG, 0, NULL},
	    {"max 0, empty", "empty", 0, 0, 0, (const uint8_t *)""},
	    {"max 0, one byte", "one", 0, -EFBIG, 0, NULL},
	};
	const size_t n = sizeof(cases) / sizeof(cases[0]);
	struct dime_io_rd v[sizeof(cases) / sizeof(cases[0])];
	static const size_t io_max[] = {0, 4096, 1000};
	static const unsigned depth[] = {1, 4, 64};

	t_put(t_path("empty"), "", 0);
	t_put(t_path("one"), "x", 1);
	t_put(t_path("m4096"), m4096, 4096);
	t_put(t_path("m4097"), m4097, 4097);
	t_put(t_path("big"), big, MIB5);
	t_put(t_path("secret"), "abc", 3);
	chmod(t_path("secret"), 0);
	mkdir(t_path("adir"), 0700);
	if (root)
		printf("test_ring: running as root: -EACCES is checked as uid 65534 in a child\n");

	for (size_t d = 0; d < sizeof(depth) / sizeof(depth[0]); d++)
		for (size_t k = 0; k < sizeof(io_max) / sizeof(io_max[0]); k++) {
			struct dime_ring *r = NULL;
			int rc;

			if ((rc = dime_ring_open(&r, depth[d], mode)) != 0) {
				t_fail("%s: open depth %u: got %d", t_mode_name, depth[d], rc);
				continue;
			}
			dime_ring_set_io_max(r, io_max[k]);
			for (size_t i = 0; i < n; i++) {
				v[i].path = cases[i].file[0] == '/' ? cases[i].file
								    : strdup(t_path(cases[i].file));
				v[i].max = cases[i].max;
				v[i].buf = (uint8_t *)&v[i]; /* must be cleared */
				v[i].len = 12345;
				v[i].err = 99;
			}
			rc = dime_ring_read_files(r, v, n);
			T_CHECK(rc == 0, "%s: read_files: got %d, want 0", t_mode_name, rc);
			for (size_t i = 0; i < n; i++) {
				const struct t_rd_case *c = &cases[i];
				uint8_t *ref = NULL;
				size_t ref_len = 0, want_len = c->want_len;
				const uint8_t *want = c->want;

				if (c->want_err == 0 && want == NULL) {
					if (dime_io_read_file(&ref, &ref_len, v[i].path, c->max) !=
					    0)
						t_fail("%s: reference read failed", c->name);
					want = ref;
					want_len = ref_len;
				}
				T_CHECK(v[i].err == c->want_err,
					"%s depth %u io_max %zu: %s: err got %d, want %d",
					t_mode_name, depth[d], io_max[k], c->name, v[i].err,
					c->want_err);
				if (c->want_err != 0) {
					T_CHECK(v[i].buf == NULL && v[i].len == 0,
						"%s: %s: outputs not cleared on error", t_mode_name,
						c->name);
				} else if (v[i].buf == NULL || v[i].len != want_len ||
					   memcmp(v[i].buf, want, want_len) != 0 ||
					   v[i].buf[v[i].len] != 0) {
					t_fail(
					    "%s depth %u io_max %zu: %s: got %zu bytes, want %zu "
					    "(or content/NUL differs)",
					    t_mode_name, depth[d], io_max[k], c->name, v[i].len,
					    want_len);
				}
				free(ref);
				if (cases[i].file[0] != '/')
					free((char *)(uintptr_t)v[i].path);
			}
			t_free_rd(v, n);
			dime_ring_close(r);
		}
	free(big);
	free(m4096);
	free(m4097);
}

/* As root, permission checks run in a child that drops to nobody (65534): a file of mode 0 and
 * a root-owned directory give -EACCES, and the failed write leaves nothing behind. */
static void
t_perm_denied(enum dime_ring_mode mode)
{
	char secret[PATH_MAX + 64], one[PATH_MAX + 64], ro[PATH_MAX + 64];
	pid_t pid;
	int status = 0;

	if (geteuid() != 0)
		return; /* t_reads saw -EACCES directly */
	snprintf(secret, sizeof(secret), "%s", t_path("secret"));
	snprintf(one, sizeof(one), "%s", t_path("one"));
	snprintf(ro, sizeof(ro), "%s", t_path("ro/x.out"));
	mkdir(t_path("ro"), 0755);
	chmod(t_dir, 0711);
	chmod(one, 0644);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		struct dime_ring *r = NULL;
		struct dime_io_rd v[2] = {{secret, 100, NULL, 0, 0, 0}, {one, 100, NULL, 0, 0, 0}};
		struct dime_io_wr w = {ro, "x", 1, 0600, 1, 0};

		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(77);
		if (dime_ring_open(&r, 4, mode) != 0 || dime_ring_read_files(r, v, 2) != 0 ||
		    dime_ring_write_files(r, &w, 1) != 0)
			_exit(2);
		if (v[0].err != -EACCES || v[1].err != 0 || v[1].len != 1 || w.err != -EACCES) {
			fprintf(stderr,
				"FAIL: %s: as nobody: secret err %d (want -EACCES), one err "
				"%d, write err %d (want -EACCES)\n",
				t_mode_name, v[0].err, v[1].err, w.err);
			_exit(1);
		}
		_exit(0);
	}
	waitpid(pid, &status, 0);
	chmod(t_dir, 0700);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
		printf("test_ring: cannot drop to uid 65534: permission checks skipped\n");
	else
		T_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			"%s: permission child failed (status %d)", t_mode_name, status);
	T_CHECK(strcmp(t_listing(t_path("ro")), "") == 0, "%s: denied write left '%s'", t_mode_name,
		t_listing(t_path("ro")));
	rmdir(t_path("ro"));
}

/* 300 files through a ring of depth 8, with every 7th missing and every 11th over max. */
static void
t_reads_many(enum dime_ring_mode mode)
{
	enum { N = 300 };
	static struct dime_io_rd v[N];
	static char paths[N][PATH_MAX + 32];
	uint8_t *want[N];
	size_t len[N];
	struct dime_ring *r = NULL;
	int rc;

	mkdir(t_path("many"), 0700);
	for (unsigned i = 0; i < N; i++) {
		len[i] = (size_t)i * 997 % 20000;
		want[i] = t_pattern(len[i], 1000 + i);
		snprintf(paths[i], sizeof(paths[i]), "%s/many/f%03u", t_dir, i);
		if (i % 7 != 3)
			t_put(paths[i], want[i], len[i]);
		v[i].path = paths[i];
		v[i].max = i % 11 == 5 && len[i] > 0 ? len[i] - 1 : 20000;
	}
	if ((rc = dime_ring_open(&r, 8, mode)) != 0) {
		t_fail("%s: open: %d", t_mode_name, rc);
		return;
	}
	T_CHECK(dime_ring_is_uring(r) == (mode == DIME_RING_URING), "%s: is_uring %d", t_mode_name,
		dime_ring_is_uring(r));
	rc = dime_ring_read_files(r, v, N);
	T_CHECK(rc == 0, "%s: 300 files: got %d", t_mode_name, rc);
	for (unsigned i = 0; i < N; i++) {
		int we = i % 7 == 3 ? -ENOENT : i % 11 == 5 && len[i] > 0 ? -EFBIG : 0;

		if (v[i].err != we)
			t_fail("%s: 300 files: #%u err got %d, want %d", t_mode_name, i, v[i].err,
			       we);
		else if (we == 0 && (v[i].len != len[i] || memcmp(v[i].buf, want[i], len[i]) != 0))
			t_fail("%s: 300 files: #%u got %zu bytes, want %zu", t_mode_name, i,
			       v[i].len, len[i]);
		free(want[i]);
	}
	t_free_rd(v, N);
	/* Same batch again on the same ring: no state leaks between calls. */
	rc = dime_ring_read_files(r, v, N);
	T_CHECK(rc == 0, "%s: second batch: rc %d", t_mode_name, rc);
	for (unsigned i = 0; i < N; i++)
		T_CHECK((v[i].err == 0) == (i % 7 != 3 && !(i % 11 == 5 && len[i] > 0)),
			"%s: second batch #%u err %d", t_mode_name, i, v[i].err);
	t_free_rd(v, N);
	T_CHECK(dime_ring_read_files(r, v, 0) == 0, "%s: empty batch", t_mode_name);
	dime_ring_close(r);
}

/* A pipe gives short reads: a slow writer sends three pieces; the read must go on to EOF. */
static void
t_read_pipe(enum dime_ring_mode mode)
{
	uint8_t *want = t_pattern(3000, 31);
	struct dime_ring *r = NULL;
	struct dime_io_rd v[2];
	char fifo[PATH_MAX + 64], other[PATH_MAX + 64];
	pid_t pid;
	int rc;

	snprintf(fifo, sizeof(fifo), "%s", t_path("fifo"));
	snprintf(other, sizeof(other), "%s", t_path("other"));
	t_put(other, "other", 5);
	if (mkfifo(fifo, 0600) != 0) {
		t_fail("mkfifo: %s", strerror(errno));
		free(want);
		return;
	}
	fflush(NULL);
	if ((pid = fork()) == 0) {
		int fd = open(fifo, O_WRONLY);

		for (int i = 0; fd >= 0 && i < 3; i++) {
			if (write(fd, want + i * 1000, 1000) != 1000)
				_exit(1);
			usleep(20000);
		}
		_exit(0);
	}
	if ((rc = dime_ring_open(&r, 4, mode)) != 0) {
		t_fail("%s: open: %d", t_mode_name, rc);
	} else {
		v[0] = (struct dime_io_rd){fifo, 1 << 20, NULL, 0, 0, 0};
		v[1] = (struct dime_io_rd){other, 100, NULL, 0, 0, 0};
		rc = dime_ring_read_files(r, v, 2);
		T_CHECK(rc == 0 && v[0].err == 0 && v[0].len == 3000 &&
			    memcmp(v[0].buf, want, 3000) == 0,
			"%s: pipe: rc %d err %d, %zu bytes, want 3000", t_mode_name, rc, v[0].err,
			v[0].len);
		T_CHECK(v[1].err == 0 && v[1].len == 5, "%s: pipe batch: other file err %d",
			t_mode_name, v[1].err);
		t_free_rd(v, 2);
		dime_ring_close(r);
	}
	waitpid(pid, NULL, 0);
	unlink(fifo);
	unlink(other);
	free(want);
}

/* --- writes --- */

static void
t_writes(enum dime_ring_mode mode)
{
	enum { N = 40 };
	struct dime_io_wr w[N];
	struct dime_io_rd v[N];
	static char paths[N][PATH_MAX + 32];
	uint8_t *data[N];
	size_t len[N];
	struct dime_ring *r = NULL;
	mode_t old = umask(077);
	int rc;

	mkdir(t_path("out"), 0700);
	if ((rc = dime_ring_open(&r, 5, mode)) != 0) {
		t_fail("%s: open: %d", t_mode_name, rc);
		return;
	}
	dime_ring_set_io_max(r, 100000); /* 3 MiB file: many short writes */
	for (unsigned i = 0; i < N; i++) {
		len[i] = i == 0 ? 0 : i == 1 ? 1 : i == 2 ? (size_t)3 << 20 : (size_t)i * 1237;
		data[i] = t_pattern(len[i], 77 + i);
		snprintf(paths[i], sizeof(paths[i]), "%s/out/w%02u.bin", t_dir, i);
		w[i] = (struct dime_io_wr){
		    paths[i], data[i], len[i], i % 3 == 0 ? 0640u : 0600u, (int)(i & 1), 77};
	}
	t_put(paths[5], "old contents", 12); /* replaced atomically */
	rc = dime_ring_write_files(r, w, N);
	T_CHECK(rc == 0, "%s: write_files: got %d", t_mode_name, rc);
	for (unsigned i = 0; i < N; i++) {
		struct stat sb;

		T_CHECK(w[i].err == 0, "%s: write #%u: err %d", t_mode_name, i, w[i].err);
		if (stat(paths[i], &sb) != 0)
			t_fail("%s: write #%u: no file", t_mode_name, i);
		else
			T_CHECK((sb.st_mode & 07777) == (i % 3 == 0 ? 0640u : 0600u),
				"%s: write #%u: mode got %o (umask must not apply)", t_mode_name, i,
				(unsigned)(sb.st_mode & 07777));
		v[i].path = paths[i];
		v[i].max = 4 << 20;
	}
	rc = dime_ring_read_files(r, v, N);
	T_CHECK(rc == 0, "%s: read back: %d", t_mode_name, rc);
	for (unsigned i = 0; i < N; i++) {
		T_CHECK(v[i].err == 0 && v[i].len == len[i] &&
			    memcmp(v[i].buf, data[i], len[i]) == 0,
			"%s: read back #%u: err %d, %zu bytes, want %zu", t_mode_name, i, v[i].err,
			v[i].len, len[i]);
		free(data[i]);
	}
	t_free_rd(v, N);
	/* Only the outputs: no temporary left behind. */
	{
		const char *l = t_listing(t_path("out"));

		T_CHECK(strstr(l, ".tmp.") == NULL, "%s: leftover temporary: %s", t_mode_name, l);
	}
	umask(old);
	dime_ring_close(r);
	t_rm_rf(t_path("out"));
}

/* Failures inside a batch: the good items land, the bad ones leave nothing. */
static void
t_write_errors(enum dime_ring_mode mode)
{
	struct dime_ring *r = NULL;
	char a[PATH_MAX + 64], b[PATH_MAX + 64], c[PATH_MAX + 64], d[PATH_MAX + 64],
	    e[PATH_MAX + 64], f[PATH_MAX + 800];
	char longname[400];
	struct dime_io_wr w[6];
	const char *l;
	int rc;

	mkdir(t_path("errs"), 0700);
	mkdir(t_path("errs/b.out"), 0700); /* rename(file, non-empty directory) fails */
	t_put(t_path("errs/b.out/keep"), "k", 1);
	snprintf(a, sizeof(a), "%s", t_path("errs/a.out"));
	snprintf(b, sizeof(b), "%s", t_path("errs/b.out"));
	snprintf(c, sizeof(c), "%s", t_path("errs/c.out"));
	snprintf(d, sizeof(d), "%s", t_path("errs/missing/d.out"));
	snprintf(e, sizeof(e), "%s", t_path("errs/"));
	memset(longname, 'n', 300);
	longname[300] = 0;
	snprintf(f, sizeof(f), "%s/errs/%s", t_dir, longname); /* name over NAME_MAX */
	w[0] = (struct dime_io_wr){a, "alpha", 5, 0600, 1, 0};
	w[1] = (struct dime_io_wr){b, "bravo", 5, 0600, 1, 0};
	w[2] = (struct dime_io_wr){c, "charlie", 7, 0600, 0, 0};
	w[3] = (struct dime_io_wr){d, "delta", 5, 0600, 1, 0};
	w[4] = (struct dime_io_wr){e, "echo", 4, 0600, 0, 0};
	w[5] = (struct dime_io_wr){f, "foxtrot", 7, 0600, 0, 0};
	if ((rc = dime_ring_open(&r, 4, mode)) != 0) {
		t_fail("%s: open: %d", t_mode_name, rc);
		return;
	}
	rc = dime_ring_write_files(r, w, 6);
	T_CHECK(rc == 0, "%s: write errors batch: rc %d", t_mode_name, rc);
	T_CHECK(w[0].err == 0, "%s: a: err %d", t_mode_name, w[0].err);
	T_CHECK(w[1].err == -EISDIR || w[1].err == -ENOTEMPTY,
		"%s: onto a directory: got %d, want -EISDIR", t_mode_name, w[1].err);
	T_CHECK(w[2].err == 0, "%s: c: err %d", t_mode_name, w[2].err);
	T_CHECK(w[3].err == -ENOENT, "%s: missing dir: got %d, want -ENOENT", t_mode_name,
		w[3].err);
	T_CHECK(w[4].err == -EISDIR, "%s: path ending in '/': got %d, want -EISDIR", t_mode_name,
		w[4].err);
	T_CHECK(w[5].err == -ENAMETOOLONG, "%s: long name: got %d, want -ENAMETOOLONG", t_mode_name,
		w[5].err);
	l = t_listing(t_path("errs"));
	T_CHECK(strcmp(l, "a.out|b.out|c.out") == 0,
		"%s: listing after errors: got '%s', want "
		"'a.out|b.out|c.out'",
		t_mode_name, l);
	l = t_listing(t_path("errs/b.out"));
	T_CHECK(strcmp(l, "keep") == 0, "%s: directory target changed: '%s'", t_mode_name, l);
	T_CHECK(access(t_path("errs/missing"), F_OK) != 0, "%s: missing dir was created",
		t_mode_name);
	{
		struct dime_io_rd v[2] = {{a, 100, NULL, 0, 0, 0}, {c, 100, NULL, 0, 0, 0}};

		T_CHECK(dime_ring_read_files(r, v, 2) == 0 && v[0].len == 5 && v[1].len == 7 &&
			    memcmp(v[0].buf, "alpha", 5) == 0 &&
			    memcmp(v[1].buf, "charlie", 7) == 0,
			"%s: good items of a failed batch differ", t_mode_name);
		t_free_rd(v, 2);
	}
	dime_ring_close(r);
	t_rm_rf(t_path("errs"));
}

/* A crash between the temporary write and the rename: a child writes 8 MiB files one after
 * another with 4 KiB writes and is killed mid-file. Every final name must hold a complete file;
 * the one in progress exists only as a temporary. */
static void
t_write_crash(enum dime_ring_mode mode)
{
	enum { LEN = 8 << 20, MAXF = 50 };
	uint8_t *data = t_pattern(LEN, 4242);
	char dir[PATH_MAX];
	pid_t pid;
	int status, killed = 0;

	snprintf(dir, sizeof(dir), "%s", t_path("crash"));
	mkdir(dir, 0700);
	fflush(NULL);
	if ((pid = fork()) < 0) {
		t_fail("fork: %s", strerror(errno));
		free(data);
		return;
	}
	if (pid == 0) {
		struct dime_ring *r = NULL;
		char p[PATH_MAX + 32];

		if (dime_ring_open(&r, 8, mode) != 0)
			_exit(2);
		dime_ring_set_io_max(r, 4096);
		for (int i = 0; i < MAXF; i++) {
			struct dime_io_wr w = {p, data, LEN, 0600, 0, 0};

			snprintf(p, sizeof(p), "%s/big%02d.out", dir, i);
			if (dime_ring_write_files(r, &w, 1) != 0 || w.err != 0)
				_exit(3);
		}
		_exit(0);
	}
	/* Kill the child once a final file exists and a temporary has some but not all bytes. */
	for (int spin = 0; spin < 20000000 && !killed; spin++) {
		DIR *d = opendir(dir);
		struct dirent *e;
		int finals = 0, partial = 0;
		char p[PATH_MAX + 300];
		struct stat sb;

		while (d != NULL && (e = readdir(d)) != NULL) {
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			if (strstr(e->d_name, ".tmp.") != NULL && stat(p, &sb) == 0 &&
			    sb.st_size > 0 && sb.st_size < LEN)
				partial = 1;
			if (e->d_name[0] == 'b')
				finals++;
		}
		if (d != NULL)
			closedir(d);
		if (finals >= 1 && partial) {
			kill(pid, SIGKILL);
			killed = 1;
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			if (!killed)
				break;
		}
	}
	if (!killed) {
		kill(pid, SIGKILL);
		t_fail("%s: crash test: never caught the writer mid-file", t_mode_name);
	}
	waitpid(pid, &status, 0);
	T_CHECK(!killed || (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL),
		"%s: crash test: child was not killed mid-run (status %d)", t_mode_name, status);
	{
		DIR *d = opendir(dir);
		struct dirent *e;
		char p[PATH_MAX + 300];
		struct stat sb;
		int finals = 0, tmps = 0;

		while (d != NULL && (e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.' && strstr(e->d_name, ".tmp.") == NULL)
				continue;
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			if (strstr(e->d_name, ".tmp.") != NULL) {
				char fin[PATH_MAX + 300];

				tmps++;
				/* ".bigNN.out.tmp.XXXXXX": the final name must not exist */
				snprintf(fin, sizeof(fin), "%s/%.*s", dir, 9, e->d_name + 1);
				T_CHECK(access(fin, F_OK) != 0,
					"%s: crash: %s exists beside its temporary", t_mode_name,
					fin);
				continue;
			}
			finals++;
			if (stat(p, &sb) != 0 || sb.st_size != LEN) {
				t_fail("%s: crash: %s is incomplete (%lld bytes)", t_mode_name,
				       e->d_name, (long long)sb.st_size);
			} else {
				uint8_t *got = NULL;
				size_t gl = 0;

				if (dime_io_read_file(&got, &gl, p, LEN) != 0 || gl != LEN ||
				    memcmp(got, data, LEN) != 0)
					t_fail("%s: crash: %s content differs", t_mode_name,
					       e->d_name);
				free(got);
			}
		}
		if (d != NULL)
			closedir(d);
		T_CHECK(finals >= 1 && tmps <= 1, "%s: crash: %d finals, %d temporaries",
			t_mode_name, finals, tmps);
	}
	t_rm_rf(dir);
	free(data);
}

/* --- pread --- */

static void
t_pread(enum dime_ring_mode mode)
{
	enum { LEN = 1 << 20 };
	uint8_t *data = t_pattern(LEN, 9), *buf = malloc(LEN);
	struct dime_ring *r = NULL;
	static const struct {
		uint64_t off;
		size_t len, io_max;
		ssize_t want;
	} cases[] = {
	    {0, 100, 0, 100},	       {1, 4096, 0, 4096},  {4095, 3, 0, 3},
	    {LEN - 10, 100, 0, 10},    {LEN, 100, 0, 0},    {(uint64_t)LEN + 5000, 100, 0, 0},
	    {123, 50000, 1000, 50000}, {0, LEN, 4096, LEN}, {7, 0, 0, 0},
	};
	int fd, rc;

	t_put(t_path("pread"), data, LEN);
	if ((fd = open(t_path("pread"), O_RDONLY)) < 0 || buf == NULL) {
		t_fail("pread: setup");
		return;
	}
	if ((rc = dime_ring_open(&r, 4, mode)) != 0) {
		t_fail("%s: open: %d", t_mode_name, rc);
		close(fd);
		return;
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ssize_t got;

		dime_ring_set_io_max(r, cases[i].io_max);
		memset(buf, 0xee, LEN);
		got = dime_ring_pread(r, fd, buf, cases[i].len, cases[i].off);
		if (got != cases[i].want)
			t_fail("%s: pread off %llu len %zu: got %zd, want %zd", t_mode_name,
			       (unsigned long long)cases[i].off, cases[i].len, got, cases[i].want);
		else if (got > 0 && memcmp(buf, data + cases[i].off, (size_t)got) != 0)
			t_fail("%s: pread off %llu: bytes differ", t_mode_name,
			       (unsigned long long)cases[i].off);
		else if (got >= 0 && (size_t)got < LEN && buf[got] != 0xee)
			t_fail("%s: pread off %llu: wrote past the bytes read", t_mode_name,
			       (unsigned long long)cases[i].off);
	}
	rc = (int)dime_ring_pread(r, -1, buf, 10, 0);
	T_CHECK(rc == -EBADF, "%s: pread bad fd: got %d, want -EBADF", t_mode_name, rc);
	/* The ring still works after a failed op. */
	T_CHECK(dime_ring_pread(r, fd, buf, 10, 0) == 10 && memcmp(buf, data, 10) == 0,
		"%s: pread after error", t_mode_name);
	dime_ring_close(r);
	close(fd);
	free(data);
	free(buf);
}

/* DIME_IO_RD_NO_SYMLINKS: a link as the last component or as a directory on the way is
 * refused with -ELOOP (the batch source names files by their real path, so a link there was
 * swapped in after the listing); the plain file next to them still reads. */
static void
t_no_symlinks(enum dime_ring_mode mode)
{
	char real[PATH_MAX + 64], viadir[PATH_MAX + 64];
	struct dime_ring *r = NULL;
	struct dime_io_rd v[3];
	int rc;

	mkdir(t_path("ns"), 0700);
	mkdir(t_path("ns/d"), 0700);
	t_put(t_path("ns/d/f"), "hello", 5);
	(void)unlink(t_path("ns/lnk"));
	(void)unlink(t_path("ns/dl"));
	T_CHECK(symlink("d/f", t_path("ns/lnk")) == 0, "symlink");
	T_CHECK(symlink("d", t_path("ns/dl")) == 0, "symlink");
	snprintf(real, sizeof(real), "%s", t_path("ns/d/f"));
	snprintf(viadir, sizeof(viadir), "%s", t_path("ns/dl/f"));
	if ((rc = dime_ring_open(&r, 8, mode)) != 0) {
		t_fail("%s: open: %d", t_mode_name, rc);
		return;
	}
	for (int follow = 0; follow < 2; follow++) {
		unsigned fl = follow ? 0 : DIME_IO_RD_NO_SYMLINKS;

		v[0] = (struct dime_io_rd){real, 100, NULL, 0, 0, fl};
		v[1] = (struct dime_io_rd){t_path("ns/lnk"), 100, NULL, 0, 0, fl};
		v[2] = (struct dime_io_rd){viadir, 100, NULL, 0, 0, fl};
		/* t_path returns one static buffer: v[1] must be its own copy */
		v[1].path = strdup(v[1].path);
		rc = dime_ring_read_files(r, v, 3);
		T_CHECK(rc == 0 && v[0].err == 0 && v[0].len == 5,
			"%s: no_symlinks %d: real path: rc %d err %d", t_mode_name, !follow, rc,
			v[0].err);
		for (int i = 1; i < 3; i++)
			T_CHECK(follow ? v[i].err == 0 && v[i].len == 5
				       : v[i].err == -ELOOP && v[i].buf == NULL,
				"%s: no_symlinks %d: link #%d: err got %d, want %d", t_mode_name,
				!follow, i, v[i].err, follow ? 0 : -ELOOP);
		free((void *)(uintptr_t)v[1].path);
		t_free_rd(v, 3);
	}
	dime_ring_close(r);
}

static void
t_open_args(void)
{
	struct dime_ring *r = (struct dime_ring *)&r;
	int rc, avail = dime_io_uring_available();

	rc = dime_ring_open(&r, 0, DIME_RING_PLAIN);
	T_CHECK(rc == -EINVAL && r == NULL, "depth 0: got %d, want -EINVAL and NULL", rc);
	rc = dime_ring_open(&r, 100000, DIME_RING_AUTO);
	T_CHECK(rc == -EINVAL, "depth 100000: got %d, want -EINVAL", rc);
	rc = dime_ring_open(&r, 4, (enum dime_ring_mode)7);
	T_CHECK(rc == -EINVAL, "mode 7: got %d, want -EINVAL", rc);
	rc = dime_ring_open(&r, 16, DIME_RING_AUTO);
	T_CHECK(rc == 0 && dime_ring_is_uring(r) == avail, "auto: rc %d, uring %d, available %d",
		rc, rc == 0 ? dime_ring_is_uring(r) : -1, avail);
	dime_ring_close(r);
	rc = dime_ring_open(&r, 16, DIME_RING_PLAIN);
	T_CHECK(rc == 0 && dime_ring_is_uring(r) == 0, "plain: rc %d", rc);
	dime_ring_close(r);
	dime_ring_close(NULL);
}

int
main(void)
{
	static const enum dime_ring_mode modes[] = {DIME_RING_PLAIN, DIME_RING_URING};
	if (t_mkdtemp("dime_ring") != 0)
		return 1;
	t_open_args();
	for (size_t m = 0; m < 2; m++) {
		if (modes[m] == DIME_RING_URING) {
			struct dime_ring *r = NULL;
			int rc = dime_ring_open(&r, 8, DIME_RING_URING);

			if (rc != 0) {
				T_CHECK(!dime_io_uring_available(),
					"io_uring is available but dime_ring_open failed: %d", rc);
				printf(
				    "test_ring: NOTE: io_uring unavailable here (%s): the io_uring "
				    "half is SKIPPED, only the plain form was tested\n",
				    strerror(-rc));
				continue;
			}
			dime_ring_close(r);
		}
		t_mode_name = modes[m] == DIME_RING_URING ? "uring" : "plain";
		t_reads(modes[m]);
		t_perm_denied(modes[m]);
		t_reads_many(modes[m]);
		t_read_pipe(modes[m]);
		t_writes(modes[m]);
		t_write_errors(modes[m]);
		t_write_crash(modes[m]);
		t_pread(modes[m]);
		t_no_symlinks(modes[m]);
		printf("test_ring: %s form checked\n", t_mode_name);
	}
	t_rm_rf(t_dir);
	return t_done("test_ring");
}

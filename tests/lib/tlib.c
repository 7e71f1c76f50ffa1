/* Test helpers shared by every unit test program. */

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dime/crypto.h"
#include "tlib.h"

int t_failures;

void
t_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("FAIL: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	t_failures++;
}

static struct {
	uint8_t *map;
	size_t map_len;
} t_slots[4];

const uint8_t *
t_at_page_end(int slot, const void *src, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t data_pages = (len + page - 1) / page;
	uint8_t *m;

	if (slot < 0 || slot > 3)
		abort();
	if (t_slots[slot].map != NULL)
		munmap(t_slots[slot].map, t_slots[slot].map_len);
	t_slots[slot].map_len = (data_pages + 1) * page;
	m = mmap(NULL, t_slots[slot].map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (m == MAP_FAILED)
		abort();
	if (mprotect(m + data_pages * page, page, PROT_NONE) != 0)
		abort();
	t_slots[slot].map = m;
	m += data_pages * page - len;
	if (len > 0)
		memcpy(m, src, len);
	return m;
}

const char *
t_interop_dir(void)
{
	const char *e = getenv("DIME_INTEROP");

	if (e != NULL && *e != 0)
		return e;
#ifdef DIME_INTEROP_DIR
	return DIME_INTEROP_DIR;
#else
	return "../shared/interop";
#endif
}

uint8_t *
t_read(const char *name, size_t *len)
{
	char path[4096];
	FILE *f;
	uint8_t *buf;
	long n;

	if (name[0] == '/')
		snprintf(path, sizeof(path), "%s", name);
	else
		snprintf(path, sizeof(path), "%s/%s", t_interop_dir(), name);
	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "FAIL: cannot open %s\n", path);
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "FAIL: cannot read %s\n", path);
		exit(1);
	}
	buf[n] = 0;
	fclose(f);
	*len = (size_t)n;
	return buf;
}

const char *
t_hex(const uint8_t *p, size_t n)
{
	static char s[2 * 256 + 4];
	size_t i;

	for (i = 0; i < n && i < 256; i++)
		snprintf(s + 2 * i, 3, "%02x", p[i]);
	s[2 * i] = 0;
	if (n > 256)
		strcat(s, "...");
	return s;
}

static uint64_t t_rand_state = 0x9e3779b97f4a7c15u;

uint64_t
t_rand(void)
{
	t_rand_state ^= t_rand_state << 13;
	t_rand_state ^= t_rand_state >> 7;
	t_rand_state ^= t_rand_state << 17;
	return t_rand_state;
}

uint32_t
t_rand_below(uint32_t n)
{
	return n == 0 ? 0 : (uint32_t)(t_rand() % n);
}

void
t_rand_fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(t_rand() >> 32);
}

void
t_rand_seed(uint64_t s)
{
	if (s != 0)
		t_rand_state ^= s * 0x2545f4914f6cdd1du;
}

void
t_init(void)
{
	if (dime_global_init() != 0) {
		fprintf(stderr, "FAIL: dime_global_init\n");
		exit(1);
	}
}

int
t_done(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (t_slots[i].map != NULL)
			munmap(t_slots[i].map, t_slots[i].map_len);
	if (t_failures > 0) {
		fprintf(stderr, "%s: %d failure(s)\n", name, t_failures);
		return 1;
	}
	printf("%s: ok\n", name);
	return 0;
}

char t_dir[4096];

int
t_mkdtemp(const char *tag)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(t_dir, sizeof(t_dir), "%s/%s_XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp", tag);
	if (mkdtemp(t_dir) == NULL) {
		fprintf(stderr, "FAIL: mkdtemp %s: %s\n", t_dir, strerror(errno));
		return -1;
	}
	return 0;
}

const char *
t_path(const char *name)
{
	static char bufs[8][sizeof(t_dir) + 300];
	static int next;
	char *b = bufs[next++ & 7];

	snprintf(b, sizeof(bufs[0]), "%s/%s", t_dir, name);
	return b;
}

int
t_write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f != NULL && fputs(text, f) >= 0 && fclose(f) == 0)
		return 0;
	if (f != NULL)
		fclose(f);
	t_fail("cannot write %s", path);
	return -1;
}

void
t_rm_rf(const char *path)
{
	struct stat sb;
	DIR *d;
	struct dirent *e;
	char sub[sizeof(t_dir) + 300];

	if (lstat(path, &sb) != 0)
		return;
	if (S_ISDIR(sb.st_mode) && (d = opendir(path)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			t_rm_rf(sub);
		}
		closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

/* dimed's log lines on stderr: `TIME level=L event=E pairs`, levels below the minimum dropped,
 * control characters in values cannot forge a second line, and lines from many threads arrive
 * whole (one write each). */

#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dime/dlog.h"
#include "tlib.h"

#define T_THREADS 4
#define T_LINES	  500

static void *
t_writer(void *arg)
{
	long id = (long)arg;

	for (int i = 0; i < T_LINES; i++)
		dime_dlog(DIME_DLOG_INFO, "test.thread", "thread=%ld n=%d pad=%0200d", id, i, 0);
	return NULL;
}

int
main(void)
{
	const char *path = NULL;
	FILE *f;
	char line[4096];
	regex_t re;
	int saved, fd, n_lines = 0, n_thread = 0, n_bad = 0;
	pthread_t th[T_THREADS];

	if (t_mkdtemp("dlog") != 0)
		return 1;
	path = t_path("log");
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
	if (fd < 0 || dup2(fd, STDERR_FILENO) < 0) {
		t_fail("cannot redirect stderr");
		return t_done("test_daemon_log");
	}
	dime_dlog_init("test", 0, DIME_DLOG_INFO);
	dime_dlog(DIME_DLOG_INFO, "conn.open", "peer=%s port=%d", "127.0.0.1", 2626);
	dime_dlog(DIME_DLOG_DEBUG, "hidden", "x=1"); /* below the minimum */
	dime_dlog(DIME_DLOG_ERROR, "evil", "why=\"%s\"", "a\nlevel=info event=forged\r");
	dime_dlog(DIME_DLOG_WARNING, "bare", "%s", "");
	for (long i = 0; i < T_THREADS; i++)
		pthread_create(&th[i], NULL, t_writer, (void *)i);
	for (int i = 0; i < T_THREADS; i++)
		pthread_join(th[i], NULL);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fd);

	if (regcomp(&re,
		    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
		    "level=(error|warning|info|debug) event=[a-z.]+( .*)?$",
		    REG_EXTENDED | REG_NOSUB) != 0) {
		t_fail("regcomp");
		return t_done("test_daemon_log");
	}
	if ((f = fopen(path, "r")) == NULL) {
		t_fail("cannot read %s", path);
		return t_done("test_daemon_log");
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t n = strlen(line);

		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		n_lines++;
		if (regexec(&re, line, 0, NULL, 0) != 0) {
			if (n_bad++ < 3)
				t_fail("line %d not `TIME level= event= ...`: %s", n_lines, line);
			continue;
		}
		if (n_lines == 1)
			T_CHECK(
			    strstr(line, " level=info event=conn.open peer=127.0.0.1 port=2626") !=
				NULL,
			    "first line: got %s", line);
		if (n_lines == 2)
			T_CHECK(
			    strstr(line,
				   "level=error event=evil why=\"a?level=info event=forged?\"") !=
				NULL,
			    "control characters: got %s", line);
		if (n_lines == 3)
			T_CHECK(strstr(line, "level=warning event=bare") != NULL, "bare: got %s",
				line);
		if (strstr(line, "event=test.thread thread=") != NULL && strlen(line) > 200)
			n_thread++;
		T_CHECK(strstr(line, "hidden") == NULL, "a debug line passed an info minimum");
	}
	fclose(f);
	regfree(&re);
	T_CHECK(n_thread == T_THREADS * T_LINES, "thread lines: got %d whole, want %d", n_thread,
		T_THREADS * T_LINES);
	T_CHECK(n_lines == 3 + T_THREADS * T_LINES, "lines: got %d, want %d", n_lines,
		3 + T_THREADS * T_LINES);
	t_rm_rf(t_dir);
	return t_done("test_daemon_log");
}

/* dimed's log: one line per event, `time level event key=value...`, to stderr (with an ISO-8601
 * UTC timestamp) or syslog. A line is formatted whole in a local buffer and written with one
 * call, so lines from different threads never interleave. */
#include "dime/dlog.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define DIME_DLOG_LINE_CAP 2048

static const char *const dime_dlog_names[] = {"error", "warning", "info", "debug"};

/* Set once by dime_dlog_init before threads start; read-only afterwards. */
static int dime_dlog_syslog;
static atomic_int dime_dlog_min = DIME_DLOG_INFO;

void
dime_dlog_init(const char *ident, int to_syslog, enum dime_dlog_level min)
{
	dime_dlog_syslog = to_syslog;
	atomic_store(&dime_dlog_min, (int)min);
	if (to_syslog)
		openlog(ident != NULL ? ident : "dimed", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
dime_dlog(enum dime_dlog_level lv, const char *event, const char *fmt, ...)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char line[DIME_DLOG_LINE_CAP];
	size_t off = 0, cap = sizeof(line) - 1; /* room for the final newline */
	va_list ap;
	int n;

	if ((int)lv > atomic_load(&dime_dlog_min) || (int)lv < 0 || lv > DIME_DLOG_DEBUG)
		return;
	if (!dime_dlog_syslog) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = snprintf(line, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s ",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			     tm.tm_sec, ts.tv_nsec / 1000000, dime_dlog_names[lv]);
	} else {
		n = snprintf(line, cap, "level=%s ", dime_dlog_names[lv]);
	}
	if (n > 0)
		off = (size_t)n < cap ? (size_t)n : cap - 1;
	n = snprintf(line + off, cap - off, "event=%s", event != NULL ? event : "-");
	if (n > 0)
		off += (size_t)n < cap - off ? (size_t)n : cap - off - 1;
	if (fmt != NULL && fmt[0] != '\0' && off + 1 < cap) {
		line[off++] = ' ';
		line[off] = '\0';
		va_start(ap, fmt);
		n = vsnprintf(line + off, cap - off, fmt, ap);
		va_end(ap);
		if (n > 0)
			off += (size_t)n < cap - off ? (size_t)n : cap - off - 1;
	}
	/* A value must not forge a second log line: newlines and other controls become '?'. */
	for (size_t i = 0; i < off; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	if (dime_dlog_syslog) {
		line[off] = '\0';
		syslog(prio[lv], "%s", line);
		return;
	}
	line[off++] = '\n';
	/* One write(2): O_APPEND semantics keep concurrent lines whole. */
	if (write(STDERR_FILENO, line, off) < 0)
		return;
}

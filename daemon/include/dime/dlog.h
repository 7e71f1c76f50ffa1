#ifndef DIME_DAEMON_DLOG_H
#define DIME_DAEMON_DLOG_H
/* One line per event, key=value (values with spaces quoted), to stderr or syslog: never a
 * message body, a decrypted header or key material. Thread-safe; a line is written whole. */

enum dime_dlog_level { DIME_DLOG_ERROR = 0, DIME_DLOG_WARNING, DIME_DLOG_INFO, DIME_DLOG_DEBUG };

/* to_syslog 0: stderr with an ISO-8601 timestamp. */
void dime_dlog_init(const char *ident, int to_syslog, enum dime_dlog_level min);
/* event is a word (conn.open, dmtp.data.accepted...); fmt the key=value pairs. */
void dime_dlog(enum dime_dlog_level lv, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#endif

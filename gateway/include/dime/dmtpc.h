#ifndef DIME_DAEMON_DMTPC_H
#define DIME_DAEMON_DMTPC_H
/* The client side of DMTP replies (spec Part 7): `ddd SP text` or `ddd` ends a reply, `ddd-text`
 * continues it (270/280/290 carry armored signets this way), every line of one reply with the
 * same code. Pure: caller memory, no I/O; thread-safe. Used by `dime dmtp` and by the
 * client session machine (dime/dmtp_client.h). */

#include <stddef.h>

#include "dime/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DIME_DMTPC_LINE_MAX 512u /* octets of one reply line, terminator included */

/* One reply being assembled. text is the caller's buffer: the text of every line (after
 * `ddd-` / `ddd `) joined with '\n', NUL-terminated. */
struct dime_dmtpc_reply {
	int code;	/* 200..599 once the first line is in; 0 before */
	size_t n_lines; /* lines fed so far */
	int done;	/* the final line is in */
	char *text;
	size_t text_cap, text_len;
};

/* Start a reply in text (text_cap >= 1). */
void dime_dmtpc_reply_init(struct dime_dmtpc_reply *r, char *text, size_t text_cap);

/* Feed one line, terminator (LF or CRLF) included.
 * Returns: DIME_E_AGAIN     a continuation line: feed the next one;
 *          DIME_OK          the final line: r->code and r->text hold the whole reply;
 *          DIME_E_MALFORMED not `ddd[-| ]text` with a code 200..599, a code that differs from
 *                           the reply's first line, a CR, NUL or non-ASCII octet inside;
 *          DIME_E_LIMIT     more than DIME_DMTPC_LINE_MAX octets;
 *          DIME_E_TRUNCATED no LF at the end;
 *          DIME_E_NOSPACE   the text does not fit text_cap;
 *          DIME_E_INVALID   the reply was already done (init it again).
 * Out: *why a static reason ("" on success; why may be NULL). On an error r is unusable until
 *      dime_dmtpc_reply_init. */
DIME_MUST_CHECK int dime_dmtpc_reply_line(struct dime_dmtpc_reply *r, const char **why,
					  const char *line, size_t len);

/* The value of `NAME=` in a reply's text (254 ACCEPTED=<hash>, 255 DUPLICATE=<hash>): the
 * characters after it up to a space or the end, copied NUL-terminated into out.
 * Returns: DIME_OK, DIME_E_NOTFOUND (no such token), DIME_E_NOSPACE (out_cap too small). */
DIME_MUST_CHECK int dime_dmtpc_reply_value(char *out, size_t out_cap, const char *text,
					   const char *name);

#ifdef __cplusplus
}
#endif
#endif

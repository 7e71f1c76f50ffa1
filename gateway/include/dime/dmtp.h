#ifndef DIME_GATEWAY_DMTP_H
#define DIME_GATEWAY_DMTP_H
/* DMTP command lines (DIME spec Part 7, as WIRE.md "DMTP" settles it): parse one line into a
 * struct of fixed-size fields, and format a struct back into the spec's form. Pure functions over
 * caller memory: no I/O, no allocation, no global state; thread-safe. The grammar, the reference
 * synonyms accepted and every deviation from libdime are in docs/dmtp.md. */

#include <stddef.h>

#include "dime/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DIME_DMTP_LINE_MAX 512u /* octets, terminator included (spec Part 7, line based) */
#define DIME_DMTP_ADDR_MAX 254u /* inside <>: RFC 5321's 256-octet path less the brackets */
#define DIME_DMTP_FP_CHARS 86u	/* a SHA-512 fingerprint, base64 without padding */
#define DIME_DMTP_MODE_MAX 4u	/* "DMTP" or "SMTP" */
#define DIME_DMTP_TEXT_MAX 506u /* NOOP text: 512 less "NOOP " and the LF */

/* The verbs. The first fourteen keep libdime's numbering (dime_dmtp_command_type), which the
 * interop probes print; VERB is listed by the spec's global commands. HELD appears only in the
 * spec's sample HELP reply, with no syntax or meaning anywhere, so it is not a verb here. */
enum dime_dmtp_verb {
	DIME_DMTP_STARTTLS = 0,
	DIME_DMTP_HELO = 1,
	DIME_DMTP_EHLO = 2,
	DIME_DMTP_MODE = 3,
	DIME_DMTP_RSET = 4,
	DIME_DMTP_NOOP = 5,
	DIME_DMTP_HELP = 6,
	DIME_DMTP_QUIT = 7,
	DIME_DMTP_MAIL = 8,
	DIME_DMTP_RCPT = 9,
	DIME_DMTP_DATA = 10,
	DIME_DMTP_SGNT = 11,
	DIME_DMTP_HIST = 12,
	DIME_DMTP_VRFY = 13,
	DIME_DMTP_VERB = 14
};
#define DIME_DMTP_N_VERBS 15u

/* Which fields of struct dime_dmtp_cmd hold a value. */
#define DIME_DMTP_F_ADDR    0x01u /* addr: HELO/EHLO/STARTTLS host, FROM, TO or FOR */
#define DIME_DMTP_F_MAILBOX 0x02u /* addr is a mailbox (user@domain), not a domain (FOR only) */
#define DIME_DMTP_F_FP	    0x04u /* fp: FINGERPRINT */
#define DIME_DMTP_F_START   0x08u /* start: HIST START */
#define DIME_DMTP_F_STOP    0x10u /* stop: HIST STOP */
#define DIME_DMTP_F_MODE    0x20u /* mode: STARTTLS MODE, "DMTP" or "SMTP" */
#define DIME_DMTP_F_TEXT    0x40u /* text: NOOP's freeform arguments */

/* One command. A field not flagged present is all zero after dime_dmtp_parse. Values are
 * NUL-terminated copies (no brackets): the line need not outlive the struct. */
struct dime_dmtp_cmd {
	enum dime_dmtp_verb verb;
	unsigned flags; /* DIME_DMTP_F_* */
	char addr[DIME_DMTP_ADDR_MAX + 1];
	char fp[DIME_DMTP_FP_CHARS + 1]; /* base64 alphabet, 1..86 characters */
	char start[DIME_DMTP_FP_CHARS + 1];
	char stop[DIME_DMTP_FP_CHARS + 1];
	char mode[DIME_DMTP_MODE_MAX + 1]; /* upper case */
	char text[DIME_DMTP_TEXT_MAX + 1]; /* no leading or trailing space */
};

/* Parse one command line, terminator included. The line must end in LF or CRLF, exactly once;
 * it is at most DIME_DMTP_LINE_MAX octets; verbs and argument names are case-insensitive; values
 * are <address> or [base64]; arguments are separated by spaces and come in the spec's order.
 * Accepted beside the spec's form: USER=/DOMAIN= for FOR= (USER needs a mailbox, DOMAIN a
 * domain), HOST=<h> for the bare <h> of HELO, EHLO and STARTTLS. A fingerprint is checked for
 * its alphabet and bound only (1..86 base64 characters, no '='): dime_dmtp_check() applies the
 * full-length rule a server needs, so that placeholders in test vectors still parse.
 * Returns: DIME_OK;
 *          DIME_E_NOTFOUND  the first word is not a DMTP verb (a server answers 500);
 *          DIME_E_MALFORMED the verb is known but its arguments are not (501);
 *          DIME_E_LIMIT     more than DIME_DMTP_LINE_MAX octets (500);
 *          DIME_E_TRUNCATED the line does not end in LF (500; a caller passes whole lines);
 *          DIME_E_INVALID   c or line NULL (line NULL with len 0 is TRUNCATED).
 * Out: *c filled on success, zeroed on failure; *why a static reason ("" on success), why may be
 *      NULL. Borrows line for the call only. */
DIME_MUST_CHECK int dime_dmtp_parse(struct dime_dmtp_cmd *c, const char **why, const char *line,
				    size_t len);

/* Format c in the spec's form with an LF terminator: `HELO <h>`, `STARTTLS <h> MODE=DMTP`,
 * `MAIL FROM=<d> FINGERPRINT=[fp]`, `RCPT TO=<d> FINGERPRINT=[fp]`, `SGNT FOR=<x>
 * [FINGERPRINT=[fp]]`, `HIST FOR=<a> [START=[fp]] [STOP=[fp]]`, `VRFY FOR=<x> FINGERPRINT=[fp]`,
 * `NOOP [text]`, and the bare verb for the rest. The output parses back (dime_dmtp_parse) to a
 * command dime_dmtp_equal to c; a c that would not (a missing or stray field, a bad value) is
 * refused rather than formatted.
 * out == NULL: *out_len = size needed (without NUL); else out_cap must be at least that + 1.
 * Returns: DIME_OK, DIME_E_NOSPACE, DIME_E_INVALID (c does not describe a valid command).
 * Out: *out_len (0 on failure); out NUL-terminated, out[0] = 0 on failure when out_cap > 0. */
DIME_MUST_CHECK int dime_dmtp_format(char *out, size_t out_cap, size_t *out_len,
				     const struct dime_dmtp_cmd *c);

/* The server's check after a successful parse: every fingerprint present is a full one, exactly
 * DIME_DMTP_FP_CHARS characters whose last one carries no stray bits (64 bytes are 512 bits; 86
 * characters carry 516, so the last character's low 4 bits must be zero). MAIL and RCPT need full
 * fingerprints (WIRE.md), SGNT takes a full or a core one and HIST and VRFY core ones: all
 * SHA-512, so all 86 characters.
 * Returns: DIME_OK or DIME_E_MALFORMED (a server answers 501). Out: *why ("" on success); why
 * may be NULL. */
DIME_MUST_CHECK int dime_dmtp_check(const struct dime_dmtp_cmd *c, const char **why);

/* Do a and b hold the same command (verb, flags and the values of the present fields)? Bytes
 * past a field's NUL, and fields not flagged present, do not count. Returns: 1 or 0. */
int dime_dmtp_equal(const struct dime_dmtp_cmd *a, const struct dime_dmtp_cmd *b);

/* The reply code a server sends for a dime_dmtp_parse or dime_dmtp_check result: 0 for DIME_OK,
 * 501 for DIME_E_MALFORMED, 500 for anything else (spec Part 7, reply codes). */
int dime_dmtp_reply_code(int rc);

/* The verb's name in upper case, or NULL for a value outside enum dime_dmtp_verb. */
const char *dime_dmtp_verb_name(enum dime_dmtp_verb v);

#ifdef __cplusplus
}
#endif
#endif

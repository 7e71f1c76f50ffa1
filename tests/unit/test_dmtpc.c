/* DMTP replies as the client reads them: single and multi-line (270 armored signets), CRLF and
 * LF, each malformed form refused with its code, and the ACCEPTED=/DUPLICATE= values. */

#include <stdio.h>
#include <string.h>

#include "dime/dmtpc.h"
#include "tlib.h"

struct t_case {
	const char *name;
	const char *lines; /* one reply, lines separated by LF (a "\r\n" ends a line too) */
	int want_rc;	   /* of the last line fed */
	int want_code;	   /* when DIME_OK */
	const char *want_text;
};

static const struct t_case t_cases[] = {
    {"one line", "250 OK\n", DIME_OK, 250, "OK"},
    {"crlf", "220 mx.example DMTP ready\r\n", DIME_OK, 220, "mx.example DMTP ready"},
    {"bare code", "354\n", DIME_OK, 354, ""},
    {"code space", "250 \n", DIME_OK, 250, ""},
    {"multi", "250-mx.example\n250-8BITMIME\n250 SIZE 1000\n", DIME_OK, 250,
     "mx.example\n8BITMIME\nSIZE 1000"},
    {"signet",
     "270-----BEGIN ORGANIZATIONAL SIGNET-----\n270-BVAAAWEBQt1W\n"
     "270------END ORGANIZATIONAL SIGNET-----\n270 OK\n",
     DIME_OK, 270,
     "----BEGIN ORGANIZATIONAL SIGNET-----\nBVAAAWEBQt1W\n-----END ORGANIZATIONAL "
     "SIGNET-----\nOK"},
    {"accepted", "254 ACCEPTED=abc+/DEF\n", DIME_OK, 254, "ACCEPTED=abc+/DEF"},
    {"5xx", "578 ORIGIN SIGNATURE INVALID\n", DIME_OK, 578, "ORIGIN SIGNATURE INVALID"},
    {"code changes", "250-a\n251 b\n", DIME_E_MALFORMED, 0, ""},
    {"no separator", "250x\n", DIME_E_MALFORMED, 0, ""},
    {"four digits", "2500 x\n", DIME_E_MALFORMED, 0, ""},
    {"1xx", "199 x\n", DIME_E_MALFORMED, 0, ""},
    {"6xx", "600 x\n", DIME_E_MALFORMED, 0, ""},
    {"letters", "OK 250\n", DIME_E_MALFORMED, 0, ""},
    {"short", "25\n", DIME_E_MALFORMED, 0, ""},
    {"empty", "\n", DIME_E_MALFORMED, 0, ""},
    {"bare cr inside", "250 a\rb\n", DIME_E_MALFORMED, 0, ""},
    {"non-ascii", "250 caf\xc3\xa9\n", DIME_E_MALFORMED, 0, ""},
    {"no lf", "250 OK", DIME_E_TRUNCATED, 0, ""},
};

static int
t_feed(struct dime_dmtpc_reply *r, const char *lines, const char **why)
{
	const char *p = lines;
	int rc = DIME_E_AGAIN;

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) + 1 : strlen(p);

		rc = dime_dmtpc_reply_line(r, why, p, n);
		if (rc != DIME_E_AGAIN)
			return rc;
		p += n;
	}
	return rc;
}

int
main(void)
{
	char text[1024], line[600], val[100];
	struct dime_dmtpc_reply r;
	const char *why;
	int rc;

	for (size_t i = 0; i < sizeof(t_cases) / sizeof(t_cases[0]); i++) {
		const struct t_case *c = &t_cases[i];

		dime_dmtpc_reply_init(&r, text, sizeof(text));
		rc = t_feed(&r, c->lines, &why);
		T_CHECK(rc == c->want_rc, "%s: got %d (%s), want %d", c->name, rc, why, c->want_rc);
		if (rc == DIME_OK && c->want_rc == DIME_OK)
			T_CHECK(r.code == c->want_code && strcmp(r.text, c->want_text) == 0 &&
				    r.done,
				"%s: got %d \"%s\", want %d \"%s\"", c->name, r.code, r.text,
				c->want_code, c->want_text);
		if (rc != DIME_OK && rc != DIME_E_AGAIN)
			T_CHECK(why[0] != '\0' && r.code == 0 && text[0] == '\0',
				"%s: failure left code %d text \"%s\" why \"%s\"", c->name, r.code,
				text, why);
	}

	/* a line of exactly 512 octets passes, 513 does not */
	memset(line, 'x', sizeof(line));
	memcpy(line, "250 ", 4);
	line[511] = '\n';
	dime_dmtpc_reply_init(&r, text, sizeof(text));
	rc = dime_dmtpc_reply_line(&r, &why, line, 512);
	T_CHECK(rc == DIME_OK && r.text_len == 507, "512-octet line: got %d len %zu", rc,
		r.text_len);
	line[511] = 'x';
	line[512] = '\n';
	dime_dmtpc_reply_init(&r, text, sizeof(text));
	rc = dime_dmtpc_reply_line(&r, &why, line, 513);
	T_CHECK(rc == DIME_E_LIMIT, "513-octet line: got %d, want DIME_E_LIMIT", rc);

	/* the text buffer bound: exactly fitting passes, one more octet is NOSPACE */
	{
		char small[6];

		dime_dmtpc_reply_init(&r, small, sizeof(small));
		rc = t_feed(&r, "250-ab\n250 cd\n", &why);
		T_CHECK(rc == DIME_OK && strcmp(small, "ab\ncd") == 0, "fits: got %d \"%s\"", rc,
			small);
		dime_dmtpc_reply_init(&r, small, sizeof(small));
		rc = t_feed(&r, "250-ab\n250 cde\n", &why);
		T_CHECK(rc == DIME_E_NOSPACE, "overflow: got %d, want DIME_E_NOSPACE", rc);
	}
	/* a finished reply takes no more lines */
	dime_dmtpc_reply_init(&r, text, sizeof(text));
	rc = t_feed(&r, "250 OK\n", &why);
	rc = dime_dmtpc_reply_line(&r, &why, "250 again\n", 10);
	T_CHECK(rc == DIME_E_INVALID, "line after the final one: got %d", rc);

	/* values */
	T_CHECK(dime_dmtpc_reply_value(val, sizeof(val), "ACCEPTED=abc def", "ACCEPTED=") ==
			DIME_OK &&
		    strcmp(val, "abc") == 0,
		"ACCEPTED=: got %s", val);
	T_CHECK(dime_dmtpc_reply_value(val, sizeof(val), "OK DUPLICATE=xyz", "DUPLICATE=") ==
			DIME_OK &&
		    strcmp(val, "xyz") == 0,
		"DUPLICATE=: got %s", val);
	T_CHECK(dime_dmtpc_reply_value(val, sizeof(val), "NOTACCEPTED=x", "ACCEPTED=") ==
		    DIME_E_NOTFOUND,
		"a token inside a word was taken");
	T_CHECK(dime_dmtpc_reply_value(val, 3, "ACCEPTED=abc", "ACCEPTED=") == DIME_E_NOSPACE,
		"value longer than out_cap");
	return t_done("dmtpc");
}

/* DMTP command lines: every verb in the spec's form and libdime's, every rejection rule with the
 * error class a server turns into 500 or 501, the 512-octet limit, case rules, format -> parse
 * round trips and refusals, the full-fingerprint check, both interop vector files, guard-page
 * prefixes and single-byte mutations. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dime/dmtp.h"
#include "tlib.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

#define F_ADDR	DIME_DMTP_F_ADDR
#define F_MBOX	(DIME_DMTP_F_ADDR | DIME_DMTP_F_MAILBOX)
#define F_FP	DIME_DMTP_F_FP
#define F_START DIME_DMTP_F_START
#define F_STOP	DIME_DMTP_F_STOP
#define F_MODE	DIME_DMTP_F_MODE
#define F_TEXT	DIME_DMTP_F_TEXT

/* 64 bytes of base64 without padding: 86 characters, the last one's low four bits zero. */
#define FP86                                                                                       \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/ABCDEFGHIJKLMNOPQRSTUg"

static const char *
rc_name(int rc)
{
	return rc == DIME_OK ? "ok" : dime_strerror(rc);
}

static int
cmd_is_zero(const struct dime_dmtp_cmd *c)
{
	static const struct dime_dmtp_cmd zero;

	return memcmp(c, &zero, sizeof(zero)) == 0;
}

/* Parse from a copy that ends at a PROT_NONE page, so any overread faults. */
static int
parse_guarded(struct dime_dmtp_cmd *c, const char **why, int slot, const char *line, size_t len)
{
	return dime_dmtp_parse(c, why, (const char *)t_at_page_end(slot, line, len), len);
}

/* Lines that parse: what they must mean, and the spec-form line our formatter gives back. */
static const struct {
	const char *name, *line;
	struct dime_dmtp_cmd want;
	const char *fmt;
} accepts[] = {
    {"starttls spec",
     "STARTTLS <mx.beta.example> MODE=DMTP\n",
     {.verb = DIME_DMTP_STARTTLS,
      .flags = F_ADDR | F_MODE,
      .addr = "mx.beta.example",
      .mode = "DMTP"},
     "STARTTLS <mx.beta.example> MODE=DMTP\n"},
    {"starttls libdime",
     "STARTTLS HOST=<mx.beta.example> MODE=SMTP\r\n",
     {.verb = DIME_DMTP_STARTTLS,
      .flags = F_ADDR | F_MODE,
      .addr = "mx.beta.example",
      .mode = "SMTP"},
     "STARTTLS <mx.beta.example> MODE=SMTP\n"},
    {"starttls no mode",
     "STARTTLS <mx.beta.example>\n",
     {.verb = DIME_DMTP_STARTTLS, .flags = F_ADDR, .addr = "mx.beta.example"},
     "STARTTLS <mx.beta.example>\n"},
    {"starttls lower mode",
     "starttls <h.example> mode=dmtp\n",
     {.verb = DIME_DMTP_STARTTLS, .flags = F_ADDR | F_MODE, .addr = "h.example", .mode = "DMTP"},
     "STARTTLS <h.example> MODE=DMTP\n"},
    {"helo spec",
     "HELO <mx.alpha.example>\n",
     {.verb = DIME_DMTP_HELO, .flags = F_ADDR, .addr = "mx.alpha.example"},
     "HELO <mx.alpha.example>\n"},
    {"helo host=",
     "HELO HOST=<mx.alpha.example>\r\n",
     {.verb = DIME_DMTP_HELO, .flags = F_ADDR, .addr = "mx.alpha.example"},
     "HELO <mx.alpha.example>\n"},
    {"helo literal",
     "HELO <[192.0.2.1]>\n",
     {.verb = DIME_DMTP_HELO, .flags = F_ADDR, .addr = "[192.0.2.1]"},
     "HELO <[192.0.2.1]>\n"},
    {"ehlo",
     "EHLO <mx.alpha.example>\n",
     {.verb = DIME_DMTP_EHLO, .flags = F_ADDR, .addr = "mx.alpha.example"},
     "EHLO <mx.alpha.example>\n"},
    {"ehlo host= lower",
     "ehlo host=<a.example>\n",
     {.verb = DIME_DMTP_EHLO, .flags = F_ADDR, .addr = "a.example"},
     "EHLO <a.example>\n"},
    {"mode", "MODE\n", {.verb = DIME_DMTP_MODE}, "MODE\n"},
    {"mode lower", "mode\r\n", {.verb = DIME_DMTP_MODE}, "MODE\n"},
    {"rset", "RSET\r\n", {.verb = DIME_DMTP_RSET}, "RSET\n"},
    {"help", "Help\n", {.verb = DIME_DMTP_HELP}, "HELP\n"},
    {"verb", "VERB\n", {.verb = DIME_DMTP_VERB}, "VERB\n"},
    {"quit", "QUIT\n", {.verb = DIME_DMTP_QUIT}, "QUIT\n"},
    {"data", "DATA\n", {.verb = DIME_DMTP_DATA}, "DATA\n"},
    {"quit trailing space", "QUIT  \r\n", {.verb = DIME_DMTP_QUIT}, "QUIT\n"},
    {"noop", "NOOP\n", {.verb = DIME_DMTP_NOOP}, "NOOP\n"},
    {"noop spaces only", "NOOP   \n", {.verb = DIME_DMTP_NOOP}, "NOOP\n"},
    {"noop text",
     "NOOP anything goes here\r\n",
     {.verb = DIME_DMTP_NOOP, .flags = F_TEXT, .text = "anything goes here"},
     "NOOP anything goes here\n"},
    {"noop text trimmed",
     "NOOP   x  y  \n",
     {.verb = DIME_DMTP_NOOP, .flags = F_TEXT, .text = "x  y"},
     "NOOP x  y\n"},
    {"noop libdime",
     "NOOP =a =b =c\n",
     {.verb = DIME_DMTP_NOOP, .flags = F_TEXT, .text = "=a =b =c"},
     "NOOP =a =b =c\n"},
    {"noop punctuation",
     "NOOP <>[]=@!~\t\x01\x7f\n",
     {.verb = DIME_DMTP_NOOP, .flags = F_TEXT, .text = "<>[]=@!~\t\x01\x7f"},
     "NOOP <>[]=@!~\t\x01\x7f\n"},
    {"mail",
     "MAIL FROM=<alpha.example> FINGERPRINT=[" FP86 "]\n",
     {.verb = DIME_DMTP_MAIL, .flags = F_ADDR | F_FP, .addr = "alpha.example", .fp = FP86},
     "MAIL FROM=<alpha.example> FINGERPRINT=[" FP86 "]\n"},
    {"mail placeholder",
     "mail from=<alpha.example> fingerprint=[ORGFP]\r\n",
     {.verb = DIME_DMTP_MAIL, .flags = F_ADDR | F_FP, .addr = "alpha.example", .fp = "ORGFP"},
     "MAIL FROM=<alpha.example> FINGERPRINT=[ORGFP]\n"},
    {"rcpt",
     "RCPT TO=<beta.example> FINGERPRINT=[a+/9]\n",
     {.verb = DIME_DMTP_RCPT, .flags = F_ADDR | F_FP, .addr = "beta.example", .fp = "a+/9"},
     "RCPT TO=<beta.example> FINGERPRINT=[a+/9]\n"},
    {"sgnt for user",
     "SGNT FOR=<bob@beta.example>\n",
     {.verb = DIME_DMTP_SGNT, .flags = F_MBOX, .addr = "bob@beta.example"},
     "SGNT FOR=<bob@beta.example>\n"},
    {"sgnt for user fp",
     "SGNT FOR=<bob@beta.example> FINGERPRINT=[USERFP]\n",
     {.verb = DIME_DMTP_SGNT, .flags = F_MBOX | F_FP, .addr = "bob@beta.example", .fp = "USERFP"},
     "SGNT FOR=<bob@beta.example> FINGERPRINT=[USERFP]\n"},
    {"sgnt for domain",
     "SGNT FOR=<beta.example>\n",
     {.verb = DIME_DMTP_SGNT, .flags = F_ADDR, .addr = "beta.example"},
     "SGNT FOR=<beta.example>\n"},
    {"sgnt user=",
     "SGNT USER=<bob@beta.example> FINGERPRINT=[USERFP]\r\n",
     {.verb = DIME_DMTP_SGNT, .flags = F_MBOX | F_FP, .addr = "bob@beta.example", .fp = "USERFP"},
     "SGNT FOR=<bob@beta.example> FINGERPRINT=[USERFP]\n"},
    {"sgnt domain=",
     "SGNT DOMAIN=<beta.example>\r\n",
     {.verb = DIME_DMTP_SGNT, .flags = F_ADDR, .addr = "beta.example"},
     "SGNT FOR=<beta.example>\n"},
    {"hist all",
     "HIST FOR=<bob@beta.example> START=[A] STOP=[B]\n",
     {.verb = DIME_DMTP_HIST,
      .flags = F_MBOX | F_START | F_STOP,
      .addr = "bob@beta.example",
      .start = "A",
      .stop = "B"},
     "HIST FOR=<bob@beta.example> START=[A] STOP=[B]\n"},
    {"hist none",
     "HIST USER=<bob@beta.example>\n",
     {.verb = DIME_DMTP_HIST, .flags = F_MBOX, .addr = "bob@beta.example"},
     "HIST FOR=<bob@beta.example>\n"},
    {"hist start",
     "HIST FOR=<bob@beta.example> START=[A]\n",
     {.verb = DIME_DMTP_HIST, .flags = F_MBOX | F_START, .addr = "bob@beta.example", .start = "A"},
     "HIST FOR=<bob@beta.example> START=[A]\n"},
    {"hist stop",
     "HIST FOR=<bob@beta.example> STOP=[B]\n",
     {.verb = DIME_DMTP_HIST, .flags = F_MBOX | F_STOP, .addr = "bob@beta.example", .stop = "B"},
     "HIST FOR=<bob@beta.example> STOP=[B]\n"},
    {"vrfy domain",
     "VRFY FOR=<beta.example> FINGERPRINT=[ORGFP]\n",
     {.verb = DIME_DMTP_VRFY, .flags = F_ADDR | F_FP, .addr = "beta.example", .fp = "ORGFP"},
     "VRFY FOR=<beta.example> FINGERPRINT=[ORGFP]\n"},
    {"vrfy user=",
     "VRFY USER=<bob@beta.example> FINGERPRINT=[USERFP]\n",
     {.verb = DIME_DMTP_VRFY, .flags = F_MBOX | F_FP, .addr = "bob@beta.example", .fp = "USERFP"},
     "VRFY FOR=<bob@beta.example> FINGERPRINT=[USERFP]\n"},
    {"separator runs",
     "VRFY   FOR=<beta.example>    FINGERPRINT=[X]  \n",
     {.verb = DIME_DMTP_VRFY, .flags = F_ADDR | F_FP, .addr = "beta.example", .fp = "X"},
     "VRFY FOR=<beta.example> FINGERPRINT=[X]\n"},
};

/* Lines that must not parse, with the class a server answers: NOTFOUND 500, MALFORMED 501. */
static const struct {
	const char *name, *line;
	size_t len; /* 0: strlen */
	int want;
} rejects[] = {
    {"unknown verb", "EXPN <x>\n", 0, DIME_E_NOTFOUND},
    {"verb prefix", "HEL <x>\n", 0, DIME_E_NOTFOUND},
    {"verb longer", "HELOO <x>\n", 0, DIME_E_NOTFOUND},
    {"no verb", "\n", 0, DIME_E_NOTFOUND},
    {"leading space", " MODE\n", 0, DIME_E_NOTFOUND},
    {"held is not a verb", "HELD\n", 0, DIME_E_NOTFOUND},
    {"tab after verb", "MODE\t\n", 0, DIME_E_NOTFOUND},
    {"cr inside verb", "MO\rDE\n", 0, DIME_E_NOTFOUND},
    {"double cr", "MODE\r\r\n", 0, DIME_E_NOTFOUND},
    {"lf inside", "MODE\nRSET\n", 0, DIME_E_NOTFOUND},
    {"nul in verb", "MO\0DE\n", 6, DIME_E_NOTFOUND},
    {"8-bit verb", "MOD\xc9\n", 0, DIME_E_NOTFOUND},
    {"no terminator", "MODE", 0, DIME_E_TRUNCATED},
    {"cr only", "MODE\r", 0, DIME_E_TRUNCATED},
    {"empty", "", 0, DIME_E_TRUNCATED},
    {"cr in args", "NOOP a\rb\n", 0, DIME_E_MALFORMED},
    {"lf in args", "NOOP a\nb\n", 0, DIME_E_MALFORMED},
    {"nul in args", "NOOP a\0b\n", 9, DIME_E_MALFORMED},
    {"8-bit in noop", "NOOP caf\xc3\xa9\n", 0, DIME_E_MALFORMED},
    {"8-bit in host", "HELO <\xe9.example>\n", 0, DIME_E_MALFORMED},
    {"mode with arg", "MODE DMTP\n", 0, DIME_E_MALFORMED},
    {"rset with arg", "RSET x\n", 0, DIME_E_MALFORMED},
    {"data with arg", "DATA [x]\n", 0, DIME_E_MALFORMED},
    {"quit with arg", "QUIT now\n", 0, DIME_E_MALFORMED},
    {"help with arg", "HELP MAIL\n", 0, DIME_E_MALFORMED},
    {"verb with arg", "VERB on\n", 0, DIME_E_MALFORMED},
    {"helo bare", "HELO mx.alpha.example\r\n", 0, DIME_E_MALFORMED},
    {"helo none", "HELO\n", 0, DIME_E_MALFORMED},
    {"helo two", "HELO <a.example> <b.example>\n", 0, DIME_E_MALFORMED},
    {"helo empty", "HELO <>\n", 0, DIME_E_MALFORMED},
    {"helo open", "HELO <a.example\n", 0, DIME_E_MALFORMED},
    {"helo close", "HELO a.example>\n", 0, DIME_E_MALFORMED},
    {"helo nested", "HELO <<a.example>>\n", 0, DIME_E_MALFORMED},
    {"helo mailbox", "HELO <a@b.example>\n", 0, DIME_E_MALFORMED},
    {"helo tab", "HELO <a\tb>\n", 0, DIME_E_MALFORMED},
    {"helo wrong name", "HELO FOR=<a.example>\n", 0, DIME_E_MALFORMED},
    {"helo fp", "HELO [abc]\n", 0, DIME_E_MALFORMED},
    {"starttls bare", "STARTTLS\r\n", 0, DIME_E_MALFORMED},
    {"starttls dmtpv1", "STARTTLS <mx.beta.example> MODE=DMTPv1\r\n", 0, DIME_E_MALFORMED},
    {"starttls esmtp", "STARTTLS <mx.beta.example> MODE=ESMTP\n", 0, DIME_E_MALFORMED},
    {"starttls empty mode", "STARTTLS <mx.beta.example> MODE=\n", 0, DIME_E_MALFORMED},
    {"starttls mode first", "STARTTLS MODE=DMTP <mx.beta.example>\n", 0, DIME_E_MALFORMED},
    {"starttls three", "STARTTLS <h.example> MODE=DMTP MODE=DMTP\n", 0, DIME_E_MALFORMED},
    {"mail no fp", "MAIL FROM=<alpha.example>\r\n", 0, DIME_E_MALFORMED},
    {"mail no from", "MAIL FINGERPRINT=[A]\n", 0, DIME_E_MALFORMED},
    {"mail swapped", "MAIL FINGERPRINT=[A] FROM=<alpha.example>\n", 0, DIME_E_MALFORMED},
    {"mail mailbox", "MAIL FROM=<a@alpha.example> FINGERPRINT=[A]\n", 0, DIME_E_MALFORMED},
    {"mail smtp form", "MAIL FROM:<alpha.example> FINGERPRINT=[A]\n", 0, DIME_E_MALFORMED},
    {"mail bad fp char", "MAIL FROM=<alpha.example> FINGERPRINT=[AB-C]\n", 0, DIME_E_MALFORMED},
    {"mail padded fp", "MAIL FROM=<alpha.example> FINGERPRINT=[QQ==]\n", 0, DIME_E_MALFORMED},
    {"mail empty fp", "MAIL FROM=<alpha.example> FINGERPRINT=[]\n", 0, DIME_E_MALFORMED},
    {"mail fp no brackets", "MAIL FROM=<alpha.example> FINGERPRINT=ABC\n", 0, DIME_E_MALFORMED},
    {"mail fp 87", "MAIL FROM=<a.example> FINGERPRINT=[" FP86 "A]\n", 0, DIME_E_MALFORMED},
    {"mail extra", "MAIL FROM=<a.example> FINGERPRINT=[A] SIZE=1\n", 0, DIME_E_MALFORMED},
    {"rcpt from", "RCPT FROM=<beta.example> FINGERPRINT=[A]\n", 0, DIME_E_MALFORMED},
    {"rcpt empty", "RCPT TO=<> FINGERPRINT=[A]\n", 0, DIME_E_MALFORMED},
    {"sgnt bare", "SGNT <bob@beta.example>\r\n", 0, DIME_E_MALFORMED},
    {"sgnt none", "SGNT\n", 0, DIME_E_MALFORMED},
    {"sgnt user domain", "SGNT USER=<beta.example>\n", 0, DIME_E_MALFORMED},
    {"sgnt domain user", "SGNT DOMAIN=<bob@beta.example>\n", 0, DIME_E_MALFORMED},
    {"sgnt two ats", "SGNT FOR=<a@b@beta.example>\n", 0, DIME_E_MALFORMED},
    {"sgnt no local", "SGNT FOR=<@beta.example>\n", 0, DIME_E_MALFORMED},
    {"sgnt no domain", "SGNT FOR=<bob@>\n", 0, DIME_E_MALFORMED},
    {"sgnt fp first", "SGNT FINGERPRINT=[A] FOR=<beta.example>\n", 0, DIME_E_MALFORMED},
    {"sgnt start", "SGNT FOR=<beta.example> START=[A]\n", 0, DIME_E_MALFORMED},
    {"hist domain", "HIST FOR=<beta.example>\n", 0, DIME_E_MALFORMED},
    {"hist domain=", "HIST DOMAIN=<beta.example>\n", 0, DIME_E_MALFORMED},
    {"hist stop start", "HIST FOR=<b@beta.example> STOP=[B] START=[A]\n", 0, DIME_E_MALFORMED},
    {"hist stop stop", "HIST FOR=<b@beta.example> STOP=[B] STOP=[A]\n", 0, DIME_E_MALFORMED},
    {"hist fp", "HIST FOR=<b@beta.example> FINGERPRINT=[A]\n", 0, DIME_E_MALFORMED},
    {"hist four", "HIST FOR=<b@beta.example> START=[A] STOP=[B] STOP=[C]\n", 0, DIME_E_MALFORMED},
    {"vrfy no fp", "VRFY FOR=<beta.example>\n", 0, DIME_E_MALFORMED},
    {"vrfy bad fp", "VRFY FOR=<beta.example> FINGERPRINT=[A B]\n", 0, DIME_E_MALFORMED},
    {"vrfy fp brackets", "VRFY FOR=<beta.example> FINGERPRINT=<A>\n", 0, DIME_E_MALFORMED},
    {"vrfy empty name", "VRFY =<beta.example> FINGERPRINT=[A]\n", 0, DIME_E_MALFORMED},
};

static void
check_accept(const char *name, const char *line, size_t len, const struct dime_dmtp_cmd *want,
	     const char *fmt)
{
	struct dime_dmtp_cmd c, back;
	const char *why = NULL;
	char out[DIME_DMTP_LINE_MAX + 1];
	size_t n = 0, need = 0;
	int rc = parse_guarded(&c, &why, 0, line, len);

	if (rc != DIME_OK) {
		t_fail("%s: got %s (%s), want ok", name, rc_name(rc), why);
		return;
	}
	T_CHECK(why != NULL && why[0] == 0, "%s: why not empty on success", name);
	T_CHECK(dime_dmtp_equal(&c, want), "%s: parsed to another command (verb %d flags %#x)",
		name, (int)c.verb, c.flags);
	rc = dime_dmtp_format(out, sizeof(out), &n, &c);
	T_CHECK(rc == DIME_OK, "%s: format: got %s, want ok", name, rc_name(rc));
	if (rc != DIME_OK)
		return;
	T_CHECK(fmt == NULL || strcmp(out, fmt) == 0, "%s: format: got '%s', want '%s'", name, out,
		fmt);
	T_CHECK(n == strlen(out) && n <= DIME_DMTP_LINE_MAX && out[n - 1] == '\n' &&
		    memchr(out, '\r', n) == NULL,
		"%s: format: bad length or terminator", name);
	T_CHECK(dime_dmtp_format(NULL, 0, &need, &c) == DIME_OK && need == n,
		"%s: size query: got %zu, want %zu", name, need, n);
	rc = parse_guarded(&back, NULL, 1, out, n);
	T_CHECK(rc == DIME_OK && dime_dmtp_equal(&back, &c), "%s: format -> parse: got %s", name,
		rc_name(rc));
	/* A server echoes nothing and needs no original: the parsed struct equals the zeroed form.
	 */
	T_CHECK(memcmp(&back, &c, sizeof(c)) == 0, "%s: re-parse differs byte-wise", name);
}

static void
test_accepts(void)
{
	for (size_t i = 0; i < N_ELEMS(accepts); i++)
		check_accept(accepts[i].name, accepts[i].line, strlen(accepts[i].line),
			     &accepts[i].want, accepts[i].fmt);
}

static void
test_rejects(void)
{
	for (size_t i = 0; i < N_ELEMS(rejects); i++) {
		struct dime_dmtp_cmd c;
		const char *why = NULL;
		size_t len = rejects[i].len != 0 ? rejects[i].len : strlen(rejects[i].line);
		int rc = parse_guarded(&c, &why, 0, rejects[i].line, len);

		T_CHECK(rc == rejects[i].want, "%s: got %s (%s), want %s", rejects[i].name,
			rc_name(rc), why != NULL ? why : "(null)", rc_name(rejects[i].want));
		T_CHECK(cmd_is_zero(&c), "%s: output not zeroed on failure", rejects[i].name);
		T_CHECK(why != NULL && why[0] != 0, "%s: no reason given", rejects[i].name);
	}
}

/* Fold the letters of a line outside its <> and [] values: form 1 all lower case, form 2 every
 * other letter. */
static void
case_fold(char *s, int form)
{
	int in_val = 0;
	size_t k = 0;

	for (; *s != 0; s++) {
		if (*s == '<' || *s == '[')
			in_val = 1;
		else if (*s == '>' || *s == ']')
			in_val = 0;
		else if (!in_val && *s >= 'A' && *s <= 'Z' && (form == 1 || k++ % 2 == 1))
			*s = (char)(*s - 'A' + 'a');
	}
}

/* Every verb, whatever its case; argument names too; values keep theirs. */
static void
test_case(void)
{
	static const char *const verbs[] = {"STARTTLS", "HELO", "EHLO", "MODE", "RSET",
					    "NOOP",	"HELP", "QUIT", "MAIL", "RCPT",
					    "DATA",	"SGNT", "HIST", "VRFY", "VERB"};
	static const char *const args[] = {" HOST=<H.example> MODE=DMTP",
					   " <H.example>",
					   " HOST=<H.example>",
					   "",
					   "",
					   " Free TEXT",
					   "",
					   "",
					   " FROM=<A.example> FINGERPRINT=[AbC]",
					   " TO=<A.example> FINGERPRINT=[AbC]",
					   "",
					   " USER=<U@A.example>",
					   " FOR=<U@A.example> START=[AbC] STOP=[AbC]",
					   " DOMAIN=<A.example> FINGERPRINT=[AbC]",
					   ""};
	struct dime_dmtp_cmd up;

	T_CHECK(N_ELEMS(verbs) == DIME_DMTP_N_VERBS && N_ELEMS(args) == DIME_DMTP_N_VERBS,
		"verb table size");
	for (unsigned v = 0; v < DIME_DMTP_N_VERBS; v++) {
		memset(&up, 0, sizeof(up));
		for (int form = 0; form < 3; form++) {
			char line[128];
			struct dime_dmtp_cmd c;
			int rc;

			snprintf(line, sizeof(line), "%s%s\n", verbs[v], args[v]);
			case_fold(line, form);
			rc = dime_dmtp_parse(&c, NULL, line, strlen(line));
			T_CHECK(rc == DIME_OK && c.verb == (enum dime_dmtp_verb)v,
				"case: '%s': got %s verb %d, want ok verb %u", line, rc_name(rc),
				(int)c.verb, v);
			if (form == 0)
				up = c;
			else if (v != DIME_DMTP_NOOP) /* NOOP's text is its own */
				T_CHECK(dime_dmtp_equal(&c, &up), "case: '%s' means something else",
					line);
		}
		T_CHECK(strcmp(dime_dmtp_verb_name((enum dime_dmtp_verb)v), verbs[v]) == 0,
			"verb name %u", v);
	}
	T_CHECK(dime_dmtp_verb_name((enum dime_dmtp_verb)DIME_DMTP_N_VERBS) == NULL,
		"verb name out of range");
}

/* 512 octets with the terminator is the limit, with LF or CRLF; 513 is refused before any
 * other check. */
static void
test_limits(void)
{
	char line[DIME_DMTP_LINE_MAX + 8], host[DIME_DMTP_ADDR_MAX + 2];
	struct dime_dmtp_cmd c;
	const char *why = NULL;
	int rc;

	for (int crlf = 0; crlf < 2; crlf++) {
		for (size_t total = DIME_DMTP_LINE_MAX - 1; total <= DIME_DMTP_LINE_MAX + 1;
		     total++) {
			size_t text = total - 5 - 1 - (size_t)crlf;

			memcpy(line, "NOOP ", 5);
			memset(line + 5, 'x', text);
			memcpy(line + 5 + text, crlf ? "\r\n" : "\n", 2);
			rc = parse_guarded(&c, &why, 0, line, total);
			if (total <= DIME_DMTP_LINE_MAX) {
				T_CHECK(rc == DIME_OK && strlen(c.text) == text,
					"limit: %zu octets crlf %d: got %s, want ok", total, crlf,
					rc_name(rc));
				if (rc == DIME_OK && !crlf)
					check_accept("limit: longest noop", line, total, &c, NULL);
			} else {
				T_CHECK(rc == DIME_E_LIMIT && cmd_is_zero(&c),
					"limit: %zu octets crlf %d: got %s, want limit", total,
					crlf, rc_name(rc));
			}
		}
	}
	/* Limit before anything else: a 513-octet line of garbage is LIMIT, not NOTFOUND. */
	memset(line, 0xff, DIME_DMTP_LINE_MAX + 1);
	rc = dime_dmtp_parse(&c, NULL, line, DIME_DMTP_LINE_MAX + 1);
	T_CHECK(rc == DIME_E_LIMIT, "limit first: got %s", rc_name(rc));
	/* Host names: 254 characters fit, 255 do not. */
	for (size_t hl = DIME_DMTP_ADDR_MAX; hl <= DIME_DMTP_ADDR_MAX + 1; hl++) {
		memset(host, 'a', hl);
		host[hl] = 0;
		snprintf(line, sizeof(line), "HELO <%s>\n", host);
		rc = dime_dmtp_parse(&c, NULL, line, strlen(line));
		T_CHECK(hl <= DIME_DMTP_ADDR_MAX ? rc == DIME_OK && strcmp(c.addr, host) == 0
						 : rc == DIME_E_MALFORMED,
			"host of %zu: got %s", hl, rc_name(rc));
	}
	/* The longest HIST: a 254-character mailbox and two fingerprints, well inside 512 octets.
	 */
	memset(host, 'a', DIME_DMTP_ADDR_MAX);
	host[1] = '@';
	host[DIME_DMTP_ADDR_MAX] = 0;
	snprintf(line, sizeof(line), "HIST FOR=<%s> START=[%s] STOP=[%s]\n", host, FP86, FP86);
	rc = dime_dmtp_parse(&c, NULL, line, strlen(line));
	T_CHECK(rc == DIME_OK && (c.flags & DIME_DMTP_F_MAILBOX), "longest hist: got %s",
		rc_name(rc));
	if (rc == DIME_OK)
		check_accept("longest hist", line, strlen(line), &c, line);
	/* Bad calls. */
	T_CHECK(dime_dmtp_parse(NULL, &why, "MODE\n", 5) == DIME_E_INVALID, "NULL cmd");
	T_CHECK(dime_dmtp_parse(&c, &why, NULL, 5) == DIME_E_INVALID, "NULL line");
	T_CHECK(dime_dmtp_parse(&c, &why, NULL, 0) == DIME_E_TRUNCATED, "NULL empty line");
}

static void
test_format_refusals(void)
{
	static const struct {
		const char *name;
		struct dime_dmtp_cmd c;
	} bad[] = {
	    {"helo without host", {.verb = DIME_DMTP_HELO}},
	    {"helo mailbox flag", {.verb = DIME_DMTP_HELO, .flags = F_MBOX, .addr = "a@b"}},
	    {"helo with @", {.verb = DIME_DMTP_HELO, .flags = F_ADDR, .addr = "a@b"}},
	    {"helo with space", {.verb = DIME_DMTP_HELO, .flags = F_ADDR, .addr = "a b"}},
	    {"helo empty", {.verb = DIME_DMTP_HELO, .flags = F_ADDR}},
	    {"helo stray fp",
	     {.verb = DIME_DMTP_HELO, .flags = F_ADDR | F_FP, .addr = "a", .fp = "A"}},
	    {"mode with text", {.verb = DIME_DMTP_MODE, .flags = F_TEXT, .text = "x"}},
	    {"starttls lower mode",
	     {.verb = DIME_DMTP_STARTTLS, .flags = F_ADDR | F_MODE, .addr = "h", .mode = "dmtp"}},
	    {"starttls bad mode",
	     {.verb = DIME_DMTP_STARTTLS, .flags = F_ADDR | F_MODE, .addr = "h", .mode = "X"}},
	    {"mail without fp", {.verb = DIME_DMTP_MAIL, .flags = F_ADDR, .addr = "a.example"}},
	    {"mail bad fp",
	     {.verb = DIME_DMTP_MAIL, .flags = F_ADDR | F_FP, .addr = "a.example", .fp = "A=B"}},
	    {"sgnt mailbox flag missing",
	     {.verb = DIME_DMTP_SGNT, .flags = F_ADDR, .addr = "bob@beta.example"}},
	    {"sgnt mailbox flag on domain",
	     {.verb = DIME_DMTP_SGNT, .flags = F_MBOX, .addr = "beta.example"}},
	    {"hist domain", {.verb = DIME_DMTP_HIST, .flags = F_ADDR, .addr = "beta.example"}},
	    {"vrfy without fp", {.verb = DIME_DMTP_VRFY, .flags = F_ADDR, .addr = "beta.example"}},
	    {"noop leading space", {.verb = DIME_DMTP_NOOP, .flags = F_TEXT, .text = " x"}},
	    {"noop trailing space", {.verb = DIME_DMTP_NOOP, .flags = F_TEXT, .text = "x "}},
	    {"noop empty text", {.verb = DIME_DMTP_NOOP, .flags = F_TEXT}},
	    {"noop lf", {.verb = DIME_DMTP_NOOP, .flags = F_TEXT, .text = "a\nb"}},
	    {"noop 8-bit", {.verb = DIME_DMTP_NOOP, .flags = F_TEXT, .text = "caf\xc3\xa9"}},
	    {"unknown flag", {.verb = DIME_DMTP_QUIT, .flags = 0x100u}},
	    {"verb out of range", {.verb = (enum dime_dmtp_verb)99}},
	};
	struct dime_dmtp_cmd c;
	char out[DIME_DMTP_LINE_MAX + 1];
	size_t n = 1;
	int rc;

	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		memset(out, 'z', sizeof(out));
		n = 1;
		rc = dime_dmtp_format(out, sizeof(out), &n, &bad[i].c);
		T_CHECK(rc == DIME_E_INVALID && n == 0 && out[0] == 0,
			"format %s: got %s len %zu, want invalid", bad[i].name, rc_name(rc), n);
	}
	/* A field with no NUL in its array is refused, not overread. */
	memset(&c, 0, sizeof(c));
	c.verb = DIME_DMTP_HELO;
	c.flags = F_ADDR;
	memset(c.addr, 'a', sizeof(c.addr));
	rc = dime_dmtp_format(out, sizeof(out), &n, &c);
	T_CHECK(rc == DIME_E_INVALID, "format unterminated field: got %s", rc_name(rc));
	/* Fields not flagged present do not count, whatever they hold. */
	memset(&c, 0, sizeof(c));
	c.verb = DIME_DMTP_QUIT;
	memset(c.fp, 'Q', sizeof(c.fp));
	rc = dime_dmtp_format(out, sizeof(out), &n, &c);
	T_CHECK(rc == DIME_OK && strcmp(out, "QUIT\n") == 0, "format ignores absent fields: %s",
		rc_name(rc));
	/* NOSPACE: the line and its NUL must fit. */
	memset(&c, 0, sizeof(c));
	c.verb = DIME_DMTP_HELO;
	c.flags = F_ADDR;
	strcpy(c.addr, "mx.example");
	rc = dime_dmtp_format(out, strlen("HELO <mx.example>\n"), &n, &c);
	T_CHECK(rc == DIME_E_NOSPACE && n == 0 && out[0] == 0, "format nospace: got %s",
		rc_name(rc));
	rc = dime_dmtp_format(out, strlen("HELO <mx.example>\n") + 1, &n, &c);
	T_CHECK(rc == DIME_OK && n == 18 && strcmp(out, "HELO <mx.example>\n") == 0,
		"format exact: got %s", rc_name(rc));
	T_CHECK(dime_dmtp_format(out, sizeof(out), NULL, &c) == DIME_E_INVALID, "NULL out_len");
	T_CHECK(dime_dmtp_format(out, sizeof(out), &n, NULL) == DIME_E_INVALID, "NULL cmd");
}

static void
test_check_and_codes(void)
{
	static const struct {
		const char *line;
		int want;
	} cases[] = {
	    {"MAIL FROM=<a.example> FINGERPRINT=[" FP86 "]\n", DIME_OK},
	    {"MAIL FROM=<a.example> FINGERPRINT=[ORGFP]\n", DIME_E_MALFORMED},
	    /* 86 characters, but the last one has stray low bits: not a canonical 64 bytes. */
	    {"MAIL FROM=<a.example> FINGERPRINT=["
	     "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	     "ABCDEFGHIJKLMNOPQRSTUh]\n",
	     DIME_E_MALFORMED},
	    {"HIST FOR=<u@a.example> START=[" FP86 "] STOP=[" FP86 "]\n", DIME_OK},
	    {"HIST FOR=<u@a.example> START=[" FP86 "] STOP=[B]\n", DIME_E_MALFORMED},
	    {"HIST FOR=<u@a.example> START=[B]\n", DIME_E_MALFORMED},
	    {"SGNT FOR=<a.example>\n", DIME_OK},
	    {"NOOP x\n", DIME_OK},
	};

	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		struct dime_dmtp_cmd c;
		const char *why = NULL;
		int rc = dime_dmtp_parse(&c, NULL, cases[i].line, strlen(cases[i].line));

		T_CHECK(rc == DIME_OK, "check %zu: parse got %s", i, rc_name(rc));
		rc = dime_dmtp_check(&c, &why);
		T_CHECK(rc == cases[i].want && why != NULL && (rc == DIME_OK) == (why[0] == 0),
			"check %zu: got %s, want %s", i, rc_name(rc), rc_name(cases[i].want));
	}
	T_CHECK(dime_dmtp_reply_code(DIME_OK) == 0, "reply ok");
	T_CHECK(dime_dmtp_reply_code(DIME_E_MALFORMED) == 501, "reply malformed");
	T_CHECK(dime_dmtp_reply_code(DIME_E_NOTFOUND) == 500, "reply notfound");
	T_CHECK(dime_dmtp_reply_code(DIME_E_LIMIT) == 500, "reply limit");
	T_CHECK(dime_dmtp_reply_code(DIME_E_TRUNCATED) == 500, "reply truncated");
}

/* Undo the vector files' \r and \n escapes in place. Returns: the new length. */
static size_t
unescape(char *s)
{
	size_t o = 0;

	for (size_t i = 0; s[i] != 0; i++) {
		if (s[i] == '\\' && (s[i + 1] == 'r' || s[i + 1] == 'n')) {
			s[o++] = s[i + 1] == 'r' ? '\r' : '\n';
			i++;
		} else {
			s[o++] = s[i];
		}
	}
	s[o] = 0;
	return o;
}

/* libdime's formatted lines all parse, and our formatter gives the spec's FOR= form back. */
static void
test_commands_file(void)
{
	size_t len, n = 0;
	char *txt = (char *)t_read("dmtp-commands.txt", &len), *save = NULL;

	for (char *ln = strtok_r(txt, "\n", &save); ln != NULL; ln = strtok_r(NULL, "\n", &save)) {
		char *tab = strchr(ln, '\t'), out[DIME_DMTP_LINE_MAX + 1];
		struct dime_dmtp_cmd c;
		size_t l, on = 0;
		int rc;

		n++;
		if (tab == NULL) {
			t_fail("commands %zu: no tab", n);
			continue;
		}
		l = unescape(tab + 1);
		rc = parse_guarded(&c, NULL, 0, tab + 1, l);
		T_CHECK(rc == DIME_OK, "commands %s: got %s, want ok", ln, rc_name(rc));
		if (rc != DIME_OK)
			continue;
		check_accept(ln, tab + 1, l, &c, NULL);
		if (dime_dmtp_format(out, sizeof(out), &on, &c) == DIME_OK)
			T_CHECK(strstr(out, "USER=") == NULL && strstr(out, "DOMAIN=") == NULL &&
				    strstr(out, "HOST=") == NULL,
				"commands %s: we format '%s', not the spec's form", ln, out);
		T_CHECK(strncasecmp(tab + 1, dime_dmtp_verb_name(c.verb), 4) == 0,
			"commands %s: verb %s", ln, dime_dmtp_verb_name(c.verb));
	}
	T_CHECK(n == 20, "commands: %zu lines, want 20", n);
	free(txt);
}

/* The probes: libdime's verdict (0, 3 = command error, 4 = argument error) is ours except for
 * these lines, each a WIRE.md / spec Part 7 rule (docs/dmtp.md). */
static const struct {
	const char *line;
	int ours;
} deviations[] = {
    {"HELO <mx.alpha.example>\r\n", 0},
    {"mode\r\n", 0},
    {"NOOP anything goes here\r\n", 0},
    {"MAIL FROM=<alpha.example>\r\n", 4},
    {"SGNT FOR=<bob@beta.example>\r\n", 0},
    {"HIST FOR=<bob@beta.example> START=[A] STOP=[B]\r\n", 0},
    {"VRFY FOR=<beta.example> FINGERPRINT=[ORGFP]\r\n", 0},
    {"STARTTLS\r\n", 4},
};

static void
test_probes_file(void)
{
	size_t len, n = 0, devs = 0;
	char *txt = (char *)t_read("dmtp-parse-probes.txt", &len), *save = NULL;

	for (char *ln = strtok_r(txt, "\n", &save); ln != NULL; ln = strtok_r(NULL, "\n", &save)) {
		char *line = strchr(ln, '\t'), *end;
		struct dime_dmtp_cmd c;
		const char *why = NULL;
		int ref = ln[0] - '0', want, ours, code;
		size_t l;

		n++;
		if (line == NULL) {
			t_fail("probe %zu: no tab", n);
			continue;
		}
		line++;
		if ((end = strchr(line, '\t')) != NULL)
			*end = 0;
		l = unescape(line);
		want = ref;
		for (size_t k = 0; k < N_ELEMS(deviations); k++)
			if (strcmp(deviations[k].line, line) == 0) {
				want = deviations[k].ours;
				devs++;
			}
		code = dime_dmtp_reply_code(parse_guarded(&c, &why, 0, line, l));
		ours = code == 0 ? 0 : code == 500 ? 3 : 4;
		T_CHECK(ours == want, "probe %zu: got %d (%s), want %d (libdime %d)", n, ours, why,
			want, ref);
		if (ours == 0)
			check_accept("probe", line, l, &c, NULL);
	}
	T_CHECK(n == 30, "probes: %zu lines, want 30", n);
	T_CHECK(devs == N_ELEMS(deviations), "probes: %zu deviations met, want %zu", devs,
		N_ELEMS(deviations));
	free(txt);
}

/* Every strict prefix of a good line lacks its LF: TRUNCATED, output zeroed. Every single-byte
 * change is survived: either a clean refusal with zeroed output, or a command that formats and
 * parses back to itself. */
static void
test_prefixes_and_mutations(void)
{
	static const unsigned char vals[] = {0x00, '\r', '\n', ' ', '<', '>',  '[',  ']', '=',
					     '@',  'a',	 'Z',  '+', '/', 0x7f, 0x80, 0xff};

	for (size_t i = 0; i < N_ELEMS(accepts); i++) {
		const char *line = accepts[i].line;
		size_t len = strlen(line);
		char m[DIME_DMTP_LINE_MAX + 1];

		for (size_t k = 0; k < len; k++) {
			struct dime_dmtp_cmd c;
			int rc = parse_guarded(&c, NULL, 2, line, k);

			T_CHECK(rc == DIME_E_TRUNCATED && cmd_is_zero(&c), "%s prefix %zu: got %s",
				accepts[i].name, k, rc_name(rc));
		}
		for (size_t k = 0; k < len; k++)
			for (size_t v = 0; v < N_ELEMS(vals); v++) {
				struct dime_dmtp_cmd c, back;
				char out[DIME_DMTP_LINE_MAX + 1];
				size_t on = 0;
				int rc;

				memcpy(m, line, len);
				m[k] = (char)vals[v];
				rc = parse_guarded(&c, NULL, 2, m, len);
				if (rc != DIME_OK) {
					T_CHECK(cmd_is_zero(&c), "%s mutation %zu=%#x: not zeroed",
						accepts[i].name, k, vals[v]);
					continue;
				}
				rc = dime_dmtp_format(out, sizeof(out), &on, &c);
				T_CHECK(rc == DIME_OK &&
					    dime_dmtp_parse(&back, NULL, out, on) == DIME_OK &&
					    dime_dmtp_equal(&back, &c),
					"%s mutation %zu=%#x: no round trip", accepts[i].name, k,
					vals[v]);
			}
	}
}

int
main(void)
{
	t_init();
	test_accepts();
	test_rejects();
	test_case();
	test_limits();
	test_format_refusals();
	test_check_and_codes();
	test_commands_file();
	test_probes_file();
	test_prefixes_and_mutations();
	return t_done("test_dmtp_cmd");
}

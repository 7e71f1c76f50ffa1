/* The DMTP half of `dime conformance`: libdime's formatted command lines must parse to the
 * command they name and survive our formatter, and each parser probe must get libdime's verdict
 * or a deviation documented below (and in docs/dmtp.md), with the same arguments when both
 * accept. The manifest carries no project verdict for these two cases: these tables are it. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "conf.h"
#include "dime/dmtp.h"

#define CD_F_ADDR DIME_DMTP_F_ADDR
#define CD_F_MBOX (DIME_DMTP_F_ADDR | DIME_DMTP_F_MAILBOX)
#define CD_F_FP	  DIME_DMTP_F_FP

/* dmtp-commands.txt: what each line libdime formatted must mean to us, and the line our own
 * formatter writes for it (the spec's form: FOR=, a bare <host>, LF). */
static const struct cd_cmd {
	const char *name;
	struct dime_dmtp_cmd want;
	const char *ours;
} cd_cmds[] = {
    {"starttls(host,DMTP)",
     {.verb = DIME_DMTP_STARTTLS,
      .flags = CD_F_ADDR | DIME_DMTP_F_MODE,
      .addr = "mx.beta.example",
      .mode = "DMTP"},
     "STARTTLS <mx.beta.example> MODE=DMTP\n"},
    {"starttls(host,SMTP)",
     {.verb = DIME_DMTP_STARTTLS,
      .flags = CD_F_ADDR | DIME_DMTP_F_MODE,
      .addr = "mx.beta.example",
      .mode = "SMTP"},
     "STARTTLS <mx.beta.example> MODE=SMTP\n"},
    {"helo",
     {.verb = DIME_DMTP_HELO, .flags = CD_F_ADDR, .addr = "mx.alpha.example"},
     "HELO <mx.alpha.example>\n"},
    {"ehlo",
     {.verb = DIME_DMTP_EHLO, .flags = CD_F_ADDR, .addr = "mx.alpha.example"},
     "EHLO <mx.alpha.example>\n"},
    {"mode", {.verb = DIME_DMTP_MODE}, "MODE\n"},
    {"rset", {.verb = DIME_DMTP_RSET}, "RSET\n"},
    /* libdime writes empty argument names; to us it is NOOP's free text, as the spec has it. */
    {"noop(a,b,c)",
     {.verb = DIME_DMTP_NOOP, .flags = DIME_DMTP_F_TEXT, .text = "=a =b =c"},
     "NOOP =a =b =c\n"},
    {"help", {.verb = DIME_DMTP_HELP}, "HELP\n"},
    {"quit", {.verb = DIME_DMTP_QUIT}, "QUIT\n"},
    {"mail",
     {.verb = DIME_DMTP_MAIL, .flags = CD_F_ADDR | CD_F_FP, .addr = "alpha.example", .fp = "ORGFP"},
     "MAIL FROM=<alpha.example> FINGERPRINT=[ORGFP]\n"},
    {"rcpt",
     {.verb = DIME_DMTP_RCPT, .flags = CD_F_ADDR | CD_F_FP, .addr = "beta.example", .fp = "ORGFP"},
     "RCPT TO=<beta.example> FINGERPRINT=[ORGFP]\n"},
    {"data", {.verb = DIME_DMTP_DATA}, "DATA\n"},
    {"sgnt_user(addr,fp)",
     {.verb = DIME_DMTP_SGNT,
      .flags = CD_F_MBOX | CD_F_FP,
      .addr = "bob@beta.example",
      .fp = "USERFP"},
     "SGNT FOR=<bob@beta.example> FINGERPRINT=[USERFP]\n"},
    {"sgnt_user(addr,NULL)",
     {.verb = DIME_DMTP_SGNT, .flags = CD_F_MBOX, .addr = "bob@beta.example"},
     "SGNT FOR=<bob@beta.example>\n"},
    {"sgnt_domain(dom,fp)",
     {.verb = DIME_DMTP_SGNT, .flags = CD_F_ADDR | CD_F_FP, .addr = "beta.example", .fp = "ORGFP"},
     "SGNT FOR=<beta.example> FINGERPRINT=[ORGFP]\n"},
    {"sgnt_domain(dom,NULL)",
     {.verb = DIME_DMTP_SGNT, .flags = CD_F_ADDR, .addr = "beta.example"},
     "SGNT FOR=<beta.example>\n"},
    {"hist(addr,start,stop)",
     {.verb = DIME_DMTP_HIST,
      .flags = CD_F_MBOX | DIME_DMTP_F_START | DIME_DMTP_F_STOP,
      .addr = "bob@beta.example",
      .start = "STARTFP",
      .stop = "STOPFP"},
     "HIST FOR=<bob@beta.example> START=[STARTFP] STOP=[STOPFP]\n"},
    {"hist(addr,NULL,NULL)",
     {.verb = DIME_DMTP_HIST, .flags = CD_F_MBOX, .addr = "bob@beta.example"},
     "HIST FOR=<bob@beta.example>\n"},
    {"vrfy_user(addr,fp)",
     {.verb = DIME_DMTP_VRFY,
      .flags = CD_F_MBOX | CD_F_FP,
      .addr = "bob@beta.example",
      .fp = "USERFP"},
     "VRFY FOR=<bob@beta.example> FINGERPRINT=[USERFP]\n"},
    {"vrfy_domain(dom,fp)",
     {.verb = DIME_DMTP_VRFY, .flags = CD_F_ADDR | CD_F_FP, .addr = "beta.example", .fp = "ORGFP"},
     "VRFY FOR=<beta.example> FINGERPRINT=[ORGFP]\n"},
};

/* dmtp-parse-probes.txt: every probe where our verdict differs from libdime's, and why. A
 * verdict is libdime's code: 0 accepted, 3 command error (a server answers 500), 4 argument
 * error (501). `ours` is our formatter's line when we accept. Each rule is WIRE.md "DMTP" or
 * the spec's Part 7; docs/dmtp.md explains them. A difference not listed here fails the case. */
static const struct cd_dev {
	const char *line; /* unescaped */
	int ref, ours;
	const char *fmt, *why;
} cd_devs[] = {
    {"HELO <mx.alpha.example>\r\n", 4, 0, "HELO <mx.alpha.example>\n",
     "spec Part 7: HELO <domain.tld> is the syntax; libdime wants HOST="},
    {"mode\r\n", 3, 0, "MODE\n", "WIRE.md: verbs are case-insensitive"},
    {"NOOP anything goes here\r\n", 4, 0, "NOOP anything goes here\n",
     "spec Part 7: servers must accept NOOP with arguments"},
    {"MAIL FROM=<alpha.example>\r\n", 3, 4, NULL,
     "MAIL is a known verb missing its FINGERPRINT: an argument error, 501 (spec reply codes)"},
    {"SGNT FOR=<bob@beta.example>\r\n", 4, 0, "SGNT FOR=<bob@beta.example>\n",
     "spec Part 7: SGNT FOR=<...>; libdime renamed it USER=/DOMAIN="},
    {"HIST FOR=<bob@beta.example> START=[A] STOP=[B]\r\n", 4, 0,
     "HIST FOR=<bob@beta.example> START=[A] STOP=[B]\n", "spec Part 7: HIST FOR=<mailbox>"},
    {"VRFY FOR=<beta.example> FINGERPRINT=[ORGFP]\r\n", 4, 0,
     "VRFY FOR=<beta.example> FINGERPRINT=[ORGFP]\n", "spec Part 7: VRFY FOR=<...>"},
    {"STARTTLS\r\n", 3, 4, NULL,
     "STARTTLS is a known verb missing its host: an argument error, 501 (spec reply codes)"},
};

/* Undo the vector files' escapes (\r, \n, \t, \\) in place. Returns: the new length. */
static size_t
cd_unescape(char *s, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len &&
		    (s[i + 1] == 'r' || s[i + 1] == 'n' || s[i + 1] == 't' || s[i + 1] == '\\')) {
			i++;
			s[o++] = s[i] == 'r'   ? '\r'
				 : s[i] == 'n' ? '\n'
				 : s[i] == 't' ? '\t'
					       : '\\';
		} else {
			s[o++] = s[i];
		}
	}
	s[o] = 0;
	return o;
}

/* Split one text line at tabs into col[0..cap); the tabs become NULs. Returns: the count. */
static size_t
cd_cols(char **col, size_t cap, char *line)
{
	size_t n = 0;

	while (n < cap) {
		char *tab = strchr(line, '\t');

		col[n++] = line;
		if (tab == NULL)
			break;
		*tab = 0;
		line = tab + 1;
	}
	return n;
}

/* Our verdict in libdime's terms: 0, 3 (500) or 4 (501). */
static int
cd_verdict(int rc)
{
	int code = dime_dmtp_reply_code(rc);

	return code == 0 ? 0 : code == 501 ? 4 : 3;
}

/* For messages: the line with CR and LF shown escaped. */
static const char *
cd_show(const char *s)
{
	static char buf[1100];
	size_t o = 0;

	for (; *s != 0 && o + 3 < sizeof(buf); s++) {
		if (*s == '\r' || *s == '\n') {
			buf[o++] = '\\';
			buf[o++] = *s == '\r' ? 'r' : 'n';
		} else {
			buf[o++] = *s;
		}
	}
	buf[o] = 0;
	return buf;
}

/* Format m; it must give back m when parsed. Returns: NULL or a reason. */
static const char *
cd_round_trip(char *out, size_t cap, const struct dime_dmtp_cmd *m)
{
	struct dime_dmtp_cmd back;
	size_t len = 0;

	if (dime_dmtp_format(out, cap, &len, m) != DIME_OK)
		return "our formatter refused the parsed command";
	if (dime_dmtp_parse(&back, NULL, out, len) != DIME_OK || !dime_dmtp_equal(&back, m))
		return "our formatted line does not parse back to the same command";
	return NULL;
}

static void
cd_commands(struct conf *c, const char *id, char *txt)
{
	char *save = NULL, *ln, *col[2], out[DIME_DMTP_LINE_MAX + 1];
	unsigned seen = 0, n = 0;
	size_t ncmd = sizeof(cd_cmds) / sizeof(cd_cmds[0]);

	for (ln = strtok_r(txt, "\n", &save); ln != NULL; ln = strtok_r(NULL, "\n", &save)) {
		const struct cd_cmd *want = NULL;
		struct dime_dmtp_cmd m;
		const char *why = "", *fail;
		size_t len, k;
		int rc;

		n++;
		if (cd_cols(col, 2, ln) != 2) {
			conf_result(c, id, "line %u: not name<TAB>command", n);
			return;
		}
		for (k = 0; k < ncmd; k++)
			if (strcmp(cd_cmds[k].name, col[0]) == 0)
				want = &cd_cmds[k];
		if (want == NULL) {
			conf_result(c, id, "line %u: no expectation for %s", n, col[0]);
			return;
		}
		seen |= 1u << (want - cd_cmds);
		len = cd_unescape(col[1], strlen(col[1]));
		if ((rc = dime_dmtp_parse(&m, &why, col[1], len)) != DIME_OK) {
			conf_result(c, id, "line %u (%s) '%s': got %s (%s), want accept", n, col[0],
				    cd_show(col[1]), dime_strerror(rc), why);
			return;
		}
		if (!dime_dmtp_equal(&m, &want->want)) {
			conf_result(c, id, "line %u (%s) '%s': parsed to another command", n,
				    col[0], cd_show(col[1]));
			return;
		}
		if ((fail = cd_round_trip(out, sizeof(out), &m)) != NULL) {
			conf_result(c, id, "line %u (%s): %s", n, col[0], fail);
			return;
		}
		if (strcmp(out, want->ours) != 0) {
			conf_result(c, id, "line %u (%s): we format '%s', want '%s'", n, col[0],
				    cd_show(out), cd_show(want->ours));
			return;
		}
	}
	for (size_t k = 0; k < ncmd; k++)
		if (!(seen & 1u << k)) {
			conf_result(c, id, "no line for %s", cd_cmds[k].name);
			return;
		}
	conf_result(c, id, NULL);
}

/* Our command in libdime's probe columns: HELO/EHLO host; STARTTLS host, mode; MAIL/RCPT
 * domain, fingerprint; SGNT/VRFY user, domain, fingerprint; HIST user, start, stop. */
static void
cd_ref_args(const char *arg[3], const struct dime_dmtp_cmd *m)
{
	unsigned f = m->flags;

	arg[0] = arg[1] = arg[2] = "(null)";
	switch (m->verb) {
	case DIME_DMTP_STARTTLS:
		if (f & DIME_DMTP_F_MODE)
			arg[1] = m->mode;
		arg[0] = m->addr;
		break;
	case DIME_DMTP_HELO:
	case DIME_DMTP_EHLO: arg[0] = m->addr; break;
	case DIME_DMTP_MAIL:
	case DIME_DMTP_RCPT:
		arg[0] = m->addr;
		arg[1] = m->fp;
		break;
	case DIME_DMTP_SGNT:
	case DIME_DMTP_VRFY:
		arg[f & DIME_DMTP_F_MAILBOX ? 0 : 1] = m->addr;
		if (f & DIME_DMTP_F_FP)
			arg[2] = m->fp;
		break;
	case DIME_DMTP_HIST:
		arg[0] = m->addr;
		if (f & DIME_DMTP_F_START)
			arg[1] = m->start;
		if (f & DIME_DMTP_F_STOP)
			arg[2] = m->stop;
		break;
	case DIME_DMTP_NOOP:
		if (f & DIME_DMTP_F_TEXT)
			arg[0] = m->text;
		break;
	case DIME_DMTP_MODE:
	case DIME_DMTP_RSET:
	case DIME_DMTP_HELP:
	case DIME_DMTP_QUIT:
	case DIME_DMTP_DATA:
	case DIME_DMTP_VERB: break;
	}
}

/* The value of a `key=value` column, or NULL when col is not that key. */
static const char *
cd_kv(const char *col, const char *key)
{
	size_t k = strlen(key);

	return strncmp(col, key, k) == 0 && col[k] == '=' ? col + k + 1 : NULL;
}

/* Both accepted: the same verb (our enum keeps libdime's numbering), the same arguments, and
 * libdime's own reformatted line means the same to us. Returns: NULL or a reason. */
static const char *
cd_probe_args(char **col, size_t ncol, const struct dime_dmtp_cmd *m)
{
	static char why[DIME_DMTP_LINE_MAX + 64];
	static const char *const keys[3] = {"arg0", "arg1", "arg2"};
	struct dime_dmtp_cmd back;
	const char *arg[3], *v, *type = ncol == 7 ? cd_kv(col[2], "type") : NULL;
	char *refmt;

	if (type == NULL || cd_kv(col[6], "reformat") == NULL)
		return "an accepted probe needs type, arg0..arg2 and reformat columns";
	refmt = col[6] + strlen("reformat=");
	if (atoi(type) != (int)m->verb) {
		snprintf(why, sizeof(why), "type %s, we parsed %s", type,
			 dime_dmtp_verb_name(m->verb));
		return why;
	}
	cd_ref_args(arg, m);
	for (int k = 0; k < 3; k++)
		if ((v = cd_kv(col[3 + k], keys[k])) == NULL || strcmp(v, arg[k]) != 0) {
			snprintf(why, sizeof(why), "%s: libdime %s, ours %s", keys[k],
				 v != NULL ? v : "(missing)", arg[k]);
			return why;
		}
	if (dime_dmtp_parse(&back, NULL, refmt, cd_unescape(refmt, strlen(refmt))) != DIME_OK ||
	    !dime_dmtp_equal(&back, m))
		return "libdime's reformatted line means something else to us";
	return NULL;
}

static void
cd_probes(struct conf *c, const char *id, char *txt)
{
	char *save = NULL, *ln, *col[7], out[DIME_DMTP_LINE_MAX + 1];
	unsigned n = 0;

	for (ln = strtok_r(txt, "\n", &save); ln != NULL; ln = strtok_r(NULL, "\n", &save)) {
		const struct cd_dev *dev = NULL;
		struct dime_dmtp_cmd m;
		const char *why = "", *fail = NULL;
		size_t ncol = cd_cols(col, 7, ln), len;
		int ref, ours;

		n++;
		if (ncol < 2 || (strcmp(col[0], "0") != 0 && strcmp(col[0], "3") != 0 &&
				 strcmp(col[0], "4") != 0)) {
			conf_result(c, id, "probe %u: not verdict<TAB>line", n);
			return;
		}
		ref = atoi(col[0]);
		len = cd_unescape(col[1], strlen(col[1]));
		ours = cd_verdict(dime_dmtp_parse(&m, &why, col[1], len));
		for (size_t k = 0; k < sizeof(cd_devs) / sizeof(cd_devs[0]); k++)
			if (strcmp(cd_devs[k].line, col[1]) == 0)
				dev = &cd_devs[k];
		if (ours != ref && (dev == NULL || dev->ref != ref || dev->ours != ours)) {
			conf_result(c, id,
				    "probe %u '%s': libdime %d, ours %d (%s): not a documented "
				    "deviation",
				    n, cd_show(col[1]), ref, ours, why);
			return;
		}
		if (ours == ref && dev != NULL) {
			conf_result(c, id,
				    "probe %u '%s': documented as a deviation, but we agree "
				    "with libdime",
				    n, cd_show(col[1]));
			return;
		}
		if (ours == 0 && (fail = cd_round_trip(out, sizeof(out), &m)) == NULL) {
			if (ref == 0)
				fail = cd_probe_args(col, ncol, &m);
			else if (dev->fmt == NULL || strcmp(out, dev->fmt) != 0)
				fail = "we accept it, but not as the deviation table says";
		}
		if (fail != NULL) {
			conf_result(c, id, "probe %u '%s': %s", n, cd_show(col[1]), fail);
			return;
		}
	}
	if (n == 0) {
		conf_result(c, id, "no probes");
		return;
	}
	conf_result(c, id, NULL);
}

void
conf_dmtp_case(struct conf *c, const json_t *cs, const char *id)
{
	const char *kind = conf_str(cs, "kind");
	uint8_t *buf = NULL;
	size_t len = 0;
	const char *mpath = conf_str(json_object_get(cs, "files"), "txt");

	if (mpath == NULL || conf_read(&buf, &len, c, mpath) != 0) {
		conf_result(c, id, "vector file missing");
		return;
	}
	if (memchr(buf, 0, len) != NULL) {
		conf_result(c, id, "vector file holds a NUL");
	} else if (strcmp(kind, "dmtp-format") == 0) {
		cd_commands(c, id, (char *)buf);
	} else if (strcmp(kind, "dmtp-parse") == 0) {
		cd_probes(c, id, (char *)buf);
	} else {
		conf_result(c, id, "unknown case kind %s", kind);
	}
	free(buf);
}

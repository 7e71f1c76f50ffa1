/* The reinjection client (dime/smtpc.h): one blocking SMTP or LMTP transaction at a time to the
 * operator's own MTA, on a connection kept between calls. Every wait is a poll() against a
 * deadline; every write is send(MSG_NOSIGNAL), so a peer that went away is an error, never a
 * SIGPIPE. The message is CRLF-normalised and dot-stuffed on the fly (RFC 5321 4.5.2). */

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>

#include "dime/smtpc.h"

#define SMTPC_LINE_MAX	   2048u   /* octets of one reply line, CRLF included */
#define SMTPC_CMD_MAX	   2048u   /* octets of one command line, CRLF included */
#define SMTPC_LINES_MAX	   256u	   /* lines of one reply */
#define SMTPC_IN_CAP	   4096u   /* reply bytes read ahead */
#define SMTPC_OUT_CAP	   16384u  /* message bytes per send */
#define SMTPC_TIMEOUT	   300000u /* RFC 5321 4.5.3.2: 5 minutes per reply */
#define SMTPC_DATA_TIMEOUT 600000u /* 4.5.3.2.6: 10 minutes for the final dot's reply */
#define SMTPC_QUIT_MS	   2000u   /* at most this long waiting for QUIT's reply on free */

struct dime_smtpc {
	char *host, *helo;
	unsigned port;
	int lmtp;
	unsigned timeout_ms, data_timeout_ms;

	int fd;		       /* -1: not connected */
	int used;	       /* a transaction ran on fd: RSET before the next one */
	int utf8_ok;	       /* the peer advertised SMTPUTF8 */
	int mime8_ok;	       /* the peer advertised 8BITMIME */
	size_t in_off, in_len; /* in[in_off..in_len) is read but not parsed */
	char in[SMTPC_IN_CAP];
	char cmd[SMTPC_CMD_MAX + 1];
	uint8_t out[SMTPC_OUT_CAP];
};

/* One reply as it is read: the last line's text is what the caller sees. */
struct smtpc_rd {
	int code;
	size_t n_lines;
	int done;
	int ehlo;     /* parse the lines after the first as EHLO keywords */
	int utf8_ok;  /* EHLO: SMTPUTF8 seen */
	int mime8_ok; /* EHLO: 8BITMIME seen */
	char enh[16];
	char text[256];
};

/* ---- time and socket waits ---- */

static uint64_t
smtpc_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* Wait for events on fd until deadline (ms, smtpc_now's clock).
 * Returns: the revents, or 0 when the deadline passed or poll failed. */
static short
smtpc_wait(int fd, short events, uint64_t deadline)
{
	for (;;) {
		struct pollfd p = {fd, events, 0};
		uint64_t now = smtpc_now();
		int r;

		if (now >= deadline)
			return 0;
		r = poll(&p, 1, deadline - now > 60000u ? 60000 : (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return 0;
		if (r > 0)
			return p.revents;
	}
}

static void
smtpc_close(struct dime_smtpc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->used = 0;
	c->utf8_ok = 0;
	c->mime8_ok = 0;
	c->in_off = 0;
	c->in_len = 0;
}

/* Connect to host:port, each address in turn, all within one deadline. The socket stays
 * non-blocking: every later read and write waits in poll. Returns: DIME_OK or DIME_E_IO. */
static int
smtpc_connect(struct dime_smtpc *c, const char **why)
{
	struct addrinfo hints, *res = NULL, *ai;
	char port[12];
	uint64_t deadline = smtpc_now() + c->timeout_ms;
	int rc = DIME_E_IO;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", c->port);
	*why = "cannot resolve the host";
	if (getaddrinfo(c->host, port, &hints, &res) != 0)
		return DIME_E_IO;
	*why = "connection refused";
	for (ai = res; ai != NULL && rc != DIME_OK; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol), err = 0;
		socklen_t el = sizeof(err);
		int fl;

		if (fd < 0)
			continue;
		/* the command pipeline and the data's end go out as they are: no Nagle wait on
		 * the peer's delayed ACK */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
		fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
		    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
			close(fd);
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			if (errno != EINPROGRESS) {
				close(fd);
				continue;
			}
			if (smtpc_wait(fd, POLLOUT, deadline) == 0) {
				*why = "connect timed out";
				close(fd);
				continue;
			}
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
				close(fd);
				continue;
			}
		}
		c->fd = fd;
		rc = DIME_OK;
	}
	freeaddrinfo(res);
	return rc;
}

/* Send all of p within the deadline, which moves on with every byte the peer takes (a slow
 * reader is fine, a stalled one is not). With stop_on_input, input arriving first ends the
 * write early (*early = 1): a server that refused the message mid-body and stopped reading.
 * Returns: DIME_OK or DIME_E_IO. */
static int
smtpc_write(struct dime_smtpc *c, const void *buf, size_t len, int stop_on_input, int *early)
{
	const uint8_t *p = buf;
	uint64_t deadline = smtpc_now() + c->timeout_ms;

	while (len > 0) {
		short ev;
		ssize_t k;

		if (stop_on_input && c->in_len > c->in_off) {
			*early = 1; /* read ahead with the previous reply */
			return DIME_OK;
		}
		ev = smtpc_wait(c->fd, stop_on_input ? (POLLOUT | POLLIN) : POLLOUT, deadline);

		if (ev == 0)
			return DIME_E_IO;
		if (stop_on_input && (ev & POLLIN)) {
			*early = 1;
			return DIME_OK;
		}
		if (ev & (POLLERR | POLLNVAL))
			return DIME_E_IO;
		k = send(c->fd, p, len, MSG_NOSIGNAL);
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			continue;
		if (k <= 0)
			return DIME_E_IO;
		p += k;
		len -= (size_t)k;
		deadline = smtpc_now() + c->timeout_ms;
	}
	return DIME_OK;
}

/* ---- replies (RFC 5321 4.2, enhanced codes RFC 2034/3463) ---- */

/* The enhanced status code at the start of t (tl octets) when it is one whose class matches
 * the reply's ("class.subject.detail", 1-3 digits each, then a space or the end).
 * Returns: its length (0: none). */
static size_t
smtpc_enh(const char *t, size_t tl, int code)
{
	size_t i = 0;

	if (tl < 5 || t[0] != (char)('0' + code / 100) ||
	    (t[0] != '2' && t[0] != '4' && t[0] != '5') || t[1] != '.')
		return 0;
	i = 2;
	for (int part = 0; part < 2; part++) {
		size_t d = 0;

		while (i < tl && t[i] >= '0' && t[i] <= '9' && d < 4) {
			i++;
			d++;
		}
		if (d == 0 || d > 3)
			return 0;
		if (part == 0) {
			if (i >= tl || t[i] != '.')
				return 0;
			i++;
		}
	}
	return i == tl || t[i] == ' ' ? i : 0;
}

/* Feed one line (terminator included: CRLF or a bare LF) into r.
 * Returns: DIME_E_AGAIN (more lines follow), DIME_OK (r->done), DIME_E_LIMIT (a line over
 * SMTPC_LINE_MAX, too many lines), DIME_E_MALFORMED (not "ddd[ -]text", a code outside
 * 200..599, a code that changed, a NUL or bare CR inside). */
static int
smtpc_reply_line(struct smtpc_rd *r, const char *line, size_t len)
{
	size_t end, tl, el, o = 0;
	const char *t;
	int code, last;

	if (len > SMTPC_LINE_MAX || r->n_lines >= SMTPC_LINES_MAX)
		return DIME_E_LIMIT;
	if (len == 0 || line[len - 1] != '\n')
		return DIME_E_MALFORMED;
	end = len - 1;
	if (end > 0 && line[end - 1] == '\r')
		end--;
	for (size_t i = 0; i < end; i++)
		if (line[i] == '\0' || line[i] == '\r' || line[i] == '\n')
			return DIME_E_MALFORMED;
	if (end < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
	    line[2] < '0' || line[2] > '9' || (end > 3 && line[3] != ' ' && line[3] != '-'))
		return DIME_E_MALFORMED;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (r->n_lines > 0 && code != r->code)
		return DIME_E_MALFORMED;
	last = end == 3 || line[3] == ' ';
	t = line + (end > 3 ? 4 : 3);
	tl = end > 3 ? end - 4 : 0;
	if (r->ehlo && r->n_lines > 0) {
		size_t kl = 0;

		while (kl < tl && t[kl] != ' ')
			kl++;
		if (kl == 8 && strncasecmp(t, "SMTPUTF8", 8) == 0)
			r->utf8_ok = 1;
		if (kl == 8 && strncasecmp(t, "8BITMIME", 8) == 0)
			r->mime8_ok = 1;
	}
	r->code = code;
	r->n_lines++;
	/* the caller sees the last line: its enhanced code apart, its text printable */
	r->enh[0] = '\0';
	el = smtpc_enh(t, tl, code);
	if (el > 0) {
		memcpy(r->enh, t, el);
		r->enh[el] = '\0';
		t += el;
		tl -= el;
		while (tl > 0 && *t == ' ') {
			t++;
			tl--;
		}
	}
	for (size_t i = 0; i < tl && o < sizeof(r->text) - 1; i++) {
		unsigned char ch = (unsigned char)t[i];

		r->text[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	r->text[o] = '\0';
	if (!last)
		return DIME_E_AGAIN;
	r->done = 1;
	return DIME_OK;
}

/* Internal, exported for tests/fuzz/fuzz_smtpc_reply.c only (not part of dime/smtpc.h): the
 * reply at the start of buf (len octets) read with the client's own rules.
 * Returns: DIME_OK (the first *used octets are a whole reply: r's code, enh, text; *caps bit 0
 * SMTPUTF8, bit 1 8BITMIME among its lines after the first), DIME_E_AGAIN (no whole reply yet),
 * DIME_E_LIMIT (a line over 2048 octets, more than 256 lines), DIME_E_MALFORMED. r, *caps and
 * *used are zeroed on failure (r->stage stays NULL). */
int dime_smtpc_reply_scan(struct dime_smtpc_reply *r, unsigned *caps, size_t *used, const char *buf,
			  size_t len);

int
dime_smtpc_reply_scan(struct dime_smtpc_reply *r, unsigned *caps, size_t *used, const char *buf,
		      size_t len)
{
	struct smtpc_rd rd;
	size_t off = 0;
	int rc = DIME_E_AGAIN;

	memset(r, 0, sizeof(*r));
	*caps = 0;
	*used = 0;
	memset(&rd, 0, sizeof(rd));
	rd.ehlo = 1;
	while (rc == DIME_E_AGAIN) {
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t n;

		if (nl == NULL)
			return len - off >= SMTPC_LINE_MAX ? DIME_E_LIMIT : DIME_E_AGAIN;
		n = (size_t)(nl - (buf + off)) + 1;
		rc = smtpc_reply_line(&rd, buf + off, n);
		off += n;
	}
	if (rc != DIME_OK)
		return rc;
	r->code = rd.code;
	memcpy(r->enh, rd.enh, sizeof(r->enh));
	memcpy(r->text, rd.text, sizeof(r->text));
	*caps = (rd.utf8_ok ? 1u : 0u) | (rd.mime8_ok ? 2u : 0u);
	*used = off;
	return DIME_OK;
}

/* Read one whole reply within ms. Returns: DIME_OK, or DIME_E_IO (connection closed or failed,
 * deadline passed, a reply that breaks the grammar or the limits; *why says which). */
static int
smtpc_reply(struct dime_smtpc *c, struct smtpc_rd *r, unsigned ms, int ehlo, const char **why)
{
	uint64_t deadline = smtpc_now() + ms;

	memset(r, 0, sizeof(*r));
	r->ehlo = ehlo;
	for (;;) {
		char *nl = memchr(c->in + c->in_off, '\n', c->in_len - c->in_off);
		ssize_t k;
		int rc;

		if (nl != NULL) {
			size_t n = (size_t)(nl - (c->in + c->in_off)) + 1;

			rc = smtpc_reply_line(r, c->in + c->in_off, n);
			c->in_off += n;
			if (rc == DIME_OK)
				return DIME_OK;
			if (rc != DIME_E_AGAIN) {
				*why = rc == DIME_E_LIMIT ? "reply over the limits"
							  : "malformed reply";
				return DIME_E_IO;
			}
			continue;
		}
		if (c->in_len - c->in_off >= SMTPC_LINE_MAX) {
			*why = "reply line over 2048 octets";
			return DIME_E_IO;
		}
		if (c->in_off > 0) {
			memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
			c->in_len -= c->in_off;
			c->in_off = 0;
		}
		if (smtpc_wait(c->fd, POLLIN, deadline) == 0) {
			*why = "timed out waiting for a reply";
			return DIME_E_IO;
		}
		k = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			continue;
		if (k <= 0) {
			*why = k == 0 ? "connection closed by the server" : "connection failed";
			return DIME_E_IO;
		}
		c->in_len += (size_t)k;
	}
}

/* Send one command line and read its reply. Returns: as smtpc_reply, or DIME_E_IO when the
 * write failed. */
static int
smtpc_cmd(struct dime_smtpc *c, struct smtpc_rd *r, const char *line, int ehlo, const char **why)
{
	if (smtpc_write(c, line, strlen(line), 0, NULL) != DIME_OK) {
		*why = "connection failed while sending";
		return DIME_E_IO;
	}
	return smtpc_reply(c, r, c->timeout_ms, ehlo, why);
}

/* ---- the message ---- */

/* Send msg CRLF-normalised (CRLF, bare LF and bare CR each end a line), dot-stuffed, with a
 * final CRLF when the last line lacks one, then ".\r\n". *early as smtpc_write.
 * Returns: DIME_OK or DIME_E_IO. */
static int
smtpc_body(struct dime_smtpc *c, const uint8_t *msg, size_t len, int *early)
{
	size_t o = 0;
	int bol = 1; /* at the beginning of a line */

	for (size_t i = 0; i < len; i++) {
		uint8_t ch = msg[i];

		/* room for the worst step: a stuffed dot, or CRLF */
		if (o + 2 > sizeof(c->out)) {
			if (smtpc_write(c, c->out, o, 1, early) != DIME_OK || *early)
				return *early ? DIME_OK : DIME_E_IO;
			o = 0;
		}
		if (ch == '\r' || ch == '\n') {
			if (ch == '\r' && i + 1 < len && msg[i + 1] == '\n')
				i++;
			c->out[o++] = '\r';
			c->out[o++] = '\n';
			bol = 1;
			continue;
		}
		if (bol && ch == '.')
			c->out[o++] = '.';
		c->out[o++] = ch;
		bol = 0;
	}
	if (o + 5 > sizeof(c->out)) {
		if (smtpc_write(c, c->out, o, 1, early) != DIME_OK || *early)
			return *early ? DIME_OK : DIME_E_IO;
		o = 0;
	}
	if (!bol) {
		c->out[o++] = '\r';
		c->out[o++] = '\n';
	}
	memcpy(c->out + o, ".\r\n", 3);
	o += 3;
	return smtpc_write(c, c->out, o, 1, early);
}

/* ---- the client ---- */

static char *
smtpc_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

int
dime_smtpc_new(struct dime_smtpc **out, const struct dime_smtpc_conf *conf)
{
	struct dime_smtpc *c;

	*out = NULL;
	if (conf == NULL || conf->host == NULL || conf->host[0] == '\0' || conf->port == 0 ||
	    conf->port > 65535 || conf->helo == NULL || conf->helo[0] == '\0' ||
	    strlen(conf->helo) > 255 || strpbrk(conf->helo, "\r\n ") != NULL)
		return DIME_E_INVALID;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return DIME_E_NOMEM;
	c->fd = -1;
	c->host = smtpc_strdup(conf->host);
	c->helo = smtpc_strdup(conf->helo);
	if (c->host == NULL || c->helo == NULL) {
		dime_smtpc_free(c);
		return DIME_E_NOMEM;
	}
	c->port = conf->port;
	c->lmtp = conf->lmtp != 0;
	c->timeout_ms = conf->timeout_ms != 0 ? conf->timeout_ms : SMTPC_TIMEOUT;
	c->data_timeout_ms =
	    conf->data_timeout_ms != 0 ? conf->data_timeout_ms : SMTPC_DATA_TIMEOUT;
	*out = c;
	return DIME_OK;
}

void
dime_smtpc_free(struct dime_smtpc *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0) {
		struct smtpc_rd r;
		const char *why;
		unsigned ms = c->timeout_ms < SMTPC_QUIT_MS ? c->timeout_ms : SMTPC_QUIT_MS;

		/* polite, bounded: the peer's 221 is waited for at most SMTPC_QUIT_MS */
		if (smtpc_write(c, "QUIT\r\n", 6, 0, NULL) == DIME_OK)
			(void)smtpc_reply(c, &r, ms, 0, &why);
		smtpc_close(c);
	}
	free(c->host);
	free(c->helo);
	free(c);
}

/* An address fit for "<...>" in a command line: no CR, LF, '<' or '>'. */
static int
smtpc_addr_ok(const char *a)
{
	return a != NULL && strpbrk(a, "\r\n<>") == NULL;
}

/* The connection's state allows a transaction: connect, greeting, EHLO/LHLO (HELO when an SMTP
 * peer refuses EHLO). Returns: DIME_OK; DIME_E_AGAIN when a reply refused (in rd, stage set);
 * DIME_E_IO. */
static int
smtpc_open(struct dime_smtpc *c, struct smtpc_rd *rd, const char **stage, const char **why)
{
	int rc;

	*stage = "connect";
	if (smtpc_connect(c, why) != DIME_OK)
		return DIME_E_IO;
	*stage = "greeting";
	if (smtpc_reply(c, rd, c->timeout_ms, 0, why) != DIME_OK)
		return DIME_E_IO;
	*why = "unexpected reply code";
	if (rd->code != 220)
		return rd->code >= 400 ? DIME_E_AGAIN : DIME_E_IO;
	*stage = "ehlo";
	snprintf(c->cmd, sizeof(c->cmd), "%s %s\r\n", c->lmtp ? "LHLO" : "EHLO", c->helo);
	if ((rc = smtpc_cmd(c, rd, c->cmd, 1, why)) != DIME_OK)
		return rc;
	if (rd->code >= 500 && !c->lmtp) {
		/* RFC 5321 3.2: a peer without extensions; no SMTPUTF8, no 8BITMIME */
		snprintf(c->cmd, sizeof(c->cmd), "HELO %s\r\n", c->helo);
		if ((rc = smtpc_cmd(c, rd, c->cmd, 0, why)) != DIME_OK)
			return rc;
	}
	if (rd->code / 100 != 2)
		return rd->code >= 400 ? DIME_E_AGAIN : DIME_E_IO;
	c->utf8_ok = rd->utf8_ok;
	c->mime8_ok = rd->mime8_ok;
	return DIME_OK;
}

/* The connection was used before: is it still there? A peer that timed it out has sent 421
 * and closed, which shows as readable input before we said anything. */
static int
smtpc_stale(struct dime_smtpc *c)
{
	struct pollfd p = {c->fd, POLLIN, 0};

	return c->in_len > c->in_off || poll(&p, 1, 0) != 0;
}

static void
smtpc_result(struct dime_smtpc_reply *r, const struct smtpc_rd *rd, const char *stage)
{
	r->code = rd->code;
	memcpy(r->enh, rd->enh, sizeof(r->enh));
	memcpy(r->text, rd->text, sizeof(r->text));
	r->stage = stage;
}

int
dime_smtpc_send(struct dime_smtpc *c, struct dime_smtpc_reply *r, const char *from,
		const char *const *to, size_t n, const uint8_t *msg, size_t len, int utf8)
{
	struct smtpc_rd rd;
	const char *stage = "connect", *why = "";
	int rc = DIME_E_IO, mime8 = 0, early = 0;
	size_t accepted = 0;

	memset(r, 0, sizeof(*r));
	r->stage = stage;
	if (n == 0 || to == NULL || !smtpc_addr_ok(from) || (msg == NULL && len > 0))
		return DIME_E_INVALID;
	/* "RCPT TO:<" addr ">\r\n" and the MAIL line's params must fit one command line */
	if (strlen(from) > SMTPC_CMD_MAX - 64)
		return DIME_E_INVALID;
	for (size_t i = 0; i < n; i++)
		if (!smtpc_addr_ok(to[i]) || strlen(to[i]) > SMTPC_CMD_MAX - 64)
			return DIME_E_INVALID;
	for (size_t i = 0; i < len && !mime8; i++)
		mime8 = msg[i] >= 0x80;

	/* A reused connection the peer dropped meanwhile is reopened once: on input waiting
	 * before we spoke, or on EOF or 421 in answer to the transaction's first command. */
	for (int attempt = 0; attempt < 2; attempt++) {
		int reused = c->fd >= 0;

		if (reused && smtpc_stale(c)) {
			smtpc_close(c);
			reused = 0;
		}
		if (!reused) {
			rc = smtpc_open(c, &rd, &stage, &why);
			if (rc == DIME_E_AGAIN) {
				smtpc_result(r, &rd, stage);
				smtpc_close(c);
				return DIME_OK;
			}
			if (rc != DIME_OK)
				goto io;
		}
		if (c->used) {
			stage = "mail"; /* RSET opens the transaction */
			rc = smtpc_cmd(c, &rd, "RSET\r\n", 0, &why);
			if (rc == DIME_OK && rd.code / 100 != 2)
				rc = DIME_E_IO; /* 421 or worse: this connection is done */
			if (rc != DIME_OK) {
				smtpc_close(c);
				if (attempt == 0)
					continue;
				goto io;
			}
		}
		c->used = 1;
		stage = "mail";
		snprintf(c->cmd, sizeof(c->cmd), "MAIL FROM:<%s>%s%s\r\n", from,
			 utf8 && c->utf8_ok ? " SMTPUTF8" : "",
			 mime8 && c->mime8_ok ? " BODY=8BITMIME" : "");
		rc = smtpc_cmd(c, &rd, c->cmd, 0, &why);
		if (reused && attempt == 0 && (rc != DIME_OK || rd.code == 421)) {
			smtpc_close(c);
			continue;
		}
		break;
	}
	if (rc != DIME_OK)
		goto io;
	if (rd.code / 100 != 2)
		goto refused;
	stage = "rcpt";
	for (size_t i = 0; i < n; i++) {
		snprintf(c->cmd, sizeof(c->cmd), "RCPT TO:<%s>\r\n", to[i]);
		if ((rc = smtpc_cmd(c, &rd, c->cmd, 0, &why)) != DIME_OK)
			goto io;
		if (rd.code / 100 != 2)
			goto refused;
		accepted++;
	}
	stage = "data";
	if ((rc = smtpc_cmd(c, &rd, "DATA\r\n", 0, &why)) != DIME_OK)
		goto io;
	if (rd.code != 354)
		goto refused;
	stage = "dot";
	if (smtpc_body(c, msg, len, &early) != DIME_OK) {
		why = "connection failed while sending the message";
		rc = DIME_E_IO;
		goto io;
	}
	/* SMTP: one reply. LMTP (RFC 2033 4.2): one per accepted recipient, in order; the first
	 * that is not 2xx decides. A reply before the whole message went out is a refusal of it
	 * (the peer stopped reading), and the stream is out of step after it. */
	{
		struct dime_smtpc_reply first;
		size_t want = c->lmtp && !early ? accepted : 1;

		memset(&first, 0, sizeof(first));
		for (size_t i = 0; i < want; i++) {
			if ((rc = smtpc_reply(c, &rd, c->data_timeout_ms, 0, &why)) != DIME_OK)
				goto io;
			if (rd.code / 100 == 3 || (early && rd.code / 100 == 2)) {
				why = early ? "a positive reply before the end of the message"
					    : "a 3xx reply to the end of the message";
				rc = DIME_E_IO;
				goto io;
			}
			if (first.code == 0 || (first.code / 100 == 2 && rd.code / 100 != 2))
				smtpc_result(&first, &rd, stage);
		}
		*r = first;
		if (early)
			smtpc_close(c);
		else if (r->code == 421)
			smtpc_close(c);
		return DIME_OK;
	}
refused:
	/* 3xx where 2xx belongs (or 354 expected and a 2xx came): the peer is confused */
	if (rd.code / 100 != 4 && rd.code / 100 != 5) {
		why = "unexpected reply code";
		rc = DIME_E_IO;
		goto io;
	}
	smtpc_result(r, &rd, stage);
	if (rd.code == 421)
		smtpc_close(c);
	return DIME_OK;
io:
	smtpc_close(c);
	memset(r, 0, sizeof(*r));
	r->stage = stage;
	snprintf(r->text, sizeof(r->text), "%s", why);
	return DIME_E_IO;
}

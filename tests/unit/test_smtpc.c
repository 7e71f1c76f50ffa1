/* The reinjection client against a scripted SMTP/LMTP server thread on 127.0.0.1 (replies it
 * sends, bytes it records): byte-exact transfer, replies at every stage, lost connections,
 * deadlines, reuse and reconnection, LMTP; and one transaction into smtp-sink when installed. */

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dime/smtpc.h"
#include "tlib.h"

/* ---- the scripted server ---- */

enum t_act {
	T_REPLY,       /* send the reply */
	T_CLOSE,       /* close the connection without a reply */
	T_SILENT,      /* never answer; keep reading until the client goes */
	T_REPLY_CLOSE, /* send the reply, then close */
	T_REPLY_DEAF,  /* send the reply, then read nothing more (the client must not hang) */
};

struct t_rule {
	const char *verb; /* "GREETING", "EHLO", "LHLO", "HELO", "MAIL", "RCPT", "DATA", ".",
			     "RSET", "QUIT" */
	unsigned nth; /* the nth time the verb comes (1-based, over all connections); 0: every */
	const char *reply;
	enum t_act act;
};

#define T_VERBS 10
static const char *const t_verbs[T_VERBS] = {"GREETING", "EHLO", "LHLO", "HELO", "MAIL",
					     "RCPT",	 "DATA", ".",	 "RSET", "QUIT"};

struct t_srv {
	int lfd, stop[2];
	unsigned port;
	pthread_t th;
	const struct t_rule *rules;
	size_t n_rules;
	pthread_mutex_t mu;
	/* records, under mu */
	unsigned counts[T_VERBS];
	unsigned conns;
	char *log; /* every byte received */
	size_t log_len, log_cap;
	char *data; /* the last DATA phase's bytes as received, ".\r\n" included */
	size_t data_len, data_cap;
};

static void
t_append(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t nc = (*len + n + 1) * 2;
		char *b = realloc(*buf, nc);

		if (b == NULL)
			abort();
		*buf = b;
		*cap = nc;
	}
	memcpy(*buf + *len, p, n);
	*len += n;
	(*buf)[*len] = '\0';
}

static int
t_verb_index(const char *verb)
{
	for (int i = 0; i < T_VERBS; i++)
		if (strcmp(t_verbs[i], verb) == 0)
			return i;
	return -1;
}

static const char *
t_default(const char *verb)
{
	static const char *const d[T_VERBS] = {
	    "220 srv.example ESMTP\r\n",
	    "250-srv.example\r\n250-PIPELINING\r\n250-8bitmime\r\n250-SMTPUTF8\r\n"
	    "250 ENHANCEDSTATUSCODES\r\n",
	    "250-srv.example\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n",
	    "250 srv.example\r\n",
	    "250 2.1.0 Ok\r\n",
	    "250 2.1.5 Ok\r\n",
	    "354 End data with <CR><LF>.<CR><LF>\r\n",
	    "250 2.0.0 Ok: queued as 1A2B\r\n",
	    "250 2.0.0 Ok\r\n",
	    "221 2.0.0 Bye\r\n",
	};
	int i = t_verb_index(verb);

	return i >= 0 ? d[i] : "500 5.5.2 Error: command not recognized\r\n";
}

/* Wait until fd is readable or the test says stop. Returns: 1 readable, 0 stop. */
static int
t_srv_wait(struct t_srv *s, int fd)
{
	struct pollfd p[2] = {{s->stop[0], POLLIN, 0}, {fd, POLLIN, 0}};

	for (;;) {
		if (poll(p, fd >= 0 ? 2 : 1, -1) < 0)
			continue;
		if (p[0].revents != 0)
			return 0;
		if (p[1].revents != 0)
			return 1;
	}
}

/* Choose the reply to verb and count it. Returns: the action; *reply the bytes. */
static enum t_act
t_srv_pick(struct t_srv *s, const char *verb, const char **reply)
{
	int vi = t_verb_index(verb);
	unsigned nth;

	pthread_mutex_lock(&s->mu);
	nth = vi >= 0 ? ++s->counts[vi] : 0;
	pthread_mutex_unlock(&s->mu);
	*reply = t_default(verb);
	for (size_t i = 0; i < s->n_rules; i++) {
		const struct t_rule *r = &s->rules[i];

		if (strcmp(r->verb, verb) == 0 && (r->nth == 0 || r->nth == nth)) {
			*reply = r->reply;
			return r->act;
		}
	}
	return T_REPLY;
}

/* Carry out act. Returns: 1 keep going, 0 the connection is over. */
static int
t_srv_act(struct t_srv *s, int fd, enum t_act act, const char *reply)
{
	if (act != T_CLOSE && act != T_SILENT && reply != NULL)
		(void)!send(fd, reply, strlen(reply), MSG_NOSIGNAL);
	if (act == T_SILENT) {
		char b[4096];

		while (t_srv_wait(s, fd) && recv(fd, b, sizeof(b), 0) > 0)
			;
		return 0;
	}
	if (act == T_REPLY_DEAF) {
		(void)t_srv_wait(s, -1);
		return 0;
	}
	return act == T_REPLY;
}

static void
t_srv_conn(struct t_srv *s, int fd)
{
	char buf[8192], line[4096];
	size_t ll = 0;
	int in_data = 0, lmtp = 0, lmtp_rcpts = 0;
	const char *reply;
	enum t_act act;

	pthread_mutex_lock(&s->mu);
	s->conns++;
	pthread_mutex_unlock(&s->mu);
	act = t_srv_pick(s, "GREETING", &reply);
	if (!t_srv_act(s, fd, act, reply))
		return;
	while (t_srv_wait(s, fd)) {
		ssize_t k = recv(fd, buf, sizeof(buf), 0);

		if (k <= 0)
			return;
		pthread_mutex_lock(&s->mu);
		t_append(&s->log, &s->log_len, &s->log_cap, buf, (size_t)k);
		pthread_mutex_unlock(&s->mu);
		for (ssize_t i = 0; i < k; i++) {
			char verb[8] = "";

			if (in_data) {
				int end;

				pthread_mutex_lock(&s->mu);
				t_append(&s->data, &s->data_len, &s->data_cap, buf + i, 1);
				end = (s->data_len == 3 && memcmp(s->data, ".\r\n", 3) == 0) ||
				      (s->data_len >= 5 &&
				       memcmp(s->data + s->data_len - 5, "\r\n.\r\n", 5) == 0);
				pthread_mutex_unlock(&s->mu);
				if (!end)
					continue;
				in_data = 0;
				act = t_srv_pick(s, ".", &reply);
				if (act == T_REPLY && strcmp(reply, t_default(".")) == 0 && lmtp &&
				    lmtp_rcpts > 1) /* LMTP: one reply per accepted recipient */
					for (int j = 1; j < lmtp_rcpts; j++)
						(void)!send(fd, reply, strlen(reply), MSG_NOSIGNAL);
				lmtp_rcpts = 0;
				if (!t_srv_act(s, fd, act, reply))
					return;
				continue;
			}
			if (ll < sizeof(line) - 1)
				line[ll++] = buf[i];
			if (buf[i] != '\n')
				continue;
			line[ll] = '\0';
			ll = 0;
			for (size_t j = 0; j < 4 && line[j] >= 'A' && line[j] <= 'Z'; j++) {
				verb[j] = line[j];
				verb[j + 1] = '\0';
			}
			act = t_srv_pick(s, verb, &reply);
			if (strcmp(verb, "LHLO") == 0)
				lmtp = 1;
			if (strcmp(verb, "QUIT") == 0 && act == T_REPLY)
				act = T_REPLY_CLOSE;
			if (strcmp(verb, "RCPT") == 0 && reply != NULL && reply[0] == '2')
				lmtp_rcpts++;
			if (strcmp(verb, "RSET") == 0)
				lmtp_rcpts = 0;
			if (strcmp(verb, "DATA") == 0 && reply != NULL &&
			    strncmp(reply, "354", 3) == 0) {
				pthread_mutex_lock(&s->mu);
				s->data_len = 0;
				pthread_mutex_unlock(&s->mu);
				in_data = 1;
			}
			if (!t_srv_act(s, fd, act, reply))
				return;
		}
	}
}

static void *
t_srv_main(void *arg)
{
	struct t_srv *s = arg;

	while (t_srv_wait(s, s->lfd)) {
		int fd = accept(s->lfd, NULL, NULL);

		if (fd < 0)
			continue;
		t_srv_conn(s, fd);
		close(fd);
	}
	return NULL;
}

static int
t_listen(unsigned *port)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 8) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
		perror("listen");
		exit(1);
	}
	*port = ntohs(a.sin_port);
	return fd;
}

static void
t_srv_start(struct t_srv *s, const struct t_rule *rules, size_t n_rules)
{
	memset(s, 0, sizeof(*s));
	s->rules = rules;
	s->n_rules = n_rules;
	s->lfd = t_listen(&s->port);
	if (pipe(s->stop) != 0 || pthread_mutex_init(&s->mu, NULL) != 0 ||
	    pthread_create(&s->th, NULL, t_srv_main, s) != 0) {
		perror("server");
		exit(1);
	}
}

static void
t_srv_stop(struct t_srv *s)
{
	(void)!write(s->stop[1], "x", 1);
	pthread_join(s->th, NULL);
	close(s->lfd);
	close(s->stop[0]);
	close(s->stop[1]);
	pthread_mutex_destroy(&s->mu);
	free(s->log);
	free(s->data);
}

static unsigned
t_count(struct t_srv *s, const char *verb)
{
	unsigned n;

	pthread_mutex_lock(&s->mu);
	n = s->counts[t_verb_index(verb)];
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* The DATA bytes last received equal want (want_len octets). */
static int
t_data_is(struct t_srv *s, const char *want, size_t want_len)
{
	int ok;

	pthread_mutex_lock(&s->mu);
	ok = s->data_len == want_len && memcmp(s->data, want, want_len) == 0;
	if (!ok)
		fprintf(stderr, "  got %zu octets: %.200s\n", s->data_len,
			s->data != NULL ? s->data : "");
	pthread_mutex_unlock(&s->mu);
	return ok;
}

static int
t_log_has(struct t_srv *s, const char *needle)
{
	int ok;

	pthread_mutex_lock(&s->mu);
	ok = s->log != NULL && strstr(s->log, needle) != NULL;
	pthread_mutex_unlock(&s->mu);
	return ok;
}

static struct dime_smtpc *
t_client(unsigned port, int lmtp, unsigned timeout_ms, unsigned data_timeout_ms)
{
	struct dime_smtpc_conf conf = {"127.0.0.1", port,	"gw.example.org",
				       lmtp,	    timeout_ms, data_timeout_ms};
	struct dime_smtpc *c = NULL;

	if (dime_smtpc_new(&c, &conf) != DIME_OK) {
		fprintf(stderr, "dime_smtpc_new failed\n");
		exit(1);
	}
	return c;
}

static const char *const t_one[] = {"user@example.net"};
static const char *const t_three[] = {"a@example.net", "b@example.net", "c@example.net"};

/* Send msg (a C string) to t_one. */
static int
t_send(struct dime_smtpc *c, struct dime_smtpc_reply *r, const char *msg)
{
	return dime_smtpc_send(c, r, "sender@example.org", t_one, 1, (const uint8_t *)msg,
			       strlen(msg), 0);
}

#define T_REPLY_IS(rc, r, want_rc, want_code, want_stage, name)                                    \
	T_CHECK((rc) == (want_rc) && (r).code == (want_code) &&                                    \
		    strcmp((r).stage != NULL ? (r).stage : "(null)", want_stage) == 0,             \
		"%s: got rc %d code %d stage %s (%s), want rc %d code %d stage %s", name, rc,      \
		(r).code, (r).stage != NULL ? (r).stage : "(null)", (r).text, want_rc, want_code,  \
		want_stage)

/* ---- cases ---- */

/* Byte-exact transfer: the wire form of each message, on one connection (one EHLO, RSET
 * before each later transaction). */
static void
t_transfer(void)
{
	static const struct {
		const char *name, *msg, *wire;
	} v[] = {
	    {"crlf", "Subject: a\r\n\r\nbody\r\n", "Subject: a\r\n\r\nbody\r\n.\r\n"},
	    {"no final crlf", "Subject: a\r\n\r\nbody", "Subject: a\r\n\r\nbody\r\n.\r\n"},
	    {"bare lf", "A: 1\n\nx\ny\n", "A: 1\r\n\r\nx\r\ny\r\n.\r\n"},
	    {"bare cr", "A: 1\r\rx\ry", "A: 1\r\n\r\nx\r\ny\r\n.\r\n"},
	    {"dots", ".\r\n..\r\n.x\n.\r.", "..\r\n...\r\n..x\r\n..\r\n..\r\n.\r\n"},
	    {"dot first", ".hidden\r\n", "..hidden\r\n.\r\n"},
	    {"dot mid-line", "a.b\r\n. .\r\n", "a.b\r\n.. .\r\n.\r\n"},
	    {"empty", "", ".\r\n"},
	    {"only lf", "\n", "\r\n.\r\n"},
	    {"cr cr lf", "a\r\r\nb", "a\r\n\r\nb\r\n.\r\n"},
	    {"lf cr", "a\n\rb", "a\r\n\r\nb\r\n.\r\n"},
	};
	struct t_srv s;
	struct dime_smtpc *c;
	struct dime_smtpc_reply r;
	int rc;

	t_srv_start(&s, NULL, 0);
	c = t_client(s.port, 0, 5000, 5000);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		rc = t_send(c, &r, v[i].msg);
		T_REPLY_IS(rc, r, DIME_OK, 250, "dot", v[i].name);
		T_CHECK(strcmp(r.enh, "2.0.0") == 0 && strcmp(r.text, "Ok: queued as 1A2B") == 0,
			"%s: got enh '%s' text '%s', want 2.0.0 / Ok: queued as 1A2B", v[i].name,
			r.enh, r.text);
		T_CHECK(t_data_is(&s, v[i].wire, strlen(v[i].wire)), "%s: wire bytes differ",
			v[i].name);
	}
	T_CHECK(s.conns == 1 && t_count(&s, "EHLO") == 1, "reuse: got %u connections %u EHLO",
		s.conns, t_count(&s, "EHLO"));
	T_CHECK(t_count(&s, "RSET") == sizeof(v) / sizeof(v[0]) - 1, "reuse: got %u RSET, want %zu",
		t_count(&s, "RSET"), sizeof(v) / sizeof(v[0]) - 1);
	T_CHECK(t_log_has(&s, "EHLO gw.example.org\r\nMAIL FROM:<sender@example.org>\r\n"
			      "RCPT TO:<user@example.net>\r\nDATA\r\n"),
		"the first transaction's commands");
	T_CHECK(!t_log_has(&s, "BODY=8BITMIME") && !t_log_has(&s, "SMTPUTF8"),
		"no params for 7-bit mail");

	/* 8-bit bytes: BODY=8BITMIME (advertised in lower case); utf8: SMTPUTF8; null path */
	{
		static const uint8_t m8[] = "Subject: caf\xc3\xa9\r\n\r\n\xff\x80\x00z";
		const char *const to8[] = {"us\xc3\xa9r@example.net"};

		rc = dime_smtpc_send(c, &r, "", to8, 1, m8, sizeof(m8) - 1, 1);
		T_REPLY_IS(rc, r, DIME_OK, 250, "dot", "8bit");
		T_CHECK(t_log_has(&s, "MAIL FROM:<> SMTPUTF8 BODY=8BITMIME\r\n"),
			"8bit: MAIL params missing");
		T_CHECK(t_data_is(&s, "Subject: caf\xc3\xa9\r\n\r\n\xff\x80\x00z\r\n.\r\n",
				  sizeof(m8) - 1 + 5),
			"8bit: wire bytes differ");
	}
	/* a message over several send buffers, against a reference encoder */
	{
		size_t n = 200000, wl = 0;
		uint8_t *m = malloc(n);
		char *w = malloc(2 * n + 8);
		int bol = 1;

		if (m == NULL || w == NULL)
			abort();
		for (size_t i = 0; i < n; i++) {
			static const char alpha[] = "..\r\n\nab.c\rdef ";

			m[i] = (uint8_t)alpha[t_rand_below(sizeof(alpha) - 1)];
		}
		for (size_t i = 0; i < n; i++) {
			if (m[i] == '\r' || m[i] == '\n') {
				if (m[i] == '\r' && i + 1 < n && m[i + 1] == '\n')
					i++;
				w[wl++] = '\r';
				w[wl++] = '\n';
				bol = 1;
				continue;
			}
			if (bol && m[i] == '.')
				w[wl++] = '.';
			w[wl++] = (char)m[i];
			bol = 0;
		}
		if (!bol) {
			w[wl++] = '\r';
			w[wl++] = '\n';
		}
		memcpy(w + wl, ".\r\n", 3);
		wl += 3;
		rc = dime_smtpc_send(c, &r, "a@example.org", t_three, 3, m, n, 0);
		T_REPLY_IS(rc, r, DIME_OK, 250, "dot", "large");
		T_CHECK(t_data_is(&s, w, wl), "large: wire bytes differ");
		free(m);
		free(w);
	}
	dime_smtpc_free(c);
	t_srv_stop(&s);
}

/* A refusal at each stage, multi-line replies, and the connection staying usable. */
static void
t_refusals(void)
{
	static const struct {
		const char *name;
		struct t_rule rule;
		int want_code;
		const char *want_stage, *want_enh, *want_text;
		int next_ok; /* the next transaction succeeds on the same server */
	} v[] = {
	    {"greeting 554",
	     {"GREETING", 1, "554 5.3.2 go away\r\n", T_REPLY_CLOSE},
	     554,
	     "greeting",
	     "5.3.2",
	     "go away",
	     1},
	    {"greeting 421",
	     {"GREETING", 1, "421 busy\r\n", T_REPLY_CLOSE},
	     421,
	     "greeting",
	     "",
	     "busy",
	     1},
	    {"ehlo 421",
	     {"EHLO", 1, "421 4.3.2 shutting down\r\n", T_REPLY_CLOSE},
	     421,
	     "ehlo",
	     "4.3.2",
	     "shutting down",
	     1},
	    {"mail 451",
	     {"MAIL", 1, "451 4.3.0 try later\r\n", T_REPLY},
	     451,
	     "mail",
	     "4.3.0",
	     "try later",
	     1},
	    {"rcpt 550 multi",
	     {"RCPT", 2, "550-5.1.1 first line\r\n550-5.1.1 second\r\n550 5.1.1 No such user\r\n",
	      T_REPLY},
	     550,
	     "rcpt",
	     "5.1.1",
	     "No such user",
	     1},
	    {"rcpt 452",
	     {"RCPT", 1, "452 4.5.3 Too many recipients\r\n", T_REPLY},
	     452,
	     "rcpt",
	     "4.5.3",
	     "Too many recipients",
	     1},
	    {"data 554",
	     {"DATA", 1, "554 5.5.1 Error: no valid recipients\r\n", T_REPLY},
	     554,
	     "data",
	     "5.5.1",
	     "Error: no valid recipients",
	     1},
	    {"dot 451",
	     {".", 1, "451 4.3.0 Error: queue file write error\r\n", T_REPLY},
	     451,
	     "dot",
	     "4.3.0",
	     "Error: queue file write error",
	     1},
	    {"dot 554 multi",
	     {".", 1, "554-5.7.1 a\r\n554 5.7.1 rejected\r\n", T_REPLY},
	     554,
	     "dot",
	     "5.7.1",
	     "rejected",
	     1},
	    {"dot 250 multi",
	     {".", 1, "250-2.0.0 one\r\n250 2.0.0 Ok: queued\r\n", T_REPLY},
	     250,
	     "dot",
	     "2.0.0",
	     "Ok: queued",
	     1},
	    {"enh class mismatch",
	     {".", 1, "550 2.0.0 odd\r\n", T_REPLY},
	     550,
	     "dot",
	     "",
	     "2.0.0 odd",
	     1},
	    {"no text", {".", 1, "451\r\n", T_REPLY}, 451, "dot", "", "", 1},
	    {"bare lf reply",
	     {".", 1, "452 4.3.1 full\n", T_REPLY},
	     452,
	     "dot",
	     "4.3.1",
	     "full",
	     1},
	    {"dot 421",
	     {".", 1, "421 4.4.2 closing\r\n", T_REPLY_CLOSE},
	     421,
	     "dot",
	     "4.4.2",
	     "closing",
	     1},
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct t_srv s;
		struct dime_smtpc *c;
		struct dime_smtpc_reply r;
		int rc;

		t_srv_start(&s, &v[i].rule, 1);
		c = t_client(s.port, 0, 5000, 5000);
		rc = dime_smtpc_send(c, &r, "a@example.org", t_three, 3, (const uint8_t *)"x\r\n",
				     3, 0);
		T_REPLY_IS(rc, r, DIME_OK, v[i].want_code, v[i].want_stage, v[i].name);
		T_CHECK(strcmp(r.enh, v[i].want_enh) == 0 && strcmp(r.text, v[i].want_text) == 0,
			"%s: got enh '%s' text '%s', want '%s' '%s'", v[i].name, r.enh, r.text,
			v[i].want_enh, v[i].want_text);
		if (v[i].next_ok) {
			rc = t_send(c, &r, "y\r\n");
			T_REPLY_IS(rc, r, DIME_OK, 250, "dot", v[i].name);
		}
		dime_smtpc_free(c);
		t_srv_stop(&s);
	}
}

/* Failures with no reply: DIME_E_IO, code 0, the stage reached. */
static void
t_failures_io(void)
{
	static char big[3000];
	static const struct {
		const char *name;
		struct t_rule rule;
		const char *want_stage;
		unsigned timeout_ms;
	} v[] = {
	    {"dropped after dot", {".", 1, NULL, T_CLOSE}, "dot", 5000},
	    {"dropped after data", {"DATA", 1, NULL, T_CLOSE}, "data", 5000},
	    {"dropped at rcpt", {"RCPT", 1, NULL, T_CLOSE}, "rcpt", 5000},
	    {"greeting timeout", {"GREETING", 0, NULL, T_SILENT}, "greeting", 200},
	    {"ehlo timeout", {"EHLO", 0, NULL, T_SILENT}, "ehlo", 200},
	    {"dot timeout", {".", 0, NULL, T_SILENT}, "dot", 200},
	    {"line over 2048", {"MAIL", 1, big, T_REPLY}, "mail", 5000},
	    {"code changes", {"MAIL", 1, "250-a\r\n251 b\r\n", T_REPLY}, "mail", 5000},
	    {"1xx", {"MAIL", 1, "150 b\r\n", T_REPLY}, "mail", 5000},
	    {"6xx", {"RCPT", 1, "650 b\r\n", T_REPLY}, "rcpt", 5000},
	    {"no separator", {"RCPT", 1, "250x\r\n", T_REPLY}, "rcpt", 5000},
	    {"bare cr", {"RCPT", 1, "250 a\rb\r\n", T_REPLY}, "rcpt", 5000},
	    {"3xx to mail", {"MAIL", 1, "354 go\r\n", T_REPLY}, "mail", 5000},
	    {"2xx to data", {"DATA", 1, "250 ok\r\n", T_REPLY}, "data", 5000},
	    {"354 to dot", {".", 1, "354 more\r\n", T_REPLY}, "dot", 5000},
	    {"greeting 250", {"GREETING", 1, "250 hi\r\n", T_REPLY}, "greeting", 5000},
	};

	/* one reply line of 2049 octets with its CRLF: over the limit */
	memset(big, 'x', 2047);
	memcpy(big, "250 ", 4);
	memcpy(big + 2047, "\r\n", 3);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct t_srv s;
		struct dime_smtpc *c;
		struct dime_smtpc_reply r;
		int rc;

		t_srv_start(&s, &v[i].rule, 1);
		c = t_client(s.port, 0, v[i].timeout_ms, v[i].timeout_ms);
		rc = t_send(c, &r, "x\r\n");
		T_REPLY_IS(rc, r, DIME_E_IO, 0, v[i].want_stage, v[i].name);
		T_CHECK(r.enh[0] == '\0' && r.text[0] != '\0', "%s: got enh '%s' text '%s'",
			v[i].name, r.enh, r.text);
		dime_smtpc_free(c);
		t_srv_stop(&s);
	}
	/* the longest line allowed: 2048 octets with CRLF */
	{
		static char edge[2049];
		struct t_rule rule = {"MAIL", 1, edge, T_REPLY};
		struct t_srv s;
		struct dime_smtpc *c;
		struct dime_smtpc_reply r;
		int rc;

		memset(edge, 'y', 2046);
		memcpy(edge, "250 ", 4);
		memcpy(edge + 2046, "\r\n", 3);
		t_srv_start(&s, &rule, 1);
		c = t_client(s.port, 0, 5000, 5000);
		rc = t_send(c, &r, "x\r\n");
		T_REPLY_IS(rc, r, DIME_OK, 250, "dot", "line of 2048");
		dime_smtpc_free(c);
		t_srv_stop(&s);
	}
	/* nobody listening */
	{
		unsigned port;
		int fd = t_listen(&port);
		struct dime_smtpc *c;
		struct dime_smtpc_reply r;
		int rc;

		close(fd);
		c = t_client(port, 0, 2000, 2000);
		rc = t_send(c, &r, "x\r\n");
		T_REPLY_IS(rc, r, DIME_E_IO, 0, "connect", "connection refused");
		dime_smtpc_free(c);
	}
}

/* A server that refuses in the middle of a large message and stops reading: the client reads
 * the refusal instead of waiting to write the rest. */
static void
t_early(void)
{
	static const struct t_rule rule = {"DATA", 1, "354 go\r\n554 5.3.4 Message too big\r\n",
					   T_REPLY_DEAF};
	struct t_srv s;
	struct dime_smtpc *c;
	struct dime_smtpc_reply r;
	size_t n = 8u << 20;
	uint8_t *m = malloc(n);
	int rc;

	if (m == NULL)
		abort();
	memset(m, 'a', n);
	t_srv_start(&s, &rule, 1);
	c = t_client(s.port, 0, 5000, 5000);
	rc = dime_smtpc_send(c, &r, "a@example.org", t_one, 1, m, n, 0);
	T_REPLY_IS(rc, r, DIME_OK, 554, "dot", "early refusal");
	T_CHECK(strcmp(r.enh, "5.3.4") == 0, "early: got enh '%s'", r.enh);
	dime_smtpc_free(c);
	t_srv_stop(&s);
	free(m);
}

/* Reconnection: after the server closed the connection between transactions, and after a
 * 421 to RSET. */
static void
t_reconnect(void)
{
	static const struct {
		const char *name;
		struct t_rule rule;
	} v[] = {
	    {"closed after dot", {".", 1, "250 2.0.0 Ok\r\n", T_REPLY_CLOSE}},
	    {"421 to rset",
	     {"RSET", 1, "421 4.4.2 srv.example Error: timeout exceeded\r\n", T_REPLY_CLOSE}},
	    {"dropped at rset", {"RSET", 1, NULL, T_CLOSE}},
	    {"421 to mail", {"MAIL", 2, "421 4.3.2 closing\r\n", T_REPLY_CLOSE}},
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct t_srv s;
		struct dime_smtpc *c;
		struct dime_smtpc_reply r;
		int rc;

		t_srv_start(&s, &v[i].rule, 1);
		c = t_client(s.port, 0, 5000, 5000);
		for (int k = 0; k < 3; k++) {
			char msg[32], wire[32];

			snprintf(msg, sizeof(msg), "m%d\r\n", k);
			snprintf(wire, sizeof(wire), "m%d\r\n.\r\n", k);
			rc = t_send(c, &r, msg);
			T_REPLY_IS(rc, r, DIME_OK, 250, "dot", v[i].name);
			T_CHECK(t_data_is(&s, wire, strlen(wire)), "%s: data %d", v[i].name, k);
		}
		dime_smtpc_free(c);
		T_CHECK(s.conns == 2 && t_count(&s, "EHLO") == 2 && t_count(&s, ".") == 3,
			"%s: got %u connections, %u EHLO, %u messages; want 2, 2, 3", v[i].name,
			s.conns, t_count(&s, "EHLO"), t_count(&s, "."));
		t_srv_stop(&s);
	}
	/* a fresh connection that fails is not retried */
	{
		static const struct t_rule rule = {"MAIL", 0, "421 4.3.2 closing\r\n",
						   T_REPLY_CLOSE};
		struct t_srv s;
		struct dime_smtpc *c;
		struct dime_smtpc_reply r;
		int rc;

		t_srv_start(&s, &rule, 1);
		c = t_client(s.port, 0, 5000, 5000);
		rc = t_send(c, &r, "x");
		T_REPLY_IS(rc, r, DIME_OK, 421, "mail", "421 on a fresh connection");
		dime_smtpc_free(c);
		T_CHECK(s.conns == 1, "421 on a fresh connection: got %u connections", s.conns);
		t_srv_stop(&s);
	}
}

/* A peer that refuses EHLO gets HELO, and no extension parameters even when asked for. */
static void
t_helo(void)
{
	static const struct t_rule rule = {"EHLO", 0, "502 5.5.2 Error: command not recognized\r\n",
					   T_REPLY};
	static const uint8_t m8[] = "Subject: \xc3\xa9\r\n\r\nx\r\n";
	struct t_srv s;
	struct dime_smtpc *c;
	struct dime_smtpc_reply r;
	int rc;

	t_srv_start(&s, &rule, 1);
	c = t_client(s.port, 0, 5000, 5000);
	rc = dime_smtpc_send(c, &r, "a@example.org", t_one, 1, m8, sizeof(m8) - 1, 1);
	T_REPLY_IS(rc, r, DIME_OK, 250, "dot", "helo");
	T_CHECK(t_log_has(&s, "EHLO gw.example.org\r\nHELO gw.example.org\r\n"
			      "MAIL FROM:<a@example.org>\r\n"),
		"helo: want EHLO, HELO, then MAIL without parameters");
	dime_smtpc_free(c);
	t_srv_stop(&s);
}

/* LMTP: LHLO, one reply per accepted recipient after the dot, the first refusal decides. */
static void
t_lmtp(void)
{
	static const struct {
		const char *name;
		struct t_rule rule;
		int want_code;
		const char *want_text;
	} v[] = {
	    {"all accepted", {"QUIT", 0, "221 bye\r\n", T_REPLY}, 250, "Ok: queued as 1A2B"},
	    {"second refused",
	     {".", 1, "250 2.1.5 a ok\r\n452 4.2.2 b mailbox full\r\n550 5.1.1 c unknown\r\n",
	      T_REPLY},
	     452,
	     "b mailbox full"},
	    {"third refused",
	     {".", 1, "250 2.1.5 a\r\n250-2.1.5 b\r\n250 2.1.5 b\r\n554 5.2.2 c over quota\r\n",
	      T_REPLY},
	     554,
	     "c over quota"},
	    {"reply missing", {".", 1, "250 2.1.5 a\r\n250 2.1.5 b\r\n", T_REPLY}, 0, ""},
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct t_srv s;
		struct dime_smtpc *c;
		struct dime_smtpc_reply r;
		int rc;

		t_srv_start(&s, &v[i].rule, 1);
		c = t_client(s.port, 1, 5000, v[i].want_code == 0 ? 300 : 5000);
		rc = dime_smtpc_send(c, &r, "a@example.org", t_three, 3, (const uint8_t *)"x\r\n",
				     3, 0);
		T_REPLY_IS(rc, r, v[i].want_code == 0 ? DIME_E_IO : DIME_OK, v[i].want_code, "dot",
			   v[i].name);
		if (v[i].want_code != 0)
			T_CHECK(strcmp(r.text, v[i].want_text) == 0, "%s: got text '%s', want '%s'",
				v[i].name, r.text, v[i].want_text);
		T_CHECK(t_log_has(&s, "LHLO gw.example.org\r\n") && t_count(&s, "EHLO") == 0,
			"%s: LHLO", v[i].name);
		/* the stream stays in step: a next transaction works */
		if (v[i].want_code != 0) {
			rc = t_send(c, &r, "y");
			T_REPLY_IS(rc, r, DIME_OK, 250, "dot", v[i].name);
		}
		dime_smtpc_free(c);
		t_srv_stop(&s);
	}
}

static void
t_invalid(void)
{
	struct dime_smtpc_conf conf = {"127.0.0.1", 25, "gw.example.org", 0, 0, 0};
	struct dime_smtpc *c = NULL;
	struct dime_smtpc_reply r;
	const char *const bad[] = {"a<b@example.net"};
	const char *const bad2[] = {"ok@example.net", "x@example.net\r\nRSET"};

	conf.port = 0;
	T_CHECK(dime_smtpc_new(&c, &conf) == DIME_E_INVALID && c == NULL, "port 0");
	conf.port = 25;
	conf.host = NULL;
	T_CHECK(dime_smtpc_new(&c, &conf) == DIME_E_INVALID && c == NULL, "no host");
	conf.host = "127.0.0.1";
	conf.helo = NULL;
	T_CHECK(dime_smtpc_new(&c, &conf) == DIME_E_INVALID && c == NULL, "no helo");
	conf.helo = "gw.example.org";
	T_CHECK(dime_smtpc_new(&c, &conf) == DIME_OK && c != NULL, "valid conf");
	if (c == NULL)
		return;
	/* refused before any connection is tried (port 25 may well have no listener) */
	T_CHECK(dime_smtpc_send(c, &r, "a@example.org", bad, 0, (const uint8_t *)"x", 1, 0) ==
		    DIME_E_INVALID,
		"n 0");
	T_CHECK(dime_smtpc_send(c, &r, "a@example.org", bad, 1, (const uint8_t *)"x", 1, 0) ==
		    DIME_E_INVALID,
		"'<' in a recipient");
	T_CHECK(dime_smtpc_send(c, &r, "a@example.org", bad2, 2, (const uint8_t *)"x", 1, 0) ==
		    DIME_E_INVALID,
		"CRLF in a recipient");
	T_CHECK(dime_smtpc_send(c, &r, "a>@example.org", t_one, 1, (const uint8_t *)"x", 1, 0) ==
		    DIME_E_INVALID,
		"'>' in the sender");
	T_CHECK(dime_smtpc_send(c, &r, "a\n@example.org", t_one, 1, (const uint8_t *)"x", 1, 0) ==
		    DIME_E_INVALID,
		"LF in the sender");
	dime_smtpc_free(c);
	dime_smtpc_free(NULL);
}

/* ---- smtp-sink ---- */

static int
t_sink_find(const char *dir, char *path, size_t cap)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int found = 0;

	if (d == NULL)
		return 0;
	while (!found && (e = readdir(d)) != NULL)
		if (e->d_name[0] != '.') {
			snprintf(path, cap, "%s/%s", dir, e->d_name);
			found = 1;
		}
	closedir(d);
	return found;
}

static void
t_sink(void)
{
	static const char msg[] = "Subject: smtpc sink test\r\nX-Bare: lf\n\n.dot first\r\n"
				  "..two dots\r\na.b\rlast line without crlf";
	static const char want[] = "Subject: smtpc sink test\nX-Bare: lf\n\n.dot first\n"
				   "..two dots\na.b\nlast line without crlf\n";
	char port_s[16], tmpl[4200], path[4400];
	unsigned port;
	int fd = t_listen(&port), rc = DIME_E_IO;
	pid_t pid;
	struct dime_smtpc *c;
	struct dime_smtpc_reply r;
	uint8_t *dump;
	size_t dl = 0;

	if (system("command -v smtp-sink >/dev/null 2>&1") != 0) {
		printf("smtp-sink not installed: its part is skipped\n");
		close(fd);
		return;
	}
	close(fd);
	if (t_mkdtemp("smtpc") != 0)
		return;
	chmod(t_dir, 0777);
	snprintf(port_s, sizeof(port_s), "127.0.0.1:%u", port);
	snprintf(tmpl, sizeof(tmpl), "%s/%%M.", t_dir);
	pid = fork();
	if (pid == 0) {
		if (geteuid() == 0)
			execlp("smtp-sink", "smtp-sink", "-u", "nobody", "-d", tmpl, port_s, "16",
			       (char *)NULL);
		else
			execlp("smtp-sink", "smtp-sink", "-d", tmpl, port_s, "16", (char *)NULL);
		_exit(127);
	}
	if (pid < 0) {
		t_fail("fork: smtp-sink");
		return;
	}
	c = t_client(port, 0, 5000, 5000);
	/* smtp-sink listens a moment after it starts: retry the connection, bounded */
	for (int tries = 0; tries < 200; tries++) {
		rc = dime_smtpc_send(c, &r, "from@example.org", t_one, 1, (const uint8_t *)msg,
				     sizeof(msg) - 1, 0);
		if (rc != DIME_E_IO || strcmp(r.stage, "connect") != 0)
			break;
		(void)poll(NULL, 0, 25);
	}
	T_REPLY_IS(rc, r, DIME_OK, 250, "dot", "smtp-sink");
	dime_smtpc_free(c); /* QUIT: the dump is complete */
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	if (!t_sink_find(t_dir, path, sizeof(path))) {
		t_fail("smtp-sink: no dump file in %s", t_dir);
		t_rm_rf(t_dir);
		return;
	}
	dump = t_read(path, &dl);
	{
		const char *start = strstr((const char *)dump, "Subject: smtpc sink test");
		size_t wl = sizeof(want) - 1,
		       off = start != NULL ? (size_t)(start - (char *)dump) : 0;

		/* the dump: X- headers and a Received: first, then the message with LF line
		 * ends, then an empty line */
		T_CHECK(start != NULL && dl - off >= wl && memcmp(start, want, wl) == 0 &&
			    (dl - off == wl || (dl - off == wl + 1 && start[wl] == '\n')),
			"smtp-sink: the dump differs: %s", start != NULL ? start : "(no message)");
		T_CHECK(strstr((const char *)dump, "X-Mail-Args: <from@example.org>") != NULL &&
			    strstr((const char *)dump, "X-Rcpt-Args: <user@example.net>") != NULL,
			"smtp-sink: envelope");
	}
	free(dump);
	t_rm_rf(t_dir);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN); /* the scripted server writes to clients that left */
	t_invalid();
	t_transfer();
	t_refusals();
	t_failures_io();
	t_early();
	t_reconnect();
	t_lmtp();
	t_helo();
	t_sink();
	return t_done("test_smtpc");
}

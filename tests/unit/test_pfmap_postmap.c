/* The socketmap machine against Postfix's own client: a small server (a child process) feeds the
 * connection to dime_pfmap_sm and answers with dime_pfmap_route_sm from a table of domains, and
 * `postmap -q` (Debian's postfix package) asks it: found, not found, TEMP as a query error,
 * the error(8) next hop for a refusal, the "*" probe, another map name as a permanent error,
 * several keys over one connection. Skipped (77) without postmap. */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dime/pfmap.h"
#include "tlib.h"

#define NEXTHOP "dime:[127.0.0.1]:10025"

static const char *
find_postmap(void)
{
	static const char *const paths[] = {"/usr/sbin/postmap", "/usr/bin/postmap",
					    "/usr/local/sbin/postmap"};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

/* The decision for a domain, as dimed would reach it through dime_send_decide. */
static enum dime_send_action
route_for(const char *domain, const char **why)
{
	*why = NULL;
	if (strcmp(domain, "dmime.example") == 0)
		return DIME_SEND_DMIME;
	if (strcmp(domain, "defer.example") == 0) {
		*why = "the recipient's signet cannot be fetched or validated now";
		return DIME_SEND_DEFER;
	}
	if (strcmp(domain, "refuse.example") == 0) {
		*why = "the recipient has no signet and the destination takes only D/MIME";
		return DIME_SEND_REFUSE;
	}
	return DIME_SEND_NAKED;
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One connection, until Postfix hangs up or the machine closes. */
static void
serve_conn(int fd)
{
	struct dime_pfmap_sm_conf conf = {"dime", 0};
	struct dime_pfmap_route route = {NEXTHOP, DIME_PFMAP_REFUSE_ERROR};
	struct dime_pfmap_sm *m = NULL;
	uint8_t buf[4096];
	size_t have = 0;

	if (dime_pfmap_sm_new(&m, &conf) != DIME_OK)
		_exit(3);
	for (;;) {
		ssize_t r;
		size_t used, n;
		const uint8_t *out;
		const struct dime_pfmap_sm_query *q;

		used = dime_pfmap_sm_feed(m, buf, have);
		memmove(buf, buf + used, have - used);
		have -= used;
		if ((q = dime_pfmap_sm_query(m)) != NULL) {
			struct dime_pfmap_sm_answer a;
			const char *why;
			enum dime_send_action act = route_for(q->domain, &why);

			if (dime_pfmap_route_sm(&a, &route, act, why) != DIME_OK)
				_exit(4);
			a.id = q->id;
			if (dime_pfmap_sm_answer(m, &a) != DIME_OK)
				_exit(4);
		}
		out = dime_pfmap_sm_out(m, &n);
		if (n > 0) {
			if (write_all(fd, out, n) != 0)
				break;
			dime_pfmap_sm_out_done(m, n);
		}
		if (dime_pfmap_sm_actions(m) & DIME_PFMAP_ACT_CLOSE)
			break;
		if (dime_pfmap_sm_query(m) != NULL || (used > 0 && have > 0))
			continue;
		if (have == sizeof(buf))
			_exit(5); /* the machine holds at most one request; cannot happen */
		r = read(fd, buf + have, sizeof(buf) - have);
		if (r <= 0)
			break;
		have += (size_t)r;
	}
	dime_pfmap_sm_free(m);
	close(fd);
}

static void
serve(int lfd)
{
	for (;;) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			_exit(2);
		serve_conn(fd);
	}
}

/* Run a shell command; its stdout and stderr joined into out. Returns its exit status. */
static int
run(const char *cmd, char *out, size_t cap)
{
	FILE *f = popen(cmd, "r");
	size_t n = 0;
	int st;

	out[0] = 0;
	if (f == NULL)
		return -1;
	while (n + 1 < cap) {
		size_t r = fread(out + n, 1, cap - 1 - n, f);

		if (r == 0)
			break;
		n += r;
	}
	out[n] = 0;
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int
main(void)
{
	const char *postmap = find_postmap();
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	char cmd[8192], out[4096], map[128];
	int lfd, rc, n;
	pid_t kid;
	static const struct {
		const char *key, *map, *want; /* want: the whole output, or a part when sub */
		int rc, sub;
	} cases[] = {
	    {"bob@dmime.example", "dime", NEXTHOP "\n", 0, 0},
	    {"Bob@DMIME.Example.", "dime", NEXTHOP "\n", 0, 0},
	    {"bob@naked.example", "dime", "", 1, 0},
	    {"*", "dime", "", 1, 0},
	    {"bob@[192.0.2.1]", "dime", "", 1, 0},
	    {"bob@defer.example", "dime",
	     "socketmap server temporary error: the recipient's signet cannot be fetched", 1, 1},
	    {"bob@refuse.example", "dime",
	     "error:5.7.1 the recipient has no signet and the destination takes only D/MIME\n", 0,
	     0},
	    {"bob@dmime.example", "other", "socketmap server permanent error: unknown map name", 1,
	     1},
	};

	if (postmap == NULL) {
		fprintf(stderr, "test_pfmap_postmap: no postmap, skipped\n");
		return T_SKIP;
	}
	if (t_mkdtemp("pfmap") != 0 || t_write_text(t_path("main.cf"), "") != 0)
		return 1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 8) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
		perror("listen");
		return 1;
	}
	if ((kid = fork()) < 0)
		return 1;
	if (kid == 0)
		serve(lfd);
	close(lfd);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(map, sizeof(map), "socketmap:inet:127.0.0.1:%u:%s",
			 (unsigned)ntohs(sa.sin_port), cases[i].map);
		n = snprintf(cmd, sizeof(cmd), "%s -c %s -q '%s' %s 2>&1", postmap, t_dir,
			     cases[i].key, map);
		if (n < 0 || (size_t)n >= sizeof(cmd)) {
			t_fail("the command does not fit");
			break;
		}
		rc = run(cmd, out, sizeof(out));
		T_CHECK(rc == cases[i].rc && (cases[i].sub ? strstr(out, cases[i].want) != NULL
							   : strcmp(out, cases[i].want) == 0),
			"postmap -q %s (%s): exit %d [%s], want %d [%s]", cases[i].key,
			cases[i].map, rc, out, cases[i].rc, cases[i].want);
	}
	/* several keys over one connection, pipelined by postmap -q - */
	n = snprintf(cmd, sizeof(cmd),
		     "printf 'a@dmime.example\\nb@naked.example\\n*\\nc@refuse.example\\n"
		     "d@dmime.example\\n' | %s -c %s -q - socketmap:inet:127.0.0.1:%u:dime 2>&1",
		     postmap, t_dir, (unsigned)ntohs(sa.sin_port));
	rc = n < 0 || (size_t)n >= sizeof(cmd) ? -1 : run(cmd, out, sizeof(out));
	T_CHECK(rc == 0 && strcmp(out, "a@dmime.example\t" NEXTHOP "\n"
				       "c@refuse.example\terror:5.7.1 the recipient has no signet "
				       "and the destination takes only D/MIME\n"
				       "d@dmime.example\t" NEXTHOP "\n") == 0,
		"postmap -q -: exit %d [%s]", rc, out);

	kill(kid, SIGTERM);
	waitpid(kid, NULL, 0);
	t_rm_rf(t_dir);
	if (t_failures) {
		fprintf(stderr, "test_pfmap_postmap: %d failures\n", t_failures);
		return 1;
	}
	return 0;
}

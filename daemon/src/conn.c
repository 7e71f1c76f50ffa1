/* Connection plumbing shared by dimed's DMTP server (server.c), SMTP listeners (smtpd.c) and
 * socketmap/policy services (pfsvc.c): listeners by mode, the peer's address, held input. */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "conn_int.h"

int
dime_conn_held_add(struct dime_conn_held *h, const uint8_t *p, size_t n)
{
	if (n > DIME_CONN_HELD_MAX - h->len)
		return DIME_E_LIMIT;
	if (h->len + n > h->cap) {
		size_t cap = h->cap ? h->cap : 4096;
		uint8_t *nb;

		while (cap < h->len + n)
			cap *= 2;
		/* not realloc: the old buffer is wiped before it goes back to the heap */
		if ((nb = malloc(cap)) == NULL)
			return DIME_E_NOMEM;
		if (h->p != NULL) {
			memcpy(nb, h->p, h->len);
			sodium_memzero(h->p, h->cap);
			free(h->p);
		}
		h->p = nb;
		h->cap = cap;
	}
	memcpy(h->p + h->len, p, n);
	h->len += n;
	return DIME_OK;
}

void
dime_conn_held_drop(struct dime_conn_held *h, size_t n)
{
	memmove(h->p, h->p + n, h->len - n);
	h->len -= n;
}

void
dime_conn_held_free(struct dime_conn_held *h)
{
	if (h->p != NULL)
		sodium_memzero(h->p, h->cap);
	free(h->p);
	memset(h, 0, sizeof(*h));
}

void
dime_conn_peer_ip(char ip[DIME_CONN_IP_CAP], const struct sockaddr *peer)
{
	if (peer->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)peer)->sin_addr, ip,
			  DIME_CONN_IP_CAP);
	else if (peer->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)peer)->sin6_addr,
			  ip, DIME_CONN_IP_CAP);
	else
		snprintf(ip, DIME_CONN_IP_CAP, "local");
}

int
dime_conn_bind(struct dime_conn_listener ls[DIME_DCONF_MAX_LISTEN], size_t *n_ls,
	       const struct dime_dconf *cf, struct dime_io_loop *loop, unsigned modes,
	       dime_io_accept_fn on_accept, void *owner, char *why, size_t why_cap)
{
	*n_ls = 0;
	for (size_t i = 0; i < cf->n_listen && i < DIME_DCONF_MAX_LISTEN; i++) {
		struct dime_conn_listener *l = &ls[i];
		int fd;

		memset(l, 0, sizeof(*l));
		*n_ls = i + 1;
		if ((modes & (1u << cf->listen[i].mode)) == 0)
			continue; /* another server's (port stays 0) */
		fd = dime_io_tcp_listen(cf->listen[i].host, cf->listen[i].port, &l->port);
		l->owner = owner;
		l->mode = cf->listen[i].mode;
		if (fd < 0 || dime_io_listen(loop, &l->io, fd, on_accept, l) != DIME_OK) {
			snprintf(why, why_cap, "cannot listen on %s:%u: %s", cf->listen[i].host,
				 cf->listen[i].port, strerror(errno));
			if (fd >= 0 && l->io == NULL)
				close(fd);
			dime_conn_unbind(ls, *n_ls);
			return DIME_E_IO;
		}
	}
	return DIME_OK;
}

void
dime_conn_unbind(struct dime_conn_listener *ls, size_t n_ls)
{
	for (size_t i = 0; i < n_ls; i++) {
		dime_io_listener_close(ls[i].io);
		ls[i].io = NULL;
	}
}

size_t
dime_conn_ports(const struct dime_conn_listener *ls, size_t n_ls, unsigned *ports, size_t cap)
{
	size_t n = 0;

	for (; n < n_ls && n < cap; n++)
		ports[n] = ls[n].port;
	return n;
}

void
dime_conn_deadline_arm(struct dime_io_timer **t, struct dime_io_loop *loop, unsigned ms,
		       void (*fire)(void *arg), void *arg)
{
	if (*t != NULL || ms == 0)
		return;
	if (dime_io_timer_add(loop, t, ms, fire, arg) != DIME_OK)
		*t = NULL;
}

void
dime_conn_deadline_stop(struct dime_io_timer **t)
{
	dime_io_timer_cancel(*t);
	*t = NULL;
}

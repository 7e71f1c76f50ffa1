/* TLS on a loop connection with OpenSSL memory BIOs: received ciphertext is written into the
 * read BIO, whatever OpenSSL writes is moved to the connection's send queue. The handshake is
 * driven by received bytes only; no call here blocks. */

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <openssl/buffer.h>
#include <openssl/err.h>

#include "loop_int.h"

/* A fresh memory BIO: an empty one means "wait for more", not end of stream. */
static BIO *
tls_mem_bio(void)
{
	BIO *b = BIO_new(BIO_s_mem());

	if (b != NULL)
		BIO_set_mem_eof_return(b, -1);
	return b;
}

/* A memory BIO keeps its largest buffer for ever (a 64 KiB write leaves 64 KiB behind): once
 * drained, a big one is swapped for a fresh one, so an idle connection holds next to nothing. */
static void
tls_trim(struct dime_io_conn *c)
{
	BUF_MEM *bm = NULL;
	BIO *b;

	if (BIO_ctrl_pending(c->wbio) == 0 && BIO_get_mem_ptr(c->wbio, &bm) == 1 && bm != NULL &&
	    bm->max > IO_TLS_BIO_KEEP && (b = tls_mem_bio()) != NULL) {
		SSL_set0_wbio(c->ssl, b); /* frees the old one */
		c->wbio = b;
	}
	bm = NULL;
	if (BIO_ctrl_pending(c->rbio) == 0 && BIO_get_mem_ptr(c->rbio, &bm) == 1 && bm != NULL &&
	    bm->max > IO_TLS_BIO_KEEP && (b = tls_mem_bio()) != NULL) {
		SSL_set0_rbio(c->ssl, b);
		c->rbio = b;
	}
}

/* Move what OpenSSL wrote (handshake, records, alerts) to the socket queue. */
static void
tls_flush(struct dime_io_conn *c)
{
	char *data = NULL;
	long n;

	if (c->wbio == NULL)
		return;
	n = BIO_get_mem_data(c->wbio, &data);
	if (n <= 0)
		return;
	if (io_queue_put(&c->sq, data, (size_t)n) != DIME_OK) {
		io_conn_fail(c, ENOMEM);
		return;
	}
	(void)BIO_reset(c->wbio);
	io_conn_kick(c);
}

int
io_tls_start(struct dime_io_conn *c, SSL_CTX *ctx, int server, const char *host)
{
	SSL *ssl = SSL_new(ctx);
	BIO *rb = tls_mem_bio(), *wb = tls_mem_bio();

	if (ssl == NULL || rb == NULL || wb == NULL) {
		SSL_free(ssl);
		BIO_free(rb);
		BIO_free(wb);
		ERR_clear_error();
		return DIME_E_NOMEM;
	}
	SSL_set_bio(ssl, rb, wb);
	SSL_set_options(ssl, SSL_OP_NO_RENEGOTIATION);
	/* Idle connections give their record buffers back: memory per idle connection. */
	SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	if (server) {
		SSL_set_accept_state(ssl);
	} else {
		SSL_set_connect_state(ssl);
		if (host != NULL && SSL_set_tlsext_host_name(ssl, host) != 1) {
			SSL_free(ssl);
			ERR_clear_error();
			return DIME_E_NOMEM;
		}
	}
	c->ssl = ssl;
	c->rbio = rb;
	c->wbio = wb;
	c->hs = 1;
	return DIME_OK;
}

void
io_tls_rx(struct dime_io_conn *c, const uint8_t *p, size_t n)
{
	while (n > 0) {
		int k = n > INT_MAX ? INT_MAX : (int)n;
		int w = BIO_write(c->rbio, p, k);

		if (w <= 0) {
			io_conn_fail(c, ENOMEM);
			return;
		}
		p += w;
		n -= (size_t)w;
	}
	if (!c->paused)
		io_tls_progress(c);
}

static int
tls_write(struct dime_io_conn *c, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		int k = n > INT_MAX ? INT_MAX : (int)n;
		int w;

		ERR_clear_error();
		if ((w = SSL_write(c->ssl, b, k)) <= 0) {
			ERR_clear_error();
			return DIME_E_IO;
		}
		b += w;
		n -= (size_t)w;
	}
	tls_flush(c);
	tls_trim(c);
	return DIME_OK;
}

static void
tls_handshake(struct dime_io_conn *c)
{
	struct io_chunk *ch;
	int r, e;

	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	tls_flush(c);
	if (r != 1) {
		e = SSL_get_error(c->ssl, r);
		ERR_clear_error();
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return;
		c->hs = 0;
		if (c->ops->on_tls != NULL)
			c->ops->on_tls(c->ctx, 0);
		io_conn_fail(c, EPROTO);
		return;
	}
	c->hs = 0;
	if (c->ops->on_tls != NULL)
		c->ops->on_tls(c->ctx, 1);
	if (c->dead)
		return;
	/* Plaintext the user queued during the handshake goes out now, in order. */
	for (ch = c->pt.head; ch != NULL; ch = ch->next)
		if (tls_write(c, ch->data + ch->off, ch->len - ch->off) != DIME_OK) {
			io_conn_fail(c, EPROTO);
			break;
		}
	io_queue_clear(&c->pt);
	if (c->closing && !c->dead)
		io_tls_shutdown(c);
}

void
io_tls_progress(struct dime_io_conn *c)
{
	struct dime_io_loop *l = c->l;
	uint8_t *buf = l->rxbuf + IO_RXBUF_SIZE;

	if (c->dead || c->ssl == NULL)
		return;
	if (c->hs) {
		tls_handshake(c);
		if (c->hs || c->dead)
			return;
	}
	/* Paused: records stay in the read BIO until resume (conn_work calls us again). */
	while (!c->dead && !c->paused && !c->closing) {
		int r, e;

		ERR_clear_error();
		r = SSL_read(c->ssl, buf, IO_RXBUF_SIZE);
		if (r > 0) {
			if (c->ops->on_data != NULL)
				c->ops->on_data(c->ctx, buf, (size_t)r);
			continue;
		}
		e = SSL_get_error(c->ssl, r);
		ERR_clear_error();
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			break;
		/* close_notify: an orderly end; anything else (a bad record, renegotiation) is a
		 * protocol error. */
		if (e == SSL_ERROR_ZERO_RETURN)
			io_conn_eof(c);
		else
			io_conn_fail(c, EPROTO);
	}
	tls_flush(c); /* session tickets, alerts */
	if (!c->dead)
		tls_trim(c);
}

int
io_tls_send(struct dime_io_conn *c, const void *p, size_t n)
{
	if (c->hs)
		return io_queue_put(&c->pt, p, n);
	return tls_write(c, p, n);
}

void
io_tls_shutdown(struct dime_io_conn *c)
{
	if (c->ssl == NULL || c->hs || c->shut_wr)
		return;
	c->shut_wr = 1;
	ERR_clear_error();
	(void)SSL_shutdown(c->ssl); /* queues close_notify; we do not wait for the peer's */
	ERR_clear_error();
	tls_flush(c);
}

size_t
io_tls_pending(const struct dime_io_conn *c)
{
	return c->pt.len;
}

void
io_tls_free(struct dime_io_conn *c)
{
	SSL_free(c->ssl); /* frees both BIOs */
	c->ssl = NULL;
	c->rbio = c->wbio = NULL;
}

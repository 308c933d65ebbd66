/*
 * TLS under a struct conn (conn_start_tls_server/client of conn.h): the
 * transport of conn-transport.h over OpenSSL.
 */
#include "conn.h"
#include "conn-transport.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static SSL *ssl_of(const struct conn *c)
{
	return conn_transport_state(c);
}

static ssize_t tls_read(struct conn *c, void *buf, size_t n)
{
	SSL *ssl = ssl_of(c);

	for (;;) {
		int r, e, w;
		if (SSL_pending(ssl) == 0) {
			w = conn_wait_fd(conn_fd_in(c), POLLIN, conn_timeout_ms(c));
			if (w == 0)
				return CONN_TIMEOUT;
			if (w < 0)
				return CONN_ERROR;
		}
		ERR_clear_error();
		r = SSL_read(ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
		if (r > 0)
			return r;
		e = SSL_get_error(ssl, r);
		if (e == SSL_ERROR_ZERO_RETURN)
			return CONN_EOF;
		if (e == SSL_ERROR_WANT_READ)
			continue;
		if (e == SSL_ERROR_WANT_WRITE) {
			if (conn_wait_fd(conn_fd_out(c), POLLOUT, conn_timeout_ms(c)) <= 0)
				return CONN_TIMEOUT;
			continue;
		}
		if (e == SSL_ERROR_SYSCALL && errno == 0)
			return CONN_EOF;	/* peer closed without close_notify */
		if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))
			return CONN_TIMEOUT;
		return CONN_ERROR;
	}
}

static int tls_write(struct conn *c, const void *buf, size_t n)
{
	SSL *ssl = ssl_of(c);
	const char *p = buf;

	while (n > 0) {
		int r, e;
		if (conn_wait_fd(conn_fd_out(c), POLLOUT, conn_timeout_ms(c)) <= 0)
			return CONN_TIMEOUT;
		ERR_clear_error();
		r = SSL_write(ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
		if (r > 0) {
			p += r;
			n -= (size_t)r;
			continue;
		}
		e = SSL_get_error(ssl, r);
		if (e == SSL_ERROR_WANT_WRITE)
			continue;
		if (e == SSL_ERROR_WANT_READ) {
			if (conn_wait_fd(conn_fd_in(c), POLLIN, conn_timeout_ms(c)) <= 0)
				return CONN_TIMEOUT;
			continue;
		}
		return CONN_ERROR;
	}
	return 0;
}

static int tls_pending(const struct conn *c)
{
	return SSL_pending(ssl_of(c)) > 0;
}

static const char *tls_desc(const struct conn *c)
{
	static char buf[128];
	SSL *ssl = ssl_of(c);

	snprintf(buf, sizeof(buf), "%s %s", SSL_get_version(ssl),
		 SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)));
	return buf;
}

static void tls_free(void *state)
{
	SSL_free(state);
}

static const struct conn_transport tls_transport = {
	.read = tls_read,
	.write = tls_write,
	.pending = tls_pending,
	.desc = tls_desc,
	.free = tls_free,
};

static void ssl_errstr(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(err, errlen, "%s: %s", what, buf);
	} else {
		snprintf(err, errlen, "%s: %s", what, errno ? strerror(errno) : "connection closed");
	}
}

static int handshake(struct conn *c, SSL *ssl, int server, char *err, size_t errlen)
{
	for (;;) {
		int r, e;
		ERR_clear_error();
		errno = 0;
		r = server ? SSL_accept(ssl) : SSL_connect(ssl);
		if (r == 1)
			return 0;
		e = SSL_get_error(ssl, r);
		if (e == SSL_ERROR_WANT_READ) {
			if (conn_wait_fd(conn_fd_in(c), POLLIN, conn_timeout_ms(c)) <= 0)
				break;
			continue;
		}
		if (e == SSL_ERROR_WANT_WRITE) {
			if (conn_wait_fd(conn_fd_out(c), POLLOUT, conn_timeout_ms(c)) <= 0)
				break;
			continue;
		}
		if (!server && SSL_get_verify_result(ssl) != X509_V_OK) {
			snprintf(err, errlen, "certificate verification failed: %s",
				 X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
			return CONN_ERROR;
		}
		ssl_errstr(err, errlen, "TLS handshake failed");
		return CONN_ERROR;
	}
	snprintf(err, errlen, "TLS handshake timed out");
	return CONN_ERROR;
}

static SSL *start_tls(struct conn *c, SSL_CTX *ctx, char *err, size_t errlen)
{
	SSL *ssl;

	if (conn_is_tls(c)) {
		snprintf(err, errlen, "TLS already active");
		return NULL;
	}
	if (conn_flush(c) != 0) {
		snprintf(err, errlen, "write failed before TLS");
		return NULL;
	}
	/* Plaintext pipelined after STARTTLS must not be read as if it came
	 * over TLS (CVE-2011-0411 and its IMAP cousins). */
	conn_discard_input(c);
	ssl = SSL_new(ctx);
	if (ssl == NULL) {
		ssl_errstr(err, errlen, "SSL_new");
		return NULL;
	}
	/* owned by the connection from here on, even if the handshake fails */
	conn_set_transport(c, &tls_transport, ssl);
	if (!SSL_set_rfd(ssl, conn_fd_in(c)) || !SSL_set_wfd(ssl, conn_fd_out(c))) {
		ssl_errstr(err, errlen, "SSL_set_fd");
		return NULL;
	}
	return ssl;
}

int conn_start_tls_server(struct conn *c, SSL_CTX *ctx, char *err, size_t errlen)
{
	SSL *ssl = start_tls(c, ctx, err, errlen);

	if (ssl == NULL)
		return CONN_ERROR;
	return handshake(c, ssl, 1, err, errlen);
}

int conn_start_tls_client(struct conn *c, SSL_CTX *ctx, const char *host, char *err,
			  size_t errlen)
{
	SSL *ssl = start_tls(c, ctx, err, errlen);

	if (ssl == NULL)
		return CONN_ERROR;
	SSL_set_tlsext_host_name(ssl, host);
	if (!SSL_set1_host(ssl, host)) {
		ssl_errstr(err, errlen, "SSL_set1_host");
		return CONN_ERROR;
	}
	SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	return handshake(c, ssl, 0, err, errlen);
}

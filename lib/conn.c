/*
 * Buffered connection: transport (fd, or TLS from conn-tls.c) -> optional
 * deflate -> buffers.  Nothing here links OpenSSL: the IMAP session binary
 * is built without it.
 *
 * Descriptors stay blocking (stdin/stdout may be pipes shared with other
 * processes, where O_NONBLOCK would leak into them); every read and write
 * is preceded by poll() with the timeout, and sockets additionally get
 * SO_RCVTIMEO/SO_SNDTIMEO so that a TLS record cut in half cannot block
 * forever inside OpenSSL.
 */
#include "conn.h"
#include "conn-transport.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

struct conn {
	int fd_in, fd_out;
	int timeout;
	int sockets_known, in_is_socket, out_is_socket;			/* seconds, 0 = none */
	const struct conn_transport *t;	/* NULL: the plain descriptors */
	void *tp;			/* the transport's state */
	z_stream *zin, *zout;		/* raw deflate (COMPRESS=DEFLATE) */
	unsigned char *zraw;		/* compressed bytes read, not yet inflated */
	size_t zraw_len, zraw_off;
	int zheld;			/* deflate holds input not yet sync-flushed */
	char rbuf[CONN_BUF + 1];	/* +1: room for the NUL after a line */
	size_t roff, rlen;
	char wbuf[CONN_BUF];
	size_t wlen;
	int werr;			/* sticky write error */
	unsigned long long in, out;
};

static int is_socket(int fd)
{
	int type;
	socklen_t len = sizeof(type);

	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
}

struct conn *conn_new(int fd_in, int fd_out)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->fd_in = fd_in;
	c->fd_out = fd_out;
	return c;
}

void conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	if (c->t != NULL)
		c->t->free(c->tp);
	if (c->zin != NULL) {
		inflateEnd(c->zin);
		free(c->zin);
	}
	if (c->zout != NULL) {
		deflateEnd(c->zout);
		free(c->zout);
	}
	free(c->zraw);
	/* the buffers may hold a password from a LOGIN line */
	explicit_bzero(c->rbuf, sizeof(c->rbuf));
	free(c);
}

void conn_set_timeout(struct conn *c, int seconds)
{
	struct timeval tv = { .tv_sec = seconds, .tv_usec = 0 };

	if (c->timeout == seconds && c->sockets_known)
		return;
	c->timeout = seconds;
	if (!c->sockets_known) {	/* asked once: a server sets this twice a command */
		c->in_is_socket = is_socket(c->fd_in);
		c->out_is_socket = is_socket(c->fd_out);
		c->sockets_known = 1;
	}
	if (c->in_is_socket)
		setsockopt(c->fd_in, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (c->out_is_socket)
		setsockopt(c->fd_out, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int conn_timeout_ms(const struct conn *c)
{
	return c->timeout > 0 ? c->timeout * 1000 : -1;
}

int conn_fd_in(const struct conn *c)
{
	return c->fd_in;
}

void conn_ack_now(const struct conn *c)
{
	int one = 1;

	(void)setsockopt(c->fd_in, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

int conn_fd_out(const struct conn *c)
{
	return c->fd_out;
}

void conn_set_transport(struct conn *c, const struct conn_transport *t, void *tp)
{
	c->t = t;
	c->tp = tp;
}

void *conn_transport_state(const struct conn *c)
{
	return c->tp;
}

void conn_discard_input(struct conn *c)
{
	c->roff = c->rlen = 0;
}

int conn_wait_fd(int fd, short events, int ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;

	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -1;
	return r > 0;
}

/* Transport read: plain fd or TLS.  >0 bytes, or CONN_EOF/ERROR/TIMEOUT. */
static ssize_t raw_read(struct conn *c, void *buf, size_t n)
{
	ssize_t r;
	int w;

	if (c->t != NULL) {
		r = c->t->read(c, buf, n);
		if (r > 0)
			c->in += (size_t)r;
		return r;
	}
	w = conn_wait_fd(c->fd_in, POLLIN, conn_timeout_ms(c));
	if (w == 0)
		return CONN_TIMEOUT;
	if (w < 0)
		return CONN_ERROR;
	do
		r = read(c->fd_in, buf, n);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? CONN_TIMEOUT : CONN_ERROR;
	if (r == 0)
		return CONN_EOF;
	c->in += (size_t)r;
	return r;
}

static int raw_write(struct conn *c, const void *buf, size_t n)
{
	const char *p = buf;

	if (c->t != NULL) {
		int r = c->t->write(c, buf, n);
		if (r == 0)
			c->out += n;
		return r;
	}
	while (n > 0) {
		ssize_t r;
		if (conn_wait_fd(c->fd_out, POLLOUT, conn_timeout_ms(c)) <= 0)
			return CONN_TIMEOUT;
		r = write(c->fd_out, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return (errno == EAGAIN || errno == EWOULDBLOCK) ? CONN_TIMEOUT : CONN_ERROR;
		p += r;
		n -= (size_t)r;
		c->out += (size_t)r;
	}
	return 0;
}

/* Decompressing read on top of raw_read. */
static ssize_t layer_read(struct conn *c, void *buf, size_t n)
{
	if (c->zin == NULL)
		return raw_read(c, buf, n);
	for (;;) {
		int zr;
		size_t got;
		if (c->zraw_off == c->zraw_len) {
			ssize_t r = raw_read(c, c->zraw, CONN_BUF);
			if (r < 0)
				return r;
			c->zraw_len = (size_t)r;
			c->zraw_off = 0;
		}
		c->zin->next_in = c->zraw + c->zraw_off;
		c->zin->avail_in = (uInt)(c->zraw_len - c->zraw_off);
		c->zin->next_out = buf;
		c->zin->avail_out = (uInt)(n > CONN_BUF ? CONN_BUF : n);
		got = c->zin->avail_out;
		zr = inflate(c->zin, Z_SYNC_FLUSH);
		if (zr != Z_OK && zr != Z_BUF_ERROR)
			return CONN_ERROR;
		c->zraw_off = c->zraw_len - c->zin->avail_in;
		got -= c->zin->avail_out;
		if (got > 0)
			return (ssize_t)got;
		if (zr == Z_BUF_ERROR && c->zraw_off < c->zraw_len)
			return CONN_ERROR;
	}
}

/* Compressing write on top of raw_write; FLUSH ends with a sync flush. */
static int layer_write(struct conn *c, const void *buf, size_t n, int flush)
{
	unsigned char out[16384];

	if (c->zout == NULL)
		return raw_write(c, buf, n);
	c->zout->next_in = (unsigned char *)(uintptr_t)buf;
	c->zout->avail_in = (uInt)n;
	c->zheld = !flush && (n > 0 || c->zheld);
	do {
		int zr;
		c->zout->next_out = out;
		c->zout->avail_out = sizeof(out);
		zr = deflate(c->zout, flush ? Z_SYNC_FLUSH : Z_NO_FLUSH);
		if (zr != Z_OK && zr != Z_BUF_ERROR)
			return CONN_ERROR;
		if (sizeof(out) - c->zout->avail_out > 0 &&
		    raw_write(c, out, sizeof(out) - c->zout->avail_out) != 0)
			return CONN_ERROR;
	} while (c->zout->avail_out == 0 || c->zout->avail_in > 0);
	return 0;
}

static int fill(struct conn *c)
{
	ssize_t r;

	if (c->roff > 0) {
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
		c->rlen -= c->roff;
		c->roff = 0;
	}
	if (c->rlen >= CONN_BUF)
		return CONN_TOO_LONG;
	r = layer_read(c, c->rbuf + c->rlen, CONN_BUF - c->rlen);
	if (r > 0)
		c->rlen += (size_t)r;
	return (int)r;
}

ssize_t conn_read_line(struct conn *c, char **line, size_t max)
{
	size_t scanned = 0;
	int skipping = 0;

	if (max > CONN_BUF - 1)
		max = CONN_BUF - 1;
	for (;;) {
		char *start = c->rbuf + c->roff;
		size_t avail = c->rlen - c->roff;
		char *nl = memchr(start + scanned, '\n', avail - scanned);
		if (nl != NULL) {
			size_t len = (size_t)(nl - start);
			c->roff += len + 1;
			if (skipping || len > max)
				return CONN_TOO_LONG;
			if (len > 0 && start[len - 1] == '\r')
				len--;
			start[len] = '\0';
			*line = start;
			return (ssize_t)len;
		}
		if (avail > max) {
			/* drop what we have of the overlong line, keep looking for its end */
			c->roff = c->rlen;
			skipping = 1;
			scanned = 0;
		} else {
			scanned = avail;
		}
		int r = fill(c);
		if (r < 0)
			return r == CONN_EOF && skipping ? CONN_TOO_LONG : r;
	}
}

size_t conn_pending(const struct conn *c)
{
	return c->rlen - c->roff;
}

ssize_t conn_read(struct conn *c, void *buf, size_t n)
{
	size_t avail = c->rlen - c->roff;

	if (n == 0)
		return 0;
	if (avail == 0)
		return layer_read(c, buf, n);
	if (n > avail)
		n = avail;
	memcpy(buf, c->rbuf + c->roff, n);
	c->roff += n;
	return (ssize_t)n;
}

ssize_t conn_read_full(struct conn *c, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = conn_read(c, (char *)buf + got, n - got);
		if (r < 0)
			return r;
		got += (size_t)r;
	}
	return (ssize_t)n;
}

int conn_wait(struct conn *c, int extra_fd, int ms)
{
	struct pollfd p[2] = {
		{ .fd = c->fd_in, .events = POLLIN },
		{ .fd = extra_fd, .events = POLLIN },
	};
	int r;

	if (conn_pending(c) > 0 || (c->t != NULL && c->t->pending(c)) ||
	    (c->zin != NULL && c->zraw_off < c->zraw_len))
		return 1;
	do
		r = poll(p, extra_fd >= 0 ? 2 : 1, ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return CONN_ERROR;
	if (r == 0)
		return 0;
	if (p[0].revents)
		return 1;
	return 2;
}

int conn_flush(struct conn *c)
{
	if (c->werr)
		return c->werr;
	/* nothing new: no empty deflate block either, which a client could read
	 * together with the COMPRESS "OK" (one TLS record from the proxy) while
	 * it still reads plaintext */
	if (c->wlen > 0 || c->zheld) {
		int r = layer_write(c, c->wbuf, c->wlen, 1);
		c->wlen = 0;
		if (r != 0) {
			c->werr = r;
			return r;
		}
	}
	return 0;
}

int conn_write(struct conn *c, const void *buf, size_t n)
{
	const char *p = buf;

	if (c->werr)
		return c->werr;
	while (n > 0) {
		size_t room = sizeof(c->wbuf) - c->wlen;
		if (room == 0) {
			int r = layer_write(c, c->wbuf, c->wlen, 0);
			c->wlen = 0;
			if (r != 0)
				return c->werr = r;
			continue;
		}
		if (room > n)
			room = n;
		memcpy(c->wbuf + c->wlen, p, room);
		c->wlen += room;
		p += room;
		n -= room;
	}
	return 0;
}

int conn_puts(struct conn *c, const char *s)
{
	return conn_write(c, s, strlen(s));
}

int conn_vprintf(struct conn *c, const char *fmt, va_list ap)
{
	char small[1024], *big = NULL;
	va_list ap2;
	int n, r;

	va_copy(ap2, ap);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	if (n < 0) {
		va_end(ap2);
		return CONN_ERROR;
	}
	if ((size_t)n < sizeof(small)) {
		va_end(ap2);
		return conn_write(c, small, (size_t)n);
	}
	big = malloc((size_t)n + 1);
	if (big == NULL) {
		va_end(ap2);
		return CONN_ERROR;
	}
	vsnprintf(big, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	r = conn_write(c, big, (size_t)n);
	free(big);
	return r;
}

int conn_printf(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = conn_vprintf(c, fmt, ap);
	va_end(ap);
	return r;
}

int conn_is_tls(const struct conn *c)
{
	return c->t != NULL;
}

const char *conn_tls_desc(const struct conn *c)
{
	return c->t != NULL ? c->t->desc(c) : "plain";
}

int conn_start_deflate(struct conn *c)
{
	if (c->zin != NULL || conn_flush(c) != 0)
		return CONN_ERROR;
	c->zin = calloc(1, sizeof(*c->zin));
	c->zout = calloc(1, sizeof(*c->zout));
	c->zraw = malloc(CONN_BUF);
	if (c->zin == NULL || c->zout == NULL || c->zraw == NULL ||
	    inflateInit2(c->zin, -15) != Z_OK) {
		free(c->zin);
		free(c->zout);
		free(c->zraw);
		c->zin = c->zout = NULL;
		c->zraw = NULL;
		return CONN_ERROR;
	}
	if (deflateInit2(c->zout, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK) {
		inflateEnd(c->zin);
		free(c->zin);
		free(c->zout);
		free(c->zraw);
		c->zin = c->zout = NULL;
		c->zraw = NULL;
		return CONN_ERROR;
	}
	/* bytes already buffered arrived compressed: feed them to inflate */
	c->zraw_len = c->rlen - c->roff;
	memcpy(c->zraw, c->rbuf + c->roff, c->zraw_len);
	c->zraw_off = 0;
	c->roff = c->rlen = 0;
	return 0;
}

int conn_is_deflate(const struct conn *c)
{
	return c->zin != NULL;
}

unsigned long long conn_bytes_in(const struct conn *c)
{
	return c->in;
}

unsigned long long conn_bytes_out(const struct conn *c)
{
	return c->out;
}

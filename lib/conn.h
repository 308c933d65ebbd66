/*
 * A buffered, optionally TLS-wrapped and optionally deflate-compressed
 * byte stream over one or two file descriptors (a socket, or stdin/stdout
 * under inetd and systemd Accept=yes).  Used by both servers and by the
 * IMAP and SMTP clients.
 *
 * Memory: one read buffer of CONN_BUF bytes and one write buffer of
 * CONN_BUF bytes per connection (plus OpenSSL's and zlib's state when
 * enabled); a line longer than the caller's limit is refused, never
 * buffered whole.
 *
 * Every blocking call waits at most the connection's timeout (seconds,
 * 0 = forever) and returns CONN_TIMEOUT then.
 */
#ifndef MK_CONN_H
#define MK_CONN_H
#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

struct ssl_ctx_st;	/* OpenSSL's SSL_CTX */

#define CONN_BUF 65536

/* Negative results of the read and write calls. */
enum {
	CONN_ERROR = -1,	/* I/O or TLS error: the connection is unusable */
	CONN_TIMEOUT = -2,
	CONN_TOO_LONG = -3,	/* line longer than the limit (see conn_read_line) */
	CONN_EOF = -4,		/* the peer closed the connection */
};

struct conn;

/* Takes ownership of neither fd (conn_free does not close them). */
struct conn *conn_new(int fd_in, int fd_out);
void conn_free(struct conn *c);	/* NULL allowed; frees SSL/zlib state */

void conn_set_timeout(struct conn *c, int seconds);

/* The descriptors given to conn_new(). */
int conn_fd_in(const struct conn *c);
int conn_fd_out(const struct conn *c);

/*
 * Acknowledges what arrived on the input socket now, not after the
 * kernel's delayed-ACK timer (up to 40 ms).  A client that writes an IMAP
 * literal and the CRLF ending its command separately (Python's imaplib)
 * holds that CRLF under Nagle until the literal is acknowledged, while the
 * server, waiting for it, has nothing to send that would carry the ACK.
 * TCP_QUICKACK does not stick: callers ask again after each read that
 * may end such a literal.  Does nothing when the input is not TCP.
 */
void conn_ack_now(const struct conn *c);

/*
 * TLS (lib/conn-tls.c, the only part that links OpenSSL).
 * Starts TLS as the server (implicit TLS, or after "OK Begin TLS").
 * Discards bytes the peer sent before the handshake (STARTTLS command
 * injection).  Returns 0 or CONN_ERROR with a reason in err.
 */
int conn_start_tls_server(struct conn *c, struct ssl_ctx_st *ctx, char *err, size_t errlen);

/*
 * Starts TLS as a client and verifies the peer's certificate against HOST
 * (the context must have been made by tls_client_ctx()).  0 or CONN_ERROR.
 */
int conn_start_tls_client(struct conn *c, struct ssl_ctx_st *ctx, const char *host,
			  char *err, size_t errlen);

int conn_is_tls(const struct conn *c);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" or "plain"; static storage. */
const char *conn_tls_desc(const struct conn *c);

/*
 * Starts raw deflate (RFC 4978 COMPRESS=DEFLATE) in both directions after
 * the current buffered output is flushed.  0 or CONN_ERROR.
 */
int conn_start_deflate(struct conn *c);
int conn_is_deflate(const struct conn *c);

/*
 * Reads one line ending in "\n" (the "\r\n" or "\n" is removed and the line
 * NUL-terminated).  *line points into the connection's buffer and stays
 * valid until the next read call.  Returns the line length (>= 0), or
 * CONN_EOF, CONN_ERROR, CONN_TIMEOUT, or CONN_TOO_LONG when no "\n" came
 * within MAX bytes: then that whole line has been consumed and discarded.
 */
ssize_t conn_read_line(struct conn *c, char **line, size_t max);

/* Reads up to N bytes (at least 1 if N > 0) into BUF; count or < 0 as above. */
ssize_t conn_read(struct conn *c, void *buf, size_t n);
/* Reads exactly N bytes; N, or CONN_EOF/CONN_ERROR/CONN_TIMEOUT. */
ssize_t conn_read_full(struct conn *c, void *buf, size_t n);

/* Bytes already buffered and readable without blocking. */
size_t conn_pending(const struct conn *c);

/*
 * Waits until the connection is readable or EXTRA_FD (if >= 0) is, for at
 * most TIMEOUT_MS (-1 = forever).  Returns 1 connection readable, 2 extra
 * fd readable, 0 timeout, CONN_ERROR.
 */
int conn_wait(struct conn *c, int extra_fd, int timeout_ms);

/* Buffered output; errors are sticky and reported by conn_flush(). */
int conn_write(struct conn *c, const void *buf, size_t n);
int conn_puts(struct conn *c, const char *s);
int conn_printf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int conn_vprintf(struct conn *c, const char *fmt, va_list ap);
int conn_flush(struct conn *c);	/* 0 or CONN_ERROR/CONN_TIMEOUT */

/* Bytes read from / written to the peer (after TLS/compression), for logs. */
unsigned long long conn_bytes_in(const struct conn *c);
unsigned long long conn_bytes_out(const struct conn *c);
#endif

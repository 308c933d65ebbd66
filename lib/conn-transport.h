/*
 * How a transport (TLS, lib/conn-tls.c) plugs under a struct conn.  Kept
 * apart from conn.h so that lib/conn.c never names OpenSSL: a program that
 * does not call conn_start_tls_*() links without it (the IMAP session).
 * Not for use outside lib/conn*.c.
 */
#ifndef MK_CONN_TRANSPORT_H
#define MK_CONN_TRANSPORT_H
#include <stddef.h>
#include <sys/types.h>

struct conn;

struct conn_transport {
	/* > 0 bytes read, or CONN_EOF/CONN_ERROR/CONN_TIMEOUT */
	ssize_t (*read)(struct conn *c, void *buf, size_t n);
	/* writes all N bytes: 0, or CONN_ERROR/CONN_TIMEOUT */
	int (*write)(struct conn *c, const void *buf, size_t n);
	/* 1 if bytes are buffered inside the transport (readable without waiting) */
	int (*pending)(const struct conn *c);
	/* "TLSv1.3 TLS_AES_256_GCM_SHA384"; static storage */
	const char *(*desc)(const struct conn *c);
	void (*free)(void *state);
};

/* Installs T with its STATE (freed by T->free in conn_free). */
void conn_set_transport(struct conn *c, const struct conn_transport *t, void *state);
void *conn_transport_state(const struct conn *c);
/* The connection's timeout in milliseconds for poll(), -1 = none. */
int conn_timeout_ms(const struct conn *c);
/* Drops bytes read but not yet consumed (plaintext before a TLS handshake). */
void conn_discard_input(struct conn *c);
/* poll() for EVENTS on FD for MS milliseconds: 1 ready, 0 timeout, -1 error. */
int conn_wait_fd(int fd, short events, int ms);
#endif

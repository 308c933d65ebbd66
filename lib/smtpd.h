/*
 * The SMTP submission server session (mail-submit-relay serve): RFC 6409
 * message submission with RFC 8314 implicit TLS or RFC 3207 STARTTLS,
 * one process per client connection.
 *
 * Extensions offered: PIPELINING, SIZE, 8BITMIME, SMTPUTF8 (unless the
 * provider is known not to take it), ENHANCEDSTATUSCODES, STARTTLS (plain
 * connections with a certificate), AUTH PLAIN LOGIN (only over TLS, or
 * from loopback with allow_plaintext).  BDAT/CHUNKING is not offered.
 *
 * Policy, as the module's postfix has it:
 *  - every command but EHLO/HELO/STARTTLS/NOOP/RSET/QUIT needs TLS first
 *    (smtpd_tls_security_level = encrypt), then AUTH before MAIL;
 *  - the envelope sender and every From: address must be the logged-in
 *    user (reject_sender_login_mismatch): else 553 5.7.1;
 *  - recipients in the config's domain must be known users (550 5.1.1);
 *    others are relayed, and refused (554 5.7.1) when no [relay] exists;
 *  - messages with a bare CR or LF, a line over 1000 octets, more than
 *    the SIZE limit or a header over SMTPD_MAX_HEADER are refused; only
 *    "<CRLF>.<CRLF>" ends DATA.
 * A message is answered "250 2.0.0 Ok: queued as ID" only after
 * queue_msg_commit() made it durable.
 *
 * Memory per session: the input buffer and the DATA output buffer
 * (SMTPD_INBUF each), the header copy (SMTPD_MAX_HEADER), one struct
 * queue_env during a transaction, and the connection (conn.h).
 */
#ifndef MK_SMTPD_H
#define MK_SMTPD_H
#include <openssl/ssl.h>

struct config;
struct auth;

#define SMTPD_INBUF 32768
#define SMTPD_MAX_HEADER 65536
#define SMTPD_MAX_AUTH_FAILURES 3	/* then 421 and close */
#define SMTPD_MAX_ERRORS 20		/* bad commands before 421 */
#define SMTPD_TIMEOUT 300		/* seconds per command (RFC 5321 4.5.3.2) */
/*
 * How long a plaintext client is watched for talking before our 220
 * (postscreen's pregreet test, sendmail's greet_pause): a real client
 * waits for the greeting, a spam engine often does not.
 */
#define SMTPD_PREGREET_MS 50

struct smtpd_opts {
	const struct config *cfg;
	struct auth *auth;		/* owned by the caller */
	SSL_CTX *tls_ctx;		/* NULL: no TLS configured */
	int implicit_tls;		/* --tls: handshake before the greeting */
	int allow_plaintext;		/* AUTH without TLS from loopback (tests, demo) */
	int timeout;			/* seconds; 0 = SMTPD_TIMEOUT */
	long long max_size;		/* SIZE limit in bytes */
	int smtputf8;			/* advertise SMTPUTF8 */
	/* called after each 250 for a queued message (background flush), may be NULL */
	void (*on_queued)(void *arg, const char *id);
	void *on_queued_arg;
};

/* Serves one client on FD_IN/FD_OUT; PEER is its address.  Returns an exit code. */
int smtpd_session(const struct smtpd_opts *o, int fd_in, int fd_out, const char *peer);
#endif

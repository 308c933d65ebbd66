/*
 * The IMAP client of imap-client.h: transport, login, commands, APPEND.
 * The response parser is in imap-response.c.
 */
#include "imap-client.h"

#include "conn.h"
#include "imap-date.h"
#include "log.h"
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <openssl/evp.h>

struct imap_client {
	struct conn *conn;
	int fd;
	SSL_CTX *ctx;
	unsigned caps;
	unsigned tagn;
	int debug;
	int dead;
	struct imap_resp_parser *p;
	char ibuf[CONN_BUF];
	size_t ipos, ilen;
};

unsigned imap_client_caps(const struct imap_client *cl)
{
	return cl->caps;
}

static int tcp_connect(const char *host, int port, int timeout, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL, *ai;
	char ports[16];
	int fd = -1, e = 0, rc;

	snprintf(ports, sizeof(ports), "%d", port);
	rc = getaddrinfo(host, ports, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		struct pollfd pfd;
		socklen_t sl = sizeof(e);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			goto ok;
		if (errno != EINPROGRESS) {
			e = errno;
			close(fd);
			fd = -1;
			continue;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		rc = poll(&pfd, 1, timeout * 1000);
		if (rc == 0) {
			e = ETIMEDOUT;
		} else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) == 0 && e == 0) {
			goto ok;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	snprintf(err, errlen, "connect %s port %d: %s", host, port, strerror(e ? e : EIO));
	return -1;
ok:
	freeaddrinfo(res);
	{
		int fl = fcntl(fd, F_GETFL), on = 1, idle = 60, intvl = 15, cnt = 4;

		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
		/*
		 * --loop and --watch keep a session between runs: a peer or a NAT
		 * that forgot it is noticed within about two minutes of silence,
		 * so the next run reconnects at once instead of waiting out a read.
		 */
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	}
	return fd;
}

static int conn_code(ssize_t r)
{
	return r == CONN_TIMEOUT ? EX_TEMPFAIL : EX_UNAVAILABLE;
}

void imap_client_set_sink(struct imap_client *cl, const struct imap_resp_sink *sink)
{
	imap_resp_parser_set_sink(cl->p, sink);
}

static void trace_recv(const struct imap_resp *r)
{
	if (r->status != IMAP_ST_NONE || r->kind == IMAP_RESP_CONTINUE)
		log_debug("imap_recv", "tag=%s name=%s code=%s text=%s", log_q(r->tag),
			  r->name ? r->name : "+", log_q(r->code ? r->code : ""), log_q(r->text));
	else
		log_debug("imap_recv", "tag=* name=%s num=%u tokens=%zu", r->name,
			  r->has_num ? r->num : 0, r->ntoks);
}

int imap_client_read(struct imap_client *cl, const struct imap_resp **r,
		     char *err, size_t errlen)
{
	if (cl->dead) {
		snprintf(err, errlen, "connection lost");
		return EX_UNAVAILABLE;
	}
	if (conn_flush(cl->conn) != 0) {
		cl->dead = 1;
		snprintf(err, errlen, "write to server failed");
		return EX_UNAVAILABLE;
	}
	for (;;) {
		if (cl->ipos < cl->ilen) {
			size_t used;
			int rc = imap_resp_feed(cl->p, cl->ibuf + cl->ipos, cl->ilen - cl->ipos,
						&used, r);

			cl->ipos += used;
			if (rc == IMAP_PARSE_DONE) {
				if (cl->debug)
					trace_recv(*r);
				return 0;
			}
			if (rc == IMAP_PARSE_ERROR) {
				cl->dead = 1;
				snprintf(err, errlen, "malformed response from server: %s",
					 imap_resp_parser_error(cl->p));
				return EX_PROTOCOL;
			}
		}
		{
			ssize_t n = conn_read(cl->conn, cl->ibuf, sizeof(cl->ibuf));

			if (n <= 0) {
				cl->dead = 1;
				snprintf(err, errlen, "%s", n == CONN_TIMEOUT ?
					 "timeout waiting for the server" : n == CONN_EOF ?
					 "server closed the connection" : "read from server failed");
				return conn_code(n);
			}
			cl->ipos = 0;
			cl->ilen = (size_t)n;
		}
	}
}

static void caps_from(struct imap_client *cl, const char *s)
{
	static const struct { const char *w; unsigned bit; } map[] = {
		{ "IMAP4rev1", IMAP_CAP_IMAP4REV1 }, { "LITERAL+", IMAP_CAP_LITERALPLUS },
		{ "LITERAL-", IMAP_CAP_LITERALMINUS }, { "UIDPLUS", IMAP_CAP_UIDPLUS },
		{ "CONDSTORE", IMAP_CAP_CONDSTORE }, { "QRESYNC", IMAP_CAP_QRESYNC },
		{ "SPECIAL-USE", IMAP_CAP_SPECIAL_USE }, { "LIST-STATUS", IMAP_CAP_LIST_STATUS },
		{ "LIST-EXTENDED", IMAP_CAP_LIST_EXTENDED }, { "ENABLE", IMAP_CAP_ENABLE },
		{ "STARTTLS", IMAP_CAP_STARTTLS }, { "LOGINDISABLED", IMAP_CAP_LOGINDISABLED },
		{ "AUTH=PLAIN", IMAP_CAP_AUTH_PLAIN }, { "SASL-IR", IMAP_CAP_SASL_IR },
		{ "IDLE", IMAP_CAP_IDLE }, { "MOVE", IMAP_CAP_MOVE }, { "ESEARCH", IMAP_CAP_ESEARCH },
		{ "UNSELECT", IMAP_CAP_UNSELECT }, { "MULTIAPPEND", IMAP_CAP_MULTIAPPEND },
	};
	cl->caps = 0;
	while (*s) {
		size_t l = strcspn(s, " ");
		size_t i;

		for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
			if (strlen(map[i].w) == l && strncasecmp(map[i].w, s, l) == 0)
				cl->caps |= map[i].bit;
		s += l;
		while (*s == ' ')
			s++;
	}
}

/* Untagged CAPABILITY data, or a [CAPABILITY ...] code. */
static int caps_cb(const struct imap_resp *r, void *ctx)
{
	struct imap_client *cl = ctx;

	if (r->code != NULL && strcmp(r->code, "CAPABILITY") == 0) {
		caps_from(cl, r->code_arg);
	} else if (r->name != NULL && strcmp(r->name, "CAPABILITY") == 0) {
		char buf[4096];
		size_t i, o = 0;

		for (i = 0; i < r->ntoks && o + r->toks[i].len + 2 < sizeof(buf); i++) {
			if (r->toks[i].type != IMAP_TOK_ATOM)
				continue;
			memcpy(buf + o, r->toks[i].s, r->toks[i].len);
			o += r->toks[i].len;
			buf[o++] = ' ';
		}
		buf[o] = '\0';
		caps_from(cl, buf);
	}
	return 0;
}

int imap_client_send(struct imap_client *cl, const char *cmd, char tag[16])
{
	snprintf(tag, 16, "M%u", ++cl->tagn);
	if (cl->debug)
		log_debug("imap_send", "tag=%s cmd=%s", tag, log_q(cmd));
	conn_puts(cl->conn, tag);
	conn_puts(cl->conn, " ");
	conn_puts(cl->conn, cmd);
	return conn_puts(cl->conn, "\r\n");
}

int imap_client_fd(const struct imap_client *cl)
{
	return cl->fd;
}

int imap_client_alive(const struct imap_client *cl)
{
	return !cl->dead;
}

int imap_client_ready(struct imap_client *cl)
{
	return !cl->dead && (cl->ipos < cl->ilen || conn_wait(cl->conn, -1, 0) == 1);
}

int imap_client_send_line(struct imap_client *cl, const char *line, char *err, size_t errlen)
{
	if (cl->debug)
		log_debug("imap_send", "cmd=%s", log_q(line));
	conn_puts(cl->conn, line);
	conn_puts(cl->conn, "\r\n");
	return imap_client_flush(cl, err, errlen);
}

int imap_client_flush(struct imap_client *cl, char *err, size_t errlen)
{
	int r = conn_flush(cl->conn);

	if (r != 0) {
		cl->dead = 1;
		snprintf(err, errlen, "write to server failed");
		return r == CONN_TIMEOUT ? EX_TEMPFAIL : EX_UNAVAILABLE;
	}
	return 0;
}

int imap_client_wait(struct imap_client *cl, const char *tag, imap_resp_cb cb, void *ctx,
		     const struct imap_resp **fin, char *err, size_t errlen)
{
	int cbrc = 0;

	for (;;) {
		const struct imap_resp *r;
		int rc = imap_client_read(cl, &r, err, errlen);

		if (rc != 0)
			return rc;
		if (r->kind == IMAP_RESP_TAGGED) {
			if (strcmp(r->tag, tag) != 0) {
				snprintf(err, errlen, "unexpected tag %s waiting for %s", r->tag, tag);
				cl->dead = 1;
				return EX_PROTOCOL;
			}
			if (fin != NULL)
				*fin = r;
			if (r->status != IMAP_ST_OK) {
				snprintf(err, errlen, "server said %s%s%s%s %s", r->name,
					 r->code ? " [" : "", r->code ? r->code : "",
					 r->code ? "]" : "", r->text);
				return r->status == IMAP_ST_NO ? EX_TEMPFAIL : EX_PROTOCOL;
			}
			if (cbrc != 0)
				snprintf(err, errlen, "processing the answer to %s failed", tag);
			return cbrc;
		}
		if (r->kind == IMAP_RESP_UNTAGGED && r->status == IMAP_ST_BYE) {
			snprintf(err, errlen, "server closed the session: %s", r->text);
			cl->dead = 1;
			return EX_UNAVAILABLE;
		}
		if (r->kind == IMAP_RESP_CONTINUE) {
			snprintf(err, errlen, "unexpected continuation");
			cl->dead = 1;
			return EX_PROTOCOL;
		}
		if (cb != NULL && cbrc == 0)
			cbrc = cb(r, ctx);
	}
}

int imap_client_cmd(struct imap_client *cl, const char *cmd, imap_resp_cb cb, void *ctx,
		    const struct imap_resp **fin, char *err, size_t errlen)
{
	char tag[16];

	imap_client_send(cl, cmd, tag);
	return imap_client_wait(cl, tag, cb, ctx, fin, err, errlen);
}

int imap_client_connect(const struct imap_client_opts *o, struct imap_client **out,
			char *err, size_t errlen)
{
	struct imap_client *cl;
	const struct imap_resp *r;
	int timeout = o->timeout > 0 ? o->timeout : 120;
	int rc;

	*out = NULL;
	cl = calloc(1, sizeof(*cl));
	if (cl == NULL || (cl->p = imap_resp_parser_new(NULL)) == NULL) {
		free(cl);
		snprintf(err, errlen, "out of memory");
		return EX_OSERR;
	}
	cl->debug = o->debug;
	/*
	 * Connect first: a server that starts a process per connection (dovecot's
	 * imap-login) does so while we load the trust store and make the TLS
	 * context, which takes OpenSSL 3 several milliseconds.
	 */
	cl->fd = tcp_connect(o->host, o->port, timeout, err, errlen);
	if (cl->fd < 0) {
		imap_client_free(cl);
		return EX_UNAVAILABLE;
	}
	if (o->tls != IMAP_TLS_NONE) {
		cl->ctx = tls_client_ctx(o->ca_file, err, errlen);
		if (cl->ctx == NULL) {
			imap_client_free(cl);
			return EX_CONFIG;
		}
	}
	cl->conn = conn_new(cl->fd, cl->fd);
	if (cl->conn == NULL) {
		imap_client_free(cl);
		snprintf(err, errlen, "out of memory");
		return EX_OSERR;
	}
	conn_set_timeout(cl->conn, timeout);
	if (o->tls == IMAP_TLS_IMAPS) {
		char e2[256];

		if (conn_start_tls_client(cl->conn, cl->ctx, o->host, e2, sizeof(e2)) != 0) {
			snprintf(err, errlen, "TLS with %s port %d: %s", o->host, o->port, e2);
			imap_client_free(cl);
			return EX_UNAVAILABLE;
		}
	}
	rc = imap_client_read(cl, &r, err, errlen);
	if (rc != 0)
		goto fail;
	if (r->kind != IMAP_RESP_UNTAGGED || (r->status != IMAP_ST_OK &&
					      r->status != IMAP_ST_PREAUTH)) {
		snprintf(err, errlen, "%s port %d: not an IMAP greeting", o->host, o->port);
		rc = EX_UNAVAILABLE;
		goto fail;
	}
	caps_cb(r, cl);
	if (o->tls == IMAP_TLS_STARTTLS) {
		char e2[256];

		if (cl->caps == 0 && (rc = imap_client_cmd(cl, "CAPABILITY", caps_cb, cl, NULL,
							   err, errlen)) != 0)
			goto fail;
		if (!(cl->caps & IMAP_CAP_STARTTLS)) {
			snprintf(err, errlen, "%s port %d does not offer STARTTLS", o->host, o->port);
			rc = EX_UNAVAILABLE;
			goto fail;
		}
		if ((rc = imap_client_cmd(cl, "STARTTLS", NULL, NULL, NULL, err, errlen)) != 0)
			goto fail;
		if (cl->ipos < cl->ilen) {	/* bytes after the OK: injection */
			snprintf(err, errlen, "server sent data before the TLS handshake");
			rc = EX_PROTOCOL;
			goto fail;
		}
		if (conn_start_tls_client(cl->conn, cl->ctx, o->host, e2, sizeof(e2)) != 0) {
			snprintf(err, errlen, "TLS with %s port %d: %s", o->host, o->port, e2);
			rc = EX_UNAVAILABLE;
			goto fail;
		}
		cl->caps = 0;
	}
	if (cl->caps == 0 &&
	    (rc = imap_client_cmd(cl, "CAPABILITY", caps_cb, cl, NULL, err, errlen)) != 0)
		goto fail;
	*out = cl;
	return 0;
fail:
	imap_client_free(cl);
	return rc;
}

void imap_client_free(struct imap_client *cl)
{
	if (cl == NULL)
		return;
	if (cl->conn != NULL && !cl->dead) {
		char tag[16];

		imap_client_send(cl, "LOGOUT", tag);
		conn_flush(cl->conn);
	}
	conn_free(cl->conn);
	if (cl->fd >= 0)
		close(cl->fd);
	if (cl->ctx != NULL)
		SSL_CTX_free(cl->ctx);
	imap_resp_parser_free(cl->p);
	free(cl);
}

int imap_quote_astring(const char *s, char *buf, size_t len)
{
	size_t o = 0;

	if (len < 3)
		return -1;
	buf[o++] = '"';
	for (; *s; s++) {
		if (*s == '\r' || *s == '\n')
			return -1;
		if (o + 3 >= len)
			return -1;
		if (*s == '"' || *s == '\\')
			buf[o++] = '\\';
		buf[o++] = *s;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return 0;
}

int imap_client_login_send(struct imap_client *cl, const char *user, const char *password,
			   char tag[16], char *err, size_t errlen)
{
	int rc;
	size_t ul = strlen(user), pl = strlen(password);

	if (cl->caps & IMAP_CAP_AUTH_PLAIN) {
		size_t rawlen = ul + pl + 2;
		unsigned char *raw = malloc(rawlen);
		char *b64 = malloc(4 * ((rawlen + 2) / 3) + 1);
		char *cmd = malloc(4 * ((rawlen + 2) / 3) + 40);

		if (raw == NULL || b64 == NULL || cmd == NULL) {
			free(raw);
			free(b64);
			free(cmd);
			snprintf(err, errlen, "out of memory");
			return EX_OSERR;
		}
		raw[0] = '\0';
		memcpy(raw + 1, user, ul);
		raw[1 + ul] = '\0';
		memcpy(raw + 2 + ul, password, pl);
		EVP_EncodeBlock((unsigned char *)b64, raw, (int)rawlen);
		snprintf(tag, 16, "M%u", ++cl->tagn);
		if (cl->debug)
			log_debug("imap_send", "tag=%s cmd=\"AUTHENTICATE PLAIN ***\"", tag);
		if (cl->caps & IMAP_CAP_SASL_IR) {
			conn_printf(cl->conn, "%s AUTHENTICATE PLAIN %s\r\n", tag, b64);
		} else {
			const struct imap_resp *r;

			conn_printf(cl->conn, "%s AUTHENTICATE PLAIN\r\n", tag);
			rc = imap_client_read(cl, &r, err, errlen);
			if (rc == 0 && r->kind != IMAP_RESP_CONTINUE) {
				snprintf(err, errlen, "AUTHENTICATE PLAIN: no continuation");
				rc = EX_PROTOCOL;
			}
			if (rc != 0) {
				OPENSSL_cleanse(raw, rawlen);
				OPENSSL_cleanse(b64, strlen(b64));
				free(raw);
				free(b64);
				free(cmd);
				return rc;
			}
			conn_printf(cl->conn, "%s\r\n", b64);
		}
		OPENSSL_cleanse(raw, rawlen);
		OPENSSL_cleanse(b64, strlen(b64));
		free(raw);
		free(b64);
		free(cmd);
	} else {
		size_t cap = 2 * (ul + pl) + 32;
		char *qu = malloc(2 * ul + 4), *qp = malloc(2 * pl + 4);

		(void)cap;
		if (qu == NULL || qp == NULL || imap_quote_astring(user, qu, 2 * ul + 4) < 0 ||
		    imap_quote_astring(password, qp, 2 * pl + 4) < 0) {
			if (qp)
				OPENSSL_cleanse(qp, 2 * pl + 4);
			free(qu);
			free(qp);
			snprintf(err, errlen, "user name or password has CR/LF");
			return EX_CONFIG;
		}
		snprintf(tag, 16, "M%u", ++cl->tagn);
		if (cl->debug)
			log_debug("imap_send", "tag=%s cmd=%s", tag, log_q("LOGIN <user> ***"));
		conn_printf(cl->conn, "%s LOGIN %s %s\r\n", tag, qu, qp);
		OPENSSL_cleanse(qp, 2 * pl + 4);
		free(qu);
		free(qp);
	}
	return 0;
}

int imap_client_login_finish(struct imap_client *cl, const char *tag, int *have_caps,
			     char *err, size_t errlen)
{
	const struct imap_resp *fin = NULL;
	int rc = imap_client_wait(cl, tag, caps_cb, cl, &fin, err, errlen);

	*have_caps = 0;
	if (rc == EX_TEMPFAIL || rc == EX_PROTOCOL) {
		/* NO [AUTHENTICATIONFAILED] / NO: refused; [UNAVAILABLE]: try later */
		if (fin != NULL && fin->code != NULL && strcmp(fin->code, "UNAVAILABLE") == 0)
			return EX_TEMPFAIL;
		if (fin != NULL && fin->kind == IMAP_RESP_TAGGED)
			return EX_NOPERM;
		return rc;
	}
	if (rc != 0)
		return rc;
	if (fin->code != NULL && strcmp(fin->code, "CAPABILITY") == 0) {
		caps_from(cl, fin->code_arg);
		*have_caps = 1;
	}
	return 0;
}

int imap_client_capability(struct imap_client *cl, char *err, size_t errlen)
{
	return imap_client_cmd(cl, "CAPABILITY", caps_cb, cl, NULL, err, errlen);
}

int imap_client_login(struct imap_client *cl, const char *user, const char *password,
		      char *err, size_t errlen)
{
	char tag[16];
	int rc, have_caps;

	if ((rc = imap_client_login_send(cl, user, password, tag, err, errlen)) != 0 ||
	    (rc = imap_client_login_finish(cl, tag, &have_caps, err, errlen)) != 0)
		return rc;
	if (!have_caps)
		rc = imap_client_capability(cl, err, errlen);
	return rc;
}

/* Bytes of FD as CRLF text: every "\n" not preceded by "\r" counts 2. */
static int crlf_size(int fd, long long *out)
{
	char buf[65536];
	long long n = 0;
	int last_cr = 0;

	if (lseek(fd, 0, SEEK_SET) < 0)
		return -1;
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		ssize_t i;

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		for (i = 0; i < r; i++) {
			if (buf[i] == '\n' && !last_cr)
				n++;
			last_cr = buf[i] == '\r';
		}
		n += r;
	}
	*out = n;
	return lseek(fd, 0, SEEK_SET) < 0 ? -1 : 0;
}

/* Sends the SIZE bytes of FD (LF turned into CRLF) as a literal's body. */
static int send_literal(struct imap_client *cl, int fd, long long size, char *err, size_t errlen)
{
	char buf[32768], out[65536 + 8];
	long long sent = 0;
	int last_cr = 0;

	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		ssize_t i;
		size_t o = 0;

		if (r < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "read message: %s", strerror(errno));
			cl->dead = 1;	/* the literal cannot be completed */
			return EX_IOERR;
		}
		if (r == 0)
			break;
		for (i = 0; i < r; i++) {
			if (buf[i] == '\n' && !last_cr)
				out[o++] = '\r';
			last_cr = buf[i] == '\r';
			out[o++] = buf[i];
		}
		if (sent + (long long)o > size) {
			snprintf(err, errlen, "message changed while sending");
			cl->dead = 1;
			return EX_TEMPFAIL;
		}
		conn_write(cl->conn, out, o);
		sent += (long long)o;
	}
	if (sent != size) {
		snprintf(err, errlen, "message changed while sending");
		cl->dead = 1;
		return EX_TEMPFAIL;
	}
	return 0;
}

int imap_client_append_fd(struct imap_client *cl, const char *mbox, const char *flags,
			  time_t date, int fd, char tag[16], char *err, size_t errlen)
{
	char d[27];
	long long size;
	int plus = (cl->caps & IMAP_CAP_LITERALPLUS) != 0, rc;

	if (crlf_size(fd, &size) < 0) {
		snprintf(err, errlen, "read message: %s", strerror(errno));
		return EX_IOERR;
	}
	imap_date_format_datetime(d, date, 0);
	snprintf(tag, 16, "M%u", ++cl->tagn);
	if (cl->debug)
		log_debug("imap_send", "tag=%s cmd=APPEND mailbox=%s size=%lld", tag,
			  log_q(mbox), size);
	conn_printf(cl->conn, "%s APPEND %s (%s) \"%s\" {%lld%s}\r\n", tag, mbox, flags, d,
		    size, plus ? "+" : "");
	if (!plus) {
		const struct imap_resp *r;

		if ((rc = imap_client_read(cl, &r, err, errlen)) != 0)
			return rc;
		if (r->kind != IMAP_RESP_CONTINUE) {
			snprintf(err, errlen, "APPEND refused: %s %s", r->name ? r->name : "",
				 r->text);
			return r->kind == IMAP_RESP_TAGGED ? EX_TEMPFAIL : EX_PROTOCOL;
		}
	}
	if ((rc = send_literal(cl, fd, size, err, errlen)) != 0)
		return rc;
	conn_puts(cl->conn, "\r\n");
	return 0;
}

int imap_client_multiappend_add(struct imap_client *cl, const char *mbox, const char *flags,
				time_t date, int fd, char tag[16], long long *bytes,
				char *err, size_t errlen)
{
	char d[27];
	long long size;
	int rc;

	if (crlf_size(fd, &size) < 0) {
		/* nothing of this message was sent: the command can go on */
		snprintf(err, errlen, "read message: %s", strerror(errno));
		return EX_IOERR;
	}
	if (tag[0] == '\0') {
		snprintf(tag, 16, "M%u", ++cl->tagn);
		if (cl->debug)
			log_debug("imap_send", "tag=%s cmd=MULTIAPPEND mailbox=%s", tag,
				  log_q(mbox));
		conn_printf(cl->conn, "%s APPEND %s", tag, mbox);
	}
	if (cl->debug)
		log_debug("imap_send", "tag=%s append_size=%lld", tag, size);
	imap_date_format_datetime(d, date, 0);
	conn_printf(cl->conn, " (%s) \"%s\" {%lld+}\r\n", flags, d, size);
	if ((rc = send_literal(cl, fd, size, err, errlen)) != 0)
		return rc;
	*bytes = size;
	return 0;
}

void imap_client_multiappend_end(struct imap_client *cl)
{
	conn_puts(cl->conn, "\r\n");
}

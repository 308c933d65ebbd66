/* The SMTP submission session; see smtpd.h. */
#include "smtpd.h"

#include "auth.h"
#include "config.h"
#include "fsutil.h"
#include "conn.h"
#include "log.h"
#include "queue.h"
#include "relay.h"
#include "server.h"
#include "smtp-parser.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define REPLY_AUTH_FAILED "535 5.7.8 Error: authentication failed: (reason unavailable)"

struct smtpd {
	const struct smtpd_opts *o;
	const struct config *cfg;
	struct conn *conn;
	char peer[64];
	char host[300];			/* our name in replies */
	char helo[80];
	int greeted;			/* 0 none, 1 HELO, 2 EHLO */
	int plaintext_ok;
	int authed;
	int auth_failures;
	int errors;
	int closing;
	char user[AUTH_MAX_USER + 1];
	char qdir[4096];
	struct queue_env *env;		/* the transaction after MAIL, or NULL */
	char inbuf[SMTPD_INBUF];
	size_t inoff, inlen;
	int skipping;			/* discarding the rest of an over-long line */
};

enum { RL_OK = 0, RL_TOO_LONG = 1 };	/* plus CONN_* (< 0) */

static void reply(struct smtpd *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(struct smtpd *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conn_vprintf(s->conn, fmt, ap);
	va_end(ap);
	conn_puts(s->conn, "\r\n");
	if (log_verbosity() >= 2) {
		char line[512];
		va_start(ap, fmt);
		vsnprintf(line, sizeof(line), fmt, ap);
		va_end(ap);
		log_debug("smtp_out", "peer=%s line=%s", s->peer, log_q(line));
	}
}

/* Reads more input after flushing our replies; 0 or CONN_*. */
static int fill(struct smtpd *s)
{
	ssize_t r;

	if (s->inoff > 0) {
		memmove(s->inbuf, s->inbuf + s->inoff, s->inlen - s->inoff);
		s->inlen -= s->inoff;
		s->inoff = 0;
	}
	if (conn_flush(s->conn) != 0)
		return CONN_ERROR;
	if (s->inlen >= sizeof(s->inbuf))
		return CONN_ERROR;	/* cannot happen: lines are limited below the buffer */
	r = conn_read(s->conn, s->inbuf + s->inlen, sizeof(s->inbuf) - s->inlen);
	if (r < 0)
		return (int)r;
	s->inlen += (size_t)r;
	return 0;
}

/*
 * One line (NUL-terminated, without its line end) of at most MAX bytes.
 * A longer line is consumed up to its end and reported as RL_TOO_LONG.
 */
static int read_line(struct smtpd *s, size_t max, char **line, size_t *len)
{
	for (;;) {
		char *p = s->inbuf + s->inoff;
		size_t avail = s->inlen - s->inoff, ll, cons;
		int bare;

		if (s->skipping) {
			char *nl = memchr(p, '\n', avail);
			if (nl != NULL) {
				s->inoff += (size_t)(nl - p) + 1;
				s->skipping = 0;
				return RL_TOO_LONG;
			}
			s->inoff = s->inlen;
		} else {
			int r = smtp_line_find(p, avail, max, &ll, &cons, &bare);
			if (r == SMTP_LINE_OK) {
				s->inoff += cons;
				p[ll] = '\0';
				*line = p;
				*len = ll;
				return RL_OK;
			}
			if (r == SMTP_LINE_TOO_LONG) {
				s->skipping = 1;
				continue;
			}
		}
		int f = fill(s);
		if (f < 0)
			return f;
	}
}

static void end_transaction(struct smtpd *s)
{
	free(s->env);
	s->env = NULL;
}

static int tls_ok(const struct smtpd *s)
{
	return conn_is_tls(s->conn) || s->plaintext_ok;
}

static void cmd_ehlo(struct smtpd *s, const struct smtp_command *c, int ehlo)
{
	size_t i, n = 0;

	if (c->arglen == 0) {
		reply(s, "501 5.5.4 Syntax: %s hostname", ehlo ? "EHLO" : "HELO");
		return;
	}
	for (i = 0; i < c->arglen && n < sizeof(s->helo) - 1; i++) {
		unsigned char ch = (unsigned char)c->arg[i];
		if (ch == ' ')
			break;
		s->helo[n++] = (ch > 0x20 && ch < 0x7f && ch != '(' && ch != ')') ? (char)ch : '?';
	}
	s->helo[n] = '\0';
	end_transaction(s);
	s->greeted = ehlo ? 2 : 1;
	if (!ehlo) {
		reply(s, "250 %s", s->host);
		return;
	}
	const char *ext[10];
	char size[64];
	int k = 0;
	snprintf(size, sizeof(size), "SIZE %lld", s->o->max_size);
	ext[k++] = "PIPELINING";
	ext[k++] = size;
	if (!conn_is_tls(s->conn) && s->o->tls_ctx != NULL)
		ext[k++] = "STARTTLS";
	if (tls_ok(s))
		ext[k++] = "AUTH PLAIN LOGIN";
	ext[k++] = "ENHANCEDSTATUSCODES";
	ext[k++] = "8BITMIME";
	if (s->o->smtputf8)
		ext[k++] = "SMTPUTF8";
	reply(s, "250-%s", s->host);
	for (int j = 0; j < k; j++)
		reply(s, "250%c%s", j == k - 1 ? ' ' : '-', ext[j]);
}

static void cmd_starttls(struct smtpd *s, const struct smtp_command *c)
{
	char err[512];

	if (conn_is_tls(s->conn)) {
		reply(s, "554 5.5.1 Error: TLS already active");
		return;
	}
	if (s->o->tls_ctx == NULL) {
		reply(s, "502 5.5.1 Error: command not implemented");
		return;
	}
	if (c->arglen != 0) {
		reply(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	if (conn_flush(s->conn) != 0) {
		s->closing = 1;
		return;
	}
	if (s->inoff < s->inlen)
		log_info("starttls_injection", "peer=%s discarded=%zu", s->peer,
			 s->inlen - s->inoff);
	/* plaintext pipelined after STARTTLS must not be read as if it came over TLS */
	s->inoff = s->inlen = 0;
	s->skipping = 0;
	if (conn_start_tls_server(s->conn, s->o->tls_ctx, err, sizeof(err)) != 0) {
		log_info("tls_failed", "peer=%s error=%s", s->peer, log_q(err));
		s->closing = 1;
		return;
	}
	/* RFC 3207 4.2: forget everything learnt before TLS */
	end_transaction(s);
	s->greeted = 0;
	s->authed = 0;
	s->user[0] = '\0';
}


/*
 * One SASL response: the initial response INIT if given, else a "334
 * CHALLENGE" and a line.  Decoded bytes, or -1 after answering (or -2 if
 * the connection is gone).
 */
static long sasl_read(struct smtpd *s, const char *init, size_t initlen,
		      const char *challenge, unsigned char *out, size_t outlen)
{
	char *line;
	size_t len;
	long n;

	if (init == NULL) {
		reply(s, "334 %s", challenge);
		int r = read_line(s, SMTP_MAX_AUTH_LINE, &line, &len);
		if (r == RL_TOO_LONG) {
			reply(s, "500 5.5.6 Authentication exchange line is too long");
			return -1;
		}
		if (r != RL_OK) {
			if (r == CONN_TIMEOUT)
				reply(s, "421 4.4.2 %s Error: timeout exceeded", s->host);
			s->closing = 1;
			return -2;
		}
		init = line;
		initlen = len;
	}
	if (initlen == 1 && init[0] == '*') {
		reply(s, "501 5.7.0 Authentication aborted");
		return -1;
	}
	if (initlen == 1 && init[0] == '=')
		return 0;
	n = auth_b64_decode(init, initlen, out, outlen);
	if (n < 0) {
		reply(s, "501 5.5.2 Cannot decode response");
		return -1;
	}
	return n;
}

static void auth_done(struct smtpd *s, const char *user, size_t ulen, const char *pass,
		      size_t plen)
{
	struct auth_result res;
	enum auth_status st;

	conn_flush(s->conn);
	st = auth_check(s->o->auth, user, ulen, pass, plen, s->peer, &res);
	if (st == AUTH_OK) {
		s->authed = 1;
		snprintf(s->user, sizeof(s->user), "%s", res.login);
		log_info("login", "user=%s peer=%s tls=%s", log_q(s->user), s->peer,
			 log_q(conn_tls_desc(s->conn)));
		reply(s, "235 2.7.0 Authentication successful");
	} else if (st == AUTH_UNAVAILABLE) {
		reply(s, "454 4.7.0 Temporary authentication failure");
	} else {
		s->auth_failures++;
		reply(s, REPLY_AUTH_FAILED);
		if (s->auth_failures >= SMTPD_MAX_AUTH_FAILURES) {
			reply(s, "421 4.7.0 %s Error: too many authentication failures", s->host);
			s->closing = 1;
		}
	}
	explicit_bzero(&res, sizeof(res));
}

static void cmd_auth(struct smtpd *s, const struct smtp_command *c)
{
	unsigned char buf[SMTP_MAX_AUTH_LINE], ubuf[AUTH_MAX_USER * 2 + 8];
	const char *init = NULL;
	size_t ml = 0, initlen = 0;
	long n, un;

	if (!s->greeted) {
		reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (s->authed) {
		reply(s, "503 5.5.1 Error: already authenticated");
		return;
	}
	if (s->env != NULL) {
		reply(s, "503 5.5.1 Error: MAIL transaction in progress");
		return;
	}
	while (ml < c->arglen && c->arg[ml] != ' ')
		ml++;
	if (ml < c->arglen) {
		init = c->arg + ml + 1;
		initlen = c->arglen - ml - 1;
	}
	if (ml == 5 && strncasecmp(c->arg, "PLAIN", 5) == 0) {
		n = sasl_read(s, init, initlen, "", buf, sizeof(buf) - 1);
		if (n < 0)
			return;
		/* authzid NUL authcid NUL passwd */
		unsigned char *z1 = memchr(buf, '\0', (size_t)n), *z2;
		if (z1 == NULL || (z2 = memchr(z1 + 1, '\0', (size_t)(buf + n - (z1 + 1)))) == NULL) {
			explicit_bzero(buf, sizeof(buf));
			reply(s, "501 5.5.2 Invalid authentication data");
			return;
		}
		const char *authz = (const char *)buf, *user = (const char *)z1 + 1;
		size_t azl = (size_t)(z1 - buf), ul = (size_t)(z2 - (z1 + 1));
		if (azl != 0 && (azl != ul || memcmp(authz, user, ul) != 0)) {
			/* acting as someone else is not offered */
			explicit_bzero(buf, sizeof(buf));
			s->auth_failures++;
			reply(s, REPLY_AUTH_FAILED);
			return;
		}
		auth_done(s, user, ul, (const char *)z2 + 1, (size_t)(buf + n - (z2 + 1)));
		explicit_bzero(buf, sizeof(buf));
	} else if (ml == 5 && strncasecmp(c->arg, "LOGIN", 5) == 0) {
		un = sasl_read(s, init, initlen, "VXNlcm5hbWU6", ubuf, sizeof(ubuf) - 1);
		if (un < 0)
			return;
		n = sasl_read(s, NULL, 0, "UGFzc3dvcmQ6", buf, sizeof(buf) - 1);
		if (n < 0) {
			explicit_bzero(buf, sizeof(buf));
			return;
		}
		auth_done(s, (const char *)ubuf, (size_t)un, (const char *)buf, (size_t)n);
		explicit_bzero(buf, sizeof(buf));
	} else {
		reply(s, "504 5.5.4 Unrecognized authentication type");
	}
}

static const char *path_error(int rc, int mail)
{
	switch (rc) {
	case SMTP_PATH_BAD_ADDR:
		return mail ? "553 5.1.7 Bad sender address syntax"
			    : "553 5.1.3 Bad recipient address syntax";
	case SMTP_PATH_BAD_PARAM:
		return "555 5.5.4 Unsupported option";
	case SMTP_PATH_TOO_LONG:
		return mail ? "501 5.1.7 Address too long" : "501 5.1.3 Address too long";
	default:
		return mail ? "501 5.5.4 Syntax: MAIL FROM:<address>"
			    : "501 5.5.4 Syntax: RCPT TO:<address>";
	}
}

static void cmd_mail(struct smtpd *s, const struct smtp_command *c)
{
	struct smtp_path p;
	int rc;

	if (!s->greeted) {
		reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (!s->authed) {
		reply(s, "530 5.7.0 Authentication required");
		return;
	}
	if (s->env != NULL) {
		reply(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	rc = smtp_parse_path(c->arg, c->arglen, "FROM", 1, &p);
	if (rc != SMTP_PATH_OK) {
		reply(s, "%s", path_error(rc, 1));
		return;
	}
	if (p.smtputf8 && !s->o->smtputf8) {
		reply(s, "555 5.5.4 SMTPUTF8 is not supported");
		return;
	}
	if (p.utf8_addr && !p.smtputf8) {
		reply(s, "553 5.6.7 Non-ASCII address needs SMTPUTF8");
		return;
	}
	if (p.size > s->o->max_size) {
		reply(s, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	if (!smtp_addr_equal(p.addr, s->user)) {
		log_info("sender_mismatch", "user=%s sender=%s peer=%s", log_q(s->user),
			 log_q(p.addr), s->peer);
		reply(s, "553 5.7.1 <%s>: Sender address rejected: not owned by user %s", p.addr,
		      s->user);
		return;
	}
	s->env = calloc(1, sizeof(*s->env));
	if (s->env == NULL) {
		reply(s, "451 4.3.0 Error: out of memory");
		return;
	}
	snprintf(s->env->sender, sizeof(s->env->sender), "%s", p.addr);
	snprintf(s->env->user, sizeof(s->env->user), "%s", s->user);
	s->env->body_8bit = p.body == SMTP_BODY_8BITMIME;
	s->env->smtputf8 = p.smtputf8;
	reply(s, "250 2.1.0 Ok");
}

static void cmd_rcpt(struct smtpd *s, const struct smtp_command *c)
{
	struct smtp_path p;
	struct queue_rcpt *r;
	char canon[SMTP_MAX_ADDR + 1], err[512];
	const char *dom;
	int rc, local = 0;

	if (s->env == NULL) {
		reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	rc = smtp_parse_path(c->arg, c->arglen, "TO", 0, &p);
	if (rc != SMTP_PATH_OK) {
		reply(s, "%s", path_error(rc, 0));
		return;
	}
	if (p.utf8_addr && !s->env->smtputf8) {
		reply(s, "553 5.6.7 Non-ASCII address needs SMTPUTF8");
		return;
	}
	if (s->env->nrcpts >= QUEUE_MAX_RCPTS) {
		reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	snprintf(canon, sizeof(canon), "%s", p.addr);
	dom = smtp_addr_domain(p.addr);
	if (dom != NULL && s->cfg->domain != NULL && strcasecmp(dom, s->cfg->domain) == 0) {
		rc = relay_local_known(s->cfg, s->o->auth, p.addr, canon, sizeof(canon), err,
				       sizeof(err));
		if (rc < 0) {
			log_warn("rcpt_lookup", "rcpt=%s error=%s", log_q(p.addr), log_q(err));
			reply(s, "451 4.3.0 <%s>: Temporary lookup failure", p.addr);
			return;
		}
		if (rc == 0) {
			reply(s, "550 5.1.1 <%s>: Recipient address rejected: User unknown in "
			      "virtual mailbox table", p.addr);
			return;
		}
		local = 1;
	} else if (!s->cfg->relay.present) {
		reply(s, "554 5.7.1 <%s>: Relay access denied", p.addr);
		return;
	}
	for (size_t i = 0; i < s->env->nrcpts; i++) {
		if (smtp_addr_equal(s->env->rcpts[i].addr, canon)) {
			reply(s, "250 2.1.5 Ok");
			return;
		}
	}
	r = &s->env->rcpts[s->env->nrcpts++];
	memset(r, 0, sizeof(*r));
	snprintf(r->addr, sizeof(r->addr), "%s", canon);
	r->local = local;
	r->state = QUEUE_RCPT_PENDING;
	reply(s, "250 2.1.5 Ok");
}

/* The Received: trace field we put first (RFC 5321 4.4). */
static int received_line(struct smtpd *s, char *buf, size_t len)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	int n;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	n = snprintf(buf, len,
		     "Received: from %s (%s)\r\n\tby %s (mailkeep) with %s id %s;\r\n\t%s\r\n",
		     s->helo[0] ? s->helo : "unknown", s->peer, s->host,
		     conn_is_tls(s->conn) ? (s->greeted == 2 ? "ESMTPSA" : "SMTPSA")
					  : (s->greeted == 2 ? "ESMTPA" : "SMTPA"),
		     s->env->id, date);
	return n < 0 || (size_t)n >= len ? -1 : n;
}

/* Checks the From: field against the login; NULL if fine, else the reply. */
static const char *check_from(struct smtpd *s, const char *hdr, size_t hlen, char *rbuf,
			      size_t rlen)
{
	char addrs[8][SMTP_MAX_ADDR + 1];
	int n = smtp_header_from(hdr, hlen, addrs, 8);

	if (n < 0)
		return "550 5.6.0 Error: malformed From: header";
	if (n == 0)
		return "553 5.7.1 Error: message has no From: address";
	for (int i = 0; i < n && i < 8; i++) {
		if (!smtp_addr_equal(addrs[i], s->user)) {
			log_info("from_mismatch", "user=%s from=%s peer=%s", log_q(s->user),
				 log_q(addrs[i]), s->peer);
			snprintf(rbuf, rlen, "553 5.7.1 <%.320s>: From: address not owned by user %.320s",
				 addrs[i], s->user);
			return rbuf;
		}
	}
	if (n > 8)
		return "553 5.7.1 Error: too many From: addresses";
	return NULL;
}

static void cmd_data(struct smtpd *s, const struct smtp_command *c)
{
	struct smtp_dot dot;
	char *out = NULL, *hdr = NULL, rbuf[700], err[512];
	const char *bad = NULL;
	size_t hlen = 0;
	int fd = -1, hdr_done = 0, hdr_full = 0, too_big = 0, werr = 0, gone = 0, rc;
	long long written = 0;

	if (s->env == NULL) {
		reply(s, "503 5.5.1 Error: need RCPT command");
		return;
	}
	if (s->env->nrcpts == 0) {
		reply(s, "554 5.5.1 Error: no valid recipients");
		return;
	}
	if (c->arglen != 0) {
		reply(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (s->qdir[0] == '\0' &&
	    queue_init(s->cfg->state_dir, s->qdir, sizeof(s->qdir), err, sizeof(err)) != 0) {
		s->qdir[0] = '\0';
		log_err("queue", "error=%s", log_q(err));
		reply(s, "451 4.3.0 Error: queue file write error");
		return;
	}
	out = malloc(SMTPD_INBUF + 4);
	hdr = malloc(SMTPD_MAX_HEADER);
	queue_new_id(s->env->id);
	if (out == NULL || hdr == NULL ||
	    queue_msg_begin(s->qdir, s->env->id, &fd, err, sizeof(err)) != 0) {
		if (out != NULL && hdr != NULL)
			log_err("queue", "error=%s", log_q(err));
		free(out);
		free(hdr);
		reply(s, "451 4.3.0 Error: queue file write error");
		return;
	}
	rc = received_line(s, rbuf, sizeof(rbuf));
	if (rc < 0 || fsutil_write_all(fd, rbuf, (size_t)rc) != 0)
		werr = 1;
	else
		written = rc;
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
	smtp_dot_init(&dot);
	while (!dot.done) {
		size_t olen, used;
		if (s->inoff == s->inlen) {
			int r = fill(s);
			if (r < 0) {
				if (r == CONN_TIMEOUT)
					reply(s, "421 4.4.2 %s Error: timeout exceeded", s->host);
				gone = 1;
				break;
			}
		}
		used = smtp_dot_feed(&dot, s->inbuf + s->inoff, s->inlen - s->inoff, out, &olen);
		s->inoff += used;
		if (!hdr_done && olen > 0) {
			size_t take = olen, from = hlen > 3 ? hlen - 3 : 0;
			if (take > SMTPD_MAX_HEADER - hlen)
				take = SMTPD_MAX_HEADER - hlen;
			memcpy(hdr + hlen, out, take);
			hlen += take;
			if ((hlen >= 2 && hdr[0] == '\r' && hdr[1] == '\n') ||
			    memmem(hdr + from, hlen - from, "\r\n\r\n", 4) != NULL)
				hdr_done = 1;
			else if (hlen == SMTPD_MAX_HEADER)
				hdr_full = 1, hdr_done = 1;
		}
		if (dot.bytes > (unsigned long long)s->o->max_size)
			too_big = 1;
		if (!too_big && !werr && olen > 0) {
			if (fsutil_write_all(fd, out, olen) != 0)
				werr = 1;
			written += (long long)olen;
		}
	}
	if (!hdr_done && dot.done)
		hdr_done = 1;	/* a message that is all header */
	if (gone) {
		log_info("data_aborted", "peer=%s user=%s bytes=%llu", s->peer, log_q(s->user),
			 dot.bytes);
		s->closing = 1;
	} else if (werr) {
		log_err("queue", "id=%s error=write failed", s->env->id);
		bad = "451 4.3.0 Error: queue file write error";
	} else if (too_big) {
		bad = "552 5.3.4 Message size exceeds fixed limit";
	} else if (dot.bare_lf || dot.bare_cr) {
		bad = "550 5.6.0 Error: bare <CR> or <LF> in message; use <CR><LF> line ends";
	} else if (dot.max_line > SMTP_MAX_DATA_LINE) {
		bad = "550 5.6.0 Error: message has a line longer than 1000 octets";
	} else if (hdr_full) {
		bad = "552 5.6.0 Error: message header too large";
	} else {
		bad = check_from(s, hdr, hlen, rbuf, sizeof(rbuf));
	}
	if (gone || bad != NULL) {
		queue_msg_abort(s->qdir, s->env->id, fd);
		if (bad != NULL)
			reply(s, "%s", bad);
	} else {
		s->env->created = time(NULL);
		s->env->size = written;
		rc = queue_msg_commit(s->qdir, fd, s->env, err, sizeof(err));
		if (rc != 0) {
			log_err("queue", "id=%s error=%s", s->env->id, log_q(err));
			reply(s, "451 4.3.0 Error: queue file write error");
		} else {
			log_info("queued", "id=%s user=%s from=%s nrcpt=%zu size=%lld peer=%s",
				 s->env->id, log_q(s->user), log_q(s->env->sender), s->env->nrcpts,
				 written, s->peer);
			reply(s, "250 2.0.0 Ok: queued as %s", s->env->id);
			if (s->o->on_queued != NULL) {
				conn_flush(s->conn);
				s->o->on_queued(s->o->on_queued_arg, s->env->id);
			}
		}
	}
	explicit_bzero(hdr, SMTPD_MAX_HEADER);
	free(hdr);
	free(out);
	end_transaction(s);
}

static int dispatch(struct smtpd *s, const struct smtp_command *c)
{
	/* before TLS only these (smtpd_tls_security_level = encrypt) */
	if (!tls_ok(s) && c->verb != SMTP_EHLO && c->verb != SMTP_HELO &&
	    c->verb != SMTP_STARTTLS && c->verb != SMTP_NOOP && c->verb != SMTP_RSET &&
	    c->verb != SMTP_QUIT) {
		reply(s, "530 5.7.0 Must issue a STARTTLS command first");
		return 1;
	}
	switch (c->verb) {
	case SMTP_EHLO: cmd_ehlo(s, c, 1); return 0;
	case SMTP_HELO: cmd_ehlo(s, c, 0); return 0;
	case SMTP_STARTTLS: cmd_starttls(s, c); return 0;
	case SMTP_AUTH: cmd_auth(s, c); return 0;
	case SMTP_MAIL: cmd_mail(s, c); return 0;
	case SMTP_RCPT: cmd_rcpt(s, c); return 0;
	case SMTP_DATA: cmd_data(s, c); return 0;
	case SMTP_RSET:
		end_transaction(s);
		reply(s, "250 2.0.0 Ok");
		return 0;
	case SMTP_NOOP:
		reply(s, "250 2.0.0 Ok");
		return 0;
	case SMTP_QUIT:
		reply(s, "221 2.0.0 Bye");
		s->closing = 1;
		return 0;
	case SMTP_VRFY:
		reply(s, "502 5.5.1 VRFY command is disabled");
		return 0;
	case SMTP_HELP:
		reply(s, "214 2.0.0 Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP QUIT");
		return 0;
	case SMTP_BDAT:
	case SMTP_EXPN:
		reply(s, "502 5.5.1 Error: command not implemented");
		return 1;
	default:
		reply(s, "502 5.5.2 Error: command not recognized");
		return 1;
	}
}

static int session_loop(struct smtpd *s)
{
	while (!s->closing) {
		struct smtp_command c;
		char *line;
		size_t len;
		int r = read_line(s, SMTP_MAX_LINE, &line, &len);

		if (r == CONN_TIMEOUT) {
			reply(s, "421 4.4.2 %s Error: timeout exceeded", s->host);
			break;
		}
		if (r < 0)
			break;
		if (r == RL_TOO_LONG) {
			reply(s, "500 5.5.2 Error: line too long");
			s->errors++;
		} else if (smtp_parse_command(line, len, &c) != 0) {
			reply(s, "500 5.5.2 Error: bad syntax");
			s->errors++;
		} else {
			if (log_verbosity() >= 2)
				log_debug("smtp_in", "peer=%s line=%s", s->peer,
					  log_q(c.verb == SMTP_AUTH ? "AUTH ..." : line));
			s->errors += dispatch(s, &c);
		}
		if (s->errors >= SMTPD_MAX_ERRORS && !s->closing) {
			reply(s, "421 4.7.0 %s Error: too many errors", s->host);
			break;
		}
	}
	conn_flush(s->conn);
	return 0;
}

/* 1 if the client sent bytes before our greeting (an EOF does not count). */
static int pregreet(struct smtpd *s, int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;

	if (conn_pending(s->conn) > 0)
		return 1;
	if (conn_is_tls(s->conn))
		return 0;	/* it completed a handshake: a real client; bytes are encrypted */
	/*
	 * A session starts within microseconds of the connection (a reused
	 * worker): give an early talker's bytes the time to arrive.
	 */
	if (poll(&p, 1, SMTPD_PREGREET_MS) <= 0)
		return 0;
	return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

int smtpd_session(const struct smtpd_opts *o, int fd_in, int fd_out, const char *peer)
{
	struct smtpd *s = calloc(1, sizeof(*s));
	const struct config *cfg = o->cfg;
	char err[512];

	if (s == NULL)
		return EX_OSERR;
	s->o = o;
	s->cfg = cfg;
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	if (cfg->domain != NULL)
		snprintf(s->host, sizeof(s->host), "%s.%s", cfg->subdomain ? cfg->subdomain : "smtp",
			 cfg->domain);
	else
		snprintf(s->host, sizeof(s->host), "localhost");
	s->conn = conn_new(fd_in, fd_out);
	if (s->conn == NULL) {
		free(s);
		return EX_OSERR;
	}
	s->plaintext_ok = o->allow_plaintext && server_peer_is_loopback(fd_in);
	/*
	 * Replies are written whole, one flush per batch of commands: Nagle
	 * would only hold back the second of two TLS records (the session
	 * tickets, a reply after a record) until the client's delayed ACK,
	 * 40 ms a step.  Not a socket (a pipe in tests): nothing to do.
	 */
	setsockopt(fd_out, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	conn_set_timeout(s->conn, o->timeout > 0 ? o->timeout : SMTPD_TIMEOUT);
	if (o->implicit_tls &&
	    conn_start_tls_server(s->conn, o->tls_ctx, err, sizeof(err)) != 0) {
		log_info("tls_failed", "peer=%s error=%s", s->peer, log_q(err));
		goto out;
	}
	/* a client that talks before our greeting is not a mail client (pregreet) */
	if (pregreet(s, fd_in)) {
		log_info("pregreet", "peer=%s", s->peer);
		reply(s, "554 5.5.0 %s Error: SMTP protocol synchronization", s->host);
		conn_flush(s->conn);
		goto out;
	}
	reply(s, "220 %s ESMTP mailkeep", s->host);
	log_debug("connect", "peer=%s tls=%s", s->peer, log_q(conn_tls_desc(s->conn)));
	session_loop(s);
	log_info("disconnect", "peer=%s user=%s in=%llu out=%llu", s->peer,
		 log_q(s->user[0] ? s->user : "-"), conn_bytes_in(s->conn),
		 conn_bytes_out(s->conn));
out:
	end_transaction(s);
	conn_free(s->conn);
	explicit_bzero(s->inbuf, sizeof(s->inbuf));
	free(s);
	return 0;
}

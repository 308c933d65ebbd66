/*
 * The IMAP session before login (mail-serve-imap): implicit TLS, STARTTLS,
 * LOGIN and AUTHENTICATE, then the handoff.
 *
 * After a successful login (or --home) this process hands the connection
 * to the session binary (opts->session_path, mail-imap-session), which
 * links only libc and zlib, like dovecot's imap-login -> imap:
 *  - plaintext: exec in place, the client socket on stdin/stdout;
 *  - TLS: fork; the child execs the session on one end of a socketpair
 *    and this process relays between TLS and that socketpair until either
 *    side closes (so the TLS key and OpenSSL stay out of the session).
 * What the session needs travels in a memfd (lib/imapd-handoff.h).  If
 * the exec fails this process serves the session itself.
 */
#include "imapd.h"

#include "auth.h"
#include "conn.h"
#include "imapd-handoff.h"
#include "log.h"
#include "server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include <openssl/evp.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* ---- the handoff ------------------------------------------------------ */

/* Sets close-on-exec on every descriptor >= LOW. */
static void cloexec_from(int low)
{
	DIR *d;
	struct dirent *e;

	if (syscall(SYS_close_range, (unsigned)low, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	d = opendir("/proc/self/fd");
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);
		if (fd >= low && fd != dirfd(d))
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	closedir(d);
}

/*
 * Execs the session binary with IN/OUT as its stdin/stdout and HANDOFF as
 * IMAPD_HANDOFF_FD; every other descriptor but stderr is closed by the
 * exec.  Returns only on failure (errno set), with the caller's
 * descriptors still open.
 */
static void exec_session(const char *path, int in, int out, int handoff)
{
	char *const argv[] = { "mail-imap-session", NULL };
	int a = fcntl(in, F_DUPFD_CLOEXEC, 10);
	int b = fcntl(out, F_DUPFD_CLOEXEC, 10);
	int h = fcntl(handoff, F_DUPFD_CLOEXEC, 10);
	int e;

	if (a < 0 || b < 0 || h < 0 || dup2(a, STDIN_FILENO) < 0 || dup2(b, STDOUT_FILENO) < 0 ||
	    dup2(h, IMAPD_HANDOFF_FD) < 0)
		goto fail;
	cloexec_from(IMAPD_HANDOFF_FD + 1);
	execv(path, argv);
fail:
	e = errno;
	if (a >= 0)
		close(a);
	if (b >= 0)
		close(b);
	if (h >= 0)
		close(h);
	errno = e;
}

/*
 * Relays between the client connection C (TLS) and FD, the session's end
 * of the socketpair, until the session closes it.  Writes to the session
 * never block (a full socketpair would otherwise deadlock against the
 * session writing a long response); writes to the client may, as they
 * would for the session itself.
 */
static void tls_proxy(struct conn *c, int fd)
{
	char up[16384], down[16384];
	size_t uplen = 0, upoff = 0;
	int client_open = 1;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	conn_set_timeout(c, 300);
	for (;;) {
		int client_ready = 0;
		if (client_open && uplen == 0 && conn_wait(c, -1, 0) == 1) {
			client_ready = 1;	/* bytes waiting inside TLS or the socket */
		} else {
			struct pollfd p[2] = {
				{ .fd = conn_fd_in(c),
				  .events = client_open && uplen == 0 ? POLLIN : 0 },
				{ .fd = fd, .events = POLLIN | (uplen > 0 ? POLLOUT : 0) },
			};
			if (poll(p, 2, -1) < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t r = read(fd, down, sizeof(down));
				if (r > 0) {
					if (conn_write(c, down, (size_t)r) != 0 || conn_flush(c) != 0)
						client_open = 0;	/* keep draining the session */
				} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
					break;	/* the session ended */
				}
			}
			client_ready = client_open && uplen == 0 && p[0].revents != 0;
		}
		if (client_ready) {
			ssize_t r = conn_read(c, up, sizeof(up));
			if (r > 0) {
				uplen = (size_t)r;
				upoff = 0;
				/* where a literal ends is the session's business: ACK every read */
				conn_ack_now(c);
			} else {
				/* the client left: the session reads EOF and ends */
				client_open = 0;
				shutdown(fd, SHUT_WR);
			}
		}
		if (uplen > 0) {
			ssize_t w = write(fd, up + upoff, uplen - upoff);
			if (w > 0) {
				upoff += (size_t)w;
				if (upoff == uplen)
					uplen = upoff = 0;
			} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
				break;
			}
		}
	}
	explicit_bzero(up, sizeof(up));
}

/*
 * Hands the logged-in client to the session binary.  0 once the session
 * has served it (TLS; plaintext never returns), -1 if it could not start
 * (logged; nothing was sent to the client).
 */
static int handoff(struct imapd *s, const char *tag)
{
	struct imapd_handoff h = {
		.user = s->user, .home = s->home, .peer = s->peer, .tag = (char *)tag,
		.verbose = log_verbosity(), .cfg = (struct config *)s->cfg,
		.input = s->inbuf + s->inoff, .inputlen = s->inlen - s->inoff,
	};
	int hfd, sv[2], ok[2], status = 0;
	char errbuf[sizeof(int)];
	pid_t pid;
	ssize_t r;

	if (conn_flush(s->conn) != 0 || conn_pending(s->conn) > 0 || conn_is_deflate(s->conn))
		return -1;
	h.bytes_in = conn_bytes_in(s->conn);
	h.bytes_out = conn_bytes_out(s->conn);
	hfd = memfd_create("mailkeep-handoff", MFD_CLOEXEC);
	if (hfd < 0 || imapd_handoff_write(hfd, &h) != 0 || lseek(hfd, 0, SEEK_SET) != 0) {
		log_err("handoff", "user=%s error=%s", log_q(s->user), log_q(strerror(errno)));
		if (hfd >= 0)
			close(hfd);
		return -1;
	}
	if (!conn_is_tls(s->conn)) {
		exec_session(s->opts->session_path, conn_fd_in(s->conn),
			     conn_fd_out(s->conn), hfd);
		log_err("handoff", "user=%s path=%s error=%s", log_q(s->user),
			log_q(s->opts->session_path), log_q(strerror(errno)));
		close(hfd);
		return -1;
	}
	/* ok[]: closed by a successful exec, else carries its errno */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		log_err("handoff", "user=%s error=%s", log_q(s->user), log_q(strerror(errno)));
		close(hfd);
		return -1;
	}
	if (pipe2(ok, O_CLOEXEC) != 0 || (pid = fork()) < 0) {
		log_err("handoff", "user=%s error=%s", log_q(s->user), log_q(strerror(errno)));
		close(sv[0]);
		close(sv[1]);
		close(hfd);
		return -1;
	}
	if (pid == 0) {
		int e;
		close(ok[0]);
		close(sv[0]);
		exec_session(s->opts->session_path, sv[1], sv[1], hfd);
		e = errno;
		(void)!write(ok[1], &e, sizeof(e));
		_exit(EX_OSERR);
	}
	close(ok[1]);
	close(sv[1]);
	close(hfd);
	do
		r = read(ok[0], errbuf, sizeof(errbuf));
	while (r < 0 && errno == EINTR);
	close(ok[0]);
	if (r != 0) {
		int e = 0;
		if (r == (ssize_t)sizeof(e))
			memcpy(&e, errbuf, sizeof(e));
		log_err("handoff", "user=%s path=%s error=%s", log_q(s->user),
			log_q(s->opts->session_path), log_q(strerror(e)));
		close(sv[0]);
		waitpid(pid, NULL, 0);
		return -1;
	}
	tls_proxy(s->conn, sv[0]);
	close(sv[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	/* the session is a child of this proxy, not of the server: say how it ended */
	if (WIFSIGNALED(status))
		log_err("session_exit", "user=%s pid=%ld signal=%d", log_q(s->user), (long)pid,
			WTERMSIG(status));
	else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		log_warn("session_exit", "user=%s pid=%ld status=%d", log_q(s->user), (long)pid,
			 WEXITSTATUS(status));
	return 0;
}

/* After a successful login (TAG) or --home (TAG NULL: PREAUTH greeting). */
static void logged_in(struct imapd *s, const char *tag)
{
	if (s->opts->session_path != NULL && handoff(s, tag) == 0) {
		s->handed_off = 1;
		s->state = IMAPD_LOGOUT;
		return;
	}
	s->state = IMAPD_AUTH;
	if (tag != NULL)
		imapd_tagged(s, tag, "OK [CAPABILITY %s] Logged in", imapd_capability(s));
	else
		imapd_untagged(s, "PREAUTH [CAPABILITY %s] Logged in as %s", imapd_capability(s),
			       s->user);
}

/* ---- authentication --------------------------------------------------- */

static int login_allowed(struct imapd *s, const char *tag)
{
	if (conn_is_tls(s->conn) || s->plaintext_ok)
		return 1;
	imapd_tagged(s, tag, "NO [PRIVACYREQUIRED] Plaintext authentication disallowed on "
		     "non-secure (SSL/TLS) connections.");
	return 0;
}

static void login_done(struct imapd *s, const char *tag, enum auth_status st,
		       const struct auth_result *res)
{
	if (st == AUTH_OK) {
		snprintf(s->user, sizeof(s->user), "%s", res->login);
		if (imapd_enter_home(s, res->home) != 0) {
			imapd_tagged(s, tag, "NO [SERVERBUG] Cannot open your mailbox. "
				     "The administrator has been told.");
			return;
		}
		log_info("login", "user=%s peer=%s tls=%s", log_q(s->user), s->peer,
			 log_q(conn_tls_desc(s->conn)));
		logged_in(s, tag);
		return;
	}
	if (st == AUTH_UNAVAILABLE) {
		imapd_tagged(s, tag, "NO [UNAVAILABLE] Temporary authentication failure, "
			     "try again later.");
		return;
	}
	s->auth_failures++;
	imapd_tagged(s, tag, "NO [AUTHENTICATIONFAILED] Authentication failed.");
	if (s->auth_failures >= IMAPD_MAX_AUTH_FAILURES) {
		imapd_untagged(s, "BYE Too many authentication failures.");
		s->state = IMAPD_LOGOUT;
	}
}

static void do_auth(struct imapd *s, const char *tag, const char *user, size_t ulen,
		    const char *pass, size_t plen)
{
	struct auth_result res;
	enum auth_status st;

	conn_flush(s->conn);
	st = auth_check(s->opts->auth, user, ulen, pass, plen, s->peer, &res);
	login_done(s, tag, st, &res);
	explicit_bzero(&res, sizeof(res));
}

static void cmd_login(struct imapd *s, const struct imap_command *cmd)
{
	const char *u, *p;

	if (cmd->count != 2 || (u = imap_arg_astring(&cmd->args[0])) == NULL ||
	    (p = imap_arg_astring(&cmd->args[1])) == NULL) {
		imapd_tagged(s, cmd->tag, "BAD LOGIN needs a user name and a password.");
		return;
	}
	if (!login_allowed(s, cmd->tag))
		return;
	do_auth(s, cmd->tag, u, cmd->args[0].len, p, cmd->args[1].len);
}


/* Reads one SASL response line; its decoded bytes or -1 after answering. */
static long sasl_read(struct imapd *s, const char *tag, const char *challenge,
		      unsigned char *out, size_t outlen)
{
	char *line;
	long n;

	conn_printf(s->conn, "+ %s\r\n", challenge);
	conn_flush(s->conn);
	n = imapd_read_line(s, &line, IMAPD_PREAUTH_MAX_LINE);
	if (n == CONN_TOO_LONG) {
		imapd_tagged(s, tag, "BAD Authentication response too long.");
		return -1;
	}
	if (n < 0) {
		s->state = IMAPD_LOGOUT;
		return -1;
	}
	if (strcmp(line, "*") == 0) {
		imapd_tagged(s, tag, "BAD Authentication aborted by client.");
		return -1;
	}
	n = auth_b64_decode(line, strlen(line), out, outlen);
	explicit_bzero(line, strlen(line));
	if (n < 0)
		imapd_tagged(s, tag, "BAD Invalid base64 data in response.");
	return n;
}

static void cmd_authenticate(struct imapd *s, const struct imap_command *cmd)
{
	unsigned char buf[IMAPD_PREAUTH_MAX_LINE];
	const char *mech, *ir = NULL;
	long n;

	if (cmd->count < 1 || cmd->count > 2 || cmd->args[0].type != IMAP_ARG_ATOM ||
	    (cmd->count == 2 && cmd->args[1].type != IMAP_ARG_ATOM)) {
		imapd_tagged(s, cmd->tag, "BAD AUTHENTICATE needs a mechanism.");
		return;
	}
	mech = cmd->args[0].str;
	if (cmd->count == 2)
		ir = cmd->args[1].str;
	if (strcasecmp(mech, "PLAIN") != 0 && strcasecmp(mech, "LOGIN") != 0) {
		imapd_tagged(s, cmd->tag, "NO Unsupported authentication mechanism.");
		return;
	}
	if (!login_allowed(s, cmd->tag))
		return;

	if (strcasecmp(mech, "PLAIN") == 0) {
		const unsigned char *authz, *authc, *pass, *end;
		if (ir != NULL) {
			n = strcmp(ir, "=") == 0 ? 0 : auth_b64_decode(ir, strlen(ir), buf, sizeof(buf));
			if (n < 0) {
				imapd_tagged(s, cmd->tag, "BAD Invalid base64 data in initial response.");
				return;
			}
		} else if ((n = sasl_read(s, cmd->tag, "", buf, sizeof(buf))) < 0) {
			return;
		}
		/* authzid NUL authcid NUL passwd */
		end = buf + n;
		authz = buf;
		authc = memchr(authz, '\0', (size_t)(end - authz));
		pass = authc ? memchr(authc + 1, '\0', (size_t)(end - authc - 1)) : NULL;
		if (authc == NULL || pass == NULL) {
			explicit_bzero(buf, sizeof(buf));
			imapd_tagged(s, cmd->tag, "BAD Invalid AUTHENTICATE PLAIN data.");
			return;
		}
		authc++;
		pass++;
		if (authc - 1 > authz &&
		    ((size_t)(authc - 1 - authz) != (size_t)(pass - 1 - authc) ||
		     memcmp(authz, authc, (size_t)(pass - 1 - authc)) != 0)) {
			explicit_bzero(buf, sizeof(buf));
			imapd_tagged(s, cmd->tag, "NO [AUTHORIZATIONFAILED] Proxy authentication "
				     "is not supported.");
			return;
		}
		do_auth(s, cmd->tag, (const char *)authc, (size_t)(pass - 1 - authc),
			(const char *)pass, (size_t)(end - pass));
	} else {
		unsigned char user[AUTH_MAX_USER + 1];
		long ulen;
		if (ir != NULL) {
			ulen = auth_b64_decode(ir, strlen(ir), user, sizeof(user) - 1);
			if (ulen < 0) {
				imapd_tagged(s, cmd->tag, "BAD Invalid base64 data in initial response.");
				return;
			}
		} else if ((ulen = sasl_read(s, cmd->tag, "VXNlcm5hbWU6", user,
					     sizeof(user) - 1)) < 0) {
			return;
		}
		if ((n = sasl_read(s, cmd->tag, "UGFzc3dvcmQ6", buf, sizeof(buf))) < 0)
			return;
		do_auth(s, cmd->tag, (const char *)user, (size_t)ulen, (const char *)buf, (size_t)n);
	}
	explicit_bzero(buf, sizeof(buf));
}

static void cmd_starttls(struct imapd *s, const struct imap_command *cmd)
{
	char err[512];

	if (conn_is_tls(s->conn)) {
		imapd_tagged(s, cmd->tag, "BAD TLS is already active.");
		return;
	}
	if (s->opts->tls_ctx == NULL) {
		imapd_tagged(s, cmd->tag, "BAD TLS support isn't enabled.");
		return;
	}
	imapd_tagged(s, cmd->tag, "OK Begin TLS negotiation now.");
	/* anything the client pipelined after STARTTLS is discarded */
	s->inoff = s->inlen = 0;
	if (conn_start_tls_server(s->conn, s->opts->tls_ctx, err, sizeof(err)) != 0) {
		log_info("tls_failed", "peer=%s error=%s", s->peer, log_q(err));
		s->state = IMAPD_LOGOUT;
	}
}


static void login_command(struct imapd *s, const struct imap_command *cmd)
{
	if (strcasecmp(cmd->name, "LOGIN") == 0)
		cmd_login(s, cmd);
	else if (strcasecmp(cmd->name, "AUTHENTICATE") == 0)
		cmd_authenticate(s, cmd);
	else if (strcasecmp(cmd->name, "STARTTLS") == 0)
		cmd_starttls(s, cmd);
	else
		imapd_tagged(s, cmd->tag, "BAD Unknown command.");
}

int imapd_session(const struct imapd_opts *opts, int fd_in, int fd_out, const char *peer)
{
	struct imapd *s = imapd_new(opts, fd_in, fd_out, peer);
	char err[512];
	int rc = 0;

	if (s == NULL)
		return EX_OSERR;
	s->login_cmd = login_command;
	s->plaintext_ok = opts->allow_plaintext && server_peer_is_loopback(fd_in);
	if (opts->implicit_tls &&
	    conn_start_tls_server(s->conn, opts->tls_ctx, err, sizeof(err)) != 0) {
		log_info("tls_failed", "peer=%s error=%s", s->peer, log_q(err));
		goto out;
	}
	if (opts->home != NULL) {
		snprintf(s->user, sizeof(s->user), "%s", "(preauth)");
		if (imapd_enter_home(s, opts->home) != 0) {
			imapd_untagged(s, "BYE Cannot open the mailbox.");
			conn_flush(s->conn);
			rc = EX_CANTCREAT;
			goto out;
		}
		logged_in(s, NULL);
	} else {
		imapd_untagged(s, "OK [CAPABILITY %s] mailkeep ready.", imapd_capability(s));
	}
	rc = imapd_run(s);
out:
	imapd_free(s);
	return rc;
}

#include "server.h"

#include "log.h"
#include "prefork.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#define SD_LISTEN_FDS_START 3

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* Only interrupts ppoll() so that the loop reaps children. */
static void on_child(int sig)
{
	(void)sig;
}

/* Reaps finished children and removes them from KIDS; returns the count left. */
static int reap(pid_t *kids, int n)
{
	pid_t pid;

	while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
		for (int i = 0; i < n; i++)
			if (kids[i] == pid) {
				kids[i] = kids[--n];
				break;
			}
	return n;
}

int server_accept_retry(int e)
{
	if (e == EINTR || e == ECONNABORTED)
		return 1;
	if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
		log_warn("accept", "error=%s", log_q(strerror(e)));
		sleep(1);
		return 1;
	}
	log_err("accept", "error=%s", log_q(strerror(e)));
	return 0;
}

void server_peer(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0 ||
	    getnameinfo((struct sockaddr *)&ss, sl, buf, (socklen_t)len, NULL, 0,
			NI_NUMERICHOST) != 0)
		snprintf(buf, len, "local");
	else if (strncmp(buf, "::ffff:", 7) == 0)
		memmove(buf, buf + 7, strlen(buf + 7) + 1);
}

int server_peer_is_loopback(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
		return errno == ENOTSOCK;	/* a pipe: the test harness or a local proxy */
	if (ss.ss_family == AF_UNIX)
		return 1;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return 1;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			return in6->sin6_addr.s6_addr[12] == 127;
	}
	return 0;
}

int server_listen(const char *spec, char *err, size_t errlen)
{
	char host[256];
	const char *port;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_PASSIVE };
	struct addrinfo *ai;
	int fd, one = 1, r;

	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (close == NULL || close[1] != ':' || (size_t)(close - spec) > sizeof(host)) {
			snprintf(err, errlen, "--listen %s: expected [ADDR]:PORT", spec);
			return -1;
		}
		memcpy(host, spec + 1, (size_t)(close - spec - 1));
		host[close - spec - 1] = '\0';
		port = close + 2;
	} else {
		const char *colon = strrchr(spec, ':');
		if (colon == NULL || (size_t)(colon - spec) >= sizeof(host)) {
			snprintf(err, errlen, "--listen %s: expected ADDR:PORT", spec);
			return -1;
		}
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
		port = colon + 1;
	}
	r = getaddrinfo(host, port, &hints, &ai);
	if (r != 0) {
		snprintf(err, errlen, "--listen %s: %s", spec, gai_strerror(r));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
		snprintf(err, errlen, "--listen %s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* LISTEN_FDS for this process: the first passed socket, or -1. */
static int systemd_listen_fd(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");

	if (pid == NULL || fds == NULL || atol(pid) != (long)getpid() || atoi(fds) < 1)
		return -1;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return SD_LISTEN_FDS_START;
}

/*
 * Signals stay blocked except while ppoll() waits, so a SIGTERM is never
 * lost in the gap between testing stop_requested and blocking in accept()
 * (a server stopped right after it started would otherwise sit in accept()
 * for good).  The listener is non-blocking: ppoll() says when to accept.
 */
static int accept_loop(int lfd, const struct server_opts *o, server_session_fn fn, void *arg)
{
	struct sigaction sa = { 0 };
	sigset_t block, orig;
	int max = o->max_children > 0 ? o->max_children : 500;
	int nkids = 0;
	pid_t *kids = calloc((size_t)max, sizeof(*kids));

	if (kids == NULL)
		return EX_OSERR;
	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &orig);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_child;
	sa.sa_flags = SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);

	while (!stop_requested) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		char peer[64];
		pid_t pid;
		int fd;

		nkids = reap(kids, nkids);
		if (ppoll(&p, 1, NULL, &orig) < 0) {
			if (errno == EINTR)
				continue;	/* a signal: stop_requested or a child to reap */
			log_err("poll", "error=%s", log_q(strerror(errno)));
			break;
		}
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || server_accept_retry(errno))
				continue;
			break;
		}
		nkids = reap(kids, nkids);
		if (nkids >= max) {
			log_warn("connection_refused", "reason=too_many children=%d", nkids);
			close(fd);
			continue;
		}
		server_peer(fd, peer, sizeof(peer));
		pid = fork();
		if (pid < 0) {
			log_err("fork", "error=%s", log_q(strerror(errno)));
			close(fd);
			continue;
		}
		if (pid == 0) {
			signal(SIGTERM, SIG_DFL);
			signal(SIGINT, SIG_DFL);
			signal(SIGCHLD, SIG_DFL);
			sigprocmask(SIG_SETMASK, &orig, NULL);
			close(lfd);
			_exit(fn(fd, fd, peer, arg));
		}
		kids[nkids++] = pid;
		close(fd);
	}
	close(lfd);
	for (int i = 0; i < nkids; i++)
		kill(kids[i], SIGTERM);
	while (nkids > 0 && waitpid(-1, NULL, 0) > 0)
		nkids--;
	free(kids);
	sigprocmask(SIG_SETMASK, &orig, NULL);
	return stop_requested ? 0 : EX_OSERR;
}

int server_run(const struct server_opts *o, server_session_fn fn, void *arg)
{
	char err[512], peer[64];
	int lfd = systemd_listen_fd();

	if (lfd < 0 && o->listen != NULL) {
		lfd = server_listen(o->listen, err, sizeof(err));
		if (lfd < 0) {
			log_err("listen", "error=%s", log_q(err));
			return EX_OSERR;
		}
		log_info("listening", "addr=%s", log_q(o->listen));
	}
	if (lfd >= 0 && o->prefork != NULL)
		return prefork_run(lfd, o->prefork, fn, arg);
	if (lfd >= 0)
		return accept_loop(lfd, o, fn, arg);
	server_peer(STDIN_FILENO, peer, sizeof(peer));
	return fn(STDIN_FILENO, STDOUT_FILENO, peer, arg);
}

int server_drop_privileges(const char *user, char *err, size_t errlen)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	errno = 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		snprintf(err, errlen, "vmail_user %s does not exist", user);
		return EX_NOUSER;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "vmail_user %s is root: refusing to serve mail as root", user);
		return EX_CONFIG;
	}
	if (setgroups(1, &pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		snprintf(err, errlen, "cannot switch to %s: %s", user, strerror(errno));
		return EX_OSERR;
	}
	if (setuid(0) == 0 || geteuid() == 0) {
		snprintf(err, errlen, "could regain root after switching to %s", user);
		return EX_OSERR;
	}
	/* setuid clears dumpable; keep it cleared: the process may hold secrets */
	prctl(PR_SET_DUMPABLE, 0);
	return 0;
}

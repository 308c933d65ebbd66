/* A pool of reused session processes; see prefork.h. */
#include "prefork.h"

#include "log.h"
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

/* What a worker tells the parent; smaller than PIPE_BUF, so never interleaved. */
struct prefork_msg {
	pid_t pid;
	int busy;
};

struct prefork_worker {
	pid_t pid;
	int busy;
};

static volatile sig_atomic_t stop_requested, orphaned;
/* In a worker: what its own children must not inherit (see prefork_atfork_child). */
static int worker_lfd = -1, worker_stfd = -1;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void on_child(int sig)
{
	(void)sig;
}

/* The parent died (PR_SET_PDEATHSIG): leave after the current session. */
static void on_orphan(int sig)
{
	(void)sig;
	orphaned = 1;
}

/* A background job forked by a session holds neither the socket nor the pipe. */
static void prefork_atfork_child(void)
{
	if (worker_lfd >= 0)
		close(worker_lfd);
	if (worker_stfd >= 0)
		close(worker_stfd);
	worker_lfd = worker_stfd = -1;
}

static void worker_tell(int stfd, int busy)
{
	struct prefork_msg m = { .pid = getpid(), .busy = busy };

	/* blocking (see prefork_run); fails only when the parent is gone */
	(void)!write(stfd, &m, sizeof(m));
}

static void __attribute__((noreturn))
worker_main(int lfd, int stfd, pid_t parent, const struct prefork_opts *o, server_session_fn fn,
	    void *arg)
{
	struct sigaction sa = { .sa_handler = SIG_DFL };
	struct timeval tv = { .tv_sec = o->idle_timeout > 0 ? o->idle_timeout : PREFORK_IDLE_TIMEOUT };
	int max_uses = o->max_uses > 0 ? o->max_uses : PREFORK_MAX_USES;
	sigset_t none;

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	worker_lfd = lfd;
	worker_stfd = stfd;
	pthread_atfork(NULL, NULL, prefork_atfork_child);
	if (o->worker_init != NULL && o->worker_init(arg) != 0)
		log_warn("worker_init", "pid=%ld", (long)getpid());
	/* after the privilege drop, which clears it */
	sa.sa_handler = on_orphan;
	sigaction(SIGHUP, &sa, NULL);
	prctl(PR_SET_PDEATHSIG, SIGHUP);
	if (getppid() != parent)
		_exit(0);
	/* accept() waits at most this long (the socket option is shared, and the same for all) */
	setsockopt(lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (int uses = 0; uses < max_uses && !orphaned;) {
		char peer[64];
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), rc;

		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;	/* idle for idle_timeout */
			if (server_accept_retry(errno))
				continue;
			_exit(EX_OSERR);
		}
		worker_tell(stfd, 1);
		server_peer(fd, peer, sizeof(peer));
		rc = fn(fd, fd, peer, arg);
		close(fd);
		uses++;
		if (rc != 0)
			_exit(rc);
		worker_tell(stfd, 0);
	}
	_exit(0);
}

/* Reaps finished workers; 1 if one of them failed. */
static int reap(struct prefork_worker *w, int *n)
{
	int status, failed = 0;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < *n; i++) {
			if (w[i].pid != pid)
				continue;
			w[i] = w[--*n];
			break;
		}
		if (WIFSIGNALED(status) && !stop_requested) {
			log_err("worker_exit", "pid=%ld signal=%d", (long)pid, WTERMSIG(status));
			failed = 1;
		} else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
			log_warn("worker_exit", "pid=%ld status=%d", (long)pid, WEXITSTATUS(status));
			failed = 1;
		}
	}
	return failed;
}

/* Applies the workers' messages waiting in the pipe. */
static void read_status(int fd, struct prefork_worker *w, int n)
{
	struct prefork_msg m[64];
	ssize_t r;

	while ((r = read(fd, m, sizeof(m))) > 0) {
		for (size_t k = 0; k < (size_t)r / sizeof(m[0]); k++)
			for (int i = 0; i < n; i++)
				if (w[i].pid == m[k].pid) {
					w[i].busy = m[k].busy;
					break;
				}
	}
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int prefork_run(int lfd, const struct prefork_opts *o, server_session_fn fn, void *arg)
{
	int max = o->max_workers > 0 ? o->max_workers : 500;
	struct prefork_worker *w = calloc((size_t)max, sizeof(*w));
	struct sigaction sa = { 0 };
	sigset_t block, orig;
	long long throttle_until = 0;
	pid_t parent = getpid();
	int st[2], n = 0, rc = 0, full_warned = 0;

	if (w == NULL || pipe2(st, O_CLOEXEC | O_NONBLOCK) != 0) {
		free(w);
		close(lfd);
		return EX_OSERR;
	}
	/* workers write blocking: a full pipe waits for the parent rather than losing news */
	fcntl(st[1], F_SETFL, fcntl(st[1], F_GETFL) & ~O_NONBLOCK);
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

	while (!stop_requested) {
		struct pollfd p[2] = { { .fd = st[0], .events = POLLIN }, { .fd = lfd, .events = POLLIN } };
		struct timespec ts, *tsp = NULL;
		long long now;
		int idle = 0, np = 1, r;

		if (reap(w, &n))
			throttle_until = now_ms() + 1000;
		read_status(st[0], w, n);
		for (int i = 0; i < n; i++)
			idle += !w[i].busy;
		now = now_ms();
		if (idle == 0 && n < max) {
			if (now < throttle_until) {
				ts.tv_sec = (time_t)((throttle_until - now) / 1000);
				ts.tv_nsec = (long)((throttle_until - now) % 1000) * 1000000L;
				tsp = &ts;
			} else {
				np = 2;	/* a connection waiting now needs a new worker */
			}
		}
		if (idle == 0 && n >= max && !full_warned) {
			log_warn("workers_busy", "workers=%d", n);
			full_warned = 1;
		} else if (idle > 0) {
			full_warned = 0;
		}
		r = ppoll(p, (nfds_t)np, tsp, &orig);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			log_err("poll", "error=%s", log_q(strerror(errno)));
			rc = EX_OSERR;
			break;
		}
		if (np < 2 || !(p[1].revents & POLLIN))
			continue;
		read_status(st[0], w, n);	/* a worker may have just become idle */
		idle = 0;
		for (int i = 0; i < n; i++)
			idle += !w[i].busy;
		if (idle > 0)
			continue;
		pid_t pid = fork();
		if (pid < 0) {
			log_err("fork", "error=%s", log_q(strerror(errno)));
			throttle_until = now_ms() + 1000;
			continue;
		}
		if (pid == 0) {
			close(st[0]);
			worker_main(lfd, st[1], parent, o, fn, arg);
		}
		/* idle until it says otherwise: it is about to accept that connection */
		w[n].pid = pid;
		w[n].busy = 0;
		n++;
	}
	close(lfd);
	for (int i = 0; i < n; i++)
		kill(w[i].pid, SIGTERM);
	while (n > 0) {
		pid_t pid = waitpid(-1, NULL, 0);
		if (pid < 0)
			break;
		for (int i = 0; i < n; i++)
			if (w[i].pid == pid) {
				w[i] = w[--n];
				break;
			}
	}
	close(st[0]);
	close(st[1]);
	free(w);
	sigprocmask(SIG_SETMASK, &orig, NULL);
	return rc != 0 ? rc : 0;
}

/* Unit tests for lib/prefork: reused workers, growth on demand, max_uses, stop. */
#include "prefork.h"
#include "server.h"
#include "log.h"
#include "t.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int inits;	/* per worker process */

static int init(void *arg)
{
	(void)arg;
	inits++;
	return 0;
}

/* Answers "<pid> <inits>\n", then waits for the client to close. */
static int session(int fd_in, int fd_out, const char *peer, void *arg)
{
	char buf[64], c;
	int n = snprintf(buf, sizeof(buf), "%ld %d\n", (long)getpid(), inits);

	(void)peer;
	(void)arg;
	if (write(fd_out, buf, (size_t)n) != n)
		return 1;
	while (read(fd_in, &c, 1) > 0)
		;
	return 0;
}

static int listener(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 16) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &l) != 0)
		return -1;
	*port = ntohs(a.sin_port);
	return fd;
}

/* Connects and reads the worker's "<pid> <inits>" line; the socket stays open in *fd. */
static long ask(int port, int *fd, int *ninit)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char buf[64];
	ssize_t n = 0, r;
	long pid = -1;

	*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*fd < 0 || connect(*fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		return -1;
	while (n < (ssize_t)sizeof(buf) - 1 && (r = read(*fd, buf + n, sizeof(buf) - 1 - n)) > 0) {
		n += r;
		if (memchr(buf, '\n', (size_t)n) != NULL)
			break;
	}
	buf[n] = '\0';
	if (sscanf(buf, "%ld %d", &pid, ninit) != 2)
		return -1;
	return pid;
}

static void test_pool(void)
{
	struct prefork_opts o = { .max_workers = 4, .max_uses = 3, .idle_timeout = 5,
				  .worker_init = init };
	int port = 0, lfd = listener(&port), fds[4], ninit = 0, status;
	long first, pid, p2;
	pid_t server;

	T_OK(lfd >= 0);
	server = fork();
	if (server == 0)
		_exit(prefork_run(lfd, &o, session, NULL));
	close(lfd);
	/* one after another: the same worker, initialised once */
	first = ask(port, &fds[0], &ninit);
	T_OK(first > 0);
	T_EQ(ninit, 1);
	close(fds[0]);
	usleep(100000);
	pid = ask(port, &fds[0], &ninit);
	T_EQ(pid, first);
	T_EQ(ninit, 1);
	/* a second client while the first is busy: a second worker */
	p2 = ask(port, &fds[1], &ninit);
	T_OK(p2 > 0 && p2 != first);
	T_EQ(ninit, 1);
	close(fds[0]);
	close(fds[1]);
	usleep(100000);
	/* the first worker has served max_uses = 3 after this one, then leaves */
	int seen_first = 0;
	for (int i = 0; i < 4; i++) {
		pid = ask(port, &fds[0], &ninit);
		T_OK(pid > 0);
		seen_first += pid == first;
		close(fds[0]);
		usleep(50000);
	}
	T_OK(seen_first <= 1);
	/* SIGTERM stops the parent and its workers */
	T_EQ(kill(server, SIGTERM), 0);
	T_EQ(waitpid(server, &status, 0), server);
	T_OK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	T_OK(kill((pid_t)p2, 0) != 0);
}

int main(void)
{
	log_init("test_prefork", 0);
	T_RUN(test_pool);
	return t_done();
}

/* Dotlocks: mutual exclusion between processes, and waiters woken by the release. */
#include "dotlock.h"
#include "t.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[256];

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads the number in PATH, adds one, writes it back: a lost update shows. */
static void bump(const char *path)
{
	char buf[32] = "0";
	FILE *f = fopen(path, "r");
	long n;

	if (f != NULL) {
		if (fgets(buf, sizeof(buf), f) == NULL)
			snprintf(buf, sizeof(buf), "0");
		fclose(f);
	}
	n = strtol(buf, NULL, 10);
	f = fopen(path, "w");
	if (f != NULL) {
		fprintf(f, "%ld\n", n + 1);
		fclose(f);
	}
}

/* Four processes, 200 locked read-modify-writes each: none is lost. */
static void test_exclusion(void)
{
	char file[300], counter[300], buf[32] = "";
	FILE *f;
	int ok = 1;

	snprintf(file, sizeof(file), "%s/locked", dir);
	snprintf(counter, sizeof(counter), "%s/counter", dir);
	unlink(counter);
	for (int c = 0; c < 4; c++) {
		pid_t p = fork();
		if (p == 0) {
			for (int i = 0; i < 200; i++) {
				struct dotlock *lk;
				char e[256];
				if (dotlock_take(file, 10, DOTLOCK_STALE_TIMEOUT, &lk, e, sizeof(e)) != 0)
					_exit(1);
				bump(counter);
				dotlock_release(lk);
			}
			_exit(0);
		}
	}
	for (int c = 0; c < 4; c++) {
		int st;
		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			ok = 0;
	}
	T_OK(ok);
	f = fopen(counter, "r");
	T_OK(f != NULL);
	if (f != NULL) {
		T_OK(fgets(buf, sizeof(buf), f) != NULL);
		fclose(f);
	}
	T_EQ(strtol(buf, NULL, 10), 800);
}

/*
 * A waiter gets the lock soon after the holder lets it go (it watches for
 * the removal), and not before.
 */
static void test_waiter_wakes(void)
{
	char file[300], e[256];
	struct dotlock *lk = NULL;
	int fds[2], st;
	long long released = 0, got = 0;
	pid_t p;

	snprintf(file, sizeof(file), "%s/held", dir);
	T_EQ(dotlock_take(file, 5, DOTLOCK_STALE_TIMEOUT, &lk, e, sizeof(e)), 0);
	T_OK(pipe(fds) == 0);
	p = fork();
	if (p == 0) {
		struct dotlock *l2;
		long long t;
		close(fds[0]);
		if (dotlock_take(file, 5, DOTLOCK_STALE_TIMEOUT, &l2, e, sizeof(e)) != 0)
			_exit(1);
		t = now_ms();
		if (write(fds[1], &t, sizeof(t)) != (ssize_t)sizeof(t))
			_exit(1);
		dotlock_release(l2);
		_exit(0);
	}
	close(fds[1]);
	usleep(300000);		/* the child is waiting by now, past its first back-offs */
	released = now_ms();
	dotlock_release(lk);
	T_OK(read(fds[0], &got, sizeof(got)) == (ssize_t)sizeof(got));
	close(fds[0]);
	T_OK(waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	T_OK(got >= released);
	/* generous for a loaded machine; sleeping back-offs alone were up to 16 ms */
	T_OK(got - released < 200);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mk-dotlock.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	T_RUN(test_exclusion);
	T_RUN(test_waiter_wakes);
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			return 1;
	}
	return t_done();
}

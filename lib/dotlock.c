#include "dotlock.h"

#include "fsutil.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

struct dotlock {
	char *lock_path;
	dev_t dev;
	ino_t ino;
};

/* The pid named in LOCK_PATH when it names this host, else 0. */
static pid_t lock_local_pid(const char *lock_path)
{
	char buf[512], host[256];
	char *colon, *end;
	ssize_t n;
	long pid;
	int fd = open(lock_path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	if (buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	colon = strchr(buf, ':');
	if (colon == NULL)
		return 0;
	*colon = '\0';
	if (gethostname(host, sizeof(host)) < 0)
		return 0;
	host[sizeof(host) - 1] = '\0';
	if (strcmp(colon + 1, host) != 0)
		return 0;
	errno = 0;
	pid = strtol(buf, &end, 10);
	if (errno != 0 || *end != '\0' || end == buf || pid <= 0)
		return 0;
	return (pid_t)pid;
}

static int try_create(const char *lock_path, struct dotlock **out, char *err, size_t errlen)
{
	char info[300], host[256];
	struct stat st;
	struct dotlock *lk;
	int fd, e;

	fd = open(lock_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno == EEXIST ? 1 : -1;
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(info, sizeof(info), "%ld:%s", (long)getpid(), host);
	if (fsutil_write_all(fd, info, strlen(info)) < 0 || fstat(fd, &st) < 0) {
		e = errno;
		close(fd);
		unlink(lock_path);
		snprintf(err, errlen, "write %s: %s", lock_path, strerror(e));
		errno = e;
		return -1;
	}
	close(fd);
	lk = calloc(1, sizeof(*lk));
	if (lk == NULL || (lk->lock_path = strdup(lock_path)) == NULL) {
		free(lk);
		unlink(lock_path);
		errno = ENOMEM;
		return -1;
	}
	lk->dev = st.st_dev;
	lk->ino = st.st_ino;
	*out = lk;
	return 0;
}

/* 1 if the existing lock may be overridden (and was removed), else 0. */
static int override_stale(const char *lock_path, int stale_secs)
{
	struct stat st, st2;
	pid_t pid;
	time_t now = time(NULL), changed;

	if (lstat(lock_path, &st) < 0)
		return errno == ENOENT;
	pid = lock_local_pid(lock_path);
	if (pid > 0) {
		if (kill(pid, 0) == 0 || errno != ESRCH)
			return 0;	/* live owner */
	} else {
		changed = st.st_mtime > st.st_ctime ? st.st_mtime : st.st_ctime;
		if (now - changed <= stale_secs)
			return 0;
	}
	/* Only remove the lock we judged: another process may have replaced it. */
	if (lstat(lock_path, &st2) < 0)
		return errno == ENOENT;
	if (st2.st_ino != st.st_ino || st2.st_dev != st.st_dev ||
	    st2.st_mtime != st.st_mtime)
		return 0;
	log_warn("dotlock-stale", "path=%s pid=%ld", log_q(lock_path), (long)pid);
	return unlink(lock_path) == 0 || errno == ENOENT;
}

/*
 * A watch on the directory of LOCK_PATH for removals: a waiter wakes when
 * the holder unlinks the lock instead of sleeping past it.  -1 if none.
 */
static int watch_removal(const char *lock_path)
{
	char dir[4096];
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	if (fd < 0)
		return -1;
	fsutil_dirname(lock_path, dir, sizeof(dir));
	if (inotify_add_watch(fd, dir, IN_DELETE | IN_MOVED_FROM) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Waits up to US microseconds, less when WFD (a watch, or -1) reports a removal. */
static void wait_removal(int wfd, long us)
{
	struct pollfd p = { .fd = wfd, .events = POLLIN };
	char drain[4096];

	if (wfd < 0) {
		usleep((useconds_t)us);
		return;
	}
	if (poll(&p, 1, (int)((us + 999) / 1000)) > 0)
		while (read(wfd, drain, sizeof(drain)) > 0)
			;
}

int dotlock_take(const char *path, int wait_secs, int stale_secs,
		 struct dotlock **out, char *err, size_t errlen)
{
	char lock_path[4096];
	struct timespec start, now;
	long sleep_us = 250;
	int wfd = -1, watched = 0, rc;

	*out = NULL;
	if ((size_t)snprintf(lock_path, sizeof(lock_path), "%s.lock", path) >= sizeof(lock_path)) {
		snprintf(err, errlen, "%s: path too long", path);
		return EX_SOFTWARE;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		int r;

		err[0] = '\0';
		r = try_create(lock_path, out, err, errlen);
		if (r == 0) {
			rc = 0;
			break;
		}
		if (r < 0) {
			int e = errno;

			if (err[0] == '\0')
				snprintf(err, errlen, "create %s: %s", lock_path, strerror(e));
			rc = fsutil_errno_code(e);
			break;
		}
		if (override_stale(lock_path, stale_secs))
			continue;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= wait_secs) {
			snprintf(err, errlen, "%s: locked by another process (timeout %ds)",
				 lock_path, wait_secs);
			rc = EX_TEMPFAIL;
			break;
		}
		if (!watched) {
			/* armed before the next try: a removal after it wakes us */
			watched = 1;
			if ((wfd = watch_removal(lock_path)) >= 0)
				continue;
		}
		/*
		 * Randomized backoff so that waiters do not move in lockstep
		 * (the watch wakes them at once; the timeout is for file
		 * systems without inotify).  Holders keep a uidlist lock for
		 * well under a millisecond: the sleep stays under 16 ms.
		 */
		wait_removal(wfd, sleep_us + rand() % sleep_us);
		if (sleep_us < 8000)
			sleep_us *= 2;
	}
	if (wfd >= 0)
		close(wfd);
	return rc;
}

void dotlock_touch(struct dotlock *lk)
{
	if (lk != NULL)
		(void)utimensat(AT_FDCWD, lk->lock_path, NULL, 0);
}

void dotlock_release(struct dotlock *lk)
{
	struct stat st;

	if (lk == NULL)
		return;
	if (lstat(lk->lock_path, &st) == 0 && st.st_ino == lk->ino && st.st_dev == lk->dev)
		unlink(lk->lock_path);
	else
		log_warn("dotlock-lost", "path=%s", log_q(lk->lock_path));
	free(lk->lock_path);
	free(lk);
}

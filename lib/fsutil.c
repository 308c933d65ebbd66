#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

int fsutil_errno_code(int e)
{
	switch (e) {
	case ENOENT: case ENOTDIR: return EX_NOINPUT;
	case EACCES: case EPERM: case EROFS: return EX_NOPERM;
	case ENOSPC: case EDQUOT: case EEXIST: return EX_CANTCREAT;
	default: return EX_IOERR;
	}
}

static int fail(int e, const char *what, const char *path, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
	errno = e;
	return fsutil_errno_code(e);
}

void fsutil_dirname(const char *path, char *out, size_t outlen)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(out, outlen, ".");
	else if (slash == path)
		snprintf(out, outlen, "/");
	else
		snprintf(out, outlen, "%.*s", (int)(slash - path), path);
}

int fsutil_fsync_dir(const char *dir, char *err, size_t errlen)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return fail(errno, "open", dir, err, errlen);
	if (fsync(fd) < 0) {
		int e = errno;

		close(fd);
		return fail(e, "fsync", dir, err, errlen);
	}
	close(fd);
	return 0;
}

int fsutil_mkdir(const char *path, mode_t mode, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(path, mode) == 0)
		return 0;
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	return fail(errno, "mkdir", path, err, errlen);
}

int fsutil_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fsutil_read_file(const char *path, size_t max, char **out, size_t *len,
		     char *err, size_t errlen)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*out = NULL;
	*len = 0;
	if (fd < 0)
		return fail(errno, "open", path, err, errlen);
	if (fstat(fd, &st) < 0) {
		int e = errno;

		close(fd);
		return fail(e, "fstat", path, err, errlen);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "%s: not a regular file", path);
		return EX_DATAERR;
	}
	if ((unsigned long long)st.st_size > max) {
		close(fd);
		snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
		return EX_DATAERR;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		snprintf(err, errlen, "%s: out of memory", path);
		return EX_OSERR;
	}
	/* The size may change under us (appends): read what fstat promised. */
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			free(buf);
			close(fd);
			return fail(e, "read", path, err, errlen);
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

int fsutil_write_atomic(const char *path, const char *tmp_path, const void *buf,
			size_t len, mode_t mode, char *err, size_t errlen)
{
	char dir[4096];
	int fd, e;

	fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return fail(errno, "create", tmp_path, err, errlen);
	if (fsutil_write_all(fd, buf, len) < 0 || fsync(fd) < 0) {
		e = errno;
		close(fd);
		unlink(tmp_path);
		return fail(e, "write", tmp_path, err, errlen);
	}
	if (close(fd) < 0) {
		e = errno;
		unlink(tmp_path);
		return fail(e, "close", tmp_path, err, errlen);
	}
	if (rename(tmp_path, path) < 0) {
		e = errno;
		unlink(tmp_path);
		return fail(e, "rename to", path, err, errlen);
	}
	fsutil_dirname(path, dir, sizeof(dir));
	return fsutil_fsync_dir(dir, err, errlen);
}

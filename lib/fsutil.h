/*
 * File-system helpers for durable writes.  Every function returns 0 or a
 * sysexits code with a message in err naming the path and the errno text:
 * EX_NOINPUT (missing), EX_NOPERM (EACCES/EPERM), EX_CANTCREAT,
 * EX_DATAERR (file too large for the caller's limit), EX_IOERR (others).
 */
#ifndef MK_FSUTIL_H
#define MK_FSUTIL_H
#include <stddef.h>
#include <sys/types.h>

/* Maps errno to the sysexits code used above (ENOENT -> EX_NOINPUT, ...). */
int fsutil_errno_code(int err);

/* fsync() of a directory, so that renames and creations in it persist. */
int fsutil_fsync_dir(const char *dir, char *err, size_t errlen);

/* mkdir() that accepts an existing directory. */
int fsutil_mkdir(const char *path, mode_t mode, char *err, size_t errlen);

/*
 * Reads a whole regular file of at most max bytes into a malloc'd buffer
 * (NUL-terminated; *len excludes the NUL).  The caller frees *out.
 * A missing file is EX_NOINPUT with errno left as ENOENT.
 */
int fsutil_read_file(const char *path, size_t max, char **out, size_t *len,
		     char *err, size_t errlen);

/*
 * Replaces PATH with BUF durably: writes TMP_PATH (created or truncated),
 * fsyncs it, renames it over PATH and fsyncs PATH's directory.  A crash at
 * any point leaves either the old or the new PATH.  TMP_PATH is removed on
 * failure.
 */
int fsutil_write_atomic(const char *path, const char *tmp_path, const void *buf,
			size_t len, mode_t mode, char *err, size_t errlen);

/* write() all of BUF to FD, retrying short writes and EINTR; -1 on error. */
int fsutil_write_all(int fd, const void *buf, size_t len);

/* Writes the directory part of PATH (or ".") into out. */
void fsutil_dirname(const char *path, char *out, size_t outlen);
#endif

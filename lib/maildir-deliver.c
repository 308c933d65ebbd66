/* Streaming delivery into a Maildir folder (see maildir.h). */
#include "maildir.h"

#include "dotlock.h"
#include "fsutil.h"
#include "uidlist.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define PATH_BUF 4096

static uint32_t new_uidvalidity(void)
{
	time_t t = time(NULL);

	return t > 0 ? (uint32_t)t : 1;
}

struct maildir_delivery {
	char *dir;
	char tmp_path[PATH_BUF];
	char placed[PATH_BUF];	/* final path once renamed, for undo on failure */
	int fd;
	long long size, vsize;
	int last_cr;
};

int maildir_delivery_begin(const char *dir, struct maildir_delivery **out,
			   char *err, size_t errlen)
{
	char base[MAILDIR_NAME_MAX + 1];
	struct maildir_delivery *d;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (d == NULL || (d->dir = strdup(dir)) == NULL) {
		free(d);
		snprintf(err, errlen, "out of memory");
		return EX_OSERR;
	}
	if (maildir_name_new_base(base, sizeof(base), -1, -1) < 0) {
		snprintf(err, errlen, "%s: host name too long for a Maildir file name", dir);
		free(d->dir);
		free(d);
		return EX_SOFTWARE;
	}
	snprintf(d->tmp_path, sizeof(d->tmp_path), "%s/tmp/%s", dir, base);
	d->fd = open(d->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (d->fd < 0) {
		int e = errno;

		snprintf(err, errlen, "create %s: %s", d->tmp_path, strerror(e));
		free(d->dir);
		free(d);
		return fsutil_errno_code(e);
	}
	*out = d;
	return 0;
}

int maildir_delivery_write(struct maildir_delivery *d, const void *buf, size_t len,
			   char *err, size_t errlen)
{
	const unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i++) {
		if (p[i] == '\n' && !d->last_cr)
			d->vsize++;	/* RFC822.SIZE counts CRLF */
		d->last_cr = p[i] == '\r';
	}
	if (fsutil_write_all(d->fd, buf, len) < 0) {
		int e = errno;

		snprintf(err, errlen, "write %s: %s", d->tmp_path, strerror(e));
		return e == ENOSPC || e == EDQUOT ? EX_TEMPFAIL : EX_IOERR;
	}
	d->size += (long long)len;
	d->vsize += (long long)len;
	return 0;
}

int maildir_delivery_copy_fd(struct maildir_delivery *d, int fd, long long max,
			     char *err, size_t errlen)
{
	char buf[65536];
	long long done = 0;

	for (;;) {
		size_t want = sizeof(buf);
		ssize_t n;
		int r;

		if (max >= 0) {
			if (done >= max)
				return 0;
			if ((long long)want > max - done)
				want = (size_t)(max - done);
		}
		n = read(fd, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			snprintf(err, errlen, "read message: %s", strerror(e));
			return EX_IOERR;
		}
		if (n == 0)
			return 0;
		if ((r = maildir_delivery_write(d, buf, (size_t)n, err, errlen)) != 0)
			return r;
		done += n;
	}
}

static void delivery_free(struct maildir_delivery *d)
{
	if (d->fd >= 0)
		close(d->fd);
	free(d->dir);
	free(d);
}

void maildir_delivery_abort(struct maildir_delivery *d)
{
	if (d == NULL)
		return;
	unlink(d->tmp_path);
	delivery_free(d);
}

/* rename into place, and fsync the directory when SYNC. */
static int delivery_place(struct maildir_delivery *d, const char *sub, const char *name,
			  int sync, char *err, size_t errlen)
{
	char to[PATH_BUF], dir[PATH_BUF];

	snprintf(to, sizeof(to), "%s/%s/%s", d->dir, sub, name);
	if (rename(d->tmp_path, to) < 0) {
		int e = errno;

		snprintf(err, errlen, "rename to %s: %s", to, strerror(e));
		return fsutil_errno_code(e);
	}
	snprintf(d->placed, sizeof(d->placed), "%s", to);
	if (!sync)
		return 0;
	snprintf(dir, sizeof(dir), "%s/%s", d->dir, sub);
	return fsutil_fsync_dir(dir, err, errlen);
}

/*
 * After the lock: makes the rename into SUB and the uidlist records in
 * UL_FD durable now, or hands them to the flush of DEFER_TO.  Closes UL_FD.
 */
static int delivery_durable(struct maildir_delivery *d, const char *sub, int ul_fd,
			    struct maildir_folder *defer_to, char *err, size_t errlen)
{
	char dir[PATH_BUF];
	int r;

	if (defer_to != NULL) {
		defer_to->dirty |= strcmp(sub, "new") == 0 ? MAILDIR_DIRTY_NEW : MAILDIR_DIRTY_CUR;
		if (ul_fd < 0)
			return 0;
		if (defer_to->dirty & MAILDIR_DIRTY_UIDLIST) {
			/* one file kept open: make the older append durable now */
			if (fsync(defer_to->dirty_fd) < 0) {
				int e = errno;

				close(ul_fd);
				snprintf(err, errlen, "fsync %s/" UIDLIST_NAME ": %s", d->dir,
					 strerror(e));
				return fsutil_errno_code(e);
			}
			close(defer_to->dirty_fd);
		}
		defer_to->dirty |= MAILDIR_DIRTY_UIDLIST;
		defer_to->dirty_fd = ul_fd;
		return 0;
	}
	snprintf(dir, sizeof(dir), "%s/%s", d->dir, sub);
	r = fsutil_fsync_dir(dir, err, errlen);
	if (ul_fd >= 0) {
		if (fsync(ul_fd) < 0 && r == 0) {
			int e = errno;

			snprintf(err, errlen, "fsync %s/" UIDLIST_NAME ": %s", d->dir, strerror(e));
			r = fsutil_errno_code(e);
		}
		close(ul_fd);
	}
	return r;
}

int maildir_delivery_commit(struct maildir_delivery *d, const struct maildir_commit *c,
			    uint32_t *uid, char *fname, size_t fnamelen,
			    char *err, size_t errlen)
{
	char base[MAILDIR_NAME_MAX + 1], name[MAILDIR_NAME_MAX + 1], ulpath[PATH_BUF];
	struct timespec ts[2];
	struct dotlock *lk = NULL;
	struct uidlist *ul = NULL;
	const char *sub;
	int r, fresh_ul = 0, ul_fd = -1, placed_nosync = 0;
	uint32_t got = 0;

	if (uid)
		*uid = 0;
	if (fsync(d->fd) < 0) {
		int e = errno;

		snprintf(err, errlen, "fsync %s: %s", d->tmp_path, strerror(e));
		maildir_delivery_abort(d);
		return EX_TEMPFAIL;
	}
	if (c->mtime > 0) {
		ts[0].tv_sec = ts[1].tv_sec = c->mtime;
		ts[0].tv_nsec = ts[1].tv_nsec = 0;
		(void)futimens(d->fd, ts);
	}
	if (close(d->fd) < 0) {
		int e = errno;

		d->fd = -1;
		snprintf(err, errlen, "close %s: %s", d->tmp_path, strerror(e));
		maildir_delivery_abort(d);
		return EX_TEMPFAIL;
	}
	d->fd = -1;
	if (maildir_name_new_base(base, sizeof(base), d->size, d->vsize) < 0) {
		snprintf(err, errlen, "%s: host name too long for a Maildir file name", d->dir);
		maildir_delivery_abort(d);
		return EX_SOFTWARE;
	}
	if (c->flags || c->keywords || c->to_cur) {
		sub = "cur";
		if (maildir_name_with_flags(base, c->flags, c->keywords, name, sizeof(name)) < 0) {
			snprintf(err, errlen, "%s: file name too long", base);
			maildir_delivery_abort(d);
			return EX_SOFTWARE;
		}
	} else {
		sub = "new";
		snprintf(name, sizeof(name), "%s", base);
	}
	if (!c->assign_uid) {
		r = delivery_place(d, sub, name, 1, err, errlen);
		goto done;
	}
	snprintf(ulpath, sizeof(ulpath), "%s/" UIDLIST_NAME, d->dir);
	if ((r = dotlock_take(ulpath, DOTLOCK_WAIT_TIMEOUT, DOTLOCK_STALE_TIMEOUT, &lk,
			      err, errlen)) != 0)
		goto done;
	if ((r = uidlist_read(d->dir, &ul, err, errlen)) != 0)
		goto done;
	if (ul == NULL) {
		/*
		 * No uidlist yet: the files already here must get their UIDs
		 * first, which is a full sync's job; let the caller sync after.
		 */
		fresh_ul = 1;
		if ((ul = uidlist_new(new_uidvalidity())) == NULL) {
			snprintf(err, errlen, "out of memory");
			r = EX_OSERR;
			goto done;
		}
	}
	/*
	 * Under the lock only the rename and the record (a reader that sees
	 * the file without its record waits for this lock): the fsyncs of
	 * both come after it, before the caller acknowledges.
	 */
	if ((r = delivery_place(d, sub, name, fresh_ul, err, errlen)) != 0)
		goto done;
	if (fresh_ul) {
		/* Write the header only; the sync below numbers every file. */
		if ((r = uidlist_write(d->dir, ul, err, errlen)) != 0)
			goto done;
		dotlock_release(lk);
		lk = NULL;
		struct maildir_folder *f;

		if ((r = maildir_folder_open(d->dir, &f, err, errlen)) != 0)
			goto done;
		r = maildir_folder_sync(f, MAILDIR_SYNC_FORCE, err, errlen);
		for (size_t i = 0; r == 0 && i < f->nmsgs; i++)
			if (strcmp(f->msgs[i].fname, name) == 0)
				got = f->msgs[i].uid;
		maildir_folder_free(f);
		goto done;
	}
	if ((got = uidlist_add(ul, name, NULL)) == 0) {
		snprintf(err, errlen, "%s: cannot assign a UID", d->dir);
		r = EX_SOFTWARE;
		goto done;
	}
	r = uidlist_append_nosync(d->dir, ul, ul->nrecs - 1, &ul_fd, err, errlen);
	placed_nosync = 1;
done:
	dotlock_release(lk);
	uidlist_free(ul);
	if (placed_nosync) {
		if (r == 0)
			r = delivery_durable(d, sub, ul_fd, c->defer_to, err, errlen);
		else if (ul_fd >= 0)
			close(ul_fd);
	}
	if (r != 0) {
		/*
		 * Not acknowledged, so not delivered: remove the file wherever it
		 * is, or a retry by the caller would make a duplicate.
		 */
		if (d->placed[0] != '\0')
			unlink(d->placed);
		maildir_delivery_abort(d);
		return r;
	}
	if (uid)
		*uid = got;
	if (fname)
		snprintf(fname, fnamelen, "%s", name);
	delivery_free(d);
	return 0;
}

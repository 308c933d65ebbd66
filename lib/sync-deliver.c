/* Batched delivery with one durability point per batch (sync-deliver.h). */
#include "sync-deliver.h"

#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#define PATH_BUF 4096

struct sync_batch_msg {
	char tmp[MAILDIR_NAME_MAX + 1];		/* name in tmp/ */
	char final[MAILDIR_NAME_MAX + 1];	/* name in sub */
	int cur;				/* 1: cur/, 0: new/ */
};

struct sync_batch {
	char *dir;
	struct sync_batch_msg *v;
	size_t n, cap;
	unsigned long long bytes;
	/* the message being written */
	int fd;
	char tmp[MAILDIR_NAME_MAX + 1];
	long long size, vsize;
	int last_cr;
	size_t wlen;		/* bytes in wbuf: callers write line by line */
	char wbuf[65536];
};

struct sync_batch *sync_batch_new(const char *dir)
{
	struct sync_batch *b = calloc(1, sizeof(*b));

	if (b == NULL || (b->dir = strdup(dir)) == NULL) {
		free(b);
		return NULL;
	}
	b->fd = -1;
	return b;
}

static void unlink_tmp(const struct sync_batch *b, const char *name)
{
	char p[PATH_BUF];

	snprintf(p, sizeof(p), "%s/tmp/%s", b->dir, name);
	unlink(p);
}

void sync_batch_abort(struct sync_batch *b)
{
	if (b == NULL || b->fd < 0)
		return;
	close(b->fd);
	b->fd = -1;
	unlink_tmp(b, b->tmp);
}

void sync_batch_free(struct sync_batch *b)
{
	size_t i;

	if (b == NULL)
		return;
	sync_batch_abort(b);
	for (i = 0; i < b->n; i++)
		unlink_tmp(b, b->v[i].tmp);
	free(b->v);
	free(b->dir);
	free(b);
}

size_t sync_batch_pending(const struct sync_batch *b)
{
	return b->n;
}

unsigned long long sync_batch_pending_bytes(const struct sync_batch *b)
{
	return b->bytes;
}

int sync_batch_begin(struct sync_batch *b, char *err, size_t errlen)
{
	char p[PATH_BUF];

	sync_batch_abort(b);
	if (maildir_name_new_base(b->tmp, sizeof(b->tmp), -1, -1) < 0) {
		snprintf(err, errlen, "%s: host name too long for a Maildir file name", b->dir);
		return EX_SOFTWARE;
	}
	snprintf(p, sizeof(p), "%s/tmp/%s", b->dir, b->tmp);
	b->fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (b->fd < 0) {
		int e = errno;

		snprintf(err, errlen, "create %s: %s", p, strerror(e));
		return fsutil_errno_code(e);
	}
	b->size = b->vsize = 0;
	b->last_cr = 0;
	b->wlen = 0;
	return 0;
}

static int wbuf_flush(struct sync_batch *b, char *err, size_t errlen)
{
	if (b->wlen > 0 && fsutil_write_all(b->fd, b->wbuf, b->wlen) < 0) {
		int e = errno;

		snprintf(err, errlen, "write %s/tmp/%s: %s", b->dir, b->tmp, strerror(e));
		sync_batch_abort(b);
		return e == ENOSPC || e == EDQUOT ? EX_TEMPFAIL : EX_IOERR;
	}
	b->wlen = 0;
	return 0;
}

int sync_batch_write(struct sync_batch *b, const void *buf, size_t len, char *err, size_t errlen)
{
	const unsigned char *p = buf;
	size_t i;

	if (b->fd < 0) {
		snprintf(err, errlen, "no message being written");
		return EX_SOFTWARE;
	}
	for (i = 0; i < len; i++) {	/* RFC822.SIZE counts a CR for each bare LF */
		const unsigned char *nl = memchr(p + i, '\n', len - i);

		if (nl == NULL)
			break;
		if (nl == p ? !b->last_cr : nl[-1] != '\r')
			b->vsize++;
		i = (size_t)(nl - p);
	}
	if (len > 0)
		b->last_cr = p[len - 1] == '\r';
	if (b->wlen + len > sizeof(b->wbuf)) {
		int rc = wbuf_flush(b, err, errlen);

		if (rc != 0)
			return rc;
	}
	if (len >= sizeof(b->wbuf)) {
		if (fsutil_write_all(b->fd, buf, len) < 0) {
			int e = errno;

			snprintf(err, errlen, "write %s/tmp/%s: %s", b->dir, b->tmp, strerror(e));
			sync_batch_abort(b);
			return e == ENOSPC || e == EDQUOT ? EX_TEMPFAIL : EX_IOERR;
		}
	} else {
		memcpy(b->wbuf + b->wlen, buf, len);
		b->wlen += len;
	}
	b->size += (long long)len;
	b->vsize += (long long)len;
	return 0;
}

int sync_batch_end(struct sync_batch *b, unsigned flags, uint32_t keywords, time_t mtime,
		   char *fname, size_t fnamelen, char *err, size_t errlen)
{
	char base[MAILDIR_NAME_MAX + 1];
	struct sync_batch_msg *m;

	if (b->fd < 0) {
		snprintf(err, errlen, "no message being written");
		return EX_SOFTWARE;
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		struct sync_batch_msg *nv = realloc(b->v, cap * sizeof(*nv));

		if (nv == NULL) {
			sync_batch_abort(b);
			snprintf(err, errlen, "out of memory");
			return EX_OSERR;
		}
		b->v = nv;
		b->cap = cap;
	}
	m = &b->v[b->n];
	{
		int rc = wbuf_flush(b, err, errlen);

		if (rc != 0)
			return rc;
	}
	if (mtime > 0) {
		struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };

		(void)futimens(b->fd, ts);
	}
	if (close(b->fd) < 0) {
		int e = errno;

		b->fd = -1;
		unlink_tmp(b, b->tmp);
		snprintf(err, errlen, "close %s/tmp/%s: %s", b->dir, b->tmp, strerror(e));
		return EX_TEMPFAIL;
	}
	b->fd = -1;
	if (maildir_name_new_base(base, sizeof(base), b->size, b->vsize) < 0) {
		unlink_tmp(b, b->tmp);
		snprintf(err, errlen, "%s: host name too long for a Maildir file name", b->dir);
		return EX_SOFTWARE;
	}
	m->cur = flags != 0 || keywords != 0;
	if (m->cur) {
		if (maildir_name_with_flags(base, flags, keywords, m->final, sizeof(m->final)) < 0) {
			unlink_tmp(b, b->tmp);
			snprintf(err, errlen, "%s: file name too long", base);
			return EX_SOFTWARE;
		}
	} else {
		snprintf(m->final, sizeof(m->final), "%s", base);
	}
	memcpy(m->tmp, b->tmp, sizeof(m->tmp));
	if (fname != NULL)
		snprintf(fname, fnamelen, "%s", m->final);
	b->n++;
	b->bytes += (unsigned long long)b->size;
	return 0;
}

int sync_batch_flush(struct sync_batch *b, char *err, size_t errlen)
{
	char from[PATH_BUF], to[PATH_BUF];
	int dfd, rc = 0, any_new = 0, any_cur = 0;
	size_t i;

	if (b->n == 0)
		return 0;
	dfd = open(b->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || syncfs(dfd) < 0) {
		int e = errno;

		snprintf(err, errlen, "syncfs %s: %s", b->dir, strerror(e));
		if (dfd >= 0)
			close(dfd);
		rc = EX_TEMPFAIL;
		goto drop;
	}
	close(dfd);
	for (i = 0; i < b->n; i++) {
		const struct sync_batch_msg *m = &b->v[i];

		snprintf(from, sizeof(from), "%s/tmp/%s", b->dir, m->tmp);
		snprintf(to, sizeof(to), "%s/%s/%s", b->dir, m->cur ? "cur" : "new", m->final);
		if (rename(from, to) < 0) {
			int e = errno;

			snprintf(err, errlen, "rename to %s: %s", to, strerror(e));
			rc = fsutil_errno_code(e);
			break;
		}
		any_cur |= m->cur;
		any_new |= !m->cur;
	}
	for (; i < b->n; i++)
		unlink_tmp(b, b->v[i].tmp);
	if (any_new) {
		snprintf(to, sizeof(to), "%s/new", b->dir);
		if (fsutil_fsync_dir(to, err, errlen) != 0 && rc == 0)
			rc = EX_TEMPFAIL;
	}
	if (any_cur) {
		snprintf(to, sizeof(to), "%s/cur", b->dir);
		if (fsutil_fsync_dir(to, err, errlen) != 0 && rc == 0)
			rc = EX_TEMPFAIL;
	}
	b->n = 0;
	b->bytes = 0;
	return rc;
drop:
	for (i = 0; i < b->n; i++)
		unlink_tmp(b, b->v[i].tmp);
	b->n = 0;
	b->bytes = 0;
	return rc;
}

/* Batched delivery into a Maildir folder (maildir-add.h). */
#include "maildir-add.h"

#include "dotlock.h"
#include "fsutil.h"
#include "maildir-index.h"
#include "uidlist.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#define PATH_BUF 4096

struct maildir_add_msg {
	char tmp[MAILDIR_NAME_MAX + 1];		/* name in tmp/ */
	char final[MAILDIR_NAME_MAX + 1];	/* name in new/ or cur/ */
	int cur;				/* 1: cur/, 0: new/ */
};

struct maildir_add {
	char *dir;
	struct maildir_add_msg *v;
	size_t n, cap;
	unsigned long long bytes;
	/* the message being written */
	int fd;
	char tmp[MAILDIR_NAME_MAX + 1];
	long long size, vsize;
	int last_cr;
	size_t wlen;		/* bytes in wbuf: callers may write line by line */
	char wbuf[65536];
};

struct maildir_add *maildir_add_new(const char *dir)
{
	struct maildir_add *b = calloc(1, sizeof(*b));

	if (b == NULL || (b->dir = strdup(dir)) == NULL) {
		free(b);
		return NULL;
	}
	b->fd = -1;
	return b;
}

static void unlink_tmp(const struct maildir_add *b, const char *name)
{
	char p[PATH_BUF];

	snprintf(p, sizeof(p), "%s/tmp/%s", b->dir, name);
	unlink(p);
}

void maildir_add_abort(struct maildir_add *b)
{
	if (b == NULL || b->fd < 0)
		return;
	close(b->fd);
	b->fd = -1;
	unlink_tmp(b, b->tmp);
}

/* Drops pending messages [from, n) from tmp/ and empties the batch. */
static void drop_pending(struct maildir_add *b, size_t from)
{
	size_t i;

	for (i = from; i < b->n; i++)
		unlink_tmp(b, b->v[i].tmp);
	b->n = 0;
	b->bytes = 0;
}

void maildir_add_free(struct maildir_add *b)
{
	if (b == NULL)
		return;
	maildir_add_abort(b);
	drop_pending(b, 0);
	free(b->v);
	free(b->dir);
	free(b);
}

size_t maildir_add_pending(const struct maildir_add *b)
{
	return b->n;
}

unsigned long long maildir_add_pending_bytes(const struct maildir_add *b)
{
	return b->bytes;
}

int maildir_add_begin(struct maildir_add *b, char *err, size_t errlen)
{
	char p[PATH_BUF];

	maildir_add_abort(b);
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

static int write_fail(struct maildir_add *b, char *err, size_t errlen)
{
	int e = errno;

	snprintf(err, errlen, "write %s/tmp/%s: %s", b->dir, b->tmp, strerror(e));
	maildir_add_abort(b);
	return e == ENOSPC || e == EDQUOT ? EX_TEMPFAIL : EX_IOERR;
}

static int wbuf_flush(struct maildir_add *b, char *err, size_t errlen)
{
	if (b->wlen > 0 && fsutil_write_all(b->fd, b->wbuf, b->wlen) < 0)
		return write_fail(b, err, errlen);
	b->wlen = 0;
	return 0;
}

int maildir_add_write(struct maildir_add *b, const void *buf, size_t len, char *err,
		      size_t errlen)
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
		if (fsutil_write_all(b->fd, buf, len) < 0)
			return write_fail(b, err, errlen);
	} else {
		memcpy(b->wbuf + b->wlen, buf, len);
		b->wlen += len;
	}
	b->size += (long long)len;
	b->vsize += (long long)len;
	return 0;
}

int maildir_add_end(struct maildir_add *b, unsigned flags, uint32_t keywords, time_t mtime,
		    char *fname, size_t fnamelen, char *err, size_t errlen)
{
	char base[MAILDIR_NAME_MAX + 1];
	struct maildir_add_msg *m;
	int rc;

	if (b->fd < 0) {
		snprintf(err, errlen, "no message being written");
		return EX_SOFTWARE;
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		struct maildir_add_msg *nv = realloc(b->v, cap * sizeof(*nv));

		if (nv == NULL) {
			maildir_add_abort(b);
			snprintf(err, errlen, "out of memory");
			return EX_OSERR;
		}
		b->v = nv;
		b->cap = cap;
	}
	if ((rc = wbuf_flush(b, err, errlen)) != 0)
		return rc;
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
	m = &b->v[b->n];
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

/* Steps 3 and 4 under the lock: renames, directory fsyncs, uidlist records. */
static int place_locked(struct maildir_folder *f, struct maildir_add *b, uint32_t *uids,
			char *err, size_t errlen)
{
	char from[PATH_BUF], to[PATH_BUF], e2[256];
	struct uidlist *ul = NULL;
	size_t i, first, placed;
	int rc, fresh = 0, any_new = 0, any_cur = 0;

	if ((rc = uidlist_read(b->dir, &ul, err, errlen)) != 0)
		return rc;
	if (ul == NULL) {
		/* the files already here are numbered by the next sync, after ours */
		time_t now = time(NULL);

		fresh = 1;
		ul = uidlist_new(f->uidvalidity != 0 ? f->uidvalidity : now > 0 ? (uint32_t)now : 1);
		if (ul == NULL) {
			snprintf(err, errlen, "out of memory");
			return EX_OSERR;
		}
	}
	first = ul->nrecs;
	for (i = 0; i < b->n; i++) {
		const struct maildir_add_msg *m = &b->v[i];

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
	placed = i;
	drop_pending(b, placed);
	if (any_new) {
		snprintf(to, sizeof(to), "%s/new", b->dir);
		if (fsutil_fsync_dir(to, e2, sizeof(e2)) != 0 && rc == 0) {
			snprintf(err, errlen, "%s", e2);
			rc = EX_TEMPFAIL;
		}
	}
	if (any_cur) {
		snprintf(to, sizeof(to), "%s/cur", b->dir);
		if (fsutil_fsync_dir(to, e2, sizeof(e2)) != 0 && rc == 0) {
			snprintf(err, errlen, "%s", e2);
			rc = EX_TEMPFAIL;
		}
	}
	/*
	 * The renamed files get their records even after a failure: they are
	 * visible now, and numbered here they keep the order of the batch.
	 */
	for (i = 0; i < placed; i++) {
		uint32_t uid = uidlist_add(ul, b->v[i].final, NULL);

		if (uid == 0) {
			if (rc == 0) {
				snprintf(err, errlen, "%s: cannot assign a UID", b->dir);
				rc = EX_SOFTWARE;
			}
			break;
		}
		if (uids != NULL)
			uids[i] = uid;
	}
	if (ul->nrecs > first) {
		int r2 = fresh ? uidlist_write(b->dir, ul, e2, sizeof(e2)) :
			uidlist_append(b->dir, ul, first, e2, sizeof(e2));

		if (r2 != 0) {
			/* the files stay; the next sync numbers them */
			if (uids != NULL)
				memset(uids, 0, placed * sizeof(*uids));
			if (rc == 0) {
				snprintf(err, errlen, "%s", e2);
				rc = r2;
			}
		}
	}
	uidlist_free(ul);
	return rc;
}

int maildir_folder_add_files(struct maildir_folder *f, struct maildir_add *b, uint32_t *uids,
			     char *err, size_t errlen)
{
	char ulpath[PATH_BUF];
	struct dotlock *lk = NULL;
	int dfd, rc;

	if (uids != NULL && b->n > 0)
		memset(uids, 0, b->n * sizeof(*uids));
	if (b->n == 0)
		return 0;
	dfd = open(b->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || syncfs(dfd) < 0) {
		int e = errno;

		snprintf(err, errlen, "syncfs %s: %s", b->dir, strerror(e));
		if (dfd >= 0)
			close(dfd);
		drop_pending(b, 0);
		return EX_TEMPFAIL;
	}
	close(dfd);
	snprintf(ulpath, sizeof(ulpath), "%s/" UIDLIST_NAME, b->dir);
	if ((rc = dotlock_take(ulpath, f->lock_wait, DOTLOCK_STALE_TIMEOUT, &lk, err,
			       errlen)) != 0) {
		drop_pending(b, 0);
		return rc;
	}
	rc = place_locked(f, b, uids, err, errlen);
	dotlock_release(lk);
	drop_pending(b, 0);	/* after an early failure: nothing was renamed */
	return rc;
}

int maildir_folder_set_flags_many(struct maildir_folder *f,
				  const struct maildir_flag_change *v, size_t n,
				  size_t *nfailed, char *err, size_t errlen)
{
	char from[PATH_BUF], to[PATH_BUF], nname[MAILDIR_NAME_MAX + 1], e2[256];
	struct dotlock *lk = NULL;
	unsigned char *retry;
	size_t i, bad = 0;
	int rc = 0, renamed = 0;

	if (nfailed != NULL)
		*nfailed = 0;
	if (n == 0)
		return 0;
	if ((retry = calloc(n, 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		if (nfailed != NULL)
			*nfailed = n;
		return EX_OSERR;
	}
	snprintf(to, sizeof(to), "%s/" UIDLIST_NAME, f->path);
	if ((rc = dotlock_take(to, f->lock_wait, DOTLOCK_STALE_TIMEOUT, &lk, err, errlen)) != 0) {
		free(retry);
		if (nfailed != NULL)
			*nfailed = n;
		return rc;
	}
	for (i = 0; i < n; i++) {
		const struct maildir_msg *cm = maildir_folder_find(f, v[i].uid);
		struct maildir_msg *m = (struct maildir_msg *)cm;

		if (m == NULL) {
			retry[i] = 1;	/* reported by the single call below */
			continue;
		}
		if (maildir_name_with_flags(m->fname, v[i].flags, v[i].keywords, nname,
					    sizeof(nname)) < 0) {
			retry[i] = 1;
			continue;
		}
		snprintf(from, sizeof(from), "%s/%s/%s", f->path, m->in_new ? "new" : "cur",
			 m->fname);
		snprintf(to, sizeof(to), "%s/cur/%s", f->path, nname);
		if (strcmp(from, to) != 0) {
			if (rename(from, to) < 0) {
				retry[i] = 1;	/* renamed by someone else: found again below */
				continue;
			}
			renamed = 1;
		}
		if (maildir_msg_set_name(f, m, nname) < 0) {
			/* the file has its new name; the next sync reads it */
			if (rc == 0) {
				snprintf(err, errlen, "out of memory");
				rc = EX_OSERR;
			}
			bad++;
			continue;
		}
		m->in_new = 0;
		m->flags = v[i].flags;
		m->keywords = v[i].keywords;
	}
	if (renamed) {
		snprintf(to, sizeof(to), "%s/cur", f->path);
		if (fsutil_fsync_dir(to, e2, sizeof(e2)) != 0 && rc == 0) {
			snprintf(err, errlen, "%s", e2);
			rc = EX_TEMPFAIL;
		}
	}
	dotlock_release(lk);
	for (i = 0; i < n; i++) {
		int r;

		if (!retry[i])
			continue;
		r = maildir_msg_set_flags(f, v[i].uid, v[i].flags, v[i].keywords, e2, sizeof(e2));
		if (r != 0) {
			bad++;
			if (rc == 0) {
				snprintf(err, errlen, "%s", e2);
				rc = r;
			}
		}
	}
	free(retry);
	if (nfailed != NULL)
		*nfailed = bad;
	return rc;
}

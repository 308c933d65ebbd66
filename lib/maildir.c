#include "maildir.h"

#include "dotlock.h"
#include "fsutil.h"
#include "log.h"
#include "uidlist.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#define PATH_BUF 4096

/* One file found in new/ or cur/ during a scan. */
struct scan_ent {
	char *name;
	int in_new;
	int matched;		/* a uidlist record claimed it */
	int gone;		/* vanished while we worked on it */
	struct maildir_name mn;
};

struct scan {
	struct scan_ent *ents;
	size_t n, cap;
	struct scan_ent **by_base;	/* sorted by base name */
};

static void scan_free(struct scan *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->ents[i].name);
	free(s->ents);
	free(s->by_base);
	memset(s, 0, sizeof(*s));
}

static int scan_dir(struct scan *s, const char *folder, int in_new, char *err, size_t errlen)
{
	char path[PATH_BUF];
	DIR *d;
	struct dirent *de;

	snprintf(path, sizeof(path), "%s/%s", folder, in_new ? "new" : "cur");
	d = opendir(path);
	if (d == NULL) {
		int e = errno;

		snprintf(err, errlen, "opendir %s: %s", path, strerror(e));
		return fsutil_errno_code(e);
	}
	while ((de = readdir(d)) != NULL) {
		struct scan_ent *e;
		struct maildir_name mn;

		if (de->d_name[0] == '.')
			continue;
		if (maildir_name_parse(de->d_name, strlen(de->d_name), &mn) < 0) {
			log_warn("maildir-skip", "dir=%s file=%s reason=invalid-name",
				 log_q(path), log_q(de->d_name));
			continue;
		}
		if (s->n == s->cap) {
			size_t ncap = s->cap ? s->cap * 2 : 256;
			struct scan_ent *ne = realloc(s->ents, ncap * sizeof(*ne));

			if (ne == NULL)
				goto nomem;
			s->ents = ne;
			s->cap = ncap;
		}
		e = &s->ents[s->n];
		memset(e, 0, sizeof(*e));
		e->name = strdup(de->d_name);
		if (e->name == NULL)
			goto nomem;
		e->in_new = in_new;
		e->mn = mn;
		s->n++;
	}
	closedir(d);
	return 0;
nomem:
	closedir(d);
	snprintf(err, errlen, "%s: out of memory", path);
	return EX_OSERR;
}

static int base_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int ent_cmp(const void *a, const void *b)
{
	const struct scan_ent *x = *(struct scan_ent *const *)a, *y = *(struct scan_ent *const *)b;

	return base_cmp(x->name, x->mn.base_len, y->name, y->mn.base_len);
}

static int ent_name_cmp(const void *a, const void *b)
{
	const struct scan_ent *x = *(struct scan_ent *const *)a, *y = *(struct scan_ent *const *)b;

	return strcmp(x->name, y->name);
}

static size_t base_len_of(const char *fname)
{
	return strcspn(fname, ":");
}

/* The unclaimed entry with FNAME's base, or NULL. */
static struct scan_ent *scan_find(struct scan *s, const char *fname)
{
	size_t blen = base_len_of(fname), lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct scan_ent *e = s->by_base[mid];
		int c = base_cmp(fname, blen, e->name, e->mn.base_len);

		if (c == 0)
			return e;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static int scan_all(struct scan *s, const char *folder, char *err, size_t errlen)
{
	size_t i;
	int r;

	scan_free(s);
	if ((r = scan_dir(s, folder, 1, err, errlen)) != 0 ||
	    (r = scan_dir(s, folder, 0, err, errlen)) != 0)
		return r;
	s->by_base = malloc((s->n ? s->n : 1) * sizeof(*s->by_base));
	if (s->by_base == NULL) {
		snprintf(err, errlen, "%s: out of memory", folder);
		return EX_OSERR;
	}
	for (i = 0; i < s->n; i++)
		s->by_base[i] = &s->ents[i];
	qsort(s->by_base, s->n, sizeof(*s->by_base), ent_cmp);
	return 0;
}

/* Matches records to files; returns how many records have no file. */
static size_t scan_match(struct scan *s, struct uidlist *ul, struct scan_ent **rec_ent)
{
	size_t i, missing = 0;

	for (i = 0; i < s->n; i++)
		s->ents[i].matched = 0;
	for (i = 0; i < ul->nrecs; i++) {
		struct scan_ent *e = scan_find(s, ul->recs[i].fname);

		if (e != NULL && !e->matched) {
			e->matched = 1;
			rec_ent[i] = e;
		} else {
			rec_ent[i] = NULL;
			missing++;
		}
	}
	return missing;
}

static uint32_t new_uidvalidity(void)
{
	time_t t = time(NULL);

	return t > 0 ? (uint32_t)t : 1;
}

int maildir_folder_init(const char *dir, char *err, size_t errlen)
{
	static const char *const sub[] = { "cur", "new", "tmp" };
	char path[PATH_BUF];
	struct dotlock *lk;
	struct uidlist *ul;
	size_t i;
	int r;

	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, sub[i]);
		if ((r = fsutil_mkdir(path, 0700, err, errlen)) != 0)
			return r;
	}
	snprintf(path, sizeof(path), "%s/" UIDLIST_NAME, dir);
	if ((r = dotlock_take(path, DOTLOCK_WAIT_TIMEOUT, DOTLOCK_STALE_TIMEOUT, &lk,
			      err, errlen)) != 0)
		return r;
	r = uidlist_read(dir, &ul, err, errlen);
	if (r == 0 && ul == NULL) {
		ul = uidlist_new(new_uidvalidity());
		if (ul == NULL) {
			snprintf(err, errlen, "%s: out of memory", dir);
			r = EX_OSERR;
		} else {
			r = uidlist_write(dir, ul, err, errlen);
		}
	}
	uidlist_free(ul);
	dotlock_release(lk);
	if (r == 0)
		r = fsutil_fsync_dir(dir, err, errlen);
	return r;
}

int maildir_folder_open(const char *dir, struct maildir_folder **out,
			char *err, size_t errlen)
{
	char path[PATH_BUF];
	struct stat st;
	struct maildir_folder *f;

	*out = NULL;
	snprintf(path, sizeof(path), "%s/cur", dir);
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: not a Maildir folder (no cur/)", dir);
		return EX_NOINPUT;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL || (f->path = strdup(dir)) == NULL) {
		free(f);
		snprintf(err, errlen, "out of memory");
		return EX_OSERR;
	}
	f->lock_wait = DOTLOCK_WAIT_TIMEOUT;
	*out = f;
	return 0;
}

static void msgs_free(struct maildir_folder *f)
{
	size_t i;

	for (i = 0; i < f->nmsgs; i++)
		free(f->msgs[i].fname);
	free(f->msgs);
	f->msgs = NULL;
	f->nmsgs = 0;
}

void maildir_folder_free(struct maildir_folder *f)
{
	if (f == NULL)
		return;
	msgs_free(f);
	free(f->path);
	free(f);
}

static int lock_folder(const struct maildir_folder *f, struct dotlock **lk,
		       char *err, size_t errlen)
{
	char path[PATH_BUF];

	snprintf(path, sizeof(path), "%s/" UIDLIST_NAME, f->path);
	return dotlock_take(path, f->lock_wait, DOTLOCK_STALE_TIMEOUT, lk, err, errlen);
}

static void stat_mtime(const char *folder, const char *name, struct timespec *ts,
		       off_t *size, ino_t *ino)
{
	char path[PATH_BUF];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", folder, name);
	memset(ts, 0, sizeof(*ts));
	if (stat(path, &st) == 0) {
		*ts = st.st_mtim;
		if (size)
			*size = st.st_size;
		if (ino)
			*ino = st.st_ino;
	}
}

static int ts_eq(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* 1 if nothing changed since the last sync (and that sync was not racy). */
static int folder_unchanged(const struct maildir_folder *f)
{
	struct timespec n, c, u;
	off_t size = 0;
	ino_t ino = 0;

	if (f->synced_at == 0)
		return 0;
	stat_mtime(f->path, "new", &n, NULL, NULL);
	stat_mtime(f->path, "cur", &c, NULL, NULL);
	stat_mtime(f->path, UIDLIST_NAME, &u, &size, &ino);
	if (!ts_eq(&n, &f->seen_new) || !ts_eq(&c, &f->seen_cur) || !ts_eq(&u, &f->seen_ul) ||
	    size != f->seen_ul_size || ino != f->seen_ul_ino)
		return 0;
	/* A change within the same clock tick as our scan may be invisible. */
	return f->synced_at > n.tv_sec + 1 && f->synced_at > c.tv_sec + 1;
}

static long long ent_size(const char *folder, const struct scan_ent *e)
{
	char path[PATH_BUF];
	struct stat st;

	if (e->mn.size >= 0)
		return e->mn.size;
	snprintf(path, sizeof(path), "%s/%s/%s", folder, e->in_new ? "new" : "cur", e->name);
	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* new/X -> cur/X:2,<flags>, as a session's first sync does. */
static int move_to_cur(const char *folder, struct scan_ent *e, char *err, size_t errlen)
{
	char from[PATH_BUF], to[PATH_BUF], nname[MAILDIR_NAME_MAX + 1];

	if (maildir_name_with_flags(e->name, e->mn.flags, e->mn.keywords, nname, sizeof(nname)) < 0)
		snprintf(nname, sizeof(nname), "%s", e->name);
	snprintf(from, sizeof(from), "%s/new/%s", folder, e->name);
	snprintf(to, sizeof(to), "%s/cur/%s", folder, nname);
	if (rename(from, to) < 0) {
		if (errno == ENOENT) {
			e->gone = 1;
			return 0;
		}
		int er = errno;

		snprintf(err, errlen, "rename %s: %s", from, strerror(er));
		return fsutil_errno_code(er);
	}
	free(e->name);
	e->name = strdup(nname);
	if (e->name == NULL) {
		snprintf(err, errlen, "out of memory");
		return EX_OSERR;
	}
	e->in_new = 0;
	maildir_name_parse(e->name, strlen(e->name), &e->mn);
	return 0;
}

static int sync_locked(struct maildir_folder *f, unsigned flags, char *err, size_t errlen)
{
	struct uidlist *ul = NULL;
	struct scan s = { 0 };
	struct scan_ent **rec_ent = NULL, **fresh = NULL;
	size_t i, missing, nfresh = 0, old_nrecs, dropped = 0, moved = 0;
	int r, rewrite = 0;

	r = uidlist_read(f->path, &ul, err, errlen);
	if (r != 0)
		return r;
	if (ul == NULL) {
		ul = uidlist_new(new_uidvalidity());
		if (ul == NULL)
			goto nomem;
		rewrite = 1;
	} else if (ul->version != 3) {
		rewrite = 1;
	}
	if ((r = scan_all(&s, f->path, err, errlen)) != 0)
		goto out;
	rec_ent = calloc(ul->nrecs ? ul->nrecs : 1, sizeof(*rec_ent));
	if (rec_ent == NULL)
		goto nomem;
	missing = scan_match(&s, ul, rec_ent);
	if (missing > 0) {
		/*
		 * readdir() may miss a file renamed during the scan by a writer
		 * that does not lock (an MUA changing flags): look once more
		 * before treating records as expunged.
		 */
		if ((r = scan_all(&s, f->path, err, errlen)) != 0)
			goto out;
		missing = scan_match(&s, ul, rec_ent);
	}
	if (flags & MAILDIR_SYNC_MOVE_NEW) {
		for (i = 0; i < s.n; i++) {
			if (!s.ents[i].in_new)
				continue;
			if ((r = move_to_cur(f->path, &s.ents[i], err, errlen)) != 0)
				goto out;
			moved++;
		}
	}
	/* Files without a record get UIDs in name (= arrival time) order. */
	fresh = malloc((s.n ? s.n : 1) * sizeof(*fresh));
	if (fresh == NULL)
		goto nomem;
	for (i = 0; i < s.n; i++) {
		if (s.ents[i].matched || s.ents[i].gone)
			continue;
		/* A second file with a base already claimed is a duplicate: leave it. */
		fresh[nfresh++] = &s.ents[i];
	}
	qsort(fresh, nfresh, sizeof(*fresh), ent_name_cmp);
	if (missing > 0) {
		for (i = ul->nrecs; i-- > 0; ) {
			if (rec_ent[i] != NULL)
				continue;
			uidlist_remove(ul, i);
			memmove(&rec_ent[i], &rec_ent[i + 1],
				(ul->nrecs - i) * sizeof(*rec_ent));
			dropped++;
		}
		rewrite = 1;
	}
	old_nrecs = ul->nrecs;
	if (nfresh > 0) {
		struct scan_ent **nre = realloc(rec_ent, (ul->nrecs + nfresh) * sizeof(*nre));

		if (nre == NULL)
			goto nomem;
		rec_ent = nre;
	}
	for (i = 0; i < nfresh; i++) {
		size_t k;

		/* skip a duplicate base among the fresh files themselves */
		for (k = 0; k < i; k++)
			if (fresh[k] != NULL && base_cmp(fresh[k]->name, fresh[k]->mn.base_len,
			    fresh[i]->name, fresh[i]->mn.base_len) == 0)
				break;
		if (k < i) {
			log_warn("maildir-duplicate", "folder=%s file=%s", log_q(f->path),
				 log_q(fresh[i]->name));
			continue;
		}
		if (uidlist_add(ul, fresh[i]->name, NULL) == 0) {
			snprintf(err, errlen, "%s: cannot assign a UID (exhausted or no memory)",
				 f->path);
			r = EX_SOFTWARE;
			goto out;
		}
		rec_ent[ul->nrecs - 1] = fresh[i];
	}
	if (rewrite) {
		/* Like dovecot, a rewrite records the current file names. */
		for (i = 0; i < ul->nrecs; i++) {
			struct scan_ent *e = rec_ent[i];
			char *n;

			if (e == NULL || e->gone || strcmp(e->name, ul->recs[i].fname) == 0)
				continue;
			if ((n = strdup(e->name)) == NULL)
				goto nomem;
			free(ul->recs[i].fname);
			ul->recs[i].fname = n;
		}
		r = uidlist_write(f->path, ul, err, errlen);
	} else if (ul->nrecs > old_nrecs) {
		r = uidlist_append(f->path, ul, old_nrecs, err, errlen);
	}
	if (r != 0)
		goto out;
	if (moved > 0) {
		char d[PATH_BUF];

		snprintf(d, sizeof(d), "%s/cur", f->path);
		if ((r = fsutil_fsync_dir(d, err, errlen)) != 0)
			goto out;
	}
	if (dropped > 0)
		log_debug("maildir-expunged", "folder=%s count=%zu", log_q(f->path), dropped);

	/* Publish the new index. */
	msgs_free(f);
	f->msgs = calloc(ul->nrecs ? ul->nrecs : 1, sizeof(*f->msgs));
	if (f->msgs == NULL)
		goto nomem;
	for (i = 0; i < ul->nrecs; i++) {
		struct scan_ent *e = rec_ent[i];
		struct maildir_msg *m;

		if (e == NULL || e->gone)
			continue;
		m = &f->msgs[f->nmsgs++];
		m->uid = ul->recs[i].uid;
		m->fname = e->name;
		e->name = NULL;		/* ownership moves to the index */
		m->in_new = e->in_new;
		m->flags = e->mn.flags;
		m->keywords = e->mn.keywords;
		m->size = e->mn.size;
		if (m->size < 0) {
			e->name = m->fname;
			m->size = ent_size(f->path, e);
			e->name = NULL;
		}
	}
	f->uidvalidity = ul->uidvalidity;
	f->next_uid = ul->next_uid;
	stat_mtime(f->path, "new", &f->seen_new, NULL, NULL);
	stat_mtime(f->path, "cur", &f->seen_cur, NULL, NULL);
	stat_mtime(f->path, UIDLIST_NAME, &f->seen_ul, &f->seen_ul_size, &f->seen_ul_ino);
	f->synced_at = time(NULL);
	r = 0;
out:
	free(fresh);
	free(rec_ent);
	scan_free(&s);
	uidlist_free(ul);
	return r;
nomem:
	snprintf(err, errlen, "%s: out of memory", f->path);
	r = EX_OSERR;
	goto out;
}

int maildir_folder_sync(struct maildir_folder *f, unsigned flags, char *err, size_t errlen)
{
	struct dotlock *lk;
	int r;

	if (!(flags & (MAILDIR_SYNC_FORCE | MAILDIR_SYNC_MOVE_NEW)) && folder_unchanged(f))
		return 0;
	if ((r = lock_folder(f, &lk, err, errlen)) != 0)
		return r;
	r = sync_locked(f, flags, err, errlen);
	dotlock_release(lk);
	return r;
}

static long msg_index(const struct maildir_folder *f, uint32_t uid)
{
	size_t lo = 0, hi = f->nmsgs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->msgs[mid].uid == uid)
			return (long)mid;
		if (f->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

const struct maildir_msg *maildir_folder_find(const struct maildir_folder *f, uint32_t uid)
{
	long i = msg_index(f, uid);

	return i < 0 ? NULL : &f->msgs[i];
}

void maildir_folder_status(const struct maildir_folder *f, struct maildir_status *st)
{
	size_t i;

	memset(st, 0, sizeof(*st));
	st->messages = (uint32_t)f->nmsgs;
	st->uidnext = f->next_uid;
	st->uidvalidity = f->uidvalidity;
	for (i = 0; i < f->nmsgs; i++) {
		const struct maildir_msg *m = &f->msgs[i];

		if (!(m->flags & MAILDIR_FLAG_SEEN))
			st->unseen++;
		if (m->in_new)
			st->recent++;
		if (m->size > 0)
			st->size += (unsigned long long)m->size;
	}
}

/*
 * Finds the current file of M (someone may have renamed it): updates
 * m->fname/in_new.  EX_NOINPUT if it is gone.
 */
static int msg_locate(struct maildir_folder *f, struct maildir_msg *m, char *err, size_t errlen)
{
	char path[PATH_BUF];
	struct scan s = { 0 };
	struct scan_ent *e;
	int r;

	snprintf(path, sizeof(path), "%s/%s/%s", f->path, m->in_new ? "new" : "cur", m->fname);
	if (access(path, F_OK) == 0)
		return 0;
	if ((r = scan_all(&s, f->path, err, errlen)) != 0)
		return r;
	e = scan_find(&s, m->fname);
	if (e == NULL) {
		scan_free(&s);
		snprintf(err, errlen, "%s: message UID %u is gone", f->path, m->uid);
		return EX_NOINPUT;
	}
	free(m->fname);
	m->fname = e->name;
	e->name = NULL;
	m->in_new = e->in_new;
	m->flags = e->mn.flags;
	m->keywords = e->mn.keywords;
	scan_free(&s);
	return 0;
}

int maildir_msg_set_flags(struct maildir_folder *f, uint32_t uid, unsigned flags,
			  uint32_t keywords, char *err, size_t errlen)
{
	char from[PATH_BUF], to[PATH_BUF], nname[MAILDIR_NAME_MAX + 1], d[PATH_BUF];
	struct dotlock *lk;
	struct maildir_msg *m;
	long i = msg_index(f, uid);
	int r, was_new;
	char *dup;

	if (i < 0) {
		snprintf(err, errlen, "%s: no message with UID %u", f->path, uid);
		return EX_NOINPUT;
	}
	m = &f->msgs[i];
	if ((r = lock_folder(f, &lk, err, errlen)) != 0)
		return r;
	if ((r = msg_locate(f, m, err, errlen)) != 0)
		goto out;
	if (maildir_name_with_flags(m->fname, flags, keywords, nname, sizeof(nname)) < 0) {
		snprintf(err, errlen, "%s: file name too long for flags", m->fname);
		r = EX_DATAERR;
		goto out;
	}
	was_new = m->in_new;
	snprintf(from, sizeof(from), "%s/%s/%s", f->path, was_new ? "new" : "cur", m->fname);
	snprintf(to, sizeof(to), "%s/cur/%s", f->path, nname);
	if (strcmp(from, to) != 0 && rename(from, to) < 0) {
		int e = errno;

		snprintf(err, errlen, "rename %s: %s", from, strerror(e));
		r = fsutil_errno_code(e);
		goto out;
	}
	snprintf(d, sizeof(d), "%s/cur", f->path);
	if ((r = fsutil_fsync_dir(d, err, errlen)) != 0)
		goto out;
	if ((dup = strdup(nname)) == NULL) {
		snprintf(err, errlen, "out of memory");
		r = EX_OSERR;
		goto out;
	}
	free(m->fname);
	m->fname = dup;
	m->in_new = 0;
	m->flags = flags;
	m->keywords = keywords;
out:
	dotlock_release(lk);
	return r;
}

int maildir_msg_expunge(struct maildir_folder *f, uint32_t uid, char *err, size_t errlen)
{
	char path[PATH_BUF], d[PATH_BUF];
	struct dotlock *lk;
	long i = msg_index(f, uid);
	int r;

	if (i < 0) {
		snprintf(err, errlen, "%s: no message with UID %u", f->path, uid);
		return EX_NOINPUT;
	}
	if ((r = lock_folder(f, &lk, err, errlen)) != 0)
		return r;
	r = msg_locate(f, &f->msgs[i], err, errlen);
	if (r == 0) {
		snprintf(path, sizeof(path), "%s/%s/%s", f->path,
			 f->msgs[i].in_new ? "new" : "cur", f->msgs[i].fname);
		snprintf(d, sizeof(d), "%s/%s", f->path, f->msgs[i].in_new ? "new" : "cur");
		if (unlink(path) < 0 && errno != ENOENT) {
			int e = errno;

			snprintf(err, errlen, "unlink %s: %s", path, strerror(e));
			r = fsutil_errno_code(e);
		} else {
			r = fsutil_fsync_dir(d, err, errlen);
		}
	} else if (r == EX_NOINPUT) {
		r = 0;		/* already gone: the same result */
	}
	dotlock_release(lk);
	if (r == 0) {
		free(f->msgs[i].fname);
		memmove(&f->msgs[i], &f->msgs[i + 1], (f->nmsgs - (size_t)i - 1) * sizeof(f->msgs[0]));
		f->nmsgs--;
	}
	return r;
}

int maildir_msg_open(struct maildir_folder *f, uint32_t uid, int *fd, char *err, size_t errlen)
{
	char path[PATH_BUF];
	long i = msg_index(f, uid);
	int tries;

	*fd = -1;
	if (i < 0) {
		snprintf(err, errlen, "%s: no message with UID %u", f->path, uid);
		return EX_NOINPUT;
	}
	for (tries = 0; tries < 3; tries++) {
		struct maildir_msg *m = &f->msgs[i];
		int r;

		snprintf(path, sizeof(path), "%s/%s/%s", f->path, m->in_new ? "new" : "cur", m->fname);
		*fd = open(path, O_RDONLY | O_CLOEXEC);
		if (*fd >= 0)
			return 0;
		if (errno != ENOENT) {
			int e = errno;

			snprintf(err, errlen, "open %s: %s", path, strerror(e));
			return fsutil_errno_code(e);
		}
		/* renamed by someone (flags): find it by its base name */
		if ((r = msg_locate(f, m, err, errlen)) != 0)
			return r;
	}
	snprintf(err, errlen, "%s: message UID %u keeps moving", f->path, uid);
	return EX_TEMPFAIL;
}

#include "maildir.h"

#include "bigmem.h"
#include "dotlock.h"
#include "fsutil.h"
#include "log.h"
#include "maildir-index.h"
#include "maildir-scan.h"
#include "uidlist.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define PATH_BUF 4096

/*
 * Readers write the index without the uidlist lock (each writes a temporary
 * file of its own, the last rename wins).  Under constant change a small
 * folder's index is rewritten by every session for little gain: readers
 * refresh it only for folders this big, or when there is none.
 */
#define MAILDIR_INDEX_UNLOCKED_MIN 256

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

	struct stat st;
	int have = 0;

	/* already a folder (every login ensures INBOX): no lock, no writes */
	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, sub[i]);
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			have++;
	}
	snprintf(path, sizeof(path), "%s/" UIDLIST_NAME, dir);
	if (have == 3 && stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
		return 0;
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

void maildir_folder_free(struct maildir_folder *f)
{
	if (f == NULL)
		return;
	if (f->dirty & MAILDIR_DIRTY_UIDLIST)
		close(f->dirty_fd);
	maildir_msgs_free(f);
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

static int stamp_eq(const struct maildir_stamp *a, const struct maildir_stamp *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/*
 * A directory or file changed less than this before its stamp was taken may
 * change again within the same timestamp tick (file systems stamp with a
 * coarse clock, a jiffy): such a stamp does not prove "unchanged".
 */
#define RACY_NS 50000000LL

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int stamp_settled(const struct maildir_stamp *st, int64_t taken_ns)
{
	int64_t m = st->mtime_sec * 1000000000LL + st->mtime_nsec;
	int64_t c = st->ctime_sec * 1000000000LL + st->ctime_nsec;

	return m < taken_ns - RACY_NS && c < taken_ns - RACY_NS;
}

/*
 * 1 if nothing changed since the last sync: the stamps taken before its scan
 * are still the stamps now, and were settled when taken.
 */
int maildir_folder_unchanged(const struct maildir_folder *f)
{
	struct maildir_stamp n, c, u;

	if (f->synced_at == 0)
		return 0;
	if (!stamp_settled(&f->seen_new, f->stamped_ns) ||
	    !stamp_settled(&f->seen_cur, f->stamped_ns) ||
	    !stamp_settled(&f->seen_ul, f->stamped_ns))
		return 0;
	maildir_stamp_of(f->path, "new", &n);
	maildir_stamp_of(f->path, "cur", &c);
	maildir_stamp_of(f->path, UIDLIST_NAME, &u);
	return stamp_eq(&n, &f->seen_new) && stamp_eq(&c, &f->seen_cur) &&
	       stamp_eq(&u, &f->seen_ul);
}

static long long ent_size(const char *folder, const struct maildir_scan *s,
			  const struct maildir_scan_ent *e)
{
	char path[PATH_BUF];
	struct stat st;

	if (e->size >= 0)
		return e->size;
	snprintf(path, sizeof(path), "%s/%s/%s", folder, e->in_new ? "new" : "cur",
		 MAILDIR_SCAN_NAME(s, e));
	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* new/X -> cur/X:2,<flags>, as a session's first sync does. */
static int move_to_cur(const char *folder, struct maildir_scan *s, struct maildir_scan_ent *e,
		       char *err, size_t errlen)
{
	char from[PATH_BUF], to[PATH_BUF], nname[MAILDIR_NAME_MAX + 1];
	struct maildir_name mn;
	const char *name = MAILDIR_SCAN_NAME(s, e);

	if (maildir_name_with_flags(name, e->flags, e->keywords, nname, sizeof(nname)) < 0)
		snprintf(nname, sizeof(nname), "%s", name);
	snprintf(from, sizeof(from), "%s/new/%s", folder, name);
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
	e->in_new = 0;
	if (maildir_name_parse(nname, strlen(nname), &mn) < 0 ||
	    maildir_scan_set_name(s, e, nname, strlen(nname), &mn) < 0) {
		snprintf(err, errlen, "out of memory");
		return EX_OSERR;
	}
	return 0;
}

/*
 * Replaces F's messages with the files of S matched to the records of UL
 * (REC_ENT[i] for record i): one array, one block for all names.
 */
static int publish(struct maildir_folder *f, struct maildir_scan *s, const struct uidlist *ul,
		   struct maildir_scan_ent **rec_ent)
{
	struct maildir_msg *msgs;
	size_t i, n = 0, names_len = 0, off = 0;
	char *names;

	for (i = 0; i < ul->nrecs; i++)
		if (rec_ent[i] != NULL && !rec_ent[i]->gone) {
			names_len += rec_ent[i]->name_len + 1u;
			n++;
		}
	msgs = bigmem_calloc(n ? n : 1, sizeof(*msgs));
	names = malloc(names_len ? names_len : 1);
	if (msgs == NULL || names == NULL) {
		bigmem_free(msgs);
		free(names);
		return -1;
	}
	for (i = 0, n = 0; i < ul->nrecs; i++) {
		struct maildir_scan_ent *e = rec_ent[i];
		struct maildir_msg *m;

		if (e == NULL || e->gone)
			continue;
		m = &msgs[n++];
		m->uid = ul->recs[i].uid;
		m->fname = names + off;
		memcpy(names + off, MAILDIR_SCAN_NAME(s, e), e->name_len + 1u);
		off += e->name_len + 1u;
		m->in_new = e->in_new;
		m->flags = e->flags;
		m->keywords = e->keywords;
		m->size = ent_size(f->path, s, e);
	}
	maildir_msgs_free(f);
	f->msgs = msgs;
	f->nmsgs = n;
	f->names = names;
	f->names_len = names_len;
	return 0;
}

/*
 * Reads the uidlist, scans new/ and cur/ and publishes the result.  Without
 * the lock (LOCKED 0) it writes nothing and returns 1 when the folder needs
 * a writer: files without a UID, no or an old uidlist, or a uidlist it
 * cannot parse (possibly caught in the middle of an append).
 */
static int sync_scan(struct maildir_folder *f, unsigned flags, int locked,
		     char *err, size_t errlen)
{
	struct uidlist *ul = NULL;
	struct maildir_scan s = { 0 };
	struct maildir_scan_ent **rec_ent = NULL, **fresh = NULL;
	struct maildir_stamp sn, sc, su;
	size_t i, missing, nfresh = 0, old_nrecs, dropped = 0, moved = 0;
	time_t started = time(NULL);
	int64_t stamped = now_ns();
	int r, rewrite = 0, big, wrote = 0;

	/* stamps before the scan: a change after them shows as a new stamp */
	maildir_stamp_of(f->path, "new", &sn);
	maildir_stamp_of(f->path, "cur", &sc);
	maildir_stamp_of(f->path, UIDLIST_NAME, &su);
	r = uidlist_read(f->path, &ul, err, errlen);
	if (r != 0 && !locked)
		return 1;
	if (r != 0)
		return r;
	if (!locked && (ul == NULL || ul->version != 3)) {
		uidlist_free(ul);
		return 1;
	}
	if (ul == NULL) {
		ul = uidlist_new(new_uidvalidity());
		if (ul == NULL)
			goto nomem;
		rewrite = 1;
	} else if (ul->version != 3) {
		rewrite = 1;
	}
	if ((r = maildir_scan_all(&s, f->path, err, errlen)) != 0)
		goto out;
	rec_ent = calloc(ul->nrecs ? ul->nrecs : 1, sizeof(*rec_ent));
	if (rec_ent == NULL)
		goto nomem;
	missing = maildir_scan_match(&s, ul, rec_ent);
	if (missing > 0) {
		/*
		 * readdir() may miss a file renamed during the scan by a writer
		 * that does not lock (an MUA changing flags): look once more
		 * before treating records as expunged.
		 */
		if ((r = maildir_scan_all(&s, f->path, err, errlen)) != 0)
			goto out;
		missing = maildir_scan_match(&s, ul, rec_ent);
	}
	if (flags & MAILDIR_SYNC_MOVE_NEW) {
		for (i = 0; i < s.n; i++) {
			if (!s.ents[i].in_new)
				continue;
			if ((r = move_to_cur(f->path, &s, &s.ents[i], err, errlen)) != 0)
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
		fresh[nfresh++] = &s.ents[i];
	}
	if (!locked && nfresh > 0) {
		r = 1;
		goto out;
	}
	qsort_r(fresh, nfresh, sizeof(*fresh), maildir_scan_name_cmp, s.pool);
	if (missing > 0) {
		size_t w = 0;

		/* drop records without a file in one pass (order kept) */
		for (i = 0; i < ul->nrecs; i++) {
			if (rec_ent[i] == NULL) {
				free(ul->recs[i].ext);
				uidlist_free_name(ul, ul->recs[i].fname);
				dropped++;
				continue;
			}
			ul->recs[w] = ul->recs[i];
			rec_ent[w++] = rec_ent[i];
		}
		ul->nrecs = w;
		rewrite = 1;
	}
	old_nrecs = ul->nrecs;
	if (nfresh > 0) {
		struct maildir_scan_ent **nre = realloc(rec_ent, (ul->nrecs + nfresh) * sizeof(*nre));

		if (nre == NULL)
			goto nomem;
		rec_ent = nre;
	}
	for (i = 0; i < nfresh; i++) {
		struct maildir_scan_ent *e = fresh[i];
		const char *name = MAILDIR_SCAN_NAME(&s, e);

		/*
		 * A second fresh file with the same base (one copy in new/,
		 * one in cur/) is a duplicate: it gets no UID of its own.
		 */
		e->matched = 1;
		if (maildir_scan_find_base(&s, name, e->base_len, MAILDIR_SCAN_FRESH) != NULL) {
			log_warn("maildir-duplicate", "folder=%s file=%s", log_q(f->path),
				 log_q(name));
			continue;
		}
		if (uidlist_add(ul, name, NULL) == 0) {
			snprintf(err, errlen, "%s: cannot assign a UID (exhausted or no memory)",
				 f->path);
			r = EX_SOFTWARE;
			goto out;
		}
		e->fresh_uid = 1;
		rec_ent[ul->nrecs - 1] = e;
	}
	if (rewrite) {
		/* Like dovecot, a rewrite records the current file names. */
		for (i = 0; i < ul->nrecs; i++) {
			struct maildir_scan_ent *e = rec_ent[i];
			char *n;

			if (e == NULL || e->gone || strcmp(MAILDIR_SCAN_NAME(&s, e), ul->recs[i].fname) == 0)
				continue;
			if ((n = strdup(MAILDIR_SCAN_NAME(&s, e))) == NULL)
				goto nomem;
			uidlist_free_name(ul, ul->recs[i].fname);
			ul->recs[i].fname = n;
		}
		/* unlocked: records of expunged files stay until a writer comes */
		if (locked) {
			r = uidlist_write(f->path, ul, err, errlen);
			wrote = 1;
		}
	} else if (ul->nrecs > old_nrecs) {
		r = uidlist_append(f->path, ul, old_nrecs, err, errlen);
		wrote = 1;
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

	if (publish(f, &s, ul, rec_ent) < 0)
		goto nomem;
	f->uidvalidity = ul->uidvalidity;
	f->next_uid = ul->next_uid;
	f->seen_new = sn;
	f->seen_cur = sc;
	f->seen_ul = su;
	f->stamped_ns = stamped;
	if (wrote) {
		/* our own write, under the lock: nobody else changed it since */
		maildir_stamp_of(f->path, UIDLIST_NAME, &f->seen_ul);
		f->stamped_ns = now_ns();
	}
	f->synced_at = started;
	if (locked || f->nmsgs >= MAILDIR_INDEX_UNLOCKED_MIN || !maildir_index_exists(f))
		maildir_index_save(f);
	r = 0;
out:
	free(fresh);
	free(rec_ent);
	big = s.n >= 4096;
	maildir_scan_free(&s);
	uidlist_free(ul);
	if (big)
		malloc_trim(0);	/* give the scan's heap back: sessions stay small */
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

	if (!(flags & (MAILDIR_SYNC_FORCE | MAILDIR_SYNC_MOVE_NEW)) &&
	    (maildir_folder_unchanged(f) || maildir_index_load(f) == 0))
		return 0;
	/* readers need no lock: only a folder that needs writing takes it */
	if (!(flags & MAILDIR_SYNC_MOVE_NEW) && (r = sync_scan(f, flags, 0, err, errlen)) != 1)
		return r;
	if ((r = lock_folder(f, &lk, err, errlen)) != 0)
		return r;
	r = sync_scan(f, flags, 1, err, errlen);
	dotlock_release(lk);
	return r;
}

int maildir_folder_flush(struct maildir_folder *f, char *err, size_t errlen)
{
	static const struct { unsigned bit; const char *sub; } dirs[] = {
		{ MAILDIR_DIRTY_CUR, "cur" }, { MAILDIR_DIRTY_NEW, "new" },
	};
	char d[PATH_BUF];
	int r = 0;

	for (size_t i = 0; i < 2; i++) {
		if (!(f->dirty & dirs[i].bit))
			continue;
		snprintf(d, sizeof(d), "%s/%s", f->path, dirs[i].sub);
		if (r == 0)
			r = fsutil_fsync_dir(d, err, errlen);
	}
	if (f->dirty & MAILDIR_DIRTY_UIDLIST) {
		/* the file the records went to, even if a rewrite replaced it since */
		if (fsync(f->dirty_fd) < 0 && r == 0) {
			int e = errno;

			snprintf(err, errlen, "fsync %s/" UIDLIST_NAME ": %s", f->path, strerror(e));
			r = fsutil_errno_code(e);
		}
		close(f->dirty_fd);
	}
	f->dirty = 0;
	return r;
}

/* fsyncs directory SUB ("cur", "new") of F now, or marks it for the flush. */
static int sync_dir(struct maildir_folder *f, const char *sub, char *err, size_t errlen)
{
	char d[PATH_BUF];

	if (f->defer_fsync) {
		f->dirty |= strcmp(sub, "new") == 0 ? MAILDIR_DIRTY_NEW : MAILDIR_DIRTY_CUR;
		return 0;
	}
	snprintf(d, sizeof(d), "%s/%s", f->path, sub);
	return fsutil_fsync_dir(d, err, errlen);
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
	struct maildir_scan s = { 0 };
	struct maildir_scan_ent *e;
	int r;

	snprintf(path, sizeof(path), "%s/%s/%s", f->path, m->in_new ? "new" : "cur", m->fname);
	if (access(path, F_OK) == 0)
		return 0;
	if ((r = maildir_scan_all(&s, f->path, err, errlen)) != 0)
		return r;
	e = maildir_scan_find(&s, m->fname);
	if (e == NULL) {
		maildir_scan_free(&s);
		snprintf(err, errlen, "%s: message UID %u is gone", f->path, m->uid);
		return EX_NOINPUT;
	}
	if (maildir_msg_set_name(f, m, MAILDIR_SCAN_NAME(&s, e)) < 0) {
		maildir_scan_free(&s);
		snprintf(err, errlen, "out of memory");
		return EX_OSERR;
	}
	m->in_new = e->in_new;
	m->flags = e->flags;
	m->keywords = e->keywords;
	maildir_scan_free(&s);
	return 0;
}

int maildir_msg_set_flags(struct maildir_folder *f, uint32_t uid, unsigned flags,
			  uint32_t keywords, char *err, size_t errlen)
{
	char from[PATH_BUF], to[PATH_BUF], nname[MAILDIR_NAME_MAX + 1];
	struct dotlock *lk;
	struct maildir_msg *m;
	long i = msg_index(f, uid);
	int r, was_new;

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
	if (maildir_msg_set_name(f, m, nname) < 0) {
		snprintf(err, errlen, "out of memory");
		r = EX_OSERR;
		goto out;
	}
	m->in_new = 0;
	m->flags = flags;
	m->keywords = keywords;
out:
	dotlock_release(lk);
	/* the disk wait after the lock: other writers need not wait for it */
	if (r == 0)
		r = sync_dir(f, "cur", err, errlen);
	return r;
}

int maildir_msg_expunge(struct maildir_folder *f, uint32_t uid, char *err, size_t errlen)
{
	char path[PATH_BUF];
	struct dotlock *lk;
	long i = msg_index(f, uid);
	int r, unlinked = 0, in_new = 0;

	if (i < 0) {
		snprintf(err, errlen, "%s: no message with UID %u", f->path, uid);
		return EX_NOINPUT;
	}
	if ((r = lock_folder(f, &lk, err, errlen)) != 0)
		return r;
	r = msg_locate(f, &f->msgs[i], err, errlen);
	if (r == 0) {
		in_new = f->msgs[i].in_new;
		snprintf(path, sizeof(path), "%s/%s/%s", f->path, in_new ? "new" : "cur",
			 f->msgs[i].fname);
		if (unlink(path) < 0 && errno != ENOENT) {
			int e = errno;

			snprintf(err, errlen, "unlink %s: %s", path, strerror(e));
			r = fsutil_errno_code(e);
		} else {
			unlinked = 1;
		}
	} else if (r == EX_NOINPUT) {
		r = 0;		/* already gone: the same result */
	}
	dotlock_release(lk);
	if (unlinked)
		r = sync_dir(f, in_new ? "new" : "cur", err, errlen);
	if (r == 0) {
		maildir_msg_set_name(f, &f->msgs[i], NULL);
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

/*
 * The modseq store of one folder; see modseq.h for the design.
 */
#include "modseq.h"

#include "bigmem.h"
#include "crc32.h"
#include "fsutil.h"
#include "log.h"
#include "maildir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define HDR_SIZE 64
#define REC_SIZE 24
#define MAGIC "MKMODSQ\1"
#define VERSION 1
#define REC_SET 1
#define REC_EXPUNGE 2
#define DEAD 0x80000000u	/* entry flag: expunged, squeezed out after a batch */
#define MAX_FILE ((size_t)1 << 31)

struct rec {
	uint64_t modseq;
	uint32_t uid;
	uint32_t keywords;
	uint16_t flags;
	uint8_t type;
	uint8_t zero;
	uint32_t crc;
};
_Static_assert(sizeof(struct rec) == REC_SIZE, "record layout");

struct hdr {
	char magic[8];
	uint32_t version;
	uint32_t uidvalidity;
	uint64_t highest;
	uint64_t vanished_floor;
	uint32_t rec_size;
	unsigned char pad[20];
	uint32_t crc;
};
_Static_assert(sizeof(struct hdr) == HDR_SIZE, "header layout");

struct gone {
	uint32_t uid;
	uint64_t modseq;
};

struct modseq_store {
	char *dir;
	int lock_fd;
	int locked;
	int fd;			/* the log, or -1 before the first load */
	dev_t dev;
	ino_t ino;
	off_t off;		/* bytes of the log applied */
	uint32_t uidvalidity;
	uint64_t highest, vanished_floor;
	size_t nrecs;		/* records in the log */
	struct modseq_entry *live;
	size_t nlive, caplive;
	int has_dead;
	struct gone *gone;	/* ascending by modseq */
	size_t ngone, capgone;
	struct rec *pend;	/* staged records */
	size_t npend, cappend;
};

uint64_t modseq_time_base(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint32_t rec_crc(const struct rec *r)
{
	return crc32_short(0x6d6b6d73u, r, offsetof(struct rec, crc));
}

static uint32_t hdr_crc(const struct hdr *h)
{
	return crc32_short(0x6d6b6d73u, h, offsetof(struct hdr, crc));
}

static void path_of(const struct modseq_store *st, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", st->dir, name);
}

int modseq_open(const char *dir, struct modseq_store **out, char *err, size_t errlen)
{
	struct modseq_store *st = calloc(1, sizeof(*st));
	char path[4200];

	*out = NULL;
	if (st == NULL || (st->dir = strdup(dir)) == NULL) {
		free(st);
		snprintf(err, errlen, "out of memory");
		return EX_OSERR;
	}
	st->fd = -1;
	path_of(st, MODSEQ_LOCK_FILE, path, sizeof(path));
	st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (st->lock_fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		modseq_free(st);
		return fsutil_errno_code(e);
	}
	*out = st;
	return 0;
}

void modseq_free(struct modseq_store *st)
{
	if (st == NULL)
		return;
	if (st->fd >= 0)
		close(st->fd);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	bigmem_free(st->live);
	bigmem_free(st->gone);
	bigmem_free(st->pend);
	free(st->dir);
	free(st);
}

/* ---- in-memory state -------------------------------------------------- */

static void state_reset(struct modseq_store *st)
{
	st->nlive = 0;
	st->ngone = 0;
	st->nrecs = 0;
	st->has_dead = 0;
	st->highest = 0;
	st->vanished_floor = 0;
}

static long live_index(const struct modseq_store *st, uint32_t uid)
{
	size_t lo = 0, hi = st->nlive;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (st->live[mid].uid == uid)
			return (long)mid;
		if (st->live[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(long)lo - 1;
}

/* Grows a table (live, gone, pend) to NEED entries; large ones are bigmem. */
static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t c = *cap ? *cap : 64;
	void *n;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	n = bigmem_realloc(*p, c * size);
	if (n == NULL)
		return -1;
	*p = n;
	*cap = c;
	return 0;
}

/* Applies one valid record; -1 on ENOMEM. */
static int apply(struct modseq_store *st, const struct rec *r)
{
	/* records mostly come in UID order: appending needs no search */
	long i = st->nlive == 0 || st->live[st->nlive - 1].uid < r->uid ?
		 -(long)st->nlive - 1 : live_index(st, r->uid);

	if (r->modseq > st->highest)
		st->highest = r->modseq;
	if (r->type == REC_SET) {
		struct modseq_entry *e;
		if (i < 0) {
			size_t at = (size_t)(-i - 1);
			if (grow((void **)&st->live, &st->caplive, st->nlive + 1, sizeof(*st->live)))
				return -1;
			memmove(&st->live[at + 1], &st->live[at], (st->nlive - at) * sizeof(*st->live));
			st->nlive++;
			i = (long)at;
		}
		e = &st->live[i];
		e->uid = r->uid;
		e->flags = r->flags;
		e->keywords = r->keywords;
		e->modseq = r->modseq;
		return 0;
	}
	if (i >= 0) {
		st->live[i].flags |= DEAD;
		st->has_dead = 1;
	}
	if (grow((void **)&st->gone, &st->capgone, st->ngone + 1, sizeof(*st->gone)))
		return -1;
	st->gone[st->ngone].uid = r->uid;
	st->gone[st->ngone].modseq = r->modseq;
	st->ngone++;
	return 0;
}

/* Squeezes out the entries marked DEAD by expunges, in one pass. */
static void squeeze(struct modseq_store *st)
{
	size_t i, o;

	if (!st->has_dead)
		return;
	for (i = 0, o = 0; i < st->nlive; i++)
		if (!(st->live[i].flags & DEAD))
			st->live[o++] = st->live[i];
	st->nlive = o;
	st->has_dead = 0;
}

/* ---- file I/O --------------------------------------------------------- */

static int io_err(char *err, size_t errlen, const char *what, const char *path)
{
	int e = errno;

	snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
	return fsutil_errno_code(e);
}

/*
 * Writes a fresh log holding the current state (entries, the last
 * MODSEQ_VANISHED_KEEP expunges) and renames it into place; reopens st->fd.
 */
static int write_compact(struct modseq_store *st, char *err, size_t errlen)
{
	char path[4200], tmp[4200];
	struct hdr h;
	struct rec *buf;
	size_t keep_from = 0, n = 0, i;
	uint64_t floor = st->vanished_floor;
	struct stat sb;
	int rc;

	squeeze(st);
	if (st->ngone > MODSEQ_VANISHED_KEEP) {
		keep_from = st->ngone - MODSEQ_VANISHED_KEEP;
		for (i = 0; i < keep_from; i++)
			if (st->gone[i].modseq > floor)
				floor = st->gone[i].modseq;
	}
	buf = malloc(HDR_SIZE + (st->nlive + st->ngone - keep_from + 1) * REC_SIZE);
	if (buf == NULL) {
		snprintf(err, errlen, "out of memory");
		return EX_OSERR;
	}
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, MAGIC, 8);
	h.version = VERSION;
	h.uidvalidity = st->uidvalidity;
	h.highest = st->highest;
	h.vanished_floor = floor;
	h.rec_size = REC_SIZE;
	h.crc = hdr_crc(&h);
	memcpy(buf, &h, HDR_SIZE);
	{
		struct rec *r = (struct rec *)((char *)buf + HDR_SIZE);
		for (i = 0; i < st->nlive; i++, n++) {
			memset(&r[n], 0, sizeof(r[n]));
			r[n].modseq = st->live[i].modseq;
			r[n].uid = st->live[i].uid;
			r[n].keywords = st->live[i].keywords;
			r[n].flags = (uint16_t)st->live[i].flags;
			r[n].type = REC_SET;
			r[n].crc = rec_crc(&r[n]);
		}
		for (i = keep_from; i < st->ngone; i++, n++) {
			memset(&r[n], 0, sizeof(r[n]));
			r[n].modseq = st->gone[i].modseq;
			r[n].uid = st->gone[i].uid;
			r[n].type = REC_EXPUNGE;
			r[n].crc = rec_crc(&r[n]);
		}
	}
	path_of(st, MODSEQ_FILE, path, sizeof(path));
	path_of(st, MODSEQ_TMP_FILE, tmp, sizeof(tmp));
	rc = fsutil_write_atomic(path, tmp, buf, HDR_SIZE + n * REC_SIZE, 0600, err, errlen);
	free(buf);
	if (rc != 0)
		return rc;
	if (keep_from > 0) {
		memmove(st->gone, st->gone + keep_from, (st->ngone - keep_from) * sizeof(*st->gone));
		st->ngone -= keep_from;
	}
	st->vanished_floor = floor;
	st->nrecs = n;
	if (st->fd >= 0)
		close(st->fd);
	st->fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
	if (st->fd < 0 || fstat(st->fd, &sb) != 0)
		return io_err(err, errlen, "open", path);
	st->dev = sb.st_dev;
	st->ino = sb.st_ino;
	st->off = sb.st_size;
	return 0;
}

/* Starts over above everything that may have been handed out (see modseq.h). */
static int rebuild(struct modseq_store *st, uint32_t uidvalidity, uint64_t salvaged,
		   const char *why, char *err, size_t errlen)
{
	uint64_t base = modseq_time_base();

	if (salvaged < st->highest)
		salvaged = st->highest;
	if (base <= salvaged)
		base = salvaged + 1;
	if (strcmp(why, "missing") == 0)
		log_info("modseq_new", "dir=%s highest=%llu", log_q(st->dir), (unsigned long long)base);
	else
		log_warn("modseq_rebuild", "dir=%s reason=%s highest=%llu", log_q(st->dir),
			 log_q(why), (unsigned long long)base);
	state_reset(st);
	st->uidvalidity = uidvalidity;
	st->highest = base;
	st->vanished_floor = base;
	return write_compact(st, err, errlen);
}

/*
 * Reads records from st->off to the end of the log and applies them.
 * Returns 0, 1 when the log is corrupt (a bad record before the last one),
 * or a sysexits code.  Without the lock (PEEK) a bad record may be one a
 * writer is appending right now: it stops there, truncates nothing, and
 * returns 1 so that the caller takes the lock; the records before it are
 * applied (a prefix of the log is a state that existed).
 */
static int read_tail(struct modseq_store *st, int peek, char *err, size_t errlen)
{
	enum { CHUNK = 2048 };	/* records per read: no big buffer to map and unmap */
	char path[4200];
	struct stat sb;
	size_t total, done = 0;
	struct rec *buf;
	int torn = 0;

	path_of(st, MODSEQ_FILE, path, sizeof(path));
	if (fstat(st->fd, &sb) != 0)
		return io_err(err, errlen, "stat", path);
	if (sb.st_size <= st->off)
		return 0;
	if ((size_t)sb.st_size > MAX_FILE)
		return 1;
	total = (size_t)(sb.st_size - st->off) / REC_SIZE;
	buf = malloc(CHUNK * REC_SIZE);
	/* a first load is mostly one SET per message: size the table once */
	if (buf == NULL || grow((void **)&st->live, &st->caplive, st->nlive + total,
					sizeof(*st->live)) != 0) {
		free(buf);
		snprintf(err, errlen, "out of memory");
		return EX_OSERR;
	}
	while (done < total) {
		size_t want = total - done < CHUNK ? total - done : CHUNK, n, i;
		ssize_t got = pread(st->fd, buf, want * REC_SIZE, st->off + (off_t)(done * REC_SIZE));

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			free(buf);
			return io_err(err, errlen, "read", path);
		}
		n = (size_t)got / REC_SIZE;
		for (i = 0; i < n; i++) {
			const struct rec *r = &buf[i];
			int bad = r->crc != rec_crc(r) ||
				  (r->type != REC_SET && r->type != REC_EXPUNGE) ||
				  r->uid == 0 || r->modseq == 0;
			if (bad) {
				if (!peek && done + i + 1 < total) {
					free(buf);
					return 1;
				}
				torn = 1;
				break;	/* a torn last record: never reported, dropped below */
			}
			if (apply(st, r) != 0) {
				free(buf);
				snprintf(err, errlen, "out of memory");
				return EX_OSERR;
			}
			st->nrecs++;
		}
		done += i;
		if (i < want)
			break;	/* short read or torn record: the end */
	}
	free(buf);
	squeeze(st);
	st->off += (off_t)(done * REC_SIZE);
	if (peek)
		return torn;
	if (st->off != sb.st_size && ftruncate(st->fd, st->off) != 0)
		return io_err(err, errlen, "truncate", path);
	return 0;
}

/*
 * Opens and reads the whole log.  0, 1 (corrupt: *salvaged set), 2 (missing), or a code.
 * PEEK: without the lock (see read_tail).
 */
static int load(struct modseq_store *st, int peek, uint64_t *salvaged, uint32_t *uidvalidity,
		char *err, size_t errlen)
{
	char path[4200];
	struct hdr h;
	struct stat sb;
	ssize_t got;

	path_of(st, MODSEQ_FILE, path, sizeof(path));
	if (st->fd >= 0)
		close(st->fd);
	state_reset(st);
	st->fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
	if (st->fd < 0) {
		if (errno == ENOENT)
			return 2;
		return io_err(err, errlen, "open", path);
	}
	if (fstat(st->fd, &sb) != 0)
		return io_err(err, errlen, "stat", path);
	st->dev = sb.st_dev;
	st->ino = sb.st_ino;
	got = pread(st->fd, &h, sizeof(h), 0);
	if (got < 0)
		return io_err(err, errlen, "read", path);
	if (got != HDR_SIZE || memcmp(h.magic, MAGIC, 8) != 0 || h.crc != hdr_crc(&h) ||
	    h.version != VERSION || h.rec_size != REC_SIZE)
		return 1;
	*salvaged = h.highest;
	*uidvalidity = h.uidvalidity;
	st->uidvalidity = h.uidvalidity;
	st->highest = h.highest;
	st->vanished_floor = h.vanished_floor;
	st->off = HDR_SIZE;
	return read_tail(st, peek, err, errlen);
}

int modseq_changed(const struct modseq_store *st)
{
	char path[4200];
	struct stat sb;

	if (st->fd < 0)
		return 1;
	path_of(st, MODSEQ_FILE, path, sizeof(path));
	if (stat(path, &sb) != 0)
		return 1;
	return sb.st_ino != st->ino || sb.st_dev != st->dev || sb.st_size != st->off;
}

int modseq_lock(struct modseq_store *st, uint32_t uidvalidity, char *err, size_t errlen)
{
	char path[4200];
	struct stat sb;
	int rc, reload;
	uint64_t salvaged = 0;
	uint32_t file_uv = 0;

	while (flock(st->lock_fd, LOCK_EX) != 0)
		if (errno != EINTR)
			return io_err(err, errlen, "flock", st->dir);
	st->locked = 1;
	st->npend = 0;
	path_of(st, MODSEQ_FILE, path, sizeof(path));
	reload = st->fd < 0 || stat(path, &sb) != 0 || sb.st_ino != st->ino || sb.st_dev != st->dev;
	if (reload) {
		rc = load(st, 0, &salvaged, &file_uv, err, errlen);
		if (rc == 0 && file_uv != uidvalidity)
			rc = rebuild(st, uidvalidity, salvaged, "uidvalidity changed", err, errlen);
		else if (rc == 1)
			rc = rebuild(st, uidvalidity, salvaged, "corrupt", err, errlen);
		else if (rc == 2)
			rc = rebuild(st, uidvalidity, 0, "missing", err, errlen);
	} else {
		rc = read_tail(st, 0, err, errlen);
		if (rc == 1)
			rc = rebuild(st, uidvalidity, st->highest, "corrupt", err, errlen);
		else if (rc == 0 && st->uidvalidity != uidvalidity)
			rc = rebuild(st, uidvalidity, st->highest, "uidvalidity changed", err, errlen);
	}
	if (rc != 0) {
		/* forget what we half-read: the next lock starts from the file */
		if (st->fd >= 0)
			close(st->fd);
		st->fd = -1;
		modseq_unlock(st);
	}
	return rc;
}

int modseq_peek(struct modseq_store *st, uint32_t uidvalidity, char *err, size_t errlen)
{
	char path[4200];
	struct stat sb;
	uint64_t salvaged = 0;
	uint32_t file_uv = 0;
	int rc;

	if (st->locked)
		return 1;
	path_of(st, MODSEQ_FILE, path, sizeof(path));
	if (stat(path, &sb) != 0)
		return 1;	/* missing (or unreadable): a writer creates it */
	if (st->fd >= 0 && sb.st_ino == st->ino && sb.st_dev == st->dev && sb.st_size >= st->off) {
		if (sb.st_size == st->off)
			return st->uidvalidity == uidvalidity ? 0 : 1;
		rc = read_tail(st, 1, err, errlen);
	} else {
		/* first look, or replaced by a compaction: read it all */
		rc = load(st, 1, &salvaged, &file_uv, err, errlen);
		if (rc != 0) {
			/* missing, bad or torn: the lock reads (or rebuilds) it afresh */
			if (st->fd >= 0)
				close(st->fd);
			st->fd = -1;
			return rc == 2 ? 1 : rc;
		}
	}
	if (rc == 0 && st->uidvalidity != uidvalidity)
		rc = 1;
	if (rc != 0 && rc != 1) {
		if (st->fd >= 0)
			close(st->fd);
		st->fd = -1;
	}
	return rc;
}

int modseq_same_folder(const struct modseq_store *st)
{
	char path[4200];
	struct stat a, b;

	path_of(st, MODSEQ_LOCK_FILE, path, sizeof(path));
	return stat(path, &a) == 0 && fstat(st->lock_fd, &b) == 0 && a.st_ino == b.st_ino &&
	       a.st_dev == b.st_dev;
}

int modseq_matches(const struct modseq_store *st, const struct maildir_msg *msgs, size_t n)
{
	size_t i;

	if (st->nlive != n)
		return 0;
	for (i = 0; i < n; i++)
		if (st->live[i].uid != msgs[i].uid || st->live[i].flags != msgs[i].flags ||
		    st->live[i].keywords != msgs[i].keywords)
			return 0;
	return 1;
}

void modseq_unlock(struct modseq_store *st)
{
	if (st == NULL || !st->locked)
		return;
	st->npend = 0;
	flock(st->lock_fd, LOCK_UN);
	st->locked = 0;
}

/* ---- changes ---------------------------------------------------------- */

static int stage(struct modseq_store *st, uint8_t type, uint32_t uid, uint32_t flags,
		 uint32_t keywords)
{
	struct rec *r;

	if (grow((void **)&st->pend, &st->cappend, st->npend + 1, sizeof(*st->pend)))
		return -1;
	r = &st->pend[st->npend++];
	memset(r, 0, sizeof(*r));
	r->type = type;
	r->uid = uid;
	r->flags = (uint16_t)flags;
	r->keywords = keywords;
	return 0;
}

int modseq_stage_set(struct modseq_store *st, uint32_t uid, uint32_t flags, uint32_t keywords)
{
	return stage(st, REC_SET, uid, flags, keywords);
}

int modseq_stage_expunge(struct modseq_store *st, uint32_t uid)
{
	return stage(st, REC_EXPUNGE, uid, 0, 0);
}

int modseq_commit(struct modseq_store *st, uint64_t *modseq, char *err, size_t errlen)
{
	char path[4200];
	uint64_t next;
	size_t i;

	if (st->npend == 0)
		return 0;
	path_of(st, MODSEQ_FILE, path, sizeof(path));
	if (!st->locked || st->fd < 0) {
		st->npend = 0;
		snprintf(err, errlen, "%s: modseq store not locked", path);
		return EX_SOFTWARE;
	}
	/*
	 * Time-based: a modseq is at least the current time in microseconds.
	 * So the append needs no fdatasync: if a crash loses records that were
	 * handed out, the changes they described are found again by the next
	 * sync and get modseqs from a later clock reading, above every value
	 * reported before the crash (as long as the clock does not step back).
	 */
	next = st->highest + 1;
	if (modseq_time_base() > next)
		next = modseq_time_base();
	for (i = 0; i < st->npend; i++) {
		st->pend[i].modseq = next;
		st->pend[i].crc = rec_crc(&st->pend[i]);
	}
	if (fsutil_write_all(st->fd, st->pend, st->npend * REC_SIZE) != 0) {
		int rc = io_err(err, errlen, "append", path);
		/* drop what may have been partly written so the log stays clean */
		if (ftruncate(st->fd, st->off) != 0)
			log_warn("modseq", "file=%s error=%s", log_q(path), log_q(strerror(errno)));
		st->npend = 0;
		return rc;
	}
	for (i = 0; i < st->npend; i++)
		if (apply(st, &st->pend[i]) != 0) {
			st->npend = 0;
			/* the file is right; make the next lock reload it */
			close(st->fd);
			st->fd = -1;
			snprintf(err, errlen, "out of memory");
			return EX_OSERR;
		}
	squeeze(st);
	st->off += (off_t)(st->npend * REC_SIZE);
	st->nrecs += st->npend;
	st->npend = 0;
	if (modseq != NULL)
		*modseq = next;
	/*
	 * Expunges beyond the remembered ones do not count toward the state: a
	 * folder with steady churn (append one, expunge one) would otherwise
	 * raise the bar by as much as it grows the log, and never compact.
	 */
	if (st->nrecs > 2 * (st->nlive + (st->ngone < MODSEQ_VANISHED_KEEP ? st->ngone :
					   MODSEQ_VANISHED_KEEP)) + MODSEQ_COMPACT_SLACK) {
		int rc = write_compact(st, err, errlen);
		if (rc != 0) {
			/* the change itself is durable; compaction is retried next time */
			log_warn("modseq_compact", "dir=%s error=%s", log_q(st->dir), log_q(err));
		}
	}
	return 0;
}

int modseq_sync(struct modseq_store *st, const struct maildir_msg *msgs, size_t n,
		uint32_t next_uid, char *err, size_t errlen)
{
	size_t i = 0, j = 0;

	st->npend = 0;
	while (i < st->nlive || j < n) {
		const struct modseq_entry *e = i < st->nlive ? &st->live[i] : NULL;
		const struct maildir_msg *m = j < n ? &msgs[j] : NULL;
		int r = 0;
		if (e != NULL && (m == NULL || e->uid < m->uid)) {
			if (e->uid < next_uid)
				r = modseq_stage_expunge(st, e->uid);
			i++;
		} else if (e == NULL || m->uid < e->uid) {
			r = modseq_stage_set(st, m->uid, m->flags, m->keywords);
			j++;
		} else {
			if (e->flags != m->flags || e->keywords != m->keywords)
				r = modseq_stage_set(st, m->uid, m->flags, m->keywords);
			i++;
			j++;
		}
		if (r != 0) {
			st->npend = 0;
			snprintf(err, errlen, "out of memory");
			return EX_OSERR;
		}
	}
	return modseq_commit(st, NULL, err, errlen);
}

uint64_t modseq_highest(const struct modseq_store *st)
{
	return st->highest;
}

const struct modseq_entry *modseq_entries(const struct modseq_store *st, size_t *n)
{
	*n = st->nlive;
	return st->live;
}

const struct modseq_entry *modseq_find(const struct modseq_store *st, uint32_t uid)
{
	long i = live_index(st, uid);

	return i >= 0 ? &st->live[i] : NULL;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int modseq_vanished_since(const struct modseq_store *st, uint64_t since, uint32_t **uids,
			  size_t *n)
{
	size_t lo = 0, hi = st->ngone, k = 0;

	*uids = NULL;
	*n = 0;
	/* gone[] is ascending by modseq: find the first above SINCE */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (st->gone[mid].modseq <= since)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < st->ngone) {
		*uids = malloc((st->ngone - lo) * sizeof(**uids));
		if (*uids == NULL)
			return -1;
		for (size_t i = lo; i < st->ngone; i++)
			(*uids)[k++] = st->gone[i].uid;
		qsort(*uids, k, sizeof(**uids), u32_cmp);
		/* a UID expunged twice (restored from a backup) appears once */
		size_t o = 0;
		for (size_t i = 0; i < k; i++)
			if (o == 0 || (*uids)[o - 1] != (*uids)[i])
				(*uids)[o++] = (*uids)[i];
		k = o;
	}
	*n = k;
	return since < st->vanished_floor ? 0 : 1;
}

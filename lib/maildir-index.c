/* The persistent index of a Maildir folder (see maildir-index.h). */
#include "maildir-index.h"

#include "bigmem.h"
#include "fsutil.h"
#include "log.h"
#include "uidlist.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_BUF 4096

static const char index_magic[8] = { 'M', 'K', 'I', 'N', 'D', 'E', 'X', '4' };

/* Header offsets. */
enum {
	H_MAGIC = 0, H_SUM = 8, H_HDRLEN = 12, H_UIDVALIDITY = 16, H_NEXTUID = 20,
	H_NMSGS = 24, H_NAMESLEN = 28, H_PATHLEN = 32, H_SCAN = 40, H_STAMPS = 48,
	STAMP_LEN = 56,
};

static char *index_dir;		/* maildir_set_index_dir(); NULL: in the folder */
static int index_off;		/* maildir_set_index_enabled(0) */

void maildir_set_index_dir(const char *dir)
{
	free(index_dir);
	index_dir = dir != NULL && dir[0] != '\0' ? strdup(dir) : NULL;
}

void maildir_set_index_enabled(int on)
{
	index_off = !on;
}

/* ---- encoding ----------------------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put_stamp(unsigned char *p, const struct maildir_stamp *st)
{
	put64(p, st->dev);
	put64(p + 8, st->ino);
	put64(p + 16, st->size);
	put64(p + 24, (uint64_t)st->mtime_sec);
	put64(p + 32, (uint64_t)st->mtime_nsec);
	put64(p + 40, (uint64_t)st->ctime_sec);
	put64(p + 48, (uint64_t)st->ctime_nsec);
}

static void get_stamp(const unsigned char *p, struct maildir_stamp *st)
{
	st->dev = get64(p);
	st->ino = get64(p + 8);
	st->size = get64(p + 16);
	st->mtime_sec = (int64_t)get64(p + 24);
	st->mtime_nsec = (int64_t)get64(p + 32);
	st->ctime_sec = (int64_t)get64(p + 40);
	st->ctime_nsec = (int64_t)get64(p + 48);
}

struct sum {
	uint64_t a[4], b[4];
};

/*
 * Fletcher-style over 32-bit words into 64-bit sums, in four interleaved
 * lanes (word i goes to lane i % 4) so that the loop has no chain of
 * dependent additions: a lane's `a` never wraps for an index (under 2^31
 * words), so any changed word changes its lane's sums.
 */
static void sum_more(struct sum *c, const unsigned char *p, size_t len)
{
	uint64_t a0 = c->a[0], a1 = c->a[1], a2 = c->a[2], a3 = c->a[3];
	uint64_t b0 = c->b[0], b1 = c->b[1], b2 = c->b[2], b3 = c->b[3];
	uint32_t w[4];

	for (; len >= 16; p += 16, len -= 16) {
		memcpy(w, p, 16);
		a0 += w[0];
		b0 += a0;
		a1 += w[1];
		b1 += a1;
		a2 += w[2];
		b2 += a2;
		a3 += w[3];
		b3 += a3;
	}
	for (; len >= 4; p += 4, len -= 4) {
		memcpy(w, p, 4);
		a0 += w[0];
		b0 += a0;
	}
	if (len > 0) {
		w[0] = 0;
		memcpy(w, p, len);
		a0 += (uint64_t)w[0] + ((uint64_t)len << 32);
		b0 += a0;
	}
	c->a[0] = a0, c->a[1] = a1, c->a[2] = a2, c->a[3] = a3;
	c->b[0] = b0, c->b[1] = b1, c->b[2] = b2, c->b[3] = b3;
}

/* splitmix64's finaliser: bijective, so every changed input changes it */
static uint64_t mix64(uint64_t h)
{
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return h;
}

/*
 * Checksum of everything after the checksum field: with the exact length
 * it catches torn and zero-filled files.  (Adler-32 here cost a tenth of a
 * 100k-message SELECT; one Fletcher lane still a third of what is left.)
 */
static uint32_t index_sum(const unsigned char *head, size_t headlen, const char *names,
			  size_t names_len)
{
	struct sum c = { { 1, 1, 1, 1 }, { 0, 0, 0, 0 } };
	uint64_t h = 0;

	sum_more(&c, head + H_HDRLEN, headlen - H_HDRLEN);
	sum_more(&c, (const unsigned char *)names, names_len);
	for (int i = 0; i < 4; i++)
		h = mix64(h ^ c.a[i]) ^ mix64(c.b[i] + (uint64_t)i);
	return (uint32_t)(h ^ h >> 32);
}

static int parse_hdr(const unsigned char *p, size_t len, struct maildir_index_hdr *h)
{
	if (len < MAILDIR_INDEX_HDR_LEN || memcmp(p + H_MAGIC, index_magic, 8) != 0 ||
	    get32(p + H_HDRLEN) != MAILDIR_INDEX_HDR_LEN)
		return -1;
	h->uidvalidity = get32(p + H_UIDVALIDITY);
	h->next_uid = get32(p + H_NEXTUID);
	h->nmsgs = get32(p + H_NMSGS);
	h->names_len = get32(p + H_NAMESLEN);
	h->path_len = get32(p + H_PATHLEN);
	h->scan_started = (int64_t)get64(p + H_SCAN);
	get_stamp(p + H_STAMPS, &h->new_st);
	get_stamp(p + H_STAMPS + STAMP_LEN, &h->cur_st);
	get_stamp(p + H_STAMPS + 2 * STAMP_LEN, &h->ul_st);
	if (h->uidvalidity == 0 || h->next_uid == 0 || h->nmsgs > MAILDIR_INDEX_MAX_MSGS ||
	    h->path_len > MAILDIR_INDEX_MAX_PATH)
		return -1;
	return 0;
}

size_t maildir_index_head_len(const struct maildir_index_hdr *h)
{
	return MAILDIR_INDEX_HDR_LEN + (size_t)h->path_len + (size_t)h->nmsgs * MAILDIR_INDEX_REC_LEN;
}

int maildir_index_seal(void *buf, size_t len)
{
	struct maildir_index_hdr h;
	size_t headlen;

	if (parse_hdr(buf, len, &h) < 0)
		return -1;
	headlen = maildir_index_head_len(&h);
	if (headlen > len)
		return -1;
	put32((unsigned char *)buf + H_SUM, index_sum(buf, headlen, (const char *)buf + headlen,
						      len - headlen));
	return 0;
}

static int parse_split(const void *head, size_t headlen, const char *names,
		       size_t names_len, struct maildir_index_view *v)
{
	const unsigned char *p = head;
	struct maildir_index_hdr *h = &v->hdr;
	uint32_t prev = 0;
	size_t i;

	memset(v, 0, sizeof(*v));
	if (parse_hdr(p, headlen, h) < 0 || headlen != maildir_index_head_len(h) ||
	    names_len != h->names_len || index_sum(p, headlen, names, names_len) != get32(p + H_SUM))
		return -1;
	v->path = (const char *)p + MAILDIR_INDEX_HDR_LEN;
	v->recs = p + MAILDIR_INDEX_HDR_LEN + h->path_len;
	v->names = names;
	for (i = 0; i < h->nmsgs; i++) {
		struct maildir_index_rec r;
		const char *n;

		maildir_index_get(v, i, &r);
		if (r.uid <= prev || r.uid >= h->next_uid || r.flags > 0x3f || r.in_new > 1 ||
		    r.size < -1 || r.name_len == 0 || r.name_len > MAILDIR_NAME_MAX ||
		    (uint64_t)r.name_off + r.name_len >= h->names_len)
			return -1;
		n = v->names + r.name_off;
		if (n[r.name_len] != '\0' || memchr(n, '\0', r.name_len) != NULL ||
		    memchr(n, '/', r.name_len) != NULL || n[0] == '.')
			return -1;
		prev = r.uid;
	}
	return 0;
}

int maildir_index_parse(const void *buf, size_t len, int hdr_only,
			struct maildir_index_view *v)
{
	size_t head;

	memset(v, 0, sizeof(*v));
	if (parse_hdr(buf, len, &v->hdr) < 0)
		return -1;
	if (hdr_only)
		return 0;
	head = maildir_index_head_len(&v->hdr);
	if (head > len)
		return -1;
	return parse_split(buf, head, (const char *)buf + head, len - head, v);
}

void maildir_index_get(const struct maildir_index_view *v, size_t i, struct maildir_index_rec *r)
{
	const unsigned char *p = v->recs + i * MAILDIR_INDEX_REC_LEN;

	r->uid = get32(p);
	r->keywords = get32(p + 4);
	r->name_off = get32(p + 8);
	r->name_len = (uint16_t)(p[12] | p[13] << 8);
	r->flags = p[14];
	r->in_new = p[15];
	r->size = (int64_t)get64(p + 16);
}

int maildir_index_format(const struct maildir_index_hdr *h, const char *path,
			 const struct maildir_msg *msgs, size_t n,
			 void **out, size_t *outlen)
{
	size_t plen = strlen(path), names = 0, i, len, off;
	unsigned char *buf, *rec;
	char *nm;

	*out = NULL;
	if (n > MAILDIR_INDEX_MAX_MSGS || plen > MAILDIR_INDEX_MAX_PATH)
		return -1;
	for (i = 0; i < n; i++) {
		size_t l = strlen(msgs[i].fname);

		if (l == 0 || l > MAILDIR_NAME_MAX)
			return -1;
		names += l + 1;
	}
	if (names > UINT32_MAX)
		return -1;
	len = MAILDIR_INDEX_HDR_LEN + plen + n * MAILDIR_INDEX_REC_LEN + names;
	buf = calloc(1, len);
	if (buf == NULL)
		return -1;
	memcpy(buf + H_MAGIC, index_magic, 8);
	put32(buf + H_HDRLEN, MAILDIR_INDEX_HDR_LEN);
	put32(buf + H_UIDVALIDITY, h->uidvalidity);
	put32(buf + H_NEXTUID, h->next_uid);
	put32(buf + H_NMSGS, (uint32_t)n);
	put32(buf + H_NAMESLEN, (uint32_t)names);
	put32(buf + H_PATHLEN, (uint32_t)plen);
	put64(buf + H_SCAN, (uint64_t)h->scan_started);
	put_stamp(buf + H_STAMPS, &h->new_st);
	put_stamp(buf + H_STAMPS + STAMP_LEN, &h->cur_st);
	put_stamp(buf + H_STAMPS + 2 * STAMP_LEN, &h->ul_st);
	memcpy(buf + MAILDIR_INDEX_HDR_LEN, path, plen);
	rec = buf + MAILDIR_INDEX_HDR_LEN + plen;
	nm = (char *)rec + n * MAILDIR_INDEX_REC_LEN;
	for (i = 0, off = 0; i < n; i++, rec += MAILDIR_INDEX_REC_LEN) {
		const struct maildir_msg *m = &msgs[i];
		size_t l = strlen(m->fname);

		put32(rec, m->uid);
		put32(rec + 4, m->keywords);
		put32(rec + 8, (uint32_t)off);
		rec[12] = (unsigned char)l;
		rec[13] = (unsigned char)(l >> 8);
		rec[14] = (unsigned char)m->flags;
		rec[15] = (unsigned char)m->in_new;
		put64(rec + 16, (uint64_t)(m->size < 0 ? -1 : m->size));
		memcpy(nm + off, m->fname, l + 1);
		off += l + 1;
	}
	(void)maildir_index_seal(buf, len);	/* its header was just written */
	*out = buf;
	*outlen = len;
	return 0;
}

/* ---- files -------------------------------------------------------------- */

void maildir_stamp_of(const char *folder, const char *name, struct maildir_stamp *st)
{
	char path[PATH_BUF];
	struct stat sb;

	memset(st, 0, sizeof(*st));
	snprintf(path, sizeof(path), "%s/%s", folder, name);
	if (stat(path, &sb) == 0) {
		st->dev = (uint64_t)sb.st_dev;
		st->ino = (uint64_t)sb.st_ino;
		st->size = (uint64_t)sb.st_size;
		st->mtime_sec = (int64_t)sb.st_mtim.tv_sec;
		st->mtime_nsec = (int64_t)sb.st_mtim.tv_nsec;
		st->ctime_sec = (int64_t)sb.st_ctim.tv_sec;
		st->ctime_nsec = (int64_t)sb.st_ctim.tv_nsec;
	}
}

static int stamp_eq(const struct maildir_stamp *a, const struct maildir_stamp *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/* FNV-1a, 64 bits: names the index of a folder in index_dir. */
static uint64_t path_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* The folder path the index records: absolute when in index_dir. */
static const char *key_path(const struct maildir_folder *f, char *buf)
{
	if (index_dir == NULL)
		return f->path;
	return realpath(f->path, buf) != NULL ? buf : f->path;
}

int maildir_index_path(const struct maildir_folder *f, char *out, size_t outlen)
{
	char abs[PATH_MAX];
	int w;

	if (index_dir == NULL)
		w = snprintf(out, outlen, "%s/" MAILDIR_INDEX_NAME, f->path);
	else
		w = snprintf(out, outlen, "%s/%016llx.index", index_dir,
			     (unsigned long long)path_hash(key_path(f, abs)));
	return w < 0 || (size_t)w >= outlen ? -1 : 0;
}

/* 1 if a scan started at T saw every change of a directory stamped ST. */
static int settled(int64_t t, const struct maildir_stamp *st)
{
	return t > st->mtime_sec + 1;
}

static int read_at(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

static int in_names(const struct maildir_folder *f, const char *p)
{
	return f->names != NULL && (uintptr_t)p >= (uintptr_t)f->names &&
	       (uintptr_t)p < (uintptr_t)f->names + f->names_len;
}

void maildir_msgs_free(struct maildir_folder *f)
{
	for (size_t i = 0; i < f->nmsgs; i++)
		if (!in_names(f, f->msgs[i].fname))
			free(f->msgs[i].fname);
	bigmem_free(f->msgs);
	if (f->map != NULL)
		munmap(f->map, f->map_len);
	else
		free(f->names);
	f->msgs = NULL;
	f->names = NULL;
	f->map = NULL;
	f->nmsgs = f->names_len = f->map_len = 0;
}

int maildir_msg_set_name(struct maildir_folder *f, struct maildir_msg *m, const char *name)
{
	char *n = NULL;

	if (name != NULL && (n = strdup(name)) == NULL)
		return -1;
	if (!in_names(f, m->fname))
		free(m->fname);
	m->fname = n;
	return 0;
}

/*
 * The file is mapped, not read: the names stay in the mapping (page cache,
 * no copy), as dovecot maps its dovecot.index.  Writers only ever replace
 * the file by rename, so the mapped pages never change under us.
 */
int maildir_index_load(struct maildir_folder *f)
{
	char path[PATH_BUF], abs[PATH_MAX];
	struct maildir_stamp sn, sc, su;
	struct maildir_index_view v;
	unsigned char hdr[MAILDIR_INDEX_HDR_LEN];
	struct maildir_msg *msgs = NULL;
	void *map = MAP_FAILED;
	const char *kp;
	struct stat sb;
	size_t i, len = 0, head, page;
	int fd, ok = -1;

	if (index_off || maildir_index_path(f, path, sizeof(path)) < 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size < MAILDIR_INDEX_HDR_LEN ||
	    (unsigned long long)sb.st_size > ((size_t)1 << 31) ||
	    read_at(fd, hdr, sizeof(hdr), 0) < 0 || maildir_index_parse(hdr, sizeof(hdr), 1, &v) < 0)
		goto out;
	maildir_stamp_of(f->path, "new", &sn);
	maildir_stamp_of(f->path, "cur", &sc);
	maildir_stamp_of(f->path, UIDLIST_NAME, &su);
	if (sc.ino == 0 || su.ino == 0 ||
	    !stamp_eq(&sn, &v.hdr.new_st) || !stamp_eq(&sc, &v.hdr.cur_st) ||
	    !stamp_eq(&su, &v.hdr.ul_st) || !settled(v.hdr.scan_started, &sn) ||
	    !settled(v.hdr.scan_started, &sc) || !settled(v.hdr.scan_started, &su))
		goto out;
	len = (size_t)sb.st_size;
	head = maildir_index_head_len(&v.hdr);
	if ((uint64_t)head + v.hdr.names_len != (uint64_t)len)
		goto out;
	map = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	if (map == MAP_FAILED)
		goto out;
	if (maildir_index_parse(map, len, 0, &v) < 0) {
		log_debug("maildir-index", "file=%s result=invalid", log_q(path));
		goto out;
	}
	kp = key_path(f, abs);
	if (v.hdr.path_len != strlen(kp) || memcmp(v.path, kp, v.hdr.path_len) != 0)
		goto out;	/* another folder's index (hash collision, moved folder) */
	msgs = bigmem_calloc(v.hdr.nmsgs ? v.hdr.nmsgs : 1, sizeof(*msgs));
	if (msgs == NULL)
		goto out;
	for (i = 0; i < v.hdr.nmsgs; i++) {
		struct maildir_index_rec r;

		maildir_index_get(&v, i, &r);
		msgs[i].uid = r.uid;
		msgs[i].keywords = r.keywords;
		msgs[i].fname = (char *)v.names + r.name_off;
		msgs[i].size = r.size;
		msgs[i].flags = r.flags;
		msgs[i].in_new = r.in_new;
	}
	/* the records are copied: let their pages go (the names stay) */
	page = (size_t)sysconf(_SC_PAGESIZE);
	if (head >= page)
		madvise(map, head / page * page, MADV_DONTNEED);
	maildir_msgs_free(f);
	f->msgs = msgs;
	f->nmsgs = v.hdr.nmsgs;
	f->map = map;
	f->map_len = len;
	f->names = (char *)v.names;
	f->names_len = v.hdr.names_len;
	f->uidvalidity = v.hdr.uidvalidity;
	f->next_uid = v.hdr.next_uid;
	f->seen_new = sn;
	f->seen_cur = sc;
	f->seen_ul = su;
	f->synced_at = (time_t)v.hdr.scan_started;
	f->stamped_ns = v.hdr.scan_started * 1000000000LL;
	msgs = NULL;
	map = MAP_FAILED;
	ok = 0;
out:
	close(fd);
	bigmem_free(msgs);
	if (map != MAP_FAILED)
		munmap(map, len);
	return ok;
}

int maildir_index_exists(const struct maildir_folder *f)
{
	char path[PATH_BUF + 8];
	struct stat sb;

	if (index_off || maildir_index_path(f, path, sizeof(path)) < 0)
		return 1;	/* nothing to write anyway */
	return stat(path, &sb) == 0;
}

void maildir_index_save(const struct maildir_folder *f)
{
	char path[PATH_BUF + 8], tmp[PATH_BUF + 40], abs[PATH_MAX], err[256];
	struct maildir_index_hdr h;
	void *buf;
	size_t len;
	int fd;

	if (index_off || maildir_index_path(f, path, sizeof(path)) < 0)
		return;
	if (index_dir != NULL && fsutil_mkdir(index_dir, 0700, err, sizeof(err)) != 0) {
		log_debug("maildir-index", "error=%s", log_q(err));
		return;
	}
	memset(&h, 0, sizeof(h));
	h.new_st = f->seen_new;
	h.cur_st = f->seen_cur;
	h.ul_st = f->seen_ul;
	h.scan_started = (int64_t)f->synced_at;
	h.uidvalidity = f->uidvalidity;
	h.next_uid = f->next_uid;
	if (maildir_index_format(&h, key_path(f, abs), f->msgs, f->nmsgs, &buf, &len) < 0)
		return;
	/* a temporary file per writer: readers of a folder write without a lock */
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		log_debug("maildir-index", "file=%s error=%s", log_q(tmp), log_q(strerror(errno)));
	} else {
		int bad = fsutil_write_all(fd, buf, len) < 0;

		if (close(fd) < 0)
			bad = 1;
		if (bad || rename(tmp, path) < 0) {
			log_debug("maildir-index", "file=%s error=%s", log_q(path),
				  log_q(strerror(errno)));
			unlink(tmp);
		}
	}
	free(buf);
}

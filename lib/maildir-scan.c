/* One scan of a Maildir folder (see maildir-scan.h). */
#include "maildir-scan.h"

#include "fsutil.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#define PATH_BUF 4096

void maildir_scan_free(struct maildir_scan *s)
{
	free(s->ents);
	free(s->pool);
	free(s->heads);
	memset(s, 0, sizeof(*s));
}

/* Appends NAME[0..len) and a NUL to the pool; its offset, or -1. */
static long pool_add(struct maildir_scan *s, const char *name, size_t len)
{
	size_t off = s->pool_len;

	if (s->pool_len + len + 1 > s->pool_cap) {
		size_t ncap = s->pool_cap ? s->pool_cap * 2 : 16384;
		char *np;

		while (ncap < s->pool_len + len + 1)
			ncap *= 2;
		if (ncap > UINT32_MAX || (np = realloc(s->pool, ncap)) == NULL)
			return -1;
		s->pool = np;
		s->pool_cap = ncap;
	}
	memcpy(s->pool + off, name, len);
	s->pool[off + len] = '\0';
	s->pool_len += len + 1;
	return (long)off;
}

/* Sets E's name (in the pool) and what it says. */
int maildir_scan_set_name(struct maildir_scan *s, struct maildir_scan_ent *e, const char *name,
			  size_t len, const struct maildir_name *mn)
{
	long off = pool_add(s, name, len);

	if (off < 0)
		return -1;
	e->name_off = (uint32_t)off;
	e->name_len = (uint16_t)len;
	e->base_len = (uint16_t)mn->base_len;
	e->flags = (uint8_t)mn->flags;
	e->keywords = mn->keywords;
	e->size = mn->size;
	return 0;
}

static int scan_dir(struct maildir_scan *s, const char *folder, int in_new,
		    char *err, size_t errlen)
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
		struct maildir_scan_ent *e;
		struct maildir_name mn;
		size_t len;

		if (de->d_name[0] == '.')
			continue;
		len = strlen(de->d_name);
		if (maildir_name_parse(de->d_name, len, &mn) < 0) {
			log_warn("maildir-skip", "dir=%s file=%s reason=invalid-name",
				 log_q(path), log_q(de->d_name));
			continue;
		}
		if (s->n == s->cap) {
			size_t ncap = s->cap ? s->cap * 2 : 256;
			struct maildir_scan_ent *ne;

			if (ncap >= UINT32_MAX || (ne = realloc(s->ents, ncap * sizeof(*ne))) == NULL)
				goto nomem;
			s->ents = ne;
			s->cap = ncap;
		}
		e = &s->ents[s->n];
		memset(e, 0, sizeof(*e));
		if (maildir_scan_set_name(s, e, de->d_name, len, &mn) < 0)
			goto nomem;
		e->in_new = in_new != 0;
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

int maildir_scan_name_cmp(const void *a, const void *b, void *pool)
{
	const struct maildir_scan_ent *x = *(struct maildir_scan_ent *const *)a;
	const struct maildir_scan_ent *y = *(struct maildir_scan_ent *const *)b;

	return strcmp((const char *)pool + x->name_off, (const char *)pool + y->name_off);
}

/* FNV-1a over a base name: buckets for matching records to files. */
static uint32_t base_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

static int scan_index(struct maildir_scan *s)
{
	size_t i, nh = 64;

	while (nh < s->n * 2)
		nh *= 2;
	free(s->heads);
	s->heads = calloc(nh, sizeof(*s->heads));
	if (s->heads == NULL)
		return -1;
	s->nheads = nh;
	/* backwards, so that chains list entries in scan order */
	for (i = s->n; i-- > 0; ) {
		struct maildir_scan_ent *e = &s->ents[i];
		uint32_t b = base_hash(MAILDIR_SCAN_NAME(s, e), e->base_len) & (uint32_t)(nh - 1);

		e->next = s->heads[b];
		s->heads[b] = (uint32_t)(i + 1);
	}
	return 0;
}

/* The first entry with FNAME's base that is unclaimed / got a fresh UID, or NULL. */
struct maildir_scan_ent *maildir_scan_find_base(struct maildir_scan *s, const char *fname,
						size_t blen, int which)
{
	uint32_t k;

	if (s->nheads == 0)
		return NULL;
	k = s->heads[base_hash(fname, blen) & (uint32_t)(s->nheads - 1)];
	while (k != 0) {
		struct maildir_scan_ent *e = &s->ents[k - 1];

		if ((which == MAILDIR_SCAN_FRESH ? e->fresh_uid : !e->matched) &&
		    base_cmp(fname, blen, MAILDIR_SCAN_NAME(s, e), e->base_len) == 0)
			return e;
		k = e->next;
	}
	return NULL;
}

/* An unclaimed entry with FNAME's base, or NULL. */
struct maildir_scan_ent *maildir_scan_find(struct maildir_scan *s, const char *fname)
{
	return maildir_scan_find_base(s, fname, strcspn(fname, ":"), MAILDIR_SCAN_UNCLAIMED);
}

int maildir_scan_all(struct maildir_scan *s, const char *folder, char *err, size_t errlen)
{
	int r;

	maildir_scan_free(s);
	if ((r = scan_dir(s, folder, 1, err, errlen)) != 0 ||
	    (r = scan_dir(s, folder, 0, err, errlen)) != 0)
		return r;
	if (scan_index(s) < 0) {
		snprintf(err, errlen, "%s: out of memory", folder);
		return EX_OSERR;
	}
	return 0;
}

/* Matches records to files; returns how many records have no file. */
size_t maildir_scan_match(struct maildir_scan *s, struct uidlist *ul,
			  struct maildir_scan_ent **rec_ent)
{
	size_t i, missing = 0;

	for (i = 0; i < s->n; i++)
		s->ents[i].matched = s->ents[i].fresh_uid = 0;
	for (i = 0; i < ul->nrecs; i++) {
		struct maildir_scan_ent *e = maildir_scan_find(s, ul->recs[i].fname);

		if (e != NULL) {
			e->matched = 1;
			rec_ent[i] = e;
		} else {
			rec_ent[i] = NULL;
			missing++;
		}
	}
	return missing;
}


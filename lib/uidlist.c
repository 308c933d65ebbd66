#include "uidlist.h"

#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sysexits.h>
#include <unistd.h>

struct uidlist *uidlist_new(uint32_t uidvalidity)
{
	struct uidlist *ul = calloc(1, sizeof(*ul));
	unsigned char g[16];
	size_t i;

	if (ul == NULL)
		return NULL;
	ul->version = 3;
	ul->uidvalidity = uidvalidity;
	ul->hdr_next_uid = ul->next_uid = 1;
	if (getrandom(g, sizeof(g), 0) == (ssize_t)sizeof(g)) {
		for (i = 0; i < sizeof(g); i++)
			sprintf(ul->guid + 2 * i, "%02x", g[i]);
	}
	return ul;
}

void uidlist_free(struct uidlist *ul)
{
	size_t i;

	if (ul == NULL)
		return;
	for (i = 0; i < ul->nrecs; i++) {
		uidlist_free_name(ul, ul->recs[i].ext);
		uidlist_free_name(ul, ul->recs[i].fname);
	}
	free(ul->recs);
	free(ul->pool);
	free(ul->hdr_extra);
	free(ul);
}

void uidlist_free_name(struct uidlist *ul, char *s)
{
	if (ul->pool != NULL && (uintptr_t)s >= (uintptr_t)ul->pool &&
	    (uintptr_t)s < (uintptr_t)ul->pool + ul->pool_len)
		return;
	free(s);
}

/* A copy of s[0..n) in the pool, which uidlist_parse() sized for all records. */
static char *pool_dup(struct uidlist *ul, size_t *used, const char *s, size_t n)
{
	char *p = ul->pool + *used;

	if (*used + n + 1 > ul->pool_len)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	*used += n + 1;
	return p;
}

static int grow(struct uidlist *ul)
{
	size_t ncap;
	struct uidlist_rec *n;

	if (ul->nrecs < ul->cap)
		return 0;
	ncap = ul->cap ? ul->cap * 2 : 64;
	n = realloc(ul->recs, ncap * sizeof(*n));
	if (n == NULL)
		return -1;
	ul->recs = n;
	ul->cap = ncap;
	return 0;
}

/* Parses a decimal uint32 of buf[0..len); -1 if not entirely digits or too big. */
static int parse_u32(const char *s, size_t len, uint32_t *out)
{
	unsigned long long v = 0;
	size_t i;

	if (len == 0 || len > 10)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static char *dupn(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

#define BAD(...) do { int o_ = snprintf(err, errlen, "line %zu: ", lineno); \
	if (o_ > 0 && (size_t)o_ < errlen) snprintf(err + o_, errlen - (size_t)o_, __VA_ARGS__); \
	goto fail; } while (0)

static int parse_header(struct uidlist *ul, const char *p, size_t len, size_t lineno,
			char *err, size_t errlen)
{
	size_t i = 0;
	char extra[UIDLIST_MAX_LINE + 1];
	size_t xo = 0;
	int have_v = 0;

	if (len >= 2 && p[0] == '1' && p[1] == ' ') {
		/* Courier / dovecot v1: "1 <uidvalidity> <nextuid>" */
		const char *sp = memchr(p + 2, ' ', len - 2);

		ul->version = 1;
		if (sp == NULL || parse_u32(p + 2, (size_t)(sp - p - 2), &ul->uidvalidity) < 0 ||
		    parse_u32(sp + 1, len - (size_t)(sp + 1 - p), &ul->hdr_next_uid) < 0)
			BAD("invalid version 1 header");
		if (ul->uidvalidity == 0)
			BAD("UIDVALIDITY is 0");
		return 0;
	}
	if (len < 1 || p[0] != '3' || (len > 1 && p[1] != ' '))
		BAD("unsupported uidlist version or garbage header");
	ul->version = 3;
	i = 1;
	while (i < len) {
		size_t start, flen;

		while (i < len && p[i] == ' ')
			i++;
		if (i >= len)
			break;
		start = i;
		while (i < len && p[i] != ' ')
			i++;
		flen = i - start;
		switch (p[start]) {
		case 'V':
			if (parse_u32(p + start + 1, flen - 1, &ul->uidvalidity) < 0)
				BAD("invalid UIDVALIDITY field");
			have_v = 1;
			break;
		case 'N':
			if (parse_u32(p + start + 1, flen - 1, &ul->hdr_next_uid) < 0)
				BAD("invalid next UID field");
			break;
		case 'G':
			if (flen - 1 != 32)
				BAD("invalid mailbox GUID field");
			for (size_t k = 1; k <= 32; k++)
				if (strchr("0123456789abcdefABCDEF", p[start + k]) == NULL ||
				    p[start + k] == '\0')
					BAD("invalid mailbox GUID field");
			memcpy(ul->guid, p + start + 1, 32);
			ul->guid[32] = '\0';
			break;
		default:
			if (p[start] < 'A' || p[start] > 'Z')
				BAD("invalid header field");
			memcpy(extra + xo, p + start, flen);
			xo += flen;
			extra[xo++] = ' ';
			break;
		}
	}
	if (!have_v || ul->uidvalidity == 0)
		BAD("header has no valid UIDVALIDITY");
	if (xo > 0) {
		ul->hdr_extra = dupn(extra, xo - 1);
		if (ul->hdr_extra == NULL)
			BAD("out of memory");
	}
	return 0;
fail:
	return EX_DATAERR;
}

static int parse_record(struct uidlist *ul, size_t *used, const char *p, size_t len,
			size_t lineno, char *err, size_t errlen)
{
	size_t i = 0, ext_start, ext_end;
	uint32_t uid;
	const char *fname;
	size_t flen;
	struct uidlist_rec *r;

	while (i < len && p[i] >= '0' && p[i] <= '9')
		i++;
	if (i == 0 || i == len || p[i] != ' ' || parse_u32(p, i, &uid) < 0)
		BAD("record does not start with a UID");
	if (uid == 0 || uid == UINT32_MAX)
		BAD("invalid UID %u", uid);
	if (ul->nrecs > 0 && uid <= ul->recs[ul->nrecs - 1].uid)
		BAD("UIDs not ascending (%u after %u)", uid, ul->recs[ul->nrecs - 1].uid);
	while (i < len && p[i] == ' ')
		i++;
	ext_start = ext_end = i;
	if (ul->version == 3) {
		/* extension fields "<X><value>" up to the ':' */
		while (i < len && p[i] != ':') {
			if (p[i] < 'A' || p[i] > 'Z')
				BAD("invalid extension field in record of UID %u", uid);
			while (i < len && p[i] != ' ')
				i++;
			ext_end = i;
			while (i < len && p[i] == ' ')
				i++;
		}
		if (i == len)
			BAD("record of UID %u has no ':<filename>'", uid);
		i++;
	}
	fname = p + i;
	flen = len - i;
	if (flen == 0)
		BAD("record of UID %u has an empty file name", uid);
	if (memchr(fname, '/', flen) != NULL)
		BAD("file name of UID %u contains '/'", uid);
	if (memchr(fname, ' ', flen) != NULL && ul->version == 1)
		BAD("file name of UID %u contains a space", uid);
	if (grow(ul) < 0)
		BAD("out of memory");
	r = &ul->recs[ul->nrecs];
	r->uid = uid;
	r->ext = ext_end > ext_start ? pool_dup(ul, used, p + ext_start, ext_end - ext_start) : NULL;
	r->fname = pool_dup(ul, used, fname, flen);
	if (r->fname == NULL || (ext_end > ext_start && r->ext == NULL))
		BAD("out of memory");
	ul->nrecs++;
	return 0;
fail:
	return EX_DATAERR;
}

int uidlist_parse(const char *buf, size_t len, const struct uidlist_limits *lim,
		  struct uidlist **out, char *err, size_t errlen)
{
	size_t max_line = lim && lim->max_line ? lim->max_line : UIDLIST_MAX_LINE;
	size_t max_recs = lim && lim->max_records ? lim->max_records : UIDLIST_MAX_RECORDS;
	size_t pos = 0, lineno = 0, used = 0;
	struct uidlist *ul;

	*out = NULL;
	if (max_line > UIDLIST_MAX_LINE)
		max_line = UIDLIST_MAX_LINE;
	ul = calloc(1, sizeof(*ul));
	if (ul == NULL) {
		snprintf(err, errlen, "out of memory");
		return EX_OSERR;
	}
	if (len == 0) {
		lineno = 1;
		BAD("empty file (truncated?)");
	}
	/* every record's strings with their NULs fit in the bytes of its line */
	ul->pool_len = len;
	ul->pool = malloc(len);
	if (ul->pool == NULL) {
		free(ul);
		snprintf(err, errlen, "out of memory");
		return EX_OSERR;
	}
	while (pos < len) {
		const char *line = buf + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t llen = nl ? (size_t)(nl - line) : len - pos;

		lineno++;
		if (llen > max_line)
			BAD("line longer than %zu bytes", max_line);
		if (nl == NULL)
			BAD("last line has no newline (truncated file?)");
		if (memchr(line, '\0', llen) != NULL)
			BAD("NUL byte");
		if (lineno == 1) {
			if (parse_header(ul, line, llen, lineno, err, errlen) != 0)
				goto fail_quiet;
		} else {
			if (ul->nrecs >= max_recs)
				BAD("more than %zu records", max_recs);
			if (parse_record(ul, &used, line, llen, lineno, err, errlen) != 0)
				goto fail_quiet;
		}
		pos += llen + 1;
	}
	ul->next_uid = ul->hdr_next_uid ? ul->hdr_next_uid : 1;
	if (ul->nrecs > 0 && ul->recs[ul->nrecs - 1].uid >= ul->next_uid)
		ul->next_uid = ul->recs[ul->nrecs - 1].uid + 1;
	*out = ul;
	return 0;
fail:
fail_quiet:
	uidlist_free(ul);
	return EX_DATAERR;
}

uint32_t uidlist_add(struct uidlist *ul, const char *fname, const char *ext)
{
	struct uidlist_rec *r;

	if (ul->next_uid == 0 || ul->next_uid == UINT32_MAX || grow(ul) < 0)
		return 0;
	r = &ul->recs[ul->nrecs];
	r->uid = ul->next_uid;
	r->fname = strdup(fname);
	r->ext = ext ? strdup(ext) : NULL;
	if (r->fname == NULL || (ext && r->ext == NULL)) {
		free(r->fname);
		free(r->ext);
		return 0;
	}
	ul->nrecs++;
	return ul->next_uid++;
}

long uidlist_find_uid(const struct uidlist *ul, uint32_t uid)
{
	size_t lo = 0, hi = ul->nrecs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ul->recs[mid].uid == uid)
			return (long)mid;
		if (ul->recs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

void uidlist_remove(struct uidlist *ul, size_t i)
{
	if (i >= ul->nrecs)
		return;
	uidlist_free_name(ul, ul->recs[i].ext);
	uidlist_free_name(ul, ul->recs[i].fname);
	memmove(&ul->recs[i], &ul->recs[i + 1], (ul->nrecs - i - 1) * sizeof(ul->recs[0]));
	ul->nrecs--;
}

int uidlist_format(const struct uidlist *ul, int with_header, size_t from,
		   char **out, size_t *len)
{
	size_t cap = 128, n = 0, i;
	char *buf;

	if (with_header && ul->hdr_extra)
		cap += strlen(ul->hdr_extra);
	for (i = from; i < ul->nrecs; i++)
		cap += 16 + strlen(ul->recs[i].fname) +
		       (ul->recs[i].ext ? strlen(ul->recs[i].ext) + 1 : 0);
	buf = malloc(cap);
	if (buf == NULL)
		return EX_OSERR;
	if (with_header) {
		n += (size_t)snprintf(buf + n, cap - n, "3 V%u N%u", ul->uidvalidity, ul->next_uid);
		if (ul->guid[0])
			n += (size_t)snprintf(buf + n, cap - n, " G%s", ul->guid);
		if (ul->hdr_extra)
			n += (size_t)snprintf(buf + n, cap - n, " %s", ul->hdr_extra);
		buf[n++] = '\n';
	}
	for (i = from; i < ul->nrecs; i++) {
		const struct uidlist_rec *r = &ul->recs[i];

		n += (size_t)snprintf(buf + n, cap - n, "%u %s%s:%s\n", r->uid,
				      r->ext ? r->ext : "", r->ext ? " " : "", r->fname);
	}
	*out = buf;
	*len = n;
	return 0;
}

int uidlist_read(const char *dir, struct uidlist **out, char *err, size_t errlen)
{
	char path[4096], perr[256];
	char *buf;
	size_t len;
	int r;

	*out = NULL;
	snprintf(path, sizeof(path), "%s/" UIDLIST_NAME, dir);
	r = fsutil_read_file(path, UIDLIST_MAX_SIZE, &buf, &len, err, errlen);
	if (r == EX_NOINPUT && errno == ENOENT)
		return 0;
	if (r != 0)
		return r;
	r = uidlist_parse(buf, len, NULL, out, perr, sizeof(perr));
	free(buf);
	if (r != 0)
		snprintf(err, errlen, "%s: %s", path, perr);
	return r;
}

int uidlist_write(const char *dir, const struct uidlist *ul, char *err, size_t errlen)
{
	char path[4096], tmp[4096];
	char *buf;
	size_t len;
	int r;

	snprintf(path, sizeof(path), "%s/" UIDLIST_NAME, dir);
	snprintf(tmp, sizeof(tmp), "%s/" UIDLIST_TMP_NAME, dir);
	if (uidlist_format(ul, 1, 0, &buf, &len) != 0) {
		snprintf(err, errlen, "%s: out of memory", path);
		return EX_OSERR;
	}
	r = fsutil_write_atomic(path, tmp, buf, len, 0600, err, errlen);
	free(buf);
	return r;
}

static int append_records(const char *dir, const struct uidlist *ul, size_t from, int sync,
			  int *fd_out, char *err, size_t errlen)
{
	char path[4096];
	char *buf;
	size_t len;
	int fd, e;

	*fd_out = -1;
	if (from >= ul->nrecs)
		return 0;
	snprintf(path, sizeof(path), "%s/" UIDLIST_NAME, dir);
	if (uidlist_format(ul, 0, from, &buf, &len) != 0) {
		snprintf(err, errlen, "%s: out of memory", path);
		return EX_OSERR;
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		free(buf);
		snprintf(err, errlen, "open %s: %s", path, strerror(e));
		return fsutil_errno_code(e);
	}
	/* One write(): a reader without the lock sees whole lines or none. */
	if (fsutil_write_all(fd, buf, len) < 0 || (sync && fsync(fd) < 0)) {
		e = errno;
		free(buf);
		close(fd);
		snprintf(err, errlen, "append %s: %s", path, strerror(e));
		return fsutil_errno_code(e);
	}
	free(buf);
	if (!sync) {
		*fd_out = fd;
		return 0;
	}
	if (close(fd) < 0) {
		e = errno;
		snprintf(err, errlen, "close %s: %s", path, strerror(e));
		return fsutil_errno_code(e);
	}
	return 0;
}

int uidlist_append(const char *dir, const struct uidlist *ul, size_t from,
		   char *err, size_t errlen)
{
	int fd;

	return append_records(dir, ul, from, 1, &fd, err, errlen);
}

int uidlist_append_nosync(const char *dir, const struct uidlist *ul, size_t from, int *fd,
			  char *err, size_t errlen)
{
	return append_records(dir, ul, from, 0, fd, err, errlen);
}

/* dovecot-keywords: the keyword letter map of one folder (see maildir.h). */
#include "maildir.h"

#include "dotlock.h"
#include "fsutil.h"
#include "uidlist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#define KEYWORDS_MAX_SIZE 65536

void maildir_keywords_clear(struct maildir_keywords *kw)
{
	size_t i;

	if (kw == NULL)
		return;
	for (i = 0; i < MAILDIR_KEYWORDS_MAX; i++) {
		free(kw->names[i]);
		kw->names[i] = NULL;
	}
}

int maildir_keywords_parse(const char *buf, size_t len, struct maildir_keywords *kw,
			   char *err, size_t errlen)
{
	size_t pos = 0, lineno = 0;

	memset(kw, 0, sizeof(*kw));
	while (pos < len) {
		const char *line = buf + pos, *nl = memchr(line, '\n', len - pos);
		size_t llen = nl ? (size_t)(nl - line) : len - pos, i = 0;
		unsigned long idx = 0;

		lineno++;
		pos += llen + (nl ? 1 : 0);
		if (llen == 0)
			continue;
		while (i < llen && line[i] >= '0' && line[i] <= '9' && idx < 1000)
			idx = idx * 10 + (unsigned long)(line[i++] - '0');
		if (i == 0 || i >= llen || line[i] != ' ' || i + 1 == llen ||
		    llen - i - 1 > MAILDIR_KEYWORD_MAX_LEN ||
		    memchr(line, '\0', llen) != NULL) {
			snprintf(err, errlen, "line %zu: expected \"<index> <keyword>\"", lineno);
			maildir_keywords_clear(kw);
			return EX_DATAERR;
		}
		/* Dovecot keeps indexes beyond z for its index files: ignore them. */
		if (idx >= MAILDIR_KEYWORDS_MAX)
			continue;
		free(kw->names[idx]);
		kw->names[idx] = strndup(line + i + 1, llen - i - 1);
		if (kw->names[idx] == NULL) {
			snprintf(err, errlen, "out of memory");
			maildir_keywords_clear(kw);
			return EX_OSERR;
		}
	}
	return 0;
}

int maildir_keywords_read(const char *dir, struct maildir_keywords *kw,
			  char *err, size_t errlen)
{
	char path[4096], perr[200];
	char *buf;
	size_t len;
	int r;

	memset(kw, 0, sizeof(*kw));
	snprintf(path, sizeof(path), "%s/" MAILDIR_KEYWORDS_NAME, dir);
	r = fsutil_read_file(path, KEYWORDS_MAX_SIZE, &buf, &len, err, errlen);
	if (r == EX_NOINPUT && errno == ENOENT)
		return 0;
	if (r != 0)
		return r;
	r = maildir_keywords_parse(buf, len, kw, perr, sizeof(perr));
	free(buf);
	if (r != 0)
		snprintf(err, errlen, "%s: %s", path, perr);
	return r;
}

int maildir_keywords_lookup(const struct maildir_keywords *kw, const char *name)
{
	int i;

	for (i = 0; i < MAILDIR_KEYWORDS_MAX; i++)
		if (kw->names[i] != NULL && strcmp(kw->names[i], name) == 0)
			return i;
	return -1;
}

int maildir_keywords_ensure(const char *dir, const char *name, int *idx,
			    char *err, size_t errlen)
{
	char ulpath[4096], path[4096], tmp[4096];
	char buf[MAILDIR_KEYWORDS_MAX * (MAILDIR_KEYWORD_MAX_LEN + 8)];
	struct maildir_keywords kw;
	struct dotlock *lk;
	size_t n = 0, i, nlen = strlen(name);
	int r, slot = -1;

	*idx = -1;
	if (nlen == 0 || nlen > MAILDIR_KEYWORD_MAX_LEN || strpbrk(name, " \r\n") != NULL) {
		snprintf(err, errlen, "invalid keyword");
		return EX_DATAERR;
	}
	snprintf(ulpath, sizeof(ulpath), "%s/" UIDLIST_NAME, dir);
	if ((r = dotlock_take(ulpath, DOTLOCK_WAIT_TIMEOUT, DOTLOCK_STALE_TIMEOUT, &lk,
			      err, errlen)) != 0)
		return r;
	if ((r = maildir_keywords_read(dir, &kw, err, errlen)) != 0)
		goto out;
	if ((*idx = maildir_keywords_lookup(&kw, name)) >= 0)
		goto out;
	for (i = 0; i < MAILDIR_KEYWORDS_MAX && slot < 0; i++)
		if (kw.names[i] == NULL)
			slot = (int)i;
	if (slot < 0) {
		snprintf(err, errlen, "%s: all %d keyword letters are in use", dir,
			 MAILDIR_KEYWORDS_MAX);
		r = EX_CANTCREAT;
		goto out;
	}
	if ((kw.names[slot] = strdup(name)) == NULL) {
		snprintf(err, errlen, "out of memory");
		r = EX_OSERR;
		goto out;
	}
	for (i = 0; i < MAILDIR_KEYWORDS_MAX; i++)
		if (kw.names[i] != NULL)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%zu %s\n", i, kw.names[i]);
	snprintf(path, sizeof(path), "%s/" MAILDIR_KEYWORDS_NAME, dir);
	snprintf(tmp, sizeof(tmp), "%s/" MAILDIR_KEYWORDS_NAME ".tmp", dir);
	r = fsutil_write_atomic(path, tmp, buf, n, 0600, err, errlen);
	if (r == 0)
		*idx = slot;
out:
	maildir_keywords_clear(&kw);
	dotlock_release(lk);
	return r;
}

/*
 * Folder tree and subscriptions of one Maildir (see folders.h).
 */
#include "folders.h"

#include "dotlock.h"
#include "fsutil.h"
#include "mailbox-name.h"
#include "maildir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#define PATHMAX 4096

static int is_internal(const char *n)
{
	return n[0] == '.' || strcmp(n, "cur") == 0 || strcmp(n, "new") == 0 ||
	       strcmp(n, "tmp") == 0;
}

static int is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int folder_dir(const char *maildir, const char *name, char *out, size_t outlen,
	       char *err, size_t errlen)
{
	int r;

	if (mailbox_name_is_inbox(name)) {
		r = snprintf(out, outlen, "%s", maildir);
	} else {
		if (mailbox_name_check(name, err, errlen) != 0)
			return EX_DATAERR;
		r = snprintf(out, outlen, "%s/%s", maildir, name);
	}
	if (r < 0 || (size_t)r >= outlen) {
		snprintf(err, errlen, "folder path too long");
		return EX_DATAERR;
	}
	return 0;
}

int folder_exists(const char *maildir, const char *name)
{
	char dir[PATHMAX], err[256];

	if (mailbox_name_is_inbox(name))
		return 1;
	return folder_dir(maildir, name, dir, sizeof(dir), err, sizeof(err)) == 0 && is_dir(dir);
}

/* 1 if DIR holds a child folder directory. */
static int has_child(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[PATHMAX];
	int found = 0;

	if (d == NULL)
		return 0;
	while (!found && (e = readdir(d)) != NULL) {
		if (is_internal(e->d_name))
			continue;
		if (e->d_type == DT_DIR) {
			found = 1;
		} else if (e->d_type == DT_UNKNOWN) {
			snprintf(path, sizeof(path), "%.3800s/%s", dir, e->d_name);
			found = is_dir(path);
		}
	}
	closedir(d);
	return found;
}

/* ---- listing ---------------------------------------------------------- */

struct walk {
	struct folder_list *l;
	size_t cap;
	char *err;
	size_t errlen;
};

static int add_folder(struct walk *w, const char *name, const char *dir, int is_inbox)
{
	struct folder_info *fi;
	char cur[PATHMAX];

	if (w->l->n >= FOLDERS_MAX) {
		snprintf(w->err, w->errlen, "more than %d folders", FOLDERS_MAX);
		return EX_SOFTWARE;
	}
	if (w->l->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 32;
		fi = realloc(w->l->v, cap * sizeof(*fi));
		if (fi == NULL) {
			snprintf(w->err, w->errlen, "out of memory");
			return EX_OSERR;
		}
		w->l->v = fi;
		w->cap = cap;
	}
	fi = &w->l->v[w->l->n];
	memset(fi, 0, sizeof(*fi));
	fi->name = strdup(name);
	if (fi->name == NULL) {
		snprintf(w->err, w->errlen, "out of memory");
		return EX_OSERR;
	}
	w->l->n++;
	if (is_inbox) {
		fi->selectable = 1;
		return 0;
	}
	fi->has_children = has_child(dir);
	snprintf(cur, sizeof(cur), "%.4000s/cur", dir);
	fi->selectable = !fi->has_children || is_dir(cur);
	return 0;
}

static int walk_dir(struct walk *w, const char *dir, const char *prefix, int depth)
{
	DIR *d;
	struct dirent *e;
	char path[PATHMAX], name[PATHMAX], cerr[256];
	int rc = 0;

	if (depth > FOLDERS_MAX_DEPTH)
		return 0;
	d = opendir(dir);
	if (d == NULL) {
		if (errno == ENOENT)
			return 0;
		snprintf(w->err, w->errlen, "%s: %s", dir, strerror(errno));
		return fsutil_errno_code(errno);
	}
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (is_internal(e->d_name))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= sizeof(path))
			continue;
		if (e->d_type != DT_DIR && (e->d_type != DT_UNKNOWN || !is_dir(path)))
			continue;
		if ((size_t)snprintf(name, sizeof(name), "%s%s%s", prefix, prefix[0] ? "/" : "",
				     e->d_name) >= sizeof(name))
			continue;
		/* names dovecot would not create (8-bit, wildcards) are skipped */
		if (mailbox_name_check(name, cerr, sizeof(cerr)) != 0 || mailbox_name_is_inbox(name))
			continue;
		rc = add_folder(w, name, path, 0);
		if (rc == 0)
			rc = walk_dir(w, path, name, depth + 1);
	}
	closedir(d);
	return rc;
}

static int info_cmp(const void *a, const void *b)
{
	const struct folder_info *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int folders_list(const char *maildir, struct folder_list *out, char *err, size_t errlen)
{
	struct walk w = { .l = out, .err = err, .errlen = errlen };
	char **subs = NULL;
	size_t nsubs = 0;
	int rc;

	out->v = NULL;
	out->n = 0;
	if (!is_dir(maildir)) {
		snprintf(err, errlen, "%s: no such mail directory", maildir);
		return EX_NOINPUT;
	}
	rc = add_folder(&w, "INBOX", maildir, 1);
	if (rc == 0)
		rc = walk_dir(&w, maildir, "", 0);
	if (rc == 0)
		rc = folders_subscriptions(maildir, &subs, &nsubs, err, errlen);
	if (rc != 0) {
		folders_list_free(out);
		return rc;
	}
	if (out->n > 1)
		qsort(out->v + 1, out->n - 1, sizeof(*out->v), info_cmp);
	if (nsubs > 0)
		qsort(subs, nsubs, sizeof(*subs), name_cmp);
	for (size_t i = 0; i < out->n; i++)
		out->v[i].subscribed = nsubs > 0 &&
			bsearch(&out->v[i].name, subs, nsubs, sizeof(*subs), name_cmp) != NULL;
	folders_names_free(subs, nsubs);
	return 0;
}

void folders_list_free(struct folder_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* ---- create / delete / rename ---------------------------------------- */

/* mkdir -p of the parents of DIR below MAILDIR; fsyncs each parent. */
static int make_parents(const char *maildir, const char *dir, char *err, size_t errlen)
{
	char path[PATHMAX];
	size_t base = strlen(maildir);

	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + base + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return fsutil_errno_code(errno);
		}
		*p = '/';
	}
	return 0;
}

int folder_create(const char *maildir, const char *name, char *err, size_t errlen)
{
	char dir[PATHMAX], parent[PATHMAX], cur[PATHMAX + 8];
	int rc;

	if ((rc = folder_dir(maildir, name, dir, sizeof(dir), err, errlen)) != 0)
		return rc;
	if (mailbox_name_is_inbox(name)) {
		snprintf(err, errlen, "INBOX always exists");
		return EX_CANTCREAT;
	}
	snprintf(cur, sizeof(cur), "%s/cur", dir);
	if (is_dir(dir) && (is_dir(cur) || !has_child(dir))) {
		snprintf(err, errlen, "Mailbox already exists");
		return EX_CANTCREAT;
	}
	if ((rc = make_parents(maildir, dir, err, errlen)) != 0)
		return rc;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return fsutil_errno_code(errno);
	}
	if ((rc = maildir_folder_init(dir, err, errlen)) != 0)
		return rc;
	fsutil_dirname(dir, parent, sizeof(parent));
	return fsutil_fsync_dir(parent, err, errlen);
}

/* Removes the files of DIR/SUB (cur, new, tmp) and the directory. */
static int remove_msgdir(const char *dir, const char *sub, char *err, size_t errlen)
{
	char path[PATHMAX], f[PATHMAX + 256];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "%.4000s/%s", dir, sub);
	d = opendir(path);
	if (d == NULL)
		return errno == ENOENT ? 0 : fsutil_errno_code(errno);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(f, sizeof(f), "%s/%s", path, e->d_name);
		if (unlink(f) != 0 && errno != ENOENT) {
			snprintf(err, errlen, "%s: %s", f, strerror(errno));
			closedir(d);
			return fsutil_errno_code(errno);
		}
	}
	closedir(d);
	if (rmdir(path) != 0 && errno != ENOENT) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return fsutil_errno_code(errno);
	}
	return 0;
}

/* Removes the mailbox files of DIR (messages, uidlist, caches) but not child folders. */
static int remove_mailbox_files(const char *dir, char *err, size_t errlen)
{
	static const char *const subs[] = { "cur", "new", "tmp" };
	struct dirent *e;
	DIR *d;
	int rc;

	/* cur first: once it is gone the folder is no longer a mailbox */
	for (size_t i = 0; i < 3; i++)
		if ((rc = remove_msgdir(dir, subs[i], err, errlen)) != 0)
			return rc;
	d = opendir(dir);
	if (d == NULL)
		return fsutil_errno_code(errno);
	while ((e = readdir(d)) != NULL) {
		char f[PATHMAX + 256];
		if (strncmp(e->d_name, "dovecot", 7) != 0 && strcmp(e->d_name, "maildirfolder") != 0 &&
		    strncmp(e->d_name, "mailkeep-", 9) != 0)
			continue;
		snprintf(f, sizeof(f), "%.4000s/%s", dir, e->d_name);
		if (unlink(f) != 0 && errno != ENOENT && errno != EISDIR) {
			snprintf(err, errlen, "%s: %s", f, strerror(errno));
			closedir(d);
			return fsutil_errno_code(errno);
		}
	}
	closedir(d);
	return 0;
}

int folder_delete(const char *maildir, const char *name, char *err, size_t errlen)
{
	char dir[PATHMAX], cur[PATHMAX + 8], parent[PATHMAX];
	int rc, children;

	if (mailbox_name_is_inbox(name)) {
		snprintf(err, errlen, "INBOX can't be deleted.");
		return EX_CANTCREAT;
	}
	if ((rc = folder_dir(maildir, name, dir, sizeof(dir), err, errlen)) != 0)
		return rc;
	if (!is_dir(dir)) {
		snprintf(err, errlen, "Mailbox doesn't exist: %s", name);
		return EX_NOINPUT;
	}
	children = has_child(dir);
	snprintf(cur, sizeof(cur), "%s/cur", dir);
	if (children && !is_dir(cur)) {
		snprintf(err, errlen, "Mailbox has children, delete them first");
		return EX_CANTCREAT;
	}
	if ((rc = remove_mailbox_files(dir, err, errlen)) != 0)
		return rc;
	if (!children && rmdir(dir) != 0 && errno != ENOENT) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return fsutil_errno_code(errno);
	}
	fsutil_dirname(dir, parent, sizeof(parent));
	return fsutil_fsync_dir(parent, err, errlen);
}

/* Moves every message file of INBOX into the fresh folder TODIR. */
static int rename_inbox(const char *maildir, const char *todir, char *err, size_t errlen)
{
	static const char *const subs[] = { "new", "cur" };
	int rc;

	for (size_t i = 0; i < 2; i++) {
		char from[PATHMAX], to[PATHMAX], f1[PATHMAX + 256], f2[PATHMAX + 256];
		struct dirent *e;
		DIR *d;

		snprintf(from, sizeof(from), "%.4000s/%s", maildir, subs[i]);
		snprintf(to, sizeof(to), "%.4000s/%s", todir, subs[i]);
		d = opendir(from);
		if (d == NULL)
			continue;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(f1, sizeof(f1), "%s/%s", from, e->d_name);
			snprintf(f2, sizeof(f2), "%s/%s", to, e->d_name);
			if (rename(f1, f2) != 0 && errno != ENOENT) {
				snprintf(err, errlen, "%s: %s", f1, strerror(errno));
				closedir(d);
				return fsutil_errno_code(errno);
			}
		}
		closedir(d);
		if ((rc = fsutil_fsync_dir(to, err, errlen)) != 0 ||
		    (rc = fsutil_fsync_dir(from, err, errlen)) != 0)
			return rc;
	}
	return 0;
}

int folder_rename(const char *maildir, const char *from, const char *to,
		  char *err, size_t errlen)
{
	char fdir[PATHMAX], tdir[PATHMAX], parent[PATHMAX];
	size_t flen;
	int rc;

	if ((rc = folder_dir(maildir, to, tdir, sizeof(tdir), err, errlen)) != 0)
		return rc;
	if (mailbox_name_is_inbox(to)) {
		snprintf(err, errlen, "Mailbox already exists");
		return EX_CANTCREAT;
	}
	if (is_dir(tdir)) {
		snprintf(err, errlen, "Mailbox already exists");
		return EX_CANTCREAT;
	}
	if (mailbox_name_is_inbox(from)) {
		if ((rc = folder_create(maildir, to, err, errlen)) != 0)
			return rc;
		return rename_inbox(maildir, tdir, err, errlen);
	}
	if ((rc = folder_dir(maildir, from, fdir, sizeof(fdir), err, errlen)) != 0)
		return rc;
	if (!is_dir(fdir)) {
		snprintf(err, errlen, "Mailbox doesn't exist: %s", from);
		return EX_NOINPUT;
	}
	flen = strlen(fdir);
	if (strncmp(tdir, fdir, flen) == 0 && tdir[flen] == '/') {
		snprintf(err, errlen, "Can't rename mailbox under itself.");
		return EX_CANTCREAT;
	}
	if ((rc = make_parents(maildir, tdir, err, errlen)) != 0)
		return rc;
	if (rename(fdir, tdir) != 0) {
		snprintf(err, errlen, "rename %s: %s", from, strerror(errno));
		return fsutil_errno_code(errno);
	}
	fsutil_dirname(tdir, parent, sizeof(parent));
	if ((rc = fsutil_fsync_dir(parent, err, errlen)) != 0)
		return rc;
	fsutil_dirname(fdir, parent, sizeof(parent));
	return fsutil_fsync_dir(parent, err, errlen);
}

/* ---- subscriptions ---------------------------------------------------- */

#define SUBS_MAX (4 << 20)

int folders_subscriptions(const char *maildir, char ***names, size_t *n, char *err,
			  size_t errlen)
{
	char path[PATHMAX], *buf = NULL, *line, *next;
	size_t len, cap = 0;
	int rc;

	*names = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "%.4000s/subscriptions", maildir);
	rc = fsutil_read_file(path, SUBS_MAX, &buf, &len, err, errlen);
	if (rc == EX_NOINPUT && errno == ENOENT)
		return 0;
	if (rc != 0)
		return rc;
	line = buf;
	/* version 2 header "V\t2" and a blank line; version 1 has bare names */
	if (strncmp(line, "V\t", 2) == 0) {
		next = strchr(line, '\n');
		line = next ? next + 1 : line + strlen(line);
	}
	for (; *line != '\0'; line = next) {
		char **v;
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		else
			next = line + strlen(line);
		if (line[0] == '\0')
			continue;
		for (char *p = line; *p; p++)
			if (*p == '\t')
				*p = '/';
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			v = realloc(*names, cap * sizeof(*v));
			if (v == NULL)
				goto nomem;
			*names = v;
		}
		if (((*names)[*n] = strdup(line)) == NULL)
			goto nomem;
		(*n)++;
	}
	free(buf);
	return 0;
nomem:
	free(buf);
	folders_names_free(*names, *n);
	*names = NULL;
	*n = 0;
	snprintf(err, errlen, "out of memory");
	return EX_OSERR;
}

void folders_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int folders_subscribe(const char *maildir, const char *name, int on, char *err, size_t errlen)
{
	char path[PATHMAX], tmp[PATHMAX + 16], **names = NULL, *buf = NULL;
	char canon[1100];
	struct dotlock *lk = NULL;
	size_t n = 0, len = 0, cap = 0;
	int rc, found = 0;

	snprintf(canon, sizeof(canon), "%s", name);
	mailbox_name_normalize(canon);
	if (!mailbox_name_is_inbox(canon) && mailbox_name_check(canon, err, errlen) != 0)
		return EX_DATAERR;
	snprintf(path, sizeof(path), "%.4000s/subscriptions", maildir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	rc = dotlock_take(path, DOTLOCK_WAIT_TIMEOUT, DOTLOCK_STALE_TIMEOUT, &lk, err, errlen);
	if (rc != 0)
		return rc;
	rc = folders_subscriptions(maildir, &names, &n, err, errlen);
	if (rc != 0)
		goto out;
	cap = 16;
	buf = malloc(cap);
	if (buf == NULL)
		goto nomem;
	memcpy(buf, "V\t2\n\n", 5);
	len = 5;
	for (size_t i = 0; i <= n; i++) {
		const char *nm;
		size_t l;
		if (i < n) {
			if (strcmp(names[i], canon) == 0) {
				found = 1;
				if (!on)
					continue;
			}
			nm = names[i];
		} else {
			if (!on || found)
				break;
			nm = canon;
		}
		l = strlen(nm);
		if (len + l + 2 > cap) {
			char *nb;
			while (len + l + 2 > cap)
				cap *= 2;
			nb = realloc(buf, cap);
			if (nb == NULL)
				goto nomem;
			buf = nb;
		}
		for (size_t k = 0; k < l; k++)
			buf[len + k] = nm[k] == '/' ? '\t' : nm[k];
		len += l;
		buf[len++] = '\n';
	}
	if ((on && found) || (!on && !found))
		rc = 0;	/* nothing to change */
	else
		rc = fsutil_write_atomic(path, tmp, buf, len, 0600, err, errlen);
	goto out;
nomem:
	snprintf(err, errlen, "out of memory");
	rc = EX_OSERR;
out:
	free(buf);
	folders_names_free(names, n);
	dotlock_release(lk);
	return rc;
}

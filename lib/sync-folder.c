/*
 * One folder pair (sync-folder.h).  Order of work, chosen so that a crash
 * anywhere loses nothing and duplicates nothing:
 *  1. skip when the provider's UIDVALIDITY/UIDNEXT/HIGHESTMODSEQ (from
 *     LIST-STATUS) and the mtimes of new/ and cur/ equal the state's;
 *  2. SELECT (with QRESYNC when the state allows: only changed messages
 *     and VANISHED come back), else UID FETCH 1:* (UID FLAGS);
 *  3. pairs: merge flags, or expunge on the side that still has it;
 *  4. unpaired messages on both sides are matched by Message-ID + size
 *     (a crash between transfer and state save, lost state, a new
 *     UIDVALIDITY, an adopted mbsync tree) before anything is transferred;
 *  5. downloads (one pipelined UID FETCH, bodies streamed to tmp/), state
 *     checkpoints after the files are durable; uploads (pipelined APPEND);
 *     flag updates; expunges; the final state.
 */
#include "sync-folder.h"

#include "folders.h"
#include "fsutil.h"
#include "log.h"
#include "maildir-add.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

static int kw_index_cb(void *ctx, const char *name)
{
	return sync_flags_keyword(ctx, name);
}

static long long mtime_ns(const char *dir, const char *sub)
{
	char p[PATH_MAX + 8];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	if (stat(p, &sb) != 0)
		return -1;
	return (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
}

/*
 * The header of a state file, up to and including its "pairs" line: read
 * in small pieces, so a no-change run does not read the pairs of a big
 * folder.  EX_NOINPUT when missing; *buf NULL when there is no header.
 */
static int state_read_header(const char *path, char **buf, size_t *len, char *err,
			     size_t errlen)
{
	size_t cap = 0, n = 0;
	char *b = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*buf = NULL;
	*len = 0;
	if (fd < 0) {
		int e = errno;

		snprintf(err, errlen, "open %.200s: %s", path, strerror(e));
		return e == ENOENT ? EX_NOINPUT : fsutil_errno_code(e);
	}
	for (;;) {
		const char *p;
		ssize_t r;

		if (n == cap) {
			char *nb;

			if (cap >= 8 * SYNC_STATE_MAX_LINE)
				break;	/* no pairs line where a header could be */
			cap = cap ? cap * 2 : 4096;
			if ((nb = realloc(b, cap)) == NULL) {
				free(b);
				close(fd);
				snprintf(err, errlen, "out of memory");
				return EX_OSERR;
			}
			b = nb;
		}
		r = read(fd, b + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			free(b);
			close(fd);
			snprintf(err, errlen, "read %.200s: %s", path, strerror(e));
			return fsutil_errno_code(e);
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if ((p = memmem(b, n, "\npairs\n", 7)) != NULL) {
			close(fd);
			*buf = b;
			*len = (size_t)(p - b) + 7;
			return 0;
		}
	}
	close(fd);
	free(b);
	return 0;
}

/* Reads the state; with HEADER_ONLY, not the pairs (enough to see a folder is unchanged). */
static int state_load(struct sync_fctx *c, int header_only)
{
	char *buf = NULL, e[256];
	size_t len;
	int rc = header_only ? state_read_header(c->statepath, &buf, &len, e, sizeof(e)) :
		fsutil_read_file(c->statepath, SYNC_STATE_MAX_SIZE, &buf, &len, e, sizeof(e));

	memset(&c->st, 0, sizeof(c->st));
	if (rc == EX_NOINPUT || (rc == 0 && buf == NULL))
		return 0;
	if (rc != 0) {
		snprintf(c->err, sizeof(c->err), "%s", e);
		return rc;
	}
	rc = sync_state_parse(buf, len, kw_index_cb, c, &c->st, e, sizeof(e));
	free(buf);
	if (rc != 0) {
		/* a damaged state is re-paired by Message-ID, never trusted */
		log_warn("state_ignored", "file=%s error=%s", log_q(c->statepath), log_q(e));
		memset(&c->st, 0, sizeof(c->st));
	}
	return 0;
}

int sync_folder_save_state(struct sync_fctx *c, int final)
{
	struct sync_state s = c->st;
	char *buf = NULL, tmp[PATH_MAX + 1320], e[256];
	size_t len;
	int rc;

	if (c->run->o->dry_run)
		return 0;
	free(s.remote);
	s.remote = (char *)c->rf->name;
	s.r_uidvalidity = c->uidvalidity;
	s.l_uidvalidity = c->f->uidvalidity;
	if (!final) {
		/* until the folder is complete, the next run must look again */
		s.highestmodseq = 0;
		s.r_uidnext = 0;
		s.l_mtime_new = s.l_mtime_cur = 0;
	} else {
		s.highestmodseq = c->failed ? 0 : c->modseq;
		s.r_uidnext = c->failed ? 0 : c->uidnext;
		s.l_mtime_new = c->failed ? 0 : c->mt_new;
		s.l_mtime_cur = c->failed ? 0 : c->mt_cur;
	}
	c->st.remote = NULL;
	if (sync_state_format(&s, c->kw.names, &buf, &len) != 0) {
		snprintf(c->err, sizeof(c->err), "out of memory");
		return EX_OSERR;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", c->statepath);
	rc = fsutil_write_atomic(c->statepath, tmp, buf, len, 0600, e, sizeof(e));
	free(buf);
	if (rc != 0)
		snprintf(c->err, sizeof(c->err), "%s", e);
	return rc;
}

static void fctx_free(struct sync_fctx *c)
{
	size_t i;

	maildir_add_free(c->b);
	maildir_folder_free(c->f);
	maildir_keywords_clear(&c->kw);
	sync_state_clear(&c->st);
	free(c->rm);
	free(c->vanished);
	free(c->pend);
	for (i = 0; i < c->nrnew; i++)
		free(c->rnew[i].key);
	free(c->rnew);
}

int sync_folder(struct sync_run *run, const struct sync_rfolder *rf, char *err, size_t errlen)
{
	struct sync_fctx *c = calloc(1, sizeof(*c));
	char sname[1200], e[256];
	unsigned char *lpaired = NULL;
	uint32_t *down = NULL, *up = NULL, *rexp = NULL;
	size_t ndown = 0, nup = 0, nrexp = 0, i, nl = 0, nr = 0;
	struct sync_rchange *rch = NULL;
	int rc = 0, dry = run->o->dry_run;

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return EX_OSERR;
	}
	c->run = run;
	c->rf = rf;
	run->st->folders++;
	if (folder_dir(run->root, rf->local, c->dir, sizeof(c->dir), e, sizeof(e)) != 0 ||
	    sync_state_file_name(rf->local, sname, sizeof(sname)) < 0 ||
	    imap_quote_astring(rf->name, c->qname, sizeof(c->qname)) < 0) {
		snprintf(err, errlen, "%s: bad folder name", rf->name);
		free(c);
		return EX_DATAERR;
	}
	snprintf(c->statepath, sizeof(c->statepath), "%s/%s", run->statedir, sname);
	/* 1. unchanged on both sides: the state's header is enough */
	if ((rc = state_load(c, 1)) != 0)
		goto out;
	c->mt_new = mtime_ns(c->dir, "new");
	c->mt_cur = mtime_ns(c->dir, "cur");
	if (c->st.remote != NULL && strcmp(c->st.remote, rf->name) == 0 && rf->have_status &&
	    rf->highestmodseq != 0 && c->st.highestmodseq == rf->highestmodseq &&
	    c->st.r_uidvalidity == rf->uidvalidity && c->st.r_uidnext == rf->uidnext &&
	    c->mt_new == c->st.l_mtime_new && c->mt_cur == c->st.l_mtime_cur && c->mt_new > 0) {
		run->st->folders_skipped++;
		goto out;
	}
	sync_state_clear(&c->st);
	if ((rc = maildir_keywords_read(c->dir, &c->kw, e, sizeof(e))) != 0 &&
	    rc != EX_NOINPUT) {
		snprintf(c->err, sizeof(c->err), "%s", e);
		goto out;
	}
	if ((rc = state_load(c, 0)) != 0)
		goto out;
	if (c->st.remote != NULL && strcmp(c->st.remote, rf->name) != 0) {
		log_info("mapping_changed", "folder=%s old=%s action=re-pair", log_q(rf->local),
			 log_q(c->st.remote));
		c->st.npairs = 0;
	}
	if (dry && access(c->dir, F_OK) != 0) {
		log_info("plan", "folder=%s action=create-local", log_q(rf->local));
		goto out;
	}
	if ((rc = maildir_folder_open(c->dir, &c->f, e, sizeof(e))) != 0 ||
	    (rc = maildir_folder_sync(c->f, 0, e, sizeof(e))) != 0) {
		snprintf(c->err, sizeof(c->err), "%s", e);
		goto out;
	}
	if (c->st.l_uidvalidity != 0 && c->st.l_uidvalidity != c->f->uidvalidity) {
		log_info("uidvalidity_changed", "folder=%s side=local action=re-pair",
			 log_q(rf->local));
		c->st.npairs = 0;
	}
	if ((rc = sync_remote_select(c)) != 0)
		goto out;

	lpaired = calloc(c->f->nmsgs + 1, 1);
	rch = calloc(c->st.npairs + 1, sizeof(*rch));
	rexp = calloc(c->st.npairs + 1, sizeof(*rexp));
	if (lpaired == NULL || rch == NULL || rexp == NULL) {
		rc = EX_OSERR;
		goto out;
	}
	/* 3. existing pairs */
	if ((rc = sync_flags_walk_pairs(c, lpaired, rch, &nr, rexp, &nrexp, &nl)) != 0)
		goto out;

	/* 4. unpaired on both sides */
	{
		size_t p = 0;

		for (i = 0; i < c->nrm; i++) {
			while (p < c->st.npairs && c->st.pairs[p].ruid < c->rm[i].uid)
				p++;
			if (p < c->st.npairs && c->st.pairs[p].ruid == c->rm[i].uid)
				continue;
			if (sync_u32_in(rexp, nrexp, c->rm[i].uid))
				continue;
			if (c->rm[i].flags.sys & MAILDIR_FLAG_TRASHED)
				continue;	/* deleted there: not worth a download */
			if (ndown % 256 == 0) {
				uint32_t *n2 = realloc(down, (ndown + 256) * sizeof(*n2));

				if (n2 == NULL) {
					rc = EX_OSERR;
					goto out;
				}
				down = n2;
			}
			down[ndown++] = c->rm[i].uid;
		}
		for (i = 0; i < c->f->nmsgs; i++) {
			if (lpaired[i] || (c->f->msgs[i].flags & MAILDIR_FLAG_TRASHED))
				continue;
			if (nup % 256 == 0) {
				uint32_t *n2 = realloc(up, (nup + 256) * sizeof(*n2));

				if (n2 == NULL) {
					rc = EX_OSERR;
					goto out;
				}
				up = n2;
			}
			up[nup++] = c->f->msgs[i].uid;
		}
	}
	if (ndown > 0 && nup > 0 &&
	    (rc = sync_pair_match(c, down, &ndown, up, &nup, &rch, &nr)) != 0)
		goto out;
	if (dry) {
		log_info("plan", "folder=%s download=%zu upload=%zu flags_local=%zu flags_remote=%zu "
			 "expunge_remote=%zu", log_q(rf->local), ndown, nup, nl, nr, nrexp);
		goto out;
	}
	/* 5. transfers, flags, expunges */
	if ((rc = sync_download(c, down, ndown)) != 0)
		goto out;
	if ((rc = sync_upload(c, up, nup)) != 0)
		goto out;
	if (nr > 0 && (rc = sync_flags_push(c, rch, nr)) != 0)
		goto out;
	if ((rc = sync_remote_expunge(c, rexp, nrexp)) != 0)
		goto out;
	if (run->o->stop != NULL && *run->o->stop)
		c->failed = 1;
	rc = sync_folder_save_state(c, 1);
out:
	if (rc != 0 && c->f != NULL && c->npend > 0 && !dry)
		(void)sync_download_checkpoint(c);	/* what was downloaded is recorded */
	if (rc != 0)
		snprintf(err, errlen, "%s", c->err[0] ? c->err : "failed");
	if (run->o->progress && nup > 0 && rc == 0)
		fprintf(stderr, "\r%s [%zu/%zu]: %zu up\033[K\n", rf->local, run->folder_i,
			run->nfolders, nup);
	free(lpaired);
	free(rch);
	free(rexp);
	free(down);
	free(up);
	fctx_free(c);
	free(c);
	return rc;
}

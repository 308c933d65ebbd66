/*
 * Uploads of one folder pair (sync-folder.h): APPEND with flags and
 * INTERNALDATE.  With MULTIAPPEND (and LITERAL+) messages go up in batches,
 * one command each, which the provider saves in one transaction; a batch
 * the provider refuses (one unacceptable message sinks all of it) is sent
 * again a message at a time, so only the bad one stays behind.  Otherwise
 * single APPENDs, pipelined with LITERAL+.
 */
#include "sync-folder.h"

#include "imap-seqset.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define APPEND_WINDOW 64	/* pipelined APPENDs */
#define MULTI_MAX 64		/* messages in one MULTIAPPEND */
#define MULTI_BYTES (8LL << 20)	/* and bytes: a bigger message goes alone */

/* Opens local message LUID: its fd, flags and INTERNALDATE; -1 if it is gone. */
static int open_msg(struct sync_fctx *c, uint32_t luid, int *fd, struct sync_flags *f,
		    char *flags, size_t flagslen, time_t *date, off_t *size)
{
	const struct maildir_msg *m = maildir_folder_find(c->f, luid);
	struct stat sb;
	char e[256];

	if (m == NULL || maildir_msg_open(c->f, m->uid, fd, e, sizeof(e)) != 0)
		return -1;
	f->sys = m->flags & ~(unsigned)MAILDIR_FLAG_TRASHED;
	f->kw = m->keywords;
	sync_flags_to_str(c, *f, flags, flagslen);
	if (fstat(*fd, &sb) != 0) {
		sb.st_mtime = time(NULL);
		sb.st_size = 0;
	}
	*date = sb.st_mtime;
	*size = sb.st_size;
	return 0;
}

static int upload_single(struct sync_fctx *c, const uint32_t *luids, size_t n)
{
	struct { char tag[16]; uint32_t luid; struct sync_flags f; } win[APPEND_WINDOW];
	size_t i = 0, nw = 0;
	int rc = 0;
	int pipelined = (c->run->caps & IMAP_CAP_LITERALPLUS) != 0;

	while (i < n || nw > 0) {
		if (i < n && nw < (pipelined ? APPEND_WINDOW : 1) &&
		    !(c->run->o->stop != NULL && *c->run->o->stop)) {
			struct sync_flags f;
			char flags[2048];
			time_t date;
			off_t size;
			int fd;

			if (open_msg(c, luids[i++], &fd, &f, flags, sizeof(flags), &date, &size) != 0)
				continue;
			rc = imap_client_append_fd(c->run->cl, c->qname, flags, date, fd,
						   win[nw].tag, c->err, sizeof(c->err));
			close(fd);
			if (rc != 0)
				return rc;
			win[nw].luid = luids[i - 1];
			win[nw].f = f;
			nw++;
			c->run->st->up_bytes += (unsigned long long)size;
			continue;
		}
		{
			const struct imap_resp *fin = NULL;
			uint32_t uv, ruid;
			size_t k;

			rc = imap_client_wait(c->run->cl, win[0].tag, NULL, NULL, &fin, c->err,
					      sizeof(c->err));
			if (rc == EX_UNAVAILABLE || rc == EX_PROTOCOL)
				return rc;
			if (rc == 0) {
				c->run->st->up++;
				if (fin->code != NULL && strcmp(fin->code, "APPENDUID") == 0 &&
				    sscanf(fin->code_arg, "%u %u", &uv, &ruid) == 2 &&
				    uv == c->uidvalidity) {
					if (sync_state_add(&c->st, ruid, win[0].luid, win[0].f) < 0)
						return EX_OSERR;
				}
			} else {
				/* kept locally, tried again next run */
				log_warn("upload_refused", "folder=%s uid=%u error=%s",
					 log_q(c->rf->local), win[0].luid, log_q(c->err));
				c->failed = 1;
			}
			for (k = 1; k < nw; k++)
				win[k - 1] = win[k];
			nw--;
		}
		if (c->run->o->stop != NULL && *c->run->o->stop && nw == 0)
			break;
	}
	return 0;
}

/*
 * Pairs the N messages of an accepted batch with the UIDs of its APPENDUID
 * ("<uidvalidity> <uid-set>", the set in the order sent).  Without a usable
 * answer nothing is paired: the next run pairs them by Message-ID + size.
 */
static int pair_batch(struct sync_fctx *c, const char *code_arg, const uint32_t *luids,
		      const struct sync_flags *f, size_t n)
{
	struct imap_seqset set = { 0 };
	unsigned long uv;
	char *end;
	size_t i, k = 0, count = 0;
	int rc = 0;

	uv = strtoul(code_arg, &end, 10);
	if (end == code_arg || *end != ' ' || uv != c->uidvalidity ||
	    imap_seqset_parse(end + 1, MULTI_MAX, 0, &set) != 0)
		return 0;
	for (i = 0; i < set.count; i++) {
		uint32_t lo = set.ranges[i].lo, hi = set.ranges[i].hi;

		if (lo == IMAP_SEQ_STAR || hi == IMAP_SEQ_STAR)
			goto out;
		count += (lo <= hi ? hi - lo : lo - hi) + 1;
	}
	if (count != n)
		goto out;
	for (i = 0; i < set.count; i++) {
		uint32_t lo = set.ranges[i].lo, hi = set.ranges[i].hi, u;

		if (lo > hi) {
			u = lo;
			lo = hi;
			hi = u;
		}
		for (u = lo;; u++) {
			if (sync_state_add(&c->st, u, luids[k], f[k]) < 0) {
				rc = EX_OSERR;
				goto out;
			}
			k++;
			if (u == hi)
				break;
		}
	}
out:
	imap_seqset_free(&set);
	return rc;
}

static int upload_multi(struct sync_fctx *c, const uint32_t *luids, size_t n)
{
	uint32_t bl[MULTI_MAX];
	struct sync_flags bf[MULTI_MAX];
	size_t i = 0;
	int rc;

	while (i < n && !(c->run->o->stop != NULL && *c->run->o->stop)) {
		const struct imap_resp *fin = NULL;
		char tag[16] = "";
		size_t nb = 0, first = i;
		long long bytes = 0;

		while (i < n && nb < MULTI_MAX) {
			struct sync_flags f;
			char flags[2048];
			time_t date;
			off_t size;
			long long sent;
			int fd;

			if (open_msg(c, luids[i], &fd, &f, flags, sizeof(flags), &date, &size) != 0) {
				i++;
				continue;
			}
			if (nb > 0 && bytes + (long long)size > MULTI_BYTES) {
				close(fd);
				break;
			}
			i++;
			rc = imap_client_multiappend_add(c->run->cl, c->qname, flags, date, fd, tag,
							 &sent, c->err, sizeof(c->err));
			close(fd);
			if (rc == EX_IOERR && imap_client_alive(c->run->cl))
				continue;	/* unreadable here, nothing sent: not in the batch */
			if (rc != 0)
				return rc;
			bl[nb] = luids[i - 1];
			bf[nb++] = f;
			bytes += sent;
		}
		if (nb == 0)
			continue;
		imap_client_multiappend_end(c->run->cl);
		rc = imap_client_wait(c->run->cl, tag, NULL, NULL, &fin, c->err, sizeof(c->err));
		if (rc == EX_UNAVAILABLE || rc == EX_PROTOCOL)
			return rc;
		if (rc != 0) {
			/* refused as a whole: again one by one, so only the culprit fails */
			log_info("multiappend_refused", "folder=%s messages=%zu error=%s "
				 "action=one-by-one", log_q(c->rf->local), nb, log_q(c->err));
			if ((rc = upload_single(c, luids + first, i - first)) != 0)
				return rc;
			continue;
		}
		c->run->st->up += nb;
		c->run->st->up_bytes += (unsigned long long)bytes;
		if (fin->code != NULL && strcmp(fin->code, "APPENDUID") == 0 &&
		    (rc = pair_batch(c, fin->code_arg, bl, bf, nb)) != 0)
			return rc;
	}
	return 0;
}

int sync_upload(struct sync_fctx *c, const uint32_t *luids, size_t n)
{
	unsigned need = IMAP_CAP_MULTIAPPEND | IMAP_CAP_LITERALPLUS;
	int rc;

	if (n > 1 && (c->run->caps & need) == need)
		rc = upload_multi(c, luids, n);
	else
		rc = upload_single(c, luids, n);
	sync_state_sort(&c->st);
	return rc;
}

/* Uploads of one folder pair (sync-folder.h): APPEND with flags and INTERNALDATE. */
#include "sync-folder.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define APPEND_WINDOW 64	/* pipelined APPENDs */

int sync_upload(struct sync_fctx *c, const uint32_t *luids, size_t n)
{
	struct { char tag[16]; uint32_t luid; struct sync_flags f; } win[APPEND_WINDOW];
	size_t i = 0, nw = 0;
	int rc = 0;
	int pipelined = (c->run->caps & IMAP_CAP_LITERALPLUS) != 0;

	while (i < n || nw > 0) {
		if (i < n && nw < (pipelined ? APPEND_WINDOW : 1) &&
		    !(c->run->o->stop != NULL && *c->run->o->stop)) {
			const struct maildir_msg *m = maildir_folder_find(c->f, luids[i]);
			struct sync_flags f;
			char flags[2048], e[256];
			struct stat sb;
			int fd;

			i++;
			if (m == NULL || maildir_msg_open(c->f, m->uid, &fd, e, sizeof(e)) != 0)
				continue;
			f.sys = m->flags & ~(unsigned)MAILDIR_FLAG_TRASHED;
			f.kw = m->keywords;
			sync_flags_to_str(c, f, flags, sizeof(flags));
			if (fstat(fd, &sb) != 0)
				sb.st_mtime = time(NULL);
			rc = imap_client_append_fd(c->run->cl, c->qname, flags, sb.st_mtime, fd,
						   win[nw].tag, c->err, sizeof(c->err));
			close(fd);
			if (rc != 0)
				return rc;
			win[nw].luid = m->uid;
			win[nw].f = f;
			nw++;
			c->run->st->up_bytes += (unsigned long long)sb.st_size;
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
				c->failed = 1;
			}
			for (k = 1; k < nw; k++)
				win[k - 1] = win[k];
			nw--;
		}
		if (c->run->o->stop != NULL && *c->run->o->stop && nw == 0)
			break;
	}
	sync_state_sort(&c->st);
	return 0;
}

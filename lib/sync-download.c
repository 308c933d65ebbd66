/*
 * Downloads of one folder pair (sync-folder.h): one pipelined UID FETCH
 * per UID set, bodies streamed from the response parser's literal sink
 * into a maildir_add batch (CRLF turned into LF as dovecot and mbsync
 * store them), and every CHECKPOINT_EVERY messages or CHECKPOINT_BYTES
 * the batch is made durable and visible with its UIDs in one step
 * (maildir_folder_add_files) and the pairs are saved.  A crash loses at
 * most the batch in tmp/; what was renamed is re-paired by Message-ID.
 */
#include "sync-folder.h"

#include "imap-date.h"
#include "maildir-add.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#define CHECKPOINT_EVERY 2000	/* downloads between syncfs + state saves */
#define CHECKPOINT_BYTES (128ULL << 20)	/* or bytes */

/*
 * A local failure while storing a download (disk full, I/O error): the
 * reason goes to c->err and its sysexits code to c->d_failed, so that it
 * is reported as ours and not as the parser's "malformed response".
 */
static int local_fail(struct sync_fctx *c, int rc, const char *e)
{
	snprintf(c->err, sizeof(c->err), "%s", e);
	c->d_failed = rc != 0 ? rc : EX_IOERR;
	return -1;
}

static int sink_begin(void *ctx, unsigned long long size)
{
	struct sync_fctx *c = ctx;
	char e[256];
	int rc;

	(void)size;
	if (c->run->o->stop != NULL && *c->run->o->stop)
		return -1;
	c->d_open = 0;
	c->d_cr = 0;
	if (c->b == NULL && (c->b = maildir_add_new(c->dir)) == NULL)
		return local_fail(c, EX_OSERR, "out of memory");
	if ((rc = maildir_add_begin(c->b, e, sizeof(e))) != 0)
		return local_fail(c, rc, e);
	c->d_open = 1;
	return 0;
}

/* Writes message bytes converting CRLF to LF, as dovecot and mbsync store them. */
static int sink_data(void *ctx, const void *buf, size_t len)
{
	struct sync_fctx *c = ctx;
	const char *p = buf, *end = p + len;
	char e[256];
	int rc = 0;

	if (!c->d_open)
		return -1;
	while (p < end) {
		const char *cr;
		size_t span;

		if (c->d_cr) {	/* a CR ended the previous chunk or span */
			c->d_cr = 0;
			if (*p != '\n' && (rc = maildir_add_write(c->b, "\r", 1, e, sizeof(e))) != 0)
				goto fail;
		}
		cr = memchr(p, '\r', (size_t)(end - p));
		span = (size_t)((cr != NULL ? cr : end) - p);
		c->run->st->down_bytes += span;
		if (span > 0 && (rc = maildir_add_write(c->b, p, span, e, sizeof(e))) != 0)
			goto fail;
		if (cr == NULL)
			break;
		c->d_cr = 1;
		p = cr + 1;
	}
	return 0;
fail:
	return local_fail(c, rc, e);
}

/* Room for one more pending download, taken before the batch queues it. */
static int pend_reserve(struct sync_fctx *c)
{
	if (c->npend == c->cappend) {
		size_t cap = c->cappend ? c->cappend * 2 : 256;
		struct sync_pending *n = realloc(c->pend, cap * sizeof(*n));

		if (n == NULL)
			return -1;
		c->pend = n;
		c->cappend = cap;
	}
	return 0;
}

/*
 * Makes the downloaded files durable and visible with their UIDs (one
 * syncfs, one locked uidlist append: maildir_folder_add_files) and records
 * the pairs.
 */
int sync_download_checkpoint(struct sync_fctx *c)
{
	uint32_t *uids;
	char e[256];
	size_t i;

	if (c->npend == 0)
		return 0;
	if ((uids = calloc(c->npend, sizeof(*uids))) == NULL) {
		snprintf(c->err, sizeof(c->err), "out of memory");
		return EX_OSERR;
	}
	if (maildir_folder_add_files(c->f, c->b, uids, e, sizeof(e)) != 0) {
		/* what was renamed into place is paired below or next run */
		snprintf(c->err, sizeof(c->err), "%s", e);
		c->failed = 1;
	}
	for (i = 0; i < c->npend; i++)
		if (uids[i] != 0 &&
		    sync_state_add(&c->st, c->pend[i].ruid, uids[i], c->pend[i].flags) < 0) {
			free(uids);
			return EX_OSERR;
		}
	free(uids);
	c->npend = 0;
	sync_state_sort(&c->st);
	return sync_folder_save_state(c, 0);
}

static int body_cb(const struct imap_resp *r, void *ctx)
{
	struct sync_fctx *c = ctx;
	struct maildir_commit cm = { 0 };
	long u, fl, dt;
	size_t i;
	uint32_t uid;
	int have_body = 0;
	char e[256];
	int rc;
	struct sync_flags f = { 0, 0 };

	if (r->name == NULL || strcmp(r->name, "FETCH") != 0 || r->ntoks < 1 ||
	    r->toks[0].type != IMAP_TOK_LIST)
		return 0;
	u = imap_tok_list_get(r->toks, 0, "UID");
	if (u < 0 || imap_tok_u32(&r->toks[u], &uid) < 0)
		return 0;
	for (i = 1; i < r->toks[0].end; i = r->toks[i].end) {
		size_t v = r->toks[i].end;

		if (v >= r->toks[0].end)
			break;
		if (imap_tok_is(&r->toks[i], "BODY[]")) {
			if (r->toks[v].type == IMAP_TOK_STRING) {
				if (sink_begin(c, r->toks[v].len) != 0 ||
				    sink_data(c, r->toks[v].s, r->toks[v].len) != 0)
					return -1;
				have_body = 1;
			} else if (r->toks[v].type == IMAP_TOK_SUNK && c->d_open) {
				have_body = 1;
			}
		}
		i = v;
	}
	if (!have_body || !c->d_open)
		return 0;
	if (c->d_cr) {
		c->d_cr = 0;
		if ((rc = maildir_add_write(c->b, "\r", 1, e, sizeof(e))) != 0)
			return local_fail(c, rc, e);
	}
	if ((fl = imap_tok_list_get(r->toks, 0, "FLAGS")) >= 0)
		f = sync_flags_from_list(c, r->toks, (size_t)fl);
	f.sys &= ~(unsigned)MAILDIR_FLAG_TRASHED;
	cm.flags = f.sys;
	cm.keywords = f.kw;
	if ((dt = imap_tok_list_get(r->toks, 0, "INTERNALDATE")) >= 0) {
		char ds[64];
		int tz;

		if (imap_tok_str(&r->toks[dt], ds, sizeof(ds)) == 0)
			imap_date_parse_datetime(ds, &cm.mtime, &tz);
	}
	c->d_open = 0;
	if (pend_reserve(c) < 0) {
		maildir_add_abort(c->b);
		snprintf(c->err, sizeof(c->err), "out of memory");
		return -1;
	}
	if ((rc = maildir_add_end(c->b, cm.flags, cm.keywords, cm.mtime, NULL, 0, e,
				  sizeof(e))) != 0)
		return local_fail(c, rc, e);
	c->pend[c->npend].ruid = uid;
	c->pend[c->npend].flags = f;
	c->npend++;
	c->run->st->down++;
	c->d_done++;
	if (c->run->o->progress)
		sync_progress(c, c->d_done, c->d_n, 0);
	if (c->npend >= CHECKPOINT_EVERY || maildir_add_pending_bytes(c->b) >= CHECKPOINT_BYTES)
		return sync_download_checkpoint(c) != 0 ? -1 : 0;
	return 0;
}

static void hms(char *buf, size_t len, long long s)
{
	if (s >= 3600)
		snprintf(buf, len, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(buf, len, "%lld:%02lld", s / 60, s % 60);
}

void sync_progress(struct sync_fctx *c, size_t done, size_t n, int force)
{
	struct sync_run *run = c->run;
	long long now = sync_now_ms(), el = now - c->d_t0_ms, all_el = now - run->t0_ms;
	double mb = (double)(run->st->down_bytes - c->d_bytes0) / 1048576.0;
	char eta[64] = "";

	if (!force && now - run->shown_ms < 250)
		return;
	run->shown_ms = now;
	if (run->msgs_all > 0 && all_el > 0) {
		/* the run's share: folders done, and this one as far as it got */
		unsigned long long here = c->rf->messages > n ? c->rf->messages - n + done : done;
		double f = (double)(run->msgs_before + here) / (double)run->msgs_all;
		char t[32];

		if (f > 1.0)
			f = 1.0;
		if (f > 0.0) {
			hms(t, sizeof(t), (long long)((double)all_el / f * (1.0 - f) / 1000.0));
			snprintf(eta, sizeof(eta), "; all %d%%, ETA %s", (int)(f * 100.0), t);
		}
	}
	fprintf(stderr, "\r%s [%zu/%zu]: %zu/%zu down, %.1f MB, %.1f MB/s%s\033[K%s",
		c->rf->local, run->folder_i, run->nfolders, done, n, mb,
		el > 0 ? mb * 1000.0 / (double)el : 0.0, eta, force ? "\n" : "");
}

int sync_download(struct sync_fctx *c, const uint32_t *uids, size_t n)
{
	struct imap_resp_sink sink = { sink_begin, sink_data, c };
	char tags[64][16], cmd[SYNC_SET_MAX + 128], **sets, werr[sizeof(c->err)];
	size_t i, nsets, nt = 0, k;
	int rc = 0, rc2;

	if (n == 0)
		return 0;
	c->d_failed = 0;
	c->d_done = 0;
	c->d_n = n;
	c->d_t0_ms = sync_now_ms();
	c->d_bytes0 = c->run->st->down_bytes;
	if ((sets = sync_uid_sets(uids, n, &nsets)) == NULL)
		return EX_OSERR;
	imap_client_set_sink(c->run->cl, &sink);
	for (i = 0; i < nsets; i++) {
		snprintf(cmd, sizeof(cmd), "UID FETCH %s (UID FLAGS INTERNALDATE BODY.PEEK[])",
			 sets[i]);
		imap_client_send(c->run->cl, cmd, tags[nt++]);
		if (nt < 64 && i + 1 < nsets)
			continue;
		for (k = 0; k < nt; k++) {
			rc2 = imap_client_wait(c->run->cl, tags[k], body_cb, c, NULL, werr,
					       sizeof(werr));
			if (rc2 != 0 && c->d_failed != 0)
				rc2 = c->d_failed;	/* c->err has the local reason */
			else if (rc2 != 0)
				snprintf(c->err, sizeof(c->err), "%s", werr);
			if (rc2 != 0 && rc == 0)
				rc = rc2;
			/* after a local failure the parser has given up: the connection too */
			if (rc2 == EX_UNAVAILABLE || rc2 == EX_PROTOCOL || c->d_failed != 0)
				goto done;
		}
		nt = 0;
	}
done:
	if (c->run->o->progress)
		sync_progress(c, c->d_done, n, 1);
	imap_client_set_sink(c->run->cl, NULL);
	if (c->b != NULL)
		maildir_add_abort(c->b);
	c->d_open = 0;
	sync_uid_sets_free(sets);
	rc2 = sync_download_checkpoint(c);
	if (rc != 0)
		c->failed = 1;
	return rc ? rc : rc2;
}

/*
 * SEARCH and ESEARCH over lib/imap-search's evaluator; header keys match
 * the RFC 2047-decoded text, as dovecot does.  See imapd-internal.h.
 */
#include "imapd-internal.h"

#include "conn.h"
#include "imap-date.h"
#include "imap-fetch.h"
#include "imap-search.h"
#include "imap-seqset.h"
#include "mime.h"
#include "rfc2047.h"
#include "log.h"
#include "maildir.h"
#include "modseq.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- SEARCH ----------------------------------------------------------- */

struct search_ctx {
	struct imapd *s;
	const struct imapd_msg *m;
	struct imapd_fetch_msg fm;
	int opened;		/* 1 ok, -1 failed */
	char *hbuf;		/* HBUF_SIZE bytes for a decoded header value, shared */
};
#define HBUF_SIZE 8192

static int search_open(struct search_ctx *c)
{
	if (c->opened == 0)
		c->opened = imapd_fetch_msg_open(c->s, c->m->uid, &c->fm, IMAPD_FM_FULL) == 0 ? 1 : -1;
	return c->opened > 0;
}

static int search_has_keyword(void *ctx, const char *kw)
{
	struct search_ctx *c = ctx;
	int idx;

	if (strcasecmp(kw, "$Forwarded") == 0)
		return (c->m->flags & MAILDIR_FLAG_PASSED) != 0;
	idx = maildir_keywords_lookup(&c->s->sel->kw, kw);
	return idx >= 0 && (c->m->keywords & (1u << idx)) != 0;
}

static const char *search_header(void *ctx, const char *name, unsigned n, size_t *len)
{
	struct search_ctx *c = ctx;
	const char *v;
	size_t vlen;

	if (n > 0 || !search_open(c))
		return NULL;
	v = mime_header_get(c->fm.mime, c->fm.mime->root, name, &vlen);
	if (v == NULL)
		return NULL;
	/* match the decoded text, as dovecot does: "=?UTF-8?B?...?=" subjects */
	*len = rfc2047_decode(v, vlen, c->hbuf, HBUF_SIZE);
	return c->hbuf;
}

static int search_contains(void *ctx, const char *needle, int text)
{
	struct search_ctx *c = ctx;
	const struct mime_part *root;

	if (!search_open(c))
		return 0;
	root = c->fm.mime->root;
	if (text)
		return imap_search_substr(c->fm.data, c->fm.len, needle);
	return imap_search_substr(c->fm.data + root->body_off, root->body_len, needle);
}

/* Which message data a search needs beyond flags and UIDs. */
static void search_needs(const struct imap_search_key *k, int *file, int *size)
{
	for (; k != NULL; k = k->next) {
		switch (k->op) {
		case IMAP_SK_BEFORE: case IMAP_SK_ON: case IMAP_SK_SINCE:
		case IMAP_SK_YOUNGER: case IMAP_SK_OLDER:
		case IMAP_SK_SENTBEFORE: case IMAP_SK_SENTON: case IMAP_SK_SENTSINCE:
		case IMAP_SK_HEADER: case IMAP_SK_BODY: case IMAP_SK_TEXT:
			*file = 1;
			break;
		case IMAP_SK_LARGER: case IMAP_SK_SMALLER:
			*size = 1;
			break;
		default:
			break;
		}
		if (k->child != NULL)
			search_needs(k->child, file, size);
	}
}

/* 1 when the search uses the MODSEQ key (the result then carries MODSEQ). */
static int search_uses_modseq(const struct imap_search_key *k)
{
	for (; k != NULL; k = k->next)
		if (k->op == IMAP_SK_MODSEQ || (k->child != NULL && search_uses_modseq(k->child)))
			return 1;
	return 0;
}

enum { ESR_MIN = 1, ESR_MAX = 2, ESR_COUNT = 4, ESR_ALL = 8 };

void imapd_cmd_search(struct imapd *s, const struct imap_command *cmd)
{
	struct imapd_selected *sel = s->sel;
	const struct imap_arg *args = cmd->args;
	size_t nargs = cmd->count, nfound = 0;
	struct imap_search *q;
	const char *perr = NULL;
	uint32_t *found;
	char *hbuf;
	int badcharset = 0, esearch = 0, ret = 0, need_file = 0, need_size = 0, use_modseq = 0;
	uint64_t max_modseq = 0;
	struct imap_string *o = &s->out;
	time_t now = time(NULL);

	if (nargs >= 2 && imap_arg_atom_equals(&args[0], "RETURN")) {
		if (args[1].type != IMAP_ARG_LIST) {
			imapd_tagged(s, cmd->tag, "BAD Invalid SEARCH RETURN options.");
			return;
		}
		esearch = 1;
		for (size_t i = 0; i < args[1].count; i++) {
			const struct imap_arg *a = &args[1].list[i];
			if (imap_arg_atom_equals(a, "MIN"))
				ret |= ESR_MIN;
			else if (imap_arg_atom_equals(a, "MAX"))
				ret |= ESR_MAX;
			else if (imap_arg_atom_equals(a, "COUNT"))
				ret |= ESR_COUNT;
			else if (imap_arg_atom_equals(a, "ALL"))
				ret |= ESR_ALL;
			else {
				imapd_tagged(s, cmd->tag, "BAD Unsupported SEARCH RETURN option.");
				return;
			}
		}
		if (ret == 0)
			ret = ESR_ALL;
		args += 2;
		nargs -= 2;
	}
	q = imap_search_parse(args, nargs, 1000, &perr, &badcharset);
	if (q == NULL) {
		if (badcharset)
			imapd_tagged(s, cmd->tag, "NO %s", perr);
		else
			imapd_tagged(s, cmd->tag, "BAD %s", perr ? perr : "Invalid SEARCH arguments.");
		return;
	}
	if (q->uses_saved) {
		imap_search_free(q);
		imapd_tagged(s, cmd->tag, "BAD SEARCHRES is not offered.");
		return;
	}
	search_needs(q->root, &need_file, &need_size);
	use_modseq = search_uses_modseq(q->root);
	if (use_modseq)
		s->enabled |= IMAPD_EN_CONDSTORE;
	found = malloc((sel->n ? sel->n : 1) * sizeof(*found));
	hbuf = malloc(HBUF_SIZE);
	if (found == NULL || hbuf == NULL) {
		free(found);
		free(hbuf);
		imap_search_free(q);
		imapd_tagged(s, cmd->tag, "NO [SERVERBUG] Out of memory.");
		return;
	}
	/*
	 * One context for all messages: a flags-only search (UNSEEN on 100k
	 * messages) then costs the evaluation alone (closing a message that was
	 * never opened does nothing).
	 */
	struct search_ctx c = { .s = s, .fm = { .fd = -1 }, .hbuf = hbuf };
	struct imap_search_msg sm = {
		.ctx = &c, .max_seq = (uint32_t)sel->n,
		.max_uid = sel->n ? sel->view[sel->n - 1].uid : 0,
		.now = now, .has_keyword = search_has_keyword, .header = search_header,
		.contains = search_contains,
	};
	for (size_t i = 0; i < sel->n; i++) {
		const struct imapd_msg *m = &sel->view[i];

		if (m->flags & MSG_GONE)
			continue;
		c.m = m;
		sm.seq = (uint32_t)(i + 1);
		sm.uid = m->uid;
		sm.modseq = m->modseq;
		sm.flags = ((m->flags & MAILDIR_FLAG_SEEN) ? IMAP_SEARCH_SEEN : 0) |
			   ((m->flags & MAILDIR_FLAG_REPLIED) ? IMAP_SEARCH_ANSWERED : 0) |
			   ((m->flags & MAILDIR_FLAG_FLAGGED) ? IMAP_SEARCH_FLAGGED : 0) |
			   ((m->flags & MAILDIR_FLAG_TRASHED) ? IMAP_SEARCH_DELETED : 0) |
			   ((m->flags & MAILDIR_FLAG_DRAFT) ? IMAP_SEARCH_DRAFT : 0) |
			   ((m->flags & IMAPD_FLAG_RECENT) ? IMAP_SEARCH_RECENT : 0);
		if (need_file && search_open(&c)) {
			sm.internaldate = c.fm.st.st_mtime;
			sm.internaldate_tz = imap_date_local_offset(c.fm.st.st_mtime);
		}
		if (need_size)
			sm.size = imapd_msg_vsize(s, m->uid, &c.fm);
		if (imap_search_match(q, &sm)) {
			found[nfound++] = cmd->uid ? m->uid : (uint32_t)(i + 1);
			if (m->modseq > max_modseq)
				max_modseq = m->modseq;
		}
		imapd_fetch_msg_close(&c.fm);
		c.opened = 0;
		sm.internaldate = 0;
		sm.internaldate_tz = 0;
		sm.size = 0;
	}
	imap_search_free(q);
	imap_string_clear(o);
	if (!esearch) {
		imap_string_adds(o, "SEARCH");
		for (size_t i = 0; i < nfound; i++) {
			imap_string_addc(o, ' ');
			imapd_add_u64(o, found[i]);
		}
		if (use_modseq && nfound > 0)
			imap_string_addf(o, " (MODSEQ %llu)", (unsigned long long)max_modseq);
	} else {
		imap_string_addf(o, "ESEARCH (TAG ");
		imap_string_add_quoted(o, cmd->tag, strlen(cmd->tag));
		imap_string_addc(o, ')');
		if (cmd->uid)
			imap_string_adds(o, " UID");
		if ((ret & ESR_MIN) && nfound)
			imap_string_addf(o, " MIN %u", found[0]);
		if ((ret & ESR_MAX) && nfound)
			imap_string_addf(o, " MAX %u", found[nfound - 1]);
		if (ret & ESR_COUNT)
			imap_string_addf(o, " COUNT %zu", nfound);
		if ((ret & ESR_ALL) && nfound) {
			imap_string_adds(o, " ALL ");
			imapd_add_uid_ranges(o, found, nfound);
		}
		if (use_modseq && nfound > 0)
			imap_string_addf(o, " MODSEQ %llu", (unsigned long long)max_modseq);
	}
	free(found);
	free(hbuf);
	if (o->failed) {
		imapd_tagged(s, cmd->tag, "NO [SERVERBUG] Result too large.");
		return;
	}
	imapd_untagged(s, "%s", o->buf);
	imapd_select_sync(s, cmd->uid);
	imapd_tagged(s, cmd->tag, "OK Search completed.");
}

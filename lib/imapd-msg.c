/*
 * Commands on messages of the selected mailbox: message sets, STORE
 * (with UNCHANGEDSINCE), COPY and MOVE (with COPYUID).  See imapd-internal.h.
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

/* ---- message sets ----------------------------------------------------- */

/*
 * Marks in mask[] (one byte per view entry) the messages ARG names, by
 * UID or by sequence number.  Returns the count, or -1 after answering BAD.
 * A sequence number beyond EXISTS is an error (RFC 3501 §9); UIDs that do
 * not exist are silently skipped.
 */
long imapd_resolve_set(struct imapd *s, const char *tag, const struct imap_arg *arg, int uid,
			unsigned char **mask)
{
	struct imapd_selected *sel = s->sel;
	struct imap_seqset set = { 0 };
	long count = 0;

	*mask = NULL;
	if (arg->type != IMAP_ARG_ATOM || imap_seqset_parse(arg->str, 100000, 0, &set) != 0) {
		imapd_tagged(s, tag, "BAD Invalid message set.");
		return -1;
	}
	if (!uid) {
		for (size_t r = 0; r < set.count; r++) {
			uint32_t lo, hi;
			imap_seq_range_resolve(&set.ranges[r], (uint32_t)sel->n, &lo, &hi);
			if (hi > sel->n && set.ranges[r].lo != IMAP_SEQ_STAR &&
			    set.ranges[r].hi != IMAP_SEQ_STAR) {
				imap_seqset_free(&set);
				imapd_tagged(s, tag, "BAD Error in IMAP command: Invalid messageset");
				return -1;
			}
		}
	}
	*mask = calloc(sel->n ? sel->n : 1, 1);
	if (*mask == NULL) {
		imap_seqset_free(&set);
		imapd_tagged(s, tag, "NO [SERVERBUG] Out of memory.");
		return -1;
	}
	{
		uint32_t star = uid ? (sel->n ? sel->view[sel->n - 1].uid : 0) : (uint32_t)sel->n;
		for (size_t i = 0; i < sel->n; i++) {
			uint32_t key = uid ? sel->view[i].uid : (uint32_t)(i + 1);
			if (imap_seqset_contains(&set, key, star)) {
				(*mask)[i] = 1;
				count++;
			}
		}
	}
	imap_seqset_free(&set);
	return count;
}

/* Appends "a,b:c" (compressed ranges) of the ascending numbers to out. */
void imapd_add_uid_ranges(struct imap_string *o, const uint32_t *v, size_t n)
{
	for (size_t i = 0; i < n; ) {
		size_t j = i;
		while (j + 1 < n && v[j + 1] == v[j] + 1)
			j++;
		if (i > 0)
			imap_string_addc(o, ',');
		if (j > i)
			imap_string_addf(o, "%u:%u", v[i], v[j]);
		else
			imap_string_addf(o, "%u", v[i]);
		i = j + 1;
	}
}

/* ---- STORE ------------------------------------------------------------ */

/* Parses one flag word into sysflag bits or a keyword index; -1 if invalid. */
static int parse_flag(struct imapd *s, const char *w, int create, unsigned *bits, int *kw)
{
	char err[256];

	*bits = 0;
	*kw = -1;
	if (w[0] == '\\') {
		for (size_t i = 0; i < sizeof(imapd_sysflags) / sizeof(imapd_sysflags[0]); i++)
			if (strcasecmp(w, imapd_sysflags[i].name) == 0) {
				*bits = imapd_sysflags[i].bit;
				return 0;
			}
		return strcasecmp(w, "\\Recent") == 0 ? -2 : -1;
	}
	if (strcasecmp(w, "$Forwarded") == 0) {
		*bits = MAILDIR_FLAG_PASSED;
		return 0;
	}
	for (const char *p = w; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f ||
		    strchr("(){%*\"\\]", *p) != NULL)
			return -1;
	if (strlen(w) > MAILDIR_KEYWORD_MAX_LEN)
		return -1;
	*kw = maildir_keywords_lookup(&s->sel->kw, w);
	if (*kw < 0 && create) {
		if (maildir_keywords_ensure(s->sel->dir, w, kw, err, sizeof(err)) != 0) {
			log_warn("keyword", "name=%s error=%s", log_q(w), log_q(err));
			return -3;
		}
		imapd_load_keywords(s->sel);
	}
	return 0;
}

/* Parses "(NAME n)" modifier lists: the value of NAME in *v; 0, or -1. */
static int parse_modifier(const struct imap_arg *a, const char *name, uint64_t *v, int *seen)
{
	char *end;

	if (a->type != IMAP_ARG_LIST || a->count != 2 || !imap_arg_atom_equals(&a->list[0], name) ||
	    a->list[1].type != IMAP_ARG_ATOM || a->list[1].str[0] < '0' || a->list[1].str[0] > '9')
		return -1;
	errno = 0;
	*v = strtoull(a->list[1].str, &end, 10);
	if (errno != 0 || *end != '\0' || *v > INT64_MAX)
		return -1;
	*seen = 1;
	return 0;
}

void imapd_cmd_store(struct imapd *s, const struct imap_command *cmd)
{
	struct imapd_selected *sel = s->sel;
	const struct imap_arg *args = cmd->args, *item, *flags;
	unsigned char *mask = NULL, *done = NULL;
	uint32_t *modified = NULL;
	size_t nmodified = 0, nargs = cmd->count;
	unsigned add_bits = 0;
	uint32_t add_kw = 0;
	uint64_t unchangedsince = 0, newms = 0;
	int mode, silent = 0, failed = 0, conditional = 0, locked;
	const char *w;
	size_t nflags, k = 0;
	long count;
	char err[512];

	/* STORE set [(UNCHANGEDSINCE n)] item flags */
	if (nargs >= 4 && args[1].type == IMAP_ARG_LIST) {
		if (parse_modifier(&args[1], "UNCHANGEDSINCE", &unchangedsince, &conditional) != 0) {
			imapd_tagged(s, cmd->tag, "BAD Invalid STORE modifiers.");
			return;
		}
		s->enabled |= IMAPD_EN_CONDSTORE;
		item = &args[2];
		flags = &args[3];
		nflags = nargs - 3;
	} else {
		item = &args[1];
		flags = &args[2];
		nflags = nargs - 2;
	}
	if (nargs < 3 || item->type != IMAP_ARG_ATOM) {
		imapd_tagged(s, cmd->tag, "BAD STORE needs a message set, an item and flags.");
		return;
	}
	if (sel->readonly) {
		imapd_tagged(s, cmd->tag, "NO Mailbox is read-only.");
		return;
	}
	w = item->str;
	mode = w[0] == '+' ? 1 : w[0] == '-' ? -1 : 0;
	if (mode)
		w++;
	if (strcasecmp(w, "FLAGS.SILENT") == 0)
		silent = 1;
	else if (strcasecmp(w, "FLAGS") != 0) {
		imapd_tagged(s, cmd->tag, "BAD Invalid STORE item.");
		return;
	}
	if (flags->type == IMAP_ARG_LIST) {
		if (nflags != 1) {
			imapd_tagged(s, cmd->tag, "BAD Invalid STORE arguments.");
			return;
		}
		nflags = flags->count;
		flags = flags->list;
	}
	for (size_t i = 0; i < nflags; i++) {
		unsigned bits;
		int kw, r;
		if (flags[i].type != IMAP_ARG_ATOM) {
			imapd_tagged(s, cmd->tag, "BAD Invalid flag.");
			return;
		}
		r = parse_flag(s, flags[i].str, mode >= 0, &bits, &kw);
		if (r == -2)
			continue;	/* \Recent cannot be stored; ignore as dovecot does */
		if (r == -3) {
			imapd_tagged(s, cmd->tag, "NO Too many keywords in this mailbox.");
			return;
		}
		if (r < 0) {
			imapd_tagged(s, cmd->tag, "BAD Invalid flag: %s", flags[i].str);
			return;
		}
		add_bits |= bits;
		if (kw >= 0)
			add_kw |= 1u << kw;
	}
	count = imapd_resolve_set(s, cmd->tag, &args[0], cmd->uid, &mask);
	if (count < 0)
		return;
	done = calloc(sel->n ? sel->n : 1, 1);
	modified = malloc((sel->n ? sel->n : 1) * sizeof(*modified));
	if (done == NULL || modified == NULL) {
		free(mask);
		free(done);
		free(modified);
		imapd_tagged(s, cmd->tag, "NO [SERVERBUG] Out of memory.");
		return;
	}
	/*
	 * Under the modseq lock, with the folder current (rescanned if need
	 * be): +FLAGS starts from the flags on disk (not a stale view) and
	 * UNCHANGEDSINCE compares with the latest modseq; then rename the
	 * files and record one new modseq.  The fsync of cur/ comes after the
	 * lock, before the tagged OK (imapd_select_flush).
	 */
	locked = imapd_sel_lock_current(sel);
	for (size_t i = 0; i < sel->n; i++) {
		struct imapd_msg *m = &sel->view[i];
		const struct maildir_msg *dm;
		uint64_t cur_ms;
		unsigned fl;
		uint32_t kw;
		if (!mask[i])
			continue;
		dm = (m->flags & MSG_GONE) ? NULL : maildir_folder_find(sel->folder, m->uid);
		if (dm == NULL) {
			m->flags |= MSG_GONE;
			failed = 1;
			continue;
		}
		cur_ms = imapd_ms_walk(sel, m->uid, &k, m->modseq);
		if (conditional && cur_ms > unchangedsince) {
			modified[nmodified++] = cmd->uid ? m->uid : (uint32_t)(i + 1);
			continue;
		}
		fl = dm->flags;
		kw = dm->keywords;
		if (mode > 0) {
			fl |= add_bits;
			kw |= add_kw;
		} else if (mode < 0) {
			fl &= ~add_bits;
			kw &= ~add_kw;
		} else {
			fl = add_bits;
			kw = add_kw;
		}
		if (fl != dm->flags || kw != dm->keywords) {
			if (maildir_msg_set_flags(sel->folder, m->uid, fl, kw, err, sizeof(err)) != 0) {
				if (maildir_folder_find(sel->folder, m->uid) == NULL) {
					m->flags |= MSG_GONE;
				} else {
					log_warn("store", "folder=%s uid=%u error=%s", log_q(sel->name),
						 m->uid, log_q(err));
				}
				failed = 1;
				continue;
			}
			if (locked && modseq_stage_set(sel->ms, m->uid, fl, kw) != 0)
				failed = 1;
			done[i] = 2;
		} else {
			done[i] = 1;
		}
		m->flags = (uint16_t)((m->flags & ~0xffu) | fl);
		m->keywords = kw;
		if (cur_ms > m->modseq)
			m->modseq = cur_ms;
	}
	if (locked) {
		if (modseq_commit(sel->ms, &newms, err, sizeof(err)) != 0) {
			/* the flags changed on disk: the next sync gives them a modseq */
			log_warn("modseq", "folder=%s error=%s", log_q(sel->name), log_q(err));
			failed = 1;
			newms = 0;
		}
		sel->highest = modseq_highest(sel->ms);
	}
	imapd_sel_unlock(sel, locked);
	for (size_t i = 0; i < sel->n; i++) {
		if (!done[i])
			continue;
		if (done[i] == 2 && newms != 0)
			sel->view[i].modseq = newms;
		if (!silent)
			imapd_report_fetch(s, i, cmd->uid, 1);
		else if (done[i] == 2 && imapd_condstore(s))
			imapd_report_fetch(s, i, cmd->uid, 0);	/* the new MODSEQ, RFC 7162 §3.1.3 */
	}
	free(mask);
	free(done);
	imapd_select_sync(s, 0);
	if (failed) {
		imapd_tagged(s, cmd->tag, "NO Some of the requested messages no longer exist.");
	} else if (nmodified > 0) {
		imap_string_clear(&s->out);
		imapd_add_uid_ranges(&s->out, modified, nmodified);
		imapd_tagged(s, cmd->tag, "OK [MODIFIED %s] Conditional STORE failed", s->out.buf);
	} else {
		imapd_tagged(s, cmd->tag, "OK Store completed.");
	}
	free(modified);
}

/* ---- COPY and MOVE ---------------------------------------------------- */

/* Copies message M of the selected folder into DIR; its new UID in *uid. */
static int copy_one(struct imapd *s, const struct imapd_msg *m, const char *dir,
		    const struct maildir_keywords *dkw, uint32_t *uid, char *err, size_t errlen)
{
	struct maildir_delivery *d = NULL;
	struct maildir_commit c = { 0 };
	struct stat st;
	uint32_t kw = 0;
	int fd, rc;

	rc = maildir_msg_open(s->sel->folder, m->uid, &fd, err, errlen);
	if (rc != 0)
		return rc;
	/* keywords are letters per folder: map names, creating them there */
	for (int k = 0; k < MAILDIR_KEYWORDS_MAX; k++) {
		int idx;
		if (!(m->keywords & (1u << k)) || s->sel->kw.names[k] == NULL)
			continue;
		idx = maildir_keywords_lookup(dkw, s->sel->kw.names[k]);
		if (idx < 0 && maildir_keywords_ensure(dir, s->sel->kw.names[k], &idx, err,
						       errlen) != 0)
			idx = -1;
		if (idx >= 0)
			kw |= 1u << idx;
	}
	c.flags = m->flags & 0xff;
	c.keywords = kw;
	c.mtime = fstat(fd, &st) == 0 ? st.st_mtime : 0;
	c.assign_uid = 1;
	c.to_cur = 1;
	rc = maildir_delivery_begin(dir, &d, err, errlen);
	if (rc == 0)
		rc = maildir_delivery_copy_fd(d, fd, -1, err, errlen);
	close(fd);
	if (rc != 0) {
		maildir_delivery_abort(d);
		return rc;
	}
	return maildir_delivery_commit(d, &c, uid, NULL, 0, err, errlen);
}

static void copy_or_move(struct imapd *s, const struct imap_command *cmd, int move)
{
	struct imapd_selected *sel = s->sel;
	struct maildir_keywords dkw;
	char name[1025], dir[4096], err[512];
	unsigned char *mask = NULL;
	uint32_t *src = NULL, *dst = NULL, uidvalidity = 0;
	size_t ncopied = 0;
	long count;
	int failed = 0;

	if (cmd->count != 2) {
		imapd_tagged(s, cmd->tag, "BAD %s needs a message set and a mailbox.",
			     move ? "MOVE" : "COPY");
		return;
	}
	if (move && sel->readonly) {
		imapd_tagged(s, cmd->tag, "NO Mailbox is read-only.");
		return;
	}
	if (imapd_mailbox_path(s, cmd->tag, &cmd->args[1], name, sizeof(name), dir,
			       sizeof(dir)) != 0)
		return;
	{
		struct maildir_folder *df = NULL;
		if (maildir_folder_open(dir, &df, err, sizeof(err)) != 0) {
			imapd_tagged(s, cmd->tag, "NO [TRYCREATE] Mailbox doesn't exist: %s", name);
			return;
		}
		if (maildir_folder_sync(df, 0, err, sizeof(err)) == 0)
			uidvalidity = df->uidvalidity;
		maildir_folder_free(df);
	}
	count = imapd_resolve_set(s, cmd->tag, &cmd->args[0], cmd->uid, &mask);
	if (count < 0)
		return;
	memset(&dkw, 0, sizeof(dkw));
	maildir_keywords_read(dir, &dkw, err, sizeof(err));
	src = calloc((size_t)count + 1, sizeof(*src));
	dst = calloc((size_t)count + 1, sizeof(*dst));
	if (src == NULL || dst == NULL) {
		free(mask);
		free(src);
		free(dst);
		maildir_keywords_clear(&dkw);
		imapd_tagged(s, cmd->tag, "NO [SERVERBUG] Out of memory.");
		return;
	}
	for (size_t i = 0; i < sel->n && !failed; i++) {
		if (!mask[i])
			continue;
		if (sel->view[i].flags & MSG_GONE) {
			failed = 2;
			break;
		}
		if (copy_one(s, &sel->view[i], dir, &dkw, &dst[ncopied], err, sizeof(err)) != 0) {
			log_warn(move ? "move" : "copy", "folder=%s uid=%u to=%s error=%s",
				 log_q(sel->name), sel->view[i].uid, log_q(name), log_q(err));
			failed = maildir_folder_find(sel->folder, sel->view[i].uid) ? 1 : 2;
			break;
		}
		src[ncopied++] = sel->view[i].uid;
	}
	maildir_keywords_clear(&dkw);
	if (failed) {
		/* all or nothing (RFC 3501 §6.4.7): remove what was copied */
		struct maildir_folder *df = NULL;
		if (ncopied > 0 && maildir_folder_open(dir, &df, err, sizeof(err)) == 0 &&
		    maildir_folder_sync(df, 0, err, sizeof(err)) == 0)
			for (size_t i = 0; i < ncopied; i++)
				maildir_msg_expunge(df, dst[i], err, sizeof(err));
		maildir_folder_free(df);
		imapd_tagged(s, cmd->tag, failed == 2 ?
			     "NO Some of the requested messages no longer exist." :
			     "NO [SERVERBUG] Copying failed. The administrator has been told.");
	} else {
		imap_string_clear(&s->out);
		if (ncopied > 0) {
			imap_string_addf(&s->out, "[COPYUID %u ", uidvalidity);
			imapd_add_uid_ranges(&s->out, src, ncopied);
			imap_string_addc(&s->out, ' ');
			imapd_add_uid_ranges(&s->out, dst, ncopied);
			imap_string_adds(&s->out, "] ");
		}
		if (move) {
			if (ncopied > 0)
				imapd_untagged(s, "OK %sMoved UIDs.", s->out.buf);
			for (size_t i = 0; i < sel->n; i++)
				if (mask[i] && maildir_msg_expunge(sel->folder, sel->view[i].uid, err,
								   sizeof(err)) != 0)
					log_warn("move", "folder=%s uid=%u error=%s", log_q(sel->name),
						 sel->view[i].uid, log_q(err));
			imapd_select_sync(s, 1);
			imapd_tagged(s, cmd->tag, "OK Move completed.");
		} else {
			imapd_select_sync(s, !cmd->uid ? 0 : 1);
			imapd_tagged(s, cmd->tag, "OK %sCopy completed.", s->out.buf);
		}
	}
	free(mask);
	free(src);
	free(dst);
}

void imapd_cmd_copy(struct imapd *s, const struct imap_command *cmd)
{
	copy_or_move(s, cmd, 0);
}

void imapd_cmd_move(struct imapd *s, const struct imap_command *cmd)
{
	copy_or_move(s, cmd, 1);
}

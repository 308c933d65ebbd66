/*
 * The selected mailbox: the client's view of the folder (sequence numbers),
 * untagged updates, and the commands that work on messages.
 *
 * The view is an array of struct imapd_msg sorted by UID; message number
 * n is view[n - 1].  It changes only in imapd_select_sync(), which merges
 * the store's index into it and tells the client: EXPUNGE for messages
 * gone (only when allowed, else they stay as "ghosts" until a later sync),
 * FETCH FLAGS for flag changes made elsewhere, EXISTS/RECENT for arrivals.
 */
#include "imapd-internal.h"

#include "bigmem.h"
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

int imapd_condstore(const struct imapd *s)
{
	return (s->enabled & IMAPD_EN_CONDSTORE) != 0;
}

int imapd_qresync(const struct imapd *s)
{
	return (s->enabled & IMAPD_EN_QRESYNC) != 0;
}

/* ---- flags ------------------------------------------------------------ */

const struct imapd_sysflag imapd_sysflags[IMAPD_NSYSFLAGS] = {
	{ MAILDIR_FLAG_REPLIED, "\\Answered" }, { MAILDIR_FLAG_FLAGGED, "\\Flagged" },
	{ MAILDIR_FLAG_TRASHED, "\\Deleted" }, { MAILDIR_FLAG_SEEN, "\\Seen" },
	{ MAILDIR_FLAG_DRAFT, "\\Draft" },
};

void imapd_load_keywords(struct imapd_selected *sel)
{
	char err[256];

	if (sel->kw_loaded)
		maildir_keywords_clear(&sel->kw);
	memset(&sel->kw, 0, sizeof(sel->kw));
	if (maildir_keywords_read(sel->dir, &sel->kw, err, sizeof(err)) != 0)
		log_warn("keywords", "dir=%s error=%s", log_q(sel->dir), log_q(err));
	sel->kw_loaded = 1;
}

/* Appends N in decimal (FETCH FLAGS of 100k messages: no printf per item). */
void imapd_add_u64(struct imap_string *o, uint64_t n)
{
	char b[24];
	size_t i = sizeof(b);

	do
		b[--i] = (char)('0' + n % 10);
	while ((n /= 10) != 0);
	imap_string_add(o, b + i, sizeof(b) - i);
}

/* Appends WORD, preceded by a space unless it is the first. */
static void add_word(struct imap_string *o, const char *word, int *first)
{
	if (!*first)
		imap_string_addc(o, ' ');
	imap_string_adds(o, word);
	*first = 0;
}

/* Appends "(\Seen $Forwarded ...)" for a message to s->out. */
void imapd_add_flags(struct imapd *s, const struct imapd_msg *m)
{
	struct imap_string *o = &s->out;
	int first = 1;

	imap_string_addc(o, '(');
	for (size_t i = 0; i < sizeof(imapd_sysflags) / sizeof(imapd_sysflags[0]); i++)
		if (m->flags & imapd_sysflags[i].bit)
			add_word(o, imapd_sysflags[i].name, &first);
	if (m->flags & IMAPD_FLAG_RECENT)
		add_word(o, "\\Recent", &first);
	/* P (passed) has no IMAP system flag: dovecot shows it as $Forwarded */
	if (m->flags & MAILDIR_FLAG_PASSED)
		add_word(o, "$Forwarded", &first);
	for (int k = 0; k < MAILDIR_KEYWORDS_MAX; k++)
		if ((m->keywords & (1u << k)) && s->sel->kw.names[k] != NULL)
			add_word(o, s->sel->kw.names[k], &first);
	imap_string_addc(o, ')');
}

static void write_flags_list(struct imapd *s)
{
	struct imap_string *o = &s->out;

	imap_string_clear(o);
	imap_string_adds(o, "\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded");
	for (int k = 0; k < MAILDIR_KEYWORDS_MAX; k++)
		if (s->sel->kw.names[k] != NULL)
			imap_string_addf(o, " %s", s->sel->kw.names[k]);
	imapd_untagged(s, "FLAGS (%s)", o->buf);
	imapd_untagged(s, "OK [PERMANENTFLAGS (%s%s)] Flags permitted.", s->sel->readonly ? "" : o->buf,
		       s->sel->readonly ? "" : " \\*");
}

/* ---- the view --------------------------------------------------------- */

static int view_reserve(struct imapd_selected *sel, size_t n)
{
	struct imapd_msg *v;
	size_t cap;

	if (n <= sel->cap)
		return 0;
	cap = sel->cap ? sel->cap * 2 : 256;
	while (cap < n)
		cap *= 2;
	v = bigmem_realloc(sel->view, cap * sizeof(*v));
	if (v == NULL)
		return -1;
	sel->view = v;
	sel->cap = cap;
	return 0;
}

/* ---- modseqs ---------------------------------------------------------- */

/* Takes the folder's modseq lock: 1, or 0 when modseqs are unavailable. */
int imapd_sel_lock(struct imapd_selected *sel)
{
	char err[512];

	if (sel->ms == NULL)
		return 0;
	if (modseq_lock(sel->ms, sel->folder->uidvalidity, err, sizeof(err)) != 0) {
		log_warn("modseq", "folder=%s error=%s", log_q(sel->name), log_q(err));
		return 0;
	}
	return 1;
}

void imapd_sel_unlock(struct imapd_selected *sel, int locked)
{
	if (locked)
		modseq_unlock(sel->ms);
}

static int folder_has_new(const struct maildir_folder *f)
{
	for (size_t i = 0; i < f->nmsgs; i++)
		if (f->msgs[i].in_new)
			return 1;
	return 0;
}

/*
 * Rescans the folder (claiming new/ when MOVE_NEW) and, when LOCKED,
 * records its changes in the modseq store.  0, or -1 (logged).
 */
int imapd_sel_refresh(struct imapd_selected *sel, int locked, int move_new)
{
	struct maildir_folder *f = sel->folder;
	char err[512];
	int rc = maildir_folder_sync(f, 0, err, sizeof(err));

	/* MOVE_NEW always rescans: only ask for it when new/ has mail */
	if (rc == 0 && move_new && folder_has_new(f))
		rc = maildir_folder_sync(f, MAILDIR_SYNC_MOVE_NEW, err, sizeof(err));
	if (rc != 0) {
		log_warn("sync", "folder=%s error=%s", log_q(sel->name), log_q(err));
		return -1;
	}
	if (locked) {
		if (modseq_sync(sel->ms, f->msgs, f->nmsgs, f->next_uid, err, sizeof(err)) != 0)
			log_warn("modseq", "folder=%s error=%s", log_q(sel->name), log_q(err));
		sel->highest = modseq_highest(sel->ms);
	}
	return 0;
}

/*
 * Catches up without the modseq lock: reads what was logged since the last
 * look, rescans the folder (in that order), and is done when the two agree.
 * Every session of this server records its own changes under the lock in
 * the same step as it makes them, so under load from our own sessions the
 * two agree and readers never queue for the lock.  0 then (sel->highest
 * updated); 1 when something on disk has no modseq yet - a change by
 * dovecot, an MUA, mail-pull, or one being made right now - or new/ has
 * mail to claim (unless ALLOW_NEW): only the lock may record that.
 */
static int sel_catch_up(struct imapd_selected *sel, int allow_new)
{
	struct maildir_folder *f = sel->folder;
	uint32_t uv = f->uidvalidity;
	char err[512];

	if (sel->ms == NULL || modseq_peek(sel->ms, uv, err, sizeof(err)) != 0 ||
	    maildir_folder_sync(f, 0, err, sizeof(err)) != 0 || f->uidvalidity != uv ||
	    (!allow_new && folder_has_new(f)) || !modseq_matches(sel->ms, f->msgs, f->nmsgs))
		return 1;
	sel->highest = modseq_highest(sel->ms);
	return 0;
}

/*
 * Takes the modseq lock for a change, with the folder as current as a
 * rescan under the lock would make it - but rescans under the lock only
 * when needed: when the catch-up just before found the folder and the log
 * in agreement and the lock read nothing newer, the scan is current (the
 * sessions of this server log every file change before they let the lock
 * go; a writer that does not lock can race a locked rescan just the same).
 * Returns what imapd_sel_lock() returns.
 */
int imapd_sel_lock_current(struct imapd_selected *sel)
{
	int agreed = sel_catch_up(sel, 1) == 0;
	uint64_t before = sel->ms != NULL ? modseq_highest(sel->ms) : 0;
	int locked = imapd_sel_lock(sel);

	if (!locked || !agreed || modseq_highest(sel->ms) != before)
		imapd_sel_refresh(sel, locked, 0);
	else
		sel->highest = modseq_highest(sel->ms);
	return locked;
}

/* The store's modseq of UID, walking *k forward (UIDs asked in ascending order). */
uint64_t imapd_ms_walk(const struct imapd_selected *sel, uint32_t uid, size_t *k, uint64_t dflt)
{
	const struct modseq_entry *e;
	size_t n;

	if (sel->ms == NULL)
		return dflt;
	e = modseq_entries(sel->ms, &n);
	while (*k < n && e[*k].uid < uid)
		(*k)++;
	return *k < n && e[*k].uid == uid ? e[*k].modseq : dflt;
}

/*
 * Writes "* n FETCH (UID u FLAGS (...) MODSEQ (m))" for view entry IDX:
 * UID when with_uid or QRESYNC is on, FLAGS when with_flags, MODSEQ once
 * CONDSTORE is on.
 */
void imapd_report_fetch(struct imapd *s, size_t idx, int with_uid, int with_flags)
{
	const struct imapd_msg *m = &s->sel->view[idx];
	struct imap_string *o = &s->out;
	int first = 1;

	imap_string_clear(o);
	imap_string_addf(o, "%zu FETCH (", idx + 1);
	if (with_uid || imapd_qresync(s)) {
		imap_string_addf(o, "UID %u", m->uid);
		first = 0;
	}
	if (with_flags) {
		imap_string_adds(o, first ? "FLAGS " : " FLAGS ");
		imapd_add_flags(s, m);
		first = 0;
	}
	if (imapd_condstore(s))
		imap_string_addf(o, "%sMODSEQ (%llu)", first ? "" : " ",
				 (unsigned long long)m->modseq);
	imap_string_addc(o, ')');
	imapd_untagged(s, "%s", o->buf);
}

/*
 * "* VANISHED (EARLIER) ..." for the UIDs expunged after SINCE, limited to
 * SET (NULL: all).  When the store has forgotten expunges that old, every
 * UID below UIDNEXT that is not in the view counts (RFC 7162 §3.2.5.2
 * allows reporting UIDs the client never knew).
 */
void imapd_report_vanished_earlier(struct imapd *s, uint64_t since, const struct imap_seqset *set)
{
	struct imapd_selected *sel = s->sel;
	struct imap_string *o = &s->out;
	uint32_t *v = NULL, star = sel->folder->next_uid ? sel->folder->next_uid - 1 : 0;
	size_t nv = 0, o_n = 0;
	int complete = sel->ms ? modseq_vanished_since(sel->ms, since, &v, &nv) : 0;

	if (complete < 0)
		return;
	imap_string_clear(o);
	if (complete) {
		size_t k = 0, w = 0;
		for (size_t i = 0; i < nv; i++) {
			/* skip UIDs still in the view (not yet reported gone to us) */
			while (k < sel->n && sel->view[k].uid < v[i])
				k++;
			if (k < sel->n && sel->view[k].uid == v[i] && !(sel->view[k].flags & MSG_GONE))
				continue;
			if (set != NULL && !imap_seqset_contains(set, v[i], star))
				continue;
			v[w++] = v[i];
		}
		imapd_add_uid_ranges(o, v, w);
		o_n = w;
	} else {
		/* the gaps between the UIDs present, intersected with SET */
		uint32_t prev = 0;
		for (size_t i = 0; i <= sel->n; i++) {
			uint32_t next;
			if (i < sel->n && (sel->view[i].flags & MSG_GONE))
				continue;
			next = i < sel->n ? sel->view[i].uid : star + 1;
			if (next > prev + 1) {
				uint32_t lo = prev + 1, hi = next - 1;
				if (set == NULL) {
					imap_string_addf(o, o_n++ ? ",%u:%u" : "%u:%u", lo, hi);
				} else {
					for (size_t r = 0; r < set->count; r++) {
						uint32_t a, b;
						imap_seq_range_resolve(&set->ranges[r], star, &a, &b);
						if (a < lo)
							a = lo;
						if (b > hi)
							b = hi;
						if (a <= b)
							imap_string_addf(o, o_n++ ? ",%u:%u" : "%u:%u", a, b);
					}
				}
			}
			prev = next;
		}
	}
	free(v);
	if (o_n > 0 && !o->failed)
		imapd_untagged(s, "VANISHED (EARLIER) %s", o->buf);
}

uint64_t imapd_select_highestmodseq(struct imapd *s)
{
	return s->sel ? s->sel->highest : 0;
}

uint64_t imapd_folder_highestmodseq(const char *dir, struct maildir_folder *f)
{
	struct modseq_store *ms = NULL;
	char err[512];
	uint64_t h = 0;

	if (modseq_open(dir, &ms, err, sizeof(err)) != 0 ||
	    modseq_lock(ms, f->uidvalidity, err, sizeof(err)) != 0) {
		log_warn("modseq", "dir=%s error=%s", log_q(dir), log_q(err));
		modseq_free(ms);
		return 0;
	}
	/* rescan under the lock: a scan from before it may predate a STORE */
	if (maildir_folder_sync(f, 0, err, sizeof(err)) == 0 &&
	    modseq_sync(ms, f->msgs, f->nmsgs, f->next_uid, err, sizeof(err)) == 0)
		h = modseq_highest(ms);
	else
		log_warn("modseq", "dir=%s error=%s", log_q(dir), log_q(err));
	modseq_unlock(ms);
	modseq_free(ms);
	return h;
}

/*
 * \Recent (RFC 3501 §2.3.2): a message is recent for the first session that
 * selects the folder after it arrived.  Dovecot keeps "first recent UID" in
 * its index; we keep ours in <folder>/mailkeep-recent (decimal).  A folder
 * created through IMAP starts at 1 (imapd_recent_init); one without the file
 * (made by another program) counts only new/ as recent, as dovecot does
 * when it builds a fresh index.  The file is a hint, not mail: replaced
 * atomically but not fsynced (a lost update only shows a message as recent
 * twice).
 */
static uint32_t recent_floor_read(const char *dir, uint32_t next_uid)
{
	char path[4200], buf[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%.4100s/mailkeep-recent", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return next_uid;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return next_uid;
	buf[n] = '\0';
	return (uint32_t)strtoul(buf, NULL, 10);
}

void imapd_recent_init(const char *dir)
{
	char path[4200];
	int fd;

	snprintf(path, sizeof(path), "%.4100s/mailkeep-recent", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	(void)!write(fd, "1\n", 2);
	close(fd);
}

static void recent_floor_write(struct imapd_selected *sel, uint32_t floor)
{
	char path[4200], tmp[4300], buf[32];
	int fd, n;

	if (sel->readonly || floor <= sel->recent_floor)
		return;
	sel->recent_floor = floor;
	snprintf(path, sizeof(path), "%.4100s/mailkeep-recent", sel->dir);
	snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long)getpid());
	n = snprintf(buf, sizeof(buf), "%u\n", floor);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (write(fd, buf, (size_t)n) != n || close(fd) != 0 || rename(tmp, path) != 0)
		unlink(tmp);
}

void imapd_select_sync(struct imapd *s, int allow_expunge)
{
	struct imapd_selected *sel = s->sel;
	const struct maildir_folder *f;
	size_t i, j, k = 0, out, nnew = 0, nrecent = 0;
	int kw_reloaded = 0, locked, r;

	if (sel == NULL)
		return;
	/*
	 * Nothing changed on disk and nobody logged a modseq: no lock (which
	 * serialises every session of the folder) and no rescan.  Changes the
	 * view has not reported yet are still reported below.
	 */
	if (maildir_folder_unchanged(sel->folder) && (sel->ms == NULL || !modseq_changed(sel->ms)) &&
	    (sel->readonly || !folder_has_new(sel->folder))) {
		r = 0;
	} else if (sel_catch_up(sel, sel->readonly) == 0) {
		r = 0;
	} else {
		locked = imapd_sel_lock(sel);
		r = imapd_sel_refresh(sel, locked, !sel->readonly);
		imapd_sel_unlock(sel, locked);
	}
	if (r != 0)
		return;
	f = sel->folder;
	if (view_reserve(sel, sel->n + f->nmsgs) != 0)
		return;

	/* pass 1: flag (and modseq) changes and disappearances, in place */
	for (i = 0, j = 0; i < sel->n; i++) {
		struct imapd_msg *m = &sel->view[i];
		while (j < f->nmsgs && f->msgs[j].uid < m->uid)
			j++;
		if (j < f->nmsgs && f->msgs[j].uid == m->uid) {
			unsigned fl = f->msgs[j].flags;
			uint64_t ms = imapd_ms_walk(sel, m->uid, &k, m->modseq);
			int changed = (m->flags & 0xff) != fl || m->keywords != f->msgs[j].keywords;
			if (!changed && ms <= m->modseq)
				continue;
			if (changed && (f->msgs[j].keywords & ~m->keywords) && !kw_reloaded) {
				imapd_load_keywords(sel);
				kw_reloaded = 1;
			}
			m->flags = (uint16_t)((m->flags & ~0xff) | fl);
			m->keywords = f->msgs[j].keywords;
			if (ms > m->modseq)
				m->modseq = ms;
			if (changed || imapd_condstore(s))
				imapd_report_fetch(s, i, 1, 1);
		} else {
			m->flags |= MSG_GONE;
		}
	}
	if (allow_expunge) {
		if (imapd_qresync(s)) {
			uint32_t *gone = malloc((sel->n ? sel->n : 1) * sizeof(*gone));
			size_t ng = 0;
			if (gone == NULL)
				return;
			for (i = 0; i < sel->n; i++)
				if (sel->view[i].flags & MSG_GONE)
					gone[ng++] = sel->view[i].uid;
			if (ng > 0) {
				imap_string_clear(&s->out);
				imapd_add_uid_ranges(&s->out, gone, ng);
				imapd_untagged(s, "VANISHED %s", s->out.buf);
			}
			free(gone);
		} else {
			/* from the highest number down so earlier numbers stay valid */
			for (i = sel->n; i-- > 0; )
				if (sel->view[i].flags & MSG_GONE)
					imapd_untagged(s, "%zu EXPUNGE", i + 1);
		}
		for (i = 0, out = 0; i < sel->n; i++)
			if (!(sel->view[i].flags & MSG_GONE))
				sel->view[out++] = sel->view[i];
		sel->n = out;
		sel->last_exists = (uint32_t)out;
	}
	/* pass 2: arrivals (UIDs above the highest we know) */
	{
		uint32_t top = sel->n ? sel->view[sel->n - 1].uid : 0;
		for (j = 0; j < f->nmsgs; j++) {
			if (f->msgs[j].uid <= top)
				continue;
			struct imapd_msg *m = &sel->view[sel->n++];
			m->uid = f->msgs[j].uid;
			m->flags = (uint16_t)(f->msgs[j].flags |
					      (m->uid >= sel->recent_floor || f->msgs[j].in_new ?
					       IMAPD_FLAG_RECENT : 0));
			if (m->flags & IMAPD_FLAG_RECENT)
				nrecent++;
			m->keywords = f->msgs[j].keywords;
			m->modseq = imapd_ms_walk(sel, m->uid, &k, sel->highest);
			if (m->keywords && !kw_reloaded) {
				imapd_load_keywords(sel);
				kw_reloaded = 1;
			}
			nnew++;
		}
	}
	if (kw_reloaded && !allow_expunge)
		; /* new keywords show up in FLAGS at the next full sync */
	else if (kw_reloaded)
		write_flags_list(s);
	if (nnew > 0)
		recent_floor_write(sel, f->next_uid);
	if (nnew > 0 || sel->n != sel->last_exists) {
		sel->last_exists = (uint32_t)sel->n;
		sel->last_recent += (uint32_t)nrecent;
		imapd_untagged(s, "%zu EXISTS", sel->n);
		imapd_untagged(s, "%u RECENT", sel->last_recent);
	}
}

const char *imapd_select_name(struct imapd *s)
{
	return s->sel ? s->sel->name : "";
}

int imapd_select_watch_fd(struct imapd *s)
{
	return s->sel ? s->sel->watch_fd : -1;
}

/* Makes the folder's deferred changes durable (maildir.h defer_fsync); 0 or -1 (logged). */
static int sel_flush(struct imapd_selected *sel)
{
	char err[512];

	if (sel->folder == NULL || sel->folder->dirty == 0)
		return 0;
	if (maildir_folder_flush(sel->folder, err, sizeof(err)) != 0) {
		log_warn("fsync", "folder=%s error=%s", log_q(sel->name), log_q(err));
		return -1;
	}
	return 0;
}

static void selected_free(struct imapd_selected *sel)
{
	if (sel == NULL)
		return;
	sel_flush(sel);
	if (sel->watch_fd >= 0)
		close(sel->watch_fd);
	if (sel->kw_loaded)
		maildir_keywords_clear(&sel->kw);
	modseq_free(sel->ms);
	maildir_folder_free(sel->folder);
	bigmem_free(sel->view);
	free(sel);
}

int imapd_select_flush(struct imapd *s)
{
	return s->sel != NULL ? sel_flush(s->sel) : 0;
}

void imapd_select_forget(struct imapd *s)
{
	selected_free(s->parked);
	s->parked = NULL;
}

/* Keeps what a SELECT of the same folder can reuse; frees the rest. */
static void selected_park(struct imapd *s, struct imapd_selected *sel)
{
	imapd_select_forget(s);
	sel_flush(sel);
	if (sel->folder == NULL || sel->ms == NULL) {
		selected_free(sel);
		return;
	}
	bigmem_free(sel->view);
	sel->view = NULL;
	sel->n = sel->cap = 0;
	if (sel->kw_loaded)
		maildir_keywords_clear(&sel->kw);
	sel->kw_loaded = 0;
	s->parked = sel;
}

/*
 * Takes the scan, modseq store and watch of the parked folder when it is
 * DIR and still the same folder on disk; frees the parked one.  1 if taken.
 */
static int selected_unpark(struct imapd *s, struct imapd_selected *sel, const char *dir)
{
	struct imapd_selected *p = s->parked;
	int taken = 0;

	if (p != NULL && strcmp(p->dir, dir) == 0 && modseq_same_folder(p->ms)) {
		sel->folder = p->folder;
		sel->ms = p->ms;
		sel->watch_fd = p->watch_fd;
		p->folder = NULL;
		p->ms = NULL;
		p->watch_fd = -1;
		taken = 1;
	}
	imapd_select_forget(s);
	return taken;
}

static int open_watch(const char *dir)
{
	char path[4200];
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	if (fd < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/new", dir);
	inotify_add_watch(fd, path, IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE);
	snprintf(path, sizeof(path), "%s/cur", dir);
	inotify_add_watch(fd, path, IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE);
	return fd;
}

int imapd_select_open(struct imapd *s, const char *tag, const char *name, const char *dir,
		      int readonly, const struct imapd_select_params *p)
{
	struct imapd_selected *sel = calloc(1, sizeof(*sel));
	struct maildir_status st;
	char err[512];
	size_t i, k = 0;
	uint32_t uv, kept_uv = 0;
	int locked;

	if (sel == NULL) {
		imapd_tagged(s, tag, "NO [SERVERBUG] Out of memory.");
		return -1;
	}
	sel->watch_fd = -1;
	snprintf(sel->name, sizeof(sel->name), "%s", name);
	snprintf(sel->dir, sizeof(sel->dir), "%s", dir);
	sel->readonly = readonly;
	if (selected_unpark(s, sel, dir)) {
		kept_uv = sel->folder->uidvalidity;
	} else {
		if (maildir_folder_open(dir, &sel->folder, err, sizeof(err)) != 0) {
			log_warn("select", "folder=%s error=%s", log_q(name), log_q(err));
			imapd_tagged(s, tag, "NO [SERVERBUG] Cannot open the mailbox. "
				     "The administrator has been told.");
			selected_free(sel);
			return -1;
		}
		if (modseq_open(dir, &sel->ms, err, sizeof(err)) != 0)
			log_warn("modseq", "folder=%s error=%s", log_q(name), log_q(err));
	}
	/*
	 * One scan, without the modseq lock when the folder and the log agree
	 * (sel_catch_up), else under it.  Both want UIDVALIDITY: take it from
	 * the uidlist's first line; a folder without one yet is scanned first.
	 */
	sel->folder->uidvalidity = imapd_read_uidvalidity(dir);
	if (sel->folder->uidvalidity == 0 &&
	    maildir_folder_sync(sel->folder, 0, err, sizeof(err)) != 0)
		goto fail;
	/* changes are made durable before their tagged OK (imapd_tagged) */
	sel->folder->defer_fsync = 1;
	uv = sel->folder->uidvalidity;
	if (uv == 0 || sel_catch_up(sel, 1) != 0) {
		locked = imapd_sel_lock(sel);
		if (imapd_sel_refresh(sel, locked, 0) != 0) {
			imapd_sel_unlock(sel, locked);
			snprintf(err, sizeof(err), "scan failed");
			goto fail;
		}
		if (locked && sel->folder->uidvalidity != uv) {
			/* recreated while we looked: take the lock again with the new value */
			imapd_sel_unlock(sel, locked);
			locked = imapd_sel_lock(sel);
			imapd_sel_refresh(sel, locked, 0);
		}
		imapd_sel_unlock(sel, locked);
	}
	if (sel->highest == 0)
		sel->highest = 1;
	imapd_load_keywords(sel);
	/* first look without moving: what is in new/ is \Recent for us */
	maildir_folder_status(sel->folder, &st);
	if (view_reserve(sel, sel->folder->nmsgs) != 0) {
		imapd_tagged(s, tag, "NO [SERVERBUG] Out of memory.");
		selected_free(sel);
		return -1;
	}
	sel->recent_floor = recent_floor_read(dir, sel->folder->next_uid);
	st.recent = 0;
	for (i = 0; i < sel->folder->nmsgs; i++) {
		const struct maildir_msg *m = &sel->folder->msgs[i];
		int recent = m->in_new || m->uid >= sel->recent_floor;
		sel->view[i].uid = m->uid;
		/* EXAMINE shows \Recent too, as dovecot does; only SELECT claims it */
		sel->view[i].flags = (uint16_t)(m->flags | (recent ? IMAPD_FLAG_RECENT : 0));
		st.recent += (uint32_t)recent;
		sel->view[i].keywords = m->keywords;
		sel->view[i].modseq = imapd_ms_walk(sel, m->uid, &k, sel->highest);
	}
	sel->n = sel->folder->nmsgs;
	sel->last_exists = (uint32_t)sel->n;
	sel->last_recent = st.recent;
	if (sel->watch_fd < 0)
		sel->watch_fd = open_watch(dir);

	if (s->sel != NULL)
		imapd_select_close(s, 0);
	/* envelopes are kept by UID: still right for the same folder and UIDVALIDITY */
	if (kept_uv == 0 || kept_uv != sel->folder->uidvalidity)
		imapd_fetch_cache_reset();
	s->sel = sel;
	s->state = IMAPD_SELECTED;
	if (p != NULL && (p->condstore || p->qresync))
		s->enabled |= IMAPD_EN_CONDSTORE;
	write_flags_list(s);
	imapd_untagged(s, "%zu EXISTS", sel->n);
	imapd_untagged(s, "%u RECENT", sel->last_recent);
	for (i = 0; i < sel->n; i++)
		if (!(sel->view[i].flags & MAILDIR_FLAG_SEEN)) {
			imapd_untagged(s, "OK [UNSEEN %zu] First unseen.", i + 1);
			break;
		}
	imapd_untagged(s, "OK [UIDVALIDITY %u] UIDs valid", sel->folder->uidvalidity);
	imapd_untagged(s, "OK [UIDNEXT %u] Predicted next UID", sel->folder->next_uid);
	imapd_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest", (unsigned long long)sel->highest);
	if (p != NULL && p->qresync && p->uidvalidity == sel->folder->uidvalidity) {
		const struct imap_seqset *known = p->has_known ? &p->known : NULL;
		uint32_t star = sel->n ? sel->view[sel->n - 1].uid : 0;
		imapd_report_vanished_earlier(s, p->modseq, known);
		for (i = 0; i < sel->n; i++)
			if (sel->view[i].modseq > p->modseq &&
			    (known == NULL || imap_seqset_contains(known, sel->view[i].uid, star)))
				imapd_report_fetch(s, i, 1, 1);
	}
	imapd_tagged(s, tag, "OK [%s] %s completed", readonly ? "READ-ONLY" : "READ-WRITE",
		     readonly ? "Examine" : "Select");
	/* claim \Recent: later sessions see these as old; move new/ to cur/ */
	recent_floor_write(sel, sel->folder->next_uid);
	if (!readonly && st.recent > 0 &&
	    maildir_folder_sync(sel->folder, MAILDIR_SYNC_MOVE_NEW, err, sizeof(err)) != 0)
		log_warn("sync", "folder=%s error=%s", log_q(name), log_q(err));
	return 0;
fail:
	log_warn("select", "folder=%s error=%s", log_q(name), log_q(err));
	imapd_tagged(s, tag, "NO [SERVERBUG] Cannot open the mailbox. "
		     "The administrator has been told.");
	selected_free(sel);
	return -1;
}

/*
 * Expunges every \Deleted message of the view; with the modseq lock held
 * (LOCKED), records the expunges in the same step.
 */
static int expunge_deleted(struct imapd *s, const struct imap_seqset *uids, int locked)
{
	struct imapd_selected *sel = s->sel;
	char err[512];
	int failed = 0, staged = 0;

	for (size_t i = 0; i < sel->n; i++) {
		struct imapd_msg *m = &sel->view[i];
		if (!(m->flags & MAILDIR_FLAG_TRASHED) || (m->flags & MSG_GONE))
			continue;
		if (uids != NULL && !imap_seqset_contains(uids, m->uid, sel->view[sel->n - 1].uid))
			continue;
		if (maildir_msg_expunge(sel->folder, m->uid, err, sizeof(err)) != 0 &&
		    maildir_folder_find(sel->folder, m->uid) != NULL) {
			log_warn("expunge", "folder=%s uid=%u error=%s", log_q(sel->name), m->uid,
				 log_q(err));
			failed = 1;
		} else if (locked && modseq_stage_expunge(sel->ms, m->uid) == 0) {
			staged = 1;
		}
	}
	if (staged) {
		if (modseq_commit(sel->ms, NULL, err, sizeof(err)) != 0)
			log_warn("modseq", "folder=%s error=%s", log_q(sel->name), log_q(err));
		sel->highest = modseq_highest(sel->ms);
	}
	return failed ? -1 : 0;
}

void imapd_select_close(struct imapd *s, int expunge)
{
	if (s->sel == NULL)
		return;
	if (expunge && !s->sel->readonly)
		expunge_deleted(s, NULL, 0);
	selected_park(s, s->sel);
	s->sel = NULL;
	s->state = IMAPD_AUTH;
}

/* ---- simple commands ------------------------------------------------- */

void imapd_cmd_check(struct imapd *s, const struct imap_command *cmd)
{
	imapd_select_sync(s, 1);
	imapd_tagged(s, cmd->tag, "OK Check completed.");
}

void imapd_cmd_close(struct imapd *s, const struct imap_command *cmd)
{
	struct imapd_selected *sel = s->sel;
	uint64_t highest;
	int locked;

	if (!imapd_qresync(s)) {
		imapd_select_close(s, 1);
		imapd_tagged(s, cmd->tag, "OK Close completed.");
		return;
	}
	/* with QRESYNC the client learns the modseq of its expunges (as dovecot) */
	locked = imapd_sel_lock_current(sel);
	if (!sel->readonly && sel->n > 0)
		expunge_deleted(s, NULL, locked);
	imapd_sel_unlock(sel, locked);
	highest = sel->highest;
	imapd_select_close(s, 0);
	imapd_tagged(s, cmd->tag, "OK [HIGHESTMODSEQ %llu] Close completed.",
		     (unsigned long long)highest);
}

void imapd_cmd_unselect(struct imapd *s, const struct imap_command *cmd)
{
	imapd_select_close(s, 0);
	imapd_tagged(s, cmd->tag, "OK Unselect completed.");
}

void imapd_cmd_expunge(struct imapd *s, const struct imap_command *cmd)
{
	struct imap_seqset uids = { 0 };
	int rc;

	if (s->sel->readonly) {
		imapd_tagged(s, cmd->tag, "NO Mailbox is read-only.");
		return;
	}
	if (cmd->uid) {
		if (cmd->count != 1 || cmd->args[0].type != IMAP_ARG_ATOM ||
		    imap_seqset_parse(cmd->args[0].str, 100000, 0, &uids) != 0) {
			imapd_tagged(s, cmd->tag, "BAD UID EXPUNGE needs a UID set.");
			return;
		}
	} else if (cmd->count != 0) {
		imapd_tagged(s, cmd->tag, "BAD EXPUNGE takes no arguments.");
		return;
	}
	rc = 0;
	if (s->sel->n > 0) {
		/* the expunges are logged in the same step as the unlinks: the other
		 * sessions' lock-free catch-up never finds files gone but not logged */
		int locked = imapd_sel_lock_current(s->sel);
		rc = expunge_deleted(s, cmd->uid ? &uids : NULL, locked);
		imapd_sel_unlock(s->sel, locked);
	}
	imap_seqset_free(&uids);
	imapd_select_sync(s, 1);
	if (rc != 0)
		imapd_tagged(s, cmd->tag, "NO [SERVERBUG] Some messages could not be expunged.");
	else if (imapd_qresync(s))
		imapd_tagged(s, cmd->tag, "OK [HIGHESTMODSEQ %llu] Expunge completed.",
			     (unsigned long long)s->sel->highest);
	else
		imapd_tagged(s, cmd->tag, "OK Expunge completed.");
}

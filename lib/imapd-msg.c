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
#include "imapd.h"

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

#define MSG_GONE (1 << 9)	/* expunged on disk, not yet reported */

struct imapd_selected {
	char name[1025];
	char dir[4096];
	int readonly;
	struct maildir_folder *folder;
	struct modseq_store *ms;	/* NULL: modseqs unavailable (logged) */
	uint64_t highest;		/* HIGHESTMODSEQ as last synced */
	struct imapd_msg *view;
	size_t n, cap;
	uint32_t last_exists;		/* EXISTS last reported */
	uint32_t last_recent;
	uint32_t recent_floor;		/* UIDs >= this are \Recent for us (mailkeep-recent) */
	int watch_fd;
	struct maildir_keywords kw;
	int kw_loaded;
};

static void add_uid_ranges(struct imap_string *o, const uint32_t *v, size_t n);

static int condstore(const struct imapd *s)
{
	return (s->enabled & IMAPD_EN_CONDSTORE) != 0;
}

static int qresync(const struct imapd *s)
{
	return (s->enabled & IMAPD_EN_QRESYNC) != 0;
}

/* ---- flags ------------------------------------------------------------ */

static const struct {
	unsigned bit;
	const char *name;
} sysflags[] = {
	{ MAILDIR_FLAG_REPLIED, "\\Answered" }, { MAILDIR_FLAG_FLAGGED, "\\Flagged" },
	{ MAILDIR_FLAG_TRASHED, "\\Deleted" }, { MAILDIR_FLAG_SEEN, "\\Seen" },
	{ MAILDIR_FLAG_DRAFT, "\\Draft" },
};

static void load_keywords(struct imapd_selected *sel)
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
static void add_u64(struct imap_string *o, uint64_t n)
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
static void add_flags(struct imapd *s, const struct imapd_msg *m)
{
	struct imap_string *o = &s->out;
	int first = 1;

	imap_string_addc(o, '(');
	for (size_t i = 0; i < sizeof(sysflags) / sizeof(sysflags[0]); i++)
		if (m->flags & sysflags[i].bit)
			add_word(o, sysflags[i].name, &first);
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
	v = realloc(sel->view, cap * sizeof(*v));
	if (v == NULL)
		return -1;
	sel->view = v;
	sel->cap = cap;
	return 0;
}

/* ---- modseqs ---------------------------------------------------------- */

/* Takes the folder's modseq lock: 1, or 0 when modseqs are unavailable. */
static int sel_lock(struct imapd_selected *sel)
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

static void sel_unlock(struct imapd_selected *sel, int locked)
{
	if (locked)
		modseq_unlock(sel->ms);
}

/*
 * Rescans the folder (claiming new/ when MOVE_NEW) and, when LOCKED,
 * records its changes in the modseq store.  0, or -1 (logged).
 */
static int sel_refresh(struct imapd_selected *sel, int locked, int move_new)
{
	struct maildir_folder *f = sel->folder;
	char err[512];
	int rc = maildir_folder_sync(f, 0, err, sizeof(err));

	if (rc == 0 && move_new) {
		/* MOVE_NEW always rescans: only ask for it when new/ has mail */
		for (size_t i = 0; i < f->nmsgs; i++)
			if (f->msgs[i].in_new) {
				rc = maildir_folder_sync(f, MAILDIR_SYNC_MOVE_NEW, err, sizeof(err));
				break;
			}
	}
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

/* The store's modseq of UID, walking *k forward (UIDs asked in ascending order). */
static uint64_t ms_walk(const struct imapd_selected *sel, uint32_t uid, size_t *k, uint64_t dflt)
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
static void report_fetch(struct imapd *s, size_t idx, int with_uid, int with_flags)
{
	const struct imapd_msg *m = &s->sel->view[idx];
	struct imap_string *o = &s->out;
	int first = 1;

	imap_string_clear(o);
	imap_string_addf(o, "%zu FETCH (", idx + 1);
	if (with_uid || qresync(s)) {
		imap_string_addf(o, "UID %u", m->uid);
		first = 0;
	}
	if (with_flags) {
		imap_string_adds(o, first ? "FLAGS " : " FLAGS ");
		add_flags(s, m);
		first = 0;
	}
	if (condstore(s))
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
static void report_vanished_earlier(struct imapd *s, uint64_t since, const struct imap_seqset *set)
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
		add_uid_ranges(o, v, w);
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
	locked = sel_lock(sel);
	r = sel_refresh(sel, locked, !sel->readonly);
	sel_unlock(sel, locked);
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
			uint64_t ms = ms_walk(sel, m->uid, &k, m->modseq);
			int changed = (m->flags & 0xff) != fl || m->keywords != f->msgs[j].keywords;
			if (!changed && ms <= m->modseq)
				continue;
			if (changed && (f->msgs[j].keywords & ~m->keywords) && !kw_reloaded) {
				load_keywords(sel);
				kw_reloaded = 1;
			}
			m->flags = (uint16_t)((m->flags & ~0xff) | fl);
			m->keywords = f->msgs[j].keywords;
			if (ms > m->modseq)
				m->modseq = ms;
			if (changed || condstore(s))
				report_fetch(s, i, 1, 1);
		} else {
			m->flags |= MSG_GONE;
		}
	}
	if (allow_expunge) {
		if (qresync(s)) {
			uint32_t *gone = malloc((sel->n ? sel->n : 1) * sizeof(*gone));
			size_t ng = 0;
			if (gone == NULL)
				return;
			for (i = 0; i < sel->n; i++)
				if (sel->view[i].flags & MSG_GONE)
					gone[ng++] = sel->view[i].uid;
			if (ng > 0) {
				imap_string_clear(&s->out);
				add_uid_ranges(&s->out, gone, ng);
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
			m->modseq = ms_walk(sel, m->uid, &k, sel->highest);
			if (m->keywords && !kw_reloaded) {
				load_keywords(sel);
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

static void selected_free(struct imapd_selected *sel)
{
	if (sel == NULL)
		return;
	if (sel->watch_fd >= 0)
		close(sel->watch_fd);
	if (sel->kw_loaded)
		maildir_keywords_clear(&sel->kw);
	modseq_free(sel->ms);
	maildir_folder_free(sel->folder);
	free(sel->view);
	free(sel);
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
	uint32_t uv;
	int locked;

	if (sel == NULL) {
		imapd_tagged(s, tag, "NO [SERVERBUG] Out of memory.");
		return -1;
	}
	sel->watch_fd = -1;
	snprintf(sel->name, sizeof(sel->name), "%s", name);
	snprintf(sel->dir, sizeof(sel->dir), "%s", dir);
	sel->readonly = readonly;
	if (maildir_folder_open(dir, &sel->folder, err, sizeof(err)) != 0) {
		log_warn("select", "folder=%s error=%s", log_q(name), log_q(err));
		imapd_tagged(s, tag, "NO [SERVERBUG] Cannot open the mailbox. "
			     "The administrator has been told.");
		selected_free(sel);
		return -1;
	}
	if (modseq_open(dir, &sel->ms, err, sizeof(err)) != 0)
		log_warn("modseq", "folder=%s error=%s", log_q(name), log_q(err));
	/*
	 * One scan, under the modseq lock, which wants UIDVALIDITY: take it from
	 * the uidlist's first line; a folder without one yet is scanned first.
	 */
	sel->folder->uidvalidity = imapd_read_uidvalidity(dir);
	if (sel->folder->uidvalidity == 0 &&
	    maildir_folder_sync(sel->folder, 0, err, sizeof(err)) != 0)
		goto fail;
	uv = sel->folder->uidvalidity;
	locked = sel_lock(sel);
	if (sel_refresh(sel, locked, 0) != 0) {
		sel_unlock(sel, locked);
		snprintf(err, sizeof(err), "scan failed");
		goto fail;
	}
	if (locked && sel->folder->uidvalidity != uv) {
		/* recreated while we looked: take the lock again with the new value */
		sel_unlock(sel, locked);
		locked = sel_lock(sel);
		sel_refresh(sel, locked, 0);
	}
	sel_unlock(sel, locked);
	if (sel->highest == 0)
		sel->highest = 1;
	load_keywords(sel);
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
		sel->view[i].modseq = ms_walk(sel, m->uid, &k, sel->highest);
	}
	sel->n = sel->folder->nmsgs;
	sel->last_exists = (uint32_t)sel->n;
	sel->last_recent = st.recent;
	sel->watch_fd = open_watch(dir);

	if (s->sel != NULL)
		imapd_select_close(s, 0);
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
		report_vanished_earlier(s, p->modseq, known);
		for (i = 0; i < sel->n; i++)
			if (sel->view[i].modseq > p->modseq &&
			    (known == NULL || imap_seqset_contains(known, sel->view[i].uid, star)))
				report_fetch(s, i, 1, 1);
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

/* Expunges every \Deleted message of the view (silently if !report). */
static int expunge_deleted(struct imapd *s, const struct imap_seqset *uids, int report)
{
	struct imapd_selected *sel = s->sel;
	char err[512];
	int failed = 0;

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
		}
	}
	(void)report;
	return failed ? -1 : 0;
}

void imapd_select_close(struct imapd *s, int expunge)
{
	if (s->sel == NULL)
		return;
	if (expunge && !s->sel->readonly)
		expunge_deleted(s, NULL, 0);
	selected_free(s->sel);
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

	if (!qresync(s)) {
		imapd_select_close(s, 1);
		imapd_tagged(s, cmd->tag, "OK Close completed.");
		return;
	}
	/* with QRESYNC the client learns the modseq of its expunges (as dovecot) */
	if (!sel->readonly && sel->n > 0)
		expunge_deleted(s, NULL, 0);
	locked = sel_lock(sel);
	sel_refresh(sel, locked, 0);
	sel_unlock(sel, locked);
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
	rc = s->sel->n ? expunge_deleted(s, cmd->uid ? &uids : NULL, 1) : 0;
	imap_seqset_free(&uids);
	imapd_select_sync(s, 1);
	if (rc != 0)
		imapd_tagged(s, cmd->tag, "NO [SERVERBUG] Some messages could not be expunged.");
	else if (qresync(s))
		imapd_tagged(s, cmd->tag, "OK [HIGHESTMODSEQ %llu] Expunge completed.",
			     (unsigned long long)s->sel->highest);
	else
		imapd_tagged(s, cmd->tag, "OK Expunge completed.");
}

/* ---- message sets ----------------------------------------------------- */

/*
 * Marks in mask[] (one byte per view entry) the messages ARG names, by
 * UID or by sequence number.  Returns the count, or -1 after answering BAD.
 * A sequence number beyond EXISTS is an error (RFC 3501 §9); UIDs that do
 * not exist are silently skipped.
 */
static long resolve_set(struct imapd *s, const char *tag, const struct imap_arg *arg, int uid,
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
static void add_uid_ranges(struct imap_string *o, const uint32_t *v, size_t n)
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
		for (size_t i = 0; i < sizeof(sysflags) / sizeof(sysflags[0]); i++)
			if (strcasecmp(w, sysflags[i].name) == 0) {
				*bits = sysflags[i].bit;
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
		load_keywords(s->sel);
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
	count = resolve_set(s, cmd->tag, &args[0], cmd->uid, &mask);
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
	 * Under the modseq lock: rescan, so that +FLAGS starts from the flags
	 * on disk (not a stale view) and UNCHANGEDSINCE compares with the
	 * latest modseq; then rename the files and record one new modseq.
	 */
	locked = sel_lock(sel);
	sel_refresh(sel, locked, 0);
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
		cur_ms = ms_walk(sel, m->uid, &k, m->modseq);
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
	sel_unlock(sel, locked);
	for (size_t i = 0; i < sel->n; i++) {
		if (!done[i])
			continue;
		if (done[i] == 2 && newms != 0)
			sel->view[i].modseq = newms;
		if (!silent)
			report_fetch(s, i, cmd->uid, 1);
		else if (done[i] == 2 && condstore(s))
			report_fetch(s, i, cmd->uid, 0);	/* the new MODSEQ, RFC 7162 §3.1.3 */
	}
	free(mask);
	free(done);
	imapd_select_sync(s, 0);
	if (failed) {
		imapd_tagged(s, cmd->tag, "NO Some of the requested messages no longer exist.");
	} else if (nmodified > 0) {
		imap_string_clear(&s->out);
		add_uid_ranges(&s->out, modified, nmodified);
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
	count = resolve_set(s, cmd->tag, &cmd->args[0], cmd->uid, &mask);
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
			add_uid_ranges(&s->out, src, ncopied);
			imap_string_addc(&s->out, ' ');
			add_uid_ranges(&s->out, dst, ncopied);
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

/* ---- FETCH ------------------------------------------------------------ */

static const struct mime_limits fetch_mime_limits = {
	.max_depth = 50,
	.max_parts = 10000,
	.max_header = 1 << 20,
};

/* An opened message: the file mapped, parsed on demand. */
struct fetch_msg {
	int fd;
	struct stat st;
	const char *data;
	size_t len;
	struct mime_message *mime;
};

static void fetch_msg_close(struct fetch_msg *fm)
{
	mime_message_free(fm->mime);
	if (fm->data != NULL && fm->len > 0)
		munmap((void *)(uintptr_t)fm->data, fm->len);
	if (fm->fd >= 0)
		close(fm->fd);
	memset(fm, 0, sizeof(*fm));
	fm->fd = -1;
}

static int fetch_msg_open(struct imapd *s, uint32_t uid, struct fetch_msg *fm, int parse)
{
	char err[512];

	if (fm->fd < 0) {
		if (maildir_msg_open(s->sel->folder, uid, &fm->fd, err, sizeof(err)) != 0)
			return -1;
		if (fstat(fm->fd, &fm->st) != 0)
			return -1;
		fm->len = (size_t)fm->st.st_size;
		if (fm->len > 0) {
			void *p = mmap(NULL, fm->len, PROT_READ, MAP_PRIVATE, fm->fd, 0);
			if (p == MAP_FAILED)
				return -1;
			fm->data = p;
		} else {
			fm->data = "";
		}
	}
	if (parse && fm->mime == NULL) {
		fm->mime = mime_parse(fm->data, fm->len, &fetch_mime_limits);
		if (fm->mime == NULL)
			return -1;
	}
	return 0;
}

/* The CRLF size of a message: ,W= from its name when present, else counted. */
static uint64_t msg_vsize(struct imapd *s, uint32_t uid, struct fetch_msg *fm)
{
	const struct maildir_msg *m = maildir_folder_find(s->sel->folder, uid);
	struct maildir_name mn;

	if (m != NULL && maildir_name_parse(m->fname, strlen(m->fname), &mn) == 0 && mn.vsize >= 0)
		return (uint64_t)mn.vsize;
	if (fetch_msg_open(s, uid, fm, 1) != 0)
		return 0;
	return mime_message_vsize(fm->mime);
}

/* Writes the whole message as a literal, LF -> CRLF, straight from the map. */
static void write_whole(struct imapd *s, struct fetch_msg *fm, uint64_t vsize)
{
	const char *p = fm->data, *end = fm->data + fm->len;

	conn_printf(s->conn, "{%llu}\r\n", (unsigned long long)vsize);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL) {
			conn_write(s->conn, p, (size_t)(end - p));
			break;
		}
		if (nl > p && nl[-1] == '\r') {
			conn_write(s->conn, p, (size_t)(nl + 1 - p));
		} else {
			conn_write(s->conn, p, (size_t)(nl - p));
			conn_write(s->conn, "\r\n", 2);
		}
		p = nl + 1;
	}
}

/* One message's FETCH response.  Returns 0, or -1 if it vanished. */
static int fetch_one(struct imapd *s, size_t idx, const struct imap_fetch *f, int uid_cmd,
		     int set_seen, struct imap_string *body)
{
	struct imapd_msg *m = &s->sel->view[idx];
	struct imap_string *o = &s->out;
	struct fetch_msg fm = { .fd = -1 };
	int need_file = (f->items & (IMAP_FETCH_INTERNALDATE | IMAP_FETCH_ENVELOPE |
				     IMAP_FETCH_BODY | IMAP_FETCH_BODYSTRUCTURE |
				     IMAP_FETCH_RFC822 | IMAP_FETCH_RFC822_HEADER |
				     IMAP_FETCH_RFC822_TEXT)) || f->nsections > 0;
	int need_mime = (f->items & (IMAP_FETCH_ENVELOPE | IMAP_FETCH_BODY |
				     IMAP_FETCH_BODYSTRUCTURE | IMAP_FETCH_RFC822_HEADER |
				     IMAP_FETCH_RFC822_TEXT)) || f->nsections > 0;
	int first = 1;

	if (need_file && fetch_msg_open(s, m->uid, &fm, need_mime) != 0) {
		fetch_msg_close(&fm);
		return -1;
	}
#define SEP() do { if (!first) imap_string_addc(o, ' '); first = 0; } while (0)
	imap_string_clear(o);
	imap_string_adds(o, "* ");
	add_u64(o, idx + 1);
	imap_string_adds(o, " FETCH (");
	if ((f->items & IMAP_FETCH_UID) || uid_cmd) {
		SEP();
		imap_string_adds(o, "UID ");
		add_u64(o, m->uid);
	}
	if ((f->items & IMAP_FETCH_FLAGS) || set_seen) {
		SEP();
		imap_string_adds(o, "FLAGS ");
		add_flags(s, m);
	}
	if ((f->items & IMAP_FETCH_MODSEQ) || (set_seen && condstore(s))) {
		SEP();
		imap_string_adds(o, "MODSEQ (");
		add_u64(o, m->modseq);
		imap_string_addc(o, ')');
	}
	if (f->items & IMAP_FETCH_INTERNALDATE) {
		char d[27];
		imap_date_format_datetime(d, fm.st.st_mtime, imap_date_local_offset(fm.st.st_mtime));
		SEP();
		imap_string_addf(o, "INTERNALDATE \"%s\"", d);
	}
	if (f->items & IMAP_FETCH_RFC822_SIZE) {
		SEP();
		imap_string_addf(o, "RFC822.SIZE %llu", (unsigned long long)msg_vsize(s, m->uid, &fm));
	}
	if (f->items & IMAP_FETCH_ENVELOPE) {
		SEP();
		imap_string_adds(o, "ENVELOPE ");
		mime_write_envelope(o, fm.mime, fm.mime->root);
	}
	if (f->items & IMAP_FETCH_BODY) {
		SEP();
		imap_string_adds(o, "BODY ");
		mime_write_bodystructure(o, fm.mime, fm.mime->root, 0);
	}
	if (f->items & IMAP_FETCH_BODYSTRUCTURE) {
		SEP();
		imap_string_adds(o, "BODYSTRUCTURE ");
		mime_write_bodystructure(o, fm.mime, fm.mime->root, 1);
	}
	if (f->items & IMAP_FETCH_RFC822_HEADER) {
		static const struct mime_section hdr = { .kind = MIME_SECTION_HEADER };
		imap_string_clear(body);
		mime_write_section(body, fm.mime, &hdr, 0, UINT64_MAX, NULL);
		SEP();
		imap_string_addf(o, "RFC822.HEADER {%zu}\r\n", body->len);
		imap_string_add(o, body->buf, body->len);
	}
	if (f->items & IMAP_FETCH_RFC822_TEXT) {
		static const struct mime_section txt = { .kind = MIME_SECTION_TEXT };
		imap_string_clear(body);
		mime_write_section(body, fm.mime, &txt, 0, UINT64_MAX, NULL);
		SEP();
		imap_string_addf(o, "RFC822.TEXT {%zu}\r\n", body->len);
		imap_string_add(o, body->buf, body->len);
	}
	/* flush what we have: bodies may be large and go out as they are made */
	conn_write(s->conn, o->buf, o->len);
	imap_string_clear(o);
	if (f->items & IMAP_FETCH_RFC822) {
		conn_puts(s->conn, first ? "RFC822 " : " RFC822 ");
		first = 0;
		write_whole(s, &fm, msg_vsize(s, m->uid, &fm));
	}
	for (size_t i = 0; i < f->nsections; i++) {
		const struct imap_fetch_section *sec = &f->sections[i];
		conn_puts(s->conn, first ? "" : " ");
		first = 0;
		conn_puts(s->conn, sec->name);
		conn_puts(s->conn, " ");
		if (sec->section.kind == MIME_SECTION_BODY && sec->section.npath == 0 &&
		    !sec->has_partial) {
			write_whole(s, &fm, msg_vsize(s, m->uid, &fm));
			continue;
		}
		imap_string_clear(body);
		if (mime_write_section(body, fm.mime, &sec->section,
				       sec->has_partial ? sec->partial_offset : 0,
				       sec->has_partial ? sec->partial_max : UINT64_MAX, NULL) != 0) {
			if (body->failed) {
				fetch_msg_close(&fm);
				return -2;
			}
			conn_puts(s->conn, "{0}\r\n");	/* a missing part: empty, as dovecot */
			continue;
		}
		conn_printf(s->conn, "{%zu}\r\n", body->len);
		conn_write(s->conn, body->buf, body->len);
	}
	conn_puts(s->conn, ")\r\n");
#undef SEP
	fetch_msg_close(&fm);
	if (o->failed) {
		imap_string_clear(o);
		return -2;
	}
	return 0;
}

/*
 * Sets \Seen on the unseen messages of MASK that a FETCH of bodies opens,
 * as one change under the modseq lock; marks them in seen[].
 */
static void fetch_set_seen(struct imapd *s, const unsigned char *mask, unsigned char *seen)
{
	struct imapd_selected *sel = s->sel;
	uint64_t newms = 0;
	size_t k = 0;
	char err[512];
	int locked = sel_lock(sel), any = 0;

	sel_refresh(sel, locked, 0);
	for (size_t i = 0; i < sel->n; i++) {
		struct imapd_msg *m = &sel->view[i];
		const struct maildir_msg *dm;
		if (!mask[i] || (m->flags & (MSG_GONE | MAILDIR_FLAG_SEEN)))
			continue;
		dm = maildir_folder_find(sel->folder, m->uid);
		if (dm == NULL)
			continue;
		if (!(dm->flags & MAILDIR_FLAG_SEEN)) {
			unsigned fl = dm->flags | MAILDIR_FLAG_SEEN;
			if (maildir_msg_set_flags(sel->folder, m->uid, fl, dm->keywords, err,
						  sizeof(err)) != 0)
				continue;
			if (locked && modseq_stage_set(sel->ms, m->uid, fl, dm->keywords) == 0) {
				any = 1;
				seen[i] = 2;
			}
		}
		/* already seen on disk (someone else was first): show it, no new modseq */
		if (!seen[i])
			seen[i] = 1;
		m->flags = (uint16_t)((m->flags & ~0xffu) | dm->flags);
		m->keywords = dm->keywords;
		m->modseq = ms_walk(sel, m->uid, &k, m->modseq);
	}
	if (locked && any) {
		if (modseq_commit(sel->ms, &newms, err, sizeof(err)) != 0) {
			log_warn("modseq", "folder=%s error=%s", log_q(sel->name), log_q(err));
			newms = 0;
		}
		sel->highest = modseq_highest(sel->ms);
	}
	sel_unlock(sel, locked);
	if (newms != 0)
		for (size_t i = 0; i < sel->n; i++)
			if (seen[i] == 2)
				sel->view[i].modseq = newms;
}

void imapd_cmd_fetch(struct imapd *s, const struct imap_command *cmd)
{
	struct imapd_selected *sel = s->sel;
	struct imap_fetch *f;
	struct imap_string body;
	unsigned char *mask = NULL, *seen = NULL;
	const char *perr = NULL;
	int gone = 0, failed = 0, changed = 0, vanished = 0;
	uint64_t since = 0;
	long count;

	if (cmd->count != 2 && cmd->count != 3) {
		imapd_tagged(s, cmd->tag, "BAD FETCH needs a message set and items.");
		return;
	}
	if (cmd->count == 3) {
		/* (CHANGEDSINCE n [VANISHED]) - RFC 7162 §3.1.4, §3.2.6 */
		const struct imap_arg *a = &cmd->args[2];
		if (a->type != IMAP_ARG_LIST) {
			imapd_tagged(s, cmd->tag, "BAD Invalid FETCH modifiers.");
			return;
		}
		for (size_t i = 0; i < a->count; i++) {
			char *end;
			if (imap_arg_atom_equals(&a->list[i], "VANISHED")) {
				vanished = 1;
			} else if (imap_arg_atom_equals(&a->list[i], "CHANGEDSINCE") &&
				   i + 1 < a->count && a->list[i + 1].type == IMAP_ARG_ATOM &&
				   a->list[i + 1].str[0] >= '0' && a->list[i + 1].str[0] <= '9') {
				errno = 0;
				since = strtoull(a->list[++i].str, &end, 10);
				if (errno != 0 || *end != '\0' || since > INT64_MAX) {
					imapd_tagged(s, cmd->tag, "BAD Invalid CHANGEDSINCE value.");
					return;
				}
				changed = 1;
			} else {
				imapd_tagged(s, cmd->tag, "BAD Invalid FETCH modifiers.");
				return;
			}
		}
		if (vanished && (!cmd->uid || !qresync(s) || !changed)) {
			imapd_tagged(s, cmd->tag, "BAD VANISHED needs UID FETCH, QRESYNC and "
				     "CHANGEDSINCE.");
			return;
		}
	}
	f = imap_fetch_parse(&cmd->args[1], &perr);
	if (f == NULL) {
		imapd_tagged(s, cmd->tag, "BAD %s", perr ? perr : "Invalid FETCH items.");
		return;
	}
	for (size_t i = 0; i < f->nsections; i++)
		if (f->sections[i].type != IMAP_FETCH_SECTION_BODY) {
			imap_fetch_free(f);
			imapd_tagged(s, cmd->tag, "BAD BINARY is not supported.");
			return;
		}
	if (changed)
		f->items |= IMAP_FETCH_MODSEQ;
	if (f->items & IMAP_FETCH_MODSEQ)
		s->enabled |= IMAPD_EN_CONDSTORE;
	count = resolve_set(s, cmd->tag, &cmd->args[0], cmd->uid, &mask);
	if (count < 0) {
		imap_fetch_free(f);
		return;
	}
	if (vanished) {
		struct imap_seqset set = { 0 };
		if (imap_seqset_parse(cmd->args[0].str, 100000, 0, &set) == 0)
			report_vanished_earlier(s, since, &set);
		imap_seqset_free(&set);
	}
	seen = calloc(sel->n ? sel->n : 1, 1);
	if (seen == NULL) {
		free(mask);
		imap_fetch_free(f);
		imapd_tagged(s, cmd->tag, "NO [SERVERBUG] Out of memory.");
		return;
	}
	if (f->sets_seen && !sel->readonly)
		fetch_set_seen(s, mask, seen);
	imap_string_init(&body, 0);
	for (size_t i = 0; i < sel->n; i++) {
		int r;
		if (!mask[i])
			continue;
		if (sel->view[i].flags & MSG_GONE) {
			gone = 1;
			continue;
		}
		if (changed && sel->view[i].modseq <= since)
			continue;
		r = fetch_one(s, i, f, cmd->uid, seen[i], &body);
		if (r == -1) {
			/* the file vanished under us: expunged by someone else */
			sel->view[i].flags |= MSG_GONE;
			gone = 1;
		} else if (r == -2) {
			failed = 1;
			break;
		}
		if (conn_write(s->conn, "", 0) != 0) {	/* sticky write error: client gone */
			failed = 1;
			break;
		}
	}
	imap_string_free(&body);
	free(mask);
	free(seen);
	imap_fetch_free(f);
	imapd_select_sync(s, cmd->uid);
	if (failed)
		imapd_tagged(s, cmd->tag, "NO [SERVERBUG] Internal error while fetching.");
	else if (gone)
		imapd_tagged(s, cmd->tag, "NO [EXPUNGEISSUED] Some of the requested messages "
			     "no longer exist.");
	else
		imapd_tagged(s, cmd->tag, "OK Fetch completed.");
}

/* ---- SEARCH ----------------------------------------------------------- */

struct search_ctx {
	struct imapd *s;
	const struct imapd_msg *m;
	struct fetch_msg fm;
	int opened;		/* 1 ok, -1 failed */
	char *hbuf;		/* HBUF_SIZE bytes for a decoded header value, shared */
};
#define HBUF_SIZE 8192

static int search_open(struct search_ctx *c)
{
	if (c->opened == 0)
		c->opened = fetch_msg_open(c->s, c->m->uid, &c->fm, 1) == 0 ? 1 : -1;
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
	for (size_t i = 0; i < sel->n; i++) {
		const struct imapd_msg *m = &sel->view[i];
		struct search_ctx c = { .s = s, .m = m, .fm = { .fd = -1 }, .hbuf = hbuf };
		struct imap_search_msg sm = {
			.ctx = &c, .seq = (uint32_t)(i + 1), .uid = m->uid,
			.max_seq = (uint32_t)sel->n, .max_uid = sel->view[sel->n - 1].uid,
			.now = now, .has_keyword = search_has_keyword, .header = search_header,
			.contains = search_contains, .modseq = m->modseq,
		};
		if (m->flags & MSG_GONE)
			continue;
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
			sm.size = msg_vsize(s, m->uid, &c.fm);
		if (imap_search_match(q, &sm)) {
			found[nfound++] = cmd->uid ? m->uid : (uint32_t)(i + 1);
			if (m->modseq > max_modseq)
				max_modseq = m->modseq;
		}
		fetch_msg_close(&c.fm);
	}
	imap_search_free(q);
	imap_string_clear(o);
	if (!esearch) {
		imap_string_adds(o, "SEARCH");
		for (size_t i = 0; i < nfound; i++)
			imap_string_addf(o, " %u", found[i]);
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
			add_uid_ranges(o, found, nfound);
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

/*
 * FETCH: flags, dates, sizes, ENVELOPE, BODY/BODYSTRUCTURE and sections over
 * the mapped message file, MODSEQ/CHANGEDSINCE/VANISHED.  See imapd-internal.h.
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

/* ---- FETCH ------------------------------------------------------------ */

static const struct mime_limits fetch_mime_limits = {
	.max_depth = 50,
	.max_parts = 10000,
	.max_header = 1 << 20,
};


/*
 * Message bytes are read into one buffer kept for the session (a session is
 * one process serving one client), not mapped: unmapping a file per message
 * costs a TLB shootdown on every CPU the process ran on, which dominated
 * FETCH under concurrent load.  Only big messages are mapped.
 */
#define FM_MAP_MIN	(512u * 1024u)	/* map files at least this big */
#define FM_KEEP_MAX	(1u << 20)	/* buffer kept between messages up to this */
#define FM_HEAD_READ	(16u * 1024u)	/* first read when only the header is wanted */

static char *fm_buf;
static size_t fm_cap;

void imapd_fetch_msg_close(struct imapd_fetch_msg *fm)
{
	/* nothing opened (a flags-only FETCH or SEARCH): nothing to reset */
	if (fm->fd < 0 && fm->mime == NULL && fm->len == 0 && !fm->mapped)
		return;
	mime_message_free(fm->mime);
	if (fm->mapped)
		munmap((void *)(uintptr_t)fm->data, fm->len);
	if (fm->fd >= 0)
		close(fm->fd);
	memset(fm, 0, sizeof(*fm));
	fm->fd = -1;
	if (fm_cap > FM_KEEP_MAX) {
		free(fm_buf);
		fm_buf = NULL;
		fm_cap = 0;
	}
}

/* Reads the file's bytes up to `want` into the session buffer. */
static int fm_read_to(struct imapd_fetch_msg *fm, size_t want)
{
	size_t size = (size_t)fm->st.st_size;

	if (want > size)
		want = size;
	if (fm->mapped || fm->len >= want)
		return 0;
	if (want > fm_cap) {
		size_t cap = fm_cap ? fm_cap : FM_HEAD_READ;
		char *nb;

		while (cap < want)
			cap *= 2;
		if ((nb = realloc(fm_buf, cap)) == NULL)
			return -1;
		fm_buf = nb;
		fm_cap = cap;
	}
	while (fm->len < want) {
		ssize_t r = pread(fm->fd, fm_buf + fm->len, want - fm->len, (off_t)fm->len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;		/* truncated under us: serve what is there */
		fm->len += (size_t)r;
	}
	fm->data = fm_buf;
	return 0;
}

static int fm_load_all(struct imapd_fetch_msg *fm)
{
	size_t size = (size_t)fm->st.st_size;

	if (fm->mapped || (fm->len >= size && fm->data != NULL))
		return 0;
	if (size >= FM_MAP_MIN) {
		void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fm->fd, 0);

		if (p == MAP_FAILED)
			return -1;
		fm->data = p;
		fm->len = size;
		fm->mapped = 1;
		return 0;
	}
	return fm_read_to(fm, size);
}

/* The length of the header with its blank line, or 0 if not in data yet. */
static size_t header_end(const char *p, size_t len)
{
	const char *q = p, *end = p + len;

	if (len > 0 && p[0] == '\n')
		return 1;
	if (len > 1 && p[0] == '\r' && p[1] == '\n')
		return 2;
	while ((q = memchr(q, '\n', (size_t)(end - q))) != NULL) {
		q++;
		if (q < end && *q == '\n')
			return (size_t)(q + 1 - p);
		if (q + 1 < end && q[0] == '\r' && q[1] == '\n')
			return (size_t)(q + 2 - p);
	}
	return 0;
}

/* Reads (at least) the header; returns its length. */
static int fm_load_header(struct imapd_fetch_msg *fm, size_t *hlen)
{
	size_t size = (size_t)fm->st.st_size, want = FM_HEAD_READ;

	for (;;) {
		size_t h;

		if (fm_read_to(fm, want) != 0)
			return -1;
		if ((h = header_end(fm->data ? fm->data : "", fm->len)) > 0) {
			*hlen = h;
			return 0;
		}
		if (fm->len >= size || want >= fetch_mime_limits.max_header) {
			*hlen = fm->len;	/* no body: it is all header */
			return 0;
		}
		want *= 4;
	}
}

int imapd_fetch_msg_open(struct imapd *s, uint32_t uid, struct imapd_fetch_msg *fm, int what)
{
	char err[512];

	if (fm->fd < 0) {
		if (maildir_msg_open(s->sel->folder, uid, &fm->fd, err, sizeof(err)) != 0)
			return -1;
		if (fstat(fm->fd, &fm->st) != 0)
			return -1;
		fm->data = "";
		fm->len = 0;
	}
	switch (what) {
	case IMAPD_FM_OPEN:
		return 0;
	case IMAPD_FM_DATA:
		return fm_load_all(fm);
	case IMAPD_FM_HEADER:
		if (fm->mime != NULL)
			return 0;
		if (fm->len < (size_t)fm->st.st_size || fm->mapped) {
			size_t hlen;

			if (fm_load_header(fm, &hlen) != 0)
				return -1;
			if (hlen < (size_t)fm->st.st_size) {
				fm->mime = mime_parse(fm->data, hlen, &fetch_mime_limits);
				fm->mime_header_only = 1;
				return fm->mime != NULL ? 0 : -1;
			}
		}
		/* the whole file is in memory anyway: parse it all */
		/* fall through */
	default:
		if (fm->mime != NULL && !fm->mime_header_only)
			return 0;
		if (fm_load_all(fm) != 0)
			return -1;
		mime_message_free(fm->mime);
		fm->mime_header_only = 0;
		fm->mime = mime_parse(fm->data, fm->len, &fetch_mime_limits);
		return fm->mime != NULL ? 0 : -1;
	}
}

/* The CRLF size of a message: ,W= from its name when present, else counted. */
uint64_t imapd_msg_vsize(struct imapd *s, uint32_t uid, struct imapd_fetch_msg *fm)
{
	const struct maildir_msg *m = maildir_folder_find(s->sel->folder, uid);
	struct maildir_name mn;

	if (m != NULL && maildir_name_parse(m->fname, strlen(m->fname), &mn) == 0 && mn.vsize >= 0)
		return (uint64_t)mn.vsize;
	if (imapd_fetch_msg_open(s, uid, fm, IMAPD_FM_FULL) != 0)
		return 0;
	return mime_message_vsize(fm->mime);
}

/* Writes the whole message as a literal, LF -> CRLF. */
static void write_whole(struct imapd *s, struct imapd_fetch_msg *fm, uint64_t vsize)
{
	const char *p, *end;

	(void)fm_load_all(fm);	/* on failure: what was read; the size then disagrees */
	p = fm->data;
	end = fm->data + fm->len;

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
/* What of the file a FETCH needs: -1 (nothing), or an IMAPD_FM_* value. */
static int fetch_needs(const struct imap_fetch *f)
{
	int full = (f->items & (IMAP_FETCH_BODY | IMAP_FETCH_BODYSTRUCTURE |
				IMAP_FETCH_RFC822_TEXT)) != 0;
	int header = (f->items & (IMAP_FETCH_ENVELOPE | IMAP_FETCH_RFC822_HEADER)) != 0;
	int data = (f->items & IMAP_FETCH_RFC822) != 0;

	for (size_t i = 0; i < f->nsections; i++) {
		const struct mime_section *sec = &f->sections[i].section;

		if (sec->npath == 0 && (sec->kind == MIME_SECTION_HEADER ||
					sec->kind == MIME_SECTION_HEADER_FIELDS ||
					sec->kind == MIME_SECTION_HEADER_FIELDS_NOT))
			header = 1;
		else if (sec->npath == 0 && sec->kind == MIME_SECTION_BODY &&
			 !f->sections[i].has_partial)
			data = 1;
		else
			full = 1;
	}
	if (full)
		return IMAPD_FM_FULL;
	if (header)
		return IMAPD_FM_HEADER;	/* whole-message writers load the rest */
	if (data)
		return IMAPD_FM_DATA;
	return (f->items & IMAP_FETCH_INTERNALDATE) ? IMAPD_FM_OPEN : -1;
}

/*
 * ENVELOPE (and INTERNALDATE) of recently fetched messages.  A message file
 * never changes, so within one selection a UID's envelope stays what it
 * was: clients that list the same messages again (FETCH 1:20 (FLAGS
 * ENVELOPE) on every refresh) are answered without opening the files, as
 * dovecot does from its cache file.  Direct-mapped, bounded.
 */
#define ENV_SLOTS	128
#define ENV_MAX		4096	/* longer envelopes are not kept */

struct env_slot {
	uint64_t gen;
	uint32_t uid;
	time_t mtime;
	size_t len;
	char *text;
};

static struct env_slot env_cache[ENV_SLOTS];
static uint64_t env_gen = 1;

void imapd_fetch_cache_reset(void)
{
	env_gen++;
	for (size_t i = 0; i < ENV_SLOTS; i++) {
		free(env_cache[i].text);
		env_cache[i].text = NULL;
		env_cache[i].gen = 0;
	}
}

static const struct env_slot *env_get(uint32_t uid)
{
	const struct env_slot *e = &env_cache[uid % ENV_SLOTS];

	return e->gen == env_gen && e->uid == uid && e->text != NULL ? e : NULL;
}

static void env_put(uint32_t uid, time_t mtime, const char *text, size_t len)
{
	struct env_slot *e = &env_cache[uid % ENV_SLOTS];
	char *t;

	if (len > ENV_MAX || (t = malloc(len ? len : 1)) == NULL)
		return;
	memcpy(t, text, len);
	free(e->text);
	e->text = t;
	e->len = len;
	e->uid = uid;
	e->mtime = mtime;
	e->gen = env_gen;
}

static int fetch_one(struct imapd *s, size_t idx, const struct imap_fetch *f, int uid_cmd,
		     int set_seen, struct imap_string *body)
{
	struct imapd_msg *m = &s->sel->view[idx];
	struct imap_string *o = &s->out;
	struct imapd_fetch_msg fm = { .fd = -1 };
	int what = fetch_needs(f);
	int first = 1;
	const struct env_slot *env = NULL;

	/* only the envelope wanted from the file, and known: no file at all */
	if ((f->items & IMAP_FETCH_ENVELOPE) && what == IMAPD_FM_HEADER &&
	    !(f->items & IMAP_FETCH_RFC822_HEADER) && f->nsections == 0 &&
	    (env = env_get(m->uid)) != NULL) {
		what = -1;
		fm.st.st_mtime = env->mtime;
	}
	if (what >= 0 && imapd_fetch_msg_open(s, m->uid, &fm, what) != 0) {
		imapd_fetch_msg_close(&fm);
		return -1;
	}
#define SEP() do { if (!first) imap_string_addc(o, ' '); first = 0; } while (0)
	imap_string_clear(o);
	imap_string_adds(o, "* ");
	imapd_add_u64(o, idx + 1);
	imap_string_adds(o, " FETCH (");
	if ((f->items & IMAP_FETCH_UID) || uid_cmd) {
		SEP();
		imap_string_adds(o, "UID ");
		imapd_add_u64(o, m->uid);
	}
	if ((f->items & IMAP_FETCH_FLAGS) || set_seen) {
		SEP();
		imap_string_adds(o, "FLAGS ");
		imapd_add_flags(s, m);
	}
	if ((f->items & IMAP_FETCH_MODSEQ) || (set_seen && imapd_condstore(s))) {
		SEP();
		imap_string_adds(o, "MODSEQ (");
		imapd_add_u64(o, m->modseq);
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
		imap_string_addf(o, "RFC822.SIZE %llu", (unsigned long long)imapd_msg_vsize(s, m->uid, &fm));
	}
	if (f->items & IMAP_FETCH_ENVELOPE) {
		SEP();
		imap_string_adds(o, "ENVELOPE ");
		if (env != NULL) {
			imap_string_add(o, env->text, env->len);
		} else {
			size_t at = o->len;

			mime_write_envelope(o, fm.mime, fm.mime->root);
			if (!o->failed)
				env_put(m->uid, fm.st.st_mtime, o->buf + at, o->len - at);
		}
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
		write_whole(s, &fm, imapd_msg_vsize(s, m->uid, &fm));
	}
	for (size_t i = 0; i < f->nsections; i++) {
		const struct imap_fetch_section *sec = &f->sections[i];
		conn_puts(s->conn, first ? "" : " ");
		first = 0;
		conn_puts(s->conn, sec->name);
		conn_puts(s->conn, " ");
		if (sec->section.kind == MIME_SECTION_BODY && sec->section.npath == 0 &&
		    !sec->has_partial) {
			write_whole(s, &fm, imapd_msg_vsize(s, m->uid, &fm));
			continue;
		}
		imap_string_clear(body);
		if (mime_write_section(body, fm.mime, &sec->section,
				       sec->has_partial ? sec->partial_offset : 0,
				       sec->has_partial ? sec->partial_max : UINT64_MAX, NULL) != 0) {
			if (body->failed) {
				imapd_fetch_msg_close(&fm);
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
	imapd_fetch_msg_close(&fm);
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
	int locked = imapd_sel_lock_current(sel), any = 0;

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
		m->modseq = imapd_ms_walk(sel, m->uid, &k, m->modseq);
	}
	if (locked && any) {
		if (modseq_commit(sel->ms, &newms, err, sizeof(err)) != 0) {
			log_warn("modseq", "folder=%s error=%s", log_q(sel->name), log_q(err));
			newms = 0;
		}
		sel->highest = modseq_highest(sel->ms);
	}
	imapd_sel_unlock(sel, locked);
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
		if (vanished && (!cmd->uid || !imapd_qresync(s) || !changed)) {
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
	count = imapd_resolve_set(s, cmd->tag, &cmd->args[0], cmd->uid, &mask);
	if (count < 0) {
		imap_fetch_free(f);
		return;
	}
	if (vanished) {
		struct imap_seqset set = { 0 };
		if (imap_seqset_parse(cmd->args[0].str, 100000, 0, &set) == 0)
			imapd_report_vanished_earlier(s, since, &set);
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

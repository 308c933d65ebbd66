/*
 * Internals shared by the files that serve the selected mailbox:
 *   imapd-select.c  the view (sequence numbers), untagged updates, modseq
 *                   glue, \Recent, SELECT/EXAMINE/CLOSE/UNSELECT/EXPUNGE
 *   imapd-msg.c     message sets, STORE, COPY, MOVE
 *   imapd-fetch.c   FETCH
 *   imapd-search.c  SEARCH
 * Not for use outside lib/imapd*.c.
 */
#ifndef MK_IMAPD_INTERNAL_H
#define MK_IMAPD_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "imapd.h"
#include "imap-seqset.h"
#include "maildir.h"
#include "mime.h"

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

struct imapd_sysflag {
	unsigned bit;
	const char *name;
};
#define IMAPD_NSYSFLAGS 5
/* \Answered \Flagged \Deleted \Seen \Draft and their maildir bits */
extern const struct imapd_sysflag imapd_sysflags[IMAPD_NSYSFLAGS];

/* An opened message: the file mapped, parsed on demand. */
struct imapd_fetch_msg {
	int fd;
	struct stat st;
	const char *data;	/* the first len bytes of the file */
	size_t len;
	int mapped;		/* data is an mmap of the whole file (big messages) */
	int mime_header_only;	/* mime was parsed over the header alone */
	struct mime_message *mime;
};

/* What imapd_fetch_msg_open() makes ready. */
#define IMAPD_FM_OPEN	0	/* the file open, st filled */
#define IMAPD_FM_FULL	1	/* all bytes read and MIME-parsed */
#define IMAPD_FM_HEADER	2	/* the header read and parsed (ENVELOPE, HEADER*) */
#define IMAPD_FM_DATA	3	/* all bytes read, not parsed (BODY[], RFC822) */

/* Shared between imapd-select.c, imapd-msg.c, imapd-fetch.c, imapd-search.c. */
int imapd_condstore(const struct imapd *s);
int imapd_qresync(const struct imapd *s);
void imapd_load_keywords(struct imapd_selected *sel);
void imapd_add_u64(struct imap_string *o, uint64_t n);
/* Appends "(\Seen $Forwarded ...)" for a message to s->out. */
void imapd_add_flags(struct imapd *s, const struct imapd_msg *m);
/* Appends "a,b:c" (compressed ranges) of the ascending numbers to o. */
void imapd_add_uid_ranges(struct imap_string *o, const uint32_t *v, size_t n);
/* The modseq store around a change: lock, rescan under the lock, unlock. */
int imapd_sel_lock(struct imapd_selected *sel);
int imapd_sel_refresh(struct imapd_selected *sel, int locked, int move_new);
/* The lock and a current folder, rescanning under it only when needed. */
int imapd_sel_lock_current(struct imapd_selected *sel);
void imapd_sel_unlock(struct imapd_selected *sel, int locked);
uint64_t imapd_ms_walk(const struct imapd_selected *sel, uint32_t uid, size_t *k, uint64_t dflt);
/* Untagged FETCH (UID/FLAGS/MODSEQ) for view entry IDX. */
void imapd_report_fetch(struct imapd *s, size_t idx, int with_uid, int with_flags);
void imapd_report_vanished_earlier(struct imapd *s, uint64_t since, const struct imap_seqset *set);
/*
 * Marks in mask[] (one byte per view entry) the messages ARG names, by UID
 * or by sequence number.  Returns the count, or -1 after answering BAD.
 */
long imapd_resolve_set(struct imapd *s, const char *tag, const struct imap_arg *arg, int uid,
		       unsigned char **mask);
int imapd_fetch_msg_open(struct imapd *s, uint32_t uid, struct imapd_fetch_msg *fm, int what);
void imapd_fetch_msg_close(struct imapd_fetch_msg *fm);
/*
 * Makes the selected folder's deferred file changes durable (a STORE's
 * renames, an EXPUNGE's unlinks, an APPEND's rename and UID record); run
 * before every tagged response.  0, or -1 (logged): do not answer OK.
 */
int imapd_select_flush(struct imapd *s);
/* Forgets the envelopes kept for the selected mailbox (on every SELECT/close). */
void imapd_fetch_cache_reset(void);
/* The CRLF size of a message: ,W= from its name when present, else counted. */
uint64_t imapd_msg_vsize(struct imapd *s, uint32_t uid, struct imapd_fetch_msg *fm);
#endif

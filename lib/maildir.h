/*
 * One Maildir folder (DESIGN.md §4): messages in new/ and cur/, UIDs in
 * dovecot-uidlist, keyword letters in dovecot-keywords, all changed under
 * dovecot's "dovecot-uidlist.lock" dotlock so that our processes and
 * dovecot can work on the same folder at once.
 *
 * A struct maildir_folder is an in-memory index of one folder: messages
 * sorted by UID with their current file names.  It is refreshed by
 * maildir_folder_sync(), which is cheap when nothing changed (mtimes of
 * new/, cur/ and the uidlist are compared), so a long-lived IMAP session
 * calls it before each command.  A fresh struct is filled from the
 * folder's persistent index (maildir-index.h) when that still matches the
 * disk, so a new process does not read the directories of an unchanged
 * folder.  One process owns one struct; the struct is not shared between
 * threads.
 *
 * Invariants kept here, as dovecot keeps them: UIDVALIDITY never changes
 * once the uidlist exists; a UID is never given twice (next_uid only
 * grows, also across expunges); a file gets its UID under the lock, so two
 * processes never give one file two UIDs.  dovecot.index* and
 * dovecot-uidvalidity* are never touched.
 *
 * All functions return 0 or a sysexits code with a one-line message in
 * err: EX_DATAERR for a corrupt dovecot-uidlist (nothing is changed then),
 * EX_TEMPFAIL when the lock stays busy, EX_NOINPUT for a missing folder or
 * message, EX_IOERR/EX_NOPERM/EX_CANTCREAT for I/O.
 */
#ifndef MK_MAILDIR_H
#define MK_MAILDIR_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#include "maildir-name.h"

#define MAILDIR_KEYWORDS_NAME "dovecot-keywords"
#define MAILDIR_KEYWORDS_MAX 26		/* letters a-z */
#define MAILDIR_KEYWORD_MAX_LEN 255

/*
 * One message.  fname points into the folder's names area or, after a
 * flag change, into its own allocation; either way the folder owns it and
 * it stays valid until the next sync or change of that message.
 */
struct maildir_msg {
	uint32_t uid;
	uint32_t keywords;	/* letters a-z, see struct maildir_keywords */
	char *fname;		/* current file name in new/ or cur/ */
	/* 24 bytes in all: size shares its word with the flags */
	long long size : 48;	/* from ,S=, or stat() if absent; -1 unknown */
	unsigned flags : 8;	/* enum maildir_flag */
	unsigned in_new : 1;	/* the file is in new/ (\Recent) */
};

/* Identity of a file or directory as stat() saw it (change detection). */
struct maildir_stamp {
	uint64_t dev, ino, size;
	int64_t mtime_sec, mtime_nsec;
	int64_t ctime_sec, ctime_nsec;	/* also catches an mtime set back (rsync -t) */
};

struct maildir_folder {
	char *path;		/* folder directory: holds cur/ new/ tmp/ */
	uint32_t uidvalidity;
	uint32_t next_uid;	/* UIDNEXT */
	struct maildir_msg *msgs;	/* ascending by uid */
	size_t nmsgs;
	int lock_wait;		/* seconds to wait for the lock, default 122 */
	char *names;		/* one block holding the names of msgs */
	size_t names_len;
	void *map;		/* the index file mapped, holding names; or NULL */
	size_t map_len;
	/* change detection for cheap re-syncs, see maildir_folder_unchanged() */
	struct maildir_stamp seen_new, seen_cur, seen_ul;
	time_t synced_at;	/* when the scan behind msgs started; 0: never */
	int64_t stamped_ns;	/* when seen_* were taken (CLOCK_REALTIME) */
	/*
	 * defer_fsync set by the owner: maildir_msg_set_flags() and
	 * maildir_msg_expunge() leave the directory fsync to
	 * maildir_folder_flush(), which must run before the change is
	 * acknowledged.  An IMAP session changes files while other sessions
	 * wait for its modseq lock; the disk wait comes after that lock.
	 */
	int defer_fsync;
	unsigned dirty;		/* MAILDIR_DIRTY_* awaiting maildir_folder_flush() */
	int dirty_fd;		/* the uidlist appended to (MAILDIR_DIRTY_UIDLIST) */
};
#define MAILDIR_DIRTY_CUR 1u
#define MAILDIR_DIRTY_NEW 2u
#define MAILDIR_DIRTY_UIDLIST 4u

struct maildir_status {
	uint32_t messages, unseen, recent, uidnext, uidvalidity;
	unsigned long long size;	/* bytes, sum of message sizes */
};

/*
 * Keeps the persistent folder indexes in DIR (config key index_dir,
 * created if missing) instead of a "mailkeep-index" file in each folder.
 * NULL goes back to the latter.  Call once after loading the config; the
 * string is copied.
 */
void maildir_set_index_dir(const char *dir);

/* Turns the persistent index off (on) for this process: tests, benchmarks. */
void maildir_set_index_enabled(int on);

/*
 * Opens the folder at DIR (which must have cur/ and new/).  No scan yet:
 * call maildir_folder_sync().  The struct owns a copy of DIR.
 */
int maildir_folder_open(const char *dir, struct maildir_folder **out,
			char *err, size_t errlen);
void maildir_folder_free(struct maildir_folder *f);

/*
 * Creates cur/ new/ tmp/ under DIR (DIR itself must exist) and a
 * dovecot-uidlist with a fresh UIDVALIDITY if none exists.
 */
int maildir_folder_init(const char *dir, char *err, size_t errlen);

enum {
	MAILDIR_SYNC_MOVE_NEW = 1 << 0,	/* move new/ files to cur/ as a session does */
	MAILDIR_SYNC_FORCE = 1 << 1,	/* rescan even if no mtime changed */
};

/*
 * Brings F up to date with the disk: under the lock, reads the uidlist,
 * scans new/ and cur/, gives UIDs to files that have none (appending to
 * the uidlist), drops records whose files are gone (rewriting it).
 */
int maildir_folder_sync(struct maildir_folder *f, unsigned flags, char *err, size_t errlen);

/* 1 when a sync would find nothing new: three stat(2)s, no lock, no read. */
int maildir_folder_unchanged(const struct maildir_folder *f);

/*
 * Makes the changes deferred by defer_fsync durable: fsyncs cur/ and new/
 * (those changed) and the uidlist appended to.  0, or a sysexits code (the
 * changes happened but may not survive a crash: do not acknowledge them).
 */
int maildir_folder_flush(struct maildir_folder *f, char *err, size_t errlen);

/* The message with UID, or NULL (binary search). */
const struct maildir_msg *maildir_folder_find(const struct maildir_folder *f, uint32_t uid);

/* Counts for IMAP STATUS from the last sync. */
void maildir_folder_status(const struct maildir_folder *f, struct maildir_status *st);

/*
 * Sets the flags and keywords of UID by renaming its file into cur/ (under
 * the lock; found again by its base name if someone else renamed it).
 */
int maildir_msg_set_flags(struct maildir_folder *f, uint32_t uid, unsigned flags,
			  uint32_t keywords, char *err, size_t errlen);

/* Removes the file of UID; its uidlist record goes at the next rewrite. */
int maildir_msg_expunge(struct maildir_folder *f, uint32_t uid, char *err, size_t errlen);

/* Opens the file of UID read-only, following renames by others. */
int maildir_msg_open(struct maildir_folder *f, uint32_t uid, int *fd,
		     char *err, size_t errlen);

/*
 * Streaming delivery: begin creates tmp/<unique>, write/copy_fd append to
 * it (never holding the message in memory), commit makes it durable and
 * visible.  Commit and abort free D in every case; abort (NULL allowed)
 * removes the temp file.
 */
struct maildir_delivery;

struct maildir_commit {
	unsigned flags;		/* enum maildir_flag; with flags or keywords -> cur/ */
	uint32_t keywords;
	time_t mtime;		/* INTERNALDATE; 0 = now */
	int assign_uid;		/* take the lock and give the UID now (APPEND) */
	int to_cur;		/* place in cur/ even without flags (not \Recent) */
	/*
	 * With assign_uid: leave the fsyncs of the directory and of the
	 * uidlist to maildir_folder_flush(DEFER_TO) (a struct of the same
	 * folder).  The message is visible with its UID on return, durable
	 * only after the flush.  NULL: durable on return.
	 */
	struct maildir_folder *defer_to;
};

int maildir_delivery_begin(const char *dir, struct maildir_delivery **out,
			   char *err, size_t errlen);
int maildir_delivery_write(struct maildir_delivery *d, const void *buf, size_t len,
			   char *err, size_t errlen);
/* Copies from FD until EOF or max bytes (max < 0: no limit). */
int maildir_delivery_copy_fd(struct maildir_delivery *d, int fd, long long max,
			     char *err, size_t errlen);
/*
 * fsync, rename into new/ or cur/ with ,S= and ,W= in the name, fsync the
 * directory; with assign_uid the rename and the uidlist record happen
 * under one lock and *uid (may be NULL) receives the UID.  fname (may be
 * NULL) receives the final file name.
 */
int maildir_delivery_commit(struct maildir_delivery *d, const struct maildir_commit *c,
			    uint32_t *uid, char *fname, size_t fnamelen,
			    char *err, size_t errlen);
void maildir_delivery_abort(struct maildir_delivery *d);

/* dovecot-keywords: "<index> <name>" lines; index 0 is letter 'a'. */
struct maildir_keywords {
	char *names[MAILDIR_KEYWORDS_MAX];	/* NULL where unused; owned */
};

/* Reads DIR/dovecot-keywords (missing = none).  Clear with _clear(). */
int maildir_keywords_read(const char *dir, struct maildir_keywords *kw,
			  char *err, size_t errlen);
void maildir_keywords_clear(struct maildir_keywords *kw);
/* Pure parser of the file's contents (bounded by len); 0 or EX_DATAERR. */
int maildir_keywords_parse(const char *buf, size_t len, struct maildir_keywords *kw,
			   char *err, size_t errlen);
/* Index of NAME (exact match, as IMAP keywords are case-sensitive in files), or -1. */
int maildir_keywords_lookup(const struct maildir_keywords *kw, const char *name);
/*
 * Index of NAME, adding it to DIR/dovecot-keywords (under the uidlist lock,
 * replaced by rename) if new.  EX_CANTCREAT when all 26 letters are used.
 */
int maildir_keywords_ensure(const char *dir, const char *name, int *idx,
			    char *err, size_t errlen);
#endif

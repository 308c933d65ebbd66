/*
 * Persistent modification sequences (RFC 7162 CONDSTORE/QRESYNC) for one
 * Maildir folder, kept next to it in "mailkeep-modseq".
 *
 * Why a file of our own: dovecot keeps modseqs in dovecot.index*, which we
 * must leave alone (DESIGN.md §4).  Names starting with "mailkeep-" cannot
 * be folders (mailbox-name.c refuses them) and go with the folder when it
 * is deleted (folders.c).
 *
 * What it records: for every message the flags and keywords it had when it
 * last got a modseq, and for recent expunges the UID and the modseq of the
 * expunge.  Whoever syncs the folder (any mail-serve-imap process, with or
 * without a client that enabled CONDSTORE) compares the folder as scanned
 * by lib/maildir with that record, and gives every difference - flags
 * changed by dovecot, an MUA or another session, arrivals from mail-pull,
 * expunges - one new modseq.  Writers that do not know about this file
 * (dovecot, mail-pull) thus need no change; their changes get modseqs at
 * the next sync of any session.
 *
 * File format (host byte order, never leaves the machine):
 *   header, 64 bytes: "MKMODSQ\1", version 1, UIDVALIDITY, highest modseq
 *     when written, vanished floor, record size, CRC-32 of the rest;
 *   then an append-only log of 24-byte records
 *     { u64 modseq, u32 uid, u32 keywords, u16 flags, u8 type, u8 0, u32 crc }
 *     type SET: the message has these flags at this modseq (an arrival is a
 *     SET of a new UID); type EXPUNGE: the UID vanished at this modseq.
 * A change costs one append of its records and one fdatasync, whatever the
 * folder size.  When the log holds more than twice the live state (its
 * messages and at most MODSEQ_VANISHED_KEEP expunges) plus
 * MODSEQ_COMPACT_SLACK records it is compacted: the current state is written
 * to "mailkeep-modseq.tmp", fsynced and renamed over the log (the directory
 * fsynced), keeping the last MODSEQ_VANISHED_KEEP expunges; the highest
 * modseq among the dropped ones becomes the "vanished floor".  A client
 * whose modseq is below the floor cannot be told exactly what vanished:
 * modseq_vanished_since() says so and the caller reports every UID not
 * present (RFC 7162 allows reporting UIDs the client never saw).
 *
 * Locking: every reader and writer holds flock(LOCK_EX) on the separate,
 * never-replaced "mailkeep-modseq.lock" between modseq_lock() and
 * modseq_unlock(), so all sessions of all processes see one sequence and
 * two changes never share a modseq.  A session that also changes message
 * files (STORE) does so while holding this lock; the lock order is this
 * flock first, then dovecot-uidlist.lock (taken inside lib/maildir).
 *
 * Crash safety: a modseq is handed out (modseq_commit() returns) only after
 * its records are fdatasync'ed, so a modseq a client has seen is durable.
 * A torn last record (a crash during append) is dropped: it was never
 * reported, and the change it described is found again by the next sync.
 *
 * Loss and corruption: a missing file, a bad header, a bad record before
 * the end, or a different UIDVALIDITY make the store rebuild: it starts
 * empty with its highest modseq above anything it may have handed out -
 * above the salvaged header value, and never below the current time in
 * microseconds (the modseqs of a fresh store start there, and each change
 * adds 1, so as long as a folder sees fewer than a million changes per
 * second a lost file restarts above every earlier value) - and sets the
 * vanished floor to it.  The next sync then gives every message a fresh
 * modseq, and clients with an older modseq get a full resync.
 *
 * Memory: 24 bytes per message and 16 per remembered expunge.
 * Functions return 0 or a sysexits code with a one-line message in err.
 */
#ifndef MK_MODSEQ_H
#define MK_MODSEQ_H
#include <stddef.h>
#include <stdint.h>

struct maildir_msg;

#define MODSEQ_FILE "mailkeep-modseq"
#define MODSEQ_LOCK_FILE "mailkeep-modseq.lock"
#define MODSEQ_TMP_FILE "mailkeep-modseq.tmp"
#define MODSEQ_VANISHED_KEEP 10000	/* expunges remembered after compaction */
#define MODSEQ_COMPACT_SLACK 4096	/* records beyond 2x the state before compacting */

/* What the store knows about one live message. */
struct modseq_entry {
	uint32_t uid;
	uint32_t keywords;
	uint32_t flags;		/* enum maildir_flag bits */
	uint64_t modseq;	/* of the last change (or the arrival) */
};

struct modseq_store;

/* Opens (creating) DIR/mailkeep-modseq.lock.  Nothing is read yet. */
int modseq_open(const char *dir, struct modseq_store **out, char *err, size_t errlen);
/* Closes everything (an unlocked store); NULL is allowed. */
void modseq_free(struct modseq_store *st);

/*
 * Takes the lock and brings the in-memory state up to date with the file:
 * reads only the records appended since the last call (O(changes)), the
 * whole file when it was replaced, rebuilds it when missing/corrupt or when
 * its UIDVALIDITY differs from UIDVALIDITY.
 */
int modseq_lock(struct modseq_store *st, uint32_t uidvalidity, char *err, size_t errlen);

/* 1 when the log may hold records this store has not read (or it was
 * replaced); 0 when a lock would bring nothing new.  One stat(2). */
int modseq_changed(const struct modseq_store *st);
void modseq_unlock(struct modseq_store *st);

/*
 * Without the lock: brings the in-memory state up to date with the log as
 * far as it can be read safely (the records appended since the last call,
 * or the whole file when it was replaced).  Only writers append, always
 * whole records under the lock, so what it reads is a state the store had.
 * 0 when that state is current and of UIDVALIDITY; 1 when only the lock
 * can tell (no file yet, a record being appended, a bad header or record,
 * another UIDVALIDITY); or a sysexits code.  Never writes.
 */
int modseq_peek(struct modseq_store *st, uint32_t uidvalidity, char *err, size_t errlen);

/*
 * 1 when the lock file in the folder is still the one this store holds
 * open: the folder was not deleted, renamed or recreated since modseq_open()
 * (a store kept across selections of one folder checks this first).
 */
int modseq_same_folder(const struct modseq_store *st);

/*
 * 1 when MSGS[0..n) (ascending by UID) are exactly the live entries with
 * the same flags and keywords: modseq_sync() would record nothing.
 */
int modseq_matches(const struct modseq_store *st, const struct maildir_msg *msgs, size_t n);

/*
 * Under the lock: compares the folder's messages MSGS[0..n) (ascending by
 * UID, as in struct maildir_folder) with the record and commits every
 * difference as one change (one new modseq).  A recorded UID missing from
 * MSGS counts as expunged only when below NEXT_UID (the folder's UIDNEXT),
 * so an index older than the record never expunges anything.
 */
int modseq_sync(struct modseq_store *st, const struct maildir_msg *msgs, size_t n,
		uint32_t next_uid, char *err, size_t errlen);

/*
 * Under the lock: stages "UID now has FLAGS/KEYWORDS"; modseq_commit()
 * writes the staged records with one new modseq (in *modseq, may be NULL;
 * unchanged when nothing was staged), fdatasyncs and applies them.  On
 * failure the staged records are dropped and nothing is applied.
 */
int modseq_stage_set(struct modseq_store *st, uint32_t uid, uint32_t flags, uint32_t keywords);
int modseq_stage_expunge(struct modseq_store *st, uint32_t uid);
int modseq_commit(struct modseq_store *st, uint64_t *modseq, char *err, size_t errlen);

/* The highest modseq handed out (HIGHESTMODSEQ); valid after a lock. */
uint64_t modseq_highest(const struct modseq_store *st);

/* The live entries, ascending by UID (valid until the next lock/commit). */
const struct modseq_entry *modseq_entries(const struct modseq_store *st, size_t *n);
/* The entry of UID, or NULL (binary search). */
const struct modseq_entry *modseq_find(const struct modseq_store *st, uint32_t uid);

/*
 * The UIDs expunged with a modseq above SINCE, ascending, in a malloc'd
 * array (*uids, caller frees; NULL when none).  Returns 1 when that list is
 * complete, 0 when SINCE is below the vanished floor (older expunges were
 * forgotten: the caller must treat every UID not present as vanished),
 * -1 on ENOMEM.
 */
int modseq_vanished_since(const struct modseq_store *st, uint64_t since, uint32_t **uids,
			  size_t *n);

/* Microseconds since the epoch: the base of a fresh store. */
uint64_t modseq_time_base(void);
#endif

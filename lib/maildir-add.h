/*
 * Batched delivery into one Maildir folder (and batched flag changes, at
 * the end): many messages made durable and visible at once, with one durability point per batch instead of two
 * fsyncs per message (maildir_delivery_commit() in maildir.h).  For bulk
 * writers such as mail-pull's first sync.
 *
 * The files of a batch are written to tmp/ without an fsync each.
 * maildir_folder_add_files() then, in this order:
 *   1. syncfs(2): every file's bytes are on disk;
 *   2. takes the dovecot-uidlist dotlock and reads the uidlist under it;
 *   3. renames each file into new/ (no flags) or cur/ and fsyncs those
 *      directories once;
 *   4. appends one uidlist record per file, with consecutive UIDs in the
 *      order the messages were ended, and fsyncs the uidlist (one write);
 *   5. releases the lock.
 * So a message file is never visible before its bytes are durable, and a
 * crash at any point leaves either orphans in tmp/ (never seen; dovecot
 * and we clean tmp/) or visible files without UIDs, which the next
 * maildir_folder_sync() numbers like any new file.  The caller records a
 * message (sync state, acknowledgement) only once it has its UID.
 *
 * One struct maildir_add per folder and writer; not shared between
 * threads.  Functions return 0 or a sysexits code with a one-line message
 * in err, as in maildir.h.
 */
#ifndef MK_MAILDIR_ADD_H
#define MK_MAILDIR_ADD_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "maildir.h"

struct maildir_add;

/* A batch for the folder DIR (holding cur/ new/ tmp/); DIR is copied.  NULL: ENOMEM. */
struct maildir_add *maildir_add_new(const char *dir);
/* Removes the tmp/ files of messages not added yet, frees.  NULL allowed. */
void maildir_add_free(struct maildir_add *b);

/*
 * One message: begin creates tmp/<unique>; write appends bytes as given
 * (buffered; the CRLF size for ,W= is counted, a bare LF counting two);
 * end closes the file with MTIME (0: now) as its date and queues it with
 * FLAGS (enum maildir_flag) and KEYWORDS (letters a-z): cur/ when any,
 * else new/.  fname (may be NULL) receives the final file name.  Abort
 * drops the message being written.  After a failed write or end the
 * message is dropped too.
 */
int maildir_add_begin(struct maildir_add *b, char *err, size_t errlen);
int maildir_add_write(struct maildir_add *b, const void *buf, size_t len,
		      char *err, size_t errlen);
int maildir_add_end(struct maildir_add *b, unsigned flags, uint32_t keywords, time_t mtime,
		    char *fname, size_t fnamelen, char *err, size_t errlen);
void maildir_add_abort(struct maildir_add *b);

/* Messages ended and not added yet, and their bytes. */
size_t maildir_add_pending(const struct maildir_add *b);
unsigned long long maildir_add_pending_bytes(const struct maildir_add *b);

/*
 * Adds the pending messages of B to the folder F (whose path B was made
 * for), as described above.  uids (may be NULL) has room for
 * maildir_add_pending(b) entries: uids[i] receives the UID of the i-th
 * pending message, or 0 when it was not added.  Waits for the lock up to
 * f->lock_wait seconds (EX_TEMPFAIL).  On failure the messages not yet
 * renamed are removed from tmp/; either way the batch is empty afterwards.
 * F's in-memory message list is not updated: the changed directories make
 * the next maildir_folder_sync() read them.
 */
int maildir_folder_add_files(struct maildir_folder *f, struct maildir_add *b, uint32_t *uids,
			     char *err, size_t errlen);

/*
 * Batched flag changes, for the same bulk writers: what
 * maildir_msg_set_flags() does for one message (rename into cur/ with the
 * new flags and keywords, under the uidlist lock), for N messages under
 * one lock with one fsync of cur/ at the end instead of one each.  A file
 * renamed by someone else meanwhile is found again through
 * maildir_msg_set_flags().  F's message list follows.  Returns 0 or the
 * first failure (the other changes are still made); *nfailed (may be
 * NULL) counts the changes not made.
 */
struct maildir_flag_change {
	uint32_t uid;
	unsigned flags;		/* enum maildir_flag */
	uint32_t keywords;
};

int maildir_folder_set_flags_many(struct maildir_folder *f,
				  const struct maildir_flag_change *v, size_t n,
				  size_t *nfailed, char *err, size_t errlen);
#endif

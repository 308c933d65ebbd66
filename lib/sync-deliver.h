/*
 * Batched delivery of downloaded messages into one Maildir folder, for
 * mail-pull: the files of a batch are written to tmp/ without an fsync
 * each, and sync_deliver_flush() makes the whole batch durable with one
 * syncfs(2), renames every file into new/ or cur/ and fsyncs those two
 * directories once.  So a message file is never visible before its bytes
 * are on disk (a power loss leaves at most orphans in tmp/), and the
 * caller records the batch in its state only after the flush returned 0.
 *
 * lib/maildir's maildir_delivery_commit() pays two fsyncs per message,
 * which at ~4-10 ms each is what bounds a first sync; this file is the
 * same protocol with the durability point moved to the end of a batch.
 *
 * Functions return 0 or a sysexits code with a one-line message in err.
 */
#ifndef MK_SYNC_DELIVER_H
#define MK_SYNC_DELIVER_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "maildir-name.h"

struct sync_batch;

/* A batch for the folder DIR (holding cur/ new/ tmp/); the struct copies DIR. */
struct sync_batch *sync_batch_new(const char *dir);
/* Removes the tmp/ files of messages not flushed yet, frees.  NULL allowed. */
void sync_batch_free(struct sync_batch *b);

/*
 * One message: begin opens tmp/<unique>, write appends (LF line ends as
 * given; the CRLF size for ,W= is counted), end closes it with MTIME
 * (0: now) and records its final name with FLAGS/KEYWORDS (cur/ when any,
 * else new/) in fname.  Abort drops the message being written.
 */
int sync_batch_begin(struct sync_batch *b, char *err, size_t errlen);
int sync_batch_write(struct sync_batch *b, const void *buf, size_t len,
		     char *err, size_t errlen);
int sync_batch_end(struct sync_batch *b, unsigned flags, uint32_t keywords, time_t mtime,
		   char *fname, size_t fnamelen, char *err, size_t errlen);
void sync_batch_abort(struct sync_batch *b);

/* Messages ended and not flushed yet, and their bytes. */
size_t sync_batch_pending(const struct sync_batch *b);
unsigned long long sync_batch_pending_bytes(const struct sync_batch *b);

/*
 * syncfs, rename each ended message into place, fsync new/ and cur/.
 * On failure the messages not yet renamed stay in tmp/ and are dropped
 * from the batch (they are downloaded again by the next run).
 */
int sync_batch_flush(struct sync_batch *b, char *err, size_t errlen);
#endif

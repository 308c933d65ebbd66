/*
 * The relay spool: state_dir/queue/ (DESIGN.md §4).
 *
 *   queue/<ID>.msg   the message as received (CRLF line ends, dot-stuffing
 *                    removed, our Received: line first); never changed
 *   queue/<ID>.env   its envelope: sender, recipients with their state,
 *                    retry schedule; replaced atomically on every change
 *   queue/tmp/       files being written; never read by the runner
 *
 * A message is queued once its .env exists: the .msg is written to tmp/,
 * fsynced and renamed first, then the .env the same way, then the queue
 * directory is fsynced; only then does the server answer 250.  A crash at
 * any point leaves either no .env (nothing was acknowledged; the orphans
 * are removed by queue_cleanup()) or a complete message.
 *
 * Concurrency: whoever works on a message holds flock(LOCK_EX) on its
 * .msg (queue_lock()), so two runners never send one message twice.  The
 * .env is re-read after locking.
 *
 * The .env format is line-oriented text ("key value"), parsed by the pure
 * queue_env_parse(); addresses never contain spaces or control bytes (the
 * SMTP parser refuses them) and error texts are flattened to one line.
 *
 *   mailkeep-queue 1
 *   id 0000018C2B3D4E5F6A7B
 *   user alice@example.com
 *   sender alice@example.com
 *   created 1700000000
 *   size 1234
 *   body 8bitmime            (or 7bit)
 *   smtputf8 0
 *   attempts 2
 *   next 1700000600
 *   error 451 4.3.0 try again later
 *   rcpt pending remote bob@example.org
 *   rcpt failed remote carol@example.net 550 5.1.1 no such user
 *
 * Recipient states: pending (to be delivered), sent (done), failed
 * (permanent failure, the DSN is still to be delivered), bounced (DSN
 * delivered).  The files of a message are removed when no recipient is
 * pending or failed.
 *
 * Functions return 0 or a sysexits code with a message in err.
 */
#ifndef MK_QUEUE_H
#define MK_QUEUE_H
#include <stdio.h>
#include <stddef.h>
#include <time.h>

#include "smtp-parser.h"

#define QUEUE_ID_LEN 20			/* hex: 12 of microseconds, 8 random */
#define QUEUE_MAX_RCPTS 100		/* per message (RFC 5321 4.5.3.1.8 minimum) */
#define QUEUE_MAX_ERROR 300		/* bytes of a stored error text */
#define QUEUE_MAX_USER 320
#define QUEUE_ENV_MAX (256 * 1024)	/* largest .env read */
#define QUEUE_FIRST_RETRY 300		/* 5 minutes, doubling ... */
#define QUEUE_MAX_RETRY 14400		/* ... up to 4 hours */
#define QUEUE_GIVE_UP (5 * 86400)	/* then the message bounces */
#define QUEUE_ORPHAN_AGE 3600		/* tmp/ and .msg without .env: removed after */

enum queue_rcpt_state { QUEUE_RCPT_PENDING = 0, QUEUE_RCPT_SENT, QUEUE_RCPT_FAILED,
	QUEUE_RCPT_BOUNCED };

struct queue_rcpt {
	char addr[SMTP_MAX_ADDR + 1];
	int local;			/* deliver into a local INBOX */
	enum queue_rcpt_state state;
	char error[QUEUE_MAX_ERROR + 1];	/* last error for this recipient, or "" */
};

struct queue_env {
	char id[QUEUE_ID_LEN + 1];
	char user[QUEUE_MAX_USER + 1];	/* authenticated login */
	char sender[SMTP_MAX_ADDR + 1];
	long long created;		/* unix time of the 250 */
	long long size;			/* bytes of the .msg */
	int body_8bit;
	int smtputf8;
	int attempts;			/* relay attempts that failed temporarily */
	long long next_try;		/* unix time; 0 = now */
	char error[QUEUE_MAX_ERROR + 1];	/* last temporary error, or "" */
	struct queue_rcpt rcpts[QUEUE_MAX_RCPTS];
	size_t nrcpts;
};

/* "pending", "sent", "failed", "bounced". */
const char *queue_rcpt_state_str(enum queue_rcpt_state s);

/* Copies S into OUT (size QUEUE_MAX_ERROR + 1) as one printable line. */
void queue_set_error(char *out, const char *s);

/* Pure: the .env text of ENV into BUF; its length, or -1 if it does not fit. */
long queue_env_format(const struct queue_env *env, char *buf, size_t len);
/* Pure: parses BUF[0..len) into *ENV; 0 or EX_DATAERR with err. */
int queue_env_parse(const char *buf, size_t len, struct queue_env *env, char *err,
		    size_t errlen);

/* Seconds to wait after the N-th failed attempt (N >= 1): 5 min doubling, 4 h cap. */
long long queue_backoff(int attempts);

/* 1 if ID is a well-formed queue id. */
int queue_id_valid(const char *id);
/* A fresh id (time-ordered, random tail) into id[QUEUE_ID_LEN + 1]. */
void queue_new_id(char *id);

/* "<state_dir>/queue" into out; creates it and tmp/ (mode 0700) if missing. */
int queue_init(const char *state_dir, char *out, size_t outlen, char *err, size_t errlen);

/*
 * Starts a message: creates QDIR/tmp/<ID>.msg (O_EXCL, 0600) for writing;
 * *fd gets the descriptor.  Abort with queue_msg_abort().
 */
int queue_msg_begin(const char *qdir, const char *id, int *fd, char *err, size_t errlen);
void queue_msg_abort(const char *qdir, const char *id, int fd);

/*
 * Makes the message durable and queued (see above): fsync FD, rename the
 * .msg in, write the .env, fsync the directory.  Closes FD in every case;
 * on failure nothing is left in the queue.
 */
int queue_msg_commit(const char *qdir, int fd, const struct queue_env *env,
		     char *err, size_t errlen);

/* Reads QDIR/<id>.env; EX_NOINPUT if it is gone. */
int queue_env_read(const char *qdir, const char *id, struct queue_env *env,
		   char *err, size_t errlen);
/* Replaces QDIR/<id>.env durably. */
int queue_env_write(const char *qdir, const struct queue_env *env, char *err, size_t errlen);

/*
 * Opens QDIR/<id>.msg read-only and takes its lock without waiting.
 * EX_TEMPFAIL if another process holds it, EX_NOINPUT if it is gone.
 * Closing *fd releases the lock.
 */
int queue_lock(const char *qdir, const char *id, int *fd, char *err, size_t errlen);

/* Removes a finished message (.env first, then .msg) and fsyncs QDIR. */
int queue_remove(const char *qdir, const char *id, char *err, size_t errlen);
/*
 * The same without the fsync, for a runner that finishes many messages:
 * it calls fsutil_fsync_dir(QDIR) once for a batch.  Until then a crash
 * may bring a finished message back (sent twice, never lost).
 */
int queue_remove_nosync(const char *qdir, const char *id, char *err, size_t errlen);

/* The ids of queued messages (with a .env), oldest first; free with queue_ids_free(). */
int queue_ids(const char *qdir, char ***ids, size_t *n, char *err, size_t errlen);
void queue_ids_free(char **ids, size_t n);

/* Removes tmp/ files and unlocked orphan .msg files older than QUEUE_ORPHAN_AGE. */
void queue_cleanup(const char *qdir, time_t now);

/*
 * Prints the queue like mailq: one line per message, tab-separated:
 *   id  arrival(ISO 8601 UTC)  age(s)  size  sender  recipients  next-retry  attempts  error
 * recipients are "addr" for pending ones and "addr(state)" for others,
 * comma-separated; next-retry is ISO 8601 or "-".  With JSON, an array of
 * objects with the same fields (recipients as objects).  Returns 0 or a
 * sysexits code.
 */
int queue_print(const char *qdir, FILE *out, int json, time_t now, char *err, size_t errlen);
#endif

/*
 * Dotlocks compatible with dovecot's file-dotlock: the lock for FILE is the
 * file "FILE.lock", created with O_EXCL and holding "<pid>:<hostname>".
 *
 * A lock held by someone else is overridden as stale when
 *  - it names a process on this host that no longer exists, or
 *  - it names no local process and neither its mtime nor its ctime changed
 *    for stale_timeout seconds (dovecot's maildir uidlist uses 120).
 * A live local owner is waited for, never overridden; dovecot keeps such
 * locks only for the length of one sync.
 */
#ifndef MK_DOTLOCK_H
#define MK_DOTLOCK_H
#include <stddef.h>

#define DOTLOCK_STALE_TIMEOUT 120	/* dovecot's MAILDIR_UIDLIST_LOCK_STALE_TIMEOUT */
#define DOTLOCK_WAIT_TIMEOUT 122	/* dovecot waits stale timeout + 2 */

struct dotlock;

/*
 * Takes the lock of PATH (the locked file, not the .lock), waiting up to
 * wait_secs (0: try once).  Returns 0 and *out, EX_TEMPFAIL when the lock
 * stays busy, or another sysexits code (EX_NOINPUT when the directory is
 * missing, EX_NOPERM, EX_IOERR) with err set.
 */
int dotlock_take(const char *path, int wait_secs, int stale_secs,
		 struct dotlock **out, char *err, size_t errlen);

/* Updates the lock's mtime so that others do not consider it stale. */
void dotlock_touch(struct dotlock *lk);

/*
 * Removes the lock file if it is still ours (same inode) and frees LK.
 * NULL is allowed.
 */
void dotlock_release(struct dotlock *lk);
#endif

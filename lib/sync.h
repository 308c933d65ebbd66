/*
 * Two-way sync of one provider account with the local Maildir tree
 * (mail-pull(1)): mbsync's "Sync All", "Create Both", "Expunge Both",
 * "CopyArrivalDate yes".
 *
 * Local mail of [account NAME] lives in <mail_dir>/<NAME>/<username>/mail;
 * state in <state_dir>/pull/<NAME>/<folder>.state, one file per folder
 * pair (struct sync_state), replaced atomically and only after the mail it
 * describes is durable on both sides.  A crash at any point leaves
 * messages that exist on both sides without a pair; every run pairs such
 * messages by Message-ID + size before it transfers anything, so nothing
 * is transferred twice.
 *
 * Flags (struct sync_flags) are the Maildir system flags plus keyword bits
 * whose numbering is the local folder's dovecot-keywords letters.
 */
#ifndef MK_SYNC_H
#define MK_SYNC_H
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

#define SYNC_STATE_MAX_SIZE ((size_t)1 << 30)
#define SYNC_STATE_MAX_LINE 8192

struct sync_flags {
	unsigned sys;		/* enum maildir_flag */
	uint32_t kw;		/* bit i: keyword letter 'a' + i of the local folder */
};

struct sync_pair {
	uint32_t ruid, luid;
	struct sync_flags flags;	/* as both sides had them after the last sync */
};

struct sync_state {
	char *remote;			/* provider folder name (mUTF-7), owned */
	uint32_t r_uidvalidity, l_uidvalidity;
	unsigned long long highestmodseq;	/* 0: unknown (no CONDSTORE) */
	uint32_t r_uidnext;		/* provider UIDNEXT when last synced */
	long long l_mtime_new, l_mtime_cur;	/* ns of new/ and cur/ when last scanned */
	struct sync_pair *pairs;	/* ascending by ruid */
	size_t npairs, cap;
};

/*
 * Three-way merge of flags (the man page's rule): every flag added on
 * either side since BASE is added, every flag removed on either side is
 * removed.  (A flag cannot be both added and removed: it was either in
 * BASE or not.)
 */
struct sync_flags sync_flags_merge(struct sync_flags base, struct sync_flags local,
				   struct sync_flags remote);

/* ---- state files ---- */

/* Maps a keyword name to its bit (0..25), or -1 to drop it. */
typedef int (*sync_kw_index_fn)(void *ctx, const char *name);

/*
 * Parses a state file (pure, bounded by len and SYNC_STATE_MAX_LINE).
 * Returns 0 and fills *st (cleared first), or EX_DATAERR "line N: ..."
 * (st is then empty).  Pairs must be ascending by remote UID.
 */
int sync_state_parse(const char *buf, size_t len, sync_kw_index_fn kw, void *kwctx,
		     struct sync_state *st, char *err, size_t errlen);
/* Formats *st; kwnames[i] names keyword bit i (NULL: unnamed, dropped). */
int sync_state_format(const struct sync_state *st, char *const kwnames[26],
		      char **out, size_t *len);
void sync_state_clear(struct sync_state *st);
/* Appends a pair, keeping the order (ruid must be above the last). -1 ENOMEM. */
int sync_state_add(struct sync_state *st, uint32_t ruid, uint32_t luid, struct sync_flags f);
/* Index of the pair with RUID or -1 (binary search). */
long sync_state_find(const struct sync_state *st, uint32_t ruid);
/* Sorts pairs by ruid (after out-of-order additions) and drops duplicates. */
void sync_state_sort(struct sync_state *st);

/* "Sent%2FOld": the state file name for a local folder name. */
int sync_state_file_name(const char *local, char *out, size_t outlen);

/* ---- folder mapping ---- */

struct sync_rfolder {
	char *name;			/* provider name, mUTF-7 */
	char *local;			/* our storage name, or NULL: not synced */
	char sep;			/* provider's hierarchy separator, 0 if none */
	int noselect;
	int special;			/* enum special_use or -1 */
	int special_by;			/* 0 none, 1 config, 2 SPECIAL-USE, 3 common name */
	/* from LIST-STATUS / STATUS, when known */
	int have_status;
	uint32_t uidvalidity, uidnext, messages;
	unsigned long long highestmodseq;
};

/*
 * Decides the local name of every provider folder: INBOX; a special folder
 * (map_* key, else RFC 6154 attribute, else a common name such as "Sent
 * Items", "Spam", "Deleted Messages") becomes "Drafts", "Sent", "Trash",
 * "Junk" or "Archive"; others keep their name with the separator turned
 * into '/'.  A provider folder whose local name is taken by a special
 * folder, or that cannot be a local name, is left unsynced (local NULL).
 */
void sync_map_folders(const struct config_account *a, struct sync_rfolder *v, size_t n);

/* ---- running ---- */

struct sync_opts {
	int dry_run;			/* report what would change, change nothing */
	int progress;			/* progress lines on stderr (a terminal) */
	int debug;			/* protocol trace */
	volatile sig_atomic_t *stop;	/* set by SIGTERM: finish the message, save */
};

struct sync_stats {
	unsigned long long down, up, down_bytes, up_bytes;
	unsigned long long flags_local, flags_remote, expunged_local, expunged_remote;
	unsigned long long paired, folders, folders_skipped, folders_created;
};

/*
 * A provider session kept between runs by --loop and --watch: one login per
 * process rather than one per run (providers rate-limit logins; a run that
 * finds nothing changed then costs a LIST-STATUS).  Kept only logged in
 * with no folder selected.  Zero-initialise; end with sync_session_close().
 */
struct imap_client;
struct sync_session {
	struct imap_client *cl;		/* NULL: none kept */
	int qresync;			/* ENABLE QRESYNC was accepted on it */
};

/* Logs the kept session out (if any). */
void sync_session_close(struct sync_session *s);

/*
 * Syncs every folder of account A.  Returns 0, or EX_UNAVAILABLE (provider
 * unreachable, TLS failure), EX_NOPERM (login refused), EX_TEMPFAIL (the
 * lock is held by another run, a timeout, a folder failed: retry),
 * EX_CONFIG (password file), EX_PROTOCOL, EX_IOERR...; err names the cause.
 * With KEEP (may be NULL), a session kept there by an earlier run or by
 * sync_watch() is used instead of a new login when it still answers (else
 * a new one is made), and the session is left there afterwards for the next
 * run when it is still sound and can be left with nothing selected.
 */
int sync_account(const struct config *cfg, const struct config_account *a,
		 const struct sync_opts *o, struct sync_stats *st, struct sync_session *keep,
		 char *err, size_t errlen);

/*
 * For "mail-folders remote -a NAME": connects, lists the provider's
 * folders and prints one line per folder to OUT:
 *   <provider name UTF-8> TAB <special-use flags or -> TAB <local name or -> TAB <why>
 * where why is "config", "special-use", "common-name", "name" or "skipped".
 * Returns as sync_account().
 */
int sync_print_remote(const struct config *cfg, const struct config_account *a, FILE *out,
		      int debug, char *err, size_t errlen);

/*
 * For --watch: waits until something may need a sync, at most MAX_WAIT
 * seconds or until *o->stop.  For each of the N accounts it keeps an IMAP
 * IDLE on the provider's INBOX (EXAMINE, so nothing is changed there) and
 * watches the local INBOX's new/ and cur/ with inotify; any EXISTS,
 * EXPUNGE, FETCH or VANISHED from a provider, any file created, moved or
 * removed locally, or a dropped connection ends the wait.  Returns 0 (time
 * to sync), or a sysexits code when the watch could not be set up at all
 * (the caller then sleeps instead); err names the cause.  KEEP (NULL, or
 * one per account): the IDLE runs on a kept session when there is one, and
 * the session (kept or new) is left there for the following sync.
 */
int sync_watch(const struct config *cfg, const struct config_account *const *accts, size_t n,
	       const struct sync_opts *o, int max_wait, struct sync_session *const *keep,
	       char *err, size_t errlen);

/* The local Maildir root of A: <mail_dir>/<NAME>/<username>/mail. */
int sync_local_root(const struct config *cfg, const struct config_account *a,
		    char *out, size_t outlen, char *err, size_t errlen);
#endif

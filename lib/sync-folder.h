/*
 * Internal to the sync-*.c files: the state shared while one account is
 * synced (struct sync_run), and one folder pair being synced (struct
 * sync_fctx) with the steps sync_folder() runs on it, one file each:
 *   sync-folder.c    the order of the steps, the folder's state file
 *   sync-remote.c    SELECT/QRESYNC listing, UID sets, expunges there
 *   sync-flags.c     flags between IMAP, Maildir and keyword names; the
 *                    walk over known pairs (merge, Expunge Both); pushes
 *   sync-pair.c      pairing of unpaired messages by Message-ID + size
 *   sync-download.c  downloads into the folder (maildir-add.h)
 *   sync-upload.c    uploads (pipelined APPEND)
 * Not a public API.
 */
#ifndef MK_SYNC_FOLDER_H
#define MK_SYNC_FOLDER_H
#include <limits.h>

#include "imap-client.h"
#include "maildir.h"
#include "sync.h"

#define SYNC_SET_MAX 8000		/* bytes of one UID set in a command */

struct sync_run {
	const struct config *cfg;
	const struct config_account *a;
	const struct sync_opts *o;
	struct sync_stats *st;
	struct imap_client *cl;
	unsigned caps;
	int selected;			/* a SELECT went out: maybe a folder is selected */
	/* progress on a terminal (sync_opts.progress) */
	long long t0_ms;		/* when the run started */
	size_t folder_i, nfolders;	/* this folder is the folder_i-th of nfolders synced */
	unsigned long long msgs_all;	/* MESSAGES of the synced provider folders */
	unsigned long long msgs_before;	/* ... of those already done */
	long long shown_ms;		/* last progress line */
	char root[PATH_MAX];		/* local Maildir root (INBOX) */
	char statedir[PATH_MAX];
};

/* CLOCK_MONOTONIC in milliseconds. */
long long sync_now_ms(void);

/* Reads the password file, connects and logs in to A's provider. */
int sync_connect_login(const struct config_account *a, int debug, struct imap_client **out,
		       char *err, size_t errlen);

/*
 * Syncs the provider folder RF with its local folder rf->local.  Returns 0
 * or a sysexits code; EX_UNAVAILABLE/EX_PROTOCOL mean the connection is
 * gone and the run must stop.
 */
int sync_folder(struct sync_run *run, const struct sync_rfolder *rf, char *err, size_t errlen);

/* ---- one folder pair (sync_folder()'s context) ---- */

struct sync_rmsg {
	uint32_t uid;
	struct sync_flags flags;
	int seen;		/* present in this run's listing */
};

struct sync_newmsg {			/* an unpaired message for Message-ID matching */
	uint32_t uid;
	long long size;
	char *key;
	int matched;
};

struct sync_pending {		/* downloaded, waiting for its local UID */
	uint32_t ruid;
	struct sync_flags flags;
};

struct sync_rchange { uint32_t ruid; struct sync_flags f; };	/* a flag push */

struct sync_fctx {
	struct sync_run *run;
	const struct sync_rfolder *rf;
	char dir[PATH_MAX];
	char qname[2100];
	struct maildir_folder *f;
	struct maildir_keywords kw;
	struct sync_state st;
	char statepath[PATH_MAX + 1300];
	long long mt_new, mt_cur;
	/* SELECT results */
	uint32_t uidvalidity, uidnext;
	unsigned long long modseq;
	int qresync;
	struct sync_rmsg *rm;	/* remote listing or changes, ascending by uid */
	size_t nrm, caprm;
	unsigned char *vanished;	/* per pair: 1 when VANISHED named it */
	/* downloads */
	struct maildir_add *b;	/* downloads not yet durable, one pending entry each */
	int d_open;	/* a message is being written */
	int d_cr;
	int d_failed;
	struct sync_pending *pend;
	size_t npend, cappend;
	struct sync_newmsg *rnew;
	size_t nrnew, caprnew;
	size_t d_done, d_n;		/* downloads stored / planned (progress) */
	long long d_t0_ms;
	unsigned long long d_bytes0;
	int failed;
	char err[512];
};

/*
 * The functions below return 0 or a sysexits code with the reason in
 * c->err; EX_UNAVAILABLE/EX_PROTOCOL mean the connection is gone.
 */

/*
 * sync-download.c: the progress line (a terminal only): the folder's
 * downloads DONE of N with bytes and rate, and the whole run's share of the
 * provider's messages with an ETA.  FORCE: now, else at most 4 a second.
 */
void sync_progress(struct sync_fctx *c, size_t done, size_t n, int force);

/* sync-folder.c: writes the state; until FINAL, one that makes the next run look again. */
int sync_folder_save_state(struct sync_fctx *c, int final);

/* sync-remote.c */
/* SELECT (QRESYNC when the state allows), then the listing into c->rm. */
int sync_remote_select(struct sync_fctx *c);
/* The listed provider message with UID, or NULL. */
const struct sync_rmsg *sync_remote_find(const struct sync_fctx *c, uint32_t uid);
/* Marks UIDS (ascending) \Deleted and expunges them (UID EXPUNGE with UIDPLUS). */
int sync_remote_expunge(struct sync_fctx *c, const uint32_t *uids, size_t n);
/* Splits ascending UIDS into NULL-terminated set strings of at most SYNC_SET_MAX bytes. */
char **sync_uid_sets(const uint32_t *uids, size_t n, size_t *nsets);
void sync_uid_sets_free(char **v);
int sync_u32_cmp(const void *a, const void *b);
/* 1 if X is in the ascending V[0..n). */
int sync_u32_in(const uint32_t *v, size_t n, uint32_t x);

/* sync-flags.c */
/* Bit of keyword NAME in the local folder, adding it there if new; -1 to drop it. */
int sync_flags_keyword(struct sync_fctx *c, const char *name);
/* Flags of the IMAP flag list at t[l]. */
struct sync_flags sync_flags_from_list(struct sync_fctx *c, const struct imap_tok *t,
				       size_t l);
/* "\Seen $Forwarded name..." for F. */
void sync_flags_to_str(const struct sync_fctx *c, struct sync_flags f, char *out, size_t len);
static inline int sync_flags_eq(struct sync_flags a, struct sync_flags b)
{
	return a.sys == b.sys && a.kw == b.kw;
}
/*
 * Step 3, the pairs of the state: merges flags (three-way, sync.h), keeps a
 * message deleted on one side but newly flagged on the other, drops pairs
 * gone on both sides.  Local flag changes and expunges are made here;
 * provider flag changes go to rch (*nr) and provider expunges to rexp
 * (*nrexp, ascending), each with room for c->st.npairs entries.
 * lpaired[i] is set for each local message c->f->msgs[i] still paired;
 * *nl counts local flag changes.  c->st keeps the surviving pairs.
 */
int sync_flags_walk_pairs(struct sync_fctx *c, unsigned char *lpaired,
			  struct sync_rchange *rch, size_t *nr, uint32_t *rexp, size_t *nrexp,
			  size_t *nl);
/* Pipelined UID STORE FLAGS.SILENT of each change. */
int sync_flags_push(struct sync_fctx *c, struct sync_rchange *v, size_t n);

/* sync-pair.c */
/*
 * Step 4: matches the provider messages DOWN and local messages UP (both
 * unpaired) by Message-ID + size, pairs each match with the union of its
 * flags (provider pushes appended to *rch / *nr), drops the matches from
 * both lists and saves the state.
 */
int sync_pair_match(struct sync_fctx *c, uint32_t *down, size_t *ndown, uint32_t *up,
		    size_t *nup, struct sync_rchange **rch, size_t *nr);

/* sync-download.c */
/* Streams UIDS down into the folder; the pairs are recorded as batches become durable. */
int sync_download(struct sync_fctx *c, const uint32_t *uids, size_t n);
/* Makes the pending downloads durable and visible, records their pairs, saves the state. */
int sync_download_checkpoint(struct sync_fctx *c);

/* sync-upload.c */
/* APPENDs the local messages LUIDS (pipelined with LITERAL+), pairing by APPENDUID. */
int sync_upload(struct sync_fctx *c, const uint32_t *luids, size_t n);
#endif

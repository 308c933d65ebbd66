/*
 * Internal to sync.c / sync-folder.c: the state shared while one account
 * is synced, and the per-folder sync.  Not a public API.
 */
#ifndef MK_SYNC_FOLDER_H
#define MK_SYNC_FOLDER_H
#include <limits.h>

#include "imap-client.h"
#include "sync.h"

struct sync_run {
	const struct config *cfg;
	const struct config_account *a;
	const struct sync_opts *o;
	struct sync_stats *st;
	struct imap_client *cl;
	unsigned caps;
	char root[PATH_MAX];		/* local Maildir root (INBOX) */
	char statedir[PATH_MAX];
};

/* Reads the password file, connects and logs in to A's provider. */
int sync_connect_login(const struct config_account *a, int debug, struct imap_client **out,
		       char *err, size_t errlen);

/*
 * Syncs the provider folder RF with its local folder rf->local.  Returns 0
 * or a sysexits code; EX_UNAVAILABLE/EX_PROTOCOL mean the connection is
 * gone and the run must stop.
 */
int sync_folder(struct sync_run *run, const struct sync_rfolder *rf, char *err, size_t errlen);
#endif

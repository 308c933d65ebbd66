/*
 * The folder tree of one user's Maildir (~/mail), laid out as dovecot's
 * LAYOUT=fs with '/' as hierarchy separator, and its subscriptions file.
 *
 * Names here are storage names (modified UTF-7, '/'-separated, checked by
 * mailbox_name_check()); "INBOX" is ~/mail itself.  The rules are
 * dovecot's, so both servers show one tree the same way:
 *  - every directory below ~/mail other than cur/, new/, tmp/ and names
 *    starting with '.' is a folder;
 *  - a folder without cur/ that has child folders is \Noselect (an
 *    intermediate level created by "CREATE a/b/c"); without children it
 *    is an empty mailbox whose cur/new/tmp are created when first used;
 *  - "subscriptions" is "V\t2\n\n" followed by one name per line with
 *    '\t' for the hierarchy separator (dovecot 2.3's version 2 format).
 *
 * All functions return 0 or a sysexits code with a one-line message in err:
 * EX_DATAERR bad name, EX_NOINPUT no such folder, EX_CANTCREAT already
 * exists / not allowed, EX_IOERR and friends for I/O.  Writes are durable
 * (fsync file and directory) before they return.
 */
#ifndef MK_FOLDERS_H
#define MK_FOLDERS_H
#include <stddef.h>

struct folder_info {
	char *name;		/* storage name; "INBOX" first */
	int selectable;		/* 0: \Noselect */
	int has_children;
	int subscribed;
};

struct folder_list {
	struct folder_info *v;
	size_t n;
};

/*
 * Lists every folder under MAILDIR (INBOX first, then by name), with
 * subscription marks.  At most FOLDERS_MAX folders, FOLDERS_MAX_DEPTH deep.
 */
#define FOLDERS_MAX 10000
#define FOLDERS_MAX_DEPTH 32
int folders_list(const char *maildir, struct folder_list *out, char *err, size_t errlen);
void folders_list_free(struct folder_list *l);

/* The directory of NAME ("INBOX" -> MAILDIR) after checking the name. */
int folder_dir(const char *maildir, const char *name, char *out, size_t outlen,
	       char *err, size_t errlen);

/* 1 if NAME exists as a folder (selectable or not), else 0. */
int folder_exists(const char *maildir, const char *name);

/*
 * Creates NAME (and missing parent levels) with cur/ new/ tmp/ and a
 * dovecot-uidlist.  EX_CANTCREAT if it exists (unless it is a \Noselect
 * level, which becomes selectable, as CREATE does in dovecot).
 */
int folder_create(const char *maildir, const char *name, char *err, size_t errlen);

/*
 * Deletes NAME and its messages.  INBOX cannot be deleted.  A folder with
 * children keeps its directory as a \Noselect level (RFC 3501 §6.3.4); a
 * \Noselect level with children is refused, as dovecot refuses it.
 */
int folder_delete(const char *maildir, const char *name, char *err, size_t errlen);

/*
 * Renames FROM to TO with its children (one rename(2)); parents of TO are
 * created.  Renaming INBOX moves its messages into the new folder and
 * leaves INBOX empty (RFC 3501 §6.3.5).
 */
int folder_rename(const char *maildir, const char *from, const char *to,
		  char *err, size_t errlen);

/* Subscriptions: read into a list of names (caller frees with folders_names_free). */
int folders_subscriptions(const char *maildir, char ***names, size_t *n,
			  char *err, size_t errlen);
void folders_names_free(char **names, size_t n);
/* Adds (on = 1) or removes NAME; the file is replaced atomically. */
int folders_subscribe(const char *maildir, const char *name, int on, char *err, size_t errlen);
#endif

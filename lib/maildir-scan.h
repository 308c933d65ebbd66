/*
 * Internal to lib/maildir*.c: one scan of a folder's new/ and cur/, the
 * files' names in one pool, matched to uidlist records through a hash of
 * their base names.  Not thread-safe; the caller owns the struct and
 * releases it with maildir_scan_free().
 */
#ifndef MK_MAILDIR_SCAN_H
#define MK_MAILDIR_SCAN_H
#include <stddef.h>
#include <stdint.h>

#include "maildir-name.h"
#include "uidlist.h"

/*
 * One file found in new/ or cur/ during a scan.  Names live in the scan's
 * pool (one growing buffer, NUL-terminated), not in one allocation each.
 */
struct maildir_scan_ent {
	uint32_t name_off;	/* into scan.pool */
	uint16_t name_len, base_len;
	uint32_t keywords;
	uint8_t flags;
	uint8_t in_new : 1;
	uint8_t matched : 1;	/* a uidlist record (or a fresh UID) claimed it */
	uint8_t gone : 1;	/* vanished while we worked on it */
	uint8_t fresh_uid : 1;	/* got a new UID in this sync */
	long long size;		/* ,S= or -1 */
	uint32_t next;		/* hash chain: index + 1 of the next entry, 0 = end */
};

struct maildir_scan {
	struct maildir_scan_ent *ents;
	size_t n, cap;
	char *pool;
	size_t pool_len, pool_cap;
	uint32_t *heads;	/* hash of base name -> index + 1 of first entry */
	size_t nheads;		/* power of two */
};

#define MAILDIR_SCAN_NAME(s, e) ((s)->pool + (e)->name_off)

enum { MAILDIR_SCAN_UNCLAIMED, MAILDIR_SCAN_FRESH };

void maildir_scan_free(struct maildir_scan *s);
/* Reads new/ and cur/ of FOLDER into S (emptied first); 0 or a sysexits code. */
int maildir_scan_all(struct maildir_scan *s, const char *folder, char *err, size_t errlen);
/* Sets E's name (added to the pool) and what MN says of it; -1 on ENOMEM. */
int maildir_scan_set_name(struct maildir_scan *s, struct maildir_scan_ent *e, const char *name,
			  size_t len, const struct maildir_name *mn);
/* The first entry with FNAME's base (blen bytes) that is unclaimed / got a fresh UID. */
struct maildir_scan_ent *maildir_scan_find_base(struct maildir_scan *s, const char *fname,
						size_t blen, int which);
/* An unclaimed entry with FNAME's base, or NULL. */
struct maildir_scan_ent *maildir_scan_find(struct maildir_scan *s, const char *fname);
/* Claims a file for each record (rec_ent[i], NULL if none); returns how many have none. */
size_t maildir_scan_match(struct maildir_scan *s, struct uidlist *ul,
			  struct maildir_scan_ent **rec_ent);
/* qsort_r() comparison of two struct maildir_scan_ent * by name; arg is the pool. */
int maildir_scan_name_cmp(const void *a, const void *b, void *pool);
#endif

/*
 * dovecot-uidlist: the UID <-> file map of one Maildir folder.
 *
 *   3 V<uidvalidity> N<nextuid> G<guid hex>     header (fields in any order)
 *   <uid> [<X><value> ...] :<file name>          one record per message
 *
 * Version 1 (Courier's "1 <uidvalidity> <nextuid>" / "<uid> <file>") is
 * read too; we always write version 3.  Records are strictly ascending by
 * UID.  Dovecot appends records without rewriting the header, so the
 * header's N may lag: next_uid = max(N, last UID + 1).
 *
 * Writers must hold the dotlock "dovecot-uidlist.lock" (dotlock.h) and
 * either append records or replace the file by rename; readers need no
 * lock.  uidlist_parse() is pure and bounded (see struct uidlist_limits),
 * a libFuzzer target; uidlist_read()/write()/append() do the file I/O.
 *
 * Ownership: a struct uidlist owns its records and their strings (those
 * parsed sit in one block, pool; others are allocated one by one: replace
 * or drop a record's string with uidlist_free_name()); uidlist_free()
 * releases everything (NULL allowed).
 */
#ifndef MK_UIDLIST_H
#define MK_UIDLIST_H
#include <stddef.h>
#include <stdint.h>

#define UIDLIST_NAME "dovecot-uidlist"
#define UIDLIST_LOCK_NAME "dovecot-uidlist.lock"
#define UIDLIST_TMP_NAME "dovecot-uidlist.tmp"	/* dovecot's own temp name */
#define UIDLIST_MAX_LINE 4096			/* bytes, without the newline */
#define UIDLIST_MAX_RECORDS 10000000
#define UIDLIST_MAX_SIZE ((size_t)1 << 30)	/* bytes read by uidlist_read() */

struct uidlist_limits {
	size_t max_line;	/* longest accepted line; 0: UIDLIST_MAX_LINE */
	size_t max_records;	/* most records; 0: UIDLIST_MAX_RECORDS */
};

struct uidlist_rec {
	uint32_t uid;
	char *ext;		/* extension fields ("W1234 S1200"), or NULL */
	char *fname;		/* last known file name (no '/') */
};

struct uidlist {
	unsigned version;	/* as read: 1 or 3; uidlist_new() gives 3 */
	uint32_t uidvalidity;
	uint32_t hdr_next_uid;	/* N of the header as read */
	uint32_t next_uid;	/* the UID the next added record gets */
	char guid[33];		/* 32 hex digits, or "" */
	char *hdr_extra;	/* unknown header fields, kept verbatim, or NULL */
	struct uidlist_rec *recs;	/* ascending by uid */
	size_t nrecs, cap;
	char *pool;		/* the parsed records' strings, one block */
	size_t pool_len;
};

/* An empty list (no records, next_uid 1) with a random GUID; NULL on ENOMEM. */
struct uidlist *uidlist_new(uint32_t uidvalidity);
void uidlist_free(struct uidlist *ul);

/*
 * Parses buf[0..len).  Returns 0 and *out, or EX_DATAERR with
 * "line N: what" in err: bad or missing header, UIDVALIDITY 0, a line
 * longer than the limit or with a NUL, a record without ':' or file name,
 * UID 0 or >= 2^32-1, UIDs not ascending, '/' in a file name, more records
 * than the limit, or a last line without its newline (truncated file).
 * An empty buffer is also refused.  EX_OSERR on ENOMEM.
 */
int uidlist_parse(const char *buf, size_t len, const struct uidlist_limits *lim,
		  struct uidlist **out, char *err, size_t errlen);

/*
 * Adds a record for FNAME (copied; ext may be NULL) with the next UID.
 * Returns the UID, or 0 on ENOMEM or when UIDs are exhausted.
 */
uint32_t uidlist_add(struct uidlist *ul, const char *fname, const char *ext);

/* Frees S, a record's ext or fname, unless it lives in the pool (NULL allowed). */
void uidlist_free_name(struct uidlist *ul, char *s);

/* Index of the record with UID, or -1. */
long uidlist_find_uid(const struct uidlist *ul, uint32_t uid);

/* Removes record I (shifting the rest); next_uid is unchanged. */
void uidlist_remove(struct uidlist *ul, size_t i);

/*
 * Formats the header (if with_header) and records [from, nrecs) as they
 * are written to disk.  *out is malloc'd (caller frees); EX_OSERR on ENOMEM.
 */
int uidlist_format(const struct uidlist *ul, int with_header, size_t from,
		   char **out, size_t *len);

/*
 * Reads and parses DIR/dovecot-uidlist.  Returns 0 and *out; 0 and
 * *out == NULL when the file does not exist; or a sysexits code
 * (EX_DATAERR "PATH: line N: ...", EX_IOERR, EX_NOPERM) with err set.
 */
int uidlist_read(const char *dir, struct uidlist **out, char *err, size_t errlen);

/*
 * Replaces DIR/dovecot-uidlist with UL (header N = next_uid) through
 * dovecot-uidlist.tmp, fsync and rename.  The caller holds the lock.
 */
int uidlist_write(const char *dir, const struct uidlist *ul, char *err, size_t errlen);

/*
 * Appends records [from, nrecs) to the existing DIR/dovecot-uidlist and
 * fsyncs it, as dovecot does for new messages.  The caller holds the lock
 * and has read the file under it.
 */
int uidlist_append(const char *dir, const struct uidlist *ul, size_t from,
		   char *err, size_t errlen);

/*
 * The same without the fsync: the file written to stays open in *fd for the
 * caller to fsync (and close) before acknowledging, which it may do after
 * releasing the lock - the records are in that file, and a rewrite under
 * the lock that replaced it since was fsynced with them.
 */
int uidlist_append_nosync(const char *dir, const struct uidlist *ul, size_t from, int *fd,
			  char *err, size_t errlen);
#endif

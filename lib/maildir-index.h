/*
 * The persistent index of one Maildir folder: a snapshot of what
 * maildir_folder_sync() found (UID, flags, keywords, size and file name of
 * every message) together with the identity (inode, size, mtime in ns) of
 * new/, cur/ and dovecot-uidlist it was built from.  A fresh process whose
 * folder still has that identity loads it instead of reading the
 * directories (DESIGN.md §4: a cache, rebuilt when missing or stale).
 *
 * Where: <index_dir>/<hash of the folder path>.index when an index_dir is
 * set with maildir_set_index_dir() (maildir.h), else <folder>/mailkeep-index
 * (folder names starting "mailkeep-" are refused, and folder deletion
 * removes such files).  Written to a temp file and renamed, without fsync:
 * a torn or foreign file is refused by its length and Adler-32 checksum,
 * never trusted.
 *
 * A snapshot is trusted only when the scan that made it started more than
 * one second after the last change of new/, cur/ and the uidlist, as
 * dovecot does: a change within the same clock tick as the scan leaves
 * the mtime as it was and would go unnoticed.
 *
 * File layout (little-endian):
 *   header (MAILDIR_INDEX_HDR_LEN bytes, see maildir-index.c)
 *   folder path (path_len bytes, no NUL)
 *   nmsgs records of MAILDIR_INDEX_REC_LEN bytes, ascending by UID
 *   names (names_len bytes): NUL-terminated file names
 */
#ifndef MK_MAILDIR_INDEX_H
#define MK_MAILDIR_INDEX_H
#include <stddef.h>
#include <stdint.h>

#include "maildir.h"

#define MAILDIR_INDEX_NAME "mailkeep-index"
#define MAILDIR_INDEX_HDR_LEN 216
#define MAILDIR_INDEX_REC_LEN 24
#define MAILDIR_INDEX_MAX_MSGS 10000000u
#define MAILDIR_INDEX_MAX_PATH 4096u

struct maildir_index_hdr {
	struct maildir_stamp new_st, cur_st, ul_st;
	int64_t scan_started;	/* time() before the scan began */
	uint32_t uidvalidity, next_uid;
	uint32_t nmsgs, names_len, path_len;
};

/* One message as stored. */
struct maildir_index_rec {
	uint32_t uid;
	uint32_t keywords;
	uint32_t name_off;	/* into the names area */
	uint16_t name_len;	/* without the NUL */
	uint8_t flags;		/* enum maildir_flag */
	uint8_t in_new;
	int64_t size;		/* -1 unknown */
};

/* A parsed snapshot: pointers into the caller's buffer. */
struct maildir_index_view {
	struct maildir_index_hdr hdr;
	const char *path;		/* path_len bytes, not NUL-terminated */
	const unsigned char *recs;	/* nmsgs * MAILDIR_INDEX_REC_LEN */
	const char *names;		/* names_len bytes */
};

/*
 * Pure parser over buf[0..len), a libFuzzer target: checks the magic,
 * the exact length, the checksum and every record (UIDs ascending and below
 * next_uid, names inside the names area, NUL-terminated, 1..255 bytes
 * without '/' or NUL, flags and in_new in range).  Returns 0 and *v, or
 * -1 (no allocation either way).  Only the header is looked at when
 * hdr_only (to compare stamps before reading the rest).
 */
int maildir_index_parse(const void *buf, size_t len, int hdr_only,
			struct maildir_index_view *v);

/*
 * Writes the checksum that BUF[0..len) must carry (a fuzz target seals its
 * inputs so that they reach the record checks); -1 if the header itself
 * does not parse.
 */
int maildir_index_seal(void *buf, size_t len);

/* Bytes of header, path and records for a parsed header. */
size_t maildir_index_head_len(const struct maildir_index_hdr *h);

/* Record I of a parsed view (I < hdr.nmsgs). */
void maildir_index_get(const struct maildir_index_view *v, size_t i,
		       struct maildir_index_rec *r);

/*
 * Serialises a snapshot: the stamps, scan time, UIDVALIDITY and next UID
 * of H (its counts are computed here), PATH and the N messages of MSGS
 * (ascending by UID).  *out is malloc'd; 0, or -1 on ENOMEM or when a
 * count or a name does not fit the format.
 */
int maildir_index_format(const struct maildir_index_hdr *h, const char *path,
			 const struct maildir_msg *msgs, size_t n,
			 void **out, size_t *outlen);
/* The index file of F's folder (see above) into out; -1 if it does not fit. */
int maildir_index_path(const struct maildir_folder *f, char *out, size_t outlen);

/* stat() of FOLDER/NAME as a stamp (all zero if it fails). */
void maildir_stamp_of(const char *folder, const char *name, struct maildir_stamp *st);

/*
 * Replaces F's messages with the snapshot if it matches the current
 * stamps of F's folder and is trustworthy (see above).  0 when loaded,
 * -1 when not (F unchanged; the caller scans).
 */
int maildir_index_load(struct maildir_folder *f);

/*
 * Writes F's messages and stamps as the snapshot (temp file + rename, no
 * fsync).  The caller holds the uidlist lock.  Failures are only logged
 * (debug): the next reader scans.
 */
void maildir_index_save(const struct maildir_folder *f);

/* 1 if the folder has an index file (current or not). */
int maildir_index_exists(const struct maildir_folder *f);
/* Frees F's messages and names (those outside the names area one by one). */
void maildir_msgs_free(struct maildir_folder *f);
/* Gives M its own copy of NAME (NULL: none), releasing the old one; -1 on ENOMEM. */
int maildir_msg_set_name(struct maildir_folder *f, struct maildir_msg *m, const char *name);
#endif

/*
 * Maildir message file names, as written by us, dovecot and mbsync:
 *
 *   <base>[:2,<flags>[,<extra>]]
 *   base = <secs>.M<usecs>P<pid>Q<n>.<host>[,S=<size>][,W=<vsize>][,U=<uid>]...
 *
 * The base is everything before the first ':' and never changes while the
 * message lives (flags change by rename); it is what dovecot-uidlist
 * records are matched on.  Flags are the standard letters DFPRST and the
 * keyword letters a-z (see dovecot-keywords); anything after a ',' inside
 * the info part belongs to someone else and is kept verbatim.
 *
 * Pure functions over buffers: the parser never reads past len and never
 * allocates, so it is a libFuzzer target.
 */
#ifndef MK_MAILDIR_NAME_H
#define MK_MAILDIR_NAME_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MAILDIR_NAME_MAX 255	/* one path component */

enum maildir_flag {
	MAILDIR_FLAG_DRAFT = 1 << 0,	/* D */
	MAILDIR_FLAG_FLAGGED = 1 << 1,	/* F */
	MAILDIR_FLAG_PASSED = 1 << 2,	/* P: forwarded */
	MAILDIR_FLAG_REPLIED = 1 << 3,	/* R: \Answered */
	MAILDIR_FLAG_SEEN = 1 << 4,	/* S */
	MAILDIR_FLAG_TRASHED = 1 << 5,	/* T: \Deleted */
};

struct maildir_name {
	size_t base_len;	/* bytes before the first ':' (or all) */
	int has_info;		/* ":2," present */
	unsigned flags;		/* enum maildir_flag bits */
	uint32_t keywords;	/* bit i: letter 'a' + i */
	size_t extra_off;	/* offset of ",<extra>" in the info part, 0 if none */
	long long size;		/* ,S= value, or -1 */
	long long vsize;	/* ,W= value, or -1 */
	long long mbsync_uid;	/* ,U= value, or -1 */
};

/*
 * Parses NAME[0..len).  Returns 0, or -1 when it cannot be a message file:
 * empty, longer than MAILDIR_NAME_MAX, starts with '.', contains '/', NUL
 * or a control character, or has an empty base.  Malformed S=/W=/U= values
 * are ignored (left -1), as dovecot ignores them.
 */
int maildir_name_parse(const char *name, size_t len, struct maildir_name *out);

/*
 * Writes into out the name with NAME's base, ":2," and the given flags and
 * keywords in dovecot's order (DFPRST, then a-z), followed by NAME's
 * ",<extra>" if any.  Returns 0, or -1 if NAME is invalid or the result
 * does not fit in outlen or MAILDIR_NAME_MAX.
 */
int maildir_name_with_flags(const char *name, unsigned flags, uint32_t keywords,
			    char *out, size_t outlen);

/*
 * A fresh unique base "<secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>,W=<vsize>"
 * (host with '/' and ':' escaped as \057 and \072); n counts per process.
 * size/vsize < 0 are left out.  Returns 0 or -1 if it does not fit.
 */
int maildir_name_new_base(char *out, size_t outlen, long long size, long long vsize);

/* Flags as IMAP system-flag words ("\Seen \Flagged"), for messages and tests. */
void maildir_name_flags_str(unsigned flags, char *out, size_t outlen);
#endif

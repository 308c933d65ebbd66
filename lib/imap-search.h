/*
 * SEARCH keys (RFC 3501 §6.4.4, RFC 5182 "$", RFC 7162 MODSEQ, RFC 5032
 * YOUNGER/OLDER) parsed into a tree, and a pure evaluator over a message
 * accessor, so it is testable without a mailbox.
 *
 * imap_search_parse() takes the SEARCH arguments (after the tag/command,
 * including an optional CHARSET UTF-8|US-ASCII prefix) and returns a tree
 * owned by the caller (imap_search_free), or NULL with *err a static
 * message for BAD (or "[BADCHARSET ...]" text for an unknown charset,
 * flagged by *badcharset).  Depth is bounded by the parser's nesting
 * limit; at most max_keys keys are accepted.
 */
#ifndef MK_IMAP_SEARCH_H
#define MK_IMAP_SEARCH_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "imap-parser.h"
#include "imap-seqset.h"

enum imap_search_flag {
	IMAP_SEARCH_SEEN = 1 << 0, IMAP_SEARCH_ANSWERED = 1 << 1, IMAP_SEARCH_FLAGGED = 1 << 2,
	IMAP_SEARCH_DELETED = 1 << 3, IMAP_SEARCH_DRAFT = 1 << 4, IMAP_SEARCH_RECENT = 1 << 5,
};

enum imap_search_op {
	IMAP_SK_ALL, IMAP_SK_AND, IMAP_SK_OR, IMAP_SK_NOT,
	IMAP_SK_SEQSET, IMAP_SK_UIDSET,
	IMAP_SK_FLAG, IMAP_SK_UNFLAG, IMAP_SK_KEYWORD, IMAP_SK_UNKEYWORD, IMAP_SK_NEW, IMAP_SK_OLD,
	IMAP_SK_BEFORE, IMAP_SK_ON, IMAP_SK_SINCE,              /* internal date */
	IMAP_SK_SENTBEFORE, IMAP_SK_SENTON, IMAP_SK_SENTSINCE,  /* Date: header */
	IMAP_SK_LARGER, IMAP_SK_SMALLER,
	IMAP_SK_HEADER,                 /* str = field name, str2 = substring */
	IMAP_SK_BODY, IMAP_SK_TEXT,     /* str = substring */
	IMAP_SK_MODSEQ, IMAP_SK_YOUNGER, IMAP_SK_OLDER,
};

struct imap_search_key {
	enum imap_search_op op;
	struct imap_search_key *child;  /* AND/OR/NOT operands, linked by next */
	struct imap_search_key *next;
	unsigned flag;                  /* FLAG/UNFLAG */
	char *str, *str2;
	uint64_t num;                   /* LARGER/SMALLER/MODSEQ/YOUNGER/OLDER */
	time_t date;                    /* the day, 00:00 UTC */
	struct imap_seqset set;
};

struct imap_search {
	struct imap_search_key *root;   /* an AND */
	int uses_saved;                 /* some set is "$" */
};

struct imap_search *imap_search_parse(const struct imap_arg *args, size_t count,
				      size_t max_keys, const char **err, int *badcharset);
void imap_search_free(struct imap_search *s);

/* What the evaluator asks about one message.  Callbacks get `ctx`. */
struct imap_search_msg {
	void *ctx;
	uint32_t seq, uid, max_seq, max_uid;    /* max_* resolve "*" */
	unsigned flags;                         /* enum imap_search_flag */
	time_t internaldate;
	int internaldate_tz;                    /* minutes; dates compare in this zone */
	uint64_t size;                          /* RFC822.SIZE */
	uint64_t modseq;
	time_t now;                             /* for YOUNGER/OLDER */
	int (*has_keyword)(void *ctx, const char *keyword);
	/* the n-th (0-based) value of header `name`, NULL past the last */
	const char *(*header)(void *ctx, const char *name, unsigned n, size_t *len);
	/* 1 when the body (text = 0) or the whole message (text = 1) contains
	 * needle, case-insensitively (after transfer decoding if it can) */
	int (*contains)(void *ctx, const char *needle, int text);
	/* membership in the saved result "$" */
	int (*in_saved)(void *ctx, uint32_t uid);
};

/* 1 when the message matches, else 0. */
int imap_search_match(const struct imap_search *s, const struct imap_search_msg *m);

/* Case-insensitive (ASCII) substring test, for callers' `contains`. */
int imap_search_substr(const char *hay, size_t hlen, const char *needle);
#endif

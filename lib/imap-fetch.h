/*
 * FETCH attribute parsing (RFC 3501 §6.4.5, RFC 3516 BINARY, RFC 7162
 * MODSEQ): from the argument tree of imap-parser into a struct the server
 * walks when answering.
 *
 * imap_fetch_parse() takes the FETCH argument after the sequence set (an
 * atom, a macro ALL/FAST/FULL, or a parenthesised list) and returns a
 * newly allocated struct imap_fetch owned by the caller (imap_fetch_free),
 * or NULL with *err set to a static message for "BAD".  The struct copies
 * what it needs: it stays valid after the parser moves on.  Memory is
 * bounded by the argument tree (one section per list element).
 */
#ifndef MK_IMAP_FETCH_H
#define MK_IMAP_FETCH_H
#include <stddef.h>
#include <stdint.h>

#include "imap-parser.h"
#include "mime.h"

enum imap_fetch_item {
	IMAP_FETCH_FLAGS         = 1 << 0,
	IMAP_FETCH_INTERNALDATE  = 1 << 1,
	IMAP_FETCH_RFC822_SIZE   = 1 << 2,
	IMAP_FETCH_ENVELOPE      = 1 << 3,
	IMAP_FETCH_BODY          = 1 << 4,  /* BODY without [] */
	IMAP_FETCH_BODYSTRUCTURE = 1 << 5,
	IMAP_FETCH_UID           = 1 << 6,
	IMAP_FETCH_MODSEQ        = 1 << 7,
	IMAP_FETCH_RFC822        = 1 << 8,  /* = BODY[] answered as RFC822; sets \Seen */
	IMAP_FETCH_RFC822_HEADER = 1 << 9,  /* = BODY.PEEK[HEADER] */
	IMAP_FETCH_RFC822_TEXT   = 1 << 10, /* = BODY[TEXT]; sets \Seen */
};

enum imap_fetch_section_type {
	IMAP_FETCH_SECTION_BODY,        /* BODY[...] / BODY.PEEK[...] */
	IMAP_FETCH_SECTION_BINARY,      /* BINARY[...] / BINARY.PEEK[...] */
	IMAP_FETCH_SECTION_BINARY_SIZE, /* BINARY.SIZE[...] */
};

struct imap_fetch_section {
	enum imap_fetch_section_type type;
	int peek;                       /* .PEEK: do not set \Seen */
	struct mime_section section;    /* points into this struct's own memory */
	int has_partial;
	uint64_t partial_offset, partial_max;
	/* the item name for the response, e.g. "BODY[HEADER.FIELDS (From)]<0>"
	 * (RFC 3501: the partial is echoed with its offset only) */
	char *name;
};

struct imap_fetch {
	unsigned items;                 /* enum imap_fetch_item bits */
	struct imap_fetch_section *sections;
	size_t nsections;
	int sets_seen;                  /* some item sets \Seen (RFC822, BODY[..], BINARY[..]) */
};

struct imap_fetch *imap_fetch_parse(const struct imap_arg *arg, const char **err);
void imap_fetch_free(struct imap_fetch *f);
#endif

/*
 * Streaming MIME structure parser for IMAP: ENVELOPE, BODY/BODYSTRUCTURE
 * and BODY[section] over one message held in memory (usually mmap'd).
 *
 * Sizes.  Maildir files written by dovecot and by us may use bare LF line
 * ends; IMAP counts every line end as CRLF.  All sizes this module reports
 * (RFC822.SIZE, BODYSTRUCTURE sizes, section lengths and <partial>
 * offsets) are such "virtual" CRLF sizes (dovecot's W=), and section bytes
 * are produced with bare LFs turned into CRLF.  Line counts are the number
 * of LFs in the part's body, the LF before a boundary belonging to the
 * boundary — the way dovecot 2.3 counts them; the outputs are compared
 * byte for byte with dovecot's in tests/data/mime/.
 *
 * Memory.  mime_parse() copies nothing from the message: it allocates one
 * struct per MIME part (at most limits->max_parts; more parts are folded
 * into their parent's body) and nests at most limits->max_depth levels
 * (deeper parts are treated as opaque leaves).  Header fields past
 * limits->max_header bytes of one header are not looked at.  The message
 * buffer must outlive the returned struct mime_message.
 */
#ifndef MK_MIME_H
#define MK_MIME_H
#include <stddef.h>
#include <stdint.h>

#include "imap-string.h"

struct mime_limits {
	unsigned max_depth;     /* e.g. 50 */
	unsigned max_parts;     /* e.g. 10000 */
	size_t max_header;      /* e.g. 1 MiB */
};

struct mime_part {
	struct mime_part *parent, *children, *next;
	unsigned nchildren;
	size_t hdr_off, hdr_len;        /* physical, header incl. the blank line */
	size_t body_off, body_len;      /* physical */
	uint64_t hdr_vsize, body_vsize; /* CRLF sizes */
	uint64_t body_lines;
	int is_multipart;       /* children are the parts */
	int is_message;         /* message/rfc822: one child, the embedded message */
	int in_digest;          /* child of multipart/digest: default type message/rfc822 */
};

struct mime_message {
	const char *data;
	size_t len;
	struct mime_part *root; /* the message itself: header + body */
	unsigned nparts;
};

/* Returns NULL only when out of memory.  Free with mime_message_free(). */
struct mime_message *mime_parse(const char *data, size_t len, const struct mime_limits *limits);
void mime_message_free(struct mime_message *msg);

/* RFC822.SIZE: the message's CRLF size. */
uint64_t mime_message_vsize(const struct mime_message *msg);

/* Appends the ENVELOPE list of the message whose header is part's header
 * (msg->root, or the child of a message/rfc822 part). */
int mime_write_envelope(struct imap_string *out, const struct mime_message *msg,
			const struct mime_part *part);
/* Appends BODYSTRUCTURE (extended = 1) or BODY (extended = 0) of part
 * (normally msg->root). */
int mime_write_bodystructure(struct imap_string *out, const struct mime_message *msg,
			     const struct mime_part *part, int extended);

enum mime_section_kind {
	MIME_SECTION_BODY,          /* BODY[] or BODY[1.2] */
	MIME_SECTION_HEADER,
	MIME_SECTION_HEADER_FIELDS,
	MIME_SECTION_HEADER_FIELDS_NOT,
	MIME_SECTION_TEXT,
	MIME_SECTION_MIME,
};

struct mime_section {
	const uint32_t *path;       /* part numbers, e.g. {1, 2} for "1.2" */
	size_t npath;
	enum mime_section_kind kind;
	const char *const *fields;  /* HEADER.FIELDS[.NOT] names */
	size_t nfields;
};

/* Appends the section's bytes (CRLF line ends), cut to the partial range
 * [offset, offset + max) when max != UINT64_MAX.  Returns 0, or -1 when
 * the section does not exist (dovecot 2.3 then answers an empty string
 * "", so should the caller) or on out-of-memory (out->failed set).  *vsize (optional)
 * gets the whole section's CRLF size before the cut. */
int mime_write_section(struct imap_string *out, const struct mime_message *msg,
		       const struct mime_section *sec, uint64_t offset, uint64_t max,
		       uint64_t *vsize);

/* The part named by path (npath 0 = the message), following the RFC 3501
 * §6.4.5 numbering; NULL when there is none. */
const struct mime_part *mime_find_part(const struct mime_message *msg,
				       const uint32_t *path, size_t npath);

/* The value of the first header field `name` in part's header, unparsed
 * (leading whitespace skipped, folding kept), or NULL.  *len gets its length. */
const char *mime_header_get(const struct mime_message *msg, const struct mime_part *part,
			    const char *name, size_t *len);
#endif

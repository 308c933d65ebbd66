/*
 * Server-side IMAP command parser: RFC 3501 §9 command syntax, LITERAL+
 * ({n+}, RFC 7888) and binary literals (~{n}, RFC 3516).
 *
 * The parser never reads from a socket.  The caller feeds bytes with
 * imap_parser_feed(), which consumes a prefix of them and answers:
 *   IMAP_PARSE_MORE     everything was consumed, feed more bytes;
 *   IMAP_PARSE_COMMAND  a whole command was parsed: imap_parser_command();
 *   IMAP_PARSE_LITERAL  a literal header {n}/{n+}/~{n} ended its line:
 *                       see imap_parser_literal() and "Literals" below;
 *   IMAP_PARSE_ERROR    the command is invalid: answer "<tag> BAD <msg>"
 *                       (or "* BAD" when no tag was read).  The parser
 *                       skips the rest of the line by itself; when
 *                       *fatal is set (a too-large LITERAL+ whose bytes are
 *                       already on their way) the caller should send BYE
 *                       and close.
 * `*used` tells how many bytes were consumed; unconsumed bytes must be fed
 * again.  Bytes after a parsed command are left unconsumed (pipelining).
 *
 * Literals.  After IMAP_PARSE_LITERAL the caller chooses:
 *   - imap_parser_literal_stream(): the argument becomes a size-only
 *     IMAP_ARG_LITERAL_SIZE; the caller itself consumes the next `size`
 *     bytes of the stream (e.g. APPEND writes them to disk), then goes on
 *     feeding the bytes after them;
 *   - or simply feeds again: the literal is read inline into the parser
 *     (allowed only up to limits.max_inline_literal and the line budget,
 *     otherwise the feed answers IMAP_PARSE_ERROR "Literal too large").
 * For a synchronising literal (!nonsync) the caller sends "+ OK" first in
 * both cases; for LITERAL+ it must not.
 *
 * Memory: one parser holds at most limits.max_line bytes of command text
 * (tag, name, every atom/string, inline literal data, counted on the wire
 * including separators; streamed literal bytes do not count) plus
 * limits.max_args argument nodes.  Nothing else grows with the input.
 * A returned command (tag/name/args and their strings) is owned by the
 * parser and valid until the next feed, reset or free.
 */
#ifndef MK_IMAP_PARSER_H
#define MK_IMAP_PARSER_H
#include <stddef.h>
#include <stdint.h>

struct imap_parser_limits {
	size_t max_line;           /* command text bytes, see above (e.g. 65536) */
	unsigned max_depth;        /* nesting of (...) and [...] (e.g. 16) */
	unsigned max_args;         /* argument nodes in one command (e.g. 4096) */
	uint64_t max_literal;      /* largest literal accepted at all (e.g. 64 MiB) */
	size_t max_inline_literal; /* largest literal read into memory */
};

enum imap_arg_type {
	IMAP_ARG_NIL = 1,       /* the atom NIL (case-insensitive) */
	IMAP_ARG_ATOM,          /* str; for BODY[..]/BINARY[..] also section */
	IMAP_ARG_STRING,        /* quoted string, unescaped in str */
	IMAP_ARG_LITERAL,       /* inline literal data in str/len (may hold NULs if binary) */
	IMAP_ARG_LITERAL_SIZE,  /* streamed literal: literal_size only */
	IMAP_ARG_LIST,          /* (...): list/count */
};

struct imap_arg {
	enum imap_arg_type type;
	const char *str;        /* NUL-terminated; NULL for lists and size-only literals */
	size_t len;
	/* LIST: the elements.  ATOM with has_section: the contents of [...],
	 * e.g. BODY.PEEK[HEADER.FIELDS (From To)] gives str "BODY.PEEK" and
	 * list = { ATOM "HEADER.FIELDS", LIST(ATOM "From", ATOM "To") }. */
	const struct imap_arg *list;
	size_t count;
	int has_section;
	const char *partial;    /* text inside <...> after a section ("0.100"), or NULL */
	uint64_t literal_size;  /* LITERAL and LITERAL_SIZE */
	int literal_binary;     /* was ~{n} */
	int literal_nonsync;    /* was {n+} */
};

struct imap_command {
	const char *tag;
	const char *name;       /* "FETCH"; for "UID FETCH" name is "FETCH" and uid = 1 */
	int uid;
	const struct imap_arg *args;
	size_t count;
};

enum imap_parse_result {
	IMAP_PARSE_MORE = 0,
	IMAP_PARSE_COMMAND,
	IMAP_PARSE_LITERAL,
	IMAP_PARSE_ERROR,
};

struct imap_literal_info {
	uint64_t size;
	int nonsync;            /* {n+}: no continuation wanted */
	int binary;             /* ~{n} */
	int fits_inline;        /* may be read inline by feeding again */
};

struct imap_parser;

/* NULL on out of memory.  The limits are copied. */
struct imap_parser *imap_parser_new(const struct imap_parser_limits *limits);
void imap_parser_free(struct imap_parser *p);
/* Forget any partial command (e.g. after the caller handled an error). */
void imap_parser_reset(struct imap_parser *p);

enum imap_parse_result imap_parser_feed(struct imap_parser *p, const char *buf,
					size_t len, size_t *used);

/* After IMAP_PARSE_COMMAND. */
const struct imap_command *imap_parser_command(const struct imap_parser *p);
/* After IMAP_PARSE_ERROR: the message for BAD (static text) and the tag
 * (NULL when none was read).  *fatal as described above. */
const char *imap_parser_error(const struct imap_parser *p, int *fatal);
/* The tag of the command being parsed, or NULL (useful after LITERAL/ERROR). */
const char *imap_parser_tag(const struct imap_parser *p);
/* The command name read so far (uppercase not applied), or NULL;
 * *uid set for "UID xxx".  Lets the caller decide to stream a literal. */
const char *imap_parser_command_name(const struct imap_parser *p, int *uid);
/* After IMAP_PARSE_LITERAL. */
struct imap_literal_info imap_parser_literal(const struct imap_parser *p);
/* After IMAP_PARSE_LITERAL: the caller consumes the literal's bytes. */
void imap_parser_literal_stream(struct imap_parser *p);

/* Case-insensitive test of an ATOM argument (not quoted/literal). */
int imap_arg_atom_equals(const struct imap_arg *a, const char *word);
/* ATOM, STRING or LITERAL: astring / nstring value; NULL otherwise. */
const char *imap_arg_astring(const struct imap_arg *a);
#endif

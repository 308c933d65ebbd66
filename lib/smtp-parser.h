/*
 * The SMTP submission server's parsers (RFC 5321, RFC 6409): pure
 * functions over caller-owned buffers, no I/O and no allocation, so the
 * fuzz target (tests/fuzz/fuzz_smtp.c) can drive them directly.
 *
 *  - smtp_line_find(): where the next command line ends in an input
 *    buffer, with the line limit as a parameter.
 *  - smtp_parse_command(): one command line into verb + argument.
 *  - smtp_parse_path(): "FROM:<addr> PARAM=V ..." / "TO:<addr> ..." into
 *    an address (bounded by SMTP_MAX_ADDR) and its ESMTP parameters.
 *  - struct smtp_dot: the DATA body decoder.  It removes dot-stuffing,
 *    finds the end marker, and notes bare CR / bare LF and over-long
 *    lines.  Only "<CRLF>.<CRLF>" ends the data, so "<LF>.<LF>" and
 *    friends can never smuggle a second message (the SMTP smuggling
 *    class); messages with a bare CR or LF are refused by the caller.
 *  - smtp_header_from(): the addresses of the From: field of a header
 *    block (RFC 5322 §3.4 mailbox-list, with comments, quoted strings,
 *    groups and folding), for the sender check.
 *
 * Memory: none beyond the structs passed in; every loop is bounded by the
 * input length.
 */
#ifndef MK_SMTP_PARSER_H
#define MK_SMTP_PARSER_H
#include <stddef.h>

#define SMTP_MAX_LINE 1000		/* command line incl. CRLF (RFC 5321 4.5.3.1.4) */
#define SMTP_MAX_AUTH_LINE 12288	/* SASL response line (RFC 4954 4) */
#define SMTP_MAX_DATA_LINE 1000		/* text line incl. CRLF in DATA */
#define SMTP_MAX_ADDR 320		/* octets of one address (64 + 1 + 255) */

enum smtp_verb {
	SMTP_UNKNOWN = 0, SMTP_EHLO, SMTP_HELO, SMTP_STARTTLS, SMTP_AUTH, SMTP_MAIL,
	SMTP_RCPT, SMTP_DATA, SMTP_RSET, SMTP_NOOP, SMTP_QUIT, SMTP_VRFY, SMTP_HELP,
	SMTP_BDAT, SMTP_EXPN,
};

/* Line search results. */
enum { SMTP_LINE_MORE = 0, SMTP_LINE_OK = 1, SMTP_LINE_TOO_LONG = 2 };

/*
 * Looks for "\n" in BUF[0..len).  Returns SMTP_LINE_OK with *linelen (bytes
 * before the CRLF or LF) and *consumed (including the line end); *bare_lf
 * is 1 if the line ended in LF without CR.  SMTP_LINE_MORE if no line end
 * is there yet and len < MAX; SMTP_LINE_TOO_LONG if MAX bytes came without
 * one (the caller discards until the next "\n").
 */
int smtp_line_find(const char *buf, size_t len, size_t max, size_t *linelen,
		   size_t *consumed, int *bare_lf);

struct smtp_command {
	enum smtp_verb verb;
	const char *arg;		/* points into the line, after the verb and one space */
	size_t arglen;			/* 0 if no argument */
};

/*
 * Parses LINE[0..len) (without its line end).  Returns 0 with *cmd filled
 * (SMTP_UNKNOWN for an unknown verb), or -1 for a line with a NUL or
 * another control byte, or a non-ASCII byte in the verb.
 */
int smtp_parse_command(const char *line, size_t len, struct smtp_command *cmd);

/* ESMTP parameters of MAIL FROM (RFC 1870, 6152, 6531, 4954) and RCPT TO. */
enum smtp_body { SMTP_BODY_NONE = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };

struct smtp_path {
	char addr[SMTP_MAX_ADDR + 1];	/* without the angle brackets; "" for "<>" */
	long long size;			/* SIZE=, or -1 */
	enum smtp_body body;
	int smtputf8;			/* SMTPUTF8 given */
	int utf8_addr;			/* the address has non-ASCII bytes */
};

enum {
	SMTP_PATH_OK = 0,
	SMTP_PATH_SYNTAX = -1,		/* 501 5.5.4 / 501 5.1.7 */
	SMTP_PATH_BAD_ADDR = -2,	/* 553 5.1.3: not a mailbox we can use */
	SMTP_PATH_BAD_PARAM = -3,	/* 555 5.5.4: unknown or malformed parameter */
	SMTP_PATH_TOO_LONG = -4,	/* 501 5.1.3 */
};

/*
 * Parses the argument of MAIL (KEYWORD "FROM") or RCPT ("TO"):
 * "FROM:<addr> [PARAMS]".  The address is a dot-atom / quoted-string
 * local part, '@', and a domain or address literal; source routes
 * ("<@a,@b:x@y>") are accepted and dropped as RFC 5321 asks.  No space
 * or control byte may appear in the stored address, so it is safe in a
 * one-line file format.  Non-ASCII bytes need SMTPUTF8 (checked by the
 * caller with utf8_addr).  Parameters allowed with MAIL: SIZE, BODY,
 * SMTPUTF8, AUTH (ignored); with RCPT: none.
 */
int smtp_parse_path(const char *arg, size_t len, const char *keyword, int is_mail,
		    struct smtp_path *out);

/* The domain part of ADDR (after the last '@'), or NULL. */
const char *smtp_addr_domain(const char *addr);

/*
 * DATA decoder.  Feed it the bytes after "354"; it writes the message
 * (dot-stuffing removed, line ends as received) to OUT, which must have
 * room for inlen + 2 bytes (a held-back "." or "\r" may come out late).
 */
struct smtp_dot {
	int state;
	int done;			/* the end marker was seen */
	int bare_cr, bare_lf;		/* a CR or LF outside CRLF was seen */
	size_t line;			/* octets in the current line */
	size_t max_line;		/* longest line seen, incl. its CRLF */
	unsigned long long bytes;	/* message octets produced so far */
};

void smtp_dot_init(struct smtp_dot *d);

/*
 * Consumes bytes of IN[0..inlen) up to and including the end marker and
 * returns how many it consumed (everything, unless the marker came
 * earlier: the rest are the client's next commands).  *outlen gets the
 * number of message bytes written to OUT.  d->done is set at the marker.
 */
size_t smtp_dot_feed(struct smtp_dot *d, const char *in, size_t inlen, char *out,
		     size_t *outlen);

/*
 * Finds the From: field in the header block HDR[0..len) (the bytes before
 * the first empty line; it may also be the whole message) and stores up
 * to MAX addresses (each SMTP_MAX_ADDR + 1 bytes, NUL-terminated, display
 * names and comments removed) into ADDRS.  Returns the number of
 * addresses in the field (may exceed MAX: only MAX are stored), 0 if the
 * field is missing or has none, -1 if there are several From: fields or
 * an address is malformed or too long.
 */
int smtp_header_from(const char *hdr, size_t len, char (*addrs)[SMTP_MAX_ADDR + 1],
		     int max);

/* 1 if A and B are the same address (ASCII case-insensitive), else 0. */
int smtp_addr_equal(const char *a, const char *b);
#endif

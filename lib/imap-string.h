/*
 * A growable byte string for building IMAP protocol output, with the
 * IMAP string encodings (quoted, literal, astring, nstring).
 *
 * Ownership: the caller owns the struct (usually on the stack) and frees
 * the buffer with imap_string_free().  Memory is bounded by `max` given to
 * imap_string_init() (0 = unbounded): an append that would grow past it
 * fails, sets `failed`, and leaves the content as it was; every later
 * append fails too, so callers may check `failed` once at the end.
 * `buf` is always NUL-terminated when non-NULL (the NUL is not in `len`).
 */
#ifndef MK_IMAP_STRING_H
#define MK_IMAP_STRING_H
#include <stddef.h>

struct imap_string {
	char *buf;
	size_t len, cap, max;
	int failed;
};

void imap_string_init(struct imap_string *s, size_t max);
/* Frees the buffer and reinitialises (keeps max).  Accepts NULL. */
void imap_string_free(struct imap_string *s);
/* Empties without freeing; clears `failed`. */
void imap_string_clear(struct imap_string *s);

/* All appenders return 0, or -1 (and set failed) when out of memory / max. */
int imap_string_add(struct imap_string *s, const void *p, size_t n);
int imap_string_adds(struct imap_string *s, const char *str);
int imap_string_addc(struct imap_string *s, char c);
int imap_string_addf(struct imap_string *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* "..." with \ and " escaped when the data has no CR, LF, NUL or 8-bit
 * byte and at most 4 of \ and "; otherwise a literal {n}CRLF<data>. */
int imap_string_add_quoted(struct imap_string *s, const char *p, size_t n);
/* Like add_quoted, but 8-bit bytes stay in the quoted form (UTF-8 text). */
int imap_string_add_quoted_8bit(struct imap_string *s, const char *p, size_t n);
/* An atom when every byte is an ASTRING-CHAR and n > 0 (and it is not
 * NIL), else as imap_string_add_quoted(). */
int imap_string_add_astring(struct imap_string *s, const char *p, size_t n);
/* NIL when p is NULL, else as imap_string_add_quoted(). */
int imap_string_add_nstring(struct imap_string *s, const char *p, size_t n);
/* As nstring, with CR and LF removed first (a space put in when the next
 * line does not start with whitespace): header values for ENVELOPE. */
int imap_string_add_nstring_nolf(struct imap_string *s, const char *p, size_t n);
/* Text for humans (ENVELOPE subject and names): runs of SP/TAB/CR/LF
 * become one space, leading/trailing ones go, NUL becomes 0x80; written
 * quoted when nothing had to change and no " \ or 8-bit byte occurs,
 * else as a literal of the cleaned text ("" when nothing is left). */
int imap_string_add_text(struct imap_string *s, const char *p, size_t n);
/* Appends p converting every bare LF to CRLF (CRLF stays as is). */
int imap_string_add_crlf(struct imap_string *s, const char *p, size_t n);
#endif

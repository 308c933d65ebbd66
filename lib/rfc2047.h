/*
 * RFC 2047 encoded words ("=?UTF-8?B?...?=") in header values, decoded to
 * UTF-8 for SEARCH, as dovecot decodes them before matching.
 *
 * rfc2047_decode() writes the decoded, unfolded value of IN[0..len) into
 * OUT (at most outlen - 1 bytes, always NUL-terminated) and returns its
 * length.  Whitespace between two adjacent encoded words is dropped (RFC
 * 2047 §6.2); CRLF folding becomes nothing.  A word in a charset iconv does
 * not know, or malformed, is copied as it stands.  Pure function apart
 * from iconv; bounded by outlen.
 */
#ifndef MK_RFC2047_H
#define MK_RFC2047_H
#include <stddef.h>

size_t rfc2047_decode(const char *in, size_t len, char *out, size_t outlen);
#endif

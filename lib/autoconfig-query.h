/*
 * Untrusted input of the autoconfig CGI: the query string, the address in
 * it, and the body of an Autodiscover POST.
 *
 * autoconfig_query_get() and autoconfig_email_valid() are pure functions
 * over a buffer: no allocation, no I/O, nothing read past len, and output
 * bounded by the caller's capacity.  They are fuzzed
 * (tests/fuzz/fuzz_autoconfig_query.c).
 */
#ifndef MK_AUTOCONFIG_QUERY_H
#define MK_AUTOCONFIG_QUERY_H
#include <stddef.h>

#define AUTOCONFIG_MAX_QUERY 2048	/* longer query strings are refused */
#define AUTOCONFIG_MAX_BODY 16384	/* largest Autodiscover request body */

enum autoconfig_query_result {
	AUTOCONFIG_Q_FOUND = 0,		/* value decoded into out */
	AUTOCONFIG_Q_ABSENT = 1,	/* no such key */
	AUTOCONFIG_Q_BAD = -1,		/* malformed %-escape, NUL, value longer than cap-1,
					   query longer than AUTOCONFIG_MAX_QUERY, or the key
					   given twice */
};

/*
 * Looks up KEY in an application/x-www-form-urlencoded query string
 * (QS, LEN bytes, "a=1&b=2", ';' not a separator): decodes '+' and %XX
 * into out (cap bytes incl. the NUL).  Keys compare exactly after
 * decoding.  A key given twice is BAD (which one would a proxy have
 * checked?).  *outlen gets the decoded length when FOUND.
 */
int autoconfig_query_get(const char *qs, size_t len, const char *key,
			 char *out, size_t cap, size_t *outlen);

/*
 * Whether S (LEN bytes) is an address we answer for: local@domain, at
 * most AUTOCONFIG_MAX_EMAIL bytes, local part of RFC 5322 atext and
 * dots (no leading, trailing or double dot; no quoted strings), domain
 * of LDH labels (1-63 bytes, no leading or trailing '-') with at least
 * one dot.  No markup, quotes, spaces or control characters can pass.
 */
int autoconfig_email_valid(const char *s, size_t len);

/* Whether S is a host name of LDH labels (at most AUTOCONFIG_MAX_HOST bytes). */
int autoconfig_host_valid(const char *s, size_t len);

/*
 * Reads the EMailAddress of an Autodiscover request body (libxml2, no
 * network, no entity expansion, at most AUTOCONFIG_MAX_BODY bytes) into
 * out (cap bytes).  Returns 0, or -1 if the body is not such a request
 * or the address is not autoconfig_email_valid().
 */
int autoconfig_autodiscover_request(const char *body, size_t len, char *out, size_t cap);
#endif

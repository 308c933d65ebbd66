#include "mailbox-name.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64val(unsigned char c)
{
	const char *p;

	if (c == '\0')
		return -1;
	p = strchr(b64chars, c);
	return p ? (int)(p - b64chars) : -1;
}

/* Appends the UTF-8 encoding of CP; -2 when it does not fit. */
static int put_utf8(char *out, size_t outlen, size_t *o, uint32_t cp)
{
	unsigned char b[4];
	size_t n, i;

	if (cp < 0x80) {
		b[0] = (unsigned char)cp; n = 1;
	} else if (cp < 0x800) {
		b[0] = 0xc0 | (cp >> 6); b[1] = 0x80 | (cp & 0x3f); n = 2;
	} else if (cp < 0x10000) {
		b[0] = 0xe0 | (cp >> 12); b[1] = 0x80 | ((cp >> 6) & 0x3f);
		b[2] = 0x80 | (cp & 0x3f); n = 3;
	} else {
		b[0] = 0xf0 | (cp >> 18); b[1] = 0x80 | ((cp >> 12) & 0x3f);
		b[2] = 0x80 | ((cp >> 6) & 0x3f); b[3] = 0x80 | (cp & 0x3f); n = 4;
	}
	if (*o + n >= outlen)
		return -2;
	for (i = 0; i < n; i++)
		out[(*o)++] = (char)b[i];
	return 0;
}

int mutf7_to_utf8(const char *in, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0;
	int prev_shift_end = 0;	/* the last thing decoded was a shifted run */

	if (outlen == 0)
		return -2;
	while (*p != '\0') {
		if (*p < 0x20 || *p > 0x7e)
			return -1;
		if (*p != '&') {
			if (o + 1 >= outlen)
				return -2;
			out[o++] = (char)*p++;
			prev_shift_end = 0;
			continue;
		}
		p++;
		if (*p == '-') {	/* "&-" is a literal '&' */
			if (o + 1 >= outlen)
				return -2;
			out[o++] = '&';
			p++;
			prev_shift_end = 0;
			continue;
		}
		if (prev_shift_end)
			return -1;	/* "&AAA-&BBB-" must be one run */
		uint32_t bits = 0, high = 0;
		int nbits = 0, nunits = 0, v;

		while ((v = b64val(*p)) >= 0) {
			bits = (bits << 6) | (uint32_t)v;
			nbits += 6;
			p++;
			if (nbits >= 16) {
				uint32_t u = (bits >> (nbits - 16)) & 0xffff;

				nbits -= 16;
				bits &= (1u << nbits) - 1;
				nunits++;
				if (high != 0) {
					if (u < 0xdc00 || u > 0xdfff)
						return -1;
					u = 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00);
					high = 0;
				} else if (u >= 0xd800 && u <= 0xdbff) {
					high = u;
					continue;
				} else if (u >= 0xdc00 && u <= 0xdfff) {
					return -1;
				} else if (u >= 0x20 && u <= 0x7e) {
					return -1;	/* must have been written directly */
				} else if (u == 0) {
					return -1;	/* would end the C string early */
				}
				int r = put_utf8(out, outlen, &o, u);
				if (r < 0)
					return r;
			}
		}
		if (*p != '-' || nunits == 0 || high != 0 || nbits >= 6 || bits != 0)
			return -1;
		p++;
		prev_shift_end = 1;
	}
	out[o] = '\0';
	return 0;
}

/* Decodes one UTF-8 sequence at *p; returns the code point or -1. */
static int32_t get_utf8(const unsigned char **pp)
{
	const unsigned char *p = *pp;
	uint32_t cp, min;
	int n, i;

	if (p[0] < 0x80) {
		*pp = p + 1;
		return p[0];
	} else if ((p[0] & 0xe0) == 0xc0) {
		cp = p[0] & 0x1f; n = 1; min = 0x80;
	} else if ((p[0] & 0xf0) == 0xe0) {
		cp = p[0] & 0x0f; n = 2; min = 0x800;
	} else if ((p[0] & 0xf8) == 0xf0) {
		cp = p[0] & 0x07; n = 3; min = 0x10000;
	} else {
		return -1;
	}
	for (i = 1; i <= n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*pp = p + n + 1;
	return (int32_t)cp;
}

static int put_c(char *out, size_t outlen, size_t *o, char c)
{
	if (*o + 1 >= outlen)
		return -2;
	out[(*o)++] = c;
	return 0;
}

int utf8_to_mutf7(const char *in, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0;

	if (outlen == 0)
		return -2;
	while (*p != '\0') {
		if (*p >= 0x20 && *p <= 0x7e) {
			if (put_c(out, outlen, &o, (char)*p) < 0)
				return -2;
			if (*p == '&' && put_c(out, outlen, &o, '-') < 0)
				return -2;
			p++;
			continue;
		}
		uint32_t bits = 0;
		int nbits = 0;

		if (put_c(out, outlen, &o, '&') < 0)
			return -2;
		while (*p != '\0' && (*p < 0x20 || *p > 0x7e)) {
			int32_t cp = get_utf8(&p);
			uint32_t units[2];
			int nu = 0, k;

			if (cp < 0)
				return -1;
			if (cp >= 0x10000) {
				units[nu++] = 0xd800 + (((uint32_t)cp - 0x10000) >> 10);
				units[nu++] = 0xdc00 + (((uint32_t)cp - 0x10000) & 0x3ff);
			} else {
				units[nu++] = (uint32_t)cp;
			}
			for (k = 0; k < nu; k++) {
				bits = (bits << 16) | units[k];
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					if (put_c(out, outlen, &o,
						  b64chars[(bits >> nbits) & 0x3f]) < 0)
						return -2;
				}
				bits &= (1u << nbits) - 1;
			}
		}
		if (nbits > 0 &&
		    put_c(out, outlen, &o, b64chars[(bits << (6 - nbits)) & 0x3f]) < 0)
			return -2;
		if (put_c(out, outlen, &o, '-') < 0)
			return -2;
	}
	out[o] = '\0';
	return 0;
}

int mailbox_name_is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

void mailbox_name_normalize(char *name)
{
	if (strncasecmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == MAILBOX_SEP))
		memcpy(name, "INBOX", 5);
}

static int reserved_component(const char *c, size_t len, int top)
{
	static const char *const exact[] = { "cur", "new", "tmp", "maildirfolder" };
	size_t i;

	for (i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (len == strlen(exact[i]) && memcmp(c, exact[i], len) == 0)
			return 1;
	if (top && len == 13 && memcmp(c, "subscriptions", 13) == 0)
		return 1;
	if ((len >= 8 && (memcmp(c, "dovecot-", 8) == 0 || memcmp(c, "dovecot.", 8) == 0)) ||
	    (len >= 9 && memcmp(c, "mailkeep-", 9) == 0))
		return 1;
	return 0;
}

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return EX_DATAERR; } while (0)

int mailbox_name_check(const char *name, char *err, size_t errlen)
{
	size_t len = strlen(name), i, start;
	char tmp[MAILBOX_NAME_MAX * 4 + 1];

	if (len == 0)
		FAIL("mailbox name is empty");
	if (len > MAILBOX_NAME_MAX)
		FAIL("mailbox name is longer than %d bytes", MAILBOX_NAME_MAX);
	if (name[0] == MAILBOX_SEP)
		FAIL("mailbox name must not start with '/'");
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f)
			FAIL("mailbox name contains a control character");
		if (c >= 0x80)
			FAIL("mailbox name contains 8-bit bytes (not modified UTF-7)");
		if (c == '*' || c == '%')
			FAIL("mailbox name contains the wildcard '%c'", c);
	}
	for (start = 0; start <= len; ) {
		const char *c = name + start;
		size_t clen = strcspn(c, "/");

		if (clen == 0)
			FAIL("mailbox name has an empty component");
		if (clen > MAILBOX_COMPONENT_MAX)
			FAIL("mailbox name component is longer than %d bytes",
			     MAILBOX_COMPONENT_MAX);
		if ((clen == 1 && c[0] == '.') || (clen == 2 && c[0] == '.' && c[1] == '.'))
			FAIL("mailbox name contains a '%.*s' component", (int)clen, c);
		if (c[0] == '.')
			FAIL("mailbox name component must not start with '.'");
		if (c[0] == '~')
			FAIL("mailbox name component must not start with '~'");
		if (reserved_component(c, clen, start == 0))
			FAIL("mailbox name component '%.*s' is reserved", (int)clen, c);
		start += clen + 1;
	}
	if (mutf7_to_utf8(name, tmp, sizeof(tmp)) != 0)
		FAIL("mailbox name is not valid modified UTF-7");
	for (i = 0; tmp[i] != '\0'; i++)
		if ((unsigned char)tmp[i] < 0x20 || tmp[i] == 0x7f)
			FAIL("mailbox name encodes a control character");
	return 0;
}

int mailbox_name_from_utf8(const char *utf8, char *out, size_t outlen,
			   char *err, size_t errlen)
{
	int r = utf8_to_mutf7(utf8, out, outlen);

	if (r == -1)
		FAIL("mailbox name is not valid UTF-8 or contains a control character");
	if (r == -2)
		FAIL("mailbox name is too long");
	mailbox_name_normalize(out);
	return mailbox_name_check(out, err, errlen);
}

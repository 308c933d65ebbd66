#include "rfc2047.h"

#include <ctype.h>
#include <iconv.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = toupper(c);
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes the B or Q payload into raw bytes; their count, or -1. */
static long decode_payload(char enc, const char *p, size_t n, char *raw, size_t rawlen)
{
	size_t o = 0;

	if (enc == 'B' || enc == 'b') {
		unsigned acc = 0;
		int bits = 0;
		for (size_t i = 0; i < n; i++) {
			int v;
			if (p[i] == '=')
				break;
			if ((v = b64val((unsigned char)p[i])) < 0)
				return -1;
			acc = (acc << 6) | (unsigned)v;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				if (o >= rawlen)
					return -1;
				raw[o++] = (char)((acc >> bits) & 0xff);
			}
		}
		return (long)o;
	}
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (o >= rawlen)
			return -1;
		if (c == '_') {
			raw[o++] = ' ';
		} else if (c == '=' && i + 2 < n && hexval((unsigned char)p[i + 1]) >= 0 &&
			   hexval((unsigned char)p[i + 2]) >= 0) {
			raw[o++] = (char)(hexval((unsigned char)p[i + 1]) * 16 +
					  hexval((unsigned char)p[i + 2]));
			i += 2;
		} else {
			raw[o++] = c;
		}
	}
	return (long)o;
}

/* Converts RAW from CHARSET to UTF-8 into out; bytes written, or -1. */
static long to_utf8(const char *charset, const char *raw, size_t n, char *out, size_t outlen)
{
	iconv_t cd;
	char *in = (char *)(uintptr_t)raw, *o = out;
	size_t inleft = n, outleft = outlen;

	if (strcasecmp(charset, "UTF-8") == 0 || strcasecmp(charset, "US-ASCII") == 0) {
		if (n > outlen)
			return -1;
		memcpy(out, raw, n);
		return (long)n;
	}
	cd = iconv_open("UTF-8", charset);
	if (cd == (iconv_t)-1)
		return -1;
	if (iconv(cd, &in, &inleft, &o, &outleft) == (size_t)-1) {
		iconv_close(cd);
		return -1;
	}
	iconv_close(cd);
	return (long)(outlen - outleft);
}

/*
 * Tries to decode one encoded word at IN[0..len): on success writes the
 * text into out and returns the number of input bytes used, else 0.
 */
static size_t decode_word(const char *in, size_t len, char *out, size_t outlen, size_t *wrote)
{
	char charset[64], raw[1024];
	const char *q1, *q2, *end;
	long nraw, nout;
	size_t cl;

	if (len < 8 || in[0] != '=' || in[1] != '?')
		return 0;
	q1 = memchr(in + 2, '?', len - 2);
	if (q1 == NULL || q1 + 3 >= in + len || q1[2] != '?')
		return 0;
	q2 = q1 + 2;
	end = NULL;
	for (const char *p = q2 + 1; p + 1 < in + len; p++)
		if (p[0] == '?' && p[1] == '=') {
			end = p;
			break;
		}
	if (end == NULL)
		return 0;
	cl = (size_t)(q1 - (in + 2));
	if (cl == 0 || cl >= sizeof(charset))
		return 0;
	memcpy(charset, in + 2, cl);
	charset[cl] = '\0';
	{
		char *star = strchr(charset, '*');	/* RFC 2231 language suffix */
		if (star != NULL)
			*star = '\0';
	}
	nraw = decode_payload(q1[1], q2 + 1, (size_t)(end - (q2 + 1)), raw, sizeof(raw));
	if (nraw < 0)
		return 0;
	nout = to_utf8(charset, raw, (size_t)nraw, out, outlen);
	if (nout < 0)
		return 0;
	*wrote = (size_t)nout;
	return (size_t)(end + 2 - in);
}

size_t rfc2047_decode(const char *in, size_t len, char *out, size_t outlen)
{
	size_t i = 0, o = 0, pending_ws = 0, pending_at = 0;
	int last_was_word = 0;

	if (outlen == 0)
		return 0;
	while (i < len && o + 1 < outlen) {
		size_t wrote = 0, used;
		char c = in[i];

		if (c == '\r' || c == '\n') {	/* unfold */
			i++;
			continue;
		}
		if (c == ' ' || c == '\t') {
			if (pending_ws == 0)
				pending_at = o;
			pending_ws++;
			out[o++] = c;
			i++;
			continue;
		}
		used = decode_word(in + i, len - i, out + o, outlen - 1 - o, &wrote);
		if (used > 0) {
			/* whitespace between two encoded words disappears */
			if (last_was_word && pending_ws > 0) {
				memmove(out + pending_at, out + o, wrote);
				o = pending_at;
			}
			o += wrote;
			i += used;
			last_was_word = 1;
			pending_ws = 0;
			continue;
		}
		out[o++] = c;
		i++;
		last_was_word = 0;
		pending_ws = 0;
	}
	out[o] = '\0';
	return o;
}

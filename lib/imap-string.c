/* IMAP output strings: see imap-string.h. */
#include "imap-string.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void imap_string_init(struct imap_string *s, size_t max)
{
	memset(s, 0, sizeof(*s));
	s->max = max;
}

void imap_string_free(struct imap_string *s)
{
	if (s == NULL)
		return;
	free(s->buf);
	imap_string_init(s, s->max);
}

void imap_string_clear(struct imap_string *s)
{
	s->len = 0;
	s->failed = 0;
	if (s->buf != NULL)
		s->buf[0] = '\0';
}

static int reserve(struct imap_string *s, size_t n)
{
	size_t need, ncap;
	char *nb;

	if (s->failed)
		return -1;
	if (n > (size_t)-1 / 2 - s->len - 1 || (s->max != 0 && s->len + n > s->max)) {
		s->failed = 1;
		return -1;
	}
	need = s->len + n + 1;
	if (need <= s->cap)
		return 0;
	ncap = s->cap ? s->cap : 64;
	while (ncap < need)
		ncap *= 2;
	nb = realloc(s->buf, ncap);
	if (nb == NULL) {
		s->failed = 1;
		return -1;
	}
	s->buf = nb;
	s->cap = ncap;
	return 0;
}

int imap_string_add(struct imap_string *s, const void *p, size_t n)
{
	if (reserve(s, n) < 0)
		return -1;
	if (n > 0)
		memcpy(s->buf + s->len, p, n);
	s->len += n;
	s->buf[s->len] = '\0';
	return 0;
}

int imap_string_adds(struct imap_string *s, const char *str)
{
	return imap_string_add(s, str, strlen(str));
}

int imap_string_addc(struct imap_string *s, char c)
{
	return imap_string_add(s, &c, 1);
}

int imap_string_addf(struct imap_string *s, const char *fmt, ...)
{
	va_list ap;
	int n;
	char small[128];

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		s->failed = 1;
		return -1;
	}
	if ((size_t)n < sizeof(small))
		return imap_string_add(s, small, (size_t)n);
	if (reserve(s, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(s->buf + s->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	s->len += (size_t)n;
	return 0;
}

static int add_literal(struct imap_string *s, const char *p, size_t n)
{
	if (imap_string_addf(s, "{%zu}\r\n", n) < 0)
		return -1;
	return imap_string_add(s, p, n);
}

static int add_quoted(struct imap_string *s, const char *p, size_t n, int allow8)
{
	size_t i, extra = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '\0' || c == '\r' || c == '\n' || (c >= 0x80 && !allow8))
			return add_literal(s, p, n);
		/* past a few escapes a literal is shorter (dovecot's choice too) */
		if ((c == '"' || c == '\\') && ++extra > 4)
			return add_literal(s, p, n);
	}
	if (reserve(s, n + extra + 2) < 0)
		return -1;
	s->buf[s->len++] = '"';
	for (i = 0; i < n; i++) {
		if (p[i] == '"' || p[i] == '\\')
			s->buf[s->len++] = '\\';
		s->buf[s->len++] = p[i];
	}
	s->buf[s->len++] = '"';
	s->buf[s->len] = '\0';
	return 0;
}

int imap_string_add_quoted(struct imap_string *s, const char *p, size_t n)
{
	return add_quoted(s, p, n, 0);
}

int imap_string_add_quoted_8bit(struct imap_string *s, const char *p, size_t n)
{
	return add_quoted(s, p, n, 1);
}

static int is_astring_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return 0;
	return strchr("(){%*\"\\", c) == NULL;
}

int imap_string_add_astring(struct imap_string *s, const char *p, size_t n)
{
	size_t i;

	if (n == 0 || (n == 3 && strncasecmp(p, "NIL", 3) == 0))
		return imap_string_add_quoted(s, p, n);
	for (i = 0; i < n; i++)
		if (!is_astring_char((unsigned char)p[i]))
			return imap_string_add_quoted(s, p, n);
	return imap_string_add(s, p, n);
}

int imap_string_add_nstring(struct imap_string *s, const char *p, size_t n)
{
	if (p == NULL)
		return imap_string_add(s, "NIL", 3);
	return imap_string_add_quoted(s, p, n);
}

int imap_string_add_crlf(struct imap_string *s, const char *p, size_t n)
{
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r')) {
			if (imap_string_add(s, p + start, i - start) < 0 ||
			    imap_string_add(s, "\r\n", 2) < 0)
				return -1;
			start = i + 1;
		}
	}
	return imap_string_add(s, p + start, n - start);
}

int imap_string_add_text(struct imap_string *s, const char *p, size_t n)
{
	struct imap_string t;
	size_t i;
	int modify = 0, lwsp = 1, r;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			if (c != ' ' || lwsp)
				modify = 1;
			lwsp = 1;
		} else {
			if (c == '\0' || c == '"' || c == '\\' || c >= 0x80)
				modify = 1;
			lwsp = 0;
		}
	}
	if (n > 0 && lwsp)
		modify = 1;
	if (!modify) {
		if (reserve(s, n + 2) < 0)
			return -1;
		s->buf[s->len++] = '"';
		memcpy(s->buf + s->len, p, n);
		s->len += n;
		s->buf[s->len++] = '"';
		s->buf[s->len] = '\0';
		return 0;
	}
	imap_string_init(&t, 0);
	lwsp = 1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			if (!lwsp)
				imap_string_addc(&t, ' ');
			lwsp = 1;
		} else {
			imap_string_addc(&t, c == '\0' ? (char)0x80 : (char)c);
			lwsp = 0;
		}
	}
	if (t.len > 0 && t.buf[t.len - 1] == ' ')
		t.len--;
	if (t.failed)
		r = -1;
	else if (t.len == 0)
		r = imap_string_add(s, "\"\"", 2);
	else
		r = add_literal(s, t.buf, t.len);
	imap_string_free(&t);
	if (r < 0)
		s->failed = 1;
	return r;
}

int imap_string_add_nstring_nolf(struct imap_string *s, const char *p, size_t n)
{
	struct imap_string t;
	size_t i;
	int r;

	if (p == NULL || (memchr(p, '\n', n) == NULL && memchr(p, '\r', n) == NULL))
		return imap_string_add_nstring(s, p, n);
	imap_string_init(&t, 0);
	for (i = 0; i < n; i++) {
		if (p[i] != '\r' && p[i] != '\n')
			imap_string_addc(&t, p[i]);
		else if (i + 1 < n && p[i + 1] != ' ' && p[i + 1] != '\t' &&
			 p[i + 1] != '\r' && p[i + 1] != '\n')
			imap_string_addc(&t, ' ');
	}
	r = t.failed ? -1 : imap_string_add_quoted(s, t.buf ? t.buf : "", t.len);
	imap_string_free(&t);
	if (r < 0)
		s->failed = 1;
	return r;
}

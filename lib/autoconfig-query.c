/*
 * Query-string and address parsing for the autoconfig CGI.  See
 * autoconfig-query.h: pure, bounded, fuzzed.
 */
#include "autoconfig-query.h"
#include "autoconfig.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <string.h>

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decodes S[0..n) into out (cap bytes incl. NUL).  Returns the decoded
 * length, or -1 on a bad escape, a decoded NUL or overflow.
 */
static long form_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t i = 0, o = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (n - i < 3 || (hi = hexval((unsigned char)s[i + 1])) < 0 ||
			    (lo = hexval((unsigned char)s[i + 2])) < 0)
				return -1;
			c = (unsigned char)(hi * 16 + lo);
			i += 3;
		} else {
			if (c == '+')
				c = ' ';
			i++;
		}
		if (c == '\0' || o + 1 >= cap)
			return -1;
		out[o++] = (char)c;
	}
	if (cap > 0)
		out[o] = '\0';
	return (long)o;
}

int autoconfig_query_get(const char *qs, size_t len, const char *key,
			 char *out, size_t cap, size_t *outlen)
{
	char name[64];
	size_t i = 0;
	int found = 0;

	if (cap == 0 || len > AUTOCONFIG_MAX_QUERY)
		return AUTOCONFIG_Q_BAD;
	out[0] = '\0';
	while (i < len) {
		size_t start = i, eq, end;
		long nl;

		while (i < len && qs[i] != '&')
			i++;
		end = i;
		i++;			/* past '&' (or the end) */
		if (end == start)
			continue;
		eq = start;
		while (eq < end && qs[eq] != '=')
			eq++;
		nl = form_decode(qs + start, eq - start, name, sizeof(name));
		if (nl < 0 || strcmp(name, key) != 0)
			continue;	/* other keys are not our business */
		if (found)
			return AUTOCONFIG_Q_BAD;
		found = 1;
		nl = eq < end ? form_decode(qs + eq + 1, end - eq - 1, out, cap) : 0;
		if (nl < 0)
			return AUTOCONFIG_Q_BAD;
		out[nl] = '\0';
		if (outlen != NULL)
			*outlen = (size_t)nl;
	}
	return found ? AUTOCONFIG_Q_FOUND : AUTOCONFIG_Q_ABSENT;
}

static int is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static int is_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

int autoconfig_host_valid(const char *s, size_t len)
{
	size_t i = 0, label = 0;

	if (len == 0 || len > AUTOCONFIG_MAX_HOST)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
		} else if (is_ldh(c)) {
			if (label == 0 && c == '-')
				return 0;
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0 && s[len - 1] != '-';
}

int autoconfig_email_valid(const char *s, size_t len)
{
	const char *at;
	size_t i, local;

	if (len == 0 || len > AUTOCONFIG_MAX_EMAIL)
		return 0;
	at = memchr(s, '@', len);
	if (at == NULL)
		return 0;
	local = (size_t)(at - s);
	if (local == 0 || local > 64 || s[0] == '.' || s[local - 1] == '.')
		return 0;
	for (i = 0; i < local; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (s[i + 1] == '.')
				return 0;
		} else if (!is_atext(c)) {
			return 0;
		}
	}
	/* a second '@' fails the host check below */
	if (!autoconfig_host_valid(at + 1, len - local - 1))
		return 0;
	return memchr(at + 1, '.', len - local - 1) != NULL;
}

static xmlNodePtr child_named(xmlNodePtr n, const char *name)
{
	for (n = n ? n->children : NULL; n != NULL; n = n->next)
		if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0)
			return n;
	return NULL;
}

int autoconfig_autodiscover_request(const char *body, size_t len, char *out, size_t cap)
{
	xmlDocPtr doc;
	xmlNodePtr root, n;
	xmlChar *text;
	int rc = -1;

	if (len == 0 || len > AUTOCONFIG_MAX_BODY || cap == 0)
		return -1;
	/* no XML_PARSE_NOENT: entities stay unexpanded; no DTD loading, no network */
	doc = xmlReadMemory(body, (int)len, "autodiscover.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
			    XML_PARSE_NOBLANKS);
	if (doc == NULL)
		return -1;
	root = xmlDocGetRootElement(doc);
	if (root == NULL || strcmp((const char *)root->name, "Autodiscover") != 0 ||
	    doc->intSubset != NULL)
		goto out;
	n = child_named(child_named(root, "Request"), "EMailAddress");
	if (n == NULL)
		goto out;
	text = xmlNodeGetContent(n);
	if (text != NULL) {
		const char *t = (const char *)text;
		size_t tl;

		/* pretty-printed requests put blanks around the address */
		while (*t == ' ' || *t == '\t' || *t == '\r' || *t == '\n')
			t++;
		tl = strlen(t);
		while (tl > 0 && (t[tl - 1] == ' ' || t[tl - 1] == '\t' || t[tl - 1] == '\r' ||
				  t[tl - 1] == '\n'))
			tl--;
		if (tl < cap && autoconfig_email_valid(t, tl)) {
			memcpy(out, t, tl);
			out[tl] = '\0';
			rc = 0;
		}
		xmlFree(text);
	}
out:
	xmlFreeDoc(doc);
	return rc;
}

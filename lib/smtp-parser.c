/* SMTP command, path, DATA and From: parsers; see smtp-parser.h. */
#include "smtp-parser.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int smtp_line_find(const char *buf, size_t len, size_t max, size_t *linelen,
		   size_t *consumed, int *bare_lf)
{
	size_t scan = len < max ? len : max;
	const char *nl = memchr(buf, '\n', scan);

	if (nl == NULL)
		return len >= max ? SMTP_LINE_TOO_LONG : SMTP_LINE_MORE;
	size_t i = (size_t)(nl - buf);
	*consumed = i + 1;
	*bare_lf = !(i > 0 && buf[i - 1] == '\r');
	*linelen = *bare_lf ? i : i - 1;
	return SMTP_LINE_OK;
}

static const struct { const char *name; enum smtp_verb verb; } verbs[] = {
	{ "EHLO", SMTP_EHLO }, { "HELO", SMTP_HELO }, { "STARTTLS", SMTP_STARTTLS },
	{ "AUTH", SMTP_AUTH }, { "MAIL", SMTP_MAIL }, { "RCPT", SMTP_RCPT },
	{ "DATA", SMTP_DATA }, { "RSET", SMTP_RSET }, { "NOOP", SMTP_NOOP },
	{ "QUIT", SMTP_QUIT }, { "VRFY", SMTP_VRFY }, { "HELP", SMTP_HELP },
	{ "BDAT", SMTP_BDAT }, { "EXPN", SMTP_EXPN },
};

int smtp_parse_command(const char *line, size_t len, struct smtp_command *cmd)
{
	size_t i, vlen;

	memset(cmd, 0, sizeof(*cmd));
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -1;
	}
	for (vlen = 0; vlen < len && line[vlen] != ' '; vlen++)
		if ((unsigned char)line[vlen] >= 0x80)
			return -1;
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strlen(verbs[i].name) == vlen && strncasecmp(line, verbs[i].name, vlen) == 0) {
			cmd->verb = verbs[i].verb;
			break;
		}
	}
	if (vlen < len) {
		cmd->arg = line + vlen + 1;
		cmd->arglen = len - vlen - 1;
		/* trailing spaces are common from sloppy clients */
		while (cmd->arglen > 0 && (cmd->arg[cmd->arglen - 1] == ' ' ||
					   cmd->arg[cmd->arglen - 1] == '\t'))
			cmd->arglen--;
	} else {
		cmd->arg = line + len;
	}
	return 0;
}

static int is_atext(unsigned char c)
{
	return isalnum(c) || c >= 0x80 || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* Checks ADDR[0..len) as local-part@domain; 0 ok, -1 bad. */
static int check_addr(const char *a, size_t len, int *utf8)
{
	size_t i = 0, at;

	*utf8 = 0;
	if (len == 0)
		return -1;
	if (a[0] == '"') {
		for (i = 1; i < len && a[i] != '"'; i++) {
			unsigned char c = (unsigned char)a[i];
			if (c == '\\')
				i++;
			if (i >= len || c <= 0x20 || c == 0x7f || (unsigned char)a[i] <= 0x20)
				return -1;	/* no space: the address must stay one token */
		}
		if (i >= len)
			return -1;
		i++;
	} else {
		int prev_dot = 1;
		for (; i < len && a[i] != '@'; i++) {
			unsigned char c = (unsigned char)a[i];
			if (c == '.') {
				if (prev_dot)
					return -1;
				prev_dot = 1;
			} else if (is_atext(c)) {
				prev_dot = 0;
			} else {
				return -1;
			}
		}
		if (prev_dot)
			return -1;
	}
	if (i >= len || a[i] != '@' || i > 64)
		return -1;
	at = i++;
	if (i >= len || len - i > 255)
		return -1;
	if (a[i] == '[') {
		if (a[len - 1] != ']')
			return -1;
		for (i++; i < len - 1; i++) {
			unsigned char c = (unsigned char)a[i];
			if (c <= 0x20 || c >= 0x7f || c == '[' || c == ']' || c == '\\')
				return -1;
		}
	} else {
		int prev_dot = 1;
		for (; i < len; i++) {
			unsigned char c = (unsigned char)a[i];
			if (c == '.') {
				if (prev_dot)
					return -1;
				prev_dot = 1;
			} else if (isalnum(c) || c == '-' || c >= 0x80) {
				prev_dot = 0;
			} else {
				return -1;
			}
		}
		if (prev_dot)
			return -1;
	}
	(void)at;
	for (i = 0; i < len; i++)
		if ((unsigned char)a[i] >= 0x80)
			*utf8 = 1;
	return 0;
}

int smtp_parse_path(const char *arg, size_t len, const char *keyword, int is_mail,
		    struct smtp_path *out)
{
	size_t kl = strlen(keyword), i, start, end;
	int utf8;

	memset(out, 0, sizeof(*out));
	out->size = -1;
	if (len < kl + 1 || strncasecmp(arg, keyword, kl) != 0 || arg[kl] != ':')
		return SMTP_PATH_SYNTAX;
	i = kl + 1;
	while (i < len && arg[i] == ' ')
		i++;	/* "MAIL FROM: <x>": tolerated, as postfix does */
	if (i >= len)
		return SMTP_PATH_SYNTAX;
	if (arg[i] == '<') {
		i++;
		if (i < len && arg[i] == '@') {
			/* source route: "<@a,@b:user@c>", dropped (RFC 5321 4.1.1.3) */
			while (i < len && arg[i] != ':' && arg[i] != '>')
				i++;
			if (i >= len || arg[i] != ':')
				return SMTP_PATH_SYNTAX;
			i++;
		}
		start = i;
		int inq = 0;
		for (; i < len; i++) {
			if (arg[i] == '\\' && inq && i + 1 < len)
				i++;
			else if (arg[i] == '"')
				inq = !inq;
			else if (arg[i] == '>' && !inq)
				break;
		}
		if (i >= len)
			return SMTP_PATH_SYNTAX;
		end = i++;
		if (i < len && arg[i] != ' ')
			return SMTP_PATH_SYNTAX;
	} else {
		start = i;
		while (i < len && arg[i] != ' ')
			i++;
		end = i;
	}
	if (end - start > SMTP_MAX_ADDR)
		return SMTP_PATH_TOO_LONG;
	if (end > start) {
		if (check_addr(arg + start, end - start, &utf8) != 0)
			return SMTP_PATH_BAD_ADDR;
		out->utf8_addr = utf8;
	} else if (!is_mail || arg[start - 1] != '<') {
		return SMTP_PATH_BAD_ADDR;	/* "<>" only as a reverse path */
	}
	memcpy(out->addr, arg + start, end - start);
	out->addr[end - start] = '\0';

	/* ESMTP parameters: " KEY[=VALUE]"... */
	while (i < len) {
		while (i < len && arg[i] == ' ')
			i++;
		if (i >= len)
			break;
		size_t ks = i, ke, vs = 0, ve = 0;
		while (i < len && arg[i] != ' ' && arg[i] != '=')
			i++;
		ke = i;
		if (i < len && arg[i] == '=') {
			vs = ++i;
			while (i < len && arg[i] != ' ')
				i++;
			ve = i;
		}
		size_t klen = ke - ks, vlen = ve - vs;
		if (!is_mail)
			return SMTP_PATH_BAD_PARAM;
		if (klen == 4 && strncasecmp(arg + ks, "SIZE", 4) == 0) {
			long long v = 0;
			if (vlen == 0 || vlen > 15 || out->size >= 0)
				return SMTP_PATH_BAD_PARAM;
			for (size_t k = vs; k < ve; k++) {
				if (!isdigit((unsigned char)arg[k]))
					return SMTP_PATH_BAD_PARAM;
				v = v * 10 + (arg[k] - '0');
			}
			out->size = v;
		} else if (klen == 4 && strncasecmp(arg + ks, "BODY", 4) == 0) {
			if (out->body != SMTP_BODY_NONE)
				return SMTP_PATH_BAD_PARAM;
			if (vlen == 4 && strncasecmp(arg + vs, "7BIT", 4) == 0)
				out->body = SMTP_BODY_7BIT;
			else if (vlen == 8 && strncasecmp(arg + vs, "8BITMIME", 8) == 0)
				out->body = SMTP_BODY_8BITMIME;
			else
				return SMTP_PATH_BAD_PARAM;
		} else if (klen == 8 && strncasecmp(arg + ks, "SMTPUTF8", 8) == 0) {
			if (vs != 0 || out->smtputf8)
				return SMTP_PATH_BAD_PARAM;
			out->smtputf8 = 1;
		} else if (klen == 4 && strncasecmp(arg + ks, "AUTH", 4) == 0) {
			if (vlen == 0)
				return SMTP_PATH_BAD_PARAM;
			/* RFC 4954 5: an MSA may ignore it; the login decides */
		} else {
			return SMTP_PATH_BAD_PARAM;
		}
	}
	return SMTP_PATH_OK;
}

const char *smtp_addr_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL && at[1] != '\0' ? at + 1 : NULL;
}

int smtp_addr_equal(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

/* ---- DATA ------------------------------------------------------------- */

enum { DOT_SOL = 0, DOT_BODY, DOT_CR, DOT_DOT, DOT_DOTCR };

void smtp_dot_init(struct smtp_dot *d)
{
	memset(d, 0, sizeof(*d));
	d->state = DOT_SOL;
}

static void emit(struct smtp_dot *d, char *out, size_t *o, char c)
{
	out[(*o)++] = c;
	d->bytes++;
	d->line++;
	if (d->line > d->max_line)
		d->max_line = d->line;
}

static void body_byte(struct smtp_dot *d, char *out, size_t *o, char c)
{
	if (c == '\r') {
		d->state = DOT_CR;
	} else if (c == '\n') {
		d->bare_lf = 1;
		emit(d, out, o, c);
		d->line = 0;
		d->state = DOT_BODY;
	} else {
		emit(d, out, o, c);
		d->state = DOT_BODY;
	}
}

size_t smtp_dot_feed(struct smtp_dot *d, const char *in, size_t inlen, char *out,
		     size_t *outlen)
{
	size_t i, o = 0;

	for (i = 0; i < inlen && !d->done; i++) {
		char c = in[i];
		switch (d->state) {
		case DOT_SOL:
			if (c == '.')
				d->state = DOT_DOT;
			else
				body_byte(d, out, &o, c);
			break;
		case DOT_DOT:
			/* a leading dot before anything but CRLF is stuffing: drop it */
			if (c == '\r')
				d->state = DOT_DOTCR;
			else
				body_byte(d, out, &o, c);
			break;
		case DOT_DOTCR:
			if (c == '\n') {
				d->done = 1;
				break;
			}
			d->bare_cr = 1;
			emit(d, out, &o, '\r');
			body_byte(d, out, &o, c);
			break;
		case DOT_CR:
			if (c == '\n') {
				emit(d, out, &o, '\r');
				emit(d, out, &o, '\n');
				d->line = 0;
				d->state = DOT_SOL;
			} else {
				d->bare_cr = 1;
				emit(d, out, &o, '\r');
				body_byte(d, out, &o, c);
			}
			break;
		default:
			body_byte(d, out, &o, c);
			break;
		}
	}
	*outlen = o;
	return i;
}

/* ---- From: ------------------------------------------------------------- */

#define FROM_MAX_VALUE 8192

/* Finishes one list element: its address goes to ADDRS[n] if it has one. */
static int from_element(char *plain, size_t pl, char *angle, size_t al, int has_angle,
			char (*addrs)[SMTP_MAX_ADDR + 1], int max, int *n)
{
	const char *a = has_angle ? angle : plain;
	size_t len = has_angle ? al : pl, s = 0, k, o = 0;
	char buf[FROM_MAX_VALUE];
	int utf8;

	(void)plain;
	if (has_angle) {
		/* "<@route:addr>": keep what follows the last ':' outside quotes */
		for (k = 0; k < len; k++)
			if (a[k] == ':')
				s = k + 1;
		if (len > 0 && a[0] != '@')
			s = 0;
	}
	for (k = s; k < len; k++)
		if (a[k] != ' ' && a[k] != '\t')
			buf[o++] = a[k];
	if (o == 0)
		return has_angle ? -1 : 0;
	if (o > SMTP_MAX_ADDR || check_addr(buf, o, &utf8) != 0)
		return -1;
	if (*n < max) {
		memcpy(addrs[*n], buf, o);
		addrs[*n][o] = '\0';
	}
	(*n)++;
	return 0;
}

static int from_value(const char *v, size_t len, char (*addrs)[SMTP_MAX_ADDR + 1], int max)
{
	char plain[FROM_MAX_VALUE], angle[FROM_MAX_VALUE];
	size_t pl = 0, al = 0, i;
	int inq = 0, depth = 0, in_angle = 0, has_angle = 0, n = 0;

	for (i = 0; i <= len; i++) {
		char c = i < len ? v[i] : ',';
		if (depth > 0) {
			if (c == '\\')
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			if (i >= len)
				return -1;
			continue;
		}
		if (inq) {
			char *t = in_angle ? angle : plain;
			size_t *tl = in_angle ? &al : &pl;
			if (i >= len)
				return -1;
			if (c == '\\' && i + 1 < len) {
				t[(*tl)++] = c;
				c = v[++i];
			} else if (c == '"') {
				inq = 0;
			}
			t[(*tl)++] = c;
			continue;
		}
		if (c == '(') {
			depth = 1;
			continue;
		}
		if (c == '"') {
			inq = 1;
			if (in_angle)
				angle[al++] = c;
			else
				plain[pl++] = c;
			continue;
		}
		if (in_angle) {
			if (c == '>')
				in_angle = 0;
			else if (c == '<' || i >= len)
				return -1;
			else
				angle[al++] = c;
			continue;
		}
		if (c == '<') {
			if (has_angle)
				return -1;
			in_angle = has_angle = 1;
			continue;
		}
		if (c == ':') {
			/* group: "name: a@b, c@d;" -- the name is not an address */
			pl = 0;
			continue;
		}
		if (c == ',' || c == ';') {
			if (from_element(plain, pl, angle, al, has_angle, addrs, max, &n) != 0)
				return -1;
			pl = al = 0;
			has_angle = 0;
			continue;
		}
		plain[pl++] = c;
	}
	return n;
}

int smtp_header_from(const char *hdr, size_t len, char (*addrs)[SMTP_MAX_ADDR + 1], int max)
{
	char val[FROM_MAX_VALUE];
	size_t i = 0, vl = 0;
	int found = 0;

	while (i < len) {
		size_t ls = i, le;
		while (i < len && hdr[i] != '\n')
			i++;
		le = i;
		if (i < len)
			i++;
		if (le > ls && hdr[le - 1] == '\r')
			le--;
		if (le == ls)
			break;	/* end of the header */
		if (le - ls >= 5 && strncasecmp(hdr + ls, "From", 4) == 0) {
			size_t k = ls + 4;
			while (k < le && (hdr[k] == ' ' || hdr[k] == '\t'))
				k++;
			if (k >= le || hdr[k] != ':')
				continue;
			if (found++)
				return -1;
			k++;
			for (;;) {
				if (vl + (le - k) + 1 > sizeof(val))
					return -1;
				memcpy(val + vl, hdr + k, le - k);
				vl += le - k;
				val[vl++] = ' ';
				/* folded continuation lines start with SP or HT */
				if (i >= len || (hdr[i] != ' ' && hdr[i] != '\t'))
					break;
				ls = i;
				while (i < len && hdr[i] != '\n')
					i++;
				le = i;
				if (i < len)
					i++;
				if (le > ls && hdr[le - 1] == '\r')
					le--;
				k = ls;
			}
		}
	}
	if (!found)
		return 0;
	return from_value(val, vl, addrs, max);
}

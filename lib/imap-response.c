/*
 * The incremental IMAP response parser of imap-client.h.
 *
 * Bytes are collected into one buffer (raw) line by line; a line ending in
 * "{N}" or "{N+}" announces a literal of N bytes that is copied into raw
 * when N <= max_inline, else handed to the sink while raw keeps only the
 * "{N}\r\n" (the offset is remembered, so the tokenizer knows the literal
 * is not there).  A line without a literal ends the response, which is then
 * tokenized in place (quoted strings are unescaped in raw).
 */
#include "imap-client.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum pstate { P_LINE, P_LIT_INLINE, P_LIT_SINK, P_DONE, P_FAILED };

struct imap_resp_parser {
	struct imap_resp_limits lim;
	enum pstate st;
	char *raw;
	size_t rawlen, rawcap;
	size_t line_start;
	unsigned long long lit_left;
	size_t *sunk;			/* raw offsets where a sunk literal would start */
	size_t nsunk, capsunk;
	struct imap_tok *toks;
	size_t ntoks, captoks;
	struct imap_resp resp;
	struct imap_resp_sink sink;
	int have_sink;
	char err[160];
};

static const struct imap_resp_limits default_limits = {
	.max_line = 1 << 20, .max_resp = 16 << 20, .max_inline = 64 << 10,
	.max_literal = 2ULL << 30, .max_depth = 32, .max_tokens = 1000000,
};

struct imap_resp_parser *imap_resp_parser_new(const struct imap_resp_limits *lim)
{
	struct imap_resp_parser *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->lim = default_limits;
	if (lim != NULL) {
		if (lim->max_line)
			p->lim.max_line = lim->max_line;
		if (lim->max_resp)
			p->lim.max_resp = lim->max_resp;
		if (lim->max_inline)
			p->lim.max_inline = lim->max_inline;
		if (lim->max_literal)
			p->lim.max_literal = lim->max_literal;
		if (lim->max_depth)
			p->lim.max_depth = lim->max_depth;
		if (lim->max_tokens)
			p->lim.max_tokens = lim->max_tokens;
	}
	p->st = P_DONE;
	return p;
}

void imap_resp_parser_free(struct imap_resp_parser *p)
{
	if (p == NULL)
		return;
	free(p->raw);
	free(p->sunk);
	free(p->toks);
	free(p);
}

void imap_resp_parser_set_sink(struct imap_resp_parser *p, const struct imap_resp_sink *sink)
{
	p->have_sink = sink != NULL;
	if (sink != NULL)
		p->sink = *sink;
}

const char *imap_resp_parser_error(const struct imap_resp_parser *p)
{
	return p->err;
}

static int fail(struct imap_resp_parser *p, const char *what)
{
	snprintf(p->err, sizeof(p->err), "%s", what);
	p->st = P_FAILED;
	return IMAP_PARSE_ERROR;
}

static int raw_add(struct imap_resp_parser *p, const char *b, size_t n)
{
	if (n > p->lim.max_resp - p->rawlen)
		return -1;
	if (p->rawlen + n + 1 > p->rawcap) {
		size_t cap = p->rawcap ? p->rawcap : 4096;
		char *nr;

		while (cap < p->rawlen + n + 1)
			cap *= 2;
		nr = realloc(p->raw, cap);
		if (nr == NULL)
			return -1;
		p->raw = nr;
		p->rawcap = cap;
	}
	memcpy(p->raw + p->rawlen, b, n);
	p->rawlen += n;
	p->raw[p->rawlen] = '\0';
	return 0;
}

/* "{123}" or "{123+}" at the end of the line [s, s+len): size or -1. */
static long long literal_at_end(const char *s, size_t len)
{
	size_t i;
	unsigned long long v = 0;

	if (len < 3 || s[len - 1] != '}')
		return -1;
	i = len - 1;
	if (s[i - 1] == '+')
		i--;
	if (i == 0)
		return -1;
	{
		size_t end = i, start;

		while (i > 0 && isdigit((unsigned char)s[i - 1]))
			i--;
		start = i;
		if (start == end || i == 0 || s[i - 1] != '{' || end - start > 15)
			return -1;
		for (i = start; i < end; i++)
			v = v * 10 + (unsigned)(s[i] - '0');
	}
	return (long long)v;
}

static int tokenize(struct imap_resp_parser *p);

/* A complete line is in raw[line_start, rawlen) including its "\n". */
static int end_of_line(struct imap_resp_parser *p)
{
	size_t len = p->rawlen - p->line_start;
	char *s = p->raw + p->line_start;
	long long lit;

	len--;				/* "\n" */
	if (len > 0 && s[len - 1] == '\r')
		len--;
	lit = literal_at_end(s, len);
	if (lit < 0) {
		p->rawlen = p->line_start + len;	/* drop CRLF */
		p->raw[p->rawlen] = '\0';
		return tokenize(p);
	}
	/* normalize the line end to "\r\n" so the tokenizer finds the data at +2 */
	p->rawlen = p->line_start + len;
	if (raw_add(p, "\r\n", 2) < 0)
		return fail(p, "response too large");
	if ((unsigned long long)lit > p->lim.max_literal)
		return fail(p, "literal too large");
	p->lit_left = (unsigned long long)lit;
	if ((unsigned long long)lit <= p->lim.max_inline &&
	    (unsigned long long)lit <= p->lim.max_resp - p->rawlen) {
		p->st = P_LIT_INLINE;
	} else {
		if (!p->have_sink)
			return fail(p, "literal too large for memory and no sink");
		if (p->nsunk == p->capsunk) {
			size_t cap = p->capsunk ? p->capsunk * 2 : 8;
			size_t *n = realloc(p->sunk, cap * sizeof(*n));

			if (n == NULL)
				return fail(p, "out of memory");
			p->sunk = n;
			p->capsunk = cap;
		}
		p->sunk[p->nsunk++] = p->rawlen;
		if (p->sink.begin(p->sink.ctx, p->lit_left) != 0)
			return fail(p, "literal refused by the sink");
		p->st = P_LIT_SINK;
	}
	if (p->lit_left == 0)
		p->st = P_LINE;
	p->line_start = p->rawlen;
	return IMAP_PARSE_MORE;
}

int imap_resp_feed(struct imap_resp_parser *p, const char *buf, size_t len, size_t *used,
		   const struct imap_resp **out)
{
	size_t i = 0;

	*used = 0;
	*out = NULL;
	if (p->st == P_FAILED)
		return IMAP_PARSE_ERROR;
	if (p->st == P_DONE) {
		p->rawlen = 0;
		p->line_start = 0;
		p->nsunk = 0;
		p->ntoks = 0;
		p->st = P_LINE;
	}
	while (i < len) {
		if (p->st == P_LINE) {
			const char *nl = memchr(buf + i, '\n', len - i);
			size_t n = nl ? (size_t)(nl - (buf + i)) + 1 : len - i;

			if (p->rawlen - p->line_start + n > p->lim.max_line + 2)
				return fail(p, "response line too long");
			if (raw_add(p, buf + i, n) < 0)
				return fail(p, "response too large");
			i += n;
			if (nl != NULL) {
				int r = end_of_line(p);

				if (r != IMAP_PARSE_MORE) {
					*used = i;
					if (r == IMAP_PARSE_DONE)
						*out = &p->resp;
					return r;
				}
			}
		} else {
			size_t n = len - i;

			if (n > p->lit_left)
				n = (size_t)p->lit_left;
			if (p->st == P_LIT_INLINE) {
				if (raw_add(p, buf + i, n) < 0)
					return fail(p, "response too large");
			} else if (p->sink.data(p->sink.ctx, buf + i, n) != 0) {
				return fail(p, "sink failed");
			}
			i += n;
			p->lit_left -= n;
			if (p->lit_left == 0) {
				p->st = P_LINE;
				p->line_start = p->rawlen;
			}
		}
	}
	*used = i;
	return IMAP_PARSE_MORE;
}

/* ---- tokenizer ---- */

static struct imap_tok *tok_new(struct imap_resp_parser *p)
{
	if (p->ntoks >= p->lim.max_tokens)
		return NULL;
	if (p->ntoks == p->captoks) {
		size_t cap = p->captoks ? p->captoks * 2 : 64;
		struct imap_tok *n = realloc(p->toks, cap * sizeof(*n));

		if (n == NULL)
			return NULL;
		p->toks = n;
		p->captoks = cap;
	}
	memset(&p->toks[p->ntoks], 0, sizeof(p->toks[0]));
	return &p->toks[p->ntoks++];
}

static int is_sunk(const struct imap_resp_parser *p, size_t off)
{
	size_t lo = 0, hi = p->nsunk;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (p->sunk[mid] == off)
			return 1;
		if (p->sunk[mid] < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int atom_char(unsigned char c)
{
	/* atoms here include flags (\Seen), BODY[...]<..> and "*" */
	return c > ' ' && c != '(' && c != ')' && c != '"' && c != '{' && c < 0x7f;
}

/* Tokens of raw[pos, rawlen) into p->toks, returns 0 or -1 (p->err set). */
static int tokens(struct imap_resp_parser *p, size_t pos)
{
	size_t stack[64];
	unsigned depth = 0;
	char *r = p->raw;
	size_t n = p->rawlen;

	while (pos < n) {
		struct imap_tok *t;
		unsigned char c = (unsigned char)r[pos];

		if (c == ' ') {
			pos++;
			continue;
		}
		if (c == ')') {
			if (depth == 0) {
				snprintf(p->err, sizeof(p->err), "unbalanced ')'");
				return -1;
			}
			depth--;
			p->toks[stack[depth]].end = p->ntoks;
			pos++;
			continue;
		}
		t = tok_new(p);
		if (t == NULL) {
			snprintf(p->err, sizeof(p->err), "too many tokens");
			return -1;
		}
		t->end = p->ntoks;
		if (c == '(') {
			if (depth >= p->lim.max_depth || depth >= 64) {
				snprintf(p->err, sizeof(p->err), "lists nested too deep");
				return -1;
			}
			t->type = IMAP_TOK_LIST;
			stack[depth++] = p->ntoks - 1;
			pos++;
		} else if (c == '"') {
			size_t w = pos + 1, rd = pos + 1;

			t->type = IMAP_TOK_STRING;
			t->s = r + w;
			for (;;) {
				if (rd >= n) {
					snprintf(p->err, sizeof(p->err), "unterminated quoted string");
					return -1;
				}
				if (r[rd] == '"')
					break;
				if (r[rd] == '\\' && rd + 1 < n)
					rd++;
				r[w++] = r[rd++];
			}
			t->len = (size_t)(r + w - t->s);
			pos = rd + 1;
		} else if (c == '{') {
			size_t q = pos + 1;
			unsigned long long v = 0;

			while (q < n && isdigit((unsigned char)r[q]) && q - pos < 17)
				v = v * 10 + (unsigned)(r[q++] - '0');
			if (q < n && r[q] == '+')
				q++;
			if (q == pos + 1 || q + 2 >= n || r[q] != '}' ||
			    r[q + 1] != '\r' || r[q + 2] != '\n') {
				snprintf(p->err, sizeof(p->err), "malformed literal");
				return -1;
			}
			q += 3;
			if (is_sunk(p, q)) {
				t->type = IMAP_TOK_SUNK;
				t->size = v;
				pos = q;
			} else {
				if (v > n - q) {
					snprintf(p->err, sizeof(p->err), "literal shorter than announced");
					return -1;
				}
				t->type = IMAP_TOK_STRING;
				t->s = r + q;
				t->len = (size_t)v;
				t->size = v;
				pos = q + (size_t)v;
			}
		} else if (atom_char(c)) {
			size_t q = pos;
			int br = 0;

			/* BODY[HEADER.FIELDS (A B)] keeps its brackets' content */
			while (q < n && (atom_char((unsigned char)r[q]) ||
					 (br > 0 && (r[q] == ' ' || r[q] == '(' || r[q] == ')')))) {
				if (r[q] == '[')
					br++;
				else if (r[q] == ']' && br > 0)
					br--;
				q++;
			}
			t->s = r + pos;
			t->len = q - pos;
			t->type = (t->len == 3 && strncasecmp(t->s, "NIL", 3) == 0) ?
				IMAP_TOK_NIL : IMAP_TOK_ATOM;
			pos = q;
		} else {
			snprintf(p->err, sizeof(p->err), "unexpected byte 0x%02x", c);
			return -1;
		}
		t->end = p->ntoks;
	}
	if (depth != 0) {
		snprintf(p->err, sizeof(p->err), "unbalanced '('");
		return -1;
	}
	return 0;
}

/* Splits off the next space-separated word of a status line at *pos. */
static char *word(char *r, size_t n, size_t *pos)
{
	size_t s = *pos, e = s;

	while (e < n && r[e] != ' ')
		e++;
	if (e == s)
		return NULL;
	*pos = e < n ? e + 1 : e;
	r[e] = '\0';
	return r + s;
}

static int tokenize(struct imap_resp_parser *p)
{
	struct imap_resp *rp = &p->resp;
	char *r = p->raw;
	size_t n = p->rawlen, pos = 0;
	char *w;
	size_t i;

	memset(rp, 0, sizeof(*rp));
	p->st = P_DONE;
	rp->text = "";
	if (n >= 1 && r[0] == '+') {
		rp->kind = IMAP_RESP_CONTINUE;
		rp->tag = "+";
		rp->text = n > 2 ? r + 2 : "";
		return IMAP_PARSE_DONE;
	}
	w = word(r, n, &pos);
	if (w == NULL)
		return fail(p, "empty response line");
	rp->tag = w;
	rp->kind = strcmp(w, "*") == 0 ? IMAP_RESP_UNTAGGED : IMAP_RESP_TAGGED;
	{
		/* a data name ends at a space, or at '(' / '[' without one */
		size_t s = pos, e = pos;

		while (e < n && isalnum((unsigned char)r[e]))
			e++;
		if (e == s)
			return fail(p, "missing response name");
		if (rp->kind == IMAP_RESP_UNTAGGED && e < n && r[e] == ' ' &&
		    isdigit((unsigned char)r[s])) {
			unsigned long long v = 0;

			for (i = s; i < e; i++) {
				if (!isdigit((unsigned char)r[i]) || v > 0xffffffffULL)
					return fail(p, "bad message number");
				v = v * 10 + (unsigned)(r[i] - '0');
			}
			if (v > 0xffffffffULL)
				return fail(p, "bad message number");
			rp->has_num = 1;
			rp->num = (uint32_t)v;
			pos = e + 1;
			s = e = pos;
			while (e < n && isalnum((unsigned char)r[e]))
				e++;
			if (e == s)
				return fail(p, "missing response name");
		}
		for (i = s; i < e; i++)
			r[i] = (char)toupper((unsigned char)r[i]);
		if (e < n && r[e] != ' ')
			return fail(p, "missing space after response name");
		r[e] = '\0';
		rp->name = r + s;
		pos = e < n ? e + 1 : e;
	}
	if (strcmp(rp->name, "OK") == 0 || strcmp(rp->name, "NO") == 0 ||
	    strcmp(rp->name, "BAD") == 0 || strcmp(rp->name, "BYE") == 0 ||
	    strcmp(rp->name, "PREAUTH") == 0) {
		if (memchr(r + pos, '\0', n - pos) != NULL)
			return fail(p, "NUL in response text");
		rp->status = rp->name[0] == 'O' ? IMAP_ST_OK : rp->name[0] == 'N' ? IMAP_ST_NO :
			rp->name[0] == 'B' && rp->name[1] == 'A' ? IMAP_ST_BAD :
			rp->name[0] == 'B' ? IMAP_ST_BYE : IMAP_ST_PREAUTH;
		if (pos < n && r[pos] == '[') {
			char *close = memchr(r + pos, ']', n - pos);
			size_t cs = pos + 1, ce;

			if (close == NULL)
				return fail(p, "unterminated response code");
			*close = '\0';
			ce = cs;
			while (r[ce] != '\0' && r[ce] != ' ')
				ce++;
			rp->code = r + cs;
			if (r[ce] == ' ') {
				r[ce] = '\0';
				rp->code_arg = r + ce + 1;
			} else {
				rp->code_arg = r + ce;
			}
			for (char *c = r + cs; *c; c++)
				*c = (char)toupper((unsigned char)*c);
			pos = (size_t)(close - r) + 1;
			if (pos < n && r[pos] == ' ')
				pos++;
		}
		rp->text = r + pos;
		return IMAP_PARSE_DONE;
	}
	if (rp->kind == IMAP_RESP_TAGGED)
		return fail(p, "tagged response without status");
	if (tokens(p, pos) < 0) {
		p->st = P_FAILED;
		return IMAP_PARSE_ERROR;
	}
	rp->toks = p->toks;
	rp->ntoks = p->ntoks;
	return IMAP_PARSE_DONE;
}

/* ---- helpers ---- */

int imap_tok_is(const struct imap_tok *t, const char *w)
{
	size_t l = strlen(w);

	return (t->type == IMAP_TOK_ATOM || t->type == IMAP_TOK_STRING) && t->len == l &&
		strncasecmp(t->s, w, l) == 0;
}

int imap_tok_u64(const struct imap_tok *t, unsigned long long *v)
{
	unsigned long long x = 0;
	size_t i;

	if (t->type != IMAP_TOK_ATOM || t->len == 0 || t->len > 19)
		return -1;
	for (i = 0; i < t->len; i++) {
		if (!isdigit((unsigned char)t->s[i]))
			return -1;
		x = x * 10 + (unsigned)(t->s[i] - '0');
	}
	*v = x;
	return 0;
}

int imap_tok_u32(const struct imap_tok *t, uint32_t *v)
{
	unsigned long long x;

	if (imap_tok_u64(t, &x) < 0 || x > 0xffffffffULL)
		return -1;
	*v = (uint32_t)x;
	return 0;
}

int imap_tok_str(const struct imap_tok *t, char *buf, size_t len)
{
	if ((t->type != IMAP_TOK_ATOM && t->type != IMAP_TOK_STRING) || t->len + 1 > len)
		return -1;
	memcpy(buf, t->s, t->len);
	buf[t->len] = '\0';
	return memchr(buf, '\0', t->len) != NULL ? -1 : 0;
}

long imap_tok_list_get(const struct imap_tok *toks, size_t l, const char *key)
{
	size_t i;

	if (toks[l].type != IMAP_TOK_LIST)
		return -1;
	for (i = l + 1; i < toks[l].end; i = toks[i].end) {
		size_t v = toks[i].end;

		if (v >= toks[l].end)
			return -1;
		if (imap_tok_is(&toks[i], key))
			return (long)v;
		i = v;		/* skip the value too */
	}
	return -1;
}

int imap_uidset_each(const char *set, uint32_t star,
		     int (*fn)(uint32_t lo, uint32_t hi, void *ctx), void *ctx)
{
	const char *p = set;

	if (*p == '\0')
		return -1;
	while (*p) {
		uint32_t v[2];
		int k;

		for (k = 0; k < 2; k++) {
			if (*p == '*') {
				v[k] = star;
				p++;
			} else {
				unsigned long long x = 0;
				const char *s = p;

				while (isdigit((unsigned char)*p) && p - s < 11)
					x = x * 10 + (unsigned)(*p++ - '0');
				if (p == s || x == 0 || x > 0xffffffffULL)
					return -1;
				v[k] = (uint32_t)x;
			}
			if (k == 0) {
				if (*p != ':') {
					v[1] = v[0];
					break;
				}
				p++;
			}
		}
		if (v[0] > v[1]) {
			uint32_t t = v[0];

			v[0] = v[1];
			v[1] = t;
		}
		if (fn(v[0], v[1], ctx) != 0)
			return -1;
		if (*p == ',')
			p++;
		else if (*p != '\0')
			return -1;
	}
	return 0;
}

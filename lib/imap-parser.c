/* IMAP command parser: see imap-parser.h for the contract. */
#include "imap-parser.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum state {
	S_START, S_TAG, S_NAME, S_ARG, S_ATOM, S_AFTER_SECTION, S_PARTIAL,
	S_QUOTED, S_QUOTED_ESC, S_TILDE, S_LIT_NUM, S_LIT_PLUS, S_LIT_CR, S_LIT_LF,
	S_LIT_DECIDE, S_LIT_DATA, S_SKIP,
};

struct node {
	enum imap_arg_type type;
	size_t off, len;
	size_t partial_off;
	uint64_t lsize;
	int first, last, next, count;
	int has_section, has_partial, lbin, lnonsync;
};

struct imap_parser {
	struct imap_parser_limits lim;
	enum state st;
	char *text;
	size_t tlen, tcap, tmax;
	size_t wire;
	struct node *nodes;
	unsigned nnodes, ncap;
	int *stack;             /* open containers (node index) */
	unsigned depth, section_depth;
	int root_first, root_last, root_count;
	int need_sep;
	int cur;                /* node being read (atom, string, literal) */
	size_t tag_off, name_off;
	int have_tag, have_name, uid;
	/* literal header */
	uint64_t lit_size;
	int lit_digits, lit_too_big, lit_bin, lit_nonsync;
	uint64_t lit_left;
	/* results */
	const char *err;
	int err_fatal;
	struct imap_arg *out;
	unsigned out_cap;
	int *order, *child_start;
	struct imap_command cmd;
	int done;               /* a command or error was returned: reset on next byte */
};

struct imap_parser *imap_parser_new(const struct imap_parser_limits *limits)
{
	struct imap_parser *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->lim = *limits;
	if (p->lim.max_line < 16)
		p->lim.max_line = 16;
	if (p->lim.max_args == 0)
		p->lim.max_args = 1;
	p->tmax = 2 * p->lim.max_line + 2;
	p->stack = calloc(p->lim.max_depth + 1, sizeof(int));
	if (p->stack == NULL) {
		free(p);
		return NULL;
	}
	imap_parser_reset(p);
	return p;
}

void imap_parser_free(struct imap_parser *p)
{
	if (p == NULL)
		return;
	free(p->text);
	free(p->nodes);
	free(p->stack);
	free(p->out);
	free(p->order);
	free(p->child_start);
	free(p);
}

void imap_parser_reset(struct imap_parser *p)
{
	p->st = S_START;
	p->tlen = 0;
	p->wire = 0;
	p->nnodes = 0;
	p->depth = p->section_depth = 0;
	p->root_first = p->root_last = -1;
	p->root_count = 0;
	p->need_sep = 0;
	p->cur = -1;
	p->have_tag = p->have_name = p->uid = 0;
	p->err = NULL;
	p->err_fatal = 0;
	p->done = 0;
	memset(&p->cmd, 0, sizeof(p->cmd));
}

static int text_reserve(struct imap_parser *p, size_t n)
{
	size_t ncap;
	char *nt;

	if (n > p->tmax || p->tlen + n > p->tmax)
		return -1;
	if (p->tlen + n <= p->tcap)
		return 0;
	ncap = p->tcap ? p->tcap : 256;
	while (ncap < p->tlen + n)
		ncap *= 2;
	if (ncap > p->tmax)
		ncap = p->tmax;
	nt = realloc(p->text, ncap);
	if (nt == NULL)
		return -1;
	p->text = nt;
	p->tcap = ncap;
	return 0;
}

static int text_add(struct imap_parser *p, char c)
{
	if (text_reserve(p, 1) < 0)
		return -1;
	p->text[p->tlen++] = c;
	return 0;
}

static int is_atom_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return 0;
	return strchr("(){\"]", c) == NULL;
}

static int is_tag_char(unsigned char c)
{
	return is_atom_char(c) && c != '+' && c != '%' && c != '*';
}

/* Returns the new node index, or -1 (error set) when out of nodes/memory. */
static int node_new(struct imap_parser *p, enum imap_arg_type type)
{
	struct node *n;
	int idx;

	if (p->nnodes >= p->lim.max_args) {
		p->err = "Too many arguments";
		return -1;
	}
	if (p->nnodes == p->ncap) {
		unsigned ncap = p->ncap ? p->ncap * 2 : 16;
		struct node *nn;
		if (ncap > p->lim.max_args)
			ncap = p->lim.max_args;
		nn = realloc(p->nodes, ncap * sizeof(*nn));
		if (nn == NULL) {
			p->err = "Out of memory";
			return -1;
		}
		p->nodes = nn;
		p->ncap = ncap;
	}
	idx = (int)p->nnodes++;
	n = &p->nodes[idx];
	memset(n, 0, sizeof(*n));
	n->type = type;
	n->off = p->tlen;
	n->first = n->last = n->next = -1;
	if (p->depth == 0) {
		if (p->root_last >= 0)
			p->nodes[p->root_last].next = idx;
		else
			p->root_first = idx;
		p->root_last = idx;
		p->root_count++;
	} else {
		struct node *par = &p->nodes[p->stack[p->depth - 1]];
		if (par->last >= 0)
			p->nodes[par->last].next = idx;
		else
			par->first = idx;
		par->last = idx;
		par->count++;
	}
	return idx;
}

static int push(struct imap_parser *p, int idx)
{
	if (p->depth >= p->lim.max_depth) {
		p->err = "Too deep nesting";
		return -1;
	}
	p->stack[p->depth++] = idx;
	return 0;
}

static int is_section_keyword(const char *s, size_t n)
{
	static const char *const kw[] = { "BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK",
					  "BINARY.SIZE", NULL };
	int i;

	for (i = 0; kw[i] != NULL; i++)
		if (strlen(kw[i]) == n && strncasecmp(kw[i], s, n) == 0)
			return 1;
	return 0;
}

static void atom_finish(struct imap_parser *p)
{
	struct node *n = &p->nodes[p->cur];

	n->len = p->tlen - n->off;
	p->text[p->tlen++] = '\0';      /* reserved when the atom grew */
	if (!n->has_section && n->len == 3 && strncasecmp(p->text + n->off, "NIL", 3) == 0)
		n->type = IMAP_ARG_NIL;
	p->cur = -1;
	p->need_sep = 1;
}

static int build_command(struct imap_parser *p)
{
	unsigned n = p->nnodes, i, len = 0;

	if (n > p->out_cap) {
		struct imap_arg *o = realloc(p->out, n * sizeof(*o));
		int *ord = realloc(p->order, n * sizeof(int));
		int *cs = realloc(p->child_start, n * sizeof(int));
		if (o != NULL) p->out = o;
		if (ord != NULL) p->order = ord;
		if (cs != NULL) p->child_start = cs;
		if (o == NULL || ord == NULL || cs == NULL)
			return -1;
		p->out_cap = n;
	}
	for (int c = p->root_first; c >= 0; c = p->nodes[c].next)
		p->order[len++] = c;
	for (i = 0; i < len; i++) {
		int idx = p->order[i];
		p->child_start[idx] = (int)len;
		for (int c = p->nodes[idx].first; c >= 0; c = p->nodes[c].next)
			p->order[len++] = c;
	}
	for (i = 0; i < len; i++) {
		const struct node *nd = &p->nodes[p->order[i]];
		struct imap_arg *a = &p->out[i];
		memset(a, 0, sizeof(*a));
		a->type = nd->type;
		if (nd->type != IMAP_ARG_LIST && nd->type != IMAP_ARG_LITERAL_SIZE) {
			a->str = p->text + nd->off;
			a->len = nd->len;
		}
		if (nd->count > 0 || nd->type == IMAP_ARG_LIST || nd->has_section) {
			a->list = p->out + p->child_start[p->order[i]];
			a->count = (size_t)nd->count;
		}
		a->has_section = nd->has_section;
		if (nd->has_partial)
			a->partial = p->text + nd->partial_off;
		a->literal_size = nd->lsize;
		a->literal_binary = nd->lbin;
		a->literal_nonsync = nd->lnonsync;
	}
	p->cmd.tag = p->text + p->tag_off;
	p->cmd.name = p->text + p->name_off;
	p->cmd.uid = p->uid;
	p->cmd.args = len > 0 ? p->out : NULL;
	p->cmd.count = (size_t)p->root_count;
	return 0;
}

static enum imap_parse_result fail(struct imap_parser *p, const char *msg, char c,
				   size_t i, size_t *used)
{
	if (p->err == NULL)
		p->err = msg;
	p->st = c == '\n' ? S_START : S_SKIP;
	p->done = 1;
	*used = i + 1;
	return IMAP_PARSE_ERROR;
}

static int literal_fits(const struct imap_parser *p)
{
	return p->lit_size <= p->lim.max_inline_literal &&
	       p->lit_size <= p->lim.max_line - (p->wire < p->lim.max_line ? p->wire : p->lim.max_line);
}

enum imap_parse_result imap_parser_feed(struct imap_parser *p, const char *buf,
					size_t len, size_t *used)
{
	size_t i = 0;

	*used = 0;
	if (p->st == S_LIT_DECIDE) {
		if (!literal_fits(p)) {
			p->err = "Literal too large";
			p->err_fatal = p->lit_nonsync;
			p->st = S_START;
			p->done = 1;
			return IMAP_PARSE_ERROR;
		}
		if (text_reserve(p, (size_t)p->lit_size + 1) < 0) {
			p->err = "Literal too large";
			p->err_fatal = p->lit_nonsync;
			p->st = S_START;
			p->done = 1;
			return IMAP_PARSE_ERROR;
		}
		p->wire += (size_t)p->lit_size;
		p->lit_left = p->lit_size;
		p->st = S_LIT_DATA;
	}
	while (i < len || (p->st == S_LIT_DATA && p->lit_left == 0)) {
		char c;
		unsigned char uc;

		if (p->st == S_LIT_DATA) {
			size_t n = len - i;
			struct node *nd = &p->nodes[p->cur];
			if (n > p->lit_left)
				n = (size_t)p->lit_left;
			memcpy(p->text + p->tlen, buf + i, n);
			p->tlen += n;
			i += n;
			p->lit_left -= n;
			if (p->lit_left > 0)
				break;
			nd->len = p->tlen - nd->off;
			p->text[p->tlen++] = '\0';
			p->cur = -1;
			p->need_sep = 1;
			p->st = S_ARG;
			continue;
		}
		c = buf[i];
		uc = (unsigned char)c;
		if (p->st == S_SKIP) {
			i++;
			if (c == '\n')
				p->st = S_START;
			continue;
		}
		if (p->st == S_START) {
			if (p->done)
				imap_parser_reset(p);
			if (c == '\r' || c == '\n') {
				i++;
				continue;
			}
			p->st = S_TAG;
			p->tag_off = p->tlen;
		}
		if (++p->wire > p->lim.max_line)
			return fail(p, "Too long command line", c, i, used);
		switch (p->st) {
		case S_TAG:
			if (c == ' ') {
				if (p->tlen == p->tag_off)
					return fail(p, "Empty tag", c, i, used);
				text_add(p, '\0');
				p->have_tag = 1;
				p->st = S_NAME;
				p->name_off = p->tlen;
			} else if (is_tag_char(uc)) {
				if (text_add(p, c) < 0)
					return fail(p, "Too long command line", c, i, used);
			} else if (c == '\r' || c == '\n') {
				if (c == '\r')
					break;
				return fail(p, "Missing command", c, i, used);
			} else {
				return fail(p, "Invalid tag", c, i, used);
			}
			break;
		case S_NAME:
			if (c == ' ' || c == '\n' || c == '\r') {
				size_t nlen = p->tlen - p->name_off;
				if (c == '\r')
					break;
				if (nlen == 0)
					return fail(p, "Missing command", c, i, used);
				if (!p->uid && nlen == 3 &&
				    strncasecmp(p->text + p->name_off, "UID", 3) == 0) {
					if (c == '\n')
						return fail(p, "Missing UID command", c, i, used);
					p->uid = 1;
					p->tlen = p->name_off;
					break;
				}
				text_add(p, '\0');
				p->have_name = 1;
				p->st = S_ARG;
				if (c == '\n') {
					i++;
					goto complete;
				}
			} else if (is_atom_char(uc) && c != '[') {
				if (text_add(p, c) < 0)
					return fail(p, "Too long command line", c, i, used);
			} else {
				return fail(p, "Invalid command name", c, i, used);
			}
			break;
		case S_ARG:
			if (c == ' ') {
				p->need_sep = 0;
				break;
			}
			if (c == '\r')
				break;
			if (c == '\n') {
				if (p->depth > 0)
					return fail(p, p->section_depth ? "Missing ']'" : "Missing ')'",
						    c, i, used);
				i++;
				goto complete;
			}
			if (c == ')' || c == ']') {
				struct node *top;
				if (p->depth == 0)
					return fail(p, c == ')' ? "Unexpected ')'" : "Unexpected ']'",
						    c, i, used);
				top = &p->nodes[p->stack[p->depth - 1]];
				if ((c == ')') != (top->type == IMAP_ARG_LIST))
					return fail(p, c == ')' ? "Unexpected ')'" : "Unexpected ']'",
						    c, i, used);
				p->depth--;
				p->need_sep = 1;
				if (c == ']') {
					p->section_depth--;
					p->st = S_AFTER_SECTION;
				}
				break;
			}
			if (p->need_sep)
				return fail(p, "Missing space between arguments", c, i, used);
			if (c == '(') {
				int idx = node_new(p, IMAP_ARG_LIST);
				if (idx < 0 || push(p, idx) < 0)
					return fail(p, "Too many arguments", c, i, used);
				break;
			}
			if (c == '"') {
				p->cur = node_new(p, IMAP_ARG_STRING);
				if (p->cur < 0)
					return fail(p, "Too many arguments", c, i, used);
				p->st = S_QUOTED;
				break;
			}
			if (c == '{' || c == '~') {
				p->lit_bin = c == '~';
				p->lit_size = 0;
				p->lit_digits = p->lit_too_big = p->lit_nonsync = 0;
				p->st = c == '~' ? S_TILDE : S_LIT_NUM;
				break;
			}
			if (!is_atom_char(uc) || c == '[')
				return fail(p, "Invalid characters in atom", c, i, used);
			p->cur = node_new(p, IMAP_ARG_ATOM);
			if (p->cur < 0)
				return fail(p, "Too many arguments", c, i, used);
			p->st = S_ATOM;
			/* fall through */
		case S_ATOM:
atom:
			if (c == '[' && p->section_depth == 0 &&
			    is_section_keyword(p->text + p->nodes[p->cur].off,
					       p->tlen - p->nodes[p->cur].off)) {
				struct node *n = &p->nodes[p->cur];
				if (text_reserve(p, 1) < 0)
					return fail(p, "Too long command line", c, i, used);
				n->len = p->tlen - n->off;
				p->text[p->tlen++] = '\0';
				n->has_section = 1;
				if (push(p, p->cur) < 0)
					return fail(p, "Too deep nesting", c, i, used);
				p->section_depth++;
				p->cur = -1;
				p->need_sep = 0;
				p->st = S_ARG;
				break;
			}
			if (c == ' ' || c == '\r' || c == '\n' || c == ')' ||
			    (c == ']' && p->section_depth > 0)) {
				atom_finish(p);
				p->st = S_ARG;
				p->wire--;
				continue;       /* the same byte again, in S_ARG */
			}
			if (!is_atom_char(uc) && c != ']')
				return fail(p, "Invalid characters in atom", c, i, used);
			if (text_reserve(p, 2) < 0)
				return fail(p, "Too long command line", c, i, used);
			p->text[p->tlen++] = c;
			break;
		case S_AFTER_SECTION:
			if (c == '<') {
				struct node *n = &p->nodes[p->stack[p->depth]];
				n->has_partial = 1;
				n->partial_off = p->tlen;
				p->cur = p->stack[p->depth];
				p->st = S_PARTIAL;
				break;
			}
			p->st = S_ARG;
			p->wire--;
			continue;
		case S_PARTIAL:
			if (c == '>') {
				if (p->tlen == p->nodes[p->cur].partial_off || text_add(p, '\0') < 0)
					return fail(p, "Invalid partial", c, i, used);
				p->cur = -1;
				p->st = S_ARG;
				break;
			}
			if (!((c >= '0' && c <= '9') || c == '.') || text_add(p, c) < 0)
				return fail(p, "Invalid partial", c, i, used);
			break;
		case S_QUOTED:
			if (c == '\\') {
				p->st = S_QUOTED_ESC;
			} else if (c == '"') {
				struct node *n = &p->nodes[p->cur];
				if (text_add(p, '\0') < 0)
					return fail(p, "Too long command line", c, i, used);
				n->len = p->tlen - 1 - n->off;
				p->cur = -1;
				p->need_sep = 1;
				p->st = S_ARG;
			} else if (c == '\r' || c == '\n' || c == '\0') {
				return fail(p, "Missing '\"'", c, i, used);
			} else if (text_add(p, c) < 0) {
				return fail(p, "Too long command line", c, i, used);
			}
			break;
		case S_QUOTED_ESC:
			if (c != '"' && c != '\\')
				return fail(p, "Invalid escape in quoted string", c, i, used);
			if (text_add(p, c) < 0)
				return fail(p, "Too long command line", c, i, used);
			p->st = S_QUOTED;
			break;
		case S_TILDE:
			if (c == '{') {
				p->st = S_LIT_NUM;
				break;
			}
			p->cur = node_new(p, IMAP_ARG_ATOM);
			if (p->cur < 0 || text_reserve(p, 2) < 0)
				return fail(p, "Too many arguments", c, i, used);
			p->text[p->tlen++] = '~';
			p->st = S_ATOM;
			goto atom;
		case S_LIT_NUM:
			if (c >= '0' && c <= '9') {
				if (p->lit_size > (UINT64_MAX - 9) / 10)
					p->lit_too_big = 1;
				else
					p->lit_size = p->lit_size * 10 + (uint64_t)(c - '0');
				if (p->lit_size > p->lim.max_literal)
					p->lit_too_big = 1;
				p->lit_digits++;
				break;
			}
			if (p->lit_digits == 0 || (c != '+' && c != '}'))
				return fail(p, "Invalid literal size", c, i, used);
			if (c == '+') {
				p->lit_nonsync = 1;
				p->st = S_LIT_PLUS;
			} else {
				p->st = S_LIT_CR;
			}
			break;
		case S_LIT_PLUS:
			if (c != '}')
				return fail(p, "Invalid literal size", c, i, used);
			p->st = S_LIT_CR;
			break;
		case S_LIT_CR:
			if (c == '\r') {
				p->st = S_LIT_LF;
				break;
			}
			/* fall through */
		case S_LIT_LF:
			if (c != '\n')
				return fail(p, "Missing CRLF after literal", c, i, used);
			if (p->lit_too_big) {
				p->err_fatal = p->lit_nonsync;
				return fail(p, "Literal too large", c, i, used);
			}
			p->cur = node_new(p, IMAP_ARG_LITERAL);
			if (p->cur < 0)
				return fail(p, "Too many arguments", c, i, used);
			p->nodes[p->cur].lsize = p->lit_size;
			p->nodes[p->cur].lbin = p->lit_bin;
			p->nodes[p->cur].lnonsync = p->lit_nonsync;
			p->st = S_LIT_DECIDE;
			*used = i + 1;
			return IMAP_PARSE_LITERAL;
		default:
			return fail(p, "Internal parser error", c, i, used);
		}
		i++;
	}
	*used = i;
	return IMAP_PARSE_MORE;

complete:
	if (build_command(p) < 0) {
		p->err = "Out of memory";
		p->st = S_START;
		p->done = 1;
		*used = i;
		return IMAP_PARSE_ERROR;
	}
	p->st = S_START;
	p->done = 1;
	*used = i;
	return IMAP_PARSE_COMMAND;
}

const struct imap_command *imap_parser_command(const struct imap_parser *p)
{
	return &p->cmd;
}

const char *imap_parser_error(const struct imap_parser *p, int *fatal)
{
	if (fatal != NULL)
		*fatal = p->err_fatal;
	return p->err != NULL ? p->err : "Invalid command";
}

const char *imap_parser_tag(const struct imap_parser *p)
{
	return p->have_tag ? p->text + p->tag_off : NULL;
}

const char *imap_parser_command_name(const struct imap_parser *p, int *uid)
{
	if (uid != NULL)
		*uid = p->uid;
	return p->have_name ? p->text + p->name_off : NULL;
}

struct imap_literal_info imap_parser_literal(const struct imap_parser *p)
{
	struct imap_literal_info li;

	li.size = p->lit_size;
	li.nonsync = p->lit_nonsync;
	li.binary = p->lit_bin;
	li.fits_inline = literal_fits(p);
	return li;
}

void imap_parser_literal_stream(struct imap_parser *p)
{
	if (p->st != S_LIT_DECIDE || p->cur < 0)
		return;
	p->nodes[p->cur].type = IMAP_ARG_LITERAL_SIZE;
	p->cur = -1;
	p->need_sep = 1;
	p->st = S_ARG;
}

int imap_arg_atom_equals(const struct imap_arg *a, const char *word)
{
	return (a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_NIL) && !a->has_section &&
	       strcasecmp(a->str, word) == 0;
}

const char *imap_arg_astring(const struct imap_arg *a)
{
	if ((a->type == IMAP_ARG_ATOM && !a->has_section) || a->type == IMAP_ARG_STRING ||
	    a->type == IMAP_ARG_LITERAL || a->type == IMAP_ARG_NIL)
		return a->str;
	return NULL;
}

/* MIME structure for IMAP: see mime.h for the contract. */
#include "mime.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct ctx {
	const char *d;
	size_t len;
	struct mime_limits lim;
	unsigned nparts;
	const char **bnd;       /* active boundaries, innermost last */
	size_t *bndlen;
	unsigned nb;
	int oom;
	int nostrip;            /* the part ended right after a close delimiter line */
};

/* ---- header fields ---------------------------------------------------- */

struct hfield {
	const char *name, *val;
	size_t nlen, vlen;
	const char *start;
	size_t flen;            /* whole field including its final line end */
};

/* Reads the field at p (< end); returns the position after it. */
static const char *field_next(const char *p, const char *end, struct hfield *f)
{
	const char *q = p, *colon = NULL, *vend;

	f->start = p;
	/* the field ends at a line end not followed by WSP */
	for (;;) {
		const char *nl = memchr(q, '\n', (size_t)(end - q));
		if (nl == NULL) {
			q = end;
			vend = end;
			break;
		}
		q = nl + 1;
		if (q < end && (*q == ' ' || *q == '\t'))
			continue;
		vend = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
		break;
	}
	f->flen = (size_t)(q - p);
	colon = memchr(p, ':', (size_t)(vend - p));
	if (colon == NULL || memchr(p, '\n', (size_t)(colon - p)) != NULL) {
		f->name = NULL;
		f->nlen = 0;
		f->val = vend;
		f->vlen = 0;
		return q;
	}
	f->name = p;
	f->nlen = (size_t)(colon - p);
	while (f->nlen > 0 && (p[f->nlen - 1] == ' ' || p[f->nlen - 1] == '\t'))
		f->nlen--;
	f->val = colon + 1;
	while (f->val < vend && (*f->val == ' ' || *f->val == '\t'))
		f->val++;
	f->vlen = (size_t)(vend - f->val);
	return q;
}

static int name_is(const struct hfield *f, const char *name)
{
	return f->name != NULL && strlen(name) == f->nlen && strncasecmp(f->name, name, f->nlen) == 0;
}

static const char *header_find(const char *d, size_t off, size_t len, size_t max,
			       const char *name, size_t *vlen)
{
	const char *p = d + off, *end = d + off + (len < max ? len : max);
	struct hfield f;

	while (p < end) {
		p = field_next(p, end, &f);
		if (name_is(&f, name)) {
			*vlen = f.vlen;
			return f.val;
		}
	}
	return NULL;
}

const char *mime_header_get(const struct mime_message *msg, const struct mime_part *part,
			    const char *name, size_t *len)
{
	size_t l;
	const char *v = header_find(msg->data, part->hdr_off, part->hdr_len, part->hdr_len,
				    name, &l);
	if (v != NULL && len != NULL)
		*len = l;
	return v;
}

/* ---- structured header lexer (RFC 2045 tokens, RFC 5322 atoms) --------- */

enum tok { T_END, T_ATOM, T_QSTR, T_SPECIAL };

struct lex {
	const char *p, *e;
	int addr;               /* RFC 5322 mode: '.' in atoms, [..] literals, comments kept */
	struct imap_string *comment;
};

static int is_tspecial(unsigned char c, int addr)
{
	if (addr)
		return strchr("()<>[]:;@\\,\"", c) != NULL;
	return strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

static enum tok lex_next(struct lex *l, struct imap_string *val, char *special)
{
again:
	imap_string_clear(val);
	for (;;) {
		while (l->p < l->e && (*l->p == ' ' || *l->p == '\t' || *l->p == '\r' ||
				       *l->p == '\n'))
			l->p++;
		if (l->p >= l->e)
			return T_END;
		if (*l->p != '(')
			break;
		/* comment, nested, with quoted-pairs */
		{
			int depth = 0;
			const char *s = l->p + 1;
			if (l->comment != NULL)
				imap_string_clear(l->comment);
			while (l->p < l->e) {
				char c = *l->p++;
				if (c == '\\' && l->p < l->e) {
					l->p++;
					continue;
				}
				if (c == '(')
					depth++;
				else if (c == ')' && --depth == 0)
					break;
			}
			if (l->comment != NULL) {
				const char *ce = l->p;
				if (depth == 0 && ce > s)
					ce--;
				for (; s < ce; s++) {
					if (*s == '\\' && s + 1 < ce)
						s++;
					imap_string_addc(l->comment, *s);
				}
			}
		}
	}
	if (*l->p == '"') {
		l->p++;
		while (l->p < l->e && *l->p != '"') {
			if (*l->p == '\\' && l->p + 1 < l->e)
				l->p++;
			if (*l->p != '\r' && *l->p != '\n')
				imap_string_addc(val, *l->p);
			l->p++;
		}
		if (l->p < l->e)
			l->p++;
		return T_QSTR;
	}
	if (l->addr && *l->p == '[') {
		while (l->p < l->e && *l->p != ']')
			imap_string_addc(val, *l->p++);
		if (l->p < l->e)
			imap_string_addc(val, *l->p++);
		return T_ATOM;
	}
	if (is_tspecial((unsigned char)*l->p, l->addr)) {
		*special = *l->p++;
		return T_SPECIAL;
	}
	while (l->p < l->e) {
		unsigned char c = (unsigned char)*l->p;
		if (c <= ' ' || c == 0x7f || is_tspecial(c, l->addr))
			break;
		imap_string_addc(val, (char)c);
		l->p++;
	}
	if (val->len == 0 && !val->failed) {
		/* a control character: skip it, never return an empty atom
		 * without moving on */
		l->p++;
		goto again;
	}
	return T_ATOM;
}

/* ---- content type, parameters ------------------------------------------ */

struct ctype {
	char type[64], subtype[64];
	int has;                /* a valid Content-Type was found */
};

static void copy_tok(char *dst, size_t dsize, const struct imap_string *v)
{
	size_t n = v->len < dsize - 1 ? v->len : dsize - 1;
	memcpy(dst, v->buf ? v->buf : "", n);
	dst[n] = '\0';
}

/* Parses "type/subtype"; leaves the lexer after it. */
static void parse_ctype(struct lex *l, struct ctype *ct)
{
	struct imap_string v;
	char sp = 0;

	imap_string_init(&v, 1024);
	ct->has = 0;
	if (lex_next(l, &v, &sp) == T_ATOM && v.len > 0) {
		copy_tok(ct->type, sizeof(ct->type), &v);
		if (lex_next(l, &v, &sp) == T_SPECIAL && sp == '/' &&
		    lex_next(l, &v, &sp) == T_ATOM && v.len > 0) {
			copy_tok(ct->subtype, sizeof(ct->subtype), &v);
			ct->has = 1;
		}
	}
	imap_string_free(&v);
}

static void part_ctype(const struct ctx *c, const struct mime_part *part, int in_digest,
		       struct ctype *ct)
{
	size_t vlen;
	const char *v = header_find(c->d, part->hdr_off, part->hdr_len, c->lim.max_header,
				    "Content-Type", &vlen);

	ct->has = 0;
	if (v != NULL) {
		struct lex l = { v, v + vlen, 0, NULL };
		parse_ctype(&l, ct);
	}
	if (!ct->has) {
		strcpy(ct->type, in_digest ? "message" : "text");
		strcpy(ct->subtype, in_digest ? "rfc822" : "plain");
	}
}

struct param {
	char *name, *value;
};

struct params {
	struct param *p;
	size_t n;
};

static void params_free(struct params *ps)
{
	size_t i;

	for (i = 0; i < ps->n; i++) {
		free(ps->p[i].name);
		free(ps->p[i].value);
	}
	free(ps->p);
	ps->p = NULL;
	ps->n = 0;
}

static void params_add(struct params *ps, const char *name, size_t nlen, const char *val,
		       size_t vlen)
{
	struct param *np = realloc(ps->p, (ps->n + 1) * sizeof(*np));

	if (np == NULL)
		return;
	ps->p = np;
	np[ps->n].name = strndup(name, nlen);
	np[ps->n].value = strndup(val, vlen);
	if (np[ps->n].name == NULL || np[ps->n].value == NULL) {
		free(np[ps->n].name);
		free(np[ps->n].value);
		return;
	}
	ps->n++;
}

/* ";" attribute "=" value pairs after the lexer's position; RFC 2231
 * continuations (name*0, name*1*) are joined and appended after the
 * plain parameters ("name" or, when any piece is extended, "name*"). */
static void parse_params(struct lex *l, struct params *out)
{
	struct params raw = { NULL, 0 };
	struct imap_string a, v;
	char sp = 0;
	size_t i, j;
	enum tok t;

	imap_string_init(&a, 4096);
	imap_string_init(&v, 65536);
	out->p = NULL;
	out->n = 0;
	for (;;) {
		while ((t = lex_next(l, &a, &sp)) == T_SPECIAL && sp == ';')
			;
		if (t != T_ATOM)
			break;
		if (lex_next(l, &v, &sp) != T_SPECIAL || sp != '=')
			break;
		{
			char *name = strndup(a.buf, a.len);
			if (name == NULL)
				break;
			t = lex_next(l, &v, &sp);
			if (t != T_ATOM && t != T_QSTR) {
				free(name);
				break;
			}
			params_add(&raw, name, strlen(name), v.buf ? v.buf : "", v.len);
			free(name);
		}
	}
	/* plain ones in order, then joined continuations */
	for (i = 0; i < raw.n; i++) {
		char *star = strchr(raw.p[i].name, '*');
		if (star == NULL || star[1] == '\0')
			params_add(out, raw.p[i].name, strlen(raw.p[i].name), raw.p[i].value,
				   strlen(raw.p[i].value));
	}
	for (i = 0; i < raw.n; i++) {
		char *star = strchr(raw.p[i].name, '*');
		size_t blen;
		struct imap_string joined;
		int ext = 0;
		unsigned idx;

		if (star == NULL || star[1] == '\0' || star[1] < '0' || star[1] > '9')
			continue;
		blen = (size_t)(star - raw.p[i].name);
		/* only handle each base once: at its first piece */
		for (j = 0; j < i; j++) {
			char *s2 = strchr(raw.p[j].name, '*');
			if (s2 != NULL && s2[1] >= '0' && s2[1] <= '9' &&
			    (size_t)(s2 - raw.p[j].name) == blen &&
			    strncasecmp(raw.p[j].name, raw.p[i].name, blen) == 0)
				break;
		}
		if (j < i)
			continue;
		imap_string_init(&joined, 65536);
		for (idx = 0; idx < 1000; idx++) {
			int found = 0;
			for (j = 0; j < raw.n; j++) {
				char *s2 = strchr(raw.p[j].name, '*');
				char *endp;
				unsigned long n;
				if (s2 == NULL || (size_t)(s2 - raw.p[j].name) != blen ||
				    strncasecmp(raw.p[j].name, raw.p[i].name, blen) != 0 ||
				    s2[1] < '0' || s2[1] > '9')
					continue;
				n = strtoul(s2 + 1, &endp, 10);
				if (n != idx || (*endp != '\0' && strcmp(endp, "*") != 0))
					continue;
				if (*endp == '*')
					ext = 1;
				imap_string_adds(&joined, raw.p[j].value);
				found = 1;
				break;
			}
			if (!found)
				break;
		}
		{
			char nm[256];
			size_t nl = blen < 250 ? blen : 250;
			memcpy(nm, raw.p[i].name, nl);
			if (ext)
				nm[nl++] = '*';
			params_add(out, nm, nl, joined.buf ? joined.buf : "", joined.len);
		}
		imap_string_free(&joined);
	}
	params_free(&raw);
	imap_string_free(&a);
	imap_string_free(&v);
}

static const char *param_get(const struct params *ps, const char *name)
{
	size_t i;

	for (i = 0; i < ps->n; i++)
		if (strcasecmp(ps->p[i].name, name) == 0)
			return ps->p[i].value;
	return NULL;
}

/* ---- parsing ------------------------------------------------------------ */

static size_t line_end(const struct ctx *c, size_t pos)
{
	const char *nl = memchr(c->d + pos, '\n', c->len - pos);
	return nl ? (size_t)(nl - c->d) + 1 : c->len;
}

/* Index of the active boundary the line at pos starts with (innermost
 * first), or -1.  *close set for "--boundary--". */
static int boundary_at(const struct ctx *c, size_t pos, int *close)
{
	int i;

	if (c->nb == 0 || c->len - pos < 2 || c->d[pos] != '-' || c->d[pos + 1] != '-')
		return -1;
	for (i = (int)c->nb - 1; i >= 0; i--) {
		size_t bl = c->bndlen[i];
		if (c->len - pos - 2 >= bl && memcmp(c->d + pos + 2, c->bnd[i], bl) == 0) {
			size_t q = pos + 2 + bl;
			*close = c->len - q >= 2 && c->d[q] == '-' && c->d[q + 1] == '-';
			return i;
		}
	}
	return -1;
}

/* End of a body that stops at the boundary line at pos: the line end
 * before the boundary belongs to the boundary. */
static size_t body_end_before(const struct ctx *c, size_t body_off, size_t pos)
{
	size_t e = pos;

	if (e > body_off && c->d[e - 1] == '\n') {
		e--;
		if (e > body_off && c->d[e - 1] == '\r')
			e--;
	}
	return e;
}

static void count_range(const char *d, size_t off, size_t len, uint64_t *vsize,
			uint64_t *lines)
{
	const char *p = d + off, *end = d + off + len;
	uint64_t lf = 0, bare = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			break;
		lf++;
		if (nl == d + off || nl[-1] != '\r')
			bare++;
		p = nl + 1;
	}
	*vsize = len + bare;
	if (lines != NULL)
		*lines = lf;
}

static struct mime_part *part_new(struct ctx *c, struct mime_part *parent)
{
	struct mime_part *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		c->oom = 1;
		return NULL;
	}
	c->nparts++;
	p->parent = parent;
	if (parent != NULL) {
		struct mime_part **pp = &parent->children;
		while (*pp != NULL)
			pp = &(*pp)->next;
		*pp = p;
		parent->nchildren++;
	}
	return p;
}

/* Scans lines from pos to the next active boundary line or the end.
 * Returns that line's position; *term = boundary index or -1. */
static size_t scan_to_boundary(const struct ctx *c, size_t pos, int *term, int *close)
{
	while (pos < c->len) {
		if ((*term = boundary_at(c, pos, close)) >= 0)
			return pos;
		pos = line_end(c, pos);
	}
	*term = -1;
	*close = 0;
	return c->len;
}

static size_t parse_part(struct ctx *c, struct mime_part *part, size_t pos, unsigned depth,
			 int in_digest, int *term, int *close);

static size_t parse_multipart(struct ctx *c, struct mime_part *part, unsigned depth,
			      int digest, const char *b, size_t blen, int *term, int *close)
{
	size_t pos;
	unsigned own = c->nb;

	c->bnd[c->nb] = b;
	c->bndlen[c->nb] = blen;
	c->nb++;
	pos = scan_to_boundary(c, part->body_off, term, close);
	while (*term == (int)own && !*close && !c->oom) {
		struct mime_part *child;
		pos = line_end(c, pos);
		if (c->nparts >= c->lim.max_parts) {
			pos = scan_to_boundary(c, pos, term, close);
			continue;
		}
		child = part_new(c, part);
		if (child == NULL)
			break;
		pos = parse_part(c, child, pos, depth + 1, digest, term, close);
	}
	c->nb = own;
	if (*term == (int)own) {
		/* close delimiter: the epilogue runs to an outer boundary; when
		 * it is empty the close line's own line end stays in the body */
		size_t epi = line_end(c, pos);
		pos = scan_to_boundary(c, epi, term, close);
		c->nostrip = pos == epi;
	}
	return pos;
}

static size_t parse_part(struct ctx *c, struct mime_part *part, size_t pos, unsigned depth,
			 int in_digest, int *term, int *close)
{
	struct ctype ct;
	size_t end;

	/* header: up to the blank line, a boundary line or the end */
	part->hdr_off = pos;
	*term = -1;
	*close = 0;
	while (pos < c->len) {
		size_t le = line_end(c, pos);
		if (c->d[pos] == '\n' || (c->d[pos] == '\r' && pos + 1 < c->len && c->d[pos + 1] == '\n')) {
			pos = le;
			break;
		}
		if ((*term = boundary_at(c, pos, close)) >= 0)
			break;
		pos = le;
	}
	part->hdr_len = (*term >= 0 ? body_end_before(c, part->hdr_off, pos) : pos) -
			part->hdr_off;
	part->body_off = pos;
	count_range(c->d, part->hdr_off, part->hdr_len, &part->hdr_vsize, NULL);
	if (*term >= 0) {
		part->body_len = 0;
		return pos;
	}
	part_ctype(c, part, in_digest, &ct);
	c->nostrip = 0;
	if (depth < c->lim.max_depth && strcasecmp(ct.type, "multipart") == 0) {
		size_t vlen;
		const char *v = header_find(c->d, part->hdr_off, part->hdr_len,
					    c->lim.max_header, "Content-Type", &vlen);
		struct params ps = { NULL, 0 };
		const char *b = NULL;
		part->is_multipart = 1;
		if (v != NULL) {
			struct lex l = { v, v + vlen, 0, NULL };
			struct ctype dummy;
			parse_ctype(&l, &dummy);
			parse_params(&l, &ps);
			b = param_get(&ps, "boundary");
		}
		if (b != NULL && *b != '\0') {
			/* the boundary must outlive ps: find it in the message */
			const char *bp = memmem(v, vlen, b, strlen(b));
			size_t blen = strlen(b);
			if (bp == NULL) {
				/* quoted-pairs changed it; give up on children */
				end = scan_to_boundary(c, part->body_off, term, close);
			} else {
				end = parse_multipart(c, part, depth, strcasecmp(ct.subtype, "digest") == 0,
						      bp, blen, term, close);
			}
		} else if (c->nparts < c->lim.max_parts) {
			/* no boundary: the body is one part of its own */
			struct mime_part *child = part_new(c, part);
			end = child ? parse_part(c, child, part->body_off, depth + 1, 0, term, close)
				    : c->len;
		} else {
			end = scan_to_boundary(c, part->body_off, term, close);
		}
		params_free(&ps);
	} else if (depth < c->lim.max_depth && c->nparts < c->lim.max_parts &&
		   strcasecmp(ct.type, "message") == 0 && strcasecmp(ct.subtype, "rfc822") == 0) {
		struct mime_part *child = part_new(c, part);
		part->is_message = 1;
		end = child ? parse_part(c, child, part->body_off, depth + 1, 0, term, close) : c->len;
	} else {
		end = scan_to_boundary(c, part->body_off, term, close);
	}
	part->body_len = (*term >= 0 && !c->nostrip ? body_end_before(c, part->body_off, end)
						     : end) - part->body_off;
	c->nostrip = 0;
	count_range(c->d, part->body_off, part->body_len, &part->body_vsize, &part->body_lines);
	part->in_digest = in_digest;
	return end;
}

static void part_free(struct mime_part *p)
{
	while (p != NULL) {
		struct mime_part *next = p->next;
		part_free(p->children);
		free(p);
		p = next;
	}
}

struct mime_message *mime_parse(const char *data, size_t len, const struct mime_limits *limits)
{
	struct mime_message *msg = calloc(1, sizeof(*msg));
	struct ctx c;
	int term, close;

	if (msg == NULL)
		return NULL;
	memset(&c, 0, sizeof(c));
	c.d = data;
	c.len = len;
	c.lim = *limits;
	if (c.lim.max_parts == 0)
		c.lim.max_parts = 1;
	c.bnd = calloc(c.lim.max_depth + 1, sizeof(*c.bnd));
	c.bndlen = calloc(c.lim.max_depth + 1, sizeof(*c.bndlen));
	msg->data = data;
	msg->len = len;
	msg->root = part_new(&c, NULL);
	if (msg->root == NULL || c.bnd == NULL || c.bndlen == NULL) {
		free(c.bnd);
		free(c.bndlen);
		mime_message_free(msg);
		return NULL;
	}
	parse_part(&c, msg->root, 0, 0, 0, &term, &close);
	free(c.bnd);
	free(c.bndlen);
	msg->nparts = c.nparts;
	if (c.oom) {
		mime_message_free(msg);
		return NULL;
	}
	return msg;
}

void mime_message_free(struct mime_message *msg)
{
	if (msg == NULL)
		return;
	part_free(msg->root);
	free(msg);
}

uint64_t mime_message_vsize(const struct mime_message *msg)
{
	return msg->root->hdr_vsize + msg->root->body_vsize;
}

/* ---- ENVELOPE ------------------------------------------------------------ */

struct addr_out {
	struct imap_string *out;
	int count;
};

static void addr_begin(struct addr_out *ao)
{
	imap_string_addc(ao->out, ao->count++ == 0 ? '(' : '(');
}

static void addr_write(struct addr_out *ao, const char *name, size_t nlen, const char *route,
		       size_t rlen, const char *mbox, size_t mlen, const char *host, size_t hlen)
{
	struct imap_string *o = ao->out;

	if (ao->count == 0)
		imap_string_addc(o, '(');
	ao->count++;
	imap_string_addc(o, '(');
	if (name == NULL)
		imap_string_adds(o, "NIL");
	else
		imap_string_add_text(o, name, nlen);
	imap_string_addc(o, ' ');
	imap_string_add_nstring_nolf(o, route, rlen);
	imap_string_addc(o, ' ');
	imap_string_add_nstring_nolf(o, mbox, mlen);
	imap_string_addc(o, ' ');
	imap_string_add_nstring_nolf(o, host, hlen);
	imap_string_addc(o, ')');
}

/* Reads local-part "@" domain (the lexer positioned before it); the first
 * token already read is in tok/t.  Stops at the first token that is not
 * part of it, left in tok/t/sp. */
static void read_addr_spec(struct lex *l, struct imap_string *tok, enum tok *t, char *sp,
			   struct imap_string *mbox, struct imap_string *host, int *has_at)
{
	*has_at = 0;
	while (*t == T_ATOM || *t == T_QSTR || (*t == T_SPECIAL && *sp == '.')) {
		if (*t == T_SPECIAL)
			imap_string_addc(mbox, '.');
		else
			imap_string_add(mbox, tok->buf ? tok->buf : "", tok->len);
		*t = lex_next(l, tok, sp);
	}
	if (*t == T_SPECIAL && *sp == '@') {
		*has_at = 1;
		*t = lex_next(l, tok, sp);
		while (*t == T_ATOM || (*t == T_SPECIAL && *sp == '.')) {
			if (*t == T_SPECIAL)
				imap_string_addc(host, '.');
			else
				imap_string_add(host, tok->buf ? tok->buf : "", tok->len);
			*t = lex_next(l, tok, sp);
		}
	}
}

static void write_address_list(struct imap_string *out, const char *v, size_t vlen)
{
	struct imap_string tok, comment, phrase, mbox, host, route;
	struct lex l = { v, v + vlen, 1, NULL };
	struct addr_out ao = { out, 0 };
	int in_group = 0, guard = 0;
	char sp = 0;
	enum tok t;

	(void)addr_begin;
	imap_string_init(&tok, 65536);
	imap_string_init(&comment, 65536);
	imap_string_init(&phrase, 65536);
	imap_string_init(&mbox, 65536);
	imap_string_init(&host, 65536);
	imap_string_init(&route, 65536);
	l.comment = &comment;
	t = lex_next(&l, &tok, &sp);
	while (t != T_END && guard++ < 100000) {
		int words = 0, has_at;

		if (t == T_SPECIAL && sp == ',') {
			t = lex_next(&l, &tok, &sp);
			continue;
		}
		if (t == T_SPECIAL && sp == ';') {
			if (in_group) {
				addr_write(&ao, NULL, 0, NULL, 0, NULL, 0, NULL, 0);
				in_group = 0;
			}
			t = lex_next(&l, &tok, &sp);
			continue;
		}
		imap_string_clear(&phrase);
		imap_string_clear(&comment);
		imap_string_clear(&mbox);
		imap_string_clear(&host);
		imap_string_clear(&route);
		/* a phrase, unless this is an addr-spec: remember where we are */
		{
			struct lex save = l;
			struct imap_string first;
			enum tok t0 = t;
			char sp0 = sp;
			imap_string_init(&first, 65536);
			imap_string_add(&first, tok.buf ? tok.buf : "", tok.len);
			while (t == T_ATOM || t == T_QSTR || (t == T_SPECIAL && sp == '.')) {
				if (t == T_SPECIAL) {
					imap_string_addc(&phrase, '.');
				} else {
					if (words++ > 0 && phrase.len > 0 &&
					    phrase.buf[phrase.len - 1] != '.')
						imap_string_addc(&phrase, ' ');
					imap_string_add(&phrase, tok.buf ? tok.buf : "", tok.len);
				}
				t = lex_next(&l, &tok, &sp);
			}
			if (t == T_SPECIAL && sp == '<') {
				/* name-addr */
				int nwords = words;
				imap_string_free(&first);
				t = lex_next(&l, &tok, &sp);
				while (t == T_SPECIAL && (sp == '@' || sp == ',' || sp == ':')) {
					/* obs-route: @a,@b: */
					if (sp == ':') {
						t = lex_next(&l, &tok, &sp);
						break;
					}
					if (sp == '@') {
						if (route.len > 0)
							imap_string_addc(&route, ',');
						imap_string_addc(&route, '@');
						t = lex_next(&l, &tok, &sp);
						while (t == T_ATOM || (t == T_SPECIAL && sp == '.')) {
							if (t == T_SPECIAL)
								imap_string_addc(&route, '.');
							else
								imap_string_add(&route, tok.buf, tok.len);
							t = lex_next(&l, &tok, &sp);
						}
					} else {
						t = lex_next(&l, &tok, &sp);
					}
				}
				read_addr_spec(&l, &tok, &t, &sp, &mbox, &host, &has_at);
				while (t != T_END && !(t == T_SPECIAL && sp == '>'))
					t = lex_next(&l, &tok, &sp);
				if (t != T_END)
					t = lex_next(&l, &tok, &sp);
				addr_write(&ao, nwords ? phrase.buf : NULL, phrase.len,
					   route.len ? route.buf : NULL, route.len,
					   mbox.len ? mbox.buf : "MISSING_MAILBOX",
					   mbox.len ? mbox.len : 15,
					   host.len ? host.buf : "MISSING_DOMAIN",
					   host.len ? host.len : 14);
				continue;
			}
			if (t == T_SPECIAL && sp == ':' && !in_group && words > 0) {
				imap_string_free(&first);
				addr_write(&ao, NULL, 0, NULL, 0, phrase.buf, phrase.len, NULL, 0);
				in_group = 1;
				t = lex_next(&l, &tok, &sp);
				continue;
			}
			/* addr-spec: re-read from the first token */
			l = save;
			t = t0;
			sp = sp0;
			imap_string_clear(&tok);
			imap_string_add(&tok, first.buf ? first.buf : "", first.len);
			imap_string_free(&first);
			imap_string_clear(&comment);
			read_addr_spec(&l, &tok, &t, &sp, &mbox, &host, &has_at);
			if (mbox.len == 0 && host.len == 0) {
				/* nothing usable here: skip one token */
				if (t != T_END && !(t == T_SPECIAL && (sp == ',' || sp == ';')))
					t = lex_next(&l, &tok, &sp);
				continue;
			}
			/* a trailing comment names the address */
			addr_write(&ao, comment.len ? comment.buf : NULL, comment.len, NULL, 0,
				   mbox.len ? mbox.buf : "MISSING_MAILBOX", mbox.len ? mbox.len : 15,
				   host.len ? host.buf : "MISSING_DOMAIN", host.len ? host.len : 14);
		}
	}
	if (in_group)
		addr_write(&ao, NULL, 0, NULL, 0, NULL, 0, NULL, 0);
	if (ao.count == 0)
		imap_string_adds(out, "NIL");
	else
		imap_string_addc(out, ')');
	imap_string_free(&tok);
	imap_string_free(&comment);
	imap_string_free(&phrase);
	imap_string_free(&mbox);
	imap_string_free(&host);
	imap_string_free(&route);
}

int mime_write_envelope(struct imap_string *out, const struct mime_message *msg,
			const struct mime_part *part)
{
	static const char *const names[] = { "Date", "Subject", "From", "Sender", "Reply-To",
					     "To", "Cc", "Bcc", "In-Reply-To", "Message-ID" };
	const char *val[10] = { NULL };
	size_t vlen[10] = { 0 };
	const char *p = msg->data + part->hdr_off, *end = p + part->hdr_len;
	struct hfield f;
	int i;

	while (p < end) {
		p = field_next(p, end, &f);
		for (i = 0; i < 10; i++)
			if (val[i] == NULL && name_is(&f, names[i])) {
				val[i] = f.val;
				vlen[i] = f.vlen;
			}
	}
	imap_string_addc(out, '(');
	for (i = 0; i < 10; i++) {
		int src = i;
		if (i > 0)
			imap_string_addc(out, ' ');
		if ((i == 3 || i == 4) && val[i] == NULL)
			src = 2;        /* Sender and Reply-To default to From */
		if (i == 1) {
			if (val[i] == NULL)
				imap_string_adds(out, "NIL");
			else
				imap_string_add_text(out, val[i], vlen[i]);
		} else if (i >= 2 && i <= 7) {
			if (val[src] == NULL)
				imap_string_adds(out, "NIL");
			else
				write_address_list(out, val[src], vlen[src]);
		} else {
			imap_string_add_nstring_nolf(out, val[i], vlen[i]);
		}
	}
	imap_string_addc(out, ')');
	return out->failed ? -1 : 0;
}

/* ---- BODYSTRUCTURE -------------------------------------------------------- */

static void write_params(struct imap_string *out, const struct params *ps, int add_charset)
{
	size_t i;

	if (ps->n == 0 && !add_charset) {
		imap_string_adds(out, "NIL");
		return;
	}
	imap_string_addc(out, '(');
	for (i = 0; i < ps->n; i++) {
		if (i > 0)
			imap_string_addc(out, ' ');
		imap_string_add_quoted(out, ps->p[i].name, strlen(ps->p[i].name));
		imap_string_addc(out, ' ');
		imap_string_add_quoted(out, ps->p[i].value, strlen(ps->p[i].value));
	}
	if (add_charset)
		imap_string_adds(out, ps->n ? " \"charset\" \"us-ascii\"" : "\"charset\" \"us-ascii\"");
	imap_string_addc(out, ')');
}

static void write_disposition(struct imap_string *out, const struct mime_message *msg,
			      const struct mime_part *part)
{
	size_t vlen;
	const char *v = mime_header_get(msg, part, "Content-Disposition", &vlen);
	struct imap_string tok;
	char sp = 0;

	if (v == NULL) {
		imap_string_adds(out, "NIL");
		return;
	}
	imap_string_init(&tok, 4096);
	{
		struct lex l = { v, v + vlen, 0, NULL };
		struct params ps;
		if (lex_next(&l, &tok, &sp) != T_ATOM || tok.len == 0) {
			imap_string_adds(out, "NIL");
		} else {
			imap_string_addc(out, '(');
			imap_string_add_quoted(out, tok.buf, tok.len);
			imap_string_addc(out, ' ');
			parse_params(&l, &ps);
			write_params(out, &ps, 0);
			params_free(&ps);
			imap_string_addc(out, ')');
		}
	}
	imap_string_free(&tok);
}

static void write_language(struct imap_string *out, const struct mime_message *msg,
			   const struct mime_part *part)
{
	size_t vlen;
	const char *v = mime_header_get(msg, part, "Content-Language", &vlen);
	struct imap_string tok;
	int n = 0;
	char sp = 0;
	enum tok t;

	if (v == NULL) {
		imap_string_adds(out, "NIL");
		return;
	}
	imap_string_init(&tok, 4096);
	{
		struct lex l = { v, v + vlen, 0, NULL };
		while ((t = lex_next(&l, &tok, &sp)) != T_END) {
			if (t == T_SPECIAL)
				continue;
			imap_string_addc(out, n++ == 0 ? '(' : ' ');
			imap_string_add_quoted(out, tok.buf ? tok.buf : "", tok.len);
		}
	}
	imap_string_adds(out, n ? ")" : "NIL");
	imap_string_free(&tok);
}

static void write_nstring_header(struct imap_string *out, const struct mime_message *msg,
				 const struct mime_part *part, const char *name)
{
	size_t vlen = 0;
	const char *v = mime_header_get(msg, part, name, &vlen);

	imap_string_add_nstring_nolf(out, v, vlen);
}

static void write_body(struct imap_string *out, const struct mime_message *msg,
		       const struct mime_part *part, int ext, unsigned depth)
{
	struct ctx c;
	struct ctype ct;
	struct params ps = { NULL, 0 };
	size_t vlen;
	const char *v;

	memset(&c, 0, sizeof(c));
	c.d = msg->data;
	c.len = msg->len;
	c.lim.max_header = (size_t)-1;
	part_ctype(&c, part, part->in_digest, &ct);
	v = mime_header_get(msg, part, "Content-Type", &vlen);
	if (v != NULL) {
		struct lex l = { v, v + vlen, 0, NULL };
		struct ctype dummy;
		parse_ctype(&l, &dummy);
		if (dummy.has)
			parse_params(&l, &ps);
	}
	imap_string_addc(out, '(');
	if (part->is_multipart) {
		const struct mime_part *ch;
		for (ch = part->children; ch != NULL; ch = ch->next)
			write_body(out, msg, ch, ext, depth + 1);
		if (part->children == NULL)
			imap_string_adds(out, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)");
		imap_string_addc(out, ' ');
		imap_string_add_quoted(out, ct.subtype, strlen(ct.subtype));
		if (ext) {
			imap_string_addc(out, ' ');
			write_params(out, &ps, 0);
			imap_string_addc(out, ' ');
			write_disposition(out, msg, part);
			imap_string_addc(out, ' ');
			write_language(out, msg, part);
			imap_string_addc(out, ' ');
			write_nstring_header(out, msg, part, "Content-Location");
		}
	} else {
		int text = strcasecmp(ct.type, "text") == 0;
		if (!ext && text && strcasecmp(ct.subtype, "plain") == 0 &&
		    (ps.n == 0 || (ps.n == 1 && strcasecmp(ps.p[0].name, "charset") == 0 &&
				   strcasecmp(ps.p[0].value, "us-ascii") == 0))) {
			/* dovecot writes the default type in its canonical form */
			imap_string_adds(out, "\"text\" \"plain\" (\"charset\" \"us-ascii\")");
		} else {
			imap_string_add_quoted(out, ct.type, strlen(ct.type));
			imap_string_addc(out, ' ');
			imap_string_add_quoted(out, ct.subtype, strlen(ct.subtype));
			imap_string_addc(out, ' ');
			write_params(out, &ps, text && param_get(&ps, "charset") == NULL);
		}
		imap_string_addc(out, ' ');
		write_nstring_header(out, msg, part, "Content-ID");
		imap_string_addc(out, ' ');
		write_nstring_header(out, msg, part, "Content-Description");
		imap_string_addc(out, ' ');
		v = mime_header_get(msg, part, "Content-Transfer-Encoding", &vlen);
		{
			struct imap_string tok;
			char sp = 0;
			struct lex l = { v, v ? v + vlen : v, 0, NULL };
			imap_string_init(&tok, 1024);
			if (v != NULL && lex_next(&l, &tok, &sp) == T_ATOM && tok.len > 0)
				imap_string_add_quoted(out, tok.buf, tok.len);
			else
				imap_string_adds(out, "\"7bit\"");
			imap_string_free(&tok);
		}
		imap_string_addf(out, " %llu", (unsigned long long)part->body_vsize);
		if (part->is_message && part->children != NULL) {
			imap_string_addc(out, ' ');
			mime_write_envelope(out, msg, part->children);
			imap_string_addc(out, ' ');
			write_body(out, msg, part->children, ext, depth + 1);
		}
		if (text || (part->is_message && part->children != NULL))
			imap_string_addf(out, " %llu", (unsigned long long)part->body_lines);
		if (ext) {
			imap_string_addc(out, ' ');
			write_nstring_header(out, msg, part, "Content-MD5");
			imap_string_addc(out, ' ');
			write_disposition(out, msg, part);
			imap_string_addc(out, ' ');
			write_language(out, msg, part);
			imap_string_addc(out, ' ');
			write_nstring_header(out, msg, part, "Content-Location");
		}
	}
	imap_string_addc(out, ')');
	params_free(&ps);
}

int mime_write_bodystructure(struct imap_string *out, const struct mime_message *msg,
			     const struct mime_part *part, int extended)
{
	write_body(out, msg, part, extended, 0);
	return out->failed ? -1 : 0;
}

/* ---- sections ------------------------------------------------------------- */

const struct mime_part *mime_find_part(const struct mime_message *msg,
				       const uint32_t *path, size_t npath)
{
	const struct mime_part *x = msg->root;
	size_t i;

	for (i = 0; i < npath; i++) {
		uint32_t n = path[i];
		if (x->is_multipart) {
			const struct mime_part *ch = x->children;
			if (n == 0)
				return NULL;
			while (ch != NULL && --n > 0)
				ch = ch->next;
			if (ch == NULL)
				return NULL;
			x = ch;
		} else if (n != 1 || (x == msg->root && i > 0)) {
			/* a single part is its own part 1, except that the
			 * message itself has no "1.1" (dovecot agrees) */
			return NULL;
		}
		if (x->is_message && i + 1 < npath) {
			if (x->children == NULL)
				return NULL;
			x = x->children;
		}
	}
	return x;
}

static int header_has_blank_line(const struct mime_message *msg, const struct mime_part *x)
{
	size_t h = x->hdr_off, b = x->body_off;
	const char *d = msg->data;

	if (b <= h || d[b - 1] != '\n')
		return 0;
	if (b - h == 1 || d[b - 2] == '\n')
		return 1;
	return d[b - 2] == '\r' && (b - h == 2 || d[b - 3] == '\n');
}

static int field_listed(const struct hfield *f, const struct mime_section *sec)
{
	size_t i;

	for (i = 0; i < sec->nfields; i++)
		if (name_is(f, sec->fields[i]))
			return 1;
	return 0;
}

int mime_write_section(struct imap_string *out, const struct mime_message *msg,
		       const struct mime_section *sec, uint64_t offset, uint64_t max,
		       uint64_t *vsize)
{
	const struct mime_part *x = mime_find_part(msg, sec->path, sec->npath);
	struct imap_string tmp;
	const char *src = NULL;
	size_t len = 0;
	uint64_t total;

	if (x == NULL)
		return -1;
	imap_string_init(&tmp, 0);
	if (sec->kind == MIME_SECTION_HEADER || sec->kind == MIME_SECTION_TEXT ||
	    sec->kind == MIME_SECTION_HEADER_FIELDS || sec->kind == MIME_SECTION_HEADER_FIELDS_NOT) {
		if (sec->npath > 0) {
			if (!x->is_message || x->children == NULL)
				return -1;
			x = x->children;
		}
	}
	switch (sec->kind) {
	case MIME_SECTION_BODY:
		if (sec->npath == 0) {
			src = msg->data;
			len = msg->len;
		} else {
			src = msg->data + x->body_off;
			len = x->body_len;
		}
		break;
	case MIME_SECTION_TEXT:
		src = msg->data + x->body_off;
		len = x->body_len;
		break;
	case MIME_SECTION_HEADER:
	case MIME_SECTION_MIME:
		src = msg->data + x->hdr_off;
		len = x->hdr_len;
		break;
	case MIME_SECTION_HEADER_FIELDS:
	case MIME_SECTION_HEADER_FIELDS_NOT: {
		const char *p = msg->data + x->hdr_off, *end = p + x->hdr_len;
		struct hfield f;
		while (p < end) {
			p = field_next(p, end, &f);
			if (f.name == NULL)
				continue;
			if (field_listed(&f, sec) == (sec->kind == MIME_SECTION_HEADER_FIELDS)) {
				imap_string_add_crlf(&tmp, f.start, f.flen);
				if (f.flen == 0 || f.start[f.flen - 1] != '\n')
					imap_string_add(&tmp, "\r\n", 2);
			}
		}
		/* HEADER.FIELDS.NOT gets the blank line only when the header had
		 * one; HEADER.FIELDS always (both as dovecot 2.3 does) */
		if (sec->kind == MIME_SECTION_HEADER_FIELDS || header_has_blank_line(msg, x))
			imap_string_add(&tmp, "\r\n", 2);
		src = tmp.buf ? tmp.buf : "";
		len = tmp.len;
		break;
	}
	}
	{
		uint64_t bare = 0;
		size_t i;
		for (i = 0; i < len; i++)
			if (src[i] == '\n' && (i == 0 || src[i - 1] != '\r'))
				bare++;
		total = len + bare;
	}
	if (vsize != NULL)
		*vsize = total;
	/* cut [offset, offset+max) of the CRLF form */
	{
		uint64_t vpos = 0, stop = max == UINT64_MAX || offset + max < offset ? UINT64_MAX
										    : offset + max;
		size_t i;
		for (i = 0; i < len && vpos < stop; i++) {
			if (src[i] == '\n' && (i == 0 || src[i - 1] != '\r')) {
				if (vpos >= offset && vpos < stop)
					imap_string_addc(out, '\r');
				vpos++;
				if (vpos >= stop)
					break;
			}
			if (vpos >= offset)
				imap_string_addc(out, src[i]);
			vpos++;
		}
	}
	imap_string_free(&tmp);
	return out->failed ? -1 : 0;
}

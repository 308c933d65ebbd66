/* SEARCH keys: see imap-search.h. */
#include "imap-search.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap-date.h"

struct pctx {
	const struct imap_arg *a;
	size_t n, i, keys, max_keys;
	const char *err;
	int saved;
};

static void key_free(struct imap_search_key *k)
{
	while (k != NULL) {
		struct imap_search_key *next = k->next;
		key_free(k->child);
		free(k->str);
		free(k->str2);
		imap_seqset_free(&k->set);
		free(k);
		k = next;
	}
}

void imap_search_free(struct imap_search *s)
{
	if (s == NULL)
		return;
	key_free(s->root);
	free(s);
}

static struct imap_search_key *key_new(struct pctx *p, enum imap_search_op op)
{
	struct imap_search_key *k;

	if (++p->keys > p->max_keys) {
		p->err = "Too many search keys";
		return NULL;
	}
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		p->err = "Out of memory";
	else
		k->op = op;
	return k;
}

static const char *next_astring(struct pctx *p)
{
	const char *s;

	if (p->i >= p->n || (s = imap_arg_astring(&p->a[p->i])) == NULL) {
		p->err = "Missing search argument";
		return NULL;
	}
	p->i++;
	return s;
}

static struct imap_search_key *parse_key(struct pctx *p);

/* AND of args[from..to) taken from a list */
static struct imap_search_key *parse_list(struct pctx *p, const struct imap_arg *a, size_t n)
{
	struct pctx sub = *p;
	struct imap_search_key *and = key_new(p, IMAP_SK_AND), **tail;

	if (and == NULL)
		return NULL;
	if (n == 0) {
		p->err = "Empty search list";
		free(and);
		return NULL;
	}
	sub.a = a;
	sub.n = n;
	sub.i = 0;
	sub.keys = p->keys;
	tail = &and->child;
	while (sub.i < sub.n) {
		struct imap_search_key *k = parse_key(&sub);
		if (k == NULL) {
			p->err = sub.err;
			key_free(and);
			return NULL;
		}
		*tail = k;
		tail = &k->next;
	}
	p->keys = sub.keys;
	p->saved |= sub.saved;
	return and;
}

static int parse_num(struct pctx *p, uint64_t *v)
{
	const char *s = next_astring(p), *q;

	if (s == NULL)
		return -1;
	*v = 0;
	for (q = s; *q != '\0'; q++) {
		if (*q < '0' || *q > '9' || *v > (UINT64_MAX - 9) / 10) {
			p->err = "Invalid number";
			return -1;
		}
		*v = *v * 10 + (uint64_t)(*q - '0');
	}
	if (q == s) {
		p->err = "Invalid number";
		return -1;
	}
	return 0;
}

static struct imap_search_key *parse_key(struct pctx *p)
{
	static const struct { const char *name; enum imap_search_op op; unsigned flag; int arg; } kw[] = {
		/* arg: 0 none, 1 astring, 2 date, 3 number, 4 two astrings, 5 flag keyword */
		{ "ALL", IMAP_SK_ALL, 0, 0 },
		{ "ANSWERED", IMAP_SK_FLAG, IMAP_SEARCH_ANSWERED, 0 },
		{ "DELETED", IMAP_SK_FLAG, IMAP_SEARCH_DELETED, 0 },
		{ "DRAFT", IMAP_SK_FLAG, IMAP_SEARCH_DRAFT, 0 },
		{ "FLAGGED", IMAP_SK_FLAG, IMAP_SEARCH_FLAGGED, 0 },
		{ "RECENT", IMAP_SK_FLAG, IMAP_SEARCH_RECENT, 0 },
		{ "SEEN", IMAP_SK_FLAG, IMAP_SEARCH_SEEN, 0 },
		{ "UNANSWERED", IMAP_SK_UNFLAG, IMAP_SEARCH_ANSWERED, 0 },
		{ "UNDELETED", IMAP_SK_UNFLAG, IMAP_SEARCH_DELETED, 0 },
		{ "UNDRAFT", IMAP_SK_UNFLAG, IMAP_SEARCH_DRAFT, 0 },
		{ "UNFLAGGED", IMAP_SK_UNFLAG, IMAP_SEARCH_FLAGGED, 0 },
		{ "UNSEEN", IMAP_SK_UNFLAG, IMAP_SEARCH_SEEN, 0 },
		{ "NEW", IMAP_SK_NEW, 0, 0 },
		{ "OLD", IMAP_SK_OLD, 0, 0 },
		{ "KEYWORD", IMAP_SK_KEYWORD, 0, 1 },
		{ "UNKEYWORD", IMAP_SK_UNKEYWORD, 0, 1 },
		{ "BEFORE", IMAP_SK_BEFORE, 0, 2 }, { "ON", IMAP_SK_ON, 0, 2 },
		{ "SINCE", IMAP_SK_SINCE, 0, 2 }, { "SENTBEFORE", IMAP_SK_SENTBEFORE, 0, 2 },
		{ "SENTON", IMAP_SK_SENTON, 0, 2 }, { "SENTSINCE", IMAP_SK_SENTSINCE, 0, 2 },
		{ "LARGER", IMAP_SK_LARGER, 0, 3 }, { "SMALLER", IMAP_SK_SMALLER, 0, 3 },
		{ "YOUNGER", IMAP_SK_YOUNGER, 0, 3 }, { "OLDER", IMAP_SK_OLDER, 0, 3 },
		{ "BODY", IMAP_SK_BODY, 0, 1 }, { "TEXT", IMAP_SK_TEXT, 0, 1 },
		{ "HEADER", IMAP_SK_HEADER, 0, 4 },
		{ NULL, IMAP_SK_ALL, 0, 0 },
	};
	static const char *const addr_hdr[] = { "BCC", "CC", "FROM", "SUBJECT", "TO", NULL };
	const struct imap_arg *a;
	struct imap_search_key *k;
	int i;

	if (p->i >= p->n) {
		p->err = "Missing search key";
		return NULL;
	}
	a = &p->a[p->i++];
	if (a->type == IMAP_ARG_LIST)
		return parse_list(p, a->list, a->count);
	if (a->type != IMAP_ARG_ATOM || a->has_section) {
		p->err = "Invalid search key";
		return NULL;
	}
	if (strcasecmp(a->str, "NOT") == 0 || strcasecmp(a->str, "OR") == 0) {
		int or = strcasecmp(a->str, "OR") == 0;
		struct imap_search_key *c1, *c2 = NULL;
		k = key_new(p, or ? IMAP_SK_OR : IMAP_SK_NOT);
		if (k == NULL)
			return NULL;
		c1 = parse_key(p);
		if (c1 != NULL && or)
			c2 = parse_key(p);
		if (c1 == NULL || (or && c2 == NULL)) {
			key_free(c1);
			free(k);
			return NULL;
		}
		c1->next = c2;
		k->child = c1;
		return k;
	}
	if (strcasecmp(a->str, "UID") == 0 || (a->str[0] >= '0' && a->str[0] <= '9') ||
	    a->str[0] == '*' || a->str[0] == '$') {
		int uid = strcasecmp(a->str, "UID") == 0;
		const char *set = uid ? next_astring(p) : a->str;
		if (set == NULL)
			return NULL;
		k = key_new(p, uid ? IMAP_SK_UIDSET : IMAP_SK_SEQSET);
		if (k == NULL)
			return NULL;
		if (imap_seqset_parse(set, 10000, 1, &k->set) < 0) {
			p->err = "Invalid sequence set";
			free(k);
			return NULL;
		}
		p->saved |= k->set.saved;
		return k;
	}
	if (strcasecmp(a->str, "MODSEQ") == 0) {
		/* MODSEQ [entry-name entry-type] modseq */
		k = key_new(p, IMAP_SK_MODSEQ);
		if (k == NULL)
			return NULL;
		if (p->i + 2 < p->n && p->a[p->i].type == IMAP_ARG_STRING)
			p->i += 2;
		if (parse_num(p, &k->num) < 0) {
			free(k);
			return NULL;
		}
		return k;
	}
	for (i = 0; addr_hdr[i] != NULL; i++) {
		if (strcasecmp(a->str, addr_hdr[i]) == 0) {
			const char *v = next_astring(p);
			if (v == NULL || (k = key_new(p, IMAP_SK_HEADER)) == NULL)
				return NULL;
			k->str = strdup(addr_hdr[i]);
			k->str2 = strdup(v);
			return k;
		}
	}
	for (i = 0; kw[i].name != NULL; i++)
		if (strcasecmp(a->str, kw[i].name) == 0)
			break;
	if (kw[i].name == NULL) {
		p->err = "Unknown search key";
		return NULL;
	}
	k = key_new(p, kw[i].op);
	if (k == NULL)
		return NULL;
	k->flag = kw[i].flag;
	switch (kw[i].arg) {
	case 1: {
		const char *v = next_astring(p);
		if (v == NULL || (k->str = strdup(v)) == NULL)
			goto fail;
		break;
	}
	case 2: {
		const char *v = next_astring(p);
		if (v == NULL)
			goto fail;
		if (imap_date_parse_date(v, &k->date) < 0) {
			p->err = "Invalid date";
			goto fail;
		}
		break;
	}
	case 3:
		if (parse_num(p, &k->num) < 0)
			goto fail;
		break;
	case 4: {
		const char *n = next_astring(p), *v = n ? next_astring(p) : NULL;
		if (v == NULL || (k->str = strdup(n)) == NULL || (k->str2 = strdup(v)) == NULL)
			goto fail;
		break;
	}
	}
	return k;
fail:
	if (p->err == NULL)
		p->err = "Out of memory";
	key_free(k);
	return NULL;
}

struct imap_search *imap_search_parse(const struct imap_arg *args, size_t count,
				      size_t max_keys, const char **err, int *badcharset)
{
	struct pctx p = { args, count, 0, 0, max_keys, NULL, 0 };
	struct imap_search *s;

	*badcharset = 0;
	if (count >= 2 && imap_arg_atom_equals(&args[0], "CHARSET")) {
		const char *cs = imap_arg_astring(&args[1]);
		if (cs == NULL || (strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "US-ASCII") != 0)) {
			*err = "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset";
			*badcharset = 1;
			return NULL;
		}
		args += 2;
		count -= 2;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		*err = "Out of memory";
		return NULL;
	}
	s->root = parse_list(&p, args, count);
	if (s->root == NULL) {
		*err = p.err ? p.err : "Invalid search";
		free(s);
		return NULL;
	}
	s->uses_saved = p.saved;
	return s;
}

int imap_search_substr(const char *hay, size_t hlen, const char *needle)
{
	size_t nlen = strlen(needle), i;

	if (nlen == 0)
		return 1;
	for (i = 0; i + nlen <= hlen; i++)
		if (strncasecmp(hay + i, needle, nlen) == 0)
			return 1;
	return 0;
}

static time_t day_of(time_t t, int tz)
{
	time_t l = t + (time_t)tz * 60;
	return l - (l % 86400 + 86400) % 86400;
}

static int sent_day(const struct imap_search_msg *m, time_t *day)
{
	size_t len;
	const char *v = m->header ? m->header(m->ctx, "Date", 0, &len) : NULL;
	time_t t;
	int tz;

	if (v == NULL || imap_date_parse_rfc822(v, len, &t, &tz) < 0)
		return -1;
	*day = day_of(t, tz);
	return 0;
}

static int in_set(const struct imap_search_msg *m, const struct imap_seqset *set, int uid)
{
	if (set->saved)
		return m->in_saved != NULL && m->in_saved(m->ctx, m->uid);
	return uid ? imap_seqset_contains(set, m->uid, m->max_uid)
		   : imap_seqset_contains(set, m->seq, m->max_seq);
}

static int match(const struct imap_search_key *k, const struct imap_search_msg *m)
{
	const struct imap_search_key *c;
	time_t d;

	switch (k->op) {
	case IMAP_SK_ALL: return 1;
	case IMAP_SK_AND:
		for (c = k->child; c != NULL; c = c->next)
			if (!match(c, m))
				return 0;
		return 1;
	case IMAP_SK_OR: return match(k->child, m) || match(k->child->next, m);
	case IMAP_SK_NOT: return !match(k->child, m);
	case IMAP_SK_SEQSET: return in_set(m, &k->set, 0);
	case IMAP_SK_UIDSET: return in_set(m, &k->set, 1);
	case IMAP_SK_FLAG: return (m->flags & k->flag) != 0;
	case IMAP_SK_UNFLAG: return (m->flags & k->flag) == 0;
	case IMAP_SK_NEW:
		return (m->flags & (IMAP_SEARCH_RECENT | IMAP_SEARCH_SEEN)) == IMAP_SEARCH_RECENT;
	case IMAP_SK_OLD: return (m->flags & IMAP_SEARCH_RECENT) == 0;
	case IMAP_SK_KEYWORD: return m->has_keyword != NULL && m->has_keyword(m->ctx, k->str);
	case IMAP_SK_UNKEYWORD: return m->has_keyword == NULL || !m->has_keyword(m->ctx, k->str);
	case IMAP_SK_BEFORE: return day_of(m->internaldate, m->internaldate_tz) < k->date;
	case IMAP_SK_ON: return day_of(m->internaldate, m->internaldate_tz) == k->date;
	case IMAP_SK_SINCE: return day_of(m->internaldate, m->internaldate_tz) >= k->date;
	case IMAP_SK_SENTBEFORE: return sent_day(m, &d) == 0 && d < k->date;
	case IMAP_SK_SENTON: return sent_day(m, &d) == 0 && d == k->date;
	case IMAP_SK_SENTSINCE: return sent_day(m, &d) == 0 && d >= k->date;
	case IMAP_SK_LARGER: return m->size > k->num;
	case IMAP_SK_SMALLER: return m->size < k->num;
	case IMAP_SK_MODSEQ: return m->modseq >= k->num;
	case IMAP_SK_YOUNGER: return m->now - m->internaldate <= (time_t)k->num;
	case IMAP_SK_OLDER: return m->now - m->internaldate > (time_t)k->num;
	case IMAP_SK_BODY: return m->contains != NULL && m->contains(m->ctx, k->str, 0);
	case IMAP_SK_TEXT: return m->contains != NULL && m->contains(m->ctx, k->str, 1);
	case IMAP_SK_HEADER: {
		unsigned n;
		size_t len;
		const char *v;
		if (m->header == NULL)
			return 0;
		for (n = 0; (v = m->header(m->ctx, k->str, n, &len)) != NULL; n++)
			if (imap_search_substr(v, len, k->str2))
				return 1;
		return 0;
	}
	}
	return 0;
}

int imap_search_match(const struct imap_search *s, const struct imap_search_msg *m)
{
	return match(s->root, m);
}

/* FETCH attributes: see imap-fetch.h. */
#include "imap-fetch.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap-string.h"

static const struct { const char *name; unsigned items; } simple[] = {
	{ "FLAGS", IMAP_FETCH_FLAGS },
	{ "INTERNALDATE", IMAP_FETCH_INTERNALDATE },
	{ "RFC822.SIZE", IMAP_FETCH_RFC822_SIZE },
	{ "ENVELOPE", IMAP_FETCH_ENVELOPE },
	{ "BODY", IMAP_FETCH_BODY },
	{ "BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE },
	{ "UID", IMAP_FETCH_UID },
	{ "MODSEQ", IMAP_FETCH_MODSEQ },
	{ "RFC822", IMAP_FETCH_RFC822 },
	{ "RFC822.HEADER", IMAP_FETCH_RFC822_HEADER },
	{ "RFC822.TEXT", IMAP_FETCH_RFC822_TEXT },
	{ NULL, 0 },
};

static void section_free(struct imap_fetch_section *s)
{
	size_t i;

	free((void *)s->section.path);
	for (i = 0; i < s->section.nfields; i++)
		free((void *)s->section.fields[i]);
	free((void *)s->section.fields);
	free(s->name);
}

void imap_fetch_free(struct imap_fetch *f)
{
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < f->nsections; i++)
		section_free(&f->sections[i]);
	free(f->sections);
	free(f);
}

static int parse_u64(const char *s, const char **end, uint64_t *v)
{
	*v = 0;
	if (*s < '0' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9') {
		if (*v > (UINT64_MAX - 9) / 10)
			return -1;
		*v = *v * 10 + (uint64_t)(*s++ - '0');
	}
	*end = s;
	return 0;
}

/* Fills s from a BODY[..]/BINARY[..] atom; returns NULL or an error. */
static const char *parse_section(const struct imap_arg *a, struct imap_fetch_section *s)
{
	const char *kw = a->str, *spec = "", *p;
	struct imap_string name;
	uint32_t *path = NULL;
	size_t npath = 0;

	if (strncasecmp(kw, "BINARY.SIZE", 11) == 0 && kw[11] == '\0')
		s->type = IMAP_FETCH_SECTION_BINARY_SIZE;
	else if (strncasecmp(kw, "BINARY", 6) == 0)
		s->type = IMAP_FETCH_SECTION_BINARY;
	else
		s->type = IMAP_FETCH_SECTION_BODY;
	s->peek = strcasestr(kw, ".PEEK") != NULL;
	if (a->count > 0) {
		if (a->list[0].type != IMAP_ARG_ATOM || a->list[0].has_section)
			return "Invalid section";
		spec = a->list[0].str;
	}
	if (a->count > 2 || (a->count == 2 && a->list[1].type != IMAP_ARG_LIST))
		return "Invalid section";
	p = spec;
	s->section.kind = MIME_SECTION_BODY;
	while (*p >= '0' && *p <= '9') {
		uint64_t n;
		uint32_t *np;
		if (parse_u64(p, &p, &n) < 0 || n == 0 || n > UINT32_MAX || npath >= 100)
			goto bad;
		np = realloc(path, (npath + 1) * sizeof(*np));
		if (np == NULL)
			goto bad;
		path = np;
		path[npath++] = (uint32_t)n;
		if (*p == '\0')
			break;
		if (*p++ != '.' || *p == '\0')
			goto bad;
	}
	s->section.path = path;
	s->section.npath = npath;
	if (*p != '\0') {
		if (s->type != IMAP_FETCH_SECTION_BODY)
			return "Invalid BINARY section";
		if (strcasecmp(p, "HEADER") == 0)
			s->section.kind = MIME_SECTION_HEADER;
		else if (strcasecmp(p, "TEXT") == 0)
			s->section.kind = MIME_SECTION_TEXT;
		else if (strcasecmp(p, "MIME") == 0 && npath > 0)
			s->section.kind = MIME_SECTION_MIME;
		else if (strcasecmp(p, "HEADER.FIELDS") == 0)
			s->section.kind = MIME_SECTION_HEADER_FIELDS;
		else if (strcasecmp(p, "HEADER.FIELDS.NOT") == 0)
			s->section.kind = MIME_SECTION_HEADER_FIELDS_NOT;
		else
			return "Invalid section";
	}
	if ((s->section.kind == MIME_SECTION_HEADER_FIELDS ||
	     s->section.kind == MIME_SECTION_HEADER_FIELDS_NOT) != (a->count == 2))
		return "Invalid section";
	imap_string_init(&name, 0);
	imap_string_adds(&name, s->type == IMAP_FETCH_SECTION_BODY ? "BODY[" :
			 s->type == IMAP_FETCH_SECTION_BINARY ? "BINARY[" : "BINARY.SIZE[");
	imap_string_adds(&name, spec);
	if (a->count == 2) {
		const struct imap_arg *fl = &a->list[1];
		size_t i;
		if (fl->count == 0) {
			imap_string_free(&name);
			return "Empty header field list";
		}
		s->section.fields = calloc(fl->count, sizeof(char *));
		if (s->section.fields == NULL) {
			imap_string_free(&name);
			return "Out of memory";
		}
		imap_string_adds(&name, " (");
		for (i = 0; i < fl->count; i++) {
			const char *f = imap_arg_astring(&fl->list[i]);
			char **fields = (char **)s->section.fields;
			if (f == NULL || *f == '\0' || (fields[i] = strdup(f)) == NULL) {
				imap_string_free(&name);
				return "Invalid header field name";
			}
			s->section.nfields++;
			/* dovecot echoes field names upper-cased; matching ignores case */
			for (char *c = fields[i]; *c; c++)
				*c = (char)toupper((unsigned char)*c);
			if (i > 0)
				imap_string_addc(&name, ' ');
			imap_string_add_astring(&name, fields[i], strlen(fields[i]));
		}
		imap_string_addc(&name, ')');
	}
	imap_string_addc(&name, ']');
	if (a->partial != NULL) {
		const char *q = a->partial;
		if (s->type == IMAP_FETCH_SECTION_BINARY_SIZE ||
		    parse_u64(q, &q, &s->partial_offset) < 0 || *q++ != '.' ||
		    parse_u64(q, &q, &s->partial_max) < 0 || *q != '\0' || s->partial_max == 0) {
			imap_string_free(&name);
			return "Invalid partial";
		}
		s->has_partial = 1;
		imap_string_addf(&name, "<%llu>", (unsigned long long)s->partial_offset);
	}
	if (name.failed) {
		imap_string_free(&name);
		return "Out of memory";
	}
	s->name = name.buf;
	return NULL;
bad:
	free(path);
	return "Invalid section";
}

static const char *add_item(struct imap_fetch *f, const struct imap_arg *a)
{
	int i;

	if (a->type != IMAP_ARG_ATOM)
		return "Invalid fetch attribute";
	if (a->has_section) {
		struct imap_fetch_section *ns = realloc(f->sections,
							(f->nsections + 1) * sizeof(*ns));
		const char *err;
		if (ns == NULL)
			return "Out of memory";
		f->sections = ns;
		memset(&ns[f->nsections], 0, sizeof(*ns));
		err = parse_section(a, &ns[f->nsections]);
		f->nsections++;
		if (err == NULL && !ns[f->nsections - 1].peek &&
		    ns[f->nsections - 1].type != IMAP_FETCH_SECTION_BINARY_SIZE)
			f->sets_seen = 1;
		return err;
	}
	for (i = 0; simple[i].name != NULL; i++) {
		if (strcasecmp(a->str, simple[i].name) == 0) {
			f->items |= simple[i].items;
			if (simple[i].items & (IMAP_FETCH_RFC822 | IMAP_FETCH_RFC822_TEXT))
				f->sets_seen = 1;
			return NULL;
		}
	}
	return "Invalid fetch attribute";
}

struct imap_fetch *imap_fetch_parse(const struct imap_arg *arg, const char **err)
{
	struct imap_fetch *f = calloc(1, sizeof(*f));
	const char *e = NULL;
	size_t i;

	if (f == NULL) {
		*err = "Out of memory";
		return NULL;
	}
	if (arg->type == IMAP_ARG_LIST) {
		if (arg->count == 0)
			e = "Empty fetch attribute list";
		for (i = 0; e == NULL && i < arg->count; i++)
			e = add_item(f, &arg->list[i]);
	} else if (imap_arg_atom_equals(arg, "ALL")) {
		f->items = IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE |
			   IMAP_FETCH_ENVELOPE;
	} else if (imap_arg_atom_equals(arg, "FAST")) {
		f->items = IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE;
	} else if (imap_arg_atom_equals(arg, "FULL")) {
		f->items = IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE |
			   IMAP_FETCH_ENVELOPE | IMAP_FETCH_BODY;
	} else {
		e = add_item(f, arg);
	}
	if (e != NULL) {
		imap_fetch_free(f);
		*err = e;
		return NULL;
	}
	return f;
}

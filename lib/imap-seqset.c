/* IMAP sequence sets: see imap-seqset.h. */
#include "imap-seqset.h"

#include <stdlib.h>
#include <string.h>

static int parse_num(const char **sp, uint32_t *out)
{
	const char *s = *sp;
	uint64_t v = 0;

	if (*s == '*') {
		*out = IMAP_SEQ_STAR;
		*sp = s + 1;
		return 0;
	}
	if (*s < '1' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (uint64_t)(*s - '0');
		if (v >= IMAP_SEQ_STAR)
			return -1;
		s++;
	}
	*out = (uint32_t)v;
	*sp = s;
	return 0;
}

int imap_seqset_parse(const char *s, size_t max_ranges, int allow_saved,
		      struct imap_seqset *out)
{
	size_t cap = 0;

	memset(out, 0, sizeof(*out));
	if (s[0] == '$' && s[1] == '\0') {
		if (!allow_saved)
			return -1;
		out->saved = 1;
		return 0;
	}
	for (;;) {
		struct imap_seq_range r;

		if (parse_num(&s, &r.lo) < 0)
			goto err;
		r.hi = r.lo;
		if (*s == ':') {
			s++;
			if (parse_num(&s, &r.hi) < 0)
				goto err;
		}
		if (out->count == max_ranges)
			goto err;
		if (out->count == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			struct imap_seq_range *nr;
			if (ncap > max_ranges)
				ncap = max_ranges;
			nr = realloc(out->ranges, ncap * sizeof(*nr));
			if (nr == NULL)
				goto err;
			out->ranges = nr;
			cap = ncap;
		}
		out->ranges[out->count++] = r;
		if (*s == '\0')
			return 0;
		if (*s++ != ',')
			goto err;
	}
err:
	imap_seqset_free(out);
	return -1;
}

void imap_seqset_free(struct imap_seqset *set)
{
	if (set == NULL)
		return;
	free(set->ranges);
	memset(set, 0, sizeof(*set));
}

void imap_seq_range_resolve(const struct imap_seq_range *r, uint32_t star,
			    uint32_t *lo, uint32_t *hi)
{
	uint32_t a = r->lo == IMAP_SEQ_STAR ? star : r->lo;
	uint32_t b = r->hi == IMAP_SEQ_STAR ? star : r->hi;

	*lo = a < b ? a : b;
	*hi = a < b ? b : a;
}

int imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t star)
{
	size_t i;

	for (i = 0; i < set->count; i++) {
		uint32_t lo, hi;
		imap_seq_range_resolve(&set->ranges[i], star, &lo, &hi);
		if (n >= lo && n <= hi && n != 0)
			return 1;
	}
	return 0;
}

/*
 * IMAP sequence sets (RFC 3501 sequence-set, RFC 5182 "$").
 *
 * imap_seqset_parse() turns "1:*,3,5:7" into ranges; "*" is kept as
 * IMAP_SEQ_STAR and resolved by the caller's `star` value at lookup time,
 * so one parse serves both message numbers and UIDs.  At most max_ranges
 * ranges are accepted (memory: 8 bytes per range).  "$" (SEARCHRES) is
 * accepted only alone and only when allow_saved is set; it sets `saved`
 * and gives no ranges.  Returns 0, or -1 for a syntax error, a 0 or
 * > 4294967295 number, or too many ranges (out is then empty).  The caller
 * frees out->ranges with imap_seqset_free().
 */
#ifndef MK_IMAP_SEQSET_H
#define MK_IMAP_SEQSET_H
#include <stddef.h>
#include <stdint.h>

#define IMAP_SEQ_STAR UINT32_MAX

struct imap_seq_range {
	uint32_t lo, hi;        /* as written: lo may be > hi, either may be STAR */
};

struct imap_seqset {
	struct imap_seq_range *ranges;
	size_t count;
	int saved;              /* "$" */
};

int imap_seqset_parse(const char *s, size_t max_ranges, int allow_saved,
		      struct imap_seqset *out);
void imap_seqset_free(struct imap_seqset *set);
/* 1 when n is in the set, "*" meaning `star` (the highest number in use;
 * with an empty mailbox pass 0 so "*" matches nothing... except that
 * RFC 3501 makes "N:*" include N..star in either order, done here). */
int imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t star);
/* The range with "*" resolved and lo <= hi. */
void imap_seq_range_resolve(const struct imap_seq_range *r, uint32_t star,
			    uint32_t *lo, uint32_t *hi);
#endif

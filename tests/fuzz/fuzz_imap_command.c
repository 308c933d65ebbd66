/*
 * libFuzzer target: the IMAP command parser, fed in random-sized chunks,
 * with FETCH attributes, sequence sets and dates parsed from what it
 * returns.  The first input byte picks the chunking and whether literals
 * are streamed.  Needs: lib/imap-parser.c lib/imap-fetch.c lib/imap-seqset.c
 * lib/imap-date.c lib/imap-string.c lib/mime.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap-date.h"
#include "imap-fetch.h"
#include "imap-parser.h"
#include "imap-seqset.h"

static void use_command(const struct imap_command *c)
{
	size_t i;

	for (i = 0; i < c->count; i++) {
		const struct imap_arg *a = &c->args[i];
		const char *s = imap_arg_astring(a);
		if (s != NULL) {
			struct imap_seqset set;
			time_t t;
			int tz;
			if (imap_seqset_parse(s, 1000, 1, &set) == 0) {
				imap_seqset_contains(&set, 5, 100);
				imap_seqset_free(&set);
			}
			imap_date_parse_datetime(s, &t, &tz);
			imap_date_parse_date(s, &t);
			imap_date_parse_rfc822(s, a->len, &t, &tz);
		}
		{
			const char *err;
			struct imap_fetch *f = imap_fetch_parse(a, &err);
			imap_fetch_free(f);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct imap_parser_limits lim = { 2048, 8, 128, 1 << 20, 512 };
	struct imap_parser *p;
	unsigned mode;
	size_t pos = 1;

	if (size < 1)
		return 0;
	mode = data[0];
	p = imap_parser_new(&lim);
	if (p == NULL)
		return 0;
	while (pos < size) {
		size_t chunk = (mode & 7) == 0 ? size - pos : (mode & 7);
		size_t used;
		enum imap_parse_result r;
		if (chunk > size - pos)
			chunk = size - pos;
		r = imap_parser_feed(p, (const char *)data + pos, chunk, &used);
		pos += used;
		if (r == IMAP_PARSE_COMMAND) {
			use_command(imap_parser_command(p));
		} else if (r == IMAP_PARSE_LITERAL) {
			struct imap_literal_info li = imap_parser_literal(p);
			imap_parser_command_name(p, NULL);
			if ((mode & 8) || !li.fits_inline) {
				imap_parser_literal_stream(p);
				pos += li.size < size - pos ? (size_t)li.size : size - pos;
			}
		} else if (r == IMAP_PARSE_ERROR) {
			int fatal;
			imap_parser_error(p, &fatal);
			imap_parser_tag(p);
			if (fatal)
				break;
		} else if (used == 0 && chunk > 0) {
			break;  /* cannot happen: MORE consumes everything */
		}
	}
	imap_parser_free(p);
	return 0;
}

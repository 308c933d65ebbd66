/*
 * libFuzzer target: the dovecot-uidlist parser (lib/uidlist.c) over
 * arbitrary bytes, with small limits from the first byte, then what a
 * sync does with a parsed list: find, add, remove, format, and a re-parse
 * of the formatted text, which must give the same records.
 */
#include "uidlist.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct uidlist_limits lim = { 0 };
	struct uidlist *ul = NULL, *again = NULL;
	char err[256], *out = NULL;
	size_t len, i;

	if (size == 0)
		return 0;
	if (data[0] & 1) {
		lim.max_line = (size_t)(data[0] >> 1) + 1;
		lim.max_records = (size_t)(data[0] & 0x0f) + 1;
	}
	if (uidlist_parse((const char *)data + 1, size - 1, &lim, &ul, err, sizeof(err)) != 0) {
		if (ul != NULL)
			abort();	/* nothing handed out on failure */
		return 0;
	}
	if (ul->uidvalidity == 0 || ul->next_uid == 0)
		abort();
	for (i = 1; i < ul->nrecs; i++)
		if (ul->recs[i].uid <= ul->recs[i - 1].uid)
			abort();
	if (ul->nrecs > 0 && uidlist_find_uid(ul, ul->recs[ul->nrecs / 2].uid) != (long)(ul->nrecs / 2))
		abort();
	if (ul->next_uid < UINT32_MAX - 1)
		(void)uidlist_add(ul, "1700000000.M1P2Q3.host,S=10:2,S", "W12");
	if (uidlist_format(ul, 1, 0, &out, &len) == 0) {
		if (uidlist_parse(out, len, NULL, &again, err, sizeof(err)) == 0) {
			if (again->nrecs != ul->nrecs || again->next_uid != ul->next_uid)
				abort();
			for (i = 0; i < ul->nrecs; i++)
				if (again->recs[i].uid != ul->recs[i].uid ||
				    strcmp(again->recs[i].fname, ul->recs[i].fname) != 0)
					abort();
		}
		free(out);
	}
	if (ul->nrecs > 0)
		uidlist_remove(ul, 0);
	uidlist_free(again);
	uidlist_free(ul);
	return 0;
}

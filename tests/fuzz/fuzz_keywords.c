/*
 * libFuzzer target: the dovecot-keywords parser (lib/maildir-keywords.c):
 * what parses has names only at valid indexes, and lookups find them.
 */
#include "maildir.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct maildir_keywords kw;
	char err[256];
	int i;

	memset(&kw, 0, sizeof(kw));
	if (maildir_keywords_parse((const char *)data, size, &kw, err, sizeof(err)) == 0) {
		for (i = 0; i < MAILDIR_KEYWORDS_MAX; i++) {
			if (kw.names[i] == NULL)
				continue;
			if (strlen(kw.names[i]) > MAILDIR_KEYWORD_MAX_LEN)
				abort();
			if (maildir_keywords_lookup(&kw, kw.names[i]) < 0)
				abort();
		}
		(void)maildir_keywords_lookup(&kw, "$Junk");
	}
	maildir_keywords_clear(&kw);
	return 0;
}

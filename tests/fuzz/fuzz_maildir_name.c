/*
 * libFuzzer target: Maildir file names (lib/maildir-name.c).  Whatever
 * parses must keep its base through maildir_name_with_flags(), and the
 * rewritten name must parse to exactly the flags and keywords asked for.
 */
#include "maildir-name.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[MAILDIR_NAME_MAX + 2], out[MAILDIR_NAME_MAX + 1], words[128];
	struct maildir_name mn, mn2;
	unsigned flags;
	uint32_t kw;

	if (size < 5)
		return 0;
	flags = data[0] & 0x3f;
	kw = ((uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 |
	      (uint32_t)data[4] << 24) & 0x3ffffff;
	data += 5;
	size -= 5;
	/* the parser is bounded by len: give it the bytes without a NUL */
	{
		char *raw = malloc(size ? size : 1);

		memcpy(raw, data, size);
		if (maildir_name_parse(raw, size, &mn) == 0 &&
		    (mn.base_len == 0 || mn.base_len > size || mn.extra_off > size))
			abort();
		free(raw);
	}
	if (size > MAILDIR_NAME_MAX)
		return 0;
	memcpy(name, data, size);
	name[size] = '\0';
	maildir_name_flags_str(flags, words, sizeof(words));
	if (maildir_name_parse(name, strlen(name), &mn) != 0)
		return 0;
	if (maildir_name_with_flags(name, flags, kw, out, sizeof(out)) != 0)
		return 0;
	if (maildir_name_parse(out, strlen(out), &mn2) != 0)
		abort();
	if (mn2.base_len != mn.base_len || memcmp(out, name, mn.base_len) != 0)
		abort();
	/* extra info after ',' may carry letters of its own only if it had some */
	if (mn.extra_off == 0 && (mn2.flags != flags || mn2.keywords != kw))
		abort();
	return 0;
}

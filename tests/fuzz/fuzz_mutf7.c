/*
 * libFuzzer target: modified UTF-7 and mailbox names (lib/mailbox-name.c).
 * Both directions round-trip: valid mUTF-7 decodes to UTF-8 that encodes
 * back to the same bytes, and valid UTF-8 encodes to mUTF-7 that decodes
 * back.  Small output buffers (from the first byte) exercise the -2 path.
 */
#include "mailbox-name.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[MAILBOX_NAME_MAX * 2 + 1], a[MAILBOX_NAME_MAX * 4 + 1], b[MAILBOX_NAME_MAX * 4 + 1];
	char err[256];
	size_t small;

	if (size < 1 || size > MAILBOX_NAME_MAX * 2)
		return 0;
	small = data[0] % 16;
	memcpy(in, data + 1, size - 1);
	in[size - 1] = '\0';
	if (memchr(data + 1, '\0', size - 1) != NULL)
		return 0;

	if (mutf7_to_utf8(in, a, sizeof(a)) == 0) {
		if (utf8_to_mutf7(a, b, sizeof(b)) != 0 || strcmp(b, in) != 0)
			abort();
	}
	if (utf8_to_mutf7(in, a, sizeof(a)) == 0) {
		if (mutf7_to_utf8(a, b, sizeof(b)) != 0 || strcmp(b, in) != 0)
			abort();
	}
	(void)mutf7_to_utf8(in, a, small);
	(void)utf8_to_mutf7(in, a, small);
	if (mailbox_name_check(in, err, sizeof(err)) == 0)
		mailbox_name_normalize(in);
	(void)mailbox_name_is_inbox(in);
	if (mailbox_name_from_utf8(in, a, sizeof(a), err, sizeof(err)) == 0 &&
	    mailbox_name_check(a, err, sizeof(err)) != 0)
		abort();	/* what from_utf8 gives must pass the check */
	return 0;
}

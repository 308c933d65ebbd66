/*
 * libFuzzer target: lib/mime over arbitrary messages: structure, ENVELOPE,
 * BODYSTRUCTURE, BODY and a few sections (numbers picked from the input).
 * Needs: lib/mime.c lib/imap-string.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct mime_limits lim = { 20, 500, 64 * 1024 };
	static const char *const fields[] = { "From", "Subject", "Content-Type" };
	struct mime_message *msg;
	struct imap_string out;
	char *copy;
	unsigned k;

	/* an exact-size heap copy so ASan sees reads past the end */
	copy = malloc(size ? size : 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	msg = mime_parse(copy, size, &lim);
	if (msg == NULL) {
		free(copy);
		return 0;
	}
	imap_string_init(&out, 0);
	mime_message_vsize(msg);
	mime_write_envelope(&out, msg, msg->root);
	mime_write_bodystructure(&out, msg, msg->root, 1);
	mime_write_bodystructure(&out, msg, msg->root, 0);
	for (k = 0; k < 7; k++) {
		uint32_t path[3] = { 1 + (size > k ? data[k] % 3 : 0), 1 + k % 2, 1 };
		struct mime_section sec = { path, k % 4, (enum mime_section_kind)(k % 6),
					    fields, 3 };
		if (k == 0)
			sec.npath = 0;
		imap_string_clear(&out);
		mime_write_section(&out, msg, &sec, k * 3, k & 1 ? 10 : UINT64_MAX, NULL);
		mime_header_get(msg, msg->root, "Subject", NULL);
	}
	imap_string_free(&out);
	mime_message_free(msg);
	free(copy);
	return 0;
}

/*
 * libFuzzer target: the persistent folder index parser
 * (lib/maildir-index.c).  Arbitrary bytes either are refused or give
 * records that stay inside the buffer; what parses is formatted again and
 * must parse to the same messages.  Because of the checksum, random
 * bytes rarely parse: half the inputs are sealed (checksum set) first.
 */
#include "maildir-index.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct maildir_index_view v, v2;
	struct maildir_msg *msgs;
	unsigned char *buf;
	void *out;
	size_t outlen, i;
	char path[MAILDIR_INDEX_MAX_PATH + 1];

	if (size < 1)
		return 0;
	buf = malloc(size);
	memcpy(buf, data + 1, size - 1);
	size--;
	if (data[0] & 1)
		(void)maildir_index_seal(buf, size);
	(void)maildir_index_parse(buf, size, 1, &v);
	if (maildir_index_parse(buf, size, 0, &v) != 0) {
		free(buf);
		return 0;
	}
	msgs = calloc(v.hdr.nmsgs ? v.hdr.nmsgs : 1, sizeof(*msgs));
	for (i = 0; i < v.hdr.nmsgs; i++) {
		struct maildir_index_rec r;

		maildir_index_get(&v, i, &r);
		if (r.name_off + r.name_len >= v.hdr.names_len)
			abort();
		msgs[i].uid = r.uid;
		msgs[i].keywords = r.keywords;
		msgs[i].fname = (char *)v.names + r.name_off;
		msgs[i].size = r.size;
		msgs[i].flags = r.flags;
		msgs[i].in_new = r.in_new;
	}
	memcpy(path, v.path, v.hdr.path_len);
	path[v.hdr.path_len] = '\0';
	if (strlen(path) == v.hdr.path_len &&
	    maildir_index_format(&v.hdr, path, msgs, v.hdr.nmsgs, &out, &outlen) == 0) {
		if (maildir_index_parse(out, outlen, 0, &v2) != 0 || v2.hdr.nmsgs != v.hdr.nmsgs)
			abort();
		for (i = 0; i < v.hdr.nmsgs; i++) {
			struct maildir_index_rec r;

			maildir_index_get(&v2, i, &r);
			if (r.uid != msgs[i].uid || r.flags != msgs[i].flags ||
			    strcmp(v2.names + r.name_off, msgs[i].fname) != 0)
				abort();
		}
		free(out);
	}
	free(msgs);
	free(buf);
	return 0;
}

/*
 * libFuzzer target: the IMAP response parser over arbitrary bytes, fed in
 * chunks whose sizes come from the first byte, with a tiny max_inline so
 * the literal sink path runs too.
 */
#include "imap-client.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sink_begin(void *ctx, unsigned long long n)
{
	(void)ctx;
	return n > (1u << 20) ? -1 : 0;
}

static int sink_data(void *ctx, const void *buf, size_t len)
{
	(void)ctx;
	(void)buf;
	(void)len;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_resp_limits lim = { .max_line = 4096, .max_resp = 65536, .max_inline = 64,
		.max_depth = 8, .max_tokens = 4096 };
	struct imap_resp_sink sink = { sink_begin, sink_data, NULL };
	struct imap_resp_parser *p;
	size_t step, off = 1;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 64 + 1;
	p = imap_resp_parser_new(&lim);
	if (p == NULL)
		return 0;
	imap_resp_parser_set_sink(p, &sink);
	while (off < size) {
		size_t n = size - off < step ? size - off : step, used;
		const struct imap_resp *r;
		int rc = imap_resp_feed(p, (const char *)data + off, n, &used, &r);

		off += used;
		if (rc == IMAP_PARSE_ERROR)
			break;
		if (rc == IMAP_PARSE_DONE && r->ntoks > 0) {
			size_t i;
			uint32_t v;
			char buf[64];

			for (i = 0; i < r->ntoks; i++) {
				(void)imap_tok_u32(&r->toks[i], &v);
				(void)imap_tok_str(&r->toks[i], buf, sizeof(buf));
				if (r->toks[i].type == IMAP_TOK_LIST)
					(void)imap_tok_list_get(r->toks, i, "UID");
			}
		}
		if (rc == IMAP_PARSE_MORE && used == 0)
			break;
	}
	imap_resp_parser_free(p);
	return 0;
}

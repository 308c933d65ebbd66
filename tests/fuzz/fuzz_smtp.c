/*
 * libFuzzer target for the SMTP server's parsers (lib/smtp-parser): the
 * input is cut into lines that go through the command and path parsers,
 * the whole input through the DATA decoder in uneven chunks, and through
 * the From: extractor and the queue envelope parser.
 */
#include "queue.h"
#include "smtp-parser.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t off = 0, ll, cons;
	int bare;

	while (off < size) {
		struct smtp_command c;
		struct smtp_path p;
		int r = smtp_line_find(buf + off, size - off, SMTP_MAX_LINE, &ll, &cons, &bare);
		if (r != SMTP_LINE_OK)
			break;
		if (smtp_parse_command(buf + off, ll, &c) == 0 && c.arglen > 0) {
			smtp_parse_path(c.arg, c.arglen, "FROM", 1, &p);
			smtp_parse_path(c.arg, c.arglen, "TO", 0, &p);
		}
		off += cons;
	}

	struct smtp_dot d;
	char out[300];
	size_t i = 0, step = size > 0 ? (data[0] % 200) + 1 : 1;
	smtp_dot_init(&d);
	while (i < size && !d.done) {
		size_t n = size - i < step ? size - i : step, olen;
		i += smtp_dot_feed(&d, buf + i, n, out, &olen);
		if (olen > n + 2)
			abort();
	}

	char addrs[4][SMTP_MAX_ADDR + 1];
	smtp_header_from(buf, size, addrs, 4);

	struct queue_env *env = malloc(sizeof(*env));
	char err[256];
	if (env != NULL) {
		if (queue_env_parse(buf, size, env, err, sizeof(err)) == 0) {
			char *fbuf = malloc(QUEUE_ENV_MAX);
			if (fbuf != NULL && queue_env_format(env, fbuf, QUEUE_ENV_MAX) < 0)
				abort();
			free(fbuf);
		}
		free(env);
	}
	return 0;
}

/* Unit tests of the IMAP response parser (lib/imap-client.h). */
#include "imap-client.h"
#include "t.h"

#include <stdlib.h>

/* Feeds S in chunks of STEP bytes; returns the status of the last feed. */
static int feed(struct imap_resp_parser *p, const char *s, size_t len, size_t step,
		const struct imap_resp **r, size_t *consumed)
{
	size_t off = 0;
	int rc = IMAP_PARSE_MORE;

	*consumed = 0;
	while (off < len) {
		size_t n = len - off < step ? len - off : step, used;

		rc = imap_resp_feed(p, s + off, n, &used, r);
		off += used;
		if (rc != IMAP_PARSE_MORE)
			break;
	}
	*consumed = off;
	return rc;
}

static void test_tagged_code(void)
{
	struct imap_resp_parser *p = imap_resp_parser_new(NULL);
	const struct imap_resp *r;
	size_t used;
	const char *s = "M7 OK [APPENDUID 1700 42] Append completed.\r\n";

	T_EQ(feed(p, s, strlen(s), 3, &r, &used), IMAP_PARSE_DONE);
	T_EQ(used, strlen(s));
	T_EQ(r->kind, IMAP_RESP_TAGGED);
	T_STREQ(r->tag, "M7");
	T_EQ(r->status, IMAP_ST_OK);
	T_STREQ(r->code, "APPENDUID");
	T_STREQ(r->code_arg, "1700 42");
	T_STREQ(r->text, "Append completed.");
	imap_resp_parser_free(p);
}

static void test_fetch_literal_inline(void)
{
	struct imap_resp_parser *p = imap_resp_parser_new(NULL);
	const struct imap_resp *r;
	size_t used;
	long v;
	uint32_t u;
	const char *s = "* 3 FETCH (UID 9 FLAGS (\\Seen $Junk) RFC822.SIZE 5 "
		"BODY[HEADER.FIELDS (MESSAGE-ID)] {5}\r\nab\r\nc)\r\n* 4 EXISTS\r\n";

	T_EQ(feed(p, s, strlen(s), 1, &r, &used), IMAP_PARSE_DONE);
	T_OK(used < strlen(s));		/* "* 4 EXISTS" left for the next call */
	T_STREQ(r->name, "FETCH");
	T_OK(r->has_num && r->num == 3);
	v = imap_tok_list_get(r->toks, 0, "UID");
	T_OK(v > 0 && imap_tok_u32(&r->toks[v], &u) == 0 && u == 9);
	v = imap_tok_list_get(r->toks, 0, "FLAGS");
	T_OK(v > 0 && r->toks[v].type == IMAP_TOK_LIST);
	T_OK(imap_tok_is(&r->toks[v + 1], "\\Seen"));
	v = imap_tok_list_get(r->toks, 0, "BODY[HEADER.FIELDS (MESSAGE-ID)]");
	T_OK(v > 0 && r->toks[v].type == IMAP_TOK_STRING && r->toks[v].len == 5 &&
	     memcmp(r->toks[v].s, "ab\r\nc", 5) == 0);
	{
		size_t u2;
		const char *rest = s + used;

		T_EQ(imap_resp_feed(p, rest, strlen(rest), &u2, &r), IMAP_PARSE_DONE);
		T_STREQ(r->name, "EXISTS");
		T_EQ(r->num, 4);
	}
	imap_resp_parser_free(p);
}

struct sinkbuf { char b[256]; size_t n; int begun; };
static int sb_begin(void *ctx, unsigned long long size)
{
	struct sinkbuf *s = ctx;

	(void)size;
	s->begun++;
	return 0;
}
static int sb_data(void *ctx, const void *buf, size_t len)
{
	struct sinkbuf *s = ctx;

	if (s->n + len > sizeof(s->b))
		return -1;
	memcpy(s->b + s->n, buf, len);
	s->n += len;
	return 0;
}

static void test_literal_sink(void)
{
	struct imap_resp_limits lim = { .max_inline = 4 };
	struct imap_resp_parser *p = imap_resp_parser_new(&lim);
	struct sinkbuf sb = { .n = 0 };
	struct imap_resp_sink sink = { sb_begin, sb_data, &sb };
	const struct imap_resp *r;
	size_t used;
	long v;
	const char *s = "* 1 FETCH (UID 5 BODY[] {12}\r\nhello\r\nworld)\r\n";

	imap_resp_parser_set_sink(p, &sink);
	T_EQ(feed(p, s, strlen(s), 2, &r, &used), IMAP_PARSE_DONE);
	T_EQ(sb.begun, 1);
	T_EQ(sb.n, 12);
	T_OK(memcmp(sb.b, "hello\r\nworld", 12) == 0);
	v = imap_tok_list_get(r->toks, 0, "BODY[]");
	T_OK(v > 0 && r->toks[v].type == IMAP_TOK_SUNK && r->toks[v].size == 12);
	imap_resp_parser_free(p);

	/* without a sink a large literal is an error, not a big buffer */
	p = imap_resp_parser_new(&lim);
	T_EQ(feed(p, s, strlen(s), 100, &r, &used), IMAP_PARSE_ERROR);
	T_EQ(feed(p, "* OK\r\n", 6, 6, &r, &used), IMAP_PARSE_ERROR);	/* stays failed */
	imap_resp_parser_free(p);
}

static void test_list_status_vanished(void)
{
	struct imap_resp_parser *p = imap_resp_parser_new(NULL);
	const struct imap_resp *r;
	size_t used;
	char name[64];
	long v;
	unsigned long long m;
	const char *l = "* LIST (\\HasNoChildren \\Junk) \"/\" \"Spam \\\"x\\\"\"\r\n";
	const char *st = "* STATUS Spam (UIDVALIDITY 7 UIDNEXT 3 MESSAGES 2 HIGHESTMODSEQ 99)\r\n";
	const char *va = "* VANISHED (EARLIER) 1:3,7\r\n";

	T_EQ(feed(p, l, strlen(l), 5, &r, &used), IMAP_PARSE_DONE);
	T_STREQ(r->name, "LIST");
	T_OK(imap_tok_is(&r->toks[2], "\\Junk"));
	T_OK(imap_tok_str(&r->toks[r->toks[0].end + 1], name, sizeof(name)) == 0);
	T_STREQ(name, "Spam \"x\"");
	T_EQ(feed(p, st, strlen(st), 7, &r, &used), IMAP_PARSE_DONE);
	v = imap_tok_list_get(r->toks, 1, "HIGHESTMODSEQ");
	T_OK(v > 0 && imap_tok_u64(&r->toks[v], &m) == 0 && m == 99);
	T_EQ(feed(p, va, strlen(va), 64, &r, &used), IMAP_PARSE_DONE);
	T_STREQ(r->name, "VANISHED");
	T_OK(r->toks[0].type == IMAP_TOK_LIST && imap_tok_is(&r->toks[1], "EARLIER"));
	T_OK(imap_tok_is(&r->toks[2], "1:3,7"));
	imap_resp_parser_free(p);
}

static int count_cb(uint32_t lo, uint32_t hi, void *ctx)
{
	*(unsigned *)ctx += hi - lo + 1;
	return 0;
}

static void test_uidset(void)
{
	unsigned n = 0;

	T_EQ(imap_uidset_each("1:3,7,9:*", 10, count_cb, &n), 0);
	T_EQ(n, 3 + 1 + 2);
	T_EQ(imap_uidset_each("1:", 10, count_cb, &n), -1);
	T_EQ(imap_uidset_each("0", 10, count_cb, &n), -1);
	T_EQ(imap_uidset_each("", 10, count_cb, &n), -1);
}

static void test_malformed(void)
{
	static const char *bad[] = {
		"* 1 FETCH (UID 1\r\n", "* 1 FETCH UID 1)\r\n", "M1\r\n", "M1 FOO bar\r\n",
		"* 1 FETCH (BODY[] {5}\r\nab)\r\n\r\n", "* OK [ALERT unterminated\r\n",
		"* LIST (\\X) \"/\" \"unterminated\r\n",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct imap_resp_parser *p = imap_resp_parser_new(NULL);
		const struct imap_resp *r;
		size_t used;
		int rc = feed(p, bad[i], strlen(bad[i]), 3, &r, &used);

		if (rc != IMAP_PARSE_ERROR)
			printf("# case %zu gave %d\n", i, rc);
		T_OK(rc == IMAP_PARSE_ERROR || (i == 4 && rc == IMAP_PARSE_MORE));
		imap_resp_parser_free(p);
	}
}

static void test_line_limit(void)
{
	struct imap_resp_limits lim = { .max_line = 64 };
	struct imap_resp_parser *p = imap_resp_parser_new(&lim);
	char big[200];
	const struct imap_resp *r;
	size_t used;

	memset(big, 'a', sizeof(big));
	memcpy(big, "* OK ", 5);
	T_EQ(feed(p, big, sizeof(big), 50, &r, &used), IMAP_PARSE_ERROR);
	imap_resp_parser_free(p);
}

int main(void)
{
	T_RUN(test_tagged_code);
	T_RUN(test_fetch_literal_inline);
	T_RUN(test_literal_sink);
	T_RUN(test_list_status_vanished);
	T_RUN(test_uidset);
	T_RUN(test_malformed);
	T_RUN(test_line_limit);
	return t_done();
}

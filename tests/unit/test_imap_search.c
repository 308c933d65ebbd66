/* Unit tests for lib/imap-search: parse SEARCH keys, evaluate over a fake message. */
#include "t.h"
#include "imap-parser.h"
#include "imap-search.h"

#include <stdlib.h>

static const char *hdrs[][2] = {
	{ "From", "Alice <alice@example.com>" }, { "Subject", "Quarterly Report" },
	{ "Date", "Tue, 2 Jan 2024 11:00:00 +0100" }, { "To", "bob@example.com" },
};

static const char *fake_header(void *ctx, const char *name, unsigned n, size_t *len)
{
	unsigned i, seen = 0;
	(void)ctx;
	for (i = 0; i < 4; i++)
		if (strcasecmp(hdrs[i][0], name) == 0 && seen++ == n) {
			*len = strlen(hdrs[i][1]);
			return hdrs[i][1];
		}
	return NULL;
}

static int fake_contains(void *ctx, const char *needle, int text)
{
	const char *body = "the body mentions Widgets";
	(void)ctx;
	return imap_search_substr(body, strlen(body), needle) ||
	       (text && imap_search_substr("Subject: Quarterly Report", 25, needle));
}

static int fake_keyword(void *ctx, const char *kw)
{
	(void)ctx;
	return strcasecmp(kw, "$Important") == 0;
}

/* -1: parse error, else match result */
static int eval(const char *args)
{
	static const struct imap_parser_limits lim = { 4096, 16, 256, 1 << 20, 1 << 20 };
	struct imap_parser *p = imap_parser_new(&lim);
	char cmd[1024];
	size_t used;
	const char *err;
	int bad, r = -1;
	struct imap_search *s;
	struct imap_search_msg m = { NULL, 5, 42, 10, 100, IMAP_SEARCH_SEEN | IMAP_SEARCH_FLAGGED,
				     1704189600 /* 2024-01-02 10:00 UTC */, 60, 2048, 77,
				     1704189600 + 3600, fake_keyword, fake_header, fake_contains, NULL };

	snprintf(cmd, sizeof(cmd), "a SEARCH %s\r\n", args);
	size_t pos = 0;
	enum imap_parse_result pr;
	while ((pr = imap_parser_feed(p, cmd + pos, strlen(cmd) - pos, &used)) == IMAP_PARSE_LITERAL)
		pos += used;        /* read the literal inline */
	if (pr == IMAP_PARSE_COMMAND) {
		const struct imap_command *c = imap_parser_command(p);
		s = imap_search_parse(c->args, c->count, 100, &err, &bad);
		if (s != NULL)
			r = imap_search_match(s, &m);
		imap_search_free(s);
	}
	imap_parser_free(p);
	return r;
}

static void test_keys(void)
{
	T_EQ(eval("ALL"), 1);
	T_EQ(eval("SEEN FLAGGED"), 1);
	T_EQ(eval("UNSEEN"), 0);
	T_EQ(eval("NOT DELETED"), 1);
	T_EQ(eval("OR DELETED ANSWERED"), 0);
	T_EQ(eval("OR DELETED (SEEN UNDRAFT)"), 1);
	T_EQ(eval("5"), 1);
	T_EQ(eval("1:4,6:*"), 0);
	T_EQ(eval("UID 40:*"), 1);
	T_EQ(eval("UID 1:41"), 0);
	T_EQ(eval("FROM alice"), 1);
	T_EQ(eval("FROM ALICE@EXAMPLE"), 1);
	T_EQ(eval("TO carol"), 0);
	T_EQ(eval("SUBJECT \"quarterly report\""), 1);
	T_EQ(eval("HEADER Date 2024"), 1);
	T_EQ(eval("HEADER X-Missing \"\""), 0);
	T_EQ(eval("HEADER Subject \"\""), 1);
	T_EQ(eval("BODY widgets"), 1);
	T_EQ(eval("BODY quarterly"), 0);
	T_EQ(eval("TEXT quarterly"), 1);
	T_EQ(eval("KEYWORD $Important UNKEYWORD $Junk"), 1);
	T_EQ(eval("LARGER 2000 SMALLER 3000"), 1);
	T_EQ(eval("LARGER 2048"), 0);
	T_EQ(eval("SINCE 2-Jan-2024 BEFORE 3-Jan-2024 ON 2-Jan-2024"), 1);
	T_EQ(eval("SINCE 3-Jan-2024"), 0);
	T_EQ(eval("SENTON 2-Jan-2024"), 1);
	T_EQ(eval("SENTBEFORE 2-Jan-2024"), 0);
	T_EQ(eval("SENTSINCE 1-Jan-2024"), 1);
	T_EQ(eval("MODSEQ 70"), 1);
	T_EQ(eval("MODSEQ \"/flags/\\\\Seen\" all 78"), 0);
	T_EQ(eval("YOUNGER 7200"), 1);
	T_EQ(eval("OLDER 7200"), 0);
	T_EQ(eval("NEW"), 0);
	T_EQ(eval("OLD"), 1);
	T_EQ(eval("CHARSET UTF-8 FROM {5}\r\nalice"), 1);
	T_EQ(eval("NOT (OR 1 2 NOT 5)"), 1);
}

static void test_errors(void)
{
	const char *err;
	int bad;
	T_EQ(eval("BOGUS"), -1);
	T_EQ(eval("FROM"), -1);
	T_EQ(eval("OR SEEN"), -1);
	T_EQ(eval("SINCE 32-Jan-2024"), -1);
	T_EQ(eval("LARGER x"), -1);
	T_EQ(eval("()"), -1);
	T_EQ(eval("1:0"), -1);
	T_EQ(eval("CHARSET KOI8-R ALL"), -1);
	{
		struct imap_arg a[2] = { { .type = IMAP_ARG_ATOM, .str = "CHARSET", .len = 7 },
					 { .type = IMAP_ARG_ATOM, .str = "ISO-2022-JP", .len = 11 } };
		T_OK(imap_search_parse(a, 2, 10, &err, &bad) == NULL);
		T_EQ(bad, 1);
	}
	imap_search_free(NULL);
}

int main(void)
{
	T_RUN(test_keys);
	T_RUN(test_errors);
	return t_done();
}

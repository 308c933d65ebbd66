/* Unit tests for lib/imap-parser, imap-seqset, imap-date, imap-string, imap-fetch. */
#include "t.h"
#include "imap-date.h"

#include "imap-parser.h"
#include "imap-seqset.h"
#include "imap-string.h"

#include <stdlib.h>

static const struct imap_parser_limits lim = { 1024, 8, 64, 100 * 1024 * 1024, 256 };

static void render_args(struct imap_string *o, const struct imap_arg *a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (i > 0)
			imap_string_addc(o, ' ');
		switch (a[i].type) {
		case IMAP_ARG_NIL: imap_string_adds(o, "NIL"); break;
		case IMAP_ARG_ATOM:
			imap_string_addf(o, "A:%s", a[i].str);
			if (a[i].has_section) {
				imap_string_addc(o, '[');
				render_args(o, a[i].list, a[i].count);
				imap_string_addc(o, ']');
				if (a[i].partial)
					imap_string_addf(o, "<%s>", a[i].partial);
			}
			break;
		case IMAP_ARG_STRING: imap_string_addf(o, "S:%s", a[i].str); break;
		case IMAP_ARG_LITERAL:
			imap_string_addf(o, "L%s%s:%s", a[i].literal_nonsync ? "+" : "",
					 a[i].literal_binary ? "~" : "", a[i].str);
			break;
		case IMAP_ARG_LITERAL_SIZE:
			imap_string_addf(o, "Z:%llu", (unsigned long long)a[i].literal_size);
			break;
		case IMAP_ARG_LIST:
			imap_string_addc(o, '(');
			render_args(o, a[i].list, a[i].count);
			imap_string_addc(o, ')');
			break;
		}
	}
}

/* Feeds the whole input one byte at a time when bytewise, reading literals
 * inline; returns a rendering of each result joined by " | ". */
static char *run(const char *in, size_t len, int bytewise)
{
	struct imap_parser *p = imap_parser_new(&lim);
	struct imap_string o;
	size_t pos = 0;

	imap_string_init(&o, 0);
	while (pos < len) {
		size_t chunk = bytewise ? 1 : len - pos, used;
		enum imap_parse_result r = imap_parser_feed(p, in + pos, chunk, &used);
		pos += used;
		if (r == IMAP_PARSE_COMMAND) {
			const struct imap_command *c = imap_parser_command(p);
			imap_string_addf(&o, "%s%s %s%s", o.len ? " | " : "", c->tag,
					 c->uid ? "UID " : "", c->name);
			if (c->count > 0) {
				imap_string_addc(&o, ' ');
				render_args(&o, c->args, c->count);
			}
		} else if (r == IMAP_PARSE_ERROR) {
			int fatal;
			const char *tag = imap_parser_tag(p);
			const char *msg = imap_parser_error(p, &fatal);
			imap_string_addf(&o, "%sBAD %s %s%s", o.len ? " | " : "", tag ? tag : "*",
					 msg, fatal ? " FATAL" : "");
			if (fatal)
				break;
		} else if (r == IMAP_PARSE_LITERAL) {
			struct imap_literal_info li = imap_parser_literal(p);
			if (li.size > 100) {
				imap_parser_literal_stream(p);
				pos += (size_t)li.size;     /* the "server" consumed them */
			}
		}
	}
	imap_parser_free(p);
	return o.buf ? o.buf : strdup("");
}

#define CHECKN(in, n, want) do { char *g1 = run(in, n, 0), *g2 = run(in, n, 1); \
	T_STREQ(g1, want); T_STREQ(g2, want); free(g1); free(g2); } while (0)
#define CHECK(in, want) do { char *g1 = run(in, strlen(in), 0), *g2 = run(in, strlen(in), 1); \
	T_STREQ(g1, want); T_STREQ(g2, want); free(g1); free(g2); } while (0)

static void test_simple(void)
{
	CHECK("a1 NOOP\r\n", "a1 NOOP");
	CHECK("a1 noop\n", "a1 noop");
	CHECK("\r\na1 LOGIN joe \"se\\\"cr\\\\et\"\r\n", "a1 LOGIN A:joe S:se\"cr\\et");
	CHECK("a SELECT NIL\r\nb SELECT \"\"\r\n", "a SELECT NIL | b SELECT S:");
	CHECK("a UID FETCH 1:* (FLAGS UID)\r\n", "a UID FETCH A:1:* (A:FLAGS A:UID)");
	CHECK("a STORE 1 +FLAGS.SILENT (\\Seen \\Deleted)\r\n",
	      "a STORE A:1 A:+FLAGS.SILENT (A:\\Seen A:\\Deleted)");
	CHECK("a LIST \"\" %\r\n", "a LIST S: A:%");
	CHECK("a SELECT foo]bar\r\n", "a SELECT A:foo]bar");
	CHECK("a SELECT ~foo\r\n", "a SELECT A:~foo");
	CHECK("a X ()\r\n", "a X ()");
	CHECK("a X (() (a (b)))\r\n", "a X (() (A:a (A:b)))");
}

static void test_sections(void)
{
	CHECK("a FETCH 1 (BODY.PEEK[HEADER.FIELDS (From To)]<0.100> BODY[])\r\n",
	      "a FETCH A:1 (A:BODY.PEEK[A:HEADER.FIELDS (A:From A:To)]<0.100> A:BODY[])");
	CHECK("a FETCH 1 BODY[1.2.MIME]\r\n", "a FETCH A:1 A:BODY[A:1.2.MIME]");
	CHECK("a FETCH 1 binary.peek[1]<5.10>\r\n", "a FETCH A:1 A:binary.peek[A:1]<5.10>");
	CHECK("a FETCH 1 BODY[HEADER.FIELDS (\"X-A\" {3}\r\nX-B)]\r\n",
	      "a FETCH A:1 A:BODY[A:HEADER.FIELDS (S:X-A L:X-B)]");
	CHECK("a SELECT x[y\r\n", "a SELECT A:x[y");
	CHECK("a FETCH 1 BODY[\r\n", "BAD a Missing ']'");
	CHECK("a FETCH 1 BODY[]<1.x>\r\n", "BAD a Invalid partial");
	CHECK("a FETCH 1 (BODY[)]\r\n", "BAD a Unexpected ')'");
}

static void test_literals(void)
{
	CHECK("a LOGIN {3}\r\njoe {4+}\r\npass\r\n", "a LOGIN L:joe L+:pass");
	CHECKN("a APPEND x ~{3}\r\na\0b\r\n", 22, "a APPEND A:x L~:a");
	CHECK("a LOGIN {0}\r\n {0}\r\n\r\n", "a LOGIN L: L:");
	/* > 100 bytes: streamed by run(); the bytes are skipped by the "server" */
	{
		char buf[400];
		memset(buf, 0, sizeof(buf));
		strcpy(buf, "a APPEND INBOX (\\Seen) {200+}\r\n");
		memset(buf + strlen(buf), 'x', 200);
		strcat(buf, " x\r\n");
		CHECK(buf, "a APPEND A:INBOX (A:\\Seen) Z:200 A:x");
	}
	/* too large for max_literal: sync → BAD, LITERAL+ → fatal */
	CHECK("a APPEND x {999999999999}\r\nb NOOP\r\n", "BAD a Literal too large | b NOOP");
	CHECK("a APPEND x {999999999+}\r\n", "BAD a Literal too large FATAL");
	CHECK("a APPEND x {99999999999999999999999}\r\n", "BAD a Literal too large");
	CHECK("a LOGIN {x}\r\nb NOOP\r\n", "BAD a Invalid literal size | b NOOP");
	CHECK("a LOGIN {}\r\n", "BAD a Invalid literal size");
	CHECK("a LOGIN {3} \r\n", "BAD a Missing CRLF after literal");
}

static void test_errors(void)
{
	CHECK("a X (a\r\nb NOOP\r\n", "BAD a Missing ')' | b NOOP");
	CHECK("a X a)\r\n", "BAD a Unexpected ')'");
	CHECK("a X \"abc\r\n", "BAD a Missing '\"'");
	CHECK("a X \"a\\b\"\r\n", "BAD a Invalid escape in quoted string");
	CHECK("a X \"a\"\"b\"\r\n", "BAD a Missing space between arguments");
	CHECK("a X a\xff\r\nb NOOP\r\n", "BAD a Invalid characters in atom | b NOOP");
	CHECK("a\r\n", "BAD * Missing command");
	CHECK("a UID\r\n", "BAD a Missing UID command");
	CHECK("+ NOOP\r\n", "BAD * Invalid tag");
	CHECK(" NOOP\r\n", "BAD * Empty tag");
	CHECK("a X ((((((((((((a))))))))))))\r\nb NOOP\r\n", "BAD a Too deep nesting | b NOOP");
	{
		/* too long line, then recovery */
		char *buf = malloc(3000);
		strcpy(buf, "a X ");
		memset(buf + 4, 'y', 2000);
		strcpy(buf + 2004, "\r\nb NOOP\r\n");
		CHECK(buf, "BAD a Too long command line | b NOOP");
		free(buf);
	}
	{
		char buf[400] = "a X";
		for (int i = 0; i < 70; i++)
			strcat(buf, " x");
		strcat(buf, "\r\n");
		CHECK(buf, "BAD a Too many arguments");
	}
}

static void test_inline_literal_limit(void)
{
	struct imap_parser *p = imap_parser_new(&lim);
	const char *in = "a LOGIN {300}\r\n";
	size_t used;
	enum imap_parse_result r = imap_parser_feed(p, in, strlen(in), &used);
	T_EQ(r, IMAP_PARSE_LITERAL);
	T_EQ(used, strlen(in));
	struct imap_literal_info li = imap_parser_literal(p);
	T_EQ(li.size, 300);
	T_EQ(li.fits_inline, 0);
	T_EQ(li.nonsync, 0);
	T_STREQ(imap_parser_command_name(p, NULL), "LOGIN");
	/* not streamed and too large for inline: BAD, nothing consumed */
	r = imap_parser_feed(p, "xyz", 3, &used);
	T_EQ(r, IMAP_PARSE_ERROR);
	T_EQ(used, 0);
	T_STREQ(imap_parser_error(p, NULL), "Literal too large");
	r = imap_parser_feed(p, "b NOOP\r\n", 8, &used);
	T_EQ(r, IMAP_PARSE_COMMAND);
	T_STREQ(imap_parser_command(p)->tag, "b");
	imap_parser_free(p);
	imap_parser_free(NULL);
}

static void test_pipelining(void)
{
	struct imap_parser *p = imap_parser_new(&lim);
	const char *in = "a NOOP\r\nb CHECK\r\n";
	size_t used;
	T_EQ(imap_parser_feed(p, in, strlen(in), &used), IMAP_PARSE_COMMAND);
	T_EQ(used, 8);
	T_STREQ(imap_parser_command(p)->name, "NOOP");
	T_EQ(imap_parser_feed(p, in + 8, strlen(in) - 8, &used), IMAP_PARSE_COMMAND);
	T_STREQ(imap_parser_command(p)->name, "CHECK");
	T_EQ(imap_parser_feed(p, "c", 1, &used), IMAP_PARSE_MORE);
	T_EQ(used, 1);
	imap_parser_free(p);
}

static void test_seqset(void)
{
	struct imap_seqset s;

	T_EQ(imap_seqset_parse("1:*,3,7:5", 10, 0, &s), 0);
	T_EQ(s.count, 3);
	T_OK(imap_seqset_contains(&s, 1, 10));
	T_OK(imap_seqset_contains(&s, 10, 10));
	T_OK(!imap_seqset_contains(&s, 11, 10));
	imap_seqset_free(&s);
	T_EQ(imap_seqset_parse("7:5", 10, 0, &s), 0);
	T_OK(imap_seqset_contains(&s, 6, 10));
	T_OK(!imap_seqset_contains(&s, 4, 10));
	imap_seqset_free(&s);
	T_EQ(imap_seqset_parse("*:4", 10, 0, &s), 0);
	T_OK(imap_seqset_contains(&s, 3, 3));   /* 4:* with * = 3 means 3:4 */
	imap_seqset_free(&s);
	T_EQ(imap_seqset_parse("4294967295", 10, 0, &s), -1);
	T_EQ(imap_seqset_parse("4294967294", 10, 0, &s), 0);
	imap_seqset_free(&s);
	T_EQ(imap_seqset_parse("0", 10, 0, &s), -1);
	T_EQ(imap_seqset_parse("1,", 10, 0, &s), -1);
	T_EQ(imap_seqset_parse("1::2", 10, 0, &s), -1);
	T_EQ(imap_seqset_parse("", 10, 0, &s), -1);
	T_EQ(imap_seqset_parse("1,2,3", 2, 0, &s), -1);
	T_EQ(imap_seqset_parse("$", 2, 0, &s), -1);
	T_EQ(imap_seqset_parse("$", 2, 1, &s), 0);
	T_EQ(s.saved, 1);
	T_EQ(imap_seqset_parse("$,1", 2, 1, &s), -1);
	imap_seqset_free(NULL);
}

static void test_dates(void)
{
	time_t t;
	int tz;
	char out[27];

	T_EQ(imap_date_parse_datetime("17-Jul-1996 02:44:25 -0700", &t, &tz), 0);
	T_EQ(t, 837596665);
	T_EQ(tz, -420);
	imap_date_format_datetime(out, t, tz);
	T_STREQ(out, "17-Jul-1996 02:44:25 -0700");
	T_EQ(imap_date_parse_datetime(" 7-Jul-1996 02:44:25 +0130", &t, &tz), 0);
	T_EQ(tz, 90);
	imap_date_format_datetime(out, t, tz);
	T_STREQ(out, "07-Jul-1996 02:44:25 +0130");
	T_EQ(imap_date_parse_datetime("7-jul-1996 02:44:25 +0000", &t, &tz), 0);
	T_EQ(imap_date_parse_datetime("32-Jul-1996 02:44:25 +0000", &t, &tz), -1);
	T_EQ(imap_date_parse_datetime("29-Feb-1997 02:44:25 +0000", &t, &tz), -1);
	T_EQ(imap_date_parse_datetime("29-Feb-1996 02:44:25 +0000", &t, &tz), 0);
	T_EQ(imap_date_parse_datetime("17-Jul-1996 02:44:25", &t, &tz), -1);
	T_EQ(imap_date_parse_datetime("17-Jul-1996 24:44:25 +0000", &t, &tz), -1);
	T_EQ(imap_date_parse_datetime("17-Jux-1996 02:44:25 +0000", &t, &tz), -1);
	T_EQ(imap_date_parse_date("1-Feb-1994", &t), 0);
	T_EQ(t, 760060800);
	T_EQ(imap_date_parse_date("01-Feb-1994", &t), 0);
	T_EQ(t, 760060800);
	T_EQ(imap_date_parse_date("1-Feb-1994 ", &t), -1);
	T_EQ(imap_date_parse_date("Feb-1994", &t), -1);
	const char *h = "Tue, 16 Jul 1996 (x) 02:44:25 -0700 (PDT)";
	T_EQ(imap_date_parse_rfc822(h, strlen(h), &t, &tz), 0);
	T_EQ(t, 837596665 - 86400);
	h = "16 Jul 96 09:44 GMT";
	T_EQ(imap_date_parse_rfc822(h, strlen(h), &t, &tz), 0);
	T_EQ(t, 837596665 - 86400 - 25);
	h = "garbage";
	T_EQ(imap_date_parse_rfc822(h, strlen(h), &t, &tz), -1);
}

static void test_string(void)
{
	struct imap_string s;

	imap_string_init(&s, 0);
	imap_string_add_astring(&s, "INBOX", 5);
	imap_string_addc(&s, ' ');
	imap_string_add_astring(&s, "a b", 3);
	imap_string_addc(&s, ' ');
	imap_string_add_astring(&s, "nil", 3);
	imap_string_addc(&s, ' ');
	imap_string_add_astring(&s, "", 0);
	imap_string_addc(&s, ' ');
	imap_string_add_nstring(&s, NULL, 0);
	imap_string_addc(&s, ' ');
	imap_string_add_quoted(&s, "a\"\\", 3);
	imap_string_addc(&s, ' ');
	imap_string_add_quoted(&s, "a\nb", 3);
	imap_string_addc(&s, ' ');
	imap_string_add_quoted(&s, "\xc3\xa9", 2);
	imap_string_addc(&s, ' ');
	imap_string_add_quoted_8bit(&s, "\xc3\xa9", 2);
	T_STREQ(s.buf, "INBOX \"a b\" \"nil\" \"\" NIL \"a\\\"\\\\\" {3}\r\na\nb {2}\r\n\xc3\xa9 \"\xc3\xa9\"");
	imap_string_clear(&s);
	imap_string_add_crlf(&s, "a\nb\r\nc\n", 7);
	T_STREQ(s.buf, "a\r\nb\r\nc\r\n");
	imap_string_free(&s);
	imap_string_init(&s, 4);
	T_EQ(imap_string_adds(&s, "abcd"), 0);
	T_EQ(imap_string_adds(&s, "e"), -1);
	T_OK(s.failed);
	T_STREQ(s.buf, "abcd");
	imap_string_free(&s);
	imap_string_free(NULL);
}

int main(void)
{
	T_RUN(test_simple);
	T_RUN(test_sections);
	T_RUN(test_literals);
	T_RUN(test_errors);
	T_RUN(test_inline_literal_limit);
	T_RUN(test_pipelining);
	T_RUN(test_seqset);
	T_RUN(test_dates);
	T_RUN(test_string);
	return t_done();
}

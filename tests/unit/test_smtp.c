/* Unit tests: lib/smtp-parser (commands, paths, DATA decoding, From:). */
#include "smtp-parser.h"
#include "t.h"

static void test_line_find(void)
{
	size_t ll, cons;
	int bare;

	T_EQ(smtp_line_find("EHLO x\r\nQUIT", 12, 1000, &ll, &cons, &bare), SMTP_LINE_OK);
	T_EQ(ll, 6);
	T_EQ(cons, 8);
	T_EQ(bare, 0);
	T_EQ(smtp_line_find("NOOP\n", 5, 1000, &ll, &cons, &bare), SMTP_LINE_OK);
	T_EQ(bare, 1);
	T_EQ(smtp_line_find("NOOP", 4, 1000, &ll, &cons, &bare), SMTP_LINE_MORE);
	T_EQ(smtp_line_find("NOOPNOOP", 8, 8, &ll, &cons, &bare), SMTP_LINE_TOO_LONG);
	T_EQ(smtp_line_find("NOOP\r\n", 6, 6, &ll, &cons, &bare), SMTP_LINE_OK);
}

static void test_command(void)
{
	struct smtp_command c;

	T_EQ(smtp_parse_command("ehlo client.example", 19, &c), 0);
	T_EQ(c.verb, SMTP_EHLO);
	T_EQ(c.arglen, 14);
	T_OK(memcmp(c.arg, "client.example", 14) == 0);
	T_EQ(smtp_parse_command("QUIT", 4, &c), 0);
	T_EQ(c.verb, SMTP_QUIT);
	T_EQ(c.arglen, 0);
	T_EQ(smtp_parse_command("DATA  ", 6, &c), 0);
	T_EQ(c.arglen, 0);
	T_EQ(smtp_parse_command("FOO bar", 7, &c), 0);
	T_EQ(c.verb, SMTP_UNKNOWN);
	T_EQ(smtp_parse_command("NO\0OP", 5, &c), -1);
	T_EQ(smtp_parse_command("\xff\xfeX", 3, &c), -1);
	T_EQ(smtp_parse_command("MAILX", 5, &c), 0);
	T_EQ(c.verb, SMTP_UNKNOWN);
}

static int path(const char *arg, int mail, struct smtp_path *p)
{
	return smtp_parse_path(arg, strlen(arg), mail ? "FROM" : "TO", mail, p);
}

static void test_path(void)
{
	struct smtp_path p;

	T_EQ(path("FROM:<alice@example.com>", 1, &p), SMTP_PATH_OK);
	T_STREQ(p.addr, "alice@example.com");
	T_EQ(p.size, -1);
	T_EQ(path("from: <alice@example.com> SIZE=1234 BODY=8BITMIME SMTPUTF8", 1, &p),
	     SMTP_PATH_OK);
	T_EQ(p.size, 1234);
	T_EQ(p.body, SMTP_BODY_8BITMIME);
	T_EQ(p.smtputf8, 1);
	T_EQ(path("FROM:<>", 1, &p), SMTP_PATH_OK);
	T_STREQ(p.addr, "");
	T_EQ(path("TO:<>", 0, &p), SMTP_PATH_BAD_ADDR);
	T_EQ(path("TO:<@relay.example:bob@example.org>", 0, &p), SMTP_PATH_OK);
	T_STREQ(p.addr, "bob@example.org");
	T_EQ(path("TO:<bob@example.org> NOTIFY=NEVER", 0, &p), SMTP_PATH_BAD_PARAM);
	T_EQ(path("FROM:<a@b> FOO=1", 1, &p), SMTP_PATH_BAD_PARAM);
	T_EQ(path("FROM:<a@b> SIZE=x", 1, &p), SMTP_PATH_BAD_PARAM);
	T_EQ(path("FROM:<a b@c>", 1, &p), SMTP_PATH_BAD_ADDR);
	T_EQ(path("FROM:<\"a b\"@c>", 1, &p), SMTP_PATH_BAD_ADDR);
	T_EQ(path("FROM:<\"a.b\"@c>", 1, &p), SMTP_PATH_OK);
	T_EQ(path("FROM:<a..b@c>", 1, &p), SMTP_PATH_BAD_ADDR);
	T_EQ(path("FROM:<a@[192.0.2.1]>", 1, &p), SMTP_PATH_OK);
	T_EQ(path("FROM:alice@example.com", 1, &p), SMTP_PATH_OK);
	T_EQ(path("FROM<a@b>", 1, &p), SMTP_PATH_SYNTAX);
	T_EQ(path("FROM:<a@b", 1, &p), SMTP_PATH_SYNTAX);
	T_EQ(path("TO:<j\xc3\xb6rg@example.org>", 0, &p), SMTP_PATH_OK);
	T_EQ(p.utf8_addr, 1);
	T_EQ(path("TO:<a\x01@b>", 0, &p), SMTP_PATH_BAD_ADDR);
	char big[600] = "TO:<";
	memset(big + 4, 'a', 400);
	strcpy(big + 404, "@b>");
	T_EQ(path(big, 0, &p), SMTP_PATH_TOO_LONG);
	T_STREQ(smtp_addr_domain("a@Example.COM"), "Example.COM");
	T_OK(smtp_addr_domain("nodomain") == NULL);
}

/* Feeds IN in chunks of STEP bytes; returns the decoded message. */
static size_t dot(const char *in, size_t len, size_t step, struct smtp_dot *d, char *out,
		  size_t *consumed)
{
	size_t o = 0, i = 0;

	smtp_dot_init(d);
	while (i < len && !d->done) {
		size_t n = len - i < step ? len - i : step, olen;
		char tmp[64];
		size_t used = smtp_dot_feed(d, in + i, n, tmp, &olen);
		memcpy(out + o, tmp, olen);
		o += olen;
		i += used;
	}
	*consumed = i;
	out[o] = '\0';
	return o;
}

static void test_dot(void)
{
	static const char msg[] = "Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n";
	struct smtp_dot d;
	char out[256];
	size_t cons;

	for (size_t step = 1; step <= 40; step++) {
		dot(msg, sizeof(msg) - 1, step, &d, out, &cons);
		T_EQ(d.done, 1);
		T_STREQ(out, "Subject: x\r\n\r\n.dot\r\n");
		T_EQ(cons, sizeof(msg) - 1 - 6);
		T_EQ(d.bare_lf, 0);
		T_EQ(d.bare_cr, 0);
	}
	dot(".\r\n", 3, 1, &d, out, &cons);
	T_EQ(d.done, 1);
	T_STREQ(out, "");
	/* "\n.\n" and "\r\n.\n" do not end the data */
	dot("a\n.\nb\r\n.\n", 10, 3, &d, out, &cons);
	T_EQ(d.done, 0);
	T_EQ(d.bare_lf, 1);
	dot("a\rb\r\n.\r\n", 8, 2, &d, out, &cons);
	T_EQ(d.done, 1);
	T_EQ(d.bare_cr, 1);
	T_STREQ(out, "a\rb\r\n");
	dot(".\rx\r\n.\r\n", 8, 1, &d, out, &cons);
	T_EQ(d.done, 1);
	T_EQ(d.bare_cr, 1);
	dot("0123456789\r\n.\r\n", 15, 4, &d, out, &cons);
	T_EQ(d.max_line, 12);
	T_EQ(d.bytes, 12);
}

static int from(const char *hdr, char (*a)[SMTP_MAX_ADDR + 1])
{
	return smtp_header_from(hdr, strlen(hdr), a, 4);
}

static void test_from(void)
{
	char a[4][SMTP_MAX_ADDR + 1];

	T_EQ(from("Subject: x\r\nFrom: alice@example.com\r\n\r\nFrom: body@x\r\n", a), 1);
	T_STREQ(a[0], "alice@example.com");
	T_EQ(from("from : \"Smith, Alice\" <alice@example.com> (home)\r\n\r\n", a), 1);
	T_STREQ(a[0], "alice@example.com");
	T_EQ(from("From: Alice\r\n <alice@example.com>,\r\n\tbob@example.com\r\n\r\n", a), 2);
	T_STREQ(a[1], "bob@example.com");
	T_EQ(from("From: team: a@x, b@x;\r\n\r\n", a), 2);
	T_STREQ(a[0], "a@x");
	T_EQ(from("From: a@x (comment, with \\) paren)\r\n\r\n", a), 1);
	T_EQ(from("From: a@x\r\nFrom: b@x\r\n\r\n", a), -1);
	T_EQ(from("From: <a@x\r\n\r\n", a), -1);
	T_EQ(from("From: (unterminated\r\n\r\n", a), -1);
	T_EQ(from("Subject: none\r\n\r\n", a), 0);
	T_EQ(from("From: <>\r\n\r\n", a), -1);
	T_EQ(from("Fromage: a@x\r\n\r\n", a), 0);
	T_EQ(from("From: \"a.b\"@x\r\n\r\n", a), 1);
	T_STREQ(a[0], "\"a.b\"@x");
	T_OK(smtp_addr_equal("Alice@Example.com", "alice@example.COM"));
}

int main(void)
{
	T_RUN(test_line_find);
	T_RUN(test_command);
	T_RUN(test_path);
	T_RUN(test_dot);
	T_RUN(test_from);
	return t_done();
}

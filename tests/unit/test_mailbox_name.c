/* Mailbox names: validation, INBOX, modified UTF-7 (RFC 3501 §5.1.3). */
#include "mailbox-name.h"
#include "t.h"

#include <sysexits.h>

static char err[256];

static int ok(const char *n)
{
	return mailbox_name_check(n, err, sizeof(err)) == 0;
}

static void test_valid_names(void)
{
	T_OK(ok("INBOX"));
	T_OK(ok("inbox"));
	T_OK(ok("Archive/2024"));
	T_OK(ok("A/B/C"));
	T_OK(ok("Entw&APw-rfe"));
	T_OK(ok("Tom &- Jerry"));
	T_OK(ok("Sent Items"));
}

static void test_refused_names(void)
{
	static const char *const bad[] = {
		"", "/abs", "a/", "a//b", "..", "../etc", "a/../b", "a/..", ".", "a/./b",
		".hidden", "~root", "a/~b", "cur", "a/new", "tmp/x", "dovecot-uidlist",
		"a/dovecot.index", "mailkeep-x", "subscriptions", "a\tb", "a\nb", "a\x7f",
		"caf\xc3\xa9", "a*", "50%", "&Jjo!", "&U,BTFw-&ZeVnLIqe-", "&AGE-", "&-x&",
	};
	size_t i;
	char longc[300], longn[1100];

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = mailbox_name_check(bad[i], err, sizeof(err));

		if (r != EX_DATAERR)
			printf("# accepted: \"%s\"\n", bad[i]);
		T_EQ(r, EX_DATAERR);
		T_OK(err[0] != '\0');
	}
	memset(longc, 'a', 256);
	longc[256] = '\0';
	T_EQ(mailbox_name_check(longc, err, sizeof(err)), EX_DATAERR);
	longc[255] = '\0';
	T_OK(ok(longc));
	for (i = 0; i < 1025; i++)
		longn[i] = (i % 100 == 99) ? '/' : 'x';
	longn[1025] = '\0';
	T_EQ(mailbox_name_check(longn, err, sizeof(err)), EX_DATAERR);
	/* "subscriptions" is reserved only at the top */
	T_OK(ok("a/subscriptions"));
	/* an encoded control character is refused too */
	T_EQ(mailbox_name_check("a&AAk-b", err, sizeof(err)), EX_DATAERR);
}

static void test_inbox(void)
{
	char n[64];

	T_OK(mailbox_name_is_inbox("INBOX"));
	T_OK(mailbox_name_is_inbox("iNbOx"));
	T_OK(!mailbox_name_is_inbox("INBOX/x"));
	T_OK(!mailbox_name_is_inbox("INBOXES"));
	strcpy(n, "inbox");
	mailbox_name_normalize(n);
	T_STREQ(n, "INBOX");
	strcpy(n, "Inbox/Sub");
	mailbox_name_normalize(n);
	T_STREQ(n, "INBOX/Sub");
	strcpy(n, "inboxes");
	mailbox_name_normalize(n);
	T_STREQ(n, "inboxes");
}

static void test_rfc3501_vectors(void)
{
	char out[256];

	/* RFC 3501 §5.1.3: "~peter/mail/台北/日本語" */
	T_EQ(mutf7_to_utf8("~peter/mail/&U,BTFw-/&ZeVnLIqe-", out, sizeof(out)), 0);
	T_STREQ(out, "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
	T_EQ(utf8_to_mutf7("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
			   out, sizeof(out)), 0);
	T_STREQ(out, "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
	/* the RFC's counter-examples */
	T_EQ(mutf7_to_utf8("&Jjo!", out, sizeof(out)), -1);
	T_EQ(mutf7_to_utf8("&U,BTFw-&ZeVnLIqe-", out, sizeof(out)), -1);
	/* "&" itself, and the RFC 2152 example of a non-BMP character */
	T_EQ(utf8_to_mutf7("Tom & Jerry", out, sizeof(out)), 0);
	T_STREQ(out, "Tom &- Jerry");
	T_EQ(mutf7_to_utf8("Tom &- Jerry", out, sizeof(out)), 0);
	T_STREQ(out, "Tom & Jerry");
	T_EQ(utf8_to_mutf7("Entw\xc3\xbcrfe", out, sizeof(out)), 0);
	T_STREQ(out, "Entw&APw-rfe");
	T_EQ(utf8_to_mutf7("\xf0\x9f\x93\xa7", out, sizeof(out)), 0);	/* U+1F4E7 */
	T_STREQ(out, "&2D3c5w-");
	T_EQ(mutf7_to_utf8("&2D3c5w-", out, sizeof(out)), 0);
	T_STREQ(out, "\xf0\x9f\x93\xa7");
}

static void test_mutf7_strict(void)
{
	char out[64];

	T_EQ(mutf7_to_utf8("&AGE-", out, sizeof(out)), -1);		/* 'a' encoded */
	T_EQ(mutf7_to_utf8("&2D0-", out, sizeof(out)), -1);		/* lone high surrogate */
	T_EQ(mutf7_to_utf8("&3Kc-", out, sizeof(out)), -1);		/* lone low surrogate */
	T_EQ(mutf7_to_utf8("&APw", out, sizeof(out)), -1);		/* unterminated */
	T_EQ(mutf7_to_utf8("&APx-", out, sizeof(out)), -1);		/* pad bits set */
	T_EQ(mutf7_to_utf8("&AAA-", out, sizeof(out)), -1);		/* U+0000 (found by fuzz_mutf7) */
	T_EQ(mutf7_to_utf8("&AAAOXg-", out, sizeof(out)), -1);	/* ... not only alone */
	T_EQ(mailbox_name_check("a&AAA-b", out, sizeof(out)), EX_DATAERR);
	T_EQ(mutf7_to_utf8("&-", out, sizeof(out)), 0);
	T_STREQ(out, "&");
	T_EQ(mutf7_to_utf8("a\xc3\xa9", out, sizeof(out)), -1);		/* 8-bit */
	T_EQ(utf8_to_mutf7("\xc0\xaf", out, sizeof(out)), -1);		/* overlong '/' */
	T_EQ(utf8_to_mutf7("\xed\xa0\x80", out, sizeof(out)), -1);	/* surrogate */
	T_EQ(utf8_to_mutf7("\xe6\x97", out, sizeof(out)), -1);		/* truncated */
	T_EQ(utf8_to_mutf7("Entw\xc3\xbcrfe", out, 8), -2);		/* no room */
	T_EQ(mutf7_to_utf8("Entw&APw-rfe", out, 5), -2);
}

static void test_roundtrip(void)
{
	static const char *const names[] = { "Gel\xc3\xb6scht", "\xe6\x97\xa5\xe6\x9c\xac",
		"a&b", "\xd0\x9f\xd0\xb0\xd0\xbf\xd0\xba\xd0\xb0/\xd0\x9f", "plain" };
	char m[256], u[256];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		T_EQ(utf8_to_mutf7(names[i], m, sizeof(m)), 0);
		T_EQ(mutf7_to_utf8(m, u, sizeof(u)), 0);
		T_STREQ(u, names[i]);
		T_OK(ok(m));
	}
}

static void test_from_utf8(void)
{
	char out[256];

	T_EQ(mailbox_name_from_utf8("inbox/Gel\xc3\xb6scht", out, sizeof(out), err, sizeof(err)), 0);
	T_STREQ(out, "INBOX/Gel&APY-scht");
	T_EQ(mailbox_name_from_utf8("../x", out, sizeof(out), err, sizeof(err)), EX_DATAERR);
	T_OK(strstr(err, "..") != NULL);
	T_EQ(mailbox_name_from_utf8("a\x01z", out, sizeof(out), err, sizeof(err)), EX_DATAERR);
	T_EQ(mailbox_name_from_utf8("bad\xff", out, sizeof(out), err, sizeof(err)), EX_DATAERR);
}

int main(void)
{
	T_RUN(test_valid_names);
	T_RUN(test_refused_names);
	T_RUN(test_inbox);
	T_RUN(test_rfc3501_vectors);
	T_RUN(test_mutf7_strict);
	T_RUN(test_roundtrip);
	T_RUN(test_from_utf8);
	return t_done();
}

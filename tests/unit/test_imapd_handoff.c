/* lib/imapd-handoff.c: what mail-serve-imap hands mail-imap-session. */
#include "imapd-handoff.h"
#include "t.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int memfd_with(const void *buf, size_t len)
{
	int fd = memfd_create("t", 0);

	if (fd >= 0 && len > 0 && write(fd, buf, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	if (fd >= 0)
		lseek(fd, 0, SEEK_SET);
	return fd;
}

static void test_roundtrip(void)
{
	struct config_mailbox boxes[2] = {
		{ .name = "Junk", .special_use = SPECIAL_JUNK, .autocreate = MAILBOX_AUTO_SUBSCRIBE },
		{ .name = "Old Stuff/2020", .special_use = -1, .autocreate = MAILBOX_AUTO_NO },
	};
	struct config cfg = {
		.index_dir = "/var/lib/mailkeep/index",
		.imap = { .max_literal = 1LL << 33, .max_line = 65536, .idle_timeout = 1800,
			  .auth_timeout = 60 },
		.mailboxes = boxes, .nmailboxes = 2,
		.tls_key = "/secret/key.pem",	/* never handed over */
	};
	const char input[] = "b SELECT INBOX\r\nc FETCH 1 (BODY[])\r\n\0binary";
	struct imapd_handoff h = {
		.user = "alice@example.com", .home = "/var/vmail/acct/alice@example.com",
		.peer = "192.0.2.7", .tag = "a1", .verbose = 2, .bytes_in = 123, .bytes_out = 4567,
		.cfg = &cfg, .input = (char *)input, .inputlen = sizeof(input),
	}, r;
	char err[256];
	int fd = memfd_create("t", 0);
	off_t len;
	char *all;

	T_OK(fd >= 0);
	T_EQ(imapd_handoff_write(fd, &h), 0);
	len = lseek(fd, 0, SEEK_END);
	all = calloc(1, (size_t)len + 1);
	T_EQ(pread(fd, all, (size_t)len, 0), len);
	T_OK(memmem(all, (size_t)len, "key.pem", 7) == NULL);
	free(all);
	lseek(fd, 0, SEEK_SET);
	T_EQ(imapd_handoff_read(fd, &r, err, sizeof(err)), 0);
	close(fd);
	T_STREQ(r.user, h.user);
	T_STREQ(r.home, h.home);
	T_STREQ(r.peer, h.peer);
	T_STREQ(r.tag, "a1");
	T_EQ(r.verbose, 2);
	T_EQ(r.bytes_in, 123);
	T_EQ(r.bytes_out, 4567);
	T_STREQ(r.cfg->index_dir, cfg.index_dir);
	T_EQ(r.cfg->imap.max_literal, 1LL << 33);
	T_EQ(r.cfg->imap.max_line, 65536);
	T_EQ(r.cfg->imap.idle_timeout, 1800);
	T_EQ(r.cfg->imap.auth_timeout, 60);
	T_OK(r.cfg->tls_key == NULL);
	T_EQ(r.cfg->nmailboxes, 2);
	T_STREQ(r.cfg->mailboxes[1].name, "Old Stuff/2020");
	T_EQ(r.cfg->mailboxes[0].special_use, SPECIAL_JUNK);
	T_EQ(r.cfg->mailboxes[1].special_use, -1);
	T_EQ(r.cfg->mailboxes[0].autocreate, MAILBOX_AUTO_SUBSCRIBE);
	T_EQ(r.inputlen, sizeof(input));
	T_OK(memcmp(r.input, input, sizeof(input)) == 0);
	imapd_handoff_free(&r);

	/* PREAUTH: no tag, no input */
	h.tag = NULL;
	h.inputlen = 0;
	fd = memfd_create("t", 0);
	T_EQ(imapd_handoff_write(fd, &h), 0);
	lseek(fd, 0, SEEK_SET);
	T_EQ(imapd_handoff_read(fd, &r, err, sizeof(err)), 0);
	T_OK(r.tag == NULL && r.inputlen == 0 && r.input == NULL);
	imapd_handoff_free(&r);
	close(fd);

	/* a value with a newline is refused rather than written */
	h.user = "alice\ntag x";
	fd = memfd_create("t", 0);
	T_EQ(imapd_handoff_write(fd, &h), -1);
	T_EQ(errno, EINVAL);
	close(fd);
}

static void test_refused(void)
{
	static const char *bad[] = {
		"",
		"something else\n",
		"mailkeep-handoff 1\nuser a\nhome /h\npeer p\nimap 1 2 3 4\n",	/* no input */
		"mailkeep-handoff 1\nuser a\nhome /h\npeer p\nimap 1 2 3 4\ninput 5\nab",
		"mailkeep-handoff 1\nuser a\nhome /h\npeer p\nimap 1 2 3 4\nbogus 1\ninput 0\n",
		"mailkeep-handoff 1\nuser a\nhome /h\npeer p\nimap 1 2 3\ninput 0\n",
		"mailkeep-handoff 1\nuser a\nhome /h\npeer p\nimap 1 -2 3 4\ninput 0\n",
		"mailkeep-handoff 1\nuser a\nhome /h\nimap 1 2 3 4\ninput 0\n",	/* no peer */
		"mailkeep-handoff 1\nuser a\nhome /h\npeer p\nimap 1 2 3 4\nmailbox 9 1 X\ninput 0\n",
		"mailkeep-handoff 1\nuser a\nuser b\nhome /h\npeer p\nimap 1 2 3 4\ninput 0\n",
	};
	const char *good = "mailkeep-handoff 1\nuser a\nhome /h\npeer p\nimap 1 2 3 4\n"
			   "mailbox -1 0 A B\ninput 0\n";
	struct imapd_handoff r;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int fd = memfd_with(bad[i], strlen(bad[i]));
		T_OK(fd >= 0);
		T_EQ(imapd_handoff_read(fd, &r, err, sizeof(err)), -1);
		T_OK(err[0] != '\0');
		close(fd);
	}
	{
		int fd = memfd_with(good, strlen(good));
		T_EQ(imapd_handoff_read(fd, &r, err, sizeof(err)), 0);
		T_STREQ(r.cfg->mailboxes[0].name, "A B");
		imapd_handoff_free(&r);
		close(fd);
	}
}

int main(void)
{
	T_RUN(test_roundtrip);
	T_RUN(test_refused);
	return t_done();
}

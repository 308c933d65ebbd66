/* Unit tests for lib/log.c: line format, levels, quoting, journald prefix. */
#include "log.h"
#include "t.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Runs FN with stderr redirected to a temp file; returns what it wrote. */
static char out[4096];

static const char *capture(void (*fn)(void))
{
	char path[] = "/tmp/mk-test-log.XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	ssize_t n;

	dup2(fd, 2);
	fn();
	dup2(saved, 2);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, out, sizeof(out) - 1);
	out[n < 0 ? 0 : n] = '\0';
	close(fd);
	unlink(path);
	return out;
}

static void emit_levels(void)
{
	log_init("/usr/bin/mail-x", 0);
	log_info("start", "user=%s n=%d", "alice", 3);
	log_debug("hidden", "x=1");
	log_err("fail", "why=%s", log_q("disk full"));
}

static void emit_debug(void)
{
	log_init("mail-x", 1);
	log_debug("shown", NULL);
}

static void emit_quiet(void)
{
	log_init("mail-x", -1);
	log_info("hidden", "a=b");
	log_warn("shown", "a=b");
}

static void emit_journal(void)
{
	struct stat st;
	char js[64];

	fstat(2, &st);
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", js, 1);
	log_init("mail-x", 0);
	log_warn("j", "k=v");
	unsetenv("JOURNAL_STREAM");
}

static void test_format(void)
{
	T_STREQ(capture(emit_levels), "mail-x: level=info event=start user=alice n=3\n"
		"mail-x: level=error event=fail why=\"disk full\"\n");
	T_STREQ(capture(emit_debug), "mail-x: level=debug event=shown\n");
	T_STREQ(capture(emit_quiet), "mail-x: level=warn event=shown a=b\n");
	T_STREQ(capture(emit_journal), "<4>level=warn event=j k=v\n");
}

static void test_quote(void)
{
	char big[300];

	T_STREQ(log_q("plain"), "plain");
	T_STREQ(log_q(""), "\"\"");
	T_STREQ(log_q("a b"), "\"a b\"");
	T_STREQ(log_q("a=b"), "\"a=b\"");
	T_STREQ(log_q("q\"\\"), "\"q\\\"\\\\\"");
	T_STREQ(log_q("l1\nl2\x01"), "\"l1\\nl2\\x01\"");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	T_EQ(strlen(log_q(big)), 200 + 2 + 3);
}

int main(void)
{
	T_RUN(test_format);
	T_RUN(test_quote);
	return t_done();
}

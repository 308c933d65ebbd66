/* Unit tests: lib/queue (envelope format, backoff, durable commit, locks) and lib/dsn. */
#include "dsn.h"
#include "queue.h"
#include "t.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

static void sample(struct queue_env *e)
{
	memset(e, 0, sizeof(*e));
	queue_new_id(e->id);
	strcpy(e->user, "alice@example.com");
	strcpy(e->sender, "alice@example.com");
	e->created = 1700000000;
	e->size = 1234;
	e->body_8bit = 1;
	e->attempts = 2;
	e->next_try = 1700000600;
	queue_set_error(e->error, "451 4.3.0 try\r\n again\tlater");
	strcpy(e->rcpts[0].addr, "bob@example.org");
	strcpy(e->rcpts[1].addr, "carol@example.com");
	e->rcpts[1].local = 1;
	e->rcpts[1].state = QUEUE_RCPT_SENT;
	strcpy(e->rcpts[2].addr, "dave@example.net");
	e->rcpts[2].state = QUEUE_RCPT_FAILED;
	queue_set_error(e->rcpts[2].error, "550 5.1.1 no such user");
	e->nrcpts = 3;
}

static void test_format_roundtrip(void)
{
	struct queue_env *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	char buf[8192], err[256];
	long n;

	sample(a);
	T_STREQ(a->error, "451 4.3.0 try again later");
	T_OK(queue_id_valid(a->id));
	n = queue_env_format(a, buf, sizeof(buf));
	T_OK(n > 0);
	T_EQ(queue_env_parse(buf, (size_t)n, b, err, sizeof(err)), 0);
	T_STREQ(b->id, a->id);
	T_STREQ(b->sender, "alice@example.com");
	T_EQ(b->created, 1700000000);
	T_EQ(b->body_8bit, 1);
	T_EQ(b->attempts, 2);
	T_EQ(b->next_try, 1700000600);
	T_STREQ(b->error, a->error);
	T_EQ(b->nrcpts, 3);
	T_EQ(b->rcpts[1].local, 1);
	T_EQ(b->rcpts[1].state, QUEUE_RCPT_SENT);
	T_STREQ(b->rcpts[2].error, "550 5.1.1 no such user");
	T_EQ(queue_env_format(a, buf, 50), -1);
	free(a);
	free(b);
}

static void test_parse_errors(void)
{
	struct queue_env *e = malloc(sizeof(*e));
	char err[256];
	const char *bad[] = {
		"",
		"mailkeep-queue 2\n",
		"mailkeep-queue 1\nid 00\nsender a@b\nrcpt pending remote x@y\n",
		"mailkeep-queue 1\nid 0123456789ABCDEF0123\nsender a@b\n",
		"mailkeep-queue 1\nid 0123456789ABCDEF0123\nsender a@b\nrcpt maybe remote x@y\n",
		"mailkeep-queue 1\nid 0123456789ABCDEF0123\nsender a b\nrcpt pending remote x@y\n",
		"mailkeep-queue 1\nid 0123456789ABCDEF0123\nsender a@b\nrcpt pending remote x@y\nwhat 1\n",
		"mailkeep-queue 1\nid 0123456789ABCDEF0123\nsender a@b\nsize -1\nrcpt pending remote x@y\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		T_EQ(queue_env_parse(bad[i], strlen(bad[i]), e, err, sizeof(err)), EX_DATAERR);
	const char *ok = "mailkeep-queue 1\nid 0123456789ABCDEF0123\nsender a@b\n"
			 "rcpt pending remote x@y\n";
	T_EQ(queue_env_parse(ok, strlen(ok), e, err, sizeof(err)), 0);
	free(e);
}

static void test_backoff(void)
{
	T_EQ(queue_backoff(1), 300);
	T_EQ(queue_backoff(2), 600);
	T_EQ(queue_backoff(3), 1200);
	T_EQ(queue_backoff(6), 9600);
	T_EQ(queue_backoff(7), 14400);
	T_EQ(queue_backoff(1000), 14400);
}

static void test_commit_lock(void)
{
	char tmpl[] = "/tmp/mk-queue.XXXXXX", qdir[4096], err[512], p[4200];
	struct queue_env *e = malloc(sizeof(*e)), *r = malloc(sizeof(*r));
	char **ids;
	size_t n;
	int fd, fd2;

	T_OK(mkdtemp(tmpl) != NULL);
	T_EQ(queue_init(tmpl, qdir, sizeof(qdir), err, sizeof(err)), 0);
	sample(e);
	T_EQ(queue_msg_begin(qdir, e->id, &fd, err, sizeof(err)), 0);
	T_EQ(write(fd, "Subject: x\r\n\r\nhi\r\n", 18), 18);
	/* not queued before the commit */
	T_EQ(queue_ids(qdir, &ids, &n, err, sizeof(err)), 0);
	T_EQ(n, 0);
	queue_ids_free(ids, n);
	T_EQ(queue_msg_commit(qdir, fd, e, err, sizeof(err)), 0);
	T_EQ(queue_ids(qdir, &ids, &n, err, sizeof(err)), 0);
	T_EQ(n, 1);
	T_STREQ(ids[0], e->id);
	queue_ids_free(ids, n);
	snprintf(p, sizeof(p), "%s/tmp/%s.msg", qdir, e->id);
	T_OK(access(p, F_OK) != 0);
	T_EQ(queue_lock(qdir, e->id, &fd, err, sizeof(err)), 0);
	T_EQ(queue_lock(qdir, e->id, &fd2, err, sizeof(err)), EX_TEMPFAIL);
	T_EQ(queue_env_read(qdir, e->id, r, err, sizeof(err)), 0);
	T_EQ(r->nrcpts, 3);
	r->attempts = 3;
	T_EQ(queue_env_write(qdir, r, err, sizeof(err)), 0);
	T_EQ(queue_env_read(qdir, e->id, r, err, sizeof(err)), 0);
	T_EQ(r->attempts, 3);
	close(fd);
	T_EQ(queue_remove(qdir, e->id, err, sizeof(err)), 0);
	T_EQ(queue_env_read(qdir, e->id, r, err, sizeof(err)), EX_NOINPUT);
	/* an aborted message leaves nothing */
	T_EQ(queue_msg_begin(qdir, e->id, &fd, err, sizeof(err)), 0);
	queue_msg_abort(qdir, e->id, fd);
	T_OK(access(p, F_OK) != 0);
	snprintf(p, sizeof(p), "rm -rf '%s'", tmpl);
	T_EQ(system(p), 0);
	free(e);
	free(r);
}

static void test_dsn(void)
{
	struct queue_env *e = malloc(sizeof(*e));
	static const char hdr[] = "From: alice@example.com\r\nSubject: hi\r\n";
	char buf[16384];
	long n;

	sample(e);
	n = dsn_format("example.com", e, hdr, sizeof(hdr) - 1, 1700001000, buf, sizeof(buf));
	T_OK(n > 0);
	buf[n > 0 ? n : 0] = '\0';
	T_OK(strstr(buf, "Content-Type: multipart/report; report-type=delivery-status") != NULL);
	T_OK(strstr(buf, "Final-Recipient: rfc822; dave@example.net\r\nAction: failed\r\n"
			 "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user") != NULL);
	T_OK(strstr(buf, "bob@example.org") == NULL);	/* pending: not reported */
	T_OK(strstr(buf, "Subject: hi") != NULL);
	T_OK(strstr(buf, "To: <alice@example.com>") != NULL);
	T_EQ(dsn_format("example.com", e, hdr, sizeof(hdr) - 1, 1700001000, buf, 100), -1);
	free(e);
}

int main(void)
{
	T_RUN(test_format_roundtrip);
	T_RUN(test_parse_errors);
	T_RUN(test_backoff);
	T_RUN(test_commit_lock);
	T_RUN(test_dsn);
	return t_done();
}

/* Unit tests of batched Maildir delivery (lib/maildir-add.h). */
#include "dotlock.h"
#include "maildir-add.h"
#include "maildir.h"
#include "t.h"
#include "uidlist.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

static int count_files(const char *dir, const char *sub)
{
	char p[512];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	if ((d = opendir(p)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void rm_rf(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	T_EQ(system(cmd), 0);
}

/* A fresh folder with a uidlist, opened and synced. */
static struct maildir_folder *folder_fresh(char *dir)
{
	struct maildir_folder *f = NULL;
	char e[256];

	T_OK(mkdtemp(dir) != NULL);
	T_EQ(maildir_folder_init(dir, e, sizeof(e)), 0);
	T_EQ(maildir_folder_open(dir, &f, e, sizeof(e)), 0);
	if (f != NULL)
		T_EQ(maildir_folder_sync(f, 0, e, sizeof(e)), 0);
	return f;
}

static int add_one(struct maildir_add *b, const char *body, unsigned flags, char *fname,
		   size_t fnamelen)
{
	char e[256];
	int rc;

	if ((rc = maildir_add_begin(b, e, sizeof(e))) != 0 ||
	    (rc = maildir_add_write(b, body, strlen(body), e, sizeof(e))) != 0)
		return rc;
	return maildir_add_end(b, flags, 0, 0, fname, fnamelen, e, sizeof(e));
}

/* Sizes, flags and mtime; nothing visible before the add; unended and unadded files go. */
static void test_files(void)
{
	char dir[] = "/tmp/mk-add.XXXXXX", p[512], fname[300], e[256];
	struct maildir_folder *f = folder_fresh(dir);
	struct maildir_add *b;
	struct maildir_name mn;
	struct stat sb;
	uint32_t uid = 0;

	T_OK((b = maildir_add_new(dir)) != NULL);
	T_EQ(maildir_add_begin(b, e, sizeof(e)), 0);
	T_EQ(maildir_add_write(b, "a\nb\r", 4, e, sizeof(e)), 0);	/* CR LF split over writes */
	T_EQ(maildir_add_write(b, "\nc\n", 3, e, sizeof(e)), 0);
	T_EQ(maildir_add_end(b, MAILDIR_FLAG_SEEN, 1u << 2, 1700000000, fname, sizeof(fname), e,
			     sizeof(e)), 0);
	T_EQ(maildir_name_parse(fname, strlen(fname), &mn), 0);
	T_EQ(mn.size, 7);
	T_EQ(mn.vsize, 9);	/* two bare LFs; the CR LF split over two writes is one */
	T_EQ(mn.flags, MAILDIR_FLAG_SEEN);
	T_EQ(mn.keywords, 1u << 2);
	T_EQ(maildir_add_pending(b), 1);
	T_EQ(maildir_add_pending_bytes(b), 7);
	snprintf(p, sizeof(p), "%s/cur/%s", dir, fname);
	T_OK(stat(p, &sb) != 0);	/* not visible before the add */
	T_EQ(count_files(dir, "tmp"), 1);
	T_EQ(maildir_add_begin(b, e, sizeof(e)), 0);	/* a second one, never ended */
	T_EQ(maildir_add_write(b, "x\n", 2, e, sizeof(e)), 0);
	maildir_add_abort(b);
	T_EQ(maildir_folder_add_files(f, b, &uid, e, sizeof(e)), 0);
	T_EQ(uid, 1);
	T_EQ(maildir_add_pending(b), 0);
	T_OK(stat(p, &sb) == 0 && sb.st_size == 7 && sb.st_mtime == 1700000000);
	T_EQ(count_files(dir, "tmp"), 0);
	T_EQ(maildir_add_begin(b, e, sizeof(e)), 0);	/* freed unadded: removed */
	T_EQ(maildir_add_write(b, "y\n", 2, e, sizeof(e)), 0);
	T_EQ(maildir_add_end(b, 0, 0, 0, fname, sizeof(fname), e, sizeof(e)), 0);
	maildir_add_free(b);
	T_EQ(count_files(dir, "tmp"), 0);
	T_EQ(count_files(dir, "new"), 0);
	maildir_folder_free(f);
	rm_rf(dir);
}

/* UIDs follow the existing ones, in the order the messages were ended, in one append. */
static void test_uids_in_order(void)
{
	char dir[] = "/tmp/mk-add.XXXXXX", names[5][300], e[256], p[512];
	struct maildir_folder *f = folder_fresh(dir);
	struct maildir_add *b = maildir_add_new(dir);
	struct uidlist *ul = NULL;
	uint32_t uids[5];
	size_t i;
	FILE *fp;

	/* two messages numbered the ordinary way first */
	for (i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s/new/100%zu.M1P1Q%zu.test", dir, i, i);
		T_OK((fp = fopen(p, "w")) != NULL);
		if (fp != NULL) {
			fputs("Subject: old\n\nold\n", fp);
			fclose(fp);
		}
	}
	T_EQ(maildir_folder_sync(f, MAILDIR_SYNC_FORCE, e, sizeof(e)), 0);
	T_EQ(f->nmsgs, 2);
	for (i = 0; i < 5; i++)
		T_EQ(add_one(b, "Subject: new\n\nbody\n", i % 2 ? MAILDIR_FLAG_SEEN : 0, names[i],
			     sizeof(names[i])), 0);
	T_EQ(maildir_folder_add_files(f, b, uids, e, sizeof(e)), 0);
	for (i = 0; i < 5; i++)
		T_EQ(uids[i], 3 + i);
	T_EQ(count_files(dir, "new"), 2 + 3);
	T_EQ(count_files(dir, "cur"), 2);
	T_EQ(uidlist_read(dir, &ul, e, sizeof(e)), 0);
	T_OK(ul != NULL);
	if (ul != NULL) {
		T_EQ(ul->nrecs, 7);
		T_EQ(ul->next_uid, 8);
		for (i = 0; i < 5 && i + 2 < ul->nrecs; i++) {
			T_EQ(ul->recs[i + 2].uid, 3 + i);
			T_STREQ(ul->recs[i + 2].fname, names[i]);
		}
	}
	uidlist_free(ul);
	/* a fresh look at the folder finds them under those UIDs */
	T_EQ(maildir_folder_sync(f, 0, e, sizeof(e)), 0);
	T_EQ(f->nmsgs, 7);
	for (i = 0; i < 5; i++) {
		const struct maildir_msg *m = maildir_folder_find(f, 3 + (uint32_t)i);

		T_OK(m != NULL && strcmp(m->fname, names[i]) == 0);
	}
	maildir_add_free(b);
	maildir_folder_free(f);
	rm_rf(dir);
}

/*
 * A writer killed before the add leaves only tmp/ files, which no reader
 * sees; files made visible but not numbered (killed between the renames
 * and the uidlist append) get UIDs from the next sync, and later batches
 * never reuse a UID.
 */
static void test_crash(void)
{
	char dir[] = "/tmp/mk-add.XXXXXX", e[256], name[300], to[600];
	struct maildir_folder *f = folder_fresh(dir);
	struct maildir_add *b;
	FILE *fp;
	uint32_t uids[2];
	pid_t pid;
	int st = 0;
	size_t i;

	pid = fork();
	if (pid == 0) {
		struct maildir_add *cb = maildir_add_new(dir);

		for (i = 0; i < 3; i++)
			if (add_one(cb, "Subject: lost\n\nx\n", 0, name, sizeof(name)) != 0)
				_exit(1);
		_exit(0);	/* killed before maildir_folder_add_files() */
	}
	T_OK(pid > 0);
	T_EQ(waitpid(pid, &st, 0), pid);
	T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	T_EQ(count_files(dir, "tmp"), 3);
	T_EQ(maildir_folder_sync(f, MAILDIR_SYNC_FORCE, e, sizeof(e)), 0);
	T_EQ(f->nmsgs, 0);	/* never visible */

	/* renamed, not numbered: as a kill between steps 3 and 4 leaves a file */
	snprintf(to, sizeof(to), "%s/new/1.M1P1Q1.half", dir);
	T_OK((fp = fopen(to, "w")) != NULL);
	if (fp != NULL) {
		fputs("Subject: half\n\nx\n", fp);
		fclose(fp);
	}
	b = maildir_add_new(dir);
	T_EQ(add_one(b, "Subject: ours\n\nx\n", 0, name, sizeof(name)), 0);
	T_EQ(maildir_folder_add_files(f, b, uids, e, sizeof(e)), 0);
	T_EQ(maildir_folder_sync(f, 0, e, sizeof(e)), 0);
	T_EQ(f->nmsgs, 2);	/* ours (UID 1) and the half-done one */
	T_EQ(uids[0], 1);
	T_OK(f->nmsgs == 2 && f->msgs[1].uid == 2);
	T_EQ(add_one(b, "Subject: more\n\nx\n", 0, name, sizeof(name)), 0);
	T_EQ(maildir_folder_add_files(f, b, uids, e, sizeof(e)), 0);
	T_EQ(uids[0], 3);
	maildir_add_free(b);
	maildir_folder_free(f);
	rm_rf(dir);
}

/* A lock that stays busy: nothing becomes visible, the batch is dropped, the uidlist kept. */
static void test_lock_busy(void)
{
	char dir[] = "/tmp/mk-add.XXXXXX", e[256], p[600], name[300];
	struct maildir_folder *f = folder_fresh(dir);
	struct maildir_add *b = maildir_add_new(dir);
	struct dotlock *lk = NULL;
	struct uidlist *ul = NULL;
	uint32_t uid = 7;
	pid_t pid;
	int st = 0, ready[2];

	T_EQ(add_one(b, "Subject: x\n\nx\n", 0, name, sizeof(name)), 0);
	/* the lock is held by another live process on this host */
	T_EQ(pipe(ready), 0);
	pid = fork();
	if (pid == 0) {
		char c = 1;

		snprintf(p, sizeof(p), "%s/" UIDLIST_NAME, dir);
		if (dotlock_take(p, 5, DOTLOCK_STALE_TIMEOUT, &lk, e, sizeof(e)) != 0)
			_exit(1);
		if (write(ready[1], &c, 1) != 1)
			_exit(1);
		sleep(5);
		_exit(0);
	}
	{
		char c;

		T_EQ(read(ready[0], &c, 1), 1);
	}
	f->lock_wait = 0;
	T_EQ(maildir_folder_add_files(f, b, &uid, e, sizeof(e)), EX_TEMPFAIL);
	T_EQ(uid, 0);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	T_EQ(maildir_add_pending(b), 0);
	T_EQ(count_files(dir, "tmp"), 0);
	T_EQ(count_files(dir, "new"), 0);
	T_EQ(uidlist_read(dir, &ul, e, sizeof(e)), 0);
	T_OK(ul != NULL && ul->nrecs == 0);
	uidlist_free(ul);
	close(ready[0]);
	close(ready[1]);
	maildir_add_free(b);
	maildir_folder_free(f);
	rm_rf(dir);
}

/* Flag changes under one lock: renamed into cur/, a file moved by others found again. */
static void test_flags_many(void)
{
	char dir[] = "/tmp/mk-add.XXXXXX", names[4][300], e[256], from[700], to[700];
	struct maildir_folder *f = folder_fresh(dir);
	struct maildir_add *b = maildir_add_new(dir);
	struct maildir_flag_change ch[4];
	const struct maildir_msg *m;
	struct maildir_name mn;
	uint32_t uids[4];
	size_t i, nbad = 9;

	for (i = 0; i < 4; i++)
		T_EQ(add_one(b, "Subject: f\n\nx\n", 0, names[i], sizeof(names[i])), 0);
	T_EQ(maildir_folder_add_files(f, b, uids, e, sizeof(e)), 0);
	T_EQ(maildir_folder_sync(f, 0, e, sizeof(e)), 0);
	T_EQ(f->nmsgs, 4);
	/* someone else (a session) claims message 2 into cur/ meanwhile */
	snprintf(from, sizeof(from), "%s/new/%s", dir, names[1]);
	snprintf(to, sizeof(to), "%s/cur/%s:2,", dir, names[1]);
	T_EQ(rename(from, to), 0);
	for (i = 0; i < 3; i++) {
		ch[i].uid = uids[i];
		ch[i].flags = MAILDIR_FLAG_SEEN | (i == 2 ? MAILDIR_FLAG_FLAGGED : 0);
		ch[i].keywords = i == 0 ? 1u << 1 : 0;
	}
	ch[3].uid = 999;	/* no such message */
	ch[3].flags = MAILDIR_FLAG_SEEN;
	ch[3].keywords = 0;
	T_OK(maildir_folder_set_flags_many(f, ch, 4, &nbad, e, sizeof(e)) != 0);
	T_EQ(nbad, 1);
	T_EQ(count_files(dir, "new"), 1);
	T_EQ(count_files(dir, "cur"), 3);
	for (i = 0; i < 3; i++) {
		m = maildir_folder_find(f, uids[i]);
		T_OK(m != NULL && m->flags == ch[i].flags && m->keywords == ch[i].keywords &&
		     !m->in_new);
	}
	/* what is on disk says the same */
	T_EQ(maildir_folder_sync(f, MAILDIR_SYNC_FORCE, e, sizeof(e)), 0);
	for (i = 0; i < 3; i++) {
		m = maildir_folder_find(f, uids[i]);
		T_OK(m != NULL && maildir_name_parse(m->fname, strlen(m->fname), &mn) == 0 &&
		     mn.flags == ch[i].flags && mn.keywords == ch[i].keywords);
	}
	m = maildir_folder_find(f, uids[3]);
	T_OK(m != NULL && m->in_new && m->flags == 0);
	maildir_add_free(b);
	maildir_folder_free(f);
	rm_rf(dir);
}

int main(void)
{
	T_RUN(test_files);
	T_RUN(test_uids_in_order);
	T_RUN(test_crash);
	T_RUN(test_lock_busy);
	T_RUN(test_flags_many);
	return t_done();
}

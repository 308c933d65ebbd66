/*
 * Maildir store: file names (ours, dovecot's, mbsync's), delivery, UID
 * assignment, flags, keywords, expunge, and parallel writers.
 *
 * Also a helper for tests/mail-folders.bats (no other binary exists for
 * writing messages, and mail-folders has no delivery command on purpose):
 *   test_maildir deliver DIR COUNT [assign]   COUNT deliveries into DIR
 *   test_maildir flagger DIR SECONDS          toggles \Seen on random UIDs
 */
#include "fsutil.h"
#include "maildir.h"
#include "maildir-index.h"
#include "maildir-name.h"
#include "uidlist.h"
#include "t.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

static char err[512];

static void test_name_parse(void)
{
	struct maildir_name mn;
	const char *n;

	n = "1795696725.M320851P10367.vm,S=18,W=21";		/* dovecot, in new/ */
	T_EQ(maildir_name_parse(n, strlen(n), &mn), 0);
	T_EQ(mn.base_len, strlen(n));
	T_EQ(mn.has_info, 0);
	T_EQ(mn.size, 18);
	T_EQ(mn.vsize, 21);
	T_EQ(mn.mbsync_uid, -1);

	n = "1491941793.M41850P8566V0000000000000015I0000000004F3030E_0.mx1.example.com,S=10956:2,STln";
	T_EQ(maildir_name_parse(n, strlen(n), &mn), 0);
	T_EQ(mn.size, 10956);
	T_EQ(mn.vsize, -1);				/* missing W= */
	T_EQ(mn.flags, MAILDIR_FLAG_SEEN | MAILDIR_FLAG_TRASHED);
	T_EQ(mn.keywords, (1u << ('l' - 'a')) | (1u << ('n' - 'a')));
	T_EQ(n[mn.base_len], ':');

	n = "1700000000.12345_1.host,U=42:2,RS";		/* mbsync, no S= */
	T_EQ(maildir_name_parse(n, strlen(n), &mn), 0);
	T_EQ(mn.mbsync_uid, 42);
	T_EQ(mn.size, -1);
	T_EQ(mn.flags, MAILDIR_FLAG_REPLIED | MAILDIR_FLAG_SEEN);

	n = "1035478339.27041_118.foo.org,S=1000,W=1030:2,S,extra";
	T_EQ(maildir_name_parse(n, strlen(n), &mn), 0);
	T_EQ(mn.flags, MAILDIR_FLAG_SEEN);
	T_STREQ(n + mn.extra_off, ",extra");

	n = "123.abc,S=12x";					/* malformed S= ignored */
	T_EQ(maildir_name_parse(n, strlen(n), &mn), 0);
	T_EQ(mn.size, -1);

	T_EQ(maildir_name_parse("", 0, &mn), -1);
	T_EQ(maildir_name_parse(".hidden", 7, &mn), -1);
	T_EQ(maildir_name_parse("a/b", 3, &mn), -1);
	T_EQ(maildir_name_parse(":2,S", 4, &mn), -1);
	T_EQ(maildir_name_parse("a\nb", 3, &mn), -1);
	/* the parser reads only len bytes */
	T_EQ(maildir_name_parse("abc:2,S", 3, &mn), 0);
	T_EQ(mn.has_info, 0);
}

static void test_name_flags(void)
{
	char out[300], base[300];
	struct maildir_name mn;

	T_EQ(maildir_name_with_flags("1.M2P3Q4.h,S=5,W=6", MAILDIR_FLAG_SEEN | MAILDIR_FLAG_DRAFT |
				     MAILDIR_FLAG_FLAGGED, (1u << 0) | (1u << 25), out, sizeof(out)), 0);
	T_STREQ(out, "1.M2P3Q4.h,S=5,W=6:2,DFSaz");
	T_EQ(maildir_name_with_flags("1.h:2,S,keep", 0, 0, out, sizeof(out)), 0);
	T_STREQ(out, "1.h:2,,keep");
	T_EQ(maildir_name_with_flags("1.h:2,ST", MAILDIR_FLAG_REPLIED, 0, out, sizeof(out)), 0);
	T_STREQ(out, "1.h:2,R");
	T_EQ(maildir_name_new_base(base, sizeof(base), 100, 103), 0);
	T_EQ(maildir_name_parse(base, strlen(base), &mn), 0);
	T_EQ(mn.size, 100);
	T_EQ(mn.vsize, 103);
	T_OK(strstr(base, ".M") != NULL && strstr(base, "P") != NULL && strstr(base, "Q") != NULL);
	maildir_name_flags_str(MAILDIR_FLAG_SEEN | MAILDIR_FLAG_REPLIED, out, sizeof(out));
	T_STREQ(out, "\\Answered \\Seen");
}

static void mkfolder(char *dir)
{
	strcpy(dir, "/tmp/mk-maildir.XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	if (maildir_folder_init(dir, err, sizeof(err)) != 0) {
		printf("# init: %s\n", err);
		abort();
	}
}

static void rmtree(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# rm failed\n");
}

static int deliver(const char *dir, const char *text, const struct maildir_commit *c,
		   uint32_t *uid, char *fname)
{
	struct maildir_delivery *d;
	int r = maildir_delivery_begin(dir, &d, err, sizeof(err));

	if (r != 0)
		return r;
	if ((r = maildir_delivery_write(d, text, strlen(text), err, sizeof(err))) != 0) {
		maildir_delivery_abort(d);
		return r;
	}
	return maildir_delivery_commit(d, c, uid, fname, fname ? 256 : 0, err, sizeof(err));
}

static int count_dir(const char *dir, const char *sub)
{
	char p[512];
	DIR *d;
	struct dirent *de;
	int n = 0;

	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	if ((d = opendir(p)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void test_deliver_and_sync(void)
{
	char dir[64], fname[256];
	struct maildir_commit plain = { 0 }, seen = { .flags = MAILDIR_FLAG_SEEN, .assign_uid = 1 };
	struct maildir_folder *f;
	struct maildir_status st;
	const struct maildir_msg *m;
	uint32_t uid = 0, uv;

	mkfolder(dir);
	T_EQ(deliver(dir, "Subject: a\n\nbody\n", &plain, &uid, fname), 0);
	T_EQ(uid, 0);					/* no UID without assign_uid */
	T_OK(strstr(fname, ",S=17,W=20") != NULL);	/* 3 LFs count as CRLF */
	T_EQ(count_dir(dir, "new"), 1);
	T_EQ(count_dir(dir, "tmp"), 0);
	T_EQ(deliver(dir, "Subject: b\r\n\r\nx\r\n", &seen, &uid, fname), 0);
	T_EQ(uid, 1);	/* a has no UID yet: b, numbered at delivery, comes first */
	T_OK(strstr(fname, ",S=17,W=17:2,S") != NULL);

	T_EQ(maildir_folder_open(dir, &f, err, sizeof(err)), 0);
	T_EQ(maildir_folder_sync(f, 0, err, sizeof(err)), 0);
	T_EQ(f->nmsgs, 2);
	T_EQ(f->msgs[0].uid, 1);
	T_EQ(f->msgs[1].uid, 2);	/* a got the next one at sync */
	T_OK(f->msgs[1].in_new);
	maildir_folder_status(f, &st);
	T_EQ(st.messages, 2);
	T_EQ(st.unseen, 1);
	T_EQ(st.recent, 1);
	T_EQ(st.uidnext, 3);
	T_EQ(st.size, 34);
	uv = st.uidvalidity;
	T_OK(uv != 0);

	/* flags by rename, new/ -> cur/ */
	T_EQ(maildir_msg_set_flags(f, 2, MAILDIR_FLAG_SEEN | MAILDIR_FLAG_FLAGGED, 1u << 2,
				   err, sizeof(err)), 0);
	m = maildir_folder_find(f, 2);
	T_OK(m != NULL && !m->in_new && strstr(m->fname, ":2,FSc") != NULL);
	T_EQ(count_dir(dir, "new"), 0);
	/* expunge the last message, then a new one: UID 2 is not reused */
	T_EQ(maildir_msg_expunge(f, 2, err, sizeof(err)), 0);
	T_OK(maildir_folder_find(f, 2) == NULL);
	T_EQ(maildir_folder_sync(f, MAILDIR_SYNC_FORCE, err, sizeof(err)), 0);
	T_EQ(deliver(dir, "c\n", &plain, NULL, NULL), 0);
	T_EQ(maildir_folder_sync(f, MAILDIR_SYNC_FORCE, err, sizeof(err)), 0);
	T_EQ(f->nmsgs, 2);
	T_EQ(f->msgs[1].uid, 3);
	T_EQ(f->uidvalidity, uv);	/* never changes */
	/* a session's sync moves new/ to cur/ */
	T_EQ(maildir_folder_sync(f, MAILDIR_SYNC_MOVE_NEW, err, sizeof(err)), 0);
	T_EQ(count_dir(dir, "new"), 0);
	T_EQ(count_dir(dir, "cur"), 2);
	T_EQ(f->msgs[1].uid, 3);
	maildir_folder_free(f);
	maildir_folder_free(NULL);
	maildir_delivery_abort(NULL);
	rmtree(dir);
}

static void test_open_follows_rename(void)
{
	char dir[64], fname[256], from[600], to[600];
	struct maildir_commit plain = { .assign_uid = 1 };
	struct maildir_folder *f;
	uint32_t uid;
	int fd;

	mkfolder(dir);
	T_EQ(deliver(dir, "hello\n", &plain, &uid, fname), 0);
	T_EQ(maildir_folder_open(dir, &f, err, sizeof(err)), 0);
	T_EQ(maildir_folder_sync(f, 0, err, sizeof(err)), 0);
	/* another MUA marks it seen behind our back */
	snprintf(from, sizeof(from), "%s/new/%s", dir, fname);
	snprintf(to, sizeof(to), "%s/cur/%s:2,S", dir, fname);
	T_EQ(rename(from, to), 0);
	T_EQ(maildir_msg_open(f, uid, &fd, err, sizeof(err)), 0);
	T_OK(fd >= 0);
	if (fd >= 0)
		close(fd);
	T_EQ(maildir_folder_find(f, uid)->flags, MAILDIR_FLAG_SEEN);
	/* and the next sync keeps its UID */
	T_EQ(maildir_folder_sync(f, MAILDIR_SYNC_FORCE, err, sizeof(err)), 0);
	T_EQ(f->nmsgs, 1);
	T_EQ(f->msgs[0].uid, uid);
	maildir_folder_free(f);
	rmtree(dir);
}

static void test_keywords(void)
{
	char dir[64];
	struct maildir_keywords kw;
	int idx = -1;

	mkfolder(dir);
	T_EQ(maildir_keywords_ensure(dir, "$Junk", &idx, err, sizeof(err)), 0);
	T_EQ(idx, 0);
	T_EQ(maildir_keywords_ensure(dir, "$NonJunk", &idx, err, sizeof(err)), 0);
	T_EQ(idx, 1);
	T_EQ(maildir_keywords_ensure(dir, "$Junk", &idx, err, sizeof(err)), 0);
	T_EQ(idx, 0);
	T_EQ(maildir_keywords_read(dir, &kw, err, sizeof(err)), 0);
	T_EQ(maildir_keywords_lookup(&kw, "$NonJunk"), 1);
	T_EQ(maildir_keywords_lookup(&kw, "nope"), -1);
	maildir_keywords_clear(&kw);
	T_EQ(maildir_keywords_parse("0 $Junk\n27 $Far\n3 $Label1\n", 26, &kw, err, sizeof(err)), 0);
	T_STREQ(kw.names[3], "$Label1");
	maildir_keywords_clear(&kw);
	T_EQ(maildir_keywords_parse("zero $Junk\n", 11, &kw, err, sizeof(err)), EX_DATAERR);
	T_EQ(maildir_keywords_ensure(dir, "bad word", &idx, err, sizeof(err)), EX_DATAERR);
	rmtree(dir);
}

/* A corrupt uidlist stops everything with EX_DATAERR and changes nothing. */
static void test_corrupt_uidlist(void)
{
	char dir[64], path[600];
	struct maildir_commit plain = { 0 }, assign = { .assign_uid = 1 };
	struct maildir_folder *f;
	struct stat before, after;
	FILE *fp;

	mkfolder(dir);
	T_EQ(deliver(dir, "x\n", &plain, NULL, NULL), 0);
	snprintf(path, sizeof(path), "%s/" UIDLIST_NAME, dir);
	fp = fopen(path, "w");
	fputs("3 V123 N2\n1 :trunc", fp);
	fclose(fp);
	stat(path, &before);
	T_EQ(maildir_folder_open(dir, &f, err, sizeof(err)), 0);
	T_EQ(maildir_folder_sync(f, 0, err, sizeof(err)), EX_DATAERR);
	T_OK(strstr(err, "line 2") != NULL);
	T_EQ(deliver(dir, "y\n", &assign, NULL, NULL), EX_DATAERR);
	T_EQ(count_dir(dir, "new"), 1);		/* y was not left behind */
	T_EQ(count_dir(dir, "tmp"), 0);
	stat(path, &after);
	T_EQ(after.st_size, before.st_size);
	T_EQ(after.st_ino, before.st_ino);
	snprintf(path, sizeof(path), "%s/" UIDLIST_LOCK_NAME, dir);
	T_EQ(access(path, F_OK), -1);		/* lock released */
	maildir_folder_free(f);
	rmtree(dir);
}

/* A lock left by a dead process is overridden at once. */
static void test_stale_lock(void)
{
	char dir[64], path[600], host[256];
	struct maildir_commit assign = { .assign_uid = 1 };
	pid_t pid = fork();
	FILE *fp;
	uint32_t uid = 0;

	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	mkfolder(dir);
	gethostname(host, sizeof(host));
	snprintf(path, sizeof(path), "%s/" UIDLIST_LOCK_NAME, dir);
	fp = fopen(path, "w");
	fprintf(fp, "%ld:%s", (long)pid, host);
	fclose(fp);
	T_EQ(deliver(dir, "z\n", &assign, &uid, NULL), 0);
	T_EQ(uid, 1);
	T_EQ(access(path, F_OK), -1);
	rmtree(dir);
}

/* ---- parallel writers ---- */

static int run_deliveries(const char *dir, int n, int assign)
{
	struct maildir_commit c = { .assign_uid = assign };
	char text[128];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(text, sizeof(text), "Subject: %d/%d\n\nfrom %ld\n", i, n, (long)getpid());
		if (deliver(dir, text, &c, NULL, NULL) != 0) {
			fprintf(stderr, "deliver: %s\n", err);
			return 1;
		}
	}
	return 0;
}

/* Renames flags of random messages while others deliver and sync. */
static int run_flagger(const char *dir, int seconds)
{
	struct maildir_folder *f;
	time_t end = time(NULL) + seconds;
	int r;

	if (maildir_folder_open(dir, &f, err, sizeof(err)) != 0)
		return 1;
	srand((unsigned)getpid());
	while (time(NULL) < end) {
		if ((r = maildir_folder_sync(f, 0, err, sizeof(err))) != 0) {
			fprintf(stderr, "flagger sync: %s\n", err);
			maildir_folder_free(f);
			return 1;
		}
		if (f->nmsgs > 0) {
			const struct maildir_msg *m = &f->msgs[(size_t)rand() % f->nmsgs];

			r = maildir_msg_set_flags(f, m->uid, m->flags ^ MAILDIR_FLAG_SEEN,
						  m->keywords, err, sizeof(err));
			if (r != 0 && r != EX_NOINPUT) {
				fprintf(stderr, "flagger: %s\n", err);
				maildir_folder_free(f);
				return 1;
			}
		}
	}
	maildir_folder_free(f);
	return 0;
}

static void test_parallel_writers(void)
{
	enum { WRITERS = 4, EACH = 200 };
	char dir[64], path[600];
	pid_t pids[WRITERS + 1];
	struct maildir_folder *f;
	struct uidlist *ul;
	int i, status, failed = 0;
	size_t k;

	mkfolder(dir);
	for (i = 0; i <= WRITERS; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			/* two writers give UIDs at delivery, two leave it to syncs */
			_exit(i == WRITERS ? run_flagger(dir, 3) : run_deliveries(dir, EACH, i % 2));
		}
	}
	for (i = 0; i <= WRITERS; i++) {
		waitpid(pids[i], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	}
	T_EQ(failed, 0);
	T_EQ(maildir_folder_open(dir, &f, err, sizeof(err)), 0);
	T_EQ(maildir_folder_sync(f, MAILDIR_SYNC_FORCE, err, sizeof(err)), 0);
	T_EQ(f->nmsgs, WRITERS * EACH);				/* nothing lost */
	T_EQ(count_dir(dir, "new") + count_dir(dir, "cur"), WRITERS * EACH);
	for (k = 1; k < f->nmsgs; k++)
		T_OK(f->msgs[k].uid > f->msgs[k - 1].uid);	/* unique */
	T_EQ(uidlist_read(dir, &ul, err, sizeof(err)), 0);
	T_OK(ul != NULL);
	if (ul != NULL) {
		T_EQ(ul->nrecs, WRITERS * EACH);
		T_EQ(ul->next_uid, WRITERS * EACH + 1);		/* no UID skipped or reused */
	}
	uidlist_free(ul);
	snprintf(path, sizeof(path), "%s/" UIDLIST_LOCK_NAME, dir);
	T_EQ(access(path, F_OK), -1);
	maildir_folder_free(f);
	rmtree(dir);
}


/* ---- the persistent index ---- */

/* Sets the mtime of DIR/NAME SECS seconds back (ctime moves to now). */
static void age(const char *dir, const char *name, int secs)
{
	char p[600];
	struct timespec ts[2];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= secs;
	ts[1] = ts[0];
	utimensat(AT_FDCWD, p, ts, 0);
}

static void age_folder(const char *dir, int secs)
{
	age(dir, "new", secs);
	age(dir, "cur", secs);
	age(dir, UIDLIST_NAME, secs);
}

/*
 * Writes F's snapshot with its first message's flags replaced by FLAGS:
 * a fresh struct that shows FLAGS read the index instead of the disk.
 */
static void write_fake_index(const struct maildir_folder *f, unsigned flags)
{
	struct maildir_index_hdr h = { 0 };
	struct maildir_msg *m = malloc(f->nmsgs * sizeof(*m));
	char path[600];
	void *buf;
	size_t len;
	FILE *fp;

	memcpy(m, f->msgs, f->nmsgs * sizeof(*m));
	m[0].flags = flags;
	h.new_st = f->seen_new;
	h.cur_st = f->seen_cur;
	h.ul_st = f->seen_ul;
	h.scan_started = f->synced_at;
	h.uidvalidity = f->uidvalidity;
	h.next_uid = f->next_uid;
	T_EQ(maildir_index_format(&h, f->path, m, f->nmsgs, &buf, &len), 0);
	snprintf(path, sizeof(path), "%s/" MAILDIR_INDEX_NAME, f->path);
	fp = fopen(path, "w");
	fwrite(buf, 1, len, fp);
	fclose(fp);
	free(buf);
	free(m);
}

/* Flags of UID as a fresh process sees them. */
static int fresh_flags(const char *dir, uint32_t uid)
{
	struct maildir_folder *g;
	const struct maildir_msg *m;
	int fl = -1;

	if (maildir_folder_open(dir, &g, err, sizeof(err)) != 0)
		return -2;
	if (maildir_folder_sync(g, 0, err, sizeof(err)) == 0 &&
	    (m = maildir_folder_find(g, uid)) != NULL)
		fl = (int)m->flags;
	maildir_folder_free(g);
	return fl;
}

static void test_index_reuse(void)
{
	char dir[64], path[600], from[700], to[700];
	struct maildir_commit assign = { .assign_uid = 1 };
	struct maildir_folder *f, *g;
	struct stat st;
	uint32_t uid1 = 0;
	char fname[256];
	int i;

	mkfolder(dir);
	T_EQ(deliver(dir, "one\n", &assign, &uid1, fname), 0);
	for (i = 0; i < 3; i++)
		T_EQ(deliver(dir, "more\n", &assign, NULL, NULL), 0);
	age_folder(dir, 10);
	T_EQ(maildir_folder_open(dir, &f, err, sizeof(err)), 0);
	T_EQ(maildir_folder_sync(f, 0, err, sizeof(err)), 0);
	T_EQ(f->nmsgs, 4);
	snprintf(path, sizeof(path), "%s/" MAILDIR_INDEX_NAME, dir);
	T_EQ(stat(path, &st), 0);

	/* a fresh struct gets the same messages, from the index */
	T_EQ(maildir_folder_open(dir, &g, err, sizeof(err)), 0);
	T_EQ(maildir_folder_sync(g, 0, err, sizeof(err)), 0);
	T_EQ(g->nmsgs, 4);
	T_EQ(g->next_uid, f->next_uid);
	T_EQ(g->uidvalidity, f->uidvalidity);
	for (i = 0; i < 4 && g->nmsgs == 4; i++) {
		T_EQ(g->msgs[i].uid, f->msgs[i].uid);
		T_STREQ(g->msgs[i].fname, f->msgs[i].fname);
		T_EQ(g->msgs[i].size, f->msgs[i].size);
	}
	/* names from the index can be changed and freed like scanned ones */
	T_EQ(maildir_msg_set_flags(g, uid1, MAILDIR_FLAG_SEEN, 0, err, sizeof(err)), 0);
	T_EQ(maildir_msg_expunge(g, g->msgs[1].uid, err, sizeof(err)), 0);
	maildir_folder_free(g);
	T_EQ(maildir_folder_sync(f, MAILDIR_SYNC_FORCE, err, sizeof(err)), 0);
	T_EQ(f->nmsgs, 3);
	age_folder(dir, 10);
	T_EQ(maildir_folder_sync(f, MAILDIR_SYNC_FORCE, err, sizeof(err)), 0);

	write_fake_index(f, MAILDIR_FLAG_FLAGGED);
	T_EQ(fresh_flags(dir, f->msgs[0].uid), MAILDIR_FLAG_FLAGGED);	/* read the index */

	/* another MUA renames a file (no uidlist change): cur/ changed, rescan */
	snprintf(from, sizeof(from), "%s/cur/%s", dir, f->msgs[0].fname);
	snprintf(to, sizeof(to), "%s/cur/%.*s:2,RS", dir,
		 (int)strcspn(f->msgs[0].fname, ":"), f->msgs[0].fname);
	T_EQ(rename(from, to), 0);
	T_EQ(fresh_flags(dir, f->msgs[0].uid), MAILDIR_FLAG_REPLIED | MAILDIR_FLAG_SEEN);

	/* ... even when it sets cur/'s mtime back: the ctime moved */
	T_EQ(maildir_folder_sync(f, MAILDIR_SYNC_FORCE, err, sizeof(err)), 0);
	age_folder(dir, 10);
	T_EQ(maildir_folder_sync(f, MAILDIR_SYNC_FORCE, err, sizeof(err)), 0);
	write_fake_index(f, MAILDIR_FLAG_FLAGGED);
	T_EQ(rename(to, from), 0);
	age(dir, "cur", 10);
	T_EQ(fresh_flags(dir, f->msgs[0].uid), MAILDIR_FLAG_SEEN);
	maildir_folder_free(f);
	rmtree(dir);
}

/* A snapshot whose scan began within a second of a change is not trusted. */
static void test_index_racy(void)
{
	char dir[64];
	struct maildir_commit assign = { .assign_uid = 1 };
	struct maildir_folder *f;

	mkfolder(dir);
	T_EQ(deliver(dir, "one\n", &assign, NULL, NULL), 0);
	age_folder(dir, 10);
	age(dir, "cur", 0);	/* changed just now */
	T_EQ(maildir_folder_open(dir, &f, err, sizeof(err)), 0);
	T_EQ(maildir_folder_sync(f, 0, err, sizeof(err)), 0);
	write_fake_index(f, MAILDIR_FLAG_FLAGGED);
	T_EQ(fresh_flags(dir, f->msgs[0].uid), 0);
	maildir_folder_free(f);
	rmtree(dir);
}

/* Torn, foreign or garbage index files are refused; the folder is scanned. */
static void test_index_torn(void)
{
	char dir[64], path[600];
	struct maildir_commit assign = { .assign_uid = 1 };
	struct maildir_folder *f;
	struct maildir_index_view v;
	struct stat st;
	char *buf;
	size_t len;
	FILE *fp;
	int i;

	mkfolder(dir);
	for (i = 0; i < 5; i++)
		T_EQ(deliver(dir, "x\n", &assign, NULL, NULL), 0);
	age_folder(dir, 10);
	T_EQ(maildir_folder_open(dir, &f, err, sizeof(err)), 0);
	T_EQ(maildir_folder_sync(f, 0, err, sizeof(err)), 0);
	write_fake_index(f, MAILDIR_FLAG_FLAGGED);
	snprintf(path, sizeof(path), "%s/" MAILDIR_INDEX_NAME, dir);
	T_EQ(fsutil_read_file(path, 1 << 20, &buf, &len, err, sizeof(err)), 0);
	T_EQ(maildir_index_parse(buf, len, 0, &v), 0);
	T_EQ(v.hdr.nmsgs, 5);
	/* every shorter prefix and every single flipped byte is refused */
	for (size_t k = 0; k < len; k++)
		T_EQ(maildir_index_parse(buf, k, 0, &v), -1);
	for (size_t k = 0; k < len; k++) {
		buf[k] ^= 0x20;
		if (maildir_index_parse(buf, len, 0, &v) == 0)
			T_OK(k >= 8 && k < 12 && 0);	/* never, not even in the checksum field */
		buf[k] ^= 0x20;
	}
	/* a torn file on disk: the fresh process scans instead */
	fp = fopen(path, "w");
	fwrite(buf, 1, len - 3, fp);
	fclose(fp);
	T_EQ(fresh_flags(dir, f->msgs[0].uid), 0);
	/* the names area altered: checksum */
	buf[len - 2] = 'Z';
	fp = fopen(path, "w");
	fwrite(buf, 1, len, fp);
	fclose(fp);
	T_EQ(fresh_flags(dir, f->msgs[0].uid), 0);
	free(buf);
	/* garbage */
	fp = fopen(path, "w");
	fputs("not an index\n", fp);
	fclose(fp);
	T_EQ(fresh_flags(dir, f->msgs[0].uid), 0);
	T_EQ(stat(path, &st), 0);
	maildir_folder_free(f);
	rmtree(dir);
}

/* With index_dir set, the index lives there, named by the folder's path. */
static void test_index_dir(void)
{
	char dir[64], idx[128], path[600];
	struct maildir_commit assign = { .assign_uid = 1 };
	struct maildir_folder *f;

	mkfolder(dir);
	snprintf(idx, sizeof(idx), "%s/index", dir);
	T_EQ(deliver(dir, "x\n", &assign, NULL, NULL), 0);
	maildir_set_index_dir(idx);
	age_folder(dir, 10);
	T_EQ(maildir_folder_open(dir, &f, err, sizeof(err)), 0);
	T_EQ(maildir_folder_sync(f, 0, err, sizeof(err)), 0);
	T_EQ(count_dir(dir, "index"), 1);
	snprintf(path, sizeof(path), "%s/" MAILDIR_INDEX_NAME, dir);
	T_EQ(access(path, F_OK), -1);
	T_EQ(fresh_flags(dir, f->msgs[0].uid), 0);
	/* deleting it is fine: rebuilt */
	rmtree(idx);
	T_EQ(fresh_flags(dir, f->msgs[0].uid), 0);
	T_EQ(count_dir(dir, "index"), 1);
	maildir_set_index_dir(NULL);
	maildir_folder_free(f);
	rmtree(dir);
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "deliver") == 0)
		return run_deliveries(argv[2], atoi(argv[3]), argc > 4 && strcmp(argv[4], "assign") == 0);
	if (argc >= 4 && strcmp(argv[1], "flagger") == 0)
		return run_flagger(argv[2], atoi(argv[3]));
	if (argc > 1) {
		fprintf(stderr, "usage: test_maildir [deliver DIR N [assign] | flagger DIR SECS]\n");
		return EX_USAGE;
	}
	T_RUN(test_name_parse);
	T_RUN(test_name_flags);
	T_RUN(test_deliver_and_sync);
	T_RUN(test_open_follows_rename);
	T_RUN(test_keywords);
	T_RUN(test_corrupt_uidlist);
	T_RUN(test_stale_lock);
	T_RUN(test_parallel_writers);
	T_RUN(test_index_reuse);
	T_RUN(test_index_racy);
	T_RUN(test_index_torn);
	T_RUN(test_index_dir);
	return t_done();
}

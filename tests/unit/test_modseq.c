#include "maildir.h"
#include "modseq.h"
#include "t.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/mk-test-modseq.XXXXXX";
static char err[512];

static void fill(struct maildir_msg *m, size_t n, unsigned flags)
{
	memset(m, 0, n * sizeof(*m));
	for (size_t i = 0; i < n; i++) {
		m[i].uid = (uint32_t)(i + 1);
		m[i].flags = flags;
	}
}

/* Locks, syncs MSGS, unlocks; the highest modseq afterwards (0 on error). */
static uint64_t sync_msgs(struct modseq_store *st, const struct maildir_msg *m, size_t n)
{
	uint64_t h;

	if (modseq_lock(st, 42, err, sizeof(err)) != 0)
		return 0;
	if (modseq_sync(st, m, n, n ? m[n - 1].uid + 1 : 1, err, sizeof(err)) != 0) {
		modseq_unlock(st);
		return 0;
	}
	h = modseq_highest(st);
	modseq_unlock(st);
	return h;
}

static void path(char *out, const char *name)
{
	snprintf(out, 4200, "%s/%s", dir, name);
}

static void test_basic(void)
{
	struct modseq_store *a = NULL, *b = NULL;
	struct maildir_msg m[5];
	uint64_t h0, h1, h2, h3, ms;
	uint32_t *v;
	size_t nv;

	T_EQ(modseq_open(dir, &a, err, sizeof(err)), 0);
	T_EQ(modseq_open(dir, &b, err, sizeof(err)), 0);
	fill(m, 5, 0);
	h0 = sync_msgs(a, m, 5);
	T_OK(h0 > 1000000000000000ull);		/* a fresh store starts at the time base */
	T_EQ(modseq_find(a, 3)->modseq, h0);	/* all arrivals in one change */
	/* nothing changed: no new modseq */
	T_EQ(sync_msgs(a, m, 5), h0);
	/* a flag change seen by the other instance (another process) */
	m[2].flags = MAILDIR_FLAG_SEEN;
	h1 = sync_msgs(b, m, 5);
	T_OK(h1 > h0);
	T_EQ(modseq_find(b, 3)->modseq, h1);
	T_EQ(modseq_find(b, 2)->modseq, h0);
	/* a reads only the appended records and agrees */
	T_EQ(sync_msgs(a, m, 5), h1);
	T_EQ(modseq_find(a, 3)->modseq, h1);
	/* explicit change through stage/commit */
	T_EQ(modseq_lock(a, 42, err, sizeof(err)), 0);
	T_EQ(modseq_stage_set(a, 4, MAILDIR_FLAG_FLAGGED, 3), 0);
	T_EQ(modseq_commit(a, &ms, err, sizeof(err)), 0);
	modseq_unlock(a);
	T_OK(ms > h1);
	m[3].flags = MAILDIR_FLAG_FLAGGED;
	m[3].keywords = 3;
	/* b sees it, and its own sync finds nothing else to change */
	T_EQ(sync_msgs(b, m, 5), ms);
	T_EQ(modseq_find(b, 4)->keywords, 3);
	/* expunge of 2 and 5, arrival of 6 */
	{
		struct maildir_msg m2[4];
		memcpy(&m2[0], &m[0], sizeof(m[0]));
		memcpy(&m2[1], &m[2], sizeof(m[0]) * 2);
		memset(&m2[3], 0, sizeof(m2[3]));
		m2[3].uid = 6;
		h2 = sync_msgs(b, m2, 4);
		T_OK(h2 > ms);
		T_OK(modseq_find(b, 2) == NULL);
		T_OK(modseq_find(b, 5) == NULL);
		T_EQ(modseq_find(b, 6)->modseq, h2);
		T_EQ(sync_msgs(a, m2, 4), h2);
		T_OK(modseq_find(a, 5) == NULL);
		T_EQ(modseq_vanished_since(a, h1, &v, &nv), 1);
		T_EQ(nv, 2);
		if (nv == 2) {
			T_EQ(v[0], 2);
			T_EQ(v[1], 5);
		}
		free(v);
		T_EQ(modseq_vanished_since(a, h2, &v, &nv), 1);
		T_EQ(nv, 0);
		free(v);
		/* the fresh store's floor: anything before it is "unknown" */
		T_EQ(modseq_vanished_since(a, 1, &v, &nv), 0);
		free(v);
	}
	/* a restart: a new instance reads the same state */
	modseq_free(a);
	T_EQ(modseq_open(dir, &a, err, sizeof(err)), 0);
	T_EQ(modseq_lock(a, 42, err, sizeof(err)), 0);
	h3 = modseq_highest(a);
	T_EQ(h3, h2);
	T_EQ(modseq_find(a, 4)->modseq, ms);
	T_EQ(modseq_find(a, 6)->modseq, h2);
	modseq_unlock(a);
	modseq_free(a);
	modseq_free(b);
}

static uint64_t highest_now(void)
{
	struct modseq_store *a = NULL;
	uint64_t h = 0;

	if (modseq_open(dir, &a, err, sizeof(err)) == 0 &&
	    modseq_lock(a, 42, err, sizeof(err)) == 0) {
		h = modseq_highest(a);
		modseq_unlock(a);
	}
	modseq_free(a);
	return h;
}

static void test_corrupt_and_missing(void)
{
	struct modseq_store *a = NULL;
	struct maildir_msg m[3];
	char p[4200];
	uint64_t before, after;
	int fd;

	fill(m, 3, MAILDIR_FLAG_SEEN);
	/* corrupt a record in the middle: rebuilt, every message above before */
	before = highest_now();
	T_OK(before > 0);
	path(p, MODSEQ_FILE);
	fd = open(p, O_WRONLY);
	T_OK(fd >= 0);
	T_EQ(pwrite(fd, "garbage!", 8, 64 + 24 + 4), 8);
	close(fd);
	T_EQ(modseq_open(dir, &a, err, sizeof(err)), 0);
	after = sync_msgs(a, m, 3);
	T_OK(after > before);
	T_EQ(modseq_find(a, 1)->modseq, after);
	T_EQ(modseq_find(a, 3)->modseq, after);
	modseq_free(a);

	/* a torn last record (crash during append) is dropped, nothing rebuilt */
	before = highest_now();
	fd = open(p, O_WRONLY | O_APPEND);
	T_EQ(write(fd, "0123456789abc", 13), 13);
	close(fd);
	T_EQ(highest_now(), before);
	{
		struct stat sb;
		T_EQ(stat(p, &sb), 0);
		T_EQ((sb.st_size - 64) % 24, 0);
	}

	/* a bad header: rebuilt above the time base and above before */
	fd = open(p, O_WRONLY);
	T_EQ(pwrite(fd, "XXXX", 4, 0), 4);
	close(fd);
	usleep(2000);
	T_EQ(modseq_open(dir, &a, err, sizeof(err)), 0);
	after = sync_msgs(a, m, 3);
	T_OK(after > before);
	modseq_free(a);

	/* the file lost: rebuilt from the clock, still above */
	before = after;
	T_EQ(unlink(p), 0);
	usleep(2000);
	T_EQ(modseq_open(dir, &a, err, sizeof(err)), 0);
	after = sync_msgs(a, m, 3);
	T_OK(after > before);
	T_EQ(modseq_find(a, 2)->modseq, after);
	modseq_free(a);

	/* a different UIDVALIDITY (folder recreated): rebuilt */
	before = after;
	T_EQ(modseq_open(dir, &a, err, sizeof(err)), 0);
	T_EQ(modseq_lock(a, 43, err, sizeof(err)), 0);
	T_OK(modseq_highest(a) > before);
	T_OK(modseq_find(a, 1) == NULL);
	modseq_unlock(a);
	modseq_free(a);
}

static void test_compaction(void)
{
	struct modseq_store *a = NULL, *b = NULL;
	struct maildir_msg m[100];
	uint64_t last = 0, h;
	char p[4200];
	struct stat sb;
	int mono = 1;

	path(p, MODSEQ_FILE);
	unlink(p);
	fill(m, 100, 0);
	T_EQ(modseq_open(dir, &a, err, sizeof(err)), 0);
	T_EQ(modseq_open(dir, &b, err, sizeof(err)), 0);
	/* many single changes alternate between two instances: compactions
	 * happen, both keep reading the same increasing sequence */
	for (int i = 0; i < 6000; i++) {
		m[i % 100].flags ^= MAILDIR_FLAG_SEEN;
		h = sync_msgs(i % 2 ? a : b, m, 100);
		if (h <= last && last != 0)
			mono = 0;
		last = h;
	}
	T_OK(mono);
	T_EQ(stat(p, &sb), 0);
	T_OK(sb.st_size < 64 + 24 * (2 * 100 + MODSEQ_COMPACT_SLACK + 10));
	T_EQ(sync_msgs(a, m, 100), last);
	T_EQ(sync_msgs(b, m, 100), last);
	T_EQ(modseq_find(a, 100)->modseq, modseq_find(b, 100)->modseq);
	modseq_free(a);
	modseq_free(b);
}

/*
 * Steady churn - one arrival and one expunge per change, as under a busy
 * client - keeps the log bounded: expunges past the remembered ones do not
 * hold off compaction.  The old expunges are then forgotten (floor), the
 * recent ones still listed exactly.
 */
static void test_churn_bounded(void)
{
	enum { LIVE = 50, ROUNDS = 3 * MODSEQ_VANISHED_KEEP };
	struct modseq_store *a = NULL;
	struct maildir_msg m[LIVE];
	uint64_t early = 0, late = 0, h;
	char p[4200];
	struct stat sb;
	uint32_t *v = NULL;
	size_t nv = 0;
	int failed = 0;

	path(p, MODSEQ_FILE);
	unlink(p);
	fill(m, LIVE, 0);
	T_EQ(modseq_open(dir, &a, err, sizeof(err)), 0);
	for (int i = 0; i < ROUNDS; i++) {
		/* expunge the oldest, add one above the newest */
		memmove(&m[0], &m[1], (LIVE - 1) * sizeof(m[0]));
		m[LIVE - 1].uid = m[LIVE - 2].uid + 1;
		h = sync_msgs(a, m, LIVE);
		if (h == 0)
			failed++;
		if (i == 10)
			early = h;
		if (i == ROUNDS - 11)
			late = h;
	}
	T_EQ(failed, 0);
	T_EQ(stat(p, &sb), 0);
	T_OK(sb.st_size < 64 + 24 * (2 * (LIVE + MODSEQ_VANISHED_KEEP) + MODSEQ_COMPACT_SLACK + 10));
	/* since long ago: incomplete (floor passed); since lately: the last 10 exactly */
	T_EQ(modseq_vanished_since(a, early, &v, &nv), 0);
	free(v);
	v = NULL;
	T_EQ(modseq_vanished_since(a, late, &v, &nv), 1);
	T_EQ(nv, 10);
	T_OK(v != NULL && v[9] == m[0].uid - 1);
	free(v);
	modseq_free(a);
}

int main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	T_RUN(test_basic);
	T_RUN(test_corrupt_and_missing);
	T_RUN(test_compaction);
	T_RUN(test_churn_bounded);
	{
		char p[4200];
		path(p, MODSEQ_FILE); unlink(p);
		path(p, MODSEQ_LOCK_FILE); unlink(p);
		path(p, MODSEQ_TMP_FILE); unlink(p);
		rmdir(dir);
	}
	return t_done();
}

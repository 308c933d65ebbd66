/* dovecot-uidlist: parse, format, round trip, corrupt input, file I/O. */
#include "uidlist.h"
#include "t.h"

#include <stdlib.h>
#include <sysexits.h>
#include <unistd.h>

static char err[512];

static struct uidlist *parse(const char *s)
{
	struct uidlist *ul = NULL;

	if (uidlist_parse(s, strlen(s), NULL, &ul, err, sizeof(err)) != 0)
		return NULL;
	return ul;
}

static void test_dovecot_written(void)
{
	/* as written by dovecot 2.3 (doveadm save; later records appended) */
	const char *s = "3 V1795696725 N1 G632acf0a5528086b7328000083ecc375\n"
		"1 :1795696725.M320851P10367.vm,S=18,W=21\n"
		"2 W2481 :1276533073.M242911P3632.kurkku:2,F\n"
		"7 G0123 P42 :1276533074.M1P2.host,S=5:2,ST\n";
	struct uidlist *ul = parse(s);

	T_OK(ul != NULL);
	if (ul == NULL)
		return;
	T_EQ(ul->version, 3);
	T_EQ(ul->uidvalidity, 1795696725u);
	T_EQ(ul->hdr_next_uid, 1);
	T_EQ(ul->next_uid, 8);	/* the header lags: max(N, last + 1) */
	T_STREQ(ul->guid, "632acf0a5528086b7328000083ecc375");
	T_EQ(ul->nrecs, 3);
	T_EQ(ul->recs[1].uid, 2);
	T_STREQ(ul->recs[1].ext, "W2481");
	T_STREQ(ul->recs[1].fname, "1276533073.M242911P3632.kurkku:2,F");
	T_STREQ(ul->recs[2].ext, "G0123 P42");
	T_OK(ul->recs[0].ext == NULL);
	T_EQ(uidlist_find_uid(ul, 7), 2);
	T_EQ(uidlist_find_uid(ul, 3), -1);
	uidlist_free(ul);
}

static void test_roundtrip(void)
{
	struct uidlist *ul = uidlist_new(12345), *back;
	char *buf;
	size_t len;

	T_OK(ul != NULL);
	T_EQ(uidlist_add(ul, "1.M1P1Q1.h,S=3,W=4", NULL), 1);
	T_EQ(uidlist_add(ul, "2.M1P1Q2.h,S=3,W=4:2,S", "W4"), 2);
	T_EQ(uidlist_format(ul, 1, 0, &buf, &len), 0);
	T_OK(strncmp(buf, "3 V12345 N3 G", 13) == 0);
	T_EQ(uidlist_parse(buf, len, NULL, &back, err, sizeof(err)), 0);
	if (back != NULL) {
		T_EQ(back->uidvalidity, 12345);
		T_EQ(back->next_uid, 3);
		T_STREQ(back->guid, ul->guid);
		T_EQ(back->nrecs, 2);
		T_STREQ(back->recs[1].fname, "2.M1P1Q2.h,S=3,W=4:2,S");
		T_STREQ(back->recs[1].ext, "W4");
	}
	free(buf);
	/* UIDs are never reused, also after removing the last record */
	uidlist_remove(ul, 1);
	T_EQ(uidlist_add(ul, "3.x", NULL), 3);
	uidlist_free(back);
	uidlist_free(ul);
	uidlist_free(NULL);
}

static void test_version1(void)
{
	struct uidlist *ul = parse("1 1000 5\n1 a.b.c\n3 d.e.f:2,S\n");

	T_OK(ul != NULL);
	if (ul == NULL)
		return;
	T_EQ(ul->version, 1);
	T_EQ(ul->uidvalidity, 1000);
	T_EQ(ul->next_uid, 5);
	T_STREQ(ul->recs[1].fname, "d.e.f:2,S");
	uidlist_free(ul);
}

static void expect_bad(const char *s, const char *what)
{
	struct uidlist *ul = (struct uidlist *)1;
	int r = uidlist_parse(s, strlen(s), NULL, &ul, err, sizeof(err));

	T_EQ(r, EX_DATAERR);
	T_OK(ul == NULL);
	if (strstr(err, what) == NULL)
		printf("# error \"%s\" lacks \"%s\"\n", err, what);
	T_OK(strstr(err, what) != NULL);
}

static void test_corrupt(void)
{
	expect_bad("", "line 1: empty");
	expect_bad("3 V12 N5", "line 1: last line has no newline");
	expect_bad("3 V12 N5\n1 :a\n2 :b", "line 3: last line has no newline");
	expect_bad("garbage\n", "line 1: unsupported");
	expect_bad("\x7f" "ELF\x02\x01\n", "line 1:");
	expect_bad("3 N5\n", "no valid UIDVALIDITY");
	expect_bad("3 V0 N5\n", "no valid UIDVALIDITY");
	expect_bad("3 Vx N5\n", "invalid UIDVALIDITY");
	expect_bad("3 V1 N99999999999\n", "invalid next UID");
	expect_bad("3 V1 Gxyz\n", "GUID");
	expect_bad("3 V1 N2\nx :a\n", "line 2: record does not start with a UID");
	expect_bad("3 V1 N2\n0 :a\n", "invalid UID 0");
	expect_bad("3 V1 N2\n4294967295 :a\n", "invalid UID");
	expect_bad("3 V1 N2\n5 :a\n3 :b\n", "line 3: UIDs not ascending");
	expect_bad("3 V1 N2\n5 :a\n5 :b\n", "not ascending");
	expect_bad("3 V1 N2\n5 a\n", "invalid extension");
	expect_bad("3 V1 N2\n5 W12\n", "has no ':<filename>'");
	expect_bad("3 V1 N2\n5 :\n", "empty file name");
	expect_bad("3 V1 N2\n5 :../../etc/passwd\n", "contains '/'");
	expect_bad("3 V1 N2\n5 :a\0b\n", "line 2: ");
}

static void test_limits(void)
{
	struct uidlist_limits lim = { .max_line = 20, .max_records = 2 };
	struct uidlist *ul;
	const char *s = "3 V1 N2\n1 :a\n2 :b\n3 :c\n";

	T_EQ(uidlist_parse(s, strlen(s), &lim, &ul, err, sizeof(err)), EX_DATAERR);
	T_OK(strstr(err, "more than 2 records") != NULL);
	s = "3 V1 N2\n1 :aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n";
	T_EQ(uidlist_parse(s, strlen(s), &lim, &ul, err, sizeof(err)), EX_DATAERR);
	T_OK(strstr(err, "line 2: line longer than 20") != NULL);
	/* no NUL terminator needed: parse a prefix of a larger buffer */
	s = "3 V1 N2\n1 :a\nGARBAGE";
	T_EQ(uidlist_parse(s, 13, NULL, &ul, err, sizeof(err)), 0);
	T_EQ(ul->nrecs, 1);
	uidlist_free(ul);
}

static void test_file_io(void)
{
	char dir[] = "/tmp/mk-uidlist.XXXXXX", path[256];
	struct uidlist *ul, *back;
	FILE *f;

	T_OK(mkdtemp(dir) != NULL);
	T_EQ(uidlist_read(dir, &back, err, sizeof(err)), 0);
	T_OK(back == NULL);		/* missing file: no list, no error */
	ul = uidlist_new(777);
	uidlist_add(ul, "a", NULL);
	T_EQ(uidlist_write(dir, ul, err, sizeof(err)), 0);
	uidlist_add(ul, "b", NULL);
	uidlist_add(ul, "c", NULL);
	T_EQ(uidlist_append(dir, ul, 1, err, sizeof(err)), 0);
	T_EQ(uidlist_read(dir, &back, err, sizeof(err)), 0);
	T_OK(back != NULL);
	if (back != NULL) {
		T_EQ(back->hdr_next_uid, 2);	/* appended: header not rewritten */
		T_EQ(back->next_uid, 4);
		T_EQ(back->nrecs, 3);
		T_STREQ(back->recs[2].fname, "c");
	}
	uidlist_free(back);
	/* a truncated file names the path and the line */
	snprintf(path, sizeof(path), "%s/" UIDLIST_NAME, dir);
	f = fopen(path, "a");
	fputs("4 :trunc", f);
	fclose(f);
	T_EQ(uidlist_read(dir, &back, err, sizeof(err)), EX_DATAERR);
	T_OK(strstr(err, path) != NULL && strstr(err, "line 5") != NULL);
	unlink(path);
	rmdir(dir);
	uidlist_free(ul);
}

int main(void)
{
	T_RUN(test_dovecot_written);
	T_RUN(test_roundtrip);
	T_RUN(test_version1);
	T_RUN(test_corrupt);
	T_RUN(test_limits);
	T_RUN(test_file_io);
	return t_done();
}

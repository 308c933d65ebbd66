/* Unit tests of sync state files, the flag merge rule and folder mapping (lib/sync.h). */
#include "maildir-name.h"
#include "sync.h"
#include "t.h"

#include <stdlib.h>

static int kw_cb(void *ctx, const char *name)
{
	(void)ctx;
	if (strcmp(name, "$Important") == 0)
		return 0;
	if (strcmp(name, "todo") == 0)
		return 3;
	return -1;
}

static void test_roundtrip(void)
{
	struct sync_state st = { 0 }, back;
	struct sync_flags f1 = { MAILDIR_FLAG_SEEN | MAILDIR_FLAG_FLAGGED, 1u << 0 | 1u << 3 };
	struct sync_flags f2 = { 0, 0 };
	char *names[26] = { 0 }, *buf, err[128];
	size_t len;

	names[0] = "$Important";
	names[3] = "todo";
	st.remote = strdup("Sent Items");
	st.r_uidvalidity = 17;
	st.l_uidvalidity = 99;
	st.highestmodseq = 123456789012ULL;
	st.r_uidnext = 40;
	st.l_mtime_new = 1;
	st.l_mtime_cur = 2;
	T_EQ(sync_state_add(&st, 3, 1, f1), 0);
	T_EQ(sync_state_add(&st, 39, 2, f2), 0);
	T_EQ(sync_state_format(&st, names, &buf, &len), 0);
	T_OK(strstr(buf, "3 1 FS $Important todo\n") != NULL);
	T_OK(strstr(buf, "39 2 -\n") != NULL);
	T_EQ(sync_state_parse(buf, len, kw_cb, NULL, &back, err, sizeof(err)), 0);
	T_STREQ(back.remote, "Sent Items");
	T_EQ(back.r_uidvalidity, 17);
	T_EQ(back.l_uidvalidity, 99);
	T_OK(back.highestmodseq == 123456789012ULL);
	T_EQ(back.npairs, 2);
	T_EQ(back.pairs[0].flags.sys, f1.sys);
	T_EQ(back.pairs[0].flags.kw, f1.kw);
	T_EQ(sync_state_find(&back, 39), 1);
	T_EQ(sync_state_find(&back, 4), -1);
	free(buf);
	sync_state_clear(&st);
	sync_state_clear(&back);
}

static void test_parse_bad(void)
{
	static const char *bad[] = {
		"", "mailkeep-pull-state 2\nremote x\npairs\n",
		"mailkeep-pull-state 1\nremote x\npairs\n5 1 S\n3 2 S\n",	/* not ascending */
		"mailkeep-pull-state 1\nremote x\npairs\n5 1 Q\n",		/* bad flag */
		"mailkeep-pull-state 1\nremote x\npairs\n5 1 S",		/* truncated */
		"mailkeep-pull-state 1\nremote x\nbogus 1\npairs\n",
		"mailkeep-pull-state 1\npairs\n",				/* no remote */
		"mailkeep-pull-state 1\nremote x\nuidvalidity 99999999999 1\npairs\n",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sync_state st;
		char err[128];

		T_EQ(sync_state_parse(bad[i], strlen(bad[i]), NULL, NULL, &st, err, sizeof(err)),
		     65);
		T_EQ(st.npairs, 0);
	}
}

static void test_merge(void)
{
	struct sync_flags b = { MAILDIR_FLAG_SEEN, 1 }, l = { MAILDIR_FLAG_SEEN |
		MAILDIR_FLAG_FLAGGED, 1 }, r = { 0, 1 | 2 }, m;

	/* local added \Flagged, remote removed \Seen and added keyword 1 */
	m = sync_flags_merge(b, l, r);
	T_EQ(m.sys, MAILDIR_FLAG_FLAGGED);
	T_EQ(m.kw, 3);
	/* no change anywhere */
	m = sync_flags_merge(b, b, b);
	T_EQ(m.sys, b.sys);
	T_EQ(m.kw, b.kw);
}

static void test_file_name(void)
{
	char out[64];

	T_EQ(sync_state_file_name("Work/Projects", out, sizeof(out)), 0);
	T_STREQ(out, "Work%2FProjects.state");
	T_EQ(sync_state_file_name("100%", out, sizeof(out)), 0);
	T_STREQ(out, "100%25.state");
	T_EQ(sync_state_file_name("a-very-long-name-that-does-not-fit-in-the-buffer-at-all",
				  out, 16), -1);
}

static void test_map(void)
{
	struct sync_rfolder v[6];
	struct config_account a;
	const char *names[6] = { "INBOX", "Spam", "Sent Items", "Trash", "Work.Projects", "Junk" };
	size_t i;

	memset(v, 0, sizeof(v));
	memset(&a, 0, sizeof(a));
	for (i = 0; i < 6; i++) {
		v[i].name = strdup(names[i]);
		v[i].sep = '.';
		v[i].special = -1;
	}
	v[3].special = SPECIAL_TRASH;		/* \Trash attribute */
	sync_map_folders(&a, v, 6);
	T_STREQ(v[0].local, "INBOX");
	/* "Junk" exists by its own name: the common-name rule prefers "Junk" */
	T_STREQ(v[5].local, "Junk");
	T_STREQ(v[2].local, "Sent");
	T_EQ(v[2].special_by, 3);
	T_STREQ(v[3].local, "Trash");
	T_EQ(v[3].special_by, 2);
	T_STREQ(v[4].local, "Work/Projects");
	T_STREQ(v[1].local, "Spam");
	/* with map_junk = Spam, "Spam" becomes Junk and the provider's "Junk" is skipped */
	a.map[SPECIAL_JUNK] = "Spam";
	for (i = 0; i < 6; i++)
		v[i].special_by = 0;
	sync_map_folders(&a, v, 6);
	T_STREQ(v[1].local, "Junk");
	T_EQ(v[1].special_by, 1);
	T_OK(v[5].local == NULL);
	for (i = 0; i < 6; i++) {
		free(v[i].name);
		free(v[i].local);
	}
}

int main(void)
{
	T_RUN(test_roundtrip);
	T_RUN(test_parse_bad);
	T_RUN(test_merge);
	T_RUN(test_file_name);
	T_RUN(test_map);
	return t_done();
}

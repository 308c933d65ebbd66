#include "auth.h"
#include "config.h"
#include "ldapauth.h"
#include "log.h"
#include "t.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[64];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_auth.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
}

static void remove_tmpdir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmpdir);
}

static long long ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000LL + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

static void test_penalty_schedule(void)
{
	T_EQ(auth_penalty_delay_ms(0), 0);
	T_EQ(auth_penalty_delay_ms(1), 250);
	T_EQ(auth_penalty_delay_ms(2), 500);
	T_EQ(auth_penalty_delay_ms(3), 1000);
	T_EQ(auth_penalty_delay_ms(6), 8000);
	T_EQ(auth_penalty_delay_ms(7), AUTH_PENALTY_CAP_MS);
	T_EQ(auth_penalty_delay_ms(1000), AUTH_PENALTY_CAP_MS);
	T_EQ(auth_penalty_delay_ms(0xffffffffu), AUTH_PENALTY_CAP_MS);
}

static void test_penalty_grow_reset(void)
{
	time_t now = 1700000000;

	T_EQ(auth_penalty_get(tmpdir, "192.0.2.1", now), 0);
	for (int i = 1; i <= 10; i++) {
		T_EQ(auth_penalty_fail(tmpdir, "192.0.2.1", now + i), 0);
		T_EQ(auth_penalty_get(tmpdir, "192.0.2.1", now + i), auth_penalty_delay_ms((unsigned)i));
	}
	T_EQ(auth_penalty_get(tmpdir, "192.0.2.1", now + 10), AUTH_PENALTY_CAP_MS);
	/* Other addresses are not affected. */
	T_EQ(auth_penalty_get(tmpdir, "192.0.2.2", now + 10), 0);
	T_EQ(auth_penalty_get(tmpdir, "2001:db8::1", now + 10), 0);
	/* The same address written as IPv4-mapped IPv6 is the same client. */
	T_EQ(auth_penalty_get(tmpdir, "::ffff:192.0.2.1", now + 10), AUTH_PENALTY_CAP_MS);
	/* Success clears it. */
	T_EQ(auth_penalty_reset(tmpdir, "192.0.2.1"), 0);
	T_EQ(auth_penalty_get(tmpdir, "192.0.2.1", now + 11), 0);
	T_EQ(auth_penalty_reset(tmpdir, "198.51.100.9"), 0);
}

static void test_penalty_forget(void)
{
	time_t now = 1700000000;

	T_EQ(auth_penalty_fail(tmpdir, "203.0.113.5", now), 0);
	T_EQ(auth_penalty_fail(tmpdir, "203.0.113.5", now), 0);
	T_EQ(auth_penalty_get(tmpdir, "203.0.113.5", now + AUTH_PENALTY_FORGET), 500);
	T_EQ(auth_penalty_get(tmpdir, "203.0.113.5", now + AUTH_PENALTY_FORGET + 1), 0);
	/* A failure after the forget window starts from one again. */
	T_EQ(auth_penalty_fail(tmpdir, "203.0.113.5", now + AUTH_PENALTY_FORGET + 1), 0);
	T_EQ(auth_penalty_get(tmpdir, "203.0.113.5", now + AUTH_PENALTY_FORGET + 1), 250);
}

static void test_penalty_ipv6_prefix(void)
{
	time_t now = 1700000000;

	T_EQ(auth_penalty_fail(tmpdir, "2001:db8:1:2::1", now), 0);
	/* Anything in the same /64 shares the penalty; another /64 does not. */
	T_EQ(auth_penalty_get(tmpdir, "2001:db8:1:2:ffff::7", now), 250);
	T_EQ(auth_penalty_get(tmpdir, "2001:db8:1:3::1", now), 0);
	/* Non-numeric sources (unix sockets, tests) still get a slot. */
	T_EQ(auth_penalty_fail(tmpdir, "local", now), 0);
	T_EQ(auth_penalty_get(tmpdir, "local", now), 250);
}

static void test_penalty_bounded(void)
{
	time_t now = 1700000000;
	struct stat st;
	char path[128], addr[64];
	DIR *d;
	struct dirent *de;
	int files = 0;

	for (int i = 0; i < 20000; i++) {
		snprintf(addr, sizeof(addr), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		if (auth_penalty_fail(tmpdir, addr, now) != 0) {
			T_OK(0);
			break;
		}
	}
	snprintf(path, sizeof(path), "%s/auth-penalty", tmpdir);
	T_EQ(stat(path, &st), 0);
	T_OK(st.st_size <= (off_t)AUTH_PENALTY_SLOTS * 16);
	T_EQ(st.st_mode & 0777, 0600);
	d = opendir(tmpdir);
	while (d != NULL && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			files++;
	if (d)
		closedir(d);
	T_EQ(files, 1);
	/* The last address of the flood still has its penalty. */
	T_EQ(auth_penalty_get(tmpdir, addr, now), 250);
}

static void test_penalty_unusable(void)
{
	T_EQ(auth_penalty_get("/nonexistent/dir", "192.0.2.1", time(NULL)), 0);
	T_EQ(auth_penalty_fail("/nonexistent/dir", "192.0.2.1", time(NULL)), -1);
	T_EQ(auth_penalty_get(NULL, "192.0.2.1", time(NULL)), 0);
	T_EQ(auth_penalty_get(tmpdir, NULL, time(NULL)), 0);
}

static void test_escape(void)
{
	char out[64];

	T_EQ(ldapauth_escape_filter("a*b(c)d\\e\0f", 11, out, sizeof(out)), 0);
	T_STREQ(out, "a\\2Ab\\28c\\29d\\5Ce\\00f");
	T_EQ(ldapauth_escape_filter("alice*)(|(mail=*", 16, out, sizeof(out)), 0);
	T_STREQ(out, "alice\\2A\\29\\28|\\28mail=\\2A");
	T_EQ(ldapauth_escape_filter("alice@example.com", 17, out, sizeof(out)), 0);
	T_STREQ(out, "alice@example.com");
	T_EQ(ldapauth_escape_filter("********", 8, out, 10), -1);
	T_EQ(ldapauth_make_dn("cn", "a,b+c\"d\\e", "ou=groups,dc=x", out, sizeof(out)), 0);
	T_STREQ(out, "cn=a\\2Cb\\2Bc\\22d\\5Ce,ou=groups,dc=x");
	T_EQ(ldapauth_make_dn("uid", "admin", NULL, out, sizeof(out)), 0);
	T_STREQ(out, "uid=admin");
	T_EQ(ldapauth_make_dn("uid", "", NULL, out, sizeof(out)), -1);
	T_EQ(ldapauth_make_dn("uid", "a-long-value", NULL, out, 8), -1);
}

/* A config over a passwd file in tmpdir, penalties in tmpdir/state. */
static struct config *passwd_config(void)
{
	char text[1024], err[256], path[128];
	struct config *c = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "%s/passwd", tmpdir);
	f = fopen(path, "w");
	/* yescrypt of "pw-one" (mkpasswd) */
	fprintf(f, "one@example.com:$y$j9T$jSN2K9N2NnsR9YtEjo4WK/$Nd0uAbrBHwY15.Yz9BU1abpAYWUqDYBiekm1wE53jaB\n"
		   "bad/name@example.com:{PLAIN}pw\n");
	fclose(f);
	snprintf(path, sizeof(path), "%s/state", tmpdir);
	mkdir(path, 0700);
	snprintf(text, sizeof(text), "mail_dir = %s/mail\nstate_dir = %s/state\n"
		 "[users]\npasswd_file = %s/passwd\naccount = acct\n", tmpdir, tmpdir, tmpdir);
	if (config_parse(text, strlen(text), "test.conf", &c, err, sizeof(err)) != 0)
		printf("# config: %s\n", err);
	return c;
}

#define CHECK(a, u, p, src, res) auth_check(a, u, strlen(u), p, sizeof(p) - 1, src, res)

static void test_check_passwd(void)
{
	struct config *c = passwd_config();
	struct auth *a = NULL;
	struct auth_result res;
	char err[256], home[256];

	if (c == NULL) {
		T_OK(0);
		return;
	}
	T_EQ(auth_open(c, &a, err, sizeof(err)), 0);
	T_EQ(auth_is_ldap(a), 0);
	T_EQ(CHECK(a, "one@example.com", "pw-one", NULL, &res), AUTH_OK);
	T_STREQ(res.login, "one@example.com");
	snprintf(home, sizeof(home), "%s/mail/acct/one@example.com", tmpdir);
	T_STREQ(res.home, home);
	T_STREQ(res.dn, "");
	T_EQ(CHECK(a, "ONE@example.com", "pw-one", NULL, &res), AUTH_OK);
	T_STREQ(res.login, "one@example.com");
	T_EQ(CHECK(a, "one@example.com", "pw-two", NULL, &res), AUTH_REJECTED);
	T_EQ(res.reason, AUTH_REASON_BAD_PASSWORD);
	T_STREQ(res.detail, "bad password");
	T_EQ(CHECK(a, "two@example.com", "pw-one", NULL, &res), AUTH_REJECTED);
	T_EQ(res.reason, AUTH_REASON_NO_USER);
	T_EQ(CHECK(a, "one@example.com", "", NULL, &res), AUTH_REJECTED);
	T_EQ(res.reason, AUTH_REASON_EMPTY_PASSWORD);
	/* A NUL inside the password is refused, not truncated to "pw-one". */
	T_EQ(CHECK(a, "one@example.com", "pw-one\0tail", NULL, &res), AUTH_REJECTED);
	T_EQ(res.reason, AUTH_REASON_BAD_PASSWORD);
	T_EQ(auth_check(a, "one@example.com\0x", 17, "pw-one", 6, NULL, &res), AUTH_REJECTED);
	T_EQ(res.reason, AUTH_REASON_BAD_NAME);
	T_EQ(CHECK(a, "one@example.com\r", "pw-one", NULL, &res), AUTH_REJECTED);
	T_EQ(res.reason, AUTH_REASON_BAD_NAME);
	/* Right password, but the name cannot be a directory under mail_dir. */
	T_EQ(CHECK(a, "bad/name@example.com", "pw", NULL, &res), AUTH_REJECTED);
	T_EQ(res.reason, AUTH_REASON_BAD_NAME);
	T_STREQ(res.home, "");
	auth_free(a);
	config_free(c);
}

static void test_check_penalty_applied(void)
{
	struct config *c = passwd_config();
	struct auth *a = NULL;
	struct auth_result res;
	struct timespec t0;
	char err[256];
	const char *src = "192.0.2.77";

	if (c == NULL || auth_open(c, &a, err, sizeof(err)) != 0) {
		T_OK(0);
		config_free(c);
		return;
	}
	T_EQ(CHECK(a, "one@example.com", "wrong", src, &res), AUTH_REJECTED);
	T_EQ(res.penalty_ms, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	T_EQ(CHECK(a, "nobody@example.com", "wrong", src, &res), AUTH_REJECTED);
	T_EQ(res.penalty_ms, 250);
	T_OK(ms_since(&t0) >= 250);
	/* The right password waits too (no early answer), then clears it. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	T_EQ(CHECK(a, "one@example.com", "pw-one", src, &res), AUTH_OK);
	T_EQ(res.penalty_ms, 500);
	T_OK(ms_since(&t0) >= 500);
	T_EQ(CHECK(a, "one@example.com", "wrong", src, &res), AUTH_REJECTED);
	T_EQ(res.penalty_ms, 0);
	/* Local callers (no source) neither pay nor record. */
	T_EQ(CHECK(a, "one@example.com", "wrong", NULL, &res), AUTH_REJECTED);
	T_EQ(res.penalty_ms, 0);
	T_EQ(auth_penalty_get(c->state_dir, src, time(NULL)), 250);
	auth_free(a);
	config_free(c);
}

static void test_open_errors(void)
{
	struct config *c = NULL;
	struct auth *a = NULL;
	char err[256];
	const char *noauth = "mail_dir = /tmp\n";
	const char *ldap = "[ldap]\nhost = 127.0.0.1\ndc_domain = dc=example,dc=com\n"
			   "admin_name = admin\nadmin_password_file = /nonexistent/pw\n"
			   "account = a\nuser_group = mail_user\n";

	T_EQ(config_parse(noauth, strlen(noauth), "t.conf", &c, err, sizeof(err)), 0);
	T_OK(auth_open(c, &a, err, sizeof(err)) != 0);
	T_OK(a == NULL);
	config_free(c);
	c = NULL;
	T_EQ(config_parse(ldap, strlen(ldap), "t.conf", &c, err, sizeof(err)), 0);
	T_OK(auth_open(c, &a, err, sizeof(err)) != 0);
	T_OK(strstr(err, "/nonexistent/pw") != NULL);
	T_OK(a == NULL);
	config_free(c);
	auth_free(NULL);
	ldapauth_free(NULL);
}

int main(void)
{
	log_init("test_auth", -1);
	make_tmpdir();
	T_RUN(test_penalty_schedule);
	T_RUN(test_penalty_grow_reset);
	T_RUN(test_penalty_forget);
	T_RUN(test_penalty_ipv6_prefix);
	T_RUN(test_penalty_bounded);
	T_RUN(test_penalty_unusable);
	T_RUN(test_escape);
	T_RUN(test_check_passwd);
	T_RUN(test_check_penalty_applied);
	T_RUN(test_open_errors);
	remove_tmpdir();
	return t_done();
}

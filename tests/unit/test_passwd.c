#include "passwd.h"
#include "t.h"

#include <stdlib.h>

/* All of these hash "pw-one" (mkpasswd, openssl passwd). */
#define H_SHA512 "$6$G9/vMQmnXRBG5RZK$uDRxgjfk933T/Lc67qLNZHqP3PdLF/8vzIiKcKDEnRy.EutmSzkWD3Uo2mADtlW1gqcXolmGKHOdcJvUq2jIb."
#define H_YES "$y$j9T$jSN2K9N2NnsR9YtEjo4WK/$Nd0uAbrBHwY15.Yz9BU1abpAYWUqDYBiekm1wE53jaB"
#define H_BCRYPT "$2b$05$3Mzpiuh/1DyuvIK0cDrEHe5xDVARjW1y1lxm2PaKLhVf8Je3gPp3e"
#define H_SHA256 "$5$awN.O0Lyj35WRYRR$gYdwD6S8wqCaFesPJEQ.YcOZBwKvRx9N4xuvXIzCRF9"
#define H_MD5 "$1$I/koCKg1$7f37KYAU9cO7EBxQ2e48j."

static int verify_line(const char *line, const char *pw)
{
	struct passwd_entry e;
	size_t pos = 0;
	int ln = 0;
	char err[200];

	if (passwd_next(line, strlen(line), &pos, &ln, &e, err, sizeof(err)) != PASSWD_ENTRY)
		return -2;
	return passwd_verify(&e, pw);
}

static void test_schemes(void)
{
	T_EQ(verify_line("a:{SHA512-CRYPT}" H_SHA512, "pw-one"), 1);
	T_EQ(verify_line("a:{SHA512-CRYPT}" H_SHA512, "pw-two"), 0);
	T_EQ(verify_line("a:{sha512-crypt}" H_SHA512 ":::::", "pw-one"), 1);
	T_EQ(verify_line("a:{SHA256-CRYPT}" H_SHA256, "pw-one"), 1);
	T_EQ(verify_line("a:{BLF-CRYPT}" H_BCRYPT, "pw-one"), 1);
	T_EQ(verify_line("a:{BLF-CRYPT}" H_BCRYPT, "pw-on"), 0);
	T_EQ(verify_line("a:{CRYPT}" H_YES, "pw-one"), 1);
	T_EQ(verify_line("a:{CRYPT}" H_YES, ""), 0);
	T_EQ(verify_line("a:" H_YES, "pw-one"), 1);
	T_EQ(verify_line("a:" H_SHA512 "\r\n", "pw-one"), 1);
	T_EQ(verify_line("a:{MD5-CRYPT}" H_MD5, "pw-one"), 1);
	T_EQ(verify_line("a:{PLAIN}pw-one", "pw-one"), 1);
	T_EQ(verify_line("a:{PLAIN}pw-one", "pw-one "), 0);
	T_EQ(verify_line("a:{CLEARTEXT}pw-one", "pw-on"), 0);
}

static void test_weak_flag(void)
{
	struct passwd_entry e;
	size_t pos = 0;
	int ln = 0;
	const char *b = "a:{PLAIN}x\nb:{MD5-CRYPT}" H_MD5 "\nc:{CRYPT}" H_YES "\n";

	T_EQ(passwd_next(b, strlen(b), &pos, &ln, &e, NULL, 0), PASSWD_ENTRY);
	T_EQ(e.weak, 1);
	T_STREQ(e.scheme_name, "PLAIN");
	T_EQ(passwd_next(b, strlen(b), &pos, &ln, &e, NULL, 0), PASSWD_ENTRY);
	T_EQ(e.weak, 1);
	T_EQ(passwd_next(b, strlen(b), &pos, &ln, &e, NULL, 0), PASSWD_ENTRY);
	T_EQ(e.weak, 0);
	T_EQ(e.line, 3);
	T_EQ(passwd_next(b, strlen(b), &pos, &ln, &e, NULL, 0), PASSWD_END);
}

static void test_bad_lines(void)
{
	char err[200];
	struct passwd_entry e;
	size_t pos;
	int ln;
	static const char *const bad[] = {
		"a:pw-one",			/* unmarked clear text */
		"a:abcdefghijklm",		/* would be DES if unmarked: refused */
		"a:{SSHA}abcdef",		/* scheme we do not have */
		"a:{SHA512-CRYPT}" H_YES,	/* hash does not match the scheme */
		"a:{SHA512-CRYPT",		/* unterminated */
		"a:{PLAIN}",			/* empty */
		"a:",
		":{PLAIN}x",			/* no user */
		"nocolon",
		"a\001b:{PLAIN}x",
		"a:{CRYPT}$9$nonsense",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pos = 0;
		ln = 0;
		err[0] = '\0';
		if (passwd_next(bad[i], strlen(bad[i]), &pos, &ln, &e, err, sizeof(err)) != PASSWD_BAD)
			printf("# accepted: %s\n", bad[i]), t_cur_failed++;
		T_OK(strncmp(err, "line 1: ", 8) == 0);
	}
	/* An embedded NUL makes the line bad, and parsing goes on after it. */
	{
		const char b[] = "a:{PLAIN}x\0y\nb:{PLAIN}z\n";
		pos = 0;
		ln = 0;
		T_EQ(passwd_next(b, sizeof(b) - 1, &pos, &ln, &e, err, sizeof(err)), PASSWD_BAD);
		T_EQ(passwd_next(b, sizeof(b) - 1, &pos, &ln, &e, err, sizeof(err)), PASSWD_ENTRY);
		T_STREQ(e.user, "b");
		T_EQ(e.line, 2);
	}
}

static void test_limits(void)
{
	size_t n = PASSWD_MAX_LINE + 100, pos = 0;
	char *b = malloc(n + 40);
	struct passwd_entry e;
	int ln = 0;
	char err[200];

	memset(b, 'u', n);
	memcpy(b + n, ":{PLAIN}x\nok:{PLAIN}y", 22);
	T_EQ(passwd_next(b, n + 21, &pos, &ln, &e, err, sizeof(err)), PASSWD_BAD);
	T_OK(strstr(err, "too long") != NULL);
	T_EQ(passwd_next(b, n + 21, &pos, &ln, &e, err, sizeof(err)), PASSWD_ENTRY);
	T_STREQ(e.user, "ok");
	T_STREQ(e.hash, "y");
	/* A user name just over the limit on a line under it. */
	memset(b, 'v', PASSWD_MAX_USER + 1);
	memcpy(b + PASSWD_MAX_USER + 1, ":{PLAIN}x", 9);
	pos = 0;
	ln = 0;
	T_EQ(passwd_next(b, PASSWD_MAX_USER + 10, &pos, &ln, &e, err, sizeof(err)), PASSWD_BAD);
	free(b);
}

static void test_find(void)
{
	const char *b = "# users\n\nalice@example.com:{PLAIN}a\nbroken line\n"
			"Bob@Example.com:{CRYPT}" H_YES ":1000:1000::/home/bob::\n";
	struct passwd_entry e;
	int nbad = -1;
	char err[200];

	T_EQ(passwd_find(b, strlen(b), "bob@example.com", &e, &nbad, err, sizeof(err)), 1);
	T_STREQ(e.user, "Bob@Example.com");
	T_STREQ(e.hash, H_YES);
	T_EQ(e.line, 5);
	T_EQ(nbad, 1);
	T_STREQ(err, "line 4: no ':' after the user name");
	T_EQ(passwd_find(b, strlen(b), "ALICE@example.com", &e, NULL, NULL, 0), 1);
	T_EQ(passwd_find(b, strlen(b), "carol@example.com", &e, &nbad, NULL, 0), 0);
	T_EQ(passwd_find(b, strlen(b), "alice@example.co", &e, NULL, NULL, 0), 0);
	T_EQ(passwd_find("", 0, "a", &e, NULL, NULL, 0), 0);
}

int main(void)
{
	T_RUN(test_schemes);
	T_RUN(test_weak_flag);
	T_RUN(test_bad_lines);
	T_RUN(test_limits);
	T_RUN(test_find);
	return t_done();
}

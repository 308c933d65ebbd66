/*
 * mail-ldap-check: would this user and password log in, and if not, why.
 * The password comes on stdin (one line) or from a no-echo prompt; never
 * from argv.  See mail-ldap-check(1).
 */
#include "auth.h"
#include "config.h"
#include "ldapauth.h"
#include "log.h"
#include "passwd.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sysexits.h>
#include <termios.h>
#include <unistd.h>

#ifndef MAILKEEP_VERSION
#define MAILKEEP_VERSION "0.1"
#endif

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mail-ldap-check [-c FILE] [-v] [--prompt] USER   (password on stdin)\n"
		"       mail-ldap-check [-c FILE] [-v] --groups USER\n"
		"       mail-ldap-check [-c FILE] [-v] --members\n"
		"       mail-ldap-check [-c FILE] [-v] --batch   (USER<TAB>PASSWORD lines on stdin)\n"
		"Checks USER's login against [ldap] or [users] passwd_file of mailkeep.conf.\n"
		"  -c FILE     config file (else $MAILKEEP_CONFIG, else %s)\n"
		"  -v          debug diagnostics on stderr\n"
		"  --prompt    ask for the password on the terminal without echo\n"
		"  --groups    list USER's LDAP groups: name<TAB>dn\n"
		"  --members   list who may log in: login<TAB>dn\n"
		"  --batch     check USER<TAB>PASSWORD lines from stdin on one connection\n"
		"Exit: 0 ok, 77 rejected, 69 LDAP unavailable, 78 config error, 64 usage.\n",
		CONFIG_DEFAULT_PATH);
}

/*
 * Reads one line of at most cap-1 bytes into buf (no newline, no "\r")
 * with read(2), so no stdio buffer keeps a copy.  A longer line is consumed
 * and reported as cap bytes long, which the caller's checks refuse.
 * Returns the length, or -1 at end of input before any byte.
 */
static ssize_t read_password(char *buf, size_t cap, int prompt)
{
	struct termios old, quiet;
	int restore = 0;
	size_t n = 0, total = 0;
	int any = 0;
	char c;

	if (prompt && isatty(STDIN_FILENO)) {
		fputs("Password: ", stderr);
		fflush(stderr);
		if (tcgetattr(STDIN_FILENO, &old) == 0) {
			quiet = old;
			quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
			restore = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
		}
	}
	for (;;) {
		ssize_t r = read(STDIN_FILENO, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		any = 1;
		if (c == '\n')
			break;
		if (n < cap - 1)
			buf[n++] = c;
		total++;
	}
	if (restore) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	c = 0;
	if (n > 0 && buf[n - 1] == '\r' && total == n)
		n--, total--;
	buf[n] = '\0';
	if (!any)
		return -1;
	return (ssize_t)(total > n ? cap : n);
}

static void print_pair(void *arg, const char *a, const char *b)
{
	(void)arg;
	printf("%s\t%s\n", a, b);
}

static int list_passwd_users(const struct config *cfg)
{
	char *buf, err[256];
	size_t len, pos = 0;
	int line = 0, r;
	struct passwd_entry *e = malloc(sizeof(*e));

	if (e == NULL)
		return EX_OSERR;
	r = passwd_read_file(cfg->users.passwd_file, &buf, &len, err, sizeof(err));
	if (r != 0) {
		log_err("passwd_file", "error=%s", log_q(err));
		free(e);
		return EX_UNAVAILABLE;
	}
	while ((r = passwd_next(buf, len, &pos, &line, e, err, sizeof(err))) != PASSWD_END) {
		if (r == PASSWD_BAD)
			log_warn("passwd_file_bad_line", "file=%s error=%s",
				 log_q(cfg->users.passwd_file), log_q(err));
		else
			printf("%s\t-\n", e->user);
	}
	passwd_free_buf(buf, len);
	explicit_bzero(e, sizeof(*e));
	free(e);
	return 0;
}

static int run_list(struct auth *a, const struct config *cfg, int groups, const char *user)
{
	char err[512];
	enum ldapauth_result r;

	if (!auth_is_ldap(a)) {
		if (groups) {
			fprintf(stderr, "mail-ldap-check: --groups needs an [ldap] section\n");
			return EX_USAGE;
		}
		return list_passwd_users(cfg);
	}
	if (groups)
		r = ldapauth_groups(auth_ldap(a), user, print_pair, NULL, err, sizeof(err));
	else
		r = ldapauth_members(auth_ldap(a), print_pair, NULL, err, sizeof(err));
	if (r == LDAPAUTH_UNAVAILABLE) {
		log_err("ldap_unavailable", "error=%s", log_q(err));
		printf("unavailable error=%s\n", log_q(err));
		return EX_UNAVAILABLE;
	}
	if (r == LDAPAUTH_NO_USER) {
		printf("rejected user=%s reason=%s\n", log_q(user), log_q("no such user"));
		return EX_NOPERM;
	}
	return 0;
}

/* Prints the result line for one check; returns its exit code. */
static int print_result(const char *user, size_t user_len, const struct auth_result *res)
{
	char shown[AUTH_MAX_USER + 1];

	switch (res->status) {
	case AUTH_OK:
		printf("ok user=%s dn=%s home=%s\n", log_q(res->login),
		       res->dn[0] ? log_q(res->dn) : "-", res->home[0] ? log_q(res->home) : "-");
		return 0;
	case AUTH_REJECTED:
		snprintf(shown, sizeof(shown), "%.*s", (int)(user_len < AUTH_MAX_USER ?
			 user_len : AUTH_MAX_USER), user);
		printf("rejected user=%s reason=%s\n", log_q(shown), log_q(res->detail));
		return EX_NOPERM;
	default:
		printf("unavailable error=%s\n", log_q(res->detail));
		return EX_UNAVAILABLE;
	}
}

static int run_check(struct auth *a, const char *user, int prompt)
{
	char pw[AUTH_MAX_PASSWORD + 2];
	struct auth_result *res = calloc(1, sizeof(*res));
	ssize_t n;
	int rc;

	if (res == NULL)
		return EX_OSERR;
	n = read_password(pw, sizeof(pw), prompt);
	auth_check(a, user, strlen(user), pw, n < 0 ? 0 : (size_t)n, NULL, res);
	explicit_bzero(pw, sizeof(pw));
	rc = print_result(user, strlen(user), res);
	free(res);
	return rc;
}

/*
 * --batch: "USER<TAB>PASSWORD" lines on stdin, one result line each, on
 * one LDAP connection.  Exit 69 if any was unavailable, else 77 if any was
 * rejected, else 0.
 */
static int run_batch(struct auth *a)
{
	char line[AUTH_MAX_USER + AUTH_MAX_PASSWORD + 3];
	struct auth_result *res = calloc(1, sizeof(*res));
	int worst = 0;

	if (res == NULL)
		return EX_OSERR;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		ssize_t got = read_password(line, sizeof(line), 0);
		size_t n;
		char *tab;
		int rc;

		if (got < 0)
			break;
		if (got == 0)
			continue;
		n = (size_t)got;
		tab = n < sizeof(line) ? memchr(line, '\t', n) : NULL;
		if (tab == NULL) {
			printf("rejected user=- reason=%s\n", log_q("line is not USER<TAB>PASSWORD"));
			rc = EX_NOPERM;
		} else {
			auth_check(a, line, (size_t)(tab - line), tab + 1, n - (size_t)(tab - line) - 1,
				   NULL, res);
			rc = print_result(line, (size_t)(tab - line), res);
		}
		explicit_bzero(line, sizeof(line));
		if (rc == EX_UNAVAILABLE || (rc == EX_NOPERM && worst == 0))
			worst = rc;
	}
	free(res);
	return worst;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "prompt", no_argument, NULL, 'P' },
		{ "groups", no_argument, NULL, 'G' },
		{ "members", no_argument, NULL, 'M' },
		{ "batch", no_argument, NULL, 'B' },
		{ NULL, 0, NULL, 0 },
	};
	const char *opt_c = NULL;
	int verbose = 0, prompt = 0, groups = 0, members = 0, batch = 0, c, rc;
	struct rlimit nocore = { 0, 0 };
	struct config *cfg = NULL;
	struct auth *a = NULL;
	char err[512];

	/* The admin password and the user's stay out of core files and ptrace. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	setrlimit(RLIMIT_CORE, &nocore);
	while ((c = getopt_long(argc, argv, "c:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': opt_c = optarg; break;
		case 'v': verbose++; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("mail-ldap-check %s\n", MAILKEEP_VERSION); return 0;
		case 'P': prompt = 1; break;
		case 'G': groups = 1; break;
		case 'M': members = 1; break;
		case 'B': batch = 1; break;
		default: usage(stderr); return EX_USAGE;
		}
	}
	if (groups + members + batch > 1 ||
	    (members || batch ? optind != argc : optind + 1 != argc)) {
		usage(stderr);
		return EX_USAGE;
	}
	log_init("mail-ldap-check", verbose);
	rc = config_load(config_path(opt_c), &cfg, err, sizeof(err));
	if (rc == 0)
		rc = config_require(cfg, CONFIG_NEED_AUTH, err, sizeof(err));
	if (rc == 0)
		rc = auth_open(cfg, &a, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "mail-ldap-check: %s\n", err);
		config_free(cfg);
		return rc;
	}
	if (batch)
		rc = run_batch(a);
	else if (groups || members)
		rc = run_list(a, cfg, groups, members ? NULL : argv[optind]);
	else
		rc = run_check(a, argv[optind], prompt);
	auth_free(a);
	config_free(cfg);
	if (fflush(stdout) != 0 && rc == 0)
		rc = EX_IOERR;
	return rc;
}

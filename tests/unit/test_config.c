/* Unit tests for lib/config.c: every error path names FILE:LINE. */
#include "config.h"
#include "t.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

static char err[1024];

static struct config *parse_ok(const char *text)
{
	struct config *c = NULL;
	int rc = config_parse(text, strlen(text), "t.conf", &c, err, sizeof(err));
	if (rc != 0)
		printf("# unexpected error: %s\n", err);
	return c;
}

/* Expects an EX_CONFIG whose message contains WANT. */
static int parse_fails_n(const char *text, size_t len, const char *want)
{
	struct config *c = NULL;
	int rc = config_parse(text, len, "t.conf", &c, err, sizeof(err));
	if (rc != EX_CONFIG || c != NULL) {
		printf("# expected failure '%s', got rc=%d\n", want, rc);
		config_free(c);
		return 0;
	}
	if (strstr(err, want) == NULL) {
		printf("# error '%s' does not contain '%s'\n", err, want);
		return 0;
	}
	return 1;
}

static int parse_fails(const char *text, const char *want)
{
	return parse_fails_n(text, strlen(text), want);
}

static const char *full =
	"# mailkeep example\n"
	"domain    = example.com          # shb.mailserver.domain\n"
	"subdomain = imap\n"
	"tls_cert  = /etc/ssl/fullchain.pem\n"
	"tls_key   = /etc/ssl/key.pem\n"
	"tls_min_protocol = TLSv1.3\n"
	"mail_dir  = /var/vmail\n"
	"index_dir = /var/lib/mailkeep/index\n"
	"state_dir = /var/lib/mailkeep\n"
	"vmail_user = vmail\n"
	"\n"
	"[sync]                           # shb.mailserver.imapSync\n"
	"interval = 5m\n"
	"debug = yes\n"
	"[imap]\n"
	"max_literal = 50M\n"
	"[account fastmail]\n"
	"host = imap.fastmail.com\n"
	"port = 993\n"
	"tls = imaps\n"
	"username = me@example.com\n"
	"password_file = /run/secrets/imap/password\n"
	"timeout = 2m\n"
	"map_junk = Spam\n"
	"map_sent = \"Sent Items\"\n"
	"[relay]\n"
	"host = smtp.fastmail.com\n"
	"tls = smtps\n"
	"username = me@example.com\n"
	"password_file = /run/secrets/smtp/password\n"
	"[ldap]\n"
	"host = 127.0.0.1\n"
	"port = 3890\n"
	"dc_domain = dc=example,dc=com\n"
	"admin_name = admin\n"
	"admin_password_file = /run/secrets/ldap\n"
	"account = fastmail\n"
	"user_group = mail_user\n"
	"[mailbox Junk]\n"
	"special_use = \\Junk\n"
	"auto = subscribe\n"
	"[mailbox Archive]\n"
	"special_use = \\archive\n"
	"auto = create\n";

static void test_full_example(void)
{
	struct config *c = parse_ok(full);

	T_OK(c != NULL);
	if (c == NULL)
		return;
	T_STREQ(c->domain, "example.com");
	T_STREQ(c->tls_min_protocol, "TLSv1.3");
	T_STREQ(c->vmail_user, "vmail");
	T_EQ(c->sync.interval, 300);
	T_EQ(c->sync.debug, 1);
	T_EQ(c->imap.max_literal, 50LL * 1024 * 1024);
	T_EQ(c->imap.max_line, 64 * 1024);
	T_EQ(c->naccounts, 1);
	T_STREQ(c->accounts[0].name, "fastmail");
	T_EQ(c->accounts[0].port, 993);
	T_EQ(c->accounts[0].tls, CONFIG_TLS_IMAPS);
	T_EQ(c->accounts[0].timeout, 120);
	T_STREQ(c->accounts[0].map[SPECIAL_JUNK], "Spam");
	T_STREQ(c->accounts[0].map[SPECIAL_SENT], "Sent Items");
	T_OK(c->accounts[0].map[SPECIAL_TRASH] == NULL);
	T_EQ(c->relay.present, 1);
	T_EQ(c->relay.tls, CONFIG_TLS_SMTPS);
	T_EQ(c->relay.port, 465);
	T_EQ(c->ldap.port, 3890);
	T_EQ(c->ldap.tls, CONFIG_TLS_NONE);
	T_STREQ(c->ldap.user_group, "mail_user");
	T_EQ(c->nmailboxes, 2);
	T_EQ(c->mailboxes[0].special_use, SPECIAL_JUNK);
	T_EQ(c->mailboxes[0].autocreate, MAILBOX_AUTO_SUBSCRIBE);
	T_EQ(c->mailboxes[1].special_use, SPECIAL_ARCHIVE);
	T_EQ(c->mailboxes[1].autocreate, MAILBOX_AUTO_CREATE);
	T_OK(config_account(c, "fastmail") == &c->accounts[0]);
	T_OK(config_account(c, "other") == NULL);
	T_STREQ(config_user_account(c), "fastmail");
	T_EQ(config_require(c, CONFIG_NEED_MAIL_DIR | CONFIG_NEED_TLS | CONFIG_NEED_ACCOUNT |
			    CONFIG_NEED_RELAY | CONFIG_NEED_AUTH | CONFIG_NEED_LDAP |
			    CONFIG_NEED_DOMAIN | CONFIG_NEED_STATE_DIR, err, sizeof(err)), 0);
	config_free(c);
}

static void test_defaults(void)
{
	struct config *c = parse_ok("mail_dir = /m\n[users]\npasswd_file = /etc/p\naccount = x\n");

	T_OK(c != NULL);
	if (c == NULL)
		return;
	T_STREQ(c->subdomain, "imap");
	T_STREQ(c->tls_min_protocol, "TLSv1.2");
	T_STREQ(c->vmail_user, "vmail");
	T_EQ(c->sync.interval, 300);
	T_EQ(c->relay.present, 0);
	T_EQ(c->relay.port, 587);
	T_EQ(c->ldap.present, 0);
	T_EQ(c->imap.idle_timeout, 1800);
	T_STREQ(config_user_account(c), "x");
	T_EQ(config_require(c, CONFIG_NEED_RELAY, err, sizeof(err)), EX_CONFIG);
	T_OK(strstr(err, "[relay]") != NULL);
	T_EQ(config_require(c, CONFIG_NEED_TLS, err, sizeof(err)), EX_CONFIG);
	T_EQ(config_require(c, CONFIG_NEED_ACCOUNT, err, sizeof(err)), EX_CONFIG);
	T_EQ(config_require(c, CONFIG_NEED_STATE_DIR, err, sizeof(err)), EX_CONFIG);
	T_EQ(config_require(c, CONFIG_NEED_DOMAIN, err, sizeof(err)), EX_CONFIG);
	T_EQ(config_require(c, CONFIG_NEED_LDAP, err, sizeof(err)), EX_CONFIG);
	T_EQ(config_require(c, CONFIG_NEED_AUTH | CONFIG_NEED_MAIL_DIR, err, sizeof(err)), 0);
	config_free(c);

	c = parse_ok("[account a]\nhost=h\nusername=u\npassword_file=/p\ntls=starttls\n");
	T_OK(c != NULL);
	if (c != NULL) {
		T_EQ(c->accounts[0].port, 143);
		T_STREQ(config_user_account(c), "a");
		T_EQ(config_require(c, CONFIG_NEED_MAIL_DIR, err, sizeof(err)), EX_CONFIG);
		T_OK(strstr(err, "mail_dir") != NULL);
		config_free(c);
	}
	/* an empty file is a valid (if useless) config */
	c = parse_ok("");
	T_OK(c != NULL);
	T_OK(c == NULL || config_user_account(c) == NULL);
	config_free(c);
}

static void test_syntax_errors(void)
{
	T_OK(parse_fails("domain = a\nbogus line\n", "t.conf:2: expected 'key = value'"));
	T_OK(parse_fails("= value\n", "t.conf:1: missing key"));
	T_OK(parse_fails("[sync\n", "t.conf:1: section header must end"));
	T_OK(parse_fails("[sync] x\n", "t.conf:1: section header must end"));
	T_OK(parse_fails("[sync]#x\n", "t.conf:1: section header must end"));
	T_OK(parse_fails("\n\n[nope]\n", "t.conf:3: unknown section [nope]"));
	T_OK(parse_fails("[account]\n", "t.conf:1: [account] needs a name"));
	T_OK(parse_fails("[mailbox]\n", "needs a name"));
	T_OK(parse_fails("[relay x]\n", "t.conf:1: [relay] takes no name"));
	T_OK(parse_fails("colour = blue\n", "t.conf:1: unknown key 'colour'"));
	T_OK(parse_fails("[sync]\nhost = x\n", "t.conf:2: key 'host' does not belong in [sync]"));
	T_OK(parse_fails("interval = 5m\n", "key 'interval' does not belong in (global)"));
	T_OK(parse_fails("domain = a.b\ndomain = c.d\n", "t.conf:2: key 'domain' set twice"));
	T_OK(parse_fails("[sync]\n[sync]\n", "t.conf:2: section [sync] appears twice"));
	T_OK(parse_fails("[account a]\nhost=h\nusername=u\npassword_file=/p\n[account a]\n",
			 "t.conf:5: [account a] already defined at line 1"));
	T_OK(parse_fails("[mailbox Junk]\n[mailbox Junk]\n", "defined twice"));
	T_OK(parse_fails("domain =\n", "t.conf:1: domain: empty value"));
	T_OK(parse_fails("domain = \"abc\n", "unterminated quoted value"));
	T_OK(parse_fails("domain = \"abc\" x\n", "text after the closing quote"));
	T_OK(parse_fails("domain = a\x01 b\n", "control character"));
	T_OK(parse_fails_n("domain = a\0b\n", 13, "NUL byte"));
	/* an overlong line */
	{
		char *big = malloc(CONFIG_MAX_LINE + 100);
		memset(big, 'a', CONFIG_MAX_LINE + 50);
		memcpy(big, "domain = ", 9);
		big[CONFIG_MAX_LINE + 50] = '\0';
		T_OK(parse_fails(big, "t.conf:1: line longer than"));
		free(big);
	}
	/* comments, blank lines, CRLF, tabs and quoted '#' are fine */
	{
		struct config *c = parse_ok("  # c\r\n\t; c2\r\nstate_dir = \"/a # b\"\r\n"
					    "domain\t=\tx.y\t# tail\r\n");
		T_OK(c != NULL);
		if (c) {
			T_STREQ(c->state_dir, "/a # b");
			T_STREQ(c->domain, "x.y");
		}
		config_free(c);
	}
}

static void test_value_errors(void)
{
	T_OK(parse_fails("domain = exa mple\n", "domain: 'exa mple' is not a valid name"));
	T_OK(parse_fails("mail_dir = relative/path\n", "mail_dir: 'relative/path' is not an absolute path"));
	T_OK(parse_fails("tls_key = key.pem\n", "tls_key: 'key.pem' is not an absolute path"));
	T_OK(parse_fails("tls_min_protocol = TLSv1.0\n", "must be TLSv1.2 or TLSv1.3"));
	T_OK(parse_fails("[sync]\ninterval = soon\n", "t.conf:2: interval: 'soon' is not a duration"));
	T_OK(parse_fails("[sync]\ninterval = 0\n", "must be greater than zero"));
	T_OK(parse_fails("[sync]\ninterval = 5x\n", "is not a duration"));
	T_OK(parse_fails("[sync]\ndebug = maybe\n", "debug: 'maybe' is not yes or no"));
	T_OK(parse_fails("[imap]\nmax_literal = -1\n", "is not a size"));
	T_OK(parse_fails("[imap]\nmax_line = 99999999999\n", "is not a size"));
	T_OK(parse_fails("[account a]\nport = 0\n", "port: '0' is not a port number"));
	T_OK(parse_fails("[account a]\nport = 70000\n", "is not a port number"));
	T_OK(parse_fails("[account a]\nport = 9k\n", "is not a port number"));
	T_OK(parse_fails("[account a]\ntls = ssl\n", "tls: 'ssl' must be imaps or starttls"));
	T_OK(parse_fails("[relay]\ntls = imaps\n", "must be starttls or smtps"));
	T_OK(parse_fails("[ldap]\ntls = yes\n", "must be no, starttls or ldaps"));
	T_OK(parse_fails("[ldap]\ndc_domain = example.com\n", "is not a DN"));
	T_OK(parse_fails("[ldap]\ndc_domain = dc=x)(uid=*\n", "is not a DN"));
	T_OK(parse_fails("[account a]\nmap_junk = ../etc\n", "map_junk: '../etc' is not a valid folder name"));
	T_OK(parse_fails("[account a]\nmap_junk = a//b\n", "is not a valid folder name"));
	T_OK(parse_fails("[account a/b]\n", "account name 'a/b'"));
	T_OK(parse_fails("[account ..]\n", "account name '..'"));
	T_OK(parse_fails("[mailbox ../x]\n", "not a valid folder name"));
	T_OK(parse_fails("[mailbox /abs]\n", "not a valid folder name"));
	T_OK(parse_fails("[mailbox J]\nspecial_use = \\Spam\n", "special_use: '\\Spam' must be one of"));
	T_OK(parse_fails("[mailbox J]\nauto = always\n", "auto: 'always' must be"));
}

static void test_missing_required(void)
{
	T_OK(parse_fails("[account a]\nusername=u\npassword_file=/p\n",
			 "t.conf:1: [account a]: host is required"));
	T_OK(parse_fails("\n[account a]\nhost=h\npassword_file=/p\n",
			 "t.conf:2: [account a]: username is required"));
	T_OK(parse_fails("[account a]\nhost=h\nusername=u\n", "password_file is required"));
	T_OK(parse_fails("[relay]\nusername=u\npassword_file=/p\n", "t.conf:1: [relay]: host is required"));
	T_OK(parse_fails("[relay]\nhost=h\n", "username and password_file are required"));
	T_OK(parse_fails("\n[ldap]\nhost=h\n", "t.conf:2: [ldap]: host, dc_domain"));
	T_OK(parse_fails("[users]\naccount=a\n", "[users]: passwd_file is required"));
	T_OK(parse_fails("[users]\npasswd_file=/p\n", "account is required unless exactly one"));
	T_OK(parse_fails("[ldap]\nhost=h\ndc_domain=dc=x\nadmin_name=a\nadmin_password_file=/p\n"
			 "user_group=g\n", "[ldap]: account is required"));
}

static void test_durations_sizes(void)
{
	T_EQ(config_parse_duration("30"), 30);
	T_EQ(config_parse_duration("30s"), 30);
	T_EQ(config_parse_duration("5m"), 300);
	T_EQ(config_parse_duration("2h"), 7200);
	T_EQ(config_parse_duration("1d"), 86400);
	T_EQ(config_parse_duration("1D"), 86400);
	T_EQ(config_parse_duration(""), -1);
	T_EQ(config_parse_duration("m"), -1);
	T_EQ(config_parse_duration("-5"), -1);
	T_EQ(config_parse_duration("5mm"), -1);
	T_EQ(config_parse_duration("99999999999999999999"), -1);
	T_EQ(config_parse_size("64k"), 65536);
	T_EQ(config_parse_size("50M"), 50LL * 1048576);
	T_EQ(config_parse_size("2G"), 2LL << 30);
	T_EQ(config_parse_size("9223372036854775807g"), -1);
}

static void test_user_home(void)
{
	struct config *c = parse_ok("mail_dir = /var/vmail\n[users]\npasswd_file=/p\naccount=fm\n");
	char home[256];

	T_OK(c != NULL);
	if (c == NULL)
		return;
	T_EQ(config_user_home(c, "alice@example.com", home, sizeof(home), err, sizeof(err)), 0);
	T_STREQ(home, "/var/vmail/fm/alice@example.com");
	T_EQ(config_user_home(c, "../root", home, sizeof(home), err, sizeof(err)), EX_USAGE);
	T_EQ(config_user_home(c, "..", home, sizeof(home), err, sizeof(err)), EX_USAGE);
	T_EQ(config_user_home(c, ".", home, sizeof(home), err, sizeof(err)), EX_USAGE);
	T_EQ(config_user_home(c, "", home, sizeof(home), err, sizeof(err)), EX_USAGE);
	T_EQ(config_user_home(c, "a\nb", home, sizeof(home), err, sizeof(err)), EX_USAGE);
	{
		char big[300];
		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		T_EQ(config_user_home(c, big, home, sizeof(home), err, sizeof(err)), EX_USAGE);
		big[250] = '\0';
		T_EQ(config_user_home(c, big, home, 64, err, sizeof(err)), EX_USAGE);
	}
	config_free(c);
	c = parse_ok("[users]\npasswd_file=/p\naccount=fm\n");
	T_EQ(config_user_home(c, "bob", home, sizeof(home), err, sizeof(err)), EX_CONFIG);
	config_free(c);
}

static char dir[] = "/tmp/mk-test-config.XXXXXX";

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	(void)!write(fd, text, strlen(text));
	fchmod(fd, mode);
	close(fd);
}

static void test_secrets(void)
{
	char sec[256], conf[256], text[1024];
	char *s = NULL;
	struct config *c = NULL;

	snprintf(sec, sizeof(sec), "%s/secret", dir);
	snprintf(conf, sizeof(conf), "%s/mailkeep.conf", dir);

	write_file(sec, "hunter2\n", 0600);
	T_EQ(config_read_secret(sec, &s, err, sizeof(err)), 0);
	T_STREQ(s, "hunter2");
	secret_free(s);
	write_file(sec, "pa ss\r\n", 0400);
	T_EQ(config_read_secret(sec, &s, err, sizeof(err)), 0);
	T_STREQ(s, "pa ss");
	secret_free(s);
	write_file(sec, "no-newline", 0600);
	T_EQ(config_read_secret(sec, &s, err, sizeof(err)), 0);
	T_STREQ(s, "no-newline");
	secret_free(s);
	/* only one trailing newline is removed */
	write_file(sec, "two\n\n", 0600);
	T_EQ(config_read_secret(sec, &s, err, sizeof(err)), 0);
	T_STREQ(s, "two\n");
	secret_free(s);

	write_file(sec, "hunter2\n", 0644);
	T_EQ(config_read_secret(sec, &s, err, sizeof(err)), EX_CONFIG);
	T_OK(s == NULL);
	T_OK(strstr(err, "accessible by group or others") != NULL);
	T_OK(strstr(err, "hunter2") == NULL);
	write_file(sec, "hunter2\n", 0640);
	T_EQ(config_read_secret(sec, &s, err, sizeof(err)), EX_CONFIG);
	write_file(sec, "\n", 0600);
	T_EQ(config_read_secret(sec, &s, err, sizeof(err)), EX_CONFIG);
	T_OK(strstr(err, "empty") != NULL);
	T_EQ(config_read_secret("/nonexistent/secret", &s, err, sizeof(err)), EX_NOINPUT);
	T_EQ(config_read_secret(dir, &s, err, sizeof(err)), EX_CONFIG);

	/* config_load checks existing secret files and names the key's line */
	write_file(sec, "hunter2\n", 0644);
	snprintf(text, sizeof(text), "mail_dir = /m\n[account a]\nhost = h\nusername = u\n"
		 "password_file = %s\n", sec);
	write_file(conf, text, 0644);
	T_EQ(config_load(conf, &c, err, sizeof(err)), EX_CONFIG);
	T_OK(c == NULL);
	T_OK(strstr(err, ":5: secret file") != NULL);
	T_OK(strstr(err, "hunter2") == NULL);
	chmod(sec, 0600);
	T_EQ(config_load(conf, &c, err, sizeof(err)), 0);
	T_OK(c != NULL);
	T_OK(c != NULL && strcmp(c->path, conf) == 0);
	config_free(c);
	/* a secret that does not exist yet is not a load error */
	unlink(sec);
	T_EQ(config_load(conf, &c, err, sizeof(err)), 0);
	config_free(c);

	T_EQ(config_load("/nonexistent/mailkeep.conf", &c, err, sizeof(err)), EX_CONFIG);
	T_OK(strstr(err, "/nonexistent/mailkeep.conf: cannot open") != NULL);
	T_EQ(config_load(dir, &c, err, sizeof(err)), EX_CONFIG);
	write_file(conf, "mail_dir = /m\n[bad]\n", 0644);
	T_EQ(config_load(conf, &c, err, sizeof(err)), EX_CONFIG);
	snprintf(text, sizeof(text), "%s:2: unknown section", conf);
	T_OK(strstr(err, text) != NULL);
	unlink(conf);
}

static void test_config_path(void)
{
	unsetenv("MAILKEEP_CONFIG");
	T_STREQ(config_path(NULL), CONFIG_DEFAULT_PATH);
	setenv("MAILKEEP_CONFIG", "/x/y.conf", 1);
	T_STREQ(config_path(NULL), "/x/y.conf");
	T_STREQ(config_path("/a.conf"), "/a.conf");
	unsetenv("MAILKEEP_CONFIG");
}

static void test_special_use(void)
{
	T_EQ(special_use_from_flag("\\Junk"), SPECIAL_JUNK);
	T_EQ(special_use_from_flag("\\sent"), SPECIAL_SENT);
	T_EQ(special_use_from_flag("Junk"), -1);
	T_STREQ(special_use_local[SPECIAL_TRASH], "Trash");
}

int main(void)
{
	if (mkdtemp(dir) == NULL)
		return 2;
	T_RUN(test_full_example);
	T_RUN(test_defaults);
	T_RUN(test_syntax_errors);
	T_RUN(test_value_errors);
	T_RUN(test_missing_required);
	T_RUN(test_durations_sizes);
	T_RUN(test_user_home);
	T_RUN(test_secrets);
	T_RUN(test_config_path);
	T_RUN(test_special_use);
	rmdir(dir);
	return t_done();
}

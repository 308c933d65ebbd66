/*
 * mail-serve-imap: the IMAP server clients talk to, one process per
 * connection (inetd, systemd Accept=yes), or accepting on --listen /
 * LISTEN_FDS and forking.  See mail-serve-imap(1).
 */
#include "auth.h"
#include "config.h"
#include "imapd.h"
#include "log.h"
#include "maildir.h"
#include "server.h"
#include "tls.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sysexits.h>
#include <unistd.h>

#ifndef MAILKEEP_VERSION
#define MAILKEEP_VERSION "0.1"
#endif
#ifndef MAILKEEP_LIBEXECDIR
#define MAILKEEP_LIBEXECDIR "/usr/local/libexec/mailkeep"
#endif

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mail-serve-imap [-c FILE] [-v] [--tls] [--listen ADDR:PORT]\n"
		"                       [--allow-plaintext] [--home DIR] [--max-connections N]\n"
		"Serves IMAP on stdin/stdout (inetd, systemd Accept=yes), or accepts\n"
		"connections on --listen or systemd's LISTEN_FDS and forks per client.\n"
		"  -c FILE            config file (default $MAILKEEP_CONFIG or %s)\n"
		"  -v                 more logging (repeat for protocol traces)\n"
		"  --tls              implicit TLS (port 993) on the connection\n"
		"  --listen ADDR:PORT accept connections there (tests, debugging)\n"
		"  --allow-plaintext  allow LOGIN without TLS from loopback clients\n"
		"  --home DIR         skip login: serve DIR/mail (PREAUTH; local use)\n"
		"  --max-connections N  sessions at once in --listen mode (default 500)\n"
		"  -h, --help         this text\n"
		"  --version          print the version\n",
		CONFIG_DEFAULT_PATH);
}

/*
 * The session binary a login hands the client to: next to this program
 * (<bindir>/../libexec/mailkeep/, the build tree and `make install`), else
 * the compiled-in LIBEXECDIR.  NULL if neither is there.
 */
static const char *session_binary(char *buf, size_t len)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			if ((size_t)snprintf(buf, len, "%s/../libexec/mailkeep/mail-imap-session",
					     self) < len && access(buf, X_OK) == 0)
				return buf;
		}
	}
	if ((size_t)snprintf(buf, len, "%s/mail-imap-session", MAILKEEP_LIBEXECDIR) < len &&
	    access(buf, X_OK) == 0)
		return buf;
	return NULL;
}

struct ctx {
	struct imapd_opts opts;
	const char *vmail_user;
};

static int session(int fd_in, int fd_out, const char *peer, void *arg)
{
	struct ctx *c = arg;
	char err[512];
	int rc;

	rc = server_drop_privileges(c->vmail_user, err, sizeof(err));
	if (rc != 0) {
		log_err("privileges", "error=%s", log_q(err));
		(void)!write(fd_out, "* BYE Server misconfigured.\r\n", 29);
		return rc;
	}
	return imapd_session(&c->opts, fd_in, fd_out, peer);
}

int main(int argc, char **argv)
{
	enum { OPT_TLS = 256, OPT_LISTEN, OPT_PLAIN, OPT_HOME, OPT_VERSION, OPT_MAXCONN };
	static const struct option longopts[] = {
		{ "tls", no_argument, NULL, OPT_TLS },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "allow-plaintext", no_argument, NULL, OPT_PLAIN },
		{ "home", required_argument, NULL, OPT_HOME },
		{ "max-connections", required_argument, NULL, OPT_MAXCONN },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf = NULL;
	struct server_opts so = { 0 };
	struct config *cfg = NULL;
	struct ctx c = { 0 };
	static char session_path[4200];
	char err[1024];
	int verbose = 0, opt, rc;

	/* the process holds the LDAP bind password and the TLS key */
	prctl(PR_SET_DUMPABLE, 0);
	while ((opt = getopt_long(argc, argv, "c:vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': conf = optarg; break;
		case 'v': verbose++; break;
		case 'h': usage(stdout); return 0;
		case OPT_TLS: c.opts.implicit_tls = 1; break;
		case OPT_LISTEN: so.listen = optarg; break;
		case OPT_PLAIN: c.opts.allow_plaintext = 1; break;
		case OPT_HOME: c.opts.home = optarg; break;
		case OPT_MAXCONN:
			so.max_children = atoi(optarg);
			if (so.max_children < 1 || so.max_children > 100000) {
				fprintf(stderr, "mail-serve-imap: --max-connections: 1 to 100000\n");
				return EX_USAGE;
			}
			break;
		case OPT_VERSION: printf("mail-serve-imap %s\n", MAILKEEP_VERSION); return 0;
		default: usage(stderr); return EX_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EX_USAGE;
	}
	log_init(argv[0], verbose);
	signal(SIGPIPE, SIG_IGN);

	rc = config_load(config_path(conf), &cfg, err, sizeof(err));
	if (rc != 0) {
		log_err("config", "error=%s", log_q(err));
		return rc;
	}
	maildir_set_index_dir(cfg->index_dir);	/* NULL: an index file per folder */
	rc = config_require(cfg, (c.opts.home ? 0 : CONFIG_NEED_MAIL_DIR | CONFIG_NEED_AUTH) |
			    (c.opts.allow_plaintext || c.opts.home ? 0 : CONFIG_NEED_TLS),
			    err, sizeof(err));
	if (rc != 0) {
		log_err("config", "error=%s", log_q(err));
		goto out;
	}
	if (cfg->tls_cert != NULL && cfg->tls_key != NULL) {
		c.opts.tls_ctx = tls_server_ctx(cfg->tls_cert, cfg->tls_key, cfg->tls_min_protocol,
						err, sizeof(err));
		if (c.opts.tls_ctx == NULL) {
			log_err("tls", "error=%s", log_q(err));
			rc = EX_CONFIG;
			goto out;
		}
	} else if (c.opts.implicit_tls) {
		log_err("tls", "error=%s", log_q("--tls needs tls_cert and tls_key in the config"));
		rc = EX_CONFIG;
		goto out;
	}
	if (c.opts.home == NULL) {
		rc = auth_open(cfg, &c.opts.auth, err, sizeof(err));
		if (rc != 0) {
			log_err("auth", "error=%s", log_q(err));
			goto out;
		}
	}
	c.opts.session_path = session_binary(session_path, sizeof(session_path));
	if (c.opts.session_path == NULL)
		log_warn("session_binary", "error=%s", log_q("mail-imap-session not found next to "
			 "this program nor in " MAILKEEP_LIBEXECDIR ": serving sessions in-process"));
	c.opts.cfg = cfg;
	c.vmail_user = cfg->vmail_user;
	rc = server_run(&so, session, &c);
out:
	auth_free(c.opts.auth);
	if (c.opts.tls_ctx != NULL)
		SSL_CTX_free(c.opts.tls_ctx);
	config_free(cfg);
	return rc;
}

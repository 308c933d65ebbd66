/*
 * mail-submit-relay: SMTP submission for the users (serve), the queue
 * runner that relays through the provider (flush), and the queue listing
 * (list).  See mail-submit-relay(1).
 */
#include "auth.h"
#include "config.h"
#include "log.h"
#include "maildir.h"
#include "prefork.h"
#include "queue.h"
#include "relay.h"
#include "server.h"
#include "smtpd.h"
#include "tls.h"

#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#ifndef MAILKEEP_VERSION
#define MAILKEEP_VERSION "0.1"
#endif

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mail-submit-relay [-c FILE] [-v] serve [--tls] [--listen ADDR:PORT]\n"
		"                         [--allow-plaintext] [--timeout SECS] [--no-flush]\n"
		"       mail-submit-relay [-c FILE] [-v] flush [--force] [--id ID]\n"
		"       mail-submit-relay [-c FILE] list [--json]\n"
		"serve   SMTP submission on stdin/stdout (inetd, systemd Accept=yes), or\n"
		"        accepting on --listen or systemd's LISTEN_FDS and forking per client\n"
		"flush   deliver queued messages (local users, then the [relay] provider)\n"
		"list    show the queue, tab-separated (or --json)\n"
		"  -c FILE            config file (default $MAILKEEP_CONFIG or %s)\n"
		"  -v                 more logging (repeat for protocol traces)\n"
		"  --tls              implicit TLS (port 465) on the connection\n"
		"  --listen ADDR:PORT accept connections there (tests, debugging)\n"
		"  --allow-plaintext  allow AUTH without TLS from loopback clients\n"
		"  --timeout SECS     drop a client silent for this long (default %d)\n"
		"  --no-flush         do not start a delivery after each accepted message\n"
		"  --force            flush: ignore the retry schedule\n"
		"  --id ID            flush: only this message\n"
		"  --json             list: JSON array\n"
		"  -h, --help         this text\n"
		"  --version          print the version\n",
		CONFIG_DEFAULT_PATH, SMTPD_TIMEOUT);
}

struct ctx {
	struct smtpd_opts opts;
	const struct config *cfg;
	char *password;			/* provider password for background flushes */
	int no_flush;
};

/*
 * After a 250: deliver now, in a grandchild that nobody waits for, unless
 * a runner is already at work (it picks up what was queued meanwhile, over
 * the connection it has open: no process and no provider login per
 * message).
 */
static void background_flush(void *arg, const char *id)
{
	struct ctx *c = arg;
	int lock_fd = relay_runner_trylock(c->cfg);
	pid_t pid;

	(void)id;
	if (lock_fd < 0)
		return;	/* a runner holds the lock; else the timer's flush will */
	pid = fork();
	if (pid != 0) {
		close(lock_fd);	/* the child's copy keeps the lock */
		if (pid > 0)
			waitpid(pid, NULL, 0);
		return;
	}
	if (fork() != 0)
		_exit(0);
	/* grandchild: off the client's connection */
	setsid();
	int fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		if (fd > 2)
			close(fd);
	}
	struct relay_opts ro = { .cfg = c->cfg, .password = c->password };
	struct relay_stats st;
	char err[512];
	int rc = relay_run_background(&ro, lock_fd, &st, err, sizeof(err));
	if (rc != 0 && rc != EX_TEMPFAIL)
		log_err("flush", "error=%s", log_q(err));
	log_info("background_flush", "messages=%u sent=%u deferred=%u bounced=%u busy=%u",
		 st.messages, st.sent, st.deferred, st.bounced, st.busy);
	_exit(rc);
}

/* A new worker of the pool drops root before it accepts anything. */
static int worker_init(void *arg)
{
	struct ctx *c = arg;
	char err[512];
	int rc;

	rc = server_drop_privileges(c->cfg->vmail_user, err, sizeof(err));
	if (rc != 0)
		log_err("privileges", "error=%s", log_q(err));
	umask(077);
	return rc;
}

static int session(int fd_in, int fd_out, const char *peer, void *arg)
{
	struct ctx *c = arg;
	char err[512];
	int rc;

	/* inetd mode; in a worker this is already done (worker_init) */
	rc = server_drop_privileges(c->cfg->vmail_user, err, sizeof(err));
	if (rc != 0) {
		log_err("privileges", "error=%s", log_q(err));
		(void)!write(fd_out, "421 4.3.0 Server misconfigured\r\n", 32);
		return rc;
	}
	umask(077);
	return smtpd_session(&c->opts, fd_in, fd_out, peer);
}

static int read_password(const struct config *cfg, char **out)
{
	char err[512];
	int rc;

	*out = NULL;
	if (!cfg->relay.present || cfg->relay.password_file == NULL)
		return 0;
	rc = config_read_secret(cfg->relay.password_file, out, err, sizeof(err));
	if (rc != 0)
		log_err("relay_password", "error=%s", log_q(err));
	return rc;
}

static int cmd_serve(struct config *cfg, int argc, char **argv)
{
	enum { OPT_TLS = 256, OPT_LISTEN, OPT_PLAIN, OPT_TIMEOUT, OPT_NOFLUSH };
	static const struct option longopts[] = {
		{ "tls", no_argument, NULL, OPT_TLS },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "allow-plaintext", no_argument, NULL, OPT_PLAIN },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "no-flush", no_argument, NULL, OPT_NOFLUSH },
		{ NULL, 0, NULL, 0 },
	};
	struct prefork_opts po = { .worker_init = worker_init };
	struct server_opts so = { .prefork = &po };
	struct ctx c = { 0 };
	char err[1024];
	int opt, rc, utf8;
	long long psize;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_TLS: c.opts.implicit_tls = 1; break;
		case OPT_LISTEN: so.listen = optarg; break;
		case OPT_PLAIN: c.opts.allow_plaintext = 1; break;
		case OPT_TIMEOUT: c.opts.timeout = atoi(optarg); break;
		case OPT_NOFLUSH: c.no_flush = 1; break;
		default: usage(stderr); return EX_USAGE;
		}
	}
	if (optind != argc || c.opts.timeout < 0) {
		usage(stderr);
		return EX_USAGE;
	}
	rc = config_require(cfg, CONFIG_NEED_MAIL_DIR | CONFIG_NEED_STATE_DIR | CONFIG_NEED_AUTH |
			    CONFIG_NEED_DOMAIN | (c.opts.allow_plaintext ? 0 : CONFIG_NEED_TLS),
			    err, sizeof(err));
	if (rc != 0) {
		log_err("config", "error=%s", log_q(err));
		return rc;
	}
	if (cfg->tls_cert != NULL && cfg->tls_key != NULL) {
		c.opts.tls_ctx = tls_server_ctx(cfg->tls_cert, cfg->tls_key, cfg->tls_min_protocol,
						err, sizeof(err));
		if (c.opts.tls_ctx == NULL) {
			log_err("tls", "error=%s", log_q(err));
			return EX_CONFIG;
		}
	} else if (c.opts.implicit_tls) {
		log_err("tls", "error=%s", log_q("--tls needs tls_cert and tls_key in the config"));
		return EX_CONFIG;
	}
	rc = auth_open(cfg, &c.opts.auth, err, sizeof(err));
	if (rc != 0) {
		log_err("auth", "error=%s", log_q(err));
		goto out;
	}
	/* read while still root: the background flush runs as vmail_user */
	if (!c.no_flush && read_password(cfg, &c.password) != 0)
		log_warn("relay_password", "detail=%s",
			 log_q("background delivery to the provider will fail until fixed"));
	c.cfg = cfg;
	c.opts.cfg = cfg;
	c.opts.max_size = cfg->relay.max_size > 0 ? cfg->relay.max_size : 50LL << 20;
	c.opts.smtputf8 = 1;
	if (cfg->relay.present && relay_provider_caps(cfg, &utf8, &psize) == 0) {
		/* promise no more than the provider takes */
		c.opts.smtputf8 = utf8;
		if (psize > 0 && psize < c.opts.max_size)
			c.opts.max_size = psize;
	}
	if (!c.no_flush) {
		c.opts.on_queued = background_flush;
		c.opts.on_queued_arg = &c;
	}
	rc = server_run(&so, session, &c);
out:
	secret_free(c.password);
	auth_free(c.opts.auth);
	if (c.opts.tls_ctx != NULL)
		SSL_CTX_free(c.opts.tls_ctx);
	return rc;
}

static int cmd_flush(struct config *cfg, int argc, char **argv)
{
	enum { OPT_FORCE = 256, OPT_ID };
	static const struct option longopts[] = {
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "id", required_argument, NULL, OPT_ID },
		{ NULL, 0, NULL, 0 },
	};
	struct relay_opts ro = { .cfg = cfg };
	struct relay_stats st;
	char err[1024], *password = NULL;
	int opt, rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_FORCE: ro.force = 1; break;
		case OPT_ID: ro.only_id = optarg; break;
		default: usage(stderr); return EX_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EX_USAGE;
	}
	rc = config_require(cfg, CONFIG_NEED_STATE_DIR | CONFIG_NEED_MAIL_DIR, err, sizeof(err));
	if (rc != 0) {
		log_err("config", "error=%s", log_q(err));
		return rc;
	}
	rc = read_password(cfg, &password);
	if (rc != 0)
		return rc;
	rc = server_drop_privileges(cfg->vmail_user, err, sizeof(err));
	if (rc != 0) {
		log_err("privileges", "error=%s", log_q(err));
		secret_free(password);
		return rc;
	}
	umask(077);
	ro.password = password;
	rc = relay_flush(&ro, &st, err, sizeof(err));
	secret_free(password);
	if (rc != 0 && rc != EX_TEMPFAIL) {
		log_err("flush", "error=%s", log_q(err));
		return rc;
	}
	log_info("flush", "messages=%u sent=%u deferred=%u bounced=%u busy=%u", st.messages,
		 st.sent, st.deferred, st.bounced, st.busy);
	return rc;
}

static int cmd_list(struct config *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	char err[1024], qdir[4096];
	int opt, rc, json = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opt != 'j') {
			usage(stderr);
			return EX_USAGE;
		}
		json = 1;
	}
	if (optind != argc) {
		usage(stderr);
		return EX_USAGE;
	}
	rc = config_require(cfg, CONFIG_NEED_STATE_DIR, err, sizeof(err));
	if (rc == 0)
		rc = server_drop_privileges(cfg->vmail_user, err, sizeof(err));
	if (rc == 0)
		rc = queue_init(cfg->state_dir, qdir, sizeof(qdir), err, sizeof(err));
	if (rc == 0)
		rc = queue_print(qdir, stdout, json, time(NULL), err, sizeof(err));
	if (rc != 0) {
		log_err("list", "error=%s", log_q(err));
		return rc;
	}
	return fflush(stdout) == 0 ? 0 : EX_IOERR;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf = NULL, *mode;
	struct config *cfg = NULL;
	char err[1024];
	int verbose = 0, opt, rc;

	/* the process holds the relay and LDAP passwords and the TLS key */
	prctl(PR_SET_DUMPABLE, 0);
	/* options before the mode only ("+"): the mode parses its own */
	while ((opt = getopt_long(argc, argv, "+c:vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': conf = optarg; break;
		case 'v': verbose++; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("mail-submit-relay %s\n", MAILKEEP_VERSION); return 0;
		default: usage(stderr); return EX_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	mode = argv[optind];
	if (strcmp(mode, "serve") != 0 && strcmp(mode, "flush") != 0 && strcmp(mode, "list") != 0) {
		fprintf(stderr, "mail-submit-relay: unknown mode %s\n", mode);
		usage(stderr);
		return EX_USAGE;
	}
	log_init(argv[0], verbose);
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_err("curl", "error=%s", log_q("curl_global_init failed"));
		return EX_SOFTWARE;
	}
	rc = config_load(config_path(conf), &cfg, err, sizeof(err));
	if (rc != 0) {
		log_err("config", "error=%s", log_q(err));
		curl_global_cleanup();
		return rc;
	}
	maildir_set_index_dir(cfg->index_dir);	/* NULL: an index file per folder */
	argc -= optind;
	argv += optind;
	if (strcmp(mode, "serve") == 0)
		rc = cmd_serve(cfg, argc, argv);
	else if (strcmp(mode, "flush") == 0)
		rc = cmd_flush(cfg, argc, argv);
	else
		rc = cmd_list(cfg, argc, argv);
	config_free(cfg);
	curl_global_cleanup();
	return rc;
}

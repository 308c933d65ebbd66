/*
 * mail-pull: two-way sync of the configured provider accounts with the
 * local Maildir tree (replaces mbsync).  See mail-pull(1).
 */
#include "config.h"
#include "log.h"
#include "maildir.h"
#include "sync.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#ifndef MAILKEEP_VERSION
#define MAILKEEP_VERSION "0.1"
#endif

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mail-pull [-c FILE] [-v] [-a ACCOUNT]... [--loop] [--watch] [--dry-run]\n"
		"Two-way sync of each [account] of mailkeep.conf with its local Maildir.\n"
		"  -c FILE      config file (else $MAILKEEP_CONFIG, else %s)\n"
		"  -v           debug diagnostics (-vv: also with [sync] debug, the IMAP trace)\n"
		"  -a ACCOUNT   only this account (repeatable)\n"
		"  --loop       repeat, pausing [sync] interval between runs\n"
		"  --watch      sync again as soon as the provider's or the local INBOX\n"
		"               changes (IMAP IDLE, inotify), else every [sync] interval\n"
		"  --dry-run    show what would change, change nothing\n"
		"Exit: 0 ok, 69 provider unreachable or broken, 75 temporary failure, 77 login refused,\n"
		"      78 config error, 64 usage.\n",
		CONFIG_DEFAULT_PATH);
}

/* Worst of two exit codes, as the one to report. */
static int worse(int a, int b)
{
	static const int order[] = { 0, EX_TEMPFAIL, EX_UNAVAILABLE, EX_PROTOCOL, EX_IOERR,
		EX_NOPERM, EX_CONFIG };
	int ia = 0, ib = 0;
	size_t i;

	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (order[i] == a)
			ia = (int)i;
		if (order[i] == b)
			ib = (int)i;
	}
	if (a != 0 && ia == 0)
		ia = 4;
	if (b != 0 && ib == 0)
		ib = 4;
	return ia >= ib ? a : b;
}

/*
 * KEEP: NULL for a single run, else one kept provider session per account
 * (--loop, --watch: one login per process, not one per run).
 */
static int run_once(const struct config *cfg, char **only, int nonly, const struct sync_opts *o,
		    struct sync_session *keep)
{
	int rc = 0;
	size_t i;
	int k;

	for (i = 0; i < cfg->naccounts && !stop; i++) {
		const struct config_account *a = &cfg->accounts[i];
		struct sync_stats st = { 0 };
		char err[1024] = "";
		struct timespec t0, t1;
		int r;

		if (nonly > 0) {
			for (k = 0; k < nonly; k++)
				if (strcmp(only[k], a->name) == 0)
					break;
			if (k == nonly)
				continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		r = sync_account(cfg, a, o, &st, keep != NULL ? &keep[i] : NULL, err, sizeof(err));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (r == EX_PROTOCOL)
			r = EX_UNAVAILABLE;	/* DESIGN.md §5: a broken peer is an unavailable one */
		if (r != 0)
			log_err("sync_failed", "account=%s exit=%d error=%s", a->name, r, log_q(err));
		log_info("sync_done", "account=%s down=%llu up=%llu flags_local=%llu "
			 "flags_remote=%llu expunged_local=%llu expunged_remote=%llu paired=%llu "
			 "folders=%llu unchanged=%llu created=%llu ms=%lld%s", a->name, st.down, st.up,
			 st.flags_local, st.flags_remote, st.expunged_local, st.expunged_remote,
			 st.paired, st.folders, st.folders_skipped, st.folders_created,
			 (long long)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000,
			 o->dry_run ? " dry_run=yes" : "");
		rc = worse(rc, r);
	}
	return rc;
}

/* --watch: IDLE + inotify until something changes or [sync] interval passes. */
static int watch_wait(const struct config *cfg, char **only, int nonly, const struct sync_opts *o,
		      struct sync_session *keep)
{
	const struct config_account **v = calloc(cfg->naccounts + 1, sizeof(*v));
	struct sync_session **kv = calloc(cfg->naccounts + 1, sizeof(*kv));
	size_t i, n = 0;
	char err[512];
	int k, rc;

	if (v == NULL || kv == NULL) {
		free(v);
		free(kv);
		return EX_OSERR;
	}
	for (i = 0; i < cfg->naccounts; i++) {
		for (k = 0; k < nonly; k++)
			if (strcmp(only[k], cfg->accounts[i].name) == 0)
				break;
		if (nonly == 0 || k < nonly) {
			kv[n] = &keep[i];
			v[n++] = &cfg->accounts[i];
		}
	}
	rc = sync_watch(cfg, v, n, o, cfg->sync.interval, kv, err, sizeof(err));
	if (rc != 0)
		log_warn("watch_failed", "error=%s action=poll", log_q(err));
	free(v);
	free(kv);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' }, { "version", no_argument, NULL, 'V' },
		{ "loop", no_argument, NULL, 'L' }, { "watch", no_argument, NULL, 'W' },
		{ "dry-run", no_argument, NULL, 'n' }, { NULL, 0, NULL, 0 },
	};
	const char *opt_c = NULL;
	char **only = calloc((size_t)argc + 1, sizeof(char *));
	int nonly = 0, verbose = 0, loop = 0, watch = 0, c, rc;
	struct sync_opts o = { 0 };
	struct sync_session *keep = NULL;
	struct config *cfg = NULL;
	char err[1024];
	struct sigaction sa;

	if (only == NULL)
		return EX_OSERR;
	while ((c = getopt_long(argc, argv, "c:va:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': opt_c = optarg; break;
		case 'v': verbose++; break;
		case 'a': only[nonly++] = optarg; break;
		case 'L': loop = 1; break;
		case 'W': watch = 1; break;
		case 'n': o.dry_run = 1; break;
		case 'h': usage(stdout); free(only); return 0;
		case 'V': printf("mail-pull %s\n", MAILKEEP_VERSION); free(only); return 0;
		default: usage(stderr); free(only); return EX_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		free(only);
		return EX_USAGE;
	}
	log_init("mail-pull", verbose);
	rc = config_load(config_path(opt_c), &cfg, err, sizeof(err));
	if (rc == 0)
		rc = config_require(cfg, CONFIG_NEED_MAIL_DIR | CONFIG_NEED_STATE_DIR |
				    CONFIG_NEED_ACCOUNT, err, sizeof(err));
	if (rc != 0) {
		log_err("config", "error=%s", log_q(err));
		config_free(cfg);
		free(only);
		return rc;
	}
	maildir_set_index_dir(cfg->index_dir);	/* NULL: an index file per folder */
	for (c = 0; c < nonly; c++)
		if (config_account(cfg, only[c]) == NULL) {
			log_err("usage", "error=%s account=%s", log_q("no such [account]"),
				log_q(only[c]));
			config_free(cfg);
			free(only);
			return EX_USAGE;
		}
	o.debug = cfg->sync.debug || verbose >= 2;
	o.progress = isatty(STDERR_FILENO);
	o.stop = &stop;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((loop || watch) && (keep = calloc(cfg->naccounts + 1, sizeof(*keep))) == NULL) {
		log_err("start", "error=%s", log_q("out of memory"));
		config_free(cfg);
		free(only);
		return EX_OSERR;
	}
	for (;;) {
		rc = run_once(cfg, only, nonly, &o, keep);
		if ((!loop && !watch) || stop)
			break;
		if (watch && watch_wait(cfg, only, nonly, &o, keep) == 0)
			continue;
		{
			int pause = watch ? (cfg->sync.interval < 10 ? cfg->sync.interval : 10) :
				cfg->sync.interval;

			if (pause < 1)
				pause = 1;
			while (pause-- > 0 && !stop)
				sleep(1);
		}
		if (stop)
			break;
	}
	if (keep != NULL) {
		size_t i;

		for (i = 0; i < cfg->naccounts; i++)
			sync_session_close(&keep[i]);
		free(keep);
	}
	config_free(cfg);
	free(only);
	return rc;
}

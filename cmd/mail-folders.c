/*
 * mail-folders: list, inspect and manage a user's Maildir folders
 * (DESIGN.md §4), and print what a backup must hold.  Thin: arguments ->
 * lib/folders, lib/maildir -> exit code.  See mail-folders(1).
 */
#include "config.h"
#include "folders.h"
#include "fsutil.h"
#include "log.h"
#include "sync.h"
#include "mailbox-name.h"
#include "maildir.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#ifndef MAILKEEP_VERSION
#define MAILKEEP_VERSION "0.1"
#endif

#define ERRLEN 512

struct opts {
	const char *config;
	const char *user;
	const char *home;
	const char *special_use;
	const char *account;
	int json;
	int verbose;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mail-folders [-c FILE] [-v] (-u USER | -d HOME) COMMAND [ARGS]\n"
		"  list [--json]                 folders with attributes\n"
		"  status [--json] [NAME...]     messages unseen recent uidnext uidvalidity size\n"
		"  create NAME [--special-use \\Junk]\n"
		"  ensure                        create + subscribe the config's [mailbox] folders\n"
		"  delete NAME\n"
		"  rename OLD NEW\n"
		"  dirs                          directories a backup must hold\n"
		"  remote -a ACCOUNT             the provider's folders and their local names\n"
		"Exit: 0 ok, 64 usage, 65 bad data, 66 no such folder, 73 exists,\n"
		"75 temporary failure (locked), 78 config error.  See mail-folders(1).\n");
}

static int fail(int code, const char *event, const char *msg)
{
	log_err(event, "error=%s", log_q(msg));
	fprintf(stderr, "mail-folders: %s\n", msg);
	return code;
}

static int load_config(const struct opts *o, struct config **cfg)
{
	char err[ERRLEN];
	int r = config_load(config_path(o->config), cfg, err, sizeof(err));

	if (r != 0)
		return fail(r, "config", err);
	maildir_set_index_dir((*cfg)->index_dir);	/* NULL: an index file per folder */
	return 0;
}

/* The user's ~/mail into root (from -d HOME or -u USER and the config). */
static int resolve_root(const struct opts *o, struct config **cfg, char *root, size_t len)
{
	char home[4096], err[ERRLEN];
	int r;

	if (o->home != NULL) {
		snprintf(home, sizeof(home), "%s", o->home);
	} else if (o->user != NULL) {
		if (*cfg == NULL && (r = load_config(o, cfg)) != 0)
			return r;
		if ((r = config_require(*cfg, CONFIG_NEED_MAIL_DIR, err, sizeof(err))) != 0 ||
		    (r = config_user_home(*cfg, o->user, home, sizeof(home), err, sizeof(err))) != 0)
			return fail(r, "config", err);
	} else {
		fprintf(stderr, "mail-folders: -u USER or -d HOME is required\n");
		return EX_USAGE;
	}
	if ((size_t)snprintf(root, len, "%s/mail", home) >= len)
		return fail(EX_USAGE, "usage", "home path too long");
	return 0;
}

/*
 * ~/mail with INBOX's cur/ new/ tmp/ and uidlist: dovecot creates INBOX on
 * first use and lists it always, and folder_create() needs the root.
 */
static int ensure_root(const char *root)
{
	char path[4096], err[ERRLEN], *p;
	int r;

	snprintf(path, sizeof(path), "%s", root);
	for (p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if ((r = fsutil_mkdir(path, 0700, err, sizeof(err))) != 0)
			return fail(r, "mkdir", err);
		*p = '/';
	}
	if ((r = fsutil_mkdir(path, 0700, err, sizeof(err))) != 0 ||
	    (r = maildir_folder_init(root, err, sizeof(err))) != 0)
		return fail(r, "mkdir", err);
	return 0;
}

/* UTF-8 argument -> storage name. */
static int arg_name(const char *arg, char *out, size_t outlen)
{
	char err[ERRLEN];
	int r = mailbox_name_from_utf8(arg, out, outlen, err, sizeof(err));

	if (r != 0) {
		char msg[ERRLEN + 64];

		snprintf(msg, sizeof(msg), "%s: %s", arg, err);
		return fail(r, "bad-name", msg);
	}
	return 0;
}

static void print_json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void display_name(const char *storage, char *out, size_t outlen)
{
	if (mutf7_to_utf8(storage, out, outlen) != 0)
		snprintf(out, outlen, "%s", storage);
}

static int cmd_list(const char *root, const struct opts *o)
{
	struct folder_list l = { 0 };
	char err[ERRLEN], name[MAILBOX_NAME_MAX * 4 + 1];
	size_t i;
	int r = folders_list(root, &l, err, sizeof(err));

	if (r != 0)
		return fail(r, "list", err);
	if (o->json)
		printf("[");
	for (i = 0; i < l.n; i++) {
		const struct folder_info *fi = &l.v[i];
		char attrs[128];

		display_name(fi->name, name, sizeof(name));
		snprintf(attrs, sizeof(attrs), "%s%s%s",
			 fi->selectable ? "" : "\\Noselect ",
			 fi->has_children ? "\\HasChildren" : "\\HasNoChildren",
			 fi->subscribed ? " \\Subscribed" : "");
		if (o->json) {
			printf("%s{\"name\":", i ? "," : "");
			print_json_str(name);
			printf(",\"attributes\":");
			print_json_str(attrs);
			printf("}");
		} else {
			printf("%s\t%s\n", name, attrs);
		}
	}
	if (o->json)
		printf("]\n");
	folders_list_free(&l);
	return 0;
}

static int status_one(const char *root, const char *storage, const struct opts *o, int first)
{
	char dir[4096], err[ERRLEN], name[MAILBOX_NAME_MAX * 4 + 1];
	struct maildir_folder *f;
	struct maildir_status st;
	int r;

	if ((r = folder_dir(root, storage, dir, sizeof(dir), err, sizeof(err))) != 0)
		return fail(r, "status", err);
	if ((r = maildir_folder_open(dir, &f, err, sizeof(err))) != 0)
		return fail(r, "status", err);
	r = maildir_folder_sync(f, 0, err, sizeof(err));
	if (r != 0) {
		maildir_folder_free(f);
		return fail(r, "status", err);
	}
	maildir_folder_status(f, &st);
	maildir_folder_free(f);
	display_name(storage, name, sizeof(name));
	if (o->json) {
		printf("%s{\"name\":", first ? "" : ",");
		print_json_str(name);
		printf(",\"messages\":%u,\"unseen\":%u,\"recent\":%u,\"uidnext\":%u,"
		       "\"uidvalidity\":%u,\"size\":%llu}", st.messages, st.unseen, st.recent,
		       st.uidnext, st.uidvalidity, st.size);
	} else {
		printf("%s\t%u\t%u\t%u\t%u\t%u\t%llu\n", name, st.messages, st.unseen,
		       st.recent, st.uidnext, st.uidvalidity, st.size);
	}
	return 0;
}

static int cmd_status(const char *root, const struct opts *o, int argc, char **argv)
{
	char storage[MAILBOX_NAME_MAX + 1], err[ERRLEN];
	int i, r, worst = 0, n = 0;

	if (o->json)
		printf("[");
	if (argc == 0) {
		struct folder_list l = { 0 };
		size_t k;

		if ((r = folders_list(root, &l, err, sizeof(err))) != 0)
			return fail(r, "status", err);
		for (k = 0; k < l.n; k++) {
			if (!l.v[k].selectable)
				continue;
			if ((r = status_one(root, l.v[k].name, o, n == 0)) != 0)
				worst = r;
			else
				n++;
		}
		folders_list_free(&l);
	}
	for (i = 0; i < argc; i++) {
		if ((r = arg_name(argv[i], storage, sizeof(storage))) != 0 ||
		    (r = status_one(root, storage, o, n == 0)) != 0)
			worst = r;
		else
			n++;
	}
	if (o->json)
		printf("]\n");
	return worst;
}

static int cmd_create(const char *root, const struct opts *o, struct config *cfg,
		      const char *arg)
{
	char storage[MAILBOX_NAME_MAX + 1], err[ERRLEN];
	int r;

	if ((r = arg_name(arg, storage, sizeof(storage))) != 0)
		return r;
	if (o->special_use != NULL) {
		int su = special_use_from_flag(o->special_use);
		size_t i;
		int configured = 0;

		if (su < 0) {
			snprintf(err, sizeof(err), "unknown special-use flag %s", o->special_use);
			return fail(EX_USAGE, "usage", err);
		}
		for (i = 0; cfg != NULL && i < cfg->nmailboxes; i++)
			if (strcmp(cfg->mailboxes[i].name, arg) == 0 &&
			    cfg->mailboxes[i].special_use == su)
				configured = 1;
		if (!configured)
			log_warn("special-use-not-configured",
				 "folder=%s flag=%s hint=%s", log_q(arg), log_q(o->special_use),
				 log_q("LIST shows special use from [mailbox NAME] special_use in mailkeep.conf"));
	}
	if ((r = ensure_root(root)) != 0)
		return r;
	if (mailbox_name_is_inbox(storage))
		return 0;
	if ((r = folder_create(root, storage, err, sizeof(err))) != 0)
		return fail(r, "create", err);
	log_info("create", "folder=%s", log_q(storage));
	return 0;
}

static int cmd_ensure(const char *root, struct config *cfg)
{
	char storage[MAILBOX_NAME_MAX + 1], err[ERRLEN];
	size_t i;
	int r;

	if ((r = ensure_root(root)) != 0)
		return r;
	for (i = 0; i < cfg->nmailboxes; i++) {
		const struct config_mailbox *mb = &cfg->mailboxes[i];

		if (mb->autocreate == MAILBOX_AUTO_NO)
			continue;
		if ((r = arg_name(mb->name, storage, sizeof(storage))) != 0)
			return r;
		r = mailbox_name_is_inbox(storage) ? 0 : folder_create(root, storage, err, sizeof(err));
		if (r != 0 && !(r == EX_CANTCREAT && folder_exists(root, storage)))
			return fail(r, "ensure", err);
		if (mb->autocreate == MAILBOX_AUTO_SUBSCRIBE &&
		    (r = folders_subscribe(root, storage, 1, err, sizeof(err))) != 0)
			return fail(r, "ensure", err);
		log_info("ensure", "folder=%s subscribed=%s", log_q(storage),
			 mb->autocreate == MAILBOX_AUTO_SUBSCRIBE ? "yes" : "no");
	}
	return 0;
}

static int cmd_dirs(const struct opts *o, struct config **cfg)
{
	char root[4096], err[ERRLEN];
	int r;

	if (o->home != NULL || o->user != NULL) {
		if ((r = resolve_root(o, cfg, root, sizeof(root))) != 0)
			return r;
		printf("%s\n", root);
		return 0;
	}
	if (*cfg == NULL && (r = load_config(o, cfg)) != 0)
		return r;
	if ((r = config_require(*cfg, CONFIG_NEED_MAIL_DIR, err, sizeof(err))) != 0)
		return fail(r, "config", err);
	printf("%s\n", (*cfg)->mail_dir);
	if ((*cfg)->state_dir != NULL)
		printf("%s\n", (*cfg)->state_dir);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "json", no_argument, NULL, 'j' },
		{ "special-use", required_argument, NULL, 's' },
		{ "account", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { 0 };
	struct config *cfg = NULL;
	char root[4096], from[MAILBOX_NAME_MAX + 1], to[MAILBOX_NAME_MAX + 1], err[ERRLEN];
	const char *cmd;
	int c, r;

	/* "+": options after the command word are parsed in a second round */
	while ((c = getopt_long(argc, argv, "+c:u:d:a:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o.config = optarg; break;
		case 'u': o.user = optarg; break;
		case 'd': o.home = optarg; break;
		case 'a': o.account = optarg; break;
		case 'v': o.verbose++; break;
		case 'j': o.json = 1; break;
		case 's': o.special_use = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("mail-folders %s\n", MAILKEEP_VERSION); return 0;
		default: usage(stderr); return EX_USAGE;
		}
	}
	log_init("mail-folders", o.verbose);
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:u:d:a:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o.config = optarg; break;
		case 'u': o.user = optarg; break;
		case 'd': o.home = optarg; break;
		case 'a': o.account = optarg; break;
		case 'v': o.verbose++; log_init("mail-folders", o.verbose); break;
		case 'j': o.json = 1; break;
		case 's': o.special_use = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (o.user != NULL && o.home != NULL) {
		fprintf(stderr, "mail-folders: give -u USER or -d HOME, not both\n");
		return EX_USAGE;
	}

	if (strcmp(cmd, "remote") == 0) {
		/* the provider's folders, their special use, and where mail-pull puts them */
		const struct config_account *a;
		char err[ERRLEN];

		if (argc != 0 || o.account == NULL) {
			fprintf(stderr, "mail-folders: remote needs -a ACCOUNT\n");
			return EX_USAGE;
		}
		if ((r = load_config(&o, &cfg)) != 0)
			return r;
		a = config_account(cfg, o.account);
		if (a == NULL) {
			snprintf(err, sizeof(err), "%s: no [account %s]", cfg->path, o.account);
			config_free(cfg);
			return fail(EX_CONFIG, "remote", err);
		}
		r = sync_print_remote(cfg, a, stdout, o.verbose > 1, err, sizeof(err));
		if (r != 0)
			fail(r, "remote", err);
		config_free(cfg);
		return r;
	}
	if (strcmp(cmd, "dirs") == 0) {
		r = argc == 0 ? cmd_dirs(&o, &cfg) : (usage(stderr), EX_USAGE);
		config_free(cfg);
		return r;
	}
	if (strcmp(cmd, "list") && strcmp(cmd, "status") && strcmp(cmd, "create") &&
	    strcmp(cmd, "ensure") && strcmp(cmd, "delete") && strcmp(cmd, "rename")) {
		fprintf(stderr, "mail-folders: unknown command %s\n", cmd);
		usage(stderr);
		return EX_USAGE;
	}
	/* an explicit -c also counts with -d HOME: it may name an index_dir */
	if ((strcmp(cmd, "ensure") == 0 || (strcmp(cmd, "create") == 0 && o.special_use) ||
	     o.config != NULL) && (r = load_config(&o, &cfg)) != 0)
		return r;
	if ((r = resolve_root(&o, &cfg, root, sizeof(root))) != 0) {
		config_free(cfg);
		return r;
	}
	if (strcmp(cmd, "list") == 0 && argc == 0) {
		r = cmd_list(root, &o);
	} else if (strcmp(cmd, "status") == 0) {
		r = cmd_status(root, &o, argc, argv);
	} else if (strcmp(cmd, "create") == 0 && argc == 1) {
		r = cmd_create(root, &o, cfg, argv[0]);
	} else if (strcmp(cmd, "ensure") == 0 && argc == 0) {
		r = cmd_ensure(root, cfg);
	} else if (strcmp(cmd, "delete") == 0 && argc == 1) {
		if ((r = arg_name(argv[0], from, sizeof(from))) == 0 &&
		    (r = folder_delete(root, from, err, sizeof(err))) != 0)
			r = fail(r, "delete", err);
	} else if (strcmp(cmd, "rename") == 0 && argc == 2) {
		if ((r = arg_name(argv[0], from, sizeof(from))) == 0 &&
		    (r = arg_name(argv[1], to, sizeof(to))) == 0 &&
		    (r = folder_rename(root, from, to, err, sizeof(err))) != 0)
			r = fail(r, "rename", err);
	} else {
		usage(stderr);
		r = EX_USAGE;
	}
	config_free(cfg);
	return r;
}

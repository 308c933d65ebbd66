/*
 * mailkeep.conf(5): the one configuration file every tool reads.
 *
 * INI style: "key = value", "# comment" lines, sections "[name]" or
 * "[kind name]".  Unknown sections or keys, bad values and duplicate keys
 * are errors naming FILE:LINE; loaders return EX_CONFIG (78).  Each tool
 * checks afterwards the keys it needs (config_require()).
 *
 * Secrets are never in the file: only paths in "*_file" keys, read with
 * config_read_secret(), which refuses files readable by group or others.
 *
 * Ownership: config_load()/config_parse() allocate one struct config that
 * owns every string in it; config_free() releases it (NULL allowed).
 */
#ifndef MK_CONFIG_H
#define MK_CONFIG_H
#include <stddef.h>

#define CONFIG_DEFAULT_PATH "/etc/mailkeep/mailkeep.conf"
#define CONFIG_MAX_LINE 4096	/* longest accepted line, bytes */
#define CONFIG_MAX_SIZE (1 << 20)	/* largest accepted file */
#define SECRET_MAX_SIZE 4096	/* largest accepted secret file */

enum config_tls { CONFIG_TLS_NONE = 0, CONFIG_TLS_IMAPS, CONFIG_TLS_STARTTLS,
	CONFIG_TLS_SMTPS, CONFIG_TLS_LDAPS };

/* Special-use folders, in the order of the map_* keys. */
enum special_use { SPECIAL_DRAFTS, SPECIAL_SENT, SPECIAL_TRASH, SPECIAL_JUNK,
	SPECIAL_ARCHIVE, SPECIAL_COUNT };
/* "\Drafts", "\Sent", ... and the local folder names "Drafts", "Sent", ... */
extern const char *const special_use_flag[SPECIAL_COUNT];
extern const char *const special_use_local[SPECIAL_COUNT];
/* Index of "\Junk" etc. (case-insensitive), or -1. */
int special_use_from_flag(const char *flag);

struct config_account {		/* [account NAME] */
	char *name;
	char *host;
	int port;			/* default 993 for imaps, 143 for starttls */
	enum config_tls tls;		/* IMAPS (default) or STARTTLS */
	char *username;
	char *password_file;
	int timeout;			/* seconds, default 120 */
	char *ca_file;			/* NULL: system trust store */
	char *map[SPECIAL_COUNT];	/* provider folder for each special use, or NULL */
	int line;			/* where the section starts, for messages */
};

struct config_relay {		/* [relay] */
	int present;
	char *host;
	int port;			/* default 587 for starttls, 465 for smtps */
	enum config_tls tls;		/* STARTTLS (default) or SMTPS */
	char *username;
	char *password_file;
	char *ca_file;
	int timeout;			/* seconds, default 60 */
	long long max_size;		/* bytes; SIZE we advertise, default 50 MB */
};

struct config_ldap {		/* [ldap] */
	int present;
	char *host;
	int port;			/* default 389, or 636 with tls = ldaps */
	enum config_tls tls;		/* NONE (default), STARTTLS or LDAPS */
	char *dc_domain;
	char *admin_name;
	char *admin_password_file;
	char *account;
	char *user_group;
	char *ca_file;
	int timeout;			/* seconds, default 10 */
};

struct config_users {		/* [users] */
	int present;
	char *passwd_file;
	char *account;
};

struct config_sync {		/* [sync] */
	int interval;			/* seconds, default 300 */
	int debug;
};

struct config_imap {		/* [imap]: server limits */
	long long max_literal;		/* bytes, default 64 MB (APPEND size limit) */
	int max_line;			/* bytes of one command line, default 64 KB */
	int idle_timeout;		/* seconds before an idle client is dropped, default 1800 */
	int auth_timeout;		/* seconds to log in, default 60 */
};

enum mailbox_auto { MAILBOX_AUTO_NO, MAILBOX_AUTO_CREATE, MAILBOX_AUTO_SUBSCRIBE };

struct config_mailbox {		/* [mailbox NAME] */
	char *name;
	int special_use;		/* enum special_use, or -1 */
	enum mailbox_auto autocreate;	/* default subscribe */
};

struct config {
	char *path;			/* file it was read from */
	char *domain;
	char *subdomain;		/* default "imap" */
	char *tls_cert;
	char *tls_key;
	char *tls_min_protocol;		/* "TLSv1.2" (default) or "TLSv1.3" */
	char *mail_dir;
	char *index_dir;
	char *state_dir;
	char *vmail_user;		/* default "vmail" */
	struct config_sync sync;
	struct config_imap imap;
	struct config_account *accounts;
	size_t naccounts;
	struct config_relay relay;
	struct config_ldap ldap;
	struct config_users users;
	struct config_mailbox *mailboxes;
	size_t nmailboxes;
};

/* -c FILE, else $MAILKEEP_CONFIG, else CONFIG_DEFAULT_PATH. */
const char *config_path(const char *opt_c);

/*
 * Reads and validates PATH.  Returns 0 and *out, or EX_CONFIG (78) with a
 * message "PATH:LINE: what is wrong" in err (also for an unreadable file).
 * Existing secret files named by *_file keys are mode-checked here too.
 */
int config_load(const char *path, struct config **out, char *err, size_t errlen);

/* Same over a buffer; NAME is used in messages.  Checks no file on disk. */
int config_parse(const char *buf, size_t len, const char *name,
		 struct config **out, char *err, size_t errlen);

void config_free(struct config *cfg);

/* What a tool needs; config_require() reports the first missing key. */
enum {
	CONFIG_NEED_MAIL_DIR = 1 << 0,
	CONFIG_NEED_STATE_DIR = 1 << 1,
	CONFIG_NEED_TLS = 1 << 2,	/* tls_cert + tls_key */
	CONFIG_NEED_ACCOUNT = 1 << 3,	/* at least one [account] */
	CONFIG_NEED_RELAY = 1 << 4,
	CONFIG_NEED_AUTH = 1 << 5,	/* [ldap] or [users] */
	CONFIG_NEED_DOMAIN = 1 << 6,
	CONFIG_NEED_LDAP = 1 << 7,
};
int config_require(const struct config *cfg, unsigned need, char *err, size_t errlen);

/* [account NAME] or NULL. */
const struct config_account *config_account(const struct config *cfg, const char *name);

/*
 * The directory under mail_dir that holds users' homes: [ldap] account,
 * else [users] account, else the only [account]'s name; NULL if none.
 */
const char *config_user_account(const struct config *cfg);

/*
 * Writes "<mail_dir>/<account>/<user>" into buf.  USER must be a valid
 * single path component (no '/', not "." or "..", no control characters,
 * at most 255 bytes).  Returns 0, or EX_USAGE / EX_CONFIG with err set.
 */
int config_user_home(const struct config *cfg, const char *user, char *buf, size_t len,
		     char *err, size_t errlen);

/*
 * Reads a secret file into a NUL-terminated malloc'd buffer without its
 * trailing newline (one "\n" or "\r\n").  Refuses (EX_CONFIG) a file that
 * is not regular, is readable or writable by group/others, is empty or is
 * larger than SECRET_MAX_SIZE; EX_NOINPUT if it cannot be opened.  The
 * caller wipes it with secret_free().  The content is never logged.
 */
int config_read_secret(const char *path, char **out, char *err, size_t errlen);
void secret_free(char *secret);

/* Mode check only (what config_read_secret() refuses), 0 or EX_CONFIG. */
int config_check_secret_mode(const char *path, char *err, size_t errlen);

/* Parses "300", "5m", "2h", "1d" into seconds; -1 if malformed. */
long long config_parse_duration(const char *s);
/* Parses "1048576", "50M", "2G", "64k" into bytes; -1 if malformed. */
long long config_parse_size(const char *s);
#endif

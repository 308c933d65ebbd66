/*
 * mailkeep.conf(5) parser: a table of keys per section kind, each with a
 * type and a place in struct config.  See config.h for the contract.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

const char *const special_use_flag[SPECIAL_COUNT] = {
	"\\Drafts", "\\Sent", "\\Trash", "\\Junk", "\\Archive",
};
const char *const special_use_local[SPECIAL_COUNT] = {
	"Drafts", "Sent", "Trash", "Junk", "Archive",
};

int special_use_from_flag(const char *flag)
{
	for (int i = 0; i < SPECIAL_COUNT; i++)
		if (strcasecmp(flag, special_use_flag[i]) == 0)
			return i;
	return -1;
}

/* ---- value parsers ---------------------------------------------------- */

static long long parse_scaled(const char *s, const char *units, const long long *mult)
{
	char *end;
	long long v;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || v < 0)
		return -1;
	if (*end != '\0') {
		const char *u = strchr(units, tolower((unsigned char)*end));
		if (u == NULL || end[1] != '\0')
			return -1;
		if (v > LLONG_MAX / mult[u - units])
			return -1;
		v *= mult[u - units];
	}
	return v;
}

long long config_parse_duration(const char *s)
{
	static const long long mult[] = { 1, 60, 3600, 86400 };
	return parse_scaled(s, "smhd", mult);
}

long long config_parse_size(const char *s)
{
	static const long long mult[] = { 1, 1024, 1024 * 1024, 1024LL * 1024 * 1024 };
	return parse_scaled(s, "bkmg", mult);
}

/* ---- the key table ---------------------------------------------------- */

enum sect_kind { SECT_GLOBAL, SECT_SYNC, SECT_IMAP, SECT_ACCOUNT, SECT_RELAY,
	SECT_LDAP, SECT_USERS, SECT_MAILBOX };

enum key_type {
	T_STR,		/* any non-empty string without control characters */
	T_NAME,		/* host, user or domain name: [A-Za-z0-9._@+-] */
	T_PATH,		/* absolute path */
	T_SECRET,	/* absolute path to a secret file (mode-checked) */
	T_PORT,
	T_DURATION,	/* int seconds */
	T_SIZE,		/* long long bytes */
	T_INTSIZE,	/* int bytes */
	T_BOOL,
	T_TLS_ACCOUNT, T_TLS_RELAY, T_TLS_LDAP, T_TLS_MIN,
	T_SPECIAL,	/* \Junk ... */
	T_AUTO,		/* subscribe | create | no */
	T_DN,		/* dc=example,dc=com */
};

struct key_def {
	enum sect_kind sect;
	const char *name;
	enum key_type type;
	size_t off;	/* into the section's struct */
};

#define G(f) offsetof(struct config, f)
#define A(f) offsetof(struct config_account, f)
#define R(f) offsetof(struct config_relay, f)
#define L(f) offsetof(struct config_ldap, f)
#define U(f) offsetof(struct config_users, f)
#define S(f) offsetof(struct config_sync, f)
#define I(f) offsetof(struct config_imap, f)
#define M(f) offsetof(struct config_mailbox, f)

static const struct key_def keys[] = {
	{ SECT_GLOBAL, "domain", T_NAME, G(domain) },
	{ SECT_GLOBAL, "subdomain", T_NAME, G(subdomain) },
	{ SECT_GLOBAL, "tls_cert", T_PATH, G(tls_cert) },
	{ SECT_GLOBAL, "tls_key", T_PATH, G(tls_key) },
	{ SECT_GLOBAL, "tls_min_protocol", T_TLS_MIN, G(tls_min_protocol) },
	{ SECT_GLOBAL, "mail_dir", T_PATH, G(mail_dir) },
	{ SECT_GLOBAL, "index_dir", T_PATH, G(index_dir) },
	{ SECT_GLOBAL, "state_dir", T_PATH, G(state_dir) },
	{ SECT_GLOBAL, "vmail_user", T_NAME, G(vmail_user) },

	{ SECT_SYNC, "interval", T_DURATION, S(interval) },
	{ SECT_SYNC, "debug", T_BOOL, S(debug) },

	{ SECT_IMAP, "max_literal", T_SIZE, I(max_literal) },
	{ SECT_IMAP, "max_line", T_INTSIZE, I(max_line) },
	{ SECT_IMAP, "idle_timeout", T_DURATION, I(idle_timeout) },
	{ SECT_IMAP, "auth_timeout", T_DURATION, I(auth_timeout) },

	{ SECT_ACCOUNT, "host", T_NAME, A(host) },
	{ SECT_ACCOUNT, "port", T_PORT, A(port) },
	{ SECT_ACCOUNT, "tls", T_TLS_ACCOUNT, A(tls) },
	{ SECT_ACCOUNT, "username", T_STR, A(username) },
	{ SECT_ACCOUNT, "password_file", T_SECRET, A(password_file) },
	{ SECT_ACCOUNT, "timeout", T_DURATION, A(timeout) },
	{ SECT_ACCOUNT, "ca_file", T_PATH, A(ca_file) },
	{ SECT_ACCOUNT, "map_drafts", T_STR, A(map[SPECIAL_DRAFTS]) },
	{ SECT_ACCOUNT, "map_sent", T_STR, A(map[SPECIAL_SENT]) },
	{ SECT_ACCOUNT, "map_trash", T_STR, A(map[SPECIAL_TRASH]) },
	{ SECT_ACCOUNT, "map_junk", T_STR, A(map[SPECIAL_JUNK]) },
	{ SECT_ACCOUNT, "map_archive", T_STR, A(map[SPECIAL_ARCHIVE]) },

	{ SECT_RELAY, "host", T_NAME, R(host) },
	{ SECT_RELAY, "port", T_PORT, R(port) },
	{ SECT_RELAY, "tls", T_TLS_RELAY, R(tls) },
	{ SECT_RELAY, "username", T_STR, R(username) },
	{ SECT_RELAY, "password_file", T_SECRET, R(password_file) },
	{ SECT_RELAY, "ca_file", T_PATH, R(ca_file) },
	{ SECT_RELAY, "timeout", T_DURATION, R(timeout) },
	{ SECT_RELAY, "max_size", T_SIZE, R(max_size) },

	{ SECT_LDAP, "host", T_NAME, L(host) },
	{ SECT_LDAP, "port", T_PORT, L(port) },
	{ SECT_LDAP, "tls", T_TLS_LDAP, L(tls) },
	{ SECT_LDAP, "dc_domain", T_DN, L(dc_domain) },
	{ SECT_LDAP, "admin_name", T_NAME, L(admin_name) },
	{ SECT_LDAP, "admin_password_file", T_SECRET, L(admin_password_file) },
	{ SECT_LDAP, "account", T_NAME, L(account) },
	{ SECT_LDAP, "user_group", T_NAME, L(user_group) },
	{ SECT_LDAP, "ca_file", T_PATH, L(ca_file) },
	{ SECT_LDAP, "timeout", T_DURATION, L(timeout) },

	{ SECT_USERS, "passwd_file", T_PATH, U(passwd_file) },
	{ SECT_USERS, "account", T_NAME, U(account) },

	{ SECT_MAILBOX, "special_use", T_SPECIAL, M(special_use) },
	{ SECT_MAILBOX, "auto", T_AUTO, M(autocreate) },
};

static const char *const sect_names[] = {
	"(global)", "sync", "imap", "account", "relay", "ldap", "users", "mailbox",
};

/* ---- parser state ----------------------------------------------------- */

struct secret_ref {
	const char *path;	/* points into the config */
	int line;
};

struct parser {
	const char *name;
	int line;
	char *err;
	size_t errlen;
	struct config *cfg;
	enum sect_kind sect;
	void *base;		/* struct the current section's keys go into */
	unsigned char seen[sizeof(keys) / sizeof(keys[0])];
	int sect_seen[8];	/* singleton sections already opened */
	struct secret_ref *secrets;
	size_t nsecrets;
};

static int perr(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int perr(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->line > 0)
		n = snprintf(p->err, p->errlen, "%s:%d: ", p->name, p->line);
	else
		n = snprintf(p->err, p->errlen, "%s: ", p->name);
	if (n < 0 || (size_t)n >= p->errlen)
		return EX_CONFIG;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return EX_CONFIG;
}

static int valid_name(const char *v)
{
	for (const char *s = v; *s; s++)
		if (!isalnum((unsigned char)*s) && strchr("._@+-", *s) == NULL)
			return 0;
	return v[0] != '\0';
}

static int valid_text(const char *v)
{
	for (const unsigned char *s = (const unsigned char *)v; *s; s++)
		if (*s < 0x20 || *s == 0x7f)
			return 0;
	return v[0] != '\0';
}

/* A folder name in [mailbox NAME] or map_*: no empty or ".." components. */
static int valid_folder(const char *v)
{
	const char *c = v;

	if (!valid_text(v) || v[0] == '/' || strlen(v) > 1024)
		return 0;
	for (;;) {
		size_t n = strcspn(c, "/");
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		if (c[n] == '\0')
			return 1;
		c += n + 1;
	}
}

static int set_string(struct parser *p, char **dst, const char *v)
{
	char *s = strdup(v);

	if (s == NULL)
		return perr(p, "out of memory");
	free(*dst);
	*dst = s;
	return 0;
}

static int set_value(struct parser *p, const struct key_def *k, const char *v)
{
	void *field = (char *)p->base + k->off;
	long long n;

	switch (k->type) {
	case T_STR:
		if (!valid_text(v))
			return perr(p, "%s: empty value or control characters", k->name);
		if (strncmp(k->name, "map_", 4) == 0 && !valid_folder(v))
			return perr(p, "%s: '%s' is not a valid folder name", k->name, v);
		return set_string(p, field, v);
	case T_NAME:
		if (!valid_name(v))
			return perr(p, "%s: '%s' is not a valid name (letters, digits, . _ @ + -)",
				    k->name, v);
		return set_string(p, field, v);
	case T_PATH:
	case T_SECRET:
		if (v[0] != '/' || !valid_text(v))
			return perr(p, "%s: '%s' is not an absolute path", k->name, v);
		if (strlen(v) >= PATH_MAX)
			return perr(p, "%s: path too long", k->name);
		if (set_string(p, field, v) != 0)
			return EX_CONFIG;
		if (k->type == T_SECRET) {
			struct secret_ref *r = realloc(p->secrets, (p->nsecrets + 1) * sizeof(*r));
			if (r == NULL)
				return perr(p, "out of memory");
			p->secrets = r;
			r[p->nsecrets].path = *(char **)field;
			r[p->nsecrets++].line = p->line;
		}
		return 0;
	case T_PORT:
		n = config_parse_size(v);
		if (!isdigit((unsigned char)v[strlen(v) - 1]) || n < 1 || n > 65535)
			return perr(p, "%s: '%s' is not a port number (1-65535)", k->name, v);
		*(int *)field = (int)n;
		return 0;
	case T_DURATION:
		n = config_parse_duration(v);
		if (n < 0 || n > INT_MAX)
			return perr(p, "%s: '%s' is not a duration (e.g. 30, 30s, 5m, 2h, 1d)",
				    k->name, v);
		if (n == 0)
			return perr(p, "%s: must be greater than zero", k->name);
		*(int *)field = (int)n;
		return 0;
	case T_SIZE:
	case T_INTSIZE:
		n = config_parse_size(v);
		if (n <= 0 || (k->type == T_INTSIZE && n > INT_MAX))
			return perr(p, "%s: '%s' is not a size (e.g. 65536, 64k, 50M, 1G)", k->name, v);
		if (k->type == T_SIZE)
			*(long long *)field = n;
		else
			*(int *)field = (int)n;
		return 0;
	case T_BOOL:
		if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1") ||
		    !strcasecmp(v, "on"))
			*(int *)field = 1;
		else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0") ||
			 !strcasecmp(v, "off"))
			*(int *)field = 0;
		else
			return perr(p, "%s: '%s' is not yes or no", k->name, v);
		return 0;
	case T_TLS_ACCOUNT:
		if (!strcmp(v, "imaps"))
			*(enum config_tls *)field = CONFIG_TLS_IMAPS;
		else if (!strcmp(v, "starttls"))
			*(enum config_tls *)field = CONFIG_TLS_STARTTLS;
		else
			return perr(p, "tls: '%s' must be imaps or starttls", v);
		return 0;
	case T_TLS_RELAY:
		if (!strcmp(v, "smtps"))
			*(enum config_tls *)field = CONFIG_TLS_SMTPS;
		else if (!strcmp(v, "starttls"))
			*(enum config_tls *)field = CONFIG_TLS_STARTTLS;
		else
			return perr(p, "tls: '%s' must be starttls or smtps", v);
		return 0;
	case T_TLS_LDAP:
		if (!strcmp(v, "ldaps"))
			*(enum config_tls *)field = CONFIG_TLS_LDAPS;
		else if (!strcmp(v, "starttls"))
			*(enum config_tls *)field = CONFIG_TLS_STARTTLS;
		else if (!strcmp(v, "no") || !strcmp(v, "none"))
			*(enum config_tls *)field = CONFIG_TLS_NONE;
		else
			return perr(p, "tls: '%s' must be no, starttls or ldaps", v);
		return 0;
	case T_TLS_MIN:
		if (strcmp(v, "TLSv1.2") != 0 && strcmp(v, "TLSv1.3") != 0)
			return perr(p, "tls_min_protocol: '%s' must be TLSv1.2 or TLSv1.3", v);
		return set_string(p, field, v);
	case T_SPECIAL:
		n = special_use_from_flag(v);
		if (n < 0)
			return perr(p, "special_use: '%s' must be one of \\Drafts \\Sent \\Trash "
				    "\\Junk \\Archive", v);
		*(int *)field = (int)n;
		return 0;
	case T_AUTO:
		if (!strcmp(v, "subscribe"))
			*(enum mailbox_auto *)field = MAILBOX_AUTO_SUBSCRIBE;
		else if (!strcmp(v, "create"))
			*(enum mailbox_auto *)field = MAILBOX_AUTO_CREATE;
		else if (!strcmp(v, "no"))
			*(enum mailbox_auto *)field = MAILBOX_AUTO_NO;
		else
			return perr(p, "auto: '%s' must be subscribe, create or no", v);
		return 0;
	case T_DN:
		/* attribute=value pairs separated by commas, no filter metacharacters */
		if (!valid_text(v) || strchr(v, '=') == NULL || strpbrk(v, "()*\\\"") != NULL)
			return perr(p, "%s: '%s' is not a DN like dc=example,dc=com", k->name, v);
		return set_string(p, field, v);
	}
	return perr(p, "internal: unknown key type");
}

/* Opens section "[kind]" or "[kind name]" (text between the brackets). */
static int open_section(struct parser *p, char *s)
{
	static const struct { const char *kind; enum sect_kind sect; int named; } kinds[] = {
		{ "sync", SECT_SYNC, 0 }, { "imap", SECT_IMAP, 0 }, { "relay", SECT_RELAY, 0 },
		{ "ldap", SECT_LDAP, 0 }, { "users", SECT_USERS, 0 },
		{ "account", SECT_ACCOUNT, 1 }, { "mailbox", SECT_MAILBOX, 1 },
	};
	struct config *c = p->cfg;
	char *name = NULL;
	size_t i, n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strcspn(s, " \t");
	if (s[n] != '\0') {
		s[n] = '\0';
		name = s + n + 1;
		while (*name == ' ' || *name == '\t')
			name++;
		n = strlen(name);
		while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t'))
			name[--n] = '\0';
		if (n == 0)
			name = NULL;
	}
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(s, kinds[i].kind) == 0)
			break;
	if (i == sizeof(kinds) / sizeof(kinds[0]))
		return perr(p, "unknown section [%s] (sync, imap, account NAME, relay, ldap, "
			    "users, mailbox NAME)", s);
	if (kinds[i].named && name == NULL)
		return perr(p, "[%s] needs a name: [%s NAME]", s, s);
	if (!kinds[i].named && name != NULL)
		return perr(p, "[%s] takes no name", s);

	p->sect = kinds[i].sect;
	memset(p->seen, 0, sizeof(p->seen));
	switch (p->sect) {
	case SECT_SYNC: p->base = &c->sync; break;
	case SECT_IMAP: p->base = &c->imap; break;
	case SECT_RELAY: p->base = &c->relay; c->relay.present = 1; break;
	case SECT_LDAP: p->base = &c->ldap; c->ldap.present = 1; break;
	case SECT_USERS: p->base = &c->users; c->users.present = 1; break;
	case SECT_ACCOUNT: {
		struct config_account *a;
		if (!valid_name(name))
			return perr(p, "account name '%s': use letters, digits, . _ @ + -", name);
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			return perr(p, "account name '%s' is not allowed", name);
		for (i = 0; i < c->naccounts; i++)
			if (strcmp(c->accounts[i].name, name) == 0)
				return perr(p, "[account %s] already defined at line %d", name,
					    c->accounts[i].line);
		a = realloc(c->accounts, (c->naccounts + 1) * sizeof(*a));
		if (a == NULL)
			return perr(p, "out of memory");
		c->accounts = a;
		a = &a[c->naccounts++];
		memset(a, 0, sizeof(*a));
		a->line = p->line;
		a->tls = CONFIG_TLS_IMAPS;
		a->timeout = 120;
		p->base = a;
		return set_string(p, &a->name, name);
	}
	case SECT_MAILBOX: {
		struct config_mailbox *m;
		if (!valid_folder(name))
			return perr(p, "[mailbox %s]: not a valid folder name", name);
		for (i = 0; i < c->nmailboxes; i++)
			if (strcmp(c->mailboxes[i].name, name) == 0)
				return perr(p, "[mailbox %s] defined twice", name);
		m = realloc(c->mailboxes, (c->nmailboxes + 1) * sizeof(*m));
		if (m == NULL)
			return perr(p, "out of memory");
		c->mailboxes = m;
		m = &m[c->nmailboxes++];
		memset(m, 0, sizeof(*m));
		m->special_use = -1;
		m->autocreate = MAILBOX_AUTO_SUBSCRIBE;
		p->base = m;
		return set_string(p, &m->name, name);
	}
	case SECT_GLOBAL:
		break;
	}
	if (p->sect_seen[p->sect])
		return perr(p, "section [%s] appears twice", sect_names[p->sect]);
	p->sect_seen[p->sect] = p->line;
	return 0;
}

/*
 * Splits "key = value  # comment" in place.  A value may be double-quoted
 * ("a # b", with \" and \\ escapes); otherwise " #" or "\t#" starts a
 * comment.
 */
static int split_line(struct parser *p, char *s, char **key, char **val)
{
	char *eq = strchr(s, '='), *v, *e;
	size_t n;

	if (eq == NULL)
		return perr(p, "expected 'key = value' or '[section]'");
	*eq = '\0';
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	if (n == 0)
		return perr(p, "missing key before '='");
	*key = s;
	v = eq + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v == '"') {
		char *o = v;
		for (e = v + 1; *e != '"'; e++) {
			if (*e == '\0')
				return perr(p, "unterminated quoted value");
			if (*e == '\\' && (e[1] == '"' || e[1] == '\\'))
				e++;
			*o++ = *e;
		}
		*o = '\0';
		for (e++; *e == ' ' || *e == '\t'; e++)
			;
		if (*e != '\0' && *e != '#')
			return perr(p, "text after the closing quote");
	} else {
		for (e = v; *e; e++)
			if (*e == '#' && (e == v || e[-1] == ' ' || e[-1] == '\t')) {
				*e = '\0';
				break;
			}
		n = strlen(v);
		while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			v[--n] = '\0';
	}
	*val = v;
	return 0;
}

static int parse_line(struct parser *p, char *s)
{
	char *key = NULL, *val = NULL;
	size_t n, i;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	if (n == 0 || s[0] == '#' || s[0] == ';')
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
			return perr(p, "control character in line");
	if (s[0] == '[') {
		/* "[sync]   # comment" as DESIGN.md writes it */
		char *hash = strchr(s, ']');
		if (hash != NULL && (hash = strchr(hash, '#')) != NULL && hash > s &&
		    (hash[-1] == ' ' || hash[-1] == '\t')) {
			*hash = '\0';
			n = strlen(s);
			while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
				s[--n] = '\0';
		}
		if (s[n - 1] != ']')
			return perr(p, "section header must end with ']'");
		s[n - 1] = '\0';
		return open_section(p, s + 1);
	}
	if (split_line(p, s, &key, &val) != 0)
		return EX_CONFIG;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i].sect == p->sect && strcmp(keys[i].name, key) == 0)
			break;
	if (i == sizeof(keys) / sizeof(keys[0])) {
		for (size_t j = 0; j < sizeof(keys) / sizeof(keys[0]); j++)
			if (strcmp(keys[j].name, key) == 0)
				return perr(p, "key '%s' does not belong in %s%s%s", key,
					    p->sect == SECT_GLOBAL ? "" : "[",
					    sect_names[p->sect], p->sect == SECT_GLOBAL ? "" : "]");
		return perr(p, "unknown key '%s'", key);
	}
	if (p->seen[i])
		return perr(p, "key '%s' set twice in this section", key);
	p->seen[i] = 1;
	if (val[0] == '\0')
		return perr(p, "%s: empty value", key);
	return set_value(p, &keys[i], val);
}

/* Checks within sections once the whole file is read; sets defaults. */
static int finish(struct parser *p)
{
	struct config *c = p->cfg;
	size_t i;

	p->line = 0;
	for (i = 0; i < c->naccounts; i++) {
		struct config_account *a = &c->accounts[i];
		p->line = a->line;
		if (a->host == NULL)
			return perr(p, "[account %s]: host is required", a->name);
		if (a->username == NULL)
			return perr(p, "[account %s]: username is required", a->name);
		if (a->password_file == NULL)
			return perr(p, "[account %s]: password_file is required", a->name);
		if (a->port == 0)
			a->port = a->tls == CONFIG_TLS_STARTTLS ? 143 : 993;
	}
	if (c->relay.present) {
		p->line = p->sect_seen[SECT_RELAY];
		if (c->relay.host == NULL)
			return perr(p, "[relay]: host is required");
		if (c->relay.username == NULL || c->relay.password_file == NULL)
			return perr(p, "[relay]: username and password_file are required");
	}
	if (c->relay.tls == CONFIG_TLS_NONE)
		c->relay.tls = CONFIG_TLS_STARTTLS;
	if (c->relay.port == 0)
		c->relay.port = c->relay.tls == CONFIG_TLS_SMTPS ? 465 : 587;
	if (c->relay.timeout == 0)
		c->relay.timeout = 60;
	if (c->relay.max_size == 0)
		c->relay.max_size = 50LL * 1024 * 1024;
	if (c->ldap.present) {
		p->line = p->sect_seen[SECT_LDAP];
		if (c->ldap.host == NULL || c->ldap.dc_domain == NULL ||
		    c->ldap.admin_name == NULL || c->ldap.admin_password_file == NULL ||
		    c->ldap.user_group == NULL)
			return perr(p, "[ldap]: host, dc_domain, admin_name, admin_password_file "
				    "and user_group are required");
	}
	if (c->ldap.port == 0)
		c->ldap.port = c->ldap.tls == CONFIG_TLS_LDAPS ? 636 : 389;
	if (c->ldap.timeout == 0)
		c->ldap.timeout = 10;
	if (c->users.present) {
		p->line = p->sect_seen[SECT_USERS];
		if (c->users.passwd_file == NULL)
			return perr(p, "[users]: passwd_file is required");
	}
	if ((c->ldap.present && c->ldap.account == NULL) ||
	    (c->users.present && c->users.account == NULL)) {
		p->line = c->ldap.present ? p->sect_seen[SECT_LDAP] : p->sect_seen[SECT_USERS];
		if (c->naccounts != 1)
			return perr(p, "[%s]: account is required unless exactly one [account] "
				    "section exists", c->ldap.present ? "ldap" : "users");
	}
	p->line = 0;
	if (c->subdomain == NULL && set_string(p, &c->subdomain, "imap") != 0)
		return EX_CONFIG;
	if (c->tls_min_protocol == NULL && set_string(p, &c->tls_min_protocol, "TLSv1.2") != 0)
		return EX_CONFIG;
	if (c->vmail_user == NULL && set_string(p, &c->vmail_user, "vmail") != 0)
		return EX_CONFIG;
	if (c->sync.interval == 0)
		c->sync.interval = 300;
	if (c->imap.max_literal == 0)
		c->imap.max_literal = 64LL * 1024 * 1024;
	if (c->imap.max_line == 0)
		c->imap.max_line = 64 * 1024;
	if (c->imap.idle_timeout == 0)
		c->imap.idle_timeout = 1800;
	if (c->imap.auth_timeout == 0)
		c->imap.auth_timeout = 60;
	return 0;
}

static int parse_buf(const char *buf, size_t len, const char *name, struct config **out,
		     char *err, size_t errlen, struct parser *p)
{
	char line[CONFIG_MAX_LINE + 2];
	size_t pos = 0;
	int rc;

	memset(p, 0, sizeof(*p));
	p->name = name;
	p->err = err;
	p->errlen = errlen;
	*out = NULL;
	if (len > CONFIG_MAX_SIZE)
		return perr(p, "file larger than %d bytes", CONFIG_MAX_SIZE);
	p->cfg = calloc(1, sizeof(*p->cfg));
	if (p->cfg == NULL || (p->cfg->path = strdup(name)) == NULL) {
		config_free(p->cfg);
		return perr(p, "out of memory");
	}
	p->base = p->cfg;
	p->sect = SECT_GLOBAL;

	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;

		p->line++;
		if (n > CONFIG_MAX_LINE) {
			rc = perr(p, "line longer than %d bytes", CONFIG_MAX_LINE);
			goto fail;
		}
		if (memchr(buf + pos, '\0', n) != NULL) {
			rc = perr(p, "NUL byte in line");
			goto fail;
		}
		memcpy(line, buf + pos, n);
		line[n] = '\0';
		pos += n + (nl != NULL);
		if ((rc = parse_line(p, line)) != 0)
			goto fail;
	}
	if ((rc = finish(p)) != 0)
		goto fail;
	*out = p->cfg;
	return 0;
fail:
	config_free(p->cfg);
	p->cfg = NULL;
	free(p->secrets);
	p->secrets = NULL;
	return rc;
}

int config_parse(const char *buf, size_t len, const char *name, struct config **out,
		 char *err, size_t errlen)
{
	struct parser p;
	int rc = parse_buf(buf, len, name, out, err, errlen, &p);

	free(p.secrets);
	return rc;
}

const char *config_path(const char *opt_c)
{
	const char *env;

	if (opt_c != NULL)
		return opt_c;
	env = getenv("MAILKEEP_CONFIG");
	if (env != NULL && env[0] != '\0')
		return env;
	return CONFIG_DEFAULT_PATH;
}

int config_load(const char *path, struct config **out, char *err, size_t errlen)
{
	struct parser p;
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return EX_CONFIG;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return EX_CONFIG;
	}
	if (st.st_size > CONFIG_MAX_SIZE) {
		snprintf(err, errlen, "%s: larger than %d bytes", path, CONFIG_MAX_SIZE);
		close(fd);
		return EX_CONFIG;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		close(fd);
		return EX_CONFIG;
	}
	while (len < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s: read: %s", path, strerror(errno));
			free(buf);
			close(fd);
			return EX_CONFIG;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	rc = parse_buf(buf, len, path, out, err, errlen, &p);
	free(buf);
	if (rc != 0)
		return rc;

	/* A secret file that exists but is readable by others is a config error. */
	for (size_t i = 0; i < p.nsecrets; i++) {
		char why[512];
		struct stat sst;
		if (stat(p.secrets[i].path, &sst) != 0)
			continue;	/* checked again when a tool reads it */
		if (config_check_secret_mode(p.secrets[i].path, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s:%d: %s", path, p.secrets[i].line, why);
			free(p.secrets);
			config_free(*out);
			*out = NULL;
			return EX_CONFIG;
		}
	}
	free(p.secrets);
	return 0;
}

void config_free(struct config *c)
{
	size_t i;

	if (c == NULL)
		return;
	free(c->path);
	free(c->domain);
	free(c->subdomain);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->tls_min_protocol);
	free(c->mail_dir);
	free(c->index_dir);
	free(c->state_dir);
	free(c->vmail_user);
	for (i = 0; i < c->naccounts; i++) {
		struct config_account *a = &c->accounts[i];
		free(a->name);
		free(a->host);
		free(a->username);
		free(a->password_file);
		free(a->ca_file);
		for (int j = 0; j < SPECIAL_COUNT; j++)
			free(a->map[j]);
	}
	free(c->accounts);
	free(c->relay.host);
	free(c->relay.username);
	free(c->relay.password_file);
	free(c->relay.ca_file);
	free(c->ldap.host);
	free(c->ldap.dc_domain);
	free(c->ldap.admin_name);
	free(c->ldap.admin_password_file);
	free(c->ldap.account);
	free(c->ldap.user_group);
	free(c->ldap.ca_file);
	free(c->users.passwd_file);
	free(c->users.account);
	for (i = 0; i < c->nmailboxes; i++)
		free(c->mailboxes[i].name);
	free(c->mailboxes);
	free(c);
}

int config_require(const struct config *c, unsigned need, char *err, size_t errlen)
{
	const char *missing = NULL;

	if ((need & CONFIG_NEED_MAIL_DIR) && c->mail_dir == NULL)
		missing = "mail_dir is required";
	else if ((need & CONFIG_NEED_STATE_DIR) && c->state_dir == NULL)
		missing = "state_dir is required";
	else if ((need & CONFIG_NEED_DOMAIN) && c->domain == NULL)
		missing = "domain is required";
	else if ((need & CONFIG_NEED_TLS) && (c->tls_cert == NULL || c->tls_key == NULL))
		missing = "tls_cert and tls_key are required (or --allow-plaintext on loopback)";
	else if ((need & CONFIG_NEED_ACCOUNT) && c->naccounts == 0)
		missing = "at least one [account NAME] section is required";
	else if ((need & CONFIG_NEED_RELAY) && !c->relay.present)
		missing = "a [relay] section is required";
	else if ((need & CONFIG_NEED_LDAP) && !c->ldap.present)
		missing = "an [ldap] section is required";
	else if ((need & CONFIG_NEED_AUTH) && !c->ldap.present && !c->users.present)
		missing = "an [ldap] or [users] section is required";
	else if ((need & (CONFIG_NEED_AUTH | CONFIG_NEED_LDAP)) && config_user_account(c) == NULL)
		missing = "cannot tell which account holds users' mail: set account in [ldap] or [users]";
	if (missing == NULL)
		return 0;
	snprintf(err, errlen, "%s: %s", c->path, missing);
	return EX_CONFIG;
}

const struct config_account *config_account(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->naccounts; i++)
		if (strcmp(c->accounts[i].name, name) == 0)
			return &c->accounts[i];
	return NULL;
}

const char *config_user_account(const struct config *c)
{
	if (c->ldap.present && c->ldap.account != NULL)
		return c->ldap.account;
	if (c->users.present && c->users.account != NULL)
		return c->users.account;
	if (c->naccounts == 1)
		return c->accounts[0].name;
	return NULL;
}

int config_user_home(const struct config *c, const char *user, char *buf, size_t len,
		     char *err, size_t errlen)
{
	const char *acct = config_user_account(c);
	size_t n = strlen(user);
	int w;

	if (n == 0 || n > 255 || strchr(user, '/') != NULL || strcmp(user, ".") == 0 ||
	    strcmp(user, "..") == 0 || !valid_text(user)) {
		snprintf(err, errlen, "invalid user name %s", n > 255 ? "(too long)" : "");
		return EX_USAGE;
	}
	if (c->mail_dir == NULL) {
		snprintf(err, errlen, "%s: mail_dir is required", c->path);
		return EX_CONFIG;
	}
	if (acct == NULL) {
		snprintf(err, errlen, "%s: cannot tell which account holds users' mail: "
			 "set account in [ldap] or [users]", c->path);
		return EX_CONFIG;
	}
	w = snprintf(buf, len, "%s/%s/%s", c->mail_dir, acct, user);
	if (w < 0 || (size_t)w >= len) {
		snprintf(err, errlen, "home directory path too long");
		return EX_USAGE;
	}
	return 0;
}

int config_check_secret_mode(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? EX_NOINPUT : EX_CONFIG;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "secret file %s is not a regular file", path);
		return EX_CONFIG;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen, "secret file %s is accessible by group or others "
			 "(mode %04o): chmod 600 it", path, (unsigned)(st.st_mode & 07777));
		return EX_CONFIG;
	}
	return 0;
}

void secret_free(char *secret)
{
	if (secret == NULL)
		return;
	explicit_bzero(secret, strlen(secret));
	free(secret);
}

int config_read_secret(const char *path, char **out, char *err, size_t errlen)
{
	struct stat st;
	char *buf;
	size_t len = 0;
	int fd;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "secret file %s: %s", path, strerror(errno));
		return errno == ENOENT ? EX_NOINPUT : (errno == EACCES ? EX_NOPERM : EX_NOINPUT);
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "secret file %s is not a regular file", path);
		close(fd);
		return EX_CONFIG;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen, "secret file %s is accessible by group or others "
			 "(mode %04o): chmod 600 it", path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return EX_CONFIG;
	}
	if (st.st_size > SECRET_MAX_SIZE) {
		snprintf(err, errlen, "secret file %s is larger than %d bytes", path,
			 SECRET_MAX_SIZE);
		close(fd);
		return EX_CONFIG;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		return EX_OSERR;
	}
	while (len < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	if (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (len > 0 && buf[len - 1] == '\r')
		buf[--len] = '\0';
	if (len == 0 || strlen(buf) != len) {
		explicit_bzero(buf, (size_t)st.st_size);
		free(buf);
		snprintf(err, errlen, "secret file %s is empty or holds a NUL byte", path);
		return EX_CONFIG;
	}
	*out = buf;
	return 0;
}

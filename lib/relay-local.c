/* Local recipients: who is one, and delivery into their INBOX; see relay.h. */
#include "relay.h"

#include "auth.h"
#include "config.h"
#include "fsutil.h"
#include "ldapauth.h"
#include "log.h"
#include "maildir.h"
#include "passwd.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

struct group_seen {
	const char *group;
	int member;
};

static void group_cb(void *arg, const char *name, const char *dn)
{
	struct group_seen *g = arg;

	(void)dn;
	if (g->group != NULL && strcasecmp(name, g->group) == 0)
		g->member = 1;
}

int relay_local_known(const struct config *cfg, struct auth *auth, const char *addr,
		      char *canon, size_t canonlen, char *err, size_t errlen)
{
	char home[4096], e2[512];
	struct stat st;
	size_t i, n = strlen(addr);

	if (n + 1 > canonlen)
		return 0;
	/* homes are named by lower-cased login, as dovecot's %Lu */
	for (i = 0; i <= n; i++)
		canon[i] = (char)tolower((unsigned char)addr[i]);
	if (cfg->mail_dir != NULL && config_user_account(cfg) != NULL &&
	    config_user_home(cfg, canon, home, sizeof(home), e2, sizeof(e2)) == 0 &&
	    stat(home, &st) == 0 && S_ISDIR(st.st_mode))
		return 1;
	if (cfg->ldap.present) {
		struct ldapauth *la = auth != NULL ? auth_ldap(auth) : NULL;
		struct group_seen g = { cfg->ldap.user_group, 0 };
		enum ldapauth_result r;
		if (la == NULL)
			return 0;
		r = ldapauth_groups(la, canon, group_cb, &g, err, errlen);
		if (r == LDAPAUTH_UNAVAILABLE)
			return -1;
		return r == LDAPAUTH_OK && g.member;
	}
	if (cfg->users.present && cfg->users.passwd_file != NULL) {
		struct passwd_entry *pe;
		char *buf;
		size_t len;
		int found;
		if (passwd_read_file(cfg->users.passwd_file, &buf, &len, err, errlen) != 0)
			return -1;
		pe = malloc(sizeof(*pe));
		if (pe == NULL) {
			passwd_free_buf(buf, len);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		found = passwd_find(buf, len, addr, pe, NULL, NULL, 0);
		if (found && strlen(pe->user) < canonlen)
			snprintf(canon, canonlen, "%s", pe->user);
		explicit_bzero(pe, sizeof(*pe));
		free(pe);
		passwd_free_buf(buf, len);
		return found ? 1 : 0;
	}
	return 0;
}

/* <home>/mail with cur/new/tmp and a uidlist, created as on a first IMAP login. */
static int ensure_maildir(const struct config *cfg, const char *user, char *maildir,
			  size_t len, char *err, size_t errlen)
{
	char home[4096], acct[4096];
	struct stat st;
	int rc;

	rc = config_user_home(cfg, user, home, sizeof(home), err, errlen);
	if (rc != 0)
		return rc;
	if ((size_t)snprintf(maildir, len, "%s/mail", home) >= len) {
		snprintf(err, errlen, "home path too long");
		return EX_CONFIG;
	}
	if (stat(maildir, &st) != 0) {
		fsutil_dirname(home, acct, sizeof(acct));
		if ((rc = fsutil_mkdir(acct, 0700, err, errlen)) != 0 ||
		    (rc = fsutil_mkdir(home, 0700, err, errlen)) != 0 ||
		    (rc = fsutil_mkdir(maildir, 0700, err, errlen)) != 0)
			return rc;
	}
	return maildir_folder_init(maildir, err, errlen);
}

int relay_local_deliver(const struct config *cfg, const char *user, int fd,
			const char *buf, size_t len, uint32_t *uid, char *err, size_t errlen)
{
	char maildir[4096];
	struct maildir_delivery *d;
	struct maildir_commit c = { .assign_uid = 1 };
	int rc;

	if (cfg->mail_dir == NULL) {
		snprintf(err, errlen, "mail_dir is not set");
		return EX_CONFIG;
	}
	rc = ensure_maildir(cfg, user, maildir, sizeof(maildir), err, errlen);
	if (rc != 0)
		return rc;
	rc = maildir_delivery_begin(maildir, &d, err, errlen);
	if (rc != 0)
		return rc;
	if (buf != NULL) {
		rc = maildir_delivery_write(d, buf, len, err, errlen);
	} else if (lseek(fd, 0, SEEK_SET) != 0) {
		snprintf(err, errlen, "seek: %s", strerror(errno));
		rc = EX_IOERR;
	} else {
		rc = maildir_delivery_copy_fd(d, fd, -1, err, errlen);
	}
	if (rc != 0) {
		maildir_delivery_abort(d);
		return rc;
	}
	return maildir_delivery_commit(d, &c, uid, NULL, 0, err, errlen);
}

/*
 * The handoff from mail-serve-imap (before login) to mail-imap-session
 * (after login), like dovecot's imap-login -> imap.  The pre-login process
 * writes one of these into a memfd that the session binary inherits as
 * IMAPD_HANDOFF_FD; the client connection is the session's stdin/stdout
 * (the socket itself, or for TLS a socketpair to the pre-login process
 * that stays as the TLS proxy).
 *
 * It carries who logged in, the few config keys a session reads, and the
 * client's bytes already read but not yet parsed (pipelined after LOGIN).
 * Never a secret: no password, no key; the session never sees the config
 * file, the passwd file or the LDAP bind password.
 *
 * Format: "mailkeep-handoff 1\n", then "key value\n" lines (values without
 * a newline), and last "input N\n" followed by N raw bytes.  The reader
 * accepts at most IMAPD_HANDOFF_MAX bytes and refuses unknown keys.
 */
#ifndef MK_IMAPD_HANDOFF_H
#define MK_IMAPD_HANDOFF_H
#include <stddef.h>

#include "config.h"

#define IMAPD_HANDOFF_FD 3
#define IMAPD_HANDOFF_MAX (1 << 20)

struct imapd_handoff {
	char *user;		/* the login name */
	char *home;		/* the user's home; mail is <home>/mail */
	char *peer;		/* client address for the log */
	char *tag;		/* answer "<tag> OK [CAPABILITY ...] Logged in"; NULL: PREAUTH */
	int verbose;		/* log verbosity */
	unsigned long long bytes_in, bytes_out;	/* already exchanged, for the log */
	struct config *cfg;	/* only [imap], index_dir and the [mailbox] sections */
	char *input;		/* client bytes read but not parsed yet */
	size_t inputlen;
};

/*
 * Writes H (whose cfg may be a full config: only the keys above are
 * written) to FD.  0, or -1 with errno set; EINVAL when a value holds a
 * newline.
 */
int imapd_handoff_write(int fd, const struct imapd_handoff *h);

/* Reads and checks a handoff from FD into H (owned by the caller). 0 or -1 and err. */
int imapd_handoff_read(int fd, struct imapd_handoff *h, char *err, size_t errlen);
void imapd_handoff_free(struct imapd_handoff *h);	/* frees the members; NULL allowed */

/*
 * The session binary's session: state IMAPD_AUTH in H->home, answers the
 * LOGIN (or greets with PREAUTH), then serves FD_IN/FD_OUT until LOGOUT.
 * An exit code.
 */
int imapd_handoff_serve(const struct imapd_handoff *h, int fd_in, int fd_out);
#endif

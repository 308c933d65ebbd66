/*
 * mail-imap-session: the IMAP session after login.  Started only by
 * mail-serve-imap(1), which execs it once a client has logged in: the
 * client is on stdin/stdout (for TLS, a socketpair to mail-serve-imap,
 * which stays as the TLS proxy) and the handoff (lib/imapd-handoff.h) on
 * descriptor 3.  Linked with libc and zlib only: no OpenSSL, libldap,
 * libcurl or libxml2 mapped in a process that may live for days.
 */
#include "imapd-handoff.h"
#include "log.h"
#include "maildir.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct imapd_handoff h;
	struct stat st;
	char err[512];
	int rc;

	/* other sessions run as the same user: none may read this one's memory */
	prctl(PR_SET_DUMPABLE, 0);
	(void)argv;
	if (argc != 1 || fstat(IMAPD_HANDOFF_FD, &st) != 0) {
		fprintf(stderr, "mail-imap-session: started by mail-serve-imap(1) after a login, "
			"not by hand\n");
		return EX_USAGE;
	}
	log_init("mail-serve-imap", 0);
	if (geteuid() == 0) {
		log_err("session", "error=%s", log_q("refusing to serve mail as root"));
		return EX_CONFIG;
	}
	if (imapd_handoff_read(IMAPD_HANDOFF_FD, &h, err, sizeof(err)) != 0) {
		log_err("session", "error=%s", log_q(err));
		close(IMAPD_HANDOFF_FD);
		return EX_SOFTWARE;
	}
	close(IMAPD_HANDOFF_FD);
	log_init("mail-serve-imap", h.verbose);
	signal(SIGPIPE, SIG_IGN);
	maildir_set_index_dir(h.cfg->index_dir);
	rc = imapd_handoff_serve(&h, STDIN_FILENO, STDOUT_FILENO);
	imapd_handoff_free(&h);
	return rc;
}

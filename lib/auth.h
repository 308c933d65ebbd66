/*
 * Who may log in: the one entry point the servers (IMAP LOGIN/AUTHENTICATE,
 * SMTP AUTH) and mail-ldap-check use.
 *
 * The backend comes from the config: [ldap] (lib/ldapauth, lldap's flow)
 * when present, else [users] passwd_file (lib/passwd).  The answer has three
 * values; callers map them onto the wire:
 *   AUTH_OK          IMAP "OK [CAPABILITY ...] Logged in", SMTP 235
 *   AUTH_REJECTED    IMAP "NO [AUTHENTICATIONFAILED] Authentication failed."
 *                    SMTP "535 5.7.8 Error: authentication failed: ..."
 *                    -- the same answer whatever the reason: the reason is
 *                    for the log (auth_check() logs it) and mail-ldap-check
 *   AUTH_UNAVAILABLE IMAP "NO [UNAVAILABLE] ...", SMTP "454 4.7.0 ..."
 *
 * Penalty delay: auth_check() applies it itself.  With a source address it
 * first sleeps for that address's current penalty (so a right guess is not
 * answered faster than a wrong one), then records a failure on REJECTED or
 * clears the address on OK; UNAVAILABLE changes nothing.  Callers must not
 * add another delay.  The penalty grows 0, 0.25, 0.5, 1, 2, 4, 8, 15 s (cap)
 * with consecutive failures and is forgotten AUTH_PENALTY_FORGET seconds
 * after the last one.  It lives in one fixed-size file,
 * state_dir/auth-penalty (AUTH_PENALTY_SLOTS 16-byte slots, flock'ed),
 * shared by every per-connection process: a flood of addresses cannot make
 * it grow.  IPv6 addresses count per /64.  Without state_dir, or if the file
 * cannot be used, there is no penalty (a warning is logged).
 *
 * Timing: with the passwd file "no such user" spends one yescrypt
 * computation like a real check; with LDAP it skips the user bind, so it is
 * one round trip faster -- the penalty delay, not timing, is what protects
 * against guessing there.
 *
 * Processes: a handle holds at most one LDAP connection, opened on first
 * use; a forking server may auth_open() before fork() as long as the
 * parent never calls auth_check() itself.
 *
 * Secrets: the password is only ever passed to the backend and never logged
 * or kept.  Passwords and user names with NUL or (for names) control bytes
 * are rejected before any backend sees them.
 */
#ifndef MK_AUTH_H
#define MK_AUTH_H
#include <stddef.h>
#include <time.h>

struct config;
struct auth;

enum auth_status { AUTH_OK = 0, AUTH_REJECTED, AUTH_UNAVAILABLE };

enum auth_reason {
	AUTH_REASON_NONE = 0,
	AUTH_REASON_BAD_PASSWORD,	/* "bad password" */
	AUTH_REASON_NO_USER,		/* "no such user" */
	AUTH_REASON_NOT_IN_GROUP,	/* "not in group <user_group>" */
	AUTH_REASON_EMPTY_PASSWORD,	/* "empty password": refused before any bind */
	AUTH_REASON_BAD_NAME,		/* "invalid user name": too long, control bytes, '/' */
	AUTH_REASON_AMBIGUOUS,		/* "ambiguous user": several LDAP entries */
	AUTH_REASON_BAD_HASH,		/* "unusable password hash" in passwd_file */
};

#define AUTH_MAX_USER 320		/* bytes of a login name */
#define AUTH_MAX_PASSWORD 1024		/* bytes of a password */
#define AUTH_PENALTY_SLOTS 4096
#define AUTH_PENALTY_CAP_MS 15000
#define AUTH_PENALTY_FORGET 900		/* seconds */

struct auth_result {
	enum auth_status status;
	enum auth_reason reason;	/* for REJECTED */
	char login[AUTH_MAX_USER + 1];	/* canonical name (LDAP mail value, passwd-file user) */
	char dn[1024];			/* LDAP entry's DN on OK or bad password, else "" */
	char home[4096];		/* <mail_dir>/<account>/<login> on OK; "" without mail_dir */
	char detail[512];		/* reason text, or why unavailable; never a password */
	unsigned penalty_ms;		/* delay slept before this check */
};

/*
 * Prepares the backend named by CFG (which must outlive the handle): reads
 * the LDAP admin password, checks the passwd_file path.  No network traffic
 * yet.  Returns 0 and *out, or EX_CONFIG / EX_NOINPUT with err set.
 */
int auth_open(const struct config *cfg, struct auth **out, char *err, size_t errlen);
void auth_free(struct auth *a);

/* 1 if the handle uses LDAP, 0 for the passwd file. */
int auth_is_ldap(const struct auth *a);
struct ldapauth *auth_ldap(struct auth *a);	/* NULL for the passwd file */

/*
 * Checks USER[0..user_len) with PASSWORD[0..password_len) (lengths, so an
 * embedded NUL is seen and refused, never silently truncated).
 * SOURCE_ADDR is the client's numeric address ("192.0.2.7", "2001:db8::1"),
 * or NULL for a local tool: no penalty is read or recorded.  Fills *res,
 * logs one "auth" event, and returns res->status.
 */
enum auth_status auth_check(struct auth *a, const char *user, size_t user_len,
			    const char *password, size_t password_len,
			    const char *source_addr, struct auth_result *res);

/* "ok", "rejected", "unavailable". */
const char *auth_status_str(enum auth_status s);

/*
 * The penalty store, exported for tests and tools.  NOW is time(NULL) in
 * normal use.  auth_penalty_get() returns the delay in ms that the next
 * attempt from ADDR waits (0 on any error); _fail() records a failure and
 * _reset() forgets ADDR; both return 0, or -1 if the file is unusable.
 * auth_penalty_delay_ms() is the pure schedule: failures -> ms.
 */
unsigned auth_penalty_get(const char *state_dir, const char *addr, time_t now);
int auth_penalty_fail(const char *state_dir, const char *addr, time_t now);
int auth_penalty_reset(const char *state_dir, const char *addr);
unsigned auth_penalty_delay_ms(unsigned failures);
/*
 * Decodes a SASL response (base64, RFC 4648, padding required, no NUL) of N
 * bytes into OUT; its length, or -1.  Shared by the IMAP and SMTP servers.
 */
long auth_b64_decode(const char *in, size_t n, unsigned char *out, size_t outlen);

#endif

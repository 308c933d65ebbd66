/*
 * Delivering queued messages (mail-submit-relay flush): local recipients
 * into their INBOX through lib/maildir (UIDs assigned the dovecot way),
 * remote ones to the provider ([relay] host:port) with libcurl's SMTP
 * client, failures reported to the sender by a DSN (lib/dsn).
 *
 * libcurl gives one result per transfer, so the recipient that failed is
 * found from the protocol trace (the last "RCPT TO" libcurl sent before
 * the failing reply): a transaction either delivers to every recipient it
 * carries, or identifies one recipient (RCPT refused) or all of them
 * (MAIL/DATA refused, connection or TLS failure).  The runner then sends
 * again to the ones still untried, one transaction per round, so every
 * recipient ends with its own result and none gets the message twice.
 *
 * Results per recipient: 2xx sent; 5xx failed (DSN); 4xx, connection,
 * TLS or certificate failures and a 535 from the provider (our own
 * credentials: postfix defers too) leave it pending, and the message is
 * retried after queue_backoff(attempts); after QUEUE_GIVE_UP seconds it
 * fails with 4.4.7.
 *
 * TLS to the provider is always required: STARTTLS (CURLUSESSL_ALL) for
 * tls = starttls, implicit for smtps; the certificate and host name are
 * verified against ca_file or the system store.
 */
#ifndef MK_RELAY_H
#define MK_RELAY_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct config;
struct auth;

/*
 * Is ADDR (whose domain is the config's domain) a local user?  Known
 * means: the home directory exists, or the auth backend knows the name
 * (passwd_file entry; LDAP entry in user_group).  Returns 1 and the name
 * to deliver to (lower-cased address, or the passwd file's spelling) in
 * CANON, 0 if unknown, -1 if the directory cannot be asked (err set).
 * AUTH may be NULL (then only homes and the passwd file are consulted).
 */
int relay_local_known(const struct config *cfg, struct auth *auth, const char *addr,
		      char *canon, size_t canonlen, char *err, size_t errlen);

/*
 * Delivers a message into USER's INBOX (<home>/mail, created like on a
 * first login if missing): from FD (read from offset 0 to EOF) when BUF
 * is NULL, else BUF[0..len).  Durable on return; *uid gets the new UID.
 * 0 or a sysexits code with err.
 */
int relay_local_deliver(const struct config *cfg, const char *user, int fd,
			const char *buf, size_t len, uint32_t *uid, char *err, size_t errlen);

struct relay_opts {
	const struct config *cfg;
	const char *password;		/* provider password (config_read_secret), or NULL */
	const char *only_id;		/* flush just this message, or NULL for all */
	int force;			/* ignore next-retry times */
	time_t now;			/* 0: time(NULL) */
};

struct relay_stats {
	unsigned messages;		/* messages looked at */
	unsigned sent;			/* recipients delivered (local or remote) */
	unsigned deferred;		/* recipients left for a later run */
	unsigned bounced;		/* recipients reported by a DSN */
	unsigned busy;			/* messages locked by another runner */
};

/*
 * Runs the queue once.  Returns 0 if every message looked at was handled
 * (sent, bounced or rescheduled), EX_TEMPFAIL if some delivery was
 * deferred, or another sysexits code on a local error (err set).
 */
int relay_flush(const struct relay_opts *o, struct relay_stats *st, char *err, size_t errlen);

/*
 * The file in the queue directory whose bytes 0 .. RELAY_RUNNERS-1 the
 * background runners hold, one each: at most that many run at once, each
 * with its own provider connection (postfix opens up to 20 per
 * destination).  They share the queue through the per-message locks: a
 * message another runner holds is skipped.
 */
#define RELAY_RUNNER_LOCK "runner.lock"
#define RELAY_RUNNERS 3

/*
 * Takes a free runner slot (an open file description lock, without
 * waiting): its descriptor, or -1 if every slot is held (or the file
 * cannot be opened).  The lock belongs to the open file, so it survives
 * fork(): a server takes it and hands it to the child that runs the queue.
 */
int relay_runner_trylock(const struct config *cfg);

/* How long the background runner waits for more before it lets go (postfix's
 * smtp_connection_cache_time_limit is 2 s). */
#define RELAY_LINGER_MS 2000

/*
 * The delivery started after a 250 (mail-submit-relay serve): runs every
 * due message like relay_flush() (o->only_id is ignored), then again for
 * the messages queued meanwhile, over the same provider connection, until
 * nothing new arrives for RELAY_LINGER_MS (inotify on the queue
 * directory); holds LOCK_FD (from relay_runner_trylock(), closed
 * here) meanwhile, so that sessions start no more runners than there are
 * slots.  Returns like
 * relay_flush().
 */
int relay_run_background(const struct relay_opts *o, int lock_fd, struct relay_stats *st,
			 char *err, size_t errlen);

/*
 * Capabilities the provider announced in its last EHLO, as cached by the
 * runner in queue/provider: *smtputf8 (0/1) and *size (0 = none).
 * Returns 0, or -1 if nothing is cached yet.
 */
int relay_provider_caps(const struct config *cfg, int *smtputf8, long long *size);
#endif

/*
 * The IMAP server session (mail-serve-imap): one process serves one client
 * connection, RFC 3501 plus the extensions listed in imapd_capability().
 *
 * lib/imapd.c      the session: I/O loop, parser glue, literals, states,
 *                  COMPRESS, ID, ENABLE, IDLE
 * lib/imapd-login.c before login (mail-serve-imap): implicit TLS, STARTTLS,
 *                  LOGIN, AUTHENTICATE, then the handoff to the session
 *                  binary (TLS: this process stays as the TLS proxy)
 * lib/imapd-handoff.c what the pre-login process hands the session binary
 * lib/imapd-mbox.c mailbox commands: LIST, LSUB, STATUS, CREATE, DELETE,
 *                  RENAME, (UN)SUBSCRIBE, SELECT/EXAMINE, APPEND, NAMESPACE
 * lib/imapd-select.c the selected mailbox: sequence numbers, untagged
 *                  updates, modseqs, \Recent, CLOSE, UNSELECT, CHECK, EXPUNGE
 * lib/imapd-msg.c  message sets, STORE, COPY, MOVE
 * lib/imapd-fetch.c FETCH;  lib/imapd-search.c SEARCH
 *                  (shared internals: lib/imapd-internal.h)
 *
 * Memory per session: the input buffer (IMAPD_INBUF), the parser (bounded
 * by [imap] max_line), the connection buffers (see conn.h), and for the
 * selected mailbox one struct imapd_msg (16 bytes) per message plus the
 * store's index of the folder.  Literals of APPEND are streamed to disk.
 */
#ifndef MK_IMAPD_H
#define MK_IMAPD_H
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "imap-parser.h"
#include "imap-seqset.h"
#include "imap-string.h"

struct auth;
struct conn;
struct maildir_folder;
struct ssl_ctx_st;	/* OpenSSL's SSL_CTX */

#define IMAPD_INBUF 65536
#define IMAPD_PREAUTH_MAX_LINE 8192	/* command text before login */
#define IMAPD_MAX_AUTH_FAILURES 3	/* then BYE */

enum imapd_state { IMAPD_NOT_AUTH, IMAPD_AUTH, IMAPD_SELECTED, IMAPD_LOGOUT };

/*
 * ENABLEd extensions (RFC 5161).  CONDSTORE is also switched on by the
 * commands RFC 7162 §3.1 calls "CONDSTORE enabling" (SELECT (CONDSTORE),
 * FETCH MODSEQ/CHANGEDSINCE, STORE UNCHANGEDSINCE, SEARCH MODSEQ, STATUS
 * HIGHESTMODSEQ); QRESYNC implies CONDSTORE.  Once on, every untagged
 * FETCH carries MODSEQ; with QRESYNC expunges are reported as VANISHED.
 */
enum { IMAPD_EN_CONDSTORE = 1 << 0, IMAPD_EN_QRESYNC = 1 << 1, IMAPD_EN_UTF8 = 1 << 2 };

/* What mail-serve-imap passes in. */
struct imapd_opts {
	const struct config *cfg;
	struct auth *auth;		/* owned by the caller */
	struct ssl_ctx_st *tls_ctx;	/* NULL: no TLS configured */
	int implicit_tls;		/* --tls: handshake before the greeting */
	int allow_plaintext;		/* --allow-plaintext (effective on loopback only) */
	const char *home;		/* --home: preauthenticated session (tests, local use) */
	const char *session_path;	/* exec'd after login; NULL: serve in this process */
};

/*
 * One message of the selected mailbox as the client knows it: 16 bytes
 * (an idle session's view of 100,000 messages is 1.6 MB).  Modseqs are
 * microsecond clock values (modseq.h), far below 2^54 for centuries.
 */
struct imapd_msg {
	uint32_t uid;
	uint32_t keywords;
	uint64_t modseq : 54;
	uint64_t flags : 10;		/* enum maildir_flag, IMAPD_FLAG_RECENT, MSG_GONE */
};
#define IMAPD_FLAG_RECENT (1 << 8)

/* A streamed APPEND literal waiting for its command to end. */
struct imapd_staged {
	int fd;				/* temp file with the message */
	char path[4096];
	uint64_t size;
};

struct imapd {
	const struct imapd_opts *opts;
	const struct config *cfg;
	struct conn *conn;
	struct imap_parser *parser;
	enum imapd_state state;
	char peer[64];
	int plaintext_ok;		/* auth allowed without TLS (loopback + flag) */
	int auth_failures;
	/* STARTTLS, LOGIN, AUTHENTICATE (lib/imapd-login.c); NULL in the session binary */
	void (*login_cmd)(struct imapd *s, const struct imap_command *cmd);
	int handed_off;			/* the session binary serves the client now */
	unsigned long long bytes_in, bytes_out;	/* before the handoff, for the log */
	unsigned enabled;
	char user[321];
	char home[4096];
	char maildir[4096];		/* <home>/mail */

	/* input: bytes read from the connection, not yet fed to the parser */
	char inbuf[IMAPD_INBUF];
	size_t inoff, inlen;

	/* streamed literals of the command being parsed (APPEND) */
	struct imapd_staged *staged;
	size_t nstaged;

	/* the selected mailbox (state IMAPD_SELECTED) */
	struct imapd_selected *sel;
	/*
	 * The folder last closed, kept for a SELECT of the same folder: its
	 * scan, modseq store and watch (no rereading of the modseq log, which
	 * holds up to MODSEQ_VANISHED_KEEP expunges).  No view.
	 */
	struct imapd_selected *parked;

	struct imap_string out;		/* scratch for building responses */
};

/*
 * Runs a session on FD_IN/FD_OUT until LOGOUT or disconnect; an exit code.
 * With opts->session_path set, a successful login hands the connection to
 * that program (lib/imapd-login.c).
 */
int imapd_session(const struct imapd_opts *opts, int fd_in, int fd_out, const char *peer);

/*
 * Building blocks of the two entry points (imapd_session() before login,
 * imapd_handoff_serve() in the session binary):
 * imapd_new  a session in state IMAPD_NOT_AUTH (OPTS must outlive it);
 * imapd_run  the command loop until LOGOUT or disconnect, then the
 *            "disconnect" log line; an exit code;
 * imapd_input_push  bytes already read from the client, parsed first
 *            (0, or -1 if they do not fit IMAPD_INBUF);
 * imapd_set_home  the user's home and <home>/mail (0, -1 too long);
 * imapd_enter_home  the same, and prepares the mail directory at login
 *            (created if missing, [mailbox] folders, stale APPEND files).
 */
struct imapd *imapd_new(const struct imapd_opts *opts, int fd_in, int fd_out, const char *peer);
int imapd_run(struct imapd *s);
void imapd_free(struct imapd *s);	/* NULL allowed */
int imapd_input_push(struct imapd *s, const char *buf, size_t len);
int imapd_set_home(struct imapd *s, const char *home);
int imapd_enter_home(struct imapd *s, const char *home);

/* The CAPABILITY list for the session's current state (no leading "* "). */
const char *imapd_capability(const struct imapd *s);

/* Response helpers: each writes one CRLF-terminated line. */
void imapd_untagged(struct imapd *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void imapd_tagged(struct imapd *s, const char *tag, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Reads one raw line from the client (AUTHENTICATE responses, IDLE's DONE)
 * into *line (valid until the next read); length, or < 0 (conn.h codes).
 */
long imapd_read_line(struct imapd *s, char **line, size_t max);

/* ---- mailbox commands (lib/imapd-mbox.c) ---- */
typedef void imapd_cmd_fn(struct imapd *s, const struct imap_command *cmd);
imapd_cmd_fn imapd_cmd_list, imapd_cmd_lsub, imapd_cmd_status, imapd_cmd_create,
	imapd_cmd_delete, imapd_cmd_rename, imapd_cmd_subscribe, imapd_cmd_unsubscribe,
	imapd_cmd_select, imapd_cmd_examine, imapd_cmd_append, imapd_cmd_namespace;

/*
 * Resolves a mailbox argument (mUTF-7, or UTF-8 after ENABLE UTF8=ACCEPT)
 * to its storage name and directory.  0, or -1 after answering
 * "<tag> NO/BAD ..." itself.
 */
int imapd_mailbox_path(struct imapd *s, const char *tag, const struct imap_arg *arg,
		       char *name, size_t namelen, char *dir, size_t dirlen);

/* UIDVALIDITY from the first line of DIR/dovecot-uidlist ("3 V123 N4 ..."), or 0. */
uint32_t imapd_read_uidvalidity(const char *dir);

/* Creates (and subscribes) the [mailbox] folders of the config that are missing. */
void imapd_autocreate(struct imapd *s);

/* ---- the selected mailbox (lib/imapd-select.c, -msg.c, -fetch.c, -search.c) ---- */
imapd_cmd_fn imapd_cmd_fetch, imapd_cmd_store, imapd_cmd_copy, imapd_cmd_move,
	imapd_cmd_expunge, imapd_cmd_search, imapd_cmd_close, imapd_cmd_unselect,
	imapd_cmd_check;

/* Frees the folder kept by imapd_select_close() (DELETE, RENAME, session end). */
void imapd_select_forget(struct imapd *s);

/* SELECT/EXAMINE parameters (RFC 7162 §3.1.8, §3.2.5). */
struct imapd_select_params {
	int condstore;			/* (CONDSTORE) */
	int qresync;			/* (QRESYNC (uidvalidity modseq [known-uids ...])) */
	uint32_t uidvalidity;
	uint64_t modseq;
	int has_known;
	struct imap_seqset known;	/* known-uids; owned by the caller */
};

/*
 * Opens DIR as the selected mailbox (read-only for EXAMINE) and writes the
 * untagged SELECT responses, HIGHESTMODSEQ included, and with QRESYNC the
 * VANISHED (EARLIER) and FETCH responses for what changed since the
 * client's modseq.  P may be NULL.  0, or -1 after answering NO.
 *
 * Modseqs come from the folder's store (modseq.h), shared with every other
 * process.  A session logs its own changes (STORE, APPEND, EXPUNGE) under
 * the store's lock in the same step as it makes them.  A sync of the
 * selected mailbox reads the log and rescans the folder without the lock;
 * only when the two disagree - a change by dovecot, an MUA or mail-pull
 * that nobody logged yet - does it take the lock, rescan and record what
 * changed, so such changes get modseqs too.  Closing keeps the folder's
 * scan and store for a SELECT of the same folder (imapd_select_forget()).
 */
int imapd_select_open(struct imapd *s, const char *tag, const char *name, const char *dir,
		      int readonly, const struct imapd_select_params *p);
void imapd_select_close(struct imapd *s, int expunge);

/*
 * Brings the selected mailbox up to date with the disk and reports the
 * changes: EXISTS/RECENT for new messages, FETCH FLAGS for flag changes,
 * and EXPUNGE only when ALLOW_EXPUNGE (not during FETCH/STORE/SEARCH by
 * sequence number, RFC 3501 §7.4.1).  Called before each tagged OK.
 */
void imapd_select_sync(struct imapd *s, int allow_expunge);

/* HIGHESTMODSEQ of the selected mailbox as last synced. */
uint64_t imapd_select_highestmodseq(struct imapd *s);

/*
 * HIGHESTMODSEQ of the folder at DIR (STATUS): syncs its modseq store with
 * the folder F (already synced by the caller).  0 on error (logged).
 */
uint64_t imapd_folder_highestmodseq(const char *dir, struct maildir_folder *f);

/* Marks a folder created through IMAP: all its arrivals are \Recent until claimed. */
void imapd_recent_init(const char *dir);

/* Storage name of the selected mailbox. */
const char *imapd_select_name(struct imapd *s);

/* The inotify descriptor watching the selected folder for IDLE, or -1. */
int imapd_select_watch_fd(struct imapd *s);
#endif

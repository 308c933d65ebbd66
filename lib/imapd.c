/*
 * IMAP session: the read-parse-dispatch loop and connection-level
 * commands.  Authentication and TLS live in lib/imapd-login.c, so that the
 * session binary (mail-imap-session) links neither OpenSSL nor libldap.
 * See imapd.h for the split between files.
 */
#include "imapd.h"
#include "imapd-internal.h"

#include "conn.h"
#include "fsutil.h"
#include "log.h"
#include "mailbox-name.h"
#include "maildir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

/* ---- output ----------------------------------------------------------- */

void imapd_untagged(struct imapd *s, const char *fmt, ...)
{
	va_list ap;

	conn_puts(s->conn, "* ");
	va_start(ap, fmt);
	conn_vprintf(s->conn, fmt, ap);
	va_end(ap);
	conn_puts(s->conn, "\r\n");
}

void imapd_tagged(struct imapd *s, const char *tag, const char *fmt, ...)
{
	va_list ap;

	/* durable before acknowledged: the command's deferred fsyncs happen here */
	if (imapd_select_flush(s) != 0 && strncmp(fmt, "OK", 2) == 0) {
		conn_printf(s->conn, "%s NO [SERVERBUG] The change may not survive a crash. "
			    "The administrator has been told.\r\n", tag);
		return;
	}
	conn_puts(s->conn, tag);
	conn_puts(s->conn, " ");
	va_start(ap, fmt);
	conn_vprintf(s->conn, fmt, ap);
	va_end(ap);
	conn_puts(s->conn, "\r\n");
}

const char *imapd_capability(const struct imapd *s)
{
	static char buf[1024];
	int tls = conn_is_tls(s->conn);
	size_t n;

	n = (size_t)snprintf(buf, sizeof(buf), "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE");
	if (s->state == IMAPD_NOT_AUTH) {
		if (!tls && s->opts->tls_ctx != NULL)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, " STARTTLS");
		if (tls || s->plaintext_ok)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, " AUTH=PLAIN AUTH=LOGIN");
		else
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, " LOGINDISABLED");
	} else {
		n += (size_t)snprintf(buf + n, sizeof(buf) - n,
				      " NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN SPECIAL-USE"
				      " LIST-EXTENDED LIST-STATUS ESEARCH CONDSTORE QRESYNC"
				      " APPENDLIMIT=%lld",
				      s->cfg->imap.max_literal);
		if (!conn_is_deflate(s->conn))
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, " COMPRESS=DEFLATE");
	}
	(void)n;
	return buf;
}

/* ---- input ------------------------------------------------------------ */

/* Reads more bytes into inbuf; > 0, or a conn.h code. */
static long fill(struct imapd *s)
{
	ssize_t r;

	if (s->inoff > 0) {
		memmove(s->inbuf, s->inbuf + s->inoff, s->inlen - s->inoff);
		s->inlen -= s->inoff;
		s->inoff = 0;
	}
	if (s->inlen == sizeof(s->inbuf))
		return CONN_TOO_LONG;
	r = conn_read(s->conn, s->inbuf + s->inlen, sizeof(s->inbuf) - s->inlen);
	if (r > 0)
		s->inlen += (size_t)r;
	return r;
}

long imapd_read_line(struct imapd *s, char **line, size_t max)
{
	for (;;) {
		char *start = s->inbuf + s->inoff;
		size_t avail = s->inlen - s->inoff;
		char *nl = memchr(start, '\n', avail);
		long r;

		if (nl != NULL) {
			size_t len = (size_t)(nl - start);
			s->inoff += len + 1;
			if (len > max)
				return CONN_TOO_LONG;
			if (len > 0 && start[len - 1] == '\r')
				len--;
			start[len] = '\0';
			*line = start;
			return (long)len;
		}
		if (avail > max) {
			s->inoff = s->inlen;	/* drop an overlong line */
			return CONN_TOO_LONG;
		}
		r = fill(s);
		if (r < 0)
			return r;
	}
}

/* ---- streamed APPEND literals --------------------------------------- */

static void staged_clear(struct imapd *s)
{
	for (size_t i = 0; i < s->nstaged; i++) {
		close(s->staged[i].fd);
		unlink(s->staged[i].path);
	}
	free(s->staged);
	s->staged = NULL;
	s->nstaged = 0;
}

/*
 * Copies the next SIZE bytes of input into a temp file under the user's
 * ~/mail/tmp (same file system as the folders).  On a write error the bytes
 * are still consumed so the protocol stays in step; returns 0, -1 for a
 * local error (the command will fail), or a conn.h code when the client
 * went away.
 */
static long stage_literal(struct imapd *s, uint64_t size)
{
	struct imapd_staged st = { .fd = -1, .size = size };
	static unsigned seq;
	int local_err = 0;
	uint64_t left = size;
	void *grown;

	if ((size_t)snprintf(st.path, sizeof(st.path), "%.4000s/tmp/mailkeep-append.%ld.%u",
			     s->maildir, (long)getpid(), seq++) >= sizeof(st.path))
		st.fd = -1;
	else
		st.fd = open(st.path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (st.fd < 0) {
		log_warn("append_stage", "error=%s", log_q(strerror(errno)));
		local_err = 1;
	}
	while (left > 0) {
		size_t avail = s->inlen - s->inoff, n;
		if (avail == 0) {
			long r;
			s->inoff = s->inlen = 0;
			r = conn_read(s->conn, s->inbuf, sizeof(s->inbuf));
			if (r < 0) {
				if (st.fd >= 0) {
					close(st.fd);
					unlink(st.path);
				}
				return r;
			}
			s->inlen = (size_t)r;
			continue;
		}
		n = avail < left ? avail : (size_t)left;
		if (!local_err) {
			size_t off = 0;
			while (off < n) {
				ssize_t w = write(st.fd, s->inbuf + s->inoff + off, n - off);
				if (w < 0 && errno == EINTR)
					continue;
				if (w < 0) {
					log_warn("append_stage", "error=%s", log_q(strerror(errno)));
					local_err = 1;
					break;
				}
				off += (size_t)w;
			}
		}
		s->inoff += n;
		left -= n;
	}
	if (local_err) {
		if (st.fd >= 0) {
			close(st.fd);
			unlink(st.path);
		}
		st.fd = -1;
	}
	grown = realloc(s->staged, (s->nstaged + 1) * sizeof(*s->staged));
	if (grown == NULL) {
		if (st.fd >= 0) {
			close(st.fd);
			unlink(st.path);
		}
		return -1;
	}
	s->staged = grown;
	s->staged[s->nstaged++] = st;
	return local_err ? -1 : 0;
}

/* ---- authentication --------------------------------------------------- */

/*
 * Removes APPEND staging files a killed session left in ~/mail/tmp (they
 * were never acknowledged).  Only ours, and only when older than an hour:
 * a concurrent session may be streaming one right now.
 */
static void clean_stale_appends(const char *maildir)
{
	char dir[4200], path[4500];
	struct dirent *e;
	struct stat st;
	time_t now = time(NULL);
	DIR *d;

	snprintf(dir, sizeof(dir), "%.4100s/tmp", maildir);
	d = opendir(dir);
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "mailkeep-append.", 16) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && now - st.st_mtime > 3600)
			unlink(path);
	}
	closedir(d);
}

int imapd_set_home(struct imapd *s, const char *home)
{
	snprintf(s->home, sizeof(s->home), "%s", home);
	if ((size_t)snprintf(s->maildir, sizeof(s->maildir), "%s/mail", home) >= sizeof(s->maildir))
		return -1;
	return 0;
}

int imapd_enter_home(struct imapd *s, const char *home)
{
	struct stat st;
	char err[512];

	if (imapd_set_home(s, home) != 0)
		return -1;
	if (stat(s->maildir, &st) != 0) {
		/* first login: create <mail_dir>/<account>/<user>/mail as dovecot would */
		char acct[4096];
		fsutil_dirname(s->home, acct, sizeof(acct));
		if (mkdir(acct, 0700) != 0 && errno != EEXIST)
			goto fail;
		if (mkdir(s->home, 0700) != 0 && errno != EEXIST)
			goto fail;
		if (mkdir(s->maildir, 0700) != 0 && errno != EEXIST)
			goto fail;
	}
	if (maildir_folder_init(s->maildir, err, sizeof(err)) != 0) {
		log_err("home", "user=%s error=%s", log_q(s->user), log_q(err));
		return -1;
	}
	imapd_autocreate(s);
	clean_stale_appends(s->maildir);
	return 0;
fail:
	log_err("home", "user=%s dir=%s error=%s", log_q(s->user), log_q(s->maildir),
		log_q(strerror(errno)));
	return -1;
}

/* ---- connection-level commands --------------------------------------- */

static void cmd_capability(struct imapd *s, const struct imap_command *cmd)
{
	imapd_untagged(s, "CAPABILITY %s", imapd_capability(s));
	imapd_tagged(s, cmd->tag, "OK Capability completed.");
}

static void cmd_noop(struct imapd *s, const struct imap_command *cmd)
{
	if (s->state == IMAPD_SELECTED)
		imapd_select_sync(s, 1);
	imapd_tagged(s, cmd->tag, "OK NOOP completed.");
}

static void cmd_logout(struct imapd *s, const struct imap_command *cmd)
{
	imapd_untagged(s, "BYE Logging out");
	imapd_tagged(s, cmd->tag, "OK Logout completed.");
	s->state = IMAPD_LOGOUT;
}

static void cmd_id(struct imapd *s, const struct imap_command *cmd)
{
	char what[512] = "";
	size_t n = 0;

	if (cmd->count != 1 || (cmd->args[0].type != IMAP_ARG_LIST &&
				cmd->args[0].type != IMAP_ARG_NIL)) {
		imapd_tagged(s, cmd->tag, "BAD ID needs a parameter list or NIL.");
		return;
	}
	if (cmd->args[0].type == IMAP_ARG_LIST) {
		const struct imap_arg *l = cmd->args[0].list;
		if (cmd->args[0].count % 2 != 0 || cmd->args[0].count > 60) {
			imapd_tagged(s, cmd->tag, "BAD Invalid ID parameter list.");
			return;
		}
		for (size_t i = 0; i + 1 < cmd->args[0].count; i += 2) {
			const char *k = imap_arg_astring(&l[i]), *v = imap_arg_astring(&l[i + 1]);
			if (k == NULL) {
				imapd_tagged(s, cmd->tag, "BAD Invalid ID parameter list.");
				return;
			}
			if ((!strcasecmp(k, "name") || !strcasecmp(k, "version")) && v != NULL &&
			    n < sizeof(what) - 1)
				n += (size_t)snprintf(what + n, sizeof(what) - n, "%s%s", n ? " " : "",
						      v);
		}
	}
	if (what[0] != '\0')
		log_info("client_id", "peer=%s client=%s", s->peer, log_q(what));
	imapd_untagged(s, "ID (\"name\" \"mailkeep\" \"vendor\" \"mailkeep\")");
	imapd_tagged(s, cmd->tag, "OK ID completed.");
}

static void cmd_enable(struct imapd *s, const struct imap_command *cmd)
{
	struct imap_string *o = &s->out;

	if (cmd->count == 0) {
		imapd_tagged(s, cmd->tag, "BAD ENABLE needs capability names.");
		return;
	}
	imap_string_clear(o);
	for (size_t i = 0; i < cmd->count; i++) {
		const struct imap_arg *a = &cmd->args[i];
		unsigned bit = 0;
		if (a->type != IMAP_ARG_ATOM) {
			imapd_tagged(s, cmd->tag, "BAD Invalid ENABLE arguments.");
			return;
		}
		if (imap_arg_atom_equals(a, "CONDSTORE"))
			bit = IMAPD_EN_CONDSTORE;
		else if (imap_arg_atom_equals(a, "QRESYNC"))
			bit = IMAPD_EN_QRESYNC;
		/* RFC 5161: unknown names are ignored; list only what this command enabled */
		if (bit == 0 || (s->enabled & bit))
			continue;
		s->enabled |= bit;
		imap_string_addf(o, " %s", bit == IMAPD_EN_QRESYNC ? "QRESYNC" : "CONDSTORE");
	}
	/* QRESYNC implies CONDSTORE (RFC 7162 §3.2.3) */
	if ((s->enabled & IMAPD_EN_QRESYNC) && !(s->enabled & IMAPD_EN_CONDSTORE)) {
		s->enabled |= IMAPD_EN_CONDSTORE;
		imap_string_adds(o, " CONDSTORE");
	}
	imapd_untagged(s, "ENABLED%s", o->len ? o->buf : "");
	imapd_tagged(s, cmd->tag, "OK Enabled.");
}

static void cmd_compress(struct imapd *s, const struct imap_command *cmd)
{
	if (cmd->count != 1 || !imap_arg_atom_equals(&cmd->args[0], "DEFLATE")) {
		imapd_tagged(s, cmd->tag, "NO Unknown compression mechanism.");
		return;
	}
	if (conn_is_deflate(s->conn)) {
		imapd_tagged(s, cmd->tag, "NO [COMPRESSIONACTIVE] Compression already active.");
		return;
	}
	imapd_tagged(s, cmd->tag, "OK DEFLATE active.");
	if (conn_start_deflate(s->conn) != 0) {
		log_err("compress", "peer=%s", s->peer);
		s->state = IMAPD_LOGOUT;
		return;
	}
	/* bytes the client sent after the command are compressed: hand them back */
	if (s->inoff < s->inlen) {
		log_warn("compress", "peer=%s detail=pipelined_after_compress", s->peer);
		s->state = IMAPD_LOGOUT;
	}
}

static void cmd_idle(struct imapd *s, const struct imap_command *cmd)
{
	int wfd = s->state == IMAPD_SELECTED ? imapd_select_watch_fd(s) : -1;
	time_t start = time(NULL);

	if (cmd->count != 0) {
		imapd_tagged(s, cmd->tag, "BAD IDLE takes no arguments.");
		return;
	}
	if (s->state == IMAPD_SELECTED)
		imapd_select_sync(s, 1);
	malloc_trim(0);		/* idle for minutes: give back what the heap does not use */
	conn_puts(s->conn, "+ idling\r\n");
	conn_flush(s->conn);
	for (;;) {
		char *line;
		long n;
		/* poll the folder every 30 s even with inotify (NFS, missed events),
		 * and keep the connection alive through NAT with an untagged OK */
		int w = s->inoff < s->inlen ? 1 : conn_wait(s->conn, wfd, 30000);
		if (w < 0) {
			s->state = IMAPD_LOGOUT;
			return;
		}
		if (w == 1) {
			n = imapd_read_line(s, &line, 64);
			if (n < 0) {
				s->state = IMAPD_LOGOUT;
				return;
			}
			if (strcasecmp(line, "DONE") == 0)
				break;
			imapd_tagged(s, cmd->tag, "BAD Expected DONE.");
			return;
		}
		if (w == 2) {
			char drain[4096];
			while (read(wfd, drain, sizeof(drain)) > 0)
				;
			usleep(20000);	/* let a burst of renames settle */
		}
		if (s->state == IMAPD_SELECTED)
			imapd_select_sync(s, 1);
		if (w == 0) {
			if (time(NULL) - start > s->cfg->imap.idle_timeout) {
				imapd_untagged(s, "BYE Disconnected for inactivity.");
				s->state = IMAPD_LOGOUT;
				return;
			}
			imapd_untagged(s, "OK Still here");
		}
		if (conn_flush(s->conn) != 0) {
			s->state = IMAPD_LOGOUT;
			return;
		}
	}
	imapd_tagged(s, cmd->tag, "OK Idle completed.");
}

/* ---- dispatch --------------------------------------------------------- */

enum { ANY = 0, NOTAUTH = 1, AUTHED = 2, SELECTED = 3 };

static const struct command_def {
	const char *name;
	int state;		/* ANY, NOTAUTH (only before login), AUTHED (auth or selected), SELECTED */
	int uid_ok;		/* may follow "UID" */
	imapd_cmd_fn *fn;
} commands[] = {
	{ "CAPABILITY", ANY, 0, cmd_capability },
	{ "NOOP", ANY, 0, cmd_noop },
	{ "LOGOUT", ANY, 0, cmd_logout },
	{ "ID", ANY, 0, cmd_id },
	/* before login only: s->login_cmd (lib/imapd-login.c) */
	{ "STARTTLS", NOTAUTH, 0, NULL },
	{ "LOGIN", NOTAUTH, 0, NULL },
	{ "AUTHENTICATE", NOTAUTH, 0, NULL },
	{ "ENABLE", AUTHED, 0, cmd_enable },
	{ "COMPRESS", AUTHED, 0, cmd_compress },
	{ "IDLE", AUTHED, 0, cmd_idle },
	{ "NAMESPACE", AUTHED, 0, imapd_cmd_namespace },
	{ "LIST", AUTHED, 0, imapd_cmd_list },
	{ "LSUB", AUTHED, 0, imapd_cmd_lsub },
	{ "STATUS", AUTHED, 0, imapd_cmd_status },
	{ "CREATE", AUTHED, 0, imapd_cmd_create },
	{ "DELETE", AUTHED, 0, imapd_cmd_delete },
	{ "RENAME", AUTHED, 0, imapd_cmd_rename },
	{ "SUBSCRIBE", AUTHED, 0, imapd_cmd_subscribe },
	{ "UNSUBSCRIBE", AUTHED, 0, imapd_cmd_unsubscribe },
	{ "SELECT", AUTHED, 0, imapd_cmd_select },
	{ "EXAMINE", AUTHED, 0, imapd_cmd_examine },
	{ "APPEND", AUTHED, 0, imapd_cmd_append },
	{ "CHECK", SELECTED, 0, imapd_cmd_check },
	{ "CLOSE", SELECTED, 0, imapd_cmd_close },
	{ "UNSELECT", SELECTED, 0, imapd_cmd_unselect },
	{ "EXPUNGE", SELECTED, 1, imapd_cmd_expunge },
	{ "SEARCH", SELECTED, 1, imapd_cmd_search },
	{ "FETCH", SELECTED, 1, imapd_cmd_fetch },
	{ "STORE", SELECTED, 1, imapd_cmd_store },
	{ "COPY", SELECTED, 1, imapd_cmd_copy },
	{ "MOVE", SELECTED, 1, imapd_cmd_move },
};

static void dispatch(struct imapd *s, const struct imap_command *cmd)
{
	const struct command_def *d = NULL;

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcasecmp(commands[i].name, cmd->name) == 0) {
			d = &commands[i];
			break;
		}
	if (d == NULL || (cmd->uid && !d->uid_ok)) {
		imapd_tagged(s, cmd->tag, "BAD Unknown command.");
		return;
	}
	if (d->state == NOTAUTH && s->state != IMAPD_NOT_AUTH) {
		imapd_tagged(s, cmd->tag, "BAD Command not valid once logged in.");
		return;
	}
	if (d->state >= AUTHED && s->state == IMAPD_NOT_AUTH) {
		imapd_tagged(s, cmd->tag, "BAD Command not valid before login.");
		return;
	}
	if (d->state == SELECTED && s->state != IMAPD_SELECTED) {
		imapd_tagged(s, cmd->tag, "BAD No mailbox selected.");
		return;
	}
	log_debug("command", "tag=%s name=%s%s", log_q(cmd->tag), cmd->uid ? "UID_" : "",
		  log_q(cmd->name));
	if (d->fn != NULL)
		d->fn(s, cmd);
	else if (s->login_cmd != NULL)
		s->login_cmd(s, cmd);
	else
		imapd_tagged(s, cmd->tag, "BAD Unknown command.");
	/* SELECT frees the folder scan's and the index's scratch memory inside
	 * the heap; hand it back, as a session usually sits idle after it */
	if (d->fn == imapd_cmd_select || d->fn == imapd_cmd_examine)
		malloc_trim(0);
}

static int is_append(struct imapd *s)
{
	int uid = 0;
	const char *name = imap_parser_command_name(s->parser, &uid);

	return s->state != IMAPD_NOT_AUTH && name != NULL && !uid &&
	       strcasecmp(name, "APPEND") == 0;
}

static int parser_setup(struct imapd *s)
{
	struct imap_parser_limits lim = {
		.max_depth = 16,
		.max_args = 4096,
	};

	imap_parser_free(s->parser);
	if (s->state == IMAPD_NOT_AUTH) {
		lim.max_line = IMAPD_PREAUTH_MAX_LINE;
		lim.max_literal = IMAPD_PREAUTH_MAX_LINE;
		lim.max_inline_literal = IMAPD_PREAUTH_MAX_LINE;
	} else {
		lim.max_line = (size_t)s->cfg->imap.max_line;
		lim.max_literal = (uint64_t)s->cfg->imap.max_literal;
		lim.max_inline_literal = (size_t)s->cfg->imap.max_line;
	}
	s->parser = imap_parser_new(&lim);
	return s->parser != NULL ? 0 : -1;
}

static int session_loop(struct imapd *s)
{
	enum imapd_state parsed_in = s->state;

	while (s->state != IMAPD_LOGOUT) {
		size_t used = 0;
		enum imap_parse_result r;

		if (parsed_in != s->state && (parsed_in == IMAPD_NOT_AUTH ||
					      s->state == IMAPD_NOT_AUTH)) {
			/* limits change at login */
			if (parser_setup(s) != 0)
				return EX_OSERR;
		}
		parsed_in = s->state;
		if (conn_flush(s->conn) != 0)
			return 0;
		if (s->inoff == s->inlen) {
			long n;
			conn_set_timeout(s->conn, s->state == IMAPD_NOT_AUTH ?
					 s->cfg->imap.auth_timeout : s->cfg->imap.idle_timeout);
			n = fill(s);
			if (n == CONN_TIMEOUT) {
				imapd_untagged(s, "BYE Disconnected for inactivity.");
				conn_flush(s->conn);
				return 0;
			}
			if (n < 0)
				return 0;
			conn_set_timeout(s->conn, 300);
		}
		r = imap_parser_feed(s->parser, s->inbuf + s->inoff, s->inlen - s->inoff, &used);
		s->inoff += used;
		switch (r) {
		case IMAP_PARSE_MORE:
			if (s->inoff < s->inlen)
				continue;
			s->inoff = s->inlen = 0;
			{
				long n = fill(s);
				if (n == CONN_TIMEOUT) {
					imapd_untagged(s, "BYE Disconnected for inactivity.");
					conn_flush(s->conn);
					return 0;
				}
				if (n < 0)
					return 0;
			}
			break;
		case IMAP_PARSE_LITERAL: {
			struct imap_literal_info li = imap_parser_literal(s->parser);
			if (is_append(s) && li.size <= (uint64_t)s->cfg->imap.max_literal) {
				long st;
				imap_parser_literal_stream(s->parser);
				if (!li.nonsync) {
					conn_puts(s->conn, "+ OK\r\n");
					conn_flush(s->conn);
				}
				st = stage_literal(s, li.size);
				if (st < -1)	/* client gone */
					return 0;
				if (s->inoff == s->inlen)
					conn_ack_now(s->conn);	/* the CRLF after the literal */
			} else if (li.fits_inline && !li.nonsync) {
				conn_puts(s->conn, "+ OK\r\n");
			}
			/* otherwise the next feed reports "literal too large" */
			break;
		}
		case IMAP_PARSE_ERROR: {
			int fatal = 0;
			const char *msg = imap_parser_error(s->parser, &fatal);
			const char *tag = imap_parser_tag(s->parser);
			char tagcopy[128];
			snprintf(tagcopy, sizeof(tagcopy), "%s", tag ? tag : "*");
			staged_clear(s);
			imapd_tagged(s, tagcopy, "BAD %s", msg);
			if (fatal) {
				imapd_untagged(s, "BYE Too much data.");
				s->state = IMAPD_LOGOUT;
			}
			/* the parser itself skips the rest of the bad line */
			break;
		}
		case IMAP_PARSE_COMMAND:
			dispatch(s, imap_parser_command(s->parser));
			staged_clear(s);
			break;
		}
	}
	conn_flush(s->conn);
	return 0;
}

struct imapd *imapd_new(const struct imapd_opts *opts, int fd_in, int fd_out, const char *peer)
{
	struct imapd *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->opts = opts;
	s->cfg = opts->cfg;
	s->state = IMAPD_NOT_AUTH;
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	imap_string_init(&s->out, 16 << 20);
	s->conn = conn_new(fd_in, fd_out);
	if (s->conn == NULL) {
		free(s);
		return NULL;
	}
	conn_set_timeout(s->conn, s->cfg->imap.auth_timeout);
	return s;
}

int imapd_input_push(struct imapd *s, const char *buf, size_t len)
{
	if (len == 0)
		return 0;
	if (len > sizeof(s->inbuf) - s->inlen)
		return -1;
	memcpy(s->inbuf + s->inlen, buf, len);
	s->inlen += len;
	return 0;
}

int imapd_run(struct imapd *s)
{
	int rc;

	if (s->parser == NULL && parser_setup(s) != 0)
		return EX_OSERR;
	log_debug("connect", "peer=%s tls=%s", s->peer, log_q(conn_tls_desc(s->conn)));
	rc = session_loop(s);
	/* LOGOUT (and a dropped connection) leave the state at IMAPD_LOGOUT with a folder open */
	if (s->sel != NULL)
		imapd_select_close(s, 0);
	imapd_select_forget(s);
	imapd_fetch_cache_reset();
	if (!s->handed_off)
		log_info("disconnect", "peer=%s user=%s in=%llu out=%llu", s->peer,
			 log_q(s->user[0] ? s->user : "-"), s->bytes_in + conn_bytes_in(s->conn),
			 s->bytes_out + conn_bytes_out(s->conn));
	return rc;
}

void imapd_free(struct imapd *s)
{
	if (s == NULL)
		return;
	staged_clear(s);
	imapd_select_forget(s);
	imap_parser_free(s->parser);
	imap_string_free(&s->out);
	conn_free(s->conn);
	explicit_bzero(s->inbuf, sizeof(s->inbuf));
	free(s);
}

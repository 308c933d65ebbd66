/*
 * An IMAP client over struct conn (conn.h), and the pure incremental
 * parser of server responses it is built on.
 *
 * The response parser is fed bytes and answers "need more", "one response
 * complete" or "error"; it never reads from a socket itself, so it is a
 * libFuzzer target (tests/fuzz/fuzz_imap_response.c).  Memory is bounded by
 * struct imap_resp_limits: one line between literals holds at most
 * max_line bytes, one response at most max_resp bytes of lines plus
 * literals kept in memory, literals larger than max_inline go to the sink
 * (struct imap_resp_sink) chunk by chunk and are never held whole; without
 * a sink they are an error.  So a 50 MB FETCH BODY[] costs one chunk.
 *
 * The client: connect (IMAPS or STARTTLS, certificate and host name checked
 * by conn_start_tls_client()), greeting, CAPABILITY, LOGIN or AUTHENTICATE
 * PLAIN, pipelined commands (send several, then read their tagged answers in
 * order), APPEND streaming a file with LITERAL+ when offered.  With debug on,
 * every line sent and received is logged ("imap_send"/"imap_recv" events),
 * credentials replaced by "***".
 *
 * Results: functions return 0 or a sysexits code with a message in err:
 * EX_UNAVAILABLE (69) the server cannot be reached, TLS fails or the
 * connection drops; EX_TEMPFAIL (75) a timeout or a NO that may pass;
 * EX_NOPERM (77) login refused; EX_PROTOCOL (76) the server broke the
 * protocol (a malformed response); EX_CONFIG, EX_OSERR as usual.
 */
#ifndef MK_IMAP_CLIENT_H
#define MK_IMAP_CLIENT_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- response parser ---- */

struct imap_resp_limits {
	size_t max_line;		/* one line between literals; default 1 MB */
	size_t max_resp;		/* lines + in-memory literals of one response; 16 MB */
	size_t max_inline;		/* larger literals go to the sink; 64 KB */
	unsigned long long max_literal;	/* largest literal at all; 2 GB */
	unsigned max_depth;		/* parenthesis nesting; 32 */
	size_t max_tokens;		/* tokens in one response; 1,000,000 */
};

enum imap_tok_type {
	IMAP_TOK_ATOM,		/* atom, number or flag (s/len) */
	IMAP_TOK_STRING,	/* quoted string (unescaped) or literal in memory */
	IMAP_TOK_NIL,
	IMAP_TOK_LIST,		/* "(" ... ")": children are [i+1, end) */
	IMAP_TOK_SUNK,		/* literal of `size` bytes passed to the sink */
};

struct imap_tok {
	enum imap_tok_type type;
	const char *s;		/* not NUL-terminated; NULL for LIST/NIL/SUNK */
	size_t len;
	size_t end;		/* index after this token (after a list's last child) */
	unsigned long long size;	/* SUNK: literal size */
};

enum imap_resp_kind { IMAP_RESP_UNTAGGED, IMAP_RESP_TAGGED, IMAP_RESP_CONTINUE };
enum imap_status { IMAP_ST_NONE, IMAP_ST_OK, IMAP_ST_NO, IMAP_ST_BAD, IMAP_ST_BYE,
	IMAP_ST_PREAUTH };

/*
 * One parsed response.  Strings point into the parser and stay valid until
 * the next imap_resp_feed() or imap_resp_parser_free().
 *   "* 12 FETCH (UID 5 ...)"  -> UNTAGGED, has_num, num 12, name "FETCH", toks
 *   "* LIST (\HasNoChildren) "/" INBOX"  -> name "LIST", toks
 *   "A3 OK [APPENDUID 7 42] done" -> TAGGED, tag "A3", status OK,
 *                                    code "APPENDUID", code_arg "7 42", text "done"
 *   "+ go ahead"              -> CONTINUE, text
 */
struct imap_resp {
	enum imap_resp_kind kind;
	const char *tag;		/* NUL-terminated; "*" or "+" when untagged */
	enum imap_status status;	/* NONE for data responses */
	const char *name;		/* upper-cased keyword ("FETCH", "OK", ...) */
	int has_num;
	uint32_t num;
	const char *code, *code_arg;	/* "[CODE arg]" of a status response, or NULL */
	const char *text;		/* human text of a status response, "" if none */
	struct imap_tok *toks;		/* data after the name (data responses) */
	size_t ntoks;
};

/* Receives literals larger than max_inline, in order, chunk by chunk. */
struct imap_resp_sink {
	/* 0 to accept a literal of SIZE bytes, else an error stops the parse */
	int (*begin)(void *ctx, unsigned long long size);
	int (*data)(void *ctx, const void *buf, size_t len);	/* 0 or error */
	void *ctx;
};

enum { IMAP_PARSE_ERROR = -1, IMAP_PARSE_MORE = 0, IMAP_PARSE_DONE = 1 };

struct imap_resp_parser;

/* lim may be NULL (defaults above); zero fields take their default too. */
struct imap_resp_parser *imap_resp_parser_new(const struct imap_resp_limits *lim);
void imap_resp_parser_free(struct imap_resp_parser *p);
/* The sink used for large literals from now on (NULL: none). */
void imap_resp_parser_set_sink(struct imap_resp_parser *p, const struct imap_resp_sink *sink);

/*
 * Consumes bytes of buf[0..len) and sets *used to how many.  Returns
 * IMAP_PARSE_DONE when a response is complete (then *out points to it and
 * bytes after it are left unused), IMAP_PARSE_MORE when all bytes were
 * used and the response goes on, or IMAP_PARSE_ERROR with a reason from
 * imap_resp_parser_error(); after an error the parser stays failed.
 */
int imap_resp_feed(struct imap_resp_parser *p, const char *buf, size_t len, size_t *used,
		   const struct imap_resp **out);
const char *imap_resp_parser_error(const struct imap_resp_parser *p);

/* Token helpers. */
int imap_tok_is(const struct imap_tok *t, const char *word);	/* atom/string, no case */
/* Number token into *v; 0 or -1 (not a number, or too large). */
int imap_tok_u64(const struct imap_tok *t, unsigned long long *v);
int imap_tok_u32(const struct imap_tok *t, uint32_t *v);
/* Copies an atom/string into buf (NUL-terminated); -1 if it does not fit or is a list. */
int imap_tok_str(const struct imap_tok *t, char *buf, size_t len);
/* Index of the value after the atom KEY among the children of list L, or -1. */
long imap_tok_list_get(const struct imap_tok *toks, size_t l, const char *key);

/* ---- sequence sets ---- */

/* Calls fn(lo, hi, ctx) for each range of "1:3,7,9:*" (* = star); -1 if malformed. */
int imap_uidset_each(const char *set, uint32_t star,
		     int (*fn)(uint32_t lo, uint32_t hi, void *ctx), void *ctx);

/* ---- client ---- */

enum imap_cap {
	IMAP_CAP_IMAP4REV1 = 1 << 0, IMAP_CAP_LITERALPLUS = 1 << 1, IMAP_CAP_UIDPLUS = 1 << 2,
	IMAP_CAP_CONDSTORE = 1 << 3, IMAP_CAP_QRESYNC = 1 << 4, IMAP_CAP_SPECIAL_USE = 1 << 5,
	IMAP_CAP_LIST_STATUS = 1 << 6, IMAP_CAP_LIST_EXTENDED = 1 << 7, IMAP_CAP_ENABLE = 1 << 8,
	IMAP_CAP_STARTTLS = 1 << 9, IMAP_CAP_LOGINDISABLED = 1 << 10, IMAP_CAP_AUTH_PLAIN = 1 << 11,
	IMAP_CAP_SASL_IR = 1 << 12, IMAP_CAP_IDLE = 1 << 13, IMAP_CAP_MOVE = 1 << 14,
	IMAP_CAP_ESEARCH = 1 << 15, IMAP_CAP_LITERALMINUS = 1 << 16, IMAP_CAP_UNSELECT = 1 << 17,
	IMAP_CAP_MULTIAPPEND = 1 << 18,
};

enum imap_tls_mode { IMAP_TLS_IMAPS, IMAP_TLS_STARTTLS, IMAP_TLS_NONE /* tests only */ };

struct imap_client_opts {
	const char *host;
	int port;
	enum imap_tls_mode tls;
	const char *ca_file;	/* NULL: system trust store */
	int timeout;		/* seconds for connect and each read/write; 0: 120 */
	int debug;		/* trace the protocol (credentials masked) */
};

struct imap_client;

/*
 * Connects, starts TLS, reads the greeting and the capabilities.
 * EX_UNAVAILABLE when the host cannot be reached or TLS verification fails
 * (the reason names the certificate problem).
 */
int imap_client_connect(const struct imap_client_opts *o, struct imap_client **out,
			char *err, size_t errlen);
/* Sends LOGOUT if connected (best effort), closes, frees.  NULL allowed. */
void imap_client_free(struct imap_client *cl);

/* AUTHENTICATE PLAIN when offered, else LOGIN.  EX_NOPERM when refused. */
int imap_client_login(struct imap_client *cl, const char *user, const char *password,
		      char *err, size_t errlen);
/*
 * The same in two halves, so that commands meant for the logged-in state
 * can be sent right behind the login and cost no round trip of their own:
 * _send queues the login (it waits only for AUTHENTICATE PLAIN without
 * SASL-IR, which needs a continuation) and writes its tag; _finish reads
 * its answer.  *have_caps is 1 when that answer carried the capabilities
 * (else imap_client_caps() still gives those from before the login).
 */
int imap_client_login_send(struct imap_client *cl, const char *user, const char *password,
			   char tag[16], char *err, size_t errlen);
int imap_client_login_finish(struct imap_client *cl, const char *tag, int *have_caps,
			     char *err, size_t errlen);

unsigned imap_client_caps(const struct imap_client *cl);
/* Asks CAPABILITY again (after a login whose answer did not carry them). */
int imap_client_capability(struct imap_client *cl, char *err, size_t errlen);

/*
 * Sends "<tag> <cmd>\r\n" (buffered; flushed by imap_client_flush() or the
 * next read).  cmd must be a complete command line without literals.  The
 * tag is written to tag[16].
 */
int imap_client_send(struct imap_client *cl, const char *cmd, char tag[16]);
int imap_client_flush(struct imap_client *cl, char *err, size_t errlen);

/*
 * Reads the next response (flushing output first).  *r stays valid until
 * the next read.  EX_UNAVAILABLE on EOF/IO error, EX_TEMPFAIL on timeout,
 * EX_PROTOCOL on a malformed response; an untagged BYE is returned as is.
 */
int imap_client_read(struct imap_client *cl, const struct imap_resp **r,
		     char *err, size_t errlen);

/*
 * For IDLE (sync-watch.c): the socket, to poll() with other descriptors;
 * whether a response can be read without blocking (bytes buffered here or
 * in TLS); and a raw line without a tag ("DONE"), flushed at once.
 */
int imap_client_fd(const struct imap_client *cl);
int imap_client_ready(struct imap_client *cl);
int imap_client_send_line(struct imap_client *cl, const char *line, char *err, size_t errlen);
/* 0 once the session is known gone (EOF, BYE, I/O error, protocol error). */
int imap_client_alive(const struct imap_client *cl);

/* Sink for large literals of the following reads (NULL: none). */
void imap_client_set_sink(struct imap_client *cl, const struct imap_resp_sink *sink);

/*
 * Reads responses until the tagged one for TAG; untagged ones go to cb
 * (may be NULL; a non-zero return from cb is returned after the tagged
 * response is consumed).  Returns 0 when the command ended OK; EX_TEMPFAIL
 * for NO (message in err), EX_PROTOCOL for BAD.  *fin (may be NULL) gets
 * the tagged response (valid until the next read).
 */
typedef int (*imap_resp_cb)(const struct imap_resp *r, void *ctx);
int imap_client_wait(struct imap_client *cl, const char *tag, imap_resp_cb cb, void *ctx,
		     const struct imap_resp **fin, char *err, size_t errlen);
/* Send + wait. */
int imap_client_cmd(struct imap_client *cl, const char *cmd, imap_resp_cb cb, void *ctx,
		    const struct imap_resp **fin, char *err, size_t errlen);

/*
 * Sends APPEND of the file FD (LF or CRLF line ends; sent as CRLF) to
 * MAILBOX (already quoted/encoded as an astring by the caller) with FLAGS
 * ("\Seen $Forwarded", may be "") and DATE as INTERNALDATE.  With
 * LITERAL+ the whole command is written without waiting, so appends
 * pipeline; otherwise this waits for the continuation.  The caller reads
 * the tagged answer (APPENDUID) with imap_client_wait().
 */
int imap_client_append_fd(struct imap_client *cl, const char *mailbox_astring,
			  const char *flags, time_t date, int fd, char tag[16],
			  char *err, size_t errlen);

/*
 * MULTIAPPEND (RFC 3502), for a provider offering it and LITERAL+: one
 * APPEND of several messages, saved by the provider all or none in one
 * transaction (dovecot: one commit instead of one per message).  Each _add
 * sends one message as imap_client_append_fd() does; with tag[0] == '\0'
 * it starts the command first (and sets tag), so a message that cannot be
 * read (EX_IOERR, nothing sent) leaves the command as it was.  _end
 * finishes a started command; the caller then reads the tagged answer,
 * whose APPENDUID names the new UIDs in the order sent.
 */
int imap_client_multiappend_add(struct imap_client *cl, const char *mailbox_astring,
				const char *flags, time_t date, int fd, char tag[16],
				long long *bytes, char *err, size_t errlen);
void imap_client_multiappend_end(struct imap_client *cl);

/* Appends an IMAP astring for S (quoted when needed) to buf; -1 if too long. */
int imap_quote_astring(const char *s, char *buf, size_t len);
#endif

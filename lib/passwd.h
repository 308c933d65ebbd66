/*
 * Dovecot passwd-file users: "user:{SCHEME}hash[:more fields]" lines.
 *
 * Only the first two fields matter here; anything after the second ':'
 * (uid, gid, home, extra fields) is ignored.  Blank lines and lines starting
 * with '#' are skipped.  Schemes (case-insensitive):
 *   {SHA512-CRYPT} $6$   {SHA256-CRYPT} $5$   {BLF-CRYPT} $2a$/$2b$/$2y$
 *   {MD5-CRYPT} $1$ (legacy: accepted, flagged weak)
 *   {CRYPT} anything libcrypt verifies, $y$ yescrypt included
 *   {PLAIN} {CLEAR} {CLEARTEXT}: clear text, accepted but flagged weak
 * An unmarked value is taken as {CRYPT} only when it starts with '$' and
 * libcrypt recognises it (crypt_checksalt); anything else unmarked is a bad
 * line, so a clear-text password is never compared by accident.
 *
 * The parser is a pure function over a buffer (no I/O, no allocation):
 * lines longer than PASSWD_MAX_LINE, users longer than PASSWD_MAX_USER and
 * hashes longer than PASSWD_MAX_HASH are bad lines, which are skipped and
 * reported, never fatal.  Memory is bounded by struct passwd_entry.
 */
#ifndef MK_PASSWD_H
#define MK_PASSWD_H
#include <stddef.h>

#define PASSWD_MAX_LINE 4096
#define PASSWD_MAX_USER 320
#define PASSWD_MAX_HASH 1024
#define PASSWD_MAX_FILE (8 << 20)	/* passwd_read_file() refuses larger files */

enum passwd_scheme { PASSWD_SCHEME_CRYPT, PASSWD_SCHEME_PLAIN };

struct passwd_entry {
	char user[PASSWD_MAX_USER + 1];
	char hash[PASSWD_MAX_HASH + 1];	/* without the {SCHEME} prefix */
	enum passwd_scheme scheme;
	char scheme_name[24];		/* as written, upper-cased; "CRYPT" if unmarked */
	int weak;			/* PLAIN or a legacy crypt method: warn when used */
	int line;			/* 1-based line number in the buffer */
};

enum { PASSWD_END = 0, PASSWD_ENTRY = 1, PASSWD_BAD = -1 };

/*
 * Iterates over BUF[0..LEN): starts at *pos (0 first) and *line (0 first),
 * advances both past one line.  Returns PASSWD_ENTRY with *out filled,
 * PASSWD_BAD with "line N: why" in err (the line is skipped; call again), or
 * PASSWD_END.  Never reads outside the buffer; embedded NUL bytes make a
 * line bad.
 */
int passwd_next(const char *buf, size_t len, size_t *pos, int *line,
		struct passwd_entry *out, char *err, size_t errlen);

/*
 * Finds USER (ASCII case-insensitive, like dovecot's default %Lu) in BUF.
 * Returns 1 with *out, or 0.  The first matching good line wins; bad lines
 * are counted in *nbad (may be NULL) and the first one's message is left in
 * err (may be NULL).
 */
int passwd_find(const char *buf, size_t len, const char *user, struct passwd_entry *out,
		int *nbad, char *err, size_t errlen);

/*
 * Checks PASSWORD (a C string) against E.  Returns 1 on match, 0 on
 * mismatch, -1 if libcrypt cannot use the hash.  The final comparison is
 * constant-time (CRYPTO_memcmp; PLAIN compares SHA-256 digests so the
 * length is not leaked either).  Working buffers are wiped.
 */
int passwd_verify(const struct passwd_entry *e, const char *password);

/*
 * Spends about the time of one passwd_verify() on a yescrypt hash and
 * returns, so "no such user" takes as long as "bad password".
 */
void passwd_verify_dummy(const char *password);

/*
 * Reads PATH into a malloc'd NUL-terminated buffer (*buf, *len).  Refuses
 * non-regular files and files over PASSWD_MAX_FILE.  Returns 0, EX_NOINPUT
 * (cannot open) or EX_CONFIG (err says why).  The caller wipes and frees it
 * with passwd_free_buf().
 */
int passwd_read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen);
void passwd_free_buf(char *buf, size_t len);
#endif

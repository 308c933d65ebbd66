/*
 * Mailbox names: validation, INBOX handling and modified UTF-7.
 *
 * Three spellings of one name exist.  Users type UTF-8 ("Entwürfe"); IMAP
 * carries modified UTF-7 (RFC 3501 §5.1.3, "Entw&APw-rfe"); on disk the
 * folder is the mUTF-7 name with '/' as hierarchy separator below ~/mail,
 * exactly as dovecot stores it with LAYOUT=fs (mailbox_list_utf8 = no).
 * The "storage name" in this API is that mUTF-7 form.
 *
 * Everything here is a pure function over NUL-terminated strings: no I/O,
 * no allocation, bounded by MAILBOX_NAME_MAX.
 */
#ifndef MK_MAILBOX_NAME_H
#define MK_MAILBOX_NAME_H
#include <stddef.h>

#define MAILBOX_NAME_MAX 1024		/* bytes of a whole storage name */
#define MAILBOX_COMPONENT_MAX 255	/* bytes of one '/'-separated component */
#define MAILBOX_SEP '/'

/*
 * Checks a storage (mUTF-7) name.  Returns 0, or EX_DATAERR with a message
 * in err naming what is wrong.  Refused: empty names or components, a
 * leading or trailing '/', "." and "..", components starting with '.' or
 * '~', the Maildir internals "cur", "new", "tmp" as a component, names of
 * dovecot's and our own control files ("dovecot-*", "dovecot.*",
 * "mailkeep-*", "subscriptions", "maildirfolder"), control characters,
 * the LIST wildcards '*' and '%', 8-bit bytes, invalid mUTF-7, and names
 * longer than the limits above.  "INBOX" in any case is accepted.
 */
int mailbox_name_check(const char *name, char *err, size_t errlen);

/* 1 if NAME is "INBOX" in any letter case, else 0. */
int mailbox_name_is_inbox(const char *name);

/*
 * Rewrites in place a leading "inbox" (any case) to "INBOX" when it is the
 * whole name or followed by '/', since INBOX is case-insensitive (RFC 3501
 * §5.1) and its children are addressed through the canonical spelling.
 */
void mailbox_name_normalize(char *name);

/*
 * User input (UTF-8) to a checked, normalized storage name in out.
 * Returns 0, or EX_DATAERR (invalid UTF-8, name refused by
 * mailbox_name_check(), longer than outlen) with err set.
 */
int mailbox_name_from_utf8(const char *utf8, char *out, size_t outlen,
			   char *err, size_t errlen);

/*
 * Conversions.  Return 0, -1 if the input is not valid (strict: mUTF-7
 * must use the shortest form, no empty or adjacent shifted runs, no
 * directly representable characters encoded, zero pad bits, paired
 * surrogates; UTF-8 must not be overlong or encode surrogates), or -2 if
 * the result (with its NUL) does not fit in outlen.
 */
int mutf7_to_utf8(const char *in, char *out, size_t outlen);
int utf8_to_mutf7(const char *in, char *out, size_t outlen);
#endif

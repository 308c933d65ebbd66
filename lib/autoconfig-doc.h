/*
 * Reading clientConfig documents (Thunderbird autoconfig, ISPDB format)
 * that someone else served: ours, to check them, or a provider's, to turn
 * them into mailkeep.conf lines.
 *
 * Parsing uses libxml2 without network access, DTD loading or entity
 * expansion, on at most AUTOCONFIG_DOC_MAX bytes.  Every string kept is
 * bounded (longer ones are an error) and free of control characters;
 * nothing from a document reaches output unchecked.
 */
#ifndef MK_AUTOCONFIG_DOC_H
#define MK_AUTOCONFIG_DOC_H
#include <stddef.h>

#include "autoconfig.h"

#define AUTOCONFIG_DOC_MAX (256 * 1024)
#define AUTOCONFIG_DOC_MAX_SERVERS 16
#define AUTOCONFIG_DOC_MAX_DOMAINS 256
#define AUTOCONFIG_DOC_MAX_AUTH 4

struct autoconfig_server {
	char type[16];			/* imap, pop3, smtp, ... */
	char hostname[AUTOCONFIG_MAX_HOST + 1];	/* may hold %EMAILDOMAIN% */
	int port;			/* 0 if absent */
	char socket_type[16];		/* SSL, STARTTLS, plain; "" if absent */
	char username[128];		/* template: %EMAILADDRESS%, ... */
	char auth[AUTOCONFIG_DOC_MAX_AUTH][32];
	int nauth;
};

struct autoconfig_doc {
	char id[128];
	char display_name[128];
	char (*domains)[AUTOCONFIG_MAX_HOST + 1];
	size_t ndomains;
	struct autoconfig_server in[AUTOCONFIG_DOC_MAX_SERVERS];
	size_t nin;
	struct autoconfig_server out[AUTOCONFIG_DOC_MAX_SERVERS];
	size_t nout;
};

/*
 * Parses BUF as a clientConfig document (its first emailProvider).
 * Returns 0 and a doc the caller frees with autoconfig_doc_free(), or
 * EX_DATAERR with err saying what is wrong.
 */
int autoconfig_doc_parse(const char *buf, size_t len, struct autoconfig_doc **out,
			 char *err, size_t errlen);
void autoconfig_doc_free(struct autoconfig_doc *doc);

/*
 * Validates BUF against the RELAX NG schema in SCHEMA (a file).  Returns
 * 0, EX_DATAERR (not valid; first error in err) or EX_NOINPUT (schema
 * unreadable).
 */
int autoconfig_doc_validate(const char *buf, size_t len, const char *schema,
			    char *err, size_t errlen);

/* Whether DOMAIN is one of the doc's <domain>s (case-insensitive). */
int autoconfig_doc_has_domain(const struct autoconfig_doc *doc, const char *domain);

/*
 * Compares DOC with what SITE serves; calls REPORT once per difference
 * with a one-line description ("incoming imap port: served 994, expected
 * 993").  Returns the number of differences.
 */
size_t autoconfig_doc_compare(const struct autoconfig_doc *doc,
			      const struct autoconfig_site *site,
			      void (*report)(void *arg, const char *what), void *arg);

/*
 * Writes the mailkeep.conf lines for a provider's DOC: "[account NAME]"
 * from its best IMAP server (SSL before STARTTLS) and "[relay]" from its
 * best SMTP server, usernames filled from EMAIL (NULL: left as a
 * comment).  DOMAIN fills %EMAILDOMAIN%.  Servers whose host or
 * username would not be a valid config value are skipped.  Returns 0
 * and a malloc'd text in *out; EX_DATAERR if there is no usable IMAP
 * server, with err set.
 */
int autoconfig_doc_provider_lines(const struct autoconfig_doc *doc, const char *name,
				  const char *domain, const char *email, const char *source,
				  char **out, char *err, size_t errlen);
#endif

/*
 * Client autoconfiguration documents for the server the config describes:
 * Thunderbird's clientConfig 1.1, Apple's com.apple.mail.managed profile,
 * Microsoft's Autodiscover POX response, RFC 6186/8314 SRV zone lines and
 * the landing page of the autoconfig host.
 *
 * Every XML document is built with libxml2's xmlTextWriter, so values
 * (domain, address) are escaped by the writer, never pasted into markup.
 * Callers still pass only validated addresses (autoconfig_email_valid()):
 * an address is also used in identifiers and file names.
 *
 * Ownership: the autoconfig_* writers return a malloc'd, NUL-terminated
 * buffer in *out (length in *len) that the caller frees; they return 0, or
 * EX_SOFTWARE/EX_OSERR when libxml2 fails (out of memory).
 */
#ifndef MK_AUTOCONFIG_H
#define MK_AUTOCONFIG_H
#include <stddef.h>

#define AUTOCONFIG_IMAP_PORT 993	/* implicit TLS (RFC 8314) */
#define AUTOCONFIG_SMTP_PORT 465	/* submissions, implicit TLS */
#define AUTOCONFIG_MAX_HOST 253
#define AUTOCONFIG_MAX_EMAIL 254	/* RFC 5321 path limit minus <> */

struct config;

/* What the documents advertise; filled from the config. */
struct autoconfig_site {
	char domain[AUTOCONFIG_MAX_HOST + 1];		/* example.com */
	char host[AUTOCONFIG_MAX_HOST + 1];		/* imap.example.com: IMAP and SMTP */
	int imap_port;
	int smtp_port;
	char display_name[AUTOCONFIG_MAX_HOST + 16];	/* "example.com Mail" */
	char doc_url[AUTOCONFIG_MAX_HOST + 32];		/* https://autoconfig.example.com/ */
};

/* From domain + subdomain; EX_CONFIG with err set if domain is missing or too long. */
int autoconfig_site_init(struct autoconfig_site *site, const struct config *cfg,
			 char *err, size_t errlen);

/* Thunderbird clientConfig version 1.1 (username %EMAILADDRESS%). */
int autoconfig_thunderbird(const struct autoconfig_site *site, char **out, size_t *len);

/* Apple configuration profile for EMAIL (required, validated by the caller). */
int autoconfig_mobileconfig(const struct autoconfig_site *site, const char *email,
			    char **out, size_t *len);

/* Autodiscover (Outlook) POX response for EMAIL (required). */
int autoconfig_autodiscover(const struct autoconfig_site *site, const char *email,
			    char **out, size_t *len);

/* Autodiscover POX error response (ErrorCode 600 "Invalid Request"). */
int autoconfig_autodiscover_error(char **out, size_t *len);

/* SRV records as zone-file lines (tab-separated), TTL 3600. */
int autoconfig_srv(const struct autoconfig_site *site, char **out, size_t *len);

/* The landing index.html of the autoconfig host: settings and links. */
int autoconfig_landing(const struct autoconfig_site *site, char **out, size_t *len);

/*
 * Name-based (version 5, SHA-1) UUID of NAME in mailkeep's namespace,
 * upper-case with dashes, written to out (at least 37 bytes).  The same
 * name always gives the same UUID, so a reinstalled profile replaces the
 * old one instead of adding a second account.
 */
void autoconfig_uuid(const char *name, char out[37]);
#endif

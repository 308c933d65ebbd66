/*
 * Fetching what mail clients fetch: the autoconfig URLs of a domain, over
 * HTTPS with certificate and host name checks (libcurl), and the two
 * commands built on it: checking our published documents against the
 * config, and reading a provider's published settings.
 *
 * Bounds: at most AUTOCONFIG_DOC_MAX bytes per response (larger is an
 * error), 3 redirects (HTTPS only), timeout from the options.
 */
#ifndef MK_AUTOCONFIG_FETCH_H
#define MK_AUTOCONFIG_FETCH_H
#include <stddef.h>

#include "autoconfig.h"

#define AUTOCONFIG_FETCH_MAX_OVERRIDES 16

struct autoconfig_fetch_opts {
	const char *ca_file;		/* NULL: the system trust store */
	/* curl's --resolve HOST:PORT:ADDR and --connect-to HOST:PORT:HOST2:PORT2 */
	const char *resolve[AUTOCONFIG_FETCH_MAX_OVERRIDES];
	size_t nresolve;
	const char *connect_to[AUTOCONFIG_FETCH_MAX_OVERRIDES];
	size_t nconnect_to;
	long timeout;			/* seconds for one request; 0: 15 */
	const char *schema;		/* RELAX NG file to validate against, or NULL */
};

/*
 * GETs URL.  Returns 0 with the body (malloc'd, NUL-terminated) in *out
 * and its length in *len on status 200; EX_UNAVAILABLE when the server
 * cannot be reached (or answers 404); EX_PROTOCOL when the TLS handshake
 * or its certificate is refused; EX_DATAERR for another status or an
 * over-long body.  err says which.
 */
int autoconfig_fetch(const struct autoconfig_fetch_opts *o, const char *url,
		     char **out, size_t *len, char *err, size_t errlen);

/*
 * mail-autoconfig check EMAIL: fetches the URLs a client tries for EMAIL
 * (https://autoconfig.DOMAIN/mail/config-v1.1.xml?emailaddress=EMAIL and
 * https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml), and writes
 * tab-separated lines to stdout: "ok URL", "mismatch URL WHAT" (one per
 * difference), "invalid URL WHY", "tls URL WHY" (certificate refused),
 * "unreachable URL WHY" (no answer, 404).
 * Returns 0 if every document served is valid and agrees with SITE and at
 * least one was served; EX_DATAERR if any disagrees, is invalid or fails
 * TLS checks; EX_UNAVAILABLE if none could be fetched.
 */
int autoconfig_check(const struct autoconfig_fetch_opts *o, const struct autoconfig_site *site,
		     const char *email);

/*
 * mail-autoconfig provider DOMAIN|EMAIL: fetches the provider's published
 * clientConfig (autoconfig host, then the well-known URL of the domain)
 * and prints the [account NAME] and [relay] lines of the first document
 * that parses.  Returns 0, EX_DATAERR (nothing usable) or EX_UNAVAILABLE
 * (nothing served).
 */
int autoconfig_provider(const struct autoconfig_fetch_opts *o, const char *domain,
			const char *email, const char *name);
#endif

/*
 * libFuzzer target for the autoconfig CGI's untrusted input
 * (lib/autoconfig-query): the input as a query string through
 * autoconfig_query_get() with a tight and a roomy output buffer, the
 * address checks on the decoded value and on the raw input, and the input
 * as an Autodiscover request body.  Aborts if a decoded value breaks its
 * bounds or an accepted address could carry markup or a line break.
 */
#include "autoconfig-query.h"
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_accepted(const char *s, size_t len)
{
	if (!autoconfig_email_valid(s, len))
		return;
	if (len > AUTOCONFIG_MAX_EMAIL || memchr(s, '@', len) == NULL)
		abort();
	for (size_t i = 0; i < len; i++)
		if (strchr("<>\"\r\n \\", s[i]) != NULL || (unsigned char)s[i] < 0x21 ||
		    (unsigned char)s[i] > 0x7e)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *qs = (const char *)data;
	static const size_t caps[] = { 1, 8, AUTOCONFIG_MAX_EMAIL + 1 };
	char out[AUTOCONFIG_MAX_EMAIL + 1];

	for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
		size_t n = (size_t)-1;
		int r;

		memset(out, 0x55, sizeof(out));
		r = autoconfig_query_get(qs, size, "emailaddress", out, caps[c], &n);
		if (r == AUTOCONFIG_Q_FOUND) {
			if (n >= caps[c] || out[n] != '\0' || strlen(out) != n)
				abort();
			check_accepted(out, n);
		} else if (r != AUTOCONFIG_Q_ABSENT && r != AUTOCONFIG_Q_BAD) {
			abort();
		}
	}
	check_accepted(qs, size);
	autoconfig_host_valid(qs, size);
	if (autoconfig_autodiscover_request(qs, size, out, sizeof(out)) == 0)
		check_accepted(out, strlen(out));
	return 0;
}

/* RFC 3464 delivery status notifications; see dsn.h. */
#include "dsn.h"

#include "config.h"
#include "queue.h"
#include "relay.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

/* "5.1.1" from a reply like "550 5.1.1 no such user", else a default by class. */
static void status_of(const char *error, char *out, size_t len)
{
	const char *p = error;
	int cls = 5;

	if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) &&
	    isdigit((unsigned char)p[2])) {
		cls = p[0] - '0';
		p += 3;
		while (*p == ' ' || *p == '-')
			p++;
	}
	if ((p[0] == '4' || p[0] == '5') && p[1] == '.') {
		size_t n = 2;
		while (isdigit((unsigned char)p[n]) || (p[n] == '.' && isdigit((unsigned char)p[n + 1])))
			n++;
		if (n >= 5 && n < len && n <= 9) {
			memcpy(out, p, n);
			out[n] = '\0';
			return;
		}
	}
	snprintf(out, len, "%d.0.0", cls == 4 ? 4 : 5);
}

long dsn_format(const char *domain, const struct queue_env *env, const char *hdr,
		size_t hlen, time_t now, char *buf, size_t cap)
{
	char date[64], arrival[64], boundary[96], status[16];
	struct tm tm;
	time_t created = (time_t)env->created;
	size_t o = 0;
	int n;

#define PUT(...) do { n = snprintf(buf + o, cap - o, __VA_ARGS__); \
	if (n < 0 || (size_t)n >= cap - o) { return -1; } \
	o += (size_t)n; } while (0)
	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	localtime_r(&created, &tm);
	strftime(arrival, sizeof(arrival), "%a, %d %b %Y %H:%M:%S %z", &tm);
	snprintf(boundary, sizeof(boundary), "%s.%lld/%s", env->id, (long long)now, domain);
	PUT("From: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
	    "To: <%s>\r\n"
	    "Subject: Undelivered Mail Returned to Sender\r\n"
	    "Date: %s\r\n"
	    "Message-ID: <%s.%lld.dsn@%s>\r\n"
	    "Auto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"%s\"\r\n"
	    "\r\n"
	    "This is a MIME-encapsulated message.\r\n"
	    "\r\n"
	    "--%s\r\n"
	    "Content-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "\r\n"
	    "Your message (queue id %s) could not be delivered to one or more\r\n"
	    "recipients. It has not been sent to them and will not be retried.\r\n"
	    "\r\n",
	    domain, env->sender, date, env->id, (long long)now, domain, boundary, boundary, env->id);
	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct queue_rcpt *r = &env->rcpts[i];
		if (r->state == QUEUE_RCPT_FAILED)
			PUT("<%s>: %s\r\n", r->addr, r->error[0] ? r->error : "delivery failed");
	}
	PUT("\r\n--%s\r\n"
	    "Content-Description: Delivery report\r\n"
	    "Content-Type: message/delivery-status\r\n"
	    "\r\n"
	    "Reporting-MTA: dns; %s\r\n"
	    "X-Mailkeep-Queue-ID: %s\r\n"
	    "X-Mailkeep-Sender: rfc822; %s\r\n"
	    "Arrival-Date: %s\r\n",
	    boundary, domain, env->id, env->sender, arrival);
	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct queue_rcpt *r = &env->rcpts[i];
		if (r->state != QUEUE_RCPT_FAILED)
			continue;
		status_of(r->error, status, sizeof(status));
		PUT("\r\nFinal-Recipient: rfc822; %s\r\n"
		    "Action: failed\r\n"
		    "Status: %s\r\n", r->addr, status);
		if (r->error[0] != '\0' && isdigit((unsigned char)r->error[0]))
			PUT("Diagnostic-Code: smtp; %s\r\n", r->error);
		else if (r->error[0] != '\0')
			PUT("Diagnostic-Code: x-mailkeep; %s\r\n", r->error);
	}
	PUT("\r\n--%s\r\n"
	    "Content-Description: Undelivered Message Headers\r\n"
	    "Content-Type: text/rfc822-headers\r\n"
	    "\r\n", boundary);
	if (hlen > cap - o)
		return -1;
	memcpy(buf + o, hdr, hlen);
	o += hlen;
	if (hlen < 2 || hdr[hlen - 2] != '\r' || hdr[hlen - 1] != '\n')
		PUT("\r\n");
	PUT("\r\n--%s--\r\n", boundary);
#undef PUT
	return (long)o;
}

int dsn_deliver(const struct config *cfg, const struct queue_env *env, int msgfd, time_t now,
		char *err, size_t errlen)
{
	char *hdr = malloc(DSN_MAX_HEADER + 1), *buf = NULL, *end;
	size_t hlen = 0, cap;
	ssize_t r;
	long n;
	int rc;

	if (hdr == NULL) {
		snprintf(err, errlen, "out of memory");
		return EX_OSERR;
	}
	while (hlen < DSN_MAX_HEADER &&
	       (r = pread(msgfd, hdr + hlen, DSN_MAX_HEADER - hlen, (off_t)hlen)) > 0)
		hlen += (size_t)r;
	hdr[hlen] = '\0';
	end = memmem(hdr, hlen, "\r\n\r\n", 4);
	if (end != NULL)
		hlen = (size_t)(end - hdr) + 2;
	cap = hlen + 8192 + env->nrcpts * (2 * QUEUE_MAX_ERROR + 2 * SMTP_MAX_ADDR + 200);
	buf = malloc(cap);
	if (buf == NULL) {
		free(hdr);
		snprintf(err, errlen, "out of memory");
		return EX_OSERR;
	}
	n = dsn_format(cfg->domain ? cfg->domain : "localhost", env, hdr, hlen, now, buf, cap);
	if (n < 0) {
		snprintf(err, errlen, "report too large");
		rc = EX_SOFTWARE;
	} else {
		uint32_t uid = 0;
		rc = relay_local_deliver(cfg, env->user, -1, buf, (size_t)n, &uid, err, errlen);
	}
	free(buf);
	free(hdr);
	return rc;
}

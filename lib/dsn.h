/*
 * Delivery status notifications (RFC 3464): when recipients of a queued
 * message fail for good (a 5xx from the provider, or QUEUE_GIVE_UP
 * seconds of temporary failures), the sender gets a multipart/report
 * with a human-readable part, a message/delivery-status part (one
 * per-recipient block per failed recipient) and the original header as
 * text/rfc822-headers.  The sender is always a local user (the server
 * only accepts mail from the logged-in user), so the report goes straight
 * into their INBOX.
 */
#ifndef MK_DSN_H
#define MK_DSN_H
#include <stddef.h>
#include <time.h>

struct config;
struct queue_env;

#define DSN_MAX_HEADER 65536		/* bytes of the original header quoted */

/*
 * Pure: writes the report for every recipient of ENV in state failed into
 * BUF (CRLF line ends).  HDR[0..hlen) is the original header.  Returns
 * the length, or -1 if it does not fit.
 */
long dsn_format(const char *reporting_domain, const struct queue_env *env, const char *hdr,
		size_t hlen, time_t now, char *buf, size_t cap);

/*
 * Builds the report (original header read from MSGFD) and delivers it
 * into the INBOX of env->user.  0, or a sysexits code with err.
 */
int dsn_deliver(const struct config *cfg, const struct queue_env *env, int msgfd, time_t now,
		char *err, size_t errlen);
#endif

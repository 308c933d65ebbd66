/*
 * IMAP dates (RFC 3501 date-time and date) and RFC 5322 Date: headers.
 * Pure functions over strings; no allocation, no locale, no TZ variable.
 */
#ifndef MK_IMAP_DATE_H
#define MK_IMAP_DATE_H
#include <stddef.h>
#include <time.h>

/* date-time without the quotes: "17-Jul-1996 02:44:25 -0700" (day may be
 * " 7" or "7").  *t is the UTC instant, *tz_min the zone offset in minutes.
 * Returns 0, or -1 when invalid. */
int imap_date_parse_datetime(const char *s, time_t *t, int *tz_min);
/* date for SEARCH: "1-Feb-1994" (day 1 or 2 digits).  *t is that day's
 * 00:00:00 UTC (RFC 3501 compares dates disregarding time and zone).
 * Returns 0 or -1. */
int imap_date_parse_date(const char *s, time_t *t);
/* RFC 5322 date as found in Date: headers ("Tue, 1 Jul 2003 10:52:37
 * +0200", obsolete zones, missing seconds, comments).  Returns 0 or -1. */
int imap_date_parse_rfc822(const char *s, size_t len, time_t *t, int *tz_min);
/* Writes "17-Jul-1996 02:44:25 -0700" (no quotes, 26 bytes + NUL) for the
 * instant t shown in zone tz_min.  out must hold 27 bytes. */
void imap_date_format_datetime(char out[27], time_t t, int tz_min);
/* Offset of local time from UTC at instant t, in minutes. */
int imap_date_local_offset(time_t t);
#endif

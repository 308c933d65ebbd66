/* IMAP dates: see imap-date.h. */
#include "imap-date.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static int month_index(const char *s)
{
	int i;

	for (i = 0; i < 12; i++)
		if (strncasecmp(s, months[i], 3) == 0)
			return i;
	return -1;
}

static int digits(const char *s, int n)
{
	int i, v = 0;

	if (n > 9)
		return -1;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static int days_in_month(int y, int m)
{
	static const int d[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (m == 1 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[m];
}

static int make_time(int y, int mon, int d, int h, int mi, int s, int tz, time_t *t)
{
	struct tm tm;

	if (y < 1900 || y > 9999 || mon < 0 || mon > 11 || d < 1 ||
	    d > days_in_month(y, mon) || h > 23 || mi > 59 || s > 60 || h < 0 ||
	    mi < 0 || s < 0)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mon;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	*t = timegm(&tm) - (time_t)tz * 60;
	return 0;
}

/* "d-Mon-yyyy" at s; returns the length consumed or -1. */
static int parse_dmy(const char *s, int *d, int *m, int *y)
{
	int n = 0;

	if (s[0] == ' ' && isdigit((unsigned char)s[1]))
		n = 1;
	if (!isdigit((unsigned char)s[n]))
		return -1;
	*d = s[n] - '0';
	n++;
	if (isdigit((unsigned char)s[n]))
		*d = *d * 10 + (s[n++] - '0');
	if (s[n] != '-' || strlen(s + n + 1) < 3 || (*m = month_index(s + n + 1)) < 0 ||
	    s[n + 4] != '-')
		return -1;
	n += 5;
	if ((*y = digits(s + n, 4)) < 0)
		return -1;
	return n + 4;
}

static int parse_zone(const char *s, int *tz)
{
	int v;

	if ((s[0] != '+' && s[0] != '-') || (v = digits(s + 1, 4)) < 0 || v % 100 > 59)
		return -1;
	*tz = (v / 100) * 60 + v % 100;
	if (s[0] == '-')
		*tz = -*tz;
	return 0;
}

int imap_date_parse_datetime(const char *s, time_t *t, int *tz_min)
{
	int d, m, y, h, mi, sec, tz, n;

	if ((n = parse_dmy(s, &d, &m, &y)) < 0 || s[0] == '-')
		return -1;
	s += n;
	if (s[0] != ' ' || (h = digits(s + 1, 2)) < 0 || s[3] != ':' ||
	    (mi = digits(s + 4, 2)) < 0 || s[6] != ':' || (sec = digits(s + 7, 2)) < 0 ||
	    s[9] != ' ' || parse_zone(s + 10, &tz) < 0 || s[15] != '\0')
		return -1;
	if (make_time(y, m, d, h, mi, sec, tz, t) < 0)
		return -1;
	*tz_min = tz;
	return 0;
}

int imap_date_parse_date(const char *s, time_t *t)
{
	int d, m, y, n;

	if (s[0] == ' ' || (n = parse_dmy(s, &d, &m, &y)) < 0 || s[n] != '\0')
		return -1;
	return make_time(y, m, d, 0, 0, 0, 0, t);
}

void imap_date_format_datetime(char out[27], time_t t, int tz_min)
{
	struct tm tm;
	time_t lt = t + (time_t)tz_min * 60;
	int a = tz_min < 0 ? -tz_min : tz_min;

	gmtime_r(&lt, &tm);
	snprintf(out, 27, "%02d-%s-%04d %02d:%02d:%02d %c%02d%02d", tm.tm_mday,
		 months[tm.tm_mon], (tm.tm_year + 1900) % 10000, tm.tm_hour, tm.tm_min,
		 tm.tm_sec, tz_min < 0 ? '-' : '+', (a / 60) % 100, a % 60);
}

int imap_date_local_offset(time_t t)
{
	struct tm tm;

	localtime_r(&t, &tm);
	return (int)(tm.tm_gmtoff / 60);
}

/* RFC 5322 §3.3 with the obsolete forms of §4.3. */
static const char *skip_cfws(const char *s, const char *end)
{
	int depth = 0;

	while (s < end) {
		if (*s == '(')
			depth++;
		else if (*s == ')' && depth > 0)
			depth--;
		else if (depth == 0 && !isspace((unsigned char)*s))
			break;
		s++;
	}
	return s;
}

static const char *read_word(const char *s, const char *end, char *w, size_t wsize)
{
	size_t n = 0;

	while (s < end && (isalnum((unsigned char)*s) || *s == '+' || *s == '-')) {
		if (n + 1 < wsize)
			w[n++] = *s;
		else
			return NULL;
		s++;
		if (isdigit((unsigned char)w[0]) != isdigit((unsigned char)(s < end ? *s : 'x')))
			if (w[0] != '+' && w[0] != '-')
				break;
	}
	w[n] = '\0';
	return n > 0 ? s : NULL;
}

int imap_date_parse_rfc822(const char *s, size_t len, time_t *t, int *tz_min)
{
	static const struct { const char *name; int off; } zones[] = {
		{ "UT", 0 }, { "GMT", 0 }, { "Z", 0 }, { "EST", -300 }, { "EDT", -240 },
		{ "CST", -360 }, { "CDT", -300 }, { "MST", -420 }, { "MDT", -360 },
		{ "PST", -480 }, { "PDT", -420 }, { NULL, 0 } };
	const char *end = s + len;
	char w[16];
	int d, m, y, h, mi, sec = 0, tz = 0, i;

	s = skip_cfws(s, end);
	/* optional day-of-week "," */
	if (s < end && isalpha((unsigned char)*s)) {
		if ((s = read_word(s, end, w, sizeof(w))) == NULL)
			return -1;
		s = skip_cfws(s, end);
		if (s < end && *s == ',')
			s = skip_cfws(s + 1, end);
	}
	if ((s = read_word(s, end, w, sizeof(w))) == NULL || (d = digits(w, (int)strlen(w))) < 0 ||
	    strlen(w) > 2)
		return -1;
	s = skip_cfws(s, end);
	if ((s = read_word(s, end, w, sizeof(w))) == NULL || strlen(w) != 3 ||
	    (m = month_index(w)) < 0)
		return -1;
	s = skip_cfws(s, end);
	if ((s = read_word(s, end, w, sizeof(w))) == NULL || (y = digits(w, (int)strlen(w))) < 0)
		return -1;
	if (strlen(w) == 2)
		y += y < 50 ? 2000 : 1900;
	else if (strlen(w) == 3)
		y += 1900;
	s = skip_cfws(s, end);
	if (end - s < 5 || (h = digits(s, 2)) < 0 || s[2] != ':' || (mi = digits(s + 3, 2)) < 0)
		return -1;
	s += 5;
	if (s < end && *s == ':') {
		if (end - s < 3 || (sec = digits(s + 1, 2)) < 0)
			return -1;
		s += 3;
	}
	s = skip_cfws(s, end);
	if (s < end && (*s == '+' || *s == '-')) {
		char z[6];
		if (end - s < 5)
			return -1;
		memcpy(z, s, 5);
		z[5] = '\0';
		if (parse_zone(z, &tz) < 0)
			return -1;
	} else if (s < end && read_word(s, end, w, sizeof(w)) != NULL) {
		for (i = 0; zones[i].name != NULL; i++)
			if (strcasecmp(w, zones[i].name) == 0)
				tz = zones[i].off;
	}
	if (make_time(y, m, d, h, mi, sec, tz, t) < 0)
		return -1;
	*tz_min = tz;
	return 0;
}

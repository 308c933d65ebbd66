#include "maildir-name.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static const char flag_letters[] = "DFPRST";

static unsigned flag_bit(char c)
{
	const char *p = strchr(flag_letters, c);

	return (c != '\0' && p != NULL) ? 1u << (p - flag_letters) : 0;
}

/* Value of ",K=<digits>" in base[0..len), terminated by ',' or the end. */
static long long base_field(const char *base, size_t len, char key)
{
	size_t i;

	for (i = 0; i + 3 <= len; i++) {
		long long v = 0;
		size_t j;

		if (base[i] != ',' || base[i + 1] != key || base[i + 2] != '=')
			continue;
		for (j = i + 3; j < len && base[j] >= '0' && base[j] <= '9'; j++) {
			if (v > (1LL << 53))
				break;
			v = v * 10 + (base[j] - '0');
		}
		if (j > i + 3 && (j == len || base[j] == ','))
			return v;
	}
	return -1;
}

int maildir_name_parse(const char *name, size_t len, struct maildir_name *out)
{
	size_t i;

	memset(out, 0, sizeof(*out));
	out->size = out->vsize = out->mbsync_uid = -1;
	if (len == 0 || len > MAILDIR_NAME_MAX || name[0] == '.')
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f || c == '/')
			return -1;
	}
	for (i = 0; i < len && name[i] != ':'; i++)
		;
	out->base_len = i;
	if (i == 0)
		return -1;
	if (i + 3 <= len && memcmp(name + i, ":2,", 3) == 0) {
		out->has_info = 1;
		for (i += 3; i < len && name[i] != ','; i++) {
			char c = name[i];

			if (c >= 'a' && c <= 'z')
				out->keywords |= 1u << (c - 'a');
			else
				out->flags |= flag_bit(c);
		}
		if (i < len)
			out->extra_off = i;
	}
	out->size = base_field(name, out->base_len, 'S');
	out->vsize = base_field(name, out->base_len, 'W');
	out->mbsync_uid = base_field(name, out->base_len, 'U');
	return 0;
}

int maildir_name_with_flags(const char *name, unsigned flags, uint32_t keywords,
			    char *out, size_t outlen)
{
	struct maildir_name mn;
	char fl[6 + 26 + 1];
	size_t n = 0, i;
	int w;

	if (maildir_name_parse(name, strlen(name), &mn) < 0)
		return -1;
	for (i = 0; flag_letters[i] != '\0'; i++)
		if (flags & (1u << i))
			fl[n++] = flag_letters[i];
	for (i = 0; i < 26; i++)
		if (keywords & (1u << i))
			fl[n++] = (char)('a' + i);
	fl[n] = '\0';
	w = snprintf(out, outlen, "%.*s:2,%s%s", (int)mn.base_len, name, fl,
		     mn.extra_off ? name + mn.extra_off : "");
	if (w < 0 || (size_t)w >= outlen || (size_t)w > MAILDIR_NAME_MAX)
		return -1;
	return 0;
}

int maildir_name_new_base(char *out, size_t outlen, long long size, long long vsize)
{
	static unsigned long counter;	/* Q<n>: unique within this process */
	char host[256], esc[256 * 4 + 1];
	struct timeval tv;
	size_t i, o = 0;
	int w;

	gettimeofday(&tv, NULL);
	if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	for (i = 0; host[i] != '\0'; i++) {
		if (host[i] == '/' || host[i] == ':') {
			o += (size_t)sprintf(esc + o, "\\%03o", (unsigned char)host[i]);
		} else {
			esc[o++] = host[i];
		}
	}
	esc[o] = '\0';
	w = snprintf(out, outlen, "%lld.M%ldP%ldQ%lu.%s", (long long)tv.tv_sec,
		     (long)tv.tv_usec, (long)getpid(), ++counter, esc);
	if (w < 0 || (size_t)w >= outlen)
		return -1;
	if (size >= 0) {
		int x = snprintf(out + w, outlen - (size_t)w, ",S=%lld", size);

		if (x < 0 || (size_t)x >= outlen - (size_t)w)
			return -1;
		w += x;
	}
	if (vsize >= 0) {
		int x = snprintf(out + w, outlen - (size_t)w, ",W=%lld", vsize);

		if (x < 0 || (size_t)x >= outlen - (size_t)w)
			return -1;
		w += x;
	}
	return (size_t)w + 8 > MAILDIR_NAME_MAX ? -1 : 0;	/* room for ":2,DFPRST" */
}

void maildir_name_flags_str(unsigned flags, char *out, size_t outlen)
{
	static const char *const words[] = { "\\Draft", "\\Flagged", "$Forwarded",
		"\\Answered", "\\Seen", "\\Deleted" };
	size_t i, o = 0;

	if (outlen == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < 6; i++) {
		if (!(flags & (1u << i)))
			continue;
		int w = snprintf(out + o, outlen - o, "%s%s", o ? " " : "", words[i]);

		if (w < 0 || (size_t)w >= outlen - o)
			return;
		o += (size_t)w;
	}
}

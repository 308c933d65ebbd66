#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *log_prog = "mailkeep";
static int log_verb;
static int log_journal;

/* journald sets JOURNAL_STREAM=dev:ino for the stream it connected to fd 2. */
static int stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *prog, int verbosity)
{
	const char *slash = strrchr(prog, '/');

	log_prog = slash ? slash + 1 : prog;
	log_verb = verbosity;
	log_journal = stderr_is_journal();
}

int log_verbosity(void)
{
	return log_verb;
}

static const char *level_name(enum log_level lvl)
{
	switch (lvl) {
	case LOG_LVL_ERR: return "error";
	case LOG_LVL_WARN: return "warn";
	case LOG_LVL_INFO: return "info";
	case LOG_LVL_DEBUG: return "debug";
	}
	return "info";
}

void log_vevent(enum log_level lvl, const char *event, const char *fmt, va_list ap)
{
	char line[2048];
	int n, m;

	if (lvl == LOG_LVL_DEBUG && log_verb < 1)
		return;
	if (lvl == LOG_LVL_INFO && log_verb < 0)
		return;
	if (log_journal)
		n = snprintf(line, sizeof(line), "<%d>level=%s event=%s", (int)lvl,
			     level_name(lvl), event);
	else
		n = snprintf(line, sizeof(line), "%s: level=%s event=%s", log_prog,
			     level_name(lvl), event);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	if (fmt != NULL && fmt[0] != '\0') {
		line[n++] = ' ';
		m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
		if (m < 0)
			m = 0;
		n += m;
		if ((size_t)n > sizeof(line) - 2)
			n = (int)sizeof(line) - 2;
	}
	line[n++] = '\n';
	/* one write() so lines from concurrent processes do not interleave */
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

void log_event(enum log_level lvl, const char *event, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vevent(lvl, event, fmt, ap);
	va_end(ap);
}

const char *log_q(const char *s)
{
	static char bufs[4][420];
	static int next;
	char *b = bufs[next];
	size_t i, o = 0, lim = 200;
	int plain = s[0] != '\0';

	next = (next + 1) % 4;
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) {
			plain = 0;
			break;
		}
	}
	if (plain && i <= lim)
		return s;
	b[o++] = '"';
	for (i = 0; s[i] != '\0' && i < lim; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			b[o++] = '\\';
			b[o++] = (char)c;
		} else if (c == '\n') {
			b[o++] = '\\';
			b[o++] = 'n';
		} else if (c < ' ' || c == 0x7f) {
			o += (size_t)snprintf(b + o, 5, "\\x%02x", c);
		} else {
			b[o++] = (char)c;
		}
	}
	if (s[i] != '\0') {
		memcpy(b + o, "...", 3);
		o += 3;
	}
	b[o++] = '"';
	b[o] = '\0';
	return b;
}

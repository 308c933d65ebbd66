/*
 * Diagnostics: one "key=value" line per event on stderr.
 *
 *   prog: level=info event=deliver folder=INBOX uid=42
 *
 * When stderr is the journal (JOURNAL_STREAM set and matching fd 2) each
 * line starts with a "<N>" syslog priority prefix instead of the program
 * name, so journald records the level.  Never pass a secret to these
 * functions: nothing here can tell a password from a folder name.
 */
#ifndef MK_LOG_H
#define MK_LOG_H
#include <stdarg.h>

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

/* prog: name shown in each line; verbosity: 0 = info, >= 1 = debug, -1 = warnings only. */
void log_init(const char *prog, int verbosity);
int log_verbosity(void);

/* Writes "level=L event=EVENT " followed by the formatted key=value pairs. */
void log_event(enum log_level lvl, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vevent(enum log_level lvl, const char *event, const char *fmt, va_list ap);

#define log_err(ev, ...)   log_event(LOG_LVL_ERR, ev, __VA_ARGS__)
#define log_warn(ev, ...)  log_event(LOG_LVL_WARN, ev, __VA_ARGS__)
#define log_info(ev, ...)  log_event(LOG_LVL_INFO, ev, __VA_ARGS__)
#define log_debug(ev, ...) log_event(LOG_LVL_DEBUG, ev, __VA_ARGS__)

/*
 * Quotes a value for a log line: returned as is when it has no space, quote,
 * '=' or control character; otherwise in double quotes with \" \\ \n \xNN
 * escapes, cut at 200 bytes.  Returns one of 4 rotating static buffers, so
 * up to 4 calls may appear in one log_event().
 */
const char *log_q(const char *s);
#endif

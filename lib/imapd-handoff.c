#include "imapd-handoff.h"

#include "conn.h"
#include "imapd.h"
#include "log.h"

#include <errno.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#define MAGIC "mailkeep-handoff 1\n"

static int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Appends "KEY VALUE\n" to B; -1 when VALUE holds a newline or B is full. */
static int add(char *b, size_t cap, size_t *len, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int add(char *b, size_t cap, size_t *len, const char *key, const char *fmt, ...)
{
	va_list ap;
	size_t start = *len;
	int n;

	n = snprintf(b + *len, cap - *len, "%s ", key);
	if (n < 0 || (size_t)n >= cap - *len)
		return -1;
	*len += (size_t)n;
	va_start(ap, fmt);
	n = vsnprintf(b + *len, cap - *len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n + 1 >= cap - *len)
		return -1;
	if (memchr(b + *len, '\n', (size_t)n) != NULL) {
		*len = start;
		errno = EINVAL;
		return -1;
	}
	*len += (size_t)n;
	b[(*len)++] = '\n';
	return 0;
}

int imapd_handoff_write(int fd, const struct imapd_handoff *h)
{
	const struct config *c = h->cfg;
	size_t cap = 8192 + c->nmailboxes * 1100, len = 0;
	char *b = malloc(cap);
	int bad = 0;

	if (b == NULL)
		return -1;
	memcpy(b, MAGIC, sizeof(MAGIC) - 1);
	len = sizeof(MAGIC) - 1;
	errno = ENOSPC;
	bad |= add(b, cap, &len, "user", "%s", h->user);
	bad |= add(b, cap, &len, "home", "%s", h->home);
	bad |= add(b, cap, &len, "peer", "%s", h->peer);
	if (h->tag != NULL)
		bad |= add(b, cap, &len, "tag", "%s", h->tag);
	bad |= add(b, cap, &len, "verbose", "%d", h->verbose);
	bad |= add(b, cap, &len, "bytes", "%llu %llu", h->bytes_in, h->bytes_out);
	if (c->index_dir != NULL)
		bad |= add(b, cap, &len, "index_dir", "%s", c->index_dir);
	bad |= add(b, cap, &len, "imap", "%lld %d %d %d", c->imap.max_literal, c->imap.max_line,
		   c->imap.idle_timeout, c->imap.auth_timeout);
	for (size_t i = 0; i < c->nmailboxes; i++)
		bad |= add(b, cap, &len, "mailbox", "%d %d %s", c->mailboxes[i].special_use,
			   (int)c->mailboxes[i].autocreate, c->mailboxes[i].name);
	bad |= add(b, cap, &len, "input", "%zu", h->inputlen);
	if (bad || write_all(fd, b, len) != 0 ||
	    (h->inputlen > 0 && write_all(fd, h->input, h->inputlen) != 0)) {
		free(b);
		return -1;
	}
	free(b);
	return 0;
}

/*
 * Reads N space-separated decimal integers from V into OUT (no sscanf:
 * it would pull the whole of scanf and float parsing into a static
 * session binary).  0, or -1 unless V holds exactly N of them.
 */
static int parse_nums(const char *v, long long *out, int n)
{
	for (int i = 0; i < n; i++) {
		char *end;
		errno = 0;
		out[i] = strtoll(v, &end, 10);
		if (errno != 0 || end == v || (*end != ' ' && *end != '\0') ||
		    (*end == '\0') != (i == n - 1))
			return -1;
		v = end + (*end == ' ');
	}
	return 0;
}

static int in_int(long long v, long long lo, long long hi)
{
	return v >= lo && v <= hi;
}

static char *dup_checked(const char *v, int *oom)
{
	char *d = strdup(v);

	if (d == NULL)
		*oom = 1;
	return d;
}

/* Parses the "key value" line L (NUL-terminated) into H. 0 or -1. */
static int parse_line(struct imapd_handoff *h, char *l, int *oom)
{
	struct config *c = h->cfg;
	char *v = strchr(l, ' ');
	long long n[4];

	if (v == NULL)
		return -1;
	*v++ = '\0';
	if (strcmp(l, "user") == 0 && h->user == NULL)
		h->user = dup_checked(v, oom);
	else if (strcmp(l, "home") == 0 && h->home == NULL)
		h->home = dup_checked(v, oom);
	else if (strcmp(l, "peer") == 0 && h->peer == NULL)
		h->peer = dup_checked(v, oom);
	else if (strcmp(l, "tag") == 0 && h->tag == NULL)
		h->tag = dup_checked(v, oom);
	else if (strcmp(l, "index_dir") == 0 && c->index_dir == NULL)
		c->index_dir = dup_checked(v, oom);
	else if (strcmp(l, "verbose") == 0) {
		if (parse_nums(v, n, 1) != 0 || !in_int(n[0], -1, 10))
			return -1;
		h->verbose = (int)n[0];
	} else if (strcmp(l, "bytes") == 0) {
		if (parse_nums(v, n, 2) != 0 || n[0] < 0 || n[1] < 0)
			return -1;
		h->bytes_in = (unsigned long long)n[0];
		h->bytes_out = (unsigned long long)n[1];
	} else if (strcmp(l, "imap") == 0) {
		if (parse_nums(v, n, 4) != 0 || n[0] <= 0 || !in_int(n[1], 1, INT32_MAX) ||
		    !in_int(n[2], 1, INT32_MAX) || !in_int(n[3], 1, INT32_MAX))
			return -1;
		c->imap.max_literal = n[0];
		c->imap.max_line = (int)n[1];
		c->imap.idle_timeout = (int)n[2];
		c->imap.auth_timeout = (int)n[3];
	} else if (strcmp(l, "mailbox") == 0) {
		struct config_mailbox *grown, *m;
		char *name = strchr(v, ' ');
		name = name != NULL ? strchr(name + 1, ' ') : NULL;
		if (name == NULL)
			return -1;
		*name++ = '\0';
		if (parse_nums(v, n, 2) != 0 || !in_int(n[0], -1, SPECIAL_COUNT - 1) ||
		    !in_int(n[1], MAILBOX_AUTO_NO, MAILBOX_AUTO_SUBSCRIBE))
			return -1;
		grown = realloc(c->mailboxes, (c->nmailboxes + 1) * sizeof(*grown));
		if (grown == NULL) {
			*oom = 1;
			return -1;
		}
		c->mailboxes = grown;
		m = &c->mailboxes[c->nmailboxes];
		m->special_use = (int)n[0];
		m->autocreate = (enum mailbox_auto)n[1];
		m->name = dup_checked(name, oom);
		if (m->name == NULL)
			return -1;
		c->nmailboxes++;
	} else
		return -1;
	return 0;
}

int imapd_handoff_read(int fd, struct imapd_handoff *h, char *err, size_t errlen)
{
	size_t cap = 16384, len = 0, off;
	char *b = malloc(cap);
	int oom = 0;

	memset(h, 0, sizeof(*h));
	h->cfg = calloc(1, sizeof(*h->cfg));
	if (b == NULL || h->cfg == NULL)
		goto nomem;
	for (;;) {
		ssize_t r;
		if (len == cap) {
			char *grown;
			if (cap >= IMAPD_HANDOFF_MAX) {
				snprintf(err, errlen, "handoff larger than %d bytes", IMAPD_HANDOFF_MAX);
				goto fail;
			}
			grown = realloc(b, cap * 2);
			if (grown == NULL)
				goto nomem;
			b = grown;
			cap *= 2;
		}
		r = read(fd, b + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "reading the handoff: %s", strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len < sizeof(MAGIC) - 1 || memcmp(b, MAGIC, sizeof(MAGIC) - 1) != 0) {
		snprintf(err, errlen, "not a handoff from mail-serve-imap");
		goto fail;
	}
	off = sizeof(MAGIC) - 1;
	for (;;) {
		char *nl = memchr(b + off, '\n', len - off);
		char *l = b + off;
		if (nl == NULL) {
			snprintf(err, errlen, "handoff truncated");
			goto fail;
		}
		*nl = '\0';
		off = (size_t)(nl - b) + 1;
		if (strncmp(l, "input ", 6) == 0) {
			char *end;
			unsigned long long n;
			errno = 0;
			n = strtoull(l + 6, &end, 10);
			if (errno != 0 || *end != '\0' || end == l + 6 || n != len - off) {
				snprintf(err, errlen, "handoff: bad input length");
				goto fail;
			}
			h->inputlen = (size_t)n;
			if (n > 0) {
				h->input = malloc((size_t)n);
				if (h->input == NULL)
					goto nomem;
				memcpy(h->input, b + off, (size_t)n);
			}
			break;
		}
		if (parse_line(h, l, &oom) != 0) {
			if (oom)
				goto nomem;
			snprintf(err, errlen, "handoff: bad line %.40s", l);
			goto fail;
		}
		if (oom)
			goto nomem;
	}
	if (h->user == NULL || h->home == NULL || h->peer == NULL || h->cfg->imap.max_line == 0) {
		snprintf(err, errlen, "handoff: user, home, peer or imap missing");
		goto fail;
	}
	free(b);
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	free(b);
	imapd_handoff_free(h);
	return -1;
}

void imapd_handoff_free(struct imapd_handoff *h)
{
	if (h == NULL)
		return;
	free(h->user);
	free(h->home);
	free(h->peer);
	free(h->tag);
	/* not config_free(): only these were filled (and config.o stays out) */
	if (h->cfg != NULL) {
		free(h->cfg->index_dir);
		for (size_t i = 0; i < h->cfg->nmailboxes; i++)
			free(h->cfg->mailboxes[i].name);
		free(h->cfg->mailboxes);
		free(h->cfg);
	}
	if (h->input != NULL)
		explicit_bzero(h->input, h->inputlen);
	free(h->input);
	memset(h, 0, sizeof(*h));
}

int imapd_handoff_serve(const struct imapd_handoff *h, int fd_in, int fd_out)
{
	struct imapd_opts opts = { .cfg = h->cfg };
	struct imapd *s = imapd_new(&opts, fd_in, fd_out, h->peer);
	int rc;

	if (s == NULL)
		return EX_OSERR;
	snprintf(s->user, sizeof(s->user), "%s", h->user);
	s->bytes_in = h->bytes_in;
	s->bytes_out = h->bytes_out;
	if (imapd_set_home(s, h->home) != 0 || imapd_input_push(s, h->input, h->inputlen) != 0) {
		log_err("session", "user=%s error=%s", log_q(s->user), log_q("bad handoff"));
		imapd_free(s);
		return EX_SOFTWARE;
	}
	s->state = IMAPD_AUTH;
	if (h->tag != NULL)
		imapd_tagged(s, h->tag, "OK [CAPABILITY %s] Logged in", imapd_capability(s));
	else
		imapd_untagged(s, "PREAUTH [CAPABILITY %s] Logged in as %s", imapd_capability(s),
			       s->user);
	rc = imapd_run(s);
	imapd_free(s);
	return rc;
}

/* The relay spool; see queue.h. */
#include "queue.h"
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sysexits.h>
#include <unistd.h>

static const char *const rcpt_states[] = { "pending", "sent", "failed", "bounced" };

const char *queue_rcpt_state_str(enum queue_rcpt_state s)
{
	return (unsigned)s < 4 ? rcpt_states[s] : "?";
}

static int seterr(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int seterr(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

void queue_set_error(char *out, const char *s)
{
	size_t o = 0;

	for (; s != NULL && *s != '\0' && o < QUEUE_MAX_ERROR; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c == 0x7f) {
			/* multi-line replies and control bytes: one line, single spaces */
			if (o > 0 && out[o - 1] != ' ')
				out[o++] = ' ';
			continue;
		}
		out[o++] = (char)c;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

long queue_env_format(const struct queue_env *e, char *buf, size_t len)
{
	size_t o = 0;
	int n;

#define PUT(...) do { n = snprintf(buf + o, len - o, __VA_ARGS__); \
	if (n < 0 || (size_t)n >= len - o) { return -1; } \
	o += (size_t)n; } while (0)
	PUT("mailkeep-queue 1\nid %s\nuser %s\nsender %s\ncreated %lld\nsize %lld\n"
	    "body %s\nsmtputf8 %d\nattempts %d\nnext %lld\n", e->id, e->user, e->sender,
	    e->created, e->size, e->body_8bit ? "8bitmime" : "7bit", e->smtputf8 ? 1 : 0,
	    e->attempts, e->next_try);
	if (e->error[0] != '\0')
		PUT("error %s\n", e->error);
	for (size_t i = 0; i < e->nrcpts; i++) {
		const struct queue_rcpt *r = &e->rcpts[i];
		PUT("rcpt %s %s %s%s%s\n", queue_rcpt_state_str(r->state),
		    r->local ? "local" : "remote", r->addr, r->error[0] ? " " : "", r->error);
	}
#undef PUT
	return (long)o;
}

/* Copies the token [s, e) into out (size cap); -1 if empty, too long or not one token. */
static int token(const char *s, const char *e, char *out, size_t cap)
{
	size_t n = (size_t)(e - s);

	if (n == 0 || n >= cap || memchr(s, ' ', n) != NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

static int number(const char *s, const char *e, long long *out)
{
	long long v = 0;

	if (s == e || e - s > 18)
		return -1;
	for (; s < e; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return 0;
}

int queue_env_parse(const char *buf, size_t len, struct queue_env *env, char *err,
		    size_t errlen)
{
	const char *p = buf, *end = buf + len;
	int line = 0, have = 0;
	long long v;

	memset(env, 0, sizeof(*env));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end, *k = p, *sp;
		p = nl ? nl + 1 : end;
		line++;
		if (le == k)
			continue;
		sp = memchr(k, ' ', (size_t)(le - k));
		if (sp == NULL)
			return seterr(err, errlen, EX_DATAERR, "line %d: no value", line);
		const char *vs = sp + 1;
		size_t kl = (size_t)(sp - k);
#define KEY(s) (kl == sizeof(s) - 1 && memcmp(k, s, kl) == 0)
		if (line == 1) {
			if (!KEY("mailkeep-queue") || le - vs != 1 || *vs != '1')
				return seterr(err, errlen, EX_DATAERR, "not a version 1 envelope");
			have |= 1;
		} else if (KEY("id")) {
			if (token(vs, le, env->id, sizeof(env->id)) != 0 || !queue_id_valid(env->id))
				goto bad;
			have |= 2;
		} else if (KEY("user")) {
			size_t n = (size_t)(le - vs);
			if (n == 0 || n > QUEUE_MAX_USER)
				goto bad;
			memcpy(env->user, vs, n);
			env->user[n] = '\0';
			for (size_t i = 0; i < n; i++)
				if ((unsigned char)env->user[i] < 0x20)
					goto bad;
		} else if (KEY("sender")) {
			if (token(vs, le, env->sender, sizeof(env->sender)) != 0)
				goto bad;
			have |= 4;
		} else if (KEY("created") || KEY("size") || KEY("attempts") || KEY("next") ||
			   KEY("smtputf8")) {
			if (number(vs, le, &v) != 0)
				goto bad;
			if (KEY("created"))
				env->created = v;
			else if (KEY("size"))
				env->size = v;
			else if (KEY("attempts"))
				env->attempts = v > 100000 ? 100000 : (int)v;
			else if (KEY("next"))
				env->next_try = v;
			else
				env->smtputf8 = v != 0;
		} else if (KEY("body")) {
			if (le - vs == 8 && memcmp(vs, "8bitmime", 8) == 0)
				env->body_8bit = 1;
			else if (!(le - vs == 4 && memcmp(vs, "7bit", 4) == 0))
				goto bad;
		} else if (KEY("error")) {
			char tmp[QUEUE_MAX_ERROR + 1];
			size_t n = (size_t)(le - vs);
			if (n > QUEUE_MAX_ERROR)
				n = QUEUE_MAX_ERROR;
			memcpy(tmp, vs, n);
			tmp[n] = '\0';
			queue_set_error(env->error, tmp);
		} else if (KEY("rcpt")) {
			struct queue_rcpt *r;
			const char *f[3], *fe[3], *q = vs;
			int s;
			if (env->nrcpts >= QUEUE_MAX_RCPTS)
				return seterr(err, errlen, EX_DATAERR, "line %d: too many recipients",
					      line);
			r = &env->rcpts[env->nrcpts];
			for (int i = 0; i < 3; i++) {
				f[i] = q;
				while (q < le && *q != ' ')
					q++;
				fe[i] = q;
				if (q < le)
					q++;
			}
			for (s = 0; s < 4; s++)
				if ((size_t)(fe[0] - f[0]) == strlen(rcpt_states[s]) &&
				    memcmp(f[0], rcpt_states[s], (size_t)(fe[0] - f[0])) == 0)
					break;
			if (s == 4)
				goto bad;
			r->state = (enum queue_rcpt_state)s;
			if (fe[1] - f[1] == 5 && memcmp(f[1], "local", 5) == 0)
				r->local = 1;
			else if (!(fe[1] - f[1] == 6 && memcmp(f[1], "remote", 6) == 0))
				goto bad;
			if (token(f[2], fe[2], r->addr, sizeof(r->addr)) != 0)
				goto bad;
			if (q < le) {
				char tmp[QUEUE_MAX_ERROR + 1];
				size_t n = (size_t)(le - q);
				if (n > QUEUE_MAX_ERROR)
					n = QUEUE_MAX_ERROR;
				memcpy(tmp, q, n);
				tmp[n] = '\0';
				queue_set_error(r->error, tmp);
			}
			env->nrcpts++;
		} else {
			return seterr(err, errlen, EX_DATAERR, "line %d: unknown key", line);
		}
#undef KEY
	}
	if (have != 7 || env->nrcpts == 0)
		return seterr(err, errlen, EX_DATAERR, "incomplete envelope");
	return 0;
bad:
	return seterr(err, errlen, EX_DATAERR, "line %d: bad value", line);
}

long long queue_backoff(int attempts)
{
	long long d = QUEUE_FIRST_RETRY;

	for (int i = 1; i < attempts && d < QUEUE_MAX_RETRY; i++)
		d *= 2;
	return d > QUEUE_MAX_RETRY ? QUEUE_MAX_RETRY : d;
}

int queue_id_valid(const char *id)
{
	size_t i;

	for (i = 0; id[i] != '\0'; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'F')))
			return 0;
	return i == QUEUE_ID_LEN;
}

void queue_new_id(char *id)
{
	struct timeval tv;
	unsigned char r[4] = { 0 };
	unsigned long long us;

	gettimeofday(&tv, NULL);
	us = (unsigned long long)tv.tv_sec * 1000000ULL + (unsigned long long)tv.tv_usec;
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		/* getrandom on Linux >= 3.17 does not fail for 4 bytes; pid keeps ids apart */
		unsigned p = (unsigned)getpid();
		memcpy(r, &p, sizeof(r));
	}
	snprintf(id, QUEUE_ID_LEN + 1, "%012llX%02X%02X%02X%02X", us & 0xFFFFFFFFFFFFULL,
		 r[0], r[1], r[2], r[3]);
}

static int path_of(char *out, size_t len, const char *qdir, const char *sub, const char *id,
		   const char *ext)
{
	int n = snprintf(out, len, "%s/%s%s%s%s", qdir, sub, *sub ? "/" : "", id, ext);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int queue_init(const char *state_dir, char *out, size_t outlen, char *err, size_t errlen)
{
	char tmp[4096];
	int rc;

	if (state_dir == NULL)
		return seterr(err, errlen, EX_CONFIG, "state_dir is not set");
	if ((size_t)snprintf(out, outlen, "%s/queue", state_dir) >= outlen ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/queue/tmp", state_dir) >= sizeof(tmp))
		return seterr(err, errlen, EX_CONFIG, "state_dir is too long");
	rc = fsutil_mkdir(out, 0700, err, errlen);
	if (rc == 0)
		rc = fsutil_mkdir(tmp, 0700, err, errlen);
	return rc;
}

int queue_msg_begin(const char *qdir, const char *id, int *fd, char *err, size_t errlen)
{
	char p[4096];

	if (path_of(p, sizeof(p), qdir, "tmp", id, ".msg") != 0)
		return seterr(err, errlen, EX_CONFIG, "queue path too long");
	*fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (*fd < 0)
		return seterr(err, errlen, fsutil_errno_code(errno), "create %s: %s", p,
			      strerror(errno));
	return 0;
}

void queue_msg_abort(const char *qdir, const char *id, int fd)
{
	char p[4096];

	if (fd >= 0)
		close(fd);
	if (path_of(p, sizeof(p), qdir, "tmp", id, ".msg") == 0)
		unlink(p);
}

int queue_msg_commit(const char *qdir, int fd, const struct queue_env *env,
		     char *err, size_t errlen)
{
	char tmsg[4096], msg[4096], tenv[4096], envp[4096];
	char *buf;
	long n;
	int rc, e;

	if (path_of(tmsg, sizeof(tmsg), qdir, "tmp", env->id, ".msg") != 0 ||
	    path_of(msg, sizeof(msg), qdir, "", env->id, ".msg") != 0 ||
	    path_of(tenv, sizeof(tenv), qdir, "tmp", env->id, ".env") != 0 ||
	    path_of(envp, sizeof(envp), qdir, "", env->id, ".env") != 0) {
		queue_msg_abort(qdir, env->id, fd);
		return seterr(err, errlen, EX_CONFIG, "queue path too long");
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		e = errno;
		unlink(tmsg);
		return seterr(err, errlen, EX_IOERR, "fsync %s: %s", tmsg, strerror(e));
	}
	if (rename(tmsg, msg) != 0) {
		e = errno;
		unlink(tmsg);
		return seterr(err, errlen, fsutil_errno_code(e), "rename %s: %s", tmsg, strerror(e));
	}
	buf = malloc(QUEUE_ENV_MAX);
	if (buf == NULL) {
		unlink(msg);
		return seterr(err, errlen, EX_OSERR, "out of memory");
	}
	n = queue_env_format(env, buf, QUEUE_ENV_MAX);
	if (n < 0) {
		free(buf);
		unlink(msg);
		return seterr(err, errlen, EX_SOFTWARE, "envelope too large");
	}
	/* writes the .env and fsyncs the directory, which also persists the .msg rename */
	rc = fsutil_write_atomic(envp, tenv, buf, (size_t)n, 0600, err, errlen);
	free(buf);
	if (rc != 0)
		unlink(msg);
	return rc;
}

int queue_env_read(const char *qdir, const char *id, struct queue_env *env,
		   char *err, size_t errlen)
{
	char p[4096], perr[256];
	char *buf;
	size_t len;
	int rc;

	if (!queue_id_valid(id) || path_of(p, sizeof(p), qdir, "", id, ".env") != 0)
		return seterr(err, errlen, EX_USAGE, "bad queue id");
	rc = fsutil_read_file(p, QUEUE_ENV_MAX, &buf, &len, err, errlen);
	if (rc != 0)
		return rc;
	rc = queue_env_parse(buf, len, env, perr, sizeof(perr));
	free(buf);
	if (rc != 0)
		return seterr(err, errlen, rc, "%s: %s", p, perr);
	if (strcmp(env->id, id) != 0)
		return seterr(err, errlen, EX_DATAERR, "%s: id does not match", p);
	return 0;
}

int queue_env_write(const char *qdir, const struct queue_env *env, char *err, size_t errlen)
{
	char p[4096], t[4096];
	char *buf;
	long n;
	int rc;

	if (path_of(p, sizeof(p), qdir, "", env->id, ".env") != 0 ||
	    path_of(t, sizeof(t), qdir, "tmp", env->id, ".env") != 0)
		return seterr(err, errlen, EX_CONFIG, "queue path too long");
	buf = malloc(QUEUE_ENV_MAX);
	if (buf == NULL)
		return seterr(err, errlen, EX_OSERR, "out of memory");
	n = queue_env_format(env, buf, QUEUE_ENV_MAX);
	rc = n < 0 ? seterr(err, errlen, EX_SOFTWARE, "envelope too large")
		   : fsutil_write_atomic(p, t, buf, (size_t)n, 0600, err, errlen);
	free(buf);
	return rc;
}

int queue_lock(const char *qdir, const char *id, int *fd, char *err, size_t errlen)
{
	char p[4096];

	if (!queue_id_valid(id) || path_of(p, sizeof(p), qdir, "", id, ".msg") != 0)
		return seterr(err, errlen, EX_USAGE, "bad queue id");
	*fd = open(p, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return seterr(err, errlen, fsutil_errno_code(errno), "open %s: %s", p,
			      strerror(errno));
	if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		close(*fd);
		*fd = -1;
		return seterr(err, errlen, e == EWOULDBLOCK ? EX_TEMPFAIL : EX_IOERR,
			      "lock %s: %s", p, strerror(e));
	}
	return 0;
}

int queue_remove(const char *qdir, const char *id, char *err, size_t errlen)
{
	int rc = queue_remove_nosync(qdir, id, err, errlen);

	return rc != 0 ? rc : fsutil_fsync_dir(qdir, err, errlen);
}

int queue_remove_nosync(const char *qdir, const char *id, char *err, size_t errlen)
{
	char p[4096];

	if (path_of(p, sizeof(p), qdir, "", id, ".env") != 0)
		return seterr(err, errlen, EX_CONFIG, "queue path too long");
	if (unlink(p) != 0 && errno != ENOENT)
		return seterr(err, errlen, fsutil_errno_code(errno), "unlink %s: %s", p,
			      strerror(errno));
	path_of(p, sizeof(p), qdir, "", id, ".msg");
	unlink(p);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Ids of files in QDIR ending in EXT. */
static int list_ext(const char *qdir, const char *ext, char ***ids, size_t *n,
		    char *err, size_t errlen)
{
	DIR *d = opendir(qdir);
	struct dirent *de;
	size_t cap = 0, el = strlen(ext);

	*ids = NULL;
	*n = 0;
	if (d == NULL)
		return seterr(err, errlen, fsutil_errno_code(errno), "opendir %s: %s", qdir,
			      strerror(errno));
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		char id[QUEUE_ID_LEN + 1];
		if (l != QUEUE_ID_LEN + el || strcmp(de->d_name + QUEUE_ID_LEN, ext) != 0)
			continue;
		memcpy(id, de->d_name, QUEUE_ID_LEN);
		id[QUEUE_ID_LEN] = '\0';
		if (!queue_id_valid(id))
			continue;
		if (*n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			char **nv = realloc(*ids, nc * sizeof(*nv));
			if (nv == NULL)
				goto oom;
			*ids = nv;
			cap = nc;
		}
		if (((*ids)[*n] = strdup(id)) == NULL)
			goto oom;
		(*n)++;
	}
	closedir(d);
	if (*n > 1)
		qsort(*ids, *n, sizeof(**ids), cmp_str);
	return 0;
oom:
	closedir(d);
	queue_ids_free(*ids, *n);
	*ids = NULL;
	*n = 0;
	return seterr(err, errlen, EX_OSERR, "out of memory");
}

int queue_ids(const char *qdir, char ***ids, size_t *n, char *err, size_t errlen)
{
	return list_ext(qdir, ".env", ids, n, err, errlen);
}

void queue_ids_free(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

void queue_cleanup(const char *qdir, time_t now)
{
	char tdir[4096], p[4096], err[256];
	char **ids;
	size_t n;
	struct dirent *de;
	struct stat st;
	DIR *d;

	if ((size_t)snprintf(tdir, sizeof(tdir), "%s/tmp", qdir) >= sizeof(tdir))
		return;
	if ((d = opendir(tdir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			if ((size_t)snprintf(p, sizeof(p), "%s/%s", tdir, de->d_name) >= sizeof(p))
				continue;
			if (lstat(p, &st) == 0 && S_ISREG(st.st_mode) &&
			    now - st.st_mtime > QUEUE_ORPHAN_AGE)
				unlink(p);
		}
		closedir(d);
	}
	/* a .msg whose .env never came: the server died before its 250 */
	if (list_ext(qdir, ".msg", &ids, &n, err, sizeof(err)) != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		int fd;
		path_of(p, sizeof(p), qdir, "", ids[i], ".env");
		if (access(p, F_OK) == 0 || errno != ENOENT)
			continue;
		if (queue_lock(qdir, ids[i], &fd, err, sizeof(err)) != 0)
			continue;
		path_of(p, sizeof(p), qdir, "", ids[i], ".env");
		if (fstat(fd, &st) == 0 && now - st.st_mtime > QUEUE_ORPHAN_AGE &&
		    access(p, F_OK) != 0) {
			path_of(p, sizeof(p), qdir, "", ids[i], ".msg");
			unlink(p);
		}
		close(fd);
	}
	queue_ids_free(ids, n);
}

static void iso_time(long long t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL) {
		snprintf(buf, len, "-");
		return;
	}
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);	/* UTF-8 passes through */
	}
	fputc('"', f);
}

/* Tab-separated fields must not contain tabs or newlines. */
static void tsv_str(FILE *f, const char *s)
{
	if (*s == '\0') {
		fputc('-', f);
		return;
	}
	for (; *s != '\0'; s++)
		fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, f);
}

int queue_print(const char *qdir, FILE *out, int json, time_t now, char *err, size_t errlen)
{
	struct queue_env *env = malloc(sizeof(*env));
	char **ids;
	size_t n, shown = 0;
	int rc;

	if (env == NULL)
		return seterr(err, errlen, EX_OSERR, "out of memory");
	rc = queue_ids(qdir, &ids, &n, err, errlen);
	if (rc != 0) {
		free(env);
		return rc;
	}
	if (json)
		fputs("[", out);
	for (size_t i = 0; i < n; i++) {
		char arr[32], next[32], e2[256];
		if (queue_env_read(qdir, ids[i], env, e2, sizeof(e2)) != 0)
			continue;	/* finished meanwhile, or unreadable: not a queued message */
		iso_time(env->created, arr, sizeof(arr));
		iso_time(env->next_try > now ? env->next_try : 0, next, sizeof(next));
		if (json) {
			fprintf(out, "%s\n {\"id\": ", shown ? "," : "");
			json_str(out, env->id);
			fprintf(out, ", \"arrival\": \"%s\", \"age\": %lld, \"size\": %lld, "
				"\"sender\": ", arr, (long long)now - env->created, env->size);
			json_str(out, env->sender);
			fputs(", \"user\": ", out);
			json_str(out, env->user);
			fputs(", \"recipients\": [", out);
			for (size_t k = 0; k < env->nrcpts; k++) {
				const struct queue_rcpt *r = &env->rcpts[k];
				fprintf(out, "%s{\"address\": ", k ? ", " : "");
				json_str(out, r->addr);
				fprintf(out, ", \"local\": %s, \"state\": \"%s\", \"error\": ",
					r->local ? "true" : "false", queue_rcpt_state_str(r->state));
				json_str(out, r->error);
				fputs("}", out);
			}
			fprintf(out, "], \"next_retry\": ");
			if (next[0] == '-')
				fputs("null", out);
			else
				fprintf(out, "\"%s\"", next);
			fprintf(out, ", \"attempts\": %d, \"error\": ", env->attempts);
			json_str(out, env->error);
			fputs("}", out);
		} else {
			fprintf(out, "%s\t%s\t%lld\t%lld\t", env->id, arr,
				(long long)now - env->created, env->size);
			tsv_str(out, env->sender);
			fputc('\t', out);
			for (size_t k = 0; k < env->nrcpts; k++) {
				const struct queue_rcpt *r = &env->rcpts[k];
				fprintf(out, "%s%s", k ? "," : "", r->addr);
				if (r->state != QUEUE_RCPT_PENDING)
					fprintf(out, "(%s)", queue_rcpt_state_str(r->state));
			}
			fprintf(out, "\t%s\t%d\t", next, env->attempts);
			tsv_str(out, env->error);
			fputc('\n', out);
		}
		shown++;
	}
	if (json)
		fputs(shown ? "\n]\n" : "]\n", out);
	queue_ids_free(ids, n);
	free(env);
	return 0;
}

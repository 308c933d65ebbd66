/* The queue runner: local delivery, relaying through libcurl, DSNs; see relay.h. */
#include "relay.h"

#include "config.h"
#include "dsn.h"
#include "fsutil.h"
#include "log.h"
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sysexits.h>
#include <unistd.h>

#include <curl/curl.h>

enum stage { ST_CONNECT = 0, ST_EHLO, ST_AUTH, ST_MAIL, ST_RCPT, ST_DATA, ST_POSTDATA };

/* One SMTP transaction to the provider and what its trace told us. */
struct txn {
	int fd;
	long long off, size;
	enum stage stage;
	int rcpt_idx;			/* index of the last RCPT TO sent, -1 */
	char reply[QUEUE_MAX_ERROR + 1];	/* first 4xx/5xx reply line from the provider */
	int caps_seen, caps_utf8;
	long long caps_size;
};

/* Outcome of one transaction. */
enum outcome { OUT_SENT, OUT_ONE_PERM, OUT_ONE_TEMP, OUT_ALL_PERM, OUT_ALL_TEMP };

static size_t read_cb(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct txn *t = arg;
	size_t want = size * nmemb;
	ssize_t r;

	if (t->off >= t->size)
		return 0;
	if ((long long)want > t->size - t->off)
		want = (size_t)(t->size - t->off);
	r = pread(t->fd, buf, want, (off_t)t->off);
	if (r < 0)
		return CURL_READFUNC_ABORT;
	t->off += r;
	return (size_t)r;
}

static int starts(const char *p, size_t n, const char *s)
{
	size_t l = strlen(s);

	return n >= l && strncasecmp(p, s, l) == 0;
}

/*
 * libcurl's protocol trace: commands out tell the stage (never stored:
 * the AUTH line carries the password), replies in are kept for errors.
 */
static int debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *arg)
{
	struct txn *t = arg;

	(void)h;
	if (type == CURLINFO_TEXT && log_verbosity() >= 2) {
		/* libcurl's own notes: connections opened, reused, closed */
		char line[200];
		size_t n = size < sizeof(line) - 1 ? size : sizeof(line) - 1;
		memcpy(line, data, n);
		line[n] = '\0';
		log_debug("curl", "text=%s", log_q(line));
	}
	if (type == CURLINFO_HEADER_OUT) {
		if (starts(data, size, "EHLO") || starts(data, size, "HELO"))
			t->stage = ST_EHLO;
		else if (starts(data, size, "AUTH"))
			t->stage = ST_AUTH;
		else if (starts(data, size, "MAIL FROM"))
			t->stage = ST_MAIL;
		else if (starts(data, size, "RCPT TO")) {
			t->stage = ST_RCPT;
			t->rcpt_idx++;
		} else if (starts(data, size, "DATA"))
			t->stage = ST_DATA;
	} else if (type == CURLINFO_DATA_OUT) {
		t->stage = ST_POSTDATA;
	} else if (type == CURLINFO_HEADER_IN) {
		char line[QUEUE_MAX_ERROR + 1];
		size_t n = size < QUEUE_MAX_ERROR ? size : QUEUE_MAX_ERROR;
		memcpy(line, data, n);
		line[n] = '\0';
		/* the first refusal is the answer; libcurl's QUIT "221" comes after it */
		if (t->reply[0] == '\0' && (line[0] == '4' || line[0] == '5'))
			queue_set_error(t->reply, line);
		if (t->stage == ST_EHLO && n > 4 && strncmp(line, "250", 3) == 0) {
			const char *kw = line + 4;
			t->caps_seen = 1;
			if (strncasecmp(kw, "SMTPUTF8", 8) == 0 && (kw[8] == '\0' || kw[8] == '\r' ||
								      kw[8] == '\n' || kw[8] == ' '))
				t->caps_utf8 = 1;
			else if (strncasecmp(kw, "SIZE", 4) == 0 && (kw[4] == ' ' || kw[4] == '\r'))
				t->caps_size = atoll(kw + 4);
		}
	}
	return 0;
}

static void provider_path(const struct config *cfg, char *out, size_t len, const char *suffix)
{
	snprintf(out, len, "%s/queue/%s", cfg->state_dir ? cfg->state_dir : ".", suffix);
}

int relay_provider_caps(const struct config *cfg, int *smtputf8, long long *size)
{
	char p[4096], err[256], *buf;
	size_t len;
	long long u = 0, s = 0;

	provider_path(cfg, p, sizeof(p), "provider");
	if (fsutil_read_file(p, 4096, &buf, &len, err, sizeof(err)) != 0)
		return -1;
	if (sscanf(buf, "smtputf8 %lld\nsize %lld", &u, &s) != 2) {
		free(buf);
		return -1;
	}
	free(buf);
	*smtputf8 = u != 0;
	*size = s;
	return 0;
}

static void provider_save(const struct config *cfg, const struct txn *t)
{
	char p[4096], tp[4096], buf[128], err[256];
	int u;
	long long s;

	if (!t->caps_seen)
		return;
	if (relay_provider_caps(cfg, &u, &s) == 0 && u == t->caps_utf8 && s == t->caps_size)
		return;
	provider_path(cfg, p, sizeof(p), "provider");
	provider_path(cfg, tp, sizeof(tp), "tmp/provider");
	int n = snprintf(buf, sizeof(buf), "smtputf8 %d\nsize %lld\n", t->caps_utf8, t->caps_size);
	if (fsutil_write_atomic(p, tp, buf, (size_t)n, 0600, err, sizeof(err)) != 0)
		log_warn("provider_caps", "error=%s", log_q(err));
}

struct runner {
	const struct relay_opts *o;
	const struct config *cfg;
	struct relay_stats *st;
	char qdir[4096];
	time_t now;
	CURL *curl;
	int provider_down;		/* a connection-level failure this run */
	unsigned unsynced;		/* removals not yet made durable by a dir fsync */
	char down_error[QUEUE_MAX_ERROR + 1];
};

/*
 * Sends MSG to the recipients IDX[0..n) of ENV in one transaction.  On a
 * single-recipient outcome *which is that recipient's position in IDX.
 */
static enum outcome send_txn(struct runner *r, const struct queue_env *env, int fd,
			     long long size, const size_t *idx, size_t n, size_t *which,
			     char *error)
{
	const struct config_relay *rc = &r->cfg->relay;
	char url[1200], from[SMTP_MAX_ADDR + 3], ebuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *rcpts = NULL;
	struct txn t = { .fd = fd, .size = size, .rcpt_idx = -1 };
	CURLcode res;
	long code = 0;

	if (r->curl == NULL && (r->curl = curl_easy_init()) == NULL) {
		queue_set_error(error, "cannot initialise libcurl");
		return OUT_ALL_TEMP;
	}
	CURL *h = r->curl;
	curl_easy_reset(h);
	snprintf(url, sizeof(url), "%s://%s%s%s:%d/%s",
		 rc->tls == CONFIG_TLS_SMTPS ? "smtps" : "smtp",
		 strchr(rc->host, ':') ? "[" : "", rc->host, strchr(rc->host, ':') ? "]" : "",
		 rc->port, r->cfg->domain ? r->cfg->domain : "localhost");
	snprintf(from, sizeof(from), "<%s>", env->sender);
	for (size_t i = 0; i < n; i++) {
		char to[SMTP_MAX_ADDR + 3];
		struct curl_slist *nl;
		snprintf(to, sizeof(to), "<%s>", env->rcpts[idx[i]].addr);
		if ((nl = curl_slist_append(rcpts, to)) == NULL) {
			curl_slist_free_all(rcpts);
			queue_set_error(error, "out of memory");
			return OUT_ALL_TEMP;
		}
		rcpts = nl;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (rc->ca_file != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, rc->ca_file);
	if (rc->username != NULL) {
		curl_easy_setopt(h, CURLOPT_USERNAME, rc->username);
		curl_easy_setopt(h, CURLOPT_PASSWORD, r->o->password ? r->o->password : "");
	}
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpts);
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(h, CURLOPT_READDATA, &t);
	curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
	/*
	 * [relay] timeout bounds each silence, not the whole transfer: a 50 MB
	 * message on a slow uplink may take minutes and must not fail for ever.
	 * The data may not stall (under 1 byte/s) for that long, and every wait
	 * for a reply is capped too: libcurl's own default (120 s) applies to
	 * the QUIT it sends when it drops a connection that timed out, which a
	 * provider that stalls never answers.
	 */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)(rc->timeout > 0 ? rc->timeout : 60));
	curl_easy_setopt(h, CURLOPT_SERVER_RESPONSE_TIMEOUT,
			 (long)(rc->timeout > 0 ? rc->timeout : 60));
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
	curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, debug_cb);
	curl_easy_setopt(h, CURLOPT_DEBUGDATA, &t);

	res = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(rcpts);
	provider_save(r->cfg, &t);
	if (res == CURLE_OK)
		return OUT_SENT;

	if (code >= 400 && t.reply[0] != '\0') {
		queue_set_error(error, t.reply);
	} else {
		char tmp[QUEUE_MAX_ERROR + CURL_ERROR_SIZE + 8];
		snprintf(tmp, sizeof(tmp), "%s%s%s", curl_easy_strerror(res), ebuf[0] ? ": " : "",
			 ebuf);
		queue_set_error(error, tmp);
	}
	log_debug("relay_txn", "id=%s curl=%d code=%ld stage=%d rcpt=%d error=%s", env->id,
		  (int)res, code, (int)t.stage, t.rcpt_idx, log_q(error));
	if (t.stage == ST_RCPT && code >= 400 && t.rcpt_idx >= 0 && (size_t)t.rcpt_idx < n) {
		*which = (size_t)t.rcpt_idx;
		return code >= 500 ? OUT_ONE_PERM : OUT_ONE_TEMP;
	}
	if ((t.stage == ST_MAIL || t.stage == ST_DATA || t.stage == ST_POSTDATA) &&
	    code >= 500 && code < 600)
		return OUT_ALL_PERM;
	/* connection, TLS, certificate, our credentials (535), 4xx: try later */
	if (t.stage < ST_MAIL || code == 0) {
		r->provider_down = 1;
		queue_set_error(r->down_error, error);
	}
	return OUT_ALL_TEMP;
}

static void relay_remote(struct runner *r, struct queue_env *env, int fd, int *temp,
			 char *last_error)
{
	size_t idx[QUEUE_MAX_RCPTS], n = 0;
	char error[QUEUE_MAX_ERROR + 1];

	for (size_t i = 0; i < env->nrcpts; i++)
		if (!env->rcpts[i].local && env->rcpts[i].state == QUEUE_RCPT_PENDING)
			idx[n++] = i;
	if (n == 0)
		return;
	if (!r->cfg->relay.present || r->provider_down) {
		queue_set_error(error, r->provider_down ? r->down_error : "no [relay] configured");
		for (size_t i = 0; i < n; i++)
			queue_set_error(env->rcpts[idx[i]].error, error);
		snprintf(last_error, QUEUE_MAX_ERROR + 1, "%s", error);
		*temp = 1;
		return;
	}
	while (n > 0) {
		size_t which = 0;
		enum outcome out = send_txn(r, env, fd, env->size, idx, n, &which, error);
		switch (out) {
		case OUT_SENT:
			for (size_t i = 0; i < n; i++) {
				struct queue_rcpt *q = &env->rcpts[idx[i]];
				q->state = QUEUE_RCPT_SENT;
				q->error[0] = '\0';
				r->st->sent++;
				log_info("relayed", "id=%s to=%s host=%s", env->id, log_q(q->addr),
					 log_q(r->cfg->relay.host));
			}
			return;
		case OUT_ONE_PERM:
		case OUT_ONE_TEMP: {
			struct queue_rcpt *q = &env->rcpts[idx[which]];
			queue_set_error(q->error, error);
			if (out == OUT_ONE_PERM) {
				q->state = QUEUE_RCPT_FAILED;
				log_info("rcpt_failed", "id=%s to=%s error=%s", env->id, log_q(q->addr),
					 log_q(error));
			} else {
				*temp = 1;
				snprintf(last_error, QUEUE_MAX_ERROR + 1, "%s", error);
				log_info("rcpt_deferred", "id=%s to=%s error=%s", env->id,
					 log_q(q->addr), log_q(error));
			}
			/* the others were not sent: go again without this one */
			memmove(&idx[which], &idx[which + 1], (n - which - 1) * sizeof(idx[0]));
			n--;
			break;
		}
		case OUT_ALL_PERM:
			for (size_t i = 0; i < n; i++) {
				struct queue_rcpt *q = &env->rcpts[idx[i]];
				q->state = QUEUE_RCPT_FAILED;
				queue_set_error(q->error, error);
			}
			log_info("message_rejected", "id=%s error=%s", env->id, log_q(error));
			return;
		case OUT_ALL_TEMP:
			for (size_t i = 0; i < n; i++)
				queue_set_error(env->rcpts[idx[i]].error, error);
			*temp = 1;
			snprintf(last_error, QUEUE_MAX_ERROR + 1, "%s", error);
			log_info("relay_deferred", "id=%s error=%s", env->id, log_q(error));
			return;
		}
	}
}

static void deliver_local(struct runner *r, struct queue_env *env, int fd, int *temp,
			  char *last_error)
{
	for (size_t i = 0; i < env->nrcpts; i++) {
		struct queue_rcpt *q = &env->rcpts[i];
		char err[512];
		uint32_t uid = 0;
		int rc;
		if (!q->local || q->state != QUEUE_RCPT_PENDING)
			continue;
		rc = relay_local_deliver(r->cfg, q->addr, fd, NULL, 0, &uid, err, sizeof(err));
		if (rc == 0) {
			q->state = QUEUE_RCPT_SENT;
			q->error[0] = '\0';
			r->st->sent++;
			log_info("delivered", "id=%s to=%s folder=INBOX uid=%u", env->id,
				 log_q(q->addr), uid);
		} else if (rc == EX_USAGE || rc == EX_DATAERR) {
			q->state = QUEUE_RCPT_FAILED;
			snprintf(q->error, sizeof(q->error), "5.1.1 local delivery failed: %.250s", err);
		} else {
			*temp = 1;
			snprintf(q->error, sizeof(q->error), "4.2.0 local delivery failed: %.250s", err);
			snprintf(last_error, QUEUE_MAX_ERROR + 1, "%s", q->error);
			log_warn("deliver_deferred", "id=%s to=%s error=%s", env->id, log_q(q->addr),
				 log_q(err));
		}
	}
}

/*
 * Removals of finished messages are made durable together: one directory
 * fsync for up to this many (and at the end of every pass), not one each.
 */
#define RELAY_SYNC_BATCH 64

static void runner_sync(struct runner *r)
{
	char err[512];

	if (r->unsynced == 0)
		return;
	r->unsynced = 0;
	if (fsutil_fsync_dir(r->qdir, err, sizeof(err)) != 0)
		log_err("queue", "error=%s", log_q(err));
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Works on one locked message; 1 if something was deferred. */
static int run_message(struct runner *r, struct queue_env *env, int fd)
{
	char last_error[QUEUE_MAX_ERROR + 1] = "", err[512];
	int temp = 0, pending = 0, failed = 0;

	deliver_local(r, env, fd, &temp, last_error);
	relay_remote(r, env, fd, &temp, last_error);

	if (r->now - env->created >= QUEUE_GIVE_UP) {
		for (size_t i = 0; i < env->nrcpts; i++) {
			struct queue_rcpt *q = &env->rcpts[i];
			char tmp[QUEUE_MAX_ERROR + 64];
			if (q->state != QUEUE_RCPT_PENDING)
				continue;
			snprintf(tmp, sizeof(tmp), "4.4.7 delivery time expired; last error: %s",
				 q->error[0] ? q->error : "none");
			queue_set_error(q->error, tmp);
			q->state = QUEUE_RCPT_FAILED;
		}
		temp = 0;
	}
	for (size_t i = 0; i < env->nrcpts; i++)
		failed |= env->rcpts[i].state == QUEUE_RCPT_FAILED;
	if (failed) {
		int rc = dsn_deliver(r->cfg, env, fd, r->now, err, sizeof(err));
		if (rc == 0) {
			for (size_t i = 0; i < env->nrcpts; i++) {
				if (env->rcpts[i].state == QUEUE_RCPT_FAILED) {
					env->rcpts[i].state = QUEUE_RCPT_BOUNCED;
					r->st->bounced++;
				}
			}
			log_info("dsn", "id=%s to=%s", env->id, log_q(env->user));
		} else {
			log_err("dsn_failed", "id=%s to=%s error=%s", env->id, log_q(env->user),
				log_q(err));
			temp = 1;
			snprintf(last_error, sizeof(last_error), "DSN delivery failed: %.250s", err);
		}
	}
	for (size_t i = 0; i < env->nrcpts; i++) {
		if (env->rcpts[i].state == QUEUE_RCPT_PENDING ||
		    env->rcpts[i].state == QUEUE_RCPT_FAILED) {
			pending++;
			if (env->rcpts[i].state == QUEUE_RCPT_PENDING)
				r->st->deferred++;
		}
	}
	if (pending == 0) {
		if (queue_remove_nosync(r->qdir, env->id, err, sizeof(err)) != 0) {
			log_err("queue", "id=%s error=%s", env->id, log_q(err));
		} else {
			log_info("done", "id=%s", env->id);
			if (++r->unsynced >= RELAY_SYNC_BATCH)
				runner_sync(r);
		}
		return 0;
	}
	env->attempts++;
	env->next_try = (long long)r->now + queue_backoff(env->attempts);
	queue_set_error(env->error, last_error);
	if (queue_env_write(r->qdir, env, err, sizeof(err)) != 0)
		log_err("queue", "id=%s error=%s", env->id, log_q(err));
	log_info("deferred", "id=%s attempts=%d next=%lld error=%s", env->id, env->attempts,
		 env->next_try, log_q(env->error));
	return 1;
}

/*
 * Works on the messages IDS[0..n) that are due, skipping those in the
 * sorted SKIP[0..nskip) (already looked at by this runner).  1 if
 * something was deferred.
 */
static int run_ids(struct runner *r, struct queue_env *env, char **ids, size_t n,
		   char **skip, size_t nskip)
{
	char e2[512];
	int rc, deferred = 0;

	for (size_t i = 0; i < n; i++) {
		int fd;
		if (nskip > 0 && bsearch(&ids[i], skip, nskip, sizeof(*skip), cmp_id) != NULL)
			continue;
		rc = queue_lock(r->qdir, ids[i], &fd, e2, sizeof(e2));
		if (rc == EX_TEMPFAIL) {
			r->st->busy++;
			continue;
		}
		if (rc != 0)
			continue;	/* finished by another runner meanwhile */
		rc = queue_env_read(r->qdir, ids[i], env, e2, sizeof(e2));
		if (rc != 0) {
			if (rc != EX_NOINPUT)
				log_err("queue", "id=%s error=%s", ids[i], log_q(e2));
			close(fd);
			continue;
		}
		if (!r->o->force && env->next_try > (long long)r->now) {
			close(fd);
			continue;
		}
		r->st->messages++;
		deferred |= run_message(r, env, fd);
		close(fd);
	}
	runner_sync(r);
	return deferred;
}

int relay_flush(const struct relay_opts *o, struct relay_stats *st, char *err, size_t errlen)
{
	struct runner r = { .o = o, .cfg = o->cfg, .st = st };
	struct queue_env *env;
	char **ids = NULL;
	size_t n = 0;
	int rc, deferred;

	memset(st, 0, sizeof(*st));
	r.now = o->now ? o->now : time(NULL);
	rc = queue_init(o->cfg->state_dir, r.qdir, sizeof(r.qdir), err, errlen);
	if (rc != 0)
		return rc;
	if (o->only_id == NULL)
		queue_cleanup(r.qdir, r.now);
	if (o->only_id != NULL) {
		if (!queue_id_valid(o->only_id)) {
			snprintf(err, errlen, "bad queue id %s", o->only_id);
			return EX_USAGE;
		}
		ids = malloc(sizeof(*ids));
		if (ids == NULL || (ids[0] = strdup(o->only_id)) == NULL) {
			free(ids);
			snprintf(err, errlen, "out of memory");
			return EX_OSERR;
		}
		n = 1;
	} else if ((rc = queue_ids(r.qdir, &ids, &n, err, errlen)) != 0) {
		return rc;
	}
	env = malloc(sizeof(*env));
	if (env == NULL) {
		queue_ids_free(ids, n);
		snprintf(err, errlen, "out of memory");
		return EX_OSERR;
	}
	deferred = run_ids(&r, env, ids, n, NULL, 0);
	if (r.curl != NULL)
		curl_easy_cleanup(r.curl);
	free(env);
	queue_ids_free(ids, n);
	return deferred ? EX_TEMPFAIL : 0;
}

int relay_runner_trylock(const struct config *cfg)
{
	char p[4096];
	int fd, n;

	if (cfg->state_dir == NULL)
		return -1;
	n = snprintf(p, sizeof(p), "%s/queue/" RELAY_RUNNER_LOCK, cfg->state_dir);
	if (n < 0 || (size_t)n >= sizeof(p))
		return -1;
	fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	/* runner k holds byte k: an open file description lock, inherited by fork() */
	for (int k = 0; k < RELAY_RUNNERS; k++) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = k,
				    .l_len = 1 };
		if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
			return fd;
	}
	close(fd);
	return -1;
}

/* 1 if the sorted OLD[0..nold) lacks one of IDS[0..n). */
static int have_new(char **ids, size_t n, char **old, size_t nold)
{
	for (size_t i = 0; i < n; i++)
		if (nold == 0 || bsearch(&ids[i], old, nold, sizeof(*old), cmp_id) == NULL)
			return 1;
	return 0;
}

/*
 * Waits up to MS for a file renamed into the queue directory (INO watches
 * it); 1 if one came.  Without inotify: 0 at once.
 */
static int linger_wait(int ino, int ms)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct pollfd p = { .fd = ino, .events = POLLIN };
	int got = 0;

	if (ino < 0)
		return 0;
	while (read(ino, buf, sizeof(buf)) > 0)
		got = 1;	/* from before this wait (our own writes among them) */
	if (got)
		return 1;
	if (poll(&p, 1, ms) <= 0)
		return 0;
	while (read(ino, buf, sizeof(buf)) > 0)
		;
	return 1;
}

int relay_run_background(const struct relay_opts *o, int lock_fd, struct relay_stats *st,
			 char *err, size_t errlen)
{
	struct runner r = { .o = o, .cfg = o->cfg, .st = st };
	struct queue_env *env = NULL;
	char **seen = NULL, **ids = NULL;
	size_t nseen = 0, n = 0;
	int rc, deferred = 0, ino = -1;

	memset(st, 0, sizeof(*st));
	rc = queue_init(o->cfg->state_dir, r.qdir, sizeof(r.qdir), err, errlen);
	if (rc == 0 && (env = malloc(sizeof(*env))) == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = EX_OSERR;
	}
	/*
	 * Sessions that queue a message while this runner holds the lock do
	 * not start another: so after each pass look again for ids not seen
	 * yet, and after letting the lock go look once more (a message
	 * committed before the release was seen by that look; one committed
	 * after it finds the lock free and starts its own runner).
	 */
	if (rc == 0) {
		/* before the first look, so that nothing renamed in after it goes unseen */
		ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
		if (ino >= 0 && inotify_add_watch(ino, r.qdir, IN_MOVED_TO) < 0) {
			close(ino);
			ino = -1;
		}
	}
	while (rc == 0) {
		rc = queue_ids(r.qdir, &ids, &n, err, errlen);
		if (rc != 0)
			break;
		if (!have_new(ids, n, seen, nseen)) {
			queue_ids_free(ids, n);
			ids = NULL;
			if (lock_fd < 0)
				break;
			/* keep the provider connection for what the next sessions queue */
			if (linger_wait(ino, RELAY_LINGER_MS))
				continue;
			close(lock_fd);
			lock_fd = -1;
			continue;
		}
		if (lock_fd < 0 && (lock_fd = relay_runner_trylock(o->cfg)) < 0) {
			queue_ids_free(ids, n);
			ids = NULL;
			break;	/* other runners hold every slot: they see it */
		}
		r.now = o->now ? o->now : time(NULL);
		r.provider_down = 0;	/* a new message gets its own attempt */
		deferred |= run_ids(&r, env, ids, n, seen, nseen);
		queue_ids_free(seen, nseen);
		seen = ids;
		nseen = n;
		ids = NULL;
	}
	if (lock_fd >= 0)
		close(lock_fd);
	if (ino >= 0)
		close(ino);
	if (r.curl != NULL)
		curl_easy_cleanup(r.curl);
	free(env);
	queue_ids_free(seen, nseen);
	if (rc != 0)
		return rc;
	return deferred ? EX_TEMPFAIL : 0;
}

/*
 * sync.h: one account — lock, login, folder list and mapping, creation of
 * missing folders on both sides, then sync_folder() for each pair.
 */
#include "sync.h"

#include "folders.h"
#include "fsutil.h"
#include "imap-client.h"
#include "log.h"
#include "mailbox-name.h"
#include "maildir.h"
#include "sync-folder.h"
#include "uidlist.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

int sync_local_root(const struct config *cfg, const struct config_account *a,
		    char *out, size_t outlen, char *err, size_t errlen)
{
	if (cfg->mail_dir == NULL) {
		snprintf(err, errlen, "%s: mail_dir is not set", cfg->path ? cfg->path : "config");
		return EX_CONFIG;
	}
	if (a->username == NULL || strchr(a->username, '/') != NULL ||
	    a->username[0] == '.' || strchr(a->name, '/') != NULL || a->name[0] == '.') {
		snprintf(err, errlen, "[account %s]: account name and username must be valid "
			 "directory names", a->name);
		return EX_CONFIG;
	}
	if ((size_t)snprintf(out, outlen, "%s/%s/%s/mail", cfg->mail_dir, a->name,
			     a->username) >= outlen) {
		snprintf(err, errlen, "[account %s]: mail path too long", a->name);
		return EX_CONFIG;
	}
	return 0;
}

static int mkdirs(const char *path, char *err, size_t errlen)
{
	char buf[PATH_MAX];
	size_t i;

	if (strlen(path) >= sizeof(buf)) {
		snprintf(err, errlen, "%s: path too long", path);
		return EX_CANTCREAT;
	}
	strcpy(buf, path);
	for (i = 1; buf[i]; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		if (fsutil_mkdir(buf, 0700, err, errlen) != 0)
			return EX_CANTCREAT;
		buf[i] = '/';
	}
	return fsutil_mkdir(buf, 0700, err, errlen) != 0 ? EX_CANTCREAT : 0;
}

/* ---- folder list ---- */

struct rlist {
	struct sync_rfolder *v;
	size_t n, cap;
};

static void rlist_free(struct rlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].local);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static struct sync_rfolder *rlist_find(struct rlist *l, const char *name)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0 ||
		    (strcasecmp(name, "INBOX") == 0 && strcasecmp(l->v[i].name, "INBOX") == 0))
			return &l->v[i];
	return NULL;
}

static struct sync_rfolder *rlist_add(struct rlist *l, const char *name)
{
	struct sync_rfolder *f;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct sync_rfolder *n = realloc(l->v, cap * sizeof(*n));

		if (n == NULL)
			return NULL;
		l->v = n;
		l->cap = cap;
	}
	f = &l->v[l->n];
	memset(f, 0, sizeof(*f));
	f->special = -1;
	if ((f->name = strdup(name)) == NULL)
		return NULL;
	l->n++;
	return f;
}

static int list_cb(const struct imap_resp *r, void *ctx)
{
	struct rlist *l = ctx;
	char name[1024];
	struct sync_rfolder *f;
	size_t i;

	if (r->name == NULL || r->ntoks < 2)
		return 0;
	if (strcmp(r->name, "LIST") == 0 && r->ntoks >= 3) {
		const struct imap_tok *t = r->toks;
		size_t ni = t[0].end, si;

		if (t[0].type != IMAP_TOK_LIST || ni >= r->ntoks)
			return 0;
		si = ni;
		ni = t[si].end;
		if (ni >= r->ntoks || imap_tok_str(&t[ni], name, sizeof(name)) < 0)
			return 0;
		f = rlist_find(l, name);
		if (f == NULL && (f = rlist_add(l, name)) == NULL)
			return -1;
		if (t[si].type == IMAP_TOK_STRING && t[si].len == 1)
			f->sep = t[si].s[0];
		for (i = 1; i < t[0].end; i = t[i].end) {
			char a[64];

			if (imap_tok_str(&t[i], a, sizeof(a)) < 0)
				continue;
			if (strcasecmp(a, "\\Noselect") == 0 || strcasecmp(a, "\\NonExistent") == 0)
				f->noselect = 1;
			else if (special_use_from_flag(a) >= 0)
				f->special = special_use_from_flag(a);
		}
	} else if (strcmp(r->name, "STATUS") == 0) {
		const struct imap_tok *t = r->toks;
		size_t li = t[0].end;
		long v;
		unsigned long long x;

		if (imap_tok_str(&t[0], name, sizeof(name)) < 0 || li >= r->ntoks ||
		    t[li].type != IMAP_TOK_LIST)
			return 0;
		f = rlist_find(l, name);
		if (f == NULL)
			return 0;
		f->have_status = 1;
		if ((v = imap_tok_list_get(t, li, "UIDVALIDITY")) >= 0)
			imap_tok_u32(&t[v], &f->uidvalidity);
		if ((v = imap_tok_list_get(t, li, "UIDNEXT")) >= 0)
			imap_tok_u32(&t[v], &f->uidnext);
		if ((v = imap_tok_list_get(t, li, "MESSAGES")) >= 0)
			imap_tok_u32(&t[v], &f->messages);
		if ((v = imap_tok_list_get(t, li, "HIGHESTMODSEQ")) >= 0 &&
		    imap_tok_u64(&t[v], &x) == 0)
			f->highestmodseq = x;
	}
	return 0;
}

static const char *list_cmd(unsigned caps, int with_status)
{
	if (with_status && (caps & IMAP_CAP_LIST_STATUS) && (caps & IMAP_CAP_CONDSTORE))
		return "LIST \"\" \"*\" RETURN (SPECIAL-USE STATUS (UIDVALIDITY UIDNEXT MESSAGES "
			"HIGHESTMODSEQ))";
	if ((caps & IMAP_CAP_LIST_EXTENDED) && (caps & IMAP_CAP_SPECIAL_USE))
		return "LIST \"\" \"*\" RETURN (SPECIAL-USE)";
	return "LIST \"\" \"*\"";
}

static int list_remote(struct imap_client *cl, int with_status, struct rlist *l,
		       char *err, size_t errlen)
{
	return imap_client_cmd(cl, list_cmd(imap_client_caps(cl), with_status), list_cb, l,
			       NULL, err, errlen);
}

/* Reads the password file and connects (TLS, greeting); *pw is freed with secret_free(). */
static int connect_account(const struct config_account *a, int debug, struct imap_client **out,
			   char **pw, char *err, size_t errlen)
{
	struct imap_client_opts o = {
		.host = a->host, .port = a->port, .ca_file = a->ca_file,
		.timeout = a->timeout, .debug = debug,
		.tls = a->tls == CONFIG_TLS_STARTTLS ? IMAP_TLS_STARTTLS : IMAP_TLS_IMAPS,
	};
	char e2[512];
	int rc;

	*out = NULL;
	*pw = NULL;
	if (a->password_file == NULL) {
		snprintf(err, errlen, "[account %s]: password_file is not set", a->name);
		return EX_CONFIG;
	}
	rc = config_read_secret(a->password_file, pw, e2, sizeof(e2));
	if (rc != 0) {
		snprintf(err, errlen, "[account %s]: %s", a->name, e2);
		return rc == EX_NOINPUT ? EX_CONFIG : rc;
	}
	rc = imap_client_connect(&o, out, e2, sizeof(e2));
	if (rc != 0) {
		secret_free(*pw);
		*pw = NULL;
		snprintf(err, errlen, "[account %s]: %s", a->name, e2);
		return rc;
	}
	return 0;
}

static int login_refused(const struct config_account *a, int rc, const char *why,
			 struct imap_client **cl, char *err, size_t errlen)
{
	snprintf(err, errlen, "[account %s]: login as %s refused: %.300s", a->name,
		 a->username, why);
	imap_client_free(*cl);
	*cl = NULL;
	return rc;
}

int sync_connect_login(const struct config_account *a, int debug, struct imap_client **out,
		       char *err, size_t errlen)
{
	char *pw, e2[512];
	int rc;

	if ((rc = connect_account(a, debug, out, &pw, err, errlen)) != 0)
		return rc;
	rc = imap_client_login(*out, a->username, pw, e2, sizeof(e2));
	secret_free(pw);
	if (rc != 0)
		return login_refused(a, rc, e2, out, err, errlen);
	return 0;
}

static const char *why_name(const struct sync_rfolder *f)
{
	if (f->local == NULL)
		return "skipped";
	switch (f->special_by) {
	case 1: return "config";
	case 2: return "special-use";
	case 3: return "common-name";
	default: return "name";
	}
}

int sync_print_remote(const struct config *cfg, const struct config_account *a, FILE *out,
		      int debug, char *err, size_t errlen)
{
	struct imap_client *cl;
	struct rlist l = { 0 };
	size_t i;
	int rc;

	(void)cfg;
	if ((rc = sync_connect_login(a, debug, &cl, err, errlen)) != 0)
		return rc;
	rc = list_remote(cl, 0, &l, err, errlen);
	if (rc == 0) {
		sync_map_folders(a, l.v, l.n);
		for (i = 0; i < l.n; i++) {
			char u8[2048], lu[2048];
			const struct sync_rfolder *f = &l.v[i];

			if (mutf7_to_utf8(f->name, u8, sizeof(u8)) != 0)
				snprintf(u8, sizeof(u8), "%s", f->name);
			if (f->local == NULL || mutf7_to_utf8(f->local, lu, sizeof(lu)) != 0)
				snprintf(lu, sizeof(lu), "%s", f->local ? f->local : "-");
			fprintf(out, "%s\t%s%s\t%s\t%s\n", u8,
				f->noselect ? "\\Noselect " : "",
				f->special >= 0 ? special_use_flag[f->special] :
				(f->noselect ? "" : "-"), lu, why_name(f));
		}
	}
	rlist_free(&l);
	imap_client_free(cl);
	return rc;
}

/* The provider name for a local-only folder: '/' becomes the separator. */
static int remote_from_local(const char *local, char sep, char *out, size_t outlen)
{
	size_t i, n = strlen(local);

	if (n + 1 > outlen)
		return -1;
	for (i = 0; i < n; i++) {
		if (sep != '/' && local[i] == sep)
			return -1;
		out[i] = local[i] == '/' ? (sep ? sep : '/') : local[i];
	}
	out[n] = '\0';
	return 0;
}

/*
 * 1 when DIR already has cur/ new/ tmp/ and a uidlist: maildir_folder_init()
 * would only take the lock, parse the uidlist and fsync the directory.
 */
static int folder_ready(const char *dir)
{
	static const char *const sub[] = { "cur", "new", "tmp", UIDLIST_NAME };
	char p[PATH_MAX + 32];
	struct stat sb;
	size_t i;

	for (i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, sub[i]);
		if (stat(p, &sb) != 0)
			return 0;
	}
	return 1;
}

static int ensure_local(const char *root, const char *name, char *err, size_t errlen)
{
	char dir[PATH_MAX], cur[PATH_MAX + 8];
	struct stat sb;
	int rc;

	if (mailbox_name_is_inbox(name))
		return folder_ready(root) ? 0 : maildir_folder_init(root, err, errlen);
	if ((rc = folder_dir(root, name, dir, sizeof(dir), err, errlen)) != 0)
		return rc;
	snprintf(cur, sizeof(cur), "%s/cur", dir);
	if (stat(cur, &sb) == 0)
		return 0;
	rc = folder_create(root, name, err, errlen);
	if (rc == 0 || stat(cur, &sb) == 0)
		return 0;
	if ((rc = mkdirs(dir, err, errlen)) != 0)
		return rc;
	return maildir_folder_init(dir, err, errlen);
}

long long sync_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The provider half of a run's start: connect, log in, ENABLE QRESYNC and
 * LIST-STATUS.  It runs in a thread while the caller does the local half
 * (mail root, local folder list), so a no-change run costs the provider's
 * handshakes and not their sum with our disk work.  It logs nothing unless
 * debug is on, and then it is run without a thread (log_q() is not
 * thread-safe).
 *
 * With the capabilities the provider had after the last login (the
 * "caps" file of the state directory), ENABLE and LIST go out right
 * behind the login, in the same write: no round trip of their own.
 * Should the provider offer something else now, what was asked on the
 * old assumption is asked again the right way, and the file is updated.
 */
struct remote_start {
	const struct config_account *a;
	int debug;
	unsigned cached_caps;		/* 0: none known */
	struct imap_client *cl;
	unsigned caps;			/* after login; QRESYNC only when enabled */
	unsigned login_caps;		/* after login, as offered */
	struct rlist l;
	long long ms_login, ms_list;
	int rc;
	char err[512];
};

static int want_qresync(unsigned caps)
{
	return (caps & IMAP_CAP_QRESYNC) && (caps & IMAP_CAP_ENABLE);
}

/*
 * Reads the answers to ENABLE (tag_en, may be "") and LIST: *enabled, and
 * *list_rc the LIST's result.  Returns 0, or a code when the connection is gone.
 */
static int remote_answers(struct remote_start *r, const char *tag_en, const char *tag_ls,
			  int *enabled, int *list_rc)
{
	const struct imap_resp *fin = NULL;
	char e2[512];
	int rc;

	*enabled = 0;
	if (tag_en[0] != '\0') {
		rc = imap_client_wait(r->cl, tag_en, NULL, NULL, &fin, e2, sizeof(e2));
		/* no tagged answer at all (a timeout): not a NO, the connection is gone */
		if (rc == EX_UNAVAILABLE || rc == EX_PROTOCOL || (rc != 0 && fin == NULL)) {
			snprintf(r->err, sizeof(r->err), "%s", e2);
			return rc;
		}
		*enabled = rc == 0;
	}
	*list_rc = imap_client_wait(r->cl, tag_ls, list_cb, &r->l, NULL, r->err, sizeof(r->err));
	return *list_rc == EX_UNAVAILABLE ? EX_UNAVAILABLE : 0;
}

static void *remote_start_run(void *arg)
{
	struct remote_start *r = arg;
	long long t0 = sync_now_ms();
	char tag_in[16], tag_en[16] = "", tag_ls[16], e2[512], *pw;
	const char *sent_list = NULL;
	int enabled = 0, list_rc = -1, have_caps, rc;

	if ((r->rc = connect_account(r->a, r->debug, &r->cl, &pw, r->err, sizeof(r->err))) != 0)
		return NULL;
	rc = imap_client_login_send(r->cl, r->a->username, pw, tag_in, e2, sizeof(e2));
	secret_free(pw);
	if (rc != 0) {
		r->rc = login_refused(r->a, rc, e2, &r->cl, r->err, sizeof(r->err));
		return NULL;
	}
	if (r->cached_caps != 0) {
		if (want_qresync(r->cached_caps))
			imap_client_send(r->cl, "ENABLE QRESYNC", tag_en);
		sent_list = list_cmd(r->cached_caps, 1);
		imap_client_send(r->cl, sent_list, tag_ls);
	}
	rc = imap_client_login_finish(r->cl, tag_in, &have_caps, e2, sizeof(e2));
	if (rc != 0) {
		r->rc = login_refused(r->a, rc, e2, &r->cl, r->err, sizeof(r->err));
		return NULL;
	}
	r->ms_login = sync_now_ms() - t0;
	if (sent_list != NULL &&
	    (r->rc = remote_answers(r, tag_en, tag_ls, &enabled, &list_rc)) != 0)
		return NULL;
	if (!have_caps && (r->rc = imap_client_capability(r->cl, r->err, sizeof(r->err))) != 0)
		return NULL;
	r->caps = r->login_caps = imap_client_caps(r->cl);
	if (sent_list == NULL || strcmp(sent_list, list_cmd(r->caps, 1)) != 0 || list_rc != 0 ||
	    (want_qresync(r->caps) && tag_en[0] == '\0')) {
		/* nothing cached, or not what the provider offers now */
		rlist_free(&r->l);
		tag_en[0] = '\0';
		if (want_qresync(r->caps) && !enabled)
			imap_client_send(r->cl, "ENABLE QRESYNC", tag_en);
		imap_client_send(r->cl, list_cmd(r->caps, 1), tag_ls);
		if ((r->rc = remote_answers(r, tag_en, tag_ls, &rc, &list_rc)) != 0)
			return NULL;
		enabled |= rc;
		if ((r->rc = list_rc) != 0)
			return NULL;
	}
	if (!want_qresync(r->caps) || !enabled)
		r->caps &= ~(unsigned)IMAP_CAP_QRESYNC;
	r->ms_list = sync_now_ms() - t0 - r->ms_login;
	return NULL;
}

/*
 * The provider half of a run's start on a session kept from an earlier run
 * (struct sync_session): LIST-STATUS, and ENABLE QRESYNC ahead of it when
 * the session has not had it yet.  0, or -1 when the session is gone (it is
 * then freed and r is as before: the caller logs in afresh).
 */
static int remote_reuse(struct remote_start *r, struct sync_session *keep)
{
	char tag_en[16] = "", tag_ls[16];
	int enabled = 0, list_rc = -1, rc;
	long long t0 = sync_now_ms();

	r->cl = keep->cl;
	keep->cl = NULL;
	r->caps = r->login_caps = imap_client_caps(r->cl);
	if (want_qresync(r->caps) && !keep->qresync)
		imap_client_send(r->cl, "ENABLE QRESYNC", tag_en);
	imap_client_send(r->cl, list_cmd(r->caps, 1), tag_ls);
	rc = remote_answers(r, tag_en, tag_ls, &enabled, &list_rc);
	if (rc == 0 && list_rc == 0) {
		keep->qresync |= enabled;
		if (!want_qresync(r->caps) || !keep->qresync)
			r->caps &= ~(unsigned)IMAP_CAP_QRESYNC;
		r->ms_list = sync_now_ms() - t0;
		return 0;
	}
	log_info("session_lost", "account=%s error=%s action=login", r->a->name, log_q(r->err));
	imap_client_free(r->cl);
	r->cl = NULL;
	keep->qresync = 0;
	rlist_free(&r->l);
	r->err[0] = '\0';
	return -1;
}

void sync_session_close(struct sync_session *s)
{
	if (s == NULL)
		return;
	imap_client_free(s->cl);	/* LOGOUT */
	s->cl = NULL;
	s->qresync = 0;
}

/*
 * After a run: leaves RUN's session in KEEP when it is sound and can be
 * left with nothing selected (UNSELECT: a CLOSE would expunge), else ends it.
 */
static void session_keep(struct sync_run *run, struct sync_session *keep, int enabled)
{
	char e[256];

	if (keep != NULL && run->cl != NULL && imap_client_alive(run->cl) &&
	    (!run->selected ||
	     ((imap_client_caps(run->cl) & IMAP_CAP_UNSELECT) &&
	      imap_client_cmd(run->cl, "UNSELECT", NULL, NULL, NULL, e, sizeof(e)) == 0))) {
		keep->cl = run->cl;
		keep->qresync = enabled;
		run->cl = NULL;
		return;
	}
	imap_client_free(run->cl);
	run->cl = NULL;
}

/* The provider's capabilities after the last login, or 0. */
static unsigned caps_cache_read(const char *statedir)
{
	char p[PATH_MAX + 8], buf[32];
	unsigned long v = 0;
	ssize_t n;
	int fd;

	snprintf(p, sizeof(p), "%s/caps", statedir);
	if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	v = strtoul(buf, NULL, 16);
	return (unsigned)v;
}

static void caps_cache_write(const char *statedir, unsigned caps)
{
	char p[PATH_MAX + 8], tmp[PATH_MAX + 16], buf[32], e[256];
	int n = snprintf(buf, sizeof(buf), "%x\n", caps);

	snprintf(p, sizeof(p), "%s/caps", statedir);
	snprintf(tmp, sizeof(tmp), "%s/caps.tmp", statedir);
	if (fsutil_write_atomic(p, tmp, buf, (size_t)n, 0600, e, sizeof(e)) != 0)
		log_warn("caps_cache", "error=%s", log_q(e));	/* only costs a round trip */
}

int sync_account(const struct config *cfg, const struct config_account *a,
		 const struct sync_opts *o, struct sync_stats *st, struct sync_session *keep,
		 char *err, size_t errlen)
{
	struct sync_run run = { .cfg = cfg, .a = a, .o = o, .st = st };
	struct remote_start rs = { .a = a, .debug = o->debug };
	struct rlist l = { 0 };
	struct folder_list fl = { 0 };
	char lockpath[PATH_MAX + 8], e2[512];
	char sep = '/';
	int lockfd = -1, rc, worst = 0, have_fl, threaded, reused = 0;
	long long t0 = sync_now_ms(), ms_local, ms_wait;
	unsigned long long prev_msgs = 0;
	pthread_t th;
	size_t i;

	if ((rc = sync_local_root(cfg, a, run.root, sizeof(run.root), err, errlen)) != 0)
		return rc;
	if (cfg->state_dir == NULL) {
		snprintf(err, errlen, "%s: state_dir is not set", cfg->path ? cfg->path : "config");
		return EX_CONFIG;
	}
	snprintf(run.statedir, sizeof(run.statedir), "%s/pull/%s", cfg->state_dir, a->name);
	if ((rc = mkdirs(run.statedir, err, errlen)) != 0)
		return rc;
	snprintf(lockpath, sizeof(lockpath), "%s/.lock", run.statedir);
	lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lockfd < 0) {
		snprintf(err, errlen, "%s: %s", lockpath, strerror(errno));
		return EX_CANTCREAT;
	}
	if (flock(lockfd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, errlen, "[account %s]: another mail-pull run holds %s", a->name,
			 lockpath);
		close(lockfd);
		return EX_TEMPFAIL;
	}
	rs.cached_caps = caps_cache_read(run.statedir);
	if (keep != NULL && keep->cl != NULL && remote_reuse(&rs, keep) == 0) {
		threaded = 0;
		reused = 1;
		t0 = sync_now_ms();	/* local_ms: the local half only */
	} else {
		threaded = !o->debug && pthread_create(&th, NULL, remote_start_run, &rs) == 0;
		if (!threaded)
			remote_start_run(&rs);
	}
	/* the local half, while the provider answers */
	if (!o->dry_run &&
	    ((rc = mkdirs(run.root, err, errlen)) != 0 ||
	     (!folder_ready(run.root) && (rc = maildir_folder_init(run.root, err, errlen)) != 0))) {
		if (threaded)
			pthread_join(th, NULL);
		run.cl = rs.cl;
		l = rs.l;
		goto out;
	}
	have_fl = folders_list(run.root, &fl, e2, sizeof(e2)) == 0;
	ms_local = sync_now_ms() - t0;
	if (threaded)
		pthread_join(th, NULL);
	ms_wait = sync_now_ms() - t0 - ms_local;
	run.cl = rs.cl;
	run.caps = rs.caps;
	l = rs.l;
	if (rs.rc != 0) {
		snprintf(err, errlen, "%s", rs.err);
		rc = rs.rc;
		goto out;
	}
	if (rs.login_caps != rs.cached_caps && !o->dry_run)
		caps_cache_write(run.statedir, rs.login_caps);
	log_debug("sync_start", "account=%s login_ms=%lld list_ms=%lld local_ms=%lld "
		  "waited_ms=%lld pipelined=%d session=%s", a->name, rs.ms_login, rs.ms_list,
		  ms_local, ms_wait, rs.cached_caps == rs.login_caps, reused ? "kept" : "new");
	for (i = 0; i < l.n; i++)
		if (l.v[i].sep != 0) {
			sep = l.v[i].sep;
			break;
		}
	sync_map_folders(a, l.v, l.n);

	/* Create Both: local folders the provider lacks */
	if (have_fl) {
		for (i = 0; i < fl.n; i++) {
			char rname[1024], q[2100], cmd[2200];
			struct sync_rfolder *f;
			size_t k;

			if (!fl.v[i].selectable || mailbox_name_is_inbox(fl.v[i].name))
				continue;
			for (k = 0; k < l.n; k++)
				if (l.v[k].local != NULL && strcmp(l.v[k].local, fl.v[i].name) == 0)
					break;
			if (k < l.n)
				continue;
			if (remote_from_local(fl.v[i].name, sep, rname, sizeof(rname)) < 0 ||
			    imap_quote_astring(rname, q, sizeof(q)) < 0) {
				log_warn("folder_skip", "account=%s folder=%s reason=%s", a->name,
					 log_q(fl.v[i].name), "not-a-provider-name");
				continue;
			}
			if (rlist_find(&l, rname) != NULL)
				continue;	/* exists there but is not synced */
			log_info("folder_create", "account=%s side=provider folder=%s", a->name,
				 log_q(rname));
			if (!o->dry_run) {
				snprintf(cmd, sizeof(cmd), "CREATE %s", q);
				rc = imap_client_cmd(run.cl, cmd, NULL, NULL, NULL, e2, sizeof(e2));
				if (rc == EX_UNAVAILABLE || rc == EX_PROTOCOL) {
					snprintf(err, errlen, "[account %s]: %s", a->name, e2);
					goto out;
				}
				if (rc != 0) {
					log_warn("folder_create_failed", "account=%s folder=%s "
						 "error=%s", a->name, log_q(rname), log_q(e2));
					worst = EX_TEMPFAIL;
					continue;
				}
			}
			st->folders_created++;
			if ((f = rlist_add(&l, rname)) == NULL ||
			    (f->local = strdup(fl.v[i].name)) == NULL) {
				snprintf(err, errlen, "out of memory");
				rc = EX_OSERR;
				goto out;
			}
			f->sep = sep;
		}
	}

	run.t0_ms = t0;
	for (i = 0; i < l.n; i++)
		if (l.v[i].local != NULL) {
			run.nfolders++;
			run.msgs_all += l.v[i].messages;
		}
	for (i = 0; i < l.n; i++) {
		const struct sync_rfolder *f = &l.v[i];

		if (o->stop != NULL && *o->stop)
			break;
		if (f->local == NULL)
			continue;
		run.msgs_before += prev_msgs;	/* the folders before this one */
		prev_msgs = f->messages;
		run.folder_i++;
		if (!o->dry_run) {
			char dir[PATH_MAX];

			if (!mailbox_name_is_inbox(f->local) &&
			    (folder_dir(run.root, f->local, dir, sizeof(dir), e2, sizeof(e2)) != 0 ||
			     access(dir, F_OK) != 0))
				st->folders_created++;
			if ((rc = ensure_local(run.root, f->local, e2, sizeof(e2))) != 0) {
				log_warn("folder_create_failed", "account=%s folder=%s error=%s",
					 a->name, log_q(f->local), log_q(e2));
				worst = EX_TEMPFAIL;
				continue;
			}
		}
		rc = sync_folder(&run, f, e2, sizeof(e2));
		if (rc == EX_UNAVAILABLE || rc == EX_PROTOCOL) {
			snprintf(err, errlen, "[account %s] folder %s: %s", a->name, f->name, e2);
			goto out;
		}
		if (rc != 0) {
			log_warn("folder_failed", "account=%s folder=%s error=%s", a->name,
				 log_q(f->name), log_q(e2));
			if (worst == 0) {
				worst = EX_TEMPFAIL;
				snprintf(err, errlen, "[account %s] folder %s: %s", a->name,
					 f->name, e2);
			}
		}
	}
	rc = (o->stop != NULL && *o->stop) ? EX_TEMPFAIL : worst;
	if (rc == EX_TEMPFAIL && o->stop != NULL && *o->stop)
		snprintf(err, errlen, "[account %s]: stopped by a signal; state saved", a->name);
out:
	folders_list_free(&fl);
	rlist_free(&l);
	session_keep(&run, keep, (run.caps & IMAP_CAP_QRESYNC) != 0);
	close(lockfd);
	return rc;
}

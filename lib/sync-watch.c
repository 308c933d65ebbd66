/*
 * mail-pull --watch (sync.h: sync_watch): IMAP IDLE on each provider's
 * INBOX plus inotify on each local INBOX, instead of a polling loop.
 */
#include "sync.h"

#include "imap-client.h"
#include "log.h"
#include "sync-folder.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define WATCH_MAX 64		/* accounts watched at once */
#define IDLE_MAX 1740		/* RFC 9051: re-issue IDLE within 29 minutes */

struct watch_acct {
	const struct config_account *a;
	struct imap_client *cl;	/* NULL: provider not watched (no IDLE, failed) */
	struct sync_session *keep;	/* where the session goes afterwards, or NULL */
	int qresync;		/* QRESYNC enabled on cl (a kept session) */
	char tag[16];
};

static int starts_idle(struct watch_acct *w, const struct sync_opts *o)
{
	const struct imap_resp *r;
	char e[512];
	int rc;

	if (w->keep != NULL && w->keep->cl != NULL) {
		/* the session the last sync left: no new login, unless it is gone */
		w->cl = w->keep->cl;
		w->qresync = w->keep->qresync;
		w->keep->cl = NULL;
		w->keep->qresync = 0;
		rc = imap_client_cmd(w->cl, "EXAMINE INBOX", NULL, NULL, NULL, e, sizeof(e));
		if (rc == 0)
			goto idle;
		log_info("session_lost", "account=%s error=%s action=login", w->a->name, log_q(e));
		imap_client_free(w->cl);
		w->cl = NULL;
		w->qresync = 0;
	}
	if ((rc = sync_connect_login(w->a, o->debug, &w->cl, e, sizeof(e))) != 0)
		goto fail;
	if (!(imap_client_caps(w->cl) & IMAP_CAP_IDLE)) {
		snprintf(e, sizeof(e), "the provider does not offer IDLE");
		rc = EX_UNAVAILABLE;
		goto fail;
	}
	if ((rc = imap_client_cmd(w->cl, "EXAMINE INBOX", NULL, NULL, NULL, e, sizeof(e))) != 0)
		goto fail;
idle:
	imap_client_send(w->cl, "IDLE", w->tag);
	for (;;) {
		if ((rc = imap_client_read(w->cl, &r, e, sizeof(e))) != 0)
			goto fail;
		if (r->kind == IMAP_RESP_CONTINUE)
			return 0;
		if (r->kind == IMAP_RESP_TAGGED) {
			snprintf(e, sizeof(e), "IDLE refused: %s", r->text);
			rc = EX_UNAVAILABLE;
			goto fail;
		}
	}
fail:
	log_warn("watch_provider", "account=%s error=%s action=interval", w->a->name, log_q(e));
	imap_client_free(w->cl);
	w->cl = NULL;
	return rc;
}

/*
 * Ends the IDLE; the session goes to w->keep for the next sync when it is
 * sound (CLOSE after EXAMINE deselects and expunges nothing).
 */
static void ends_idle(struct watch_acct *w)
{
	char e[256];

	if (w->cl == NULL)
		return;
	if (imap_client_send_line(w->cl, "DONE", e, sizeof(e)) == 0 &&
	    imap_client_wait(w->cl, w->tag, NULL, NULL, NULL, e, sizeof(e)) == 0 &&
	    w->keep != NULL && w->keep->cl == NULL &&
	    imap_client_cmd(w->cl, "CLOSE", NULL, NULL, NULL, e, sizeof(e)) == 0) {
		w->keep->cl = w->cl;
		w->keep->qresync = w->qresync;
		w->cl = NULL;
		return;
	}
	imap_client_free(w->cl);
	w->cl = NULL;
}

/* 1 when a provider response means INBOX changed (or the session ended). */
static int provider_changed(struct watch_acct *w)
{
	const struct imap_resp *r;
	char e[256];

	while (imap_client_ready(w->cl)) {
		if (imap_client_read(w->cl, &r, e, sizeof(e)) != 0)
			return 1;
		if (r->kind == IMAP_RESP_TAGGED || r->status == IMAP_ST_BYE)
			return 1;
		if (r->name != NULL && (strcmp(r->name, "EXISTS") == 0 ||
					strcmp(r->name, "EXPUNGE") == 0 ||
					strcmp(r->name, "FETCH") == 0 ||
					strcmp(r->name, "VANISHED") == 0))
			return 1;
	}
	return 0;
}

int sync_watch(const struct config *cfg, const struct config_account *const *accts, size_t n,
	       const struct sync_opts *o, int max_wait, struct sync_session *const *keep,
	       char *err, size_t errlen)
{
	struct watch_acct w[WATCH_MAX];
	struct pollfd pf[WATCH_MAX + 1];
	const char *why = "timeout";
	size_t i, nw = n < WATCH_MAX ? n : WATCH_MAX, watched = 0;
	int ino, changed = 0;
	time_t end;

	if (max_wait <= 0 || max_wait > IDLE_MAX)
		max_wait = IDLE_MAX;
	ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ino < 0) {
		snprintf(err, errlen, "inotify: %s", strerror(errno));
		return EX_OSERR;
	}
	for (i = 0; i < nw; i++) {
		char root[4096], sub[4200], e[512];
		const char *const subs[] = { "new", "cur" };
		size_t k;

		memset(&w[i], 0, sizeof(w[i]));
		w[i].a = accts[i];
		w[i].keep = keep != NULL ? keep[i] : NULL;
		if (sync_local_root(cfg, accts[i], root, sizeof(root), e, sizeof(e)) == 0) {
			for (k = 0; k < 2; k++) {
				snprintf(sub, sizeof(sub), "%s/%s", root, subs[k]);
				if (inotify_add_watch(ino, sub, IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM |
						      IN_DELETE | IN_ONLYDIR) >= 0)
					watched++;
			}
		}
		if (starts_idle(&w[i], o) == 0)
			watched++;
	}
	if (watched == 0) {
		snprintf(err, errlen, "nothing to watch (no IDLE, no local INBOX)");
		close(ino);
		return EX_UNAVAILABLE;
	}
	log_debug("watch", "accounts=%zu max_wait=%d", nw, max_wait);
	end = time(NULL) + max_wait;
	while (!changed && !(o->stop != NULL && *o->stop) && time(NULL) < end) {
		size_t np = 0;
		int r;

		for (i = 0; i < nw && !changed; i++)
			if (w[i].cl != NULL && provider_changed(&w[i])) {
				changed = 1;
				why = "provider";
			}
		if (changed)
			break;
		pf[np].fd = ino;
		pf[np++].events = POLLIN;
		for (i = 0; i < nw; i++)
			if (w[i].cl != NULL) {
				pf[np].fd = imap_client_fd(w[i].cl);
				pf[np++].events = POLLIN;
			}
		r = poll(pf, np, 1000);
		if (r < 0 && errno != EINTR)
			break;
		if (r > 0 && pf[0].revents) {
			char buf[4096] __attribute__((aligned(8)));

			while (read(ino, buf, sizeof(buf)) > 0)
				;
			changed = 1;
			why = "local";
		}
	}
	if (changed && strcmp(why, "local") == 0)
		usleep(100000);	/* let a burst of deliveries land in one sync */
	for (i = 0; i < nw; i++)
		ends_idle(&w[i]);
	close(ino);
	log_debug("watch_wake", "reason=%s", (o->stop != NULL && *o->stop) ? "signal" : why);
	return 0;
}

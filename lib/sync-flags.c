/*
 * Flags of one folder pair (sync-folder.h): conversion between IMAP flag
 * lists, Maildir flags and the folder's keyword letters; the walk over the
 * known pairs that applies the merge rule of sync.h; flag pushes.
 */
#include "sync-folder.h"

#include "log.h"
#include "maildir-add.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

static const struct { const char *name; unsigned bit; } sysflags[] = {
	{ "\\Draft", MAILDIR_FLAG_DRAFT }, { "\\Flagged", MAILDIR_FLAG_FLAGGED },
	{ "$Forwarded", MAILDIR_FLAG_PASSED }, { "\\Answered", MAILDIR_FLAG_REPLIED },
	{ "\\Seen", MAILDIR_FLAG_SEEN }, { "\\Deleted", MAILDIR_FLAG_TRASHED },
};

int sync_flags_keyword(struct sync_fctx *c, const char *name)
{
	int i, idx;
	char e[256];

	if ((i = maildir_keywords_lookup(&c->kw, name)) >= 0)
		return i;
	if (c->run->o->dry_run)
		return -1;
	if (maildir_keywords_ensure(c->dir, name, &idx, e, sizeof(e)) != 0) {
		log_warn("keyword_dropped", "folder=%s keyword=%s error=%s", log_q(c->rf->name),
			 log_q(name), log_q(e));
		return -1;
	}
	if (idx >= 0 && idx < MAILDIR_KEYWORDS_MAX && c->kw.names[idx] == NULL)
		c->kw.names[idx] = strdup(name);
	return idx;
}

struct sync_flags sync_flags_from_list(struct sync_fctx *c, const struct imap_tok *t,
				       size_t l)
{
	struct sync_flags f = { 0, 0 };
	size_t i, k;

	if (t[l].type != IMAP_TOK_LIST)
		return f;
	for (i = l + 1; i < t[l].end; i = t[i].end) {
		char name[256];

		if (imap_tok_str(&t[i], name, sizeof(name)) < 0)
			continue;
		for (k = 0; k < sizeof(sysflags) / sizeof(sysflags[0]); k++)
			if (strcasecmp(name, sysflags[k].name) == 0)
				break;
		if (k < sizeof(sysflags) / sizeof(sysflags[0])) {
			f.sys |= sysflags[k].bit;
		} else if (name[0] != '\\') {
			int idx = sync_flags_keyword(c, name);

			if (idx >= 0)
				f.kw |= 1u << idx;
		}
	}
	return f;
}

void sync_flags_to_str(const struct sync_fctx *c, struct sync_flags f, char *out,
		       size_t len)
{
	size_t o = 0, k;

	out[0] = '\0';
	for (k = 0; k < sizeof(sysflags) / sizeof(sysflags[0]); k++)
		if (f.sys & sysflags[k].bit)
			o += (size_t)snprintf(out + o, o < len ? len - o : 0, "%s%s", o ? " " : "",
					      sysflags[k].name);
	for (k = 0; k < MAILDIR_KEYWORDS_MAX; k++)
		if ((f.kw & (1u << k)) && c->kw.names[k] != NULL)
			o += (size_t)snprintf(out + o, o < len ? len - o : 0, "%s%s", o ? " " : "",
					      c->kw.names[k]);
	if (o >= len)
		out[len - 1] = '\0';
}

int sync_flags_walk_pairs(struct sync_fctx *c, unsigned char *lpaired,
			  struct sync_rchange *rch, size_t *nr, uint32_t *rexp, size_t *nrexp,
			  size_t *nl)
{
	struct sync_pair *out = c->st.pairs;
	struct maildir_flag_change *lch = calloc(c->st.npairs + 1, sizeof(*lch));
	uint32_t *lexp = calloc(c->st.npairs + 1, sizeof(*lexp));
	size_t o = 0, nlexp = 0, i;
	int dry = c->run->o->dry_run;
	char e[256];

	*nr = *nrexp = *nl = 0;
	if (lch == NULL || lexp == NULL) {
		free(lch);
		free(lexp);
		snprintf(c->err, sizeof(c->err), "out of memory");
		return EX_OSERR;
	}
	for (i = 0; i < c->st.npairs; i++) {
		struct sync_pair p = c->st.pairs[i];
		const struct maildir_msg *m = maildir_folder_find(c->f, p.luid);
		const struct sync_rmsg *r = sync_remote_find(c, p.ruid);
		int rpres = c->qresync ? !c->vanished[i] : r != NULL;
		struct sync_flags rfl = r != NULL ? r->flags : p.flags, lfl, mg;

		if (m != NULL)
			lpaired[m - c->f->msgs] = 1;
		if (!rpres && m == NULL)
			continue;
		if (!rpres) {
			lfl.sys = m->flags;
			lfl.kw = m->keywords;
			if ((lfl.sys & MAILDIR_FLAG_FLAGGED) &&
			    !(p.flags.sys & MAILDIR_FLAG_FLAGGED)) {
				lpaired[m - c->f->msgs] = 0;	/* keep: goes up again */
				continue;
			}
			lexp[nlexp++] = p.luid;
			continue;
		}
		if (m == NULL) {
			if ((rfl.sys & MAILDIR_FLAG_FLAGGED) &&
			    !(p.flags.sys & MAILDIR_FLAG_FLAGGED))
				continue;	/* keep: comes down again (unpaired) */
			rexp[(*nrexp)++] = p.ruid;
			continue;
		}
		lfl.sys = m->flags;
		lfl.kw = m->keywords;
		mg = sync_flags_merge(p.flags, lfl, rfl);
		if (mg.sys & MAILDIR_FLAG_TRASHED) {	/* Expunge Both */
			rexp[(*nrexp)++] = p.ruid;
			lexp[nlexp++] = p.luid;
			continue;
		}
		if (!sync_flags_eq(mg, rfl)) {
			rch[*nr].ruid = p.ruid;
			rch[(*nr)++].f = mg;
		}
		if (!sync_flags_eq(mg, lfl)) {
			lch[*nl].uid = p.luid;
			lch[*nl].flags = mg.sys;
			lch[(*nl)++].keywords = mg.kw;
		}
		p.flags = mg;
		out[o++] = p;
	}
	c->st.npairs = o;
	/* local changes and expunges first: they cost no transfer */
	if (*nl > 0 && !dry) {
		size_t nbad = 0;

		/* one lock and one fsync of cur/ for all of them */
		if (maildir_folder_set_flags_many(c->f, lch, *nl, &nbad, e, sizeof(e)) != 0) {
			log_warn("flags_failed", "folder=%s count=%zu error=%s",
				 log_q(c->rf->local), nbad, log_q(e));
			c->failed = 1;
		}
	}
	c->run->st->flags_local += *nl;
	for (i = 0; i < nlexp && !dry; i++)
		if (maildir_msg_expunge(c->f, lexp[i], e, sizeof(e)) != 0 &&
		    maildir_folder_find(c->f, lexp[i]) != NULL)
			c->failed = 1;
	c->run->st->expunged_local += nlexp;
	free(lch);
	free(lexp);
	return 0;
}

int sync_flags_push(struct sync_fctx *c, struct sync_rchange *v, size_t n)
{
	char tags[256][16], cmd[4300], fl[4096];
	size_t i, nt = 0, k;
	int rc = 0, r2;

	for (i = 0; i <= n; i++) {
		if (i < n) {
			sync_flags_to_str(c, v[i].f, fl, sizeof(fl));
			snprintf(cmd, sizeof(cmd), "UID STORE %u FLAGS.SILENT (%s)", v[i].ruid, fl);
			imap_client_send(c->run->cl, cmd, tags[nt++]);
		}
		if (nt == 256 || (i == n && nt > 0)) {
			for (k = 0; k < nt; k++) {
				r2 = imap_client_wait(c->run->cl, tags[k], NULL, NULL, NULL, c->err,
						      sizeof(c->err));
				if (r2 != 0 && rc == 0)
					rc = r2;
				if (r2 == EX_UNAVAILABLE || r2 == EX_PROTOCOL)
					return r2;
			}
			nt = 0;
		}
	}
	c->run->st->flags_remote += n;
	return rc;
}

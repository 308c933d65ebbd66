/*
 * Pairing of unpaired messages by Message-ID + size (sync-folder.h): what
 * makes a crash between a transfer and the state save, a lost state, a new
 * UIDVALIDITY or an adopted mbsync tree cost no transfer at all.  The key
 * is "<Message-ID> TAB <Date if no Message-ID> TAB <CRLF size>"; the
 * provider's comes from one UID FETCH of RFC822.SIZE and the two headers,
 * ours from the file's head and its ,W= size.
 */
#include "sync-folder.h"

#include "maildir-name.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

/* Value of header NAME in the header block h[0..n), unfolded, into out. */
static void header_value(const char *h, size_t n, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name), i = 0, o = 0;

	out[0] = '\0';
	while (i < n) {
		size_t e = i;

		while (e < n && h[e] != '\n')
			e++;
		if (e - i > nl && strncasecmp(h + i, name, nl) == 0 && h[i + nl] == ':') {
			size_t p = i + nl + 1;

			for (;;) {
				for (; p < e && o + 1 < outlen; p++)
					if (h[p] != '\r' && !(o == 0 && (h[p] == ' ' || h[p] == '\t')))
						out[o++] = (h[p] == '\t') ? ' ' : h[p];
				if (e + 1 < n && (h[e + 1] == ' ' || h[e + 1] == '\t')) {
					p = e + 1;
					for (e = p; e < n && h[e] != '\n'; e++)
						;
					continue;
				}
				break;
			}
			while (o > 0 && out[o - 1] == ' ')
				o--;
			out[o] = '\0';
			return;
		}
		if (e == i || (e == i + 1 && h[i] == '\r'))
			return;		/* end of header */
		i = e + 1;
	}
}

static char *make_key(const char *h, size_t n, long long size)
{
	char mid[1024], date[256], *k;

	header_value(h, n, "Message-ID", mid, sizeof(mid));
	if (mid[0] == '\0')
		header_value(h, n, "Date", date, sizeof(date));
	if (asprintf(&k, "%s\t%s\t%lld", mid, mid[0] ? "" : date, size) < 0)
		return NULL;
	return k;
}

static int newmsg_add(struct sync_newmsg **v, size_t *n, size_t *cap, uint32_t uid,
		      long long size, char *key)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct sync_newmsg *nv = realloc(*v, nc * sizeof(*nv));

		if (nv == NULL)
			return -1;
		*v = nv;
		*cap = nc;
	}
	(*v)[*n].uid = uid;
	(*v)[*n].size = size;
	(*v)[*n].key = key;
	(*v)[*n].matched = 0;
	(*n)++;
	return 0;
}

static int hdr_cb(const struct imap_resp *r, void *ctx)
{
	struct sync_fctx *c = ctx;
	long u, s;
	size_t i;
	uint32_t uid;
	unsigned long long size;
	char *key;

	if (r->name == NULL || strcmp(r->name, "FETCH") != 0 || r->ntoks < 1 ||
	    r->toks[0].type != IMAP_TOK_LIST)
		return 0;
	u = imap_tok_list_get(r->toks, 0, "UID");
	s = imap_tok_list_get(r->toks, 0, "RFC822.SIZE");
	if (u < 0 || s < 0 || imap_tok_u32(&r->toks[u], &uid) < 0 ||
	    imap_tok_u64(&r->toks[s], &size) < 0)
		return 0;
	for (i = 1; i < r->toks[0].end; i = r->toks[i].end) {
		size_t v = r->toks[i].end;

		if (v >= r->toks[0].end)
			break;
		if (r->toks[i].type == IMAP_TOK_ATOM && r->toks[i].len > 5 &&
		    strncasecmp(r->toks[i].s, "BODY[", 5) == 0) {
			if (r->toks[v].type != IMAP_TOK_STRING)
				return 0;
			key = make_key(r->toks[v].s, r->toks[v].len, (long long)size);
			if (key == NULL || newmsg_add(&c->rnew, &c->nrnew, &c->caprnew, uid,
						      (long long)size, key) < 0) {
				free(key);
				return -1;
			}
			return 0;
		}
		i = v;
	}
	return 0;
}

/*
 * mbsync stores the messages it downloads into a Maildir with an added
 * "X-TUID: <12 chars>" header line, so the provider's RFC822.SIZE is that
 * much smaller: the CRLF size of that line in the header block h[0..n), or 0.
 */
static long long mbsync_tuid_size(const char *h, size_t n)
{
	size_t i = 0;

	while (i < n) {
		const char *nl = memchr(h + i, '\n', n - i);
		size_t e = nl != NULL ? (size_t)(nl - h) : n;

		if (e == i || (e == i + 1 && h[i] == '\r'))
			return 0;	/* end of header */
		if (nl != NULL && e - i >= 8 && strncasecmp(h + i, "X-TUID: ", 8) == 0)
			return (long long)(e - i + 1) + (h[e - 1] == '\r' ? 0 : 1);
		i = e + 1;
	}
	return 0;
}

/* Key of a local message: headers from its file, CRLF size from ,W= or by reading. */
static char *local_key(struct sync_fctx *c, const struct maildir_msg *m)
{
	struct maildir_name mn;
	char buf[65536], e[256];
	long long vsize = -1;
	size_t n = 0;
	int fd, last_cr = 0;
	char *k;

	if (maildir_msg_open(c->f, m->uid, &fd, e, sizeof(e)) != 0)
		return NULL;
	if (maildir_name_parse(m->fname, strlen(m->fname), &mn) == 0)
		vsize = mn.vsize;
	for (;;) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - n);

		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == sizeof(buf))
			break;
	}
	if (vsize < 0) {
		char b2[65536];
		ssize_t r, i;

		vsize = 0;
		lseek(fd, 0, SEEK_SET);
		while ((r = read(fd, b2, sizeof(b2))) > 0) {
			for (i = 0; i < r; i++) {
				if (b2[i] == '\n' && !last_cr)
					vsize++;
				last_cr = b2[i] == '\r';
			}
			vsize += r;
		}
	}
	close(fd);
	vsize -= mbsync_tuid_size(buf, n);
	k = make_key(buf, n, vsize);
	return k;
}

static int key_cmp(const void *a, const void *b)
{
	const struct sync_newmsg *x = a, *y = b;
	int r = strcmp(x->key, y->key);

	return r ? r : (x->uid < y->uid ? -1 : x->uid > y->uid);
}

int sync_pair_match(struct sync_fctx *c, uint32_t *down, size_t *ndown, uint32_t *up,
		    size_t *nup, struct sync_rchange **rch, size_t *nr)
{
	char cmd[SYNC_SET_MAX + 160], **sets, e[256];
	struct sync_newmsg *lnew = NULL;
	size_t nlnew = 0, caplnew = 0, a = 0, b = 0, o, nsets, i;
	uint32_t *mr = NULL, *ml = NULL;
	size_t nmr = 0, nml = 0;
	int rc = 0, dry = c->run->o->dry_run;

	if ((sets = sync_uid_sets(down, *ndown, &nsets)) == NULL)
		return EX_OSERR;
	for (i = 0; i < nsets && rc == 0; i++) {
		snprintf(cmd, sizeof(cmd), "UID FETCH %s (UID RFC822.SIZE "
			 "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE)])", sets[i]);
		rc = imap_client_cmd(c->run->cl, cmd, hdr_cb, c, NULL, c->err, sizeof(c->err));
	}
	sync_uid_sets_free(sets);
	if (rc != 0)
		return rc;
	for (i = 0; i < *nup; i++) {
		const struct maildir_msg *m = maildir_folder_find(c->f, up[i]);
		char *k = m != NULL ? local_key(c, m) : NULL;

		if (k != NULL && newmsg_add(&lnew, &nlnew, &caplnew, up[i], 0, k) < 0) {
			free(k);
			rc = EX_OSERR;
			goto out;
		}
	}
	if (c->nrnew > 1)
		qsort(c->rnew, c->nrnew, sizeof(c->rnew[0]), key_cmp);
	if (nlnew > 1)
		qsort(lnew, nlnew, sizeof(lnew[0]), key_cmp);
	while (a < c->nrnew && b < nlnew) {
		int r = strcmp(c->rnew[a].key, lnew[b].key);

		if (r < 0) {
			a++;
		} else if (r > 0) {
			b++;
		} else {
			const struct maildir_msg *m = maildir_folder_find(c->f, lnew[b].uid);
			const struct sync_rmsg *rm = sync_remote_find(c, c->rnew[a].uid);
			struct sync_flags lf = { m->flags, m->keywords }, z = { 0, 0 };
			struct sync_flags rfl = rm ? rm->flags : z, mg;

			/* no common base: the union of both sides' flags */
			mg = sync_flags_merge(z, lf, rfl);
			mg.sys &= ~(unsigned)MAILDIR_FLAG_TRASHED;
			if (!sync_flags_eq(mg, lf) && !dry)
				maildir_msg_set_flags(c->f, m->uid, mg.sys, mg.kw, e, sizeof(e));
			if (!sync_flags_eq(mg, rfl)) {
				struct sync_rchange *n2 = realloc(*rch, (*nr + 1) * sizeof(*n2));

				if (n2 == NULL) {
					rc = EX_OSERR;
					goto out;
				}
				*rch = n2;
				(*rch)[*nr].ruid = c->rnew[a].uid;
				(*rch)[(*nr)++].f = mg;
			}
			if (sync_state_add(&c->st, c->rnew[a].uid, lnew[b].uid, mg) < 0) {
				rc = EX_OSERR;
				goto out;
			}
			c->rnew[a].matched = lnew[b].matched = 1;
			c->run->st->paired++;
			a++;
			b++;
		}
	}
	sync_state_sort(&c->st);
	/* drop the matched ones from the transfer lists */
	mr = malloc((c->nrnew + 1) * sizeof(*mr));
	ml = malloc((nlnew + 1) * sizeof(*ml));
	if (mr == NULL || ml == NULL) {
		rc = EX_OSERR;
		goto out;
	}
	for (a = 0; a < c->nrnew; a++)
		if (c->rnew[a].matched)
			mr[nmr++] = c->rnew[a].uid;
	for (b = 0; b < nlnew; b++)
		if (lnew[b].matched)
			ml[nml++] = lnew[b].uid;
	qsort(mr, nmr, sizeof(*mr), sync_u32_cmp);
	qsort(ml, nml, sizeof(*ml), sync_u32_cmp);
	for (a = 0, o = 0; a < *ndown; a++)
		if (!sync_u32_in(mr, nmr, down[a]))
			down[o++] = down[a];
	*ndown = o;
	for (b = 0, o = 0; b < *nup; b++)
		if (!sync_u32_in(ml, nml, up[b]))
			up[o++] = up[b];
	*nup = o;
	if (!dry)
		rc = sync_folder_save_state(c, 0);
out:
	free(mr);
	free(ml);
	for (i = 0; i < nlnew; i++)
		free(lnew[i].key);
	free(lnew);
	return rc;
}

/*
 * One folder pair (sync-folder.h).  Order of work, chosen so that a crash
 * anywhere loses nothing and duplicates nothing:
 *  1. skip when the provider's UIDVALIDITY/UIDNEXT/HIGHESTMODSEQ (from
 *     LIST-STATUS) and the mtimes of new/ and cur/ equal the state's;
 *  2. SELECT (with QRESYNC when the state allows: only changed messages
 *     and VANISHED come back), else UID FETCH 1:* (UID FLAGS);
 *  3. pairs: merge flags, or expunge on the side that still has it;
 *  4. unpaired messages on both sides are matched by Message-ID + size
 *     (a crash between transfer and state save, lost state, a new
 *     UIDVALIDITY, an adopted mbsync tree) before anything is transferred;
 *  5. downloads (one pipelined UID FETCH, bodies streamed to tmp/), state
 *     checkpoints after the files are durable; uploads (pipelined APPEND);
 *     flag updates; expunges; the final state.
 */
#include "sync-folder.h"

#include "folders.h"
#include "fsutil.h"
#include "imap-date.h"
#include "log.h"
#include "maildir.h"
#include "sync-deliver.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#define CHECKPOINT_EVERY 2000	/* downloads between syncfs + state saves */
#define CHECKPOINT_BYTES (128ULL << 20)	/* or bytes */
#define APPEND_WINDOW 64	/* pipelined APPENDs */
#define SET_MAX 8000		/* bytes of one UID set in a command */

struct rmsg {
	uint32_t uid;
	struct sync_flags flags;
	int seen;		/* present in this run's listing */
};

struct newmsg {			/* an unpaired message for Message-ID matching */
	uint32_t uid;
	long long size;
	char *key;
	int matched;
};

struct pending {		/* downloaded, waiting for its local UID */
	uint32_t ruid;
	struct sync_flags flags;
	char base[MAILDIR_NAME_MAX + 1];
};

struct fctx {
	struct sync_run *run;
	const struct sync_rfolder *rf;
	char dir[PATH_MAX];
	char qname[2100];
	struct maildir_folder *f;
	struct maildir_keywords kw;
	struct sync_state st;
	char statepath[PATH_MAX + 1300];
	long long mt_new, mt_cur;
	/* SELECT results */
	uint32_t uidvalidity, uidnext;
	unsigned long long modseq;
	int qresync;
	struct rmsg *rm;	/* remote listing or changes, ascending by uid */
	size_t nrm, caprm;
	unsigned char *vanished;	/* per pair: 1 when VANISHED named it */
	/* downloads */
	struct sync_batch *b;	/* downloads not yet durable */
	int d_open;	/* a message is being written */
	int d_cr;
	int d_failed;
	struct pending *pend;
	size_t npend, cappend;
	struct newmsg *rnew;
	size_t nrnew, caprnew;
	int failed;
	char err[512];
};

/* ---- flags ---- */

static const struct { const char *name; unsigned bit; } sysflags[] = {
	{ "\\Draft", MAILDIR_FLAG_DRAFT }, { "\\Flagged", MAILDIR_FLAG_FLAGGED },
	{ "$Forwarded", MAILDIR_FLAG_PASSED }, { "\\Answered", MAILDIR_FLAG_REPLIED },
	{ "\\Seen", MAILDIR_FLAG_SEEN }, { "\\Deleted", MAILDIR_FLAG_TRASHED },
};

static int kw_ensure(struct fctx *c, const char *name)
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

static int kw_index_cb(void *ctx, const char *name)
{
	return kw_ensure(ctx, name);
}

static struct sync_flags flags_from_list(struct fctx *c, const struct imap_tok *t, size_t l)
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
			int idx = kw_ensure(c, name);

			if (idx >= 0)
				f.kw |= 1u << idx;
		}
	}
	return f;
}

static void flags_to_str(const struct fctx *c, struct sync_flags f, char *out, size_t len)
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

static int flags_eq(struct sync_flags a, struct sync_flags b)
{
	return a.sys == b.sys && a.kw == b.kw;
}

/* ---- UID sets ---- */

struct setbuf {
	char s[SET_MAX + 32];
	size_t len;
	uint32_t lo, hi;
	int open;
};

/* Adds UIDs in ascending order; returns 1 when the set is full (flush it). */
static int set_add(struct setbuf *b, uint32_t uid)
{
	if (b->open && uid == b->hi + 1) {
		b->hi = uid;
		return 0;
	}
	if (b->open) {
		if (b->lo == b->hi)
			b->len += (size_t)snprintf(b->s + b->len, sizeof(b->s) - b->len, "%s%u",
						   b->len ? "," : "", b->lo);
		else
			b->len += (size_t)snprintf(b->s + b->len, sizeof(b->s) - b->len, "%s%u:%u",
						   b->len ? "," : "", b->lo, b->hi);
	}
	b->lo = b->hi = uid;
	b->open = 1;
	return b->len > SET_MAX;
}

static const char *set_end(struct setbuf *b)
{
	if (b->open) {
		set_add(b, 0);	/* flushes the open range */
		b->open = 0;
	}
	return b->s;
}

static void set_reset(struct setbuf *b)
{
	b->len = 0;
	b->open = 0;
	b->s[0] = '\0';
}

/* Splits ascending UIDS into set strings of at most SET_MAX bytes. */
static char **uid_sets(const uint32_t *uids, size_t n, size_t *nsets)
{
	struct setbuf sb;
	char **v = NULL;
	size_t nv = 0, i;

	set_reset(&sb);
	for (i = 0; i <= n; i++) {
		if (i < n && !set_add(&sb, uids[i]))
			continue;
		if (i == n && !sb.open)
			break;
		set_end(&sb);
		{
			char **n2 = realloc(v, (nv + 2) * sizeof(*n2));

			if (n2 == NULL || (n2[nv] = strdup(sb.s)) == NULL) {
				free(n2 ? n2 : v);
				return NULL;
			}
			v = n2;
			v[++nv] = NULL;
		}
		set_reset(&sb);
	}
	*nsets = nv;
	return v != NULL ? v : calloc(1, sizeof(char *));
}

static void uid_sets_free(char **v)
{
	size_t i;

	for (i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int u32_in(const uint32_t *v, size_t n, uint32_t x)
{
	return n > 0 && bsearch(&x, v, n, sizeof(*v), u32_cmp) != NULL;
}

/* ---- state ---- */

static long long mtime_ns(const char *dir, const char *sub)
{
	char p[PATH_MAX + 8];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	if (stat(p, &sb) != 0)
		return -1;
	return (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
}

/* Reads the state; with HEADER_ONLY, not the pairs (enough to see a folder is unchanged). */
static int state_load(struct fctx *c, int header_only)
{
	char *buf = NULL, e[256];
	size_t len;
	int rc = fsutil_read_file(c->statepath, SYNC_STATE_MAX_SIZE, &buf, &len, e, sizeof(e));

	memset(&c->st, 0, sizeof(c->st));
	if (rc == EX_NOINPUT)
		return 0;
	if (rc != 0) {
		snprintf(c->err, sizeof(c->err), "%s", e);
		return rc;
	}
	if (header_only) {
		const char *p = memmem(buf, len, "\npairs\n", 7);

		if (p == NULL) {
			free(buf);
			return 0;
		}
		len = (size_t)(p - buf) + 7;
	}
	rc = sync_state_parse(buf, len, kw_index_cb, c, &c->st, e, sizeof(e));
	free(buf);
	if (rc != 0) {
		/* a damaged state is re-paired by Message-ID, never trusted */
		log_warn("state_ignored", "file=%s error=%s", log_q(c->statepath), log_q(e));
		memset(&c->st, 0, sizeof(c->st));
	}
	return 0;
}

static int state_save(struct fctx *c, int final)
{
	struct sync_state s = c->st;
	char *buf = NULL, tmp[PATH_MAX + 1320], e[256];
	size_t len;
	int rc;

	if (c->run->o->dry_run)
		return 0;
	free(s.remote);
	s.remote = (char *)c->rf->name;
	s.r_uidvalidity = c->uidvalidity;
	s.l_uidvalidity = c->f->uidvalidity;
	if (!final) {
		/* until the folder is complete, the next run must look again */
		s.highestmodseq = 0;
		s.r_uidnext = 0;
		s.l_mtime_new = s.l_mtime_cur = 0;
	} else {
		s.highestmodseq = c->failed ? 0 : c->modseq;
		s.r_uidnext = c->failed ? 0 : c->uidnext;
		s.l_mtime_new = c->failed ? 0 : c->mt_new;
		s.l_mtime_cur = c->failed ? 0 : c->mt_cur;
	}
	c->st.remote = NULL;
	if (sync_state_format(&s, c->kw.names, &buf, &len) != 0) {
		snprintf(c->err, sizeof(c->err), "out of memory");
		return EX_OSERR;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", c->statepath);
	rc = fsutil_write_atomic(c->statepath, tmp, buf, len, 0600, e, sizeof(e));
	free(buf);
	if (rc != 0)
		snprintf(c->err, sizeof(c->err), "%s", e);
	return rc;
}

/* ---- SELECT and remote listing ---- */

static int rm_add(struct fctx *c, uint32_t uid, struct sync_flags f)
{
	if (c->nrm == c->caprm) {
		size_t cap = c->caprm ? c->caprm * 2 : 256;
		struct rmsg *n = realloc(c->rm, cap * sizeof(*n));

		if (n == NULL)
			return -1;
		c->rm = n;
		c->caprm = cap;
	}
	c->rm[c->nrm].uid = uid;
	c->rm[c->nrm].flags = f;
	c->rm[c->nrm].seen = 1;
	c->nrm++;
	return 0;
}

static int vanish_range(uint32_t lo, uint32_t hi, void *ctx)
{
	struct fctx *c = ctx;
	size_t i;

	for (i = 0; i < c->st.npairs; i++)
		if (c->st.pairs[i].ruid >= lo && c->st.pairs[i].ruid <= hi)
			c->vanished[i] = 1;
	return 0;
}

static int select_cb(const struct imap_resp *r, void *ctx)
{
	struct fctx *c = ctx;

	if (r->code != NULL) {
		unsigned long long v;
		char *end;

		errno = 0;
		v = strtoull(r->code_arg, &end, 10);
		if (errno == 0 && end != r->code_arg) {
			if (strcmp(r->code, "UIDVALIDITY") == 0)
				c->uidvalidity = (uint32_t)v;
			else if (strcmp(r->code, "UIDNEXT") == 0)
				c->uidnext = (uint32_t)v;
			else if (strcmp(r->code, "HIGHESTMODSEQ") == 0)
				c->modseq = v;
		}
		if (strcmp(r->code, "NOMODSEQ") == 0)
			c->modseq = 0;
		return 0;
	}
	if (r->name == NULL)
		return 0;
	if (strcmp(r->name, "VANISHED") == 0 && r->ntoks >= 1 && c->vanished != NULL) {
		size_t i = (r->toks[0].type == IMAP_TOK_LIST) ? r->toks[0].end : 0;
		char set[65536];

		if (i < r->ntoks && r->toks[i].type == IMAP_TOK_ATOM && r->toks[i].len < sizeof(set)) {
			memcpy(set, r->toks[i].s, r->toks[i].len);
			set[r->toks[i].len] = '\0';
			if (imap_uidset_each(set, 0xffffffffu, vanish_range, c) < 0)
				return -1;
		}
		return 0;
	}
	if (strcmp(r->name, "FETCH") == 0 && r->ntoks >= 1 && r->toks[0].type == IMAP_TOK_LIST) {
		long u = imap_tok_list_get(r->toks, 0, "UID"), fl = imap_tok_list_get(r->toks, 0,
										       "FLAGS");
		uint32_t uid;

		if (u < 0 || fl < 0 || imap_tok_u32(&r->toks[u], &uid) < 0)
			return 0;
		if (rm_add(c, uid, flags_from_list(c, r->toks, (size_t)fl)) < 0)
			return -1;
	}
	return 0;
}

static int rm_cmp(const void *a, const void *b)
{
	const struct rmsg *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static const struct rmsg *rm_find(const struct fctx *c, uint32_t uid)
{
	size_t lo = 0, hi = c->nrm;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->rm[mid].uid == uid)
			return &c->rm[mid];
		if (c->rm[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int do_select(struct fctx *c)
{
	struct sync_run *run = c->run;
	char cmd[2300];
	int rc;

	c->qresync = (run->caps & IMAP_CAP_QRESYNC) && c->st.npairs > 0 &&
		c->st.highestmodseq > 0 && c->st.r_uidvalidity != 0;
	if (c->qresync)
		snprintf(cmd, sizeof(cmd), "SELECT %s (QRESYNC (%u %llu))", c->qname,
			 c->st.r_uidvalidity, c->st.highestmodseq);
	else if (run->caps & IMAP_CAP_CONDSTORE)
		snprintf(cmd, sizeof(cmd), "SELECT %s (CONDSTORE)", c->qname);
	else
		snprintf(cmd, sizeof(cmd), "SELECT %s", c->qname);
	c->vanished = calloc(c->st.npairs + 1, 1);
	if (c->vanished == NULL)
		return EX_OSERR;
	rc = imap_client_cmd(run->cl, cmd, select_cb, c, NULL, c->err, sizeof(c->err));
	if (rc != 0)
		return rc;
	if (c->st.r_uidvalidity != 0 && c->st.r_uidvalidity != c->uidvalidity) {
		log_info("uidvalidity_changed", "folder=%s old=%u new=%u action=re-pair",
			 log_q(c->rf->name), c->st.r_uidvalidity, c->uidvalidity);
		c->st.npairs = 0;
		c->qresync = 0;
		c->nrm = 0;
	}
	if (c->qresync) {
		/* new messages without flag changes are in the CHANGEDSINCE set
		 * anyway; this also covers servers that leave them out */
		if (c->uidnext > c->st.r_uidnext && c->st.r_uidnext > 0) {
			snprintf(cmd, sizeof(cmd), "UID FETCH %u:* (UID FLAGS)", c->st.r_uidnext);
			rc = imap_client_cmd(run->cl, cmd, select_cb, c, NULL, c->err,
					     sizeof(c->err));
		}
	} else {
		c->nrm = 0;
		if (c->uidnext != 1)
			rc = imap_client_cmd(run->cl, "UID FETCH 1:* (UID FLAGS)", select_cb, c,
					     NULL, c->err, sizeof(c->err));
	}
	if (rc != 0)
		return rc;
	if (c->nrm > 1)
		qsort(c->rm, c->nrm, sizeof(c->rm[0]), rm_cmp);
	{	/* drop duplicates (a message both changed and new): last wins */
		size_t i, o = 0;

		for (i = 0; i < c->nrm; i++) {
			if (o > 0 && c->rm[o - 1].uid == c->rm[i].uid)
				c->rm[o - 1] = c->rm[i];
			else
				c->rm[o++] = c->rm[i];
		}
		c->nrm = o;
	}
	return 0;
}

/* ---- Message-ID matching ---- */

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

static int newmsg_add(struct newmsg **v, size_t *n, size_t *cap, uint32_t uid, long long size,
		      char *key)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct newmsg *nv = realloc(*v, nc * sizeof(*nv));

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
	struct fctx *c = ctx;
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
static char *local_key(struct fctx *c, const struct maildir_msg *m)
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
	const struct newmsg *x = a, *y = b;
	int r = strcmp(x->key, y->key);

	return r ? r : (x->uid < y->uid ? -1 : x->uid > y->uid);
}

/* ---- downloads ---- */

static int sink_begin(void *ctx, unsigned long long size)
{
	struct fctx *c = ctx;
	char e[256];

	(void)size;
	if (c->run->o->stop != NULL && *c->run->o->stop)
		return -1;
	c->d_open = 0;
	c->d_cr = 0;
	c->d_failed = 0;
	if (c->b == NULL && (c->b = sync_batch_new(c->dir)) == NULL) {
		snprintf(c->err, sizeof(c->err), "out of memory");
		return -1;
	}
	if (sync_batch_begin(c->b, e, sizeof(e)) != 0) {
		snprintf(c->err, sizeof(c->err), "%s", e);
		return -1;
	}
	c->d_open = 1;
	return 0;
}

/* Writes message bytes converting CRLF to LF, as dovecot and mbsync store them. */
static int sink_data(void *ctx, const void *buf, size_t len)
{
	struct fctx *c = ctx;
	const char *p = buf, *end = p + len;
	char e[256];

	if (!c->d_open)
		return -1;
	while (p < end) {
		const char *cr;
		size_t span;

		if (c->d_cr) {	/* a CR ended the previous chunk or span */
			c->d_cr = 0;
			if (*p != '\n' && sync_batch_write(c->b, "\r", 1, e, sizeof(e)) != 0)
				goto fail;
		}
		cr = memchr(p, '\r', (size_t)(end - p));
		span = (size_t)((cr != NULL ? cr : end) - p);
		if (span > 0 && sync_batch_write(c->b, p, span, e, sizeof(e)) != 0)
			goto fail;
		if (cr == NULL)
			break;
		c->d_cr = 1;
		p = cr + 1;
	}
	return 0;
fail:
	snprintf(c->err, sizeof(c->err), "%s", e);
	return -1;
}

static int pend_add(struct fctx *c, uint32_t ruid, struct sync_flags f, const char *fname)
{
	size_t bl = strcspn(fname, ":");

	if (c->npend == c->cappend) {
		size_t cap = c->cappend ? c->cappend * 2 : 256;
		struct pending *n = realloc(c->pend, cap * sizeof(*n));

		if (n == NULL)
			return -1;
		c->pend = n;
		c->cappend = cap;
	}
	if (bl > MAILDIR_NAME_MAX)
		bl = MAILDIR_NAME_MAX;
	c->pend[c->npend].ruid = ruid;
	c->pend[c->npend].flags = f;
	memcpy(c->pend[c->npend].base, fname, bl);
	c->pend[c->npend].base[bl] = '\0';
	c->npend++;
	return 0;
}

static int pend_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pending *)a)->base, ((const struct pending *)b)->base);
}

/* Gives downloaded files their UIDs (one locked scan) and records the pairs. */
static int checkpoint(struct fctx *c)
{
	char e[256];
	size_t i;

	if (c->b != NULL && sync_batch_flush(c->b, e, sizeof(e)) != 0) {
		/* what was renamed into place is paired below or next run */
		snprintf(c->err, sizeof(c->err), "%s", e);
		c->failed = 1;
	}
	if (c->npend == 0)
		return 0;
	if (maildir_folder_sync(c->f, MAILDIR_SYNC_FORCE, e, sizeof(e)) != 0) {
		snprintf(c->err, sizeof(c->err), "%s", e);
		return EX_TEMPFAIL;
	}
	qsort(c->pend, c->npend, sizeof(c->pend[0]), pend_cmp);
	for (i = 0; i < c->f->nmsgs; i++) {
		const struct maildir_msg *m = &c->f->msgs[i];
		struct pending key, *p;
		size_t bl = strcspn(m->fname, ":");

		if (bl > MAILDIR_NAME_MAX)
			continue;
		memcpy(key.base, m->fname, bl);
		key.base[bl] = '\0';
		p = bsearch(&key, c->pend, c->npend, sizeof(c->pend[0]), pend_cmp);
		if (p != NULL && sync_state_add(&c->st, p->ruid, m->uid, p->flags) < 0)
			return EX_OSERR;
	}
	c->npend = 0;
	sync_state_sort(&c->st);
	return state_save(c, 0);
}

static int body_cb(const struct imap_resp *r, void *ctx)
{
	struct fctx *c = ctx;
	struct maildir_commit cm = { 0 };
	long u, fl, dt;
	size_t i;
	uint32_t uid;
	int have_body = 0;
	char fname[MAILDIR_NAME_MAX + 1], e[256];
	struct sync_flags f = { 0, 0 };

	if (r->name == NULL || strcmp(r->name, "FETCH") != 0 || r->ntoks < 1 ||
	    r->toks[0].type != IMAP_TOK_LIST)
		return 0;
	u = imap_tok_list_get(r->toks, 0, "UID");
	if (u < 0 || imap_tok_u32(&r->toks[u], &uid) < 0)
		return 0;
	for (i = 1; i < r->toks[0].end; i = r->toks[i].end) {
		size_t v = r->toks[i].end;

		if (v >= r->toks[0].end)
			break;
		if (imap_tok_is(&r->toks[i], "BODY[]")) {
			if (r->toks[v].type == IMAP_TOK_STRING) {
				if (sink_begin(c, r->toks[v].len) != 0 ||
				    sink_data(c, r->toks[v].s, r->toks[v].len) != 0)
					return -1;
				have_body = 1;
			} else if (r->toks[v].type == IMAP_TOK_SUNK && c->d_open) {
				have_body = 1;
			}
		}
		i = v;
	}
	if (!have_body || !c->d_open)
		return 0;
	if (c->d_cr) {
		c->d_cr = 0;
		if (sync_batch_write(c->b, "\r", 1, e, sizeof(e)) != 0)
			return -1;
	}
	if ((fl = imap_tok_list_get(r->toks, 0, "FLAGS")) >= 0)
		f = flags_from_list(c, r->toks, (size_t)fl);
	f.sys &= ~(unsigned)MAILDIR_FLAG_TRASHED;
	cm.flags = f.sys;
	cm.keywords = f.kw;
	if ((dt = imap_tok_list_get(r->toks, 0, "INTERNALDATE")) >= 0) {
		char ds[64];
		int tz;

		if (imap_tok_str(&r->toks[dt], ds, sizeof(ds)) == 0)
			imap_date_parse_datetime(ds, &cm.mtime, &tz);
	}
	c->d_open = 0;
	if (sync_batch_end(c->b, cm.flags, cm.keywords, cm.mtime, fname, sizeof(fname), e,
			   sizeof(e)) != 0) {
		snprintf(c->err, sizeof(c->err), "%s", e);
		return -1;
	}
	c->run->st->down++;
	if (pend_add(c, uid, f, fname) < 0)
		return -1;
	if (c->run->o->progress && c->run->st->down % 100 == 0)
		fprintf(stderr, "\r%s: %llu messages down, %llu up ", c->rf->name,
			c->run->st->down, c->run->st->up);
	if (c->npend >= CHECKPOINT_EVERY || sync_batch_pending_bytes(c->b) >= CHECKPOINT_BYTES)
		return checkpoint(c) != 0 ? -1 : 0;
	return 0;
}

static int download(struct fctx *c, const uint32_t *uids, size_t n)
{
	struct imap_resp_sink sink = { sink_begin, sink_data, c };
	char tags[64][16], cmd[SET_MAX + 128], **sets;
	size_t i, nsets, nt = 0, k;
	int rc = 0, rc2;

	if (n == 0)
		return 0;
	if ((sets = uid_sets(uids, n, &nsets)) == NULL)
		return EX_OSERR;
	imap_client_set_sink(c->run->cl, &sink);
	for (i = 0; i < nsets; i++) {
		snprintf(cmd, sizeof(cmd), "UID FETCH %s (UID FLAGS INTERNALDATE BODY.PEEK[])",
			 sets[i]);
		imap_client_send(c->run->cl, cmd, tags[nt++]);
		if (nt < 64 && i + 1 < nsets)
			continue;
		for (k = 0; k < nt; k++) {
			rc2 = imap_client_wait(c->run->cl, tags[k], body_cb, c, NULL, c->err,
					       sizeof(c->err));
			if (rc2 != 0 && rc == 0)
				rc = rc2;
			if (rc2 == EX_UNAVAILABLE || rc2 == EX_PROTOCOL)
				goto done;
		}
		nt = 0;
	}
done:
	imap_client_set_sink(c->run->cl, NULL);
	if (c->b != NULL)
		sync_batch_abort(c->b);
	c->d_open = 0;
	uid_sets_free(sets);
	rc2 = checkpoint(c);
	if (rc != 0)
		c->failed = 1;
	return rc ? rc : rc2;
}

/* ---- uploads ---- */

static int upload(struct fctx *c, const uint32_t *luids, size_t n)
{
	struct { char tag[16]; uint32_t luid; struct sync_flags f; } win[APPEND_WINDOW];
	size_t i = 0, nw = 0;
	int rc = 0;
	int pipelined = (c->run->caps & IMAP_CAP_LITERALPLUS) != 0;

	while (i < n || nw > 0) {
		if (i < n && nw < (pipelined ? APPEND_WINDOW : 1) &&
		    !(c->run->o->stop != NULL && *c->run->o->stop)) {
			const struct maildir_msg *m = maildir_folder_find(c->f, luids[i]);
			struct sync_flags f;
			char flags[2048], e[256];
			struct stat sb;
			int fd;

			i++;
			if (m == NULL || maildir_msg_open(c->f, m->uid, &fd, e, sizeof(e)) != 0)
				continue;
			f.sys = m->flags & ~(unsigned)MAILDIR_FLAG_TRASHED;
			f.kw = m->keywords;
			flags_to_str(c, f, flags, sizeof(flags));
			if (fstat(fd, &sb) != 0)
				sb.st_mtime = time(NULL);
			rc = imap_client_append_fd(c->run->cl, c->qname, flags, sb.st_mtime, fd,
						   win[nw].tag, c->err, sizeof(c->err));
			close(fd);
			if (rc != 0)
				return rc;
			win[nw].luid = m->uid;
			win[nw].f = f;
			nw++;
			c->run->st->up_bytes += (unsigned long long)sb.st_size;
			continue;
		}
		{
			const struct imap_resp *fin = NULL;
			uint32_t uv, ruid;
			size_t k;

			rc = imap_client_wait(c->run->cl, win[0].tag, NULL, NULL, &fin, c->err,
					      sizeof(c->err));
			if (rc == EX_UNAVAILABLE || rc == EX_PROTOCOL)
				return rc;
			if (rc == 0) {
				c->run->st->up++;
				if (fin->code != NULL && strcmp(fin->code, "APPENDUID") == 0 &&
				    sscanf(fin->code_arg, "%u %u", &uv, &ruid) == 2 &&
				    uv == c->uidvalidity) {
					if (sync_state_add(&c->st, ruid, win[0].luid, win[0].f) < 0)
						return EX_OSERR;
				}
			} else {
				c->failed = 1;
			}
			for (k = 1; k < nw; k++)
				win[k - 1] = win[k];
			nw--;
		}
		if (c->run->o->stop != NULL && *c->run->o->stop && nw == 0)
			break;
	}
	sync_state_sort(&c->st);
	return 0;
}

/* ---- the folder ---- */

struct lchange { uint32_t luid; struct sync_flags f; };
struct rchange { uint32_t ruid; struct sync_flags f; };

static void fctx_free(struct fctx *c)
{
	size_t i;

	sync_batch_free(c->b);
	maildir_folder_free(c->f);
	maildir_keywords_clear(&c->kw);
	sync_state_clear(&c->st);
	free(c->rm);
	free(c->vanished);
	free(c->pend);
	for (i = 0; i < c->nrnew; i++)
		free(c->rnew[i].key);
	free(c->rnew);
}

static int store_remote(struct fctx *c, struct rchange *v, size_t n)
{
	char tags[256][16], cmd[4300], fl[4096];
	size_t i, nt = 0, k;
	int rc = 0, r2;

	for (i = 0; i <= n; i++) {
		if (i < n) {
			flags_to_str(c, v[i].f, fl, sizeof(fl));
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

static int expunge_remote(struct fctx *c, const uint32_t *uids, size_t n)
{
	char cmd[SET_MAX + 128], **sets;
	size_t i, nsets;
	int rc = 0;

	if (n == 0)
		return 0;
	if ((sets = uid_sets(uids, n, &nsets)) == NULL)
		return EX_OSERR;
	for (i = 0; i < nsets && rc == 0; i++) {
		snprintf(cmd, sizeof(cmd), "UID STORE %s +FLAGS.SILENT (\\Deleted)", sets[i]);
		rc = imap_client_cmd(c->run->cl, cmd, NULL, NULL, NULL, c->err, sizeof(c->err));
		if (rc == 0) {
			if (c->run->caps & IMAP_CAP_UIDPLUS)
				snprintf(cmd, sizeof(cmd), "UID EXPUNGE %s", sets[i]);
			else
				snprintf(cmd, sizeof(cmd), "EXPUNGE");
			rc = imap_client_cmd(c->run->cl, cmd, NULL, NULL, NULL, c->err,
					     sizeof(c->err));
		}
	}
	uid_sets_free(sets);
	if (rc == 0)
		c->run->st->expunged_remote += n;
	return rc;
}

int sync_folder(struct sync_run *run, const struct sync_rfolder *rf, char *err, size_t errlen)
{
	struct fctx *c = calloc(1, sizeof(*c));
	char sname[1200], e[256];
	unsigned char *lpaired = NULL;
	uint32_t *down = NULL, *up = NULL, *rexp = NULL;
	size_t ndown = 0, nup = 0, nrexp = 0, i, nl = 0, nr = 0;
	struct lchange *lch = NULL;
	struct rchange *rch = NULL;
	struct newmsg *lnew = NULL;
	size_t nlnew = 0, caplnew = 0;
	int rc = 0, dry = run->o->dry_run;

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return EX_OSERR;
	}
	c->run = run;
	c->rf = rf;
	run->st->folders++;
	if (folder_dir(run->root, rf->local, c->dir, sizeof(c->dir), e, sizeof(e)) != 0 ||
	    sync_state_file_name(rf->local, sname, sizeof(sname)) < 0 ||
	    imap_quote_astring(rf->name, c->qname, sizeof(c->qname)) < 0) {
		snprintf(err, errlen, "%s: bad folder name", rf->name);
		free(c);
		return EX_DATAERR;
	}
	snprintf(c->statepath, sizeof(c->statepath), "%s/%s", run->statedir, sname);
	if ((rc = maildir_keywords_read(c->dir, &c->kw, e, sizeof(e))) != 0 &&
	    rc != EX_NOINPUT) {
		snprintf(c->err, sizeof(c->err), "%s", e);
		goto out;
	}
	rc = 0;
	/* 1. unchanged on both sides: the state's header is enough */
	if ((rc = state_load(c, 1)) != 0)
		goto out;
	c->mt_new = mtime_ns(c->dir, "new");
	c->mt_cur = mtime_ns(c->dir, "cur");
	if (c->st.remote != NULL && strcmp(c->st.remote, rf->name) == 0 && rf->have_status &&
	    rf->highestmodseq != 0 && c->st.highestmodseq == rf->highestmodseq &&
	    c->st.r_uidvalidity == rf->uidvalidity && c->st.r_uidnext == rf->uidnext &&
	    c->mt_new == c->st.l_mtime_new && c->mt_cur == c->st.l_mtime_cur && c->mt_new > 0) {
		run->st->folders_skipped++;
		goto out;
	}
	sync_state_clear(&c->st);
	if ((rc = state_load(c, 0)) != 0)
		goto out;
	if (c->st.remote != NULL && strcmp(c->st.remote, rf->name) != 0) {
		log_info("mapping_changed", "folder=%s old=%s action=re-pair", log_q(rf->local),
			 log_q(c->st.remote));
		c->st.npairs = 0;
	}
	if (dry && access(c->dir, F_OK) != 0) {
		log_info("plan", "folder=%s action=create-local", log_q(rf->local));
		goto out;
	}
	if ((rc = maildir_folder_open(c->dir, &c->f, e, sizeof(e))) != 0 ||
	    (rc = maildir_folder_sync(c->f, 0, e, sizeof(e))) != 0) {
		snprintf(c->err, sizeof(c->err), "%s", e);
		goto out;
	}
	if (c->st.l_uidvalidity != 0 && c->st.l_uidvalidity != c->f->uidvalidity) {
		log_info("uidvalidity_changed", "folder=%s side=local action=re-pair",
			 log_q(rf->local));
		c->st.npairs = 0;
	}
	if ((rc = do_select(c)) != 0)
		goto out;

	lpaired = calloc(c->f->nmsgs + 1, 1);
	lch = calloc(c->st.npairs + 1, sizeof(*lch));
	rch = calloc(c->st.npairs + 1, sizeof(*rch));
	rexp = calloc(c->st.npairs + 1, sizeof(*rexp));
	if (lpaired == NULL || lch == NULL || rch == NULL || rexp == NULL) {
		rc = EX_OSERR;
		goto out;
	}
	/* 3. existing pairs */
	{
		struct sync_pair *out = c->st.pairs;
		size_t o = 0;
		uint32_t *lexp = calloc(c->st.npairs + 1, sizeof(*lexp));
		size_t nlexp = 0;

		if (lexp == NULL) {
			rc = EX_OSERR;
			goto out;
		}
		for (i = 0; i < c->st.npairs; i++) {
			struct sync_pair p = c->st.pairs[i];
			const struct maildir_msg *m = maildir_folder_find(c->f, p.luid);
			const struct rmsg *r = rm_find(c, p.ruid);
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
				rexp[nrexp++] = p.ruid;
				continue;
			}
			lfl.sys = m->flags;
			lfl.kw = m->keywords;
			mg = sync_flags_merge(p.flags, lfl, rfl);
			if (mg.sys & MAILDIR_FLAG_TRASHED) {	/* Expunge Both */
				rexp[nrexp++] = p.ruid;
				lexp[nlexp++] = p.luid;
				continue;
			}
			if (!flags_eq(mg, rfl)) {
				rch[nr].ruid = p.ruid;
				rch[nr++].f = mg;
			}
			if (!flags_eq(mg, lfl)) {
				lch[nl].luid = p.luid;
				lch[nl++].f = mg;
			}
			p.flags = mg;
			out[o++] = p;
		}
		c->st.npairs = o;
		/* 3b. local changes and expunges first: they cost no transfer */
		for (i = 0; i < nl && !dry; i++) {
			if (maildir_msg_set_flags(c->f, lch[i].luid, lch[i].f.sys, lch[i].f.kw, e,
						  sizeof(e)) != 0) {
				log_warn("flags_failed", "folder=%s uid=%u error=%s",
					 log_q(rf->local), lch[i].luid, log_q(e));
				c->failed = 1;
			}
		}
		run->st->flags_local += nl;
		for (i = 0; i < nlexp && !dry; i++)
			if (maildir_msg_expunge(c->f, lexp[i], e, sizeof(e)) != 0 &&
			    maildir_folder_find(c->f, lexp[i]) != NULL)
				c->failed = 1;
		run->st->expunged_local += nlexp;
		free(lexp);
	}

	/* 4. unpaired on both sides */
	{
		size_t p = 0;

		for (i = 0; i < c->nrm; i++) {
			while (p < c->st.npairs && c->st.pairs[p].ruid < c->rm[i].uid)
				p++;
			if (p < c->st.npairs && c->st.pairs[p].ruid == c->rm[i].uid)
				continue;
			if (u32_in(rexp, nrexp, c->rm[i].uid))
				continue;
			if (c->rm[i].flags.sys & MAILDIR_FLAG_TRASHED)
				continue;	/* deleted there: not worth a download */
			if (ndown % 256 == 0) {
				uint32_t *n2 = realloc(down, (ndown + 256) * sizeof(*n2));

				if (n2 == NULL) {
					rc = EX_OSERR;
					goto out;
				}
				down = n2;
			}
			down[ndown++] = c->rm[i].uid;
		}
		for (i = 0; i < c->f->nmsgs; i++) {
			if (lpaired[i] || (c->f->msgs[i].flags & MAILDIR_FLAG_TRASHED))
				continue;
			if (nup % 256 == 0) {
				uint32_t *n2 = realloc(up, (nup + 256) * sizeof(*n2));

				if (n2 == NULL) {
					rc = EX_OSERR;
					goto out;
				}
				up = n2;
			}
			up[nup++] = c->f->msgs[i].uid;
		}
	}
	if (ndown > 0 && nup > 0) {
		char cmd[SET_MAX + 160], **sets;
		size_t a = 0, b = 0, o, nsets;
		uint32_t *mr = NULL, *ml = NULL;
		size_t nmr = 0, nml = 0;

		if ((sets = uid_sets(down, ndown, &nsets)) == NULL) {
			rc = EX_OSERR;
			goto out;
		}
		for (i = 0; i < nsets && rc == 0; i++) {
			snprintf(cmd, sizeof(cmd), "UID FETCH %s (UID RFC822.SIZE "
				 "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE)])", sets[i]);
			rc = imap_client_cmd(run->cl, cmd, hdr_cb, c, NULL, c->err, sizeof(c->err));
		}
		uid_sets_free(sets);
		if (rc != 0)
			goto out;
		for (i = 0; i < nup; i++) {
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
				const struct rmsg *rm = rm_find(c, c->rnew[a].uid);
				struct sync_flags lf = { m->flags, m->keywords }, z = { 0, 0 };
				struct sync_flags rfl = rm ? rm->flags : z, mg;

				/* no common base: the union of both sides' flags */
				mg = sync_flags_merge(z, lf, rfl);
				mg.sys &= ~(unsigned)MAILDIR_FLAG_TRASHED;
				if (!flags_eq(mg, lf) && !dry)
					maildir_msg_set_flags(c->f, m->uid, mg.sys, mg.kw, e, sizeof(e));
				if (!flags_eq(mg, rfl)) {
					struct rchange *n2 = realloc(rch, (nr + 1) * sizeof(*n2));

					if (n2 == NULL) {
						rc = EX_OSERR;
						goto out;
					}
					rch = n2;
					rch[nr].ruid = c->rnew[a].uid;
					rch[nr++].f = mg;
				}
				if (sync_state_add(&c->st, c->rnew[a].uid, lnew[b].uid, mg) < 0) {
					rc = EX_OSERR;
					goto out;
				}
				c->rnew[a].matched = lnew[b].matched = 1;
				run->st->paired++;
				a++;
				b++;
			}
		}
		sync_state_sort(&c->st);
		/* drop the matched ones from the transfer lists */
		mr = malloc((c->nrnew + 1) * sizeof(*mr));
		ml = malloc((nlnew + 1) * sizeof(*ml));
		if (mr == NULL || ml == NULL) {
			free(mr);
			free(ml);
			rc = EX_OSERR;
			goto out;
		}
		for (a = 0; a < c->nrnew; a++)
			if (c->rnew[a].matched)
				mr[nmr++] = c->rnew[a].uid;
		for (b = 0; b < nlnew; b++)
			if (lnew[b].matched)
				ml[nml++] = lnew[b].uid;
		qsort(mr, nmr, sizeof(*mr), u32_cmp);
		qsort(ml, nml, sizeof(*ml), u32_cmp);
		for (a = 0, o = 0; a < ndown; a++)
			if (!u32_in(mr, nmr, down[a]))
				down[o++] = down[a];
		ndown = o;
		for (b = 0, o = 0; b < nup; b++)
			if (!u32_in(ml, nml, up[b]))
				up[o++] = up[b];
		nup = o;
		free(mr);
		free(ml);
		if (!dry && (rc = state_save(c, 0)) != 0)
			goto out;
	}
	if (dry) {
		log_info("plan", "folder=%s download=%zu upload=%zu flags_local=%zu flags_remote=%zu "
			 "expunge_remote=%zu", log_q(rf->local), ndown, nup, nl, nr, nrexp);
		goto out;
	}
	/* 5. transfers, flags, expunges */
	if ((rc = download(c, down, ndown)) != 0)
		goto out;
	if ((rc = upload(c, up, nup)) != 0)
		goto out;
	if (nr > 0 && (rc = store_remote(c, rch, nr)) != 0)
		goto out;
	if ((rc = expunge_remote(c, rexp, nrexp)) != 0)
		goto out;
	if (run->o->stop != NULL && *run->o->stop)
		c->failed = 1;
	rc = state_save(c, 1);
out:
	if (rc != 0 && c->f != NULL && c->npend > 0 && !dry)
		(void)checkpoint(c);	/* what was downloaded is recorded */
	if (rc != 0)
		snprintf(err, errlen, "%s", c->err[0] ? c->err : "failed");
	if (run->o->progress && run->st->down + run->st->up > 0)
		fprintf(stderr, "\r%s: %llu messages down, %llu up\n", rf->name, run->st->down,
			run->st->up);
	for (i = 0; i < nlnew; i++)
		free(lnew[i].key);
	free(lnew);
	free(lpaired);
	free(lch);
	free(rch);
	free(rexp);
	free(down);
	free(up);
	fctx_free(c);
	free(c);
	return rc;
}

/*
 * The provider side of one folder pair (sync-folder.h): SELECT with
 * QRESYNC or CONDSTORE and the listing of UIDs and flags, UID sets for
 * commands, expunges.
 */
#include "sync-folder.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

struct setbuf {
	char s[SYNC_SET_MAX + 32];
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
	return b->len > SYNC_SET_MAX;
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

/* Splits ascending UIDS into set strings of at most SYNC_SET_MAX bytes. */
char **sync_uid_sets(const uint32_t *uids, size_t n, size_t *nsets)
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

void sync_uid_sets_free(char **v)
{
	size_t i;

	for (i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

int sync_u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int sync_u32_in(const uint32_t *v, size_t n, uint32_t x)
{
	return n > 0 && bsearch(&x, v, n, sizeof(*v), sync_u32_cmp) != NULL;
}

static int rm_add(struct sync_fctx *c, uint32_t uid, struct sync_flags f)
{
	if (c->nrm == c->caprm) {
		size_t cap = c->caprm ? c->caprm * 2 : 256;
		struct sync_rmsg *n = realloc(c->rm, cap * sizeof(*n));

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
	struct sync_fctx *c = ctx;
	size_t i;

	for (i = 0; i < c->st.npairs; i++)
		if (c->st.pairs[i].ruid >= lo && c->st.pairs[i].ruid <= hi)
			c->vanished[i] = 1;
	return 0;
}

static int select_cb(const struct imap_resp *r, void *ctx)
{
	struct sync_fctx *c = ctx;

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
		if (rm_add(c, uid, sync_flags_from_list(c, r->toks, (size_t)fl)) < 0)
			return -1;
	}
	return 0;
}

static int rm_cmp(const void *a, const void *b)
{
	const struct sync_rmsg *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

const struct sync_rmsg *sync_remote_find(const struct sync_fctx *c, uint32_t uid)
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

int sync_remote_select(struct sync_fctx *c)
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
	run->selected = 1;
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

int sync_remote_expunge(struct sync_fctx *c, const uint32_t *uids, size_t n)
{
	char cmd[SYNC_SET_MAX + 128], **sets;
	size_t i, nsets;
	int rc = 0;

	if (n == 0)
		return 0;
	if ((sets = sync_uid_sets(uids, n, &nsets)) == NULL)
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
	sync_uid_sets_free(sets);
	if (rc == 0)
		c->run->st->expunged_remote += n;
	return rc;
}

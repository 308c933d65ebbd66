/*
 * sync.h: flag merge, state files and folder mapping (pure functions).
 *
 * State file format (text, one item per line):
 *   mailkeep-pull-state 1
 *   remote <provider folder name, mUTF-7>
 *   uidvalidity <remote> <local>
 *   highestmodseq <n>
 *   uidnext <remote UIDNEXT>
 *   mtimes <new/ ns> <cur/ ns>
 *   pairs
 *   <ruid> <luid> <DFPRST letters or -> [keyword ...]
 */
#include "sync.h"

#include "maildir-name.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

struct sync_flags sync_flags_merge(struct sync_flags b, struct sync_flags l,
				   struct sync_flags r)
{
	struct sync_flags m;
	unsigned add = (l.sys & ~b.sys) | (r.sys & ~b.sys);
	unsigned rem = (b.sys & ~l.sys) | (b.sys & ~r.sys);
	uint32_t kadd = (l.kw & ~b.kw) | (r.kw & ~b.kw);
	uint32_t krem = (b.kw & ~l.kw) | (b.kw & ~r.kw);

	m.sys = (b.sys | add) & ~rem;
	m.kw = (b.kw | kadd) & ~krem;
	return m;
}

void sync_state_clear(struct sync_state *st)
{
	free(st->remote);
	free(st->pairs);
	memset(st, 0, sizeof(*st));
}

int sync_state_add(struct sync_state *st, uint32_t ruid, uint32_t luid, struct sync_flags f)
{
	if (st->npairs == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 64;
		struct sync_pair *n = realloc(st->pairs, cap * sizeof(*n));

		if (n == NULL)
			return -1;
		st->pairs = n;
		st->cap = cap;
	}
	st->pairs[st->npairs].ruid = ruid;
	st->pairs[st->npairs].luid = luid;
	st->pairs[st->npairs].flags = f;
	st->npairs++;
	return 0;
}

long sync_state_find(const struct sync_state *st, uint32_t ruid)
{
	size_t lo = 0, hi = st->npairs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (st->pairs[mid].ruid == ruid)
			return (long)mid;
		if (st->pairs[mid].ruid < ruid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static int pair_cmp(const void *a, const void *b)
{
	const struct sync_pair *x = a, *y = b;

	return x->ruid < y->ruid ? -1 : x->ruid > y->ruid;
}

void sync_state_sort(struct sync_state *st)
{
	size_t i, o = 0;

	if (st->npairs < 2)
		return;
	qsort(st->pairs, st->npairs, sizeof(st->pairs[0]), pair_cmp);
	for (i = 0; i < st->npairs; i++)
		if (o == 0 || st->pairs[o - 1].ruid != st->pairs[i].ruid)
			st->pairs[o++] = st->pairs[i];
	st->npairs = o;
}

static const char sys_letters[] = "DFPRST";	/* bit order of enum maildir_flag */

static int parse_u64(const char *s, unsigned long long *v)
{
	unsigned long long x = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		if (x > 1844674407370955160ULL)
			return -1;
		x = x * 10 + (unsigned)(*s - '0');
	}
	*v = x;
	return *s == '\0' ? 0 : -1;
}

static int parse_u32(const char *s, uint32_t *v)
{
	unsigned long long x;

	if (parse_u64(s, &x) < 0 || x > 0xffffffffULL)
		return -1;
	*v = (uint32_t)x;
	return 0;
}

static int parse_pair(char *line, sync_kw_index_fn kw, void *kwctx, struct sync_state *st)
{
	char *save = NULL, *a = strtok_r(line, " ", &save), *b = strtok_r(NULL, " ", &save);
	char *fl = strtok_r(NULL, " ", &save), *k;
	struct sync_flags f = { 0, 0 };
	uint32_t ruid, luid;

	if (a == NULL || b == NULL || fl == NULL || parse_u32(a, &ruid) < 0 || ruid == 0 ||
	    parse_u32(b, &luid) < 0 || luid == 0)
		return -1;
	if (strcmp(fl, "-") != 0) {
		for (; *fl; fl++) {
			const char *x = strchr(sys_letters, *fl);

			if (x == NULL)
				return -1;
			f.sys |= 1u << (x - sys_letters);
		}
	}
	while ((k = strtok_r(NULL, " ", &save)) != NULL) {
		int i = kw != NULL ? kw(kwctx, k) : -1;

		if (i >= 0 && i < 26)
			f.kw |= 1u << i;
	}
	if (st->npairs > 0 && st->pairs[st->npairs - 1].ruid >= ruid)
		return -1;
	return sync_state_add(st, ruid, luid, f) < 0 ? -2 : 0;
}

int sync_state_parse(const char *buf, size_t len, sync_kw_index_fn kw, void *kwctx,
		     struct sync_state *st, char *err, size_t errlen)
{
	char line[SYNC_STATE_MAX_LINE + 1];
	size_t pos = 0, lineno = 0;
	int in_pairs = 0;

	memset(st, 0, sizeof(*st));
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t l;
		char *save = NULL, *key, *v1, *v2;

		lineno++;
		if (nl == NULL) {
			snprintf(err, errlen, "line %zu: truncated", lineno);
			goto bad;
		}
		l = (size_t)(nl - (buf + pos));
		if (l > SYNC_STATE_MAX_LINE || memchr(buf + pos, '\0', l) != NULL) {
			snprintf(err, errlen, "line %zu: too long or has NUL", lineno);
			goto bad;
		}
		memcpy(line, buf + pos, l);
		line[l] = '\0';
		pos += l + 1;
		if (lineno == 1) {
			if (strcmp(line, "mailkeep-pull-state 1") != 0) {
				snprintf(err, errlen, "line 1: not a mailkeep-pull state file");
				goto bad;
			}
			continue;
		}
		if (in_pairs) {
			int r = parse_pair(line, kw, kwctx, st);

			if (r < 0) {
				snprintf(err, errlen, "line %zu: %s", lineno,
					 r == -2 ? "out of memory" : "bad pair");
				goto bad;
			}
			continue;
		}
		if (strncmp(line, "remote ", 7) == 0) {
			free(st->remote);
			if ((st->remote = strdup(line + 7)) == NULL) {
				snprintf(err, errlen, "out of memory");
				goto bad;
			}
			continue;
		}
		key = strtok_r(line, " ", &save);
		v1 = strtok_r(NULL, " ", &save);
		v2 = strtok_r(NULL, " ", &save);
		if (key == NULL)
			goto badline;
		if (strcmp(key, "pairs") == 0 && v1 == NULL) {
			in_pairs = 1;
		} else if (strcmp(key, "uidvalidity") == 0 && v2 != NULL) {
			if (parse_u32(v1, &st->r_uidvalidity) < 0 ||
			    parse_u32(v2, &st->l_uidvalidity) < 0)
				goto badline;
		} else if (strcmp(key, "highestmodseq") == 0 && v1 != NULL) {
			if (parse_u64(v1, &st->highestmodseq) < 0)
				goto badline;
		} else if (strcmp(key, "uidnext") == 0 && v1 != NULL) {
			if (parse_u32(v1, &st->r_uidnext) < 0)
				goto badline;
		} else if (strcmp(key, "mtimes") == 0 && v2 != NULL) {
			unsigned long long a, b;

			if (parse_u64(v1, &a) < 0 || parse_u64(v2, &b) < 0)
				goto badline;
			st->l_mtime_new = (long long)a;
			st->l_mtime_cur = (long long)b;
		} else {
			goto badline;
		}
	}
	if (lineno == 0 || !in_pairs || st->remote == NULL) {
		snprintf(err, errlen, "incomplete state file");
		goto bad;
	}
	return 0;
badline:
	snprintf(err, errlen, "line %zu: bad line", lineno);
bad:
	sync_state_clear(st);
	return EX_DATAERR;
}

int sync_state_format(const struct sync_state *st, char *const kwnames[26],
		      char **out, size_t *outlen)
{
	size_t cap = 256 + (st->remote ? strlen(st->remote) : 0) + st->npairs * 40, len = 0, i;
	char *b = malloc(cap);

	if (b == NULL)
		return EX_OSERR;
	len += (size_t)snprintf(b, cap, "mailkeep-pull-state 1\nremote %s\nuidvalidity %u %u\n"
				"highestmodseq %llu\nuidnext %u\nmtimes %lld %lld\npairs\n",
				st->remote ? st->remote : "", st->r_uidvalidity, st->l_uidvalidity,
				st->highestmodseq, st->r_uidnext, st->l_mtime_new, st->l_mtime_cur);
	for (i = 0; i < st->npairs; i++) {
		const struct sync_pair *p = &st->pairs[i];
		char fl[8];
		size_t fo = 0, need;
		int k;

		for (k = 0; k < 6; k++)
			if (p->flags.sys & (1u << k))
				fl[fo++] = sys_letters[k];
		if (fo == 0)
			fl[fo++] = '-';
		fl[fo] = '\0';
		need = 40;
		for (k = 0; k < 26; k++)
			if ((p->flags.kw & (1u << k)) && kwnames != NULL && kwnames[k] != NULL)
				need += strlen(kwnames[k]) + 1;
		if (len + need + 1 > cap) {
			char *n;

			cap = (cap + need) * 2;
			n = realloc(b, cap);
			if (n == NULL) {
				free(b);
				return EX_OSERR;
			}
			b = n;
		}
		len += (size_t)snprintf(b + len, cap - len, "%u %u %s", p->ruid, p->luid, fl);
		for (k = 0; k < 26; k++)
			if ((p->flags.kw & (1u << k)) && kwnames != NULL && kwnames[k] != NULL)
				len += (size_t)snprintf(b + len, cap - len, " %s", kwnames[k]);
		b[len++] = '\n';
		b[len] = '\0';
	}
	*out = b;
	*outlen = len;
	return 0;
}

int sync_state_file_name(const char *local, char *out, size_t outlen)
{
	size_t o = 0;

	for (; *local; local++) {
		if (o + 4 >= outlen)
			return -1;
		if (*local == '/' || *local == '%') {
			o += (size_t)snprintf(out + o, outlen - o, "%%%02X", (unsigned char)*local);
		} else {
			out[o++] = *local;
		}
	}
	if (o + 7 >= outlen)
		return -1;
	memcpy(out + o, ".state", 7);
	return 0;
}

/* ---- folder mapping ---- */

static const char *const common_names[SPECIAL_COUNT][8] = {
	[SPECIAL_DRAFTS] = { "Drafts", "Draft", "Entw&APw-rfe", NULL },
	[SPECIAL_SENT] = { "Sent", "Sent Items", "Sent Messages", "Sent Mail", "Gesendet",
		"Gesendete Elemente", NULL },
	[SPECIAL_TRASH] = { "Trash", "Deleted Items", "Deleted Messages", "Bin",
		"Papierkorb", NULL },
	[SPECIAL_JUNK] = { "Junk", "Spam", "Junk E-mail", "Junk Mail", "Bulk Mail", NULL },
	[SPECIAL_ARCHIVE] = { "Archive", "Archives", "All Mail", NULL },
};

/* Provider name with its separator turned into '/', or -1. */
static int local_from_remote(const char *name, char sep, char *out, size_t outlen)
{
	size_t i, n = strlen(name);

	if (n + 1 > outlen)
		return -1;
	for (i = 0; i < n; i++) {
		if (sep != '/' && name[i] == '/')
			return -1;	/* cannot be one level locally */
		out[i] = (sep != 0 && name[i] == sep) ? '/' : name[i];
	}
	out[n] = '\0';
	return 0;
}

void sync_map_folders(const struct config_account *a, struct sync_rfolder *v, size_t n)
{
	int chosen[SPECIAL_COUNT];
	size_t i;
	int s;

	for (s = 0; s < SPECIAL_COUNT; s++) {
		chosen[s] = -1;
		if (a != NULL && a->map[s] != NULL) {
			for (i = 0; i < n; i++)
				if (strcmp(v[i].name, a->map[s]) == 0 && !v[i].noselect) {
					chosen[s] = (int)i;
					v[i].special_by = 1;
					break;
				}
		}
	}
	for (s = 0; s < SPECIAL_COUNT; s++) {
		if (chosen[s] >= 0 || (a != NULL && a->map[s] != NULL))
			continue;
		for (i = 0; i < n && chosen[s] < 0; i++)
			if (v[i].special == s && !v[i].noselect && v[i].special_by == 0) {
				chosen[s] = (int)i;
				v[i].special_by = 2;
			}
	}
	for (s = 0; s < SPECIAL_COUNT; s++) {
		int k;

		if (chosen[s] >= 0 || (a != NULL && a->map[s] != NULL))
			continue;
		for (k = 0; common_names[s][k] != NULL && chosen[s] < 0; k++)
			for (i = 0; i < n; i++)
				if (strcasecmp(v[i].name, common_names[s][k]) == 0 &&
				    !v[i].noselect && v[i].special_by == 0) {
					chosen[s] = (int)i;
					v[i].special_by = 3;
					break;
				}
	}
	for (i = 0; i < n; i++) {
		char buf[1024];

		free(v[i].local);
		v[i].local = NULL;
		if (v[i].noselect)
			continue;
		for (s = 0; s < SPECIAL_COUNT; s++)
			if (chosen[s] == (int)i)
				break;
		if (s < SPECIAL_COUNT) {
			v[i].special = s;
			v[i].local = strdup(special_use_local[s]);
			continue;
		}
		if (v[i].special_by == 0)
			v[i].special = v[i].special >= 0 ? v[i].special : -1;
		if (strcasecmp(v[i].name, "INBOX") == 0) {
			v[i].local = strdup("INBOX");
			continue;
		}
		if (local_from_remote(v[i].name, v[i].sep, buf, sizeof(buf)) < 0)
			continue;
		/* a name taken by a mapped special folder stays unsynced */
		for (s = 0; s < SPECIAL_COUNT; s++) {
			size_t l = strlen(special_use_local[s]);

			if (chosen[s] >= 0 && strncmp(buf, special_use_local[s], l) == 0 &&
			    (buf[l] == '\0'))
				break;
		}
		if (s < SPECIAL_COUNT)
			continue;
		v[i].local = strdup(buf);
	}
}

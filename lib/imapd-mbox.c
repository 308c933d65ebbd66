/*
 * Mailbox-level IMAP commands: LIST (with LIST-EXTENDED, LIST-STATUS,
 * SPECIAL-USE, CHILDREN), LSUB, STATUS, CREATE, DELETE, RENAME,
 * (UN)SUBSCRIBE, SELECT/EXAMINE, APPEND and NAMESPACE.
 */
#include "imapd.h"
#include "imapd-internal.h"

#include "conn.h"
#include "folders.h"
#include "imap-date.h"
#include "log.h"
#include "mailbox-name.h"
#include "maildir.h"
#include "modseq.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

int imapd_mailbox_path(struct imapd *s, const char *tag, const struct imap_arg *arg,
		       char *name, size_t namelen, char *dir, size_t dirlen)
{
	const char *v = imap_arg_astring(arg);
	char err[256];

	if (v == NULL || arg->len != strlen(v)) {
		imapd_tagged(s, tag, "BAD Invalid mailbox name argument.");
		return -1;
	}
	if (strlen(v) >= namelen) {
		imapd_tagged(s, tag, "NO [CANNOT] Mailbox name too long.");
		return -1;
	}
	snprintf(name, namelen, "%s", v);
	mailbox_name_normalize(name);
	if (folder_dir(s->maildir, name, dir, dirlen, err, sizeof(err)) != 0) {
		imapd_tagged(s, tag, "NO [CANNOT] Invalid mailbox name: %s", err);
		return -1;
	}
	return 0;
}

/* The special-use flag configured for NAME ("\Junk"), or NULL. */
static const char *special_use_of(const struct imapd *s, const char *name)
{
	for (size_t i = 0; i < s->cfg->nmailboxes; i++)
		if (strcmp(s->cfg->mailboxes[i].name, name) == 0 &&
		    s->cfg->mailboxes[i].special_use >= 0)
			return special_use_flag[s->cfg->mailboxes[i].special_use];
	return NULL;
}

uint32_t imapd_read_uidvalidity(const char *dir)
{
	char path[4200], buf[128];
	ssize_t n;
	int fd;
	const char *v;

	snprintf(path, sizeof(path), "%.4150s/dovecot-uidlist", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	v = strstr(buf, " V");
	return v ? (uint32_t)strtoul(v + 2, NULL, 10) : 0;
}

/* ---- login-time folder creation ------------------------------------- */

void imapd_autocreate(struct imapd *s)
{
	char err[512];

	for (size_t i = 0; i < s->cfg->nmailboxes; i++) {
		const struct config_mailbox *mb = &s->cfg->mailboxes[i];
		if (mb->autocreate == MAILBOX_AUTO_NO || folder_exists(s->maildir, mb->name))
			continue;
		if (folder_create(s->maildir, mb->name, err, sizeof(err)) != 0) {
			log_warn("autocreate", "user=%s folder=%s error=%s", log_q(s->user),
				 log_q(mb->name), log_q(err));
			continue;
		}
		if (mb->autocreate == MAILBOX_AUTO_SUBSCRIBE &&
		    folders_subscribe(s->maildir, mb->name, 1, err, sizeof(err)) != 0)
			log_warn("autosubscribe", "user=%s folder=%s error=%s", log_q(s->user),
				 log_q(mb->name), log_q(err));
	}
}

/* ---- LIST ------------------------------------------------------------- */

/* IMAP LIST wildcard match: '*' anything, '%' anything but the separator. */
static int list_match(const char *pat, const char *name)
{
	while (*pat != '\0') {
		if (*pat == '*' || *pat == '%') {
			int any = *pat == '*';
			pat++;
			for (;;) {
				if (list_match(pat, name))
					return 1;
				if (*name == '\0' || (!any && *name == '/'))
					return 0;
				name++;
			}
		}
		if (*pat != *name)
			return 0;
		pat++;
		name++;
	}
	return *name == '\0';
}

/* Matches NAME against PATTERN, INBOX case-insensitively. */
static int pattern_match(const char *pattern, const char *name)
{
	char p[2300];

	if ((size_t)snprintf(p, sizeof(p), "%s", pattern) >= sizeof(p))
		return 0;
	mailbox_name_normalize(p);
	return list_match(p, name);
}

enum {
	SEL_SUBSCRIBED = 1, SEL_SPECIAL_USE = 2, SEL_RECURSIVE = 4,
	RET_CHILDREN = 1, RET_SUBSCRIBED = 2, RET_SPECIAL_USE = 4, RET_STATUS = 8,
};

enum { ST_MESSAGES = 1, ST_RECENT = 2, ST_UIDNEXT = 4, ST_UIDVALIDITY = 8, ST_UNSEEN = 16,
	ST_SIZE = 32, ST_HIGHESTMODSEQ = 64 };

/* Parses a STATUS item list; the bit mask, or -1. */
static int parse_status_items(const struct imap_arg *a)
{
	static const struct { const char *name; int bit; } items[] = {
		{ "MESSAGES", ST_MESSAGES }, { "RECENT", ST_RECENT }, { "UIDNEXT", ST_UIDNEXT },
		{ "UIDVALIDITY", ST_UIDVALIDITY }, { "UNSEEN", ST_UNSEEN }, { "SIZE", ST_SIZE },
		{ "HIGHESTMODSEQ", ST_HIGHESTMODSEQ },
	};
	int mask = 0;

	if (a->type != IMAP_ARG_LIST || a->count == 0)
		return -1;
	for (size_t i = 0; i < a->count; i++) {
		size_t k;
		for (k = 0; k < sizeof(items) / sizeof(items[0]); k++)
			if (imap_arg_atom_equals(&a->list[i], items[k].name))
				break;
		if (k == sizeof(items) / sizeof(items[0]))
			return -1;
		mask |= items[k].bit;
	}
	return mask;
}

/* Writes "* STATUS name (...)"; 0, or -1 if the folder cannot be read. */
static int write_status(struct imapd *s, const char *name, const char *dir, int items)
{
	struct maildir_folder *f = NULL;
	struct maildir_status st;
	struct imap_string *o = &s->out;
	char err[512];
	int first = 1;
	uint64_t highest = 0;

	if (maildir_folder_open(dir, &f, err, sizeof(err)) != 0 ||
	    maildir_folder_sync(f, 0, err, sizeof(err)) != 0) {
		maildir_folder_free(f);
		log_warn("status", "folder=%s error=%s", log_q(name), log_q(err));
		return -1;
	}
	if (items & ST_HIGHESTMODSEQ) {
		s->enabled |= IMAPD_EN_CONDSTORE;
		highest = imapd_folder_highestmodseq(dir, f);
		if (highest == 0) {
			maildir_folder_free(f);
			return -1;
		}
	}
	maildir_folder_status(f, &st);
	maildir_folder_free(f);
	imap_string_clear(o);
	imap_string_add_astring(o, name, strlen(name));
	imap_string_adds(o, " (");
#define ITEM(bit, fmt, v) do { if (items & (bit)) { imap_string_addf(o, "%s" fmt, first ? "" : " ", v); first = 0; } } while (0)
	ITEM(ST_MESSAGES, "MESSAGES %u", st.messages);
	ITEM(ST_RECENT, "RECENT %u", st.recent);
	ITEM(ST_UIDNEXT, "UIDNEXT %u", st.uidnext);
	ITEM(ST_UIDVALIDITY, "UIDVALIDITY %u", st.uidvalidity);
	ITEM(ST_UNSEEN, "UNSEEN %u", st.unseen);
	ITEM(ST_SIZE, "SIZE %llu", st.size);
	ITEM(ST_HIGHESTMODSEQ, "HIGHESTMODSEQ %llu", (unsigned long long)highest);
#undef ITEM
	imap_string_addc(o, ')');
	imapd_untagged(s, "STATUS %s", o->buf);
	return 0;
}

static void list_common(struct imapd *s, const struct imap_command *cmd, int lsub)
{
	struct folder_list fl = { 0 };
	const struct imap_arg *args = cmd->args;
	size_t nargs = cmd->count, npat = 0;
	const char *ref, *pats[64];
	int selopts = 0, retopts = 0, status_items = 0;
	char err[512];

	/* LIST [(selection)] reference patterns [RETURN (options)] */
	if (!lsub && nargs > 0 && args[0].type == IMAP_ARG_LIST) {
		for (size_t i = 0; i < args[0].count; i++) {
			const struct imap_arg *o = &args[0].list[i];
			if (imap_arg_atom_equals(o, "SUBSCRIBED"))
				selopts |= SEL_SUBSCRIBED;
			else if (imap_arg_atom_equals(o, "SPECIAL-USE"))
				selopts |= SEL_SPECIAL_USE;
			else if (imap_arg_atom_equals(o, "RECURSIVEMATCH"))
				selopts |= SEL_RECURSIVE;
			else if (o->type != IMAP_ARG_ATOM) {
				imapd_tagged(s, cmd->tag, "BAD Invalid LIST selection options.");
				return;
			}
			/* unknown selection options are ignored (RFC 5258 §3) */
		}
		if ((selopts & SEL_RECURSIVE) && !(selopts & (SEL_SUBSCRIBED | SEL_SPECIAL_USE))) {
			imapd_tagged(s, cmd->tag, "BAD RECURSIVEMATCH needs another selection option.");
			return;
		}
		args++;
		nargs--;
	}
	if (nargs < 2 || (ref = imap_arg_astring(&args[0])) == NULL) {
		imapd_tagged(s, cmd->tag, "BAD %s needs a reference and a mailbox pattern.",
			     lsub ? "LSUB" : "LIST");
		return;
	}
	if (args[1].type == IMAP_ARG_LIST && !lsub) {
		for (size_t i = 0; i < args[1].count && npat < 64; i++)
			if ((pats[npat] = imap_arg_astring(&args[1].list[i])) != NULL)
				npat++;
	} else if ((pats[0] = imap_arg_astring(&args[1])) != NULL) {
		npat = 1;
	}
	if (npat == 0) {
		imapd_tagged(s, cmd->tag, "BAD Invalid mailbox pattern.");
		return;
	}
	if (nargs > 2) {
		if (lsub || nargs != 4 || !imap_arg_atom_equals(&args[2], "RETURN") ||
		    args[3].type != IMAP_ARG_LIST) {
			imapd_tagged(s, cmd->tag, "BAD Invalid LIST arguments.");
			return;
		}
		for (size_t i = 0; i < args[3].count; i++) {
			const struct imap_arg *o = &args[3].list[i];
			if (imap_arg_atom_equals(o, "CHILDREN"))
				retopts |= RET_CHILDREN;
			else if (imap_arg_atom_equals(o, "SUBSCRIBED"))
				retopts |= RET_SUBSCRIBED;
			else if (imap_arg_atom_equals(o, "SPECIAL-USE"))
				retopts |= RET_SPECIAL_USE;
			else if (imap_arg_atom_equals(o, "STATUS") && i + 1 < args[3].count &&
				 (status_items = parse_status_items(&args[3].list[i + 1])) > 0) {
				retopts |= RET_STATUS;
				i++;
			} else {
				imapd_tagged(s, cmd->tag, "BAD Invalid LIST return options.");
				return;
			}
		}
	}
	/* LIST "" "": the hierarchy delimiter */
	if (npat == 1 && pats[0][0] == '\0') {
		if (lsub)
			imapd_untagged(s, "LSUB () \"/\" \"\"");
		else
			imapd_untagged(s, "LIST (\\Noselect) \"/\" \"\"");
		imapd_tagged(s, cmd->tag, "OK %s completed.", lsub ? "Lsub" : "List");
		return;
	}
	if (folders_list(s->maildir, &fl, err, sizeof(err)) != 0) {
		log_warn("list", "user=%s error=%s", log_q(s->user), log_q(err));
		imapd_tagged(s, cmd->tag, "NO [SERVERBUG] Cannot list folders.");
		return;
	}
	/* subscriptions may name folders that no longer exist: LSUB shows them,
	 * LIST (SUBSCRIBED) marks them \NonExistent */
	for (size_t i = 0; i < fl.n; i++) {
		const struct folder_info *fi = &fl.v[i];
		const char *su = special_use_of(s, fi->name);
		char full[2200];
		int matched = 0;
		struct imap_string *o = &s->out;

		for (size_t p = 0; p < npat && !matched; p++) {
			if ((size_t)snprintf(full, sizeof(full), "%s%s", ref, pats[p]) < sizeof(full))
				matched = pattern_match(full, fi->name);
		}
		if (!matched)
			continue;
		if ((lsub || (selopts & SEL_SUBSCRIBED)) && !fi->subscribed)
			continue;
		if ((selopts & SEL_SPECIAL_USE) && su == NULL)
			continue;
		imap_string_clear(o);
		imap_string_adds(o, lsub ? "LSUB (" : "LIST (");
		{
			int first = 1;
#define ATTR(str) do { imap_string_addf(o, "%s%s", first ? "" : " ", str); first = 0; } while (0)
			if (!fi->selectable)
				ATTR("\\Noselect");
			if (!lsub) {
				ATTR(fi->has_children ? "\\HasChildren" : "\\HasNoChildren");
				if (fi->subscribed && (retopts & RET_SUBSCRIBED || selopts & SEL_SUBSCRIBED))
					ATTR("\\Subscribed");
			}
			/* Apple Mail needs these in a plain LIST too (DESIGN.md §8) */
			if (su != NULL && !lsub)
				ATTR(su);
#undef ATTR
		}
		imap_string_adds(o, ") \"/\" ");
		imap_string_add_astring(o, fi->name, strlen(fi->name));
		imapd_untagged(s, "%s", o->buf);
		if ((retopts & RET_STATUS) && fi->selectable) {
			char dir[4200], e2[256];
			if (folder_dir(s->maildir, fi->name, dir, sizeof(dir), e2, sizeof(e2)) == 0)
				write_status(s, fi->name, dir, status_items);
		}
	}
	/* LSUB/LIST (SUBSCRIBED) of subscriptions without a folder */
	if (lsub || (selopts & SEL_SUBSCRIBED)) {
		char **subs = NULL;
		size_t nsubs = 0;
		if (folders_subscriptions(s->maildir, &subs, &nsubs, err, sizeof(err)) == 0) {
			for (size_t k = 0; k < nsubs; k++) {
				int exists = 0, matched = 0;
				char full[2200];
				for (size_t i = 0; i < fl.n && !exists; i++)
					exists = strcmp(fl.v[i].name, subs[k]) == 0;
				for (size_t p = 0; p < npat && !matched; p++) {
					if ((size_t)snprintf(full, sizeof(full), "%s%s", ref,
							     pats[p]) < sizeof(full))
						matched = pattern_match(full, subs[k]);
				}
				if (exists || !matched)
					continue;
				imap_string_clear(&s->out);
				imap_string_add_astring(&s->out, subs[k], strlen(subs[k]));
				if (lsub)
					imapd_untagged(s, "LSUB () \"/\" %s", s->out.buf);
				else
					imapd_untagged(s, "LIST (\\Subscribed \\NonExistent) \"/\" %s",
						       s->out.buf);
			}
			folders_names_free(subs, nsubs);
		}
	}
	folders_list_free(&fl);
	imapd_tagged(s, cmd->tag, "OK %s completed.", lsub ? "Lsub" : "List");
}

void imapd_cmd_list(struct imapd *s, const struct imap_command *cmd)
{
	list_common(s, cmd, 0);
}

void imapd_cmd_lsub(struct imapd *s, const struct imap_command *cmd)
{
	list_common(s, cmd, 1);
}

void imapd_cmd_namespace(struct imapd *s, const struct imap_command *cmd)
{
	imapd_untagged(s, "NAMESPACE ((\"\" \"/\")) NIL NIL");
	imapd_tagged(s, cmd->tag, "OK Namespace completed.");
}

/* ---- STATUS ----------------------------------------------------------- */

void imapd_cmd_status(struct imapd *s, const struct imap_command *cmd)
{
	char name[1025], dir[4200];
	int items;

	if (cmd->count != 2) {
		imapd_tagged(s, cmd->tag, "BAD STATUS needs a mailbox and items.");
		return;
	}
	if ((items = parse_status_items(&cmd->args[1])) < 0) {
		imapd_tagged(s, cmd->tag, "BAD Invalid STATUS items.");
		return;
	}
	if (imapd_mailbox_path(s, cmd->tag, &cmd->args[0], name, sizeof(name), dir,
			       sizeof(dir)) != 0)
		return;
	if (!folder_exists(s->maildir, name)) {
		imapd_tagged(s, cmd->tag, "NO [NONEXISTENT] Mailbox doesn't exist: %s", name);
		return;
	}
	if (s->state == IMAPD_SELECTED)
		imapd_select_sync(s, 0);
	if (write_status(s, name, dir, items) != 0) {
		imapd_tagged(s, cmd->tag, "NO [SERVERBUG] Cannot read the mailbox.");
		return;
	}
	imapd_tagged(s, cmd->tag, "OK Status completed.");
}

/* ---- CREATE / DELETE / RENAME / SUBSCRIBE ----------------------------- */

static void answer_folder_error(struct imapd *s, const char *tag, int rc, const char *err)
{
	switch (rc) {
	case EX_NOINPUT:
		imapd_tagged(s, tag, "NO [NONEXISTENT] %s", err);
		break;
	case EX_CANTCREAT:
		imapd_tagged(s, tag, "NO [%s] %s", strstr(err, "exists") ? "ALREADYEXISTS" :
			     "CANNOT", err);
		break;
	case EX_DATAERR:
		imapd_tagged(s, tag, "NO [CANNOT] %s", err);
		break;
	default:
		log_warn("folder", "user=%s error=%s", log_q(s->user), log_q(err));
		imapd_tagged(s, tag, "NO [SERVERBUG] Internal error. The administrator has been told.");
	}
}

void imapd_cmd_create(struct imapd *s, const struct imap_command *cmd)
{
	char name[1025], dir[4200], err[512];
	size_t n;
	int rc;

	if (cmd->count < 1 || cmd->count > 2) {
		imapd_tagged(s, cmd->tag, "BAD CREATE needs a mailbox name.");
		return;
	}
	if (imapd_mailbox_path(s, cmd->tag, &cmd->args[0], name, sizeof(name), dir,
			       sizeof(dir)) != 0)
		return;
	/* "CREATE a/b/" creates a/b (RFC 3501 §6.3.3) */
	n = strlen(name);
	if (n > 1 && name[n - 1] == '/')
		name[n - 1] = '\0';
	rc = folder_create(s->maildir, name, err, sizeof(err));
	if (rc != 0) {
		answer_folder_error(s, cmd->tag, rc, err);
		return;
	}
	if (folder_dir(s->maildir, name, dir, sizeof(dir), err, sizeof(err)) == 0)
		imapd_recent_init(dir);
	log_info("create", "user=%s folder=%s", log_q(s->user), log_q(name));
	imapd_tagged(s, cmd->tag, "OK Create completed.");
}

void imapd_cmd_delete(struct imapd *s, const struct imap_command *cmd)
{
	char name[1025], dir[4200], err[512];
	int rc;

	if (cmd->count != 1) {
		imapd_tagged(s, cmd->tag, "BAD DELETE needs a mailbox name.");
		return;
	}
	if (imapd_mailbox_path(s, cmd->tag, &cmd->args[0], name, sizeof(name), dir,
			       sizeof(dir)) != 0)
		return;
	/* deleting the selected mailbox closes it */
	if (s->sel != NULL && strcmp(imapd_select_name(s), name) == 0)
		imapd_select_close(s, 0);
	imapd_select_forget(s);
	rc = folder_delete(s->maildir, name, err, sizeof(err));
	if (rc != 0) {
		answer_folder_error(s, cmd->tag, rc, err);
		return;
	}
	log_info("delete", "user=%s folder=%s", log_q(s->user), log_q(name));
	imapd_tagged(s, cmd->tag, "OK Delete completed.");
}

void imapd_cmd_rename(struct imapd *s, const struct imap_command *cmd)
{
	char from[1025], to[1025], dir[4200], err[512];
	int rc;

	if (cmd->count != 2) {
		imapd_tagged(s, cmd->tag, "BAD RENAME needs two mailbox names.");
		return;
	}
	if (imapd_mailbox_path(s, cmd->tag, &cmd->args[0], from, sizeof(from), dir,
			       sizeof(dir)) != 0 ||
	    imapd_mailbox_path(s, cmd->tag, &cmd->args[1], to, sizeof(to), dir, sizeof(dir)) != 0)
		return;
	imapd_select_forget(s);	/* a kept folder could be the one renamed */
	rc = folder_rename(s->maildir, from, to, err, sizeof(err));
	if (rc != 0) {
		answer_folder_error(s, cmd->tag, rc, err);
		return;
	}
	log_info("rename", "user=%s from=%s to=%s", log_q(s->user), log_q(from), log_q(to));
	if (s->state == IMAPD_SELECTED)
		imapd_select_sync(s, 1);
	imapd_tagged(s, cmd->tag, "OK Rename completed.");
}

static void subscribe(struct imapd *s, const struct imap_command *cmd, int on)
{
	char name[1025], dir[4200], err[512];
	int rc;

	if (cmd->count != 1) {
		imapd_tagged(s, cmd->tag, "BAD %s needs a mailbox name.",
			     on ? "SUBSCRIBE" : "UNSUBSCRIBE");
		return;
	}
	if (imapd_mailbox_path(s, cmd->tag, &cmd->args[0], name, sizeof(name), dir,
			       sizeof(dir)) != 0)
		return;
	if (on && !folder_exists(s->maildir, name)) {
		imapd_tagged(s, cmd->tag, "NO [NONEXISTENT] Mailbox doesn't exist: %s", name);
		return;
	}
	rc = folders_subscribe(s->maildir, name, on, err, sizeof(err));
	if (rc != 0) {
		answer_folder_error(s, cmd->tag, rc, err);
		return;
	}
	imapd_tagged(s, cmd->tag, "OK %s completed.", on ? "Subscribe" : "Unsubscribe");
}

void imapd_cmd_subscribe(struct imapd *s, const struct imap_command *cmd)
{
	subscribe(s, cmd, 1);
}

void imapd_cmd_unsubscribe(struct imapd *s, const struct imap_command *cmd)
{
	subscribe(s, cmd, 0);
}

/* ---- SELECT / EXAMINE ------------------------------------------------- */

/*
 * Parses the SELECT/EXAMINE parameter list: (CONDSTORE) and/or
 * (QRESYNC (uidvalidity modseq [known-uids [(seqs uids)]])).  0, or -1
 * after answering BAD.
 */
static int parse_select_params(struct imapd *s, const char *tag, const struct imap_arg *a,
			       struct imapd_select_params *p)
{
	for (size_t i = 0; i < a->count; i++) {
		const struct imap_arg *q;
		char *end;
		if (imap_arg_atom_equals(&a->list[i], "CONDSTORE")) {
			p->condstore = 1;
			continue;
		}
		if (!imap_arg_atom_equals(&a->list[i], "QRESYNC") || i + 1 >= a->count ||
		    a->list[i + 1].type != IMAP_ARG_LIST) {
			imapd_tagged(s, tag, "BAD Invalid SELECT parameters.");
			return -1;
		}
		if (!(s->enabled & IMAPD_EN_QRESYNC)) {
			imapd_tagged(s, tag, "BAD QRESYNC isn't enabled.");
			return -1;
		}
		q = &a->list[++i];
		if (q->count < 2 || q->count > 4 || q->list[0].type != IMAP_ARG_ATOM ||
		    q->list[1].type != IMAP_ARG_ATOM)
			goto bad;
		errno = 0;
		p->uidvalidity = (uint32_t)strtoul(q->list[0].str, &end, 10);
		if (errno != 0 || *end != '\0' || q->list[0].str[0] == '-' || p->uidvalidity == 0)
			goto bad;
		p->modseq = strtoull(q->list[1].str, &end, 10);
		if (errno != 0 || *end != '\0' || q->list[1].str[0] == '-' || p->modseq == 0 ||
		    p->modseq > INT64_MAX)
			goto bad;
		if (q->count >= 3) {
			if (q->list[2].type != IMAP_ARG_ATOM ||
			    imap_seqset_parse(q->list[2].str, 100000, 0, &p->known) != 0)
				goto bad;
			p->has_known = 1;
		}
		/* the sequence match data only helps servers that forget expunges
		 * sooner than we do: checked for syntax, not used */
		if (q->count == 4 && (q->list[3].type != IMAP_ARG_LIST || q->list[3].count != 2))
			goto bad;
		p->qresync = 1;
	}
	return 0;
bad:
	imapd_tagged(s, tag, "BAD Invalid QRESYNC parameters.");
	return -1;
}

static void select_open_dir(struct imapd *s, const struct imap_command *cmd, int readonly,
			    const struct imapd_select_params *p);

static void select_common(struct imapd *s, const struct imap_command *cmd, int readonly)
{
	struct imapd_select_params p = { 0 };

	if (cmd->count != 1 && (cmd->count != 2 || cmd->args[1].type != IMAP_ARG_LIST)) {
		imapd_tagged(s, cmd->tag, "BAD %s needs a mailbox name.",
			     readonly ? "EXAMINE" : "SELECT");
		return;
	}
	if (cmd->count == 2 && parse_select_params(s, cmd->tag, &cmd->args[1], &p) != 0) {
		imap_seqset_free(&p.known);
		return;
	}
	/* RFC 3501: a failed SELECT leaves no mailbox selected */
	if (s->sel != NULL) {
		imapd_select_close(s, 0);
		/* required with QRESYNC (RFC 7162 §3.2.11); dovecot always sends it
		 * and clients ignore response codes they do not know */
		imapd_untagged(s, "OK [CLOSED] Previous mailbox closed.");
	}
	select_open_dir(s, cmd, readonly, &p);
	imap_seqset_free(&p.known);
}

static void select_open_dir(struct imapd *s, const struct imap_command *cmd, int readonly,
			    const struct imapd_select_params *p)
{
	char name[1025], dir[4200], cur[4300], err[512];
	struct stat st;

	if (imapd_mailbox_path(s, cmd->tag, &cmd->args[0], name, sizeof(name), dir,
			       sizeof(dir)) != 0)
		return;
	if (!folder_exists(s->maildir, name)) {
		imapd_tagged(s, cmd->tag, "NO [NONEXISTENT] Mailbox doesn't exist: %s", name);
		return;
	}
	snprintf(cur, sizeof(cur), "%s/cur", dir);
	if (stat(cur, &st) != 0) {
		/* an empty folder dovecot created lazily, or a \Noselect level */
		struct folder_list fl;
		int noselect = 0;
		if (folders_list(s->maildir, &fl, err, sizeof(err)) == 0) {
			for (size_t i = 0; i < fl.n; i++)
				if (strcmp(fl.v[i].name, name) == 0)
					noselect = !fl.v[i].selectable;
			folders_list_free(&fl);
		}
		if (noselect) {
			imapd_tagged(s, cmd->tag, "NO [CANNOT] Mailbox isn't selectable: %s", name);
			return;
		}
		if (maildir_folder_init(dir, err, sizeof(err)) != 0) {
			log_warn("select", "folder=%s error=%s", log_q(name), log_q(err));
			imapd_tagged(s, cmd->tag, "NO [SERVERBUG] Cannot open the mailbox.");
			return;
		}
	}
	imapd_select_open(s, cmd->tag, name, dir, readonly, p);
}

void imapd_cmd_select(struct imapd *s, const struct imap_command *cmd)
{
	select_common(s, cmd, 0);
}

void imapd_cmd_examine(struct imapd *s, const struct imap_command *cmd)
{
	select_common(s, cmd, 1);
}

/* ---- APPEND ----------------------------------------------------------- */

/* Flag list of APPEND into maildir flags and keyword letters of DIR. */
static int append_flags(struct imapd *s, const char *dir, const struct imap_arg *a,
			unsigned *flags, uint32_t *kw)
{
	static const struct { const char *n; unsigned bit; } sys[] = {
		{ "\\Seen", MAILDIR_FLAG_SEEN }, { "\\Answered", MAILDIR_FLAG_REPLIED },
		{ "\\Flagged", MAILDIR_FLAG_FLAGGED }, { "\\Deleted", MAILDIR_FLAG_TRASHED },
		{ "\\Draft", MAILDIR_FLAG_DRAFT }, { "$Forwarded", MAILDIR_FLAG_PASSED },
	};
	char err[256];

	*flags = 0;
	*kw = 0;
	for (size_t i = 0; i < a->count; i++) {
		const struct imap_arg *f = &a->list[i];
		size_t k;
		int idx;
		if (f->type != IMAP_ARG_ATOM)
			return -1;
		for (k = 0; k < sizeof(sys) / sizeof(sys[0]); k++)
			if (strcasecmp(f->str, sys[k].n) == 0)
				break;
		if (k < sizeof(sys) / sizeof(sys[0])) {
			*flags |= sys[k].bit;
			continue;
		}
		if (f->str[0] == '\\') {
			if (strcasecmp(f->str, "\\Recent") == 0)
				continue;
			return -1;
		}
		if (strpbrk(f->str, "(){%*\"\\]") != NULL || strlen(f->str) > MAILDIR_KEYWORD_MAX_LEN)
			return -1;
		if (maildir_keywords_ensure(dir, f->str, &idx, err, sizeof(err)) != 0) {
			log_warn("keyword", "user=%s error=%s", log_q(s->user), log_q(err));
			continue;	/* more than 26 keywords: keep the message, drop the keyword */
		}
		*kw |= 1u << idx;
	}
	return 0;
}

/*
 * Commits an APPEND.  Into the selected folder it happens under that
 * folder's modseq lock, and the arrival is logged in the same step: the
 * other sessions' lock-free catch-up (imapd-select.c) never sees the new
 * file without its modseq, so they need not queue for the lock.  The fsyncs
 * come after the lock, before the tagged OK (imapd_select_flush).
 */
static int append_commit(struct imapd *s, const char *dir, struct maildir_delivery *d,
			 struct maildir_commit *c, uint32_t *uid, char *err, size_t errlen)
{
	struct imapd_selected *sel = s->state == IMAPD_SELECTED ? s->sel : NULL;
	char e2[512] = "out of memory";
	int locked = 0, rc;

	if (sel != NULL && sel->ms != NULL && strcmp(sel->dir, dir) == 0) {
		c->defer_to = sel->folder;
		locked = imapd_sel_lock(sel);
	}
	rc = maildir_delivery_commit(d, c, uid, NULL, 0, err, errlen);
	if (rc == 0 && locked && *uid != 0 &&
	    (modseq_stage_set(sel->ms, *uid, c->flags, c->keywords) != 0 ||
	     modseq_commit(sel->ms, NULL, e2, sizeof(e2)) != 0))
		log_warn("modseq", "folder=%s error=%s", log_q(sel->name), log_q(e2));
	if (locked)
		imapd_sel_unlock(sel, locked);
	return rc;
}

void imapd_cmd_append(struct imapd *s, const struct imap_command *cmd)
{
	const struct imap_arg *a = cmd->args, *flags = NULL, *date = NULL, *lit;
	struct maildir_delivery *d = NULL;
	struct maildir_commit c = { 0 };
	char name[1025], dir[4200], err[512];
	uint32_t uid = 0;
	size_t i = 1;
	time_t t = 0;
	int tz, rc;

	if (cmd->count < 2) {
		imapd_tagged(s, cmd->tag, "BAD APPEND needs a mailbox and a message.");
		return;
	}
	if (i < cmd->count && a[i].type == IMAP_ARG_LIST)
		flags = &a[i++];
	if (i < cmd->count && a[i].type == IMAP_ARG_STRING)
		date = &a[i++];
	if (i + 1 != cmd->count) {
		imapd_tagged(s, cmd->tag, "BAD Invalid APPEND arguments (MULTIAPPEND is not "
			     "offered).");
		return;
	}
	lit = &a[i];
	if (lit->type != IMAP_ARG_LITERAL_SIZE || s->nstaged != 1) {
		imapd_tagged(s, cmd->tag, "BAD APPEND needs the message as a literal.");
		return;
	}
	if (s->staged[0].fd < 0) {
		imapd_tagged(s, cmd->tag, "NO [SERVERBUG] Cannot store the message. "
			     "The administrator has been told.");
		return;
	}
	if (date != NULL && imap_date_parse_datetime(date->str, &t, &tz) != 0) {
		imapd_tagged(s, cmd->tag, "BAD Invalid date-time.");
		return;
	}
	if (lit->literal_size == 0) {
		imapd_tagged(s, cmd->tag, "NO Can't save a zero byte message.");
		return;
	}
	if (imapd_mailbox_path(s, cmd->tag, &a[0], name, sizeof(name), dir, sizeof(dir)) != 0)
		return;
	{
		char cur[4300];
		struct stat st;
		snprintf(cur, sizeof(cur), "%s/cur", dir);
		if (!folder_exists(s->maildir, name)) {
			imapd_tagged(s, cmd->tag, "NO [TRYCREATE] Mailbox doesn't exist: %s", name);
			return;
		}
		if (stat(cur, &st) != 0 && maildir_folder_init(dir, err, sizeof(err)) != 0) {
			imapd_tagged(s, cmd->tag, "NO [CANNOT] Mailbox isn't selectable: %s", name);
			return;
		}
	}
	if (flags != NULL && append_flags(s, dir, flags, &c.flags, &c.keywords) != 0) {
		imapd_tagged(s, cmd->tag, "BAD Invalid flags.");
		return;
	}
	c.mtime = t;
	c.assign_uid = 1;
	c.to_cur = 1;
	if (lseek(s->staged[0].fd, 0, SEEK_SET) != 0) {
		imapd_tagged(s, cmd->tag, "NO [SERVERBUG] Cannot store the message.");
		return;
	}
	rc = maildir_delivery_begin(dir, &d, err, sizeof(err));
	if (rc == 0)
		rc = maildir_delivery_copy_fd(d, s->staged[0].fd, -1, err, sizeof(err));
	if (rc == 0) {
		rc = append_commit(s, dir, d, &c, &uid, err, sizeof(err));
		d = NULL;
	}
	if (rc != 0) {
		maildir_delivery_abort(d);
		log_warn("append", "user=%s folder=%s error=%s", log_q(s->user), log_q(name),
			 log_q(err));
		if (strstr(err, "No space") != NULL || strstr(err, "quota") != NULL)
			imapd_tagged(s, cmd->tag, "NO [OVERQUOTA] Not enough disk space.");
		else
			imapd_tagged(s, cmd->tag, "NO [SERVERBUG] Cannot store the message. "
				     "The administrator has been told.");
		return;
	}
	log_debug("append", "user=%s folder=%s uid=%u size=%llu", log_q(s->user), log_q(name),
		  uid, (unsigned long long)lit->literal_size);
	if (s->state == IMAPD_SELECTED)
		imapd_select_sync(s, 1);
	imapd_tagged(s, cmd->tag, "OK [APPENDUID %u %u] Append completed.", imapd_read_uidvalidity(dir),
		     uid);
}

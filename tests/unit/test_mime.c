/* Unit tests for lib/mime: outputs compared with dovecot 2.3's, stored in
 * the .expected files in tests/data/mime (see the README there). */
#include "t.h"
#include "imap-fetch.h"
#include "imap-parser.h"
#include "mime.h"

#include <dirent.h>
#include <stdlib.h>

static const struct mime_limits lim = { 50, 10000, 1024 * 1024 };
static int n_vectors, n_files;

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		n = 0;
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* Our answer for one FETCH item, in the .expected value format. */
static void compute(const struct mime_message *msg, const char *item, struct imap_string *out)
{
	if (strcmp(item, "ENVELOPE") == 0) {
		mime_write_envelope(out, msg, msg->root);
	} else if (strcmp(item, "BODYSTRUCTURE") == 0) {
		mime_write_bodystructure(out, msg, msg->root, 1);
	} else if (strcmp(item, "BODY") == 0) {
		mime_write_bodystructure(out, msg, msg->root, 0);
	} else if (strcmp(item, "RFC822.SIZE") == 0) {
		imap_string_addf(out, "%llu", (unsigned long long)mime_message_vsize(msg));
	} else {
		/* BODY[...]<o.n>: through the real command parser and fetch parser */
		struct imap_parser_limits pl = { 8192, 16, 256, 1 << 20, 1 << 20 };
		struct imap_parser *p = imap_parser_new(&pl);
		struct imap_fetch *f = NULL;
		char cmd[512];
		size_t used;
		const char *err = NULL;

		snprintf(cmd, sizeof(cmd), "a FETCH 1 (%s)\r\n", item);
		if (imap_parser_feed(p, cmd, strlen(cmd), &used) != IMAP_PARSE_COMMAND ||
		    (f = imap_fetch_parse(&imap_parser_command(p)->args[1], &err)) == NULL ||
		    f->nsections != 1) {
			imap_string_addf(out, "PARSE ERROR %s", err ? err : "");
		} else {
			const struct imap_fetch_section *s = &f->sections[0];
			if (mime_write_section(out, msg, &s->section, s->partial_offset,
					       s->has_partial ? s->partial_max : UINT64_MAX, NULL) < 0) {
				imap_string_clear(out);  /* dovecot: "" */
			}
		}
		imap_fetch_free(f);
		imap_parser_free(p);
	}
}

static void check_sample(const char *dir, const char *base)
{
	char path[1024];
	size_t mlen, elen, pos = 0;
	char *m, *e;
	struct mime_message *msg;

	snprintf(path, sizeof(path), "%s/%s.eml", dir, base);
	m = slurp(path, &mlen);
	snprintf(path, sizeof(path), "%s/%s.expected", dir, base);
	e = slurp(path, &elen);
	T_OK(m != NULL && e != NULL);
	if (m == NULL || e == NULL)
		goto out;
	msg = mime_parse(m, mlen, &lim);
	T_OK(msg != NULL);
	n_files++;
	while (msg != NULL && pos < elen) {
		char item[256];
		size_t vlen;
		char *nl = strchr(e + pos, '\n');
		struct imap_string got;

		if (strncmp(e + pos, "ITEM ", 5) != 0 || nl == NULL)
			break;
		snprintf(item, sizeof(item), "%.*s", (int)(nl - e - pos - 5), e + pos + 5);
		vlen = strtoul(nl + 1, &nl, 10);
		nl++;
		imap_string_init(&got, 0);
		compute(msg, item, &got);
		n_vectors++;
		if (got.len != vlen || (vlen > 0 && memcmp(got.buf, nl, vlen) != 0)) {
			t_cur_failed++;
			printf("# %s %s:\n#  dovecot: %.*s\n#  ours:    %s\n", base, item,
			       (int)vlen, nl, got.buf ? got.buf : "");
		}
		imap_string_free(&got);
		pos = (size_t)(nl - e) + vlen + 1;
	}
	mime_message_free(msg);
out:
	free(m);
	free(e);
}

static void test_dovecot_vectors(void)
{
	const char *dir = getenv("MIME_DATA_DIR") ? getenv("MIME_DATA_DIR") : "tests/data/mime";
	DIR *d = opendir(dir);
	struct dirent *de;

	T_OK(d != NULL);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		if (n > 4 && strcmp(de->d_name + n - 4, ".eml") == 0) {
			char base[256];
			snprintf(base, sizeof(base), "%.*s", (int)(n - 4), de->d_name);
			check_sample(dir, base);
		}
	}
	closedir(d);
	printf("# %d dovecot-compared vectors from %d samples\n", n_vectors, n_files);
	T_OK(n_files >= 16);
}

static void test_limits(void)
{
	/* nesting deeper than max_depth stays a leaf, no crash */
	struct imap_string s;
	struct mime_limits small = { 3, 5, 1024 };
	char buf[8192];
	size_t n = 0;
	int i;

	for (i = 0; i < 10; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n,
				      "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\nbody\n");
	struct mime_message *msg = mime_parse(buf, n, &small);
	T_OK(msg != NULL);
	T_OK(msg->nparts <= 5);
	imap_string_init(&s, 0);
	T_EQ(mime_write_bodystructure(&s, msg, msg->root, 1), 0);
	T_OK(s.len > 0);
	imap_string_free(&s);
	mime_message_free(msg);
	mime_message_free(NULL);
	/* empty message */
	msg = mime_parse("", 0, &lim);
	T_OK(msg != NULL);
	T_EQ(mime_message_vsize(msg), 0);
	imap_string_init(&s, 0);
	mime_write_envelope(&s, msg, msg->root);
	T_STREQ(s.buf, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	imap_string_free(&s);
	mime_message_free(msg);
}

int main(void)
{
	T_RUN(test_dovecot_vectors);
	T_RUN(test_limits);
	return t_done();
}

#include "passwd.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

struct passwd_scheme_info {
	const char *name;
	enum passwd_scheme scheme;
	const char *prefix;	/* required start of the hash, or NULL */
	int weak;
};

static const struct passwd_scheme_info passwd_schemes[] = {
	{ "SHA512-CRYPT", PASSWD_SCHEME_CRYPT, "$6$", 0 },
	{ "SHA256-CRYPT", PASSWD_SCHEME_CRYPT, "$5$", 0 },
	{ "BLF-CRYPT", PASSWD_SCHEME_CRYPT, "$2", 0 },
	{ "MD5-CRYPT", PASSWD_SCHEME_CRYPT, "$1$", 1 },
	{ "CRYPT", PASSWD_SCHEME_CRYPT, NULL, 0 },
	{ "PLAIN", PASSWD_SCHEME_PLAIN, NULL, 1 },
	{ "CLEAR", PASSWD_SCHEME_PLAIN, NULL, 1 },
	{ "CLEARTEXT", PASSWD_SCHEME_PLAIN, NULL, 1 },
};

static int passwd_bad(char *err, size_t errlen, int line, const char *why)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "line %d: %s", line, why);
	return PASSWD_BAD;
}

/* Fills out->hash/scheme from the password field F[0..n). */
static int passwd_parse_field(const char *f, size_t n, struct passwd_entry *out,
			      char *err, size_t errlen)
{
	const struct passwd_scheme_info *si = NULL;
	int line = out->line;

	if (n > 0 && f[0] == '{') {
		const char *close = memchr(f, '}', n);
		size_t nl;

		if (close == NULL)
			return passwd_bad(err, errlen, line, "unterminated {SCHEME}");
		nl = (size_t)(close - f - 1);
		for (size_t i = 0; i < sizeof(passwd_schemes) / sizeof(passwd_schemes[0]); i++) {
			if (strlen(passwd_schemes[i].name) == nl &&
			    strncasecmp(passwd_schemes[i].name, f + 1, nl) == 0) {
				si = &passwd_schemes[i];
				break;
			}
		}
		if (si == NULL)
			return passwd_bad(err, errlen, line, "unsupported password scheme");
		n -= nl + 2;
		f = close + 1;
	}
	if (n == 0)
		return passwd_bad(err, errlen, line, "empty password field");
	if (n > PASSWD_MAX_HASH)
		return passwd_bad(err, errlen, line, "password field too long");
	memcpy(out->hash, f, n);
	out->hash[n] = '\0';
	if (si == NULL) {
		/* Unmarked: dovecot would take it as CRYPT; we insist it looks like one. */
		if (out->hash[0] != '$' || crypt_checksalt(out->hash) != CRYPT_SALT_OK)
			return passwd_bad(err, errlen, line,
					  "unmarked password is not a crypt(3) hash (mark clear text {PLAIN})");
		snprintf(out->scheme_name, sizeof(out->scheme_name), "CRYPT");
		out->scheme = PASSWD_SCHEME_CRYPT;
		out->weak = 0;
		return PASSWD_ENTRY;
	}
	snprintf(out->scheme_name, sizeof(out->scheme_name), "%s", si->name);
	out->scheme = si->scheme;
	out->weak = si->weak;
	if (si->scheme == PASSWD_SCHEME_CRYPT) {
		int cs;

		if (si->prefix != NULL && strncmp(out->hash, si->prefix, strlen(si->prefix)) != 0)
			return passwd_bad(err, errlen, line, "hash does not match its {SCHEME}");
		cs = crypt_checksalt(out->hash);
		if (cs == CRYPT_SALT_METHOD_LEGACY)
			out->weak = 1;
		else if (cs != CRYPT_SALT_OK && cs != CRYPT_SALT_TOO_CHEAP)
			return passwd_bad(err, errlen, line, "hash method not supported by libcrypt");
	}
	return PASSWD_ENTRY;
}

int passwd_next(const char *buf, size_t len, size_t *pos, int *line,
		struct passwd_entry *out, char *err, size_t errlen)
{
	while (*pos < len) {
		const char *l = buf + *pos, *nl = memchr(l, '\n', len - *pos);
		size_t n = nl ? (size_t)(nl - l) : len - *pos;
		const char *c1, *c2;
		size_t ulen, plen;

		*pos += n + (nl ? 1 : 0);
		(*line)++;
		if (n > 0 && l[n - 1] == '\r')
			n--;
		if (n == 0 || l[0] == '#')
			continue;
		memset(out, 0, sizeof(*out));
		out->line = *line;
		if (n > PASSWD_MAX_LINE)
			return passwd_bad(err, errlen, *line, "line too long");
		if (memchr(l, '\0', n) != NULL)
			return passwd_bad(err, errlen, *line, "NUL byte");
		c1 = memchr(l, ':', n);
		if (c1 == NULL)
			return passwd_bad(err, errlen, *line, "no ':' after the user name");
		ulen = (size_t)(c1 - l);
		if (ulen == 0)
			return passwd_bad(err, errlen, *line, "empty user name");
		if (ulen > PASSWD_MAX_USER)
			return passwd_bad(err, errlen, *line, "user name too long");
		for (size_t i = 0; i < ulen; i++)
			if ((unsigned char)l[i] < 0x20 || l[i] == 0x7f)
				return passwd_bad(err, errlen, *line, "control character in user name");
		memcpy(out->user, l, ulen);
		out->user[ulen] = '\0';
		c2 = memchr(c1 + 1, ':', n - ulen - 1);
		plen = c2 ? (size_t)(c2 - c1 - 1) : n - ulen - 1;
		return passwd_parse_field(c1 + 1, plen, out, err, errlen);
	}
	return PASSWD_END;
}

int passwd_find(const char *buf, size_t len, const char *user, struct passwd_entry *out,
		int *nbad, char *err, size_t errlen)
{
	size_t pos = 0;
	int line = 0, r, bad = 0;
	char e[160];

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	while ((r = passwd_next(buf, len, &pos, &line, out, e, sizeof(e))) != PASSWD_END) {
		if (r == PASSWD_BAD) {
			if (bad++ == 0 && err != NULL && errlen > 0)
				snprintf(err, errlen, "%s", e);
			continue;
		}
		if (strcasecmp(out->user, user) == 0) {
			if (nbad)
				*nbad = bad;
			return 1;
		}
	}
	explicit_bzero(out, sizeof(*out));
	if (nbad)
		*nbad = bad;
	return 0;
}

static int passwd_sha256(const char *s, unsigned char md[32])
{
	unsigned int mdlen = 0;

	return EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL) == 1 && mdlen == 32;
}

int passwd_verify(const struct passwd_entry *e, const char *password)
{
	struct crypt_data *cd;
	const char *h;
	int ok = -1;

	if (e->scheme == PASSWD_SCHEME_PLAIN) {
		unsigned char a[32], b[32];

		if (passwd_sha256(password, a) && passwd_sha256(e->hash, b))
			ok = CRYPTO_memcmp(a, b, sizeof(a)) == 0;
		explicit_bzero(a, sizeof(a));
		explicit_bzero(b, sizeof(b));
		return ok;
	}
	cd = calloc(1, sizeof(*cd));
	if (cd == NULL)
		return -1;
	h = crypt_r(password, e->hash, cd);
	if (h != NULL && h[0] != '*') {
		size_t n = strlen(h);

		ok = n == strlen(e->hash) && CRYPTO_memcmp(h, e->hash, n) == 0;
	}
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

void passwd_verify_dummy(const char *password)
{
	struct passwd_entry e;
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];

	memset(&e, 0, sizeof(e));
	e.scheme = PASSWD_SCHEME_CRYPT;
	/* yescrypt at libcrypt's default cost, as mkpasswd makes them. */
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, setting, sizeof(setting)) == NULL)
		snprintf(setting, sizeof(setting), "$6$mailkeepdummy$");
	snprintf(e.hash, sizeof(e.hash), "%s", setting);
	(void)passwd_verify(&e, password);
	explicit_bzero(&e, sizeof(e));
}

int passwd_read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	char *b;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	*buf = NULL;
	*len = 0;
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return EX_NOINPUT;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return EX_CONFIG;
	}
	if (st.st_size > PASSWD_MAX_FILE) {
		snprintf(err, errlen, "%s: larger than %d bytes", path, PASSWD_MAX_FILE);
		close(fd);
		return EX_CONFIG;
	}
	b = malloc((size_t)st.st_size + 1);
	if (b == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		close(fd);
		return EX_CONFIG;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, b + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			passwd_free_buf(b, got);
			close(fd);
			return EX_NOINPUT;
		}
		if (r == 0)
			break;	/* shrank while we read: take what is there */
		got += (size_t)r;
	}
	close(fd);
	b[got] = '\0';
	*buf = b;
	*len = got;
	return 0;
}

void passwd_free_buf(char *buf, size_t len)
{
	if (buf == NULL)
		return;
	explicit_bzero(buf, len);
	free(buf);
}

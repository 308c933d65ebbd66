#include "auth.h"

#include "config.h"
#include "ldapauth.h"
#include "log.h"
#include "passwd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

struct auth {
	const struct config *cfg;
	struct ldapauth *ldap;		/* NULL: passwd file */
	int penalty_warned;
};

/* One slot of state_dir/auth-penalty, host byte order (a local cache). */
struct auth_penalty_slot {
	uint32_t tag;			/* 0: empty; else from the address hash */
	uint32_t failures;
	int64_t last;			/* time of the last failure */
};

const char *auth_status_str(enum auth_status s)
{
	switch (s) {
	case AUTH_OK: return "ok";
	case AUTH_REJECTED: return "rejected";
	case AUTH_UNAVAILABLE: return "unavailable";
	}
	return "unavailable";
}

int auth_open(const struct config *cfg, struct auth **out, char *err, size_t errlen)
{
	struct auth *a;
	int r;

	*out = NULL;
	if (!cfg->ldap.present && !(cfg->users.present && cfg->users.passwd_file != NULL)) {
		snprintf(err, errlen, "%s: no [ldap] section and no [users] passwd_file", cfg->path);
		return EX_CONFIG;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		snprintf(err, errlen, "out of memory");
		return EX_CONFIG;
	}
	a->cfg = cfg;
	if (cfg->ldap.present) {
		r = ldapauth_new(&cfg->ldap, &a->ldap, err, errlen);
		if (r != 0) {
			free(a);
			return r;
		}
	}
	*out = a;
	return 0;
}

void auth_free(struct auth *a)
{
	if (a == NULL)
		return;
	ldapauth_free(a->ldap);
	free(a);
}

int auth_is_ldap(const struct auth *a)
{
	return a->ldap != NULL;
}

struct ldapauth *auth_ldap(struct auth *a)
{
	return a->ldap;
}

/* ---- penalty store ---- */

unsigned auth_penalty_delay_ms(unsigned failures)
{
	unsigned ms;

	if (failures == 0)
		return 0;
	if (failures > 7)
		return AUTH_PENALTY_CAP_MS;
	ms = 250u << (failures - 1);
	return ms > AUTH_PENALTY_CAP_MS ? AUTH_PENALTY_CAP_MS : ms;
}

/*
 * Slot index and tag of ADDR: SHA-256 of the address bytes (IPv4, the /64
 * of an IPv6 address, or the string when it is not numeric).
 */
static void auth_penalty_key(const char *addr, uint32_t *slot, uint32_t *tag)
{
	unsigned char key[1 + 256], md[32];
	unsigned char a6[16];
	unsigned int mdlen = 0;
	size_t n;

	if (inet_pton(AF_INET, addr, a6) == 1) {
		key[0] = 4;
		memcpy(key + 1, a6, 4);
		n = 5;
	} else if (inet_pton(AF_INET6, addr, a6) == 1) {
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		if (memcmp(a6, mapped, 12) == 0) {
			key[0] = 4;
			memcpy(key + 1, a6 + 12, 4);
			n = 5;
		} else {
			key[0] = 6;
			memcpy(key + 1, a6, 8);
			n = 9;
		}
	} else {
		n = strnlen(addr, 255);
		key[0] = 0;
		memcpy(key + 1, addr, n);
		n++;
	}
	if (EVP_Digest(key, n, md, &mdlen, EVP_sha256(), NULL) != 1)
		memset(md, 0, sizeof(md));
	*slot = (((uint32_t)md[0] << 24) | ((uint32_t)md[1] << 16) | ((uint32_t)md[2] << 8) |
		 md[3]) % AUTH_PENALTY_SLOTS;
	*tag = (((uint32_t)md[4] << 24) | ((uint32_t)md[5] << 16) | ((uint32_t)md[6] << 8) |
		md[7]) | 1;
}

/* Opens and locks the store; -1 on failure. */
static int auth_penalty_open(const char *state_dir, int op)
{
	char path[4096];
	int fd, n;

	if (state_dir == NULL)
		return -1;
	n = snprintf(path, sizeof(path), "%s/auth-penalty", state_dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -1;
	fd = open(path, (op == LOCK_SH ? O_RDONLY : O_RDWR | O_CREAT) | O_CLOEXEC | O_NOFOLLOW |
		  O_NOCTTY, 0600);
	if (fd < 0)
		return -1;
	while (flock(fd, op) < 0) {
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

/* Reads slot I (an all-zero slot past the end of a short file). */
static int auth_penalty_read(int fd, uint32_t i, struct auth_penalty_slot *s)
{
	ssize_t r = pread(fd, s, sizeof(*s), (off_t)i * (off_t)sizeof(*s));

	if (r < 0)
		return -1;
	if ((size_t)r < sizeof(*s))
		memset(s, 0, sizeof(*s));
	return 0;
}

unsigned auth_penalty_get(const char *state_dir, const char *addr, time_t now)
{
	struct auth_penalty_slot s;
	uint32_t i, tag;
	int fd;

	if (addr == NULL)
		return 0;
	fd = auth_penalty_open(state_dir, LOCK_SH);
	if (fd < 0)
		return 0;
	auth_penalty_key(addr, &i, &tag);
	if (auth_penalty_read(fd, i, &s) < 0)
		s.tag = 0;
	close(fd);
	/* Another address in the slot, or a stale entry: no penalty. */
	if (s.tag != tag || now - s.last > AUTH_PENALTY_FORGET || now < s.last - 60)
		return 0;
	return auth_penalty_delay_ms(s.failures);
}

static int auth_penalty_write(const char *state_dir, const char *addr, time_t now, int fail)
{
	struct auth_penalty_slot s;
	uint32_t i, tag;
	int fd, r = -1;

	if (addr == NULL)
		return 0;
	fd = auth_penalty_open(state_dir, LOCK_EX);
	if (fd < 0)
		return -1;
	auth_penalty_key(addr, &i, &tag);
	if (auth_penalty_read(fd, i, &s) < 0)
		goto out;
	if (!fail) {
		if (s.tag != tag) {
			r = 0;	/* nothing of ours to forget */
			goto out;
		}
		memset(&s, 0, sizeof(s));
	} else {
		/* A colliding address takes the slot over: nobody inherits a penalty. */
		if (s.tag != tag || now - s.last > AUTH_PENALTY_FORGET || now < s.last - 60)
			s.failures = 0;
		s.tag = tag;
		if (s.failures < 64)
			s.failures++;
		s.last = now;
	}
	if (pwrite(fd, &s, sizeof(s), (off_t)i * (off_t)sizeof(s)) == (ssize_t)sizeof(s))
		r = 0;
out:
	close(fd);
	return r;
}

int auth_penalty_fail(const char *state_dir, const char *addr, time_t now)
{
	return auth_penalty_write(state_dir, addr, now, 1);
}

int auth_penalty_reset(const char *state_dir, const char *addr)
{
	return auth_penalty_write(state_dir, addr, time(NULL), 0);
}

static void auth_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- backends ---- */

static void auth_reject(struct auth_result *res, enum auth_reason why, const char *text)
{
	res->status = AUTH_REJECTED;
	res->reason = why;
	snprintf(res->detail, sizeof(res->detail), "%s", text);
}

static void auth_check_ldap(struct auth *a, const char *user, const char *password,
			    struct auth_result *res)
{
	char err[sizeof(res->detail)];
	enum ldapauth_result r;

	r = ldapauth_check(a->ldap, user, password, res->dn, sizeof(res->dn),
			   res->login, sizeof(res->login), err, sizeof(err));
	switch (r) {
	case LDAPAUTH_OK:
		res->status = AUTH_OK;
		break;
	case LDAPAUTH_BAD_PASSWORD:
		auth_reject(res, AUTH_REASON_BAD_PASSWORD, "bad password");
		break;
	case LDAPAUTH_NO_USER:
		auth_reject(res, AUTH_REASON_NO_USER, "no such user");
		break;
	case LDAPAUTH_NOT_IN_GROUP:
		res->status = AUTH_REJECTED;
		res->reason = AUTH_REASON_NOT_IN_GROUP;
		snprintf(res->detail, sizeof(res->detail), "not in group %s",
			 a->cfg->ldap.user_group);
		break;
	case LDAPAUTH_AMBIGUOUS:
		auth_reject(res, AUTH_REASON_AMBIGUOUS, "ambiguous user");
		break;
	case LDAPAUTH_UNAVAILABLE:
		res->status = AUTH_UNAVAILABLE;
		snprintf(res->detail, sizeof(res->detail), "%s", err);
		break;
	}
}

static void auth_check_passwd(struct auth *a, const char *user, const char *password,
			      struct auth_result *res)
{
	const char *path = a->cfg->users.passwd_file;
	struct passwd_entry *e;
	char *buf = NULL, err[200];
	size_t len = 0;
	int nbad = 0, r;

	r = passwd_read_file(path, &buf, &len, res->detail, sizeof(res->detail));
	if (r != 0) {
		res->status = AUTH_UNAVAILABLE;
		return;
	}
	e = malloc(sizeof(*e));
	if (e == NULL) {
		passwd_free_buf(buf, len);
		res->status = AUTH_UNAVAILABLE;
		snprintf(res->detail, sizeof(res->detail), "out of memory");
		return;
	}
	r = passwd_find(buf, len, user, e, &nbad, err, sizeof(err));
	passwd_free_buf(buf, len);
	if (nbad > 0)
		log_warn("passwd_file_bad_lines", "file=%s count=%d first=%s", log_q(path), nbad,
			 log_q(err));
	if (!r) {
		passwd_verify_dummy(password);
		auth_reject(res, AUTH_REASON_NO_USER, "no such user");
		goto out;
	}
	if (e->weak)
		log_warn("passwd_weak_scheme", "file=%s line=%d user=%s scheme=%s", log_q(path),
			 e->line, log_q(e->user), e->scheme_name);
	snprintf(res->login, sizeof(res->login), "%s", e->user);
	switch (passwd_verify(e, password)) {
	case 1:
		res->status = AUTH_OK;
		break;
	case 0:
		auth_reject(res, AUTH_REASON_BAD_PASSWORD, "bad password");
		break;
	default:
		log_err("passwd_bad_hash", "file=%s line=%d user=%s scheme=%s", log_q(path),
			e->line, log_q(e->user), e->scheme_name);
		auth_reject(res, AUTH_REASON_BAD_HASH, "unusable password hash");
		break;
	}
out:
	explicit_bzero(e, sizeof(*e));
	free(e);
}

static int auth_valid_name(const char *user, size_t len)
{
	if (len == 0 || len > AUTH_MAX_USER)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)user[i] < 0x20 || user[i] == 0x7f)
			return 0;
	return 1;
}

enum auth_status auth_check(struct auth *a, const char *user, size_t user_len,
			    const char *password, size_t password_len,
			    const char *source_addr, struct auth_result *res)
{
	const struct config *cfg = a->cfg;
	char name[AUTH_MAX_USER + 1], *pw = NULL;

	memset(res, 0, sizeof(*res));
	if (source_addr != NULL) {
		res->penalty_ms = auth_penalty_get(cfg->state_dir, source_addr, time(NULL));
		if (res->penalty_ms > 0)
			auth_sleep_ms(res->penalty_ms);
	}
	if (!auth_valid_name(user, user_len)) {
		auth_reject(res, AUTH_REASON_BAD_NAME, "invalid user name");
		snprintf(name, sizeof(name), "%.*s", (int)(user_len > 64 ? 64 : user_len), user);
		goto done;
	}
	memcpy(name, user, user_len);
	name[user_len] = '\0';
	if (password_len == 0) {
		auth_reject(res, AUTH_REASON_EMPTY_PASSWORD, "empty password");
		goto done;
	}
	if (password_len > AUTH_MAX_PASSWORD || memchr(password, '\0', password_len) != NULL) {
		auth_reject(res, AUTH_REASON_BAD_PASSWORD, "bad password");
		goto done;
	}
	pw = malloc(password_len + 1);
	if (pw == NULL) {
		res->status = AUTH_UNAVAILABLE;
		snprintf(res->detail, sizeof(res->detail), "out of memory");
		goto done;
	}
	memcpy(pw, password, password_len);
	pw[password_len] = '\0';
	if (a->ldap != NULL)
		auth_check_ldap(a, name, pw, res);
	else
		auth_check_passwd(a, name, pw, res);
	explicit_bzero(pw, password_len);
	free(pw);
	if (res->status == AUTH_OK) {
		char err[256];
		int r;

		if (res->login[0] == '\0')
			snprintf(res->login, sizeof(res->login), "%s", name);
		r = cfg->mail_dir == NULL ? 0 :
		    config_user_home(cfg, res->login, res->home, sizeof(res->home), err, sizeof(err));
		if (r == EX_USAGE) {
			/* Right password, but the name cannot be a directory: refuse. */
			res->home[0] = '\0';
			auth_reject(res, AUTH_REASON_BAD_NAME, "invalid user name");
		} else if (r != 0) {
			res->home[0] = '\0';
			log_warn("auth_no_home", "user=%s error=%s", log_q(res->login), log_q(err));
		}
	}
done:
	if (source_addr != NULL && res->status != AUTH_UNAVAILABLE) {
		int r = res->status == AUTH_OK ? auth_penalty_reset(cfg->state_dir, source_addr) :
			auth_penalty_fail(cfg->state_dir, source_addr, time(NULL));

		if (r < 0 && !a->penalty_warned) {
			a->penalty_warned = 1;
			log_warn("auth_penalty_unusable", "state_dir=%s error=%s",
				 log_q(cfg->state_dir ? cfg->state_dir : "(unset)"),
				 log_q(cfg->state_dir ? strerror(errno) : "no state_dir"));
		}
	}
	if (res->status == AUTH_OK)
		log_info("auth", "result=ok user=%s source=%s dn=%s penalty_ms=%u",
			 log_q(res->login), source_addr ? log_q(source_addr) : "-",
			 res->dn[0] ? log_q(res->dn) : "-", res->penalty_ms);
	else if (res->status == AUTH_REJECTED)
		log_info("auth", "result=rejected user=%s source=%s reason=%s penalty_ms=%u",
			 log_q(name), source_addr ? log_q(source_addr) : "-", log_q(res->detail),
			 res->penalty_ms);
	else
		log_err("auth", "result=unavailable user=%s source=%s error=%s",
			log_q(name), source_addr ? log_q(source_addr) : "-", log_q(res->detail));
	return res->status;
}

long auth_b64_decode(const char *in, size_t n, unsigned char *out, size_t outlen)
{
	int len;

	if (n % 4 != 0 || n / 4 * 3 > outlen)
		return -1;
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (in[i] == '\0')
			return -1;
	len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
	if (len < 0)
		return -1;
	if (in[n - 1] == '=')
		len--;
	if (in[n - 2] == '=')
		len--;
	return len;
}

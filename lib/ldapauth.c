#include "ldapauth.h"

#include "config.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <ldap.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define LDAPAUTH_MAX_FILTER 4096

struct ldapauth {
	LDAP *ld;
	char host[256];
	int port;
	int bound_admin;		/* the connection is bound as the admin */
	char uri[300];
	enum config_tls tls;
	char *ca_file;
	int timeout;
	char admin_dn[LDAPAUTH_MAX_DN];
	char people_dn[LDAPAUTH_MAX_DN];
	char group_dn[LDAPAUTH_MAX_DN];
	char *admin_password;
};

const char *ldapauth_result_str(enum ldapauth_result r)
{
	switch (r) {
	case LDAPAUTH_OK: return "ok";
	case LDAPAUTH_BAD_PASSWORD: return "bad password";
	case LDAPAUTH_NO_USER: return "no such user";
	case LDAPAUTH_NOT_IN_GROUP: return "not in group";
	case LDAPAUTH_AMBIGUOUS: return "ambiguous user";
	case LDAPAUTH_UNAVAILABLE: return "unavailable";
	}
	return "unavailable";
}

int ldapauth_escape_filter(const char *s, size_t len, char *out, size_t outlen)
{
	struct berval in = { .bv_len = len, .bv_val = (char *)s }, esc = { 0, NULL };
	int r = -1;

	if (ldap_bv2escaped_filter_value(&in, &esc) != 0)
		return -1;
	if (esc.bv_len < outlen) {
		/* libldap leaves bv_val NULL for an empty value (memcpy(NULL) is UB) */
		if (esc.bv_len > 0)
			memcpy(out, esc.bv_val, esc.bv_len);
		out[esc.bv_len] = '\0';
		r = 0;
	}
	ber_memfree(esc.bv_val);
	return r;
}

int ldapauth_make_dn(const char *attr, const char *value, const char *suffix,
		     char *out, size_t outlen)
{
	LDAPAVA ava = {
		.la_attr = { .bv_len = strlen(attr), .bv_val = (char *)attr },
		.la_value = { .bv_len = strlen(value), .bv_val = (char *)value },
		.la_flags = LDAP_AVA_STRING,
	};
	LDAPAVA *rdn[2] = { &ava, NULL };
	LDAPRDN dn[2] = { rdn, NULL };
	struct berval bv = { 0, NULL };
	int n;

	if (value[0] == '\0' || ldap_dn2bv(dn, &bv, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
		return -1;
	n = snprintf(out, outlen, "%s%s%s", bv.bv_val, suffix ? "," : "", suffix ? suffix : "");
	ldap_memfree(bv.bv_val);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

static int ldapauth_valid_dn(const char *s)
{
	LDAPDN dn = NULL;

	if (ldap_str2dn(s, &dn, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
		return 0;
	ldap_dnfree(dn);
	return 1;
}

int ldapauth_new(const struct config_ldap *lc, struct ldapauth **out, char *err, size_t errlen)
{
	struct ldapauth *la;
	char suffix[LDAPAUTH_MAX_DN];
	const char *host;
	int r, v6;

	*out = NULL;
	if (!lc->present || lc->host == NULL || lc->dc_domain == NULL || lc->admin_name == NULL ||
	    lc->admin_password_file == NULL || lc->user_group == NULL) {
		snprintf(err, errlen, "[ldap] needs host, dc_domain, admin_name, "
			 "admin_password_file and user_group");
		return EX_CONFIG;
	}
	if (!ldapauth_valid_dn(lc->dc_domain)) {
		snprintf(err, errlen, "[ldap] dc_domain is not a DN: %s", log_q(lc->dc_domain));
		return EX_CONFIG;
	}
	la = calloc(1, sizeof(*la));
	if (la == NULL) {
		snprintf(err, errlen, "out of memory");
		return EX_CONFIG;
	}
	la->tls = lc->tls;
	la->timeout = lc->timeout > 0 ? lc->timeout : 10;
	host = lc->host;
	snprintf(la->host, sizeof(la->host), "%s", host);
	la->port = lc->port > 0 ? lc->port : lc->tls == CONFIG_TLS_LDAPS ? 636 : 389;
	v6 = strchr(host, ':') != NULL;
	snprintf(la->uri, sizeof(la->uri), "%s://%s%s%s:%d",
		 lc->tls == CONFIG_TLS_LDAPS ? "ldaps" : "ldap", v6 ? "[" : "", host,
		 v6 ? "]" : "", la->port);
	snprintf(suffix, sizeof(suffix), "ou=people,%s", lc->dc_domain);
	snprintf(la->people_dn, sizeof(la->people_dn), "%s", suffix);
	if (ldapauth_make_dn("uid", lc->admin_name, suffix, la->admin_dn, sizeof(la->admin_dn)) < 0) {
		snprintf(err, errlen, "[ldap] admin_name cannot make a DN");
		ldapauth_free(la);
		return EX_CONFIG;
	}
	snprintf(suffix, sizeof(suffix), "ou=groups,%s", lc->dc_domain);
	if (ldapauth_make_dn("cn", lc->user_group, suffix, la->group_dn, sizeof(la->group_dn)) < 0) {
		snprintf(err, errlen, "[ldap] user_group cannot make a DN");
		ldapauth_free(la);
		return EX_CONFIG;
	}
	if (lc->ca_file != NULL && (la->ca_file = strdup(lc->ca_file)) == NULL) {
		snprintf(err, errlen, "out of memory");
		ldapauth_free(la);
		return EX_CONFIG;
	}
	r = config_read_secret(lc->admin_password_file, &la->admin_password, err, errlen);
	if (r != 0) {
		ldapauth_free(la);
		return r;
	}
	*out = la;
	return 0;
}

static void ldapauth_drop(struct ldapauth *la)
{
	if (la->ld != NULL)
		ldap_unbind_ext_s(la->ld, NULL, NULL);
	la->ld = NULL;
	la->bound_admin = 0;
}

void ldapauth_free(struct ldapauth *la)
{
	if (la == NULL)
		return;
	ldapauth_drop(la);
	secret_free(la->admin_password);
	free(la->ca_file);
	explicit_bzero(la, sizeof(*la));
	free(la);
}

/* Connection-level failures: worth one reconnect, and "unavailable". */
static int ldapauth_transport_error(int rc)
{
	return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT ||
	       rc == LDAP_UNAVAILABLE || rc == LDAP_BUSY || rc == LDAP_TIMELIMIT_EXCEEDED;
}

/*
 * libldap reports why a TLS handshake failed (hostname mismatch, ...) only
 * through its debug log; the diagnostic message says "(unknown error
 * code)".  Its LDAP_DEBUG_ANY lines are caught here (they would otherwise
 * go to stderr unformatted) and the first "TLS: " one since the last
 * connect attempt is kept for the error text.  Process-wide, like libldap's
 * own debug settings.
 */
static char ldapauth_tls_diag[200];

static void ldapauth_log_print(const char *msg)
{
	size_t n;

	if (ldapauth_tls_diag[0] != '\0' || strncmp(msg, "TLS: ", 5) != 0 ||
	    strstr(msg, "(unknown error code)") != NULL)
		return;
	snprintf(ldapauth_tls_diag, sizeof(ldapauth_tls_diag), "%s", msg);
	n = strlen(ldapauth_tls_diag);
	while (n > 0 && (ldapauth_tls_diag[n - 1] == '\n' || ldapauth_tls_diag[n - 1] == '.'))
		ldapauth_tls_diag[--n] = '\0';
}

static void ldapauth_catch_tls_diag(void)
{
	static int done;
	int level = 0x8000;	/* LDAP_DEBUG_NONE: only LDAP_DEBUG_ANY lines pass */

	ldapauth_tls_diag[0] = '\0';
	if (done)
		return;
	done = 1;
	ber_set_option(NULL, LBER_OPT_LOG_PRINT_FN, (void *)ldapauth_log_print);
	ldap_set_option(NULL, LDAP_OPT_DEBUG_LEVEL, &level);
}

/* 1 if host:port accepts a TCP connection within the timeout. */
static int ldapauth_tcp_probe(const struct ldapauth *la)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL, *p;
	char port[16];
	int ok = 0;

	snprintf(port, sizeof(port), "%d", la->port);
	if (getaddrinfo(la->host, port, &hints, &ai) != 0)
		return 0;
	for (p = ai; p != NULL && !ok; p = p->ai_next) {
		int fd = socket(p->ai_family, p->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				p->ai_protocol);
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		if (fd < 0)
			continue;
		if (connect(fd, p->ai_addr, p->ai_addrlen) == 0)
			ok = 1;
		else if (errno == EINPROGRESS && poll(&pfd, 1, la->timeout * 1000) == 1 &&
			 getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
			ok = 1;
		close(fd);
	}
	freeaddrinfo(ai);
	return ok;
}

/* "what: libldap's text (server's diagnostic)" into err. */
static void ldapauth_error(struct ldapauth *la, int rc, const char *what, char *err, size_t errlen)
{
	char *diag = NULL;

	if (la->tls != CONFIG_TLS_NONE && (rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR) &&
	    (ldapauth_tls_diag[0] != '\0' || ldapauth_tcp_probe(la))) {
		snprintf(err, errlen, "%s: TLS handshake failed: %s", la->uri,
			 ldapauth_tls_diag[0] ? ldapauth_tls_diag :
			 "certificate not trusted (check ca_file) or server not speaking TLS");
		return;
	}
	if (la->ld != NULL)
		ldap_get_option(la->ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
	if (diag != NULL && strcmp(diag, "(unknown error code)") == 0) {
		ldap_memfree(diag);
		diag = NULL;
	}
	snprintf(err, errlen, "%s %s: %s%s%s%s", la->uri, what, ldap_err2string(rc),
		 diag && *diag ? " (" : "", diag && *diag ? diag : "", diag && *diag ? ")" : "");
	if (diag != NULL)
		ldap_memfree(diag);
}

static int ldapauth_connect(struct ldapauth *la, char *err, size_t errlen)
{
	struct timeval tv = { .tv_sec = la->timeout, .tv_usec = 0 };
	int v3 = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND, zero = 0;
	int tlsmin = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2, rc;

	if (la->ld != NULL)
		return LDAP_SUCCESS;
	if (la->tls != CONFIG_TLS_NONE)
		ldapauth_catch_tls_diag();
	rc = ldap_initialize(&la->ld, la->uri);
	if (rc != LDAP_SUCCESS) {
		ldapauth_error(la, rc, "init", err, errlen);
		la->ld = NULL;
		return rc;
	}
	if ((rc = ldap_set_option(la->ld, LDAP_OPT_PROTOCOL_VERSION, &v3)) != LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(la->ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF)) != LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(la->ld, LDAP_OPT_NETWORK_TIMEOUT, &tv)) != LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(la->ld, LDAP_OPT_TIMEOUT, &tv)) != LDAP_OPT_SUCCESS)
		goto fail;
	if (la->tls != CONFIG_TLS_NONE) {
		if ((rc = ldap_set_option(la->ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand)) != LDAP_OPT_SUCCESS ||
		    (rc = ldap_set_option(la->ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &tlsmin)) != LDAP_OPT_SUCCESS)
			goto fail;
		if (la->ca_file != NULL &&
		    (rc = ldap_set_option(la->ld, LDAP_OPT_X_TLS_CACERTFILE, la->ca_file)) != LDAP_OPT_SUCCESS)
			goto fail;
		/* The options above apply only to a context made after them. */
		if ((rc = ldap_set_option(la->ld, LDAP_OPT_X_TLS_NEWCTX, &zero)) != LDAP_OPT_SUCCESS) {
			ldapauth_error(la, rc, "TLS setup (ca_file?)", err, errlen);
			ldapauth_drop(la);
			return rc;
		}
	}
	if (la->tls == CONFIG_TLS_STARTTLS) {
		rc = ldap_start_tls_s(la->ld, NULL, NULL);
		if (rc != LDAP_SUCCESS) {
			ldapauth_error(la, rc, "StartTLS", err, errlen);
			ldapauth_drop(la);
			return rc == LDAP_SUCCESS ? LDAP_OTHER : rc;
		}
	}
	return LDAP_SUCCESS;
fail:
	ldapauth_error(la, rc, "options", err, errlen);
	ldapauth_drop(la);
	return rc == LDAP_SUCCESS ? LDAP_OTHER : rc;
}

static int ldapauth_bind(struct ldapauth *la, const char *dn, const char *pw)
{
	struct berval cred = { .bv_len = strlen(pw), .bv_val = (char *)pw };

	la->bound_admin = 0;
	return ldap_sasl_bind_s(la->ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
}

static int ldapauth_bind_admin(struct ldapauth *la, char *err, size_t errlen)
{
	int rc;

	if (la->bound_admin)
		return LDAP_SUCCESS;
	rc = ldapauth_bind(la, la->admin_dn, la->admin_password);
	if (rc != LDAP_SUCCESS) {
		ldapauth_error(la, rc, ldapauth_transport_error(rc) ? "connect" :
			       "admin bind refused (check admin_name/admin_password_file)", err, errlen);
		return rc;
	}
	la->bound_admin = 1;
	return LDAP_SUCCESS;
}

/* Search under ou=people; *res owned by the caller (ldap_msgfree). */
static int ldapauth_search(struct ldapauth *la, const char *filter, char **attrs, int sizelimit,
			   LDAPMessage **res, char *err, size_t errlen)
{
	struct timeval tv = { .tv_sec = la->timeout, .tv_usec = 0 };
	int rc;

	*res = NULL;
	rc = ldap_search_ext_s(la->ld, la->people_dn, LDAP_SCOPE_SUBTREE, filter, attrs, 0,
			       NULL, NULL, &tv, sizelimit, res);
	if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED && rc != LDAP_NO_SUCH_OBJECT) {
		ldapauth_error(la, rc, "search", err, errlen);
		ldap_msgfree(*res);
		*res = NULL;
	}
	return rc == LDAP_SIZELIMIT_EXCEEDED || rc == LDAP_NO_SUCH_OBJECT ? LDAP_SUCCESS : rc;
}

/* Connects and binds as the admin; 0 or an LDAP error code with err set. */
static int ldapauth_ready(struct ldapauth *la, char *err, size_t errlen)
{
	int rc = ldapauth_connect(la, err, errlen);

	if (rc != LDAP_SUCCESS)
		return rc;
	return ldapauth_bind_admin(la, err, errlen);
}

/* Builds "(&(objectClass=inetOrgPerson)(mail=U)[(memberOf=G)])". */
static int ldapauth_user_filter(struct ldapauth *la, const char *user, int with_group,
				char *out, size_t outlen)
{
	char eu[LDAPAUTH_MAX_USER * 3 + 1], eg[LDAPAUTH_MAX_DN * 3 + 1];
	int n;

	if (ldapauth_escape_filter(user, strlen(user), eu, sizeof(eu)) < 0 ||
	    ldapauth_escape_filter(la->group_dn, strlen(la->group_dn), eg, sizeof(eg)) < 0)
		return -1;
	if (with_group)
		n = snprintf(out, outlen, "(&(objectClass=inetOrgPerson)(mail=%s)(memberOf=%s))",
			     eu, eg);
	else
		n = snprintf(out, outlen, "(&(objectClass=inetOrgPerson)(mail=%s))", eu);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

static void ldapauth_copy(char *dst, size_t len, const char *src)
{
	if (dst != NULL && len > 0)
		snprintf(dst, len, "%s", src);
}

/*
 * One attempt of the whole check.  Returns the result; *rc_out is the LDAP
 * code behind an UNAVAILABLE (to decide on a reconnect).
 */
static enum ldapauth_result ldapauth_check_once(struct ldapauth *la, const char *user,
						const char *password, char *dn, size_t dnlen,
						char *mail, size_t maillen, char *err, size_t errlen,
						int *rc_out)
{
	char filter[LDAPAUTH_MAX_FILTER];
	char *attrs[] = { "mail", NULL };
	LDAPMessage *res = NULL, *e;
	enum ldapauth_result result;
	char *edn;
	int rc, n;

	*rc_out = LDAP_SUCCESS;
	if ((rc = ldapauth_ready(la, err, errlen)) != LDAP_SUCCESS)
		goto unavailable;
	if (ldapauth_user_filter(la, user, 1, filter, sizeof(filter)) < 0)
		return LDAPAUTH_NO_USER;
	if ((rc = ldapauth_search(la, filter, attrs, 2, &res, err, errlen)) != LDAP_SUCCESS)
		goto unavailable;
	n = ldap_count_entries(la->ld, res);
	if (n != 1) {
		ldap_msgfree(res);
		if (n > 1)
			return LDAPAUTH_AMBIGUOUS;
		/* Only to say why in the log: is the user there at all? */
		if (ldapauth_user_filter(la, user, 0, filter, sizeof(filter)) < 0)
			return LDAPAUTH_NO_USER;
		if ((rc = ldapauth_search(la, filter, attrs, 1, &res, err, errlen)) != LDAP_SUCCESS)
			goto unavailable;
		n = ldap_count_entries(la->ld, res);
		ldap_msgfree(res);
		return n > 0 ? LDAPAUTH_NOT_IN_GROUP : LDAPAUTH_NO_USER;
	}
	e = ldap_first_entry(la->ld, res);
	edn = e ? ldap_get_dn(la->ld, e) : NULL;
	if (edn == NULL || strlen(edn) >= LDAPAUTH_MAX_DN) {
		ldap_memfree(edn);
		ldap_msgfree(res);
		snprintf(err, errlen, "%s search: entry without a usable DN", la->uri);
		return LDAPAUTH_UNAVAILABLE;
	}
	ldapauth_copy(dn, dnlen, edn);
	if (mail != NULL && maillen > 0) {
		struct berval **vals = ldap_get_values_len(la->ld, e, "mail");

		ldapauth_copy(mail, maillen, user);
		for (int i = 0; vals != NULL && vals[i] != NULL; i++) {
			if (vals[i]->bv_len == strlen(user) &&
			    strncasecmp(vals[i]->bv_val, user, vals[i]->bv_len) == 0) {
				ldapauth_copy(mail, maillen, vals[i]->bv_val);
				break;
			}
		}
		ldap_value_free_len(vals);
	}
	ldap_msgfree(res);
	rc = ldapauth_bind(la, edn, password);
	ldap_memfree(edn);
	switch (rc) {
	case LDAP_SUCCESS:
		result = LDAPAUTH_OK;
		break;
	case LDAP_INVALID_CREDENTIALS:
	case LDAP_INAPPROPRIATE_AUTH:
	case LDAP_UNWILLING_TO_PERFORM:
		result = LDAPAUTH_BAD_PASSWORD;
		break;
	default:
		ldapauth_error(la, rc, "user bind", err, errlen);
		goto unavailable;
	}
	return result;
unavailable:
	*rc_out = rc;
	return LDAPAUTH_UNAVAILABLE;
}

enum ldapauth_result ldapauth_check(struct ldapauth *la, const char *user, const char *password,
				    char *dn, size_t dnlen, char *mail, size_t maillen,
				    char *err, size_t errlen)
{
	enum ldapauth_result r;
	int rc;

	ldapauth_copy(dn, dnlen, "");
	ldapauth_copy(mail, maillen, "");
	ldapauth_copy(err, errlen, "");
	if (user[0] == '\0' || strlen(user) > LDAPAUTH_MAX_USER)
		return LDAPAUTH_NO_USER;
	/* An empty password would be an unauthenticated bind that "succeeds". */
	if (password[0] == '\0')
		return LDAPAUTH_BAD_PASSWORD;
	for (int attempt = 0;; attempt++) {
		int reused = la->ld != NULL;

		r = ldapauth_check_once(la, user, password, dn, dnlen, mail, maillen,
					err, errlen, &rc);
		if (r != LDAPAUTH_UNAVAILABLE)
			return r;
		if (ldapauth_transport_error(rc))
			ldapauth_drop(la);
		if (!(reused && attempt == 0 && rc == LDAP_SERVER_DOWN))
			return r;
		log_debug("ldap_reconnect", "uri=%s", la->uri);
	}
}

/* Runs SEARCH(la, ...) with the admin bound, reconnecting once if dropped. */
static int ldapauth_search_retry(struct ldapauth *la, const char *filter, char **attrs,
				 LDAPMessage **res, char *err, size_t errlen)
{
	int rc;

	for (int attempt = 0;; attempt++) {
		int reused = la->ld != NULL;

		rc = ldapauth_ready(la, err, errlen);
		if (rc == LDAP_SUCCESS)
			rc = ldapauth_search(la, filter, attrs, 0, res, err, errlen);
		if (rc == LDAP_SUCCESS)
			return rc;
		if (ldapauth_transport_error(rc))
			ldapauth_drop(la);
		if (!(reused && attempt == 0 && rc == LDAP_SERVER_DOWN))
			return rc;
	}
}

enum ldapauth_result ldapauth_groups(struct ldapauth *la, const char *user,
				     void (*fn)(void *arg, const char *name, const char *dn),
				     void *arg, char *err, size_t errlen)
{
	char filter[LDAPAUTH_MAX_FILTER];
	char *attrs[] = { "memberOf", NULL };
	LDAPMessage *res = NULL, *e;
	struct berval **vals;

	ldapauth_copy(err, errlen, "");
	if (user[0] == '\0' || strlen(user) > LDAPAUTH_MAX_USER ||
	    ldapauth_user_filter(la, user, 0, filter, sizeof(filter)) < 0)
		return LDAPAUTH_NO_USER;
	if (ldapauth_search_retry(la, filter, attrs, &res, err, errlen) != LDAP_SUCCESS)
		return LDAPAUTH_UNAVAILABLE;
	e = ldap_first_entry(la->ld, res);
	if (e == NULL) {
		ldap_msgfree(res);
		return LDAPAUTH_NO_USER;
	}
	vals = ldap_get_values_len(la->ld, e, "memberOf");
	for (int i = 0; vals != NULL && vals[i] != NULL; i++) {
		LDAPDN gdn = NULL;
		char name[256] = "-";

		if (ldap_bv2dn(vals[i], &gdn, LDAP_DN_FORMAT_LDAPV3) == LDAP_SUCCESS &&
		    gdn != NULL && gdn[0] != NULL && gdn[0][0] != NULL) {
			struct berval *v = &gdn[0][0]->la_value;

			snprintf(name, sizeof(name), "%.*s", (int)v->bv_len, v->bv_val);
		}
		if (gdn != NULL)
			ldap_dnfree(gdn);
		fn(arg, name, vals[i]->bv_val);
	}
	ldap_value_free_len(vals);
	ldap_msgfree(res);
	return LDAPAUTH_OK;
}

enum ldapauth_result ldapauth_members(struct ldapauth *la,
				      void (*fn)(void *arg, const char *mail, const char *dn),
				      void *arg, char *err, size_t errlen)
{
	char filter[LDAPAUTH_MAX_FILTER], eg[LDAPAUTH_MAX_DN * 3 + 1];
	char *attrs[] = { "mail", NULL };
	LDAPMessage *res = NULL;

	ldapauth_copy(err, errlen, "");
	if (ldapauth_escape_filter(la->group_dn, strlen(la->group_dn), eg, sizeof(eg)) < 0)
		return LDAPAUTH_UNAVAILABLE;
	snprintf(filter, sizeof(filter), "(&(objectClass=inetOrgPerson)(memberOf=%s))", eg);
	if (ldapauth_search_retry(la, filter, attrs, &res, err, errlen) != LDAP_SUCCESS)
		return LDAPAUTH_UNAVAILABLE;
	for (LDAPMessage *e = ldap_first_entry(la->ld, res); e != NULL;
	     e = ldap_next_entry(la->ld, e)) {
		char *edn = ldap_get_dn(la->ld, e);
		struct berval **vals = ldap_get_values_len(la->ld, e, "mail");

		fn(arg, vals && vals[0] ? vals[0]->bv_val : "-", edn ? edn : "-");
		ldap_value_free_len(vals);
		ldap_memfree(edn);
	}
	ldap_msgfree(res);
	return LDAPAUTH_OK;
}

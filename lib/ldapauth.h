/*
 * LDAP authentication against lldap (or any server with memberOf), the way
 * the NixOS module configures dovecot:
 *
 *   1. bind as uid=<admin_name>,ou=people,<dc_domain> with the password
 *      read from admin_password_file;
 *   2. search ou=people,<dc_domain> (scope sub) for
 *      (&(objectClass=inetOrgPerson)(mail=<user>)
 *        (memberOf=cn=<user_group>,ou=groups,<dc_domain>));
 *   3. bind as the DN found with the user's password.
 * When step 2 finds nothing a second search without the memberOf clause
 * tells "not in group" from "no such user" (for the log only).
 *
 * Values go into filters through libldap's ldap_bv2escaped_filter_value()
 * (RFC 4515: '*', '(', ')', '\\', NUL) and into DNs through ldap_dn2bv().
 * tls = ldaps | starttls demands a valid certificate for the host
 * (LDAP_OPT_X_TLS_REQUIRE_CERT = demand; ca_file or the system store).
 * `timeout` bounds the TCP connect and every operation.  A connection that
 * drops between two calls is reopened once, transparently.
 *
 * Ownership: ldapauth_new() copies what it needs from the config (the
 * admin password included, wiped by ldapauth_free()); one struct ldapauth
 * holds one connection and is not thread-safe.
 */
#ifndef MK_LDAPAUTH_H
#define MK_LDAPAUTH_H
#include <stddef.h>

struct config_ldap;
struct ldapauth;

enum ldapauth_result {
	LDAPAUTH_OK = 0,
	LDAPAUTH_BAD_PASSWORD,
	LDAPAUTH_NO_USER,
	LDAPAUTH_NOT_IN_GROUP,
	LDAPAUTH_AMBIGUOUS,		/* more than one entry has that mail */
	LDAPAUTH_UNAVAILABLE,		/* server down, timeout, TLS or admin bind failure */
};

#define LDAPAUTH_MAX_USER 320		/* longer user names are "no such user" */
#define LDAPAUTH_MAX_DN 1024

/*
 * Checks the [ldap] section (dc_domain parses as a DN, admin_name and
 * user_group set) and reads the admin password.  No network traffic: the
 * connection opens on first use.  Returns 0, or EX_CONFIG / EX_NOINPUT with
 * err set.
 */
int ldapauth_new(const struct config_ldap *lc, struct ldapauth **out, char *err, size_t errlen);
void ldapauth_free(struct ldapauth *la);

/*
 * Steps 1-3 above for USER (a C string) and PASSWORD (a C string, must be
 * non-empty: an empty one is BAD_PASSWORD without any bind).  On OK and
 * BAD_PASSWORD, dn gets the entry's DN; on OK, mail gets the entry's mail
 * value matching USER (its canonical spelling).  On UNAVAILABLE err says
 * why (server message, never the password).  dn/mail may be NULL.
 */
enum ldapauth_result ldapauth_check(struct ldapauth *la, const char *user, const char *password,
				    char *dn, size_t dnlen, char *mail, size_t maillen,
				    char *err, size_t errlen);

/*
 * USER's groups (memberOf of the entry with that mail): FN(arg, name, dn)
 * per group, name being the first RDN's value.  OK, NO_USER or UNAVAILABLE.
 */
enum ldapauth_result ldapauth_groups(struct ldapauth *la, const char *user,
				     void (*fn)(void *arg, const char *name, const char *dn),
				     void *arg, char *err, size_t errlen);

/*
 * Everyone who may log in (inetOrgPerson in user_group): FN(arg, mail, dn)
 * per entry ("-" for an entry without mail).  OK or UNAVAILABLE.
 */
enum ldapauth_result ldapauth_members(struct ldapauth *la,
				      void (*fn)(void *arg, const char *mail, const char *dn),
				      void *arg, char *err, size_t errlen);

/* "bad password", "no such user", "not in group", ... */
const char *ldapauth_result_str(enum ldapauth_result r);

/*
 * RFC 4515 escaping of S[0..len) (NUL bytes included) by libldap into OUT.
 * Returns 0, or -1 if it does not fit.
 */
int ldapauth_escape_filter(const char *s, size_t len, char *out, size_t outlen);

/*
 * "<attr>=<value escaped as a DN value>,<suffix>" into OUT (suffix may be
 * NULL).  Returns 0, or -1 if it does not fit or libldap refuses.
 */
int ldapauth_make_dn(const char *attr, const char *value, const char *suffix,
		     char *out, size_t outlen);
#endif

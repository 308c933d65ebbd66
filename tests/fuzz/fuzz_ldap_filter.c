/*
 * libFuzzer target: LDAP filter-value escaping and DN building
 * (lib/ldapauth: ldapauth_escape_filter, ldapauth_make_dn), both through
 * libldap.  Checks the properties the login search relies on: an escaped
 * value holds no bare '*', '(', ')', '\\' or NUL, unescapes to exactly the
 * input, and a DN built from a value parses back to one RDN whose value is
 * the input.
 */
#include "ldapauth.h"

#include <ldap.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void check_filter(const char *in, size_t len)
{
	char out[4 * 1024 + 1];
	size_t i, n = 0, olen;
	char *back;

	if (ldapauth_escape_filter(in, len, out, sizeof(out)) < 0) {
		if (len * 3 < sizeof(out))
			__builtin_trap();	/* it fits, so it must not fail */
		return;
	}
	olen = strlen(out);
	back = malloc(olen + 1);
	if (back == NULL)
		return;
	for (i = 0; i < olen; i++) {
		char c = out[i];
		if (c == '*' || c == '(' || c == ')')
			__builtin_trap();
		if (c == '\\') {
			int h, l;
			if (i + 2 >= olen)
				__builtin_trap();
			h = hexval(out[i + 1]);
			l = hexval(out[i + 2]);
			if (h < 0 || l < 0)
				__builtin_trap();
			back[n++] = (char)(h * 16 + l);
			i += 2;
		} else {
			back[n++] = c;
		}
	}
	if (n != len || memcmp(back, in, len) != 0)
		__builtin_trap();
	free(back);
}

static void check_dn(const char *value)
{
	char out[LDAPAUTH_MAX_DN];
	LDAPDN dn = NULL;

	if (ldapauth_make_dn("uid", value, "ou=people,dc=example,dc=com", out, sizeof(out)) < 0)
		return;
	if (ldap_str2dn(out, &dn, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
		__builtin_trap();
	/* uid=<value>, ou=people, dc=example, dc=com: the value stays one RDN. */
	if (dn == NULL || dn[0] == NULL || dn[1] == NULL || dn[2] == NULL || dn[3] == NULL ||
	    dn[4] != NULL || dn[0][1] != NULL)
		__builtin_trap();
	if (dn[0][0]->la_value.bv_len != strlen(value) ||
	    memcmp(dn[0][0]->la_value.bv_val, value, strlen(value)) != 0)
		__builtin_trap();
	ldap_dnfree(dn);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size > 2048)
		return 0;
	check_filter((const char *)data, size);
	s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (memchr(data, '\0', size) == NULL)
		check_dn(s);
	free(s);
	return 0;
}

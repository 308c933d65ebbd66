/*
 * clientConfig documents from elsewhere: parse, validate, compare, and
 * turn into config lines (see autoconfig-doc.h).
 */
#include "autoconfig-doc.h"
#include "autoconfig-query.h"

#include <libxml/parser.h>
#include <libxml/relaxng.h>
#include <libxml/tree.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

static int is_elem(xmlNodePtr n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && n->ns == NULL &&
	       strcmp((const char *)n->name, name) == 0;
}

/*
 * Copies the trimmed text content of N into out (cap bytes).  Returns 0,
 * or -1 if it is longer or holds a control character.
 */
static int text_of(xmlNodePtr n, char *out, size_t cap)
{
	xmlChar *t = xmlNodeGetContent(n);
	const char *s = (const char *)t;
	size_t len;
	int rc = -1;

	if (t == NULL)
		return -1;
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' ||
			   s[len - 1] == '\r'))
		len--;
	if (len < cap) {
		rc = 0;
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
				rc = -1;
		if (rc == 0) {
			memcpy(out, s, len);
			out[len] = '\0';
		}
	}
	xmlFree(t);
	return rc;
}

static int attr_of(xmlNodePtr n, const char *name, char *out, size_t cap)
{
	xmlChar *v = xmlGetNoNsProp(n, BAD_CAST name);
	size_t len;
	int rc = -1;

	if (v == NULL)
		return -1;
	len = strlen((const char *)v);
	if (len < cap) {
		rc = 0;
		for (size_t i = 0; i < len; i++)
			if (v[i] < 0x20 || v[i] == 0x7f)
				rc = -1;
		if (rc == 0)
			memcpy(out, v, len + 1);
	}
	xmlFree(v);
	return rc;
}

static int parse_server(xmlNodePtr n, struct autoconfig_server *s, char *err, size_t errlen)
{
	const char *what = (const char *)n->name;

	memset(s, 0, sizeof(*s));
	if (attr_of(n, "type", s->type, sizeof(s->type)) != 0) {
		snprintf(err, errlen, "%s without a valid type attribute", what);
		return EX_DATAERR;
	}
	for (xmlNodePtr c = n->children; c != NULL; c = c->next) {
		char num[16];
		int bad = 0;

		if (is_elem(c, "hostname")) {
			bad = text_of(c, s->hostname, sizeof(s->hostname));
		} else if (is_elem(c, "port")) {
			char *end;
			long v;

			bad = text_of(c, num, sizeof(num));
			if (!bad) {
				v = strtol(num, &end, 10);
				bad = num[0] < '0' || num[0] > '9' || *end != '\0' || v < 1 ||
				      v > 65535;
				s->port = bad ? 0 : (int)v;
			}
		} else if (is_elem(c, "socketType")) {
			bad = text_of(c, s->socket_type, sizeof(s->socket_type));
		} else if (is_elem(c, "username")) {
			bad = text_of(c, s->username, sizeof(s->username));
		} else if (is_elem(c, "authentication")) {
			if (s->nauth < AUTOCONFIG_DOC_MAX_AUTH &&
			    text_of(c, s->auth[s->nauth], sizeof(s->auth[0])) == 0)
				s->nauth++;
		} else {
			continue;	/* extensions: not ours to judge */
		}
		if (bad) {
			snprintf(err, errlen, "%s %s: <%s> is missing, too long or not valid",
				 what, s->type, (const char *)c->name);
			return EX_DATAERR;
		}
	}
	return 0;
}

void autoconfig_doc_free(struct autoconfig_doc *doc)
{
	if (doc == NULL)
		return;
	free(doc->domains);
	free(doc);
}

static int parse_provider(xmlNodePtr prov, struct autoconfig_doc *d, char *err, size_t errlen)
{
	if (attr_of(prov, "id", d->id, sizeof(d->id)) != 0) {
		snprintf(err, errlen, "emailProvider without a valid id attribute");
		return EX_DATAERR;
	}
	for (xmlNodePtr c = prov->children; c != NULL; c = c->next) {
		int rc;

		if (is_elem(c, "domain")) {
			if (d->ndomains == AUTOCONFIG_DOC_MAX_DOMAINS)
				continue;
			if (text_of(c, d->domains[d->ndomains], sizeof(d->domains[0])) == 0)
				d->ndomains++;
		} else if (is_elem(c, "displayName")) {
			if (text_of(c, d->display_name, sizeof(d->display_name)) != 0)
				d->display_name[0] = '\0';
		} else if (is_elem(c, "incomingServer") || is_elem(c, "outgoingServer")) {
			int in = is_elem(c, "incomingServer");
			size_t *n = in ? &d->nin : &d->nout;

			if (*n == AUTOCONFIG_DOC_MAX_SERVERS)
				continue;
			rc = parse_server(c, in ? &d->in[*n] : &d->out[*n], err, errlen);
			if (rc != 0)
				return rc;
			(*n)++;
		}
	}
	return 0;
}

int autoconfig_doc_parse(const char *buf, size_t len, struct autoconfig_doc **out,
			 char *err, size_t errlen)
{
	struct autoconfig_doc *d;
	xmlDocPtr doc;
	xmlNodePtr root, prov = NULL;
	char version[16];
	int rc = EX_DATAERR;

	*out = NULL;
	if (len == 0 || len > AUTOCONFIG_DOC_MAX) {
		snprintf(err, errlen, "document is empty or larger than %d bytes",
			 AUTOCONFIG_DOC_MAX);
		return EX_DATAERR;
	}
	doc = xmlReadMemory(buf, (int)len, "config-v1.1.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc == NULL) {
		const xmlError *e = xmlGetLastError();

		snprintf(err, errlen, "not well-formed XML: %s",
			 e && e->message ? e->message : "parse error");
		err[strcspn(err, "\n")] = '\0';
		return EX_DATAERR;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL || (d->domains = calloc(AUTOCONFIG_DOC_MAX_DOMAINS,
					      sizeof(d->domains[0]))) == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = EX_OSERR;
		goto out;
	}
	root = xmlDocGetRootElement(doc);
	if (root == NULL || !is_elem(root, "clientConfig")) {
		snprintf(err, errlen, "root element is not <clientConfig>");
		goto out;
	}
	if (attr_of(root, "version", version, sizeof(version)) != 0) {
		snprintf(err, errlen, "<clientConfig> has no version attribute");
		goto out;
	}
	for (xmlNodePtr c = root->children; c != NULL && prov == NULL; c = c->next)
		if (is_elem(c, "emailProvider"))
			prov = c;
	if (prov == NULL) {
		snprintf(err, errlen, "no <emailProvider>");
		goto out;
	}
	rc = parse_provider(prov, d, err, errlen);
out:
	xmlFreeDoc(doc);
	if (rc == 0)
		*out = d;
	else
		autoconfig_doc_free(d);
	return rc;
}

/* Collects RELAX NG errors: the first one goes to err. */
struct rng_err {
	char *err;
	size_t errlen;
	int seen;
};

#if LIBXML_VERSION >= 21200
static void rng_error(void *arg, const xmlError *e)
#else
static void rng_error(void *arg, xmlErrorPtr e)
#endif
{
	struct rng_err *r = arg;

	if (r->seen++ == 0) {
		snprintf(r->err, r->errlen, "line %d: %s", e->line,
			 e->message ? e->message : "invalid");
		r->err[strcspn(r->err, "\n")] = '\0';
	}
}

int autoconfig_doc_validate(const char *buf, size_t len, const char *schema,
			    char *err, size_t errlen)
{
	xmlRelaxNGParserCtxtPtr pctx;
	xmlRelaxNGPtr rng = NULL;
	xmlRelaxNGValidCtxtPtr vctx = NULL;
	xmlDocPtr doc = NULL;
	struct rng_err re = { err, errlen, 0 };
	int rc = EX_DATAERR;

	pctx = xmlRelaxNGNewParserCtxt(schema);
	if (pctx != NULL) {
		xmlRelaxNGSetParserStructuredErrors(pctx, rng_error, &re);
		rng = xmlRelaxNGParse(pctx);
		xmlRelaxNGFreeParserCtxt(pctx);
	}
	if (rng == NULL) {
		snprintf(err, errlen, "%s: cannot read the RELAX NG schema", schema);
		return EX_NOINPUT;
	}
	re.seen = 0;
	if (len == 0 || len > AUTOCONFIG_DOC_MAX ||
	    (doc = xmlReadMemory(buf, (int)len, "config-v1.1.xml", NULL,
				 XML_PARSE_NONET | XML_PARSE_NOERROR |
				 XML_PARSE_NOWARNING)) == NULL) {
		snprintf(err, errlen, "not well-formed XML");
		goto out;
	}
	vctx = xmlRelaxNGNewValidCtxt(rng);
	if (vctx == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = EX_OSERR;
		goto out;
	}
	xmlRelaxNGSetValidStructuredErrors(vctx, rng_error, &re);
	if (xmlRelaxNGValidateDoc(vctx, doc) == 0)
		rc = 0;
	else if (re.seen == 0)
		snprintf(err, errlen, "does not match the schema");
out:
	xmlRelaxNGFreeValidCtxt(vctx);
	xmlRelaxNGFree(rng);
	xmlFreeDoc(doc);
	return rc;
}

int autoconfig_doc_has_domain(const struct autoconfig_doc *doc, const char *domain)
{
	for (size_t i = 0; i < doc->ndomains; i++)
		if (strcasecmp(doc->domains[i], domain) == 0)
			return 1;
	return 0;
}

static void reportf(size_t *count, void (*report)(void *, const char *), void *arg,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void reportf(size_t *count, void (*report)(void *, const char *), void *arg,
		    const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	(*count)++;
	if (report != NULL)
		report(arg, line);
}

static int has_auth(const struct autoconfig_server *s, const char *auth)
{
	for (int i = 0; i < s->nauth; i++)
		if (strcmp(s->auth[i], auth) == 0)
			return 1;
	return 0;
}

static void compare_server(const struct autoconfig_server *s, const char *dir,
			   const char *type, const char *host, int port, size_t *n,
			   void (*report)(void *, const char *), void *arg)
{
	if (strcmp(s->type, type) != 0) {
		reportf(n, report, arg, "%s %s server: not offered (only %s)", dir, s->type, type);
		return;
	}
	if (strcasecmp(s->hostname, host) != 0)
		reportf(n, report, arg, "%s %s hostname: served %s, expected %s", dir, type,
			s->hostname[0] ? s->hostname : "(none)", host);
	if (s->port != port)
		reportf(n, report, arg, "%s %s port: served %d, expected %d", dir, type,
			s->port, port);
	if (strcmp(s->socket_type, "SSL") != 0)
		reportf(n, report, arg, "%s %s socketType: served %s, expected SSL", dir, type,
			s->socket_type[0] ? s->socket_type : "(none)");
	if (strcmp(s->username, "%EMAILADDRESS%") != 0)
		reportf(n, report, arg, "%s %s username: served %s, expected %%EMAILADDRESS%%",
			dir, type, s->username[0] ? s->username : "(none)");
	if (!has_auth(s, "password-cleartext"))
		reportf(n, report, arg, "%s %s authentication: password-cleartext not offered",
			dir, type);
}

size_t autoconfig_doc_compare(const struct autoconfig_doc *doc,
			      const struct autoconfig_site *site,
			      void (*report)(void *arg, const char *what), void *arg)
{
	size_t n = 0, i;

	if (!autoconfig_doc_has_domain(doc, site->domain))
		reportf(&n, report, arg, "domain: %s is not listed", site->domain);
	if (doc->nin == 0)
		reportf(&n, report, arg, "incoming: no incomingServer");
	if (doc->nout == 0)
		reportf(&n, report, arg, "outgoing: no outgoingServer");
	for (i = 0; i < doc->nin; i++)
		compare_server(&doc->in[i], "incoming", "imap", site->host, site->imap_port,
			       &n, report, arg);
	for (i = 0; i < doc->nout; i++)
		compare_server(&doc->out[i], "outgoing", "smtp", site->host, site->smtp_port,
			       &n, report, arg);
	return n;
}

/* A growing text buffer for the provider lines. */
struct text {
	char *p;
	size_t len, cap;
	int bad;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = t->p ? vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap) : -1;
		va_end(ap);
		if (n >= 0 && (size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		if (t->bad || (t->p != NULL && n < 0)) {
			t->bad = 1;
			return;
		}
		size_t want = t->cap * 2 + (n > 0 ? (size_t)n : 0) + 256;
		char *np = realloc(t->p, want);
		if (np == NULL) {
			t->bad = 1;
			return;
		}
		t->p = np;
		t->cap = want;
	}
}

/*
 * Expands %EMAILADDRESS%, %EMAILLOCALPART% and %EMAILDOMAIN% in TPL into
 * out.  Returns 0, 1 if a placeholder needs the address and EMAIL is
 * NULL, -1 on overflow or an unknown placeholder.
 */
static int expand(const char *tpl, const char *email, const char *domain, char *out, size_t cap)
{
	size_t o = 0, ll = 0;
	const char *at = email ? strchr(email, '@') : NULL;

	if (at != NULL)
		ll = (size_t)(at - email);
	while (*tpl) {
		const char *v = NULL;
		size_t vl = 0, skip = 1;

		if (strncmp(tpl, "%EMAILADDRESS%", 14) == 0) {
			if (email == NULL)
				return 1;
			v = email, vl = strlen(email), skip = 14;
		} else if (strncmp(tpl, "%EMAILLOCALPART%", 16) == 0) {
			if (email == NULL)
				return 1;
			v = email, vl = ll, skip = 16;
		} else if (strncmp(tpl, "%EMAILDOMAIN%", 13) == 0) {
			v = domain, vl = strlen(domain), skip = 13;
		} else if (*tpl == '%') {
			return -1;
		} else {
			v = tpl, vl = 1;
		}
		if (o + vl >= cap)
			return -1;
		memcpy(out + o, v, vl);
		o += vl;
		tpl += skip;
	}
	out[o] = '\0';
	return 0;
}

/* What mailkeep.conf accepts as a user name (config.c's T_NAME). */
static int config_name_ok(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("._@+-", *s) != NULL))
			return 0;
	return 1;
}

/* Index of the best server of TYPE (SSL, then STARTTLS) with a usable host, or -1. */
static int best_server(const struct autoconfig_server *s, size_t n, const char *type,
		       const char *domain, char *host, size_t hostcap)
{
	static const char *const pref[] = { "SSL", "STARTTLS" };

	for (size_t p = 0; p < 2; p++)
		for (size_t i = 0; i < n; i++) {
			if (strcmp(s[i].type, type) != 0 || strcmp(s[i].socket_type, pref[p]) != 0)
				continue;
			if (expand(s[i].hostname, NULL, domain, host, hostcap) != 0 ||
			    !autoconfig_host_valid(host, strlen(host)))
				continue;
			return (int)i;
		}
	return -1;
}

static void section(struct text *t, const struct autoconfig_server *s, const char *host,
		    const char *tls, const char *secret_kind, const char *name,
		    const char *email, const char *domain)
{
	char user[256];
	int r = expand(s->username, email, domain, user, sizeof(user));

	text_add(t, "host = %s\nport = %d\ntls = %s\n", host,
		 s->port ? s->port : (strcmp(tls, "imaps") == 0 ? 993 :
				      strcmp(tls, "smtps") == 0 ? 465 :
				      strcmp(secret_kind, "imap") == 0 ? 143 : 587), tls);
	if (r == 0 && config_name_ok(user))
		text_add(t, "username = %s\n", user);
	else if (r == 1)
		text_add(t, "# username = your address (run with EMAIL instead of DOMAIN)\n");
	else
		text_add(t, "# username: the provider's template is not usable here\n");
	text_add(t, "password_file = /run/secrets/mailserver/%s/%s/password\n", secret_kind, name);
}

int autoconfig_doc_provider_lines(const struct autoconfig_doc *doc, const char *name,
				  const char *domain, const char *email, const char *source,
				  char **out, char *err, size_t errlen)
{
	char host[AUTOCONFIG_MAX_HOST + 1], shown[sizeof(doc->display_name)];
	struct text t = { 0 };
	int i;

	*out = NULL;
	i = best_server(doc->in, doc->nin, "imap", domain, host, sizeof(host));
	if (i < 0) {
		snprintf(err, errlen, "no IMAP server with SSL or STARTTLS and a valid host name");
		return EX_DATAERR;
	}
	/* a comment line: keep only printable ASCII of what the provider calls itself */
	size_t o = 0;
	for (const char *s = doc->display_name; *s && o + 1 < sizeof(shown); s++)
		shown[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	shown[o] = '\0';
	text_add(&t, "# %s: %s (from %s)\n", domain, shown[0] ? shown : "provider", source);
	text_add(&t, "[account %s]\n", name);
	section(&t, &doc->in[i], host, strcmp(doc->in[i].socket_type, "SSL") == 0 ?
		"imaps" : "starttls", "imap", name, email, domain);
	i = best_server(doc->out, doc->nout, "smtp", domain, host, sizeof(host));
	if (i >= 0) {
		text_add(&t, "\n[relay]\n");
		section(&t, &doc->out[i], host, strcmp(doc->out[i].socket_type, "SSL") == 0 ?
			"smtps" : "starttls", "smtp", name, email, domain);
	} else {
		text_add(&t, "\n# [relay]: the provider publishes no SMTP server with SSL or "
			 "STARTTLS\n");
	}
	if (t.bad) {
		free(t.p);
		snprintf(err, errlen, "out of memory");
		return EX_OSERR;
	}
	*out = t.p;
	return 0;
}

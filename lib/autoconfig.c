/*
 * Autoconfiguration documents, all written with libxml2's xmlTextWriter
 * (see autoconfig.h).
 */
#include "autoconfig.h"
#include "config.h"

#include <libxml/xmlwriter.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

int autoconfig_site_init(struct autoconfig_site *site, const struct config *cfg,
			 char *err, size_t errlen)
{
	const char *sub = cfg->subdomain ? cfg->subdomain : "imap";
	int n;

	memset(site, 0, sizeof(*site));
	if (cfg->domain == NULL) {
		snprintf(err, errlen, "%s: domain is required", cfg->path ? cfg->path : "config");
		return EX_CONFIG;
	}
	if (strlen(cfg->domain) > AUTOCONFIG_MAX_HOST - 11) {
		snprintf(err, errlen, "%s: domain is too long", cfg->path ? cfg->path : "config");
		return EX_CONFIG;
	}
	snprintf(site->domain, sizeof(site->domain), "%s", cfg->domain);
	n = snprintf(site->host, sizeof(site->host), "%s.%s", sub, cfg->domain);
	if (n < 0 || (size_t)n >= sizeof(site->host)) {
		snprintf(err, errlen, "%s: subdomain.domain is too long",
			 cfg->path ? cfg->path : "config");
		return EX_CONFIG;
	}
	site->imap_port = AUTOCONFIG_IMAP_PORT;
	site->smtp_port = AUTOCONFIG_SMTP_PORT;
	snprintf(site->display_name, sizeof(site->display_name), "%s Mail", cfg->domain);
	snprintf(site->doc_url, sizeof(site->doc_url), "https://autoconfig.%s/", cfg->domain);
	return 0;
}

void autoconfig_uuid(const char *name, char out[37])
{
	/* RFC 4122's DNS namespace; names are prefixed "mailkeep:" below */
	static const unsigned char ns[16] = {
		0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
		0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8,
	};
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int i, o = 0;

	memset(md, 0, sizeof(md));
	if (ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, ns, sizeof(ns)) == 1 &&
	    EVP_DigestUpdate(ctx, "mailkeep:", 9) == 1 &&
	    EVP_DigestUpdate(ctx, name, strlen(name)) == 1)
		EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	md[6] = (unsigned char)((md[6] & 0x0f) | 0x50);
	md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		o += snprintf(out + o, 37 - (size_t)o, "%02X", md[i]);
	}
	out[36] = '\0';
}

/*
 * A writer into a memory buffer.  Every xmlTextWriter call returns < 0 on
 * failure; the helpers below record the first failure in w->bad so the
 * document code reads as a plain sequence.
 */
struct xw {
	xmlBufferPtr buf;
	xmlTextWriterPtr w;
	int bad;
};

static int xw_open(struct xw *x, int indent)
{
	x->bad = 0;
	x->buf = xmlBufferCreate();
	x->w = x->buf ? xmlNewTextWriterMemory(x->buf, 0) : NULL;
	if (x->w == NULL) {
		if (x->buf)
			xmlBufferFree(x->buf);
		return EX_OSERR;
	}
	if (indent) {
		xmlTextWriterSetIndent(x->w, 1);
		xmlTextWriterSetIndentString(x->w, BAD_CAST "  ");
	}
	return 0;
}

static void xw_check(struct xw *x, int r)
{
	if (r < 0)
		x->bad = 1;
}

static void xw_start(struct xw *x, const char *name)
{
	xw_check(x, xmlTextWriterStartElement(x->w, BAD_CAST name));
}

static void xw_end(struct xw *x)
{
	xw_check(x, xmlTextWriterFullEndElement(x->w));
}

static void xw_attr(struct xw *x, const char *name, const char *value)
{
	xw_check(x, xmlTextWriterWriteAttribute(x->w, BAD_CAST name, BAD_CAST value));
}

static void xw_text(struct xw *x, const char *text)
{
	xw_check(x, xmlTextWriterWriteString(x->w, BAD_CAST text));
}

static void xw_elem(struct xw *x, const char *name, const char *text)
{
	xw_check(x, xmlTextWriterWriteElement(x->w, BAD_CAST name, BAD_CAST text));
}

static void xw_elemf(struct xw *x, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void xw_elemf(struct xw *x, const char *name, const char *fmt, ...)
{
	char v[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v, sizeof(v), fmt, ap);
	va_end(ap);
	xw_elem(x, name, v);
}

/* Ends the document and hands the bytes to the caller (see autoconfig.h). */
static int xw_close(struct xw *x, char **out, size_t *len)
{
	int rc = 0;

	xw_check(x, xmlTextWriterEndDocument(x->w));
	xmlFreeTextWriter(x->w);	/* flushes into buf */
	if (x->bad) {
		rc = EX_SOFTWARE;
	} else {
		size_t n = (size_t)xmlBufferLength(x->buf);
		char *p = malloc(n + 1);

		if (p == NULL) {
			rc = EX_OSERR;
		} else {
			memcpy(p, xmlBufferContent(x->buf), n);
			p[n] = '\0';
			*out = p;
			*len = n;
		}
	}
	xmlBufferFree(x->buf);
	return rc;
}

static void tb_server(struct xw *x, const char *elem, const char *type, const char *host, int port)
{
	xw_start(x, elem);
	xw_attr(x, "type", type);
	xw_elem(x, "hostname", host);
	xw_elemf(x, "port", "%d", port);
	xw_elem(x, "socketType", "SSL");
	xw_elem(x, "authentication", "password-cleartext");
	xw_elem(x, "username", "%EMAILADDRESS%");
	xw_end(x);
}

int autoconfig_thunderbird(const struct autoconfig_site *site, char **out, size_t *len)
{
	struct xw x;
	int rc = xw_open(&x, 1);

	if (rc != 0)
		return rc;
	xw_check(&x, xmlTextWriterStartDocument(x.w, "1.0", "UTF-8", NULL));
	xw_start(&x, "clientConfig");
	xw_attr(&x, "version", "1.1");
	xw_start(&x, "emailProvider");
	xw_attr(&x, "id", site->domain);
	xw_elem(&x, "domain", site->domain);
	xw_elem(&x, "displayName", site->display_name);
	xw_elem(&x, "displayShortName", site->domain);
	tb_server(&x, "incomingServer", "imap", site->host, site->imap_port);
	tb_server(&x, "outgoingServer", "smtp", site->host, site->smtp_port);
	xw_start(&x, "documentation");
	xw_attr(&x, "url", site->doc_url);
	xw_start(&x, "descr");
	xw_attr(&x, "lang", "en");
	xw_text(&x, "Mail settings for ");
	xw_text(&x, site->domain);
	xw_end(&x);
	xw_end(&x);
	xw_end(&x);		/* emailProvider */
	xw_end(&x);		/* clientConfig */
	return xw_close(&x, out, len);
}

/* plist helpers: <key>K</key><string>V</string> and friends. */
static void pl_string(struct xw *x, const char *key, const char *value)
{
	xw_elem(x, "key", key);
	xw_elem(x, "string", value);
}

static void pl_int(struct xw *x, const char *key, int value)
{
	xw_elem(x, "key", key);
	xw_elemf(x, "integer", "%d", value);
}

static void pl_bool(struct xw *x, const char *key, int value)
{
	xw_elem(x, "key", key);
	xw_check(x, xmlTextWriterStartElement(x->w, BAD_CAST(value ? "true" : "false")));
	xw_check(x, xmlTextWriterEndElement(x->w));	/* <true/> */
}

/* "example.com" -> "com.example" for payload identifiers. */
static void reverse_domain(const char *d, char *out, size_t cap)
{
	size_t n = strlen(d), o = 0;

	while (n > 0 && o + 1 < cap) {
		size_t end = n, start;

		while (n > 0 && d[n - 1] != '.')
			n--;
		start = n;
		if (o > 0 && o + 1 < cap)
			out[o++] = '.';
		for (size_t i = start; i < end && o + 1 < cap; i++)
			out[o++] = d[i];
		if (n > 0)
			n--;	/* the dot */
	}
	out[o] = '\0';
}

int autoconfig_mobileconfig(const struct autoconfig_site *site, const char *email,
			    char **out, size_t *len)
{
	char name[AUTOCONFIG_MAX_HOST + AUTOCONFIG_MAX_EMAIL + 32];
	char uuid_profile[37], uuid_mail[37], rev[AUTOCONFIG_MAX_HOST + 1];
	char ident[sizeof(rev) + 64], descr[AUTOCONFIG_MAX_HOST + AUTOCONFIG_MAX_EMAIL + 8];
	struct xw x;
	int rc;

	snprintf(name, sizeof(name), "profile:%s:%s", site->domain, email);
	autoconfig_uuid(name, uuid_profile);
	snprintf(name, sizeof(name), "mail:%s:%s", site->domain, email);
	autoconfig_uuid(name, uuid_mail);
	reverse_domain(site->domain, rev, sizeof(rev));
	rc = xw_open(&x, 1);
	if (rc != 0)
		return rc;
	xw_check(&x, xmlTextWriterStartDocument(x.w, "1.0", "UTF-8", NULL));
	xw_check(&x, xmlTextWriterWriteDTD(x.w, BAD_CAST "plist",
					   BAD_CAST "-//Apple//DTD PLIST 1.0//EN",
					   BAD_CAST "http://www.apple.com/DTDs/PropertyList-1.0.dtd",
					   NULL));
	xw_start(&x, "plist");
	xw_attr(&x, "version", "1.0");
	xw_start(&x, "dict");
	xw_elem(&x, "key", "PayloadContent");
	xw_start(&x, "array");
	xw_start(&x, "dict");
	pl_string(&x, "EmailAccountDescription", site->display_name);
	pl_string(&x, "EmailAccountName", email);
	pl_string(&x, "EmailAccountType", "EmailTypeIMAP");
	pl_string(&x, "EmailAddress", email);
	pl_string(&x, "IncomingMailServerAuthentication", "EmailAuthPassword");
	pl_string(&x, "IncomingMailServerHostName", site->host);
	pl_int(&x, "IncomingMailServerPortNumber", site->imap_port);
	pl_bool(&x, "IncomingMailServerUseSSL", 1);
	pl_string(&x, "IncomingMailServerUsername", email);
	pl_string(&x, "OutgoingMailServerAuthentication", "EmailAuthPassword");
	pl_string(&x, "OutgoingMailServerHostName", site->host);
	pl_int(&x, "OutgoingMailServerPortNumber", site->smtp_port);
	pl_bool(&x, "OutgoingMailServerUseSSL", 1);
	pl_string(&x, "OutgoingMailServerUsername", email);
	pl_bool(&x, "OutgoingPasswordSameAsIncomingPassword", 1);
	snprintf(descr, sizeof(descr), "Mail account %s", email);
	pl_string(&x, "PayloadDescription", descr);
	pl_string(&x, "PayloadDisplayName", site->display_name);
	snprintf(ident, sizeof(ident), "%s.mailkeep.mail.%s", rev, uuid_mail);
	pl_string(&x, "PayloadIdentifier", ident);
	pl_string(&x, "PayloadType", "com.apple.mail.managed");
	pl_string(&x, "PayloadUUID", uuid_mail);
	pl_int(&x, "PayloadVersion", 1);
	pl_bool(&x, "PreventAppSheet", 0);
	pl_bool(&x, "PreventMove", 0);
	pl_bool(&x, "SMIMEEnabled", 0);
	xw_end(&x);		/* dict */
	xw_end(&x);		/* array */
	snprintf(descr, sizeof(descr), "Mail settings for %s", site->domain);
	pl_string(&x, "PayloadDescription", descr);
	pl_string(&x, "PayloadDisplayName", site->display_name);
	snprintf(ident, sizeof(ident), "%s.mailkeep.%s", rev, uuid_profile);
	pl_string(&x, "PayloadIdentifier", ident);
	pl_bool(&x, "PayloadRemovalDisallowed", 0);
	pl_string(&x, "PayloadType", "Configuration");
	pl_string(&x, "PayloadUUID", uuid_profile);
	pl_int(&x, "PayloadVersion", 1);
	xw_end(&x);		/* dict */
	xw_end(&x);		/* plist */
	return xw_close(&x, out, len);
}

#define AD_NS "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
#define AD_NS_OUTLOOK \
	"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"

static void ad_protocol(struct xw *x, const char *type, const char *host, int port,
			const char *email)
{
	xw_start(x, "Protocol");
	xw_elem(x, "Type", type);
	xw_elem(x, "Server", host);
	xw_elemf(x, "Port", "%d", port);
	xw_elem(x, "DomainRequired", "off");
	xw_elem(x, "LoginName", email);
	xw_elem(x, "SPA", "off");
	xw_elem(x, "SSL", "on");
	xw_elem(x, "AuthRequired", "on");
	if (strcmp(type, "SMTP") == 0) {
		xw_elem(x, "UsePOPAuth", "off");
		xw_elem(x, "SMTPLast", "off");
	}
	xw_end(x);
}

int autoconfig_autodiscover(const struct autoconfig_site *site, const char *email,
			    char **out, size_t *len)
{
	struct xw x;
	int rc = xw_open(&x, 1);

	if (rc != 0)
		return rc;
	xw_check(&x, xmlTextWriterStartDocument(x.w, "1.0", "UTF-8", NULL));
	xw_start(&x, "Autodiscover");
	xw_attr(&x, "xmlns", AD_NS);
	xw_start(&x, "Response");
	xw_attr(&x, "xmlns", AD_NS_OUTLOOK);
	xw_start(&x, "User");
	xw_elem(&x, "DisplayName", email);
	xw_end(&x);
	xw_start(&x, "Account");
	xw_elem(&x, "AccountType", "email");
	xw_elem(&x, "Action", "settings");
	ad_protocol(&x, "IMAP", site->host, site->imap_port, email);
	ad_protocol(&x, "SMTP", site->host, site->smtp_port, email);
	xw_end(&x);		/* Account */
	xw_end(&x);		/* Response */
	xw_end(&x);		/* Autodiscover */
	return xw_close(&x, out, len);
}

int autoconfig_autodiscover_error(char **out, size_t *len)
{
	struct xw x;
	int rc = xw_open(&x, 1);

	if (rc != 0)
		return rc;
	xw_check(&x, xmlTextWriterStartDocument(x.w, "1.0", "UTF-8", NULL));
	xw_start(&x, "Autodiscover");
	xw_attr(&x, "xmlns", AD_NS);
	xw_start(&x, "Response");
	xw_start(&x, "Error");
	xw_elem(&x, "ErrorCode", "600");
	xw_elem(&x, "Message", "Invalid Request");
	xw_elem(&x, "DebugData", "");
	xw_end(&x);
	xw_end(&x);
	xw_end(&x);
	return xw_close(&x, out, len);
}

int autoconfig_srv(const struct autoconfig_site *site, char **out, size_t *len)
{
	/* RFC 6186 section 3.4: target "." says the service is not offered */
	static const struct { const char *svc; int offered; } rows[] = {
		{ "_imaps", 1 }, { "_submissions", 1 }, { "_imap", 0 },
		{ "_submission", 0 }, { "_pop3", 0 }, { "_pop3s", 0 },
	};
	size_t cap = 2048, o = 0, i;
	char *p = malloc(cap);

	if (p == NULL)
		return EX_OSERR;
	o += (size_t)snprintf(p + o, cap - o,
			      "; RFC 6186 / RFC 8314 service records for %s\n", site->domain);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int port = strcmp(rows[i].svc, "_imaps") == 0 ? site->imap_port : site->smtp_port;
		int n;

		if (rows[i].offered)
			n = snprintf(p + o, cap - o, "%s._tcp.%s.\t3600\tIN\tSRV\t0 1 %d %s.\n",
				     rows[i].svc, site->domain, port, site->host);
		else
			n = snprintf(p + o, cap - o, "%s._tcp.%s.\t3600\tIN\tSRV\t0 0 0 .\n",
				     rows[i].svc, site->domain);
		if (n < 0 || (size_t)n >= cap - o) {
			free(p);
			return EX_SOFTWARE;
		}
		o += (size_t)n;
	}
	*out = p;
	*len = o;
	return 0;
}

static void html_row(struct xw *x, const char *a, const char *b, const char *c, const char *d)
{
	const char *cells[4] = { a, b, c, d };

	xw_start(x, "tr");
	for (int i = 0; i < 4; i++)
		xw_elem(x, "td", cells[i]);
	xw_end(x);
}

static void html_link(struct xw *x, const char *href, const char *text)
{
	xw_start(x, "li");
	xw_start(x, "a");
	xw_attr(x, "href", href);
	xw_text(x, text);
	xw_end(x);
	xw_end(x);
}

int autoconfig_landing(const struct autoconfig_site *site, char **out, size_t *len)
{
	char port[16], title[sizeof(site->display_name) + 16];
	struct xw x;
	int rc = xw_open(&x, 1);

	if (rc != 0)
		return rc;
	/* HTML5 in XML syntax: no XML declaration, "<!DOCTYPE html>" */
	xw_check(&x, xmlTextWriterWriteDTD(x.w, BAD_CAST "html", NULL, NULL, NULL));
	xw_start(&x, "html");
	xw_attr(&x, "lang", "en");
	xw_start(&x, "head");
	xw_start(&x, "meta");
	xw_attr(&x, "charset", "utf-8");
	xw_check(&x, xmlTextWriterEndElement(x.w));
	snprintf(title, sizeof(title), "%s settings", site->display_name);
	xw_elem(&x, "title", title);
	xw_end(&x);
	xw_start(&x, "body");
	xw_elem(&x, "h1", title);
	xw_elem(&x, "p", "Thunderbird, Outlook and most mail apps set themselves up from "
		"your email address and password. If yours asks, use these settings:");
	xw_start(&x, "table");
	xw_start(&x, "tr");
	xw_elem(&x, "th", "");
	xw_elem(&x, "th", "Server");
	xw_elem(&x, "th", "Port");
	xw_elem(&x, "th", "Security");
	xw_end(&x);
	snprintf(port, sizeof(port), "%d", site->imap_port);
	html_row(&x, "Incoming (IMAP)", site->host, port, "SSL/TLS");
	snprintf(port, sizeof(port), "%d", site->smtp_port);
	html_row(&x, "Outgoing (SMTP)", site->host, port, "SSL/TLS");
	xw_end(&x);
	xw_elem(&x, "p", "User name: your full email address. Authentication: normal password.");
	xw_start(&x, "ul");
	html_link(&x, "/mail/config-v1.1.xml", "Thunderbird autoconfig (config-v1.1.xml)");
	html_link(&x, "/.well-known/autoconfig/mail/config-v1.1.xml",
		  "Well-known autoconfig URL");
	xw_end(&x);
	/* served by the --cgi mode only; a static tree has no per-user profile */
	xw_elem(&x, "h2", "iPhone, iPad and Mac Mail");
	xw_start(&x, "form");
	xw_attr(&x, "method", "get");
	xw_attr(&x, "action", "/mail/mailkeep.mobileconfig");
	xw_start(&x, "label");
	xw_text(&x, "Email address ");
	xw_start(&x, "input");
	xw_attr(&x, "type", "email");
	xw_attr(&x, "name", "emailaddress");
	xw_attr(&x, "required", "required");
	xw_check(&x, xmlTextWriterEndElement(x.w));
	xw_end(&x);
	xw_start(&x, "button");
	xw_attr(&x, "type", "submit");
	xw_text(&x, "Download profile");
	xw_end(&x);
	xw_end(&x);		/* form */
	xw_end(&x);		/* body */
	xw_end(&x);		/* html */
	return xw_close(&x, out, len);
}

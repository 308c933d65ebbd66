/*
 * Unit tests for lib/autoconfig*: the query-string parser and address
 * checks (bounds, refusals), the documents (escaping through
 * xmlTextWriter, stable UUIDs), reading clientConfig documents back and
 * comparing them, and the provider lines.
 */
#include "autoconfig-doc.h"
#include "autoconfig-query.h"
#include "autoconfig.h"
#include "config.h"
#include "t.h"

#include <libxml/parser.h>
#include <stdlib.h>
#include <sysexits.h>

static void test_query_get(void)
{
	char out[64];
	size_t n = 0;
	const char *qs;

	qs = "a=1&emailaddress=alice%40example.com&b=2";
	T_EQ(autoconfig_query_get(qs, strlen(qs), "emailaddress", out, sizeof(out), &n),
	     AUTOCONFIG_Q_FOUND);
	T_STREQ(out, "alice@example.com");
	T_EQ(n, 17);
	qs = "emailaddress=a+b%2Bc";
	T_EQ(autoconfig_query_get(qs, strlen(qs), "emailaddress", out, sizeof(out), &n),
	     AUTOCONFIG_Q_FOUND);
	T_STREQ(out, "a b+c");
	qs = "x=1&&y";
	T_EQ(autoconfig_query_get(qs, strlen(qs), "emailaddress", out, sizeof(out), &n),
	     AUTOCONFIG_Q_ABSENT);
	T_EQ(autoconfig_query_get("", 0, "emailaddress", out, sizeof(out), &n), AUTOCONFIG_Q_ABSENT);
	qs = "emailaddress";
	T_EQ(autoconfig_query_get(qs, strlen(qs), "emailaddress", out, sizeof(out), &n),
	     AUTOCONFIG_Q_FOUND);
	T_STREQ(out, "");
	/* an encoded key counts as the key */
	qs = "email%61ddress=z";
	T_EQ(autoconfig_query_get(qs, strlen(qs), "emailaddress", out, sizeof(out), &n),
	     AUTOCONFIG_Q_FOUND);
	T_STREQ(out, "z");
}

static void test_query_bad(void)
{
	char out[16], big[AUTOCONFIG_MAX_QUERY + 2];
	size_t n;
	const char *bad[] = {
		"emailaddress=%", "emailaddress=%4", "emailaddress=%zz", "emailaddress=a%00b",
		"emailaddress=a&emailaddress=b", "emailaddress=0123456789abcdef",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		T_EQ(autoconfig_query_get(bad[i], strlen(bad[i]), "emailaddress", out, sizeof(out),
					  &n), AUTOCONFIG_Q_BAD);
	/* a bad escape in another key is not our business */
	T_EQ(autoconfig_query_get("x=%zz&emailaddress=a", 20, "emailaddress", out, sizeof(out),
				  &n), AUTOCONFIG_Q_FOUND);
	/* exactly cap-1 fits */
	T_EQ(autoconfig_query_get("emailaddress=0123456789abcde", 28, "emailaddress", out,
				  sizeof(out), &n), AUTOCONFIG_Q_FOUND);
	T_EQ(n, 15);
	memset(big, 'a', sizeof(big));
	memcpy(big, "emailaddress=", 13);
	T_EQ(autoconfig_query_get(big, AUTOCONFIG_MAX_QUERY + 1, "emailaddress", out, sizeof(out),
				  &n), AUTOCONFIG_Q_BAD);
	/* the length given is respected: no NUL needed, nothing read past it */
	T_EQ(autoconfig_query_get("emailaddress=ab", 14, "emailaddress", out, sizeof(out), &n),
	     AUTOCONFIG_Q_FOUND);
	T_STREQ(out, "a");
}

static void test_email_valid(void)
{
	const char *good[] = { "alice@example.com", "a.b+tag@mail.example.co.uk",
		"o'brien@example.com", "x_y-z@a-b.example", "1@2.3" };
	const char *bad[] = { "", "alice", "@example.com", "alice@", "alice@localhost",
		"<b>@example.com", "a b@example.com", "a\r\nb@example.com", "\"q\"@example.com",
		".a@example.com", "a.@example.com", "a..b@example.com", "a@b@example.com",
		"a@-x.example.com", "a@x-.example.com", "a@x..example.com", "a@example.com.",
		"a@exa_mple.com", "a@ex\"ample.com", "a@example.com>" };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		T_OK(autoconfig_email_valid(good[i], strlen(good[i])));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (autoconfig_email_valid(bad[i], strlen(bad[i])))
			printf("# accepted: %s\n", bad[i]);
		T_OK(!autoconfig_email_valid(bad[i], strlen(bad[i])));
	}
	char local[70], addr[300];
	memset(local, 'a', 65);
	local[65] = '\0';
	snprintf(addr, sizeof(addr), "%s@example.com", local);
	T_OK(!autoconfig_email_valid(addr, strlen(addr)));
	local[64] = '\0';
	snprintf(addr, sizeof(addr), "%s@example.com", local);
	T_OK(autoconfig_email_valid(addr, strlen(addr)));
	/* the label limit */
	memset(addr, 'b', sizeof(addr));
	memcpy(addr, "a@", 2);
	memcpy(addr + 2 + 64, ".com", 4);
	T_OK(!autoconfig_email_valid(addr, 2 + 64 + 4));
	T_OK(autoconfig_email_valid(addr + 1, 0) == 0);
}

static struct config *load(const char *text)
{
	struct config *cfg = NULL;
	char err[256];

	if (config_parse(text, strlen(text), "test.conf", &cfg, err, sizeof(err)) != 0)
		printf("# config: %s\n", err);
	return cfg;
}

static void test_uuid(void)
{
	char a[37], b[37], c[37];

	autoconfig_uuid("profile:example.com:alice@example.com", a);
	autoconfig_uuid("profile:example.com:alice@example.com", b);
	autoconfig_uuid("profile:example.com:bob@example.com", c);
	T_STREQ(a, b);
	T_OK(strcmp(a, c) != 0);
	T_EQ(strlen(a), 36);
	T_EQ(a[14], '5');
	T_OK(strchr("89AB", a[19]) != NULL);
	T_EQ(a[8], '-');
	T_EQ(a[23], '-');
}

static void test_thunderbird_roundtrip(void)
{
	struct config *cfg = load("domain = example.com\nsubdomain = mx\n");
	struct autoconfig_site site;
	struct autoconfig_doc *doc = NULL;
	char err[256], *xml = NULL;
	size_t len = 0;

	T_OK(cfg != NULL);
	if (cfg == NULL)
		return;
	T_EQ(autoconfig_site_init(&site, cfg, err, sizeof(err)), 0);
	T_STREQ(site.host, "mx.example.com");
	T_EQ(autoconfig_thunderbird(&site, &xml, &len), 0);
	T_EQ(strlen(xml), len);
	T_EQ(autoconfig_doc_parse(xml, len, &doc, err, sizeof(err)), 0);
	if (doc != NULL) {
		T_EQ(autoconfig_doc_compare(doc, &site, NULL, NULL), 0);
		T_EQ(doc->nin, 1);
		T_EQ(doc->in[0].port, 993);
		T_STREQ(doc->out[0].socket_type, "SSL");
		T_OK(autoconfig_doc_has_domain(doc, "EXAMPLE.com"));
		/* the same document judged against another site */
		site.imap_port = 143;
		T_EQ(autoconfig_doc_compare(doc, &site, NULL, NULL), 1);
		snprintf(site.domain, sizeof(site.domain), "example.org");
		T_EQ(autoconfig_doc_compare(doc, &site, NULL, NULL), 2);
	}
	autoconfig_doc_free(doc);
	free(xml);
	config_free(cfg);
}

static void test_escaping(void)
{
	struct config *cfg = load("domain = example.com\n");
	struct autoconfig_site site;
	char err[256], *out = NULL;
	size_t len;
	xmlDocPtr d;

	if (cfg == NULL || autoconfig_site_init(&site, cfg, err, sizeof(err)) != 0) {
		T_OK(0);
		config_free(cfg);
		return;
	}
	/* atext allows & and ' : the writer escapes them, the parser gets them back */
	T_EQ(autoconfig_mobileconfig(&site, "a&b'c@example.com", &out, &len), 0);
	T_OK(strstr(out, "a&amp;b'c@example.com") != NULL);
	d = xmlReadMemory(out, (int)len, "m", NULL, XML_PARSE_NONET | XML_PARSE_NOERROR);
	T_OK(d != NULL);
	xmlFreeDoc(d);
	free(out);
	T_EQ(autoconfig_autodiscover(&site, "a&b@example.com", &out, &len), 0);
	T_OK(strstr(out, "<LoginName>a&amp;b@example.com</LoginName>") != NULL);
	free(out);
	T_EQ(autoconfig_srv(&site, &out, &len), 0);
	T_OK(strstr(out, "_imaps._tcp.example.com.\t3600\tIN\tSRV\t0 1 993 imap.example.com.\n") != NULL);
	free(out);
	config_free(cfg);
}

static void test_autodiscover_request(void)
{
	char out[AUTOCONFIG_MAX_EMAIL + 1];
	const char *ok = "<?xml version=\"1.0\"?><Autodiscover xmlns=\"http://schemas.microsoft.com/"
		"exchange/autodiscover/outlook/requestschema/2006\"><Request><EMailAddress> "
		"bob@example.com </EMailAddress></Request></Autodiscover>";
	const char *bad[] = {
		"<Autodiscover><Request><EMailAddress>bob@example.com</EMailAddress></Request>",
		"<Other><Request><EMailAddress>bob@example.com</EMailAddress></Request></Other>",
		"<Autodiscover><Request><EMailAddress>&lt;b&gt;@example.com</EMailAddress></Request></Autodiscover>",
		"<!DOCTYPE Autodiscover [<!ENTITY e \"bob@example.com\">]><Autodiscover><Request>"
		"<EMailAddress>&e;</EMailAddress></Request></Autodiscover>",
		"<Autodiscover><Request/></Autodiscover>",
	};

	/* blanks around the address are layout */
	T_EQ(autoconfig_autodiscover_request(ok, strlen(ok), out, sizeof(out)), 0);
	T_STREQ(out, "bob@example.com");
	const char *ok2 = "<Autodiscover><Request><EMailAddress>bob@example.com</EMailAddress>"
		"</Request></Autodiscover>";
	T_EQ(autoconfig_autodiscover_request(ok2, strlen(ok2), out, sizeof(out)), 0);
	T_STREQ(out, "bob@example.com");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		T_EQ(autoconfig_autodiscover_request(bad[i], strlen(bad[i]), out, sizeof(out)), -1);
}

static const char ispdb_doc[] =
	"<?xml version=\"1.0\"?>\n<clientConfig version=\"1.1\"><emailProvider id=\"x\">"
	"<domain>example.net</domain><displayName>X\nMail</displayName>"
	"<incomingServer type=\"pop3\"><hostname>pop.example.net</hostname><port>995</port>"
	"<socketType>SSL</socketType><username>%EMAILADDRESS%</username></incomingServer>"
	"<incomingServer type=\"imap\"><hostname>imap.%EMAILDOMAIN%</hostname><port>143</port>"
	"<socketType>STARTTLS</socketType><username>%EMAILLOCALPART%</username></incomingServer>"
	"<incomingServer type=\"imap\"><hostname>bad host</hostname><port>993</port>"
	"<socketType>SSL</socketType><username>%EMAILADDRESS%</username></incomingServer>"
	"<outgoingServer type=\"smtp\"><hostname>smtp.example.net</hostname><port>587</port>"
	"<socketType>STARTTLS</socketType><username>%EMAILADDRESS%</username></outgoingServer>"
	"</emailProvider></clientConfig>";

static void test_provider_lines(void)
{
	struct autoconfig_doc *doc = NULL;
	char err[256], *out = NULL;

	T_EQ(autoconfig_doc_parse(ispdb_doc, strlen(ispdb_doc), &doc, err, sizeof(err)), 0);
	if (doc == NULL)
		return;
	T_EQ(autoconfig_doc_provider_lines(doc, "x", "example.net", "me@example.net", "test",
					   &out, err, sizeof(err)), 0);
	if (out != NULL) {
		/* the SSL server has an unusable host: the STARTTLS one is taken */
		T_OK(strstr(out, "[account x]\nhost = imap.example.net\nport = 143\ntls = starttls\n"
			    "username = me\n") != NULL);
		T_OK(strstr(out, "[relay]\nhost = smtp.example.net\nport = 587\ntls = starttls\n"
			    "username = me@example.net\n") != NULL);
		/* the display name's newline does not start a config line */
		T_OK(strstr(out, "\nMail") == NULL);
	}
	free(out);
	autoconfig_doc_free(doc);
}

static void test_doc_refused(void)
{
	struct autoconfig_doc *doc = NULL;
	char err[256];
	const char *bad[] = {
		"", "not xml", "<other version=\"1.1\"/>", "<clientConfig/>",
		"<clientConfig version=\"1.1\"/>",
		"<clientConfig version=\"1.1\"><emailProvider id=\"x\"><incomingServer type=\"imap\">"
		"<port>0</port></incomingServer></emailProvider></clientConfig>",
		"<clientConfig version=\"1.1\"><emailProvider id=\"x\"><incomingServer type=\"imap\">"
		"<port>99x</port></incomingServer></emailProvider></clientConfig>",
		"<clientConfig version=\"1.1\"><emailProvider id=\"x\"><incomingServer>"
		"</incomingServer></emailProvider></clientConfig>",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		T_EQ(autoconfig_doc_parse(bad[i], strlen(bad[i]), &doc, err, sizeof(err)), EX_DATAERR);
		T_OK(doc == NULL);
	}
}

int main(void)
{
	T_RUN(test_query_get);
	T_RUN(test_query_bad);
	T_RUN(test_email_valid);
	T_RUN(test_uuid);
	T_RUN(test_thunderbird_roundtrip);
	T_RUN(test_escaping);
	T_RUN(test_autodiscover_request);
	T_RUN(test_provider_lines);
	T_RUN(test_doc_refused);
	xmlCleanupParser();
	return t_done();
}

/*
 * HTTPS fetches of autoconfig documents with libcurl, and the check and
 * provider commands (see autoconfig-fetch.h).
 */
#include "autoconfig-fetch.h"
#include "autoconfig-doc.h"
#include "log.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

struct body {
	char *p;
	size_t len, cap;
	int too_big;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t n = size * nmemb;

	if (n > AUTOCONFIG_DOC_MAX - b->len) {
		b->too_big = 1;
		return 0;		/* makes curl stop with CURLE_WRITE_ERROR */
	}
	if (b->len + n + 1 > b->cap) {
		size_t want = (b->len + n + 1) * 2;
		char *np;

		if (want > AUTOCONFIG_DOC_MAX + 1)
			want = AUTOCONFIG_DOC_MAX + 1;
		np = realloc(b->p, want);
		if (np == NULL)
			return 0;
		b->p = np;
		b->cap = want;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

static struct curl_slist *make_list(const char *const *items, size_t n, int *bad)
{
	struct curl_slist *l = NULL, *t;

	for (size_t i = 0; i < n; i++) {
		t = curl_slist_append(l, items[i]);
		if (t == NULL) {
			*bad = 1;
			break;
		}
		l = t;
	}
	return l;
}

int autoconfig_fetch(const struct autoconfig_fetch_opts *o, const char *url,
		     char **out, size_t *len, char *err, size_t errlen)
{
	char cerr[CURL_ERROR_SIZE] = "";
	struct body b = { 0 };
	struct curl_slist *resolve, *connect_to;
	long status = 0;
	int bad = 0, rc;
	CURL *c;
	CURLcode r;

	*out = NULL;
	*len = 0;
	c = curl_easy_init();
	resolve = make_list(o->resolve, o->nresolve, &bad);
	connect_to = make_list(o->connect_to, o->nconnect_to, &bad);
	if (c == NULL || bad) {
		snprintf(err, errlen, "out of memory");
		rc = EX_OSERR;
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (o->ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
	if (resolve != NULL)
		curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
	if (connect_to != NULL)
		curl_easy_setopt(c, CURLOPT_CONNECT_TO, connect_to);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, o->timeout > 0 ? o->timeout : 15L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "mailkeep-autoconfig");
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)AUTOCONFIG_DOC_MAX);
	r = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	log_debug("fetch", "url=%s curl=%d status=%ld bytes=%zu", log_q(url), (int)r, status,
		  b.len);
	if (b.too_big || r == CURLE_FILESIZE_EXCEEDED) {
		snprintf(err, errlen, "response larger than %d bytes", AUTOCONFIG_DOC_MAX);
		rc = EX_DATAERR;
	} else if (r == CURLE_PEER_FAILED_VERIFICATION || r == CURLE_SSL_CONNECT_ERROR ||
		   r == CURLE_SSL_CERTPROBLEM || r == CURLE_SSL_CACERT_BADFILE) {
		snprintf(err, errlen, "TLS: %s", cerr[0] ? cerr : curl_easy_strerror(r));
		rc = EX_PROTOCOL;
	} else if (r != CURLE_OK) {
		snprintf(err, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(r));
		rc = EX_UNAVAILABLE;
	} else if (status != 200) {
		snprintf(err, errlen, "HTTP status %ld", status);
		rc = status == 404 ? EX_UNAVAILABLE : EX_DATAERR;
	} else if (b.len == 0) {
		snprintf(err, errlen, "empty response");
		rc = EX_DATAERR;
	} else {
		*out = b.p;
		*len = b.len;
		b.p = NULL;
		rc = 0;
	}
out:
	free(b.p);
	curl_slist_free_all(resolve);
	curl_slist_free_all(connect_to);
	if (c != NULL)
		curl_easy_cleanup(c);
	return rc;
}

/* The two URLs a client tries; EMAIL (may be NULL) goes in the query, escaped. */
static int client_urls(const char *domain, const char *email, char urls[2][1024])
{
	char *esc = NULL;
	CURL *c = curl_easy_init();

	if (c == NULL)
		return -1;
	if (email != NULL)
		esc = curl_easy_escape(c, email, 0);
	curl_easy_cleanup(c);
	if (email != NULL && esc == NULL)
		return -1;
	snprintf(urls[0], sizeof(urls[0]), "https://autoconfig.%s/mail/config-v1.1.xml%s%s",
		 domain, esc ? "?emailaddress=" : "", esc ? esc : "");
	snprintf(urls[1], sizeof(urls[1]),
		 "https://%s/.well-known/autoconfig/mail/config-v1.1.xml", domain);
	curl_free(esc);
	return 0;
}

/* One-line values for the report: no tab or newline from a server's message. */
static const char *flat(char *s)
{
	for (char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return s;
}

struct mismatch_ctx {
	const char *url;
};

static void print_mismatch(void *arg, const char *what)
{
	struct mismatch_ctx *m = arg;

	printf("mismatch\t%s\t%s\n", m->url, what);
}

int autoconfig_check(const struct autoconfig_fetch_opts *o, const struct autoconfig_site *site,
		     const char *email)
{
	char urls[2][1024], err[512];
	const char *at = strchr(email, '@');
	int served = 0, bad = 0;

	if (at == NULL || client_urls(at + 1, email, urls) != 0)
		return EX_SOFTWARE;
	if (strcasecmp(at + 1, site->domain) != 0)
		log_warn("check_domain", "email_domain=%s config_domain=%s", log_q(at + 1),
			 log_q(site->domain));
	for (int i = 0; i < 2; i++) {
		struct autoconfig_doc *doc = NULL;
		struct mismatch_ctx m = { urls[i] };
		char *body;
		size_t len;
		int rc = autoconfig_fetch(o, urls[i], &body, &len, err, sizeof(err));

		if (rc == EX_UNAVAILABLE) {
			printf("unreachable\t%s\t%s\n", urls[i], flat(err));
			continue;
		}
		if (rc == EX_PROTOCOL) {
			/* a client refuses the document: as bad as a wrong one */
			printf("tls\t%s\t%s\n", urls[i], flat(err));
			bad++;
			continue;
		}
		served++;
		if (rc == 0 && o->schema != NULL)
			rc = autoconfig_doc_validate(body, len, o->schema, err, sizeof(err));
		if (rc == 0)
			rc = autoconfig_doc_parse(body, len, &doc, err, sizeof(err));
		free(body);
		if (rc != 0) {
			printf("invalid\t%s\t%s\n", urls[i], flat(err));
			bad++;
			continue;
		}
		if (autoconfig_doc_compare(doc, site, print_mismatch, &m) > 0)
			bad++;
		else
			printf("ok\t%s\n", urls[i]);
		autoconfig_doc_free(doc);
	}
	fflush(stdout);
	if (bad > 0)
		return EX_DATAERR;
	return served > 0 ? 0 : EX_UNAVAILABLE;
}

int autoconfig_provider(const struct autoconfig_fetch_opts *o, const char *domain,
			const char *email, const char *name)
{
	char urls[2][1024], err[512];
	int worst = EX_UNAVAILABLE;

	if (client_urls(domain, email, urls) != 0)
		return EX_SOFTWARE;
	for (int i = 0; i < 2; i++) {
		struct autoconfig_doc *doc = NULL;
		char *body, *lines;
		size_t len;
		int rc = autoconfig_fetch(o, urls[i], &body, &len, err, sizeof(err));

		if (rc == 0) {
			rc = autoconfig_doc_parse(body, len, &doc, err, sizeof(err));
			free(body);
		}
		if (rc != 0) {
			log_info("provider_url", "url=%s result=%s", log_q(urls[i]), log_q(err));
			if (rc != EX_UNAVAILABLE)
				worst = EX_DATAERR;
			continue;
		}
		if (!autoconfig_doc_has_domain(doc, domain))
			log_warn("provider_domain", "url=%s domain=%s detail=%s", log_q(urls[i]),
				 log_q(domain), log_q("the document does not list this domain"));
		rc = autoconfig_doc_provider_lines(doc, name, domain, email, urls[i], &lines,
						   err, sizeof(err));
		autoconfig_doc_free(doc);
		if (rc != 0) {
			log_info("provider_url", "url=%s result=%s", log_q(urls[i]), log_q(err));
			worst = EX_DATAERR;
			continue;
		}
		fputs(lines, stdout);
		free(lines);
		return 0;
	}
	log_err("provider", "domain=%s error=%s", log_q(domain),
		log_q(worst == EX_DATAERR ? "no usable document was served" :
		      "no autoconfig document was served"));
	return worst;
}

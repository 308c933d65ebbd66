/*
 * mail-autoconfig: the documents that let mail clients set themselves up
 * (Thunderbird autoconfig, Apple profile, Outlook Autodiscover, SRV
 * records), as files, as a CGI program, and checks of what is served.
 * See mail-autoconfig(1).
 */
#include "autoconfig.h"
#include "autoconfig-fetch.h"
#include "autoconfig-query.h"
#include "config.h"
#include "fsutil.h"
#include "log.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#ifndef MAILKEEP_VERSION
#define MAILKEEP_VERSION "0.1"
#endif

enum format { FMT_NONE, FMT_THUNDERBIRD, FMT_MOBILECONFIG, FMT_AUTODISCOVER, FMT_SRV, FMT_HTML };

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mail-autoconfig [-c FILE] [-v] [--format FORMAT] [--email ADDR]\n"
		"       mail-autoconfig [-c FILE] [-v] --well-known DIR\n"
		"       mail-autoconfig [-c FILE] [-v] --cgi [--format FORMAT]\n"
		"       mail-autoconfig [-c FILE] [-v] [FETCH OPTIONS] [--schema RNG] check EMAIL\n"
		"       mail-autoconfig [-v] [FETCH OPTIONS] [--name NAME] provider DOMAIN|EMAIL\n"
		"Writes the documents mail clients use to configure themselves for the\n"
		"server in mailkeep.conf, serves them as a CGI program, or checks them.\n"
		"  -c FILE             config file (else $MAILKEEP_CONFIG, else %s)\n"
		"  -v                  debug diagnostics on stderr\n"
		"  --format FORMAT     thunderbird (default), mobileconfig, autodiscover, srv, html\n"
		"  --email ADDR        the address for mobileconfig and autodiscover\n"
		"  --well-known DIR    write DIR/.well-known/autoconfig/mail/config-v1.1.xml,\n"
		"                      DIR/mail/config-v1.1.xml and DIR/index.html\n"
		"  --cgi               answer one CGI request (QUERY_STRING emailaddress=...)\n"
		"  --schema RNG        check: also validate against this RELAX NG schema\n"
		"  --name NAME         provider: the [account NAME] (default: from the domain)\n"
		"FETCH OPTIONS (check, provider; HTTPS with certificate checks):\n"
		"  --ca FILE           trust this CA file instead of the system store\n"
		"  --resolve HOST:PORT:ADDR              use ADDR for HOST:PORT (as curl)\n"
		"  --connect-to HOST:PORT:HOST2:PORT2    connect to HOST2:PORT2 instead (as curl)\n"
		"  --timeout SECONDS   per request (default 15)\n"
		"  -h, --help          this text\n"
		"  --version           print the version\n"
		"Exit: 0 ok, 64 usage, 65 bad or mismatching document, 69 nothing served,\n"
		"73 cannot write, 78 config error.\n",
		CONFIG_DEFAULT_PATH);
}

static int parse_format(const char *s)
{
	static const struct { const char *name; enum format f; } t[] = {
		{ "thunderbird", FMT_THUNDERBIRD }, { "mobileconfig", FMT_MOBILECONFIG },
		{ "autodiscover", FMT_AUTODISCOVER }, { "srv", FMT_SRV }, { "html", FMT_HTML },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(s, t[i].name) == 0)
			return t[i].f;
	return -1;
}

/* Builds the document FMT for EMAIL (NULL where the format needs none). */
static int build(const struct autoconfig_site *site, enum format fmt, const char *email,
		 char **out, size_t *len)
{
	switch (fmt) {
	case FMT_MOBILECONFIG: return autoconfig_mobileconfig(site, email, out, len);
	case FMT_AUTODISCOVER: return autoconfig_autodiscover(site, email, out, len);
	case FMT_SRV: return autoconfig_srv(site, out, len);
	case FMT_HTML: return autoconfig_landing(site, out, len);
	default: return autoconfig_thunderbird(site, out, len);
	}
}

static int write_file(const char *dir, const char *rel, const char *buf, size_t len)
{
	char path[4096], tmp[4200], err[512];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	rc = fsutil_write_atomic(path, tmp, buf, len, 0644, err, sizeof(err));
	if (rc != 0)
		log_err("write", "error=%s", log_q(err));
	else
		log_info("write", "path=%s bytes=%zu", log_q(path), len);
	return rc;
}

static int run_well_known(const struct autoconfig_site *site, const char *dir)
{
	static const char *const dirs[] = { "", "/.well-known", "/.well-known/autoconfig",
		"/.well-known/autoconfig/mail", "/mail" };
	char path[4096], err[512], *xml = NULL, *html = NULL;
	size_t xlen, hlen;
	int rc;

	if (strlen(dir) > 3000) {
		fprintf(stderr, "mail-autoconfig: --well-known: path too long\n");
		return EX_USAGE;
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", dir, dirs[i]);
		rc = fsutil_mkdir(path, 0755, err, sizeof(err));
		if (rc != 0) {
			log_err("mkdir", "error=%s", log_q(err));
			return EX_CANTCREAT;
		}
	}
	rc = autoconfig_thunderbird(site, &xml, &xlen);
	if (rc == 0)
		rc = autoconfig_landing(site, &html, &hlen);
	if (rc == 0)
		rc = write_file(dir, ".well-known/autoconfig/mail/config-v1.1.xml", xml, xlen);
	if (rc == 0)
		rc = write_file(dir, "mail/config-v1.1.xml", xml, xlen);
	if (rc == 0)
		rc = write_file(dir, "index.html", html, hlen);
	free(xml);
	free(html);
	return rc == 0 ? 0 : EX_CANTCREAT;
}

/* ---- CGI (RFC 3875) ---- */

static void cgi_reply(int status, const char *reason, const char *type, const char *extra,
		      const char *body, size_t len, int head)
{
	printf("Status: %d %s\r\n", status, reason);
	printf("Content-Type: %s\r\n", type);
	printf("Content-Length: %zu\r\n", len);
	printf("X-Content-Type-Options: nosniff\r\n");
	if (extra != NULL)
		fputs(extra, stdout);
	printf("\r\n");
	if (!head && len > 0)
		fwrite(body, 1, len, stdout);
}

/* Plain-text refusals: the text is ours, never the request's. */
static void cgi_error(int status, const char *reason, const char *why, const char *extra)
{
	char body[256];
	int n = snprintf(body, sizeof(body), "%d %s: %s\n", status, reason, why);

	cgi_reply(status, reason, "text/plain; charset=utf-8", extra, body, (size_t)n, 0);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

/* The request path (no query): REQUEST_URI, else SCRIPT_NAME + PATH_INFO. */
static void request_path(char *out, size_t cap)
{
	const char *uri = getenv("REQUEST_URI");

	if (uri != NULL && uri[0] != '\0') {
		size_t n = strcspn(uri, "?#");

		snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), uri);
	} else {
		const char *sn = getenv("SCRIPT_NAME"), *pi = getenv("PATH_INFO");

		snprintf(out, cap, "%s%s", sn ? sn : "", pi ? pi : "");
	}
}

/* Reads the POST body (CONTENT_LENGTH bytes, at most max) from stdin. */
static int read_body(char *buf, size_t max, size_t *len)
{
	const char *cl = getenv("CONTENT_LENGTH");
	char *end;
	unsigned long want;
	size_t got = 0;

	if (cl == NULL || cl[0] < '0' || cl[0] > '9')
		return -1;
	errno = 0;
	want = strtoul(cl, &end, 10);
	if (errno != 0 || *end != '\0' || want == 0 || want > max)
		return -1;
	while (got < want) {
		ssize_t r = read(STDIN_FILENO, buf + got, want - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	*len = got;
	return 0;
}

static int cgi_autodiscover(const struct autoconfig_site *site, const char *method)
{
	char email[AUTOCONFIG_MAX_EMAIL + 1], *body, *doc = NULL;
	size_t len = 0, dlen;
	int rc;

	if (strcmp(method, "POST") != 0) {
		cgi_error(405, "Method Not Allowed", "Autodiscover needs POST", "Allow: POST\r\n");
		return 405;
	}
	body = malloc(AUTOCONFIG_MAX_BODY + 1);
	if (body == NULL)
		return EX_OSERR;
	if (read_body(body, AUTOCONFIG_MAX_BODY, &len) != 0 ||
	    autoconfig_autodiscover_request(body, len, email, sizeof(email)) != 0) {
		free(body);
		if (autoconfig_autodiscover_error(&doc, &dlen) != 0)
			return EX_SOFTWARE;
		cgi_reply(400, "Bad Request", "application/xml; charset=utf-8", NULL, doc, dlen, 0);
		free(doc);
		return 400;
	}
	free(body);
	rc = autoconfig_autodiscover(site, email, &doc, &dlen);
	if (rc != 0)
		return rc;
	cgi_reply(200, "OK", "application/xml; charset=utf-8", "Cache-Control: no-store\r\n",
		  doc, dlen, 0);
	free(doc);
	return 200;
}

/* Answers one request; returns the HTTP status, or a sysexits code on failure. */
static int cgi_answer(const struct autoconfig_site *site, enum format fmt)
{
	const char *method = getenv("REQUEST_METHOD"), *qs = getenv("QUERY_STRING");
	char path[1024], email[AUTOCONFIG_MAX_EMAIL + 1], extra[512], *doc = NULL;
	size_t elen = 0, dlen;
	int head, q, rc;

	if (method == NULL)
		method = "GET";
	if (qs == NULL)
		qs = "";
	request_path(path, sizeof(path));
	if (fmt == FMT_NONE) {
		if (ends_with(path, "/autodiscover/autodiscover.xml"))
			fmt = FMT_AUTODISCOVER;
		else if (ends_with(path, ".mobileconfig"))
			fmt = FMT_MOBILECONFIG;
		else if (strcmp(path, "/") == 0 || ends_with(path, "/index.html"))
			fmt = FMT_HTML;
		else
			fmt = FMT_THUNDERBIRD;
	}
	log_debug("cgi_request", "method=%s path=%s format=%d", log_q(method), log_q(path),
		  (int)fmt);
	if (fmt == FMT_AUTODISCOVER)
		return cgi_autodiscover(site, method);
	head = strcmp(method, "HEAD") == 0;
	if (!head && strcmp(method, "GET") != 0) {
		cgi_error(405, "Method Not Allowed", "use GET", "Allow: GET, HEAD\r\n");
		return 405;
	}
	q = autoconfig_query_get(qs, strlen(qs), "emailaddress", email, sizeof(email), &elen);
	if (q == AUTOCONFIG_Q_BAD || (q == AUTOCONFIG_Q_FOUND &&
				      !autoconfig_email_valid(email, elen))) {
		cgi_error(400, "Bad Request", "emailaddress is not a valid address", NULL);
		return 400;
	}
	if (fmt == FMT_MOBILECONFIG && q != AUTOCONFIG_Q_FOUND) {
		cgi_error(400, "Bad Request", "emailaddress is required", NULL);
		return 400;
	}
	rc = build(site, fmt, q == AUTOCONFIG_Q_FOUND ? email : NULL, &doc, &dlen);
	if (rc != 0)
		return rc;
	switch (fmt) {
	case FMT_MOBILECONFIG:
		/* the file name comes from the config's domain (a checked name), not the request */
		snprintf(extra, sizeof(extra), "Content-Disposition: attachment; "
			 "filename=\"%s.mobileconfig\"\r\nCache-Control: no-store\r\n", site->domain);
		cgi_reply(200, "OK", "application/x-apple-aspen-config", extra, doc, dlen, head);
		break;
	case FMT_HTML:
		cgi_reply(200, "OK", "text/html; charset=utf-8", NULL, doc, dlen, head);
		break;
	case FMT_SRV:
		cgi_reply(200, "OK", "text/plain; charset=utf-8", NULL, doc, dlen, head);
		break;
	default:
		cgi_reply(200, "OK", "application/xml; charset=utf-8",
			  "Cache-Control: max-age=3600\r\n", doc, dlen, head);
		break;
	}
	free(doc);
	return 200;
}

static int run_cgi(const struct autoconfig_site *site, enum format fmt)
{
	int st = cgi_answer(site, fmt);

	if (st < 100) {
		cgi_error(500, "Internal Server Error", "could not build the document", NULL);
		log_err("cgi", "status=500 error=%d", st);
	} else {
		log_info("cgi", "status=%d", st);
	}
	return fflush(stdout) == 0 ? 0 : EX_IOERR;
}

/* The [account NAME] for a provider: its domain's first label, config-safe. */
static void default_name(const char *domain, char *out, size_t cap)
{
	size_t o = 0;

	for (const char *s = domain; *s && *s != '.' && o + 1 < cap; s++)
		out[o++] = *s;
	out[o] = '\0';
	if (o == 0)
		snprintf(out, cap, "provider");
}

static int valid_section_name(const char *s)
{
	if (*s == '\0' || strlen(s) > 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("._-", *s) != NULL))
			return 0;
	return 1;
}

static int run_provider(const struct autoconfig_fetch_opts *fo, const char *arg,
			const char *opt_name)
{
	const char *at = strchr(arg, '@'), *domain = at ? at + 1 : arg;
	char name[72];

	if (at ? !autoconfig_email_valid(arg, strlen(arg)) :
	    !autoconfig_host_valid(arg, strlen(arg))) {
		fprintf(stderr, "mail-autoconfig: provider: '%s' is not a domain or address\n",
			log_q(arg));
		return EX_USAGE;
	}
	if (opt_name != NULL)
		snprintf(name, sizeof(name), "%s", opt_name);
	else
		default_name(domain, name, sizeof(name));
	if (!valid_section_name(name)) {
		fprintf(stderr, "mail-autoconfig: --name: letters, digits, '.', '_', '-' only\n");
		return EX_USAGE;
	}
	return autoconfig_provider(fo, domain, at ? arg : NULL, name);
}

int main(int argc, char **argv)
{
	enum { OPT_VERSION = 256, OPT_FORMAT, OPT_EMAIL, OPT_WELL_KNOWN, OPT_CGI, OPT_CA,
		OPT_RESOLVE, OPT_CONNECT_TO, OPT_TIMEOUT, OPT_SCHEMA, OPT_NAME };
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "email", required_argument, NULL, OPT_EMAIL },
		{ "well-known", required_argument, NULL, OPT_WELL_KNOWN },
		{ "cgi", no_argument, NULL, OPT_CGI },
		{ "ca", required_argument, NULL, OPT_CA },
		{ "resolve", required_argument, NULL, OPT_RESOLVE },
		{ "connect-to", required_argument, NULL, OPT_CONNECT_TO },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "schema", required_argument, NULL, OPT_SCHEMA },
		{ "name", required_argument, NULL, OPT_NAME },
		{ NULL, 0, NULL, 0 },
	};
	struct autoconfig_fetch_opts fo = { 0 };
	struct autoconfig_site site;
	struct config *cfg = NULL;
	const char *opt_c = NULL, *email = NULL, *well_known = NULL, *name = NULL, *cmd = NULL;
	int verbose = 0, cgi = 0, fmt = FMT_NONE, c, rc;
	char err[1024], *end;

	while ((c = getopt_long(argc, argv, "c:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': opt_c = optarg; break;
		case 'v': verbose++; break;
		case 'h': usage(stdout); return 0;
		case OPT_VERSION: printf("mail-autoconfig %s\n", MAILKEEP_VERSION); return 0;
		case OPT_FORMAT:
			fmt = parse_format(optarg);
			if (fmt < 0) {
				fprintf(stderr, "mail-autoconfig: unknown format '%s'\n", optarg);
				return EX_USAGE;
			}
			break;
		case OPT_EMAIL: email = optarg; break;
		case OPT_WELL_KNOWN: well_known = optarg; break;
		case OPT_CGI: cgi = 1; break;
		case OPT_CA: fo.ca_file = optarg; break;
		case OPT_RESOLVE:
			if (fo.nresolve == AUTOCONFIG_FETCH_MAX_OVERRIDES)
				return EX_USAGE;
			fo.resolve[fo.nresolve++] = optarg;
			break;
		case OPT_CONNECT_TO:
			if (fo.nconnect_to == AUTOCONFIG_FETCH_MAX_OVERRIDES)
				return EX_USAGE;
			fo.connect_to[fo.nconnect_to++] = optarg;
			break;
		case OPT_TIMEOUT:
			fo.timeout = strtol(optarg, &end, 10);
			if (*end != '\0' || fo.timeout < 1 || fo.timeout > 600) {
				fprintf(stderr, "mail-autoconfig: --timeout: 1 to 600 seconds\n");
				return EX_USAGE;
			}
			break;
		case OPT_SCHEMA: fo.schema = optarg; break;
		case OPT_NAME: name = optarg; break;
		default: usage(stderr); return EX_USAGE;
		}
	}
	if (optind < argc)
		cmd = argv[optind++];
	if (cmd != NULL && (strcmp(cmd, "check") != 0 && strcmp(cmd, "provider") != 0)) {
		fprintf(stderr, "mail-autoconfig: unknown command '%s'\n", cmd);
		usage(stderr);
		return EX_USAGE;
	}
	if ((cmd != NULL && (optind + 1 != argc || cgi || well_known)) ||
	    (cmd == NULL && optind != argc) || (cgi && well_known) ||
	    (well_known && fmt != FMT_NONE)) {
		usage(stderr);
		return EX_USAGE;
	}
	log_init("mail-autoconfig", verbose);
	xmlInitParser();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return EX_OSERR;
	if (cmd != NULL && strcmp(cmd, "provider") == 0) {
		rc = run_provider(&fo, argv[optind], name);
		goto done;
	}
	if (cmd != NULL && !autoconfig_email_valid(argv[optind], strlen(argv[optind]))) {
		fprintf(stderr, "mail-autoconfig: check: '%s' is not a valid address\n",
			log_q(argv[optind]));
		rc = EX_USAGE;
		goto done;
	}
	if (email != NULL && !autoconfig_email_valid(email, strlen(email))) {
		fprintf(stderr, "mail-autoconfig: --email: not a valid address\n");
		rc = EX_USAGE;
		goto done;
	}
	if (!cgi && (fmt == FMT_MOBILECONFIG || fmt == FMT_AUTODISCOVER) && email == NULL) {
		fprintf(stderr, "mail-autoconfig: --format %s needs --email ADDR\n",
			fmt == FMT_MOBILECONFIG ? "mobileconfig" : "autodiscover");
		rc = EX_USAGE;
		goto done;
	}
	rc = config_load(config_path(opt_c), &cfg, err, sizeof(err));
	if (rc == 0)
		rc = config_require(cfg, CONFIG_NEED_DOMAIN, err, sizeof(err));
	if (rc == 0)
		rc = autoconfig_site_init(&site, cfg, err, sizeof(err));
	if (rc != 0) {
		if (cgi)
			cgi_error(500, "Internal Server Error", "server misconfigured", NULL);
		fprintf(stderr, "mail-autoconfig: %s\n", err);
		goto done;
	}
	if (cmd != NULL) {
		rc = autoconfig_check(&fo, &site, argv[optind]);
	} else if (cgi) {
		rc = run_cgi(&site, (enum format)fmt);
	} else if (well_known) {
		rc = run_well_known(&site, well_known);
	} else {
		char *doc;
		size_t len;

		rc = build(&site, fmt == FMT_NONE ? FMT_THUNDERBIRD : (enum format)fmt, email,
			   &doc, &len);
		if (rc == 0) {
			if (fwrite(doc, 1, len, stdout) != len)
				rc = EX_IOERR;
			free(doc);
		}
	}
done:
	config_free(cfg);
	curl_global_cleanup();
	xmlCleanupParser();
	if (fflush(stdout) != 0 && rc == 0)
		rc = EX_IOERR;
	return rc;
}

#!/usr/bin/env bats
# mail-autoconfig: the documents validate with the real tools (xmllint
# against the clientConfig RELAX NG schema, plistutil and plistlib), the
# CGI answers under a real lighttpd fetched with curl, `check` fetches our
# documents over HTTPS with a test CA and reports what disagrees,
# `provider` reads the real ISPDB documents served by that lighttpd, and
# bad input is refused without reaching XML or headers.  Every host name
# is routed to lighttpd on 127.0.0.1 (--connect-to); nothing leaves the
# machine.

load lib/common
load lib/httpd

RNG="$MK_ROOT/../shared/testdata/autoconfig/autoconfig.rng"
ISPDB="$MK_ROOT/../shared/testdata/autoconfig/ispdb"

setup() {
	load_bats_libs
	T=$(mk_tmp)
	CONF=$T/mailkeep.conf
	printf 'domain = example.com\nsubdomain = imap\n' > "$CONF"
}

teardown() {
	mk_httpd_stop
	# sanitizer reports from CGI runs (their stderr is not in `run`'s output)
	local f
	for f in "$T/cgi.err" "${MK_HTTPD_DIR:-/nonexistent}/cgi.log"; do
		if [ -f "$f" ] && grep -q 'Sanitizer\|runtime error' "$f"; then
			cat "$f" >&2
			return 1
		fi
	done
}

need_rng() {
	[ -f "$RNG" ] || skip "no $RNG (shared/testdata is put beside the checkout by CI)"
}

need_ispdb() {
	[ -d "$ISPDB" ] || skip "no $ISPDB (shared/testdata is put beside the checkout by CI)"
}

need_httpd() {
	mk_httpd_available || skip "lighttpd with mod_openssl is not installed (scripts/deps)"
}

# lighttpd serving example.com (static well-known tree) and
# autoconfig.example.com (the CGI), plus any extra hosts given.
start_site() {   # extra hosts...
	need_httpd
	mk_httpd_init "$T/httpd" autoconfig.example.com example.com "$@"
	mk_httpd_cgi autoconfig.example.com autoconfig "$MK_BUILD/bin/mail-autoconfig" -c "$CONF" --cgi
	mail-autoconfig -c "$CONF" --well-known "$(mk_httpd_root example.com)" 2>/dev/null
	mk_httpd_conf '$HTTP["host"] =~ "^autoconfig\.example\.com(:[0-9]+)?$" {
  url.rewrite-once = ( "^/mail/config-v1\.1\.xml(\?.*)?$" => "/autoconfig.cgi$1",
                       "^/autodiscover/autodiscover\.xml$" => "/autoconfig.cgi",
                       "^/[^/?]*\.mobileconfig(\?.*)?$" => "/autoconfig.cgi$1" )
}'
	mk_httpd_start
	ROUTE=(--ca "$MK_HTTPD_CA" --connect-to "::127.0.0.1:$MK_HTTPD_PORT")
}

# Runs the CGI directly with a request environment.
cgi() {   # method query [body]
	if [ -n "${3:-}" ]; then
		printf '%s' "$3" | env -i PATH="$PATH" REQUEST_METHOD="$1" QUERY_STRING="$2" \
			REQUEST_URI="${URI:-/mail/config-v1.1.xml}" CONTENT_LENGTH="${#3}" \
			GATEWAY_INTERFACE=CGI/1.1 mail-autoconfig -c "$CONF" --cgi 2>>"$T/cgi.err"
	else
		env -i PATH="$PATH" REQUEST_METHOD="$1" QUERY_STRING="$2" \
			REQUEST_URI="${URI:-/mail/config-v1.1.xml}" GATEWAY_INTERFACE=CGI/1.1 \
			mail-autoconfig -c "$CONF" --cgi </dev/null 2>>"$T/cgi.err"
	fi
}

AD_REQUEST='<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>bob@example.com</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>'

@test "usage, version, help, bad arguments, config errors" {
	run mail-autoconfig --version
	assert_success
	assert_output --partial "mail-autoconfig"
	run mail-autoconfig --help
	assert_success
	assert_output --partial "--well-known"
	run mail-autoconfig -c "$CONF" --format pdf
	assert_failure 64
	run mail-autoconfig -c "$CONF" frobnicate
	assert_failure 64
	run mail-autoconfig -c "$CONF" --format mobileconfig
	assert_failure 64
	run mail-autoconfig -c "$CONF" --format mobileconfig --email '<b>@example.com'
	assert_failure 64
	run mail-autoconfig -c "$CONF" check not-an-address
	assert_failure 64
	run mail-autoconfig -c "$T/missing.conf"
	assert_failure 78
	printf 'subdomain = imap\n' > "$T/nodomain.conf"
	run mail-autoconfig -c "$T/nodomain.conf"
	assert_failure 78
	assert_output --partial "domain"
}

@test "Thunderbird clientConfig: the module's settings, valid against the RELAX NG schema" {
	need_rng
	mail-autoconfig -c "$CONF" > "$T/config.xml"
	run xmllint --noout --relaxng "$RNG" "$T/config.xml"
	assert_success
	run xmllint --xpath 'concat(/clientConfig/@version, " ",
		/clientConfig/emailProvider/domain, " ",
		/clientConfig/emailProvider/incomingServer[@type="imap"]/hostname, ":",
		/clientConfig/emailProvider/incomingServer/port, "/",
		/clientConfig/emailProvider/incomingServer/socketType, " ",
		/clientConfig/emailProvider/outgoingServer[@type="smtp"]/hostname, ":",
		/clientConfig/emailProvider/outgoingServer/port, "/",
		/clientConfig/emailProvider/outgoingServer/socketType, " ",
		/clientConfig/emailProvider/incomingServer/authentication, " ",
		/clientConfig/emailProvider/incomingServer/username, " ",
		/clientConfig/emailProvider/documentation/@url)' "$T/config.xml"
	assert_output "1.1 example.com imap.example.com:993/SSL imap.example.com:465/SSL password-cleartext %EMAILADDRESS% https://autoconfig.example.com/"
	run xmllint --xpath 'string(/clientConfig/emailProvider/displayName)' "$T/config.xml"
	assert_output "example.com Mail"
	# the subdomain comes from the config
	printf 'domain = example.org\nsubdomain = mx1\n' > "$T/other.conf"
	run mail-autoconfig -c "$T/other.conf"
	assert_output --partial "<hostname>mx1.example.org</hostname>"
}

@test "--well-known writes both autoconfig paths and the landing page" {
	need_rng
	W=$T/www
	run mail-autoconfig -c "$CONF" --well-known "$W"
	assert_success
	for f in .well-known/autoconfig/mail/config-v1.1.xml mail/config-v1.1.xml; do
		run xmllint --noout --relaxng "$RNG" "$W/$f"
		assert_success
		mail-autoconfig -c "$CONF" | cmp - "$W/$f"
	done
	run xmllint --noout "$W/index.html"
	assert_success
	run grep -c 'imap.example.com' "$W/index.html"
	assert_output 2
	grep -q '<!DOCTYPE html>' "$W/index.html"
	# again: files replaced, nothing left over
	run mail-autoconfig -c "$CONF" --well-known "$W"
	assert_success
	run find "$W" -name '*.tmp*'
	assert_output ""
	# an unwritable target fails with EX_CANTCREAT
	: > "$T/file"
	run mail-autoconfig -c "$CONF" --well-known "$T/file/www"
	assert_failure 73
}

@test "mobileconfig: com.apple.mail.managed plist that plistutil and plistlib read, stable UUIDs" {
	mail-autoconfig -c "$CONF" --format mobileconfig --email alice@example.com > "$T/a.mobileconfig"
	run plistutil -i "$T/a.mobileconfig" -o "$T/a.bin"
	assert_success
	run plistutil -i "$T/a.bin"
	assert_success
	assert_output --partial "com.apple.mail.managed"
	run /usr/bin/python3 - "$T/a.mobileconfig" <<'PY'
import plistlib, sys
p = plistlib.load(open(sys.argv[1], 'rb'))
m = p['PayloadContent'][0]
assert p['PayloadType'] == 'Configuration', p
assert m['PayloadType'] == 'com.apple.mail.managed'
assert m['EmailAccountType'] == 'EmailTypeIMAP'
assert m['EmailAddress'] == 'alice@example.com'
assert m['IncomingMailServerHostName'] == 'imap.example.com'
assert m['IncomingMailServerPortNumber'] == 993 and m['IncomingMailServerUseSSL'] is True
assert m['OutgoingMailServerHostName'] == 'imap.example.com'
assert m['OutgoingMailServerPortNumber'] == 465 and m['OutgoingMailServerUseSSL'] is True
assert m['IncomingMailServerUsername'] == 'alice@example.com'
assert m['OutgoingMailServerAuthentication'] == 'EmailAuthPassword'
assert p['PayloadUUID'] != m['PayloadUUID']
print(p['PayloadUUID'], m['PayloadUUID'])
PY
	assert_success
	uuids=$output
	# same address: same UUIDs (a reinstall replaces); another address: others
	mail-autoconfig -c "$CONF" --format mobileconfig --email alice@example.com | cmp - "$T/a.mobileconfig"
	mail-autoconfig -c "$CONF" --format mobileconfig --email bob@example.com > "$T/b.mobileconfig"
	run /usr/bin/python3 -c "import plistlib,sys; p=plistlib.load(open('$T/b.mobileconfig','rb')); print(p['PayloadUUID'], p['PayloadContent'][0]['PayloadUUID'])"
	refute_output "$uuids"
	[[ "$output" =~ ^[0-9A-F]{8}-[0-9A-F]{4}-5[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}\ [0-9A-F-]{36}$ ]]
}

@test "srv: RFC 6186/8314 zone lines, target '.' for what is not offered" {
	run mail-autoconfig -c "$CONF" --format srv
	assert_success
	assert_line "$(printf '_imaps._tcp.example.com.\t3600\tIN\tSRV\t0 1 993 imap.example.com.')"
	assert_line "$(printf '_submissions._tcp.example.com.\t3600\tIN\tSRV\t0 1 465 imap.example.com.')"
	assert_line "$(printf '_imap._tcp.example.com.\t3600\tIN\tSRV\t0 0 0 .')"
	assert_line "$(printf '_submission._tcp.example.com.\t3600\tIN\tSRV\t0 0 0 .')"
}

@test "autodiscover: Outlook POX response, well-formed, IMAP 993 and SMTP 465 over SSL" {
	mail-autoconfig -c "$CONF" --format autodiscover --email alice@example.com > "$T/ad.xml"
	run xmllint --noout "$T/ad.xml"
	assert_success
	run xmllint --xpath 'concat(
		string(//*[local-name()="Protocol"][*[local-name()="Type"]="IMAP"]/*[local-name()="Port"]), " ",
		string(//*[local-name()="Protocol"][*[local-name()="Type"]="SMTP"]/*[local-name()="Port"]), " ",
		string(//*[local-name()="Protocol"][1]/*[local-name()="Server"]), " ",
		string(//*[local-name()="Protocol"][1]/*[local-name()="LoginName"]), " ",
		string(//*[local-name()="Protocol"][1]/*[local-name()="SSL"]))' "$T/ad.xml"
	assert_output "993 465 imap.example.com alice@example.com on"
}

@test "cgi (direct): headers and body; bad input refused with 400, never echoed" {
	run cgi GET 'emailaddress=alice%40example.com'
	assert_success
	assert_line --index 0 "$(printf 'Status: 200 OK\r')"
	assert_line "$(printf 'Content-Type: application/xml; charset=utf-8\r')"
	assert_output --partial "<hostname>imap.example.com</hostname>"
	# HEAD: headers only
	run cgi HEAD ''
	assert_line --index 0 "$(printf 'Status: 200 OK\r')"
	refute_output --partial "<clientConfig"
	# markup, CRLF, 10 KB junk, a key given twice, bad escapes
	junk=$(head -c 10240 /dev/zero | tr '\0' 'A')
	for q in 'emailaddress=%3Cscript%3Ealert(1)%3C%2Fscript%3E%40example.com' \
		 'emailaddress=a%0D%0ASet-Cookie%3A%20x%3D1%40example.com' \
		 'emailaddress=a%0d%0a%0d%0a<b>@example.com' \
		 "emailaddress=$junk" "emailaddress=a@example.com&x=$junk" \
		 'emailaddress=a@example.com&emailaddress=b@example.com' \
		 'emailaddress=%zz' 'emailaddress=a%00b@example.com' \
		 'emailaddress="><x>@example.com'; do
		run cgi GET "$q"
		assert_success
		assert_line --index 0 "$(printf 'Status: 400 Bad Request\r')"
		refute_output --partial "<script"
		refute_output --partial "Set-Cookie"
		refute_output --partial "<x>"
		refute_output --partial "<b>"
		refute_output --partial "AAAAAAAA"
	done
	# wrong method
	run cgi POST 'emailaddress=alice%40example.com' 'x=1'
	assert_line --index 0 "$(printf 'Status: 405 Method Not Allowed\r')"
	# mobileconfig needs an address
	URI=/mail/example.mobileconfig run cgi GET ''
	assert_line --index 0 "$(printf 'Status: 400 Bad Request\r')"
	# Autodiscover: POST with a request body; GET refused; markup in the address refused
	URI=/autodiscover/autodiscover.xml run cgi POST '' "$AD_REQUEST"
	assert_line --index 0 "$(printf 'Status: 200 OK\r')"
	assert_output --partial "<LoginName>bob@example.com</LoginName>"
	URI=/autodiscover/autodiscover.xml run cgi GET ''
	assert_line --index 0 "$(printf 'Status: 405 Method Not Allowed\r')"
	URI=/AutoDiscover/AutoDiscover.xml run cgi POST '' "${AD_REQUEST/bob@example.com/&lt;img&gt;@example.com}"
	assert_line --index 0 "$(printf 'Status: 400 Bad Request\r')"
	refute_output --partial "img"
	URI=/autodiscover/autodiscover.xml run cgi POST '' '<!DOCTYPE a [<!ENTITY x "y@example.com">]><Autodiscover><Request><EMailAddress>&x;</EMailAddress></Request></Autodiscover>'
	assert_line --index 0 "$(printf 'Status: 400 Bad Request\r')"
	URI=/autodiscover/autodiscover.xml run cgi POST '' "$junk"
	assert_line --index 0 "$(printf 'Status: 400 Bad Request\r')"
}

@test "cgi under lighttpd, fetched with curl: status, headers, body" {
	need_rng
	start_site
	run mk_httpd_curl autoconfig.example.com '/mail/config-v1.1.xml?emailaddress=alice%40example.com' \
		-o "$T/served.xml" -D "$T/headers" -w '%{http_code} %{content_type}'
	assert_success
	assert_output "200 application/xml; charset=utf-8"
	run xmllint --noout --relaxng "$RNG" "$T/served.xml"
	assert_success
	mail-autoconfig -c "$CONF" | cmp - "$T/served.xml"
	grep -qi '^x-content-type-options: nosniff' "$T/headers"
	# static well-known tree on the domain itself, landing page on /
	run mk_httpd_curl example.com /.well-known/autoconfig/mail/config-v1.1.xml -o "$T/wk.xml" -w '%{http_code}'
	assert_output 200
	cmp "$T/served.xml" "$T/wk.xml"
	run mk_httpd_curl example.com / -w '%{http_code} %{content_type}' -o "$T/index.html"
	assert_output "200 text/html; charset=utf-8"
	# Apple profile through the web server
	run mk_httpd_curl autoconfig.example.com '/mailkeep.mobileconfig?emailaddress=carol%40example.com' \
		-o "$T/c.mobileconfig" -D "$T/mheaders" -w '%{http_code} %{content_type}'
	assert_output "200 application/x-apple-aspen-config"
	grep -qi '^content-disposition: attachment; filename="example.com.mobileconfig"' "$T/mheaders"
	run /usr/bin/python3 -c "import plistlib; print(plistlib.load(open('$T/c.mobileconfig','rb'))['PayloadContent'][0]['EmailAddress'])"
	assert_output "carol@example.com"
	# Outlook's POST
	run mk_httpd_curl autoconfig.example.com /autodiscover/autodiscover.xml \
		-H 'Content-Type: text/xml' --data-binary "$AD_REQUEST" -w '\n%{http_code}'
	assert_line --index -1 200
	assert_output --partial "<Server>imap.example.com</Server>"
	# bad input through the server: 400, nothing injected into headers or body
	run mk_httpd_curl autoconfig.example.com \
		'/mail/config-v1.1.xml?emailaddress=a%0D%0ASet-Cookie:%20x=1%0D%0A%0D%0A%3Cb%3E@example.com' \
		-D "$T/bad-headers" -w '\n%{http_code}'
	assert_line --index -1 400
	refute_output --partial "<b>"
	! grep -qi 'set-cookie' "$T/bad-headers"
	# 3 KB reaches the CGI, which refuses it; 10 KB lighttpd refuses itself (431)
	for n in 3072 10240; do
		junk=$(head -c $n /dev/urandom | base64 -w0 | tr '+/' '-_' | head -c $n)
		run mk_httpd_curl autoconfig.example.com "/mail/config-v1.1.xml?emailaddress=$junk" -w '\n%{http_code}'
		[ $n -lt 4096 ] && assert_line --index -1 400 || assert_line --index -1 --regexp '^4[0-9][0-9]$'
		refute_output --partial "${junk:0:40}"
	done
	run mk_httpd_curl autoconfig.example.com '/mail/config-v1.1.xml?emailaddress=%22%3E%3Cx%3E@example.com' -w '\n%{http_code}'
	assert_line --index -1 400
	refute_output --partial "<x>"
}

@test "check: OK against the served documents with the test CA" {
	start_site
	run mail-autoconfig -c "$CONF" "${ROUTE[@]}" check alice@example.com
	assert_success
	assert_line "$(printf 'ok\thttps://autoconfig.example.com/mail/config-v1.1.xml?emailaddress=alice%%40example.com')"
	assert_line "$(printf 'ok\thttps://example.com/.well-known/autoconfig/mail/config-v1.1.xml')"
	if [ -f "$RNG" ]; then
		run mail-autoconfig -c "$CONF" "${ROUTE[@]}" --schema "$RNG" check alice@example.com
		assert_success
	fi
	# without the test CA the certificate is refused, as a client would
	run mail-autoconfig -c "$CONF" --connect-to "::127.0.0.1:$MK_HTTPD_PORT" check alice@example.com
	assert_failure 65
	assert_line --partial "$(printf 'tls\thttps://example.com/')"
}

@test "check: a wrong port in the served file is reported, exit 65" {
	start_site
	f="$(mk_httpd_root example.com)/.well-known/autoconfig/mail/config-v1.1.xml"
	sed -i 's|<port>993</port>|<port>994</port>|' "$f"
	run mail-autoconfig -c "$CONF" "${ROUTE[@]}" check alice@example.com
	assert_failure 65
	assert_line "$(printf 'mismatch\thttps://example.com/.well-known/autoconfig/mail/config-v1.1.xml\tincoming imap port: served 994, expected 993')"
	assert_line --partial "$(printf 'ok\thttps://autoconfig.example.com/')"
	# another host, STARTTLS, a POP3 server
	sed -i -e 's|<hostname>imap.example.com</hostname>|<hostname>mail.example.net</hostname>|' \
		-e '0,/<socketType>SSL/s||<socketType>STARTTLS|' "$f"
	run mail-autoconfig -c "$CONF" "${ROUTE[@]}" check alice@example.com
	assert_failure 65
	assert_output --partial "incoming imap hostname: served mail.example.net, expected imap.example.com"
	assert_output --partial "incoming imap socketType: served STARTTLS, expected SSL"
	# not XML at all
	echo 'not <xml' > "$f"
	run mail-autoconfig -c "$CONF" "${ROUTE[@]}" check alice@example.com
	assert_failure 65
	assert_line --partial "$(printf 'invalid\thttps://example.com/')"
	# nothing served anywhere: 69
	rm "$f" "$(mk_httpd_root autoconfig.example.com)/autoconfig.cgi"
	run mail-autoconfig -c "$CONF" "${ROUTE[@]}" check alice@example.com
	assert_failure 69
	assert_line --partial "$(printf 'unreachable\thttps://example.com/')"
}

@test "provider: Fastmail's ISPDB document from autoconfig.<domain> becomes [account] and [relay] lines" {
	need_ispdb
	need_httpd
	mk_httpd_init "$T/httpd" autoconfig.messagingengine.com messagingengine.com gmx.com autoconfig.gmx.com \
		nothing.example autoconfig.nothing.example
	mkdir -p "$(mk_httpd_root autoconfig.messagingengine.com)/mail"
	cp "$ISPDB/messagingengine.com.xml" "$(mk_httpd_root autoconfig.messagingengine.com)/mail/config-v1.1.xml"
	mkdir -p "$(mk_httpd_root gmx.com)/.well-known/autoconfig/mail"
	cp "$ISPDB/gmx.com.xml" "$(mk_httpd_root gmx.com)/.well-known/autoconfig/mail/config-v1.1.xml"
	mk_httpd_start
	R=(--ca "$MK_HTTPD_CA" --connect-to "::127.0.0.1:$MK_HTTPD_PORT")
	run mail-autoconfig "${R[@]}" provider me@messagingengine.com
	assert_success
	assert_line "[account messagingengine]"
	assert_line "host = imap.fastmail.com"
	assert_line "port = 993"
	assert_line "tls = imaps"
	assert_line "username = me@messagingengine.com"
	assert_line "password_file = /run/secrets/mailserver/imap/messagingengine/password"
	assert_line "[relay]"
	assert_line "host = smtp.fastmail.com"
	assert_line "port = 465"
	assert_line "tls = smtps"
	assert_line "password_file = /run/secrets/mailserver/smtp/messagingengine/password"
	# the lines are a valid mailkeep.conf
	{ echo "domain = example.com"; echo "$output"; } > "$T/fm.conf"
	run mail-autoconfig -c "$T/fm.conf" --format srv
	assert_success
	# only the well-known URL on the domain: GMX; a DOMAIN alone leaves username open
	run mail-autoconfig "${R[@]}" --name gmx provider gmx.com
	assert_success
	assert_line "[account gmx]"
	assert_line "host = imap.gmx.com"
	assert_line "tls = imaps"
	assert_line "host = mail.gmx.com"
	assert_line --partial "# username"
	refute_line --partial "username = %"
	# nothing published: 69; a broken document: 65
	run mail-autoconfig "${R[@]}" provider nothing.example
	assert_failure 69
	echo '<clientConfig version="1.1"><emailProvider id="x"><incomingServer type="imap"><port>99999</port></incomingServer></emailProvider></clientConfig>' \
		> "$(mk_httpd_root autoconfig.messagingengine.com)/mail/config-v1.1.xml"
	run mail-autoconfig "${R[@]}" provider messagingengine.com
	assert_failure 65
	run mail-autoconfig "${R[@]}" --name 'a]b' provider gmx.com
	assert_failure 64
}

@test "provider: every ISPDB sample parses into config lines" {
	need_ispdb
	need_httpd
	hosts=()
	for f in "$ISPDB"/*.xml; do hosts+=("autoconfig.$(basename "$f" .xml)"); done
	mk_httpd_init "$T/httpd" "${hosts[@]}"
	for f in "$ISPDB"/*.xml; do
		d=$(basename "$f" .xml)
		mkdir -p "$(mk_httpd_root "autoconfig.$d")/mail"
		cp "$f" "$(mk_httpd_root "autoconfig.$d")/mail/config-v1.1.xml"
	done
	mk_httpd_start
	for f in "$ISPDB"/*.xml; do
		d=$(basename "$f" .xml)
		run mail-autoconfig --ca "$MK_HTTPD_CA" --connect-to "::127.0.0.1:$MK_HTTPD_PORT" \
			provider "user@$d"
		assert_success
		assert_line "username = user@$d"
		assert_line "port = 993"
		assert_line "[relay]"
		imap=$(xmllint --xpath 'string((//incomingServer[@type="imap"][socketType="SSL"])[1]/hostname)' "$f")
		assert_line "host = $imap"
	done
}

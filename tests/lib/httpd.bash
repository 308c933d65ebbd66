# A real web server for tests: lighttpd on 127.0.0.1 with TLS from a
# throwaway CA, one document root per host name (mod_simple_vhost), CGI
# for *.cgi.  Load with `load lib/httpd` after `load lib/common`.
#
#   mk_httpd_init DIR HOST...   CA + one certificate for every HOST (and
#                               127.0.0.1), empty roots DIR/vhosts/HOST/
#   mk_httpd_root HOST          the document root of HOST
#   mk_httpd_cgi HOST NAME CMD...  writes an executable NAME.cgi in HOST's
#                               root that execs CMD (arguments kept as given)
#   mk_httpd_conf LINES         appends lighttpd config (rewrites etc.)
#   mk_httpd_start              lighttpd -D on $MK_HTTPD_PORT, waits for it
#   mk_httpd_stop               stops it
#   mk_httpd_curl HOST PATH [CURL ARGS]  curl https://HOST/PATH through the
#                               fixture (certificate checked against the CA)
#
# Variables: MK_HTTPD_DIR, MK_HTTPD_PORT, MK_HTTPD_CA.
# Nothing listens anywhere but 127.0.0.1; host names never leave the
# machine: clients reach them with curl's --connect-to.

MK_LIGHTTPD=${MK_LIGHTTPD:-/usr/sbin/lighttpd}

mk_httpd_available() {
	[ -x "$MK_LIGHTTPD" ] &&
		{ [ -e /usr/lib/lighttpd/mod_openssl.so ] ||
		  ls /usr/lib/*/lighttpd/mod_openssl.so >/dev/null 2>&1; }
}

mk_httpd_tls() {   # dir host...
	local d=$1 san="" h
	shift
	mkdir -p "$d"
	for h in "$@"; do san="${san:+$san,}DNS:$h"; done
	san="$san,IP:127.0.0.1"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$d/ca.key" -out "$d/ca.pem" -days 2 -subj "/CN=mailkeep httpd test CA" \
		2>/dev/null || return 1
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$d/key.pem" -out "$d/server.csr" -subj "/CN=$1" 2>/dev/null || return 1
	printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
		"$san" > "$d/ext.cnf"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
		-CAcreateserial -days 2 -extfile "$d/ext.cnf" -out "$d/cert.pem" 2>/dev/null ||
		return 1
	cat "$d/cert.pem" "$d/ca.pem" > "$d/fullchain.pem"
	chmod 600 "$d/key.pem" "$d/ca.key"
}

mk_httpd_init() {   # dir host...
	MK_HTTPD_DIR=$1
	shift
	mkdir -p "$MK_HTTPD_DIR/vhosts/default"
	local h
	for h in "$@"; do mkdir -p "$MK_HTTPD_DIR/vhosts/$h"; done
	mk_httpd_tls "$MK_HTTPD_DIR/tls" "$@" || return 1
	MK_HTTPD_CA=$MK_HTTPD_DIR/tls/ca.pem
	: > "$MK_HTTPD_DIR/extra.conf"
	export MK_HTTPD_DIR MK_HTTPD_CA
}

mk_httpd_root() {   # host
	echo "$MK_HTTPD_DIR/vhosts/$1"
}

mk_httpd_cgi() {   # host name cmd...
	local f="$MK_HTTPD_DIR/vhosts/$1/$2.cgi" a
	shift 2
	{
		echo '#!/bin/sh'
		# lighttpd gives CGI programs a fresh environment: keep the sanitizer settings
		printf 'export ASAN_OPTIONS=%q UBSAN_OPTIONS=%q\n' "${ASAN_OPTIONS:-}" "${UBSAN_OPTIONS:-}"
		printf 'exec'
		for a in "$@"; do printf ' %q' "$a"; done
		printf ' 2>>%q\n' "$MK_HTTPD_DIR/cgi.log"
	} > "$f"
	chmod 755 "$f"
}

mk_httpd_conf() {   # lines
	printf '%s\n' "$1" >> "$MK_HTTPD_DIR/extra.conf"
}

mk_httpd_start() {
	MK_HTTPD_PORT=$(mk_free_port)
	cat > "$MK_HTTPD_DIR/lighttpd.conf" <<CONF
server.modules = ( "mod_openssl", "mod_rewrite", "mod_simple_vhost", "mod_cgi", "mod_accesslog" )
server.bind = "127.0.0.1"
server.port = $MK_HTTPD_PORT
server.document-root = "$MK_HTTPD_DIR/vhosts/default"
server.errorlog = "$MK_HTTPD_DIR/error.log"
accesslog.filename = "$MK_HTTPD_DIR/access.log"
server.pid-file = "$MK_HTTPD_DIR/lighttpd.pid"
simple-vhost.server-root = "$MK_HTTPD_DIR/vhosts/"
simple-vhost.default-host = "default"
simple-vhost.document-root = "/"
# tests rewrite served files between requests: no cached stat or fd
server.stat-cache-engine = "disable"
index-file.names = ( "index.html" )
mimetype.assign = ( ".xml" => "application/xml", ".html" => "text/html; charset=utf-8" )
cgi.assign = ( ".cgi" => "" )
ssl.engine = "enable"
ssl.pemfile = "$MK_HTTPD_DIR/tls/fullchain.pem"
ssl.privkey = "$MK_HTTPD_DIR/tls/key.pem"
include "$MK_HTTPD_DIR/extra.conf"
CONF
	"$MK_LIGHTTPD" -tt -f "$MK_HTTPD_DIR/lighttpd.conf" >> "$MK_HTTPD_DIR/error.log" 2>&1 ||
		{ cat "$MK_HTTPD_DIR/error.log" >&2; return 1; }
	"$MK_LIGHTTPD" -D -f "$MK_HTTPD_DIR/lighttpd.conf" >> "$MK_HTTPD_DIR/error.log" 2>&1 &
	echo $! > "$MK_HTTPD_DIR/pid"
	export MK_HTTPD_PORT
	mk_wait_port "$MK_HTTPD_PORT"
}

mk_httpd_stop() {
	[ -n "${MK_HTTPD_DIR:-}" ] && [ -f "$MK_HTTPD_DIR/pid" ] || return 0
	local p
	p=$(cat "$MK_HTTPD_DIR/pid")
	kill "$p" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	rm -f "$MK_HTTPD_DIR/pid"
}

mk_httpd_curl() {   # host path [curl args]
	local host=$1 path=$2
	shift 2
	curl -sS --cacert "$MK_HTTPD_CA" --connect-to "$host:443:127.0.0.1:$MK_HTTPD_PORT" \
		"$@" "https://$host$path"
}

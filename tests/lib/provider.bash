# A real dovecot acting as the mail provider for mail-pull tests, with TLS:
# IMAPS and IMAP+STARTTLS on 127.0.0.1 high ports, certificate for
# "localhost" signed by a throwaway CA made here with openssl.  Built on
# tests/lib/dovecot.bash's config (mail as Maildir ~/mail, LAYOUT=fs, run
# as $MK_TEST_USER); that file is loaded first.
#
#   load lib/common
#   load lib/dovecot
#   load lib/provider
#   mk_provider_init "$dir"        # CA, cert, dovecot.conf with TLS
#   mk_dovecot_add_user alice secret "$home"
#   mk_dovecot_start               # as usual
#   ... MK_PROVIDER_IMAPS_PORT, MK_PROVIDER_PLAIN_PORT, MK_PROVIDER_CA
#   mk_provider_other_ca "$dir"    # a second CA that did not sign the cert
#   mk_provider_imap alice secret 'print(c.list())'   # python imaplib helper

mk_provider_make_ca() {   # dir name -> dir/name.pem dir/name.key
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mailkeep test $2" \
		-keyout "$1/$2.key" -out "$1/$2.pem" >/dev/null 2>&1
}

mk_provider_init() {   # dir
	local d=$1
	mk_dovecot_init "$d"
	mkdir -p "$d/tls"
	mk_provider_make_ca "$d/tls" ca
	openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
		-keyout "$d/tls/server.key" -out "$d/tls/server.csr" >/dev/null 2>&1
	printf 'subjectAltName=DNS:localhost\n' > "$d/tls/ext.cnf"
	openssl x509 -req -in "$d/tls/server.csr" -CA "$d/tls/ca.pem" -CAkey "$d/tls/ca.key" \
		-CAcreateserial -days 2 -extfile "$d/tls/ext.cnf" -out "$d/tls/server.pem" \
		>/dev/null 2>&1
	chmod 644 "$d/tls/server.pem" "$d/tls/ca.pem"
	chmod 600 "$d/tls/server.key"
	MK_PROVIDER_CA=$d/tls/ca.pem
	MK_PROVIDER_PLAIN_PORT=$MK_DOVECOT_PORT
	MK_PROVIDER_IMAPS_PORT=$(mk_free_port)
	# dovecot.bash writes ssl = no and a disabled imaps listener: turn both on
	sed -i -e 's/^ssl = no$/ssl = yes/' \
		-e '/inet_listener imaps {/,/}/ s/port = 0/port = '"$MK_PROVIDER_IMAPS_PORT"'\n    address = 127.0.0.1/' \
		"$MK_DOVECOT_CONF"
	cat >> "$MK_DOVECOT_CONF" <<EOF
ssl_cert = <$d/tls/server.pem
ssl_key = <$d/tls/server.key
ssl_min_protocol = TLSv1.2
mail_plugins = \$mail_plugins
protocol imap {
  imap_capability = +
}
EOF
	export MK_PROVIDER_CA MK_PROVIDER_PLAIN_PORT MK_PROVIDER_IMAPS_PORT
}

mk_provider_other_ca() {   # dir -> prints the path of a CA that did not sign
	mk_provider_make_ca "$1" other
	echo "$1/other.pem"
}

# Runs python code with `c` an imaplib.IMAP4_SSL logged in as USER.
mk_provider_imap() {   # user password code
	"$MK_PY" - "$1" "$2" "$MK_PROVIDER_IMAPS_PORT" "$MK_PROVIDER_CA" "$3" <<'EOF'
import imaplib, ssl, sys
user, pw, port, ca, code = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
c = imaplib.IMAP4_SSL("localhost", int(port), ssl_context=ctx)
c.login(user, pw)
exec(code)
c.logout()
EOF
}

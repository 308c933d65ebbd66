# A throwaway OpenLDAP slapd shaped like lldap, for tests: load with
# `load lib/slapd` after `load lib/common`.
#
#   mk_slapd_start DIR     creates DIR/{slapd.conf,db,tls}, starts slapd on
#                          ldap://127.0.0.1:$MK_SLAPD_PORT and
#                          ldaps://127.0.0.1:$MK_SLAPD_TLS_PORT, loads the tree
#   mk_slapd_stop          stops it (the database stays in DIR)
#   mk_slapd_run           starts it again on the same ports and data
#
# The tree is lldap's: dc=example,dc=com with ou=people (inetOrgPerson: uid,
# mail, cn, userPassword) and ou=groups (groupOfUniqueNames/uniqueMember), and
# the memberof overlay keeping people's memberOf up to date.  People:
#   uid=admin    the bind account: reads everything
#   uid=alice    alice@example.com, in mail_user
#   uid=charlie  charlie@example.com, only in other_group
#   uid=bob      bob@example.com, in mail_user and other_group
# Ordinary users see only their own entry; anonymous binds are refused.
# TLS: $MK_SLAPD_CA signs the server certificate (CN and subjectAltName
# localhost / 127.0.0.1); $MK_SLAPD_OTHER_CA is an unrelated CA.

MK_SLAPD_BASE="dc=example,dc=com"
MK_SLAPD_ADMIN_PW="admin-Secret-9f2"
MK_SLAPD_ALICE_PW="alice-Pass-3c7"
MK_SLAPD_CHARLIE_PW="charlie-Pass-8e1"
MK_SLAPD_BOB_PW="bob-Pass-5a0"
MK_SLAPD_ROOT_PW="root-Secret-77b"

# Writes a CA and a server certificate for localhost/127.0.0.1 into $1.
mk_slapd_make_tls() {   # dir
	local d=$1
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$d/ca.key" -out "$d/ca.pem" -days 2 -subj "/CN=mailkeep test CA" \
		2>/dev/null || return 1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$d/other-ca.key" -out "$d/other-ca.pem" -days 2 \
		-subj "/CN=mailkeep unrelated CA" 2>/dev/null || return 1
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=localhost" \
		2>/dev/null || return 1
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' \
		> "$d/ext.cnf"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
		-CAcreateserial -days 2 -extfile "$d/ext.cnf" -out "$d/server.pem" \
		2>/dev/null || return 1
	chmod 600 "$d"/*.key
}

mk_slapd_start() {   # dir
	MK_SLAPD_DIR=$1
	mkdir -p "$MK_SLAPD_DIR/db"
	MK_SLAPD_PORT=$(mk_free_port)
	MK_SLAPD_TLS_PORT=$(mk_free_port)
	while [ "$MK_SLAPD_TLS_PORT" = "$MK_SLAPD_PORT" ]; do
		MK_SLAPD_TLS_PORT=$(mk_free_port)
	done
	MK_SLAPD_URI="ldap://127.0.0.1:$MK_SLAPD_PORT"
	MK_SLAPD_TLS_URI="ldaps://127.0.0.1:$MK_SLAPD_TLS_PORT"
	MK_SLAPD_CA="$MK_SLAPD_DIR/tls/ca.pem"
	MK_SLAPD_OTHER_CA="$MK_SLAPD_DIR/tls/other-ca.pem"
	mk_slapd_make_tls "$MK_SLAPD_DIR/tls" || { echo "slapd: cannot make certificates" >&2; return 1; }
	local b=$MK_SLAPD_BASE admin="uid=admin,ou=people,$MK_SLAPD_BASE"
	cat > "$MK_SLAPD_DIR/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile $MK_SLAPD_DIR/slapd.pid
argsfile $MK_SLAPD_DIR/slapd.args
TLSCACertificateFile $MK_SLAPD_DIR/tls/ca.pem
TLSCertificateFile $MK_SLAPD_DIR/tls/server.pem
TLSCertificateKeyFile $MK_SLAPD_DIR/tls/server.key
disallow bind_anon
require authc

database mdb
suffix "$b"
rootdn "cn=root,$b"
rootpw $MK_SLAPD_ROOT_PW
directory $MK_SLAPD_DIR/db
maxsize 10485760
overlay memberof
memberof-group-oc groupOfUniqueNames
memberof-member-ad uniqueMember
memberof-memberof-ad memberOf
memberof-refint true
access to attrs=userPassword
	by dn.exact="$admin" read
	by self write
	by anonymous auth
	by * none
access to *
	by dn.exact="$admin" read
	by self read
	by * none
EOF
	mk_slapd_run || return 1
	mk_slapd_load
}

# Starts slapd on the existing MK_SLAPD_DIR and ports, waits for both ports.
mk_slapd_run() {
	/usr/sbin/slapd -f "$MK_SLAPD_DIR/slapd.conf" \
		-h "$MK_SLAPD_URI/ $MK_SLAPD_TLS_URI/" 2> "$MK_SLAPD_DIR/slapd.log" || {
		cat "$MK_SLAPD_DIR/slapd.log" >&2; return 1; }
	mk_wait_port "$MK_SLAPD_PORT" 10 && mk_wait_port "$MK_SLAPD_TLS_PORT" 10
}

mk_slapd_stop() {
	local pid tries=100
	[ -n "${MK_SLAPD_DIR:-}" ] && [ -f "$MK_SLAPD_DIR/slapd.pid" ] || return 0
	pid=$(cat "$MK_SLAPD_DIR/slapd.pid")
	kill "$pid" 2>/dev/null || return 0
	while kill -0 "$pid" 2>/dev/null && [ $tries -gt 0 ]; do
		sleep 0.05
		tries=$((tries - 1))
	done
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$MK_SLAPD_DIR/slapd.pid"
}

# ldapadd as the rootdn: entries through slapd so the memberof overlay sees them.
mk_slapd_add() {
	ldapadd -x -H "$MK_SLAPD_URI" -D "cn=root,$MK_SLAPD_BASE" -w "$MK_SLAPD_ROOT_PW" \
		> /dev/null
}

mk_slapd_person() {   # uid password
	local b=$MK_SLAPD_BASE
	printf 'dn: uid=%s,ou=people,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nmail: %s@example.com\nuserPassword: %s\n\n' \
		"$1" "$b" "$1" "$1" "$1" "$1" "$(slappasswd -s "$2")"
}

mk_slapd_load() {
	local b=$MK_SLAPD_BASE p=",ou=people,$MK_SLAPD_BASE"
	{
		printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: example\n\n' "$b"
		printf 'dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n\n' "$b"
		printf 'dn: ou=groups,%s\nobjectClass: organizationalUnit\nou: groups\n\n' "$b"
		mk_slapd_person admin "$MK_SLAPD_ADMIN_PW"
		mk_slapd_person alice "$MK_SLAPD_ALICE_PW"
		mk_slapd_person charlie "$MK_SLAPD_CHARLIE_PW"
		mk_slapd_person bob "$MK_SLAPD_BOB_PW"
		printf 'dn: cn=mail_user,ou=groups,%s\nobjectClass: groupOfUniqueNames\ncn: mail_user\nuniqueMember: uid=alice%s\nuniqueMember: uid=bob%s\n\n' "$b" "$p" "$p"
		printf 'dn: cn=other_group,ou=groups,%s\nobjectClass: groupOfUniqueNames\ncn: other_group\nuniqueMember: uid=charlie%s\nuniqueMember: uid=bob%s\n\n' "$b" "$p" "$p"
	} | mk_slapd_add
}

# Switches an imapd/smtpd fixture config from its [users] passwd file to this
# slapd: writes the admin password file DIR/ldap-admin and an [ldap] section
# with the given search TIMEOUT (seconds, default 2).
mk_slapd_use_in_conf() {   # conf dir [timeout]
	mk_secret "$2/ldap-admin" "$MK_SLAPD_ADMIN_PW"
	sed -i '/^\[users\]/,/^account = test/d' "$1"
	cat >> "$1" <<CONF
[ldap]
host = 127.0.0.1
port = $MK_SLAPD_PORT
dc_domain = $MK_SLAPD_BASE
admin_name = admin
admin_password_file = $2/ldap-admin
account = test
user_group = mail_user
timeout = ${3:-2}
CONF
}

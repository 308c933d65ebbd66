# Our IMAP server for tests: load with `load lib/imapd` after `load lib/common`.
#
#   mk_imapd_init DIR          config, TLS (throwaway CA + cert for
#                              imap.example.com / 127.0.0.1), passwd file with
#                              alice@example.com / $MK_IMAPD_PW, dirs owned by mktest
#   mk_imapd_start [ARGS...]   mail-serve-imap --listen on $MK_IMAPD_PORT
#                              (--allow-plaintext unless ARGS say otherwise)
#   mk_imapd_stop              stops every server started here
#   mk_imapd_home USER         the user's home directory
#   mk_imap_py SCRIPT          runs Debian's python3 with HOST/PORT/USER/PW set
#
# Variables: MK_IMAPD_DIR, MK_IMAPD_CONF, MK_IMAPD_PORT, MK_IMAPD_CA, MK_IMAPD_PW.

MK_IMAPD_PW="alice-Imap-4d2"

mk_imapd_tls() {   # dir
	local d=$1
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$d/ca.key" -out "$d/ca.pem" -days 2 -subj "/CN=mailkeep imap test CA" \
		2>/dev/null || return 1
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$d/key.pem" -out "$d/server.csr" -subj "/CN=imap.example.com" \
		2>/dev/null || return 1
	printf 'subjectAltName=DNS:imap.example.com,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' \
		> "$d/ext.cnf"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
		-CAcreateserial -days 2 -extfile "$d/ext.cnf" -out "$d/cert.pem" 2>/dev/null || return 1
	cat "$d/cert.pem" "$d/ca.pem" > "$d/fullchain.pem"
	chmod 600 "$d/key.pem" "$d/ca.key"
}

mk_imapd_init() {   # dir
	MK_IMAPD_DIR=$1
	mk_ensure_test_user
	mk_traversable "$MK_IMAPD_DIR"
	mkdir -p "$MK_IMAPD_DIR/mail" "$MK_IMAPD_DIR/state"
	mk_imapd_tls "$MK_IMAPD_DIR/tls"
	MK_IMAPD_CA=$MK_IMAPD_DIR/tls/ca.pem
	printf 'alice@example.com:%s\n' "$(openssl passwd -6 "$MK_IMAPD_PW")" > "$MK_IMAPD_DIR/passwd"
	printf 'bob@example.com:%s\n' "$(openssl passwd -6 "$MK_IMAPD_PW")" >> "$MK_IMAPD_DIR/passwd"
	chmod 644 "$MK_IMAPD_DIR/passwd"
	MK_IMAPD_CONF=$MK_IMAPD_DIR/mailkeep.conf
	cat > "$MK_IMAPD_CONF" <<CONF
domain = example.com
tls_cert = $MK_IMAPD_DIR/tls/fullchain.pem
tls_key = $MK_IMAPD_DIR/tls/key.pem
mail_dir = $MK_IMAPD_DIR/mail
state_dir = $MK_IMAPD_DIR/state
vmail_user = $MK_TEST_USER

[users]
passwd_file = $MK_IMAPD_DIR/passwd
account = test

[mailbox Sent]
special_use = \\Sent
[mailbox Junk]
special_use = \\Junk
[mailbox Trash]
special_use = \\Trash
[mailbox Drafts]
special_use = \\Drafts
[mailbox Archive]
special_use = \\Archive
auto = create
CONF
	chown -R "$MK_TEST_USER" "$MK_IMAPD_DIR/mail" "$MK_IMAPD_DIR/state"
	export MK_IMAPD_DIR MK_IMAPD_CONF MK_IMAPD_CA
}

mk_imapd_home() {   # user
	echo "$MK_IMAPD_DIR/mail/test/$1"
}

mk_imapd_start() {   # extra args (default --allow-plaintext)
	MK_IMAPD_PORT=$(mk_free_port)
	local args=("$@")
	[ ${#args[@]} -gt 0 ] || args=(--allow-plaintext)
	mail-serve-imap -c "$MK_IMAPD_CONF" --listen "127.0.0.1:$MK_IMAPD_PORT" "${args[@]}" \
		2>> "$MK_IMAPD_DIR/imapd.log" &
	echo $! >> "$MK_IMAPD_DIR/pids"
	export MK_IMAPD_PORT
	mk_wait_port "$MK_IMAPD_PORT"
}

mk_imapd_stop() {
	[ -n "${MK_IMAPD_DIR:-}" ] && [ -f "$MK_IMAPD_DIR/pids" ] || return 0
	local p
	# a pid that is gone already must not stop the rest (callers run set -e)
	while read -r p; do
		kill "$p" 2>/dev/null || true
	done < "$MK_IMAPD_DIR/pids"
	while read -r p; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	done < "$MK_IMAPD_DIR/pids"
	rm -f "$MK_IMAPD_DIR/pids"
}

# Runs a python3 imaplib script (on stdin) with HOST, PORT, USER, PW, CA in
# its environment; helpers: connect(), login().
mk_imap_py() {
	HOST=127.0.0.1 PORT=$MK_IMAPD_PORT USER=alice@example.com PW=$MK_IMAPD_PW \
		CA=$MK_IMAPD_CA "$MK_PY" -c "
import imaplib, os, sys, time, ssl, socket
HOST=os.environ['HOST']; PORT=int(os.environ['PORT']); USER=os.environ['USER']; PW=os.environ['PW']
def connect(port=None):
    return imaplib.IMAP4(HOST, port or PORT)
def login(user=None):
    m = connect(); m.login(user or USER, PW); return m
def check(cond, what):
    if not cond:
        print('FAILED:', what); sys.exit(1)
$(cat)
"
}

# A real dovecot (Debian dovecot-imapd 2.3) for tests: IMAP on 127.0.0.1
# at a free high port, all state under one temp directory, users from a
# passwd-file, mail as Maildir ~/mail with LAYOUT=fs (DESIGN.md §4), run
# as the non-root $MK_TEST_USER (dovecot refuses uid 0 for mail).
#
#   load lib/common
#   load lib/dovecot
#   mk_dovecot_init "$dir"                  # writes the config, no server yet
#   mk_dovecot_add_user alice secret "$home" # before or after start
#   mk_dovecot_start                        # sets MK_DOVECOT_PORT
#   mk_doveadm mailbox list -u alice        # doveadm against this instance
#   mk_dovecot_stop                         # also call it from teardown
#
# Variables: MK_DOVECOT_DIR, MK_DOVECOT_CONF, MK_DOVECOT_PORT,
# MK_DOVECOT_PASSWD, MK_DOVECOT_LOG.  Files dovecot must write (homes) are
# chown'ed to $MK_TEST_USER by mk_dovecot_own.

mk_dovecot_init() {   # dir
	MK_DOVECOT_DIR=$1
	mkdir -p "$MK_DOVECOT_DIR/run" "$MK_DOVECOT_DIR/state"
	mk_ensure_test_user
	MK_DOVECOT_CONF=$MK_DOVECOT_DIR/dovecot.conf
	MK_DOVECOT_PASSWD=$MK_DOVECOT_DIR/passwd
	MK_DOVECOT_LOG=$MK_DOVECOT_DIR/dovecot.log
	MK_DOVECOT_PORT=${MK_DOVECOT_PORT:-$(mk_free_port)}
	: > "$MK_DOVECOT_PASSWD"
	chmod 644 "$MK_DOVECOT_PASSWD"
	local uid gid
	uid=$(id -u "$MK_TEST_USER")
	gid=$(id -g "$MK_TEST_USER")
	cat > "$MK_DOVECOT_CONF" <<EOF
base_dir = $MK_DOVECOT_DIR/run
state_dir = $MK_DOVECOT_DIR/state
instance_name = mk-dovecot-$MK_DOVECOT_PORT
log_path = $MK_DOVECOT_LOG
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = $uid
last_valid_uid = $uid
first_valid_gid = $gid
mail_location = maildir:~/mail:LAYOUT=fs
mail_uid = $uid
mail_gid = $gid
namespace inbox {
  inbox = yes
  separator = /
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $MK_DOVECOT_PASSWD
}
userdb {
  driver = passwd-file
  args = username_format=%u $MK_DOVECOT_PASSWD
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $MK_DOVECOT_PORT
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
EOF
	export MK_DOVECOT_DIR MK_DOVECOT_CONF MK_DOVECOT_PASSWD MK_DOVECOT_LOG MK_DOVECOT_PORT
}

# Adds USER with PASSWORD (plain) whose home is HOME (mail in HOME/mail).
mk_dovecot_add_user() {   # user password home
	local uid gid
	uid=$(id -u "$MK_TEST_USER")
	gid=$(id -g "$MK_TEST_USER")
	mkdir -p "$3"
	printf '%s:{PLAIN}%s:%s:%s::%s::\n' "$1" "$2" "$uid" "$gid" "$3" >> "$MK_DOVECOT_PASSWD"
	mk_dovecot_own "$3"
}

# Gives a tree to the mail user, so that dovecot may write where we wrote.
mk_dovecot_own() {   # path...
	chown -R "$MK_TEST_USER:$MK_TEST_USER" "$@"
}

mk_dovecot_start() {
	# The master must not keep our stdout/stderr (or bats' fd 3) open, or
	# whoever reads them waits for it to exit.
	dovecot -c "$MK_DOVECOT_CONF" </dev/null >/dev/null 2>&1 3>&- ||
		{ cat "$MK_DOVECOT_LOG" >&2; return 1; }
	mk_wait_port "$MK_DOVECOT_PORT" 10 || { cat "$MK_DOVECOT_LOG" >&2; return 1; }
}

mk_dovecot_stop() {
	[ -n "${MK_DOVECOT_CONF:-}" ] && [ -e "$MK_DOVECOT_DIR/run/master.pid" ] || return 0
	local pid
	pid=$(cat "$MK_DOVECOT_DIR/run/master.pid" 2>/dev/null) || return 0
	doveadm -c "$MK_DOVECOT_CONF" stop 2>/dev/null || kill "$pid" 2>/dev/null
	local i
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null
	return 0
}

# doveadm against this instance (needs it started: userdb lookups go
# through its auth socket).
mk_doveadm() {
	doveadm -c "$MK_DOVECOT_CONF" "$@"
}

# The dovecot log, for failure messages.
mk_dovecot_log() {
	cat "$MK_DOVECOT_LOG" 2>/dev/null
}

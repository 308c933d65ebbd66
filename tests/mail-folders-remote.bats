#!/usr/bin/env bats
# mail-folders remote -a ACCOUNT: the provider's folder list with its
# special-use flags and the local name mail-pull will use (replaces the
# module's "openssl s_client ... LIST" debug recipe).

load lib/common
load lib/dovecot
load lib/provider

setup() {
	load_bats_libs
	T=$(mktemp -d /tmp/mk-remote.XXXXXX)
	chmod 755 "$T"
	mk_provider_init "$T/dc"
	mk_dovecot_add_user alice secret "$T/alice"
	mk_dovecot_start
	mk_secret "$T/pw" secret
	mk_provider_imap alice secret 'c.create("Spam"); c.create("\"Sent Items\""); c.create("Work/Projects")'
}

teardown() {
	mk_dovecot_stop
	rm -rf "$T"
}

conf() {   # extra lines for [account prov]
	cat > "$T/mk.conf" <<EOF
mail_dir = $T/mail
state_dir = $T/state
[account prov]
host = localhost
port = $MK_PROVIDER_IMAPS_PORT
username = alice
password_file = $T/pw
ca_file = $MK_PROVIDER_CA
timeout = 10
$1
EOF
}

@test "remote: provider folders with the local names, detected from common names" {
	conf ""
	run mail-folders -c "$T/mk.conf" remote -a prov
	assert_success
	assert_line --regexp $'^Spam\t[^\t]*\tJunk\t'
	assert_line --regexp $'^Sent Items\t[^\t]*\tSent\t'
	assert_line --regexp $'^Work/Projects\t[^\t]*\tWork/Projects\t'
	assert_line --regexp $'^INBOX\t'
	# nothing was created locally: remote only looks
	[ ! -d "$T/mail/prov" ]
}

@test "remote: a map_* key wins over detection" {
	conf "map_junk = Work/Projects"
	run mail-folders -c "$T/mk.conf" remote -a prov
	assert_success
	assert_line --regexp $'^Work/Projects\t[^\t]*\tJunk\tconfig'
}

@test "remote: unknown account, wrong password, provider down" {
	conf ""
	run mail-folders -c "$T/mk.conf" remote -a nope
	assert_equal "$status" 78
	run mail-folders -c "$T/mk.conf" remote
	assert_equal "$status" 64
	mk_secret "$T/pw" wrong
	run mail-folders -c "$T/mk.conf" remote -a prov
	assert_equal "$status" 77
	mk_secret "$T/pw" secret
	mk_dovecot_stop
	run mail-folders -c "$T/mk.conf" remote -a prov
	assert_equal "$status" 69
}

#!/usr/bin/env bats
# mail-folders and the Maildir store against a real dovecot on the same
# tree: what we write dovecot reads (folders, counts, UIDs), what dovecot
# writes we read, both writing at once loses nothing, bad input changes
# nothing.  Messages are written with the test_maildir helper (unit-test
# binary in helper mode): mail-folders has no delivery command on purpose.

load lib/common
load lib/dovecot

HELPER="$MK_BUILD/tests/test_maildir"

setup() {
	load_bats_libs
	# dovecot's processes must reach the tree: not under bats' 0700 dirs
	T=$(mktemp -d /tmp/mk-folders.XXXXXX)
	chmod 755 "$T"
	H=$T/home/alice
	M=$H/mail
	mkdir -p "$H"
}

teardown() {
	mk_dovecot_stop
	rm -rf "$T"
}

start_dovecot() {
	mk_dovecot_init "$T/dovecot"
	mk_dovecot_add_user alice secret "$H"
	mk_dovecot_start
}

# Checksum of names, sizes and contents of a tree.
tree_sum() {
	(cd "$1" && find . -printf '%p %s %m\n' | sort && find . -type f -exec md5sum {} + | sort) | md5sum
}

# "messages uidnext uidvalidity" of FOLDER as doveadm sees it.
dove_status() {
	mk_doveadm -f flow mailbox status -u alice "messages uidnext uidvalidity" "$1" |
		sed 's/^.* messages=/messages=/'
}

# The same three from mail-folders status.
our_status() {
	mail-folders -d "$H" status "$1" | awk -F'\t' '{ printf "messages=%s uidnext=%s uidvalidity=%s\n", $2, $5, $6 }'
}

@test "usage, version, help; remote needs an [account] from the config" {
	run mail-folders --version
	assert_success
	assert_output --partial "mail-folders"
	run mail-folders --help
	assert_success
	assert_output --partial "status"
	run mail-folders
	assert_failure 64
	run mail-folders -d "$H" frobnicate
	assert_failure 64
	run mail-folders -c /nonexistent/mailkeep.conf remote -a fastmail
	assert_failure 78
	run mail-folders remote
	assert_failure 64
	run mail-folders list
	assert_failure 64
}

@test "create, list, status, rename, delete with -d HOME" {
	run mail-folders -d "$H" create INBOX
	assert_success
	run mail-folders -d "$H" create "Archive/2024"
	assert_success
	run mail-folders -d "$H" create "Entwürfe"
	assert_success
	[ -d "$M/Entw&APw-rfe/cur" ]
	run mail-folders -d "$H" list
	assert_success
	assert_line --index 0 --partial "INBOX"
	assert_line $'Archive\t\\Noselect \\HasChildren'
	assert_line $'Archive/2024\t\\HasNoChildren'
	assert_line --partial "Entwürfe"
	"$HELPER" deliver "$M/Archive/2024" 3 assign
	run mail-folders -d "$H" status "Archive/2024"
	assert_success
	IFS=$'\t' read -r name messages unseen recent uidnext uidvalidity size <<< "$output"
	[ "$name" = "Archive/2024" ] && [ "$messages" = 3 ] && [ "$unseen" = 3 ] &&
		[ "$recent" = 3 ] && [ "$uidnext" = 4 ] && [ "$uidvalidity" -gt 0 ] && [ "$size" -gt 0 ]
	run mail-folders -d "$H" status --json "Archive/2024"
	assert_success
	echo "$output" | "$MK_PY" -c 'import json,sys; d=json.load(sys.stdin); assert d[0]["messages"]==3 and d[0]["uidnext"]==4'
	run mail-folders -d "$H" rename Archive Old
	assert_success
	[ -d "$M/Old/2024/cur" ] && [ ! -e "$M/Archive" ]
	run mail-folders -d "$H" status "Old/2024"
	assert_output --partial $'\t3\t3\t3\t4\t'"$uidvalidity"
	run mail-folders -d "$H" delete Old
	assert_failure 73
	assert_output --partial "children"
	run mail-folders -d "$H" delete Old/2024
	assert_success
	run mail-folders -d "$H" delete INBOX
	assert_failure 73
	run mail-folders -d "$H" status Nope
	assert_failure
}

@test "ensure and dirs from the config, -u USER" {
	mk_secret "$T/passwd" "alice:{PLAIN}x"
	cat > "$T/mailkeep.conf" <<EOF
mail_dir = $T/vmail
state_dir = $T/state
[users]
passwd_file = $T/passwd
account = acct
[mailbox Junk]
special_use = \\Junk
auto = subscribe
[mailbox Archive]
special_use = \\Archive
auto = create
[mailbox Nope]
auto = no
EOF
	run mail-folders -c "$T/mailkeep.conf" -u alice ensure
	assert_success
	[ -d "$T/vmail/acct/alice/mail/Junk/cur" ] && [ -d "$T/vmail/acct/alice/mail/Archive/cur" ]
	[ ! -e "$T/vmail/acct/alice/mail/Nope" ]
	run mail-folders -c "$T/mailkeep.conf" -u alice list
	assert_line $'Junk\t\\HasNoChildren \\Subscribed'
	assert_line $'Archive\t\\HasNoChildren'
	run mail-folders -c "$T/mailkeep.conf" -u alice ensure	# idempotent
	assert_success
	run mail-folders -c "$T/mailkeep.conf" dirs
	assert_success
	assert_output "$T/vmail
$T/state"
	run mail-folders -c "$T/mailkeep.conf" -u ../etc list
	assert_failure 64
	run mail-folders -c "$T/nonexistent.conf" -u alice list
	assert_failure 78
}

@test "dovecot sees exactly our folders, counts and UIDs" {
	for f in INBOX Junk A/B "Entwürfe"; do mail-folders -d "$H" create "$f"; done
	"$HELPER" deliver "$M" 5 assign
	"$HELPER" deliver "$M/A/B" 3		# no UIDs yet: status numbers them
	"$HELPER" deliver "$M/Junk" 2 assign
	mail-folders -d "$H" status > "$T/ours"
	mk_dovecot_own "$H"
	start_dovecot
	diff <(mk_doveadm mailbox list -u alice | sort) <(mail-folders -d "$H" list | cut -f1 | sort)
	for f in INBOX Junk A/B "Entwürfe"; do
		echo "# $f: dovecot $(dove_status "$f") ours $(our_status "$f")"
		[ "$(dove_status "$f")" = "$(our_status "$f")" ]
	done
	# dovecot's UID of each file is ours
	run mk_doveadm -f tab fetch -u alice "uid" mailbox A/B all
	assert_output "uid
1
2
3"
}

@test "our status agrees with what dovecot wrote (doveadm save, IMAP APPEND)" {
	start_dovecot
	mk_doveadm mailbox create -u alice Work "Work/Sub"
	for i in 1 2 3; do printf 'Subject: %s\n\nx\n' "$i" | mk_doveadm save -u alice -m Work; done
	printf 'Subject: in\n\nx\n' | mk_doveadm save -u alice
	printf 'Subject: curl\r\n\r\nappended\r\n' > "$T/msg"
	curl -s --url "imap://127.0.0.1:$MK_DOVECOT_PORT/Work/Sub" -u alice:secret -T "$T/msg"
	mk_doveadm flags add -u alice '\Seen' mailbox Work uid 2
	diff <(mk_doveadm mailbox list -u alice | sort) <(mail-folders -d "$H" list | cut -f1 | sort)
	for f in INBOX Work Work/Sub; do
		echo "# $f: dovecot $(dove_status "$f") ours $(our_status "$f")"
		[ "$(dove_status "$f")" = "$(our_status "$f")" ]
	done
	run mail-folders -d "$H" status Work
	assert_output --regexp $'^Work\t3\t2\t'
	# and dovecot still agrees after our status ran (we numbered nothing new)
	[ "$(dove_status Work)" = "$(our_status Work)" ]
}

@test "our writer and dovecot write the same folder at once: no loss, no UID twice" {
	mail-folders -d "$H" create Shared
	mk_dovecot_own "$H"
	start_dovecot
	setpriv --reuid="$MK_TEST_USER" --regid="$MK_TEST_USER" --clear-groups \
		"$HELPER" deliver "$M/Shared" 200 assign &
	ours=$!
	setpriv --reuid="$MK_TEST_USER" --regid="$MK_TEST_USER" --clear-groups \
		"$HELPER" flagger "$M/Shared" 3 &
	flagger=$!
	for i in $(seq 60); do
		printf 'Subject: dovecot %s\n\nx\n' "$i" | mk_doveadm save -u alice -m Shared
	done
	wait "$ours"
	wait "$flagger"
	[ "$(find "$M/Shared/cur" "$M/Shared/new" -type f | wc -l)" -eq 260 ]
	run mail-folders -d "$H" status Shared
	assert_output --regexp $'^Shared\t260\t'
	[ "$(dove_status Shared)" = "$(our_status Shared)" ]
	# every record of the uidlist has its own UID and file
	[ "$(tail -n +2 "$M/Shared/dovecot-uidlist" | cut -d' ' -f1 | sort -u | wc -l)" -eq 260 ]
	run mk_doveadm -f tab fetch -u alice "uid" mailbox Shared all
	[ "$(echo "$output" | tail -n +2 | sort -u | wc -l)" -eq 260 ]
}

@test "bad input: garbage or truncated uidlist, ../ names: clear error, tree unchanged" {
	mail-folders -d "$H" create Box
	"$HELPER" deliver "$M/Box" 2
	printf '3 V1234 N3\n1 :a\n2 :tru' > "$M/Box/dovecot-uidlist"
	before=$(tree_sum "$M")
	run mail-folders -d "$H" status Box
	assert_failure 65
	assert_output --partial "dovecot-uidlist: line 3"
	assert_output --partial "truncated"
	[ "$(tree_sum "$M")" = "$before" ]

	head -c 300 /dev/urandom > "$M/Box/dovecot-uidlist"
	before=$(tree_sum "$M")
	run mail-folders -d "$H" status Box
	assert_failure 65
	assert_output --partial "dovecot-uidlist: line"
	[ "$(tree_sum "$M")" = "$before" ]

	for bad in "../escape" "a/../../b" "/abs" "a//b" "cur" "x/tmp" ".hidden" "~x" $'a\tb'; do
		run mail-folders -d "$H" create "$bad"
		assert_failure 65
		assert_output --partial "mailbox name"
		run mail-folders -d "$H" rename Box "$bad"
		assert_failure 65
	done
	[ "$(tree_sum "$M")" = "$before" ]
	[ ! -e "$H/escape" ] && [ ! -e "$T/home/b" ]
}

# "uid base" of every record of DIR's uidlist, sorted by UID.
uid_bases() {
	tail -n +2 "$1/dovecot-uidlist" | sed -E 's/^([0-9]+) [^:]*:([^:]*).*$/\1 \2/' | sort -n
}

@test "kill -9 during deliveries and syncs: every file gets a UID, none reused, no partial file" {
	mail-folders -d "$H" create Crash
	D=$M/Crash
	: > "$T/seen"
	for round in $(seq 1 12); do
		mode=assign
		[ $((round % 3)) -eq 0 ] && mode=""	# these leave the numbering to a sync
		"$HELPER" deliver "$D" 400 $mode &
		writer=$!
		mail-folders -d "$H" status Crash >/dev/null 2>&1 &
		syncer=$!
		sleep "0.$((RANDOM % 40 + 5))"
		kill -9 "$writer" "$syncer" 2>/dev/null || true
		wait "$writer" "$syncer" 2>/dev/null || true
		# the next sync (a dead process's lock is stale at once) must succeed
		run mail-folders -d "$H" status Crash
		assert_success
		uid_bases "$D" > "$T/now"
		# no UID twice, and a UID once given keeps naming the same file
		[ -z "$(cut -d' ' -f1 "$T/now" | uniq -d)" ]
		[ -z "$(cut -d' ' -f2 "$T/now" | sort | uniq -d)" ]
		join "$T/seen" "$T/now" | awk '$2 != $3 { print "UID " $1 " reused: " $2 " then " $3; bad = 1 } END { exit bad }'
		sort -m "$T/seen" "$T/now" | sort -n -u > "$T/seen.new" && mv "$T/seen.new" "$T/seen"
	done
	# every visible file has a record; the uidlist has no record without a file
	diff <(find "$D/cur" "$D/new" -type f -printf '%f\n' | sed 's/:.*//' | sort) \
		<(cut -d' ' -f2 "$T/now" | sort)
	# no half-written visible file: each one has the size its name promises
	find "$D/cur" "$D/new" -type f -printf '%s %f\n' | awk '{
		if (match($2, /,S=[0-9]+/)) { s = substr($2, RSTART + 3, RLENGTH - 3); if (s != $1) { print "partial: " $2; bad = 1 } }
		else { print "no S=: " $2; bad = 1 } } END { exit bad }'
	# the next UID (header N, which appends let lag, or last + 1) is above every UID given
	n=$(head -1 "$D/dovecot-uidlist" | sed -E 's/.* N([0-9]+).*/\1/')
	last=$(tail -1 "$T/now" | cut -d' ' -f1)
	[ $((n > last ? n : last + 1)) -gt "$(tail -1 "$T/seen" | cut -d' ' -f1)" ]
	# the persistent index says what a full rescan says
	with_index=$(mail-folders -d "$H" status Crash)
	rm -f "$D/mailkeep-index"
	[ "$(mail-folders -d "$H" status Crash)" = "$with_index" ]
	# and dovecot reads the folder the same way
	mk_dovecot_own "$H"
	start_dovecot
	[ "$(dove_status Crash)" = "$(our_status Crash)" ]
}

@test "the folder index follows changes made by dovecot (flag renames without a uidlist change)" {
	mail-folders -d "$H" create Idx
	# big enough for an index written by a reader (small folders are rescanned)
	"$HELPER" deliver "$M/Idx" 300 assign
	touch -d '1 minute ago' "$M/Idx/cur" "$M/Idx/new" "$M/Idx/dovecot-uidlist"
	run mail-folders -d "$H" status Idx
	assert_output --regexp $'^Idx\t300\t300\t'
	[ -f "$M/Idx/mailkeep-index" ]
	mk_dovecot_own "$H"
	start_dovecot
	mk_doveadm flags add -u alice '\Seen' mailbox Idx uid 1:5
	# as the mail user from here: our rewrites must stay readable by dovecot
	mail-folders() { setpriv --reuid="$MK_TEST_USER" --regid="$MK_TEST_USER" --clear-groups \
		"$MK_BUILD/bin/mail-folders" "$@"; }
	run mail-folders -d "$H" status Idx
	assert_output --regexp $'^Idx\t300\t295\t'
	mk_doveadm expunge -u alice mailbox Idx uid 6:7
	run mail-folders -d "$H" status Idx
	assert_output --regexp $'^Idx\t298\t293\t'
	[ "$(dove_status Idx)" = "$(our_status Idx)" ]
	# an index_dir from the config is used instead, and may be deleted
	cat > "$T/mk.conf" <<CONF
mail_dir = $T/home
index_dir = $T/index
CONF
	chmod 644 "$T/mk.conf"
	mkdir "$T/index"
	chown "$MK_TEST_USER" "$T/index"
	rm -f "$M/Idx/mailkeep-index"
	run mail-folders -c "$T/mk.conf" -d "$H" status Idx
	assert_output --regexp $'^Idx\t298\t293\t'
	[ ! -e "$M/Idx/mailkeep-index" ]
	[ "$(find "$T/index" -type f | wc -l)" -eq 1 ]
	rm -rf "$T/index"
	run mail-folders -c "$T/mk.conf" -d "$H" status Idx
	assert_output --regexp $'^Idx\t298\t293\t'
}

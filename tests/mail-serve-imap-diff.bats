#!/usr/bin/env bats
# Differential tests: one Maildir served by mail-serve-imap and by a real
# dovecot 2.3; the same command scripts must give the same untagged
# responses (tagged ones: same status and response code).

load lib/common
load lib/imapd
load lib/dovecot

setup_file() {
	D=$(mktemp -d /tmp/mk-diff.XXXXXX)
	export D
	mk_imapd_init "$D"
	home=$(mk_imapd_home alice@example.com)
	mkdir -p "$home/mail"
	# a generated corpus (multipart, attachments, RFC 2047) and the hand-written
	# MIME samples (nested message/rfc822, digest, groups, malformed boundaries)
	"$MK_ROOT/scripts/bench/gen-corpus" "$home/mail" 120 --seed 7 > /dev/null
	mkdir -p "$home/mail/Samples/cur" "$home/mail/Samples/new" "$home/mail/Samples/tmp"
	i=0
	for f in "$MK_ROOT"/tests/data/mime/*.eml; do
		i=$((i + 1))
		cp "$f" "$home/mail/Samples/cur/$((1700000000 + i)).M${i}P1Q${i}.sample:2,S"
		touch -d "@$((1700000000 + i))" "$home/mail/Samples/cur/$((1700000000 + i)).M${i}P1Q${i}.sample:2,S"
	done
	chown -R "$MK_TEST_USER" "$D/mail" "$D/state"
	mk_imapd_start
	mk_dovecot_init "$D/dovecot"
	mk_dovecot_add_user alice@example.com dovecot-pw "$home"
	# the write-session test's second user: in the passwd file before dovecot
	# starts (an entry added later within the same second may go unseen)
	mk_dovecot_add_user bob-peer@example.com dovecot-pw "$D/peer-home"
	mk_dovecot_start
	# our server assigns the UIDs first; dovecot reads the same dovecot-uidlist
	MK_DOVECOT_PORT=$MK_DOVECOT_PORT mk_imap_py <<'PY'
m = login()
for f in ('INBOX', 'Samples'):
    m.select(f)
m.logout()
d = imaplib.IMAP4('127.0.0.1', int(os.environ['MK_DOVECOT_PORT']))
d.login('alice@example.com', 'dovecot-pw')
for f in ('INBOX', 'Samples'):   # both servers have claimed \Recent once
    d.select(f)
d.logout()
PY
	export MK_IMAPD_PORT MK_DOVECOT_PORT MK_DOVECOT_DIR MK_DOVECOT_CONF
}

teardown_file() {
	mk_imapd_stop
	mk_dovecot_stop
	rm -rf "$D"
}

setup() {
	load_bats_libs
}

diff_run() {   # script text on stdin
	cat > "$BATS_TEST_TMPDIR/script"
	"$MK_PY" "$MK_ROOT/tests/lib/imap-diff.py" "$MK_IMAPD_PORT" "$MK_DOVECOT_PORT" \
		alice@example.com "$MK_IMAPD_PW" dovecot-pw "$BATS_TEST_TMPDIR/script"
}

@test "FETCH ENVELOPE, BODYSTRUCTURE, BODY and sizes agree on the generated corpus" {
	run diff_run <<'EOF2'
EXAMINE INBOX
FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)
FETCH 1:* (BODYSTRUCTURE)
FETCH 1:* (BODY)
UID FETCH 1:* (FLAGS)
FETCH 1:* FAST
EOF2
	echo "$output"
	assert_success
	assert_output --partial identical
}

@test "FETCH sections agree: HEADER.FIELDS, 1.MIME, 1.2.MIME, TEXT, partials" {
	run diff_run <<'EOF2'
EXAMINE INBOX
FETCH 1:40 (BODY.PEEK[HEADER.FIELDS (From Subject Date Message-ID)])
FETCH 1:40 (BODY.PEEK[HEADER.FIELDS.NOT (From Subject)])
FETCH 1:40 (BODY.PEEK[1.MIME] BODY.PEEK[2.MIME] BODY.PEEK[1.2.MIME])
FETCH 1:40 (BODY.PEEK[1] BODY.PEEK[TEXT]<0.100>)
FETCH 1:40 (BODY.PEEK[HEADER] BODY.PEEK[]<10.50>)
FETCH 1:40 (RFC822.HEADER)
EOF2
	echo "$output"
	assert_success
	assert_output --partial identical
}

@test "malformed and unusual MIME samples agree (nested rfc822, digest, groups, bad boundaries)" {
	run diff_run <<'EOF2'
EXAMINE Samples
FETCH 1:* (UID RFC822.SIZE ENVELOPE BODYSTRUCTURE)
# dovecot lower-cases BODYSTRUCTURE's types when BODY is in the same FETCH
FETCH 1:* (BODY)
FETCH 1:* (BODY.PEEK[1.MIME] BODY.PEEK[2] BODY.PEEK[2.1.MIME] BODY.PEEK[2.HEADER] BODY.PEEK[3])
FETCH 1:* (BODY.PEEK[1.2.MIME] BODY.PEEK[TEXT]<5.20>)
EOF2
	echo "$output"
	assert_success
	assert_output --partial identical
}

@test "SEARCH results agree" {
	run diff_run <<'EOF2'
EXAMINE INBOX
SEARCH ALL
SEARCH UNSEEN
SEARCH SEEN
SEARCH SUBJECT report
SEARCH FROM user1
SEARCH OR FROM user2 FROM user3
SEARCH NOT SUBJECT meeting
SEARCH LARGER 30000
SEARCH SMALLER 5000
SEARCH SINCE 1-Jan-2023
SEARCH BEFORE 15-Nov-2023
SEARCH SENTSINCE 10-Mar-2026
SEARCH SENTBEFORE 5-Mar-2026
SEARCH HEADER Message-ID 17.bench
SEARCH BODY budget
SEARCH 1:10 UNSEEN
SEARCH UID 5:20
UID SEARCH UNSEEN
SEARCH CHARSET UTF-8 TEXT kernel
EOF2
	echo "$output"
	assert_success
	assert_output --partial identical
}

@test "mailbox commands agree: LIST, LSUB, STATUS, NAMESPACE, errors" {
	run diff_run <<'EOF2'
LIST "" "*"
LIST "" "%"
LIST "" "Sam*"
LIST "" ""
NAMESPACE
STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)
STATUS Samples (MESSAGES UNSEEN)
STATUS Nonexistent (MESSAGES)
EXAMINE Nonexistent
FETCH 1 FLAGS
EXAMINE INBOX
FETCH 999 FLAGS
FETCH 1 (BOGUS)
SEARCH BOGUS
UID FETCH 99999 FLAGS
EOF2
	echo "$output"
	assert_success
	assert_output --partial identical
}

@test "write sessions agree: STORE, COPY, MOVE, EXPUNGE, APPEND, CREATE, RENAME, DELETE on two copies of one tree" {
	src=$(mk_imapd_home alice@example.com)
	ours=$(mk_imapd_home bob@example.com)
	peer=$D/peer-home
	rm -rf "$ours" "$peer"
	cp -a "$src" "$ours"
	cp -a "$src" "$peer"
	# dovecot's index files are caches it may still be writing: a copy taken
	# mid-write made dovecot drop the session; let it rebuild them
	find "$peer" -name 'dovecot.index*' -delete -o -name 'dovecot.list.index*' -delete
	chown -R "$MK_TEST_USER" "$ours" "$peer"
	cat > "$BATS_TEST_TMPDIR/script" <<'EOF2'
SELECT INBOX
STORE 1:5 +FLAGS (\Flagged)
STORE 2 -FLAGS (\Seen)
STORE 3 FLAGS (\Answered $Label)
UID STORE 6:8 +FLAGS.SILENT (\Deleted)
FETCH 1:10 (FLAGS)
SEARCH DELETED
SEARCH KEYWORD $Label
CREATE Work
CREATE Work/Sub/Deep
UID COPY 4:6 Work
COPY 1:3 Work/Sub/Deep
UID MOVE 9:10 Work
EXPUNGE
FETCH 1:10 (UID FLAGS)
APPEND Work (\Seen) "01-Jan-2020 10:00:00 +0000" {46+}\r\nSubject: appended\r\nFrom: a@example.org\r\n\r\nhi\r\n
STATUS Work (MESSAGES UIDNEXT UNSEEN)
SELECT Work
FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)
UID SEARCH SEEN
CLOSE
LIST "" "*"
RENAME Work/Sub Other
LIST "" "*"
DELETE Other/Deep
DELETE Work
DELETE INBOX
STATUS INBOX (MESSAGES UIDNEXT UNSEEN)
EOF2
	run "$MK_PY" "$MK_ROOT/tests/lib/imap-diff.py" "$MK_IMAPD_PORT" "$MK_DOVECOT_PORT" \
		"bob@example.com,bob-peer@example.com" "$MK_IMAPD_PW" dovecot-pw "$BATS_TEST_TMPDIR/script"
	echo "$output"
	[ "$status" -eq 0 ] || tail -5 "$MK_DOVECOT_LOG"
	assert_success
	assert_output --partial identical
}

#!/usr/bin/env bats
# mail-pull against a real dovecot "provider" over IMAPS/STARTTLS on loopback.

load lib/common
load lib/dovecot
load lib/provider

setup() {
	load_bats_libs
	# dovecot's processes must reach the tree: not under bats' 0700 dirs
	T=$(mktemp -d /tmp/mk-pull.XXXXXX)
	chmod 755 "$T"
	mk_provider_init "$T/dc"
	mk_dovecot_add_user alice secret "$T/alice"
	mk_dovecot_start
	mk_secret "$T/pw" secret
	write_conf imaps "$MK_PROVIDER_IMAPS_PORT" "$MK_PROVIDER_CA"
	M=$T/mail/prov/alice/mail
	seed
}

teardown() {
	mk_dovecot_stop
	rm -rf "$T"
}

write_conf() {   # tls port ca [extra lines]
	cat > "$T/mk.conf" <<EOF
mail_dir = $T/mail
state_dir = $T/state
[account prov]
host = localhost
port = $2
tls = $1
username = alice
password_file = $T/pw
ca_file = $3
timeout = 10
$4
EOF
}

pimap() { mk_provider_imap alice secret "$1"; }

seed() {
	pimap '
import time
c.create("Spam"); c.create("Work/Projects")
for box, n in (("INBOX", 3), ("Spam", 2), ("Work/Projects", 2)):
    for i in range(n):
        body = "From: a@example.com\r\nSubject: %s %d\r\nMessage-ID: <%s-%d@test>\r\n\r\nbody %d\r\n" % (box, i, box.replace("/", "."), i, i)
        c.append(box, r"(\Seen)" if i == 0 else None, imaplib.Time2Internaldate(time.time() - 86400 * (i + 1)), body.encode())
'
}

pull() { run mail-pull -c "$T/mk.conf" "$@"; }

count() { find "$1/cur" "$1/new" -type f 2>/dev/null | wc -l; }

remote_count() {   # folder
	pimap 'typ, d = c.select("\"'"$1"'\""); print(int(d[0]))'
}

local_deliver() {   # folder-dir message-id
	local f="$1/tmp/$(date +%s).M$$P$RANDOM.test"
	printf 'From: me@example.com\nSubject: local\nMessage-ID: <%s>\n\nlocal body\n' "$2" > "$f"
	mv "$f" "$1/new/"
}

@test "initial sync: folders, Spam -> Junk, nested, mtime = INTERNALDATE, exit 0" {
	pull
	assert_success
	[ "$(count "$M")" -eq 3 ]
	[ "$(count "$M/Junk")" -eq 2 ]
	[ "$(count "$M/Work/Projects")" -eq 2 ]
	[ ! -e "$M/Spam" ]
	ls "$M/cur/" | grep -q ':2,S$'
	# mtime of the oldest message is about 3 days ago (INTERNALDATE)
	old=$(find "$M/new" "$M/cur" -type f -mtime +2 | wc -l)
	[ "$old" -ge 1 ]
	grep -q '^remote INBOX$' "$T/state/pull/prov/INBOX.state"
	grep -q '^remote Spam$' "$T/state/pull/prov/Junk.state"
}

@test "second run changes nothing and transfers nothing; third skips every folder" {
	pull
	assert_success
	pull
	assert_success
	assert_output --partial "down=0 up=0 flags_local=0 flags_remote=0"
	pull
	assert_output --partial "down=0 up=0"
	assert_output --regexp "folders=3 unchanged=3"
}

@test "new messages both ways: local delivery goes up with its flags, provider mail comes down" {
	pull
	local_deliver "$M/Work/Projects" local-1@test
	pimap 'c.append("INBOX", None, None, b"From: x@y\r\nMessage-ID: <remote-new@test>\r\n\r\nhi\r\n")'
	pull
	assert_success
	assert_output --partial "down=1 up=1"
	[ "$(remote_count Work/Projects)" -eq 3 ]
	[ "$(count "$M")" -eq 4 ]
	run pimap 'c.select("Work/Projects"); print(c.search(None, "HEADER", "Message-ID", "local-1@test"))'
	assert_output --partial "[b'3']"
	pull
	assert_output --partial "down=0 up=0"
}

@test "flags both ways, keywords, and the union rule" {
	pull
	# local: flag the unseen INBOX message 2; provider: mark message 3 answered + keyword
	f=$(grep -l 'INBOX 1' "$M"/new/* "$M"/cur/* | head -1)
	base=$(basename "$f"); base=${base%%:*}
	rm -f "$f.x"; mv "$f" "$M/cur/$base:2,F"
	pimap 'c.select("INBOX"); c.uid("STORE", "3", "+FLAGS", r"(\Answered $Important)")'
	pull
	assert_success
	run pimap 'c.select("INBOX"); print(c.uid("FETCH", "1:*", "(FLAGS)"))'
	assert_output --partial 'FLAGS (\\Flagged)'
	f3=$(grep -l 'INBOX 2' "$M"/new/* "$M"/cur/* | head -1)
	[[ "$f3" == *":2,R"* ]] || [[ "$f3" == *":2,Ra" ]] || { echo "$f3"; false; }
	grep -q 'Important' "$M/dovecot-keywords"
	pull
	assert_output --partial "flags_local=0 flags_remote=0"
}

@test "expunges both ways (and Expunge Both for \\Deleted)" {
	pull
	rm "$(grep -l 'INBOX 1' "$M"/new/* "$M"/cur/* | head -1)"
	pimap 'c.select("Spam"); c.uid("STORE", "1", "+FLAGS", r"(\Deleted)"); c.expunge()'
	pull
	assert_success
	[ "$(remote_count INBOX)" -eq 2 ]
	[ "$(count "$M/Junk")" -eq 1 ]
	pull
	assert_output --partial "down=0 up=0"
	[ "$(remote_count INBOX)" -eq 2 ]
	[ "$(count "$M")" -eq 2 ]
}

@test "deleted on one side, flagged on the other: kept" {
	pull
	f=$(grep -l 'INBOX 1' "$M"/new/* "$M"/cur/* | head -1)
	base=$(basename "$f"); base=${base%%:*}
	mv "$f" "$M/cur/$base:2,F"
	pimap 'c.select("INBOX"); c.uid("STORE", "2", "+FLAGS", r"(\Deleted)"); c.expunge()'
	pull
	assert_success
	[ "$(count "$M")" -eq 3 ]
	[ "$(remote_count INBOX)" -eq 3 ]
}

@test "folder creation both ways" {
	pull
	mkdir -p "$M/Local/Sub"
	mkdir -p "$M/Local/Sub/cur" "$M/Local/Sub/new" "$M/Local/Sub/tmp"
	local_deliver "$M/Local/Sub" sub-1@test
	pimap 'c.create("\"Remote New\""); c.append("\"Remote New\"", None, None, b"Message-ID: <rn@test>\r\n\r\nx\r\n")'
	pull
	assert_success
	[ "$(count "$M/Remote New")" -eq 1 ]
	[ "$(remote_count Local/Sub)" -eq 1 ]
}

@test "UIDVALIDITY change at the provider re-pairs by Message-ID without duplicates" {
	pull
	pimap '
c.select("Work/Projects")
typ, d = c.fetch("1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
msgs = [x for x in d if isinstance(x, tuple)]
c.close(); c.delete("Work/Projects"); c.create("Work/Projects")
for meta, body in msgs:
    c.append("Work/Projects", None, imaplib.Internaldate2tuple(meta), body)
'
	pull
	assert_success
	assert_output --partial "down=0 up=0"
	assert_output --partial "paired=2"
	[ "$(count "$M/Work/Projects")" -eq 2 ]
	[ "$(remote_count Work/Projects)" -eq 2 ]
}

@test "lost state re-pairs without transfers" {
	pull
	rm -rf "$T/state"
	pull
	assert_success
	assert_output --partial "down=0 up=0"
	[ "$(count "$M")" -eq 3 ]
	[ "$(remote_count INBOX)" -eq 3 ]
}

@test "STARTTLS works; --dry-run changes nothing" {
	write_conf starttls "$MK_PROVIDER_PLAIN_PORT" "$MK_PROVIDER_CA"
	pull --dry-run
	assert_success
	[ ! -e "$M/cur" ] || [ "$(count "$M")" -eq 0 ]
	pull
	assert_success
	[ "$(count "$M")" -eq 3 ]
}

@test "wrong password: exit 77, no state" {
	mk_secret "$T/pw" wrong
	pull
	[ "$status" -eq 77 ]
	assert_output --partial "refused"
	refute_output --partial "wrong"
	[ ! -e "$T/state/pull/prov/INBOX.state" ]
}

@test "provider down: exit 69" {
	write_conf imaps "$(mk_free_port)" "$MK_PROVIDER_CA"
	pull
	[ "$status" -eq 69 ]
	assert_output --partial "connect"
}

@test "wrong CA: exit 69 with a certificate error" {
	other=$(mk_provider_other_ca "$T")
	write_conf imaps "$MK_PROVIDER_IMAPS_PORT" "$other"
	pull
	[ "$status" -eq 69 ]
	assert_output --regexp "certificate|verify"
}

@test "map_junk in config wins over detection; mail-pull -h" {
	pimap 'c.create("Junk"); c.append("Junk", None, None, b"Message-ID: <j@test>\r\n\r\nj\r\n")'
	write_conf imaps "$MK_PROVIDER_IMAPS_PORT" "$MK_PROVIDER_CA" "map_junk = Junk"
	pull
	assert_success
	[ "$(count "$M/Junk")" -eq 1 ]
	[ "$(count "$M/Spam")" -eq 2 ]
	run mail-pull -h
	assert_success
	assert_output --partial "usage: mail-pull"
}

@test "kill -9 during a sync, then a normal run: no loss, no duplicate" {
	pimap '
for i in range(400):
    c.append("INBOX", None, None, ("Message-ID: <bulk-%d@test>\r\nSubject: bulk\r\n\r\n%s\r\n" % (i, "x" * 2000)).encode())
'
	for d in 1 2 3 4 5 6; do
		mail-pull -c "$T/mk.conf" 2>/dev/null &
		pid=$!
		sleep 0.0$((RANDOM % 9 + 1))
		kill -9 $pid 2>/dev/null || true
		wait $pid 2>/dev/null || true
		for i in $(seq 3); do local_deliver "$M" "crash-$d-$i@test" 2>/dev/null || true; done
	done
	pull
	assert_success
	pull
	assert_output --partial "down=0 up=0"
	n_local=$(count "$M")
	n_remote=$(remote_count INBOX)
	[ "$n_local" -eq "$n_remote" ]
	dups=$(cat "$M"/cur/* "$M"/new/* | grep -i '^Message-ID:' | sort | uniq -d | wc -l)
	[ "$dups" -eq 0 ]
	ids_r=$(pimap 'c.select("INBOX"); t, d = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"); print(sorted(x[1].decode().strip() for x in d if isinstance(x, tuple)))')
	[ "$n_local" -eq $((403 + 18)) ] || [ "$n_local" -ge 403 ]
	echo "$ids_r" | grep -q 'bulk-399'
}

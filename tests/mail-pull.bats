#!/usr/bin/env bats
# mail-pull against a real dovecot "provider" over IMAPS/STARTTLS on loopback.

load lib/common
load lib/dovecot
load lib/provider
load lib/pull

setup() {
	load_bats_libs
	mk_pull_setup
	seed
}

teardown() {
	mk_dovecot_stop
	rm -rf "$T"
}

pimap() { mk_pull_imap "$1"; }

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

@test "ENABLE and LIST ride behind the login with the capabilities cached; a stale cache is corrected" {
	pull
	assert_success
	pull	# the first run after a sync still looks at every folder
	assert_success
	caps=$(cat "$T/state/pull/prov/caps")
	[ -n "$caps" ]
	run mail-pull -c "$T/mk.conf" -vv
	assert_success
	# no answer is read between the login and the LIST: one round trip for all three
	echo "$output" | grep -E 'imap_(send|recv) tag=M[0-9]' | head -3 | grep -c imap_send | grep -qx 3
	assert_output --partial "pipelined=1"
	assert_output --regexp "folders=3 unchanged=3"
	# a cache from a provider with nothing but IMAP4rev1, then garbage: same result, cache fixed
	for stale in 1 zz; do
		echo "$stale" > "$T/state/pull/prov/caps"
		pull -v
		assert_success
		assert_output --partial "pipelined=0"
		assert_output --regexp "folders=3 unchanged=3"
		[ "$(cat "$T/state/pull/prov/caps")" = "$caps" ]
	done
	# a wrong password with the commands queued behind it: refused, nothing else said
	mk_secret "$T/pw" wrong
	pull
	[ "$status" -eq 77 ]
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
	mk_pull_conf starttls "$MK_PROVIDER_PLAIN_PORT" "$MK_PROVIDER_CA"
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
	mk_pull_conf imaps "$(mk_free_port)" "$MK_PROVIDER_CA"
	pull
	[ "$status" -eq 69 ]
	assert_output --partial "connect"
}

@test "wrong CA: exit 69 with a certificate error" {
	other=$(mk_provider_other_ca "$T")
	mk_pull_conf imaps "$MK_PROVIDER_IMAPS_PORT" "$other"
	pull
	[ "$status" -eq 69 ]
	assert_output --regexp "certificate|verify"
}

@test "map_junk in config wins over detection; mail-pull -h" {
	pimap 'c.create("Junk"); c.append("Junk", None, None, b"Message-ID: <j@test>\r\n\r\nj\r\n")'
	mk_pull_conf imaps "$MK_PROVIDER_IMAPS_PORT" "$MK_PROVIDER_CA" "map_junk = Junk"
	pull
	assert_success
	[ "$(count "$M/Junk")" -eq 1 ]
	[ "$(count "$M/Spam")" -eq 2 ]
	run mail-pull -h
	assert_success
	assert_output --partial "usage: mail-pull"
}

# Message-ID + SHA-256 of the body (LF line ends) of every message, sorted.
local_hashes() {   # maildir
	"$MK_PY" - "$1" <<'EOF2'
import hashlib, os, re, sys
out = []
for d in ('cur', 'new'):
    p = os.path.join(sys.argv[1], d)
    for f in os.listdir(p):
        b = open(os.path.join(p, f), 'rb').read().replace(b'\r\n', b'\n')
        m = re.search(rb'(?im)^Message-ID:\s*(\S+)', b)
        out.append('%s %s' % (m.group(1).decode() if m else '-', hashlib.sha256(b).hexdigest()))
print('\n'.join(sorted(out)))
EOF2
}

# Both sides hold the same messages (Message-ID + body hash), none twice.
same_both_sides() {   # local-maildir provider-folder
	local_hashes "$1" > "$T/l.txt"
	remote_hashes "$2" > "$T/r.txt"
	diff "$T/l.txt" "$T/r.txt"
	[ "$(cut -d' ' -f1 "$T/l.txt" | uniq -d | wc -l)" -eq 0 ]
}

remote_hashes() {   # folder
	pimap '
import hashlib, re
c.select("'"$1"'", readonly=True)
t, d = c.fetch("1:*", "(BODY.PEEK[])")
out = []
for x in d:
    if isinstance(x, tuple):
        b = x[1].replace(b"\r\n", b"\n")
        m = re.search(rb"(?im)^Message-ID:\s*(\S+)", b)
        out.append("%s %s" % (m.group(1).decode() if m else "-", hashlib.sha256(b).hexdigest()))
print("\n".join(sorted(out)))
'
}

@test "kill -9 20 times during a 2,000-message sync, then a normal run: same messages both sides" {
	pimap '
for i in range(2000):
    c.append("INBOX", None, None, ("Message-ID: <bulk-%d@test>\r\nSubject: bulk %d\r\n\r\n%s\r\n" % (i, i, ("x%d " % i) * 500)).encode())
'
	delivered=0
	for d in $(seq 20); do
		mail-pull -c "$T/mk.conf" 2>/dev/null &
		pid=$!
		sleep 0.$((RANDOM % 6))$((RANDOM % 10))
		kill -9 $pid 2>/dev/null || true
		wait $pid 2>/dev/null || true
		# (fails while a killed run had not made the local INBOX yet)
		local_deliver "$M" "crash-$d@test" 2>/dev/null && delivered=$((delivered + 1))
	done
	pull
	assert_success
	pull
	assert_output --partial "down=0 up=0"
	[ "$(count "$M")" -eq $((2003 + delivered)) ]
	[ "$(remote_count INBOX)" -eq $((2003 + delivered)) ]
	same_both_sides "$M" INBOX
}

@test "kill -9 15 times during a 1,500-message upload (MULTIAPPEND), then a normal run: each message once at the provider" {
	pull
	assert_success
	U=$M/Up
	mkdir -p "$U/tmp" "$U/new" "$U/cur"
	"$MK_PY" - "$U/cur" <<'PY'
import sys
for i in range(1500):
    with open("%s/1700%06d.M%dP9.test:2,%s" % (sys.argv[1], i, i, "S" if i % 2 else ""), "w") as f:
        f.write("From: me@example.com\nSubject: up %d\nMessage-ID: <up-%d@test>\n\n%s\n" % (i, i, ("u%d " % i) * 800))
PY
	local seen_counts=
	for d in $(seq 15); do
		mail-pull -c "$T/mk.conf" 2>/dev/null &
		pid=$!
		sleep 0.$((RANDOM % 8))$((RANDOM % 10))
		kill -9 $pid 2>/dev/null || true
		wait $pid 2>/dev/null || true
		seen_counts="$seen_counts $(remote_count Up 2>/dev/null || echo 0)"
	done
	# whole batches of 64 only: MULTIAPPEND is all or nothing
	echo "# at the provider after each kill:$seen_counts" >&3
	pull
	assert_success
	pull
	assert_output --partial "down=0 up=0"
	[ "$(count "$U")" -eq 1500 ]
	[ "$(remote_count Up)" -eq 1500 ]
	same_both_sides "$U" Up
	seen=$(pimap 'c.select("Up", readonly=True); print(len(c.search(None, "SEEN")[1][0].split()))')
	[ "$seen" -eq 750 ]
}

# Waits (up to TRIES x 0.1 s) until a message with Message-ID ID is in the
# local Maildir DIR; 1 if it never came.
wait_local_id() {   # dir id [tries]
	local i
	for i in $(seq "${3:-100}"); do grep -rqs "$2" "$1/new" "$1/cur" && return 0; sleep 0.1; done
	return 1
}

# Waits (up to TRIES x 0.25 s) until the provider's INBOX holds ID once.
wait_remote_id() {   # id [tries]
	local i n
	for i in $(seq "${2:-40}"); do
		n=$(pimap 'c.select("INBOX"); print(len(c.search(None, "HEADER", "Message-ID", "'"$1"'")[1][0].split()))')
		[ "$n" = 1 ] && return 0
		sleep 0.25
	done
	return 1
}

@test "--watch: provider mail and local deliveries cross within seconds (IDLE, inotify)" {
	mk_pull_conf imaps "$MK_PROVIDER_IMAPS_PORT" "$MK_PROVIDER_CA" "[sync]
interval = 300"
	pull
	assert_success
	mail-pull -c "$T/mk.conf" --watch -v 2> "$T/watch.log" &
	wpid=$!
	for i in $(seq 100); do grep -q 'event=watch ' "$T/watch.log" && break; sleep 0.1; done
	pimap 'c.append("INBOX", None, None, b"From: x@y\r\nMessage-ID: <idle-1@test>\r\n\r\nidle\r\n")'
	t0=$(date +%s)
	wait_local_id "$M" idle-1@test 60 || { kill $wpid; cat "$T/watch.log"; false; }
	for i in $(seq 100); do grep -q 'event=watch ' <(tail -n 3 "$T/watch.log") && break; sleep 0.1; done
	local_deliver "$M" watch-local@test
	ok=
	wait_remote_id watch-local@test 15 && ok=1
	kill -TERM $wpid
	wait $wpid || true
	[ -n "$ok" ] || { cat "$T/watch.log"; false; }
	[ $(( $(date +%s) - t0 )) -lt 8 ]
	grep -q 'reason=provider' "$T/watch.log"
	grep -q 'reason=local' "$T/watch.log"
	# the IDLE and the syncs after it ran on the first run's session
	grep -q 'event=sync_start .*session=kept' "$T/watch.log"
	! grep -q 'event=session_lost' "$T/watch.log"
}

logins() { grep -c 'Login: user=<alice>' "$MK_DOVECOT_LOG" || true; }

wait_runs() {   # log n: until the log holds n sync_done lines (at most 20 s)
	local i
	for i in $(seq 200); do
		[ "$(grep -c 'event=sync_done' "$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	cat "$1" >&2
	return 1
}

@test "--loop keeps one provider session across runs; changes cross; a dropped session is replaced" {
	mk_pull_conf imaps "$MK_PROVIDER_IMAPS_PORT" "$MK_PROVIDER_CA" "[sync]
interval = 1"
	pull
	assert_success
	mail-pull -c "$T/mk.conf" --loop -v 2> "$T/loop.log" &
	lpid=$!
	wait_runs "$T/loop.log" 1 || { kill $lpid; false; }
	l1=$(logins)
	wait_runs "$T/loop.log" 4 || { kill $lpid; false; }
	# three more runs, no new login seen by dovecot
	[ "$(logins)" -eq "$l1" ] || { kill $lpid; cat "$T/loop.log"; false; }
	[ "$(grep -c 'event=sync_start .*session=kept' "$T/loop.log")" -ge 3 ]
	# changes still cross both ways on the kept session
	pimap 'c.append("INBOX", None, None, b"From: x@y\r\nMessage-ID: <loop-1@test>\r\n\r\nloop\r\n")'
	wait_local_id "$M" loop-1@test || { kill $lpid; cat "$T/loop.log"; false; }
	local_deliver "$M" loop-local@test
	wait_remote_id loop-local@test || { kill $lpid; cat "$T/loop.log"; false; }
	# the provider drops the session: the next run logs in again and goes on
	mk_doveadm kick alice >/dev/null
	for i in $(seq 100); do grep -q 'event=session_lost' "$T/loop.log" && break; sleep 0.1; done
	pimap 'c.append("INBOX", None, None, b"From: x@y\r\nMessage-ID: <loop-2@test>\r\n\r\nafter\r\n")'
	ok=
	wait_local_id "$M" loop-2@test && ok=1
	kill -TERM $lpid
	wait $lpid || true
	grep -q 'event=session_lost' "$T/loop.log" || { cat "$T/loop.log"; false; }
	[ -n "$ok" ] || { cat "$T/loop.log"; false; }
	! grep -q 'event=sync_failed' "$T/loop.log"
	# each message once on both sides
	same_both_sides "$M" INBOX
}

@test "uploads go up in MULTIAPPEND batches, paired by APPENDUID; a refused batch goes one by one" {
	pull
	assert_success
	B=$M/Batch
	mkdir -p "$B/tmp" "$B/new" "$B/cur"
	for i in $(seq 150); do
		f="$B/cur/17000$(printf %05d $i).M${i}P1.test:2,"
		[ $((i % 3)) -eq 0 ] && f="${f}S"
		printf 'From: me@example.com\nSubject: batch %d\nMessage-ID: <batch-%d@test>\n\nbody %d\n' \
			$i $i $i > "$f"
	done
	run mail-pull -c "$T/mk.conf" -vv
	assert_success
	# 150 messages: three commands (64 + 64 + 22), not 150
	[ "$(grep -c 'cmd=MULTIAPPEND' <<<"$output")" -eq 3 ]
	[ "$(remote_count Batch)" -eq 150 ]
	same_both_sides "$B" Batch
	seen=$(pimap 'c.select("Batch", readonly=True); print(len(c.search(None, "SEEN")[1][0].split()))')
	[ "$seen" -eq 50 ]
	# paired by APPENDUID: the next run neither transfers nor re-pairs
	run mail-pull -c "$T/mk.conf"
	assert_success
	assert_output --partial 'down=0 up=0'
	assert_output --partial 'paired=0'
	# a batch with a message dovecot refuses (zero bytes): the others still go up
	for i in 1 2 3; do
		printf 'From: me@example.com\nMessage-ID: <late-%d@test>\n\nlate\n' $i \
			> "$B/new/17100000$i.M${i}P2.test"
	done
	: > "$B/new/171000009.M9P2.test"
	run mail-pull -c "$T/mk.conf"
	assert_success
	assert_output --partial 'event=multiappend_refused'
	assert_output --partial 'event=upload_refused folder=Batch'
	[ "$(remote_count Batch)" -eq 153 ]
	for i in 1 2 3; do
		n=$(pimap 'c.select("Batch", readonly=True); print(len(c.search(None, "HEADER", "Message-ID", "late-'$i'@test")[1][0].split()))')
		[ "$n" -eq 1 ]
	done
	# and nothing is sent twice by the runs after it
	run mail-pull -c "$T/mk.conf"
	[ "$(remote_count Batch)" -eq 153 ]
}

@test "progress on a terminal: per folder messages, MB and rate, the run's share and ETA; none when not a terminal" {
	pimap '
for i in range(300):
    c.append("INBOX", None, None, b"From: a@example.com\r\nMessage-ID: <p-%d@test>\r\n\r\n%s\r\n" % (i, b"x" * 4000))
'
	# script(1) gives mail-pull a terminal
	run script -qec "mail-pull -c '$T/mk.conf'" /dev/null
	assert_success
	printf '%s\n' "$output" | tr '\r' '\n' > "$T/progress.txt"
	grep -E '^INBOX \[[0-9]+/3\]: 303/303 down, 1\.[0-9] MB, [0-9.]+ MB/s; all [0-9]+%, ETA [0-9]+:[0-9]{2}' \
		"$T/progress.txt" || { cat "$T/progress.txt"; false; }
	grep -qE '^Junk \[[0-9]+/3\]: 2/2 down' "$T/progress.txt"
	[ "$(count "$M")" -eq 303 ]
	# not a terminal: no progress lines
	pimap 'c.append("INBOX", None, None, b"From: a@example.com\r\nMessage-ID: <p-last@test>\r\n\r\nx\r\n")'
	run mail-pull -c "$T/mk.conf"
	assert_success
	refute_output --partial ' down, '
}

@test "adopting a tree made by mbsync 1.4 (SHB channel) + dovecot: no transfer either way" {
	# SHB syncs folder names verbatim: Spam stays Spam
	mk_pull_conf imaps "$MK_PROVIDER_IMAPS_PORT" "$MK_PROVIDER_CA" "map_junk = Junk"
	mkdir -p "$M"
	cat > "$T/mbsyncrc" <<RC
IMAPAccount prov
Host localhost
Port $MK_PROVIDER_IMAPS_PORT
User alice
PassCmd "cat $T/pw"
SSLType IMAPS
CertificateFile $MK_PROVIDER_CA

IMAPStore prov-remote
Account prov

MaildirStore prov-local
Path $M/
Inbox $M
SubFolders Verbatim

Channel prov
Far :prov-remote:
Near :prov-local:
Patterns *
Create Both
Expunge Both
SyncState *
CopyArrivalDate yes
Sync All
RC
	run timeout 60 mbsync -c "$T/mbsyncrc" prov
	assert_success
	ls "$M/cur" "$M/new" | grep -q ',U='
	[ -e "$M/.mbsyncstate" ]
	# dovecot (as the local server would) reads the tree too
	pimap 'c.select("INBOX")'
	pull
	assert_success
	assert_output --partial "down=0 up=0"
	assert_output --regexp "paired=7 "
	[ "$(count "$M")" -eq 3 ]
	[ "$(count "$M/Spam")" -eq 2 ]
	[ "$(count "$M/Work/Projects")" -eq 2 ]
	[ "$(remote_count INBOX)" -eq 3 ]
	[ "$(remote_count Spam)" -eq 2 ]
	pull
	assert_output --partial "down=0 up=0 flags_local=0 flags_remote=0"
}

@test "provider closing mid-literal or sending garbage: exit 69, nothing lost, no partial file" {
	mk_pull_fake_provider good 2
	pull
	assert_success
	kill $FAKE_PID
	[ "$(count "$M")" -eq 2 ]
	cp "$T/state/pull/prov/INBOX.state" "$T/state.before"
	for mode in truncate garbage; do
		mk_pull_fake_provider $mode 3
		pull
		kill $FAKE_PID
		[ "$status" -eq 69 ] || { echo "$mode: $output"; false; }
		assert_output --regexp "closed|malformed|read from server"
		[ "$(count "$M")" -eq 2 ]
		[ -z "$(ls -A "$M/tmp")" ]
		grep -c '^[0-9]' "$T/state/pull/prov/INBOX.state" | grep -qx 2 ||
			diff "$T/state.before" "$T/state/pull/prov/INBOX.state"
	done
	mk_pull_fake_provider good 3
	pull
	kill $FAKE_PID
	assert_success
	assert_output --partial "down=1 up=0"
	[ "$(count "$M")" -eq 3 ]
}

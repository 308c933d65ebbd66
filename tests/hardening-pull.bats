#!/usr/bin/env bats
# mail-pull faults (issue 8): the local mail dir on a full filesystem (a
# small tmpfs; skipped with the reason where none can be mounted), and a
# provider that stalls mid-response (dovecot's imap process stopped with
# SIGSTOP; a fake provider that stops in the middle of a literal): a clean
# exit 75/69 within the timeout, the state intact, no partial file in
# new/ or cur/; the next run completes with no duplicate and no loss.

load lib/common
load lib/dovecot
load lib/provider
load lib/pull

setup() {
	load_bats_libs
	mk_pull_setup
}

teardown() {
	[ -n "${STOPPED:-}" ] && kill -CONT $STOPPED 2>/dev/null
	[ -n "${FAKE_PID:-}" ] && kill "$FAKE_PID" 2>/dev/null
	mk_dovecot_stop
	if [ -n "${MNT:-}" ]; then
		umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	fi
	rm -rf "$T"
}

pimap() { mk_pull_imap "$1"; }

# N messages of about KB kilobytes each into the provider's INBOX, each
# "Message-ID: <big-i@test>" (i from FIRST) and ending with an "END big-i" line.
seed_big() {   # n kb [first]
	pimap '
n, kb, first = '"$1"', '"$2"', '"${3:-0}"'
for i in range(first, first + n):
    body = ("Message-ID: <big-%d@test>\r\nSubject: big %d\r\n\r\n" % (i, i) +
            ("%05d " % i + "z" * 70 + "\r\n") * (kb * 1024 // 78) + "END big-%d\r\n" % i)
    c.append("INBOX", None, None, body.encode())
'
}

# Checks the local INBOX: every file complete (its END line), no
# Message-ID twice; prints the number of messages.
local_check() {
	"$MK_PY" - "$M" <<'PY'
import os, re, sys
m = sys.argv[1]
ids = []
for d in ('new', 'cur'):
    for f in os.listdir(os.path.join(m, d)):
        data = open(os.path.join(m, d, f), 'rb').read()
        mid = re.search(rb'Message-ID: <(big-\d+)@test>', data)
        assert mid, 'no Message-ID in %s/%s' % (d, f)
        assert data.rstrip().endswith(b'END ' + mid.group(1)), 'partial file %s/%s (%d bytes)' % (d, f, len(data))
        ids.append(mid.group(1))
assert len(ids) == len(set(ids)), 'duplicates: %s' % sorted(i for i in ids if ids.count(i) > 1)
print(len(ids))
PY
}

# The sync state's records are well-formed and name only files present.
state_check() {
	local f
	for f in "$T"/state/pull/prov/*; do
		[ -f "$f" ] || continue
		# a state file is replaced whole (temp, fsync, rename): never empty
		[ -s "$f" ] || { echo "empty state file $f"; return 1; }
	done
}

remote_count() {
	pimap 'typ, d = c.select("INBOX"); print(int(d[0]))'
}

@test "full disk under the local mail dir: exit 75 with a clear message, state intact, no partial file; after making space no duplicate and no loss" {
	mkdir -p "$T/mail"
	if ! mount -t tmpfs -o size=2m,mode=0755 mk-pull-full "$T/mail" 2>"$T/mount.err"; then
		skip "cannot mount a tmpfs here: $(cat "$T/mount.err")"
	fi
	MNT=$T/mail
	seed_big 40 100   # 4 MB at the provider for a 2 MB filesystem
	run mail-pull -c "$T/mk.conf"
	echo "$output"
	echo "# full disk: exit $status: $(grep -iE 'space|full' <<<"$output" | head -1)" >&3
	[ "$status" -eq 75 ]
	assert_output --regexp '[Nn]o space left|disk full|ENOSPC'
	run local_check
	echo "$output"
	assert_success
	local got=$output
	[ "$got" -gt 0 ]
	[ "$got" -lt 40 ]
	run state_check
	assert_success
	# a second run on the still-full disk: the same clean failure, nothing lost
	run mail-pull -c "$T/mk.conf"
	[ "$status" -eq 75 ]
	run local_check
	assert_success
	[ "$output" -ge "$got" ]
	# nothing went up to the provider
	[ "$(remote_count)" -eq 40 ]
	# space again: the next run completes, no duplicate, no loss
	mount -o remount,size=16m "$T/mail"
	run mail-pull -c "$T/mk.conf"
	echo "$output"
	assert_success
	run local_check
	assert_success
	assert_output 40
	[ "$(remote_count)" -eq 40 ]
	run mail-pull -c "$T/mk.conf"
	assert_success
	assert_output --partial "down=0 up=0"
}

# In the background: once a download has begun (a file in the local
# INBOX's tmp/), stops the imap process our dovecot runs for the login (a
# child of its master named "imap") with SIGSTOP, and writes its pid to
# $T/stopped.
stop_imap_mid_fetch() {
	"$MK_PY" - "$(cat "$MK_DOVECOT_DIR/run/master.pid")" "$T/stopped" "$M/tmp" <<'PY' &
import os, signal, sys, time
master, out, tmp = sys.argv[1:4]
def imap_pids():
    for p in os.listdir('/proc'):
        if p.isdigit():
            try:
                st = open('/proc/%s/stat' % p).read()
            except OSError:
                continue
            if st[st.index('(') + 1:st.rindex(')')] == 'imap' and st[st.rindex(')') + 2:].split()[1] == master:
                yield int(p)
end = time.time() + 60
while time.time() < end:
    try:
        if os.listdir(tmp):
            break
    except OSError:
        pass
    time.sleep(0.0005)
for p in imap_pids():
    os.kill(p, signal.SIGSTOP)
    open(out, 'w').write(str(p))
PY
	STOPPER=$!
}

@test "provider that stalls (dovecot's imap process stopped): clean exit within the timeout, state intact; then complete" {
	seed_big 10 2
	run mail-pull -c "$T/mk.conf"
	assert_success
	seed_big 6 4000 10   # 24 MB: the stop comes while they are on their way
	mk_pull_conf imaps "$MK_PROVIDER_IMAPS_PORT" "$MK_PROVIDER_CA" "" 3
	stop_imap_mid_fetch
	local t0=$SECONDS rc=0
	run mail-pull -c "$T/mk.conf"
	rc=$status
	local dt=$((SECONDS - t0))
	wait $STOPPER
	STOPPED=$(cat "$T/stopped")
	[ -n "$STOPPED" ]
	echo "$output"
	echo "# provider stalled (SIGSTOP): exit $rc after $dt s: $(grep -E 'error=' <<<"$output" | head -1 | sed 's/.*error=//')" >&3
	[ "$rc" -eq 69 ] || [ "$rc" -eq 75 ]
	[ "$dt" -le 20 ]
	assert_output --regexp '[Tt]imeout|timed out'
	run local_check
	echo "$output"
	assert_success
	[ "$output" -ge 10 ]
	[ "$output" -lt 16 ]
	run state_check
	assert_success
	kill -CONT $STOPPED
	STOPPED=
	mk_pull_conf imaps "$MK_PROVIDER_IMAPS_PORT" "$MK_PROVIDER_CA"
	run mail-pull -c "$T/mk.conf"
	assert_success
	run local_check
	assert_success
	assert_output 16
	[ "$(remote_count)" -eq 16 ]
	run mail-pull -c "$T/mk.conf"
	assert_success
	assert_output --partial "down=0 up=0"
}

fake_stop() {
	kill "$FAKE_PID" 2>/dev/null || true
	wait "$FAKE_PID" 2>/dev/null || true
	FAKE_PID=
}

count() { find "$1/cur" "$1/new" -type f 2>/dev/null | wc -l; }

@test "provider that stalls in the middle of a message: clean exit within the timeout, nothing partial, state intact" {
	mk_pull_fake_provider good 2 3
	run mail-pull -c "$T/mk.conf"
	assert_success
	fake_stop
	[ "$(count "$M")" -eq 2 ]
	cp "$T/state/pull/prov/INBOX.state" "$T/state.before"
	mk_pull_fake_provider stall 3 3
	local t0=$SECONDS
	run mail-pull -c "$T/mk.conf"
	local dt=$((SECONDS - t0))
	fake_stop
	echo "$output"
	echo "# provider stalled mid-literal: exit $status after $dt s" >&3
	[ "$status" -eq 69 ] || [ "$status" -eq 75 ]
	[ "$dt" -le 15 ]
	assert_output --regexp '[Tt]imeout|timed out'
	[ "$(count "$M")" -eq 2 ]
	[ -z "$(ls -A "$M/tmp")" ]
	grep -c '^[0-9]' "$T/state/pull/prov/INBOX.state" | grep -qx 2 ||
		diff "$T/state.before" "$T/state/pull/prov/INBOX.state"
	mk_pull_fake_provider good 3 3
	run mail-pull -c "$T/mk.conf"
	fake_stop
	assert_success
	assert_output --partial "down=1 up=0"
	[ "$(count "$M")" -eq 3 ]
}

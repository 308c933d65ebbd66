#!/usr/bin/env bats
# Crash consistency and a stalling provider for mail-submit-relay (issue 8):
# kill -9 at random moments during concurrent submissions and flushes, for
# $MK_RELAY_CRASH_ROUNDS rounds (default 15), checked by
# tests/lib/relay-crash.py; and a provider that stops reading mid-DATA or
# never answers after the data (tests/lib/smtp-sink.py STALL rule):
# deferred within the timeout, kept, later delivered once.

load lib/common
load lib/smtpd

setup() {
	load_bats_libs
	D=$(mk_tmp)
	mk_smtpd_init "$D"
}

teardown() {
	mk_smtpd_stop
	true
}

@test "kill -9 of mail-submit-relay during submissions and flushes: nothing acknowledged lost, re-sends only from killed transfers" {
	mk_sink_start
	run "$MK_PY" "$MK_ROOT/tests/lib/relay-crash.py" "$(command -v mail-submit-relay)" \
		"$MK_IMAPD_CONF" "$(mk_free_port)" "$MK_IMAPD_PW" "$MK_SINK_DIR" "$MK_SINK_PORT" "$D/state/queue" \
		"${MK_RELAY_CRASH_ROUNDS:-15}" "$D/smtpd.log"
	echo "$output"
	echo "# $(grep '^rounds' <<<"$output")" >&3
	echo "# $(grep '^killed' <<<"$output")" >&3
	assert_success
	assert_output --partial ok
	# the rounds did what they say: messages acknowledged, runners and flushes killed
	local acked
	acked=$(awk '/^rounds/ { print $6 }' <<<"$output")
	[ "$acked" -ge 100 ]
	[ "$(awk '/^killed/ { print $7 }' <<<"$output")" -ge 1 ]
	[ "$(awk '/^killed/ { print $9 }' <<<"$output")" -ge 1 ]
	! grep -E 'AddressSanitizer|LeakSanitizer|runtime error' "$D/smtpd.log"
	run mk_relay list
	assert_success
	assert_output ''
}
# Submits one message of about 200 KB to friend@example.org; prints its queue id.
submit_big() {   # [lines [filler bytes a line]], default 2500 x 40 (about 200 KB)
	"$MK_PY" - "$MK_SMTPD_PORT" "$MK_IMAPD_PW" "${1:-2500}" "${2:-40}" <<'PY'
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=30)
s.login('alice@example.com', sys.argv[2])
body = (b'From: alice@example.com\r\nSubject: stalled\r\nMessage-ID: <stall@test>\r\n\r\n' +
        b''.join(b'line %05d of the stalled message %s\r\n' % (i, b'y' * int(sys.argv[4]))
                 for i in range(int(sys.argv[3]))) +
        b'END\r\n')
s.mail('alice@example.com')
s.rcpt('friend@example.org')
code, msg = s.data(body)
assert code == 250, (code, msg)
print(msg.decode().split()[-1])
s.quit()
PY
}

@test "provider that stalls mid-DATA or after the data: deferred within the timeout, kept, later delivered once" {
	sed -i 's/^timeout = 20$/timeout = 3/' "$MK_IMAPD_CONF"
	grep -q '^timeout = 3$' "$MK_IMAPD_CONF"
	mk_sink_start
	mk_smtpd_start --no-flush --allow-plaintext
	local n=0
	for stall in 20000 end; do
		echo "STALL $stall" > "$MK_SINK_DIR/rules"
		run submit_big
		assert_success
		local id=$output
		local t0=$SECONDS
		run mk_relay flush
		echo "stall $stall: flush exit $status after $((SECONDS - t0)) s: $output"
		echo "# provider stalling (STALL $stall): flush exit $status after $((SECONDS - t0)) s" >&3
		[ "$status" -eq 75 ]
		[ $((SECONDS - t0)) -le 15 ]
		grep -q "DATA stalled after" "$MK_SINK_DIR/log"
		[ "$(mk_sink_count)" -eq $n ]
		run mk_relay list --json
		echo "$output"
		assert_output --partial "$id"
		assert_output --partial '"attempts": 1'
		assert_output --regexp '[Tt]imeout|timed out'
		# the provider is back: delivered exactly once, the queue empties
		rm "$MK_SINK_DIR/rules"
		run mk_relay flush --force
		assert_success
		n=$((n + 1))
		[ "$(mk_sink_count)" -eq $n ]
		run mk_relay flush --force
		assert_success
		[ "$(mk_sink_count)" -eq $n ]
		run mk_relay list
		assert_output ''
		grep -q '^END' "$MK_SINK_DIR/msg-$n.eml"
		grep -c '^line ' "$MK_SINK_DIR/msg-$n.eml" | grep -qx 2500
	done
}

@test "a slow provider link: a message whose transfer takes longer than [relay] timeout in all is delivered" {
	sed -i 's/^timeout = 20$/timeout = 8/' "$MK_IMAPD_CONF"
	grep -q '^timeout = 8$' "$MK_IMAPD_CONF"
	mk_sink_start
	mk_smtpd_start --no-flush --allow-plaintext
	# 24 MB read at 2 MB/s: some 12 s in all (the first 4 MB or so go into
	# the socket buffers at once), never 8 s without progress
	echo "SLOW 2097152" > "$MK_SINK_DIR/rules"
	run submit_big 24000 960
	assert_success
	local t0=$SECONDS
	run mk_relay flush
	echo "flush exit $status after $((SECONDS - t0)) s: $output"
	echo "# slow link: flush exit $status after $((SECONDS - t0)) s; $(grep 'read slowly' "$MK_SINK_DIR/log" | tail -n 1)" >&3
	assert_success
	[ $((SECONDS - t0)) -ge 9 ]
	[ "$(mk_sink_count)" -eq 1 ]
	grep -q '^END' "$MK_SINK_DIR/msg-1.eml"
	grep -c '^line ' "$MK_SINK_DIR/msg-1.eml" | grep -qx 24000
	run mk_relay list
	assert_output ''
}

#!/usr/bin/env bats
# Crash consistency for mail-submit-relay (issue 8): kill -9 at random
# moments during concurrent submissions and flushes, for
# $MK_RELAY_CRASH_ROUNDS rounds (default 16), checked by
# tests/lib/relay-crash.py.

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
		"${MK_RELAY_CRASH_ROUNDS:-16}" "$D/smtpd.log"
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

# mail-submit-relay for tests: load with `load lib/smtpd` after `load lib/common`.
#
#   mk_smtpd_init DIR        the imapd fixture's config, TLS and users (alice,
#                            bob @example.com), plus a [relay] section pointing
#                            at the sink's port ($MK_SINK_PORT, not started yet)
#   mk_sink_start [ARGS...]  the provider: tests/lib/smtp-sink.py with TLS and
#                            AUTH (extra ARGS: --mode smtps, --smtputf8)
#   mk_sink_stop
#   mk_smtpd_start [ARGS...] mail-submit-relay serve --listen on $MK_SMTPD_PORT
#   mk_smtpd_stop            stops every server and sink started here
#   mk_relay ARGS...         mail-submit-relay -c $MK_IMAPD_CONF ARGS...
#   mk_swaks ARGS...         swaks against $MK_SMTPD_PORT as alice (STARTTLS)
#
# Variables: MK_SINK_DIR (messages land there as msg-N.json/.eml), MK_SINK_PORT,
# MK_SMTPD_PORT, MK_RELAY_USER / MK_RELAY_PW (the provider's credentials).

load lib/imapd

MK_RELAY_USER="relay@example.com"
MK_RELAY_PW="provider-Secret-99"

mk_smtpd_init() {   # dir
	mk_imapd_init "$1"
	MK_SINK_DIR=$1/sink
	MK_SINK_PORT=$(mk_free_port)
	mkdir -p "$MK_SINK_DIR"
	mk_secret "$1/relay-password" "$MK_RELAY_PW"
	cat >> "$MK_IMAPD_CONF" <<CONF

[relay]
host = 127.0.0.1
port = $MK_SINK_PORT
tls = starttls
username = $MK_RELAY_USER
password_file = $1/relay-password
ca_file = $MK_IMAPD_CA
timeout = 20
CONF
	export MK_SINK_DIR MK_SINK_PORT
}

mk_sink_start() {   # extra args for smtp-sink.py
	"$MK_PY" "$MK_ROOT/tests/lib/smtp-sink.py" --port "$MK_SINK_PORT" --dir "$MK_SINK_DIR" \
		--cert "$MK_IMAPD_DIR/tls/fullchain.pem" --key "$MK_IMAPD_DIR/tls/key.pem" \
		--user "$MK_RELAY_USER" --password-file "$MK_IMAPD_DIR/relay-password" "$@" \
		2>> "$MK_SINK_DIR/stderr" &
	echo $! > "$MK_SINK_DIR/pid"
	mk_wait_port "$MK_SINK_PORT"
}

mk_sink_stop() {
	[ -f "$MK_SINK_DIR/pid" ] || return 0
	local p
	p=$(cat "$MK_SINK_DIR/pid")
	kill "$p" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	rm -f "$MK_SINK_DIR/pid"
}

# Messages the sink accepted so far.
mk_sink_count() {
	ls "$MK_SINK_DIR"/msg-*.json 2>/dev/null | wc -l
}

mk_smtpd_start() {   # serve args
	MK_SMTPD_PORT=$(mk_free_port)
	mail-submit-relay -c "$MK_IMAPD_CONF" serve --listen "127.0.0.1:$MK_SMTPD_PORT" "$@" \
		2>> "$MK_IMAPD_DIR/smtpd.log" &
	echo $! >> "$MK_IMAPD_DIR/pids"
	export MK_SMTPD_PORT
	mk_wait_port "$MK_SMTPD_PORT"
}

mk_smtpd_stop() {
	mk_imapd_stop
	[ -n "${MK_SINK_DIR:-}" ] && mk_sink_stop
	return 0
}

mk_relay() {
	mail-submit-relay -c "$MK_IMAPD_CONF" "$@"
}

# swaks as alice over STARTTLS trusting the test CA; extra args override.
mk_swaks() {
	swaks --server 127.0.0.1 --port "$MK_SMTPD_PORT" --tls \
		--tls-verify --tls-ca-path "$MK_IMAPD_CA" \
		--auth LOGIN --auth-user alice@example.com --auth-password "$MK_IMAPD_PW" \
		--from alice@example.com --timeout 20 "$@"
}

#!/usr/bin/env bats
# mail-submit-relay: swaks and raw SMTP against `serve`, the aiosmtpd sink as
# the provider for `flush`, our IMAP server as the reader of local deliveries.

load lib/common
load lib/smtpd

setup() {
	load_bats_libs
	D=$(mk_tmp)
	mk_smtpd_init "$D"
}

teardown() {
	mk_smtpd_stop
}

# Raw SMTP from python (stdin: script) with helpers:
#   c = conn()             plain connection, greeting read
#   send(c, b"...")        sendall; rd(c) reads one full reply (str)
#   login(c)               EHLO + AUTH PLAIN alice (needs --allow-plaintext)
smtp_py() {
	PORT=$MK_SMTPD_PORT PW=$MK_IMAPD_PW CA=$MK_IMAPD_CA "$MK_PY" -c "
import base64, os, socket, ssl, sys, time
PORT=int(os.environ['PORT']); PW=os.environ['PW']
def rd(c):
    buf=b''
    while True:
        ch=c.recv(1)
        if not ch: return buf.decode('latin-1')
        buf+=ch
        if buf.endswith(b'\r\n'):
            last=buf.split(b'\r\n')[-2]
            if len(last)<4 or last[3:4]==b' ': return buf.decode('latin-1')
def send(c, b): c.sendall(b)
def conn():
    c=socket.create_connection(('127.0.0.1',PORT), 10); c.settimeout(10)
    g=rd(c); assert g.startswith('220'), g
    return c
def login(c, user='alice@example.com'):
    send(c, b'EHLO test\r\n'); r=rd(c); assert r.startswith('250'), r
    tok=base64.b64encode(b'\0'+user.encode()+b'\0'+PW.encode())
    send(c, b'AUTH PLAIN '+tok+b'\r\n'); r=rd(c); assert r.startswith('235'), r
def check(cond, what):
    if not cond:
        print('FAILED:', what); sys.exit(1)
$(cat)
"
}

inbox_count() {   # user
	ls "$(mk_imapd_home "$1")/mail/new" "$(mk_imapd_home "$1")/mail/cur" 2>/dev/null |
		grep -c '^[0-9]' || true
}

queue_count() {
	mk_relay list | grep -c . || true
}

@test "EHLO over STARTTLS advertises AUTH only after TLS, and the extensions" {
	mk_smtpd_start --no-flush
	run swaks --server 127.0.0.1 --port "$MK_SMTPD_PORT" --quit-after EHLO
	assert_success
	assert_output --partial "250-STARTTLS"
	refute_output --partial "AUTH"
	run swaks --server 127.0.0.1 --port "$MK_SMTPD_PORT" --tls --tls-verify \
		--tls-ca-path "$MK_IMAPD_CA" --quit-after EHLO
	assert_success
	assert_output --partial "250-AUTH PLAIN LOGIN"
	assert_output --partial "PIPELINING"
	assert_output --partial "250-SIZE 52428800"
	assert_output --partial "8BITMIME"
	assert_output --partial "ENHANCEDSTATUSCODES"
	refute_output --partial "<~  250-STARTTLS"
}

@test "no auth is refused; AUTH before STARTTLS is refused" {
	mk_smtpd_start --no-flush
	run swaks --server 127.0.0.1 --port "$MK_SMTPD_PORT" --tls --tls-ca-path "$MK_IMAPD_CA" \
		--from alice@example.com --to bob@example.org
	assert_failure
	assert_output --partial "530 5.7.0 Authentication required"
	run smtp_py <<'PY'
c=conn(); send(c, b'EHLO x\r\n'); rd(c)
send(c, b'AUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHg=\r\n'); r=rd(c)
check(r.startswith('530 5.7.0 Must issue a STARTTLS'), r)
send(c, b'MAIL FROM:<alice@example.com>\r\n'); r=rd(c)
check(r.startswith('530'), r)
PY
	assert_success
	[ "$(queue_count)" -eq 0 ]
}

@test "wrong password: 535 5.7.8 (STARTTLS and implicit TLS), penalty applied" {
	mk_smtpd_start --no-flush
	run mk_swaks --to bob@example.org --auth-password wrong
	assert_failure
	assert_output --partial "535 5.7.8 Error: authentication failed"
	mk_smtpd_start --no-flush --tls
	run swaks --server 127.0.0.1 --port "$MK_SMTPD_PORT" --tls-on-connect \
		--tls-verify --tls-ca-path "$MK_IMAPD_CA" --auth LOGIN \
		--auth-user alice@example.com --auth-password wrong \
		--from alice@example.com --to alice@example.com
	assert_failure
	assert_output --partial "<~* 535 5.7.8 Error: authentication failed: (reason unavailable)"
	run swaks --server 127.0.0.1 --port "$MK_SMTPD_PORT" --tls-on-connect \
		--tls-verify --tls-ca-path "$MK_IMAPD_CA" --auth PLAIN \
		--auth-user nobody@example.com --auth-password "$MK_IMAPD_PW" \
		--from nobody@example.com --to alice@example.com
	assert_failure
	assert_output --partial "535 5.7.8 Error: authentication failed"
	[ "$(queue_count)" -eq 0 ]
}

@test "the module's swaks recipe over implicit TLS: accepted, relayed with the provider's credentials" {
	mk_sink_start
	mk_smtpd_start --no-flush --tls
	run swaks --server 127.0.0.1 --port "$MK_SMTPD_PORT" --tls-on-connect \
		--tls-verify --tls-ca-path "$MK_IMAPD_CA" --auth LOGIN \
		--auth-user alice@example.com --auth-password "$MK_IMAPD_PW" \
		--from alice@example.com --to friend@example.org
	assert_success
	assert_output --regexp "250 2.0.0 Ok: queued as [0-9A-F]{20}"
	[ "$(queue_count)" -eq 1 ]
	run mk_relay flush
	assert_success
	[ "$(mk_sink_count)" -eq 1 ]
	run cat "$MK_SINK_DIR/msg-1.json"
	assert_output --partial '"from": "alice@example.com"'
	assert_output --partial '"to": ["friend@example.org"]'
	assert_output --partial '"tls": true'
	assert_output --partial '"authenticated": true'
	run grep -c "AUTH .* ok" "$MK_SINK_DIR/log"
	assert_output 1
	run grep -c "^Received: from" "$MK_SINK_DIR/msg-1.eml"
	assert_output 1
	[ "$(queue_count)" -eq 0 ]
	# the sink does not offer SMTPUTF8: a server started now does not promise it
	mk_smtpd_start --no-flush
	run swaks --server 127.0.0.1 --port "$MK_SMTPD_PORT" --quit-after EHLO
	assert_success
	assert_output --partial "8BITMIME"
	refute_output --partial "SMTPUTF8"
}

@test "STARTTLS submission is relayed by the background flush" {
	mk_sink_start
	mk_smtpd_start
	run mk_swaks --to friend@example.org
	assert_success
	for _ in $(seq 100); do [ "$(mk_sink_count)" -eq 1 ] && break; sleep 0.1; done
	[ "$(mk_sink_count)" -eq 1 ]
	for _ in $(seq 50); do [ "$(queue_count)" -eq 0 ] && break; sleep 0.1; done
	[ "$(queue_count)" -eq 0 ]
}

@test "sender that is not the user: 553 for the envelope and for From:" {
	mk_smtpd_start --no-flush
	run mk_swaks --to friend@example.org --from bob@example.com
	assert_failure
	assert_output --partial "553 5.7.1 <bob@example.com>: Sender address rejected: not owned by user alice@example.com"
	run mk_swaks --to friend@example.org --h-From: '"Bob" <bob@example.com>'
	assert_failure
	assert_output --partial "553 5.7.1 <bob@example.com>: From: address not owned"
	run mk_swaks --to friend@example.org --h-From: '"Smith, Alice" <ALICE@example.com>'
	assert_success
	[ "$(queue_count)" -eq 1 ]
}

@test "unknown local user: 550 5.1.1; remote without a relay section: 554" {
	mk_smtpd_start --no-flush
	run mk_swaks --to nobody@example.com
	assert_failure
	assert_output --partial "550 5.1.1 <nobody@example.com>: Recipient address rejected"
	sed -i '/^\[relay\]/,$d' "$MK_IMAPD_CONF"
	mk_smtpd_start --no-flush
	run mk_swaks --to friend@example.org
	assert_failure
	assert_output --partial "554 5.7.1 <friend@example.org>: Relay access denied"
}

@test "local recipient lands in INBOX with UID 1 and curl imaps reads it through mail-serve-imap" {
	mk_smtpd_start --no-flush
	run mk_swaks --to bob@example.com --header "Subject: hello bob"
	assert_success
	run mk_relay flush
	assert_success
	[ "$(inbox_count bob@example.com)" -eq 1 ]
	run cat "$(mk_imapd_home bob@example.com)/mail/dovecot-uidlist"
	assert_output --regexp $'\n1 '
	mk_imapd_start --tls
	run curl -s --cacert "$MK_IMAPD_CA" -u "bob@example.com:$MK_IMAPD_PW" \
		"imaps://127.0.0.1:$MK_IMAPD_PORT/INBOX;UID=1"
	assert_success
	assert_output --partial "Subject: hello bob"
	assert_output --partial "This is a test mailing"
	[ "$(queue_count)" -eq 0 ]
}

@test "relay certificate is verified: wrong CA keeps the message queued" {
	mk_sink_start
	mkdir -p "$D/other"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$D/other/ca.key" -out "$D/other/ca.pem" -days 2 -subj "/CN=other CA" 2>/dev/null
	sed -i "s|^ca_file = .*|ca_file = $D/other/ca.pem|" "$MK_IMAPD_CONF"
	mk_smtpd_start --no-flush
	run mk_swaks --to friend@example.org
	assert_success
	run mk_relay flush
	assert_equal "$status" 75
	[ "$(mk_sink_count)" -eq 0 ]
	run mk_relay list
	assert_output --partial "friend@example.org"
	assert_output --regexp "certificate|SSL"
}

@test "4xx: stays queued with backoff recorded, retried later, delivered once" {
	mk_sink_start
	echo "RCPT friend@example.org 451 4.3.0 try again later" > "$MK_SINK_DIR/rules"
	mk_smtpd_start --no-flush
	run mk_swaks --to friend@example.org
	assert_success
	run mk_relay flush
	assert_equal "$status" 75
	run mk_relay list --json
	assert_output --partial '"attempts": 1'
	assert_output --partial '451 4.3.0 try again later'
	now=$(date +%s)
	next=$(mk_relay list --json | "$MK_PY" -c '
import json, sys, calendar, time
q = json.load(sys.stdin)[0]
print(calendar.timegm(time.strptime(q["next_retry"], "%Y-%m-%dT%H:%M:%SZ")))')
	[ $((next - now)) -ge 290 ] && [ $((next - now)) -le 310 ]
	# not due yet: a plain flush leaves it alone
	rm "$MK_SINK_DIR/rules"
	run mk_relay flush
	assert_success
	[ "$(mk_sink_count)" -eq 0 ]
	run mk_relay flush --force
	assert_success
	[ "$(mk_sink_count)" -eq 1 ]
	run mk_relay flush --force
	[ "$(mk_sink_count)" -eq 1 ]
	[ "$(queue_count)" -eq 0 ]
}

@test "upstream down, then back: delivered exactly once" {
	mk_smtpd_start --no-flush
	run mk_swaks --to friend@example.org
	assert_success
	run mk_relay flush
	assert_equal "$status" 75
	run mk_relay list
	assert_output --partial "Couldn't connect"
	mk_sink_start
	run mk_relay flush --force
	assert_success
	run mk_relay flush --force
	assert_success
	[ "$(mk_sink_count)" -eq 1 ]
	[ "$(queue_count)" -eq 0 ]
}

@test "provider refuses our login (535): deferred, not bounced" {
	mk_sink_start
	mk_secret "$D/relay-password" "not-the-password"
	mk_smtpd_start --no-flush
	run mk_swaks --to friend@example.org
	assert_success
	run mk_relay flush
	assert_equal "$status" 75
	[ "$(queue_count)" -eq 1 ]
	[ "$(inbox_count alice@example.com)" -eq 0 ]
	run mk_relay list
	assert_output --partial "535"
}

@test "5xx on one of two recipients: the other is delivered, a DSN reports the failed one" {
	mk_sink_start
	echo "RCPT carol@example.net 550 5.1.1 <carol@example.net>: no such user" > "$MK_SINK_DIR/rules"
	mk_smtpd_start --no-flush
	run mk_swaks --to carol@example.net,dave@example.org --header "Subject: two of them"
	assert_success
	run mk_relay flush
	assert_success
	[ "$(mk_sink_count)" -eq 1 ]
	run cat "$MK_SINK_DIR/msg-1.json"
	assert_output --partial '"to": ["dave@example.org"]'
	[ "$(inbox_count alice@example.com)" -eq 1 ]
	dsn=$(ls "$(mk_imapd_home alice@example.com)"/mail/new/*)
	run cat $dsn
	assert_output --partial "Content-Type: multipart/report; report-type=delivery-status"
	assert_output --partial "Final-Recipient: rfc822; carol@example.net"
	assert_output --partial "Status: 5.1.1"
	assert_output --partial "Diagnostic-Code: smtp; 550 5.1.1 <carol@example.net>: no such user"
	assert_output --partial "Subject: two of them"
	refute_output --partial "Final-Recipient: rfc822; dave@example.org"
	[ "$(queue_count)" -eq 0 ]
}

@test "message refused after DATA (554): DSN for every recipient" {
	mk_sink_start
	echo "DATA 554 5.7.1 spam" > "$MK_SINK_DIR/rules"
	mk_smtpd_start --no-flush
	run mk_swaks --to x@example.org,y@example.org
	assert_success
	run mk_relay flush
	assert_success
	dsn=$(ls "$(mk_imapd_home alice@example.com)"/mail/new/*)
	run cat $dsn
	assert_output --partial "Final-Recipient: rfc822; x@example.org"
	assert_output --partial "Final-Recipient: rfc822; y@example.org"
	assert_output --partial "Status: 5.7.1"
	[ "$(queue_count)" -eq 0 ]
}

@test "kill -9 right after 250: the next flush still delivers" {
	mk_sink_start
	mk_smtpd_start --no-flush
	run mk_swaks --to friend@example.org
	assert_success
	while read -r p; do kill -9 "$p" $(pgrep -P "$p") 2>/dev/null; done < "$D/pids"
	rm -f "$D/pids"
	run mk_relay flush
	assert_success
	[ "$(mk_sink_count)" -eq 1 ]
}

@test "kill -9 during DATA: nothing half-written is queued or sent" {
	mk_sink_start
	mk_smtpd_start --no-flush --allow-plaintext
	smtp_py <<'PY' &
c=conn(); login(c)
send(c, b'MAIL FROM:<alice@example.com>\r\nRCPT TO:<friend@example.org>\r\nDATA\r\n')
rd(c); rd(c); rd(c)
send(c, b'From: alice@example.com\r\nSubject: half\r\n\r\n' + b'x' * 50000 + b'\r\n')
time.sleep(5)
PY
	pyp=$!
	for _ in $(seq 50); do ls "$D/state/queue/tmp/"*.msg >/dev/null 2>&1 && break; sleep 0.1; done
	ls "$D/state/queue/tmp/"*.msg
	while read -r p; do kill -9 "$p" $(pgrep -P "$p") 2>/dev/null; done < "$D/pids"
	rm -f "$D/pids"
	kill "$pyp" 2>/dev/null || true
	[ "$(queue_count)" -eq 0 ]
	run mk_relay flush --force
	assert_success
	[ "$(mk_sink_count)" -eq 0 ]
	! ls "$D/state/queue/"*.env 2>/dev/null
}

@test "bad input: bare LF, long lines, over SIZE, pipelining before EHLO, 8-bit garbage, too many errors" {
	echo "max_size = 64k" >> "$MK_IMAPD_CONF"
	mk_smtpd_start --no-flush --allow-plaintext
	run smtp_py <<'PY'
c=conn()
# pipelined before EHLO: each answered, none accepted
send(c, b'MAIL FROM:<alice@example.com>\r\nRCPT TO:<friend@example.org>\r\nDATA\r\n')
for _ in range(3):
    r=rd(c); check(r.startswith('503 5.5.1') or r.startswith('530'), r)
login(c)
send(c, b'X' * 1500 + b'\r\n'); r=rd(c); check(r.startswith('500 5.5.2 Error: line too long'), r)
send(c, b'\xff\xfe\x01garbage\r\n'); r=rd(c); check(r.startswith('500 5.5.2'), r)
send(c, b'MAIL FROM:<alice@example.com> SIZE=999999\r\n'); r=rd(c); check(r.startswith('552 5.3.4'), r)
def msg(body):
    send(c, b'MAIL FROM:<alice@example.com>\r\n'); r=rd(c); check(r.startswith('250'), r)
    send(c, b'RCPT TO:<friend@example.org>\r\n'); r=rd(c); check(r.startswith('250'), r)
    send(c, b'DATA\r\n'); r=rd(c); check(r.startswith('354'), r)
    send(c, body); return rd(c)
r=msg(b'From: alice@example.com\r\n\r\nbare\nLF here\r\n.\r\n'); check(r.startswith('550 5.6.0'), r)
# a bare-LF "end of data" must not end the data (SMTP smuggling)
r=msg(b'From: alice@example.com\r\n\r\nx\n.\nMAIL FROM:<a@b>\r\n.\r\n'); check(r.startswith('550 5.6.0'), r)
r=msg(b'From: alice@example.com\r\n\r\n' + b'y' * 1200 + b'\r\n.\r\n'); check(r.startswith('550 5.6.0'), r)
r=msg(b'From: alice@example.com\r\n\r\n' + (b'z' * 900 + b'\r\n') * 100 + b'.\r\n'); check(r.startswith('552 5.3.4'), r)
r=msg(b'Subject: no from\r\n\r\nbody\r\n.\r\n'); check(r.startswith('553 5.7.1'), r)
# dot-stuffing is undone, and the connection still works
r=msg(b'From: alice@example.com\r\n\r\n..leading dot\r\n.\r\n'); check(r.startswith('250 2.0.0 Ok: queued as'), r)
for i in range(25):
    send(c, b'BOGUS\r\n'); r=rd(c)
    if r.startswith('421'): break
check(r.startswith('421 4.7.0'), r)
PY
	assert_success
	[ "$(queue_count)" -eq 1 ]
	run grep -c $'^\\.leading dot\r$' "$D"/state/queue/*.msg
	assert_output 1
	run grep -c '^\.\.leading' "$D"/state/queue/*.msg
	assert_output 0
}

@test "STARTTLS with pipelined plaintext: the plaintext is discarded" {
	mk_smtpd_start --no-flush
	run smtp_py <<'PY'
c=conn(); send(c, b'EHLO x\r\n'); rd(c)
send(c, b'STARTTLS\r\nRSET\r\n'); r=rd(c); check(r.startswith('220 2.0.0'), r)
ctx=ssl.create_default_context(cafile=os.environ['CA'])
t=ctx.wrap_socket(c, server_hostname='imap.example.com')
send(t, b'NOOP\r\n'); r=rd(t)
# an injected RSET would have answered first with "250 2.0.0 Ok" too: count replies
check(r == '250 2.0.0 Ok\r\n', r)
t.settimeout(1)
try:
    extra=t.recv(100)
except socket.timeout:
    extra=b''
check(extra == b'', extra)
send(t, b'QUIT\r\n'); r=rd(t); check(r.startswith('221'), r)
PY
	assert_success
	run grep -c "event=starttls_injection" "$D/smtpd.log"
	assert_output 1
}

@test "talking before the greeting and stalling clients get clean errors" {
	mk_smtpd_start --no-flush --allow-plaintext --timeout 2
	run smtp_py <<'PY'
c=socket.create_connection(('127.0.0.1',PORT), 10); c.settimeout(10)
send(c, b'EHLO early\r\n'); time.sleep(0.3)
r=rd(c); check(r.startswith('554 5.5.0'), r)
c=conn(); login(c)
send(c, b'MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n')
rd(c); rd(c); rd(c)
send(c, b'From: alice@example.com\r\n\r\npartial')
r=rd(c); check(r.startswith('421 4.4.2'), r)
PY
	assert_success
	[ "$(queue_count)" -eq 0 ]
	! ls "$D/state/queue/tmp/"*.msg 2>/dev/null
}

@test "three failed logins end the session; list --json is valid JSON" {
	mk_smtpd_start --no-flush --allow-plaintext
	run smtp_py <<'PY'
c=conn(); send(c, b'EHLO x\r\n'); rd(c)
bad=base64.b64encode(b'\0alice@example.com\0nope')
for i in range(3):
    send(c, b'AUTH PLAIN '+bad+b'\r\n'); r=rd(c)
    check(r.startswith('535 5.7.8 Error: authentication failed'), r)
r=rd(c); check(r.startswith('421 4.7.0'), r)
PY
	assert_success
	run mk_swaks --to friend@example.org --server 127.0.0.1
	assert_success
	run bash -c "mail-submit-relay -c '$MK_IMAPD_CONF' list --json | $MK_PY -m json.tool"
	assert_success
	assert_output --partial '"state": "pending"'
	run mk_relay list
	assert_success
	[ "$(printf '%s\n' "$output" | awk -F'\t' '{print NF}')" -eq 9 ]
}

@test "usage and config errors use sysexits codes" {
	run mail-submit-relay
	assert_equal "$status" 64
	run mail-submit-relay -c "$MK_IMAPD_CONF" bogus
	assert_equal "$status" 64
	run mail-submit-relay -c /nonexistent/x.conf list
	assert_equal "$status" 78
	run mail-submit-relay --version
	assert_success
}

@test "LDAP users: alice submits, charlie (not in mail_user) gets 535, LDAP down gets 454 4.7.0" {
	load lib/slapd
	mk_smtpd_init "$D"
	mk_slapd_start "$D/slapd"
	mk_slapd_use_in_conf "$MK_IMAPD_CONF" "$D" 2
	mk_smtpd_start --no-flush
	run mk_swaks --to bob@example.com --auth-password "$MK_SLAPD_ALICE_PW"
	assert_success
	assert_output --partial "250 2.0.0 Ok: queued as"
	run mk_swaks --to bob@example.com --auth-user charlie@example.com \
		--auth-password "$MK_SLAPD_CHARLIE_PW" --from charlie@example.com
	assert_failure
	assert_output --partial "535 5.7.8 Error: authentication failed"
	grep -q 'reason="not in group mail_user"' "$D/smtpd.log"
	mk_slapd_stop
	run mk_swaks --to bob@example.com --auth-password "$MK_SLAPD_ALICE_PW"
	assert_failure
	assert_output --partial "454 4.7.0"
	refute_output --partial "535"
}

@test "socket activation: systemd-socket-activate in LISTEN_FDS and inetd (Accept=yes) modes" {
	mk_sink_start
	for mode in listen-fds inetd; do
		MK_SMTPD_PORT=$(mk_free_port)
		if [ "$mode" = inetd ]; then
			systemd-socket-activate --inetd -a -l "127.0.0.1:$MK_SMTPD_PORT" \
				mail-submit-relay -c "$MK_IMAPD_CONF" serve --tls 2>>"$D/smtpd.log" &
		else
			systemd-socket-activate -l "127.0.0.1:$MK_SMTPD_PORT" \
				mail-submit-relay -c "$MK_IMAPD_CONF" serve --tls 2>>"$D/smtpd.log" &
		fi
		echo $! >> "$MK_IMAPD_DIR/pids"
		mk_wait_port "$MK_SMTPD_PORT"
		run swaks --server 127.0.0.1 --port "$MK_SMTPD_PORT" --tls-on-connect \
			--tls-verify --tls-ca-path "$MK_IMAPD_CA" --auth PLAIN \
			--auth-user alice@example.com --auth-password "$MK_IMAPD_PW" \
			--from alice@example.com --to "friend-$mode@example.org" --timeout 20
		assert_success
		assert_output --partial "250 2.0.0 Ok: queued as"
	done
	for _ in $(seq 100); do [ "$(mk_sink_count)" -eq 2 ] && break; sleep 0.1; done
	[ "$(mk_sink_count)" -eq 2 ]
}

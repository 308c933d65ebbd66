#!/usr/bin/env bats
# mail-serve-imap against real clients: python imaplib, openssl s_client,
# curl, mbsync, and dovecot reading the same Maildir.

load lib/common
load lib/imapd
load lib/dovecot

setup() {
	load_bats_libs
	D=$(mk_tmp)
	mk_imapd_init "$D"
}

teardown() {
	mk_imapd_stop
	[ -n "${MK_DOVECOT_DIR:-}" ] && mk_dovecot_stop
	true
}

# An mbsync config syncing alice's mailbox on our server with $D/mbsync/local,
# SHB's channel (Create/Expunge Both, Sync All); arguments: account lines.
mbsync_rc() {
	mkdir -p "$D/mbsync/local"
	printf '%s\n' "$MK_IMAPD_PW" > "$D/mbsync/pw"
	{
		printf 'IMAPAccount t\nPort %s\nUser alice@example.com\nPassCmd "cat %s/mbsync/pw"\n' \
			"$MK_IMAPD_PORT" "$D"
		printf '%s\n' "$@" ""
		cat <<RC
IMAPStore remote
Account t

MaildirStore local
Path $D/mbsync/local/
Inbox $D/mbsync/local/INBOX
SubFolders Verbatim

Channel c
Far :remote:
Near :local:
Patterns *
Create Both
Sync All
Expunge Both
SyncState *
RC
	} > "$D/mbsync/rc"
}

# Sends IMAP lines (one per argument) over openssl s_client and prints the replies.
tls_session() {   # port mode(--tls|--starttls) lines...
	local port=$1 mode=$2
	shift 2
	local extra=()
	[ "$mode" = --starttls ] && extra=(-starttls imap)
	{ for l in "$@"; do printf '%s\r\n' "$l"; sleep 0.3; done; sleep 0.5; } |
		timeout 20 openssl s_client -connect "127.0.0.1:$port" -CAfile "$MK_IMAPD_CA" \
			-verify_return_error -verify_hostname imap.example.com "${extra[@]}" \
			-quiet 2>&1
}

@test "greeting: plaintext login refused without TLS, LOGINDISABLED advertised" {
	mk_imapd_start --allow-plaintext
	mk_imapd_stop
	mk_imapd_start --tls
	mk_imapd_stop
	# a plain port without --allow-plaintext: STARTTLS offered, login refused
	MK_IMAPD_PORT=$(mk_free_port)
	mail-serve-imap -c "$MK_IMAPD_CONF" --listen "127.0.0.1:$MK_IMAPD_PORT" 2>>"$D/imapd.log" &
	echo $! >> "$D/pids"
	mk_wait_port "$MK_IMAPD_PORT"
	run mk_imap_py <<'PY'
m = connect()
check('LOGINDISABLED' in m.capabilities, 'LOGINDISABLED')
check('STARTTLS' in m.capabilities, 'STARTTLS offered')
check('AUTH=PLAIN' not in m.capabilities, 'no AUTH before TLS')
typ, data = m._simple_command('LOGIN', USER, PW) if False else ('', '')
try:
    m.login(USER, PW)
    print('logged in'); sys.exit(1)
except imaplib.IMAP4.error as e:
    check(b'PRIVACYREQUIRED' in str(e).encode(), 'PRIVACYREQUIRED: %s' % e)
try:
    m.authenticate('PLAIN', lambda _: ('\0%s\0%s' % (USER, PW)).encode())
    print('authenticated'); sys.exit(1)
except imaplib.IMAP4.error as e:
    pass
print('ok')
PY
	assert_success
	assert_output --partial ok
}

@test "implicit TLS: the module's Test Auth recipe answers exactly as dovecot" {
	mk_imapd_start --tls
	run tls_session "$MK_IMAPD_PORT" --tls "a LOGIN alice@example.com $MK_IMAPD_PW" "b LOGOUT"
	assert_output --partial "a OK [CAPABILITY IMAP4rev1"
	assert_output --partial "] Logged in"
	run tls_session "$MK_IMAPD_PORT" --tls "a LOGIN alice@example.com wrong" "b LOGOUT"
	assert_output --partial "a NO [AUTHENTICATIONFAILED] Authentication failed."
	run tls_session "$MK_IMAPD_PORT" --tls "a LOGIN nobody@example.com wrong" "b LOGOUT"
	assert_output --partial "a NO [AUTHENTICATIONFAILED] Authentication failed."
	# the password never reaches the log
	run grep -c "$MK_IMAPD_PW" "$D/imapd.log"
	assert_output 0
}

@test "STARTTLS: login after the upgrade; TLS 1.0/1.1 refused" {
	MK_IMAPD_PORT=$(mk_free_port)
	mail-serve-imap -c "$MK_IMAPD_CONF" --listen "127.0.0.1:$MK_IMAPD_PORT" 2>>"$D/imapd.log" &
	echo $! >> "$D/pids"
	mk_wait_port "$MK_IMAPD_PORT"
	run tls_session "$MK_IMAPD_PORT" --starttls "a CAPABILITY" "b LOGIN alice@example.com $MK_IMAPD_PW" "c LOGOUT"
	assert_output --partial "AUTH=PLAIN"
	assert_output --partial "b OK [CAPABILITY IMAP4rev1"
	run timeout 10 openssl s_client -connect "127.0.0.1:$MK_IMAPD_PORT" -starttls imap -tls1_1 </dev/null
	assert_failure
}

@test "AUTHENTICATE PLAIN with SASL-IR and LOGIN; bad base64 is BAD" {
	mk_imapd_start
	run mk_imap_py <<'PY'
m = connect()
typ, _ = m.authenticate('PLAIN', lambda _: ('\0%s\0%s' % (USER, PW)).encode())
check(typ == 'OK', 'PLAIN')
m.logout()
m = connect()
resp = iter([USER.encode(), PW.encode()])
typ, _ = m.authenticate('LOGIN', lambda _: next(resp))
check(typ == 'OK', 'LOGIN')
m.logout()
# SASL-IR and an authzid that is not the user (proxy auth refused)
import base64
s = socket.create_connection((HOST, PORT)); f = s.makefile('rwb')
f.readline()
ir = base64.b64encode(('\0%s\0%s' % (USER, PW)).encode()).decode()
f.write(('a AUTHENTICATE PLAIN %s\r\n' % ir).encode()); f.flush()
check(f.readline().startswith(b'a OK [CAPABILITY'), 'SASL-IR login')
f.write(b'b LOGOUT\r\n'); f.flush()
s = socket.create_connection((HOST, PORT)); f = s.makefile('rwb'); f.readline()
ir = base64.b64encode(('bob@example.com\0%s\0%s' % (USER, PW)).encode()).decode()
f.write(('a AUTHENTICATE PLAIN %s\r\n' % ir).encode()); f.flush()
check(f.readline().startswith(b'a NO [AUTHORIZATIONFAILED]'), 'proxy auth refused')
f.write(b'b AUTHENTICATE PLAIN !!!notbase64\r\n'); f.flush()
check(f.readline().startswith(b'b BAD'), 'bad base64')
print('ok')
PY
	assert_success
	assert_output --partial ok
}

@test "a full client session: LIST, CREATE, APPEND, SELECT, FETCH, STORE, COPY, MOVE, EXPUNGE, STATUS" {
	mk_imapd_start
	run mk_imap_py <<'PY'
m = login()
typ, boxes = m.list()
names = [b.decode() for b in boxes]
check(any('\\Sent) "/" Sent' in n for n in names), 'Sent with \\Sent in plain LIST: %s' % names)
check(any('\\Junk' in n and 'Junk' in n for n in names), 'Junk')
check(any('Archive' in n for n in names), 'Archive created (auto = create)')
typ, subs = m.lsub()
check(not any(b'Archive' in s for s in subs), 'Archive not subscribed')
check(any(b'Sent' in s for s in subs), 'Sent subscribed')
check(m.create('Work/Projects')[0] == 'OK', 'create nested')
check(m.create('Work/Projects')[0] == 'NO', 'create twice')
msg = (b"From: Bob <bob@example.org>\r\nTo: alice@example.com\r\nSubject: Hello\r\n"
       b"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@x>\r\n\r\nHi Alice\r\n")
typ, data = m.append('INBOX', '(\\Flagged)', '"01-Jan-2020 10:00:00 +0000"', msg)
check(typ == 'OK' and b'APPENDUID' in data[0], 'append: %s' % data)
m.append('INBOX', None, None, msg.replace(b'Hello', b'Second'))
m.append('INBOX', None, None, msg.replace(b'Hello', b'Third'))
typ, data = m.append('Nonexistent', None, None, msg)
check(typ == 'NO' and b'TRYCREATE' in data[0], 'TRYCREATE')
typ, data = m.select('INBOX')
check(data == [b'3'], 'exists 3: %s' % data)
typ, data = m.fetch('1', '(UID FLAGS INTERNALDATE RFC822.SIZE)')
d = data[0].decode()
check('UID 1' in d and '\\Flagged' in d and '01-Jan-2020 10:00:00 +0000' in d, d)
check('RFC822.SIZE %d' % len(msg) in d, d)
typ, data = m.fetch('1', '(BODY.PEEK[])')
check(data[0][1] == msg, 'BODY[] round trip')
typ, data = m.fetch('2', '(BODY[HEADER.FIELDS (SUBJECT)])')
check(data[0][1] == b'Subject: Second\r\n\r\n', data)
typ, data = m.fetch('2', '(FLAGS)')
check(b'\\Seen' in data[0], 'BODY[] sets \\Seen')
typ, data = m.fetch('1:3', '(BODY.PEEK[]<0.4>)')
check(data[0][1] == b'From', 'partial')
typ, data = m.store('1', '+FLAGS', '(\\Deleted $Label1)')
check(typ == 'OK' and data[0] and b'\\Deleted' in data[0] and b'$Label1' in data[0], data)
typ, data = m._simple_command('UID', 'COPY', '2', 'Work/Projects')
check(typ == 'OK' and b'COPYUID' in data[0], data)
typ, data = m._simple_command('MOVE', '3', 'Junk')
check(typ == 'OK', 'move')
check(m.untagged_responses.get('EXPUNGE') == [b'3'], m.untagged_responses)
m.untagged_responses.clear()
typ, data = m.expunge()
check(data == [b'1'], 'expunge %s' % data)
typ, data = m.status('Work/Projects', '(MESSAGES UIDNEXT UNSEEN)')
check(b'MESSAGES 1 UIDNEXT 2 UNSEEN 0' in data[0], data)
typ, data = m.status('Junk', '(MESSAGES)')
check(b'MESSAGES 1' in data[0], data)
check(m.rename('Work', 'Office')[0] == 'OK', 'rename')
typ, data = m.status('Office/Projects', '(MESSAGES)')
check(b'MESSAGES 1' in data[0], data)
check(m.delete('Office')[0] == 'NO', 'delete parent with children')
check(m.delete('Office/Projects')[0] == 'OK', 'delete leaf')
check(m.delete('INBOX')[0] == 'NO', 'delete INBOX')
check(m.create('../etc')[0] == 'NO', '../etc refused')
m.logout()
print('ok')
PY
	assert_success
	assert_output --partial ok
}

@test "dovecot reads what we wrote, and we read what dovecot wrote, identically" {
	mk_imapd_start
	run mk_imap_py <<'PY'
m = login()
m.create('Lists/Debian')
for i in range(5):
    body = ("From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.org>\r\nTo: a@example.com, (group) undisclosed:;\r\n"
            "Subject: msg %d\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=XX\r\n\r\n"
            "--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain %d\r\n--XX\r\n"
            "Content-Type: text/html\r\n\r\n<p>%d</p>\r\n--XX--\r\n" % (i, i, i)).encode()
    m.append('Lists/Debian' if i % 2 else 'INBOX', '(\\Seen)' if i == 2 else None, None, body)
m.logout()
print('ok')
PY
	assert_success
	home=$(mk_imapd_home alice@example.com)
	mk_dovecot_init "$D/dovecot"
	mk_dovecot_add_user alice@example.com pw "$home"
	chown -R "$MK_TEST_USER" "$home"
	mk_dovecot_start
	run mk_doveadm mailbox status -u alice@example.com "messages uidnext uidvalidity" INBOX
	assert_output --regexp "messages=3 uidnext=4 uidvalidity=[0-9]+"
	ours_uv=$(head -1 "$home/mail/dovecot-uidlist" | sed 's/.* V\([0-9]*\).*/\1/')
	assert_output --partial "uidvalidity=$ours_uv"
	run mk_doveadm mailbox status -u alice@example.com "messages uidnext" Lists/Debian
	assert_output --partial "messages=2 uidnext=3"
	# dovecot delivers one more; both servers then show the same FETCH data
	printf 'From: x@example.org\nSubject: via dovecot\n\nbody\n' |
		mk_doveadm save -u alice@example.com -m INBOX
	for port in "$MK_DOVECOT_PORT" "$MK_IMAPD_PORT"; do
		HOST=127.0.0.1 PORT=$port PW_D=pw PW=$MK_IMAPD_PW "$MK_PY" - > "$D/fetch.$port" <<'PY'
import imaplib, os
m = imaplib.IMAP4('127.0.0.1', int(os.environ['PORT']))
pw = os.environ['PW_D'] if os.environ['PORT'] != os.environ.get('OURS') else os.environ['PW']
try:
    m.login('alice@example.com', os.environ['PW_D'])
except imaplib.IMAP4.error:
    m = imaplib.IMAP4('127.0.0.1', int(os.environ['PORT'])); m.login('alice@example.com', os.environ['PW'])
m.select('INBOX', readonly=True)
typ, data = m.fetch('1:*', '(UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[])')
for d in data:
    print(d if isinstance(d, bytes) else d[0] + b'|' + d[1])
PY
	done
	run diff "$D/fetch.$MK_DOVECOT_PORT" "$D/fetch.$MK_IMAPD_PORT"
	assert_success
	run grep -c "UID 4" "$D/fetch.$MK_IMAPD_PORT"
	assert_output 1
}

@test "IDLE wakes up when another process delivers, and sessions see each other's changes" {
	mk_imapd_start
	run mk_imap_py <<'PY'
a = login(); a.select('INBOX')
b = login()
b.append('INBOX', None, None, b'Subject: one\r\n\r\nx\r\n')
a.untagged_responses.clear()
typ, _ = a.noop()
check(a.untagged_responses.get('EXISTS') == [b'1'], 'EXISTS after NOOP: %s' % a.untagged_responses)
# IDLE on a raw socket: the other session appends while we idle
s = socket.create_connection((HOST, PORT)); f = s.makefile('rwb'); f.readline()
f.write(('l LOGIN %s %s\r\n' % (USER, PW)).encode()); f.flush(); f.readline()
f.write(b's SELECT INBOX\r\n'); f.flush()
while not f.readline().startswith(b's OK'): pass
f.write(b'i IDLE\r\n'); f.flush()
check(f.readline().startswith(b'+'), 'continuation')
t0 = time.time()
b.append('INBOX', None, None, b'Subject: two\r\n\r\ny\r\n')
line = f.readline()
check(line.strip() == b'* 2 EXISTS', 'IDLE saw %r' % line)
check(time.time() - t0 < 3, 'IDLE woke within 3 s')
f.write(b'DONE\r\n'); f.flush()
while True:
    l = f.readline()
    if l.startswith(b'i '): break
check(l.startswith(b'i OK'), l)
# flag change and expunge by b show up in a
b.select('INBOX'); b.store('1', '+FLAGS', '\\Deleted'); b.expunge()
a.untagged_responses.clear()
a.noop()
check(a.untagged_responses.get('EXPUNGE') == [b'1'], 'EXPUNGE seen: %s' % a.untagged_responses)
print('ok')
PY
	assert_success
	assert_output --partial ok
}

@test "APPEND of a 50 MB message streams to disk: server memory stays small" {
	mk_imapd_start
	run mk_imap_py <<'PY'
import subprocess
m = login()
body = b'Subject: big\r\n\r\n' + (b'x' * 998 + b'\r\n') * 50000
t = m.append('INBOX', None, None, body)
check(t[0] == 'OK', t)
# the forked child serving us: its peak RSS
me = m.socket().getsockname()[1]
out = subprocess.run(['ss', '-tnp', 'dst', '127.0.0.1:%d' % me], capture_output=True, text=True).stdout
import re
pids = re.findall(r'pid=(\d+)', out)
check(pids, 'server pid from ss: %s' % out)
hwm = [l for l in open('/proc/%s/status' % pids[0]) if l.startswith('VmHWM')][0]
kb = int(hwm.split()[1])
print('server VmHWM kB', kb)
m.select('INBOX')
typ, data = m.fetch('1', '(RFC822.SIZE)')
check(b'RFC822.SIZE %d' % len(body) in data[0], data)
check(kb < 40000 or os.environ.get('ASAN'), 'peak RSS %d kB' % kb)
print('ok')
PY
	assert_success
	assert_output --partial ok
}

@test "curl and mbsync work as clients" {
	mk_imapd_start
	run mk_imap_py <<'PY'
m = login()
m.append('INBOX', None, None, b'From: a@example.org\r\nSubject: for curl\r\n\r\nhello curl\r\n')
print('ok')
PY
	run curl -s --user "alice@example.com:$MK_IMAPD_PW" "imap://127.0.0.1:$MK_IMAPD_PORT/INBOX;UID=1"
	assert_success
	assert_output --partial "hello curl"
	run curl -s --user "alice@example.com:$MK_IMAPD_PW" "imap://127.0.0.1:$MK_IMAPD_PORT/"
	assert_output --partial '"/" Sent'
	mkdir -p "$D/mbsync/local"
	printf '%s\n' "$MK_IMAPD_PW" > "$D/mbsync/pw"
	mbsync_rc "Host 127.0.0.1" "SSLType None" "AuthMechs LOGIN"
	run timeout 60 mbsync -c "$D/mbsync/rc" -a
	assert_success
	run grep -rl "hello curl" "$D/mbsync/local/INBOX"
	assert_success
	[ -d "$D/mbsync/local/Sent" ]
}

@test "server started as root serves the session as vmail_user" {
	mk_imapd_start
	run mk_imap_py <<'PY'
import subprocess, re
m = login()
me = m.socket().getsockname()[1]
out = subprocess.run(['ss', '-tnp', 'dst', '127.0.0.1:%d' % me], capture_output=True, text=True).stdout
pid = re.findall(r'pid=(\d+)', out)[0]
uid = [l for l in open('/proc/%s/status' % pid) if l.startswith('Uid:')][0].split()[1:]
import pwd
want = str(pwd.getpwnam('mktest').pw_uid)
check(all(u == want for u in uid), 'uids %s want %s' % (uid, want))
print('ok')
PY
	assert_success
	assert_output --partial ok
}

@test "bad input: garbage commands get BAD, overlong lines are refused, the session survives" {
	mk_imapd_start
	run mk_imap_py <<'PY'
s = socket.create_connection((HOST, PORT)); f = s.makefile('rwb'); f.readline()
f.write(b'a1 FOO\r\n'); f.flush(); check(f.readline().startswith(b'a1 BAD'), 'unknown cmd')
f.write(b'a2 SELECT INBOX\r\n'); f.flush(); check(f.readline().startswith(b'a2 BAD'), 'select before login')
f.write(b'a3 LOGIN "unterminated\r\n'); f.flush(); check(b'BAD' in f.readline(), 'syntax')
f.write(b'a4 ' + b'x' * 20000 + b'\r\n'); f.flush(); check(b'BAD' in f.readline(), 'long line')
f.write(b'a5 LOGIN {99999}\r\n'); f.flush(); l = f.readline(); check(b'BAD' in l or b'NO' in l, 'big literal before auth %r' % l)
f.write(('a6 LOGIN %s %s\r\n' % (USER, PW)).encode()); f.flush(); check(f.readline().startswith(b'a6 OK'), 'still works')
f.write(b'a7 FETCH 1 FLAGS\r\n'); f.flush(); check(f.readline().startswith(b'a7 BAD'), 'fetch unselected')
f.write(b'a8 SELECT INBOX\r\n'); f.flush()
while not f.readline().startswith(b'a8 '): pass
f.write(b'a9 FETCH 5 FLAGS\r\n'); f.flush(); check(f.readline().startswith(b'a9 BAD'), 'seq beyond EXISTS')
f.write(b'b1 STORE 1:* +FLAGS (\\Bogus)\r\n'); f.flush(); check(f.readline().startswith(b'b1 BAD'), 'bogus flag')
f.write(b'b2 LOGOUT\r\n'); f.flush(); check(f.readline().startswith(b'* BYE'), 'bye')
print('ok')
PY
	assert_success
	assert_output --partial ok
}

@test "SEARCH: flags, headers, body, dates, sizes, OR/NOT, UID SEARCH and ESEARCH" {
	mk_imapd_start
	run mk_imap_py <<'PY'
m = login()
msgs = [
  (b"From: Alice <alice@example.org>\r\nSubject: Quarterly report\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nThe numbers are UP.\r\n", '(\\Seen)', '"02-Mar-2026 10:00:00 +0000"'),
  (b"From: Bob <bob@example.org>\r\nSubject: lunch?\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\n\r\nPizza at noon\r\n", None, '"03-Mar-2026 10:00:00 +0000"'),
  (b"From: Carol <carol@example.net>\r\nSubject: Re: Quarterly report\r\nDate: Wed, 4 Mar 2026 10:00:00 +0000\r\n\r\n" + b"long line\r\n" * 500, '(\\Flagged $Work)', '"04-Mar-2026 10:00:00 +0000"'),
]
for body, flags, date in msgs:
    m.append('INBOX', flags, date, body)
m.select('INBOX')
def search(*q):
    typ, data = m.search(None, *q)
    check(typ == 'OK', 'search %s: %s' % (q, data))
    return data[0].decode().split()
check(search('ALL') == ['1', '2', '3'], 'ALL')
check(search('UNSEEN') == ['2', '3'], 'UNSEEN')
check(search('FLAGGED') == ['3'], 'FLAGGED')
check(search('KEYWORD', '$Work') == ['3'], 'KEYWORD')
check(search('SUBJECT', 'quarterly') == ['1', '3'], 'SUBJECT case-insensitive')
check(search('FROM', 'bob') == ['2'], 'FROM')
check(search('BODY', 'pizza') == ['2'], 'BODY')
check(search('TEXT', 'carol') == ['3'], 'TEXT covers headers')
check(search('SINCE', '03-Mar-2026') == ['2', '3'], 'SINCE')
check(search('BEFORE', '03-Mar-2026') == ['1'], 'BEFORE')
check(search('SENTON', '04-Mar-2026') == ['3'], 'SENTON')
check(search('LARGER', '1000') == ['3'], 'LARGER')
check(search('OR', 'FROM', 'alice', 'FROM', 'bob') == ['1', '2'], 'OR')
check(search('NOT', 'SEEN', 'NOT', 'FLAGGED') == ['2'], 'NOT')
check(search('2:*') == ['2', '3'], 'seqset')
check(search('CHARSET', 'UTF-8', 'SUBJECT', 'lunch') == ['2'], 'CHARSET UTF-8')
typ, data = m.search('KOI8-R', 'ALL')
check(typ == 'NO' and b'BADCHARSET' in data[0], 'BADCHARSET %s' % data)
typ, data = m.uid('SEARCH', 'UNSEEN')
check(data[0].split() == [b'2', b'3'], 'UID SEARCH')
typ, data = m._simple_command('SEARCH', 'RETURN', '(MIN MAX COUNT ALL)', 'UNSEEN')
es = m.untagged_responses.get('ESEARCH')
check(es and b'MIN 2 MAX 3 COUNT 2 ALL 2:3' in es[0], 'ESEARCH %s' % es)
print('ok')
PY
	assert_success
	assert_output --partial ok
}

@test "socket activation: systemd-socket-activate in LISTEN_FDS and inetd (Accept=yes) modes" {
	port=$(mk_free_port)
	systemd-socket-activate -l "127.0.0.1:$port" \
		mail-serve-imap -c "$MK_IMAPD_CONF" --allow-plaintext 2>>"$D/imapd.log" &
	echo $! >> "$D/pids"
	mk_wait_port "$port"
	MK_IMAPD_PORT=$port run mk_imap_py <<'PY'
for i in range(3):
    m = login(); m.select('INBOX'); m.logout()
print('ok')
PY
	assert_success
	assert_output --partial ok
	port=$(mk_free_port)
	systemd-socket-activate --inetd -a -l "127.0.0.1:$port" \
		mail-serve-imap -c "$MK_IMAPD_CONF" --allow-plaintext 2>>"$D/imapd.log" &
	echo $! >> "$D/pids"
	mk_wait_port "$port"
	MK_IMAPD_PORT=$port run mk_imap_py <<'PY'
m = login()
typ, data = m.append('INBOX', None, None, b'Subject: inetd\r\n\r\nx\r\n')
check(typ == 'OK', data)
m.logout()
print('ok')
PY
	assert_success
	assert_output --partial ok
}

@test "LDAP users (lldap layout): alice logs in, charlie is refused, slapd down answers NO [UNAVAILABLE]" {
	load lib/slapd
	mk_slapd_start "$D/slapd"
	mk_slapd_use_in_conf "$MK_IMAPD_CONF" "$D" 2
	# the server reads the admin password as root, then serves as mktest
	mk_imapd_start
	run mk_imap_py <<PY
m = connect()
m.login('alice@example.com', '$MK_SLAPD_ALICE_PW')
m.select('INBOX')
m.logout()
m = connect()
try:
    m.login('charlie@example.com', '$MK_SLAPD_CHARLIE_PW'); print('charlie got in'); sys.exit(1)
except imaplib.IMAP4.error as e:
    check('AUTHENTICATIONFAILED' in str(e), e)
print('ok')
PY
	assert_success
	assert_output --partial ok
	[ -d "$(mk_imapd_home alice@example.com)/mail/cur" ]
	grep -q 'reason="not in group mail_user"' "$D/imapd.log"
	mk_slapd_stop
	run mk_imap_py <<PY
m = connect()
try:
    m.login('alice@example.com', '$MK_SLAPD_ALICE_PW'); print('logged in without LDAP'); sys.exit(1)
except imaplib.IMAP4.error as e:
    check('[UNAVAILABLE]' in str(e), e)
print('ok')
PY
	mk_slapd_stop
	assert_success
	assert_output --partial ok
}

@test "COMPRESS=DEFLATE: the session continues compressed" {
	mk_imapd_start
	run mk_imap_py <<'PY'
import zlib
s = socket.create_connection((HOST, PORT)); f = s.makefile('rwb'); f.readline()
f.write(('a LOGIN %s %s\r\n' % (USER, PW)).encode()); f.flush(); f.readline()
f.write(b'b COMPRESS DEFLATE\r\n'); f.flush()
check(f.readline().startswith(b'b OK'), 'compress ok')
comp = zlib.compressobj(6, zlib.DEFLATED, -15); dec = zlib.decompressobj(-15)
def send(line):
    s.sendall(comp.compress(line) + comp.flush(zlib.Z_SYNC_FLUSH))
buf = b''
def readline():
    global buf
    while b'\r\n' not in buf:
        buf += dec.decompress(s.recv(65536))
    l, buf = buf.split(b'\r\n', 1)
    return l
send(b'c LIST "" "*"\r\n')
lines = []
while True:
    l = readline(); lines.append(l)
    if l.startswith(b'c '): break
check(lines[-1].startswith(b'c OK') and any(b'Sent' in l for l in lines), lines)
send(b'd COMPRESS DEFLATE\r\n')
check(readline().startswith(b'd NO'), 'second COMPRESS refused')
send(b'e LOGOUT\r\n')
print('ok')
PY
	assert_success
	assert_output --partial ok
}

@test "concurrency: deliveries into INBOX while two sessions STORE and EXPUNGE; views stay consistent, IDLE wakes" {
	mk_imapd_start
	home=$(mk_imapd_home alice@example.com)
	run mk_imap_py <<'PY'
m = login(); m.select('INBOX'); m.logout()
print('ok')
PY
	# a mail-pull-style writer: 300 deliveries through lib/maildir, as mktest
	setpriv --reuid="$MK_TEST_USER" --regid="$(id -g "$MK_TEST_USER")" --clear-groups \
		"$MK_BUILD/tests/test_maildir" deliver "$home/mail" 300 &
	writer=$!
	MK_HOME=$home run mk_imap_py <<'PY'
import threading, random
errors = []
def worker(seed):
    rnd = random.Random(seed)
    try:
        m = login(); m.select('INBOX')
        for i in range(60):
            typ, data = m.search(None, 'ALL')
            seqs = data[0].split()
            n = len(seqs)
            if n > 2:
                k = int(rnd.choice(seqs))
                typ, _ = m.store(str(k), '+FLAGS', '(\\Deleted)')
                if typ != 'OK' and typ != 'NO':
                    errors.append(('store', typ))
                if i % 5 == 0:
                    typ, _ = m.expunge()
                    check(typ == 'OK', 'expunge')
            m.untagged_responses.pop('FETCH', None)
            typ, data = m.uid('FETCH', '1:*', '(UID)')
            check(typ == 'OK', 'uid fetch')
            # unsolicited FETCH FLAGS from the other session may be mixed in
            uids = [int(x.split()[2].rstrip(b')')) for x in data if x and b'FLAGS' not in x]
            check(uids == sorted(uids) and len(uids) == len(set(uids)), 'UIDs ascending, unique')
        m.expunge(); m.logout()
    except Exception as e:
        errors.append(repr(e))
ts = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
# a third session idles and must be woken by the deliveries
s = socket.create_connection((HOST, PORT)); f = s.makefile('rwb'); f.readline()
f.write(('l LOGIN %s %s\r\n' % (USER, PW)).encode()); f.flush(); f.readline()
f.write(b's SELECT INBOX\r\n'); f.flush()
while not f.readline().startswith(b's OK'): pass
f.write(b'i IDLE\r\n'); f.flush()
while not f.readline().startswith(b'+'): pass
for t in ts: t.start()
s.settimeout(10)
woke = f.readline()
check(woke.startswith(b'* ') and (b'EXISTS' in woke or b'EXPUNGE' in woke or b'FETCH' in woke),
      'IDLE woke: %r' % woke)
f.write(b'DONE\r\n'); f.flush()
for t in ts: t.join()
check(not errors, errors)
print('ok')
PY
	wait "$writer"
	assert_success
	assert_output --partial ok
	# afterwards: the server's view equals the files on disk, UIDs unique
	run mk_imap_py <<PY
m = login(); typ, data = m.select('INBOX')
n = int(data[0])
import os
files = len(os.listdir('$home/mail/cur')) + len(os.listdir('$home/mail/new'))
check(n == files, 'EXISTS %d == files %d' % (n, files))
typ, data = m.uid('FETCH', '1:*', '(UID)')
uids = [int(x.split()[2].rstrip(b')')) for x in data if x]
check(len(uids) == len(set(uids)) == n, 'unique UIDs')
print('ok', n)
PY
	assert_success
	assert_output --partial ok
}

@test "bad input: parens, literal sizes, sequence sets, 8-bit garbage, name tricks; never a file outside the home" {
	mk_imapd_start
	run mk_imap_py <<'PY'
s = socket.create_connection((HOST, PORT)); f = s.makefile('rwb'); f.readline()
def cmd(line, want=(b'BAD', b'NO')):
    tag = line.split(b' ')[0]
    f.write(line + b'\r\n'); f.flush()
    while True:
        l = f.readline()
        check(l, 'connection closed after %r' % line)
        if l.startswith(tag + b' ') or l.startswith(b'* BAD'):
            break
    check(any(w in l for w in want), '%r -> %r' % (line, l))
f.write(('l LOGIN %s %s\r\n' % (USER, PW)).encode()); f.flush(); f.readline()
cmd(b'a1 SELECT INBOX', (b'OK',))
cmd(b'a2 FETCH 1:* (FLAGS')
cmd(b'a3 FETCH 1 (BODY[HEADER.FIELDS (From)]')
cmd(b'a4 SEARCH ((((((((((((((((((((((((((((((((((((((((ALL))))))))))))))))))))))))))))))))))))))))')
cmd(b'a5 APPEND INBOX {-5}')
cmd(b'a6 APPEND INBOX {99999999999999999999}')
cmd(b'a7 FETCH 0 FLAGS')
cmd(b'a8 FETCH 4294967296 FLAGS')
cmd(b'a9 FETCH 1:2:3 FLAGS')
cmd(b'b1 UID FETCH *:* FLAGS', (b'OK', b'BAD', b'NO'))
cmd(b'b2 \xff\xfe\x00garbage \x80\x81')
cmd(b'b3 CREATE "../../../../tmp/evil"')
cmd(b'b4 CREATE "/etc/evil"')
cmd(b'b5 CREATE "a//b"')
cmd(b'b6 CREATE "cur"')
cmd(b'b7 RENAME INBOX "../escape"')
cmd(b'b8 SELECT "~root"')
cmd(b'b9 STATUS "../../state" (MESSAGES)')
cmd(b'c1 COPY 1 "../x"', (b'BAD', b'NO'))
cmd(b'c2 NOOP', (b'OK',))
print('ok')
PY
	assert_success
	assert_output --partial ok
	[ ! -e /tmp/evil ] && [ ! -e /etc/evil ] && [ ! -e "$D/mail/escape" ] && [ ! -e "$D/mail/test/escape" ]
	# nothing was created above the user's mail directory
	run find "$D/mail" -maxdepth 3 -newer "$D/mailkeep.conf" -not -path "*alice@example.com*"
	refute_output --partial evil
}

@test "curl over imaps and mbsync both ways (our server to a scratch Maildir and back)" {
	mk_imapd_start --tls
	run mk_imap_py <<'PY'
PY
	printf 'Subject: one\r\nFrom: a@example.org\r\n\r\nfirst\r\n' > "$D/m1"
	run curl -s --cacert "$MK_IMAPD_CA" --resolve "imap.example.com:$MK_IMAPD_PORT:127.0.0.1" \
		--user "alice@example.com:$MK_IMAPD_PW" -T "$D/m1" "imaps://imap.example.com:$MK_IMAPD_PORT/INBOX"
	assert_success
	run curl -s --cacert "$MK_IMAPD_CA" --resolve "imap.example.com:$MK_IMAPD_PORT:127.0.0.1" \
		--user "alice@example.com:$MK_IMAPD_PW" "imaps://imap.example.com:$MK_IMAPD_PORT/INBOX;UID=1"
	assert_success
	assert_output --partial first
	mkdir -p "$D/mbsync/local"
	printf '%s\n' "$MK_IMAPD_PW" > "$D/mbsync/pw"
	mbsync_rc "Host imap.example.com" "SSLType IMAPS" "CertificateFile $MK_IMAPD_CA"
	# mbsync resolves the name itself: map it to loopback for this process only
	printf '127.0.0.1 imap.example.com\n' > "$D/hosts"
	run unshare -m sh -c "mount --bind '$D/hosts' /etc/hosts && timeout 60 mbsync -c '$D/mbsync/rc' -a"
	if [ "$status" -ne 0 ] && echo "$output" | grep -q "unshare\|mount"; then
		skip "cannot give mbsync a private /etc/hosts here: $output"
	fi
	assert_success
	grep -rlq first "$D/mbsync/local/INBOX"
	# a message saved locally and a folder created locally go up
	mkdir -p "$D/mbsync/local/Notes/cur" "$D/mbsync/local/Notes/new" "$D/mbsync/local/Notes/tmp"
	printf 'Subject: from mbsync\nFrom: a@example.org\n\nsecond\n' > "$D/mbsync/local/Notes/new/1.local"
	run unshare -m sh -c "mount --bind '$D/hosts' /etc/hosts && timeout 60 mbsync -c '$D/mbsync/rc' -a"
	assert_success
	run curl -s --cacert "$MK_IMAPD_CA" --resolve "imap.example.com:$MK_IMAPD_PORT:127.0.0.1" \
		--user "alice@example.com:$MK_IMAPD_PW" "imaps://imap.example.com:$MK_IMAPD_PORT/Notes;UID=1"
	assert_success
	assert_output --partial second
}

@test "APPEND staging files left by a killed session are removed at the next login (only ours, only old)" {
	mk_imapd_start
	h=$(mk_imapd_home alice@example.com)
	run mk_imap_py <<'PY'
m = login(); m.logout()
print('ok')
PY
	touch -d "2 hours ago" "$h/mail/tmp/mailkeep-append.1.0" "$h/mail/tmp/someone-elses"
	touch "$h/mail/tmp/mailkeep-append.2.0"
	run mk_imap_py <<'PY'
m = login(); m.logout()
print('ok')
PY
	assert_success
	[ ! -e "$h/mail/tmp/mailkeep-append.1.0" ]
	[ -e "$h/mail/tmp/mailkeep-append.2.0" ]
	[ -e "$h/mail/tmp/someone-elses" ]
}

@test "ENVELOPE answered again from the session's cache stays right across folders and expunges" {
	mk_imapd_start
	run mk_imap_py <<'PY'
m = login()
for box, subj in (('INBOX', 'first of inbox'), ('EnvOther', 'first of other')):
    if box != 'INBOX':
        m.create(box)
    m.append(box, None, None, ('From: a@example.com\r\nSubject: %s\r\n\r\nbody\r\n' % subj).encode())
def env(box):
    typ, d = m.select(box)
    check(typ == 'OK', d)
    out = []
    for _ in range(3):   # the second and third come from the cache
        typ, d = m.uid('FETCH', '1', '(ENVELOPE INTERNALDATE)')
        check(typ == 'OK', d)
        out.append(d[0])
    check(out[0] == out[1] == out[2], 'cached answer differs: %r' % out)
    return out[0]
a, b = env('INBOX'), env('EnvOther')
check(b'first of inbox' in a and b'first of other' in b, (a, b))
# UID 1 of INBOX again after the other folder: not the other folder's envelope
check(env('INBOX') == a, 'INBOX after EnvOther')
# a new message with a new UID gets its own envelope
m.append('INBOX', None, None, b'From: a@example.com\r\nSubject: second\r\n\r\nx\r\n')
m.select('INBOX')
typ, d = m.uid('FETCH', '1:*', '(ENVELOPE)')
subs = [x for x in d if isinstance(x, bytes)]
check(len(subs) == 2 and b'first of inbox' in subs[0] and b'"second"' in subs[1], subs)
m.logout()
print('ok')
PY
	echo "$output"
	assert_success
	assert_output --partial ok
}

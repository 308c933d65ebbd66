#!/usr/bin/env bats
# Hardening (issue 8): TLS settings, STARTTLS stripping, privileges and
# secrets, pre-auth memory, faults (read-only and full mail dir, stalled LDAP).
# Load and kill -9 rounds are in hardening-load.bats and hardening-crash.bats.
# Every server runs on 127.0.0.1 high ports, started by tests/lib fixtures.

load lib/common
load lib/smtpd

setup() {
	load_bats_libs
	D=$(mk_tmp)
	mk_smtpd_init "$D"
}

teardown() {
	mk_smtpd_stop
	[ -n "${MK_SLAPD_DIR:-}" ] && mk_slapd_stop
	if [ -n "${MNT:-}" ]; then
		umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	fi
	true
}

# The pid of the newest server started by the fixtures (its --listen parent).
last_server() {
	tail -1 "$MK_IMAPD_DIR/pids"
}

# sslscan against 127.0.0.1:$1; fails (printing why) on a protocol below
# TLS 1.2, a cipher under 128 bits or from a weak family, or no scan at all.
tls_scan_ok() {   # port
	local out
	out=$(timeout 120 sslscan --no-colour --no-heartbleed "127.0.0.1:$1" 2>&1)
	echo "$out"
	echo "$out" | grep -Eq '^TLSv1\.2 +enabled|^TLSv1\.3 +enabled' || { echo "FAILED: no TLS 1.2/1.3"; return 1; }
	for p in SSLv2 SSLv3 'TLSv1\.0' 'TLSv1\.1'; do
		echo "$out" | grep -Eq "^$p +disabled" || { echo "FAILED: $p not disabled"; return 1; }
	done
	local ciphers
	ciphers=$(echo "$out" | grep -E '^(Preferred|Accepted) ')
	[ -n "$ciphers" ] || { echo "FAILED: no cipher listed"; return 1; }
	if echo "$ciphers" | awk '$3 < 128 { bad=1 } END { exit !bad }'; then
		echo "FAILED: cipher under 128 bits"; return 1
	fi
	if echo "$ciphers" | grep -Eiq 'NULL|EXP|RC4|DES|MD5|anon|ADH|AECDH|PSK|SRP|IDEA|SEED|CAMELLIA|-CBC-|SHA1?$'; then
		echo "FAILED: weak cipher family"; return 1
	fi
	echo "$out" | grep -Eq 'renegotiation not supported|Secure session renegotiation supported' ||
		{ echo "FAILED: insecure renegotiation"; return 1; }
}

# Number of certificates the server on port $1 sends (implicit TLS).
tls_chain_len() {   # port
	timeout 20 openssl s_client -connect "127.0.0.1:$1" -showcerts -CAfile "$MK_IMAPD_CA" \
		-verify_return_error -verify_hostname imap.example.com </dev/null 2>/dev/null |
		grep -c 'BEGIN CERTIFICATE'
}

@test "TLS: both implicit-TLS servers offer TLS 1.2+ only, no weak cipher, and the full chain" {
	command -v sslscan || skip "sslscan not installed (scripts/deps)"
	mk_imapd_start --tls
	run tls_scan_ok "$MK_IMAPD_PORT"
	assert_success
	run tls_chain_len "$MK_IMAPD_PORT"
	assert_output 2
	mk_sink_start
	mk_smtpd_start --no-flush --tls
	run tls_scan_ok "$MK_SMTPD_PORT"
	assert_success
	run tls_chain_len "$MK_SMTPD_PORT"
	assert_output 2
}

@test "STARTTLS cannot be stripped: IMAP LOGIN/AUTHENTICATE and SMTP AUTH refused before TLS" {
	mk_imapd_start -v   # a plain port without --allow-plaintext
	run mk_imap_py <<'PY'
s = socket.create_connection((HOST, PORT), timeout=10)
f = s.makefile('rb')
greet = f.readline()
check(b'LOGINDISABLED' in greet or b'STARTTLS' in greet or True, greet)
def cmd(line, lit=None):
    s.sendall(line)
    out = []
    while True:
        l = f.readline()
        out.append(l)
        if not l or l.startswith(line.split(b' ')[0] + b' ') :
            return b''.join(out)
        if l.startswith(b'+') and lit is not None:
            s.sendall(lit); lit = None
r = cmd(b'a CAPABILITY\r\n')
check(b'STARTTLS' in r and b'LOGINDISABLED' in r and b'AUTH=' not in r, r)
r = cmd(b'b LOGIN alice@example.com ' + PW.encode() + b'\r\n')
check(b'b NO' in r or b'b BAD' in r, r)
import base64
ir = base64.b64encode(b'\0alice@example.com\0' + PW.encode())
r = cmd(b'c AUTHENTICATE PLAIN ' + ir + b'\r\n')
check(b'c NO' in r or b'c BAD' in r, r)
r = cmd(b'd AUTHENTICATE PLAIN\r\n', ir + b'\r\n')
check(b'd NO' in r or b'd BAD' in r, r)
r = cmd(b'e SELECT INBOX\r\n')
check(b'e NO' in r or b'e BAD' in r, r)
print('imap ok')
PY
	assert_success
	assert_output --partial "imap ok"
	mk_smtpd_start --no-flush
	run "$MK_PY" - "$MK_SMTPD_PORT" "$MK_IMAPD_PW" <<'PY'
import socket, sys, base64
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
f = s.makefile('rb')
def reply():
    out = []
    while True:
        l = f.readline(); out.append(l)
        if len(l) < 4 or l[3:4] != b'-':
            return b''.join(out)
reply()
s.sendall(b'EHLO x\r\n'); r = reply()
assert b'STARTTLS' in r and b'AUTH' not in r, r
ir = base64.b64encode(b'\0alice@example.com\0' + sys.argv[2].encode())
for line in (b'AUTH PLAIN ' + ir, b'AUTH LOGIN', b'MAIL FROM:<alice@example.com>'):
    s.sendall(line + b'\r\n'); r = reply()
    assert r[:1] == b'5', (line, r)
print('smtp ok')
PY
	assert_success
	assert_output --partial "smtp ok"
}

@test "privileges and secrets: sessions run as vmail_user, not dumpable; no secret in argv, environ or logs" {
	load lib/slapd
	mk_slapd_start "$D/slapd"
	mk_slapd_use_in_conf "$MK_IMAPD_CONF" "$D" 5
	mk_sink_start
	mk_imapd_start
	local imap_parent
	imap_parent=$(last_server)
	mk_smtpd_start --no-flush --allow-plaintext
	local smtp_parent
	smtp_parent=$(last_server)
	SEC1=$MK_SLAPD_ADMIN_PW SEC2=$MK_RELAY_PW SEC3=$MK_IMAPD_PW SEC4=$MK_SLAPD_ROOT_PW \
		run "$MK_PY" - "$MK_IMAPD_PORT" "$MK_SMTPD_PORT" "$imap_parent" "$smtp_parent" \
		"$MK_SLAPD_ALICE_PW" <<'PY'
import imaplib, smtplib, os, sys, pwd, subprocess, time
iport, sport, ipar, spar, pw = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
want = pwd.getpwnam('mktest')
def kids(parent):
    return subprocess.run(['pgrep', '-P', parent], capture_output=True, text=True).stdout.split()
def status(pid):
    return {l.split(':')[0]: l.split(':', 1)[1].split() for l in open('/proc/%s/status' % pid)}
def check_session(pid, what):
    st = status(pid)
    assert all(int(u) == want.pw_uid for u in st['Uid']), (what, st['Uid'])
    assert all(int(g) == want.pw_gid for g in st['Gid']), (what, st['Gid'])
    assert st['Groups'] in ([], [str(want.pw_gid)]), (what, st['Groups'])
    # not dumpable: /proc/<pid> files of a non-dumpable process belong to root
    assert os.stat('/proc/%s/status' % pid).st_uid == 0, (what, 'dumpable')
    assert st['CapEff'] == ['0000000000000000'], (what, st['CapEff'])
    print(what, 'pid', pid, 'uid/gid', st['Uid'][0], st['Gid'][0], 'not dumpable')
m = imaplib.IMAP4('127.0.0.1', iport)
try:
    m.login('alice@example.com', 'wrong-' + pw)
except imaplib.IMAP4.error:
    pass
m = imaplib.IMAP4('127.0.0.1', iport)
m.login('alice@example.com', pw)
m.select('INBOX')
ks = kids(ipar)
assert ks, 'no imap session process'
for k in ks:
    check_session(k, 'imap')
s = smtplib.SMTP('127.0.0.1', sport, timeout=10)
s.ehlo()
try:
    s.login('alice@example.com', 'wrong-password-xyz')
except smtplib.SMTPAuthenticationError:
    pass
s.quit()
s = smtplib.SMTP('127.0.0.1', sport, timeout=10)
s.ehlo()
s.login('alice@example.com', pw)
s.sendmail('alice@example.com', ['x@example.org'], b'From: alice@example.com\r\nSubject: t\r\n\r\nhi\r\n')
ks = kids(spar)
assert ks, 'no smtp session process'
for k in ks:
    check_session(k, 'smtp')
# every process of ours: argv and environment free of secrets
secrets = [os.environ[k].encode() for k in ('SEC1', 'SEC2', 'SEC3', 'SEC4')] + [pw.encode()]
procs = [ipar, spar] + kids(ipar) + kids(spar)
for p in procs:
    for f in ('cmdline', 'environ'):
        data = open('/proc/%s/%s' % (p, f), 'rb').read()
        for sec in secrets:
            assert sec not in data, (p, f, 'holds a secret')
print('checked', len(procs), 'processes')
m.logout()
s.quit()
time.sleep(0.5)
print('ok')
PY
	echo "$output"
	assert_success
	assert_output --partial ok
	# the logs hold neither the passwords used nor the secrets files' contents
	for sec in "$MK_SLAPD_ADMIN_PW" "$MK_RELAY_PW" "$MK_IMAPD_PW" "$MK_SLAPD_ALICE_PW" \
		"wrong-$MK_SLAPD_ALICE_PW" wrong-password-xyz; do
		run grep -rF -- "$sec" "$D/imapd.log" "$D/smtpd.log" "$MK_SINK_DIR/stderr"
		assert_failure
	done
	# and both servers did log something (so the grep above looked at real logs)
	grep -q 'login' "$D/imapd.log"
	[ -s "$D/smtpd.log" ]
}

@test "pre-auth memory: 90 connections with partial huge commands and literals stay small; a client is still served" {
	mk_imapd_start
	local parent
	parent=$(last_server)
	run mk_imap_py <<PY
import subprocess
socks = []
kinds = [b'a LOGIN {4000000000}\r\n', b'a APPEND INBOX {99999999}\r\n', b'a LOGIN "' + b'x' * 60000,
         b'a ' + b'(' * 5000, b'a AUTHENTICATE PLAIN\r\n' + b'A' * 60000, b'a LOGIN {1000000+}\r\n' + b'y' * 200000]
for i in range(90):
    s = socket.create_connection((HOST, PORT), timeout=20)
    s.recv(4096)
    try:
        s.sendall(kinds[i % len(kinds)])
    except OSError:
        pass
    socks.append(s)
time.sleep(2)
kids = subprocess.run(['pgrep', '-P', '$parent'], capture_output=True, text=True).stdout.split()
rss = []
for k in kids:
    try:
        st = open('/proc/%s/status' % k).read()
    except OSError:
        continue
    rss.append(int([l for l in st.splitlines() if l.startswith('VmRSS')][0].split()[1]))
print('sessions alive', len(rss), 'max RSS kB', max(rss) if rss else 0, 'sum kB', sum(rss))
limit = 40000 if os.environ.get('ASAN') else 10000
check(all(r < limit for r in rss), 'RSS per session %s' % rss)
# a normal client still gets served while the others hang
m = login(); m.select('INBOX'); m.logout()
for s in socks:
    s.close()
print('ok')
PY
	echo "$output"
	echo "# $(grep '^sessions alive' <<<"$output")" >&3
	assert_success
	assert_output --partial ok
}

@test "fault: read-only mail dir: APPEND answers NO, nothing acknowledged is lost, the session goes on" {
	mk_imapd_start
	run mk_imap_py <<'PY'
m = login()
for i in range(3):
    t = m.append('INBOX', None, None, b'Subject: keep %d\r\n\r\nbody\r\n' % i)
    check(t[0] == 'OK', t)
print('appended')
PY
	assert_success
	local home
	home=$(mk_imapd_home alice@example.com)
	# INBOX's Maildir read-only: APPEND is refused, the rest of the session works
	chmod a-w "$home/mail/new" "$home/mail/cur" "$home/mail/tmp"
	run mk_imap_py <<'PY'
m = login()
t = m.append('INBOX', None, None, b'Subject: lost\r\n\r\nbody\r\n')
print('APPEND into a read-only Maildir:', t)
check(t[0] == 'NO', t)
typ, d = m.select('INBOX')
check(typ == 'OK' and d[0] == b'3', d)
typ, d = m.fetch('1:*', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
subs = sorted(x[1].strip() for x in d if isinstance(x, tuple))
check(subs == [b'Subject: keep 0', b'Subject: keep 1', b'Subject: keep 2'], subs)
typ, d = m.noop()
check(typ == 'OK', d)
print('ok')
PY
	chmod u+w "$home/mail/new" "$home/mail/cur" "$home/mail/tmp"
	echo "$output"
	assert_success
	assert_output --partial ok
	# the whole tree read-only: a clean NO (at LOGIN or at APPEND), nothing lost
	chmod -R a-w "$home/mail"
	run mk_imap_py <<'PY'
m = connect()
try:
    m.login(USER, PW)
except imaplib.IMAP4.error as e:
    print('LOGIN on a read-only tree:', e)
    check('[SERVERBUG]' in str(e) or '[UNAVAILABLE]' in str(e), e)
    print('ok'); sys.exit(0)
t = m.append('INBOX', None, None, b'Subject: lost\r\n\r\nbody\r\n')
print('APPEND on a read-only tree:', t)
check(t[0] == 'NO', t)
print('ok')
PY
	chmod -R u+w "$home/mail"
	echo "$output"
	assert_success
	assert_output --partial ok
	run mk_imap_py <<'PY'
m = login()
typ, d = m.select('INBOX')
check(d[0] == b'3', d)
print('ok')
PY
	assert_success
	! grep -E 'AddressSanitizer|runtime error|signal=' "$D/imapd.log"
}

# A tmpfs of $2 at $1, or "skip" with the reason.
small_fs() {   # dir size
	mkdir -p "$1"
	if ! mount -t tmpfs -o "size=$2,mode=0755" mk-hardening "$1" 2>"$D/mount.err"; then
		echo "cannot mount a tmpfs here: $(cat "$D/mount.err")"
		return 1
	fi
	MNT=$1
}

@test "fault: full disk: IMAP APPEND answers NO [OVERQUOTA]/[SERVERBUG], SMTP DATA 452/451, nothing acknowledged lost" {
	local home
	home=$(mk_imapd_home alice@example.com)
	mkdir -p "$home"
	run small_fs "$D/probe" 1m
	[ "$status" -eq 0 ] || skip "$output"
	umount "$D/probe"
	small_fs "$home" 2m
	chown "$MK_TEST_USER" "$home"
	mk_imapd_start
	run mk_imap_py <<'PY'
m = login()
for i in range(3):
    t = m.append('INBOX', None, None, b'Subject: keep %d\r\n\r\nbody\r\n' % i)
    check(t[0] == 'OK', t)
big = b'Subject: big\r\n\r\n' + (b'x' * 998 + b'\r\n') * 3000
t = m.append('INBOX', None, None, big)
print('APPEND on a full disk:', t)
check(t[0] == 'NO' and (b'[OVERQUOTA]' in t[1][0] or b'[SERVERBUG]' in t[1][0]), t)
typ, d = m.select('INBOX')
check(d[0] == b'3', d)
# the space is free again: the next append works
t = m.append('INBOX', None, None, b'Subject: keep 3\r\n\r\nbody\r\n')
check(t[0] == 'OK', t)
typ, d = m.select('INBOX')
check(d[0] == b'4', d)
print('ok')
PY
	echo "$output"
	assert_success
	assert_output --partial ok
	# no partial file left visible
	for f in "$home"/mail/new/* "$home"/mail/cur/*; do
		[ -e "$f" ] || continue
		grep -q '^body' "$f"
	done
	umount "$MNT"; MNT=

	# the relay's spool on a full filesystem: DATA is answered with 452 or 451
	local q=$MK_IMAPD_DIR/state/queue
	mkdir -p "$q"
	small_fs "$q" 1m
	chown "$MK_TEST_USER" "$q"
	mk_sink_start
	mk_smtpd_start --no-flush --allow-plaintext
	run "$MK_PY" - "$MK_SMTPD_PORT" "$MK_IMAPD_PW" <<'PY'
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=30)
s.login('alice@example.com', sys.argv[2])
s.sendmail('alice@example.com', ['x@example.org'], b'From: alice@example.com\r\nSubject: small\r\n\r\nok\r\n')
big = b'From: alice@example.com\r\nSubject: big\r\n\r\n' + (b'y' * 998 + b'\r\n') * 2000
try:
    s.sendmail('alice@example.com', ['x@example.org'], big)
    print('FAILED: big message accepted on a full spool'); sys.exit(1)
except smtplib.SMTPDataError as e:
    print('DATA refused', e.smtp_code, e.smtp_error)
    assert e.smtp_code in (451, 452), e
except smtplib.SMTPSenderRefused as e:
    print('MAIL refused', e.smtp_code, e.smtp_error)
    assert e.smtp_code in (451, 452), e
s.rset()
s.sendmail('alice@example.com', ['x@example.org'], b'From: alice@example.com\r\nSubject: small2\r\n\r\nok\r\n')
print('ok')
PY
	echo "$output"
	echo "# $(grep -E '^(DATA|MAIL) refused' <<<"$output")" >&3
	assert_success
	assert_output --partial ok
	# both acknowledged messages are queued, complete
	run mk_relay list
	echo "$output"
	[ "$(echo "$output" | grep -c example.org)" -eq 2 ]
}

@test "fault: LDAP that stalls (slapd SIGSTOP): LOGIN answers NO [UNAVAILABLE] within the timeout" {
	load lib/slapd
	mk_slapd_start "$D/slapd"
	mk_slapd_use_in_conf "$MK_IMAPD_CONF" "$D" 2
	mk_imapd_start
	local spid
	spid=$(cat "$MK_SLAPD_DIR/slapd.pid")
	kill -STOP "$spid"
	run mk_imap_py <<PY
m = connect()
t0 = time.time()
try:
    m.login('alice@example.com', '$MK_SLAPD_ALICE_PW'); print('logged in with LDAP stalled'); sys.exit(1)
except imaplib.IMAP4.error as e:
    dt = time.time() - t0
    print('answer after %.1f s: %s' % (dt, e))
    check('[UNAVAILABLE]' in str(e), e)
    check(dt < 2 * 2 + 3, 'took %.1f s' % dt)
print('ok')
PY
	kill -CONT "$spid"
	echo "$output"
	echo "# $(grep '^answer after' <<<"$output")" >&3
	assert_success
	assert_output --partial ok
	# and once slapd runs again, the login works
	run mk_imap_py <<PY
m = connect(); m.login('alice@example.com', '$MK_SLAPD_ALICE_PW'); print('ok')
PY
	assert_success
}

#!/usr/bin/env bats
# Load (issue 8), bounded in time and count, loopback only: 200 IMAP clients
# doing LOGIN/SELECT/FETCH/NOOP/APPEND for ~20 s against one --listen server,
# and 50 concurrent SMTP submissions.  Nothing acknowledged is lost, the
# long-lived --listen parents keep their fds and RSS flat, no crash is logged.
# The --listen parent serves at most --max-connections sessions at once (default 500) and
# closes the connections above that: clients reconnect after a short pause,
# and the refusals are counted.

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

# "fds RSS-kB" of a process
proc_usage() {   # pid
	echo "$(ls "/proc/$1/fd" | wc -l) $(awk '/^VmRSS/ { print $2 }' "/proc/$1/status")"
}

@test "load: 200 IMAP clients for 20 s: every APPEND OK is in the folder; parent fds and RSS flat" {
	mk_imapd_start
	local parent before after
	parent=$(tail -1 "$MK_IMAPD_DIR/pids")
	run mk_imap_py <<'PY'
for user in ('alice@example.com', 'bob@example.com'):
    m = login(user)
    m.create('Load')
    for i in range(20):
        m.append('INBOX', None, None, b'Subject: seed %d\r\n\r\n' % i + b'body\r\n' * 50)
    m.logout()
print('ok')
PY
	assert_success
	before=$(proc_usage "$parent")
	SECS=${MK_LOAD_SECONDS:-20} CLIENTS=${MK_LOAD_CLIENTS:-200} run mk_imap_py <<'PY'
import threading, random
secs = float(os.environ['SECS']); clients = int(os.environ['CLIENTS'])
lock = threading.Lock()
acked = []; errors = []; stats = {'sessions': 0, 'ops': 0, 'refused': 0, 'peak': 0}
live = [0]
end = time.time() + secs
def worker(i):
    n = 0
    while time.time() < end:
        try:
            m = connect()
        except (imaplib.IMAP4.abort, OSError, EOFError):
            with lock: stats['refused'] += 1
            time.sleep(random.uniform(0.05, 0.3)); continue
        with lock:
            live[0] += 1; stats['peak'] = max(stats['peak'], live[0])
        try:
            m.login('alice@example.com' if i % 2 else 'bob@example.com', PW)
            typ, d = m.select('INBOX')
            if typ != 'OK':
                raise Exception('SELECT %s' % d)
            ops = 0
            for _ in range(random.randint(5, 30)):
                if time.time() >= end:
                    break
                r = random.random()
                if r < 0.4:
                    typ, d = m.fetch('1:*', '(FLAGS RFC822.SIZE)')
                elif r < 0.6:
                    typ, d = m.fetch(str(random.randint(1, 20)), '(BODY.PEEK[])')
                elif r < 0.85:
                    typ, d = m.noop()
                else:
                    n += 1
                    s = 'w%03d-%04d' % (i, n)
                    typ, d = m.append('Load', None, None,
                                      (b'Subject: ' + s.encode() + b'\r\n\r\n') + (b'x' * 70 + b'\r\n') * random.randint(1, 300))
                    if typ == 'OK':
                        with lock: acked.append((i % 2, s))
                if typ != 'OK':
                    raise Exception('answer %s %s' % (typ, d))
                ops += 1
            m.logout()
            with lock:
                stats['sessions'] += 1; stats['ops'] += ops + 2
        except (imaplib.IMAP4.abort, OSError, EOFError) as e:
            # closed before the greeting: over the parent's session cap
            with lock: stats['refused'] += 1
            time.sleep(random.uniform(0.05, 0.3))
        except Exception as e:
            with lock: errors.append(repr(e))
        finally:
            with lock: live[0] -= 1
ts = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
for t in ts: t.start()
for t in ts: t.join()
check(not errors, 'errors: %s' % errors[:5])
# every acknowledged APPEND is in its user's Load folder, once
for who, user in ((1, 'alice@example.com'), (0, 'bob@example.com')):
    m = login(user); typ, d = m.select('Load')
    typ, d = m.fetch('1:*', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])') if d[0] != b'0' else ('OK', [])
    have = [x[1].strip().split(b': ', 1)[1].decode() for x in d if isinstance(x, tuple)]
    want = [s for w, s in acked if w == who]
    check(len(have) == len(set(have)), 'duplicates for %s' % user)
    missing = set(want) - set(have)
    check(not missing, 'acknowledged but missing for %s: %s' % (user, sorted(missing)[:10]))
    m.logout()
print('clients %d for %ds: sessions %d, commands %d, appends acked %d, peak concurrent %d, '
      'connections refused over the cap %d' % (clients, secs, stats['sessions'], stats['ops'],
      len(acked), stats['peak'], stats['refused']))
print('ok')
PY
	sleep 1
	after=$(proc_usage "$parent")
	echo "$output"
	echo "# $(grep '^clients' <<<"$output")" >&3
	echo "# imap --listen parent fds/RSS-kB before: $before after: $after" >&3
	assert_success
	assert_output --partial ok
	[ "${before% *}" -eq "${after% *}" ]
	[ "${after#* }" -lt $(( ${before#* } + 2048 )) ]
	! grep -E 'AddressSanitizer|runtime error|signal=|error="' "$D/imapd.log" | grep -v 'reason=too_many'
}

@test "load: 50 concurrent SMTP submissions: every 250 reaches the sink once; parent fds and RSS flat" {
	mk_sink_start
	mk_smtpd_start --allow-plaintext
	local parent before after
	parent=$(tail -1 "$MK_IMAPD_DIR/pids")
	before=$(proc_usage "$parent")
	N=${MK_LOAD_SMTP:-50} run "$MK_PY" - "$MK_SMTPD_PORT" "$MK_IMAPD_PW" <<'PY'
import smtplib, sys, threading, os, time
port, pw, n = int(sys.argv[1]), sys.argv[2], int(os.environ['N'])
acked, errors = [], []
lock = threading.Lock()
go = threading.Barrier(n)
def send(i):
    try:
        s = smtplib.SMTP('127.0.0.1', port, timeout=60)
        s.login('alice@example.com', pw)
        go.wait()
        for k in range(2):
            subj = 'load-%02d-%d' % (i, k)
            s.sendmail('alice@example.com', ['someone%d@example.org' % i],
                       ('From: alice@example.com\r\nSubject: %s\r\n\r\n' % subj).encode() + (b'y' * 70 + b'\r\n') * 70)
            with lock: acked.append(subj)
        s.quit()
    except Exception as e:
        with lock: errors.append(repr(e))
t0 = time.time()
ts = [threading.Thread(target=send, args=(i,)) for i in range(n)]
for t in ts: t.start()
for t in ts: t.join()
print('submissions %d from %d concurrent clients in %.1f s, errors %d' % (len(acked), n, time.time() - t0, len(errors)))
assert not errors, errors[:5]
open(os.environ['BATS_TEST_TMPDIR'] + '/acked', 'w').write('\n'.join(acked) + '\n')
print('ok')
PY
	echo "$output"
	assert_success
	echo "# $(grep '^submissions' <<<"$output")" >&3
	# the background runner delivers; a last flush catches anything left
	for _ in $(seq 60); do
		[ "$(mk_sink_count)" -ge 100 ] && break
		sleep 1
	done
	mk_relay flush || true
	after=$(proc_usage "$parent")
	echo "# smtp --listen parent fds/RSS-kB before: $before after: $after; sink holds $(mk_sink_count)" >&3
	local s
	while read -r s; do
		[ "$(grep -l "^Subject: $s\b" "$MK_SINK_DIR"/msg-*.eml | wc -l)" -eq 1 ] ||
			{ echo "$s delivered $(grep -l "^Subject: $s\b" "$MK_SINK_DIR"/msg-*.eml | wc -l) times"; false; }
	done < "$BATS_TEST_TMPDIR/acked"
	[ "${before% *}" -eq "${after% *}" ]
	[ "${after#* }" -lt $(( ${before#* } + 2048 )) ]
	! grep -E 'AddressSanitizer|runtime error|signal=' "$D/smtpd.log"
}

#!/usr/bin/python3
"""kill -9 rounds for mail-submit-relay (issue 8), run by hardening-relay.bats.

Each round starts `serve --listen` (with its background runner), 4 clients
submitting messages at once (some of ~300 KB, so kills land mid-DATA) and a
loop of `flush --force`; at a random moment every process of ours (found by
the config path in its command line: the --listen parent, the sessions, the
setsid'd background runners, the flushes) gets SIGKILL.  Then:
  - every file in queue/ is complete: each .msg ends with its END line and
    matches its .env's size, no .env lacks its .msg, `list --json` reads
    every .env;
  - the messages already at the sink AND still queued as pending are those
    whose transfer was killed between the provider's 250 and the queue
    update: they may be sent again ("caught"), nothing else may.
After the rounds a final `flush --force` empties the queue, and:
  - every message answered 250 reached the sink (nothing acknowledged lost);
  - a message reached it at most 1 + (times caught) times, and a second
    copy only for a message caught in a killed transfer;
  - every copy at the sink is complete (END line, line count).

  relay-crash.py BIN CONF PORT PW SINK_DIR SINK_PORT QUEUE_DIR ROUNDS LOG
RELAY_CRASH_DEBUG=FILE logs each round's phases with timestamps there.
"""
import json
import os
import random
import re
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time

BIN, CONF, PORT, PW, SINK, SINK_PORT, QDIR, ROUNDS, LOG = sys.argv[1:10]
PORT = int(PORT)
SINK_PORT = int(SINK_PORT)
ROUNDS = int(ROUNDS)
USER = 'alice@example.com'
logf = open(LOG, 'ab', buffering=0)
lock = threading.Lock()
acked = set()       # message ids answered 250
tried = set()       # every message id submitted (whatever the answer)
caught = {}         # id -> rounds in which it sat at the sink and was still pending
stats = {'killed_serve': 0, 'killed_session': 0, 'killed_runner': 0, 'killed_flush': 0,
         'killed_mid_data': 0, 'flush_runs': 0}


def fail(msg):
    print('FAILED:', msg)
    sys.exit(1)


def body(mid, lines):
    head = ('From: Alice <%s>\r\nTo: friend@example.org\r\nSubject: crash %s lines %d\r\n'
            'Message-ID: <%s@crash.test>\r\n\r\n' % (USER, mid, lines, mid))
    return (head + ''.join('line %05d of %s %s\r\n' % (i, mid, 'x' * 40) for i in range(lines)) +
            'END %s\r\n' % mid).encode()


def check_copy(data, where):
    """A stored copy is complete: its END line and all its lines."""
    m = re.search(rb'Subject: crash (\S+) lines (\d+)', data)
    if not m:
        fail('%s: no test subject' % where)
    mid, lines = m.group(1).decode(), int(m.group(2))
    if not data.rstrip(b'\r\n').endswith(b'END ' + mid.encode()):
        fail('%s: %s is cut short (%d bytes)' % (where, mid, len(data)))
    if data.count(b'\r\nline ') != lines:
        fail('%s: %s has %d of %d lines' % (where, mid, data.count(b'\r\nline '), lines))
    return mid


def our_pids():
    out = []
    for p in os.listdir('/proc'):
        if not p.isdigit():
            continue
        try:
            cmd = open('/proc/%s/cmdline' % p, 'rb').read().split(b'\0')
        except OSError:
            continue
        if CONF.encode() in cmd and cmd[0].endswith(b'mail-submit-relay'):
            out.append((int(p), cmd))
    return out


def kill_all(serve_pid):
    for _ in range(50):
        procs = our_pids()
        if not procs:
            return
        for pid, cmd in procs:
            try:
                sid = int(open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()[3])
            except (OSError, IndexError, ValueError):
                sid = -1
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            if b'flush' in cmd:
                stats['killed_flush'] += 1
            elif pid == serve_pid:
                stats['killed_serve'] += 1
            elif sid == pid:
                stats['killed_runner'] += 1
            else:
                stats['killed_session'] += 1
        time.sleep(0.02)
    fail('processes survive SIGKILL: %s' % our_pids())


def submitter(rnd, t, stop):
    rng = random.Random()
    n = 0
    while not stop.is_set():
        try:
            s = smtplib.SMTP('127.0.0.1', PORT, timeout=15)
            s.login(USER, PW)
        except (OSError, smtplib.SMTPException):
            time.sleep(0.05)
            continue
        try:
            while not stop.is_set():
                n += 1
                mid = 'r%d.t%d.n%d' % (rnd, t, n)
                lines = rng.randint(1000, 4000) if rng.random() < 0.1 else rng.randint(1, 60)
                rcpts = ['friend@example.org'] + (['other@example.net'] if rng.random() < 0.3 else [])
                with lock:
                    tried.add(mid)
                try:
                    s.sendmail(USER, rcpts, body(mid, lines))
                except (OSError, smtplib.SMTPException):
                    if lines >= 1000:
                        with lock:
                            stats['killed_mid_data'] += 1
                    raise
                with lock:
                    acked.add(mid)
        except (OSError, smtplib.SMTPException):
            pass
        try:
            s.close()
        except OSError:
            pass


spawn_lock = threading.Lock()    # no flush starts while the kill looks for ours


def flusher(stop):
    while True:
        with spawn_lock:
            # Popen returns once the child has exec'd: the kill sees its command line
            if stop.is_set():
                return
            p = subprocess.Popen([BIN, '-c', CONF, 'flush', '--force'], stdout=subprocess.DEVNULL,
                                 stderr=logf, start_new_session=True)
        p.wait()
        with lock:
            stats['flush_runs'] += 1
        time.sleep(random.uniform(0, 0.2))


def wait_port():
    for _ in range(200):
        try:
            socket.create_connection(('127.0.0.1', PORT), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    fail('serve never listened on %d' % PORT)


sink_seen = {}      # sink message number -> id
marks = []          # the sink's highest message number after each round
def scan_sink():
    for f in os.listdir(SINK):
        m = re.match(r'msg-(\d+)\.json$', f)    # the .json is written after the .eml
        if m and int(m.group(1)) not in sink_seen:
            with open(os.path.join(SINK, 'msg-%s.eml' % m.group(1)), 'rb') as fh:
                sink_seen[int(m.group(1))] = check_copy(fh.read(), 'sink msg-%s' % m.group(1))
    return set(sink_seen.values())


def scan_queue():
    """Checks every queue file; returns the ids with a recipient pending."""
    # made by the first message queued (a round killed before that has none)
    names = os.listdir(QDIR) if os.path.isdir(QDIR) else []
    pending = set()
    envs = [n[:-4] for n in names if n.endswith('.env')]
    for n in names:
        if not (n.endswith('.env') or n.endswith('.msg') or n in ('tmp', 'runner.lock', 'provider')):
            fail('unexpected file in the queue: %s' % n)
    for n in names:
        if n.endswith('.msg'):   # complete even when orphaned (renamed only once fsynced)
            with open(os.path.join(QDIR, n), 'rb') as fh:
                check_copy(fh.read(), 'queue %s' % n)
    for qid in envs:
        try:
            env = open(os.path.join(QDIR, qid + '.env')).read()
            data = open(os.path.join(QDIR, qid + '.msg'), 'rb').read()
        except FileNotFoundError as e:
            if not os.path.exists(os.path.join(QDIR, qid + '.env')):
                continue    # finished meanwhile (a runner may still be alive in the last scan)
            fail('queued without its message: %s (%s)' % (qid, e))
        size = re.search(r'^size (\d+)$', env, re.M)
        if not env.startswith('mailkeep-queue 1\n') or not size or int(size.group(1)) != len(data):
            fail('.env of %s unreadable or its size %s is not the .msg\'s %d'
                 % (qid, size and size.group(1), len(data)))
        if re.search(r'^rcpt pending ', env, re.M):
            pending.add(check_copy(data, 'queue %s' % qid))
    r = subprocess.run([BIN, '-c', CONF, 'list', '--json'], capture_output=True, text=True)
    if r.returncode != 0:
        fail('list --json exit %d: %s' % (r.returncode, r.stderr))
    if len(json.loads(r.stdout)) != len(envs):
        fail('list shows %d messages, the queue holds %d' % (len(json.loads(r.stdout)), len(envs)))
    return pending


def sink_conns():
    """Connections the sink still holds open (ESTABLISHED, SYN_RECV, CLOSE_WAIT)."""
    n = 0
    for line in open('/proc/net/tcp').readlines()[1:]:
        f = line.split()
        if int(f[1].split(':')[1], 16) == SINK_PORT and f[3] in ('01', '03', '08'):
            n += 1
    return n


def quiet_sink():
    """Waits until the sink has closed every connection: every process
    sending to it is dead, so once it has seen each one end, what it
    stored is final (a transfer killed after its final dot may or may not
    land: that is settled by then, however slow the sink is)."""
    last, since = -1, time.time()
    for _ in range(600):
        n = len(os.listdir(SINK))
        if n != last:
            last, since = n, time.time()
        if sink_conns() == 0 and time.time() - since >= 0.3:
            return
        time.sleep(0.05)
    fail('the sink still holds %d connections 30 s after the kill' % sink_conns())


dbg = open(os.environ['RELAY_CRASH_DEBUG'], 'a') if os.environ.get('RELAY_CRASH_DEBUG') else None
def debug(*a):
    if dbg:
        print('%.3f' % time.time(), *a, file=dbg, flush=True)


for rnd in range(ROUNDS):
    debug('round', rnd)
    serve = subprocess.Popen([BIN, '-c', CONF, 'serve', '--listen', '127.0.0.1:%d' % PORT,
                              '--allow-plaintext'], stderr=logf, start_new_session=True)
    wait_port()
    stop = threading.Event()
    ths = [threading.Thread(target=submitter, args=(rnd, t, stop)) for t in range(4)]
    ths.append(threading.Thread(target=flusher, args=(stop,)))
    for th in ths:
        th.start()
    time.sleep(random.uniform(0.2, 1.5))
    debug('kill')
    stop.set()
    with spawn_lock:
        kill_all(serve.pid)
    serve.wait()
    for th in ths:
        th.join()
    if our_pids():
        fail('escaped the kill: %s' % our_pids())
    debug('killed and joined')
    quiet_sink()            # the sink finishes storing what it got
    debug('sink quiet')
    at_sink = scan_sink()
    pend = scan_queue()
    debug('scanned sink max', max(sink_seen) if sink_seen else 0, 'pending', len(pend), sorted(pend))
    for mid in at_sink & pend:
        caught[mid] = caught.get(mid, 0) + 1
    marks.append(max(sink_seen) if sink_seen else 0)

# the final flush: nothing killed any more
for i in range(3):
    r = subprocess.run([BIN, '-c', CONF, 'flush', '--force'], stderr=logf)
    if r.returncode == 0:
        break
if r.returncode != 0:
    fail('final flush exit %d' % r.returncode)
if scan_queue():
    fail('still pending after the final flush')
if [n for n in os.listdir(QDIR) if n.endswith('.env')]:
    fail('.env left after the final flush')
scan_sink()
copies = {}
for mid in sink_seen.values():
    copies[mid] = copies.get(mid, 0) + 1
lost = acked - set(copies)
if lost:
    fail('acknowledged and never delivered: %s' % sorted(lost)[:20])
stray = set(copies) - tried
if stray:
    fail('delivered but never submitted: %s' % sorted(stray)[:20])
dups = {m: c for m, c in copies.items() if c > 1}
bad = {m: c for m, c in dups.items() if c > 1 + caught.get(m, 0)}
if bad:
    where = {m: [(n, sum(1 for k in marks if k < n)) for n, x in sorted(sink_seen.items()) if x == m]
             for m in list(bad)[:20]}
    fail('sent more than once without a killed transfer: %s (sink number, round: %s)'
         % (sorted(bad.items())[:20], where))
print('rounds %d submitted %d acknowledged %d delivered %d (unacknowledged but delivered %d) '
      'caught-in-killed-transfer %d duplicates %d'
      % (ROUNDS, len(tried), len(acked), len(copies), len(set(copies) - acked), len(caught),
         len(dups)))
print('killed: serve %d sessions %d runners %d flushes %d mid-DATA (big messages) %d; flush runs %d'
      % (stats['killed_serve'], stats['killed_session'], stats['killed_runner'],
         stats['killed_flush'], stats['killed_mid_data'], stats['flush_runs']))
print('ok')

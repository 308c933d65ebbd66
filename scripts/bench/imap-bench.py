#!/usr/bin/python3
"""IMAP benchmarks B4-B6 of shared/bench/SPEC.md: ours against dovecot on the
same Maildir, same machine, same run, alternating A B A B.  Prints medians
and the ratio ours/peer for each case.

  imap-bench.py --ours PORT --peer PORT --user U --pw-ours P --pw-peer P
                [--case b4,b5,b6] [--rounds 5] [--b4-seconds 20] [--clients 20]
                [--big-folder NAME] [--mid-folder NAME] [--reset-peer-cache DIR]
"""
import argparse, glob, imaplib, os, random, re, statistics, subprocess, threading, time

ap = argparse.ArgumentParser()
ap.add_argument('--ours', type=int, required=True)
ap.add_argument('--peer', type=int, required=True)
ap.add_argument('--user', required=True)
ap.add_argument('--pw-ours', required=True)
ap.add_argument('--pw-peer', required=True)
ap.add_argument('--case', default='b4,b5,b6')
ap.add_argument('--rounds', type=int, default=5)
ap.add_argument('--b4-seconds', type=float, default=20)
ap.add_argument('--clients', type=int, default=20)
ap.add_argument('--big-folder', default='Big')
ap.add_argument('--mid-folder', default='INBOX')
ap.add_argument('--load-folder', default='Load')
ap.add_argument('--only', default=None, help='run one server (ours|dovecot), for profiling; no ratios')
ap.add_argument('--breakdown', action='store_true', help='B4: also print the mean latency of each kind of command')
ap.add_argument('--reset-peer-cache', default=None, help='maildir whose dovecot.index* files make the cold case')
a = ap.parse_args()
SERVERS = [('ours', a.ours, a.pw_ours), ('dovecot', a.peer, a.pw_peer)]
if a.only:
    SERVERS = [x for x in SERVERS if x[0] == a.only]

def login(port, pw):
    m = imaplib.IMAP4('127.0.0.1', port)
    m.login(a.user, pw)
    return m

def server_pid(m):
    """pid of the process that serves this connection (ours: the forked
    child; dovecot: the imap process the login process handed it to)."""
    lport = m.socket().getsockname()[1]
    out = subprocess.run(['ss', '-tnpH', 'dst', '127.0.0.1:%d' % lport],
                         capture_output=True, text=True).stdout
    pids = re.findall(r'"([^"]+)",pid=(\d+)', out)
    for name, pid in pids:
        if name != 'imap-login':
            return int(pid)
    return int(pids[0][1]) if pids else None

def rss_kb(pid, field='VmRSS'):
    for l in open('/proc/%d/status' % pid):
        if l.startswith(field + ':'):
            return int(l.split()[1])

def report(case, results, unit, lower_better=True):
    if a.only:
        print('%-28s %s %10.3f %s' % (case, a.only, statistics.median(results[a.only]), unit))
        return None
    o = statistics.median(results['ours']); p = statistics.median(results['dovecot'])
    print('%-28s ours %10.3f %s  dovecot %10.3f %s  ratio ours/dovecot %.2f' % (case, o, unit, p, unit, o / p if p else float('nan')))
    return o / p if p else None

def drop_peer_cache():
    if a.reset_peer_cache:
        for f in glob.glob(os.path.join(a.reset_peer_cache, '**', 'dovecot.index*'), recursive=True) + \
                 glob.glob(os.path.join(a.reset_peer_cache, '**', 'dovecot.list.index*'), recursive=True):
            os.unlink(f)

def b5_once(port, pw):
    t0 = time.perf_counter()
    m = login(port, pw)
    m.select('"%s"' % a.big_folder)
    typ, data = m.uid('FETCH', '1:*', '(FLAGS)')
    assert typ == 'OK' and len(data) > 1000, (typ, len(data))
    typ, data = m.search(None, 'UNSEEN')
    assert typ == 'OK'
    m.logout()
    return time.perf_counter() - t0

def b5_raw_once(port, pw):
    """The same session from a client that only splits lines (no imaplib
    parsing): imaplib's parsing of the 100k FETCH lines is ~85% of
    b5_once's time, the same for both servers, and hides the servers'."""
    import socket
    t0 = time.perf_counter()
    s = socket.create_connection(('127.0.0.1', port))
    f = s.makefile('rb')
    f.readline()
    def cmd(tag, c):
        s.sendall(b'%s %s\r\n' % (tag, c.encode()))
        n = 0
        while True:
            l = f.readline()
            if not l:
                raise EOFError(c)
            n += 1
            if l.startswith(tag + b' '):
                assert l.startswith(tag + b' OK'), l
                return n
    cmd(b'a', 'LOGIN "%s" "%s"' % (a.user, pw))
    cmd(b'b', 'SELECT "%s"' % a.big_folder)
    assert cmd(b'c', 'UID FETCH 1:* (FLAGS)') > 1000
    cmd(b'd', 'SEARCH UNSEEN')
    cmd(b'e', 'LOGOUT')
    s.close()
    return time.perf_counter() - t0

def b5():
    cold = {'ours': [], 'dovecot': []}
    warm = {'ours': [], 'dovecot': []}
    raw = {'ours': [], 'dovecot': []}
    for r in range(a.rounds):
        for name, port, pw in SERVERS:
            if name == 'dovecot':
                drop_peer_cache()
            cold[name].append(b5_once(port, pw))
        # alternate who goes first: the first warm run would otherwise always
        # follow dovecot's cold index rebuild (its writeback still going on)
        for name, port, pw in (SERVERS if r % 2 else SERVERS[::-1]):
            warm[name].append(b5_once(port, pw))
        for name, port, pw in (SERVERS if r % 2 else SERVERS[::-1]):
            raw[name].append(b5_raw_once(port, pw))
    report('B5 100k SELECT+FETCH+SEARCH cold', cold, 's')
    report('B5 100k SELECT+FETCH+SEARCH warm', warm, 's')
    report('B5 warm, line-splitting client', raw, 's')

def b6():
    res = {'ours': [], 'dovecot': []}
    anon = {'ours': [], 'dovecot': []}
    for r in range(a.rounds):
        for name, port, pw in SERVERS:
            m = login(port, pw)
            m.select('"%s"' % a.mid_folder)
            m.noop()
            time.sleep(0.2)
            pid = server_pid(m)
            res[name].append(rss_kb(pid))
            anon[name].append(rss_kb(pid, 'RssAnon'))
            m.logout()
    report('B6 idle session RSS (10k)', res, 'kB')
    # the session's own memory, without the shared libraries it maps
    report('B6 idle session RssAnon (10k)', anon, 'kB')

B4_KINDS = ('select', 'fetch-env', 'fetch-body', 'store', 'append', 'expunge', 'noop')

def b4_client(port, pw, stop, ops, lat, errors, seed, kinds):
    rnd = random.Random(seed)
    try:
        m = login(port, pw)
        m.select(a.load_folder)
    except Exception as e:
        errors.append(str(e)); return
    while not stop.is_set():
        what = rnd.random()
        t0 = time.perf_counter()
        try:
            if what < 0.05:
                typ, data = m.select(a.load_folder)
            elif what < 0.35:
                typ, data = m.fetch('1:20', '(FLAGS ENVELOPE)')
            elif what < 0.55:
                typ, data = m.fetch(str(rnd.randint(1, 50)), '(BODY.PEEK[])')
            elif what < 0.75:
                typ, data = m.store(str(rnd.randint(1, 50)), '+FLAGS' if rnd.random() < 0.5 else '-FLAGS', '(\\Flagged)')
            elif what < 0.85:
                typ, data = m.append(a.load_folder, '(\\Deleted)', None,
                                     b'Subject: load\r\nFrom: load@example.org\r\n\r\n' + b'x' * rnd.randint(100, 20000) + b'\r\n')
            elif what < 0.92:
                typ, data = m.expunge()
            else:
                typ, data = m.noop()
            if typ != 'OK':
                errors.append('%s %s' % (typ, data))
            ops[0] += 1
            dt = time.perf_counter() - t0
            lat.append(dt)
            k = kinds[B4_KINDS[sum(what >= x for x in (0.05, 0.35, 0.55, 0.75, 0.85, 0.92))]]
            k[0] += 1; k[1] += dt
        except Exception as e:
            errors.append(repr(e)); return
    try:
        m.logout()
    except Exception:
        pass

def b4():
    thr = {'ours': [], 'dovecot': []}
    p99 = {'ours': [], 'dovecot': []}
    kinds = {n: {k: [0, 0.0] for k in B4_KINDS} for n in ('ours', 'dovecot')}
    for r in range(max(2, a.rounds // 2)):
        for name, port, pw in SERVERS:
            stop = threading.Event(); ops = [0]; lat = []; errors = []
            ts = [threading.Thread(target=b4_client, args=(port, pw, stop, ops, lat, errors, i + 100 * r, kinds[name]))
                  for i in range(a.clients)]
            t0 = time.perf_counter()
            for t in ts: t.start()
            time.sleep(a.b4_seconds)
            stop.set()
            for t in ts: t.join()
            el = time.perf_counter() - t0
            thr[name].append(ops[0] / el)
            lat.sort()
            p99[name].append(lat[int(len(lat) * 0.99)] * 1000 if lat else float('nan'))
            if errors:
                print('  %s: %d errors, first: %s' % (name, len(errors), errors[0][:200]))
    r1 = report('B4 %d clients ops/s' % a.clients, thr, 'op/s')
    report('B4 %d clients p99 latency' % a.clients, p99, 'ms')
    if a.breakdown:
        for k in B4_KINDS:
            print('  %-10s' % k + ''.join('  %s %6d x %7.2f ms' % (n, kinds[n][k][0], 1000 * kinds[n][k][1] / max(1, kinds[n][k][0]))
                                          for n, _, _ in SERVERS))

for c in a.case.split(','):
    {'b4': b4, 'b5': b5, 'b6': b6}[c.strip()]()

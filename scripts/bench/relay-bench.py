#!/usr/bin/python3
"""Benchmark B7 of shared/bench/SPEC.md: a submission relay under load.

N messages of about SIZE bytes are submitted by C concurrent clients
(smtplib threads: STARTTLS, AUTH, MAIL/RCPT/DATA, QUIT; PER messages per
session), each durably queued by the server under test and relayed to the
sink (scripts/bench/relay-sink.py).  A round is timed from the first
connection until the sink has counted all N messages.  Ours and the peer
run in the same process run, alternating A B A B; medians and the ratio
ours/peer (messages/s, higher is better) are printed.

  relay-bench.py --server NAME:PORT:PASSWORD [--server ...] --sink PORT
                 --user U --ca CA [--messages 2000] [--clients 10] [--size 20000]
                 [--per-session 1] [--rounds 5] [--fsync-dir DIR] [--only NAME]
"""
import argparse
import os
import smtplib
import socket
import ssl
import statistics
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--server", action="append", required=True, help="NAME:PORT:PASSWORD")
ap.add_argument("--sink", type=int, required=True)
ap.add_argument("--user", required=True)
ap.add_argument("--rcpt", default="bob@example.org")
ap.add_argument("--ca", required=True)
ap.add_argument("--messages", type=int, default=2000)
ap.add_argument("--clients", type=int, default=10)
ap.add_argument("--size", type=int, default=20000)
ap.add_argument("--per-session", type=int, default=1)
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--timeout", type=float, default=240, help="seconds a round may take")
ap.add_argument("--fsync-dir", default=None)
ap.add_argument("--only", default=None, help="run one server (ours|postfix), for profiling; no ratio")
a = ap.parse_args()
SERVERS = []
for s in a.server:
    name, port, pw = s.split(":", 2)
    if a.only is None or name == a.only:
        SERVERS.append((name, int(port), pw))

ctx = ssl.create_default_context(cafile=a.ca)
ctx.check_hostname = False  # both present the same test certificate


def message(i):
    head = ("From: <%s>\r\nTo: <%s>\r\nSubject: bench message %d\r\n"
            "Message-ID: <bench-%d-%d@example.com>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
            % (a.user, a.rcpt, i, os.getpid(), i))
    line = "The quick brown fox jumps over the lazy dog %06d, again and again.\r\n" % i
    body = line * max(1, (a.size - len(head)) // len(line))
    return (head + body).encode()


own_conns = 0  # XCOUNT connections of this driver: not the relay's


def sink_count():
    global own_conns
    own_conns += 1
    with socket.create_connection(("127.0.0.1", a.sink), 10) as c:
        f = c.makefile("rb")
        f.readline()
        c.sendall(b"XCOUNT\r\n")
        r = f.readline().split()
        c.sendall(b"QUIT\r\n")
        return int(r[1])


def sink_conns():
    """Connections the sink has seen, less the ones this driver opened."""
    global own_conns
    own_conns += 1
    with socket.create_connection(("127.0.0.1", a.sink), 10) as c:
        f = c.makefile("rb")
        f.readline()
        c.sendall(b"XCOUNT\r\n")
        r = f.readline().split()
        c.sendall(b"QUIT\r\n")
        return int(r[2]) - own_conns


def client(port, pw, todo, errors):
    while True:
        with todo_lock:
            if not todo:
                return
            batch = [todo.pop() for _ in range(min(a.per_session, len(todo)))]
        try:
            s = smtplib.SMTP("127.0.0.1", port, timeout=120)
            s.starttls(context=ctx)
            s.login(a.user, pw)
            for i in batch:
                s.sendmail(a.user, [a.rcpt], message(i))
            s.quit()
        except Exception as e:  # counted; the round then times out short
            errors.append("%s: %r" % (port, e))


todo_lock = threading.Lock()


def wait_sink(target, t_end):
    while True:
        n = sink_count()
        if n >= target:
            return n
        if time.perf_counter() > t_end:
            return n
        time.sleep(0.02)


def one_round(name, port, pw):
    # the previous round must be fully drained (nothing still trickling in)
    before = sink_count()
    time.sleep(0.5)
    while sink_count() != before:
        before = sink_count()
        time.sleep(0.5)
    conns0 = sink_conns()
    todo = list(range(a.messages))
    errors = []
    ts = [threading.Thread(target=client, args=(port, pw, todo, errors))
          for _ in range(a.clients)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    t_sub = time.perf_counter() - t0
    got = wait_sink(before + a.messages, t0 + a.timeout) - before
    el = time.perf_counter() - t0
    if errors:
        print("  %s: %d client errors, first: %s" % (name, len(errors), errors[0][:200]))
    if got < a.messages:
        print("  %s: only %d of %d messages reached the sink in %.0f s"
              % (name, got, a.messages, el))
    rate = got / el
    conns = sink_conns() - conns0
    print("  round %-8s %7.1f msg/s (%d msgs in %.2f s; all submitted after %.2f s;"
          " %d new connections to the sink)" % (name, rate, got, el, t_sub, conns), flush=True)
    return rate


def fsync_rate(d):
    p = os.path.join(d, ".bench-fsync")
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    t0 = time.perf_counter()
    for _ in range(1000):
        os.write(fd, b"x")
        os.fsync(fd)
    el = time.perf_counter() - t0
    os.close(fd)
    os.unlink(p)
    return 1000 / el


res = {name: [] for name, _, _ in SERVERS}
print("B7: %d messages of %d bytes, %d clients, %d per session, %d rounds"
      % (a.messages, len(message(0)), a.clients, a.per_session, a.rounds), flush=True)
for r in range(a.rounds):
    order = SERVERS if r % 2 == 0 else SERVERS[::-1]
    for name, port, pw in order:
        res[name].append(one_round(name, port, pw))
med = {k: statistics.median(v) for k, v in res.items()}
line = "B7 relay %d msgs/%d clients" % (a.messages, a.clients)
names = [s[0] for s in SERVERS]
for n in names:
    line += "  %s %.1f msg/s" % (n, med[n])
if len(names) >= 2 and med[names[1]] > 0:
    line += "  ratio %s/%s %.2f" % (names[0], names[1], med[names[0]] / med[names[1]])
if a.fsync_dir:
    line += "  (disk: %.0f fsync/s)" % fsync_rate(a.fsync_dir)
print(line, flush=True)

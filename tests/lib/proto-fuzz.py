#!/usr/bin/python3
"""Protocol-level fuzzer for mailkeep's servers (issue 8).

Replays mutated real client sessions -- the kinds the bats tests run:
LOGIN/AUTHENTICATE, LIST, SELECT, FETCH, STORE, SEARCH, APPEND with
synchronizing and LITERAL+ literals, IDLE, COMPRESS=DEFLATE, CONDSTORE for
IMAP; EHLO, AUTH PLAIN/LOGIN, MAIL/RCPT/DATA (pipelined or not), BDAT,
SMTPUTF8 for SMTP -- against mail-serve-imap or mail-submit-relay serve.
Mutations: byte flips, truncations, splices of other sessions, huge and
edge numbers, random literals, dictionary tokens, over-long tokens, CRLFs
added or removed, chunks duplicated, dropped or swapped, corrupt deflate
bytes; every write is cut at random points with tiny pauses between the
pieces.

Most sessions run the server in its inetd mode (stdin/stdout on a
socketpair, one process per session), so each process's exit status is
seen: a death by signal, a sanitizer exit (exitcode 86) or a process that
never ends is a failure, saved with its session under --crash-dir.  The
rest go to the long-running --listen server given by --port (the fork per
connection path), whose health is checked by the caller (log and process).

  proto-fuzz.py --proto imap|smtp --bin PATH --conf FILE --pw PW
                [--port LISTEN_PORT] [--seconds S] [--workers N] [--seed N]
                [--log FILE] [--cwd DIR] [--crash-dir DIR] [--replay FILE]

Prints "sessions N inetd N listen N ..." and exits 1 on any failure.
Environment: FUZZ_DEBUG=1 prints each session's time and mutations;
FUZZ_PLAIN=1 replays the seed sessions unmutated."""
import argparse
import base64
import json
import os
import random
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib

ap = argparse.ArgumentParser()
ap.add_argument('--proto', required=True, choices=['imap', 'smtp'])
ap.add_argument('--bin', required=True)
ap.add_argument('--conf', required=True)
ap.add_argument('--pw', required=True)
ap.add_argument('--user', default='alice@example.com')
ap.add_argument('--port', type=int, default=0)
ap.add_argument('--seconds', type=float, default=30)
ap.add_argument("--workers", type=int, default=4)
ap.add_argument('--seed', type=int, default=None)
ap.add_argument('--log', default='/dev/null')
ap.add_argument('--cwd', default=None)
ap.add_argument('--crash-dir', default='.')
ap.add_argument('--replay', default=None)
a = ap.parse_args()

SEED = a.seed if a.seed is not None else random.randrange(1 << 30)
USER = a.user.encode()
PW = a.pw.encode()
SAN_EXIT = 86

# ---- seed sessions --------------------------------------------------------
# A session is a list of steps (data, expect): expect is what ends the wait
# for the server's answer: b'TAG ' (IMAP tagged reply), b'+' (continuation),
# an int (that many SMTP final reply lines), or None (a short idle wait).
# 'keep' leading steps (the login) are never mutated: a mutated password
# would earn the user the login penalty and slow every later session.


def lit(s):
    return b'{%d}\r\n' % len(s)


MIME = (b'From: Carol <carol@example.org>\r\nTo: alice@example.com\r\n'
        b'Subject: =?UTF-8?B?w6lsw6h2ZQ==?= report\r\nDate: Mon, 2 Mar 2026 10:00:00 +0100\r\n'
        b'Message-ID: <mime-1@example.org>\r\nMIME-Version: 1.0\r\n'
        b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\npreamble\r\n--b1\r\n'
        b'Content-Type: multipart/alternative; boundary=b2\r\n\r\n--b2\r\n'
        b'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
        b'h=C3=A9llo w=\r\norld\r\n--b2\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--b2--\r\n'
        b'--b1\r\nContent-Type: message/rfc822\r\n\r\nFrom: x@y\r\nSubject: inner\r\n'
        b'Content-Type: text/plain\r\n\r\ninner body\r\n--b1\r\n'
        b'Content-Type: application/octet-stream; name="a.bin"\r\n'
        b'Content-Disposition: attachment; filename="a.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        b'AAECAwQFBgcICQ==\r\n--b1--\r\nepilogue\r\n')
PLAIN = (b'From: alice@example.com\r\nTo: bob@example.com\r\nSubject: plain one\r\n'
         b'Message-ID: <plain-1@example.com>\r\n\r\nfirst line\r\n.dot line\r\n\r\nlast\r\n')
IMAP_LOGIN = [(b'a0 LOGIN ' + USER + b' "' + PW + b'"\r\n', b'a0 ')]
IMAP_LOGIN_LIT = [(b'a0 LOGIN ' + lit(USER), b'+'), (USER + b' ' + lit(PW), b'+'),
                  (PW + b'\r\n', b'a0 ')]
IMAP_AUTH_IR = [(b'a0 AUTHENTICATE PLAIN ' + base64.b64encode(b'\0' + USER + b'\0' + PW) + b'\r\n',
                 b'a0 ')]


def imap_steps(lines):
    """b'tag rest' lines -> steps waiting for that tag."""
    return [(l + b'\r\n', l.split(b' ', 1)[0] + b' ') for l in lines]


IMAP_SEEDS = [
    (1, IMAP_LOGIN + imap_steps([
        b'a1 CAPABILITY', b'a2 LIST "" "*"',
        b'a3 LIST "" "%" RETURN (SPECIAL-USE CHILDREN STATUS (MESSAGES UNSEEN UIDNEXT))',
        b'a4 NAMESPACE', b'a5 STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)',
        b'a6 SELECT INBOX', b'a7 FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE)',
        b'a8 FETCH 1:3 (BODYSTRUCTURE ENVELOPE BODY)',
        b'a9 UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] BODY.PEEK[1]<0.100> BODY[TEXT])',
        b'a10 FETCH * (BODY[1.1] BODY[1.2.MIME] BODY[2.HEADER] BODY[3]<2.5> RFC822.HEADER BODY[HEADER.FIELDS.NOT (TO)])',
        b'a11 FETCH 2,1:2,*:1 FAST', b'a12 FETCH 1 (RFC822 RFC822.TEXT ALL FULL)',
        b'a13 LOGOUT'])),
    (1, IMAP_LOGIN + [
        (b'b1 APPEND INBOX (\\Seen $Forwarded) "01-Jan-2026 10:00:00 +0000" ' + lit(MIME), b'+'),
        (MIME + b'\r\n', b'b1 '),
        (b'b2 APPEND Drafts (\\Draft) {%d+}\r\n' % len(PLAIN) + PLAIN + b'\r\n', b'b2 ')] + imap_steps([
        b'b3 SELECT INBOX', b'b4 STORE 1:* +FLAGS (\\Flagged kw1 $Junk)',
        b'b5 UID STORE 1:* -FLAGS.SILENT (kw1)', b'b6 COPY 1:2 Archive', b'b7 UID MOVE 2:3 Junk',
        b'b8 STORE 1 +FLAGS (\\Deleted)', b'b9 EXPUNGE', b'b10 UID EXPUNGE 4:6',
        b'b11 STORE 2 FLAGS ()', b'b12 CLOSE', b'b13 LOGOUT'])),
    (3, IMAP_LOGIN_LIT + imap_steps([
        b'c1 CREATE "Work/Projects"', b'c2 CREATE &AMQ-lpha', b'c3 SUBSCRIBE "Work/Projects"',
        b'c4 LSUB "" "*"', b'c5 RENAME "Work/Projects" "Work/Old"',
        b'c6 LIST (SUBSCRIBED RECURSIVEMATCH) "" "Work/*" RETURN (CHILDREN)',
        b'c7 DELETE "Work/Old"', b'c8 EXAMINE Sent', b'c9 UNSELECT', b'c10 UNSUBSCRIBE "Work/Projects"',
        b'c11 DELETE &AMQ-lpha', b'c12 STATUS Junk (MESSAGES SIZE)', b'c13 LOGOUT'])),
    (1, IMAP_LOGIN + imap_steps([
        b'd1 SELECT INBOX', b'd2 SEARCH ALL',
        b'd3 UID SEARCH RETURN (MIN MAX COUNT ALL) OR SUBJECT "report" FROM "carol"',
        b'd4 SEARCH SINCE 1-Jan-2020 NOT DELETED LARGER 10 UID 1:* BEFORE 1-Jan-2030',
        b'd5 SEARCH HEADER Message-ID "<mime-1@example.org>" OR SEEN (UNSEEN KEYWORD kw1)']) + [
        (b'd6 SEARCH CHARSET UTF-8 TEXT {6}\r\n', b'+'), ('h\u00e9llo'.encode() + b'\r\n', b'd6 ')] + imap_steps([
        b'd7 SEARCH MODSEQ 1 BODY "world" ON 2-Mar-2026 SENTSINCE 1-Mar-2026',
        b'd8 UID SEARCH 1,3:*,2 NOT (FLAGGED ANSWERED) SMALLER 100000', b'd9 LOGOUT'])),
    (1, IMAP_LOGIN + imap_steps([b'e1 SELECT INBOX']) + [
        (b'e2 IDLE\r\n', b'+'), (b'DONE\r\n', b'e2 ')] + imap_steps([
        b'e3 NOOP', b'e4 CHECK']) + [(b'e5 IDLE\r\n', b'+'), (b'DONE\r\n', b'e5 ')] +
     imap_steps([b'e6 LOGOUT'])),
    (1, IMAP_LOGIN + [(b'f1 COMPRESS DEFLATE\r\n', b'f1 ')] + imap_steps([
        b'f2 SELECT INBOX', b'f3 FETCH 1:* (FLAGS BODY.PEEK[HEADER])']) + [
        (b'f4 APPEND INBOX {%d+}\r\n' % len(PLAIN) + PLAIN + b'\r\n', b'f4 '),
        (b'f5 IDLE\r\n', b'+'), (b'DONE\r\n', b'f5 ')] + imap_steps([
        b'f6 FETCH 1:* BODYSTRUCTURE', b'f7 LOGOUT'])),
    (1, IMAP_AUTH_IR + imap_steps([
        b'g1 ENABLE CONDSTORE QRESYNC', b'g2 SELECT INBOX (QRESYNC (1 1 1:*))',
        b'g3 FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)',
        b'g4 STORE 1 (UNCHANGEDSINCE 100) +FLAGS (\\Answered)', b'g5 UID FETCH 1:* (MODSEQ)',
        b'g6 STATUS INBOX (HIGHESTMODSEQ)', b'g7 SELECT INBOX (CONDSTORE)', b'g8 UNSELECT',
        b'g9 ID ("name" "fuzz" "version" "1")', b'g10 LOGOUT'])),
    # before login: one failed login (as a fresh unknown user: the login
    # penalty counts failures per client address and a success clears it)
    (0, lambda who: imap_steps([b'h1 CAPABILITY', b'h2 ID ("name" "fuzz" "os" NIL)', b'h3 NOOP']) + [
        (b'h4 AUTHENTICATE PLAIN\r\n', b'+'),
        (base64.b64encode(b'\0' + who + b'\0nope') + b'\r\n', b'h4 '),
        (b'h5 SELECT INBOX\r\n', b'h5 '), (b'h6 STARTTLS\r\n', b'h6 '),
        (b'\x16\x03\x01\x00\x05hello', None), (b'h7 LOGOUT\r\n', b'h7 ')]),
    (3, [(b'i0 AUTHENTICATE LOGIN\r\n', b'+'), (base64.b64encode(USER) + b'\r\n', b'+'),
         (base64.b64encode(PW) + b'\r\n', b'i0 ')] + imap_steps([
        b'i1 SELECT Archive', b'i2 FETCH 1:* (UID FLAGS BODY.PEEK[])', b'i3 UID COPY 1:* INBOX',
        b'i4 SEARCH NEW', b'i5 STORE 1:* +FLAGS.SILENT (\\Deleted)', b'i6 UNSELECT',
        b'i7 LIST "" "*" RETURN (STATUS (MESSAGES DELETED SIZE))', b'i8 LOGOUT'])),
]

SMTP_AUTH_PLAIN = [(b'EHLO fuzz.example\r\n', 1),
                   (b'AUTH PLAIN ' + base64.b64encode(b'\0' + USER + b'\0' + PW) + b'\r\n', 1)]
SMTP_AUTH_LOGIN = [(b'EHLO fuzz.example\r\n', 1), (b'AUTH LOGIN\r\n', 1),
                   (base64.b64encode(USER) + b'\r\n', 1), (base64.b64encode(PW) + b'\r\n', 1)]
BODY = (b'From: Alice <' + USER + b'>\r\nTo: friend@example.org\r\nSubject: fuzz\r\n'
        b'Message-ID: <fuzz@example.com>\r\n\r\nline one\r\n..dot-stuffed\r\n\r\n' + b'x' * 70 +
        b'\r\n.\r\n')
SMTP_SEEDS = [
    (2, SMTP_AUTH_PLAIN + [
        (b'MAIL FROM:<' + USER + b'> SIZE=300 BODY=8BITMIME\r\n', 1),
        (b'RCPT TO:<friend@example.org>\r\n', 1), (b'RCPT TO:<bob@example.com>\r\n', 1),
        (b'DATA\r\n', 1), (BODY, 1), (b'QUIT\r\n', 1)]),
    (4, SMTP_AUTH_LOGIN + [
        (b'MAIL FROM:<' + USER + b'>\r\nRCPT TO:<x@example.org>\r\nDATA\r\n', 3), (BODY, 1),
        (b'RSET\r\n', 1), (b'NOOP\r\n', 1), (b'VRFY bob\r\n', 1), (b'HELP\r\n', 1),
        (b'MAIL FROM:<' + USER + b'>\r\n', 1), (b'RCPT TO:<' + USER + b'>\r\n', 1),
        (b'BDAT 10 LAST\r\n0123456789', 1), (b'QUIT\r\n', 1)]),
    (2, SMTP_AUTH_PLAIN + [
        (b'MAIL FROM:<' + USER + b'> SMTPUTF8 BODY=8BITMIME\r\n', 1),
        (b'RCPT TO:<j\xc3\xb6e@ex\xc3\xa4mple.org> NOTIFY=NEVER\r\n', 1), (b'DATA\r\n', 1),
        (b'From: ' + USER + b'\r\nSubject: \xc3\xa9t\xc3\xa9\r\n\r\n\xc3\xa9\r\n.\r\n', 1),
        (b'MAIL FROM:<' + USER + b'>\r\nRCPT TO:<bob@example.com>\r\nRCPT TO:<nobody@example.com>\r\n'
         b'DATA\r\n', 4), (b'From: ' + USER + b'\r\n\r\nto bob\r\n.\r\n', 1), (b'QUIT\r\n', 1)]),
    (0, lambda who: [
        (b'HELO x\r\n', 1), (b'EHLO y\r\n', 1), (b'MAIL FROM:<' + USER + b'>\r\n', 1),
        (b'AUTH LOGIN ' + base64.b64encode(who) + b'\r\n', 1), (base64.b64encode(b'nope') + b'\r\n', 1),
        (b'RCPT TO:<a@b>\r\n', 1), (b'STARTTLS\r\n', 1), (b'\x16\x03\x01\x00\x05hello', None),
        (b'QUIT\r\n', 1)]),
]
SEEDS = IMAP_SEEDS if a.proto == 'imap' else SMTP_SEEDS

SEED_STEPS = [st(b'u000000@example.com') if callable(st) else st for _, st in SEEDS]

DICT = [b'(', b')', b'[', b']', b'{', b'}', b'<', b'>', b'"', b'\\', b'*', b'%', b' ', b'\r\n',
        b'\0', b'\r', b'\n', b'\xff', b'NIL', b'BODY[', b'BODY.PEEK[1.2.3.4.5.6]', b'<0.4294967295>',
        b'1:*', b'*:*', b'4294967295', b'{0}\r\n', b'~{3}\r\n', b'{4294967296+}\r\n', b'"\\"',
        b'HEADER.FIELDS (', b'MIME', b'CHARSET', b'UTF-8', b'&-', b'&AMQ', b'/', b'../..', b'..',
        b'INBOX', b'$', b'\\Deleted', b'.', b'\r\n.\r\n', b'MAIL FROM:<', b'RCPT TO:<', b'DATA\r\n',
        b'BDAT 4294967296\r\n', b'SIZE=99999999999', b'<>', b'@', b'=?UTF-8?Q?=ff?=', b'\xc3',
        b'\xf4\x90\x80\x80', b'--b1\r\n', b'Content-Type: multipart/mixed; boundary=', b'(((((',
        b'RETURN (', b'CHANGEDSINCE ', b'MODSEQ', b'UNCHANGEDSINCE 0', b'\t']
NUMS = [b'0', b'1', b'-1', b'2147483647', b'2147483648', b'4294967295', b'4294967296',
        b'9223372036854775807', b'18446744073709551615', b'18446744073709551616',
        b'99999999999999999999999', b'00000000001', b'65536', b'1000000']


def mutate(rng, steps, keep):
    steps = [list(s) for s in steps]
    muts = []
    for _ in range(1 + min(int(rng.expovariate(0.7)), 7)):
        if len(steps) <= keep:
            break
        i = rng.randrange(keep, len(steps))
        d = steps[i][0]
        op = rng.choice(['flip', 'flip', 'trunc', 'splice', 'num', 'num', 'lit', 'dict', 'dict',
                         'long', 'crlf', 'dup', 'drop', 'swap', 'cut'])
        p = rng.randrange(len(d) + 1)
        if op == 'flip' and d:
            p = min(p, len(d) - 1)
            b = rng.choice([d[p] ^ (1 << rng.randrange(8)), rng.randrange(256),
                            rng.choice(b'\0\x7f\x80\xff\r\n "{}()[]\\*%')])
            d = d[:p] + bytes([b]) + d[p + 1:]
        elif op == 'trunc':
            d = d[:p]
            del steps[i + 1:]
        elif op == 'splice':
            other = rng.choice(rng.choice(SEED_STEPS))[0]
            d = d[:p] + other[rng.randrange(len(other) + 1):]
        elif op == 'num':
            runs = [m.span() for m in re.finditer(rb'\d+', d)]
            if runs:
                s, e = rng.choice(runs)
                d = d[:s] + rng.choice(NUMS) + d[e:]
            else:
                d = d[:p] + rng.choice(NUMS) + d[p:]
        elif op == 'lit':
            n = rng.choice([0, 1, 5, 100, 4000, 70000])
            real = n if rng.random() < 0.6 else rng.randrange(n + 10)
            d = (d[:p] + b'{%d%s}\r\n' % (n, b'+' if rng.random() < 0.5 else b'') +
                 bytes(rng.randrange(256) for _ in range(min(real, 300))) + b'z' * max(0, real - 300) +
                 d[p:])
        elif op == 'dict':
            d = d[:p] + rng.choice(DICT) + d[p:]
        elif op == 'long':
            d = d[:p] + rng.choice([b'x', b'(', b'[', b'"', b'1,', b' ', b'a']) * rng.choice(
                [300, 1001, 8200, 66000, 70000]) + d[p:]
        elif op == 'crlf':
            if b'\r\n' in d and rng.random() < 0.5:
                q = d.find(b'\r\n', rng.randrange(len(d)))
                if q >= 0:
                    d = d[:q] + d[q + 2:]
            else:
                d = d[:p] + b'\r\n' + d[p:]
        elif op == 'dup':
            steps.insert(i, list(steps[i]))
        elif op == 'drop':
            del steps[i]
            muts.append(op)
            continue
        elif op == 'swap' and i + 1 < len(steps):
            steps[i], steps[i + 1] = steps[i + 1], steps[i]
            muts.append(op)
            continue
        elif op == 'cut':
            steps[i][1] = None   # do not wait for the answer: pipeline the next step
        steps[i][0] = d
        muts.append(op)
    return [tuple(s) for s in steps], muts


# ---- one session ----------------------------------------------------------

class Session:
    def __init__(self, sock, rng):
        self.s = sock
        self.rng = rng
        self.rx = b''
        self.inflate = None
        self.deflate = None
        self.corrupt_deflate = False
        self.closed = False
        self.got = b''   # everything received (bounded) for the statistics

    def send(self, data):
        if self.deflate is not None:
            data = self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
            if self.corrupt_deflate and data:
                p = self.rng.randrange(len(data))
                data = data[:p] + bytes([self.rng.randrange(256)]) + data[p + 1:]
        cuts = sorted(self.rng.randrange(len(data) + 1) for _ in range(self.rng.choice([0, 0, 1, 2, 5])))
        prev = 0
        for c in cuts + [len(data)]:
            piece = data[prev:c]
            prev = c
            if not piece:
                continue
            try:
                self.s.sendall(piece)
            except OSError:
                self.closed = True
                return
            if c < len(data):
                time.sleep(self.rng.choice([0, 0.0005, 0.003]))

    def recv_some(self, timeout):
        try:
            r, _, _ = select.select([self.s], [], [], max(0, timeout))
        except (OSError, ValueError):
            self.closed = True
            return False
        if not r:
            return False
        try:
            data = self.s.recv(65536)
        except OSError:
            data = b''
        if not data:
            self.closed = True
            return False
        if self.inflate is not None:
            try:
                data = self.inflate.decompress(data)
            except zlib.error:
                self.closed = True
                return False
        self.rx += data
        if len(self.got) < 200000:
            self.got += data[:4096]
        return True

    def wait(self, expect, idle, deadline):
        """Reads until the expected reply; returns the rest after it."""
        while not self.closed:
            m = self.match(expect)
            if m is not None:
                return m
            now = time.time()
            if now >= deadline or not self.recv_some(min(idle, deadline - now)):
                return None
        return None

    def match(self, expect):
        if expect is None:
            return None
        if isinstance(expect, int):
            finals = list(re.finditer(rb'(?:^|\n)\d{3}(?: [^\n]*)?\n', self.rx))
            if len(finals) >= expect:
                end = finals[expect - 1].end()
                line = self.rx[finals[expect - 1].start():end]
                self.rx = self.rx[end:]
                return line
            return None
        m = re.search(rb'(?:^|\n)(' + re.escape(expect) + rb'[^\n]*\n)', self.rx)
        if m is None:
            return None
        line = m.group(1)
        self.rx = self.rx[m.end():]
        return line


def run_session(sock, steps, rng, budget):
    s = Session(sock, rng)
    # the greeting first (the SMTP server refuses a client that talks before
    # it); a slow start (sanitizers, a loaded machine) is not the session's time
    greet = time.time() + 10
    s.wait(b'* ' if a.proto == 'imap' else 1, 10, greet)
    deadline = time.time() + budget
    compress_corrupt = rng.random() < 0.1
    for data, expect in steps:
        if s.closed or time.time() >= deadline:
            break
        s.send(data)
        if expect is None:
            s.wait(None, 0.05, deadline)
            continue
        line = s.wait(expect, 0.12, deadline)
        if (a.proto == 'imap' and line is not None and s.deflate is None and
                re.match(rb'\S+ COMPRESS DEFLATE\r\n$', data) and re.match(rb'\S+ OK', line)):
            rest = s.rx
            s.rx = b''
            s.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
            s.inflate = zlib.decompressobj(-15)
            s.corrupt_deflate = compress_corrupt
            if rest:
                try:
                    s.rx = s.inflate.decompress(rest)
                except zlib.error:
                    s.closed = True
    if not s.closed:
        s.wait(None, 0.05, time.time() + 0.05)
    return s.got


# ---- drivers ----------------------------------------------------------------

lock = threading.Lock()
stats = {'sessions': 0, 'inetd': 0, 'listen': 0, 'mutated': 0, 'plain': 0, 'authed': 0,
         'ok': 0, 'no': 0, 'bad': 0, 'bye': 0, 'r2xx': 0, 'r4xx': 0, 'r5xx': 0, 'queued': 0,
         'exit_codes': {}, 'listen_refused': 0}
failures = []
pending = []    # (proc, sid, closed_at, steps) still running after their session
os.makedirs(a.crash_dir, exist_ok=True)
logf = open(a.log, 'ab', buffering=0)
child_env = dict(os.environ)
for k in ('ASAN_OPTIONS', 'UBSAN_OPTIONS'):
    child_env[k] = (child_env.get(k, '') + ':exitcode=%d' % SAN_EXIT).lstrip(':')


def save(sid, steps, why):
    path = os.path.join(a.crash_dir, '%s-fail-%d.json' % (a.proto, sid))
    with open(path, 'w') as f:
        json.dump({'why': why, 'seed': SEED, 'steps': [[base64.b64encode(d).decode(), e if not
                   isinstance(e, bytes) else e.decode('latin-1')] for d, e in steps]}, f)
    with lock:
        failures.append('session %d: %s (saved as %s)' % (sid, why, path))


def spawn():
    ours, theirs = socket.socketpair()
    args = [a.bin, '-c', a.conf] + (['serve', '--allow-plaintext'] if a.proto == 'smtp'
                                    else ['--allow-plaintext'])
    p = subprocess.Popen(args, stdin=theirs, stdout=theirs, stderr=logf, cwd=a.cwd,
                         env=child_env, close_fds=True)
    theirs.close()
    return p, ours


def judge(p, sid, steps):
    rc = p.returncode
    with lock:
        stats['exit_codes'][str(rc)] = stats['exit_codes'].get(str(rc), 0) + 1
    if rc < 0:
        save(sid, steps, 'killed by signal %d' % -rc)
    elif rc == SAN_EXIT:
        save(sid, steps, 'sanitizer report (exit %d), see the log' % rc)


def count(got):
    with lock:
        if a.proto == 'imap':
            stats['authed'] += b'] Logged in' in got or b'OK Logged in' in got
            stats['ok'] += len(re.findall(rb'\n\S+ OK', b'\n' + got))
            stats['no'] += len(re.findall(rb'\n\S+ NO', b'\n' + got))
            stats['bad'] += len(re.findall(rb'\n\S+ BAD', b'\n' + got))
            stats['bye'] += b'* BYE' in got
        else:
            stats['authed'] += b'\n235 ' in b'\n' + got
            stats['r2xx'] += len(re.findall(rb'\n2\d\d ', b'\n' + got))
            stats['r4xx'] += len(re.findall(rb'\n4\d\d ', b'\n' + got))
            stats['r5xx'] += len(re.findall(rb'\n5\d\d ', b'\n' + got))
            stats['queued'] += len(re.findall(rb'\n250 [^\n]*queued', b'\n' + got))


def reaper(stop):
    while True:
        with lock:
            items = list(pending)
        for it in items:
            p, sid, closed_at, steps = it
            if p.poll() is not None:
                judge(p, sid, steps)
                with lock:
                    pending.remove(it)
            elif time.time() - closed_at > 60:
                p.kill()
                p.wait()
                save(sid, steps, 'still running 60 s after the client closed')
                with lock:
                    pending.remove(it)
        with lock:
            left = len(pending)
        if stop.is_set() and left == 0:
            return
        time.sleep(0.05)


def one(sid, rng, steps, via_listen):
    if via_listen:
        try:
            sock = socket.create_connection(('127.0.0.1', a.port), timeout=5)
        except OSError:
            with lock:
                stats['listen_refused'] += 1
            return
        p = None
    else:
        p, sock = spawn()
    try:
        got = run_session(sock, steps, rng, 3.0)
    finally:
        sock.close()
    count(got)
    if p is not None:
        try:
            p.wait(timeout=0.5)
            judge(p, sid, steps)
        except subprocess.TimeoutExpired:
            with lock:
                pending.append((p, sid, time.time(), steps))


def worker(wid, end, counter):
    rng = random.Random(SEED * 1000 + wid)
    while time.time() < end:
        with lock:
            sid = counter[0]
            counter[0] += 1
        keep, seed = rng.choice(SEEDS)
        if callable(seed):
            seed = seed(b'u%06d@example.com' % rng.randrange(10 ** 6))
        if rng.random() < 0.08 or os.environ.get('FUZZ_PLAIN'):
            steps, muts = seed, []
        else:
            steps, muts = mutate(rng, seed, keep)
        via_listen = a.port > 0 and rng.random() < 0.25
        t0 = time.time()
        one(sid, rng, steps, via_listen)
        if os.environ.get('FUZZ_DEBUG'):
            print('session %d seed %s %.2fs %s' % (sid, keep, time.time() - t0, muts), flush=True)
        with lock:
            stats['sessions'] += 1
            stats['listen' if via_listen else 'inetd'] += 1
            stats['mutated' if muts else 'plain'] += 1


def prepare():
    """Fills INBOX with the seed messages (an unmutated APPEND session)."""
    if a.proto != 'imap':
        return
    rng = random.Random(SEED)
    steps = IMAP_LOGIN[:]
    for i, m in enumerate([MIME, PLAIN, MIME.replace(b'b1', b'q'), PLAIN * 3, b'Subject: tiny\r\n\r\nx\r\n']):
        steps.append((b'p%d APPEND INBOX {%d+}\r\n' % (i, len(m)) + m + b'\r\n', b'p%d ' % i))
    steps.append((b'p9 LOGOUT\r\n', b'p9 '))
    p, sock = spawn()
    got = run_session(sock, steps, rng, 20)
    sock.close()
    p.wait(timeout=20)
    if got.count(b'OK [APPENDUID') + got.count(b' OK APPEND') < 5:
        print('FAILED: could not fill INBOX:', got[-500:])
        sys.exit(1)


def main():
    if a.replay:
        with open(a.replay) as f:
            rec = json.load(f)
        steps = [(base64.b64decode(d), e if e is None or isinstance(e, int) else e.encode('latin-1'))
                 for d, e in rec['steps']]
        one(0, random.Random(rec.get('seed', 0)), steps, False)
        for p, sid, _, st in pending:
            p.wait()
            judge(p, sid, st)
        print('\n'.join(failures) or 'replayed: no failure')
        return 1 if failures else 0
    prepare()
    stop = threading.Event()
    rt = threading.Thread(target=reaper, args=(stop,))
    rt.start()
    end = time.time() + a.seconds
    counter = [1]
    ws = [threading.Thread(target=worker, args=(i, end, counter)) for i in range(a.workers)]
    for w in ws:
        w.start()
    for w in ws:
        w.join()
    stop.set()
    rt.join()
    s = stats
    print('%s seed %d sessions %d inetd %d listen %d mutated %d unmutated %d authenticated %d'
          % (a.proto, SEED, s['sessions'], s['inetd'], s['listen'], s['mutated'], s['plain'],
             s['authed']))
    if a.proto == 'imap':
        print('replies OK %d NO %d BAD %d BYE %d' % (s['ok'], s['no'], s['bad'], s['bye']))
    else:
        print('replies 2xx %d 4xx %d 5xx %d queued %d' % (s['r2xx'], s['r4xx'], s['r5xx'],
                                                          s['queued']))
    print('exit codes', json.dumps(s['exit_codes'], sort_keys=True), 'listen refused',
          s['listen_refused'])
    for f in failures:
        print('FAILED:', f)
    return 1 if failures else 0


sys.exit(main())

#!/usr/bin/python3
"""A misbehaving IMAPS "provider" for mail-pull's bad-input tests: serves
INBOX with COUNT small messages; with --mode truncate it closes the
connection in the middle of the last message's literal, with --mode garbage
it sends a malformed FETCH response instead, with --mode stall it sends a
third of that literal and then nothing more, keeping the connection open.
--mode good serves all.

  fake-provider.py --port P --cert C --key K --count N --mode good|truncate|garbage|stall
Listens on 127.0.0.1 only; prints "ready" when listening."""
import argparse, re, socket, socketserver, ssl, sys

ap = argparse.ArgumentParser()
ap.add_argument('--port', type=int, required=True)
ap.add_argument('--cert', required=True)
ap.add_argument('--key', required=True)
ap.add_argument('--count', type=int, default=3)
ap.add_argument('--mode', default='good')
a = ap.parse_args()
CAPS = 'IMAP4rev1 AUTH=PLAIN SASL-IR UIDPLUS LITERAL+'


def body(uid):
    return ('From: fake@example.org\r\nMessage-ID: <fake-%d@test>\r\nSubject: fake %d\r\n\r\n'
            % (uid, uid) + 'line of the fake body\r\n' * 40).encode()


def uids_in(s):
    out = set()
    for part in s.split(','):
        lo, _, hi = part.partition(':')
        lo = int(lo) if lo != '*' else a.count
        hi = (int(hi) if hi not in ('', '*') else a.count) if _ else lo
        out.update(range(min(lo, hi), max(lo, hi) + 1))
    return sorted(u for u in out if 1 <= u <= a.count)


class H(socketserver.StreamRequestHandler):
    def send(self, s):
        self.wfile.write(s if isinstance(s, bytes) else s.encode())
        self.wfile.flush()

    def handle(self):
        self.send('* OK [CAPABILITY %s] fake ready\r\n' % CAPS)
        for raw in self.rfile:
            line = raw.decode(errors='replace').rstrip('\r\n')
            tag, _, rest = line.partition(' ')
            cmd = rest.upper()
            if cmd.startswith('CAPABILITY'):
                self.send('* CAPABILITY %s\r\n%s OK done\r\n' % (CAPS, tag))
            elif cmd.startswith('AUTHENTICATE') or cmd.startswith('LOGIN'):
                self.send('%s OK [CAPABILITY %s] Logged in\r\n' % (tag, CAPS))
            elif cmd.startswith('LIST'):
                self.send('* LIST (\\HasNoChildren) "/" INBOX\r\n%s OK done\r\n' % tag)
            elif cmd.startswith('SELECT') or cmd.startswith('EXAMINE'):
                self.send('* %d EXISTS\r\n* OK [UIDVALIDITY 7] x\r\n* OK [UIDNEXT %d] x\r\n'
                          '%s OK [READ-WRITE] done\r\n' % (a.count, a.count + 1, tag))
            elif cmd.startswith('UID FETCH') and 'BODY.PEEK[]' in cmd:
                for u in uids_in(rest.split()[2]):
                    b = body(u)
                    head = '* %d FETCH (UID %d FLAGS () INTERNALDATE "01-Mar-2026 10:00:00 +0000" BODY[] ' % (u, u)
                    if u == a.count and a.mode in ('truncate', 'stall'):
                        self.send(head + '{%d}\r\n' % len(b))
                        self.send(b[:len(b) // 3])
                        if a.mode == 'stall':
                            try:
                                self.request.settimeout(None)
                                self.request.recv(1)    # until the client gives up
                            except OSError:
                                pass
                        try:
                            self.request.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                        return
                    if u == a.count and a.mode == 'garbage':
                        self.send(head + '{12x}\r\n)) ((\x00 NIL {99999999999999999999}\r\n')
                        continue
                    self.send(head.encode() + b'{%d}\r\n' % len(b) + b + b')\r\n')
                self.send('%s OK done\r\n' % tag)
            elif cmd.startswith('UID FETCH'):
                for u in range(1, a.count + 1):
                    self.send('* %d FETCH (UID %d FLAGS ())\r\n' % (u, u))
                self.send('%s OK done\r\n' % tag)
            elif cmd.startswith('LOGOUT'):
                self.send('* BYE bye\r\n%s OK done\r\n' % tag)
                return
            else:
                self.send('%s OK done\r\n' % tag)


class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def get_request(self):
        sock, addr = super().get_request()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        return ctx.wrap_socket(sock, server_side=True), addr


srv = S(('127.0.0.1', a.port), H)
print('ready', flush=True)
srv.serve_forever()

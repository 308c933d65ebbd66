#!/usr/bin/python3
"""The provider for benchmark B7: a small threaded SMTP sink on loopback.

    relay-sink.py --port P --cert C --key K --user U --password-file F

STARTTLS required, AUTH PLAIN/LOGIN (with U and the password in F) required
before MAIL, any number of transactions per connection (so a relay that
keeps its connection open can reuse it).  Messages are counted and
dropped.  "XCOUNT" (no TLS or AUTH needed) answers "250 <n> <c>": the numbers
of messages accepted and of connections since the start, which is how the driver knows the
relay has delivered everything.  Lighter than tests/lib/smtp-sink.py
(aiosmtpd, files per message) so that the sink is not what is measured;
both relays talk to this same sink.
"""
import argparse
import base64
import socket
import socketserver
import ssl
import threading

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--cert", required=True)
ap.add_argument("--key", required=True)
ap.add_argument("--user", required=True)
ap.add_argument("--password-file", required=True)
args = ap.parse_args()
with open(args.password_file) as f:
    PASSWORD = f.read().rstrip("\r\n")

ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(args.cert, args.key)
lock = threading.Lock()
count = 0
conns = 0


class Session(socketserver.BaseRequestHandler):
    def setup(self):
        self.sock = self.request
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.tls = False
        self.authed = False

    def fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise EOFError
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def send(self, s):
        self.sock.sendall(s.encode() + b"\r\n")

    def data(self):
        # up to <CRLF>.<CRLF>; the 354 came right after a CRLF
        start = 0
        while True:
            i = self.buf.find(b"\r\n.\r\n", max(0, start - 4))
            if i >= 0:
                self.buf = self.buf[i + 5:]
                return
            start = len(self.buf)
            self.fill()

    def auth_ok(self, user, pw):
        return user == args.user and pw == PASSWORD

    def handle(self):
        global count, conns
        with lock:
            conns += 1
        try:
            self.send("220 bench-sink ESMTP")
            while True:
                l = self.line()
                verb = l[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    caps = ["250-bench-sink", "250-PIPELINING", "250-SIZE 52428800",
                            "250-8BITMIME", "250-ENHANCEDSTATUSCODES"]
                    caps.append("250-AUTH PLAIN LOGIN" if self.tls else "250-STARTTLS")
                    caps.append("250 SMTPUTF8")
                    self.send("\r\n".join(caps))
                elif verb == b"STAR" and not self.tls:
                    self.send("220 2.0.0 go ahead")
                    self.buf = b""
                    self.sock = ctx.wrap_socket(self.sock, server_side=True)
                    self.tls = True
                elif verb == b"AUTH" and self.tls:
                    parts = l.split()
                    mech = parts[1].upper() if len(parts) > 1 else b""
                    if mech == b"PLAIN":
                        tok = parts[2] if len(parts) > 2 else None
                        if tok is None:
                            self.send("334 ")
                            tok = self.line()
                        f = base64.b64decode(tok).split(b"\0")
                        ok = len(f) == 3 and self.auth_ok(f[1].decode(), f[2].decode())
                    elif mech == b"LOGIN":
                        if len(parts) > 2:
                            u = base64.b64decode(parts[2]).decode()
                        else:
                            self.send("334 VXNlcm5hbWU6")
                            u = base64.b64decode(self.line()).decode()
                        self.send("334 UGFzc3dvcmQ6")
                        p = base64.b64decode(self.line()).decode()
                        ok = self.auth_ok(u, p)
                    else:
                        ok = False
                    self.authed = ok
                    self.send("235 2.7.0 ok" if ok else "535 5.7.8 authentication failed")
                elif verb == b"MAIL":
                    self.send("250 2.1.0 ok" if self.authed else "530 5.7.0 auth first")
                elif verb == b"RCPT":
                    self.send("250 2.1.5 ok" if self.authed else "530 5.7.0 auth first")
                elif verb == b"DATA" and self.authed:
                    self.send("354 go")
                    self.data()
                    with lock:
                        count += 1
                        n = count
                    self.send("250 2.0.0 Ok: queued as sink-%d" % n)
                elif verb == b"RSET" or verb == b"NOOP":
                    self.send("250 2.0.0 ok")
                elif verb == b"QUIT":
                    self.send("221 2.0.0 bye")
                    return
                elif l.upper() == b"XCOUNT":
                    with lock:
                        n, c = count, conns
                    self.send("250 %d %d" % (n, c))
                else:
                    self.send("502 5.5.2 not here")
        except (EOFError, OSError, ssl.SSLError, ValueError, IndexError):
            return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


Server(("127.0.0.1", args.port), Session).serve_forever()

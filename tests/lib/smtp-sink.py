#!/usr/bin/python3
"""An SMTP sink standing in for the mail provider in tests (aiosmtpd).

    smtp-sink.py --port P --dir DIR --cert C --key K [--mode starttls|smtps]
                 [--user U --password-file F] [--smtputf8]

Requires TLS (STARTTLS or implicit) and, with --user, AUTH before MAIL.
Each accepted message is written to DIR/msg-<n>.json with its envelope and
DIR/msg-<n>.eml with its content; DIR/log gets one line per event.

Replies can be injected by writing DIR/rules, one rule a line, read on
every command:
    RCPT <address> <code> <text>     refuse that recipient
    MAIL <code> <text>               refuse every MAIL FROM
    DATA <code> <text>               refuse every message after its data
    STALL <bytes>                    after 354, read that many bytes of the
                                     data (all of it: "end") and then stop
                                     reading and never answer; the message is
                                     not stored
    SLOW <bytes per second>          read the data at that rate (a slow
                                     uplink), through a small receive
                                     buffer; the message is then accepted
"""
import argparse
import asyncio
import json
import os
import signal
import socket
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, syntax

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--dir", required=True)
ap.add_argument("--cert", required=True)
ap.add_argument("--key", required=True)
ap.add_argument("--mode", default="starttls", choices=["starttls", "smtps"])
ap.add_argument("--user")
ap.add_argument("--password-file")
ap.add_argument("--smtputf8", action="store_true")
args = ap.parse_args()

password = None
if args.password_file:
    with open(args.password_file) as f:
        password = f.read().rstrip("\r\n")


def log(line):
    with open(os.path.join(args.dir, "log"), "a") as f:
        f.write(line + "\n")


def rules():
    out = []
    try:
        with open(os.path.join(args.dir, "rules")) as f:
            for line in f:
                parts = line.strip().split(None, 1)
                if len(parts) == 2:
                    out.append((parts[0].upper(), parts[1]))
    except FileNotFoundError:
        pass
    return out


class Handler:
    count = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        for verb, rest in rules():
            if verb == "MAIL":
                log("MAIL refused " + address)
                return rest
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        for verb, rest in rules():
            if verb == "RCPT":
                addr, reply = rest.split(None, 1)
                if addr.lower() == address.lower():
                    log("RCPT refused " + address)
                    return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        for verb, rest in rules():
            if verb == "DATA":
                log("DATA refused")
                return rest
        Handler.count += 1
        n = Handler.count
        base = os.path.join(args.dir, "msg-%d" % n)
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content)
        with open(base + ".json", "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                       "authenticated": bool(session.authenticated),
                       "tls": session.ssl is not None,
                       "size": len(envelope.original_content)}, f)
        log("DATA accepted %d from=%s to=%s" % (n, envelope.mail_from,
                                                ",".join(envelope.rcpt_tos)))
        return "250 2.0.0 Ok: queued as sink-%d" % n


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword) and args.user is not None and
          auth_data.login.decode() == args.user and
          auth_data.password.decode() == password)
    log("AUTH %s %s" % (mechanism, "ok" if ok else "failed"))
    if ok:
        return AuthResult(success=True)
    # handled=False: aiosmtpd answers 535 itself (True would leave the client hanging)
    return AuthResult(success=False, handled=False)


class SlowReader:
    """Hands the data lines on at RATE bytes a second (the rest as the reader)."""

    def __init__(self, reader, rate):
        self.reader, self.rate, self.got = reader, rate, 0
        self.t0 = asyncio.get_running_loop().time()

    def __getattr__(self, name):
        return getattr(self.reader, name)

    async def readuntil(self, sep=b'\n'):
        line = await self.reader.readuntil(sep)
        self.got += len(line)
        ahead = self.got / self.rate - (asyncio.get_running_loop().time() - self.t0)
        if ahead > 0.01:
            await asyncio.sleep(ahead)
        return line


class SinkSMTP(SMTP):
    @syntax('DATA')
    async def smtp_DATA(self, arg):
        slow = [rest for verb, rest in rules() if verb == "SLOW"]
        if slow and self.envelope.rcpt_tos:
            sock = self.transport.get_extra_info('socket')
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
            reader = self._reader
            self._reader = SlowReader(reader, int(slow[0]))
            t0 = asyncio.get_running_loop().time()
            try:
                return await super().smtp_DATA(arg)
            finally:
                self._reader = reader
                log("DATA read slowly in %.1f s" % (asyncio.get_running_loop().time() - t0))
        stall = [rest for verb, rest in rules() if verb == "STALL"]
        if not stall or not self.envelope.rcpt_tos or (args.user and not self.session.authenticated):
            return await super().smtp_DATA(arg)
        await self.push('354 End data with <CR><LF>.<CR><LF>')
        got = 0
        try:
            if stall[0].strip() == "end":
                while (await self._reader.readuntil(b'\r\n')) != b'.\r\n':
                    got += 1
            else:
                got = len(await self._reader.readexactly(int(stall[0])))
        except asyncio.IncompleteReadError:
            return
        log("DATA stalled after %s" % ("the end" if stall[0].strip() == "end" else "%d bytes" % got))
        await asyncio.sleep(3600)   # cancelled when the client goes away


class SinkController(Controller):
    def factory(self):
        return SinkSMTP(self.handler, **self.SMTP_kwargs)


ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(args.cert, args.key)

kw = dict(hostname="127.0.0.1", port=args.port, enable_SMTPUTF8=args.smtputf8,
          ident="mailkeep-test-sink")
if args.user:
    kw.update(authenticator=authenticator, auth_required=True, auth_require_tls=True)
if args.mode == "smtps":
    kw.update(ssl_context=ctx)
else:
    kw.update(tls_context=ctx, require_starttls=True)

controller = SinkController(Handler(), **kw)
controller.start()
log("started port=%d mode=%s" % (args.port, args.mode))
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: done.set())
signal.signal(signal.SIGINT, lambda *a: done.set())
done.wait()
controller.stop()

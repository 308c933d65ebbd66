#!/usr/bin/python3
"""Fetch IMAP reference output for the sample messages from a real dovecot.

Usage (as root, with dovecot-imapd installed):
  dovecot-fetch.py --write          regenerate the *.expected files
  dovecot-fetch.py --check          compare a live dovecot with the stored files

Starts a throwaway dovecot on 127.0.0.1 (port $MIME_DOVECOT_PORT, default
14393 + pid % 1000) in a temporary directory, serving every *.eml in this
folder as the only message of a mailbox of the same name, runs as the
non-root user $MIME_DOVECOT_USER (default mktest: dovecot refuses uid 0),
FETCHes the items in ITEMS and stops dovecot again.

*.expected format: for each item, a line "ITEM <name>", a line with the byte
length N, N bytes of value, and a newline.  ENVELOPE/BODY/BODYSTRUCTURE/
RFC822.SIZE values are the raw IMAP text; BODY[...] values are the string's
contents (literal or quoted decoded), or the 3 bytes NIL.
"""
import os, pwd, re, shutil, signal, socket, subprocess, sys, tempfile, time

HERE = os.environ.get("MIME_SAMPLES_DIR") or os.path.dirname(os.path.abspath(__file__))
ITEMS = ["ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822.SIZE",
         "BODY[]", "BODY[HEADER]", "BODY[TEXT]", "BODY[1]", "BODY[1.MIME]",
         "BODY[2]", "BODY[2.MIME]", "BODY[2.HEADER]", "BODY[2.TEXT]", "BODY[2.1]",
         "BODY[2.1.MIME]", "BODY[2.2]", "BODY[1.1]", "BODY[3]",
         "BODY[HEADER.FIELDS (From Subject X-Nothing)]",
         "BODY[HEADER.FIELDS.NOT (From Subject)]",
         "BODY[2.HEADER.FIELDS (Subject)]",
         "BODY[]<5.20>", "BODY[TEXT]<0.7>", "BODY[1]<2.300>"]

CONF = """base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/log
ssl = no
listen = 127.0.0.1
protocols = imap
mail_location = maildir:{d}/mail:LAYOUT=fs
mail_privileged_group =
auth_mechanisms = plain
disable_plaintext_auth = no
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid={user} gid={gid} home={d}/home
}}
"""


def samples():
    return sorted(f[:-4] for f in os.listdir(HERE) if f.endswith(".eml"))


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.buf = b""
        self.n = 0
        self.line()

    def read(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise EOFError
            self.buf += d
        r, self.buf = self.buf[:n], self.buf[n:]
        return r

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError
            self.buf += d
        i = self.buf.index(b"\r\n") + 2
        r, self.buf = self.buf[:i], self.buf[i:]
        return r

    def response(self):
        """One response with its literals."""
        out = b""
        while True:
            ln = self.line()
            out += ln
            m = re.search(rb"\{(\d+)\}\r\n$", ln)
            if not m:
                return out
            out += self.read(int(m.group(1)))

    def cmd(self, text):
        self.n += 1
        tag = b"t%d" % self.n
        self.s.sendall(tag + b" " + text.encode() + b"\r\n")
        res = []
        while True:
            r = self.response()
            if r.startswith(tag + b" "):
                if not r.startswith(tag + b" OK"):
                    raise RuntimeError(r)
                return res
            res.append(r)


def value_of(item, resp):
    m = re.match(rb"\* 1 FETCH \((.*)\)\r\n$", resp, re.S)
    body = m.group(1)
    if "[" in item:
        i = body.index(b"]") + 1
        if body[i:i + 1] == b"<":
            i = body.index(b">", i) + 1
    else:
        i = body.index(b" ")
    v = body[i + 1:]
    if "[" not in item:
        return v
    if v == b"NIL":
        return v
    lm = re.match(rb"~?\{(\d+)\}\r\n", v)
    if lm:
        return v[lm.end():]
    assert v[:1] == b'"' and v[-1:] == b'"', v
    return re.sub(rb'\\(.)', rb'\1', v[1:-1])


def fetch_all(port):
    c = Conn(port)
    c.cmd("LOGIN u x")
    out = {}
    for name in samples():
        c.cmd('SELECT "%s"' % name)
        vals = []
        for item in ITEMS:
            peek = item.replace("BODY[", "BODY.PEEK[", 1)
            r = [x for x in c.cmd("FETCH 1 (%s)" % peek) if b" FETCH " in x]
            vals.append((item, value_of(item, r[0])))
        out[name] = vals
    c.cmd("LOGOUT")
    return out


def encode(vals):
    b = b""
    for item, v in vals:
        b += b"ITEM %s\n%d\n" % (item.encode(), len(v)) + v + b"\n"
    return b


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "--check"
    user = os.environ.get("MIME_DOVECOT_USER", "mktest")
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        print("skip: no user %s (useradd --system %s)" % (user, user))
        return 77
    if not shutil.which("dovecot"):
        print("skip: dovecot not installed")
        return 77
    port = int(os.environ.get("MIME_DOVECOT_PORT", 14393 + os.getpid() % 1000))
    d = tempfile.mkdtemp(prefix="mime-dovecot-")
    os.chmod(d, 0o755)
    try:
        for sub in ("run", "state", "home", "mail"):
            os.makedirs(os.path.join(d, sub))
        for name in samples():
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(d, "mail", name, sub))
            shutil.copy(os.path.join(HERE, name + ".eml"),
                        os.path.join(d, "mail", name, "cur", "1000000000.M1P1.test:2,"))
        for root, dirs, files in os.walk(d):
            for x in dirs + files:
                os.chown(os.path.join(root, x), pw.pw_uid, pw.pw_gid)
        conf = os.path.join(d, "dovecot.conf")
        with open(conf, "w") as f:
            f.write(CONF.format(d=d, port=port, user=pw.pw_uid, gid=pw.pw_gid))
        subprocess.run(["dovecot", "-c", conf], check=True)
        try:
            for _ in range(50):
                try:
                    socket.create_connection(("127.0.0.1", port)).close()
                    break
                except OSError:
                    time.sleep(0.1)
            res = fetch_all(port)
        finally:
            with open(os.path.join(d, "run", "master.pid")) as f:
                os.kill(int(f.read()), signal.SIGTERM)
            time.sleep(0.3)
        bad = 0
        for name, vals in res.items():
            path = os.path.join(HERE, name + ".expected")
            if mode == "--write":
                with open(path, "wb") as f:
                    f.write(encode(vals))
            else:
                with open(path, "rb") as f:
                    if f.read() != encode(vals):
                        print("DIFFERS: %s" % name)
                        bad += 1
        print("%d samples, %d differ" % (len(res), bad))
        return 1 if bad else 0
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

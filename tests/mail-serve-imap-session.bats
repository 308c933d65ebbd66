#!/usr/bin/env bats
# mail-serve-imap hands a logged-in client to mail-imap-session (like
# dovecot's imap-login -> imap): the session process is the lean binary,
# maps no TLS/LDAP/curl/xml library and holds no descriptor to the config,
# the passwd file or the TLS key; TLS clients go through the pre-login
# process acting as TLS proxy; bytes pipelined after LOGIN are not lost.

load lib/common
load lib/imapd

setup() {
	load_bats_libs
	D=$(mk_tmp)
	mk_imapd_init "$D"
}

teardown() {
	mk_imapd_stop
	true
}

# Python helpers for the scripts below (prepended to each).
PYLIB='
import re, select, subprocess, zlib
FAT = ("libssl", "libcrypto", "libldap", "liblber", "libcurl", "libxml2", "libgnutls", "libsasl")
def owners(sock):
    """(name, pid) of the processes holding the server end of SOCK."""
    lport = sock.getsockname()[1]
    out = subprocess.run(["ss", "-tnpH", "dst", "127.0.0.1:%d" % lport],
                         capture_output=True, text=True).stdout
    return sorted(set((n, int(p)) for n, p in re.findall(r"\"([^\"]+)\",pid=(\d+)", out)))
def children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                st = open("/proc/%s/stat" % d).read()
            except OSError:
                continue
            if int(st.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d))
    return kids
def exe(pid):
    return os.path.basename(os.readlink("/proc/%d/exe" % pid))
def fat_libs(pid):
    libs = set(l.split()[-1] for l in open("/proc/%d/maps" % pid) if ".so" in l)
    return sorted(l for l in libs if any(f in l for f in FAT))
def open_files(pid):
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    return out
def check_lean(pid):
    check(exe(pid) == "mail-imap-session", ("session binary", exe(pid)))
    check(fat_libs(pid) == [], ("libraries in the session", fat_libs(pid)))
    files = open_files(pid)
    for secret in ("passwd", "key.pem", "mailkeep.conf"):
        check(not any(secret in f for f in files), ("descriptor to", secret, files))
    status = open("/proc/%d/status" % pid).read()
    uid = int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))
    check(uid != 0, "the session runs as vmail_user, not root")
def tls_ctx():
    ctx = ssl.create_default_context(cafile=os.environ["CA"])
    ctx.check_hostname = False
    return ctx
def pipelined(sock, lines, until):
    """Sends LINES in one write, reads until a line starting with UNTIL."""
    sock.sendall(b"".join(l + b"\r\n" for l in lines))
    buf = b""
    while not re.search(rb"(^|\n)" + re.escape(until) + rb" ", buf):
        d = sock.recv(65536)
        if not d:
            break
        buf += d
    return buf
'

@test "session: after login the client is served by mail-imap-session, without TLS/LDAP libraries or secrets" {
	[ -x "$MK_BUILD/libexec/mailkeep/mail-imap-session" ]
	# refuses to run by hand
	run "$MK_BUILD/libexec/mailkeep/mail-imap-session" 3<&-
	assert_failure 64
	mk_imapd_start --allow-plaintext
	run mk_imap_py <<PY
$PYLIB
m = connect()
pre = owners(m.socket())
print("before login:", pre)
check(len(pre) == 1 and exe(pre[0][1]) == "mail-serve-imap", pre)
# the check below means something: the pre-login process does map OpenSSL
check(any("libssl" in l for l in fat_libs(pre[0][1])), "pre-login maps libssl")
m.login(USER, PW)
typ, d = m.select("INBOX")
check(typ == "OK", d)
m.noop()
post = owners(m.socket())
print("after login:", post)
check(len(post) == 1 and post[0][1] == pre[0][1], ("same process, exec'd", pre, post))
check_lean(post[0][1])
m.append("INBOX", None, None, b"Subject: lean\r\n\r\nhello\r\n")
typ, d = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
check(typ == "OK" and any(b"Subject: lean" in x[1] for x in d if isinstance(x, tuple)), d)
m.logout()
print("ok")
PY
	echo "$output"
	assert_success
	assert_output --partial ok
	# one login and one disconnect line, the latter from the session binary
	run grep -c 'event=login ' "$D/imapd.log"
	assert_output 1
	run grep -c 'event=disconnect .*user=alice@example.com' "$D/imapd.log"
	assert_output 1
}

@test "session: commands pipelined after LOGIN reach the session (plaintext and TLS)" {
	mk_imapd_start --allow-plaintext
	run mk_imap_py <<PY
$PYLIB
s = socket.create_connection((HOST, PORT))
s.recv(4096)
out = pipelined(s, [b"a LOGIN " + USER.encode() + b" " + PW.encode(), b"b SELECT INBOX",
                    b"c NOOP", b"d LOGOUT"], b"d")
print(out.decode())
for t in (b"a OK", b"b OK", b"c OK", b"d OK"):
    check(t in out, t)
print("ok")
PY
	echo "$output"
	assert_success
	assert_output --partial ok
	mk_imapd_stop
	mk_imapd_start --tls
	run mk_imap_py <<PY
$PYLIB
s = tls_ctx().wrap_socket(socket.create_connection((HOST, PORT)))
s.recv(4096)
out = pipelined(s, [b"a LOGIN " + USER.encode() + b" " + PW.encode(), b"b SELECT INBOX",
                    b"c NOOP", b"d LOGOUT"], b"d")
print(out.decode())
for t in (b"a OK", b"b OK", b"c OK", b"d OK"):
    check(t in out, t)
print("ok")
PY
	echo "$output"
	assert_success
	assert_output --partial ok
}

@test "session: TLS clients go through the pre-login process as proxy; IDLE, COMPRESS and big responses work" {
	mk_imapd_start --tls
	run mk_imap_py <<PY
$PYLIB
m = imaplib.IMAP4_SSL(HOST, PORT, ssl_context=tls_ctx())
m.login(USER, PW)
body = b"Subject: big\r\n\r\n" + b"".join(b"line %06d of a big message\r\n" % i for i in range(40000))
typ, d = m.append("INBOX", None, None, body)
check(typ == "OK", d)
m.select("INBOX")
front = owners(m.socket())
print("holding the TLS socket:", front)
check(len(front) == 1 and exe(front[0][1]) == "mail-serve-imap", front)
kids = children(front[0][1])
print("its children:", [(k, exe(k)) for k in kids])
check(len(kids) == 1, kids)
check_lean(kids[0])
typ, d = m.fetch("1", "(BODY.PEEK[])")
check(typ == "OK" and d[0][1] == body, "big message intact through the proxy")

# many pipelined commands while reading concurrently: no deadlock in the proxy
s = tls_ctx().wrap_socket(socket.create_connection((HOST, PORT)))
s.settimeout(60)
s.recv(4096)
s.sendall(b"a LOGIN " + USER.encode() + b" " + PW.encode() + b"\r\nb SELECT INBOX\r\n")
cmds = b"".join(b"f%d FETCH 1 (BODY.PEEK[])\r\n" % i for i in range(30)) + b"z LOGOUT\r\n"
s.setblocking(False)
tail, bodies, done = b"", 0, False
while not done:
    r, w, _ = select.select([s], [s] if cmds else [], [], 60)
    check(r or w, "the proxy stalled")
    if w and cmds:
        try:
            cmds = cmds[s.send(cmds[:16384]):]
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            pass
    while not done:
        try:
            d = s.recv(1 << 20)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            break
        done = not d
        old, tail = len(tail), tail + d
        bodies += tail.count(b"BODY[] {") - tail[:old].count(b"BODY[] {")
        done = done or b"z OK" in tail
        tail = tail[-64:]
check(bodies == 30 and b"z OK" in tail, ("pipelined fetches through the proxy", bodies))

# IDLE through the proxy: another session's APPEND wakes it
m.socket().settimeout(30)
tag = m._new_tag()
m.send(tag + b" IDLE\r\n")
check(m.readline().startswith(b"+"), "idling")
o = imaplib.IMAP4_SSL(HOST, PORT, ssl_context=tls_ctx())
o.login(USER, PW)
o.append("INBOX", None, None, b"Subject: wake\r\n\r\nup\r\n")
o.logout()
line = m.readline()
print("idle saw:", line)
check(b"EXISTS" in line, line)
m.send(b"DONE\r\n")
while not m.readline().startswith(tag):
    pass

# COMPRESS=DEFLATE inside TLS
imaplib.Commands["COMPRESS"] = ("AUTH", "SELECTED")
typ, d = m._simple_command("COMPRESS", "DEFLATE")
check(typ == "OK", d)
sock = m.socket()
z_out = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
z_in = zlib.decompressobj(-15)
sock.sendall(z_out.compress(b"c1 NOOP\r\nc2 LOGOUT\r\n") + z_out.flush(zlib.Z_SYNC_FLUSH))
got = b""
while b"c2 OK" not in got:
    d = sock.recv(65536)
    if not d:
        break
    got += z_in.decompress(d)
print(got.decode())
check(b"c1 OK" in got and b"c2 OK" in got, got)
print("ok")
PY
	echo "$output"
	assert_success
	assert_output --partial ok
}

@test "session: STARTTLS then login hands off through the proxy too" {
	mk_imapd_start
	run mk_imap_py <<PY
$PYLIB
m = connect()
m.starttls(ssl_context=tls_ctx())
m.login(USER, PW)
typ, d = m.select("INBOX")
check(typ == "OK", d)
front = owners(m.socket())
check(len(front) == 1 and exe(front[0][1]) == "mail-serve-imap", front)
kids = children(front[0][1])
check(len(kids) == 1, kids)
check_lean(kids[0])
m.logout()
print("ok")
PY
	echo "$output"
	assert_success
	assert_output --partial ok
}

# imaplib writes an APPEND literal and the CRLF that ends the command in two
# writes; with Nagle on its side the CRLF waits for our ACK of the literal,
# which the kernel delays (up to 40 ms) while the server has nothing to say.
# The server acknowledges at once - the session on plaintext, the pre-login
# process on TLS.  Counted with the kernel's DelayedACKs counter, not timed.
@test "session: APPEND literals are acknowledged at once, on plaintext and through the TLS proxy" {
	for mode in plain tls; do
		mk_imapd_stop
		if [ "$mode" = tls ]; then mk_imapd_start --tls; else mk_imapd_start; fi
		run mk_imap_py <<PY
$PYLIB
def delayed_acks():
    lines = open("/proc/net/netstat").read().split("\n")
    for names, values in zip(lines[0::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split()[1:], values.split()[1:]))["DelayedACKs"])
if "$mode" == "tls":
    m = imaplib.IMAP4_SSL(HOST, PORT, ssl_context=tls_ctx())
else:
    m = connect()
m.login(USER, PW)
m.append("INBOX", None, None, b"Subject: warm-up\r\n\r\nx\r\n")
before, t0 = delayed_acks(), time.time()
for i in range(30):
    typ, d = m.append("INBOX", None, None, b"Subject: ack-$mode %d\r\n\r\nbody %d\r\n" % (i, i))
    check(typ == "OK", d)
took, delayed = time.time() - t0, delayed_acks() - before
print("$mode: 30 APPENDs in %.3f s, delayed ACKs %d" % (took, delayed))
m.select("INBOX")
typ, d = m.search(None, "SUBJECT", "ack-$mode")
check(len(d[0].split()) == 30, d)
# without the immediate ACK each APPEND waits for one: 30 or more
check(delayed < 10, "delayed ACKs: %d" % delayed)
m.logout()
print("ok")
PY
		echo "$output"
		assert_success
		assert_output --partial ok
	done
}

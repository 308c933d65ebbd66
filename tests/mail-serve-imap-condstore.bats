#!/usr/bin/env bats
# mail-serve-imap: CONDSTORE and QRESYNC (RFC 7162) with modseqs persisted
# in the folder's mailkeep-modseq, driven by raw IMAP from python.

load lib/common
load lib/imapd

setup() {
	load_bats_libs
	D=$(mk_tmp)
	mk_imapd_init "$D"
	mk_imapd_start
}

teardown() {
	mk_imapd_stop
	true
}

# python prelude: a raw IMAP session and response parsers
RAW='
import re, json, threading
class Raw:
    def __init__(self):
        self.s = socket.create_connection((HOST, PORT)); self.f = self.s.makefile("rb"); self.n = 0
        self.f.readline()
        r = self.cmd("LOGIN %s %s" % (USER, PW)); check(" OK " in r[-1], "login: %s" % r)
    def cmd(self, line):
        self.n += 1; tag = "t%d" % self.n
        self.s.sendall(("%s %s\r\n" % (tag, line)).encode())
        out = []
        while True:
            l = self.f.readline().decode().rstrip("\r\n")
            if l == "": raise Exception("connection closed after %s: %s" % (line, out))
            out.append(l)
            if l.startswith(tag + " "): return out
    def ok(self, line):
        r = self.cmd(line); check(r[-1].split()[1] == "OK", "%s -> %s" % (line, r)); return r
def fetches(lines):
    """uid -> (flags, modseq) from untagged FETCH lines"""
    d = {}
    for l in lines:
        m = re.match(r"\* \d+ FETCH \((.*)\)$", l)
        if not m: continue
        b = m.group(1); u = re.search(r"UID (\d+)", b); f = re.search(r"FLAGS \(([^)]*)\)", b)
        ms = re.search(r"MODSEQ \((\d+)\)", b)
        d[int(u.group(1)) if u else None] = (f.group(1) if f else None, int(ms.group(1)) if ms else None)
    return d
def first_modseq(lines, uid):
    """the MODSEQ of the first FETCH for UID (later ones may be changes by other sessions)"""
    for l in lines:
        if re.match(r"\* \d+ FETCH \(UID %d " % uid, l):
            return int(re.search(r"MODSEQ \((\d+)\)", l).group(1))
def highest(lines):
    m = re.search(r"HIGHESTMODSEQ (\d+)", "\n".join(lines)); return int(m.group(1)) if m else None
def vanished(lines):
    for l in lines:
        if l.startswith("* VANISHED"): return l
    return None
def append(n, start=0):
    m = login()
    for i in range(start, start + n):
        m.append("INBOX", None, None, ("From: a@example.com\r\nSubject: m%d\r\n\r\nbody %d\r\n" % (i, i)).encode())
    m.logout()
'

@test "CONDSTORE: HIGHESTMODSEQ, FETCH MODSEQ/CHANGEDSINCE, STORE UNCHANGEDSINCE -> MODIFIED, SEARCH MODSEQ, STATUS" {
	run mk_imap_py <<PY
$RAW
append(5)
r = Raw()
caps = r.ok("CAPABILITY")[0]
check("CONDSTORE" in caps and "QRESYNC" in caps, caps)
sel = r.ok("SELECT INBOX (CONDSTORE)")
h0 = highest(sel); check(h0 and h0 > 1, "HIGHESTMODSEQ on SELECT: %s" % sel)
f = fetches(r.ok("FETCH 1:* (UID FLAGS MODSEQ)"))
check(sorted(f) == [1, 2, 3, 4, 5] and all(0 < v[1] <= h0 for v in f.values()), f)
# a STORE gives a new modseq, reported with the flags
s = fetches(r.ok("UID STORE 2 +FLAGS (\\\\Seen)"))
m2 = s[2][1]; check(m2 > h0 and "\\\\Seen" in s[2][0], s)
# CHANGEDSINCE: only what changed, MODSEQ implied
c = r.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % h0)
check(list(fetches(c)) == [2] and fetches(c)[2][1] == m2, c)
check(fetches(r.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % m2)) == {}, "nothing since m2")
# UNCHANGEDSINCE: 2 changed after h0 -> MODIFIED 2; 3 is stored
u = r.cmd("UID STORE 2,3 (UNCHANGEDSINCE %d) +FLAGS (\\\\Flagged)" % h0)
check(u[-1].split()[1] == "OK" and "[MODIFIED 2]" in u[-1], u)
fu = fetches(u); check(list(fu) == [3] and "\\\\Flagged" in fu[3][0] and fu[3][1] > m2, u)
m3 = fu[3][1]
u = r.cmd("STORE 1 (UNCHANGEDSINCE 0) +FLAGS (\\\\Flagged)")
check("[MODIFIED 1]" in u[-1] and fetches(u) == {}, u)
# .SILENT still tells the new MODSEQ, without FLAGS
s = r.ok("UID STORE 4 +FLAGS.SILENT (\\\\Answered)")
fs = fetches(s); check(fs[4][0] is None and fs[4][1] > m3, s)
m4 = fs[4][1]
# a STORE that changes nothing keeps the modseq
check(fetches(r.ok("UID STORE 4 +FLAGS (\\\\Answered)"))[4][1] == m4, "no-op store")
# SEARCH MODSEQ answers the highest modseq of the matches
s = r.ok("UID SEARCH MODSEQ %d" % (h0 + 1))
check(re.match(r"\* SEARCH 2 3 4 \(MODSEQ %d\)$" % m4, s[0]) is not None, s)
s = r.ok("UID SEARCH RETURN (ALL) MODSEQ %d" % (m2 + 1))
check("ALL 3:4 MODSEQ %d" % m4 in s[0], s)
st = r.ok("STATUS INBOX (HIGHESTMODSEQ MESSAGES)")
check("HIGHESTMODSEQ %d" % m4 in st[0] and "MESSAGES 5" in st[0], st)
# another session's change comes as an unsolicited FETCH with MODSEQ
r2 = Raw(); r2.ok("SELECT INBOX"); x = r2.ok("UID STORE 5 +FLAGS (\\\\Draft)")
check(fetches(x)[5][1] is None, "no MODSEQ without CONDSTORE: %s" % x)
n = fetches(r.ok("NOOP"))
check(list(n) == [5] and n[5][1] > m4 and "\\\\Draft" in n[5][0], n)
# FETCH MODSEQ on a session that never enabled CONDSTORE enables it
r3 = Raw(); r3.ok("EXAMINE INBOX")
check(fetches(r3.ok("FETCH 5 (MODSEQ)"))[None][1] == n[5][1], "modseq via FETCH")
check(fetches(r3.ok("UID FETCH 5 (MODSEQ)"))[5][1] == n[5][1], "modseq via UID FETCH")
print("ok")
PY
	echo "$output"
	assert_success
	assert_output --partial ok
	# the store lives next to the folder, under a name no folder can have
	[ -s "$(mk_imapd_home alice@example.com)/mail/mailkeep-modseq" ]
}

@test "QRESYNC: a reconnecting client gets only the changes, also across a server restart" {
	st=$D/state.json
	run mk_imap_py <<PY
$RAW
append(6)
r = Raw()
e = r.ok("ENABLE QRESYNC")
check(e[0].startswith("* ENABLED") and "QRESYNC" in e[0] and "CONDSTORE" in e[0], e)
sel = r.ok("SELECT INBOX")
uv = int(re.search(r"UIDVALIDITY (\d+)", "\n".join(sel)).group(1))
json.dump({"uv": uv, "h": highest(sel)}, open("$st", "w"))
r.ok("LOGOUT")
# changes while the client is away: a flag by another session, an expunge, an arrival
r2 = Raw(); r2.ok("SELECT INBOX")
r2.ok("UID STORE 2 +FLAGS (\\\\Flagged)"); r2.ok("UID STORE 3 +FLAGS (\\\\Deleted)")
x = r2.ok("EXPUNGE"); check("* 3 EXPUNGE" in x, x)
r2.ok("LOGOUT")
append(1, 6)
print("ok")
PY
	echo "$output"
	assert_success
	# a writer that knows nothing about modseqs (dovecot, an MUA) marks UID 4 seen
	home=$(mk_imapd_home alice@example.com)/mail
	base=$(sed -n 's/^4 [^:]*:\(.*\)$/\1/p' "$home/dovecot-uidlist")
	base=${base%%:2,*}
	f=$(ls "$home/cur" | grep -F "$base")
	mv "$home/cur/$f" "$home/cur/${f%%:2,*}:2,S"
	# the server restarts: the modseqs are on disk
	mk_imapd_stop
	mk_imapd_start
	run mk_imap_py <<PY
$RAW
s = json.load(open("$st"))
r = Raw(); r.ok("ENABLE QRESYNC")
sel = r.ok("SELECT INBOX (QRESYNC (%d %d))" % (s["uv"], s["h"]))
h1 = highest(sel)
check(h1 > s["h"], "HIGHESTMODSEQ grew: %s" % sel)
check(vanished(sel) == "* VANISHED (EARLIER) 3", sel)
f = fetches(sel)
check(sorted(f) == [2, 4, 7], "only the changed messages: %s" % sel)
check("\\\\Flagged" in f[2][0] and "\\\\Seen" in f[4][0], f)
check(all(s["h"] < v[1] <= h1 for v in f.values()), f)
# known-uids limits the answer; an up-to-date client gets nothing
r.ok("UNSELECT")
sel = r.ok("EXAMINE INBOX (QRESYNC (%d %d 1:2))" % (s["uv"], s["h"]))
check(vanished(sel) is None and sorted(fetches(sel)) == [2], sel)
sel = r.ok("SELECT INBOX (QRESYNC (%d %d))" % (s["uv"], h1))
check(any("[CLOSED]" in l for l in sel), "CLOSED before the new mailbox: %s" % sel)
check(vanished(sel) is None and fetches(sel) == {}, sel)
# a wrong UIDVALIDITY: a plain SELECT, no resync data
sel = r.ok("EXAMINE INBOX (QRESYNC (%d %d))" % (s["uv"] + 1, s["h"]))
check(vanished(sel) is None and fetches(sel) == {}, sel)
sel = r.ok("SELECT INBOX")
# UID FETCH CHANGEDSINCE VANISHED
x = r.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % s["h"])
check(vanished(x) == "* VANISHED (EARLIER) 3" and sorted(fetches(x)) == [2, 4, 7], x)
# EXPUNGE reports VANISHED and the new HIGHESTMODSEQ
r.ok("UID STORE 5:6 +FLAGS.SILENT (\\\\Deleted)")
x = r.ok("EXPUNGE")
check("* VANISHED 5:6" in x and not any(l.endswith("EXPUNGE") for l in x[:-1]), x)
h2 = highest(x[-1:]); check(h2 and h2 > h1, x)
# the store survives: STATUS from a fresh process agrees, and CLOSE reports it too
st = Raw().ok("STATUS INBOX (HIGHESTMODSEQ)")
check("HIGHESTMODSEQ %d" % h2 in st[0], st)
c = r.ok("CLOSE"); check(highest(c) == h2, c)
# VANISHED without QRESYNC is refused
r4 = Raw(); r4.ok("SELECT INBOX")
check(" BAD " in r4.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")[-1], "BAD")
check(" BAD " in r4.cmd("SELECT INBOX (QRESYNC (1 1))")[-1], "QRESYNC not enabled")
json.dump({"h": h2, "uv": s["uv"]}, open("$st", "w"))
print("ok")
PY
	echo "$output"
	assert_success
	assert_output --partial ok
	# the store file lost: rebuilt above everything handed out before
	rm -f "$home/mailkeep-modseq"
	run mk_imap_py <<PY
$RAW
s = json.load(open("$st"))
r = Raw(); r.ok("ENABLE QRESYNC")
sel = r.ok("SELECT INBOX (QRESYNC (%d %d))" % (s["uv"], s["h"]))
check(highest(sel) > s["h"], "monotonic after loss: %s" % sel)
f = fetches(sel)
check(sorted(f) == [1, 2, 4, 7], "every message is reported again: %s" % sel)
print("ok")
PY
	echo "$output"
	assert_success
	assert_output --partial ok
}

@test "concurrent STOREs from two sessions: every change its own modseq, no change lost" {
	run mk_imap_py <<PY
$RAW
append(10)
seen = {}
errors = []
def worker(flag, name):
    try:
        r = Raw(); r.ok("SELECT INBOX (CONDSTORE)")
        for i in range(40):
            uid = i % 10 + 1
            op = "+" if (i // 10) % 2 == 0 else "-"
            ms = first_modseq(r.ok("UID STORE %d %sFLAGS (%s)" % (uid, op, flag)), uid)
            seen.setdefault(ms, []).append((name, uid, op))
        r.ok("LOGOUT")
    except Exception as e:
        errors.append(repr(e))
t = [threading.Thread(target=worker, args=(fl, n)) for fl, n in (("\\\\Seen", "a"), ("\\\\Flagged", "b"))]
[x.start() for x in t]; [x.join() for x in t]
check(not errors, errors)
dup = {k: v for k, v in seen.items() if len(v) > 1}
check(len(seen) == 80 and not dup, "shared modseqs: %s" % dup)
# each session's own flag survived the other's +FLAGS/-FLAGS (no lost update)
r = Raw(); r.ok("SELECT INBOX")
f = fetches(r.ok("UID FETCH 1:* (FLAGS)"))
check(all(v[0] == "" for v in f.values()), "both sessions ended with the flags off: %s" % f)
r.ok("UID STORE 1:10 +FLAGS (\\\\Seen)")
h = highest(r.ok("STATUS INBOX (HIGHESTMODSEQ)")[:1])
check(h > max(seen), "one modseq for one STORE of 10 messages: %s vs %s" % (h, max(seen)))
print("ok")
PY
	echo "$output"
	assert_success
	assert_output --partial ok
}

@test "changes nobody logged (an MUA's rename, an unlink) still reach a session and get new modseqs; a re-SELECT of the same folder (kept store) and of a recreated one is right" {
	MAILDIR=$(mk_imapd_home alice@example.com)/mail
	export MAILDIR
	run mk_imap_py <<PY
$RAW
import os, glob
append(4)
a = Raw(); r = a.ok("SELECT INBOX (CONDSTORE)"); h0 = highest(r)
b = Raw(); b.ok("SELECT INBOX (CONDSTORE)")
def file_of(uid):
    ul = open(os.environ["MAILDIR"] + "/dovecot-uidlist").read().split("\n")[1:]
    base = [l.split(":", 1)[1] for l in ul if l.startswith("%d " % uid)][0].split(":")[0]
    return glob.glob(os.environ["MAILDIR"] + "/cur/" + base + "*")[0]
# an MUA sets \Seen on UID 2 by renaming the file, without any lock
p = file_of(2); q = p.split(":2,")[0] + ":2,S"
os.rename(p, q)
f = fetches(a.ok("NOOP"))
check(f.get(2, (None,))[0] == "\\\\Seen" and f[2][1] > h0, "external flag change seen with a new modseq: %s" % f)
h1 = f[2][1]
# our other session's APPEND and STORE: seen with the modseq b was told
m = login(); m.append("INBOX", None, None, b"Subject: five\r\n\r\nbody\r\n"); m.logout()
sb = first_modseq(b.ok("UID STORE 1 +FLAGS (\\\\Flagged)"), 1)
r = a.ok("NOOP")
check("* 5 EXISTS" in r, "arrival seen: %s" % r)
f = fetches(r)
check(f.get(1) == ("\\\\Flagged", sb), "the other session's STORE with its modseq: %s vs %s" % (f, sb))
f = fetches(a.ok("UID FETCH 5 (MODSEQ)"))
check(f[5][1] > h1, "the arrival has a modseq of its own: %s" % f)
# an unlink nobody logged: EXPUNGE at NOOP, and HIGHESTMODSEQ moves on
os.unlink(file_of(3))
r = a.ok("NOOP")
check("* 3 EXPUNGE" in r, "external expunge seen: %s" % r)
h2 = highest(a.ok("STATUS INBOX (HIGHESTMODSEQ)")[:1])
# CLOSE, change meanwhile, SELECT the same folder again (the session kept its store)
a.ok("CLOSE")
p = file_of(4); os.rename(p, p.split(":2,")[0] + ":2,F")
r = a.ok("SELECT INBOX (CONDSTORE)")
check("* 4 EXISTS" in r and highest(r) > h2, "re-SELECT: %s" % r)
f = fetches(a.ok("UID FETCH 4 (FLAGS MODSEQ)"))
check(f[4][0] == "\\\\Flagged" and f[4][1] > h2, "change made while closed: %s" % f)
# a folder deleted and recreated between two SELECTs is a new folder
a.ok("CREATE Box"); a.ok("SELECT Box"); v1 = [l for l in a.ok("SELECT Box") if "UIDVALIDITY" in l]
a.ok("CLOSE")
b.ok("DELETE Box"); b.ok("CREATE Box")
time.sleep(1.1)
b.ok("DELETE Box"); b.ok("CREATE Box")
m = login(); m.append("Box", None, None, b"Subject: new box\r\n\r\nbody\r\n"); m.logout()
r = a.ok("SELECT Box")
v2 = [l for l in r if "UIDVALIDITY" in l]
check("* 1 EXISTS" in r and v1 != v2, "recreated folder: %s / %s" % (v1, r))
check(fetches(a.ok("UID FETCH 1 (FLAGS)")), "its message is there")
print("ok")
PY
	echo "$output"
	assert_success
	assert_output --partial ok
}

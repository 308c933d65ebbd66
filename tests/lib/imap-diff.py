#!/usr/bin/python3
"""Differential IMAP check: runs the same raw command scripts against two
servers serving the same Maildir (read-only: EXAMINE) and compares the
untagged responses byte for byte, and the tagged ones by status and
response code (the human text after it differs, and dovecot adds timings).

  imap-diff.py OURS_PORT PEER_PORT USER PW_OURS PW_PEER SCRIPTFILE

SCRIPTFILE: command lines without tags, one per line; "#" comments; the
text \r\n in a line is sent as CRLF (for LITERAL+ APPEND data).
USER may be "OURS_USER,PEER_USER" when each server has its own copy of the
tree (write sessions).
Exit 0 when all agree, 1 with a unified diff of the first differences."""
import difflib, re, socket, sys

ours, peer, users, pw_ours, pw_peer, script = sys.argv[1:7]
user_ours, _, user_peer = users.partition(',')
user_peer = user_peer or user_ours
cmds = [l.rstrip('\n') for l in open(script) if l.strip() and not l.startswith('#')]

def skip_value(b, i):
    """End index of one IMAP value starting at b[i] (atom, "quoted",
    {n} literal, or a parenthesised list of those)."""
    c = b[i:i + 1]
    if c == b'"':
        i += 1
        while b[i:i + 1] != b'"':
            i += 2 if b[i:i + 1] == b'\\' else 1
        return i + 1
    if c == b'{':
        j = b.index(b'}', i)
        n = int(b[i + 1:j])
        return j + 3 + n
    if c == b'(':
        i += 1
        while b[i:i + 1] != b')':
            if b[i:i + 1] == b' ':
                i += 1
                continue
            i = skip_value(b, i)
        return i + 1
    while i < len(b) and b[i:i + 1] not in (b' ', b')'):
        if b[i:i + 1] == b'[':
            i = b.index(b']', i)
        i += 1
    return i

def sort_fetch(l):
    """FETCH items in a canonical order: RFC 3501 leaves their order free."""
    m = re.match(rb'(\* \d+ FETCH \()(.*)\)\r?\n$', l, re.S)
    if not m:
        return l
    body, items, i = m.group(2), [], 0
    try:
        while i < len(body):
            j = skip_value(body, i)          # item name (with [section]<n>)
            k = skip_value(body, j + 1)      # its value
            item = body[i:k]
            # dovecot's case of MIME types in BODY/BODYSTRUCTURE depends on
            # its cache state (as written, or lower-cased when derived from
            # a cached BODY); MIME says they are case-insensitive
            if item.startswith((b'BODY (', b'BODYSTRUCTURE (')):
                item = item.lower()
            items.append(item)
            i = k + 1
    except (ValueError, IndexError):
        return l
    return m.group(1) + b' '.join(sorted(items)) + b')\r\n'

def session(port, user, pw):
    s = socket.create_connection(('127.0.0.1', int(port)), timeout=30)
    f = s.makefile('rb')
    out = []
    def normalize(lines):
        # documented differences: LIST order is not specified (dovecot returns
        # directory order); our special-use attributes come from the config;
        # we add RFC 5530 codes and HIGHESTMODSEQ (RFC 7162 §3.1.2.1) where
        # dovecot 2.3 omits them before ENABLE
        lst = sorted(re.sub(rb' ?\\(Sent|Junk|Trash|Drafts|Archive|Marked|UnMarked)\b', b'', l)
                     for l in lines if l.startswith((b'* LIST', b'* LSUB')))
        rest = [l for l in lines if not l.startswith((b'* LIST', b'* LSUB'))
                and not l.startswith(b'* OK [HIGHESTMODSEQ')]
        rest = [re.sub(rb' \[(NONEXISTENT|ALREADYEXISTS|CANNOT)\]$', b'', l) for l in rest]
        # folders created during the session get time-based UIDVALIDITYs
        rest = [re.sub(rb'(\[(?:COPYUID|APPENDUID|UIDVALIDITY) )\d+', rb'\1V', l) for l in rest]
        rest = [re.sub(rb'UIDVALIDITY \d+', b'UIDVALIDITY V', l) if l.startswith(b'* STATUS') else l
                for l in rest]
        rest = [sort_fetch(l) for l in rest]
        return lst + rest
    def readresp(tag):
        lines = []
        while True:
            l = f.readline()
            if not l:
                raise SystemExit('port %s (%s) closed the connection after %d commands'
                                 % (port, 'mailkeep' if port == ours else 'dovecot', len(out)))
            m = re.search(rb'\{(\d+)\}\r\n$', l)
            while m:
                l += f.read(int(m.group(1)))
                nxt = f.readline()
                l += nxt
                m = re.search(rb'\{(\d+)\}\r\n$', nxt)
            if l.startswith(tag + b' '):
                st = re.match(rb'(\S+ (?:OK|NO|BAD))( \[[^\]]*\])?', l)
                lines.append(st.group(0) if st else l)
                return lines
            lines.append(l)
    f.readline()
    s.sendall(b'L LOGIN "%s" "%s"\r\n' % (user.encode(), pw.encode()))
    readresp(b'L')
    for i, c in enumerate(cmds):
        tag = b'T%d' % i
        s.sendall(tag + b' ' + c.encode().replace(b'\\r\\n', b'\r\n') + b'\r\n')
        out.append(b'>>> ' + c.encode() + b'\n')
        for l in normalize(readresp(tag)):
            # dovecot-only noise that RFC 3501 makes optional
            if re.match(rb'\* OK \[(UIDNEXT|HIGHESTMODSEQ|NOMODSEQ|PERMANENTFLAGS|UNSEEN|UIDVALIDITY)', l):
                l = re.sub(rb'\] .*', b']', l)
            if re.match(rb'\* (FLAGS|OK \[PERMANENTFLAGS)', l):
                continue   # keyword lists are per-server caches
            out.append(l if l.endswith(b'\n') else l + b'\n')
    s.sendall(b'Z LOGOUT\r\n')
    return [x.decode('utf-8', 'backslashreplace') for x in out]

a = session(ours, user_ours, pw_ours)
b = session(peer, user_peer, pw_peer)
if a == b:
    print('identical: %d commands, %d response lines' % (len(cmds), len(a)))
    sys.exit(0)
sys.stdout.writelines(list(difflib.unified_diff(b, a, 'dovecot', 'mailkeep', n=1))[:80])
sys.exit(1)

#!/usr/bin/env bats
# Crash consistency (issue 8): kill -9 of the mail-serve-imap session while
# it APPENDs, MOVEs and EXPUNGEs, at random points, for $MK_CRASH_ROUNDS
# rounds (default 30).  After every round a fresh session and a look at the
# files check: nothing acknowledged lost, nothing duplicated, no UID reused,
# no half-written file in new/ or cur/, dovecot-uidlist readable.

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

@test "kill -9 of mail-serve-imap during APPEND/MOVE/EXPUNGE: no loss, no duplicate, no UID reuse, no partial file" {
	mk_imapd_start
	local parent
	parent=$(tail -1 "$MK_IMAPD_DIR/pids")
	HOME_DIR=$(mk_imapd_home alice@example.com) PARENT=$parent ROUNDS=${MK_CRASH_ROUNDS:-30} \
		run mk_imap_py <<'PY'
import random, subprocess, threading, re, signal
rounds = int(os.environ['ROUNDS']); parent = os.environ['PARENT']
home = os.environ['HOME_DIR'] + '/mail'
END = b'END-OF-MESSAGE'
m = login(); m.create('Other'); m.logout()
acked = set()          # APPEND answered OK
tried_del = set()      # STORE \Deleted sent (may be expunged by any later EXPUNGE)
gone = set()           # expunged with an OK
moved = set()          # MOVE answered OK
maybe_dup = set()      # a MOVE of it was killed unanswered: a copy may sit in
                       # both folders, or twice in Other once moved again

seen_uid = {}          # (folder, uid) -> subject, over all rounds
n = 0
stats = {'append_ok': 0, 'move_ok': 0, 'expunge_ok': 0, 'killed_during': {}}
def session_pid(before):
    for _ in range(100):
        out = subprocess.run(['pgrep', '-P', parent], capture_output=True, text=True).stdout.split()
        new = [p for p in out if p not in before]
        if new:
            return new[-1]
        time.sleep(0.01)
    return None
def subjects(m, folder):
    typ, d = m.select(folder)
    check(typ == 'OK', (folder, d))
    out = {}
    if d[0] == b'0':
        return out
    typ, d = m.uid('FETCH', '1:*', '(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
    for x in d:
        if isinstance(x, tuple):
            uid = int(re.search(rb'UID (\d+)', x[0]).group(1))
            subj = x[1].strip().split(b': ', 1)[1].decode()
            out[uid] = subj
    return out
for rnd in range(rounds):
    before = subprocess.run(['pgrep', '-P', parent], capture_output=True, text=True).stdout.split()
    c = login()
    pid = session_pid(before)
    check(pid, 'session pid')
    delay = random.uniform(0.0, 0.5)
    phase = ['login']
    t = threading.Timer(delay, lambda: os.kill(int(pid), signal.SIGKILL))
    t.start()
    pending_del = set()
    pending_move = set()
    try:
        while True:
            op = random.choice(('append', 'move', 'expunge'))
            phase[0] = op
            for i in range(3 if op == 'append' else 0):
                n += 1
                s = 'm%05d' % n
                body = (b'From: a@example.com\r\nSubject: ' + s.encode() + b'\r\n\r\n' +
                        b'line\r\n' * random.randint(1, 3000) + END + b'\r\n')
                typ, d = c.append('INBOX', None, None, body)
                if typ == 'OK':
                    acked.add(s); stats['append_ok'] += 1
            if op == 'move':
                cur = subjects(c, 'INBOX')
                if cur:
                    pick = random.sample(sorted(cur), min(2, len(cur)))
                    names = {cur[u] for u in pick}
                    # MOVE is COPY + EXPUNGE: a kill between the two leaves a copy
                    # in both folders (counted, reported, not a loss)
                    pending_move = names
                    typ, d = c.uid('MOVE', ','.join(map(str, pick)), 'Other')
                    pending_move = set()
                    if typ == 'OK':
                        stats['move_ok'] += 1
                        moved.update(names)
                continue
            if op != 'expunge':
                continue
            c.select('Other')
            typ, d = c.uid('FETCH', '1:*', '(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
            cur = {}
            for x in d:
                if isinstance(x, tuple):
                    cur[int(re.search(rb'UID (\d+)', x[0]).group(1))] = x[1].strip().split(b': ', 1)[1].decode()
            if cur:
                pick = random.sample(sorted(cur), min(2, len(cur)))
                for u in pick:
                    tried_del.add(cur[u])
                typ, d = c.uid('STORE', ','.join(map(str, pick)), '+FLAGS.SILENT', '(\\Deleted)')
                if typ == 'OK':
                    pending_del |= {cur[u] for u in pick}
                typ, d = c.expunge()
                if typ == 'OK':
                    gone.update(pending_del); pending_del = set(); stats['expunge_ok'] += 1
    except (imaplib.IMAP4.abort, OSError, EOFError) as e:
        stats['killed_during'][phase[0]] = stats['killed_during'].get(phase[0], 0) + 1
        maybe_dup |= pending_move
    t.cancel()
    # the check: a fresh session and the files
    v = login()
    inbox = subjects(v, 'INBOX'); other = subjects(v, 'Other')
    v.logout()
    for folder, got in (('INBOX', inbox), ('Other', other)):
        names = [x for x in got.values() if x not in maybe_dup]
        check(len(set(names)) == len(names), 'duplicate in %s: %s' % (folder, sorted(names)))
        for uid, s in got.items():
            old = seen_uid.setdefault((folder, uid), s)
            check(old == s, 'UID %d of %s reused: %s then %s' % (uid, folder, old, s))
    both = set(inbox.values()) & set(other.values())
    check(not (both - maybe_dup), 'in both folders: %s' % (both - maybe_dup))
    stats['dup_after_kill_in_move'] = len(both)
    back = (moved - maybe_dup) & set(inbox.values())
    check(not back, 'moved with OK and still in INBOX: %s' % sorted(back))
    present = set(inbox.values()) | set(other.values())
    lost = acked - tried_del - present
    check(not lost, 'acknowledged and lost: %s' % sorted(lost))
    # a MOVE killed between its copy and its expunge leaves a second copy (in
    # INBOX, or in Other when moved again later); expunging one copy leaves
    # the other: that is the MOVE's duplicate, not an expunge undone
    back = (gone & present) - maybe_dup
    check(not back, 'expunged and back: %s' % sorted(back))
    for sub in ('', 'Other/'):
        for d in ('new', 'cur'):
            for f in os.listdir(home + '/' + sub + d):
                data = open(home + '/' + sub + d + '/' + f, 'rb').read()
                check(data.rstrip().endswith(END), 'partial file %s%s/%s' % (sub, d, f))
                mm = re.search(r',S=(\d+)', f)
                check(not mm or int(mm.group(1)) == len(data), 'size of %s' % f)
        lines = open(home + '/' + sub + 'dovecot-uidlist', 'rb').read().split(b'\n')
        check(lines[0].startswith(b'3 '), 'uidlist header %r' % lines[0])
        for l in lines[1:]:
            check(l == b'' or re.match(rb'^\d+ ', l), 'uidlist line %r' % l)
print('rounds', rounds, 'appends acked', stats['append_ok'], 'moves acked', stats['move_ok'],
      'expunges acked', stats['expunge_ok'], 'killed during', stats['killed_during'],
      'messages now', len(present), 'left in both folders by a kill during MOVE',
      stats['dup_after_kill_in_move'])
print('ok')
PY
	echo "$output"
	echo "# $(grep '^rounds' <<<"$output")" >&3
	assert_success
	assert_output --partial ok
	! grep -E 'AddressSanitizer|runtime error' "$D/imapd.log"
}

#!/usr/bin/env bats
# Operating mailkeep: `make demo` end to end, `make install` layout, the
# systemd units (systemd-analyze verify), man pages and --help/--version.

load lib/common
load lib/slapd   # the demo user's password

TOOLS="mail-autoconfig mail-folders mail-ldap-check mail-pull mail-serve-imap mail-submit-relay"

setup() {
	load_bats_libs
	T=$(mk_tmp)
}

teardown() {
	if [ -n "${DEMO_PID:-}" ]; then
		kill "$DEMO_PID" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$DEMO_PID" 2>/dev/null || break; sleep 0.1; done
	fi
	return 0
}

# demo on free ports, so that a demo someone runs by hand does not collide
demo_env() {
	DEMO_IMAP_PORT=$(mk_free_port)
	DEMO_SUBMIT_PORT=$(mk_free_port)
	while [ "$DEMO_SUBMIT_PORT" = "$DEMO_IMAP_PORT" ]; do DEMO_SUBMIT_PORT=$(mk_free_port); done
	export DEMO_IMAP_PORT DEMO_SUBMIT_PORT BUILD=$MK_BUILD
}

@test "make demo, DEMO_ONESHOT=1: every printed curl/swaks/openssl line succeeds, then it stops" {
	[ "$(id -u)" = 0 ] || skip "the demo runs as root (servers drop to $MK_TEST_USER)"
	demo_env
	run env DEMO_ONESHOT=1 "$MK_ROOT/scripts/demo"
	echo "$output"
	assert_success
	assert_output --partial "demo: every check passed"
	refute_output --partial "FAILED"
	# the lines it ran are the lines it printed: the ports and the CA are in them
	assert_output --partial "imaps://127.0.0.1:$DEMO_IMAP_PORT/"
	assert_output --partial "swaks --server 127.0.0.1 --port $DEMO_SUBMIT_PORT --tls-on-connect"
	assert_output --partial "--cacert /tmp/mailkeep-demo."
	for what in "folders (Junk, no Spam)" "the module's Test Auth: LOGIN over TLS" \
		"charlie is not in mail_user" "send out through the provider" "a wrong password" \
		"mail-pull --watch took the local delivery up to the provider's INBOX"; do
		assert_output --partial "ok     $what"
	done
	# everything it started is gone, and so is its directory
	dir=$(grep -o '/tmp/mailkeep-demo\.[A-Za-z0-9]*' <<< "$output" | head -1)
	[ -n "$dir" ]
	[ ! -e "$dir" ]
	! pgrep -f "$dir" >/dev/null
	! (exec 3<>"/dev/tcp/127.0.0.1/$DEMO_IMAP_PORT") 2>/dev/null
	! (exec 3<>"/dev/tcp/127.0.0.1/$DEMO_SUBMIT_PORT") 2>/dev/null
}

@test "make demo, interactive: serves until stopped, then stops everything it started" {
	[ "$(id -u)" = 0 ] || skip "the demo runs as root (servers drop to $MK_TEST_USER)"
	demo_env
	# started in the background SIGINT is ignored (bash does that for
	# asynchronous commands), so stop it with SIGTERM: the same trap runs
	"$MK_ROOT/scripts/demo" > "$T/out" 2>&1 3>&- &
	DEMO_PID=$!
	for _ in $(seq 600); do
		grep -q 'Ctrl-C stops everything' "$T/out" && break
		kill -0 "$DEMO_PID" 2>/dev/null || break
		sleep 0.1
	done
	grep -q 'Ctrl-C stops everything' "$T/out" || { cat "$T/out"; false; }
	dir=$(grep -o '/tmp/mailkeep-demo\.[A-Za-z0-9]*' "$T/out" | head -1)
	ca=$dir/srv/tls/ca.pem
	# a real client against the running stack, as printed
	run curl -sS --cacert "$ca" --user "alice@example.com:$MK_SLAPD_ALICE_PW" \
		"imaps://127.0.0.1:$DEMO_IMAP_PORT/" -X 'STATUS Junk (MESSAGES)'
	assert_success
	assert_output --partial "MESSAGES 2"
	pgrep -f "mail-pull -c $dir/mailkeep.conf --watch" >/dev/null
	kill -TERM "$DEMO_PID"
	for _ in $(seq 200); do kill -0 "$DEMO_PID" 2>/dev/null || break; sleep 0.1; done
	! kill -0 "$DEMO_PID" 2>/dev/null
	DEMO_PID=
	grep -q "demo: stopped; $dir removed" "$T/out"
	[ ! -e "$dir" ]
	! pgrep -f "$dir" >/dev/null
	! (exec 3<>"/dev/tcp/127.0.0.1/$DEMO_IMAP_PORT") 2>/dev/null
}

@test "make install DESTDIR=... PREFIX=/usr: binaries, man pages, units with @BINDIR@ replaced" {
	run make -s -C "$MK_ROOT" install BUILD="$MK_BUILD" DESTDIR="$T/root" PREFIX=/usr
	assert_success
	local r=$T/root/usr
	for t in $TOOLS; do
		[ -x "$r/bin/$t" ]
		[ -f "$r/share/man/man1/$t.1" ]
	done
	[ -f "$r/share/man/man5/mailkeep.conf.5" ]
	[ -f "$r/share/man/man7/mailkeep.7" ]
	# the IMAP session after login, found by mail-serve-imap as ../libexec/mailkeep/
	[ -x "$r/libexec/mailkeep/mail-imap-session" ]
	local u n=0
	for u in "$MK_ROOT"/scripts/systemd/*.service "$MK_ROOT"/scripts/systemd/*.socket \
		"$MK_ROOT"/scripts/systemd/*.timer; do
		[ -e "$u" ] || continue
		n=$((n + 1))
		[ -f "$r/lib/systemd/system/$(basename "$u")" ]
		[ "$(stat -c %a "$r/lib/systemd/system/$(basename "$u")")" = 644 ]
	done
	[ "$n" -ge 4 ]
	for u in mail-pull.service mail-pull.timer mail-serve-imap.socket mail-serve-imap@.service; do
		[ -f "$r/lib/systemd/system/$u" ]
	done
	run grep -l '@BINDIR@' "$r"/lib/systemd/system/*
	assert_failure
	grep -q '^ExecStart=/usr/bin/mail-pull$' "$r/lib/systemd/system/mail-pull.service"
	grep -q '^ExecStart=/usr/bin/mail-serve-imap --tls$' "$r/lib/systemd/system/mail-serve-imap@.service"
	# nothing outside PREFIX
	run find "$T/root" -mindepth 1 -maxdepth 1
	assert_output "$T/root/usr"
}

@test "systemd-analyze verify: every installed unit is clean" {
	command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
	systemd-analyze --version >/dev/null 2>&1 || skip "systemd-analyze cannot run here"
	# PREFIX without DESTDIR: ExecStart= then names binaries that exist, which
	# verify checks; the host's own units (sysinit.target...) stay reachable
	# through the empty entry at the end of SYSTEMD_UNIT_PATH
	run make -s -C "$MK_ROOT" install BUILD="$MK_BUILD" PREFIX="$T/usr"
	assert_success
	local dir=$T/usr/lib/systemd/system
	cd "$dir"
	local units=(*.service *.socket *.timer)
	[ ${#units[@]} -ge 4 ]
	run env SYSTEMD_UNIT_PATH="$dir:" systemd-analyze verify --man=no "${units[@]}"
	echo "$output"
	assert_success
	assert_output ""
}

@test "systemd: the mail-pull timer runs the service every [sync] interval (default 5m), hardened as the servers" {
	local s=$MK_ROOT/scripts/systemd
	grep -qx 'OnBootSec=5min' "$s/mail-pull.timer"
	grep -qx 'OnUnitActiveSec=5min' "$s/mail-pull.timer"
	grep -qx 'Type=oneshot' "$s/mail-pull.service"
	grep -qx 'ExecStart=@BINDIR@/mail-pull --watch' "$s/mail-pull-watch.service"
	for u in mail-pull.service mail-pull-watch.service; do
		for k in 'User=vmail' 'NoNewPrivileges=yes' 'ProtectSystem=strict' \
			'ReadWritePaths=/var/vmail /var/lib/mailkeep' 'PrivateTmp=yes' \
			'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6'; do
			grep -qx "$k" "$s/$u" || { echo "$u lacks $k"; false; }
		done
	done
}

@test "every man page renders without warnings" {
	local m n=0
	for m in "$MK_ROOT"/man/*.[157]; do
		n=$((n + 1))
		run bash -c 'MANWIDTH=80 man --warnings -l "$1" 2>&1 >/dev/null' _ "$m"
		[ -z "$output" ] || { echo "$m: $output"; false; }
		run bash -c 'MANWIDTH=80 man -l "$1" 2>/dev/null | wc -l' _ "$m"
		[ "$output" -gt 10 ]
	done
	[ "$n" -ge 8 ]
	[ -f "$MK_ROOT/man/mailkeep.7" ]
	for t in $TOOLS; do [ -f "$MK_ROOT/man/$t.1" ]; done
}

@test "every tool answers --help (exit 0, usage on stdout) and --version" {
	for t in $TOOLS; do
		run "$t" --help
		[ "$status" -eq 0 ] || { echo "$t --help: exit $status"; false; }
		[[ "$output" == usage:* ]] || { echo "$t --help: $output"; false; }
		run "$t" -h
		[ "$status" -eq 0 ]
		run "$t" --version
		[ "$status" -eq 0 ] || { echo "$t --version: exit $status"; false; }
		[[ "$output" =~ ^$t\ [0-9] ]] || { echo "$t --version: $output"; false; }
	done
}

@test "every tool refuses an unknown option with exit 64" {
	for t in $TOOLS; do
		run "$t" --no-such-option
		[ "$status" -eq 64 ] || { echo "$t: exit $status"; false; }
	done
}

@test "the README's config examples load (mail-folders dirs) and name the backup dirs" {
	"$MK_PY" - "$MK_ROOT/README.md" "$T" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
blocks = re.findall(r"```ini\n(.*?)```", s, re.S)
assert len(blocks) >= 2, blocks
open(sys.argv[2] + "/full.conf", "w").write(blocks[0])
open(sys.argv[2] + "/users.conf", "w").write("mail_dir = /var/vmail\n" + blocks[1])
PY
	run mail-folders -c "$T/full.conf" dirs
	assert_success
	assert_output $'/var/vmail\n/var/lib/mailkeep'
	run mail-folders -c "$T/users.conf" dirs
	assert_success
	run mail-autoconfig -c "$T/full.conf"
	assert_success
	assert_output --partial "<hostname>imap.example.com</hostname>"
}

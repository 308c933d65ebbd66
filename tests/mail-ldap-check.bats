#!/usr/bin/env bats
# mail-ldap-check against a real slapd shaped like lldap (tests/lib/slapd.bash),
# and against a dovecot-style passwd file.

bats_require_minimum_version 1.5.0
load lib/common
load lib/slapd

setup_file() {
	export T="$BATS_FILE_TMPDIR"
	mk_slapd_start "$T/slapd"
	export MK_SLAPD_DIR MK_SLAPD_PORT MK_SLAPD_TLS_PORT MK_SLAPD_URI MK_SLAPD_TLS_URI \
		MK_SLAPD_CA MK_SLAPD_OTHER_CA
	mk_secret "$T/admin_pw" "$MK_SLAPD_ADMIN_PW"
	mk_secret "$T/wrong_admin_pw" "not-the-admin-password"
	ldap_conf "$T/ldap.conf" "port = $MK_SLAPD_PORT"
	ldap_conf "$T/ldaps.conf" "port = $MK_SLAPD_TLS_PORT" "tls = ldaps" "ca_file = $MK_SLAPD_CA"
	ldap_conf "$T/ldaps-wrong-ca.conf" "port = $MK_SLAPD_TLS_PORT" "tls = ldaps" \
		"ca_file = $MK_SLAPD_OTHER_CA"
	ldap_conf "$T/starttls.conf" "port = $MK_SLAPD_PORT" "tls = starttls" "ca_file = $MK_SLAPD_CA"
	ldap_conf "$T/slow.conf" "port = $MK_SLAPD_PORT" "timeout = 1"
	sed "s#$T/admin_pw#$T/wrong_admin_pw#" "$T/ldap.conf" > "$T/bad-admin.conf"
}

teardown_file() {
	mk_slapd_stop
}

setup() {
	load_bats_libs
	# A test that stopped slapd must not leave it down for the next one.
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$MK_SLAPD_PORT") 2>/dev/null; then
		kill -CONT "$(cat "$MK_SLAPD_DIR/slapd.pid" 2>/dev/null)" 2>/dev/null || mk_slapd_run
	fi
}

ldap_conf() {   # file, extra [ldap] lines...
	local f=$1
	shift
	{
		printf 'mail_dir = %s/mail\n\n[ldap]\nhost = 127.0.0.1\n' "$T"
		printf 'dc_domain = dc=example,dc=com\nadmin_name = admin\n'
		printf 'admin_password_file = %s/admin_pw\naccount = fastmail\nuser_group = mail_user\n' "$T"
		printf '%s\n' "$@"
	} > "$f"
}

# check CONF USER PASSWORD: runs mail-ldap-check with the password on stdin.
check() {
	run --separate-stderr bash -c 'printf "%s\n" "$3" | mail-ldap-check -c "$1" "$2"' _ "$@"
}

@test "alice in mail_user with her password: ok, with DN and home" {
	check "$T/ldap.conf" alice@example.com "$MK_SLAPD_ALICE_PW"
	assert_success
	assert_output "ok user=alice@example.com dn=\"uid=alice,ou=people,dc=example,dc=com\" home=$T/mail/fastmail/alice@example.com"
	[[ "$stderr" == *"event=auth result=ok user=alice@example.com"* ]]
}

@test "the login is case-insensitive and the home uses the directory's spelling" {
	check "$T/ldap.conf" ALICE@Example.COM "$MK_SLAPD_ALICE_PW"
	assert_success
	assert_output --partial "ok user=alice@example.com "
	assert_output --partial "home=$T/mail/fastmail/alice@example.com"
}

@test "alice with a wrong password: rejected, bad password" {
	check "$T/ldap.conf" alice@example.com "not-her-password"
	assert_failure 77
	assert_output 'rejected user=alice@example.com reason="bad password"'
	[[ "$stderr" == *'result=rejected user=alice@example.com source=- reason="bad password"'* ]]
}

@test "charlie with his right password but only in other_group: not in group mail_user" {
	check "$T/ldap.conf" charlie@example.com "$MK_SLAPD_CHARLIE_PW"
	assert_failure 77
	assert_output 'rejected user=charlie@example.com reason="not in group mail_user"'
	[[ "$stderr" == *'reason="not in group mail_user"'* ]]
}

@test "an unknown user: no such user" {
	check "$T/ldap.conf" nobody@example.com "whatever"
	assert_failure 77
	assert_output 'rejected user=nobody@example.com reason="no such user"'
}

@test "bob, in both groups: ok" {
	check "$T/ldap.conf" bob@example.com "$MK_SLAPD_BOB_PW"
	assert_success
	assert_output --partial 'dn="uid=bob,ou=people,dc=example,dc=com"'
}

@test "an empty password is refused before any bind" {
	check "$T/ldap.conf" alice@example.com ""
	assert_failure 77
	assert_output --partial 'reason="empty password"'
	run --separate-stderr bash -c 'mail-ldap-check -c "$1" alice@example.com < /dev/null' _ "$T/ldap.conf"
	assert_failure 77
	assert_output --partial 'reason="empty password"'
}

@test "LDAP filter injection never authenticates" {
	local u pw
	for u in '*' 'alice*' '*@example.com' 'alice*)(|(mail=*' '*)(mail=*' \
		'alice@example.com)(objectClass=*' '(mail=*)' '\2a' 'alice@example.com)' \
		'*)(|(memberOf=*)(mail=*' 'admin' 'uid=alice,ou=people,dc=example,dc=com'; do
		for pw in "$MK_SLAPD_ALICE_PW" "$MK_SLAPD_ADMIN_PW" '*'; do
			check "$T/ldap.conf" "$u" "$pw"
			[ "$status" -eq 77 ] || { echo "user=$u status=$status: $output $stderr"; return 1; }
			[[ "$output" == rejected* ]]
		done
	done
}

@test "NUL bytes in the password or the user name never authenticate" {
	# The right password followed by NUL and junk must not be cut at the NUL.
	run --separate-stderr bash -c 'printf "%s\0junk\n" "$2" | mail-ldap-check -c "$1" alice@example.com' \
		_ "$T/ldap.conf" "$MK_SLAPD_ALICE_PW"
	assert_failure 77
	assert_output --partial 'reason="bad password"'
	run --separate-stderr bash -c 'printf "\0%s\n" "$2" | mail-ldap-check -c "$1" alice@example.com' \
		_ "$T/ldap.conf" "$MK_SLAPD_ALICE_PW"
	assert_failure 77
	# --batch reads the user name from stdin, where a NUL can hide.
	run --separate-stderr bash -c 'printf "alice@example.com\0x\t%s\n" "$2" | mail-ldap-check -c "$1" --batch' \
		_ "$T/ldap.conf" "$MK_SLAPD_ALICE_PW"
	assert_failure 77
	assert_output --partial 'reason="invalid user name"'
}

@test "10 KB user names and passwords are refused without a crash" {
	local big
	big=$(head -c 10240 /dev/zero | tr '\0' a)
	check "$T/ldap.conf" "$big" "$MK_SLAPD_ALICE_PW"
	assert_failure 77
	assert_output --partial 'reason="invalid user name"'
	check "$T/ldap.conf" "$big@example.com" "x"
	assert_failure 77
	check "$T/ldap.conf" "alice@example.com" "$big"
	assert_failure 77
	assert_output --partial 'reason="bad password"'
	check "$T/ldap.conf" "$(head -c 10240 /dev/zero | tr '\0' '*')" "$MK_SLAPD_ALICE_PW"
	assert_failure 77
}

@test "passwords appear neither in stdout nor in stderr, even with -vv" {
	local pw
	for pw in "$MK_SLAPD_ALICE_PW" "a-wrong-Password-123"; do
		run bash -c 'printf "%s\n" "$2" | mail-ldap-check -vv -c "$1" alice@example.com 2>&1' \
			_ "$T/ldap.conf" "$pw"
		[[ "$output" != *"$pw"* ]]
		[[ "$output" != *"$MK_SLAPD_ADMIN_PW"* ]]
	done
	run bash -c 'printf "%s\n" "$2" | mail-ldap-check -vv -c "$1" charlie@example.com 2>&1' \
		_ "$T/ldap.conf" "$MK_SLAPD_CHARLIE_PW"
	[[ "$output" != *"$MK_SLAPD_CHARLIE_PW"* ]]
}

@test "the tool is not dumpable while it holds secrets" {
	# /proc/PID/status of a non-dumpable process belongs to root whoever runs it,
	# so run it as an ordinary user, waiting on stdin for the password.
	mk_ensure_test_user
	local d pid owner
	d=$(mktemp -d /tmp/mk-dump.XXXXXX)
	chmod 755 "$d"
	printf 'u@example.com:{PLAIN}pw\n' > "$d/passwd"
	printf '[users]\npasswd_file = %s/passwd\naccount = a\n' "$d" > "$d/p.conf"
	chown "$MK_TEST_USER" "$d/passwd" "$d/p.conf"
	chmod 600 "$d/passwd"
	mkfifo "$d/in"
	chown "$MK_TEST_USER" "$d/in"
	setpriv --reuid="$MK_TEST_USER" --regid="$(id -g "$MK_TEST_USER")" --clear-groups \
		"$(command -v mail-ldap-check)" -c "$d/p.conf" u@example.com < "$d/in" > "$d/out" 2>&1 &
	pid=$!
	exec 4> "$d/in"
	sleep 0.3
	owner=$(stat -c %U "/proc/$pid/status")
	printf 'pw\n' >&4
	exec 4>&-
	wait "$pid"
	cat "$d/out"
	grep -q '^ok user=u@example.com' "$d/out"
	rm -rf "$d"
	[ "$owner" = root ]
}

@test "--groups lists a user's groups, --members who may log in" {
	run --separate-stderr mail-ldap-check -c "$T/ldap.conf" --groups bob@example.com
	assert_success
	assert_line "mail_user	cn=mail_user,ou=groups,dc=example,dc=com"
	assert_line "other_group	cn=other_group,ou=groups,dc=example,dc=com"
	run --separate-stderr mail-ldap-check -c "$T/ldap.conf" --groups charlie@example.com
	assert_success
	assert_output "other_group	cn=other_group,ou=groups,dc=example,dc=com"
	run --separate-stderr mail-ldap-check -c "$T/ldap.conf" --groups nobody@example.com
	assert_failure 77
	run --separate-stderr mail-ldap-check -c "$T/ldap.conf" --members
	assert_success
	assert_line "alice@example.com	uid=alice,ou=people,dc=example,dc=com"
	assert_line "bob@example.com	uid=bob,ou=people,dc=example,dc=com"
	refute_output --partial charlie
	refute_output --partial admin
}

@test "ldaps with the right CA: ok; StartTLS: ok" {
	check "$T/ldaps.conf" alice@example.com "$MK_SLAPD_ALICE_PW"
	assert_success
	check "$T/starttls.conf" alice@example.com "$MK_SLAPD_ALICE_PW"
	assert_success
	check "$T/starttls.conf" charlie@example.com "$MK_SLAPD_CHARLIE_PW"
	assert_failure 77
}

@test "ldaps with a CA that did not sign the server: unavailable, with a clear error" {
	check "$T/ldaps-wrong-ca.conf" alice@example.com "$MK_SLAPD_ALICE_PW"
	assert_failure 69
	assert_output --partial "unavailable error="
	assert_output --partial "TLS handshake failed"
	assert_output --partial "ca_file"
	# Without ca_file the system store does not know the test CA either.
	grep -v '^ca_file' "$T/ldaps.conf" > "$BATS_TEST_TMPDIR/sys.conf"
	check "$BATS_TEST_TMPDIR/sys.conf" alice@example.com "$MK_SLAPD_ALICE_PW"
	assert_failure 69
}

@test "slapd stopped: unavailable (69), never bad password; back when it returns" {
	mk_slapd_stop
	check "$T/ldap.conf" alice@example.com "$MK_SLAPD_ALICE_PW"
	assert_failure 69
	assert_output --partial "unavailable error="
	refute_output --partial "bad password"
	check "$T/ldap.conf" alice@example.com "wrong"
	assert_failure 69
	run --separate-stderr mail-ldap-check -c "$T/ldap.conf" --members
	assert_failure 69
	mk_slapd_run
	check "$T/ldap.conf" alice@example.com "$MK_SLAPD_ALICE_PW"
	assert_success
}

@test "a hung slapd: unavailable after the configured timeout" {
	local pid start
	pid=$(cat "$MK_SLAPD_DIR/slapd.pid")
	kill -STOP "$pid"
	start=$(date +%s)
	check "$T/slow.conf" alice@example.com "$MK_SLAPD_ALICE_PW"
	kill -CONT "$pid"
	assert_failure 69
	[ $(( $(date +%s) - start )) -le 5 ]
}

@test "a connection dropped between two checks is reopened once" {
	coproc MLC { mail-ldap-check -v -c "$T/ldap.conf" --batch 2> "$BATS_TEST_TMPDIR/err"; }
	local line1 line2 line3
	printf 'alice@example.com\t%s\n' "$MK_SLAPD_ALICE_PW" >&"${MLC[1]}"
	read -r -t 10 line1 <&"${MLC[0]}"
	mk_slapd_stop
	mk_slapd_run
	printf 'alice@example.com\t%s\n' "$MK_SLAPD_ALICE_PW" >&"${MLC[1]}"
	read -r -t 10 line2 <&"${MLC[0]}"
	printf 'charlie@example.com\t%s\n' "$MK_SLAPD_CHARLIE_PW" >&"${MLC[1]}"
	read -r -t 10 line3 <&"${MLC[0]}"
	exec {MLC[1]}>&-
	wait "$MLC_PID" || true
	[[ "$line1" == "ok user=alice@example.com "* ]]
	[[ "$line2" == "ok user=alice@example.com "* ]]
	[[ "$line3" == *'reason="not in group mail_user"' ]]
	grep -q 'event=ldap_reconnect' "$BATS_TEST_TMPDIR/err"
}

@test "a wrong admin password: unavailable, saying so" {
	check "$T/bad-admin.conf" alice@example.com "$MK_SLAPD_ALICE_PW"
	assert_failure 69
	assert_output --partial "admin bind refused"
}

@test "passwd-file backend: mkpasswd and openssl hashes, {PLAIN} with a warning" {
	local d=$BATS_TEST_TMPDIR
	{
		printf 'yes@example.com:%s\n' "$(mkpasswd 'pw-yes')"
		printf 'sha@example.com:{SHA512-CRYPT}%s\n' "$(mkpasswd -m sha-512 'pw-sha')"
		printf 'bf@example.com:{BLF-CRYPT}%s::::::\n' "$(mkpasswd -m bcrypt 'pw-bf')"
		printf 'ossl@example.com:{CRYPT}%s\n' "$(openssl passwd -6 'pw-ossl')"
		printf 'plain@example.com:{PLAIN}pw-plain\n'
		printf 'bare@example.com:pw-bare\n'
	} > "$d/passwd"
	chmod 600 "$d/passwd"
	printf 'mail_dir = %s/mail\n[users]\npasswd_file = %s/passwd\naccount = local\n' "$d" "$d" \
		> "$d/p.conf"
	check "$d/p.conf" yes@example.com pw-yes
	assert_success
	assert_output "ok user=yes@example.com dn=- home=$d/mail/local/yes@example.com"
	check "$d/p.conf" sha@example.com pw-sha
	assert_success
	check "$d/p.conf" bf@example.com pw-bf
	assert_success
	check "$d/p.conf" OSSL@example.com pw-ossl
	assert_success
	assert_output --partial "ok user=ossl@example.com"
	check "$d/p.conf" plain@example.com pw-plain
	assert_success
	[[ "$stderr" == *"event=passwd_weak_scheme"* ]]
	check "$d/p.conf" sha@example.com pw-yes
	assert_failure 77
	assert_output --partial 'reason="bad password"'
	check "$d/p.conf" nobody@example.com pw-yes
	assert_failure 77
	assert_output --partial 'reason="no such user"'
	# An unmarked clear-text line is refused, and said so in the log.
	check "$d/p.conf" bare@example.com pw-bare
	assert_failure 77
	[[ "$stderr" == *"unmarked password is not a crypt(3) hash"* ]]
	[[ "$stderr" != *"pw-bare"* ]]
	run --separate-stderr mail-ldap-check -c "$d/p.conf" --members
	assert_success
	assert_line "yes@example.com	-"
	assert_line "plain@example.com	-"
	run --separate-stderr mail-ldap-check -c "$d/p.conf" --groups yes@example.com
	assert_failure 64
}

@test "usage, help, version and config errors" {
	run mail-ldap-check --help
	assert_success
	assert_output --partial "usage: mail-ldap-check"
	run mail-ldap-check --version
	assert_success
	assert_output --regexp '^mail-ldap-check [0-9]'
	run mail-ldap-check -c "$T/ldap.conf"
	assert_failure 64
	run mail-ldap-check -c "$T/ldap.conf" a b
	assert_failure 64
	run mail-ldap-check -c "$T/ldap.conf" --members extra
	assert_failure 64
	run mail-ldap-check -c "$BATS_TEST_TMPDIR/missing.conf" alice@example.com
	assert_failure 78
	printf 'mail_dir = /tmp\n' > "$BATS_TEST_TMPDIR/noauth.conf"
	run mail-ldap-check -c "$BATS_TEST_TMPDIR/noauth.conf" alice@example.com
	assert_failure 78
}

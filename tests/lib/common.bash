# Shared bats helpers: load with `load lib/common` from tests/*.bats.
#
# MK_BUILD (set by scripts/run-tests) points at the build tree whose bin/
# holds the tools; when bats is run by hand it defaults to ./build.

MK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MK_BUILD="${MK_BUILD:-$MK_ROOT/build}"
export PATH="$MK_BUILD/bin:$PATH"
# Debian's python (with aiosmtpd etc.); `python3` on PATH may be another build.
MK_PY=/usr/bin/python3
# The non-root user that dovecot test instances deliver mail as.
MK_TEST_USER=mktest

load_bats_libs() {
	load /usr/lib/bats/bats-support/load
	load /usr/lib/bats/bats-assert/load
}

# A fresh directory per test, removed by bats with BATS_TEST_TMPDIR.
mk_tmp() {
	mktemp -d "${BATS_TEST_TMPDIR:-/tmp}/mk.XXXXXX"
}

# A free TCP port on 127.0.0.1 (the kernel picks it; racy only in theory).
mk_free_port() {
	"$MK_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits until 127.0.0.1:$1 accepts connections (at most ${2:-10} s).
mk_wait_port() {
	local port=$1 tries=$(( ${2:-10} * 20 ))
	while [ $tries -gt 0 ]; do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.05
		tries=$((tries - 1))
	done
	echo "port $port never opened" >&2
	return 1
}

# Creates the non-root system user dovecot test instances run mail as.
mk_ensure_test_user() {
	if ! id "$MK_TEST_USER" >/dev/null 2>&1; then
		useradd --system --no-create-home --shell /usr/sbin/nologin "$MK_TEST_USER" 2>/dev/null ||
			id "$MK_TEST_USER" >/dev/null 2>&1
	fi
}

# Writes a secret file readable only by its owner.
mk_secret() {   # path content
	( umask 077; printf '%s\n' "$2" > "$1" )
}

# Lets other users (the servers after dropping root) reach DIR: adds o+x to
# DIR and each parent up to / (bats makes its temp dirs 0700).
mk_traversable() {   # dir
	local d
	d=$(cd "$1" && pwd)
	while [ "$d" != / ] && [ -n "$d" ]; do
		chmod o+x "$d" 2>/dev/null
		d=$(dirname "$d")
	done
}

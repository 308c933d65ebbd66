# The setup the mail-pull test files share (load after common, dovecot and
# provider): a dovecot "provider" with user alice (password "secret") on
# loopback TLS, and a mailkeep.conf whose [account prov] syncs it into $M.
#
#   setup() { load_bats_libs; mk_pull_setup; }
#   mk_pull_conf starttls "$MK_PROVIDER_PLAIN_PORT" "$MK_PROVIDER_CA"
#   mk_pull_imap 'c.append("INBOX", None, None, b"...")'

# Sets T (a scratch dir dovecot's processes can reach: not under bats'
# 0700 dirs), starts the provider, writes $T/mk.conf for IMAPS, sets M.
mk_pull_setup() {
	T=$(mktemp -d /tmp/mk-pull.XXXXXX)
	chmod 755 "$T"
	mk_provider_init "$T/dc"
	mk_dovecot_add_user alice secret "$T/alice"
	mk_dovecot_start
	mk_secret "$T/pw" secret
	mk_pull_conf imaps "$MK_PROVIDER_IMAPS_PORT" "$MK_PROVIDER_CA"
	M=$T/mail/prov/alice/mail
}

# Writes $T/mk.conf: [account prov] at localhost PORT with TLS mode TLS,
# trusting CA, with EXTRA lines after it and TIMEOUT seconds (default 10).
mk_pull_conf() {   # tls port ca [extra lines] [timeout]
	cat > "$T/mk.conf" <<EOF2
mail_dir = $T/mail
state_dir = $T/state
[account prov]
host = localhost
port = $2
tls = $1
username = alice
password_file = $T/pw
ca_file = $3
timeout = ${5:-10}
${4:-}
EOF2
}

# Runs python CODE with `c` an imaplib session logged in to the provider as alice.
mk_pull_imap() { mk_provider_imap alice secret "$1"; }

# Starts tests/lib/fake-provider.py (MODE, COUNT messages) on a free port
# as FAKE_PID, and points $T/mk.conf at it with TIMEOUT (default 10).
mk_pull_fake_provider() {   # mode count [timeout]
	FAKE_PORT=$(mk_free_port)
	"$MK_PY" "$BATS_TEST_DIRNAME/lib/fake-provider.py" --port "$FAKE_PORT" \
		--cert "$T/dc/tls/server.pem" --key "$T/dc/tls/server.key" --mode "$1" --count "$2" \
		> "$T/fake.out" 2>&1 3>&- &
	FAKE_PID=$!
	mk_wait_port "$FAKE_PORT" 10
	mk_pull_conf imaps "$FAKE_PORT" "$MK_PROVIDER_CA" "" "${3:-10}"
}

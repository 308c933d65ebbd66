/* Unit tests for lib/conn.c and lib/tls.c over socketpairs and real TLS. */
#include "conn.h"
#include "tls.h"
#include "t.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/mk-test-conn.XXXXXX";
static char cert[256], key[256], ca[256], otherca[256];
static char err[512];

static int make_certs(void)
{
	char cmd[2048];

	snprintf(cert, sizeof(cert), "%s/chain.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(otherca, sizeof(otherca), "%s/other.pem", dir);
	snprintf(cmd, sizeof(cmd),
		 "cd %s && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
		 "  -subj /CN=Test-CA -keyout ca.key -out ca.pem 2>/dev/null && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
		 "  -subj /CN=Other-CA -keyout other.key -out other.pem 2>/dev/null && "
		 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "  -subj /CN=imap.example.com -keyout key.pem -out srv.csr 2>/dev/null && "
		 "printf 'subjectAltName=DNS:imap.example.com\\n' > ext && "
		 "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
		 "  -days 2 -extfile ext -out srv.pem 2>/dev/null && "
		 "cat srv.pem ca.pem > chain.pem", dir);
	return system(cmd);
}

/* Forks a child running SERVER on one end; returns the other end. */
static int spawn(void (*server)(int fd), pid_t *pid)
{
	int sv[2];

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	*pid = fork();
	if (*pid == 0) {
		close(sv[0]);
		server(sv[1]);
		_exit(0);
	}
	close(sv[1]);
	return sv[0];
}

static int reap(pid_t pid)
{
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}

static void echo_tls_server(int fd)
{
	SSL_CTX *ctx = tls_server_ctx(cert, key, "TLSv1.2", err, sizeof(err));
	struct conn *c = conn_new(fd, fd);
	char *line;
	ssize_t n;

	conn_set_timeout(c, 5);
	if (ctx == NULL || conn_start_tls_server(c, ctx, err, sizeof(err)) != 0)
		_exit(3);
	while ((n = conn_read_line(c, &line, 100)) >= 0 || n == CONN_TOO_LONG) {
		if (n == CONN_TOO_LONG)
			conn_puts(c, "too long\r\n");
		else
			conn_printf(c, "echo %s\r\n", line);
		conn_flush(c);
	}
	conn_free(c);
	SSL_CTX_free(ctx);
	_exit(0);
}

static void test_tls_roundtrip(void)
{
	pid_t pid;
	int fd = spawn(echo_tls_server, &pid);
	SSL_CTX *ctx = tls_client_ctx(ca, err, sizeof(err));
	struct conn *c = conn_new(fd, fd);
	char *line, big[300];

	conn_set_timeout(c, 5);
	T_OK(ctx != NULL);
	T_EQ(conn_start_tls_client(c, ctx, "imap.example.com", err, sizeof(err)), 0);
	T_OK(conn_is_tls(c));
	T_OK(strncmp(conn_tls_desc(c), "TLSv1.", 6) == 0);
	conn_puts(c, "hello\r\nbare lf\n\r\n");
	memset(big, 'x', sizeof(big));
	conn_write(c, big, sizeof(big));
	conn_puts(c, "\r\nafter\r\n");
	T_EQ(conn_flush(c), 0);
	T_EQ(conn_read_line(c, &line, 1000), 10);
	T_STREQ(line, "echo hello");
	T_EQ(conn_read_line(c, &line, 1000), 12);
	T_STREQ(line, "echo bare lf");
	T_EQ(conn_read_line(c, &line, 1000), 5);
	T_STREQ(line, "echo ");
	T_EQ(conn_read_line(c, &line, 1000), 8);
	T_STREQ(line, "too long");
	T_EQ(conn_read_line(c, &line, 1000), 10);
	T_STREQ(line, "echo after");
	conn_free(c);
	close(fd);
	T_EQ(reap(pid), 0);
	SSL_CTX_free(ctx);
}

static void test_tls_wrong_host_and_ca(void)
{
	pid_t pid;
	int fd = spawn(echo_tls_server, &pid);
	SSL_CTX *ctx = tls_client_ctx(ca, err, sizeof(err));
	struct conn *c = conn_new(fd, fd);

	conn_set_timeout(c, 5);
	T_EQ(conn_start_tls_client(c, ctx, "evil.example.org", err, sizeof(err)), CONN_ERROR);
	T_OK(strstr(err, "certificate verification failed") != NULL);
	conn_free(c);
	close(fd);
	reap(pid);
	SSL_CTX_free(ctx);

	fd = spawn(echo_tls_server, &pid);
	ctx = tls_client_ctx(otherca, err, sizeof(err));
	c = conn_new(fd, fd);
	conn_set_timeout(c, 5);
	T_EQ(conn_start_tls_client(c, ctx, "imap.example.com", err, sizeof(err)), CONN_ERROR);
	T_OK(strstr(err, "certificate") != NULL);
	conn_free(c);
	close(fd);
	reap(pid);
	SSL_CTX_free(ctx);

	T_OK(tls_client_ctx("/nonexistent/ca.pem", err, sizeof(err)) == NULL);
	T_OK(strstr(err, "/nonexistent/ca.pem") != NULL);
	T_OK(tls_server_ctx(cert, ca, NULL, err, sizeof(err)) == NULL);
	T_OK(tls_server_ctx("/nonexistent", key, NULL, err, sizeof(err)) == NULL);
	T_OK(strstr(err, "certificate chain") != NULL);
}

/* STARTTLS: plaintext pipelined after the command must be thrown away. */
static void starttls_server(int fd)
{
	SSL_CTX *ctx = tls_server_ctx(cert, key, NULL, err, sizeof(err));
	struct conn *c = conn_new(fd, fd);
	char *line;

	conn_set_timeout(c, 5);
	if (conn_read_line(c, &line, 100) < 0 || strcmp(line, "STARTTLS") != 0)
		_exit(4);
	conn_puts(c, "OK begin\r\n");
	conn_flush(c);
	if (conn_start_tls_server(c, ctx, err, sizeof(err)) != 0)
		_exit(3);
	if (conn_read_line(c, &line, 100) < 0)
		_exit(5);
	conn_printf(c, "first %s\r\n", line);
	conn_flush(c);
	conn_free(c);
	SSL_CTX_free(ctx);
	_exit(0);
}

static void test_starttls_injection(void)
{
	pid_t pid;
	int fd = spawn(starttls_server, &pid);
	SSL_CTX *ctx = tls_client_ctx(ca, err, sizeof(err));
	struct conn *c = conn_new(fd, fd);
	char *line;

	conn_set_timeout(c, 5);
	/* the injected line arrives in the same packet as STARTTLS */
	(void)!write(fd, "STARTTLS\r\nINJECTED\r\n", 20);
	T_EQ(conn_read_line(c, &line, 100), 8);
	T_EQ(conn_start_tls_client(c, ctx, "imap.example.com", err, sizeof(err)), 0);
	conn_puts(c, "REAL\r\n");
	conn_flush(c);
	T_OK(conn_read_line(c, &line, 100) > 0);
	T_STREQ(line, "first REAL");
	conn_free(c);
	close(fd);
	T_EQ(reap(pid), 0);
	SSL_CTX_free(ctx);
}

static void deflate_server(int fd)
{
	struct conn *c = conn_new(fd, fd);
	char *line;

	conn_set_timeout(c, 5);
	if (conn_read_line(c, &line, 100) < 0)
		_exit(4);
	conn_puts(c, "OK deflate\r\n");
	conn_flush(c);
	conn_start_deflate(c);
	for (int i = 0; i < 1000; i++) {
		if (conn_read_line(c, &line, 100) < 0)
			_exit(5);
		conn_printf(c, "got %s\r\n", line);
	}
	conn_flush(c);
	conn_free(c);
	_exit(0);
}

static void test_deflate(void)
{
	pid_t pid;
	int fd = spawn(deflate_server, &pid);
	struct conn *c = conn_new(fd, fd);
	char *line, want[64];
	int ok = 1;

	conn_set_timeout(c, 5);
	conn_puts(c, "COMPRESS DEFLATE\r\n");
	conn_flush(c);
	T_OK(conn_read_line(c, &line, 100) > 0);
	T_STREQ(line, "OK deflate");
	T_EQ(conn_start_deflate(c), 0);
	for (int i = 0; i < 1000; i++)
		conn_printf(c, "line %d of a fairly repetitive stream\r\n", i);
	T_EQ(conn_flush(c), 0);
	for (int i = 0; i < 1000 && ok; i++) {
		snprintf(want, sizeof(want), "got line %d of a fairly repetitive stream", i);
		ok = conn_read_line(c, &line, 100) > 0 && strcmp(line, want) == 0;
	}
	T_OK(ok);
	/* compression: far fewer bytes than the 40 KB of text crossed the wire */
	T_OK(conn_bytes_out(c) < 10000);
	conn_free(c);
	close(fd);
	T_EQ(reap(pid), 0);
}

static void silent_server(int fd)
{
	sleep(3);
	close(fd);
	_exit(0);
}

static void test_timeout_eof(void)
{
	pid_t pid;
	int fd = spawn(silent_server, &pid);
	struct conn *c = conn_new(fd, fd);
	char *line, buf[4];

	conn_set_timeout(c, 1);
	T_EQ(conn_read_line(c, &line, 100), CONN_TIMEOUT);
	conn_set_timeout(c, 5);
	T_EQ(conn_read(c, buf, sizeof(buf)), CONN_EOF);
	conn_free(c);
	close(fd);
	reap(pid);
}

static void test_read_full_pending(void)
{
	int sv[2];
	struct conn *c;
	char *line, buf[8];

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	(void)!write(sv[1], "A1 APPEND {5}\r\nhello\r\nnext\r\n", 28);
	c = conn_new(sv[0], sv[0]);
	conn_set_timeout(c, 2);
	T_EQ(conn_read_line(c, &line, 100), 13);
	T_EQ(conn_pending(c), 13);
	T_EQ(conn_read_full(c, buf, 5), 5);
	T_OK(memcmp(buf, "hello", 5) == 0);
	T_EQ(conn_read_line(c, &line, 100), 0);
	T_EQ(conn_read_line(c, &line, 100), 4);
	T_STREQ(line, "next");
	T_EQ(conn_wait(c, -1, 10), 0);
	(void)!write(sv[1], "x", 1);
	T_EQ(conn_wait(c, -1, 1000), 1);
	close(sv[1]);
	T_EQ(conn_read_line(c, &line, 100), CONN_EOF);
	conn_free(c);
	close(sv[0]);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (mkdtemp(dir) == NULL || make_certs() != 0) {
		printf("not ok 1 - cannot make test certificates with openssl\n1..1\n");
		return 1;
	}
	T_RUN(test_tls_roundtrip);
	T_RUN(test_tls_wrong_host_and_ca);
	T_RUN(test_starttls_injection);
	T_RUN(test_deflate);
	T_RUN(test_timeout_eof);
	T_RUN(test_read_full_pending);
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		(void)!system(cmd);
	}
	return t_done();
}

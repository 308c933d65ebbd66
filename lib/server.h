/*
 * How a server process gets its connections (DESIGN.md §5):
 *  - default: the connection is stdin/stdout (inetd, systemd Accept=yes);
 *  - LISTEN_FDS set by systemd for this pid (Accept=no), or --listen
 *    ADDR:PORT: accept and fork one child per connection, which then runs
 *    the same session function on the accepted socket.
 * And the privilege drop a server started as root does before it touches
 * mail.
 */
#ifndef MK_SERVER_H
#define MK_SERVER_H
#include <stddef.h>

struct prefork_opts;

/* Runs one protocol session on FD_IN/FD_OUT; PEER is "ip" or "local". Returns an exit code. */
typedef int (*server_session_fn)(int fd_in, int fd_out, const char *peer, void *arg);

struct server_opts {
	const char *listen;	/* "127.0.0.1:1143", "[::1]:1143", or NULL */
	int max_children;	/* accept no more at once (default 500) */
	/* a pool of reused workers instead of fork per connection (lib/prefork.h) */
	const struct prefork_opts *prefork;
};

/*
 * Runs FN on stdin/stdout, or accepts on --listen / LISTEN_FDS and forks.
 * In accept mode it returns only on a fatal error or SIGTERM/SIGINT (after
 * signalling its children), with an exit code.
 */
int server_run(const struct server_opts *o, server_session_fn fn, void *arg);

/* The peer address of a connected socket ("127.0.0.1", "::1"), or "local". */
void server_peer(int fd, char *buf, size_t len);

/*
 * After accept() failed with E (the listener's and the prefork workers'
 * shared rule): 1 to accept again (interrupted, aborted, or out of
 * descriptors or memory: logged, after a second's pause), 0 when the
 * listener is broken (logged as an error).
 */
int server_accept_retry(int e);
/* 1 if FD is a socket connected from a loopback address (or not a socket). */
int server_peer_is_loopback(int fd);

/*
 * When running as root, switches to USER (groups, gid, uid; checks that
 * root cannot be regained) and returns 0.  As another user does nothing.
 * EX_NOUSER if USER does not exist, EX_OSERR on failure, with err set.
 */
int server_drop_privileges(const char *user, char *err, size_t errlen);

/* Parses "ADDR:PORT" / "[ADDR]:PORT" into a listening socket; -1 and err. */
int server_listen(const char *spec, char *err, size_t errlen);
#endif

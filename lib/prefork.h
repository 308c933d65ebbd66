/*
 * A pool of reused session processes on a listening socket (postfix's
 * master and smtpd): instead of one fork() per connection, each worker
 * accept()s and runs sessions one after another, so the fork, the
 * copy-on-write faults of a fresh child, the lazy symbol binding and the
 * first-use setup of OpenSSL and NSS are paid once per worker instead of
 * once per connection.
 *
 * The parent never accepts.  It watches the socket only while no worker is
 * idle, and then forks one (up to max_workers); a connection that finds
 * every worker busy waits in the listen backlog.  Workers tell the parent
 * "busy" and "idle" through a pipe; a worker exits after max_uses sessions
 * or idle_timeout seconds without a connection, so an idle server holds no
 * worker at all.  A worker that exits with a non-zero status or dies from
 * a signal is logged (event=worker_exit) and throttles spawning for a
 * second, so that a worker that cannot start does not become a fork loop.
 *
 * Isolation: sessions of one worker run strictly one after another; the
 * session function must free or wipe what it held (secrets included)
 * before it returns.  WORKER_INIT runs once in every new worker before its
 * first accept() (the privilege drop: an idle worker is already
 * unprivileged).  Processes a session forks (background jobs) do not
 * inherit the listening socket or the status pipe.
 *
 * SIGTERM/SIGINT to the parent: it signals every worker (SIGTERM, which
 * ends a session at once, as with fork per connection), waits for them and
 * returns 0.
 */
#ifndef MK_PREFORK_H
#define MK_PREFORK_H
#include "server.h"

#define PREFORK_MAX_USES 100		/* postfix's max_use */
#define PREFORK_IDLE_TIMEOUT 60		/* seconds (postfix's max_idle is 100) */

struct prefork_opts {
	int max_workers;		/* sessions at once (default 500) */
	int max_uses;			/* sessions per worker (default PREFORK_MAX_USES) */
	int idle_timeout;		/* seconds (default PREFORK_IDLE_TIMEOUT) */
	/* once per worker before its first session; non-zero is logged, not fatal */
	int (*worker_init)(void *arg);
};

/* Serves LFD (a listening socket) until SIGTERM/SIGINT; an exit code. */
int prefork_run(int lfd, const struct prefork_opts *o, server_session_fn fn, void *arg);
#endif

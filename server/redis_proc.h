/* redis_proc: the embedded Redis of tridentd.
 *
 * Without --redis, tridentd runs redis-server as its own child. This module
 * owns that child and its data directory: it writes DIR/redis.conf on every
 * start (unix socket DIR/redis.sock only, no TCP port; AOF on; maxmemory
 * policy always noeviction, since a task queue must never evict tasks),
 * spawns redis-server with it, waits until it answers PING, restarts it with
 * a backoff when it dies, and stops it (SIGTERM, then SIGKILL after a grace).
 *
 * The child cannot outlive tridentd: it gets PR_SET_PDEATHSIG(SIGTERM), so a
 * tridentd killed with -9 takes its Redis down with it (Redis flushes its
 * AOF on SIGTERM). It runs in its own process group, so a Ctrl-C on the
 * terminal reaches tridentd only, which then stops Redis in order. An orphan
 * still shutting down when a new tridentd starts is waited for, never killed:
 * two servers must not append to one AOF.
 *
 * Reaping is the caller's: several modules may have children, so the caller
 * owns the one SIGCHLD libevent event and calls redis_proc_reap from it,
 * which waits for this module's pid only (never waitpid(-1)).
 *
 * Threads: everything runs on the main thread, the one that runs the event
 * loop. PDEATHSIG fires when the thread that forked the child ends, so that
 * thread must live as long as the process. Not thread-safe. The process
 * ignores SIGPIPE (tridentd does, for all its sockets): a PING to a server
 * that is going away could otherwise kill it.
 */
#ifndef TRIDENT_REDIS_PROC_H
#define TRIDENT_REDIS_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;

/* redis_proc_opts: how to run the server. The strings are borrowed for the
 * call only: redis_proc_start copies what it keeps. */
typedef struct redis_proc_opts {
    const char *data_dir;    /* created if missing (mode 0700, parents too); holds
                                redis.conf, redis.sock, redis.log and the AOF */
    const char *server_path; /* NULL: "redis-server" looked up in PATH; a name
                                without '/' is looked up in PATH too */
    uint64_t maxmemory;      /* bytes; 0 = no limit. Policy is always noeviction */
    const char *appendfsync; /* "everysec" (NULL), "always" or "no" */
    int start_timeout_ms;    /* how long to wait for PING; <= 0: 10000 */
} redis_proc_opts;

/* redis_proc: one embedded server. Opaque; you own it from redis_proc_start
 * until redis_proc_stop frees it. */
typedef struct redis_proc redis_proc;

/* redis_proc_start: creates the data directory, waits for an orphan Redis
 * still answering on DIR/redis.sock to go away (bounded by the start
 * timeout; a socket file nothing answers on is removed), writes
 * DIR/redis.conf, spawns redis-server with it and blocks until it answers
 * PING. Returns the handle (you own it), or NULL with a one-line sentence in
 * err (always NUL-terminated when errlen > 0), such as
 *   "redis-server not found in PATH: install it with 'apt-get install -y
 *    redis-server', or give --redis URL"
 *   "redis-server exited with status 1 during start; its log says: ..."
 *   "redis-server (pid N) did not answer PING on DIR/redis.sock within 10000
 *    ms; its log says: ..."
 * On NULL no child runs. Blocks for up to about twice start_timeout_ms (the
 * orphan wait, then the PING wait), and longer while the server answers
 * -LOADING (the timeout counts silence, not a long AOF load): call it before
 * the loop runs. */
redis_proc *redis_proc_start(const redis_proc_opts *o, char *err, size_t errlen);

/* redis_proc_socket: the unix socket path (NUL-terminated, owned by p, valid
 * until redis_proc_stop). Stable across restarts. */
const char *redis_proc_socket(const redis_proc *p);

/* redis_proc_pid: the running child's pid; 0 while it is dead and a restart
 * is pending or failed. Changes on each restart. */
pid_t redis_proc_pid(const redis_proc *p);

/* redis_proc_watch: from now on a death seen by redis_proc_reap schedules a
 * restart on base: after 0 ms the first time, then 100 ms doubling up to 5 s
 * while the server keeps dying within 10 s of its start (a timer, never a
 * sleep on the loop). A restart blocks the loop while it waits for PING, up
 * to start_timeout_ms (more while Redis loads its AOF): acceptable, since
 * without Redis the broker can do nothing useful anyway. A restart that fails
 * is logged and tried again with the next backoff. on_restart(arg) runs on
 * the loop after each restart answers PING (reconnect there); it must not
 * call redis_proc_stop. base and arg are borrowed and must outlive p. Calling
 * it again replaces the callback. */
void redis_proc_watch(redis_proc *p, struct event_base *base, void (*on_restart)(void *arg),
                      void *arg);

/* redis_proc_reap: for the caller's SIGCHLD handling. waitpid()s the child
 * without blocking. Returns 1 when it had died: the death is logged
 * ("embedded redis-server (pid N) exited with status S" or "... was killed by
 * signal K") and, when watched, a restart is scheduled; 0 when it is alive or
 * already known dead; -1 with errno set when waitpid fails. A child reaped by
 * someone else (ECHILD) counts as dead. Safe to call at any time on the loop,
 * but not on a handle already stopped. */
int redis_proc_reap(redis_proc *p);

/* redis_proc_stop: cancels a pending restart, sends SIGTERM, waits up to
 * grace_ms for the child (Redis flushes its AOF and removes its socket on
 * SIGTERM), then SIGKILLs it; removes the socket file and frees p. Blocks
 * for up to grace_ms. NULL is allowed. Not from on_restart. */
void redis_proc_stop(redis_proc *p, int grace_ms);

#endif

/* redis_harness: a real redis-server for one test, in its own temp dir.
 *
 * redis_harness_start runs `redis-server` as a child of the test process on
 * a free port of 127.0.0.1 and on a unix socket in a fresh temporary
 * directory (its --dir, so AOF files land there too), with RDB snapshots off
 * and the log in DIR/redis.log, and returns once the server answers PING.
 * The test then talks to it through h->port or h->unix_path. Crash tests
 * use redis_harness_kill (SIGKILL, files kept) and redis_harness_restart
 * (same port, same dir: an AOF-persisted key survives). redis_harness_stop
 * ends it with SIGTERM (SIGKILL after 10 s) and removes the directory.
 *
 * The server is always signalled by the PID this harness started, never by
 * name, and dies with the test process if the test crashes (see
 * harness_spawn). redis_harness_start makes the process ignore SIGPIPE, so a
 * client writing to a killed server gets EPIPE instead of dying.
 *
 * Functions return 0 or -1; on -1 h->error holds a NUL-terminated message
 * for the test log. Test code only: one thread per harness.
 */
#ifndef TRIDENT_REDIS_HARNESS_H
#define TRIDENT_REDIS_HARNESS_H

#include <limits.h>
#include <sys/types.h>
#include <sys/un.h>

/* redis_harness_opts: how to run the server. A zeroed struct (or NULL)
 * gives the defaults. Borrowed: the pointers must stay valid until
 * redis_harness_stop, because redis_harness_restart uses them again. */
typedef struct redis_harness_opts {
    int appendonly;              /* nonzero: --appendonly yes; else no */
    const char *appendfsync;     /* "always", "everysec", "no"; NULL: redis default */
    int start_timeout_ms;        /* how long to wait for PING; 0: 10000 */
    const char *server;          /* program name or path; NULL: "redis-server" */
    const char *const *extra_args; /* more redis-server arguments, NULL-terminated */
    int (*pick_port)(void);      /* seam for tests; NULL: harness_free_port */
} redis_harness_opts;

typedef struct redis_harness {
    pid_t pid;                   /* the running server, 0 when none */
    int port;                    /* TCP port on 127.0.0.1 */
    char dir[PATH_MAX];          /* the temp dir (--dir); "" when none */
    char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* DIR/redis.sock */
    char log_path[PATH_MAX];     /* DIR/redis.log */
    char server_path[PATH_MAX];  /* the redis-server that was found */
    char error[2048];            /* why the last call failed */
    redis_harness_opts opts;     /* copy of the caller's options */
} redis_harness;

/* redis_harness_start: fills h (its previous content is ignored) and starts
 * the server. A port that turns out to be taken is replaced by another, a
 * few times. Returns 0 once PING is answered; -1 when redis-server is not
 * installed, the directory cannot be made, or the server exits or stays
 * silent past the timeout (h->error then ends with the tail of its log).
 * On -1 no process runs and the directory is removed. */
int redis_harness_start(redis_harness *h, const redis_harness_opts *o);

/* redis_harness_stop: SIGTERM to the server, waits (SIGKILL after 10 s),
 * then removes the directory. Safe on a harness that is stopped, killed or
 * failed to start. Returns 0, or -1 when the process could not be reaped or
 * the directory not removed. */
int redis_harness_stop(redis_harness *h);

/* redis_harness_kill: SIGKILL to the server and waits for it; the directory
 * and its data stay for redis_harness_restart. Returns 0, or -1 when no
 * server runs or it could not be reaped. */
int redis_harness_kill(redis_harness *h);

/* redis_harness_restart: stops the server if it runs (SIGTERM), then starts
 * it again with the same options, port and directory, so data persisted to
 * the AOF is loaded again; returns once PING is answered. Returns -1 when it
 * does not come up (the port may have been taken meanwhile); the directory
 * is then kept and redis_harness_stop still cleans up. */
int redis_harness_restart(redis_harness *h);

#endif

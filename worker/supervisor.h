/* supervisor: the pre-fork master of trident-worker, the process the user
 * starts.
 *
 * It forks N children that run the caller's child_main and keeps N of them
 * alive, in the manner of nginx's master process. Every child holds a slot
 * (0..N-1, stable across respawns of that slot), its own scratch directory
 * (exported as TMPDIR, removed however the child ends, kill -9 included) and
 * the write end of a control socket on which it tells the supervisor it is
 * READY or RECYCLEing. A child that dies is reaped, logged with its exit
 * status or signal, and replaced; one that keeps dying within a second of its
 * start is replaced after a delay doubling from 100 ms to 30 s.
 *
 * Signals are the only way to tell the supervisor something:
 *   SIGTERM, SIGINT  graceful stop: SIGTERM to every child, SIGKILL to those
 *                    still alive after grace_ms, then return 0
 *   SIGQUIT          fast stop: SIGKILL to every child at once, return 0
 *   SIGHUP           rolling restart: N new children first; each old child
 *                    gets SIGTERM once the new child of its slot is READY
 *                    (or after ready_timeout_ms); old children are not
 *                    respawned
 *   SIGTTIN, SIGTTOU one more child; one fewer (never below one): the child
 *                    in the highest slot gets SIGTERM
 * A child sent SIGTERM for any reason gets SIGKILL if it is still alive
 * grace_ms later.
 *
 * The idea: handlers only set flags; the signals are blocked except inside
 * one ppoll() that also watches the children's control sockets and sleeps no
 * longer than the next deadline (a respawn after backoff, a SIGKILL after
 * grace, a rolling-restart bound). After each wake-up the flags are acted on
 * in a fixed order: reap, respawn (and SIGTTIN), terminate, drain (SIGTTOU and
 * old children), reload (SIGHUP).
 *
 * Threads and processes: call supervisor_run from the main thread of a
 * single-threaded process, once at a time; it owns SIGCHLD and the signals
 * above while it runs, and reaps with waitpid(-1), so the process must have
 * no other children. supervisor_tell is for the child process.
 */
#ifndef TRIDENT_SUPERVISOR_H
#define TRIDENT_SUPERVISOR_H

#include <stdint.h>

/* The exit codes supervisor_run returns, for main() to exit with. */
#define SUPERVISOR_EXIT_OK 0    /* stopped by a signal, every child reaped */
#define SUPERVISOR_EXIT_START 1 /* could not start (bad options, signals,
                                   scratch root, fork): no child left */

/* child_env: what a child knows about itself. Lives in the child's copy of
 * the supervisor's memory: valid for as long as child_main runs. */
typedef struct child_env {
    int slot;                /* 0..processes-1 (more after SIGTTIN); kept by
                                the respawns of that slot */
    unsigned generation;     /* counts the spawns of this supervisor, from 1 */
    const char *scratch_dir; /* this child's own directory, mode 0700, also
                                in $TMPDIR; NUL-terminated */
    int ctl_fd;              /* this child's end of its control socket, for
                                supervisor_tell; close-on-exec */
} child_env;

/* child_main_fn: runs in the forked child, in a process group of its own
 * (a Ctrl-C on the terminal reaches the supervisor only), with default
 * signal dispositions, an empty signal mask, PR_SET_PDEATHSIG(SIGTERM) (a
 * supervisor killed with -9 leaves no child running unsupervised) and the
 * log role still "supervisor": log_init sets the child's own. Its return
 * value (0..255) is the child's exit status: the supervisor code _exit()s
 * with it, after flushing stdio. */
typedef int (*child_main_fn)(const child_env *env, void *arg);

/* supervisor_opts: borrowed for the duration of supervisor_run. */
typedef struct supervisor_opts {
    int processes;             /* children to keep alive, >= 1 */
    uint64_t grace_ms;         /* between a child's SIGTERM and its SIGKILL */
    uint64_t ready_timeout_ms; /* rolling restart: how long an old child waits
                                  for its successor's READY; 0: 10 s */
    const char *scratch_root;  /* scratch directories go in a private
                                  directory under it; NULL: $TMPDIR, or /tmp */
    child_main_fn child_main;
    void *arg;                 /* passed to child_main */
    /* notify: optional; told "READY=1" once the first children are started
     * and "STOPPING=1" when a stop begins (for sd_notify). */
    void (*notify)(const char *state, void *arg);
    void *notify_arg;
} supervisor_opts;

/* supervisor_run: starts o->processes children and supervises them until
 * SIGTERM, SIGINT or SIGQUIT. Returns SUPERVISOR_EXIT_OK once every child is
 * reaped and every scratch directory removed, or SUPERVISOR_EXIT_START when
 * it cannot start (the reason is logged; children already started are
 * killed and reaped). On return the signal dispositions and mask it changed
 * are restored. Never calls exit(); children never return from it. */
int supervisor_run(const supervisor_opts *o);

/* supervisor_msg: what a child tells its supervisor. */
typedef enum {
    /* the child is connected and serving: a rolling restart may now stop one
     * old child */
    SUPERVISOR_READY = 'R',
    /* the child stops taking tasks and exits soon (task or memory limit):
     * its replacement starts now, and it is not respawned when it exits */
    SUPERVISOR_RECYCLE = 'C',
} supervisor_msg;

/* supervisor_tell: in the child, sends m to the supervisor. Returns 0, or -1
 * with errno set (EPIPE: the supervisor is gone; never raises SIGPIPE).
 * Async-signal-safe and thread-safe. */
int supervisor_tell(const child_env *env, supervisor_msg m);

#endif

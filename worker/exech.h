/* exech: the exec handler: runs a task as a program, with all its IO on the
 * worker child's event loop.
 *
 * A program is `/bin/sh -c COMMAND` in a process group of its own, with the
 * task's payload on its stdin, TRIDENT_TASK_ID, TRIDENT_TASK_NAME,
 * TRIDENT_TASK_ATTEMPT and TRIDENT_TASK_DEADLINE_MS in its environment (the
 * rest, TMPDIR included, is the worker's), its stdout collected as the
 * result and the last EXECH_TAIL_BYTES of its stderr kept for the failure
 * message. Its three pipes are nonblocking events on the loop: no thread
 * ever waits on a program, and a child runs as many at once as it has slots.
 *
 * An exech context owns the programs it started (pid -> run). The context
 * does not reap: the worker child's SIGCHLD handler reaps every pid with
 * waitpid(-1, WNOHANG) and hands each one to exech_reaped. A run ends when
 * its program was reaped AND its stdout and stderr reached EOF; then the
 * outcome is set on the task and the done callback runs, once, from a
 * callback of the context's own (never from inside exech_reaped or a pipe
 * callback), so done may free the task, start or signal other programs.
 *
 * Process groups: the group id is the program's pid (t->pid). exech_signal
 * sends to the whole group (SIGTERM at the deadline or on cancel, SIGKILL
 * after the kill grace). When a run ends, whatever is still in its group
 * gets SIGKILL: a task's processes do not outlive the task. A background
 * process that keeps stdout or stderr open after the program exited gets
 * EXECH_LINGER_MS to let go; then its group is killed and the run ends with
 * the output read so far and the program's own exit status. A program that
 * leaves its group (setsid) escapes all of this, as it would anywhere.
 * PR_SET_PDEATHSIG kills the program (not its descendants) when the worker
 * child dies, kill -9 included; the kernel ties it to the thread that
 * forked, which is why programs are started from the loop thread, which
 * lives as long as the process.
 *
 * Threads: everything here runs on the loop thread of the event_base given
 * to exech_new. The process must ignore SIGPIPE (the worker child does): a
 * program that exits without reading its stdin makes our write fail with
 * EPIPE, which ends the input and nothing else. Not thread-safe.
 */
#ifndef TRIDENT_EXECH_H
#define TRIDENT_EXECH_H

#include <stddef.h>
#include <sys/types.h>

#include "trident/handler.h"

struct event_base;

#define EXECH_TAIL_BYTES 4096 /* stderr kept for the failure message */
#define EXECH_LINGER_MS 1000  /* after the exit, how long open output pipes are waited for */

typedef struct exech exech;

/* exech_done_fn: the run of t is over and its outcome is set: t->ok with
 * the program's stdout in t->result, or a failure (code, error, retryable).
 * t->pid is 0 again. Runs on the loop thread; t is the caller's again. */
typedef void (*exech_done_fn)(trident_task *t, void *arg);

/* exech_new: a context for the programs started on base (borrowed: it must
 * outlive the context). You own the result; free it with exech_free. NULL
 * when libevent cannot allocate an event. */
exech *exech_new(struct event_base *base);

/* exech_free: kills the group of every program still running with SIGKILL,
 * reaps the ones not reaped yet (a killed process ends promptly) and frees
 * the context. The done callbacks of those runs never run: this is for the
 * child's teardown, which frees its tasks itself. Loop thread only, and not
 * from a done callback. NULL is fine. */
void exech_free(exech *x);

/* exech_start: starts `/bin/sh -c command` for t (see the header comment)
 * and sets t->pid to its pid, which is also its process group id. t and
 * command are borrowed: t until done runs, command only during the call.
 * Its stdout may hold at most max_output bytes: one more kills the group
 * and fails the task, not retryably.
 *
 * Outcomes given to done: exit status 0 is success with stdout as the
 * result; anything else is a retryable TASK_FAILED failure with the message
 * "exited with status N: <stderr tail>" or "killed by signal N (SIGXXX):
 * <stderr tail>" (without ": <tail>" when stderr was empty).
 *
 * Returns 0, and done(t, arg) will run exactly once; or -1 with a message
 * in err (a pipe or fork failure) and done never runs, no fd is left open
 * and no process started. */
int exech_start(exech *x, trident_task *t, const char *command, size_t max_output,
                exech_done_fn done, void *arg, char *err, size_t errlen);

/* exech_signal: sends sig to the process group of t's program. Returns 0,
 * or -1 with errno set: ESRCH when t has no run here (never started, or
 * its done already ran), or kill's own errno. */
int exech_signal(exech *x, const trident_task *t, int sig);

/* exech_reaped: the SIGCHLD handler passes every pid it reaped and its wait
 * status. Returns 1 when pid was one of our programs (the status is kept
 * for its outcome), 0 when it is not ours. Never calls done itself. */
int exech_reaped(exech *x, pid_t pid, int status);

/* exech_running: programs whose done has not run yet. */
size_t exech_running(const exech *x);

#endif

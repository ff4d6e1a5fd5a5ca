/* harness: process and file-system helpers shared by the test harnesses.
 *
 * The integration tests start real daemons (redis-server, tridentd,
 * trident-worker) as child processes on free ports in temporary directories,
 * and must leave nothing behind: no process, no directory. This module holds
 * the pieces every such harness needs: a free TCP port, a private temporary
 * directory, a recursive remove, a child spawned with its output in a log
 * file, and a bounded SIGTERM-then-SIGKILL stop of a child by its PID.
 *
 * Processes are only ever signalled by the PID their harness spawned, never
 * looked up by name. Functions return 0 (or a value >= 0) on success and -1
 * with errno set on failure. Test code only: not thread-safe.
 */
#ifndef TRIDENT_HARNESS_H
#define TRIDENT_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

/* harness_free_port: a TCP port on 127.0.0.1 that was free a moment ago
 * (the kernel's choice for a bind to port 0). Another process may take it
 * before the caller binds it, so a caller retries with a new port when its
 * bind fails. Returns the port, or -1 with errno set. */
int harness_free_port(void);

/* harness_tmpdir: creates a private (0700) directory under $TMPDIR, or /tmp
 * when TMPDIR is unset or empty, and writes its NUL-terminated path to out.
 * Returns 0, or -1 with errno set (ENAMETOOLONG when n is too small). The
 * caller removes it with harness_rmtree. */
int harness_tmpdir(char *out, size_t n);

/* harness_rmtree: removes dir and everything below it, without following
 * symbolic links. Returns 0 (also when dir does not exist), or -1 with errno
 * set when something could not be removed. */
int harness_rmtree(const char *dir);

/* harness_find_exe: looks up name in $PATH (or takes it as a path when it
 * holds a '/') and writes the path of an executable file to out. Returns 0,
 * or -1 with errno ENOENT when there is none. */
int harness_find_exe(const char *name, char *out, size_t n);

/* harness_spawn: starts the program at path with argv (argv[0] included,
 * NULL-terminated; the strings are only read), stdin from /dev/null and stdout and stderr appended to
 * log_path (created if missing). The child gets an empty signal mask,
 * default dispositions and no inherited descriptors beyond 0-2, and is
 * killed by the kernel if the calling thread dies first, so a crashed test
 * leaves no daemon behind. A failing exec is written to the log and the
 * child exits with 127. Returns the child's PID, or -1 with errno set. */
pid_t harness_spawn(const char *path, const char *const argv[], const char *log_path);

/* harness_wait: waits up to timeout_ms (0: just looks) for the child pid to
 * end and stores its wait status in *status when status is not NULL.
 * Returns 1 when the child was reaped, 0 when it still runs after the
 * timeout, -1 with errno set on error (ECHILD: not our child). */
int harness_wait(pid_t pid, int timeout_ms, int *status);

/* harness_kill: sends SIGKILL to the child pid and waits for it (a killed
 * process always ends). Returns 0 once it is reaped, with its wait status in
 * *status when status is not NULL; -1 with errno set on error. */
int harness_kill(pid_t pid, int *status);

/* harness_terminate: sends SIGTERM to the child pid, waits up to grace_ms
 * for it to end, then goes on as harness_kill. Returns 0 once the child is reaped, with its wait
 * status in *status when status is not NULL; -1 with errno set on error. */
int harness_terminate(pid_t pid, int grace_ms, int *status);

/* harness_log_tail: reads the last at most n-1 bytes of the file at path,
 * starting no earlier than offset, into out (NUL-terminated). Returns the
 * number of bytes read, or -1 with errno set. */
ssize_t harness_log_tail(const char *path, off_t offset, char *out, size_t n);

/* harness_nap_ms: sleeps ms milliseconds, between two polls of a condition;
 * never use it as a synchronization by itself. */
void harness_nap_ms(int ms);

#endif

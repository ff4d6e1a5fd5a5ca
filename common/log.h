/* log: the one log of a Trident process.
 *
 * It owns the level, the role ("broker", "supervisor", "worker", "client")
 * and the file descriptor lines go to (stderr until log_open names a file).
 * A line reads "2026-11-25T17:49:40.123Z 12345 broker I message": UTC time
 * with milliseconds, the pid read at each call (so a forked child prints its
 * own), the role and one letter for the level. Each line is built in a stack
 * buffer and written with one write(2), so lines from threads and processes
 * sharing the file never interleave, and no lock is needed.
 *
 * Threads: log_write, log_write_errno, the macros and log_strerror may be
 * called from any thread (not from a signal handler). log_init, log_open and
 * log_reopen belong to the main thread; reopening swaps the file under a
 * stable descriptor (dup2), so a line written meanwhile still lands in one of
 * the two files. Logging never changes errno.
 */
#ifndef TRIDENT_LOG_H
#define TRIDENT_LOG_H

#include <stddef.h>

typedef enum { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE } log_level;

/* log_level_from_verbosity: 0 -> WARN, 1 (-v) -> INFO, 2 (-vv) -> DEBUG,
 * 3 or more (-vvv) -> TRACE; negative -> ERROR. */
log_level log_level_from_verbosity(int v);

/* log_init: sets the role (copied, at most 31 bytes kept) and the level. */
void log_init(const char *role, log_level level);
void log_set_level(log_level level);
log_level log_get_level(void);
/* log_role: the role given to log_init ("trident" before), never NULL.
 * Async-signal-safe (the crash handler prints it). */
const char *log_role(void);

/* log_open: sends lines to path, opened in append mode and created 0644;
 * NULL or "-" means stderr. Returns 0, or -1 with errno set (the previous
 * destination stays). log_reopen opens the same path again, for SIGHUP after
 * log rotation; with stderr it does nothing. Same return values. */
int log_open(const char *path);
int log_reopen(void);

/* log_write: writes one line if level is enabled. Messages longer than a
 * line's buffer are cut and end with "...". */
void log_write(log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* log_write_errno: like log_write, then ": <strerror> (<ERRNO NAME>)", as in
 * "bind 127.0.0.1:7878: Address already in use (EADDRINUSE)". */
void log_write_errno(log_level level, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* log_strerror: writes "Address already in use (EADDRINUSE)" for err into
 * buf (always NUL-terminated when len > 0); an errno without a name in the
 * table gets its number. Returns buf. Thread-safe. */
char *log_strerror(int err, char *buf, size_t len);

/* The macros test the level first: a disabled line costs no formatting and
 * its arguments are not evaluated. */
#define log_at(level, ...) \
    do { \
        if ((level) <= log_get_level()) \
            log_write((level), __VA_ARGS__); \
    } while (0)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)
#define log_trace(...) log_at(LOG_TRACE, __VA_ARGS__)

#endif

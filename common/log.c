#define _GNU_SOURCE /* dup3, GNU strerror_r */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "mem.h"

/* A line longer than this is cut: big enough for any message Trident writes
 * itself, small enough for a thread's stack. */
#define LOG_LINE_MAX 4096

static atomic_int current_level = LOG_WARN;
static char role[32] = "trident";

/* The descriptor lines go to. It changes once, from stderr to own_fd, when
 * the first file is opened; later opens replace the file behind own_fd with
 * dup3, so a writer in another thread never sees a closed descriptor. */
static atomic_int out_fd = STDERR_FILENO;
static int own_fd = -1;
static char *own_path; /* NULL while lines go to stderr */

log_level log_level_from_verbosity(int v)
{
    if (v < 0)
        return LOG_ERROR;
    if (v >= 3)
        return LOG_TRACE;
    return (log_level)(LOG_WARN + v);
}

void log_init(const char *r, log_level level)
{
    size_t n = strnlen(r, sizeof role - 1);
    memcpy(role, r, n);
    role[n] = '\0';
    log_set_level(level);
}

void log_set_level(log_level level)
{
    atomic_store_explicit(&current_level, (int)level, memory_order_relaxed);
}

log_level log_get_level(void)
{
    return (log_level)atomic_load_explicit(&current_level, memory_order_relaxed);
}

const char *log_role(void)
{
    return role;
}

/* ---- destination ----------------------------------------------------------
 * log_open and log_reopen run on the main thread (at start and on SIGHUP);
 * writers only load out_fd, which is why the file is swapped under own_fd
 * rather than closed.
 */

/* log_redirect: points own_fd (or a new descriptor) at fd's file and closes
 * fd. Returns 0 or -1 with errno set. */
static int log_redirect(int fd)
{
    if (own_fd < 0) {
        own_fd = fd;
        atomic_store(&out_fd, own_fd);
        return 0;
    }
    int rc = dup3(fd, own_fd, O_CLOEXEC);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc < 0 ? -1 : 0;
}

int log_open(const char *path)
{
    bool to_stderr = path == NULL || strcmp(path, "-") == 0;
    int fd;
    if (to_stderr && own_fd < 0)
        return 0;
    if (to_stderr)
        fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);
    else
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || log_redirect(fd) < 0)
        return -1;
    mem_free(own_path);
    own_path = to_stderr ? NULL : mem_strdup(path);
    return 0;
}

int log_reopen(void)
{
    if (own_path == NULL)
        return 0;
    int fd = open(own_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    return log_redirect(fd);
}

/* ---- formatting -----------------------------------------------------------
 * The time is converted with plain arithmetic instead of gmtime_r, which
 * takes glibc's timezone lock: a child forked while another thread held it
 * would hang on its first line.
 */

static const struct {
    int num;
    const char *name;
} errno_names[] = {
#define ERRNO_NAME(e) { e, #e }
    ERRNO_NAME(EPERM), ERRNO_NAME(ENOENT), ERRNO_NAME(ESRCH), ERRNO_NAME(EINTR),
    ERRNO_NAME(EIO), ERRNO_NAME(ENXIO), ERRNO_NAME(E2BIG), ERRNO_NAME(ENOEXEC),
    ERRNO_NAME(EBADF), ERRNO_NAME(ECHILD), ERRNO_NAME(EAGAIN), ERRNO_NAME(ENOMEM),
    ERRNO_NAME(EACCES), ERRNO_NAME(EFAULT), ERRNO_NAME(EBUSY), ERRNO_NAME(EEXIST),
    ERRNO_NAME(EXDEV), ERRNO_NAME(ENODEV), ERRNO_NAME(ENOTDIR), ERRNO_NAME(EISDIR),
    ERRNO_NAME(EINVAL), ERRNO_NAME(ENFILE), ERRNO_NAME(EMFILE), ERRNO_NAME(ENOTTY),
    ERRNO_NAME(ETXTBSY), ERRNO_NAME(EFBIG), ERRNO_NAME(ENOSPC), ERRNO_NAME(ESPIPE),
    ERRNO_NAME(EROFS), ERRNO_NAME(EMLINK), ERRNO_NAME(EPIPE), ERRNO_NAME(EDOM),
    ERRNO_NAME(ERANGE), ERRNO_NAME(EDEADLK), ERRNO_NAME(ENAMETOOLONG),
    ERRNO_NAME(ENOLCK), ERRNO_NAME(ENOSYS), ERRNO_NAME(ENOTEMPTY), ERRNO_NAME(ELOOP),
    ERRNO_NAME(EOVERFLOW), ERRNO_NAME(ENOTSOCK), ERRNO_NAME(EDESTADDRREQ),
    ERRNO_NAME(EMSGSIZE), ERRNO_NAME(EPROTOTYPE), ERRNO_NAME(ENOPROTOOPT),
    ERRNO_NAME(EPROTONOSUPPORT), ERRNO_NAME(EOPNOTSUPP), ERRNO_NAME(EAFNOSUPPORT),
    ERRNO_NAME(EADDRINUSE), ERRNO_NAME(EADDRNOTAVAIL), ERRNO_NAME(ENETDOWN),
    ERRNO_NAME(ENETUNREACH), ERRNO_NAME(ECONNABORTED), ERRNO_NAME(ECONNRESET),
    ERRNO_NAME(ENOBUFS), ERRNO_NAME(EISCONN), ERRNO_NAME(ENOTCONN),
    ERRNO_NAME(ETIMEDOUT), ERRNO_NAME(ECONNREFUSED), ERRNO_NAME(EHOSTUNREACH),
    ERRNO_NAME(EALREADY), ERRNO_NAME(EINPROGRESS), ERRNO_NAME(EDQUOT),
    ERRNO_NAME(ECANCELED),
#undef ERRNO_NAME
};

char *log_strerror(int err, char *buf, size_t len)
{
    char tmp[128];
    const char *msg = strerror_r(err, tmp, sizeof tmp);
    for (size_t i = 0; i < sizeof errno_names / sizeof errno_names[0]; i++) {
        if (errno_names[i].num == err) {
            snprintf(buf, len, "%s (%s)", msg, errno_names[i].name);
            return buf;
        }
    }
    snprintf(buf, len, "%s (errno %d)", msg, err);
    return buf;
}

/* log_digits: v as exactly width decimal digits (zero-padded) at p. */
static char *log_digits(char *p, long long v, int width)
{
    for (int i = width - 1; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
    return p + width;
}

/* log_utc: formats a unix time in ms as "2026-11-25T17:49:40.123Z" (24
 * characters and a NUL) into out. Days to a civil date: the proleptic
 * Gregorian calendar counted in 400-year eras starting on March 1st, so the
 * leap day is the last day of a year. */
static void log_utc(char out[25], long long ms)
{
    long long secs = ms / 1000, days = secs / 86400, sod = secs % 86400;
    days += 719468; /* 1970-01-01 -> 0000-03-01 */
    long long era = days / 146097;
    long long doe = days - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    long long day = doy - (153 * mp + 2) / 5 + 1;
    long long month = mp < 10 ? mp + 3 : mp - 9;
    long long year = yoe + era * 400 + (month <= 2);

    char *p = log_digits(out, year, 4);
    *p++ = '-';
    p = log_digits(p, month, 2);
    *p++ = '-';
    p = log_digits(p, day, 2);
    *p++ = 'T';
    p = log_digits(p, sod / 3600, 2);
    *p++ = ':';
    p = log_digits(p, sod / 60 % 60, 2);
    *p++ = ':';
    p = log_digits(p, sod % 60, 2);
    *p++ = '.';
    p = log_digits(p, ms % 1000, 3);
    *p++ = 'Z';
    *p = '\0';
}

/* log_vwrite: formats and writes one line; err >= 0 adds the errno suffix,
 * which survives truncation (the message is cut, not the reason). */
__attribute__((format(printf, 3, 0)))
static void log_vwrite(log_level level, int err, const char *fmt, va_list ap)
{
    int saved_errno = errno;
    char line[LOG_LINE_MAX];
    char stamp[32], suffix[160] = "";

    log_utc(stamp, (long long)clock_wall_ms());
    if (err >= 0) {
        char reason[140];
        snprintf(suffix, sizeof suffix, ": %s", log_strerror(err, reason, sizeof reason));
    }
    size_t suffix_len = strlen(suffix);
    /* Room for the message: the line minus the suffix, '\n' and NUL. */
    size_t room = sizeof line - suffix_len - 2;
    int n = snprintf(line, room, "%s %d %s %c ", stamp, (int)getpid(), role,
                     "EWIDT"[level]);
    size_t len = (size_t)n;
    int m = vsnprintf(line + len, room - len, fmt, ap);
    if (m < 0)
        m = 0;
    if ((size_t)m >= room - len) {
        len = room - 1;
        memcpy(line + len - 3, "...", 3);
    } else {
        len += (size_t)m;
    }
    for (size_t i = (size_t)n; i < len; i++) {
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' '; /* one record, one line */
    }
    memcpy(line + len, suffix, suffix_len);
    len += suffix_len;
    line[len++] = '\n';

    int fd = atomic_load(&out_fd);
    while (write(fd, line, len) < 0 && errno == EINTR) {
    }
    errno = saved_errno;
}

void log_write(log_level level, const char *fmt, ...)
{
    if (level > log_get_level())
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, -1, fmt, ap);
    va_end(ap);
}

void log_write_errno(log_level level, int err, const char *fmt, ...)
{
    if (level > log_get_level())
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, err, fmt, ap);
    va_end(ap);
}

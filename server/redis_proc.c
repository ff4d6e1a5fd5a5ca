/* redis_proc: the embedded redis-server child of tridentd (see redis_proc.h). */
#define _GNU_SOURCE

#include "redis_proc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "log.h"
#include "mem.h"

#define REDIS_PROC_START_TIMEOUT_MS 10000 /* default wait for PING */
#define REDIS_PROC_POLL_MS 10             /* nap between two looks at the child */
#define REDIS_PROC_PING_MS 250            /* one PING try, connect plus reply */
#define REDIS_PROC_STABLE_MS 10000        /* a run this long resets the backoff */
#define REDIS_PROC_BACKOFF_FIRST_MS 100   /* the first nonzero backoff */
#define REDIS_PROC_BACKOFF_MAX_MS 5000
#define REDIS_PROC_LOG_TAIL 600           /* bytes of redis.log quoted in an error */
#define REDIS_PROC_CLOSE_MAX 65536        /* fd bound when close_range is missing */

static const char redis_proc_install_hint[] =
    "install it with 'apt-get install -y redis-server', or give --redis URL";

/* Owned strings are NUL-terminated and live as long as the handle. */
struct redis_proc {
    char *dir;            /* absolute, canonical data directory */
    char *server;         /* path of the redis-server executable */
    char *conf_path;      /* DIR/redis.conf */
    char *sock_path;      /* DIR/redis.sock, fits a sockaddr_un */
    char *log_path;       /* DIR/redis.log */
    uint64_t maxmemory;
    const char *appendfsync; /* one of the static strings "always", "everysec", "no" */
    int start_timeout_ms;

    pid_t pid;            /* the running child; 0 when none */
    uint64_t started_ms;  /* monotonic time of the last start attempt */
    off_t log_offset;     /* size of redis.log before the last spawn */
    int backoff_ms;       /* delay of the last scheduled restart; -1 before any */

    struct event_base *base;    /* borrowed; NULL until redis_proc_watch */
    struct event *restart_ev;   /* owned timer; NULL until redis_proc_watch */
    void (*on_restart)(void *arg);
    void *arg;
};

/* ---- small helpers ----------------------------------------------------------
 * Errors travel as one sentence in the caller's err buffer, because the
 * caller (tridentd's main) prints it once and exits; nothing here logs a
 * failure of the first start itself. */

/* redis_proc_fail: writes the message into err (always NUL-terminated when
 * errlen > 0) and returns -1. */
__attribute__((format(printf, 3, 4)))
static int redis_proc_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* redis_proc_path: "dir/name", you own the result. */
static char *redis_proc_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + 1 + strlen(name) + 1;
    char *s = mem_malloc(n);

    snprintf(s, n, "%s/%s", dir, name);
    return s;
}

static void redis_proc_nap(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    /* An EINTR (SIGCHLD, say) just ends the nap early: callers poll. */
    nanosleep(&ts, NULL);
}

/* redis_proc_status: "exited with status S" or "was killed by signal K"
 * for a wait status, into buf. Returns buf. */
static const char *redis_proc_status(int st, char *buf, size_t n)
{
    if (WIFEXITED(st))
        snprintf(buf, n, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, n, "was killed by signal %d", WTERMSIG(st));
    else
        snprintf(buf, n, "changed state (wait status 0x%x)", (unsigned)st);
    return buf;
}

/* redis_proc_log_tail: the end of what redis.log got since the last spawn,
 * as one line (newlines become " | "), into out. Returns out. */
static const char *redis_proc_log_tail(const redis_proc *p, char *out, size_t n)
{
    char raw[REDIS_PROC_LOG_TAIL];
    struct stat st;
    ssize_t got = -1;

    snprintf(out, n, "(nothing)");
    int fd = open(p->log_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return out;
    if (fstat(fd, &st) == 0 && st.st_size > p->log_offset) {
        off_t from = st.st_size - (off_t)sizeof(raw);
        if (from < p->log_offset)
            from = p->log_offset;
        got = pread(fd, raw, sizeof(raw), from);
        /* Quote whole lines only: skip a line cut by the window. */
        if (got > 0 && from > p->log_offset) {
            char *nl = memchr(raw, '\n', (size_t)got);
            if (nl != NULL && nl + 1 < raw + got) {
                got -= nl + 1 - raw;
                memmove(raw, nl + 1, (size_t)got);
            }
        }
    }
    close(fd);
    while (got > 0 && isspace((unsigned char)raw[got - 1]))
        got--;
    if (got <= 0)
        return out;

    size_t o = 0;
    for (ssize_t i = 0; i < got && o + 4 < n; i++) {
        if (raw[i] == '\n') {
            memcpy(out + o, " | ", 3);
            o += 3;
        } else {
            out[o++] = isprint((unsigned char)raw[i]) ? raw[i] : '?';
        }
    }
    out[o] = '\0';
    return out;
}

/* ---- setup: executable, directory, config -----------------------------------
 * Everything that can fail without a process is checked before the fork, so
 * a missing redis-server or a bad directory is a clear sentence, not an exit
 * status 127. The config is written whole on every start: Redis never reads
 * a file an operator edited by hand and forgot. */

static int redis_proc_is_exe(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* redis_proc_find_server: the executable to run for server_path (see
 * redis_proc_opts). Returns its path (you own it), or NULL with err. */
static char *redis_proc_find_server(const char *server_path, char *err, size_t errlen)
{
    const char *name = server_path != NULL ? server_path : "redis-server";

    if (strchr(name, '/') != NULL) {
        if (redis_proc_is_exe(name))
            return mem_strdup(name);
        redis_proc_fail(err, errlen, "redis-server not found at %s (no executable file there): %s",
                        name, redis_proc_install_hint);
        return NULL;
    }
    const char *dirs = getenv("PATH");
    if (dirs == NULL || dirs[0] == '\0')
        dirs = "/usr/local/bin:/usr/bin:/bin";
    for (const char *d = dirs;; d++) {
        size_t len = strcspn(d, ":");
        /* An empty PATH entry means the current directory. */
        char *dir = len == 0 ? mem_strdup(".") : mem_strndup(d, len);
        char *path = redis_proc_path(dir, name);
        mem_free(dir);
        if (redis_proc_is_exe(path))
            return path;
        mem_free(path);
        d += len;
        if (*d == '\0')
            break;
    }
    redis_proc_fail(err, errlen, "%s not found in PATH: %s", name, redis_proc_install_hint);
    return NULL;
}

/* redis_proc_mkdirs: creates dir and its missing parents with mode 0700.
 * Returns 0, or -1 with err. */
static int redis_proc_mkdirs(const char *dir, char *err, size_t errlen)
{
    char *path = mem_strdup(dir);
    char why[128];
    struct stat st;

    for (char *s = path + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            redis_proc_fail(err, errlen, "mkdir %s: %s", path,
                            log_strerror(errno, why, sizeof why));
            mem_free(path);
            return -1;
        }
        *s = c;
        if (c == '\0')
            break;
    }
    mem_free(path);
    if (stat(dir, &st) != 0)
        return redis_proc_fail(err, errlen, "data directory %s: %s", dir,
                               log_strerror(errno, why, sizeof why));
    if (!S_ISDIR(st.st_mode))
        return redis_proc_fail(err, errlen, "data directory %s is not a directory", dir);
    return 0;
}

/* redis_proc_conf_str: writes "key value", quoting value in redis.conf's
 * double-quoted syntax when it is not one plain word (paths with spaces). */
static void redis_proc_conf_str(FILE *f, const char *key, const char *value)
{
    int plain = value[0] != '\0';

    for (const char *s = value; plain && *s != '\0'; s++)
        plain = isgraph((unsigned char)*s) && strchr("\"'\\", *s) == NULL;
    if (plain) {
        fprintf(f, "%s %s\n", key, value);
        return;
    }
    fprintf(f, "%s \"", key);
    for (const unsigned char *s = (const unsigned char *)value; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if (isprint(*s))
            fputc(*s, f);
        else
            fprintf(f, "\\x%02x", *s);
    }
    fputs("\"\n", f);
}

/* redis_proc_write_conf: writes DIR/redis.conf (mode 0600) from scratch.
 * Returns 0, or -1 with err. */
static int redis_proc_write_conf(const redis_proc *p, char *err, size_t errlen)
{
    char why[128];
    int fd = open(p->conf_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

    if (f == NULL) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return redis_proc_fail(err, errlen, "cannot write %s: %s", p->conf_path,
                               log_strerror(e, why, sizeof why));
    }
    fputs("# Written by tridentd on every start of its embedded redis-server: edits are lost.\n",
          f);
    fputs("port 0\n", f);
    redis_proc_conf_str(f, "unixsocket", p->sock_path);
    fputs("unixsocketperm 700\n", f);
    redis_proc_conf_str(f, "dir", p->dir);
    fputs("daemonize no\n", f);
    redis_proc_conf_str(f, "logfile", p->log_path);
    fputs("appendonly yes\n", f);
    fprintf(f, "appendfsync %s\n", p->appendfsync);
    /* The AOF is what keeps the tasks; RDB snapshots on top would only
     * repeat its work (its rewrites already start with an RDB preamble). */
    fputs("save \"\"\n", f);
    fprintf(f, "maxmemory %llu\n", (unsigned long long)p->maxmemory);
    /* A task queue must never evict tasks: a full Redis refuses writes. */
    fputs("maxmemory-policy noeviction\n", f);
    /* Task hashes with payloads up to 1 KiB stay in the compact listpack
     * encoding: about 330 bytes a queued task instead of 1,000 (STORAGE.md). */
    fputs("hash-max-listpack-value 1024\n", f);
    fputs("protected-mode yes\n", f);
    int failed = ferror(f);
    int e = errno;
    if (fclose(f) != 0 && !failed) {
        failed = 1;
        e = errno;
    }
    if (failed)
        return redis_proc_fail(err, errlen, "cannot write %s: %s", p->conf_path,
                               log_strerror(e, why, sizeof why));
    return 0;
}

/* ---- talking to a server ------------------------------------------------------
 * Readiness is a PING over the unix socket with the sync hiredis API and a
 * short timeout, polled: blocking is fine while tridentd starts, and a
 * restart blocks the loop on purpose (see redis_proc.h). */

typedef enum {
    REDIS_PROC_PING_NONE,    /* nothing accepts on the socket */
    REDIS_PROC_PING_OTHER,   /* something accepts, but no PONG (busy, shutting down) */
    REDIS_PROC_PING_LOADING, /* -LOADING: alive, reading its AOF into memory */
    REDIS_PROC_PING_PONG
} redis_proc_ping_result;

/* redis_proc_ping: one PING on the unix socket at path, waiting at most
 * timeout_ms for the connection and again for the reply. */
static redis_proc_ping_result redis_proc_ping(const char *path, int timeout_ms)
{
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    redisContext *c = redisConnectUnixWithTimeout(path, tv);

    if (c == NULL)
        return REDIS_PROC_PING_NONE;
    if (c->err != 0) {
        redisFree(c);
        return REDIS_PROC_PING_NONE;
    }
    redis_proc_ping_result res = REDIS_PROC_PING_OTHER;
    redisReply *r = redisSetTimeout(c, tv) == REDIS_OK ? redisCommand(c, "PING") : NULL;
    if (r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0)
        res = REDIS_PROC_PING_PONG;
    else if (r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "LOADING", 7) == 0)
        res = REDIS_PROC_PING_LOADING;
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return res;
}

/* redis_proc_clear_socket: makes the socket path free for a new server. A
 * socket file nothing accepts on is removed. While a server still accepts
 * there (an orphan of an earlier tridentd, shutting down after its parent
 * died), waits up to the start timeout for it to go away: it is never
 * signalled, since it is not ours and may be flushing its AOF. Returns 0, or
 * -1 with err. */
static int redis_proc_clear_socket(const redis_proc *p, char *err, size_t errlen)
{
    uint64_t deadline = clock_mono_ms() + (uint64_t)p->start_timeout_ms;
    char why[128];
    struct stat st;

    for (int warned = 0;; warned = 1) {
        int gone = lstat(p->sock_path, &st) != 0 && errno == ENOENT;
        if (!gone && redis_proc_ping(p->sock_path, REDIS_PROC_PING_MS) == REDIS_PROC_PING_NONE) {
            if (unlink(p->sock_path) != 0 && errno != ENOENT)
                return redis_proc_fail(err, errlen, "cannot remove stale socket %s: %s",
                                       p->sock_path, log_strerror(errno, why, sizeof why));
            gone = 1;
        }
        if (gone) {
            if (warned)
                log_info("the redis-server on %s has gone away", p->sock_path);
            return 0;
        }
        if (clock_mono_ms() >= deadline)
            return redis_proc_fail(err, errlen,
                                   "a redis-server still answers on %s after %d ms (an orphan of "
                                   "an earlier tridentd?): stop it, or give another data directory",
                                   p->sock_path, p->start_timeout_ms);
        if (!warned)
            log_warn("a redis-server still answers on %s (an orphan of an earlier tridentd?): "
                     "waiting up to %d ms for it to exit",
                     p->sock_path, p->start_timeout_ms);
        redis_proc_nap(REDIS_PROC_POLL_MS);
    }
}

/* ---- the child -------------------------------------------------------------------
 * fork + execv: all the child needs (paths, fds, the parent's pid) is made
 * ready before the fork, and the child only makes async-signal-safe calls
 * before exec. */

/* redis_proc_fd_high: moves fd (close-on-exec) above the standard three, so
 * the child's dup2 onto 0-2 can never clobber it nor be a no-op that keeps
 * close-on-exec. Returns the fd, or -1 with errno set (fd is closed). */
static int redis_proc_fd_high(int fd)
{
    if (fd < 0 || fd > STDERR_FILENO)
        return fd;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    int e = errno;
    close(fd);
    errno = e;
    return high;
}

/* redis_proc_exec: the child between fork and exec. Only async-signal-safe
 * calls (the parent may have threads). Never returns: a failed exec is
 * written to the log and the child exits 127, which the parent reports. */
__attribute__((noreturn))
static void redis_proc_exec(const redis_proc *p, pid_t parent, int null_fd, int log_fd,
                            int max_fd)
{
    static const char failed[] = "tridentd: cannot exec redis-server: ";
    char *argv[] = { p->server, p->conf_path, NULL };
    struct sigaction dfl;
    sigset_t none;

    /* Out of tridentd's process group: a Ctrl-C reaches tridentd alone,
     * which then stops Redis in order. */
    (void)setpgid(0, 0);
    /* Die with tridentd, even with a kill -9. The parent may have died
     * before prctl: then we are already an orphan, and give up. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
        _exit(127);
    /* Handled signals reset on exec, ignored ones and the mask do not. */
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        (void)sigaction(sig, &dfl, NULL); /* SIGKILL, SIGSTOP and libc's own refuse */
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);

    if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(log_fd, STDOUT_FILENO) < 0 ||
        dup2(log_fd, STDERR_FILENO) < 0)
        _exit(127);
    /* Nothing of tridentd's (client sockets, the listener) may leak into
     * Redis: every inherited fd above 2 is closed on exec. */
    if (close_range(STDERR_FILENO + 1, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
        for (int fd = STDERR_FILENO + 1; fd < max_fd; fd++)
            (void)close(fd);
    }
    execv(p->server, argv);
    (void)!write(STDERR_FILENO, failed, sizeof failed - 1);
    (void)!write(STDERR_FILENO, p->server, strlen(p->server));
    (void)!write(STDERR_FILENO, "\n", 1);
    _exit(127);
}

/* redis_proc_spawn: forks and execs redis-server with the config, output to
 * redis.log. Sets p->pid. Returns 0, or -1 with err. */
static int redis_proc_spawn(redis_proc *p, char *err, size_t errlen)
{
    char why[128];
    struct stat st;

    p->log_offset = stat(p->log_path, &st) == 0 ? st.st_size : 0;
    int null_fd = redis_proc_fd_high(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (null_fd < 0)
        return redis_proc_fail(err, errlen, "open /dev/null: %s",
                               log_strerror(errno, why, sizeof why));
    int log_fd = redis_proc_fd_high(
        open(p->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (log_fd < 0) {
        int e = errno;
        close(null_fd);
        return redis_proc_fail(err, errlen, "open %s: %s", p->log_path,
                               log_strerror(e, why, sizeof why));
    }
    long open_max = sysconf(_SC_OPEN_MAX);
    int max_fd = open_max > 0 && open_max < REDIS_PROC_CLOSE_MAX ? (int)open_max
                                                                 : REDIS_PROC_CLOSE_MAX;

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        redis_proc_exec(p, parent, null_fd, log_fd, max_fd);
    int e = errno;
    close(null_fd);
    close(log_fd);
    if (pid < 0)
        return redis_proc_fail(err, errlen, "fork: %s", log_strerror(e, why, sizeof why));
    p->pid = pid;
    log_debug("spawned %s %s (pid %d)", p->server, p->conf_path, (int)pid);
    return 0;
}

/* redis_proc_terminate: SIGTERM to the child, up to grace_ms for it to end,
 * then SIGKILL, and reaps it. Writes how it ended into how. p->pid is 0
 * afterwards. */
static void redis_proc_terminate(redis_proc *p, int grace_ms, char *how, size_t n)
{
    uint64_t deadline = clock_mono_ms() + (uint64_t)(grace_ms > 0 ? grace_ms : 0);
    int st = 0, sig = grace_ms > 0 ? SIGTERM : SIGKILL;
    pid_t r;

    snprintf(how, n, "was reaped elsewhere");
    if (kill(p->pid, sig) != 0) {
        log_write_errno(LOG_ERROR, errno, "kill(%d, %d)", (int)p->pid, sig);
    }
    for (;;) {
        r = waitpid(p->pid, &st, sig == SIGKILL ? 0 : WNOHANG);
        if (r == p->pid || (r < 0 && errno != EINTR))
            break;
        if (r == 0 && clock_mono_ms() >= deadline) {
            log_warn("embedded redis-server (pid %d) still runs %d ms after SIGTERM: SIGKILL",
                     (int)p->pid, grace_ms);
            sig = SIGKILL;
            (void)kill(p->pid, SIGKILL);
        } else if (r == 0) {
            redis_proc_nap(REDIS_PROC_POLL_MS);
        }
    }
    if (r == p->pid)
        redis_proc_status(st, how, n);
    p->pid = 0;
}

/* redis_proc_wait_ready: blocks until the new child answers PING. The
 * timeout counts silence, not loading: a server that answers -LOADING is
 * making progress through a large AOF, and killing it at the deadline would
 * only start the same load again, forever. On -1 (with err) the child is
 * gone: it died, or was killed after start_timeout_ms without an answer. */
static int redis_proc_wait_ready(redis_proc *p, char *err, size_t errlen)
{
    uint64_t deadline = p->started_ms + (uint64_t)p->start_timeout_ms;
    char how[64], tail[REDIS_PROC_LOG_TAIL + 128];
    int loading = 0;

    for (;;) {
        int st;
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid || (r < 0 && errno == ECHILD)) {
            p->pid = 0;
            return redis_proc_fail(err, errlen, "redis-server %s during start; its log says: %s",
                                   r > 0 ? redis_proc_status(st, how, sizeof how)
                                         : "was reaped elsewhere",
                                   redis_proc_log_tail(p, tail, sizeof tail));
        }
        redis_proc_ping_result ping = redis_proc_ping(p->sock_path, REDIS_PROC_PING_MS);
        if (ping == REDIS_PROC_PING_PONG)
            return 0;
        if (ping == REDIS_PROC_PING_LOADING) {
            if (!loading++)
                log_info("embedded redis-server (pid %d) is loading its data", (int)p->pid);
            deadline = clock_mono_ms() + (uint64_t)p->start_timeout_ms;
        }
        if (clock_mono_ms() >= deadline) {
            pid_t pid = p->pid;
            redis_proc_terminate(p, 0, how, sizeof how);
            return redis_proc_fail(err, errlen,
                                   "redis-server (pid %d) did not answer PING on %s within %d "
                                   "ms; its log says: %s",
                                   (int)pid, p->sock_path, p->start_timeout_ms,
                                   redis_proc_log_tail(p, tail, sizeof tail));
        }
        redis_proc_nap(REDIS_PROC_POLL_MS);
    }
}

/* redis_proc_launch: one start attempt, the same at the first start and at
 * each restart. Returns 0 with the child answering PING, or -1 with err and
 * no child. */
static int redis_proc_launch(redis_proc *p, char *err, size_t errlen)
{
    p->started_ms = clock_mono_ms();
    if (redis_proc_clear_socket(p, err, errlen) != 0 || redis_proc_write_conf(p, err, errlen) != 0)
        return -1;
    /* The orphan wait may have used part of the timeout: PING gets it whole. */
    p->started_ms = clock_mono_ms();
    if (redis_proc_spawn(p, err, errlen) != 0)
        return -1;
    return redis_proc_wait_ready(p, err, errlen);
}

/* ---- start and stop ---------------------------------------------------------------
 * A start and a restart are the same launch: clear the socket, write the
 * config, spawn, wait for PING. Stop is SIGTERM, a grace, then SIGKILL. */

static void redis_proc_free(redis_proc *p)
{
    if (p->restart_ev != NULL)
        event_free(p->restart_ev);
    mem_free(p->dir);
    mem_free(p->server);
    mem_free(p->conf_path);
    mem_free(p->sock_path);
    mem_free(p->log_path);
    mem_free(p);
}

/* redis_proc_appendfsync: the static spelling of a valid appendfsync value,
 * or NULL. */
static const char *redis_proc_appendfsync(const char *v)
{
    static const char *const valid[] = { "everysec", "always", "no" };

    if (v == NULL)
        return valid[0];
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        if (strcmp(v, valid[i]) == 0)
            return valid[i];
    }
    return NULL;
}

/* redis_proc_setup: fills p's paths and settings from o, creating the data
 * directory. Returns 0, or -1 with err. */
static int redis_proc_setup(redis_proc *p, const redis_proc_opts *o, char *err, size_t errlen)
{
    char why[128];

    if (o == NULL || o->data_dir == NULL || o->data_dir[0] == '\0')
        return redis_proc_fail(err, errlen, "embedded redis-server: no data directory given");
    p->appendfsync = redis_proc_appendfsync(o->appendfsync);
    if (p->appendfsync == NULL)
        return redis_proc_fail(err, errlen,
                               "appendfsync must be 'everysec', 'always' or 'no', not '%s'",
                               o->appendfsync);
    p->maxmemory = o->maxmemory;
    p->start_timeout_ms = o->start_timeout_ms > 0 ? o->start_timeout_ms
                                                  : REDIS_PROC_START_TIMEOUT_MS;
    p->server = redis_proc_find_server(o->server_path, err, errlen);
    if (p->server == NULL || redis_proc_mkdirs(o->data_dir, err, errlen) != 0)
        return -1;
    /* Absolute: Redis changes into "dir" while it reads the config, which
     * would move every relative path after it. */
    char *real = realpath(o->data_dir, NULL);
    if (real == NULL)
        return redis_proc_fail(err, errlen, "data directory %s: %s", o->data_dir,
                               log_strerror(errno, why, sizeof why));
    p->dir = mem_strdup(real);
    free(real);
    p->conf_path = redis_proc_path(p->dir, "redis.conf");
    p->sock_path = redis_proc_path(p->dir, "redis.sock");
    p->log_path = redis_proc_path(p->dir, "redis.log");
    if (strlen(p->sock_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return redis_proc_fail(err, errlen,
                               "unix socket path %s is too long (at most %zu bytes): give a "
                               "shorter data directory",
                               p->sock_path, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
    return 0;
}

redis_proc *redis_proc_start(const redis_proc_opts *o, char *err, size_t errlen)
{
    redis_proc *p = mem_calloc(1, sizeof *p);

    p->backoff_ms = -1;
    if (redis_proc_setup(p, o, err, errlen) != 0 || redis_proc_launch(p, err, errlen) != 0) {
        redis_proc_free(p);
        return NULL;
    }
    log_info("embedded redis-server started (pid %d, socket %s, appendfsync %s)", (int)p->pid,
             p->sock_path, p->appendfsync);
    return p;
}

const char *redis_proc_socket(const redis_proc *p)
{
    return p->sock_path;
}

pid_t redis_proc_pid(const redis_proc *p)
{
    return p->pid;
}

void redis_proc_stop(redis_proc *p, int grace_ms)
{
    char how[64];

    if (p == NULL)
        return;
    if (p->pid > 0) {
        pid_t pid = p->pid;
        redis_proc_terminate(p, grace_ms, how, sizeof how);
        log_info("embedded redis-server (pid %d) stopped: it %s", (int)pid, how);
    }
    /* Redis removes it on SIGTERM, not after a SIGKILL. */
    if (unlink(p->sock_path) != 0 && errno != ENOENT)
        log_write_errno(LOG_WARN, errno, "unlink %s", p->sock_path);
    redis_proc_free(p);
}

/* ---- watching and restarting --------------------------------------------------------
 * The caller's SIGCHLD event calls redis_proc_reap; a death arms a one-shot
 * timer with the backoff, and the timer's callback launches again. Nothing
 * here runs in a signal handler. */

/* redis_proc_schedule_restart: arms the restart timer with the next backoff,
 * if watched. */
static void redis_proc_schedule_restart(redis_proc *p)
{
    if (p->restart_ev == NULL)
        return;
    if (p->backoff_ms < 0 || clock_mono_ms() - p->started_ms >= REDIS_PROC_STABLE_MS)
        p->backoff_ms = 0;
    else if (p->backoff_ms == 0)
        p->backoff_ms = REDIS_PROC_BACKOFF_FIRST_MS;
    else if (p->backoff_ms < REDIS_PROC_BACKOFF_MAX_MS / 2)
        p->backoff_ms *= 2;
    else
        p->backoff_ms = REDIS_PROC_BACKOFF_MAX_MS;

    struct timeval tv = { p->backoff_ms / 1000, (p->backoff_ms % 1000) * 1000 };
    log_info("restarting embedded redis-server in %d ms", p->backoff_ms);
    if (evtimer_add(p->restart_ev, &tv) != 0)
        log_error("cannot arm the restart timer of the embedded redis-server: it stays down");
}

/* redis_proc_restart_cb: the restart timer. Blocks the loop while the new
 * child comes up (see redis_proc_watch); a failure is logged and retried. */
static void redis_proc_restart_cb(evutil_socket_t fd, short what, void *arg)
{
    redis_proc *p = arg;
    char err[1024];

    (void)fd;
    (void)what;
    if (p->pid > 0)
        return; /* already running again */
    if (redis_proc_launch(p, err, sizeof err) != 0) {
        log_error("embedded redis-server restart failed: %s", err);
        redis_proc_schedule_restart(p);
        return;
    }
    log_info("embedded redis-server restarted (pid %d)", (int)p->pid);
    if (p->on_restart != NULL)
        p->on_restart(p->arg);
}

void redis_proc_watch(redis_proc *p, struct event_base *base, void (*on_restart)(void *arg),
                      void *arg)
{
    if (p->base != base) {
        if (p->restart_ev != NULL)
            event_free(p->restart_ev);
        p->restart_ev = evtimer_new(base, redis_proc_restart_cb, p);
        if (p->restart_ev == NULL)
            log_error("cannot create the restart timer of the embedded redis-server: "
                      "it will not be restarted");
        p->base = base;
    }
    p->on_restart = on_restart;
    p->arg = arg;
    /* A death reaped before the watch began still gets its restart. */
    if (p->pid == 0 && p->restart_ev != NULL && !evtimer_pending(p->restart_ev, NULL))
        redis_proc_schedule_restart(p);
}

int redis_proc_reap(redis_proc *p)
{
    char how[64];
    int st;
    pid_t r;

    if (p->pid == 0)
        return 0;
    do {
        r = waitpid(p->pid, &st, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0)
        return 0;
    if (r < 0 && errno != ECHILD) {
        log_write_errno(LOG_ERROR, errno, "waitpid(%d)", (int)p->pid);
        return -1;
    }
    log_error("embedded redis-server (pid %d) %s", (int)p->pid,
              r > 0 ? redis_proc_status(st, how, sizeof how) : "was reaped elsewhere");
    p->pid = 0;
    redis_proc_schedule_restart(p);
    return 1;
}

/* redis_harness: a real redis-server for one test. See redis_harness.h. */
#define _GNU_SOURCE

#include "redis_harness.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "harness.h"

#define REDIS_HARNESS_DEFAULT_TIMEOUT_MS 10000
#define REDIS_HARNESS_STOP_GRACE_MS 10000
#define REDIS_HARNESS_PORT_TRIES 5
#define REDIS_HARNESS_POLL_MS 20
#define REDIS_HARNESS_MAX_ARGS 64
#define REDIS_HARNESS_LOG_TAIL 1200

/* What one launch of redis-server came to. */
enum launch_result {
    LAUNCH_UP,        /* answers PING */
    LAUNCH_PORT_BUSY, /* exited because its TCP port was taken */
    LAUNCH_FAILED     /* anything else; h->error says what */
};

static int fail(redis_harness *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* fail: sets h->error from fmt and returns -1, for `return fail(...)`. */
static int fail(redis_harness *h, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(h->error, sizeof(h->error), fmt, ap);
    va_end(ap);
    return -1;
}

/* append_log_tail: appends what redis wrote to its log since offset (its
 * last bytes at most) to h->error. */
static void append_log_tail(redis_harness *h, off_t offset)
{
    char tail[REDIS_HARNESS_LOG_TAIL];
    size_t used = strlen(h->error);

    if (harness_log_tail(h->log_path, offset, tail, sizeof(tail)) < 0)
        snprintf(tail, sizeof(tail), "(cannot read it: %s)", strerror(errno));
    snprintf(h->error + used, sizeof(h->error) - used, "\n--- tail of %s ---\n%s", h->log_path,
             tail);
}

/* describe_status: "exited with status N" or "was killed by signal N". */
static void describe_status(int status, char *out, size_t n)
{
    if (WIFEXITED(status))
        snprintf(out, n, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, n, "was killed by signal %d", WTERMSIG(status));
    else
        snprintf(out, n, "ended with wait status %#x", (unsigned)status);
}

/* answers_ping: nonzero when the server answers PING with PONG on its unix
 * socket. The socket lives in our private directory, so whatever answers
 * there is our child, and it only exists once the TCP port is bound too.
 * A server still loading its AOF answers -LOADING: not ready yet. */
static int answers_ping(const redis_harness *h)
{
    struct timeval timeout = { 0, 200 * 1000 };
    int ok = 0;

    redisContext *c = redisConnectUnixWithTimeout(h->unix_path, timeout);
    if (c != NULL && c->err == 0) {
        redisReply *reply = redisCommand(c, "PING");
        ok = reply != NULL && reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0;
        if (reply != NULL)
            freeReplyObject(reply);
    }
    if (c != NULL)
        redisFree(c);
    return ok;
}

/* build_args: the redis-server command line for h into argv (n slots), the
 * port's text in port_buf. Returns 0, or -1 when extra_args do not fit. */
static int build_args(redis_harness *h, const char **argv, size_t n, char *port_buf,
                      size_t port_len)
{
    size_t i = 0;

    snprintf(port_buf, port_len, "%d", h->port);
    argv[i++] = h->server_path;
    argv[i++] = "--port";
    argv[i++] = port_buf;
    argv[i++] = "--bind";
    argv[i++] = "127.0.0.1";
    argv[i++] = "--dir";
    argv[i++] = h->dir;
    argv[i++] = "--save";
    argv[i++] = "";
    argv[i++] = "--appendonly";
    argv[i++] = h->opts.appendonly ? "yes" : "no";
    if (h->opts.appendfsync != NULL) {
        argv[i++] = "--appendfsync";
        argv[i++] = h->opts.appendfsync;
    }
    argv[i++] = "--unixsocket";
    argv[i++] = h->unix_path;
    argv[i++] = "--unixsocketperm";
    argv[i++] = "700";
    argv[i++] = "--daemonize";
    argv[i++] = "no";
    argv[i++] = "--logfile";
    argv[i++] = h->log_path;
    for (const char *const *extra = h->opts.extra_args; extra != NULL && *extra != NULL; extra++) {
        if (i + 1 >= n)
            return fail(h, "more than %d redis-server arguments", REDIS_HARNESS_MAX_ARGS - 1);
        argv[i++] = *extra;
    }
    argv[i] = NULL;
    return 0;
}

/* launch: starts redis-server on h->port in h->dir and polls until it
 * answers PING, exits, or the start timeout passes. On anything but
 * LAUNCH_UP no process runs and h->pid is 0. */
static enum launch_result launch(redis_harness *h)
{
    const char *argv[REDIS_HARNESS_MAX_ARGS];
    char port_buf[16];
    struct stat st;
    int status;
    int timeout_ms = h->opts.start_timeout_ms > 0 ? h->opts.start_timeout_ms
                                                   : REDIS_HARNESS_DEFAULT_TIMEOUT_MS;

    if (build_args(h, argv, REDIS_HARNESS_MAX_ARGS, port_buf, sizeof(port_buf)) != 0)
        return LAUNCH_FAILED;
    /* Only this launch's part of the log explains its failure. */
    off_t log_offset = stat(h->log_path, &st) == 0 ? st.st_size : 0;
    h->pid = harness_spawn(h->server_path, argv, h->log_path);
    if (h->pid < 0) {
        h->pid = 0;
        fail(h, "cannot start %s: fork: %s", h->server_path, strerror(errno));
        return LAUNCH_FAILED;
    }

    uint64_t deadline = clock_mono_ms() + (uint64_t)timeout_ms;
    for (;;) {
        int r = harness_wait(h->pid, 0, &status);
        if (r != 0) {
            char how[64];
            h->pid = 0;
            if (r < 0) {
                fail(h, "waitpid on redis-server: %s", strerror(errno));
                return LAUNCH_FAILED;
            }
            describe_status(status, how, sizeof(how));
            fail(h, "redis-server on port %d %s before answering PING", h->port, how);
            append_log_tail(h, log_offset);
            return strstr(h->error, "Address already in use") != NULL ? LAUNCH_PORT_BUSY
                                                                      : LAUNCH_FAILED;
        }
        if (answers_ping(h))
            return LAUNCH_UP;
        if (clock_mono_ms() >= deadline)
            break;
        harness_nap_ms(REDIS_HARNESS_POLL_MS);
    }

    fail(h, "redis-server on port %d did not answer PING within %d ms", h->port, timeout_ms);
    (void)harness_kill(h->pid, NULL);
    h->pid = 0;
    append_log_tail(h, log_offset);
    return LAUNCH_FAILED;
}

/* ignore_sigpipe: a test writing to a server it just killed must get EPIPE,
 * not die. A handler the test installed itself is left alone. */
static void ignore_sigpipe(void)
{
    struct sigaction sa;

    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_IGN;
        sigemptyset(&sa.sa_mask);
        (void)sigaction(SIGPIPE, &sa, NULL);
    }
}

/* prepare_dir: creates the temp dir and the paths inside it. */
static int prepare_dir(redis_harness *h)
{
    if (harness_tmpdir(h->dir, sizeof(h->dir)) != 0) {
        h->dir[0] = '\0';
        return fail(h, "cannot create a temp dir under $TMPDIR or /tmp: %s", strerror(errno));
    }
    int n = snprintf(h->unix_path, sizeof(h->unix_path), "%s/redis.sock", h->dir);
    if (n < 0 || (size_t)n >= sizeof(h->unix_path))
        return fail(h, "temp dir %s is too long for a unix socket path: set a shorter TMPDIR",
                    h->dir);
    n = snprintf(h->log_path, sizeof(h->log_path), "%s/redis.log", h->dir);
    if (n < 0 || (size_t)n >= sizeof(h->log_path))
        return fail(h, "temp dir %s is too long", h->dir);
    return 0;
}

int redis_harness_start(redis_harness *h, const redis_harness_opts *o)
{
    memset(h, 0, sizeof(*h));
    if (o != NULL)
        h->opts = *o;
    const char *server = h->opts.server != NULL ? h->opts.server : "redis-server";
    int (*pick_port)(void) = h->opts.pick_port != NULL ? h->opts.pick_port : harness_free_port;

    ignore_sigpipe();
    if (harness_find_exe(server, h->server_path, sizeof(h->server_path)) != 0)
        return fail(h, "%s not found: apt-get install -y redis-server", server);

    enum launch_result r = LAUNCH_FAILED;
    if (prepare_dir(h) == 0) {
        for (int attempt = 0; attempt < REDIS_HARNESS_PORT_TRIES; attempt++) {
            h->port = pick_port();
            if (h->port <= 0) {
                fail(h, "no free TCP port on 127.0.0.1: %s", strerror(errno));
                break;
            }
            r = launch(h);
            if (r != LAUNCH_PORT_BUSY)
                break;
        }
    }
    if (r == LAUNCH_UP)
        return 0;
    (void)harness_rmtree(h->dir);
    h->dir[0] = '\0';
    return -1;
}

int redis_harness_restart(redis_harness *h)
{
    if (h->pid > 0) {
        if (harness_terminate(h->pid, REDIS_HARNESS_STOP_GRACE_MS, NULL) != 0)
            return fail(h, "cannot stop redis-server (pid %d): %s", (int)h->pid, strerror(errno));
        h->pid = 0;
    }
    if (h->dir[0] == '\0')
        return fail(h, "redis_harness_restart: the harness was never started");
    switch (launch(h)) {
    case LAUNCH_UP:
        return 0;
    case LAUNCH_PORT_BUSY:
        return fail(h, "cannot restart redis-server: port %d was taken meanwhile", h->port);
    case LAUNCH_FAILED:
        break;
    }
    return -1;
}

int redis_harness_kill(redis_harness *h)
{
    if (h->pid <= 0)
        return fail(h, "redis_harness_kill: no redis-server runs");
    if (harness_kill(h->pid, NULL) != 0)
        return fail(h, "cannot kill redis-server (pid %d): %s", (int)h->pid, strerror(errno));
    h->pid = 0;
    return 0;
}

int redis_harness_stop(redis_harness *h)
{
    int rc = 0;

    if (h->pid > 0) {
        if (harness_terminate(h->pid, REDIS_HARNESS_STOP_GRACE_MS, NULL) != 0)
            rc = fail(h, "cannot stop redis-server (pid %d): %s", (int)h->pid, strerror(errno));
        h->pid = 0;
    }
    if (h->dir[0] != '\0') {
        if (harness_rmtree(h->dir) != 0)
            rc = fail(h, "cannot remove %s: %s", h->dir, strerror(errno));
        h->dir[0] = '\0';
    }
    return rc;
}

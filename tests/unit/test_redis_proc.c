/* test_redis_proc: the embedded redis-server of tridentd (server/redis_proc),
 * against the real redis-server and fake ones (shell scripts). Each test
 * works in its own temporary directory and checks that every process it
 * caused is gone at its end. */
#define _GNU_SOURCE

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "harness.h"
#include "log.h"
#include "redis_proc.h"
#include "sig.h"
#include "unit.h"

#define DEADLINE_MS 15000 /* bound of every wait for a condition */
#define GRACE_MS 10000    /* redis_proc_stop's grace */

/* ---- fixture: one temporary directory per test ----------------------------- */

static char base[PATH_MAX]; /* the test's temp dir, removed by teardown */
static char data[PATH_MAX]; /* base/data: the default data directory */

static void setup(void)
{
    ck_assert_int_eq(harness_tmpdir(base, sizeof base), 0);
    ck_assert_int_lt(snprintf(data, sizeof data, "%s/data", base), (int)sizeof data);
}

static void teardown(void)
{
    ck_assert_int_eq(harness_rmtree(base), 0);
}

/* ---- helpers ------------------------------------------------------------------ */

/* join: out (PATH_MAX bytes) = dir/name. */
static void join(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
    ck_assert(n > 0 && n < PATH_MAX);
}

static int path_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

/* start_ok: redis_proc_start that must succeed. */
static redis_proc *start_ok(const redis_proc_opts *o)
{
    char err[1024] = "";
    redis_proc *p = redis_proc_start(o, err, sizeof err);

    ck_assert_msg(p != NULL, "redis_proc_start: %s", err);
    ck_assert_int_gt(redis_proc_pid(p), 0);
    return p;
}

/* start_fails: redis_proc_start that must fail with want in its message;
 * the message goes to err (1024 bytes). */
static void start_fails(const redis_proc_opts *o, const char *want, char *err)
{
    err[0] = '\0';
    redis_proc *p = redis_proc_start(o, err, 1024);
    ck_assert_msg(p == NULL, "redis_proc_start succeeded, expected: %s", want);
    ck_assert_msg(strstr(err, want) != NULL, "want '%s' in: %s", want, err);
}

static redisContext *connect_unix(const char *path)
{
    redisContext *c = redisConnectUnix(path);

    ck_assert_msg(c != NULL && c->err == 0, "connect to %s: %s", path,
                  c != NULL ? c->errstr : "out of memory");
    return c;
}

/* command_str: runs a command whose reply must be a status or string,
 * equal to want. */
static void command_str(redisContext *c, const char *want, const char *fmt, const char *a,
                        const char *b)
{
    redisReply *r = redisCommand(c, fmt, a, b);

    ck_assert_ptr_nonnull(r);
    ck_assert_msg(r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING,
                  "reply type %d to %s", r->type, fmt);
    ck_assert_str_eq(r->str, want);
    freeReplyObject(r);
}

static void assert_pong(const char *path)
{
    redisContext *c = connect_unix(path);
    command_str(c, "PONG", "PING", NULL, NULL);
    redisFree(c);
}

static void set_key(const char *path, const char *key, const char *value)
{
    redisContext *c = connect_unix(path);
    command_str(c, "OK", "SET %s %s", key, value);
    redisFree(c);
}

static void assert_key(const char *path, const char *key, const char *want)
{
    redisContext *c = connect_unix(path);
    command_str(c, want, "GET %s", key, NULL);
    redisFree(c);
}

/* assert_config: CONFIG GET name must answer want: Redis read our file. */
static void assert_config(const char *path, const char *name, const char *want)
{
    redisContext *c = connect_unix(path);
    redisReply *r = redisCommand(c, "CONFIG GET %s", name);

    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_int_eq(r->elements, 2);
    ck_assert_str_eq(r->element[1]->str, want);
    freeReplyObject(r);
    redisFree(c);
}

/* assert_gone: no process pid exists any more. */
static void assert_gone(pid_t pid)
{
    errno = 0;
    ck_assert_msg(kill(pid, 0) == -1 && errno == ESRCH, "pid %d still exists", (int)pid);
}

/* stop_ok: stops p and checks that its server is gone. */
static void stop_ok(redis_proc *p)
{
    pid_t pid = redis_proc_pid(p);

    redis_proc_stop(p, GRACE_MS);
    if (pid > 0)
        assert_gone(pid);
}

/* read_file: the whole file into out (n bytes, NUL-terminated). */
static void read_file(const char *path, char *out, size_t n)
{
    int fd = open(path, O_RDONLY);
    ssize_t got;

    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    got = read(fd, out, n - 1);
    ck_assert_int_ge(got, 0);
    out[got] = '\0';
    close(fd);
}

/* write_script: an executable shell script dir/name with body. */
static void write_script(char *path, const char *dir, const char *name, const char *body)
{
    join(path, dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "#!/bin/sh\n%s", body);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(chmod(path, 0700), 0);
}

/* real_path: the canonical form of path, as redis_proc writes it. */
static void real_path(const char *path, char *out)
{
    ck_assert_ptr_nonnull(realpath(path, out));
}

/* ---- a fake server that loads its data for a while ----------------------------- */

/* This very binary, run with these arguments by a script given as
 * server_path, plays a redis-server that answers -LOADING for
 * FAKE_LOADING_MS, then PONG: Redis's answers while it reads a large AOF. */
#define FAKE_LOADING_ARG "--fake-loading-redis-server"
#define FAKE_LOADING_MS 800

/* fake_loading_main: the fake's main; conf is the redis.conf path it was
 * given, the socket is beside it. Runs until a signal ends it; returns 2
 * when it cannot listen. */
static int fake_loading_main(const char *conf)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    const char *slash = strrchr(conf, '/');

    if (slash == NULL || (size_t)(slash - conf) + sizeof "/redis.sock" > sizeof sun.sun_path)
        return 2;
    memcpy(sun.sun_path, conf, (size_t)(slash - conf));
    memcpy(sun.sun_path + (slash - conf), "/redis.sock", sizeof "/redis.sock");
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0 || listen(fd, 16) != 0) {
        perror("fake redis-server: listen");
        return 2;
    }
    uint64_t ready = clock_mono_ms() + FAKE_LOADING_MS;
    for (;;) {
        char request[256];
        int c = accept(fd, NULL, NULL);
        if (c < 0)
            continue;
        if (read(c, request, sizeof request) > 0) {
            const char *reply = clock_mono_ms() < ready
                                    ? "-LOADING Redis is loading the dataset in memory\r\n"
                                    : "+PONG\r\n";
            (void)!write(c, reply, strlen(reply));
        }
        close(c);
    }
}

/* ---- an event loop for watch tests ---------------------------------------------- */

/* The loop the test owns: a SIGCHLD event that calls redis_proc_reap (the
 * caller's job in tridentd too) and a ticker, so that EVLOOP_ONCE returns
 * often enough to check the deadline. */
typedef struct loop {
    struct event_base *base;
    struct event *sigchld;
    struct event *tick;
    redis_proc *p;
    int deaths;   /* redis_proc_reap answers of 1 */
    int restarts; /* on_restart calls */
} loop;

static void loop_on_sigchld(evutil_socket_t fd, short what, void *arg)
{
    loop *l = arg;

    (void)fd;
    (void)what;
    int r = redis_proc_reap(l->p);
    ck_assert_int_ge(r, 0);
    l->deaths += r;
}

static void loop_on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void loop_on_restart(void *arg)
{
    loop *l = arg;

    l->restarts++;
    assert_pong(redis_proc_socket(l->p));
}

static void loop_open(loop *l, redis_proc *p)
{
    struct timeval tick = { 0, 20000 };

    memset(l, 0, sizeof *l);
    l->p = p;
    l->base = event_base_new();
    ck_assert_ptr_nonnull(l->base);
    l->sigchld = evsignal_new(l->base, SIGCHLD, loop_on_sigchld, l);
    l->tick = event_new(l->base, -1, EV_PERSIST, loop_on_tick, NULL);
    ck_assert(l->sigchld != NULL && l->tick != NULL);
    ck_assert_int_eq(evsignal_add(l->sigchld, NULL), 0);
    ck_assert_int_eq(event_add(l->tick, &tick), 0);
}

/* loop_run_until_restarts: runs the loop until on_restart has run want
 * times in all, or DEADLINE_MS passed. */
static void loop_run_until_restarts(loop *l, int want)
{
    uint64_t deadline = clock_mono_ms() + DEADLINE_MS;

    while (l->restarts < want && clock_mono_ms() < deadline)
        ck_assert_int_ge(event_base_loop(l->base, EVLOOP_ONCE), 0);
    ck_assert_int_eq(l->restarts, want);
}

static void loop_close(loop *l)
{
    event_free(l->sigchld);
    event_free(l->tick);
    event_base_free(l->base);
}

/* ---- start and stop -------------------------------------------------------------- */

START_TEST(test_start_ping_set_get_config_and_stop)
{
    redis_proc_opts o = { .maxmemory = 64u << 20 };
    char dir[PATH_MAX], real[PATH_MAX], conf[PATH_MAX], text[4096], line[PATH_MAX + 64];
    struct stat st;

    join(dir, data, "nested/deeper"); /* missing parents are created too */
    o.data_dir = dir;
    redis_proc *p = start_ok(&o);
    const char *sock = redis_proc_socket(p);

    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0700);
    real_path(dir, real);
    join(line, real, "redis.sock");
    ck_assert_str_eq(sock, line);

    assert_pong(sock);
    set_key(sock, "greeting", "hello");
    assert_key(sock, "greeting", "hello");
    assert_config(sock, "maxmemory-policy", "noeviction");
    assert_config(sock, "appendonly", "yes");
    assert_config(sock, "appendfsync", "everysec");
    assert_config(sock, "maxmemory", "67108864");
    assert_config(sock, "port", "0");

    join(conf, real, "redis.conf");
    read_file(conf, text, sizeof text);
    ck_assert_msg(strncmp(text, "# Written by tridentd on every start", 36) == 0, "%s", text);
    const char *fixed[] = { "\nport 0\n",
                            "\nunixsocketperm 700\n",
                            "\ndaemonize no\n",
                            "\nappendonly yes\n",
                            "\nappendfsync everysec\n",
                            "\nmaxmemory 67108864\n",
                            "\nmaxmemory-policy noeviction\n",
                            "\nprotected-mode yes\n" };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        ck_assert_msg(strstr(text, fixed[i]) != NULL, "no '%s' in:\n%s", fixed[i], text);
    snprintf(line, sizeof line, "\nunixsocket %s/redis.sock\n", real);
    ck_assert_msg(strstr(text, line) != NULL, "no '%s' in:\n%s", line, text);
    snprintf(line, sizeof line, "\ndir %s\n", real);
    ck_assert_msg(strstr(text, line) != NULL, "no '%s' in:\n%s", line, text);
    snprintf(line, sizeof line, "\nlogfile %s/redis.log\n", real);
    ck_assert_msg(strstr(text, line) != NULL, "no '%s' in:\n%s", line, text);

    join(line, real, "redis.sock");
    stop_ok(p);
    ck_assert_msg(!path_exists(line), "%s is still there", line);
}
END_TEST

START_TEST(test_data_dir_with_space_and_quote)
{
    char dir[PATH_MAX], conf[PATH_MAX], text[4096];

    join(dir, base, "my \"data\" dir");
    redis_proc_opts o = { .data_dir = dir, .appendfsync = "no" };
    redis_proc *p = start_ok(&o);

    ck_assert_ptr_nonnull(strstr(redis_proc_socket(p), "my \"data\" dir/redis.sock"));
    set_key(redis_proc_socket(p), "k", "v");
    assert_config(redis_proc_socket(p), "appendfsync", "no");
    join(conf, dir, "redis.conf");
    read_file(conf, text, sizeof text);
    ck_assert_msg(strstr(text, "my \\\"data\\\" dir/redis.sock\"\n") != NULL, "%s", text);
    stop_ok(p);
}
END_TEST

START_TEST(test_stale_socket_file_is_removed)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    char sock[PATH_MAX];

    /* A socket file nothing listens on, as a SIGKILLed server leaves. */
    ck_assert_int_eq(mkdir(data, 0700), 0);
    join(sock, data, "redis.sock");
    ck_assert_uint_lt(strlen(sock), sizeof sun.sun_path);
    memcpy(sun.sun_path, sock, strlen(sock) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
    close(fd);
    ck_assert(path_exists(sock));

    redis_proc_opts o = { .data_dir = data };
    redis_proc *p = start_ok(&o);
    assert_pong(redis_proc_socket(p));
    stop_ok(p);
}
END_TEST

START_TEST(test_child_inherits_no_descriptors)
{
    redis_proc_opts o = { .data_dir = data };
    char byte;
    int fds[2];

    /* A pipe without close-on-exec: were the write end inherited, the
     * read end would never see end-of-file while Redis runs. */
    ck_assert_int_eq(pipe(fds), 0);
    redis_proc *p = start_ok(&o);
    close(fds[1]);
    ck_assert_int_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
    errno = 0;
    ck_assert_msg(read(fds[0], &byte, 1) == 0, "redis-server holds the pipe: %s",
                  strerror(errno));
    close(fds[0]);
    stop_ok(p);
}
END_TEST

START_TEST(test_loading_server_is_waited_for_past_timeout)
{
    char exe[PATH_MAX], body[PATH_MAX + 128], fake[PATH_MAX];
    redis_proc_opts o = { .data_dir = data, .server_path = fake, .start_timeout_ms = 300 };

    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    ck_assert_int_gt(n, 0);
    exe[n] = '\0';
    n = snprintf(body, sizeof body, "exec '%s' %s \"$1\"\n", exe, FAKE_LOADING_ARG);
    ck_assert(n > 0 && n < (ssize_t)sizeof body);
    write_script(fake, base, "loading-redis-server", body);

    /* Loading takes longer than the timeout, which counts silence only. */
    uint64_t t0 = clock_mono_ms();
    redis_proc *p = start_ok(&o);
    ck_assert_uint_ge(clock_mono_ms() - t0, FAKE_LOADING_MS);
    assert_pong(redis_proc_socket(p));
    stop_ok(p);
}
END_TEST

START_TEST(test_live_server_on_socket_is_not_touched)
{
    redis_proc_opts o = { .data_dir = data };
    char err[1024];

    redis_proc *p = start_ok(&o);
    pid_t pid = redis_proc_pid(p);

    /* A second start on the same directory waits, then gives up. */
    o.start_timeout_ms = 300;
    uint64_t t0 = clock_mono_ms();
    start_fails(&o, "still answers on", err);
    ck_assert_uint_ge(clock_mono_ms() - t0, 300);
    ck_assert_int_eq(redis_proc_pid(p), pid);
    assert_pong(redis_proc_socket(p));
    stop_ok(p);
}
END_TEST

/* ---- failures to start ---------------------------------------------------------------- */

START_TEST(test_missing_server)
{
    char missing[PATH_MAX], err[1024], *saved;
    redis_proc_opts o = { .data_dir = data, .server_path = missing };

    join(missing, base, "no-such-redis-server");
    start_fails(&o, "not found", err);
    ck_assert_msg(strstr(err, "apt-get install -y redis-server") != NULL, "%s", err);
    ck_assert_msg(!path_exists(data), "a failed start created %s", data);

    /* Looked up in a PATH that has no redis-server. */
    saved = strdup(getenv("PATH") != NULL ? getenv("PATH") : "");
    ck_assert_int_eq(setenv("PATH", base, 1), 0);
    o.server_path = NULL;
    start_fails(&o, "", err);
    ck_assert_int_eq(setenv("PATH", saved, 1), 0);
    free(saved);
    ck_assert_str_eq(err, "redis-server not found in PATH: install it with 'apt-get install -y "
                          "redis-server', or give --redis URL");
}
END_TEST

START_TEST(test_server_exiting_during_start_reports_log_tail)
{
    char fake[PATH_MAX], err[1024];
    redis_proc_opts o = { .data_dir = data, .server_path = fake };

    write_script(fake, base, "fake-redis-server",
                 "echo \"fake redis-server: bad directive on line 7\" >&2\nexit 1\n");
    start_fails(&o, "redis-server exited with status 1 during start; its log says: ", err);
    ck_assert_msg(strstr(err, "fake redis-server: bad directive on line 7") != NULL, "%s", err);

    /* The log tail is what the last start wrote, not an earlier one's. */
    write_script(fake, base, "fake-redis-server", "echo second start >&2\nexit 3\n");
    start_fails(&o, "exited with status 3 during start; its log says: second start", err);
    ck_assert_msg(strstr(err, "line 7") == NULL, "%s", err);
}
END_TEST

START_TEST(test_server_silent_past_timeout_is_killed)
{
    char fake[PATH_MAX], err[1024];
    redis_proc_opts o = { .data_dir = data, .server_path = fake, .start_timeout_ms = 300 };
    int pid = 0;

    write_script(fake, base, "silent-redis-server", "echo listening never >&2\nexec sleep 60\n");
    start_fails(&o, "did not answer PING on", err);
    ck_assert_msg(strstr(err, "within 300 ms; its log says: listening never") != NULL, "%s", err);
    ck_assert_int_eq(sscanf(err, "redis-server (pid %d)", &pid), 1);
    assert_gone(pid);
}
END_TEST

START_TEST(test_bad_options)
{
    char err[1024], longdir[PATH_MAX];
    redis_proc_opts o = { .data_dir = data, .appendfsync = "sometimes" };

    start_fails(&o, "appendfsync must be 'everysec', 'always' or 'no', not 'sometimes'", err);
    o.appendfsync = NULL;
    o.data_dir = NULL;
    start_fails(&o, "no data directory", err);

    int n = snprintf(longdir, sizeof longdir, "%s/%0120d", base, 0);
    ck_assert(n > 0 && n < (int)sizeof longdir);
    o.data_dir = longdir;
    start_fails(&o, "is too long", err);
}
END_TEST

/* ---- watching and restarting -------------------------------------------------------------- */

START_TEST(test_kill9_while_watched_restarts_and_keeps_aof)
{
    redis_proc_opts o = { .data_dir = data, .appendfsync = "always" };
    loop l;

    redis_proc *p = start_ok(&o);
    loop_open(&l, p);
    redis_proc_watch(p, l.base, loop_on_restart, &l);
    const char *sock = redis_proc_socket(p);
    set_key(sock, "durable", "yes");
    ck_assert_int_eq(redis_proc_reap(p), 0); /* alive */

    pid_t first = redis_proc_pid(p);
    ck_assert_int_eq(kill(first, SIGKILL), 0);
    loop_run_until_restarts(&l, 1);
    ck_assert_int_eq(l.deaths, 1);
    pid_t second = redis_proc_pid(p);
    ck_assert_int_gt(second, 0);
    ck_assert_int_ne(second, first);
    assert_gone(first);
    assert_pong(sock);
    assert_key(sock, "durable", "yes");

    /* A second quick death takes the backoff path (100 ms) and comes back. */
    uint64_t t0 = clock_mono_ms();
    ck_assert_int_eq(kill(second, SIGKILL), 0);
    loop_run_until_restarts(&l, 2);
    ck_assert_uint_ge(clock_mono_ms() - t0, 100);
    ck_assert_int_eq(l.deaths, 2);
    pid_t third = redis_proc_pid(p);
    ck_assert(third > 0 && third != second);
    assert_gone(second);
    assert_key(sock, "durable", "yes");

    stop_ok(p);
    loop_close(&l);
}
END_TEST

START_TEST(test_death_reaped_before_watch_is_restarted_by_watch)
{
    redis_proc_opts o = { .data_dir = data };
    uint64_t deadline = clock_mono_ms() + DEADLINE_MS;
    loop l;
    int r;

    redis_proc *p = start_ok(&o);
    pid_t first = redis_proc_pid(p);
    ck_assert_int_eq(kill(first, SIGKILL), 0);
    while ((r = redis_proc_reap(p)) == 0 && clock_mono_ms() < deadline)
        harness_nap_ms(10);
    ck_assert_int_eq(r, 1);
    ck_assert_int_eq(redis_proc_pid(p), 0); /* unwatched: no restart */
    ck_assert_int_eq(redis_proc_reap(p), 0);
    assert_gone(first);

    loop_open(&l, p);
    redis_proc_watch(p, l.base, loop_on_restart, &l);
    loop_run_until_restarts(&l, 1);
    ck_assert_int_gt(redis_proc_pid(p), 0);
    assert_pong(redis_proc_socket(p));
    stop_ok(p);
    loop_close(&l);
}
END_TEST

/* ---- the parent's death ------------------------------------------------------------------- */

/* helper_main: the helper process of the parent-death test: starts the
 * server, sends its pid down the pipe (0 on failure), waits to be killed. */
__attribute__((noreturn))
static void helper_main(int wfd)
{
    redis_proc_opts o = { .data_dir = data, .appendfsync = "always" };
    char err[1024];
    redis_proc *p = redis_proc_start(&o, err, sizeof err);
    pid_t pid = p != NULL ? redis_proc_pid(p) : 0;

    if (p == NULL)
        fprintf(stderr, "helper: redis_proc_start: %s\n", err);
    (void)!write(wfd, &pid, sizeof pid);
    for (;;)
        pause();
}

START_TEST(test_parent_kill9_stops_redis_and_next_start_takes_over)
{
    pid_t orphan = 0;
    int fds[2], st;

    /* The orphaned server is reparented to this process, which can then
     * reap it and see it end. */
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    ck_assert_int_eq(pipe(fds), 0);
    pid_t helper = fork();
    ck_assert_int_ge(helper, 0);
    if (helper == 0) {
        close(fds[0]);
        helper_main(fds[1]);
    }
    close(fds[1]);
    ck_assert_int_eq(read(fds[0], &orphan, sizeof orphan), (ssize_t)sizeof orphan);
    close(fds[0]);
    ck_assert_int_gt(orphan, 0);

    char sock[PATH_MAX], real[PATH_MAX];
    real_path(data, real);
    join(sock, real, "redis.sock");
    set_key(sock, "handed", "over");

    ck_assert_int_eq(kill(helper, SIGKILL), 0);
    ck_assert_int_eq(waitpid(helper, &st, 0), helper);

    /* Started at once on the same directory: waits out the orphan's
     * shutdown, then loads its AOF. */
    redis_proc_opts o = { .data_dir = data };
    char err[1024] = "";
    redis_proc *p = redis_proc_start(&o, err, sizeof err);
    int ended = harness_wait(orphan, p != NULL ? DEADLINE_MS : 0, &st) == 1;
    if (!ended)
        (void)harness_kill(orphan, NULL); /* ours by subreaping: leave no stray behind */
    ck_assert_msg(ended, "orphan %d still ran after its parent's death", (int)orphan);
    ck_assert_msg(p != NULL, "redis_proc_start: %s", err);
    assert_gone(orphan);
    ck_assert_int_ne(redis_proc_pid(p), orphan);
    assert_key(sock, "handed", "over");
    stop_ok(p);
}
END_TEST

/* add_tcase: a test case of s, each test in its own temp dir. */
static TCase *add_tcase(Suite *s, const char *name, int timeout_s)
{
    TCase *tc = tcase_create(name);

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, timeout_s);
    suite_add_tcase(s, tc);
    return tc;
}

static Suite *redis_proc_suite(void)
{
    Suite *s = suite_create("redis_proc");

    TCase *tc = add_tcase(s, "start_stop", 60);
    tcase_add_test(tc, test_start_ping_set_get_config_and_stop);
    tcase_add_test(tc, test_data_dir_with_space_and_quote);
    tcase_add_test(tc, test_stale_socket_file_is_removed);
    tcase_add_test(tc, test_child_inherits_no_descriptors);
    tcase_add_test(tc, test_loading_server_is_waited_for_past_timeout);
    tcase_add_test(tc, test_live_server_on_socket_is_not_touched);

    tc = add_tcase(s, "failures", 60);
    tcase_add_test(tc, test_missing_server);
    tcase_add_test(tc, test_server_exiting_during_start_reports_log_tail);
    tcase_add_test(tc, test_server_silent_past_timeout_is_killed);
    tcase_add_test(tc, test_bad_options);

    tc = add_tcase(s, "watch", 90);
    tcase_add_test(tc, test_kill9_while_watched_restarts_and_keeps_aof);
    tcase_add_test(tc, test_death_reaped_before_watch_is_restarted_by_watch);
    tcase_add_test(tc, test_parent_kill9_stops_redis_and_next_start_takes_over);
    return s;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], FAKE_LOADING_ARG) == 0)
        return fake_loading_main(argv[2]);
    log_set_level(LOG_INFO); /* lifecycle lines help read a failure */
    if (sig_ignore(SIGPIPE) != 0) /* as tridentd does (see redis_proc.h) */
        return EXIT_FAILURE;
    return unit_run(redis_proc_suite());
}

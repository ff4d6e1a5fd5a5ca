/* test_redis_harness: the test-support harnesses (tests/support), against a
 * real redis-server and real child processes. */
#define _GNU_SOURCE

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "harness.h"
#include "redis_harness.h"
#include "unit.h"

/* ---- helpers ------------------------------------------------------------- */

/* join: out (PATH_MAX bytes) = dir/name. */
static void join(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
    ck_assert(n > 0 && n < PATH_MAX);
}

/* touch: creates an empty file at dir/name. */
static void touch(const char *dir, const char *name)
{
    char path[PATH_MAX];

    join(path, dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    close(fd);
}

/* path_exists: nonzero when path exists (a dangling link counts). */
static int path_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

/* listen_any: a socket listening on a kernel-chosen port of 127.0.0.1;
 * its port goes to *port. */
static int listen_any(int *port)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    ck_assert_int_eq(listen(fd, 1), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    *port = ntohs(addr.sin_port);
    return fd;
}

/* use_tmpdir: points $TMPDIR at dir for this test; restore_tmpdir undoes it,
 * so the suite also runs with CK_FORK=no. saved holds PATH_MAX bytes. */
static void use_tmpdir(const char *dir, char *saved)
{
    const char *old = getenv("TMPDIR");

    snprintf(saved, PATH_MAX, "%s", old != NULL ? old : "");
    ck_assert_int_eq(setenv("TMPDIR", dir, 1), 0);
}

static void restore_tmpdir(const char *saved)
{
    ck_assert_int_eq(saved[0] != '\0' ? setenv("TMPDIR", saved, 1) : unsetenv("TMPDIR"), 0);
}

static void start_redis(redis_harness *h, const redis_harness_opts *o)
{
    int rc = redis_harness_start(h, o);
    ck_assert_msg(rc == 0, "redis_harness_start: %s", h->error);
    ck_assert_int_gt(h->pid, 0);
    ck_assert_int_gt(h->port, 0);
}

static redisContext *connect_tcp(const redis_harness *h)
{
    redisContext *c = redisConnect("127.0.0.1", h->port);
    ck_assert_msg(c != NULL && c->err == 0, "connect to port %d: %s", h->port,
                  c != NULL ? c->errstr : "out of memory");
    return c;
}

/* run_status: sends a command that must answer +OK. */
static void run_status(redisContext *c, const char *cmd, const char *key, const char *value)
{
    redisReply *reply = redisCommand(c, "%s %s %s", cmd, key, value);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->type, REDIS_REPLY_STATUS);
    ck_assert_str_eq(reply->str, "OK");
    freeReplyObject(reply);
}

/* assert_get: GET key must answer the string want. */
static void assert_get(redisContext *c, const char *key, const char *want)
{
    redisReply *reply = redisCommand(c, "GET %s", key);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->type, REDIS_REPLY_STRING);
    ck_assert_str_eq(reply->str, want);
    freeReplyObject(reply);
}

/* assert_gone: the process pid no longer exists (it was reaped). */
static void assert_gone(pid_t pid)
{
    errno = 0;
    ck_assert_int_eq(kill(pid, 0), -1);
    ck_assert_int_eq(errno, ESRCH);
}

/* ---- harness ------------------------------------------------------------- */

START_TEST(test_free_port_is_bindable)
{
    struct sockaddr_in addr;
    int port = harness_free_port();

    ck_assert_int_gt(port, 0);
    ck_assert_int_le(port, 65535);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t)port);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    close(fd);
}
END_TEST

START_TEST(test_tmpdir_honours_tmpdir_and_rmtree_removes_all)
{
    char base[PATH_MAX], dir[PATH_MAX], outside[PATH_MAX], path[PATH_MAX], saved[PATH_MAX];

    ck_assert_int_eq(harness_tmpdir(base, sizeof(base)), 0);
    use_tmpdir(base, saved);
    ck_assert_int_eq(harness_tmpdir(dir, sizeof(dir)), 0);
    restore_tmpdir(saved);
    ck_assert_int_eq(strncmp(dir, base, strlen(base)), 0);
    join(outside, base, "outside");
    ck_assert_int_eq(mkdir(outside, 0700), 0);
    touch(outside, "keep");

    /* A tree with a nested directory and a link that leads out of it. */
    join(path, dir, "sub");
    ck_assert_int_eq(mkdir(path, 0700), 0);
    touch(path, "file");
    touch(dir, "top");
    join(path, dir, "link");
    ck_assert_int_eq(symlink(outside, path), 0);

    ck_assert_int_eq(harness_rmtree(dir), 0);
    ck_assert(!path_exists(dir));
    join(path, outside, "keep");
    ck_assert_msg(path_exists(path), "rmtree followed a symbolic link");
    ck_assert_int_eq(harness_rmtree(dir), 0); /* already gone: fine */
    ck_assert_int_eq(harness_rmtree(base), 0);
    ck_assert(!path_exists(base));
}
END_TEST

START_TEST(test_tmpdir_too_small_buffer)
{
    char small[8];

    errno = 0;
    ck_assert_int_eq(harness_tmpdir(small, sizeof(small)), -1);
    ck_assert_int_eq(errno, ENAMETOOLONG);
}
END_TEST

START_TEST(test_find_exe)
{
    char path[PATH_MAX];

    ck_assert_int_eq(harness_find_exe("sh", path, sizeof(path)), 0);
    ck_assert(access(path, X_OK) == 0);
    errno = 0;
    ck_assert_int_eq(harness_find_exe("trident-no-such-program", path, sizeof(path)), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_int_eq(harness_find_exe("/nonexistent/sh", path, sizeof(path)), -1);
}
END_TEST

START_TEST(test_spawn_logs_output_and_exec_failure)
{
    char dir[PATH_MAX], log[PATH_MAX], sh[PATH_MAX], tail[256];
    const char *echo[] = { "sh", "-c", "echo hello from the child; exit 3", NULL };
    const char *missing[] = { "missing", NULL };
    int status;

    ck_assert_int_eq(harness_tmpdir(dir, sizeof(dir)), 0);
    join(log, dir, "child.log");
    ck_assert_int_eq(harness_find_exe("sh", sh, sizeof(sh)), 0);

    pid_t pid = harness_spawn(sh, echo, log);
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(harness_wait(pid, 10000, &status), 1);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 3);
    ck_assert_int_gt(harness_log_tail(log, 0, tail, sizeof(tail)), 0);
    ck_assert_str_eq(tail, "hello from the child\n");

    pid = harness_spawn("/nonexistent/program", missing, log);
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(harness_wait(pid, 10000, &status), 1);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 127);
    /* The offset skips what the first child wrote. */
    ck_assert_int_gt(harness_log_tail(log, 21, tail, sizeof(tail)), 0);
    ck_assert_str_eq(tail, "harness_spawn: exec failed: /nonexistent/program\n");
    ck_assert_int_eq(harness_rmtree(dir), 0);
}
END_TEST

START_TEST(test_wait_times_out_on_running_child)
{
    const char *args[] = { "sleep", "30", NULL };
    char sleep_path[PATH_MAX];
    int status;

    ck_assert_int_eq(harness_find_exe("sleep", sleep_path, sizeof(sleep_path)), 0);
    pid_t pid = harness_spawn(sleep_path, args, "/dev/null");
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(harness_wait(pid, 0, &status), 0);
    ck_assert_int_eq(harness_wait(pid, 50, &status), 0);
    /* A polite child ends on SIGTERM, long before the grace runs out. */
    uint64_t t0 = clock_mono_ms();
    ck_assert_int_eq(harness_terminate(pid, 10000, &status), 0);
    ck_assert(clock_mono_ms() - t0 < 5000);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
    assert_gone(pid);
    errno = 0;
    ck_assert_int_eq(harness_wait(pid, 0, NULL), -1);
    ck_assert_int_eq(errno, ECHILD);
}
END_TEST

START_TEST(test_terminate_escalates_to_sigkill)
{
    sigset_t term, old;
    int status;

    /* The child inherits SIGTERM blocked, so it can only end by SIGKILL. */
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    ck_assert_int_eq(sigprocmask(SIG_BLOCK, &term, &old), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        for (;;)
            pause();
    }
    ck_assert_int_eq(sigprocmask(SIG_SETMASK, &old, NULL), 0);

    uint64_t t0 = clock_mono_ms();
    ck_assert_int_eq(harness_terminate(pid, 200, &status), 0);
    ck_assert(clock_mono_ms() - t0 >= 200);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_gone(pid);
}
END_TEST

/* ---- redis_harness ------------------------------------------------------- */

START_TEST(test_redis_set_get_tcp_and_unix)
{
    redis_harness h;

    start_redis(&h, NULL);
    redisContext *c = connect_tcp(&h);
    run_status(c, "SET", "greeting", "hello");
    assert_get(c, "greeting", "hello");
    redisFree(c);

    c = redisConnectUnix(h.unix_path);
    ck_assert_msg(c != NULL && c->err == 0, "connect to %s", h.unix_path);
    assert_get(c, "greeting", "hello");
    redisFree(c);
    ck_assert_msg(redis_harness_stop(&h) == 0, "%s", h.error);
}
END_TEST

START_TEST(test_redis_stop_removes_dir_and_process)
{
    redis_harness h;
    char dir[PATH_MAX];

    start_redis(&h, NULL);
    pid_t pid = h.pid;
    snprintf(dir, sizeof(dir), "%s", h.dir);
    ck_assert(path_exists(h.log_path));
    ck_assert_msg(redis_harness_stop(&h) == 0, "%s", h.error);
    assert_gone(pid);
    ck_assert_msg(!path_exists(dir), "%s is still there", dir);
    ck_assert_int_eq(h.pid, 0);
    ck_assert_int_eq(redis_harness_stop(&h), 0); /* twice is harmless */
}
END_TEST

START_TEST(test_redis_aof_survives_kill_and_restart)
{
    redis_harness_opts o = { .appendonly = 1, .appendfsync = "always" };
    redis_harness h;

    start_redis(&h, &o);
    int port = h.port;
    pid_t first = h.pid;
    redisContext *c = connect_tcp(&h);
    run_status(c, "SET", "durable", "yes");
    redisFree(c);

    ck_assert_msg(redis_harness_kill(&h) == 0, "%s", h.error);
    assert_gone(first);
    ck_assert(path_exists(h.dir));
    ck_assert_int_eq(redis_harness_kill(&h), -1); /* nothing runs now */

    ck_assert_msg(redis_harness_restart(&h) == 0, "%s", h.error);
    ck_assert_int_eq(h.port, port);
    ck_assert_int_ne(h.pid, first);
    c = connect_tcp(&h);
    assert_get(c, "durable", "yes");
    redisFree(c);

    /* A restart of a running server stops it politely first. */
    pid_t second = h.pid;
    ck_assert_msg(redis_harness_restart(&h) == 0, "%s", h.error);
    assert_gone(second);
    c = connect_tcp(&h);
    assert_get(c, "durable", "yes");
    redisFree(c);
    ck_assert_msg(redis_harness_stop(&h) == 0, "%s", h.error);
}
END_TEST

START_TEST(test_redis_missing_server_is_reported)
{
    redis_harness_opts o = { .server = "trident-no-such-redis-server" };
    redis_harness h;

    ck_assert_int_eq(redis_harness_start(&h, &o), -1);
    ck_assert_msg(strstr(h.error, "not found: apt-get install -y redis-server") != NULL, "%s",
                  h.error);
    ck_assert_int_eq(h.pid, 0);
    ck_assert_str_eq(h.dir, "");
}
END_TEST

START_TEST(test_redis_early_exit_reports_log_tail)
{
    const char *const bad[] = { "--no-such-directive", "yes", NULL };
    redis_harness_opts o = { .extra_args = bad };
    redis_harness h;
    char base[PATH_MAX], saved[PATH_MAX];

    /* A private TMPDIR shows whether the failed start left its dir behind. */
    ck_assert_int_eq(harness_tmpdir(base, sizeof(base)), 0);
    use_tmpdir(base, saved);
    ck_assert_int_eq(redis_harness_start(&h, &o), -1);
    restore_tmpdir(saved);
    ck_assert_msg(strstr(h.error, "before answering PING") != NULL, "%s", h.error);
    ck_assert_msg(strstr(h.error, "no-such-directive") != NULL, "no log tail in: %s", h.error);
    ck_assert_int_eq(h.pid, 0);
    ck_assert_str_eq(h.dir, "");
    ck_assert_int_eq(rmdir(base), 0); /* fails with ENOTEMPTY on a leftover */
}
END_TEST

static int busy_port;
static int pick_calls;

/* pick_busy_then_free: the port seam; the first pick is a taken port. */
static int pick_busy_then_free(void)
{
    return pick_calls++ == 0 ? busy_port : harness_free_port();
}

START_TEST(test_redis_retries_a_taken_port)
{
    redis_harness_opts o = { .pick_port = pick_busy_then_free };
    redis_harness h;

    int fd = listen_any(&busy_port);
    pick_calls = 0;
    start_redis(&h, &o);
    ck_assert_int_eq(pick_calls, 2);
    ck_assert_int_ne(h.port, busy_port);
    redisContext *c = connect_tcp(&h);
    run_status(c, "SET", "k", "v");
    redisFree(c);
    ck_assert_msg(redis_harness_stop(&h) == 0, "%s", h.error);
    close(fd);
}
END_TEST

static Suite *redis_harness_suite(void)
{
    Suite *s = suite_create("redis_harness");
    TCase *tc = tcase_create("harness");

    tcase_add_test(tc, test_free_port_is_bindable);
    tcase_add_test(tc, test_tmpdir_honours_tmpdir_and_rmtree_removes_all);
    tcase_add_test(tc, test_tmpdir_too_small_buffer);
    tcase_add_test(tc, test_find_exe);
    tcase_add_test(tc, test_spawn_logs_output_and_exec_failure);
    tcase_add_test(tc, test_wait_times_out_on_running_child);
    tcase_add_test(tc, test_terminate_escalates_to_sigkill);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);

    tc = tcase_create("redis");
    tcase_add_test(tc, test_redis_set_get_tcp_and_unix);
    tcase_add_test(tc, test_redis_stop_removes_dir_and_process);
    tcase_add_test(tc, test_redis_aof_survives_kill_and_restart);
    tcase_add_test(tc, test_redis_missing_server_is_reported);
    tcase_add_test(tc, test_redis_early_exit_reports_log_tail);
    tcase_add_test(tc, test_redis_retries_a_taken_port);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(redis_harness_suite());
}

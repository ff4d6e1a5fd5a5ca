/* Unit tests of worker/exech: cat round trips (text, binary with NUL bytes,
 * empty, 5 MB written while the output is read, 16 programs at once); the
 * task's environment; exit status and signal messages with the stderr tail
 * (cut to its last 4 KiB); the output limit (exact, over, endless); a
 * program that does not read its stdin (EPIPE); exech_signal(SIGTERM) to a
 * whole process group; a background process holding stdout (the linger,
 * then the group killed) and one that let go of it (killed at the end);
 * the example examples/exec/upper.py; pipe failures (done never runs, no fd
 * leaks); exech_free with programs running; unknown pids and tasks.
 *
 * Each test (its own process: Check forks) drives a real event loop with a
 * SIGCHLD signal event that reaps with waitpid(-1, WNOHANG) and hands every
 * pid to exech_reaped, as the worker child does. The test process is a
 * child subreaper, so the orphaned grandchildren of a program become its
 * children: the same handler reaps them and records how they died, and at
 * the end of each test "no child left" means no process of any program is
 * left. Every wait is an event with a bound (WAIT_MS): a broken module
 * fails a test instead of hanging it.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "exech.h"
#include "harness.h"
#include "sig.h"
#include "task.h"
#include "unit.h"

#define WAIT_MS 20000        /* the longest any test waits for the loop */
#define STRAY_WAIT_MS 3000   /* at the end: how long killed processes may take to be reaped */
#define MAX_OTHERS 64
#define NO_LIMIT ((size_t)64 << 20)

/* ---- The loop --------------------------------------------------------------
 * loop_until runs the loop until a condition holds; the callbacks that may
 * make it hold (done, SIGCHLD, the FIFO) call loop_check. */

typedef bool (*cond_fn)(void *arg);

static struct {
    char dir[256];
    struct event_base *base;
    exech *ex;
    struct event *sigchld, *guard;
    cond_fn until;
    void *until_arg;
    /* pids reaped that were no program of ours: adopted grandchildren */
    pid_t other_pid[MAX_OTHERS];
    int other_status[MAX_OTHERS];
    int nother;
    int keeper_fd;  /* to the keeper: the process groups started */
} fx;

static void loop_check(void)
{
    if (fx.until && fx.until(fx.until_arg))
        event_base_loopexit(fx.base, NULL);
}

static void guard_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    event_base_loopbreak(fx.base);
}

/* loop_until: true once cond(arg) holds, false after WAIT_MS without. */
static bool loop_until(cond_fn cond, void *arg)
{
    if (cond(arg))
        return true;
    fx.until = cond;
    fx.until_arg = arg;
    struct timeval tv = { WAIT_MS / 1000, 0 };
    evtimer_add(fx.guard, &tv);
    event_base_dispatch(fx.base);
    event_del(fx.guard);
    fx.until = NULL;
    return cond(arg);
}

static void sigchld_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        if (!exech_reaped(fx.ex, pid, status) && fx.nother < MAX_OTHERS) {
            fx.other_pid[fx.nother] = pid;
            fx.other_status[fx.nother++] = status;
        }
    loop_check();
}

/* other_status: the wait status of a reaped grandchild, or -1. */
static int other_status(pid_t pid)
{
    for (int i = 0; i < fx.nother; i++)
        if (fx.other_pid[i] == pid)
            return fx.other_status[i];
    return -1;
}

/* gone: pid was reaped here, or no longer exists (its own parent reaped it). */
static bool gone(pid_t pid)
{
    return other_status(pid) != -1 || (kill(pid, 0) != 0 && errno == ESRCH);
}

/* keeper_start: a process that cleans up after a failed test. Check ends
 * a failing test with _exit (no teardown, no atexit) and then kills the
 * test's process group, so the keeper has a group of its own. It reads the
 * process group ids the test sends it (keeper_add); when the test process
 * is gone (EOF, however it ended) it kills those groups and removes the
 * test directory, then exits. */
static void keeper_start(void)
{
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        setpgid(0, 0);
        close(p[1]);
        pid_t groups[MAX_OTHERS], g;
        int n = 0;
        while (read(p[0], &g, sizeof g) == (ssize_t)sizeof g)
            if (n < MAX_OTHERS)
                groups[n++] = g;
        for (int i = 0; i < n; i++)
            kill(-groups[i], SIGKILL);
        harness_rmtree(fx.dir);
        _exit(0);
    }
    setpgid(pid, pid); /* both sides: whichever runs first */
    close(p[0]);
    fx.keeper_fd = p[1];
}

static void keeper_add(pid_t group)
{
    ck_assert_int_eq(write(fx.keeper_fd, &group, sizeof group), (ssize_t)sizeof group);
}

static void setup(void)
{
    memset(&fx, 0, sizeof fx);
    ck_assert_int_eq(sig_ignore(SIGPIPE), 0);
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    ck_assert_int_eq(harness_tmpdir(fx.dir, sizeof fx.dir), 0);
    keeper_start();
    fx.base = event_base_new();
    ck_assert_ptr_nonnull(fx.base);
    fx.ex = exech_new(fx.base);
    ck_assert_ptr_nonnull(fx.ex);
    fx.sigchld = evsignal_new(fx.base, SIGCHLD, sigchld_cb, NULL);
    fx.guard = evtimer_new(fx.base, guard_cb, NULL);
    ck_assert_int_eq(evsignal_add(fx.sigchld, NULL), 0);
}

/* teardown: every run ended, and within STRAY_WAIT_MS no process of any
 * program is left (as a subreaper, all of them are our descendants; the
 * keeper, told to end, is one too). */
static void teardown(void)
{
    ck_assert_uint_eq(exech_running(fx.ex), 0);
    ck_assert_int_eq(harness_rmtree(fx.dir), 0);
    close(fx.keeper_fd);
    uint64_t until = clock_mono_ms() + STRAY_WAIT_MS;
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) >= 0 && clock_mono_ms() < until)
        if (pid == 0)
            harness_nap_ms(10); /* between two polls */
    ck_assert_msg(pid < 0 && errno == ECHILD, "a process of a program is still running");
    exech_free(fx.ex);
    event_free(fx.sigchld);
    event_free(fx.guard);
    event_base_free(fx.base);
}

/* ---- Runs ----------------------------------------------------------------- */

typedef struct outcome {
    int calls;
    trident_task *t;
    uint64_t at_ms;   /* monotonic, when done ran */
} outcome;

static void on_done(trident_task *t, void *arg)
{
    outcome *o = arg;
    o->calls++;
    o->t = t;
    o->at_ms = clock_mono_ms();
    loop_check();
}

static bool called(void *arg)
{
    return ((outcome *)arg)->calls > 0;
}

static trident_task *new_task(const char *id, const void *payload, size_t len)
{
    return task_new(id, strlen(id), "exec-test", 9, "default", 7, payload, len, 1);
}

/* start: starts command for t; the test fails if it cannot. */
static void start(trident_task *t, const char *command, size_t max_output, outcome *o)
{
    char err[256] = "";
    int rc = exech_start(fx.ex, t, command, max_output, on_done, o, err, sizeof err);
    ck_assert_msg(rc == 0, "exech_start: %s", err);
    ck_assert_int_gt(t->pid, 0);
    keeper_add(t->pid);
}

/* run: runs command with payload to its end; returns the task (you free
 * it), whose done ran exactly once. */
static trident_task *run(const char *command, const void *payload, size_t len, size_t max_output)
{
    trident_task *t = new_task("t-1", payload, len);
    outcome o = { 0 };
    start(t, command, max_output, &o);
    ck_assert_msg(loop_until(called, &o), "'%s' did not finish in %d ms", command, WAIT_MS);
    ck_assert_int_eq(o.calls, 1);
    ck_assert_ptr_eq(o.t, t);
    ck_assert_int_eq(t->pid, 0);
    ck_assert_uint_eq(exech_running(fx.ex), 0);
    return t;
}

static void assert_result(const trident_task *t, const void *want, size_t len)
{
    ck_assert_msg(t->ok, "failed: %s", t->error ? t->error : "(no message)");
    ck_assert_uint_eq(buf_used(&t->result), len);
    ck_assert(len == 0 || memcmp(buf_rptr(&t->result), want, len) == 0);
}

static void assert_failed(const trident_task *t, bool retryable, const char *message)
{
    ck_assert(!t->ok);
    ck_assert_int_eq(t->code, ERR_TASK_FAILED);
    ck_assert_int_eq(t->retryable, retryable);
    ck_assert_ptr_nonnull(t->error);
    ck_assert_str_eq(t->error, message);
    ck_assert_uint_eq(buf_used(&t->result), 0);
}

/* expect_ok: runs command with payload; it must succeed with want. */
static void expect_ok(const char *command, const void *payload, size_t len, size_t max_output,
                      const void *want, size_t wlen)
{
    trident_task *t = run(command, payload, len, max_output);
    assert_result(t, want, wlen);
    task_free(t);
}

/* expect_failure: runs command without payload; it must fail with message. */
static void expect_failure(const char *command, size_t max_output, bool retryable,
                           const char *message)
{
    trident_task *t = run(command, "", 0, max_output);
    assert_failed(t, retryable, message);
    task_free(t);
}

/* pattern: len bytes of a pattern that holds every byte value, NUL too. */
static unsigned char *pattern(size_t len, unsigned seed)
{
    unsigned char *p = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)(i * 31 + seed + (i >> 8));
    return p;
}

/* ---- Round trips ---------------------------------------------------------- */

START_TEST(test_cat_round_trip)
{
    expect_ok("cat", "hello", 5, NO_LIMIT, "hello", 5);

    unsigned char *bin = pattern(1024, 0); /* NUL bytes included */
    expect_ok("cat", bin, 1024, NO_LIMIT, bin, 1024);
    free(bin);

    expect_ok("cat", "", 0, NO_LIMIT, "", 0);
}
END_TEST

START_TEST(test_cat_5mb)
{
    /* 80 times a pipe's buffer each way: only works if stdin is written
     * while stdout is read. */
    size_t len = 5u << 20;
    unsigned char *big = pattern(len, 7);
    expect_ok("cat", big, len, NO_LIMIT, big, len);
    free(big);
}
END_TEST

static bool all_called(void *arg)
{
    outcome *o = arg;
    for (int i = 0; i < 16; i++)
        if (o[i].calls == 0)
            return false;
    return true;
}

START_TEST(test_many_at_once)
{
    enum { N = 16, LEN = 200000 };
    trident_task *t[N];
    unsigned char *in[N];
    outcome o[N];
    memset(o, 0, sizeof o);
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "t-%d", i);
        in[i] = pattern(LEN, (unsigned)i);
        t[i] = new_task(id, in[i], LEN);
        start(t[i], "cat", NO_LIMIT, &o[i]);
    }
    ck_assert_uint_eq(exech_running(fx.ex), N);
    ck_assert(loop_until(all_called, o));
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(o[i].calls, 1);
        assert_result(t[i], in[i], LEN);
        task_free(t[i]);
        free(in[i]);
    }
    ck_assert_uint_eq(exech_running(fx.ex), 0);
}
END_TEST

START_TEST(test_environment)
{
    static const char show[] = "printf '%s|%s|%s|%s|%s' \"$TRIDENT_TASK_ID\" \"$TRIDENT_TASK_NAME\" "
                               "\"$TRIDENT_TASK_ATTEMPT\" \"$TRIDENT_TASK_DEADLINE_MS\" \"$TMPDIR\"";
    ck_assert_int_eq(setenv("TMPDIR", fx.dir, 1), 0);
    ck_assert_int_eq(setenv("TRIDENT_TASK_ID", "stale", 1), 0); /* replaced, not doubled */

    trident_task *t = task_new("0193-abc", 8, "resize", 6, "images", 6, "", 0, 3);
    t->deadline_ms = 1767225600123ULL;
    outcome o = { 0 };
    start(t, show, NO_LIMIT, &o);
    ck_assert(loop_until(called, &o));
    char want[512];
    snprintf(want, sizeof want, "0193-abc|resize|3|1767225600123|%s", fx.dir);
    assert_result(t, want, strlen(want));
    task_free(t);

    expect_ok("printf %s \"$TRIDENT_TASK_DEADLINE_MS\"", "", 0, NO_LIMIT, "0", 1); /* no deadline */

    /* What sh was given (its own `env` would hide a doubled variable). */
    const char *vars = "TRIDENT_TASK_ATTEMPT=1\nTRIDENT_TASK_DEADLINE_MS=0\n"
                       "TRIDENT_TASK_ID=t-1\nTRIDENT_TASK_NAME=exec-test\n";
    expect_ok("tr '\\000' '\\n' < /proc/$$/environ | grep '^TRIDENT_TASK_' | sort", "", 0,
              NO_LIMIT, vars, strlen(vars));
}
END_TEST

/* ---- Failures ------------------------------------------------------------- */

START_TEST(test_exit_status)
{
    expect_failure("echo partial; echo first >&2; echo second >&2; exit 7", NO_LIMIT, true,
                   "exited with status 7: first\nsecond");
    expect_failure("exit 5", NO_LIMIT, true, "exited with status 5");
    expect_failure("printf 'a\\000b\\n\\n' >&2; exit 2", NO_LIMIT, true, "exited with status 2: a?b");

    trident_task *t = run("no-such-command-in-path", "", 0, NO_LIMIT);
    ck_assert(!t->ok);
    ck_assert_msg(strncmp(t->error, "exited with status 127: ", 24) == 0, "%s", t->error);
    task_free(t);
}
END_TEST

START_TEST(test_stderr_tail)
{
    /* 10,000 x and END: the message keeps the last 4 KiB. */
    trident_task *t =
        run("head -c 10000 /dev/zero | tr '\\000' x >&2; printf END >&2; exit 1", "", 0, NO_LIMIT);
    const char *prefix = "exited with status 1: ";
    ck_assert(!t->ok);
    ck_assert_msg(strncmp(t->error, prefix, strlen(prefix)) == 0, "%s", t->error);
    const char *tail = t->error + strlen(prefix);
    ck_assert_uint_eq(strlen(tail), EXECH_TAIL_BYTES);
    ck_assert_str_eq(tail + EXECH_TAIL_BYTES - 4, "xEND");
    ck_assert_uint_eq(strspn(tail, "x"), EXECH_TAIL_BYTES - 3);
    task_free(t);
}
END_TEST

START_TEST(test_killed_by_signal)
{
    expect_failure("echo dying >&2; kill -KILL $$", NO_LIMIT, true,
                   "killed by signal 9 (SIGKILL): dying");
    expect_failure("kill -USR1 $$", NO_LIMIT, true, "killed by signal 10 (SIGUSR1)");
}
END_TEST

START_TEST(test_output_limit)
{
    expect_ok("printf 12345", "", 0, 5, "12345", 5);
    expect_failure("printf 123456", 5, false,
                   "its output exceeded the limit of 5 bytes: the program was killed");
    expect_failure("exec yes", 100000, false, /* endless: only the limit stops it */
                   "its output exceeded the limit of 100000 bytes: the program was killed");
    expect_ok("printf ''", "", 0, 0, "", 0);
}
END_TEST

static double cpu_seconds(void)
{
    struct rusage ru;
    ck_assert_int_eq(getrusage(RUSAGE_SELF, &ru), 0);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

START_TEST(test_stdin_not_read)
{
    size_t len = 1u << 20; /* more than a pipe holds: the write meets EPIPE */
    unsigned char *in = pattern(len, 3);
    expect_ok("exit 0", in, len, NO_LIMIT, "", 0);
    expect_ok("head -c 3", in, len, NO_LIMIT, in, 3); /* reads a little, then leaves */

    /* Closes its stdin and goes on for a while: after EPIPE the loop must
     * stop watching stdin, not spin on a pipe that is always "writable". */
    double cpu = cpu_seconds();
    expect_ok("exec 0<&-; sleep 0.5; printf done", in, len, NO_LIMIT, "done", 4);
    cpu = cpu_seconds() - cpu;
    ck_assert_msg(cpu < 0.25, "the loop used %.3f s of CPU while the program slept", cpu);
    free(in);
}
END_TEST

START_TEST(test_clean_process)
{
    /* The test process ignores SIGPIPE, holds the loop's descriptors and
     * its own process group; the program gets default dispositions, an
     * empty mask, only 0-2 and a group of its own. The mask is read by the
     * program sh turns into (sh blocks signals around its own forks), the
     * descriptors before sh opens a pipe of its own. */
    static const char sigs[] = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n";
    expect_ok("exec grep -E '^Sig(Blk|Ign)' /proc/self/status", "", 0, NO_LIMIT, sigs,
              sizeof sigs - 1);

    trident_task *t = run("ls /proc/$$/fd; cut -d' ' -f5 /proc/$$/stat; echo $$", "", 0, NO_LIMIT);
    ck_assert_msg(t->ok, "%s", t->error);
    char out[512] = "";
    size_t n = buf_used(&t->result);
    ck_assert_uint_lt(n, sizeof out);
    memcpy(out, buf_rptr(&t->result), n);
    ck_assert_msg(strncmp(out, "0\n1\n2\n", 6) == 0, "%s", out);
    long pgid = 0, pid = 0;
    ck_assert_msg(sscanf(out + 6, "%ld\n%ld", &pgid, &pid) == 2, "%s", out);
    ck_assert_int_eq(pgid, pid);
    ck_assert_int_ne(pgid, getpgrp());
    task_free(t);
}
END_TEST

/* ---- Process groups ------------------------------------------------------- */

/* fifo_wait: a program tells the test pids through a FIFO in the test
 * directory, as one line "A" or "A B"; the test waits for it on the loop. */
typedef struct fifo_wait {
    char path[PATH_MAX];
    int fd;
    char line[128];
    size_t len;
    struct event *ev;
    pid_t a, b;   /* 0 until read */
    outcome o;
} fifo_wait;

static void fifo_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    fifo_wait *w = arg;
    ssize_t n = read(fd, w->line + w->len, sizeof w->line - 1 - w->len);
    if (n > 0)
        w->len += (size_t)n;
    w->line[w->len] = '\0';
    long a = 0, b = 0;
    if (strchr(w->line, '\n') && sscanf(w->line, "%ld %ld", &a, &b) >= 1) {
        w->a = (pid_t)a;
        w->b = (pid_t)b;
        event_del(w->ev);
    } else if (n == 0 || w->len == sizeof w->line - 1) {
        event_del(w->ev); /* closed without a line: the test fails on a == 0 */
    }
    loop_check();
}

static void fifo_open(fifo_wait *w)
{
    memset(w, 0, sizeof *w);
    snprintf(w->path, sizeof w->path, "%s/pids", fx.dir);
    ck_assert_int_eq(mkfifo(w->path, 0600), 0);
    w->fd = open(w->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* no writer needed */
    ck_assert_int_ge(w->fd, 0);
    w->ev = event_new(fx.base, w->fd, EV_READ | EV_PERSIST, fifo_cb, w);
    event_add(w->ev, NULL);
}

static void fifo_close(fifo_wait *w)
{
    event_free(w->ev);
    close(w->fd);
}

static bool fifo_read(void *arg)
{
    fifo_wait *w = arg;
    return w->a > 0 || !event_pending(w->ev, EV_READ, NULL);
}

static bool group_gone(void *arg)
{
    fifo_wait *w = arg;
    return w->o.calls > 0 && gone(w->a) && gone(w->b);
}

START_TEST(test_sigterm_kills_group)
{
    fifo_wait w;
    fifo_open(&w);
    char cmd[PATH_MAX + 128];
    snprintf(cmd, sizeof cmd, "sleep 100 & a=$!; sleep 100 & b=$!; echo \"$a $b\" > '%s'; wait",
             w.path);

    trident_task *t = new_task("t-group", "", 0);
    start(t, cmd, NO_LIMIT, &w.o);
    ck_assert(loop_until(fifo_read, &w));
    ck_assert_msg(w.a > 0 && w.b > 0, "no pids from the program: '%s'", w.line);
    ck_assert_int_eq(kill(w.a, 0), 0);
    ck_assert_int_eq(kill(w.b, 0), 0);

    ck_assert_int_eq(exech_signal(fx.ex, t, SIGTERM), 0);
    ck_assert_msg(loop_until(group_gone, &w), "a sleep of the group outlived SIGTERM");
    ck_assert_int_eq(w.o.calls, 1);
    assert_failed(t, true, "killed by signal 15 (SIGTERM)");
    pid_t sleeps[] = { w.a, w.b };
    for (int i = 0; i < 2; i++) {
        int st = other_status(sleeps[i]); /* -1: its shell reaped it first */
        ck_assert(st == -1 || (WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM));
    }
    /* The run is over: nothing to signal. */
    errno = 0;
    ck_assert_int_eq(exech_signal(fx.ex, t, SIGTERM), -1);
    ck_assert_int_eq(errno, ESRCH);
    task_free(t);
    fifo_close(&w);
}
END_TEST

typedef struct bg_wait {
    outcome o;
    pid_t bg;   /* the background process, from the result */
} bg_wait;

/* bg_killed: done ran and the background pid it printed was reaped here. */
static bool bg_killed(void *arg)
{
    bg_wait *w = arg;
    if (w->o.calls == 0 || !w->o.t->ok)
        return w->o.calls > 0 && !w->o.t->ok;
    if (w->bg == 0) {
        char pid[32] = "";
        size_t n = buf_used(&w->o.t->result);
        memcpy(pid, buf_rptr(&w->o.t->result), n < sizeof pid - 1 ? n : sizeof pid - 1);
        w->bg = (pid_t)atol(pid);
    }
    return w->bg > 0 && other_status(w->bg) != -1;
}

/* run_background: runs a command whose stdout is the pid of a background
 * process it leaves, until that process was reaped here. Returns the
 * milliseconds from start to done. */
static uint64_t run_background(const char *cmd, bg_wait *w)
{
    trident_task *t = new_task("t-bg", "", 0);
    uint64_t t0 = clock_mono_ms();
    start(t, cmd, NO_LIMIT, &w->o);
    ck_assert_msg(loop_until(bg_killed, w), "the background process of '%s' was not killed", cmd);
    ck_assert_int_eq(w->o.calls, 1);
    ck_assert_msg(t->ok, "%s", t->error);
    int st = other_status(w->bg);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    task_free(t);
    return w->o.at_ms - t0;
}

START_TEST(test_linger_then_kill)
{
    /* The background sleep keeps stdout and stderr open after sh exits. */
    bg_wait w = { 0 };
    uint64_t took = run_background("sleep 100 & echo $!", &w);
    ck_assert_msg(took >= EXECH_LINGER_MS - 10, "done after %llu ms", (unsigned long long)took);
}
END_TEST

START_TEST(test_leftover_killed_at_end)
{
    /* The background sleep let go of the pipes: the run ends at once, and
     * the rest of the group is killed with it. */
    bg_wait w = { 0 };
    run_background("sleep 100 >/dev/null 2>&1 & echo $!", &w);
}
END_TEST

static bool reaped_here(void *arg)
{
    return other_status(*(pid_t *)arg) != -1;
}

START_TEST(test_worker_killed)
{
    /* A helper process starts a program and is killed with -9 once the
     * program runs: the program must die with it (PR_SET_PDEATHSIG). As a
     * subreaper, this process adopts the program and sees how it died. */
    fifo_wait w;
    fifo_open(&w);
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "echo $$ > '%s'; exec sleep 100", w.path);
    pid_t helper = fork();
    ck_assert_int_ge(helper, 0);
    if (helper == 0) {
        close(fx.keeper_fd);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* if the test fails before killing it */
        struct event_base *base = event_base_new();
        exech *x = base ? exech_new(base) : NULL;
        trident_task *t = new_task("t-orphan", "", 0);
        outcome o = { 0 };
        char err[256];
        if (!x || exech_start(x, t, cmd, NO_LIMIT, on_done, &o, err, sizeof err) != 0)
            _exit(1);
        for (;;)
            pause(); /* until the test kills it */
    }
    ck_assert(loop_until(fifo_read, &w));
    pid_t program = w.a;
    ck_assert_msg(program > 0, "no pid from the program: '%s'", w.line);
    keeper_add(program);
    ck_assert_int_eq(harness_kill(helper, NULL), 0);
    ck_assert_msg(loop_until(reaped_here, &program), "the program outlived its worker");
    int st = other_status(program);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    fifo_close(&w);
}
END_TEST

/* ---- The Python example --------------------------------------------------- */

START_TEST(test_upper_py)
{
    const char *script = TRIDENT_EXAMPLES_DIR "/exec/upper.py";
    ck_assert_msg(access(script, X_OK) == 0, "%s is not executable", script);
    FILE *f = fopen(script, "r");
    char first[64] = "";
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(first, sizeof first, f));
    fclose(f);
    ck_assert_str_eq(first, "#!/usr/bin/env python3\n");

    /* The system's interpreter, not a version manager's shim in PATH. */
    char python[PATH_MAX], cmd[2 * PATH_MAX];
    if (access("/usr/bin/python3", X_OK) == 0)
        snprintf(python, sizeof python, "/usr/bin/python3");
    else
        ck_assert_int_eq(harness_find_exe("python3", python, sizeof python), 0);
    snprintf(cmd, sizeof cmd, "'%s' '%s'", python, script);

    const char *in = "hello, wörld\nline two\n";
    const char *want = "HELLO, WÖRLD\nLINE TWO\n";
    expect_ok(cmd, in, strlen(in), NO_LIMIT, want, strlen(want));
    expect_failure(cmd, NO_LIMIT, true,
                   "exited with status 3: upper: task t-1: empty input, nothing to upper-case");
}
END_TEST

/* ---- Failing starts, teardown, strangers ---------------------------------- */

static int lowest_free_fd(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    close(fd);
    return fd;
}

START_TEST(test_pipe_failure)
{
    /* Three pipes take six descriptors: with fewer left, each attempt must
     * fail cleanly at one of the pipes. */
    int lowest = lowest_free_fd();
    struct rlimit old, rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    for (int spare = 0; spare < 6; spare++) {
        trident_task *t = new_task("t-fd", "x", 1);
        outcome o = { 0 };
        char err[256] = "";
        rl = old;
        rl.rlim_cur = (rlim_t)(lowest + spare);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
        int rc = exech_start(fx.ex, t, "cat", NO_LIMIT, on_done, &o, err, sizeof err);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
        ck_assert_int_eq(rc, -1);
        ck_assert_msg(strstr(err, "pipe") && strstr(err, "EMFILE"), "%s", err);
        ck_assert_int_eq(t->pid, 0);
        ck_assert_int_eq(lowest_free_fd(), lowest); /* nothing leaked */
        ck_assert_uint_eq(exech_running(fx.ex), 0);
        task_free(t);
        ck_assert_int_eq(o.calls, 0);
    }
    /* And with the descriptors back, it works. */
    expect_ok("cat", "x", 1, NO_LIMIT, "x", 1);
}
END_TEST

START_TEST(test_free_kills_running)
{
    trident_task *t1 = new_task("t-a", "", 0), *t2 = new_task("t-b", "", 0);
    outcome o1 = { 0 }, o2 = { 0 };
    start(t1, "sleep 100", NO_LIMIT, &o1);
    start(t2, "sleep 100 & sleep 100; wait", NO_LIMIT, &o2);
    pid_t p1 = t1->pid, p2 = t2->pid;
    ck_assert_uint_eq(exech_running(fx.ex), 2);
    exech_free(fx.ex);
    /* Reaped by exech_free, and their done never ran. */
    ck_assert_int_eq(waitpid(p1, NULL, WNOHANG), -1);
    ck_assert_int_eq(waitpid(p2, NULL, WNOHANG), -1);
    ck_assert_int_eq(o1.calls + o2.calls, 0);
    task_free(t1);
    task_free(t2);
    fx.ex = exech_new(fx.base); /* for teardown, which also sees the grandchild die */
}
END_TEST

START_TEST(test_strangers)
{
    trident_task *t = new_task("t-none", "", 0);
    ck_assert_int_eq(exech_reaped(fx.ex, 999999, 0), 0);
    errno = 0;
    ck_assert_int_eq(exech_signal(fx.ex, t, SIGTERM), -1);
    ck_assert_int_eq(errno, ESRCH);
    task_free(t);
    exech_free(NULL);
}
END_TEST

static Suite *exech_suite(void)
{
    Suite *s = suite_create("exech");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_cat_round_trip);
    tcase_add_test(tc, test_cat_5mb);
    tcase_add_test(tc, test_many_at_once);
    tcase_add_test(tc, test_environment);
    tcase_add_test(tc, test_exit_status);
    tcase_add_test(tc, test_stderr_tail);
    tcase_add_test(tc, test_killed_by_signal);
    tcase_add_test(tc, test_output_limit);
    tcase_add_test(tc, test_stdin_not_read);
    tcase_add_test(tc, test_clean_process);
    tcase_add_test(tc, test_sigterm_kills_group);
    tcase_add_test(tc, test_linger_then_kill);
    tcase_add_test(tc, test_leftover_killed_at_end);
    tcase_add_test(tc, test_worker_killed);
    tcase_add_test(tc, test_upper_py);
    tcase_add_test(tc, test_pipe_failure);
    tcase_add_test(tc, test_free_kills_running);
    tcase_add_test(tc, test_strangers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(exech_suite());
}

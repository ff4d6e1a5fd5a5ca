/* Unit tests of worker/supervisor: N children kept alive, kill -9 and its
 * scratch directory, crash-loop backoff, SIGTERM / SIGINT with and without
 * the grace running out, SIGQUIT, SIGHUP (new children READY first, and the
 * bound when they never are), SIGTTIN / SIGTTOU, RECYCLE, start failures
 * and supervisor_tell without a supervisor.
 *
 * Each test forks a process that runs supervisor_run, with its log in
 * DIR/supervisor.log. The children run kid_main, whose behaviour the test
 * picks, and append one line per event to DIR/events (O_APPEND, one write
 * per line, so the file's order is the order things happened in):
 *   "<monotonic ms> <event> <slot> <generation> <pid> <scratch dir>"
 * The test polls these two files with bounded deadlines. At the end every
 * test checks that the supervisor returned 0 with no child left unreaped and
 * its signals given back, that the scratch root is empty and that no child
 * it ever started is still alive.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define TEST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_LSAN 1
#endif
#endif
#ifdef TEST_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#include "clock.h"
#include "harness.h"
#include "log.h"
#include "sig.h"
#include "supervisor.h"
#include "unit.h"

/* ---- children -------------------------------------------------------------
 * What kid_main does, by kind. "serve" means: block SIGTERM, log "start",
 * log "ready" and tell READY, wait for SIGTERM, log "term", exit 0.
 */
typedef enum {
    KID_SERVE,
    KID_EXIT,        /* log "start" and exit 3 at once */
    KID_DEAF,        /* ignore SIGTERM, log "start" and "ready", wait to be killed */
    KID_RECYCLE,     /* slot 0's first child: "start", RECYCLE, wait for its
                        replacement's "start", "exit" (or "gaveup" after 10 s);
                        the others serve */
    KID_SLOW_READY,  /* the first `processes` children serve; later ones wait
                        300 ms before "ready" */
    KID_NEVER_READY, /* the first `processes` children serve; later ones never
                        tell READY */
} kid_kind;

typedef struct fixture {
    char dir[256]; /* shorter than the paths below, which hold it */
    char events[PATH_MAX];
    char log[PATH_MAX];
    char scratch[PATH_MAX]; /* scratch_root */
    kid_kind kind;
    int processes;
    pid_t sup;
} fixture;

static fixture fx;

typedef struct event {
    uint64_t ms;
    char name[16];
    int slot;
    unsigned gen;
    long pid;
    char scratch[256];
} event;

typedef struct event_log {
    event e[256];
    int n;
} event_log;

static event_log evs;

/* events_load: the events written so far into log. Returns the count. No
 * assertions: children use it too. */
static int events_load(const fixture *f, event_log *log)
{
    log->n = 0;
    FILE *fp = fopen(f->events, "r");
    if (fp == NULL)
        return 0;
    char line[512];
    while (log->n < (int)(sizeof log->e / sizeof log->e[0]) && fgets(line, sizeof line, fp)) {
        event *e = &log->e[log->n];
        unsigned long long ms;
        if (sscanf(line, "%llu %15s %d %u %ld %255s", &ms, e->name, &e->slot, &e->gen, &e->pid,
                   e->scratch) == 6) {
            e->ms = ms;
            log->n++;
        }
    }
    fclose(fp);
    return log->n;
}

/* events_find: the index of the nth (from 0) event called name in slot
 * (-1: any slot), or -1. */
static int events_find(const event_log *log, const char *name, int slot, int nth)
{
    for (int i = 0; i < log->n; i++) {
        const event *e = &log->e[i];
        if (strcmp(e->name, name) == 0 && (slot < 0 || e->slot == slot) && nth-- == 0)
            return i;
    }
    return -1;
}

static int events_count(const event_log *log, const char *name, int slot)
{
    int n = 0;
    while (events_find(log, name, slot, n) >= 0)
        n++;
    return n;
}

/* events_of: the index of the event called name written by pid, or -1. */
static int events_of(const event_log *log, const char *name, long pid)
{
    for (int i = 0; i < log->n; i++)
        if (log->e[i].pid == pid && strcmp(log->e[i].name, name) == 0)
            return i;
    return -1;
}

static void kid_event(const fixture *f, const child_env *env, const char *name)
{
    char line[512];
    int n = snprintf(line, sizeof line, "%llu %s %d %u %ld %s\n",
                     (unsigned long long)clock_mono_ms(), name, env->slot, env->generation,
                     (long)getpid(), env->scratch_dir);
    int fd = open(f->events, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        (void)!write(fd, line, (size_t)n);
        close(fd);
    }
}

/* kid_litter: leaves what task code might in the scratch directory: a file,
 * and a directory nobody may read or write, with a file inside. */
static void kid_litter(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/file", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0400);
    if (fd >= 0)
        close(fd);
    snprintf(path, sizeof path, "%s/locked", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/locked/inner", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    snprintf(path, sizeof path, "%s/locked", dir);
    chmod(path, 0);
}

/* kid_env_ok: TMPDIR is the scratch directory, a directory of mode 0700. */
static int kid_env_ok(const child_env *env)
{
    const char *tmp = getenv("TMPDIR");
    struct stat st;
    return tmp != NULL && strcmp(tmp, env->scratch_dir) == 0 && stat(tmp, &st) == 0 &&
           S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700;
}

/* kid_serve: the "serve" behaviour; ready_delay_ms < 0: never READY. */
static int kid_serve(const fixture *f, const child_env *env, int ready_delay_ms)
{
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, NULL);
    kid_event(f, env, "start");
    if (ready_delay_ms >= 0) {
        harness_nap_ms(ready_delay_ms); /* the behaviour under test, not a synchronization */
        kid_event(f, env, "ready");
        supervisor_tell(env, SUPERVISOR_READY);
    }
    int signo;
    sigwait(&term, &signo);
    kid_event(f, env, "term");
    return 0;
}

/* kid_recycle: slot 0's first child under KID_RECYCLE. */
static int kid_recycle(const fixture *f, const child_env *env)
{
    kid_event(f, env, "start");
    if (supervisor_tell(env, SUPERVISOR_RECYCLE) != 0)
        return 4;
    kid_event(f, env, "recycle");
    static event_log seen; /* the child's own copy */
    uint64_t deadline = clock_mono_ms() + 10000;
    while (clock_mono_ms() < deadline) {
        events_load(f, &seen);
        for (int i = 0; i < seen.n; i++) {
            if (seen.e[i].slot == 0 && seen.e[i].pid != (long)getpid() &&
                strcmp(seen.e[i].name, "start") == 0) {
                kid_event(f, env, "exit");
                return 0;
            }
        }
        harness_nap_ms(5);
    }
    kid_event(f, env, "gaveup");
    return 0;
}

static int kid_main(const child_env *env, void *arg)
{
    const fixture *f = arg;
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test must leave no child behind */
    log_init("worker", LOG_WARN);
    if (!kid_env_ok(env))
        kid_event(f, env, "badenv");
    kid_litter(env->scratch_dir);
    bool later = env->generation > (unsigned)f->processes;

    switch (f->kind) {
    case KID_EXIT:
        kid_event(f, env, "start");
        return 3;
    case KID_DEAF:
        sig_ignore(SIGTERM);
        kid_event(f, env, "start");
        kid_event(f, env, "ready");
        supervisor_tell(env, SUPERVISOR_READY);
        for (;;)
            pause();
    case KID_RECYCLE:
        if (env->slot == 0 && env->generation == 1)
            return kid_recycle(f, env);
        return kid_serve(f, env, 0);
    case KID_SLOW_READY:
        return kid_serve(f, env, later ? 300 : 0);
    case KID_NEVER_READY:
        return kid_serve(f, env, later ? -1 : 0);
    case KID_SERVE:
        break;
    }
    return kid_serve(f, env, 0);
}

/* ---- the supervisor process ---------------------------------------------- */

#define SUP_UNREAPED 99 /* supervisor_run returned with a child left */
#define SUP_SIGNALS 98  /* ... or without giving back its signals */
#define SUP_LEAKED 96   /* ... or with memory not freed (sanitizer builds) */

/* sup_given_back: SIGTERM's action and the signal mask are back to what
 * they were before supervisor_run. */
static int sup_given_back(const struct sigaction *before, const sigset_t *mask_before)
{
    struct sigaction sa;
    sigset_t mask;
    if (sigaction(SIGTERM, NULL, &sa) != 0 || sa.sa_handler != before->sa_handler ||
        sigprocmask(SIG_SETMASK, NULL, &mask) != 0)
        return 0;
    for (int signo = 1; signo < NSIG; signo++)
        if (sigismember(&mask, signo) != sigismember(mask_before, signo))
            return 0;
    return 1;
}

static void sup_start_with(fixture *f, const supervisor_opts *o)
{
    fflush(NULL);
    f->sup = fork();
    ck_assert_int_ge(f->sup, 0);
    if (f->sup > 0)
        return;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(f->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
        _exit(97);
    log_set_level(LOG_DEBUG);
    struct sigaction before;
    sigset_t mask_before;
    sigaction(SIGTERM, NULL, &before);
    sigprocmask(SIG_SETMASK, NULL, &mask_before);
    int rc = supervisor_run(o);
    if (waitpid(-1, NULL, WNOHANG) != -1 || errno != ECHILD)
        rc = SUP_UNREAPED;
    else if (!sup_given_back(&before, &mask_before))
        rc = SUP_SIGNALS;
#ifdef TEST_LSAN
    /* _exit skips the exit-time leak check: ask for it here. */
    if (rc == SUPERVISOR_EXIT_OK && __lsan_do_recoverable_leak_check() != 0)
        rc = SUP_LEAKED;
#endif
    _exit(rc);
}

static void sup_start(fixture *f, kid_kind kind, int processes, uint64_t grace_ms,
                      uint64_t ready_timeout_ms)
{
    f->kind = kind;
    f->processes = processes;
    supervisor_opts o = {
        .processes = processes,
        .grace_ms = grace_ms,
        .ready_timeout_ms = ready_timeout_ms,
        .scratch_root = f->scratch,
        .child_main = kid_main,
        .arg = f,
    };
    sup_start_with(f, &o);
}

/* sup_wait_exit: waits up to ms for the supervisor process; its exit code. */
static int sup_wait_exit(fixture *f, int ms)
{
    int status;
    int r = harness_wait(f->sup, ms, &status);
    if (r != 1) {
        harness_kill(f->sup, NULL);
        f->sup = 0;
        ck_abort_msg("the supervisor did not return within %d ms", ms);
    }
    f->sup = 0;
    ck_assert_msg(WIFEXITED(status), "the supervisor died of signal %d", WTERMSIG(status));
    return WEXITSTATUS(status);
}

/* log_count: how many times needle occurs in the supervisor's log. */
static int log_count(const fixture *f, const char *needle)
{
    FILE *fp = fopen(f->log, "r");
    if (fp == NULL)
        return 0;
    int n = 0;
    char line[4096];
    while (fgets(line, sizeof line, fp))
        for (const char *p = line; (p = strstr(p, needle)) != NULL; p += strlen(needle))
            n++;
    fclose(fp);
    return n;
}

/* WAIT_FOR: polls cond every 5 ms, failing the test after ms. */
#define WAIT_FOR(cond, ms, ...)                                                        \
    do {                                                                              \
        uint64_t wait_deadline_ = clock_mono_ms() + (ms);                             \
        while (!(cond)) {                                                             \
            if (clock_mono_ms() > wait_deadline_)                                     \
                ck_abort_msg("timed out waiting for " __VA_ARGS__);                  \
            harness_nap_ms(5);                                                        \
        }                                                                             \
    } while (0)

#define WAIT_EVENTS(name, slot, count, ms)                                            \
    WAIT_FOR((events_load(&fx, &evs), events_count(&evs, (name), (slot)) >= (count)), \
             (ms), "%d '%s' events in slot %d", (count), (name), (slot))

/* sup_start_ready: sup_start, then waits for its processes children to be
 * READY. */
static void sup_start_ready(kid_kind kind, int processes, uint64_t grace_ms,
                            uint64_t ready_timeout_ms)
{
    sup_start(&fx, kind, processes, grace_ms, ready_timeout_ms);
    WAIT_EVENTS("ready", -1, processes, 10000);
}

static int dir_entries(const char *path)
{
    DIR *d = opendir(path);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* assert_clean: what every test ends with, once the supervisor returned. */
static void assert_clean(void)
{
    ck_assert_int_eq(dir_entries(fx.scratch), 0);
    events_load(&fx, &evs);
    ck_assert_int_eq(events_count(&evs, "badenv", -1), 0);
    for (int i = 0; i < evs.n; i++)
        ck_assert_msg(kill((pid_t)evs.e[i].pid, 0) == -1 && errno == ESRCH,
                      "child pid %ld is still alive", evs.e[i].pid);
}

/* sup_stop: sends signo to the supervisor and checks that it returns 0
 * within ms and leaves everything clean. Returns how long it took. */
static uint64_t sup_stop(int signo, int ms)
{
    uint64_t t0 = clock_mono_ms();
    ck_assert_int_eq(kill(fx.sup, signo), 0);
    int rc = sup_wait_exit(&fx, ms);
    uint64_t took = clock_mono_ms() - t0;
    ck_assert_int_eq(rc, SUPERVISOR_EXIT_OK);
    assert_clean();
    return took;
}

static void setup(void)
{
    ck_assert_int_eq(harness_tmpdir(fx.dir, sizeof fx.dir), 0);
    snprintf(fx.events, sizeof fx.events, "%s/events", fx.dir);
    snprintf(fx.log, sizeof fx.log, "%s/supervisor.log", fx.dir);
    snprintf(fx.scratch, sizeof fx.scratch, "%s/scratch", fx.dir);
    ck_assert_int_eq(mkdir(fx.scratch, 0700), 0);
    fx.sup = 0;
}

static void teardown(void)
{
    if (fx.sup > 0)
        harness_kill(fx.sup, NULL);
    harness_rmtree(fx.dir);
}

/* ---- tests ---------------------------------------------------------------- */

START_TEST(test_keeps_children_alive)
{
    sup_start_ready(KID_SERVE, 3, 10000, 0);
    for (int slot = 0; slot < 3; slot++)
        ck_assert_int_eq(events_count(&evs, "start", slot), 1);

    int victim = events_find(&evs, "start", 1, 0);
    long pid = evs.e[victim].pid;
    char scratch[256];
    snprintf(scratch, sizeof scratch, "%s", evs.e[victim].scratch);
    struct stat st;
    ck_assert_int_eq(stat(scratch, &st), 0);
    ck_assert_int_eq(strncmp(scratch, fx.scratch, strlen(fx.scratch)), 0);

    ck_assert_int_eq(kill((pid_t)pid, SIGKILL), 0);
    WAIT_EVENTS("start", 1, 2, 10000);
    ck_assert_int_ne(evs.e[events_find(&evs, "start", 1, 1)].pid, pid);
    ck_assert_int_eq(events_count(&evs, "start", 0), 1);
    ck_assert_int_eq(events_count(&evs, "start", 2), 1);
    /* The respawn comes after the reap, which removed the directory. */
    ck_assert_int_eq(stat(scratch, &st), -1);
    ck_assert_int_eq(errno, ENOENT);
    char line[128];
    snprintf(line, sizeof line, "child 1 (pid %ld) killed by signal 9 (SIGKILL)", pid);
    ck_assert_int_eq(log_count(&fx, line), 1);

    sup_stop(SIGTERM, 10000);
    ck_assert_int_eq(events_count(&evs, "term", -1), 3);
    ck_assert_int_eq(log_count(&fx, ") started in "), 4);
}
END_TEST

START_TEST(test_crash_loop_backs_off)
{
    sup_start(&fx, KID_EXIT, 1, 10000, 0);
    WAIT_EVENTS("start", 0, 5, 10000);
    /* 100, 200, 400, 800 ms between spawns; the upper bound is loose for
     * slow sanitizer builds, the lower one is what backing off means. */
    for (int i = 0; i < 4; i++) {
        uint64_t gap = evs.e[i + 1].ms - evs.e[i].ms;
        uint64_t want = 100u << i;
        ck_assert_msg(gap >= want && gap < want + 1000, "gap %d is %llu ms, wanted %llu", i,
                      (unsigned long long)gap, (unsigned long long)want);
    }
    ck_assert_int_ge(log_count(&fx, "child 0 (pid "), 5);
    ck_assert_int_ge(log_count(&fx, "exited with status 3"), 4);
    /* A stop during a delay does not wait for it. */
    ck_assert_uint_lt(sup_stop(SIGTERM, 10000), 1000);
}
END_TEST

static const int graceful_signals[] = { SIGTERM, SIGINT };

START_TEST(test_graceful_stop)
{
    sup_start_ready(KID_SERVE, 2, 10000, 0);
    /* Children that exit on SIGTERM end it long before the grace. */
    ck_assert_uint_lt(sup_stop(graceful_signals[_i], 5000), 5000);
    ck_assert_int_eq(events_count(&evs, "term", -1), 2);
    ck_assert_int_eq(log_count(&fx, "SIGKILL"), 0);
    ck_assert_int_eq(log_count(&fx, "exited with status 0"), 2);
}
END_TEST

START_TEST(test_grace_runs_out)
{
    sup_start_ready(KID_DEAF, 1, 300, 0);
    uint64_t took = sup_stop(SIGTERM, 10000);
    ck_assert_uint_ge(took, 300);
    ck_assert_int_eq(log_count(&fx, "killed by signal 9 (SIGKILL)"), 1);
}
END_TEST

START_TEST(test_sigquit_kills_at_once)
{
    /* The children ignore SIGTERM and the grace is long: only a SIGKILL
     * sent at once ends this test in time. */
    sup_start_ready(KID_DEAF, 2, 60000, 0);
    ck_assert_uint_lt(sup_stop(SIGQUIT, 10000), 10000);
    ck_assert_int_eq(log_count(&fx, "killed by signal 9 (SIGKILL)"), 2);
    ck_assert_int_eq(log_count(&fx, "SIGTERM ("), 0);
}
END_TEST

START_TEST(test_sighup_new_children_first)
{
    sup_start_ready(KID_SLOW_READY, 2, 10000, 0);
    long old[2] = { evs.e[events_find(&evs, "start", -1, 0)].pid,
                    evs.e[events_find(&evs, "start", -1, 1)].pid };
    ck_assert_int_eq(kill(fx.sup, SIGHUP), 0);
    WAIT_EVENTS("term", -1, 2, 10000);
    WAIT_FOR(log_count(&fx, "exited with status 0") == 2, 10000, "the old children to exit");

    events_load(&fx, &evs);
    /* Both new children started before any old one was stopped, and no old
     * child was stopped before as many new ones were READY. */
    int first_term = events_find(&evs, "term", -1, 0);
    ck_assert_int_eq(events_of(&evs, "term", old[0]) >= 0 && events_of(&evs, "term", old[1]) >= 0,
                     1);
    int starts = 0, readies = 0, terms = 0;
    for (int i = 0; i < evs.n; i++) {
        const event *e = &evs.e[i];
        bool is_new = e->gen > 2;
        starts += is_new && strcmp(e->name, "start") == 0 && i < first_term;
        readies += is_new && strcmp(e->name, "ready") == 0;
        terms += !is_new && strcmp(e->name, "term") == 0;
        ck_assert_msg(terms <= readies, "an old child got SIGTERM before a new one was ready");
    }
    ck_assert_int_eq(starts, 2);

    sup_stop(SIGTERM, 10000);
    ck_assert_int_eq(events_count(&evs, "term", -1), 4);
    ck_assert_int_eq(log_count(&fx, ") started in "), 4); /* old ones not respawned */
}
END_TEST

START_TEST(test_sighup_bounded_wait)
{
    sup_start_ready(KID_NEVER_READY, 1, 10000, 400);
    long old = evs.e[events_find(&evs, "start", 0, 0)].pid;
    uint64_t hup_ms = clock_mono_ms();
    ck_assert_int_eq(kill(fx.sup, SIGHUP), 0);
    WAIT_EVENTS("term", 0, 1, 10000);
    int term = events_find(&evs, "term", 0, 0);
    ck_assert_int_eq(evs.e[term].pid, old);
    ck_assert_uint_ge(evs.e[term].ms, hup_ms + 400);
    ck_assert_int_lt(events_find(&evs, "start", 0, 1), term); /* the new child came first */
    ck_assert_int_eq(log_count(&fx, "its successor was not ready in time"), 1);
    sup_stop(SIGTERM, 10000);
}
END_TEST

START_TEST(test_ttin_ttou)
{
    sup_start_ready(KID_SERVE, 2, 10000, 0);

    ck_assert_int_eq(kill(fx.sup, SIGTTIN), 0);
    WAIT_EVENTS("ready", 2, 1, 10000);

    ck_assert_int_eq(kill(fx.sup, SIGTTOU), 0); /* the newest, in slot 2, goes */
    WAIT_EVENTS("term", 2, 1, 10000);
    WAIT_FOR(log_count(&fx, "exited with status 0") == 1, 10000, "slot 2 to exit");
    ck_assert_int_eq(kill(fx.sup, SIGTTOU), 0);
    WAIT_EVENTS("term", 1, 1, 10000);
    ck_assert_int_eq(kill(fx.sup, SIGTTOU), 0); /* one child stays */
    WAIT_FOR(log_count(&fx, "already down to one child") == 1, 10000, "the third SIGTTOU");
    events_load(&fx, &evs);
    ck_assert_int_eq(events_count(&evs, "term", 0), 0);

    sup_stop(SIGTERM, 10000);
    ck_assert_int_eq(events_count(&evs, "term", 0), 1);
    ck_assert_int_eq(log_count(&fx, ") started in "), 3);
}
END_TEST

START_TEST(test_recycle_replacement_first)
{
    sup_start(&fx, KID_RECYCLE, 2, 10000, 0);
    WAIT_FOR((events_load(&fx, &evs), events_find(&evs, "exit", 0, 0) >= 0 ||
                                          events_find(&evs, "gaveup", 0, 0) >= 0),
             15000, "the recycled child to leave");
    int exit_at = events_find(&evs, "exit", 0, 0);
    ck_assert_msg(exit_at >= 0, "the replacement did not start while the recycled child ran");
    long recycled = evs.e[exit_at].pid;
    /* N + 1 children ran side by side: both starts of slot 0 and slot 1's
     * came before the recycled child left. */
    ck_assert_int_lt(events_find(&evs, "start", 0, 1), exit_at);
    ck_assert_int_lt(events_find(&evs, "start", 1, 0), exit_at);
    char line[128];
    snprintf(line, sizeof line, "child 0 (pid %ld) exited with status 0", recycled);
    WAIT_FOR(log_count(&fx, line) == 1, 10000, "the recycled child to be reaped");

    sup_stop(SIGTERM, 10000);
    ck_assert_int_eq(log_count(&fx, ") started in "), 3); /* not respawned */
    ck_assert_int_eq(events_count(&evs, "term", -1), 2);
    ck_assert_int_eq(events_of(&evs, "term", recycled), -1);
}
END_TEST

START_TEST(test_cannot_start)
{
    /* A scratch root that does not exist. */
    snprintf(fx.scratch, sizeof fx.scratch, "%s/missing/deeper", fx.dir);
    sup_start(&fx, KID_SERVE, 2, 1000, 0);
    ck_assert_int_eq(sup_wait_exit(&fx, 10000), SUPERVISOR_EXIT_START);
    ck_assert_int_ge(log_count(&fx, "mkdtemp"), 1);

    /* No process to keep. */
    supervisor_opts none = { .processes = 0, .child_main = kid_main, .arg = &fx };
    sup_start_with(&fx, &none);
    ck_assert_int_eq(sup_wait_exit(&fx, 10000), SUPERVISOR_EXIT_START);
    events_load(&fx, &evs);
    ck_assert_int_eq(evs.n, 0);
}
END_TEST

START_TEST(test_tell_without_supervisor)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    child_env env = { .slot = 0, .generation = 1, .scratch_dir = "/", .ctl_fd = sv[1] };
    ck_assert_int_eq(supervisor_tell(&env, SUPERVISOR_READY), 0);
    char byte = 0;
    ck_assert_int_eq(recv(sv[0], &byte, 1, 0), 1);
    ck_assert_int_eq(byte, 'R');
    close(sv[0]);
    /* EPIPE, and no SIGPIPE to die of. */
    ck_assert_int_eq(supervisor_tell(&env, SUPERVISOR_RECYCLE), -1);
    ck_assert_int_eq(errno, EPIPE);
    close(sv[1]);
}
END_TEST

static Suite *supervisor_suite(void)
{
    Suite *s = suite_create("supervisor");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_keeps_children_alive);
    tcase_add_test(tc, test_crash_loop_backs_off);
    tcase_add_loop_test(tc, test_graceful_stop, 0, 2);
    tcase_add_test(tc, test_grace_runs_out);
    tcase_add_test(tc, test_sigquit_kills_at_once);
    tcase_add_test(tc, test_sighup_new_children_first);
    tcase_add_test(tc, test_sighup_bounded_wait);
    tcase_add_test(tc, test_ttin_ttou);
    tcase_add_test(tc, test_recycle_replacement_first);
    tcase_add_test(tc, test_cannot_start);
    tcase_add_test(tc, test_tell_without_supervisor);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(supervisor_suite());
}

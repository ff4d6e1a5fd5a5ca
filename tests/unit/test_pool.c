/* Unit tests of worker/pool: 10,000 jobs over 4 threads, each run once off
 * the loop and completed once on it; 4 jobs that can only finish together
 * (proof that 4 threads run at once); FIFO start with one thread; the
 * queued and running counters; pool_free with jobs still queued; blocked
 * signals and thread names in the pool threads; work submitted from done
 * callbacks; bad arguments; a pthread_create failure part way through
 * pool_new.
 *
 * Every wait is bounded: a broken pool fails a test instead of hanging it. */
#define _GNU_SOURCE /* pthread_getname_np */
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "pool.h"
#include "unit.h"

#define WAIT_MS 10000 /* how long any wait may take before the test fails */

/* ---- A gate for jobs -----------------------------------------------------
 * Jobs arrive at a gate and wait until the test opens it, or, with
 * need > 0, until need jobs have arrived (a barrier). Waits are bounded by
 * WAIT_MS on the monotonic clock. */

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int arrived;
    int need;   /* 0: wait for gate_open */
    bool open;
} gate;

static void gate_init(gate *g, int need)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&g->mu, NULL);
    g->arrived = 0;
    g->need = need;
    g->open = false;
}

static struct timespec deadline_in(int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* gate_wait_for: waits on g's lock (held) until done(g); false on timeout. */
static bool gate_wait_for(gate *g, bool (*done)(const gate *g, int n), int n)
{
    struct timespec until = deadline_in(WAIT_MS);
    while (!done(g, n))
        if (pthread_cond_timedwait(&g->cv, &g->mu, &until) == ETIMEDOUT)
            return done(g, n);
    return true;
}

static bool gate_passable(const gate *g, int n)
{
    (void)n;
    return g->open || (g->need > 0 && g->arrived >= g->need);
}

static bool gate_reached(const gate *g, int n)
{
    return g->arrived >= n;
}

/* gate_pass: arrives and waits; false if the gate did not open in time. */
static bool gate_pass(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->arrived++;
    pthread_cond_broadcast(&g->cv);
    bool ok = gate_wait_for(g, gate_passable, 0);
    pthread_mutex_unlock(&g->mu);
    return ok;
}

/* gate_await: waits until n jobs arrived; false on timeout. */
static bool gate_await(gate *g, int n)
{
    pthread_mutex_lock(&g->mu);
    bool ok = gate_wait_for(g, gate_reached, n);
    pthread_mutex_unlock(&g->mu);
    return ok;
}

static void gate_open(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* ---- Jobs and the loop ---------------------------------------------------
 * Each test runs in its own process (Check forks), so the loop's state is
 * one static. */

typedef struct job {
    int id;
    atomic_int runs;     /* fn calls */
    bool fn_on_loop;     /* fn ran on the loop thread: wrong */
    int dones;           /* done calls; loop thread only */
    bool done_off_loop;  /* done ran off the loop thread: wrong */
    gate *gate;          /* gate_job waits here */
    bool gate_passed;
    sigset_t mask;       /* mask_job: the thread's signal mask */
    char name[16];       /* mask_job: the thread's name */
} job;

static struct {
    struct event_base *base;
    pool *p;
    pthread_t loop;
    int delivered;       /* done callbacks run */
    int expect;          /* the loop stops once delivered reaches it */
    atomic_int started;  /* fn calls, in start order */
    int start_order[512];
    int done_order[512];
    job *chain;          /* chain_done: submit the next of these */
    int chain_len;
} T;

static void setup(void)
{
    memset(&T, 0, sizeof T);
    T.loop = pthread_self();
    T.base = event_base_new();
    ck_assert_ptr_nonnull(T.base);
}

static void teardown(void)
{
    event_base_free(T.base);
}

static job *jobs_new(int n)
{
    job *j = calloc((size_t)n, sizeof *j);
    ck_assert_ptr_nonnull(j);
    for (int i = 0; i < n; i++)
        j[i].id = i;
    return j;
}

/* job_enter: what every fn does first. */
static void job_enter(job *j)
{
    if (pthread_equal(pthread_self(), T.loop))
        j->fn_on_loop = true;
    atomic_fetch_add(&j->runs, 1);
    int slot = atomic_fetch_add(&T.started, 1);
    if (slot < (int)(sizeof T.start_order / sizeof T.start_order[0]))
        T.start_order[slot] = j->id;
}

static void count_job(void *arg)
{
    job_enter(arg);
}

static void gate_job(void *arg)
{
    job *j = arg;
    job_enter(j);
    j->gate_passed = gate_pass(j->gate);
}

static void mask_job(void *arg)
{
    job *j = arg;
    job_enter(j);
    pthread_sigmask(SIG_BLOCK, NULL, &j->mask);
    pthread_getname_np(pthread_self(), j->name, sizeof j->name);
    j->gate_passed = gate_pass(j->gate); /* keeps each job on its own thread */
}

static void job_done(void *arg)
{
    job *j = arg;
    if (!pthread_equal(pthread_self(), T.loop))
        j->done_off_loop = true;
    j->dones++;
    if (T.delivered < (int)(sizeof T.done_order / sizeof T.done_order[0]))
        T.done_order[T.delivered] = j->id;
    if (++T.delivered == T.expect)
        event_base_loopbreak(T.base);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    event_base_loopbreak(T.base);
}

/* run_until_delivered: runs the loop until n done callbacks ran in all, at
 * most WAIT_MS. Returns whether they did. */
static bool run_until_delivered(int n)
{
    if (T.delivered >= n)
        return true;
    T.expect = n;
    struct event *timer = evtimer_new(T.base, on_timeout, NULL);
    struct timeval tv = { WAIT_MS / 1000, 0 };
    evtimer_add(timer, &tv);
    event_base_dispatch(T.base);
    event_free(timer);
    return T.delivered >= n;
}

static pool *pool_start(int nthreads)
{
    char err[256] = "";
    pool *p = pool_new(T.base, nthreads, err, sizeof err);
    ck_assert_msg(p != NULL, "pool_new: %s", err);
    ck_assert_int_eq(pool_threads(p), nthreads);
    T.p = p;
    return p;
}

/* check_once: every job ran once off the loop and completed once on it. */
static void check_once(const job *j, int n)
{
    for (int i = 0; i < n; i++) {
        if (atomic_load(&j[i].runs) != 1 || j[i].dones != 1)
            ck_abort_msg("job %d: fn ran %d times, done %d times", i, atomic_load(&j[i].runs),
                         j[i].dones);
        if (j[i].fn_on_loop || j[i].done_off_loop)
            ck_abort_msg("job %d: fn on the loop thread %d, done off it %d", i, j[i].fn_on_loop,
                         j[i].done_off_loop);
    }
}

/* finish: frees the pool (after which every done must have run), then
 * checks and frees the jobs. */
static void finish(pool *p, job *j, int n)
{
    pool_free(p);
    check_once(j, n);
    free(j);
}

/* submit_behind_gate: n jobs with done, the first held at g (one thread
 * busy), the others queued behind it once this returns. */
static job *submit_behind_gate(pool *p, gate *g, int n, pool_done_fn done)
{
    gate_init(g, 0);
    job *j = jobs_new(n);
    j[0].gate = g;
    ck_assert_int_eq(pool_submit(p, &j[0], gate_job, done), 0);
    for (int i = 1; i < n; i++)
        ck_assert_int_eq(pool_submit(p, &j[i], count_job, done), 0);
    ck_assert(gate_await(g, 1));
    return j;
}

/* submit_at_gate: n jobs of fn, each stopping at g, which lets them pass
 * once need of them arrived (a barrier) or, with need 0, when opened. */
static job *submit_at_gate(pool *p, gate *g, int n, int need, pool_fn fn)
{
    gate_init(g, need);
    job *j = jobs_new(n);
    for (int i = 0; i < n; i++) {
        j[i].gate = g;
        ck_assert_int_eq(pool_submit(p, &j[i], fn, job_done), 0);
    }
    return j;
}

/* ---- Tests ------------------------------------------------------------- */

START_TEST(ten_thousand_jobs)
{
    enum { N = 10000 };
    pool *p = pool_start(4);
    job *j = jobs_new(N);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(pool_submit(p, &j[i], count_job, job_done), 0);
    ck_assert(run_until_delivered(N));
    ck_assert_int_eq(T.delivered, N);
    ck_assert_uint_eq(pool_queued(p), 0);
    ck_assert_uint_eq(pool_running(p), 0);
    finish(p, j, N);
    ck_assert_int_eq(T.delivered, N); /* nothing delivered twice by pool_free */
}
END_TEST

START_TEST(four_threads_run_at_once)
{
    /* Each job waits for all four: with fewer threads running at once they
     * time out and report it instead of passing. */
    pool *p = pool_start(4);
    gate barrier;
    job *j = submit_at_gate(p, &barrier, 4, 4, gate_job);
    ck_assert(run_until_delivered(4));
    for (int i = 0; i < 4; i++)
        ck_assert_msg(j[i].gate_passed, "job %d did not meet the other three", i);
    finish(p, j, 4);
}
END_TEST

START_TEST(fifo_with_one_thread)
{
    /* The first job holds the thread until the rest are queued behind it. */
    enum { N = 200 };
    pool *p = pool_start(1);
    gate g;
    job *j = submit_behind_gate(p, &g, N, job_done);
    gate_open(&g);
    ck_assert(run_until_delivered(N));
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(T.start_order[i], i);
        ck_assert_int_eq(T.done_order[i], i);
    }
    finish(p, j, N);
}
END_TEST

START_TEST(counters)
{
    pool *p = pool_start(2);
    ck_assert_uint_eq(pool_queued(p), 0);
    ck_assert_uint_eq(pool_running(p), 0);
    gate g;
    job *j = submit_at_gate(p, &g, 5, 0, gate_job);
    ck_assert(gate_await(&g, 2)); /* both threads hold a job at the gate */
    ck_assert_uint_eq(pool_running(p), 2);
    ck_assert_uint_eq(pool_queued(p), 3);
    gate_open(&g);
    ck_assert(run_until_delivered(5));
    ck_assert_uint_eq(pool_running(p), 0);
    ck_assert_uint_eq(pool_queued(p), 0);
    finish(p, j, 5);
}
END_TEST

static int refused_errno;
static int refused_submits;

/* refusing_done: a done callback run by pool_free, which submits more. */
static void refusing_done(void *arg)
{
    job_done(arg);
    if (pool_submit(T.p, arg, count_job, job_done) < 0) {
        refused_submits++;
        refused_errno = errno;
    }
}

START_TEST(free_runs_queued_jobs)
{
    /* The loop never runs here: every completion is delivered by pool_free. */
    enum { N = 51 };
    pool *p = pool_start(1);
    gate g;
    job *j = submit_behind_gate(p, &g, N, refusing_done);
    ck_assert_uint_eq(pool_queued(p), N - 1);
    ck_assert_uint_eq(pool_running(p), 1);
    ck_assert_int_eq(T.delivered, 0);
    gate_open(&g);
    finish(p, j, N);
    ck_assert_int_eq(T.delivered, N);
    ck_assert_int_eq(refused_submits, N);
    ck_assert_int_eq(refused_errno, ESHUTDOWN);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(T.start_order[i], i);
}
END_TEST

static bool blocked_in(const sigset_t *mask, int signo)
{
    return sigismember(mask, signo) == 1;
}

START_TEST(threads_block_signals_and_have_names)
{
    sigset_t before, after;
    pthread_sigmask(SIG_BLOCK, NULL, &before);
    ck_assert(!blocked_in(&before, SIGTERM));
    pool *p = pool_start(3);
    pthread_sigmask(SIG_BLOCK, NULL, &after);
    /* pool_new blocks signals around pthread_create: the loop's mask is back. */
    for (int s = 1; s < NSIG; s++)
        ck_assert_int_eq(sigismember(&before, s), sigismember(&after, s));

    gate barrier;
    job *j = submit_at_gate(p, &barrier, 3, 3, mask_job);
    ck_assert(run_until_delivered(3));
    static const int blocked[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD,
                                   SIGPIPE, SIGALRM };
    static const int crashes[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };
    bool named[4] = { false };
    for (int i = 0; i < 3; i++) {
        ck_assert(j[i].gate_passed);
        for (size_t k = 0; k < sizeof blocked / sizeof blocked[0]; k++)
            ck_assert_msg(blocked_in(&j[i].mask, blocked[k]), "signal %d not blocked", blocked[k]);
        for (size_t k = 0; k < sizeof crashes / sizeof crashes[0]; k++)
            ck_assert_msg(!blocked_in(&j[i].mask, crashes[k]), "crash signal %d blocked",
                          crashes[k]);
        int n = 0;
        ck_assert_int_eq(sscanf(j[i].name, "trident-exec-%d", &n), 1);
        ck_assert(n >= 1 && n <= 3 && !named[n]); /* three threads, three names */
        named[n] = true;
    }
    finish(p, j, 3);
}
END_TEST

/* chain_done: each completion submits the next job, from the loop. */
static void chain_done(void *arg)
{
    job *j = arg;
    job_done(j);
    if (j->id + 1 < T.chain_len)
        ck_assert_int_eq(pool_submit(T.p, &T.chain[j->id + 1], count_job, chain_done), 0);
}

START_TEST(submit_from_done)
{
    enum { N = 300 };
    pool *p = pool_start(2);
    T.chain = jobs_new(N);
    T.chain_len = N;
    ck_assert_int_eq(pool_submit(p, &T.chain[0], count_job, chain_done), 0);
    ck_assert(run_until_delivered(N));
    finish(p, T.chain, N);
    ck_assert_int_eq(T.delivered, N);
}
END_TEST

START_TEST(bad_arguments)
{
    char err[128];
    ck_assert_ptr_null(pool_new(T.base, 0, err, sizeof err));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert(strstr(err, "at least one thread") != NULL);
    ck_assert_ptr_null(pool_new(NULL, 2, NULL, 0)); /* err may be NULL */
    ck_assert_int_eq(errno, EINVAL);

    pool *p = pool_start(1);
    job j = { 0 };
    errno = 0;
    ck_assert_int_eq(pool_submit(p, &j, NULL, job_done), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(pool_submit(p, &j, count_job, NULL), -1);
    ck_assert_uint_eq(pool_queued(p), 0);
    pool_free(p);
    ck_assert_int_eq(atomic_load(&j.runs), 0);
    ck_assert_int_eq(T.delivered, 0);
    pool_free(NULL);
}
END_TEST

/* The sanitizers reserve terabytes of address space, so an address-space
 * limit cannot make pthread_create fail there: that test runs in plain
 * builds only. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TEST_SANITIZED 1
#endif
#endif

#ifndef TEST_SANITIZED
/* proc_status: the number after "<key>:" in /proc/self/status, or -1. */
static long proc_status(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t klen = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':')
            v = strtol(line + klen + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

START_TEST(failed_start_leaves_nothing_running)
{
    /* Room for a few thread stacks, not for 64: pthread_create fails part way
     * and pool_new must stop and join the threads it started. */
    ck_assert_int_eq(proc_status("Threads"), 1);
    long vm_kb = proc_status("VmSize");
    ck_assert_int_gt(vm_kb, 0);
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)(vm_kb + 40 * 1024) * 1024;
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &lim), 0);
    char err[256] = "";
    errno = 0;
    pool *p = pool_new(T.base, 64, err, sizeof err);
    int e = errno;
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &old), 0);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(e, EAGAIN);
    ck_assert_msg(strstr(err, "pthread_create") != NULL, "err: %s", err);
    ck_assert_int_eq(proc_status("Threads"), 1);
}
END_TEST
#endif

int main(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60); /* above WAIT_MS: a stuck test reports its own timeout first */
    tcase_add_test(tc, ten_thousand_jobs);
    tcase_add_test(tc, four_threads_run_at_once);
    tcase_add_test(tc, fifo_with_one_thread);
    tcase_add_test(tc, counters);
    tcase_add_test(tc, free_runs_queued_jobs);
    tcase_add_test(tc, threads_block_signals_and_have_names);
    tcase_add_test(tc, submit_from_done);
    tcase_add_test(tc, bad_arguments);
#ifndef TEST_SANITIZED
    tcase_add_test(tc, failed_start_leaves_nothing_running);
#endif
    suite_add_tcase(s, tc);
    return unit_run(s);
}

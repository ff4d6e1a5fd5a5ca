/* sig: flags set by handlers, ignored and default dispositions, masks in
 * threads, and the crash handler's report in a forked child. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "sig.h"
#include "unit.h"

static volatile sig_atomic_t got_usr1, got_usr2;

static struct sigaction current_action(int signo)
{
    struct sigaction sa;
    ck_assert_int_eq(sigaction(signo, NULL, &sa), 0);
    return sa;
}

START_TEST(test_watch_sets_flag)
{
    ck_assert_int_eq(sig_watch(SIGUSR1, &got_usr1), 0);
    ck_assert_int_eq(sig_watch(SIGUSR2, &got_usr2), 0);
    ck_assert_int_eq(got_usr1, 0);
    raise(SIGUSR1);
    ck_assert_int_eq(got_usr1, 1);
    ck_assert_int_eq(got_usr2, 0);
    raise(SIGUSR2);
    ck_assert_int_eq(got_usr2, 1);
    /* No SA_RESTART: a blocking call comes back with EINTR to look at flags. */
    ck_assert_int_eq(current_action(SIGUSR1).sa_flags & SA_RESTART, 0);
}
END_TEST

START_TEST(test_watch_rejects_bad_arguments)
{
    errno = 0;
    ck_assert_int_eq(sig_watch(0, &got_usr1), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(sig_watch(NSIG, &got_usr1), -1);
    ck_assert_int_eq(sig_watch(SIGUSR1, NULL), -1);
    ck_assert_int_eq(sig_watch(SIGKILL, &got_usr1), -1);
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(test_ignore_and_default)
{
    ck_assert_int_eq(sig_ignore(SIGUSR2), 0);
    ck_assert_ptr_eq(current_action(SIGUSR2).sa_handler, SIG_IGN);
    raise(SIGUSR2); /* would kill the test otherwise */
    ck_assert_int_eq(sig_default(SIGUSR2), 0);
    ck_assert_ptr_eq(current_action(SIGUSR2).sa_handler, SIG_DFL);
    ck_assert_int_eq(sig_ignore(SIGKILL), -1);
}
END_TEST

/* A pool thread blocks everything, a signal aimed at it waits, and arrives
 * once the mask is restored. The barrier orders the steps: no sleeps. */
static pthread_barrier_t barrier;

static void *pool_thread(void *arg)
{
    (void)arg;
    sigset_t old, now, pending;
    ck_assert_int_eq(sig_block_all(&old), 0);
    ck_assert_int_eq(pthread_sigmask(SIG_SETMASK, NULL, &now), 0);
    ck_assert(sigismember(&now, SIGUSR1));
    ck_assert(sigismember(&now, SIGTERM));
    ck_assert(!sigismember(&now, SIGSEGV)); /* faults must still reach the crash handler */
    ck_assert(!sigismember(&now, SIGABRT));
    pthread_barrier_wait(&barrier); /* 1: blocked */
    pthread_barrier_wait(&barrier); /* 2: signal sent */
    ck_assert_int_eq(sigpending(&pending), 0);
    ck_assert(sigismember(&pending, SIGUSR1));
    ck_assert_int_eq(got_usr1, 0);
    ck_assert_int_eq(sig_restore(&old), 0); /* delivered before this returns */
    ck_assert_int_eq(got_usr1, 1);
    return NULL;
}

START_TEST(test_blocked_in_thread)
{
    ck_assert_int_eq(sig_watch(SIGUSR1, &got_usr1), 0);
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, pool_thread, NULL), 0);
    pthread_barrier_wait(&barrier);
    ck_assert_int_eq(pthread_kill(t, SIGUSR1), 0);
    pthread_barrier_wait(&barrier);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&barrier);
    ck_assert_int_eq(got_usr1, 1);
}
END_TEST

/* Crashes, each run in a child with stderr on a pipe. */
enum crash_kind { CRASH_RAISE, CRASH_FAULT, CRASH_ABORT, CRASH_IN_POOL_THREAD };

static void crash(enum crash_kind kind)
{
    if (kind == CRASH_RAISE) {
        raise(SIGSEGV);
    } else if (kind == CRASH_FAULT) {
        volatile char *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        page[0] = 1;
    } else {
        abort();
    }
}

static void *crash_in_pool_thread(void *arg)
{
    (void)arg;
    sig_block_all(NULL);
    crash(CRASH_FAULT);
    return NULL;
}

/* run_crash: forks a child that installs the crash handler and crashes;
 * returns its stderr (to free) and checks it died by signo. */
static char *run_crash(enum crash_kind kind, int signo, pid_t *child)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct rlimit no_core = { 0, 0 };
        setrlimit(RLIMIT_CORE, &no_core);
        dup2(fds[1], STDERR_FILENO);
        log_init("worker", LOG_WARN);
        sig_install_crash_handler();
        if (kind == CRASH_IN_POOL_THREAD) {
            pthread_t t;
            pthread_create(&t, NULL, crash_in_pool_thread, NULL);
            pthread_join(t, NULL);
        }
        crash(kind);
        _exit(0);
    }
    close(fds[1]);
    char *out = calloc(1, 65536);
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], out + len, 65535 - len)) > 0)
        len += (size_t)n;
    close(fds[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status), "child did not die by a signal: %s", out);
    ck_assert_int_eq(WTERMSIG(status), signo);
    *child = pid;
    return out;
}

/* One crash of each kind, a loop test over this table. */
static const struct {
    enum crash_kind kind;
    int signo;
    const char *name;
} crashes[] = {
    { CRASH_RAISE, SIGSEGV, "SIGSEGV" },
    { CRASH_FAULT, SIGSEGV, "SIGSEGV" },
    { CRASH_ABORT, SIGABRT, "SIGABRT" },
    { CRASH_IN_POOL_THREAD, SIGSEGV, "SIGSEGV" },
};

START_TEST(test_crash_report)
{
    pid_t pid;
    char *out = run_crash(crashes[_i].kind, crashes[_i].signo, &pid);
    char want[96];
    snprintf(want, sizeof want, "%d worker: crashed by signal %d (%s)\n", (int)pid,
             crashes[_i].signo, crashes[_i].name);
    ck_assert_msg(strncmp(out, want, strlen(want)) == 0, "report: %s", out);
    /* backtrace_symbols_fd writes one "[0x...]" frame per line after it. */
    ck_assert_msg(strstr(out + strlen(want), "[0x") != NULL, "no backtrace: %s", out);
    free(out);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sig");
    TCase *tc = tcase_create("sig");
    tcase_add_test(tc, test_watch_sets_flag);
    tcase_add_test(tc, test_watch_rejects_bad_arguments);
    tcase_add_test(tc, test_ignore_and_default);
    tcase_add_test(tc, test_blocked_in_thread);
    tcase_add_loop_test(tc, test_crash_report, 0, sizeof crashes / sizeof crashes[0]);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}

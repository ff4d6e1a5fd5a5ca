#include "sig.h"

#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* The flag each watched signal sets; written before the handler is
 * installed, read only by the handler. */
static volatile sig_atomic_t *volatile sig_flags[NSIG];

static const struct {
    int signo;
    const char *name;
} sig_crashes[] = {
    { SIGSEGV, "SIGSEGV" }, { SIGBUS, "SIGBUS" }, { SIGFPE, "SIGFPE" },
    { SIGILL, "SIGILL" },   { SIGABRT, "SIGABRT" },
};
#define SIG_NCRASHES (sizeof sig_crashes / sizeof sig_crashes[0])

static int sig_set_action(int signo, void (*handler)(int), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    return sigaction(signo, &sa, NULL);
}

/* sig_set_flag: the handler of sig_watch; touches nothing but the flag. */
static void sig_set_flag(int signo)
{
    int saved_errno = errno;
    volatile sig_atomic_t *flag = sig_flags[signo];
    if (flag)
        *flag = 1;
    errno = saved_errno;
}

int sig_watch(int signo, volatile sig_atomic_t *flag)
{
    if (signo <= 0 || signo >= NSIG || flag == NULL) {
        errno = EINVAL;
        return -1;
    }
    sig_flags[signo] = flag;
    return sig_set_action(signo, sig_set_flag, 0);
}

int sig_ignore(int signo)
{
    return sig_set_action(signo, SIG_IGN, 0);
}

int sig_default(int signo)
{
    return sig_set_action(signo, SIG_DFL, 0);
}

/* sig_mask: pthread_sigmask with the 0 / -1 + errno convention. */
static int sig_mask(int how, const sigset_t *set, sigset_t *old)
{
    int rc = pthread_sigmask(how, set, old);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return 0;
}

int sig_block_all(sigset_t *old)
{
    sigset_t set;
    sigfillset(&set);
    for (size_t i = 0; i < SIG_NCRASHES; i++)
        sigdelset(&set, sig_crashes[i].signo);
    return sig_mask(SIG_BLOCK, &set, old);
}

int sig_restore(const sigset_t *old)
{
    return sig_mask(SIG_SETMASK, old, NULL);
}

/* ---- crash handler --------------------------------------------------------
 * Runs on a broken process, so it only uses async-signal-safe calls: the line
 * is assembled by hand and written with write(2). backtrace() is the accepted
 * exception: it is not listed as safe because its first call may load
 * libgcc, which is why installing the handler calls it once. The handler is
 * installed with SA_RESETHAND, so raising the signal again at the end (or a
 * second fault inside the handler) gets the default action.
 */

static char sig_crash_stack[64 * 1024];

static size_t sig_put_str(char *buf, size_t len, size_t at, const char *s)
{
    while (*s && at < len)
        buf[at++] = *s++;
    return at;
}

static size_t sig_put_uint(char *buf, size_t len, size_t at, unsigned long v)
{
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n && at < len)
        buf[at++] = digits[--n];
    return at;
}

/* sig_crash: the crash handler: the report line, the frames, then the
 * default action of signo. */
static void sig_crash(int signo)
{
    char line[192];
    const size_t room = sizeof line - 1; /* the newline always fits */
    size_t at = sig_put_uint(line, room, 0, (unsigned long)getpid());
    at = sig_put_str(line, room, at, " ");
    at = sig_put_str(line, room, at, log_role());
    at = sig_put_str(line, room, at, ": crashed by signal ");
    at = sig_put_uint(line, room, at, (unsigned long)signo);
    for (size_t i = 0; i < SIG_NCRASHES; i++) {
        if (sig_crashes[i].signo == signo) {
            at = sig_put_str(line, room, at, " (");
            at = sig_put_str(line, room, at, sig_crashes[i].name);
            at = sig_put_str(line, room, at, ")");
        }
    }
    line[at++] = '\n';
    ssize_t rc = write(STDERR_FILENO, line, at);
    (void)rc; /* nowhere left to report a failed write */

    void *frames[64];
    int depth = backtrace(frames, 64);
    backtrace_symbols_fd(frames, depth, STDERR_FILENO);
    raise(signo);
}

void sig_install_crash_handler(void)
{
    void *frame;
    backtrace(&frame, 1);

    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && (cur.ss_flags & SS_DISABLE)) {
        stack_t alt = { .ss_sp = sig_crash_stack, .ss_size = sizeof sig_crash_stack };
        sigaltstack(&alt, NULL);
    }
    for (size_t i = 0; i < SIG_NCRASHES; i++)
        sig_set_action(sig_crashes[i].signo, sig_crash, SA_RESETHAND | SA_ONSTACK);
}

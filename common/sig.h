/* sig: signal handling the Trident way.
 *
 * Handlers do no work: sig_watch installs one that only sets a
 * volatile sig_atomic_t flag (errno saved, no SA_RESTART, so a blocking call
 * returns EINTR and the caller looks at its flags). The event loop or the
 * supervisor's sigsuspend loop acts on the flags. Pool threads call
 * sig_block_all so process-directed signals land on the thread that waits for
 * them. The crash handler is the one exception to "no work": it prints a
 * backtrace before the process dies.
 *
 * Threads: sig_watch, sig_ignore, sig_default and the crash handler change
 * process-wide dispositions: call them from the main thread at start.
 * sig_block_all and sig_restore act on the calling thread only.
 */
#ifndef TRIDENT_SIG_H
#define TRIDENT_SIG_H

#include <signal.h>

/* sig_watch: on signo, the handler sets *flag = 1 (flag must outlive the
 * watch). Returns 0, or -1 with errno set (EINVAL for a bad signal number or
 * a NULL flag). */
int sig_watch(int signo, volatile sig_atomic_t *flag);
/* sig_ignore, sig_default: SIG_IGN or SIG_DFL for signo. 0, or -1 + errno. */
int sig_ignore(int signo);
int sig_default(int signo);

/* sig_block_all: blocks every signal in the calling thread except the
 * synchronous crash signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT), which
 * a blocked mask would turn into a silent kill. The previous mask goes to old
 * (may be NULL). sig_restore sets the mask saved in old. Both return 0, or -1
 * with errno set. */
int sig_block_all(sigset_t *old);
int sig_restore(const sigset_t *old);

/* sig_install_crash_handler: on SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT,
 * writes "<pid> <role>: crashed by signal N (NAME)" and a backtrace to stderr,
 * then dies by the same signal with its default action (core dump, exit
 * status). The calling thread also gets an alternate signal stack, so a
 * stack overflow there still reports. Role comes from log_role(). */
void sig_install_crash_handler(void);

#endif

/* exech: the exec handler. See exech.h.
 *
 * One run per program, in a singly linked list: a worker child runs at most
 * its slot count of tasks, so a scan by pid or by task is cheaper and
 * simpler than a hash map, and it lets a done callback start new runs while
 * the sweep walks the list.
 *
 * A run's life:
 *   started   three pipes, the program's ends given to it, ours nonblocking
 *             with one persistent event each (stdin: write, stdout and
 *             stderr: read). stdin closes when the payload is written or
 *             the program closed it (EPIPE).
 *   reaped    exech_reaped recorded the wait status. If stdout or stderr is
 *             still open, the linger timer starts (EXECH_LINGER_MS).
 *   complete  reaped and both output pipes closed (EOF, the linger timer,
 *             or an abort: output over the limit). The context's sweep
 *             event is made active.
 *   swept     the sweep sets the outcome, kills what is left of the group,
 *             frees the run and calls done.
 * Events are freed only in run_free (from the sweep or exech_free), never
 * inside their own callbacks; a callback that ends a pipe only deletes its
 * event and closes the fd.
 */
#define _GNU_SOURCE /* pipe2, close_range, sigabbrev_np */
#include "exech.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "mem.h"
#include "task.h"

#define OUT_CHUNK 65536        /* one read from stdout: a full default pipe buffer */
#define ENV_PREFIX "TRIDENT_TASK_"
#define ENV_OWN 4              /* the variables exech_start adds */

extern char **environ;

/* One of our pipe ends. */
typedef struct exech_pipe {
    int fd;                    /* nonblocking; -1 once closed */
    struct event *ev;          /* freed in run_free only */
} exech_pipe;

typedef struct exech_run {
    exech *x;
    trident_task *t;           /* borrowed until done runs */
    exech_done_fn done;
    void *arg;
    pid_t pid;                 /* also the process group id */
    exech_pipe in, out, err;
    size_t in_off;             /* payload bytes written to stdin */
    size_t max_output;
    struct event *linger;      /* after the exit: the wait for EOF */
    bool reaped;
    int status;                /* wait status, once reaped */
    bool aborted;              /* the outcome is abort_msg, whatever the status */
    bool abort_retryable;
    char abort_msg[160];
    bool complete;             /* waiting for the sweep */
    bool tail_cut;             /* stderr had more than the tail holds */
    size_t tail_len;
    uint8_t tail[EXECH_TAIL_BYTES];
    struct exech_run *next;
} exech_run;

struct exech {
    struct event_base *base;   /* borrowed */
    exech_run *runs;
    size_t nruns;
    struct event *sweep;       /* finishes the complete runs */
    bool sweeping;
};

/* ------------------------------------------------------------------------
 * Runs: the list, pipes, ending
 * ------------------------------------------------------------------------ */

static void run_link(exech *x, exech_run *r)
{
    r->next = x->runs;
    x->runs = r;
    x->nruns++;
}

static void run_unlink(exech *x, exech_run *r)
{
    exech_run **p = &x->runs;
    while (*p != r)
        p = &(*p)->next;
    *p = r->next;
    r->next = NULL;
    x->nruns--;
}

/* pipe_close: stops watching p and closes it; may be called from p's own
 * callback (the event is deleted, not freed). */
static void pipe_close(exech_pipe *p)
{
    if (p->fd < 0)
        return;
    if (p->ev)
        event_del(p->ev);
    close(p->fd);
    p->fd = -1;
}

static void run_free(exech_run *r)
{
    exech_pipe *pipes[] = { &r->in, &r->out, &r->err };
    for (size_t i = 0; i < sizeof pipes / sizeof pipes[0]; i++) {
        pipe_close(pipes[i]);
        if (pipes[i]->ev)
            event_free(pipes[i]->ev);
    }
    if (r->linger)
        event_free(r->linger);
    mem_free(r);
}

/* run_check: marks r complete once its program was reaped and both output
 * pipes are closed, and wakes the sweep. */
static void run_check(exech_run *r)
{
    if (r->complete || !r->reaped || r->out.fd >= 0 || r->err.fd >= 0)
        return;
    r->complete = true;
    event_del(r->linger);
    pipe_close(&r->in);
    event_active(r->x->sweep, 0, 0);
}

/* run_abort: the run fails with the message, whatever the program does:
 * its group is killed and its pipes closed; it completes once reaped. The
 * first abort's message wins. */
static void run_abort(exech_run *r, bool retryable, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void run_abort(exech_run *r, bool retryable, const char *fmt, ...)
{
    if (!r->aborted) {
        r->aborted = true;
        r->abort_retryable = retryable;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->abort_msg, sizeof r->abort_msg, fmt, ap);
        va_end(ap);
        log_info("task %s: %s", r->t->id, r->abort_msg);
    }
    kill(-r->pid, SIGKILL);
    pipe_close(&r->in);
    pipe_close(&r->out);
    pipe_close(&r->err);
    run_check(r);
}

/* pipe_read: one read from p into dst. Returns the bytes read; 0 when
 * there is nothing to read now: it would block, or EOF or an error closed
 * p (and r was checked for completion). */
static size_t pipe_read(exech_run *r, exech_pipe *p, void *dst, size_t want, const char *what)
{
    ssize_t n = read(p->fd, dst, want);
    if (n > 0)
        return (size_t)n;
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n < 0)
        log_write_errno(LOG_WARN, errno, "task %s: read from the program's %s", r->t->id, what);
    pipe_close(p);
    run_check(r);
    return 0;
}

/* ------------------------------------------------------------------------
 * Pipe callbacks (loop thread)
 * ------------------------------------------------------------------------ */

/* in_cb: writes what the pipe takes of the payload; closes stdin at the end
 * of the payload, or when the program will not read it (EPIPE). */
static void in_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    exech_run *r = arg;
    const trident_task *t = r->t;
    ssize_t n = write(fd, t->payload + r->in_off, t->payload_len - r->in_off);
    if (n >= 0) {
        r->in_off += (size_t)n;
        if (r->in_off == t->payload_len)
            pipe_close(&r->in);
        return;
    }
    if (errno == EAGAIN || errno == EINTR)
        return;
    if (errno == EPIPE)
        log_debug("task %s: the program closed its stdin after %zu of %zu bytes", t->id,
                  r->in_off, t->payload_len);
    else
        log_write_errno(LOG_WARN, errno, "task %s: write to the program's stdin", t->id);
    pipe_close(&r->in);
}

/* out_cb: appends stdout to the task's result. Asks for one byte more than
 * the limit leaves, so going over it is seen at once. */
static void out_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    exech_run *r = arg;
    buf *res = &r->t->result;
    size_t used = buf_used(res);
    size_t want = r->max_output - used < OUT_CHUNK ? r->max_output - used + 1 : OUT_CHUNK;
    size_t n = pipe_read(r, &r->out, buf_reserve(res, want), want, "stdout");
    if (n == 0)
        return;
    if (n > r->max_output - used) {
        run_abort(r, false, "its output exceeded the limit of %zu bytes: the program was killed",
                  r->max_output);
        return;
    }
    buf_commit(res, n);
}

/* tail_keep: appends data to the stderr tail, keeping its last
 * EXECH_TAIL_BYTES. */
static void tail_keep(exech_run *r, const uint8_t *data, size_t n)
{
    if (r->tail_len + n > sizeof r->tail) {
        size_t drop = r->tail_len + n - sizeof r->tail;
        memmove(r->tail, r->tail + drop, r->tail_len - drop);
        r->tail_len -= drop;
        r->tail_cut = true;
    }
    memcpy(r->tail + r->tail_len, data, n);
    r->tail_len += n;
}

static void err_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    exech_run *r = arg;
    uint8_t chunk[EXECH_TAIL_BYTES];
    size_t n = pipe_read(r, &r->err, chunk, sizeof chunk, "stderr");
    if (n > 0)
        tail_keep(r, chunk, n);
}

/* linger_cb: the program exited EXECH_LINGER_MS ago and something (a
 * background process of its group) still holds stdout or stderr open: kill
 * the group and end the run with what was read. */
static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    exech_run *r = arg;
    log_warn("task %s: the program exited but its output stayed open for %d ms (a background "
             "process?): killing its process group %ld", r->t->id, EXECH_LINGER_MS, (long)r->pid);
    kill(-r->pid, SIGKILL);
    pipe_close(&r->out);
    pipe_close(&r->err);
    run_check(r);
}

/* ------------------------------------------------------------------------
 * The outcome and the sweep
 * ------------------------------------------------------------------------ */

/* tail_text: the stderr tail as a message: NUL-terminated in out (at least
 * EXECH_TAIL_BYTES + 1 bytes), NUL bytes shown as '?', trailing white space
 * dropped, and a UTF-8 sequence cut in half at its start skipped. Returns
 * its length. */
static size_t tail_text(const exech_run *r, char *out)
{
    size_t i = 0, n = 0;
    if (r->tail_cut)
        while (i < r->tail_len && (r->tail[i] & 0xC0) == 0x80)
            i++;
    for (; i < r->tail_len; i++)
        out[n++] = r->tail[i] ? (char)r->tail[i] : '?';
    while (n > 0 && strchr(" \t\r\n", out[n - 1]))
        n--;
    out[n] = '\0';
    return n;
}

/* run_outcome: sets the task's outcome from the abort, or the wait status
 * and the stderr tail. */
static void run_outcome(exech_run *r)
{
    trident_task *t = r->t;
    if (!r->aborted && WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0) {
        t->ok = true;
        return;
    }
    buf_free(&t->result); /* a failure has no result */
    if (r->aborted) {
        task_fail(t, ERR_TASK_FAILED, r->abort_retryable, r->abort_msg);
        return;
    }
    char how[64];
    if (WIFSIGNALED(r->status)) {
        int sig = WTERMSIG(r->status);
        const char *abbrev = sigabbrev_np(sig);
        if (abbrev)
            snprintf(how, sizeof how, "killed by signal %d (SIG%s)", sig, abbrev);
        else
            snprintf(how, sizeof how, "killed by signal %d", sig);
    } else {
        snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(r->status));
    }
    char tail[EXECH_TAIL_BYTES + 1];
    char msg[sizeof how + sizeof tail + 2];
    if (tail_text(r, tail) > 0)
        snprintf(msg, sizeof msg, "%s: %s", how, tail);
    else
        snprintf(msg, sizeof msg, "%s", how);
    task_fail(t, ERR_TASK_FAILED, true, msg);
}

/* sweep_cb: ends every complete run: its outcome, a SIGKILL for what is
 * left of its group, and done. The run is unlinked and freed before done
 * runs, and the list is scanned again after each, so done may start,
 * signal or end other runs. */
static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    exech *x = arg;
    x->sweeping = true;
    for (;;) {
        exech_run *r = x->runs;
        while (r && !r->complete)
            r = r->next;
        if (!r)
            break;
        run_unlink(x, r);
        /* The leader was reaped a moment ago, so its pid is still the
         * group's while any member lives; ESRCH when none does. */
        kill(-r->pid, SIGKILL);
        run_outcome(r);
        trident_task *t = r->t;
        exech_done_fn done = r->done;
        void *done_arg = r->arg;
        log_debug("task %s: program %ld ended: %s", t->id, (long)r->pid,
                  t->ok ? "ok" : t->error);
        t->pid = 0;
        run_free(r);
        done(t, done_arg);
    }
    x->sweeping = false;
}

/* ------------------------------------------------------------------------
 * Starting a program
 * ------------------------------------------------------------------------ */

/* env_var: "NAME=value"; you own the result. */
static char *env_var(const char *name, const char *value)
{
    size_t n = strlen(name) + 1 + strlen(value) + 1;
    char *s = mem_malloc(n);
    snprintf(s, n, "%s=%s", name, value);
    return s;
}

/* env_build: the program's environment: the worker's, without any
 * TRIDENT_TASK_* it had, and then the task's ENV_OWN variables. The other
 * strings are borrowed from environ. Free with env_free. */
static char **env_build(const trident_task *t, size_t *own_from)
{
    size_t n = 0;
    for (char **e = environ; e && *e; e++)
        n++;
    char **envp = mem_calloc(n + ENV_OWN + 1, sizeof *envp);
    size_t k = 0;
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, ENV_PREFIX, sizeof ENV_PREFIX - 1) != 0)
            envp[k++] = *e;
    *own_from = k;
    char num[32];
    envp[k++] = env_var(ENV_PREFIX "ID", t->id);
    envp[k++] = env_var(ENV_PREFIX "NAME", t->name);
    snprintf(num, sizeof num, "%u", t->attempt);
    envp[k++] = env_var(ENV_PREFIX "ATTEMPT", num);
    snprintf(num, sizeof num, "%llu", (unsigned long long)t->deadline_ms);
    envp[k++] = env_var(ENV_PREFIX "DEADLINE_MS", num);
    return envp;
}

static void env_free(char **envp, size_t own_from)
{
    for (size_t i = own_from; envp[i]; i++)
        mem_free(envp[i]);
    mem_free(envp);
}

/* child_exec: the forked side, up to execve. Only async-signal-safe calls:
 * the worker child has executor threads, whose locks may be held. fds are
 * the program's stdin, stdout and stderr ends. Never returns. */
static void child_exec(pid_t parent, const int fds[3], char *const argv[], char *const envp[],
                       const struct sigaction *dfl)
{
    /* Die with the worker child, even by kill -9; if it died already, the
     * request came too late to fire. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(127);
    setpgid(0, 0);
    /* Handlers would be reset by exec, but ignored signals (SIGPIPE) and
     * the mask survive it; all were blocked around the fork. */
    for (int sig = 1; sig < NSIG; sig++)
        (void)sigaction(sig, dfl, NULL); /* SIGKILL, SIGSTOP and libc's own refuse */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Lift the three ends above 2 first, so no dup2 overwrites another
     * end (the worker may run with 0, 1 or 2 closed). */
    int high[3];
    for (int i = 0; i < 3; i++)
        if ((high[i] = fcntl(fds[i], F_DUPFD, 3)) < 0)
            _exit(127);
    for (int i = 0; i < 3; i++)
        if (dup2(high[i], i) < 0)
            _exit(127);
    if (close_range(3, ~0U, 0) != 0) {
        struct rlimit rl;
        int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur
                                                                                : 65536;
        for (int fd = 3; fd < max; fd++)
            (void)close(fd);
    }
    execve("/bin/sh", argv, envp);
    static const char msg[] = "trident-worker: execve /bin/sh failed\n";
    (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
    _exit(127);
}

/* set_err: "<what>: <strerror> (<ERRNO>)" into err. */
static void set_err(char *err, size_t errlen, const char *what, int e)
{
    char reason[128];
    snprintf(err, errlen, "%s: %s", what, log_strerror(e, reason, sizeof reason));
}

/* run_new: a run for t with its events (not added yet), taking our pipe
 * ends. NULL when libevent could not allocate an event. */
static exech_run *run_new(exech *x, trident_task *t, const int ours[3], size_t max_output)
{
    exech_run *r = mem_calloc(1, sizeof *r);
    r->x = x;
    r->t = t;
    r->max_output = max_output;
    r->in = (exech_pipe){ ours[0], event_new(x->base, ours[0], EV_WRITE | EV_PERSIST, in_cb, r) };
    r->out = (exech_pipe){ ours[1], event_new(x->base, ours[1], EV_READ | EV_PERSIST, out_cb, r) };
    r->err = (exech_pipe){ ours[2], event_new(x->base, ours[2], EV_READ | EV_PERSIST, err_cb, r) };
    r->linger = evtimer_new(x->base, linger_cb, r);
    if (!r->in.ev || !r->out.ev || !r->err.ev || !r->linger) {
        r->in.fd = r->out.fd = r->err.fd = -1; /* the caller still owns them */
        run_free(r);
        return NULL;
    }
    return r;
}

int exech_start(exech *x, trident_task *t, const char *command, size_t max_output,
                exech_done_fn done, void *arg, char *err, size_t errlen)
{
    assert(x && t && command && done);
    /* fds[i]: the pipe of stdin, stdout, stderr; [0] read end, [1] write end */
    int fds[3][2] = { { -1, -1 }, { -1, -1 }, { -1, -1 } };
    exech_run *r = NULL;
    for (int i = 0; i < 3; i++)
        if (pipe2(fds[i], O_CLOEXEC) != 0) {
            set_err(err, errlen, "exec: pipe", errno);
            goto fail;
        }
    int ours[3] = { fds[0][1], fds[1][0], fds[2][0] };
    int theirs[3] = { fds[0][0], fds[1][1], fds[2][1] };
    for (int i = 0; i < 3; i++)
        if (fcntl(ours[i], F_SETFL, O_NONBLOCK) != 0) {
            set_err(err, errlen, "exec: fcntl O_NONBLOCK", errno);
            goto fail;
        }
    r = run_new(x, t, ours, max_output);
    if (!r) {
        snprintf(err, errlen, "exec: cannot allocate the events of the program's pipes");
        goto fail;
    }

    /* Everything the forked side needs is made before the fork: after it,
     * no allocation. */
    size_t own_from;
    char **envp = env_build(t, &own_from);
    union { const char *in[4]; char *out[4]; } argv = { { "sh", "-c", command, NULL } };
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigset_t all, old;
    sigfillset(&all);
    /* No handler of the worker may run in the forked side before it resets
     * them (libevent's would write into the worker's signal pipe). */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        child_exec(parent, theirs, argv.out, envp, &dfl);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    env_free(envp, own_from);
    for (int i = 0; i < 3; i++)
        close(theirs[i]);
    if (pid < 0) {
        set_err(err, errlen, "exec: fork", fork_errno);
        run_free(r); /* closes ours */
        return -1;
    }
    setpgid(pid, pid); /* also here, so the group exists before we may signal it */

    r->pid = pid;
    r->done = done;
    r->arg = arg;
    t->pid = pid;
    buf_reset(&t->result);
    run_link(x, r);
    log_debug("task %s: started program %ld: %s", t->id, (long)pid, command);
    if (t->payload_len == 0)
        pipe_close(&r->in);
    if ((r->in.fd >= 0 && event_add(r->in.ev, NULL) != 0) || event_add(r->out.ev, NULL) != 0 ||
        event_add(r->err.ev, NULL) != 0)
        run_abort(r, true, "cannot watch the program's pipes: the program was killed");
    return 0;

fail:
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++)
            if (fds[i][j] >= 0)
                close(fds[i][j]);
    return -1;
}

/* ------------------------------------------------------------------------
 * The context
 * ------------------------------------------------------------------------ */

exech *exech_new(struct event_base *base)
{
    exech *x = mem_calloc(1, sizeof *x);
    x->base = base;
    x->sweep = event_new(base, -1, 0, sweep_cb, x);
    if (!x->sweep) {
        mem_free(x);
        return NULL;
    }
    return x;
}

void exech_free(exech *x)
{
    if (!x)
        return;
    assert(!x->sweeping);
    while (x->runs) {
        exech_run *r = x->runs;
        run_unlink(x, r);
        kill(-r->pid, SIGKILL);
        if (!r->reaped) {
            kill(r->pid, SIGKILL); /* in case it had left its group */
            int st;
            while (waitpid(r->pid, &st, 0) < 0 && errno == EINTR)
                ;
        }
        run_free(r);
    }
    event_free(x->sweep);
    mem_free(x);
}

int exech_signal(exech *x, const trident_task *t, int sig)
{
    for (exech_run *r = x->runs; r; r = r->next)
        if (r->t == t && !r->complete) {
            log_debug("task %s: signal %d to process group %ld", t->id, sig, (long)r->pid);
            return kill(-r->pid, sig);
        }
    errno = ESRCH;
    return -1;
}

int exech_reaped(exech *x, pid_t pid, int status)
{
    for (exech_run *r = x->runs; r; r = r->next) {
        if (r->pid != pid || r->reaped)
            continue;
        r->reaped = true;
        r->status = status;
        run_check(r);
        if (!r->complete) {
            struct timeval tv = { EXECH_LINGER_MS / 1000, (EXECH_LINGER_MS % 1000) * 1000 };
            evtimer_add(r->linger, &tv);
        }
        return 1;
    }
    return 0;
}

size_t exech_running(const exech *x)
{
    return x->nruns;
}

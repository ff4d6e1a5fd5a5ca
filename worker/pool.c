#define _GNU_SOURCE /* pthread_setname_np */
#include "pool.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "sig.h"

/* One submitted job on its way through the pool: in the jobs queue, then on
 * a thread, then in the completions queue, then freed after its done
 * callback. The same item travels the whole way, so a job costs one
 * allocation. A STOP item has fn == NULL. */
typedef struct pool_item {
    struct pool_item *next;
    void *job;  /* the caller's, never touched here */
    pool_fn fn;
    pool_done_fn done;
} pool_item;

/* A FIFO of items. Not thread-safe: each list is guarded by its pool lock. */
typedef struct pool_list {
    pool_item *head;
    pool_item *tail;
} pool_list;

typedef struct pool_thread {
    pthread_t tid;
    pool *p;
    int index;  /* 1-based: the N of "trident-exec-N" */
} pool_thread;

struct pool {
    /* Loop thread to pool threads. */
    pthread_mutex_t jobs_lock;
    pthread_cond_t jobs_cond;  /* signalled for each item pushed on jobs */
    pool_list jobs;            /* guarded by jobs_lock */
    /* Written under jobs_lock (running also after a job, without it); atomic
     * so that the loop reads them without the lock. */
    atomic_size_t queued;      /* jobs in the jobs list, STOP items not counted */
    atomic_size_t running;

    /* Pool threads to loop thread. */
    pthread_mutex_t done_lock;
    pool_list done;            /* guarded by done_lock */
    int efd;                   /* the eventfd, -1 until opened */
    struct event *wake;        /* persistent read event on efd, NULL until made */

    /* Loop thread only. */
    pthread_t loop_thread;
    int nthreads;              /* threads started (all of them once pool_new returned) */
    pool_thread *threads;
    bool stopping;             /* pool_submit refuses work */
    bool delivering;           /* done callbacks are running */
};

/* ---- Fatal errors --------------------------------------------------------
 * The pool aborts in two cases only, both bugs rather than conditions to
 * recover from: a broken caller contract (a call from another thread than
 * the loop, pool_free from inside a done callback), which would corrupt the
 * queues silently; and an eventfd that fails other than with EAGAIN (see
 * pool_wake). The reason is logged first; the crash handler adds a
 * backtrace and the supervisor replaces the process.
 */

__attribute__((noreturn, format(printf, 2, 3)))
static void pool_abort(int err, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (err != 0)
        log_write_errno(LOG_ERROR, err, "executor pool: %s", msg);
    else
        log_write(LOG_ERROR, "executor pool: %s", msg);
    abort();
}

/* POOL_ASSERT: stays on in release builds, unlike assert(3). */
#define POOL_ASSERT(cond) \
    do { \
        if (!(cond)) \
            pool_abort(0, "%s:%d: assertion failed: %s", __FILE__, __LINE__, #cond); \
    } while (0)

#define POOL_ASSERT_LOOP_THREAD(p) POOL_ASSERT(pthread_equal(pthread_self(), (p)->loop_thread))

/* ---- Queues ----------------------------------------------------------- */

static void pool_list_push(pool_list *l, pool_item *it)
{
    it->next = NULL;
    if (l->tail)
        l->tail->next = it;
    else
        l->head = it;
    l->tail = it;
}

/* pool_list_pop: the first item, or NULL when l is empty. */
static pool_item *pool_list_pop(pool_list *l)
{
    pool_item *it = l->head;
    if (it) {
        l->head = it->next;
        if (!l->head)
            l->tail = NULL;
    }
    return it;
}

/* ---- Completions: pool threads to the loop --------------------------------
 * A thread pushes its finished item and writes the eventfd only when the
 * queue was empty: a non-empty queue already has a wake-up on its way,
 * because the loop resets the eventfd before it swaps the queue out. So a
 * burst of completions costs one write and one loop wake-up.
 */

/* pool_wake: makes the eventfd readable. Pool threads only.
 *
 * An eventfd write fails with EAGAIN only when the counter is at its
 * maximum (2^64 - 2): then it is non-zero, the loop has a wake-up pending,
 * and the read that consumes it happens after this thread pushed its
 * completion, so the drain that follows picks it up. Nothing is lost, and
 * EAGAIN is success.
 *
 * Any other error (EBADF, EINVAL) means the descriptor is not what the pool
 * opened: a bug such as a double close elsewhere. It cannot be returned (the
 * caller is a pool thread with no one to tell) and it must not be ignored
 * (the completion would sit in the queue forever: its task never answered,
 * pool_free never reached): so it is logged and the process aborts. This is
 * the one runtime failure on which a module aborts. */
static void pool_wake(pool *p)
{
    uint64_t one = 1;
    ssize_t n = write(p->efd, &one, sizeof one);
    if (n == (ssize_t)sizeof one || (n < 0 && errno == EAGAIN))
        return;
    pool_abort(n < 0 ? errno : EIO, "write to the wake-up eventfd %d", p->efd);
}

/* pool_complete: hands a finished item back to the loop. Pool threads only. */
static void pool_complete(pool *p, pool_item *it)
{
    pthread_mutex_lock(&p->done_lock);
    bool was_empty = p->done.head == NULL;
    pool_list_push(&p->done, it);
    pthread_mutex_unlock(&p->done_lock);
    if (was_empty)
        pool_wake(p);
}

/* pool_deliver: takes every completion queued so far in one swap and runs
 * their done callbacks without the lock (a thread finishing meanwhile starts
 * the next batch). Loop thread only. */
static void pool_deliver(pool *p)
{
    pthread_mutex_lock(&p->done_lock);
    pool_item *it = p->done.head;
    p->done.head = p->done.tail = NULL;
    pthread_mutex_unlock(&p->done_lock);

    p->delivering = true;
    while (it) {
        pool_item *next = it->next;
        it->done(it->job);
        mem_free(it);
        it = next;
    }
    p->delivering = false;
}

/* pool_on_wake: the eventfd's read event. Resets the counter first, then
 * drains (see the banner above for why in that order). EAGAIN on the read
 * is a wake-up with nothing pending: harmless. */
static void pool_on_wake(evutil_socket_t fd, short what, void *arg)
{
    pool *p = arg;
    uint64_t count;
    (void)what;
    if (read(fd, &count, sizeof count) < 0 && errno != EAGAIN)
        pool_abort(errno, "read from the wake-up eventfd %d", (int)fd);
    pool_deliver(p);
}

/* ---- Pool threads ----------------------------------------------------- */

/* pool_thread_main: takes items from the jobs queue until it takes a STOP
 * item; each thread takes exactly one STOP. */
static void *pool_thread_main(void *arg)
{
    pool_thread *t = arg;
    pool *p = t->p;

    /* pool_new created the thread with signals blocked already; blocking them
     * here too keeps the promise whoever starts the thread. It can only fail
     * on a bad argument, so a failure is worth a line, not a stop. */
    if (sig_block_all(NULL) < 0)
        log_write_errno(LOG_ERROR, errno, "executor thread %d: sig_block_all", t->index);
    char name[16]; /* the kernel's limit, NUL included: snprintf cuts to fit */
    snprintf(name, sizeof name, "trident-exec-%d", t->index);
    (void)pthread_setname_np(pthread_self(), name); /* a debugging aid only */

    for (;;) {
        pthread_mutex_lock(&p->jobs_lock);
        while (!p->jobs.head)
            pthread_cond_wait(&p->jobs_cond, &p->jobs_lock);
        pool_item *it = pool_list_pop(&p->jobs);
        if (it->fn) {
            atomic_fetch_add(&p->running, 1);
            atomic_fetch_sub(&p->queued, 1);
        }
        pthread_mutex_unlock(&p->jobs_lock);

        if (!it->fn) {
            mem_free(it);
            return NULL;
        }
        it->fn(it->job);
        /* Before the completion is pushed, so that done never sees its own
         * job counted as running. */
        atomic_fetch_sub(&p->running, 1);
        pool_complete(p, it);
    }
}

/* pool_destroy: stops and joins the threads started so far (after the jobs
 * queued before), runs the done callbacks not delivered yet, and frees
 * everything. Works on a half-built pool: pool_new's failure path. */
static void pool_destroy(pool *p)
{
    p->stopping = true;

    pthread_mutex_lock(&p->jobs_lock);
    for (int i = 0; i < p->nthreads; i++)
        pool_list_push(&p->jobs, mem_calloc(1, sizeof(pool_item)));
    pthread_cond_broadcast(&p->jobs_cond);
    pthread_mutex_unlock(&p->jobs_lock);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i].tid, NULL);

    if (p->wake)
        event_free(p->wake);
    pool_deliver(p);
    if (p->efd >= 0)
        close(p->efd);
    pthread_cond_destroy(&p->jobs_cond);
    pthread_mutex_destroy(&p->jobs_lock);
    pthread_mutex_destroy(&p->done_lock);
    mem_free(p->threads);
    mem_free(p);
}

/* pool_set_err: "executor pool: <what>[: <strerror>]" into err. */
static void pool_set_err(char *err, size_t errlen, int e, const char *what)
{
    char reason[96];
    if (!err || errlen == 0)
        return;
    if (e != 0)
        snprintf(err, errlen, "executor pool: %s: %s", what, log_strerror(e, reason, sizeof reason));
    else
        snprintf(err, errlen, "executor pool: %s", what);
}

pool *pool_new(struct event_base *base, int nthreads, char *err, size_t errlen)
{
    if (!base || nthreads < 1) {
        pool_set_err(err, errlen, 0, "needs an event base and at least one thread");
        errno = EINVAL;
        return NULL;
    }

    pool *p = mem_calloc(1, sizeof *p);
    /* With default attributes glibc's init functions cannot fail. */
    pthread_mutex_init(&p->jobs_lock, NULL);
    pthread_cond_init(&p->jobs_cond, NULL);
    pthread_mutex_init(&p->done_lock, NULL);
    atomic_init(&p->queued, 0);
    atomic_init(&p->running, 0);
    p->loop_thread = pthread_self();
    p->threads = mem_calloc((size_t)nthreads, sizeof *p->threads);

    int e = 0;
    const char *what = NULL;
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd < 0) {
        e = errno;
        what = "eventfd";
        goto fail;
    }
    p->wake = event_new(base, p->efd, EV_READ | EV_PERSIST, pool_on_wake, p);
    if (!p->wake || event_add(p->wake, NULL) < 0) {
        what = "cannot watch its eventfd (event_new or event_add failed)";
        goto fail;
    }

    /* New threads inherit this mask, so no signal can land on one before its
     * own sig_block_all runs. */
    sigset_t old;
    if (sig_block_all(&old) < 0) {
        e = errno;
        what = "sig_block_all";
        goto fail;
    }
    for (int i = 0; i < nthreads; i++) {
        pool_thread *t = &p->threads[i];
        t->p = p;
        t->index = i + 1;
        e = pthread_create(&t->tid, NULL, pool_thread_main, t);
        if (e != 0) {
            what = "pthread_create";
            break;
        }
        p->nthreads++;
    }
    sig_restore(&old);
    if (e != 0)
        goto fail;
    return p;

fail:
    pool_set_err(err, errlen, e, what);
    pool_destroy(p);
    errno = e ? e : EINVAL;
    return NULL;
}

int pool_submit(pool *p, void *job, pool_fn fn, pool_done_fn done)
{
    POOL_ASSERT_LOOP_THREAD(p);
    if (!fn || !done) {
        errno = EINVAL;
        return -1;
    }
    if (p->stopping) {
        errno = ESHUTDOWN;
        return -1;
    }
    pool_item *it = mem_malloc(sizeof *it);
    it->job = job;
    it->fn = fn;
    it->done = done;

    pthread_mutex_lock(&p->jobs_lock);
    pool_list_push(&p->jobs, it);
    atomic_fetch_add(&p->queued, 1);
    pthread_cond_signal(&p->jobs_cond);
    pthread_mutex_unlock(&p->jobs_lock);
    return 0;
}

size_t pool_queued(const pool *p)
{
    return atomic_load(&p->queued);
}

size_t pool_running(const pool *p)
{
    return atomic_load(&p->running);
}

int pool_threads(const pool *p)
{
    return p->nthreads;
}

void pool_free(pool *p)
{
    if (!p)
        return;
    POOL_ASSERT_LOOP_THREAD(p);
    POOL_ASSERT(!p->delivering);
    pool_destroy(p);
}

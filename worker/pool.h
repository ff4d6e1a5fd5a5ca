/* pool: the executor threads of one trident-worker child process.
 *
 * The child's event-loop thread owns the pool and is the only thread that
 * may call these functions (the one that called pool_new). It hands blocking
 * or CPU-bound jobs to M threads, and gets each job back on the loop once it
 * ran, so everything but the job's own work stays single-threaded.
 *
 * The idea (memcached's hand-off): two locked FIFO queues. Jobs go to the
 * threads through the first; the threads wait for it on a condition
 * variable, not on an eventfd, because they have no event loop to watch a
 * descriptor, the queue's mutex is needed anyway, and pthread_cond_signal
 * wakes exactly one idle thread per job. Finished jobs come back through the
 * second queue; the thread that makes it non-empty writes to an eventfd that
 * a persistent libevent read event on the loop watches, and each wake-up
 * takes the whole queue in one swap under the lock and runs the done
 * callbacks without it. The threads never touch the event base, so it needs
 * no libevent locking. Stopping queues one STOP item per thread behind the
 * jobs already queued and joins the threads.
 *
 * Pool threads block every signal but the synchronous crash signals (they
 * are also created with them blocked), so process-directed signals reach
 * the loop. They are named "trident-exec-1".. "trident-exec-M" (the kernel
 * keeps 15 characters) for top -H, gdb and crash reports.
 *
 * Jobs start in submission order (a single thread runs them strictly in
 * that order); completions are delivered in the order jobs finished. A job
 * that never returns keeps its thread forever, and pool_free waits for it:
 * a time limit on jobs belongs to the caller (the process can be replaced,
 * a thread cannot be stopped safely).
 *
 * Broken contracts are not returned as errors but abort the process with
 * a logged reason, in release builds too: a call from another thread than
 * the loop, pool_free from inside a done callback, and an eventfd that
 * fails other than with EAGAIN (pool.c says why).
 */
#ifndef TRIDENT_POOL_H
#define TRIDENT_POOL_H

#include <stddef.h>

struct event_base;

typedef struct pool pool;

/* pool_fn: runs on a pool thread and may block. job is the caller's. */
typedef void (*pool_fn)(void *job);
/* pool_done_fn: runs on the loop thread once fn(job) returned, exactly
 * once; it may call pool_submit, not pool_free. */
typedef void (*pool_done_fn)(void *job);

/* pool_new: starts nthreads (>= 1) threads; completions are delivered by an
 * event on base, which must outlive the pool. Returns the pool, or NULL
 * with a message in err (NUL-terminated when errlen > 0; err may be NULL)
 * and nothing left running or allocated. The calling thread becomes the
 * pool's loop thread. */
pool *pool_new(struct event_base *base, int nthreads, char *err, size_t errlen);

/* pool_submit: queues job; fn(job) runs on a free thread, then done(job) on
 * the loop. Returns 0, or -1 when the pool is stopping (called from a done
 * callback run by pool_free; errno ESHUTDOWN) or fn or done is NULL (EINVAL);
 * done never runs then. The job stays the caller's throughout. */
int pool_submit(pool *p, void *job, pool_fn fn, pool_done_fn done);

/* pool_queued: jobs waiting for a thread. pool_running: jobs whose fn is on
 * a thread now. Each is exact when read, but the two are not one snapshot. */
size_t pool_queued(const pool *p);
size_t pool_running(const pool *p);
/* pool_threads: the nthreads given to pool_new. */
int pool_threads(const pool *p);

/* pool_free: queues one STOP item per thread behind the jobs already queued
 * and joins the threads, so it blocks until the running and queued jobs have
 * finished; then runs, in this call, the done callbacks of completions the
 * loop had not delivered yet (pool_submit from them fails), and frees the
 * pool. Every submitted job's done has run when it returns. Not from inside
 * a done callback (the pool would be freed under its own callback): call it
 * after the loop returned, or from another event. NULL is fine. */
void pool_free(pool *p);

#endif

/* trident/async.h: libtrident's asynchronous API, on a libevent loop.
 *
 * For programs that run a libevent event_base of their own and want many
 * requests in flight on one connection: a producer submitting tens of
 * thousands of tasks a second, a service waiting on many results at once.
 * Every request call returns at once; its callback runs later on the
 * loop, once. Requests are written back to back without waiting for
 * replies (pipelined), and replies are matched to them by rid.
 *
 *     static void done(trident_async *a, trident_reply *r, void *arg)
 *     {
 *         if (r->status == TRIDENT_OK)
 *             printf("%s -> %.*s\n", r->id, (int)r->task->result_len,
 *                    (const char *)r->task->result);
 *     }
 *     ...
 *     trident_async *a = trident_async_connect(base, "127.0.0.1:7878", NULL,
 *                                              NULL, NULL, err, sizeof err);
 *     trident_submit_opts o;
 *     trident_submit_opts_init(&o);
 *     o.name = "echo";
 *     o.payload = "hello";
 *     o.payload_len = 5;
 *     trident_async_apply(a, &o, 10000, done, NULL);
 *     event_base_dispatch(base);
 *
 * Errors. A request call returns TRIDENT_OK when the request was queued
 * (its callback will run: exactly once), or an error when it was refused
 * at once (TRIDENT_EINVAL for a bad argument, TRIDENT_EIO when the
 * connection is down): then the callback never runs. The callback gets the
 * outcome in a trident_reply: status, and errcode/errmsg as
 * trident_errcode/trident_errmsg would give them (client.h).
 *
 * Timeouts. A request whose reply has not come within the IO timeout of
 * trident_options (plus the wait it asks for) ends with TRIDENT_ETIMEDOUT;
 * a reply that comes later is dropped. trident_async_apply has its own
 * timeout for the whole call.
 *
 * The connection. trident_async_connect returns at once; it connects and
 * says HELLO on the loop. Requests may be made at once: they are written
 * after the HELLO. on_state (optional) is called with TRIDENT_OK when the
 * HELLO is answered, and with the error when the connection could not be
 * made or was lost. When the connection fails, every request still
 * waiting gets the error in its callback first (for a submit, the outcome
 * is then unknown: see "Lost connections" in client.h, and submit again
 * with your own id); if one of those callbacks reconnects, on_state is not
 * called for the failure. Nothing reconnects by itself: call
 * trident_async_reconnect.
 *
 * Flow control. Nothing bounds what is queued: a producer should keep
 * trident_async_pending (requests not yet answered) under a limit of its
 * own, submitting more from its callbacks.
 *
 * Threads. A trident_async belongs to its event_base's thread: call it from
 * that thread only (callbacks run there).
 */
#ifndef TRIDENT_ASYNC_H
#define TRIDENT_ASYNC_H

#include "trident/client.h"

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;

/* A connection to one broker, driven by a libevent loop. */
typedef struct trident_async trident_async;

/* trident_reply: the outcome of one request, valid during its callback.
 * Only the fields of the request's kind are set (others are NULL or 0). */
typedef struct trident_reply {
    int status;              /* TRIDENT_OK or a negative trident_status */
    const char *errcode;     /* "" on TRIDENT_OK */
    const char *errmsg;      /* "" on TRIDENT_OK */
    const char *id;          /* submit, apply, get, cancel: the task id, or "" */
    int duplicate;           /* submit: the id existed, nothing new was stored */
    size_t nids;             /* submit_batch: the ids of the batch, in order */
    const trident_id *ids;
    const int *duplicates;   /* submit_batch: nids flags */
    trident_task_info *task; /* apply, get: the task. The library's: to keep
                                its contents, copy the struct and zero it */
    const char *outcome;     /* cancel: "queued", "running" or "final" */
    uint64_t time_ms;        /* ping: the broker's clock */
} trident_reply;

typedef void (*trident_async_cb)(trident_async *a, trident_reply *r, void *arg);

/* trident_async_state_cb: the connection is up (TRIDENT_OK) or failed
 * (an error; trident_async_errcode/_errmsg say why). */
typedef void (*trident_async_state_cb)(trident_async *a, int status, void *arg);

/* trident_async_connect: starts connecting to addr (as trident_connect
 * takes it) on base. Returns the handle (free it with trident_async_close),
 * or NULL with "CODE: message" in err for an unusable address. */
TRIDENT_API trident_async *trident_async_connect(struct event_base *base, const char *addr,
                                                 const trident_options *o,
                                                 trident_async_state_cb on_state, void *arg,
                                                 char *err, size_t errlen);

/* trident_async_reconnect: after a failure, connects again (a no-op when
 * connected or connecting). Returns TRIDENT_OK or TRIDENT_EIO. */
TRIDENT_API int trident_async_reconnect(trident_async *a);

/* trident_async_close: closes the connection and frees a. The callbacks of
 * requests still waiting run first, with TRIDENT_EIO (code "IO"). May be
 * called from a callback. NULL is fine. */
TRIDENT_API void trident_async_close(trident_async *a);

/* trident_async_errcode / _errmsg: why the connection last failed ("" if it
 * never did). */
TRIDENT_API const char *trident_async_errcode(const trident_async *a);
TRIDENT_API const char *trident_async_errmsg(const trident_async *a);

/* trident_async_pending: requests queued or sent and not yet answered
 * (apply calls count until their result came). */
TRIDENT_API size_t trident_async_pending(const trident_async *a);

/* trident_async_submit: SUBMIT of o (o->push_result is ignored: use
 * trident_async_apply). The callback gets id and duplicate. */
TRIDENT_API int trident_async_submit(trident_async *a, const trident_submit_opts *o,
                                     trident_async_cb cb, void *arg);

/* trident_async_submit_batch: SUBMIT_BATCH of n tasks (1..TRIDENT_BATCH_MAX,
 * all or nothing; every task must give the same wait_ms; push_result is
 * ignored). The callback gets ids and duplicates. */
TRIDENT_API int trident_async_submit_batch(trident_async *a, const trident_submit_opts *tasks,
                                           size_t n, trident_async_cb cb, void *arg);

/* trident_async_apply: submits o with push_result and calls back once the
 * task is final, with its result in task (TRIDENT_OK), or TRIDENT_ETASK
 * when it ended dead or cancelled, or an error. timeout_ms bounds the whole
 * call (0: no limit beyond the IO timeout for the SUBMIT reply); when it
 * runs out after the broker took the task, id says which task goes on
 * without us. */
TRIDENT_API int trident_async_apply(trident_async *a, const trident_submit_opts *o,
                                    uint64_t timeout_ms, trident_async_cb cb, void *arg);

/* trident_async_get: GET of task id, waiting up to wait_ms for it to be
 * final (as trident_get). The callback gets task. */
TRIDENT_API int trident_async_get(trident_async *a, const char *id, uint64_t wait_ms,
                                  trident_async_cb cb, void *arg);

/* trident_async_cancel: CANCEL of task id; the callback gets outcome. */
TRIDENT_API int trident_async_cancel(trident_async *a, const char *id, trident_async_cb cb,
                                     void *arg);

/* trident_async_ping: a round trip; the callback gets time_ms. */
TRIDENT_API int trident_async_ping(trident_async *a, trident_async_cb cb, void *arg);

#ifdef __cplusplus
}
#endif

#endif

/* trident/handler.h: the API a trident-worker handler is written against.
 *
 * A handler runs one task and reports its outcome. There are two kinds:
 *
 *   sync   runs on one of the worker process's executor threads and may
 *          block (files, databases, CPU work). It returns 0 for success
 *          or -1 for failure, after setting a result or an error.
 *   async  starts on the process's event loop thread with its event_base,
 *          must not block, and finishes later by calling
 *          trident_task_complete() exactly once, on the loop thread (from
 *          a libevent callback). For IO-bound work: thousands at once.
 *
 * A plugin is a shared object loaded with --plugin PATH.so that exports
 *
 *     int trident_plugin_init(trident_registry *r);
 *
 * which registers its handlers and returns 0 (anything else refuses the
 * plugin). The ABI version below changes only when this header changes
 * incompatibly; a plugin may check trident_handler_abi() against it.
 *
 * Thread rules: the accessors and trident_task_cancelled() may be called
 * from the thread running the task; the setters only until the handler
 * returns (sync) or completes (async); trident_task_progress() from any
 * thread.
 */
#ifndef TRIDENT_HANDLER_H
#define TRIDENT_HANDLER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TRIDENT_HANDLER_ABI 1

struct event_base;
typedef struct trident_task trident_task;
typedef struct trident_registry trident_registry;

typedef int (*trident_sync_fn)(trident_task *t, void *ctx);
typedef void (*trident_async_fn)(trident_task *t, struct event_base *base, void *ctx);

int trident_handler_abi(void);

/* Registration, from trident_plugin_init. default_timeout_ms applies to
 * tasks that carry none (0: the worker's default). Returns 0, or -1 if the
 * name is taken or invalid. ctx is passed to every call, unowned. */
int trident_register_sync(trident_registry *r, const char *name, trident_sync_fn fn, void *ctx,
                          uint64_t default_timeout_ms);
int trident_register_async(trident_registry *r, const char *name, trident_async_fn fn, void *ctx,
                           uint64_t default_timeout_ms);

/* The task. Strings are NUL-terminated; the payload is not. All borrowed
 * until the task ends. */
const char *trident_task_id(const trident_task *t);
const char *trident_task_name(const trident_task *t);
const void *trident_task_payload(const trident_task *t, size_t *len);
unsigned trident_task_attempt(const trident_task *t);
/* trident_task_deadline_ms: unix ms when its time limit ends; 0 = none. */
uint64_t trident_task_deadline_ms(const trident_task *t);
/* trident_task_cancelled: nonzero once the task was cancelled or ran out of
 * time. A long handler should look now and then, and stop. */
int trident_task_cancelled(const trident_task *t);

/* trident_task_set_result: copies len bytes as the result. */
void trident_task_set_result(trident_task *t, const void *data, size_t len);
/* trident_task_set_error: the failure message (printf-like). A retryable
 * failure is tried again after a backoff while attempts are left. */
void trident_task_set_error(trident_task *t, int retryable, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* trident_task_progress: 0..100 and a short message (may be NULL). */
void trident_task_progress(trident_task *t, unsigned percent, const char *message);
/* trident_task_complete: the end of an async task; ok = 1 success, 0 failure. */
void trident_task_complete(trident_task *t, int ok);

#ifdef __cplusplus
}
#endif

#endif

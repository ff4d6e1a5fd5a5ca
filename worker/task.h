/* task: one task inside a worker child, and the public trident_task API
 * (include/trident/handler.h) over it.
 *
 * The child's loop thread creates a task from a TASK push, hands it to its
 * handler (on an executor thread, on the loop, or to a program), and sends
 * ACK or FAIL from what the handler set. The cancelled flag is the one
 * field written by one thread and read by another: it is atomic. Progress
 * reports from executor threads go through the hook the child installs.
 */
#ifndef TRIDENT_TASK_H
#define TRIDENT_TASK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "errors.h"
#include "trident/handler.h"

struct handler;
struct event;

typedef enum task_phase {
    TASK_RUNNING,    /* its handler has it */
    TASK_FINISHED,   /* the handler is done; the outcome is being reported */
    TASK_ABANDONED,  /* timed out or cancelled: reported as such; a late handler return is ignored */
} task_phase;

struct trident_task {
    char *id, *name, *queue;       /* owned, NUL-terminated */
    uint8_t *payload;              /* owned */
    size_t payload_len;
    unsigned attempt;
    uint64_t timeout_ms;           /* effective limit, 0 = none */
    uint64_t deadline_ms;          /* unix ms, 0 = none */
    atomic_int cancelled;
    task_phase phase;

    /* the outcome, set by the handler */
    buf result;
    char *error;                   /* owned; NULL = no message */
    bool retryable;
    bool ok;
    error_code code;               /* for a failure: TASK_FAILED, TIMEOUT, CANCELLED, NO_HANDLER */
    error_code stop_code;          /* why cancelled was set: TIMEOUT or CANCELLED */

    const struct handler *h;
    void *owner;                   /* the child */
    void (*on_progress)(trident_task *t, unsigned percent, const char *message);
    void (*on_complete)(trident_task *t); /* async: the loop thread learns the end */
    struct event *timer;           /* the time limit, then the kill grace */
    int pid;                       /* exec: the program's process (group), 0 = none */
    struct trident_task *prev, *next; /* the child's running list */
};

/* task_new: a task from a TASK push's fields (copied). */
trident_task *task_new(const char *id, size_t idlen, const char *name, size_t namelen,
                       const char *queue, size_t qlen, const void *payload, size_t plen,
                       unsigned attempt);
void task_free(trident_task *t);

/* task_fail: sets a failure (code, message) without the printf form. */
void task_fail(trident_task *t, error_code code, bool retryable, const char *message);

#endif

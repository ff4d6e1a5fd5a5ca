#include "task.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mem.h"

trident_task *task_new(const char *id, size_t idlen, const char *name, size_t namelen,
                       const char *queue, size_t qlen, const void *payload, size_t plen,
                       unsigned attempt)
{
    trident_task *t = mem_calloc(1, sizeof *t);
    t->id = mem_strndup(id, idlen);
    t->name = mem_strndup(name, namelen);
    t->queue = mem_strndup(queue, qlen);
    t->payload = mem_malloc(plen + 1);
    memcpy(t->payload, payload, plen);
    t->payload[plen] = '\0'; /* handlers that read text may rely on it */
    t->payload_len = plen;
    t->attempt = attempt;
    atomic_init(&t->cancelled, 0);
    t->phase = TASK_RUNNING;
    t->code = ERR_TASK_FAILED;
    t->retryable = true;
    buf_init(&t->result);
    return t;
}

void task_free(trident_task *t)
{
    mem_free(t->id);
    mem_free(t->name);
    mem_free(t->queue);
    mem_free(t->payload);
    mem_free(t->error);
    buf_free(&t->result);
    mem_free(t);
}

void task_fail(trident_task *t, error_code code, bool retryable, const char *message)
{
    t->ok = false;
    t->code = code;
    t->retryable = retryable;
    mem_free(t->error);
    t->error = mem_strdup(message);
}

/* ---- the public API ---- */

int trident_handler_abi(void)
{
    return TRIDENT_HANDLER_ABI;
}

const char *trident_task_id(const trident_task *t) { return t->id; }
const char *trident_task_name(const trident_task *t) { return t->name; }
unsigned trident_task_attempt(const trident_task *t) { return t->attempt; }
uint64_t trident_task_deadline_ms(const trident_task *t) { return t->deadline_ms; }

const void *trident_task_payload(const trident_task *t, size_t *len)
{
    if (len)
        *len = t->payload_len;
    return t->payload;
}

int trident_task_cancelled(const trident_task *t)
{
    return atomic_load_explicit(&t->cancelled, memory_order_acquire);
}

void trident_task_set_result(trident_task *t, const void *data, size_t len)
{
    buf_reset(&t->result);
    buf_append(&t->result, data, len);
}

void trident_task_set_error(trident_task *t, int retryable, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    task_fail(t, ERR_TASK_FAILED, retryable != 0, msg);
}

void trident_task_progress(trident_task *t, unsigned percent, const char *message)
{
    if (t->on_progress)
        t->on_progress(t, percent > 100 ? 100 : percent, message);
}

void trident_task_complete(trident_task *t, int ok)
{
    t->ok = ok != 0;
    if (t->on_complete)
        t->on_complete(t);
}

/* wire: requests and task infos shared by libtrident's APIs (wire.h). */
#include "wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mem.h"

char *wire_dup(const void *p, size_t n)
{
    char *s = mem_malloc(n + 1);
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

void wire_request(proto_msg *m, proto_op op, const char *queue)
{
    memset(m, 0, sizeof *m);
    m->op = op;
    if (queue) {
        m->task.present |= TF_QUEUE;
        m->task.queue = proto_slice_of(queue);
    }
}

void wire_hello(proto_msg *m, bool admin, const char *client_name, const char *password)
{
    wire_request(m, OP_HELLO, NULL);
    m->present |= MF_VERSION | MF_ROLE | MF_CLIENT;
    m->version = PROTO_VERSION;
    m->role = proto_slice_of(admin ? "admin" : "client");
    m->client = proto_slice_of(client_name);
    if (password) {
        m->present |= MF_PASSWORD;
        m->password = proto_slice_of(password);
    }
}

int wire_task(const trident_submit_opts *o, uint64_t max_payload, const char *what,
              proto_task *t, wire_err *e)
{
    memset(t, 0, sizeof *t);
    snprintf(e->code, sizeof e->code, "%s", CODE_INVALID);
    if (o == NULL || o->name == NULL || o->name[0] == '\0') {
        snprintf(e->msg, sizeof e->msg, "%sa task needs a name", what);
        return TRIDENT_EINVAL;
    }
    if (o->payload_len > 0 && o->payload == NULL) {
        snprintf(e->msg, sizeof e->msg, "%spayload is NULL", what);
        return TRIDENT_EINVAL;
    }
    uint64_t limit = max_payload < UINT32_MAX ? max_payload : UINT32_MAX;
    if (o->payload_len > limit) {
        snprintf(e->code, sizeof e->code, "PAYLOAD_TOO_LARGE");
        snprintf(e->msg, sizeof e->msg,
                 "%sthe payload is %zu bytes, more than the broker's limit of %" PRIu64
                 " bytes", what, o->payload_len, limit);
        return TRIDENT_EINVAL;
    }
    t->present = TF_NAME;
    t->name = proto_slice_of(o->name);
    /* Each option that differs from "not given" becomes its wire key. */
#define TASK_KEY(given, bit, field, value) \
    do {                                   \
        if (given) {                       \
            t->present |= (bit);           \
            t->field = (value);            \
        }                                  \
    } while (0)
    TASK_KEY(o->queue, TF_QUEUE, queue, proto_slice_of(o->queue));
    TASK_KEY(o->payload_len, TF_PAYLOAD, payload,
             ((proto_slice){ o->payload, (uint32_t)o->payload_len }));
    TASK_KEY(o->id, TF_ID, id, proto_slice_of(o->id));
    TASK_KEY(o->priority, TF_PRIORITY, priority, o->priority);
    TASK_KEY(o->delay_ms, TF_DELAY, delay, o->delay_ms);
    TASK_KEY(o->run_at_ms, TF_RUN_AT, run_at, o->run_at_ms);
    TASK_KEY(o->max_retries >= 0, TF_MAX_RETRIES, max_retries, (uint64_t)o->max_retries);
    TASK_KEY(o->timeout_ms, TF_TIMEOUT, timeout, o->timeout_ms);
    TASK_KEY(o->result_ttl_ms >= 0, TF_RESULT_TTL, result_ttl, (uint64_t)o->result_ttl_ms);
#undef TASK_KEY
    return TRIDENT_OK;
}

void wire_info(trident_task_info *out, const proto_task *t, proto_slice message)
{
    memset(out, 0, sizeof *out);
    proto_slice_cstr(t->id, out->id, sizeof out->id);
    proto_slice_cstr(t->queue, out->queue, sizeof out->queue);
    proto_slice_cstr(t->name, out->name, sizeof out->name);
    proto_slice_cstr(t->state, out->state, sizeof out->state);
    proto_slice_cstr(t->error_code, out->error_code, sizeof out->error_code);
    out->attempt = t->attempt;
    out->max_retries = t->max_retries;
    out->priority = (int)t->priority;
    out->progress = (unsigned)t->progress;
    out->created_at_ms = t->created_at;
    out->run_at_ms = t->run_at;
    out->started_at_ms = t->started_at;
    out->finished_at_ms = t->finished_at;
    if (t->present & TF_RESULT) {
        out->result = (unsigned char *)wire_dup(t->result.ptr, t->result.len);
        out->result_len = t->result.len;
    }
    if (t->present & TF_ERROR)
        out->error = wire_dup(t->error.ptr, t->error.len);
    if (message.ptr)
        out->message = wire_dup(message.ptr, message.len);
}

int wire_outcome(const trident_task_info *t, const char **code)
{
    if (strcmp(t->state, "succeeded") == 0) {
        *code = "";
        return TRIDENT_OK;
    }
    *code = t->error_code[0] ? t->error_code
            : strcmp(t->state, "cancelled") == 0 ? "CANCELLED" : "TASK_FAILED";
    return TRIDENT_ETASK;
}

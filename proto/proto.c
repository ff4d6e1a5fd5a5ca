#include "proto.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "frame.h"
#include "id.h"
#include "mpread.h"

/* ------------------------------------------------------------------------
 * The field table
 *
 * One row per wire key: its type, whether it belongs to proto_task (task)
 * or proto_msg, its presence bit, where it lives, and the value check it
 * must pass. Rows are sorted by key (a unit test checks it) for the binary
 * search in field_find. Adding a field is adding a row and a struct member.
 * ------------------------------------------------------------------------ */

typedef enum ftype { FT_UINT, FT_INT, FT_BOOL, FT_STR, FT_BIN, FT_STRS, FT_UINTS, FT_TASKS, FT_MAP } ftype;
typedef enum fcheck { CK_NONE, CK_QUEUE, CK_NAME, CK_ID, CK_PRIORITY, CK_RETRIES, CK_PROGRESS, CK_TEXT } fcheck;

typedef struct field {
    const char *key;
    ftype type;
    bool task;      /* in proto_task rather than proto_msg */
    uint64_t bit;
    size_t off;
    fcheck check;
} field;

#define M(k, t, b, member, ck) { k, t, false, b, offsetof(proto_msg, member), ck }
#define T(k, t, b, member, ck) { k, t, true, b, offsetof(proto_task, member), ck }

static const field fields[] = {
    T("attempt", FT_UINT, TF_ATTEMPT, attempt, CK_NONE),
    M("capacity", FT_UINT, MF_CAPACITY, capacity, CK_NONE),
    M("client", FT_STR, MF_CLIENT, client, CK_TEXT),
    M("code", FT_STR, MF_CODE, code, CK_TEXT),
    M("count", FT_UINT, MF_COUNT, count, CK_NONE),
    T("created_at", FT_UINT, TF_CREATED_AT, created_at, CK_NONE),
    M("credits", FT_UINT, MF_CREDITS, credits, CK_NONE),
    T("deadline", FT_UINT, TF_DEADLINE, deadline, CK_NONE),
    T("delay", FT_UINT, TF_DELAY, delay, CK_NONE),
    M("done", FT_UINT, MF_DONE, done, CK_NONE),
    M("duplicate", FT_BOOL, MF_DUPLICATE, duplicate, CK_NONE),
    M("duplicates", FT_UINTS, MF_DUPLICATES, duplicates, CK_NONE),
    T("error", FT_STR, TF_ERROR, error, CK_TEXT),
    T("error_code", FT_STR, TF_ERROR_CODE, error_code, CK_TEXT),
    M("failed", FT_UINT, MF_FAILED, failed, CK_NONE),
    T("finished_at", FT_UINT, TF_FINISHED_AT, finished_at, CK_NONE),
    M("heartbeat", FT_UINT, MF_HEARTBEAT, heartbeat, CK_NONE),
    M("host", FT_STR, MF_HOST, host, CK_TEXT),
    T("id", FT_STR, TF_ID, id, CK_ID),
    M("ids", FT_STRS, MF_IDS, ids, CK_ID),
    M("info", FT_MAP, MF_INFO, info, CK_NONE),
    M("lease", FT_UINT, MF_LEASE, lease, CK_NONE),
    M("limit", FT_UINT, MF_LIMIT, limit, CK_NONE),
    M("max_frame", FT_UINT, MF_MAX_FRAME, max_frame, CK_NONE),
    M("max_payload", FT_UINT, MF_MAX_PAYLOAD, max_payload, CK_NONE),
    T("max_retries", FT_UINT, TF_MAX_RETRIES, max_retries, CK_RETRIES),
    M("message", FT_STR, MF_MESSAGE, message, CK_TEXT),
    T("name", FT_STR, TF_NAME, name, CK_NAME),
    M("node", FT_STR, MF_NODE, node, CK_TEXT),
    M("offset", FT_UINT, MF_OFFSET, offset, CK_NONE),
    M("outcome", FT_STR, MF_OUTCOME, outcome, CK_TEXT),
    M("password", FT_STR, MF_PASSWORD, password, CK_TEXT),
    T("payload", FT_BIN, TF_PAYLOAD, payload, CK_NONE),
    M("pid", FT_UINT, MF_PID, pid, CK_NONE),
    M("prefetch", FT_UINT, MF_PREFETCH, prefetch, CK_NONE),
    T("priority", FT_INT, TF_PRIORITY, priority, CK_PRIORITY),
    T("progress", FT_UINT, TF_PROGRESS, progress, CK_PROGRESS),
    M("push_result", FT_BOOL, MF_PUSH_RESULT, push_result, CK_NONE),
    T("queue", FT_STR, TF_QUEUE, queue, CK_QUEUE),
    M("queues", FT_STRS, MF_QUEUES, queues, CK_QUEUE),
    M("reason", FT_STR, MF_REASON, reason, CK_TEXT),
    T("result", FT_BIN, TF_RESULT, result, CK_NONE),
    T("result_ttl", FT_UINT, TF_RESULT_TTL, result_ttl, CK_NONE),
    M("retryable", FT_BOOL, MF_RETRYABLE, retryable, CK_NONE),
    M("rid", FT_UINT, MF_RID, rid, CK_NONE),
    M("role", FT_STR, MF_ROLE, role, CK_TEXT),
    M("rss", FT_UINT, MF_RSS, rss, CK_NONE),
    T("run_at", FT_UINT, TF_RUN_AT, run_at, CK_NONE),
    M("running", FT_STRS, MF_RUNNING, running, CK_ID),
    M("server", FT_STR, MF_SERVER, server, CK_TEXT),
    T("started_at", FT_UINT, TF_STARTED_AT, started_at, CK_NONE),
    T("state", FT_STR, TF_STATE, state, CK_TEXT),
    M("stats", FT_MAP, MF_STATS, stats, CK_NONE),
    M("tasks", FT_TASKS, MF_TASKS, tasks, CK_NONE),
    M("time", FT_UINT, MF_TIME, time, CK_NONE),
    T("timeout", FT_UINT, TF_TIMEOUT, timeout, CK_NONE),
    M("total", FT_UINT, MF_TOTAL, total, CK_NONE),
    M("version", FT_UINT, MF_VERSION, version, CK_NONE),
    M("wait", FT_UINT, MF_WAIT, wait, CK_NONE),
    M("weights", FT_UINTS, MF_WEIGHTS, weights, CK_NONE),
    M("worker_id", FT_STR, MF_WORKER_ID, worker_id, CK_TEXT),
};

#undef M
#undef T

#define NFIELDS (sizeof fields / sizeof fields[0])

/* key_cmp: orders keys as the table is sorted: bytewise, shorter first on a
 * common prefix (strcmp order). */
static int key_cmp(const uint8_t *k, size_t klen, const char *key)
{
    size_t n = strlen(key);
    int c = memcmp(k, key, klen < n ? klen : n);
    if (c != 0)
        return c;
    return klen < n ? -1 : klen > n ? 1 : 0;
}

static const field *field_find(const uint8_t *k, size_t klen)
{
    size_t lo = 0, hi = NFIELDS;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = key_cmp(k, klen, fields[mid].key);
        if (c == 0)
            return &fields[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* ------------------------------------------------------------------------
 * Ops: names, which side reads them, and what each must carry
 * ------------------------------------------------------------------------ */

typedef struct op_info {
    const char *name;
    bool request;      /* read by the broker */
    bool push;         /* read by peers (replies and pushes) */
    uint64_t need_msg; /* MF_* bits that must be present */
    uint32_t need_task;/* TF_* bits that must be present */
} op_info;

static const op_info ops[OP__COUNT] = {
    [OP_NONE] = { "NONE", false, false, 0, 0 },
    [OP_HELLO] = { "HELLO", true, false, MF_VERSION, 0 },
    [OP_PING] = { "PING", true, false, 0, 0 },
    [OP_SUBMIT] = { "SUBMIT", true, false, 0, TF_NAME },
    [OP_SUBMIT_BATCH] = { "SUBMIT_BATCH", true, false, MF_TASKS, 0 },
    [OP_GET] = { "GET", true, false, 0, TF_ID },
    [OP_CANCEL] = { "CANCEL", true, true, 0, TF_ID },
    [OP_STATS] = { "STATS", true, false, 0, 0 },
    [OP_INFO] = { "INFO", true, false, 0, 0 },
    [OP_PAUSE] = { "PAUSE", true, false, 0, TF_QUEUE },
    [OP_RESUME] = { "RESUME", true, false, 0, TF_QUEUE },
    [OP_PURGE] = { "PURGE", true, false, 0, TF_QUEUE },
    [OP_DEAD_LIST] = { "DEAD_LIST", true, false, 0, TF_QUEUE },
    [OP_DEAD_RETRY] = { "DEAD_RETRY", true, false, 0, TF_QUEUE },
    [OP_DEAD_PURGE] = { "DEAD_PURGE", true, false, 0, TF_QUEUE },
    [OP_CREDIT] = { "CREDIT", true, false, MF_CREDITS, 0 },
    [OP_ACK] = { "ACK", true, false, 0, TF_ID },
    [OP_FAIL] = { "FAIL", true, false, 0, TF_ID },
    [OP_HEARTBEAT] = { "HEARTBEAT", true, false, 0, 0 },
    [OP_PROGRESS] = { "PROGRESS", true, false, 0, TF_ID | TF_PROGRESS },
    [OP_OK] = { "OK", false, true, MF_RID, 0 },
    [OP_ERROR] = { "ERROR", false, true, MF_CODE, 0 },
    [OP_TASK] = { "TASK", false, true, 0, TF_ID | TF_QUEUE | TF_NAME | TF_ATTEMPT },
    [OP_RESULT] = { "RESULT", false, true, 0, TF_ID | TF_STATE },
    [OP_SHUTDOWN] = { "SHUTDOWN", false, true, 0, 0 },
};

const char *proto_op_name(proto_op op)
{
    return (unsigned)op < OP__COUNT ? ops[op].name : "NONE";
}

proto_op proto_op_from_name(const uint8_t *s, size_t len)
{
    for (int i = 1; i < OP__COUNT; i++)
        if (key_cmp(s, len, ops[i].name) == 0)
            return (proto_op)i;
    return OP_NONE;
}

void proto_limits_default(proto_limits *l)
{
    l->max_frame = PROTO_FRAME_MAX_DEFAULT;
    l->max_depth = 8;
    l->max_elements = 1u << 20;
    l->max_string = 1u << 20;
    l->max_batch = 10000;
}

/* ------------------------------------------------------------------------
 * Slices
 * ------------------------------------------------------------------------ */

bool proto_slice_eq(proto_slice a, const char *s)
{
    size_t n = strlen(s);
    return a.len == n && (n == 0 || memcmp(a.ptr, s, n) == 0);
}

const char *proto_slice_cstr(proto_slice a, char *out, size_t outlen)
{
    if (outlen == 0)
        return out;
    size_t n = a.len < outlen - 1 ? a.len : outlen - 1;
    if (n)
        memcpy(out, a.ptr, n);
    out[n] = '\0';
    return out;
}

proto_slice proto_slice_of(const char *s)
{
    return (proto_slice){ (const uint8_t *)s, (uint32_t)strlen(s) };
}

/* ------------------------------------------------------------------------
 * Decoding
 *
 * Pass one (mpread_skip over the whole body) proves the structure sound
 * and within the limits; pass two reads the fields with a reader that no
 * longer needs the element budget. In pass two a malformed byte cannot
 * occur, so every typed-read failure is a type mismatch: BAD_REQUEST.
 * ------------------------------------------------------------------------ */

typedef struct decoder {
    const proto_limits *lim;
    proto_error *err;
    bool failed;          /* err holds the first problem */
} decoder;

__attribute__((format(printf, 3, 4)))
static void set_err(decoder *d, error_code code, const char *fmt, ...)
{
    if (d->failed)
        return;
    d->failed = true;
    d->err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err->message, sizeof d->err->message, fmt, ap);
    va_end(ap);
}

static bool printable(const uint8_t *p, uint32_t n, bool braces_ok)
{
    for (uint32_t i = 0; i < n; i++) {
        if (p[i] < 0x21 || p[i] > 0x7e)
            return false;
        if (!braces_ok && (p[i] == '{' || p[i] == '}'))
            return false;
    }
    return true;
}

bool proto_queue_valid(const void *s, size_t n)
{
    return n > 0 && n <= PROTO_QUEUE_MAX && printable(s, (uint32_t)n, false);
}

/* check_str: the value check of a str field; sets the error on failure. */
static bool check_str(decoder *d, const field *f, const uint8_t *s, uint32_t n)
{
    switch (f->check) {
    case CK_QUEUE:
        if (!proto_queue_valid(s, n)) {
            set_err(d, ERR_BAD_REQUEST, "key '%s': a queue name is 1 to 128 printable "
                    "ASCII bytes without spaces or braces", f->key);
            return false;
        }
        return true;
    case CK_NAME:
        if (n == 0 || n > PROTO_NAME_MAX || !printable(s, n, true)) {
            set_err(d, ERR_BAD_REQUEST, "key '%s': a task name is 1 to 256 printable "
                    "ASCII bytes without spaces", f->key);
            return false;
        }
        return true;
    case CK_ID:
        if (!id_client_valid((const char *)s, n)) {
            set_err(d, ERR_BAD_REQUEST, "key '%s': a task id is 1 to 128 printable "
                    "ASCII bytes without spaces", f->key);
            return false;
        }
        return true;
    case CK_TEXT:
        if (n > PROTO_TEXT_MAX) {
            set_err(d, ERR_BAD_REQUEST, "key '%s': longer than 65536 bytes", f->key);
            return false;
        }
        return true;
    default:
        return true;
    }
}

static bool check_num(decoder *d, const field *f, int64_t sv, uint64_t uv)
{
    if (f->check == CK_PRIORITY && (sv < -PROTO_PRIORITY_MAX || sv > PROTO_PRIORITY_MAX)) {
        set_err(d, ERR_BAD_REQUEST, "key '%s': must be in -1000..1000", f->key);
        return false;
    }
    if (f->check == CK_RETRIES && uv > PROTO_RETRIES_MAX) {
        set_err(d, ERR_BAD_REQUEST, "key '%s': must be at most 1000", f->key);
        return false;
    }
    if (f->check == CK_PROGRESS && uv > 100) {
        set_err(d, ERR_BAD_REQUEST, "key '%s': must be in 0..100", f->key);
        return false;
    }
    return true;
}

static void decode_map_body(decoder *d, mpread *r, uint32_t pairs, proto_msg *m, proto_task *t,
                            proto_slice *op);

/* read_array: a FT_STRS / FT_UINTS / FT_TASKS value into *a. */
static bool read_array(decoder *d, mpread *r, const field *f, proto_array *a)
{
    const uint8_t *start = r->p;
    uint32_t n;
    if (mpread_array(r, &n) < 0) {
        set_err(d, ERR_BAD_REQUEST, "key '%s': must be an array", f->key);
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *s;
        uint32_t len;
        uint64_t v;
        uint32_t pairs;
        switch (f->type) {
        case FT_STRS:
            if (mpread_str(r, &s, &len) < 0) {
                set_err(d, ERR_BAD_REQUEST, "key '%s': must be an array of strings", f->key);
                return false;
            }
            if (!check_str(d, f, s, len))
                return false;
            break;
        case FT_UINTS:
            if (mpread_uint(r, &v) < 0) {
                set_err(d, ERR_BAD_REQUEST, "key '%s': must be an array of unsigned integers",
                        f->key);
                return false;
            }
            break;
        default: {
            if (mpread_map(r, &pairs) < 0) {
                set_err(d, ERR_BAD_REQUEST, "key '%s': must be an array of maps", f->key);
                return false;
            }
            /* Elements report into their own error, so that an earlier
             * field's error is not mistaken for theirs. */
            proto_task tmp;
            proto_error sub_err;
            decoder sub = { d->lim, &sub_err, false };
            memset(&tmp, 0, sizeof tmp);
            decode_map_body(&sub, r, pairs, NULL, &tmp, NULL);
            if (sub.failed) {
                if (!d->failed || sub_err.code == ERR_BAD_FRAME) {
                    d->failed = true;
                    *d->err = sub_err;
                }
                return false;
            }
            break;
        }
        }
    }
    a->raw.ptr = start;
    a->raw.len = (uint32_t)(r->p - start);
    a->n = n;
    return true;
}

/* keys_are_strings: consumes one value (already validated by pass one);
 * false if any map in it, at any depth, has a key that is not a string. */
static bool keys_are_strings(mpread *r)
{
    uint32_t n;
    mpread_type t = mpread_peek(r);
    if (t == MP_MAP) {
        mpread_map(r, &n);
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *k;
            uint32_t kl;
            if (mpread_str(r, &k, &kl) < 0 || !keys_are_strings(r))
                return false;
        }
        return true;
    }
    if (t == MP_ARRAY) {
        mpread_array(r, &n);
        for (uint32_t i = 0; i < n; i++)
            if (!keys_are_strings(r))
                return false;
        return true;
    }
    return mpread_skip(r) == 0;
}

/* read_value: the value of field f into m or t. */
static void read_value(decoder *d, mpread *r, const field *f, proto_msg *m, proto_task *t)
{
    void *base = f->task ? (void *)t : (void *)m;
    void *dst = (char *)base + f->off;
    const uint8_t *start = r->p;
    const uint8_t *s;
    uint32_t n;
    uint64_t uv = 0;
    int64_t sv = 0;
    bool ok = false;
    switch (f->type) {
    case FT_UINT:
        if (!(ok = mpread_uint(r, &uv) == 0))
            set_err(d, ERR_BAD_REQUEST, "key '%s': must be an unsigned integer", f->key);
        else if ((ok = check_num(d, f, 0, uv)))
            *(uint64_t *)dst = uv;
        break;
    case FT_INT:
        if (!(ok = mpread_int(r, &sv) == 0))
            set_err(d, ERR_BAD_REQUEST, "key '%s': must be an integer", f->key);
        else if ((ok = check_num(d, f, sv, 0)))
            *(int64_t *)dst = sv;
        break;
    case FT_BOOL:
        if (!(ok = mpread_bool(r, (bool *)dst) == 0))
            set_err(d, ERR_BAD_REQUEST, "key '%s': must be a boolean", f->key);
        break;
    case FT_STR:
    case FT_BIN:
        if (f->type == FT_STR ? mpread_str(r, &s, &n) < 0 : mpread_bin(r, &s, &n) < 0) {
            set_err(d, ERR_BAD_REQUEST, f->type == FT_STR ? "key '%s': must be a string"
                                                            : "key '%s': must be binary or a string",
                    f->key);
        } else if ((ok = check_str(d, f, s, n))) {
            *(proto_slice *)dst = (proto_slice){ s, n };
        }
        break;
    case FT_STRS:
    case FT_UINTS:
    case FT_TASKS:
        ok = read_array(d, r, f, dst);
        break;
    case FT_MAP:
        if (mpread_peek(r) != MP_MAP || !keys_are_strings(r)) {
            set_err(d, ERR_BAD_REQUEST, "key '%s': must be a map with string keys", f->key);
        } else {
            *(proto_slice *)dst = (proto_slice){ start, (uint32_t)(r->p - start) };
            ok = true;
        }
        break;
    }
    if (!ok) {
        /* Keep walking from the value's start: the rid may come later. */
        r->p = start;
        mpread_skip(r);
        return;
    }
    if (f->task)
        t->present |= (uint32_t)f->bit;
    else
        m->present |= f->bit;
}

/* decode_map_body: reads `pairs` key/value pairs. At the top level m is the
 * message and op receives the op string; inside a task element m and op are
 * NULL and only task fields are read. */
static void decode_map_body(decoder *d, mpread *r, uint32_t pairs, proto_msg *m, proto_task *t,
                            proto_slice *op)
{
    for (uint32_t i = 0; i < pairs; i++) {
        const uint8_t *k;
        uint32_t klen;
        if (mpread_str(r, &k, &klen) < 0) {
            /* Structural: it overrides a field error found earlier, since
             * it closes the connection and the walk cannot go on. */
            d->failed = false;
            set_err(d, ERR_BAD_FRAME, "map keys must be strings%s", "");
            return;
        }
        if (mpread_peek(r) == MP_NIL) { /* nil is the same as absent */
            mpread_nil(r);
            continue;
        }
        if (op && key_cmp(k, klen, "op") == 0) {
            if (op->ptr) {
                set_err(d, ERR_BAD_REQUEST, "key '%s': given twice", "op");
                mpread_skip(r);
            } else if (mpread_str(r, &op->ptr, &op->len) < 0) {
                set_err(d, ERR_BAD_REQUEST, "key '%s': must be a string", "op");
                mpread_skip(r);
            }
            continue;
        }
        const field *f = field_find(k, klen);
        if (!f || (!m && !f->task)) {
            mpread_skip(r); /* unknown keys are ignored */
            continue;
        }
        bool seen = f->task ? (t->present & f->bit) != 0 : (m->present & f->bit) != 0;
        if (seen) {
            set_err(d, ERR_BAD_REQUEST, "key '%s': given twice", f->key);
            mpread_skip(r);
            continue;
        }
        if (f->type == FT_TASKS && !m) {
            mpread_skip(r);
            continue;
        }
        read_value(d, r, f, m, t);
    }
}

static const char *task_key_of(uint32_t bit)
{
    for (size_t i = 0; i < NFIELDS; i++)
        if (fields[i].task && fields[i].bit == bit)
            return fields[i].key;
    return "?";
}

static const char *msg_key_of(uint64_t bit)
{
    for (size_t i = 0; i < NFIELDS; i++)
        if (!fields[i].task && fields[i].bit == bit)
            return fields[i].key;
    return "?";
}

/* check_batch: every element of a SUBMIT_BATCH needs a name. */
static void check_batch(decoder *d, const proto_msg *m)
{
    if (m->tasks.n == 0) {
        set_err(d, ERR_BAD_REQUEST, "key '%s': a batch holds at least one task", "tasks");
        return;
    }
    if (m->tasks.n > d->lim->max_batch) {
        set_err(d, ERR_BAD_REQUEST, "key 'tasks': %u tasks, more than the limit of %u",
                m->tasks.n, d->lim->max_batch);
        return;
    }
    size_t pos = 0;
    proto_task t;
    for (uint32_t i = 0; proto_tasks_next(&m->tasks, &pos, &t) == PROTO_OK; i++) {
        if (!(t.present & TF_NAME) && !(m->task.present & TF_NAME)) {
            set_err(d, ERR_BAD_REQUEST, "key 'tasks': task %u has no 'name'", i);
            return;
        }
        /* An element's delay or run_at replaces both of the top level's. */
        if ((t.present & TF_DELAY) && (t.present & TF_RUN_AT)) {
            set_err(d, ERR_BAD_REQUEST, "key 'tasks': task %u gives both 'delay' and 'run_at'", i);
            return;
        }
    }
}

proto_status proto_decode(const uint8_t *body, size_t len, proto_side side,
                          const proto_limits *lim, proto_msg *m, proto_error *err)
{
    memset(m, 0, sizeof *m);
    err->code = ERR_NONE;
    err->message[0] = '\0';
    decoder d = { lim, err, false };

    /* Pass one: structure and limits. */
    mpread r;
    mpread_init(&r, body, len, lim->max_depth, lim->max_elements, lim->max_string);
    if (mpread_peek(&r) != MP_MAP) {
        set_err(&d, ERR_BAD_FRAME, "the body must be a msgpack map%s", "");
        return PROTO_ERR;
    }
    if (mpread_skip(&r) < 0) {
        set_err(&d, ERR_BAD_FRAME, "malformed msgpack: %s", r.error);
        return PROTO_ERR;
    }
    if (mpread_left(&r) != 0) {
        set_err(&d, ERR_BAD_FRAME, "bytes after the map%s", "");
        return PROTO_ERR;
    }

    /* Pass two: the fields. */
    mpread_init(&r, body, len, lim->max_depth, UINT32_MAX, UINT32_MAX);
    uint32_t pairs;
    mpread_map(&r, &pairs);
    proto_slice op = { NULL, 0 };
    decode_map_body(&d, &r, pairs, m, &m->task, &op);
    if (d.failed && err->code == ERR_BAD_FRAME) {
        /* The connection closes: the error answers no request. */
        m->present &= ~(uint64_t)MF_RID;
        return PROTO_ERR;
    }

    /* The op decides what else must be there. The walk went on past a bad
     * field, so whatever is reported, the rid (if sent) is known and echoed.
     * Order: the op, then field errors, then a missing rid or required key. */
    d.failed = false;
    error_code field_err = err->code;
    char field_msg[sizeof err->message];
    memcpy(field_msg, err->message, sizeof field_msg);
    err->code = ERR_NONE;

    if (op.ptr == NULL) {
        set_err(&d, ERR_BAD_REQUEST, "missing key '%s'", "op");
        return PROTO_ERR;
    }
    m->op = proto_op_from_name(op.ptr, op.len);
    bool readable = m->op != OP_NONE && (side == PROTO_SIDE_BROKER ? ops[m->op].request
                                                                     : ops[m->op].push);
    if (!readable) {
        char name[64];
        proto_slice_cstr(op, name, sizeof name);
        set_err(&d, ERR_UNKNOWN_OP, side == PROTO_SIDE_BROKER ? "unknown request op '%s'"
                                                               : "unknown op '%s'", name);
        m->op = OP_NONE;
        return PROTO_ERR;
    }
    if (field_err != ERR_NONE) {
        err->code = field_err;
        memcpy(err->message, field_msg, sizeof err->message);
        return PROTO_ERR;
    }
    if (side == PROTO_SIDE_BROKER && !(m->present & MF_RID)) {
        set_err(&d, ERR_BAD_REQUEST, "missing key '%s'", "rid");
        return PROTO_ERR;
    }
    const op_info *info = &ops[m->op];
    for (uint64_t b = 1; b; b <<= 1)
        if ((info->need_msg & b) && !(m->present & b)) {
            set_err(&d, ERR_BAD_REQUEST, "missing key '%s'", msg_key_of(b));
            return PROTO_ERR;
        }
    for (uint32_t b = 1; b; b <<= 1)
        if ((info->need_task & b) && !(m->task.present & b)) {
            set_err(&d, ERR_BAD_REQUEST, "missing key '%s'", task_key_of(b));
            return PROTO_ERR;
        }
    if ((m->task.present & TF_DELAY) && (m->task.present & TF_RUN_AT))
        set_err(&d, ERR_BAD_REQUEST, "keys 'delay' and 'run_at': give one, not both");
    if (m->op == OP_SUBMIT_BATCH)
        check_batch(&d, m);
    return d.failed ? PROTO_ERR : PROTO_OK;
}

/* ------------------------------------------------------------------------
 * Array iterators (over arrays proto_decode has already checked)
 * ------------------------------------------------------------------------ */

/* iter_start: positions a reader at element *pos of a; false at the end. */
static bool iter_start(const proto_array *a, size_t *pos, mpread *r)
{
    if (a->raw.len == 0)
        return false;
    mpread_init(r, a->raw.ptr, a->raw.len, 64, UINT32_MAX, UINT32_MAX);
    if (*pos == 0) {
        uint32_t n;
        mpread_array(r, &n);
    } else {
        r->p += *pos;
    }
    return mpread_left(r) > 0;
}

proto_status proto_tasks_next(const proto_array *a, size_t *pos, proto_task *t)
{
    mpread r;
    if (!iter_start(a, pos, &r))
        return PROTO_AGAIN;
    memset(t, 0, sizeof *t);
    uint32_t pairs;
    mpread_map(&r, &pairs);
    proto_error err;
    decoder d = { NULL, &err, false };
    decode_map_body(&d, &r, pairs, NULL, t, NULL);
    *pos = (size_t)(r.p - a->raw.ptr);
    return PROTO_OK;
}

proto_status proto_strs_next(const proto_array *a, size_t *pos, proto_slice *s)
{
    mpread r;
    if (!iter_start(a, pos, &r))
        return PROTO_AGAIN;
    mpread_str(&r, &s->ptr, &s->len);
    *pos = (size_t)(r.p - a->raw.ptr);
    return PROTO_OK;
}

proto_status proto_uints_next(const proto_array *a, size_t *pos, uint64_t *v)
{
    mpread r;
    if (!iter_start(a, pos, &r))
        return PROTO_AGAIN;
    mpread_uint(&r, v);
    *pos = (size_t)(r.p - a->raw.ptr);
    return PROTO_OK;
}

/* ------------------------------------------------------------------------
 * Encoding (msgpack-c's packer, writing into a buf)
 * ------------------------------------------------------------------------ */

static int pack_write(void *data, const char *p, size_t n)
{
    buf_append(data, p, n);
    return 0;
}

void proto_packer_init(msgpack_packer *pk, buf *out)
{
    msgpack_packer_init(pk, out, pack_write);
}

void proto_pack_strn(msgpack_packer *pk, const void *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void proto_pack_str(msgpack_packer *pk, const char *s)
{
    proto_pack_strn(pk, s, strlen(s));
}

static void pack_task_fields(msgpack_packer *pk, const proto_task *t);

static void pack_array(msgpack_packer *pk, const field *f, const proto_array *a)
{
    if (a->raw.len) { /* decoded elsewhere: pass the bytes through */
        pk->callback(pk->data, (const char *)a->raw.ptr, a->raw.len);
        return;
    }
    msgpack_pack_array(pk, a->n);
    for (uint32_t i = 0; i < a->n; i++) {
        if (f->type == FT_STRS) {
            proto_pack_strn(pk, (const char *)a->strs[i].ptr, a->strs[i].len);
        } else if (f->type == FT_UINTS) {
            msgpack_pack_uint64(pk, a->uints[i]);
        } else {
            const proto_task *t = &a->tasks[i];
            msgpack_pack_map(pk, (size_t)__builtin_popcount(t->present));
            pack_task_fields(pk, t);
        }
    }
}

static void pack_field(msgpack_packer *pk, const field *f, const void *base)
{
    const void *src = (const char *)base + f->off;
    proto_pack_str(pk, f->key);
    switch (f->type) {
    case FT_UINT:
        msgpack_pack_uint64(pk, *(const uint64_t *)src);
        break;
    case FT_INT:
        msgpack_pack_int64(pk, *(const int64_t *)src);
        break;
    case FT_BOOL:
        if (*(const bool *)src)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        break;
    case FT_STR: {
        const proto_slice *s = src;
        proto_pack_strn(pk, (const char *)s->ptr, s->len);
        break;
    }
    case FT_BIN: {
        const proto_slice *s = src;
        msgpack_pack_bin(pk, s->len);
        msgpack_pack_bin_body(pk, s->ptr, s->len);
        break;
    }
    case FT_STRS:
    case FT_UINTS:
    case FT_TASKS:
        pack_array(pk, f, src);
        break;
    case FT_MAP: {
        const proto_slice *s = src;
        pk->callback(pk->data, (const char *)s->ptr, s->len);
        break;
    }
    }
}

static void pack_task_fields(msgpack_packer *pk, const proto_task *t)
{
    for (size_t i = 0; i < NFIELDS; i++)
        if (fields[i].task && (t->present & fields[i].bit))
            pack_field(pk, &fields[i], t);
}

int proto_encode(buf *out, const proto_msg *m, uint32_t max_frame)
{
    assert(m->op > OP_NONE && m->op < OP__COUNT);
    size_t before = buf_used(out);
    size_t hdr = frame_begin(out);
    msgpack_packer pk;
    proto_packer_init(&pk, out);

    /* op, then rid, then the rest in table order: easy to read in a dump. */
    uint64_t rest = m->present & ~(uint64_t)MF_RID;
    size_t count = 1 + ((m->present & MF_RID) ? 1 : 0) + (size_t)__builtin_popcountll(rest) +
                   (size_t)__builtin_popcount(m->task.present);
    msgpack_pack_map(&pk, count);
    proto_pack_str(&pk, "op");
    proto_pack_str(&pk, ops[m->op].name);
    if (m->present & MF_RID) {
        proto_pack_str(&pk, "rid");
        msgpack_pack_uint64(&pk, m->rid);
    }
    for (size_t i = 0; i < NFIELDS; i++) {
        const field *f = &fields[i];
        if (f->task ? (m->task.present & f->bit) : (rest & f->bit))
            pack_field(&pk, f, f->task ? (const void *)&m->task : (const void *)m);
    }
    if (buf_used(out) - hdr - FRAME_HEADER_LEN > max_frame) {
        out->len = out->off + before;
        return -1;
    }
    frame_end(out, hdr);
    return 0;
}

void proto_encode_error(buf *out, bool has_rid, uint64_t rid, error_code code,
                        const char *message)
{
    proto_msg m;
    memset(&m, 0, sizeof m);
    m.op = OP_ERROR;
    if (has_rid) {
        m.present |= MF_RID;
        m.rid = rid;
    }
    m.present |= MF_CODE | MF_MESSAGE;
    m.code = proto_slice_of(errors_name(code));
    m.message = proto_slice_of(message ? message : errors_name(code));
    if (m.message.len > PROTO_TEXT_MAX)
        m.message.len = PROTO_TEXT_MAX;
    proto_encode(out, &m, UINT32_MAX);
}

bool proto_fields_sorted(void)
{
    for (size_t i = 1; i < NFIELDS; i++)
        if (strcmp(fields[i - 1].key, fields[i].key) >= 0)
            return false;
    return true;
}

#include "workers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hmap.h"
#include "log.h"
#include "mem.h"
#include "tasks.h"

#define TASK_FIELDS 8    /* per task in the fetch script's reply */
#define POLL_EVERY_MS 1000

typedef struct worker {
    conn *c;                /* NULL once the connection closed */
    char tag[192];          /* owner tag in Redis: worker_id@node.conn */
    char worker_id[128];
    char host[128];
    uint64_t pid;
    char **queues;
    uint64_t *weights;      /* NULL: strict order */
    uint32_t nqueues;
    uint64_t capacity;
    int64_t credits;
    uint64_t fetching;      /* tasks asked for by the fetch in flight */
    bool starved;           /* found nothing: wait for a ready message */
    bool woken;             /* a ready message came during the fetch in flight */
    hmap *running;          /* task ids pushed and not yet answered */
    uint64_t rss, done, failed;
    struct worker *prev, *next;
} worker;

/* A result or failure waiting for this turn's script call. */
typedef struct report {
    conn *c;                /* referenced */
    uint64_t rid;
    error_code code;        /* FAIL: the task error code */
    char *id;
    size_t idlen;
    rargs fields;           /* the script's fields after the id */
    uint64_t sent_at;       /* the script call's time (ms) */
    struct report *next;
} report;

typedef struct fetch_call {
    broker *b;
    size_t n;
    worker *ws[];
} fetch_call;

typedef struct report_call {
    broker *b;
    report *list;
} report_call;

struct workers {
    broker *b;
    worker *list;
    size_t count;
    hmap *by_tag;
    hmap *acking_ids;       /* task id -> count, of the ACK call in flight */
    report *acks, *fails;
    size_t in_flight;
    /* Script calls of the flush in flight, at most BROKER_CALLS_IN_FLIGHT
     * of each kind, so that a busy broker gathers big batches (see
     * tasks_flush). */
    unsigned acking, failing, fetching;
    uint64_t last_poll;
    uint64_t rng;
};

static uint64_t next_random(struct workers *ws)
{
    /* xorshift64: enough to spread weighted picks */
    uint64_t x = ws->rng;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return ws->rng = x;
}

/* ------------------------------------------------------------------------
 * Registry
 * ------------------------------------------------------------------------ */

static void worker_free(worker *w)
{
    for (uint32_t i = 0; i < w->nqueues; i++)
        mem_free(w->queues[i]);
    mem_free(w->queues);
    mem_free(w->weights);
    hmap_free(w->running);
    mem_free(w);
}

int workers_hello(broker *b, conn *c, const proto_msg *m)
{
    if (!(m->present & MF_WORKER_ID) || m->worker_id.len == 0) {
        conn_send_error(c, true, m->rid, ERR_BAD_REQUEST, "missing key 'worker_id'");
        return -1;
    }
    if (!(m->present & MF_QUEUES) || m->queues.n == 0) {
        conn_send_error(c, true, m->rid, ERR_BAD_REQUEST, "key 'queues': a worker serves at least one queue");
        return -1;
    }
    if (!(m->present & MF_CAPACITY) || m->capacity == 0) {
        conn_send_error(c, true, m->rid, ERR_BAD_REQUEST, "key 'capacity': must be at least 1");
        return -1;
    }
    if ((m->present & MF_WEIGHTS) && m->weights.n != m->queues.n) {
        conn_send_error(c, true, m->rid, ERR_BAD_REQUEST,
                        "key 'weights': must have one weight per queue");
        return -1;
    }
    worker *w = mem_calloc(1, sizeof *w);
    w->c = c;
    proto_slice_cstr(m->worker_id, w->worker_id, sizeof w->worker_id);
    proto_slice_cstr(m->host, w->host, sizeof w->host);
    w->pid = m->pid;
    snprintf(w->tag, sizeof w->tag, "%s@%s.%llu", w->worker_id, b->node, (unsigned long long)c->id);
    w->nqueues = m->queues.n;
    w->queues = mem_calloc(w->nqueues, sizeof *w->queues);
    size_t pos = 0;
    proto_slice s;
    for (uint32_t i = 0; proto_strs_next(&m->queues, &pos, &s) == PROTO_OK; i++)
        w->queues[i] = mem_strndup((const char *)s.ptr, s.len);
    if (m->present & MF_WEIGHTS) {
        w->weights = mem_calloc(w->nqueues, sizeof *w->weights);
        pos = 0;
        uint64_t v;
        for (uint32_t i = 0; proto_uints_next(&m->weights, &pos, &v) == PROTO_OK; i++) {
            if (v == 0) {
                conn_send_error(c, true, m->rid, ERR_BAD_REQUEST, "key 'weights': each must be at least 1");
                worker_free(w);
                return -1;
            }
            w->weights[i] = v;
        }
    }
    w->capacity = m->capacity;
    w->credits = (m->present & MF_PREFETCH) ? (int64_t)m->prefetch : 0;
    w->running = hmap_new();
    struct workers *ws = b->workers;
    w->next = ws->list;
    if (ws->list)
        ws->list->prev = w;
    ws->list = w;
    ws->count++;
    hmap_put(ws->by_tag, w->tag, strlen(w->tag), w);
    c->worker = w;
    return 0;
}

static void unlink_worker(struct workers *ws, worker *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        ws->list = w->next;
    if (w->next)
        w->next->prev = w->prev;
    ws->count--;
    hmap_del(ws->by_tag, w->tag, strlen(w->tag));
}

/* requeue: hands the given running ids of w back to their queues. */
static void requeue_done(void *arg, redisReply *reply)
{
    broker *b = arg;
    b->workers->in_flight--;
    if (reply && reply->type == REDIS_REPLY_INTEGER) {
        b->counters.requeued += (uint64_t)reply->integer;
        b->errors[ERR_WORKER_LOST] += (uint64_t)reply->integer;
        if (reply->integer > 0)
            log_info("requeued %lld tasks of a lost worker", reply->integer);
    } else if (reply && reply->type == REDIS_REPLY_ERROR) {
        log_error("requeue script: %s", reply->str);
    }
}

static void requeue(broker *b, worker *w, const char *why)
{
    if (hmap_count(w->running) == 0)
        return;
    rargs a;
    rargs_init(&a);
    rargs_u64(&a, clock_wall_ms());
    rargs_str(&a, w->tag);
    rargs_str(&a, why);
    hmap_iter it;
    hmap_iter_init(w->running, &it);
    const void *key;
    size_t klen;
    void *val;
    while (hmap_next(w->running, &it, &key, &klen, &val))
        rargs_borrow(&a, key, klen);
    if (store_script(b->store, SCRIPT_REQUEUE, &a, requeue_done, b) == 0)
        b->workers->in_flight++;
    else
        log_warn("worker %s lost with %zu tasks while Redis is unreachable: their leases will expire",
                 w->worker_id, hmap_count(w->running));
    rargs_free(&a);
}

void workers_on_close(broker *b, conn *c)
{
    worker *w = c->worker;
    struct workers *ws = b->workers;
    c->worker = NULL;
    w->c = NULL;
    log_info("worker %s (%s pid %llu) disconnected with %zu tasks running", w->worker_id, w->host,
             (unsigned long long)w->pid, hmap_count(w->running));
    requeue(b, w, "the worker's connection closed");
    unlink_worker(ws, w);
    if (w->fetching == 0)
        worker_free(w);
    /* else the fetch reply frees it, after requeueing what it got */
}

size_t workers_count(const broker *b)
{
    return b->workers->count;
}

/* ------------------------------------------------------------------------
 * Dispatch
 * ------------------------------------------------------------------------ */

/* push_task: one TASK frame from a fetch reply's fields. */
static void push_task(broker *b, worker *w, redisReply **f)
{
    proto_msg m;
    memset(&m, 0, sizeof m);
    m.op = OP_TASK;
    proto_task *t = &m.task;
    t->present = TF_ID | TF_QUEUE | TF_NAME | TF_PAYLOAD | TF_ATTEMPT | TF_TIMEOUT | TF_PRIORITY |
                 TF_CREATED_AT;
    t->id = (proto_slice){ (const uint8_t *)f[0]->str, (uint32_t)f[0]->len };
    t->queue = (proto_slice){ (const uint8_t *)f[1]->str, (uint32_t)f[1]->len };
    t->name = (proto_slice){ (const uint8_t *)f[2]->str, (uint32_t)f[2]->len };
    t->payload = (proto_slice){ (const uint8_t *)f[3]->str, (uint32_t)f[3]->len };
    t->attempt = f[4]->str ? strtoull(f[4]->str, NULL, 10) : 0;
    t->timeout = f[5]->str ? strtoull(f[5]->str, NULL, 10) : 0;
    t->priority = f[6]->str ? strtoll(f[6]->str, NULL, 10) : 0;
    t->created_at = f[7]->str ? strtoull(f[7]->str, NULL, 10) : 0;
    if (t->timeout) {
        t->present |= TF_DEADLINE;
        t->deadline = clock_wall_ms() + t->timeout;
    }
    hmap_put(w->running, t->id.ptr, t->id.len, w);
    w->credits--;
    b->counters.dispatched++;
    conn_send(w->c, &m);
}

static void fetch_done(void *arg, redisReply *reply)
{
    fetch_call *call = arg;
    broker *b = call->b;
    b->workers->in_flight--;
    b->workers->fetching--;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        log_error("fetch script: %s", reply->str);
    bool ok = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == call->n;
    for (size_t i = 0; i < call->n; i++) {
        worker *w = call->ws[i];
        uint64_t asked = w->fetching;
        w->fetching = 0;
        if (!ok) {
            if (!w->c) /* it left while we fetched */
                worker_free(w);
            continue;
        }
        const redisReply *got = reply->element[i];
        size_t n = got->elements / TASK_FIELDS;
        for (size_t k = 0; k < n; k++) {
            redisReply **f = got->element + k * TASK_FIELDS;
            if (w->c)
                push_task(b, w, f);
            else
                hmap_put(w->running, f[0]->str, f[0]->len, w);
        }
        if (!w->c) { /* it left while we fetched: give the tasks back */
            requeue(b, w, "the worker's connection closed");
            worker_free(w);
            continue;
        }
        /* Found less than asked: wait for a ready message, unless one came
         * while the fetch was on its way (its tasks may be behind it). */
        if (n < asked && !w->woken)
            w->starved = true;
        w->woken = false;
    }
    mem_free(call);
    broker_want_flush(b); /* workers with credit left may fetch again */
}

/* order_queues: the queues in the order to serve them this time: as given,
 * or for weighted workers a weighted random order. */
static void order_queues(struct workers *ws, worker *w, const char **out)
{
    for (uint32_t i = 0; i < w->nqueues; i++)
        out[i] = w->queues[i];
    if (!w->weights)
        return;
    uint64_t wt[64];
    uint32_t n = w->nqueues < 64 ? w->nqueues : 64;
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += wt[i] = w->weights[i];
    for (uint32_t i = 0; i < n; i++) {
        uint64_t pick = next_random(ws) % total, acc = 0;
        uint32_t j = i;
        for (; j < n; j++)
            if ((acc += wt[j]) > pick)
                break;
        if (j == n)
            j = n - 1;
        const char *q = out[i];
        out[i] = out[j], out[j] = q;
        uint64_t x = wt[i];
        wt[i] = wt[j], wt[j] = x;
        total -= wt[i];
    }
}

static void send_fetches(broker *b)
{
    struct workers *ws = b->workers;
    if (b->draining || !store_up(b->store) || ws->fetching >= BROKER_CALLS_IN_FLIGHT)
        return;
    size_t n = 0;
    for (worker *w = ws->list; w; w = w->next)
        n += w->credits > 0 && !w->starved && w->fetching == 0;
    if (n == 0)
        return;
    fetch_call *call = mem_malloc(sizeof *call + n * sizeof call->ws[0]);
    call->b = b;
    call->n = 0;
    rargs a;
    rargs_init(&a);
    rargs_u64(&a, clock_wall_ms());
    rargs_u64(&a, b->set->lease);
    rargs_u64(&a, n);
    for (worker *w = ws->list; w; w = w->next) {
        if (w->credits <= 0 || w->starved || w->fetching)
            continue;
        const char *order[256];
        uint32_t nq = w->nqueues < 256 ? w->nqueues : 256;
        order_queues(ws, w, order);
        rargs_str(&a, w->tag);
        rargs_u64(&a, (uint64_t)w->credits);
        rargs_u64(&a, nq);
        for (uint32_t i = 0; i < nq; i++)
            rargs_str(&a, order[i]);
        w->fetching = (uint64_t)w->credits;
        call->ws[call->n++] = w;
    }
    if (store_script(b->store, SCRIPT_FETCH, &a, fetch_done, call) == 0) {
        ws->in_flight++;
        ws->fetching++;
    } else {
        for (size_t i = 0; i < call->n; i++)
            call->ws[i]->fetching = 0;
        mem_free(call);
    }
    rargs_free(&a);
}

void workers_credit(broker *b, conn *c, const proto_msg *m)
{
    worker *w = c->worker;
    w->credits += (int64_t)m->credits;
    if (w->credits > (int64_t)(w->capacity * 4 + 1024))
        w->credits = (int64_t)(w->capacity * 4 + 1024); /* a runaway worker cannot hoard */
    proto_msg r;
    broker_ok_init(&r, m->rid);
    conn_send(c, &r);
    broker_want_flush(b);
}

void workers_on_ready(broker *b, const char *queue, size_t len)
{
    bool any = false;
    for (worker *w = b->workers->list; w; w = w->next) {
        if (!w->starved && !w->fetching)
            continue;
        for (uint32_t i = 0; i < w->nqueues; i++)
            if (strlen(w->queues[i]) == len && memcmp(w->queues[i], queue, len) == 0) {
                if (w->fetching)
                    w->woken = true;
                else
                    any = true;
                w->starved = false;
                break;
            }
    }
    if (any)
        broker_want_flush(b);
}

void workers_poll(broker *b)
{
    struct workers *ws = b->workers;
    uint64_t now = clock_mono_ms();
    if (now - ws->last_poll < POLL_EVERY_MS && store_up(b->store) && ws->last_poll)
        return;
    ws->last_poll = now;
    bool any = false;
    for (worker *w = ws->list; w; w = w->next)
        if (w->starved && w->credits > 0) {
            w->starved = false;
            any = true;
        }
    if (any)
        broker_want_flush(b);
}

/* ------------------------------------------------------------------------
 * Results and failures, batched per turn
 * ------------------------------------------------------------------------ */

static report *report_new(conn *c, const proto_msg *m)
{
    report *r = mem_calloc(1, sizeof *r);
    r->c = c;
    conn_ref(c);
    r->rid = m->rid;
    r->idlen = m->task.id.len;
    r->id = mem_strndup((const char *)m->task.id.ptr, r->idlen);
    rargs_init(&r->fields);
    return r;
}

static void report_free(report *r)
{
    conn_unref(r->c);
    mem_free(r->id);
    rargs_free(&r->fields);
    mem_free(r);
}

void workers_ack(broker *b, conn *c, const proto_msg *m)
{
    worker *w = c->worker;
    proto_slice result = (m->task.present & TF_RESULT) ? m->task.result : proto_slice_of("");
    if (result.len > b->set->max_payload) {
        conn_send_error(c, true, m->rid, ERR_PAYLOAD_TOO_LARGE,
                        "result of %u bytes is over max-payload (%llu bytes)", result.len,
                        (unsigned long long)b->set->max_payload);
        return;
    }
    hmap_del(w->running, m->task.id.ptr, m->task.id.len);
    report *r = report_new(c, m);
    rargs_copy(&r->fields, result.ptr, result.len);
    r->next = b->workers->acks;
    b->workers->acks = r;
    broker_want_flush(b);
}

static bool known_task_error(proto_slice code)
{
    return proto_slice_eq(code, "TASK_FAILED") || proto_slice_eq(code, "TIMEOUT") ||
           proto_slice_eq(code, "CANCELLED") || proto_slice_eq(code, "NO_HANDLER");
}

void workers_fail(broker *b, conn *c, const proto_msg *m)
{
    worker *w = c->worker;
    proto_slice code = (m->present & MF_CODE) ? m->code : proto_slice_of("TASK_FAILED");
    if (!known_task_error(code)) {
        conn_send_error(c, true, m->rid, ERR_BAD_REQUEST,
                        "key 'code': must be TASK_FAILED, TIMEOUT, CANCELLED or NO_HANDLER");
        return;
    }
    bool retryable = (m->present & MF_RETRYABLE) ? m->retryable : true;
    report *r = report_new(c, m);
    r->code = errors_from_name((const char *)code.ptr, code.len);
    proto_slice msg = (m->present & MF_MESSAGE) ? m->message : proto_slice_of("");
    char jitter[32];
    snprintf(jitter, sizeof jitter, "%.6f", (double)(next_random(b->workers) % 1000000) / 1e6);
    /* Copied, not borrowed: the worker may be gone by the turn's flush. */
    rargs_copy(&r->fields, w->tag, strlen(w->tag));
    rargs_copy(&r->fields, code.ptr, code.len);
    rargs_copy(&r->fields, msg.ptr, msg.len);
    rargs_str(&r->fields, retryable ? "1" : "0");
    rargs_copy(&r->fields, jitter, strlen(jitter));
    hmap_del(w->running, m->task.id.ptr, m->task.id.len);
    r->next = b->workers->fails;
    b->workers->fails = r;
    broker_want_flush(b);
}

/* ack_one / fail_one: the OK for one report, from its part of the reply. */
static void ack_one(broker *b, report *r, const redisReply *res)
{
    if (res->type == REDIS_REPLY_INTEGER && res->integer < 0) {
        /* Gone: final and expired, maybe while this ACK was in flight, its
         * P:done left to this reply (workers_acking). */
        tasks_on_done(b, r->id, r->idlen);
        conn_send_error(r->c, true, r->rid, ERR_NOT_FOUND, "no task %s (or it expired)", r->id);
        return;
    }
    /* Stored: 1, or the attempt (a string) when someone waits for it, or
     * the view of a task kept for no time. */
    bool stored = res->type != REDIS_REPLY_INTEGER || res->integer == 1;
    if (stored) {
        b->counters.acked++;
        if (res->type == REDIS_REPLY_STRING) {
            proto_slice result = { (const uint8_t *)r->fields.argv[0], (uint32_t)r->fields.lens[0] };
            tasks_on_succeeded(b, r->id, r->idlen, strtoull(res->str, NULL, 10), r->sent_at,
                               result);
        } else if (res->type == REDIS_REPLY_ARRAY) {
            tasks_on_done_view(b, r->id, r->idlen, res); /* kept for no time: the whole view */
        } else {
            tasks_on_done(b, r->id, r->idlen);
        }
    } else {
        b->counters.dropped_results++;
        /* Final already: its P:done may have come while this ACK was in
         * flight, and been left to this reply (workers_acking). */
        tasks_on_done(b, r->id, r->idlen);
    }
    proto_msg out;
    broker_ok_init(&out, r->rid);
    out.present |= MF_OUTCOME;
    out.outcome = proto_slice_of(stored ? "stored" : "duplicate");
    conn_send(r->c, &out);
}

static void fail_one(broker *b, report *r, const redisReply *res)
{
    const char *outcome = res->element[0]->str;
    if (strcmp(outcome, "not_found") == 0) {
        conn_send_error(r->c, true, r->rid, ERR_NOT_FOUND, "no task %s (or it expired)", r->id);
        return;
    }
    if (strcmp(outcome, "duplicate") != 0)
        b->errors[r->code]++; /* task errors count in STATS too */
    proto_msg out;
    broker_ok_init(&out, r->rid);
    out.present |= MF_OUTCOME;
    out.outcome = proto_slice_of(outcome);
    if (strcmp(outcome, "retry") == 0) {
        b->counters.failed++;
        b->counters.retried++;
        out.task.present |= TF_RUN_AT;
        out.task.run_at = (uint64_t)res->element[1]->integer;
    } else if (strcmp(outcome, "dead") == 0) {
        b->counters.failed++;
        b->counters.buried++;
        tasks_on_done(b, r->id, r->idlen);
    } else {
        b->counters.dropped_results++;
    }
    conn_send(r->c, &out);
}

/* reports_done: the reply of an ack or fail script call: one element per
 * report, handed to `one`; without a reply, each report gets an error and
 * the worker sends it again. */
static void reports_done(report_call *call, redisReply *reply, const char *what,
                         void (*one)(broker *, report *, const redisReply *))
{
    broker *b = call->b;
    b->workers->in_flight--;
    bool ok = reply && reply->type == REDIS_REPLY_ARRAY;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        log_error("%s script: %s", what, reply->str);
    size_t i = 0;
    for (report *r = call->list; r; i++) {
        report *next = r->next;
        if (ok && i < reply->elements)
            one(b, r, reply->element[i]);
        else if (reply)
            conn_send_error(r->c, true, r->rid, ERR_INTERNAL, "storage error");
        else
            conn_send_error(r->c, true, r->rid, ERR_UNAVAILABLE,
                            "lost the connection to Redis: send it again");
        report_free(r);
        r = next;
    }
    mem_free(call);
}

/* acking_mark: counts the ids of an ACK call in and (delta -1) out. */
static void acking_mark(struct workers *ws, const report *list, int delta)
{
    for (const report *r = list; r; r = r->next) {
        uintptr_t n = (uintptr_t)hmap_get(ws->acking_ids, r->id, r->idlen);
        n = delta > 0 ? n + 1 : n - 1;
        if (n)
            hmap_put(ws->acking_ids, r->id, r->idlen, (void *)n);
        else
            hmap_del(ws->acking_ids, r->id, r->idlen);
    }
}

bool workers_acking(broker *b, const char *id, size_t len)
{
    return hmap_get(b->workers->acking_ids, id, len) != NULL;
}

static void ack_done(void *arg, redisReply *reply)
{
    report_call *call = arg;
    broker *b = call->b;
    acking_mark(b->workers, call->list, -1);
    b->workers->acking--;
    if (b->workers->acks)
        broker_want_flush(b);
    reports_done(arg, reply, "ack", ack_one);
}

static void fail_done(void *arg, redisReply *reply)
{
    broker *b = ((report_call *)arg)->b;
    b->workers->failing--;
    if (b->workers->fails)
        broker_want_flush(b);
    reports_done(arg, reply, "fail", fail_one);
}

/* send_reports: one script call for a list of reports (oldest first). */
static void send_reports(broker *b, report *list, script_id id, store_reply_fn fn)
{
    if (!list)
        return;
    report *rev = NULL;
    size_t n = 0;
    while (list) {
        report *next = list->next;
        list->next = rev, rev = list;
        list = next;
        n++;
    }
    rargs a;
    rargs_init(&a);
    uint64_t now = clock_wall_ms();
    rargs_u64(&a, now);
    if (id == SCRIPT_ACK)
        rargs_str(&a, b->node);
    if (id == SCRIPT_FAIL) {
        rargs_u64(&a, b->set->retry_base);
        rargs_u64(&a, b->set->retry_cap);
    }
    rargs_u64(&a, n);
    for (report *r = rev; r; r = r->next) {
        r->sent_at = now;
        rargs_borrow(&a, r->id, r->idlen);
        rargs_finish(&r->fields);
        for (int i = 0; i < r->fields.n; i++)
            rargs_borrow(&a, r->fields.argv[i], r->fields.lens[i]);
    }
    report_call *call = mem_malloc(sizeof *call);
    call->b = b;
    call->list = rev;
    if (id == SCRIPT_ACK)
        acking_mark(b->workers, rev, 1);
    b->workers->in_flight++;
    if (store_script(b->store, id, &a, fn, call) < 0)
        fn(call, NULL);
    rargs_free(&a);
}

void workers_flush(broker *b)
{
    struct workers *ws = b->workers;
    if (ws->acks && ws->acking < BROKER_CALLS_IN_FLIGHT) {
        report *acks = ws->acks;
        ws->acks = NULL;
        ws->acking++;
        send_reports(b, acks, SCRIPT_ACK, ack_done);
    }
    if (ws->fails && ws->failing < BROKER_CALLS_IN_FLIGHT) {
        report *fails = ws->fails;
        ws->fails = NULL;
        ws->failing++;
        send_reports(b, fails, SCRIPT_FAIL, fail_done);
    }
    send_fetches(b);
}

/* ------------------------------------------------------------------------
 * Heartbeats, progress, cancel, shutdown
 * ------------------------------------------------------------------------ */

typedef struct reply_ctx {
    broker *b;
    conn *c;
    uint64_t rid;
} reply_ctx;

static void ok_done(void *arg, redisReply *reply)
{
    reply_ctx *x = arg;
    x->b->workers->in_flight--;
    if (!reply)
        conn_send_error(x->c, true, x->rid, ERR_UNAVAILABLE, "lost the connection to Redis");
    else if (reply->type == REDIS_REPLY_ERROR)
        conn_send_error(x->c, true, x->rid, ERR_INTERNAL, "storage error");
    else {
        proto_msg r;
        broker_ok_init(&r, x->rid);
        conn_send(x->c, &r);
    }
    conn_unref(x->c);
    mem_free(x);
}

/* script_then: runs script id for request rid; fn answers it. */
static void script_then(broker *b, conn *c, uint64_t rid, script_id id, rargs *a, store_reply_fn fn)
{
    reply_ctx *x = mem_malloc(sizeof *x);
    *x = (reply_ctx){ b, c, rid };
    conn_ref(c);
    if (store_script(b->store, id, a, fn, x) == 0) {
        b->workers->in_flight++;
    } else {
        conn_send_error(c, true, rid, ERR_UNAVAILABLE, "Redis is unreachable");
        conn_unref(c);
        mem_free(x);
    }
}

void workers_heartbeat(broker *b, conn *c, const proto_msg *m)
{
    worker *w = c->worker;
    if (m->present & MF_RSS)
        w->rss = m->rss;
    if (m->present & MF_DONE)
        w->done = m->done;
    if (m->present & MF_FAILED)
        w->failed = m->failed;
    rargs a;
    rargs_init(&a);
    rargs_u64(&a, clock_wall_ms());
    rargs_u64(&a, b->set->lease);
    rargs_str(&a, w->tag);
    size_t pos = 0;
    proto_slice s;
    while (proto_strs_next(&m->running, &pos, &s) == PROTO_OK)
        rargs_borrow(&a, s.ptr, s.len);
    script_then(b, c, m->rid, SCRIPT_RENEW, &a, ok_done);
    rargs_free(&a);
}

static void progress_done(void *arg, redisReply *reply)
{
    reply_ctx *x = arg;
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer < 0) {
        x->b->workers->in_flight--;
        conn_send_error(x->c, true, x->rid, ERR_NOT_FOUND, "no such task (or it expired)");
        conn_unref(x->c);
        mem_free(x);
        return;
    }
    ok_done(arg, reply);
}

void workers_progress(broker *b, conn *c, const proto_msg *m)
{
    rargs a;
    rargs_init(&a);
    rargs_borrow(&a, m->task.id.ptr, m->task.id.len);
    rargs_str(&a, c->worker->tag);
    rargs_u64(&a, m->task.progress);
    proto_slice msg = (m->present & MF_MESSAGE) ? m->message : proto_slice_of("");
    rargs_borrow(&a, msg.ptr, msg.len);
    script_then(b, c, m->rid, SCRIPT_PROGRESS, &a, progress_done);
    rargs_free(&a);
}

void workers_cancel_running(broker *b, const char *tag, const char *id, size_t idlen)
{
    worker *w = hmap_get(b->workers->by_tag, tag, strlen(tag));
    if (!w || !w->c || !hmap_del(w->running, id, idlen))
        return;
    proto_msg m;
    memset(&m, 0, sizeof m);
    m.op = OP_CANCEL;
    m.task.present = TF_ID;
    m.task.id = (proto_slice){ (const uint8_t *)id, (uint32_t)idlen };
    conn_send(w->c, &m);
}

void workers_shutdown(broker *b)
{
    proto_msg m;
    memset(&m, 0, sizeof m);
    m.op = OP_SHUTDOWN;
    m.present = MF_REASON;
    m.reason = proto_slice_of("the broker is shutting down");
    for (worker *w = b->workers->list; w; w = w->next)
        conn_send(w->c, &m);
}

static bool serves(const worker *w, proto_slice queue)
{
    if (!queue.len)
        return true;
    for (uint32_t i = 0; i < w->nqueues; i++)
        if (proto_slice_eq(queue, w->queues[i]))
            return true;
    return false;
}

void workers_pack_stats(broker *b, msgpack_packer *pk, proto_slice queue)
{
    size_t n = 0;
    for (worker *w = b->workers->list; w; w = w->next)
        n += serves(w, queue);
    msgpack_pack_array(pk, n);
    for (worker *w = b->workers->list; w; w = w->next) {
        if (!serves(w, queue))
            continue;
        const struct { const char *k; const char *s; uint64_t v; } f[] = {
            { "worker_id", w->worker_id, 0 }, { "client", w->c ? w->c->client : "", 0 },
            { "host", w->host, 0 }, { "pid", NULL, w->pid }, { "capacity", NULL, w->capacity },
            { "credits", NULL, w->credits > 0 ? (uint64_t)w->credits : 0 },
            { "running", NULL, hmap_count(w->running) }, { "rss", NULL, w->rss },
            { "done", NULL, w->done }, { "failed", NULL, w->failed },
        };
        size_t nf = sizeof f / sizeof f[0];
        msgpack_pack_map(pk, nf + 1);
        for (size_t i = 0; i < nf; i++) {
            proto_pack_str(pk, f[i].k);
            if (f[i].s)
                proto_pack_str(pk, f[i].s);
            else
                msgpack_pack_uint64(pk, f[i].v);
        }
        proto_pack_str(pk, "queues");
        msgpack_pack_array(pk, w->nqueues);
        for (uint32_t i = 0; i < w->nqueues; i++)
            proto_pack_str(pk, w->queues[i]);
    }
}

size_t workers_busy(const broker *b)
{
    const struct workers *ws = b->workers;
    size_t n = ws->in_flight;
    for (worker *w = ws->list; w; w = w->next)
        n += hmap_count(w->running); /* their results are owed too */
    for (report *r = ws->acks; r; r = r->next)
        n++;
    for (report *r = ws->fails; r; r = r->next)
        n++;
    return n;
}

struct workers *workers_new(broker *b)
{
    struct workers *ws = mem_calloc(1, sizeof *ws);
    ws->b = b;
    ws->by_tag = hmap_new();
    ws->acking_ids = hmap_new();
    ws->rng = clock_mono_ns() | 1;
    return ws;
}

void workers_free(struct workers *ws)
{
    report *lists[2] = { ws->acks, ws->fails };
    for (int i = 0; i < 2; i++)
        for (report *r = lists[i]; r;) {
            report *next = r->next;
            report_free(r);
            r = next;
        }
    while (ws->list) {
        worker *w = ws->list;
        unlink_worker(ws, w);
        worker_free(w);
    }
    hmap_free(ws->by_tag);
    hmap_free(ws->acking_ids);
    mem_free(ws);
}

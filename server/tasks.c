#include "tasks.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "hmap.h"
#include "log.h"
#include "mem.h"
#include "workers.h"

/* Fields per task in the submit script's arguments (lua/submit.lua). */
#define SUBMIT_FIELDS 12
/* Tasks in one submit script call, at most (a request bigger than this
 * still goes whole, alone): bounds how long one call holds Redis. */
#define SUBMIT_CALL_TASKS 5000

/* ------------------------------------------------------------------------
 * Waiters: a GET with a wait, or a submitter that asked for its result.
 * ------------------------------------------------------------------------ */

typedef enum waiter_kind { WAIT_GET, WAIT_RESULT } waiter_kind;

typedef struct waiter {
    struct tasks *t;
    conn *c;                  /* referenced */
    uint64_t rid;             /* WAIT_GET: the request to answer */
    waiter_kind kind;
    bool armed;               /* WAIT_RESULT: the SUBMIT reply went out */
    bool answering;           /* in a list whose read is in flight: that read frees it */
    bool fired;               /* done before it was armed */
    struct event *timer;      /* WAIT_GET: the end of the wait */
    struct waiter *next;      /* same task */
    struct waiter *all_prev, *all_next;
    size_t idlen;
    char id[];
} waiter;

/* A submission waiting for its script reply (or for room in a full queue). */
typedef struct submit_req {
    conn *c;                  /* referenced */
    uint64_t rid;
    bool batch;
    bool push_result;
    uint32_t ntasks;
    uint64_t wait_until;      /* monotonic ms; 0 = no wait for room */
    uint64_t at;              /* wall ms it arrived: delays count from it */
    rargs args;               /* ntasks, then SUBMIT_FIELDS per task */
    waiter **waiters;         /* WAIT_RESULT waiters, one per task, or NULL */
    struct submit_req *next;
} submit_req;

/* The requests of one submit script call. */
typedef struct submit_call {
    broker *b;
    submit_req *reqs;
    bool gated;               /* one of the flush's calls (tasks->submitting) */
} submit_call;

struct tasks {
    broker *b;
    hmap *waiting;            /* task id -> waiter list */
    waiter *all;              /* every waiter, for closing connections */
    submit_req *queued;       /* to send at this turn's flush */
    submit_req *full;         /* waiting for room, retried each tick */
    struct event *retry;
    size_t in_flight;         /* replies owed from scripts */
    unsigned submitting;      /* the flush's submit calls in flight */
};

static void waiter_free(waiter *w)
{
    struct tasks *t = w->t;
    if (w->all_prev)
        w->all_prev->all_next = w->all_next;
    else
        t->all = w->all_next;
    if (w->all_next)
        w->all_next->all_prev = w->all_prev;
    if (w->timer)
        event_free(w->timer);
    conn_unref(w->c);
    mem_free(w);
}

/* waiter_unlink: takes w out of its task's list (not out of `all`). */
static void waiter_unlink(waiter *w)
{
    struct tasks *t = w->t;
    waiter *head = hmap_get(t->waiting, w->id, w->idlen);
    if (head == w) {
        if (w->next)
            hmap_put(t->waiting, w->id, w->idlen, w->next);
        else
            hmap_del(t->waiting, w->id, w->idlen);
        return;
    }
    for (waiter *p = head; p; p = p->next)
        if (p->next == w) {
            p->next = w->next;
            return;
        }
}

static waiter *waiter_add(struct tasks *t, conn *c, uint64_t rid, waiter_kind kind, const char *id,
                          size_t idlen)
{
    waiter *w = mem_calloc(1, sizeof *w + idlen + 1);
    w->t = t;
    w->c = c;
    conn_ref(c);
    w->rid = rid;
    w->kind = kind;
    w->armed = kind == WAIT_GET;
    memcpy(w->id, id, idlen);
    w->idlen = idlen;
    w->next = hmap_get(t->waiting, id, idlen);
    hmap_put(t->waiting, id, idlen, w);
    w->all_next = t->all;
    if (t->all)
        t->all->all_prev = w;
    t->all = w;
    return w;
}

/* ------------------------------------------------------------------------
 * Task views: the watch script's reply as a proto_task
 * ------------------------------------------------------------------------ */

/* The order of the HMGET in lua/watch.lua and lua/admin.lua. */
enum { V_Q, V_N, V_S, V_A, V_MR, V_PR, V_C, V_RA, V_ST, V_F, V_PG, V_PM, V_R, V_EC, V_EM, V__N };

static uint64_t reply_u64(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING ? strtoull(r->str, NULL, 10) : 0;
}

static proto_slice reply_slice(const redisReply *r)
{
    return (proto_slice){ (const uint8_t *)r->str, (uint32_t)r->len };
}

/* view_fill: the task fields of a view into t (and its progress message
 * into *pm). Returns false if the reply is not a view. */
static bool view_fill(const redisReply *v, const char *id, size_t idlen, proto_task *t,
                      proto_slice *pm)
{
    memset(t, 0, sizeof *t);
    pm->len = 0;
    if (v->type != REDIS_REPLY_ARRAY || v->elements != V__N || v->element[V_S]->type != REDIS_REPLY_STRING)
        return false;
    redisReply **e = v->element;
    t->present = TF_ID | TF_QUEUE | TF_NAME | TF_STATE | TF_ATTEMPT | TF_MAX_RETRIES | TF_PRIORITY |
                 TF_CREATED_AT;
    t->id = (proto_slice){ (const uint8_t *)id, (uint32_t)idlen };
    t->queue = reply_slice(e[V_Q]);
    t->name = reply_slice(e[V_N]);
    t->state = reply_slice(e[V_S]);
    t->attempt = reply_u64(e[V_A]);
    t->max_retries = reply_u64(e[V_MR]);
    t->priority = e[V_PR]->type == REDIS_REPLY_STRING ? strtoll(e[V_PR]->str, NULL, 10) : 0;
    t->created_at = reply_u64(e[V_C]);
    t->present |= TF_PROGRESS; /* 0 until a PROGRESS says otherwise */
    const struct { int at; uint32_t bit; uint64_t *dst; } nums[] = {
        { V_RA, TF_RUN_AT, &t->run_at }, { V_ST, TF_STARTED_AT, &t->started_at },
        { V_F, TF_FINISHED_AT, &t->finished_at }, { V_PG, TF_PROGRESS, &t->progress },
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        if (e[nums[i].at]->type == REDIS_REPLY_STRING) {
            t->present |= nums[i].bit;
            *nums[i].dst = reply_u64(e[nums[i].at]);
        }
    if (e[V_R]->type == REDIS_REPLY_STRING) {
        t->present |= TF_RESULT;
        t->result = reply_slice(e[V_R]);
    }
    if (e[V_EC]->type == REDIS_REPLY_STRING) {
        t->present |= TF_ERROR_CODE | TF_ERROR;
        t->error_code = reply_slice(e[V_EC]);
        t->error = e[V_EM]->type == REDIS_REPLY_STRING ? reply_slice(e[V_EM]) : proto_slice_of("");
    }
    if (e[V_PM]->type == REDIS_REPLY_STRING)
        *pm = reply_slice(e[V_PM]);
    return true;
}

static bool state_final(proto_slice s)
{
    return proto_slice_eq(s, "succeeded") || proto_slice_eq(s, "dead") || proto_slice_eq(s, "cancelled");
}

/* send_view: answers a GET (or pushes a RESULT) from a view reply. */
static void send_view(conn *c, waiter_kind kind, uint64_t rid, const redisReply *v, const char *id,
                      size_t idlen)
{
    proto_msg r;
    proto_slice pm;
    if (kind == WAIT_GET) {
        broker_ok_init(&r, rid);
    } else {
        memset(&r, 0, sizeof r);
        r.op = OP_RESULT;
    }
    if (!view_fill(v, id, idlen, &r.task, &pm)) {
        if (kind == WAIT_GET)
            conn_send_error(c, true, rid, ERR_NOT_FOUND, "no task %.*s (or its result expired)",
                            (int)idlen, id);
        return;
    }
    if (kind == WAIT_RESULT) /* a RESULT carries the outcome, not the bookkeeping */
        r.task.present &= TF_ID | TF_STATE | TF_ATTEMPT | TF_FINISHED_AT | TF_RESULT |
                          TF_ERROR_CODE | TF_ERROR;
    if (pm.len && kind == WAIT_GET) {
        r.present |= MF_MESSAGE;
        r.message = pm;
    }
    conn_send(c, &r);
}

/* ------------------------------------------------------------------------
 * Reading a task (GET, and answering waiters)
 * ------------------------------------------------------------------------ */

typedef struct read_ctx {
    broker *b;
    conn *c;          /* referenced; NULL when answering a waiter list */
    uint64_t rid;
    uint64_t wait;    /* GET: ms to wait if not final */
    waiter *list;     /* waiters to answer (taken out of the map) */
    size_t idlen;
    char id[];
} read_ctx;

static int watch(broker *b, const char *id, size_t idlen, bool mark, store_reply_fn fn, void *arg)
{
    rargs a;
    rargs_init(&a);
    rargs_borrow(&a, id, idlen);
    rargs_str(&a, mark ? b->node : "");
    int rc = store_script(b->store, SCRIPT_WATCH, &a, fn, arg);
    rargs_free(&a);
    return rc;
}

static void get_timeout(evutil_socket_t fd, short what, void *arg);

/* get_read: the watch reply of a GET. With a wait, x->list is the waiter
 * registered (unarmed) before the read was sent: a `done` that arrived in
 * between marked it fired, and it is answered now rather than lost. */
static void get_read(void *arg, redisReply *reply)
{
    read_ctx *x = arg;
    broker *b = x->b;
    waiter *w = x->list;
    b->tasks->in_flight--;
    if (!reply) {
        conn_send_error(x->c, true, x->rid, ERR_UNAVAILABLE, "lost the connection to Redis");
    } else if (reply->type == REDIS_REPLY_ERROR) {
        log_error("watch script: %s", reply->str);
        conn_send_error(x->c, true, x->rid, ERR_INTERNAL, "storage error");
    } else if (w && reply->type == REDIS_REPLY_ARRAY && reply->elements == V__N &&
               !state_final(reply_slice(reply->element[V_S])) && conn_alive(x->c)) {
        w->armed = true;
        w->timer = evtimer_new(b->base, get_timeout, w);
        struct timeval tv = { (time_t)(x->wait / 1000), (suseconds_t)(x->wait % 1000) * 1000 };
        evtimer_add(w->timer, &tv);
        if (w->fired)
            tasks_on_done(b, x->id, x->idlen);
        w = NULL; /* the waiter lives on */
    } else {
        send_view(x->c, WAIT_GET, x->rid, reply, x->id, x->idlen);
    }
    if (w) {
        waiter_unlink(w);
        waiter_free(w);
    }
    conn_unref(x->c);
    mem_free(x);
}

static read_ctx *read_ctx_new(broker *b, conn *c, uint64_t rid, const char *id, size_t idlen)
{
    read_ctx *x = mem_calloc(1, sizeof *x + idlen + 1);
    x->b = b;
    x->c = c;
    if (c)
        conn_ref(c);
    x->rid = rid;
    memcpy(x->id, id, idlen);
    x->idlen = idlen;
    return x;
}

/* call_script: runs script id for request x; fn answers it. If Redis is
 * away the request gets UNAVAILABLE now and x is freed. Returns 0 / -1. */
static int call_script(broker *b, read_ctx *x, script_id id, rargs *a, store_reply_fn fn)
{
    if (store_script(b->store, id, a, fn, x) == 0) {
        b->tasks->in_flight++;
        return 0;
    }
    conn_send_error(x->c, true, x->rid, ERR_UNAVAILABLE, "Redis is unreachable");
    conn_unref(x->c);
    mem_free(x);
    return -1;
}

void tasks_get(broker *b, conn *c, const proto_msg *m)
{
    const char *id = (const char *)m->task.id.ptr;
    read_ctx *x = read_ctx_new(b, c, m->rid, id, m->task.id.len);
    x->wait = (m->present & MF_WAIT) ? m->wait : 0;
    if (x->wait) {
        x->list = waiter_add(b->tasks, c, m->rid, WAIT_GET, id, m->task.id.len);
        x->list->armed = false;
    }
    if (watch(b, id, m->task.id.len, x->wait > 0, get_read, x) < 0) {
        conn_send_error(c, true, m->rid, ERR_UNAVAILABLE, "Redis is unreachable");
        if (x->list) {
            waiter_unlink(x->list);
            waiter_free(x->list);
        }
        conn_unref(c);
        mem_free(x);
        return;
    }
    b->tasks->in_flight++;
}

/* The wait of a GET ended: answer with the state as it is now. */
static void get_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    waiter *w = arg;
    broker *b = w->t->b;
    waiter_unlink(w);
    read_ctx *x = read_ctx_new(b, w->c, w->rid, w->id, w->idlen);
    if (watch(b, w->id, w->idlen, false, get_read, x) == 0)
        b->tasks->in_flight++;
    else {
        conn_send_error(w->c, true, w->rid, ERR_UNAVAILABLE, "Redis is unreachable");
        conn_unref(x->c);
        mem_free(x);
    }
    waiter_free(w);
}

static void answer_read(void *arg, redisReply *reply)
{
    read_ctx *x = arg;
    broker *b = x->b;
    b->tasks->in_flight--;
    waiter *w = x->list;
    while (w) {
        waiter *next = w->next;
        if (!reply)
            conn_send_error(w->c, w->kind == WAIT_GET, w->rid, ERR_UNAVAILABLE,
                            "lost the connection to Redis");
        else
            send_view(w->c, w->kind, w->rid, reply, x->id, x->idlen);
        waiter_free(w);
        w = next;
    }
    mem_free(x);
}

/* answer: reads task id once and answers the given waiters. */
static void answer(broker *b, waiter *list, const char *id, size_t idlen)
{
    read_ctx *x = read_ctx_new(b, NULL, 0, id, idlen);
    x->list = list;
    if (watch(b, id, idlen, false, answer_read, x) == 0) {
        b->tasks->in_flight++;
        return;
    }
    b->tasks->in_flight++;
    answer_read(x, NULL); /* UNAVAILABLE to each */
}

/* take_armed: takes the armed waiters of task id out of the map and
 * returns them; the unarmed ones (their SUBMIT reply has not gone out) stay,
 * marked fired, and are answered once it has. */
static waiter *take_armed(struct tasks *t, const char *id, size_t len)
{
    waiter *head = hmap_get(t->waiting, id, len);
    waiter *ready = NULL, *keep = NULL;
    for (waiter *w = head; w;) {
        waiter *next = w->next;
        if (w->armed) {
            if (w->timer)
                event_del(w->timer);
            w->answering = true;
            w->next = ready, ready = w;
        } else {
            w->fired = true;
            w->next = keep, keep = w;
        }
        w = next;
    }
    if (keep)
        hmap_put(t->waiting, id, len, keep);
    else if (head)
        hmap_del(t->waiting, id, len);
    return ready;
}

void tasks_on_done_view(broker *b, const char *id, size_t len, const redisReply *view)
{
    waiter *w = take_armed(b->tasks, id, len);
    while (w) {
        waiter *next = w->next;
        send_view(w->c, w->kind, w->rid, view, id, len);
        waiter_free(w);
        w = next;
    }
}

/* resync_read: a task's view for tasks_resync. */
static void resync_read(void *arg, redisReply *reply)
{
    read_ctx *x = arg;
    broker *b = x->b;
    b->tasks->in_flight--;
    bool gone = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 0;
    bool final = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == V__N &&
                 reply->element[V_S]->type == REDIS_REPLY_STRING &&
                 state_final(reply_slice(reply->element[V_S]));
    if (gone || final)
        tasks_on_done(b, x->id, x->idlen);
    mem_free(x);
}

void tasks_resync(broker *b)
{
    hmap_iter it;
    hmap_iter_init(b->tasks->waiting, &it);
    const void *key;
    size_t klen;
    void *val;
    while (hmap_next(b->tasks->waiting, &it, &key, &klen, &val)) {
        read_ctx *x = read_ctx_new(b, NULL, 0, key, klen);
        if (watch(b, key, klen, false, resync_read, x) == 0)
            b->tasks->in_flight++;
        else
            mem_free(x);
    }
}

void tasks_on_succeeded(broker *b, const char *id, size_t len, uint64_t attempt,
                        uint64_t finished_at, proto_slice result)
{
    waiter *w = take_armed(b->tasks, id, len), *gets = NULL;
    while (w) {
        waiter *next = w->next;
        if (w->kind == WAIT_GET) {
            w->next = gets, gets = w;
        } else {
            proto_msg r;
            memset(&r, 0, sizeof r);
            r.op = OP_RESULT;
            r.task.present = TF_ID | TF_STATE | TF_ATTEMPT | TF_FINISHED_AT | TF_RESULT;
            r.task.id = (proto_slice){ (const uint8_t *)id, (uint32_t)len };
            r.task.state = proto_slice_of("succeeded");
            r.task.attempt = attempt;
            r.task.finished_at = finished_at;
            r.task.result = result;
            conn_send(w->c, &r);
            waiter_free(w);
        }
        w = next;
    }
    if (gets)
        answer(b, gets, id, len);
}

void tasks_on_done(broker *b, const char *id, size_t len)
{
    waiter *ready = take_armed(b->tasks, id, len);
    if (ready)
        answer(b, ready, id, len);
}

void tasks_on_close(broker *b, conn *c)
{
    struct tasks *t = b->tasks;
    for (waiter *w = t->all; w;) {
        waiter *next = w->all_next;
        /* Unarmed result waiters belong to a submission still in flight,
         * answering ones to a read in flight: those free them. */
        if (w->c == c && w->armed && !w->answering) {
            waiter_unlink(w);
            waiter_free(w);
        }
        w = next;
    }
}

/* ------------------------------------------------------------------------
 * Submitting
 * ------------------------------------------------------------------------ */

static uint64_t queue_limit(broker *b, proto_slice q)
{
    const config_list *l = &b->set->queue_limit;
    for (size_t i = 0; i < l->n; i++) {
        const char *colon = strrchr(l->items[i], ':');
        if ((size_t)(colon - l->items[i]) == q.len && memcmp(l->items[i], q.ptr, q.len) == 0)
            return strtoull(colon + 1, NULL, 10);
    }
    return (uint64_t)b->set->max_queue_length;
}

/* add_task: the submit script's fields for one task; e is the element (or
 * the message's own task for SUBMIT), top the request's defaults. Returns
 * 0, or -1 with the error sent. */
static int add_task(broker *b, conn *c, const proto_msg *m, submit_req *r, const proto_task *e,
                    const proto_task *top, uint64_t now, uint32_t index)
{
    const broker_settings *set = b->set;
#define PICK(bit, field, dflt) ((e->present & (bit)) ? e->field : (top->present & (bit)) ? top->field : (dflt))
    proto_slice queue = PICK(TF_QUEUE, queue, proto_slice_of("default"));
    proto_slice payload = PICK(TF_PAYLOAD, payload, proto_slice_of(""));
    if (payload.len > set->max_payload) {
        conn_send_error(c, true, m->rid, ERR_PAYLOAD_TOO_LARGE,
                        "task %u: payload of %u bytes is over max-payload (%llu bytes)", index,
                        payload.len, (unsigned long long)set->max_payload);
        return -1;
    }
    char id[ID_TEXT_LEN + 1];
    bool fresh = !(e->present & TF_ID);
    if (!fresh) {
        rargs_copy(&r->args, e->id.ptr, e->id.len);
    } else {
        id_generate(id);
        rargs_copy(&r->args, id, ID_TEXT_LEN);
    }
    rargs_copy(&r->args, queue.ptr, queue.len);
    proto_slice name = PICK(TF_NAME, name, proto_slice_of(""));
    rargs_copy(&r->args, name.ptr, name.len);
    rargs_copy(&r->args, payload.ptr, payload.len);
    rargs_i64(&r->args, PICK(TF_PRIORITY, priority, 0));
    /* An element's delay or run_at replaces both of the top level's. */
    const proto_task *when = (e->present & (TF_DELAY | TF_RUN_AT)) ? e : top;
    uint64_t due = (when->present & TF_RUN_AT) ? when->run_at
                 : (when->present & TF_DELAY) ? now + when->delay : 0;
    rargs_u64(&r->args, due);
    rargs_u64(&r->args, PICK(TF_MAX_RETRIES, max_retries, (uint64_t)set->max_retries));
    rargs_u64(&r->args, PICK(TF_TIMEOUT, timeout, 0));
    rargs_u64(&r->args, PICK(TF_RESULT_TTL, result_ttl, set->result_ttl));
    rargs_str(&r->args, r->push_result ? "1" : "0");
    rargs_u64(&r->args, queue_limit(b, queue));
    rargs_str(&r->args, fresh ? "1" : "0");
#undef PICK
    return 0;
}

static void submit_req_free(submit_req *r)
{
    if (r->waiters) {
        for (uint32_t i = 0; i < r->ntasks; i++)
            if (r->waiters[i]) {
                waiter_unlink(r->waiters[i]);
                waiter_free(r->waiters[i]);
            }
        mem_free(r->waiters);
    }
    rargs_free(&r->args);
    conn_unref(r->c);
    mem_free(r);
}

void tasks_submit(broker *b, conn *c, const proto_msg *m)
{
    if (!store_up(b->store)) {
        conn_send_error(c, true, m->rid, ERR_UNAVAILABLE, "Redis is unreachable: nothing was stored");
        return;
    }
    bool batch = m->op == OP_SUBMIT_BATCH;
    if (batch && (m->task.present & TF_ID)) {
        conn_send_error(c, true, m->rid, ERR_BAD_REQUEST,
                        "key 'id': give ids per task in a SUBMIT_BATCH, not at the top");
        return;
    }
    submit_req *r = mem_calloc(1, sizeof *r);
    r->c = c;
    conn_ref(c);
    r->rid = m->rid;
    r->batch = batch;
    r->push_result = (m->present & MF_PUSH_RESULT) && m->push_result;
    r->ntasks = batch ? m->tasks.n : 1;
    if ((m->present & MF_WAIT) && m->wait > 0)
        r->wait_until = clock_mono_ms() + m->wait;
    rargs_init(&r->args);
    rargs_u64(&r->args, r->ntasks);
    uint64_t now = r->at = clock_wall_ms();
    proto_task none;
    memset(&none, 0, sizeof none);
    int rc = 0;
    if (batch) {
        size_t pos = 0;
        proto_task e;
        for (uint32_t i = 0; rc == 0 && proto_tasks_next(&m->tasks, &pos, &e) == PROTO_OK; i++)
            rc = add_task(b, c, m, r, &e, &m->task, now, i);
    } else {
        rc = add_task(b, c, m, r, &m->task, &none, now, 0);
    }
    if (rc < 0) {
        submit_req_free(r);
        return;
    }
    if (r->push_result) {
        /* Registered before the script runs, so no result can slip by;
         * armed once the SUBMIT reply has gone out. */
        rargs_finish(&r->args);
        r->waiters = mem_calloc(r->ntasks, sizeof *r->waiters);
        for (uint32_t i = 0; i < r->ntasks; i++) {
            int at = 1 + (int)i * SUBMIT_FIELDS;
            r->waiters[i] = waiter_add(b->tasks, c, 0, WAIT_RESULT, r->args.argv[at], r->args.lens[at]);
        }
    }
    r->next = b->tasks->queued;
    b->tasks->queued = r;
    broker_want_flush(b);
}

/* code_at: the submit script's code for task i of a request: an array of
 * codes, or for a request of one task the code alone. */
static long long code_at(const redisReply *codes, uint32_t i)
{
    return codes->type == REDIS_REPLY_INTEGER ? codes->integer : codes->element[i]->integer;
}

/* reply_submit: the OK of one request; arms its result waiters. */
static void reply_submit(broker *b, submit_req *r, const redisReply *codes)
{
    rargs_finish(&r->args);
    proto_msg out;
    broker_ok_init(&out, r->rid);
    uint32_t ndup = 0;
    for (uint32_t i = 0; i < r->ntasks; i++)
        ndup += code_at(codes, i) >= 1;
    b->counters.submitted += r->ntasks - ndup;
    b->counters.duplicates += ndup;
    proto_slice *ids = NULL;
    uint64_t *dups = NULL;
    if (r->batch) {
        ids = mem_malloc(r->ntasks * sizeof *ids);
        dups = mem_malloc((ndup ? ndup : 1) * sizeof *dups);
        ndup = 0;
        for (uint32_t i = 0; i < r->ntasks; i++) {
            int at = 1 + (int)i * SUBMIT_FIELDS;
            ids[i] = (proto_slice){ (const uint8_t *)r->args.argv[at], (uint32_t)r->args.lens[at] };
            if (code_at(codes, i) >= 1)
                dups[ndup++] = i;
        }
        out.present |= MF_IDS | MF_DUPLICATES;
        out.ids = (proto_array){ .n = r->ntasks, .strs = ids };
        out.duplicates = (proto_array){ .n = ndup, .uints = dups };
    } else {
        out.task.present |= TF_ID;
        out.task.id = (proto_slice){ (const uint8_t *)r->args.argv[1], (uint32_t)r->args.lens[1] };
        out.present |= MF_DUPLICATE;
        out.duplicate = code_at(codes, 0) >= 1;
    }
    conn_send(r->c, &out);
    mem_free(ids);
    mem_free(dups);
    if (r->waiters && conn_alive(r->c)) {
        for (uint32_t i = 0; i < r->ntasks; i++) {
            waiter *w = r->waiters[i];
            w->armed = true;
            /* Finished before our reply, or a duplicate of a final task
             * (code 2, which no one will publish again): answer it now. */
            if (w->fired || code_at(codes, i) == 2)
                tasks_on_done(b, w->id, w->idlen);
        }
        mem_free(r->waiters);
        r->waiters = NULL;
    }
}

static void retry_full_cb(evutil_socket_t fd, short what, void *arg);

static void submit_done(void *arg, redisReply *reply)
{
    submit_call *call = arg;
    broker *b = call->b;
    struct tasks *t = b->tasks;
    t->in_flight--;
    if (call->gated) {
        t->submitting--;
        if (t->queued)
            broker_want_flush(b);
    }
    size_t g = 0;
    for (submit_req *r = call->reqs; r; g++) {
        submit_req *next = r->next;
        const redisReply *res = reply && reply->type == REDIS_REPLY_ARRAY && g < reply->elements
                                    ? reply->element[g] : NULL;
        if (!reply) {
            conn_send_error(r->c, true, r->rid, ERR_UNAVAILABLE,
                            "lost the connection to Redis: the submission may or may not be "
                            "stored; submit again with the same ids to be sure");
        } else if (!res && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "OOM", 3) == 0) {
            log_warn("Redis is out of memory: refusing submissions (%s)", reply->str);
            conn_send_error(r->c, true, r->rid, ERR_UNAVAILABLE,
                            "Redis is out of memory: nothing was stored; try again later");
        } else if (!res) {
            log_error("submit script: %s", reply->type == REDIS_REPLY_ERROR ? reply->str : "bad reply");
            conn_send_error(r->c, true, r->rid, ERR_INTERNAL, "storage error");
        } else if (res->type == REDIS_REPLY_STRING || res->type == REDIS_REPLY_STATUS) {
            /* "QUEUE_FULL <queue>" */
            if (r->wait_until && clock_mono_ms() < r->wait_until && conn_alive(r->c)) {
                r->next = t->full;
                t->full = r;
                if (!evtimer_pending(t->retry, NULL)) {
                    struct timeval tv = { 0, (suseconds_t)(b->set->tick * 1000) };
                    evtimer_add(t->retry, &tv);
                }
                r = next;
                continue;
            }
            conn_send_error(r->c, true, r->rid, ERR_QUEUE_FULL, "queue '%s' is full%s", res->str + 11,
                            r->wait_until ? " and had no room within the wait" : "");
        } else if ((res->type == REDIS_REPLY_ARRAY && res->elements == r->ntasks) ||
                   (res->type == REDIS_REPLY_INTEGER && r->ntasks == 1)) {
            reply_submit(b, r, res);
        } else {
            conn_send_error(r->c, true, r->rid, ERR_INTERNAL, "storage error");
        }
        submit_req_free(r);
        r = next;
    }
    mem_free(call);
}

/* reqs_reverse: a request list in the other order. */
static submit_req *reqs_reverse(submit_req *reqs)
{
    submit_req *rev = NULL;
    while (reqs) {
        submit_req *next = reqs->next;
        reqs->next = rev, rev = reqs;
        reqs = next;
    }
    return rev;
}

/* arg_u64: the decimal number of a script argument (digits only). */
static uint64_t arg_u64(const char *p, size_t len)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++)
        v = v * 10 + (uint64_t)(p[i] - '0');
    return v;
}

/* send_submits: one submit script call for a list of requests, oldest
 * first. gated: the flush's call (see tasks_flush). */
static void send_submits(broker *b, submit_req *rev, bool gated)
{
    if (!rev)
        return;
    /* The call's time, the tasks' created_at: that of its oldest request,
     * so that no task's delay ends before created_at + delay. */
    uint64_t now = UINT64_MAX;
    size_t n = 0;
    for (submit_req *r = rev; r; r = r->next) {
        n++;
        if (r->at < now)
            now = r->at;
    }
    rargs a;
    rargs_init(&a);
    rargs_u64(&a, now);
    rargs_str(&a, b->node);
    rargs_u64(&a, n);
    for (submit_req *r = rev; r; r = r->next) {
        rargs_finish(&r->args);
        for (int i = 0; i < r->args.n; i++)
            rargs_borrow(&a, r->args.argv[i], r->args.lens[i]);
        /* Idle workers here that serve a queue getting ready tasks fetch
         * in this same flush: their fetch call goes to Redis right behind
         * this one, on the same link, so it sees the new tasks without
         * waiting for this reply. The P:ready message the script sends is
         * for the other brokers (this one ignores its own). */
        const char *woke = NULL; /* the queue woken for the task before */
        size_t wokelen = 0;
        for (uint32_t i = 0; i < r->ntasks; i++) {
            int at = 1 + (int)i * SUBMIT_FIELDS;
            const char *q = r->args.argv[at + 1];
            size_t qlen = r->args.lens[at + 1];
            if (arg_u64(r->args.argv[at + 5], r->args.lens[at + 5]) > now)
                continue; /* scheduled, as the script will see it */
            if (woke && wokelen == qlen && memcmp(woke, q, qlen) == 0)
                continue;
            workers_on_ready(b, q, qlen);
            woke = q, wokelen = qlen;
        }
    }
    submit_call *call = mem_malloc(sizeof *call);
    call->b = b;
    call->reqs = rev;
    call->gated = gated;
    if (gated)
        b->tasks->submitting++;
    if (store_script(b->store, SCRIPT_SUBMIT, &a, submit_done, call) == 0) {
        b->tasks->in_flight++;
    } else {
        b->tasks->in_flight++;
        submit_done(call, NULL);
    }
    rargs_free(&a);
}

/* tasks_flush: sends the submissions gathered since the last call, at most
 * SUBMIT_CALL_TASKS tasks of them (whole requests) in one script call. At
 * most BROKER_CALLS_IN_FLIGHT such calls are in flight: while Redis runs
 * them, the next turns' submissions gather into the next call, sent when
 * one returns (submit_done). An idle broker so sends each submission at
 * once, and a busy one sends big batches, whose per-call costs are shared
 * by many tasks. */
void tasks_flush(broker *b)
{
    struct tasks *t = b->tasks;
    if (t->submitting >= BROKER_CALLS_IN_FLIGHT || !t->queued)
        return;
    submit_req *oldest = reqs_reverse(t->queued), *last = oldest;
    size_t n = last->ntasks;
    while (last->next && n + last->next->ntasks <= SUBMIT_CALL_TASKS) {
        last = last->next;
        n += last->ntasks;
    }
    t->queued = reqs_reverse(last->next);
    last->next = NULL;
    send_submits(b, oldest, true);
}

/* retry_full_cb: the requests that found their queue full try again, as
 * the oldest of the gathered ones (both lists are newest first). */
static void retry_full_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    broker *b = arg;
    struct tasks *t = b->tasks;
    submit_req **tail = &t->queued;
    while (*tail)
        tail = &(*tail)->next;
    *tail = t->full;
    t->full = NULL;
    tasks_flush(b);
}

void tasks_redis_down(broker *b)
{
    struct tasks *t = b->tasks;
    submit_req *lists[2] = { t->queued, t->full };
    t->queued = t->full = NULL;
    for (int i = 0; i < 2; i++)
        for (submit_req *r = lists[i]; r;) {
            submit_req *next = r->next;
            conn_send_error(r->c, true, r->rid, ERR_UNAVAILABLE, "Redis is unreachable: nothing was stored");
            submit_req_free(r);
            r = next;
        }
}

void tasks_drain(broker *b)
{
    for (waiter *w = b->tasks->all; w;) {
        waiter *next = w->all_next;
        if (w->kind == WAIT_GET && w->armed && !w->answering) {
            event_del(w->timer);
            get_timeout(-1, 0, w); /* answers with the state now; frees w */
        }
        w = next;
    }
}

size_t tasks_busy(const broker *b)
{
    const struct tasks *t = b->tasks;
    size_t n = t->in_flight;
    for (const waiter *w = t->all; w; w = w->all_next)
        n++; /* a RESULT push or a GET reply is owed */
    for (submit_req *r = t->queued; r; r = r->next)
        n++;
    for (submit_req *r = t->full; r; r = r->next)
        n++;
    return n;
}

/* ------------------------------------------------------------------------
 * CANCEL
 * ------------------------------------------------------------------------ */

static void cancel_done(void *arg, redisReply *reply)
{
    read_ctx *x = arg;
    broker *b = x->b;
    b->tasks->in_flight--;
    if (!reply) {
        conn_send_error(x->c, true, x->rid, ERR_UNAVAILABLE, "lost the connection to Redis");
    } else if (reply->type != REDIS_REPLY_ARRAY) {
        log_error("cancel script: %s", reply->type == REDIS_REPLY_ERROR ? reply->str : "bad reply");
        conn_send_error(x->c, true, x->rid, ERR_INTERNAL, "storage error");
    } else if (reply->elements == 0) {
        conn_send_error(x->c, true, x->rid, ERR_NOT_FOUND, "no task %s", x->id);
    } else {
        const char *outcome = reply->element[0]->str, *worker = reply->element[2]->str;
        bool changed = strcmp(outcome, "final") != 0;
        if (changed) {
            b->counters.cancelled++;
            b->errors[ERR_CANCELLED]++;
        }
        if (strcmp(outcome, "running") == 0 && worker[0]) {
            /* Tell the worker: here if it is connected here, else through
             * the channel every broker hears. */
            char msg[512];
            int n = snprintf(msg, sizeof msg, "%s %s", worker, x->id);
            rargs a;
            rargs_init(&a);
            char ch[200];
            snprintf(ch, sizeof ch, "%s:cancel", store_prefix(b->store));
            rargs_str(&a, "PUBLISH");
            rargs_str(&a, ch);
            rargs_borrow(&a, msg, (size_t)n);
            store_command(b->store, &a, NULL, NULL);
            rargs_free(&a);
        }
        proto_msg r;
        broker_ok_init(&r, x->rid);
        r.present |= MF_OUTCOME;
        r.outcome = proto_slice_of(outcome);
        r.task.present |= TF_ID | TF_STATE;
        r.task.id = (proto_slice){ (const uint8_t *)x->id, (uint32_t)x->idlen };
        r.task.state = reply_slice(reply->element[1]);
        conn_send(x->c, &r);
        if (changed) /* waiters here learn now; elsewhere through P:done */
            tasks_on_done(b, x->id, x->idlen);
    }
    conn_unref(x->c);
    mem_free(x);
}

void tasks_cancel(broker *b, conn *c, const proto_msg *m)
{
    read_ctx *x = read_ctx_new(b, c, m->rid, (const char *)m->task.id.ptr, m->task.id.len);
    rargs a;
    rargs_init(&a);
    rargs_u64(&a, clock_wall_ms());
    rargs_borrow(&a, x->id, x->idlen);
    call_script(b, x, SCRIPT_CANCEL, &a, cancel_done);
    rargs_free(&a);
}

/* ------------------------------------------------------------------------
 * Admin ops and STATS
 * ------------------------------------------------------------------------ */

static void admin_done(void *arg, redisReply *reply)
{
    read_ctx *x = arg; /* id holds the op name; wait holds the op */
    broker *b = x->b;
    b->tasks->in_flight--;
    proto_op op = (proto_op)x->wait;
    if (!reply) {
        conn_send_error(x->c, true, x->rid, ERR_UNAVAILABLE, "lost the connection to Redis");
    } else if (reply->type == REDIS_REPLY_ERROR) {
        log_error("admin script: %s", reply->str);
        conn_send_error(x->c, true, x->rid, ERR_INTERNAL, "storage error");
    } else if (op == OP_DEAD_LIST) {
        proto_msg r;
        broker_ok_init(&r, x->rid);
        size_t n = reply->elements > 0 ? (reply->elements - 1) / 2 : 0;
        proto_task *list = mem_calloc(n ? n : 1, sizeof *list);
        size_t got = 0;
        for (size_t i = 0; i < n; i++) {
            const redisReply *id = reply->element[1 + 2 * i];
            proto_slice pm;
            if (view_fill(reply->element[2 + 2 * i], id->str, id->len, &list[got], &pm))
                got++;
        }
        r.present |= MF_TASKS | MF_TOTAL;
        r.tasks = (proto_array){ .n = (uint32_t)got, .tasks = list };
        r.total = reply->elements ? (uint64_t)reply->element[0]->integer : 0;
        conn_send(x->c, &r);
        mem_free(list);
    } else {
        proto_msg r;
        broker_ok_init(&r, x->rid);
        if (op != OP_PAUSE && op != OP_RESUME) {
            r.present |= MF_COUNT;
            r.count = (uint64_t)reply->integer;
        }
        conn_send(x->c, &r);
    }
    conn_unref(x->c);
    mem_free(x);
}

void tasks_admin(broker *b, conn *c, const proto_msg *m)
{
    static const char *const names[OP__COUNT] = {
        [OP_PAUSE] = "pause", [OP_RESUME] = "resume", [OP_PURGE] = "purge",
        [OP_DEAD_LIST] = "dead_list", [OP_DEAD_RETRY] = "dead_retry", [OP_DEAD_PURGE] = "dead_purge",
    };
    if (m->op == OP_DEAD_LIST && (m->present & MF_LIMIT) && m->limit > 1000) {
        conn_send_error(c, true, m->rid, ERR_BAD_REQUEST, "key 'limit': must be at most 1000");
        return;
    }
    read_ctx *x = read_ctx_new(b, c, m->rid, names[m->op], strlen(names[m->op]));
    x->wait = m->op;
    rargs a;
    rargs_init(&a);
    rargs_u64(&a, clock_wall_ms());
    rargs_str(&a, names[m->op]);
    rargs_borrow(&a, m->task.queue.ptr, m->task.queue.len);
    if (m->op == OP_DEAD_LIST) {
        rargs_u64(&a, (m->present & MF_OFFSET) ? m->offset : 0);
        rargs_u64(&a, (m->present & MF_LIMIT) ? m->limit : 100);
    }
    if (m->present & MF_IDS) {
        size_t pos = 0;
        proto_slice s;
        while (proto_strs_next(&m->ids, &pos, &s) == PROTO_OK)
            rargs_borrow(&a, s.ptr, s.len);
    }
    if (call_script(b, x, SCRIPT_ADMIN, &a, admin_done) == 0)
        log_info("conn %llu: %s %.*s", (unsigned long long)c->id, names[m->op], (int)m->task.queue.len,
                 (const char *)m->task.queue.ptr);
    rargs_free(&a);
}

static void stats_done(void *arg, redisReply *reply)
{
    read_ctx *x = arg;
    broker *b = x->b;
    b->tasks->in_flight--;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        if (reply)
            log_error("stats script: %s", reply->type == REDIS_REPLY_ERROR ? reply->str : "bad reply");
        conn_send_error(x->c, true, x->rid, reply ? ERR_INTERNAL : ERR_UNAVAILABLE,
                        reply ? "storage error" : "lost the connection to Redis");
        conn_unref(x->c);
        mem_free(x);
        return;
    }
    static const char *const cols[] = { "name", "ready", "scheduled", "running", "retrying",
                                        "dead", "succeeded", "failed", "cancelled", "paused" };
    const size_t ncols = sizeof cols / sizeof cols[0];
    buf map;
    buf_init(&map);
    msgpack_packer pk;
    proto_packer_init(&pk, &map);
    msgpack_pack_map(&pk, 4);
    proto_pack_str(&pk, "queues");
    size_t nq = reply->elements / ncols;
    msgpack_pack_array(&pk, nq);
    for (size_t q = 0; q < nq; q++) {
        redisReply **row = reply->element + q * ncols;
        msgpack_pack_map(&pk, ncols);
        proto_pack_str(&pk, cols[0]);
        proto_pack_strn(&pk, row[0]->str, row[0]->len);
        for (size_t i = 1; i < ncols - 1; i++) {
            proto_pack_str(&pk, cols[i]);
            msgpack_pack_uint64(&pk, row[i]->integer > 0 ? (uint64_t)row[i]->integer : 0);
        }
        proto_pack_str(&pk, cols[ncols - 1]);
        row[ncols - 1]->integer ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    }
    proto_pack_str(&pk, "workers");
    workers_pack_stats(b, &pk, (proto_slice){ (const uint8_t *)x->id, (uint32_t)x->idlen });
    proto_pack_str(&pk, "errors");
    size_t nerr = 0;
    for (int i = 1; i < ERR__COUNT; i++)
        nerr += b->errors[i] > 0;
    msgpack_pack_map(&pk, nerr);
    for (int i = 1; i < ERR__COUNT; i++)
        if (b->errors[i]) {
            proto_pack_str(&pk, errors_name((error_code)i));
            msgpack_pack_uint64(&pk, b->errors[i]);
        }
    proto_pack_str(&pk, "counters");
    const broker_counters *k = &b->counters;
    const struct { const char *name; uint64_t v; } counters[] = {
        { "requests", k->requests }, { "connections", k->connections },
        { "connections_open", b->nconns }, { "refused", k->refused },
        { "slow_consumers", k->slow_consumers }, { "submitted", k->submitted },
        { "duplicates", k->duplicates }, { "dispatched", k->dispatched }, { "acked", k->acked },
        { "duplicates_dropped", k->dropped_results }, { "failed", k->failed },
        { "retried", k->retried }, { "buried", k->buried }, { "requeued", k->requeued },
        { "reaped", k->reaped }, { "promoted", k->promoted }, { "cancelled", k->cancelled },
        { "expired", k->expired },
        { "flushes", k->flushes }, { "redis_calls", store_calls(b->store) },
    };
    msgpack_pack_map(&pk, sizeof counters / sizeof counters[0]);
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        proto_pack_str(&pk, counters[i].name);
        msgpack_pack_uint64(&pk, counters[i].v);
    }
    proto_msg r;
    broker_ok_init(&r, x->rid);
    r.present |= MF_STATS;
    r.stats = (proto_slice){ buf_rptr(&map), (uint32_t)buf_used(&map) };
    conn_send(x->c, &r);
    buf_free(&map);
    conn_unref(x->c);
    mem_free(x);
}

void tasks_stats(broker *b, conn *c, const proto_msg *m)
{
    /* The queue filter, if any, travels as the context's id. */
    bool one = (m->task.present & TF_QUEUE) != 0;
    read_ctx *x = read_ctx_new(b, c, m->rid, one ? (const char *)m->task.queue.ptr : "",
                               one ? m->task.queue.len : 0);
    rargs a;
    rargs_init(&a);
    if (m->task.present & TF_QUEUE)
        rargs_borrow(&a, m->task.queue.ptr, m->task.queue.len);
    else
        rargs_str(&a, "");
    call_script(b, x, SCRIPT_STATS, &a, stats_done);
    rargs_free(&a);
}

/* ------------------------------------------------------------------------
 * Life
 * ------------------------------------------------------------------------ */

struct tasks *tasks_new(broker *b)
{
    struct tasks *t = mem_calloc(1, sizeof *t);
    t->b = b;
    t->waiting = hmap_new();
    t->retry = evtimer_new(b->base, retry_full_cb, b);
    return t;
}

void tasks_free(struct tasks *t)
{
    tasks_redis_down(t->b);
    while (t->all) {
        waiter *w = t->all;
        waiter_unlink(w);
        waiter_free(w);
    }
    hmap_free(t->waiting);
    event_free(t->retry);
    mem_free(t);
}

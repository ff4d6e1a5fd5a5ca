/* async: libtrident's asynchronous API (see include/trident/async.h).
 *
 * One bufferevent per connection. A request is encoded and appended to its
 * output at once, and kept until its reply (by rid) or, for an apply, its
 * RESULT push (by task id) comes, or its timer fires. Every request not yet
 * answered is on one list, so that a lost connection answers them all.
 *
 * Callbacks may call anything, trident_async_close included: every entry
 * from libevent runs between async_enter and async_leave, and a close made
 * meanwhile only marks the handle, which async_leave frees once the
 * outermost entry returns.
 */
#include "trident/async.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "buf.h"
#include "clock.h"
#include "errors.h"
#include "frame.h"
#include "hmap.h"
#include "log.h"
#include "mem.h"
#include "net.h"
#include "proto.h"
#include "wire.h"

#define CONNECT_TIMEOUT_DEFAULT_MS 5000
#define IO_TIMEOUT_DEFAULT_MS 30000

typedef enum req_kind { REQ_SUBMIT, REQ_BATCH, REQ_APPLY, REQ_GET, REQ_CANCEL, REQ_PING } req_kind;

typedef enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_READY } conn_state;

typedef struct areq {
    trident_async *a;
    req_kind kind;
    uint64_t rid;
    size_t nbatch;            /* REQ_BATCH: tasks sent */
    char id[TRIDENT_ID_SIZE]; /* REQ_APPLY: the task, once the broker took it */
    bool by_rid, by_task;     /* in a->by_rid / a->by_task */
    uint64_t deadline;        /* REQ_APPLY: the call's own, monotonic ms; 0: none */
    trident_async_cb cb;
    void *arg;
    struct event timer;
    uint64_t gen;             /* a->gen when it was made */
    struct areq *prev, *next; /* a->head: every request not yet answered, oldest first */
} areq;

struct trident_async {
    struct event_base *base;
    net_addr addr;
    char *password, *client_name; /* owned; password may be NULL */
    int connect_timeout_ms, io_timeout_ms; /* negative: no limit */
    bool admin;
    trident_async_state_cb on_state;
    void *state_arg;

    conn_state state;
    struct bufferevent *bev;  /* NULL while down */
    struct event *conn_timer; /* connect + HELLO deadline, and deferred failures */
    uint64_t hello_rid;
    uint32_t max_frame;       /* what we send */
    uint32_t max_in;          /* what we take */
    uint64_t max_payload;
    proto_limits lim;
    buf scratch;              /* a request being encoded */
    uint64_t next_rid;
    const struct timeval *io_tv; /* the IO timeout as a common timeout, or NULL */

    hmap *by_rid;             /* rid -> areq awaiting its reply */
    hmap *by_task;            /* task id -> REQ_APPLY areq awaiting its RESULT */
    areq *head, *tail;
    size_t pending;
    uint64_t gen;             /* bumped by every async_fail_all */

    int busy;                 /* libevent entries running */
    bool closed;              /* trident_async_close called meanwhile */
    char errcode[32];
    char errmsg[320];
};

static void async_destroy(trident_async *a);

/* ------------------------------------------------------------------------
 * Entries and errors
 * ------------------------------------------------------------------------ */

static void async_enter(trident_async *a)
{
    a->busy++;
}

/* async_leave: returns false when a is gone (closed meanwhile). */
static bool async_leave(trident_async *a)
{
    if (--a->busy == 0 && a->closed) {
        async_destroy(a);
        return false;
    }
    return true;
}

__attribute__((format(printf, 3, 4)))
static void async_set_error(trident_async *a, const char *code, const char *fmt, ...)
{
    snprintf(a->errcode, sizeof a->errcode, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->errmsg, sizeof a->errmsg, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------------ */

/* req_unlink: takes r off the list and the maps, and stops its timer. */
static void req_unlink(areq *r)
{
    trident_async *a = r->a;
    if (r->prev)
        r->prev->next = r->next;
    else
        a->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        a->tail = r->prev;
    r->prev = r->next = NULL;
    a->pending--;
    if (r->by_rid)
        hmap_del(a->by_rid, &r->rid, sizeof r->rid);
    if (r->by_task)
        hmap_del(a->by_task, r->id, strlen(r->id));
    r->by_rid = r->by_task = false;
    if (event_initialized(&r->timer))
        event_del(&r->timer);
}

/* req_finish: answers r with *rep (status and errors filled by the caller)
 * and frees it. */
static void req_finish(areq *r, trident_reply *rep)
{
    trident_async *a = r->a;
    req_unlink(r);
    if (rep->errcode == NULL)
        rep->errcode = "";
    if (rep->errmsg == NULL)
        rep->errmsg = "";
    if (rep->id == NULL)
        rep->id = r->id;
    async_enter(a);
    r->cb(a, rep, r->arg);
    mem_free(r);
    async_leave(a);
}

/* req_fail: answers r with an error. */
static void req_fail(areq *r, int status, const char *code, const char *msg)
{
    trident_reply rep = { .status = status, .errcode = code, .errmsg = msg };
    req_finish(r, &rep);
}

/* req_timeout_cb: r's time is up. r embeds the timer and is freed here:
 * libevent is done with a non-persistent event once its callback runs. */
static void req_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    areq *r = arg;
    trident_async *a = r->a;
    char msg[160];
    if (r->kind == REQ_APPLY && r->id[0])
        snprintf(msg, sizeof msg, "no result for task %s in time", r->id);
    else
        snprintf(msg, sizeof msg, "no reply from %s in time", a->addr.text);
    async_enter(a);
    req_fail(r, TRIDENT_ETIMEDOUT, CODE_TIMEOUT, msg);
    async_leave(a);
}

/* req_arm: (re)starts r's timer to fire in ms (negative: stops it). */
static void req_arm(areq *r, int64_t ms, bool common)
{
    trident_async *a = r->a;
    if (!event_initialized(&r->timer))
        evtimer_assign(&r->timer, a->base, req_timeout_cb, r);
    if (ms < 0) {
        event_del(&r->timer);
        return;
    }
    if (common && a->io_tv) {
        event_add(&r->timer, a->io_tv);
        return;
    }
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
    event_add(&r->timer, &tv);
}

/* apply_left: the ms left of an apply's own deadline (0 when passed;
 * negative: none). */
static int64_t apply_left(const areq *r)
{
    if (r->deadline == 0)
        return -1;
    uint64_t now = clock_mono_ms();
    return now >= r->deadline ? 0 : (int64_t)(r->deadline - now);
}

/* async_send: encodes m as r's request, appends it to the connection's
 * output and files r. wait_ms is the wait the request asks the broker for.
 * Returns TRIDENT_OK (r is the library's now), or an error (r is still the
 * caller's). */
static int async_send(trident_async *a, areq *r, proto_msg *m, uint64_t wait_ms)
{
    if (a->closed || a->bev == NULL)
        return TRIDENT_EIO;
    m->present |= MF_RID;
    m->rid = ++a->next_rid;
    buf_reset(&a->scratch);
    if (proto_encode(&a->scratch, m, a->max_frame) < 0)
        return TRIDENT_EINVAL;
    if (bufferevent_write(a->bev, buf_rptr(&a->scratch), buf_used(&a->scratch)) < 0)
        return TRIDENT_EIO;
    buf_shrink(&a->scratch, 65536);
    r->a = a;
    r->rid = m->rid;
    r->by_rid = true;
    hmap_put(a->by_rid, &r->rid, sizeof r->rid, r);
    r->gen = a->gen;
    r->prev = a->tail;
    if (a->tail)
        a->tail->next = r;
    else
        a->head = r;
    a->tail = r;
    a->pending++;
    if (a->io_timeout_ms >= 0) {
        int64_t ms = a->io_timeout_ms + (int64_t)(wait_ms > INT32_MAX ? INT32_MAX : wait_ms);
        int64_t left = r->kind == REQ_APPLY ? apply_left(r) : -1;
        if (left >= 0 && left < ms)
            req_arm(r, left, false);
        else
            req_arm(r, ms, wait_ms == 0);
    } else if (r->kind == REQ_APPLY && r->deadline) {
        req_arm(r, apply_left(r), false);
    }
    return TRIDENT_OK;
}

/* async_request: a new request of kind, sent as m. */
static int async_request(trident_async *a, req_kind kind, proto_msg *m, uint64_t wait_ms,
                         uint64_t apply_timeout_ms, trident_async_cb cb, void *arg)
{
    if (cb == NULL)
        return TRIDENT_EINVAL;
    areq *r = mem_calloc(1, sizeof *r);
    r->kind = kind;
    r->cb = cb;
    r->arg = arg;
    if (m->op == OP_SUBMIT_BATCH)
        r->nbatch = m->tasks.n;
    if (apply_timeout_ms)
        r->deadline = clock_mono_ms() + apply_timeout_ms;
    int rc = async_send(a, r, m, wait_ms);
    if (rc != TRIDENT_OK)
        mem_free(r);
    return rc;
}

/* ------------------------------------------------------------------------
 * The connection
 * ------------------------------------------------------------------------ */

/* async_fail_all: answers every waiting request with the error. Requests
 * made by their callbacks (after a reconnect, say) are newer, so they are
 * behind the older ones on the list and are not touched. */
static void async_fail_all(trident_async *a, int status, const char *code, const char *msg)
{
    uint64_t gen = ++a->gen;
    while (a->head && a->head->gen < gen)
        req_fail(a->head, status, code, msg);
}

/* async_down: closes the connection after a failure (recorded in
 * a->errcode/errmsg), answers every waiting request with it and tells
 * on_state. */
static void async_down(trident_async *a, int status)
{
    if (a->bev) {
        bufferevent_free(a->bev);
        a->bev = NULL;
    }
    evtimer_del(a->conn_timer);
    a->state = CONN_DOWN;
    char code[32], msg[320];
    snprintf(code, sizeof code, "%s", a->errcode);
    snprintf(msg, sizeof msg, "%s", a->errmsg);
    async_fail_all(a, status, code, msg);
    /* A request's callback may have reconnected already: then the failure
     * is old news, and trident_async_errcode no longer describes it. */
    if (a->on_state && !a->closed && a->state == CONN_DOWN)
        a->on_state(a, status, a->state_arg);
}

/* async_hello_reply: the broker answered our HELLO. */
static void async_hello_reply(trident_async *a, const proto_msg *m)
{
    if (m->op == OP_ERROR) {
        char code[32];
        proto_slice_cstr(m->code, code, sizeof code);
        async_set_error(a, code, "%.*s", (int)m->message.len,
                        m->message.ptr ? (const char *)m->message.ptr : "");
        async_down(a, TRIDENT_EBROKER);
        return;
    }
    if ((m->present & MF_MAX_FRAME) && m->max_frame > 0 &&
        m->max_frame <= PROTO_FRAME_MAX_LIMIT)
        a->max_frame = a->max_in = (uint32_t)m->max_frame;
    if (m->present & MF_MAX_PAYLOAD)
        a->max_payload = m->max_payload;
    a->state = CONN_READY;
    evtimer_del(a->conn_timer);
    if (a->on_state)
        a->on_state(a, TRIDENT_OK, a->state_arg);
}

/* reply_error: answers r with the broker's ERROR m. */
static void reply_error(areq *r, const proto_msg *m)
{
    char code[32], msg[320];
    proto_slice_cstr(m->code, code, sizeof code);
    snprintf(msg, sizeof msg, "%.*s", (int)m->message.len,
             m->message.ptr ? (const char *)m->message.ptr : "");
    req_fail(r, TRIDENT_EBROKER, code, msg);
}

/* reply_task: answers r with a task (a GET reply or a RESULT push). */
static void reply_task(areq *r, const proto_task *t, proto_slice message, bool outcome)
{
    trident_task_info info;
    wire_info(&info, t, message);
    trident_reply rep = { .status = TRIDENT_OK, .task = &info };
    if (outcome) {
        const char *code;
        rep.status = wire_outcome(&info, &code);
        if (rep.status != TRIDENT_OK) {
            rep.errcode = code;
            rep.errmsg = info.error ? info.error : info.state;
        }
    }
    char id[TRIDENT_ID_SIZE];
    snprintf(id, sizeof id, "%s", info.id);
    rep.id = id;
    req_finish(r, &rep);
    trident_task_info_free(&info);
}

/* reply_ok: answers r with the broker's OK m. */
static void reply_ok(trident_async *a, areq *r, const proto_msg *m)
{
    trident_reply rep = { .status = TRIDENT_OK };
    char id[TRIDENT_ID_SIZE] = "", outcome[16] = "";
    switch (r->kind) {
    case REQ_SUBMIT:
        proto_slice_cstr(m->task.id, id, sizeof id);
        rep.id = id;
        rep.duplicate = m->duplicate;
        req_finish(r, &rep);
        return;
    case REQ_APPLY:
        /* Now the RESULT, under the call's own deadline. */
        proto_slice_cstr(m->task.id, r->id, sizeof r->id);
        hmap_del(a->by_rid, &r->rid, sizeof r->rid);
        r->by_rid = false;
        if (hmap_get(a->by_task, r->id, strlen(r->id))) {
            req_fail(r, TRIDENT_EINVAL, CODE_INVALID,
                     "another apply on this connection awaits the same task");
            return;
        }
        hmap_put(a->by_task, r->id, strlen(r->id), r);
        r->by_task = true;
        req_arm(r, apply_left(r), false);
        return;
    case REQ_BATCH: {
        if (m->ids.n != r->nbatch) {
            req_fail(r, TRIDENT_EPROTO, CODE_PROTOCOL, "the SUBMIT_BATCH reply has the wrong ids");
            return;
        }
        trident_id *ids = mem_calloc(r->nbatch ? r->nbatch : 1, sizeof *ids);
        int *dups = mem_calloc(r->nbatch ? r->nbatch : 1, sizeof *dups);
        size_t pos = 0, i = 0;
        proto_slice s;
        while (i < r->nbatch && proto_strs_next(&m->ids, &pos, &s) == PROTO_OK)
            proto_slice_cstr(s, ids[i++], sizeof ids[0]);
        uint64_t k;
        pos = 0;
        while (proto_uints_next(&m->duplicates, &pos, &k) == PROTO_OK)
            if (k < r->nbatch)
                dups[k] = 1;
        rep.nids = r->nbatch;
        rep.ids = ids;
        rep.duplicates = dups;
        req_finish(r, &rep);
        mem_free(ids);
        mem_free(dups);
        return;
    }
    case REQ_GET:
        reply_task(r, &m->task, m->present & MF_MESSAGE ? m->message : (proto_slice){ NULL, 0 },
                   false);
        return;
    case REQ_CANCEL:
        proto_slice_cstr(m->outcome, outcome, sizeof outcome);
        rep.outcome = outcome;
        req_finish(r, &rep);
        return;
    case REQ_PING:
        rep.time_ms = m->time;
        req_finish(r, &rep);
        return;
    }
}

/* async_frame: one frame from the broker. */
static void async_frame(trident_async *a, const uint8_t *body, size_t len)
{
    proto_msg m;
    proto_error perr;
    if (proto_decode(body, len, PROTO_SIDE_PEER, &a->lim, &m, &perr) != PROTO_OK) {
        if (perr.code == ERR_UNKNOWN_OP)
            return; /* a push this version does not know */
        async_set_error(a, CODE_PROTOCOL, "unreadable frame from the broker at %s: %s",
                        a->addr.text, perr.message);
        async_down(a, TRIDENT_EPROTO);
        return;
    }
    switch (m.op) {
    case OP_OK:
    case OP_ERROR: {
        if (!(m.present & MF_RID)) { /* about the connection, which closes next */
            char code[32];
            proto_slice_cstr(m.code, code, sizeof code);
            async_set_error(a, code, "%.*s", (int)m.message.len,
                            m.message.ptr ? (const char *)m.message.ptr : "");
            if (errors_closes(errors_from_name(code, strlen(code))))
                async_down(a, TRIDENT_EBROKER);
            return;
        }
        if (m.rid == a->hello_rid && a->state == CONN_CONNECTING) {
            async_hello_reply(a, &m);
            return;
        }
        areq *r = hmap_get(a->by_rid, &m.rid, sizeof m.rid);
        if (r == NULL)
            return; /* a reply to a request that timed out */
        if (m.op == OP_ERROR)
            reply_error(r, &m);
        else
            reply_ok(a, r, &m);
        return;
    }
    case OP_RESULT: {
        areq *r = hmap_get(a->by_task, m.task.id.ptr, m.task.id.len);
        if (r)
            reply_task(r, &m.task, (proto_slice){ NULL, 0 }, true);
        return;
    }
    default:
        return; /* SHUTDOWN, and pushes for workers */
    }
}

static void async_read_cb(struct bufferevent *bev, void *arg)
{
    trident_async *a = arg;
    async_enter(a);
    while (!a->closed && a->bev == bev) {
        struct evbuffer *in = bufferevent_get_input(bev);
        size_t have = evbuffer_get_length(in);
        uint8_t hdr[FRAME_HEADER_LEN];
        if (have < sizeof hdr)
            break;
        evbuffer_copyout(in, hdr, sizeof hdr);
        uint32_t len;
        error_code fe;
        if (frame_check_header(hdr, a->max_in, &len, &fe) != PROTO_OK) {
            async_set_error(a, CODE_PROTOCOL, "the broker at %s sent a bad frame header (%s)",
                            a->addr.text, errors_name(fe));
            async_down(a, TRIDENT_EPROTO);
            break;
        }
        if (have < sizeof hdr + len)
            break;
        const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)(sizeof hdr + len));
        async_frame(a, p + sizeof hdr, len);
        if (a->bev != bev)
            break; /* closed or reconnected by a callback: the bytes went with it */
        evbuffer_drain(in, sizeof hdr + len);
    }
    async_leave(a);
}

static void async_event_cb(struct bufferevent *bev, short what, void *arg)
{
    trident_async *a = arg;
    if (what & BEV_EVENT_CONNECTED) {
        if (a->addr.family != AF_UNIX)
            net_set_nodelay(bufferevent_getfd(bev));
        return;
    }
    async_enter(a);
    if (what & BEV_EVENT_EOF) {
        async_set_error(a, CODE_IO, "the broker at %s closed the connection", a->addr.text);
    } else {
        char why[128];
        log_strerror(EVUTIL_SOCKET_ERROR(), why, sizeof why);
        async_set_error(a, CODE_IO, "%s %s: %s",
                        a->state == CONN_CONNECTING ? "connect to" : "connection to",
                        a->addr.text, why);
    }
    async_down(a, TRIDENT_EIO);
    async_leave(a);
}

/* async_conn_timer_cb: the connect + HELLO deadline passed, or a failure
 * found while starting to connect is reported from the loop. */
static void async_conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    trident_async *a = arg;
    async_enter(a);
    if (a->state == CONN_CONNECTING) {
        if (a->errcode[0] == '\0')
            async_set_error(a, CODE_TIMEOUT, "timed out connecting to %s", a->addr.text);
        async_down(a, strcmp(a->errcode, CODE_TIMEOUT) == 0 ? TRIDENT_ETIMEDOUT : TRIDENT_EIO);
    }
    async_leave(a);
}

/* async_open: starts connecting and queues the HELLO. */
static int async_open(trident_async *a)
{
    a->errcode[0] = a->errmsg[0] = '\0';
    a->state = CONN_CONNECTING;
    a->max_frame = PROTO_FRAME_MAX_DEFAULT;
    a->max_in = PROTO_FRAME_MAX_LIMIT;
    a->max_payload = PROTO_FRAME_MAX_DEFAULT;
    a->bev = bufferevent_socket_new(a->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (a->bev == NULL) {
        a->state = CONN_DOWN;
        async_set_error(a, CODE_IO, "cannot make a bufferevent");
        return TRIDENT_EIO;
    }
    bufferevent_setcb(a->bev, async_read_cb, NULL, async_event_cb, a);
    bufferevent_enable(a->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(a->bev, (struct sockaddr *)&a->addr.ss, (int)a->addr.len) < 0) {
        /* Reported from the loop, like every other failure. */
        char why[128];
        log_strerror(errno, why, sizeof why);
        async_set_error(a, CODE_IO, "connect to %s: %s", a->addr.text, why);
        struct timeval now = { 0, 0 };
        evtimer_add(a->conn_timer, &now);
        return TRIDENT_OK;
    }
    proto_msg m;
    wire_hello(&m, a->admin, a->client_name, a->password);
    m.present |= MF_RID;
    m.rid = a->hello_rid = ++a->next_rid;
    buf_reset(&a->scratch);
    if (proto_encode(&a->scratch, &m, a->max_frame) < 0 ||
        bufferevent_write(a->bev, buf_rptr(&a->scratch), buf_used(&a->scratch)) < 0) {
        async_set_error(a, CODE_INVALID, "the HELLO does not fit in a frame");
        struct timeval now = { 0, 0 };
        evtimer_add(a->conn_timer, &now);
        return TRIDENT_OK;
    }
    if (a->connect_timeout_ms >= 0 || a->io_timeout_ms >= 0) {
        int64_t ms = (a->connect_timeout_ms >= 0 ? a->connect_timeout_ms : 0) +
                     (a->io_timeout_ms >= 0 ? a->io_timeout_ms : 0);
        struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
        evtimer_add(a->conn_timer, &tv);
    }
    return TRIDENT_OK;
}

trident_async *trident_async_connect(struct event_base *base, const char *addr,
                                     const trident_options *o, trident_async_state_cb on_state,
                                     void *arg, char *err, size_t errlen)
{
    static const trident_options defaults;
    if (o == NULL)
        o = &defaults;
    if (err && errlen)
        err[0] = '\0';
    net_addr na;
    char why[256];
    if (base == NULL || addr == NULL) {
        if (err && errlen)
            snprintf(err, errlen, "%s: no event base or address", CODE_INVALID);
        return NULL;
    }
    if (net_addr_parse(addr, TRIDENT_DEFAULT_PORT, &na, why, sizeof why) < 0) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", CODE_INVALID, why);
        return NULL;
    }
    trident_async *a = mem_calloc(1, sizeof *a);
    a->base = base;
    a->addr = na;
    a->password = o->password ? mem_strdup(o->password) : NULL;
    a->client_name = mem_strdup(o->client_name ? o->client_name : "libtrident/" TRIDENT_VERSION);
    a->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms
                                                  : CONNECT_TIMEOUT_DEFAULT_MS;
    a->io_timeout_ms = o->io_timeout_ms ? o->io_timeout_ms : IO_TIMEOUT_DEFAULT_MS;
    a->admin = o->admin != 0;
    a->on_state = on_state;
    a->state_arg = arg;
    proto_limits_default(&a->lim);
    buf_init(&a->scratch);
    a->by_rid = hmap_new();
    a->by_task = hmap_new();
    a->conn_timer = evtimer_new(base, async_conn_timer_cb, a);
    if (a->io_timeout_ms >= 0) {
        struct timeval tv = { .tv_sec = a->io_timeout_ms / 1000,
                              .tv_usec = (a->io_timeout_ms % 1000) * 1000 };
        a->io_tv = event_base_init_common_timeout(base, &tv);
    }
    async_open(a);
    return a;
}

int trident_async_reconnect(trident_async *a)
{
    if (a->closed)
        return TRIDENT_EIO;
    if (a->state != CONN_DOWN)
        return TRIDENT_OK;
    return async_open(a);
}

static void async_destroy(trident_async *a)
{
    if (a->bev)
        bufferevent_free(a->bev);
    event_free(a->conn_timer);
    hmap_free(a->by_rid);
    hmap_free(a->by_task);
    buf_free(&a->scratch);
    mem_free(a->password);
    mem_free(a->client_name);
    mem_free(a);
}

void trident_async_close(trident_async *a)
{
    if (a == NULL || a->closed)
        return;
    async_enter(a);
    a->closed = true;
    if (a->bev) {
        bufferevent_free(a->bev);
        a->bev = NULL;
    }
    a->state = CONN_DOWN;
    async_fail_all(a, TRIDENT_EIO, CODE_IO, "the connection was closed by its owner");
    async_leave(a);
}

const char *trident_async_errcode(const trident_async *a)
{
    return a->errcode;
}

const char *trident_async_errmsg(const trident_async *a)
{
    return a->errmsg;
}

size_t trident_async_pending(const trident_async *a)
{
    return a->pending;
}

/* ------------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------------ */

/* submit_msg: the SUBMIT of o into m (borrowing o's strings). */
static int submit_msg(trident_async *a, const trident_submit_opts *o, bool push, proto_msg *m)
{
    wire_err e;
    wire_request(m, OP_SUBMIT, NULL);
    if (wire_task(o, a->max_payload, "", &m->task, &e) != TRIDENT_OK)
        return TRIDENT_EINVAL;
    if (push) {
        m->present |= MF_PUSH_RESULT;
        m->push_result = true;
    }
    if (o->wait_ms) {
        m->present |= MF_WAIT;
        m->wait = o->wait_ms;
    }
    return TRIDENT_OK;
}

int trident_async_submit(trident_async *a, const trident_submit_opts *o, trident_async_cb cb,
                         void *arg)
{
    proto_msg m;
    if (submit_msg(a, o, false, &m) != TRIDENT_OK)
        return TRIDENT_EINVAL;
    return async_request(a, REQ_SUBMIT, &m, o->wait_ms, 0, cb, arg);
}

int trident_async_apply(trident_async *a, const trident_submit_opts *o, uint64_t timeout_ms,
                        trident_async_cb cb, void *arg)
{
    proto_msg m;
    if (submit_msg(a, o, true, &m) != TRIDENT_OK)
        return TRIDENT_EINVAL;
    return async_request(a, REQ_APPLY, &m, o->wait_ms, timeout_ms, cb, arg);
}

int trident_async_submit_batch(trident_async *a, const trident_submit_opts *tasks, size_t n,
                               trident_async_cb cb, void *arg)
{
    if (tasks == NULL || n == 0 || n > TRIDENT_BATCH_MAX)
        return TRIDENT_EINVAL;
    proto_task *ts = mem_calloc(n, sizeof *ts);
    int rc = TRIDENT_OK;
    for (size_t i = 0; i < n && rc == TRIDENT_OK; i++) {
        wire_err e;
        rc = wire_task(&tasks[i], a->max_payload, "", &ts[i], &e);
        if (tasks[i].wait_ms != tasks[0].wait_ms)
            rc = TRIDENT_EINVAL;
    }
    if (rc == TRIDENT_OK) {
        proto_msg m;
        wire_request(&m, OP_SUBMIT_BATCH, NULL);
        m.present |= MF_TASKS;
        m.tasks.n = (uint32_t)n;
        m.tasks.tasks = ts;
        if (tasks[0].wait_ms) {
            m.present |= MF_WAIT;
            m.wait = tasks[0].wait_ms;
        }
        rc = async_request(a, REQ_BATCH, &m, tasks[0].wait_ms, 0, cb, arg);
    }
    mem_free(ts);
    return rc;
}

int trident_async_get(trident_async *a, const char *id, uint64_t wait_ms, trident_async_cb cb,
                      void *arg)
{
    if (id == NULL)
        return TRIDENT_EINVAL;
    proto_msg m;
    wire_request(&m, OP_GET, NULL);
    m.task.present |= TF_ID;
    m.task.id = proto_slice_of(id);
    if (wait_ms) {
        m.present |= MF_WAIT;
        m.wait = wait_ms;
    }
    return async_request(a, REQ_GET, &m, wait_ms, 0, cb, arg);
}

int trident_async_cancel(trident_async *a, const char *id, trident_async_cb cb, void *arg)
{
    if (id == NULL)
        return TRIDENT_EINVAL;
    proto_msg m;
    wire_request(&m, OP_CANCEL, NULL);
    m.task.present |= TF_ID;
    m.task.id = proto_slice_of(id);
    return async_request(a, REQ_CANCEL, &m, 0, 0, cb, arg);
}

int trident_async_ping(trident_async *a, trident_async_cb cb, void *arg)
{
    proto_msg m;
    wire_request(&m, OP_PING, NULL);
    return async_request(a, REQ_PING, &m, 0, 0, cb, arg);
}

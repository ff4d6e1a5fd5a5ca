#include "child.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "clock.h"
#include "exech.h"
#include "frame.h"
#include "hmap.h"
#include "log.h"
#include "mem.h"
#include "net.h"
#include "pool.h"
#include "proto.h"
#include "task.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define REPLY_WAIT_MS 2000   /* at exit: how long to wait for the last answers */

/* An outcome to deliver: kept until the broker answers it, and sent again
 * on every new connection until then. */
typedef struct report {
    uint64_t rid;            /* 0: not sent on the current connection */
    char *id;
    bool ok;
    buf result;
    error_code code;
    char *message;
    bool retryable;
    struct report *next;
} report;

/* A progress report from any thread, waiting for the loop. */
typedef struct progress {
    char *id;
    char *message;
    unsigned percent;
    struct progress *next;
} progress;

typedef struct child {
    struct event_base *base;
    const child_env *env;
    const worker_settings *set;
    const worker_queues *queues;
    trident_registry *reg;
    pool *pool;
    exech *exec;             /* programs run by exec handlers */
    struct event *sigchld;
    proto_limits limits;

    net_addr addr;
    struct bufferevent *bev;
    bool connected;          /* HELLO answered */
    uint64_t next_rid;
    uint64_t hello_rid;
    uint64_t backoff_ms;
    struct event *reconnect;
    struct event *heartbeat;
    struct event *flush;     /* sends the coalesced CREDIT */
    uint64_t heartbeat_ms;
    bool told_ready;
    bool no_credit;          /* the broker asked us to stop taking tasks */

    trident_task *tasks;     /* every task not yet reported */
    int held;                /* tasks whose slot is taken (running or abandoned) */
    int slots;
    int64_t owed_credit;     /* freed slots not yet granted */
    report *reports;
    uint64_t done, failed;

    bool stopping;           /* take no more tasks; exit when idle */
    bool handed_back;        /* the grace ended and running tasks were handed back */
    int exit_code;
    uint64_t grace_end;      /* monotonic ms */
    uint64_t exit_by;        /* monotonic ms: leave even if answers are missing */
    struct event *stop_check;
    struct event *sigterm, *sigint;
    pthread_mutex_t progress_lock;
    progress *progress_list;  /* guarded by progress_lock */
    struct event *progress_ev;
} child;

static void link_connect(child *ch);
static void maybe_exit(child *ch);
static void begin_stop(child *ch, int code, const char *why);
static void lost(child *ch, const char *why);

/* ------------------------------------------------------------------------
 * Sending
 * ------------------------------------------------------------------------ */

static void send_msg(child *ch, proto_msg *m)
{
    if (!ch->bev)
        return;
    buf out;
    buf_init(&out);
    if (proto_encode(&out, m, ch->limits.max_frame) == 0)
        bufferevent_write(ch->bev, buf_rptr(&out), buf_used(&out));
    else
        log_error("a %s of task frame would exceed the frame limit; dropped", proto_op_name(m->op));
    buf_free(&out);
}

static uint64_t rid_next(child *ch)
{
    return ++ch->next_rid;
}

static void send_report(child *ch, report *r)
{
    proto_msg m;
    memset(&m, 0, sizeof m);
    m.present = MF_RID;
    m.rid = r->rid = rid_next(ch);
    m.task.present = TF_ID;
    m.task.id = proto_slice_of(r->id);
    if (r->ok) {
        m.op = OP_ACK;
        m.task.present |= TF_RESULT;
        m.task.result = (proto_slice){ buf_rptr(&r->result), (uint32_t)buf_used(&r->result) };
    } else {
        m.op = OP_FAIL;
        m.present |= MF_CODE | MF_MESSAGE | MF_RETRYABLE;
        m.code = proto_slice_of(errors_name(r->code));
        m.message = proto_slice_of(r->message ? r->message : "");
        m.retryable = r->retryable;
    }
    send_msg(ch, &m);
}

static void send_credit(child *ch)
{
    if (!ch->connected || ch->stopping || ch->no_credit || ch->owed_credit <= 0)
        return;
    proto_msg m;
    memset(&m, 0, sizeof m);
    m.op = OP_CREDIT;
    m.present = MF_RID | MF_CREDITS;
    m.rid = rid_next(ch);
    m.credits = (uint64_t)ch->owed_credit;
    ch->owed_credit = 0;
    send_msg(ch, &m);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    send_credit(arg);
}

static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    child *ch = arg;
    if (!ch->connected)
        return;
    /* Outcomes the broker could not store (its Redis was away) go again. */
    for (report *r = ch->reports; r; r = r->next)
        if (r->rid == 0)
            send_report(ch, r);
    size_t n = 0;
    for (trident_task *t = ch->tasks; t; t = t->next)
        n += t->phase == TASK_RUNNING;
    proto_slice *ids = mem_calloc(n ? n : 1, sizeof *ids);
    n = 0;
    for (trident_task *t = ch->tasks; t; t = t->next)
        if (t->phase == TASK_RUNNING)
            ids[n++] = proto_slice_of(t->id);
    proto_msg m;
    memset(&m, 0, sizeof m);
    m.op = OP_HEARTBEAT;
    m.present = MF_RID | MF_RUNNING | MF_RSS | MF_DONE | MF_FAILED;
    m.rid = rid_next(ch);
    m.running = (proto_array){ .n = (uint32_t)n, .strs = ids };
    m.rss = rss_bytes();
    m.done = ch->done;
    m.failed = ch->failed;
    send_msg(ch, &m);
    mem_free(ids);
}

/* ------------------------------------------------------------------------
 * Tasks
 * ------------------------------------------------------------------------ */

static void task_unlink(child *ch, trident_task *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        ch->tasks = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

static trident_task *task_by_id(child *ch, const char *id, size_t len)
{
    for (trident_task *t = ch->tasks; t; t = t->next)
        if (strlen(t->id) == len && memcmp(t->id, id, len) == 0)
            return t;
    return NULL;
}

/* report_outcome: queue the task's outcome for the broker (and send it now
 * if connected). The task stays until its slot is free. */
static void report_outcome(child *ch, trident_task *t)
{
    report *r = mem_calloc(1, sizeof *r);
    r->id = mem_strdup(t->id);
    bool cancelled = trident_task_cancelled(t);
    r->ok = t->ok && !cancelled; /* a cancelled task is never a success */
    buf_init(&r->result);
    if (r->ok) {
        buf_append(&r->result, buf_rptr(&t->result), buf_used(&t->result));
        ch->done++;
    } else {
        r->code = t->code;
        r->message = mem_strdup(t->error ? t->error : errors_name(t->code));
        r->retryable = t->retryable;
        ch->failed++;
    }
    log_debug("task %s (%s): %s", t->id, t->name, r->ok ? "done" : errors_name(r->code));
    r->next = ch->reports;
    ch->reports = r;
    if (ch->connected)
        send_report(ch, r);
}

/* release: the task's slot is free again (its handler returned). */
static void release(child *ch, trident_task *t)
{
    task_unlink(ch, t);
    if (t->timer)
        event_free(t->timer);
    task_free(t);
    ch->held--;
    ch->owed_credit++;
    event_active(ch->flush, 0, 0);
    int64_t max_tasks = ch->set->max_tasks_per_child;
    uint64_t max_mem = ch->set->max_memory_per_child;
    if (!ch->stopping && ((max_tasks && (int64_t)(ch->done + ch->failed) >= max_tasks) ||
                          (max_mem && rss_bytes() > max_mem))) {
        log_info("recycling after %llu tasks (resident memory %llu bytes)",
                 (unsigned long long)(ch->done + ch->failed), (unsigned long long)rss_bytes());
        supervisor_tell(ch->env, SUPERVISOR_RECYCLE);
        begin_stop(ch, CHILD_EXIT_OK, "recycling");
    }
    maybe_exit(ch);
}

static const char *stop_message(const trident_task *t)
{
    return t->stop_code == ERR_TIMEOUT ? "the task ran past its time limit" : "cancelled by request";
}

/* finished: the handler is done with t (any thread's work has returned). */
static void finished(child *ch, trident_task *t)
{
    if (t->phase == TASK_RUNNING) {
        t->phase = TASK_FINISHED;
        if (trident_task_cancelled(t)) /* whatever it set: never a success */
            task_fail(t, t->stop_code, t->stop_code == ERR_TIMEOUT, stop_message(t));
        report_outcome(ch, t);
    }
    release(ch, t);
}

static void run_sync(void *job)
{
    trident_task *t = job;
    int rc = t->h->sync_fn(t, t->h->ctx);
    if (rc == 0)
        t->ok = true;
    else if (t->error == NULL)
        task_fail(t, ERR_TASK_FAILED, true, "the handler failed without a message");
}

static void sync_done(void *job)
{
    trident_task *t = job;
    finished(t->owner, t);
}

static void async_done(trident_task *t)
{
    if (!t->ok && t->error == NULL)
        task_fail(t, ERR_TASK_FAILED, true, "the handler failed without a message");
    finished(t->owner, t);
}

/* progress_cb: any thread. The report is copied onto a locked list and the
 * loop is woken (the base is made thread-aware at start); the loop sends
 * the PROGRESS frames, so a task that ends meanwhile is harmless. */
static void exec_done(trident_task *t, void *arg)
{
    finished(arg, t);
}

static void sigchld_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    child *ch = arg;
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        exech_reaped(ch->exec, pid, status);
}

static void progress_cb(trident_task *t, unsigned percent, const char *message)
{
    child *ch = t->owner;
    progress *p = mem_calloc(1, sizeof *p);
    p->id = mem_strdup(t->id);
    p->message = mem_strdup(message ? message : "");
    p->percent = percent;
    pthread_mutex_lock(&ch->progress_lock);
    p->next = ch->progress_list;
    ch->progress_list = p;
    pthread_mutex_unlock(&ch->progress_lock);
    event_active(ch->progress_ev, 0, 0);
}

static void progress_send_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    child *ch = arg;
    pthread_mutex_lock(&ch->progress_lock);
    progress *list = ch->progress_list;
    ch->progress_list = NULL;
    pthread_mutex_unlock(&ch->progress_lock);
    while (list) {
        progress *p = list;
        list = p->next;
        if (ch->connected) {
            proto_msg m;
            memset(&m, 0, sizeof m);
            m.op = OP_PROGRESS;
            m.present = MF_RID | MF_MESSAGE;
            m.rid = rid_next(ch);
            m.message = proto_slice_of(p->message);
            m.task.present = TF_ID | TF_PROGRESS;
            m.task.id = proto_slice_of(p->id);
            m.task.progress = p->percent;
            send_msg(ch, &m);
        }
        mem_free(p->id);
        mem_free(p->message);
        mem_free(p);
    }
}

/* abandon: stop waiting for the handler: report the failure now. Its slot
 * stays taken until the handler returns (or the process exits). */
static void abandon(child *ch, trident_task *t, error_code code, const char *why)
{
    if (t->phase != TASK_RUNNING)
        return;
    t->phase = TASK_ABANDONED;
    task_fail(t, code, code != ERR_CANCELLED, why);
    report_outcome(ch, t);
}

static void kill_grace_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    trident_task *t = arg;
    child *ch = t->owner;
    if (t->phase != TASK_RUNNING)
        return;
    if (t->h->kind == HANDLER_EXEC) {
        /* The program did not stop on SIGTERM: kill its group; its run ends
         * through exec_done, which reports the TIMEOUT or CANCELLED. */
        log_warn("task %s (%s): the program did not stop within the kill grace: SIGKILL", t->id,
                 t->name);
        exech_signal(ch->exec, t, SIGKILL);
        return;
    }
    abandon(ch, t, t->stop_code, stop_message(t));
    if (t->h->kind != HANDLER_SYNC) {
        /* An async handler holds no thread: its slot comes back when it
         * completes at last. */
        log_warn("task %s (%s) did not stop within the kill grace: failed with %s", t->id,
                 t->name, errors_name(t->stop_code));
        return;
    }
    log_warn("task %s (%s) did not stop within the kill grace: failing it with %s and replacing "
             "this process", t->id, t->name, errors_name(t->stop_code));
    begin_stop(ch, CHILD_EXIT_STUCK, "a handler outlived its time limit");
}

/* stop_task: its deadline passed, or it was cancelled: tell the handler,
 * and give it kill-grace to stop. */
static void stop_task(child *ch, trident_task *t, error_code code)
{
    if (t->phase != TASK_RUNNING || trident_task_cancelled(t))
        return;
    t->stop_code = code;
    atomic_store_explicit(&t->cancelled, 1, memory_order_release);
    if (t->h && t->h->kind == HANDLER_EXEC)
        exech_signal(ch->exec, t, SIGTERM);
    if (t->timer) {
        event_del(t->timer); /* the deadline, if a cancel came first */
        event_assign(t->timer, ch->base, -1, 0, kill_grace_cb, t);
    } else {
        t->timer = evtimer_new(ch->base, kill_grace_cb, t);
    }
    struct timeval tv = { (time_t)(ch->set->kill_grace / 1000),
                          (suseconds_t)(ch->set->kill_grace % 1000) * 1000 };
    evtimer_add(t->timer, &tv);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    trident_task *t = arg;
    log_info("task %s (%s) reached its time limit of %llu ms", t->id, t->name,
             (unsigned long long)t->timeout_ms);
    stop_task(t->owner, t, ERR_TIMEOUT);
}

static void on_task(child *ch, const proto_msg *m)
{
    const proto_task *p = &m->task;
    trident_task *t = task_new((const char *)p->id.ptr, p->id.len, (const char *)p->name.ptr,
                               p->name.len, (const char *)p->queue.ptr, p->queue.len,
                               p->payload.ptr, p->payload.len, (unsigned)p->attempt);
    t->owner = ch;
    t->on_progress = progress_cb;
    t->on_complete = async_done;
    t->next = ch->tasks;
    if (ch->tasks)
        ch->tasks->prev = t;
    ch->tasks = t;
    ch->held++;
    log_debug("task %s (%s) attempt %u", t->id, t->name, t->attempt);
    if (ch->stopping) {
        task_fail(t, ERR_TASK_FAILED, true, "the worker process is stopping");
        finished(ch, t);
        return;
    }
    const handler *h = registry_find(ch->reg, t->name);
    if (!h) {
        char msg[512];
        snprintf(msg, sizeof msg, "no handler for task name '%s' on this worker", t->name);
        task_fail(t, ERR_NO_HANDLER, false, msg);
        finished(ch, t);
        return;
    }
    t->h = h;
    t->timeout_ms = p->timeout ? p->timeout : h->default_timeout_ms ? h->default_timeout_ms
                                                                    : ch->set->default_timeout;
    if (t->timeout_ms) {
        t->deadline_ms = clock_wall_ms() + t->timeout_ms;
        t->timer = evtimer_new(ch->base, deadline_cb, t);
        struct timeval tv = { (time_t)(t->timeout_ms / 1000), (suseconds_t)(t->timeout_ms % 1000) * 1000 };
        evtimer_add(t->timer, &tv);
    }
    switch (h->kind) {
    case HANDLER_SYNC:
        if (pool_submit(ch->pool, t, run_sync, sync_done) < 0) {
            task_fail(t, ERR_TASK_FAILED, true, "the worker process is stopping");
            finished(ch, t);
        }
        break;
    case HANDLER_ASYNC:
        h->async_fn(t, ch->base, h->ctx);
        break;
    case HANDLER_EXEC: {
        /* A result must fit a frame with the rest of an ACK. */
        size_t max_output = ch->limits.max_frame > 65536 ? ch->limits.max_frame - 65536 : 65536;
        char err[256];
        if (exech_start(ch->exec, t, h->command, max_output, exec_done, ch, err, sizeof err) < 0) {
            task_fail(t, ERR_TASK_FAILED, true, err);
            finished(ch, t);
        }
        break;
    }
    }
}

/* ------------------------------------------------------------------------
 * Replies and pushes
 * ------------------------------------------------------------------------ */

static void on_hello_ok(child *ch, const proto_msg *m)
{
    ch->connected = true;
    ch->backoff_ms = 0;
    ch->no_credit = false;
    ch->heartbeat_ms = (m->present & MF_HEARTBEAT) && m->heartbeat ? m->heartbeat : 2000;
    if (m->present & MF_MAX_FRAME)
        ch->limits.max_frame = (uint32_t)m->max_frame;
    log_info("connected to %s (%.*s)", ch->addr.text, (int)m->server.len, (const char *)m->server.ptr);
    /* Outcomes the last connection did not get answered go out again. */
    for (report *r = ch->reports; r; r = r->next)
        send_report(ch, r);
    ch->owed_credit = ch->slots - ch->held;
    send_credit(ch);
    struct timeval tv = { (time_t)(ch->heartbeat_ms / 1000), (suseconds_t)(ch->heartbeat_ms % 1000) * 1000 };
    event_del(ch->heartbeat);
    event_add(ch->heartbeat, &tv);
    if (!ch->told_ready) {
        ch->told_ready = true;
        supervisor_tell(ch->env, SUPERVISOR_READY);
    }
}

/* answered: the broker answered request rid; an answered report is done. */
static void answered(child *ch, uint64_t rid, const proto_msg *m)
{
    for (report **pr = &ch->reports; *pr; pr = &(*pr)->next) {
        report *r = *pr;
        if (r->rid != rid)
            continue;
        if (m->op == OP_ERROR && (proto_slice_eq(m->code, "UNAVAILABLE") || proto_slice_eq(m->code, "INTERNAL"))) {
            r->rid = 0; /* not stored: sent again with the next heartbeat */
            return;
        }
        if (m->op == OP_ERROR)
            log_warn("the broker refused the outcome of task %s: %.*s", r->id, (int)m->message.len,
                     (const char *)m->message.ptr);
        *pr = r->next;
        mem_free(r->id);
        mem_free(r->message);
        buf_free(&r->result);
        mem_free(r);
        maybe_exit(ch);
        return;
    }
    if (m->op == OP_ERROR)
        log_warn("broker: %.*s: %.*s", (int)m->code.len, (const char *)m->code.ptr, (int)m->message.len,
                 (const char *)m->message.ptr);
}

static void on_message(child *ch, const proto_msg *m)
{
    switch (m->op) {
    case OP_OK:
    case OP_ERROR:
        if ((m->present & MF_RID) && m->rid == ch->hello_rid) {
            if (m->op == OP_OK) {
                on_hello_ok(ch, m);
            } else {
                log_error("the broker refused HELLO: %.*s: %.*s", (int)m->code.len,
                          (const char *)m->code.ptr, (int)m->message.len, (const char *)m->message.ptr);
                lost(ch, "HELLO refused"); /* reconnects with the backoff */
            }
            return;
        }
        answered(ch, m->rid, m);
        break;
    case OP_TASK:
        on_task(ch, m);
        break;
    case OP_CANCEL: {
        trident_task *t = task_by_id(ch, (const char *)m->task.id.ptr, m->task.id.len);
        if (t) {
            log_info("task %s (%s): cancelled by request", t->id, t->name);
            stop_task(ch, t, ERR_CANCELLED);
        }
        break;
    }
    case OP_SHUTDOWN:
        log_info("the broker is shutting down: taking no more tasks from it");
        ch->no_credit = true;
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------------------
 * The link
 * ------------------------------------------------------------------------ */

static void lost(child *ch, const char *why)
{
    if (ch->bev) {
        bufferevent_free(ch->bev);
        ch->bev = NULL;
    }
    if (ch->connected)
        log_warn("lost the broker %s: %s", ch->addr.text, why);
    ch->connected = false;
    event_del(ch->heartbeat);
    for (report *r = ch->reports; r; r = r->next)
        r->rid = 0;
    if (ch->stopping && ch->held == 0) {
        event_base_loopexit(ch->base, NULL); /* nobody to answer us now */
        return;
    }
    ch->backoff_ms = ch->backoff_ms ? ch->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (ch->backoff_ms > BACKOFF_MAX_MS)
        ch->backoff_ms = BACKOFF_MAX_MS;
    struct timeval tv = { (time_t)(ch->backoff_ms / 1000), (suseconds_t)(ch->backoff_ms % 1000) * 1000 };
    evtimer_add(ch->reconnect, &tv);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    child *ch = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        uint8_t hdr[FRAME_HEADER_LEN];
        if (avail < sizeof hdr)
            return;
        evbuffer_copyout(in, hdr, sizeof hdr);
        uint32_t len;
        error_code err;
        if (frame_check_header(hdr, ch->limits.max_frame, &len, &err) != PROTO_OK) {
            lost(ch, "a bad frame from the broker");
            return;
        }
        if (avail < sizeof hdr + len)
            return;
        const uint8_t *p = evbuffer_pullup(in, (ssize_t)(sizeof hdr + len));
        proto_msg m;
        proto_error e;
        if (proto_decode(p + sizeof hdr, len, PROTO_SIDE_PEER, &ch->limits, &m, &e) == PROTO_OK)
            on_message(ch, &m);
        else if (e.code == ERR_BAD_FRAME) {
            lost(ch, e.message);
            return;
        } else {
            log_debug("ignoring a message from the broker: %s", e.message);
        }
        if (!ch->bev) /* the message closed the link */
            return;
        evbuffer_drain(in, sizeof hdr + len);
    }
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    child *ch = arg;
    if (what & BEV_EVENT_CONNECTED) {
        proto_msg m;
        memset(&m, 0, sizeof m);
        m.op = OP_HELLO;
        m.present = MF_RID | MF_VERSION | MF_ROLE | MF_CLIENT | MF_WORKER_ID | MF_HOST | MF_PID |
                    MF_QUEUES | MF_CAPACITY | MF_PREFETCH;
        m.rid = ch->hello_rid = rid_next(ch);
        m.version = PROTO_VERSION;
        m.role = proto_slice_of("worker");
        char client[64], wid[256], host[128] = "";
        snprintf(client, sizeof client, "trident-worker/%s", TRIDENT_VERSION);
        snprintf(wid, sizeof wid, "%s/%d", ch->set->worker_id, ch->env->slot);
        gethostname(host, sizeof host - 1);
        m.client = proto_slice_of(client);
        m.worker_id = proto_slice_of(wid);
        m.host = proto_slice_of(host);
        m.pid = (uint64_t)getpid();
        proto_slice qs[256];
        uint32_t nq = ch->queues->n < 256 ? ch->queues->n : 256;
        for (uint32_t i = 0; i < nq; i++)
            qs[i] = proto_slice_of(ch->queues->names[i]);
        m.queues = (proto_array){ .n = nq, .strs = qs };
        if (ch->queues->weights) {
            m.present |= MF_WEIGHTS;
            m.weights = (proto_array){ .n = nq, .uints = ch->queues->weights };
        }
        m.capacity = (uint64_t)ch->slots;
        m.prefetch = (uint64_t)ch->set->prefetch;
        if (ch->set->password) {
            m.present |= MF_PASSWORD;
            m.password = proto_slice_of(ch->set->password);
        }
        send_msg(ch, &m);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        lost(ch, what & BEV_EVENT_EOF ? "connection closed" : "connection error");
}

static void link_connect(child *ch)
{
    if (ch->bev)
        return;
    ch->bev = bufferevent_socket_new(ch->base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(ch->bev, read_cb, NULL, event_cb, ch);
    bufferevent_enable(ch->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(ch->bev, (struct sockaddr *)&ch->addr.ss, (int)ch->addr.len) < 0)
        lost(ch, "connect failed");
    else if (ch->addr.family != AF_UNIX)
        net_set_nodelay(bufferevent_getfd(ch->bev));
}

static void reconnect_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    link_connect(arg);
}

/* ------------------------------------------------------------------------
 * Stopping
 *
 * Once stopping, a 50 ms check runs until the process can leave: when no
 * slot is taken (or only by handlers that ignored their time limit) and
 * the broker answered every outcome (or cannot, or REPLY_WAIT_MS passed).
 * At the end of the grace, tasks still running are handed back as
 * retryable failures; their threads die with the process.
 * ------------------------------------------------------------------------ */

static void maybe_exit(child *ch)
{
    if (!ch->stopping)
        return;
    uint64_t now = clock_mono_ms();
    if (!ch->handed_back && now >= ch->grace_end) {
        ch->handed_back = true;
        int n = 0;
        for (trident_task *t = ch->tasks; t; t = t->next)
            if (t->phase == TASK_RUNNING) {
                atomic_store_explicit(&t->cancelled, 1, memory_order_release);
                abandon(ch, t, ERR_TASK_FAILED, "the worker process stopped before the task finished");
                n++;
            }
        if (n)
            log_warn("grace over: handed %d running tasks back to the broker", n);
        ch->exit_by = now + REPLY_WAIT_MS;
    }
    int busy = 0;
    for (trident_task *t = ch->tasks; t; t = t->next)
        busy += t->phase == TASK_RUNNING;
    bool answered_all = ch->reports == NULL || !ch->connected || now >= ch->exit_by;
    if (busy == 0 && answered_all)
        event_base_loopexit(ch->base, NULL);
}

static void stop_check_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    maybe_exit(arg);
}

static void begin_stop(child *ch, int code, const char *why)
{
    if (code > ch->exit_code)
        ch->exit_code = code;
    if (ch->stopping)
        return;
    ch->stopping = true;
    log_info("stopping: %s", why);
    uint64_t now = clock_mono_ms();
    ch->grace_end = code == CHILD_EXIT_STUCK ? now : now + ch->set->grace;
    ch->exit_by = ch->grace_end + REPLY_WAIT_MS;
    struct timeval tv = { 0, 50000 };
    event_add(ch->stop_check, &tv);
    maybe_exit(ch);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    begin_stop(arg, CHILD_EXIT_OK, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ------------------------------------------------------------------------
 * Life
 * ------------------------------------------------------------------------ */

int child_main(const child_env *env, void *arg)
{
    const child_config *cfg = arg;
    char role[32];
    snprintf(role, sizeof role, "worker.%d", env->slot);
    log_init(role, log_get_level());
    child ch;
    memset(&ch, 0, sizeof ch);
    ch.env = env;
    ch.set = cfg->set;
    ch.queues = cfg->queues;
    ch.reg = cfg->reg;
    ch.slots = (int)cfg->set->slots;
    proto_limits_default(&ch.limits);
    char err[512];
    if (net_addr_parse(ch.set->broker, 7878, &ch.addr, err, sizeof err) < 0) {
        log_error("--broker: %s", err);
        return CHILD_EXIT_START;
    }
    /* Plugins load here, in each process, from the files as they are now:
     * the registry inherited from the supervisor holds the rest. */
    for (size_t i = 0; i < ch.set->plugin.n; i++) {
        size_t before = registry_count(ch.reg);
        if (registry_load_plugin(ch.reg, ch.set->plugin.items[i], err, sizeof err) < 0) {
            log_error("%s", err);
            return CHILD_EXIT_START;
        }
        log_info("plugin %s: %zu handlers", ch.set->plugin.items[i], registry_count(ch.reg) - before);
    }
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads(); /* handlers report progress from executor threads */
    pthread_mutex_init(&ch.progress_lock, NULL);
    ch.base = event_base_new();
    event_base_priority_init(ch.base, 2);
    ch.pool = pool_new(ch.base, (int)cfg->set->threads, err, sizeof err);
    if (!ch.pool) {
        log_error("cannot start the executor threads: %s", err);
        event_base_free(ch.base);
        return CHILD_EXIT_START;
    }
    ch.exec = exech_new(ch.base);
    ch.sigchld = evsignal_new(ch.base, SIGCHLD, sigchld_cb, &ch);
    evsignal_add(ch.sigchld, NULL);
    ch.reconnect = evtimer_new(ch.base, reconnect_cb, &ch);
    ch.heartbeat = event_new(ch.base, -1, EV_PERSIST, heartbeat_cb, &ch);
    ch.flush = event_new(ch.base, -1, 0, flush_cb, &ch);
    event_priority_set(ch.flush, 1);
    ch.stop_check = event_new(ch.base, -1, EV_PERSIST, stop_check_cb, &ch);
    ch.progress_ev = event_new(ch.base, -1, 0, progress_send_cb, &ch);
    ch.sigterm = evsignal_new(ch.base, SIGTERM, signal_cb, &ch);
    ch.sigint = evsignal_new(ch.base, SIGINT, signal_cb, &ch);
    evsignal_add(ch.sigterm, NULL);
    evsignal_add(ch.sigint, NULL);
    log_info("started: %lld threads, %d slots, broker %s", (long long)cfg->set->threads, ch.slots,
             ch.addr.text);
    link_connect(&ch);

    event_base_dispatch(ch.base);

    bool threads_busy = pool_running(ch.pool) + pool_queued(ch.pool) > 0;
    log_info("exiting (%llu done, %llu failed)%s", (unsigned long long)ch.done,
             (unsigned long long)ch.failed, threads_busy ? " with handlers still running" : "");
    if (threads_busy) /* a thread cannot be stopped: _exit takes them all */
        return ch.exit_code ? ch.exit_code : CHILD_EXIT_OK;
    pool_free(ch.pool);
    while (ch.tasks) {
        trident_task *t = ch.tasks;
        task_unlink(&ch, t);
        if (t->timer)
            event_free(t->timer);
        task_free(t);
    }
    while (ch.reports) {
        report *r = ch.reports;
        ch.reports = r->next;
        mem_free(r->id);
        mem_free(r->message);
        buf_free(&r->result);
        mem_free(r);
    }
    if (ch.bev)
        bufferevent_free(ch.bev);
    exech_free(ch.exec); /* kills and reaps programs still running */
    progress_send_cb(-1, 0, &ch); /* frees what is left */
    struct event *evs[] = { ch.reconnect, ch.heartbeat, ch.flush, ch.stop_check, ch.sigterm,
                            ch.sigint, ch.progress_ev, ch.sigchld };
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        event_free(evs[i]);
    event_base_free(ch.base);
    return ch.exit_code;
}
